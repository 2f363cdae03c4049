//! Helpers shared by the `rbd-rs` integration tests (a copy of the ones in
//! `rbd_cli.rs`, which keeps its own): the cluster from `scripts/test-cluster`
//! (failing, never skipping, without one), running `rbd`/`rbd-rs` side by side, pools
//! removed on drop, a librbd holder of an open image.

#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

#[path = "../../../rados/tests/common/oracle.rs"]
mod oracle;
#[allow(unused_imports)]
pub use oracle::{command_limit, oracle, output_bounded};

/// librbd's `rbd` of the running cluster's release (resolved through [`oracle`], so the
/// Reef phase compares with Reef's librbd).
pub const RBD: &str = "rbd";
pub const RBD_RS: &str = env!("CARGO_BIN_EXE_rbd-rs");

pub struct Env {
    pub conf: String,
    pub keyring: String,
}

pub fn env() -> Env {
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

pub fn unique(tag: &str) -> String {
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

/// Run `prog` with the cluster's conf and keyring.
pub fn run(prog: &str, args: &[&str]) -> Output {
    run_in(prog, args, None)
}

pub fn run_in(prog: &str, args: &[&str], stdin: Option<&Path>) -> Output {
    let once = || {
        let e = env();
        let mut c = if prog == RBD_RS {
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
            None => c.stdin(Stdio::null()),
        };
        oracle::try_output_bounded(&mut c, oracle::command_limit())
    };
    let hung = |partial: Output| -> ! {
        let extra = if prog == RBD_RS {
            debug_rerun(args)
        } else {
            String::new()
        };
        panic!(
            "{}",
            oracle::hang_message(
                &format!("{prog} {}", args.join(" ")),
                oracle::command_limit(),
                &partial,
                &extra
            )
        )
    };
    let mut out = match once() {
        Ok(o) => o,
        // A hung rbd-rs is ours to explain: no second chance.
        Err(oracle::Hung(p)) if prog == RBD_RS => hung(p),
        // A hung oracle is reported, with the cluster's state, and run once more (the
        // policy for its crashes below); hanging twice fails the test.
        Err(oracle::Hung(p)) => {
            eprintln!(
                "{prog} {} hung for {:?}, killed; running it again. Its stderr:\n{}\n{}",
                args.join(" "),
                oracle::command_limit(),
                String::from_utf8_lossy(&p.stderr),
                oracle::cluster_report()
            );
            return once().unwrap_or_else(|oracle::Hung(p)| hung(p));
        }
    };
    // Pacific's rbd now and then aborts in its io_context_pool thread while shutting down
    // ("terminate called ... std::system_error", or "pthread_mutex_lock.c:450 ... Caught
    // signal (Aborted)"), a librbd bug, not a verdict on us: run the oracle again, up to
    // twice (two crashes in a row were seen on a loaded machine). A retried command that
    // had already acted fails the test visibly (EEXIST, ENOENT), never passes it.
    for _ in 0..2 {
        if prog == RBD_RS || !oracle_crashed(&out) {
            break;
        }
        eprintln!(
            "{prog} {} crashed, running it again:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        out = once().unwrap_or_else(|oracle::Hung(p)| hung(p));
    }
    out
}

/// For a hung `rbd-rs` command: the same command once more with debug logging, for a
/// minute, and the end of that log (what it was waiting for, if it hangs again).
fn debug_rerun(args: &[&str]) -> String {
    let e = env();
    let mut c = Command::new(RBD_RS);
    c.arg("--conf")
        .arg(&e.conf)
        .arg("--keyring")
        .arg(&e.keyring)
        .args(args)
        .env_remove("CEPH_ARGS")
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null());
    let (o, how) = match oracle::try_output_bounded(&mut c, std::time::Duration::from_secs(60)) {
        Ok(o) => (o, "finished"),
        Err(oracle::Hung(o)) => (o, "hung again"),
    };
    let log = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = log.lines().collect();
    format!(
        "--- run again with RUST_LOG=debug ({how}, {:?}), its last log lines:\n{}\n",
        o.status,
        lines[lines.len().saturating_sub(120)..].join("\n")
    )
}

/// stderr without librbd's own log records (`2026-12-03T09:29:54.243+0000 ... -1 librbd:
/// ...` up to its line break): librbd logs to stderr from its own thread, and such a
/// record can land in the middle of the tool's message ("rbd: create error: <record>
/// (22) Invalid argument"), so the messages are compared without them.
pub fn oracle_stderr(o: &Output) -> String {
    let mut e = String::from_utf8_lossy(&o.stderr).into_owned();
    while let Some(at) = log_record_start(&e) {
        let end = e[at..].find('\n').map_or(e.len(), |n| at + n + 1);
        e.replace_range(at..end, "");
    }
    e
}

/// Where a Ceph log record (`YYYY-MM-DDTHH:MM:SS.`) starts in `s`.
pub fn log_record_start(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(19)).find(|&i| {
        let d = |k: usize| b[i + k].is_ascii_digit();
        (0..4).all(d)
            && b[i + 4] == b'-'
            && d(5)
            && d(6)
            && b[i + 7] == b'-'
            && d(8)
            && d(9)
            && b[i + 10] == b'T'
            && d(11)
            && d(12)
            && b[i + 13] == b':'
            && b[i + 16] == b':'
            && b[i + 19] == b'.'
    })
}

/// The oracle died of a signal (Ceph's handler prints "Caught signal" and re-raises).
fn oracle_crashed(o: &Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    o.status.signal().is_some()
        || String::from_utf8_lossy(&o.stderr).contains("*** Caught signal (")
}

pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Run a command, panicking with its stderr if it fails.
#[track_caller]
pub fn ok(prog: &str, args: &[&str]) -> String {
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
pub fn same(args: &[&str]) -> String {
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
pub fn same_error(args: &[&str], errno: i32) {
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
pub struct Pool {
    pub name: String,
}

impl Pool {
    pub fn new(tag: &str) -> Pool {
        let name = unique(tag);
        ok("ceph", &["osd", "pool", "create", &name, "8", "8"]);
        let p = Pool { name };
        // rbd-rs does the pool init (the real tool then uses the pool)
        ok(RBD_RS, &["pool", "init", &p.name]);
        p
    }

    pub fn img(&self, name: &str) -> String {
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

pub fn sha256_file(p: &Path) -> String {
    let data = std::fs::read(p).expect("read file");
    hex(&Sha256::digest(&data))
}

pub fn sha256(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Export with both tools (to stdout): both must equal `want`.
#[track_caller]
pub fn exports_equal(spec: &str, want: &str) {
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

pub struct TmpDir(pub PathBuf);

impl TmpDir {
    pub fn new(tag: &str) -> TmpDir {
        let p = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&p).expect("tmp dir");
        TmpDir(p)
    }
    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
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
pub fn sparse_image(seed: u64, size: usize) -> Vec<u8> {
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
pub struct Holder(pub std::process::Child);

impl Holder {
    pub fn open(pool: &str, image: &str) -> Holder {
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

/// `rbd info --format json` without what differs between any two images (names, ids,
/// timestamps).
pub fn info_fields(spec: &str) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&ok(RBD, &["info", "--format", "json", spec])).expect("info json");
    let m = v.as_object_mut().expect("object");
    for k in [
        "name",
        "id",
        "block_name_prefix",
        "create_timestamp",
        "access_timestamp",
        "modify_timestamp",
    ] {
        m.remove(k);
    }
    v
}

/// `(name, size, protected)` of each snapshot, by `rbd snap ls --format json`.
pub fn snaps(spec: &str) -> Vec<(String, u64, String)> {
    let v: serde_json::Value =
        serde_json::from_str(&ok(RBD, &["snap", "ls", "--format", "json", spec])).expect("json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["size"].as_u64().unwrap(),
                s["protected"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn export_sha(spec: &str) -> String {
    let o = run(RBD, &["export", "--no-progress", spec, "-"]);
    assert!(o.status.success(), "export {spec}");
    sha256(&o.stdout)
}
