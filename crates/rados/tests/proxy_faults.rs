//! Faults injected between our client and the live cluster by the in-process proxy
//! (`common/proxy.rs`, issue 10): resets mid-request and mid-reply, a flipped byte in
//! either direction, a black-holed OSD session, stalls and slow links. Every op must
//! complete exactly once; `rados get` (librados) reads back what landed. The client
//! offers both msgr2 modes and the cluster picks its own (`CEPH_TEST_MODE`), so the same
//! tests cover crc and secure sessions (a flipped byte is then a crc or a GCM failure).

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use bytes::Bytes;
use ceph_rados::{ClientConfig, IoCtx, Rados};
use common::*;
use proxy::{Dir, FaultProxy, ProxyConn};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// client.admin dialing everything through `p`.
fn proxied(p: &FaultProxy) -> ClientConfig {
    let mut cfg = admin_config();
    cfg.dial = Some(p.hook());
    cfg
}

fn is_mon(cfg: &ClientConfig, a: SocketAddr) -> bool {
    cfg.mon_hosts.iter().any(|m| m.port == a.port())
}

/// The one live OSD session through the proxy (the tests touch one object, so one OSD).
fn osd_conn(p: &FaultProxy, cfg: &ClientConfig) -> Arc<ProxyConn> {
    let mut v = p.live(|a| !is_mon(cfg, a));
    assert_eq!(v.len(), 1, "expected exactly one proxied OSD session");
    v.pop().unwrap()
}

/// What librados reads back.
fn oracle_get(pool: &str, oid: &str) -> Vec<u8> {
    tool("rados", &["-p", pool, "get", oid, "-"])
}

async fn setup(p: &FaultProxy, cfg: ClientConfig, pool: &str, oid: &str) -> (Rados, IoCtx) {
    let r = Rados::connect(cfg)
        .await
        .expect("connect through the proxy");
    let io = r.ioctx(pool).await.unwrap();
    io.write_full(oid, Bytes::from_static(b"<")).await.unwrap();
    assert!(
        p.accepted() >= 2,
        "mon and OSD sessions go through the proxy"
    );
    (r, io)
}

async fn within<T>(what: &str, d: Duration, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(d, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {d:?}"))
}

/// The connection is reset while the 4 MiB request is half-way through the socket: the
/// objecter reconnects and resends it, and the object grows by exactly one copy.
#[test]
fn reset_mid_request_resends_once() {
    let pool = make_pool("proxy", 8);
    let p = FaultProxy::new();
    let cfg = proxied(&p);
    rt().block_on(async {
        let (_r, io) = setup(&p, cfg.clone(), &pool, "obj").await;
        let c = osd_conn(&p, &cfg);
        c.reset_at(Dir::ToServer, c.position(Dir::ToServer) + (1 << 20));
        let big = Bytes::from(vec![b'B'; 4 << 20]);
        within(
            "append after reset",
            Duration::from_secs(60),
            io.append("obj", big),
        )
        .await
        .unwrap();
        assert!(c.is_closed(), "the reset happened");
        assert!(c.position(Dir::ToServer) >= 1 << 20);
        assert_eq!(p.live(|a| !is_mon(&cfg, a)).len(), 1, "one new session");
    });
    let got = oracle_get(&pool, "obj");
    assert_eq!(got.len(), 1 + (4 << 20));
    assert!(got[1..].iter().all(|&b| b == b'B'));
}

/// The reply is lost (reset before its first byte reaches us) after the OSD applied the
/// append: the resend carries the same reqid, the OSD answers it from its PG log, and the
/// append lands once.
#[test]
fn reset_before_reply_applies_once() {
    let pool = make_pool("proxy", 8);
    let p = FaultProxy::new();
    let cfg = proxied(&p);
    rt().block_on(async {
        let (_r, io) = setup(&p, cfg.clone(), &pool, "obj").await;
        for round in 0..3u8 {
            let c = osd_conn(&p, &cfg);
            c.reset_at(Dir::ToClient, c.position(Dir::ToClient));
            let rec = Bytes::from(vec![b'a' + round; 1000]);
            within(
                "append after a lost reply",
                Duration::from_secs(60),
                io.append("obj", rec),
            )
            .await
            .unwrap();
            assert!(c.is_closed(), "round {round}: the reply was cut");
        }
    });
    let got = oracle_get(&pool, "obj");
    let mut want = b"<".to_vec();
    for round in 0..3u8 {
        want.extend_from_slice(&[b'a' + round; 1000]);
    }
    assert_eq!(got.len(), want.len(), "no append doubled or lost");
    assert_eq!(got, want);
}

/// One byte flipped in the reply stream, then one in the request stream: each breaks
/// the frame's crc (or the GCM tag), the session is dropped and remade, and the ops
/// complete with the right data.
#[test]
fn corrupted_byte_reconnects_and_completes() {
    let pool = make_pool("proxy", 8);
    let p = FaultProxy::new();
    let cfg = proxied(&p);
    rt().block_on(async {
        let (_r, io) = setup(&p, cfg.clone(), &pool, "obj").await;
        let data = Bytes::from((0..64 * 1024u32).map(|i| i as u8).collect::<Vec<u8>>());
        io.write_full("obj", data.clone()).await.unwrap();

        // Into the read reply (its preamble or its data, crc/tag covers both).
        let c = osd_conn(&p, &cfg);
        c.flip_at(Dir::ToClient, c.position(Dir::ToClient) + 100);
        let got = within(
            "read after a flipped reply byte",
            Duration::from_secs(60),
            async { io.read("obj", 0, 64 * 1024).await },
        )
        .await
        .unwrap();
        assert_eq!(got, data);
        assert_eq!(c.flipped(), 1);
        within("old session dropped", Duration::from_secs(10), async {
            while !c.is_closed() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;

        // Into the write request: the OSD rejects the frame and drops the session.
        let c = osd_conn(&p, &cfg);
        c.flip_at(Dir::ToServer, c.position(Dir::ToServer) + 5000);
        let data2 = Bytes::from(vec![0x5a; 32 * 1024]);
        within(
            "write after a flipped request byte",
            Duration::from_secs(60),
            async { io.write_full("obj", data2.clone()).await },
        )
        .await
        .unwrap();
        assert_eq!(c.flipped(), 1);
        assert!(c.is_closed());
    });
    assert_eq!(oracle_get(&pool, "obj"), vec![0x5a; 32 * 1024]);
}

/// A black-holed OSD session (peer silent, sockets open) is torn down by the keepalive
/// and idle checks within the configured idle timeout, and the op completes on a new one.
#[test]
fn black_holed_osd_session_times_out_and_op_completes() {
    let pool = make_pool("proxy", 8);
    let p = FaultProxy::new();
    let mut cfg = proxied(&p);
    cfg.osd_keepalive_interval = Duration::from_millis(500);
    cfg.osd_idle_timeout = Duration::from_secs(3);
    rt().block_on(async {
        let (_r, io) = setup(&p, cfg.clone(), &pool, "obj").await;
        let c = osd_conn(&p, &cfg);
        c.black_hole();
        let t0 = Instant::now();
        within(
            "append through a black hole",
            Duration::from_secs(30),
            async { io.append("obj", Bytes::from_static(b"X")).await },
        )
        .await
        .unwrap();
        let took = t0.elapsed();
        eprintln!("completed {took:?} after the black hole opened");
        assert!(
            took >= Duration::from_secs(2),
            "completed in {took:?}: it cannot have used the black-holed session"
        );
        assert!(
            took < Duration::from_secs(10),
            "idle detection took {took:?}"
        );
        // The OSD itself closes the old socket once our new session replaces it.
        let osd = p
            .conns()
            .into_iter()
            .filter(|x| !is_mon(&cfg, x.upstream))
            .count();
        assert_eq!(osd, 2, "the black-holed session and its replacement");
        assert!(!osd_conn(&p, &cfg).is_closed());
    });
    assert_eq!(oracle_get(&pool, "obj"), b"<X");
}

/// Poll every future once in order (each submits its op), then wait for all: the ops go
/// out in this order, and we return their results in the same order.
async fn submit_in_order<T>(mut futs: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> Vec<T> {
    let mut done: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (f, d) in futs.iter_mut().zip(done.iter_mut()) {
            if let Poll::Ready(v) = f.as_mut().poll(cx) {
                *d = Some(v);
            }
        }
        Poll::Ready(())
    })
    .await;
    let mut out = Vec::new();
    for (f, d) in futs.into_iter().zip(done) {
        out.push(match d {
            Some(v) => v,
            None => f.await,
        });
    }
    out
}

/// A stalled and then slow link: queued appends all complete, and land in the order they
/// were issued.
#[test]
fn stall_and_delay_keep_order() {
    let pool = make_pool("proxy", 8);
    let p = FaultProxy::new();
    let cfg = proxied(&p);
    rt().block_on(async {
        let (_r, io) = setup(&p, cfg.clone(), &pool, "obj").await;
        let c = osd_conn(&p, &cfg);
        c.delay_chunks(Duration::from_millis(20));
        c.stall(Duration::from_millis(800));
        let t0 = Instant::now();
        type Fut = Pin<Box<dyn Future<Output = ceph_rados::Result<()>> + Send>>;
        let futs: Vec<Fut> = (0..20)
            .map(|i| {
                let io = io.clone();
                Box::pin(async move { io.append("obj", Bytes::from(format!("{i},"))).await }) as Fut
            })
            .collect();
        let res = within(
            "ordered appends",
            Duration::from_secs(60),
            submit_in_order(futs),
        )
        .await;
        for r in res {
            r.unwrap();
        }
        assert!(
            t0.elapsed() >= Duration::from_millis(800),
            "the stall held them"
        );
        assert!(!c.is_closed(), "a slow link is not a dead one");
    });
    let want: String = std::iter::once("<".to_string())
        .chain((0..20).map(|i| format!("{i},")))
        .collect();
    assert_eq!(String::from_utf8(oracle_get(&pool, "obj")).unwrap(), want);
}

/// Issue 10 item 8: the peer stops reading while we still have 24 MiB of writes for it,
/// so our socket buffer fills and the write to it blocks. The keepalive and idle checks
/// must keep running meanwhile: the session is torn down within the idle timeout and the
/// writes complete on a new one (they used to hang forever on the blocked write).
#[test]
fn blocked_write_to_black_hole_still_times_out() {
    let pool = make_pool("proxy", 8);
    let p = FaultProxy::new();
    let mut cfg = proxied(&p);
    cfg.osd_keepalive_interval = Duration::from_millis(500);
    cfg.osd_idle_timeout = Duration::from_secs(3);
    const CHUNK: usize = 4 << 20;
    rt().block_on(async {
        let (_r, io) = setup(&p, cfg.clone(), &pool, "obj").await;
        let c = osd_conn(&p, &cfg);
        c.black_hole();
        let t0 = Instant::now();
        type Fut = Pin<Box<dyn Future<Output = ceph_rados::Result<()>> + Send>>;
        let futs: Vec<Fut> = (0..6u8)
            .map(|i| {
                let io = io.clone();
                let data = Bytes::from(vec![b'0' + i; CHUNK]);
                Box::pin(async move { io.write("obj", (i as usize * CHUNK) as u64, data).await })
                    as Fut
            })
            .collect();
        let res = within(
            "writes stuck behind a black hole",
            Duration::from_secs(45),
            submit_in_order(futs),
        )
        .await;
        for r in res {
            r.unwrap();
        }
        let took = t0.elapsed();
        eprintln!("completed {took:?} after the black hole opened");
        assert!(
            took < Duration::from_secs(30),
            "idle detection took {took:?}"
        );
        let osd = p
            .conns()
            .into_iter()
            .filter(|x| !is_mon(&cfg, x.upstream))
            .count();
        assert_eq!(osd, 2, "the black-holed session and its replacement");
    });
    let got = oracle_get(&pool, "obj");
    assert_eq!(got.len(), 6 * CHUNK);
    for (i, part) in got.chunks(CHUNK).enumerate() {
        assert!(part.iter().all(|&b| b == b'0' + i as u8), "chunk {i}");
    }
}

/// Issue 10 item 8: once connected, a monitor that refuses to authenticate us again (here
/// the entity was deleted, so reclaiming its global id is refused) must surface as an
/// error on the monitor requests, not as an endless hunt that leaves them hanging.
#[test]
fn refused_reauthentication_surfaces_an_error() {
    let name = unique("relauth").replace('-', "_");
    let entity = format!("client.{name}");
    let keyring = cluster_dir().join(format!("{name}.keyring"));
    tool(
        "ceph",
        &[
            "auth",
            "get-or-create",
            &entity,
            "mon",
            "allow *",
            "osd",
            "allow *",
            "-o",
            keyring.to_str().unwrap(),
        ],
    );
    let p = FaultProxy::new();
    let mut cfg = ceph_rados::CommonArgs {
        conf: Some(conf_path()),
        keyring: Some(keyring.clone()),
        name: Some(ceph_encoding::EntityName::client(&name)),
        ..Default::default()
    }
    .to_config()
    .unwrap();
    cfg.dial = Some(p.hook());
    rt().block_on(async {
        let r = Rados::connect(cfg.clone())
            .await
            .expect("connect as the new entity");
        r.mon_command(r#"{"prefix": "status"}"#, Bytes::new())
            .await
            .unwrap();
        tool("ceph", &["auth", "rm", &entity]);
        let mons = p.live(|a| is_mon(&cfg, a));
        assert_eq!(mons.len(), 1);
        mons[0].reset();
        let before = p.accepted();
        let t0 = Instant::now();
        let e = within(
            "monitor command after refused re-auth",
            Duration::from_secs(30),
            async { r.mon_command(r#"{"prefix": "status"}"#, Bytes::new()).await },
        )
        .await
        .expect_err("the entity is gone: the command must fail");
        eprintln!("error after {:?}: {e}", t0.elapsed());
        assert!(
            matches!(e.errno().0, 1 | 2 | 13),
            "EPERM/ENOENT/EACCES expected, got {e}"
        );
        // And the client stops hunting: no new monitor connections from now on.
        let after = p.accepted();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(p.accepted(), after, "still hunting after a refusal");
        // bounded: a few connection attempts per monitor (hunting opens several at a
        // time), then none
        assert!(
            after - before <= 3 * cfg.mon_hosts.len(),
            "{} attempts",
            after - before
        );
        // Later requests fail at once with the same error.
        let e2 = r
            .mon_command(r#"{"prefix": "status"}"#, Bytes::new())
            .await
            .expect_err("still refused");
        assert_eq!(e2.errno(), e.errno());
    });
    let _ = std::fs::remove_file(keyring);
}

/// Issue 10 item 6: a watch whose OSD session is reset tells its owner with
/// `Disconnected { errno: ENOTCONN }` (librados' error callback gets -ENOTCONN), is
/// re-established, and notifies from another client reach it again.
#[test]
fn watch_reset_reports_enotconn_and_recovers() {
    let pool = make_pool("proxy", 8);
    let p = FaultProxy::new();
    let cfg = proxied(&p);
    rt().block_on(async {
        let (_r, io) = setup(&p, cfg.clone(), &pool, "w").await;
        let mut watch = io.watch("w").await.unwrap();
        osd_conn(&p, &cfg).reset();
        let ev = within(
            "an event after the reset",
            Duration::from_secs(30),
            watch.next(),
        )
        .await
        .expect("the watch stream is still open");
        match ev {
            ceph_rados::WatchEvent::Disconnected { errno } => {
                assert_eq!(errno, ceph_rados::Errno::ENOTCONN)
            }
            other => panic!("expected Disconnected, got {other:?}"),
        }
        // Re-established: a notify from another (direct) client reaches it.
        let other = admin().await;
        let oio = other.ioctx(&pool).await.unwrap();
        let notifier =
            tokio::spawn(async move { oio.notify("w", b"again", Duration::from_secs(10)).await });
        within(
            "the notify after re-establishing",
            Duration::from_secs(30),
            async {
                loop {
                    match watch.next().await.expect("stream open") {
                        ceph_rados::WatchEvent::Notify {
                            notify_id,
                            cookie,
                            payload,
                            ..
                        } if &payload[..] == b"again" => {
                            io.notify_ack("w", notify_id, cookie, b"").await.unwrap();
                            return;
                        }
                        _ => {}
                    }
                }
            },
        )
        .await;
        notifier.await.unwrap().unwrap();
    });
}
