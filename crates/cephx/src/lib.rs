//! cephx for a pure-Rust Ceph client: keys, keyrings, the ticket protocol and authorizers.
//!
//! What this crate is:
//! * [`CryptoKey`]: the AES-128 secret of an entity or a session, decoded from keyrings,
//!   key files, Kubernetes secrets or tickets; AES-128-CBC with Ceph's fixed IV and the
//!   `encode_encrypt` envelopes ([`AUTH_ENC_MAGIC`]). Never printed, zeroed on drop.
//! * [`Keyring`]: the INI keyring format.
//! * [`CephxClient`]: the client side of cephx as a sans-IO state machine — the mon
//!   handshake carried by msgr2 AUTH_* frames, the AUTH and service tickets, ticket
//!   renewal over MAuth, global_id reclaim — and [`Authorizer`] for OSD/MGR connections,
//!   including the cephx v2 challenge round. [`NoneAuth`] covers auth method NONE.
//! * [`protocol`]: every cephx wire struct with a decoder and an encoder.
//!
//! What it is not: no networking, no frames (the msgr2 crate carries the payloads this
//! crate builds and consumes), no clock (callers pass `now: Instant`), no randomness
//! (callers pass nonces and challenges), no server side, no msgr1 message signatures.
//!
//! # Mon handshake (msgr2)
//!
//! ```no_run
//! # use ceph_cephx::*; use ceph_encoding::{EntityName, EntityType}; use std::time::Instant;
//! # fn rand() -> u64 { 4 } fn send(_: &[u8]) {} fn recv() -> Vec<u8> { vec![] }
//! # fn main() -> Result<(), CephxError> {
//! let key = CryptoKey::from_base64("AQApMwZrvCZ+DRAAeS5Mu4cmvIHECPmzhXTB5g==")?;
//! let mut cx = CephxClient::new(EntityName::client("kubernetes"), key);
//! send(&cx.initial_request(cx.global_id()));                 // AUTH_REQUEST, method 2
//! send(&cx.handle_server_challenge(&recv(), rand())?);       // AUTH_REPLY_MORE -> _MORE
//! let done = cx.handle_auth_done(&recv(), Instant::now())?;  // AUTH_DONE payload
//! // done.session_key keys AUTH_SIGNATURE, done.connection_secret keys SECURE mode;
//! // cx.set_global_id(<AUTH_DONE global_id>);
//! let mut osd = cx.build_authorizer(EntityType::OSD, rand(), cx.global_id())?;
//! send(osd.payload());                                        // AUTH_REQUEST to the OSD
//! send(&osd.add_challenge(&recv())?);                         // AUTH_REPLY_MORE -> _MORE
//! let reply = osd.verify_reply(&recv())?;                     // AUTH_DONE payload
//! # Ok(()) }
//! ```
//!
//! # Ticket renewal
//!
//! Tickets carry a validity (Pacific defaults: 72 h for the AUTH ticket, 1 h for service
//! tickets). [`CephxClient::needs_renewal`] returns the services whose ticket is missing or
//! past 3/4 of its validity. Over the established mon session the MonClient sends an MAuth
//! message (type 17, `protocol = 2`) whose `auth_payload` is built here, and feeds the
//! MAuthReply's `result_bl` back to [`CephxClient::handle_service_ticket_reply`]:
//!
//! * service tickets only (no AUTH bit): [`CephxClient::build_service_ticket_request`] —
//!   GET_PRINCIPAL_SESSION_KEY with an authorizer for the AUTH service; the reply's tickets
//!   open with the AUTH session key.
//! * the AUTH ticket (AUTH bit set): [`CephxClient::build_auth_renewal_request`] — another
//!   GET_AUTH_SESSION_KEY presenting the current AUTH ticket as `old_ticket`. No new challenge
//!   is exchanged: the mon's session keeps the cephx handler (and its server challenge) of
//!   this connection's msgr2 handshake (`Monitor::handle_auth_request` stores it in the
//!   MonSession, `AuthMonitor::prep_auth` reuses it for MAuth), and librados'
//!   `CephxClientHandler::build_request` likewise reuses the stored challenge. So the client
//!   keeps the challenge ([`CephxClient::server_challenge`]) and computes a fresh proof with
//!   a fresh client challenge. The mon verifies the old ticket (global_id reclaim check),
//!   and returns the new AUTH ticket with `is_enc = 1`: its blob encrypted with the *old*
//!   AUTH session key, which this crate still holds. The connection secret field is empty
//!   over MAuth, and the extra tickets for `other_keys` are accepted. The msgr2 connection's
//!   keys do not change.
//! * Alternatively open a fresh mon connection with `initial_request(global_id())`:
//!   [`CephxClient::handle_server_challenge`] then presents the current AUTH ticket
//!   (secure global_id reclaim, CephXAuthenticate v3). With `initial_request(0)` it presents
//!   none, as the mon requires for a new global id.

#![warn(missing_docs)]

mod client;
mod crypto;
mod error;
mod keyring;
pub mod protocol;

pub use client::{
    client_proof, Authorizer, AuthorizerReply, CephxClient, MonAuthResult, NoneAuth, ServiceTicket,
    DEFAULT_WANT_KEYS,
};
pub use crypto::{
    CryptoKey, CryptoType, AES_KEY_LEN, AUTH_ENC_MAGIC, CEPH_AES_IV, ENCODED_KEY_LEN,
};
pub use error::{CephxError, Errno, Result};
pub use keyring::{Keyring, KeyringEntry};
