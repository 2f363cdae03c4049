use ceph_encoding::DecodeError;
use thiserror::Error;

/// Everything that can end a msgr2 session, classified by who is at fault.
#[derive(Debug, Error)]
pub enum Error {
    /// The peer is not speaking msgr2 (wrong port, msgr1-only daemon, not Ceph at all).
    #[error(
        "peer did not send a msgr2 banner (got {0:?}); is this a msgr2 port (3300 for monitors)?"
    )]
    BadBanner(Vec<u8>),
    /// A crc check failed: corruption on the wire or a desynchronised stream.
    #[error("bad crc in {what}")]
    BadCrc {
        /// Which part.
        what: &'static str,
    },
    /// AES-GCM authentication failed: wrong connection secret or tampering.
    #[error("secure frame failed authentication (wrong key or tampering)")]
    DecryptFailed,
    /// A frame announced a segment larger than our limits.
    #[error("frame segment {segment} of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// Segment index.
        segment: usize,
        /// Announced length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The peer broke the protocol (unexpected frame, bad payload).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A control payload did not decode.
    #[error("malformed frame payload: {0}")]
    Decode(#[from] DecodeError),
    /// The two sides share no frame revision / required features.
    #[error("feature mismatch: {0}")]
    Features(String),
    /// Authentication was refused or failed.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The server refused every auth method / mode we offered.
    #[error("server rejected auth method {method} (result {result}); it allows methods {allowed_methods:?} modes {allowed_modes:?}")]
    AuthBadMethod {
        /// Method we tried.
        method: u32,
        /// Server's errno-style result.
        result: i32,
        /// Methods the server allows.
        allowed_methods: Vec<u32>,
        /// Connection modes the server allows.
        allowed_modes: Vec<u32>,
    },
    /// The peer's AUTH_SIGNATURE did not match what we sent: man in the middle or bug.
    #[error("peer's auth signature does not match")]
    BadSignature,
    /// The server reset or asked us to retry the session; the connection must be redone.
    #[error("session reset by peer: {0}")]
    SessionReset(String),
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}

impl Error {
    pub(crate) fn protocol(s: impl Into<String>) -> Self {
        Error::Protocol(s.into())
    }
}
