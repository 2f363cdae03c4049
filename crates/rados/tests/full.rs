//! Full pools (issue 10, defect 4): a write to a pool over its quota waits (the OSD drops
//! it) and goes out when the quota is lifted; with `set_full_try` it fails at once with
//! EDQUOT. Non-destructive: only this test's own pool gets a quota.

mod common;

use bytes::Bytes;
use ceph_rados::osdmap::pool_flags;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn cluster_cmd(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/test-cluster");
    let st = Command::new(script)
        .args(args)
        .arg("--dir")
        .arg(cluster_dir())
        .status()
        .expect("run scripts/test-cluster");
    assert!(st.success(), "test-cluster {args:?} failed");
}

#[test]
fn quota_full_pool_holds_writes_until_lifted() {
    let pool = make_pool("full", 8);
    rt().block_on(async {
        let r = admin().await;
        let io = r.ioctx(&pool).await.unwrap();
        let id = io.pool_id();
        cluster_cmd(&["pool-quota", &pool, "max_objects", "2"]);
        for o in ["a", "b", "c"] {
            io.write_full(o, Bytes::from_static(b"x")).await.unwrap();
        }
        // The monitors mark the pool full once the PG stats show the quota passed.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let full = r
                .osdmap()
                .pool(id)
                .is_some_and(|p| p.has_flag(pool_flags::FULL_QUOTA));
            if full {
                break;
            }
            assert!(Instant::now() < deadline, "pool never marked full");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // FULL_TRY: EDQUOT at once.
        let mut try_io = io.clone();
        try_io.set_full_try(true);
        let t = Instant::now();
        let e = try_io
            .write_full("d", Bytes::from_static(b"try"))
            .await
            .unwrap_err();
        assert_eq!(e.errno().0, 122, "wanted EDQUOT, got {e}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        // Default: the write waits...
        let w = {
            let io = io.clone();
            tokio::spawn(async move { io.write_full("e", Bytes::from_static(b"held")).await })
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!w.is_finished(), "a write to a full pool completed");
        // ...and lands once the quota is lifted.
        let t = Instant::now();
        cluster_cmd(&["pool-quota", &pool, "max_objects", "0"]);
        tokio::time::timeout(Duration::from_secs(90), w)
            .await
            .expect("held write never resent after the quota was lifted")
            .unwrap()
            .unwrap();
        eprintln!(
            "held write completed {:?} after the quota was lifted",
            t.elapsed()
        );
        assert_eq!(&io.read("e", 0, 8).await.unwrap()[..], b"held");
    });
}
