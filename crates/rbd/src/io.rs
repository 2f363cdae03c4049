//! Image I/O: requests split into per-object operations that go out concurrently,
//! layering (reads through the parent chain inside the overlap, copy-up before the first
//! write to a child object), discard and compare-and-write.
//! ceph: src/librbd/io/{ImageRequest,ObjectRequest,CopyupRequest}.cc; kernel:
//! drivers/block/rbd.c (rbd_obj_read_from_parent, rbd_obj_copyup_*).

use crate::cache::Carrier;
use crate::cls;
use crate::error::{RbdError, Result};
use crate::image::{Image, State};
use crate::object_map::state as om;
use crate::scheduler::{Done, Scheduler};
use crate::util::{run_all, BoxFut, GoneOk};
use bytes::{Bytes, BytesMut};
use ceph_rados::{DataSegment, Errno, OsdOp};
use std::sync::Arc;

/// `-MAX_ERRNO`: CMPEXT reports a mismatch at offset `n` as `-(MAX_ERRNO + n)`.
const MAX_ERRNO: i32 = 4095;

/// What to do with a range of an object.
#[derive(Debug, Clone)]
pub(crate) enum ObjWrite {
    /// Write these buffers back to back starting at the offset.
    Data(Vec<Bytes>),
    /// Make the range read as zeros (discard / write-zeroes).
    Zero,
    /// Disjoint runs of one object (offset, buffers back to back), none touching the
    /// next, in one request: the I/O scheduler's batch. The offset and length given
    /// with it span the runs; it is never a whole-object write.
    Runs(Vec<(u64, Vec<Bytes>)>),
}

impl Image {
    /// Clip an I/O request to the image size like librbd's `clip_io`.
    fn clip(st: &State, off: u64, len: u64) -> Result<u64> {
        if off > st.size {
            return Err(RbdError::InvalidArgument(format!(
                "offset {off} is beyond the image size {}",
                st.size
            )));
        }
        Ok(len.min(st.size - off))
    }

    /// Read `len` bytes at `off`. Holes and unwritten objects read as zeros; in a clone,
    /// objects the child does not have are read from the parent inside the overlap.
    /// The result is shorter than `len` only at the end of the image.
    pub async fn read(&self, off: u64, len: u64) -> Result<Bytes> {
        let st = self.state().await?;
        let len = Self::clip(&st, off, len)?;
        if len == 0 {
            return Ok(Bytes::new());
        }
        self.touch(false);
        // A read inside one object (every small read) is mapped once, without vectors,
        // and goes straight to its object.
        match st.h.layout.within_one_object(off, len) {
            Some((ono, o)) => {
                let piece = [(ono, o, len)];
                self.release_delayed(&piece);
                self.wait_for_writes(&piece).await;
                object_read(st, ono, o, len).await
            }
            None => {
                let pieces = object_ranges(&st, off, len);
                self.release_delayed(&pieces);
                self.wait_for_writes(&pieces).await;
                read_extents(st, vec![(off, len)]).await
            }
        }
    }

    /// Write `data` at `off` (clipped at the end of the image, as librbd does).
    ///
    /// Under the write-around policy (see [`crate::cache`]) success means the write was
    /// *sent*, in order with overlapping writes; [`Image::flush`] reports whether it was
    /// committed. Written through (the default until the first flush, or with
    /// `rbd_cache = false`), success means committed. An error always means the write
    /// was not sent and will not land later.
    pub async fn write(&self, off: u64, data: Bytes) -> Result<()> {
        self.check_writable()?;
        let gate = self.write_gate_owned().await?;
        let st = self.state().await?;
        let len = Self::clip(&st, off, data.len() as u64)?;
        if len == 0 {
            return Ok(());
        }
        let data = data.slice(..len as usize);
        self.touch(true);
        let items =
            st.h.layout
                .file_to_extents(off, len)
                .into_iter()
                .map(|e| {
                    let bufs: Vec<Bytes> = e
                        .buffer_extents
                        .iter()
                        .map(|&(bo, bl)| data.slice(bo as usize..(bo + bl) as usize))
                        .collect();
                    (e.object_no, e.offset, e.length, ObjWrite::Data(bufs))
                })
                .collect();
        self.dispatch_writes(st, items, gate).await
    }

    /// Send the object writes of one request. Written through: wait for the OSDs.
    /// Write-around: hand each object write to a task that waits for its turn (overlap,
    /// `rbd_cache_max_dirty`), sends it and records its result for the next flush, or,
    /// when the I/O scheduler delays it, to its object's batch with a callback that
    /// records the result; the caller is answered once all are sent. Tasks and
    /// callbacks hold the I/O gate, so a lock release, a quiesce or [`Image::flush`]
    /// waits for them.
    async fn dispatch_writes(
        &self,
        st: Arc<State>,
        items: Vec<(u64, u64, u64, ObjWrite)>,
        gate: tokio::sync::OwnedRwLockReadGuard<()>,
    ) -> Result<()> {
        if let Some(wa) = &self.inner.cache {
            let tids: Option<Vec<(u64, bool)>> = {
                let mut g = wa.lock();
                g.t.write_around()
                    .then(|| items.iter().map(|i| g.t.submit(i.0, i.1, i.2)).collect())
            };
            if let Some(tids) = tids {
                let gate = Arc::new(gate);
                // The caller is answered once every object write is dispatched: those not
                // dispatched at once tell it through their task.
                let mut turns = Vec::new();
                for (&(tid, ready), (ono, o, l, w)) in tids.iter().zip(items) {
                    let carrier = Carrier::new(wa.clone(), tid, ono, l);
                    let xlock = self.xlock().cloned();
                    let gate = gate.clone();
                    // the write's end: the exclusive lock hears of a blocklisting, the
                    // tracker of the outcome (the next flush reports an error), the I/O
                    // gate opens. Dropped uncalled, the carrier abandons the write. (The
                    // lock itself, not `Image::note_result`: a batch holding an image
                    // handle would keep the image, and its scheduler, alive.)
                    let done: Done = Box::new(move |r: Result<()>| {
                        if let Some(x) = &xlock {
                            x.note(&r);
                        }
                        carrier.finish(&r);
                        drop(gate);
                    });
                    // A write the I/O scheduler delays joins its object's batch with
                    // `done` as its waiter: no task of its own. Under a deep write-around
                    // queue that is most writes, and a task per write kept thousands of
                    // futures alive, each touched again when its write completed.
                    let (w, done) = match (&self.inner.sched, w) {
                        (Some(s), ObjWrite::Data(bufs)) if ready => {
                            match s.delay(&st, ono, o, bufs, done) {
                                Ok(()) => continue,
                                Err((bufs, done)) => (ObjWrite::Data(bufs), done),
                            }
                        }
                        (_, w) => (w, done),
                    };
                    let st = st.clone();
                    let sched = self.inner.sched.clone();
                    let turn = (!ready).then(|| {
                        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                        turns.push(rx);
                        (tx, wa.clone())
                    });
                    // boxed: the task stores a pointer, not the whole object-write future
                    // (tokio copies a task's future/output stage when it finishes)
                    tokio::spawn(Box::pin(async move {
                        if let Some((turn, wa)) = turn {
                            wa.wait_dispatched(tid).await;
                            // the caller may have stopped waiting; the write goes on
                            let _ = turn.send(());
                        }
                        let r = object_write_via(sched, st, ono, o, l, w).await;
                        done(r);
                    }));
                }
                for rx in turns {
                    if rx.await.is_err() {
                        // the runtime dropped the task before it could send the write
                        return Err(RbdError::refused(
                            "write-around: the task carrying a write ended before sending it",
                            Errno::ECANCELED,
                        ));
                    }
                }
                return Ok(());
            }
        }
        let futs: Vec<BoxFut<()>> = items
            .into_iter()
            .map(|(ono, o, l, w)| {
                let sched = self.inner.sched.clone();
                Box::pin(object_write_via(sched, st.clone(), ono, o, l, w)) as BoxFut<()>
            })
            .collect();
        let r = run_all(futs, usize::MAX).await.map(|_| ());
        self.note_result(&r);
        drop(gate);
        r
    }

    /// Send the I/O scheduler's delayed writes that overlap a range about to be read.
    /// `pieces` are (object, offset, length).
    fn release_delayed(&self, pieces: &[(u64, u64, u64)]) {
        let Some(s) = &self.inner.sched else {
            return;
        };
        if !s.has_delayed() {
            return;
        }
        s.release_for_read(pieces);
    }

    /// Wait until no write-around write that is queued or in flight overlaps the range
    /// (librbd's `dispatch_unoptimized_io`), so a read sees every acknowledged write.
    /// `pieces` are (object, offset, length).
    async fn wait_for_writes(&self, pieces: &[(u64, u64, u64)]) {
        let Some(wa) = &self.inner.cache else {
            return;
        };
        wa.wait_until(|t| !pieces.iter().any(|&(o, f, l)| t.read_blocked(o, f, l)))
            .await;
    }

    /// The write policy in force on this handle, as Ceph names it (what `rbd-rs bench`
    /// prints): `writethrough`, `writearound (max_dirty N)`, or writethrough until the
    /// first flush.
    pub fn cache_policy(&self) -> String {
        match &self.inner.cache {
            Some(wa) => wa.describe(),
            None => "none (read-only)".to_string(),
        }
    }

    /// Discard a range: afterwards it reads as zeros; whole objects are removed (or, in a
    /// clone inside the overlap, truncated so the parent stays hidden).
    pub async fn discard(&self, off: u64, len: u64) -> Result<()> {
        self.zero_range(off, len).await
    }

    /// Write zeros over a range (deallocating where possible, like librbd's
    /// `write_zeroes` without thick provisioning).
    pub async fn write_zeroes(&self, off: u64, len: u64) -> Result<()> {
        self.zero_range(off, len).await
    }

    async fn zero_range(&self, off: u64, len: u64) -> Result<()> {
        self.check_writable()?;
        let gate = self.write_gate_owned().await?;
        let st = self.state().await?;
        let len = Self::clip(&st, off, len)?;
        if len == 0 {
            return Ok(());
        }
        self.touch(true);
        let items =
            st.h.layout
                .file_to_extents(off, len)
                .into_iter()
                .map(|e| (e.object_no, e.offset, e.length, ObjWrite::Zero))
                .collect();
        self.dispatch_writes(st, items, gate).await
    }

    /// Compare-and-write: if the image holds `cmp` at `off`, write `data` there, atomically
    /// (one object op vector: CMPEXT + WRITE). The range must lie in one object; a
    /// mismatch fails with [`RbdError::CompareMismatch`] (EILSEQ) and the offset of the
    /// first differing byte.
    pub async fn compare_and_write(&self, off: u64, cmp: Bytes, data: Bytes) -> Result<()> {
        self.check_writable()?;
        if cmp.len() != data.len() || cmp.is_empty() {
            return Err(RbdError::InvalidArgument(
                "compare and write buffers must be non-empty and of equal length".into(),
            ));
        }
        let _q = self.write_gate().await?;
        let st = self.state().await?;
        let len = data.len() as u64;
        if off + len > st.size {
            return Err(RbdError::InvalidArgument(
                "compare-and-write beyond the end of the image".into(),
            ));
        }
        let ex = st.h.layout.file_to_extents(off, len);
        if ex.len() != 1 || ex[0].buffer_extents.len() != 1 {
            return Err(RbdError::InvalidArgument(
                "compare-and-write must not cross an object boundary".into(),
            ));
        }
        let e = &ex[0];
        // librbd dispatches compare-and-write "unoptimized": after overlapping writes
        self.wait_for_writes(&[(e.object_no, e.offset, e.length)])
            .await;
        let reg = match &self.inner.sched {
            Some(s) => Some(s.begin_direct(e.object_no, e.offset, len).await),
            None => None,
        };
        let r = self.compare_and_write_object(&st, e, cmp, data).await;
        if let Some(reg) = reg {
            reg.finish();
        }
        r
    }

    async fn compare_and_write_object(
        &self,
        st: &Arc<State>,
        e: &crate::layout::ObjectExtent,
        cmp: Bytes,
        data: Bytes,
    ) -> Result<()> {
        let oid = st.object_name(e.object_no);
        if let Some(x) = &st.xlock {
            let r = x.update_object(e.object_no, om::EXISTS, None).await;
            self.note_result(&r);
            r?;
        }
        let body = vec![OsdOp::cmpext(e.offset, cmp), OsdOp::write(e.offset, data)];
        let map_err = |err: ceph_rados::Error| -> RbdError {
            let n = err.errno().0;
            if n >= MAX_ERRNO {
                RbdError::CompareMismatch {
                    offset: (n - MAX_ERRNO) as u64,
                }
            } else {
                err.into()
            }
        };
        if st.object_in_overlap(e.object_no) {
            let mut ops = vec![OsdOp::stat()];
            ops.extend(body.iter().cloned());
            match st.data_io.operate_write(&oid, ops).await {
                Ok(_) => Ok(()),
                Err(err) if err.is_not_found() => {
                    copyup(st, e.object_no, body).await.map_err(|e| match e {
                        RbdError::Rados(r) => map_err(r),
                        o => o,
                    })
                }
                Err(err) => Err(map_err(err)),
            }
        } else {
            // CMPEXT compares against zeros past the end of an (empty) object
            let mut ops = vec![OsdOp::create(false)];
            ops.extend(body);
            st.data_io
                .operate_write(&oid, ops)
                .await
                .map(|_| ())
                .map_err(map_err)
        }
    }

    /// Wait until every write issued before this call has completed, and report the
    /// first error an acknowledged write-around write hit since the last flush (each
    /// error is reported once). A successful flush means every write acknowledged
    /// before it is committed on the OSDs. Under `rbd_cache_writethrough_until_flush`
    /// the first flush also switches the handle to write-around (librbd's rule: a
    /// caller that flushes can be trusted to flush before relying on its data).
    pub async fn flush(&self) -> Result<()> {
        if let Some(s) = &self.inner.sched {
            s.release_all();
        }
        let r = match &self.inner.cache {
            Some(wa) => wa.flush().await,
            None => Ok(()),
        };
        // written-through writes of other tasks still in flight
        drop(self.inner.quiesce.write().await);
        r
    }
}

/// The (object, offset, length) pieces of an image range, for the overlap checks of
/// the write-around and scheduler layers.
fn object_ranges(st: &State, off: u64, len: u64) -> Vec<(u64, u64, u64)> {
    st.h.layout
        .file_to_extents(off, len)
        .iter()
        .map(|e| (e.object_no, e.offset, e.length))
        .collect()
}

/// Read image extents (in the image's own layout, at its open snapshot) into one buffer.
pub(crate) fn read_extents(st: Arc<State>, extents: Vec<(u64, u64)>) -> BoxFut<Bytes> {
    Box::pin(async move {
        let total: u64 = extents.iter().map(|e| e.1).sum();
        // per object extent: (object no, offset, length, [(buffer offset, len)])
        let mut parts = Vec::new();
        let mut base = 0u64;
        for &(off, len) in &extents {
            for e in st.h.layout.file_to_extents(off, len) {
                let be: Vec<(u64, u64)> = e
                    .buffer_extents
                    .iter()
                    .map(|&(b, l)| (b + base, l))
                    .collect();
                parts.push((e.object_no, e.offset, e.length, be));
            }
            base += len;
        }
        if parts.len() == 1 && parts[0].3.len() == 1 {
            let (ono, o, l, _) = parts.pop().expect("one part");
            return object_read(st, ono, o, l).await;
        }
        let futs: Vec<BoxFut<Bytes>> = parts
            .iter()
            .map(|(ono, o, l, _)| object_read(st.clone(), *ono, *o, *l))
            .collect();
        let datas = run_all(futs, usize::MAX).await?;
        let mut buf = BytesMut::zeroed(total as usize);
        for ((_, _, _, be), data) in parts.iter().zip(datas) {
            let mut pos = 0usize;
            for &(bo, bl) in be {
                let bl = bl as usize;
                if pos < data.len() {
                    let n = bl.min(data.len() - pos);
                    buf[bo as usize..bo as usize + n].copy_from_slice(&data[pos..pos + n]);
                }
                pos += bl;
            }
        }
        Ok(buf.freeze())
    })
}

/// Read one object extent; always returns exactly `len` bytes.
fn object_read(st: Arc<State>, object_no: u64, off: u64, len: u64) -> BoxFut<Bytes> {
    Box::pin(async move {
        // the owner's object map says the object does not exist: no OSD round trip
        // (librbd ObjectMap::object_may_exist); the map is exact only for the head
        if st.data_io.read_snap() == ceph_rados::NOSNAP {
            if let Some(om::NONEXISTENT) = st.xlock.as_ref().and_then(|x| x.object_state(object_no))
            {
                return read_from_parent(&st, object_no, off, len).await;
            }
        }
        let oid = st.object_name(object_no);
        match st.data_io.read(&oid, off, len).await {
            Ok(d) if d.len() as u64 == len => Ok(d),
            Ok(d) => {
                let mut b = BytesMut::zeroed(len as usize);
                b[..d.len()].copy_from_slice(&d);
                Ok(b.freeze())
            }
            Err(e) if e.is_not_found() => read_from_parent(&st, object_no, off, len).await,
            Err(e) => Err(e.into()),
        }
    })
}

/// The bytes of object extent (`off`, `len`) as the parent shows them (zeros outside
/// the overlap or without a parent).
async fn read_from_parent(st: &Arc<State>, object_no: u64, off: u64, len: u64) -> Result<Bytes> {
    let Some(parent) = st.parent.as_ref().filter(|_| st.overlap > 0) else {
        return Ok(Bytes::from(vec![0u8; len as usize]));
    };
    // object extent -> image extents, each clipped to the overlap
    let img = st.h.layout.object_to_image(object_no, off, len);
    let mut want = Vec::new(); // (position in result, image offset, len)
    let mut pos = 0u64;
    for (io, il) in img {
        if io < st.overlap {
            want.push((pos, io, il.min(st.overlap - io)));
        }
        pos += il;
    }
    if want.is_empty() {
        return Ok(Bytes::from(vec![0u8; len as usize]));
    }
    let pst = parent.image.state().await?;
    // the parent may be smaller than the overlap (it reads zeros there)
    let mut ext = Vec::new();
    for &(_, io, il) in &want {
        let l = il.min(pst.size.saturating_sub(io));
        ext.push((io, l));
    }
    let total: u64 = ext.iter().map(|e| e.1).sum();
    let data = if total > 0 {
        read_extents(pst, ext.iter().copied().filter(|e| e.1 > 0).collect()).await?
    } else {
        Bytes::new()
    };
    if want.len() == 1 && want[0].0 == 0 && data.len() as u64 == len {
        return Ok(data);
    }
    let mut buf = BytesMut::zeroed(len as usize);
    let mut dpos = 0usize;
    for (&(p, _, _), &(_, l)) in want.iter().zip(ext.iter()) {
        let l = l as usize;
        buf[p as usize..p as usize + l].copy_from_slice(&data[dpos..dpos + l]);
        dpos += l;
    }
    Ok(buf.freeze())
}

/// The whole content an object of a clone has in the parent (for copy-up): bytes from
/// object offset 0 up to the last byte inside the overlap. Empty if all zeros.
pub(crate) async fn parent_object_data(st: &Arc<State>, object_no: u64) -> Result<Bytes> {
    let l = st.h.layout;
    let valid = l.object_bytes_within(object_no, st.overlap);
    if valid == 0 || st.parent.is_none() {
        return Ok(Bytes::new());
    }
    let data = read_from_parent(st, object_no, 0, valid).await?;
    if data.iter().all(|b| *b == 0) {
        return Ok(Bytes::new());
    }
    Ok(data)
}

fn write_ops(off: u64, len: u64, w: &ObjWrite, object_size: u64) -> Vec<OsdOp> {
    match w {
        ObjWrite::Data(bufs) => vec![OsdOp::write(off, pieces(bufs))],
        ObjWrite::Runs(runs) => runs
            .iter()
            .map(|(o, bufs)| OsdOp::write(*o, pieces(bufs)))
            .collect(),
        ObjWrite::Zero => {
            if off + len >= object_size {
                vec![OsdOp::truncate(off)]
            } else {
                vec![OsdOp::zero(off, len)]
            }
        }
    }
}

/// One WRITE's data: the pieces back to back (the pieces of a striped extent, or the
/// writes the I/O scheduler merged, up to hundreds), so the OSD applies one op instead
/// of one per piece. Shared, not joined: the messenger sends them as they are.
fn pieces(bufs: &[Bytes]) -> DataSegment {
    bufs.iter().cloned().collect()
}

/// One object write through the I/O scheduler when the handle has one: data writes
/// may be delayed and merged ([`crate::scheduler`]); discards and zeroing go out at
/// once as the object's registered write.
pub(crate) async fn object_write_via(
    sched: Option<Arc<Scheduler>>,
    st: Arc<State>,
    object_no: u64,
    off: u64,
    len: u64,
    w: ObjWrite,
) -> Result<()> {
    match (sched, w) {
        (None, w) => object_write(st, object_no, off, len, w).await,
        (Some(s), ObjWrite::Data(bufs)) => s.write(st, object_no, off, bufs).await,
        (Some(s), w) => {
            let reg = s.begin_direct(object_no, off, len).await;
            let r = object_write(st, object_no, off, len, w).await;
            reg.finish();
            r
        }
    }
}

/// Write (or zero) one object extent, with copy-up from the parent when needed.
pub(crate) async fn object_write(
    st: Arc<State>,
    object_no: u64,
    off: u64,
    len: u64,
    w: ObjWrite,
) -> Result<()> {
    let oid = st.object_name(object_no);
    let os = st.h.layout.object_size;
    // runs that span the object leave gaps between them
    let full = off == 0 && len == os && !matches!(w, ObjWrite::Runs(_));
    let io = &st.data_io;
    let in_overlap = st.object_in_overlap(object_no);
    // object map (librbd AbstractObjectWriteRequest::pre_write_object_map_update)
    let map = st.xlock.as_ref().filter(|x| x.has_map());
    if let Some(x) = map {
        let cur = x.object_state(object_no).unwrap_or(om::EXISTS);
        match &w {
            ObjWrite::Zero if !in_overlap && cur == om::NONEXISTENT => return Ok(()),
            ObjWrite::Zero if !in_overlap && full => {
                // discard of a whole object: PENDING, remove, NONEXISTENT
                return Box::pin(async {
                    x.update_object(object_no, om::PENDING, None).await?;
                    io.remove(&oid).await.gone_ok()?;
                    x.update_object(object_no, om::NONEXISTENT, Some(om::PENDING))
                        .await
                })
                .await;
            }
            // boxed: the rare map update's state stays out of every write's future
            // (each write-around write copies that future into a task of its own)
            _ if x.needs_update(object_no, om::EXISTS, None) => {
                Box::pin(x.update_object(object_no, om::EXISTS, None)).await?
            }
            _ => {}
        }
    }
    if in_overlap {
        // clone, parent data underneath
        if full && st.h.snapc.snaps.is_empty() {
            // nothing to preserve: overwrite without reading the parent
            let ops = match &w {
                ObjWrite::Data(_) | ObjWrite::Runs(_) => write_ops(off, len, &w, os),
                // an empty object hides the parent
                ObjWrite::Zero => vec![OsdOp::create(false), OsdOp::truncate(0)],
            };
            io.operate_write(&oid, ops).await?;
            return Ok(());
        }
        let body = write_ops(off, len, &w, os);
        let mut ops = vec![OsdOp::stat()];
        ops.extend(body.iter().cloned());
        match io.operate_write(&oid, ops).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Box::pin(copyup(&st, object_no, body)).await,
            Err(e) => Err(e.into()),
        }
    } else {
        match &w {
            ObjWrite::Data(_) | ObjWrite::Runs(_) => {
                io.operate_write(&oid, write_ops(off, len, &w, os)).await?;
            }
            // boxed (whole-object discards are rare; the state machine of every write
            // would otherwise be sized for this call)
            ObjWrite::Zero if full => Box::pin(io.remove(&oid)).await.gone_ok()?,
            ObjWrite::Zero => {
                // guard so a truncate does not create an empty object
                let mut ops = vec![OsdOp::stat()];
                ops.extend(write_ops(off, len, &w, os));
                io.operate_write(&oid, ops).await.gone_ok()?;
            }
        }
        Ok(())
    }
}

/// Copy the parent's object into the child, then apply `body` (librbd
/// `CopyupRequest::copyup`). Without snapshots (or with all-zero parent data) the
/// copy-up and the write go in one atomic op vector; with snapshots and data, the
/// copy-up is first sent alone with an empty snap context, so the clone's snapshots see
/// the parent data too ("deep" copy-up), then the write with the image snap context.
/// `copyup` is a no-op on an object that exists, so racing writers are safe.
pub(crate) async fn copyup(st: &Arc<State>, object_no: u64, body: Vec<OsdOp>) -> Result<()> {
    let oid = st.object_name(object_no);
    let data = parent_object_data(st, object_no).await?;
    let deep = !st.h.snapc.snaps.is_empty() && !data.is_empty();
    if deep {
        st.data_io_nosnapc
            .operate_write(&oid, vec![cls::copyup_op(&data)])
            .await?;
        // the snapshots see the copied-up data too
        crate::object_map_ops::sync_object_states(st, object_no, false).await?;
        if !body.is_empty() {
            st.data_io.operate_write(&oid, body).await?;
        }
        return Ok(());
    }
    let mut ops = Vec::with_capacity(body.len() + 1);
    ops.push(cls::copyup_op(&data));
    ops.extend(body);
    st.data_io.operate_write(&oid, ops).await?;
    Ok(())
}
