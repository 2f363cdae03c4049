//! Ceph connection feature bits (`ceph: src/include/ceph_features.h`).
//!
//! Only the bits the client reasons about are named; the advertised mask is what a
//! Pacific 16.2.15 librados client advertises (seen live with `ceph features`), so that
//! monitors and OSDs send us their newest encodings and nothing older needs decoding.

/// Everything a 16.2.15 librados client advertises.
pub const CEPH_FEATURES_ALL: u64 = 0x3f01_cfbd_fffd_ffff;

/// `MSG_ADDR2`: new-style entity addresses.
pub const MSG_ADDR2: u64 = 1 << 59;
/// `SERVER_NAUTILUS`: Nautilus+ encodings.
pub const SERVER_NAUTILUS: u64 = 1 << 2;
/// `SERVER_LUMINOUS` group: MOSDOp v8, backoffs, upmap.
pub const SERVER_LUMINOUS: u64 = 1 << 21;
/// `NEW_OSDOPREPLY_ENCODING`.
pub const NEW_OSDOPREPLY_ENCODING: u64 = 1 << 58;
/// `CEPHX_V2`: authorizer challenge.
pub const CEPHX_V2: u64 = 1 << 61;
/// `MON_STATEFUL_SUB`.
pub const MON_STATEFUL_SUB: u64 = 1 << 57;
