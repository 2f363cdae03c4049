//! The exclusive lock (`exclusive-lock` feature) and the head object map it protects,
//! as librbd's ManagedLock / ExclusiveLock / ObjectMap do it, so this client and librbd
//! (QEMU, `rbd`, krbd) hand one image back and forth
//! (ceph: src/librbd/ManagedLock.cc, src/librbd/ExclusiveLock.cc,
//! src/librbd/managed_lock/{AcquireRequest,BreakRequest,GetLockerRequest}.cc,
//! src/librbd/ImageWatcher.cc, src/librbd/object_map/{LockRequest,UpdateRequest}.cc).
//!
//! * The lock is cls_lock `rbd_lock` on `rbd_header.<id>`: exclusive, cookie
//!   `auto <header watch cookie>`, tag `internal`. It is taken before the first write and
//!   before maintenance operations, and released on close or when a peer asks.
//! * A holder is alive while a watcher with its entity and cookie is on the header. A busy
//!   lock whose holder is alive is asked for with REQUEST_LOCK notifications (retried with
//!   back-off until the holder releases); a dead holder is blocklisted through the monitor
//!   and its lock broken (librbd `BreakRequest`).
//! * With the object map: the owner also locks `rbd_object_map.<id>` (cls lock, empty
//!   cookie and tag), loads it, and updates it (lock asserted) before a write creates an
//!   object and after a discard removes one — only when the state changes.
//! * Writes hold the image's I/O gate (`quiesce` read side) and maintenance operations
//!   the `ops` gate, so a release first waits for both to drain.

use crate::cls::{self, lock::lock_type, lock::LockOp, lock::RBD_LOCK_NAME};
use crate::error::{RbdError, Result};
use crate::features;
use crate::image::{Image, ImageInner, NOTIFY_TIMEOUT};
use crate::object_map::{self, state, ObjectMap};
use crate::util::GoneOk;
use crate::watch_notify::{
    op, AsyncEvent, AsyncRequestId, ClientId, NotifyMessage, ResponseMessage,
};
use bytes::Bytes;
use ceph_encoding::{Decoder, EncodeExt};
use ceph_rados::{Errno, IoCtx, NOSNAP};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{debug, info, warn};

/// librbd's `WATCHER_LOCK_TAG`.
pub const LOCK_TAG: &str = "internal";
/// librbd's lock cookie prefix (`managed_lock::util::encode_lock_cookie`).
pub const COOKIE_PREFIX: &str = "auto ";

/// The lock cookie for a header watch handle.
pub fn lock_cookie(handle: u64) -> String {
    format!("{COOKIE_PREFIX}{handle}")
}

/// The watch handle in a managed-lock cookie (`None` for foreign lockers).
pub fn parse_lock_cookie(cookie: &str) -> Option<u64> {
    cookie.strip_prefix(COOKIE_PREFIX)?.parse().ok()
}

#[derive(Default)]
struct Owned {
    /// The cookie we hold the lock with; `None` when not the owner.
    cookie: Option<String>,
    /// The head object map while owner (if the image has the object map).
    map: Option<ObjectMap>,
    /// The map is flagged invalid (header OBJECT_MAP_INVALID): it is neither trusted
    /// (reads do not skip objects) nor updated until a rebuild.
    map_invalid: bool,
    /// The image has fast-diff (an invalidation flags it too).
    fast_diff: bool,
}

/// Lock state of one open image (only for writable opens of exclusive-lock images).
pub(crate) struct ExclusiveLock {
    md_io: IoCtx,
    image_id: String,
    /// Keep the lock: refuse peers' REQUEST_LOCK (krbd `exclusive`, librbd lock_acquire).
    pub exclusive: bool,
    /// `rbd_blocklist_expire_seconds` (0: the monitor's default).
    pub blocklist_expire: u64,
    owned: Mutex<Owned>,
    /// One acquire or release at a time.
    transition: tokio::sync::Mutex<()>,
    /// Maintenance operations (resize, snapshots, flatten) hold the read side.
    pub ops: tokio::sync::RwLock<()>,
    /// Updates of single objects hold the read side, so those of different objects are
    /// in flight together (librbd `ObjectMap::aio_update` detains only overlapping
    /// ones); whole-map changes (ranges, resize, snapshot maps) hold the write side.
    /// One at a time, as before, a sparse image's first writes queued behind each
    /// other's round trip: 4 KiB random writes over a new 16 GiB image ran at half
    /// librbd's speed on BlueStore.
    map_update: tokio::sync::RwLock<()>,
    /// Objects whose single-object update is in flight: another update of the same
    /// object waits for it ([`ExclusiveLock::claim_object`]).
    map_busy: Mutex<rustc_hash::FxHashSet<u64>>,
    /// An object left `map_busy`.
    map_idle: tokio::sync::Notify,
    /// A peer released the lock (RELEASED_LOCK).
    released: tokio::sync::Notify,
    /// We were blocklisted: the image is unusable.
    blocklisted: AtomicBool,
    /// Requests we proxied to the owner, by request id: where its ASYNC_PROGRESS /
    /// ASYNC_COMPLETE go.
    pub(crate) pending:
        Mutex<std::collections::HashMap<u64, tokio::sync::mpsc::UnboundedSender<AsyncEvent>>>,
    /// Peers' requests we are running as the owner (a retried request is not run twice).
    pub(crate) serving: Mutex<std::collections::HashSet<AsyncRequestId>>,
}

impl ExclusiveLock {
    pub fn new(md_io: IoCtx, image_id: String, exclusive: bool, blocklist_expire: u64) -> Self {
        ExclusiveLock {
            md_io,
            image_id,
            exclusive,
            blocklist_expire,
            owned: Mutex::new(Owned::default()),
            transition: tokio::sync::Mutex::new(()),
            ops: tokio::sync::RwLock::new(()),
            map_update: tokio::sync::RwLock::new(()),
            map_busy: Mutex::new(Default::default()),
            map_idle: tokio::sync::Notify::new(),
            released: tokio::sync::Notify::new(),
            blocklisted: AtomicBool::new(false),
            pending: Mutex::new(Default::default()),
            serving: Mutex::new(Default::default()),
        }
    }

    /// True while we own the lock.
    pub fn is_owner(&self) -> bool {
        self.owned.lock().expect("lock state").cookie.is_some()
    }

    fn cookie(&self) -> Option<String> {
        self.owned.lock().expect("lock state").cookie.clone()
    }

    /// Fail with EBLOCKLISTED once blocklisted.
    pub fn check_usable(&self) -> Result<()> {
        if self.blocklisted.load(Ordering::Acquire) {
            return Err(RbdError::refused(
                "this client was blocklisted: the image is no longer usable",
                Errno::EBLOCKLISTED,
            ));
        }
        Ok(())
    }

    /// Record an operation's result: EBLOCKLISTED makes the image unusable.
    pub fn note<T>(&self, r: &Result<T>) {
        if let Err(e) = r {
            if e.errno() == Errno::EBLOCKLISTED && !self.blocklisted.swap(true, Ordering::AcqRel) {
                warn!("client blocklisted: image marked unusable");
                let mut o = self.owned.lock().expect("lock state");
                o.cookie = None;
                o.map = None;
            }
        }
    }

    /// Object map state of `ono` while owner (`None`: no map in use).
    pub fn object_state(&self, ono: u64) -> Option<u8> {
        let o = self.owned.lock().expect("lock state");
        if o.map_invalid {
            return None;
        }
        o.map
            .as_ref()
            .and_then(|m| m.states.get(ono as usize).copied())
    }

    /// True if the head map is loaded (owner with the object-map feature).
    pub fn has_map(&self) -> bool {
        let o = self.owned.lock().expect("lock state");
        o.map.is_some() && !o.map_invalid
    }

    /// We hold the object map's own lock (released with the header lock).
    fn holds_map_lock(&self) -> bool {
        self.owned.lock().expect("lock state").map.is_some()
    }

    /// After a failed head map update: librbd `object_map::InvalidateRequest` sets
    /// OBJECT_MAP_INVALID (and FAST_DIFF_INVALID with fast-diff) in the header, the
    /// header lock asserted, and the operation goes on without the map; a rebuild
    /// clears it. A blocklisted client invalidates nothing (it can write nothing). Ok if
    /// the map is now flagged invalid, else the update's error.
    async fn invalidate_map(&self, err: RbdError) -> Result<()> {
        if err.errno() == Errno::EBLOCKLISTED || !self.is_owner() {
            return Err(err);
        }
        let (cookie, fast_diff) = {
            let o = self.owned.lock().expect("lock state");
            (o.cookie.clone().unwrap_or_default(), o.fast_diff)
        };
        warn!(
            "object map update of image {} failed: {err}; flagging the object map invalid",
            self.image_id
        );
        let mut flags = features::flag::OBJECT_MAP_INVALID;
        if fast_diff {
            flags |= features::flag::FAST_DIFF_INVALID;
        }
        let ops = vec![
            cls::lock::assert_locked(RBD_LOCK_NAME, lock_type::EXCLUSIVE, &cookie, LOCK_TAG).op(),
            crate::object_map_ops::set_flags(flags, flags, NOSNAP).op(),
        ];
        let r = self
            .md_io
            .operate_write(&crate::util::header_name(&self.image_id), ops)
            .await
            .map_err(RbdError::from);
        self.note(&r);
        if let Err(e) = r {
            warn!("flagging the object map of {} invalid: {e}", self.image_id);
            return Err(err);
        }
        self.owned.lock().expect("lock state").map_invalid = true;
        Ok(())
    }

    fn with_map(&self, f: impl FnOnce(&mut ObjectMap)) {
        if let Some(m) = self.owned.lock().expect("lock state").map.as_mut() {
            f(m)
        }
    }

    /// Whether [`Self::update_object`] with these arguments would change the map right
    /// now. Lets the write path skip building that (large) future when nothing is to do,
    /// which is almost always.
    pub fn needs_update(&self, ono: u64, new: u8, current: Option<u8>) -> bool {
        match self.object_state(ono) {
            None => false,
            Some(s) => s != new && current.is_none_or(|c| c == s),
        }
    }

    /// Update object `ono` of the head map to `new` (only objects in `current`, if
    /// given) unless it is already there: librbd `ObjectMap::aio_update` with its
    /// in-memory short cut. The cls call asserts the object map lock.
    pub async fn update_object(&self, ono: u64, new: u8, current: Option<u8>) -> Result<()> {
        if !self.needs_update(ono, new, current) {
            return Ok(());
        }
        let _g = self.map_update.read().await;
        let _slot = self.claim_object(ono).await;
        if !self.needs_update(ono, new, current) {
            return Ok(());
        }
        let len = self
            .owned
            .lock()
            .expect("lock state")
            .map
            .as_ref()
            .map(|m| m.len())
            .unwrap_or(0);
        if ono >= len {
            return Ok(());
        }
        self.send_update(ono, ono + 1, new, current).await
    }

    /// The cls call for objects [start, end) of the head map (asserting the object map
    /// lock), then the same change in memory; a failed call flags the map invalid. The
    /// caller holds `map_update` (and, for one object, its slot).
    async fn send_update(&self, start: u64, end: u64, new: u8, current: Option<u8>) -> Result<()> {
        let ops = vec![
            Self::assert_op(),
            object_map::update(start, end, new, current).op(),
        ];
        let r = self
            .md_io
            .operate_write(&self.head_oid(), ops)
            .await
            .map(|_| ())
            .map_err(RbdError::from);
        self.note(&r);
        if let Err(e) = r {
            return self.invalidate_map(e).await;
        }
        self.with_map(|m| {
            let end = (end as usize).min(m.states.len());
            for s in m.states.iter_mut().take(end).skip(start as usize) {
                if current.map(|c| c == *s).unwrap_or(true) {
                    *s = new;
                }
            }
        });
        Ok(())
    }

    /// The image handle went away without `close`: unlock in the background so peers
    /// need not wait for the watch to time out and blocklist us.
    pub fn release_on_drop(&self, io: &IoCtx, oid: &str, gid: u64, handle: u64) {
        let (cookie, had_map) = {
            let mut o = self.owned.lock().expect("lock state");
            let had = o.map.take().is_some();
            (o.cookie.take(), had)
        };
        let Some(cookie) = cookie else { return };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (io, oid, moid) = (
            io.clone(),
            oid.to_string(),
            object_map::object_map_name(&self.image_id, NOSNAP),
        );
        rt.spawn(async move {
            if had_map {
                let _ = cls::lock::unlock(RBD_LOCK_NAME, "").exec(&io, &moid).await;
            }
            let _ = cls::lock::unlock(RBD_LOCK_NAME, &cookie)
                .exec(&io, &oid)
                .await;
            let msg = lock_notify(op::RELEASED_LOCK, ClientId { gid, handle }, None);
            let _ = io.notify(&oid, &msg, NOTIFY_TIMEOUT).await;
        });
    }

    /// Wait until no update of object `ono` is in flight, then mark one as ours until the
    /// returned guard drops.
    async fn claim_object(&self, ono: u64) -> MapSlot<'_> {
        loop {
            // created before the check: a release in between still wakes it
            let idle = self.map_idle.notified();
            if self.map_busy.lock().expect("map slots").insert(ono) {
                return MapSlot { lock: self, ono };
            }
            idle.await;
        }
    }

    /// Set objects [start, end) to `new` (those in `current`, if given) in one call, as
    /// librbd's trim does around removing the objects past a new end.
    pub async fn update_range(
        &self,
        start: u64,
        end: u64,
        new: u8,
        current: Option<u8>,
    ) -> Result<()> {
        if !self.has_map() || start >= end {
            return Ok(());
        }
        let _g = self.map_update.write().await;
        self.send_update(start, end, new, current).await
    }

    /// Set object `ono` of snapshot `snap`'s map (no lock assertion: snapshot maps are
    /// not locked).
    pub async fn set_snapshot_state(&self, snap: u64, ono: u64, st: u8) -> Result<()> {
        let soid = object_map::object_map_name(&self.image_id, snap);
        match object_map::update(ono, ono + 1, st, None)
            .exec(&self.md_io, &soid)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Install a rebuilt head map (if loaded).
    pub fn replace_map(&self, m: ObjectMap) {
        let mut o = self.owned.lock().expect("lock state");
        if let Some(cur) = o.map.as_mut() {
            *cur = m;
            o.map_invalid = false;
        }
    }

    fn head_oid(&self) -> String {
        object_map::object_map_name(&self.image_id, NOSNAP)
    }

    fn assert_op() -> ceph_rados::OsdOp {
        cls::lock::assert_locked(RBD_LOCK_NAME, lock_type::EXCLUSIVE, "", "").op()
    }

    /// Resize the head map to `objects` (librbd `object_map::ResizeRequest`); new
    /// objects are NONEXISTENT. No-op without a loaded map.
    pub async fn resize_map(&self, objects: u64) -> Result<()> {
        if !self.has_map() {
            return Ok(());
        }
        let _g = self.map_update.write().await;
        let ops = vec![
            Self::assert_op(),
            object_map::resize(objects, state::NONEXISTENT).op(),
        ];
        let r = self
            .md_io
            .operate_write(&self.head_oid(), ops)
            .await
            .map(|_| ())
            .map_err(RbdError::from);
        self.note(&r);
        if let Err(e) = r {
            return self.invalidate_map(e).await;
        }
        self.with_map(|m| m.states.resize(objects as usize, state::NONEXISTENT));
        Ok(())
    }

    /// librbd `object_map::SnapshotCreateRequest`, writes blocked: copy the head map to
    /// the snapshot's map, then (fast-diff) mark the head's EXISTS objects EXISTS_CLEAN.
    pub async fn snapshot_map(&self, snap_id: u64, fast_diff: bool) -> Result<()> {
        if !self.has_map() {
            return Ok(());
        }
        let _g = self.map_update.write().await;
        let head = self.md_io.read_full(&self.head_oid()).await?;
        self.md_io
            .write_full(&object_map::object_map_name(&self.image_id, snap_id), head)
            .await?;
        if fast_diff {
            let ops = vec![Self::assert_op(), object_map::snap_add().op()];
            self.md_io.operate_write(&self.head_oid(), ops).await?;
            self.with_map(|m| {
                for s in m.states.iter_mut() {
                    if *s == state::EXISTS {
                        *s = state::EXISTS_CLEAN;
                    }
                }
            });
        }
        Ok(())
    }

    /// librbd `object_map::SnapshotRemoveRequest`: fold the removed snapshot's dirty
    /// objects into the next snapshot's (or the head's) map, then delete its map.
    pub async fn remove_snapshot_map(
        &self,
        snap_id: u64,
        next: u64,
        fast_diff: bool,
    ) -> Result<()> {
        let _g = self.map_update.write().await;
        let soid = object_map::object_map_name(&self.image_id, snap_id);
        if fast_diff {
            match object_map::load().exec(&self.md_io, &soid).await {
                Ok(b) => {
                    let removed = ObjectMap::decode(&b)?;
                    let mut ops = Vec::new();
                    if next == NOSNAP {
                        ops.push(Self::assert_op());
                    }
                    ops.push(object_map::snap_remove(&removed).op());
                    let noid = object_map::object_map_name(&self.image_id, next);
                    self.md_io.operate_write(&noid, ops).await.gone_ok()?;
                    if next == NOSNAP {
                        self.with_map(|m| object_map::merge_removed_snapshot(m, &removed));
                    }
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => debug!("loading {soid}: {e}"),
            }
        }
        match self.md_io.remove(&soid).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A peer announced RELEASED_LOCK.
    pub fn peer_released(&self) {
        self.released.notify_waiters();
    }
}

/// An object's update slot (see [`ExclusiveLock::claim_object`]); dropping it, on every
/// path out of the update, lets the next update of that object go.
struct MapSlot<'a> {
    lock: &'a ExclusiveLock,
    ono: u64,
}

impl Drop for MapSlot<'_> {
    fn drop(&mut self) {
        self.lock
            .map_busy
            .lock()
            .expect("map slots")
            .remove(&self.ono);
        self.lock.map_idle.notify_waiters();
    }
}

pub(crate) fn rados_err(e: ceph_rados::Error) -> RbdError {
    RbdError::from(e)
}

/// `cls_lock` input for taking `rbd_lock`.
fn lock_op(cookie: &str, tag: &str) -> LockOp {
    LockOp {
        name: RBD_LOCK_NAME.into(),
        lock_type: lock_type::EXCLUSIVE,
        cookie: cookie.into(),
        tag: tag.into(),
        description: String::new(),
        duration: Default::default(),
        flags: 0,
    }
}

/// Decode a notify reply: `map<(gid, cookie), bufferlist> acks`, `set<(gid, cookie)>
/// timeouts` (ceph: src/osd/PrimaryLogPG.cc notify completion; librados `notify2`).
pub fn decode_notify_acks(
    b: &[u8],
) -> std::result::Result<Vec<(u64, u64, Vec<u8>)>, ceph_encoding::DecodeError> {
    let mut d = Decoder::new(b);
    let n = d.count(20, "notify acks")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let gid = d.u64()?;
        let cookie = d.u64()?;
        let bl = d.blob("notify ack payload")?.to_vec();
        out.push((gid, cookie, bl));
    }
    Ok(out)
}

pub(crate) fn lock_notify(op_code: u32, client: ClientId, force: Option<bool>) -> Vec<u8> {
    let mut raw = Vec::new();
    raw.put_u64(client.gid);
    raw.put_u64(client.handle);
    if let Some(f) = force {
        raw.put_bool(f);
    }
    ceph_encoding::encode_to_vec(&NotifyMessage {
        version: crate::watch_notify::NOTIFY_MESSAGE_VERSION,
        op: op_code,
        raw,
    })
}

/// The blocklist address form the monitor parses (`IP:port/nonce`, no type prefix).
fn addr_for_blocklist(a: &ceph_encoding::EntityAddr) -> Option<String> {
    a.addr.map(|s| format!("{s}/{}", a.nonce))
}

impl Image {
    pub(crate) fn xlock(&self) -> Option<&Arc<ExclusiveLock>> {
        self.inner.xlock.as_ref()
    }

    /// True if this handle owns the image's exclusive lock.
    pub fn is_lock_owner(&self) -> bool {
        self.xlock().map(|x| x.is_owner()).unwrap_or(false)
    }

    /// The I/O gate for a write: the shared side of the quiesce lock, taken with the
    /// exclusive lock held (acquired first if needed, as librbd's ImageDispatch does).
    pub(crate) async fn write_gate(&self) -> Result<tokio::sync::RwLockReadGuard<'_, ()>> {
        loop {
            if let Some(x) = self.xlock() {
                x.check_usable()?;
            }
            let g = self.inner.quiesce.read().await;
            let Some(x) = self.xlock() else {
                return Ok(g);
            };
            if x.is_owner() {
                return Ok(g);
            }
            drop(g);
            // boxed: the rare acquisition's state stays out of every I/O's future
            Box::pin(self.acquire_lock()).await?;
        }
    }

    /// [`Self::write_gate`] as an owned guard, for write-around writes whose tasks
    /// outlive the caller's request: a lock release or quiesce waits for them.
    pub(crate) async fn write_gate_owned(&self) -> Result<tokio::sync::OwnedRwLockReadGuard<()>> {
        loop {
            if let Some(x) = self.xlock() {
                x.check_usable()?;
            }
            let g = self.inner.quiesce.clone().read_owned().await;
            let Some(x) = self.xlock() else {
                return Ok(g);
            };
            if x.is_owner() {
                return Ok(g);
            }
            drop(g);
            // boxed: the rare acquisition's state stays out of every I/O's future
            Box::pin(self.acquire_lock()).await?;
        }
    }

    /// The gate for a maintenance operation (resize, snapshots, flatten, rollback):
    /// holds off a lock release until the operation is done.
    pub(crate) async fn op_gate(&self) -> Result<Option<tokio::sync::RwLockReadGuard<'_, ()>>> {
        loop {
            let Some(x) = self.xlock() else {
                return Ok(None);
            };
            x.check_usable()?;
            let g = x.ops.read().await;
            if x.is_owner() {
                return Ok(Some(g));
            }
            drop(g);
            crate::proxy::check_not_serving()?;
            // boxed: the rare acquisition's state stays out of every I/O's future
            Box::pin(self.acquire_lock()).await?;
        }
    }

    /// The gate for snapshot rename/protect/unprotect, which librbd runs without the
    /// lock on images without journaling (`Operations::snap_rename` & co.): holds off a
    /// release if we happen to own the lock, never acquires it.
    pub(crate) async fn lockless_op_gate(
        &self,
    ) -> Result<Option<tokio::sync::RwLockReadGuard<'_, ()>>> {
        let Some(x) = self.xlock() else {
            return Ok(None);
        };
        x.check_usable()?;
        let g = x.ops.read().await;
        Ok(x.is_owner().then_some(g))
    }

    /// Record a write's result (blocklisting makes the image unusable).
    pub(crate) fn note_result<T>(&self, r: &Result<T>) {
        if let Some(x) = self.xlock() {
            x.note(r);
        }
    }

    /// Take the exclusive lock now (librbd `rbd_lock_acquire` without the exclusive
    /// policy): waits for a live owner to hand it over, breaks a dead owner's lock.
    pub async fn acquire_lock(&self) -> Result<()> {
        self.acquire(true).await.map(|_| ())
    }

    /// One attempt at the lock without asking a live owner for it (librbd
    /// `ExclusiveLock::try_acquire_lock`, what `C_InvokeAsyncRequest` does before
    /// proxying): a dead owner is still broken. False if a live owner keeps it.
    pub(crate) async fn try_acquire_lock(&self) -> Result<bool> {
        self.acquire(false).await
    }

    async fn acquire(&self, request: bool) -> Result<bool> {
        let Some(x) = self.xlock().cloned() else {
            return Ok(true);
        };
        let _t = x.transition.lock().await;
        if x.is_owner() {
            return Ok(true);
        }
        x.check_usable()?;
        let io = &self.inner.md_io;
        let oid = &self.inner.header_oid;
        let me = self.client_id();
        if me.handle == 0 {
            return Err(RbdError::refused(
                "the exclusive lock needs a header watch",
                Errno::EINVAL,
            ));
        }
        let cookie = lock_cookie(me.handle);
        let mut backoff = Duration::from_millis(50);
        loop {
            x.check_usable()?;
            let r = cls::lock::lock(&lock_op(&cookie, LOCK_TAG))
                .exec(io, oid)
                .await;
            x.note(&r);
            match r {
                Ok(_) => break,
                Err(e) if e.is_exists() => break, // already ours (same entity + cookie)
                Err(e) if e.errno() == Errno::EBUSY => {}
                Err(e) => return Err(e),
            }
            // busy: who holds it, and are they alive? (GetLockerRequest, BreakRequest)
            let info = self.lock_info().await?;
            let Some((id, linfo)) = info.lockers.iter().next() else {
                continue; // released meanwhile
            };
            if info.lock_type != lock_type::EXCLUSIVE
                || info.tag != LOCK_TAG
                || parse_lock_cookie(&id.cookie).is_none()
            {
                return Err(RbdError::busy(format!(
                    "image is locked by an external locker ({} cookie '{}', tag '{}')",
                    id.locker, id.cookie, info.tag
                )));
            }
            let handle = parse_lock_cookie(&id.cookie).unwrap_or(0);
            let watchers = io.list_watchers(oid).await.map_err(rados_err)?;
            let alive = watchers
                .iter()
                .any(|w| w.name == id.locker && w.cookie == handle);
            if !alive {
                info!(
                    "breaking the lock of dead owner {} ({}) on {oid}",
                    id.locker, linfo.addr
                );
                if let Some(addr) = addr_for_blocklist(&linfo.addr) {
                    self.blocklist(&addr, x.blocklist_expire).await?;
                }
                cls::lock::break_lock(RBD_LOCK_NAME, id.locker, &id.cookie)
                    .exec(io, oid)
                    .await
                    .gone_ok()?;
                continue;
            }
            if !request {
                return Ok(false);
            }
            // alive: ask for it (ImageWatcher::notify_request_lock) and wait for RELEASED_LOCK
            let released = x.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let msg = lock_notify(op::REQUEST_LOCK, me, Some(false));
            match io.notify(oid, &msg, NOTIFY_TIMEOUT).await {
                Ok(reply) => {
                    for (gid, c, payload) in decode_notify_acks(&reply).unwrap_or_default() {
                        if payload.is_empty() || (gid == me.gid && c == me.handle) {
                            continue;
                        }
                        if let Ok(ResponseMessage { result }) =
                            ceph_encoding::decode_exact::<ResponseMessage>(&payload)
                        {
                            if result == -(Errno::EROFS.0) {
                                return Err(RbdError::refused(
                                    "the exclusive lock owner refused to release the lock",
                                    Errno::EROFS,
                                ));
                            }
                        }
                    }
                }
                Err(e) => debug!("request lock notify on {oid}: {e}"),
            }
            let _ = tokio::time::timeout(backoff, released).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        // We hold the header lock, but writers must not see us as the owner until the
        // object map is loaded: a writer passing the gate in between would skip the
        // map update and its object would then read as NONEXISTENT.
        let map = match self.post_acquire().await {
            Ok(map) => map,
            Err(e) => {
                warn!("after acquiring the lock on {oid}: {e}; releasing it");
                let _ = cls::lock::unlock(RBD_LOCK_NAME, &cookie)
                    .exec(io, oid)
                    .await;
                *x.owned.lock().expect("lock state") = Owned::default();
                x.note(&Err::<(), _>(RbdError::refused(e.to_string(), e.errno())));
                return Err(e);
            }
        };
        let (map, map_invalid, fast_diff) = map;
        *x.owned.lock().expect("lock state") = Owned {
            cookie: Some(cookie.clone()),
            map,
            map_invalid,
            fast_diff,
        };
        let msg = lock_notify(op::ACQUIRED_LOCK, me, None);
        if let Err(e) = io.notify(oid, &msg, NOTIFY_TIMEOUT).await {
            debug!("acquired lock notify on {oid}: {e}");
        }
        Ok(true)
    }

    /// After a feature change by the owner (librbd refreshes the image, which opens or
    /// closes the object map): lock and load the head map if the image has one now,
    /// drop it if not.
    pub(crate) async fn reload_object_map(&self) -> Result<()> {
        let Some(x) = self.xlock() else {
            return Ok(());
        };
        if !x.is_owner() {
            return Ok(());
        }
        let (map, map_invalid, fast_diff) = self.post_acquire().await?;
        let mut o = x.owned.lock().expect("lock state");
        if o.cookie.is_some() {
            o.map = map;
            o.map_invalid = map_invalid;
            o.fast_diff = fast_diff;
        }
        Ok(())
    }

    /// librbd `PostAcquireRequest`: refresh the header, lock and load the object map
    /// (returned, for the caller to install together with the ownership, with whether
    /// the header flags it invalid and whether the image has fast-diff).
    async fn post_acquire(&self) -> Result<(Option<ObjectMap>, bool, bool)> {
        self.invalidate();
        let st = self.state().await?;
        let invalid = st.h.flags & features::flag::OBJECT_MAP_INVALID != 0;
        let fast_diff = st.h.features & features::FAST_DIFF != 0;
        if st.h.features & features::OBJECT_MAP == 0 {
            return Ok((None, invalid, fast_diff));
        }
        let io = &self.inner.md_io;
        let moid = object_map::object_map_name(&self.inner.id, NOSNAP);
        // object_map::LockRequest: cls lock with an empty cookie and tag, breaking stale ones
        let mut broke = false;
        loop {
            match cls::lock::lock(&lock_op("", "")).exec(io, &moid).await {
                Ok(_) => break,
                Err(e) if e.is_exists() => break,
                Err(e) if e.errno() == Errno::EBUSY && !broke => {
                    broke = true;
                    if let Ok(b) = cls::lock::get_info(RBD_LOCK_NAME).exec(io, &moid).await {
                        let info: cls::lock::LockInfo = cls::decode(&b)?;
                        for id in info.lockers.keys() {
                            let _ = cls::lock::break_lock(RBD_LOCK_NAME, id.locker, &id.cookie)
                                .exec(io, &moid)
                                .await;
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let want = object_map::object_count(&st.h.layout, st.h.size);
        let map = match object_map::load().exec(io, &moid).await {
            Ok(b) => Some(ObjectMap::decode(&b)?),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let map = match map {
            Some(m) if m.len() == want => m,
            other => {
                // librbd object_map::RefreshRequest: resize a map of the wrong size
                let ops = vec![
                    cls::lock::assert_locked(RBD_LOCK_NAME, lock_type::EXCLUSIVE, "", "").op(),
                    object_map::resize(want, state::NONEXISTENT).op(),
                ];
                io.operate_write(&moid, ops).await?;
                let mut m = other.unwrap_or_default();
                m.states.resize(want as usize, state::NONEXISTENT);
                m
            }
        };
        Ok((Some(map), invalid, fast_diff))
    }

    /// Release the lock (librbd `ReleaseRequest`): wait for maintenance operations and
    /// in-flight writes, unlock the object map and the header, notify RELEASED_LOCK.
    pub async fn release_lock(&self) -> Result<()> {
        let Some(x) = self.xlock().cloned() else {
            return Ok(());
        };
        let _t = x.transition.lock().await;
        if !x.is_owner() {
            return Ok(());
        }
        let _o = x.ops.write().await;
        let _q = self.inner.quiesce.write().await;
        let cookie = x.cookie().unwrap_or_default();
        let had_map = x.holds_map_lock();
        *x.owned.lock().expect("lock state") = Owned::default();
        let io = &self.inner.md_io;
        let oid = &self.inner.header_oid;
        if had_map {
            let moid = object_map::object_map_name(&self.inner.id, NOSNAP);
            match cls::lock::unlock(RBD_LOCK_NAME, "").exec(io, &moid).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => debug!("unlock {moid}: {e}"),
            }
        }
        let r = match cls::lock::unlock(RBD_LOCK_NAME, &cookie)
            .exec(io, oid)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        };
        drop(_q);
        drop(_o);
        let msg = lock_notify(op::RELEASED_LOCK, self.client_id(), None);
        if let Err(e) = io.notify(oid, &msg, NOTIFY_TIMEOUT).await {
            debug!("released lock notify on {oid}: {e}");
        }
        r
    }

    /// `osd blocklist add <addr> [expire]` (librados `blocklist_add`), then wait for an
    /// OSD map that has it, so the OSDs refuse the old owner before its lock is broken.
    async fn blocklist(&self, addr: &str, expire: u64) -> Result<()> {
        let cmd = if expire > 0 {
            format!(
                r#"{{"prefix":"osd blocklist","blocklistop":"add","addr":"{addr}","expire":{expire}.0}}"#
            )
        } else {
            format!(r#"{{"prefix":"osd blocklist","blocklistop":"add","addr":"{addr}"}}"#)
        };
        self.inner
            .rados
            .mon_command(&cmd, Bytes::new())
            .await
            .map_err(rados_err)?;
        let _ = self.inner.rados.mon().wait_for_latest_osdmap().await;
        Ok(())
    }
}

/// Handle lock traffic seen on the header watch; returns the ack payload.
/// REQUEST_LOCK to the owner: accept (release in the background) unless in exclusive
/// mode (-EROFS), as `ImageWatcher::handle_payload(RequestLockPayload)`.
pub(crate) fn handle_lock_notify(inner: &Arc<ImageInner>, op_code: u32, from: ClientId) -> Vec<u8> {
    let Some(x) = inner.xlock.clone() else {
        return Vec::new();
    };
    let me_handle = inner.watch_cookie_now();
    if from.gid == inner.rados.instance_id() && from.handle == me_handle {
        return Vec::new();
    }
    match op_code {
        op::RELEASED_LOCK => {
            x.peer_released();
            Vec::new()
        }
        op::REQUEST_LOCK if x.is_owner() => {
            let result = if x.exclusive {
                -(Errno::EROFS.0)
            } else {
                let img = Image {
                    inner: inner.clone(),
                };
                tokio::spawn(async move {
                    if let Err(e) = img.release_lock().await {
                        warn!("releasing the lock on request: {e}");
                    }
                });
                0
            };
            ceph_encoding::encode_to_vec(&ResponseMessage { result })
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies() {
        assert_eq!(lock_cookie(140353463236504), "auto 140353463236504");
        assert_eq!(parse_lock_cookie("auto 42"), Some(42));
        assert_eq!(parse_lock_cookie("mine"), None);
    }

    #[test]
    fn lock_payloads() {
        let c = ClientId {
            gid: 4100,
            handle: 7,
        };
        let b = lock_notify(op::REQUEST_LOCK, c, Some(false));
        // VERS(7,1), len 4+16+1, op 2, gid, handle, force
        assert_eq!(&b[..6], &[7, 1, 21, 0, 0, 0]);
        assert_eq!(&b[6..10], &2u32.to_le_bytes());
        let m = NotifyMessage::from_payload(&b).unwrap();
        assert_eq!(
            m.payload(),
            crate::watch_notify::NotifyPayload::Lock {
                op: op::REQUEST_LOCK,
                client: c
            }
        );
    }

    #[test]
    fn notify_acks() {
        let mut b = Vec::new();
        b.put_u32(2);
        b.put_u64(1);
        b.put_u64(2);
        b.put_blob(&[1, 1, 4, 0, 0, 0, 0xe2, 0xff, 0xff, 0xff]);
        b.put_u64(3);
        b.put_u64(4);
        b.put_blob(&[]);
        b.put_u32(0);
        let a = decode_notify_acks(&b).unwrap();
        assert_eq!(a.len(), 2);
        let r: ResponseMessage = ceph_encoding::decode_exact(&a[0].2).unwrap();
        assert_eq!(r.result, -30);
        assert!(a[1].2.is_empty());
    }
}
