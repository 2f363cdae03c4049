//! `rbd-rs config image|pool` against the real `rbd`: overrides stored as `conf_`
//! metadata, set by one tool and read by the other, the same listing and errors.

mod common;
use common::*;

#[test]
fn config_overrides_match_rbd() {
    let p = Pool::new("conf");
    let img = p.img("c");
    ok(RBD, &["create", "--size", "1M", &img]);
    let plain = same(&["config", "image", "list", &img]);
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
    let l = same(&["config", "image", "ls", &img]);
    assert!(
        l.contains("rbd_cache  ") && l.contains(" image") && l.contains(" pool"),
        "{l}"
    );
    same(&["config", "image", "list", "--format", "json", &img]);
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
    assert_eq!(same(&["config", "image", "list", &img]), plain);
}
