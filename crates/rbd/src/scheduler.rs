//! librbd's simple I/O scheduler (`rbd_io_scheduler = simple`, librbd's default since
//! Octopus): while a write to an object is in flight, later writes to the same object
//! are held back for a moment and adjacent ones are merged, so the OSD gets one larger
//! write instead of many small ones for the same object. Sequential small writes are the
//! case it exists for: 4 KiB sequential writes with 32 in flight reach the OSDs as a
//! handful of writes per object instead of a thousand.
//!
//! The rules, as librbd 16.2's `io::SimpleSchedulerObjectDispatch` applies them (ceph:
//! src/librbd/io/SimpleSchedulerObjectDispatch.cc):
//!
//! * A write to an object with no write of ours in flight goes out at once and is
//!   *registered* as that object's in-flight write.
//! * A write to an object whose registered write is still in flight is delayed, if it
//!   can join the object's batch: same snapshot context (we require the same image
//!   state), non-empty, and not overlapping a write already in the batch. It is merged with batch members it touches end to
//!   end. Otherwise the batch goes out first and the write goes out (and is registered)
//!   after it.
//! * A batch goes out when the registered write completes, when its deadline passes, or
//!   when a read, discard, write-zeroes, compare-and-write or flush touches the object.
//!   Each merged run is one WRITE op, the pieces back to back; each writer is
//!   answered with the result of the request that carried it.
//! * The deadline: `rbd_io_scheduler_simple_max_delay` ms if set; else (the default,
//!   0) it comes from the latency of the last 10 writes, and nothing is delayed before
//!   there are 10 samples. librbd's `LatencyStats::avg` returns the rolling *sum* of
//!   the window, so its deadline is half the sum: five mean latencies. We keep that
//!   bound, since it is what librbd users run with: in practice a batch leaves when the
//!   write ahead of it completes.
//!
//! Where we differ:
//!
//! * A batch sent because the write ahead of it completed is, in turn, the object's
//!   registered write: writes arriving meanwhile wait behind it and go out together
//!   when it completes. librbd lets the first of them go at once, alone, so each round
//!   trip carries one lone small write plus a batch; with this rule 4 KiB sequential
//!   writes reached the OSDs as ~10 writes per op instead of ~5, and the OSD CPU per
//!   byte fell accordingly (docs/performance.md).
//! * A batch of several runs is one request, one WRITE op per run, which the OSD
//!   applies as one transaction; librbd sends one request per run. Random 4 KiB writes
//!   with thousands in flight under write-around (librbd's default cache) put dozens
//!   of disjoint runs in each batch: one request per batch spares the OSD a
//!   transaction and a log entry per run, and us an objecter op, a reply and a task
//!   per run (docs/performance.md). All writers of the batch share its outcome.
//! * Ordering visible to callers: a write, discard or compare-and-write that overlaps a
//!   delayed write waits until that write has completed before it is sent (librbd
//!   sends the batch, then the new request, and lets the OSD order them; our object
//!   writes may first update the object map, so sending order is not guaranteed the
//!   same way).
//!
//! Under write-around ([`crate::cache`]) the two layers compose like librbd's: the
//! write-around layer acknowledges and orders overlapping writes; the scheduler only
//! decides when and how merged they reach the OSD.

use crate::error::{RbdError, Result};
use crate::image::State;
use crate::io::{object_write, ObjWrite};
use bytes::Bytes;
use ceph_rados::Errno;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// librbd's `LATENCY_STATS_WINDOW_SIZE`.
const LATENCY_WINDOW: usize = 10;

/// `rbd_io_scheduler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoScheduler {
    /// Writes go to the OSDs as they come.
    None,
    /// Delay and merge writes to an object with a write in flight (librbd's default).
    Simple,
}

impl IoScheduler {
    /// Ceph's name of the scheduler.
    pub fn as_str(&self) -> &'static str {
        match self {
            IoScheduler::None => "none",
            IoScheduler::Simple => "simple",
        }
    }
}

/// What a delayed write's outcome is handed to.
pub(crate) enum Waiter {
    /// A writer waiting on the receiver.
    Chan(oneshot::Sender<Result<()>>),
    /// A write-around write, whose caller was answered when it was dispatched: called
    /// with the outcome, so no task waits for it. If the batch is dropped unsent (no
    /// runtime left to send it), the callback is dropped uncalled, and whatever it
    /// holds accounts for that (the write-around carrier abandons the write).
    Call(Done),
}

/// The callback of [`Waiter::Call`].
pub(crate) type Done = Box<dyn FnOnce(Result<()>) + Send>;

impl Waiter {
    fn answer(self, r: Result<()>) {
        match self {
            Waiter::Chan(tx) => {
                let _ = tx.send(r);
            }
            Waiter::Call(f) => f(r),
        }
    }
}

/// Writes merged into one run of an object: their buffers back to back.
struct Merged {
    bufs: Vec<Bytes>,
    len: u64,
    waiters: Vec<Waiter>,
}

/// Delayed writes of one object as runs: offset -> run. Runs never overlap or touch
/// (touching runs are merged).
#[derive(Default)]
struct Runs(BTreeMap<u64, Merged>);

impl Runs {
    fn intersects(&self, off: u64, len: u64) -> bool {
        self.0
            .range(..off.saturating_add(len))
            .next_back()
            .is_some_and(|(&o, r)| o + r.len > off)
    }

    /// Add a write (it must not intersect), merged with the runs it touches.
    fn add(&mut self, off: u64, bufs: Vec<Bytes>, len: u64, w: Waiter) {
        debug_assert!(!self.intersects(off, len));
        let mut run = Merged {
            bufs,
            len,
            waiters: vec![w],
        };
        if let Some(next) = self.0.remove(&(off + len)) {
            run.bufs.extend(next.bufs);
            run.len += next.len;
            run.waiters.extend(next.waiters);
        }
        if let Some((_, prev)) = self
            .0
            .range_mut(..off)
            .next_back()
            .filter(|(&o, r)| o + r.len == off)
        {
            prev.bufs.extend(run.bufs);
            prev.len += run.len;
            prev.waiters.extend(run.waiters);
            return;
        }
        self.0.insert(off, run);
    }
}

/// The delayed writes of one object, sent with the image state of the first.
struct Batch {
    id: u64,
    st: Arc<State>,
    runs: Runs,
}

/// The object's registered in-flight write and its delayed batch.
struct Obj {
    seq: u64,
    batch: Option<Batch>,
}

#[derive(Default)]
struct Shared {
    next_seq: u64,
    next_batch: u64,
    objects: FxHashMap<u64, Obj>,
    /// how many objects have a batch (reads check nothing when 0)
    batches: usize,
    latencies: VecDeque<Duration>,
}

impl Shared {
    fn take_batch(&mut self, ono: u64) -> Option<Batch> {
        let b = self.objects.get_mut(&ono)?.batch.take();
        if b.is_some() {
            self.batches -= 1;
        }
        b
    }

    /// Take the object's entry off (its batch, if any, is to be sent now).
    fn release(&mut self, ono: u64) -> Option<Batch> {
        let b = self.objects.remove(&ono)?.batch;
        if b.is_some() {
            self.batches -= 1;
        }
        b
    }

    fn register(&mut self, ono: u64) -> u64 {
        self.next_seq += 1;
        let seq = self.next_seq;
        if let Some(b) = self.objects.insert(ono, Obj { seq, batch: None }) {
            // the caller took the batch before registering
            debug_assert!(b.batch.is_none());
        }
        seq
    }

    fn add_latency(&mut self, d: Duration) {
        if self.latencies.len() == LATENCY_WINDOW {
            self.latencies.pop_front();
        }
        self.latencies.push_back(d);
    }
}

/// The scheduler of one writable image handle.
pub(crate) struct Scheduler {
    /// `rbd_io_scheduler_simple_max_delay` (None: from the latency window)
    max_delay: Option<Duration>,
    s: Mutex<Shared>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("Scheduler")
            .field("max_delay", &self.max_delay)
            .field("registered", &s.objects.len())
            .field("batches", &s.batches)
            .finish()
    }
}

/// An object's registered write: finishing (or dropping) it sends the object's batch.
pub(crate) struct Registration {
    sched: Arc<Scheduler>,
    ono: u64,
    seq: u64,
    start: Instant,
    done: bool,
}

impl Registration {
    /// The write completed: record its latency and send what waited behind it.
    pub(crate) fn finish(mut self) {
        self.done = true;
        let lat = self.start.elapsed();
        self.sched.finish(self.ono, self.seq, Some(lat));
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.done {
            // the writer was cancelled: what waited behind it must not wait for ever
            self.sched.finish(self.ono, self.seq, None);
        }
    }
}

impl Scheduler {
    /// `max_delay_ms`: `rbd_io_scheduler_simple_max_delay` (0: latency-based).
    pub(crate) fn new(max_delay_ms: u64) -> Arc<Self> {
        Arc::new(Scheduler {
            max_delay: (max_delay_ms > 0).then(|| Duration::from_millis(max_delay_ms)),
            s: Mutex::new(Shared::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // a panic while holding the lock leaves consistent maps (no await inside)
        self.s.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Write `bufs` (back to back) at `off` of object `ono`, delayed and merged when a
    /// write to the object is in flight.
    pub(crate) async fn write(
        self: &Arc<Self>,
        st: Arc<State>,
        ono: u64,
        off: u64,
        bufs: Vec<Bytes>,
    ) -> Result<()> {
        let len: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        let delayed = {
            let mut s = self.lock();
            if self.may_delay(&s, ono, len) {
                let (tx, rx) = oneshot::channel();
                match self.try_delay(&mut s, &st, ono, off, len, bufs, Waiter::Chan(tx)) {
                    Ok(()) => Ok(rx),
                    Err((bufs, _)) => Err(bufs),
                }
            } else {
                Err(bufs)
            }
        };
        let bufs = match delayed {
            Ok(rx) => return rx.await.unwrap_or_else(|_| Err(not_sent())),
            Err(bufs) => bufs,
        };
        let reg = self.begin_direct(ono, off, len).await;
        let r = object_write(st, ono, off, len, ObjWrite::Data(bufs)).await;
        reg.finish();
        r
    }

    /// Delay a write-around write if the rules allow: it joins its object's batch and
    /// `done` is called with its outcome, with no task waiting for it. Else the buffers
    /// and `done` come back, to be sent directly ([`Self::write`] would try again).
    pub(crate) fn delay(
        self: &Arc<Self>,
        st: &Arc<State>,
        ono: u64,
        off: u64,
        bufs: Vec<Bytes>,
        done: Done,
    ) -> std::result::Result<(), (Vec<Bytes>, Done)> {
        let len: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        let mut s = self.lock();
        match self.try_delay(&mut s, st, ono, off, len, bufs, Waiter::Call(done)) {
            Ok(()) => Ok(()),
            Err((bufs, Waiter::Call(done))) => Err((bufs, done)),
            Err((_, Waiter::Chan(_))) => unreachable!("try_delay returns the waiter it was given"),
        }
    }

    /// The cheap part of the rules: a write to an object with a registered write, once
    /// the latency window is full (or a fixed delay is set).
    fn may_delay(&self, s: &Shared, ono: u64, len: u64) -> bool {
        len > 0
            && (self.max_delay.is_some() || s.latencies.len() >= LATENCY_WINDOW)
            && s.objects.contains_key(&ono)
    }

    /// Delay the write if the rules allow (`w` is answered with its outcome); else the
    /// buffers and `w` come back.
    #[allow(clippy::too_many_arguments)]
    fn try_delay(
        self: &Arc<Self>,
        s: &mut Shared,
        st: &Arc<State>,
        ono: u64,
        off: u64,
        len: u64,
        bufs: Vec<Bytes>,
        w: Waiter,
    ) -> std::result::Result<(), (Vec<Bytes>, Waiter)> {
        if !self.may_delay(s, ono, len) {
            return Err((bufs, w));
        }
        let delay = self.max_delay.unwrap_or_else(|| {
            // librbd: dispatch_time += LatencyStats::avg() / 2, and avg() is the sum
            s.latencies.iter().sum::<Duration>() / 2
        });
        let next_batch = s.next_batch + 1;
        let Some(obj) = s.objects.get_mut(&ono) else {
            return Err((bufs, w));
        };
        match &mut obj.batch {
            Some(b) => {
                // same image state (librbd compares the snap context's seq; a batch goes
                // out with its first write's state, so requiring the very same state
                // also keeps a refresh, e.g. a parent overlap changed by another client,
                // from applying to writes issued before it)
                if !Arc::ptr_eq(&b.st, st) || b.runs.intersects(off, len) {
                    return Err((bufs, w));
                }
                b.runs.add(off, bufs, len, w);
            }
            None => {
                let mut b = Batch {
                    id: next_batch,
                    st: st.clone(),
                    runs: Runs::default(),
                };
                b.runs.add(off, bufs, len, w);
                obj.batch = Some(b);
                s.next_batch = next_batch;
                s.batches += 1;
                let me = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let b = {
                        let mut s = me.lock();
                        match s.objects.get(&ono) {
                            Some(o) if o.batch.as_ref().is_some_and(|b| b.id == next_batch) => {
                                s.release(ono)
                            }
                            _ => None,
                        }
                    };
                    if let Some(b) = b {
                        me.send(ono, b);
                    }
                });
            }
        }
        Ok(())
    }

    /// Become the object's registered write (for a write that is not delayed, or a
    /// discard / write-zeroes / compare-and-write): the object's batch goes out first,
    /// and if it overlaps `off..off+len`, this waits until those writes completed.
    pub(crate) async fn begin_direct(
        self: &Arc<Self>,
        ono: u64,
        off: u64,
        len: u64,
    ) -> Registration {
        let (batch, waits, seq) = {
            let mut s = self.lock();
            let mut waits = Vec::new();
            let mut b = s.take_batch(ono);
            if let Some(b) = &mut b {
                for (&o, run) in b.runs.0.iter_mut() {
                    if o < off.saturating_add(len) && o + run.len > off {
                        let (tx, rx) = oneshot::channel();
                        run.waiters.push(Waiter::Chan(tx));
                        waits.push(rx);
                    }
                }
            }
            (b, waits, s.register(ono))
        };
        // from here a cancelled caller's registration is undone by the guard's drop
        let mut reg = Registration {
            sched: self.clone(),
            ono,
            seq,
            start: Instant::now(),
            done: false,
        };
        if let Some(b) = batch {
            self.send(ono, b);
        }
        for rx in waits {
            // the overlapped write's outcome is its own writers' to report
            let _ = rx.await;
        }
        reg.start = Instant::now();
        reg
    }

    /// Send the batches of the objects a read touches (librbd: a read intersecting
    /// delayed writes dispatches them). `extents`: (object, offset, length).
    pub(crate) fn release_for_read(self: &Arc<Self>, extents: &[(u64, u64, u64)]) {
        let mut out = Vec::new();
        {
            let mut s = self.lock();
            if s.batches == 0 {
                return;
            }
            for &(ono, off, len) in extents {
                let hit = s
                    .objects
                    .get(&ono)
                    .and_then(|o| o.batch.as_ref())
                    .is_some_and(|b| b.runs.intersects(off, len));
                if hit {
                    if let Some(b) = s.release(ono) {
                        out.push((ono, b));
                    }
                }
            }
        }
        for (ono, b) in out {
            self.send(ono, b);
        }
    }

    /// Whether any object has delayed writes (for the read path's fast check).
    pub(crate) fn has_delayed(&self) -> bool {
        self.lock().batches > 0
    }

    /// Send every batch now (a flush).
    pub(crate) fn release_all(self: &Arc<Self>) {
        let out: Vec<(u64, Batch)> = {
            let mut s = self.lock();
            if s.batches == 0 {
                return;
            }
            let obs: Vec<u64> = s
                .objects
                .iter()
                .filter(|(_, o)| o.batch.is_some())
                .map(|(&k, _)| k)
                .collect();
            obs.into_iter()
                .filter_map(|ono| s.release(ono).map(|b| (ono, b)))
                .collect()
        };
        for (ono, b) in out {
            self.send(ono, b);
        }
    }

    fn finish(self: &Arc<Self>, ono: u64, seq: u64, lat: Option<Duration>) {
        let b = {
            let mut s = self.lock();
            if let Some(l) = lat {
                s.add_latency(l);
            }
            match s.objects.get(&ono) {
                Some(o) if o.seq == seq => match s.take_batch(ono) {
                    // what waited behind this write goes out now and is, in turn, the
                    // object's write in flight
                    Some(b) => Some((b, s.register(ono))),
                    None => {
                        s.objects.remove(&ono);
                        None
                    }
                },
                // a batch already went out (deadline, read, flush) and the entry is gone
                // or belongs to a later write
                _ => None,
            }
        };
        if let Some((b, seq)) = b {
            self.send_registered(ono, b, Some(seq));
        }
    }

    /// Send each run of a batch as one object write and answer its writers.
    fn send(self: &Arc<Self>, ono: u64, b: Batch) {
        self.send_registered(ono, b, None)
    }

    /// [`Self::send`]; with `reg`, the batch is the object's registered write under that
    /// sequence number, finished once all its runs completed.
    fn send_registered(self: &Arc<Self>, ono: u64, b: Batch, reg: Option<u64>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // no runtime (shutting down): the waiters see their write was not sent
            return;
        };
        let me = self.clone();
        rt.spawn(Box::pin(async move {
            let start = Instant::now();
            let mut runs = b.runs.0.into_iter();
            if runs.len() == 1 {
                let (off, run) = runs.next().expect("one run");
                let r = object_write(b.st, ono, off, run.len, ObjWrite::Data(run.bufs)).await;
                answer(run.waiters, r);
            } else {
                // All runs in one request: one WRITE op each, applied by the OSD in one
                // transaction (librbd sends one request per run). Every writer of the
                // batch gets the request's outcome.
                let mut waiters = Vec::new();
                let mut parts = Vec::with_capacity(runs.len());
                let (mut first, mut end) = (u64::MAX, 0);
                for (off, run) in runs {
                    first = first.min(off);
                    end = end.max(off + run.len);
                    waiters.extend(run.waiters);
                    parts.push((off, run.bufs));
                }
                let w = ObjWrite::Runs(parts);
                let r = object_write(b.st, ono, first, end - first, w).await;
                answer(waiters, r);
            }
            match reg {
                Some(seq) => me.finish(ono, seq, Some(start.elapsed())),
                None => me.lock().add_latency(start.elapsed()),
            }
        }));
    }
}

/// Give every writer of a run its outcome: the error itself to the first, to the
/// others a copy with the same errno and message.
fn answer(waiters: Vec<Waiter>, r: Result<()>) {
    let copy = r.as_ref().err().map(|e| (e.to_string(), e.errno()));
    let mut first = Some(r);
    for w in waiters {
        let r = first.take().unwrap_or_else(|| match &copy {
            None => Ok(()),
            Some((m, n)) => Err(RbdError::refused(m.clone(), *n)),
        });
        w.answer(r);
    }
}

fn not_sent() -> RbdError {
    RbdError::refused(
        "the I/O scheduler dropped a delayed write before sending it",
        Errno::ECANCELED,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(r: &mut Runs, off: u64, len: u64) -> oneshot::Receiver<Result<()>> {
        let (tx, rx) = oneshot::channel();
        let data = Bytes::from(vec![(off / 4096) as u8; len as usize]);
        r.add(off, vec![data], len, Waiter::Chan(tx));
        rx
    }

    fn shape(r: &Runs) -> Vec<(u64, u64, usize)> {
        r.0.iter()
            .map(|(&o, m)| {
                assert_eq!(m.len, m.bufs.iter().map(|b| b.len() as u64).sum::<u64>());
                (o, m.len, m.waiters.len())
            })
            .collect()
    }

    #[test]
    fn touching_writes_merge_in_offset_order() {
        let mut r = Runs::default();
        let _a = add(&mut r, 8192, 4096);
        // in front of a run
        let _b = add(&mut r, 4096, 4096);
        // behind it
        let _c = add(&mut r, 12288, 4096);
        // apart
        let _d = add(&mut r, 65536, 512);
        assert_eq!(shape(&r), vec![(4096, 12288, 3), (65536, 512, 1)]);
        // filling the gap joins both sides into one run
        let _e = add(&mut r, 16384, 65536 - 16384);
        assert_eq!(shape(&r), vec![(4096, 65536 + 512 - 4096, 5)]);
        // the buffers are in offset order (each is filled with its offset / 4096)
        let m = &r.0[&4096];
        let firsts: Vec<u8> = m.bufs.iter().map(|b| b[0]).collect();
        assert_eq!(firsts, vec![1, 2, 3, 4, 16]);
        let lens: Vec<usize> = m.bufs.iter().map(|b| b.len()).collect();
        assert_eq!(lens, vec![4096, 4096, 4096, 65536 - 16384, 512]);
    }

    #[test]
    fn intersection_is_by_byte_range() {
        let mut r = Runs::default();
        let _a = add(&mut r, 4096, 4096);
        assert!(r.intersects(4096, 1));
        assert!(r.intersects(8191, 1));
        assert!(r.intersects(0, 4097));
        assert!(r.intersects(0, u64::MAX));
        assert!(!r.intersects(0, 4096));
        assert!(!r.intersects(8192, 4096));
        assert!(!r.intersects(u64::MAX, 1));
    }

    /// A write-around write delayed into a batch has a callback, not a task: it gets
    /// its run's outcome (every writer of a merged run the same errno and message), and
    /// a run dropped unsent drops it uncalled, for the carrier it holds to abandon.
    #[test]
    fn callbacks_get_their_runs_outcome_or_are_dropped_uncalled() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Mutex as StdMutex;
        type Seen = Arc<StdMutex<Vec<(u64, Option<(Errno, String)>)>>>;
        let seen: Seen = Arc::default();
        let dropped = Arc::new(AtomicUsize::new(0));
        struct OnDrop(Arc<AtomicUsize>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let call = |r: &mut Runs, off: u64| {
            let seen = seen.clone();
            let guard = OnDrop(dropped.clone());
            let done: Done = Box::new(move |res: Result<()>| {
                let _keep = guard;
                let out = res.err().map(|e| (e.errno(), e.to_string()));
                seen.lock().unwrap().push((off, out));
            });
            r.add(
                off,
                vec![Bytes::from(vec![0u8; 4096])],
                4096,
                Waiter::Call(done),
            );
        };
        // three touching writes merge into one run; one stands apart
        let mut r = Runs::default();
        for off in [0, 4096, 8192, 65536] {
            call(&mut r, off);
        }
        assert_eq!(shape(&r), vec![(0, 12288, 3), (65536, 4096, 1)]);
        let mut runs = std::mem::take(&mut r.0).into_iter();
        let (_, merged) = runs.next().unwrap();
        answer(
            merged.waiters,
            Err(RbdError::refused("rbd_data.x.0: denied", Errno::EPERM)),
        );
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 3);
            for (i, (off, out)) in seen.iter().enumerate() {
                assert_eq!(*off, i as u64 * 4096);
                let (errno, msg) = out.as_ref().expect("each writer gets the error");
                assert_eq!(*errno, Errno::EPERM);
                assert!(msg.contains("rbd_data.x.0: denied"), "{msg}");
            }
        }
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            3,
            "called callbacks are consumed"
        );
        // the other run is dropped unsent: its callback is dropped, never called
        drop(runs);
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(dropped.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_dropped_registration_frees_the_object() {
        let s = Scheduler::new(60_000);
        let reg = s.begin_direct(7, 0, 4096).await;
        assert_eq!(s.lock().objects.len(), 1);
        drop(reg);
        assert!(s.lock().objects.is_empty());
        // a finished one too, and a later registration is not undone by an earlier one
        let r1 = s.begin_direct(7, 0, 4096).await;
        let r2 = s.begin_direct(7, 4096, 4096).await;
        r1.finish();
        assert_eq!(s.lock().objects.len(), 1);
        r2.finish();
        assert!(s.lock().objects.is_empty());
        assert_eq!(s.lock().latencies.len(), 2);
    }
}
