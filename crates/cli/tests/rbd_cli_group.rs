//! `rbd-rs group ...` (consistency groups) against the real `rbd` (Ceph 16.2): groups,
//! memberships and group snapshots written by one tool are listed, read, rolled back
//! and removed by the other, with the same `--format json` fields, messages and exit
//! statuses. Fails (never skips) without a test cluster.

mod common;
use common::*;

/// stderr without librbd's log records, which can land inside a message of rbd's.
fn stderr(o: &std::process::Output) -> String {
    oracle_stderr(o)
}

/// Both tools exit with `errno`, and every line rbd-rs prints is one rbd printed too
/// (librbd's own log lines aside). For the commands where 16.2 prints nothing itself.
#[track_caller]
fn same_status(args: &[&str], errno: i32) {
    let a = run(RBD, args);
    let b = run(RBD_RS, args);
    assert_eq!(code(&a), errno, "rbd {args:?}: {}", stderr(&a));
    assert_eq!(code(&b), errno, "rbd-rs {args:?}: {}", stderr(&b));
    for line in stderr(&b).lines() {
        assert!(
            stderr(&a).contains(line),
            "{args:?}: {line:?} not in {:?}",
            stderr(&a)
        );
    }
}

/// Export hash of an image (rbd's own export).
fn hash(spec: &str) -> String {
    let o = run(RBD, &["export", "--no-progress", spec, "-"]);
    assert!(o.status.success(), "export {spec}: {}", stderr(&o));
    sha256(&o.stdout)
}

/// Overwrite part of an image with new data, written by librbd (python3-rbd), and check
/// it changed. Not `rbd bench`: it seeds its data byte and offsets with `time(NULL)`, so
/// two runs within one second write the same bytes at the same places and the second
/// changes nothing (seen: "bench did not change ...").
fn scribble(spec: &str) {
    let before = hash(spec);
    let (pool, image) = spec.split_once('/').expect("POOL/IMAGE");
    let e = env();
    let script = "import os, random, rados, rbd, sys\n\
c = rados.Rados(conffile=sys.argv[1], conf={'keyring': sys.argv[2]})\n\
c.connect()\n\
io = c.open_ioctx(sys.argv[3])\n\
img = rbd.Image(io, sys.argv[4])\n\
n = 64 * 1024\n\
img.write(os.urandom(n), random.randrange(0, img.size() - n, 4096))\n\
img.close(); io.close(); c.shutdown()\n";
    let mut c = std::process::Command::new(oracle("python3"));
    c.args(["-c", script, &e.conf, &e.keyring, pool, image])
        .stdin(std::process::Stdio::null());
    let o = output_bounded(&mut c, command_limit());
    assert!(o.status.success(), "librbd write to {spec}: {}", stderr(&o));
    assert_ne!(hash(spec), before, "the write did not change {spec}");
}

fn make_image(p: &Pool, name: &str, seed: u64) -> String {
    let dir = TmpDir::new("grp");
    let f = dir.path("data");
    std::fs::write(&f, noise(seed, 3 << 20)).unwrap();
    let spec = p.img(name);
    ok(
        RBD_RS,
        &["import", "--no-progress", f.to_str().unwrap(), &spec],
    );
    spec
}

#[test]
fn groups_and_members_match_rbd() {
    let p = Pool::new("grp");
    let pool = p.name.as_str();
    let (ga, gb, gc) = (p.img("a"), p.img("b"), p.img("c"));
    // empty pool: no group directory yet
    assert_eq!(same(&["group", "ls", pool]), "");
    assert_eq!(same(&["group", "ls", "--format", "json", pool]), "[]\n");
    ok(RBD_RS, &["group", "create", &ga]);
    ok(RBD, &["group", "create", "--pool", pool, "--group", "b"]);
    assert_eq!(same(&["group", "ls", pool]), "a\nb\n");
    assert_eq!(
        same(&["group", "list", "--format", "json", "-p", pool]),
        "[\"a\",\"b\"]\n"
    );
    same(&["group", "ls", "--format", "json", "--pretty-format", pool]);
    same_error(&["group", "create", &ga], 17);
    same_error(&["group", "create", &gb], 17);
    same_error(&["group", "create"], 22);
    same_error(&["group", "create", &format!("{pool}/x@y")], 22);

    // members, added by either tool, in each argument form
    for i in ["i1", "i2", "i3", "i4"] {
        ok(RBD_RS, &["create", "--size", "8M", &p.img(i)]);
    }
    ok(RBD_RS, &["group", "image", "add", &ga, &p.img("i1")]);
    ok(
        RBD,
        &[
            "group",
            "image",
            "add",
            "--group-pool",
            pool,
            "--group",
            "a",
            "--image-pool",
            pool,
            "--image",
            "i2",
        ],
    );
    ok(
        RBD_RS,
        &[
            "group",
            "image",
            "add",
            "--group-pool",
            pool,
            "b",
            "--image-pool",
            pool,
            "i3",
        ],
    );
    // adding a member to its own group again is accepted by both
    same(&["group", "image", "add", &ga, &p.img("i2")]);
    assert_eq!(
        same(&["group", "image", "ls", "--format", "json", &ga]),
        format!(
            "[{{\"image\":\"i1\",\"pool\":\"{pool}\",\"namespace\":\"\",\"state\":0}},{{\"image\":\"i2\",\"pool\":\"{pool}\",\"namespace\":\"\",\"state\":0}}]\n"
        )
    );
    same(&["group", "image", "ls", &ga]);
    same(&["group", "image", "list", "--pool", pool, "--group", "b"]);
    same(&[
        "group",
        "image",
        "ls",
        "--format",
        "json",
        "--pretty-format",
        &gb,
    ]);
    // librbd sees the back reference we wrote in the image header
    let info = ok(RBD, &["info", "--format", "json", &p.img("i1")]);
    assert!(info.contains(&format!("\"group\":\"{pool}/a\"")), "{info}");
    assert!(info.contains("\"op_features\":[\"group\"]"), "{info}");
    // and rbd-rs shows it the same way
    same(&["info", "--format", "json", &p.img("i1")]);
    same(&["info", &p.img("i3")]);

    // the errors scripts test for
    same_error(&["group", "image", "add", &gb, &p.img("i1")], 17); // in another group
    same_error(&["group", "image", "add", &p.img("nog"), &p.img("i4")], 2);
    same_error(&["group", "image", "add", &ga, &p.img("noimage")], 2);
    same_error(&["group", "image", "rm", &p.img("nog"), &p.img("i1")], 2);
    same_error(&["group", "image", "rm", &ga, &p.img("noimage")], 2);
    same_error(&["group", "image", "add", &ga], 22);
    same_error(&["rm", &p.img("i1")], 31);
    same_error(&["rm", &p.img("i3")], 31);
    let a = run(RBD, &["rm", &p.img("i1")]);
    let b = run(RBD_RS, &["rm", &p.img("i1")]);
    let want = format!(
        "rbd: error: image belongs to a group {pool}/a\nRemove the image from the group and try again."
    );
    assert!(stderr(&a).contains(&want), "{}", stderr(&a));
    assert!(stderr(&b).contains(&want), "{}", stderr(&b));
    // a missing group lists nothing, successfully, in both
    assert_eq!(same(&["group", "image", "ls", &p.img("nog")]), "");
    assert_eq!(
        same(&["group", "snap", "ls", "--format", "json", &p.img("nog")]),
        "[]\n"
    );
    // removing a group that does not exist succeeds in 16.2
    same(&["group", "rm", &p.img("nog")]);

    // namespaces: the group and the image must share one
    ok(RBD, &["namespace", "create", &format!("{pool}/ns")]);
    let ng = format!("{pool}/ns/g");
    ok(RBD_RS, &["group", "create", &ng]);
    ok(RBD, &["create", "--size", "4M", &format!("{pool}/ns/n1")]);
    same_error(&["group", "image", "add", &ng, &p.img("i4")], 22);
    ok(
        RBD_RS,
        &["group", "image", "add", &ng, &format!("{pool}/ns/n1")],
    );
    assert_eq!(same(&["group", "ls", &format!("{pool}/ns")]), "g\n");
    same(&["group", "image", "ls", "--format", "json", &ng]);
    same(&["group", "image", "ls", &ng]);
    let info = ok(RBD, &["info", "--format", "json", &format!("{pool}/ns/n1")]);
    assert!(
        info.contains(&format!("\"group\":\"{pool}/ns/g\"")),
        "{info}"
    );
    same(&["info", "--format", "json", &format!("{pool}/ns/n1")]);
    same_error(&["group", "ls", &format!("{pool}/nons")], 2);

    // rename by one tool, seen by the other
    ok(RBD_RS, &["group", "rename", &ga, &gc]);
    assert_eq!(same(&["group", "ls", pool]), "b\nc\n");
    same_error(&["group", "rename", &ga, &gc], 2);
    same_error(&["group", "rename", &gb, &gc], 17);
    same_error(&["group", "rename", &gb, "x"], 22); // across pools
    same_error(&["group", "rename", &gb], 22);
    ok(
        RBD,
        &[
            "group",
            "rename",
            "--pool",
            pool,
            "--group",
            "c",
            "--dest-pool",
            pool,
            "--dest-group",
            "a",
        ],
    );
    assert_eq!(same(&["group", "ls", pool]), "a\nb\n");
    let info = ok(RBD_RS, &["group", "image", "ls", &ga]);
    assert_eq!(info, format!("{pool}/i1 \n{pool}/i2 \n"));

    // removing members: our unlink is seen by librbd, and the other way round
    ok(RBD_RS, &["group", "image", "rm", &ga, &p.img("i1")]);
    ok(
        RBD,
        &[
            "group",
            "image",
            "rm",
            "--group-pool",
            pool,
            "--group",
            "a",
            "--image-pool",
            pool,
            "--image",
            "i2",
        ],
    );
    assert_eq!(same(&["group", "image", "ls", &ga]), "");
    let info = ok(RBD, &["info", "--format", "json", &p.img("i1")]);
    assert!(!info.contains("\"group\""), "{info}");
    ok(RBD, &["rm", "--no-progress", &p.img("i1")]);
    ok(RBD_RS, &["rm", "--no-progress", &p.img("i2")]);
    // removing a group with members unlinks them (rbd-rs removes librbd's group)
    ok(RBD_RS, &["group", "rm", &gb]);
    ok(RBD, &["group", "rm", &ng]);
    assert_eq!(same(&["group", "ls", pool]), "a\n");
    assert_eq!(same(&["group", "ls", &format!("{pool}/ns")]), "");
    ok(RBD, &["rm", "--no-progress", &p.img("i3")]);
    ok(RBD_RS, &["rm", "--no-progress", &format!("{pool}/ns/n1")]);
    ok(RBD, &["group", "remove", &ga]);
    assert_eq!(same(&["group", "ls", pool]), "");
}

#[test]
fn group_snapshots_roll_back_across_tools() {
    let p = Pool::new("gsnap");
    let pool = p.name.as_str();
    let x = make_image(&p, "x", 11);
    let y = make_image(&p, "y", 12);
    let g = p.img("g");
    ok(RBD_RS, &["group", "create", &g]);
    ok(RBD_RS, &["group", "image", "add", &g, &x]);
    ok(RBD, &["group", "image", "add", &g, &y]);
    let (x0, y0) = (hash(&x), hash(&y));

    // our group snapshot, as librbd lists it
    ok(RBD_RS, &["group", "snap", "create", &format!("{g}@s1")]);
    assert_eq!(
        same(&["group", "snap", "ls", "--format", "json", &g]),
        "[{\"snapshot\":\"s1\",\"state\":\"ok\"}]\n"
    );
    same(&["group", "snap", "ls", &g]);
    same(&[
        "group",
        "snap",
        "ls",
        "--format",
        "json",
        "--pretty-format",
        &g,
    ]);
    // the member snapshot: GROUP namespace, librbd's name, resolved by both tools
    let snaps = same(&["snap", "ls", "--all", "--format", "json", &x]);
    assert!(snaps.contains("\"name\":\".group."), "{snaps}");
    assert!(
        snaps.contains(&format!(
            "\"namespace\":{{\"type\":\"group\",\"pool\":\"{pool}\",\"group\":\"g\",\"group snap\":\"s1\"}}"
        )),
        "{snaps}"
    );
    same(&["snap", "ls", "--all", &y]);
    // not a user snapshot
    assert_eq!(same(&["snap", "ls", &x]), "");
    // but counted by `rbd info` (librbd's snap_list has every namespace)
    let info = same(&["info", "--format", "json", &x]);
    assert!(info.contains("\"snapshot_count\":1,"), "{info}");

    // librbd rolls back to our group snapshot
    scribble(&x);
    scribble(&y);
    ok(
        RBD,
        &[
            "group",
            "snap",
            "rollback",
            "--no-progress",
            &format!("{g}@s1"),
        ],
    );
    exports_equal(&x, &x0);
    exports_equal(&y, &y0);

    // we roll back to librbd's group snapshot
    scribble(&x);
    scribble(&y);
    let (x1, y1) = (hash(&x), hash(&y));
    ok(
        RBD,
        &[
            "group", "snap", "create", "--pool", pool, "--group", "g", "--snap", "s2",
        ],
    );
    scribble(&x);
    scribble(&y);
    ok(
        RBD_RS,
        &[
            "group",
            "snap",
            "rollback",
            "--no-progress",
            &format!("{g}@s2"),
        ],
    );
    exports_equal(&x, &x1);
    exports_equal(&y, &y1);
    // and back to our own first one
    ok(
        RBD_RS,
        &[
            "group",
            "snap",
            "rollback",
            "--no-progress",
            &format!("{g}@s1"),
        ],
    );
    exports_equal(&x, &x0);
    exports_equal(&y, &y0);

    // rename across tools; listing order is the record order (by id) in both
    ok(
        RBD_RS,
        &["group", "snap", "rename", &format!("{g}@s2"), "s3"],
    );
    ok(
        RBD,
        &[
            "group",
            "snap",
            "rename",
            &format!("{g}@s1"),
            "--dest-snap",
            "s0",
        ],
    );
    assert_eq!(
        same(&["group", "snap", "ls", &g]),
        ok(RBD, &["group", "snap", "ls", &g])
    );
    let l = same(&["group", "snap", "ls", "--format", "json", &g]);
    assert!(
        l.contains("\"s0\"") && l.contains("\"s3\"") && !l.contains("\"s1\""),
        "{l}"
    );

    // errors
    same_status(&["group", "snap", "create", &format!("{g}@s0")], 17);
    same_status(&["group", "snap", "create", &format!("{pool}/nog@s")], 2);
    same_error(&["group", "snap", "create", &g], 22);
    same_error(&["group", "snap", "create", &format!("{g}@a/b")], 22);
    same_error(&["group", "snap", "rename", &format!("{g}@s0"), "s3"], 17);
    same_error(&["group", "snap", "rename", &format!("{g}@s0"), "s0"], 17);
    same_error(&["group", "snap", "rename", &format!("{g}@nos"), "s9"], 2);
    same_error(&["group", "snap", "rename", &format!("{g}@s0")], 22);
    same_error(&["group", "snap", "rm", &format!("{g}@nos")], 2);
    same_error(&["group", "snap", "rm", &format!("{pool}/nog@s0")], 2);
    same_error(
        &[
            "group",
            "snap",
            "rollback",
            "--no-progress",
            &format!("{g}@nos"),
        ],
        2,
    );
    same_error(&["group", "snap", "rollback", &g], 22);
    // a member with group snapshots is refused like one with snapshots
    same_error(&["rm", &x], 39);

    // librbd removes our snapshot s0 (the one rbd-rs made as s1) with its member
    // snapshots; we remove librbd's s3
    ok(RBD, &["group", "snap", "rm", &format!("{g}@s0")]);
    let snaps = ok(RBD_RS, &["snap", "ls", "--all", "--format", "json", &x]);
    assert!(
        !snaps.contains("\"s0\"") && snaps.contains("\"s3\""),
        "{snaps}"
    );
    ok(RBD_RS, &["group", "snap", "remove", &format!("{g}@s3")]);
    assert_eq!(same(&["snap", "ls", "--all", &x]), "");
    assert_eq!(same(&["snap", "ls", "--all", &y]), "");
    assert_eq!(
        same(&["group", "snap", "ls", "--format", "json", &g]),
        "[]\n"
    );

    // removing a group with snapshots takes the member snapshots with it, both ways
    ok(RBD_RS, &["group", "snap", "create", &format!("{g}@z")]);
    ok(RBD, &["group", "rm", &g]);
    assert_eq!(same(&["snap", "ls", "--all", &x]), "");
    let h = p.img("h");
    ok(RBD, &["group", "create", &h]);
    ok(RBD, &["group", "image", "add", &h, &x]);
    ok(RBD, &["group", "snap", "create", &format!("{h}@z")]);
    assert!(ok(RBD, &["snap", "ls", "--all", &x]).contains("group ("));
    ok(RBD_RS, &["group", "rm", &h]);
    assert_eq!(same(&["snap", "ls", "--all", &x]), "");
    assert_eq!(same(&["group", "ls", pool]), "");
    // nothing holds the images any more
    ok(RBD, &["rm", "--no-progress", &x]);
    ok(RBD_RS, &["rm", "--no-progress", &y]);
}

/// librbd holding `pool/image` open with its exclusive lock (it wrote once) until
/// dropped; it hands the lock over when asked, as any librbd client does.
struct LockHolder(std::process::Child);

impl LockHolder {
    fn open(pool: &str, image: &str) -> LockHolder {
        use std::io::BufRead;
        let e = env();
        let script = "import rados, rbd, sys\n\
c = rados.Rados(conffile=sys.argv[1], conf={'keyring': sys.argv[2]})\n\
c.connect()\n\
io = c.open_ioctx(sys.argv[3])\n\
img = rbd.Image(io, sys.argv[4])\n\
img.write(b'held by librbd', 0)\n\
print('locked', flush=True)\n\
sys.stdin.read()\n\
img.close(); io.close(); c.shutdown()\n";
        let mut child = std::process::Command::new(oracle("python3"))
            .args(["-c", script, &e.conf, &e.keyring, pool, image])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 with the rbd module");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("holder output");
        assert_eq!(
            line.trim(),
            "locked",
            "librbd could not write {pool}/{image}"
        );
        LockHolder(child)
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

#[test]
fn group_snapshot_of_members_locked_by_librbd() {
    let p = Pool::new("glock");
    let pool = p.name.as_str();
    let x = make_image(&p, "x", 21);
    let y = make_image(&p, "y", 22);
    let g = p.img("g");
    ok(RBD_RS, &["group", "create", &g]);
    ok(RBD_RS, &["group", "image", "add", &g, &x]);
    ok(RBD_RS, &["group", "image", "add", &g, &y]);
    let holder = LockHolder::open(pool, "x");
    let lock = ok(RBD, &["lock", "ls", "--format", "json", &x]);
    assert!(
        lock.contains("auto "),
        "librbd does not own the lock: {lock}"
    );
    let (x0, y0) = (hash(&x), hash(&y));
    // the snapshot of the locked member is taken through its owner
    ok(RBD_RS, &["group", "snap", "create", &format!("{g}@s")]);
    assert_eq!(
        same(&["group", "snap", "ls", "--format", "json", &g]),
        "[{\"snapshot\":\"s\",\"state\":\"ok\"}]\n"
    );
    let snaps = ok(RBD, &["snap", "ls", "--all", "--format", "json", &x]);
    assert!(snaps.contains("\"group snap\":\"s\""), "{snaps}");
    scribble(&y);
    // the rollback takes the lock over from librbd
    ok(
        RBD_RS,
        &[
            "group",
            "snap",
            "rollback",
            "--no-progress",
            &format!("{g}@s"),
        ],
    );
    drop(holder);
    exports_equal(&x, &x0);
    exports_equal(&y, &y0);
    ok(RBD, &["group", "rm", &g]);
    assert_eq!(same(&["snap", "ls", "--all", &x]), "");
}
