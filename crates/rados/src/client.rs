//! The public client: [`Rados`] (a connected cluster handle) and [`IoCtx`] (a pool and
//! namespace to do object I/O in), in the shape librados users know.

use crate::config::ClientConfig;
use crate::error::{Errno, Error, Result};
use crate::mon::{CommandOutput, MonClient};
use crate::osd::messages::{self, ListEntry, SnapContext, NOSNAP, SNAPDIR};
use crate::osd::ops::{self, CloneInfo, OpResult, OsdOp, WatchItem};
use crate::osd::target::ObjectTarget;
use crate::osd::{Objecter, OpRequest, WatchEvent};
use crate::osdmap::OsdMap;
use bytes::Bytes;
use ceph_encoding::UTime;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A connected cluster handle. Cheap to clone; all clones share the sessions.
#[derive(Clone, Debug)]
pub struct Rados {
    mon: MonClient,
    objecter: Objecter,
}

impl Rados {
    /// Connect: hunt for a monitor, authenticate, get the maps, start the OSD client.
    pub async fn connect(config: ClientConfig) -> Result<Rados> {
        let mon = MonClient::connect(config).await?;
        let objecter = Objecter::start(mon.clone());
        Ok(Rados { mon, objecter })
    }

    /// The monitor client.
    pub fn mon(&self) -> &MonClient {
        &self.mon
    }

    /// The OSD client.
    pub fn objecter(&self) -> &Objecter {
        &self.objecter
    }

    /// Our instance id (global id), as in `client.<id>`.
    pub fn instance_id(&self) -> u64 {
        self.mon.global_id()
    }

    /// The current OSDMap.
    pub fn osdmap(&self) -> Arc<OsdMap> {
        self.mon
            .osdmap()
            .expect("connect waits for the first OSDMap")
    }

    /// Run a monitor command given as a JSON object.
    pub async fn mon_command(&self, json: &str, input: Bytes) -> Result<CommandOutput> {
        self.mon.command(json, input).await
    }

    /// Pools as (id, name), in id order.
    pub fn pool_list(&self) -> Vec<(i64, String)> {
        let m = self.osdmap();
        m.pool_names
            .iter()
            .map(|(id, n)| (*id, n.clone()))
            .collect()
    }

    /// Look a pool up by name, fetching the latest map once if it is not in ours
    /// (it may have just been created by someone else).
    pub async fn pool_lookup(&self, name: &str) -> Result<i64> {
        if let Some(id) = self.osdmap().lookup_pool(name) {
            return Ok(id);
        }
        let m = self.mon.wait_for_latest_osdmap().await?;
        m.lookup_pool(name)
            .ok_or_else(|| Error::server(format!("pool '{name}' does not exist"), Errno::ENOENT))
    }

    /// Create a replicated pool.
    pub async fn pool_create(&self, name: &str, pg_num: Option<u32>) -> Result<()> {
        let mut cmd = serde_json::json!({"prefix": "osd pool create", "pool": name, "pool_type": "replicated"});
        if let Some(n) = pg_num {
            cmd["pg_num"] = n.into();
            cmd["pgp_num"] = n.into();
        }
        self.mon.command(&cmd.to_string(), Bytes::new()).await?;
        self.mon.wait_for_latest_osdmap().await?;
        Ok(())
    }

    /// Delete a pool (the monitors must allow pool deletion).
    pub async fn pool_delete(&self, name: &str) -> Result<()> {
        let cmd = serde_json::json!({"prefix": "osd pool delete", "pool": name, "pool2": name,
            "yes_i_really_really_mean_it": true});
        self.mon.command(&cmd.to_string(), Bytes::new()).await?;
        self.mon.wait_for_latest_osdmap().await?;
        Ok(())
    }

    /// Enable an application (`rbd`, `rgw`, ...) on a pool.
    pub async fn pool_application_enable(&self, pool: &str, app: &str) -> Result<()> {
        let cmd = serde_json::json!({"prefix": "osd pool application enable", "pool": pool, "app": app,
            "yes_i_really_mean_it": true});
        self.mon.command(&cmd.to_string(), Bytes::new()).await?;
        Ok(())
    }

    /// An I/O context on a pool, by name.
    pub async fn ioctx(&self, pool: &str) -> Result<IoCtx> {
        let id = self.pool_lookup(pool).await?;
        Ok(self.ioctx_by_id(id))
    }

    /// An I/O context on a pool, by id.
    pub fn ioctx_by_id(&self, pool: i64) -> IoCtx {
        IoCtx {
            rados: self.clone(),
            pool,
            nspace: String::new(),
            read_snap: NOSNAP,
            snapc: SnapContext::default(),
            timeout: None,
            full_try: false,
        }
    }
}

/// An I/O context: pool, namespace, snapshot to read, snapshot context for writes.
#[derive(Clone, Debug)]
pub struct IoCtx {
    rados: Rados,
    pool: i64,
    nspace: String,
    read_snap: u64,
    snapc: SnapContext,
    timeout: Option<Duration>,
    full_try: bool,
}

/// Object size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectStat {
    /// Size in bytes.
    pub size: u64,
    /// Modification time.
    pub mtime: UTime,
}

/// A registered watch. Notifications arrive on [`Watch::next`]; drop or
/// [`IoCtx::unwatch`] to remove.
#[derive(Debug)]
pub struct Watch {
    /// The watch cookie (also the handle librbd puts in lock cookies).
    pub cookie: u64,
    oid: String,
    rx: mpsc::UnboundedReceiver<WatchEvent>,
    pinger: tokio::task::JoinHandle<()>,
    /// Set when the watch is still registered on the OSD: dropping it then sends UNWATCH
    /// in the background, so a dropped handle does not linger as a watcher for the
    /// watch timeout (other clients, `rbd rm` among them, would see it as in use).
    io: Option<IoCtx>,
}

impl Watch {
    /// The next event; `None` when the watch was removed.
    pub async fn next(&mut self) -> Option<WatchEvent> {
        self.rx.recv().await
    }

    /// The watched object.
    pub fn oid(&self) -> &str {
        &self.oid
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.pinger.abort();
        if let Some(io) = self.io.take() {
            io.rados.objecter.unregister_watch(self.cookie);
            let (oid, cookie) = (std::mem::take(&mut self.oid), self.cookie);
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move {
                    let _ = io.watch_op(&oid, cookie, ops::watch_op::UNWATCH, 0).await;
                });
            }
        }
    }
}

impl IoCtx {
    /// The cluster handle.
    pub fn rados(&self) -> &Rados {
        &self.rados
    }

    /// Pool id.
    pub fn pool_id(&self) -> i64 {
        self.pool
    }

    /// Current namespace.
    pub fn namespace(&self) -> &str {
        &self.nspace
    }

    /// Use a RADOS namespace (empty = default).
    pub fn set_namespace(&mut self, ns: &str) {
        self.nspace = ns.to_string();
    }

    /// Read from a snapshot (`NOSNAP` for the head).
    pub fn set_read_snap(&mut self, snap: u64) {
        self.read_snap = snap;
    }

    /// The snapshot reads go to.
    pub fn read_snap(&self) -> u64 {
        self.read_snap
    }

    /// Snap context for writes (self-managed snapshots).
    pub fn set_snap_context(&mut self, snapc: SnapContext) {
        self.snapc = snapc;
    }

    /// Fail writes to a full pool or cluster at once (EDQUOT for a pool quota, ENOSPC
    /// otherwise) instead of waiting for space, like librados' `FULL_TRY` op flag. By
    /// default writes wait until the full flag clears, then go out.
    pub fn set_full_try(&mut self, on: bool) {
        self.full_try = on;
    }

    /// Per-op timeout for this context.
    pub fn set_op_timeout(&mut self, t: Option<Duration>) {
        self.timeout = t;
    }

    fn target(&self, oid: &str) -> ObjectTarget {
        ObjectTarget {
            pool: self.pool,
            nspace: self.nspace.clone(),
            oid: oid.to_string(),
            key: String::new(),
        }
    }

    fn request(&self, oid: &str, ops: Vec<OsdOp>) -> OpRequest {
        let mut r = OpRequest::new(self.target(oid), ops);
        let writes = r.ops.iter().any(|o| o.is_write());
        if writes {
            r.snapc = self.snapc.clone();
        } else {
            r.snapid = self.read_snap;
        }
        r.timeout = self.timeout;
        if self.full_try {
            r.extra_flags |= messages::flag::FULL_TRY;
        }
        r
    }

    /// Run a compound operation (all ops atomically for writes); returns per-op results.
    pub async fn operate(&self, oid: &str, ops: Vec<OsdOp>) -> Result<Vec<OpResult>> {
        let sent = self.rados.objecter.submit(self.request(oid, ops));
        let r = sent.await.map_err(|e| ctx(e, oid))?;
        Ok(r.ops)
    }

    /// Run a compound operation with a given snap id to read (for LIST_SNAPS: SNAPDIR).
    pub async fn operate_at(
        &self,
        oid: &str,
        snapid: u64,
        ops: Vec<OsdOp>,
    ) -> Result<Vec<OpResult>> {
        let sent = {
            let mut req = self.request(oid, ops);
            req.snapid = snapid;
            self.rados.objecter.submit(req)
        };
        let r = sent.await.map_err(|e| ctx(e, oid))?;
        Ok(r.ops)
    }

    async fn one(&self, oid: &str, op: OsdOp) -> Result<Bytes> {
        let mut r = self.operate(oid, vec![op]).await?;
        Ok(r.pop().map(|r| r.outdata).unwrap_or_default())
    }

    /// Read `len` bytes at `off` (short at the end of the object).
    pub async fn read(&self, oid: &str, off: u64, len: u64) -> Result<Bytes> {
        self.one(oid, OsdOp::read(off, len)).await
    }

    /// Read the whole object.
    ///
    /// One READ with length 0, which the OSD takes as "to the end of the object"
    /// (`PrimaryLogPG::do_read`), so size and bytes come from one version. A stat followed
    /// by a read of that many bytes (what this did before) tears under a concurrent
    /// writer: the thrash test saw the new contents cut to the old length.
    pub async fn read_full(&self, oid: &str) -> Result<Bytes> {
        self.read(oid, 0, 0).await
    }

    /// Sparse read: the allocated extents (offset, length) and their data.
    pub async fn sparse_read(
        &self,
        oid: &str,
        off: u64,
        len: u64,
    ) -> Result<(Vec<(u64, u64)>, Bytes)> {
        let out = self.one(oid, OsdOp::sparse_read(off, len)).await?;
        Ok(ops::decode_sparse_read(&out)?)
    }

    /// Write `data` at `off`.
    pub async fn write(&self, oid: &str, off: u64, data: Bytes) -> Result<()> {
        self.one(oid, OsdOp::write(off, data)).await.map(|_| ())
    }

    /// Replace the object's contents.
    pub async fn write_full(&self, oid: &str, data: Bytes) -> Result<()> {
        self.one(oid, OsdOp::write_full(data)).await.map(|_| ())
    }

    /// Append.
    pub async fn append(&self, oid: &str, data: Bytes) -> Result<()> {
        self.one(oid, OsdOp::append(data)).await.map(|_| ())
    }

    /// Truncate or extend.
    pub async fn truncate(&self, oid: &str, size: u64) -> Result<()> {
        self.one(oid, OsdOp::truncate(size)).await.map(|_| ())
    }

    /// Zero a range.
    pub async fn zero(&self, oid: &str, off: u64, len: u64) -> Result<()> {
        self.one(oid, OsdOp::zero(off, len)).await.map(|_| ())
    }

    /// Remove the object.
    pub async fn remove(&self, oid: &str) -> Result<()> {
        self.one(oid, OsdOp::delete()).await.map(|_| ())
    }

    /// Create the object (EEXIST if `exclusive` and it exists).
    pub async fn create(&self, oid: &str, exclusive: bool) -> Result<()> {
        self.one(oid, OsdOp::create(exclusive)).await.map(|_| ())
    }

    /// Size and mtime.
    pub async fn stat(&self, oid: &str) -> Result<ObjectStat> {
        let out = self.one(oid, OsdOp::stat()).await?;
        let (size, mtime) = ops::decode_stat(&out)?;
        Ok(ObjectStat { size, mtime })
    }

    /// Get an xattr.
    pub async fn getxattr(&self, oid: &str, name: &str) -> Result<Bytes> {
        self.one(oid, OsdOp::getxattr(name)).await
    }

    /// Set an xattr.
    pub async fn setxattr(&self, oid: &str, name: &str, value: &[u8]) -> Result<()> {
        self.one(oid, OsdOp::setxattr(name, value))
            .await
            .map(|_| ())
    }

    /// Remove an xattr.
    pub async fn rmxattr(&self, oid: &str, name: &str) -> Result<()> {
        self.one(oid, OsdOp::rmxattr(name)).await.map(|_| ())
    }

    /// All xattrs.
    pub async fn getxattrs(&self, oid: &str) -> Result<BTreeMap<String, Bytes>> {
        let out = self.one(oid, OsdOp::getxattrs()).await?;
        Ok(ops::decode_omap_vals(&out)?.0)
    }

    /// Omap keys after `start_after`, at most `max`; also whether more remain.
    pub async fn omap_get_keys(
        &self,
        oid: &str,
        start_after: &str,
        max: u64,
    ) -> Result<(Vec<String>, bool)> {
        let out = self
            .one(oid, OsdOp::omap_get_keys(start_after, max))
            .await?;
        Ok(ops::decode_omap_keys(&out)?)
    }

    /// Omap values after `start_after` with `prefix`, at most `max`; also whether more remain.
    pub async fn omap_get_vals(
        &self,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: u64,
    ) -> Result<(BTreeMap<String, Bytes>, bool)> {
        let out = self
            .one(oid, OsdOp::omap_get_vals(start_after, prefix, max))
            .await?;
        Ok(ops::decode_omap_vals(&out)?)
    }

    /// Every omap key/value (paging through).
    pub async fn omap_get_all(&self, oid: &str) -> Result<BTreeMap<String, Bytes>> {
        let mut all = BTreeMap::new();
        let mut after = String::new();
        loop {
            let (m, more) = self.omap_get_vals(oid, &after, "", 512).await?;
            let last = m.keys().next_back().cloned();
            all.extend(m);
            match last {
                Some(l) if more => after = l,
                _ => return Ok(all),
            }
        }
    }

    /// Values of the given keys (absent keys are left out).
    pub async fn omap_get_vals_by_keys(
        &self,
        oid: &str,
        keys: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Bytes>> {
        let out = self.one(oid, OsdOp::omap_get_vals_by_keys(keys)).await?;
        Ok(ops::decode_omap_vals(&out)?.0)
    }

    /// Set omap keys.
    pub async fn omap_set(&self, oid: &str, kv: &BTreeMap<String, Bytes>) -> Result<()> {
        self.one(oid, OsdOp::omap_set(kv)).await.map(|_| ())
    }

    /// Remove omap keys.
    pub async fn omap_rm_keys(&self, oid: &str, keys: &BTreeSet<String>) -> Result<()> {
        self.one(oid, OsdOp::omap_rm_keys(keys)).await.map(|_| ())
    }

    /// Remove all omap keys.
    pub async fn omap_clear(&self, oid: &str) -> Result<()> {
        self.one(oid, OsdOp::omap_clear()).await.map(|_| ())
    }

    /// The omap header.
    pub async fn omap_get_header(&self, oid: &str) -> Result<Bytes> {
        self.one(oid, OsdOp::omap_get_header()).await
    }

    /// Set the omap header.
    pub async fn omap_set_header(&self, oid: &str, h: Bytes) -> Result<()> {
        self.one(oid, OsdOp::omap_set_header(h)).await.map(|_| ())
    }

    /// Call an object class method (`cls`). Methods that write must be sent as writes:
    /// pass `write = true`.
    pub async fn exec(
        &self,
        oid: &str,
        class: &str,
        method: &str,
        input: &[u8],
        write: bool,
    ) -> Result<Bytes> {
        // the request lives in a block of its own so that the future does not keep room
        // for it beside the submitted (boxed) one
        let sent = {
            let mut req = self.request(oid, vec![OsdOp::call(class, method, input)]);
            if write {
                req.extra_flags |= messages::flag::WRITE | messages::flag::ONDISK;
                req.snapc = self.snapc.clone();
                req.snapid = NOSNAP;
            }
            self.rados.objecter.submit(req)
        };
        let mut r = sent.await.map_err(|e| ctx(e, oid))?;
        Ok(r.ops.pop().map(|o| o.outdata).unwrap_or_default())
    }

    /// A compound write operation that includes cls calls (forced to be a write).
    pub async fn operate_write(&self, oid: &str, ops: Vec<OsdOp>) -> Result<Vec<OpResult>> {
        let sent = {
            let mut req = self.request(oid, ops);
            req.extra_flags |= messages::flag::WRITE | messages::flag::ONDISK;
            req.snapc = self.snapc.clone();
            req.snapid = NOSNAP;
            self.rados.objecter.submit(req)
        };
        let r = sent.await.map_err(|e| ctx(e, oid))?;
        Ok(r.ops)
    }

    /// Watchers of an object.
    pub async fn list_watchers(&self, oid: &str) -> Result<Vec<WatchItem>> {
        let out = self.one(oid, OsdOp::list_watchers()).await?;
        Ok(ops::decode_watchers(&out)?)
    }

    /// Clones of an object (for diffs): LIST_SNAPS at SNAPDIR.
    pub async fn list_snaps(&self, oid: &str) -> Result<(Vec<CloneInfo>, u64)> {
        let mut r = self
            .operate_at(oid, SNAPDIR, vec![OsdOp::list_snaps()])
            .await?;
        let out = r.pop().map(|o| o.outdata).unwrap_or_default();
        Ok(ops::decode_list_snaps(&out)?)
    }

    /// Roll the object back to a snapshot.
    pub async fn rollback(&self, oid: &str, snapid: u64) -> Result<()> {
        self.one(oid, OsdOp::rollback(snapid)).await.map(|_| ())
    }

    /// Allocate a self-managed snapshot id in this pool.
    pub async fn selfmanaged_snap_create(&self) -> Result<u64> {
        self.rados
            .mon
            .create_selfmanaged_snap(self.pool as u32)
            .await
    }

    /// Release a self-managed snapshot id.
    pub async fn selfmanaged_snap_remove(&self, snapid: u64) -> Result<()> {
        self.rados
            .mon
            .remove_selfmanaged_snap(self.pool as u32, snapid)
            .await
    }

    /// Register a watch on `oid`. The watch is kept alive with pings and re-established
    /// if the OSD session resets.
    pub async fn watch(&self, oid: &str) -> Result<Watch> {
        let cookie = crate::auth::random_u64() >> 1;
        let (tx, rx) = mpsc::unbounded_channel();
        self.rados.objecter.register_watch(cookie, tx.clone());
        let r = self.watch_op(oid, cookie, ops::watch_op::WATCH, 1).await;
        if let Err(e) = r {
            self.rados.objecter.unregister_watch(cookie);
            return Err(e);
        }
        let io = self.clone();
        let o = oid.to_string();
        let pinger = tokio::spawn(async move {
            let mut gen = 1u32;
            // Blocklisted: the watch is over for good. Tell the owner once, with
            // EBLOCKLISTED, and close the event stream (`Watch::next` then returns `None`)
            // instead of reporting Disconnected forever.
            let end = |io: &IoCtx| {
                let _ = tx.send(WatchEvent::Disconnected {
                    errno: Errno::EBLOCKLISTED,
                });
                io.rados.objecter.unregister_watch(cookie);
            };
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if tx.is_closed() {
                    return;
                }
                let e = match io.watch_op(&o, cookie, ops::watch_op::PING, gen).await {
                    Ok(()) => continue,
                    Err(e) => e,
                };
                if e.is_blocklisted() {
                    return end(&io);
                }
                // The registration is lost (or unknown): ENOTCONN, as librados reports a
                // failed ping, whatever the transport error was.
                let _ = tx.send(WatchEvent::Disconnected {
                    errno: Errno::ENOTCONN,
                });
                gen += 1;
                match io.watch_op(&o, cookie, ops::watch_op::RECONNECT, gen).await {
                    Ok(()) => {}
                    Err(e) if e.is_blocklisted() => return end(&io),
                    // The OSD expired the watch (no ping within its timeout): register it
                    // again; the owner was told it may have missed notifies (ceph:
                    // src/librados/IoCtxImpl.cc WatchInfo::handle_error, librbd rewatch).
                    Err(e) if e.errno() == Errno::ENOTCONN => {
                        match io.watch_op(&o, cookie, ops::watch_op::WATCH, gen).await {
                            Err(e) if e.is_blocklisted() => return end(&io),
                            _ => {}
                        }
                    }
                    Err(_) => {}
                }
            }
        });
        Ok(Watch {
            cookie,
            oid: oid.to_string(),
            rx,
            pinger,
            io: Some(self.clone()),
        })
    }

    async fn watch_op(&self, oid: &str, cookie: u64, op: u8, gen: u32) -> Result<()> {
        let mut req = self.request(oid, vec![OsdOp::watch(cookie, op, gen, 30)]);
        if op == ops::watch_op::PING {
            req.extra_flags |= messages::flag::READ;
        } else {
            req.extra_flags |= messages::flag::WRITE | messages::flag::ONDISK;
        }
        req.timeout = Some(Duration::from_secs(30));
        self.rados
            .objecter
            .submit(req)
            .await
            .map(|_| ())
            .map_err(|e| ctx(e, oid))
    }

    /// Remove a watch.
    pub async fn unwatch(&self, mut w: Watch) -> Result<()> {
        w.io = None;
        self.rados.objecter.unregister_watch(w.cookie);
        self.watch_op(&w.oid, w.cookie, ops::watch_op::UNWATCH, 0)
            .await
    }

    /// Acknowledge a notification.
    pub async fn notify_ack(
        &self,
        oid: &str,
        notify_id: u64,
        cookie: u64,
        reply: &[u8],
    ) -> Result<()> {
        self.one(oid, OsdOp::notify_ack(notify_id, cookie, reply))
            .await
            .map(|_| ())
    }

    /// Notify every watcher of `oid` and wait for their acks (or the timeout). Returns the
    /// encoded ack map the OSD sends with NOTIFY_COMPLETE.
    pub async fn notify(&self, oid: &str, payload: &[u8], timeout: Duration) -> Result<Bytes> {
        let cookie = crate::auth::random_u64() >> 1;
        let done = self.rados.objecter.register_notify(cookie);
        let secs = timeout.as_secs().max(1) as u32;
        let mut req = self.request(oid, vec![OsdOp::notify(cookie, secs, payload)]);
        req.extra_flags |= messages::flag::READ;
        self.rados
            .objecter
            .submit(req)
            .await
            .map_err(|e| ctx(e, oid))?;
        match tokio::time::timeout(timeout + Duration::from_secs(5), done).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::Shutdown),
            Err(_) => Err(Error::server(format!("notify {oid}"), Errno::ETIMEDOUT)),
        }
    }

    /// List the objects of this pool and namespace, in the order librados lists them
    /// (`rados ls`): the pool's objects in hobject order, which sorts by the
    /// bit-reversed hash first. Each PG holds one contiguous range of that order,
    /// starting at its bit-reversed seed (`pg_t::get_hobj_start`), so the PGs are
    /// visited by reversed seed (0, 4, 2, 6, 1, ... for 8 PGs) and each one's entries
    /// come back from the OSD already in that order. librados gets the same walk by
    /// following the cursor the OSD returns at the end of each PG.
    pub async fn list_objects(&self) -> Result<Vec<ListEntry>> {
        let map = self.rados.osdmap();
        let pool = map
            .pools
            .get(&self.pool)
            .ok_or_else(|| Error::server(format!("pool {}", self.pool), Errno::ENOENT))?;
        let pg_num = pool.pg_num;
        let mut all = Vec::new();
        let mut seeds: Vec<u32> = (0..pg_num).collect();
        seeds.sort_by_key(|s| s.reverse_bits());
        for seed in seeds {
            let mut cursor = Vec::new();
            // librados starts each PG with a default hobject_t and epoch 0.
            messages::encode_start_cursor(&mut cursor);
            let mut epoch = 0;
            loop {
                let mut req = OpRequest::new(
                    ObjectTarget {
                        pool: self.pool,
                        nspace: self.nspace.clone(),
                        oid: String::new(),
                        key: String::new(),
                    },
                    vec![OsdOp::pgnls(1024, epoch, cursor.clone())],
                );
                req.extra_flags |= messages::flag::PGOP;
                req.pg_seed = Some(seed);
                let r = self.rados.objecter.submit(req).await?;
                if epoch == 0 {
                    epoch = r.epoch;
                }
                // The OSD answers 1 when this reply reached the end of the PG.
                let pg_done = r.result == 1 || r.ops.first().map(|o| o.rval == 1).unwrap_or(false);
                let out = r
                    .ops
                    .into_iter()
                    .next()
                    .map(|o| o.outdata)
                    .unwrap_or_default();
                let (handle, end, entries) = messages::decode_pgnls(&out)?;
                all.extend(entries);
                if end || pg_done {
                    break;
                }
                cursor = advance_cursor(&cursor, handle, seed)?;
            }
        }
        Ok(all)
    }
}

/// The next PGNLS cursor, or an error when the OSD handed back the one we sent without
/// reaching the end: listing would otherwise loop forever on that PG (issue 10, defect 8).
fn advance_cursor(prev: &[u8], next: Vec<u8>, seed: u32) -> Result<Vec<u8>> {
    if next == prev {
        return Err(Error::server(
            format!("listing PG seed {seed}: the OSD repeated the cursor"),
            Errno::EIO,
        ));
    }
    Ok(next)
}

fn ctx(e: Error, oid: &str) -> Error {
    match e {
        Error::Server { context, errno } if !context.contains(oid) => Error::Server {
            context: format!("{oid}: {context}"),
            errno,
        },
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_stops_on_a_repeated_cursor() {
        let mut start = Vec::new();
        messages::encode_start_cursor(&mut start);
        let e = advance_cursor(&start, start.clone(), 3).unwrap_err();
        assert_eq!(e.errno(), Errno::EIO);
        let mut next = start.clone();
        *next.last_mut().unwrap() ^= 1;
        assert_eq!(advance_cursor(&start, next.clone(), 3).unwrap(), next);
    }
}
