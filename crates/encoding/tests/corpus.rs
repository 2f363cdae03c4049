//! Every `entity_addr_t`, `entity_addrvec_t` and `utime_t` object of the Ceph object corpus
//! (releases 15 to 20.3) decodes, uses all its bytes, and re-encodes to the same bytes
//! (new-format addresses; legacy ones are decode-only).

use ceph_encoding::{
    decode_exact, encode_to_vec, Decode, Encode, EntityAddr, EntityAddrVec, UTime,
};
use std::path::PathBuf;

fn corpus() -> PathBuf {
    let p = std::env::var("CEPH_OBJECT_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/ceph-object-corpus"
            ))
        });
    assert!(
        p.join("archive").is_dir(),
        "object corpus missing at {} (set CEPH_OBJECT_CORPUS)",
        p.display()
    );
    p
}

fn objects(ty: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for v in std::fs::read_dir(corpus().join("archive")).unwrap() {
        let dir = v.unwrap().path().join("objects").join(ty);
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for f in rd {
                let p = f.unwrap().path();
                let b = std::fs::read(&p).unwrap();
                out.push((p, b));
            }
        }
    }
    assert!(!out.is_empty(), "no {ty} objects in the corpus");
    out
}

fn check<T: Decode + Encode + std::fmt::Debug>(
    ty: &str,
    reencode: impl Fn(&[u8]) -> bool,
) -> usize {
    let objs = objects(ty);
    for (p, b) in &objs {
        let v: T = decode_exact(b).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if reencode(b) {
            assert_eq!(
                &encode_to_vec(&v),
                b,
                "{} re-encodes differently: {v:?}",
                p.display()
            );
        }
    }
    objs.len()
}

#[test]
fn entity_addr_t() {
    // Legacy (marker 0) encodings can only be decoded; new-format ones round-trip.
    let n = check::<EntityAddr>("entity_addr_t", |b| b[0] == 1);
    assert!(n >= 6);
}

#[test]
fn entity_addrvec_t() {
    let n = check::<EntityAddrVec>("entity_addrvec_t", |b| b[0] == 2);
    assert!(n >= 6);
}

#[test]
fn utime_t() {
    let n = check::<UTime>("utime_t", |_| true);
    assert!(n >= 6);
}
