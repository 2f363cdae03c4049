use ceph_encoding::{DecodeError, EntityName, EntityType};
use std::fmt;
use std::path::PathBuf;
use thiserror::Error;

/// A POSIX errno as Ceph sends it (positive; the wire carries the negated value).
///
/// Open newtype: unknown numbers survive and print as `errno N`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// Operation not permitted (cephx: bad proof, undecodable request).
    pub const EPERM: Errno = Errno(1);
    /// No such entity.
    pub const ENOENT: Errno = Errno(2);
    /// I/O error (mon not ready; retry).
    pub const EIO: Errno = Errno(5);
    /// Try again.
    pub const EAGAIN: Errno = Errno(11);
    /// Permission denied (no mon caps, bad global_id reclaim).
    pub const EACCES: Errno = Errno(13);
    /// Device or resource busy (no global_id available).
    pub const EBUSY: Errno = Errno(16);
    /// Invalid argument.
    pub const EINVAL: Errno = Errno(22);
    /// Operation not supported.
    pub const EOPNOTSUPP: Errno = Errno(95);

    /// From a Ceph status / result code (negative errno); `None` for success (>= 0).
    pub fn from_status(status: i32) -> Option<Errno> {
        (status < 0).then(|| Errno(status.saturating_neg()))
    }

    /// The symbolic name, if this is one of the named constants.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::EPERM => "EPERM",
            Self::ENOENT => "ENOENT",
            Self::EIO => "EIO",
            Self::EAGAIN => "EAGAIN",
            Self::EACCES => "EACCES",
            Self::EBUSY => "EBUSY",
            Self::EINVAL => "EINVAL",
            Self::EOPNOTSUPP => "EOPNOTSUPP",
            _ => return None,
        })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "errno {}", self.0),
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Everything that can go wrong in this crate, classified by who is at fault.
///
/// * bad key material (the caller's key, keyring or key file): [`BadBase64`],
///   [`BadKeyLength`], [`UnknownCryptoType`], [`KeyFile`], [`Keyring`],
///   [`EntityNotInKeyring`];
/// * a ciphertext that does not open with the key we hold — almost always a wrong key:
///   [`Decrypt`], [`BadMagic`] (see [`CephxError::is_wrong_key`]);
/// * the server said no: [`Server`] (see [`CephxError::errno`]);
/// * the peer sent bytes that do not parse or do not make sense: [`Decode`], [`Protocol`],
///   [`NonceMismatch`];
/// * caller misuse / missing state: [`MissingTicket`], [`NoServerChallenge`].
///
/// [`BadBase64`]: CephxError::BadBase64
/// [`BadKeyLength`]: CephxError::BadKeyLength
/// [`UnknownCryptoType`]: CephxError::UnknownCryptoType
/// [`KeyFile`]: CephxError::KeyFile
/// [`Keyring`]: CephxError::Keyring
/// [`EntityNotInKeyring`]: CephxError::EntityNotInKeyring
/// [`Decrypt`]: CephxError::Decrypt
/// [`BadMagic`]: CephxError::BadMagic
/// [`Server`]: CephxError::Server
/// [`Decode`]: CephxError::Decode
/// [`Protocol`]: CephxError::Protocol
/// [`NonceMismatch`]: CephxError::NonceMismatch
/// [`MissingTicket`]: CephxError::MissingTicket
/// [`NoServerChallenge`]: CephxError::NoServerChallenge
#[derive(Debug, Error)]
pub enum CephxError {
    /// Key text is not valid base64.
    #[error("bad key material: invalid base64: {0}")]
    BadBase64(#[from] base64::DecodeError),
    /// Key bytes have the wrong length.
    #[error("bad key material: {what} is {found} bytes, expected {expected}")]
    BadKeyLength {
        /// Which length was wrong ("encoded CryptoKey", "AES secret").
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Length found.
        found: usize,
    },
    /// The key's crypto type is neither AES (1) nor, where allowed, NONE (0).
    #[error("bad key material: unknown crypto type {0} (only AES = 1 is supported)")]
    UnknownCryptoType(u16),
    /// A key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A keyring's text is malformed.
    #[error("keyring line {line}: {detail}")]
    Keyring {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// The keyring holds no key for this entity.
    #[error("entity {0} not found in keyring")]
    EntityNotInKeyring(EntityName),
    /// AES-CBC decryption failed (length not a block multiple or bad padding).
    #[error("cannot decrypt {what}: bad ciphertext or padding (wrong key?)")]
    Decrypt {
        /// What was being decrypted.
        what: &'static str,
    },
    /// Decryption "worked" but the envelope version/magic is wrong.
    #[error("cannot decrypt {what}: bad envelope magic (wrong key?)")]
    BadMagic {
        /// What was being decrypted.
        what: &'static str,
    },
    /// The server refused: a negative status in a cephx response header.
    #[error("server refused authentication: {errno}")]
    Server {
        /// The errno (positive).
        errno: Errno,
    },
    /// Bytes from the peer that do not decode as the type they claim to be.
    #[error("malformed cephx message: {0}")]
    Decode(#[from] DecodeError),
    /// A well-formed message that makes no sense here.
    #[error("cephx protocol error: {0}")]
    Protocol(String),
    /// The authorizer reply does not prove the peer knows the session key.
    #[error("authorizer reply nonce mismatch: expected {expected:#x}, got {got:#x}")]
    NonceMismatch {
        /// nonce + 1.
        expected: u64,
        /// What the peer sent.
        got: u64,
    },
    /// No ticket for this service (not granted, or not yet authenticated).
    #[error("no cephx ticket for service {0:?}")]
    MissingTicket(EntityType),
    /// A request needs the mon's server challenge, but none was received on this session.
    #[error("no server challenge received yet on this mon session")]
    NoServerChallenge,
}

impl CephxError {
    /// The server's errno, if the server refused.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            CephxError::Server { errno } => Some(*errno),
            _ => None,
        }
    }

    /// True when a ciphertext addressed to us did not open: the key we hold is not the one the
    /// server used (a wrong key in the keyring, or a stale session key).
    pub fn is_wrong_key(&self) -> bool {
        matches!(
            self,
            CephxError::Decrypt { .. } | CephxError::BadMagic { .. }
        )
    }

    /// True for "you may not": a wrong key, or the server answering EPERM / EACCES.
    pub fn is_permission_denied(&self) -> bool {
        self.is_wrong_key() || matches!(self.errno(), Some(Errno::EPERM) | Some(Errno::EACCES))
    }

    /// True when the caller's key material itself is unusable.
    pub fn is_bad_key_material(&self) -> bool {
        matches!(
            self,
            CephxError::BadBase64(_)
                | CephxError::BadKeyLength { .. }
                | CephxError::UnknownCryptoType(_)
                | CephxError::KeyFile { .. }
                | CephxError::Keyring { .. }
                | CephxError::EntityNotInKeyring(_)
        )
    }
}

/// Result alias for this crate.
pub type Result<T, E = CephxError> = std::result::Result<T, E>;
