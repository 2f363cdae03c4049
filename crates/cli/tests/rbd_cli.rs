//! `rbd-rs` against the real `rbd` tool (Ceph 16.2) on the test cluster: the same stdout
//! for what scripts parse, the same exit statuses for the usual errors, and images that
//! each tool writes and the other reads byte for byte.
//!
//! The cluster comes from `scripts/test-cluster start` (its `env` file, or
//! `CEPH_CONF`/`CEPH_KEYRING`). Without one these tests fail; they never skip.

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

#[path = "../../rados/tests/common/oracle.rs"]
mod oracle;
use oracle::oracle;

/// librbd's `rbd` of the cluster's release (a bare name goes through [`oracle`]).
const RBD: &str = "rbd";
const RBD_RS: &str = env!("CARGO_BIN_EXE_rbd-rs");

struct Env {
    conf: String,
    keyring: String,
}

fn env() -> Env {
    if let (Ok(conf), Ok(keyring)) = (std::env::var("CEPH_CONF"), std::env::var("CEPH_KEYRING")) {
        return Env { conf, keyring };
    }
    let dir = std::env::var("CEPH_TEST_CLUSTER").unwrap_or_else(|_| "/tmp/ceph-rs-cluster".into());
    let f = PathBuf::from(&dir).join("env");
    let text = std::fs::read_to_string(&f).unwrap_or_else(|_| {
        panic!(
            "no test cluster: set CEPH_CONF and CEPH_KEYRING, or run `scripts/test-cluster start` (looked for {})",
            f.display()
        )
    });
    let get = |k: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(&format!("export {k}="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| panic!("{} has no {k}", f.display()))
    };
    Env {
        conf: get("CEPH_CONF"),
        keyring: get("CEPH_KEYRING"),
    }
}

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "rbdcli-{tag}-{}-{}-{:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// Run `prog` with the cluster's conf and keyring; a bare name (`rbd`, `ceph`) is the
/// Ceph tool of the cluster's release, a path (`rbd-rs`) runs as is.
fn run(prog: &str, args: &[&str]) -> Output {
    run_in(prog, args, None)
}

fn run_in(prog: &str, args: &[&str], stdin: Option<&Path>) -> Output {
    let e = env();
    let mut c = if prog.contains('/') {
        Command::new(prog)
    } else {
        Command::new(oracle(prog))
    };
    c.arg("--conf")
        .arg(&e.conf)
        .arg("--keyring")
        .arg(&e.keyring);
    if prog == "ceph" {
        // a cluster that is down fails the test instead of hanging it
        c.args(["--connect-timeout", "30"]);
    }
    c.args(args);
    c.env_remove("CEPH_ARGS");
    match stdin {
        Some(p) => c.stdin(std::fs::File::open(p).expect("stdin file")),
        None => c.stdin(std::process::Stdio::null()),
    };
    // a hang fails this test with a diagnosis instead of holding the suite
    oracle::output_bounded(&mut c, oracle::command_limit())
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Run a command, panicking with its stderr if it fails.
#[track_caller]
fn ok(prog: &str, args: &[&str]) -> String {
    let o = run(prog, args);
    assert!(
        o.status.success(),
        "{prog} {} failed ({}):\n{}{}",
        args.join(" "),
        code(&o),
        text(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    text(&o)
}

/// Both tools print the same stdout and exit the same way; returns the output.
#[track_caller]
fn same(args: &[&str]) -> String {
    let a = run(RBD, args);
    let b = run(RBD_RS, args);
    assert_eq!(
        text(&a),
        text(&b),
        "stdout differs for `rbd {}`\nrbd stderr: {}\nrbd-rs stderr: {}",
        args.join(" "),
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    assert_eq!(
        code(&a),
        code(&b),
        "exit status differs for `rbd {}`",
        args.join(" ")
    );
    text(&a)
}

/// Both tools fail with `errno` (and rbd-rs says `rbd: ...` on stderr).
#[track_caller]
fn same_error(args: &[&str], errno: i32) {
    let a = run(RBD, args);
    let b = run(RBD_RS, args);
    assert_eq!(
        code(&a),
        errno,
        "rbd {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(
        code(&b),
        errno,
        "rbd-rs {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&b.stderr)
    );
    let err = String::from_utf8_lossy(&b.stderr);
    assert!(
        err.contains("rbd: ") || err.contains("error"),
        "rbd-rs printed no error line: {err:?}"
    );
}

/// A pool for one test, removed on drop (also when the test fails).
struct Pool {
    name: String,
}

impl Pool {
    fn new(tag: &str) -> Pool {
        let name = unique(tag);
        ok("ceph", &["osd", "pool", "create", &name, "8", "8"]);
        let p = Pool { name };
        // rbd-rs does the pool init (the real tool then uses the pool)
        ok(RBD_RS, &["pool", "init", &p.name]);
        p
    }

    fn img(&self, name: &str) -> String {
        format!("{}/{name}", self.name)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = run(
            "ceph",
            &[
                "osd",
                "pool",
                "rm",
                &self.name,
                &self.name,
                "--yes-i-really-really-mean-it",
            ],
        );
    }
}

fn sha256_file(p: &Path) -> String {
    let data = std::fs::read(p).expect("read file");
    hex(&Sha256::digest(&data))
}

fn sha256(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Export with both tools (to stdout): both must equal `want`.
#[track_caller]
fn exports_equal(spec: &str, want: &str) {
    for prog in [RBD, RBD_RS] {
        let o = run(prog, &["export", "--no-progress", spec, "-"]);
        assert!(
            o.status.success(),
            "{prog} export {spec}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(sha256(&o.stdout), want, "{prog} export {spec}");
    }
}

struct TmpDir(PathBuf);

impl TmpDir {
    fn new(tag: &str) -> TmpDir {
        let p = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&p).expect("tmp dir");
        TmpDir(p)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A sparse image file: data at unaligned offsets, some across 4 MiB object boundaries,
/// holes elsewhere.
fn sparse_image(seed: u64, size: usize) -> Vec<u8> {
    let mut v = vec![0u8; size];
    let extents = [
        (1usize, 777usize),
        (4_194_304 - 1000, 5000),
        (6_000_123, 70_001),
        (8_388_608 - 3, 4099),
        (size - 513, 513),
    ];
    for (i, (o, l)) in extents.iter().enumerate() {
        if o + l <= size {
            let d = noise(seed + i as u64 * 7919, *l);
            v[*o..o + l].copy_from_slice(&d);
        }
    }
    v
}

/// Hold an image open with librbd (a header watch) until dropped.
struct Holder(std::process::Child);

impl Holder {
    fn open(pool: &str, image: &str) -> Holder {
        let e = env();
        let script = "import rados, rbd, sys\n\
c = rados.Rados(conffile=sys.argv[1], conf={'keyring': sys.argv[2]})\n\
c.connect()\n\
io = c.open_ioctx(sys.argv[3])\n\
img = rbd.Image(io, sys.argv[4])\n\
print('open', flush=True)\n\
sys.stdin.read()\n\
img.close(); io.close(); c.shutdown()\n";
        let mut child = Command::new(oracle("python3"))
            .args(["-c", script, &e.conf, &e.keyring, pool, image])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with the rbd module");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("holder output");
        assert_eq!(
            line.trim(),
            "open",
            "python librbd could not open {pool}/{image}"
        );
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

#[test]
fn listings_and_info_match_rbd() {
    let p = Pool::new("list");
    let pool = p.name.as_str();
    // images made by each tool, snapshots (one protected), a clone, a striped image
    ok(
        RBD,
        &[
            "create",
            "--image-feature",
            "layering",
            "--size",
            "64M",
            &p.img("by-rbd"),
        ],
    );
    ok(
        RBD_RS,
        &[
            "create",
            "--size",
            "10G",
            "--image-feature",
            "layering",
            &p.img("by-rbd-rs"),
        ],
    );
    ok(
        RBD_RS,
        &[
            "create",
            "-p",
            pool,
            "--size",
            "1G",
            "--object-size",
            "1M",
            "--image-feature",
            "layering,deep-flatten",
            "small-objects",
        ],
    );
    ok(
        RBD,
        &[
            "create",
            "--image-feature",
            "layering,striping",
            "--stripe-unit",
            "64K",
            "--stripe-count",
            "4",
            "--size",
            "100M",
            &p.img("striped"),
        ],
    );
    ok(
        RBD,
        &[
            "bench",
            "--io-type",
            "write",
            "--io-size",
            "64K",
            "--io-total",
            "6M",
            &p.img("by-rbd"),
        ],
    );
    ok(RBD_RS, &["snap", "create", &p.img("by-rbd@one")]);
    ok(RBD, &["snap", "create", &p.img("by-rbd@two")]);
    ok(RBD_RS, &["snap", "protect", &p.img("by-rbd@one")]);
    ok(
        RBD_RS,
        &["snap", "limit", "set", "--limit", "10", &p.img("by-rbd")],
    );
    ok(RBD_RS, &["clone", &p.img("by-rbd@one"), &p.img("child")]);
    ok(RBD, &["clone", &p.img("by-rbd@one"), &p.img("child2")]);
    ok(
        RBD_RS,
        &[
            "bench",
            "--io-type",
            "write",
            "--io-size",
            "4K",
            "--io-total",
            "256K",
            "--io-pattern",
            "rand",
            &p.img("child"),
        ],
    );

    for fmt in [
        &[][..],
        &["--format", "json"][..],
        &["--format", "json", "--pretty-format"][..],
    ] {
        let with = |a: &[&str]| -> Vec<String> {
            a.iter().chain(fmt.iter()).map(|s| s.to_string()).collect()
        };
        let run_same = |a: &[&str]| {
            let v = with(a);
            same(&v.iter().map(String::as_str).collect::<Vec<_>>())
        };
        let ls = run_same(&["ls", pool]);
        assert!(ls.contains("by-rbd-rs") && ls.contains("child2"), "{ls}");
        run_same(&["ls", "-l", pool]);
        run_same(&["ls", "-l", "-p", pool]);
        for img in [
            "by-rbd",
            "by-rbd-rs",
            "small-objects",
            "striped",
            "child",
            "child2",
            "by-rbd@one",
            "by-rbd@two",
        ] {
            run_same(&["info", &p.img(img)]);
        }
        run_same(&["snap", "ls", &p.img("by-rbd")]);
        run_same(&["children", &p.img("by-rbd@one")]);
        run_same(&["children", &p.img("by-rbd")]);
        run_same(&["du", &p.img("by-rbd")]);
        run_same(&["du", &p.img("by-rbd@two")]);
        run_same(&["du", &p.img("child")]);
        run_same(&["du", "-p", pool]);
        run_same(&["status", &p.img("by-rbd")]);
        run_same(&["diff", &p.img("by-rbd")]);
        run_same(&["diff", "--from-snap", "one", &p.img("by-rbd")]);
        run_same(&["diff", "--whole-object", &p.img("by-rbd@two")]);
    }
    // the option forms of a spec
    same(&["info", "-p", pool, "--image", "by-rbd", "--snap", "one"]);
    same(&["info", "--pool", pool, "by-rbd@two", "--format=json"]);
    same(&[
        "snap", "ls", "--pool", pool, "--image", "by-rbd", "--format", "json",
    ]);
    same(&["du", "--image", "by-rbd", "-p", pool, "--from-snap", "one"]);
    let kids = same(&["children", &p.img("by-rbd@one")]);
    assert_eq!(kids, format!("{pool}/child\n{pool}/child2\n"));

    // an image created by rbd-rs and one created by rbd with the same parameters agree
    // on every shared field of `info --format json` but the identity and timestamps
    ok(
        RBD,
        &[
            "create",
            "--size",
            "10G",
            "--image-feature",
            "layering",
            &p.img("twin"),
        ],
    );
    let js = |prog: &str, img: &str| -> serde_json::Value {
        serde_json::from_str(&ok(prog, &["info", "--format", "json", &p.img(img)])).expect("json")
    };
    let (a, b) = (js(RBD, "by-rbd-rs"), js(RBD_RS, "twin"));
    let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
    let mut shared = 0;
    for (k, v) in a {
        if ["name", "id", "block_name_prefix"].contains(&k.as_str()) || k.ends_with("timestamp") {
            continue;
        }
        if let Some(w) = b.get(k) {
            assert_eq!(v, w, "field {k}");
            shared += 1;
        }
    }
    assert!(shared >= 9, "only {shared} shared fields");
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());

    // a watcher: the same `status` output while librbd holds the image open
    let h = Holder::open(pool, "by-rbd-rs");
    let st = same(&["status", &p.img("by-rbd-rs")]);
    assert!(st.starts_with("Watchers:\n\twatcher="), "{st}");
    same(&["status", "--format", "json", &p.img("by-rbd-rs")]);
    drop(h);
}

#[test]
fn error_exit_statuses_match_rbd() {
    let p = Pool::new("err");
    ok(
        RBD,
        &[
            "create",
            "--size",
            "16M",
            "--image-feature",
            "layering",
            &p.img("img"),
        ],
    );
    ok(RBD, &["snap", "create", &p.img("img@s")]);
    ok(
        RBD,
        &[
            "create",
            "--size",
            "16M",
            "--image-feature",
            "layering",
            &p.img("busy"),
        ],
    );
    ok(
        RBD,
        &[
            "create",
            "--size",
            "16M",
            "--image-feature",
            "layering",
            &p.img("plain"),
        ],
    );

    // missing image / snapshot / pool: ENOENT
    same_error(&["info", &p.img("nope")], 2);
    same_error(&["rm", "--no-progress", &p.img("nope")], 2);
    same_error(&["snap", "ls", &p.img("nope")], 2);
    same_error(&["export", "--no-progress", &p.img("nope"), "-"], 2);
    same_error(&["info", &p.img("img@nope")], 2);
    same_error(&["snap", "rm", "--no-progress", &p.img("img@nope")], 2);
    same_error(&["diff", "--from-snap", "nope", &p.img("img")], 2);
    same_error(&["ls", "no-such-pool-rbdcli"], 2);
    // existing names: EEXIST
    same_error(&["create", "--size", "1M", &p.img("img")], 17);
    same_error(&["snap", "create", "--no-progress", &p.img("img@s")], 17);
    same_error(&["rename", &p.img("plain"), &p.img("img")], 17);
    // rm of an image with snapshots: ENOTEMPTY
    same_error(&["rm", "--no-progress", &p.img("img")], 39);
    // rm of an image opened elsewhere (librbd holds a watch): EBUSY
    {
        let _h = Holder::open(&p.name, "busy");
        same_error(&["rm", "--no-progress", &p.img("busy")], 16);
    }
    // shrinking without --allow-shrink, same size: EINVAL
    same_error(
        &["resize", "--no-progress", "--size", "8M", &p.img("plain")],
        22,
    );
    same_error(
        &["resize", "--no-progress", "--size", "16M", &p.img("plain")],
        22,
    );
    // features: an unknown name is a syntax error (1), an impossible set EINVAL
    same_error(
        &[
            "create",
            "--size",
            "1M",
            "--image-feature",
            "bogus",
            &p.img("f1"),
        ],
        1,
    );
    same_error(
        &[
            "create",
            "--size",
            "1M",
            "--image-feature",
            "journaling",
            &p.img("f2"),
        ],
        22,
    );
    same_error(
        &[
            "create",
            "--size",
            "1M",
            "--image-feature",
            "layering,object-map",
            &p.img("f3"),
        ],
        22,
    );
    // ... while implicitly managed features are dropped, not refused
    for (prog, img) in [(RBD, "fd-rbd"), (RBD_RS, "fd-rs")] {
        ok(
            prog,
            &[
                "create",
                "--size",
                "1M",
                "--image-feature",
                "layering,fast-diff,operations",
                &p.img(img),
            ],
        );
        let info = ok(RBD, &["info", &p.img(img)]);
        assert!(info.contains("\tfeatures: layering\n"), "{info}");
    }
    // usage errors
    same_error(&["create", &p.img("nosize")], 22);
    same_error(&["create", "--size", "1X", &p.img("badsize")], 1);
    same_error(&["info"], 22);
    same_error(&["snap", "create", &p.img("img")], 22);
    same_error(&["status", &p.img("img@s")], 22);
    same_error(&["info", "--bogus-option", &p.img("img")], 1);
    same_error(&["info", "--pretty-format", &p.img("img")], 22);
    // protection
    same_error(&["snap", "unprotect", &p.img("img@s")], 22);
    ok(RBD_RS, &["snap", "protect", &p.img("img@s")]);
    same_error(&["snap", "protect", &p.img("img@s")], 16);
    same_error(&["snap", "rm", "--no-progress", &p.img("img@s")], 16);
    ok(RBD_RS, &["clone", &p.img("img@s"), &p.img("kid")]);
    same_error(&["snap", "unprotect", &p.img("img@s")], 16);
    same_error(&["flatten", "--no-progress", &p.img("plain")], 22);
    // export to an existing file: EEXIST
    let t = TmpDir::new("err");
    std::fs::write(t.path("exists"), b"x").unwrap();
    same_error(
        &[
            "export",
            "--no-progress",
            &p.img("plain"),
            t.path("exists").to_str().unwrap(),
        ],
        17,
    );
    // nothing was changed by the failed commands
    let ls = same(&["ls", &p.name]);
    assert_eq!(ls, "busy\nfd-rbd\nfd-rs\nimg\nkid\nplain\n");
}

#[test]
fn export_import_interop() {
    let p = Pool::new("xfer");
    let t = TmpDir::new("xfer");
    let size = 10 * 1024 * 1024 + 123;
    let data = sparse_image(42, size);
    let file = t.path("image.raw");
    std::fs::write(&file, &data).unwrap();
    let want = sha256(&data);
    let f = file.to_str().unwrap();

    // import by each tool (file and stdin), export by both
    ok(
        RBD,
        &[
            "import",
            "--no-progress",
            "--image-feature",
            "layering",
            f,
            &p.img("imp-rbd"),
        ],
    );
    ok(RBD_RS, &["import", "--no-progress", f, &p.img("imp-rs")]);
    let o = run_in(
        RBD_RS,
        &["import", "--no-progress", "-", &p.img("imp-rs-stdin")],
        Some(&file),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for img in ["imp-rbd", "imp-rs", "imp-rs-stdin"] {
        exports_equal(&p.img(img), &want);
        same(&["info", "--format", "json", &p.img(img)]);
        same(&["diff", &p.img(img)]);
    }
    // export to files: sparse files with the same content
    for (prog, out) in [(RBD, "exp-rbd.raw"), (RBD_RS, "exp-rs.raw")] {
        let dst = t.path(out);
        ok(
            prog,
            &[
                "export",
                "--no-progress",
                &p.img("imp-rs"),
                dst.to_str().unwrap(),
            ],
        );
        assert_eq!(sha256_file(&dst), want, "{prog} export to a file");
    }

    // writes by each tool's bench, then a snapshot, more writes: exports agree
    for (prog, img) in [(RBD, "bench-rbd"), (RBD_RS, "bench-rs")] {
        ok(
            RBD,
            &[
                "create",
                "--size",
                "12M",
                "--image-feature",
                "layering",
                &p.img(img),
            ],
        );
        ok(
            prog,
            &[
                "bench",
                "--io-type",
                "write",
                "--io-size",
                "4K",
                "--io-total",
                "2M",
                "--io-pattern",
                "rand",
                &p.img(img),
            ],
        );
        ok(
            prog,
            &[
                "snap",
                "create",
                "--no-progress",
                &p.img(&format!("{img}@s1")),
            ],
        );
        ok(
            prog,
            &[
                "bench",
                "--io-type",
                "write",
                "--io-size",
                "12K",
                "--io-total",
                "3M",
                &p.img(img),
            ],
        );
        for spec in [p.img(img), p.img(&format!("{img}@s1"))] {
            let a = run(RBD, &["export", "--no-progress", &spec, "-"]);
            assert!(a.status.success());
            exports_equal(&spec, &sha256(&a.stdout));
        }
        same(&["du", &p.img(img)]);
        same(&["diff", "--from-snap", "s1", &p.img(img)]);
    }

    // export-diff / import-diff in both directions, with and without --from-snap
    ok(
        RBD_RS,
        &["snap", "create", "--no-progress", &p.img("imp-rs@base")],
    );
    let extra = noise(7, 300_000);
    let extra_file = t.path("extra.raw");
    let mut patched = data.clone();
    patched[5_000_000..5_300_000].copy_from_slice(&extra);
    std::fs::write(&extra_file, &patched).unwrap();
    // rewrite the image through a fresh import into a scratch image + diff
    ok(
        RBD,
        &[
            "import",
            "--no-progress",
            "--image-feature",
            "layering",
            extra_file.to_str().unwrap(),
            &p.img("patched"),
        ],
    );
    ok(
        RBD,
        &["snap", "create", "--no-progress", &p.img("patched@full")],
    );
    for (exp, imp, tag) in [(RBD, RBD_RS, "a"), (RBD_RS, RBD, "b")] {
        let full = t.path(&format!("full-{tag}.diff"));
        ok(
            exp,
            &[
                "export-diff",
                "--no-progress",
                &p.img("patched@full"),
                full.to_str().unwrap(),
            ],
        );
        let dst = format!("fromdiff-{tag}");
        ok(
            RBD,
            &[
                "create",
                "--size",
                "1M",
                "--image-feature",
                "layering",
                &p.img(&dst),
            ],
        );
        ok(
            imp,
            &[
                "import-diff",
                "--no-progress",
                full.to_str().unwrap(),
                &p.img(&dst),
            ],
        );
        exports_equal(&p.img(&dst), &sha256(&patched));
        same(&["snap", "ls", "--format", "json", &p.img(&dst)]);
    }
    // incremental: base -> head of imp-rs after writing the patch with rbd-rs import-diff
    let inc = t.path("inc.diff");
    ok(
        RBD,
        &["snap", "create", "--no-progress", &p.img("patched@more")],
    );
    ok(
        RBD_RS,
        &[
            "export-diff",
            "--no-progress",
            "--from-snap",
            "full",
            &p.img("patched@more"),
            inc.to_str().unwrap(),
        ],
    );
    ok(
        RBD,
        &[
            "import-diff",
            "--no-progress",
            inc.to_str().unwrap(),
            &p.img("fromdiff-a"),
        ],
    );
    same(&["snap", "ls", "--format", "json", &p.img("fromdiff-a")]);
    exports_equal(&p.img("fromdiff-a@more"), &sha256(&patched));
}

#[test]
fn clone_flatten_and_namespaces_interop() {
    let p = Pool::new("layer");
    let t = TmpDir::new("layer");
    let data = sparse_image(9, 9 * 1024 * 1024);
    let file = t.path("parent.raw");
    std::fs::write(&file, &data).unwrap();
    ok(
        RBD,
        &[
            "import",
            "--no-progress",
            "--image-feature",
            "layering",
            file.to_str().unwrap(),
            &p.img("parent"),
        ],
    );
    ok(
        RBD,
        &["snap", "create", "--no-progress", &p.img("parent@gold")],
    );
    ok(RBD, &["snap", "protect", &p.img("parent@gold")]);
    // a clone by rbd-rs is listed by rbd, reads like the parent, flattens with rbd
    ok(RBD_RS, &["clone", &p.img("parent@gold"), &p.img("c1")]);
    ok(RBD, &["clone", &p.img("parent@gold"), &p.img("c2")]);
    same(&["children", &p.img("parent@gold")]);
    same(&["children", "--format", "json", &p.img("parent@gold")]);
    same(&["info", &p.img("c1")]);
    exports_equal(&p.img("c1"), &sha256(&data));
    exports_equal(&p.img("c2"), &sha256(&data));
    ok(RBD, &["flatten", "--no-progress", &p.img("c1")]);
    ok(RBD_RS, &["flatten", "--no-progress", &p.img("c2")]);
    for c in ["c1", "c2"] {
        let info = same(&["info", &p.img(c)]);
        assert!(!info.contains("parent:"), "{info}");
        exports_equal(&p.img(c), &sha256(&data));
    }
    same(&["children", &p.img("parent@gold")]);
    ok(RBD_RS, &["snap", "unprotect", &p.img("parent@gold")]);
    ok(
        RBD_RS,
        &["snap", "rm", "--no-progress", &p.img("parent@gold")],
    );
    same(&["snap", "ls", &p.img("parent")]);
    // rollback by rbd-rs
    ok(
        RBD_RS,
        &["snap", "create", "--no-progress", &p.img("c1@before")],
    );
    ok(
        RBD_RS,
        &[
            "bench",
            "--io-type",
            "write",
            "--io-size",
            "1M",
            "--io-total",
            "4M",
            &p.img("c1"),
        ],
    );
    ok(
        RBD_RS,
        &["snap", "rollback", "--no-progress", &p.img("c1@before")],
    );
    exports_equal(&p.img("c1"), &sha256(&data));
    // rename, resize, remove
    ok(RBD_RS, &["rename", &p.img("c2"), &p.img("c2-renamed")]);
    ok(
        RBD_RS,
        &[
            "resize",
            "--no-progress",
            "--size",
            "20M",
            &p.img("c2-renamed"),
        ],
    );
    ok(
        RBD_RS,
        &[
            "resize",
            "--no-progress",
            "--size",
            "4M",
            "--allow-shrink",
            &p.img("c2-renamed"),
        ],
    );
    let mut head = data[..4 << 20].to_vec();
    exports_equal(&p.img("c2-renamed"), &sha256(&head));
    ok(
        RBD_RS,
        &[
            "resize",
            "--no-progress",
            "--size",
            "5M",
            &p.img("c2-renamed"),
        ],
    );
    head.resize(5 << 20, 0);
    exports_equal(&p.img("c2-renamed"), &sha256(&head));
    ok(RBD_RS, &["rm", "--no-progress", &p.img("c2-renamed")]);
    assert_eq!(same(&["ls", &p.name]), "c1\nparent\n");

    // clone v2 of an unprotected snapshot; removing the snapshot then moves it to the
    // snapshot trash, where `snap ls --all` and `children` still see it
    ok(
        RBD,
        &["snap", "create", "--no-progress", &p.img("parent@v2")],
    );
    ok(
        RBD_RS,
        &[
            "clone",
            "--rbd-default-clone-format",
            "2",
            &p.img("parent@v2"),
            &p.img("c3"),
        ],
    );
    ok(
        RBD_RS,
        &["snap", "rm", "--no-progress", &p.img("parent@v2")],
    );
    let trash = same(&["snap", "ls", "--all", &p.img("parent")]);
    assert!(trash.contains("trash (v2)"), "{trash}");
    same(&["snap", "ls", "--all", "--format", "json", &p.img("parent")]);
    assert_eq!(
        same(&["children", "--all", &p.img("parent")]),
        format!("{}/c3\n", p.name)
    );
    same(&["children", "-a", "--format", "json", &p.img("parent")]);
    same(&["info", "--format", "json", &p.img("c3")]);
    exports_equal(&p.img("c3"), &sha256(&data));

    // namespaces: POOL/NAMESPACE/IMAGE and --namespace
    ok(RBD, &["namespace", "create", &format!("{}/ns1", p.name)]);
    ok(
        RBD_RS,
        &["create", "--size", "8M", &format!("{}/ns1/inns", p.name)],
    );
    ok(
        RBD_RS,
        &[
            "create",
            "--size",
            "8M",
            "-p",
            &p.name,
            "--namespace",
            "ns1",
            "inns2",
        ],
    );
    assert_eq!(same(&["ls", &format!("{}/ns1", p.name)]), "inns\ninns2\n");
    same(&[
        "ls",
        "-l",
        "--format",
        "json",
        "-p",
        &p.name,
        "--namespace",
        "ns1",
    ]);
    same(&["info", &format!("{}/ns1/inns", p.name)]);
    same_error(&["ls", &format!("{}/nons", p.name)], 2);
}

#[test]
fn bench_prints_rbds_lines() {
    let p = Pool::new("bench");
    ok(
        RBD,
        &[
            "create",
            "--size",
            "16M",
            "--image-feature",
            "layering",
            &p.img("b"),
        ],
    );
    let args = [
        "bench",
        "--io-type",
        "write",
        "--io-size",
        "8K",
        "--io-threads",
        "4",
        "--io-total",
        "1M",
        "--io-pattern",
        "rand",
    ];
    let spec = p.img("b");
    let a = ok(RBD, &[&args[..], &[spec.as_str()]].concat());
    let b = ok(RBD_RS, &[&args[..], &[spec.as_str()]].concat());
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    assert_eq!(la[0], lb[0], "header line");
    assert_eq!(la[1], lb[1], "table header");
    let summary = lb
        .iter()
        .find(|l| l.starts_with("elapsed: "))
        .expect("summary line");
    let f: Vec<&str> = summary.split_whitespace().collect();
    assert_eq!(
        (f[0], f[2], f[4], f[6]),
        ("elapsed:", "ops:", "ops/sec:", "bytes/sec:")
    );
    assert_eq!(f[3], "128");
    assert!(lb.last().unwrap().starts_with("client cpu: "), "{b}");
    // read back through the other tool
    let o = run(
        RBD,
        &[
            "bench",
            "--io-type",
            "read",
            "--io-size",
            "8K",
            "--io-total",
            "1M",
            &spec,
        ],
    );
    assert!(o.status.success());
    let mut child = Command::new(RBD_RS)
        .args([
            "--conf",
            &env().conf,
            "--keyring",
            &env().keyring,
            "bench",
            "--io-type",
            "readwrite",
            "--io-total",
            "512K",
            &spec,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        out.contains("read_ops: ") && out.contains("write_ops: "),
        "{out}"
    );
    let _ = std::io::stdout().flush();
}
