use thiserror::Error;

/// Bytes that do not decode as the type they claim to be.
///
/// Carries the name of what was being decoded so a log line points at the culprit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("{what}: truncated: needed {needed} more bytes, {available} available")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A versioned struct whose compat version is newer than this decoder understands.
    #[error("{what}: encoding compat version {compat} is newer than supported {supported}")]
    IncompatibleVersion {
        /// Type name.
        what: &'static str,
        /// The compat byte found.
        compat: u8,
        /// The newest version this decoder knows.
        supported: u8,
    },
    /// A field holds a value the type does not allow.
    #[error("{what}: invalid value: {detail}")]
    Invalid {
        /// Type or field name.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// Bytes were left over after a value that should have used them all.
    #[error("{what}: {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// Type name.
        what: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
}

impl DecodeError {
    /// Shorthand for [`DecodeError::Invalid`].
    pub fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        DecodeError::Invalid {
            what,
            detail: detail.into(),
        }
    }
}
