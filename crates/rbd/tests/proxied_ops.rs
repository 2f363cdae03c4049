//! Maintenance operations proxied through the exclusive-lock owner, with librbd on the
//! other side both ways: librbd (the `rbd` CLI, python3-rbd) asks us, the owner in
//! exclusive mode, to resize, snapshot, flatten, change features, rebuild the object map,
//! set metadata and rename; and we ask a python3-rbd owner that holds the lock with
//! `lock_acquire(EXCLUSIVE)` to run ours.

mod common;

use bytes::Bytes;
use ceph_rbd::{OpenOptions, Rbd};
use common::*;
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};

const MIB: u64 = 1 << 20;

fn lock_owner(pool: &str, image: &str) -> Option<String> {
    let out = rbd_ok(&["lock", "ls", "--format", "json", &format!("{pool}/{image}")]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("lock ls json");
    Some(v.as_array()?.first()?["locker"].as_str()?.to_string())
}

fn object_map_check(pool: &str, spec: &str) {
    let (ok, out, err) = rbd_cli(&["object-map", "check", &format!("{pool}/{spec}")]);
    assert!(ok, "object-map check {spec}: {out}{err}");
    assert!(
        !err.contains("failed") && !out.contains("failed") && !err.contains("invalid"),
        "object-map check {spec} reported problems: {out}{err}"
    );
}

fn info(pool: &str, spec: &str) -> serde_json::Value {
    let out = rbd_ok(&["info", "--format", "json", &format!("{pool}/{spec}")]);
    serde_json::from_str(&out).unwrap()
}

/// `rbd` with a time limit: a request nobody answers must fail the test, not hang it.
fn rbd_timed(args: &[&str]) -> (bool, String) {
    let e = env();
    let out = Command::new("timeout")
        .arg("120")
        .arg(oracle("rbd"))
        .args(["--conf", &e.conf, "--keyring", &e.keyring])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn rbd_must(args: &[&str]) {
    let (ok, out) = rbd_timed(args);
    assert!(ok, "rbd {args:?} (proxied to us) failed: {out}");
}

/// We hold the lock in exclusive mode; librbd's maintenance operations are sent to us,
/// run here, and reported back: each succeeds, we stay the owner, and we see the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librbd_requests_run_by_our_owner() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "pxo").await;
    let p = pool.name.clone();
    let me = format!("client.{}", rados.instance_id());
    rbd_ok(&["create", "--size", "32M", &format!("{p}/img")]);
    let excl = OpenOptions {
        exclusive: true,
        ..Default::default()
    };
    let img = pool.rbd.open_with("img", &excl).await.unwrap();
    img.write(MIB, Bytes::from(vec![0x5a; 8192])).await.unwrap();
    assert_eq!(lock_owner(&p, "img").as_deref(), Some(me.as_str()));
    let spec = format!("{p}/img");

    rbd_must(&["resize", "--size", "48M", &spec]);
    img.refresh().await.unwrap();
    assert_eq!(img.size().await.unwrap(), 48 * MIB);

    rbd_must(&["snap", "create", &format!("{spec}@s1")]);
    rbd_must(&["snap", "create", &format!("{spec}@s2")]);
    img.refresh().await.unwrap();
    let names: Vec<String> = img
        .snapshots()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["s1", "s2"]);
    rbd_must(&["snap", "rm", &format!("{spec}@s2")]);

    // python3-rbd is the same librbd: its resize is proxied too
    python(
        &p,
        "img = rbd.Image(ioctx, 'img')\nimg.resize(40 << 20)\nimg.close()",
    );
    img.refresh().await.unwrap();
    assert_eq!(img.size().await.unwrap(), 40 * MIB);

    rbd_must(&["feature", "disable", &spec, "fast-diff"]);
    img.refresh().await.unwrap();
    // librbd's rule, which we follow as the owner: fast-diff goes with the object map
    assert_eq!(img.features().await.unwrap(), 61 & !(8 | 16));
    img.write(2 * MIB, Bytes::from(vec![0x5b; 4096]))
        .await
        .unwrap();
    rbd_must(&["feature", "enable", &spec, "fast-diff"]);
    img.refresh().await.unwrap();
    assert_eq!(img.features().await.unwrap(), 61);
    assert!(info(&p, "img")["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "fast diff invalid"));
    rbd_must(&["object-map", "rebuild", &spec]);
    assert_eq!(info(&p, "img")["flags"].as_array().unwrap().len(), 0);

    rbd_must(&["image-meta", "set", &spec, "owner", "proxied"]);
    assert_eq!(img.metadata_get("owner").await.unwrap(), b"proxied");
    rbd_must(&["image-meta", "remove", &spec, "owner"]);
    assert!(img.metadata_get("owner").await.is_err());

    rbd_must(&["resize", "--size", "24M", "--allow-shrink", &spec]);
    img.refresh().await.unwrap();
    assert_eq!(img.size().await.unwrap(), 24 * MIB);

    rbd_must(&["rename", &spec, &format!("{p}/img2")]);
    assert_eq!(img.name(), "img2");

    // we kept the lock all along, and our data and map are intact
    assert!(img.is_lock_owner());
    assert_eq!(lock_owner(&p, "img2").as_deref(), Some(me.as_str()));
    assert_eq!(
        img.read(MIB, 8192).await.unwrap(),
        Bytes::from(vec![0x5a; 8192])
    );
    img.write(20 * MIB, Bytes::from(vec![7u8; 4096]))
        .await
        .unwrap();
    img.close().await.unwrap();
    object_map_check(&p, "img2");
    object_map_check(&p, "img2@s1");
    pool.cleanup().await;
}

/// `rbd flatten` of a clone we hold exclusively runs here and detaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librbd_flatten_run_by_our_owner() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "pxf").await;
    let p = pool.name.clone();
    rbd_ok(&["create", "--size", "16M", &format!("{p}/parent")]);
    python(
        &p,
        "img = rbd.Image(ioctx, 'parent')\nimg.write(b'\\x33' * 65536, 4 << 20)\nimg.close()",
    );
    rbd_ok(&["snap", "create", &format!("{p}/parent@base")]);
    rbd_ok(&[
        "clone",
        "--rbd-default-clone-format",
        "2",
        &format!("{p}/parent@base"),
        &format!("{p}/child"),
    ]);
    let child = pool
        .rbd
        .open_with(
            "child",
            &OpenOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    child
        .write(8 * MIB, Bytes::from(vec![0x44; 4096]))
        .await
        .unwrap();
    assert!(child.parent_info().await.unwrap().is_some());
    rbd_must(&["flatten", &format!("{p}/child")]);
    child.refresh().await.unwrap();
    assert!(child.parent_info().await.unwrap().is_none());
    assert!(child.is_lock_owner());
    assert_eq!(
        child.read(4 * MIB, 65536).await.unwrap(),
        Bytes::from(vec![0x33; 65536])
    );
    child.close().await.unwrap();
    object_map_check(&p, "child");
    rbd_ok(&["snap", "rm", &format!("{p}/parent@base")]);
    pool.cleanup().await;
}

/// A python3-rbd client holds the lock with `lock_acquire(EXCLUSIVE)` (it refuses to
/// hand it over); our maintenance operations are sent to it and run there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_requests_run_by_librbd_owner() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "pxl").await;
    let p = pool.name.clone();
    rbd_ok(&["create", "--size", "32M", &format!("{p}/img")]);
    let e = env();
    let mut child = Command::new(oracle("python3"))
        .arg("-c")
        .arg(format!(
            "import rados, rbd, sys\ncluster = rados.Rados(conffile={conf:?}, conf={{'keyring': {key:?}}})\ncluster.connect()\nioctx = cluster.open_ioctx({p:?})\nimg = rbd.Image(ioctx, 'img')\nimg.lock_acquire(rbd.RBD_LOCK_MODE_EXCLUSIVE)\nimg.write(b'\\x61' * 4096, 0)\nprint('locked', flush=True)\nsys.stdin.readline()\nprint(img.size(), sorted(s['name'] for s in img.list_snaps()), flush=True)\nimg.close()\n",
            conf = e.conf,
            key = e.keyring
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    let owner = lock_owner(&p, "img").unwrap();

    let img = pool.rbd.open("img").await.unwrap();
    img.resize(64 * MIB, false).await.unwrap();
    assert_eq!(img.size().await.unwrap(), 64 * MIB);
    let id = img.snap_create("ours").await.unwrap();
    let s = img.snapshots().await.unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].name.as_str(), s[0].id), ("ours", id));
    img.snap_create("gone").await.unwrap();
    img.snap_remove("gone").await.unwrap();
    // librbd runs these without the lock (no journaling): no proxy, no hand-over
    img.snap_rename("ours", "mine").await.unwrap();
    img.snap_protect("mine").await.unwrap();
    img.snap_unprotect("mine").await.unwrap();
    // (librbd disables the object map with fast-diff: ask for what both agree on)
    img.update_features(ceph_rbd::features::OBJECT_MAP, false)
        .await
        .unwrap();
    assert_eq!(img.features().await.unwrap(), 61 & !(8 | 16));
    img.update_features(
        ceph_rbd::features::OBJECT_MAP | ceph_rbd::features::FAST_DIFF,
        true,
    )
    .await
    .unwrap();
    assert_eq!(img.features().await.unwrap(), 61);
    img.object_map_rebuild(None).await.unwrap();
    // an error from the owner comes back as is
    let err = img.resize(16 * MIB, false).await.unwrap_err();
    assert_eq!(err.errno(), ceph_rados::Errno::EINVAL, "{err}");
    let err = img.snap_remove("nonesuch").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");

    // the lock never moved; our write is still refused by the exclusive owner
    assert!(!img.is_lock_owner());
    assert_eq!(lock_owner(&p, "img").unwrap(), owner);
    let err = img.write(0, Bytes::from(vec![1u8; 512])).await.unwrap_err();
    assert_eq!(err.errno(), ceph_rados::Errno::EROFS, "{err}");

    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("{} ['mine']", 64 * MIB));
    assert!(child.wait().unwrap().success());
    assert_eq!(info(&p, "img")["flags"].as_array().unwrap().len(), 0);
    img.close().await.unwrap();
    object_map_check(&p, "img");
    let _ = Rbd::new(pool.rbd.ioctx().clone());
    pool.cleanup().await;
}
