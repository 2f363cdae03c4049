//! The ticket machine against a scripted monitor and OSD (written here from the protocol, in
//! the role of `CephxServiceHandler` / `cephx_verify_authorizer`): handshake, extra tickets,
//! authorizer challenge, GET_PRINCIPAL_SESSION_KEY, AUTH ticket renewal over MAuth with an
//! encrypted ticket, global_id reclaim, and the error paths.

use ceph_cephx::protocol::*;
use ceph_cephx::{client_proof, CephxClient, CephxError, CryptoKey, Errno, NoneAuth};
use ceph_encoding::{
    decode_exact, encode_to_vec, Decode, Decoder, Encode, EncodeExt, EntityName, EntityType, UTime,
};
use std::time::{Duration, Instant};

const HOUR: u32 = 3600;

fn key(b: u8) -> CryptoKey {
    CryptoKey::new_aes(
        [b; 16],
        UTime {
            sec: 1_700_000_000,
            nsec: 0,
        },
    )
}

struct Grant {
    service: EntityType,
    session_key: CryptoKey,
    validity_secs: u32,
    blob: Vec<u8>,
    /// Encrypt the ticket blob with this (the previous session key), as on renewal.
    enc_with: Option<CryptoKey>,
}

/// `cephx_build_service_ticket_reply`.
fn ticket_reply(principal: &CryptoKey, grants: &[Grant], out: &mut Vec<u8>) {
    out.put_u8(1);
    out.put_u32(grants.len() as u32);
    for g in grants {
        out.put_u32(g.service.0);
        out.put_u8(1);
        let st = CephXServiceTicket {
            session_key: g.session_key.clone(),
            validity: UTime {
                sec: g.validity_secs,
                nsec: 0,
            },
        };
        principal.encode_encrypt(&encode_to_vec(&st), out);
        let blob = encode_to_vec(&CephXTicketBlob {
            secret_id: 7,
            blob: g.blob.clone(),
        });
        let mut bl = Vec::new();
        bl.put_blob(&blob);
        match &g.enc_with {
            Some(k) => {
                out.put_u8(1);
                k.encode_encrypt(&bl, out);
            }
            None => {
                out.put_u8(0);
                out.put_raw(&bl);
            }
        }
    }
}

fn grant(service: EntityType, session_key: CryptoKey, validity_secs: u32, blob: &[u8]) -> Grant {
    Grant {
        service,
        session_key,
        validity_secs,
        blob: blob.to_vec(),
        enc_with: None,
    }
}

struct FakeMon {
    client_key: CryptoKey,
    server_challenge: u64,
    auth_key: CryptoKey,
}

impl FakeMon {
    /// Verify a GET_AUTH_SESSION_KEY request; returns it.
    fn check_authenticate(&self, req: &[u8]) -> CephXAuthenticate {
        let mut d = Decoder::new(req);
        assert_eq!(
            CephXRequestHeader::decode(&mut d).unwrap().request_type,
            CEPHX_GET_AUTH_SESSION_KEY
        );
        let a = CephXAuthenticate::decode(&mut d).unwrap();
        assert!(d.is_empty());
        assert_eq!(a.struct_v, 3);
        assert_eq!(
            a.key,
            client_proof(&self.client_key, self.server_challenge, a.client_challenge),
            "proof"
        );
        a
    }

    fn auth_done(&self, other_keys: u32, connection_secret: &[u8]) -> Vec<u8> {
        let mut out = encode_to_vec(&CephXResponseHeader {
            request_type: CEPHX_GET_AUTH_SESSION_KEY,
            status: 0,
        });
        ticket_reply(
            &self.client_key,
            &[grant(
                EntityType::AUTH,
                self.auth_key.clone(),
                72 * HOUR,
                b"auth-ticket-1",
            )],
            &mut out,
        );
        let mut s = Vec::new();
        s.put_blob(connection_secret);
        let mut cbl = Vec::new();
        self.auth_key.encode_encrypt(&s, &mut cbl);
        out.put_blob(&cbl);
        let mut extra = Vec::new();
        let grants: Vec<Grant> = [EntityType::MON, EntityType::OSD, EntityType::MGR]
            .into_iter()
            .filter(|s| other_keys & s.0 != 0)
            .map(|s| {
                grant(
                    s,
                    key(0x40 + s.0 as u8),
                    HOUR,
                    format!("{s:?}-ticket").as_bytes(),
                )
            })
            .collect();
        if !grants.is_empty() {
            ticket_reply(&self.auth_key, &grants, &mut extra);
        }
        out.put_blob(&extra);
        out
    }
}

/// Parse an authorizer as `cephx_verify_authorizer` does; returns (global_id, service,
/// ticket, CephXAuthorize) and the remaining bytes.
fn open_authorizer<'a>(
    payload: &'a [u8],
    session_key: &CryptoKey,
) -> (
    u64,
    EntityType,
    CephXTicketBlob,
    CephXAuthorize,
    Decoder<'a>,
) {
    let mut d = Decoder::new(payload);
    assert_eq!(d.u8().unwrap(), 1);
    let gid = d.u64().unwrap();
    let svc = EntityType(d.u32().unwrap());
    let t = CephXTicketBlob::decode(&mut d).unwrap();
    let msg: CephXAuthorize =
        decode_exact(&session_key.decode_decrypt(&mut d, "authorize").unwrap()).unwrap();
    (gid, svc, t, msg, d)
}

fn handshake(now: Instant) -> (CephxClient, FakeMon) {
    let name = EntityName::client("kubernetes");
    let mon = FakeMon {
        client_key: key(1),
        server_challenge: 0x1122334455667788,
        auth_key: key(2),
    };
    let mut cx = CephxClient::new(name.clone(), key(1));
    let init = cx.initial_request(0);
    let mut expect = vec![10u8];
    name.encode(&mut expect);
    expect.put_u64(0);
    assert_eq!(init, expect);

    let ch = encode_to_vec(&CephXServerChallenge {
        server_challenge: mon.server_challenge,
    });
    let req = cx.handle_server_challenge(&ch, 0xabcdef).unwrap();
    let a = mon.check_authenticate(&req);
    assert_eq!(a.client_challenge, 0xabcdef);
    assert_eq!(a.other_keys, 0x35);
    assert_eq!(a.old_ticket, CephXTicketBlob::default());

    let res = cx
        .handle_auth_done(&mon.auth_done(a.other_keys, &[9; 64]), now)
        .unwrap();
    assert_eq!(res.session_key, vec![2; 16]);
    assert_eq!(res.connection_secret, vec![9; 64]);
    cx.set_global_id(4242);
    (cx, mon)
}

#[test]
fn full_flow() {
    let now = Instant::now();
    let (cx, _mon) = handshake(now);
    for s in [
        EntityType::AUTH,
        EntityType::MON,
        EntityType::OSD,
        EntityType::MGR,
    ] {
        assert!(cx.has_ticket(s), "{s:?}");
    }
    assert!(!cx.has_ticket(EntityType::MDS));
    let osd = cx.ticket(EntityType::OSD).unwrap();
    assert_eq!(osd.secret_id(), 7);
    assert_eq!(osd.ticket_blob().blob, b"osd(0x4)-ticket");
    assert_eq!(osd.expires(), Some(now + Duration::from_secs(3600)));
    assert_eq!(osd.renew_after(), Some(now + Duration::from_secs(2700)));
    assert!(!osd.is_expired(now + Duration::from_secs(3599)));
    assert!(osd.is_expired(now + Duration::from_secs(3600)));

    // OSD connection with the cephx v2 challenge round.
    let session = key(0x44);
    let mut az = cx
        .build_authorizer(EntityType::OSD, 0x5555, cx.global_id())
        .unwrap();
    let (gid, svc, t, msg, d) = open_authorizer(az.payload(), &session);
    assert!(d.is_empty());
    assert_eq!(
        (gid, svc, t.blob.as_slice()),
        (4242, EntityType::OSD, b"osd(0x4)-ticket".as_slice())
    );
    assert_eq!(
        msg,
        CephXAuthorize {
            struct_v: 2,
            nonce: 0x5555,
            have_challenge: false,
            server_challenge_plus_one: 0
        }
    );

    let challenge = session.encrypt_enc_bl(&encode_to_vec(&CephXAuthorizeChallenge {
        server_challenge: u64::MAX,
    }));
    let more = az.add_challenge(&challenge).unwrap();
    assert_eq!(more, az.payload());
    let (_, _, _, msg2, _) = open_authorizer(&more, &session);
    assert_eq!(
        msg2,
        CephXAuthorize {
            struct_v: 2,
            nonce: 0x5555,
            have_challenge: true,
            server_challenge_plus_one: 0
        }
    );

    let mut done = Vec::new();
    let reply = CephXAuthorizeReply {
        struct_v: 2,
        nonce_plus_one: 0x5556,
        connection_secret: vec![3; 64],
    };
    session.encode_encrypt(&encode_to_vec(&reply), &mut done);
    assert_eq!(
        az.verify_reply(&done).unwrap().connection_secret,
        vec![3; 64]
    );
    assert_eq!(az.session_key(), &session);

    // A challenge or reply under another key is a wrong-key error.
    let bad = key(0x99).encrypt_enc_bl(&encode_to_vec(&CephXAuthorizeChallenge {
        server_challenge: 1,
    }));
    assert!(az.add_challenge(&bad).unwrap_err().is_wrong_key());
    let mut done = Vec::new();
    let reply = CephXAuthorizeReply {
        struct_v: 1,
        nonce_plus_one: 0x5555,
        connection_secret: vec![],
    };
    session.encode_encrypt(&encode_to_vec(&reply), &mut done);
    assert!(matches!(
        az.verify_reply(&done),
        Err(CephxError::NonceMismatch {
            expected: 0x5556,
            got: 0x5555
        })
    ));

    // No ticket for the MDS.
    assert!(matches!(
        cx.build_authorizer(EntityType::MDS, 1, 1),
        Err(CephxError::MissingTicket(EntityType::MDS))
    ));
}

#[test]
fn service_ticket_renewal() {
    let now = Instant::now();
    let (mut cx, mon) = handshake(now);
    let later = now + Duration::from_secs(2700);
    assert_eq!(cx.needs_renewal(later), 0x15);

    let req = cx
        .build_service_ticket_request(0x15 | 0x20, 77, cx.global_id())
        .unwrap();
    let mut d = Decoder::new(&req);
    assert_eq!(
        CephXRequestHeader::decode(&mut d).unwrap().request_type,
        CEPHX_GET_PRINCIPAL_SESSION_KEY
    );
    let rest = d.rest();
    let (gid, svc, t, msg, mut d) = open_authorizer(rest, &mon.auth_key);
    assert_eq!(
        (gid, svc, t.blob.as_slice(), msg.nonce),
        (4242, EntityType::AUTH, b"auth-ticket-1".as_slice(), 77)
    );
    assert_eq!(
        CephXServiceTicketRequest::decode(&mut d).unwrap().keys,
        0x15,
        "AUTH bit removed"
    );
    assert!(d.is_empty());

    let mut reply = encode_to_vec(&CephXResponseHeader {
        request_type: CEPHX_GET_PRINCIPAL_SESSION_KEY,
        status: 0,
    });
    ticket_reply(
        &mon.auth_key,
        &[grant(EntityType::OSD, key(0x77), HOUR, b"osd-2")],
        &mut reply,
    );
    cx.handle_service_ticket_reply(&reply, later).unwrap();
    let osd = cx.ticket(EntityType::OSD).unwrap();
    assert_eq!(osd.session_key(), &key(0x77));
    assert_eq!(osd.expires(), Some(later + Duration::from_secs(3600)));
    assert_eq!(cx.needs_renewal(later), 0x11);

    // The mon refusing.
    let refused = encode_to_vec(&CephXResponseHeader {
        request_type: CEPHX_GET_PRINCIPAL_SESSION_KEY,
        status: -13,
    });
    let e = cx.handle_service_ticket_reply(&refused, later).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EACCES));
    assert!(e.is_permission_denied());
    assert_eq!(e.to_string(), "server refused authentication: EACCES");

    // Tickets under a key we do not hold.
    let mut bad = encode_to_vec(&CephXResponseHeader {
        request_type: CEPHX_GET_PRINCIPAL_SESSION_KEY,
        status: 0,
    });
    ticket_reply(
        &key(0x31),
        &[grant(EntityType::OSD, key(0x78), HOUR, b"x")],
        &mut bad,
    );
    assert!(cx
        .handle_service_ticket_reply(&bad, later)
        .unwrap_err()
        .is_wrong_key());
    assert_eq!(
        cx.ticket(EntityType::OSD).unwrap().session_key(),
        &key(0x77),
        "unchanged"
    );
}

#[test]
fn auth_ticket_renewal_over_mauth() {
    let now = Instant::now();
    let (mut cx, mon) = handshake(now);
    let later = now + Duration::from_secs(54 * 3600);
    assert_eq!(cx.needs_renewal(later), 0x35);

    // Same server challenge as the handshake, fresh client challenge, old ticket presented.
    let req = cx.build_auth_renewal_request(0x600d, 0x15).unwrap();
    let a = mon.check_authenticate(&req);
    assert_eq!(a.client_challenge, 0x600d);
    assert_eq!(a.old_ticket.blob, b"auth-ticket-1");
    assert_eq!(a.other_keys, 0x35);

    // The mon answers with a new AUTH ticket whose blob is encrypted with the old AUTH
    // session key, an empty connection secret, and extra tickets.
    let new_auth = key(3);
    let mut reply = encode_to_vec(&CephXResponseHeader {
        request_type: CEPHX_GET_AUTH_SESSION_KEY,
        status: 0,
    });
    let g = Grant {
        enc_with: Some(mon.auth_key.clone()),
        ..grant(
            EntityType::AUTH,
            new_auth.clone(),
            72 * HOUR,
            b"auth-ticket-2",
        )
    };
    ticket_reply(&mon.client_key, &[g], &mut reply);
    reply.put_blob(&[]);
    let mut extra = Vec::new();
    ticket_reply(
        &new_auth,
        &[grant(EntityType::MGR, key(0x66), HOUR, b"mgr-2")],
        &mut extra,
    );
    reply.put_blob(&extra);
    cx.handle_service_ticket_reply(&reply, later).unwrap();

    assert_eq!(cx.auth_session_key(), Some(&new_auth));
    assert_eq!(
        cx.ticket(EntityType::AUTH).unwrap().ticket_blob().blob,
        b"auth-ticket-2"
    );
    assert_eq!(
        cx.ticket(EntityType::MGR).unwrap().session_key(),
        &key(0x66)
    );
    assert_eq!(cx.needs_renewal(later), 0x05);

    // A reply whose encrypted ticket blob is not under our previous key fails cleanly.
    let mut bad = encode_to_vec(&CephXResponseHeader {
        request_type: CEPHX_GET_AUTH_SESSION_KEY,
        status: 0,
    });
    let g = Grant {
        enc_with: Some(key(0x13)),
        ..grant(EntityType::AUTH, key(4), 72 * HOUR, b"auth-ticket-3")
    };
    ticket_reply(&mon.client_key, &[g], &mut bad);
    assert!(cx
        .handle_service_ticket_reply(&bad, later)
        .unwrap_err()
        .is_wrong_key());
    assert_eq!(cx.auth_session_key(), Some(&new_auth));
}

#[test]
fn reclaim_on_reconnect_presents_old_ticket() {
    let now = Instant::now();
    let (mut cx, _) = handshake(now);
    cx.reset_session();
    assert!(matches!(
        cx.build_auth_renewal_request(1, 0),
        Err(CephxError::NoServerChallenge)
    ));
    let init = cx.initial_request(cx.global_id());
    assert_eq!(&init[init.len() - 8..], &4242u64.to_le_bytes());

    let mon2 = FakeMon {
        client_key: key(1),
        server_challenge: 99,
        auth_key: key(5),
    };
    let ch = encode_to_vec(&CephXServerChallenge {
        server_challenge: 99,
    });
    let req = cx.handle_server_challenge(&ch, 1).unwrap();
    let a = mon2.check_authenticate(&req);
    assert_eq!(a.old_ticket.blob, b"auth-ticket-1");
    assert_eq!(a.old_ticket.secret_id, 7);

    // Starting over with a new global id: the old ticket must not be presented (a Pacific
    // mon answers EINVAL "superfluous ticket").
    cx.initial_request(0);
    let req = cx.handle_server_challenge(&ch, 2).unwrap();
    let a = mon2.check_authenticate(&req);
    assert_eq!(a.old_ticket, CephXTicketBlob::default());
}

#[test]
fn error_paths() {
    let now = Instant::now();
    let mut cx = CephxClient::new(EntityName::client("a"), key(1));
    assert!(matches!(
        cx.build_service_ticket_request(0x15, 1, 1),
        Err(CephxError::MissingTicket(EntityType::AUTH))
    ));
    assert!(matches!(
        cx.build_auth_renewal_request(1, 0),
        Err(CephxError::NoServerChallenge)
    ));
    assert!(matches!(
        cx.handle_server_challenge(&[1, 2, 3], 1),
        Err(CephxError::Decode(_))
    ));
    assert!(
        matches!(
            cx.handle_server_challenge(&[1; 10], 1),
            Err(CephxError::Decode(_))
        ),
        "trailing byte"
    );

    let denied = encode_to_vec(&CephXResponseHeader {
        request_type: CEPHX_GET_AUTH_SESSION_KEY,
        status: -1,
    });
    let e = cx.handle_auth_done(&denied, now).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EPERM));
    assert!(e.is_permission_denied() && !e.is_wrong_key());

    // The right structure under another key.
    let mon = FakeMon {
        client_key: key(8),
        server_challenge: 1,
        auth_key: key(2),
    };
    let done = mon.auth_done(0x35, &[]);
    let e = cx.handle_auth_done(&done, now).unwrap_err();
    assert!(e.is_wrong_key(), "{e}");
    assert!(e.to_string().contains("wrong key"), "{e}");
    assert!(!cx.has_ticket(EntityType::AUTH));

    // Truncations never panic and never leave partial state.
    let mon = FakeMon {
        client_key: key(1),
        server_challenge: 1,
        auth_key: key(2),
    };
    let done = mon.auth_done(0x35, &[1; 64]);
    for n in 0..done.len() {
        if let Ok(r) = cx.clone().handle_auth_done(&done[..n], now) {
            // Only the cut right after the AUTH ticket (no msgr2 tail) is a valid reply.
            assert!(r.connection_secret.is_empty());
        }
    }
    assert!(!cx.has_ticket(EntityType::AUTH));
    assert!(cx.handle_auth_done(&done, now).is_ok());

    // Unexpected request type.
    let odd = encode_to_vec(&CephXResponseHeader {
        request_type: 0x0400,
        status: 0,
    });
    assert!(matches!(
        cx.handle_service_ticket_reply(&odd, now),
        Err(CephxError::Protocol(_))
    ));
}

#[test]
fn want_keys() {
    let mut cx = CephxClient::new(EntityName::client("a"), key(1));
    assert_eq!(cx.want_keys(), 0x15);
    cx.set_want_keys(0x01 | 0x20);
    assert_eq!(cx.want_keys(), 0x01);
    let ch = encode_to_vec(&CephXServerChallenge {
        server_challenge: 5,
    });
    let req = cx.handle_server_challenge(&ch, 6).unwrap();
    let a: CephXAuthenticate = decode_exact(&req[2..]).unwrap();
    assert_eq!(a.other_keys, 0x21);
    assert_eq!(cx.needs_renewal(Instant::now()), 0x21);
}

#[test]
fn auth_none() {
    let n = NoneAuth::new(EntityName::client("admin"));
    let mut expect = vec![10u8, 8, 0, 0, 0, 5, 0, 0, 0];
    expect.extend_from_slice(b"admin");
    expect.extend_from_slice(&7u64.to_le_bytes());
    assert_eq!(n.initial_request(7), expect);
    expect[0] = 1;
    assert_eq!(n.authorizer(7), expect);
}
