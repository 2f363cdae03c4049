//! Behaviour that used to differ from `rbd` (issue 12), each checked against the real
//! tool: unprotecting a snapshot with clone-v2 children, cloning with read-only access
//! to the parent's pool, `pool init` exit statuses, `import --image POOL/NAME`.

mod common;
use common::*;

#[test]
fn unprotect_with_clone_v2_children_like_rbd() {
    let p = Pool::new("unprot");
    ok(
        RBD,
        &[
            "create",
            "--size",
            "4M",
            "--image-feature",
            "layering",
            &p.img("par"),
        ],
    );
    ok(RBD, &["snap", "create", &p.img("par@s")]);
    for (tool, fmt) in [(RBD, "2"), (RBD_RS, "2"), (RBD, "1"), (RBD_RS, "1")] {
        let child = p.img(&format!(
            "c-{fmt}-{}",
            if tool == RBD { "rbd" } else { "rs" }
        ));
        ok(RBD, &["snap", "protect", &p.img("par@s")]);
        ok(
            RBD,
            &[
                "clone",
                "--rbd-default-clone-format",
                fmt,
                &p.img("par@s"),
                &child,
            ],
        );
        let want = if fmt == "2" { 0 } else { 16 };
        let o = run(tool, &["snap", "unprotect", &p.img("par@s")]);
        assert_eq!(
            code(&o),
            want,
            "{tool} fmt {fmt}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        if fmt == "1" {
            same_error(&["snap", "unprotect", &p.img("par@s")], 16);
            ok(RBD, &["flatten", "--no-progress", &child]);
            ok(RBD_RS, &["snap", "unprotect", &p.img("par@s")]);
        }
        same(&["snap", "ls", "--format", "json", &p.img("par")]);
    }
    // clone-v2 children keep reading through the unprotected snapshot
    same(&["children", &p.img("par@s")]);
}

/// A cephx user with `profile rbd-read-only` on one pool and `profile rbd` on another,
/// removed on drop.
struct User {
    name: String,
    keyring: TmpDir,
}

impl User {
    fn new(ro_pool: &str, rw_pool: &str) -> User {
        let name = unique("ro").replace('-', "");
        let keyring = TmpDir::new("keyring");
        let k = keyring.path("keyring");
        ok(
            "ceph",
            &[
                "auth",
                "get-or-create",
                &format!("client.{name}"),
                "mon",
                "profile rbd",
                "osd",
                &format!("profile rbd-read-only pool={ro_pool}, profile rbd pool={rw_pool}"),
                "-o",
                k.to_str().unwrap(),
            ],
        );
        User { name, keyring }
    }

    fn run(&self, prog: &str, args: &[&str]) -> std::process::Output {
        let e = env();
        let bin = if prog == RBD_RS {
            prog.into()
        } else {
            oracle(prog)
        };
        std::process::Command::new(bin)
            .args(["--conf", &e.conf, "--id", &self.name, "--keyring"])
            .arg(self.keyring.path("keyring"))
            .args(args)
            .env_remove("CEPH_ARGS")
            .output()
            .expect("run")
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = run("ceph", &["auth", "rm", &format!("client.{}", self.name)]);
    }
}

#[test]
fn clone_with_read_only_parent_pool_like_rbd() {
    let parent = Pool::new("ropar");
    let child = Pool::new("rochild");
    ok(
        RBD,
        &[
            "create",
            "--size",
            "4M",
            "--image-feature",
            "layering",
            &parent.img("p"),
        ],
    );
    ok(RBD, &["snap", "create", &parent.img("p@s")]);
    ok(RBD, &["snap", "protect", &parent.img("p@s")]);
    let u = User::new(&parent.name, &child.name);
    for (tool, fmt) in [(RBD, "2"), (RBD_RS, "2"), (RBD, "1"), (RBD_RS, "1")] {
        let c = child.img(&format!("c{fmt}{}", if tool == RBD { "a" } else { "b" }));
        let o = u.run(
            tool,
            &[
                "clone",
                "--rbd-default-clone-format",
                fmt,
                &parent.img("p@s"),
                &c,
            ],
        );
        assert!(
            o.status.success(),
            "{tool} clone v{fmt}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // the read-only user reads the clone through the parent
        let o = u.run(tool, &["export", "--no-progress", &c, "-"]);
        assert!(
            o.status.success(),
            "{tool} export: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.stdout.len(), 4 << 20);
    }
    assert_eq!(same(&["children", &parent.img("p@s")]).lines().count(), 4);
    // writing the parent's pool stays refused for both
    let (a, b) = (
        u.run(RBD, &["create", "--size", "1M", &parent.img("x")]),
        u.run(RBD_RS, &["create", "--size", "1M", &parent.img("y")]),
    );
    assert_eq!(code(&a), 1, "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(code(&b), code(&a), "{}", String::from_utf8_lossy(&b.stderr));
}

#[test]
fn pool_init_exit_statuses_like_rbd() {
    let p = Pool::new("pinit");
    // already initialised: 0 for both, repeatedly, with and without --force
    same(&["pool", "init", &p.name]);
    same(&["pool", "init", "--force", &p.name]);
    // another application: message, still 0; --force adds rbd
    let other = unique("pinitfs");
    ok("ceph", &["osd", "pool", "create", &other, "8", "8"]);
    let _g = Pool {
        name: other.clone(),
    };
    ok(
        "ceph",
        &["osd", "pool", "application", "enable", &other, "cephfs"],
    );
    for tool in [RBD, RBD_RS] {
        let o = run(tool, &["pool", "init", &other]);
        assert_eq!(code(&o), 0, "{tool}");
        assert!(
            String::from_utf8_lossy(&o.stderr)
                .contains("rbd: pool already registered to a different application."),
            "{tool}"
        );
    }
    same(&["pool", "init", "--force", &other]);
    let apps = ok("ceph", &["osd", "pool", "application", "get", &other]);
    assert!(apps.contains("rbd") && apps.contains("cephfs"), "{apps}");
    same_error(&["pool", "init", "nosuchpool-pinit"], 2);
}

#[test]
fn import_image_option_takes_a_spec_like_rbd() {
    let p = Pool::new("impimg");
    let tmp = TmpDir::new("impimg");
    let f = tmp.path("data");
    let data = noise(3, 1 << 20);
    std::fs::write(&f, &data).unwrap();
    let f = f.to_str().unwrap();
    let want = sha256(&data);
    for (tool, name) in [(RBD, "a"), (RBD_RS, "b")] {
        let o = run(
            tool,
            &["import", "--no-progress", "--image", &p.img(name), f],
        );
        assert!(
            o.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("rbd: --image is deprecated, use --dest")
        );
        exports_equal(&p.img(name), &want);
    }
    for (tool, name) in [(RBD, "c"), (RBD_RS, "d")] {
        ok(
            tool,
            &["import", "--no-progress", "-p", &p.name, "--image", name, f],
        );
        exports_equal(&p.img(name), &want);
    }
    same_error(
        &[
            "import",
            "--no-progress",
            "--image",
            &format!("{}/ns/x", p.name),
            f,
        ],
        22,
    );
    same_error(
        &["import", "--no-progress", "--image", &p.img("x@s"), f],
        22,
    );
    assert_eq!(same(&["ls", &p.name]), "a\nb\nc\nd\n");
}

#[test]
fn global_options_scripts_pass_are_accepted() {
    let p = Pool::new("glob");
    ok(RBD, &["create", "--size", "1M", &p.img("g")]);
    let tmp = TmpDir::new("glob");
    let log = tmp.path("rbd.log");
    let log = log.to_str().unwrap();
    let e = env();
    // both tools accept the same global options and list the same images
    let args = [
        "--log-file",
        log,
        "--debug-rbd",
        "20",
        "--debug_ms=1/5",
        "--no-log-to-stderr",
        "--cluster",
        "ceph",
        "-k",
        e.keyring.as_str(),
        "--id",
        "admin",
        "--rbd_cache=false",
        "ls",
        p.name.as_str(),
    ];
    assert_eq!(same(&args), "g\n");
    // rbd-rs wrote its debug log where it was told to
    assert!(std::fs::metadata(log).map(|m| m.len() > 0).unwrap_or(false));
    same(&[
        "--name",
        "client.admin",
        "--user",
        "admin",
        "info",
        &p.img("g"),
    ]);
    // xml output as rbd prints it (rbd_cli_xml covers every command)
    same(&["ls", "--format", "xml", &p.name]);
    // `--rbd_*` names that are no librbd option: refused by both (exit 1); a real
    // librbd option rbd-rs does not act on: accepted, with a warning, never silently
    for args in [
        ["ls", "--rbd_no_such_option=1"],
        ["ls", "--rbd-no-such-option=1"],
    ] {
        let mut v = args.to_vec();
        v.push(&p.name);
        let (a, b) = (run(RBD, &v), run(RBD_RS, &v));
        assert_eq!((code(&a), code(&b)), (1, 1), "{v:?}");
    }
    let o = run(RBD_RS, &["ls", "--rbd_readahead_max_bytes=0", &p.name]);
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stderr).contains("rbd_readahead_max_bytes has no effect"));
    // an option rbd does not know is refused by both, the same way
    let (a, b) = (
        run(RBD, &["ls", "--bogus-opt", &p.name]),
        run(RBD_RS, &["ls", "--bogus-opt", &p.name]),
    );
    assert_eq!(code(&a), 1);
    assert_eq!(code(&b), 1);
}

#[test]
fn help_command_like_rbd() {
    for words in [
        vec!["help", "trash", "mv"],
        vec!["help", "image-meta", "set"],
        vec!["help", "lock", "add"],
    ] {
        let (a, b) = (run(RBD, &words), run(RBD_RS, &words));
        assert_eq!((code(&a), code(&b)), (0, 0), "{words:?}");
        let first = |o: &std::process::Output| {
            // `usage: rbd <command words>` opens both
            text(o)
                .split_whitespace()
                .take(4)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            first(&a).replace("trash mv", "trash move"),
            first(&b),
            "{words:?}"
        );
        if words.contains(&"mv") {
            assert!(text(&b).contains("--expires-at") && text(&a).contains("--expires-at"));
        }
    }
    let (a, b) = (
        run(RBD, &["help", "nosuchcmd"]),
        run(RBD_RS, &["help", "nosuchcmd"]),
    );
    assert_eq!(code(&a), 1);
    assert_eq!(code(&b), 1);
}

/// `rbd watch` and `rbd-rs watch` on one image see the same notifications (a snapshot
/// created by librbd sends header updates), print the same line for each (cookies aside)
/// and exit 0 when a line arrives on stdin.
#[test]
fn watch_prints_notifications_like_rbd() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let p = Pool::new("watch");
    let img = p.img("w");
    ok(RBD, &["create", "--size", "4M", &img]);
    let e = env();
    let spawn = |prog: &str| {
        let exe = if prog == RBD_RS {
            std::path::PathBuf::from(prog)
        } else {
            oracle(prog)
        };
        std::process::Command::new(exe)
            .args(["--conf", &e.conf, "--keyring", &e.keyring, "watch", &img])
            .env_remove("CEPH_ARGS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn watch")
    };
    let mut kids = [spawn(RBD), spawn(RBD_RS)];
    let mut outs = Vec::new();
    for k in kids.iter_mut() {
        let mut r = BufReader::new(k.stdout.take().unwrap());
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        assert_eq!(l, "press enter to exit...\n");
        outs.push(r);
    }
    ok(RBD, &["snap", "create", &format!("{img}@s1")]);
    ok(RBD, &["resize", "--size", "8M", &img]);
    // wait until both printed the same number of notifications (at least 2)
    let mask = |l: &str| -> String {
        l.split(", ")
            .filter(|f| !f.starts_with("cookie="))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    for (i, r) in outs.iter_mut().enumerate() {
        while lines[i].len() < 2 {
            let mut l = String::new();
            assert!(r.read_line(&mut l).unwrap() > 0, "watch {i} ended early");
            assert!(l.starts_with("w received notification: notify_id="), "{l}");
            lines[i].push(mask(l.trim_end()));
        }
    }
    assert_eq!(lines[0], lines[1], "rbd vs rbd-rs notifications");
    for k in kids.iter_mut() {
        k.stdin.take().unwrap().write_all(b"\n").unwrap();
    }
    for (k, prog) in kids.iter_mut().zip([RBD, RBD_RS]) {
        let st = k.wait().unwrap();
        assert!(st.success(), "{prog} watch exit {st:?}");
    }
    // our watch is gone from the header
    let st = ok(RBD, &["status", "--format", "json", &img]);
    assert!(st.contains("\"watchers\":[]"), "{st}");
}

/// `create --thick-provision`: the whole image allocated (written with zeros) as rbd
/// does it: the same `rbd du` figures, zeros on read, a clean object map.
#[test]
fn thick_provision_allocates_like_rbd() {
    let p = Pool::new("thick");
    for (prog, name) in [(RBD, "by-rbd"), (RBD_RS, "by-us")] {
        ok(
            prog,
            &[
                "create",
                "--thick-provision",
                "--no-progress",
                "--size",
                "10M",
                &p.img(name),
            ],
        );
    }
    let du = |name: &str| -> (u64, u64) {
        let v: serde_json::Value =
            serde_json::from_str(&ok(RBD, &["du", "--format", "json", &p.img(name)])).unwrap();
        let i = &v["images"][0];
        (
            i["provisioned_size"].as_u64().unwrap(),
            i["used_size"].as_u64().unwrap(),
        )
    };
    assert_eq!(du("by-us"), du("by-rbd"));
    assert_eq!(du("by-us"), (10 << 20, 10 << 20));
    let zeros = sha256(&vec![0u8; 10 << 20]);
    exports_equal(&p.img("by-us"), &zeros);
    ok(
        RBD,
        &["object-map", "check", "--no-progress", &p.img("by-us")],
    );
}
