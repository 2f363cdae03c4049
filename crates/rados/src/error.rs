//! The one error type of the RADOS layer.

use ceph_encoding::DecodeError;
use std::fmt;
use thiserror::Error;

/// A Linux errno as Ceph puts it on the wire (negative in replies, positive here).
/// Open newtype: unknown values print as a number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    #![allow(missing_docs)]
    pub const EPERM: Errno = Errno(1);
    pub const ENOENT: Errno = Errno(2);
    pub const EIO: Errno = Errno(5);
    pub const ENXIO: Errno = Errno(6);
    pub const E2BIG: Errno = Errno(7);
    pub const EAGAIN: Errno = Errno(11);
    pub const ENOMEM: Errno = Errno(12);
    pub const EACCES: Errno = Errno(13);
    pub const EBUSY: Errno = Errno(16);
    pub const EEXIST: Errno = Errno(17);
    pub const EXDEV: Errno = Errno(18);
    pub const ENODEV: Errno = Errno(19);
    pub const EINVAL: Errno = Errno(22);
    pub const EFBIG: Errno = Errno(27);
    pub const ENOSPC: Errno = Errno(28);
    pub const EROFS: Errno = Errno(30);
    pub const EDOM: Errno = Errno(33);
    pub const ELOOP: Errno = Errno(40);
    pub const ERANGE: Errno = Errno(34);
    pub const EDEADLK: Errno = Errno(35);
    pub const ENAMETOOLONG: Errno = Errno(36);
    pub const ENOSYS: Errno = Errno(38);
    pub const ENOTEMPTY: Errno = Errno(39);
    pub const ENODATA: Errno = Errno(61);
    pub const ETIME: Errno = Errno(62);
    pub const EOVERFLOW: Errno = Errno(75);
    pub const EBADMSG: Errno = Errno(74);
    pub const EOLDSNAPC: Errno = Errno(85);
    pub const EOPNOTSUPP: Errno = Errno(95);
    pub const ENOTCONN: Errno = Errno(107);
    pub const EBLOCKLISTED: Errno = Errno(108);
    pub const ETIMEDOUT: Errno = Errno(110);
    pub const ECONNREFUSED: Errno = Errno(111);
    pub const ECANCELED: Errno = Errno(125);
    pub const EDQUOT: Errno = Errno(122);
    pub const ESTALE: Errno = Errno(116);

    /// From a wire result that may be negative.
    pub fn from_result(r: i32) -> Errno {
        Errno(r.unsigned_abs() as i32)
    }

    /// The symbolic name, if known.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::EPERM => "EPERM",
            Self::ENOENT => "ENOENT",
            Self::EIO => "EIO",
            Self::ENXIO => "ENXIO",
            Self::E2BIG => "E2BIG",
            Self::EAGAIN => "EAGAIN",
            Self::ENOMEM => "ENOMEM",
            Self::EACCES => "EACCES",
            Self::EBUSY => "EBUSY",
            Self::EEXIST => "EEXIST",
            Self::EXDEV => "EXDEV",
            Self::ENODEV => "ENODEV",
            Self::EINVAL => "EINVAL",
            Self::EFBIG => "EFBIG",
            Self::ENOSPC => "ENOSPC",
            Self::EROFS => "EROFS",
            Self::EDOM => "EDOM",
            Self::ELOOP => "ELOOP",
            Self::ERANGE => "ERANGE",
            Self::EDEADLK => "EDEADLK",
            Self::ENAMETOOLONG => "ENAMETOOLONG",
            Self::ENOSYS => "ENOSYS",
            Self::ENOTEMPTY => "ENOTEMPTY",
            Self::ENODATA => "ENODATA",
            Self::ETIME => "ETIME",
            Self::EOVERFLOW => "EOVERFLOW",
            Self::EBADMSG => "EBADMSG",
            Self::EOLDSNAPC => "EOLDSNAPC",
            Self::EOPNOTSUPP => "EOPNOTSUPP",
            Self::ENOTCONN => "ENOTCONN",
            Self::EBLOCKLISTED => "EBLOCKLISTED",
            Self::ETIMEDOUT => "ETIMEDOUT",
            Self::ECONNREFUSED => "ECONNREFUSED",
            Self::ECANCELED => "ECANCELED",
            Self::EDQUOT => "EDQUOT",
            Self::ESTALE => "ESTALE",
            _ => return None,
        })
    }

    /// The C library's description of the errno, as `rados`/`rbd` print it.
    pub fn description(self) -> &'static str {
        match self {
            Self::EPERM => "Operation not permitted",
            Self::ENOENT => "No such file or directory",
            Self::EIO => "Input/output error",
            Self::EAGAIN => "Resource temporarily unavailable",
            Self::EACCES => "Permission denied",
            Self::EBUSY => "Device or resource busy",
            Self::EEXIST => "File exists",
            Self::EINVAL => "Invalid argument",
            Self::EFBIG => "File too large",
            Self::ELOOP => "Too many levels of symbolic links",
            Self::ENOSPC => "No space left on device",
            Self::EROFS => "Read-only file system",
            Self::ERANGE => "Numerical result out of range",
            Self::ENAMETOOLONG => "File name too long",
            Self::ENOSYS => "Function not implemented",
            Self::ENOTEMPTY => "Directory not empty",
            Self::ENODATA => "No data available",
            Self::EOPNOTSUPP => "Operation not supported",
            Self::ETIMEDOUT => "Connection timed out",
            Self::ECONNREFUSED => "Connection refused",
            Self::ECANCELED => "Operation canceled",
            Self::EDQUOT => "Disk quota exceeded",
            Self::ESTALE => "Stale file handle",
            Self::ENOTCONN => "Transport endpoint is not connected",
            Self::EBLOCKLISTED => "Cannot send after transport endpoint shutdown",
            Self::EXDEV => "Invalid cross-device link",
            Self::EOVERFLOW => "Value too large for defined data type",
            _ => "Unknown error",
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "errno {}", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.description(), self)
    }
}

/// Errors of the RADOS client, classified by who is at fault.
#[derive(Debug, Error)]
pub enum Error {
    /// A server (monitor or OSD) answered with an errno.
    #[error("{context}: {errno}")]
    Server {
        /// What was being done.
        context: String,
        /// The errno.
        errno: Errno,
    },
    /// Authentication failed (wrong key, unknown user, cephx refused).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// No monitor could be reached or authenticated within the timeout.
    #[error("could not connect to any monitor ({tried}) within {timeout_secs}s: {last_error}")]
    NoMonitor {
        /// The addresses tried.
        tried: String,
        /// Timeout used.
        timeout_secs: u64,
        /// The last failure seen.
        last_error: String,
    },
    /// An operation did not complete in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Configuration problem (ceph.conf, keyring, arguments).
    #[error("configuration: {0}")]
    Config(String),
    /// The wire protocol failed.
    #[error("messenger: {0}")]
    Msgr(#[from] ceph_msgr2::Error),
    /// Bytes from the network did not decode.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// cephx key or ticket problem.
    #[error("cephx: {0}")]
    Cephx(#[from] ceph_cephx::CephxError),
    /// Socket error.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The caller asked for something invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The client was shut down.
    #[error("client is shut down")]
    Shutdown,
}

impl Error {
    /// A server errno error.
    pub fn server(context: impl Into<String>, errno: Errno) -> Self {
        Error::Server {
            context: context.into(),
            errno,
        }
    }

    /// The errno this error corresponds to, as the `rados` tool would exit with.
    pub fn errno(&self) -> Errno {
        match self {
            Error::Server { errno, .. } => *errno,
            Error::Auth(_) => Errno::EACCES,
            Error::NoMonitor { .. } | Error::Timeout(_) => Errno::ETIMEDOUT,
            Error::Config(_) | Error::InvalidArgument(_) => Errno::EINVAL,
            Error::Cephx(e) => e.errno().map(|n| Errno(n.0)).unwrap_or(Errno::EACCES),
            Error::Io(e) => Errno(e.raw_os_error().unwrap_or(Errno::EIO.0)),
            Error::Msgr(_) | Error::Decode(_) => Errno::EIO,
            Error::Shutdown => Errno::ENOTCONN,
        }
    }

    /// True for ENOENT.
    pub fn is_not_found(&self) -> bool {
        self.errno() == Errno::ENOENT
    }

    /// True when the cluster blocklisted this client (EBLOCKLISTED, 108): every later
    /// request fails too; the client must be recreated (librbd then drops its locks).
    pub fn is_blocklisted(&self) -> bool {
        self.errno() == Errno::EBLOCKLISTED
    }

    /// True for ETIMEDOUT (a request cancelled by its timeout).
    pub fn is_timeout(&self) -> bool {
        self.errno() == Errno::ETIMEDOUT
    }

    /// True for EEXIST.
    pub fn is_exists(&self) -> bool {
        self.errno() == Errno::EEXIST
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
