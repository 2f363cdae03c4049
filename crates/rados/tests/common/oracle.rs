//! Which Ceph tool is the oracle: the one of the running test cluster's release.
//!
//! `scripts/test-cluster start --release pacific|reef` writes wrappers into `DIR/bin`
//! (`rbd`, `rados`, `ceph`, `crushtool`, `osdmaptool`, `ceph-authtool`, `python3`, …) and
//! exports `CEPH_TEST_BIN=DIR/bin`: for pacific they exec the host's 16.2 tools, for reef
//! they run the 18.2 tools inside the cached trixie root. The same test files thus run
//! against both releases. Shared by the test crates through `#[path]`, so it is one file.

#![allow(dead_code)]

use std::path::PathBuf;

/// Path of the Ceph program `bin` (`"rbd"`, `"python3"` for the one with the rados/rbd
/// bindings, …) of the test cluster's release: `$CEPH_TEST_BIN/<bin>`, else the cluster
/// directory's `bin/<bin>`, else the host's `/usr/bin/<bin>` (Debian 12: pacific).
pub fn oracle(bin: &str) -> PathBuf {
    if let Some(d) = std::env::var_os("CEPH_TEST_BIN").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join(bin);
    }
    let dir = std::env::var_os("CEPH_TEST_CLUSTER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/ceph-rs-cluster"));
    let p = dir.join("bin").join(bin);
    if p.exists() {
        return p;
    }
    PathBuf::from("/usr/bin").join(bin)
}

/// The test cluster's release (`CEPH_TEST_RELEASE`: `pacific` or `reef`), for the few
/// assertions whose expected value is release specific.
pub fn release() -> String {
    std::env::var("CEPH_TEST_RELEASE").unwrap_or_else(|_| "pacific".into())
}
