//! `rbd-rs help [COMMAND]` / `rbd-rs COMMAND --help`, generated from the clap
//! description (`cli.rs`), so the help cannot drift from what the parser accepts.
//! The layout is rbd's (`usage: rbd <command> [options] <positionals>`, a blank line,
//! the description, then the positional and optional arguments), since scripts probe
//! the help text for a command or an option before using it.
//! ceph: src/tools/rbd/Shell.cc (print_help, print_action_help), OptionPrinter.cc.

use super::cli;
use clap::{Arg, Command};

/// Width rbd wraps its help at.
const WIDTH: usize = 80;

/// The help of the command named by `words` (aliases allowed: `trash mv`, `snap add`),
/// `None` if this tool lacks it.
pub fn command_help(words: &[String]) -> Option<String> {
    let root = cli::command();
    let mut c = &root;
    let mut names = Vec::new();
    for w in words {
        c = c.find_subcommand(w)?;
        names.push(c.get_name().to_string());
    }
    if names.is_empty() || c.has_subcommands() {
        return None;
    }
    Some(format_command(&names.join(" "), c))
}

/// Own (not global) options of a command; hidden ones only with `hidden` (rbd names
/// its deprecated options in the usage line, not in the list).
fn own_options(c: &Command, hidden: bool) -> impl Iterator<Item = &Arg> {
    c.get_arguments()
        .filter(move |a| !a.is_positional() && !a.is_global_set() && (hidden || !a.is_hide_set()))
}

/// `<name>`, or `<name> [<name> ...]` for a repeated positional.
fn positional_usage(a: &Arg) -> String {
    let name = value_name(a);
    if matches!(a.get_action(), clap::ArgAction::Append) {
        format!("<{name}> [<{name}> ...]")
    } else {
        format!("<{name}>")
    }
}

fn value_name(a: &Arg) -> String {
    a.get_value_names()
        .and_then(|v| v.first())
        .map(|s| s.to_string())
        .or_else(|| a.get_long().map(str::to_string))
        .unwrap_or_else(|| a.get_id().to_string())
}

/// Text wrapped to [`WIDTH`], continuation lines indented by `indent`.
fn wrap(words: &[String], first: &str, indent: usize) -> String {
    let mut out = first.to_string();
    let mut col = first.rsplit('\n').next().unwrap_or_default().len();
    for w in words {
        if col + w.len() > WIDTH && col > indent {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
        }
        out.push_str(w);
        out.push(' ');
        col += w.len() + 1;
    }
    out
}

/// One option or positional line: the name column (26 wide, like rbd's) and its help,
/// wrapped under itself.
fn item(name: String, help: &str) -> String {
    let words: Vec<String> = help.split_whitespace().map(String::from).collect();
    let first = if name.len() < 24 {
        format!("  {name:<24}")
    } else {
        format!("  {name}\n{:<26}", "")
    };
    let mut s = wrap(&words, &first, 26);
    s.truncate(s.trim_end().len());
    s.push('\n');
    s
}

/// A command's description as a sentence (clap's derive drops the final period of a
/// doc comment; rbd prints it).
fn sentence(about: &str) -> String {
    if about.ends_with(['.', '!', '?', ')']) {
        about.to_string()
    } else {
        format!("{about}.")
    }
}

fn format_command(name: &str, c: &Command) -> String {
    let mut usage: Vec<String> = Vec::new();
    for a in own_options(c, true) {
        let long = a.get_long().unwrap_or_default();
        if a.get_action().takes_values() {
            usage.push(format!("[--{long} <{long}>]"));
        } else {
            usage.push(format!("[--{long}]"));
        }
    }
    let positionals: Vec<&Arg> = c.get_arguments().filter(|a| a.is_positional()).collect();
    usage.extend(positionals.iter().map(|a| positional_usage(a)));
    let first = format!("usage: rbd {name} ");
    let mut out = wrap(&usage, &first, first.len());
    out.push_str("\n\n");
    if let Some(about) = c.get_about() {
        out.push_str(&format!("{}\n", sentence(&about.to_string())));
    }
    if !positionals.is_empty() {
        out.push_str("\nPositional arguments\n");
        for a in &positionals {
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            out.push_str(&item(format!("<{}>", value_name(a)), &help));
        }
    }
    for (heading, implemented) in [("Optional arguments", true), (cli::NOT_IMPLEMENTED, false)] {
        let opts: Vec<&Arg> = own_options(c, false)
            .filter(|a| (a.get_help_heading() != Some(cli::NOT_IMPLEMENTED)) == implemented)
            .collect();
        if opts.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{heading}\n"));
        for a in opts {
            let long = a.get_long().unwrap_or_default();
            let mut n = match a.get_short() {
                Some(s) => format!("-{s} [ --{long} ]"),
                None => format!("--{long}"),
            };
            if a.get_action().takes_values() {
                n.push_str(" arg");
            }
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            out.push_str(&item(n, &help));
        }
    }
    out
}

/// The leaf commands under `c` with their full names, in order.
fn leaves<'a>(c: &'a Command, prefix: &str, out: &mut Vec<(String, &'a Command)>) {
    for s in c.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = if prefix.is_empty() {
            s.get_name().to_string()
        } else {
            format!("{prefix} {}", s.get_name())
        };
        if s.has_subcommands() {
            leaves(s, &name, out);
        } else {
            out.push((name, s));
        }
    }
}

/// `rbd-rs help`: every command (with its aliases) and the global options.
pub fn general() -> String {
    let root = cli::command();
    let mut cmds = Vec::new();
    leaves(&root, "", &mut cmds);
    cmds.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from(
        "usage: rbd <command> ...\n\nCommand-line interface for managing Ceph RBD images.\n\nPositional arguments:\n  <command>\n",
    );
    for (name, c) in cmds {
        let mut shown = name.clone();
        let aliases: Vec<&str> = c.get_visible_aliases().collect();
        if let Some(alias) = aliases.first() {
            let mut words: Vec<&str> = name.split(' ').collect();
            words.pop();
            words.push(alias);
            shown = format!("{name} ({})", words.join(" "));
        }
        let about = c
            .get_about()
            .map(|a| sentence(&a.to_string()))
            .unwrap_or_default();
        let first = if shown.len() < 34 {
            format!("    {shown:<34}")
        } else {
            format!("    {shown}\n{:<38}", "")
        };
        let words: Vec<String> = about.split_whitespace().map(String::from).collect();
        let line = wrap(&words, &first, 38);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str("\nOptional arguments:\n");
    for a in root
        .get_arguments()
        .filter(|a| a.is_global_set() && !a.is_hide_set())
    {
        let long = a.get_long().unwrap_or_default();
        let mut n = match a.get_short() {
            Some(s) => format!("-{s} [ --{long} ]"),
            None => format!("--{long}"),
        };
        if a.get_action().takes_values() {
            n.push_str(" arg");
        }
        let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        out.push_str(&format!("  {n:<36}{help}\n"));
    }
    out.push_str("\nSee 'rbd help <command>' for help on a specific command.");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let starts = |words: &str, with: &str| {
            let h = command_help(&w(words)).unwrap_or_else(|| panic!("no help for {words}"));
            assert!(h.starts_with(with), "{words}: {h}");
        };
        starts("trash mv", "usage: rbd trash move");
        starts("mv", "usage: rbd rename");
        starts("lock add", "usage: rbd lock add");
        starts("snap add", "usage: rbd snap create");
        starts("deep cp", "usage: rbd deep copy");
        starts("cp", "usage: rbd copy");
        starts("group snap rm", "usage: rbd group snap remove");
        assert!(command_help(&w("image-meta ls")).is_some());
        assert!(command_help(&w("group frobnicate")).is_none());
        assert!(command_help(&w("snap")).is_none());
        let h = command_help(&w("create")).unwrap();
        assert!(h.contains("-s [ --size ] arg"), "{h}");
        assert!(h.contains("\n\nCreate an empty image.\n"), "{h}");
        assert!(
            h.contains("Not implemented by rbd-rs\n  --mirror-image-mode arg"),
            "{h}"
        );
        let h = command_help(&w("feature enable")).unwrap();
        assert!(h.contains("<features> [<features> ...]"), "{h}");
        let g = general();
        assert!(g.contains("\n    snap list (snap ls)"), "{g}");
        assert!(g.contains("\n    trash move (trash mv)"), "{g}");
        assert!(!g.contains("bench-write"), "{g}");
    }
}
