//! Format-1 images (issue 12) through the library against librbd 16.2: an image
//! python3-rbd creates in the old format (with `RBD_FORCE_ALLOW_V1`, without which
//! Pacific refuses) is opened, read, written and discarded by us, and `rbd export`
//! reads back exactly what we wrote. Fails (never skips) without a test cluster.

mod common;

use bytes::Bytes;
use ceph_rados::Errno;
use ceph_rbd::RbdError;
use common::*;

const MIB: u64 = 1 << 20;

/// Format-1 image `name` of `size` bytes made by `rbd create --image-format 1` (with
/// `RBD_FORCE_ALLOW_V1`), then `len` bytes of [`pattern`] written at each offset of
/// `offs` by python3-rbd. (python3-rbd's `create(..., old_format=True)` makes a
/// format-2 image on Pacific: `rbd_create` follows `rbd_default_format`.)
fn make_v1(pool: &str, name: &str, size: u64, offs: &[u64], len: usize) {
    let e = env();
    let o = std::process::Command::new(oracle("rbd"))
        .args(["--conf", &e.conf, "--keyring", &e.keyring])
        .args(["create", "--image-format", "1", "--size"])
        .arg(format!("{size}B"))
        .arg(format!("{pool}/{name}"))
        .env("RBD_FORCE_ALLOW_V1", "1")
        .output()
        .expect("rbd");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let writes: String = offs
        .iter()
        .map(|o| format!("img.write(pattern({o}, {len}), {o})\n"))
        .collect();
    python(
        pool,
        &format!(
            "def pattern(o, n):\n    return bytes(((o // 512 + i * 7) & 0xff for i in range(n)))\n\
             img = rbd.Image(ioctx, {name:?})\nassert img.old_format()\n{writes}img.close()\n"
        ),
    );
}

fn pattern(o: u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| ((o / 512 + i as u64 * 7) & 0xff) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_discards_into_a_librbd_format1_image() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "fmt1-io").await;
    let size = 12 * MIB;
    let offs = [0, 4 * MIB - 1000, 9 * MIB + 17];
    make_v1(&pool.name, "old", size, &offs, 5000);
    let mut model = vec![0u8; size as usize];
    for &o in &offs {
        model[o as usize..o as usize + 5000].copy_from_slice(&pattern(o, 5000));
    }
    // librbd's snapshot of that state (cls_rbd's old `snap_add` on the header)
    rbd_ok(&["snap", "create", &format!("{}/old@before", pool.name)]);
    let before = model.clone();

    let img = pool.rbd.open("old").await.expect("open format 1");
    assert_eq!(img.format(), 1);
    assert_eq!(img.id(), "");
    assert_eq!(img.size().await.unwrap(), size);
    assert!(img.object_prefix().await.unwrap().starts_with("rb.0."));
    assert_eq!(&img.read(0, size).await.unwrap()[..], &model[..]);

    // unaligned writes across object boundaries
    let sd = seed();
    eprintln!("seed {sd}");
    let mut rng = Rng(sd);
    for _ in 0..24 {
        let off = rng.below(size - 1);
        let len = 1 + rng.below((size - off).min(300_000));
        let data = rng.bytes(len as usize);
        model[off as usize..(off + len) as usize].copy_from_slice(&data);
        img.write(off, Bytes::from(data)).await.unwrap();
    }
    // a whole object discarded (the object goes), a partial range zeroed
    img.discard(4 * MIB, 4 * MIB).await.unwrap();
    model[4 * MIB as usize..8 * MIB as usize].fill(0);
    img.write_zeroes(MIB + 3, 70_000).await.unwrap();
    model[(MIB + 3) as usize..(MIB + 3 + 70_000) as usize].fill(0);
    img.flush().await.unwrap();
    assert_eq!(&img.read(0, size).await.unwrap()[..], &model[..]);
    img.close().await.unwrap();

    // librbd reads back what we wrote, and the snapshot kept the old bytes
    assert_eq!(sha256(&rbd_export(&pool.name, "old")), sha256(&model));
    assert_eq!(
        sha256(&rbd_export(&pool.name, "old@before")),
        sha256(&before)
    );

    // our snapshot handle reads the snapshot and refuses writes
    let snap = pool.rbd.open_snapshot("old", "before").await.unwrap();
    assert_eq!(snap.format(), 1);
    assert_eq!(&snap.read(0, size).await.unwrap()[..], &before[..]);
    let e = snap
        .write(0, Bytes::from_static(b"x"))
        .await
        .expect_err("write to a snapshot");
    assert!(matches!(e, RbdError::ReadOnly), "{e}");
    assert_eq!(e.errno(), Errno::EROFS);
    snap.close().await.unwrap();
    assert_eq!(
        sha256(&rbd_export(&pool.name, "old@before")),
        sha256(&before)
    );

    // still a format-1 image for librbd (header untouched: no omap keys were added)
    let info = rbd_ok(&["info", "--format", "json", &format!("{}/old", pool.name)]);
    assert!(info.contains("\"format\":1"), "{info}");
    pool.cleanup().await;
}

/// A snapshot whose id the monitor refuses to release (the user's caps allow writing the
/// header but not releasing snapshot ids in the pool) is not removed: the error is EPERM, the
/// snapshot is still listed, and a user with the caps removes it afterwards. librbd's
/// order (release, then the header); the other order left the snapshot's clones with no
/// snapshot to remove them through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_whose_id_is_not_released_stays_listed() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "fmt1-snaprm").await;
    make_v1(&pool.name, "old", 4 * MIB, &[0], 4096);
    let img = pool.rbd.open("old").await.unwrap();
    img.snap_create("s").await.unwrap();
    img.write(0, Bytes::from(vec![9u8; 4096])).await.unwrap();
    img.close().await.unwrap();

    // writes anywhere in pools tagged for rbd, but no write grant that names the pool
    // or matches all: the monitor does not count application tags when it decides who
    // may release snap ids (OSDMonitor.cc `is_osd_writable`). (An `object_prefix`
    // grant is refused by 16.2 but accepted by 18.2.)
    let osd_cap = "allow rwx tag rbd *=*";
    let (limited, user) = connect_new_user("snaprm", "allow r", osd_cap).await;
    let rbd = ceph_rbd::Rbd::open_pool(&limited, &pool.name)
        .await
        .unwrap();
    let img = rbd.open("old").await.unwrap();
    let err = img.snap_remove("s").await.expect_err("release refused");
    assert_eq!(err.errno(), Errno::EPERM, "{err}");
    img.close().await.unwrap();
    let ls = rbd_ok(&["snap", "ls", &format!("{}/old", pool.name)]);
    assert!(ls.contains(" s "), "the snapshot is still listed: {ls}");

    let img = pool.rbd.open("old").await.unwrap();
    img.snap_remove("s").await.unwrap();
    img.close().await.unwrap();
    let ls = rbd_ok(&["snap", "ls", &format!("{}/old", pool.name)]);
    assert!(!ls.contains(" s "), "removed: {ls}");
    ceph_ok(&["auth", "del", &format!("client.{user}")]);
    pool.cleanup().await;
}
