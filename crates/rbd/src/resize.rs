//! Resize (grow; shrink trims data objects past the new end) and object trimming
//! (ceph: src/librbd/operation/{ResizeRequest,TrimRequest}.cc).

use crate::cls;
use crate::error::{RbdError, Result};
use crate::image::{Image, State};
use crate::object_map::state as om;
use crate::util::{run_all, BoxFut, GoneOk};
use crate::watch_notify::Request;
use ceph_rados::{Errno, OsdOp};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Objects removed or truncated at once (librbd `rbd_concurrent_management_ops` is 10).
pub(crate) const MANAGEMENT_OPS: usize = 16;

/// Remove the data objects `range` (missing ones are fine).
pub(crate) async fn remove_objects(
    st: &Arc<State>,
    range: Range<u64>,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<()> {
    let total = range.end.saturating_sub(range.start);
    let done = Arc::new(AtomicU64::new(0));
    let mut start = range.start;
    // batches keep the number of futures built at once bounded for huge images
    while start < range.end {
        let end = (start + 4096).min(range.end);
        let futs: Vec<BoxFut<()>> = (start..end)
            .map(|ono| {
                let st = st.clone();
                let done = done.clone();
                Box::pin(async move {
                    let oid = st.object_name(ono);
                    st.data_io.remove(&oid).await.gone_ok()?;
                    done.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }) as BoxFut<()>
            })
            .collect();
        run_all(futs, MANAGEMENT_OPS).await?;
        progress(done.load(Ordering::Relaxed), total);
        start = end;
    }
    Ok(())
}

/// Trim the data past `new_size` (objects entirely past it are removed, the boundary
/// objects truncated if they exist).
pub(crate) async fn trim(st: &Arc<State>, new_size: u64, old_size: u64) -> Result<()> {
    let l = st.h.layout;
    let n_old = l.num_objects(old_size);
    // the first object that loses data
    let first = if l.is_simple() {
        new_size / l.object_size
    } else {
        (new_size / l.period()) * l.stripe_count
    };
    let mut remove = Vec::new();
    let mut truncate = Vec::new();
    for ono in first..n_old {
        let keep = l.object_bytes_within(ono, new_size);
        if keep == 0 {
            remove.push(ono);
        } else if keep < l.object_bytes_within(ono, old_size) {
            truncate.push((ono, keep));
        }
    }
    // a clone with snapshots: what the snapshots see of the parent beyond the new end
    // moves into the child first, so the removal/truncation below (under the image's snap
    // context) leaves it in RADOS clones (librbd TrimRequest::send_copyup_objects and the
    // copy-up of send_clean_boundary's discards). Without this the snapshots would depend
    // on the parent beyond the head's shrunk overlap: the next copy-up into the head (an
    // empty snap context, so the snapshots see it) carries only the head's overlap of
    // parent data and hides the rest from them, and a rollback deletes what the parent
    // showed. Without snapshots nothing needs keeping: the overlap shrinks to the new end.
    if st.parent.is_some() && st.overlap > new_size && !st.h.snapc.snaps.is_empty() {
        let keep_map = l.num_objects(new_size);
        let futs: Vec<BoxFut<()>> = (first..n_old)
            .filter(|&ono| {
                l.object_bytes_within(ono, st.overlap) > l.object_bytes_within(ono, new_size)
            })
            .map(|ono| {
                let st = st.clone();
                Box::pin(async move { copyup_for_snapshots(&st, ono, ono < keep_map).await })
                    as BoxFut<()>
            })
            .collect();
        run_all(futs, MANAGEMENT_OPS).await?;
    }
    let futs: Vec<BoxFut<()>> = truncate
        .into_iter()
        .map(|(ono, keep)| {
            let st = st.clone();
            Box::pin(async move {
                let oid = st.object_name(ono);
                // a truncation changes the object: a fast-diff map's "clean since the
                // last snapshot" no longer holds (librbd's boundary discard goes through
                // the object map like any write)
                if let Some(x) = st.xlock.as_ref().filter(|x| x.has_map()) {
                    x.update_object(ono, om::EXISTS, Some(om::EXISTS_CLEAN))
                        .await?;
                }
                match st
                    .data_io
                    .operate_write(&oid, vec![OsdOp::stat(), OsdOp::truncate(keep)])
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_not_found() => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }) as BoxFut<()>
        })
        .collect();
    run_all(futs, MANAGEMENT_OPS).await?;
    // remove from the end so an interrupted shrink leaves no holes below the boundary
    let futs: Vec<BoxFut<()>> = remove
        .into_iter()
        .rev()
        .map(|ono| {
            let st = st.clone();
            Box::pin(async move {
                match st.data_io.remove(&st.object_name(ono)).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.is_not_found() => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }) as BoxFut<()>
        })
        .collect();
    run_all(futs, MANAGEMENT_OPS).await?;
    Ok(())
}

/// Copy object `ono` of a clone up from the parent under an empty snap context (so the
/// snapshots that read it through the parent see it as before) unless the child has it
/// already or the parent holds only zeros there. `stays`: the object keeps data after
/// the shrink, so the head's object map must say it exists (the objects that go are
/// PENDING in it for the whole trim).
async fn copyup_for_snapshots(st: &Arc<State>, ono: u64, stays: bool) -> Result<()> {
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
    if stays {
        if let Some(x) = st.xlock.as_ref().filter(|x| x.has_map()) {
            x.update_object(ono, om::EXISTS, None).await?;
        }
    }
    st.data_io_nosnapc
        .operate_write(&oid, vec![cls::copyup_op(&data)])
        .await?;
    crate::object_map_ops::sync_object_states(st, ono, false).await?;
    Ok(())
}

impl Image {
    /// Resize to `size` bytes. Shrinking needs `allow_shrink` (as `rbd resize
    /// --allow-shrink`) and removes/truncates the data past the new end first; the parent
    /// overlap of a clone shrinks with it (cls `set_size`) and never grows back.
    pub async fn resize(&self, size: u64, allow_shrink: bool) -> Result<()> {
        self.check_writable()?;
        if size > i64::MAX as u64 {
            return Err(RbdError::refused(
                format!("image size {size} is too large"),
                Errno::EFBIG,
            ));
        }
        if self
            .invoke_proxied(Request::Resize { size, allow_shrink })
            .await?
        {
            return Ok(());
        }
        let _og = self.op_gate().await?;
        {
            let _q = self.inner.quiesce.read().await;
            let st = self.state().await?;
            let old = st.h.size;
            if size == old {
                return Ok(());
            }
            if size < old {
                if !allow_shrink {
                    return Err(RbdError::InvalidArgument(format!(
                        "shrinking from {old} to {size} bytes needs allow_shrink"
                    )));
                }
                let l = st.h.layout;
                let (keep, had) = (l.num_objects(size), l.num_objects(old));
                if let Some(x) = &st.xlock {
                    x.update_range(keep, had, om::PENDING, None).await?;
                }
                trim(&st, size, old).await?;
                if let Some(x) = &st.xlock {
                    x.update_range(keep, had, om::NONEXISTENT, Some(om::PENDING))
                        .await?;
                }
            }
            if let Some(x) = &st.xlock {
                x.resize_map(st.h.layout.num_objects(size)).await?;
            }
            if self.inner.format == 1 {
                // librbd rewrites only the size field of the `<name>.rbd` header
                self.inner
                    .md_io
                    .write(
                        &self.inner.header_oid,
                        crate::format1::OFF_SIZE as u64,
                        bytes::Bytes::copy_from_slice(&size.to_le_bytes()),
                    )
                    .await?;
            } else {
                cls::set_size(size)
                    .exec(&self.inner.md_io, &self.inner.header_oid)
                    .await?;
            }
            self.invalidate();
        }
        // the quiesce guard is released first: our own watch must be free to ack
        self.notify_header_update().await;
        Ok(())
    }
}
