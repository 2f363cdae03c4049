//! The client side of a msgr2.1 session as a sans-IO state machine.
//!
//! Bytes in ([`Connection::receive`]), bytes out ([`Connection::poll_transmit`]), events out
//! ([`Connection::poll_event`]). No sockets, no clock, no randomness: cookies and nonces
//! come in through [`ConnectionConfig`], time stamps through the calls that need them.
//!
//! Handshake (ceph: src/msg/async/ProtocolV2.cc; kernel: net/ceph/messenger_v2.c):
//! banner ⇄ banner, HELLO ⇄ HELLO, AUTH_REQUEST → (AUTH_REPLY_MORE ⇄ AUTH_REQUEST_MORE)* →
//! AUTH_DONE, then both sides switch to the negotiated mode and exchange AUTH_SIGNATURE
//! (HMAC-SHA256 over everything the signer *received* so far), then CLIENT_IDENT →
//! SERVER_IDENT, and the session is ready for MESSAGE / ACK / KEEPALIVE2 frames.

use crate::error::Error;
use crate::frame::{FrameLimits, FrameReader, FrameWriter, Mode, SecureKeys, Tag};
use crate::message::{Message, MsgHeader, HEADER2_LEN};
use bytes::Bytes;
use ceph_encoding::{
    Decode, Decoder, EncodeExt, EntityAddr, EntityAddrType, EntityAddrVec, EntityType, UTime,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::VecDeque;
use subtle::ConstantTimeEq;
use tracing::{debug, trace};
use zeroize::Zeroize;

const BANNER_PREFIX: &[u8; 8] = b"ceph v2\n";
/// msgr2 feature bit: frame format revision 1.
pub const MSGR2_FEATURE_REVISION_1: u64 = 1;
const CONNECT_LOSSY: u64 = 1;

/// Auth method numbers (`CEPH_AUTH_*`).
pub mod auth_method {
    /// No authentication.
    pub const NONE: u32 = 1;
    /// cephx.
    pub const CEPHX: u32 = 2;
}

/// Connection modes (`CEPH_CON_MODE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ConMode {
    /// crc32c-protected plaintext.
    Crc = 1,
    /// AES-128-GCM.
    Secure = 2,
}

impl ConMode {
    fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(ConMode::Crc),
            2 => Some(ConMode::Secure),
            _ => None,
        }
    }

    /// Parse a Ceph `ms_*_mode` setting: `crc`, `secure`, `prefer-crc`, `prefer-secure`, or a
    /// space/comma separated list such as `secure crc`.
    pub fn parse_list(s: &str) -> Option<Vec<ConMode>> {
        let s = s.trim();
        match s {
            "prefer-crc" => return Some(vec![ConMode::Crc, ConMode::Secure]),
            "prefer-secure" => return Some(vec![ConMode::Secure, ConMode::Crc]),
            _ => {}
        }
        let mut v = vec![];
        for w in s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
        {
            v.push(match w {
                "crc" => ConMode::Crc,
                "secure" => ConMode::Secure,
                _ => return None,
            });
        }
        if v.is_empty() {
            None
        } else {
            Some(v)
        }
    }
}

/// The keys an authentication exchange yields. Wiped on drop.
#[derive(Default, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct AuthKeys {
    /// HMAC key for AUTH_SIGNATURE (the session key of the ticket used). Empty for auth none.
    pub session_key: Vec<u8>,
    /// Secret that keys secure mode. May be empty in crc mode.
    pub connection_secret: Vec<u8>,
}

/// The authentication side of a connection (cephx for monitors, a cephx authorizer for
/// OSDs and managers, or none). Synchronous on purpose: the crypto is all local.
pub trait AuthClient: Send {
    /// Method number and first payload for AUTH_REQUEST.
    fn auth_request(&mut self) -> Result<(u32, Vec<u8>), Error>;
    /// Answer an AUTH_REPLY_MORE.
    fn handle_reply_more(&mut self, payload: &[u8]) -> Result<Vec<u8>, Error>;
    /// Process AUTH_DONE; return the session key and connection secret.
    fn handle_done(
        &mut self,
        global_id: u64,
        con_mode: u32,
        payload: &[u8],
    ) -> Result<AuthKeys, Error>;
    /// The entity type of the service this authenticates to (a monitor, an OSD, ...): the
    /// peer's HELLO must announce exactly this type (ProtocolV2::handle_hello faults on a
    /// mismatch). `None` accepts any server type.
    fn peer_type(&self) -> Option<EntityType> {
        None
    }
}

/// Entity types a client may legitimately be talking to.
const SERVER_TYPES: [EntityType; 4] = [
    EntityType::MON,
    EntityType::MDS,
    EntityType::OSD,
    EntityType::MGR,
];

/// Per-connection settings.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Our entity type (client).
    pub entity_type: EntityType,
    /// The exact address dialled (type v2, with the peer's nonce), quoted in HELLO and
    /// CLIENT_IDENT; the server rejects a mismatch.
    pub peer_addr: EntityAddr,
    /// Our instance nonce.
    pub nonce: u32,
    /// Our global id if known (OSD sessions); monitors assign one in AUTH_DONE.
    pub global_id: u64,
    /// Per-messenger connection attempt counter.
    pub global_seq: u64,
    /// Non-zero random cookie identifying this session.
    pub client_cookie: u64,
    /// Ceph features we support.
    pub features_supported: u64,
    /// Ceph features we require.
    pub features_required: u64,
    /// Connection modes in preference order.
    pub modes: Vec<ConMode>,
    /// Lossy session: on any fault the session is dropped and the upper layer resends.
    pub lossy: bool,
    /// Frame size limits.
    pub limits: FrameLimits,
}

/// What the server said about itself in SERVER_IDENT.
#[derive(Debug, Clone)]
pub struct ServerIdent {
    /// The server's addresses.
    pub addrs: EntityAddrVec,
    /// Server gid (osd id, mon id).
    pub gid: i64,
    /// Server's global seq.
    pub global_seq: u64,
    /// Negotiated features (ours ∩ theirs).
    pub features: u64,
    /// Server cookie.
    pub cookie: u64,
}

/// Events for the driver.
#[derive(Debug)]
pub enum Event {
    /// Handshake complete; messages may flow.
    Ready {
        /// Server identity.
        ident: ServerIdent,
        /// Global id assigned/confirmed in AUTH_DONE.
        global_id: u64,
        /// Our address as the server sees it.
        my_addr: Option<EntityAddr>,
        /// Mode in force.
        mode: ConMode,
    },
    /// A message arrived.
    Message(Message),
    /// The peer answered our keepalive.
    KeepaliveAck(UTime),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    ExpectBanner,
    ExpectHello,
    ExpectAuthReply,
    ExpectAuthSignature,
    ExpectServerIdent,
    Ready,
    Closed,
}

/// A client msgr2 session.
pub struct Connection {
    cfg: ConnectionConfig,
    state: State,
    reader: FrameReader,
    writer: FrameWriter,
    out: Vec<Bytes>,
    events: VecDeque<Event>,
    auth: Box<dyn AuthClient>,
    pre_auth_rx: Vec<u8>,
    pre_auth_tx: Vec<u8>,
    session_key: Vec<u8>,
    global_id: u64,
    mode: ConMode,
    my_addr: Option<EntityAddr>,
    out_seq: u64,
    in_seq: u64,
    pending: Vec<Message>,
    peer_features: u64,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Normally already wiped after AUTH_SIGNATURE; not if the handshake failed.
        self.session_key.zeroize();
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.cfg.peer_addr)
            .field("state", &self.state)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Connection {
    /// Start a session: the banner is queued for transmission at once.
    pub fn new(cfg: ConnectionConfig, auth: Box<dyn AuthClient>) -> Self {
        let mut c = Connection {
            reader: FrameReader::new(cfg.limits),
            writer: FrameWriter::default(),
            global_id: cfg.global_id,
            cfg,
            state: State::ExpectBanner,
            out: Vec::new(),
            events: VecDeque::new(),
            auth,
            pre_auth_rx: Vec::new(),
            pre_auth_tx: Vec::new(),
            session_key: Vec::new(),
            mode: ConMode::Crc,
            my_addr: None,
            out_seq: 0,
            in_seq: 0,
            pending: Vec::new(),
            peer_features: 0,
        };
        let mut banner = Vec::with_capacity(26);
        banner.extend_from_slice(BANNER_PREFIX);
        banner.put_u16(16);
        banner.put_u64(MSGR2_FEATURE_REVISION_1);
        banner.put_u64(0);
        c.push_raw(banner.into());
        c
    }

    /// True once SERVER_IDENT arrived.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Features negotiated with the peer (valid once ready).
    pub fn features(&self) -> u64 {
        self.peer_features
    }

    /// Bytes to write to the socket, in order.
    pub fn poll_transmit(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.out)
    }

    /// Whether anything is waiting to be written.
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// Next event for the driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Queue a message. Sequence and ack numbers are filled in here. Before the session is
    /// ready, messages wait and go out right after SERVER_IDENT.
    pub fn send_message(&mut self, mut msg: Message) {
        if self.state != State::Ready {
            self.pending.push(msg);
            return;
        }
        self.out_seq += 1;
        msg.header.seq = self.out_seq;
        msg.header.ack_seq = self.in_seq;
        let h = msg.header.encode();
        self.writer
            .message(&h, &msg.front, &msg.middle, &msg.data, &mut self.out);
    }

    /// Queue a KEEPALIVE2 carrying `stamp`; the peer echoes it.
    pub fn send_keepalive(&mut self, stamp: UTime) {
        if self.state != State::Ready {
            return;
        }
        let mut p = Vec::with_capacity(8);
        p.put(&stamp);
        self.writer.control(Tag::KEEPALIVE2, &p, &mut self.out);
    }

    /// Queue an ACK of everything received so far.
    pub fn send_ack(&mut self) {
        if self.state != State::Ready {
            return;
        }
        let mut p = Vec::with_capacity(8);
        p.put_u64(self.in_seq);
        self.writer.control(Tag::ACK, &p, &mut self.out);
    }

    fn push_raw(&mut self, b: Bytes) {
        if self.logging_pre_auth() {
            self.pre_auth_tx.extend_from_slice(&b);
        }
        self.out.push(b);
    }

    fn logging_pre_auth(&self) -> bool {
        matches!(
            self.state,
            State::ExpectBanner | State::ExpectHello | State::ExpectAuthReply
        )
    }

    fn send_control(&mut self, tag: Tag, payload: &[u8]) {
        let mut v = Vec::new();
        self.writer.control(tag, payload, &mut v);
        for b in v {
            self.push_raw(b);
        }
    }

    /// Feed received bytes and run the state machine as far as they allow.
    pub fn receive(&mut self, data: &[u8]) -> Result<(), Error> {
        self.reader.feed(data);
        self.process_received()
    }

    /// Make room in the receive buffer for the next socket read (see
    /// [`FrameReader::prepare_read`]): the rest of a large frame goes straight into the room
    /// reserved for it at its final size; between frames a buffer of `small` bytes is used.
    pub fn prepare_read(&mut self, small: usize) -> &mut bytes::BytesMut {
        self.reader.prepare_read(small);
        self.reader.buffer_mut()
    }

    /// Drop receive and send buffers kept for recycling that were not used since the
    /// previous call ([`FrameReader::release_idle`]); a driver calls it about once a second.
    pub fn release_idle_buffers(&mut self) {
        self.reader.release_idle();
        self.writer.release_idle();
    }

    /// Bytes still missing from the frame being received (0 between frames or while its
    /// preamble is incomplete): a driver may wait for that many before reading again.
    pub fn receive_wanted(&self) -> usize {
        self.reader.wanted()
    }

    /// The receive buffer: a driver may read from its socket straight into it and then
    /// call [`Connection::process_received`], instead of copying through [`Connection::receive`].
    pub fn receive_buffer(&mut self) -> &mut bytes::BytesMut {
        self.reader.buffer_mut()
    }

    /// Run the state machine over whatever is in the receive buffer.
    pub fn process_received(&mut self) -> Result<(), Error> {
        if self.state == State::Closed {
            return Err(Error::Closed);
        }
        let r = self.process();
        if r.is_err() {
            self.state = State::Closed;
        }
        r
    }

    fn process(&mut self) -> Result<(), Error> {
        if self.state == State::ExpectBanner {
            let Some(head) = self.peek_banner()? else {
                return Ok(());
            };
            self.handle_banner(head)?;
        }
        loop {
            let Some((frame, raw)) = self.reader.next()? else {
                return Ok(());
            };
            trace!(tag = ?frame.tag, state = ?self.state, "msgr2 frame in");
            if matches!(self.state, State::ExpectHello | State::ExpectAuthReply) {
                self.pre_auth_rx.extend_from_slice(&raw);
            }
            let seg0 = frame.segments[0].clone();
            match (self.state, frame.tag) {
                (State::ExpectHello, Tag::HELLO) => self.handle_hello(&seg0)?,
                (State::ExpectAuthReply, Tag::AUTH_REPLY_MORE) => {
                    let mut d = Decoder::new(&seg0);
                    let payload = d.blob("auth_reply_more")?;
                    let reply = self.auth.handle_reply_more(payload)?;
                    let mut p = Vec::with_capacity(reply.len() + 4);
                    p.put_blob(&reply);
                    self.send_control(Tag::AUTH_REQUEST_MORE, &p);
                }
                (State::ExpectAuthReply, Tag::AUTH_BAD_METHOD) => {
                    let mut d = Decoder::new(&seg0);
                    let method = d.u32()?;
                    let result = d.i32()?;
                    let allowed_methods = d.vec::<u32>(4, "allowed_methods")?;
                    let allowed_modes = d.vec::<u32>(4, "allowed_modes")?;
                    return Err(Error::AuthBadMethod {
                        method,
                        result,
                        allowed_methods,
                        allowed_modes,
                    });
                }
                (State::ExpectAuthReply, Tag::AUTH_DONE) => self.handle_auth_done(&seg0)?,
                (State::ExpectAuthSignature, Tag::AUTH_SIGNATURE) => {
                    self.handle_auth_signature(&seg0)?
                }
                (State::ExpectServerIdent, Tag::SERVER_IDENT) => self.handle_server_ident(&seg0)?,
                (State::ExpectServerIdent, Tag::IDENT_MISSING_FEATURES) => {
                    let missing = Decoder::new(&seg0).u64()?;
                    return Err(Error::Features(format!(
                        "server requires features {missing:#x} we lack"
                    )));
                }
                (_, Tag::WAIT) => {
                    return Err(Error::SessionReset("server asked us to wait (WAIT)".into()))
                }
                (_, Tag::SESSION_RESET) => return Err(Error::SessionReset("SESSION_RESET".into())),
                (_, Tag::SESSION_RETRY) | (_, Tag::SESSION_RETRY_GLOBAL) => {
                    return Err(Error::SessionReset(format!("{:?}", frame.tag)))
                }
                (State::Ready, Tag::MESSAGE) => self.handle_message(frame.segments)?,
                (State::Ready, Tag::KEEPALIVE2) => {
                    let stamp = UTime::decode(&mut Decoder::new(&seg0))?;
                    let mut p = Vec::with_capacity(8);
                    p.put(&stamp);
                    self.writer.control(Tag::KEEPALIVE2_ACK, &p, &mut self.out);
                }
                (State::Ready, Tag::KEEPALIVE2_ACK) => {
                    let stamp = UTime::decode(&mut Decoder::new(&seg0))?;
                    self.events.push_back(Event::KeepaliveAck(stamp));
                }
                (State::Ready, Tag::ACK) => {
                    let _seq = Decoder::new(&seg0).u64()?;
                }
                (state, tag) => {
                    return Err(Error::protocol(format!(
                        "unexpected frame {tag:?} in state {state:?}"
                    )))
                }
            }
        }
    }

    /// The whole banner (prefix, length, payload) once it has arrived.
    fn peek_banner(&mut self) -> Result<Option<Bytes>, Error> {
        let Some(head) = self.reader.peek(10) else {
            return Ok(None);
        };
        if &head[..8] != BANNER_PREFIX {
            return Err(Error::BadBanner(head[..8].to_vec()));
        }
        let len = u16::from_le_bytes([head[8], head[9]]) as usize;
        if !(16..=4096).contains(&len) {
            return Err(Error::protocol(format!("banner payload length {len}")));
        }
        Ok(self.reader.take_raw(10 + len))
    }

    fn handle_banner(&mut self, banner: Bytes) -> Result<(), Error> {
        self.pre_auth_rx.extend_from_slice(&banner);
        let body = banner.slice(10..);
        let mut d = Decoder::new(&body);
        let supported = d.u64()?;
        let required = d.u64()?;
        if required & !MSGR2_FEATURE_REVISION_1 != 0 {
            return Err(Error::Features(format!(
                "peer requires msgr2 features {required:#x}"
            )));
        }
        if supported & MSGR2_FEATURE_REVISION_1 == 0 {
            return Err(Error::Features(
                "peer does not support msgr2.1 frames (revision 1)".into(),
            ));
        }
        self.state = State::ExpectHello;
        // HELLO: our entity type and the address we dialled.
        let mut p = Vec::new();
        p.put_u8(self.cfg.entity_type.0 as u8);
        p.put(&self.cfg.peer_addr);
        self.send_control(Tag::HELLO, &p);
        Ok(())
    }

    fn handle_hello(&mut self, p: &[u8]) -> Result<(), Error> {
        let mut d = Decoder::new(p);
        let peer_type = EntityType(u32::from(d.u8()?));
        let my_addr = EntityAddr::decode(&mut d)?;
        debug!(?peer_type, %my_addr, "msgr2 hello");
        // ceph: src/msg/async/ProtocolV2.cc handle_hello ("peer type mismatch" faults).
        let ok = match self.auth.peer_type() {
            Some(want) => peer_type == want,
            None => SERVER_TYPES.contains(&peer_type),
        };
        if !ok {
            return Err(Error::protocol(format!(
                "HELLO from peer type {peer_type:?}, expected {:?}",
                self.auth.peer_type()
            )));
        }
        self.my_addr = Some(my_addr);
        self.state = State::ExpectAuthReply;
        let (method, payload) = self.auth.auth_request()?;
        let mut p = Vec::with_capacity(payload.len() + 32);
        p.put_u32(method);
        p.put_u32(self.cfg.modes.len() as u32);
        for m in &self.cfg.modes {
            p.put_u32(*m as u32);
        }
        p.put_blob(&payload);
        self.send_control(Tag::AUTH_REQUEST, &p);
        Ok(())
    }

    fn handle_auth_done(&mut self, p: &[u8]) -> Result<(), Error> {
        let mut d = Decoder::new(p);
        let global_id = d.u64()?;
        let con_mode = d.u32()?;
        let payload = d.blob("auth_done")?;
        let mode = ConMode::from_u32(con_mode)
            .ok_or_else(|| Error::protocol(format!("AUTH_DONE with unknown mode {con_mode}")))?;
        if !self.cfg.modes.contains(&mode) {
            return Err(Error::protocol(format!(
                "server chose mode {mode:?} we did not offer"
            )));
        }
        let mut keys = self.auth.handle_done(global_id, con_mode, payload)?;
        debug!(global_id, ?mode, "msgr2 auth done");
        self.global_id = global_id;
        self.mode = mode;
        self.session_key.zeroize();
        self.session_key = std::mem::take(&mut keys.session_key);
        if mode == ConMode::Secure {
            self.writer
                .set_mode(Mode::Secure(Box::new(SecureKeys::from_connection_secret(
                    &keys.connection_secret,
                )?)));
            self.reader
                .set_mode(Mode::Secure(Box::new(SecureKeys::from_connection_secret(
                    &keys.connection_secret,
                )?)));
        }
        self.state = State::ExpectAuthSignature;
        let sig = self.hmac(&self.pre_auth_rx);
        self.writer
            .control(Tag::AUTH_SIGNATURE, &sig, &mut self.out);
        Ok(())
    }

    fn hmac(&self, data: &[u8]) -> [u8; 32] {
        if self.session_key.is_empty() {
            // Auth none: the kernel signs with zeros when there is no key.
            return [0u8; 32];
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.session_key)
            .expect("hmac takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    fn handle_auth_signature(&mut self, p: &[u8]) -> Result<(), Error> {
        let want = self.hmac(&self.pre_auth_tx);
        // Constant time: a byte-by-byte early exit would tell a forger how many leading
        // bytes of a guessed signature were right. (The length is public.)
        if p.len() != want.len() || !bool::from(p.ct_eq(&want[..])) {
            return Err(Error::BadSignature);
        }
        self.pre_auth_rx = Vec::new();
        self.pre_auth_tx = Vec::new();
        // The signature was the session key's last use on this connection: wipe it.
        self.session_key.zeroize();
        self.state = State::ExpectServerIdent;
        let my = EntityAddr {
            empty_len: 0,
            ty: EntityAddrType::ANY,
            nonce: self.cfg.nonce,
            addr: self.my_addr.and_then(|a| a.addr).map(|mut a| {
                a.set_port(0);
                a
            }),
        };
        let mut p = Vec::new();
        p.put(&EntityAddrVec(vec![my]));
        p.put(&self.cfg.peer_addr);
        p.put_i64(self.global_id as i64);
        p.put_u64(self.cfg.global_seq);
        p.put_u64(self.cfg.features_supported);
        p.put_u64(self.cfg.features_required);
        p.put_u64(if self.cfg.lossy { CONNECT_LOSSY } else { 0 });
        p.put_u64(self.cfg.client_cookie);
        self.writer.control(Tag::CLIENT_IDENT, &p, &mut self.out);
        Ok(())
    }

    fn handle_server_ident(&mut self, p: &[u8]) -> Result<(), Error> {
        let mut d = Decoder::new(p);
        let addrs = EntityAddrVec::decode(&mut d)?;
        let gid = d.i64()?;
        let global_seq = d.u64()?;
        let supported = d.u64()?;
        let required = d.u64()?;
        let _flags = d.u64()?;
        let cookie = d.u64()?;
        let missing = required & !self.cfg.features_supported;
        if missing != 0 {
            return Err(Error::Features(format!(
                "server requires features {missing:#x} we lack"
            )));
        }
        self.peer_features = supported & self.cfg.features_supported;
        self.state = State::Ready;
        debug!(%addrs, gid, "msgr2 session ready");
        self.events.push_back(Event::Ready {
            ident: ServerIdent {
                addrs,
                gid,
                global_seq,
                features: self.peer_features,
                cookie,
            },
            global_id: self.global_id,
            my_addr: self.my_addr,
            mode: self.mode,
        });
        for m in std::mem::take(&mut self.pending) {
            self.send_message(m);
        }
        Ok(())
    }

    fn handle_message(&mut self, segs: Vec<Bytes>) -> Result<(), Error> {
        if segs[0].len() < HEADER2_LEN {
            return Err(Error::protocol("message header too short"));
        }
        let header = MsgHeader::decode(&segs[0])?;
        if header.seq <= self.in_seq {
            trace!(seq = header.seq, "dropping duplicate message");
            return Ok(());
        }
        if header.seq != self.in_seq + 1 && !self.cfg.lossy {
            return Err(Error::protocol(format!(
                "message seq gap: {} after {}",
                header.seq, self.in_seq
            )));
        }
        self.in_seq = header.seq;
        let mut it = segs.into_iter().skip(1);
        let front = it.next().unwrap_or_default();
        let middle = it.next().unwrap_or_default();
        let data = it.next().unwrap_or_default();
        self.events.push_back(Event::Message(Message {
            header,
            front,
            middle,
            data: data.into(),
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameReader, FrameWriter, Mode, SecureKeys};
    use ceph_encoding::Encode;

    struct FixedAuth {
        secret: Vec<u8>,
        peer: Option<EntityType>,
    }
    impl AuthClient for FixedAuth {
        fn peer_type(&self) -> Option<EntityType> {
            self.peer
        }
        fn auth_request(&mut self) -> Result<(u32, Vec<u8>), Error> {
            Ok((auth_method::CEPHX, b"hi".to_vec()))
        }
        fn handle_reply_more(&mut self, payload: &[u8]) -> Result<Vec<u8>, Error> {
            let mut v = payload.to_vec();
            v.reverse();
            Ok(v)
        }
        fn handle_done(
            &mut self,
            _gid: u64,
            _mode: u32,
            _payload: &[u8],
        ) -> Result<AuthKeys, Error> {
            Ok(AuthKeys {
                session_key: vec![7u8; 16],
                connection_secret: self.secret.clone(),
            })
        }
    }

    fn cfg(modes: Vec<ConMode>) -> ConnectionConfig {
        ConnectionConfig {
            entity_type: EntityType::CLIENT,
            peer_addr: EntityAddr::msgr2("127.0.0.1:3300".parse().unwrap()),
            nonce: 99,
            global_id: 0,
            global_seq: 1,
            client_cookie: 1234,
            features_supported: u64::MAX >> 2,
            features_required: 0,
            modes,
            lossy: true,
            limits: FrameLimits::default(),
        }
    }

    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }

    /// A scripted server: drives the whole handshake against our client, in crc and
    /// secure mode, checking signatures both ways, then exchanges a message and a
    /// keepalive.
    fn handshake(mode: ConMode) {
        handshake_with(mode, false)
    }

    fn handshake_with(mode: ConMode, forge_signature: bool) {
        let secret: Vec<u8> = (100..164u8).collect();
        let mut c = Connection::new(
            cfg(vec![ConMode::Secure, ConMode::Crc]),
            Box::new(FixedAuth {
                secret: secret.clone(),
                peer: Some(EntityType::MON),
            }),
        );
        let mut sw = FrameWriter::default();
        let mut sr = FrameReader::default();
        let mut server_rx: Vec<u8> = Vec::new(); // everything the server received pre-auth
        let mut server_tx: Vec<u8> = Vec::new();
        let pump = |c: &mut Connection, rx: &mut Vec<u8>, log: bool, sr: &mut FrameReader| {
            for b in c.poll_transmit() {
                if log {
                    rx.extend_from_slice(&b);
                }
                sr.feed(&b);
            }
        };
        // Banner exchange.
        let mut banner = b"ceph v2\n".to_vec();
        banner.extend_from_slice(&16u16.to_le_bytes());
        banner.extend_from_slice(&1u64.to_le_bytes());
        banner.extend_from_slice(&0u64.to_le_bytes());
        server_tx.extend_from_slice(&banner);
        // Feed the banner in two pieces to exercise partial reads.
        c.receive(&banner[..5]).unwrap();
        c.receive(&banner[5..]).unwrap();
        pump(&mut c, &mut server_rx, true, &mut sr);
        assert_eq!(sr.take_raw(26).unwrap()[..8], b"ceph v2\n"[..]);
        let (hello, _) = sr.next().unwrap().unwrap();
        assert_eq!(hello.tag, Tag::HELLO);
        let send = |sw: &mut FrameWriter,
                    tag: Tag,
                    p: &[u8],
                    c: &mut Connection,
                    log: Option<&mut Vec<u8>>| {
            let mut out = vec![];
            sw.control(tag, p, &mut out);
            for b in out {
                if let Some(l) = log.as_deref() {
                    let _ = l;
                }
                c.receive(&b).unwrap();
            }
        };
        let mut out = vec![];
        let mut p = vec![1u8];
        EntityAddr::msgr2("127.0.0.1:5555".parse().unwrap()).encode(&mut p);
        sw.control(Tag::HELLO, &p, &mut out);
        for b in &out {
            server_tx.extend_from_slice(b);
            c.receive(b).unwrap();
        }
        pump(&mut c, &mut server_rx, true, &mut sr);
        let (areq, _) = sr.next().unwrap().unwrap();
        assert_eq!(areq.tag, Tag::AUTH_REQUEST);
        // One AUTH_REPLY_MORE round.
        let mut out = vec![];
        let mut p = Vec::new();
        p.put_blob(b"abc");
        sw.control(Tag::AUTH_REPLY_MORE, &p, &mut out);
        for b in &out {
            server_tx.extend_from_slice(b);
            c.receive(b).unwrap();
        }
        pump(&mut c, &mut server_rx, true, &mut sr);
        let (more, _) = sr.next().unwrap().unwrap();
        assert_eq!(more.tag, Tag::AUTH_REQUEST_MORE);
        assert_eq!(&more.segments[0][4..], b"cba");
        // AUTH_DONE, then the server switches mode and signs what it received.
        let mut out = vec![];
        let mut p = Vec::new();
        p.put_u64(4242);
        p.put_u32(mode as u32);
        p.put_blob(b"");
        sw.control(Tag::AUTH_DONE, &p, &mut out);
        for b in &out {
            server_tx.extend_from_slice(b);
        }
        if mode == ConMode::Secure {
            sw.set_mode(Mode::Secure(Box::new(
                SecureKeys::server_side(&secret).unwrap(),
            )));
            sr.set_mode(Mode::Secure(Box::new(
                SecureKeys::server_side(&secret).unwrap(),
            )));
        }
        let mut sig = hmac(&[7u8; 16], &server_rx);
        if forge_signature {
            // Right length, last byte wrong: rejected (and compared in constant time).
            sig[31] ^= 1;
            sw.control(Tag::AUTH_SIGNATURE, &sig, &mut out);
            let r: Result<Vec<()>, Error> = out.iter().map(|b| c.receive(b)).collect();
            assert!(matches!(r, Err(Error::BadSignature)), "{r:?}");
            return;
        }
        sw.control(Tag::AUTH_SIGNATURE, &sig, &mut out);
        for b in &out {
            c.receive(b).unwrap();
        }
        pump(&mut c, &mut server_rx, false, &mut sr);
        let (csig, _) = sr.next().unwrap().unwrap();
        assert_eq!(csig.tag, Tag::AUTH_SIGNATURE);
        assert_eq!(
            &csig.segments[0][..],
            &hmac(&[7u8; 16], &server_tx)[..],
            "client signed what it received"
        );
        let (ident, _) = sr.next().unwrap().unwrap();
        assert_eq!(ident.tag, Tag::CLIENT_IDENT);
        let mut d = Decoder::new(&ident.segments[0]);
        let addrs = EntityAddrVec::decode(&mut d).unwrap();
        assert_eq!(addrs.0[0].nonce, 99);
        assert_eq!(addrs.0[0].addr.unwrap().ip().to_string(), "127.0.0.1");
        let target = EntityAddr::decode(&mut d).unwrap();
        assert_eq!(target.addr.unwrap().port(), 3300);
        assert_eq!(d.i64().unwrap(), 4242);
        // A message queued before the session is ready goes out after SERVER_IDENT.
        c.send_message(Message::new(
            MsgHeader::new(crate::MsgType(99), 1, 1),
            b"early".to_vec(),
        ));
        let mut p = Vec::new();
        EntityAddrVec(vec![target]).encode(&mut p);
        p.put_i64(0);
        p.put_u64(1);
        p.put_u64(u64::MAX);
        p.put_u64(0);
        p.put_u64(0);
        p.put_u64(77);
        send(&mut sw, Tag::SERVER_IDENT, &p, &mut c, None);
        match c.poll_event() {
            Some(Event::Ready {
                global_id, mode: m, ..
            }) => {
                assert_eq!(global_id, 4242);
                assert_eq!(m, mode);
            }
            other => panic!("{other:?}"),
        }
        pump(&mut c, &mut server_rx, false, &mut sr);
        let (msg, _) = sr.next().unwrap().unwrap();
        assert_eq!(msg.tag, Tag::MESSAGE);
        assert_eq!(&msg.segments[1][..], b"early");
        // Server → client message and keepalive.
        let mut h = MsgHeader::new(crate::MsgType(98), 1, 1);
        h.seq = 1;
        let mut out = vec![];
        sw.message(
            &h.encode(),
            &bytes::Bytes::from_static(b"front"),
            &bytes::Bytes::new(),
            &vec![3u8; 10000].into(),
            &mut out,
        );
        let mut p = Vec::new();
        UTime { sec: 5, nsec: 6 }.encode(&mut p);
        sw.control(Tag::KEEPALIVE2, &p, &mut out);
        for b in &out {
            c.receive(b).unwrap();
        }
        match c.poll_event() {
            Some(Event::Message(m)) => {
                assert_eq!(&m.front[..], b"front");
                assert_eq!(m.data.len(), 10000);
            }
            other => panic!("{other:?}"),
        }
        pump(&mut c, &mut server_rx, false, &mut sr);
        let (ka, _) = sr.next().unwrap().unwrap();
        assert_eq!(ka.tag, Tag::KEEPALIVE2_ACK);
        // A duplicate (seq 1 again) is dropped silently.
        let mut out = vec![];
        sw.message(
            &h.encode(),
            &bytes::Bytes::from_static(b"dup"),
            &bytes::Bytes::new(),
            &crate::DataSegment::new(),
            &mut out,
        );
        for b in &out {
            c.receive(b).unwrap();
        }
        assert!(c.poll_event().is_none());
    }

    #[test]
    fn handshake_crc() {
        handshake(ConMode::Crc);
    }

    #[test]
    fn handshake_secure() {
        handshake(ConMode::Secure);
    }

    #[test]
    fn forged_signature_rejected() {
        handshake_with(ConMode::Crc, true);
        handshake_with(ConMode::Secure, true);
    }

    /// Drive a client to the point where it expects HELLO, then answer with `peer_type`.
    fn hello_from(expect: Option<EntityType>, peer_type: u8) -> Result<(), Error> {
        let mut c = Connection::new(
            cfg(vec![ConMode::Crc]),
            Box::new(FixedAuth {
                secret: vec![],
                peer: expect,
            }),
        );
        let mut banner = b"ceph v2\n".to_vec();
        banner.extend_from_slice(&16u16.to_le_bytes());
        banner.extend_from_slice(&1u64.to_le_bytes());
        banner.extend_from_slice(&0u64.to_le_bytes());
        c.receive(&banner)?;
        let mut p = vec![peer_type];
        EntityAddr::msgr2("127.0.0.1:5555".parse().unwrap()).encode(&mut p);
        let mut out = vec![];
        FrameWriter::default().control(Tag::HELLO, &p, &mut out);
        for b in &out {
            c.receive(b)?;
        }
        Ok(())
    }

    #[test]
    fn hello_peer_type_checked() {
        // The service we authenticate to must be who answers.
        hello_from(Some(EntityType::OSD), 4).unwrap();
        assert!(hello_from(Some(EntityType::OSD), 1).is_err());
        assert!(hello_from(Some(EntityType::MON), 4).is_err());
        // Without an expectation, any server type but never a client or garbage.
        hello_from(None, 16).unwrap();
        assert!(hello_from(None, 8).is_err());
        assert!(hello_from(None, 0).is_err());
        assert!(hello_from(None, 0xff).is_err());
    }

    #[test]
    fn bad_banner_and_bad_signature() {
        let mut c = Connection::new(
            cfg(vec![ConMode::Crc]),
            Box::new(FixedAuth {
                secret: vec![],
                peer: None,
            }),
        );
        assert!(matches!(
            c.receive(b"HTTP/1.1 400 Bad Request\r\n"),
            Err(Error::BadBanner(_))
        ));
        assert!(matches!(c.receive(b"x"), Err(Error::Closed)));
    }

    #[test]
    fn mode_lists() {
        assert_eq!(
            ConMode::parse_list("secure crc").unwrap(),
            vec![ConMode::Secure, ConMode::Crc]
        );
        assert_eq!(
            ConMode::parse_list("prefer-crc").unwrap(),
            vec![ConMode::Crc, ConMode::Secure]
        );
        assert_eq!(ConMode::parse_list("crc").unwrap(), vec![ConMode::Crc]);
        assert!(ConMode::parse_list("bogus").is_none());
    }
}
