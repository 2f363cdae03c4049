//! An open image: header state, refresh, the header watch, and metadata queries.
//!
//! The header metadata lives in an immutable [`State`] behind an `Arc`; I/O takes a
//! clone of the `Arc` (a brief read lock, never held across an await) and runs without
//! any lock. A HEADER_UPDATE notification marks the state stale; the next operation
//! refreshes it first (one refresh at a time), as librbd's `refresh_if_required`.

use crate::cache::{CacheConfig, WriteAround};
use crate::cls::{
    self, lock::LockInfo, protection, ParentImageSpec, SnapshotInfo, SnapshotNamespace,
};
use crate::error::{RbdError, Result};
use crate::exclusive_lock::ExclusiveLock;
use crate::features;
use crate::info::{ImageInfo, ParentInfo};
use crate::layout::Layout;
use crate::util::{self, header_name};
use crate::watch_notify::{ClientId, NotifyMessage, NotifyPayload, ResponseMessage};
use ceph_encoding::UTime;
use ceph_rados::{Errno, IoCtx, OsdOp, Rados, SnapContext, WatchEvent, NOSNAP};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;
use tokio::sync::oneshot;
use tracing::{debug, warn};

/// How long a notify waits for the watchers' acks (librbd `NOTIFY_TIMEOUT` 5 s).
pub(crate) const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// One snapshot of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapInfo {
    /// Snapshot id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Image size at the snapshot.
    pub size: u64,
    /// Creation time.
    pub timestamp: UTime,
    /// Namespace (user, group, trash, ...).
    pub namespace: SnapshotNamespace,
    /// Protection status (see [`crate::cls::protection`]).
    pub protection_status: u8,
    /// Clone-v2 children attached to this snapshot.
    pub child_count: u32,
    /// Overlap with the parent at the snapshot (clones).
    pub parent_overlap: Option<u64>,
    /// Snapshot flags.
    pub flags: u64,
}

impl SnapInfo {
    /// True if protected (or being unprotected).
    pub fn is_protected(&self) -> bool {
        self.protection_status != protection::UNPROTECTED
    }
}

/// The header metadata of an image, as one refresh read it.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub size: u64,
    pub order: u8,
    pub features: u64,
    pub incompatible: u64,
    pub flags: u64,
    pub op_features: u64,
    pub object_prefix: String,
    pub data_pool_id: i64,
    pub layout: Layout,
    pub snapc: SnapContext,
    pub snaps: Vec<SnapInfo>,
    pub parent: ParentImageSpec,
    pub head_overlap: Option<u64>,
    pub create_timestamp: UTime,
    /// Image format: 1 (`<name>.rbd` header, see [`crate::format1`]) or 2.
    pub format: u8,
}

impl Header {
    pub fn snap(&self, id: u64) -> Option<&SnapInfo> {
        self.snaps.iter().find(|s| s.id == id)
    }

    pub fn snap_by_name(&self, name: &str) -> Option<&SnapInfo> {
        self.snaps
            .iter()
            .find(|s| s.name == name && s.namespace == SnapshotNamespace::User)
    }
}

/// The parent of a clone, opened read-only at the parent snapshot.
#[derive(Clone)]
pub(crate) struct ParentLink {
    pub spec: ParentImageSpec,
    pub image: Image,
}

/// Everything I/O needs, immutable; replaced as a whole on refresh.
pub(crate) struct State {
    pub h: Header,
    /// Data pool context: writes carry the image snap context, reads go to the open snap.
    pub data_io: IoCtx,
    /// Same, with an empty snap context (librbd's "deep" copy-up).
    pub data_io_nosnapc: IoCtx,
    /// Size at the open snapshot (head size for the head).
    pub size: u64,
    /// Parent overlap at the open snapshot (0: no parent data visible).
    pub overlap: u64,
    pub parent: Option<ParentLink>,
    /// The image's exclusive lock / object map (writable exclusive-lock opens).
    pub xlock: Option<Arc<ExclusiveLock>>,
}

impl State {
    pub fn object_name(&self, object_no: u64) -> String {
        if self.h.format == 1 {
            crate::format1::data_object_name(&self.h.object_prefix, object_no)
        } else {
            util::data_object_name(&self.h.object_prefix, object_no)
        }
    }

    /// True if part of object `object_no` maps into the parent overlap.
    pub fn object_in_overlap(&self, object_no: u64) -> bool {
        if self.overlap == 0 || self.parent.is_none() {
            return false;
        }
        let l = self.h.layout;
        l.object_to_image(object_no, 0, l.object_size)
            .iter()
            .any(|(o, _)| *o < self.overlap)
    }
}

struct WatchHandle {
    cookie: u64,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

pub(crate) struct ImageInner {
    pub rados: Rados,
    pub md_io: IoCtx,
    pub id: String,
    pub name: Mutex<String>,
    pub header_oid: String,
    /// 1 for a format-1 image (its id is empty, its header `<name>.rbd`), else 2.
    pub format: u8,
    pub read_only: bool,
    pub snap_id: u64,
    state: RwLock<Option<Arc<State>>>,
    stale: AtomicBool,
    refresh_lock: tokio::sync::Mutex<()>,
    pub quiesce: Arc<tokio::sync::RwLock<()>>,
    watch: Mutex<Option<WatchHandle>>,
    /// Last modify / access time written to the header (seconds), for librbd's
    /// `rbd_mtime_update_interval` / `rbd_atime_update_interval` (60 s) updates.
    mtime: AtomicU64,
    atime: AtomicU64,
    /// Exclusive lock state (writable opens of exclusive-lock images).
    pub(crate) xlock: Option<Arc<ExclusiveLock>>,
    /// The write-around state (writable opens; it may never leave writethrough).
    pub(crate) cache: Option<Arc<WriteAround>>,
    /// The simple I/O scheduler (writable opens with `rbd_io_scheduler = simple`).
    pub(crate) sched: Option<Arc<crate::scheduler::Scheduler>>,
}

impl ImageInner {
    /// Our header watch cookie (0 without a watch).
    pub(crate) fn watch_cookie_now(&self) -> u64 {
        self.watch
            .lock()
            .expect("watch lock")
            .as_ref()
            .map(|w| w.cookie)
            .unwrap_or(0)
    }
}

impl Drop for ImageInner {
    fn drop(&mut self) {
        if let Some(x) = &self.xlock {
            // dropped without close(): give the lock back in the background
            x.release_on_drop(
                &self.md_io,
                &self.header_oid,
                self.rados.instance_id(),
                self.watch_cookie_now(),
            );
        }
        if let Some(mut w) = self.watch.lock().expect("watch lock").take() {
            // the watch task unregisters the watch by itself when told to stop
            if let Some(s) = w.stop.take() {
                let _ = s.send(());
            }
        }
    }
}

/// An open RBD image. Cheap to clone (a handle); all clones share the state and the
/// header watch.
///
/// I/O methods take `&self` and may run concurrently from many tasks: each request is
/// split into per-object operations that go out at once. Opening registers a watch on
/// the header (so `rbd status`/`rbd rm` see the image in use); [`Image::close`]
/// removes it (dropping the last handle removes it in the background).
#[derive(Clone)]
pub struct Image {
    pub(crate) inner: Arc<ImageInner>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("id", &self.inner.id)
            .field("snap_id", &self.inner.snap_id)
            .finish()
    }
}

/// Options for opening an image.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Open read-only (no writes; images with features we can only read are allowed).
    pub read_only: bool,
    /// Open at this snapshot (implies read-only).
    pub snapshot: Option<String>,
    /// Do not register a header watch (read-only opens never register one).
    pub no_watch: bool,
    /// Exclusive-lock images: keep the lock once taken and refuse peers' requests for
    /// it (krbd's `exclusive` map option).
    pub exclusive: bool,
    /// `rbd_blocklist_expire_seconds` for blocklisting a dead lock owner (0: the
    /// monitor's default).
    pub blocklist_expire_seconds: u64,
    /// The `rbd_cache*` options from the caller's configuration (`None`: the
    /// [`crate::Rbd`] handle's, else librbd's defaults). The pool's and the image's
    /// `conf_rbd_cache*` metadata are applied over them at open, as librbd does.
    pub cache: Option<CacheConfig>,
}

impl Image {
    /// Open the image with id `id` in `md_io` (pool + namespace).
    pub(crate) async fn open_by_id(
        md_io: &IoCtx,
        id: &str,
        name: Option<String>,
        opts: &OpenOptions,
    ) -> Result<Image> {
        let header_oid = header_name(id);
        let name = match name {
            Some(n) => n,
            None => match cls::dir_get_name(id).exec(md_io, util::RBD_DIRECTORY).await {
                Ok(b) => cls::decode_string(&b)?,
                // an image in the trash keeps its name in the trash entry
                Err(e) if e.is_not_found() => crate::Rbd::new(md_io.clone())
                    .trash_get(id)
                    .await
                    .map(|t| t.name)
                    .unwrap_or_default(),
                Err(e) => return Err(e),
            },
        };
        Self::open_inner(md_io, id, name, header_oid, 2, opts).await
    }

    /// Open format-1 image `name` (header `<name>.rbd`; librbd's `OpenRequest` falls
    /// back to it when `rbd_id.<name>` does not exist). Its id is empty, as librbd's.
    pub(crate) async fn open_v1(md_io: &IoCtx, name: &str, opts: &OpenOptions) -> Result<Image> {
        let oid = crate::format1::header_name(name);
        Self::open_inner(md_io, "", name.to_string(), oid, 1, opts).await
    }

    async fn open_inner(
        md_io: &IoCtx,
        id: &str,
        name: String,
        header_oid: String,
        format: u8,
        opts: &OpenOptions,
    ) -> Result<Image> {
        let rados = md_io.rados().clone();
        let read_only = opts.read_only || opts.snapshot.is_some();
        // resolve the snapshot name against a first header read
        let header = fetch_any_header(md_io, &header_oid, format, read_only)
            .await
            .map_err(|e| {
                if e.is_not_found() {
                    RbdError::not_found(format!(
                        "image {} (id {id}) does not exist",
                        if name.is_empty() { "?" } else { &name }
                    ))
                } else {
                    e
                }
            })?;
        let snap_id = match &opts.snapshot {
            None => NOSNAP,
            Some(s) => header.snap_by_name(s).map(|s| s.id).ok_or_else(|| {
                RbdError::not_found(format!("snapshot '{s}' of image '{name}' does not exist"))
            })?,
        };
        check_features(&header, if name.is_empty() { id } else { &name }, read_only)?;
        let xlock = (!read_only && header.features & features::EXCLUSIVE_LOCK != 0).then(|| {
            Arc::new(ExclusiveLock::new(
                md_io.clone(),
                id.to_string(),
                opts.exclusive,
                opts.blocklist_expire_seconds,
            ))
        });
        if xlock.is_some() && opts.no_watch {
            return Err(RbdError::InvalidArgument(
                "exclusive-lock images need the header watch to be opened for writing".into(),
            ));
        }
        let (cache, sched) = if read_only {
            (None, None)
        } else {
            // librbd applies the pool's, then the image's `conf_` metadata over the
            // process configuration when it opens an image (ImageCtx::apply_metadata)
            let mut cfg = opts.cache.clone().unwrap_or_default();
            for oid in [util::RBD_INFO, header_oid.as_str()] {
                match crate::meta::list(md_io, oid).await {
                    Ok(m) => cfg.apply_metadata(&m),
                    Err(e) => debug!("reading {oid} metadata for the cache options: {e}"),
                }
            }
            let sched = (cfg.io_scheduler == crate::scheduler::IoScheduler::Simple)
                .then(|| crate::scheduler::Scheduler::new(cfg.io_scheduler_max_delay_ms));
            (Some(WriteAround::new(cfg)), sched)
        };
        let inner = Arc::new(ImageInner {
            rados,
            md_io: md_io.clone(),
            id: id.to_string(),
            name: Mutex::new(name),
            header_oid,
            format,
            read_only,
            snap_id,
            state: RwLock::new(None),
            stale: AtomicBool::new(true),
            refresh_lock: tokio::sync::Mutex::new(()),
            quiesce: Arc::new(tokio::sync::RwLock::new(())),
            watch: Mutex::new(None),
            mtime: AtomicU64::new(0),
            atime: AtomicU64::new(0),
            xlock,
            cache,
            sched,
        });
        let img = Image { inner };
        img.install(header).await?;
        if format == 1 {
            // no timestamps in a format-1 header: never write them (touch() skips MAX)
            img.inner.mtime.store(u64::MAX, Ordering::Relaxed);
            img.inner.atime.store(u64::MAX, Ordering::Relaxed);
        } else if !read_only {
            let io = &img.inner.md_io;
            let oid = &img.inner.header_oid;
            let get = |c: cls::ClsCall| async move {
                c.exec(io, oid)
                    .await
                    .ok()
                    .and_then(|b| cls::decode_utime(&b).ok())
                    .map(|t| t.sec as u64)
                    .unwrap_or(0)
            };
            img.inner
                .mtime
                .store(get(cls::get_modify_timestamp()).await, Ordering::Relaxed);
            img.inner
                .atime
                .store(get(cls::get_access_timestamp()).await, Ordering::Relaxed);
        }
        // librbd's user read-only opens register no header watch (OpenRequest skips
        // it for IMAGE_READ_ONLY_FLAG_USER): a reader never makes `rbd rm` fail with
        // EBUSY and needs no write cap on the header (a clone's parent in a pool the
        // user may only read). ceph: src/librbd/image/OpenRequest.cc
        if !opts.no_watch && !read_only {
            img.register_watch().await?;
        }
        Ok(img)
    }

    /// Open an image at a snapshot id without a watch (a clone's parent).
    pub(crate) fn open_parent(rados: &Rados, spec: &ParentImageSpec) -> crate::util::BoxFut<Image> {
        let mut io = rados.ioctx_by_id(spec.pool_id);
        io.set_namespace(&spec.pool_namespace);
        let spec = spec.clone();
        Box::pin(async move {
            let header_oid = header_name(&spec.image_id);
            let header = fetch_header(&io, &header_oid, true).await?;
            if header.snap(spec.snap_id).is_none() {
                return Err(RbdError::not_found(format!(
                    "parent snapshot {} of image {} does not exist",
                    spec.snap_id, spec.image_id
                )));
            }
            check_features(&header, &spec.image_id, true)?;
            let inner = Arc::new(ImageInner {
                rados: io.rados().clone(),
                md_io: io.clone(),
                id: spec.image_id.clone(),
                name: Mutex::new(String::new()),
                header_oid,
                format: 2,
                read_only: true,
                snap_id: spec.snap_id,
                state: RwLock::new(None),
                stale: AtomicBool::new(true),
                refresh_lock: tokio::sync::Mutex::new(()),
                quiesce: Arc::new(tokio::sync::RwLock::new(())),
                watch: Mutex::new(None),
                mtime: AtomicU64::new(u64::MAX),
                atime: AtomicU64::new(u64::MAX),
                xlock: None,
                cache: None,
                sched: None,
            });
            let img = Image { inner };
            img.install(header).await?;
            Ok(img)
        })
    }

    /// Build and publish a new state from a fetched header.
    async fn install(&self, h: Header) -> Result<()> {
        let inner = &self.inner;
        let old = self.state_now();
        let (size, overlap) = if inner.snap_id == NOSNAP {
            (h.size, h.head_overlap.unwrap_or(0))
        } else {
            let s = h.snap(inner.snap_id).ok_or_else(|| {
                RbdError::not_found(format!(
                    "snapshot {} of image {} was removed",
                    inner.snap_id, inner.id
                ))
            })?;
            (s.size, s.parent_overlap.unwrap_or(0))
        };
        let parent = if h.parent.exists() && overlap > 0 {
            match old.as_ref().and_then(|o| o.parent.clone()) {
                Some(p) if p.spec == h.parent => Some(p),
                _ => {
                    let image = Image::open_parent(&inner.rados, &h.parent).await?;
                    Some(ParentLink {
                        spec: h.parent.clone(),
                        image,
                    })
                }
            }
        } else {
            None
        };
        let pool = if h.data_pool_id >= 0 {
            h.data_pool_id
        } else {
            inner.md_io.pool_id()
        };
        let mut data_io = inner.rados.ioctx_by_id(pool);
        data_io.set_namespace(inner.md_io.namespace());
        data_io.set_read_snap(inner.snap_id);
        let mut data_io_nosnapc = data_io.clone();
        data_io.set_snap_context(h.snapc.clone());
        data_io_nosnapc.set_snap_context(SnapContext::default());
        let st = State {
            h,
            data_io,
            data_io_nosnapc,
            size,
            overlap,
            parent,
            xlock: inner.xlock.clone(),
        };
        *inner.state.write().expect("state lock") = Some(Arc::new(st));
        Ok(())
    }

    fn state_now(&self) -> Option<Arc<State>> {
        self.inner.state.read().expect("state lock").clone()
    }

    /// The current state, refreshed first if a header update was announced.
    pub(crate) async fn state(&self) -> Result<Arc<State>> {
        if let Some(x) = &self.inner.xlock {
            x.check_usable()?;
        }
        if self.inner.stale.load(Ordering::Acquire) {
            // boxed: the rare refresh's state stays out of every I/O's future
            Box::pin(self.refresh()).await?;
        } else if self.inner.refresh_lock.try_lock().is_err() {
            // A refresh has cleared the stale flag but not installed the new header yet:
            // wait for it, or this request would go out with the old size / snap context.
            drop(self.inner.refresh_lock.lock().await);
        }
        Ok(self.state_now().expect("state installed at open"))
    }

    /// Re-read the header now (librbd `refresh`).
    pub async fn refresh(&self) -> Result<()> {
        let _g = self.inner.refresh_lock.lock().await;
        if !self.inner.stale.swap(false, Ordering::AcqRel) && self.state_now().is_some() {
            return Ok(());
        }
        let r = async {
            let h = fetch_any_header(
                &self.inner.md_io,
                &self.inner.header_oid,
                self.inner.format,
                self.inner.read_only,
            )
            .await?;
            self.install(h).await
        }
        .await;
        if r.is_err() {
            self.inner.stale.store(true, Ordering::Release);
        }
        r
    }

    /// Mark the header state stale (it is re-read before the next operation).
    pub(crate) fn invalidate(&self) {
        self.inner.stale.store(true, Ordering::Release);
    }

    async fn register_watch(&self) -> Result<()> {
        let inner = &self.inner;
        let watch = inner.md_io.watch(&inner.header_oid).await?;
        let cookie = watch.cookie;
        let (stop_tx, stop_rx) = oneshot::channel();
        let weak = Arc::downgrade(inner);
        let io = inner.md_io.clone();
        let oid = inner.header_oid.clone();
        let quiesce = inner.quiesce.clone();
        let task = tokio::spawn(watch_task(watch, stop_rx, weak, io, oid, quiesce));
        *inner.watch.lock().expect("watch lock") = Some(WatchHandle {
            cookie,
            stop: Some(stop_tx),
            task,
        });
        Ok(())
    }

    /// Close the image: remove the header watch. Other handles become unusable for
    /// watch-dependent behaviour (they still work, without refresh notifications).
    ///
    /// Write-around writes still in flight are waited for first; if one of them (or
    /// one acknowledged since the last flush) failed, the image is closed all the same
    /// and that error is returned, as librbd's close returns its flush's error.
    pub async fn close(self) -> Result<()> {
        let flushed = if self.inner.read_only {
            Ok(())
        } else {
            self.flush().await
        };
        if let Err(e) = self.release_lock().await {
            debug!("releasing the exclusive lock on close: {e}");
        }
        let w = self.inner.watch.lock().expect("watch lock").take();
        if let Some(mut w) = w {
            if let Some(s) = w.stop.take() {
                let _ = s.send(());
            }
            let _ = (&mut w.task).await;
        }
        flushed
    }

    /// Our watch cookie on the header (0 if not watching).
    pub fn watch_cookie(&self) -> u64 {
        self.inner
            .watch
            .lock()
            .expect("watch lock")
            .as_ref()
            .map(|w| w.cookie)
            .unwrap_or(0)
    }

    /// This client's id as librbd peers see it (global id, watch cookie).
    pub fn client_id(&self) -> ClientId {
        ClientId {
            gid: self.inner.rados.instance_id(),
            handle: self.watch_cookie(),
        }
    }

    /// Tell the other watchers that the header changed (librbd `notify_header_update`).
    pub(crate) async fn notify_header_update(&self) {
        let msg = ceph_encoding::encode_to_vec(&NotifyMessage::header_update());
        if let Err(e) = self
            .inner
            .md_io
            .notify(&self.inner.header_oid, &msg, NOTIFY_TIMEOUT)
            .await
        {
            debug!("header update notify on {}: {e}", self.inner.header_oid);
        }
        self.invalidate();
    }

    /// Image id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Image name (empty if unknown, e.g. an image in the trash).
    pub fn name(&self) -> String {
        self.inner.name.lock().expect("name lock").clone()
    }

    /// The snapshot this handle reads, if opened at one.
    pub fn snap_id(&self) -> Option<u64> {
        (self.inner.snap_id != NOSNAP).then_some(self.inner.snap_id)
    }

    /// True if opened read-only (or at a snapshot).
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// The metadata I/O context (pool + namespace of the header).
    pub fn ioctx(&self) -> &IoCtx {
        &self.inner.md_io
    }

    /// Size in bytes (at the open snapshot).
    pub async fn size(&self) -> Result<u64> {
        Ok(self.state().await?.size)
    }

    /// Feature bits.
    pub async fn features(&self) -> Result<u64> {
        Ok(self.state().await?.h.features)
    }

    /// Operation feature bits.
    pub async fn op_features(&self) -> Result<u64> {
        Ok(self.state().await?.h.op_features)
    }

    /// Image format: 1 (old format, see [`crate::format1`]) or 2.
    pub fn format(&self) -> u8 {
        self.inner.format
    }

    /// Object size order.
    pub async fn order(&self) -> Result<u8> {
        Ok(self.state().await?.h.order)
    }

    /// Striping layout.
    pub async fn layout(&self) -> Result<Layout> {
        Ok(self.state().await?.h.layout)
    }

    /// Data object name prefix (`block_name_prefix`).
    pub async fn object_prefix(&self) -> Result<String> {
        Ok(self.state().await?.h.object_prefix.clone())
    }

    /// The write snap context.
    pub async fn snap_context(&self) -> Result<SnapContext> {
        Ok(self.state().await?.h.snapc.clone())
    }

    /// All snapshots (every namespace), by id.
    pub async fn snapshots(&self) -> Result<Vec<SnapInfo>> {
        Ok(self.state().await?.h.snaps.clone())
    }

    /// The parent spec and the overlap at the open snapshot, if this is a clone.
    pub async fn parent_spec(&self) -> Result<Option<(ParentImageSpec, u64)>> {
        let st = self.state().await?;
        Ok(st
            .h
            .parent
            .exists()
            .then(|| (st.h.parent.clone(), st.overlap)))
    }

    /// The parent of this clone, with names resolved (`rbd info`'s `parent` section).
    pub async fn parent_info(&self) -> Result<Option<ParentInfo>> {
        let st = self.state().await?;
        if !st.h.parent.exists() {
            return Ok(None);
        }
        let overlap = if self.inner.snap_id == NOSNAP {
            st.h.head_overlap.unwrap_or(0)
        } else {
            st.h.snap(self.inner.snap_id)
                .and_then(|s| s.parent_overlap)
                .unwrap_or(0)
        };
        if self.inner.snap_id == NOSNAP && st.h.head_overlap.is_none() {
            // detached head: only snapshots still reference the parent
            return Ok(None);
        }
        Ok(Some(
            resolve_parent(&self.inner.rados, &st.h.parent, overlap).await?,
        ))
    }

    /// Watchers of the header (`rbd status`).
    pub async fn watchers(&self) -> Result<Vec<ceph_rados::osd::ops::WatchItem>> {
        Ok(self
            .inner
            .md_io
            .list_watchers(&self.inner.header_oid)
            .await?)
    }

    /// The exclusive-lock state of the header (`rbd lock ls`).
    pub async fn lock_info(&self) -> Result<LockInfo> {
        let r = cls::lock::get_info(cls::lock::RBD_LOCK_NAME)
            .exec(&self.inner.md_io, &self.inner.header_oid)
            .await;
        match r {
            Ok(b) => Ok(cls::decode(&b)?),
            Err(e) if e.is_not_found() => Ok(LockInfo::default()),
            Err(e) => Err(e),
        }
    }

    /// Everything `rbd info` shows.
    pub async fn info(&self) -> Result<ImageInfo> {
        let st = self.state().await?;
        let h = &st.h;
        let io = &self.inner.md_io;
        let oid = &self.inner.header_oid;
        let ts = |c: cls::ClsCall| async move {
            match c.exec(io, oid).await {
                Ok(b) => Ok::<_, RbdError>(cls::decode_utime(&b).unwrap_or(h.create_timestamp)),
                Err(e) if e.is_not_found() || e.errno() == Errno::EOPNOTSUPP => {
                    Ok(h.create_timestamp)
                }
                Err(e) => Err(e),
            }
        };
        let (access, modify) = if h.format == 1 {
            (h.create_timestamp, h.create_timestamp)
        } else {
            (
                ts(cls::get_access_timestamp()).await?,
                ts(cls::get_modify_timestamp()).await?,
            )
        };
        let data_pool = if h.data_pool_id >= 0 {
            pool_name(&self.inner.rados, h.data_pool_id).await
        } else {
            None
        };
        let snap = (self.inner.snap_id != NOSNAP)
            .then(|| h.snap(self.inner.snap_id))
            .flatten();
        let parent = self.parent_info().await?;
        Ok(ImageInfo {
            name: self.name(),
            id: self.inner.id.clone(),
            size: st.size,
            objects: h.layout.num_objects(st.size),
            order: h.order,
            object_size: h.layout.object_size,
            // librbd's snap_list (what `rbd info` counts) has every namespace: group
            // members' and trashed snapshots count too
            snapshot_count: h.snaps.len() as u64,
            data_pool,
            block_name_prefix: h.object_prefix.clone(),
            format: h.format,
            features: features::feature_names(h.features),
            op_features: features::op_feature_names(h.op_features),
            flags: features::flag_names(h.flags),
            protected: snap.map(|s| s.is_protected()),
            create_timestamp: util::format_ctime(h.create_timestamp),
            access_timestamp: util::format_ctime(access),
            modify_timestamp: util::format_ctime(modify),
            parent,
            stripe_unit: (h.features & features::STRIPINGV2 != 0).then_some(h.layout.stripe_unit),
            stripe_count: (h.features & features::STRIPINGV2 != 0).then_some(h.layout.stripe_count),
            feature_bits: h.features,
            op_feature_bits: h.op_features,
            flag_bits: h.flags,
            create_time: h.create_timestamp,
            access_time: access,
            modify_time: modify,
        })
    }

    /// librbd `ImageRequest::update_timestamp`: at most once a minute, record the
    /// modification (`write = true`) or access time in the header, in the background.
    pub(crate) fn touch(&self, write: bool) {
        const INTERVAL: u64 = 60;
        if self.inner.read_only {
            return;
        }
        let cell = if write {
            &self.inner.mtime
        } else {
            &self.inner.atime
        };
        let now = util::now().sec as u64;
        let last = cell.load(Ordering::Relaxed);
        if last == u64::MAX || now < last.saturating_add(INTERVAL) {
            return;
        }
        if cell
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let io = self.inner.md_io.clone();
        let oid = self.inner.header_oid.clone();
        tokio::spawn(async move {
            let c = if write {
                cls::set_modify_timestamp()
            } else {
                cls::set_access_timestamp()
            };
            if let Err(e) = c.exec(&io, &oid).await {
                debug!(
                    "updating the {} timestamp of {oid}: {e}",
                    if write { "modify" } else { "access" }
                );
            }
        });
    }

    /// Refuse `what` on a format-1 image. Its header is one plain object that cls_rbd's
    /// format-2 methods do not understand; this client only reads, writes, discards
    /// and removes such images (librbd can do more: use `rbd` for the rest).
    pub(crate) fn v2_only(&self, what: &str) -> Result<()> {
        if self.inner.format == 1 {
            return Err(RbdError::refused(
                format!("{what} of format-1 images is not implemented by this client"),
                Errno::EOPNOTSUPP,
            ));
        }
        Ok(())
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.inner.read_only {
            return Err(RbdError::ReadOnly);
        }
        Ok(())
    }
}

/// The name of a pool, by id (fetching a newer map if needed).
pub(crate) async fn pool_name(rados: &Rados, id: i64) -> Option<String> {
    if let Some((_, n)) = rados.pool_list().into_iter().find(|(i, _)| *i == id) {
        return Some(n);
    }
    let _ = rados.mon().wait_for_latest_osdmap().await;
    rados
        .pool_list()
        .into_iter()
        .find(|(i, _)| *i == id)
        .map(|(_, n)| n)
}

/// Resolve a parent spec to names (pool, image name, snapshot name, trash state).
pub(crate) async fn resolve_parent(
    rados: &Rados,
    spec: &ParentImageSpec,
    overlap: u64,
) -> Result<ParentInfo> {
    let pool = pool_name(rados, spec.pool_id).await.unwrap_or_default();
    let mut io = rados.ioctx_by_id(spec.pool_id);
    io.set_namespace(&spec.pool_namespace);
    let image = match cls::dir_get_name(&spec.image_id)
        .exec(&io, util::RBD_DIRECTORY)
        .await
    {
        Ok(b) => cls::decode_string(&b)?,
        Err(e) if e.is_not_found() => String::new(),
        Err(e) => return Err(e),
    };
    let snapshot = match cls::snapshot_get(spec.snap_id)
        .exec(&io, &header_name(&spec.image_id))
        .await
    {
        Ok(b) => cls::decode::<SnapshotInfo>(&b)?.name,
        Err(e) if e.is_not_found() => String::new(),
        Err(e) => return Err(e),
    };
    // an image removed to the trash keeps its header but leaves the directory
    if image.is_empty() {
        if let Ok(b) = cls::trash_get(&spec.image_id)
            .exec(&io, util::RBD_TRASH)
            .await
        {
            let t: cls::TrashImageSpec = cls::decode(&b)?;
            return Ok(ParentInfo {
                pool,
                pool_namespace: spec.pool_namespace.clone(),
                image: t.name,
                id: spec.image_id.clone(),
                snapshot,
                trash: true,
                overlap,
            });
        }
    }
    Ok(ParentInfo {
        pool,
        pool_namespace: spec.pool_namespace.clone(),
        image,
        id: spec.image_id.clone(),
        snapshot,
        trash: false,
        overlap,
    })
}

/// Refuse features this client does not implement.
pub(crate) fn check_features(h: &Header, image: &str, read_only: bool) -> Result<()> {
    let mut bad = if read_only {
        (h.features & features::INCOMPATIBLE & !features::SUPPORTED_READ)
            | (h.incompatible & !features::SUPPORTED_READ)
    } else {
        (h.features & features::RW_INCOMPATIBLE & !features::SUPPORTED_WRITE)
            | (h.features & !features::ALL)
            | (h.incompatible & !features::SUPPORTED_WRITE)
    };
    if !read_only
        && h.features & features::OPERATIONS != 0
        && h.op_features & !features::op::ALL != 0
    {
        bad |= features::OPERATIONS;
    }
    if bad != 0 {
        return Err(RbdError::UnsupportedFeatures {
            image: image.to_string(),
            mask: bad,
            names: features::feature_names(bad).join(", "),
            write: !read_only,
        });
    }
    Ok(())
}

/// Read the header of a format-1 or format-2 image.
pub(crate) async fn fetch_any_header(
    io: &IoCtx,
    oid: &str,
    format: u8,
    read_only: bool,
) -> Result<Header> {
    if format == 1 {
        fetch_header_v1(io, oid).await
    } else {
        fetch_header(io, oid, read_only).await
    }
}

/// Read a format-1 header: the whole `<name>.rbd` object holds size, order, block
/// name and every snapshot (librbd `RefreshRequest::send_v1_read_header`; its
/// `snap_list` cls call returns the same records). The snap context is the header's
/// seq and snapshot ids, newest first as the OSD expects.
pub(crate) async fn fetch_header_v1(io: &IoCtx, oid: &str) -> Result<Header> {
    let b = io.read_full(oid).await?;
    let v1 = crate::format1::HeaderV1::decode(oid, &b)?;
    let mut ids: Vec<u64> = v1.snaps.iter().map(|s| s.id).collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    let mut snaps: Vec<SnapInfo> = v1
        .snaps
        .iter()
        .map(|s| SnapInfo {
            id: s.id,
            name: s.name.clone(),
            size: s.size,
            timestamp: UTime::default(),
            namespace: SnapshotNamespace::User,
            protection_status: protection::UNPROTECTED,
            child_count: 0,
            parent_overlap: None,
            flags: 0,
        })
        .collect();
    snaps.sort_by_key(|s| s.id);
    Ok(Header {
        size: v1.size,
        order: v1.order,
        features: 0,
        incompatible: 0,
        flags: 0,
        op_features: 0,
        object_prefix: v1.block_name,
        data_pool_id: -1,
        layout: Layout::new(v1.order, 0, 0),
        snapc: SnapContext {
            seq: v1.snap_seq,
            snaps: ids,
        },
        snaps,
        parent: ParentImageSpec::default(),
        head_overlap: None,
        create_timestamp: UTime::default(),
        format: 1,
    })
}

/// Read the header: one compound op for the image-wide keys, then one for every
/// snapshot (librbd `RefreshRequest::send_v2_get_mutable_metadata` / `get_snapshots`).
pub(crate) async fn fetch_header(io: &IoCtx, oid: &str, read_only: bool) -> Result<Header> {
    for _attempt in 0..5 {
        let calls = [
            cls::get_size(NOSNAP),
            cls::get_object_prefix(),
            cls::get_features(read_only),
            cls::get_flags(NOSNAP),
            cls::get_snapcontext(),
            cls::parent_get(),
            cls::parent_overlap_get(NOSNAP),
            cls::get_data_pool(),
            cls::get_create_timestamp(),
            cls::op_features_get(),
        ];
        let r = io
            .operate(oid, calls.iter().map(|c| c.op()).collect())
            .await?;
        let out = |i: usize| -> &[u8] { r.get(i).map(|o| &o.outdata[..]).unwrap_or(&[]) };
        let (order, size) = cls::decode_get_size(out(0))?;
        let object_prefix = cls::decode_string(out(1))?;
        let (features, incompatible) = cls::decode_get_features(out(2))?;
        let flags = cls::decode_u64(out(3))?;
        let snapc = cls::decode_snapcontext_reply(out(4))?;
        let parent: ParentImageSpec = cls::decode(out(5))?;
        let head_overlap = cls::decode_opt_u64(out(6))?;
        let data_pool_id = cls::decode_i64(out(7))?;
        let create_timestamp = cls::decode_utime(out(8)).unwrap_or_default();
        let op_features = cls::decode_u64(out(9)).unwrap_or(0);
        // get_stripe_unit_count fails with ENOEXEC without the striping feature
        let (su, sc) = if features & crate::features::STRIPINGV2 != 0 {
            cls::decode_u64_pair(&cls::get_stripe_unit_count().exec(io, oid).await?)?
        } else {
            (0, 0)
        };
        if !(12..=25).contains(&order) {
            return Err(RbdError::InvalidArgument(format!(
                "{oid}: order {order} out of range"
            )));
        }
        let layout = Layout::new(order, su, sc);

        let mut snaps = Vec::with_capacity(snapc.snaps.len());
        if !snapc.snaps.is_empty() {
            let mut ops: Vec<OsdOp> = Vec::with_capacity(snapc.snaps.len() * 4);
            for &s in &snapc.snaps {
                ops.push(cls::snapshot_get(s).op());
                ops.push(cls::get_protection_status(s).op());
                ops.push(cls::parent_overlap_get(s).op());
                ops.push(cls::get_flags(s).op());
            }
            match io.operate(oid, ops).await {
                Ok(r) => {
                    for (i, _) in snapc.snaps.iter().enumerate() {
                        let o = |k: usize| -> &[u8] {
                            r.get(i * 4 + k).map(|o| &o.outdata[..]).unwrap_or(&[])
                        };
                        let si: SnapshotInfo = cls::decode(o(0))?;
                        snaps.push(SnapInfo {
                            id: si.id,
                            name: si.name,
                            size: si.image_size,
                            timestamp: si.timestamp,
                            namespace: si.namespace,
                            protection_status: cls::decode_u8(o(1))?,
                            child_count: si.child_count,
                            parent_overlap: cls::decode_opt_u64(o(2))?,
                            flags: cls::decode_u64(o(3))?,
                        });
                    }
                }
                // a snapshot went away between the two reads: start over
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            }
            snaps.sort_by_key(|s| s.id);
        }
        return Ok(Header {
            size,
            order,
            features,
            incompatible,
            flags,
            op_features,
            object_prefix,
            data_pool_id,
            layout,
            snapc,
            snaps,
            parent,
            head_overlap,
            create_timestamp,
            format: 2,
        });
    }
    Err(RbdError::busy(format!(
        "{oid}: snapshots keep changing while reading the header"
    )))
}

/// The header watch: ack every notification, mark the state stale on header updates,
/// and implement QUIESCE (drain our writes, hold new ones until UNQUIESCE or a timeout).
async fn watch_task(
    mut watch: ceph_rados::Watch,
    mut stop: oneshot::Receiver<()>,
    image: Weak<ImageInner>,
    io: IoCtx,
    oid: String,
    quiesce: Arc<tokio::sync::RwLock<()>>,
) {
    let mut held: Option<tokio::sync::OwnedRwLockWriteGuard<()>> = None;
    let mut held_until = tokio::time::Instant::now();
    loop {
        let quiesce_timeout = async {
            if held.is_some() {
                tokio::time::sleep_until(held_until).await
            } else {
                std::future::pending::<()>().await
            }
        };
        tokio::select! {
            _ = &mut stop => {
                drop(held.take());
                if let Err(e) = io.unwatch(watch).await {
                    debug!("unwatch {oid}: {e}");
                }
                return;
            }
            _ = quiesce_timeout => {
                // librbd unquiesces on its own after 2 * NOTIFY_TIMEOUT
                held = None;
            }
            ev = watch.next() => {
                let Some(ev) = ev else { return };
                let mark_stale = || {
                    if let Some(i) = image.upgrade() {
                        i.stale.store(true, Ordering::Release);
                    }
                };
                match ev {
                    WatchEvent::Notify { notify_id, cookie, payload, .. } => {
                        let mut reply = Vec::new();
                        let msg = NotifyMessage::from_payload(&payload);
                        match msg.as_ref().map(|m| m.payload()) {
                            Ok(NotifyPayload::HeaderUpdate) => mark_stale(),
                            Ok(NotifyPayload::Quiesce(_)) => {
                                if held.is_none() {
                                    held = Some(quiesce.clone().write_owned().await);
                                }
                                held_until = tokio::time::Instant::now() + 2 * NOTIFY_TIMEOUT;
                                reply = ceph_encoding::encode_to_vec(&ResponseMessage { result: 0 });
                            }
                            Ok(NotifyPayload::Unquiesce(_)) => {
                                // the snapshot exists now: re-read the snap context before writes resume
                                mark_stale();
                                held = None;
                            }
                            Ok(NotifyPayload::Lock { op, client }) => {
                                if let Some(i) = image.upgrade() {
                                    reply = crate::exclusive_lock::handle_lock_notify(&i, op, client);
                                }
                            }
                            Ok(NotifyPayload::Async(ev)) => {
                                if let Some(i) = image.upgrade() {
                                    crate::proxy::handle_async_event(&i, ev);
                                }
                            }
                            Ok(NotifyPayload::Other(_)) => {
                                if let (Some(i), Ok(m)) = (image.upgrade(), msg.as_ref()) {
                                    reply = crate::proxy::handle_request(&i, m);
                                }
                            }
                            Err(e) => warn!("undecodable notify on {oid}: {e}"),
                        }
                        if let Err(e) = io.notify_ack(&oid, notify_id, cookie, &reply).await {
                            debug!("notify ack on {oid}: {e}");
                        }
                    }
                    WatchEvent::Disconnected { .. } => mark_stale(),
                }
            }
        }
    }
}
