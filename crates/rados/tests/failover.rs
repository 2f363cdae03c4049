//! Tests that kill and restart daemons of the test cluster: monitor failover, an OSD dying
//! under a stream of I/O, cephx ticket renewal past the ticket lifetime. They need a
//! cluster with 3 monitors (`scripts/test-cluster start --mons 3`) and run one at a time:
//! `cargo test -p ceph-rados --features destructive-tests --test failover -- --test-threads 1`.

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

fn mon_count() -> usize {
    let v: serde_json::Value =
        serde_json::from_slice(&tool("ceph", &["mon", "dump", "--format", "json"])).unwrap();
    v["mons"].as_array().unwrap().len()
}

#[test]
fn monitor_failover_keeps_session_and_subscriptions() {
    assert_eq!(
        mon_count(),
        3,
        "this test needs a 3-monitor cluster (scripts/test-cluster start --mons 3)"
    );
    rt().block_on(async {
        let r = admin().await;
        let before = r.osdmap().epoch;
        let mon = r.mon().current_mon().expect("session up");
        let rank = (mon.port() - 3300).to_string();
        cluster_cmd(&["kill-mon", &rank]);
        // Commands keep working: the client hunts to a surviving monitor and resends.
        let t = Instant::now();
        let pool = unique("failover");
        r.pool_create(&pool, Some(8))
            .await
            .expect("pool create after monitor death");
        assert!(
            t.elapsed() < Duration::from_secs(45),
            "failover took {:?}",
            t.elapsed()
        );
        let now = r.mon().current_mon().expect("new session");
        assert_ne!(now, mon, "still on the dead monitor?");
        // The OSDMap subscription survived: the new pool is in our map.
        assert!(r.osdmap().epoch > before);
        assert!(r.osdmap().lookup_pool(&pool).is_some());
        let io = r.ioctx(&pool).await.unwrap();
        io.write_full("x", Bytes::from_static(b"after failover"))
            .await
            .unwrap();
        cluster_cmd(&["start-mon", &rank]);
        drop_pool(&pool);
    });
}

#[test]
fn osd_death_during_io_loses_nothing() {
    rt().block_on(async {
        let pool = make_pool("osdfail", 16);
        tool("ceph", &["osd", "pool", "set", &pool, "size", "3"]);
        tool("ceph", &["osd", "pool", "set", &pool, "min_size", "1"]);
        let r = admin().await;
        let io = r.ioctx(&pool).await.unwrap();
        let writer = {
            let io = io.clone();
            tokio::spawn(async move {
                let mut written = Vec::new();
                let t = Instant::now();
                let mut i = 0u32;
                while t.elapsed() < Duration::from_secs(20) {
                    let data = Bytes::from(format!("object {i} payload").repeat(50));
                    io.write_full(&format!("o{i}"), data.clone()).await.unwrap();
                    let back = io.read_full(&format!("o{i}")).await.unwrap();
                    assert_eq!(back, data);
                    written.push((i, data));
                    i += 1;
                }
                written
            })
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster_cmd(&["kill-osd", "1"]);
        tokio::time::sleep(Duration::from_secs(6)).await;
        cluster_cmd(&["start-osd", "1"]);
        let written = writer.await.expect("no op failed or hung");
        assert!(written.len() > 20, "only {} ops completed", written.len());
        for (i, data) in written.iter().step_by(7) {
            assert_eq!(&io.read_full(&format!("o{i}")).await.unwrap(), data);
        }
        drop_pool(&pool);
    });
}

/// Run with `--ticket-ttl 40` on the cluster: service tickets then need renewal after 30 s.
/// After the lifetime has passed, a brand-new OSD session must still authenticate.
#[test]
fn tickets_are_renewed_before_expiry() {
    let conf = std::fs::read_to_string(conf_path()).unwrap();
    let ttl: u64 = conf
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim().replace(['_', ' '], "") == "authserviceticketttl")
                .then(|| v.trim().parse().ok())?
        })
        .expect("this test needs a cluster started with --ticket-ttl");
    assert!(ttl <= 120, "ticket ttl {ttl} too long for a test");
    rt().block_on(async {
        let pool = make_pool("ttl", 8);
        let r = admin().await;
        let io = r.ioctx(&pool).await.unwrap();
        io.write_full("t", Bytes::from_static(b"1")).await.unwrap();
        tokio::time::sleep(Duration::from_secs(ttl + 5)).await;
        // Force fresh OSD sessions: restart every OSD.
        for osd in ["0", "1", "2"] {
            cluster_cmd(&["kill-osd", osd]);
            cluster_cmd(&["start-osd", osd]);
        }
        io.write_full("t", Bytes::from_static(b"2"))
            .await
            .expect("I/O with renewed tickets");
        assert_eq!(&io.read_full("t").await.unwrap()[..], b"2");
        // And the monitor session still answers.
        r.mon().wait_for_latest_osdmap().await.unwrap();
        drop_pool(&pool);
    });
}

/// Placement of every PG of a live pool equals osdmaptool's on the live map, after
/// pg-upmap-items, primary-affinity and reweight changes (then restored).
#[test]
fn live_placement_after_upmap_affinity_reweight() {
    rt().block_on(async {
        let pool = make_pool("liveplc", 64);
        let r = admin().await;
        let pid = r.pool_lookup(&pool).await.unwrap();
        tool(
            "ceph",
            &[
                "osd",
                "set-require-min-compat-client",
                "luminous",
                "--yes-i-really-mean-it",
            ],
        );
        // Move one replica of PG .1 with an upmap item.
        let m = r.mon().wait_for_latest_osdmap().await.unwrap();
        let pg = format!("{pid}.1");
        let (_, _, acting, _) = m.pg_to_up_acting(ceph_rados::osdmap::PgId::new(pid as u64, 1));
        let spare = m.osds().find(|o| !acting.contains(o) && m.is_up(*o));
        if let Some(to) = spare {
            tool(
                "ceph",
                &[
                    "osd",
                    "pg-upmap-items",
                    &pg,
                    &acting[0].to_string(),
                    &to.to_string(),
                ],
            );
        }
        tool("ceph", &["osd", "primary-affinity", "osd.1", "0.5"]);
        tool("ceph", &["osd", "reweight", "2", "0.8"]);
        let ours = r.mon().wait_for_latest_osdmap().await.unwrap();
        let dir = std::env::temp_dir().join(unique("liveplc"));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("osdmap");
        tool(
            "ceph",
            &[
                "osd",
                "getmap",
                &ours.epoch.to_string(),
                "-o",
                f.to_str().unwrap(),
            ],
        );
        let out = std::process::Command::new(oracle("osdmaptool"))
            .arg(&f)
            .args(["--test-map-pgs-dump-all", "--pool", &pid.to_string()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut n = 0;
        for line in text.lines().filter(|l| l.contains(" up (")) {
            // "2.0 raw ([0,2,1], p0) up ([0,2,1], p0) acting ([0,2,1], p0)"
            let pgid = line.split_whitespace().next().unwrap();
            let (pool_s, seed_s) = pgid.split_once('.').unwrap();
            let pg = ceph_rados::osdmap::PgId::new(
                pool_s.parse().unwrap(),
                u32::from_str_radix(seed_s, 16).unwrap(),
            );
            let (up, up_p, acting, act_p) = ours.pg_to_up_acting(pg);
            let want = format!(
                "up ({}, p{up_p}) acting ({}, p{act_p})",
                fmt_set(&up),
                fmt_set(&acting)
            );
            assert!(
                line.ends_with(&want),
                "pg {pgid}: osdmaptool says {line:?}, we say {want:?}"
            );
            n += 1;
        }
        assert_eq!(n, 64, "{text}");
        tool("ceph", &["osd", "primary-affinity", "osd.1", "1"]);
        tool("ceph", &["osd", "reweight", "2", "1"]);
        let _ = tool_raw("ceph", &["osd", "rm-pg-upmap-items", &pg]);
        let _ = std::fs::remove_dir_all(dir);
        drop_pool(&pool);
    });
}

fn fmt_set(v: &[i32]) -> String {
    format!(
        "[{}]",
        v.iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// Issue 10 item 8, live: the monitor refuses to renew our tickets (the entity was
/// deleted while we were connected; renewal happens at 3/4 of `--ticket-ttl`). The
/// client drops the session and tries a fresh authentication; that is refused too, so
/// monitor requests fail with the refusal (EACCES, as librados), instead of the renewal
/// being retried every tick until the tickets silently expire.
#[test]
fn refused_ticket_renewal_falls_back_to_fresh_auth_then_fails() {
    let conf = std::fs::read_to_string(conf_path()).unwrap();
    let ttl: u64 = conf
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim().replace(['_', ' '], "") == "authmonticketttl")
                .then(|| v.trim().parse().ok())?
        })
        .expect("this test needs a cluster started with --ticket-ttl");
    assert!(ttl <= 120, "ticket ttl {ttl} too long for a test");
    let name = unique("renew").replace('-', "_");
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
    let cfg = ceph_rados::CommonArgs {
        conf: Some(conf_path()),
        keyring: Some(keyring.clone()),
        name: Some(ceph_encoding::EntityName::client(&name)),
        ..Default::default()
    }
    .to_config()
    .unwrap();
    rt().block_on(async {
        let r = ceph_rados::Rados::connect(cfg).await.expect("connect");
        let t0 = Instant::now();
        tool("ceph", &["auth", "rm", &entity]);
        let e = loop {
            let res = tokio::time::timeout(
                Duration::from_secs(10),
                r.mon_command(r#"{"prefix": "status"}"#, Bytes::new()),
            )
            .await
            .expect("a monitor command hung");
            if let Err(e) = res {
                break e;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(ttl + 15),
                "still served {:?} after the entity was deleted (ttl {ttl} s)",
                t0.elapsed()
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        eprintln!("refused after {:?}: {e}", t0.elapsed());
        assert_eq!(e.errno(), ceph_rados::Errno::EACCES, "{e}");
    });
    let _ = std::fs::remove_file(keyring);
}
