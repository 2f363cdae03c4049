//! The monitor client: hunting, authentication, subscriptions (MonMap, OSDMap), commands,
//! pool operations, and cephx ticket renewal.
//!
//! One task owns the monitor session ([`MonClient`] handles are cheap clones that talk to
//! it over a channel). Hunting opens up to three monitor connections in parallel, as
//! librados does, keeps the first that authenticates and drops the others. When the
//! session dies the task hunts again, resubscribes from the epochs it has, and resends
//! every command still waiting for an answer.

pub mod messages;
pub mod monmap;

use crate::auth::{random_u32, random_u64, AuthState, MonAuth, MonAuthSlot, SharedAuth};
use crate::config::{ClientConfig, MonAddr};
use crate::error::{Errno, Error, Result};
use crate::net::{self, ConnEvent, ConnHandle, DriverOpts};
use crate::osdmap::{Incremental, OsdMap};
use bytes::Bytes;
use ceph_cephx::CephxClient;
use ceph_encoding::{features, EntityAddr, EntityType, Uuid};
use ceph_msgr2::{ConnectionConfig, FrameLimits, Message, MsgType};
use messages::{OsdMapMsg, SubItem};
use monmap::MonMap;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

/// CEPH_AUTH ticket service bits.
const SERVICE_AUTH: u32 = 0x20;
const SERVICE_MON: u32 = 0x01;
const SERVICE_OSD: u32 = 0x04;
const SERVICE_MGR: u32 = 0x10;

/// Output of a monitor command.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    /// Status string (`rs`).
    pub status: String,
    /// Output bytes (JSON when `format` was json).
    pub data: Bytes,
}

enum MonCmd {
    Command {
        cmd: Vec<String>,
        input: Bytes,
        reply: oneshot::Sender<Result<CommandOutput>>,
    },
    GetVersion {
        what: String,
        reply: VersionReply,
    },
    PoolOp {
        pool: u32,
        op: u32,
        snapid: u64,
        name: String,
        reply: PoolOpReplyTx,
    },
    OsdMap(Message),
    RenewSubscription,
    /// Deliver every OSDMap epoch from now on (the objecter's resend rules need each one).
    SubscribeMaps(mpsc::UnboundedSender<Vec<Arc<OsdMap>>>),
}

/// State shared by every handle and the task.
pub(crate) struct MonShared {
    pub config: ClientConfig,
    pub auth: SharedAuth,
    pub nonce: u32,
    pub global_seq: AtomicU64,
    pub osdmap: watch::Receiver<Option<Arc<OsdMap>>>,
    pub monmap: watch::Receiver<Option<Arc<MonMap>>>,
    /// The monitor of the current session.
    pub current: Mutex<Option<SocketAddr>>,
    /// Our IP as the monitor saw it (msgr2 HELLO), once a session is up.
    pub my_ip: Mutex<Option<std::net::IpAddr>>,
}

/// A handle to the monitor session. Clone freely; the session lives while any handle does.
#[derive(Clone)]
pub struct MonClient {
    pub(crate) shared: Arc<MonShared>,
    tx: mpsc::UnboundedSender<MonCmd>,
}

impl std::fmt::Debug for MonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonClient")
            .field("name", &self.shared.config.name)
            .finish()
    }
}

impl MonClient {
    /// Connect and authenticate to a monitor, then wait for the first MonMap and OSDMap.
    /// Fails within `config.mount_timeout` with [`Error::NoMonitor`] naming the addresses
    /// tried, or at once with [`Error::Auth`] when a monitor refuses our key.
    pub async fn connect(config: ClientConfig) -> Result<MonClient> {
        let key = config.resolve_key()?;
        let cephx = key.map(|k| CephxClient::new(config.name.clone(), k));
        let auth = Arc::new(Mutex::new(AuthState {
            name: config.name.clone(),
            cephx,
            global_id: 0,
        }));
        let (osd_tx, osd_rx) = watch::channel(None);
        let (mon_tx, mon_rx) = watch::channel(None);
        let shared = Arc::new(MonShared {
            config: config.clone(),
            auth,
            nonce: random_u32(),
            global_seq: AtomicU64::new(0),
            osdmap: osd_rx,
            monmap: mon_rx,
            current: Mutex::new(None),
            my_ip: Mutex::new(None),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let mut subs = BTreeMap::new();
        subs.insert("monmap".to_string(), SubItem { start: 0, flags: 0 });
        subs.insert("osdmap".to_string(), SubItem { start: 0, flags: 0 });
        let task = MonTask {
            shared: shared.clone(),
            rx,
            ev_tx,
            ev_rx,
            session: None,
            hunting: HashMap::new(),
            next_conn_id: 1,
            next_tid: 1,
            commands: BTreeMap::new(),
            versions: BTreeMap::new(),
            pool_ops: BTreeMap::new(),
            subs,
            osdmap: None,
            osdmap_tx: osd_tx,
            map_subs: Vec::new(),
            monmap_tx: mon_tx,
            fsid: None,
            ready: Some(ready_tx),
            deadline: Instant::now() + config.mount_timeout,
            tried: Vec::new(),
            last_error: String::new(),
            renewing: None,
            next_hunt: Instant::now(),
            hunt_index: 0,
            asked_full: false,
            hunt_backoff: HUNT_BACKOFF_MIN,
            fresh_auth: false,
            refused: None,
            lost_since: None,
        };
        tokio::spawn(task.run());
        let client = MonClient { shared, tx };
        match tokio::time::timeout(config.mount_timeout + Duration::from_secs(1), ready_rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e),
            Ok(Err(_)) => return Err(Error::Shutdown),
            Err(_) => {
                return Err(Error::NoMonitor {
                    tried: config
                        .mon_hosts
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    timeout_secs: config.mount_timeout.as_secs(),
                    last_error: "timed out".into(),
                })
            }
        }
        // The first maps arrive right after the subscription; wait for both.
        client.wait_for_osdmap(1).await?;
        Ok(client)
    }

    /// The client configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.shared.config
    }

    /// Our global id (`client.<gid>`).
    pub fn global_id(&self) -> u64 {
        self.shared.auth.lock().expect("auth").global_id
    }

    /// Our instance nonce (part of our address; identifies us to watchers and blocklists).
    pub fn nonce(&self) -> u32 {
        self.shared.nonce
    }

    /// Our address as the cluster knows it (`IP:0/nonce`, the form `listwatchers` shows and
    /// `ceph osd blocklist add` takes), once a monitor told us our IP.
    pub fn my_addr(&self) -> Option<ceph_encoding::EntityAddr> {
        let ip = (*self.shared.my_ip.lock().expect("my_ip"))?;
        Some(ceph_encoding::EntityAddr {
            ty: ceph_encoding::EntityAddrType::ANY,
            nonce: self.shared.nonce,
            addr: Some(SocketAddr::new(ip, 0)),
            empty_len: 0,
        })
    }

    /// The address of the monitor we are talking to, if a session is up.
    pub fn current_mon(&self) -> Option<SocketAddr> {
        *self.shared.current.lock().expect("current")
    }

    /// The latest OSDMap, if one arrived.
    pub fn osdmap(&self) -> Option<Arc<OsdMap>> {
        self.shared.osdmap.borrow().clone()
    }

    /// A receiver that sees every new OSDMap.
    pub fn osdmap_watch(&self) -> watch::Receiver<Option<Arc<OsdMap>>> {
        self.shared.osdmap.clone()
    }

    /// The latest MonMap.
    pub fn monmap(&self) -> Option<Arc<MonMap>> {
        self.shared.monmap.borrow().clone()
    }

    /// Wait until we hold an OSDMap with at least `epoch`, asking the monitor for newer maps.
    pub async fn wait_for_osdmap(&self, epoch: u32) -> Result<Arc<OsdMap>> {
        let mut rx = self.shared.osdmap.clone();
        let timeout = self.shared.config.mount_timeout;
        let fut = async {
            let mut asked = false;
            loop {
                if let Some(m) = rx.borrow_and_update().clone() {
                    if m.epoch >= epoch {
                        return Ok(m);
                    }
                }
                if !asked {
                    let _ = self.tx.send(MonCmd::RenewSubscription);
                    asked = true;
                }
                if rx.changed().await.is_err() {
                    return Err(Error::Shutdown);
                }
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| Error::Timeout(format!("waiting for osdmap epoch {epoch}")))?
    }

    /// Make sure we have the newest OSDMap the monitors know (librados
    /// `wait_for_latest_osdmap`): ask for the newest epoch, then wait for it.
    pub async fn wait_for_latest_osdmap(&self) -> Result<Arc<OsdMap>> {
        let (newest, _) = self.get_version("osdmap").await?;
        self.wait_for_osdmap(newest as u32).await
    }

    /// Run a monitor command (a JSON object string, as `ceph` sends) with optional input.
    /// A negative result becomes [`Error::Server`] carrying the monitor's status text.
    pub async fn command(&self, cmd_json: &str, input: Bytes) -> Result<CommandOutput> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(MonCmd::Command {
                cmd: vec![cmd_json.to_string()],
                input,
                reply,
            })
            .map_err(|_| Error::Shutdown)?;
        let fut = async { rx.await.map_err(|_| Error::Shutdown)? };
        match self.shared.config.mon_op_timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .map_err(|_| Error::Timeout("monitor command".into()))?,
            None => fut.await,
        }
    }

    /// Newest and oldest epoch of a map (`osdmap`, `monmap`, ...). Bounded by
    /// `mon_op_timeout` (else the mount timeout): with every monitor gone it fails with
    /// [`Error::Timeout`] instead of hanging.
    pub async fn get_version(&self, what: &str) -> Result<(u64, u64)> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(MonCmd::GetVersion {
                what: what.to_string(),
                reply,
            })
            .map_err(|_| Error::Shutdown)?;
        tokio::time::timeout(self.op_timeout(), rx)
            .await
            .map_err(|_| Error::Timeout(format!("get_version {what}")))?
            .map_err(|_| Error::Shutdown)?
    }

    /// The bound on a monitor request: `mon_op_timeout`, else the mount timeout. A request
    /// abandoned by it is dropped by the monitor task, never resent later.
    fn op_timeout(&self) -> Duration {
        self.shared
            .config
            .mon_op_timeout
            .unwrap_or(self.shared.config.mount_timeout)
    }

    /// A pool operation (MPoolOp); returns the OSDMap epoch of the change and response
    /// data. The map with that epoch is awaited before returning.
    pub async fn pool_op(
        &self,
        pool: u32,
        op: u32,
        snapid: u64,
        name: &str,
    ) -> Result<Option<Vec<u8>>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(MonCmd::PoolOp {
                pool,
                op,
                snapid,
                name: name.to_string(),
                reply,
            })
            .map_err(|_| Error::Shutdown)?;
        let (epoch, data) = tokio::time::timeout(self.op_timeout(), rx)
            .await
            .map_err(|_| Error::Timeout(format!("pool op {op} on pool {pool}")))?
            .map_err(|_| Error::Shutdown)??;
        self.wait_for_osdmap(epoch).await?;
        Ok(data)
    }

    /// Allocate a self-managed snapshot id in `pool`.
    pub async fn create_selfmanaged_snap(&self, pool: u32) -> Result<u64> {
        let data = self
            .pool_op(pool, messages::pool_op::CREATE_UNMANAGED_SNAP, 0, "")
            .await?;
        let d = data.ok_or_else(|| Error::InvalidArgument("monitor returned no snap id".into()))?;
        let mut dec = ceph_encoding::Decoder::new(&d);
        Ok(dec.u64()?)
    }

    /// Release a self-managed snapshot id (the OSDs then trim its clones).
    pub async fn remove_selfmanaged_snap(&self, pool: u32, snapid: u64) -> Result<()> {
        self.pool_op(pool, messages::pool_op::DELETE_UNMANAGED_SNAP, snapid, "")
            .await?;
        Ok(())
    }

    /// Hand an MOSDMap received from an OSD to the map holder.
    pub(crate) fn feed_osdmap(&self, m: Message) {
        let _ = self.tx.send(MonCmd::OsdMap(m));
    }

    /// Ask the monitor for OSDMaps newer than ours (after an OSD failure or a reply from a
    /// newer epoch).
    pub(crate) fn feed_osdmap_request(&self) {
        let _ = self.tx.send(MonCmd::RenewSubscription);
    }

    /// Every OSDMap epoch from now on, one batch per MOSDMap (the current map first). The
    /// objecter needs each epoch, not only the last of a batch: a primary that goes A→B→A
    /// inside one MOSDMap still means a resend (ceph: src/osdc/Objecter.cc handle_osd_map
    /// scans requests once per epoch).
    pub(crate) fn osdmap_batches(&self) -> mpsc::UnboundedReceiver<Vec<Arc<OsdMap>>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.tx.send(MonCmd::SubscribeMaps(tx));
        rx
    }

    /// Next global_seq for a new connection.
    pub(crate) fn next_global_seq(&self) -> u64 {
        self.shared.global_seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}

type VersionReply = oneshot::Sender<Result<(u64, u64)>>;
type PoolOpReplyTx = oneshot::Sender<Result<(u32, Option<Vec<u8>>)>>;

struct PendingCommand {
    msg: Message,
    reply: oneshot::Sender<Result<CommandOutput>>,
    /// When the caller asked: with no `mon_op_timeout` a command may wait on a live
    /// monitor as long as it takes, but only `mount_timeout` for a monitor to talk to.
    queued: Instant,
}

struct Session {
    conn: ConnHandle,
    label: String,
}

struct Attempt {
    conn: ConnHandle,
    slot: Arc<Mutex<MonAuthSlot>>,
    label: String,
    addr: SocketAddr,
}

struct MonTask {
    shared: Arc<MonShared>,
    rx: mpsc::UnboundedReceiver<MonCmd>,
    ev_tx: net::EventTx,
    ev_rx: mpsc::UnboundedReceiver<(u64, ConnEvent)>,
    session: Option<Session>,
    hunting: HashMap<u64, Attempt>,
    next_conn_id: u64,
    next_tid: u64,
    commands: BTreeMap<u64, PendingCommand>,
    versions: BTreeMap<u64, (Message, VersionReply)>,
    pool_ops: BTreeMap<u64, (Message, PoolOpReplyTx)>,
    subs: BTreeMap<String, SubItem>,
    osdmap: Option<Arc<OsdMap>>,
    osdmap_tx: watch::Sender<Option<Arc<OsdMap>>>,
    /// Who gets every epoch of each MOSDMap batch (the objecter).
    map_subs: Vec<mpsc::UnboundedSender<Vec<Arc<OsdMap>>>>,
    monmap_tx: watch::Sender<Option<Arc<MonMap>>>,
    fsid: Option<Uuid>,
    ready: Option<oneshot::Sender<Result<()>>>,
    deadline: Instant,
    tried: Vec<String>,
    last_error: String,
    renewing: Option<Instant>,
    next_hunt: Instant,
    hunt_index: usize,
    /// We asked for a full OSDMap after an incremental failed to apply.
    asked_full: bool,
    /// Pause after a hunting round in which every monitor failed; doubles per round.
    hunt_backoff: Duration,
    /// The next hunt authenticates from the key alone (no tickets, no global id to
    /// reclaim): set when the monitor refused a ticket renewal or a reclaim.
    fresh_auth: bool,
    /// The monitors refused even a fresh authentication after we had been connected:
    /// every pending and later request fails with this instead of hunting forever.
    refused: Option<(String, Option<Errno>)>,
    /// When the last monitor session was lost (None while one is up).
    lost_since: Option<Instant>,
}

const HUNT_BACKOFF_MIN: Duration = Duration::from_millis(500);
const HUNT_BACKOFF_MAX: Duration = Duration::from_secs(8);

impl MonTask {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(c) => self.handle_cmd(c),
                    None => { debug!("monitor client dropped; closing session"); return; }
                },
                Some((id, ev)) = self.ev_rx.recv() => self.handle_conn_event(id, ev).await,
                _ = tick.tick() => self.tick().await,
            }
        }
    }

    fn send(&self, m: Message) {
        if let Some(s) = &self.session {
            s.conn.send(m);
        }
    }

    fn tid(&mut self) -> u64 {
        self.next_tid += 1;
        self.next_tid
    }

    fn handle_cmd(&mut self, c: MonCmd) {
        match c {
            MonCmd::Command { cmd, input, reply } => {
                let tid = self.tid();
                let msg = messages::mon_command(tid, self.fsid.unwrap_or_default(), &cmd, input);
                self.send(msg.clone());
                self.commands.insert(
                    tid,
                    PendingCommand {
                        msg,
                        reply,
                        queued: Instant::now(),
                    },
                );
            }
            MonCmd::GetVersion { what, reply } => {
                let tid = self.tid();
                let msg = messages::mon_get_version(tid, &what);
                self.send(msg.clone());
                self.versions.insert(tid, (msg, reply));
            }
            MonCmd::PoolOp {
                pool,
                op,
                snapid,
                name,
                reply,
            } => {
                let tid = self.tid();
                let epoch = self.osdmap.as_ref().map(|m| m.epoch as u64).unwrap_or(0);
                let msg = messages::pool_op_msg(
                    tid,
                    self.fsid.unwrap_or_default(),
                    pool,
                    op,
                    snapid,
                    &name,
                    epoch,
                );
                self.send(msg.clone());
                self.pool_ops.insert(tid, (msg, reply));
            }
            MonCmd::OsdMap(m) => self.handle_osdmap(&m),
            MonCmd::RenewSubscription => self.subscribe(),
            MonCmd::SubscribeMaps(tx) => {
                if let Some(m) = &self.osdmap {
                    let _ = tx.send(vec![m.clone()]);
                }
                self.map_subs.push(tx);
            }
        }
        // After a final refusal a request would wait for a session that never comes.
        self.fail_pending();
    }

    fn subscribe(&mut self) {
        if let Some(m) = &self.osdmap {
            self.subs.insert(
                "osdmap".into(),
                SubItem {
                    start: m.epoch as u64 + 1,
                    flags: 0,
                },
            );
        }
        self.send(messages::mon_subscribe(&self.subs));
    }

    /// Addresses to hunt across: the MonMap's v2 addresses once we have one, else the
    /// configured ones.
    async fn candidates(&mut self) -> Vec<(String, SocketAddr, EntityAddr)> {
        let mut out = Vec::new();
        if let Some(mm) = self.monmap_tx.borrow().clone() {
            for m in &mm.mons {
                if let Some(a) = m.addrs.msgr2() {
                    if let Some(sa) = a.addr {
                        out.push((format!("mon.{} {}", m.name, sa), sa, *a));
                    }
                }
            }
            if !out.is_empty() {
                return out;
            }
        }
        for MonAddr { host, port } in self.shared.config.mon_hosts.clone() {
            // 6789 is the msgr1 port most guides show; monitors speak msgr2 on 3300.
            let port2 = if port == 6789 { 3300 } else { port };
            let label = if port == 6789 {
                format!("{host}:3300 (given as {host}:6789, the msgr1 port; msgr2 uses 3300)")
            } else {
                format!("{host}:{port}")
            };
            match tokio::net::lookup_host((host.as_str(), port2)).await {
                Ok(addrs) => {
                    for sa in addrs {
                        out.push((label.clone(), sa, EntityAddr::msgr2(sa)));
                    }
                }
                Err(e) => self.last_error = format!("cannot resolve {host}: {e}"),
            }
        }
        out
    }

    async fn hunt(&mut self) {
        if self.session.is_some()
            || !self.hunting.is_empty()
            || self.refused.is_some()
            || Instant::now() < self.next_hunt
        {
            return;
        }
        let cands = self.candidates().await;
        if cands.is_empty() {
            self.next_hunt = Instant::now() + Duration::from_secs(1);
            return;
        }
        let n = cands.len().min(3);
        let template = {
            let a = self.shared.auth.lock().expect("auth");
            if self.fresh_auth {
                let cephx = a.cephx.clone().map(|mut c| {
                    c.clear_tickets();
                    c.reset_session();
                    c.set_global_id(0);
                    c
                });
                (a.name.clone(), cephx, 0)
            } else {
                (a.name.clone(), a.cephx.clone(), a.global_id)
            }
        };
        for i in 0..n {
            let (label, sa, ea) = cands[(self.hunt_index + i) % cands.len()].clone();
            let id = self.next_conn_id;
            self.next_conn_id += 1;
            let slot = Arc::new(Mutex::new(MonAuthSlot {
                name: template.0.clone(),
                cephx: template.1.clone(),
                global_id: template.2,
                error: None,
            }));
            let cfg = ConnectionConfig {
                entity_type: EntityType::CLIENT,
                peer_addr: ea,
                nonce: self.shared.nonce,
                global_id: template.2,
                global_seq: self.shared.global_seq.fetch_add(1, Ordering::Relaxed) + 1,
                client_cookie: random_u64() | 1,
                features_supported: features::CEPH_FEATURES_ALL,
                features_required: 0,
                modes: self.shared.config.mon_modes.clone(),
                lossy: true,
                limits: FrameLimits::default(),
            };
            let opts = DriverOpts {
                handshake_timeout: self
                    .shared
                    .config
                    .mount_timeout
                    .min(Duration::from_secs(10)),
                keepalive_interval: self.shared.config.mon_ping_interval,
                idle_timeout: self.shared.config.mon_ping_timeout,
                dial: self.shared.config.dial.clone(),
            };
            debug!(%label, "hunting monitor");
            if !self.tried.contains(&label) {
                self.tried.push(label.clone());
            }
            let conn = net::spawn(
                id,
                sa,
                cfg,
                Box::new(MonAuth { slot: slot.clone() }),
                self.ev_tx.clone(),
                opts,
            );
            self.hunting.insert(
                id,
                Attempt {
                    conn,
                    slot,
                    label,
                    addr: sa,
                },
            );
        }
        self.hunt_index = (self.hunt_index + n) % cands.len().max(1);
    }

    async fn tick(&mut self) {
        let now = Instant::now();
        if let Some(tx) = self.ready.take() {
            if now > self.deadline {
                let _ = tx.send(Err(self.no_monitor()));
                self.hunting.clear();
                return;
            }
            self.ready = Some(tx);
        }
        self.hunt().await;
        self.maybe_renew_tickets(now);
        self.fail_commands_without_monitor(now);
        // Forget requests whose caller timed out or went away.
        self.commands.retain(|_, c| !c.reply.is_closed());
        self.versions.retain(|_, v| !v.1.is_closed());
        self.pool_ops.retain(|_, p| !p.1.is_closed());
    }

    /// Fail the commands that waited `mount_timeout` without a monitor session (since
    /// they were asked, or since the session was lost, whichever is later) with
    /// [`Error::NoMonitor`], like the first connection does. Without this a command with
    /// no `mon_op_timeout` (librados' default) hangs for as long as every monitor is
    /// unreachable. A failed command is forgotten: it is never sent once a monitor is
    /// back, so a command reported as failed does not run later.
    fn fail_commands_without_monitor(&mut self, now: Instant) {
        let Some(lost) = self.lost_since else {
            return;
        };
        if self.session.is_some() {
            return;
        }
        let limit = self.shared.config.mount_timeout;
        let expired: Vec<u64> = self
            .commands
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(lost.max(c.queued)) >= limit)
            .map(|(&tid, _)| tid)
            .collect();
        for tid in expired {
            if let Some(c) = self.commands.remove(&tid) {
                warn!(
                    tid,
                    "monitor command failed: no monitor session for {limit:?}"
                );
                let _ = c.reply.send(Err(self.no_monitor()));
            }
        }
    }

    /// No monitor answered within `mount_timeout`: what was tried and the last failure.
    fn no_monitor(&self) -> Error {
        Error::NoMonitor {
            tried: self.tried.join(", "),
            timeout_secs: self.shared.config.mount_timeout.as_secs(),
            last_error: if self.last_error.is_empty() {
                "no answer".into()
            } else {
                self.last_error.clone()
            },
        }
    }

    fn maybe_renew_tickets(&mut self, now: Instant) {
        if self.session.is_none() {
            return;
        }
        if let Some(t) = self.renewing {
            if now.duration_since(t) < Duration::from_secs(10) {
                return;
            }
        }
        let req = {
            let a = self.shared.auth.lock().expect("auth");
            let Some(c) = a.cephx.as_ref() else { return };
            let need =
                c.needs_renewal(now) & (SERVICE_AUTH | SERVICE_MON | SERVICE_OSD | SERVICE_MGR);
            if need == 0 {
                return;
            }
            debug!(need, "renewing cephx tickets");
            // The AUTH ticket itself is renewed with another GET_AUTH_SESSION_KEY that
            // presents the current one (and brings fresh service tickets along); service
            // tickets alone with GET_PRINCIPAL_SESSION_KEY.
            let r = if need & SERVICE_AUTH != 0 {
                c.build_auth_renewal_request(random_u64(), SERVICE_MON | SERVICE_OSD | SERVICE_MGR)
            } else {
                c.build_service_ticket_request(need, random_u64(), a.global_id)
            };
            match r {
                Ok(r) => r,
                Err(e) => {
                    warn!(error = %e, "cannot build ticket renewal request");
                    return;
                }
            }
        };
        let epoch = self
            .monmap_tx
            .borrow()
            .as_ref()
            .map(|m| m.epoch)
            .unwrap_or(0);
        self.send(messages::mauth(&req, epoch));
        self.renewing = Some(now);
    }

    async fn handle_conn_event(&mut self, id: u64, ev: ConnEvent) {
        let is_session = self.session.as_ref().map(|s| s.conn.id) == Some(id);
        match ev {
            ConnEvent::Ready { global_id, my_ip } => {
                let Some(att) = self.hunting.remove(&id) else {
                    return;
                };
                if let Some(ip) = my_ip {
                    *self.shared.my_ip.lock().expect("my_ip") = Some(ip);
                }
                // Winner: adopt its tickets and global id; drop the other attempts.
                self.hunting.clear();
                {
                    let slot = att.slot.lock().expect("slot");
                    let mut a = self.shared.auth.lock().expect("auth");
                    a.cephx = slot.cephx.clone();
                    a.global_id = global_id;
                }
                info!(mon = %att.label, global_id, "monitor session established");
                *self.shared.current.lock().expect("current") = Some(att.addr);
                self.session = Some(Session {
                    conn: att.conn,
                    label: att.label,
                });
                self.on_session_ready();
            }
            ConnEvent::Message(m) if is_session => self.handle_message(m),
            ConnEvent::Message(_) => {}
            ConnEvent::Closed(err) => {
                if is_session {
                    let label = self.session.take().map(|s| s.label).unwrap_or_default();
                    *self.shared.current.lock().expect("current") = None;
                    self.lost_since = Some(Instant::now());
                    warn!(mon = %label, error = %err, "monitor session lost; hunting");
                    self.last_error = format!("{label}: {err}");
                    self.next_hunt = Instant::now();
                    return;
                }
                let Some(att) = self.hunting.remove(&id) else {
                    return;
                };
                self.last_error = format!("{}: {err}", att.label);
                debug!(mon = %att.label, error = %err, "monitor attempt failed");
                let cephx_err = att.slot.lock().expect("slot").error.take();
                let auth_refused = cephx_err.is_some()
                    || matches!(err, Error::Msgr(ceph_msgr2::Error::AuthBadMethod { .. }))
                    || matches!(err, Error::Msgr(ceph_msgr2::Error::Auth(_)));
                if auth_refused && self.ready.is_some() {
                    // A monitor answered and refused our credentials: no point hunting on.
                    let msg = match &cephx_err {
                        Some(e) => format!("{} as {}: {e}", att.label, self.shared.config.name),
                        None => format!("{} as {}: {err}", att.label, self.shared.config.name),
                    };
                    let e = match cephx_err {
                        Some(c) => match c.errno() {
                            Some(n) => Error::server(msg, Errno(n.0)),
                            None => Error::Auth(msg),
                        },
                        None => Error::Auth(msg),
                    };
                    if let Some(tx) = self.ready.take() {
                        let _ = tx.send(Err(e));
                    }
                    self.hunting.clear();
                    return;
                }
                if auth_refused {
                    self.hunting.clear();
                    if !self.fresh_auth {
                        // Refused reclaiming our global id with the tickets we hold (they
                        // expired, or the monitor no longer trusts them): authenticate
                        // from the key as a new client once before giving up.
                        warn!(mon = %att.label, error = %err, "re-authentication refused; trying a fresh one");
                        self.fresh_auth = true;
                        self.next_hunt = Instant::now();
                        return;
                    }
                    // Even a fresh authentication is refused (the key was revoked or
                    // changed): hunting on would only repeat that. Fail what waits.
                    let errno = cephx_err
                        .as_ref()
                        .and_then(|c| c.errno())
                        .map(|n| Errno(n.0));
                    let msg = format!(
                        "{} refused to authenticate {}: {}",
                        att.label,
                        self.shared.config.name,
                        cephx_err.map_or_else(|| err.to_string(), |c| c.to_string())
                    );
                    warn!(%msg, "giving up on the monitors");
                    self.refused = Some((msg, errno));
                    self.fail_pending();
                    return;
                }
                if self.hunting.is_empty() {
                    // Every monitor of this round failed: back off exponentially (ceph:
                    // src/mon/MonClient.cc _un_backoff / mon_client_hunt_interval_backoff).
                    self.next_hunt = Instant::now() + self.hunt_backoff;
                    self.hunt_backoff = (self.hunt_backoff * 2).min(HUNT_BACKOFF_MAX);
                }
            }
        }
    }

    fn on_session_ready(&mut self) {
        if let Some(tx) = self.ready.take() {
            let _ = tx.send(Ok(()));
        }
        self.renewing = None;
        self.lost_since = None;
        self.hunt_backoff = HUNT_BACKOFF_MIN;
        self.fresh_auth = false;
        self.subscribe();
        // Requests whose caller gave up (timeout, dropped future) are forgotten, never
        // resent to the new monitor: a command reported as timed out must not run later.
        self.commands.retain(|_, c| !c.reply.is_closed());
        self.versions.retain(|_, v| !v.1.is_closed());
        self.pool_ops.retain(|_, p| !p.1.is_closed());
        let cmds: Vec<Message> = self.commands.values().map(|c| c.msg.clone()).collect();
        let vers: Vec<Message> = self.versions.values().map(|c| c.0.clone()).collect();
        let pops: Vec<Message> = self.pool_ops.values().map(|c| c.0.clone()).collect();
        for m in cmds.into_iter().chain(vers).chain(pops) {
            self.send(m);
        }
    }

    fn handle_message(&mut self, m: Message) {
        let ty = m.header.ty;
        let r = match ty {
            MsgType::MON_MAP => self.handle_monmap(&m),
            MsgType::OSD_MAP => {
                self.handle_osdmap(&m);
                Ok(())
            }
            MsgType::MON_COMMAND_ACK => self.handle_command_ack(&m),
            MsgType::MON_GET_VERSION_REPLY => {
                messages::decode_get_version_reply(&m.front).map(|(h, newest, oldest)| {
                    if let Some((_, tx)) = self.versions.remove(&h) {
                        let _ = tx.send(Ok((newest, oldest)));
                    }
                })
            }
            MsgType::POOLOP_REPLY => messages::PoolOpReply::decode(&m.front).map(|r| {
                if let Some((_, tx)) = self.pool_ops.remove(&m.header.tid) {
                    let res = if r.code < 0 {
                        Err(Error::server("pool op", Errno::from_result(r.code)))
                    } else {
                        Ok((r.epoch, r.data))
                    };
                    let _ = tx.send(res);
                }
            }),
            MsgType::AUTH_REPLY => {
                self.handle_auth_reply(&m);
                Ok(())
            }
            _ => {
                debug!(?ty, "ignoring monitor message");
                Ok(())
            }
        };
        if let Err(e) = r {
            warn!(?ty, error = %e, "undecodable monitor message ignored");
        }
    }

    fn handle_monmap(
        &mut self,
        m: &Message,
    ) -> std::result::Result<(), ceph_encoding::DecodeError> {
        let raw = messages::decode_mon_map_msg(&m.front)?;
        let mm = MonMap::decode(&raw)?;
        debug!(epoch = mm.epoch, mons = mm.mons.len(), "monmap");
        self.fsid = Some(mm.fsid);
        self.subs.insert(
            "monmap".into(),
            SubItem {
                start: mm.epoch as u64 + 1,
                flags: 0,
            },
        );
        self.monmap_tx.send_replace(Some(Arc::new(mm)));
        Ok(())
    }

    fn handle_command_ack(
        &mut self,
        m: &Message,
    ) -> std::result::Result<(), ceph_encoding::DecodeError> {
        let ack = messages::MonCommandAck::decode(&m.front)?;
        if let Some(p) = self.commands.remove(&m.header.tid) {
            let res = if ack.r < 0 {
                Err(Error::server(
                    if ack.rs.is_empty() {
                        "monitor command".to_string()
                    } else {
                        ack.rs
                    },
                    Errno::from_result(ack.r),
                ))
            } else {
                Ok(CommandOutput {
                    status: ack.rs,
                    data: m.data.to_bytes(),
                })
            };
            let _ = p.reply.send(res);
        }
        Ok(())
    }

    fn handle_auth_reply(&mut self, m: &Message) {
        self.renewing = None;
        let r = match messages::AuthReply::decode(&m.front) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "bad MAuthReply");
                return;
            }
        };
        if r.result < 0 {
            warn!(result = r.result, msg = %r.msg, "cephx ticket renewal refused; authenticating afresh");
            self.restart_with_fresh_auth();
            return;
        }
        let res = {
            let mut a = self.shared.auth.lock().expect("auth");
            match a.cephx.as_mut() {
                Some(c) => c.handle_service_ticket_reply(&r.payload, Instant::now()),
                None => Ok(()),
            }
        };
        match res {
            Ok(()) => debug!("cephx service tickets renewed"),
            Err(e) => {
                warn!(error = %e, "cephx ticket renewal reply rejected; authenticating afresh");
                self.restart_with_fresh_auth();
            }
        }
    }

    /// The monitor will not renew our tickets: retrying the renewal every tick would only
    /// be refused again until the tickets expire and every OSD session with them. Drop the
    /// session and hunt with a full authentication from the key instead (pending requests
    /// are resent on the new session).
    fn restart_with_fresh_auth(&mut self) {
        if let Some(s) = self.session.take() {
            *self.shared.current.lock().expect("current") = None;
            self.lost_since = Some(Instant::now());
            self.last_error = format!("{}: ticket renewal refused", s.label);
        }
        self.fresh_auth = true;
        self.next_hunt = Instant::now();
    }

    /// Fail every waiting request with the refusal, and the ones to come (see `refused`).
    fn fail_pending(&mut self) {
        let Some((msg, errno)) = self.refused.clone() else {
            return;
        };
        let mk = || match errno {
            Some(n) => Error::server(msg.clone(), n),
            None => Error::Auth(msg.clone()),
        };
        for (_, c) in std::mem::take(&mut self.commands) {
            let _ = c.reply.send(Err(mk()));
        }
        for (_, (_, tx)) in std::mem::take(&mut self.versions) {
            let _ = tx.send(Err(mk()));
        }
        for (_, (_, tx)) in std::mem::take(&mut self.pool_ops) {
            let _ = tx.send(Err(mk()));
        }
    }

    fn handle_osdmap(&mut self, m: &Message) {
        let msg = match OsdMapMsg::decode(&m.front) {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "undecodable MOSDMap");
                return;
            }
        };
        if let Some(f) = self.fsid {
            if f != msg.fsid {
                warn!("MOSDMap for another cluster ignored");
                return;
            }
        }
        let mut cur: Option<OsdMap> = self.osdmap.as_deref().cloned();
        let mut changed = false;
        if cur.is_none() {
            if let Some((_, b)) = msg.fulls.iter().next_back() {
                match OsdMap::decode(b) {
                    Ok(map) => {
                        cur = Some(map);
                        changed = true;
                    }
                    Err(e) => warn!(error = %e, "undecodable full OSDMap"),
                }
            }
        }
        let Some(mut map) = cur else {
            // Nothing usable: ask for the latest full map.
            self.subs
                .insert("osdmap".into(), SubItem { start: 0, flags: 0 });
            self.send(messages::mon_subscribe(&self.subs));
            return;
        };
        let last = msg
            .incrementals
            .keys()
            .chain(msg.fulls.keys())
            .copied()
            .max()
            .unwrap_or(0);
        let mut failed = false;
        // Each epoch this batch passes through, for the objecter (only kept when someone
        // listens: cloning a map per epoch is not free).
        let keep_steps = !self.map_subs.is_empty();
        let mut steps: Vec<Arc<OsdMap>> = Vec::new();
        let mut e = map.epoch + 1;
        while e <= last {
            if let Some(b) = msg.incrementals.get(&e) {
                match Incremental::decode(b)
                    .map_err(|e| e.to_string())
                    .and_then(|inc| map.apply_incremental(&inc).map_err(|e| e.to_string()))
                {
                    Ok(()) => {
                        changed = true;
                        if keep_steps {
                            steps.push(Arc::new(map.clone()));
                        }
                    }
                    Err(err) => {
                        warn!(epoch = e, error = %err, "cannot apply incremental OSDMap");
                        failed = true;
                        break;
                    }
                }
            } else if let Some(b) = msg.fulls.get(&e) {
                match OsdMap::decode(b) {
                    Ok(full) => {
                        map = full;
                        changed = true;
                        if keep_steps {
                            steps.push(Arc::new(map.clone()));
                        }
                    }
                    Err(err) => {
                        warn!(epoch = e, error = %err, "undecodable full OSDMap");
                        failed = true;
                        break;
                    }
                }
            } else {
                break;
            }
            e += 1;
        }
        // A newer full map than the incremental chain reached (e.g. after asking for a
        // full map following a failure, or after falling behind the monitor's history).
        if let Some((&fe, b)) = msg.fulls.iter().next_back() {
            if fe > map.epoch {
                match OsdMap::decode(b) {
                    Ok(full) => {
                        map = full;
                        changed = true;
                        failed = false;
                    }
                    Err(err) => warn!(epoch = fe, error = %err, "undecodable full OSDMap"),
                }
            }
        }
        if changed {
            debug!(epoch = map.epoch, "osdmap updated");
            let arc = Arc::new(map);
            self.subs.insert(
                "osdmap".into(),
                SubItem {
                    start: arc.epoch as u64 + 1,
                    flags: 0,
                },
            );
            self.osdmap = Some(arc.clone());
            if keep_steps {
                if steps.last().map(|m| m.epoch) == Some(arc.epoch) {
                    steps.pop();
                }
                steps.push(arc.clone());
                self.map_subs.retain(|tx| tx.send(steps.clone()).is_ok());
            }
            self.osdmap_tx.send_replace(Some(arc));
        }
        if failed {
            // Ask once for a full map instead; never loop asking for the same bad bytes.
            if !self.asked_full {
                self.asked_full = true;
                self.subs
                    .insert("osdmap".into(), SubItem { start: 0, flags: 0 });
                self.send(messages::mon_subscribe(&self.subs));
            }
            return;
        }
        self.asked_full = false;
        if self.osdmap.as_ref().map(|m| m.epoch).unwrap_or(0) < msg.newest {
            // A gap: ask again from what we have.
            self.subscribe();
        }
    }
}
