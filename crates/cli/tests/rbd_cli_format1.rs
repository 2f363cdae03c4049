//! Format-1 images (issue 12) against the real `rbd` (Ceph 16.2): images librbd made
//! in the old format are listed, described, read and exported by `rbd-rs` exactly as
//! `rbd` does it. Fails (never skips) without a test cluster.
//!
//! Pacific's librbd refuses to create format-1 images (EINVAL, "Format 1 image creation
//! unsupported") unless `RBD_FORCE_ALLOW_V1` is set in its environment, so the oracle
//! images are made with that variable.

mod common;
use common::*;
use std::process::{Command, Output};

/// `rbd ARGS` with `RBD_FORCE_ALLOW_V1=1`: librbd then creates format-1 images.
fn rbd_v1(args: &[&str]) -> Output {
    let o = run_forced(RBD, args);
    assert!(
        o.status.success(),
        "rbd {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// `prog ARGS` (rbd or rbd-rs) with `RBD_FORCE_ALLOW_V1=1`.
fn run_forced(prog: &str, args: &[&str]) -> Output {
    let e = env();
    let bin = if prog == RBD_RS {
        std::path::PathBuf::from(RBD_RS)
    } else {
        oracle(prog)
    };
    Command::new(bin)
        .arg("--conf")
        .arg(&e.conf)
        .arg("--keyring")
        .arg(&e.keyring)
        .args(args)
        .env("RBD_FORCE_ALLOW_V1", "1")
        .env_remove("CEPH_ARGS")
        .output()
        .expect("run rbd")
}

fn stderr(o: &Output) -> String {
    oracle_stderr(o)
}

#[test]
fn librbd_log_records_are_cut_from_stderr() {
    let o = std::process::Command::new("sh")
        .args([
            "-c",
            "printf 'rbd: create error: 2026-12-03T09:29:54.243+0000 7f31 -1 librbd: no. \\n(22) Invalid argument\\n' >&2",
        ])
        .output()
        .unwrap();
    assert_eq!(stderr(&o), "rbd: create error: (22) Invalid argument\n");
}

/// A format-1 image made by librbd from `data` (`rbd import --image-format 1`).
fn import_v1(pool: &Pool, name: &str, data: &[u8], tmp: &TmpDir) -> String {
    let f = tmp.path(name);
    std::fs::write(&f, data).unwrap();
    let spec = pool.img(name);
    rbd_v1(&[
        "import",
        "--no-progress",
        "--image-format",
        "1",
        f.to_str().unwrap(),
        &spec,
    ]);
    let info: serde_json::Value =
        serde_json::from_str(&ok(RBD, &["info", "--format", "json", &spec])).unwrap();
    assert_eq!(info["format"], 1, "{info}");
    spec
}

fn objects(pool: &str) -> Vec<String> {
    let mut v: Vec<String> = ok("rados", &["-p", pool, "ls"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn librbd_format1_image_lists_describes_and_exports_the_same() {
    let p = Pool::new("f1read");
    let tmp = TmpDir::new("f1read");
    let v1 = sparse_image(11, 10 << 20);
    let img = import_v1(&p, "old", &v1, &tmp);
    // a format-2 image beside it: `rbd ls` puts the format-1 names first
    ok(RBD, &["create", "--size", "1M", &p.img("0new")]);

    // layout facts the code relies on: `<name>.rbd`, `rb.0.*` objects with 12 hex digits
    let objs = objects(&p.name);
    assert!(objs.contains(&"old.rbd".to_string()), "{objs:?}");
    let prefix =
        serde_json::from_str::<serde_json::Value>(&ok(RBD, &["info", "--format", "json", &img]))
            .unwrap()["block_name_prefix"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(prefix.starts_with("rb.0."), "{prefix}");
    assert!(objs.contains(&format!("{prefix}.000000000002")), "{objs:?}");

    let head_sha = sha256(&v1);
    ok(RBD, &["snap", "create", &format!("{img}@s1")]);
    // change the head after the snapshot, grow it, take a second snapshot
    ok(RBD, &["resize", "--no-progress", "--size", "16M", &img]);
    ok(
        RBD,
        &[
            "bench",
            "--io-type",
            "write",
            "--io-size",
            "65536",
            "--io-total",
            "1M",
            "--io-pattern",
            "rand",
            &img,
        ],
    );
    ok(RBD, &["snap", "create", &format!("{img}@s2")]);

    for args in [
        vec!["info", img.as_str()],
        vec!["info", "--format", "json", img.as_str()],
        vec!["ls", p.name.as_str()],
        vec!["ls", "--format", "json", p.name.as_str()],
        vec!["ls", "-l", p.name.as_str()],
        vec!["ls", "-l", "--format", "json", p.name.as_str()],
        vec!["snap", "ls", img.as_str()],
        vec!["snap", "ls", "--format", "json", img.as_str()],
    ] {
        same(&args);
    }
    let s1 = format!("{img}@s1");
    same(&["info", &s1]);
    same(&["info", "--format", "json", &s1]);
    let out = same(&["info", "--format", "json", &img]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["format"], 1);
    assert_eq!(v["id"], "");
    assert!(v.get("features").is_none(), "{v}");
    let ls = same(&["ls", p.name.as_str()]);
    assert_eq!(ls, "old\n0new\n");

    // the snapshot still holds the imported bytes; head and s2 as rbd reads them
    exports_equal(&s1, &head_sha);
    exports_equal(&img, &export_sha(&img));
    exports_equal(&format!("{img}@s2"), &export_sha(&img));
    // a missing snapshot of a format-1 image: ENOENT from both
    same_error(&["export", &format!("{img}@nope"), "-"], 2);
}

#[test]
fn create_format1_refusals_and_forced_create_match_rbd() {
    let p = Pool::new("f1create");
    let img = p.img("new1");
    // without RBD_FORCE_ALLOW_V1 both refuse with EINVAL after the deprecation warning
    for prog in [RBD, RBD_RS] {
        let o = run(
            prog,
            &["create", "--image-format", "1", "--size", "4M", &img],
        );
        assert_eq!(code(&o), 22, "{prog}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.starts_with("rbd: image format 1 is deprecated\n"),
            "{prog}: {e}"
        );
        assert!(
            e.contains("rbd: create error: (22) Invalid argument"),
            "{prog}: {e}"
        );
    }
    // format-2 options are refused with the same sentence, even when forced
    for extra in [
        &["--image-feature", "layering"][..],
        &["--stripe-unit", "65536", "--stripe-count", "2"][..],
        &["--data-pool", "rbd"][..],
    ] {
        let mut args = vec!["create", "--image-format", "1", "--size", "4M"];
        args.extend_from_slice(extra);
        args.push(&img);
        let a = run_forced(RBD, &args);
        let b = run_forced(RBD_RS, &args);
        assert_eq!((code(&a), code(&b)), (22, 22), "{args:?}: {}", stderr(&b));
        let last = |o: &Output| stderr(o).lines().last().unwrap_or("").to_string();
        assert_eq!(last(&a), last(&b), "{args:?}");
    }
    assert!(ok(RBD, &["ls", &p.name]).is_empty());

    // forced: rbd-rs makes the image, librbd opens, writes and exports it
    let o = run_forced(
        RBD_RS,
        &[
            "create",
            "--image-format",
            "1",
            "--size",
            "10M",
            "--order",
            "20",
            &img,
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stderr(&o), "rbd: image format 1 is deprecated\n");
    let v: serde_json::Value =
        serde_json::from_str(&ok(RBD, &["info", "--format", "json", &img])).unwrap();
    assert_eq!(v["format"], 1, "{v}");
    assert_eq!(v["size"], 10 << 20);
    assert_eq!(v["order"], 20);
    assert!(
        v["block_name_prefix"]
            .as_str()
            .unwrap()
            .starts_with("rb.0."),
        "{v}"
    );
    assert_eq!(ok(RBD, &["ls", &p.name]), "new1\n");
    ok(
        RBD,
        &[
            "bench",
            "--io-type",
            "write",
            "--io-size",
            "65536",
            "--io-total",
            "2M",
            &img,
        ],
    );
    exports_equal(&img, &export_sha(&img));
    same(&["info", &img]);
    // the name is taken now: EEXIST from both, forced or not
    for prog in [RBD, RBD_RS] {
        let o = run(
            prog,
            &["create", "--image-format", "1", "--size", "4M", &img],
        );
        assert_eq!(code(&o), 17, "{prog}: {}", stderr(&o));
        let o = run_forced(
            prog,
            &["create", "--image-format", "1", "--size", "4M", &img],
        );
        assert_eq!(code(&o), 17, "{prog}: {}", stderr(&o));
    }
    // librbd removes what we created
    ok(RBD, &["rm", "--no-progress", &img]);
    assert!(objects(&p.name)
        .iter()
        .all(|o| !o.starts_with("rb.0.") && !o.ends_with(".rbd")));
}

#[test]
fn remove_format1_image_like_rbd() {
    let p = Pool::new("f1rm");
    let tmp = TmpDir::new("f1rm");
    let img = import_v1(&p, "gone", &sparse_image(5, 9 << 20), &tmp);
    let keep = import_v1(&p, "kept", &sparse_image(6, 1 << 20), &tmp);
    // with a snapshot: ENOTEMPTY from both
    ok(RBD, &["snap", "create", &format!("{img}@s")]);
    same_error(&["rm", "--no-progress", &img], 39);
    ok(RBD, &["snap", "rm", "--no-progress", &format!("{img}@s")]);
    let before = objects(&p.name);
    assert!(before.iter().any(|o| o.starts_with("rb.0.")), "{before:?}");
    ok(RBD_RS, &["rm", "--no-progress", &img]);
    // header, data objects and the directory entry are gone; the other image stays
    let after = objects(&p.name);
    assert!(!after.contains(&"gone.rbd".to_string()), "{after:?}");
    assert!(after.contains(&"kept.rbd".to_string()), "{after:?}");
    assert_eq!(same(&["ls", &p.name]), "kept\n");
    same_error(&["rm", "--no-progress", &img], 2);
    exports_equal(&keep, &sha256(&sparse_image(6, 1 << 20)));
    let prefix = |spec: &str| {
        serde_json::from_str::<serde_json::Value>(&ok(RBD, &["info", "--format", "json", spec]))
            .unwrap()["block_name_prefix"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let kp = prefix(&keep);
    assert!(
        after
            .iter()
            .filter(|o| o.starts_with("rb.0."))
            .all(|o| o.starts_with(&kp)),
        "{after:?}"
    );
}

#[test]
fn format2_only_operations_on_format1_are_refused_like_rbd() {
    let p = Pool::new("f1refuse");
    let tmp = TmpDir::new("f1refuse");
    let img = import_v1(&p, "old", &sparse_image(8, 1 << 20), &tmp);
    let snap = format!("{img}@s");
    ok(RBD, &["snap", "create", &snap]);
    let sha = export_sha(&img);
    // librbd::Operations: "old-format images do not support features" (EINVAL)
    same_error(&["feature", "enable", &img, "exclusive-lock"], 22);
    same_error(&["feature", "disable", &img, "layering"], 22);
    // no trash for format 1 (EOPNOTSUPP)
    same_error(&["trash", "mv", &img], 95);
    // no layering: protect is ENOSYS, and a clone finds no format-2 parent (ENOENT)
    same_error(&["snap", "protect", &snap], 38);
    same_error(&["clone", &snap, &p.img("child")], 2);
    // groups hold images by id: ENOENT
    ok(RBD, &["group", "create", &p.img("g")]);
    same_error(&["group", "image", "add", &p.img("g"), &img], 2);
    // nothing changed
    assert_eq!(same(&["ls", &p.name]), "old\n");
    same(&["info", &img]);
    same(&["snap", "ls", &img]);
    exports_equal(&img, &sha);
}

#[test]
fn snapshots_of_format1_made_and_removed_by_rbd_rs_are_librbds() {
    let p = Pool::new("f1snap");
    let tmp = TmpDir::new("f1snap");
    let data = sparse_image(9, 6 << 20);
    let img = import_v1(&p, "old", &data, &tmp);
    ok(RBD_RS, &["snap", "create", &format!("{img}@ours")]);
    // a taken name: EEXIST from both
    same_error(&["snap", "create", &format!("{img}@ours")], 17);
    // librbd sees it, and it keeps the bytes while the head changes
    same(&["snap", "ls", &img]);
    same(&["snap", "ls", "--format", "json", &img]);
    ok(
        RBD,
        &[
            "bench",
            "--io-type",
            "write",
            "--io-size",
            "65536",
            "--io-total",
            "1M",
            &img,
        ],
    );
    exports_equal(&format!("{img}@ours"), &sha256(&data));
    same(&["info", &format!("{img}@ours")]);
    // librbd's snapshot removed by us, ours removed by librbd
    ok(RBD, &["snap", "create", &format!("{img}@theirs")]);
    ok(
        RBD_RS,
        &["snap", "rm", "--no-progress", &format!("{img}@theirs")],
    );
    assert_eq!(
        same(&["snap", "ls", "--format", "json", &img])
            .matches("\"name\"")
            .count(),
        1
    );
    ok(
        RBD,
        &["snap", "rm", "--no-progress", &format!("{img}@ours")],
    );
    assert_eq!(same(&["snap", "ls", "--format", "json", &img]), "[]\n");
    same_error(&["snap", "rm", "--no-progress", &format!("{img}@ours")], 2);
}

/// resize (grow, shrink with data past the end), rename, snapshot rename, rollback and
/// snap limit on a format-1 image librbd made: done by rbd-rs, read back by rbd, with
/// the header and directory as librbd leaves them after the same commands.
#[test]
fn format1_resize_rename_rollback_by_rbd_rs_are_read_by_rbd() {
    let p = Pool::new("f1ops");
    let tmp = TmpDir::new("f1ops");
    let data = sparse_image(11, 9 << 20);
    let img = import_v1(&p, "old", &data, &tmp);
    ok(RBD_RS, &["snap", "create", &format!("{img}@s1")]);
    // grow: librbd sees the new size, the new tail reads as zeros
    ok(RBD_RS, &["resize", "--no-progress", "--size", "16M", &img]);
    let mut grown = data.clone();
    grown.resize(16 << 20, 0);
    exports_equal(&img, &sha256(&grown));
    same(&["info", &img]);
    // shrink needs --allow-shrink (same refusal), then trims the objects past the end
    same_error(&["resize", "--no-progress", "--size", "5M", &img], 22);
    ok(
        RBD_RS,
        &[
            "resize",
            "--no-progress",
            "--size",
            "5M",
            "--allow-shrink",
            &img,
        ],
    );
    exports_equal(&img, &sha256(&data[..5 << 20]));
    same(&["info", &img]);
    // the object truncated past the new end counts as changed (whole-object diff, du)
    same(&["du", &img]);
    same(&["diff", "--whole-object", "--from-snap", "s1", &img]);
    // the snapshot still has all of the imported bytes
    exports_equal(&format!("{img}@s1"), &sha256(&data));
    // snapshot rename: librbd lists the new name; a taken name is EEXIST for both
    ok(RBD, &["snap", "create", &format!("{img}@s2")]);
    same_error(
        &["snap", "rename", &format!("{img}@s1"), &format!("{img}@s2")],
        17,
    );
    ok(
        RBD_RS,
        &[
            "snap",
            "rename",
            &format!("{img}@s1"),
            &format!("{img}@first"),
        ],
    );
    let snaps = same(&["snap", "ls", &img]);
    assert!(
        snaps.contains("first") && !snaps.contains(" s1 "),
        "{snaps}"
    );
    // snap limit: librbd answers 0 and stores nothing in an old-format header
    let hdr = ok("rados", &["-p", &p.name, "get", "old.rbd", "-"]);
    ok(RBD_RS, &["snap", "limit", "set", "--limit", "5", &img]);
    assert_eq!(ok("rados", &["-p", &p.name, "get", "old.rbd", "-"]), hdr);
    // rollback to the first snapshot: size and bytes come back, as rbd reads them
    ok(
        RBD_RS,
        &["snap", "rollback", "--no-progress", &format!("{img}@first")],
    );
    exports_equal(&img, &sha256(&data));
    same(&["info", &img]);
    // rename: the directory and header move, the data objects stay
    let before: Vec<String> = objects(&p.name)
        .into_iter()
        .filter(|o| o.starts_with("rb."))
        .collect();
    same_error(&["rename", &img, &p.img("old")], 17);
    ok(RBD_RS, &["rename", &img, &p.img("new")]);
    assert_eq!(same(&["ls", &p.name]), "new\n");
    let moved = p.img("new");
    exports_equal(&moved, &sha256(&data));
    same(&["info", &moved]);
    same(&["snap", "ls", &moved]);
    let after: Vec<String> = objects(&p.name)
        .into_iter()
        .filter(|o| o.starts_with("rb."))
        .collect();
    assert_eq!(before, after);
    assert!(objects(&p.name).contains(&"new.rbd".to_string()));
    assert!(!objects(&p.name).contains(&"old.rbd".to_string()));
    // and librbd can rename it back and remove it with its snapshots purged
    ok(RBD, &["rename", &moved, &img]);
    ok(RBD, &["snap", "purge", "--no-progress", &img]);
    ok(RBD, &["rm", "--no-progress", &img]);
    assert_eq!(same(&["ls", &p.name]), "");
}
