//! The client ticket machine: mon authentication, service tickets, authorizers, renewal.
//!
//! ceph: src/auth/cephx/CephxClientHandler.cc (build_request / handle_response),
//! CephxProtocol.cc (verify_service_ticket_reply, build_authorizer, CephXAuthorizer::
//! add_challenge / verify_reply), src/mon/MonClient.cc (MonConnection glue, renewal via
//! MAuth); kernel: net/ceph/auth_x.c.

use crate::crypto::CryptoKey;
use crate::error::{CephxError, Errno, Result};
use crate::protocol::{
    CephXAuthenticate, CephXAuthorize, CephXAuthorizeChallenge, CephXAuthorizeReply,
    CephXChallengeBlob, CephXRequestHeader, CephXResponseHeader, CephXServerChallenge,
    CephXServiceTicket, CephXServiceTicketRequest, CephXTicketBlob, AUTH_MODE_AUTHORIZER,
    AUTH_MODE_MON, CEPHX_GET_AUTH_SESSION_KEY, CEPHX_GET_PRINCIPAL_SESSION_KEY,
};
use ceph_encoding::{decode_exact, Decode, Decoder, Encode, EncodeExt, EntityName, EntityType};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};
use zeroize::Zeroize;

/// Services a client wants tickets for by default: MON | OSD | MGR (librados' `want_keys`).
pub const DEFAULT_WANT_KEYS: u32 = EntityType::MON.0 | EntityType::OSD.0 | EntityType::MGR.0;

const AUTH: u32 = EntityType::AUTH.0;

/// The proof of key sent in `CephXAuthenticate.key`.
///
/// `encode_encrypt(secret, CephXChallengeBlob{server, client})` gives `u32 len (= 32)` +
/// 32 bytes of ciphertext; the proof is the XOR of every complete little-endian u64 of those
/// 36 bytes (offsets 0, 8, 16, 24; the length prefix is part of the first word, the last 4
/// bytes are ignored). ceph: CephxProtocol.cc `cephx_calc_client_server_challenge`.
pub fn client_proof(secret: &CryptoKey, server_challenge: u64, client_challenge: u64) -> u64 {
    let blob = ceph_encoding::encode_to_vec(&CephXChallengeBlob {
        server_challenge,
        client_challenge,
    });
    let mut enc = Vec::with_capacity(40);
    secret.encode_encrypt(&blob, &mut enc);
    enc.chunks_exact(8).fold(0u64, |k, w| {
        k ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))
    })
}

/// What the transport needs after a successful mon authentication.
///
/// The fields are zeroed on drop; use `std::mem::take` to move them out.
#[derive(Clone, PartialEq, Eq)]
pub struct MonAuthResult {
    /// The AUTH ticket's session key (16 bytes): the HMAC-SHA256 key for msgr2
    /// AUTH_SIGNATURE on this mon connection.
    pub session_key: Vec<u8>,
    /// The connection secret for SECURE mode (64 bytes in Pacific: AES-GCM key 16 + rx nonce
    /// 12 + tx nonce 12 + spare). Empty in CRC mode.
    pub connection_secret: Vec<u8>,
}

impl Drop for MonAuthResult {
    fn drop(&mut self) {
        self.session_key.zeroize();
        self.connection_secret.zeroize();
    }
}

impl fmt::Debug for MonAuthResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonAuthResult")
            .field(
                "session_key",
                &format_args!("<{} bytes>", self.session_key.len()),
            )
            .field(
                "connection_secret",
                &format_args!("<{} bytes>", self.connection_secret.len()),
            )
            .finish()
    }
}

/// What an OSD/MGR's authorizer reply yields.
///
/// Zeroed on drop; use `std::mem::take` to move the secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizerReply {
    /// The connection secret for SECURE mode (64 bytes); empty in CRC mode.
    pub connection_secret: Vec<u8>,
}

impl Drop for AuthorizerReply {
    fn drop(&mut self) {
        self.connection_secret.zeroize();
    }
}

impl fmt::Debug for AuthorizerReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizerReply")
            .field(
                "connection_secret",
                &format_args!("<{} bytes>", self.connection_secret.len()),
            )
            .finish()
    }
}

/// One service's ticket as the client holds it.
#[derive(Debug, Clone)]
pub struct ServiceTicket {
    service: EntityType,
    session_key: CryptoKey,
    ticket: CephXTicketBlob,
    validity: Duration,
    expires: Option<Instant>,
    renew_after: Option<Instant>,
}

impl ServiceTicket {
    fn new(
        service: EntityType,
        st: CephXServiceTicket,
        ticket: CephXTicketBlob,
        now: Instant,
    ) -> Self {
        let validity = st.validity.as_duration();
        // ceph: verify_service_ticket_reply — a zero validity leaves the ticket without
        // expiry; otherwise renew a quarter of the validity before it expires.
        let (expires, renew_after) = if validity.is_zero() {
            (None, None)
        } else {
            (
                now.checked_add(validity),
                now.checked_add(validity - validity / 4),
            )
        };
        ServiceTicket {
            service,
            session_key: st.session_key,
            ticket,
            validity,
            expires,
            renew_after,
        }
    }

    /// The service this ticket is for.
    pub fn service(&self) -> EntityType {
        self.service
    }

    /// The session key shared with the service.
    pub fn session_key(&self) -> &CryptoKey {
        &self.session_key
    }

    /// The opaque ticket presented to the service.
    pub fn ticket_blob(&self) -> &CephXTicketBlob {
        &self.ticket
    }

    /// The rotating-secret id the ticket is encrypted with.
    pub fn secret_id(&self) -> u64 {
        self.ticket.secret_id
    }

    /// Validity period granted by the mon.
    pub fn validity(&self) -> Duration {
        self.validity
    }

    /// `received + validity`, or `None` when the mon granted no expiry.
    pub fn expires(&self) -> Option<Instant> {
        self.expires
    }

    /// `received + validity * 3/4`, or `None` when the mon granted no expiry.
    pub fn renew_after(&self) -> Option<Instant> {
        self.renew_after
    }

    /// True once `renew_after` has passed.
    pub fn needs_renewal(&self, now: Instant) -> bool {
        self.renew_after.is_some_and(|t| now >= t)
    }

    /// True once `expires` has passed.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|t| now >= t)
    }
}

/// The sans-IO cephx client: holds the entity key and the tickets, builds requests and
/// consumes replies. It never reads the clock, draws random numbers or does I/O: nonces,
/// challenges, global ids and `now` come from the caller.
///
/// Mon handshake over msgr2 (method 2):
///
/// 1. AUTH_REQUEST payload = [`CephxClient::initial_request`] (global id 0, or the previous
///    one to reclaim it).
/// 2. AUTH_REPLY_MORE payload → [`CephxClient::handle_server_challenge`] → AUTH_REQUEST_MORE
///    payload.
/// 3. AUTH_DONE payload → [`CephxClient::handle_auth_done`] → session key + connection
///    secret; then record the AUTH_DONE global id with [`CephxClient::set_global_id`].
///
/// OSD/MGR connections: [`CephxClient::build_authorizer`] → [`Authorizer`].
///
/// Renewal over the established mon session (MAuth, protocol 2), see the crate docs:
/// [`CephxClient::needs_renewal`], [`CephxClient::build_service_ticket_request`],
/// [`CephxClient::build_auth_renewal_request`], [`CephxClient::handle_service_ticket_reply`].
#[derive(Debug, Clone)]
pub struct CephxClient {
    name: EntityName,
    key: CryptoKey,
    want_keys: u32,
    global_id: u64,
    /// The global id carried by the last [`CephxClient::initial_request`]: non-zero means this
    /// handshake reclaims it, so the AUTH ticket must be presented (and must not otherwise).
    requested_global_id: Cell<u64>,
    server_challenge: Option<u64>,
    tickets: BTreeMap<u32, ServiceTicket>,
}

impl CephxClient {
    /// A client for `name` holding its long-term `key`; wants [`DEFAULT_WANT_KEYS`].
    pub fn new(name: EntityName, key: CryptoKey) -> Self {
        CephxClient {
            name,
            key,
            want_keys: DEFAULT_WANT_KEYS,
            global_id: 0,
            requested_global_id: Cell::new(0),
            server_challenge: None,
            tickets: BTreeMap::new(),
        }
    }

    /// Set the services (bitmask of entity types) to fetch tickets for, besides AUTH.
    pub fn set_want_keys(&mut self, keys: u32) {
        self.want_keys = keys & !AUTH;
    }

    /// The services to fetch tickets for (AUTH is implied and not included).
    pub fn want_keys(&self) -> u32 {
        self.want_keys
    }

    /// The entity this client authenticates as.
    pub fn name(&self) -> &EntityName {
        &self.name
    }

    /// The global id last recorded with [`CephxClient::set_global_id`] (0 = none yet).
    pub fn global_id(&self) -> u64 {
        self.global_id
    }

    /// Record the global id the mon assigned (from msgr2 AUTH_DONE / MAuthReply). Send it in
    /// [`CephxClient::initial_request`] on reconnect to reclaim it.
    pub fn set_global_id(&mut self, global_id: u64) {
        self.global_id = global_id;
    }

    /// The server challenge of the current mon session, if one was received.
    pub fn server_challenge(&self) -> Option<u64> {
        self.server_challenge
    }

    /// Forget the current mon session's server challenge (the connection is gone). Tickets
    /// are kept: the AUTH ticket is presented again when re-authenticating.
    pub fn reset_session(&mut self) {
        self.server_challenge = None;
    }

    /// Drop every ticket (e.g. to start over as a brand-new client).
    pub fn clear_tickets(&mut self) {
        self.tickets.clear();
    }

    /// The msgr2 AUTH_REQUEST payload for a monitor: `u8 AUTH_MODE_MON (10)`, EntityName,
    /// `u64 global_id` — 0 on first contact, the previous id ([`CephxClient::global_id`]) to
    /// reclaim it when reconnecting. The id is remembered for the next
    /// [`CephxClient::handle_server_challenge`], which presents the AUTH ticket exactly when
    /// reclaiming.
    pub fn initial_request(&self, global_id: u64) -> Vec<u8> {
        self.requested_global_id.set(global_id);
        mon_initial_request(&self.name, global_id)
    }

    /// Consume the mon's AUTH_REPLY_MORE payload (`CephXServerChallenge`) and return the
    /// AUTH_REQUEST_MORE payload: `CephXRequestHeader(0x0100)` + `CephXAuthenticate` v3 with
    /// the proof of key, `other_keys = want_keys | AUTH` (what librados sends: 0x35 by
    /// default), and as `old_ticket` the current AUTH ticket if the preceding
    /// [`CephxClient::initial_request`] reclaimed a global id (non-zero), else empty.
    ///
    /// That rule is the Pacific mon's (`CephxServiceHandler::verify_old_ticket`, v3 clients):
    /// a ticket presented with a new global id is refused (EINVAL, "superfluous ticket"), a
    /// reclaim without a valid ticket is refused (EACCES) unless
    /// `auth_allow_insecure_global_id_reclaim` is on.
    pub fn handle_server_challenge(
        &mut self,
        payload: &[u8],
        client_challenge: u64,
    ) -> Result<Vec<u8>> {
        let ch: CephXServerChallenge = decode_exact(payload)?;
        self.server_challenge = Some(ch.server_challenge);
        let reclaim = self.requested_global_id.get() != 0;
        Ok(self.build_authenticate(
            ch.server_challenge,
            client_challenge,
            self.want_keys | AUTH,
            reclaim,
        ))
    }

    fn build_authenticate(
        &self,
        server_challenge: u64,
        client_challenge: u64,
        other_keys: u32,
        present_ticket: bool,
    ) -> Vec<u8> {
        let old_ticket = match self.tickets.get(&AUTH) {
            Some(t) if present_ticket => t.ticket.clone(),
            _ => CephXTicketBlob::default(),
        };
        let req = CephXAuthenticate {
            struct_v: 3,
            client_challenge,
            key: client_proof(&self.key, server_challenge, client_challenge),
            old_ticket,
            other_keys,
        };
        let mut out = Vec::with_capacity(64 + req.old_ticket.blob.len());
        CephXRequestHeader {
            request_type: CEPHX_GET_AUTH_SESSION_KEY,
        }
        .encode(&mut out);
        req.encode(&mut out);
        out
    }

    /// Consume the mon's AUTH_DONE payload: `CephXResponseHeader`, the AUTH ticket reply
    /// (opened with the client key), the encrypted connection secret and the extra service
    /// tickets (opened with the new AUTH session key).
    ///
    /// Errors: a negative status → [`CephxError::Server`]; a reply that does not open with our
    /// key → [`CephxError::Decrypt`] / [`CephxError::BadMagic`] (wrong key). On error no
    /// ticket is changed.
    pub fn handle_auth_done(&mut self, payload: &[u8], now: Instant) -> Result<MonAuthResult> {
        let mut d = Decoder::new(payload);
        let h = CephXResponseHeader::decode(&mut d)?;
        if let Some(errno) = Errno::from_status(h.status) {
            return Err(CephxError::Server { errno });
        }
        if h.request_type != CEPHX_GET_AUTH_SESSION_KEY {
            return Err(CephxError::Protocol(format!(
                "expected GET_AUTH_SESSION_KEY reply, got request type {:#x}",
                h.request_type
            )));
        }
        let (session_key, connection_secret) = self.process_auth_session_key_reply(&mut d, now)?;
        Ok(MonAuthResult {
            session_key,
            connection_secret,
        })
    }

    /// Parse the body of a GET_AUTH_SESSION_KEY reply and commit the tickets.
    fn process_auth_session_key_reply(
        &mut self,
        d: &mut Decoder<'_>,
        now: Instant,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let mut new = parse_ticket_reply(
            d,
            &self.key,
            &self.tickets,
            now,
            "ticket reply with the client key",
        )?;
        let auth_key = new
            .iter()
            .find(|t| t.service == EntityType::AUTH)
            .map(|t| t.session_key.clone())
            .ok_or_else(|| {
                CephxError::Protocol("GET_AUTH_SESSION_KEY reply without an AUTH ticket".into())
            })?;
        let mut connection_secret = Vec::new();
        // msgr2 (nautilus+) appends `bl connection_secret` and `bl extra_tickets` when the
        // request had other_keys; a Pacific mon always fills the first (an encrypted empty
        // string in CRC mode).
        if !d.is_empty() {
            let cbl = d.blob("connection secret")?;
            let extra = d.blob("extra tickets")?;
            if !cbl.is_empty() {
                let pt = auth_key.decode_decrypt(&mut Decoder::new(cbl), "connection secret")?;
                connection_secret = Decoder::new(&pt).blob("connection secret")?.to_vec();
            }
            if !extra.is_empty() {
                let more = parse_ticket_reply(
                    &mut Decoder::new(extra),
                    &auth_key,
                    &self.tickets,
                    now,
                    "extra tickets with the AUTH session key",
                )?;
                new.extend(more);
            }
        }
        for t in new {
            tracing::debug!(service = ?t.service, secret_id = t.ticket.secret_id, validity = ?t.validity, "cephx: got ticket");
            self.tickets.insert(t.service.0, t);
        }
        Ok((auth_key.secret().to_vec(), connection_secret))
    }

    /// True when a ticket for `service` is held (it may have expired: see
    /// [`CephxClient::ticket`]).
    pub fn has_ticket(&self, service: EntityType) -> bool {
        self.tickets.contains_key(&service.0)
    }

    /// The ticket for `service`, if held.
    pub fn ticket(&self, service: EntityType) -> Option<&ServiceTicket> {
        self.tickets.get(&service.0)
    }

    /// The AUTH ticket's session key: the AUTH_SIGNATURE key of the mon connection.
    pub fn auth_session_key(&self) -> Option<&CryptoKey> {
        self.tickets.get(&AUTH).map(|t| &t.session_key)
    }

    /// Services (AUTH plus `want_keys`) whose ticket is missing or past `renew_after`.
    ///
    /// If the AUTH bit is set, renew with [`CephxClient::build_auth_renewal_request`] (or a
    /// fresh mon connection); otherwise [`CephxClient::build_service_ticket_request`] with
    /// the returned mask.
    pub fn needs_renewal(&self, now: Instant) -> u32 {
        let want = self.want_keys | AUTH;
        let mut need = 0;
        for bit in (0..32).map(|i| 1u32 << i).filter(|b| want & b != 0) {
            match self.tickets.get(&bit) {
                Some(t) if !t.needs_renewal(now) => {}
                _ => need |= bit,
            }
        }
        need
    }

    /// An authorizer for an OSD/MGR (or any service we hold a ticket for) connection.
    ///
    /// `nonce` is a fresh random u64; `global_id` is ours (from AUTH_DONE).
    pub fn build_authorizer(
        &self,
        service: EntityType,
        nonce: u64,
        global_id: u64,
    ) -> Result<Authorizer> {
        let t = self
            .tickets
            .get(&service.0)
            .ok_or(CephxError::MissingTicket(service))?;
        Ok(Authorizer::new(
            service,
            t.session_key.clone(),
            &t.ticket,
            nonce,
            global_id,
        ))
    }

    /// MAuth payload asking for service tickets (GET_PRINCIPAL_SESSION_KEY):
    /// `CephXRequestHeader(0x0200)` + an authorizer for the AUTH service (no challenge round)
    /// + `CephXServiceTicketRequest{keys}`. The AUTH bit is removed from `keys`.
    pub fn build_service_ticket_request(
        &self,
        keys: u32,
        nonce: u64,
        global_id: u64,
    ) -> Result<Vec<u8>> {
        let a = self.build_authorizer(EntityType::AUTH, nonce, global_id)?;
        let mut out = Vec::with_capacity(a.payload.len() + 16);
        CephXRequestHeader {
            request_type: CEPHX_GET_PRINCIPAL_SESSION_KEY,
        }
        .encode(&mut out);
        out.put_raw(a.payload());
        CephXServiceTicketRequest { keys: keys & !AUTH }.encode(&mut out);
        Ok(out)
    }

    /// MAuth payload renewing the AUTH ticket over the established mon session: another
    /// GET_AUTH_SESSION_KEY presenting the current AUTH ticket as `old_ticket`.
    ///
    /// There is no new challenge round: the mon keeps the per-session cephx handler that
    /// issued the challenge of this connection's msgr2 handshake and verifies the proof
    /// against that same challenge, so the proof is computed over the stored one. `other_keys`
    /// (AUTH is added) also returns those service tickets in the reply. Fails with
    /// [`CephxError::NoServerChallenge`] without a handshake on this session, and
    /// [`CephxError::MissingTicket`] without an AUTH ticket.
    pub fn build_auth_renewal_request(
        &self,
        client_challenge: u64,
        other_keys: u32,
    ) -> Result<Vec<u8>> {
        let sc = self.server_challenge.ok_or(CephxError::NoServerChallenge)?;
        if !self.tickets.contains_key(&AUTH) {
            return Err(CephxError::MissingTicket(EntityType::AUTH));
        }
        Ok(self.build_authenticate(sc, client_challenge, other_keys | AUTH, true))
    }

    /// Consume an MAuthReply `result_bl` answering [`CephxClient::build_service_ticket_request`]
    /// (request type 0x0200: tickets opened with the AUTH session key) or
    /// [`CephxClient::build_auth_renewal_request`] (0x0100: new AUTH ticket opened with the
    /// client key, its blob encrypted with the previous AUTH session key, plus any extra
    /// tickets). Check `MAuthReply.result` yourself first: a negative result usually comes
    /// with an empty `result_bl`.
    pub fn handle_service_ticket_reply(&mut self, result_bl: &[u8], now: Instant) -> Result<()> {
        let mut d = Decoder::new(result_bl);
        let h = CephXResponseHeader::decode(&mut d)?;
        if let Some(errno) = Errno::from_status(h.status) {
            return Err(CephxError::Server { errno });
        }
        match h.request_type {
            CEPHX_GET_PRINCIPAL_SESSION_KEY => {
                let auth_key = self
                    .auth_session_key()
                    .cloned()
                    .ok_or(CephxError::MissingTicket(EntityType::AUTH))?;
                let new = parse_ticket_reply(
                    &mut d,
                    &auth_key,
                    &self.tickets,
                    now,
                    "service tickets with the AUTH session key",
                )?;
                for t in new {
                    self.tickets.insert(t.service.0, t);
                }
                Ok(())
            }
            CEPHX_GET_AUTH_SESSION_KEY => {
                self.process_auth_session_key_reply(&mut d, now).map(|_| ())
            }
            other => Err(CephxError::Protocol(format!(
                "unexpected cephx reply type {other:#x}"
            ))),
        }
    }
}

/// Parse a service ticket reply (`u8 1`, `u32 n`, n × per-ticket) without committing it.
///
/// Per ticket: `u32 service_id`, `u8 1`, `encode_encrypt(principal, CephXServiceTicket)`,
/// `u8 is_enc`, then `bl(CephXTicketBlob)` — or, if `is_enc`, that bl encrypted with the
/// service's *previous* session key (a renewal presenting the old ticket).
fn parse_ticket_reply(
    d: &mut Decoder<'_>,
    principal: &CryptoKey,
    current: &BTreeMap<u32, ServiceTicket>,
    now: Instant,
    what: &'static str,
) -> Result<Vec<ServiceTicket>> {
    let v = d.u8()?;
    if v != 1 {
        return Err(CephxError::Protocol(format!(
            "service ticket reply version {v}"
        )));
    }
    // service_id 4 + v 1 + encrypted bl >= 4 + is_enc 1 + bl >= 4
    let n = d.count(14, "service ticket reply")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let service = EntityType(d.u32()?);
        let tv = d.u8()?;
        if tv != 1 {
            return Err(CephxError::Protocol(format!("service ticket version {tv}")));
        }
        let pt = principal.decode_decrypt(d, what)?;
        let st = CephXServiceTicket::decode(&mut Decoder::new(&pt))?;
        if !st.session_key.is_aes() {
            return Err(CephxError::Protocol(format!(
                "session key for {service:?} is not AES"
            )));
        }
        let is_enc = d.u8()? != 0;
        let ticket = if is_enc {
            let old = current
                .get(&service.0)
                .ok_or(CephxError::MissingTicket(service))?;
            let pt = old
                .session_key
                .decode_decrypt(d, "ticket blob with the previous session key")?;
            let mut inner = Decoder::new(&pt);
            CephXTicketBlob::decode(&mut Decoder::new(inner.blob("ticket blob")?))?
        } else {
            CephXTicketBlob::decode(&mut Decoder::new(d.blob("ticket blob")?))?
        };
        out.push(ServiceTicket::new(service, st, ticket, now));
    }
    Ok(out)
}

/// The msgr2 AUTH_REQUEST payload to a monitor, shared by cephx and auth-none:
/// `u8 AUTH_MODE_MON`, EntityName, `u64 global_id`.
fn mon_initial_request(name: &EntityName, global_id: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 4 + 4 + name.id.len() + 8);
    out.put_u8(AUTH_MODE_MON);
    name.encode(&mut out);
    out.put_u64(global_id);
    out
}

/// A cephx authorizer for one OSD/MGR connection (or for the AUTH service inside a
/// GET_PRINCIPAL_SESSION_KEY request).
///
/// Payload = plain part (`u8 1`, `u64 global_id`, `u32 service_id`, `CephXTicketBlob`) +
/// `encode_encrypt(session key, CephXAuthorize v2)`. msgr2 flow: AUTH_REQUEST with
/// [`Authorizer::payload`]; AUTH_REPLY_MORE → [`Authorizer::add_challenge`] →
/// AUTH_REQUEST_MORE; AUTH_DONE → [`Authorizer::verify_reply`]. The session key
/// ([`Authorizer::session_key`]) then keys AUTH_SIGNATURE.
#[derive(Debug, Clone)]
pub struct Authorizer {
    service: EntityType,
    session_key: CryptoKey,
    nonce: u64,
    base: Vec<u8>,
    payload: Vec<u8>,
}

impl Authorizer {
    fn new(
        service: EntityType,
        session_key: CryptoKey,
        ticket: &CephXTicketBlob,
        nonce: u64,
        global_id: u64,
    ) -> Self {
        let mut base = Vec::with_capacity(1 + 8 + 4 + 13 + ticket.blob.len());
        base.put_u8(AUTH_MODE_AUTHORIZER);
        base.put_u64(global_id);
        base.put_u32(service.0);
        ticket.encode(&mut base);
        let mut a = Authorizer {
            service,
            session_key,
            nonce,
            payload: Vec::new(),
            base,
        };
        a.payload = a.assemble(false, 0);
        a
    }

    fn assemble(&self, have_challenge: bool, server_challenge_plus_one: u64) -> Vec<u8> {
        let msg = CephXAuthorize {
            struct_v: 2,
            nonce: self.nonce,
            have_challenge,
            server_challenge_plus_one,
        };
        let mut out = Vec::with_capacity(self.base.len() + 36);
        out.put_raw(&self.base);
        self.session_key
            .encode_encrypt(&ceph_encoding::encode_to_vec(&msg), &mut out);
        out
    }

    /// The bytes to send (AUTH_REQUEST payload, or after a challenge the AUTH_REQUEST_MORE
    /// payload).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The service this authorizer is for.
    pub fn service(&self) -> EntityType {
        self.service
    }

    /// The nonce chosen by the caller.
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// The service ticket's session key (AUTH_SIGNATURE key of this connection).
    pub fn session_key(&self) -> &CryptoKey {
        &self.session_key
    }

    /// Answer the service's challenge (cephx v2): the AUTH_REPLY_MORE payload is
    /// `encode_encrypt_enc_bl(session key, CephXAuthorizeChallenge)` (raw ciphertext). Returns
    /// the AUTH_REQUEST_MORE payload: the same plain part + a new `CephXAuthorize` with
    /// `have_challenge = 1` and `challenge + 1`; [`Authorizer::payload`] is updated too.
    pub fn add_challenge(&mut self, reply_more_payload: &[u8]) -> Result<Vec<u8>> {
        let pt = self
            .session_key
            .decrypt_enc_bl(reply_more_payload, "authorizer challenge")?;
        let ch = CephXAuthorizeChallenge::decode(&mut Decoder::new(&pt))?;
        self.payload = self.assemble(true, ch.server_challenge.wrapping_add(1));
        Ok(self.payload.clone())
    }

    /// Check the service's AUTH_DONE payload, `encode_encrypt(session key,
    /// CephXAuthorizeReply)`: it must open with our session key and carry `nonce + 1`.
    pub fn verify_reply(&self, auth_done_payload: &[u8]) -> Result<AuthorizerReply> {
        let mut d = Decoder::new(auth_done_payload);
        let pt = self
            .session_key
            .decode_decrypt(&mut d, "authorizer reply")?;
        let mut r = CephXAuthorizeReply::decode(&mut Decoder::new(&pt))?;
        let expected = self.nonce.wrapping_add(1);
        if r.nonce_plus_one != expected {
            r.connection_secret.zeroize();
            return Err(CephxError::NonceMismatch {
                expected,
                got: r.nonce_plus_one,
            });
        }
        Ok(AuthorizerReply {
            connection_secret: std::mem::take(&mut r.connection_secret),
        })
    }
}

/// Auth method NONE (1): no keys, no tickets; only who we claim to be.
///
/// ceph: src/auth/none/AuthNoneProtocol.h (`AuthNoneAuthorizer::build_authorizer`),
/// MonClient.cc `MonConnection::get_auth_request` (mon payload is method independent);
/// kernel: net/ceph/auth_none.c.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoneAuth {
    name: EntityName,
}

impl NoneAuth {
    /// Auth-none for `name`.
    pub fn new(name: EntityName) -> Self {
        NoneAuth { name }
    }

    /// The msgr2 AUTH_REQUEST payload (method 1) to a monitor: `u8 AUTH_MODE_MON (10)`,
    /// EntityName, `u64 global_id` — the same bytes as cephx; the mon answers AUTH_DONE
    /// directly (empty payload, no session key, no connection secret).
    pub fn initial_request(&self, global_id: u64) -> Vec<u8> {
        mon_initial_request(&self.name, global_id)
    }

    /// The authorizer (AUTH_REQUEST payload, method 1) for an OSD/MGR: `u8 1`
    /// (AUTH_MODE_AUTHORIZER), EntityName, `u64 global_id`. The service accepts it without a
    /// challenge and its AUTH_DONE payload needs no verification.
    pub fn authorizer(&self, global_id: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 4 + 4 + self.name.id.len() + 8);
        out.put_u8(AUTH_MODE_AUTHORIZER);
        self.name.encode(&mut out);
        out.put_u64(global_id);
        out
    }
}
