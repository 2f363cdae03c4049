//! The objecter's per-op path without a cluster (`ceph_rados::osd::bench`): a 4 KiB write
//! placed and queued by the sans-IO core, its MOSDOp built, the MOSDOpReply decoded and
//! matched, the caller completed. The map comes from `osdmaptool --createsimple` (3 OSDs,
//! the default pool), its OSDs marked up with addresses.

use bytes::Bytes;
use ceph_encoding::{EntityAddr, EntityAddrVec};
use ceph_rados::osd::bench::SubmitPath;
use ceph_rados::osdmap::{osd_state, OsdMap, CEPH_OSD_IN};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn map() -> OsdMap {
    let dir = std::env::temp_dir().join(format!("objecter-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("osdmap");
    let ok = std::process::Command::new("osdmaptool")
        .args(["--createsimple", "3", "--with-default-pool"])
        .arg(&path)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "osdmaptool is needed for the objecter benchmark (scripts/test-cluster install)"
    );
    let mut m = OsdMap::decode(&std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    for o in 0..m.max_osd as usize {
        m.osd_state[o] = osd_state::EXISTS | osd_state::UP;
        m.osd_weight[o] = CEPH_OSD_IN;
        let sa = format!("127.0.0.1:{}", 6800 + o).parse().unwrap();
        m.osd_addrs[o] = EntityAddrVec(vec![EntityAddr::msgr2(sa)]);
    }
    // createsimple puts every OSD under one host, so a PG maps to one OSD
    for p in m.pools.values_mut() {
        p.min_size = 1;
    }
    m
}

fn submit_path(c: &mut Criterion) {
    let mut p = SubmitPath::new(map(), 1).unwrap();
    let data = Bytes::from(vec![0x5au8; 4096]);
    let names: Vec<String> = (0..1024)
        .map(|i| format!("rbd_data.10226b8b4567.{i:016x}"))
        .collect();
    let mut g = c.benchmark_group("objecter_submit_path");
    g.throughput(Throughput::Elements(1));
    g.bench_function("write_4k", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % names.len();
            assert_eq!(p.write(&names[i], data.clone()).unwrap(), 1);
        })
    });
    g.finish();
}

criterion_group!(benches, submit_path);
criterion_main!(benches);
