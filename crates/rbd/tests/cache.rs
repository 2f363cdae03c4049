//! The write-around policy (`rbd_cache_policy = writearound`) on a real cluster: many
//! overlapping writes acknowledged once sent land in order (checked with librbd's
//! `rbd export`), close drains them, and the policy in force is observed through a
//! write the OSDs refuse (a cephx user without write access to the data objects): written
//! through, `write` itself fails; written around, `write` succeeds and the next flush
//! (or close) reports the error.

mod common;

use bytes::Bytes;
use ceph_rbd::{CacheConfig, CreateOptions, Image, OpenOptions, Rbd};
use common::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn write_around() -> CacheConfig {
    CacheConfig {
        writethrough_until_flush: false,
        ..CacheConfig::default()
    }
}

async fn open(rbd: &Rbd, name: &str, cache: CacheConfig) -> Image {
    rbd.open_with(
        name,
        &OpenOptions {
            cache: Some(cache),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// Overlapping 4 KiB writes at unaligned offsets around an object boundary, issued one
/// after the other (each acknowledged once sent), and read back right after being
/// acknowledged; after a flush, librbd's export shows the same image.
#[test]
fn overlapping_writes_land_in_order() {
    rt().block_on(async {
        let rados = connect().await;
        let pool = TestPool::new(&rados, "cache").await;
        const SIZE: u64 = 8 << 20;
        pool.rbd
            .create("wa", SIZE, &CreateOptions::default())
            .await
            .unwrap();
        let img = open(&pool.rbd, "wa", write_around()).await;
        assert!(
            img.cache_policy().starts_with("writearound"),
            "{}",
            img.cache_policy()
        );
        let mut want = vec![0u8; SIZE as usize];
        let mut rng = Rng(seed());
        // a 64 KiB window across the 4 MiB object boundary: writes overlap all the time
        let base = (4 << 20) - (32 << 10);
        for i in 0..600u64 {
            let off = base + rng.below(60 << 10);
            let data = rng.bytes(4096);
            want[off as usize..off as usize + 4096].copy_from_slice(&data);
            img.write(off, Bytes::from(data)).await.unwrap();
            if i % 4 == 0 {
                // a read right after the acknowledgement sees the write (it waits for
                // the overlapping writes in flight)
                let got = img.read(base, 64 << 10).await.unwrap();
                assert!(
                    got[..] == want[base as usize..base as usize + (64 << 10)],
                    "read after write {i} does not see it"
                );
            }
        }
        img.flush().await.unwrap();
        let got = img.read(0, SIZE).await.unwrap();
        assert!(got[..] == want[..], "our read after flush differs");
        // librbd reads the image while our handle is still open (and owns the lock)
        let exported = rbd_export(&pool.name, "wa");
        assert_eq!(sha256(&exported), sha256(&want), "rbd export differs");
        img.close().await.unwrap();
        pool.cleanup().await;
    });
}

/// Close waits for acknowledged writes still in flight. The pool is made full by a
/// quota (`ceph osd pool set-quota`, what `scripts/test-cluster pool-quota` does), so
/// writes are held unsent by the client: `write` is acknowledged, close does not return
/// while the quota holds them, and once it is lifted close returns and librbd's export
/// shows every write. Without the exclusive lock (whose release also drains), so only
/// close's own flush can be what waits; the data objects live in a pool of their own,
/// so only they are held (the header watch must be removable).
#[test]
fn close_drains_in_flight_writes() {
    rt().block_on(async {
        let rados = connect().await;
        let pool = TestPool::new(&rados, "cache").await;
        let data = TestPool::new(&rados, "cachedata").await;
        const SIZE: u64 = 8 << 20;
        pool.rbd
            .create(
                "held",
                SIZE,
                &CreateOptions {
                    features: Some(1),
                    data_pool: Some(data.name.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let img = open(&pool.rbd, "held", write_around()).await;
        let mut want = vec![0u8; SIZE as usize];
        let mut rng = Rng(seed());
        // Each write gets a 1 MiB slot of its own: a write overlapping one that is held
        // is itself held *unacknowledged* (so `write` would never return while the quota
        // holds), and that is not what this test is about. Random offsets used to collide
        // about one run in three.
        let mut write = async |slot: u64, want: &mut Vec<u8>| {
            const SLOT: u64 = 1 << 20;
            let off = slot * SLOT + rng.below(SLOT - (64 << 10));
            let data = rng.bytes(64 << 10);
            want[off as usize..off as usize + data.len()].copy_from_slice(&data);
            tokio::time::timeout(
                std::time::Duration::from_secs(60),
                img.write(off, Bytes::from(data)),
            )
            .await
            .unwrap_or_else(|_| panic!("write to slot {slot} not acknowledged in 60 s"))
            .unwrap();
        };
        write(0, &mut want).await;
        img.flush().await.unwrap();
        ceph_ok(&["osd", "pool", "set-quota", &data.name, "max_bytes", "1"]);
        let lift = Lift(data.name.clone());
        // the monitor flags the pool full once the OSDs report its usage
        let t0 = std::time::Instant::now();
        while !ceph_ok(&["osd", "pool", "ls", "detail"])
            .lines()
            .any(|l| l.contains(&data.name) && l.contains("full_quota"))
        {
            assert!(t0.elapsed().as_secs() < 90, "pool never flagged full");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        // let our client see that map (writes sent before it would still land)
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        for slot in 0..8 {
            write(slot, &mut want).await;
        }
        let closing = tokio::spawn(img.close());
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        assert!(
            !closing.is_finished(),
            "close returned while acknowledged writes were held"
        );
        drop(lift);
        tokio::time::timeout(std::time::Duration::from_secs(60), closing)
            .await
            .expect("close after the quota was lifted")
            .unwrap()
            .unwrap();
        let exported = rbd_export(&pool.name, "held");
        assert_eq!(sha256(&exported), sha256(&want), "rbd export after close");
        pool.cleanup().await;
        data.cleanup().await;
    });
}

/// Lifts the pool's byte quota (also when the test fails).
struct Lift(String);

impl Drop for Lift {
    fn drop(&mut self) {
        ceph_ok(&["osd", "pool", "set-quota", &self.0, "max_bytes", "0"]);
    }
}

const EPERM: i32 = 1;

/// Which policy is in force, seen through writes the OSDs refuse with EPERM (the user
/// may read everything but write only the header objects): written through, the
/// failure is `write`'s own; written around, `write` succeeds and the next flush — or
/// close — reports it, once. Covers the defaults (writethrough until the first flush),
/// `rbd_cache = false`, `rbd_cache_max_dirty = 0`, and `conf_rbd_cache` image metadata.
#[test]
fn the_policy_decides_who_reports_a_failed_write() {
    rt().block_on(async {
        let rados = connect().await;
        let pool = TestPool::new(&rados, "cache").await;
        for n in ["a", "b", "c", "d", "e"] {
            pool.rbd
                .create(
                    n,
                    8 << 20,
                    &CreateOptions {
                        features: Some(1), // layering: no lock to take
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
        }
        let osd_cap = format!(
            "allow rx pool={p}, allow rwx pool={p} object_prefix rbd_header.",
            p = pool.name
        );
        let (ro, user) = connect_new_user("cachero", "allow r", &osd_cap).await;
        let rbd = Rbd::open_pool(&ro, &pool.name).await.unwrap();
        let w = || Bytes::from(vec![0xabu8; 4096]);
        let errno = |r: ceph_rbd::Result<()>| r.unwrap_err().errno().0;

        // librbd's defaults: writethrough until the first flush, then writearound
        let img = open(&rbd, "a", CacheConfig::default()).await;
        assert!(img.cache_policy().starts_with("writethrough until"));
        assert_eq!(errno(img.write(0, w()).await), EPERM, "written through");
        img.flush().await.unwrap();
        assert!(img.cache_policy().starts_with("writearound"));
        img.write(0, w()).await.expect("acknowledged once sent");
        img.write(8192, w()).await.expect("acknowledged once sent");
        assert_eq!(errno(img.flush().await), EPERM, "flush reports it");
        img.flush().await.expect("an error is reported once");
        img.write(4 << 20, w())
            .await
            .expect("acknowledged once sent");
        assert_eq!(errno(img.close().await), EPERM, "close reports it");

        // rbd_cache=false: always written through
        let mut off = CacheConfig::default();
        off.set("rbd_cache", "false").unwrap();
        let img = open(&rbd, "b", off).await;
        img.flush().await.unwrap();
        assert_eq!(img.cache_policy(), "writethrough");
        assert_eq!(errno(img.write(0, w()).await), EPERM);
        img.close().await.unwrap();

        // rbd_cache_max_dirty=0: written through as well
        let mut zero = write_around();
        zero.set("rbd_cache_max_dirty", "0").unwrap();
        let img = open(&rbd, "c", zero).await;
        assert_eq!(errno(img.write(0, w()).await), EPERM);
        img.close().await.unwrap();

        // the image's conf_rbd_cache metadata (set with librbd's CLI) wins over the
        // configuration the handle was given
        rbd_ok(&[
            "config",
            "image",
            "set",
            &format!("{}/d", pool.name),
            "rbd_cache",
            "false",
        ]);
        let img = open(&rbd, "d", write_around()).await;
        assert_eq!(img.cache_policy(), "writethrough");
        assert_eq!(errno(img.write(0, w()).await), EPERM);
        img.close().await.unwrap();

        // written around, with writes the I/O scheduler delays behind the one in flight
        // to their object and merges (a fixed 60 s delay: they leave when that write
        // completes). No task waits for a delayed write: its batch hands the outcome to
        // the tracker through a callback. The flush must neither hang nor wait for the
        // deadline, and reports the failure once. (The first write fails too, so which
        // write the report came from is pinned by the scheduler's unit test
        // `callbacks_get_their_runs_outcome_or_are_dropped_uncalled`.)
        let mut delayed = write_around();
        delayed
            .set("rbd_io_scheduler_simple_max_delay", "60000")
            .unwrap();
        let img = open(&rbd, "e", delayed).await;
        let started = std::time::Instant::now();
        for i in 0..8 {
            img.write(i * 4096, w())
                .await
                .expect("acknowledged once sent");
        }
        assert_eq!(
            errno(img.flush().await),
            EPERM,
            "flush reports the delayed writes"
        );
        img.flush().await.expect("an error is reported once");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the delayed writes waited for their deadline"
        );
        img.close().await.unwrap();

        // nothing of it landed (librbd reads the images)
        for n in ["a", "b", "c", "d", "e"] {
            let b = rbd_export(&pool.name, n);
            assert!(b.iter().all(|&x| x == 0), "a refused write landed in {n}");
        }
        drop(rbd);
        ceph_ok(&["auth", "rm", &format!("client.{user}")]);
        pool.cleanup().await;
    });
}
