//! Monitor-facing messages (ceph: src/messages/M*.h; kernel: net/ceph/mon_client.c).

use bytes::Bytes;
use ceph_encoding::{Decode, DecodeError, Decoder, EncodeExt, Uuid};
use ceph_msgr2::{Message, MsgHeader, MsgType};
use std::collections::BTreeMap;

/// `PaxosServiceMessage` header: version, deprecated session mon (-1), its tid (0).
fn paxos_header(out: &mut Vec<u8>, version: u64) {
    out.put_u64(version);
    out.put_u16(-1i16 as u16);
    out.put_u64(0);
}

fn skip_paxos_header(d: &mut Decoder<'_>) -> Result<u64, DecodeError> {
    let v = d.u64()?;
    d.i16()?;
    d.u64()?;
    Ok(v)
}

/// One subscription: start epoch and flags (ONETIME = 1).
#[derive(Debug, Clone, Copy)]
pub struct SubItem {
    /// First epoch wanted (0 = latest full map for osdmap).
    pub start: u64,
    /// `CEPH_SUBSCRIBE_ONETIME` etc.
    pub flags: u8,
}

/// MMonSubscribe (type 15, v3).
pub fn mon_subscribe(what: &BTreeMap<String, SubItem>) -> Message {
    let mut p = Vec::new();
    p.put_u32(what.len() as u32);
    for (k, v) in what {
        p.put_str(k);
        p.put_u64(v.start);
        p.put_u8(v.flags);
    }
    p.put_str(""); // hostname
    Message::new(MsgHeader::new(MsgType::MON_SUBSCRIBE, 3, 1), p)
}

/// MMonCommand (type 50).
pub fn mon_command(tid: u64, fsid: Uuid, cmd: &[String], input: Bytes) -> Message {
    let mut p = Vec::new();
    paxos_header(&mut p, 0);
    p.put(&fsid);
    p.put_u32(cmd.len() as u32);
    for c in cmd {
        p.put_str(c);
    }
    let mut h = MsgHeader::new(MsgType::MON_COMMAND, 1, 0);
    h.tid = tid;
    Message::new(h, p).with_data(input)
}

/// MMonCommandAck (type 51).
#[derive(Debug, Clone)]
pub struct MonCommandAck {
    /// 0 or -errno.
    pub r: i32,
    /// Status string.
    pub rs: String,
}

impl MonCommandAck {
    /// Decode the front.
    pub fn decode(front: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(front);
        skip_paxos_header(&mut d)?;
        let r = d.i32()?;
        let rs = d.string()?;
        Ok(MonCommandAck { r, rs })
    }
}

/// MMonGetVersion (type 19).
pub fn mon_get_version(handle: u64, what: &str) -> Message {
    let mut p = Vec::new();
    p.put_u64(handle);
    p.put_str(what);
    let mut h = MsgHeader::new(MsgType::MON_GET_VERSION, 1, 0);
    h.tid = handle;
    Message::new(h, p)
}

/// MMonGetVersionReply: (handle, newest, oldest).
pub fn decode_get_version_reply(front: &[u8]) -> Result<(u64, u64, u64), DecodeError> {
    let mut d = Decoder::new(front);
    let handle = d.u64()?;
    let newest = d.u64()?;
    let oldest = if d.remaining() >= 8 { d.u64()? } else { 0 };
    Ok((handle, newest, oldest))
}

/// Pool op codes (`POOL_OP_*`, rados.h).
pub mod pool_op {
    #![allow(missing_docs)]
    pub const CREATE: u32 = 0x01;
    pub const DELETE: u32 = 0x02;
    pub const CREATE_SNAP: u32 = 0x11;
    pub const DELETE_SNAP: u32 = 0x12;
    pub const CREATE_UNMANAGED_SNAP: u32 = 0x21;
    pub const DELETE_UNMANAGED_SNAP: u32 = 0x22;
}

/// MPoolOp (type 49, v4 compat 2).
pub fn pool_op_msg(
    tid: u64,
    fsid: Uuid,
    pool: u32,
    op: u32,
    snapid: u64,
    name: &str,
    version: u64,
) -> Message {
    let mut p = Vec::new();
    paxos_header(&mut p, version);
    p.put(&fsid);
    p.put_u32(pool);
    p.put_u32(op);
    p.put_u64(0); // auid, obsolete
    p.put_u64(snapid);
    p.put_str(name);
    p.put_u8(0); // pad
    p.put_u16(-1i16 as u16); // crush_rule: default
    let mut h = MsgHeader::new(MsgType::POOLOP, 4, 2);
    h.tid = tid;
    Message::new(h, p)
}

/// MPoolOpReply.
#[derive(Debug, Clone)]
pub struct PoolOpReply {
    /// 0 or -errno.
    pub code: i32,
    /// OSDMap epoch containing the change.
    pub epoch: u32,
    /// Response payload (an encoded snap id for CREATE_UNMANAGED_SNAP).
    pub data: Option<Vec<u8>>,
}

impl PoolOpReply {
    /// Decode the front.
    pub fn decode(front: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(front);
        skip_paxos_header(&mut d)?;
        let _fsid = Uuid::decode(&mut d)?;
        let code = d.u32()? as i32;
        let epoch = d.u32()?;
        let data = if d.remaining() > 0 && d.bool()? {
            Some(d.blob("response_data")?.to_vec())
        } else {
            None
        };
        Ok(PoolOpReply { code, epoch, data })
    }
}

/// MAuth (type 17) carrying a cephx request over an established session.
pub fn mauth(payload: &[u8], monmap_epoch: u32) -> Message {
    let mut p = Vec::new();
    paxos_header(&mut p, 0);
    p.put_u32(2); // CEPH_AUTH_CEPHX
    p.put_blob(payload);
    p.put_u32(monmap_epoch);
    Message::new(MsgHeader::new(MsgType::AUTH, 1, 0), p)
}

/// MAuthReply (type 18).
#[derive(Debug, Clone)]
pub struct AuthReply {
    /// Protocol.
    pub protocol: u32,
    /// 0 or -errno.
    pub result: i32,
    /// Our global id.
    pub global_id: u64,
    /// The cephx response.
    pub payload: Vec<u8>,
    /// Message text.
    pub msg: String,
}

impl AuthReply {
    /// Decode the front.
    pub fn decode(front: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(front);
        let protocol = d.u32()?;
        let result = d.i32()?;
        let global_id = d.u64()?;
        let payload = d.blob("result_bl")?.to_vec();
        let msg = if d.remaining() > 0 {
            d.string()?
        } else {
            String::new()
        };
        Ok(AuthReply {
            protocol,
            result,
            global_id,
            payload,
            msg,
        })
    }
}

/// MOSDMap (type 41): incremental and full maps keyed by epoch.
#[derive(Debug, Clone, Default)]
pub struct OsdMapMsg {
    /// Cluster fsid.
    pub fsid: Uuid,
    /// Incremental maps.
    pub incrementals: BTreeMap<u32, Bytes>,
    /// Full maps.
    pub fulls: BTreeMap<u32, Bytes>,
    /// Oldest map the sender has.
    pub oldest: u32,
    /// Newest map the sender has.
    pub newest: u32,
}

impl OsdMapMsg {
    /// Decode the front. Map blobs are sliced out of `front` without copying.
    pub fn decode(front: &Bytes) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(front);
        let fsid = Uuid::decode(&mut d)?;
        let mut maps = || -> Result<BTreeMap<u32, Bytes>, DecodeError> {
            let n = d.count(8, "MOSDMap maps")?;
            let mut m = BTreeMap::new();
            for _ in 0..n {
                let e = d.u32()?;
                let b = d.blob("osdmap blob")?;
                m.insert(e, front.slice_ref(b));
            }
            Ok(m)
        };
        let incrementals = maps()?;
        let fulls = maps()?;
        let (oldest, newest) = if d.remaining() >= 8 {
            (d.u32()?, d.u32()?)
        } else {
            (0, 0)
        };
        Ok(OsdMapMsg {
            fsid,
            incrementals,
            fulls,
            oldest,
            newest,
        })
    }
}

/// MMonMap (type 4): the encoded MonMap.
pub fn decode_mon_map_msg(front: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut d = Decoder::new(front);
    Ok(d.blob("monmap")?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_layout() {
        let mut w = BTreeMap::new();
        w.insert("osdmap".to_string(), SubItem { start: 5, flags: 0 });
        let m = mon_subscribe(&w);
        let f = &m.front;
        assert_eq!(&f[0..4], &1u32.to_le_bytes());
        assert_eq!(&f[4..8], &6u32.to_le_bytes());
        assert_eq!(&f[8..14], b"osdmap");
        assert_eq!(&f[14..22], &5u64.to_le_bytes());
        assert_eq!(f[22], 0);
        assert_eq!(f.len(), 27);
    }

    #[test]
    fn pool_op_reply_roundtrip() {
        let mut p = Vec::new();
        paxos_header(&mut p, 0);
        p.put(&Uuid([1; 16]));
        p.put_u32((-17i32) as u32);
        p.put_u32(42);
        p.put_u8(1);
        p.put_blob(&7u64.to_le_bytes());
        let r = PoolOpReply::decode(&p).unwrap();
        assert_eq!(r.code, -17);
        assert_eq!(r.epoch, 42);
        assert_eq!(r.data.unwrap(), 7u64.to_le_bytes());
    }
}
