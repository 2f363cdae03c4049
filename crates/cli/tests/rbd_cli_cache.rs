//! `rbd-rs` acts on the `rbd_cache*` options as `rbd` does (no "has no effect"
//! warning): write-around by default (the `rbd` tool turns
//! `rbd_cache_writethrough_until_flush` off), written through with `--rbd_cache=false`,
//! `--rbd_cache_max_dirty=0`, another policy, or `conf_rbd_cache` image metadata; bench
//! says which policy ran, and what write-around wrote is what librbd exports.

mod common;

use common::*;

/// `rbd-rs bench` (4 KiB random writes, 16 threads): the policy line on stderr.
fn bench_policy(spec: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "bench",
        "--io-type",
        "write",
        "--io-size",
        "4K",
        "--io-pattern",
        "rand",
        "--io-threads",
        "16",
        "--io-total",
        "2M",
    ];
    args.extend_from_slice(extra);
    args.push(spec);
    let o = run(RBD_RS, &args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "bench {extra:?}: {err}");
    assert!(!err.contains("has no effect"), "{extra:?}: {err}");
    assert!(
        text(&o).starts_with("bench  type write io_size 4096 io_threads 16"),
        "{}",
        text(&o)
    );
    err.lines()
        .find_map(|l| l.strip_prefix("rbd-rs: bench write policy: "))
        .unwrap_or_else(|| panic!("no policy line: {err}"))
        .to_string()
}

#[test]
fn cache_options_select_the_write_policy() {
    let p = Pool::new("cache");
    let spec = p.img("b");
    ok(RBD, &["create", "--size", "16M", &spec]);
    assert_eq!(bench_policy(&spec, &[]), "writearound (max_dirty 25165824)");
    assert_eq!(
        bench_policy(&spec, &["--rbd_cache_max_dirty=1M"]),
        "writearound (max_dirty 1048576)"
    );
    assert_eq!(bench_policy(&spec, &["--rbd_cache=false"]), "writethrough");
    assert_eq!(
        bench_policy(&spec, &["--rbd_cache_max_dirty=0"]),
        "writethrough"
    );
    assert_eq!(
        bench_policy(&spec, &["--rbd_cache_policy=writethrough"]),
        "writethrough"
    );
    // librbd's rule without the rbd tool's setting: writethrough until the first flush
    assert_eq!(
        bench_policy(&spec, &["--rbd_cache_writethrough_until_flush=true"]),
        "writethrough until the first flush, then writearound"
    );
    // per-image configuration (librbd's CLI writes the conf_ metadata)
    ok(
        RBD,
        &["config", "image", "set", &spec, "rbd_cache", "false"],
    );
    assert_eq!(bench_policy(&spec, &[]), "writethrough");
    ok(RBD, &["config", "image", "rm", &spec, "rbd_cache"]);
    assert_eq!(bench_policy(&spec, &[]), "writearound (max_dirty 25165824)");
}

/// What rbd-rs writes under write-around (import: many writes in flight, then flush and
/// close) is what both tools export.
#[test]
fn write_around_import_matches_rbd_export() {
    let p = Pool::new("cache");
    let dir = TmpDir::new("cache");
    let file = dir.path("src");
    std::fs::write(&file, noise(common_seed(), 12 << 20)).unwrap();
    let want = sha256_file(&file);
    let spec = p.img("imp");
    ok(
        RBD_RS,
        &["import", "--no-progress", file.to_str().unwrap(), &spec],
    );
    exports_equal(&spec, &want);
}

fn common_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1
}
