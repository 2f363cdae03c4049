//! The fsx model run (the idea of Ceph's fsx), shared by `fsx.rs` and the thrashing
//! run `thrash.rs`: random writes, discards, write-zeroes, resizes, snapshots, clones,
//! flattens, rollbacks and snapshot removals against an in-memory model, every image
//! checked after every step; at the end librbd (`rbd export`) must read every head and
//! snapshot as the model has them, and `rbd object-map check` must find the maps exact.
//!
//! Every step's operation and every check run under a watchdog ([`FsxOpts::watchdog`]):
//! one slower than that fails the run, which is how the thrash test tells "hung" from
//! "slow while an OSD was down".

#![allow(dead_code)]

use super::*;
use bytes::Bytes;
use ceph_rbd::{CloneFormat, CloneOptions, CreateOptions, Image};
use std::time::{Duration, Instant};

const OBJ: u64 = 1 << 20; // order 20
const MAX_SIZE: u64 = 6 * OBJ;

struct MImage {
    name: String,
    img: Image,
    data: Vec<u8>,
    snaps: Vec<(String, Vec<u8>)>,
    is_clone: bool,
}

/// How to run.
pub struct FsxOpts {
    pub seed: u64,
    /// Time bound (ignored with `max_steps`).
    pub secs: u64,
    /// Stop after that many steps instead.
    pub max_steps: Option<usize>,
    /// Striped layout (64 KiB units over 3 objects) or 1 MiB objects; None: the seed picks.
    pub striped: Option<bool>,
    /// Feature bits (None: the defaults, with object map and fast-diff).
    pub features: Option<u64>,
    /// Image name prefix, so several runs can share a pool.
    pub prefix: String,
    /// Bound on one step's operation or one check.
    pub watchdog: Duration,
    pub verbose: bool,
}

/// What a run did.
pub struct FsxStats {
    pub steps: usize,
    pub images: usize,
    pub snapshots_checked: usize,
    /// The slowest step operation or check.
    pub worst: Duration,
}

async fn dog<T>(
    limit: Duration,
    worst: &mut Duration,
    what: impl FnOnce() -> String,
    f: impl std::future::Future<Output = T>,
) -> T {
    let t = Instant::now();
    match tokio::time::timeout(limit, f).await {
        Ok(v) => {
            *worst = (*worst).max(t.elapsed());
            v
        }
        Err(_) => panic!("HUNG: {} took longer than {limit:?}", what()),
    }
}

/// After a divergence: deep-scrub the PG of the object holding the first differing byte
/// and say whether the OSDs' own replicas of it disagree (`rados list-inconsistent-obj`).
/// A replica whose data contradicts its own object_info is a cluster-side fault (seen
/// with memstore OSDs restarted under the thrasher), which no client op can cause; a
/// clean scrub leaves the divergence on our side.
async fn scrub_verdict(pool: &str, m: &MImage, first: u64) -> String {
    let (Ok(layout), Ok(prefix)) = (m.img.layout().await, m.img.object_prefix().await) else {
        return String::new();
    };
    let Some(ext) = layout.file_to_extents(first, 1).into_iter().next() else {
        return String::new();
    };
    let obj = format!("{prefix}.{:016x}", ext.object_no);
    let e = crate::common::env();
    let ceph = |args: &[&str]| -> String {
        let o = std::process::Command::new(crate::common::oracle("ceph"))
            .args(["--conf", &e.conf, "--keyring", &e.keyring])
            .args(["--connect-timeout", "10"])
            .args(args)
            .output();
        o.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let map: serde_json::Value =
        serde_json::from_str(&ceph(&["osd", "map", pool, &obj, "--format", "json"]))
            .unwrap_or_default();
    let Some(pg) = map["pgid"].as_str().map(str::to_string) else {
        return format!("; scrub: no PG for {obj}");
    };
    ceph(&["pg", "deep-scrub", &pg]);
    // the whole check runs under the step watchdog (60 s): wait at most 40 s here, so a
    // slow scrub is reported as such instead of as a hung step
    let mut found = String::from("none (scrub did not report in 40 s)");
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let o = std::process::Command::new(crate::common::oracle("rados"))
            .args(["--conf", &e.conf, "--keyring", &e.keyring])
            .args(["list-inconsistent-obj", &pg, "--format", "json"])
            .output();
        let Ok(o) = o else { continue };
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let Some(list) = v["inconsistents"].as_array() else {
            continue;
        };
        let mine: Vec<String> = list
            .iter()
            .filter(|i| i["object"]["name"] == obj.as_str())
            .map(|i| {
                let shards: Vec<String> = i["shards"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| format!("osd.{} size {} {}", s["osd"], s["size"], s["errors"]))
                    .collect();
                format!("{} {}", i["errors"], shards.join(", "))
            })
            .collect();
        found = if mine.is_empty() {
            "replicas consistent".into()
        } else {
            format!("REPLICAS DIFFER (cluster-side fault): {}", mine.join("; "))
        };
        break;
    }
    format!("; deep scrub of {obj} (pg {pg}): {found}")
}

async fn check(pool: &str, m: &MImage, step: usize, seed: u64, what: &str) {
    let got = m.img.read(0, m.data.len() as u64).await.unwrap();
    if got[..] != m.data[..] {
        let first = got.iter().zip(m.data.iter()).position(|(a, b)| a != b);
        let last = got.iter().zip(m.data.iter()).rposition(|(a, b)| a != b);
        // Evidence for the diagnosis: how much differs, whether we read zeros (an
        // object-map skip or a lost object) or other data, and whether a second read
        // sees the same bytes (read path) or not (what is stored is wrong).
        let (mut detail, mut reread) = (String::new(), String::new());
        if let (Some(f), Some(l)) = (first, last) {
            let ndiff = got
                .iter()
                .zip(m.data.iter())
                .filter(|(a, b)| a != b)
                .count();
            let zeros = got[f..=l].iter().all(|b| *b == 0);
            let e = (f + 32).min(got.len());
            detail = format!(
                "; differing span {f}..={l} ({ndiff} bytes differ, got all zeros there: {zeros}); got[{f}..{e}] {:02x?}, want {:02x?}",
                &got[f..e],
                &m.data[f..e]
            );
            if let Ok(again) = m.img.read(0, m.data.len() as u64).await {
                reread = format!(
                    "; a second read equals the model: {}, equals the first read: {}",
                    again[..] == m.data[..],
                    again[..] == got[..]
                );
            }
            reread += &scrub_verdict(pool, m, f as u64).await;
        }
        panic!(
            "seed {seed:#x} step {step} ({what}): image {} differs from the model (len {} vs {}), first difference at {first:?}{detail}{reread}",
            m.name,
            got.len(),
            m.data.len()
        );
    }
}

/// One fsx run in `pool`; panics on any difference from the model.
pub async fn run(pool: &TestPool, o: &FsxOpts) -> FsxStats {
    let seed = o.seed;
    let p = &o.prefix;
    let mut worst = Duration::ZERO;
    let mut rng = Rng(seed);
    // the default layout, or a striped one (64 KiB units over 3 objects) half of the time
    let coin = rng.below(2) == 0;
    let striped = o.striped.unwrap_or(coin);
    let features = o.features;
    let copts = CreateOptions {
        order: Some(20),
        stripe_unit: striped.then_some(65536),
        stripe_count: striped.then_some(3),
        features,
        ..Default::default()
    };
    println!(
        "fsx {p}: layout {}",
        if striped {
            "striped 64K x 3"
        } else {
            "1 MiB objects"
        }
    );
    let size0 = 1 + rng.below(MAX_SIZE);
    pool.rbd
        .create(&format!("{p}f0"), size0, &copts)
        .await
        .unwrap();
    let mut images = vec![MImage {
        name: format!("{p}f0"),
        img: pool.rbd.open(&format!("{p}f0")).await.unwrap(),
        data: vec![0u8; size0 as usize],
        snaps: vec![],
        is_clone: false,
    }];
    let deadline = Instant::now() + Duration::from_secs(o.secs);
    let mut step = 0usize;
    let mut nsnap = 0;
    let mut nimg = 1;
    // RBD_FSX_STEPS: stop after that many steps instead (an exact replay of a failure
    // that only shows at the end, e.g. in the object-map check)
    let max_steps = o.max_steps;
    while match max_steps {
        Some(n) => step < n,
        None => Instant::now() < deadline,
    } {
        step += 1;
        let i = rng.below(images.len() as u64) as usize;
        let op = rng.below(100);
        let what = dog(
            o.watchdog,
            &mut worst,
            || format!("seed {seed:#x} step {step} (op {op})"),
            async {
                let what;
                let m = &mut images[i];
                let size = m.data.len() as u64;
                let rand_range = |rng: &mut Rng| {
                    if size == 0 {
                        return (0, 0);
                    }
                    let off = if rng.below(3) == 0 {
                        (rng.below(size / OBJ + 1) * OBJ)
                            .saturating_sub(rng.below(300))
                            .min(size - 1)
                    } else {
                        rng.below(size)
                    };
                    let len = (1 + rng.below(2 * OBJ)).min(size - off);
                    (off, len)
                };
                match op {
                    0..=39 => {
                        let (off, len) = rand_range(&mut rng);
                        let d = rng.bytes(len as usize);
                        m.img.write(off, Bytes::from(d.clone())).await.unwrap();
                        m.data[off as usize..(off + len) as usize].copy_from_slice(&d);
                        what = format!("write {off}+{len}");
                    }
                    40..=49 => {
                        let (off, len) = rand_range(&mut rng);
                        m.img.discard(off, len).await.unwrap();
                        m.data[off as usize..(off + len) as usize].fill(0);
                        what = format!("discard {off}+{len}");
                    }
                    50..=54 => {
                        let (off, len) = rand_range(&mut rng);
                        m.img.write_zeroes(off, len).await.unwrap();
                        m.data[off as usize..(off + len) as usize].fill(0);
                        what = format!("write_zeroes {off}+{len}");
                    }
                    55..=64 => {
                        let new = rng.below(MAX_SIZE) + 1;
                        m.img.resize(new, true).await.unwrap();
                        m.data.resize(new as usize, 0);
                        what = format!("resize {size} -> {new}");
                    }
                    65..=74 if m.snaps.len() < 3 => {
                        nsnap += 1;
                        let n = format!("s{nsnap}");
                        m.img.snap_create(&n).await.unwrap();
                        m.snaps.push((n.clone(), m.data.clone()));
                        what = format!("snap create {n}");
                    }
                    75..=79 if !m.snaps.is_empty() => {
                        let k = rng.below(m.snaps.len() as u64) as usize;
                        let n = m.snaps[k].0.clone();
                        if m.img.snap_is_protected(&n).await.unwrap() {
                            // protected for a v1 clone: removal must be refused
                            assert!(m.img.snap_remove(&n).await.is_err());
                            what = format!("snap remove {n} (protected, refused)");
                        } else {
                            m.snaps.remove(k);
                            m.img.snap_remove(&n).await.unwrap();
                            what = format!("snap remove {n}");
                        }
                    }
                    80..=84 if !m.snaps.is_empty() => {
                        let k = rng.below(m.snaps.len() as u64) as usize;
                        let (n, d) = m.snaps[k].clone();
                        m.img.snap_rollback(&n, |_, _| {}).await.unwrap();
                        m.data = d;
                        what = format!("rollback to {n}");
                    }
                    85..=91 if !m.snaps.is_empty() && nimg < 6 => {
                        let k = rng.below(m.snaps.len() as u64) as usize;
                        let (sn, d) = m.snaps[k].clone();
                        let name = format!("{p}f{nimg}");
                        nimg += 1;
                        let format = if rng.below(2) == 0 {
                            CloneFormat::V2
                        } else {
                            CloneFormat::V1
                        };
                        if format == CloneFormat::V1 && !m.img.snap_is_protected(&sn).await.unwrap()
                        {
                            m.img.snap_protect(&sn).await.unwrap();
                        }
                        let parent = m.name.clone();
                        let opts = CloneOptions {
                            format,
                            features,
                            ..Default::default()
                        };
                        pool.rbd
                            .clone_image(&parent, &sn, &pool.rbd, &name, &opts)
                            .await
                            .unwrap();
                        let img = pool.rbd.open(&name).await.unwrap();
                        images.push(MImage {
                            name: name.clone(),
                            img,
                            data: d,
                            snaps: vec![],
                            is_clone: true,
                        });
                        what = format!("clone {parent}@{sn} -> {name} ({format:?})");
                    }
                    96..=97 => {
                        // close and open again: a fresh header read (and parent chain)
                        let img = pool.rbd.open(&m.name).await.unwrap();
                        let old = std::mem::replace(&mut m.img, img);
                        old.close().await.unwrap();
                        what = "reopen".to_string();
                    }
                    92..=95 if m.is_clone => {
                        m.img.flatten(|_, _| {}).await.unwrap();
                        m.is_clone = false;
                        what = "flatten".to_string();
                    }
                    _ => {
                        // read a random range and every snapshot
                        let (off, len) = rand_range(&mut rng);
                        let got = m.img.read(off, len).await.unwrap();
                        assert_eq!(
                            &got[..],
                            &m.data[off as usize..(off + len) as usize],
                            "seed {seed:#x} step {step}: read {off}+{len} of {}",
                            m.name
                        );
                        for (sn, d) in &m.snaps {
                            let s = pool.rbd.open_snapshot(&m.name, sn).await.unwrap();
                            let got = s.read(0, d.len() as u64).await.unwrap();
                            assert!(
                                got[..] == d[..],
                                "seed {seed:#x} step {step}: snapshot {}@{sn} differs",
                                m.name
                            );
                            s.close().await.unwrap();
                        }
                        what = "read + snapshots".to_string();
                    }
                }
                what
            },
        )
        .await;
        if o.verbose {
            println!(
                "step {step}: {} {what}",
                images[i.min(images.len() - 1)].name
            );
        }
        // protected snapshots that are gone from the model must stay consistent: check all images
        for m in &images {
            dog(
                o.watchdog,
                &mut worst,
                || {
                    format!(
                        "seed {seed:#x} step {step}: check of {} after {what}",
                        m.name
                    )
                },
                check(&pool.name, m, step, seed, &what),
            )
            .await;
        }
    }
    let nimages = images.len();
    println!("fsx {p}: {step} steps, {nimages} images");
    let mut specs = Vec::new();
    let mut models = Vec::new();
    for m in images {
        if m.img.features().await.unwrap() & ceph_rbd::features::OBJECT_MAP != 0 {
            specs.push(m.name.clone());
            specs.extend(m.snaps.iter().map(|(s, _)| format!("{}@{s}", m.name)));
        }
        m.img.close().await.unwrap();
        models.push((m.name.clone(), m.data));
        for (s, d) in m.snaps {
            models.push((format!("{}@{s}", m.name), d));
        }
    }
    // librbd reads every head and snapshot as the model has it
    for (spec, want) in &models {
        let theirs = rbd_export(&pool.name, spec);
        let first = theirs.iter().zip(want.iter()).position(|(a, b)| a != b);
        assert!(
            theirs == *want,
            "seed {seed:#x}: rbd export {spec} differs from the model (len {} vs {}), first difference at {first:?}",
            theirs.len(),
            want.len()
        );
    }
    println!(
        "fsx {p}: rbd export matches the model on {} heads and snapshots",
        models.len()
    );
    // default-feature images: librbd finds the object maps (head and snapshots) exact
    println!(
        "fsx {p}: object-map check on {} heads and snapshots",
        specs.len()
    );
    assert!(
        !specs.is_empty() || features.is_some(),
        "fsx images have the default features (object map)"
    );
    for spec in specs {
        match object_map_check(&pool.name, &spec) {
            Ok(MapCheck::Exact) => {
                let info = rbd_ok(&["info", &format!("{}/{spec}", pool.name)]);
                assert!(
                    info.contains("\tflags: \n"),
                    "seed {seed:#x}: {spec} flagged: {info}"
                );
            }
            // librbd's own maps do this too (see MapCheck); the checker flagged the map
            Ok(MapCheck::Conservative(n)) => {
                println!("fsx {p}: {spec}: {n} object(s) EXISTS where librbd's checker wants EXISTS_CLEAN (librbd's conservative kind)")
            }
            Err(e) => panic!("seed {seed:#x}: object-map check {spec}: {e}"),
        }
    }
    FsxStats {
        steps: step,
        images: nimages,
        snapshots_checked: models.len(),
        worst,
    }
}
