//! `rbd-rs config image|pool` against the real `rbd`: overrides stored as `conf_`
//! metadata, set by one tool and read by the other, the same listing and errors.

mod common;
use common::*;

/// Options librbd gained after 16.2 (our table is Pacific's): `rbd_qos_exclude_ops`
/// (18.2). Against a newer `rbd` the listings are compared without them.
const NEWER_OPTIONS: &[&str] = &["rbd_qos_exclude_ops"];

/// `rbd` and `rbd-rs` list the same options (modulo [`NEWER_OPTIONS`]), same status.
#[track_caller]
fn same_list(args: &[&str]) -> String {
    let a = run(RBD, args);
    let b = run(RBD_RS, args);
    assert_eq!(
        code(&a),
        code(&b),
        "exit status of `rbd {}`",
        args.join(" ")
    );
    let theirs = text(&a);
    let theirs = if args.contains(&"json") {
        let mut v: serde_json::Value = serde_json::from_str(&theirs).expect("rbd json");
        if let Some(a) = v.as_array_mut() {
            a.retain(|o| !NEWER_OPTIONS.contains(&o["name"].as_str().unwrap_or("")));
        }
        let ours: serde_json::Value = serde_json::from_str(&text(&b)).expect("rbd-rs json");
        assert_eq!(v, ours, "`rbd {}`", args.join(" "));
        return text(&b);
    } else {
        let kept: Vec<&str> = theirs
            .lines()
            .filter(|l| {
                !NEWER_OPTIONS
                    .iter()
                    .any(|o| l.starts_with(&format!("{o} ")))
            })
            .collect();
        let n = kept.len().saturating_sub(2);
        let mut t = kept.join("\n") + "\n";
        if let Some(rest) = t.strip_prefix("There are ") {
            if let Some((_, tail)) = rest.split_once(" values:") {
                t = format!("There are {n} values:{tail}");
            }
        }
        t
    };
    assert_eq!(
        theirs,
        text(&b),
        "stdout differs for `rbd {}`",
        args.join(" ")
    );
    theirs
}

#[test]
fn config_overrides_match_rbd() {
    let p = Pool::new("conf");
    let img = p.img("c");
    ok(RBD, &["create", "--size", "1M", &img]);
    let plain = same_list(&["config", "image", "list", &img]);
    assert!(plain.starts_with("There are 77 values:\nName"), "{plain}");
    ok(
        RBD_RS,
        &["config", "image", "set", &img, "rbd_cache", "false"],
    );
    ok(
        RBD,
        &[
            "config",
            "pool",
            "set",
            &p.name,
            "rbd_qos_iops_limit",
            "100",
        ],
    );
    assert_eq!(
        ok(RBD, &["config", "image", "get", &img, "rbd_cache"]),
        "false\n"
    );
    assert_eq!(
        ok(
            RBD_RS,
            &["config", "pool", "get", &p.name, "rbd_qos_iops_limit"]
        ),
        "100\n"
    );
    assert_eq!(
        ok(RBD_RS, &["image-meta", "get", &img, "conf_rbd_cache"]),
        "false\n"
    );
    let l = same_list(&["config", "image", "ls", &img]);
    assert!(
        l.contains("rbd_cache  ") && l.contains(" image") && l.contains(" pool"),
        "{l}"
    );
    same_list(&["config", "image", "list", "--format", "json", &img]);
    same_error(&["config", "image", "set", &img, "foo", "1"], 22);
    same_error(&["config", "image", "set", &img, "rbd_cache", "xx"], 22);
    same_error(&["config", "image", "get", &img, "rbd_qos_iops_limit"], 2);
    same_error(&["config", "image", "get", &img, "foo"], 22);
    ok(RBD, &["config", "image", "rm", &img, "rbd_cache"]);
    ok(
        RBD_RS,
        &["config", "pool", "remove", &p.name, "rbd_qos_iops_limit"],
    );
    same_error(&["config", "image", "remove", &img, "rbd_cache"], 2);
    same_error(&["config", "pool", "rm", &p.name, "rbd_qos_iops_limit"], 2);
    same_error(&["config", "pool", "get", &p.name, "rbd_qos_iops_limit"], 2);
    assert_eq!(same_list(&["config", "image", "list", &img]), plain);
}
