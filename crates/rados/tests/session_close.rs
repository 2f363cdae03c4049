//! Dropping the last handle of a client closes its sessions: the OSD connections (which the
//! objecter's task closes when it sees the last handle gone) and the monitor's. A process
//! that connects and drops clients in a loop (a CSI node plugin, a backup tool) must not
//! keep sockets, and the daemons must not keep sessions, for clients it no longer has.
//!
//! This test has a binary of its own: it counts every TCP connection of the process.

mod common;

use bytes::Bytes;
use common::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The remote ports of this process's established TCP connections.
fn established_peers() -> BTreeSet<u16> {
    let inodes: BTreeSet<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect();
    let mut peers = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "01" {
                continue;
            }
            let Ok(inode) = f[9].parse::<u64>() else {
                continue;
            };
            if !inodes.contains(&inode) {
                continue;
            }
            if let Some(port) = f[2].rsplit(':').next() {
                peers.insert(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    peers
}

async fn wait_closed(what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = established_peers();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: connections to ports {left:?} still open 10 s after the last handle was dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_closes_every_session() {
    assert!(
        established_peers().is_empty(),
        "connections before the test"
    );
    let pool = unique("close");
    {
        let r = admin().await;
        r.pool_create(&pool, Some(16)).await.unwrap();
        let io = r.ioctx(&pool).await.unwrap();
        // objects on every OSD, and a watch (a linger op the objecter keeps re-sending)
        for i in 0..64 {
            io.write_full(&format!("o{i}"), Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        let w = io.watch("o0").await.unwrap();
        let peers = established_peers();
        assert!(
            peers.len() >= 2,
            "expected a monitor and OSD sessions, have connections to {peers:?}"
        );
        // the watch is dropped with the client, not unwatched first
        drop(w);
        drop(io);
        r.pool_delete(&pool).await.unwrap();
    }
    wait_closed("client with OSD sessions and a watch").await;

    // A client that only talked to the monitor, and an IoCtx outliving its Rados handle.
    let r = admin().await;
    let io = r.ioctx("no-such-pool").await.err();
    assert!(io.is_some(), "no such pool");
    drop(r);
    wait_closed("client with a monitor session only").await;

    let pool = unique("close");
    let r = admin().await;
    r.pool_create(&pool, Some(8)).await.unwrap();
    let io = r.ioctx(&pool).await.unwrap();
    drop(r);
    io.write_full("a", Bytes::from_static(b"y")).await.unwrap();
    assert!(
        !established_peers().is_empty(),
        "the IoCtx keeps its client alive"
    );
    let r = admin().await;
    drop(io);
    r.pool_delete(&pool).await.unwrap();
    drop(r);
    wait_closed("client kept alive by an IoCtx").await;
}
