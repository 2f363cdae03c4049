//! RBD image I/O against the throwaway test cluster (`scripts/test-cluster start`):
//! 4 KiB random writes and reads and 4 MiB sequential writes and reads on a layering image,
//! 16 requests in flight for 4 KiB, 4 for 4 MiB (the shapes `rbd bench` is usually run with).

use bytes::Bytes;
use ceph_rados::{CommonArgs, Rados};
use ceph_rbd::{CreateOptions, Image, Rbd};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::path::PathBuf;

const IMAGE_SIZE: u64 = 256 << 20;

fn setup() -> (tokio::runtime::Runtime, Image) {
    let dir = PathBuf::from(
        std::env::var("CEPH_TEST_CLUSTER").unwrap_or_else(|_| "/tmp/ceph-rs-cluster".into()),
    );
    let conf = dir.join("ceph.conf");
    assert!(
        conf.exists(),
        "start a cluster first: scripts/test-cluster start"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let img = rt.block_on(async {
        let cfg = CommonArgs {
            conf: Some(conf),
            keyring: Some(dir.join("ceph.client.admin.keyring")),
            ..Default::default()
        }
        .to_config()
        .unwrap();
        let r = Rados::connect(cfg).await.unwrap();
        let pool = "bench-rbd-rs";
        if r.pool_lookup(pool).await.is_err() {
            r.pool_create(pool, Some(32)).await.unwrap();
        }
        let rbd = Rbd::open_pool(&r, pool).await.unwrap();
        rbd.pool_init(false).await.unwrap();
        let name = format!("bench-{}", std::process::id());
        rbd.create(&name, IMAGE_SIZE, &CreateOptions::default())
            .await
            .unwrap();
        rbd.open(&name).await.unwrap()
    });
    (rt, img)
}

fn rbd_bench(c: &mut Criterion) {
    let (rt, img) = setup();
    let mut g = c.benchmark_group("rbd_image_io");
    g.sample_size(20);
    // Fill the image once so reads hit data.
    rt.block_on(async {
        let chunk = Bytes::from(vec![0x11u8; 4 << 20]);
        for i in 0..IMAGE_SIZE / (4 << 20) {
            img.write(i * (4 << 20), chunk.clone()).await.unwrap();
        }
    });
    for (size, depth, random) in [(4096u64, 16usize, true), (4 << 20, 4, false)] {
        let data = Bytes::from(vec![0x5au8; size as usize]);
        g.throughput(Throughput::Bytes(size * depth as u64));
        let name = if random { "rand" } else { "seq" };
        for write in [true, false] {
            let id = BenchmarkId::new(
                format!("{}_{name}_x{depth}", if write { "write" } else { "read" }),
                size,
            );
            let mut n = 0u64;
            g.bench_function(id, |b| {
                b.to_async(&rt).iter(|| {
                    n += 1;
                    let img = img.clone();
                    let data = data.clone();
                    let base = n;
                    async move {
                        let mut set = tokio::task::JoinSet::new();
                        for i in 0..depth as u64 {
                            let slots = IMAGE_SIZE / size;
                            let k = base * depth as u64 + i;
                            let slot = if random {
                                k.wrapping_mul(0x9e37_79b9_7f4a_7c15) % slots
                            } else {
                                k % slots
                            };
                            let (img, data) = (img.clone(), data.clone());
                            set.spawn(async move {
                                if write {
                                    img.write(slot * size, data).await.map(|_| ())
                                } else {
                                    img.read(slot * size, size).await.map(|_| ())
                                }
                            });
                        }
                        while let Some(r) = set.join_next().await {
                            r.unwrap().unwrap();
                        }
                    }
                })
            });
        }
    }
    g.finish();
    rt.block_on(async {
        let name = img.name();
        let rbd = Rbd::new(img.ioctx().clone());
        img.close().await.unwrap();
        let _ = rbd.remove(&name).await;
    });
}

criterion_group!(benches, rbd_bench);
criterion_main!(benches);
