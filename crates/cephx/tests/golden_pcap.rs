//! Golden tests against real librados sessions recorded from a Ceph 16.2.15 cluster
//! (`../shared/captures`, see its README). Fails — never skips — when the captures are
//! missing.
//!
//! For every monitor connection: the AUTH_REQUEST payload and the AUTH_REQUEST_MORE payload
//! we build (given the recorded client challenge) must equal librados' bytes, AUTH_DONE must
//! open with the keyring's key, and the session key it yields must reproduce both recorded
//! AUTH_SIGNATURE frames (plain in CRC mode; AES-GCM-decrypted with the connection secret in
//! SECURE mode). For every OSD/MGR connection: our authorizer (with the recorded nonce), our
//! challenge answer and the reply check must match the recorded bytes, and the signatures
//! must verify with the service ticket's session key.

mod support;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use ceph_cephx::protocol::{
    CephXAuthenticate, CephXAuthorize, CephXRequestHeader, CEPHX_GET_AUTH_SESSION_KEY,
};
use ceph_cephx::{client_proof, CephxClient, CryptoKey, Keyring};
use ceph_encoding::{ceph_crc32c, Decode, Decoder, EntityName, EntityType};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::msgr2::{self, tag, Frame};
use support::pcap::{self, TcpConnection};

const CON_MODE_CRC: u32 = 1;
const CON_MODE_SECURE: u32 = 2;

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// The first frame a side sends after AUTH_DONE: its AUTH_SIGNATURE payload (32 bytes).
///
/// CRC mode: a plain frame. SECURE mode: the 96-byte first chunk, AES-128-GCM with
/// key = secret[0..16] and the sender's TX nonce (server TX = secret[16..28], client TX =
/// secret[28..40]), no AAD; plaintext = preamble 32 + 48 inline bytes.
fn read_signature(
    stream: &[u8],
    at: usize,
    mode: u32,
    secret: &[u8],
    sender_is_server: bool,
) -> Vec<u8> {
    match mode {
        CON_MODE_CRC => {
            let f = msgr2::crc_frame_at(stream, at).unwrap();
            assert_eq!(f.tag, tag::AUTH_SIGNATURE);
            f.segments[0].clone()
        }
        CON_MODE_SECURE => {
            assert!(
                secret.len() >= 40,
                "connection secret of {} bytes",
                secret.len()
            );
            let cipher = Aes128Gcm::new_from_slice(&secret[..16]).unwrap();
            let nonce = if sender_is_server {
                &secret[16..28]
            } else {
                &secret[28..40]
            };
            let chunk = &stream[at..at + 96];
            let pt = cipher
                .decrypt(Nonce::from_slice(nonce), chunk)
                .expect("GCM tag verifies with the cephx connection secret");
            assert_eq!(pt.len(), 80);
            assert_eq!(
                ceph_crc32c(0, &pt[..28]),
                u32::from_le_bytes(pt[28..32].try_into().unwrap())
            );
            assert_eq!(pt[0], tag::AUTH_SIGNATURE);
            assert_eq!(pt[1], 1);
            assert_eq!(u32::from_le_bytes(pt[2..6].try_into().unwrap()), 32);
            assert!(pt[64..80].iter().all(|b| *b == 0), "inline padding is zero");
            pt[32..64].to_vec()
        }
        m => panic!("unknown con_mode {m}"),
    }
}

/// Check both AUTH_SIGNATURE frames: each side signs what it *received* before AUTH_DONE
/// (banner included) with `session_key`.
fn verify_signatures(
    conn: &TcpConnection,
    client_end: usize,
    server_end: usize,
    mode: u32,
    session_key: &[u8],
    secret: &[u8],
) {
    let server_sig = read_signature(&conn.to_client, server_end, mode, secret, true);
    assert_eq!(
        server_sig,
        hmac(session_key, &conn.to_server[..client_end]),
        "server AUTH_SIGNATURE"
    );
    let client_sig = read_signature(&conn.to_server, client_end, mode, secret, false);
    assert_eq!(
        client_sig,
        hmac(session_key, &conn.to_client[..server_end]),
        "client AUTH_SIGNATURE"
    );
}

struct Handshake {
    client: Vec<Frame>,
    server: Vec<Frame>,
}

impl Handshake {
    fn of(conn: &TcpConnection) -> Option<Handshake> {
        let server = msgr2::server_pre_auth(&conn.to_client).ok()?;
        let more = server
            .iter()
            .filter(|f| f.tag == tag::AUTH_REPLY_MORE)
            .count();
        let client = msgr2::client_pre_auth(&conn.to_server, more).ok()?;
        Some(Handshake { client, server })
    }
    fn client_frames(&self, t: u8) -> Vec<&Frame> {
        self.client.iter().filter(|f| f.tag == t).collect()
    }
    fn server_frames(&self, t: u8) -> Vec<&Frame> {
        self.server.iter().filter(|f| f.tag == t).collect()
    }
    fn client_end(&self) -> usize {
        self.client.last().unwrap().span.end
    }
    fn server_end(&self) -> usize {
        self.server.last().unwrap().span.end
    }
}

#[derive(Default)]
struct Summary {
    mon_sessions: usize,
    mon_with_service_tickets: usize,
    osd: usize,
    mgr: usize,
    without_mon_session: usize,
}

fn run_capture(mode_name: &str, flow: &str) -> Summary {
    let dir = support::shared_dir().join("captures");
    let pcap_path = dir.join(format!("{mode_name}-{flow}.pcap"));
    let conns = pcap::read_tcp_connections(&pcap_path)
        .unwrap_or_else(|e| panic!("{e} (captures are required)"));
    let keyring =
        Keyring::from_file(dir.join(format!("{mode_name}.client.kubernetes.keyring"))).unwrap();
    let name = EntityName::client("kubernetes");
    let key = keyring.key(&name).unwrap().clone();
    let expect_mode = if mode_name == "secure" {
        CON_MODE_SECURE
    } else {
        CON_MODE_CRC
    };
    let now = Instant::now();

    let mut summary = Summary::default();
    // global_id -> the client state of the mon session that obtained it
    let mut sessions: BTreeMap<u64, CephxClient> = BTreeMap::new();

    // Pass 1: monitor connections.
    for conn in &conns {
        let Some(hs) = Handshake::of(conn) else {
            continue;
        };
        let req = hs.client_frames(tag::AUTH_REQUEST);
        let Some(req) = req.first() else { continue };
        let (method, _modes, payload) = msgr2::auth_request(req).unwrap();
        assert_eq!(method, 2, "cephx");
        if payload.first() != Some(&10) {
            continue; // AUTH_MODE_MON only
        }
        summary.mon_sessions += 1;

        let mut cx = CephxClient::new(name.clone(), key.clone());
        assert_eq!(cx.initial_request(0), payload, "AUTH_REQUEST payload");

        let challenge = msgr2::bl_payload(hs.server_frames(tag::AUTH_REPLY_MORE)[0]).unwrap();
        let captured_more = msgr2::bl_payload(hs.client_frames(tag::AUTH_REQUEST_MORE)[0]).unwrap();
        let mut d = Decoder::new(&captured_more);
        assert_eq!(
            CephXRequestHeader::decode(&mut d).unwrap().request_type,
            CEPHX_GET_AUTH_SESSION_KEY
        );
        let auth = CephXAuthenticate::decode(&mut d).unwrap();
        assert!(d.is_empty());
        assert_eq!(auth.struct_v, 3);
        assert!(auth.old_ticket.blob.is_empty());

        // The proof of key, recomputed from the server challenge and the client challenge.
        let server_challenge = u64::from_le_bytes(challenge[1..9].try_into().unwrap());
        assert_eq!(
            client_proof(&key, server_challenge, auth.client_challenge),
            auth.key,
            "client proof"
        );

        // The whole AUTH_REQUEST_MORE payload, byte for byte.
        cx.set_want_keys(auth.other_keys);
        let ours = cx
            .handle_server_challenge(&challenge, auth.client_challenge)
            .unwrap();
        assert_eq!(
            hex::encode(&ours),
            hex::encode(&captured_more),
            "AUTH_REQUEST_MORE payload"
        );

        let (gid, con_mode, done) = msgr2::auth_done(hs.server_frames(tag::AUTH_DONE)[0]).unwrap();
        assert_eq!(con_mode, expect_mode);

        // A wrong key must be reported as such, and must not change any state.
        let mut wrong = CephxClient::new(
            name.clone(),
            CryptoKey::new_aes([0x5a; 16], Default::default()),
        );
        let e = wrong.handle_auth_done(&done, now).unwrap_err();
        assert!(e.is_wrong_key() && e.is_permission_denied(), "{e}");
        assert!(!wrong.has_ticket(EntityType::AUTH));

        let res = cx.handle_auth_done(&done, now).unwrap();
        cx.set_global_id(gid);
        assert_eq!(res.session_key.len(), 16);
        assert_eq!(
            cx.auth_session_key().unwrap().secret(),
            &res.session_key[..]
        );
        match con_mode {
            CON_MODE_CRC => assert!(res.connection_secret.is_empty()),
            _ => assert_eq!(res.connection_secret.len(), 64),
        }
        let auth_t = cx.ticket(EntityType::AUTH).unwrap();
        assert_eq!(
            auth_t.validity(),
            Duration::from_secs(72 * 3600),
            "auth_mon_ticket_ttl"
        );
        assert_eq!(auth_t.expires(), Some(now + Duration::from_secs(72 * 3600)));
        assert_eq!(
            auth_t.renew_after(),
            Some(now + Duration::from_secs(54 * 3600))
        );
        if auth.other_keys & 0x15 == 0x15 {
            summary.mon_with_service_tickets += 1;
            for svc in [EntityType::MON, EntityType::OSD, EntityType::MGR] {
                let t = cx
                    .ticket(svc)
                    .unwrap_or_else(|| panic!("no {svc:?} ticket"));
                assert_eq!(t.session_key().secret().len(), 16);
                assert!(!t.ticket_blob().blob.is_empty());
                assert_eq!(
                    t.validity(),
                    Duration::from_secs(3600),
                    "auth_service_ticket_ttl"
                );
            }
            assert_eq!(cx.needs_renewal(now), 0);
            assert_eq!(cx.needs_renewal(now + Duration::from_secs(2700)), 0x15);
            assert_eq!(cx.needs_renewal(now + Duration::from_secs(54 * 3600)), 0x35);
        } else {
            assert!(!cx.has_ticket(EntityType::OSD));
            assert_eq!(cx.needs_renewal(now), cx.want_keys());
        }

        verify_signatures(
            conn,
            hs.client_end(),
            hs.server_end(),
            con_mode,
            &res.session_key,
            &res.connection_secret,
        );
        sessions.insert(gid, cx);
    }

    // Pass 2: OSD / MGR connections, authorized with tickets from the mon session above.
    for conn in &conns {
        let Some(hs) = Handshake::of(conn) else {
            continue;
        };
        let Some(req) = hs.client_frames(tag::AUTH_REQUEST).first().copied() else {
            continue;
        };
        let (_method, _modes, payload) = msgr2::auth_request(req).unwrap();
        if payload.first() != Some(&1) {
            continue; // authorizers only
        }
        let mut d = Decoder::new(&payload[1..]);
        let gid = d.u64().unwrap();
        let service = EntityType(d.u32().unwrap());
        let Some(cx) = sessions.get(&gid) else {
            // A session whose mon handshake predates the capture (crc-rbd-flow has one).
            summary.without_mon_session += 1;
            continue;
        };
        let ticket = cx.ticket(service).unwrap();

        // Recover the nonce librados chose, then rebuild its authorizer exactly.
        let _ticket_blob = ceph_cephx::protocol::CephXTicketBlob::decode(&mut d).unwrap();
        let pt = ticket
            .session_key()
            .decode_decrypt(&mut d, "captured authorizer")
            .unwrap();
        assert!(d.is_empty());
        let msg: CephXAuthorize = ceph_encoding::decode_exact(&pt).unwrap();
        assert_eq!(
            (
                msg.struct_v,
                msg.have_challenge,
                msg.server_challenge_plus_one
            ),
            (2, false, 0)
        );
        let mut az = cx.build_authorizer(service, msg.nonce, gid).unwrap();
        assert_eq!(
            hex::encode(az.payload()),
            hex::encode(&payload),
            "authorizer for {service:?}"
        );

        let challenge = msgr2::bl_payload(hs.server_frames(tag::AUTH_REPLY_MORE)[0]).unwrap();
        let answer = az.add_challenge(&challenge).unwrap();
        let captured = msgr2::bl_payload(hs.client_frames(tag::AUTH_REQUEST_MORE)[0]).unwrap();
        assert_eq!(
            hex::encode(&answer),
            hex::encode(&captured),
            "challenge answer for {service:?}"
        );

        let (done_gid, con_mode, done) =
            msgr2::auth_done(hs.server_frames(tag::AUTH_DONE)[0]).unwrap();
        assert_eq!(done_gid, gid);
        assert_eq!(con_mode, expect_mode);
        let reply = az.verify_reply(&done).unwrap();
        match con_mode {
            CON_MODE_CRC => assert!(reply.connection_secret.is_empty()),
            _ => assert_eq!(reply.connection_secret.len(), 64),
        }
        // A reply for another nonce is rejected.
        let other = cx.build_authorizer(service, msg.nonce ^ 1, gid).unwrap();
        assert!(matches!(
            other.verify_reply(&done),
            Err(ceph_cephx::CephxError::NonceMismatch { .. })
        ));

        verify_signatures(
            conn,
            hs.client_end(),
            hs.server_end(),
            con_mode,
            az.session_key().secret(),
            &reply.connection_secret,
        );
        match service {
            EntityType::OSD => summary.osd += 1,
            EntityType::MGR => summary.mgr += 1,
            s => panic!("unexpected service {s:?}"),
        }
    }
    eprintln!(
        "{mode_name}-{flow}: {} mon sessions ({} with service tickets), {} osd, {} mgr authorizers verified, {} without mon session",
        summary.mon_sessions, summary.mon_with_service_tickets, summary.osd, summary.mgr, summary.without_mon_session
    );
    summary
}

#[test]
fn crc_lspools() {
    let s = run_capture("crc", "lspools");
    assert!(s.mon_sessions >= 1);
    assert!(s.mon_with_service_tickets >= 1);
}

#[test]
fn secure_lspools() {
    let s = run_capture("secure", "lspools");
    assert!(s.mon_sessions >= 1);
    assert!(s.mon_with_service_tickets >= 1);
}

#[test]
fn crc_put_get_osd_and_mgr() {
    let s = run_capture("crc", "put-get");
    assert!(s.mon_with_service_tickets >= 2, "two processes");
    assert!(s.osd >= 2 && s.mgr >= 2, "osd {} mgr {}", s.osd, s.mgr);
}

#[test]
fn secure_put_get_osd_and_mgr() {
    let s = run_capture("secure", "put-get");
    assert!(s.mon_with_service_tickets >= 2, "two processes");
    assert!(s.osd >= 2 && s.mgr >= 2, "osd {} mgr {}", s.osd, s.mgr);
}

#[test]
fn rbd_flows() {
    for mode in ["crc", "secure"] {
        let s = run_capture(mode, "rbd-flow");
        assert!(
            s.mon_sessions >= 3 && s.osd >= 3,
            "{mode}: mon {} osd {}",
            s.mon_sessions,
            s.osd
        );
        assert!(s.without_mon_session <= 1);
    }
}
