//! The objecter's per-op path without sockets, for the criterion benches
//! (`benches/benches/objecter.rs`; this module exists only with the `bench` feature).
//!
//! A request goes through what the driver runs for it under its lock, and nothing else:
//! placement and queueing in the sans-IO core, the MOSDOp built for the session, the
//! MOSDOpReply decoded from its encoding and matched, and the completion handed out. The
//! session tasks' share (framing, crc or AES-GCM, the socket) is what the `codec` bench
//! measures; together they are the client's CPU per small op short of the RBD layer.

use super::core::{Core, Output, Waiter};
use super::messages::OsdOpReply;
use super::ops::OsdOp;
use super::target::ObjectTarget;
use super::OpRequest;
use crate::error::{Error, Result};
use crate::osdmap::{OsdMap, PgId};
use bytes::Bytes;
use ceph_encoding::{Encode, EncodeExt, UTime};
use ceph_msgr2::{Message, MsgHeader, MsgType};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// A caller that never gives up.
struct Caller;

impl Waiter for Caller {
    fn is_cancelled(&self) -> bool {
        false
    }
}

/// The objecter core over a fixed map, answering its own requests.
pub struct SubmitPath {
    core: Core<Caller>,
    pool: i64,
    epoch: u32,
}

impl SubmitPath {
    /// A core that has `map` (whose OSDs must be up, with addresses) and sends to `pool`.
    pub fn new(map: OsdMap, pool: i64) -> Result<SubmitPath> {
        if !map.pools.contains_key(&pool) {
            return Err(Error::InvalidArgument(format!("no pool {pool} in the map")));
        }
        let epoch = map.epoch;
        let mut core = Core::new(4242);
        core.handle_maps(&[Arc::new(map)], Instant::now());
        while core.poll_output().is_some() {}
        Ok(SubmitPath { core, pool, epoch })
    }

    /// One write of `data` at offset 0 of `oid`, submitted, sent, answered and completed.
    /// Returns the number of per-op results in the reply (1).
    pub fn write(&mut self, oid: &str, data: Bytes) -> Result<usize> {
        let req = OpRequest::new(
            ObjectTarget {
                pool: self.pool,
                nspace: String::new(),
                oid: oid.to_string(),
                key: String::new(),
            },
            vec![OsdOp::write(0, data)],
        );
        let now = Instant::now();
        let mtime = UTime::from_system(SystemTime::now());
        self.core.submit(Box::new(req), Caller, mtime, None, now);
        let mut sent = None;
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::Send { conn, msg } => sent = Some((conn, msg)),
                Output::Complete { result, .. } => return result.map(|r| r.ops.len()),
                Output::Connect { .. } | Output::Close { .. } | Output::WantMap => {}
            }
        }
        let (conn, msg) = sent.ok_or_else(|| Error::InvalidArgument("nothing sent".into()))?;
        let reply = OsdOpReply::decode(&self.reply_to(&msg, oid))
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        self.core.handle_reply(conn, reply, now);
        while let Some(o) = self.core.poll_output() {
            if let Output::Complete { result, .. } = o {
                return result.map(|r| r.ops.len());
            }
        }
        Err(Error::InvalidArgument("the reply completed nothing".into()))
    }

    /// The OSD's answer to a one-op write, as an MOSDOpReply (v8) front: success, no
    /// outdata, first attempt.
    fn reply_to(&self, req: &Message, oid: &str) -> Message {
        let mut f = Vec::with_capacity(128 + oid.len());
        f.put_str(oid);
        PgId::new(self.pool as u64, 0).encode(&mut f);
        f.put_u64(0); // flags
        f.put_i32(0); // result
        f.put_raw(&[0; 12]); // bad_replay_version
        f.put_u32(self.epoch);
        f.put_u32(1); // ops
        let mut op = [0u8; 38];
        op[..2].copy_from_slice(&0x2201u16.to_le_bytes()); // CEPH_OSD_OP_WRITE
        f.put_raw(&op); // payload_len (the last 4 bytes) 0: no outdata
        f.put_i32(0); // attempt
        f.put_i32(0); // the op's rval
        f.put_raw(&[0; 12]); // replay_version
        f.put_u64(1); // user_version
        let mut h = MsgHeader::new(MsgType::OSD_OPREPLY, 8, 2);
        h.tid = req.header.tid;
        Message::new(h, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osdmap::tests::base_map;
    use ceph_encoding::{EntityAddr, EntityAddrVec};

    #[test]
    fn a_write_goes_out_and_completes() {
        let mut map = base_map();
        for o in 0..map.max_osd {
            let sa = format!("127.0.0.1:{}", 6800 + o).parse().unwrap();
            map.osd_addrs[o as usize] = EntityAddrVec(vec![EntityAddr::msgr2(sa)]);
        }
        let mut p = SubmitPath::new(map, 1).unwrap();
        for i in 0..100 {
            let n = p.write(&format!("obj{i}"), Bytes::from(vec![1u8; 4096]));
            assert_eq!(n.unwrap(), 1);
        }
        assert_eq!(p.core.in_flight(), 0);
    }
}
