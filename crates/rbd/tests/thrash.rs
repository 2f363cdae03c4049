//! The fsx model run under the thrasher (issue 10): two fsx runs at once in one pool
//! (default features: object map, fast-diff, exclusive lock; one image with 1 MiB
//! objects, one striped 64 KiB x 3; each grows clones of its snapshots, v1 and v2, with
//! snapshots of their own, flattens and rollbacks) while `common::thrasher` kills,
//! pauses, outs, remaps and splits under them. Every step's operation and every
//! read-back check must finish within 60 s (the watchdog); every image must equal its
//! model after every step, and at the end `rbd export` (librbd) must read every head and
//! snapshot as the model has them and `rbd object-map check` must find the maps exact.
//!
//! Destructive (it kills daemons): scripts/test-all phase 2b runs it (bluestore OSDs),
//! `cargo test -p ceph-rbd --features destructive-tests --test thrash -- --nocapture`.
//! THRASH_SECS (default 120) sets the length (`THRASH_SECS=3600` for a long run);
//! THRASH_SEED (hex) replays the op and fault choices.

mod common;

use common::fsx_model::{run, FsxOpts};
use common::thrasher::{thrash_secs, thrash_seed, ThrashConfig, Thrasher};
use common::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsx_under_thrashing() {
    // RUST_LOG=ceph_rados=debug (etc.) shows the objecter's resends, backoffs and retargets
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let secs = thrash_secs(120);
    let seed = thrash_seed();
    println!("rbd thrash: seed {seed:#x} (THRASH_SEED={seed:x} to replay), {secs} s");
    let rados = connect().await;
    let pool = TestPool::new(&rados, "thrash").await;
    let opts = |prefix: &str, striped: bool, salt: u64| FsxOpts {
        seed: (seed ^ salt) | 1,
        secs,
        max_steps: None,
        striped: Some(striped),
        features: None,
        prefix: prefix.into(),
        watchdog: Duration::from_secs(60),
        verbose: std::env::var("RBD_FSX_VERBOSE").is_ok(),
    };
    let (plain, striped) = (opts("p", false, 0x5a5a), opts("s", true, 0xa5a5));
    let thrasher = Thrasher::start(ThrashConfig::new(vec![pool.name.clone()], seed));
    let t0 = Instant::now();
    // the final checks (rbd export, object-map check) run in each fsx while the other
    // may still be stepping: under the thrasher too
    let (a, b) = tokio::join!(run(&pool, &plain), run(&pool, &striped));
    let ran = t0.elapsed();
    let report = thrasher.stop();
    println!(
        "rbd thrash: {} + {} fsx steps ({} + {} images, {} heads and snapshots read back through librbd) in {:.0} s; {}; worst step or check {:.3} s; 0 lost, 0 hung",
        a.steps,
        b.steps,
        a.images,
        b.images,
        a.snapshots_checked + b.snapshots_checked,
        ran.as_secs_f64(),
        report.summary(),
        a.worst.max(b.worst).as_secs_f64(),
    );
    assert!(
        !report.faults.is_empty(),
        "the thrasher injected no fault in {secs} s"
    );
    report.fail_if_thrasher_failed();
    pool.cleanup().await;
}
