//! Ceph encoding ("denc") decoders: addresses, names, times, versioned envelopes, the cephx
//! wire structs and msgr2's header2.
//!
//! Input: `selector`, then bytes. Invariants: no panic; whatever decodes re-encodes to bytes
//! that decode to the same value, and those bytes re-encode to themselves (the decoders may
//! normalise once — e.g. a legacy address becomes the new format — but never drift).
#![no_main]

use ceph_cephx::protocol::{
    AuthCapsInfo, AuthTicket, CephXAuthenticate, CephXAuthorize, CephXAuthorizeChallenge,
    CephXAuthorizeReply, CephXChallengeBlob, CephXRequestHeader, CephXResponseHeader,
    CephXServerChallenge, CephXServiceTicket, CephXServiceTicketInfo, CephXServiceTicketRequest,
    CephXTicketBlob,
};
use ceph_encoding::{
    encode_to_vec, Decode, Decoder, Encode, EncodeExt, EntityAddr, EntityAddrVec, EntityName,
    EntityNameT, UTime, Uuid,
};
use ceph_fuzz::Input;
use libfuzzer_sys::fuzz_target;

/// decode → encode → decode gives the same value, and the second encoding is a fixed point.
fn stable<T: Decode + Encode + PartialEq>(bytes: &[u8], what: &str) {
    let mut d = Decoder::new(bytes);
    let Ok(v) = T::decode(&mut d) else { return };
    assert!(d.position() <= bytes.len());
    let enc = encode_to_vec(&v);
    let mut d2 = Decoder::new(&enc);
    let v2 = T::decode(&mut d2)
        .unwrap_or_else(|e| panic!("{what}: our own encoding does not decode: {e}"));
    assert!(
        d2.is_empty(),
        "{what}: re-encoding has {} trailing bytes",
        d2.remaining()
    );
    assert!(v == v2, "{what}: value changed through encode/decode");
    assert_eq!(
        encode_to_vec(&v2),
        enc,
        "{what}: encoding is not a fixed point"
    );
}

/// Nested `ENCODE_START` envelopes opened with fuzzer-chosen versions, reading fields in them.
fn envelopes(d: &mut Decoder<'_>, ops: &[u8], depth: usize) {
    for (i, op) in ops.iter().enumerate() {
        let r = match op % 8 {
            0 => d.u8().map(|_| ()),
            1 => d.u32().map(|_| ()),
            2 => d.u64().map(|_| ()),
            3 => d.string().map(|_| ()),
            4 => d.blob("blob").map(|_| ()),
            5 => d.vec::<u32>(4, "vec").map(|_| ()),
            6 => d.map::<u32, String>(8, "map").map(|_| ()),
            _ if depth < 8 => match d.versioned(op / 8, "nested") {
                Ok((_v, mut sub)) => {
                    envelopes(&mut sub, &ops[i + 1..], depth + 1);
                    Ok(())
                }
                Err(e) => Err(e),
            },
            _ => Ok(()),
        };
        if r.is_err() {
            return;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let sel = inp.u8();
    let b = inp.rest();
    match sel % 24 {
        0 => stable::<EntityAddr>(b, "EntityAddr"),
        1 => stable::<EntityAddrVec>(b, "EntityAddrVec"),
        2 => stable::<EntityName>(b, "EntityName"),
        3 => stable::<EntityNameT>(b, "EntityNameT"),
        4 => stable::<UTime>(b, "UTime"),
        5 => stable::<Uuid>(b, "Uuid"),
        6 => stable::<CephXServerChallenge>(b, "CephXServerChallenge"),
        7 => stable::<CephXRequestHeader>(b, "CephXRequestHeader"),
        8 => stable::<CephXResponseHeader>(b, "CephXResponseHeader"),
        9 => stable::<CephXTicketBlob>(b, "CephXTicketBlob"),
        10 => stable::<CephXAuthenticate>(b, "CephXAuthenticate"),
        11 => stable::<CephXChallengeBlob>(b, "CephXChallengeBlob"),
        12 => stable::<CephXServiceTicketRequest>(b, "CephXServiceTicketRequest"),
        13 => stable::<CephXServiceTicket>(b, "CephXServiceTicket"),
        14 => stable::<AuthCapsInfo>(b, "AuthCapsInfo"),
        15 => stable::<AuthTicket>(b, "AuthTicket"),
        16 => stable::<CephXServiceTicketInfo>(b, "CephXServiceTicketInfo"),
        17 => stable::<CephXAuthorize>(b, "CephXAuthorize"),
        18 => stable::<CephXAuthorizeChallenge>(b, "CephXAuthorizeChallenge"),
        19 => stable::<CephXAuthorizeReply>(b, "CephXAuthorizeReply"),
        20 => {
            // header2: decode/encode keeps every field.
            if let Ok(h) = ceph_msgr2::MsgHeader::decode(b) {
                assert_eq!(ceph_msgr2::MsgHeader::decode(&h.encode()).unwrap(), h);
            }
        }
        21 => {
            // Envelope round trip: what we wrap, we unwrap unchanged.
            let (v, payload) = (b.first().copied().unwrap_or(1), b.get(1..).unwrap_or(&[]));
            let mut out = Vec::new();
            let g = out.start_versioned(v, v);
            out.put_raw(payload);
            g.finish(&mut out);
            let mut d = Decoder::new(&out);
            let (got_v, sub) = d.versioned(v, "fuzz").unwrap();
            assert_eq!(got_v, v);
            assert_eq!(sub.rest(), payload);
            assert!(d.is_empty());
        }
        _ => {
            let split = b.first().copied().unwrap_or(0) as usize % 16;
            let (ops, body) = b
                .get(1..)
                .unwrap_or(&[])
                .split_at(split.min(b.len().saturating_sub(1)));
            envelopes(&mut Decoder::new(body), ops, 0);
        }
    }
});
