//! The thrasher of issue 10: a background thread that injects cluster faults at random
//! intervals while a model test runs, through `scripts/test-cluster` and the `ceph` CLI of
//! the cluster's release. Shared by the rados and rbd test crates through `#[path]`.
//!
//! Faults: SIGKILL + restart of an OSD, SIGTERM + restart, SIGSTOP/SIGCONT (< 20 s, so the
//! OSD is never marked down for it), out + in, primary-affinity changes, pg-upmap-items,
//! pg_num doubling (PG split) of the test pools, SIGKILL + restart of a monitor.
//!
//! Why one fault at a time, and why it waits for `active+clean` before touching an OSD: the
//! test pools have size 3 and min_size 2 (set by [`Thrasher::start`]), so only one OSD may be
//! unavailable if every op is to complete; and memstore OSDs (the test cluster's) roll back
//! to their last graceful save on SIGKILL, so a second OSD dying before recovery finished
//! could lose the only up-to-date copy, which would be the cluster's loss, not our client's.
//! Monitor kills are independent of the OSDs (3 monitors, one down at a time keeps quorum).
//!
//! Every fault is logged with its wall-clock time (UNIX ms) and its offset from the start:
//! printed, and appended to `$CEPH_TEST_CLUSTER/log/thrash.log` (beside the daemons' logs,
//! so a hung op can be lined up with what the cluster was doing).

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// xorshift64: reproducible choices from a printed seed.
#[derive(Clone)]
pub struct XorShift(pub u64);

impl XorShift {
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
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
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

/// A random seed (odd, so xorshift never starts at 0).
pub fn random_seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    (t ^ ((std::process::id() as u64) << 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
}

/// `THRASH_SECS` (default `default`): how long the model test runs under the thrasher.
pub fn thrash_secs(default: u64) -> u64 {
    std::env::var("THRASH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// `THRASH_SEED` (hex) or a random one.
pub fn thrash_seed() -> u64 {
    std::env::var("THRASH_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(random_seed)
}

/// One injected fault.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Wall clock, ms since the UNIX epoch.
    pub unix_ms: u128,
    /// Seconds since the thrasher started.
    pub at: f64,
    pub kind: &'static str,
    pub detail: String,
}

/// What the thrasher did, returned by [`Thrasher::stop`].
pub struct ThrashReport {
    pub faults: Vec<Fault>,
    /// Faults per kind, in a fixed order.
    pub by_kind: Vec<(&'static str, usize)>,
    /// Seconds the cluster took to be active+clean again after the last fault.
    pub settle_secs: f64,
    /// Why the thrasher gave up, if it did (a daemon that would not restart, a cluster
    /// that never became clean). The test checks its data first and fails on this after.
    pub failed: Option<String>,
}

impl ThrashReport {
    /// Panic if the thrasher gave up (call after the data checks).
    pub fn fail_if_thrasher_failed(&self) {
        if let Some(e) = &self.failed {
            panic!("thrasher: {e}");
        }
    }

    pub fn summary(&self) -> String {
        let kinds: Vec<String> = self
            .by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        format!(
            "{} faults injected ({}); active+clean {:.1} s after the last",
            self.faults.len(),
            kinds.join(", "),
            self.settle_secs
        )
    }
}

pub const KINDS: [&str; 8] = [
    "osd-sigkill",
    "osd-sigterm",
    "osd-pause",
    "osd-out",
    "primary-affinity",
    "pg-upmap-items",
    "pg-split",
    "mon-kill",
];

/// `THRASH_KINDS` (comma list of [`KINDS`]; default all): the faults to inject, so a
/// hunt can tell which kind of fault a failure needs (e.g. everything but
/// `osd-sigkill`, whose memstore roll-back is a fault outside Ceph's own model).
fn kind_enabled(kind: &str) -> bool {
    match std::env::var("THRASH_KINDS") {
        Ok(v) if !v.trim().is_empty() => v.split(',').any(|k| k.trim() == kind),
        _ => true,
    }
}

/// Knobs; [`ThrashConfig::new`] gives the defaults.
#[derive(Clone)]
pub struct ThrashConfig {
    /// Pools to split and to remap PGs of (the test's pools).
    pub pools: Vec<String>,
    pub seed: u64,
    /// Pause between faults, seconds (uniform in the range).
    pub interval: (u64, u64),
    /// pg_num is doubled only up to this.
    pub max_pg_num: u32,
}

impl ThrashConfig {
    pub fn new(pools: Vec<String>, seed: u64) -> ThrashConfig {
        ThrashConfig {
            pools,
            seed,
            interval: (1, 6),
            max_pg_num: 64,
        }
    }
}

/// The running thrasher; [`Thrasher::stop`] ends it, undoes what is still in effect
/// (affinities, upmaps) and waits for the cluster to be healthy.
pub struct Thrasher {
    stop: Arc<AtomicBool>,
    faults: Arc<Mutex<Vec<Fault>>>,
    handle: Option<JoinHandle<Result<f64, String>>>,
}

fn cluster_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("CEPH_TEST_CLUSTER").unwrap_or_else(|_| "/tmp/ceph-rs-cluster".into()),
    )
}

fn conf() -> PathBuf {
    std::env::var("CEPH_CONF")
        .map(PathBuf::from)
        .unwrap_or_else(|_| cluster_dir().join("ceph.conf"))
}

/// State shared by the thread's steps.
struct Ctx {
    cfg: ThrashConfig,
    rng: XorShift,
    t0: Instant,
    stop: Arc<AtomicBool>,
    faults: Arc<Mutex<Vec<Fault>>>,
    log: Option<std::fs::File>,
    nosds: u32,
    nmons: u32,
    /// OSDs whose primary affinity we lowered.
    affinity: Vec<u32>,
    /// PGs we put an upmap on.
    upmaps: Vec<String>,
}

impl Ctx {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn note(&mut self, kind: &'static str, detail: String) {
        let f = Fault {
            unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
            at: self.t0.elapsed().as_secs_f64(),
            kind,
            detail,
        };
        let line = format!(
            "[thrash {:.3} unix_ms={}] {} {}",
            f.at, f.unix_ms, f.kind, f.detail
        );
        println!("{line}");
        if let Some(l) = self.log.as_mut() {
            let _ = writeln!(l, "{line}");
        }
        self.faults.lock().unwrap().push(f);
    }

    fn info(&mut self, msg: String) {
        let line = format!("[thrash {:.3}] {msg}", self.t0.elapsed().as_secs_f64());
        println!("{line}");
        if let Some(l) = self.log.as_mut() {
            let _ = writeln!(l, "{line}");
        }
    }

    /// Sleep, waking early when asked to stop (returns false then).
    fn sleep(&self, secs: f64) -> bool {
        let end = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < end {
            if self.stopping() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    }
}

/// `scripts/test-cluster CMD ARGS --dir DIR`.
fn cluster_cmd(args: &[&str]) -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/test-cluster");
    // restarts on a busy 2-core machine can take longer than the script's 60 s default
    let timeout = std::env::var("CEPH_TEST_CLUSTER_TIMEOUT").unwrap_or_else(|_| "180".into());
    let out = Command::new(script)
        .args(args)
        .arg("--dir")
        .arg(cluster_dir())
        .env("CEPH_TEST_CLUSTER_TIMEOUT", timeout)
        .output()
        .map_err(|e| format!("run scripts/test-cluster: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "test-cluster {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `ceph ARGS` (with a bound, since a monitor may just have been killed); retried, as
/// the CLI may pick the dead monitor first and give up.
fn ceph(args: &[&str]) -> Result<Vec<u8>, String> {
    let mut last = String::new();
    for _ in 0..5 {
        let out = Command::new("timeout")
            .arg("90")
            .arg(super::oracle::oracle("ceph"))
            .arg("-c")
            .arg(conf())
            .arg("--connect-timeout")
            .arg("30")
            .args(args)
            .env_remove("CEPH_ARGS")
            .output()
            .map_err(|e| format!("run ceph: {e}"))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(Duration::from_secs(2));
    }
    Err(format!("ceph {args:?} failed: {last}"))
}

fn ceph_json(args: &[&str]) -> Result<serde_json::Value, String> {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    let out = ceph(&a)?;
    serde_json::from_slice(&out).map_err(|e| format!("ceph {args:?}: bad json: {e}"))
}

/// All PGs active and clean. Extra flags are fine: RBD snapshot removal keeps PGs in
/// `active+clean+snaptrim(_wait)` for a while, and scrubs come and go; requiring the
/// exact string `active+clean` stalled the thrasher for minutes in the rbd run.
fn healthy() -> Result<bool, String> {
    let v = ceph_json(&["pg", "stat"])?;
    let s = &v["pg_summary"];
    let total = s["num_pgs"].as_u64().unwrap_or(0);
    let clean: u64 = s["num_pg_by_state"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| {
                    let st: Vec<&str> = e["name"].as_str().unwrap_or("").split('+').collect();
                    st.contains(&"active") && st.contains(&"clean")
                })
                .filter_map(|e| e["num"].as_u64())
                .sum()
        })
        .unwrap_or(0);
    Ok(total > 0 && clean == total)
}

fn wait_healthy(limit: Duration) -> Result<f64, String> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if healthy()? {
            return Ok(t.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!(
        "the cluster was not active+clean within {} s: {}",
        limit.as_secs(),
        String::from_utf8_lossy(&ceph(&["pg", "stat"]).unwrap_or_default())
    ))
}

fn pool_pg_num(pool: &str) -> Result<u32, String> {
    let v = ceph_json(&["osd", "pool", "get", pool, "pg_num"])?;
    v["pg_num"]
        .as_u64()
        .map(|n| n as u32)
        .ok_or_else(|| format!("pg_num of {pool}: {v}"))
}

impl Thrasher {
    /// Set the pools to size 3 / min_size 2 and start thrashing at once.
    pub fn start(cfg: ThrashConfig) -> Thrasher {
        let osd_dump = ceph_json(&["osd", "dump"]).expect("ceph osd dump");
        let nosds = osd_dump["osds"].as_array().map(|a| a.len()).unwrap_or(0) as u32;
        let mon_dump = ceph_json(&["mon", "dump"]).expect("ceph mon dump");
        let nmons = mon_dump["mons"].as_array().map(|a| a.len()).unwrap_or(0) as u32;
        assert!(
            nosds >= 4,
            "the thrasher needs at least 4 OSDs (size 3 plus one to fail), the cluster has {nosds}"
        );
        for p in &cfg.pools {
            ceph(&["osd", "pool", "set", p, "size", "3"]).expect("pool size");
            ceph(&["osd", "pool", "set", p, "min_size", "2"]).expect("pool min_size");
        }
        wait_healthy(Duration::from_secs(120)).expect("cluster healthy before thrashing");
        let stop = Arc::new(AtomicBool::new(false));
        let faults = Arc::new(Mutex::new(Vec::new()));
        let log_dir = cluster_dir().join("log");
        let _ = std::fs::create_dir_all(&log_dir);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_dir.join("thrash.log"))
            .ok();
        let mut ctx = Ctx {
            rng: XorShift(cfg.seed | 1),
            cfg,
            t0: Instant::now(),
            stop: stop.clone(),
            faults: faults.clone(),
            log,
            nosds,
            nmons,
            affinity: Vec::new(),
            upmaps: Vec::new(),
        };
        ctx.info(format!(
            "thrasher seed {:#x} (THRASH_SEED={:x}), {nosds} OSDs, {nmons} mons, pools {:?}",
            ctx.cfg.seed, ctx.cfg.seed, ctx.cfg.pools
        ));
        // a failure is logged when it happens (the workload goes on until its time is
        // up, without faults) and reported by `stop`
        let handle = std::thread::spawn(move || {
            run(&mut ctx).map_err(|e| {
                let msg = format!("after {:.0} s: {e}", ctx.t0.elapsed().as_secs_f64());
                ctx.info(format!("THRASHER FAILED {msg}"));
                msg
            })
        });
        Thrasher {
            stop,
            faults,
            handle: Some(handle),
        }
    }

    /// Faults injected so far.
    pub fn faults_so_far(&self) -> usize {
        self.faults.lock().unwrap().len()
    }

    /// Stop, undo what is in effect, wait until healthy. A thrasher that failed (a
    /// daemon that would not restart, a cluster that never became clean: under a
    /// thrasher, memstore OSDs sometimes crash, see docs/thrash-divergence.md) is
    /// reported in `failed`, so the test can still check its data and then fail with
    /// both verdicts: [`ThrashReport::fail_if_thrasher_failed`].
    pub fn stop(mut self) -> ThrashReport {
        self.stop.store(true, Ordering::Relaxed);
        let (settle, failed) = match self
            .handle
            .take()
            .unwrap()
            .join()
            .expect("thrasher thread panicked")
        {
            Ok(s) => (s, None),
            Err(e) => (0.0, Some(e)),
        };
        let faults = self.faults.lock().unwrap().clone();
        let by_kind = KINDS
            .iter()
            .map(|k| (*k, faults.iter().filter(|f| f.kind == *k).count()))
            .collect();
        ThrashReport {
            faults,
            by_kind,
            settle_secs: settle,
            failed,
        }
    }
}

impl Drop for Thrasher {
    fn drop(&mut self) {
        // a failing test: stop injecting (the thread restores what it broke)
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(ctx: &mut Ctx) -> Result<f64, String> {
    let r = thrash_loop(ctx);
    // undo the lasting changes whatever happened
    let mut cleanup_err = None;
    for osd in std::mem::take(&mut ctx.affinity) {
        if let Err(e) = ceph(&["osd", "primary-affinity", &format!("osd.{osd}"), "1"]) {
            cleanup_err.get_or_insert(e);
        }
    }
    for pg in std::mem::take(&mut ctx.upmaps) {
        if let Err(e) = ceph(&["osd", "rm-pg-upmap-items", &pg]) {
            cleanup_err.get_or_insert(e);
        }
    }
    r?;
    if let Some(e) = cleanup_err {
        return Err(e);
    }
    let settle = wait_healthy(Duration::from_secs(300))?;
    ctx.info(format!("stopped; active+clean after {settle:.1} s"));
    Ok(settle)
}

fn thrash_loop(ctx: &mut Ctx) -> Result<(), String> {
    loop {
        let (lo, hi) = ctx.cfg.interval;
        let pause = ctx.rng.range(lo * 1000, hi * 1000) as f64 / 1000.0;
        if !ctx.sleep(pause) {
            return Ok(());
        }
        let kind = KINDS[ctx.rng.below(KINDS.len() as u64) as usize];
        if !kind_enabled(kind) {
            continue;
        }
        match kind {
            "osd-sigkill" | "osd-sigterm" | "osd-pause" | "osd-out" => {
                // one OSD at a time, and only once the last one's recovery is over
                wait_healthy(Duration::from_secs(300))?;
                if ctx.stopping() {
                    return Ok(());
                }
                let osd = ctx.rng.below(ctx.nosds as u64) as u32;
                let id = osd.to_string();
                match kind {
                    "osd-sigkill" | "osd-sigterm" => {
                        let hard = kind == "osd-sigkill";
                        let mut args = vec!["kill-osd", id.as_str()];
                        if hard {
                            args.push("--hard");
                        }
                        let down = ctx.rng.range(0, 15_000) as f64 / 1000.0;
                        ctx.note(kind, format!("osd.{osd}, restart after {down:.1} s"));
                        cluster_cmd(&args)?;
                        // the restart happens even when stopping
                        std::thread::sleep(Duration::from_secs_f64(down));
                        cluster_cmd(&["start-osd", &id])?;
                        ctx.info(format!("osd.{osd} restarted"));
                    }
                    "osd-pause" => {
                        // below the 20 s heartbeat grace: stalled, never marked down
                        let secs = ctx.rng.range(2_000, 15_000) as f64 / 1000.0;
                        ctx.note(kind, format!("osd.{osd} SIGSTOP for {secs:.1} s"));
                        cluster_cmd(&["pause-osd", &id])?;
                        std::thread::sleep(Duration::from_secs_f64(secs));
                        cluster_cmd(&["resume-osd", &id])?;
                        ctx.info(format!("osd.{osd} resumed"));
                    }
                    _ => {
                        let secs = ctx.rng.range(2_000, 20_000) as f64 / 1000.0;
                        ctx.note(kind, format!("osd.{osd} out for {secs:.1} s"));
                        ceph(&["osd", "out", &id])?;
                        ctx.sleep(secs);
                        ceph(&["osd", "in", &id])?;
                        ctx.info(format!("osd.{osd} in"));
                    }
                }
            }
            "primary-affinity" => {
                if !ctx.affinity.is_empty() && ctx.rng.below(2) == 0 {
                    let osd = ctx.affinity.remove(0);
                    ctx.note(kind, format!("osd.{osd} -> 1"));
                    ceph(&["osd", "primary-affinity", &format!("osd.{osd}"), "1"])?;
                } else {
                    let osd = ctx.rng.below(ctx.nosds as u64) as u32;
                    let w = ["0", "0.25", "0.5"][ctx.rng.below(3) as usize];
                    ctx.note(kind, format!("osd.{osd} -> {w}"));
                    ceph(&["osd", "primary-affinity", &format!("osd.{osd}"), w])?;
                    if !ctx.affinity.contains(&osd) {
                        ctx.affinity.push(osd);
                    }
                }
            }
            "pg-upmap-items" => {
                if !ctx.upmaps.is_empty() && ctx.rng.below(2) == 0 {
                    let pg = ctx.upmaps.remove(0);
                    ctx.note(kind, format!("rm {pg}"));
                    ceph(&["osd", "rm-pg-upmap-items", &pg])?;
                    continue;
                }
                let pool =
                    ctx.cfg.pools[ctx.rng.below(ctx.cfg.pools.len() as u64) as usize].clone();
                let pool_id = ceph_json(&["osd", "pool", "stats", &pool])?
                    .get(0)
                    .and_then(|p| p["pool_id"].as_i64())
                    .ok_or("pool id")?;
                let pg_num = pool_pg_num(&pool)?;
                let pg = format!("{pool_id}.{:x}", ctx.rng.below(pg_num as u64));
                if ctx.upmaps.contains(&pg) {
                    continue;
                }
                let map = ceph_json(&["pg", "map", &pg])?;
                let up: Vec<u64> = map["up"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|o| o.as_u64()).collect())
                    .unwrap_or_default();
                let others: Vec<u64> = (0..ctx.nosds as u64).filter(|o| !up.contains(o)).collect();
                if up.is_empty() || others.is_empty() {
                    continue;
                }
                let from = up[ctx.rng.below(up.len() as u64) as usize];
                let to = others[ctx.rng.below(others.len() as u64) as usize];
                ctx.note(
                    kind,
                    format!("{pg} ({pool}) up {up:?}: osd.{from} -> osd.{to}"),
                );
                ceph(&[
                    "osd",
                    "pg-upmap-items",
                    &pg,
                    &from.to_string(),
                    &to.to_string(),
                ])?;
                ctx.upmaps.push(pg);
            }
            "pg-split" => {
                let pool =
                    ctx.cfg.pools[ctx.rng.below(ctx.cfg.pools.len() as u64) as usize].clone();
                let n = pool_pg_num(&pool)?;
                if n * 2 > ctx.cfg.max_pg_num {
                    continue;
                }
                ctx.note(kind, format!("{pool} pg_num {n} -> {}", n * 2));
                ceph(&["osd", "pool", "set", &pool, "pg_num", &(n * 2).to_string()])?;
            }
            "mon-kill" => {
                if ctx.nmons < 3 {
                    continue;
                }
                let rank = ctx.rng.below(ctx.nmons as u64).to_string();
                let secs = ctx.rng.range(1_000, 10_000) as f64 / 1000.0;
                ctx.note(
                    kind,
                    format!("mon rank {rank} SIGKILL, restart after {secs:.1} s"),
                );
                cluster_cmd(&["kill-mon", &rank])?;
                std::thread::sleep(Duration::from_secs_f64(secs));
                cluster_cmd(&["start-mon", &rank])?;
                ctx.info(format!("mon rank {rank} back in quorum"));
            }
            _ => unreachable!(),
        }
    }
}
