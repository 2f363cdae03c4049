//! Whole-image copies and space reclamation: `rbd cp` (the data of one image or
//! snapshot into a new image, sparse), `rbd deep cp` (every snapshot recreated with its
//! data, a clone's parent kept) and `rbd sparsify` (zero-filled runs become holes).
//! ceph: src/librbd/api/Image.cc (`copy`, `deep_copy`), src/librbd/deep_copy/
//! (SnapshotCopyRequest, SetHeadRequest, ObjectCopyRequest, MetadataCopyRequest),
//! src/librbd/operation/SparsifyRequest.cc, src/tools/rbd/action/{Copy,Sparsify}.cc.
//!
//! The deep copy walks the source's snapshots oldest first. For each it sets the
//! destination head to the snapshot's size and parent overlap (librbd `SetHeadRequest`),
//! writes what changed since the previous snapshot (the object maps' fast-diff, or the
//! OSDs' clone lists), and takes the snapshot; the head comes last. So every destination
//! snapshot reads what the source snapshot reads, through the ordinary write path (object
//! map, exclusive lock, copy-up in a clone).

use crate::cls::{self, SnapshotNamespace};
use crate::diff::DiffExtent;
use crate::error::{RbdError, Result};
use crate::features;
use crate::image::{Image, OpenOptions, State};
use crate::object_map::state as om;
use crate::rbd::{CloneFormat, CloneOptions, CreateOptions, Rbd};
use crate::util::{header_name, run_all, BoxFut};
use ceph_rados::{OsdOp, NOSNAP};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::debug;

/// librbd's default `sparse_size` for copies, imports and sparsify (4 KiB).
pub const DEFAULT_SPARSE_SIZE: u64 = 4096;

/// Pieces of a copy in flight at once (`rbd_concurrent_management_ops` is 10).
const COPY_IN_FLIGHT: usize = 10;

/// Options of [`Image::copy`] and [`Image::deep_copy`] (`rbd cp` / `rbd deep cp`).
/// Unset layout options come from the source, as librbd does.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Object size order (`None`: the source's).
    pub order: Option<u8>,
    /// Feature bits (`None`: the source's).
    pub features: Option<u64>,
    /// Stripe unit (`None`: the source's).
    pub stripe_unit: Option<u64>,
    /// Stripe count (`None`: the source's).
    pub stripe_count: Option<u64>,
    /// Separate data pool for the destination.
    pub data_pool: Option<String>,
    /// Runs of zeros this long (aligned to it in the image) are not written; 0 writes
    /// every byte ([`Image::copy`] only; a deep copy is always sparse at 4 KiB).
    pub sparse_size: u64,
    /// Deep copy: make the destination independent of the source's parent (its data is
    /// copied instead).
    pub flatten: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            order: None,
            features: None,
            stripe_unit: None,
            stripe_count: None,
            data_pool: None,
            sparse_size: DEFAULT_SPARSE_SIZE,
            flatten: false,
        }
    }
}

/// Segments of `buf` (whose first byte is at image offset `off`) in units aligned to
/// `sparse` in the image: `(start, len, is_data)`, neighbours of a kind merged. With
/// `sparse == 0` the whole buffer is one data segment.
pub(crate) fn segments(buf: &[u8], off: u64, sparse: u64) -> Vec<(usize, usize, bool)> {
    let mut out: Vec<(usize, usize, bool)> = Vec::new();
    if buf.is_empty() {
        return out;
    }
    if sparse == 0 {
        return vec![(0, buf.len(), true)];
    }
    let mut pos = 0usize;
    while pos < buf.len() {
        let img = off + pos as u64;
        let unit_end = ((img / sparse + 1) * sparse - off) as usize;
        let end = unit_end.min(buf.len());
        let data = buf[pos..end].iter().any(|b| *b != 0);
        match out.last_mut() {
            Some(l) if l.2 == data && l.0 + l.1 == pos => l.1 += end - pos,
            _ => out.push((pos, end - pos, data)),
        }
        pos = end;
    }
    out
}

/// Split extents at multiples of `piece` (image offsets), so each part is one request.
fn pieces(ext: &[DiffExtent], piece: u64) -> Vec<(u64, u64)> {
    let mut v = Vec::new();
    for e in ext {
        let mut o = e.offset;
        let end = e.offset + e.length;
        while o < end {
            let l = (piece - o % piece).min(end - o);
            v.push((o, l));
            o += l;
        }
    }
    v
}

/// Copy `ext` of `src` (at its open snapshot) into `dest`'s head: non-zero runs are
/// written; zero runs are written as zeros where `zero_needed(offset)` says the
/// destination may hold something else there (an earlier snapshot's data, a parent),
/// else skipped (sparse).
#[allow(clippy::too_many_arguments)]
async fn copy_extents(
    src: &Image,
    dest: &Image,
    ext: &[DiffExtent],
    sparse: u64,
    zero_needed: Arc<dyn Fn(u64) -> bool + Send + Sync>,
    done: Arc<AtomicU64>,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
    total: u64,
) -> Result<()> {
    let piece = src.layout().await?.object_size.min(4 << 20);
    let parts = pieces(ext, piece);
    for batch in parts.chunks(256) {
        let futs: Vec<BoxFut<u64>> = batch
            .iter()
            .map(|&(off, len)| {
                let (s, d, zn) = (src.clone(), dest.clone(), zero_needed.clone());
                Box::pin(async move {
                    let data = s.read(off, len).await?;
                    for (o, l, is_data) in segments(&data, off, sparse) {
                        let at = off + o as u64;
                        if is_data {
                            d.write(at, data.slice(o..o + l)).await?;
                        } else if zn(at) {
                            d.write_zeroes(at, l as u64).await?;
                        }
                    }
                    Ok(len)
                }) as BoxFut<u64>
            })
            .collect();
        let n: u64 = run_all(futs, COPY_IN_FLIGHT).await?.iter().sum();
        let d = done.fetch_add(n, Ordering::Relaxed) + n;
        progress(d.min(total), total);
    }
    Ok(())
}

/// The destination's creation options: what the caller set, else the source's layout
/// and features (librbd `copy` / `deep_copy`).
fn dest_options(st: &State, o: &CopyOptions) -> CreateOptions {
    // librbd takes the source's stripe unit and count even when only the object size
    // is given (a smaller object size then fails: the unit is not a factor of it)
    let l = st.h.layout;
    let su = o.stripe_unit.unwrap_or(l.stripe_unit);
    let sc = o.stripe_count.unwrap_or(l.stripe_count);
    let mut feats = o.features.unwrap_or(
        st.h.features & features::CREATABLE & !(features::STRIPINGV2 | features::DATA_POOL),
    );
    if o.data_pool.is_none() {
        feats &= !features::DATA_POOL;
    }
    CreateOptions {
        order: Some(o.order.unwrap_or(st.h.order)),
        features: Some(feats),
        stripe_unit: Some(su),
        stripe_count: Some(sc),
        data_pool: o.data_pool.clone(),
    }
}

/// Copy the image metadata (librbd `MetadataCopyRequest`; `copy` does the same).
async fn copy_metadata(src: &Image, dest: &Image) -> Result<()> {
    let md = Rbd::new(src.ioctx().clone()).metadata(src.id()).await?;
    if md.is_empty() {
        return Ok(());
    }
    cls::metadata_set(&md)
        .exec(dest.ioctx(), &header_name(dest.id()))
        .await?;
    Ok(())
}

impl Image {
    /// `rbd cp`: create `name` in `dest` with this image's size (at the open snapshot)
    /// and copy its data — a clone's parent data included, so the copy stands alone —
    /// and its metadata. Zero runs of `opts.sparse_size` are not written.
    /// `progress(done, total)` in bytes.
    pub async fn copy(
        &self,
        dest: &Rbd,
        name: &str,
        opts: &CopyOptions,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<()> {
        let st = self.state().await?;
        let size = st.size;
        dest.create(name, size, &dest_options(&st, opts)).await?;
        let d = dest.open(name).await?;
        let r = async {
            copy_metadata(self, &d).await?;
            let ext = self.diff_iterate(None, 0, size, true, true).await?;
            let ext: Vec<DiffExtent> = ext.into_iter().filter(|e| e.exists).collect();
            let total = ext.iter().map(|e| e.length).sum::<u64>();
            copy_extents(
                self,
                &d,
                &ext,
                opts.sparse_size,
                Arc::new(|_| false),
                Arc::new(AtomicU64::new(0)),
                &progress,
                total,
            )
            .await?;
            progress(total, total);
            d.flush().await
        }
        .await;
        let c = d.close().await;
        r.and(c)
    }

    /// `rbd deep cp`: create `name` in `dest` with every user snapshot of this image (up
    /// to and including the open snapshot) recreated in order with its data, size, parent overlap and
    /// protection, then the head. A clone's copy is a clone of the same parent snapshot
    /// (unless `opts.flatten`), holding only what the source holds itself. Metadata is
    /// copied. `progress(done, total)` counts the passes (one per snapshot, one for the
    /// head).
    pub async fn deep_copy(
        &self,
        dest: &Rbd,
        name: &str,
        opts: &CopyOptions,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<()> {
        let st = self.state().await?;
        let end = self.snap_id().unwrap_or(NOSNAP);
        let snaps: Vec<_> =
            st.h.snaps
                .iter()
                .filter(|s| s.namespace == SnapshotNamespace::User && s.id <= end)
                .cloned()
                .collect();
        let parent = (!opts.flatten && st.h.parent.exists()).then(|| st.h.parent.clone());
        let copts = dest_options(&st, opts);
        let first_size = snaps.first().map(|s| s.size).unwrap_or(st.size).max(1);
        match &parent {
            None => {
                dest.create(name, first_size, &copts).await?;
            }
            Some(spec) => {
                let p = Image::open_parent(self.ioctx().rados(), spec).await?;
                let cl = CloneOptions {
                    features: copts.features,
                    order: copts.order,
                    stripe_unit: copts.stripe_unit,
                    stripe_count: copts.stripe_count,
                    data_pool: copts.data_pool.clone(),
                    format: CloneFormat::Auto,
                };
                let r = crate::clone::clone_from(&p, dest, name, &cl).await;
                let _ = p.close().await;
                r?;
            }
        }
        let d = dest.open(name).await?;
        let r = self
            .deep_copy_into(&st, &d, &snaps, parent.is_some(), &progress)
            .await;
        let c = d.close().await;
        r.and(c)
    }

    async fn deep_copy_into(
        &self,
        st: &Arc<State>,
        d: &Image,
        snaps: &[crate::image::SnapInfo],
        clone: bool,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<()> {
        copy_metadata(self, d).await?;
        let src_rbd = Rbd::new(self.ioctx().clone());
        let passes = snaps.len() as u64 + 1;
        let mut prev: Option<String> = None;
        for i in 0..=snaps.len() {
            // the source as of this pass: a snapshot, or this handle (head or open snap)
            let (view, size, overlap, snap) = match snaps.get(i) {
                Some(s) => {
                    let v = src_rbd
                        .open_by_id(
                            self.id(),
                            &OpenOptions {
                                read_only: true,
                                no_watch: true,
                                snapshot: Some(s.name.clone()),
                                ..Default::default()
                            },
                        )
                        .await?;
                    let ov = s.parent_overlap.unwrap_or(0).min(s.size);
                    (v, s.size, ov, Some(s))
                }
                None => (self.clone(), st.size, st.overlap.min(st.size), None),
            };
            // librbd SetHeadRequest: size, then the parent overlap
            if d.size().await? != size {
                d.resize(size, true).await?;
            }
            let mut dest_overlap = 0;
            if clone {
                let head_detached = snap.is_none() && st.h.head_overlap.is_none();
                if let Some((spec, cur)) = d.parent_spec().await? {
                    let io = d.ioctx();
                    let oid = header_name(d.id());
                    if head_detached {
                        cls::parent_detach().exec(io, &oid).await?;
                        d.notify_header_update().await;
                    } else if cur != overlap {
                        cls::parent_attach(&spec, overlap, true)
                            .exec(io, &oid)
                            .await?;
                        d.notify_header_update().await;
                    }
                    dest_overlap = if head_detached { 0 } else { overlap };
                }
            }
            let ext = view
                .diff_iterate(prev.as_deref(), 0, size, false, true)
                .await?;
            let first = prev.is_none();
            // zeros matter where the destination shows something: an earlier
            // snapshot's data, or the parent inside the overlap
            let zero_needed: Arc<dyn Fn(u64) -> bool + Send + Sync> =
                Arc::new(move |at| !first || at < dest_overlap);
            let total = ext.iter().map(|e| e.length).sum::<u64>();
            copy_extents(
                &view,
                d,
                &ext,
                DEFAULT_SPARSE_SIZE,
                zero_needed,
                Arc::new(AtomicU64::new(0)),
                &|_, _| {},
                total,
            )
            .await?;
            if let Some(s) = snap {
                let _ = view.close().await;
                d.snap_create(&s.name).await?;
                if s.is_protected() {
                    d.snap_protect(&s.name).await?;
                }
                prev = Some(s.name.clone());
            }
            progress(i as u64 + 1, passes);
        }
        d.flush().await
    }

    /// `rbd sparsify`: turn runs of zeros (`sparse_size`, aligned) inside the objects
    /// into holes: an all-zero object is removed (truncated to nothing inside a clone's
    /// overlap, where it must keep hiding the parent), trailing zeros are truncated, other
    /// runs zeroed (deallocated by the OSD). Each object is changed in one atomic op
    /// vector that first compares its content (CMPEXT), so a concurrent write is never
    /// undone: such an object is left alone. `progress(done, total)` in objects.
    pub async fn sparsify(
        &self,
        sparse_size: u64,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<()> {
        self.check_writable()?;
        let _og = self.op_gate().await?;
        let st = self.state().await?;
        // librbd Operations::sparsify
        if sparse_size < 4096
            || !sparse_size.is_power_of_two()
            || sparse_size > st.h.layout.object_size
        {
            return Err(RbdError::InvalidArgument(
                "sparse size should be power of two not less than 4096 and not larger image object size".into(),
            ));
        }
        let n = st.h.layout.num_objects(st.size);
        let done = Arc::new(AtomicU64::new(0));
        let mut start = 0;
        while start < n {
            let end = (start + 1024).min(n);
            let futs: Vec<BoxFut<()>> = (start..end)
                .map(|ono| {
                    let st = st.clone();
                    let done = done.clone();
                    Box::pin(async move {
                        sparsify_object(&st, ono, sparse_size).await?;
                        done.fetch_add(1, Ordering::Relaxed);
                        Ok(())
                    }) as BoxFut<()>
                })
                .collect();
            let r = run_all(futs, crate::resize::MANAGEMENT_OPS).await;
            self.note_result(&r);
            r?;
            progress(done.load(Ordering::Relaxed), n);
            start = end;
        }
        Ok(())
    }
}

/// One object of [`Image::sparsify`].
async fn sparsify_object(st: &Arc<State>, ono: u64, sparse: u64) -> Result<()> {
    let oid = st.object_name(ono);
    let os = st.h.layout.object_size;
    let data = match st.data_io.read(&oid, 0, os).await {
        Ok(d) => d,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if data.is_empty() {
        return Ok(());
    }
    let segs = segments(&data, 0, sparse);
    if segs.iter().all(|s| s.2) {
        return Ok(());
    }
    let in_overlap = st.object_in_overlap(ono);
    let map = st.xlock.as_ref().filter(|x| x.has_map());
    let guard = OsdOp::cmpext(0, data.clone());
    let all_zero = segs.len() == 1 && !segs[0].2;
    let r = if all_zero && !in_overlap {
        if let Some(x) = map {
            x.update_object(ono, om::PENDING, None).await?;
        }
        let r = st
            .data_io
            .operate_write(&oid, vec![guard, OsdOp::delete()])
            .await;
        if let Some(x) = map {
            let now = if r.is_ok() {
                om::NONEXISTENT
            } else {
                om::EXISTS
            };
            x.update_object(ono, now, Some(om::PENDING)).await?;
        }
        r
    } else {
        if let Some(x) = map {
            x.update_object(ono, om::EXISTS, None).await?;
        }
        let mut ops = vec![guard];
        for &(o, l, is_data) in &segs {
            if is_data {
                continue;
            }
            if o + l == data.len() {
                ops.push(OsdOp::truncate(o as u64));
            } else {
                ops.push(OsdOp::zero(o as u64, l as u64));
            }
        }
        st.data_io.operate_write(&oid, ops).await
    };
    match r {
        Ok(_) => Ok(()),
        // CMPEXT mismatch (-MAX_ERRNO - offset): written meanwhile, leave it
        Err(e) if e.errno().0 >= 4095 => {
            debug!("sparsify: {oid} changed meanwhile, left alone");
            Ok(())
        }
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_segments() {
        let mut b = vec![0u8; 5 * 4096 + 100];
        b[4096 + 3] = 1;
        b[2 * 4096] = 1;
        b[5 * 4096 + 99] = 1;
        assert_eq!(
            segments(&b, 0, 4096),
            vec![
                (0, 4096, false),
                (4096, 2 * 4096, true),
                (3 * 4096, 2 * 4096, false),
                (5 * 4096, 100, true)
            ]
        );
        // alignment follows the image offset, not the buffer
        let b = vec![0u8; 8192];
        assert_eq!(segments(&b, 100, 4096), vec![(0, 8192, false)]);
        let mut b = vec![0u8; 8192];
        b[0] = 1;
        assert_eq!(
            segments(&b, 4000, 4096),
            vec![(0, 96, true), (96, 8096, false)]
        );
        assert_eq!(segments(&b, 0, 0), vec![(0, 8192, true)]);
    }

    #[test]
    fn piece_split() {
        let e = [DiffExtent {
            offset: 1000,
            length: 10 << 20,
            exists: true,
        }];
        let v = pieces(&e, 4 << 20);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0], (1000, (4 << 20) - 1000));
        assert_eq!(v.iter().map(|x| x.1).sum::<u64>(), 10 << 20);
    }
}
