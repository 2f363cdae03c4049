//! Ceph's wire encoding ("denc") and the vocabulary shared by every layer of the stack.
//!
//! What this crate is: little-endian integers, Ceph strings and bufferlists, containers,
//! the `ENCODE_START` versioned-struct envelope, and the handful of types that every layer
//! speaks (time stamps, entity names, addresses, the cluster fsid, feature bits, crc32c).
//!
//! What it is not: no networking, no clock, no allocation driven by an unchecked length
//! from the wire. Every decoder works on a bounded [`Decoder`] cursor and returns a
//! [`DecodeError`] instead of panicking, whatever the bytes.
//!
//! Wire rules follow `ceph: src/include/encoding.h` and `src/include/denc.h`.

#![warn(missing_docs)]

mod crc;
mod decode;
mod encode;
mod error;
pub mod features;
mod types;

pub use crc::ceph_crc32c;
pub use decode::{Decode, Decoder};
pub use encode::{encode_vec, Encode, EncodeExt, VersionedGuard};
pub use error::DecodeError;
pub use types::{
    EntityAddr, EntityAddrType, EntityAddrVec, EntityName, EntityNameT, EntityType, UTime, Uuid,
};

/// Result alias for decoding.
pub type Result<T, E = DecodeError> = std::result::Result<T, E>;

/// Decode a whole value from a byte slice, ignoring nothing: trailing bytes are an error.
pub fn decode_exact<T: Decode>(bytes: &[u8]) -> Result<T> {
    let mut d = Decoder::new(bytes);
    let v = T::decode(&mut d)?;
    d.finish(std::any::type_name::<T>())?;
    Ok(v)
}

/// Encode a value into a fresh `Vec<u8>`.
pub fn encode_to_vec<T: Encode + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode(&mut out);
    out
}
