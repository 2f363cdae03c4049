//! Test support shared by this crate's integration tests (and reusable elsewhere: both
//! files are self-contained and marked as shared).

pub mod msgr2;
pub mod pcap;

use std::path::PathBuf;

/// `../shared` relative to the project root, or `$CEPH_SHARED_DIR`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("CEPH_SHARED_DIR") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")),
    }
}
