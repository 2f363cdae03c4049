//! `rbd-rs image-meta`, `namespace` and `trash` against the real `rbd` (Ceph 16.2):
//! the same stdout, stderr lines scripts match and exit statuses, and state written by
//! one tool read back by the other. Fails (never skips) without a test cluster.

mod common;
use common::*;

/// The id `trash ls` prints for image `name` (both tools list the same entries).
fn trash_id(pool: &str, name: &str) -> String {
    let o = ok(RBD, &["trash", "ls", "--all", pool]);
    o.lines()
        .find_map(|l| {
            let (id, n) = l.split_once(' ')?;
            (n == name).then(|| id.to_string())
        })
        .unwrap_or_else(|| panic!("{name} not in the trash of {pool}: {o}"))
}

/// stderr without librbd's log records, which can land inside a message of rbd's.
fn stderr(o: &std::process::Output) -> String {
    oracle_stderr(o)
}

#[test]
fn image_meta_matches_rbd() {
    let p = Pool::new("meta");
    let img = p.img("m");
    ok(RBD, &["create", "--size", "4M", &img]);
    // empty: the same sentence, and no JSON at all
    assert_eq!(
        same(&["image-meta", "list", &img]),
        "There are 0 metadata on this image.\n"
    );
    assert_eq!(same(&["image-meta", "list", "--format", "json", &img]), "");
    // written by one tool, read by the other
    ok(RBD, &["image-meta", "set", &img, "csi.volname", "pvc-1"]);
    ok(
        RBD_RS,
        &["image-meta", "set", &img, "csi.owner", "ns with spaces"],
    );
    assert_eq!(
        ok(RBD_RS, &["image-meta", "get", &img, "csi.volname"]),
        "pvc-1\n"
    );
    assert_eq!(
        ok(RBD, &["image-meta", "get", &img, "csi.owner"]),
        "ns with spaces\n"
    );
    let one = same(&["image-meta", "ls", &img]);
    assert!(
        one.starts_with("There are 2 metadata on this image:\n\nKey"),
        "{one}"
    );
    same(&["image-meta", "list", "--format", "json", &img]);
    same(&[
        "image-meta",
        "list",
        "--format",
        "json",
        "--pretty-format",
        &img,
    ]);
    // conf_ keys are validated like librbd's
    ok(
        RBD_RS,
        &["image-meta", "set", &img, "conf_rbd_qos_iops_limit", "100"],
    );
    assert_eq!(
        ok(RBD, &["image-meta", "get", &img, "conf_rbd_qos_iops_limit"]),
        "100\n"
    );
    same_error(&["image-meta", "set", &img, "conf_foo", "1"], 22);
    same_error(&["image-meta", "set", &img, "conf_rbd_cache", "maybe"], 22);
    // removed by one, gone for the other; a single key says "metadatum"
    ok(RBD_RS, &["image-meta", "remove", &img, "csi.volname"]);
    ok(RBD, &["image-meta", "rm", &img, "conf_rbd_qos_iops_limit"]);
    assert!(same(&["image-meta", "list", &img]).starts_with("There is 1 metadatum on this image:"));
    // the errors scripts test for
    for args in [
        vec!["image-meta", "get", img.as_str(), "csi.volname"],
        vec!["image-meta", "remove", img.as_str(), "nokey"],
        vec!["image-meta", "get", &format!("{}/nope", p.name), "k"],
        vec!["image-meta", "list", &format!("{}/nope", p.name)],
    ] {
        let a = run(RBD, &args);
        let b = run(RBD_RS, &args);
        assert_eq!(code(&a), 2, "rbd {args:?}");
        assert_eq!(code(&b), 2, "rbd-rs {args:?}: {}", stderr(&b));
        // the tool's own lines (librbd's log lines aside)
        for line in stderr(&b).lines() {
            assert!(
                stderr(&a).contains(line),
                "{args:?}: {line:?} not in {:?}",
                stderr(&a)
            );
        }
    }
    same_error(&["image-meta", "set", &img, "k"], 22);
    same_error(&["image-meta", "set", &img], 22);
    same_error(&["image-meta", "get", &img], 22);
}

#[test]
fn namespaces_match_rbd() {
    let p = Pool::new("ns");
    assert_eq!(same(&["namespace", "ls", &p.name]), "");
    assert_eq!(
        same(&["namespace", "ls", "--format", "json", &p.name]),
        "[]\n"
    );
    ok(RBD_RS, &["namespace", "create", &format!("{}/a", p.name)]);
    ok(
        RBD,
        &["namespace", "create", "--pool", &p.name, "--namespace", "b"],
    );
    assert_eq!(same(&["namespace", "list", &p.name]), "NAME\na   \nb   \n");
    same(&[
        "namespace",
        "ls",
        "--format",
        "json",
        "--pretty-format",
        &p.name,
    ]);
    same_error(&["namespace", "create", &format!("{}/a", p.name)], 17);
    same_error(&["namespace", "create", &p.name], 22);
    // images in a namespace: POOL/NS/IMAGE everywhere, created by one tool, used by
    // the other
    let img = format!("{}/a/vol", p.name);
    ok(RBD_RS, &["create", "--size", "8M", &img]);
    ok(RBD, &["image-meta", "set", &img, "k", "v"]);
    assert_eq!(ok(RBD_RS, &["image-meta", "get", &img, "k"]), "v\n");
    assert_eq!(same(&["ls", &format!("{}/a", p.name)]), "vol\n");
    same(&["info", "--format", "json", &img]);
    same_error(&["namespace", "rm", &format!("{}/a", p.name)], 16);
    same_error(&["namespace", "rm", &format!("{}/zz", p.name)], 2);
    same_error(&["ls", &format!("{}/zz", p.name)], 2);
    // a namespace holding only trashed images is busy too
    ok(RBD_RS, &["trash", "mv", &img]);
    same_error(&["namespace", "rm", &format!("{}/a", p.name)], 16);
    let id = trash_id(&format!("{}/a", p.name), "vol");
    ok(
        RBD_RS,
        &[
            "trash",
            "rm",
            "--no-progress",
            &format!("{}/a/{id}", p.name),
        ],
    );
    ok(RBD_RS, &["namespace", "rm", &format!("{}/a", p.name)]);
    ok(RBD, &["namespace", "rm", &format!("{}/b", p.name)]);
    assert_eq!(same(&["namespace", "ls", &p.name]), "");
}

#[test]
fn trash_matches_rbd() {
    let p = Pool::new("trash");
    let pool = p.name.as_str();
    let data = sparse_image(7, 12 << 20);
    let tmp = TmpDir::new("trash");
    let file = tmp.path("img");
    std::fs::write(&file, &data).unwrap();
    let want = sha256(&data);
    let f = file.to_str().unwrap();
    ok(RBD, &["import", "--no-progress", f, &p.img("x")]);
    ok(RBD_RS, &["import", "--no-progress", f, &p.img("y")]);
    assert_eq!(same(&["trash", "ls", pool]), "");
    assert_eq!(same(&["trash", "ls", "--format", "json", pool]), "[]\n");
    assert_eq!(same(&["trash", "ls", "-l", pool]), "");
    // moved by one tool, listed alike, restored by the other, data intact
    ok(RBD_RS, &["trash", "mv", &p.img("x")]);
    ok(
        RBD,
        &["trash", "mv", &p.img("y"), "--expires-at", "+1 hour"],
    );
    same(&["trash", "ls", pool]);
    same(&["trash", "ls", "--format", "json", pool]);
    let long = same(&["trash", "ls", "--long", pool]);
    assert!(
        long.contains("protected until") && long.contains("expired at"),
        "{long}"
    );
    same(&[
        "trash",
        "ls",
        "-l",
        "--format",
        "json",
        "--pretty-format",
        pool,
    ]);
    same(&["trash", "ls", "--all", pool]);
    same_error(&["info", &p.img("x")], 2);
    let x = trash_id(pool, "x");
    let y = trash_id(pool, "y");
    ok(RBD, &["trash", "restore", &format!("{pool}/{x}")]);
    exports_equal(&p.img("x"), &want);
    ok(
        RBD_RS,
        &[
            "trash",
            "restore",
            "--pool",
            pool,
            "--image-id",
            &y,
            "--image",
            "y2",
        ],
    );
    exports_equal(&p.img("y2"), &want);
    same_error(&["trash", "restore", &format!("{pool}/{y}")], 2);
    // restoring onto a taken name: EEXIST, entry kept
    ok(RBD_RS, &["trash", "mv", &p.img("y2")]);
    ok(RBD, &["create", "--size", "1M", &p.img("y2")]);
    same_error(&["trash", "restore", &format!("{pool}/{y}")], 17);
    same(&["trash", "ls", pool]);
    ok(RBD, &["rm", "--no-progress", &p.img("y2")]);
    // deferment: EPERM without --force
    ok(
        RBD_RS,
        &["trash", "mv", "--expires-at", "+1 day", &p.img("x")],
    );
    let xs = format!("{pool}/{x}");
    let rm = ["trash", "rm", xs.as_str()];
    let (a, b) = (run(RBD, &rm), run(RBD_RS, &rm));
    assert_eq!((code(&a), code(&b)), (1, 1), "{}", stderr(&b));
    assert!(stderr(&b).contains("Deferment time has not expired, please use --force"));
    same_error(&["trash", "mv", &p.img("gone")], 2);
    same_error(&["trash", "rm", &format!("{pool}/nosuchid")], 2);
    same_error(&["trash", "rm", pool], 2);
    same_error(&["trash", "restore"], 22);
    // purge takes the expired entries only (y), keeps the protected one (x)
    ok(RBD_RS, &["trash", "purge", "--no-progress", pool]);
    assert_eq!(ok(RBD, &["trash", "ls", pool]), format!("{x} x\n"));
    // ... and with --expired-before later than its deferment end, that one too
    ok(
        RBD_RS,
        &[
            "trash",
            "purge",
            "--no-progress",
            "--expired-before",
            "+2 days",
            pool,
        ],
    );
    assert_eq!(same(&["trash", "ls", "--all", pool]), "");
    assert_eq!(same(&["ls", pool]), "");
}

#[test]
fn trash_busy_and_snapshots_match_rbd() {
    let p = Pool::new("trashbusy");
    let pool = p.name.as_str();
    for (tool, name) in [(RBD, "h"), (RBD_RS, "h2")] {
        ok(
            RBD,
            &[
                "create",
                "--size",
                "4M",
                "--image-feature",
                "layering",
                &p.img(name),
            ],
        );
        ok(RBD, &["snap", "create", &p.img(&format!("{name}@s"))]);
        // an image with snapshots, held open by librbd, still moves (trash mv checks
        // neither)
        let holder = Holder::open(pool, name);
        ok(tool, &["trash", "mv", &p.img(name)]);
        let id = trash_id(pool, name);
        let rm = ["trash", "rm", "--no-progress", &format!("{pool}/{id}")].map(String::from);
        let rm: Vec<&str> = rm.iter().map(String::as_str).collect();
        // ... but is not removed: snapshots are checked first
        same_error(&rm, 39);
        same(&["trash", "ls", "-l", pool]);
        ok(RBD_RS, &["trash", "restore", &format!("{pool}/{id}")]);
        same(&["snap", "ls", &p.img(name)]);
        ok(
            RBD,
            &["snap", "rm", "--no-progress", &p.img(&format!("{name}@s"))],
        );
        ok(tool, &["trash", "mv", &p.img(name)]);
        // ... then watchers
        same_error(&rm, 16);
        drop(holder);
        ok(RBD_RS, &rm);
    }
    assert_eq!(same(&["trash", "ls", "--all", pool]), "");
}

#[test]
fn rm_through_the_trash_like_rbd() {
    let p = Pool::new("rmtrash");
    let pool = p.name.as_str();
    for (tool, name) in [(RBD, "a"), (RBD_RS, "b")] {
        ok(RBD, &["create", "--size", "4M", &p.img(name)]);
        ok(
            tool,
            &[
                "rm",
                "--no-progress",
                "--rbd_move_to_trash_on_remove=true",
                "--rbd-move-to-trash-on-remove-expire-seconds",
                "3600",
                &p.img(name),
            ],
        );
    }
    // both moved to the trash, both protected for an hour
    let long = same(&["trash", "ls", "-l", pool]);
    assert_eq!(long.matches("protected until").count(), 2, "{long}");
    assert_eq!(same(&["ls", pool]), "");
    // an explicit false still removes outright
    ok(RBD, &["create", "--size", "4M", &p.img("c")]);
    ok(
        RBD_RS,
        &[
            "rm",
            "--no-progress",
            "--rbd_move_to_trash_on_remove",
            "false",
            &p.img("c"),
        ],
    );
    assert_eq!(same(&["trash", "ls", pool]).lines().count(), 2);
    same_error(
        &["rm", "--rbd_move_to_trash_on_remove=true", &p.img("nope")],
        2,
    );
    ok(
        RBD_RS,
        &[
            "trash",
            "purge",
            "--no-progress",
            "--expired-before",
            "+2 hours",
            pool,
        ],
    );
    assert_eq!(same(&["trash", "ls", "--all", pool]), "");
}

/// `--image-id` where rbd takes it: info and the snap commands open the image by id,
/// also while it is in the trash (where it has no name in the directory).
#[test]
fn image_id_option_matches_rbd() {
    let p = Pool::new("imgid");
    let img = p.img("byid");
    ok(RBD, &["create", "--size", "4M", &img]);
    ok(RBD, &["snap", "create", &format!("{img}@s1")]);
    ok(RBD, &["snap", "create", &format!("{img}@s2")]);
    let v: serde_json::Value =
        serde_json::from_str(&ok(RBD, &["info", "--format", "json", &img])).unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    for round in ["named", "in the trash"] {
        if round == "in the trash" {
            ok(RBD, &["trash", "mv", &img]);
        }
        same(&["info", "--image-id", &id, "-p", &p.name]);
        same(&["info", "--image-id", &id, "-p", &p.name, "--format", "json"]);
        same(&[
            "snap",
            "ls",
            "--image-id",
            &id,
            "-p",
            &p.name,
            "--format",
            "json",
        ]);
        same_error(&["info", "--image-id", &id, &img], 22);
        same_error(&["info", "--image-id", "0123456789ab", "-p", &p.name], 2);
    }
    // commands without --image-id reject it as an unknown option (status 1), as rbd
    for cmd in [&["du"][..], &["status"], &["export"]] {
        let mut args = cmd.to_vec();
        args.extend(["--image-id", &id, "-p", &p.name]);
        same_error(&args, 1);
    }
    // `children --image-id`: Reef's rbd takes it, Pacific's refuses it as unknown;
    // rbd-rs accepts the superset, so a script written for either release works
    let parent = p.img("kidsparent");
    ok(RBD, &["create", "--size", "4M", &parent]);
    ok(RBD, &["snap", "create", &format!("{parent}@s")]);
    ok(RBD, &["snap", "protect", &format!("{parent}@s")]);
    ok(RBD, &["clone", &format!("{parent}@s"), &p.img("kid")]);
    let v: serde_json::Value =
        serde_json::from_str(&ok(RBD, &["info", "--format", "json", &parent])).unwrap();
    let pid = v["id"].as_str().unwrap().to_string();
    let by_name = ok(RBD, &["children", &format!("{parent}@s")]);
    assert_eq!(by_name, format!("{}\n", p.img("kid")));
    let by_id = ["children", "--image-id", &pid, "-p", &p.name, "--snap", "s"];
    assert_eq!(ok(RBD_RS, &by_id), by_name);
    if std::env::var("CEPH_TEST_RELEASE").as_deref() == Ok("pacific") {
        let r = run(RBD, &by_id);
        assert_eq!(code(&r), 1, "{}", String::from_utf8_lossy(&r.stderr));
    } else {
        same(&by_id);
        same(&["children", "--image-id", &pid, "-p", &p.name]);
    }
    // a snapshot of the trashed image removed by id, seen by rbd
    ok(
        RBD_RS,
        &[
            "snap",
            "rm",
            "--image-id",
            &id,
            "-p",
            &p.name,
            "--snap",
            "s1",
        ],
    );
    let left = ok(RBD, &["snap", "ls", "--image-id", &id, "-p", &p.name]);
    assert!(!left.contains("s1") && left.contains("s2"), "{left}");
    ok(RBD_RS, &["snap", "purge", "--image-id", &id, "-p", &p.name]);
    assert_eq!(
        ok(RBD, &["snap", "ls", "--image-id", &id, "-p", &p.name]),
        ""
    );
    ok(RBD, &["trash", "restore", "-p", &p.name, &id]);
}
