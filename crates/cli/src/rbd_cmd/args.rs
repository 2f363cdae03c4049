//! `rbd`'s command line: its options (anywhere on the line, `--opt value` or
//! `--opt=value`), the command words, image specs (`POOL/NAMESPACE/IMAGE@SNAP`) with the
//! tool's validation rules, and its size syntax. Messages and exit statuses are the
//! tool's: boost::program_options errors exit 1, semantic errors exit EINVAL.
//! ceph: src/tools/rbd/{Shell.cc, ArgumentTypes.cc, Utils.cc}.

use super::{Fail, R};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::Command;
use std::collections::BTreeMap;

/// The parsed command line, as the handlers read it.
#[derive(Debug, Default)]
pub struct Args {
    /// Positional arguments in order (command words first, as typed).
    pub pos: Vec<String>,
    opts: BTreeMap<String, Vec<String>>,
    flags: Vec<String>,
    /// Ceph configuration overrides given as options (`--rbd_default_features 1`),
    /// keyed with `_` separators.
    pub config: BTreeMap<String, String>,
}

/// Every option name of the command tree and whether it takes a value. rbd's shell
/// finds the command words the same way (a token after a valued option is its value,
/// not a word), with one table over all commands; an option name means the same thing
/// on every command, which a unit test checks.
struct OptionKinds {
    long: BTreeMap<String, bool>,
    short: BTreeMap<char, bool>,
}

impl OptionKinds {
    fn of(root: &Command) -> OptionKinds {
        fn walk(c: &Command, k: &mut OptionKinds) {
            for a in c.get_arguments() {
                let v = a.get_action().takes_values();
                if let Some(l) = a.get_long() {
                    k.long.insert(l.to_string(), v);
                }
                if let Some(s) = a.get_short() {
                    k.short.insert(s, v);
                }
            }
            for s in c.get_subcommands() {
                walk(s, k);
            }
        }
        let mut k = OptionKinds {
            long: BTreeMap::new(),
            short: BTreeMap::new(),
        };
        walk(root, &mut k);
        k
    }

    /// Whether option token `t` takes the next token as its value.
    fn takes_next(&self, t: &str) -> bool {
        if let Some(l) = t.strip_prefix("--") {
            return !l.contains('=') && self.long.get(l).copied().unwrap_or(false);
        }
        // `-l`, or switches stuck together (`-lp POOL`); after a valued one the rest of
        // the token is its value (`-pPOOL`)
        let cs: Vec<char> = t.chars().skip(1).collect();
        for (i, c) in cs.iter().enumerate() {
            match self.short.get(c) {
                Some(true) => return i + 1 == cs.len(),
                Some(false) => {}
                None => return false,
            }
        }
        false
    }

    /// The long name of an option shown as `--name` or `-c` in clap's error context.
    fn long_of(&self, shown: &str, root: &Command) -> String {
        let first = shown.split_whitespace().next().unwrap_or(shown);
        if let Some(l) = first.strip_prefix("--") {
            return l.to_string();
        }
        let c = first.trim_start_matches('-').chars().next();
        fn find(cmd: &Command, c: char) -> Option<String> {
            cmd.get_arguments()
                .find(|a| a.get_short() == Some(c))
                .and_then(|a| a.get_long().map(str::to_string))
                .or_else(|| cmd.get_subcommands().find_map(|s| find(s, c)))
        }
        c.and_then(|c| find(root, c))
            .unwrap_or_else(|| first.trim_start_matches('-').to_string())
    }
}

impl Args {
    /// Parse what `common_setup` left over: the thin adapter between rbd's command-line
    /// forms and clap. It takes out the `--rbd_*` configuration overrides (any librbd
    /// option, which no table can list), moves the command words to the front (rbd takes options before
    /// them: `rbd -p pool ls`), lets clap parse with the command's own options, turns
    /// clap's errors into boost's messages (exit 1), refuses the options rbd-rs does not
    /// implement (EOPNOTSUPP), and fills [`Args`] from the matches. Command options
    /// are spelled with `-` only, as boost takes them (`--image_id` is unrecognised);
    /// the global Ceph options, which take `_` too, were consumed before.
    pub fn parse(args: Vec<String>) -> R<Args> {
        Args::parse_with(&super::cli::command(), args)
    }

    fn parse_with(root: &Command, args: Vec<String>) -> R<Args> {
        let mut a = Args::default();
        let kinds = OptionKinds::of(root);
        let mut toks: Vec<String> = Vec::new();
        let mut it = args.into_iter();
        let mut only_pos = false;
        while let Some(arg) = it.next() {
            if only_pos || !arg.starts_with("--") || arg == "--" {
                only_pos |= arg == "--";
                toks.push(arg);
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            let key = &name[2..];
            if key.starts_with("rbd_") || key.starts_with("rbd-") {
                // a Ceph configuration option (global_init accepts them all)
                let v = match inline.or_else(|| it.next()) {
                    Some(v) => v,
                    None => {
                        return Err(Fail::usage(format!(
                            "rbd: the required argument for option '{name}' is missing"
                        )))
                    }
                };
                a.config.insert(key.replace('-', "_"), v);
                continue;
            }
            toks.push(arg);
        }
        // the positional tokens (before `--`), then the command words among them
        let mut positional = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            if t == "--" {
                positional.extend(i + 1..toks.len());
                break;
            }
            if t == "-" || !t.starts_with('-') {
                positional.push(i);
            } else if kinds.takes_next(t) {
                i += 1;
            }
            i += 1;
        }
        let mut node = root;
        let mut words = Vec::new();
        for &p in &positional {
            match node.find_subcommand(&toks[p]) {
                Some(sub) => {
                    words.push(p);
                    node = sub;
                }
                _ => break,
            }
        }
        let order: Vec<usize> = words
            .iter()
            .copied()
            .chain((0..toks.len()).filter(|i| !words.contains(i)))
            .collect();
        let argv = std::iter::once("rbd".to_string()).chain(order.iter().map(|&i| toks[i].clone()));
        let m = match root.clone().try_get_matches_from(argv) {
            Ok(m) => m,
            Err(e) => {
                let all_pos = || {
                    positional
                        .iter()
                        .map(|&p| toks[p].as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                return Err(clap_error(&e, root, &kinds, &toks, all_pos));
            }
        };
        // walk to the leaf command, then read its arguments generically
        for &w in &words {
            a.pos.push(toks[w].clone());
        }
        let (mut leaf_m, mut leaf_c) = (&m, root);
        while let Some((name, sm)) = leaf_m.subcommand() {
            leaf_c = leaf_c
                .find_subcommand(name)
                .ok_or_else(|| Fail::usage(format!("rbd: unknown command '{name}'")))?;
            leaf_m = sm;
        }
        let mut positionals: Vec<(usize, Vec<String>)> = Vec::new();
        for arg in leaf_c.get_arguments() {
            let id = arg.get_id().as_str();
            if leaf_m.value_source(id) != Some(ValueSource::CommandLine) {
                continue;
            }
            let values = || -> Vec<String> {
                leaf_m
                    .get_many::<String>(id)
                    .map(|v| v.cloned().collect())
                    .unwrap_or_default()
            };
            if arg.is_positional() {
                positionals.push((arg.get_index().unwrap_or(usize::MAX), values()));
                continue;
            }
            let name = arg.get_long().unwrap_or(id).to_string();
            if arg.get_help_heading() == Some(super::cli::NOT_IMPLEMENTED) {
                return Err(Fail::new(
                    format!("rbd-rs: option '--{name}' is not implemented"),
                    95,
                ));
            }
            if arg.get_action().takes_values() {
                a.opts.insert(name, values());
            } else {
                a.flags.push(name);
            }
        }
        positionals.sort_by_key(|(i, _)| *i);
        a.pos.extend(positionals.into_iter().flat_map(|(_, v)| v));
        // `--new-format` is boost's older spelling of `--image-format 2`
        if a.flag("new-format") && a.get("image-format").is_none() {
            a.opts.insert("image-format".into(), vec!["2".into()]);
        }
        Ok(a)
    }

    /// The last value of option `name` (canonical name).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.opts
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value of a repeatable option.
    pub fn all(&self, name: &str) -> &[String] {
        self.opts.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// True if switch `name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    /// `--no-progress`.
    pub fn no_progress(&self) -> bool {
        self.flag("no-progress")
    }

    /// Value of an option parsed with `f`; an unparsable value is boost's
    /// `invalid_option_value` (exit 1).
    pub fn parsed<T>(&self, name: &str, f: impl Fn(&str) -> Option<T>) -> R<Option<T>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => f(v).map(Some).ok_or_else(|| invalid(name)),
        }
    }
}

/// clap's error as boost::program_options reports it (never clap's own text): the
/// message rbd prints and exit status 1. An unknown command word prints the general
/// usage on stdout first, as rbd does.
fn clap_error(
    e: &clap::Error,
    root: &Command,
    kinds: &OptionKinds,
    toks: &[String],
    all_pos: impl Fn() -> String,
) -> Fail {
    let shown = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.first().cloned().unwrap_or_default(),
        _ => String::new(),
    };
    match e.kind() {
        ErrorKind::UnknownArgument if shown.starts_with('-') && shown != "-" => {
            // quote the whole token (`--bogus=3`), as boost does
            let typed = toks
                .iter()
                .find(|t| **t == shown || t.starts_with(&format!("{shown}=")))
                .map(String::as_str)
                .unwrap_or(&shown);
            Fail::usage(format!("rbd: unrecognised option '{typed}'"))
        }
        ErrorKind::UnknownArgument => Fail::usage("rbd: too many arguments"),
        ErrorKind::InvalidSubcommand
        | ErrorKind::MissingSubcommand
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            super::out(&format!("{}\n", super::help::general()));
            Fail::usage(format!("error: unknown option '{}'\n", all_pos()))
        }
        ErrorKind::InvalidValue | ErrorKind::NoEquals | ErrorKind::WrongNumberOfValues => {
            Fail::usage(format!(
                "rbd: the required argument for option '--{}' is missing",
                kinds.long_of(&shown, root)
            ))
        }
        ErrorKind::ArgumentConflict => Fail::usage(format!(
            "rbd: option '--{}' cannot be specified more than once",
            kinds.long_of(&shown, root)
        )),
        k => Fail::usage(format!(
            "rbd: invalid command line: {}",
            k.as_str().unwrap_or("parse error")
        )),
    }
}

/// boost::program_options' `invalid_option_value`.
pub fn invalid(name: &str) -> Fail {
    Fail::usage(format!(
        "rbd: the argument for option '--{name}' is invalid"
    ))
}

/// Ceph's `strict_iecstrtoll`: digits with an optional unit `B`, `K`, `M`, `G`, `T`,
/// `P`, `E` (optionally followed by `i`), no fractions, no lower case.
pub fn iec_size(s: &str) -> Option<u64> {
    let u = s
        .find(|c: char| !(c.is_ascii_digit() || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(u);
    if num.is_empty() || num.starts_with('-') {
        return None;
    }
    let n: u64 = num.trim_start_matches('+').parse().ok()?;
    if unit.len() > 2 || (unit.len() == 2 && (!unit.ends_with('i') || unit.starts_with('B'))) {
        return None;
    }
    let shift = match unit.chars().next() {
        None | Some('B') => 0,
        Some('K') => 10,
        Some('M') => 20,
        Some('G') => 30,
        Some('T') => 40,
        Some('P') => 50,
        Some('E') => 60,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// `--size`: like [`iec_size`], a bare number meaning MiB.
pub fn image_size(s: &str) -> Option<u64> {
    if s.ends_with(|c: char| c.is_ascii_digit()) {
        iec_size(s)?.checked_mul(1 << 20)
    } else {
        iec_size(s)
    }
}

/// How strictly a spec is checked (`utils::SpecValidation`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SpecCheck {
    /// `/` and `@` allowed in the image and snapshot names (reading existing images).
    None,
    /// No `/` or `@` in the snapshot name.
    Snap,
    /// No `/` or `@` anywhere (creating names).
    Full,
}

/// Whether a snapshot may or must be named (`utils::SnapshotPresence`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SnapPresence {
    /// No snapshot allowed.
    None,
    /// Optional.
    Permitted,
    /// Required.
    Required,
}

/// A resolved image spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    /// Pool (may be empty: the default pool).
    pub pool: String,
    /// RADOS namespace.
    pub namespace: String,
    /// Image name.
    pub image: String,
    /// Snapshot name (empty: none).
    pub snap: String,
}

/// Split `POOL/NAMESPACE/IMAGE@SNAP` like rbd's `extract_spec` regular expressions.
pub fn split_spec(spec: &str, check: SpecCheck) -> Option<Spec> {
    let mut out = Spec::default();
    let mut rest = spec;
    match check {
        SpecCheck::Full => {
            // ^(?:([^/@]+)/(?:([^/@]+)/)?)?([^/@]+)(?:@([^/@]+))?$
            let (left, snap) = match rest.split_once('@') {
                Some((l, s)) => (l, Some(s)),
                None => (rest, None),
            };
            if let Some(s) = snap {
                if s.is_empty() || s.contains('@') || s.contains('/') {
                    return None;
                }
                out.snap = s.to_string();
            }
            let parts: Vec<&str> = left.split('/').collect();
            if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
                return None;
            }
            match parts.len() {
                1 => out.image = parts[0].into(),
                2 => {
                    out.pool = parts[0].into();
                    out.image = parts[1].into();
                }
                _ => {
                    out.pool = parts[0].into();
                    out.namespace = parts[1].into();
                    out.image = parts[2].into();
                }
            }
            Some(out)
        }
        SpecCheck::None | SpecCheck::Snap => {
            // ^(?:([^/]+)/(?:([^/@]+)/)?)?([^@]+)(?:@(.+))?$   (Snap: @([^/@]+))
            if let Some(i) = rest.find('/') {
                if i == 0 {
                    return None;
                }
                out.pool = rest[..i].into();
                rest = &rest[i + 1..];
                if let Some(j) = rest.find('/') {
                    let ns = &rest[..j];
                    let after = &rest[j + 1..];
                    // the namespace group only matches if the image part still matches
                    let image_part = after.split('@').next().unwrap_or("");
                    if !ns.is_empty() && !ns.contains('@') && !image_part.is_empty() {
                        out.namespace = ns.into();
                        rest = after;
                    }
                }
            }
            let (image, snap) = match rest.split_once('@') {
                Some((i, s)) => (i, Some(s)),
                None => (rest, None),
            };
            if image.is_empty() {
                return None;
            }
            out.image = image.into();
            if let Some(s) = snap {
                if s.is_empty()
                    || (check == SpecCheck::Snap && (s.contains('/') || s.contains('@')))
                {
                    return None;
                }
                out.snap = s.into();
            }
            Some(out)
        }
    }
}

/// Which option names a spec uses (`ARGUMENT_MODIFIER_NONE` / `_DEST`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `--pool`, `--namespace`, `--image`, `--snap`.
    Source,
    /// `--dest-pool`, `--dest-namespace`, `--dest`, `--dest-snap`.
    Dest,
}

/// `utils::get_pool_image_snapshot_names`: take the spec from the options and/or the
/// positional argument at `*idx`, validate it and the snapshot presence.
pub fn image_spec(
    a: &Args,
    idx: &mut usize,
    which: Which,
    required: bool,
    snap: SnapPresence,
    check: SpecCheck,
    defaults: &Spec,
) -> R<Spec> {
    let (pk, nk, ik, sk) = match which {
        Which::Source => ("pool", "namespace", "image", "snap"),
        Which::Dest => ("dest-pool", "dest-namespace", "dest", "dest-snap"),
    };
    let mut s = defaults.clone();
    if let Some(p) = a.get(pk) {
        s.pool = p.into();
    }
    if let Some(n) = a.get(nk) {
        s.namespace = n.into();
    }
    if let Some(n) = a.get(sk) {
        s.snap = n.into();
    }
    let apply = |text: &str, s: &mut Spec| -> R<()> {
        let p = split_spec(text, check)
            .ok_or_else(|| Fail::einval(format!("rbd: invalid spec '{text}'")))?;
        if !p.pool.is_empty() {
            s.pool = p.pool;
        }
        if !p.namespace.is_empty() {
            s.namespace = p.namespace;
        }
        s.image = p.image;
        if !p.snap.is_empty() {
            s.snap = p.snap;
        }
        Ok(())
    };
    if let Some(i) = a.get(ik) {
        apply(i, &mut s)?;
    } else if let Some(p) = a.pos.get(*idx) {
        *idx += 1;
        apply(&p.clone(), &mut s)?;
    }
    let prefix = if which == Which::Dest {
        "destination "
    } else {
        ""
    };
    // `--image-id` names the source image instead (rbd: info, snap ls/rm/purge/...)
    let by_id = which == Which::Source && a.get("image-id").is_some();
    if by_id && !s.image.is_empty() {
        return Err(Fail::einval(
            "rbd: trying to access image using both name and id. ",
        ));
    }
    if required && s.image.is_empty() && !by_id {
        return Err(Fail::einval(format!(
            "rbd: {prefix}image name was not specified"
        )));
    }
    if check == SpecCheck::Full && (s.pool.contains('/') || s.pool.contains('@')) {
        return Err(Fail::einval(format!("rbd: invalid pool name '{}'", s.pool)));
    }
    if !s.namespace.is_empty() && (s.namespace.contains('/') || s.namespace.contains('@')) {
        return Err(Fail::einval(format!(
            "rbd: invalid namespace name '{}'",
            s.namespace
        )));
    }
    match snap {
        SnapPresence::Permitted => {}
        SnapPresence::None if !s.snap.is_empty() => {
            return Err(Fail::einval(format!(
                "rbd: {prefix}snapshot name specified for a command that doesn't use it"
            )))
        }
        SnapPresence::Required if s.snap.is_empty() => {
            return Err(Fail::einval(format!(
                "rbd: {prefix}snapshot name was not specified"
            )))
        }
        _ => {}
    }
    if check == SpecCheck::Snap && (s.snap.contains('/') || s.snap.contains('@')) {
        return Err(Fail::einval(format!("rbd: invalid snap name '{}'", s.snap)));
    }
    Ok(s)
}

/// `utils::get_pool_and_namespace_names`: `-p`/`--namespace`, or a positional
/// `POOL[/NAMESPACE]`.
pub fn pool_spec(a: &Args, idx: &mut usize) -> R<(String, String)> {
    let mut ns = a.get("namespace").unwrap_or("").to_string();
    let pool = match a.get("pool") {
        Some(p) => p.to_string(),
        None => match a.pos.get(*idx) {
            Some(p) => {
                *idx += 1;
                match p.rsplit_once('/') {
                    Some((pool, n)) => {
                        ns = n.to_string();
                        pool.to_string()
                    }
                    None => p.clone(),
                }
            }
            None => String::new(),
        },
    };
    if ns.contains('/') || ns.contains('@') {
        return Err(Fail::einval(format!("rbd: invalid namespace '{ns}'")));
    }
    Ok((pool, ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(p: &str, n: &str, i: &str, s: &str) -> Option<Spec> {
        Some(Spec {
            pool: p.into(),
            namespace: n.into(),
            image: i.into(),
            snap: s.into(),
        })
    }

    #[test]
    fn specs() {
        assert_eq!(split_spec("img", SpecCheck::None), sp("", "", "img", ""));
        assert_eq!(
            split_spec("p/img@s", SpecCheck::None),
            sp("p", "", "img", "s")
        );
        assert_eq!(
            split_spec("p/ns/img@s", SpecCheck::None),
            sp("p", "ns", "img", "s")
        );
        assert_eq!(
            split_spec("p/a@b/c", SpecCheck::None),
            sp("p", "", "a", "b/c")
        );
        assert_eq!(
            split_spec("p/ns/a/b", SpecCheck::None),
            sp("p", "ns", "a/b", "")
        );
        assert_eq!(split_spec("p/ns/a/b", SpecCheck::Full), None);
        assert_eq!(split_spec("p/img@", SpecCheck::None), None);
        assert_eq!(split_spec("/img", SpecCheck::None), None);
        assert_eq!(
            split_spec("p/ns/img@s", SpecCheck::Full),
            sp("p", "ns", "img", "s")
        );
        assert_eq!(split_spec("p/a@b/c", SpecCheck::Snap), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(image_size("10G"), Some(10 << 30));
        assert_eq!(image_size("100"), Some(100 << 20));
        assert_eq!(image_size("1Gi"), Some(1 << 30));
        assert_eq!(image_size("1GiB"), None);
        assert_eq!(image_size("1g"), None);
        assert_eq!(image_size("1X"), None);
        assert_eq!(iec_size("4K"), Some(4096));
        assert_eq!(iec_size("4096"), Some(4096));
        assert_eq!(iec_size("512B"), Some(512));
    }

    #[test]
    fn options_anywhere() {
        let v = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let a = Args::parse(v("create --size=10G -p rbd img --image-feature layering --image-feature deep-flatten --no-progress --rbd_default_features 1")).unwrap();
        assert_eq!(a.pos, vec!["create", "img"]);
        assert_eq!(a.get("size"), Some("10G"));
        assert_eq!(a.get("pool"), Some("rbd"));
        assert_eq!(a.all("image-feature").len(), 2);
        assert!(a.no_progress());
        assert_eq!(
            a.config.get("rbd_default_features").map(String::as_str),
            Some("1")
        );
        // options before the command words, aliases typed as given
        let a = Args::parse(v("-p rbd snap ls -l img")).unwrap_err();
        assert_eq!(a.msg, "rbd: unrecognised option '-l'");
        let a = Args::parse(v("-p rbd --format json snap ls img")).unwrap();
        assert_eq!(a.pos, vec!["snap", "ls", "img"]);
        assert_eq!(a.get("format"), Some("json"));
        // a valued option's value is not a command word
        let a = Args::parse(v("-lp ls ls")).unwrap();
        assert_eq!(
            (a.pos.as_slice(), a.get("pool")),
            (&["ls".to_string()][..], Some("ls"))
        );
        assert!(a.flag("long"));
        let a = Args::parse(v("--pool ls ls")).unwrap();
        assert_eq!(
            (a.pos.as_slice(), a.get("pool")),
            (&["ls".to_string()][..], Some("ls"))
        );
        // negative numbers are values, `-` and what follows `--` positionals
        let a = Args::parse(v("snap limit set --limit -1 img")).unwrap();
        assert_eq!(a.get("limit"), Some("-1"));
        let a = Args::parse(v("import - -- -img")).unwrap();
        assert_eq!(a.pos, vec!["import", "-", "-img"]);
        let a = Args::parse(v("create --new-format x")).unwrap();
        assert_eq!(a.get("image-format"), Some("2"));
        assert!(Args::parse(v("ls --bogus")).is_err());
    }

    #[test]
    fn errors_like_boost() {
        let v = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let err = |s: &str| {
            let f = Args::parse(v(s)).unwrap_err();
            (f.msg, f.code)
        };
        let e = |m: &str, c: i32| (m.to_string(), c);
        assert_eq!(
            err("du --snap-id 3 x"),
            e("rbd: unrecognised option '--snap-id'", 1)
        );
        assert_eq!(
            err("create --all x"),
            e("rbd: unrecognised option '--all'", 1)
        );
        assert_eq!(
            err("ls --bogus=3"),
            e("rbd: unrecognised option '--bogus=3'", 1)
        );
        assert_eq!(
            err("ls --image_id=3"),
            e("rbd: unrecognised option '--image_id=3'", 1)
        );
        assert_eq!(err("info a b"), e("rbd: too many arguments", 1));
        assert_eq!(
            err("create x -s"),
            e(
                "rbd: the required argument for option '--size' is missing",
                1
            )
        );
        assert_eq!(
            err("ls -l --long"),
            e("rbd: option '--long' cannot be specified more than once", 1)
        );
        assert_eq!(
            err("create --journal-pool p x"),
            e("rbd-rs: option '--journal-pool' is not implemented", 95)
        );
        assert_eq!(
            err("create x --rbd_default_features"),
            e(
                "rbd: the required argument for option '--rbd_default_features' is missing",
                1
            )
        );
    }

    /// The description is consistent (clap's own checks), and an option name means the
    /// same on every command (valued or a switch), which finding the command words
    /// before parsing relies on.
    #[test]
    fn one_meaning_per_option_name() {
        let root = super::super::cli::command();
        root.clone().debug_assert();
        fn walk(c: &Command, seen: &mut BTreeMap<String, bool>) {
            for a in c.get_arguments().filter(|a| !a.is_positional()) {
                let v = a.get_action().takes_values();
                let mut names: Vec<String> = a.get_long().map(String::from).into_iter().collect();
                names.extend(a.get_short().map(|s| format!("-{s}")));
                for n in names {
                    let prev = seen.insert(n.clone(), v);
                    assert!(prev.is_none() || prev == Some(v), "{n} in {}", c.get_name());
                }
            }
            for s in c.get_subcommands() {
                walk(s, seen);
            }
        }
        walk(&root, &mut BTreeMap::new());
    }
}
