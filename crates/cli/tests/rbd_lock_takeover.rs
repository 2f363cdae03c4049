//! Exclusive-lock take-over across processes with librbd (`rbd bench`) as the other
//! party: an `rbd-rs bench --io-type write` lock owner killed with SIGKILL is blocklisted
//! and its lock broken by `rbd`, and the other way round; `rbd-rs create` makes librbd's
//! default features; `rbd-rs feature` / `object-map` commands agree with `rbd`.
//!
//! The cluster comes from `scripts/test-cluster start` (its `env` file, or
//! `CEPH_CONF`/`CEPH_KEYRING`). Without one these tests fail; they never skip.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{env, oracle, RBD, RBD_RS};

fn cmd(prog: &str, args: &[&str]) -> Command {
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
        c.args(["--connect-timeout", "30"]);
    }
    c.args(args);
    c.env_remove("CEPH_ARGS");
    c
}

fn run(prog: &str, args: &[&str]) -> Output {
    cmd(prog, args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"))
}

#[track_caller]
fn ok(prog: &str, args: &[&str]) -> String {
    let o = run(prog, args);
    assert!(
        o.status.success(),
        "{prog} {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

struct Pool(String);

impl Pool {
    fn new(tag: &str) -> Pool {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("rbdlk-{tag}-{}-{nanos:x}", std::process::id());
        ok("ceph", &["osd", "pool", "create", &name, "8"]);
        ok(RBD, &["pool", "init", &name]);
        Pool(name)
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
                &self.0,
                &self.0,
                "--yes-i-really-really-mean-it",
            ],
        );
    }
}

/// (locker, address) of each holder of the image's lock.
fn lockers(spec: &str) -> Vec<(String, String)> {
    let out = ok(RBD, &["lock", "ls", "--format", "json", spec]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["locker"].as_str().unwrap().to_string(),
                l["address"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Start a long write bench and wait until it owns the lock.
#[allow(clippy::zombie_processes)] // the caller kills and waits for it
fn start_owner(prog: &str, spec: &str) -> (Child, (String, String)) {
    let child = cmd(
        prog,
        &[
            "bench",
            "--io-type",
            "write",
            "--io-size",
            "4K",
            "--io-pattern",
            "rand",
            "--io-total",
            "100G",
            "--io-threads",
            "2",
            spec,
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let t = Instant::now();
    loop {
        if let Some(owner) = lockers(spec).into_iter().next() {
            return (child, owner);
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{prog} never took the lock"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn take_over(killed: &str, new_writer: &str, spec: &str) -> Duration {
    let (mut child, owner) = start_owner(killed, spec);
    std::thread::sleep(Duration::from_secs(1));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let t = Instant::now();
    let o = run(
        new_writer,
        &[
            "bench",
            "--io-type",
            "write",
            "--io-size",
            "4K",
            "--io-total",
            "64K",
            spec,
        ],
    );
    let took = t.elapsed();
    assert!(
        o.status.success(),
        "{new_writer} after SIGKILL of {killed}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // the killed owner is blocklisted: its late writes are refused by the OSDs
    let bl = ok("ceph", &["osd", "blocklist", "ls"]);
    let addr = owner
        .1
        .trim_start_matches("v1:")
        .trim_start_matches("v2:")
        .to_string();
    assert!(
        bl.contains(&addr),
        "{} ({addr}) not blocklisted after its lock was broken: {bl}",
        owner.0
    );
    // the new writer closed and released it; the dead owner is gone for good
    assert!(lockers(spec).iter().all(|l| l.0 != owner.0));
    took
}

#[test]
fn sigkilled_owner_is_taken_over_both_ways() {
    let pool = Pool::new("kill");
    let spec = format!("{}/img", pool.0);
    ok(RBD_RS, &["create", "--size", "64M", &spec]);
    let info = ok(RBD, &["info", "--format", "json", &spec]);
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    let feats: Vec<&str> = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        feats,
        [
            "layering",
            "exclusive-lock",
            "object-map",
            "fast-diff",
            "deep-flatten"
        ]
    );
    let a = take_over(RBD_RS, RBD, &spec);
    eprintln!("librbd took the lock from a SIGKILLed rbd-rs in {a:?}");
    let b = take_over(RBD, RBD_RS, &spec);
    eprintln!("rbd-rs took the lock from a SIGKILLed rbd in {b:?}");
    // a dead owner's watch lingers for the OSD watch timeout (30 s), then the break is quick
    assert!(a < Duration::from_secs(60) && b < Duration::from_secs(60));
    let o = run(RBD, &["object-map", "check", &spec]);
    assert!(o.status.success());
    let info = ok(RBD, &["info", "--format", "json", &spec]);
    assert!(
        !info.contains("object map invalid"),
        "object map invalidated: {info}"
    );
}
