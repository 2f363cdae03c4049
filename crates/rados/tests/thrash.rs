//! RADOS model test under the thrasher (issue 10): concurrent workers write, append,
//! overwrite, truncate, remove, stat and read a set of objects while
//! `common::thrasher` kills, pauses, outs, remaps and splits under them. A model
//! holds every object's committed contents and the fingerprints of every version it
//! went through, so a read (which may race a write to the same object) is accepted
//! only if it shows a state that was committed when the read started or written since.
//! No op may fail (the pool keeps min_size copies up, the client has no op timeout) and
//! a watchdog fails any op slower than 60 s. At the end every object is compared with
//! the model through our client and through librados (`rados get`), and `rados ls`
//! must list exactly the objects the model has.
//!
//! Destructive (it kills daemons): scripts/test-all phase 2b runs it (bluestore OSDs),
//! `cargo test -p ceph-rados --features destructive-tests --test thrash -- --nocapture`.
//! THRASH_SECS (default 120) sets the length: `THRASH_SECS=3600` for a long run;
//! THRASH_SEED (hex) replays the op and fault choices (timing differs, of course);
//! THRASH_WORKERS (default 4) and THRASH_OBJECTS (default 24) size the load.

mod common;

use bytes::Bytes;
use ceph_rados::IoCtx;
use common::thrasher::{thrash_secs, thrash_seed, ThrashConfig, Thrasher, XorShift};
use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Ops slower than this fail the test (the watchdog).
const WATCHDOG: Duration = Duration::from_secs(60);
/// librados' own bound for the final `rados get`/`ls` (the watchdog, in seconds): they
/// fail with ETIMEDOUT rather than hang on a cluster a failed thrasher left unhealthy.
const OP_TIMEOUT: &str = "--rados_osd_op_timeout=60";
/// Objects stay below this (a write_full replaces a bigger one).
const MAX_OBJ: usize = 96 * 1024;

/// A version's fingerprint: None = absent, else (length, crc32c).
type Print = Option<(usize, u32)>;

fn print_of(d: &Option<Vec<u8>>) -> Print {
    d.as_ref().map(|d| (d.len(), crc32c::crc32c(d)))
}

struct ObjState {
    /// The last committed contents (None: the object does not exist).
    data: Option<Vec<u8>>,
    /// Fingerprints of every version, index = version; the last may be in flight.
    hist: Vec<Print>,
    /// Version of `data`.
    committed: usize,
}

struct Obj {
    name: String,
    /// Writers of one object take turns, so the model knows the order of versions.
    writer: tokio::sync::Mutex<()>,
    st: Mutex<ObjState>,
}

#[derive(Default)]
struct Stats {
    ops: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    worst_us: AtomicU64,
    over_1s: AtomicU64,
    over_10s: AtomicU64,
}

impl Stats {
    fn record(&self, took: Duration) {
        let us = took.as_micros() as u64;
        self.ops.fetch_add(1, Ordering::Relaxed);
        self.worst_us.fetch_max(us, Ordering::Relaxed);
        if took > Duration::from_secs(1) {
            self.over_1s.fetch_add(1, Ordering::Relaxed);
        }
        if took > Duration::from_secs(10) {
            self.over_10s.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Run one op under the watchdog, recording its latency.
async fn timed<T>(
    stats: &Stats,
    what: &str,
    f: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    let t = Instant::now();
    match tokio::time::timeout(WATCHDOG, f).await {
        Ok(v) => {
            stats.record(t.elapsed());
            Ok(v)
        }
        Err(_) => Err(format!("HUNG: {what} took longer than {WATCHDOG:?}")),
    }
}

/// The mutations the model knows.
enum Mutation {
    WriteFull(Vec<u8>),
    Write(u64, Vec<u8>),
    Append(Vec<u8>),
    Truncate(u64),
    Remove,
}

impl Mutation {
    /// The object after the mutation, or None when RADOS must refuse it with ENOENT.
    fn apply(&self, old: &Option<Vec<u8>>) -> Result<Option<Vec<u8>>, ()> {
        let mut d = old.clone().unwrap_or_default();
        match self {
            Mutation::WriteFull(b) => return Ok(Some(b.clone())),
            Mutation::Write(off, b) => {
                let end = *off as usize + b.len();
                if d.len() < end {
                    d.resize(end, 0);
                }
                d[*off as usize..end].copy_from_slice(b);
            }
            Mutation::Append(b) => d.extend_from_slice(b),
            // the OSD treats a truncate of a missing object as a no-op (PrimaryLogPG
            // do_osd_ops: "object dne, truncate is a no-op")
            Mutation::Truncate(_) if old.is_none() => return Ok(None),
            Mutation::Truncate(n) => d.resize(*n as usize, 0),
            Mutation::Remove => {
                return if old.is_none() { Err(()) } else { Ok(None) };
            }
        }
        Ok(Some(d))
    }

    fn describe(&self) -> String {
        match self {
            Mutation::WriteFull(b) => format!("write_full {}", b.len()),
            Mutation::Write(o, b) => format!("write {o}+{}", b.len()),
            Mutation::Append(b) => format!("append {}", b.len()),
            Mutation::Truncate(n) => format!("truncate {n}"),
            Mutation::Remove => "remove".into(),
        }
    }
}

async fn mutate(io: &IoCtx, obj: &Obj, m: Mutation, stats: &Stats) -> Result<(), String> {
    let _turn = obj.writer.lock().await;
    let (new, expect_enoent) = {
        let mut st = obj.st.lock().unwrap();
        match m.apply(&st.data) {
            Ok(new) => {
                let p = print_of(&new);
                st.hist.push(p);
                (new, false)
            }
            Err(()) => (None, true),
        }
    };
    let what = format!("{} {}", obj.name, m.describe());
    let oid = obj.name.as_str();
    let r = timed(stats, &what, async {
        match &m {
            Mutation::WriteFull(b) => io.write_full(oid, Bytes::from(b.clone())).await,
            Mutation::Write(o, b) => io.write(oid, *o, Bytes::from(b.clone())).await,
            Mutation::Append(b) => io.append(oid, Bytes::from(b.clone())).await,
            Mutation::Truncate(n) => io.truncate(oid, *n).await,
            Mutation::Remove => io.remove(oid).await,
        }
    })
    .await?;
    stats.writes.fetch_add(1, Ordering::Relaxed);
    match (r, expect_enoent) {
        (Ok(()), false) => {
            let mut st = obj.st.lock().unwrap();
            st.data = new;
            st.committed = st.hist.len() - 1;
            Ok(())
        }
        (Err(e), true) if e.is_not_found() => Ok(()),
        (r, _) => Err(format!(
            "{what}: {r:?} (model expected {})",
            if expect_enoent { "ENOENT" } else { "success" }
        )),
    }
}

/// Read (or stat) and check the result against the versions the model allows.
async fn check_read(io: &IoCtx, obj: &Obj, stat: bool, stats: &Stats) -> Result<(), String> {
    let lo = obj.st.lock().unwrap().committed;
    let oid = obj.name.as_str();
    let what = format!("{oid} {}", if stat { "stat" } else { "read" });
    let got: Result<Print, ceph_rados::Error> = if stat {
        timed(stats, &what, io.stat(oid))
            .await?
            .map(|s| Some((s.size as usize, 0)))
    } else {
        timed(stats, &what, io.read_full(oid))
            .await?
            .map(|b| print_of(&Some(b.to_vec())))
    };
    stats.reads.fetch_add(1, Ordering::Relaxed);
    let got = match got {
        Ok(p) => p,
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(format!("{what}: {e}")),
    };
    let st = obj.st.lock().unwrap();
    let allowed = &st.hist[lo..];
    let ok = allowed.iter().any(|p| match (p, got) {
        (None, None) => true,
        (Some((l, c)), Some((gl, gc))) => *l == gl && (stat || *c == gc),
        _ => false,
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what}: got {got:?}, the model allows only versions {lo}.. {allowed:?} (of {})",
            st.hist.len()
        ))
    }
}

async fn worker(
    io: IoCtx,
    objs: Arc<Vec<Obj>>,
    mut rng: XorShift,
    deadline: Instant,
    stats: Arc<Stats>,
) -> Result<(), String> {
    while Instant::now() < deadline {
        let obj = &objs[rng.below(objs.len() as u64) as usize];
        let size = obj.st.lock().unwrap().data.as_ref().map_or(0, |d| d.len());
        let small = |rng: &mut XorShift| 1 + rng.below(8192) as usize;
        match rng.below(100) {
            0..=14 => {
                let n = rng.below(MAX_OBJ as u64 / 2) as usize;
                let b = rng.bytes(n);
                mutate(&io, obj, Mutation::WriteFull(b), &stats).await?;
            }
            15..=34 => {
                let n = small(&mut rng);
                // within, across the end of, or past the end (a hole) of the object
                let off = rng.below((size + 4096).min(MAX_OBJ - n) as u64);
                mutate(&io, obj, Mutation::Write(off, rng.bytes(n)), &stats).await?;
            }
            35..=46 if size < MAX_OBJ - 8192 => {
                let n = small(&mut rng);
                mutate(&io, obj, Mutation::Append(rng.bytes(n)), &stats).await?;
            }
            47..=51 => {
                let n = rng.below(size as u64 + 1024);
                mutate(&io, obj, Mutation::Truncate(n), &stats).await?;
            }
            52..=59 => mutate(&io, obj, Mutation::Remove, &stats).await?,
            60..=67 => check_read(&io, obj, true, &stats).await?,
            _ => check_read(&io, obj, false, &stats).await?,
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rados_model_under_thrashing() {
    let secs = thrash_secs(120);
    let seed = thrash_seed();
    let nworkers: u64 = std::env::var("THRASH_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let nobjs: usize = std::env::var("THRASH_OBJECTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    println!("rados thrash: seed {seed:#x} (THRASH_SEED={seed:x} to replay), {secs} s, {nworkers} workers, {nobjs} objects");
    let pool = make_pool("thrash", 8);
    let r = admin().await;
    let io = r.ioctx(&pool).await.unwrap();
    let objs: Arc<Vec<Obj>> = Arc::new(
        (0..nobjs)
            .map(|i| Obj {
                name: format!("obj{i}"),
                writer: tokio::sync::Mutex::new(()),
                st: Mutex::new(ObjState {
                    data: None,
                    hist: vec![None],
                    committed: 0,
                }),
            })
            .collect(),
    );
    let thrasher = Thrasher::start(ThrashConfig::new(vec![pool.0.clone()], seed));
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(secs);
    let stats = Arc::new(Stats::default());
    let mut tasks = Vec::new();
    for w in 0..nworkers {
        tasks.push(tokio::spawn(worker(
            io.clone(),
            objs.clone(),
            XorShift((seed ^ (w + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1),
            deadline,
            stats.clone(),
        )));
    }
    let mut failures = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(format!("worker panicked: {e}")),
        }
    }
    let ran = t0.elapsed();
    let report = thrasher.stop();
    let worst = Duration::from_micros(stats.worst_us.load(Ordering::Relaxed));
    println!(
        "rados thrash: {} ops ({} mutations, {} reads/stats) in {:.0} s; {}; worst op latency {:.3} s, {} ops > 1 s, {} > 10 s",
        stats.ops.load(Ordering::Relaxed),
        stats.writes.load(Ordering::Relaxed),
        stats.reads.load(Ordering::Relaxed),
        ran.as_secs_f64(),
        report.summary(),
        worst.as_secs_f64(),
        stats.over_1s.load(Ordering::Relaxed),
        stats.over_10s.load(Ordering::Relaxed),
    );
    assert!(
        failures.is_empty(),
        "seed {seed:#x}: {} worker(s) failed: {failures:#?}",
        failures.len()
    );
    assert!(
        !report.faults.is_empty(),
        "the thrasher injected no fault in {secs} s"
    );

    // the end state: our reads, librados' reads and its listing equal the model
    let mut lost = 0;
    let mut want_names = Vec::new();
    for obj in objs.iter() {
        let want = obj.st.lock().unwrap().data.clone();
        // under the watchdog too: a thrasher that failed may leave the cluster unhealthy
        let ours = match tokio::time::timeout(WATCHDOG, io.read_full(&obj.name)).await {
            Err(_) => panic!("final read of {} took over {WATCHDOG:?}", obj.name),
            Ok(Ok(b)) => Some(b.to_vec()),
            Ok(Err(e)) if e.is_not_found() => None,
            Ok(Err(e)) => panic!("final read of {}: {e}", obj.name),
        };
        let path = std::env::temp_dir().join(unique("thrash-get"));
        let out = tool_raw(
            "rados",
            &[
                OP_TIMEOUT,
                "-p",
                &pool,
                "get",
                &obj.name,
                path.to_str().unwrap(),
            ],
        );
        let theirs = if out.status.success() {
            Some(std::fs::read(&path).unwrap())
        } else {
            // `rados get` exits 1 whatever the error; ENOENT shows in its message
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("(2) No such file or directory"),
                "rados get {}: {err}",
                obj.name
            );
            None
        };
        let _ = std::fs::remove_file(&path);
        if ours != want || theirs != want {
            lost += 1;
            println!(
                "{}: model {:?}, ours {:?}, librados {:?}",
                obj.name,
                print_of(&want),
                print_of(&ours),
                print_of(&theirs)
            );
        }
        if want.is_some() {
            want_names.push(obj.name.clone());
        }
    }
    let ls = String::from_utf8(tool("rados", &[OP_TIMEOUT, "-p", &pool, "ls"])).unwrap();
    let mut listed: Vec<String> = ls.lines().map(str::to_string).collect();
    listed.sort();
    want_names.sort();
    println!(
        "rados thrash: final check of {} objects ({} existing): {lost} lost or differing, 0 hung",
        objs.len(),
        want_names.len()
    );
    assert_eq!(lost, 0, "seed {seed:#x}: objects differ from the model");
    assert_eq!(listed, want_names, "rados ls lists what the model has");
    report.fail_if_thrasher_failed();
}
