//! cephx client on hostile replies: a little interpreter runs a sequence of operations on
//! one `CephxClient` (and the `Authorizer` it builds), each fed fuzzer bytes.
//!
//! Input: repeated `op: u8, len: u16, bytes[len]`. Ops (`op % 10`):
//! 0 `initial_request(u64)`, 1 `handle_server_challenge`, 2 `handle_auth_done`,
//! 3 `handle_service_ticket_reply`, 4 `build_authorizer(service, nonce, global_id)`,
//! 5 `Authorizer::add_challenge`, 6 `Authorizer::verify_reply`, 7 `Keyring::parse`,
//! 8 `CryptoKey` decoders and decryption with the key found, 9 renewal requests and
//! `needs_renewal` at a later time.
//!
//! The client key is the throwaway `client.kubernetes` key of the shared crc captures when
//! they are there (so seeds cut from those captures open and reach the ticket parsers;
//! scripts/fuzz-seeds makes them), else a fixed key. Invariant: never a panic.
#![no_main]

use ceph_cephx::{Authorizer, CephxClient, CryptoKey, Keyring};
use ceph_encoding::{EntityName, EntityType, UTime};
use ceph_fuzz::Input;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn client_key() -> &'static CryptoKey {
    static KEY: OnceLock<CryptoKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let path = std::env::var("CEPH_CAPTURES").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/captures").into()
        });
        Keyring::from_file(format!("{path}/crc.client.kubernetes.keyring"))
            .ok()
            .and_then(|k| k.key(&EntityName::client("kubernetes")).ok().cloned())
            .unwrap_or_else(|| CryptoKey::new_aes([0x42; 16], UTime::default()))
    })
}

fn u64_of(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(a)
}

fn service(b: u8) -> EntityType {
    [
        EntityType::OSD,
        EntityType::MGR,
        EntityType::MON,
        EntityType::AUTH,
        EntityType(b as u32),
    ][b as usize % 5]
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut inp = Input::new(data);
    let mut cx = CephxClient::new(EntityName::client("kubernetes"), client_key().clone());
    let mut az: Option<Authorizer> = None;
    let mut steps = 0;
    while !inp.is_empty() && steps < 32 {
        steps += 1;
        let op = inp.u8();
        let b = inp.chunk();
        match op % 10 {
            0 => {
                let _ = cx.initial_request(u64_of(b));
            }
            1 => {
                let _ = cx.handle_server_challenge(b, 0x0123_4567_89ab_cdef);
            }
            2 => {
                if let Ok(res) = cx.handle_auth_done(b, now) {
                    assert_eq!(res.session_key.len(), 16);
                    cx.set_global_id(4242);
                }
            }
            3 => {
                let _ = cx.handle_service_ticket_reply(b, now);
            }
            4 => {
                let svc = service(b.first().copied().unwrap_or(0));
                az = cx
                    .build_authorizer(svc, u64_of(b.get(1..).unwrap_or(&[])), cx.global_id())
                    .ok();
            }
            5 => {
                if let Some(a) = az.as_mut() {
                    if let Ok(next) = a.add_challenge(b) {
                        assert_eq!(next, a.payload());
                    }
                }
            }
            6 => {
                if let Some(a) = az.as_ref() {
                    let _ = a.verify_reply(b);
                }
            }
            7 => {
                if let Ok(kr) = Keyring::parse(&String::from_utf8_lossy(b)) {
                    for (name, _entry) in kr.iter() {
                        let _ = kr.key(name);
                    }
                }
            }
            8 => {
                let (k, rest) = b.split_at(b.len().min(28));
                let keys = [
                    CryptoKey::from_encoded(k).ok(),
                    CryptoKey::from_base64(&String::from_utf8_lossy(b)).ok(),
                    CryptoKey::from_secret_file_contents(b).ok(),
                ];
                for key in keys.into_iter().flatten() {
                    let _ = key.to_base64();
                    let _ = key.decrypt(rest, "fuzz");
                    let _ = key.decrypt_enc_bl(rest, "fuzz");
                    let _ = key.decode_decrypt(&mut ceph_encoding::Decoder::new(rest), "fuzz");
                }
            }
            _ => {
                let keys = u64_of(b) as u32;
                let _ = cx.build_service_ticket_request(keys, 7, cx.global_id());
                let _ = cx.build_auth_renewal_request(9, keys);
                let later = now.checked_add(Duration::from_secs(
                    u64_of(b.get(4..).unwrap_or(&[])) % (400 * 24 * 3600),
                ));
                if let Some(t) = later {
                    let _ = cx.needs_renewal(t);
                }
            }
        }
    }
});
