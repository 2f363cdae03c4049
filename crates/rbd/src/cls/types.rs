//! Data structures of cls_rbd (ceph: src/cls/rbd/cls_rbd.h, cls_rbd_types.{h,cc}).

use ceph_encoding::{Decode, DecodeError, Decoder, Encode, EncodeExt, UTime};
use ceph_rados::NOSNAP;

type DResult<T> = std::result::Result<T, DecodeError>;

/// Protection states of a snapshot (`RBD_PROTECTION_STATUS_*`).
pub mod protection {
    #![allow(missing_docs)]
    pub const UNPROTECTED: u8 = 0;
    pub const UNPROTECTING: u8 = 1;
    pub const PROTECTED: u8 = 2;
}

/// `cls::rbd::ParentImageSpec` VERS(1,1): where a clone's parent lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParentImageSpec {
    /// Parent pool id (-1 = no parent).
    pub pool_id: i64,
    /// Parent RADOS namespace.
    pub pool_namespace: String,
    /// Parent image id.
    pub image_id: String,
    /// Parent snapshot id.
    pub snap_id: u64,
}

impl Default for ParentImageSpec {
    fn default() -> Self {
        ParentImageSpec {
            pool_id: -1,
            pool_namespace: String::new(),
            image_id: String::new(),
            snap_id: NOSNAP,
        }
    }
}

impl ParentImageSpec {
    /// True if this names a parent (`cls_rbd_parent::exists`).
    pub fn exists(&self) -> bool {
        self.pool_id >= 0 && !self.image_id.is_empty() && self.snap_id != NOSNAP
    }
}

impl Encode for ParentImageSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(1, 1);
        out.put_i64(self.pool_id);
        out.put_str(&self.pool_namespace);
        out.put_str(&self.image_id);
        out.put_u64(self.snap_id);
        g.finish(out);
    }
}

impl Decode for ParentImageSpec {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "ParentImageSpec")?;
        Ok(ParentImageSpec {
            pool_id: s.i64()?,
            pool_namespace: s.string()?,
            image_id: s.string()?,
            snap_id: s.u64()?,
        })
    }
}

/// `cls::rbd::ChildImageSpec` VERS(2,1): a clone registered on its parent snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ChildImageSpec {
    /// Child pool id.
    pub pool_id: i64,
    /// Child RADOS namespace.
    pub pool_namespace: String,
    /// Child image id.
    pub image_id: String,
}

impl Encode for ChildImageSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(2, 1);
        out.put_i64(self.pool_id);
        out.put_str(&self.image_id);
        out.put_str(&self.pool_namespace);
        g.finish(out);
    }
}

impl Decode for ChildImageSpec {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (v, mut s) = d.versioned(2, "ChildImageSpec")?;
        let pool_id = s.i64()?;
        let image_id = s.string()?;
        let pool_namespace = if v >= 2 { s.string()? } else { String::new() };
        Ok(ChildImageSpec {
            pool_id,
            pool_namespace,
            image_id,
        })
    }
}

/// Snapshot namespace types (`cls::rbd::SnapshotNamespaceType`).
pub mod snap_ns {
    #![allow(missing_docs)]
    pub const USER: u32 = 0;
    pub const GROUP: u32 = 1;
    pub const TRASH: u32 = 2;
    pub const MIRROR: u32 = 3;
}

/// `cls::rbd::SnapshotNamespace` VERS(1,1): u32 type + type-specific body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SnapshotNamespace {
    /// A user snapshot (`rbd snap create`).
    #[default]
    User,
    /// Part of a group snapshot.
    Group {
        /// Group pool.
        group_pool: i64,
        /// Group id.
        group_id: String,
        /// Group snapshot id.
        group_snapshot_id: String,
    },
    /// Removed while clone-v2 children still depended on it.
    Trash {
        /// The name it had.
        original_name: String,
        /// The namespace type it had.
        original_type: u32,
    },
    /// Mirroring and any future type: kept as raw bytes (the body after the type).
    Other {
        /// Namespace type.
        ty: u32,
        /// Encoded body.
        raw: Vec<u8>,
    },
}

impl SnapshotNamespace {
    /// The type number.
    pub fn type_id(&self) -> u32 {
        match self {
            SnapshotNamespace::User => snap_ns::USER,
            SnapshotNamespace::Group { .. } => snap_ns::GROUP,
            SnapshotNamespace::Trash { .. } => snap_ns::TRASH,
            SnapshotNamespace::Other { ty, .. } => *ty,
        }
    }

    /// The name `rbd snap ls --all` prints for the type.
    pub fn type_name(&self) -> &'static str {
        type_name(self.type_id())
    }
}

/// Name of a snapshot namespace type.
pub fn type_name(ty: u32) -> &'static str {
    match ty {
        snap_ns::USER => "user",
        snap_ns::GROUP => "group",
        snap_ns::TRASH => "trash",
        snap_ns::MIRROR => "mirror",
        _ => "unknown",
    }
}

impl Encode for SnapshotNamespace {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(1, 1);
        out.put_u32(self.type_id());
        match self {
            SnapshotNamespace::User => {}
            SnapshotNamespace::Group {
                group_pool,
                group_id,
                group_snapshot_id,
            } => {
                out.put_i64(*group_pool);
                out.put_str(group_id);
                out.put_str(group_snapshot_id);
            }
            SnapshotNamespace::Trash {
                original_name,
                original_type,
            } => {
                out.put_str(original_name);
                out.put_u32(*original_type);
            }
            SnapshotNamespace::Other { raw, .. } => out.put_raw(raw),
        }
        g.finish(out);
    }
}

impl Decode for SnapshotNamespace {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "SnapshotNamespace")?;
        let ty = s.u32()?;
        Ok(match ty {
            snap_ns::USER => SnapshotNamespace::User,
            snap_ns::GROUP => SnapshotNamespace::Group {
                group_pool: s.i64()?,
                group_id: s.string()?,
                group_snapshot_id: s.string()?,
            },
            snap_ns::TRASH => SnapshotNamespace::Trash {
                original_name: s.string()?,
                original_type: s.u32()?,
            },
            _ => SnapshotNamespace::Other {
                ty,
                raw: s.rest().to_vec(),
            },
        })
    }
}

/// `cls::rbd::SnapshotInfo` VERS(1,1): what `snapshot_get` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Snapshot id.
    pub id: u64,
    /// Namespace.
    pub namespace: SnapshotNamespace,
    /// Name.
    pub name: String,
    /// Image size at the snapshot.
    pub image_size: u64,
    /// Creation time.
    pub timestamp: UTime,
    /// Number of clone-v2 children attached to it.
    pub child_count: u32,
}

impl Encode for SnapshotInfo {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(1, 1);
        out.put_u64(self.id);
        out.put(&self.namespace);
        out.put_str(&self.name);
        out.put_u64(self.image_size);
        out.put(&self.timestamp);
        out.put_u32(self.child_count);
        g.finish(out);
    }
}

impl Decode for SnapshotInfo {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "SnapshotInfo")?;
        Ok(SnapshotInfo {
            id: s.u64()?,
            namespace: SnapshotNamespace::decode(&mut s)?,
            name: s.string()?,
            image_size: s.u64()?,
            timestamp: UTime::decode(&mut s)?,
            child_count: s.u32()?,
        })
    }
}

/// `cls_rbd_parent`: the `parent` header key. Nautilus+ OSDs write VERS(2,2); v1 (no
/// namespace, plain overlap) is still decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClsRbdParent {
    /// The parent.
    pub spec: ParentImageSpec,
    /// Overlap of the head with the parent (`None`: the head is detached but snapshots
    /// still reference the parent).
    pub head_overlap: Option<u64>,
}

impl Encode for ClsRbdParent {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(2, 2);
        out.put_i64(self.spec.pool_id);
        out.put_str(&self.spec.pool_namespace);
        out.put_str(&self.spec.image_id);
        out.put_u64(self.spec.snap_id);
        out.put(&self.head_overlap);
        g.finish(out);
    }
}

impl Decode for ClsRbdParent {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (v, mut s) = d.versioned(2, "cls_rbd_parent")?;
        let pool_id = s.i64()?;
        let pool_namespace = if v >= 2 { s.string()? } else { String::new() };
        let image_id = s.string()?;
        let snap_id = s.u64()?;
        let head_overlap = if v == 1 {
            Some(s.u64()?)
        } else {
            s.optional(|d| d.u64())?
        };
        Ok(ClsRbdParent {
            spec: ParentImageSpec {
                pool_id,
                pool_namespace,
                image_id,
                snap_id,
            },
            head_overlap,
        })
    }
}

/// `cls_rbd_snap`: a `snapshot_<id>` header key. Nautilus+ OSDs write VERS(8,8); older
/// encodings (with the unused features word and a per-snapshot parent) still decode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClsRbdSnap {
    /// Snapshot id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Image size at the snapshot.
    pub image_size: u64,
    /// Protection status (see [`protection`]).
    pub protection_status: u8,
    /// Legacy per-snapshot parent (compat < 8 only).
    pub parent: ClsRbdParent,
    /// Flags.
    pub flags: u64,
    /// Creation time.
    pub timestamp: UTime,
    /// Namespace.
    pub namespace: SnapshotNamespace,
    /// Clone-v2 children.
    pub child_count: u32,
    /// Parent overlap at the snapshot.
    pub parent_overlap: Option<u64>,
}

impl Encode for ClsRbdSnap {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(8, 8);
        out.put_u64(self.id);
        out.put_str(&self.name);
        out.put_u64(self.image_size);
        out.put_u8(self.protection_status);
        out.put_u64(self.flags);
        out.put(&self.namespace);
        out.put(&self.timestamp);
        out.put_u32(self.child_count);
        out.put(&self.parent_overlap);
        g.finish(out);
    }
}

impl Decode for ClsRbdSnap {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        // The compat byte decides the layout; read it before opening the envelope.
        let compat = *d.rest().get(1).ok_or(DecodeError::Truncated {
            what: "cls_rbd_snap",
            needed: 2,
            available: 0,
        })?;
        let (v, mut s) = d.versioned(8, "cls_rbd_snap")?;
        let mut snap = ClsRbdSnap {
            id: s.u64()?,
            name: s.string()?,
            image_size: s.u64()?,
            ..Default::default()
        };
        if compat < 8 {
            let _features = s.u64()?;
        }
        if v >= 2 && compat < 8 {
            snap.parent = ClsRbdParent::decode(&mut s)?;
        }
        if v >= 3 {
            snap.protection_status = s.u8()?;
        }
        if v >= 4 {
            snap.flags = s.u64()?;
        }
        if v >= 5 {
            snap.namespace = SnapshotNamespace::decode(&mut s)?;
        }
        if v >= 6 {
            snap.timestamp = UTime::decode(&mut s)?;
        }
        if v >= 7 {
            snap.child_count = s.u32()?;
        }
        if v >= 8 {
            snap.parent_overlap = s.optional(|d| d.u64())?;
        }
        Ok(snap)
    }
}

/// Trash entry sources (`cls::rbd::TrashImageSource`).
pub mod trash_source {
    #![allow(missing_docs)]
    pub const USER: u8 = 0;
    pub const MIRRORING: u8 = 1;
    pub const MIGRATION: u8 = 2;
    pub const REMOVING: u8 = 3;
    pub const USER_PARENT: u8 = 4;
}

/// Trash entry states (`cls::rbd::TrashImageState`).
pub mod trash_state {
    #![allow(missing_docs)]
    pub const NORMAL: u8 = 0;
    pub const MOVING: u8 = 1;
    pub const REMOVING: u8 = 2;
    pub const RESTORING: u8 = 3;
}

/// `cls::rbd::TrashImageSpec` VERS(2,1): an `rbd_trash` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrashImageSpec {
    /// Why it is in the trash (see [`trash_source`]).
    pub source: u8,
    /// The image name.
    pub name: String,
    /// When it was moved.
    pub deletion_time: UTime,
    /// Not removable before this.
    pub deferment_end_time: UTime,
    /// State (see [`trash_state`]).
    pub state: u8,
}

impl Encode for TrashImageSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(2, 1);
        out.put_u8(self.source);
        out.put_str(&self.name);
        out.put(&self.deletion_time);
        out.put(&self.deferment_end_time);
        out.put_u8(self.state);
        g.finish(out);
    }
}

impl Decode for TrashImageSpec {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (v, mut s) = d.versioned(2, "TrashImageSpec")?;
        let source = s.u8()?;
        let name = s.string()?;
        let deletion_time = UTime::decode(&mut s)?;
        let deferment_end_time = UTime::decode(&mut s)?;
        let state = if v >= 2 { s.u8()? } else { 0 };
        Ok(TrashImageSpec {
            source,
            name,
            deletion_time,
            deferment_end_time,
            state,
        })
    }
}

/// `cls::rbd::GroupSpec` VERS(1,1): the group an image belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupSpec {
    /// Group pool (-1: none).
    pub pool_id: i64,
    /// Group id.
    pub group_id: String,
}

impl Decode for GroupSpec {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "GroupSpec")?;
        Ok(GroupSpec {
            pool_id: s.i64()?,
            group_id: s.string()?,
        })
    }
}

impl GroupSpec {
    /// True if the image is in a group.
    pub fn is_valid(&self) -> bool {
        !self.group_id.is_empty() && self.pool_id != -1
    }
}

/// `::SnapContext` as `get_snapcontext` returns it: seq + ids (descending).
pub fn decode_snapcontext(d: &mut Decoder<'_>) -> DResult<ceph_rados::SnapContext> {
    let seq = d.u64()?;
    let snaps = d.vec::<u64>(8, "snapc snaps")?;
    Ok(ceph_rados::SnapContext { seq, snaps })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceph_encoding::{decode_exact, encode_to_vec};

    #[test]
    fn parent_roundtrip_and_v1() {
        let p = ClsRbdParent {
            spec: ParentImageSpec {
                pool_id: 3,
                pool_namespace: "ns".into(),
                image_id: "abc".into(),
                snap_id: 7,
            },
            head_overlap: Some(4096),
        };
        let b = encode_to_vec(&p);
        assert_eq!(&b[..2], &[2, 2]);
        assert_eq!(decode_exact::<ClsRbdParent>(&b).unwrap(), p);
        // v1: pool, id, snap, overlap
        let mut v1 = Vec::new();
        let g = v1.start_versioned(1, 1);
        v1.put_i64(3);
        v1.put_str("abc");
        v1.put_u64(7);
        v1.put_u64(4096);
        g.finish(&mut v1);
        let back: ClsRbdParent = decode_exact(&v1).unwrap();
        assert_eq!(back.spec.pool_namespace, "");
        assert_eq!(back.head_overlap, Some(4096));
    }

    #[test]
    fn namespace_variants() {
        for ns in [
            SnapshotNamespace::User,
            SnapshotNamespace::Trash {
                original_name: "s".into(),
                original_type: 0,
            },
            SnapshotNamespace::Group {
                group_pool: 1,
                group_id: "g".into(),
                group_snapshot_id: "x".into(),
            },
            SnapshotNamespace::Other {
                ty: 3,
                raw: vec![1, 2, 3],
            },
        ] {
            let b = encode_to_vec(&ns);
            assert_eq!(decode_exact::<SnapshotNamespace>(&b).unwrap(), ns);
        }
    }
}
