//! The client side of a msgr2 session (`ceph_msgr2::Connection`) fed an arbitrary server.
//!
//! Input: `flags`, `chunk seed`, then what the server says, written as crc-mode wire bytes:
//! the banner, then frames. The harness plays the server's framing: it re-encodes each frame
//! with `FrameWriter` (so checksums are right), switches to secure mode after an AUTH_DONE
//! that picks it (con_mode 2), and sends AUTH_SIGNATURE frames with the signature a key-less
//! auth expects (32 zero bytes) unless `flags & 0x08`. With `flags & 0x10` the bytes go to
//! the connection exactly as given instead (crc checksums fixed up only).
//!
//! The auth side is a dummy: fixed payloads, no session key (so the signature is all zeros),
//! the fixed test secret for secure mode. After the session is ready, the harness also sends
//! a message, a keepalive and an ack. Invariant: no input makes the connection panic.
#![no_main]

use bytes::Bytes;
use ceph_encoding::{EntityAddr, EntityType, UTime};
use ceph_fuzz::{crc_fixup, loose_frames, Chunker, Input, SECRET};
use ceph_msgr2::frame::{FrameWriter, Mode, SecureKeys, Tag};
use ceph_msgr2::{
    AuthClient, AuthKeys, ConMode, Connection, ConnectionConfig, Error, Event, Message, MsgHeader,
    MsgType,
};
use libfuzzer_sys::fuzz_target;

struct DummyAuth;

impl AuthClient for DummyAuth {
    fn auth_request(&mut self) -> Result<(u32, Vec<u8>), Error> {
        Ok((2, vec![1, 2, 3, 4]))
    }
    fn handle_reply_more(&mut self, payload: &[u8]) -> Result<Vec<u8>, Error> {
        if payload.first() == Some(&0xff) {
            return Err(Error::Auth("dummy refuses".into()));
        }
        Ok(payload.iter().rev().copied().collect())
    }
    fn handle_done(
        &mut self,
        _global_id: u64,
        _con_mode: u32,
        payload: &[u8],
    ) -> Result<AuthKeys, Error> {
        if payload.first() == Some(&0xff) {
            return Err(Error::Auth("dummy refuses".into()));
        }
        Ok(AuthKeys {
            session_key: Vec::new(),
            connection_secret: SECRET.to_vec(),
        })
    }
}

fn config(flags: u8) -> ConnectionConfig {
    let modes = match flags & 3 {
        0 => vec![ConMode::Crc],
        1 => vec![ConMode::Secure],
        2 => vec![ConMode::Secure, ConMode::Crc],
        _ => vec![ConMode::Crc, ConMode::Secure],
    };
    ConnectionConfig {
        entity_type: EntityType::CLIENT,
        peer_addr: EntityAddr::msgr2("127.0.0.1:3300".parse().unwrap()),
        nonce: 0x1234_5678,
        global_id: 0,
        global_seq: 1,
        client_cookie: 0xc00c1e,
        features_supported: 0x3f01_cfbd_fffd_ffff,
        features_required: 0,
        modes,
        lossy: flags & 4 != 0,
        limits: Default::default(),
    }
}

/// The server's bytes: banner as given, frames re-encoded in the mode in force.
fn server_stream(flags: u8, body: &[u8]) -> Vec<u8> {
    let banner_len = match body.get(8..10) {
        Some(l) => (10 + u16::from_le_bytes([l[0], l[1]]) as usize).min(body.len()),
        None => body.len(),
    };
    let mut out = body[..banner_len].to_vec();
    let frames = &body[banner_len..];
    if flags & 0x10 != 0 {
        let start = out.len();
        out.extend_from_slice(frames);
        crc_fixup(&mut out, start);
        return out;
    }
    let mut w = FrameWriter::default();
    let mut bufs = Vec::new();
    for f in loose_frames(frames).into_iter().take(256) {
        let tag = Tag(f.tag);
        if tag == Tag::MESSAGE {
            let mut h = [0u8; 41];
            let n = f.segments[0].len().min(41);
            h[..n].copy_from_slice(&f.segments[0][..n]);
            let seg = |i: usize| Bytes::copy_from_slice(f.segments.get(i).copied().unwrap_or(&[]));
            w.message(&h, &seg(1), &seg(2), &seg(3).into(), &mut bufs);
        } else if tag == Tag::AUTH_SIGNATURE && flags & 0x08 == 0 {
            w.control(tag, &[0u8; 32], &mut bufs);
        } else {
            w.control(tag, f.segments[0], &mut bufs);
        }
        // AUTH_DONE { u64 global_id, u32 con_mode, bl payload }: the server switches modes
        // right after sending it.
        if tag == Tag::AUTH_DONE && f.segments[0].get(8..12) == Some(&2u32.to_le_bytes()[..]) {
            w.set_mode(Mode::Secure(Box::new(
                SecureKeys::server_side(&SECRET).unwrap(),
            )));
        }
    }
    for b in bufs {
        out.extend_from_slice(&b);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let flags = inp.u8();
    let mut chunker = Chunker::new(inp.u8());
    let wire = server_stream(flags, inp.rest());

    let mut c = Connection::new(config(flags), Box::new(DummyAuth));
    let mut sent_extra = false;
    for chunk in chunker.split(&wire) {
        let _ = c.poll_transmit();
        if c.receive(chunk).is_err() {
            // A failed session stays failed.
            assert!(matches!(c.receive(b"x"), Err(Error::Closed)));
            return;
        }
        while let Some(ev) = c.poll_event() {
            if let Event::Message(m) = ev {
                let _ = MsgHeader::decode(&m.header.encode()).unwrap();
            }
        }
        if c.is_ready() && !sent_extra {
            sent_extra = true;
            let mut m = Message::new(
                MsgHeader::new(MsgType::MON_SUBSCRIBE, 3, 1),
                Bytes::from_static(b"front"),
            );
            m.data = vec![7u8; 100].into();
            c.send_message(m);
            c.send_keepalive(UTime { sec: 1, nsec: 2 });
            c.send_ack();
            assert!(c.has_transmit());
        }
    }
    let _ = c.poll_transmit();
});
