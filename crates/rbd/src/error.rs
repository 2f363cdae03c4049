//! The one error type of the RBD layer.

use ceph_encoding::DecodeError;
use ceph_rados::Errno;
use thiserror::Error;

/// `EILSEQ`: what librbd returns for a compare-and-write mismatch.
pub const EILSEQ: Errno = Errno(84);
/// `ECHILD`: a snapshot still has clones (librbd's pre-remove code).
pub const ECHILD: Errno = Errno(10);
/// `EMLINK`: the image is in a group.
pub const EMLINK: Errno = Errno(31);
/// `EBADF`: image id already in use (librbd create).
pub const EBADF: Errno = Errno(9);

/// Errors of the RBD client, classified by who is at fault.
#[derive(Debug, Error)]
pub enum RbdError {
    /// The RADOS layer failed, or an OSD/monitor answered with an errno.
    #[error(transparent)]
    Rados(#[from] ceph_rados::Error),
    /// Bytes from the cluster (a cls reply, a header key, a diff stream) did not decode.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// The operation is refused with an errno, as librbd would refuse it (image busy,
    /// has snapshots, name exists, ...).
    #[error("{context}: {errno}")]
    Refused {
        /// What was refused and why.
        context: String,
        /// The errno librbd returns in the same situation.
        errno: Errno,
    },
    /// The caller passed something invalid (bad name, size, order, feature...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The image uses features this client does not implement.
    #[error("image {image} uses features this client does not implement{}: {names}", if *.write { " for writing" } else { "" })]
    UnsupportedFeatures {
        /// Image name or id.
        image: String,
        /// The feature bits that are not implemented.
        mask: u64,
        /// Their names (comma separated; unknown bits as hex).
        names: String,
        /// True if the refusal is only for writing (read-only open would work).
        write: bool,
    },
    /// Compare-and-write found different data.
    #[error("compare-and-write mismatch at byte {offset} of the compared range")]
    CompareMismatch {
        /// Offset of the first differing byte, relative to the start of the compare buffer.
        offset: u64,
    },
    /// The image was opened read-only (or at a snapshot) and a write was attempted.
    #[error("image is read-only")]
    ReadOnly,
    /// A stream (export-diff) is malformed, or I/O on it failed.
    #[error("diff stream: {0}")]
    Stream(String),
}

impl RbdError {
    /// A refusal with an errno.
    pub fn refused(context: impl Into<String>, errno: Errno) -> Self {
        RbdError::Refused {
            context: context.into(),
            errno,
        }
    }

    /// ENOENT refusal.
    pub fn not_found(context: impl Into<String>) -> Self {
        Self::refused(context, Errno::ENOENT)
    }

    /// EEXIST refusal.
    pub fn exists(context: impl Into<String>) -> Self {
        Self::refused(context, Errno::EEXIST)
    }

    /// EBUSY refusal.
    pub fn busy(context: impl Into<String>) -> Self {
        Self::refused(context, Errno::EBUSY)
    }

    /// The errno this error corresponds to (what librbd would return, positive).
    pub fn errno(&self) -> Errno {
        match self {
            RbdError::Rados(e) => e.errno(),
            RbdError::Decode(_) => Errno::EBADMSG,
            RbdError::Refused { errno, .. } => *errno,
            RbdError::InvalidArgument(_) => Errno::EINVAL,
            RbdError::UnsupportedFeatures { .. } => Errno::ENOSYS,
            RbdError::CompareMismatch { .. } => EILSEQ,
            RbdError::ReadOnly => Errno::EROFS,
            RbdError::Stream(_) => Errno::EIO,
        }
    }

    /// True for ENOENT.
    pub fn is_not_found(&self) -> bool {
        self.errno() == Errno::ENOENT
    }

    /// True for EEXIST.
    pub fn is_exists(&self) -> bool {
        self.errno() == Errno::EEXIST
    }
}

/// Result alias.
pub type Result<T, E = RbdError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos() {
        assert_eq!(RbdError::busy("x").errno(), Errno::EBUSY);
        assert_eq!(RbdError::CompareMismatch { offset: 3 }.errno().0, 84);
        assert_eq!(RbdError::InvalidArgument("n".into()).errno(), Errno::EINVAL);
        let e = RbdError::UnsupportedFeatures {
            image: "i".into(),
            mask: 4,
            names: "exclusive-lock".into(),
            write: true,
        };
        assert!(e.to_string().contains("exclusive-lock"));
        assert!(e.to_string().contains("for writing"));
        assert_eq!(e.errno(), Errno::ENOSYS);
    }
}
