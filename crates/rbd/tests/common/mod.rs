//! Shared helpers for the cluster-backed tests: connect, a throwaway pool per test,
//! and librbd oracles (`rbd` CLI, Debian's python3 with `import rbd`).
//!
//! The cluster comes from `scripts/test-cluster start` (its `env` file) or the
//! CEPH_CONF / CEPH_KEYRING variables. Without a cluster the tests fail, never skip.

#![allow(dead_code)]

use ceph_rados::{CommonArgs, Rados};
use ceph_rbd::Rbd;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

#[path = "../../../rados/tests/common/oracle.rs"]
mod oracle;
#[allow(unused_imports)]
pub use oracle::{oracle, release};
/// The fsx model run (fsx.rs, and thrash.rs under the thrasher).
pub mod fsx_model;
/// The fault injector of the thrashing runs (issue 10), shared with the rados tests.
#[path = "../../../rados/tests/common/thrasher.rs"]
pub mod thrasher;

pub struct Env {
    pub conf: String,
    pub keyring: String,
}

pub fn env() -> Env {
    let from_vars = || {
        Some(Env {
            conf: std::env::var("CEPH_CONF").ok()?,
            keyring: std::env::var("CEPH_KEYRING").ok()?,
        })
    };
    if let Some(e) = from_vars() {
        return e;
    }
    let dir = std::env::var("CEPH_TEST_CLUSTER").unwrap_or_else(|_| "/tmp/ceph-rs-cluster".into());
    let f = PathBuf::from(&dir).join("env");
    let text = std::fs::read_to_string(&f).unwrap_or_else(|_| {
        panic!(
            "no test cluster: set CEPH_CONF and CEPH_KEYRING, or run `scripts/test-cluster start` (looked for {})",
            f.display()
        )
    });
    let get = |k: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(&format!("export {k}="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| panic!("{} has no {k}", f.display()))
    };
    Env {
        conf: get("CEPH_CONF"),
        keyring: get("CEPH_KEYRING"),
    }
}

pub async fn connect() -> Rados {
    let e = env();
    let cfg = CommonArgs {
        conf: Some(e.conf.into()),
        keyring: Some(e.keyring.into()),
        ..Default::default()
    }
    .to_config()
    .expect("client config");
    tokio::time::timeout(std::time::Duration::from_secs(60), Rados::connect(cfg))
        .await
        .expect(
            "connecting to the test cluster timed out (is it running? scripts/test-cluster start)",
        )
        .expect("cannot connect to the test cluster (is it running? scripts/test-cluster start)")
}

static N: AtomicU32 = AtomicU32::new(0);

pub fn unique(prefix: &str) -> String {
    let mut r = [0u8; 4];
    getrandom::getrandom(&mut r).unwrap();
    format!(
        "{prefix}-{}-{}-{:08x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        u32::from_le_bytes(r)
    )
}

/// A pool for one test, initialised for RBD; removed by [`TestPool::cleanup`].
pub struct TestPool {
    pub name: String,
    pub rados: Rados,
    pub rbd: Rbd,
    done: bool,
}

impl Drop for TestPool {
    fn drop(&mut self) {
        // a failed test must not leave its pool behind on the shared cluster (unless
        // CEPH_TEST_KEEP_POOL asks to keep it for a post-mortem: scrub, object dumps)
        if !self.done && std::env::var_os("CEPH_TEST_KEEP_POOL").is_none() {
            let e = env();
            let _ = Command::new(oracle("ceph"))
                .args([
                    "--conf",
                    &e.conf,
                    "--keyring",
                    &e.keyring,
                    "osd",
                    "pool",
                    "rm",
                    &self.name,
                    &self.name,
                ])
                .arg("--yes-i-really-really-mean-it")
                .output();
        }
    }
}

impl TestPool {
    pub async fn new(rados: &Rados, tag: &str) -> TestPool {
        let name = unique(&format!("rbdt-{tag}"));
        rados
            .pool_create(&name, Some(8))
            .await
            .expect("pool create");
        let rbd = Rbd::open_pool(rados, &name).await.expect("ioctx");
        rbd.pool_init(false).await.expect("pool init");
        TestPool {
            name,
            rados: rados.clone(),
            rbd,
            done: false,
        }
    }

    pub async fn cleanup(mut self) {
        if self.rados.pool_delete(&self.name).await.is_ok() {
            self.done = true;
        }
    }
}

/// Run `rbd` against the test cluster; returns (success, stdout, stderr).
pub fn rbd_cli(args: &[&str]) -> (bool, String, String) {
    admin_cli("rbd", args)
}

/// `rbd` that must succeed; stdout.
pub fn rbd_ok(args: &[&str]) -> String {
    let (ok, out, err) = rbd_cli(args);
    assert!(ok, "rbd {args:?} failed: {err}");
    out
}

/// Run a Ceph CLI tool (`ceph`, `rados`, `rbd`) as client.admin against the test cluster, bounded
/// in time; returns (success, stdout, stderr).
pub fn admin_cli(tool: &str, args: &[&str]) -> (bool, String, String) {
    let e = env();
    let mut c = Command::new(oracle(tool));
    c.args(["--conf", &e.conf, "--keyring", &e.keyring])
        .args(args)
        .stdin(std::process::Stdio::null());
    let out = oracle::output_bounded(&mut c, oracle::command_limit());
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ceph` that must succeed; its stdout, trimmed.
pub fn ceph_ok(args: &[&str]) -> String {
    let (ok, out, err) = admin_cli("ceph", args);
    assert!(ok, "ceph {args:?} failed: {err}");
    out.trim().to_string()
}

/// A new cephx user `client.<unique(tag)>` with these caps, connected with its bare key
/// (as a Kubernetes Secret holds it: no keyring file). Returns the client and the name.
pub async fn connect_new_user(tag: &str, mon_cap: &str, osd_cap: &str) -> (Rados, String) {
    let user = unique(tag);
    let entity = format!("client.{user}");
    ceph_ok(&[
        "auth",
        "get-or-create",
        &entity,
        "mon",
        mon_cap,
        "osd",
        osd_cap,
    ]);
    let key = ceph_ok(&["auth", "print-key", &entity]);
    let cfg = CommonArgs {
        conf: Some(env().conf.into()),
        name: Some(ceph_encoding::EntityName::client(user.clone())),
        key: Some(key),
        ..Default::default()
    }
    .to_config()
    .expect("client config");
    let r = tokio::time::timeout(std::time::Duration::from_secs(60), Rados::connect(cfg))
        .await
        .expect("connect timed out")
        .unwrap_or_else(|e| panic!("connect as {entity}: {e}"));
    (r, user)
}

/// Run a python3 snippet (Debian's python with the rados/rbd bindings) with `cluster`
/// (a connected rados.Rados) and `pool` (the pool name) defined; returns stdout.
pub fn python(pool: &str, body: &str) -> String {
    let e = env();
    let script = format!(
        "import rados, rbd, sys, hashlib\ncluster = rados.Rados(conffile={conf:?}, conf={{'keyring': {key:?}}})\ncluster.connect()\nioctx = cluster.open_ioctx({pool:?})\n{body}\nioctx.close()\ncluster.shutdown()\n",
        conf = e.conf,
        key = e.keyring,
        pool = pool,
        body = body
    );
    let mut c = Command::new(oracle("python3"));
    c.arg("-c").arg(&script).stdin(std::process::Stdio::null());
    let out = oracle::output_bounded(&mut c, oracle::command_limit());
    assert!(
        out.status.success(),
        "python failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sha256(b: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `rbd export POOL/SPEC -` bytes.
pub fn rbd_export(pool: &str, spec: &str) -> Vec<u8> {
    let path = std::env::temp_dir().join(unique("export"));
    rbd_ok(&[
        "export",
        "--no-progress",
        &format!("{pool}/{spec}"),
        path.to_str().unwrap(),
    ]);
    let b = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    b
}

/// Deterministic pseudo-random bytes (xorshift), for reproducible data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

pub fn seed() -> u64 {
    let mut r = [0u8; 8];
    getrandom::getrandom(&mut r).unwrap();
    u64::from_le_bytes(r) | 1
}

/// What `rbd object-map check` found.
#[derive(Debug, PartialEq, Eq)]
pub enum MapCheck {
    /// The map matches the objects.
    Exact,
    /// Only objects marked EXISTS (1) that the checker wants EXISTS_CLEAN (3): the map says
    /// "changed since the previous snapshot" where RADOS made no clone. librbd writes such
    /// maps itself: a write_zeroes/discard that the OSD turns into a no-op (zeroing past an
    /// object's end) still pre-marks the object EXISTS, and nothing can tell afterwards
    /// (test `zeroing_zeros_between_snapshots_keeps_the_map` runs librbd through the same
    /// ops). The error direction is safe: fast-diff reports a change that did not happen,
    /// never misses one. The checker has flagged the map invalid by now.
    Conservative(usize),
}

/// Run librbd's `rbd object-map check POOL/SPEC`; any mismatch other than the
/// conservative kind is an `Err` with the checker's output.
pub fn object_map_check(pool: &str, spec: &str) -> Result<MapCheck, String> {
    let (ok, out, err) = rbd_cli(&["object-map", "check", &format!("{pool}/{spec}")]);
    let all = format!("{out}{err}");
    if !ok {
        return Err(all);
    }
    let errors: Vec<&str> = all
        .lines()
        .filter(|l| l.contains("object map error"))
        .collect();
    if errors.is_empty() {
        return if all.contains("invalid") || all.contains("failed") {
            Err(all)
        } else {
            Ok(MapCheck::Exact)
        };
    }
    if errors
        .iter()
        .all(|l| l.ends_with("marked as 1, but should be 3"))
    {
        Ok(MapCheck::Conservative(errors.len()))
    } else {
        Err(all)
    }
}
