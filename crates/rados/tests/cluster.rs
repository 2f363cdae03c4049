//! Integration tests against the real throwaway cluster, with the `ceph` and `rados` tools
//! as the other side. Run through `scripts/test-all` (it starts the cluster).

mod common;

use bytes::Bytes;
use ceph_rados::{CommonArgs, Errno, Error, OsdOp, Rados, WatchEvent};
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, Instant};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Regression (found by the thrash test): `read_full` under a concurrent writer returns
/// one version of the object, never one version's bytes cut to another's length (it was
/// a stat, then a read of that many bytes).
#[test]
fn read_full_is_atomic_under_a_concurrent_writer() {
    rt().block_on(async {
        let pool = make_pool("rfull", 8);
        let r = admin().await;
        let io = r.ioctx(&pool).await.unwrap();
        let short = Bytes::from(vec![b's'; 1000]);
        let long = Bytes::from(vec![b'L'; 50_000]);
        io.write_full("flip", short.clone()).await.unwrap();
        let writer = {
            let (io, short, long) = (io.clone(), short.clone(), long.clone());
            tokio::spawn(async move {
                for i in 0..300 {
                    let d = if i % 2 == 0 { &long } else { &short };
                    io.write_full("flip", d.clone()).await.unwrap();
                }
            })
        };
        let mut reads = 0;
        while !writer.is_finished() {
            let got = io.read_full("flip").await.unwrap();
            assert!(
                got == short || got == long,
                "read_full returned {} bytes that are neither version",
                got.len()
            );
            reads += 1;
        }
        writer.await.unwrap();
        assert!(reads > 10, "only {reads} reads raced the writer");
        assert_eq!(io.read_full("flip").await.unwrap(), short);
        assert!(io
            .read_full("nothing-here")
            .await
            .unwrap_err()
            .is_not_found());
        io.write_full("empty", Bytes::new()).await.unwrap();
        assert!(io.read_full("empty").await.unwrap().is_empty());
    });
}

#[test]
fn lspools_matches_rados_tool() {
    rt().block_on(async {
        let pool = make_pool("lsp", 8);
        let r = admin().await;
        // Other tests create and delete pools concurrently: retry until a quiet moment.
        let mut last = (vec![], vec![]);
        for _ in 0..10 {
            r.mon().wait_for_latest_osdmap().await.unwrap();
            let ours: Vec<String> = r.pool_list().into_iter().map(|(_, n)| n).collect();
            let theirs: Vec<String> = String::from_utf8(tool("rados", &["lspools"]))
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
            if ours == theirs {
                assert!(ours.contains(&pool));
                return;
            }
            last = (ours, theirs);
        }
        panic!(
            "lspools never matched: ours {:?} rados {:?}",
            last.0, last.1
        );
    });
}

#[test]
fn mon_command_status_and_pool_lifecycle() {
    rt().block_on(async {
        let r = admin().await;
        let out = r
            .mon_command(r#"{"prefix":"status","format":"json"}"#, Bytes::new())
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.data).unwrap();
        let fsid = String::from_utf8(tool("ceph", &["fsid"])).unwrap();
        assert_eq!(v["fsid"].as_str().unwrap(), fsid.trim());
        assert_eq!(r.mon().monmap().unwrap().fsid.to_string(), fsid.trim());

        let name = unique("lifecycle");
        r.pool_create(&name, Some(8)).await.unwrap();
        assert!(r.pool_lookup(&name).await.is_ok());
        let e = r.pool_create(&name, Some(8)).await;
        // Creating an existing pool is not an error for the monitor (it says "already exists").
        assert!(e.is_ok(), "{e:?}");
        r.pool_application_enable(&name, "rbd").await.unwrap();
        r.pool_delete(&name).await.unwrap();
        let e = r.pool_lookup(&name).await.unwrap_err();
        assert_eq!(e.errno(), Errno::ENOENT);
        // A bad command is refused with EINVAL and the monitor's text.
        let e = r
            .mon_command(r#"{"prefix":"no such command"}"#, Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL, "{e}");
    });
}

#[test]
fn objects_interop_with_rados_tool() {
    rt().block_on(async {
        let pool = make_pool("objs", 8);
        let r = admin().await;
        let io = r.ioctx(&pool).await.unwrap();
        // We write, rados reads.
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        io.write_full("ours", Bytes::from(data.clone()))
            .await
            .unwrap();
        let dir = tempdir();
        let f = dir.join("got");
        tool("rados", &["-p", &pool, "get", "ours", f.to_str().unwrap()]);
        assert_eq!(std::fs::read(&f).unwrap(), data);
        // rados writes, we read.
        let src = dir.join("src");
        let theirs: Vec<u8> = (0..5000u32).map(|i| (i % 13) as u8).collect();
        std::fs::File::create(&src)
            .unwrap()
            .write_all(&theirs)
            .unwrap();
        tool(
            "rados",
            &["-p", &pool, "put", "theirs", src.to_str().unwrap()],
        );
        assert_eq!(io.read_full("theirs").await.unwrap(), theirs);
        let st = io.stat("theirs").await.unwrap();
        assert_eq!(st.size, 5000);
        // Partial reads and writes.
        io.write("ours", 10, Bytes::from_static(b"hello"))
            .await
            .unwrap();
        assert_eq!(
            &io.read("ours", 8, 9).await.unwrap()[..],
            &[data[8], data[9], b'h', b'e', b'l', b'l', b'o', data[15], data[16]]
        );
        io.append("theirs", Bytes::from_static(b"tail"))
            .await
            .unwrap();
        assert_eq!(io.stat("theirs").await.unwrap().size, 5004);
        io.truncate("theirs", 10).await.unwrap();
        assert_eq!(io.read_full("theirs").await.unwrap().len(), 10);
        // xattrs both ways.
        io.setxattr("ours", "user.color", b"blue").await.unwrap();
        assert_eq!(
            tool("rados", &["-p", &pool, "getxattr", "ours", "user.color"]),
            b"blue"
        );
        tool(
            "rados",
            &["-p", &pool, "setxattr", "theirs", "user.shape", "round"],
        );
        assert_eq!(
            &io.getxattr("theirs", "user.shape").await.unwrap()[..],
            b"round"
        );
        assert!(io
            .getxattrs("theirs")
            .await
            .unwrap()
            .contains_key("user.shape"));
        io.rmxattr("theirs", "user.shape").await.unwrap();
        assert_eq!(
            io.getxattr("theirs", "user.shape")
                .await
                .unwrap_err()
                .errno(),
            Errno::ENODATA
        );
        // omap both ways.
        let kv: BTreeMap<String, Bytes> = [
            ("a".to_string(), Bytes::from_static(b"1")),
            ("b".to_string(), Bytes::from_static(b"\x00\x01")),
        ]
        .into();
        io.omap_set("ours", &kv).await.unwrap();
        let keys =
            String::from_utf8(tool("rados", &["-p", &pool, "listomapkeys", "ours"])).unwrap();
        assert_eq!(keys, "a\nb\n");
        let vf = dir.join("val");
        tool(
            "rados",
            &["-p", &pool, "getomapval", "ours", "b", vf.to_str().unwrap()],
        );
        assert_eq!(std::fs::read(&vf).unwrap(), b"\x00\x01");
        tool("rados", &["-p", &pool, "setomapval", "theirs", "k1", "v1"]);
        let all = io.omap_get_all("theirs").await.unwrap();
        assert_eq!(&all["k1"][..], b"v1");
        let (keys, more) = io.omap_get_keys("ours", "a", 10).await.unwrap();
        assert_eq!(keys, vec!["b".to_string()]);
        assert!(!more);
        let by: BTreeSet<String> = ["a".to_string(), "zz".to_string()].into();
        assert_eq!(
            io.omap_get_vals_by_keys("ours", &by).await.unwrap().len(),
            1
        );
        io.omap_rm_keys("ours", &["a".to_string()].into())
            .await
            .unwrap();
        assert_eq!(io.omap_get_all("ours").await.unwrap().len(), 1);
        // Listing matches rados ls.
        let mut ours: Vec<String> = io
            .list_objects()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.oid)
            .collect();
        ours.sort();
        let mut theirs: Vec<String> = String::from_utf8(tool("rados", &["-p", &pool, "ls"]))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        theirs.sort();
        assert_eq!(ours, theirs);
        // Remove, then ENOENT.
        io.remove("ours").await.unwrap();
        assert_eq!(io.stat("ours").await.unwrap_err().errno(), Errno::ENOENT);
        assert_eq!(io.remove("ours").await.unwrap_err().errno(), Errno::ENOENT);
        // Exclusive create.
        io.create("excl", true).await.unwrap();
        assert_eq!(
            io.create("excl", true).await.unwrap_err().errno(),
            Errno::EEXIST
        );
        drop_pool(&pool);
    });
}

#[test]
fn many_objects_listing_and_placement_match_ceph() {
    rt().block_on(async {
        let pool = make_pool("place", 32);
        let r = admin().await;
        let io = r.ioctx(&pool).await.unwrap();
        // 300 objects written concurrently (pipelined over the OSD sessions).
        let mut set = tokio::task::JoinSet::new();
        for i in 0..300 {
            let io = io.clone();
            set.spawn(async move {
                io.write_full(&format!("obj-{i}"), Bytes::from(vec![i as u8; 100]))
                    .await
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
        let list = io.list_objects().await.unwrap();
        assert_eq!(list.len(), 300);
        // Placement agrees with `ceph osd map` for a sample.
        let map = r.osdmap();
        let pid = r.pool_lookup(&pool).await.unwrap();
        for i in (0..300).step_by(37) {
            let name = format!("obj-{i}");
            let v: serde_json::Value = serde_json::from_slice(&tool(
                "ceph",
                &["osd", "map", &pool, &name, "--format", "json"],
            ))
            .unwrap();
            let (_raw, pg) = map.object_to_pg(pid, &name, "", None).unwrap();
            let (up, up_p, acting, act_p) = map.pg_to_up_acting(pg);
            assert_eq!(v["pgid"].as_str().unwrap(), pg.to_string());
            assert_eq!(
                v["up"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap() as i32)
                    .collect::<Vec<_>>(),
                up
            );
            assert_eq!(
                v["acting"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap() as i32)
                    .collect::<Vec<_>>(),
                acting
            );
            assert_eq!(v["up_primary"].as_i64().unwrap() as i32, up_p);
            assert_eq!(v["acting_primary"].as_i64().unwrap() as i32, act_p);
        }
        drop_pool(&pool);
    });
}

#[test]
fn namespaces_are_separate() {
    rt().block_on(async {
        let pool = make_pool("ns", 8);
        let r = admin().await;
        let mut a = r.ioctx(&pool).await.unwrap();
        a.set_namespace("tenant-a");
        let mut b = a.clone();
        b.set_namespace("tenant-b");
        a.write_full("same", Bytes::from_static(b"A"))
            .await
            .unwrap();
        b.write_full("same", Bytes::from_static(b"B"))
            .await
            .unwrap();
        assert_eq!(&a.read_full("same").await.unwrap()[..], b"A");
        assert_eq!(&b.read_full("same").await.unwrap()[..], b"B");
        let out = tool(
            "rados",
            &["-p", &pool, "-N", "tenant-a", "get", "same", "-"],
        );
        assert_eq!(out, b"A");
        assert_eq!(a.list_objects().await.unwrap().len(), 1);
        drop_pool(&pool);
    });
}

/// `objecter_inflight_ops` bounds what is in flight: with 3 slots, 40 concurrent writes
/// never hold more than 3 at once, and all of them land.
#[test]
fn inflight_ops_limit_is_honoured() {
    rt().block_on(async {
        let pool = make_pool("slots", 8);
        let mut cfg = admin_config();
        cfg.inflight_ops = 3;
        let r = Rados::connect(cfg).await.unwrap();
        let io = r.ioctx(&pool).await.unwrap();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..40 {
            let io = io.clone();
            set.spawn(async move {
                io.write_full(&format!("o{i}"), Bytes::from(vec![i as u8; 65536]))
                    .await
            });
        }
        let mut most = 0;
        while !set.is_empty() {
            most = most.max(r.objecter().in_flight());
            if let Some(done) = set.try_join_next() {
                done.unwrap().unwrap();
            } else {
                tokio::task::yield_now().await;
            }
        }
        assert!(most <= 3, "{most} requests in flight with 3 slots");
        assert!(most >= 1, "the sampling saw no request at all");
        for i in 0..40 {
            let b = io.read_full(&format!("o{i}")).await.unwrap();
            assert_eq!(b.len(), 65536);
            assert!(b.iter().all(|&x| x == i as u8));
        }
        drop_pool(&pool);
    });
}

#[test]
fn compound_ops_and_cls_calls() {
    rt().block_on(async {
        let pool = make_pool("cls", 8);
        let r = admin().await;
        let io = r.ioctx(&pool).await.unwrap();
        // Atomic: create exclusive + write + setxattr in one request.
        let res = io
            .operate(
                "c1",
                vec![
                    OsdOp::create(true),
                    OsdOp::write(0, Bytes::from_static(b"xyz")),
                    OsdOp::setxattr("user.k", b"v"),
                ],
            )
            .await
            .unwrap();
        assert_eq!(res.len(), 3);
        // A failing guard aborts the whole vector: nothing written.
        let e = io
            .operate(
                "c1",
                vec![
                    OsdOp::create(true),
                    OsdOp::write(0, Bytes::from_static(b"ZZZ")),
                ],
            )
            .await
            .unwrap_err();
        assert_eq!(e.errno(), Errno::EEXIST);
        assert_eq!(&io.read_full("c1").await.unwrap()[..], b"xyz");
        // cls "lock": take and inspect an advisory lock the way `rados lock` would.
        let out = io
            .exec("c1", "lock", "list_locks", &[], false)
            .await
            .unwrap();
        assert!(!out.is_empty());
        // A class the OSD does not load: EPERM (not in osd_class_load_list); an unknown
        // method of a loaded class: EOPNOTSUPP.
        let e = io
            .exec("c1", "nosuchclass", "m", &[], false)
            .await
            .unwrap_err();
        assert_eq!(e.errno(), Errno::EPERM, "{e}");
        let e = io
            .exec("c1", "lock", "no_such_method", &[], false)
            .await
            .unwrap_err();
        assert_eq!(e.errno(), Errno::EOPNOTSUPP, "{e}");
        drop_pool(&pool);
    });
}

#[test]
fn watch_notify_between_two_clients() {
    rt().block_on(async {
        let pool = make_pool("watch", 8);
        let a = admin().await;
        let b = admin().await;
        let ia = a.ioctx(&pool).await.unwrap();
        let ib = b.ioctx(&pool).await.unwrap();
        ia.write_full("w", Bytes::from_static(b"x")).await.unwrap();
        let mut w = ia.watch("w").await.unwrap();
        let watchers = ib.list_watchers("w").await.unwrap();
        assert_eq!(watchers.len(), 1);
        assert_eq!(watchers[0].cookie, w.cookie);
        assert_eq!(watchers[0].name.num as u64, a.instance_id());
        // `rados listwatchers` sees us too.
        let txt = String::from_utf8(tool("rados", &["-p", &pool, "listwatchers", "w"])).unwrap();
        assert!(
            txt.contains(&format!("client.{}", a.instance_id())),
            "{txt}"
        );
        let ia2 = ia.clone();
        let acker = tokio::spawn(async move {
            match w.next().await {
                Some(WatchEvent::Notify {
                    notify_id,
                    cookie,
                    payload,
                    ..
                }) => {
                    assert_eq!(&payload[..], b"ping");
                    ia2.notify_ack("w", notify_id, cookie, b"pong")
                        .await
                        .unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
            w
        });
        let acks = ib
            .notify("w", b"ping", Duration::from_secs(10))
            .await
            .unwrap();
        // The ack map carries our reply.
        assert!(acks.windows(4).any(|x| x == b"pong"), "{acks:?}");
        let w = acker.await.unwrap();
        ia.unwatch(w).await.unwrap();
        assert!(ib.list_watchers("w").await.unwrap().is_empty());
        // A watch that is simply dropped is removed in the background, not left to time out.
        let w2 = ia.watch("w").await.unwrap();
        assert_eq!(ib.list_watchers("w").await.unwrap().len(), 1);
        drop(w2);
        let t = Instant::now();
        while !ib.list_watchers("w").await.unwrap().is_empty() {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "dropped watch still registered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop_pool(&pool);
    });
}

#[test]
fn selfmanaged_snapshots() {
    rt().block_on(async {
        let pool = make_pool("snap", 8);
        let r = admin().await;
        let mut io = r.ioctx(&pool).await.unwrap();
        io.write_full("s", Bytes::from_static(b"before"))
            .await
            .unwrap();
        let snap = io.selfmanaged_snap_create().await.unwrap();
        io.set_snap_context(ceph_rados::SnapContext {
            seq: snap,
            snaps: vec![snap],
        });
        io.write_full("s", Bytes::from_static(b"after!"))
            .await
            .unwrap();
        let mut at = io.clone();
        at.set_read_snap(snap);
        assert_eq!(&at.read_full("s").await.unwrap()[..], b"before");
        assert_eq!(&io.read_full("s").await.unwrap()[..], b"after!");
        let (clones, _seq) = io.list_snaps("s").await.unwrap();
        assert_eq!(clones.len(), 2, "{clones:?}");
        io.rollback("s", snap).await.unwrap();
        assert_eq!(&io.read_full("s").await.unwrap()[..], b"before");
        io.selfmanaged_snap_remove(snap).await.unwrap();
        drop_pool(&pool);
    });
}

#[test]
fn kubernetes_user_caps() {
    rt().block_on(async {
        let pool = make_pool("k8s", 8);
        let other = make_pool("k8s-other", 8);
        tool("rbd", &["pool", "init", &pool]);
        let user = unique("client.k8s");
        let caps_osd = format!("profile rbd pool={pool}");
        tool(
            "ceph",
            &[
                "auth",
                "get-or-create",
                &user,
                "mon",
                "profile rbd",
                "osd",
                &caps_osd,
            ],
        );
        let key = String::from_utf8(tool("ceph", &["auth", "print-key", &user])).unwrap();
        // The key arrives the way a Kubernetes Secret holds it: base64 of the key string.
        let secret = base64_encode(key.trim().as_bytes());
        let k = ceph_cephx::CryptoKey::from_secret_file_contents(secret.as_bytes()).unwrap();
        let mut cfg = CommonArgs {
            conf: Some(conf_path()),
            ..Default::default()
        }
        .to_config()
        .unwrap();
        cfg.name = ceph_encoding::EntityName::parse(&user).unwrap();
        cfg.keys = vec![ceph_rados::config::KeySource::Key(k)];
        let r = Rados::connect(cfg).await.unwrap();
        let io = r.ioctx(&pool).await.unwrap();
        io.write_full("ok", Bytes::from_static(b"fine"))
            .await
            .unwrap();
        assert_eq!(&io.read_full("ok").await.unwrap()[..], b"fine");
        // No caps on the other pool: EPERM from the OSD.
        let io2 = r.ioctx(&other).await.unwrap();
        let e = io2
            .write_full("no", Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert!(matches!(e.errno(), Errno::EPERM | Errno::EACCES), "{e}");
        // profile rbd cannot create pools: the monitor says EACCES.
        let e = r.pool_create(&unique("nope"), Some(8)).await.unwrap_err();
        assert!(matches!(e.errno(), Errno::EPERM | Errno::EACCES), "{e}");
        tool("ceph", &["auth", "del", &user]);
        drop_pool(&pool);
        drop_pool(&other);
    });
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[test]
fn wrong_key_is_refused_quickly() {
    rt().block_on(async {
        let mut cfg = admin_config();
        let bogus =
            ceph_cephx::CryptoKey::from_base64("AQBzvWJmAAAAABAAxA3sMbyBBhVtfUc1g2nS5g==").unwrap();
        cfg.keys = vec![ceph_rados::config::KeySource::Key(bogus)];
        let t = Instant::now();
        let e = Rados::connect(cfg).await.unwrap_err();
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "took {:?}",
            t.elapsed()
        );
        assert!(matches!(e.errno(), Errno::EACCES | Errno::EPERM), "{e}");
    });
}

#[test]
fn unknown_user_is_refused() {
    rt().block_on(async {
        let mut cfg = admin_config();
        cfg.name = ceph_encoding::EntityName::client("nobody-here");
        let k =
            ceph_cephx::CryptoKey::from_base64("AQBzvWJmAAAAABAAxA3sMbyBBhVtfUc1g2nS5g==").unwrap();
        cfg.keys = vec![ceph_rados::config::KeySource::Key(k)];
        let e = Rados::connect(cfg).await.unwrap_err();
        assert!(
            matches!(e.errno(), Errno::EACCES | Errno::EPERM | Errno::ENOENT),
            "{e}"
        );
    });
}

#[test]
fn no_monitor_listening_times_out_naming_addresses() {
    rt().block_on(async {
        let mut cfg = admin_config();
        cfg.mon_hosts =
            ceph_rados::config::parse_mon_host("127.0.0.1:3999,127.0.0.1:3998").unwrap();
        cfg.mount_timeout = Duration::from_secs(3);
        let t = Instant::now();
        let e = Rados::connect(cfg).await.unwrap_err();
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "took {:?}",
            t.elapsed()
        );
        let msg = e.to_string();
        assert!(matches!(e, Error::NoMonitor { .. }), "{e}");
        assert!(
            msg.contains("127.0.0.1:3999") && msg.contains("127.0.0.1:3998"),
            "{msg}"
        );
        assert_eq!(e.errno(), Errno::ETIMEDOUT);
    });
}

#[test]
fn v1_port_is_tried_as_msgr2() {
    rt().block_on(async {
        let mut cfg = admin_config();
        cfg.mon_hosts = ceph_rados::config::parse_mon_host("127.0.0.1:6789").unwrap();
        let on_3300 = std::env::var("CEPH_TEST_MON_HOST")
            .unwrap_or_default()
            .contains("127.0.0.1:3300");
        if on_3300 {
            // The test cluster's first monitor listens on 3300: 6789 is redirected there.
            let r = Rados::connect(cfg).await.unwrap();
            assert!(r.instance_id() > 0);
            return;
        }
        // A cluster on another port (CEPH_TEST_MON_PORT): listen on 3300 of another
        // loopback address ourselves and see the client arrive there speaking msgr2.
        use tokio::io::AsyncReadExt;
        cfg.mon_hosts = ceph_rados::config::parse_mon_host("127.0.0.2:6789").unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.2:3300")
            .await
            .expect("bind 127.0.0.2:3300");
        cfg.mount_timeout = Duration::from_secs(5);
        let client = tokio::spawn(Rados::connect(cfg));
        let (mut s, _) = tokio::time::timeout(Duration::from_secs(10), l.accept())
            .await
            .expect("the client never dialled 127.0.0.2:3300")
            .unwrap();
        let mut banner = [0u8; 8];
        s.read_exact(&mut banner).await.unwrap();
        assert_eq!(&banner, b"ceph v2\n");
        drop((s, l));
        assert!(client.await.unwrap().is_err());
    });
}

/// A server that answers with garbage, and one that announces an enormous frame: both are
/// clean errors within the timeout, never a hang or a panic.
#[test]
fn hostile_peers() {
    rt().block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for evil in 0..2 {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            tokio::spawn(async move {
                while let Ok((mut s, _)) = l.accept().await {
                    tokio::spawn(async move {
                        let mut buf = [0u8; 64];
                        if evil == 0 {
                            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                        } else {
                            // Valid banner, then a preamble announcing a 4 GiB segment.
                            let mut b = b"ceph v2\n".to_vec();
                            b.extend_from_slice(&16u16.to_le_bytes());
                            b.extend_from_slice(&1u64.to_le_bytes());
                            b.extend_from_slice(&0u64.to_le_bytes());
                            let _ = s.write_all(&b).await;
                            let _ = s.read(&mut buf).await;
                            let mut p = [0u8; 32];
                            p[0] = 1;
                            p[1] = 1;
                            p[2..6].copy_from_slice(&u32::MAX.to_le_bytes());
                            let crc = !crc32c::crc32c_append(!0, &p[..28]);
                            p[28..32].copy_from_slice(&crc.to_le_bytes());
                            let _ = s.write_all(&p).await;
                        }
                        let _ = s.read(&mut buf).await;
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    });
                }
            });
            let mut cfg = admin_config();
            cfg.mon_hosts =
                ceph_rados::config::parse_mon_host(&format!("127.0.0.1:{port}")).unwrap();
            cfg.mount_timeout = Duration::from_secs(3);
            let t = Instant::now();
            let e = Rados::connect(cfg).await.unwrap_err();
            assert!(t.elapsed() < Duration::from_secs(8));
            let msg = e.to_string();
            if evil == 0 {
                assert!(msg.contains("banner"), "{msg}");
            } else {
                assert!(msg.contains("exceeds the limit"), "{msg}");
            }
        }
    });
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(unique("rados-it"));
    std::fs::create_dir_all(&d).unwrap();
    d
}
