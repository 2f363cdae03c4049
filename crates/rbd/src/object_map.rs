//! The object map (`object-map` / `fast-diff` features): one 2-bit state per data object
//! in `rbd_object_map.<id>` (head) and `rbd_object_map.<id>.<snap id %016x>` (one per
//! snapshot), encoded as `ceph::BitVector<2>` with its crcs, and the cls_rbd calls librbd
//! maintains it with (ceph: src/common/bit_vector.hpp, src/librbd/ObjectMap.cc,
//! src/librbd/object_map/*.cc, src/cls/rbd/cls_rbd.cc object_map_*).
//!
//! The codec here is sans-IO; the exclusive-lock module (`exclusive_lock.rs`) keeps the head map in memory
//! while this client owns the exclusive lock and sends the updates.

use crate::cls::ClsCall;
use ceph_encoding::{ceph_crc32c, DecodeError, Decoder, EncodeExt};

type DResult<T> = std::result::Result<T, DecodeError>;

/// Object states (`OBJECT_NONEXISTENT` ...; ceph: src/include/rbd/object_map_types.h).
pub mod state {
    #![allow(missing_docs)]
    pub const NONEXISTENT: u8 = 0;
    pub const EXISTS: u8 = 1;
    pub const PENDING: u8 = 2;
    pub const EXISTS_CLEAN: u8 = 3;
}

/// `BitVector::BLOCK_SIZE`: data crcs cover 4096-byte blocks of the packed data.
const BLOCK_SIZE: usize = 4096;
/// 2 bits per element, 4 elements per byte, first element in the high bits.
const PER_BYTE: u64 = 4;

/// The head (`snap_id` = NOSNAP) or snapshot object map object of image `id`.
pub fn object_map_name(id: &str, snap_id: u64) -> String {
    if snap_id == ceph_rados::NOSNAP {
        format!("rbd_object_map.{id}")
    } else {
        format!("rbd_object_map.{id}.{snap_id:016x}")
    }
}

/// A decoded object map: one state byte per object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectMap {
    /// States, index = object number.
    pub states: Vec<u8>,
}

impl ObjectMap {
    /// A map of `n` objects in state `s`.
    pub fn new(n: u64, s: u8) -> Self {
        ObjectMap {
            states: vec![s & 3; n as usize],
        }
    }

    /// Number of objects.
    pub fn len(&self) -> u64 {
        self.states.len() as u64
    }

    /// True if it covers no object.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// State of object `i` (NONEXISTENT past the end).
    pub fn get(&self, i: u64) -> u8 {
        self.states
            .get(i as usize)
            .copied()
            .unwrap_or(state::NONEXISTENT)
    }

    fn packed(&self) -> Vec<u8> {
        let n = self.states.len();
        let mut data = vec![0u8; n.div_ceil(PER_BYTE as usize)];
        for (i, s) in self.states.iter().enumerate() {
            let shift = (3 - (i % 4)) * 2;
            data[i / 4] |= (s & 3) << shift;
        }
        data
    }

    /// `BitVector<2>::encode`: header (bufferlist of VERS(1,1) u64 size), the packed data
    /// without a length, footer (bufferlist of header crc, u32 block count, block crcs).
    pub fn encode(&self) -> Vec<u8> {
        let mut header = Vec::new();
        let g = header.start_versioned(1, 1);
        header.put_u64(self.len());
        g.finish(&mut header);
        let header_crc = ceph_crc32c(0, &header);
        let data = self.packed();
        let mut out = Vec::with_capacity(header.len() + data.len() + 32);
        out.put_blob(&header);
        out.put_raw(&data);
        let mut footer = Vec::new();
        footer.put_u32(header_crc);
        let blocks: Vec<&[u8]> = data.chunks(BLOCK_SIZE).collect();
        footer.put_u32(blocks.len() as u32);
        for b in blocks {
            footer.put_u32(ceph_crc32c(0, b));
        }
        out.put_blob(&footer);
        out
    }

    /// `BitVector<2>::decode`, checking the header and block crcs when present.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let mut d = Decoder::new(b);
        let header = d.blob("bit vector header")?;
        let mut hd = Decoder::new(header);
        let (_v, mut hs) = hd.versioned(1, "bit vector header")?;
        let size = hs.u64()?;
        let nbytes = size.div_ceil(PER_BYTE);
        if nbytes > d.remaining() as u64 {
            return Err(DecodeError::invalid(
                "object map",
                format!("{size} objects but only {} bytes", d.remaining()),
            ));
        }
        let data = d.take(nbytes as usize, "bit vector data")?;
        let footer = d.blob("bit vector footer")?;
        if !footer.is_empty() {
            let mut fd = Decoder::new(footer);
            let hcrc = fd.u32()?;
            if hcrc != ceph_crc32c(0, header) {
                return Err(DecodeError::invalid("object map", "incorrect header crc"));
            }
            let _count = fd.u32()?;
            let blocks: Vec<&[u8]> = data.chunks(BLOCK_SIZE).collect();
            let mut crcs = Vec::new();
            while fd.remaining() >= 4 {
                crcs.push(fd.u32()?);
            }
            if crcs.len() != blocks.len() {
                return Err(DecodeError::invalid(
                    "object map",
                    "invalid data block crcs",
                ));
            }
            for (blk, crc) in blocks.iter().zip(crcs) {
                if ceph_crc32c(0, blk) != crc {
                    return Err(DecodeError::invalid("object map", "invalid data block crc"));
                }
            }
        }
        let states = (0..size as usize)
            .map(|i| (data[i / 4] >> ((3 - (i % 4)) * 2)) & 3)
            .collect();
        Ok(ObjectMap { states })
    }
}

fn rbd(method: &'static str, input: Vec<u8>, write: bool) -> ClsCall {
    ClsCall::new("rbd", method, input, write)
}

/// `object_map_load`: the map, crc-checked by the OSD; decode with [`ObjectMap::decode`].
pub fn load() -> ClsCall {
    rbd("object_map_load", Vec::new(), false)
}

/// `object_map_save`: replace the whole map.
pub fn save(m: &ObjectMap) -> ClsCall {
    rbd("object_map_save", m.encode(), true)
}

/// `object_map_resize(object_count, default_state)` (creates the object if needed).
pub fn resize(object_count: u64, default_state: u8) -> ClsCall {
    let mut v = Vec::new();
    v.put_u64(object_count);
    v.put_u8(default_state);
    rbd("object_map_resize", v, true)
}

/// `object_map_update(start, end, new_state, current_state)`: objects in [start, end)
/// (only those in `current` if given) take `new_state`.
pub fn update(start: u64, end: u64, new_state: u8, current: Option<u8>) -> ClsCall {
    let mut v = Vec::new();
    v.put_u64(start);
    v.put_u64(end);
    v.put_u8(new_state);
    match current {
        Some(c) => {
            v.put_u8(1);
            v.put_u8(c);
        }
        None => v.put_u8(0),
    }
    rbd("object_map_update", v, true)
}

/// `object_map_snap_add`: EXISTS → EXISTS_CLEAN in the head map (fast-diff).
pub fn snap_add() -> ClsCall {
    rbd("object_map_snap_add", Vec::new(), true)
}

/// `object_map_snap_remove(removed snapshot's map)`: objects EXISTS there and
/// EXISTS_CLEAN here become EXISTS (the dirtiness moves to the next snapshot / head).
pub fn snap_remove(removed: &ObjectMap) -> ClsCall {
    rbd("object_map_snap_remove", removed.encode(), true)
}

/// In-memory equivalent of [`snap_remove`] applied to `next`.
pub fn merge_removed_snapshot(next: &mut ObjectMap, removed: &ObjectMap) {
    for (i, s) in next.states.iter_mut().enumerate() {
        if *s == state::EXISTS_CLEAN && removed.get(i as u64) == state::EXISTS {
            *s = state::EXISTS;
        }
    }
}

/// The number of objects an object map covers for an image of `size` bytes.
pub fn object_count(layout: &crate::layout::Layout, size: u64) -> u64 {
    layout.num_objects(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitvector_roundtrip_and_layout() {
        let mut m = ObjectMap::new(6, state::NONEXISTENT);
        m.states[0] = state::EXISTS;
        m.states[1] = state::EXISTS_CLEAN;
        m.states[5] = state::PENDING;
        let b = m.encode();
        // 4-byte header length, VERS(1,1) header with u64 size
        assert_eq!(&b[..4], &14u32.to_le_bytes());
        assert_eq!(&b[4..6], &[1, 1]);
        assert_eq!(&b[10..18], &6u64.to_le_bytes());
        // packed data: first element in the high bits
        assert_eq!(b[18], 0b0111_0000);
        assert_eq!(b[19], 0b0010_0000);
        assert_eq!(ObjectMap::decode(&b).unwrap(), m);
        let mut bad = b.clone();
        bad[18] ^= 0x40;
        assert!(ObjectMap::decode(&bad).is_err());
        assert!(ObjectMap::decode(&b[..20]).is_err());
    }

    #[test]
    fn empty_and_large_maps() {
        let m = ObjectMap::new(0, 0);
        assert_eq!(ObjectMap::decode(&m.encode()).unwrap(), m);
        let mut big = ObjectMap::new(40_000, state::EXISTS);
        big.states[39_999] = state::PENDING;
        let e = big.encode();
        assert_eq!(ObjectMap::decode(&e).unwrap(), big);
    }

    #[test]
    fn names_and_merge() {
        assert_eq!(
            object_map_name("abc", ceph_rados::NOSNAP),
            "rbd_object_map.abc"
        );
        assert_eq!(
            object_map_name("abc", 4),
            "rbd_object_map.abc.0000000000000004"
        );
        let mut next = ObjectMap {
            states: vec![3, 3, 1, 0],
        };
        let removed = ObjectMap {
            states: vec![1, 3, 1, 1],
        };
        merge_removed_snapshot(&mut next, &removed);
        assert_eq!(next.states, vec![1, 3, 1, 0]);
    }
}
