//! Erasure-coded pools: ops address the acting primary's shard (`2.1s0`), as librados
//! does (ceph: src/osdc/Objecter.cc `_calc_target`). Before, every op on an EC pool was
//! parked by the OSD forever (it has no bare `2.1`). `rados` is the other party.

mod common;

use bytes::Bytes;
use common::*;
use std::collections::BTreeSet;
use std::time::Duration;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// An EC pool (k=2, m=1, one chunk per OSD: fits the 3-OSD test cluster) with overwrites
/// allowed, as RBD data pools are. Memstore OSDs need the mon's debug switch for that.
fn ec_pool(prefix: &str) -> Pool {
    tool(
        "ceph",
        &[
            "config",
            "set",
            "mon",
            "mon_debug_no_require_bluestore_for_ec_overwrites",
            "true",
        ],
    );
    tool(
        "ceph",
        &[
            "osd",
            "erasure-code-profile",
            "set",
            "rs-ec21",
            "k=2",
            "m=1",
            "crush-failure-domain=osd",
        ],
    );
    let name = unique(prefix);
    tool(
        "ceph",
        &[
            "osd", "pool", "create", &name, "8", "8", "erasure", "rs-ec21",
        ],
    );
    let pool = Pool(name);
    tool(
        "ceph",
        &["osd", "pool", "set", &pool, "allow_ec_overwrites", "true"],
    );
    pool
}

#[test]
fn write_read_list_remove_on_an_erasure_pool() {
    let pool = ec_pool("ec");
    rt().block_on(async {
        let r = admin().await;
        let mut io = r.ioctx(&pool).await.unwrap();
        // Bounded: a regression hangs no longer than this.
        io.set_op_timeout(Some(Duration::from_secs(60)));
        let mut names = BTreeSet::new();
        for i in 0..12u32 {
            let oid = format!("obj-{i}");
            let data: Vec<u8> = (0..20_000u32).map(|b| (b * 7 + i) as u8).collect();
            io.write_full(&oid, Bytes::from(data.clone()))
                .await
                .unwrap();
            // An overwrite in the middle (needs allow_ec_overwrites; RBD does this).
            io.write(&oid, 100, Bytes::from_static(b"middle"))
                .await
                .unwrap();
            let mut want = data;
            want[100..106].copy_from_slice(b"middle");
            assert_eq!(io.read_full(&oid).await.unwrap(), want, "{oid}");
            assert_eq!(io.stat(&oid).await.unwrap().size, 20_000);
            // The reference client reads what we wrote.
            let theirs = tool("rados", &["-p", &pool, "get", &oid, "-"]);
            assert_eq!(theirs, want, "rados get {oid}");
            names.insert(oid);
        }
        // And we read what the reference client wrote.
        let f = std::env::temp_dir().join(unique("ec-put"));
        std::fs::write(&f, b"from librados").unwrap();
        tool(
            "rados",
            &["-p", &pool, "put", "theirs", f.to_str().unwrap()],
        );
        let _ = std::fs::remove_file(&f);
        assert_eq!(&io.read_full("theirs").await.unwrap()[..], b"from librados");
        names.insert("theirs".into());

        let listed: BTreeSet<String> = String::from_utf8(tool("rados", &["-p", &pool, "ls"]))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(listed, names);

        for oid in &names {
            io.remove(oid).await.unwrap();
        }
        let e = io.stat("obj-0").await.unwrap_err();
        assert!(e.is_not_found(), "{e}");
        let left = tool("rados", &["-p", &pool, "ls"]);
        assert!(left.is_empty(), "{}", String::from_utf8_lossy(&left));
    });
}

/// A pool that cannot serve (EC k=4, m=1 on 3 OSDs: 3 of 5 shards, min_size 4, its PGs
/// never go active) does not hang our requests forever: they wait unsent and fail with
/// ETIMEDOUT naming the PG once `unservable_timeout` passes.
#[test]
fn an_unservable_pool_fails_requests_bounded() {
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
    let name = unique("ec-unservable");
    tool(
        "ceph",
        &[
            "osd", "pool", "create", &name, "4", "4", "erasure", "rs-ec41",
        ],
    );
    let pool = Pool(name);
    rt().block_on(async {
        let mut cfg = admin_config();
        cfg.unservable_timeout = Some(Duration::from_secs(3));
        let r = ceph_rados::Rados::connect(cfg).await.unwrap();
        let io = r.ioctx(&pool).await.unwrap();
        let t = std::time::Instant::now();
        let e = tokio::time::timeout(
            Duration::from_secs(60),
            io.write_full("x", Bytes::from_static(b"x")),
        )
        .await
        .expect("the write to an unservable pool hung")
        .unwrap_err();
        assert_eq!(e.errno(), ceph_rados::Errno::ETIMEDOUT, "{e}");
        assert!(e.to_string().contains("min_size 4"), "{e}");
        assert!(t.elapsed() >= Duration::from_secs(3), "{:?}", t.elapsed());
        let e = io.read("x", 0, 1).await.unwrap_err();
        assert_eq!(e.errno(), ceph_rados::Errno::ETIMEDOUT, "{e}");
    });
}
