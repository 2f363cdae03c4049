//! The OSD op client ("objecter").
//!
//! The resend rules live in a sans-IO core (`core.rs`): every in-flight request
//! (`tid → request`), which session it went out on, backoffs, blocklisting, deadlines. This
//! module is its thin tokio driver, the core behind a lock (`Driver`): a caller submits on
//! its own task, each OSD session's task (the `net` module, which only moves bytes) hands
//! it replies and session events on that task, and one small task feeds it OSDMap epochs
//! and the time; whoever fed the core carries out what it asks (open/close sessions,
//! send, complete). Callers hold a cheap [`Objecter`] handle; each request carries a
//! oneshot reply that is matched by tid and attempt, so a late reply to an old attempt is
//! dropped, never delivered twice.
//!
//! Cancellation: a request whose caller timed out or dropped its future is never sent again
//! (the core checks before every resend and drops it within one tick, releasing its
//! in-flight permit), so a write reported as failed cannot land later over a newer one. An
//! attempt already on the wire cannot be recalled (as in librados' `op_cancel`).
//!
//! Requests are resent when an OSDMap epoch moves their PG (primary or acting change,
//! split, pool force-resend, a skipped epoch), when their OSD session resets or the OSD
//! moves to a new address, on EAGAIN, on redirects and when a backoff is lifted.

#[cfg(feature = "bench")]
pub mod bench;
mod core;
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
use messages::{flag, Backoff, OsdOpReply, SnapContext, WatchNotify};
use ops::OsdOp;
use rustc_hash::FxHashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};
use target::ObjectTarget;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

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
        if self.is_exec() {
            f |= flag::EXEC;
        }
        f
    }

    /// Whether the request calls an object class method.
    fn is_exec(&self) -> bool {
        self.ops.iter().any(|o| o.op == ops::code::CALL)
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
    /// The watch lost its registration, so notifies may have been missed (librados' watch
    /// error callback). `errno` is ENOTCONN while the watch is being re-established, or
    /// EBLOCKLISTED for the final event: this client was blocklisted, the watch is over
    /// and the event stream ends after it.
    Disconnected {
        /// Why (librados passes the same value, negated, to its error callback).
        errno: Errno,
    },
}

/// Handle to the objecter. Cheap to clone.
#[derive(Clone)]
pub struct Objecter {
    driver: Arc<Mutex<Driver>>,
    mon: MonClient,
    /// In-flight slots (`objecter_inflight_ops`), and how many there are.
    sem: Arc<Semaphore>,
    slots: usize,
    /// Never sent on: once the last handle is gone the objecter's task sees it closed and
    /// ends, closing the OSD sessions.
    _alive: mpsc::UnboundedSender<Infallible>,
}

impl std::fmt::Debug for Objecter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Objecter")
    }
}

impl Objecter {
    /// Start the objecter on top of a monitor session.
    pub fn start(mon: MonClient) -> Objecter {
        let (alive_tx, alive_rx) = mpsc::unbounded_channel();
        let mut core = core::Core::new(mon.global_id());
        if let Some(a) = mon.my_addr() {
            core.set_my_addr(a);
        }
        core.set_unservable_timeout(mon.config().unservable_timeout);
        let driver = Arc::new_cyclic(|me| {
            Mutex::new(Driver {
                core,
                down: false,
                mon: mon.clone(),
                me: me.clone(),
                conns: FxHashMap::default(),
                watches: FxHashMap::default(),
                notifies: FxHashMap::default(),
            })
        });
        let task = ObjTask {
            driver: driver.clone(),
            maps: mon.osdmap_batches(),
            alive: alive_rx,
        };
        tokio::spawn(task.run());
        let slots = match mon.config().inflight_ops {
            0 => Semaphore::MAX_PERMITS,
            n => n.min(Semaphore::MAX_PERMITS),
        };
        Objecter {
            driver,
            mon,
            sem: Arc::new(Semaphore::new(slots)),
            slots,
            _alive: alive_tx,
        }
    }

    /// The monitor client underneath.
    pub fn mon(&self) -> &MonClient {
        &self.mon
    }

    /// Submit a request and wait for its reply. The reply's overall result is checked: a
    /// negative result becomes [`Error::Server`]; per-op results are in the reply.
    ///
    /// The timeout covers the wait for an in-flight slot too. When it expires, or when this
    /// future is dropped, the request is cancelled: never sent again, its slot released.
    ///
    /// Not an `async fn`: the request is boxed before the future exists, so the future
    /// holds a pointer instead of the request (an `async fn` keeps its arguments for its
    /// whole life, and each layer that moves the request on would keep another copy).
    /// Every object I/O's future embeds this one, and a write-around write's lives in its
    /// task until the OSD answers, thousands at a time.
    pub fn submit(
        &self,
        req: OpRequest,
    ) -> impl std::future::Future<Output = Result<OsdOpReply>> + Send + '_ {
        let req = Box::new(req);
        let timeout = req.timeout.or(self.mon.config().op_timeout);
        async move {
            let pool = req.target.pool;
            let reply = match timeout {
                Some(t) => {
                    // the name is kept only when a timeout may need it for its message
                    let oid = req.target.oid.clone();
                    let deadline = tokio::time::Instant::now() + t;
                    // boxed: a timer entry is large, and most clients set no op timeout
                    Box::pin(tokio::time::timeout_at(
                        deadline,
                        self.submit_inner(req, Some(deadline.into())),
                    ))
                    .await
                    .map_err(|_| {
                        Error::server(
                            format!("{pool}/{oid}: no reply within {t:?}"),
                            Errno::ETIMEDOUT,
                        )
                    })?
                }
                None => self.submit_inner(req, None).await,
            }?;
            if reply.result < 0 {
                // the reply names the object (its oid is ours)
                return Err(Error::server(
                    format!("{pool}/{}", reply.oid),
                    Errno::from_result(reply.result),
                ));
            }
            Ok(reply)
        }
    }

    async fn submit_inner(
        &self,
        req: Box<OpRequest>,
        deadline: Option<Instant>,
    ) -> Result<OsdOpReply> {
        let permit = self
            .sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Shutdown)?;
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            tx,
            _permit: permit,
        };
        {
            // The caller's task places and sends the request itself: no hand-off to
            // another task before it reaches the session.
            let mut d = lock(&self.driver).ok_or(Error::Shutdown)?;
            let now = Instant::now();
            // Stamped on writes and class calls (a class method may write, and may read
            // the stamp: `cls_get_request_time`); a plain read's is zero, as from
            // librados' read operations, and the OSD ignores it. One clock read less per
            // read.
            let mtime = if req.is_write() || req.is_exec() {
                UTime::from_system(SystemTime::now())
            } else {
                UTime::default()
            };
            d.core.submit(req, pending, mtime, deadline, now);
            d.flush();
        }
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Requests the objecter holds right now (sent or waiting), for tests and diagnostics.
    pub fn in_flight(&self) -> usize {
        self.slots - self.sem.available_permits()
    }
}

/// What the driver keeps per caller: the reply channel and the in-flight permit, released
/// when the core drops the request.
struct Pending {
    tx: oneshot::Sender<Result<OsdOpReply>>,
    _permit: OwnedSemaphorePermit,
}

impl core::Waiter for Pending {
    fn is_cancelled(&self) -> bool {
        self.tx.is_closed()
    }
}

impl Objecter {
    /// Route notifications for `cookie` to `tx`.
    pub(crate) fn register_watch(&self, cookie: u64, tx: mpsc::UnboundedSender<WatchEvent>) {
        if let Some(mut d) = lock(&self.driver) {
            d.watches.insert(cookie, tx);
        }
    }

    /// Stop routing notifications for `cookie`.
    pub(crate) fn unregister_watch(&self, cookie: u64) {
        if let Some(mut d) = lock(&self.driver) {
            d.watches.remove(&cookie);
        }
    }

    /// Wait for the NOTIFY_COMPLETE of a notify sent with `cookie`.
    pub(crate) fn register_notify(&self, cookie: u64) -> oneshot::Receiver<Result<Bytes>> {
        let (tx, rx) = oneshot::channel();
        if let Some(mut d) = lock(&self.driver) {
            d.notifies.insert(cookie, tx);
        }
        rx
    }
}

/// The objecter's state and its sessions, shared by everyone who drives the core: a
/// caller submitting (on its own task), a session task with a reply, backoff or session
/// event (on that task), and the objecter's task with OSDMaps and the clock.
///
/// Why a lock and not a task of its own: a 4 KiB op used to cross four tasks (caller,
/// objecter, session, objecter, caller), each crossing a queue push and a poll, and on a
/// multi-thread runtime often a wake-up of the other core. Now it crosses two (caller to
/// session, session to caller); every critical section is short and never awaits. The
/// resend rules stay in the sans-IO core, and each event still reaches it whole and in
/// the order its source saw it.
struct Driver {
    core: core::Core<Pending>,
    /// The objecter's task ended (the last handle or the monitor client is gone): no new
    /// requests, no events.
    down: bool,
    mon: MonClient,
    /// This driver, for the event sinks of the sessions it opens.
    me: Weak<Mutex<Driver>>,
    conns: FxHashMap<u64, ConnHandle>,
    watches: FxHashMap<u64, mpsc::UnboundedSender<WatchEvent>>,
    notifies: FxHashMap<u64, oneshot::Sender<Result<Bytes>>>,
}

/// The driver, unless the objecter is shut down. A poisoned lock (a panic while driving
/// the core, a bug) reads as shut down too, so callers get [`Error::Shutdown`] rather than
/// a second panic.
fn lock(d: &Mutex<Driver>) -> Option<MutexGuard<'_, Driver>> {
    d.lock().ok().filter(|d| !d.down)
}

/// A session task's events go straight into the driver, on the session's task.
struct DriverSink(Weak<Mutex<Driver>>);

impl net::EventSink for DriverSink {
    fn deliver(&self, id: u64, ev: ConnEvent) -> bool {
        let Some(d) = self.0.upgrade() else {
            return false;
        };
        let Some(mut d) = lock(&d) else {
            return false;
        };
        d.handle_conn_event(id, ev);
        d.flush();
        true
    }
}

/// The objecter's own task: OSDMap epochs and the clock (resends, deadlines, backoffs).
struct ObjTask {
    driver: Arc<Mutex<Driver>>,
    maps: mpsc::UnboundedReceiver<Vec<Arc<OsdMap>>>,
    alive: mpsc::UnboundedReceiver<Infallible>,
}

impl ObjTask {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.alive.recv() => break,
                m = self.maps.recv() => match m {
                    Some(maps) => match lock(&self.driver) {
                        Some(mut d) => {
                            d.core.handle_maps(&maps, Instant::now());
                            d.flush();
                        }
                        None => break,
                    },
                    None => break,
                },
                _ = tick.tick() => match lock(&self.driver) {
                    Some(mut d) => {
                        d.core.tick(Instant::now());
                        d.flush();
                    }
                    None => break,
                },
            }
        }
        // Fail whatever still waits (its waiters are dropped: Error::Shutdown) and end
        // the sessions (dropping a handle ends its task).
        if let Ok(mut d) = self.driver.lock() {
            d.down = true;
            let gid = d.mon.global_id();
            d.core = core::Core::new(gid);
            d.conns.clear();
            d.watches.clear();
            d.notifies.clear();
        }
    }
}

impl Driver {
    /// Carry out what the core asked for.
    fn flush(&mut self) {
        while let Some(o) = self.core.poll_output() {
            match o {
                core::Output::Send { conn, msg } => {
                    if let Some(c) = self.conns.get(&conn) {
                        c.send(msg);
                    }
                }
                core::Output::Complete { waiter, result } => {
                    // free the in-flight slot before the caller wakes: a caller that
                    // submits again at once (or reads `in_flight`) must see it released
                    let Pending {
                        tx,
                        _permit: permit,
                    } = waiter;
                    drop(permit);
                    let _ = tx.send(result);
                }
                core::Output::Connect { conn, osd, addr } => self.connect(conn, osd, addr),
                core::Output::Close { conn } => {
                    // Dropping the handle ends the session task.
                    self.conns.remove(&conn);
                }
                core::Output::WantMap => self.mon.feed_osdmap_request(),
            }
        }
    }

    fn connect(&mut self, id: u64, osd: i32, addr: EntityAddr) {
        let Some(sa) = addr.addr else { return };
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
            keepalive_interval: shared.config.osd_keepalive_interval,
            idle_timeout: shared.config.osd_idle_timeout,
            dial: shared.config.dial.clone(),
        };
        debug!(osd, %addr, "opening OSD session");
        let sink = DriverSink(self.me.clone());
        let conn = net::spawn(id, sa, cfg, Box::new(auth), sink, opts);
        self.conns.insert(id, conn);
    }

    fn handle_conn_event(&mut self, id: u64, ev: ConnEvent) {
        match ev {
            ConnEvent::Ready { my_ip, .. } => {
                if let Some(ip) = my_ip {
                    self.core.set_my_addr(EntityAddr {
                        ty: ceph_encoding::EntityAddrType::ANY,
                        nonce: self.mon.nonce(),
                        addr: Some(std::net::SocketAddr::new(ip, 0)),
                        empty_len: 0,
                    });
                }
            }
            ConnEvent::Message(m) => self.handle_message(id, m),
            ConnEvent::Closed(err) => {
                if self.conns.remove(&id).is_some() {
                    warn!(osd = ?self.core.osd_of(id), error = %err, "OSD session closed");
                }
                self.core.handle_conn_closed(id, Instant::now());
            }
        }
    }

    fn handle_message(&mut self, conn: u64, m: Message) {
        match m.header.ty {
            MsgType::OSD_OPREPLY => match OsdOpReply::decode(&m) {
                Ok(r) => self.core.handle_reply(conn, r, Instant::now()),
                Err(e) => warn!(error = %e, "undecodable MOSDOpReply"),
            },
            MsgType::OSD_MAP => self.mon.feed_osdmap(m),
            MsgType::WATCH_NOTIFY => match WatchNotify::decode(&m) {
                Ok(n) => self.handle_watch_notify(n),
                Err(e) => warn!(error = %e, "undecodable MWatchNotify"),
            },
            MsgType::OSD_BACKOFF => match Backoff::decode(&m) {
                Ok(b) => self.core.handle_backoff(conn, b, Instant::now()),
                Err(e) => warn!(error = %e, "undecodable MOSDBackoff"),
            },
            ty => debug!(?ty, "ignoring OSD message"),
        }
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
                    // As librados: the OSD dropped the watch (ceph: src/osdc/Objecter.cc
                    // handle_watch_notify, -ENOTCONN for CEPH_WATCH_EVENT_DISCONNECT).
                    let _ = tx.send(WatchEvent::Disconnected {
                        errno: Errno::ENOTCONN,
                    });
                }
            }
            other => debug!(other, "unknown watch event"),
        }
    }
}
