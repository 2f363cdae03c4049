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

/// How long one command a test runs may take: `CEPH_TEST_CMD_TIMEOUT` seconds, else 300
/// (the slowest single command of the suites takes well under a minute).
pub fn command_limit() -> std::time::Duration {
    let secs = std::env::var("CEPH_TEST_CMD_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    std::time::Duration::from_secs(secs)
}

/// `c.output()` with a deadline. A command still running after `limit` is killed and the
/// test panics with what the command had printed and the cluster's state then. A hung
/// command thus fails its one test with a diagnosis, where before it held the whole
/// suite until CI's timeout, which says nothing about what hung or why.
///
/// Stdin is whatever `c` says (spawn inherits it; callers set `Stdio::null()` where
/// `output()` would have).
#[track_caller]
pub fn output_bounded(
    c: &mut std::process::Command,
    limit: std::time::Duration,
) -> std::process::Output {
    let what = format!("{c:?}");
    match try_output_bounded(c, limit) {
        Ok(o) => o,
        Err(Hung(partial)) => panic!("{}", hang_message(&what, limit, &partial, "")),
    }
}

/// What a test says of a command it killed at its deadline: the command, what it had
/// printed, `extra` (e.g. a debug rerun's log) and the cluster's state.
pub fn hang_message(
    what: &str,
    limit: std::time::Duration,
    partial: &std::process::Output,
    extra: &str,
) -> String {
    format!(
        "{what} hung for {limit:?}, killed\n--- its stdout:\n{}\n--- its stderr:\n{}\n{extra}{}",
        String::from_utf8_lossy(&partial.stdout),
        String::from_utf8_lossy(&partial.stderr),
        cluster_report()
    )
}

/// The output of a command killed at its deadline.
pub struct Hung(pub std::process::Output);

/// [`output_bounded`] without the panic.
pub fn try_output_bounded(
    c: &mut std::process::Command,
    limit: std::time::Duration,
) -> Result<std::process::Output, Hung> {
    use std::process::Stdio;
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let wait = |rx: &std::sync::mpsc::Receiver<std::io::Result<std::process::Output>>, t| {
        rx.recv_timeout(t)
            .ok()
            .map(|r| r.unwrap_or_else(|e| panic!("waiting for a command: {e}")))
    };
    if let Some(o) = wait(&rx, limit) {
        return Ok(o);
    }
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    // the reader thread ends once the killed child's pipes close (a grandchild holding
    // them open is not waited for)
    let partial =
        wait(&rx, std::time::Duration::from_secs(10)).unwrap_or_else(|| std::process::Output {
            status: std::os::unix::process::ExitStatusExt::from_raw(9),
            stdout: Vec::new(),
            stderr: Vec::new(),
        });
    Err(Hung(partial))
}

/// The cluster's state as `ceph` reports it (each command bounded), for the message of a
/// test that hung.
pub fn cluster_report() -> String {
    let dir = std::env::var("CEPH_TEST_CLUSTER").unwrap_or_else(|_| "/tmp/ceph-rs-cluster".into());
    let conf = std::env::var("CEPH_CONF").unwrap_or_else(|_| format!("{dir}/ceph.conf"));
    let keyring = std::env::var("CEPH_KEYRING")
        .unwrap_or_else(|_| format!("{dir}/ceph.client.admin.keyring"));
    let mut out = String::from("--- the cluster at that moment:\n");
    if let Ok(o) = std::process::Command::new("df").args(["-h", &dir]).output() {
        out += &format!("$ df -h {dir}\n{}", String::from_utf8_lossy(&o.stdout));
    }
    for args in [
        &["-s"][..],
        &["health", "detail"],
        &["osd", "pool", "ls", "detail"],
        &["pg", "dump_stuck"],
        &["osd", "blocklist", "ls"],
    ] {
        let mut c = std::process::Command::new(oracle("ceph"));
        c.args([
            "--conf",
            &conf,
            "--keyring",
            &keyring,
            "--connect-timeout",
            "15",
        ])
        .args(args)
        .stdin(std::process::Stdio::null());
        match try_output_bounded(&mut c, std::time::Duration::from_secs(30)) {
            Ok(o) => {
                out += &format!(
                    "$ ceph {}\n{}{}",
                    args.join(" "),
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            }
            Err(_) => out += &format!("$ ceph {}: no answer in 30 s\n", args.join(" ")),
        }
    }
    out
}
