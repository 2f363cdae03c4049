//! OSD and monitor message decoders on arbitrary messages, and the op output decoders.
//!
//! Input: `selector`, `u16 header version`, `u16 front length`, front, then data (the rest).
//! Messages are built as `Connection` delivers them: header2 + front + data segment.
//! Invariants: no panic; a decoded MOSDOpReply's op outputs are slices of the data segment,
//! in order and within it.
#![no_main]

use bytes::Bytes;
use ceph_fuzz::Input;
use ceph_msgr2::{Message, MsgHeader, MsgType};
use ceph_rados::mon::messages::{self as monmsg, AuthReply, MonCommandAck, OsdMapMsg, PoolOpReply};
use ceph_rados::osd::messages::{decode_pgnls, Backoff, OsdOpReply, WatchNotify};
use ceph_rados::osd::ops;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let sel = inp.u8();
    let version = inp.u16();
    let front_len = inp.u16() as usize;
    let front = Bytes::copy_from_slice(inp.take(front_len));
    let rest = Bytes::copy_from_slice(inp.rest());
    let mut h = MsgHeader::new(MsgType::OSD_OPREPLY, version, 1);
    h.tid = 77;
    let msg = Message::new(h, front.clone()).with_data(rest.clone());
    match sel % 16 {
        0 => {
            if let Ok(r) = OsdOpReply::decode(&msg) {
                assert_eq!(r.tid, 77);
                let total: usize = r.ops.iter().map(|o| o.outdata.len()).sum();
                assert!(total <= msg.data.len());
                let mut off = 0;
                for o in &r.ops {
                    assert_eq!(&rest[off..off + o.outdata.len()], &o.outdata[..]);
                    off += o.outdata.len();
                }
            }
        }
        1 => {
            let _ = WatchNotify::decode(&msg);
        }
        2 => {
            if let Ok(b) = Backoff::decode(&msg) {
                // The ack echoes the range and decodes back to the same backoff.
                let ack = b.ack(b.epoch);
                let back = Backoff::decode(&ack).expect("our own ack must decode");
                assert_eq!(
                    (back.pgid, back.shard, back.id, &back.range[..]),
                    (b.pgid, b.shard, b.id, &b.range[..])
                );
            }
        }
        3 => {
            let _ = ops::decode_watchers(&front);
        }
        4 => {
            let _ = ops::decode_list_snaps(&front);
        }
        5 => {
            let _ = ops::decode_omap_vals(&front);
        }
        6 => {
            let _ = decode_pgnls(&front);
        }
        7 => {
            let _ = ops::decode_stat(&front);
        }
        8 => {
            if let Ok((ext, d)) = ops::decode_sparse_read(&front) {
                assert!(d.len() <= front.len());
                let _ = ext;
            }
        }
        9 => {
            let _ = ops::decode_omap_keys(&front);
        }
        10 => {
            if let Ok(m) = OsdMapMsg::decode(&front) {
                for b in m.incrementals.values().chain(m.fulls.values()) {
                    assert!(b.len() <= front.len());
                }
            }
        }
        11 => {
            let _ = MonCommandAck::decode(&front);
        }
        12 => {
            let _ = PoolOpReply::decode(&front);
        }
        13 => {
            let _ = AuthReply::decode(&front);
        }
        14 => {
            let _ = monmsg::decode_get_version_reply(&front);
        }
        _ => {
            if let Ok(b) = monmsg::decode_mon_map_msg(&front) {
                let _ = ceph_rados::mon::monmap::MonMap::decode(&b);
            }
        }
    }
});
