//! The cephx wire structures, each with a decoder and an encoder.
//!
//! ceph: src/auth/cephx/CephxProtocol.h (all `CephX*` structs), src/auth/Auth.h
//! (`AuthTicket`, `AuthCapsInfo`); kernel: net/ceph/auth_x_protocol.h.
//!
//! None of these use the `ENCODE_START` envelope: each starts with a bare `u8 struct_v`
//! (or has no version at all). Where more than one version exists on the wire, the decoded
//! version is kept so that re-encoding reproduces the input byte for byte.

use crate::crypto::CryptoKey;
use ceph_encoding::{Decode, DecodeError, Decoder, Encode, EncodeExt, EntityName, Result, UTime};

/// `CEPHX_GET_AUTH_SESSION_KEY`: authenticate with the entity key, get the AUTH ticket.
pub const CEPHX_GET_AUTH_SESSION_KEY: u16 = 0x0100;
/// `CEPHX_GET_PRINCIPAL_SESSION_KEY`: get service tickets using the AUTH ticket.
pub const CEPHX_GET_PRINCIPAL_SESSION_KEY: u16 = 0x0200;
/// `CEPHX_GET_ROTATING_KEY`: daemons only.
pub const CEPHX_GET_ROTATING_KEY: u16 = 0x0400;

/// `AUTH_MODE_AUTHORIZER`: first byte of an authorizer (to OSDs, MGRs, MDSs).
pub const AUTH_MODE_AUTHORIZER: u8 = 1;
/// `AUTH_MODE_MON`: first byte of the initial msgr2 AUTH_REQUEST payload to a monitor.
pub const AUTH_MODE_MON: u8 = 10;

/// Auth method numbers (`CEPH_AUTH_*`), as in msgr2 AUTH_REQUEST.
pub mod auth_method {
    /// Unknown.
    pub const UNKNOWN: u32 = 0;
    /// No authentication.
    pub const NONE: u32 = 1;
    /// cephx.
    pub const CEPHX: u32 = 2;
}

fn check_v(what: &'static str, v: u8, min: u8, max: u8) -> Result<()> {
    if v < min || v > max {
        return Err(DecodeError::invalid(
            what,
            format!("struct_v {v} not in {min}..={max}"),
        ));
    }
    Ok(())
}

/// Mon → client, first reply (AUTH_REPLY_MORE payload): `u8 1`, `u64 server_challenge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CephXServerChallenge {
    /// Random, non-zero.
    pub server_challenge: u64,
}
impl Decode for CephXServerChallenge {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let _v = d.u8()?;
        Ok(CephXServerChallenge {
            server_challenge: d.u64()?,
        })
    }
}
impl Encode for CephXServerChallenge {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        out.put_u64(self.server_challenge);
    }
}

/// Request header: just `u16 request_type` (no version byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CephXRequestHeader {
    /// `CEPHX_GET_*`.
    pub request_type: u16,
}
impl Decode for CephXRequestHeader {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(CephXRequestHeader {
            request_type: d.u16()?,
        })
    }
}
impl Encode for CephXRequestHeader {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.request_type);
    }
}

/// Response header: `u16 request_type`, `s32 status` (0 or a negative errno).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CephXResponseHeader {
    /// Echo of the request type.
    pub request_type: u16,
    /// 0 on success, `-errno` on failure.
    pub status: i32,
}
impl Decode for CephXResponseHeader {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(CephXResponseHeader {
            request_type: d.u16()?,
            status: d.i32()?,
        })
    }
}
impl Encode for CephXResponseHeader {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.request_type);
        out.put_i32(self.status);
    }
}

/// A ticket as the client holds it: `u8 1`, `u64 secret_id`, `bl blob` (opaque to us: it is
/// encrypted with the service's rotating secret).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CephXTicketBlob {
    /// Which rotating service secret encrypted `blob` (`u64::MAX`: the service's own key).
    pub secret_id: u64,
    /// The encrypted `CephXServiceTicketInfo`.
    pub blob: Vec<u8>,
}
impl Decode for CephXTicketBlob {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let _v = d.u8()?;
        Ok(CephXTicketBlob {
            secret_id: d.u64()?,
            blob: d.blob("CephXTicketBlob.blob")?.to_vec(),
        })
    }
}
impl Encode for CephXTicketBlob {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        out.put_u64(self.secret_id);
        out.put_blob(&self.blob);
    }
}

/// Client → mon, answer to the server challenge (after a `CephXRequestHeader(0x0100)`).
///
/// v1: challenge, key, old_ticket; v2 adds `other_keys`; v3 has the v2 layout and promises
/// that `old_ticket` is always filled when reclaiming a global_id (CVE-2021-20288).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CephXAuthenticate {
    /// Encoding version (1..=3); we send 3.
    pub struct_v: u8,
    /// Random client nonce.
    pub client_challenge: u64,
    /// Proof of key: see [`crate::client_proof`].
    pub key: u64,
    /// The current AUTH ticket, or empty.
    pub old_ticket: CephXTicketBlob,
    /// Bitmask of service tickets wanted in the same round (v2+).
    pub other_keys: u32,
}
impl Decode for CephXAuthenticate {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let struct_v = d.u8()?;
        let client_challenge = d.u64()?;
        let key = d.u64()?;
        let old_ticket = CephXTicketBlob::decode(d)?;
        let other_keys = if struct_v >= 2 { d.u32()? } else { 0 };
        Ok(CephXAuthenticate {
            struct_v,
            client_challenge,
            key,
            old_ticket,
            other_keys,
        })
    }
}
impl Encode for CephXAuthenticate {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.struct_v);
        out.put_u64(self.client_challenge);
        out.put_u64(self.key);
        self.old_ticket.encode(out);
        if self.struct_v >= 2 {
            out.put_u32(self.other_keys);
        }
    }
}

/// The plaintext the proof of key is computed over: two u64, no version byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CephXChallengeBlob {
    /// From the mon.
    pub server_challenge: u64,
    /// From the client.
    pub client_challenge: u64,
}
impl Decode for CephXChallengeBlob {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(CephXChallengeBlob {
            server_challenge: d.u64()?,
            client_challenge: d.u64()?,
        })
    }
}
impl Encode for CephXChallengeBlob {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.server_challenge);
        out.put_u64(self.client_challenge);
    }
}

/// Which service tickets a GET_PRINCIPAL_SESSION_KEY asks for: `u8 1`, `u32 keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CephXServiceTicketRequest {
    /// Service bitmask.
    pub keys: u32,
}
impl Decode for CephXServiceTicketRequest {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let _v = d.u8()?;
        Ok(CephXServiceTicketRequest { keys: d.u32()? })
    }
}
impl Encode for CephXServiceTicketRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        out.put_u32(self.keys);
    }
}

/// The part of a ticket reply only the principal can read: `u8 1`, `CryptoKey
/// session_key`, `utime validity` (a duration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CephXServiceTicket {
    /// Session key for talking to the service.
    pub session_key: CryptoKey,
    /// How long the ticket is valid.
    pub validity: UTime,
}
impl Decode for CephXServiceTicket {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let _v = d.u8()?;
        Ok(CephXServiceTicket {
            session_key: CryptoKey::decode(d)?,
            validity: UTime::decode(d)?,
        })
    }
}
impl Encode for CephXServiceTicket {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        self.session_key.encode(out);
        self.validity.encode(out);
    }
}

/// Capabilities inside a ticket: `u8 1`, `bool allow_all`, `bl caps` (an encoded
/// `map<string,string>` or string, opaque here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthCapsInfo {
    /// Everything allowed.
    pub allow_all: bool,
    /// Encoded caps.
    pub caps: Vec<u8>,
}
impl Decode for AuthCapsInfo {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let _v = d.u8()?;
        Ok(AuthCapsInfo {
            allow_all: d.bool()?,
            caps: d.blob("AuthCapsInfo.caps")?.to_vec(),
        })
    }
}
impl Encode for AuthCapsInfo {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        out.put_bool(self.allow_all);
        out.put_blob(&self.caps);
    }
}

/// `AuthTicket` (what a service learns from a ticket; clients never see it decrypted).
///
/// v1: name, global_id, created, expires, caps, flags; v2 inserts the retired `u64 auid`
/// (always `u64::MAX`) after global_id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthTicket {
    /// Encoding version (1 or 2).
    pub struct_v: u8,
    /// Principal.
    pub name: EntityName,
    /// Principal's global id.
    pub global_id: u64,
    /// Retired auid (v2 only).
    pub auid: u64,
    /// Creation time.
    pub created: UTime,
    /// Expiry time.
    pub expires: UTime,
    /// Granted capabilities.
    pub caps: AuthCapsInfo,
    /// Flags.
    pub flags: u32,
}
impl Decode for AuthTicket {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let struct_v = d.u8()?;
        check_v("AuthTicket", struct_v, 1, 2)?;
        let name = EntityName::decode(d)?;
        let global_id = d.u64()?;
        let auid = if struct_v >= 2 { d.u64()? } else { u64::MAX };
        Ok(AuthTicket {
            struct_v,
            name,
            global_id,
            auid,
            created: UTime::decode(d)?,
            expires: UTime::decode(d)?,
            caps: AuthCapsInfo::decode(d)?,
            flags: d.u32()?,
        })
    }
}
impl Encode for AuthTicket {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.struct_v);
        self.name.encode(out);
        out.put_u64(self.global_id);
        if self.struct_v >= 2 {
            out.put_u64(self.auid);
        }
        self.created.encode(out);
        self.expires.encode(out);
        self.caps.encode(out);
        out.put_u32(self.flags);
    }
}

/// The content of a ticket blob (service side): `u8 1`, `AuthTicket`, `CryptoKey
/// session_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CephXServiceTicketInfo {
    /// The ticket.
    pub ticket: AuthTicket,
    /// The session key shared with the principal.
    pub session_key: CryptoKey,
}
impl Decode for CephXServiceTicketInfo {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let _v = d.u8()?;
        Ok(CephXServiceTicketInfo {
            ticket: AuthTicket::decode(d)?,
            session_key: CryptoKey::decode(d)?,
        })
    }
}
impl Encode for CephXServiceTicketInfo {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        self.ticket.encode(out);
        self.session_key.encode(out);
    }
}

/// The encrypted half of an authorizer.
///
/// v1: nonce; v2 adds `have_challenge` and `server_challenge_plus_one` (cephx v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CephXAuthorize {
    /// Encoding version (1 or 2); we send 2.
    pub struct_v: u8,
    /// Random; the reply proves the service by returning nonce + 1.
    pub nonce: u64,
    /// Whether this answers a server challenge (v2).
    pub have_challenge: bool,
    /// The server challenge + 1 (v2).
    pub server_challenge_plus_one: u64,
}
impl Decode for CephXAuthorize {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let struct_v = d.u8()?;
        let nonce = d.u64()?;
        let (have_challenge, server_challenge_plus_one) = if struct_v >= 2 {
            (d.bool()?, d.u64()?)
        } else {
            (false, 0)
        };
        Ok(CephXAuthorize {
            struct_v,
            nonce,
            have_challenge,
            server_challenge_plus_one,
        })
    }
}
impl Encode for CephXAuthorize {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.struct_v);
        out.put_u64(self.nonce);
        if self.struct_v >= 2 {
            out.put_bool(self.have_challenge);
            out.put_u64(self.server_challenge_plus_one);
        }
    }
}

/// Service → client challenge (cephx v2): `u8 1`, `u64 server_challenge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CephXAuthorizeChallenge {
    /// Random.
    pub server_challenge: u64,
}
impl Decode for CephXAuthorizeChallenge {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let _v = d.u8()?;
        Ok(CephXAuthorizeChallenge {
            server_challenge: d.u64()?,
        })
    }
}
impl Encode for CephXAuthorizeChallenge {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        out.put_u64(self.server_challenge);
    }
}

/// Service → client, proof of the session key: v1 `u8 1`, `u64 nonce_plus_one`; v2 adds
/// `str connection_secret` (msgr2).
#[derive(Clone, PartialEq, Eq)]
pub struct CephXAuthorizeReply {
    /// Encoding version (1 or 2).
    pub struct_v: u8,
    /// The authorizer's nonce + 1.
    pub nonce_plus_one: u64,
    /// Keys SECURE mode (empty in CRC mode or v1).
    pub connection_secret: Vec<u8>,
}
impl std::fmt::Debug for CephXAuthorizeReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CephXAuthorizeReply")
            .field("struct_v", &self.struct_v)
            .field("nonce_plus_one", &self.nonce_plus_one)
            .field(
                "connection_secret",
                &format_args!("<{} bytes>", self.connection_secret.len()),
            )
            .finish()
    }
}
impl Decode for CephXAuthorizeReply {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let struct_v = d.u8()?;
        let nonce_plus_one = d.u64()?;
        let connection_secret = if struct_v >= 2 {
            d.blob("connection_secret")?.to_vec()
        } else {
            Vec::new()
        };
        Ok(CephXAuthorizeReply {
            struct_v,
            nonce_plus_one,
            connection_secret,
        })
    }
}
impl Encode for CephXAuthorizeReply {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.struct_v);
        out.put_u64(self.nonce_plus_one);
        if self.struct_v >= 2 {
            out.put_blob(&self.connection_secret);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceph_encoding::{decode_exact, encode_to_vec};

    #[test]
    fn authenticate_versions_round_trip() {
        // v1 has no other_keys
        let a = CephXAuthenticate {
            struct_v: 1,
            client_challenge: 1,
            key: 2,
            old_ticket: CephXTicketBlob {
                secret_id: 3,
                blob: b"abc".to_vec(),
            },
            other_keys: 0,
        };
        let b = encode_to_vec(&a);
        assert_eq!(b.len(), 1 + 8 + 8 + 1 + 8 + 4 + 3);
        assert_eq!(decode_exact::<CephXAuthenticate>(&b).unwrap(), a);
        let a3 = CephXAuthenticate {
            struct_v: 3,
            other_keys: 0x35,
            ..a
        };
        let b3 = encode_to_vec(&a3);
        assert_eq!(&b3[b3.len() - 4..], &0x35u32.to_le_bytes());
        assert_eq!(decode_exact::<CephXAuthenticate>(&b3).unwrap(), a3);
    }

    #[test]
    fn authorize_v1_and_v2() {
        let v1 = [1u8, 1, 2, 3, 4, 5, 6, 7, 8];
        let a: CephXAuthorize = decode_exact(&v1).unwrap();
        assert_eq!(a.nonce, 0x0807060504030201);
        assert_eq!(encode_to_vec(&a), v1);
        let a2 = CephXAuthorize {
            struct_v: 2,
            nonce: 5,
            have_challenge: true,
            server_challenge_plus_one: 9,
        };
        assert_eq!(encode_to_vec(&a2).len(), 18);
    }

    #[test]
    fn truncated_is_error() {
        assert!(
            decode_exact::<CephXTicketBlob>(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1]).is_err()
        );
        assert!(decode_exact::<AuthTicket>(&[3]).is_err());
    }
}
