//! Format-1 ("old format") images: the `<name>.rbd` header and the `rbd_directory` TMAP.
//!
//! Clusters upgraded from before Bobtail still hold such images, and Pacific's librbd
//! still opens, writes, snapshots and removes them (it only refuses to create them
//! unless `RBD_FORCE_ALLOW_V1` is set). Their whole metadata is one plain object:
//!
//! * header `<name>.rbd`: librbd's packed `rbd_obj_header_ondisk`
//!   (src/include/rbd_types.h) — 40 bytes of banner text, the 24-byte block name
//!   (`rb.0.<id>`), `"RBD\0"`, `"001.005\0"`, order / crypt / comp / unused bytes,
//!   then little-endian `image_size` u64, `snap_seq` u64, `snap_count` u32, a reserved
//!   u32, `snap_names_len` u64, `snap_count` × (`id` u64, `image_size` u64), and the
//!   snapshot names, each NUL terminated, in the same order (newest snapshot first, as
//!   cls_rbd's old `snap_add` inserts at the front);
//! * data objects `<block_name>.<object number as 12 hex digits>` in the same pool;
//! * the image name as a key (empty value) of the TMAP stored in the *data* of
//!   `rbd_directory` (format-2 names live in its omap, so both coexist).
//!
//! There is no id, no features, no timestamps, no parent, no striping, no metadata.

use crate::error::{RbdError, Result};
use ceph_encoding::DecodeError;

/// The banner text at the start of every format-1 header (`RBD_HEADER_TEXT`).
pub const HEADER_TEXT: &[u8] = b"<<< Rados Block Device Image >>>\n";
/// `RBD_HEADER_SIGNATURE`.
pub const HEADER_SIGNATURE: &[u8] = b"RBD";
/// `RBD_HEADER_VERSION`.
pub const HEADER_VERSION: &[u8] = b"001.005";
/// Size of the fixed part of the header (before the snapshot records).
pub const HEADER_FIXED_LEN: usize = 112;
/// Size of the block name field (`RBD_MAX_BLOCK_NAME_SIZE`, NUL included).
pub const BLOCK_NAME_SIZE: usize = 24;
/// Header object suffix (`RBD_SUFFIX`).
pub const SUFFIX: &str = ".rbd";

const OFF_BLOCK_NAME: usize = 40;
const OFF_SIGNATURE: usize = 64;
const OFF_VERSION: usize = 68;
const OFF_ORDER: usize = 76;
/// Offset of `image_size` (little-endian u64), which a resize rewrites alone.
pub const OFF_SIZE: usize = 80;
const OFF_SNAP_SEQ: usize = 88;
const OFF_SNAP_COUNT: usize = 96;
const OFF_SNAP_NAMES_LEN: usize = 104;

/// `<name>.rbd`: the header object of format-1 image `name`.
pub fn header_name(name: &str) -> String {
    format!("{name}{SUFFIX}")
}

/// `<block name>.<object number as 12 hex digits>` (librbd `get_object_name` with the
/// old format's `RBD_V1_DATA_FORMAT`, `%012llx`).
pub fn data_object_name(prefix: &str, object_no: u64) -> String {
    crate::util::prefixed_hex(prefix, object_no, 12)
}

/// One snapshot record of a format-1 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapRecord {
    /// Snapshot id (a self-managed snap id of the pool).
    pub id: u64,
    /// Image size when the snapshot was taken.
    pub size: u64,
    /// Snapshot name.
    pub name: String,
}

/// A decoded `rbd_obj_header_ondisk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderV1 {
    /// Data object prefix (`block_name`), e.g. `rb.0.102d.6b8b4567`.
    pub block_name: String,
    /// Object size order.
    pub order: u8,
    /// Image size in bytes.
    pub size: u64,
    /// Highest snapshot id ever used by this image (the snap context's seq).
    pub snap_seq: u64,
    /// Snapshots as stored (newest first).
    pub snaps: Vec<SnapRecord>,
}

fn le_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn le_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

/// The bytes of a NUL-padded C string field, up to its first NUL.
fn c_str(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |n| &b[..n])
}

fn bad(oid: &str, what: impl std::fmt::Display) -> RbdError {
    RbdError::Decode(DecodeError::invalid(
        "rbd_obj_header_ondisk",
        format!("{oid}: not a format-1 rbd header: {what}"),
    ))
}

impl HeaderV1 {
    /// Decode a header object's bytes. Everything is bounds-checked: a truncated or
    /// foreign object is an error, never a panic (the bytes come from the network).
    pub fn decode(oid: &str, b: &[u8]) -> Result<HeaderV1> {
        if b.len() < HEADER_FIXED_LEN {
            return Err(bad(oid, format!("{} bytes", b.len())));
        }
        if !b.starts_with(HEADER_TEXT) {
            return Err(bad(oid, "banner text"));
        }
        if c_str(&b[OFF_SIGNATURE..OFF_VERSION]) != HEADER_SIGNATURE {
            return Err(bad(oid, "signature"));
        }
        // librbd only checks the banner; the version has been 001.005 since 2011
        let block_name = c_str(&b[OFF_BLOCK_NAME..OFF_SIGNATURE]);
        let block_name = std::str::from_utf8(block_name)
            .map_err(|_| bad(oid, "block name is not UTF-8"))?
            .to_string();
        let order = b[OFF_ORDER];
        if !(12..=25).contains(&order) {
            return Err(bad(oid, format!("order {order}")));
        }
        let size = le_u64(b, OFF_SIZE);
        let snap_seq = le_u64(b, OFF_SNAP_SEQ);
        let count = le_u32(b, OFF_SNAP_COUNT) as usize;
        let names_len = le_u64(b, OFF_SNAP_NAMES_LEN);
        let recs_end = count
            .checked_mul(16)
            .and_then(|n| n.checked_add(HEADER_FIXED_LEN))
            .filter(|&n| n <= b.len())
            .ok_or_else(|| bad(oid, format!("{count} snapshots do not fit")))?;
        let names_end = usize::try_from(names_len)
            .ok()
            .and_then(|n| recs_end.checked_add(n))
            .filter(|&n| n <= b.len())
            .ok_or_else(|| bad(oid, format!("snapshot names length {names_len}")))?;
        let mut names = b[recs_end..names_end].split(|&c| c == 0);
        let mut snaps = Vec::with_capacity(count);
        for i in 0..count {
            let off = HEADER_FIXED_LEN + i * 16;
            let name = names
                .next()
                .ok_or_else(|| bad(oid, "missing snapshot name"))?;
            let name = std::str::from_utf8(name)
                .map_err(|_| bad(oid, "snapshot name is not UTF-8"))?
                .to_string();
            snaps.push(SnapRecord {
                id: le_u64(b, off),
                size: le_u64(b, off + 8),
                name,
            });
        }
        Ok(HeaderV1 {
            block_name,
            order,
            size,
            snap_seq,
            snaps,
        })
    }

    /// Encode a header with no snapshots, as librbd's `create_v1` writes it (snapshots
    /// are only ever added by cls_rbd's `snap_add` on the OSD).
    pub fn encode_new(block_name: &str, order: u8, size: u64) -> Result<Vec<u8>> {
        if block_name.len() >= BLOCK_NAME_SIZE {
            return Err(RbdError::InvalidArgument(format!(
                "block name {block_name} longer than {} bytes",
                BLOCK_NAME_SIZE - 1
            )));
        }
        let mut b = vec![0u8; HEADER_FIXED_LEN];
        b[..HEADER_TEXT.len()].copy_from_slice(HEADER_TEXT);
        b[OFF_BLOCK_NAME..OFF_BLOCK_NAME + block_name.len()].copy_from_slice(block_name.as_bytes());
        b[OFF_SIGNATURE..OFF_SIGNATURE + HEADER_SIGNATURE.len()].copy_from_slice(HEADER_SIGNATURE);
        b[OFF_VERSION..OFF_VERSION + HEADER_VERSION.len()].copy_from_slice(HEADER_VERSION);
        b[OFF_ORDER] = order;
        b[OFF_SIZE..OFF_SIZE + 8].copy_from_slice(&size.to_le_bytes());
        Ok(b)
    }
}

/// The keys of a TMAP object's data (`rbd_directory`'s format-1 image names): a
/// length-prefixed header blob, a u32 count, then that many (length-prefixed key,
/// length-prefixed value) pairs, all little-endian. An empty object is an empty map.
pub fn decode_tmap_keys(b: &[u8]) -> Result<Vec<String>> {
    if b.is_empty() {
        return Ok(Vec::new());
    }
    let mut d = ceph_encoding::Decoder::new(b);
    let _header = d.blob("tmap header")?;
    let n = d.count(8, "tmap entries")?;
    let mut keys = Vec::new();
    for _ in 0..n {
        let k = d.string()?;
        let _v = d.blob("tmap value")?;
        keys.push(k);
    }
    Ok(keys)
}

/// `CEPH_OSD_TMAP_SET`: set a key (followed by the key and the value).
const TMAP_SET: u8 = b's';
/// `CEPH_OSD_TMAP_RM`: remove a key (followed by the key; ENOENT if absent).
const TMAP_RM: u8 = b'r';

fn tmap_cmd(op: u8, key: &str, value: Option<&[u8]>) -> Vec<u8> {
    let mut b = Vec::with_capacity(9 + key.len());
    b.push(op);
    b.extend_from_slice(&(key.len() as u32).to_le_bytes());
    b.extend_from_slice(key.as_bytes());
    if let Some(v) = value {
        b.extend_from_slice(&(v.len() as u32).to_le_bytes());
        b.extend_from_slice(v);
    }
    b
}

/// The TMAPUP command librbd's `tmap_set` sends to add format-1 image `name` to
/// `rbd_directory` (the key with an empty value).
pub fn tmap_set_cmd(name: &str) -> Vec<u8> {
    tmap_cmd(TMAP_SET, name, Some(&[]))
}

/// The TMAPUP command librbd's `tmap_rm` sends to drop `name` from `rbd_directory`.
pub fn tmap_rm_cmd(name: &str) -> Vec<u8> {
    tmap_cmd(TMAP_RM, name, None)
}

/// A block name as librbd's `init_rbd_header` makes it: `rb.<hi>.<lo>.<extra>` in
/// hex, from the client's instance id and a random number.
pub fn block_name(instance_id: u64, extra: u32) -> String {
    format!(
        "rb.{:x}.{:x}.{:x}",
        instance_id >> 32,
        instance_id & 0xffff_ffff,
        extra
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header librbd 16.2 wrote for image `a` after `snap create a@s1`, a resize
    /// to 20 MiB and `snap create a@s2` (`rados get a.rbd`).
    const LIVE: &str = "3c3c3c205261646f7320426c6f636b2044657669636520496d616765203e\
3e3e0a0000000000000072622e302e313032642e36623862343536370000\
00000000524244003030312e303035001600000000004001000000000700\
000000000000020000000000000006000000000000000700000000000000\
000040010000000006000000000000000000a00000000000733200733100";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn decodes_librbd_header() {
        let b = unhex(LIVE);
        assert_eq!(b.len(), 150);
        let h = HeaderV1::decode("a.rbd", &b).unwrap();
        assert_eq!(h.block_name, "rb.0.102d.6b8b4567");
        assert_eq!(h.order, 22);
        assert_eq!(h.size, 20 << 20);
        assert_eq!(h.snap_seq, 7);
        assert_eq!(
            h.snaps,
            vec![
                SnapRecord {
                    id: 7,
                    size: 20 << 20,
                    name: "s2".into()
                },
                SnapRecord {
                    id: 6,
                    size: 10 << 20,
                    name: "s1".into()
                },
            ]
        );
    }

    #[test]
    fn new_header_round_trips() {
        let b = HeaderV1::encode_new("rb.0.1234.5678abcd", 22, 10 << 20).unwrap();
        let h = HeaderV1::decode("x.rbd", &b).unwrap();
        assert_eq!(h.block_name, "rb.0.1234.5678abcd");
        assert_eq!((h.order, h.size, h.snap_seq), (22, 10 << 20, 0));
        assert!(h.snaps.is_empty());
    }

    #[test]
    fn truncated_or_foreign_headers_are_errors() {
        let b = unhex(LIVE);
        for n in [0, 50, 111, 120, 144, 148] {
            assert!(HeaderV1::decode("a.rbd", &b[..n]).is_err(), "len {n}");
        }
        let mut f = b.clone();
        f[0] = b'x';
        assert!(HeaderV1::decode("a.rbd", &f).is_err());
        // a snapshot count that would overflow must not panic
        let mut f = b;
        f[OFF_SNAP_COUNT..OFF_SNAP_COUNT + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(HeaderV1::decode("a.rbd", &f).is_err());
    }

    #[test]
    fn object_names() {
        assert_eq!(header_name("img"), "img.rbd");
        assert_eq!(
            data_object_name("rb.0.102d.6b8b4567", 0x1f),
            "rb.0.102d.6b8b4567.00000000001f"
        );
    }

    #[test]
    fn tmap_commands_and_block_name() {
        assert_eq!(tmap_set_cmd("a"), b"s\x01\0\0\0a\0\0\0\0");
        assert_eq!(tmap_rm_cmd("ab"), b"r\x02\0\0\0ab");
        // the prefix of the image librbd made as client.4141 (instance 0x102d)
        assert_eq!(block_name(0x102d, 0x6b8b4567), "rb.0.102d.6b8b4567");
    }

    #[test]
    fn tmap_keys() {
        // `rados get rbd_directory` with format-1 image `a`
        let b = unhex("00000000010000000100000061000000" /* + value len 0 */);
        let mut b = b;
        b.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(decode_tmap_keys(&b).unwrap(), vec!["a".to_string()]);
        assert!(decode_tmap_keys(&[]).unwrap().is_empty());
        assert!(decode_tmap_keys(&b[..10]).is_err());
    }
}
