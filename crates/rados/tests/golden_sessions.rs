//! Golden session replay: every byte of every recorded librados/librbd session
//! (`../shared/captures`, Ceph 16.2.15, crc and secure mode; see its README) is decoded with
//! our msgr2 frame reader, authenticated with our cephx client, and checked against our
//! message decoders. Fails — never skips — when the captures are missing
//! (`$CEPH_CAPTURES` overrides the location).
//!
//! Per TCP connection:
//! 1. Both byte streams go through a `FrameReader` to the end of the capture: every frame must
//!    decode and no byte may be left over. Pre-auth frames are crc-framed; at AUTH_DONE the
//!    session's connection secret is recovered with cephx (mon: `handle_server_challenge` +
//!    `handle_auth_done` with the keyring key; OSD/MGR: the authorizer flow, with the nonce
//!    librados chose read back from its authorizer), and in secure mode the server→client
//!    reader decrypts as the client (`SecureKeys::from_connection_secret`), the client→server
//!    reader as the server (`SecureKeys::server_side`).
//! 2. Our `Connection` replays the client: fed the recorded server bytes in uneven chunks and
//!    asked to send the recorded client's messages when librados sent them, it must write the
//!    recorded client byte stream — byte for byte, in both modes — and deliver exactly the
//!    server's messages. (One known, accepted difference: librados sends global_id -1 in
//!    CLIENT_IDENT to monitors, we send the id AUTH_DONE assigned.)
//! 3. Every MESSAGE frame's header2 decodes, sequence numbers run 1, 2, 3… per direction, and
//!    the payloads decode with our codecs: MMonMap (MonMap), MOSDMap (OsdMapMsg, OsdMap,
//!    Incremental), MOSDOp (re-encoded with `OsdOpRequest`, byte-identical), MOSDOpReply
//!    (OsdOpReply). In put-get the 4 KiB object (`obj4k.bin`) must be the write's data
//!    segment and the read reply's output.

#[path = "../../cephx/tests/support/pcap.rs"]
mod pcap;

use bytes::Bytes;
use ceph_cephx::protocol::{
    CephXAuthenticate, CephXAuthorize, CephXRequestHeader, CephXTicketBlob,
};
use ceph_cephx::{CephxClient, CryptoKey, Keyring};
use ceph_encoding::{Decode, Decoder, EntityAddr, EntityAddrVec, EntityName, EntityType, UTime};
use ceph_msgr2::frame::{FrameReader, Mode, SecureKeys, Tag};
use ceph_msgr2::{
    AuthClient, AuthKeys, ConMode, Connection, ConnectionConfig, Event, Message, MsgHeader, MsgType,
};
use ceph_rados::mon::messages::{decode_mon_map_msg, OsdMapMsg};
use ceph_rados::mon::monmap::MonMap;
use ceph_rados::osd::messages::{OsdOpReply, OsdOpRequest, SnapContext};
use ceph_rados::osdmap::{Incremental, OsdMap, PgId};
use ceph_rados::OsdOp;
use pcap::TcpConnection;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

const CON_MODE_CRC: u32 = 1;
const CON_MODE_SECURE: u32 = 2;

type R<T> = Result<T, String>;

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e}")
}

fn captures_dir() -> PathBuf {
    match std::env::var_os("CEPH_CAPTURES") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/captures"
        )),
    }
}

fn read_capture_file(name: &str) -> Vec<u8> {
    let path = captures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} — the recorded sessions are required (set CEPH_CAPTURES)",
            path.display()
        )
    })
}

fn obj4k() -> &'static [u8] {
    static OBJ: OnceLock<Vec<u8>> = OnceLock::new();
    OBJ.get_or_init(|| {
        let b = read_capture_file("obj4k.bin");
        assert_eq!(b.len(), 4096);
        b
    })
}

/// The cluster fsid from `<mode>.ceph.conf`.
fn conf_fsid(mode: &str) -> String {
    let conf = String::from_utf8(read_capture_file(&format!("{mode}.ceph.conf"))).unwrap();
    conf.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == "fsid")
        .map(|(_, v)| v.trim().to_string())
        .expect("fsid in ceph.conf")
}

// ------------------------------------------------------------------------------------------
// Frame-level replay of one connection
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Mon,
    Osd,
    Mgr,
}

/// One decoded frame and the stream offset just past it.
#[derive(Debug, Clone)]
struct Decoded {
    tag: Tag,
    segments: Vec<Bytes>,
    end: usize,
}

/// One replayed TCP connection.
#[derive(Debug)]
struct Session {
    index: usize,
    peer: Option<Peer>,
    /// Negotiated con_mode; None when the session never reached AUTH_DONE.
    con_mode: Option<u32>,
    global_id: u64,
    to_server: Vec<Decoded>,
    to_client: Vec<Decoded>,
    msgs_to_server: Vec<Message>,
    msgs_to_client: Vec<Message>,
    /// (session key, connection secret), when we could authenticate the session ourselves.
    keys: Option<(Vec<u8>, Vec<u8>)>,
}

impl Session {
    fn what(&self) -> String {
        format!(
            "connection #{} ({:?}, gid {})",
            self.index, self.peer, self.global_id
        )
    }
}

fn strip_banner(stream: &[u8], r: &mut FrameReader) -> R<()> {
    r.feed(stream);
    let head = r.peek(10).ok_or("stream shorter than a banner")?;
    if &head[..8] != b"ceph v2\n" {
        return Err(format!("no msgr2 banner: {:02x?}", &head[..8]));
    }
    let n = u16::from_le_bytes([head[8], head[9]]) as usize;
    let banner = r.take_raw(10 + n).ok_or("truncated banner")?;
    // supported = required = 0x1 (msgr2.1) on both sides in Pacific.
    assert_eq!(
        &banner[10..],
        &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..n]
    );
    Ok(())
}

fn next_frame(r: &mut FrameReader, total: usize, what: &str, n: usize) -> R<Option<Decoded>> {
    match r.next() {
        Ok(Some((f, _raw))) => Ok(Some(Decoded {
            tag: f.tag,
            segments: f.segments,
            end: total - r.buffered(),
        })),
        Ok(None) => Ok(None),
        Err(e) => Err(format!(
            "{what}: frame #{n} at offset {} failed to decode: {e}",
            total - r.buffered()
        )),
    }
}

fn blob(seg: &[u8], what: &'static str) -> R<Vec<u8>> {
    Ok(Decoder::new(seg).blob(what).map_err(err(what))?.to_vec())
}

/// Decode both streams of `conn` to the end. `mons` carries the cephx state of the monitor
/// sessions (by global id) to the OSD/MGR connections opened with their tickets.
fn replay_connection(
    index: usize,
    conn: &TcpConnection,
    name: &EntityName,
    key: &CryptoKey,
    mons: &mut BTreeMap<u64, CephxClient>,
    now: Instant,
) -> R<Session> {
    let (c2s_len, s2c_len) = (conn.to_server.len(), conn.to_client.len());
    let mut s2c = FrameReader::default();
    let mut c2s = FrameReader::default();
    strip_banner(&conn.to_client, &mut s2c).map_err(|e| format!("server→client: {e}"))?;
    strip_banner(&conn.to_server, &mut c2s).map_err(|e| format!("client→server: {e}"))?;
    let mut s = Session {
        index,
        peer: None,
        con_mode: None,
        global_id: 0,
        to_server: vec![],
        to_client: vec![],
        msgs_to_server: vec![],
        msgs_to_client: vec![],
        keys: None,
    };

    // Server pre-auth frames, up to AUTH_DONE.
    let mut done = None;
    let mut solicits = 0; // server frames each answered by one more client auth frame
    while let Some(f) = next_frame(&mut s2c, s2c_len, "server→client", s.to_client.len())? {
        let tag = f.tag;
        s.to_client.push(f);
        match tag {
            Tag::AUTH_REPLY_MORE | Tag::AUTH_BAD_METHOD => solicits += 1,
            Tag::AUTH_DONE => {
                done = Some(s.to_client.len() - 1);
                break;
            }
            _ => {}
        }
    }
    // Client pre-auth frames: HELLO, AUTH_REQUEST, one auth frame per solicitation.
    let mut auth_frames = 0;
    while done.is_none() || auth_frames < 1 + solicits {
        let Some(f) = next_frame(&mut c2s, c2s_len, "client→server", s.to_server.len())? else {
            break;
        };
        if matches!(f.tag, Tag::AUTH_REQUEST | Tag::AUTH_REQUEST_MORE) {
            auth_frames += 1;
        }
        s.to_server.push(f);
    }

    if let Some(done_idx) = done {
        let seg0s = |fs: &[Decoded], t: Tag| -> Vec<Bytes> {
            fs.iter()
                .filter(|f| f.tag == t)
                .map(|f| f.segments[0].clone())
                .collect()
        };
        let requests = seg0s(&s.to_server, Tag::AUTH_REQUEST);
        let mut d = Decoder::new(requests.last().ok_or("AUTH_DONE without AUTH_REQUEST")?);
        assert_eq!(
            d.u32().map_err(err("AUTH_REQUEST"))?,
            2,
            "auth method cephx"
        );
        let _modes = d.vec::<u32>(4, "modes").map_err(err("AUTH_REQUEST"))?;
        let payload = d
            .blob("auth payload")
            .map_err(err("AUTH_REQUEST"))?
            .to_vec();
        let mut d = Decoder::new(&s.to_client[done_idx].segments[0]);
        let gid = d.u64().map_err(err("AUTH_DONE"))?;
        let con_mode = d.u32().map_err(err("AUTH_DONE"))?;
        let done_payload = d.blob("auth_done").map_err(err("AUTH_DONE"))?.to_vec();
        s.con_mode = Some(con_mode);
        s.global_id = gid;
        let reply_more = seg0s(&s.to_client, Tag::AUTH_REPLY_MORE);
        let request_more = seg0s(&s.to_server, Tag::AUTH_REQUEST_MORE);

        s.keys = match payload.first() {
            // AUTH_MODE_MON: u8 10, EntityName, u64 global_id.
            Some(10) => {
                s.peer = Some(Peer::Mon);
                let mut d = Decoder::new(&payload[1..]);
                assert_eq!(
                    &EntityName::decode(&mut d).map_err(err("mon auth request"))?,
                    name
                );
                let requested_gid = d.u64().map_err(err("mon auth request"))?;
                let mut cx = mons
                    .get(&requested_gid)
                    .cloned()
                    .unwrap_or_else(|| CephxClient::new(name.clone(), key.clone()));
                assert_eq!(
                    cx.initial_request(requested_gid),
                    payload,
                    "AUTH_REQUEST payload"
                );
                let challenge = blob(reply_more.last().ok_or("no server challenge")?, "challenge")?;
                let more = blob(request_more.last().ok_or("no AUTH_REQUEST_MORE")?, "more")?;
                let mut d = Decoder::new(&more);
                CephXRequestHeader::decode(&mut d).map_err(err("AUTH_REQUEST_MORE"))?;
                let auth = CephXAuthenticate::decode(&mut d).map_err(err("AUTH_REQUEST_MORE"))?;
                cx.set_want_keys(auth.other_keys);
                let ours = cx
                    .handle_server_challenge(&challenge, auth.client_challenge)
                    .map_err(err("challenge"))?;
                if ours != more {
                    return Err("our AUTH_REQUEST_MORE payload differs from librados'".into());
                }
                let res = cx
                    .handle_auth_done(&done_payload, now)
                    .map_err(err("handle_auth_done"))?;
                cx.set_global_id(gid);
                mons.insert(gid, cx);
                Some((res.session_key.clone(), res.connection_secret.clone()))
            }
            // An authorizer: u8 1, u64 global_id, u32 service, ticket, encrypted CephXAuthorize.
            Some(1) => {
                let mut d = Decoder::new(&payload[1..]);
                let agid = d.u64().map_err(err("authorizer"))?;
                let service = EntityType(d.u32().map_err(err("authorizer"))?);
                s.peer = Some(match service {
                    EntityType::OSD => Peer::Osd,
                    EntityType::MGR => Peer::Mgr,
                    other => return Err(format!("authorizer for {other:?}")),
                });
                assert_eq!(agid, gid, "AUTH_DONE echoes the client's global id");
                match mons.get(&agid) {
                    // The mon session of this process predates the capture.
                    None => None,
                    Some(cx) => {
                        let ticket = cx
                            .ticket(service)
                            .ok_or_else(|| format!("no {service:?} ticket"))?;
                        CephXTicketBlob::decode(&mut d).map_err(err("authorizer ticket"))?;
                        let pt = ticket
                            .session_key()
                            .decode_decrypt(&mut d, "authorizer")
                            .map_err(err("authorizer"))?;
                        let msg: CephXAuthorize =
                            ceph_encoding::decode_exact(&pt).map_err(err("CephXAuthorize"))?;
                        let mut az = cx
                            .build_authorizer(service, msg.nonce, agid)
                            .map_err(err("build_authorizer"))?;
                        assert_eq!(az.payload(), &payload[..], "authorizer bytes");
                        assert_eq!(reply_more.len(), request_more.len());
                        for (ch, answer) in reply_more.iter().zip(&request_more) {
                            let ours = az
                                .add_challenge(&blob(ch, "challenge")?)
                                .map_err(err("add_challenge"))?;
                            assert_eq!(ours, blob(answer, "challenge answer")?, "challenge answer");
                        }
                        let reply = az
                            .verify_reply(&done_payload)
                            .map_err(err("verify_reply"))?;
                        Some((
                            az.session_key().secret().to_vec(),
                            reply.connection_secret.clone(),
                        ))
                    }
                }
            }
            other => return Err(format!("unknown auth payload start {other:?}")),
        };

        match (con_mode, s.keys.as_ref().map(|k| &k.1)) {
            (CON_MODE_CRC, secret) => {
                if let Some(secret) = secret {
                    assert!(secret.is_empty(), "no connection secret in crc mode");
                }
            }
            (CON_MODE_SECURE, Some(secret)) => {
                assert_eq!(secret.len(), 64, "Pacific connection secrets are 64 bytes");
                s2c.set_mode(Mode::Secure(Box::new(
                    SecureKeys::from_connection_secret(secret).map_err(err("keys"))?,
                )));
                c2s.set_mode(Mode::Secure(Box::new(
                    SecureKeys::server_side(secret).map_err(err("keys"))?,
                )));
            }
            (CON_MODE_SECURE, None) => {
                return Err(format!(
                    "secure session of global id {gid} without its mon session in the capture"
                ))
            }
            (m, _) => return Err(format!("con_mode {m}")),
        }
    }

    // Everything else, to the end of the capture.
    while let Some(f) = next_frame(&mut s2c, s2c_len, "server→client", s.to_client.len())? {
        s.to_client.push(f);
    }
    while let Some(f) = next_frame(&mut c2s, c2s_len, "client→server", s.to_server.len())? {
        s.to_server.push(f);
    }
    if c2s.buffered() != 0 || s2c.buffered() != 0 {
        return Err(format!(
            "bytes left after the last frame: {} client→server, {} server→client",
            c2s.buffered(),
            s2c.buffered()
        ));
    }
    for (frames, msgs) in [
        (&s.to_server, &mut s.msgs_to_server),
        (&s.to_client, &mut s.msgs_to_client),
    ] {
        for f in frames.iter().filter(|f| f.tag == Tag::MESSAGE) {
            if f.segments[0].len() != ceph_msgr2::HEADER2_LEN {
                return Err(format!("header2 of {} bytes", f.segments[0].len()));
            }
            let header = MsgHeader::decode(&f.segments[0]).map_err(err("header2"))?;
            let seg = |i: usize| f.segments.get(i).cloned().unwrap_or_default();
            msgs.push(Message {
                header,
                front: seg(1),
                middle: seg(2),
                data: seg(3).into(),
            });
        }
    }
    Ok(s)
}

// ------------------------------------------------------------------------------------------
// Replaying the client with our Connection
// ------------------------------------------------------------------------------------------

/// Plays the recorded client's side of the authentication exchange.
struct RecordedAuth {
    request: Vec<u8>,
    answers: VecDeque<Vec<u8>>,
    keys: (Vec<u8>, Vec<u8>),
}

impl AuthClient for RecordedAuth {
    fn auth_request(&mut self) -> Result<(u32, Vec<u8>), ceph_msgr2::Error> {
        Ok((ceph_msgr2::auth_method::CEPHX, self.request.clone()))
    }
    fn handle_reply_more(&mut self, _payload: &[u8]) -> Result<Vec<u8>, ceph_msgr2::Error> {
        self.answers
            .pop_front()
            .ok_or_else(|| ceph_msgr2::Error::Auth("no recorded answer left".into()))
    }
    fn handle_done(
        &mut self,
        _gid: u64,
        _mode: u32,
        _payload: &[u8],
    ) -> Result<AuthKeys, ceph_msgr2::Error> {
        Ok(AuthKeys {
            session_key: self.keys.0.clone(),
            connection_secret: self.keys.1.clone(),
        })
    }
}

/// CLIENT_IDENT fields.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientIdent {
    my_addrs: EntityAddrVec,
    target: EntityAddr,
    gid: i64,
    global_seq: u64,
    supported: u64,
    required: u64,
    flags: u64,
    cookie: u64,
}

fn client_ident(seg: &[u8]) -> R<ClientIdent> {
    let mut d = Decoder::new(seg);
    let e = err("CLIENT_IDENT");
    let ci = ClientIdent {
        my_addrs: EntityAddrVec::decode(&mut d).map_err(&e)?,
        target: EntityAddr::decode(&mut d).map_err(&e)?,
        gid: d.i64().map_err(&e)?,
        global_seq: d.u64().map_err(&e)?,
        supported: d.u64().map_err(&e)?,
        required: d.u64().map_err(&e)?,
        flags: d.u64().map_err(&e)?,
        cookie: d.u64().map_err(&e)?,
    };
    d.finish("CLIENT_IDENT").map_err(&e)?;
    Ok(ci)
}

/// What our Connection did with the recorded server bytes.
struct ConnReplay {
    sent: Vec<u8>,
    messages: Vec<Message>,
    ready: Option<(u64, ConMode)>,
}

/// Drive a `Connection` configured like the recorded client with the recorded server bytes.
fn replay_with_connection(conn: &TcpConnection, s: &Session) -> R<ConnReplay> {
    let keys = s.keys.clone().ok_or("no keys")?;
    let first = |t: Tag| {
        s.to_server
            .iter()
            .find(|f| f.tag == t)
            .ok_or(format!("no {t:?} from the client"))
    };
    let mut d = Decoder::new(&first(Tag::HELLO)?.segments[0]);
    let entity_type = EntityType(d.u8().map_err(err("HELLO"))? as u32);
    assert_eq!(entity_type, EntityType::CLIENT);
    let peer_addr = EntityAddr::decode(&mut d).map_err(err("HELLO"))?;
    let mut d = Decoder::new(&first(Tag::AUTH_REQUEST)?.segments[0]);
    d.u32().map_err(err("AUTH_REQUEST"))?;
    let modes = d
        .vec::<u32>(4, "modes")
        .map_err(err("AUTH_REQUEST"))?
        .into_iter()
        .map(|m| match m {
            1 => Ok(ConMode::Crc),
            2 => Ok(ConMode::Secure),
            m => Err(format!("mode {m}")),
        })
        .collect::<R<Vec<_>>>()?;
    let request = d.blob("payload").map_err(err("AUTH_REQUEST"))?.to_vec();
    let answers = s
        .to_server
        .iter()
        .filter(|f| f.tag == Tag::AUTH_REQUEST_MORE)
        .map(|f| blob(&f.segments[0], "AUTH_REQUEST_MORE"))
        .collect::<R<_>>()?;
    let ci = client_ident(&first(Tag::CLIENT_IDENT)?.segments[0])?;
    let cfg = ConnectionConfig {
        entity_type,
        peer_addr,
        nonce: ci.my_addrs.0.first().map(|a| a.nonce).unwrap_or(0),
        global_id: s.global_id,
        global_seq: ci.global_seq,
        client_cookie: ci.cookie,
        features_supported: ci.supported,
        features_required: ci.required,
        modes,
        lossy: ci.flags & 1 != 0,
        limits: Default::default(),
    };
    let mut c = Connection::new(
        cfg,
        Box::new(RecordedAuth {
            request,
            answers,
            keys,
        }),
    );
    let mut out = ConnReplay {
        sent: vec![],
        messages: vec![],
        ready: None,
    };
    let mut fed = 0;
    let mut step = 1;
    // Feed the server's bytes up to `target` in uneven chunks, as TCP delivers them.
    let mut feed_to = |c: &mut Connection, out: &mut ConnReplay, target: usize| -> R<()> {
        while fed < target {
            let end = (fed + step).min(target);
            for b in c.poll_transmit() {
                out.sent.extend_from_slice(&b);
            }
            c.receive(&conn.to_client[fed..end])
                .map_err(|e| format!("Connection::receive at {fed}: {e}"))?;
            fed = end;
            step = step % 251 + 17;
            while let Some(ev) = c.poll_event() {
                match ev {
                    Event::Ready {
                        global_id, mode, ..
                    } => out.ready = Some((global_id, mode)),
                    Event::Message(m) => out.messages.push(m),
                    Event::KeepaliveAck(_) => {}
                }
            }
        }
        Ok(())
    };
    let mut frames = s.to_client.iter();
    while out.ready.is_none() {
        let f = frames
            .next()
            .ok_or("the server never sent SERVER_IDENT to our Connection")?;
        feed_to(&mut c, &mut out, f.end)?;
    }
    // Send each recorded client message when librados did: after it had received exactly
    // `ack_seq` messages. Then header2 seq and ack_seq come out the same.
    for m in &s.msgs_to_server {
        while (out.messages.len() as u64) < m.header.ack_seq {
            let f = frames
                .next()
                .ok_or("ack_seq beyond the server's messages")?;
            feed_to(&mut c, &mut out, f.end)?;
        }
        for b in c.poll_transmit() {
            out.sent.extend_from_slice(&b);
        }
        c.send_message(m.clone());
    }
    feed_to(&mut c, &mut out, conn.to_client.len())?;
    for b in c.poll_transmit() {
        out.sent.extend_from_slice(&b);
    }
    Ok(out)
}

/// Our Connection must have written what librados wrote, frame for frame.
fn check_connection_replay(conn: &TcpConnection, s: &Session, r: &ConnReplay) {
    let what = s.what();
    assert_eq!(
        r.ready,
        Some((
            s.global_id,
            if s.con_mode == Some(CON_MODE_SECURE) {
                ConMode::Secure
            } else {
                ConMode::Crc
            }
        )),
        "{what}"
    );
    assert!(
        r.messages == s.msgs_to_client,
        "{what}: Connection delivered other messages than the frame reader read"
    );
    let recorded = &conn.to_server;
    assert_eq!(r.sent.len(), recorded.len(), "{what}: bytes written");
    // Frame boundaries are the same on both sides; compare frame by frame.
    let ident = s
        .to_server
        .iter()
        .position(|f| f.tag == Tag::CLIENT_IDENT)
        .expect("CLIENT_IDENT");
    let mut start = banner_end(recorded);
    assert_eq!(&r.sent[..start], &recorded[..start], "{what}: banner");
    for (i, f) in s.to_server.iter().enumerate() {
        let (ours, theirs) = (&r.sent[start..f.end], &recorded[start..f.end]);
        if i == ident && ours != theirs {
            // librados sends its messenger's id, still -1 before the first mon session
            // authenticates; we send the id AUTH_DONE just gave. Nothing else may differ.
            assert_eq!(s.peer, Some(Peer::Mon), "{what}: CLIENT_IDENT differs");
            let ours = decode_own_frame(conn, s, r, i);
            let (mut a, b) = (
                client_ident(&ours).unwrap(),
                client_ident(&f.segments[0]).unwrap(),
            );
            assert_eq!(
                (a.gid, b.gid),
                (s.global_id as i64, -1),
                "{what}: CLIENT_IDENT gid"
            );
            a.gid = -1;
            assert_eq!(a, b, "{what}: CLIENT_IDENT");
        } else {
            assert!(
                ours == theirs,
                "{what}: client frame #{i} ({:?}) differs from librados' bytes",
                f.tag
            );
        }
        start = f.end;
    }
}

fn banner_end(stream: &[u8]) -> usize {
    10 + u16::from_le_bytes([stream[8], stream[9]]) as usize
}

/// Segment 0 of frame `i` of what our Connection wrote, decoded like the recorded stream.
fn decode_own_frame(conn: &TcpConnection, s: &Session, r: &ConnReplay, i: usize) -> Bytes {
    let ours = TcpConnection {
        client: conn.client,
        server: conn.server,
        to_server: r.sent.clone(),
        to_client: conn.to_client.clone(),
    };
    let (key_name, key) = key_for(if s.con_mode == Some(CON_MODE_SECURE) {
        "secure"
    } else {
        "crc"
    });
    let mut mons = BTreeMap::new();
    let replay =
        replay_connection(s.index, &ours, &key_name, &key, &mut mons, Instant::now()).unwrap();
    replay.to_server[i].segments[0].clone()
}

fn key_for(mode: &str) -> (EntityName, CryptoKey) {
    let text = String::from_utf8(read_capture_file(&format!(
        "{mode}.client.kubernetes.keyring"
    )))
    .unwrap();
    let kr = Keyring::parse(&text).unwrap();
    let name = EntityName::client("kubernetes");
    let key = kr.key(&name).unwrap().clone();
    (name, key)
}

// ------------------------------------------------------------------------------------------
// Message payloads
// ------------------------------------------------------------------------------------------

/// A MOSDOp front (v8) read back into the fields `OsdOpRequest` encodes.
/// ceph: src/messages/MOSDOp.h encode_payload (HEAD_VERSION 8).
struct MosdOp {
    /// Where the osd_reqid_t body lies in the front.
    reqid_at: std::ops::Range<usize>,
    /// The explicit reqid (entity type, num, tid, inc); all zero from librados, which lets
    /// the OSD use the connection's peer name and the header tid (`MOSDOp::get_reqid`).
    reqid: (u8, u64, u64, i32),
    pgid: PgId,
    shard: i8,
    hash: u32,
    epoch: u32,
    flags: u32,
    mtime: UTime,
    pool: i64,
    key: String,
    nspace: String,
    oid: String,
    ops: Vec<OsdOp>,
    snapid: u64,
    snapc: SnapContext,
    attempt: i32,
    features: u64,
}

fn parse_mosdop(m: &Message) -> R<MosdOp> {
    let e = err("MOSDOp");
    let mut d = Decoder::new(&m.front);
    let (_v, mut spg) = d.versioned(1, "spg_t").map_err(&e)?;
    let pgid = PgId::decode(&mut spg).map_err(&e)?;
    let shard = spg.i8().map_err(&e)?;
    let hash = d.u32().map_err(&e)?;
    let epoch = d.u32().map_err(&e)?;
    let flags = d.u32().map_err(&e)?;
    let (_v, mut r) = d.versioned(2, "osd_reqid_t").map_err(&e)?;
    let reqid_at = d.position() - r.remaining()..d.position();
    let reqid = (
        r.u8().map_err(&e)?,
        r.u64().map_err(&e)?,
        r.u64().map_err(&e)?,
        r.i32().map_err(&e)?,
    );
    d.skip(24, "blkin trace").map_err(&e)?;
    let _client_inc = d.u32().map_err(&e)?;
    let mtime = UTime::decode(&mut d).map_err(&e)?;
    let (_v, mut oloc) = d.versioned(6, "object_locator_t").map_err(&e)?;
    let pool = oloc.i64().map_err(&e)?;
    let _preferred = oloc.i32().map_err(&e)?;
    let key = oloc.string().map_err(&e)?;
    let nspace = oloc.string().map_err(&e)?;
    let oid = d.string().map_err(&e)?;
    let nops = d.u16().map_err(&e)? as usize;
    let mut ops = Vec::with_capacity(nops);
    let mut off = 0;
    let data = m.data.to_bytes();
    for _ in 0..nops {
        let op = d.u16().map_err(&e)?;
        let flags = d.u32().map_err(&e)?;
        let args: [u8; 28] = d.array("ceph_osd_op").map_err(&e)?;
        let len = d.u32().map_err(&e)? as usize;
        let indata = data
            .get(off..off + len)
            .ok_or("op input beyond the data segment")?;
        ops.push(OsdOp {
            op,
            flags,
            args,
            indata: data.slice_ref(indata).into(),
        });
        off += len;
    }
    if off != m.data.len() {
        return Err(format!(
            "data segment {} bytes, ops take {off}",
            m.data.len()
        ));
    }
    let snapid = d.u64().map_err(&e)?;
    let seq = d.u64().map_err(&e)?;
    let snaps = d.vec::<u64>(8, "snaps").map_err(&e)?;
    let attempt = d.i32().map_err(&e)?;
    let features = d.u64().map_err(&e)?;
    d.finish("MOSDOp").map_err(&e)?;
    Ok(MosdOp {
        reqid_at,
        reqid,
        pgid,
        shard,
        hash,
        epoch,
        flags,
        mtime,
        pool,
        key,
        nspace,
        oid,
        ops,
        snapid,
        snapc: SnapContext { seq, snaps },
        attempt,
        features,
    })
}

/// What one capture showed.
#[derive(Default, Debug)]
struct Tally {
    sessions: usize,
    authenticated: BTreeMap<&'static str, usize>,
    frames: usize,
    secure_frames: usize,
    replayed_connections: usize,
    types_to_client: BTreeSet<u16>,
    types_to_server: BTreeSet<u16>,
    monmaps: usize,
    full_osdmaps: usize,
    incrementals: usize,
    osd_ops: usize,
    osd_replies: usize,
    /// Replies whose overall result is not 0.
    osd_reply_errors: usize,
    obj4k_written: usize,
    obj4k_read: usize,
}

fn check_messages(mode: &str, s: &Session, tally: &mut Tally) {
    let what = s.what();
    let fsid = conf_fsid(mode);
    let mon_port = if mode == "secure" { 3310 } else { 3300 };
    for (dir, msgs) in [
        ("client→server", &s.msgs_to_server),
        ("server→client", &s.msgs_to_client),
    ] {
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m.header.seq, i as u64 + 1, "{what} {dir}: header2 seq");
            assert!(
                m.header.compat_version <= m.header.version,
                "{what} {dir}: {:?}",
                m.header
            );
        }
    }
    let mut ops_by_tid: BTreeMap<u64, MosdOp> = BTreeMap::new();
    for m in &s.msgs_to_server {
        tally.types_to_server.insert(m.header.ty.0);
        if m.header.ty == MsgType::OSD_OP {
            tally.osd_ops += 1;
            assert_eq!(s.peer, Some(Peer::Osd));
            assert_eq!(
                (m.header.version, m.header.compat_version),
                (8, 3),
                "{what}: MOSDOp v8"
            );
            let op = parse_mosdop(m).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                op.reqid,
                (0, 0, 0, 0),
                "{what}: librados leaves the reqid to the OSD"
            );
            let tid = m.header.tid;
            // Our encoder must produce librados' bytes from the same fields.
            let req = OsdOpRequest {
                tid,
                pgid: op.pgid,
                shard: op.shard,
                hash: op.hash,
                epoch: op.epoch,
                flags: op.flags,
                global_id: s.global_id,
                mtime: op.mtime,
                pool: op.pool,
                key: &op.key,
                nspace: &op.nspace,
                oid: &op.oid,
                ops: &op.ops,
                snapid: op.snapid,
                snapc: &op.snapc,
                attempt: op.attempt,
                features: op.features,
            };
            let ours = req.encode();
            // Byte for byte, but for the reqid: we set it explicitly to what the OSD would
            // derive from a zero one (client.<global id>, header tid), or leave it zero.
            let back = parse_mosdop(&ours).unwrap_or_else(|e| panic!("{what}: our MOSDOp: {e}"));
            assert!(
                back.reqid == (0, 0, 0, 0) || back.reqid == (8, s.global_id, tid, 0),
                "{what}: our reqid {:?}",
                back.reqid
            );
            assert_eq!(back.reqid_at, op.reqid_at);
            let r = op.reqid_at.clone();
            assert!(
                ours.front[..r.start] == m.front[..r.start] && ours.front[r.end..] == m.front[r.end..],
                "{what}: OsdOpRequest::encode differs from librados' MOSDOp (tid {tid}):\n ours   {:02x?}\n theirs {:02x?}",
                &ours.front[..],
                &m.front[..]
            );
            assert!(
                ours.data == m.data,
                "{what}: OsdOpRequest::encode data differs (tid {tid})"
            );
            assert_eq!(
                (
                    ours.header.ty,
                    ours.header.version,
                    ours.header.compat_version,
                    ours.header.tid
                ),
                (
                    m.header.ty,
                    m.header.version,
                    m.header.compat_version,
                    m.header.tid
                ),
                "{what}: MOSDOp header"
            );
            if m.data == *obj4k() {
                tally.obj4k_written += 1;
                assert_eq!(op.oid, "obj4k");
                assert!(
                    op.ops.iter().any(|o| o.is_write()),
                    "{what}: the 4 KiB object goes out in a write"
                );
            }
            ops_by_tid.insert(tid, op);
        }
    }
    for m in &s.msgs_to_client {
        tally.types_to_client.insert(m.header.ty.0);
        match m.header.ty {
            MsgType::MON_MAP => {
                let blob =
                    decode_mon_map_msg(&m.front).unwrap_or_else(|e| panic!("{what}: MMonMap: {e}"));
                let map = MonMap::decode(&blob).unwrap_or_else(|e| panic!("{what}: MonMap: {e}"));
                assert_eq!(map.fsid.to_string(), fsid, "{what}: MonMap fsid");
                assert!(map.epoch >= 1);
                assert_eq!(map.mons.len(), 1, "{what}: single-monitor test cluster");
                let v2 = map.mons[0].addrs.msgr2().expect("mon has a v2 address");
                assert_eq!(
                    v2.addr.map(|a| a.port()),
                    Some(mon_port),
                    "{what}: mon address {}",
                    map.mons[0].addrs
                );
                tally.monmaps += 1;
            }
            MsgType::OSD_MAP => {
                let msg =
                    OsdMapMsg::decode(&m.front).unwrap_or_else(|e| panic!("{what}: MOSDMap: {e}"));
                assert_eq!(msg.fsid.to_string(), fsid, "{what}: MOSDMap fsid");
                assert!(
                    !msg.fulls.is_empty() || !msg.incrementals.is_empty(),
                    "{what}: empty MOSDMap"
                );
                for (epoch, b) in &msg.fulls {
                    let map = OsdMap::decode(b)
                        .unwrap_or_else(|e| panic!("{what}: full OSDMap e{epoch}: {e}"));
                    assert_eq!(map.epoch, *epoch, "{what}: OSDMap epoch");
                    assert!(!map.pools.is_empty(), "{what}: the test pool");
                    assert!(msg.newest >= *epoch);
                    tally.full_osdmaps += 1;
                }
                for (epoch, b) in &msg.incrementals {
                    Incremental::decode(b)
                        .unwrap_or_else(|e| panic!("{what}: incremental OSDMap e{epoch}: {e}"));
                    tally.incrementals += 1;
                }
            }
            MsgType::OSD_OPREPLY => {
                tally.osd_replies += 1;
                let r =
                    OsdOpReply::decode(m).unwrap_or_else(|e| panic!("{what}: MOSDOpReply: {e}"));
                let op = ops_by_tid
                    .get(&r.tid)
                    .unwrap_or_else(|| panic!("{what}: reply to unknown tid {}", r.tid));
                assert_eq!(r.oid, op.oid, "{what}: reply oid");
                assert_eq!(r.ops.len(), op.ops.len(), "{what}: one result per op");
                assert!(r.ops.iter().all(|o| o.rval <= 0));
                if r.result != 0 {
                    tally.osd_reply_errors += 1;
                }
                if r.ops.iter().any(|o| o.outdata[..] == *obj4k()) {
                    assert_eq!(r.result, 0, "{what}: the read succeeded");
                    assert_eq!(r.oid, "obj4k");
                    tally.obj4k_read += 1;
                }
            }
            _ => {}
        }
    }
}

// ------------------------------------------------------------------------------------------
// Captures
// ------------------------------------------------------------------------------------------

fn replay_capture(mode: &str, flow: &str) -> Tally {
    let file = format!("{mode}-{flow}.pcap");
    let conns =
        pcap::tcp_connections(&read_capture_file(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(!conns.is_empty(), "{file}: no TCP connection");
    let (name, key) = key_for(mode);
    let expect_mode = if mode == "secure" {
        CON_MODE_SECURE
    } else {
        CON_MODE_CRC
    };
    let mut mons = BTreeMap::new();
    let mut tally = Tally::default();
    for (i, conn) in conns.iter().enumerate() {
        let s = replay_connection(i, conn, &name, &key, &mut mons, Instant::now()).unwrap_or_else(
            |e| {
                panic!(
                    "{file}: connection #{i} {} → {}: {e}",
                    conn.client, conn.server
                )
            },
        );
        tally.sessions += 1;
        tally.frames += s.to_server.len() + s.to_client.len();
        if let Some(m) = s.con_mode {
            assert_eq!(m, expect_mode, "{file}: {}", s.what());
            let peer = match s.peer {
                Some(Peer::Mon) => "mon",
                Some(Peer::Osd) => "osd",
                Some(Peer::Mgr) => "mgr",
                None => unreachable!(),
            };
            *tally.authenticated.entry(peer).or_default() += 1;
            // After AUTH_DONE: each side signs first, then identifies itself.
            for (frames, ident) in [
                (&s.to_server, Tag::CLIENT_IDENT),
                (&s.to_client, Tag::SERVER_IDENT),
            ] {
                let at = frames
                    .iter()
                    .position(|f| f.tag == Tag::AUTH_SIGNATURE)
                    .expect("AUTH_SIGNATURE");
                assert_eq!(frames[at].segments[0].len(), 32);
                if let Some(next) = frames.get(at + 1) {
                    assert_eq!(next.tag, ident, "{file}: {}", s.what());
                }
                if m == CON_MODE_SECURE {
                    tally.secure_frames += frames.len() - at;
                }
            }
            if s.keys.is_some() {
                let r = replay_with_connection(conn, &s)
                    .unwrap_or_else(|e| panic!("{file}: {}: {e}", s.what()));
                check_connection_replay(conn, &s, &r);
                tally.replayed_connections += 1;
            }
        }
        check_messages(mode, &s, &mut tally);
    }
    eprintln!("{file}: {tally:?}");
    let types = |set: &BTreeSet<u16>| {
        set.iter()
            .map(|t| format!("{:?}", MsgType(*t)))
            .collect::<Vec<_>>()
    };
    assert!(
        tally.types_to_client.contains(&MsgType::MON_MAP.0),
        "{file}: no MMonMap in {:?}",
        types(&tally.types_to_client)
    );
    assert!(
        tally.types_to_client.contains(&MsgType::OSD_MAP.0),
        "{file}: no MOSDMap in {:?}",
        types(&tally.types_to_client)
    );
    assert!(tally.monmaps > 0 && tally.full_osdmaps > 0);
    assert!(
        tally.authenticated.get("mon").copied().unwrap_or(0) >= 1,
        "{file}: no monitor session"
    );
    if mode == "secure" {
        assert!(tally.secure_frames > 0);
    }
    tally
}

fn check_osd_flow(t: &Tally) {
    assert!(t.types_to_server.contains(&MsgType::OSD_OP.0), "no MOSDOp");
    assert!(
        t.types_to_client.contains(&MsgType::OSD_OPREPLY.0),
        "no MOSDOpReply"
    );
    assert_eq!(t.osd_ops, t.osd_replies, "every op answered");
    assert!(t.authenticated.get("osd").copied().unwrap_or(0) >= 1);
}

#[test]
fn crc_lspools() {
    let t = replay_capture("crc", "lspools");
    assert!(t.replayed_connections >= 1);
}

#[test]
fn secure_lspools() {
    let t = replay_capture("secure", "lspools");
    assert!(t.replayed_connections >= 1);
}

fn put_get(mode: &str) {
    let t = replay_capture(mode, "put-get");
    check_osd_flow(&t);
    assert_eq!(
        t.obj4k_written, 1,
        "the put carries obj4k.bin as its data segment"
    );
    assert_eq!(t.obj4k_read, 1, "the get's reply carries obj4k.bin");
    assert_eq!(t.osd_reply_errors, 0, "put and get succeed");
    assert!(t.authenticated.get("mgr").copied().unwrap_or(0) >= 2);
}

#[test]
fn crc_put_get() {
    put_get("crc");
}

#[test]
fn secure_put_get() {
    put_get("secure");
}

#[test]
fn crc_rbd_flow() {
    let t = replay_capture("crc", "rbd-flow");
    check_osd_flow(&t);
}

#[test]
fn secure_rbd_flow() {
    let t = replay_capture("secure", "rbd-flow");
    check_osd_flow(&t);
    // Every secure session, OSD ones included, was decrypted and replayed.
    assert_eq!(
        t.replayed_connections,
        t.authenticated.values().sum::<usize>()
    );
}
