//! The simple I/O scheduler (`rbd_io_scheduler = simple`) on a real cluster: many small
//! writes in flight to the same objects are delayed behind the object's write in flight
//! and merged, and what lands is exactly what was written (checked by our read and by
//! librbd's `rbd export`), written through and written around, on an image with the
//! default features (object map updates on the way).
//!
//! `rbd_io_scheduler_simple_max_delay` is set to 60 s, so a delayed write leaves only
//! when the write ahead of it completes (or a read, a flush...): if that release were
//! missing, the writes would take a minute; the test requires them done well before.

mod common;

use bytes::Bytes;
use ceph_rbd::{CacheConfig, CreateOptions, OpenOptions};
use common::*;
use std::time::{Duration, Instant};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config(write_around: bool) -> CacheConfig {
    let mut c = CacheConfig {
        writethrough_until_flush: false,
        ..CacheConfig::default()
    };
    c.enabled = write_around;
    c.set("rbd_io_scheduler_simple_max_delay", "60000").unwrap();
    c
}

async fn run(write_around: bool) {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "sched").await;
    const SIZE: u64 = 12 << 20;
    let name = if write_around { "wa" } else { "wt" };
    // librbd's default features: exclusive-lock, object-map, fast-diff, deep-flatten
    pool.rbd
        .create(name, SIZE, &CreateOptions::default())
        .await
        .unwrap();
    let img = pool
        .rbd
        .open_with(
            name,
            &OpenOptions {
                cache: Some(config(write_around)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut want = vec![0u8; SIZE as usize];
    let mut rng = Rng(seed());
    let started = Instant::now();

    // 1. Sequential 4 KiB writes over three objects, 64 in flight: each object gets
    //    many writes while one of its writes is in flight.
    let mut set: tokio::task::JoinSet<ceph_rbd::Result<()>> = tokio::task::JoinSet::new();
    for i in 0..(SIZE / 4096) {
        let off = i * 4096;
        let data = rng.bytes(4096);
        want[off as usize..off as usize + 4096].copy_from_slice(&data);
        while set.len() >= 64 {
            set.join_next().await.unwrap().unwrap().unwrap();
        }
        let img = img.clone();
        set.spawn(async move { img.write(off, Bytes::from(data)).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }

    // 2. Writes of odd sizes at odd offsets, 32 in flight. Written through, writes in
    //    flight together must not overlap (their order would be the OSD's choice), so
    //    each round writes disjoint slots; written around, overlapping writes are
    //    ordered by the write-around layer, so they may overlap.
    for round in 0..8u64 {
        let mut set: tokio::task::JoinSet<ceph_rbd::Result<()>> = tokio::task::JoinSet::new();
        for slot in 0..32u64 {
            let (off, len) = if write_around {
                (rng.below(SIZE - 70_000), 1 + rng.below(65_536))
            } else {
                let slot_len = SIZE / 32;
                (
                    slot * slot_len + rng.below(slot_len - 70_000),
                    1 + rng.below(65_536),
                )
            };
            let data = rng.bytes(len as usize);
            want[off as usize..(off + len) as usize].copy_from_slice(&data);
            if write_around {
                // acknowledged once sent, in issue order
                img.write(off, Bytes::from(data)).await.unwrap();
            } else {
                let img = img.clone();
                set.spawn(async move { img.write(off, Bytes::from(data)).await });
            }
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
        // a read right after sees every acknowledged write
        let at = rng.below(SIZE - (1 << 20));
        let got = img.read(at, 1 << 20).await.unwrap();
        assert!(
            got[..] == want[at as usize..at as usize + (1 << 20)],
            "round {round}: read after the writes differs"
        );
    }
    img.flush().await.unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(45),
        "the writes took {took:?}: delayed writes waited for their 60 s deadline"
    );
    let got = img.read(0, SIZE).await.unwrap();
    assert!(got[..] == want[..], "our read after flush differs");
    let exported = rbd_export(&pool.name, name);
    assert_eq!(sha256(&exported), sha256(&want), "rbd export differs");
    img.close().await.unwrap();
    let check = object_map_check(&pool.name, name);
    assert!(check.is_ok(), "object map: {check:?}");
    pool.cleanup().await;
}

#[test]
fn merged_writes_land_exactly_written_through() {
    rt().block_on(run(false));
}

#[test]
fn merged_writes_land_exactly_written_around() {
    rt().block_on(run(true));
}
