//! Typed cls_rbd / cls_lock calls: argument encodings and result decodings, exactly as
//! librbd sends them (ceph: src/cls/rbd/cls_rbd_client.cc; server side cls_rbd.cc).
//!
//! Each method is a function returning a [`ClsCall`] (class, method, encoded input,
//! read or write); the call can be run on its own ([`ClsCall::exec`]) or put into a
//! compound op vector ([`ClsCall::op`]). Outputs are decoded by the `decode_*` functions.
//! No I/O happens here except in [`ClsCall::exec`].

mod group;
pub mod lock;
mod meta;
pub mod types;

use crate::error::Result;
use bytes::Bytes;
use ceph_encoding::{Decode, DecodeError, Decoder, EncodeExt, UTime};
use ceph_rados::{IoCtx, OsdOp, SnapContext};
pub use group::*;
pub use meta::*;
use std::collections::{BTreeMap, BTreeSet};
pub use types::*;

type DResult<T> = std::result::Result<T, DecodeError>;

/// One object-class method call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClsCall {
    /// Class (`rbd`, `lock`).
    pub class: &'static str,
    /// Method.
    pub method: &'static str,
    /// Encoded input.
    pub input: Vec<u8>,
    /// Whether the method writes (must be sent as a write op).
    pub write: bool,
}

impl ClsCall {
    /// A call.
    pub fn new(class: &'static str, method: &'static str, input: Vec<u8>, write: bool) -> Self {
        ClsCall {
            class,
            method,
            input,
            write,
        }
    }

    fn rbd(method: &'static str, input: Vec<u8>, write: bool) -> Self {
        Self::new("rbd", method, input, write)
    }

    /// The CALL op, for a compound op vector.
    pub fn op(&self) -> OsdOp {
        OsdOp::call(self.class, self.method, &self.input)
    }

    /// Run the call alone on `oid`.
    pub async fn exec(&self, io: &IoCtx, oid: &str) -> Result<Bytes> {
        Ok(io
            .exec(oid, self.class, self.method, &self.input, self.write)
            .await?)
    }
}

fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v);
    v
}

fn snap_arg(method: &'static str, snap_id: u64, write: bool) -> ClsCall {
    ClsCall::rbd(method, enc(|b| b.put_u64(snap_id)), write)
}

fn nothing(method: &'static str, write: bool) -> ClsCall {
    ClsCall::rbd(method, Vec::new(), write)
}

fn exact<T>(
    b: &[u8],
    what: &'static str,
    f: impl FnOnce(&mut Decoder<'_>) -> DResult<T>,
) -> DResult<T> {
    let mut d = Decoder::new(b);
    let v = f(&mut d)?;
    let _ = what;
    Ok(v)
}

// ---------------------------------------------------------------- header object

/// `create(size, order, features, object_prefix, data_pool_id)`.
pub fn create(
    size: u64,
    order: u8,
    features: u64,
    object_prefix: &str,
    data_pool_id: i64,
) -> ClsCall {
    ClsCall::rbd(
        "create",
        enc(|b| {
            b.put_u64(size);
            b.put_u8(order);
            b.put_u64(features);
            b.put_str(object_prefix);
            b.put_i64(data_pool_id);
        }),
        true,
    )
}

/// `get_size(snap_id)` → (order, size).
pub fn get_size(snap_id: u64) -> ClsCall {
    snap_arg("get_size", snap_id, false)
}
/// Decode `get_size`: (order, size).
pub fn decode_get_size(b: &[u8]) -> DResult<(u8, u64)> {
    exact(b, "get_size", |d| Ok((d.u8()?, d.u64()?)))
}

/// `set_size(size)`.
pub fn set_size(size: u64) -> ClsCall {
    ClsCall::rbd("set_size", enc(|b| b.put_u64(size)), true)
}

/// `get_features(NOSNAP, read_only)` → (features, incompatible).
pub fn get_features(read_only: bool) -> ClsCall {
    ClsCall::rbd(
        "get_features",
        enc(|b| {
            b.put_u64(ceph_rados::NOSNAP);
            b.put_bool(read_only);
        }),
        false,
    )
}
/// Decode `get_features`: (features, incompatible features).
pub fn decode_get_features(b: &[u8]) -> DResult<(u64, u64)> {
    exact(b, "get_features", |d| Ok((d.u64()?, d.u64()?)))
}

/// `get_object_prefix` → str.
pub fn get_object_prefix() -> ClsCall {
    nothing("get_object_prefix", false)
}

/// `get_data_pool` → s64 (-1 if none).
pub fn get_data_pool() -> ClsCall {
    nothing("get_data_pool", false)
}

/// `get_snapcontext` → SnapContext.
pub fn get_snapcontext() -> ClsCall {
    nothing("get_snapcontext", false)
}
/// Decode `get_snapcontext`.
pub fn decode_snapcontext_reply(b: &[u8]) -> DResult<SnapContext> {
    exact(b, "get_snapcontext", types::decode_snapcontext)
}

/// `get_flags(snap_id)` → u64.
pub fn get_flags(snap_id: u64) -> ClsCall {
    snap_arg("get_flags", snap_id, false)
}

/// `op_features_get` → u64.
pub fn op_features_get() -> ClsCall {
    nothing("op_features_get", false)
}

/// `op_features_set(op_features, mask)`.
pub fn op_features_set(op_features: u64, mask: u64) -> ClsCall {
    ClsCall::rbd(
        "op_features_set",
        enc(|b| {
            b.put_u64(op_features);
            b.put_u64(mask);
        }),
        true,
    )
}

/// `get_stripe_unit_count` → (unit, count).
pub fn get_stripe_unit_count() -> ClsCall {
    nothing("get_stripe_unit_count", false)
}
/// Decode two u64s (stripe unit/count).
pub fn decode_u64_pair(b: &[u8]) -> DResult<(u64, u64)> {
    exact(b, "u64 pair", |d| Ok((d.u64()?, d.u64()?)))
}

/// `set_stripe_unit_count(unit, count)`.
pub fn set_stripe_unit_count(unit: u64, count: u64) -> ClsCall {
    ClsCall::rbd(
        "set_stripe_unit_count",
        enc(|b| {
            b.put_u64(unit);
            b.put_u64(count);
        }),
        true,
    )
}

/// `get_create_timestamp` → utime.
pub fn get_create_timestamp() -> ClsCall {
    nothing("get_create_timestamp", false)
}
/// `get_access_timestamp` → utime.
pub fn get_access_timestamp() -> ClsCall {
    nothing("get_access_timestamp", false)
}
/// `get_modify_timestamp` → utime.
pub fn get_modify_timestamp() -> ClsCall {
    nothing("get_modify_timestamp", false)
}
/// `set_modify_timestamp`.
pub fn set_modify_timestamp() -> ClsCall {
    nothing("set_modify_timestamp", true)
}
/// `set_access_timestamp`.
pub fn set_access_timestamp() -> ClsCall {
    nothing("set_access_timestamp", true)
}

/// `snapshot_get(snap_id)` → SnapshotInfo.
pub fn snapshot_get(snap_id: u64) -> ClsCall {
    snap_arg("snapshot_get", snap_id, false)
}

/// `snapshot_add(name, snap_id, namespace)`.
pub fn snapshot_add(snap_id: u64, name: &str, ns: &SnapshotNamespace) -> ClsCall {
    ClsCall::rbd(
        "snapshot_add",
        enc(|b| {
            b.put_str(name);
            b.put_u64(snap_id);
            b.put(ns);
        }),
        true,
    )
}

/// Format-1 `snap_add(name, snap_id)` (cls_client `old_snapshot_add`): records a
/// snapshot in a `<name>.rbd` header (newest first), refusing a taken name.
pub fn old_snapshot_add(snap_id: u64, name: &str) -> ClsCall {
    ClsCall::rbd(
        "snap_add",
        enc(|b| {
            b.put_str(name);
            b.put_u64(snap_id);
        }),
        true,
    )
}

/// Format-1 `snap_rename(snap_id, new_name)` (cls_client `old_snapshot_rename`):
/// rewrites the `<name>.rbd` header with the snapshot's new name, EEXIST if taken.
pub fn old_snapshot_rename(snap_id: u64, name: &str) -> ClsCall {
    ClsCall::rbd(
        "snap_rename",
        enc(|b| {
            b.put_u64(snap_id);
            b.put_str(name);
        }),
        true,
    )
}

/// Format-1 `snap_remove(name)` (cls_client `old_snapshot_remove`).
pub fn old_snapshot_remove(name: &str) -> ClsCall {
    ClsCall::rbd("snap_remove", enc(|b| b.put_str(name)), true)
}

/// `snapshot_remove(snap_id)`.
pub fn snapshot_remove(snap_id: u64) -> ClsCall {
    snap_arg("snapshot_remove", snap_id, true)
}

/// `snapshot_rename(snap_id, new_name)`.
pub fn snapshot_rename(snap_id: u64, new_name: &str) -> ClsCall {
    ClsCall::rbd(
        "snapshot_rename",
        enc(|b| {
            b.put_u64(snap_id);
            b.put_str(new_name);
        }),
        true,
    )
}

/// `snapshot_trash_add(snap_id)`.
pub fn snapshot_trash_add(snap_id: u64) -> ClsCall {
    snap_arg("snapshot_trash_add", snap_id, true)
}

/// `get_protection_status(snap_id)` → u8.
pub fn get_protection_status(snap_id: u64) -> ClsCall {
    snap_arg("get_protection_status", snap_id, false)
}

/// `set_protection_status(snap_id, status)`.
pub fn set_protection_status(snap_id: u64, status: u8) -> ClsCall {
    ClsCall::rbd(
        "set_protection_status",
        enc(|b| {
            b.put_u64(snap_id);
            b.put_u8(status);
        }),
        true,
    )
}

/// `snapshot_get_limit` → u64.
pub fn snapshot_get_limit() -> ClsCall {
    nothing("snapshot_get_limit", false)
}

/// `snapshot_set_limit(limit)` (`u64::MAX` = no limit).
pub fn snapshot_set_limit(limit: u64) -> ClsCall {
    ClsCall::rbd("snapshot_set_limit", enc(|b| b.put_u64(limit)), true)
}

/// `parent_get` → ParentImageSpec (pool -1 if none).
pub fn parent_get() -> ClsCall {
    nothing("parent_get", false)
}

/// `parent_overlap_get(snap_id)` → optional u64.
pub fn parent_overlap_get(snap_id: u64) -> ClsCall {
    snap_arg("parent_overlap_get", snap_id, false)
}
/// Decode an `optional<u64>`.
pub fn decode_opt_u64(b: &[u8]) -> DResult<Option<u64>> {
    exact(b, "optional<u64>", |d| d.optional(|d| d.u64()))
}

/// `parent_attach(spec, overlap, reattach)`.
pub fn parent_attach(spec: &ParentImageSpec, overlap: u64, reattach: bool) -> ClsCall {
    ClsCall::rbd(
        "parent_attach",
        enc(|b| {
            b.put(spec);
            b.put_u64(overlap);
            b.put_bool(reattach);
        }),
        true,
    )
}

/// `parent_detach`.
pub fn parent_detach() -> ClsCall {
    nothing("parent_detach", true)
}

/// Legacy `get_parent(snap_id)` → (pool, image id, snap id, overlap).
pub fn get_parent(snap_id: u64) -> ClsCall {
    snap_arg("get_parent", snap_id, false)
}
/// Decode legacy `get_parent`.
pub fn decode_get_parent(b: &[u8]) -> DResult<(ParentImageSpec, u64)> {
    exact(b, "get_parent", |d| {
        let pool_id = d.i64()?;
        let image_id = d.string()?;
        let snap_id = d.u64()?;
        let overlap = d.u64()?;
        Ok((
            ParentImageSpec {
                pool_id,
                pool_namespace: String::new(),
                image_id,
                snap_id,
            },
            overlap,
        ))
    })
}

/// Legacy `set_parent(pool, image id, snap id, overlap)` (no namespace).
pub fn set_parent(spec: &ParentImageSpec, overlap: u64) -> ClsCall {
    ClsCall::rbd(
        "set_parent",
        enc(|b| {
            b.put_i64(spec.pool_id);
            b.put_str(&spec.image_id);
            b.put_u64(spec.snap_id);
            b.put_u64(overlap);
        }),
        true,
    )
}

/// Legacy `remove_parent`.
pub fn remove_parent() -> ClsCall {
    nothing("remove_parent", true)
}

/// `child_attach(snap_id, child)` on the parent header (clone v2).
pub fn child_attach(snap_id: u64, child: &ChildImageSpec) -> ClsCall {
    ClsCall::rbd(
        "child_attach",
        enc(|b| {
            b.put_u64(snap_id);
            b.put(child);
        }),
        true,
    )
}

/// `child_detach(snap_id, child)` on the parent header (clone v2).
pub fn child_detach(snap_id: u64, child: &ChildImageSpec) -> ClsCall {
    ClsCall::rbd(
        "child_detach",
        enc(|b| {
            b.put_u64(snap_id);
            b.put(child);
        }),
        true,
    )
}

/// `children_list(snap_id)` → `set<ChildImageSpec>`.
pub fn children_list(snap_id: u64) -> ClsCall {
    snap_arg("children_list", snap_id, false)
}
/// Decode `children_list`.
pub fn decode_children_list(b: &[u8]) -> DResult<Vec<ChildImageSpec>> {
    exact(b, "children_list", |d| {
        d.vec::<ChildImageSpec>(6, "children")
    })
}

/// `metadata_list(start_after, max)` → map<str, bl>.
pub fn metadata_list(start_after: &str, max: u64) -> ClsCall {
    ClsCall::rbd(
        "metadata_list",
        enc(|b| {
            b.put_str(start_after);
            b.put_u64(max);
        }),
        false,
    )
}
/// Decode `metadata_list`.
pub fn decode_metadata_list(b: &[u8]) -> DResult<BTreeMap<String, Vec<u8>>> {
    exact(b, "metadata_list", |d| {
        d.map::<String, Vec<u8>>(8, "metadata")
    })
}

/// `metadata_set(map)`.
pub fn metadata_set(kv: &BTreeMap<String, Vec<u8>>) -> ClsCall {
    ClsCall::rbd("metadata_set", enc(|b| b.put(kv)), true)
}

/// `image_group_get` → GroupSpec.
pub fn image_group_get() -> ClsCall {
    nothing("image_group_get", false)
}

/// `copyup(data)`: on a data object; the whole input is the data.
pub fn copyup(data: &[u8]) -> ClsCall {
    ClsCall::rbd("copyup", data.to_vec(), true)
}

/// The `copyup` op without copying the data into a new buffer first.
pub fn copyup_op(data: &Bytes) -> OsdOp {
    // OsdOp::call copies class+method+input into one payload; one copy of the object is
    // unavoidable there, so do it exactly once.
    OsdOp::call("rbd", "copyup", data)
}

// ---------------------------------------------------------------- id object

/// `get_id` on `rbd_id.<name>` → str.
pub fn get_id() -> ClsCall {
    nothing("get_id", false)
}

/// `set_id(id)` on `rbd_id.<name>`.
pub fn set_id(id: &str) -> ClsCall {
    ClsCall::rbd("set_id", enc(|b| b.put_str(id)), true)
}

// ---------------------------------------------------------------- directory

/// `dir_add_image(name, id)`.
pub fn dir_add_image(name: &str, id: &str) -> ClsCall {
    ClsCall::rbd(
        "dir_add_image",
        enc(|b| {
            b.put_str(name);
            b.put_str(id);
        }),
        true,
    )
}

/// `dir_remove_image(name, id)`.
pub fn dir_remove_image(name: &str, id: &str) -> ClsCall {
    ClsCall::rbd(
        "dir_remove_image",
        enc(|b| {
            b.put_str(name);
            b.put_str(id);
        }),
        true,
    )
}

/// `dir_get_id(name)` → str.
pub fn dir_get_id(name: &str) -> ClsCall {
    ClsCall::rbd("dir_get_id", enc(|b| b.put_str(name)), false)
}

/// `dir_get_name(id)` → str.
pub fn dir_get_name(id: &str) -> ClsCall {
    ClsCall::rbd("dir_get_name", enc(|b| b.put_str(id)), false)
}

/// `dir_list(start_after, max)` → map<name, id>.
pub fn dir_list(start_after: &str, max: u64) -> ClsCall {
    ClsCall::rbd(
        "dir_list",
        enc(|b| {
            b.put_str(start_after);
            b.put_u64(max);
        }),
        false,
    )
}
/// Decode `dir_list`.
pub fn decode_dir_list(b: &[u8]) -> DResult<BTreeMap<String, String>> {
    exact(b, "dir_list", |d| d.map::<String, String>(8, "images"))
}

/// `dir_rename_image(src, dest, id)`.
pub fn dir_rename_image(src: &str, dest: &str, id: &str) -> ClsCall {
    ClsCall::rbd(
        "dir_rename_image",
        enc(|b| {
            b.put_str(src);
            b.put_str(dest);
            b.put_str(id);
        }),
        true,
    )
}

/// `dir_state_assert(state)` (READY 0).
pub fn dir_state_assert(state: u8) -> ClsCall {
    ClsCall::rbd("dir_state_assert", enc(|b| b.put_u8(state)), false)
}

/// `get_all_features` → u64 (on `rbd_directory`).
pub fn get_all_features() -> ClsCall {
    nothing("get_all_features", false)
}

// ---------------------------------------------------------------- rbd_children (clone v1)

fn children_key(parent: &ParentImageSpec, f: &mut Vec<u8>) {
    f.put_i64(parent.pool_id);
    f.put_str(&parent.image_id);
    f.put_u64(parent.snap_id);
}

/// `add_child(pool, parent id, snap, child id)` on `rbd_children` (child's pool).
pub fn add_child(parent: &ParentImageSpec, child_id: &str) -> ClsCall {
    ClsCall::rbd(
        "add_child",
        enc(|b| {
            children_key(parent, b);
            b.put_str(child_id);
        }),
        true,
    )
}

/// `remove_child(pool, parent id, snap, child id)` on `rbd_children`.
pub fn remove_child(parent: &ParentImageSpec, child_id: &str) -> ClsCall {
    ClsCall::rbd(
        "remove_child",
        enc(|b| {
            children_key(parent, b);
            b.put_str(child_id);
        }),
        true,
    )
}

/// `get_children(pool, parent id, snap)` → `set<child id>`.
pub fn get_children(parent: &ParentImageSpec) -> ClsCall {
    ClsCall::rbd("get_children", enc(|b| children_key(parent, b)), false)
}
/// Decode `get_children`.
pub fn decode_string_set(b: &[u8]) -> DResult<BTreeSet<String>> {
    exact(b, "set<string>", |d| d.set::<String>(4, "children"))
}

// ---------------------------------------------------------------- trash

/// `trash_add(id, spec)` on `rbd_trash`.
pub fn trash_add(id: &str, spec: &TrashImageSpec) -> ClsCall {
    ClsCall::rbd(
        "trash_add",
        enc(|b| {
            b.put_str(id);
            b.put(spec);
        }),
        true,
    )
}

/// `trash_remove(id)`.
pub fn trash_remove(id: &str) -> ClsCall {
    ClsCall::rbd("trash_remove", enc(|b| b.put_str(id)), true)
}

/// `trash_get(id)` → TrashImageSpec.
pub fn trash_get(id: &str) -> ClsCall {
    ClsCall::rbd("trash_get", enc(|b| b.put_str(id)), false)
}

/// `trash_list(start_after, max)` → map<id, TrashImageSpec>.
pub fn trash_list(start_after: &str, max: u64) -> ClsCall {
    ClsCall::rbd(
        "trash_list",
        enc(|b| {
            b.put_str(start_after);
            b.put_u64(max);
        }),
        false,
    )
}
/// Decode `trash_list`.
pub fn decode_trash_list(b: &[u8]) -> DResult<BTreeMap<String, TrashImageSpec>> {
    exact(b, "trash_list", |d| {
        d.map::<String, TrashImageSpec>(10, "trash")
    })
}

/// `trash_state_set(id, state, expect_state)`.
pub fn trash_state_set(id: &str, state: u8, expect: u8) -> ClsCall {
    ClsCall::rbd(
        "trash_state_set",
        enc(|b| {
            b.put_str(id);
            b.put_u8(state);
            b.put_u8(expect);
        }),
        true,
    )
}

// ---------------------------------------------------------------- simple decoders

/// Decode a single Ceph string.
pub fn decode_string(b: &[u8]) -> DResult<String> {
    exact(b, "string", |d| d.string())
}
/// Decode a single u64.
pub fn decode_u64(b: &[u8]) -> DResult<u64> {
    exact(b, "u64", |d| d.u64())
}
/// Decode a single s64.
pub fn decode_i64(b: &[u8]) -> DResult<i64> {
    exact(b, "s64", |d| d.i64())
}
/// Decode a single u8.
pub fn decode_u8(b: &[u8]) -> DResult<u8> {
    exact(b, "u8", |d| d.u8())
}
/// Decode a utime.
pub fn decode_utime(b: &[u8]) -> DResult<UTime> {
    exact(b, "utime", UTime::decode)
}
/// Decode any [`Decode`] type from a reply.
pub fn decode<T: Decode>(b: &[u8]) -> DResult<T> {
    exact(b, std::any::type_name::<T>(), T::decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_layouts() {
        let c = create(1 << 30, 22, 1, "rbd_data.abc", -1);
        assert_eq!(c.input.len(), 8 + 1 + 8 + 4 + 12 + 8);
        assert_eq!(&c.input[8..9], &[22]);
        assert!(c.write);
        let g = get_features(true);
        assert_eq!(
            g.input,
            [&ceph_rados::NOSNAP.to_le_bytes()[..], &[1]].concat()
        );
        let s = snapshot_add(5, "s1", &SnapshotNamespace::User);
        // name, id, then the namespace envelope with type 0
        assert_eq!(&s.input[..6], &[2, 0, 0, 0, b's', b'1']);
        assert_eq!(&s.input[6..14], &5u64.to_le_bytes());
        assert_eq!(&s.input[14..], &[1, 1, 4, 0, 0, 0, 0, 0, 0, 0]);
        let op = copyup_op(&Bytes::from_static(b"data"));
        assert_eq!(op.indata.to_bytes(), &b"rbdcopyupdata"[..]);
    }

    #[test]
    fn children_key_matches_rbd_children_omap_key() {
        // key seen in `rados listomapvals rbd_children`: pool 3, "103b63b7d62", snap 4
        let p = ParentImageSpec {
            pool_id: 3,
            pool_namespace: String::new(),
            image_id: "103b63b7d62".into(),
            snap_id: 4,
        };
        let c = get_children(&p);
        let want = [
            3, 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, b'1', b'0', b'3', b'b', b'6', b'3', b'b', b'7',
            b'd', b'6', b'2', 4, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(c.input, want);
    }
}
