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

/// `config pool list` (the 77 image-level options and the 32 pool-only ones) and
/// `config global get|set|rm|list` against rbd. The global commands only write to a
/// client section no real client uses, so concurrent tests are not affected.
#[test]
fn pool_list_and_global_config_match_rbd() {
    let p = Pool::new("confg");
    let img = p.img("i");
    ok(RBD, &["create", "--size", "1M", &img]);
    // pool-only options: set at pool level by both, refused at image level by both
    ok(
        RBD_RS,
        &["config", "pool", "set", &p.name, "rbd_default_order", "23"],
    );
    ok(
        RBD,
        &[
            "config",
            "pool",
            "set",
            &p.name,
            "rbd_journal_splay_width",
            "8",
        ],
    );
    assert_eq!(
        ok(
            RBD,
            &["config", "pool", "get", &p.name, "rbd_default_order"]
        ),
        "23\n"
    );
    same_error(
        &["config", "image", "set", &img, "rbd_default_order", "23"],
        22,
    );
    same_error(&["config", "pool", "set", &p.name, "rbd_nope", "1"], 22);
    same_error(&["config", "pool", "set", &p.name, "nope", "1"], 22);
    same_list(&["config", "pool", "list", &p.name]);
    same_list(&["config", "pool", "list", "--format", "json", &p.name]);
    same_list(&["config", "pool", "ls", "--format", "json", &p.name]);
    // the image listing still shows only the image-level options
    same_list(&["config", "image", "list", "--format", "json", &img]);

    let who = format!("client.{}", unique("cfg").replace('-', "_"));
    ok(
        RBD_RS,
        &["config", "global", "set", &who, "rbd_qos_iops_limit", "7"],
    );
    assert_eq!(
        ok(
            RBD,
            &["config", "global", "get", &who, "rbd_qos_iops_limit"]
        ),
        "7\n"
    );
    ok(
        RBD,
        &["config", "global", "set", &who, "rbd_cache", "false"],
    );
    assert_eq!(
        ok(RBD_RS, &["config", "global", "get", &who, "rbd_cache"]),
        "false\n"
    );
    // the listing merges global < client < client.<id>; another test may bump the
    // pool-override timestamp between the two runs, so compare up to three times
    for args in [
        vec!["config", "global", "list", who.as_str()],
        vec!["config", "global", "list", "--format", "json", who.as_str()],
    ] {
        let mut same_now = false;
        for _ in 0..3 {
            let (a, b) = (run(RBD, &args), run(RBD_RS, &args));
            assert_eq!(code(&a), 0);
            assert_eq!(code(&b), 0);
            if text(&a) == text(&b) {
                assert!(text(&b).contains("rbd_qos_iops_limit"));
                same_now = true;
                break;
            }
        }
        assert!(same_now, "`rbd {}` differs", args.join(" "));
    }
    same_error(&["config", "global", "get", &who, "rbd_qos_bps_limit"], 2);
    same_error(&["config", "global", "set", &who, "rbd_cache", "maybe"], 22);
    same_error(&["config", "global", "set", &who, "rbd_nope", "1"], 22);
    same_error(&["config", "global", "set", "osd", "rbd_cache", "true"], 22);
    same_error(&["config", "global", "list", "mon"], 22);
    same_error(&["config", "global", "get", &who], 22);
    for prog in [RBD_RS, RBD] {
        ok(
            prog,
            &["config", "global", "rm", &who, "rbd_qos_iops_limit"],
        );
        ok(prog, &["config", "global", "rm", &who, "rbd_cache"]);
    }
    let after = ok(RBD, &["config", "global", "list", "--format", "json", &who]);
    assert!(!after.contains(&who), "{after}");
}
