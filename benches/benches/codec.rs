//! Codec micro-benchmarks: msgr2 frames in crc and secure mode, CRUSH placement.

use bytes::Bytes;
use ceph_msgr2::frame::{FrameReader, FrameWriter, Mode, SecureKeys};
use ceph_msgr2::{DataSegment, MsgHeader};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("msgr2_message_roundtrip");
    let secret: Vec<u8> = (0..64u8).collect();
    for size in [4096usize, 4 << 20] {
        let data = DataSegment::from(vec![0xa5u8; size]);
        let front = Bytes::from(vec![1u8; 200]);
        let header = MsgHeader::default().encode();
        g.throughput(Throughput::Bytes(size as u64));
        for secure in [false, true] {
            let name = if secure { "secure" } else { "crc" };
            g.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                let mut w = FrameWriter::default();
                let mut r = FrameReader::default();
                if secure {
                    w.set_mode(Mode::Secure(Box::new(
                        SecureKeys::from_connection_secret(&secret).unwrap(),
                    )));
                    r.set_mode(Mode::Secure(Box::new(
                        SecureKeys::server_side(&secret).unwrap(),
                    )));
                }
                b.iter(|| {
                    let mut out = Vec::new();
                    w.message(&header, &front, &Bytes::new(), &data, &mut out);
                    for chunk in &out {
                        r.feed(chunk);
                    }
                    let (f, _) = r.next().unwrap().unwrap();
                    assert_eq!(f.segments[3].len(), size);
                });
            });
        }
    }
    g.finish();
}

fn crush(c: &mut Criterion) {
    // A map built by crushtool: 6 OSDs, 3 hosts, straw2 (see the protocol map §6.9).
    let dir = std::env::temp_dir().join(format!("crush-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("map");
    let ok = std::process::Command::new("crushtool")
        .args([
            "--outfn",
            path.to_str().unwrap(),
            "--build",
            "--num_osds",
            "6",
            "host",
            "straw2",
            "2",
            "root",
            "straw2",
            "0",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "crushtool is needed for the CRUSH benchmark (scripts/test-cluster install)"
    );
    let map = ceph_rados::crush::CrushMap::decode(&std::fs::read(&path).unwrap()).unwrap();
    let weights = vec![0x10000u32; 6];
    c.bench_function("crush_do_rule_3rep_straw2", |b| {
        let mut x = 0u32;
        b.iter(|| {
            x = x.wrapping_add(1);
            map.do_rule(0, x, 3, &weights, None)
        })
    });
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, frames, crush);
criterion_main!(benches);
