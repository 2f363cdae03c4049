//! Decode every cephx object of the ceph-object-corpus and re-encode it to identical bytes.
//!
//! The corpus is `$CEPH_OBJECT_CORPUS` or `../shared/ceph-object-corpus` next to the project
//! root; the test fails (never skips) when it is missing.

use ceph_cephx::protocol::*;
use ceph_encoding::{decode_exact, encode_to_vec, Decode, Encode};
use std::fmt::Debug;
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    match std::env::var_os("CEPH_OBJECT_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/ceph-object-corpus"
        )),
    }
}

/// Every file of `archive/*/objects/<type_name>/`.
fn objects(type_name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let archive = corpus_dir().join("archive");
    let versions = std::fs::read_dir(&archive)
        .unwrap_or_else(|e| panic!("ceph-object-corpus missing at {}: {e}", archive.display()));
    let mut out = Vec::new();
    for v in versions {
        let dir = v.unwrap().path().join("objects").join(type_name);
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        for f in files {
            let p = f.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            out.push((p, bytes));
        }
    }
    out.sort();
    out
}

/// Decode all objects of a type exactly (no trailing bytes) and re-encode them.
fn round_trip<T: Decode + Encode + Debug>(type_name: &str) -> Vec<T> {
    let objs = objects(type_name);
    assert!(
        objs.len() >= 6,
        "{type_name}: only {} corpus objects found",
        objs.len()
    );
    objs.iter()
        .map(|(path, bytes)| {
            let v: T = decode_exact(bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                hex_of(&encode_to_vec(&v)),
                hex_of(bytes),
                "{} re-encodes differently: {v:?}",
                path.display()
            );
            v
        })
        .collect()
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn server_challenge() {
    round_trip::<CephXServerChallenge>("CephXServerChallenge");
}

#[test]
fn request_header() {
    let v = round_trip::<CephXRequestHeader>("CephXRequestHeader");
    assert!(v
        .iter()
        .any(|h| h.request_type == CEPHX_GET_AUTH_SESSION_KEY));
}

#[test]
fn response_header() {
    round_trip::<CephXResponseHeader>("CephXResponseHeader");
}

#[test]
fn authenticate() {
    let v = round_trip::<CephXAuthenticate>("CephXAuthenticate");
    assert!(v.iter().any(|a| a.struct_v == 2));
    assert!(v.iter().any(|a| a.struct_v == 3));
    assert!(
        v.iter().any(|a| !a.old_ticket.blob.is_empty()),
        "a reclaim with an old ticket"
    );
}

#[test]
fn challenge_blob() {
    round_trip::<CephXChallengeBlob>("CephXChallengeBlob");
}

#[test]
fn ticket_blob() {
    round_trip::<CephXTicketBlob>("CephXTicketBlob");
}

#[test]
fn service_ticket() {
    let v = round_trip::<CephXServiceTicket>("CephXServiceTicket");
    assert!(v
        .iter()
        .any(|t| t.session_key.is_aes() && t.session_key.secret().len() == 16));
}

#[test]
fn service_ticket_info() {
    let v = round_trip::<CephXServiceTicketInfo>("CephXServiceTicketInfo");
    assert!(v.iter().any(|t| t.ticket.caps.caps.len() > 4));
}

#[test]
fn service_ticket_request() {
    let v = round_trip::<CephXServiceTicketRequest>("CephXServiceTicketRequest");
    assert!(v.iter().any(|r| r.keys == 0x15));
}

#[test]
fn authorize() {
    let v = round_trip::<CephXAuthorize>("CephXAuthorize");
    assert!(v.iter().all(|a| a.struct_v == 2));
    assert!(v.iter().any(|a| a.have_challenge));
}

#[test]
fn authorize_challenge() {
    round_trip::<CephXAuthorizeChallenge>("CephXAuthorizeChallenge");
}

#[test]
fn authorize_reply() {
    let v = round_trip::<CephXAuthorizeReply>("CephXAuthorizeReply");
    assert!(v.iter().any(|r| r.struct_v == 1));
    assert!(v
        .iter()
        .any(|r| r.struct_v == 2 && r.connection_secret.len() == 64));
}

#[test]
fn auth_ticket() {
    let v = round_trip::<AuthTicket>("AuthTicket");
    assert!(v.iter().all(|t| t.struct_v == 2 && t.auid == u64::MAX));
}

#[test]
fn every_cephx_type_is_covered() {
    let known = [
        "AuthTicket",
        "CephXAuthenticate",
        "CephXAuthorize",
        "CephXAuthorizeChallenge",
        "CephXAuthorizeReply",
        "CephXChallengeBlob",
        "CephXRequestHeader",
        "CephXResponseHeader",
        "CephXServerChallenge",
        "CephXServiceTicket",
        "CephXServiceTicketInfo",
        "CephXServiceTicketRequest",
        "CephXTicketBlob",
    ];
    let archive = corpus_dir().join("archive");
    for v in std::fs::read_dir(&archive).expect("corpus present") {
        let objs = v.unwrap().path().join("objects");
        let Ok(types) = std::fs::read_dir(&objs) else {
            continue;
        };
        for t in types {
            let name = t.unwrap().file_name().into_string().unwrap();
            if name.starts_with("CephX") || name == "AuthTicket" {
                assert!(
                    known.contains(&name.as_str()),
                    "corpus type {name} has no test"
                );
            }
        }
    }
}
