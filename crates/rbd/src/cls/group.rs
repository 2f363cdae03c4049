//! cls_rbd's consistency-group records and calls (ceph: src/cls/rbd/cls_rbd.cc
//! `group_*` / `image_group_*`, cls_rbd_types.{h,cc}, cls_rbd_client.cc).
//!
//! Where they live: `rbd_group_directory` maps names to ids (`name_<name>` /
//! `id_<id>` omap keys, same layout as `rbd_directory`); `rbd_group_header.<id>` holds
//! one `image_<pool %016x>_<image id>` key per member (a [`GroupImageLinkState`] byte)
//! and one `snapshot_<snap id>` key per group snapshot ([`GroupSnapshot`]); a member's
//! own header holds the back reference `rbd_group_ref` ([`GroupSpec`]).

use super::{enc, exact, ClsCall, DResult, GroupSpec};
use ceph_encoding::{Decode, Decoder, Encode, EncodeExt};

/// The group directory object (in the group's pool and namespace).
pub const RBD_GROUP_DIRECTORY: &str = "rbd_group_directory";

/// `rbd_group_header.<id>`: the header object of group `id`.
pub fn group_header_name(id: &str) -> String {
    format!("rbd_group_header.{id}")
}

/// `GroupImageLinkState`: an image is INCOMPLETE while being added or removed (the
/// two-sided link is not both written yet), ATTACHED once both sides are.
pub mod link_state {
    #![allow(missing_docs)]
    pub const ATTACHED: u8 = 0;
    pub const INCOMPLETE: u8 = 1;
}

/// `GroupSnapshotState`: INCOMPLETE while the member snapshots are being taken.
pub mod group_snap_state {
    #![allow(missing_docs)]
    pub const INCOMPLETE: u8 = 0;
    pub const COMPLETE: u8 = 1;
}

impl Encode for GroupSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(1, 1);
        out.put_i64(self.pool_id);
        out.put_str(&self.group_id);
        g.finish(out);
    }
}

/// `cls::rbd::GroupImageSpec` VERS(1,1): a member image (id first, then pool).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupImageSpec {
    /// Image id.
    pub image_id: String,
    /// Image pool (-1 in a list start marker: from the beginning).
    pub pool_id: i64,
}

impl Encode for GroupImageSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(1, 1);
        out.put_str(&self.image_id);
        out.put_i64(self.pool_id);
        g.finish(out);
    }
}

impl Decode for GroupImageSpec {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "GroupImageSpec")?;
        Ok(GroupImageSpec {
            image_id: s.string()?,
            pool_id: s.i64()?,
        })
    }
}

/// `cls::rbd::GroupImageStatus` VERS(1,1): a member and its link state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupImageStatus {
    /// The member.
    pub spec: GroupImageSpec,
    /// See [`link_state`].
    pub state: u8,
}

impl Encode for GroupImageStatus {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(1, 1);
        out.put(&self.spec);
        out.put_u8(self.state);
        g.finish(out);
    }
}

impl Decode for GroupImageStatus {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "GroupImageStatus")?;
        Ok(GroupImageStatus {
            spec: GroupImageSpec::decode(&mut s)?,
            state: s.u8()?,
        })
    }
}

/// `cls::rbd::ImageSnapshotSpec` VERS(1,1): the member snapshot a group snapshot took.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageSnapshotSpec {
    /// Image pool.
    pub pool: i64,
    /// Image id.
    pub image_id: String,
    /// Snapshot id in that image (0 while the group snapshot is incomplete).
    pub snap_id: u64,
}

impl Encode for ImageSnapshotSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(1, 1);
        out.put_i64(self.pool);
        out.put_str(&self.image_id);
        out.put_u64(self.snap_id);
        g.finish(out);
    }
}

impl Decode for ImageSnapshotSpec {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "ImageSnapshotSpec")?;
        Ok(ImageSnapshotSpec {
            pool: s.i64()?,
            image_id: s.string()?,
            snap_id: s.u64()?,
        })
    }
}

/// `cls::rbd::GroupSnapshot`: Pacific writes VERS(1,1) (id, name, state, member
/// snapshots); Reef's v2 appends a snapshot namespace, which a v1 reader skips.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupSnapshot {
    /// Group snapshot id (librbd: hex instance id ++ hex random).
    pub id: String,
    /// Name.
    pub name: String,
    /// See [`group_snap_state`].
    pub state: u8,
    /// One entry per member image.
    pub snaps: Vec<ImageSnapshotSpec>,
    /// Encoding version and fields after `snaps` of a newer record (Reef's snapshot
    /// namespace), written back unchanged so a rename keeps them.
    pub newer: Option<(u8, Vec<u8>)>,
}

impl Encode for GroupSnapshot {
    fn encode(&self, out: &mut Vec<u8>) {
        let v = self.newer.as_ref().map_or(1, |(v, _)| *v);
        let g = out.start_versioned(v, 1);
        out.put_str(&self.id);
        out.put_str(&self.name);
        out.put_u8(self.state);
        out.put_u32(self.snaps.len() as u32);
        for s in &self.snaps {
            out.put(s);
        }
        if let Some((_, tail)) = &self.newer {
            out.put_raw(tail);
        }
        g.finish(out);
    }
}

impl Decode for GroupSnapshot {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (v, mut s) = d.versioned(1, "GroupSnapshot")?;
        let id = s.string()?;
        let name = s.string()?;
        let state = s.u8()?;
        let snaps = s.vec::<ImageSnapshotSpec>(6 + 8 + 4 + 8, "group snapshot images")?;
        let newer = (v > 1).then(|| (v, s.rest().to_vec()));
        Ok(GroupSnapshot {
            id,
            name,
            state,
            snaps,
            newer,
        })
    }
}

// ---------------------------------------------------------------- rbd_group_directory

fn name_id(method: &'static str, name: &str, id: &str) -> ClsCall {
    ClsCall::rbd(
        method,
        enc(|b| {
            b.put_str(name);
            b.put_str(id);
        }),
        true,
    )
}

/// `group_dir_add(name, id)`: EEXIST if the name or the id is taken.
pub fn group_dir_add(name: &str, id: &str) -> ClsCall {
    name_id("group_dir_add", name, id)
}

/// `group_dir_remove(name, id)`: ENOENT if that pair is not there.
pub fn group_dir_remove(name: &str, id: &str) -> ClsCall {
    name_id("group_dir_remove", name, id)
}

/// `group_dir_rename(src, dest, id)`.
pub fn group_dir_rename(src: &str, dest: &str, id: &str) -> ClsCall {
    ClsCall::rbd(
        "group_dir_rename",
        enc(|b| {
            b.put_str(src);
            b.put_str(dest);
            b.put_str(id);
        }),
        true,
    )
}

/// `group_dir_list(start_after, max)` → map<name, id>.
pub fn group_dir_list(start_after: &str, max: u64) -> ClsCall {
    ClsCall::rbd(
        "group_dir_list",
        enc(|b| {
            b.put_str(start_after);
            b.put_u64(max);
        }),
        false,
    )
}

// ---------------------------------------------------------------- rbd_group_header.<id>

/// `group_image_set(status)`: add or update a member key.
pub fn group_image_set(st: &GroupImageStatus) -> ClsCall {
    ClsCall::rbd("group_image_set", enc(|b| b.put(st)), true)
}

/// `group_image_remove(spec)`.
pub fn group_image_remove(spec: &GroupImageSpec) -> ClsCall {
    ClsCall::rbd("group_image_remove", enc(|b| b.put(spec)), true)
}

/// `group_image_list(start_after, max)` → `vector<GroupImageStatus>`.
pub fn group_image_list(start_after: &GroupImageSpec, max: u64) -> ClsCall {
    ClsCall::rbd(
        "group_image_list",
        enc(|b| {
            b.put(start_after);
            b.put_u64(max);
        }),
        false,
    )
}
/// Decode `group_image_list`.
pub fn decode_group_image_list(b: &[u8]) -> DResult<Vec<GroupImageStatus>> {
    exact(b, "group_image_list", |d| {
        d.vec::<GroupImageStatus>(6 + 6 + 4 + 8 + 1, "group images")
    })
}

/// `group_snap_set(snapshot)`: add or replace a group snapshot record (EEXIST when
/// another record already has the name).
pub fn group_snap_set(snap: &GroupSnapshot) -> ClsCall {
    ClsCall::rbd("group_snap_set", enc(|b| b.put(snap)), true)
}

/// `group_snap_remove(id)`.
pub fn group_snap_remove(id: &str) -> ClsCall {
    ClsCall::rbd("group_snap_remove", enc(|b| b.put_str(id)), true)
}

/// `group_snap_get_by_id(id)` → GroupSnapshot.
pub fn group_snap_get_by_id(id: &str) -> ClsCall {
    ClsCall::rbd("group_snap_get_by_id", enc(|b| b.put_str(id)), false)
}

/// `group_snap_list(start_after, max)` → `vector<GroupSnapshot>` (by id order).
pub fn group_snap_list(start_after: &GroupSnapshot, max: u64) -> ClsCall {
    ClsCall::rbd(
        "group_snap_list",
        enc(|b| {
            b.put(start_after);
            b.put_u64(max);
        }),
        false,
    )
}
/// Decode `group_snap_list`.
pub fn decode_group_snap_list(b: &[u8]) -> DResult<Vec<GroupSnapshot>> {
    exact(b, "group_snap_list", |d| {
        d.vec::<GroupSnapshot>(6 + 4 + 4 + 1 + 4, "group snapshots")
    })
}

// ---------------------------------------------------------------- member image header

/// `image_group_add(spec)` on `rbd_header.<id>`: EEXIST if the image is in another
/// group (the same group again is accepted).
pub fn image_group_add(spec: &GroupSpec) -> ClsCall {
    ClsCall::rbd("image_group_add", enc(|b| b.put(spec)), true)
}

/// `image_group_remove(spec)` on `rbd_header.<id>`: EBADF if the image is in another
/// group.
pub fn image_group_remove(spec: &GroupSpec) -> ClsCall {
    ClsCall::rbd("image_group_remove", enc(|b| b.put(spec)), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceph_encoding::{decode_exact, encode_to_vec};

    #[test]
    fn layouts_match_what_librbd_wrote() {
        // `rados listomapvals rbd_group_header.102d6b8b4567` after `rbd group snap
        // create` of two images in pool 2 (Ceph 16.2.15)
        let want: &[u8] = &[
            0x01, 0x01, 0x67, 0, 0, 0, 0x0c, 0, 0, 0, b'1', b'0', b'6', b'7', b'6', b'b', b'8',
            b'b', b'4', b'5', b'6', b'7', 0x02, 0, 0, 0, b's', b'1', 0x01, 0x02, 0, 0, 0, 0x01,
            0x01, 0x20, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x0c, 0, 0, 0, b'1', b'0', b'3', b'9',
            b'6', b'8', b'f', b'2', b'b', b'3', b'a', b'a', 0x04, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01,
            0x20, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x0c, 0, 0, 0, b'1', b'0', b'3', b'b', b'5',
            b'c', b'1', b'1', b'1', b'3', b'e', b'c', 0x05, 0, 0, 0, 0, 0, 0, 0,
        ];
        let s: GroupSnapshot = decode_exact(want).unwrap();
        assert_eq!(s.id, "10676b8b4567");
        assert_eq!(s.name, "s1");
        assert_eq!(s.state, group_snap_state::COMPLETE);
        assert_eq!(s.snaps.len(), 2);
        assert_eq!(s.snaps[1].image_id, "103b5c1113ec");
        assert_eq!(s.snaps[1].snap_id, 5);
        assert_eq!(encode_to_vec(&s), want);

        // the image's rbd_group_ref key
        let r: &[u8] = &[
            0x01, 0x01, 0x18, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x0c, 0, 0, 0, b'1', b'0', b'2',
            b'd', b'6', b'b', b'8', b'b', b'4', b'5', b'6', b'7',
        ];
        let g: GroupSpec = decode_exact(r).unwrap();
        assert_eq!(g.pool_id, 2);
        assert_eq!(g.group_id, "102d6b8b4567");
        assert_eq!(encode_to_vec(&g), r);
    }

    #[test]
    fn newer_group_snapshot_fields_survive_a_rewrite() {
        // a v2 record (Reef): the v1 fields, then a snapshot namespace
        let mut b = Vec::new();
        let g = b.start_versioned(2, 1);
        b.put_str("id1");
        b.put_str("s");
        b.put_u8(group_snap_state::COMPLETE);
        b.put_u32(0);
        b.put_raw(&[1, 1, 4, 0, 0, 0, 0, 0, 0, 0]);
        g.finish(&mut b);
        let mut s: GroupSnapshot = decode_exact(&b).unwrap();
        assert_eq!(s.name, "s");
        assert_eq!(encode_to_vec(&s), b);
        s.name = "t".into();
        let back: GroupSnapshot = decode_exact(&encode_to_vec(&s)).unwrap();
        assert_eq!(back.newer, s.newer);
        assert_eq!(back.name, "t");
    }

    #[test]
    fn image_status_roundtrip_and_truncation() {
        let st = GroupImageStatus {
            spec: GroupImageSpec {
                image_id: "abc".into(),
                pool_id: 7,
            },
            state: link_state::INCOMPLETE,
        };
        let b = encode_to_vec(&st);
        assert_eq!(decode_exact::<GroupImageStatus>(&b).unwrap(), st);
        assert!(decode_exact::<GroupImageStatus>(&b[..b.len() - 1]).is_err());
        // a list claiming more entries than the bytes can hold is refused, not allocated
        let mut l = Vec::new();
        l.put_u32(u32::MAX);
        assert!(decode_group_image_list(&l).is_err());
        assert!(decode_group_snap_list(&l).is_err());
    }
}
