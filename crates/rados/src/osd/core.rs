//! The objecter's sans-IO core: every in-flight request, which OSD session it went out on,
//! and the rules that decide when it is resent, completed, or dropped.
//!
//! No sockets, no clock, no tokio: inputs are OSDMap epochs (one at a time, in batches as an
//! MOSDMap carries them), op replies, backoffs, session closes and the current time; outputs
//! ([`Output`]) are sessions to open or close, messages to send on them, completions, and
//! "fetch a newer map". The tokio task in `super` only moves these between the core, the
//! session tasks and the callers, so every resend rule is a deterministic unit test
//! (scripted maps and replies, virtual clock): see `sim_tests` below.
//!
//! The rules follow `Objecter::_scan_requests`/`_calc_target`/`handle_osd_backoff`
//! (ceph: src/osdc/Objecter.cc) and the kernel's `calc_target` (net/ceph/osd_client.c).

use super::messages::{backoff_op, flag, Backoff, OsdOpReply, OsdOpRequest, NOSNAP};
use super::target::{acting_of, calc_target, calc_target_with, needs_resend, Hold, Placement};
use super::OpRequest;
use crate::error::{Errno, Error, Result};
use crate::osdmap::{map_flags, pool_flags, OsdMap, PgId};
use ceph_encoding::{features, Decoder, EntityAddr, UTime};
use ceph_msgr2::Message;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, trace, warn};

/// How long a failed OSD session is left alone before we dial it again.
const REDIAL_DELAY: Duration = Duration::from_millis(500);

/// First delay before resending a request the OSD answered EAGAIN; doubles per EAGAIN up
/// to [`EAGAIN_MAX`], so a PG that keeps refusing is not hammered. (The tokio driver ticks
/// every 500 ms, so live the first resend comes within one tick.)
const EAGAIN_FIRST: Duration = Duration::from_millis(50);
const EAGAIN_MAX: Duration = Duration::from_secs(2);
/// Redirects one request may follow. A cache tier redirects once (the resend carries
/// IGNORE_OVERLAY); anything beyond a few hops is a loop, which would otherwise hold the
/// request and its permit forever.
pub(crate) const MAX_REDIRECTS: u32 = 8;

/// What the core keeps for a caller waiting on a request: the driver's reply channel (and
/// its in-flight permit). The core only asks whether the caller still waits.
pub(crate) trait Waiter {
    /// True once the caller gave up (timed out or dropped its future): the request must
    /// then never be (re)sent again (defect 5: a write reported failed must not land later).
    fn is_cancelled(&self) -> bool;
}

/// What the core asks its driver to do, in order.
pub(crate) enum Output<W> {
    /// Open a session to `osd` at `addr`; later `Send`s name it by `conn`.
    Connect {
        conn: u64,
        osd: i32,
        addr: EntityAddr,
    },
    /// Close session `conn` (its requests were requeued).
    Close { conn: u64 },
    /// Send `msg` on session `conn`.
    Send { conn: u64, msg: Message },
    /// A request finished: hand `result` to its waiter.
    Complete {
        waiter: W,
        result: Result<OsdOpReply>,
    },
    /// Ask the monitors for a newer OSDMap.
    WantMap,
}

struct Op<W> {
    req: Box<OpRequest>,
    waiter: W,
    /// Attempt number of the last send (-1: never sent).
    attempt: i32,
    /// Where the last attempt went (or was computed to go while parked).
    placement: Option<Placement>,
    /// Session the current attempt is on; `None` = parked, waiting to be (re)sent.
    conn: Option<u64>,
    mtime: UTime,
    /// Complete with ETIMEDOUT at this instant.
    deadline: Option<Instant>,
    /// Some epoch of the current map batch moved this request.
    dirty: bool,
    /// EAGAIN answers so far, and the instant before which it is not resent.
    eagains: u32,
    /// Redirects followed so far (bounded by [`MAX_REDIRECTS`]).
    redirects: u32,
    not_before: Option<Instant>,
    /// Since when the request has been held because its PG cannot serve it (no primary,
    /// below min_size), and why; cleared when it is sent.
    unservable: Option<(Instant, String)>,
}

struct Session {
    conn: u64,
    addr: EntityAddr,
}

/// An `hobject_t` as far as ordering goes (ceph: src/common/hobject.cc `cmp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HObj {
    pub max: bool,
    pub pool: i64,
    pub hash: u32,
    pub nspace: String,
    pub key: String,
    pub oid: String,
    pub snap: u64,
}

/// The sort key of an hobject: max last, then pool, the bit-reversed hash (the OSD's
/// "bitwise" order), namespace, effective key (locator or name), name, snap.
type HKey<'a> = (bool, i64, u32, &'a str, &'a str, &'a str, u64);

impl HObj {
    fn sort_key(&self) -> HKey<'_> {
        hkey(
            self.max,
            self.pool,
            self.hash,
            &self.nspace,
            &self.key,
            &self.oid,
            self.snap,
        )
    }

    /// Decode an `hobject_t` (v4; ceph: src/common/hobject.cc `hobject_t::encode`).
    pub fn decode(d: &mut Decoder<'_>) -> Result<HObj, ceph_encoding::DecodeError> {
        let (_v, mut h) = d.versioned(4, "hobject_t")?;
        let key = h.string()?;
        let oid = h.string()?;
        let snap = h.u64()?;
        let hash = h.u32()?;
        let max = h.bool()?;
        let nspace = h.string()?;
        let pool = h.i64()?;
        Ok(HObj {
            max,
            pool,
            hash,
            nspace,
            key,
            oid,
            snap,
        })
    }
}

fn hkey<'a>(
    max: bool,
    pool: i64,
    hash: u32,
    nspace: &'a str,
    key: &'a str,
    oid: &'a str,
    snap: u64,
) -> HKey<'a> {
    if max {
        return (true, 0, 0, "", "", "", 0);
    }
    let eff = if key.is_empty() { oid } else { key };
    (false, pool, hash.reverse_bits(), nspace, eff, oid, snap)
}

/// A backoff an OSD asked for on one session: requests in `[begin, end)` of `pgid` wait
/// for the matching UNBLOCK (ceph: src/osdc/Objecter.cc handle_osd_backoff).
struct BackoffEntry {
    conn: u64,
    pgid: PgId,
    id: u64,
    begin: HObj,
    end: HObj,
}

impl BackoffEntry {
    fn covers(&self, k: &HKey<'_>) -> bool {
        let (b, e) = (self.begin.sort_key(), self.end.sort_key());
        (b <= *k && *k < e) || (b == e && *k == b)
    }
}

/// The sort key of the object a request addresses, as placed.
fn op_key<'a>(req: &'a OpRequest, p: &Placement) -> HKey<'a> {
    hkey(
        false,
        p.pool,
        p.hash,
        &req.target.nspace,
        &req.target.key,
        &req.target.oid,
        NOSNAP,
    )
}

/// Whether a write must wait because its pool (or the cluster) is full: writes that respect
/// fullness are paused until the flag clears and then resent (the OSD drops them while
/// full); with FULL_TRY/FULL_FORCE they are sent and the OSD answers EDQUOT/ENOSPC at once.
/// (ceph: src/osdc/Objecter.cc `_calc_target` `respects_full`, `_osdmap_pool_full`.)
fn held_by_full(map: &OsdMap, req: &OpRequest, pool: i64) -> bool {
    let f = req.flags();
    if f & flag::WRITE == 0 || f & (flag::FULL_TRY | flag::FULL_FORCE) != 0 {
        return false;
    }
    map.flags & map_flags::FULL != 0
        || map
            .pools
            .get(&pool)
            .is_some_and(|p| p.has_flag(pool_flags::FULL) || p.has_flag(pool_flags::FULL_QUOTA))
}

/// The objecter state machine. `W` is what the driver keeps per caller.
pub(crate) struct Core<W> {
    map: Option<Arc<OsdMap>>,
    /// CRUSH's answer (acting set, acting primary) per PG in `map`, filled as requests
    /// go out and emptied whenever `map` changes.
    acting_cache: FxHashMap<PgId, (Arc<[i32]>, i32)>,
    /// In tid order, so resends after a map change go out in submission order (writes to
    /// one object must not overtake each other). Boxed: a B-tree shifts its entries on
    /// every insert and removal, and an `Op` is a few hundred bytes (a tenth of the
    /// objecter's instructions per 4 KiB op went to those moves).
    ops: BTreeMap<u64, Box<Op<W>>>,
    /// The tids of `ops` whose `conn` is `None` (parked, or not sent yet), so a send
    /// checks only those for an older request to its object ([`Core::behind_parked`])
    /// instead of every request in flight: under write-around thousands are in flight,
    /// and that scan was a tenth of the client's CPU on 4 KiB writes.
    parked: BTreeSet<u64>,
    sessions: FxHashMap<i32, Session>,
    conn_osd: FxHashMap<u64, i32>,
    next_tid: u64,
    next_conn: u64,
    backoffs: Vec<BackoffEntry>,
    /// OSDs whose session just failed: do not redial before this instant.
    retry_after: FxHashMap<i32, Instant>,
    /// An OSD answered EBLOCKLISTED, or a map listed our address: every request fails
    /// with it from now on.
    blocklisted: bool,
    /// Our address as the cluster sees it (IP:0/nonce), to find ourselves in a map's
    /// blocklist.
    my_addr: Option<EntityAddr>,
    /// Fail a request that no OSD ever received after it waited this long for a PG that
    /// cannot serve it (`None` = wait forever, as librados).
    unservable_timeout: Option<Duration>,
    global_id: u64,
    out: VecDeque<Output<W>>,
}

impl<W: Waiter> Core<W> {
    /// A core for client `global_id`, with no map yet (requests wait for one).
    pub fn new(global_id: u64) -> Self {
        Core {
            map: None,
            acting_cache: FxHashMap::default(),
            ops: BTreeMap::new(),
            parked: BTreeSet::new(),
            sessions: FxHashMap::default(),
            conn_osd: FxHashMap::default(),
            next_tid: 0,
            next_conn: 1,
            backoffs: Vec::new(),
            retry_after: FxHashMap::default(),
            blocklisted: false,
            my_addr: None,
            unservable_timeout: None,
            global_id,
            out: VecDeque::new(),
        }
    }

    /// Next thing for the driver to do.
    pub fn poll_output(&mut self) -> Option<Output<W>> {
        #[cfg(test)]
        self.check_parked();
        self.out.pop_front()
    }

    /// `parked` is exactly the requests without a session (checked in unit and
    /// simulation tests on every output).
    #[cfg(test)]
    fn check_parked(&self) {
        let want: BTreeSet<u64> = self
            .ops
            .iter()
            .filter(|(_, o)| o.conn.is_none())
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(self.parked, want, "the parked index went stale");
    }

    /// Remove request `tid` (finished, failed or dropped).
    fn take_op(&mut self, tid: u64) -> Option<Box<Op<W>>> {
        self.parked.remove(&tid);
        self.ops.remove(&tid)
    }

    /// Requests in flight (sent or parked).
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.ops.len()
    }

    /// Epoch of the newest map seen.
    #[cfg(test)]
    pub fn epoch(&self) -> u32 {
        self.map.as_ref().map(|m| m.epoch).unwrap_or(0)
    }

    /// Whether an OSD told us we are blocklisted.
    #[cfg(test)]
    pub fn is_blocklisted(&self) -> bool {
        self.blocklisted
    }

    /// Our address as the cluster sees it (learned from a session's HELLO). A map whose
    /// blocklist covers it fails every request at once.
    pub fn set_my_addr(&mut self, a: EntityAddr) {
        if self.my_addr != Some(a) {
            debug!(addr = %a, "our address");
            self.my_addr = Some(a);
        }
    }

    /// Bound the wait of never-sent requests on PGs that cannot serve them.
    pub fn set_unservable_timeout(&mut self, t: Option<Duration>) {
        self.unservable_timeout = t;
    }

    /// Which OSD session `conn` is, if it is current.
    pub fn osd_of(&self, conn: u64) -> Option<i32> {
        self.conn_osd.get(&conn).copied()
    }

    /// A new request. `mtime` is stamped on writes; `deadline` bounds the whole wait.
    pub fn submit(
        &mut self,
        req: Box<OpRequest>,
        waiter: W,
        mtime: UTime,
        deadline: Option<Instant>,
        now: Instant,
    ) -> u64 {
        self.next_tid += 1;
        let tid = self.next_tid;
        if self.blocklisted {
            self.out.push_back(Output::Complete {
                waiter,
                result: Err(blocklisted_error()),
            });
            return tid;
        }
        self.ops.insert(
            tid,
            Box::new(Op {
                req,
                waiter,
                attempt: -1,
                placement: None,
                conn: None,
                mtime,
                deadline,
                dirty: false,
                eagains: 0,
                redirects: 0,
                not_before: None,
                unservable: None,
            }),
        );
        self.parked.insert(tid);
        self.send_op(tid, now);
        tid
    }

    /// The maps of one MOSDMap, oldest first. Each epoch is checked against every request
    /// (a primary that changes and changes back within the batch still means a resend: the
    /// old primary discards ops older than its new interval); a gap in epochs (a full map
    /// that skipped some) rechecks every request (Objecter's `skipped_map`). Sessions to
    /// OSDs that went down or moved to a new address are closed and their requests resent.
    pub fn handle_maps(&mut self, maps: &[Arc<OsdMap>], now: Instant) {
        let mut any = false;
        for m in maps {
            let cur = self.map.as_ref().map(|c| c.epoch);
            if cur.is_some_and(|c| m.epoch <= c) {
                continue;
            }
            any = true;
            let skipped = cur.is_some_and(|c| m.epoch > c + 1);
            debug!(
                epoch = m.epoch,
                skipped,
                inflight = self.ops.len(),
                "new OSDMap"
            );
            // Sessions whose OSD is down, gone, or at another address (a restart on a new
            // port): close them and requeue their requests, else those wait forever on a
            // session nobody reads.
            let stale: Vec<i32> = self
                .sessions
                .iter()
                .filter(|(osd, s)| {
                    !m.is_up(**osd) || m.osd_addrs(**osd).and_then(|v| v.msgr2()) != Some(&s.addr)
                })
                .map(|(osd, _)| *osd)
                .collect();
            for osd in stale {
                self.close_session(osd);
            }
            for op in self.ops.values_mut() {
                if op.dirty {
                    continue;
                }
                op.dirty = match (&op.placement, op.conn) {
                    (Some(old), Some(_)) if !skipped => {
                        match calc_target(m, &op.req.target, op.req.pg_seed, op.req.is_write()) {
                            // A write sent before its pool filled up was dropped by the
                            // OSD: park it now, resend when the flag clears.
                            Ok(new) => {
                                needs_resend(old, &new) || held_by_full(m, &op.req, new.pool)
                            }
                            Err(_) => true,
                        }
                    }
                    _ => true,
                };
            }
            self.map = Some(m.clone());
            self.acting_cache.clear();
            // ceph: src/osdc/Objecter.cc handle_osd_map checks is_blocklisted(our addrs)
            // on each new map; the kernel's handle_one_map likewise.
            if !self.blocklisted && self.my_addr.is_some_and(|a| m.is_blocklisted(&a)) {
                warn!(epoch = m.epoch, "this client is blocklisted in the OSDMap");
                self.set_blocklisted();
            }
        }
        if !any || self.blocklisted {
            return;
        }
        let dirty: Vec<u64> = self
            .ops
            .iter()
            .filter(|(_, o)| o.dirty)
            .map(|(t, _)| *t)
            .collect();
        for tid in dirty {
            if let Some(op) = self.ops.get_mut(&tid) {
                op.dirty = false;
            }
            self.send_op(tid, now);
        }
    }

    /// An MOSDOpReply arrived on session `conn`.
    pub fn handle_reply(&mut self, conn: u64, r: OsdOpReply, now: Instant) {
        let Some(op) = self.ops.get(&r.tid) else {
            trace!(tid = r.tid, "reply for unknown tid");
            return;
        };
        if r.attempt != op.attempt || op.conn != Some(conn) {
            trace!(
                tid = r.tid,
                attempt = r.attempt,
                want = op.attempt,
                "stale reply dropped"
            );
            return;
        }
        if r.result == -Errno::EBLOCKLISTED.0 {
            warn!(tid = r.tid, "OSD says this client is blocklisted");
            self.set_blocklisted();
            return;
        }
        if r.result == -Errno::EAGAIN.0 {
            let op = self.ops.get_mut(&r.tid).expect("present");
            let delay = EAGAIN_FIRST
                .saturating_mul(1 << op.eagains.min(16))
                .min(EAGAIN_MAX);
            op.eagains += 1;
            debug!(tid = r.tid, ?delay, "EAGAIN: resending after a delay");
            park(&mut self.parked, r.tid, op);
            op.not_before = Some(now + delay);
            return;
        }
        if let Some((pool, oid)) = r.redirect.clone() {
            let op = self.ops.get_mut(&r.tid).expect("present");
            op.redirects += 1;
            if op.redirects > MAX_REDIRECTS {
                // The redirected attempts were not executed anywhere, so failing is safe.
                warn!(tid = r.tid, pool, %oid, "too many redirects");
                let op = self.take_op(r.tid).expect("present");
                self.out.push_back(Output::Complete {
                    waiter: op.waiter,
                    result: Err(Error::server(
                        format!(
                            "{}: redirected more than {MAX_REDIRECTS} times",
                            op.req.target.oid
                        ),
                        Errno::ELOOP,
                    )),
                });
                return;
            }
            debug!(tid = r.tid, pool, %oid, "redirected");
            op.req.target.pool = pool;
            if !oid.is_empty() {
                op.req.target.oid = oid;
            }
            op.req.extra_flags |= flag::REDIRECTED | flag::IGNORE_OVERLAY;
            self.send_op(r.tid, now);
            return;
        }
        if self.map.as_ref().is_some_and(|m| r.epoch > m.epoch) {
            self.out.push_back(Output::WantMap);
        }
        let op = self.take_op(r.tid).expect("present");
        trace!(
            tid = r.tid,
            attempt = r.attempt,
            result = r.result,
            "op done"
        );
        self.out.push_back(Output::Complete {
            waiter: op.waiter,
            result: Ok(r),
        });
    }

    /// Session `conn` failed. Its requests are parked and go out again once the OSD can be
    /// dialled (after [`REDIAL_DELAY`]) or a new map moves them.
    pub fn handle_conn_closed(&mut self, conn: u64, now: Instant) {
        let Some(osd) = self.conn_osd.remove(&conn) else {
            return;
        };
        if self.sessions.get(&osd).map(|s| s.conn) == Some(conn) {
            self.sessions.remove(&osd);
        }
        self.retry_after.insert(osd, now + REDIAL_DELAY);
        self.backoffs.retain(|b| b.conn != conn);
        for (tid, op) in self.ops.iter_mut() {
            if op.conn == Some(conn) {
                park(&mut self.parked, *tid, op);
            }
        }
        // The OSD may be down: ask whether the map moved on.
        self.out.push_back(Output::WantMap);
    }

    /// An MOSDBackoff arrived on session `conn`.
    pub fn handle_backoff(&mut self, conn: u64, b: Backoff, now: Instant) {
        if !self.conn_osd.contains_key(&conn) {
            return;
        }
        let mut d = Decoder::new(&b.range);
        let (begin, end) = match (HObj::decode(&mut d), HObj::decode(&mut d)) {
            (Ok(x), Ok(y)) => (x, y),
            _ => {
                warn!(pg = %b.pgid, "MOSDBackoff with an undecodable range ignored");
                return;
            }
        };
        match b.op {
            backoff_op::BLOCK => {
                debug!(conn, pg = %b.pgid, id = b.id, "OSD asked us to back off");
                let epoch = self.map.as_ref().map(|m| m.epoch).unwrap_or(0);
                self.backoffs.push(BackoffEntry {
                    conn,
                    pgid: b.pgid,
                    id: b.id,
                    begin,
                    end,
                });
                self.out.push_back(Output::Send {
                    conn,
                    msg: b.ack(epoch),
                });
            }
            backoff_op::UNBLOCK => {
                debug!(conn, pg = %b.pgid, id = b.id, "backoff lifted");
                let Some(i) = self
                    .backoffs
                    .iter()
                    .position(|e| e.conn == conn && e.pgid == b.pgid && e.id == b.id)
                else {
                    return;
                };
                let e = self.backoffs.swap_remove(i);
                // Every request in the range, including those sent before the BLOCK (the
                // OSD dropped them), goes out again.
                let tids: Vec<u64> = self
                    .ops
                    .iter()
                    .filter(|(_, o)| {
                        (o.conn.is_none() || o.conn == Some(conn))
                            && o.placement
                                .as_ref()
                                .is_some_and(|p| p.pgid == e.pgid && e.covers(&op_key(&o.req, p)))
                    })
                    .map(|(t, _)| *t)
                    .collect();
                for t in tids {
                    self.send_op(t, now);
                }
            }
            _ => {}
        }
    }

    /// Periodic work: drop requests whose caller gave up, time out those past their
    /// deadline, and retry parked ones.
    pub fn tick(&mut self, now: Instant) {
        self.retry_after.retain(|_, t| *t > now);
        let mut retry = Vec::new();
        let mut gone = Vec::new();
        let mut unservable = Vec::new();
        for (tid, op) in &self.ops {
            if op.waiter.is_cancelled() || op.deadline.is_some_and(|d| d <= now) {
                gone.push(*tid);
            } else if op.attempt < 0
                && op.unservable.as_ref().is_some_and(|(since, _)| {
                    self.unservable_timeout.is_some_and(|t| now >= *since + t)
                })
            {
                // Never sent: failing it cannot let it land later.
                unservable.push(*tid);
            } else if op.conn.is_none() && op.not_before.is_none_or(|t| t <= now) {
                retry.push(*tid);
            }
        }
        for tid in gone {
            let op = self.take_op(tid).expect("present");
            if !op.waiter.is_cancelled() {
                debug!(tid, "request timed out; cancelled");
                self.out.push_back(Output::Complete {
                    waiter: op.waiter,
                    result: Err(Error::server(
                        format!(
                            "{}/{}: no reply in time",
                            op.req.target.pool, op.req.target.oid
                        ),
                        Errno::ETIMEDOUT,
                    )),
                });
            }
        }
        for tid in unservable {
            let op = self.take_op(tid).expect("present");
            let (since, why) = op.unservable.expect("held");
            warn!(tid, %why, "request failed: its PG cannot serve it");
            self.out.push_back(Output::Complete {
                waiter: op.waiter,
                result: Err(Error::server(
                    format!(
                        "{}/{}: {why}; not served in {:?}",
                        op.req.target.pool,
                        op.req.target.oid,
                        now.duration_since(since)
                    ),
                    Errno::ETIMEDOUT,
                )),
            });
        }
        for tid in retry {
            self.send_op(tid, now);
        }
    }

    fn set_blocklisted(&mut self) {
        self.blocklisted = true;
        let ops = std::mem::take(&mut self.ops);
        self.parked.clear();
        for (_, op) in ops {
            self.out.push_back(Output::Complete {
                waiter: op.waiter,
                result: Err(blocklisted_error()),
            });
        }
        let osds: Vec<i32> = self.sessions.keys().copied().collect();
        for osd in osds {
            self.close_session(osd);
        }
    }

    /// Close the session to `osd` and park its requests (the caller resends them).
    fn close_session(&mut self, osd: i32) {
        let Some(s) = self.sessions.remove(&osd) else {
            return;
        };
        debug!(osd, conn = s.conn, "closing OSD session");
        self.conn_osd.remove(&s.conn);
        self.backoffs.retain(|b| b.conn != s.conn);
        for (tid, op) in self.ops.iter_mut() {
            if op.conn == Some(s.conn) {
                park(&mut self.parked, *tid, op);
                op.dirty = true;
            }
        }
        self.out.push_back(Output::Close { conn: s.conn });
    }

    /// Compute the target of `tid` and send a new attempt if we can; else park it.
    fn send_op(&mut self, tid: u64, now: Instant) {
        let Some(map) = self.map.clone() else { return };
        let Some(op) = self.ops.get_mut(&tid) else {
            return;
        };
        if op.waiter.is_cancelled() {
            // The caller timed out or went away: never send this again.
            trace!(tid, "caller gone; request dropped");
            self.take_op(tid);
            return;
        }
        let cache = &mut self.acting_cache;
        let cached = |pgid| {
            cache
                .entry(pgid)
                .or_insert_with(|| acting_of(&map, pgid))
                .clone()
        };
        let placement = match calc_target_with(
            &map,
            &op.req.target,
            op.req.pg_seed,
            op.req.is_write(),
            cached,
        ) {
            Ok(p) => p,
            Err(Hold::PoolGone) => {
                let op = self.take_op(tid).expect("present");
                self.out.push_back(Output::Complete {
                    result: Err(Error::server(
                        format!("pool {} does not exist", op.req.target.pool),
                        Errno::ENOENT,
                    )),
                    waiter: op.waiter,
                });
                return;
            }
            Err(h) => {
                trace!(tid, ?h, "request held until the map changes");
                let why = match h {
                    Hold::NoPrimary => Some("no OSD is up to serve its PG".to_string()),
                    Hold::BelowMinSize {
                        pgid,
                        acting,
                        min_size,
                    } => Some(format!(
                        "pg {pgid} has {acting} acting OSDs, fewer than the pool's min_size {min_size}"
                    )),
                    _ => None,
                };
                match why {
                    Some(w) if op.unservable.is_none() => {
                        debug!(tid, why = %w, "request waits for a PG that cannot serve it");
                        op.unservable = Some((now, w));
                    }
                    Some(_) => {}
                    None => op.unservable = None,
                }
                op.placement = None;
                park(&mut self.parked, tid, op);
                return;
            }
        };
        op.unservable = None;
        if held_by_full(&map, &op.req, placement.pool) {
            trace!(
                tid,
                pool = placement.pool,
                "write held: pool or cluster full"
            );
            op.placement = Some(placement);
            park(&mut self.parked, tid, op);
            return;
        }
        if self.behind_parked(tid, &map) {
            // Requests to one object go out in submission order (the Objecter resends a
            // session's requests before anything newer): an older one is parked (failed
            // session, EAGAIN delay), so this one waits too; the tick or the next map
            // sends both, in tid order.
            trace!(tid, "waits behind an older parked request to its object");
            let op = self.ops.get_mut(&tid).expect("present");
            op.placement = Some(placement);
            park(&mut self.parked, tid, op);
            return;
        }
        let osd = placement.primary;
        let Some(conn) = self.session_for(osd, &map, now) else {
            let op = self.ops.get_mut(&tid).expect("present");
            op.placement = Some(placement);
            park(&mut self.parked, tid, op);
            return;
        };
        let op = self.ops.get_mut(&tid).expect("present");
        if !self.backoffs.is_empty() {
            let k = op_key(&op.req, &placement);
            if self
                .backoffs
                .iter()
                .any(|b| b.conn == conn && b.pgid == placement.pgid && b.covers(&k))
            {
                trace!(tid, "backed off");
                op.placement = Some(placement);
                park(&mut self.parked, tid, op);
                return;
            }
        }
        op.unservable = None;
        op.attempt += 1;
        let mut flags = op.req.flags();
        if op.attempt > 0 {
            flags |= flag::RETRY;
        }
        let msg = OsdOpRequest {
            tid,
            pgid: placement.pgid,
            shard: placement.shard,
            hash: placement.hash,
            epoch: map.epoch,
            flags,
            global_id: self.global_id,
            mtime: op.mtime,
            pool: placement.pool,
            key: &op.req.target.key,
            nspace: &op.req.target.nspace,
            oid: &op.req.target.oid,
            ops: &op.req.ops,
            snapid: op.req.snapid,
            snapc: &op.req.snapc,
            attempt: op.attempt,
            features: features::CEPH_FEATURES_ALL,
        }
        .encode();
        trace!(tid, osd, pg = %placement.pgid, attempt = op.attempt, oid = %op.req.target.oid, "send op");
        op.placement = Some(placement);
        op.conn = Some(conn);
        self.parked.remove(&tid);
        op.dirty = false;
        self.out.push_back(Output::Send { conn, msg });
    }

    /// Whether an older request to the same object is parked (waiting to be resent), so
    /// `tid` must not go out before it. Writes held by a full pool do not count: reads
    /// and FULL_TRY writes pass them on purpose (see [`held_by_full`]), as in librados.
    fn behind_parked(&self, tid: u64, map: &OsdMap) -> bool {
        let Some(me) = self.ops.get(&tid) else {
            return false;
        };
        let t = &me.req.target;
        self.parked.range(..tid).any(|p| {
            let Some(o) = self.ops.get(p) else {
                return false;
            };
            o.req.target == *t
                && !o.waiter.is_cancelled()
                && !o
                    .placement
                    .as_ref()
                    .is_some_and(|p| held_by_full(map, &o.req, p.pool))
        })
    }

    /// The session to `osd`, opening one if needed.
    fn session_for(&mut self, osd: i32, map: &OsdMap, now: Instant) -> Option<u64> {
        let addr = map.osd_addrs(osd).and_then(|v| v.msgr2()).copied()?;
        if let Some(s) = self.sessions.get(&osd) {
            if s.addr == addr {
                return Some(s.conn);
            }
            self.close_session(osd);
        }
        if self.retry_after.get(&osd).is_some_and(|t| now < *t) {
            return None;
        }
        addr.addr?;
        let conn = self.next_conn;
        self.next_conn += 1;
        self.sessions.insert(osd, Session { conn, addr });
        self.conn_osd.insert(conn, osd);
        self.out.push_back(Output::Connect { conn, osd, addr });
        Some(conn)
    }
}

/// Take `op` (request `tid`) off its session: it waits to be (re)sent, and the parked
/// index says so.
fn park<W>(parked: &mut BTreeSet<u64>, tid: u64, op: &mut Op<W>) {
    op.conn = None;
    parked.insert(tid);
}

fn blocklisted_error() -> Error {
    Error::server("this client is blocklisted", Errno::EBLOCKLISTED)
}

#[cfg(test)]
#[path = "sim_tests.rs"]
mod sim_tests;
