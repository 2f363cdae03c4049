//! Per-command option sets (issue 12, the clap command line), against librbd's `rbd`:
//! an option another command has is refused by both tools the same way (boost's
//! `unrecognised option`, exit 1), every option `rbd help <command>` lists is recognised
//! by rbd-rs's parser for that command, and the shell completion is generated from the
//! same description.

mod common;
use common::*;

/// rbd-rs's stderr line for a refused option, and rbd's, agree.
#[track_caller]
fn same_refusal(args: &[&str]) {
    same_error(args, 1);
    let line = |prog: &str| {
        let o = run(prog, args);
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .find(|l| l.contains("unrecognised option"))
            .map(str::to_string)
    };
    let want = line(RBD);
    assert!(
        want.is_some(),
        "rbd {}: no unrecognised option line",
        args.join(" ")
    );
    assert_eq!(line(RBD_RS), want, "{}", args.join(" "));
}

#[test]
fn foreign_options_are_refused_like_rbd() {
    let p = Pool::new("foreign");
    let (img, snap, new, child, t) = (
        p.img("img"),
        p.img("img@s"),
        p.img("new"),
        p.img("child"),
        p.img("img@t"),
    );
    let (img, snap) = (img.as_str(), snap.as_str());
    // the image exists, so a tool that accepted the option would act on it
    ok(RBD, &["create", "--size", "4M", img]);
    ok(RBD, &["snap", "create", snap]);
    for args in [
        vec!["create", "--all", "--size", "4M", new.as_str()],
        vec!["du", "--snap-id", "3", img],
        vec!["info", "--long", img],
        vec!["resize", "--format", "json", "--size", "8M", img],
        vec!["snap", "create", "--force", t.as_str()],
        vec!["trash", "mv", "--all", img],
        vec!["rm", "--snap", "s", img],
        vec!["export", "--whole-object", img, "/dev/null"],
        vec!["children", "--long", snap],
        vec!["lock", "ls", "--shared", "t", img],
        vec!["flatten", "--allow-shrink", img],
        vec!["snap", "ls", "--exact", img],
        vec!["clone", "--image-format", "2", snap, child.as_str()],
        vec!["image-meta", "list", "--force", img],
        vec!["ls", "--image-id", "1", p.name.as_str()],
        vec!["status", "-s", "1", img],
    ] {
        same_refusal(&args);
    }
    // nothing was acted on: the image is still there, unresized, with one snapshot
    let info = info_fields(img);
    assert_eq!(info["size"], 4 << 20);
    assert_eq!(snaps(img).len(), 1);
}

/// The command names `rbd help` lists (alias forms left out).
fn rbd_commands() -> Vec<String> {
    let o = run(RBD, &["help"]);
    let mut out = Vec::new();
    let mut in_list = false;
    for l in text(&o).lines() {
        if l.trim() == "<command>" {
            in_list = true;
            continue;
        }
        if in_list && l.trim().is_empty() {
            break;
        }
        // a command starts at column 4; its wrapped description further right
        if in_list && l.starts_with("    ") && !l.starts_with("     ") {
            // the name column is 34 wide: a longer name may touch its description
            let name: String = l.chars().skip(4).take(34).collect();
            let name = name
                .split("  ")
                .next()
                .unwrap_or("")
                .split(" (")
                .next()
                .unwrap_or("")
                .trim();
            out.push(name.to_string());
        }
    }
    out
}

/// The option spellings `rbd help <command>` shows (listed options and the hidden ones
/// its usage line names), each with whether it takes a value.
fn rbd_options(words: &[&str]) -> Vec<(String, bool)> {
    let mut args = vec!["help"];
    args.extend_from_slice(words);
    let t = text(&run(RBD, &args));
    let mut out: Vec<(String, bool)> = Vec::new();
    let (usage, rest) = t.split_once("\n\n").unwrap_or((&t, ""));
    if let Some(opts) = rest.split_once("Optional arguments").map(|x| x.1) {
        for l in opts.lines() {
            let Some(body) = l.strip_prefix("  ") else {
                continue;
            };
            if !body.starts_with('-') {
                continue;
            }
            let head = body.split("  ").next().unwrap_or(body);
            // `... arg` or `--expired-before date`: a value; `-l [ --long ]`: a switch
            let last = head.split_whitespace().last().unwrap_or("");
            let takes =
                head.split_whitespace().count() > 1 && last != "]" && !last.starts_with('-');
            // `-p [ --pool ] arg` or `--namespace arg`
            for tok in head.split_whitespace() {
                if tok.starts_with('-') {
                    out.push((tok.to_string(), takes));
                }
            }
        }
    }
    // hidden options show only in the usage: `[--order <order>]`, `[--new-format]`
    let usage: Vec<&str> = usage.split_whitespace().collect();
    for (i, tok) in usage.iter().enumerate() {
        let tok = tok.trim_start_matches('[').trim_end_matches(']');
        if tok.starts_with("--") && !out.iter().any(|(n, _)| n == tok) {
            let takes = usage
                .get(i + 1)
                .is_some_and(|n| n.starts_with('<') && !usage[i].ends_with(']'));
            out.push((tok.to_string(), takes));
        }
    }
    out
}

#[test]
fn every_rbd_option_is_recognised_per_command() {
    let cmds = rbd_commands();
    assert!(cmds.len() > 100, "rbd help listed {} commands", cmds.len());
    let (mut lacking, mut checked, mut not_implemented) = (Vec::new(), 0, Vec::new());
    let mut failures = Vec::new();
    for cmd in &cmds {
        let words: Vec<&str> = cmd.split(' ').collect();
        let mut help = vec!["help"];
        help.extend_from_slice(&words);
        if code(&run(RBD_RS, &help)) != 0 {
            lacking.push(cmd.clone());
            continue;
        }
        checked += 1;
        for (opt, takes) in rbd_options(&words) {
            // `--help` makes rbd-rs parse the whole line, then print help without
            // connecting or acting
            let mut args = words.clone();
            args.push(&opt);
            if takes {
                args.push("1");
            }
            args.push("--help");
            let o = run(RBD_RS, &args);
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            match code(&o) {
                0 => {}
                95 if err.contains("is not implemented") => {
                    not_implemented.push(format!("{cmd} {opt}"))
                }
                c => failures.push(format!("rbd-rs {} -> {c}: {err}", args.join(" "))),
            }
        }
    }
    eprintln!("commands rbd has and rbd-rs lacks: {lacking:?}");
    eprintln!("options recognised but not implemented: {not_implemented:?}");
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(checked >= 70, "only {checked} commands checked");
}

#[test]
fn completions_come_from_the_description() {
    let o = run(RBD_RS, &["completion", "bash"]);
    assert_eq!(code(&o), 0);
    let t = text(&o);
    for word in [
        "create",
        "snap",
        "trash",
        "group",
        "--image-feature",
        "--pool",
    ] {
        assert!(t.contains(word), "bash completion lacks {word}");
    }
    let o = run(RBD_RS, &["completion", "tcsh"]);
    assert_eq!(code(&o), 22);
    for sh in ["zsh", "fish"] {
        let o = run(RBD_RS, &["completion", sh]);
        assert_eq!(code(&o), 0);
        assert!(text(&o).contains("snap"), "{sh}");
    }
}
