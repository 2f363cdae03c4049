//! MOSDOp v8, MOSDOpReply v8, MWatchNotify and MOSDBackoff codecs
//! (ceph: src/messages/MOSDOp.h, MOSDOpReply.h, MWatchNotify.h, MOSDBackoff.h).

use super::ops::{OpResult, OsdOp};
use crate::osdmap::PgId;
use bytes::Bytes;
use ceph_encoding::{Decode, DecodeError, Decoder, EncodeExt, UTime};
use ceph_msgr2::{DataSegment, Message, MsgHeader, MsgType};

/// `CEPH_NOSNAP`: the head of an object.
pub const NOSNAP: u64 = u64::MAX - 1;
/// `CEPH_SNAPDIR`: addresses the snapshot directory (LIST_SNAPS).
pub const SNAPDIR: u64 = u64::MAX;

/// Request flags (`CEPH_OSD_FLAG_*`).
pub mod flag {
    #![allow(missing_docs)]
    pub const ACK: u32 = 0x1;
    pub const ONDISK: u32 = 0x4;
    pub const RETRY: u32 = 0x8;
    pub const READ: u32 = 0x10;
    pub const WRITE: u32 = 0x20;
    pub const BALANCE_READS: u32 = 0x100;
    pub const PGOP: u32 = 0x400;
    pub const EXEC: u32 = 0x800;
    pub const LOCALIZE_READS: u32 = 0x2000;
    pub const IGNORE_OVERLAY: u32 = 0x20000;
    pub const REDIRECTED: u32 = 0x200000;
    pub const KNOWN_REDIR: u32 = 0x400000;
    pub const FULL_TRY: u32 = 0x800000;
    pub const FULL_FORCE: u32 = 0x1000000;
}

/// A snapshot context for writes: the newest snap id and all ids, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapContext {
    /// Sequence (highest snap id ever allocated for the image/pool).
    pub seq: u64,
    /// Existing snapshot ids, descending.
    pub snaps: Vec<u64>,
}

/// Everything needed to encode one attempt of a request.
#[derive(Debug, Clone)]
pub struct OsdOpRequest<'a> {
    /// Transaction id.
    pub tid: u64,
    /// Actual PG (after stable_mod).
    pub pgid: PgId,
    /// EC shard or -1.
    pub shard: i8,
    /// Raw 32-bit object hash.
    pub hash: u32,
    /// Epoch the target was computed with.
    pub epoch: u32,
    /// Flags.
    pub flags: u32,
    /// Our global id (reqid).
    pub global_id: u64,
    /// Modification time for writes.
    pub mtime: UTime,
    /// Pool of the object locator.
    pub pool: i64,
    /// Locator key.
    pub key: &'a str,
    /// Namespace.
    pub nspace: &'a str,
    /// Object name.
    pub oid: &'a str,
    /// The ops.
    pub ops: &'a [OsdOp],
    /// Snapshot to read (`NOSNAP` = head).
    pub snapid: u64,
    /// Write snap context.
    pub snapc: &'a SnapContext,
    /// Attempt number.
    pub attempt: i32,
    /// Our features.
    pub features: u64,
}

impl OsdOpRequest<'_> {
    /// Encode the MOSDOp (v8). The data segment is every op's input, in op order.
    pub fn encode(&self) -> Message {
        // the exact front size (171 fixed bytes, the strings, 38 per op header, 8 per
        // snap), so it is allocated once and never regrown, and becomes `Bytes` without
        // another allocation (a vector with room to spare needs a shared header)
        let mut p = Vec::with_capacity(
            171 + self.oid.len()
                + self.key.len()
                + self.nspace.len()
                + self.ops.len() * 38
                + self.snapc.snaps.len() * 8,
        );
        let cap = p.capacity();
        // spg_t
        let g = p.start_versioned(1, 1);
        p.put(&self.pgid);
        p.put_u8(self.shard as u8);
        g.finish(&mut p);
        p.put_u32(self.hash);
        p.put_u32(self.epoch);
        p.put_u32(self.flags);
        // osd_reqid_t
        let g = p.start_versioned(2, 2);
        p.put_u8(8); // CEPH_ENTITY_TYPE_CLIENT
        p.put_u64(self.global_id);
        p.put_u64(self.tid);
        p.put_i32(0);
        g.finish(&mut p);
        p.put_raw(&[0u8; 24]); // blkin trace
        p.put_u32(0); // client_inc
        p.put(&self.mtime);
        // object_locator_t
        let g = p.start_versioned(6, 3);
        p.put_i64(self.pool);
        p.put_i32(-1);
        p.put_str(self.key);
        p.put_str(self.nspace);
        p.put_i64(-1);
        g.finish(&mut p);
        p.put_str(self.oid);
        p.put_u16(self.ops.len() as u16);
        for op in self.ops {
            op.encode_header(&mut p);
        }
        p.put_u64(self.snapid);
        p.put_u64(self.snapc.seq);
        p.put_u32(self.snapc.snaps.len() as u32);
        for s in &self.snapc.snaps {
            p.put_u64(*s);
        }
        p.put_i32(self.attempt);
        p.put_u64(self.features);
        debug_assert_eq!(p.len(), cap, "MOSDOp front against its computed size");
        // The ops' payloads back to back, as pieces: a run of merged writes goes to the
        // socket without being joined.
        let mut data = DataSegment::new();
        for o in self.ops {
            data.extend_from(&o.indata);
        }
        let mut h = MsgHeader::new(MsgType::OSD_OP, 8, 3);
        h.tid = self.tid;
        h.priority = 63;
        Message::new(h, p).with_data(data)
    }
}

/// A decoded MOSDOpReply.
#[derive(Debug, Clone)]
pub struct OsdOpReply {
    /// Transaction id (from the header).
    pub tid: u64,
    /// Object name.
    pub oid: String,
    /// PG.
    pub pgid: PgId,
    /// Flags.
    pub flags: u64,
    /// Overall result.
    pub result: i32,
    /// The OSD's map epoch.
    pub epoch: u32,
    /// Attempt this answers.
    pub attempt: i32,
    /// Per-op results.
    pub ops: Vec<OpResult>,
    /// Object version after the op.
    pub user_version: u64,
    /// Redirect target (pool, object), when the OSD redirects us (cache tiering).
    pub redirect: Option<(i64, String)>,
}

impl OsdOpReply {
    /// Decode an MOSDOpReply message.
    pub fn decode(m: &Message) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(&m.front);
        let oid = d.string()?;
        let pgid = PgId::decode(&mut d)?;
        let flags = d.u64()?;
        let result = d.i32()?;
        d.skip(12, "bad_replay_version")?;
        let epoch = d.u32()?;
        let n = d.count(38, "reply ops")?;
        // the ops (their outdata lengths) and, after the attempt, their return values:
        // kept as slices and paired below, no vectors of their own (a reply per op)
        let op_block = d.take(38 * n, "ceph_osd_op")?;
        let attempt = d.i32()?;
        let rval_block = d.take(4 * n, "reply op rvals")?;
        d.skip(12, "replay_version")?;
        let user_version = d.u64()?;
        let mut redirect = None;
        if d.remaining() > 0 && d.bool()? {
            let (_v, mut r) = d.versioned(1, "request_redirect_t")?;
            let (_lv, mut loc) = r.versioned(6, "object_locator_t")?;
            let pool = loc.i64()?;
            let obj = r.string()?;
            redirect = Some((pool, obj));
        }
        let mut ops = Vec::with_capacity(n);
        let mut off = 0usize;
        // one piece as received: shared, not copied
        let data = m.data.to_bytes();
        for (i, (op, rv)) in op_block
            .chunks_exact(38)
            .zip(rval_block.chunks_exact(4))
            .enumerate()
        {
            let len = u32::from_le_bytes([op[34], op[35], op[36], op[37]]) as usize;
            let end = off
                .checked_add(len)
                .filter(|e| *e <= data.len())
                .ok_or_else(|| {
                    DecodeError::invalid(
                        "MOSDOpReply",
                        format!("op {i} outdata beyond data segment"),
                    )
                })?;
            ops.push(OpResult {
                rval: i32::from_le_bytes([rv[0], rv[1], rv[2], rv[3]]),
                outdata: data.slice(off..end),
            });
            off = end;
        }
        Ok(OsdOpReply {
            tid: m.header.tid,
            oid,
            pgid,
            flags,
            result,
            epoch,
            attempt,
            ops,
            user_version,
            redirect,
        })
    }
}

/// Watch event opcodes (`CEPH_WATCH_EVENT_*`).
pub mod watch_event {
    #![allow(missing_docs)]
    pub const NOTIFY: u8 = 1;
    pub const NOTIFY_COMPLETE: u8 = 2;
    pub const DISCONNECT: u8 = 3;
}

/// MWatchNotify.
#[derive(Debug, Clone)]
pub struct WatchNotify {
    /// Event opcode.
    pub opcode: u8,
    /// Watch cookie (NOTIFY/DISCONNECT) or notify cookie (NOTIFY_COMPLETE).
    pub cookie: u64,
    /// Object version.
    pub ver: u64,
    /// Notify id (to ack).
    pub notify_id: u64,
    /// Payload.
    pub payload: Bytes,
    /// Result (NOTIFY_COMPLETE).
    pub return_code: i32,
    /// Who notified.
    pub notifier_gid: u64,
    /// The message's data segment (NOTIFY_COMPLETE carries the ack map there).
    pub data: Bytes,
}

impl WatchNotify {
    /// Decode.
    pub fn decode(m: &Message) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(&m.front);
        let msg_ver = d.u8()?;
        let opcode = d.u8()?;
        let cookie = d.u64()?;
        let ver = d.u64()?;
        let notify_id = d.u64()?;
        let payload = if msg_ver >= 1 {
            m.front.slice_ref(d.blob("notify payload")?)
        } else {
            Bytes::new()
        };
        let return_code = if m.header.version >= 2 { d.i32()? } else { 0 };
        let notifier_gid = if m.header.version >= 3 { d.u64()? } else { 0 };
        Ok(WatchNotify {
            opcode,
            cookie,
            ver,
            notify_id,
            payload,
            return_code,
            notifier_gid,
            data: m.data.to_bytes(),
        })
    }
}

/// MOSDBackoff ops.
pub mod backoff_op {
    #![allow(missing_docs)]
    pub const BLOCK: u8 = 1;
    pub const ACK_BLOCK: u8 = 2;
    pub const UNBLOCK: u8 = 3;
}

/// MOSDBackoff (the hobject range is kept as raw bytes to echo it in the ack).
#[derive(Debug, Clone)]
pub struct Backoff {
    /// PG.
    pub pgid: PgId,
    /// Shard.
    pub shard: i8,
    /// Epoch.
    pub epoch: u32,
    /// Op.
    pub op: u8,
    /// Backoff id.
    pub id: u64,
    /// Encoded begin and end hobject_t.
    pub range: Bytes,
}

impl Backoff {
    /// Decode.
    pub fn decode(m: &Message) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(&m.front);
        let (_v, mut s) = d.versioned(1, "spg_t")?;
        let pgid = PgId::decode(&mut s)?;
        let shard = s.i8()?;
        let epoch = d.u32()?;
        let op = d.u8()?;
        let id = d.u64()?;
        let range = m.front.slice_ref(d.rest());
        Ok(Backoff {
            pgid,
            shard,
            epoch,
            op,
            id,
            range,
        })
    }

    /// The ACK_BLOCK answer.
    pub fn ack(&self, epoch: u32) -> Message {
        let mut p = Vec::new();
        let g = p.start_versioned(1, 1);
        p.put(&self.pgid);
        p.put_u8(self.shard as u8);
        g.finish(&mut p);
        p.put_u32(epoch);
        p.put_u8(backoff_op::ACK_BLOCK);
        p.put_u64(self.id);
        p.put_raw(&self.range);
        Message::new(MsgHeader::new(MsgType::OSD_BACKOFF, 1, 1), p)
    }
}

/// Encode a default `hobject_t()` (v4): the cursor that starts a PG listing, as librados
/// sends it (empty names, snap 0, hash 0, not max, pool `INT64_MIN`).
pub fn encode_start_cursor(out: &mut Vec<u8>) {
    let g = out.start_versioned(4, 3);
    out.put_str(""); // key
    out.put_str(""); // oid
    out.put_u64(0); // snap
    out.put_u32(0); // hash
    out.put_bool(false); // max
    out.put_str(""); // nspace
    out.put_i64(i64::MIN); // pool
    g.finish(out);
}

/// A listing entry: namespace, object name, locator key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListEntry {
    /// Namespace.
    pub nspace: String,
    /// Object name.
    pub oid: String,
    /// Locator key.
    pub locator: String,
}

/// Decode `pg_nls_response_t`: next cursor (raw hobject bytes), whether it is the max
/// (PG exhausted), and the entries.
pub fn decode_pgnls(b: &[u8]) -> Result<(Vec<u8>, bool, Vec<ListEntry>), DecodeError> {
    let mut d = Decoder::new(b);
    let (_v, mut s) = d.versioned(1, "pg_nls_response_t")?;
    let start = s.position();
    let (_hv, mut h) = s.versioned(4, "hobject_t")?;
    let handle = s.buffer()[start..s.position()].to_vec();
    let _key = h.string()?;
    let _oid = h.string()?;
    let _snap = h.u64()?;
    let _hash = h.u32()?;
    let max = h.bool()?;
    let entries = s.vec_with(12, "pg_nls entries", |d| {
        Ok(ListEntry {
            nspace: d.string()?,
            oid: d.string()?,
            locator: d.string()?,
        })
    })?;
    Ok((handle, max, entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osd::ops::OsdOp;
    use crate::osdmap::PgId;

    /// The front is allocated at its computed size (so it becomes `Bytes` without a
    /// shared header): names of every length, several ops, a snap context.
    #[test]
    fn mosdop_front_has_its_computed_size() {
        let snapcs = [
            SnapContext::default(),
            SnapContext {
                seq: 9,
                snaps: vec![9, 7, 3],
            },
        ];
        let ops = [
            vec![OsdOp::read(0, 4096)],
            vec![OsdOp::stat(), OsdOp::read(8, 8)],
            vec![
                OsdOp::call("rbd", "get_size", &[1, 2, 3]),
                OsdOp::write(0, Bytes::from_static(b"abc")),
            ],
        ];
        for (oid, key, nspace) in [
            ("o", "", ""),
            ("rbd_data.12ab.0000000000000001", "k", "ns1"),
        ] {
            for snapc in &snapcs {
                for ops in &ops {
                    let m = OsdOpRequest {
                        tid: 5,
                        pgid: PgId { pool: 3, seed: 7 },
                        shard: -1,
                        hash: 0x1234,
                        epoch: 40,
                        flags: 0,
                        global_id: 4100,
                        mtime: UTime::default(),
                        pool: 3,
                        key,
                        nspace,
                        oid,
                        ops,
                        snapid: NOSNAP,
                        snapc,
                        attempt: 0,
                        features: 0,
                    }
                    .encode();
                    let want = 171
                        + oid.len()
                        + key.len()
                        + nspace.len()
                        + 38 * ops.len()
                        + 8 * snapc.snaps.len();
                    assert_eq!(
                        m.front.len(),
                        want,
                        "{oid} {key} {nspace} {snapc:?} {ops:?}"
                    );
                }
            }
        }
    }
}
