//! `rados-rs` against the real `rados`, `ceph` and `crushtool` on the test cluster: same
//! output for what scripts parse, same exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

#[path = "../../rados/tests/common/oracle.rs"]
mod oracle;
use oracle::oracle;

fn cluster_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("CEPH_TEST_CLUSTER").unwrap_or_else(|_| "/tmp/ceph-rs-cluster".into()),
    )
}

fn conf() -> PathBuf {
    let p = cluster_dir().join("ceph.conf");
    assert!(
        p.exists(),
        "no test cluster at {}: run scripts/test-cluster start or scripts/test-all",
        p.display()
    );
    p
}

fn ours(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rados-rs"))
        .arg("-c")
        .arg(conf())
        .args(args)
        .env_remove("CEPH_ARGS")
        .output()
        .unwrap()
}

fn theirs(bin: &str, args: &[&str]) -> Output {
    Command::new(oracle(bin))
        .arg("-c")
        .arg(conf())
        .args(args)
        .env_remove("CEPH_ARGS")
        .output()
        .unwrap()
}

fn ok(o: Output) -> Vec<u8> {
    assert!(
        o.status.success(),
        "failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn unique(p: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{p}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

struct Pool(String);
impl Pool {
    fn new(p: &str) -> Pool {
        let name = unique(p);
        ok(theirs(
            "ceph",
            &["osd", "pool", "create", &name, "16", "16"],
        ));
        Pool(name)
    }
}
impl Drop for Pool {
    fn drop(&mut self) {
        let _ = theirs(
            "ceph",
            &[
                "osd",
                "pool",
                "delete",
                &self.0,
                &self.0,
                "--yes-i-really-really-mean-it",
            ],
        );
    }
}

#[test]
fn lspools_ls_stat_omap_match_rados() {
    let pool = Pool::new("cli");
    let p = pool.0.as_str();
    // Other tests create and delete pools concurrently: retry until a quiet moment.
    let mut same = false;
    for _ in 0..10 {
        let (a, b) = (ok(ours(&["lspools"])), ok(theirs("rados", &["lspools"])));
        if a == b {
            assert!(String::from_utf8(a).unwrap().lines().any(|l| l == p));
            same = true;
            break;
        }
    }
    assert!(same, "rados-rs lspools never matched rados lspools");
    let dir = std::env::temp_dir().join(unique("cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("in");
    std::fs::write(&f, vec![7u8; 70_000]).unwrap();
    ok(ours(&["-p", p, "put", "a", f.to_str().unwrap()]));
    ok(theirs("rados", &["-p", p, "put", "b", f.to_str().unwrap()]));
    // the same objects in the same order (librados's: PG by PG, hash order within)
    for i in 0..40 {
        ok(ours(&[
            "-p",
            p,
            "put",
            &format!("o{i}"),
            f.to_str().unwrap(),
        ]));
    }
    let l1 = String::from_utf8(ok(ours(&["-p", p, "ls"]))).unwrap();
    let l2 = String::from_utf8(ok(theirs("rados", &["-p", p, "ls"]))).unwrap();
    assert_eq!(l1.lines().count(), 42);
    assert_eq!(l1, l2);
    // rados refuses every format name it has no formatter for, plain included
    for fmt in ["plain", "yaml"] {
        let (a, b) = (
            ours(&["-p", p, "--format", fmt, "ls"]),
            theirs("rados", &["-p", p, "--format", fmt, "ls"]),
        );
        assert_eq!(a.status.code(), Some(234), "rados-rs --format {fmt}");
        assert_eq!(b.status.code(), Some(234), "rados --format {fmt}");
        assert_eq!(
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr)
        );
    }
    // stat: same line (rados prints whole-second mtimes).
    assert_eq!(
        ok(ours(&["-p", p, "stat", "b"])),
        ok(theirs("rados", &["-p", p, "stat", "b"]))
    );
    // get to stdout is the object.
    assert_eq!(ok(ours(&["-p", p, "get", "b", "-"])), vec![7u8; 70_000]);
    // omap: same text.
    ok(ours(&["-p", p, "setomapval", "a", "k1", "v1"]));
    ok(theirs(
        "rados",
        &["-p", p, "setomapval", "a", "k2", "value two"],
    ));
    assert_eq!(
        ok(ours(&["-p", p, "listomapvals", "a"])),
        ok(theirs("rados", &["-p", p, "listomapvals", "a"]))
    );
    assert_eq!(
        ok(ours(&["-p", p, "listomapkeys", "a"])),
        ok(theirs("rados", &["-p", p, "listomapkeys", "a"]))
    );
    assert_eq!(
        ok(ours(&["-p", p, "getomapval", "a", "k2"])),
        ok(theirs("rados", &["-p", p, "getomapval", "a", "k2"]))
    );
    // xattrs.
    ok(ours(&["-p", p, "setxattr", "a", "user.x", "xv"]));
    assert_eq!(
        ok(theirs("rados", &["-p", p, "getxattr", "a", "user.x"])),
        b"xv"
    );
    assert_eq!(
        ok(ours(&["-p", p, "listxattr", "a"])),
        ok(theirs("rados", &["-p", p, "listxattr", "a"]))
    );
    // Errors: the errno as exit status.
    assert_eq!(ours(&["-p", p, "stat", "missing"]).status.code(), Some(2));
    assert_eq!(
        ours(&["-p", "no-such-pool-xyz", "ls"]).status.code(),
        Some(2)
    );
    assert_eq!(ours(&["-p", p, "rm", "missing"]).status.code(), Some(2));
    let names: Vec<String> = (0..40).map(|i| format!("o{i}")).collect();
    let mut rm = vec!["-p", p, "rm", "a", "b"];
    rm.extend(names.iter().map(String::as_str));
    ok(ours(&rm));
    assert!(ok(ours(&["-p", p, "ls"])).is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn osd_map_matches_ceph() {
    let pool = Pool::new("osdmap");
    for i in 0..60 {
        let obj = format!("object-{i}");
        let a: serde_json::Value =
            serde_json::from_slice(&ok(ours(&["osd-map", &pool.0, &obj, "--format", "json"])))
                .unwrap();
        let b: serde_json::Value = serde_json::from_slice(&ok(theirs(
            "ceph",
            &["osd", "map", &pool.0, &obj, "--format", "json"],
        )))
        .unwrap();
        for k in [
            "pgid",
            "raw_pgid",
            "up",
            "up_primary",
            "acting",
            "acting_primary",
            "objname",
            "pool",
            "pool_id",
        ] {
            assert_eq!(a[k], b[k], "{k} for {obj}");
        }
    }
}

#[test]
fn crush_test_matches_crushtool() {
    let dir = std::env::temp_dir().join(unique("crushcli"));
    std::fs::create_dir_all(&dir).unwrap();
    let map = dir.join("map");
    let st = Command::new(oracle("crushtool"))
        .args([
            "--outfn",
            map.to_str().unwrap(),
            "--build",
            "--num_osds",
            "12",
            "host",
            "straw2",
            "3",
            "rack",
            "straw2",
            "2",
            "root",
            "straw2",
            "0",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    for (rule, reps, weight) in [
        ("0", "3", None),
        ("0", "2", Some(("4", "0.5"))),
        ("0", "5", Some(("0", "0"))),
    ] {
        let mut args = vec![
            "-i",
            map.to_str().unwrap(),
            "--rule",
            rule,
            "--num-rep",
            reps,
            "--min-x",
            "0",
            "--max-x",
            "511",
        ];
        if let Some((o, w)) = weight {
            args.extend(["--weight", o, w]);
        }
        let mut theirs_args = args.clone();
        theirs_args.extend(["--test", "--show-mappings"]);
        let t = Command::new(oracle("crushtool"))
            .args(&theirs_args)
            .output()
            .unwrap();
        let mut our_args = vec!["crush-test"];
        our_args.extend(args);
        let o = Command::new(env!("CARGO_BIN_EXE_rados-rs"))
            .args(&our_args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&t.stdout),
            "rule {rule} reps {reps}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn mon_command_and_status() {
    let out = ok(ours(&[
        "mon-command",
        r#"{"prefix":"fsid","format":"json"}"#,
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let fsid = String::from_utf8(ok(theirs("ceph", &["fsid"]))).unwrap();
    assert_eq!(v["fsid"].as_str().unwrap(), fsid.trim());
    let st: serde_json::Value = serde_json::from_slice(&ok(ours(&["status"]))).unwrap();
    assert_eq!(st["fsid"].as_str().unwrap(), fsid.trim());
    assert!(st["osdmap"]["num_up_osds"].as_u64().unwrap() >= 1);
    // A refused command exits with the monitor's errno (EINVAL).
    assert_eq!(
        ours(&["mon-command", r#"{"prefix":"bogus command"}"#])
            .status
            .code(),
        Some(22)
    );
}

/// `rados ls --format json|json-pretty|xml|xml-pretty` (issue 12): the same bytes as
/// rados (compact forms without a trailing newline), escaping in names and namespaces.
#[test]
fn ls_formats_match_rados() {
    // names with the characters each format escapes, in two namespaces
    let pool = Pool::new("lsfmt");
    let p = pool.0.as_str();
    let f = std::env::temp_dir().join(unique("lsfmt-data"));
    std::fs::write(&f, b"x").unwrap();
    let fs = f.to_str().unwrap();
    for (ns, obj) in [("", "o&<1>\"'"), ("n\"s<", "o&3")] {
        ok(theirs("rados", &["-p", p, "-N", ns, "put", obj, fs]));
    }
    for fmt in ["json", "json-pretty", "xml", "xml-pretty"] {
        for ns in ["", "n\"s<", "empty"] {
            let args = ["-p", p, "-N", ns, "--format", fmt, "ls"];
            let want = ok(theirs("rados", &args));
            let got = ok(ours(&args));
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "rados {args:?}"
            );
        }
    }
    let xml = ok(ours(&["-p", p, "--format", "xml", "ls"]));
    assert!(String::from_utf8_lossy(&xml).contains("<name>o&amp;&lt;1&gt;&quot;&apos;</name>"));
    let _ = std::fs::remove_file(f);
}
