//! Shared helpers for integration tests against the throwaway cluster started by
//! `scripts/test-cluster` (see scripts/README-cluster.md). A missing cluster is a test
//! failure, never a skip.
#![allow(dead_code)]

use ceph_rados::{ClientConfig, CommonArgs, Rados};
use std::path::PathBuf;
use std::process::Command;

mod oracle;
#[allow(unused_imports)]
pub use oracle::{oracle, release};
/// The fault injector of the thrashing runs (issue 10).
pub mod thrasher;

/// The cluster directory.
pub fn cluster_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("CEPH_TEST_CLUSTER").unwrap_or_else(|_| "/tmp/ceph-rs-cluster".into()),
    )
}

/// Path of the cluster's ceph.conf; panics with instructions when there is none.
pub fn conf_path() -> PathBuf {
    let p = std::env::var("CEPH_CONF")
        .map(PathBuf::from)
        .unwrap_or_else(|_| cluster_dir().join("ceph.conf"));
    assert!(
        p.exists(),
        "no test cluster at {}: start one with `scripts/test-cluster start` or run `scripts/test-all`",
        p.display()
    );
    p
}

/// Admin keyring path.
pub fn admin_keyring() -> PathBuf {
    std::env::var("CEPH_KEYRING")
        .map(PathBuf::from)
        .unwrap_or_else(|_| cluster_dir().join("ceph.client.admin.keyring"))
}

/// Client config for client.admin.
pub fn admin_config() -> ClientConfig {
    CommonArgs {
        conf: Some(conf_path()),
        keyring: Some(admin_keyring()),
        ..Default::default()
    }
    .to_config()
    .expect("client config")
}

/// Connect as client.admin.
pub async fn admin() -> Rados {
    Rados::connect(admin_config())
        .await
        .expect("connect as client.admin")
}

/// Run a Ceph CLI tool (`ceph`, `rados`, `rbd`, of the cluster's release: [`oracle`])
/// against the cluster; returns stdout.
/// Panics with stderr if it fails.
pub fn tool(bin: &str, args: &[&str]) -> Vec<u8> {
    let out = tool_raw(bin, args);
    assert!(
        out.status.success(),
        "{bin} {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Run a Ceph CLI tool and return the whole output.
pub fn tool_raw(bin: &str, args: &[&str]) -> std::process::Output {
    let conf = conf_path();
    let mut c = Command::new(oracle(bin));
    c.arg("-c")
        .arg(&conf)
        .args(args)
        .env_remove("CEPH_ARGS")
        .stdin(std::process::Stdio::null());
    // a hang fails the test with a diagnosis instead of holding the suite
    oracle::output_bounded(&mut c, oracle::command_limit())
}

/// A name unique to this test process and call site.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A test pool, deleted when dropped (also when the test panics), so failing tests do
/// not fill the small test cluster.
pub struct Pool(pub String);

impl std::ops::Deref for Pool {
    type Target = String;
    fn deref(&self) -> &String {
        &self.0
    }
}

impl std::fmt::Display for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        drop_pool(&self.0);
    }
}

/// Create a pool with `pg_num` PGs via the ceph CLI.
pub fn make_pool(prefix: &str, pg_num: u32) -> Pool {
    let name = unique(prefix);
    tool(
        "ceph",
        &[
            "osd",
            "pool",
            "create",
            &name,
            &pg_num.to_string(),
            &pg_num.to_string(),
        ],
    );
    Pool(name)
}

/// Delete a pool via the ceph CLI.
pub fn drop_pool(name: &str) {
    let _ = tool_raw(
        "ceph",
        &[
            "osd",
            "pool",
            "delete",
            name,
            name,
            "--yes-i-really-really-mean-it",
        ],
    );
}
