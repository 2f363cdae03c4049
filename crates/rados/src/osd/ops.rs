//! OSD operations: the 38-byte `ceph_osd_op` and its input payloads, one builder per op
//! (ceph: src/include/rados.h, src/osdc/Objecter.h ObjectOperation; kernel:
//! net/ceph/osd_client.c osd_req_encode_op).

use bytes::Bytes;
use ceph_encoding::{Decode, DecodeError, Decoder, EncodeExt, EntityAddr, EntityNameT, UTime};
use ceph_msgr2::DataSegment;
use std::collections::{BTreeMap, BTreeSet};

/// Op codes (`CEPH_OSD_OP_*`).
pub mod code {
    #![allow(missing_docs)]
    pub const READ: u16 = 0x1201;
    pub const STAT: u16 = 0x1202;
    pub const SPARSE_READ: u16 = 0x1205;
    pub const NOTIFY: u16 = 0x1206;
    pub const NOTIFY_ACK: u16 = 0x1207;
    pub const ASSERT_VER: u16 = 0x1208;
    pub const LIST_WATCHERS: u16 = 0x1209;
    pub const LIST_SNAPS: u16 = 0x120a;
    pub const OMAPGETKEYS: u16 = 0x1211;
    pub const OMAPGETVALS: u16 = 0x1212;
    pub const OMAPGETHEADER: u16 = 0x1213;
    pub const OMAPGETVALSBYKEYS: u16 = 0x1214;
    pub const CMPEXT: u16 = 0x1220;
    pub const WRITE: u16 = 0x2201;
    pub const WRITEFULL: u16 = 0x2202;
    pub const TRUNCATE: u16 = 0x2203;
    pub const ZERO: u16 = 0x2204;
    pub const DELETE: u16 = 0x2205;
    pub const APPEND: u16 = 0x2206;
    pub const CREATE: u16 = 0x220d;
    pub const ROLLBACK: u16 = 0x220e;
    pub const TMAPUP: u16 = 0x320a;
    pub const WATCH: u16 = 0x220f;
    pub const OMAPSETVALS: u16 = 0x2215;
    pub const OMAPSETHEADER: u16 = 0x2216;
    pub const OMAPCLEAR: u16 = 0x2217;
    pub const OMAPRMKEYS: u16 = 0x2218;
    pub const SETALLOCHINT: u16 = 0x2223;
    pub const GETXATTR: u16 = 0x1301;
    pub const GETXATTRS: u16 = 0x1302;
    pub const SETXATTR: u16 = 0x2301;
    pub const RMXATTR: u16 = 0x2304;
    pub const CALL: u16 = 0x1401;
    pub const PGNLS: u16 = 0x1505;
}

/// Per-op flags (`CEPH_OSD_OP_FLAG_*`).
pub mod op_flag {
    #![allow(missing_docs)]
    pub const EXCL: u32 = 0x1;
    pub const FAILOK: u32 = 0x2;
}

/// Watch sub-ops (`CEPH_OSD_WATCH_OP_*`).
pub mod watch_op {
    #![allow(missing_docs)]
    pub const UNWATCH: u8 = 0;
    pub const WATCH: u8 = 3;
    pub const RECONNECT: u8 = 5;
    pub const PING: u8 = 7;
}

const MODE_RD: u16 = 0x1000;
const MODE_WR: u16 = 0x2000;

/// One operation of a request: op code, flags, the 28-byte union, and its input payload.
#[derive(Clone, PartialEq, Eq)]
pub struct OsdOp {
    /// Op code.
    pub op: u16,
    /// Per-op flags.
    pub flags: u32,
    /// The union part of `ceph_osd_op`, already encoded.
    pub args: [u8; 28],
    /// Input payload (goes into the request's data segment). In pieces when a write's
    /// data is (merged writes), so nobody joins them before the socket.
    pub indata: DataSegment,
}

impl std::fmt::Debug for OsdOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OsdOp({:#06x}, in {} bytes)", self.op, self.indata.len())
    }
}

fn extent_args(off: u64, len: u64, trunc_size: u64, trunc_seq: u32) -> [u8; 28] {
    let mut a = [0u8; 28];
    a[0..8].copy_from_slice(&off.to_le_bytes());
    a[8..16].copy_from_slice(&len.to_le_bytes());
    a[16..24].copy_from_slice(&trunc_size.to_le_bytes());
    a[24..28].copy_from_slice(&trunc_seq.to_le_bytes());
    a
}

impl OsdOp {
    fn new(op: u16, args: [u8; 28], indata: impl Into<DataSegment>) -> Self {
        OsdOp {
            op,
            flags: 0,
            args,
            indata: indata.into(),
        }
    }

    /// Whether the op reads.
    pub fn is_read(&self) -> bool {
        self.op & MODE_RD != 0
    }

    /// Whether the op writes.
    pub fn is_write(&self) -> bool {
        self.op & MODE_WR != 0
    }

    /// With per-op flags added.
    pub fn with_flags(mut self, f: u32) -> Self {
        self.flags |= f;
        self
    }

    /// Encode the 38-byte `ceph_osd_op`.
    pub fn encode_header(&self, out: &mut Vec<u8>) {
        out.put_u16(self.op);
        out.put_u32(self.flags);
        out.put_raw(&self.args);
        out.put_u32(self.indata.len() as u32);
    }

    /// READ `len` bytes at `off` (len 0 = to the end).
    pub fn read(off: u64, len: u64) -> Self {
        Self::new(code::READ, extent_args(off, len, 0, 0), Bytes::new())
    }
    /// SPARSE_READ: extents map plus data.
    pub fn sparse_read(off: u64, len: u64) -> Self {
        Self::new(code::SPARSE_READ, extent_args(off, len, 0, 0), Bytes::new())
    }
    /// STAT: size and mtime; also serves as "assert exists" (fails with ENOENT).
    pub fn stat() -> Self {
        Self::new(code::STAT, [0; 28], Bytes::new())
    }
    /// WRITE `data` at `off`: one buffer, or pieces written back to back.
    pub fn write(off: u64, data: impl Into<DataSegment>) -> Self {
        let data = data.into();
        Self::new(code::WRITE, extent_args(off, data.len() as u64, 0, 0), data)
    }
    /// WRITEFULL: replace the object's contents.
    pub fn write_full(data: Bytes) -> Self {
        Self::new(
            code::WRITEFULL,
            extent_args(0, data.len() as u64, 0, 0),
            data,
        )
    }
    /// APPEND.
    pub fn append(data: Bytes) -> Self {
        Self::new(code::APPEND, extent_args(0, data.len() as u64, 0, 0), data)
    }
    /// TRUNCATE to `size`.
    pub fn truncate(size: u64) -> Self {
        Self::new(code::TRUNCATE, extent_args(size, 0, 0, 0), Bytes::new())
    }
    /// ZERO a range (punches a hole).
    pub fn zero(off: u64, len: u64) -> Self {
        Self::new(code::ZERO, extent_args(off, len, 0, 0), Bytes::new())
    }
    /// DELETE the object.
    pub fn delete() -> Self {
        Self::new(code::DELETE, [0; 28], Bytes::new())
    }
    /// CREATE, exclusive or not.
    pub fn create(exclusive: bool) -> Self {
        let o = Self::new(code::CREATE, [0; 28], Bytes::new());
        if exclusive {
            o.with_flags(op_flag::EXCL)
        } else {
            o
        }
    }
    /// TMAPUP: apply TMAP commands to the key/value map kept in an object's data
    /// (what format-1 RBD images use for `rbd_directory`; `cmds` is a sequence of
    /// `CEPH_OSD_TMAP_SET` / `_RM` records, see ceph's `do_tmapup`).
    pub fn tmap_update(cmds: Bytes) -> Self {
        Self::new(code::TMAPUP, extent_args(0, cmds.len() as u64, 0, 0), cmds)
    }
    /// ROLLBACK the head to a snapshot.
    pub fn rollback(snapid: u64) -> Self {
        let mut a = [0u8; 28];
        a[0..8].copy_from_slice(&snapid.to_le_bytes());
        Self::new(code::ROLLBACK, a, Bytes::new())
    }
    /// CMPEXT: compare `data` with the object at `off` (fails with -MAX_ERRNO-offset).
    pub fn cmpext(off: u64, data: Bytes) -> Self {
        Self::new(
            code::CMPEXT,
            extent_args(off, data.len() as u64, 0, 0),
            data,
        )
    }
    /// SETALLOCHINT.
    pub fn set_alloc_hint(object_size: u64, write_size: u64, flags: u32) -> Self {
        let mut a = [0u8; 28];
        a[0..8].copy_from_slice(&object_size.to_le_bytes());
        a[8..16].copy_from_slice(&write_size.to_le_bytes());
        a[16..20].copy_from_slice(&flags.to_le_bytes());
        Self::new(code::SETALLOCHINT, a, Bytes::new())
    }

    fn xattr_args(name_len: usize, value_len: usize) -> [u8; 28] {
        let mut a = [0u8; 28];
        a[0..4].copy_from_slice(&(name_len as u32).to_le_bytes());
        a[4..8].copy_from_slice(&(value_len as u32).to_le_bytes());
        a
    }
    /// GETXATTR.
    pub fn getxattr(name: &str) -> Self {
        Self::new(
            code::GETXATTR,
            Self::xattr_args(name.len(), 0),
            Bytes::copy_from_slice(name.as_bytes()),
        )
    }
    /// SETXATTR.
    pub fn setxattr(name: &str, value: &[u8]) -> Self {
        let mut d = Vec::with_capacity(name.len() + value.len());
        d.extend_from_slice(name.as_bytes());
        d.extend_from_slice(value);
        Self::new(code::SETXATTR, Self::xattr_args(name.len(), value.len()), d)
    }
    /// RMXATTR.
    pub fn rmxattr(name: &str) -> Self {
        Self::new(
            code::RMXATTR,
            Self::xattr_args(name.len(), 0),
            Bytes::copy_from_slice(name.as_bytes()),
        )
    }
    /// GETXATTRS: all xattrs as `map<str, bl>`.
    pub fn getxattrs() -> Self {
        Self::new(code::GETXATTRS, [0; 28], Bytes::new())
    }

    fn with_payload(op: u16, p: Vec<u8>) -> Self {
        // librados also sets extent.length to the payload size for omap ops.
        let len = p.len() as u64;
        Self::new(op, extent_args(0, len, 0, 0), p)
    }
    /// OMAPGETKEYS.
    pub fn omap_get_keys(start_after: &str, max: u64) -> Self {
        let mut p = Vec::new();
        p.put_str(start_after);
        p.put_u64(max);
        Self::with_payload(code::OMAPGETKEYS, p)
    }
    /// OMAPGETVALS.
    pub fn omap_get_vals(start_after: &str, prefix: &str, max: u64) -> Self {
        let mut p = Vec::new();
        p.put_str(start_after);
        p.put_u64(max);
        p.put_str(prefix);
        Self::with_payload(code::OMAPGETVALS, p)
    }
    /// OMAPGETVALSBYKEYS.
    pub fn omap_get_vals_by_keys(keys: &BTreeSet<String>) -> Self {
        let mut p = Vec::new();
        p.put(keys);
        Self::with_payload(code::OMAPGETVALSBYKEYS, p)
    }
    /// OMAPGETHEADER.
    pub fn omap_get_header() -> Self {
        Self::new(code::OMAPGETHEADER, [0; 28], Bytes::new())
    }
    /// OMAPSETVALS.
    pub fn omap_set(kv: &BTreeMap<String, Bytes>) -> Self {
        let mut p = Vec::new();
        p.put_u32(kv.len() as u32);
        for (k, v) in kv {
            p.put_str(k);
            p.put_blob(v);
        }
        Self::with_payload(code::OMAPSETVALS, p)
    }
    /// OMAPSETHEADER.
    pub fn omap_set_header(h: Bytes) -> Self {
        Self::with_payload(code::OMAPSETHEADER, h.to_vec())
    }
    /// OMAPRMKEYS.
    pub fn omap_rm_keys(keys: &BTreeSet<String>) -> Self {
        let mut p = Vec::new();
        p.put(keys);
        Self::with_payload(code::OMAPRMKEYS, p)
    }
    /// OMAPCLEAR.
    pub fn omap_clear() -> Self {
        Self::new(code::OMAPCLEAR, [0; 28], Bytes::new())
    }
    /// CALL a class method.
    pub fn call(class: &str, method: &str, input: &[u8]) -> Self {
        let mut a = [0u8; 28];
        a[0] = class.len() as u8;
        a[1] = method.len() as u8;
        a[2] = 0;
        a[3..7].copy_from_slice(&(input.len() as u32).to_le_bytes());
        let mut d = Vec::with_capacity(class.len() + method.len() + input.len());
        d.extend_from_slice(class.as_bytes());
        d.extend_from_slice(method.as_bytes());
        d.extend_from_slice(input);
        Self::new(code::CALL, a, d)
    }
    /// WATCH sub-op.
    pub fn watch(cookie: u64, op: u8, gen: u32, timeout: u32) -> Self {
        let mut a = [0u8; 28];
        a[0..8].copy_from_slice(&cookie.to_le_bytes());
        // a[8..16] ver (unused)
        a[16] = op;
        a[17..21].copy_from_slice(&gen.to_le_bytes());
        a[21..25].copy_from_slice(&timeout.to_le_bytes());
        Self::new(code::WATCH, a, Bytes::new())
    }
    /// NOTIFY with a payload; the OSD answers with a notify id, completion comes later.
    pub fn notify(cookie: u64, timeout_secs: u32, payload: &[u8]) -> Self {
        let mut a = [0u8; 28];
        a[0..8].copy_from_slice(&cookie.to_le_bytes());
        let mut p = Vec::new();
        p.put_u32(1); // prot_ver
        p.put_u32(timeout_secs);
        p.put_blob(payload);
        Self::new(code::NOTIFY, a, p)
    }
    /// NOTIFY_ACK.
    pub fn notify_ack(notify_id: u64, cookie: u64, reply: &[u8]) -> Self {
        let mut p = Vec::new();
        p.put_u64(notify_id);
        p.put_u64(cookie);
        p.put_blob(reply);
        Self::with_payload(code::NOTIFY_ACK, p)
    }
    /// LIST_WATCHERS.
    pub fn list_watchers() -> Self {
        Self::new(code::LIST_WATCHERS, [0; 28], Bytes::new())
    }
    /// LIST_SNAPS (send with snapid = SNAPDIR).
    pub fn list_snaps() -> Self {
        Self::new(code::LIST_SNAPS, [0; 28], Bytes::new())
    }
    /// PGNLS: list up to `max` objects of a PG from `cursor` (an encoded hobject_t).
    pub fn pgnls(max: u64, start_epoch: u32, cursor: Vec<u8>) -> Self {
        let mut a = [0u8; 28];
        a[0..8].copy_from_slice(&max.to_le_bytes());
        a[8..12].copy_from_slice(&start_epoch.to_le_bytes());
        Self::new(code::PGNLS, a, cursor)
    }
}

/// The result of one op in a reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpResult {
    /// 0 or a negative errno.
    pub rval: i32,
    /// Output bytes.
    pub outdata: Bytes,
}

/// Decode the output of STAT: size and mtime.
pub fn decode_stat(b: &[u8]) -> Result<(u64, UTime), DecodeError> {
    let mut d = Decoder::new(b);
    Ok((d.u64()?, UTime::decode(&mut d)?))
}

/// Decode SPARSE_READ output: extents and the concatenated data.
pub fn decode_sparse_read(b: &Bytes) -> Result<(Vec<(u64, u64)>, Bytes), DecodeError> {
    let mut d = Decoder::new(b);
    let n = d.count(16, "sparse extents")?;
    let mut ext = Vec::with_capacity(n);
    for _ in 0..n {
        ext.push((d.u64()?, d.u64()?));
    }
    let data = d.blob("sparse data")?;
    Ok((ext, b.slice_ref(data)))
}

/// Decode an OMAPGETKEYS reply: keys and whether more remain.
pub fn decode_omap_keys(b: &[u8]) -> Result<(Vec<String>, bool), DecodeError> {
    let mut d = Decoder::new(b);
    let keys = d.vec::<String>(4, "omap keys")?;
    let more = if d.remaining() > 0 { d.bool()? } else { false };
    Ok((keys, more))
}

/// Decode an OMAPGETVALS / GETXATTRS style `map<str, bl>` (+ optional `more` flag).
pub fn decode_omap_vals(b: &Bytes) -> Result<(BTreeMap<String, Bytes>, bool), DecodeError> {
    let mut d = Decoder::new(b);
    let n = d.count(8, "omap vals")?;
    let mut m = BTreeMap::new();
    for _ in 0..n {
        let k = d.string()?;
        let v = d.blob("omap value")?;
        m.insert(k, b.slice_ref(v));
    }
    let more = if d.remaining() > 0 { d.bool()? } else { false };
    Ok((m, more))
}

/// A watcher as LIST_WATCHERS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchItem {
    /// Watcher entity (`client.4123`).
    pub name: EntityNameT,
    /// Its watch cookie.
    pub cookie: u64,
    /// Timeout in seconds.
    pub timeout_seconds: u32,
    /// Its address.
    pub addr: EntityAddr,
}

/// Decode `obj_list_watch_response_t`.
pub fn decode_watchers(b: &[u8]) -> Result<Vec<WatchItem>, DecodeError> {
    let mut d = Decoder::new(b);
    let (_v, mut s) = d.versioned(1, "obj_list_watch_response_t")?;
    s.vec_with(6, "watchers", |d| {
        let (v, mut w) = d.versioned(2, "watch_item_t")?;
        let name = EntityNameT::decode(&mut w)?;
        let cookie = w.u64()?;
        let timeout_seconds = w.u32()?;
        let addr = if v >= 2 {
            EntityAddr::decode(&mut w)?
        } else {
            EntityAddr::default()
        };
        Ok(WatchItem {
            name,
            cookie,
            timeout_seconds,
            addr,
        })
    })
}

/// One clone of an object, from LIST_SNAPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneInfo {
    /// Clone id (`CEPH_NOSNAP` for the head).
    pub cloneid: u64,
    /// Snapshots this clone covers.
    pub snaps: Vec<u64>,
    /// Extents shared with the next newer clone (or head).
    pub overlap: Vec<(u64, u64)>,
    /// Size.
    pub size: u64,
}

/// Decode `obj_list_snap_response_t`: clones and the seq.
pub fn decode_list_snaps(b: &[u8]) -> Result<(Vec<CloneInfo>, u64), DecodeError> {
    let mut d = Decoder::new(b);
    let (v, mut s) = d.versioned(2, "obj_list_snap_response_t")?;
    let clones = s.vec_with(8, "clones", |d| {
        let (_v, mut c) = d.versioned(1, "clone_info")?;
        let cloneid = c.u64()?;
        let snaps = c.vec::<u64>(8, "snaps")?;
        let overlap = c.vec_with(16, "overlap", |d| Ok((d.u64()?, d.u64()?)))?;
        let size = c.u64()?;
        Ok(CloneInfo {
            cloneid,
            snaps,
            overlap,
            size,
        })
    })?;
    let seq = if v >= 2 { s.u64()? } else { 0 };
    Ok((clones, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_header_is_38_bytes() {
        let mut v = Vec::new();
        OsdOp::write(4096, Bytes::from_static(b"abc")).encode_header(&mut v);
        assert_eq!(v.len(), 38);
        assert_eq!(&v[0..2], &code::WRITE.to_le_bytes());
        assert_eq!(&v[6..14], &4096u64.to_le_bytes());
        assert_eq!(&v[14..22], &3u64.to_le_bytes());
        assert_eq!(&v[34..38], &3u32.to_le_bytes());
    }

    #[test]
    fn call_layout() {
        let op = OsdOp::call("rbd", "get_id", b"xy");
        assert_eq!(op.args[0], 3);
        assert_eq!(op.args[1], 6);
        assert_eq!(&op.args[3..7], &2u32.to_le_bytes());
        assert_eq!(op.indata.to_bytes(), &b"rbdget_idxy"[..]);
        assert!(op.is_read() && !op.is_write());
    }

    #[test]
    fn omap_vals_decode_roundtrip() {
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), Bytes::from_static(b"1"));
        m.insert("b".to_string(), Bytes::from_static(b"22"));
        let op = OsdOp::omap_set(&m);
        let mut raw = op.indata.to_bytes().to_vec();
        raw.push(1);
        let (back, more) = decode_omap_vals(&Bytes::from(raw)).unwrap();
        assert_eq!(back, m);
        assert!(more);
    }
}
