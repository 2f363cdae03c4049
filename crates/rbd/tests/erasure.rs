//! Images whose data lives in an erasure-coded pool (`rbd create --data-pool EC`), the
//! usual way to put RBD on EC: the header and metadata stay in a replicated pool, the
//! data objects go to the EC pool (which needs `allow_ec_overwrites`). librbd (`rbd`
//! CLI, python3-rbd) is the other party.

mod common;

use bytes::Bytes;
use ceph_rbd::CreateOptions;
use common::*;
use std::process::Command;

const MIB: u64 = 1 << 20;

/// An EC pool (k=2, m=1, failure domain osd: fits the 3-OSD test cluster) with overwrites
/// on, removed on drop. Memstore OSDs need the mon's debug switch for overwrites.
struct EcPool(String);

impl EcPool {
    fn new() -> EcPool {
        ceph_ok(&[
            "config",
            "set",
            "mon",
            "mon_debug_no_require_bluestore_for_ec_overwrites",
            "true",
        ]);
        ceph_ok(&[
            "osd",
            "erasure-code-profile",
            "set",
            "rs-ec21",
            "k=2",
            "m=1",
            "crush-failure-domain=osd",
        ]);
        let p = EcPool(unique("rbd-ec"));
        ceph_ok(&[
            "osd", "pool", "create", &p.0, "8", "8", "erasure", "rs-ec21",
        ]);
        ceph_ok(&["osd", "pool", "set", &p.0, "allow_ec_overwrites", "true"]);
        ceph_ok(&["osd", "pool", "application", "enable", &p.0, "rbd"]);
        p
    }
}

impl Drop for EcPool {
    fn drop(&mut self) {
        let e = env();
        let _ = Command::new(oracle("ceph"))
            .args(["--conf", &e.conf, "--keyring", &e.keyring])
            .args(["osd", "pool", "rm", &self.0, &self.0])
            .arg("--yes-i-really-really-mean-it")
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_with_an_erasure_coded_data_pool() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "ecmeta").await;
    let ec = EcPool::new();
    let p = &pool.name;

    // Ours: default features (exclusive lock, object map) with data on the EC pool.
    let size = 10 * MIB;
    pool.rbd
        .create(
            "ours",
            size,
            &CreateOptions {
                data_pool: Some(ec.0.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let info = rbd_ok(&["info", &format!("{p}/ours")]);
    assert!(info.contains(&format!("data_pool: {}", ec.0)), "{info}");
    let img = pool.rbd.open("ours").await.unwrap();
    let mut model = vec![0u8; size as usize];
    let mut rng = Rng(seed());
    for _ in 0..20 {
        // unaligned, across object boundaries: partial overwrites of EC objects
        let off = rng.below(size);
        let len = (1 + rng.below(600_000)).min(size - off);
        let d = rng.bytes(len as usize);
        img.write(off, Bytes::from(d.clone())).await.unwrap();
        model[off as usize..(off + len) as usize].copy_from_slice(&d);
    }
    img.discard(3 * MIB + 5, MIB).await.unwrap();
    model[(3 * MIB + 5) as usize..(4 * MIB + 5) as usize].fill(0);
    img.flush().await.unwrap();
    assert_eq!(sha256(&img.read(0, size).await.unwrap()), sha256(&model));
    img.close().await.unwrap();
    assert_eq!(sha256(&rbd_export(p, "ours")), sha256(&model));

    // The data objects are in the EC pool, not in the metadata pool.
    let e = env();
    let ls = Command::new(oracle("rados"))
        .args([
            "--conf",
            &e.conf,
            "--keyring",
            &e.keyring,
            "-p",
            &ec.0,
            "ls",
        ])
        .output()
        .unwrap();
    let ls = String::from_utf8_lossy(&ls.stdout);
    assert!(ls.lines().any(|l| l.starts_with("rbd_data.")), "{ls}");

    // librbd's: created and written by librbd, read and rewritten by us.
    rbd_ok(&[
        "create",
        "--size",
        "6M",
        "--data-pool",
        &ec.0,
        &format!("{p}/theirs"),
    ]);
    python(
        p,
        "img = rbd.Image(ioctx, 'theirs')\nimport random\nr = random.Random(5)\nfor i in range(12):\n    o = r.randrange(0, 6 << 20)\n    img.write(bytes([r.randrange(1, 255)]) * min(300000, (6 << 20) - o), o)\nimg.close()",
    );
    let img = pool.rbd.open("theirs").await.unwrap();
    let mut model = img.read(0, 6 * MIB).await.unwrap().to_vec();
    assert_eq!(sha256(&model), sha256(&rbd_export(p, "theirs")));
    for _ in 0..10 {
        let off = rng.below(6 * MIB);
        let len = (1 + rng.below(300_000)).min(6 * MIB - off);
        let d = rng.bytes(len as usize);
        img.write(off, Bytes::from(d.clone())).await.unwrap();
        model[off as usize..(off + len) as usize].copy_from_slice(&d);
    }
    img.close().await.unwrap();
    assert_eq!(sha256(&rbd_export(p, "theirs")), sha256(&model));

    pool.rbd.remove("ours").await.unwrap();
    pool.rbd.remove("theirs").await.unwrap();
    drop(ec);
    pool.cleanup().await;
}
