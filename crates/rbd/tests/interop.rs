//! Interop with librbd on the real test cluster: images made by `rbd`/python-rbd are read
//! and written by us and vice versa; `rbd info`, `rbd export`, `rbd rm`, `rbd children`,
//! `rbd flatten`, snapshots (a refused snap-id release included), export-diff/import-diff
//! both ways.

mod common;

use bytes::Bytes;
use ceph_rados::Errno;
use ceph_rbd::{CloneFormat, CloneOptions, CreateOptions, OpenOptions, RbdError};
use common::*;
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// Random unaligned writes across object boundaries, mirrored in `model`.
async fn scribble(
    img: &ceph_rbd::Image,
    model: &mut [u8],
    rng: &mut Rng,
    n: usize,
    object_size: u64,
) {
    let size = model.len() as u64;
    for _ in 0..n {
        // bias towards object boundaries
        let off = if rng.below(2) == 0 {
            let b = rng.below(size / object_size + 1) * object_size;
            b.saturating_sub(rng.below(5000)).min(size - 1)
        } else {
            rng.below(size)
        };
        let len = (1 + rng.below(3 * object_size / 2)).min(size - off);
        let data = rng.bytes(len as usize);
        img.write(off, Bytes::from(data.clone())).await.unwrap();
        model[off as usize..(off + len) as usize].copy_from_slice(&data);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_write_info_export() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "create").await;
    let name = "img1";
    let size = 9 * MIB + 12345;
    let opts = CreateOptions {
        order: Some(20),
        ..Default::default()
    };
    let id = pool.rbd.create(name, size, &opts).await.unwrap();
    // errors: exists, bad name, zero size, unknown/unsupported features
    assert_eq!(
        pool.rbd
            .create(name, size, &opts)
            .await
            .unwrap_err()
            .errno(),
        Errno::EEXIST
    );
    assert_eq!(
        pool.rbd
            .create("a/b", size, &opts)
            .await
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    assert_eq!(
        pool.rbd.create("zero", 0, &opts).await.unwrap_err().errno(),
        Errno::EINVAL
    );
    let bad = CreateOptions {
        features: Some(ceph_rbd::features::JOURNALING | ceph_rbd::features::EXCLUSIVE_LOCK | 1),
        ..Default::default()
    };
    let e = pool.rbd.create("j", size, &bad).await.unwrap_err();
    assert!(
        matches!(e, RbdError::UnsupportedFeatures { .. }) && e.to_string().contains("journaling"),
        "{e}"
    );
    let list = pool.rbd.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].name.as_str(), list[0].id.as_str()),
        (name, id.as_str())
    );
    assert!(rbd_ok(&["ls", &pool.name]).lines().any(|l| l == name));

    let img = pool.rbd.open(name).await.unwrap();
    let mut model = vec![0u8; size as usize];
    let s = seed();
    println!("seed {s:#x}");
    let mut rng = Rng(s);
    scribble(&img, &mut model, &mut rng, 40, MIB).await;
    // read back through us, at odd ranges
    for _ in 0..20 {
        let off = rng.below(size);
        let len = rng.below(3 * MIB).min(size - off);
        let got = img.read(off, len).await.unwrap();
        assert_eq!(
            &got[..],
            &model[off as usize..(off + len) as usize],
            "read at {off}+{len}"
        );
    }
    // discard + write_zeroes
    img.discard(MIB - 100, 2 * MIB + 300).await.unwrap();
    model[(MIB - 100) as usize..(3 * MIB + 200) as usize].fill(0);
    img.write_zeroes(5 * MIB + 1, 7).await.unwrap();
    model[(5 * MIB + 1) as usize..(5 * MIB + 8) as usize].fill(0);
    assert_eq!(img.read(0, size).await.unwrap(), &model[..]);

    // rbd info agrees on every shared field
    let ours = img.info().await.unwrap().to_json();
    let theirs: Value = serde_json::from_str(&rbd_ok(&[
        "info",
        "--format",
        "json",
        &format!("{}/{name}", pool.name),
    ]))
    .unwrap();
    for (k, v) in theirs.as_object().unwrap() {
        assert_eq!(
            ours.get(k),
            Some(v),
            "field {k}: ours {:?} theirs {v}",
            ours.get(k)
        );
    }
    // rbd export equals what we wrote
    assert_eq!(sha256(&rbd_export(&pool.name, name)), sha256(&model));

    // compare-and-write
    let cur = img.read(4096, 16).await.unwrap();
    img.compare_and_write(4096, cur.clone(), Bytes::from_static(b"0123456789abcdef"))
        .await
        .unwrap();
    let e = img
        .compare_and_write(4096, cur, Bytes::from_static(b"xxxxxxxxxxxxxxxx"))
        .await
        .unwrap_err();
    assert!(matches!(e, RbdError::CompareMismatch { offset: 0 }), "{e}");
    model[4096..4112].copy_from_slice(b"0123456789abcdef");

    // resize: grow, then shrink (needs allow_shrink) and check the tail
    img.resize(size + 3 * MIB, false).await.unwrap();
    assert_eq!(
        img.read(size, 3 * MIB)
            .await
            .unwrap()
            .iter()
            .filter(|b| **b != 0)
            .count(),
        0
    );
    assert!(img.resize(3 * MIB + 5, false).await.is_err());
    img.resize(3 * MIB + 5, true).await.unwrap();
    model.truncate((3 * MIB + 5) as usize);
    img.resize(4 * MIB, false).await.unwrap();
    model.resize((4 * MIB) as usize, 0);
    assert_eq!(img.read(0, 4 * MIB).await.unwrap(), &model[..]);
    assert_eq!(sha256(&rbd_export(&pool.name, name)), sha256(&model));
    let objs = rados
        .ioctx(&pool.name)
        .await
        .unwrap()
        .list_objects()
        .await
        .unwrap();
    assert!(
        objs.iter().all(
            |o| !o.oid.starts_with(&format!("rbd_data.{id}.000000000000000"))
                || u64::from_str_radix(o.oid.rsplit('.').next().unwrap(), 16).unwrap() < 4
        ),
        "objects past the end remain"
    );

    // rename
    img.close().await.unwrap();
    pool.rbd.rename(name, "img2").await.unwrap();
    assert!(rbd_ok(&["ls", &pool.name]).lines().any(|l| l == "img2"));
    let img = pool.rbd.open("img2").await.unwrap();
    assert_eq!(img.read(0, 4 * MIB).await.unwrap(), &model[..]);

    // rbd rm refuses while we hold it open; ours refuses with snapshots
    let (ok, _, err) = rbd_cli(&["rm", "--no-progress", &format!("{}/img2", pool.name)]);
    assert!(!ok, "rbd rm succeeded while the image was open");
    assert!(err.contains("watchers") || err.contains("busy"), "{err}");
    assert_eq!(
        pool.rbd.remove("img2").await.unwrap_err().errno(),
        Errno::EBUSY
    );
    assert!(pool
        .rbd
        .list()
        .await
        .unwrap()
        .iter()
        .any(|i| i.name == "img2"));
    img.snap_create("s").await.unwrap();
    // librbd checks snapshots before watchers
    assert_eq!(
        pool.rbd.remove("img2").await.unwrap_err().errno(),
        Errno::ENOTEMPTY
    );
    img.close().await.unwrap();
    assert_eq!(
        pool.rbd.remove("img2").await.unwrap_err().errno(),
        Errno::ENOTEMPTY
    );
    let img = pool.rbd.open("img2").await.unwrap();
    img.snap_remove("s").await.unwrap();
    img.close().await.unwrap();
    pool.rbd.remove("img2").await.unwrap();
    assert!(pool.rbd.list().await.unwrap().is_empty());
    let left = rados
        .ioctx(&pool.name)
        .await
        .unwrap()
        .list_objects()
        .await
        .unwrap();
    assert!(
        left.iter().all(|o| o.oid.starts_with("rbd_directory")
            || o.oid == "rbd_info"
            || o.oid == "rbd_trash"),
        "{left:?}"
    );
    pool.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librbd_image_read_write_and_features() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "lib").await;
    let p = &pool.name;
    rbd_ok(&[
        "create",
        "--image-feature",
        "layering",
        "--size",
        "20M",
        &format!("{p}/theirs"),
    ]);
    // librbd writes a pattern
    python(p, "img = rbd.Image(ioctx, 'theirs')\nfor i in range(5):\n    img.write(bytes([i + 1]) * 1000, i * 4194304 - 500 if i else 0)\nimg.close()");
    let img = pool.rbd.open("theirs").await.unwrap();
    let data = img.read(0, 20 * MIB).await.unwrap();
    let mut want = vec![0u8; (20 * MIB) as usize];
    for i in 0..5u64 {
        let off = if i == 0 { 0 } else { i * 4 * MIB - 500 } as usize;
        want[off..off + 1000].fill(i as u8 + 1);
    }
    assert_eq!(&data[..], &want[..]);
    // we write, librbd reads
    img.write(4 * MIB - 3, Bytes::from_static(b"abcdef"))
        .await
        .unwrap();
    let out = python(p, "img = rbd.Image(ioctx, 'theirs')\nsys.stdout.write(img.read(4194304 - 3, 6).decode())\nimg.close()");
    assert_eq!(out, "abcdef");
    img.close().await.unwrap();

    // journaling images: refused for writing (naming the feature), readable
    rbd_ok(&[
        "create",
        "--size",
        "8M",
        "--image-feature",
        "layering,exclusive-lock,journaling",
        &format!("{p}/locked"),
    ]);
    let e = pool.rbd.open("locked").await.unwrap_err();
    assert!(
        e.to_string().contains("journaling") && e.errno() == Errno::ENOSYS,
        "{e}"
    );
    let ro = pool.rbd.open_read_only("locked").await.unwrap();
    assert_eq!(ro.read(0, 4096).await.unwrap().len(), 4096);
    assert!(matches!(
        ro.write(0, Bytes::from_static(b"x")).await,
        Err(RbdError::ReadOnly)
    ));
    ro.close().await.unwrap();
    pool.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_both_ways() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "snap").await;
    let p = &pool.name;
    pool.rbd
        .create("i", 12 * MIB, &CreateOptions::default())
        .await
        .unwrap();
    let img = pool.rbd.open("i").await.unwrap();
    img.write(0, Bytes::from(vec![1u8; (5 * MIB) as usize]))
        .await
        .unwrap();
    let s1 = img.snap_create("s1").await.unwrap();
    img.write(MIB, Bytes::from(vec![2u8; MIB as usize]))
        .await
        .unwrap();
    // rbd sees our snapshot and its data
    let ls: Value = serde_json::from_str(&rbd_ok(&[
        "snap",
        "ls",
        "--format",
        "json",
        &format!("{p}/i"),
    ]))
    .unwrap();
    assert_eq!(ls[0]["name"], "s1");
    assert_eq!(ls[0]["id"], s1);
    assert_eq!(
        rbd_export(p, "i@s1")[..(5 * MIB) as usize],
        vec![1u8; (5 * MIB) as usize][..]
    );
    // librbd makes a snapshot while we hold the image open (quiesce round trip)
    rbd_ok(&["snap", "create", "--no-progress", &format!("{p}/i@s2")]);
    img.write(MIB, Bytes::from(vec![3u8; 10])).await.unwrap();
    let snaps = img.snap_list().await.unwrap();
    assert_eq!(
        snaps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["s1", "s2"]
    );
    let at2 = pool.rbd.open_snapshot("i", "s2").await.unwrap();
    assert_eq!(at2.read(MIB, 10).await.unwrap(), vec![2u8; 10]);
    assert!(at2.write(0, Bytes::from_static(b"x")).await.is_err());
    let theirs: Value =
        serde_json::from_str(&rbd_ok(&["info", "--format", "json", &format!("{p}/i@s2")])).unwrap();
    let ours = at2.info().await.unwrap().to_json();
    for (k, v) in theirs.as_object().unwrap() {
        assert_eq!(ours.get(k), Some(v), "snapshot info field {k}");
    }
    at2.close().await.unwrap();
    // rename, protect, limit
    img.snap_rename("s2", "s2b").await.unwrap();
    img.snap_protect("s1").await.unwrap();
    assert_eq!(
        img.snap_remove("s1").await.unwrap_err().errno(),
        Errno::EBUSY
    );
    let ls: Value = serde_json::from_str(&rbd_ok(&[
        "snap",
        "ls",
        "--format",
        "json",
        &format!("{p}/i"),
    ]))
    .unwrap();
    assert_eq!(ls[0]["protected"], "true");
    assert_eq!(ls[1]["name"], "s2b");
    img.snap_unprotect("s1").await.unwrap();
    img.snap_set_limit(Some(2)).await.unwrap();
    assert!(img.snap_create("s3").await.is_err());
    img.snap_set_limit(None).await.unwrap();
    assert_eq!(img.snap_get_limit().await.unwrap(), None);
    // rollback to s1: the head returns to all-ones in the first 5 MiB
    img.snap_rollback("s1", |_, _| {}).await.unwrap();
    assert_eq!(
        img.read(0, 5 * MIB).await.unwrap(),
        vec![1u8; (5 * MIB) as usize]
    );
    // removal by librbd of ours and by us of theirs
    rbd_ok(&["snap", "rm", "--no-progress", &format!("{p}/i@s1")]);
    img.snap_remove("s2b").await.unwrap();
    assert!(img.snap_list().await.unwrap().is_empty());
    assert_eq!(rbd_ok(&["snap", "ls", &format!("{p}/i")]).trim(), "");
    img.close().await.unwrap();
    pool.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librbd_clones_read_identically() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "lclone").await;
    let p = &pool.name;
    rbd_ok(&[
        "create",
        "--image-feature",
        "layering",
        "--size",
        "16M",
        &format!("{p}/parent"),
    ]);
    python(p, "img = rbd.Image(ioctx, 'parent')\nimport random\nr = random.Random(7)\nfor i in range(30):\n    o = r.randrange(0, 16 << 20)\n    img.write(bytes([r.randrange(1, 255)]) * min(100000, (16 << 20) - o), o)\nimg.close()");
    rbd_ok(&["snap", "create", "--no-progress", &format!("{p}/parent@s")]);
    rbd_ok(&["snap", "protect", &format!("{p}/parent@s")]);
    rbd_ok(&[
        "clone",
        "--rbd-default-clone-format",
        "1",
        &format!("{p}/parent@s"),
        &format!("{p}/c1"),
    ]);
    rbd_ok(&[
        "clone",
        "--rbd-default-clone-format",
        "2",
        &format!("{p}/parent@s"),
        &format!("{p}/c2"),
    ]);
    // librbd copy-ups in c2, and c2 is resized down then up (overlap shrinks)
    python(p, "img = rbd.Image(ioctx, 'c2')\nimg.write(b'Z' * 5000, 4194304 - 2500)\nimg.resize(10 << 20)\nimg.resize(14 << 20)\nimg.close()");
    // a third level: clone of c1
    rbd_ok(&["snap", "create", "--no-progress", &format!("{p}/c1@t")]);
    rbd_ok(&[
        "clone",
        "--rbd-default-clone-format",
        "2",
        &format!("{p}/c1@t"),
        &format!("{p}/c3"),
    ]);
    for c in ["c1", "c2", "c3"] {
        let img = pool.rbd.open_read_only(c).await.unwrap();
        let size = img.size().await.unwrap();
        let ours = img.read(0, size).await.unwrap();
        assert_eq!(sha256(&ours), sha256(&rbd_export(p, c)), "clone {c}");
        let info = img.info().await.unwrap();
        let theirs: Value =
            serde_json::from_str(&rbd_ok(&["info", "--format", "json", &format!("{p}/{c}")]))
                .unwrap();
        assert_eq!(info.to_json()["parent"], theirs["parent"], "{c}");
        assert_eq!(info.to_json()["op_features"], theirs["op_features"], "{c}");
        img.close().await.unwrap();
    }
    // children of parent@s as we see them
    let parent = pool.rbd.open_read_only("parent").await.unwrap();
    let kids: Vec<String> = parent
        .children("s")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.image)
        .collect();
    assert_eq!(kids, ["c1", "c2"]);
    parent.close().await.unwrap();
    // our flatten of a librbd clone: no parent afterwards, data unchanged
    let before = rbd_export(p, "c2");
    let c2 = pool.rbd.open("c2").await.unwrap();
    c2.flatten(|_, _| {}).await.unwrap();
    c2.close().await.unwrap();
    let theirs: Value =
        serde_json::from_str(&rbd_ok(&["info", "--format", "json", &format!("{p}/c2")])).unwrap();
    assert!(theirs.get("parent").is_none(), "{theirs}");
    assert_eq!(sha256(&rbd_export(p, "c2")), sha256(&before));
    let kids = rbd_ok(&["children", &format!("{p}/parent@s")]);
    // whole lines: the pool name's random suffix may contain "c2" itself
    assert!(
        !kids.lines().any(|l| l.trim() == format!("{p}/c2")),
        "{kids}"
    );
    pool.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_clones_with_librbd() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "oclone").await;
    let other = TestPool::new(&rados, "oclone2").await;
    let p = &pool.name;
    let size = 10 * MIB;
    pool.rbd
        .create("base", size, &CreateOptions::default())
        .await
        .unwrap();
    let base = pool.rbd.open("base").await.unwrap();
    let mut model = vec![0u8; size as usize];
    let s = seed();
    println!("seed {s:#x}");
    let mut rng = Rng(s);
    scribble(&base, &mut model, &mut rng, 20, 4 * MIB).await;
    base.snap_create("gold").await.unwrap();
    // auto clone format follows the osdmap's require_min_compat_client
    let dump = std::process::Command::new(oracle("ceph"))
        .args([
            "--conf",
            &env().conf,
            "--keyring",
            &env().keyring,
            "osd",
            "dump",
            "-f",
            "json",
        ])
        .output()
        .unwrap();
    let dump: Value = serde_json::from_slice(&dump.stdout).unwrap();
    let want = match dump["require_min_compat_client"].as_str().unwrap() {
        "jewel" | "kraken" | "luminous" => CloneFormat::V1,
        _ => CloneFormat::V2,
    };
    assert_eq!(ceph_rbd::auto_clone_format(&rados).await.unwrap(), want);
    // v1 needs protection
    let v1 = CloneOptions {
        format: CloneFormat::V1,
        ..Default::default()
    };
    let e = pool
        .rbd
        .clone_image("base", "gold", &pool.rbd, "k1", &v1)
        .await
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL);
    base.snap_protect("gold").await.unwrap();
    pool.rbd
        .clone_image("base", "gold", &pool.rbd, "k1", &v1)
        .await
        .unwrap();
    let v2 = CloneOptions {
        format: CloneFormat::V2,
        ..Default::default()
    };
    pool.rbd
        .clone_image("base", "gold", &other.rbd, "k2", &v2)
        .await
        .unwrap();
    // writes to the parent head do not show through
    base.write(0, Bytes::from(vec![0xee; 100])).await.unwrap();
    let children = rbd_ok(&["children", &format!("{p}/base@gold")]);
    assert!(
        children.contains(&format!("{p}/k1")) && children.contains(&format!("{}/k2", other.name)),
        "{children}"
    );
    assert_eq!(
        base.snap_unprotect("gold").await.unwrap_err().errno(),
        Errno::EBUSY
    );
    // copy-up on first write, unaligned across a boundary
    let k1 = pool.rbd.open("k1").await.unwrap();
    let mut m1 = model.clone();
    k1.write(4 * MIB - 10, Bytes::from(vec![7u8; 30]))
        .await
        .unwrap();
    m1[(4 * MIB - 10) as usize..(4 * MIB + 20) as usize].fill(7);
    k1.discard(8 * MIB, MIB).await.unwrap();
    m1[(8 * MIB) as usize..(9 * MIB) as usize].fill(0);
    k1.write_zeroes(0, 4 * MIB).await.unwrap();
    m1[..(4 * MIB) as usize].fill(0);
    assert_eq!(k1.read(0, size).await.unwrap(), &m1[..]);
    assert_eq!(sha256(&rbd_export(p, "k1")), sha256(&m1));
    // shrink shrinks the overlap; growing back shows zeros, not parent data
    k1.resize(6 * MIB, true).await.unwrap();
    k1.resize(size, false).await.unwrap();
    m1[(6 * MIB) as usize..].fill(0);
    assert_eq!(sha256(&k1.read(0, size).await.unwrap()), sha256(&m1));
    assert_eq!(sha256(&rbd_export(p, "k1")), sha256(&m1));
    let info = k1.info().await.unwrap();
    assert_eq!(info.parent.as_ref().unwrap().overlap, 6 * MIB);
    k1.close().await.unwrap();
    // librbd flattens our v2 clone
    let k2_before = rbd_export(&other.name, "k2");
    assert_eq!(sha256(&k2_before), sha256(&model));
    rbd_ok(&["flatten", "--no-progress", &format!("{}/k2", other.name)]);
    assert_eq!(sha256(&rbd_export(&other.name, "k2")), sha256(&model));
    // remove of a clone detaches it
    pool.rbd.remove("k1").await.unwrap();
    assert_eq!(rbd_ok(&["children", &format!("{p}/base@gold")]).trim(), "");
    base.snap_unprotect("gold").await.unwrap();
    base.close().await.unwrap();
    other.cleanup().await;
    pool.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_v2_snapshot_trash_and_chain() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "chain").await;
    let p = &pool.name;
    let size = 9 * MIB;
    pool.rbd
        .create(
            "l0",
            size,
            &CreateOptions {
                order: Some(21),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let l0 = pool.rbd.open("l0").await.unwrap();
    let mut model = vec![0u8; size as usize];
    let mut rng = Rng(seed());
    scribble(&l0, &mut model, &mut rng, 15, 2 * MIB).await;
    l0.snap_create("a").await.unwrap();
    let v2df = CloneOptions {
        format: CloneFormat::V2,
        features: Some(ceph_rbd::features::LAYERING | ceph_rbd::features::DEEP_FLATTEN),
        ..Default::default()
    };
    let v2 = CloneOptions {
        format: CloneFormat::V2,
        ..Default::default()
    };
    pool.rbd
        .clone_image("l0", "a", &pool.rbd, "l1", &v2df)
        .await
        .unwrap();
    let l1 = pool.rbd.open("l1").await.unwrap();
    l1.write(3 * MIB, Bytes::from(vec![9u8; 1000]))
        .await
        .unwrap();
    model[(3 * MIB) as usize..(3 * MIB + 1000) as usize].fill(9);
    l1.snap_create("b").await.unwrap();
    // write after a snapshot of the clone: deep copy-up keeps the snapshot intact
    let before_b = model.clone();
    l1.write(5 * MIB + 7, Bytes::from(vec![8u8; 3000]))
        .await
        .unwrap();
    model[(5 * MIB + 7) as usize..(5 * MIB + 3007) as usize].fill(8);
    pool.rbd
        .clone_image("l1", "b", &pool.rbd, "l2", &v2)
        .await
        .unwrap();
    let l2 = pool.rbd.open_read_only("l2").await.unwrap();
    assert_eq!(
        sha256(&l2.read(0, size).await.unwrap()),
        sha256(&before_b),
        "three levels"
    );
    assert_eq!(sha256(&rbd_export(p, "l2")), sha256(&before_b));
    let at_b = pool.rbd.open_snapshot("l1", "b").await.unwrap();
    assert_eq!(
        sha256(&at_b.read(0, size).await.unwrap()),
        sha256(&before_b)
    );
    at_b.close().await.unwrap();
    // removing a snapshot with v2 children moves it to the trash namespace
    l0.snap_remove("a").await.unwrap();
    assert!(l0.snap_list().await.unwrap().is_empty());
    let all = l0.snapshots().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].namespace.type_name(), "trash");
    let ls: Value = serde_json::from_str(&rbd_ok(&[
        "snap",
        "ls",
        "--all",
        "--format",
        "json",
        &format!("{p}/l0"),
    ]))
    .unwrap();
    assert_eq!(ls[0]["namespace"]["type"], "trash");
    // children still read fine
    assert_eq!(sha256(&l1.read(0, size).await.unwrap()), sha256(&model));
    l2.close().await.unwrap();
    // flatten l1 (has a snapshot + child): data intact, then l2 still reads
    l1.flatten(|_, _| {}).await.unwrap();
    assert_eq!(sha256(&l1.read(0, size).await.unwrap()), sha256(&model));
    // the trashed parent snapshot went away with its last child
    assert!(
        l0.snapshots().await.unwrap().is_empty(),
        "{:?}",
        l0.snapshots().await.unwrap()
    );
    l1.close().await.unwrap();
    let l2 = pool.rbd.open_read_only("l2").await.unwrap();
    assert_eq!(sha256(&l2.read(0, size).await.unwrap()), sha256(&before_b));
    l2.close().await.unwrap();
    l0.close().await.unwrap();
    pool.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_diff_both_ways() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "diff").await;
    let p = &pool.name;
    let size = 13 * MIB;
    pool.rbd
        .create("src", size, &CreateOptions::default())
        .await
        .unwrap();
    let src = pool.rbd.open("src").await.unwrap();
    let mut rng = Rng(seed());
    let mut model = vec![0u8; size as usize];
    scribble(&src, &mut model, &mut rng, 10, 4 * MIB).await;
    src.snap_create("one").await.unwrap();
    let m1 = model.clone();
    scribble(&src, &mut model, &mut rng, 5, 4 * MIB).await;
    src.discard(4 * MIB, 4 * MIB).await.unwrap();
    model[(4 * MIB) as usize..(8 * MIB) as usize].fill(0);
    src.snap_create("two").await.unwrap();
    let m2 = model.clone();

    // diff iteration matches the data changes
    let two = pool.rbd.open_snapshot("src", "two").await.unwrap();
    let ext = two
        .diff_iterate(Some("one"), 0, size, false, false)
        .await
        .unwrap();
    for i in 0..size as usize {
        if m1[i] != m2[i] {
            assert!(
                ext.iter()
                    .any(|e| (e.offset..e.offset + e.length).contains(&(i as u64))),
                "byte {i} changed but not reported"
            );
        }
    }
    // ours -> rbd import-diff
    let mut full = Vec::new();
    let one = pool.rbd.open_snapshot("src", "one").await.unwrap();
    one.export_diff(None, &mut full).await.unwrap();
    let mut inc = Vec::new();
    two.export_diff(Some("one"), &mut inc).await.unwrap();
    let f1 = std::env::temp_dir().join(unique("d1"));
    let f2 = std::env::temp_dir().join(unique("d2"));
    std::fs::write(&f1, &full).unwrap();
    std::fs::write(&f2, &inc).unwrap();
    rbd_ok(&[
        "create",
        "--image-feature",
        "layering",
        "--size",
        "1M",
        &format!("{p}/dst"),
    ]);
    rbd_ok(&[
        "import-diff",
        "--no-progress",
        f1.to_str().unwrap(),
        &format!("{p}/dst"),
    ]);
    assert_eq!(sha256(&rbd_export(p, "dst@one")), sha256(&m1));
    rbd_ok(&[
        "import-diff",
        "--no-progress",
        f2.to_str().unwrap(),
        &format!("{p}/dst"),
    ]);
    assert_eq!(sha256(&rbd_export(p, "dst@two")), sha256(&m2));
    // rbd export-diff -> ours (it refuses to overwrite a file)
    let _ = std::fs::remove_file(&f1);
    let _ = std::fs::remove_file(&f2);
    rbd_ok(&[
        "export-diff",
        "--no-progress",
        &format!("{p}/src@one"),
        f1.to_str().unwrap(),
    ]);
    rbd_ok(&[
        "export-diff",
        "--no-progress",
        "--from-snap",
        "one",
        &format!("{p}/src@two"),
        f2.to_str().unwrap(),
    ]);
    pool.rbd
        .create("mine", MIB, &CreateOptions::default())
        .await
        .unwrap();
    let mine = pool.rbd.open("mine").await.unwrap();
    mine.import_diff(&mut &std::fs::read(&f1).unwrap()[..])
        .await
        .unwrap();
    mine.import_diff(&mut &std::fs::read(&f2).unwrap()[..])
        .await
        .unwrap();
    assert_eq!(sha256(&mine.read(0, size).await.unwrap()), sha256(&m2));
    assert_eq!(
        mine.snap_list()
            .await
            .unwrap()
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>(),
        ["one", "two"]
    );
    // the same stream again: end snapshot exists -> refused
    assert_eq!(
        mine.import_diff(&mut &std::fs::read(&f2).unwrap()[..])
            .await
            .unwrap_err()
            .errno(),
        Errno::EEXIST
    );
    let _ = std::fs::remove_file(&f1);
    let _ = std::fs::remove_file(&f2);
    for i in [src, one, two, mine] {
        i.close().await.unwrap();
    }
    let _ = OpenOptions::default();
    pool.cleanup().await;
}

/// The Kubernetes flow as a user with exactly `mon 'profile rbd' osd 'profile rbd
/// pool=P'`: create, list, info, write, read in P; a clear permission error elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_user_caps() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "k8s").await;
    let other = TestPool::new(&rados, "k8s-other").await;
    // the key as a Kubernetes Secret holds it: the bare base64 secret, no keyring file
    let osd_cap = format!("profile rbd pool={}", pool.name);
    let (k8s, user) = connect_new_user("k8s", "profile rbd", &osd_cap).await;
    let rbd = ceph_rbd::Rbd::open_pool(&k8s, &pool.name).await.unwrap();
    rbd.create("rbd_volume_data.img", 10 << 30, &CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(rbd.list().await.unwrap()[0].name, "rbd_volume_data.img");
    let img = rbd.open("rbd_volume_data.img").await.unwrap();
    let info = img.info().await.unwrap();
    assert_eq!((info.size, info.objects, info.order), (10 << 30, 2560, 22));
    assert_eq!(
        info.features,
        [
            "layering",
            "exclusive-lock",
            "object-map",
            "fast-diff",
            "deep-flatten"
        ]
    );
    img.write(7 << 30, Bytes::from_static(b"survives pod restarts"))
        .await
        .unwrap();
    img.close().await.unwrap();
    let img = rbd.open_read_only("rbd_volume_data.img").await.unwrap();
    assert_eq!(
        &img.read(7 << 30, 21).await.unwrap()[..],
        b"survives pod restarts"
    );
    img.close().await.unwrap();
    // no caps on the other pool
    let r2 = ceph_rbd::Rbd::open_pool(&k8s, &other.name).await.unwrap();
    let err = r2
        .create("nope", 1 << 20, &CreateOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.errno() == Errno::EPERM || err.errno() == Errno::EACCES,
        "{err}"
    );
    assert!(r2.list().await.is_err());
    rbd.remove("rbd_volume_data.img").await.unwrap();
    ceph_ok(&["auth", "del", &format!("client.{user}")]);
    other.cleanup().await;
    pool.cleanup().await;
}

/// Header updates propagate both ways between open handles (watch/notify).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_update_notifications() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "notify").await;
    let p = pool.name.clone();
    pool.rbd
        .create("n", 8 * MIB, &CreateOptions::default())
        .await
        .unwrap();
    let img = pool.rbd.open("n").await.unwrap();
    assert_eq!(img.size().await.unwrap(), 8 * MIB);
    // librbd resizes and snapshots; our open handle sees it without reopening
    python(
        &p,
        "img = rbd.Image(ioctx, 'n')\nimg.resize(12 << 20)\nimg.create_snap('theirs')\nimg.close()",
    );
    assert_eq!(img.size().await.unwrap(), 12 * MIB);
    assert_eq!(img.snap_list().await.unwrap()[0].name, "theirs");
    // librbd holds the image open while we resize; it sees the new size
    let e = env();
    let script = format!(
        "import rados, rbd, time\nc = rados.Rados(conffile={:?}, conf={{'keyring': {:?}}})\nc.connect()\nio = c.open_ioctx({:?})\nimg = rbd.Image(io, 'n')\nprint(img.size(), flush=True)\ntime.sleep(4)\nprint(img.size(), flush=True)\nimg.close()\nio.close()\nc.shutdown()\n",
        e.conf, e.keyring, p
    );
    let child = std::process::Command::new(oracle("python3"))
        .arg("-c")
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    // librbd's watch is visible to us
    assert!(img.watchers().await.unwrap().len() >= 2);
    img.resize(16 * MIB, false).await.unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let sizes: Vec<&str> = text.lines().collect();
    assert_eq!(
        sizes,
        [&(12 * MIB).to_string(), &(16 * MIB).to_string()],
        "{text}"
    );
    img.close().await.unwrap();
    pool.cleanup().await;
}

/// Flatten reports progress and can be interrupted and run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flatten_interrupted_then_rerun() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "flat").await;
    let p = pool.name.clone();
    let size = 24 * MIB;
    pool.rbd
        .create(
            "b",
            size,
            &CreateOptions {
                order: Some(20),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let b = pool.rbd.open("b").await.unwrap();
    let mut model = vec![0u8; size as usize];
    let mut rng = Rng(seed());
    scribble(&b, &mut model, &mut rng, 30, MIB).await;
    b.snap_create("s").await.unwrap();
    let v2 = CloneOptions {
        format: CloneFormat::V2,
        ..Default::default()
    };
    pool.rbd
        .clone_image("b", "s", &pool.rbd, "k", &v2)
        .await
        .unwrap();
    let k = pool.rbd.open("k").await.unwrap();
    let first =
        tokio::time::timeout(std::time::Duration::from_millis(40), k.flatten(|_, _| {})).await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    match first {
        Ok(r) => r.unwrap(),
        Err(_) => {
            // interrupted: the image is still a clone and reads the same
            assert_eq!(sha256(&k.read(0, size).await.unwrap()), sha256(&model));
            k.flatten(move |d, t| s2.lock().unwrap().push((d, t)))
                .await
                .unwrap();
            assert_eq!(seen.lock().unwrap().last(), Some(&(24, 24)));
        }
    }
    assert!(k.parent_info().await.unwrap().is_none());
    assert_eq!(sha256(&k.read(0, size).await.unwrap()), sha256(&model));
    assert_eq!(sha256(&rbd_export(&p, "k")), sha256(&model));
    assert_eq!(rbd_ok(&["children", &format!("{p}/b@s")]).trim(), "");
    // the parent snapshot can go now
    b.snap_remove("s").await.unwrap();
    assert!(b.snapshots().await.unwrap().is_empty());
    k.close().await.unwrap();
    b.close().await.unwrap();
    pool.cleanup().await;
}

/// A clone with a snapshot is shrunk, written inside the new size, then rolled back (by
/// us and by librbd): the snapshot must keep its view of the parent beyond the shrunk
/// overlap throughout. librbd copies the parent's objects up into the clone before
/// trimming them while snapshots exist (TrimRequest::send_copyup_objects), so the
/// snapshots keep the data in RADOS clones and a rollback restores it. Reduced from
/// fsx seed fab46dc71d9bf09f.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_shrink_keeps_snapshot_parent_view() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "shrinksnap").await;
    let p = &pool.name;
    let layering = ceph_rbd::features::LAYERING;
    // (name, stripe unit/count, features): 1 MiB objects; 64 KiB units over 3 objects
    let cases: [(&str, Option<u64>, Option<u64>); 2] = [
        ("simple", None, None),
        ("striped", Some(65536), Some(layering)),
    ];
    let mut rng = Rng(0x5eed_f00d);
    for (tag, su, feats) in cases {
        let size = 4 * MIB + 12345;
        let parent = format!("p-{tag}");
        let child = format!("c-{tag}");
        pool.rbd
            .create(
                &parent,
                size,
                &CreateOptions {
                    order: Some(20),
                    stripe_unit: su,
                    stripe_count: su.map(|_| 3),
                    features: feats,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let pimg = pool.rbd.open(&parent).await.unwrap();
        let mut model = rng.bytes(size as usize);
        pimg.write(0, Bytes::from(model.clone())).await.unwrap();
        pimg.snap_create("s").await.unwrap();
        pimg.close().await.unwrap();
        let v2 = CloneOptions {
            format: CloneFormat::V2,
            ..Default::default()
        };
        pool.rbd
            .clone_image(&parent, "s", &pool.rbd, &child, &v2)
            .await
            .unwrap();
        let c = pool.rbd.open(&child).await.unwrap();
        // one object of the child exists before the snapshot
        let w = rng.bytes(4096);
        let off = 3 * MIB + MIB / 2;
        c.write(off, Bytes::from(w.clone())).await.unwrap();
        model[off as usize..off as usize + 4096].copy_from_slice(&w);
        c.snap_create("s1").await.unwrap();
        let at_s1 = model.clone();
        let check = |c: &ceph_rbd::Image, spec: String, want: Vec<u8>, what: &'static str| {
            let c = c.clone();
            let p = p.to_string();
            async move {
                let ours = c.read(0, want.len() as u64).await.unwrap();
                let first = ours.iter().zip(&want).position(|(a, b)| a != b);
                assert!(
                    ours[..] == want[..],
                    "{spec} {what}: ours differs at {first:?}"
                );
                let theirs = rbd_export(&p, &spec);
                let first = theirs.iter().zip(&want).position(|(a, b)| a != b);
                assert!(
                    theirs == want,
                    "{spec} {what}: librbd's export differs at {first:?}"
                );
            }
        };
        let snap = |c: &str| format!("{c}@s1");
        // shrink inside the first object, then write just below the new end
        let small = 69726u64;
        c.resize(small, true).await.unwrap();
        model.truncate(small as usize);
        let w = rng.bytes(33067);
        c.write(36659, Bytes::from(w.clone())).await.unwrap();
        model[36659..small as usize].copy_from_slice(&w);
        check(
            &c,
            child.clone(),
            model.clone(),
            "head after shrink + write",
        )
        .await;
        let s1 = pool.rbd.open_snapshot(&child, "s1").await.unwrap();
        check(
            &s1,
            snap(&child),
            at_s1.clone(),
            "snapshot after shrink + write",
        )
        .await;
        s1.close().await.unwrap();
        // our rollback
        c.snap_rollback("s1", |_, _| {}).await.unwrap();
        check(&c, child.clone(), at_s1.clone(), "head after our rollback").await;
        // like librbd's, our rollback leaves the head's overlap where the shrink put it
        let info = c.info().await.unwrap();
        assert_eq!(info.parent.as_ref().unwrap().overlap, small);
        // shrink and write again, then librbd rolls back
        c.resize(small, true).await.unwrap();
        c.write(1000, Bytes::from(vec![0xab; 5000])).await.unwrap();
        c.close().await.unwrap();
        rbd_ok(&[
            "snap",
            "rollback",
            "--no-progress",
            &format!("{p}/{}", snap(&child)),
        ]);
        let c = pool.rbd.open(&child).await.unwrap();
        check(
            &c,
            child.clone(),
            at_s1.clone(),
            "head after librbd's rollback",
        )
        .await;
        let theirs: Value = serde_json::from_str(&rbd_ok(&[
            "info",
            "--format",
            "json",
            &format!("{p}/{child}"),
        ]))
        .unwrap();
        assert_eq!(theirs["parent"]["overlap"], small, "{theirs}");
        c.close().await.unwrap();
        if feats.is_none() {
            for spec in [child.clone(), snap(&child)] {
                let (ok, out, err) = rbd_cli(&["object-map", "check", &format!("{p}/{spec}")]);
                assert!(
                    ok && !err.contains("object map error") && !err.contains("invalid"),
                    "object-map check {spec}: {out}{err}"
                );
            }
        }
    }
    pool.cleanup().await;
}

/// Format 2: a snapshot whose id the monitor refuses to release (the user may write the
/// header but holds no write grant on the pool) is not lost. Without layering it stays
/// listed; with layering, librbd's order first moves it to the trash namespace, where
/// `rbd snap ls --all` shows it and its id removes it once the caps allow. Either way
/// the error is EPERM, and the snapshot's data is still there to remove.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format2_snapshot_whose_id_is_not_released_stays() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "snaprm2").await;
    for (name, features) in [("plain", 0u64), ("layered", 1)] {
        let opts = CreateOptions {
            features: Some(features),
            ..Default::default()
        };
        pool.rbd.create(name, 4 << 20, &opts).await.unwrap();
        let img = pool.rbd.open(name).await.unwrap();
        img.snap_create("s").await.unwrap();
        img.write(0, Bytes::from(vec![9u8; 4096])).await.unwrap();
        img.close().await.unwrap();
    }
    // writes anywhere in pools tagged for rbd, but no write grant that names the pool
    // or matches all: the monitor does not count application tags when it decides who
    // may release snap ids (OSDMonitor.cc `is_osd_writable`). (An `object_prefix`
    // grant is refused by 16.2 but accepted by 18.2, for librbd too.)
    let osd_cap = "allow rwx tag rbd *=*";
    let (limited, user) = connect_new_user("snaprm2", "allow r", osd_cap).await;
    let rbd = ceph_rbd::Rbd::open_pool(&limited, &pool.name)
        .await
        .unwrap();
    // (id, namespace type, original name) of each snapshot, as librbd lists them
    let snaps = |name: &str| -> Vec<(u64, String, String)> {
        let out = rbd_ok(&[
            "snap",
            "ls",
            "--all",
            "--format",
            "json",
            &format!("{}/{name}", pool.name),
        ]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let ns = &s["namespace"];
                let orig = ns["original_name"]
                    .as_str()
                    .or(s["name"].as_str())
                    .unwrap()
                    .to_string();
                let ty = ns["type"].as_str().unwrap().to_string();
                (s["id"].as_u64().unwrap(), ty, orig)
            })
            .collect()
    };
    for (name, ns) in [("plain", "user"), ("layered", "trash")] {
        let img = rbd.open(name).await.unwrap();
        let err = img.snap_remove("s").await.expect_err("release refused");
        assert_eq!(err.errno(), Errno::EPERM, "{name}: {err}");
        img.close().await.unwrap();
        let left = snaps(name);
        assert_eq!(
            left.len(),
            1,
            "{name}: the snapshot is still there: {left:?}"
        );
        assert_eq!(
            (left[0].1.as_str(), left[0].2.as_str()),
            (ns, "s"),
            "{name}"
        );
    }
    // with the caps, the snapshots go: by name, and by id out of the trash
    let plain = pool.rbd.open("plain").await.unwrap();
    plain.snap_remove("s").await.unwrap();
    plain.close().await.unwrap();
    let layered = pool.rbd.open("layered").await.unwrap();
    let id = snaps("layered")[0].0;
    layered.snap_remove_by_id(id).await.unwrap();
    layered.close().await.unwrap();
    for name in ["plain", "layered"] {
        assert!(snaps(name).is_empty(), "{name}: removed");
    }
    ceph_ok(&["auth", "del", &format!("client.{user}")]);
    pool.cleanup().await;
}
