//! Striping (STRIPINGV2), separate data pools, RADOS namespaces and the blocking
//! wrapper, against the real cluster with librbd as the oracle.

mod common;

use bytes::Bytes;
use ceph_rbd::{BlockingImage, CreateOptions, Rbd};
use common::*;
use serde_json::Value;

const MIB: u64 = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn striped_images_both_ways() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "stripe").await;
    let p = &pool.name;
    // librbd-made striped image, librbd writes, we read
    rbd_ok(&[
        "create",
        "--image-feature",
        "layering,striping",
        "--object-size",
        "1M",
        "--stripe-unit",
        "64K",
        "--stripe-count",
        "3",
        "--size",
        "7M",
        &format!("{p}/st"),
    ]);
    python(p, "img = rbd.Image(ioctx, 'st')\nimport random\nr = random.Random(3)\nfor i in range(20):\n    o = r.randrange(0, 7 << 20)\n    img.write(bytes([r.randrange(1, 255)]) * min(200000, (7 << 20) - o), o)\nimg.close()");
    let img = pool.rbd.open("st").await.unwrap();
    assert_eq!(
        sha256(&img.read(0, 7 * MIB).await.unwrap()),
        sha256(&rbd_export(p, "st"))
    );
    // we write unaligned across stripe units and objects; librbd reads the same
    let mut model = img.read(0, 7 * MIB).await.unwrap().to_vec();
    let mut rng = Rng(seed());
    for _ in 0..25 {
        let off = rng.below(7 * MIB);
        let len = (1 + rng.below(500_000)).min(7 * MIB - off);
        let d = rng.bytes(len as usize);
        img.write(off, Bytes::from(d.clone())).await.unwrap();
        model[off as usize..(off + len) as usize].copy_from_slice(&d);
    }
    img.discard(100_000, 1_000_000).await.unwrap();
    model[100_000..1_100_000].fill(0);
    assert_eq!(sha256(&rbd_export(p, "st")), sha256(&model));
    let info = img.info().await.unwrap().to_json();
    let theirs: Value =
        serde_json::from_str(&rbd_ok(&["info", "--format", "json", &format!("{p}/st")])).unwrap();
    for k in [
        "size",
        "objects",
        "order",
        "stripe_unit",
        "stripe_count",
        "features",
        "block_name_prefix",
    ] {
        assert_eq!(info[k], theirs[k], "{k}");
    }
    // shrink across a partial object set
    img.resize(3 * MIB + 70_000, true).await.unwrap();
    model.truncate((3 * MIB + 70_000) as usize);
    assert_eq!(sha256(&rbd_export(p, "st")), sha256(&model));
    img.close().await.unwrap();

    // our striped image, read by librbd
    let opts = CreateOptions {
        order: Some(20),
        stripe_unit: Some(32768),
        stripe_count: Some(5),
        ..Default::default()
    };
    pool.rbd.create("ours", 4 * MIB + 3, &opts).await.unwrap();
    let img = pool.rbd.open("ours").await.unwrap();
    let d = Rng(seed()).bytes((4 * MIB + 3) as usize);
    img.write(0, Bytes::from(d.clone())).await.unwrap();
    assert_eq!(sha256(&rbd_export(p, "ours")), sha256(&d));
    let theirs: Value =
        serde_json::from_str(&rbd_ok(&["info", "--format", "json", &format!("{p}/ours")])).unwrap();
    assert_eq!(theirs["stripe_unit"], 32768);
    assert_eq!(theirs["stripe_count"], 5);
    assert!(theirs["features"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "striping"));
    img.close().await.unwrap();
    pool.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_pool_and_namespace() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "meta").await;
    let data = TestPool::new(&rados, "data").await;
    let opts = CreateOptions {
        data_pool: Some(data.name.clone()),
        ..Default::default()
    };
    let id = pool.rbd.create("dp", 9 * MIB, &opts).await.unwrap();
    let img = pool.rbd.open("dp").await.unwrap();
    let d = Rng(seed()).bytes((9 * MIB) as usize);
    img.write(0, Bytes::from(d.clone())).await.unwrap();
    assert_eq!(sha256(&rbd_export(&pool.name, "dp")), sha256(&d));
    let theirs: Value = serde_json::from_str(&rbd_ok(&[
        "info",
        "--format",
        "json",
        &format!("{}/dp", pool.name),
    ]))
    .unwrap();
    assert_eq!(theirs["data_pool"], data.name.as_str());
    assert_eq!(
        img.info().await.unwrap().to_json()["data_pool"],
        theirs["data_pool"]
    );
    assert_eq!(
        theirs["block_name_prefix"],
        format!("rbd_data.{}.{id}", pool.rbd.ioctx().pool_id())
    );
    // the data lives in the data pool
    let objs = rados
        .ioctx(&data.name)
        .await
        .unwrap()
        .list_objects()
        .await
        .unwrap();
    assert!(
        objs.iter()
            .filter(|o| o.oid.starts_with("rbd_data."))
            .count()
            >= 3
    );
    img.snap_create("s").await.unwrap();
    img.write(0, Bytes::from_static(b"changed")).await.unwrap();
    let at = pool.rbd.open_snapshot("dp", "s").await.unwrap();
    assert_eq!(&at.read(0, 7).await.unwrap()[..], &d[..7]);
    at.close().await.unwrap();
    img.snap_remove("s").await.unwrap();
    img.close().await.unwrap();
    pool.rbd.remove("dp").await.unwrap();

    // a RADOS namespace made by `rbd namespace create`
    rbd_ok(&["namespace", "create", &format!("{}/ns1", pool.name)]);
    let mut io = rados.ioctx(&pool.name).await.unwrap();
    io.set_namespace("ns1");
    let rbd = Rbd::new(io);
    rbd.create("inns", 5 * MIB, &CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(
        rbd_ok(&["ls", &format!("{}/ns1", pool.name)]).trim(),
        "inns"
    );
    let img = rbd.open("inns").await.unwrap();
    img.write(MIB, Bytes::from_static(b"namespaced"))
        .await
        .unwrap();
    assert_eq!(
        &rbd_export(&pool.name, "ns1/inns")[MIB as usize..MIB as usize + 10],
        b"namespaced"
    );
    img.close().await.unwrap();
    rbd.remove("inns").await.unwrap();
    assert_eq!(rbd_ok(&["ls", &format!("{}/ns1", pool.name)]).trim(), "");
    // a namespace that does not exist
    let mut io2 = rados.ioctx(&pool.name).await.unwrap();
    io2.set_namespace("missing");
    assert!(Rbd::new(io2)
        .create("x", MIB, &CreateOptions::default())
        .await
        .is_err());
    data.cleanup().await;
    pool.cleanup().await;
}

#[test]
fn blocking_wrapper() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (pool, img) = rt.block_on(async {
        let rados = connect().await;
        let pool = TestPool::new(&rados, "blk").await;
        pool.rbd
            .create("b", 6 * MIB, &CreateOptions::default())
            .await
            .unwrap();
        let img = pool.rbd.open("b").await.unwrap();
        (pool, img)
    });
    let b = BlockingImage::new(img, rt.handle().clone());
    let threads: Vec<_> = (0..4u8)
        .map(|i| {
            let b = b.clone();
            std::thread::spawn(move || {
                let off = i as u64 * (3 * MIB / 2) - (i as u64 * 7);
                b.write(off, Bytes::from(vec![i + 1; 100_000])).unwrap();
                assert_eq!(b.read(off, 100_000).unwrap(), vec![i + 1; 100_000]);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(b.size().unwrap(), 6 * MIB);
    b.snap_create("x").unwrap();
    assert_eq!(b.snap_list().unwrap().len(), 1);
    b.close().unwrap();
    rt.block_on(pool.cleanup());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_du_bench() {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "tools").await;
    let p = &pool.name;
    pool.rbd
        .create("e", 10 * MIB + 77, &CreateOptions::default())
        .await
        .unwrap();
    let img = pool.rbd.open("e").await.unwrap();
    let mut rng = Rng(seed());
    let a = rng.bytes(3 * MIB as usize);
    img.write(MIB / 2, Bytes::from(a.clone())).await.unwrap();
    img.write(9 * MIB, Bytes::from_static(b"tail"))
        .await
        .unwrap();
    let mut out = Vec::new();
    img.export(&mut out, |_, _| {}).await.unwrap();
    assert_eq!(sha256(&out), sha256(&rbd_export(p, "e")));
    // du: whole objects that exist (objects 0, 1 and 2)
    let du = img.disk_usage(None).await.unwrap();
    let theirs: Value =
        serde_json::from_str(&rbd_ok(&["du", "--format", "json", &format!("{p}/e")])).unwrap();
    assert_eq!(
        du,
        theirs["images"][0]["used_size"].as_u64().unwrap(),
        "{theirs}"
    );
    // import from a stream of unknown size
    let imported = pool
        .rbd
        .import(&mut &out[..], "imp", None, &CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(imported.size().await.unwrap(), out.len() as u64);
    assert_eq!(sha256(&rbd_export(p, "imp")), sha256(&out));
    imported.close().await.unwrap();
    // bench
    let r = img
        .bench(ceph_rbd::BenchOptions {
            io_type: ceph_rbd::BenchIoType::Write,
            io_size: 4096,
            io_threads: 8,
            io_total: 1 << 20,
            pattern: ceph_rbd::BenchPattern::Rand,
        })
        .await
        .unwrap();
    assert_eq!((r.ops, r.bytes), (256, 1 << 20));
    assert!(r.ops_per_sec() > 0.0);
    img.close().await.unwrap();
    pool.cleanup().await;
}
