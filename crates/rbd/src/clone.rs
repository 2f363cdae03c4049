//! Layering management: clone (v1 and v2), children, flatten, detaching a child
//! (ceph: src/librbd/image/{CloneRequest,AttachParentRequest,AttachChildRequest,
//! DetachChildRequest,DetachParentRequest}.cc, operation/FlattenRequest.cc,
//! api/Image.cc `list_children`).

use crate::cls::{self, ParentImageSpec, SnapshotNamespace};
use crate::error::{RbdError, Result};
use crate::features;
use crate::image::{pool_name, Image, OpenOptions, State};
use crate::rbd::{child_spec, ChildInfo, CloneFormat, CloneOptions, Rbd};
use crate::util::{self, header_name, run_all, BoxFut, GoneOk, RBD_CHILDREN, RBD_DIRECTORY};
use ceph_rados::{Errno, IoCtx, Rados};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::debug;

/// `rbd_default_clone_format = auto`: v2 iff the osdmap requires mimic or newer clients.
pub async fn auto_clone_format(rados: &Rados) -> Result<CloneFormat> {
    let out = rados
        .mon_command(
            r#"{"prefix": "osd dump", "format": "json"}"#,
            bytes::Bytes::new(),
        )
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&out.data)
        .map_err(|e| RbdError::Stream(format!("osd dump json: {e}")))?;
    let rel = v
        .get("require_min_compat_client")
        .and_then(|r| r.as_str())
        .unwrap_or("luminous");
    Ok(if release_at_least_mimic(rel) {
        CloneFormat::V2
    } else {
        CloneFormat::V1
    })
}

fn release_at_least_mimic(name: &str) -> bool {
    const ORDER: [&str; 16] = [
        "argonaut",
        "bobtail",
        "cuttlefish",
        "dumpling",
        "emperor",
        "firefly",
        "giant",
        "hammer",
        "infernalis",
        "jewel",
        "kraken",
        "luminous",
        "mimic",
        "nautilus",
        "octopus",
        "pacific",
    ];
    match ORDER.iter().position(|r| *r == name) {
        Some(i) => i >= 12,
        // a release newer than this list
        None => !name.is_empty(),
    }
}

/// librbd `CloneRequest`.
pub(crate) async fn clone(
    parent_rbd: &Rbd,
    parent_name: &str,
    snap: &str,
    child_rbd: &Rbd,
    child: &str,
    opts: &CloneOptions,
) -> Result<()> {
    util::validate_name("image", child)?;
    let parent = parent_rbd.open_snapshot(parent_name, snap).await?;
    let r = clone_from(&parent, child_rbd, child, opts).await;
    let _ = parent.close().await;
    r
}

pub(crate) async fn clone_from(
    parent: &Image,
    child_rbd: &Rbd,
    child: &str,
    opts: &CloneOptions,
) -> Result<()> {
    if parent.format() == 1 {
        // librbd's CloneRequest opens the parent by id, and a format-1 image has none
        return Err(RbdError::not_found(format!(
            "parent image {} is format 1: no image id to clone from",
            parent.name()
        )));
    }
    let pst = parent.state().await?;
    let snap_id = parent.snap_id().expect("opened at a snapshot");
    let snap = pst
        .h
        .snap(snap_id)
        .cloned()
        .ok_or_else(|| RbdError::not_found("parent snapshot"))?;
    if pst.h.features & features::LAYERING == 0 {
        return Err(RbdError::refused(
            "parent image must support layering",
            Errno::ENOSYS,
        ));
    }
    let format = match opts.format {
        CloneFormat::Auto => auto_clone_format(parent.ioctx().rados()).await?,
        f => f,
    };
    if format == CloneFormat::V1 && !snap.is_protected() {
        return Err(RbdError::InvalidArgument(
            "parent snapshot must be protected".into(),
        ));
    }
    // the parent's features, limited to what this client creates (librbd copies all)
    let feats = opts
        .features
        .unwrap_or(pst.h.features & features::CREATABLE)
        | features::LAYERING;
    let order = opts.order.unwrap_or(pst.h.order);
    let (su, sc) = match (opts.stripe_unit, opts.stripe_count) {
        (Some(u), Some(c)) => (Some(u), Some(c)),
        _ if !pst.h.layout.is_simple() => (
            Some(pst.h.layout.stripe_unit),
            Some(pst.h.layout.stripe_count),
        ),
        _ => (None, None),
    };
    let copts = crate::rbd::CreateOptions {
        order: Some(order),
        features: Some(feats),
        stripe_unit: su,
        stripe_count: sc,
        data_pool: opts.data_pool.clone(),
    };
    let child_id = child_rbd.create(child, snap.size.max(1), &copts).await?;
    let r = attach(parent, &snap, child_rbd, child, &child_id, format).await;
    if let Err(e) = r {
        debug!("clone failed, removing {child}: {e}");
        let _ = child_rbd.remove(child).await;
        return Err(e);
    }
    Ok(())
}

async fn attach(
    parent: &Image,
    snap: &crate::image::SnapInfo,
    child_rbd: &Rbd,
    child: &str,
    child_id: &str,
    format: CloneFormat,
) -> Result<()> {
    let cio = child_rbd.ioctx();
    let child_header = header_name(child_id);
    let pio = parent.ioctx();
    let spec = ParentImageSpec {
        pool_id: pio.pool_id(),
        pool_namespace: pio.namespace().to_string(),
        image_id: parent.id().to_string(),
        snap_id: snap.id,
    };
    // the clone starts with the parent snapshot's size as overlap
    if snap.size == 0 {
        cls::set_size(0).exec(cio, &child_header).await?;
    }
    match cls::parent_attach(&spec, snap.size, false)
        .exec(cio, &child_header)
        .await
    {
        Ok(_) => {}
        Err(e) if e.errno() == Errno::EOPNOTSUPP && spec.pool_namespace.is_empty() => {
            cls::set_parent(&spec, snap.size)
                .exec(cio, &child_header)
                .await?;
        }
        Err(e) => return Err(e),
    }
    match format {
        CloneFormat::V2 | CloneFormat::Auto => {
            cls::op_features_set(features::op::CLONE_CHILD, features::op::CLONE_CHILD)
                .exec(cio, &child_header)
                .await?;
            let cs = cls::ChildImageSpec {
                pool_id: cio.pool_id(),
                pool_namespace: cio.namespace().to_string(),
                image_id: child_id.to_string(),
            };
            cls::child_attach(snap.id, &cs)
                .exec(pio, &header_name(parent.id()))
                .await?;
        }
        CloneFormat::V1 => {
            let mut v1 = spec.clone();
            v1.pool_namespace.clear();
            cls::add_child(&v1, child_id)
                .exec(cio, RBD_CHILDREN)
                .await?;
            // the parent snapshot must still be protected
            let b = cls::get_protection_status(snap.id)
                .exec(pio, &header_name(parent.id()))
                .await?;
            if cls::decode_u8(&b)? != cls::protection::PROTECTED {
                let _ = cls::remove_child(&v1, child_id)
                    .exec(cio, RBD_CHILDREN)
                    .await;
                return Err(RbdError::InvalidArgument(
                    "parent snapshot is no longer protected".into(),
                ));
            }
        }
    }
    // copy the parent's image metadata (librbd copies `metadata_*` keys)
    let pr = Rbd::new(pio.clone());
    let md = pr.metadata(parent.id()).await.unwrap_or_default();
    if !md.is_empty() {
        cls::metadata_set(&md).exec(cio, &child_header).await?;
    }
    let _ = child;
    // the parent header changed (child count / op features)
    let msg = ceph_encoding::encode_to_vec(&crate::watch_notify::NotifyMessage::header_update());
    let _ = pio
        .notify(
            &header_name(parent.id()),
            &msg,
            crate::image::NOTIFY_TIMEOUT,
        )
        .await;
    Ok(())
}

/// librbd `DetachChildRequest`: unregister `img` from its parent (v2 `child_detach` on
/// the parent header, removing a trashed parent snapshot left without children; v1
/// `remove_child` in `rbd_children` of the child's pool).
pub(crate) async fn detach_child(img: &Image, st: &Arc<State>) -> Result<()> {
    let spec = &st.h.parent;
    if spec.pool_id == -1 || !spec.exists() {
        return Ok(());
    }
    let rados = img.ioctx().rados();
    if st.h.op_features & features::op::CLONE_CHILD == 0 {
        let mut v1 = spec.clone();
        v1.pool_namespace.clear();
        return match cls::remove_child(&v1, img.id())
            .exec(img.ioctx(), RBD_CHILDREN)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        };
    }
    let mut pio = rados.ioctx_by_id(spec.pool_id);
    pio.set_namespace(&spec.pool_namespace);
    let pheader = header_name(&spec.image_id);
    cls::child_detach(spec.snap_id, &child_spec(img))
        .exec(&pio, &pheader)
        .await
        .gone_ok()?;
    // a trashed parent snapshot without children goes away now
    if let Ok(b) = cls::snapshot_get(spec.snap_id).exec(&pio, &pheader).await {
        if let Ok(si) = cls::decode::<cls::SnapshotInfo>(&b) {
            if matches!(si.namespace, SnapshotNamespace::Trash { .. }) && si.child_count == 0 {
                if let Ok(p) = Image::open_by_id(
                    &pio,
                    &spec.image_id,
                    Some(String::new()),
                    &OpenOptions::default(),
                )
                .await
                {
                    // the parent's lock owner removes snapshots (taken over if needed)
                    if let Ok(_og) = p.op_gate().await {
                        if let Ok(pst) = p.state().await {
                            let _ =
                                crate::snap::remove_snapshot_by_id(&p, &pst, spec.snap_id).await;
                        }
                    }
                    let _ = p.close().await;
                }
            }
        }
    }
    let msg = ceph_encoding::encode_to_vec(&crate::watch_notify::NotifyMessage::header_update());
    let _ = pio
        .notify(&pheader, &msg, crate::image::NOTIFY_TIMEOUT)
        .await;
    Ok(())
}

/// Children of snapshot `snap_id` of `img`.
pub(crate) async fn list_children_of(img: &Image, snap_id: u64) -> Result<Vec<ChildInfo>> {
    let io = img.ioctx();
    let rados = io.rados();
    let mut out = Vec::new();
    // v2
    match cls::children_list(snap_id)
        .exec(io, &header_name(img.id()))
        .await
    {
        Ok(b) => {
            for c in cls::decode_children_list(&b)? {
                out.push(resolve_child(rados, c.pool_id, &c.pool_namespace, &c.image_id).await?);
            }
        }
        Err(e) if e.is_not_found() || e.errno() == Errno::EOPNOTSUPP => {}
        Err(e) => return Err(e),
    }
    out.extend(v1_children_of(img, snap_id).await?);
    out.sort();
    out.dedup();
    Ok(out)
}

/// Clone-v1 children of snapshot `snap_id`: every pool's `rbd_children` (default
/// namespace). Only these keep a snapshot protected: librbd's unprotect scans them and
/// ignores clone-v2 children (ceph: src/librbd/operation/SnapshotUnprotectRequest.cc).
pub(crate) async fn v1_children_of(img: &Image, snap_id: u64) -> Result<Vec<ChildInfo>> {
    let io = img.ioctx();
    let rados = io.rados();
    let mut out = Vec::new();
    let spec = ParentImageSpec {
        pool_id: io.pool_id(),
        pool_namespace: String::new(),
        image_id: img.id().to_string(),
        snap_id,
    };
    let _ = rados.mon().wait_for_latest_osdmap().await;
    for (pid, _) in rados.pool_list() {
        let r = Rbd::new(rados.ioctx_by_id(pid));
        let ids = match r.v1_children(&spec).await {
            Ok(ids) => ids,
            // pools we may not read (other applications, no caps) are skipped like librbd
            Err(e) if [Errno::EPERM, Errno::EACCES, Errno::EOPNOTSUPP].contains(&e.errno()) => {
                continue
            }
            Err(e) => return Err(e),
        };
        for id in ids {
            out.push(resolve_child(rados, pid, "", &id).await?);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

async fn resolve_child(rados: &Rados, pool_id: i64, ns: &str, id: &str) -> Result<ChildInfo> {
    let mut io: IoCtx = rados.ioctx_by_id(pool_id);
    io.set_namespace(ns);
    let (image, trash) = match cls::dir_get_name(id).exec(&io, RBD_DIRECTORY).await {
        Ok(b) => (cls::decode_string(&b)?, false),
        Err(e) if e.is_not_found() => match cls::trash_get(id).exec(&io, util::RBD_TRASH).await {
            Ok(b) => (cls::decode::<cls::TrashImageSpec>(&b)?.name, true),
            Err(_) => (String::new(), false),
        },
        Err(e) => return Err(e),
    };
    Ok(ChildInfo {
        pool: pool_name(rados, pool_id).await.unwrap_or_default(),
        pool_id,
        pool_namespace: ns.to_string(),
        image,
        id: id.to_string(),
        trash,
    })
}

/// Children of `img@snap` (user snapshot name).
pub(crate) async fn list_children(img: &Image, snap: &str) -> Result<Vec<ChildInfo>> {
    let st = img.state().await?;
    let s =
        st.h.snap_by_name(snap)
            .ok_or_else(|| RbdError::not_found(format!("snapshot '{snap}' does not exist")))?;
    list_children_of(img, s.id).await
}

impl Image {
    /// Clones of snapshot `snap` of this image (`rbd children`).
    pub async fn children(&self, snap: &str) -> Result<Vec<ChildInfo>> {
        list_children(self, snap).await
    }

    /// Flatten a clone: copy every parent object inside the overlap that the child lacks
    /// (copy-up without a write), then detach from the parent. Safe to interrupt and run
    /// again. `progress(done, total)` is called as objects complete.
    pub async fn flatten(&self, progress: impl Fn(u64, u64) + Send + Sync) -> Result<()> {
        self.check_writable()?;
        if self
            .invoke_proxied(crate::watch_notify::Request::Flatten)
            .await?
        {
            return Ok(());
        }
        let _og = self.op_gate().await?;
        let st = self.state().await?;
        if !st.h.parent.exists() || st.h.head_overlap.is_none() {
            return Err(RbdError::InvalidArgument("image has no parent".into()));
        }
        let q = self.inner.quiesce.read().await;
        let overlap = st.overlap;
        let n = st.h.layout.num_objects(overlap);
        let done = Arc::new(AtomicU64::new(0));
        let mut start = 0u64;
        while start < n {
            let end = (start + 4096).min(n);
            let futs: Vec<BoxFut<()>> = (start..end)
                .map(|ono| {
                    let st = st.clone();
                    let done = done.clone();
                    Box::pin(async move {
                        flatten_object(&st, ono).await?;
                        done.fetch_add(1, Ordering::Relaxed);
                        Ok(())
                    }) as BoxFut<()>
                })
                .collect();
            run_all(futs, crate::resize::MANAGEMENT_OPS).await?;
            progress(done.load(Ordering::Relaxed), n);
            start = end;
        }
        // detach: children registration first, then the header (librbd FlattenRequest)
        let keep_for_snaps = !st.h.snaps.is_empty() && st.h.features & features::DEEP_FLATTEN == 0;
        if !keep_for_snaps {
            detach_child(self, &st).await?;
        }
        match cls::parent_detach()
            .exec(&self.inner.md_io, &self.inner.header_oid)
            .await
        {
            Ok(_) => {}
            Err(e) if e.errno() == Errno::EOPNOTSUPP => {
                cls::remove_parent()
                    .exec(&self.inner.md_io, &self.inner.header_oid)
                    .await?;
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        if !keep_for_snaps && st.h.op_features & features::op::CLONE_CHILD != 0 {
            let _ = cls::op_features_set(0, features::op::CLONE_CHILD)
                .exec(&self.inner.md_io, &self.inner.header_oid)
                .await;
        }
        drop(q);
        self.notify_header_update().await;
        Ok(())
    }
}

async fn flatten_object(st: &Arc<State>, ono: u64) -> Result<()> {
    let oid = st.object_name(ono);
    match st.data_io.stat(&oid).await {
        Ok(_) => return Ok(()),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let data = crate::io::parent_object_data(st, ono).await?;
    if data.is_empty() {
        return Ok(());
    }
    if let Some(x) = &st.xlock {
        x.update_object(ono, crate::object_map::state::EXISTS, None)
            .await?;
    }
    // copy-up alone; with snapshots under an empty snap context so they see the data too
    let io = if st.h.snapc.snaps.is_empty() {
        &st.data_io
    } else {
        &st.data_io_nosnapc
    };
    io.operate_write(&oid, vec![cls::copyup_op(&data)]).await?;
    // exact states for the head and the snapshots that now see the data
    crate::object_map_ops::sync_object_states(st, ono, true).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn releases() {
        assert!(!super::release_at_least_mimic("luminous"));
        assert!(super::release_at_least_mimic("mimic"));
        assert!(super::release_at_least_mimic("pacific"));
        assert!(super::release_at_least_mimic("reef"));
    }
}
