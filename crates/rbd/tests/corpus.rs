//! Decode every cls_rbd / cls_lock / librbd watch-notify object of the Ceph object corpus
//! (all releases), and re-encode the types this crate encodes to identical bytes.
//! Fails if the corpus is missing.

use ceph_encoding::{Decode, Decoder, Encode};
use ceph_rbd::cls::lock::{
    self, AssertOp, BreakOp, GetInfoOp, LockInfo, LockOp, SetCookieOp, UnlockOp,
};
use ceph_rbd::cls::{
    ChildImageSpec, ClsRbdParent, ClsRbdSnap, GroupImageSpec, GroupImageStatus, GroupSnapshot,
    GroupSpec, ImageSnapshotSpec, ParentImageSpec, SnapshotInfo, SnapshotNamespace,
};
use ceph_rbd::watch_notify::{NotifyMessage, ResponseMessage};
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
        "ceph-object-corpus not found at {} (set CEPH_OBJECT_CORPUS)",
        p.display()
    );
    p
}

/// Every object file of `ty` across releases: (release, path, bytes).
fn objects(ty: &str) -> Vec<(String, PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for rel in std::fs::read_dir(corpus().join("archive")).unwrap() {
        let rel = rel.unwrap();
        let dir = rel.path().join("objects").join(ty);
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            let b = std::fs::read(&f).unwrap();
            out.push((rel.file_name().to_string_lossy().into_owned(), f, b));
        }
    }
    out
}

fn decode_all<T: Decode>(b: &[u8]) -> T {
    let mut d = Decoder::new(b);
    let v = T::decode(&mut d).unwrap();
    assert!(d.is_empty(), "{} trailing bytes", d.remaining());
    v
}

fn check<T: Decode + Encode + std::fmt::Debug>(
    ty: &str,
    reencode: impl Fn(&[u8]) -> bool,
) -> usize {
    let objs = objects(ty);
    assert!(!objs.is_empty(), "no {ty} objects in the corpus");
    for (rel, path, b) in &objs {
        let v: T = std::panic::catch_unwind(|| decode_all::<T>(b))
            .unwrap_or_else(|_| panic!("{ty} from {rel} ({}) did not decode", path.display()));
        if reencode(b) {
            assert_eq!(
                &ceph_encoding::encode_to_vec(&v),
                b,
                "{ty} from {rel} ({}) re-encodes differently: {v:?}",
                path.display()
            );
        }
    }
    objs.len()
}

fn decode_only<T: Decode + std::fmt::Debug>(ty: &str) -> usize {
    let objs = objects(ty);
    assert!(!objs.is_empty(), "no {ty} objects in the corpus");
    for (rel, path, b) in &objs {
        let _v: T = decode_all(b);
        let _ = (rel, path);
    }
    objs.len()
}

#[test]
fn cls_rbd_parent() {
    // v1 encodings (pre-Nautilus) decode; v2 ones re-encode identically
    let n = check::<ClsRbdParent>("cls_rbd_parent", |b| b[0] == 2);
    assert!(n >= 10);
}

#[test]
fn cls_rbd_snap() {
    let n = check::<ClsRbdSnap>("cls_rbd_snap", |b| b[0] == 8 && b[1] == 8);
    assert!(n >= 10);
}

#[test]
fn cls_rbd_types() {
    check::<ParentImageSpec>("cls::rbd::ParentImageSpec", |_| true);
    check::<ChildImageSpec>("cls::rbd::ChildImageSpec", |b| b[0] == 2);
    check::<SnapshotNamespace>("cls::rbd::SnapshotNamespace", |_| true);
    check::<SnapshotInfo>("cls::rbd::SnapshotInfo", |_| true);
}

#[test]
fn cls_rbd_group_types() {
    // every release's samples re-encode to the same bytes (the corpus has only v1
    // GroupSnapshots; Reef's v2 tail is covered by a unit test in cls::group)
    check::<GroupSpec>("cls::rbd::GroupSpec", |_| true);
    check::<GroupImageSpec>("cls::rbd::GroupImageSpec", |_| true);
    check::<GroupImageStatus>("cls::rbd::GroupImageStatus", |_| true);
    check::<ImageSnapshotSpec>("cls::rbd::ImageSnapshotSpec", |_| true);
    check::<GroupSnapshot>("cls::rbd::GroupSnapshot", |_| true);
}

#[test]
fn snapshot_namespaces_seen() {
    let mut types = std::collections::BTreeSet::new();
    for (_, _, b) in objects("cls::rbd::SnapshotNamespace") {
        types.insert(decode_all::<SnapshotNamespace>(&b).type_name());
    }
    assert!(
        types.contains("user") && types.contains("group") && types.contains("trash"),
        "{types:?}"
    );
}

#[test]
fn cls_lock_ops() {
    check::<LockOp>("cls_lock_lock_op", |_| true);
    check::<UnlockOp>("cls_lock_unlock_op", |_| true);
    check::<BreakOp>("cls_lock_break_op", |_| true);
    check::<GetInfoOp>("cls_lock_get_info_op", |_| true);
    check::<AssertOp>("cls_lock_assert_op", |_| true);
    check::<SetCookieOp>("cls_lock_set_cookie_op", |_| true);
    decode_only::<LockInfo>("cls_lock_get_info_reply");
    for (_, _, b) in objects("cls_lock_list_locks_reply") {
        let mut d = Decoder::new(&b);
        lock::decode_list_locks(&mut d).unwrap();
        assert!(d.is_empty());
    }
}

#[test]
fn lock_op_as_librbd_sends_it() {
    // a librbd exclusive-lock request is among the samples: rbd_lock / "auto <n>" / internal
    let found = objects("cls_lock_lock_op").into_iter().any(|(_, _, b)| {
        let op: LockOp = decode_all(&b);
        op.name == lock::RBD_LOCK_NAME && op.cookie.starts_with("auto ") && op.tag == "internal"
    });
    assert!(found);
}

#[test]
fn watch_notify_messages() {
    check::<NotifyMessage>("librbd::watch_notify::NotifyMessage", |_| true);
    check::<ResponseMessage>("librbd::watch_notify::ResponseMessage", |_| true);
    // every payload view decodes without falling back
    for (_, _, b) in objects("librbd::watch_notify::NotifyMessage") {
        let m: NotifyMessage = decode_all(&b);
        let _ = m.payload();
    }
}
