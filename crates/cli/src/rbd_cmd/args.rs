//! `rbd`'s command line: its options (anywhere on the line, `--opt value` or
//! `--opt=value`), the command words, image specs (`POOL/NAMESPACE/IMAGE@SNAP`) with the
//! tool's validation rules, and its size syntax. Messages and exit statuses are the
//! tool's: boost::program_options errors exit 1, semantic errors exit EINVAL.
//! ceph: src/tools/rbd/{Shell.cc, ArgumentTypes.cc, Utils.cc}.

use super::{Fail, R};
use std::collections::BTreeMap;

/// Options that take a value, by every spelling; the first name is canonical.
const VALUED: &[&[&str]] = &[
    &["pool", "-p"],
    &["namespace"],
    &["image"],
    &["group"],
    &["group-pool"],
    &["group-namespace"],
    &["image-pool"],
    &["image-namespace"],
    &["dest-group"],
    &["snap"],
    &["snap-id"],
    &["image-id"],
    &["dest"],
    &["dest-pool"],
    &["dest-namespace"],
    &["dest-snap"],
    &["size", "-s"],
    &["image-feature"],
    &["image-format"],
    &["order"],
    &["object-size"],
    &["stripe-unit"],
    &["stripe-count"],
    &["data-pool"],
    &["format"],
    &["from-snap"],
    &["io-type"],
    &["io-size"],
    &["io-threads"],
    &["io-total"],
    &["io-pattern"],
    &["rw-mix-read"],
    &["limit"],
    &["export-format"],
    &["import-format"],
    &["path"],
    &["sparse-size"],
    &["options", "-o"],
    &["device-type", "-t"],
    &["expires-at"],
    &["expired-before"],
    &["threshold"],
    &["shared"],
    &["bind"],
    &["socket"],
];

/// Switches.
const FLAGS: &[&[&str]] = &[
    &["pretty-format"],
    &["no-progress"],
    &["allow-shrink"],
    &["long", "-l"],
    &["all", "-a"],
    &["force"],
    &["whole-object"],
    &["exact"],
    &["merge-snapshots"],
    &["image-shared"],
    &["thick-provision"],
    &["descendants"],
    &["skip-quiesce"],
    &["ignore-quiesce-error"],
    &["no-error"],
    &["help", "-h"],
    &["read-only"],
    &["exclusive"],
    &["flatten"],
];

/// The parsed command line.
#[derive(Debug, Default)]
pub struct Args {
    /// Positional arguments in order (command words first).
    pub pos: Vec<String>,
    opts: BTreeMap<&'static str, Vec<String>>,
    flags: Vec<&'static str>,
    /// Ceph configuration overrides given as options (`--rbd_default_features 1`),
    /// keyed with `_` separators.
    pub config: BTreeMap<String, String>,
}

fn lookup(table: &'static [&'static [&'static str]], name: &str) -> Option<&'static str> {
    table
        .iter()
        .find(|names| names.contains(&name))
        .map(|names| names[0])
}

impl Args {
    /// Parse what `common_setup` left over.
    pub fn parse(args: Vec<String>) -> R<Args> {
        let mut a = Args::default();
        let mut it = args.into_iter();
        let mut only_pos = false;
        while let Some(arg) = it.next() {
            if only_pos || arg == "-" || !arg.starts_with('-') || arg.len() == 1 {
                a.pos.push(arg);
                continue;
            }
            if arg == "--" {
                only_pos = true;
                continue;
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let key = flag.strip_prefix("--").unwrap_or(&flag).to_string();
            let short = !flag.starts_with("--");
            let key_norm = if short {
                flag.clone()
            } else {
                key.replace('_', "-")
            };
            if let Some(canon) = lookup(VALUED, &key_norm) {
                let v = match inline.or_else(|| it.next()) {
                    Some(v) => v,
                    None => {
                        return Err(Fail::usage(format!(
                            "rbd: the required argument for option '--{canon}' is missing"
                        )))
                    }
                };
                a.opts.entry(canon).or_default().push(v);
            } else if let Some(canon) = lookup(FLAGS, &key_norm) {
                a.flags.push(canon);
            } else if !short && (key.starts_with("rbd_") || key.starts_with("rbd-")) {
                // a Ceph configuration option (global_init accepts them all)
                let v = match inline.or_else(|| it.next()) {
                    Some(v) => v,
                    None => {
                        return Err(Fail::usage(format!(
                            "rbd: the required argument for option '{flag}' is missing"
                        )))
                    }
                };
                a.config.insert(key.replace('-', "_"), v);
            } else {
                return Err(Fail::usage(format!("rbd: unrecognised option '{flag}'")));
            }
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
        self.flags.contains(&name)
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
        assert!(Args::parse(v("ls --bogus")).is_err());
    }
}
