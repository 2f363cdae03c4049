//! End-to-end object I/O against the throwaway test cluster (`scripts/test-cluster start`):
//! 4 KiB and 4 MiB writes and reads, one at a time and 16 in flight.

use bytes::Bytes;
use ceph_rados::{CommonArgs, Rados};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::path::PathBuf;

fn cluster() -> (tokio::runtime::Runtime, ceph_rados::IoCtx) {
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
    let io = rt.block_on(async {
        let cfg = CommonArgs {
            conf: Some(conf),
            keyring: Some(dir.join("ceph.client.admin.keyring")),
            ..Default::default()
        }
        .to_config()
        .unwrap();
        let r = Rados::connect(cfg).await.unwrap();
        let pool = "bench-rados-rs";
        if r.pool_lookup(pool).await.is_err() {
            r.pool_create(pool, Some(32)).await.unwrap();
        }
        r.ioctx(pool).await.unwrap()
    });
    (rt, io)
}

fn io_bench(c: &mut Criterion) {
    let (rt, io) = cluster();
    let mut g = c.benchmark_group("rados_object_io");
    g.sample_size(20);
    for size in [4096usize, 4 << 20] {
        let data = Bytes::from(vec![0x42u8; size]);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("write", size), &size, |b, _| {
            let mut n = 0u64;
            b.to_async(&rt).iter(|| {
                n += 1;
                let io = io.clone();
                let data = data.clone();
                async move {
                    io.write_full(&format!("bench-{size}-{}", n % 64), data)
                        .await
                        .unwrap()
                }
            })
        });
        rt.block_on(async {
            for i in 0..64 {
                io.write_full(&format!("bench-{size}-{i}"), data.clone())
                    .await
                    .unwrap();
            }
        });
        g.bench_with_input(BenchmarkId::new("read", size), &size, |b, _| {
            let mut n = 0u64;
            b.to_async(&rt).iter(|| {
                n += 1;
                let io = io.clone();
                async move {
                    io.read(&format!("bench-{size}-{}", n % 64), 0, size as u64)
                        .await
                        .unwrap()
                }
            })
        });
        if size == 4096 {
            g.throughput(Throughput::Bytes(16 * size as u64));
            g.bench_with_input(
                BenchmarkId::new("write_16_in_flight", size),
                &size,
                |b, _| {
                    b.to_async(&rt).iter(|| {
                        let io = io.clone();
                        let data = data.clone();
                        async move {
                            let mut set = tokio::task::JoinSet::new();
                            for i in 0..16 {
                                let io = io.clone();
                                let d = data.clone();
                                set.spawn(async move {
                                    io.write_full(&format!("bench-par-{i}"), d).await.unwrap()
                                });
                            }
                            while set.join_next().await.is_some() {}
                        }
                    })
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, io_bench);
criterion_main!(benches);
