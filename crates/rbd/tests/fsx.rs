//! Model-based randomized test (the idea of Ceph's fsx): random writes, discards,
//! write-zeroes, resizes, snapshots, clones, flattens, rollbacks and snapshot removals
//! against an in-memory model, every image checked after every step; at the end librbd
//! (`rbd export`) must read every head and snapshot as the model has them.
//!
//! RBD_FSX_SECS (default 45) bounds the run; RBD_FSX_SEED replays a run (the seed is
//! printed at the start and in the failure message), RBD_FSX_STEPS=N stops it after N
//! steps (the final checks of a time-bounded run see however many steps it got to),
//! RBD_FSX_STRIPED=1 (or 0) forces the striped (or plain) layout.

mod common;

use common::fsx_model::{run, FsxOpts};
use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsx() {
    let seed = std::env::var("RBD_FSX_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(seed);
    let secs: u64 = std::env::var("RBD_FSX_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(45);
    println!("fsx seed {seed:#x} (RBD_FSX_SEED={seed:x} to replay), {secs}s");
    let rados = connect().await;
    let pool = TestPool::new(&rados, "fsx").await;
    let opts = FsxOpts {
        seed,
        secs,
        // RBD_FSX_STEPS: stop after that many steps instead (an exact replay of a failure
        // that only shows at the end, e.g. in the object-map check)
        max_steps: std::env::var("RBD_FSX_STEPS")
            .ok()
            .and_then(|s| s.parse().ok()),
        // RBD_FSX_STRIPED=1/0 forces the layout (a replay of a thrash.rs run's "s"/"p" fsx)
        striped: std::env::var("RBD_FSX_STRIPED").ok().map(|v| v == "1"),
        // RBD_FSX_FEATURES=1 (layering only) tells object-map bugs from layering ones
        features: std::env::var("RBD_FSX_FEATURES")
            .ok()
            .filter(|f| !f.is_empty())
            .map(|f| f.parse().expect("RBD_FSX_FEATURES: feature bits, decimal")),
        prefix: String::new(),
        // no faults here: a step is a few seconds at most even on a loaded machine
        watchdog: Duration::from_secs(120),
        verbose: std::env::var("RBD_FSX_VERBOSE").is_ok(),
    };
    run(&pool, &opts).await;
    pool.cleanup().await;
}
