//! msgr2.1, Ceph's wire protocol: frames in crc and secure (AES-128-GCM) mode and the
//! client-side session handshake, as a sans-IO state machine.
//!
//! What it is: bytes in, frames and events out. What it is not: no sockets, no tokio, no
//! clock and no randomness — the driver (in `ceph-rados`) owns the TCP stream and timers
//! and passes cookies and nonces in. Frame sizes are bounded by [`FrameLimits`].

#![warn(missing_docs)]

mod connection;
mod error;
pub mod frame;
mod gcm;
mod message;

pub use connection::{
    auth_method, AuthClient, AuthKeys, ConMode, Connection, ConnectionConfig, Event, ServerIdent,
    MSGR2_FEATURE_REVISION_1,
};
pub use error::Error;
pub use frame::{Frame, FrameLimits, FrameReader, FrameWriter, Tag};
pub use message::{DataSegment, Message, MsgHeader, MsgType, HEADER2_LEN};
