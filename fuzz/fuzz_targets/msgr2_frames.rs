//! msgr2.1 frame decoding, both modes, fed in arbitrary chunks.
//!
//! Input: `ctl`, `chunk seed`, then a byte stream. `ctl % 4` picks:
//! 0. crc mode, the bytes as they are;
//! 1. crc mode, every checksum fixed up first (reaches segment/epilogue parsing);
//! 2. secure mode: the bytes are plaintext, encrypted chunk by chunk as the reader will cut
//!    them (preamble crc fixed if `ctl & 0x10`), with the fixed test secret;
//! 3. round trip: the bytes are split into frames, written with `FrameWriter` (crc, or secure
//!    if `ctl & 4`) and read back: the reader must return exactly what was written.
//! Invariants: no panic; after an error the reader is not used again (a session ends there).
#![no_main]

use bytes::Bytes;
use ceph_fuzz::{crc_fixup, loose_frames, secure_encode, Chunker, Input, SECRET};
use ceph_msgr2::frame::{FrameLimits, FrameReader, FrameWriter, Mode, SecureKeys, Tag};
use ceph_msgr2::DataSegment;
use libfuzzer_sys::fuzz_target;

fn drain(r: &mut FrameReader, chunks: &[&[u8]]) {
    for c in chunks {
        r.feed(c);
        loop {
            match r.next() {
                Ok(Some((f, _raw))) => {
                    assert!(
                        (1..=4).contains(&f.segments.len()),
                        "{} segments",
                        f.segments.len()
                    );
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

fn limits(ctl: u8) -> FrameLimits {
    if ctl & 0x20 != 0 {
        // Small limits: the size checks themselves get exercised.
        FrameLimits {
            max_control: 256,
            max_front: 512,
            max_data: 1024,
        }
    } else {
        FrameLimits::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let ctl = inp.u8();
    let mut chunker = Chunker::new(inp.u8());
    let body = inp.rest();
    match ctl % 4 {
        0 => {
            let mut r = FrameReader::new(limits(ctl));
            drain(&mut r, &chunker.split(body));
        }
        1 => {
            let mut v = body.to_vec();
            crc_fixup(&mut v, 0);
            let mut r = FrameReader::new(limits(ctl));
            drain(&mut r, &chunker.split(&v));
        }
        2 => {
            let wire = secure_encode(body, &SECRET, ctl & 0x10 != 0);
            let mut r = FrameReader::new(limits(ctl));
            r.set_mode(Mode::Secure(Box::new(
                SecureKeys::from_connection_secret(&SECRET).unwrap(),
            )));
            drain(&mut r, &chunker.split(&wire));
        }
        _ => round_trip(ctl, body, &mut chunker),
    }
});

/// Frames written by our writer must read back unchanged, in either mode and whatever the
/// chunking. Message frames always carry a 41-byte header2 (as `Connection` writes them).
fn round_trip(ctl: u8, body: &[u8], chunker: &mut Chunker) {
    let secure = ctl & 4 != 0;
    let mut w = FrameWriter::default();
    let mut r = FrameReader::default();
    if secure {
        // The writer plays the client (tx = secret[28..40]); the reader the server.
        w.set_mode(Mode::Secure(Box::new(
            SecureKeys::from_connection_secret(&SECRET).unwrap(),
        )));
        r.set_mode(Mode::Secure(Box::new(
            SecureKeys::server_side(&SECRET).unwrap(),
        )));
    }
    let mut expect: Vec<(Tag, Vec<Bytes>)> = Vec::new();
    let mut out = Vec::new();
    for f in loose_frames(body).into_iter().take(64) {
        let tag = Tag(f.tag);
        if f.tag == Tag::MESSAGE.0 {
            let mut h = [0u8; 41];
            let n = f.segments[0].len().min(41);
            h[..n].copy_from_slice(&f.segments[0][..n]);
            let seg = |i: usize| Bytes::copy_from_slice(f.segments.get(i).copied().unwrap_or(&[]));
            let (front, middle, data) = (seg(1), seg(2), seg(3));
            // the data segment in up to three pieces (merged writes), read back as one
            let n = data.len();
            let pieces: DataSegment = [0..n / 3, n / 3..2 * n / 3, 2 * n / 3..n]
                .into_iter()
                .map(|r| data.slice(r))
                .collect();
            w.message(&h, &front, &middle, &pieces, &mut out);
            let mut segs = vec![Bytes::copy_from_slice(&h), front, middle, data];
            while segs.len() > 1 && segs.last().unwrap().is_empty() {
                segs.pop();
            }
            expect.push((tag, segs));
        } else {
            w.control(tag, f.segments[0], &mut out);
            expect.push((tag, vec![Bytes::copy_from_slice(f.segments[0])]));
        }
    }
    let wire: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
    let mut got = Vec::new();
    for c in chunker.split(&wire) {
        r.feed(c);
        while let Some((f, _)) = r.next().expect("our own frames must decode") {
            got.push((f.tag, f.segments));
        }
    }
    assert_eq!(r.buffered(), 0, "bytes left after the last frame");
    assert_eq!(got, expect);
}
