//! Blocklisting (issue 10, defect 7): once the cluster blocklists this client, every
//! in-flight and later request fails promptly with EBLOCKLISTED (108) — never a hang —
//! so callers such as rbd's exclusive lock learn they lost the object. Non-destructive:
//! only this test's own client address is blocklisted, and the entry is removed after.

mod common;

use bytes::Bytes;
use common::*;
use std::time::{Duration, Instant};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Removes the blocklist entry even when the test fails.
struct Unblock(String);

impl Drop for Unblock {
    fn drop(&mut self) {
        let _ = tool_raw("ceph", &["osd", "blocklist", "rm", &self.0]);
    }
}

#[test]
fn blocklisted_client_fails_fast_with_errno_108() {
    let pool = make_pool("blocklist", 8);
    rt().block_on(async {
        let r = admin().await;
        let io = r.ioctx(&pool).await.unwrap();
        io.write_full("w", Bytes::from_static(b"x")).await.unwrap();
        // Our address as the cluster sees it: the watcher entry of our own watch
        // (`watcher=127.0.0.1:0/NONCE client.ID cookie=...`).
        let watch = io.watch("w").await.unwrap();
        let out = String::from_utf8(tool("rados", &["-p", &pool, "listwatchers", "w"])).unwrap();
        let me = format!("client.{}", r.instance_id());
        let line = out
            .lines()
            .find(|l| l.contains(&me))
            .unwrap_or_else(|| panic!("our watch not listed: {out}"));
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("watcher="))
            .expect("watcher address")
            .to_string();

        // A stream of writes, running while we get blocklisted.
        let writer = {
            let io = io.clone();
            tokio::spawn(async move {
                for i in 0u64.. {
                    let oid = format!("obj-{}", i % 16);
                    if let Err(e) = io.write(&oid, 0, Bytes::from(vec![7u8; 4096])).await {
                        return (i, e, Instant::now());
                    }
                }
                unreachable!()
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        tool("ceph", &["osd", "blocklist", "add", &addr]);
        let _unblock = Unblock(addr.clone());
        let t0 = Instant::now();
        let (n, err, when) = tokio::time::timeout(Duration::from_secs(30), writer)
            .await
            .expect("writes still running 30 s after the blocklist")
            .unwrap();
        assert!(n > 0, "no write succeeded before the blocklist");
        assert!(err.is_blocklisted(), "wanted EBLOCKLISTED, got {err}");
        assert_eq!(err.errno().0, 108);
        let took = when.saturating_duration_since(t0);
        assert!(took < Duration::from_secs(20), "noticed after {took:?}");
        // Later requests fail at once, reads included.
        let t = Instant::now();
        let e = io.read("w", 0, 1).await.unwrap_err();
        assert!(e.is_blocklisted(), "{e}");
        let e = io
            .write_full("w", Bytes::from_static(b"y"))
            .await
            .unwrap_err();
        assert!(e.is_blocklisted(), "{e}");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        // The watch ends: a final Disconnected carrying EBLOCKLISTED, then the stream
        // closes (no endless events).
        let mut watch = watch;
        let events = tokio::time::timeout(Duration::from_secs(20), async {
            let mut v = Vec::new();
            while let Some(ev) = watch.next().await {
                v.push(ev);
            }
            v
        })
        .await
        .expect("watch events kept coming after the blocklist");
        let errnos: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ceph_rados::WatchEvent::Disconnected { errno } => Some(*errno),
                _ => None,
            })
            .collect();
        assert_eq!(
            errnos.last(),
            Some(&ceph_rados::Errno::EBLOCKLISTED),
            "the last event says why the watch ended: {events:?}"
        );
        assert_eq!(
            errnos
                .iter()
                .filter(|e| **e == ceph_rados::Errno::EBLOCKLISTED)
                .count(),
            1,
            "exactly one final EBLOCKLISTED: {events:?}"
        );
    });
}

/// Removes a CIDR blocklist entry even when the test fails.
struct UnblockRange(String);

impl Drop for UnblockRange {
    fn drop(&mut self) {
        let _ = tool_raw("ceph", &["osd", "blocklist", "range", "rm", &self.0]);
    }
}

/// An erasure-coded pool that can never go active on the 3-OSD test cluster (k=4, m=1:
/// 3 of 5 shards, min_size 4): no OSD will ever answer an op on it (our client holds such
/// ops unsent for `unservable_timeout`, 120 s by default; librados sends them and the OSD
/// parks them).
fn inactive_ec_pool() -> Pool {
    tool(
        "ceph",
        &[
            "osd",
            "erasure-code-profile",
            "set",
            "rs-ec41",
            "k=4",
            "m=1",
            "crush-failure-domain=osd",
        ],
    );
    let name = unique("blk-inactive");
    tool(
        "ceph",
        &[
            "osd", "pool", "create", &name, "4", "4", "erasure", "rs-ec41",
        ],
    );
    Pool(name)
}

async fn wait_for_map(
    r: &ceph_rados::Rados,
    what: &str,
    f: impl Fn(&ceph_rados::osdmap::OsdMap) -> bool,
) {
    let t = Instant::now();
    while !f(&r.osdmap()) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "our OSDMap never showed {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The OSDMap route of defect 7: a write waiting for a PG that can never go active (so no
/// OSD will ever answer it, EBLOCKLISTED included) fails at once when a new map lists our
/// address. The blocklist (single and CIDR entries) is decoded from the maps the
/// monitor sends, and its removal is seen too.
#[test]
fn a_map_listing_us_fails_a_parked_op_at_once() {
    let pool = inactive_ec_pool();
    rt().block_on(async {
        let r = admin().await;
        let io = r.ioctx(&pool).await.unwrap();
        let me = r
            .mon()
            .my_addr()
            .expect("our address is known once connected");
        let addr = format!("{}/{}", me.addr.unwrap(), me.nonce);

        // CIDR entries are decoded (v11 OSD-only section): a documentation range, so no
        // real client is hit.
        tool(
            "ceph",
            &["osd", "blocklist", "range", "add", "192.0.2.0/24"],
        );
        let range = UnblockRange("192.0.2.0/24".into());
        let probe = |ip: &str| ceph_encoding::EntityAddr {
            ty: ceph_encoding::EntityAddrType::MSGR2,
            nonce: 5,
            addr: Some(format!("{ip}:0").parse().unwrap()),
            empty_len: 0,
        };
        wait_for_map(&r, "the range entry", |m| {
            m.is_blocklisted(&probe("192.0.2.77"))
        })
        .await;
        assert!(!r.osdmap().is_blocklisted(&probe("192.0.3.1")));
        assert!(!r.osdmap().is_blocklisted(&me));
        drop(range);
        wait_for_map(&r, "the range entry removed", |m| {
            !m.is_blocklisted(&probe("192.0.2.77"))
        })
        .await;

        let parked = {
            let io = io.clone();
            tokio::spawn(async move { io.write_full("parked", Bytes::from_static(b"x")).await })
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!parked.is_finished(), "the inactive PG answered");

        tool("ceph", &["osd", "blocklist", "add", &addr]);
        let unblock = Unblock(addr.clone());
        let t0 = Instant::now();
        let r1 = tokio::time::timeout(Duration::from_secs(30), parked)
            .await
            .expect("the parked write still waits 30 s after the blocklist")
            .unwrap();
        let e = r1.unwrap_err();
        assert!(e.is_blocklisted(), "wanted EBLOCKLISTED, got {e}");
        assert_eq!(e.errno().0, 108);
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "noticed after {:?}",
            t0.elapsed()
        );
        assert!(r.osdmap().is_blocklisted(&me));
        // later requests fail without being sent
        let t = Instant::now();
        let e = io.read("parked", 0, 1).await.unwrap_err();
        assert!(e.is_blocklisted(), "{e}");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        drop(unblock);
        wait_for_map(&r, "our entry removed", |m| !m.is_blocklisted(&me)).await;
    });
}
