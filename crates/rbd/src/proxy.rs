//! Maintenance operations proxied through the exclusive-lock owner, both ways, as
//! librbd does (ceph: src/librbd/Operations.cc `C_InvokeAsyncRequest`,
//! src/librbd/ImageWatcher.cc `notify_async_request`, `handle_operation_request`,
//! `notify_async_complete`).
//!
//! * As the owner: a peer's RESIZE, SNAP_CREATE, SNAP_REMOVE, SNAP_RENAME,
//!   SNAP_PROTECT/UNPROTECT, FLATTEN, REBUILD_OBJECT_MAP, UPDATE_FEATURES,
//!   METADATA_UPDATE or RENAME is acked at once with `ResponseMessage(0)`, run here, and
//!   its result sent to every watcher as ASYNC_COMPLETE (ASYNC_PROGRESS meanwhile keeps
//!   the requester from timing out). Requests we cannot run are answered -EOPNOTSUPP,
//!   upon which librbd asks for the lock instead.
//! * As a non-owner: a maintenance operation first tries the lock once (a dead owner is
//!   still broken); if a live owner keeps it, the operation is sent to the owner and we
//!   wait for its ASYNC_COMPLETE. An owner that does not know the request (-EOPNOTSUPP)
//!   is asked for the lock, and the operation runs here.

use crate::cls::SnapshotNamespace;
use crate::error::{RbdError, Result};
use crate::exclusive_lock::decode_notify_acks;
use crate::image::{Image, ImageInner, NOTIFY_TIMEOUT};
use crate::watch_notify::{
    AsyncEvent, AsyncRequestId, NotifyMessage, ProxiedRequest, Request, ResponseMessage,
};
use ceph_rados::Errno;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// librbd `rbd_request_timed_out_seconds` (30): how long a requester waits for the
/// owner's next ASYNC_PROGRESS / ASYNC_COMPLETE.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a running proxied operation reports progress (well under the timeout).
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
/// librbd's `ERESTART`: the owner lost the lock; the requester starts over.
const ERESTART: Errno = Errno(85);

/// Async request ids of this process (librbd `m_async_request_seq`; never 0).
static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);

/// A fresh request id.
pub(crate) fn next_request_id() -> u64 {
    REQUEST_SEQ.fetch_add(1, Ordering::Relaxed)
}

tokio::task_local! {
    /// Set while running a peer's request as the owner: losing the lock then fails the
    /// operation (-ERESTART, the requester retries) instead of proxying it onward.
    static SERVING: ();
}

fn serving() -> bool {
    SERVING.try_with(|_| ()).is_ok()
}

/// Under [`SERVING`], a lost lock fails the operation with -ERESTART.
pub(crate) fn check_not_serving() -> Result<()> {
    if serving() {
        return Err(RbdError::refused(
            "lost the exclusive lock while running a proxied request",
            ERESTART,
        ));
    }
    Ok(())
}

fn response(result: i32) -> Vec<u8> {
    ceph_encoding::encode_to_vec(&ResponseMessage { result })
}

/// Handle a proxied maintenance request seen on the header watch; returns the ack
/// payload (empty unless we own the lock, so the requester hears only the owner).
pub(crate) fn handle_request(inner: &Arc<ImageInner>, m: &NotifyMessage) -> Vec<u8> {
    let Some(x) = inner.xlock.clone() else {
        return Vec::new();
    };
    if !x.is_owner() {
        return Vec::new();
    }
    use crate::watch_notify::op;
    if !matches!(m.op, op::FLATTEN..=op::SPARSIFY | op::METADATA_UPDATE) {
        return Vec::new(); // not a request to the owner
    }
    let req = match ProxiedRequest::from_message(m) {
        Ok(Some(r)) if r.id.is_valid() && runnable(&r.req) => r,
        // MIGRATE, SPARSIFY, legacy encodings: librbd then asks for the lock instead
        Ok(_) => return response(-(Errno::EOPNOTSUPP.0)),
        Err(e) => {
            warn!("undecodable proxied request (op {}): {e}", m.op);
            return response(-(Errno::EINVAL.0));
        }
    };
    if req.id.client.gid == inner.rados.instance_id()
        && req.id.client.handle == inner.watch_cookie_now()
    {
        return Vec::new(); // our own request
    }
    if !x.serving.lock().expect("serving").insert(req.id) {
        return response(0); // a retry of a request already running
    }
    info!(
        "running {:?} for {}/{} as the lock owner",
        req.req, req.id.client.gid, req.id.client.handle
    );
    let img = Image {
        inner: inner.clone(),
    };
    tokio::spawn(async move {
        let progress = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let run = SERVING.scope((), run(&img, &req.req, progress.clone()));
        tokio::pin!(run);
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + PROGRESS_INTERVAL,
            PROGRESS_INTERVAL,
        );
        let r = loop {
            tokio::select! {
                r = &mut run => break r,
                _ = tick.tick() => {
                    let ev = AsyncEvent::Progress {
                        id: req.id,
                        offset: progress.0.load(Ordering::Relaxed),
                        total: progress.1.load(Ordering::Relaxed).max(1),
                    };
                    notify(&img, &ev.to_message()).await;
                }
            }
        };
        let result = match &r {
            Ok(()) => 0,
            Err(e) => {
                debug!("proxied {:?} failed: {e}", req.req);
                -(e.errno().0)
            }
        };
        let done = AsyncEvent::Complete { id: req.id, result };
        notify(&img, &done.to_message()).await;
        if let Some(x) = img.xlock() {
            x.serving.lock().expect("serving").remove(&req.id);
        }
    });
    response(0)
}

/// The requests this client runs as the owner (user snapshots only).
fn runnable(r: &Request) -> bool {
    match r {
        Request::SnapCreate { ns, .. }
        | Request::SnapRemove { ns, .. }
        | Request::SnapProtect { ns, .. }
        | Request::SnapUnprotect { ns, .. } => *ns == SnapshotNamespace::User,
        _ => true,
    }
}

async fn notify(img: &Image, m: &NotifyMessage) {
    let b = ceph_encoding::encode_to_vec(m);
    if let Err(e) = img
        .inner
        .md_io
        .notify(&img.inner.header_oid, &b, NOTIFY_TIMEOUT)
        .await
    {
        debug!("notify op {} on {}: {e}", m.op, img.inner.header_oid);
    }
}

/// Run a peer's request with our own API (each operation takes the op gate, which
/// under [`SERVING`] refuses rather than proxies if the lock is gone).
async fn run(img: &Image, r: &Request, progress: Arc<(AtomicU64, AtomicU64)>) -> Result<()> {
    match r {
        Request::Resize { size, allow_shrink } => img.resize(*size, *allow_shrink).await,
        Request::SnapCreate { name, .. } => img.snap_create(name).await.map(|_| ()),
        Request::SnapRemove { name, .. } => img.snap_remove(name).await,
        Request::SnapProtect { name, .. } => img.snap_protect(name).await,
        Request::SnapUnprotect { name, .. } => img.snap_unprotect(name).await,
        Request::SnapRename { snap_id, name } => {
            img.refresh().await?;
            let st = img.state().await?;
            let old =
                st.h.snap(*snap_id)
                    .ok_or_else(|| RbdError::not_found(format!("snapshot id {snap_id}")))?
                    .name
                    .clone();
            img.snap_rename(&old, name).await
        }
        Request::Flatten => {
            img.flatten(move |done, total| {
                progress.0.store(done, Ordering::Relaxed);
                progress.1.store(total, Ordering::Relaxed);
            })
            .await
        }
        Request::RebuildObjectMap => img.object_map_rebuild(None).await,
        Request::UpdateFeatures { features, enabled } => {
            img.update_features(*features, *enabled).await
        }
        Request::MetadataUpdate { key, value } => match value {
            Some(v) => img.metadata_set(key, v.as_bytes()).await,
            None => img.metadata_remove(key).await,
        },
        Request::Rename { name } => {
            let old = img.name();
            crate::Rbd::new(img.inner.md_io.clone())
                .rename(&old, name)
                .await?;
            *img.inner.name.lock().expect("name") = name.clone();
            Ok(())
        }
    }
}

/// What became of a request sent to the owner.
enum Remote {
    /// The owner ran it (0 or the error it got).
    Done(Result<()>),
    /// No owner answered, or it lost the lock (-ETIMEDOUT / -ERESTART): start over.
    Retry,
    /// The owner does not run this request (-EOPNOTSUPP): take the lock instead.
    NotSupported,
}

impl Image {
    /// librbd `C_InvokeAsyncRequest`, before a maintenance operation: Ok(false) when it
    /// is to run here (we own the lock, or just took it, or the image has no exclusive
    /// lock); Ok(true) when the live owner ran it for us.
    pub(crate) async fn invoke_proxied(&self, req: Request) -> Result<bool> {
        let mut backoff = Duration::from_millis(100);
        for _ in 0..20 {
            let Some(x) = self.xlock() else {
                return Ok(false);
            };
            x.check_usable()?;
            if x.is_owner() {
                return Ok(false);
            }
            check_not_serving()?;
            if self.try_acquire_lock().await? {
                return Ok(false);
            }
            match self.send_request(&req).await? {
                Remote::Done(r) => {
                    self.invalidate();
                    return r.map(|_| true);
                }
                Remote::NotSupported => {
                    self.acquire_lock().await?;
                    return Ok(false);
                }
                Remote::Retry => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        Err(RbdError::refused(
            "the exclusive lock owner did not run the request",
            Errno::ETIMEDOUT,
        ))
    }

    /// librbd `ImageWatcher::notify_async_request` + `NotifyLockOwner`.
    async fn send_request(&self, req: &Request) -> Result<Remote> {
        let x = self.xlock().expect("exclusive lock").clone();
        let me = self.client_id();
        let id = AsyncRequestId {
            client: me,
            request_id: next_request_id(),
        };
        let msg = ProxiedRequest {
            id,
            req: req.clone(),
        }
        .to_message();
        // registered before the notify: the owner's ASYNC_COMPLETE may arrive before
        // our notify has collected every ack
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        x.pending.lock().expect("pending").insert(id.request_id, tx);
        struct Unregister<'a>(&'a crate::exclusive_lock::ExclusiveLock, u64);
        impl Drop for Unregister<'_> {
            fn drop(&mut self) {
                self.0.pending.lock().expect("pending").remove(&self.1);
            }
        }
        let _u = Unregister(&x, id.request_id);
        let io = &self.inner.md_io;
        let oid = &self.inner.header_oid;
        let reply = match io
            .notify(oid, &ceph_encoding::encode_to_vec(&msg), NOTIFY_TIMEOUT)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                debug!("proxied request notify on {oid}: {e}");
                return Ok(Remote::Retry);
            }
        };
        let answers: Vec<i32> = decode_notify_acks(&reply)
            .unwrap_or_default()
            .into_iter()
            .filter(|(gid, c, p)| !(p.is_empty() || (*gid == me.gid && *c == me.handle)))
            .filter_map(|(_, _, p)| ceph_encoding::decode_exact::<ResponseMessage>(&p).ok())
            .map(|r| r.result)
            .collect();
        let result = match answers.as_slice() {
            [] => return Ok(Remote::Retry),
            [r] => *r,
            _ => {
                return Err(RbdError::refused(
                    "duplicate lock owners detected",
                    Errno::EINVAL,
                ))
            }
        };
        let wait = |result: i32| -> Remote {
            match Errno(-result) {
                _ if result == 0 => Remote::Done(Ok(())),
                Errno::EOPNOTSUPP => Remote::NotSupported,
                Errno::ETIMEDOUT | ERESTART => Remote::Retry,
                e => Remote::Done(Err(RbdError::refused(
                    format!("the exclusive lock owner failed the request: {e}"),
                    e,
                ))),
            }
        };
        if result != 0 {
            return Ok(wait(result));
        }
        loop {
            match tokio::time::timeout(REQUEST_TIMEOUT, rx.recv()).await {
                Ok(Some(AsyncEvent::Complete { result, .. })) => return Ok(wait(result)),
                Ok(Some(AsyncEvent::Progress { .. })) => {}
                Ok(None) | Err(_) => return Ok(Remote::Retry),
            }
            x.check_usable()?;
        }
    }
}

/// Route an ASYNC_PROGRESS / ASYNC_COMPLETE to the request we are waiting on.
pub(crate) fn handle_async_event(inner: &Arc<ImageInner>, ev: AsyncEvent) {
    let Some(x) = inner.xlock.as_ref() else {
        return;
    };
    let id = ev.id();
    if id.client.gid != inner.rados.instance_id() || id.client.handle != inner.watch_cookie_now() {
        return;
    }
    if let Some(tx) = x.pending.lock().expect("pending").get(&id.request_id) {
        let _ = tx.send(ev);
    }
}
