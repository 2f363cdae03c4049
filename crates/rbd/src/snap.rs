//! Snapshots: create, remove (to the snapshot trash while clone-v2 children exist),
//! rename, rollback, protect/unprotect, limit (ceph: src/librbd/operation/Snapshot*.cc).

use crate::cls::{self, protection, SnapshotNamespace};
use crate::error::{RbdError, Result};
use crate::features;
use crate::image::{Image, SnapInfo, State};
use crate::util::{self, run_all, BoxFut, GoneOk};
use crate::watch_notify::{AsyncRequestId, NotifyMessage, Request};
use ceph_rados::{Errno, OsdOp};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::{debug, warn};

impl Image {
    fn user_snap<'a>(st: &'a State, name: &str) -> Result<&'a SnapInfo> {
        st.h.snap_by_name(name)
            .ok_or_else(|| RbdError::not_found(format!("snapshot '{name}' does not exist")))
    }

    /// Create snapshot `name`: peers are asked to quiesce, a self-managed snap id is
    /// allocated on the data pool, `snapshot_add` records it in the header, and the
    /// watchers are told to refresh.
    pub async fn snap_create(&self, name: &str) -> Result<u64> {
        self.snap_create_in(SnapshotNamespace::User, name).await
    }

    /// [`Image::snap_create`] in snapshot namespace `ns` (a group snapshot's member
    /// snapshots live in the GROUP namespace, so `rbd snap ls` does not show them and
    /// their names never clash with user snapshots).
    pub(crate) async fn snap_create_in(&self, ns: SnapshotNamespace, name: &str) -> Result<u64> {
        self.check_writable()?;
        if self.inner.format == 1 && ns == SnapshotNamespace::User {
            return self.snap_create_v1(name).await;
        }
        self.v2_only("snapshot create")?;
        util::validate_name("snapshot", name)?;
        let find = |st: &State| {
            st.h.snaps
                .iter()
                .find(|s| s.name == name && s.namespace == ns)
                .map(|s| s.id)
        };
        if self
            .invoke_proxied(Request::SnapCreate {
                ns: ns.clone(),
                name: name.into(),
                flags: 0,
            })
            .await?
        {
            let st = self.state().await?;
            return find(&st).ok_or_else(|| {
                RbdError::not_found(format!("snapshot '{name}' after its creation"))
            });
        }
        let _og = self.op_gate().await?;
        let st = self.state().await?;
        if find(&st).is_some() {
            return Err(RbdError::exists(format!(
                "snapshot '{name}' already exists"
            )));
        }
        // quiesce other writers (librbd's QUIESCE/UNQUIESCE notifications)
        let req = AsyncRequestId {
            client: self.client_id(),
            request_id: crate::proxy::next_request_id(),
        };
        let io = &self.inner.md_io;
        let oid = &self.inner.header_oid;
        let q = ceph_encoding::encode_to_vec(&NotifyMessage::quiesce(false, req));
        if let Err(e) = io.notify(oid, &q, crate::image::NOTIFY_TIMEOUT).await {
            debug!("quiesce notify on {oid}: {e}");
        }
        let r = self.snap_create_locked(&st, &ns, name).await;
        let u = ceph_encoding::encode_to_vec(&NotifyMessage::quiesce(true, req));
        if let Err(e) = io.notify(oid, &u, crate::image::NOTIFY_TIMEOUT).await {
            debug!("unquiesce notify on {oid}: {e}");
        }
        let id = r?;
        self.notify_header_update().await;
        Ok(id)
    }

    async fn snap_create_locked(
        &self,
        st: &Arc<State>,
        ns: &SnapshotNamespace,
        name: &str,
    ) -> Result<u64> {
        let io = &self.inner.md_io;
        for _ in 0..10 {
            let snap_id = st.data_io.selfmanaged_snap_create().await?;
            match cls::snapshot_add(snap_id, name, ns)
                .exec(io, &self.inner.header_oid)
                .await
            {
                Ok(_) => {
                    self.invalidate();
                    if let Some(x) = &st.xlock {
                        x.snapshot_map(snap_id, st.h.features & features::FAST_DIFF != 0)
                            .await?;
                    }
                    return Ok(snap_id);
                }
                Err(e) => {
                    let _ = st.data_io.selfmanaged_snap_remove(snap_id).await;
                    if e.errno() == Errno::ESTALE {
                        continue;
                    }
                    if e.errno() == Errno::EDQUOT {
                        return Err(RbdError::refused("snapshot limit reached", Errno::EDQUOT));
                    }
                    return Err(e);
                }
            }
        }
        Err(RbdError::busy(
            "could not allocate a snapshot id newer than the image's snap_seq",
        ))
    }

    /// Format-1 snapshot create (librbd's v1 `SnapshotCreateRequest`): our writes are
    /// drained, a self-managed snap id is allocated, cls_rbd's old `snap_add` records it
    /// in the header, and the watchers are told to refresh.
    async fn snap_create_v1(&self, name: &str) -> Result<u64> {
        util::validate_name("snapshot", name)?;
        let st = self.state().await?;
        if st.h.snap_by_name(name).is_some() {
            return Err(RbdError::exists(format!(
                "snapshot '{name}' already exists"
            )));
        }
        // drain our own writes so the snapshot holds everything acknowledged before it
        self.flush().await?;
        let snap_id = st.data_io.selfmanaged_snap_create().await?;
        if let Err(e) = cls::old_snapshot_add(snap_id, name)
            .exec(&self.inner.md_io, &self.inner.header_oid)
            .await
        {
            let _ = st.data_io.selfmanaged_snap_remove(snap_id).await;
            return Err(e);
        }
        self.notify_header_update().await;
        Ok(snap_id)
    }

    /// Format-1 snapshot remove: the self-managed snap id is released (the OSDs trim its
    /// clones), then cls_rbd's old `snap_remove` drops it from the header, in librbd's
    /// order, so a failed release leaves the snapshot in place for a retry.
    async fn snap_remove_v1(&self, name: &str) -> Result<()> {
        let st = self.state().await?;
        let s = Self::user_snap(&st, name)?.clone();
        release_snap_id(&st.data_io, s.id).await?;
        cls::old_snapshot_remove(name)
            .exec(&self.inner.md_io, &self.inner.header_oid)
            .await?;
        self.notify_header_update().await;
        Ok(())
    }

    /// Remove user snapshot `name`. Protected snapshots are refused (EBUSY); a snapshot
    /// with clone-v2 children moves to the trash namespace instead, like librbd.
    pub async fn snap_remove(&self, name: &str) -> Result<()> {
        self.check_writable()?;
        if self.inner.format == 1 {
            return self.snap_remove_v1(name).await;
        }
        if self
            .invoke_proxied(Request::SnapRemove {
                ns: SnapshotNamespace::User,
                name: name.into(),
            })
            .await?
        {
            return Ok(());
        }
        let _og = self.op_gate().await?;
        let st = self.state().await?;
        let s = Self::user_snap(&st, name)?.clone();
        if s.protection_status != protection::UNPROTECTED {
            return Err(RbdError::busy(format!(
                "snapshot '{name}' is protected from removal"
            )));
        }
        remove_snapshot_by_id(self, &st, s.id).await?;
        self.notify_header_update().await;
        Ok(())
    }

    /// `rbd snap rm --force` (librbd `snap_remove` with `RBD_SNAP_REMOVE_FORCE`): first
    /// flatten every clone of the snapshot (v1 and v2, trashed ones included), then
    /// unprotect it, then remove it. `progress(done, total)` counts the clones.
    pub async fn snap_remove_force(
        &self,
        name: &str,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<()> {
        self.check_writable()?;
        self.v2_only("snapshot remove")?;
        let st = self.state().await?;
        let s = Self::user_snap(&st, name)?.clone();
        let children = crate::clone::list_children_of(self, s.id).await?;
        let rados = self.inner.rados.clone();
        for (i, ch) in children.iter().enumerate() {
            let mut io = rados.ioctx_by_id(ch.pool_id);
            io.set_namespace(&ch.pool_namespace);
            let child = crate::rbd::Rbd::new(io)
                .open_by_id(&ch.id, &crate::image::OpenOptions::default())
                .await?;
            let r = child.flatten(|_, _| {}).await;
            let _ = child.close().await;
            match r {
                Ok(()) => {}
                // detached meanwhile
                Err(RbdError::InvalidArgument(_)) => {}
                Err(e) => return Err(e),
            }
            progress(i as u64 + 1, children.len() as u64);
        }
        self.refresh().await?;
        if self.snap_is_protected(name).await? {
            self.snap_unprotect(name).await?;
        }
        self.snap_remove(name).await
    }

    /// Remove the snapshot with id `snap_id` in any namespace (`rbd snap rm --snap-id`,
    /// e.g. a trashed snapshot); protected user snapshots are refused with EBUSY.
    pub async fn snap_remove_by_id(&self, snap_id: u64) -> Result<()> {
        self.check_writable()?;
        let _og = self.op_gate().await?;
        let st = self.state().await?;
        let s =
            st.h.snap(snap_id).cloned().ok_or_else(|| {
                RbdError::not_found(format!("snapshot id {snap_id} does not exist"))
            })?;
        if s.protection_status != protection::UNPROTECTED {
            return Err(RbdError::busy(format!(
                "snapshot '{}' is protected from removal",
                s.name
            )));
        }
        remove_snapshot_by_id(self, &st, snap_id).await?;
        self.notify_header_update().await;
        Ok(())
    }

    /// Rename snapshot `old` to `new`.
    pub async fn snap_rename(&self, old: &str, new: &str) -> Result<()> {
        self.check_writable()?;
        let _og = self.lockless_op_gate().await?;
        util::validate_name("snapshot", new)?;
        let st = self.state().await?;
        let s = Self::user_snap(&st, old)?;
        if st.h.snap_by_name(new).is_some() {
            return Err(RbdError::exists(format!("snapshot '{new}' already exists")));
        }
        let call = if self.inner.format == 1 {
            cls::old_snapshot_rename(s.id, new)
        } else {
            cls::snapshot_rename(s.id, new)
        };
        call.exec(&self.inner.md_io, &self.inner.header_oid).await?;
        self.notify_header_update().await;
        Ok(())
    }

    /// Protect snapshot `name` (needed for clone v1). EBUSY if already protected.
    pub async fn snap_protect(&self, name: &str) -> Result<()> {
        self.check_writable()?;
        let _og = self.lockless_op_gate().await?;
        let st = self.state().await?;
        if st.h.features & features::LAYERING == 0 {
            return Err(RbdError::refused(
                "image must support layering",
                Errno::ENOSYS,
            ));
        }
        let s = Self::user_snap(&st, name)?;
        if s.is_protected() {
            return Err(RbdError::busy(format!(
                "snapshot '{name}' is already protected"
            )));
        }
        cls::set_protection_status(s.id, protection::PROTECTED)
            .exec(&self.inner.md_io, &self.inner.header_oid)
            .await?;
        self.notify_header_update().await;
        Ok(())
    }

    /// Unprotect snapshot `name`; refused with EBUSY while clones (v1 in any pool's
    /// `rbd_children`, or v2 attached children) exist.
    pub async fn snap_unprotect(&self, name: &str) -> Result<()> {
        self.check_writable()?;
        let _og = self.lockless_op_gate().await?;
        let st = self.state().await?;
        let s = Self::user_snap(&st, name)?.clone();
        if s.protection_status == protection::UNPROTECTED {
            return Err(RbdError::InvalidArgument(format!(
                "snapshot '{name}' is already unprotected"
            )));
        }
        let io = &self.inner.md_io;
        let oid = &self.inner.header_oid;
        cls::set_protection_status(s.id, protection::UNPROTECTING)
            .exec(io, oid)
            .await?;
        // clone-v2 children do not depend on protection: only v1 children block
        let children = crate::clone::v1_children_of(self, s.id).await;
        let busy = match &children {
            Ok(c) => !c.is_empty(),
            Err(_) => true,
        };
        if busy {
            cls::set_protection_status(s.id, protection::PROTECTED)
                .exec(io, oid)
                .await?;
            self.notify_header_update().await;
            children?;
            return Err(RbdError::busy(format!("snapshot '{name}' has clones")));
        }
        cls::set_protection_status(s.id, protection::UNPROTECTED)
            .exec(io, oid)
            .await?;
        self.notify_header_update().await;
        Ok(())
    }

    /// Is snapshot `name` protected?
    pub async fn snap_is_protected(&self, name: &str) -> Result<bool> {
        let st = self.state().await?;
        Ok(Self::user_snap(&st, name)?.is_protected())
    }

    /// User snapshots, by id (`rbd snap ls`); [`Image::snapshots`] lists every namespace.
    pub async fn snap_list(&self) -> Result<Vec<SnapInfo>> {
        let st = self.state().await?;
        Ok(st
            .h
            .snaps
            .iter()
            .filter(|s| s.namespace == SnapshotNamespace::User)
            .cloned()
            .collect())
    }

    /// The snapshot limit (`None` = unlimited).
    pub async fn snap_get_limit(&self) -> Result<Option<u64>> {
        let b = cls::snapshot_get_limit()
            .exec(&self.inner.md_io, &self.inner.header_oid)
            .await?;
        let l = cls::decode_u64(&b)?;
        Ok((l != u64::MAX).then_some(l))
    }

    /// Set the snapshot limit (`None` = unlimited; `rbd snap limit set/clear`).
    pub async fn snap_set_limit(&self, limit: Option<u64>) -> Result<()> {
        self.check_writable()?;
        if self.inner.format == 1 {
            // a `<name>.rbd` header has no field for a limit: librbd 16.2/18.2 answer 0
            // and store nothing (checked: `rbd snap limit set` exits 0, the header and
            // its omap are unchanged), so a script behaves the same with either tool
            return Ok(());
        }
        let _og = self.op_gate().await?;
        cls::snapshot_set_limit(limit.unwrap_or(u64::MAX))
            .exec(&self.inner.md_io, &self.inner.header_oid)
            .await?;
        self.notify_header_update().await;
        Ok(())
    }

    /// Roll the image back to snapshot `name`: resize to the snapshot size, then ROLLBACK
    /// every object (objects that did not exist at the snapshot are deleted by the OSD),
    /// like librbd's SnapshotRollbackRequest. The head's parent overlap stays as it is
    /// (a grow never widens it): what a snapshot showed of the parent beyond it was
    /// copied into the child's objects when the shrink trimmed it (see `resize::trim`),
    /// so the rollback brings it back from the RADOS clones.
    pub async fn snap_rollback(
        &self,
        name: &str,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<()> {
        let id = Self::user_snap(&*self.state().await?, name)?.id;
        self.snap_rollback_id(id, progress).await
    }

    /// [`Image::snap_rollback`] to the snapshot with id `snap_id`, in any namespace (a
    /// group snapshot rolls its members back to their GROUP-namespace snapshots).
    pub(crate) async fn snap_rollback_id(
        &self,
        snap_id: u64,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<()> {
        self.check_writable()?;
        let _og = self.op_gate().await?;
        let st = self.state().await?;
        let s =
            st.h.snap(snap_id).cloned().ok_or_else(|| {
                RbdError::not_found(format!("snapshot id {snap_id} does not exist"))
            })?;
        if st.h.size != s.size {
            self.resize(s.size, true).await?;
        }
        let _q = self.inner.quiesce.read().await;
        let st = self.state().await?;
        let n = st.h.layout.num_objects(s.size);
        let done = Arc::new(AtomicU64::new(0));
        let mut start = 0;
        while start < n {
            let end = (start + 4096).min(n);
            let futs: Vec<BoxFut<()>> = (start..end)
                .map(|ono| {
                    let st = st.clone();
                    let done = done.clone();
                    let snap = s.id;
                    Box::pin(async move {
                        let oid = st.object_name(ono);
                        st.data_io
                            .operate_write(&oid, vec![OsdOp::rollback(snap)])
                            .await
                            .gone_ok()?;
                        done.fetch_add(1, Ordering::Relaxed);
                        Ok(())
                    }) as BoxFut<()>
                })
                .collect();
            run_all(futs, crate::resize::MANAGEMENT_OPS).await?;
            progress(done.load(Ordering::Relaxed), n);
            start = end;
        }
        // after every object is back
        crate::object_map_ops::rebuild_head_map(&st, &self.inner.md_io, &self.inner.id).await?;
        self.notify_header_update().await;
        Ok(())
    }
}

/// librbd `SnapshotRemoveRequest`: move to the snapshot trash first; if clone-v2
/// children remain it stays there, else `snapshot_remove` and release the snap id.
pub(crate) async fn remove_snapshot_by_id(
    img: &Image,
    st: &Arc<State>,
    snap_id: u64,
) -> Result<()> {
    let io = &img.inner.md_io;
    let oid = &img.inner.header_oid;
    let s = st.h.snap(snap_id).cloned();
    let in_trash = matches!(
        s.as_ref().map(|s| &s.namespace),
        Some(SnapshotNamespace::Trash { .. })
    );
    if !in_trash && st.h.features & features::LAYERING != 0 {
        match cls::snapshot_trash_add(snap_id).exec(io, oid).await {
            Ok(_) => {}
            Err(e) if e.errno() == Errno::EOPNOTSUPP => {}
            Err(e) => return Err(e),
        }
    }
    let info: Option<cls::SnapshotInfo> = match cls::snapshot_get(snap_id).exec(io, oid).await {
        Ok(b) => Some(cls::decode(&b)?),
        Err(e) if e.errno() == Errno::EOPNOTSUPP => None,
        Err(e) => return Err(e),
    };
    if info.as_ref().map(|i| i.child_count > 0).unwrap_or(false) {
        // clones still read from it: it stays in the trash namespace
        img.invalidate();
        return Ok(());
    }
    if st.h.features & features::OBJECT_MAP != 0 {
        let next =
            st.h.snaps
                .iter()
                .map(|s| s.id)
                .filter(|&id| id > snap_id)
                .min()
                .unwrap_or(ceph_rados::NOSNAP);
        match &st.xlock {
            Some(x) => {
                x.remove_snapshot_map(snap_id, next, st.h.features & features::FAST_DIFF != 0)
                    .await?
            }
            None => {
                let soid = crate::object_map::object_map_name(&img.inner.id, snap_id);
                io.remove(&soid).await.gone_ok()?;
            }
        }
    }
    // librbd's order: the snap id first, then the header, so a failed release leaves the
    // snapshot listed and `snap rm` can be run again
    release_snap_id(&st.data_io, snap_id).await?;
    cls::snapshot_remove(snap_id).exec(io, oid).await?;
    img.invalidate();
    Ok(())
}

/// Give a snapshot's id back to the monitor, which is what lets the OSDs trim its
/// clones. A failure is reported (ENOENT aside: the id was released by an earlier attempt)
/// and stops the removal before the header forgets the snapshot: swallowing it, as we
/// did, leaked every clone of the snapshot without a word (ceph:
/// src/librbd/operation/SnapshotRemoveRequest.cc release_snap_id, handle_release_snap_id).
async fn release_snap_id(io: &ceph_rados::IoCtx, snap_id: u64) -> Result<()> {
    match io.selfmanaged_snap_remove(snap_id).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => {
            warn!("releasing snap id {snap_id}: {e}; its clones stay until it is released");
            Err(e.into())
        }
    }
}
