//! The simple I/O scheduler (`rbd_io_scheduler = simple`) on a real cluster: many small
//! writes in flight to the same objects are delayed behind the object's write in flight
//! and merged, and what lands is exactly what was written (checked by our read and by
//! librbd's `rbd export`), written through and written around, on an image with the
//! default features (object map updates on the way), and in a clone, where a batch of
//! several runs may go out as a copy-up (the parent's data kept in the child's
//! snapshot, checked too).
//!
//! `rbd_io_scheduler_simple_max_delay` is set to 60 s, so a delayed write leaves only
//! when the write ahead of it completes (or a read, a flush...): if that release were
//! missing, the writes would take a minute; the test requires them done well before.

mod common;

use bytes::Bytes;
use ceph_rbd::{CacheConfig, CloneOptions, CreateOptions, OpenOptions};
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

/// `clone`: the image is a clone of a snapshot full of data, with a snapshot of its
/// own taken before any write, so the delayed writes reach objects the child does not
/// have yet: each batch goes out as a copy-up (librbd's "deep" one, the child's
/// snapshot keeping the parent's data) followed by its runs.
async fn run(write_around: bool, clone: bool) {
    let rados = connect().await;
    let pool = TestPool::new(&rados, "sched").await;
    const SIZE: u64 = 12 << 20;
    let name = match (write_around, clone) {
        (true, false) => "wa",
        (false, false) => "wt",
        (true, true) => "wa-child",
        (false, true) => "wt-child",
    };
    let mut rng = Rng(seed());
    let mut want = vec![0u8; SIZE as usize];
    if clone {
        pool.rbd
            .create("parent", SIZE, &CreateOptions::default())
            .await
            .unwrap();
        let parent = pool.rbd.open("parent").await.unwrap();
        for off in (0..SIZE).step_by(1 << 20) {
            let data = rng.bytes(1 << 20);
            want[off as usize..off as usize + (1 << 20)].copy_from_slice(&data);
            parent.write(off, Bytes::from(data)).await.unwrap();
        }
        parent.snap_create("base").await.unwrap();
        // clone v1 or v2, whichever the cluster's min_compat_client allows
        parent.snap_protect("base").await.unwrap();
        parent.close().await.unwrap();
        pool.rbd
            .clone_image("parent", "base", &pool.rbd, name, &CloneOptions::default())
            .await
            .unwrap();
        let child = pool.rbd.open(name).await.unwrap();
        child.snap_create("before").await.unwrap();
        child.close().await.unwrap();
    } else {
        // librbd's default features: exclusive-lock, object-map, fast-diff, deep-flatten
        pool.rbd
            .create(name, SIZE, &CreateOptions::default())
            .await
            .unwrap();
    }
    let parent_data = want.clone();
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
    let started = Instant::now();

    // 0. (Clone only.) Per object, a write that goes out at once, two delayed behind it
    //    and a flush that sends them without waiting for it: while the first write's
    //    copy-up is under way (three round trips: the write finds no object, the
    //    parent is read, the copy-up), the batch finds no object either and copies up
    //    itself, with its two runs behind the copy-up.
    if clone {
        for o in 0..(SIZE >> 22) {
            let mut set: tokio::task::JoinSet<ceph_rbd::Result<()>> = tokio::task::JoinSet::new();
            for (i, (at, len)) in [(0, 4096), (65536, 4096), (2 << 20, 8192)]
                .into_iter()
                .enumerate()
            {
                let off = (o << 22) + at;
                let data = rng.bytes(len);
                want[off as usize..off as usize + len].copy_from_slice(&data);
                let img = img.clone();
                set.spawn(async move { img.write(off, Bytes::from(data)).await });
                if i == 0 {
                    // the first write reaches the scheduler (and the OSD) first
                    tokio::time::sleep(Duration::from_micros(300)).await;
                }
            }
            // (on a slow machine the first write may be done before the flush: the
            // batch then finds the object and the case is a plain one)
            tokio::time::sleep(Duration::from_micros(300)).await;
            img.flush().await.unwrap();
            while let Some(r) = set.join_next().await {
                r.unwrap().unwrap();
            }
        }
    }

    // 1. Sequential 4 KiB writes over three objects, 64 in flight: each object gets
    //    many writes while one of its writes is in flight. (Not in the clone: it
    //    would copy every object up before the writes of step 2.)
    let phase1 = if clone { 0 } else { SIZE / 4096 };
    let mut set: tokio::task::JoinSet<ceph_rbd::Result<()>> = tokio::task::JoinSet::new();
    for i in 0..phase1 {
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
    if clone {
        let before = rbd_export(&pool.name, &format!("{name}@before"));
        assert_eq!(
            sha256(&before),
            sha256(&parent_data),
            "the child's snapshot lost the parent's data"
        );
    }
    pool.cleanup().await;
}

#[test]
fn merged_writes_land_exactly_written_through() {
    rt().block_on(run(false, false));
}

#[test]
fn merged_writes_land_exactly_written_around() {
    rt().block_on(run(true, false));
}

#[test]
fn merged_writes_land_exactly_in_a_clone_written_through() {
    rt().block_on(run(false, true));
}

#[test]
fn merged_writes_land_exactly_in_a_clone_written_around() {
    rt().block_on(run(true, true));
}
