//! `rbd-rs nbd serve` with real NBD clients (loopback only): `nbdinfo` sees the size,
//! `qemu-img convert` to and from `nbd://` gives the bytes of `rbd export`, `qemu-io`
//! writes at random offsets (several requests in flight) and reads them back, and the
//! final image equals the test's model byte for byte.
//!
//! Needs the test cluster, qemu-utils and libnbd-bin (scripts/test-cluster install);
//! without them these tests fail, they never skip.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

mod common;
use common::{env, ok, unique, RBD_RS};

const SIZE: usize = 24 << 20;

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn sh(prog: &str, args: &[&str]) -> String {
    let o = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    assert!(
        o.status.success(),
        "{prog} {}: {}",
        args.join(" "),
        show(&o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `ceph`/`rbd`/`rbd-rs` with the cluster's conf and admin keyring.
struct Pool(String);

impl Drop for Pool {
    fn drop(&mut self) {
        let common::Env { conf, keyring } = env();
        let _ = Command::new("ceph")
            .args(["--conf", &conf, "--keyring", &keyring, "osd", "pool", "rm"])
            .args([&self.0, &self.0, "--yes-i-really-really-mean-it"])
            .output();
    }
}

/// The server process (killed on drop) and its address.
struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    fn start(spec: &str, extra: &[&str]) -> Serve {
        let common::Env { conf, keyring } = env();
        let mut child = Command::new(RBD_RS)
            .args(["--conf", &conf, "--keyring", &keyring, "nbd", "serve"])
            .args(["--bind", "127.0.0.1:0"])
            .args(extra)
            .arg(spec)
            .stdout(Stdio::piped())
            .env_remove("CEPH_ARGS")
            .spawn()
            .expect("start nbd serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("nbd serve said {line:?}"))
            .to_string();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Serve { child, addr }
    }

    fn uri(&self, spec: &str) -> String {
        format!("nbd://{}/{spec}", self.addr)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn qemu_and_libnbd_against_nbd_serve() {
    let pool = Pool(unique("pool"));
    ok("ceph", &["osd", "pool", "create", &pool.0, "8", "8"]);
    ok("rbd", &["pool", "init", &pool.0]);
    let spec = format!("{}/img", pool.0);
    ok(
        "rbd",
        &[
            "create",
            "--size",
            "24M",
            "--image-feature",
            "layering",
            &spec,
        ],
    );
    let tmp = std::env::temp_dir().join(unique("files"));
    std::fs::create_dir_all(&tmp).unwrap();
    let path = |f: &str| tmp.join(f).to_string_lossy().into_owned();

    let srv = Serve::start(&spec, &[]);
    let uri = srv.uri(&spec);
    let info = sh("nbdinfo", &["--json", &uri]);
    assert!(info.contains(&format!("\"export-size\": {SIZE}")), "{info}");

    // qemu-img convert into the export: rbd export gives the same bytes
    let mut model = pattern(7, SIZE);
    model[5 << 20..7 << 20].fill(0); // a hole qemu-img may skip or zero
    std::fs::write(path("src.raw"), &model).unwrap();
    sh(
        "qemu-img",
        &[
            "convert",
            "-n",
            "-f",
            "raw",
            "-O",
            "raw",
            &path("src.raw"),
            &uri,
        ],
    );
    ok(
        "rbd",
        &["export", "--no-progress", &spec, &path("exp1.raw")],
    );
    assert!(
        std::fs::read(path("exp1.raw")).unwrap() == model,
        "rbd export after convert"
    );

    // qemu-io: writes at random offsets (some in flight together), zeroes, discards,
    // FUA, each read back with its pattern
    let mut cmds: Vec<String> = Vec::new();
    let mut x = 0x1234_5678_u64;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut checks = Vec::new();
    for i in 0..24u64 {
        let len = 1 + next(200_000) as usize;
        let off = next((SIZE - len) as u64) as usize;
        let pat = (i as u8).wrapping_mul(37) | 1;
        let (verb, val) = match i % 6 {
            0 => ("write -z", 0u8),
            1 => ("discard", 0),
            2 => ("write -f -P", pat),
            3 | 4 => ("aio_write -P", pat),
            _ => ("write -P", pat),
        };
        let cmd = if val == 0 {
            format!("{verb} {off} {len}")
        } else {
            format!("{verb} {val:#x} {off} {len}")
        };
        cmds.push(cmd);
        model[off..off + len].fill(val);
        checks.push((off, len));
        if i % 6 == 4 {
            cmds.push("aio_flush".into());
        }
    }
    cmds.push("aio_flush".into());
    // verify the last state of each range that nothing later overwrote
    for (j, &(off, len)) in checks.iter().enumerate() {
        let clobbered = checks[j + 1..]
            .iter()
            .any(|&(o, l)| o < off + len && off < o + l);
        if !clobbered {
            cmds.push(format!("read -P {:#x} {off} {len}", model[off]));
        }
    }
    let mut args = vec!["-f".to_string(), "raw".to_string(), uri.clone()];
    for c in &cmds {
        args.push("-c".into());
        args.push(c.clone());
    }
    let o = Command::new("qemu-io").args(&args).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success()
            && !out.contains("Pattern verification failed")
            && !out.contains("error"),
        "qemu-io: {}",
        show(&o)
    );

    // qemu-img convert out of the export and rbd export agree with the model
    sh(
        "qemu-img",
        &["convert", "-f", "raw", "-O", "raw", &uri, &path("back.raw")],
    );
    assert!(
        std::fs::read(path("back.raw")).unwrap() == model,
        "convert from nbd"
    );
    ok(
        "rbd",
        &["export", "--no-progress", &spec, &path("exp2.raw")],
    );
    assert!(
        std::fs::read(path("exp2.raw")).unwrap() == model,
        "rbd export after qemu-io"
    );
    drop(srv);

    // a snapshot export is read-only
    ok("rbd", &["snap", "create", &format!("{spec}@s")]);
    let snap = format!("{spec}@s");
    let srv = Serve::start(&snap, &[]);
    let uri = srv.uri(&snap);
    let info = sh("nbdinfo", &["--json", &uri]);
    assert!(info.contains("\"is_read_only\": true"), "{info}");
    let o = Command::new("qemu-io")
        .args(["-f", "raw", &uri, "-c", "write -P 1 0 512"])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !all.contains("wrote 512/512"),
        "write to a snapshot export: {all}"
    );
    drop(srv);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// `nbdinfo --map` (NBD_CMD_BLOCK_STATUS, `base:allocation`) shows data exactly where
/// librbd's `rbd diff` sees it, holes reading as zeros elsewhere; on a clone the parent's
/// data counts too. `qemu-img convert` out of the export still gives `rbd export`'s bytes.
#[test]
fn block_status_matches_rbd_diff() {
    let pool = Pool(unique("pool"));
    ok("ceph", &["osd", "pool", "create", &pool.0, "8", "8"]);
    ok("rbd", &["pool", "init", &pool.0]);
    let spec = format!("{}/sparse", pool.0);
    ok(
        "rbd",
        &[
            "create",
            "--size",
            "24M",
            "--image-feature",
            "layering",
            &spec,
        ],
    );
    let srv = Serve::start(&spec, &[]);
    let uri = srv.uri(&spec);
    let o = Command::new("qemu-io")
        .args(["-f", "raw", &uri])
        .args(["-c", "write -P 0x11 4096 5000"])
        .args(["-c", "write -P 0x22 9437191 100"])
        .args(["-c", "write -P 0x33 16777216 4194304"])
        .args(["-c", "discard 16777216 4194304"])
        .args(["-c", "write -P 0x44 20971520 4096"])
        .output()
        .unwrap();
    assert!(o.status.success(), "qemu-io: {}", show(&o));
    drop(srv);

    let check = |spec: &str| {
        let srv = Serve::start(spec, &[]);
        let map = sh("nbdinfo", &["--map", "--json", &srv.uri(spec)]);
        let map: serde_json::Value = serde_json::from_str(&map).expect("nbdinfo json");
        let mut data = Vec::new();
        let mut pos = 0;
        for e in map.as_array().expect("array") {
            let (off, len, ty) = (
                e["offset"].as_u64().unwrap(),
                e["length"].as_u64().unwrap(),
                e["type"].as_u64().unwrap(),
            );
            assert_eq!(off, pos, "contiguous map: {map}");
            pos += len;
            match ty {
                0 => data.push((off, len)),
                3 => {}
                t => panic!("type {t} in {map}"),
            }
        }
        assert_eq!(pos, SIZE as u64, "the map covers the export");
        let diff: serde_json::Value =
            serde_json::from_str(&ok("rbd", &["diff", "--format", "json", spec])).unwrap();
        let theirs: Vec<(u64, u64)> = diff
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["exists"] == "true")
            .map(|e| (e["offset"].as_u64().unwrap(), e["length"].as_u64().unwrap()))
            .collect();
        assert_eq!(data, theirs, "{spec}: nbd map {map} vs rbd diff {diff}");
        data
    };
    let data = check(&spec);
    assert_eq!(data.len(), 3, "three objects with data: {data:?}");

    // a clone: the parent's data, plus what the child wrote
    ok("rbd", &["snap", "create", &format!("{spec}@s")]);
    ok("rbd", &["snap", "protect", &format!("{spec}@s")]);
    let child = format!("{}/child", pool.0);
    ok("rbd", &["clone", &format!("{spec}@s"), &child]);
    let srv = Serve::start(&child, &[]);
    let o = Command::new("qemu-io")
        .args(["-f", "raw", &srv.uri(&child)])
        .args(["-c", "write -P 0x55 12582912 4096"])
        .output()
        .unwrap();
    assert!(o.status.success(), "qemu-io: {}", show(&o));
    drop(srv);
    let cdata = check(&child);
    assert!(cdata.len() >= 4, "parent and child data: {cdata:?}");
    // and the snapshot export maps as the image did when it was taken
    assert_eq!(check(&format!("{spec}@s")), data);

    let tmp = std::env::temp_dir().join(unique("bs"));
    std::fs::create_dir_all(&tmp).unwrap();
    let path = |f: &str| tmp.join(f).to_string_lossy().into_owned();
    let srv = Serve::start(&child, &["--read-only"]);
    sh(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "raw",
            &srv.uri(&child),
            &path("nbd.raw"),
        ],
    );
    drop(srv);
    ok(
        "rbd",
        &["export", "--no-progress", &child, &path("rbd.raw")],
    );
    assert!(
        std::fs::read(path("nbd.raw")).unwrap() == std::fs::read(path("rbd.raw")).unwrap(),
        "convert through block status equals rbd export"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
