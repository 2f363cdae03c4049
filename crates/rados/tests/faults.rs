//! Fault injection with `scripts/test-cluster` (issue 10): paused OSDs (SIGSTOP), OSDs
//! marked down. Destructive (they stop daemons of the test cluster), so they run one at a
//! time in scripts/test-all phase 2:
//! `cargo test -p ceph-rados --features destructive-tests --test faults -- --test-threads 1`.

mod common;

use bytes::Bytes;
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

fn primary_of(pool: &str, oid: &str) -> i32 {
    let v: serde_json::Value = serde_json::from_slice(&tool(
        "ceph",
        &["osd", "map", pool, oid, "--format", "json"],
    ))
    .unwrap();
    v["acting_primary"].as_i64().expect("acting_primary") as i32
}

/// Resumes a paused OSD even when the test fails, and waits until it is up again.
struct Paused(i32);

impl Drop for Paused {
    fn drop(&mut self) {
        cluster_cmd(&["resume-osd", &self.0.to_string()]);
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            let out = tool_raw("ceph", &["osd", "dump", "--format", "json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let up = v["osds"]
                .as_array()
                .and_then(|a| a.iter().find(|o| o["osd"].as_i64() == Some(self.0 as i64)))
                .and_then(|o| o["up"].as_i64())
                == Some(1);
            if up {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Defect 5 live: a write that timed out against a paused primary is cancelled. When the
/// map then moves the PG to a healthy OSD, the write is NOT resent there: the object
/// keeps its old contents, so a write reported as failed never lands later.
#[test]
fn timed_out_write_never_lands_after_failover() {
    let pool = make_pool("faults", 8);
    rt().block_on(async {
        let r = admin().await;
        let io = r.ioctx(&pool).await.unwrap();
        io.write_full("victim", Bytes::from_static(b"OLD"))
            .await
            .unwrap();
        let p = primary_of(&pool, "victim");
        cluster_cmd(&["pause-osd", &p.to_string()]);
        let guard = Paused(p);

        let mut short = io.clone();
        short.set_op_timeout(Some(Duration::from_secs(3)));
        let t = Instant::now();
        let e = short
            .write_full("victim", Bytes::from_static(b"LOST"))
            .await
            .unwrap_err();
        assert!(e.is_timeout(), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

        // The cluster moves the PG away from the paused primary.
        cluster_cmd(&["osd-down", &p.to_string()]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while r.osdmap().is_up(p) {
            assert!(Instant::now() < deadline, "our map never saw osd.{p} down");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Give a (wrong) resend every chance to land on the new primary.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let got = io.read("victim", 0, 16).await.unwrap();
        assert_eq!(&got[..], b"OLD", "a write reported as failed landed");
        assert_eq!(
            r.objecter().in_flight(),
            0,
            "the cancelled write is still held"
        );
        // New writes work and are not overtaken by the old one once the OSD is back.
        io.write_full("victim", Bytes::from_static(b"NEW"))
            .await
            .unwrap();
        drop(guard);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let got = io.read("victim", 0, 16).await.unwrap();
        assert_eq!(&got[..], b"NEW");
    });
}

/// A paused (alive but silent) primary does not hang writes without a timeout: once the
/// cluster marks it down they go to the new primary and succeed.
#[test]
fn writes_survive_a_paused_primary() {
    let pool = make_pool("faults", 8);
    rt().block_on(async {
        let r = admin().await;
        let io = r.ioctx(&pool).await.unwrap();
        io.write_full("o", Bytes::from_static(b"0")).await.unwrap();
        let p = primary_of(&pool, "o");
        cluster_cmd(&["pause-osd", &p.to_string()]);
        let guard = Paused(p);
        let w = {
            let io = io.clone();
            tokio::spawn(async move { io.write_full("o", Bytes::from_static(b"1")).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster_cmd(&["osd-down", &p.to_string()]);
        let t = Instant::now();
        tokio::time::timeout(Duration::from_secs(60), w)
            .await
            .expect("write hung on a paused primary")
            .unwrap()
            .unwrap();
        eprintln!(
            "write completed {:?} after osd.{p} was marked down",
            t.elapsed()
        );
        assert_eq!(&io.read("o", 0, 4).await.unwrap()[..], b"1");
        drop(guard);
    });
}

fn mon_count() -> usize {
    let v: serde_json::Value =
        serde_json::from_slice(&tool("ceph", &["mon", "dump", "--format", "json"])).unwrap();
    v["mons"].as_array().unwrap().len()
}

/// Restarts every monitor even when the test fails.
struct MonsDown(usize);

impl Drop for MonsDown {
    fn drop(&mut self) {
        // with every monitor down none can form a quorum alone: start all but the
        // last without waiting, then wait for the last to join the re-formed quorum
        for rank in 0..self.0 {
            let r = rank.to_string();
            if rank + 1 < self.0 {
                cluster_cmd(&["start-mon", &r, "--no-wait"]);
            } else {
                cluster_cmd(&["start-mon", &r]);
            }
        }
    }
}

/// Defect 8 live: with every monitor down, monitor requests fail by their timeout instead of
/// hanging (`get_version` had none), and a command abandoned by its timeout is never sent
/// once a monitor is back: a pool create reported as timed out must not happen later.
#[test]
fn abandoned_mon_command_is_never_resent() {
    let n = mon_count();
    rt().block_on(async {
        let mut cfg = admin_config();
        cfg.mon_op_timeout = Some(Duration::from_secs(3));
        let r = ceph_rados::Rados::connect(cfg).await.unwrap();
        let mut cfg = admin_config();
        cfg.mon_op_timeout = None;
        cfg.mount_timeout = Duration::from_secs(3);
        let r2 = ceph_rados::Rados::connect(cfg).await.unwrap();
        for rank in 0..n {
            cluster_cmd(&["kill-mon", &rank.to_string()]);
        }
        let guard = MonsDown(n);
        let pool = unique("never");
        let t = Instant::now();
        let e = tokio::time::timeout(Duration::from_secs(30), r.pool_create(&pool, Some(8)))
            .await
            .expect("pool create hung with every monitor down")
            .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert_eq!(e.errno().0, 110, "{e}");
        let e = tokio::time::timeout(Duration::from_secs(30), r.mon().get_version("osdmap"))
            .await
            .expect("get_version hung with every monitor down")
            .unwrap_err();
        assert_eq!(e.errno().0, 110, "{e}");
        // With no `mon_op_timeout` (librados' default) a command is still bounded while
        // no monitor answers: it fails with NoMonitor after the mount timeout.
        let pool2 = unique("never-unbounded");
        let t = Instant::now();
        let e = tokio::time::timeout(Duration::from_secs(30), r2.pool_create(&pool2, Some(8)))
            .await
            .expect("a command with no mon_op_timeout hung with every monitor down")
            .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(matches!(e, ceph_rados::Error::NoMonitor { .. }), "{e:?}");
        assert_eq!(e.errno().0, 110, "{e}");
        drop(guard);
        // The client gets its session back...
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if r.mon().get_version("osdmap").await.is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no monitor session after the restart"
            );
        }
        // ...and the abandoned command did not run.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pools = String::from_utf8(tool("ceph", &["osd", "pool", "ls"])).unwrap();
        for p in [&pool, &pool2] {
            let found = pools.lines().any(|l| l == p.as_str());
            if found {
                drop_pool(p);
            }
            assert!(
                !found,
                "a pool create reported as failed was run later: {p}"
            );
        }
    });
}

/// Restarts a killed OSD even when the test fails.
struct Killed(i32);

impl Drop for Killed {
    fn drop(&mut self) {
        cluster_cmd(&["start-osd", &self.0.to_string()]);
    }
}

/// Issue 10, defect 6 live: the OSD holding a watched object's PG restarts (SIGTERM, then
/// start again). The watch owner is told of the error (a `Disconnected` event, librados'
/// watch error callback), the watch is re-established on the new and then the restarted
/// primary, and notifies reach it again.
#[test]
fn watch_is_reestablished_after_its_primary_restarts() {
    let pool = make_pool("faults-watch", 8);
    rt().block_on(async {
        let r = admin().await;
        let io = r.ioctx(&pool).await.unwrap();
        io.write_full("w", Bytes::from_static(b"watched"))
            .await
            .unwrap();
        let mut watch = io.watch("w").await.unwrap();
        // The owner: acks every notify and reports what it saw.
        let (ev_tx, mut ev_rx) = tokio::sync::mpsc::unbounded_channel();
        let owner = {
            let io = io.clone();
            tokio::spawn(async move {
                while let Some(ev) = watch.next().await {
                    match ev {
                        ceph_rados::WatchEvent::Notify {
                            notify_id,
                            cookie,
                            payload,
                            ..
                        } => {
                            let _ = io.notify_ack("w", notify_id, cookie, b"ack").await;
                            let _ = ev_tx.send(Some(payload));
                        }
                        ceph_rados::WatchEvent::Disconnected { errno } => {
                            assert_eq!(errno, ceph_rados::Errno::ENOTCONN);
                            let _ = ev_tx.send(None);
                        }
                    }
                }
            })
        };
        // Notifies come from another client.
        let other = admin().await;
        let oio = other.ioctx(&pool).await.unwrap();
        let notified = |ev_rx: &mut tokio::sync::mpsc::UnboundedReceiver<Option<Bytes>>,
                        what: &'static [u8]| {
            let mut disconnects = 0;
            while let Ok(e) = ev_rx.try_recv() {
                match e {
                    Some(p) if &p[..] == what => return (true, disconnects),
                    Some(_) => {}
                    None => disconnects += 1,
                }
            }
            (false, disconnects)
        };
        oio.notify("w", b"before", Duration::from_secs(10))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            notified(&mut ev_rx, b"before").0,
            "no notify before the restart"
        );

        let p = primary_of(&pool, "w");
        cluster_cmd(&["kill-osd", &p.to_string()]);
        let killed = Killed(p);
        let deadline = Instant::now() + Duration::from_secs(30);
        while r.osdmap().is_up(p) {
            assert!(Instant::now() < deadline, "our map never saw osd.{p} down");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        drop(killed); // start-osd: returns once it is active again
        let deadline = Instant::now() + Duration::from_secs(30);
        while !r.osdmap().is_up(p) {
            assert!(Instant::now() < deadline, "our map never saw osd.{p} up");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // (the primary usually moves back to it; a pg_temp during recovery may delay that,
        // which the watch must survive as well)
        eprintln!("primary now osd.{}", primary_of(&pool, "w"));

        // Notify until the re-established watch receives one (each waits for acks up to
        // its timeout, so a watcher not yet reconnected only delays it).
        let t = Instant::now();
        let mut disconnects = 0;
        loop {
            assert!(
                t.elapsed() < Duration::from_secs(90),
                "no notify reached the watch within 90 s of the restart"
            );
            let _ = oio.notify("w", b"after", Duration::from_secs(5)).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (got, d) = notified(&mut ev_rx, b"after");
            disconnects += d;
            if got {
                break;
            }
        }
        eprintln!(
            "notifies reach the watch again {:?} after osd.{p} restarted",
            t.elapsed()
        );
        assert!(disconnects >= 1, "the owner was never told its watch broke");
        // The watch is registered on the OSD again: the cluster lists it.
        let out = String::from_utf8(tool("rados", &["-p", &pool, "listwatchers", "w"])).unwrap();
        assert!(
            out.contains(&format!("client.{}", r.instance_id())),
            "{out}"
        );
        owner.abort();
    });
}
