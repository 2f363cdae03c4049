//! The OSD op client ("objecter").
//!
//! One task owns every in-flight request (`tid → request`), the OSD sessions, and the
//! watch registrations; one task per OSD session only moves bytes (the `net` module).
//! Callers hold a cheap [`Objecter`] handle; each request carries a oneshot reply that is
//! matched by tid and attempt, so a late reply to an old attempt is dropped, never
//! delivered twice. Dropping a request's future leaves it in flight and discards the reply.
//!
//! Requests are resent when a new OSDMap moves their PG (primary or acting change, split,
//! pool force-resend), when their OSD session resets, on EAGAIN, and on redirects. An OSD
//! that dies does not hang callers: its session fails, requests wait for the map that
//! marks it down and go to the new primary; a per-op timeout bounds the wait if set.

pub mod messages;
pub mod ops;
pub mod target;

use crate::auth::{random_u64, ServiceAuth};
use crate::error::{Errno, Error, Result};
use crate::mon::MonClient;
use crate::net::{self, ConnEvent, ConnHandle, DriverOpts};
use crate::osdmap::OsdMap;
use bytes::Bytes;
use ceph_encoding::{features, EntityAddr, EntityType, UTime};
use ceph_msgr2::{ConnectionConfig, FrameLimits, Message, MsgType};
use messages::{flag, Backoff, OsdOpReply, OsdOpRequest, SnapContext, WatchNotify};
use ops::OsdOp;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use target::{calc_target, needs_resend, Hold, ObjectTarget, Placement};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, trace, warn};

/// Most requests in flight at once (librados `objecter_inflight_ops`).
const MAX_INFLIGHT_OPS: usize = 1024;

/// A request as the caller builds it.
#[derive(Debug, Clone)]
pub struct OpRequest {
    /// What object.
    pub target: ObjectTarget,
    /// The ops, executed in order (atomically for writes).
    pub ops: Vec<OsdOp>,
    /// Snapshot to read (`NOSNAP` for the head; `SNAPDIR` for LIST_SNAPS).
    pub snapid: u64,
    /// Snap context for writes.
    pub snapc: SnapContext,
    /// Extra request flags (READ/WRITE are derived from the ops).
    pub extra_flags: u32,
    /// Give up after this long (ETIMEDOUT). `None` = the client's default.
    pub timeout: Option<Duration>,
    /// Address a PG directly (PG ops such as listing) instead of hashing the object name.
    pub pg_seed: Option<u32>,
}

impl OpRequest {
    /// A request on the head of `target`.
    pub fn new(target: ObjectTarget, ops: Vec<OsdOp>) -> Self {
        OpRequest {
            target,
            ops,
            snapid: messages::NOSNAP,
            snapc: SnapContext::default(),
            extra_flags: 0,
            timeout: None,
            pg_seed: None,
        }
    }

    fn is_write(&self) -> bool {
        self.ops.iter().any(|o| o.is_write())
    }

    fn flags(&self) -> u32 {
        let mut f = self.extra_flags;
        if self.ops.iter().any(|o| o.is_read()) {
            f |= flag::READ;
        }
        if self.is_write() {
            f |= flag::WRITE | flag::ONDISK;
        }
        if self.ops.iter().any(|o| o.op == ops::code::CALL) {
            f |= flag::EXEC;
        }
        f
    }
}

/// An event delivered to a watcher.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// Someone notified the object. Ack it with `notify_ack(notify_id, cookie, reply)`.
    Notify {
        /// Notify id.
        notify_id: u64,
        /// Our watch cookie.
        cookie: u64,
        /// Who notified (global id).
        notifier_gid: u64,
        /// Payload.
        payload: Bytes,
    },
    /// The watch was disconnected by the OSD; it is being re-established.
    Disconnected,
}

enum ObjCmd {
    Submit(
        Box<OpRequest>,
        oneshot::Sender<Result<OsdOpReply>>,
        OwnedSemaphorePermit,
    ),
    RegisterWatch(u64, mpsc::UnboundedSender<WatchEvent>),
    UnregisterWatch(u64),
    RegisterNotify(u64, oneshot::Sender<Result<Bytes>>),
}

/// Handle to the objecter task. Cheap to clone.
#[derive(Clone)]
pub struct Objecter {
    tx: mpsc::UnboundedSender<ObjCmd>,
    mon: MonClient,
    sem: Arc<Semaphore>,
}

impl std::fmt::Debug for Objecter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Objecter")
    }
}

impl Objecter {
    /// Start the objecter on top of a monitor session.
    pub fn start(mon: MonClient) -> Objecter {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let task = ObjTask {
            mon: mon.clone(),
            map: mon.osdmap(),
            map_rx: mon.osdmap_watch(),
            rx,
            ev_tx,
            ev_rx,
            sessions: HashMap::new(),
            conn_osd: HashMap::new(),
            ops: HashMap::new(),
            next_tid: 0,
            next_conn: 1,
            watches: HashMap::new(),
            notifies: HashMap::new(),
            backoffs: HashSet::new(),
            retry_after: HashMap::new(),
        };
        tokio::spawn(task.run());
        Objecter {
            tx,
            mon,
            sem: Arc::new(Semaphore::new(MAX_INFLIGHT_OPS)),
        }
    }

    /// The monitor client underneath.
    pub fn mon(&self) -> &MonClient {
        &self.mon
    }

    /// Submit a request and wait for its reply. The reply's overall result is checked: a
    /// negative result becomes [`Error::Server`]; per-op results are in the reply.
    pub async fn submit(&self, req: OpRequest) -> Result<OsdOpReply> {
        let timeout = req.timeout.or(self.mon.config().op_timeout);
        let what = format!("{}/{}", req.target.pool, req.target.oid);
        let permit = self
            .sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Shutdown)?;
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(ObjCmd::Submit(Box::new(req), tx, permit))
            .map_err(|_| Error::Shutdown)?;
        let reply = match timeout {
            Some(t) => tokio::time::timeout(t, rx).await.map_err(|_| {
                Error::server(format!("{what}: no reply within {t:?}"), Errno::ETIMEDOUT)
            })?,
            None => rx.await,
        };
        let reply = reply.map_err(|_| Error::Shutdown)??;
        if reply.result < 0 {
            return Err(Error::server(what, Errno::from_result(reply.result)));
        }
        Ok(reply)
    }

    /// Route notifications for `cookie` to `tx`.
    pub(crate) fn register_watch(&self, cookie: u64, tx: mpsc::UnboundedSender<WatchEvent>) {
        let _ = self.tx.send(ObjCmd::RegisterWatch(cookie, tx));
    }

    /// Stop routing notifications for `cookie`.
    pub(crate) fn unregister_watch(&self, cookie: u64) {
        let _ = self.tx.send(ObjCmd::UnregisterWatch(cookie));
    }

    /// Wait for the NOTIFY_COMPLETE of a notify sent with `cookie`.
    pub(crate) fn register_notify(&self, cookie: u64) -> oneshot::Receiver<Result<Bytes>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(ObjCmd::RegisterNotify(cookie, tx));
        rx
    }
}

struct InFlight {
    req: Box<OpRequest>,
    reply: oneshot::Sender<Result<OsdOpReply>>,
    _permit: OwnedSemaphorePermit,
    attempt: i32,
    placement: Option<Placement>,
    /// Session (connection id) the current attempt went out on.
    conn: Option<u64>,
    mtime: UTime,
}

struct OsdSession {
    conn: ConnHandle,
    addr: EntityAddr,
}

struct ObjTask {
    mon: MonClient,
    map: Option<Arc<OsdMap>>,
    map_rx: tokio::sync::watch::Receiver<Option<Arc<OsdMap>>>,
    rx: mpsc::UnboundedReceiver<ObjCmd>,
    ev_tx: net::EventTx,
    ev_rx: mpsc::UnboundedReceiver<(u64, ConnEvent)>,
    sessions: HashMap<i32, OsdSession>,
    conn_osd: HashMap<u64, i32>,
    ops: HashMap<u64, InFlight>,
    next_tid: u64,
    next_conn: u64,
    watches: HashMap<u64, mpsc::UnboundedSender<WatchEvent>>,
    notifies: HashMap<u64, oneshot::Sender<Result<Bytes>>>,
    /// (osd, pgid) pairs an OSD asked us to back off from.
    backoffs: HashSet<(i32, crate::osdmap::PgId)>,
    /// OSDs whose session just failed: do not redial before this instant.
    retry_after: HashMap<i32, Instant>,
}

impl ObjTask {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(c) => self.handle_cmd(c),
                    None => return,
                },
                Some((id, ev)) = self.ev_rx.recv() => self.handle_conn_event(id, ev),
                r = self.map_rx.changed() => {
                    if r.is_err() { return; }
                    let m = self.map_rx.borrow_and_update().clone();
                    if m.is_some() {
                        self.map = m;
                        self.rescan();
                    }
                }
                _ = tick.tick() => self.tick(),
            }
        }
    }

    fn handle_cmd(&mut self, c: ObjCmd) {
        match c {
            ObjCmd::Submit(req, reply, permit) => {
                self.next_tid += 1;
                let tid = self.next_tid;
                let op = InFlight {
                    req,
                    reply,
                    _permit: permit,
                    attempt: -1,
                    placement: None,
                    conn: None,
                    mtime: UTime::from_system(SystemTime::now()),
                };
                self.ops.insert(tid, op);
                self.send_op(tid);
            }
            ObjCmd::RegisterWatch(c, tx) => {
                self.watches.insert(c, tx);
            }
            ObjCmd::UnregisterWatch(c) => {
                self.watches.remove(&c);
            }
            ObjCmd::RegisterNotify(c, tx) => {
                self.notifies.insert(c, tx);
            }
        }
    }

    /// Compute the target of `tid` and send a new attempt if we can.
    fn send_op(&mut self, tid: u64) {
        let Some(map) = self.map.clone() else { return };
        let Some(op) = self.ops.get_mut(&tid) else {
            return;
        };
        let is_write = op.req.is_write();
        let placement = match calc_target(&map, &op.req.target, op.req.pg_seed, is_write) {
            Ok(p) => p,
            Err(Hold::PoolGone) => {
                let op = self.ops.remove(&tid).expect("present");
                let _ = op.reply.send(Err(Error::server(
                    format!("pool {} does not exist", op.req.target.pool),
                    Errno::ENOENT,
                )));
                return;
            }
            Err(h) => {
                trace!(tid, ?h, "request held until the map changes");
                op.placement = None;
                op.conn = None;
                return;
            }
        };
        let osd = placement.primary;
        if self.backoffs.contains(&(osd, placement.pgid)) {
            op.placement = Some(placement);
            op.conn = None;
            return;
        }
        let global_id = self.mon.global_id();
        let Some(conn_id) = self.session_for(osd, &map) else {
            let op = self.ops.get_mut(&tid).expect("present");
            op.placement = Some(placement);
            op.conn = None;
            return;
        };
        let op = self.ops.get_mut(&tid).expect("present");
        op.attempt += 1;
        let mut flags = op.req.flags();
        if op.attempt > 0 {
            flags |= flag::RETRY;
        }
        let msg = OsdOpRequest {
            tid,
            pgid: placement.pgid,
            shard: -1,
            hash: placement.hash,
            epoch: map.epoch,
            flags,
            global_id,
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
        trace!(tid, osd, pg = %placement.pgid, attempt = op.attempt, "send op");
        op.placement = Some(placement);
        op.conn = Some(conn_id);
        if let Some(s) = self.sessions.get(&osd) {
            s.conn.send(msg);
        }
    }

    /// The connection id of the session to `osd`, opening one if needed.
    fn session_for(&mut self, osd: i32, map: &OsdMap) -> Option<u64> {
        let addr = map.osd_addrs(osd).and_then(|v| v.msgr2().copied())?;
        if let Some(s) = self.sessions.get(&osd) {
            if s.addr == addr {
                return Some(s.conn.id);
            }
            // The OSD restarted at a new address: drop the old session.
            let old = self.sessions.remove(&osd).expect("present");
            self.conn_osd.remove(&old.conn.id);
        }
        if let Some(t) = self.retry_after.get(&osd) {
            if Instant::now() < *t {
                return None;
            }
        }
        let sa = addr.addr?;
        let id = self.next_conn;
        self.next_conn += 1;
        let shared = &self.mon.shared;
        let cfg = ConnectionConfig {
            entity_type: EntityType::CLIENT,
            peer_addr: addr,
            nonce: shared.nonce,
            global_id: self.mon.global_id(),
            global_seq: self.mon.next_global_seq(),
            client_cookie: random_u64() | 1,
            features_supported: features::CEPH_FEATURES_ALL,
            features_required: 0,
            modes: shared.config.osd_modes.clone(),
            lossy: true,
            limits: FrameLimits::default(),
        };
        let auth = ServiceAuth {
            shared: shared.auth.clone(),
            service: EntityType::OSD,
            authorizer: None,
        };
        let opts = DriverOpts {
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
        };
        debug!(osd, %addr, "opening OSD session");
        let conn = net::spawn(id, sa, cfg, Box::new(auth), self.ev_tx.clone(), opts);
        self.sessions.insert(osd, OsdSession { conn, addr });
        self.conn_osd.insert(id, osd);
        Some(id)
    }

    /// A new map: resend whatever it moved, and whatever was waiting for it.
    fn rescan(&mut self) {
        let Some(map) = self.map.clone() else { return };
        debug!(
            epoch = map.epoch,
            inflight = self.ops.len(),
            "rescanning requests for new map"
        );
        let tids: Vec<u64> = self.ops.keys().copied().collect();
        for tid in tids {
            let op = &self.ops[&tid];
            let resend = match (&op.placement, op.conn) {
                (Some(old), Some(_)) => {
                    match calc_target(&map, &op.req.target, op.req.pg_seed, op.req.is_write()) {
                        Ok(new) => needs_resend(old, &new),
                        Err(_) => true,
                    }
                }
                _ => true,
            };
            if resend {
                self.send_op(tid);
            }
        }
        // Sessions to OSDs that are no longer up are closed.
        let down: Vec<i32> = self
            .sessions
            .keys()
            .copied()
            .filter(|o| !map.is_up(*o))
            .collect();
        for osd in down {
            if let Some(s) = self.sessions.remove(&osd) {
                self.conn_osd.remove(&s.conn.id);
            }
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        self.retry_after.retain(|_, t| *t > now);
        // Requests parked because their OSD could not be dialled yet.
        let parked: Vec<u64> = self
            .ops
            .iter()
            .filter(|(_, o)| o.conn.is_none())
            .map(|(t, _)| *t)
            .collect();
        for tid in parked {
            self.send_op(tid);
        }
    }

    fn handle_conn_event(&mut self, id: u64, ev: ConnEvent) {
        match ev {
            ConnEvent::Ready { .. } => {}
            ConnEvent::Message(m) => self.handle_message(id, m),
            ConnEvent::Closed(err) => {
                let Some(osd) = self.conn_osd.remove(&id) else {
                    return;
                };
                warn!(osd, error = %err, "OSD session closed");
                if self.sessions.get(&osd).map(|s| s.conn.id) == Some(id) {
                    self.sessions.remove(&osd);
                }
                self.retry_after
                    .insert(osd, Instant::now() + Duration::from_millis(500));
                self.backoffs.retain(|(o, _)| *o != osd);
                let tids: Vec<u64> = self
                    .ops
                    .iter()
                    .filter(|(_, o)| o.conn == Some(id))
                    .map(|(t, _)| *t)
                    .collect();
                for tid in tids {
                    if let Some(o) = self.ops.get_mut(&tid) {
                        o.conn = None;
                    }
                }
                // Ask the monitors whether the map moved on (the OSD may be down).
                self.mon.feed_osdmap_request();
            }
        }
    }

    fn handle_message(&mut self, conn: u64, m: Message) {
        match m.header.ty {
            MsgType::OSD_OPREPLY => match OsdOpReply::decode(&m) {
                Ok(r) => self.handle_reply(conn, r),
                Err(e) => warn!(error = %e, "undecodable MOSDOpReply"),
            },
            MsgType::OSD_MAP => self.mon.feed_osdmap(m),
            MsgType::WATCH_NOTIFY => match WatchNotify::decode(&m) {
                Ok(n) => self.handle_watch_notify(n),
                Err(e) => warn!(error = %e, "undecodable MWatchNotify"),
            },
            MsgType::OSD_BACKOFF => match Backoff::decode(&m) {
                Ok(b) => self.handle_backoff(conn, b),
                Err(e) => warn!(error = %e, "undecodable MOSDBackoff"),
            },
            ty => debug!(?ty, "ignoring OSD message"),
        }
    }

    fn handle_reply(&mut self, conn: u64, r: OsdOpReply) {
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
        if r.result == -Errno::EAGAIN.0 {
            debug!(tid = r.tid, "EAGAIN: resending");
            self.send_op(r.tid);
            return;
        }
        if let Some((pool, oid)) = r.redirect.clone() {
            let op = self.ops.get_mut(&r.tid).expect("present");
            debug!(tid = r.tid, pool, %oid, "redirected");
            op.req.target.pool = pool;
            if !oid.is_empty() {
                op.req.target.oid = oid;
            }
            op.req.extra_flags |= flag::REDIRECTED | flag::IGNORE_OVERLAY;
            self.send_op(r.tid);
            return;
        }
        if let Some(map) = &self.map {
            if r.epoch > map.epoch {
                self.mon.feed_osdmap_request();
            }
        }
        let op = self.ops.remove(&r.tid).expect("present");
        let _ = op.reply.send(Ok(r));
    }

    fn handle_watch_notify(&mut self, n: WatchNotify) {
        use messages::watch_event::*;
        debug!(
            opcode = n.opcode,
            cookie = n.cookie,
            notify_id = n.notify_id,
            len = n.payload.len(),
            rc = n.return_code,
            "watch/notify event"
        );
        match n.opcode {
            NOTIFY => {
                if let Some(tx) = self.watches.get(&n.cookie) {
                    let _ = tx.send(WatchEvent::Notify {
                        notify_id: n.notify_id,
                        cookie: n.cookie,
                        notifier_gid: n.notifier_gid,
                        payload: n.payload,
                    });
                }
            }
            NOTIFY_COMPLETE => {
                if let Some(tx) = self.notifies.remove(&n.cookie) {
                    let r = if n.return_code < 0 {
                        Err(Error::server("notify", Errno::from_result(n.return_code)))
                    } else {
                        // The OSD puts the ack map in the data segment (`set_data`), not in
                        // the payload field (ceph: src/osd/Watch.cc Notify::maybe_complete_notify).
                        Ok(if n.data.is_empty() { n.payload } else { n.data })
                    };
                    let _ = tx.send(r);
                }
            }
            DISCONNECT => {
                if let Some(tx) = self.watches.get(&n.cookie) {
                    let _ = tx.send(WatchEvent::Disconnected);
                }
            }
            other => debug!(other, "unknown watch event"),
        }
    }

    fn handle_backoff(&mut self, conn: u64, b: Backoff) {
        let Some(&osd) = self.conn_osd.get(&conn) else {
            return;
        };
        let epoch = self.map.as_ref().map(|m| m.epoch).unwrap_or(0);
        match b.op {
            messages::backoff_op::BLOCK => {
                debug!(osd, pg = %b.pgid, "OSD asked us to back off");
                self.backoffs.insert((osd, b.pgid));
                if let Some(s) = self.sessions.get(&osd) {
                    s.conn.send(b.ack(epoch));
                }
            }
            messages::backoff_op::UNBLOCK => {
                debug!(osd, pg = %b.pgid, "backoff lifted");
                self.backoffs.remove(&(osd, b.pgid));
                let tids: Vec<u64> = self
                    .ops
                    .iter()
                    .filter(|(_, o)| {
                        o.conn.is_none() && o.placement.as_ref().map(|p| p.pgid) == Some(b.pgid)
                    })
                    .map(|(t, _)| *t)
                    .collect();
                for t in tids {
                    self.send_op(t);
                }
            }
            _ => {}
        }
    }
}
