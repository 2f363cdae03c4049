//! Differences between snapshots from the OSDs' per-object snapshot lists (LIST_SNAPS),
//! and the `rbd diff v1` export-diff / import-diff stream.
//! ceph: src/librbd/api/DiffIterate.cc, src/librados/snap_set_diff.cc
//! (`calc_snap_set_diff`), src/tools/rbd/action/{ExportDiff,ImportDiff}.cc,
//! doc/dev/rbd-diff.rst.

use crate::error::{RbdError, Result};
use crate::image::{Image, State};
use crate::util::{run_all, BoxFut};
use ceph_rados::osd::ops::CloneInfo;
use ceph_rados::NOSNAP;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// One changed extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffExtent {
    /// Image offset.
    pub offset: u64,
    /// Length.
    pub length: u64,
    /// True if the extent holds data at the end snapshot; false if it was discarded
    /// (reads as zeros).
    pub exists: bool,
}

/// A set of disjoint half-open intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Intervals(pub(crate) BTreeMap<u64, u64>); // start -> end

impl Intervals {
    pub fn insert(&mut self, start: u64, len: u64) {
        if len == 0 {
            return;
        }
        let mut s = start;
        let mut e = start + len;
        let over: Vec<(u64, u64)> = self
            .0
            .range(..=e)
            .filter(|(&a, &b)| b >= s && a <= e)
            .map(|(&a, &b)| (a, b))
            .collect();
        for (a, b) in over {
            self.0.remove(&a);
            s = s.min(a);
            e = e.max(b);
        }
        self.0.insert(s, e);
    }

    pub fn erase(&mut self, start: u64, len: u64) {
        if len == 0 {
            return;
        }
        let e = start + len;
        let over: Vec<(u64, u64)> = self
            .0
            .range(..e)
            .filter(|(_, &b)| b > start)
            .map(|(&a, &b)| (a, b))
            .collect();
        for (a, b) in over {
            self.0.remove(&a);
            if a < start {
                self.0.insert(a, start);
            }
            if b > e {
                self.0.insert(e, b);
            }
        }
    }

    pub fn union(&mut self, o: &Intervals) {
        for (&a, &b) in &o.0 {
            self.insert(a, b - a);
        }
    }

    /// Pieces of [start, start+len) inside the set.
    pub fn intersect(&self, start: u64, len: u64) -> Vec<(u64, u64)> {
        let e = start + len;
        self.0
            .range(..e)
            .filter(|(_, &b)| b > start)
            .map(|(&a, &b)| (a.max(start), b.min(e)))
            .filter(|(a, b)| b > a)
            .map(|(a, b)| (a, b - a))
            .collect()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// The result of [`calc_snap_set_diff`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ObjectDiff {
    pub diff: Intervals,
    pub end_size: u64,
    pub end_exists: bool,
    pub whole_object: bool,
}

/// Which byte ranges of an object differ between snapshot `start` (0 = creation) and
/// `end` (a snap id or NOSNAP for the head), from its clone list — librados
/// `calc_snap_set_diff`, rewritten.
pub(crate) fn calc_snap_set_diff(
    clones: &[CloneInfo],
    seq: u64,
    start: u64,
    end: u64,
) -> ObjectDiff {
    let mut out = ObjectDiff::default();
    let mut saw_start = false;
    let mut start_size = 0u64;
    let mut i = 0;
    while i < clones.len() {
        let c = &clones[i];
        let (a, b) = if c.cloneid == NOSNAP {
            (seq + 1, NOSNAP)
        } else if c.snaps.is_empty() {
            out.diff.clear();
            out.whole_object = true;
            return out;
        } else {
            (c.snaps[0], c.snaps[c.snaps.len() - 1])
        };
        if b < start {
            i += 1;
            continue;
        }
        if !saw_start {
            if start < a {
                // the object did not exist at start
                out.diff.insert(0, c.size);
                start_size = 0;
            } else {
                start_size = c.size;
            }
            saw_start = true;
        }
        if end < a {
            break;
        }
        if end <= b {
            out.end_size = c.size;
            out.end_exists = true;
            return out;
        }
        // the largest possible diff to the next clone, minus what they share
        let prev_size = c.size;
        let overlap = &c.overlap;
        i += 1;
        if let Some(n) = clones.get(i) {
            let boundary = if n.size >= prev_size {
                n.size
            } else if prev_size <= start_size {
                prev_size
            } else {
                let bnd = n.size.max(start_size);
                out.diff.erase(bnd, prev_size - bnd);
                bnd
            };
            let mut to_next = Intervals::default();
            to_next.insert(0, boundary);
            for &(o, l) in overlap {
                to_next.erase(o, l);
            }
            out.diff.union(&to_next);
        }
    }
    // past the end, or ran out of clones: the object does not exist at end
    out.diff.clear();
    if start_size > 0 {
        out.diff.insert(0, start_size);
    }
    out
}

impl Image {
    /// Changed extents of `[off, off+len)` between snapshot `from` (`None` = the image's
    /// creation) and this handle's snapshot (or the head). With `include_parent`, a
    /// clone's diff from creation includes the parent's data inside the overlap (as
    /// `rbd export-diff` does). With `whole_object`, whole objects are reported.
    pub async fn diff_iterate(
        &self,
        from: Option<&str>,
        off: u64,
        len: u64,
        include_parent: bool,
        whole_object: bool,
    ) -> Result<Vec<DiffExtent>> {
        let st = self.state().await?;
        let from_id = match from {
            None => 0,
            Some(n) => {
                st.h.snap_by_name(n)
                    .ok_or_else(|| RbdError::not_found(format!("snapshot '{n}' does not exist")))?
                    .id
            }
        };
        let end_id = self.snap_id().unwrap_or(NOSNAP);
        if from_id != 0 && end_id != NOSNAP && from_id > end_id {
            return Err(RbdError::InvalidArgument(
                "from snapshot is newer than the end snapshot".into(),
            ));
        }
        // fast-diff: whole objects straight from the object maps, when they are valid
        // (a clone's diff from creation with the parent's data needs the objects)
        if whole_object && !(from_id == 0 && include_parent && st.parent.is_some()) {
            if let Some(changed) = crate::object_map_ops::fast_diff(
                &st,
                &self.inner.md_io,
                &self.inner.id,
                from_id,
                end_id,
            )
            .await?
            {
                return Ok(fast_diff_extents(&st, &changed, off, len));
            }
        }
        diff_state(st, from_id, end_id, off, len, include_parent, whole_object).await
    }
}

/// Whole-object diff extents of `[off, off+len)` from per-object change flags.
fn fast_diff_extents(st: &State, changed: &[Option<bool>], off: u64, len: u64) -> Vec<DiffExtent> {
    let len = len.min(st.size.saturating_sub(off));
    let mut all = Vec::new();
    for e in st.h.layout.file_to_extents(off, len) {
        if let Some(Some(exists)) = changed.get(e.object_no as usize) {
            for &(bo, bl) in &e.buffer_extents {
                all.push(DiffExtent {
                    offset: off + bo,
                    length: bl,
                    exists: *exists,
                });
            }
        }
    }
    all.sort_by_key(|e| e.offset);
    let mut merged: Vec<DiffExtent> = Vec::with_capacity(all.len());
    for e in all {
        match merged.last_mut() {
            Some(m) if m.exists == e.exists && m.offset + m.length == e.offset => {
                m.length += e.length
            }
            _ => merged.push(e),
        }
    }
    merged
}

fn diff_state(
    st: Arc<State>,
    from_id: u64,
    end_id: u64,
    off: u64,
    len: u64,
    include_parent: bool,
    whole_object: bool,
) -> BoxFut<Vec<DiffExtent>> {
    Box::pin(async move {
        let len = len.min(st.size.saturating_sub(off));
        if len == 0 {
            return Ok(Vec::new());
        }
        // parent data visible through the overlap (diffs from creation only)
        let mut parent_diff = Intervals::default();
        if from_id == 0 && include_parent {
            if let Some(p) = &st.parent {
                let ov = st.overlap.min(off + len);
                if ov > off {
                    let pst = p.image.state().await?;
                    let pend = p.image.snap_id().unwrap_or(NOSNAP);
                    for e in diff_state(pst, 0, pend, off, ov - off, true, false).await? {
                        if e.exists {
                            parent_diff.insert(e.offset, e.length);
                        }
                    }
                }
            }
        }
        let parent_diff = Arc::new(parent_diff);
        let extents = st.h.layout.file_to_extents(off, len);
        let futs: Vec<BoxFut<Vec<DiffExtent>>> = extents
            .into_iter()
            .map(|e| {
                let st = st.clone();
                let parent_diff = parent_diff.clone();
                Box::pin(async move {
                    let oid = st.object_name(e.object_no);
                    let mut out = Vec::new();
                    let od = match st.data_io.list_snaps(&oid).await {
                        Ok((clones, seq)) => {
                            Some(calc_snap_set_diff(&clones, seq, from_id, end_id))
                        }
                        Err(err) if err.is_not_found() => None,
                        Err(err) => return Err(err.into()),
                    };
                    let object_exists_at_end = od.as_ref().map(|d| d.end_exists).unwrap_or(false);
                    // map object-relative pieces to image offsets through the buffer extents
                    let mut opos = e.offset;
                    for &(bo, bl) in &e.buffer_extents {
                        let img_base = off + bo;
                        match &od {
                            Some(d) if d.whole_object || whole_object => {
                                // librbd's whole-object diff marks the object as soon
                                // as anything in it changed, also past the image's end
                                // (a shrink that truncated it after a snapshot)
                                let has = d.whole_object
                                    || (whole_object && !d.diff.0.is_empty())
                                    || !d.diff.intersect(e.offset, e.length).is_empty();
                                if has {
                                    out.push(DiffExtent {
                                        offset: img_base,
                                        length: bl,
                                        exists: d.end_exists,
                                    });
                                }
                            }
                            Some(d) => {
                                for (s, l) in d.diff.intersect(opos, bl) {
                                    let io = img_base + (s - opos);
                                    // bytes past the object's end size read as zeros
                                    let data_end = d.end_size.max(s).min(s + l);
                                    if d.end_exists && data_end > s {
                                        out.push(DiffExtent {
                                            offset: io,
                                            length: data_end - s,
                                            exists: true,
                                        });
                                    }
                                    if s + l > data_end || !d.end_exists {
                                        let zs = if d.end_exists { data_end } else { s };
                                        out.push(DiffExtent {
                                            offset: img_base + (zs - opos),
                                            length: s + l - zs,
                                            exists: false,
                                        });
                                    }
                                }
                            }
                            None => {}
                        }
                        if !object_exists_at_end && !parent_diff.0.is_empty() {
                            for (s, l) in parent_diff.intersect(img_base, bl) {
                                out.push(DiffExtent {
                                    offset: s,
                                    length: l,
                                    exists: true,
                                });
                            }
                        }
                        opos += bl;
                    }
                    Ok(out)
                }) as BoxFut<Vec<DiffExtent>>
            })
            .collect();
        let mut all: Vec<DiffExtent> = run_all(futs, 64).await?.into_iter().flatten().collect();
        all.sort_by_key(|e| e.offset);
        // merge neighbours of the same kind
        let mut merged: Vec<DiffExtent> = Vec::with_capacity(all.len());
        for e in all {
            match merged.last_mut() {
                Some(m) if m.exists == e.exists && m.offset + m.length == e.offset => {
                    m.length += e.length
                }
                _ => merged.push(e),
            }
        }
        Ok(merged)
    })
}

/// The `rbd diff v1` banner.
pub const DIFF_V1_BANNER: &[u8] = b"rbd diff v1\n";

const CHUNK: u64 = 4 << 20;

/// Which `rbd diff` stream format: v1 (`export-diff`), or v2, the per-snapshot diffs
/// inside an `export --export-format 2` stream: every record but the end carries its
/// length after the tag (so readers can skip tags they do not know), and the end
/// snapshot's protection status travels with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffFormat {
    /// `rbd diff v1`.
    V1,
    /// `rbd diff v2`.
    V2,
}

impl DiffFormat {
    fn banner(self) -> &'static [u8] {
        match self {
            DiffFormat::V1 => DIFF_V1_BANNER,
            DiffFormat::V2 => crate::export::DIFF_V2_BANNER,
        }
    }
}

impl Image {
    /// Write the changes between snapshot `from` (`None` = everything since creation)
    /// and this handle's snapshot (or the head) to `w` in the `rbd diff v1` format
    /// (`rbd export-diff`). Clones include their parent's data when `from` is `None`.
    pub async fn export_diff<W: AsyncWrite + Unpin>(
        &self,
        from: Option<&str>,
        w: &mut W,
    ) -> Result<()> {
        self.write_diff(from, DiffFormat::V1, w).await
    }

    /// [`Image::export_diff`] in either format.
    pub async fn write_diff<W: AsyncWrite + Unpin>(
        &self,
        from: Option<&str>,
        format: DiffFormat,
        w: &mut W,
    ) -> Result<()> {
        let st = self.state().await?;
        let io = |e: std::io::Error| RbdError::Stream(e.to_string());
        let v2 = format == DiffFormat::V2;
        w.write_all(format.banner()).await.map_err(io)?;
        let mut head = Vec::new();
        let tag = |t: u8, len: u64, head: &mut Vec<u8>| {
            head.push(t);
            if v2 {
                head.extend_from_slice(&len.to_le_bytes());
            }
        };
        let string = |t: u8, v: &str, head: &mut Vec<u8>| {
            tag(t, v.len() as u64 + 4, head);
            head.extend_from_slice(&(v.len() as u32).to_le_bytes());
            head.extend_from_slice(v.as_bytes());
        };
        if let Some(f) = from {
            string(b'f', f, &mut head);
        }
        if let Some(sid) = self.snap_id() {
            let snap = st.h.snap(sid);
            let name = snap.map(|s| s.name.clone()).unwrap_or_default();
            string(b't', &name, &mut head);
            if v2 {
                // librbd 16.2/18.2 write 8 as this record's length although its value
                // is one byte (and their reader takes one byte whatever it says)
                tag(b'p', 8, &mut head);
                head.push(snap.is_some_and(|s| s.is_protected()) as u8);
            }
        }
        tag(b's', 8, &mut head);
        head.extend_from_slice(&st.size.to_le_bytes());
        w.write_all(&head).await.map_err(io)?;
        let record = |t: u8, off: u64, len: u64| {
            let mut r = vec![t];
            if v2 {
                let l = if t == b'w' { 16 + len } else { 16 };
                r.extend_from_slice(&l.to_le_bytes());
            }
            r.extend_from_slice(&off.to_le_bytes());
            r.extend_from_slice(&len.to_le_bytes());
            r
        };
        // librbd reports changes per object set (its DiffIterate merges extents within
        // one period only) and turns data that reads as zeros into zero records; doing
        // the same makes our streams byte-identical to `rbd export-diff`'s
        let layout = self.layout().await?;
        let period = (layout.object_size * layout.stripe_count.max(1)).max(1);
        for e in self.diff_iterate(from, 0, st.size, true, false).await? {
            let end = e.offset + e.length;
            let mut off = e.offset;
            while off < end {
                let piece = (end - off).min(period - off % period);
                if !e.exists {
                    w.write_all(&record(b'z', off, piece)).await.map_err(io)?;
                    off += piece;
                    continue;
                }
                let mut chunks = Vec::new();
                let mut o = off;
                while o < off + piece {
                    let l = CHUNK.min(off + piece - o);
                    let d = self.read(o, l).await?;
                    if d.len() as u64 != l {
                        return Err(RbdError::Stream(format!("short read at {o}")));
                    }
                    chunks.push(d);
                    o += l;
                }
                if chunks.iter().all(|c| c.iter().all(|&b| b == 0)) {
                    w.write_all(&record(b'z', off, piece)).await.map_err(io)?;
                } else {
                    w.write_all(&record(b'w', off, piece)).await.map_err(io)?;
                    for c in &chunks {
                        w.write_all(c).await.map_err(io)?;
                    }
                }
                off += piece;
            }
        }
        w.write_u8(b'e').await.map_err(io)?;
        w.flush().await.map_err(io)?;
        Ok(())
    }

    /// Apply an `rbd diff v1` stream (`rbd import-diff`): the start snapshot must exist,
    /// the end snapshot must not; the image is resized to the recorded size, data and
    /// zero records are applied, and the end snapshot is created.
    pub async fn import_diff<R: AsyncRead + Unpin>(&self, r: &mut R) -> Result<()> {
        self.apply_diff(DiffFormat::V1, r).await
    }

    /// [`Image::import_diff`] in either format. In v2 the end snapshot is protected if
    /// the stream says it was, and records with tags this reader does not know are
    /// skipped by their length (as librbd's import does).
    pub async fn apply_diff<R: AsyncRead + Unpin>(
        &self,
        format: DiffFormat,
        r: &mut R,
    ) -> Result<()> {
        self.check_writable()?;
        let io = |e: std::io::Error| RbdError::Stream(e.to_string());
        let v2 = format == DiffFormat::V2;
        let want = format.banner();
        let mut banner = vec![0u8; want.len()];
        r.read_exact(&mut banner).await.map_err(io)?;
        if banner != want {
            return Err(RbdError::InvalidArgument(
                "invalid or unexpected diff banner".into(),
            ));
        }
        let mut to_snap: Option<String> = None;
        let mut protect = false;
        loop {
            let tag = r.read_u8().await.map_err(io)?;
            if tag == b'e' {
                break;
            }
            let rec_len = if v2 {
                Some(r.read_u64_le().await.map_err(io)?)
            } else {
                None
            };
            match tag {
                b'f' | b't' => {
                    let n = r.read_u32_le().await.map_err(io)? as usize;
                    if n > 4096 {
                        return Err(RbdError::Stream("snapshot name too long".into()));
                    }
                    let mut b = vec![0u8; n];
                    r.read_exact(&mut b).await.map_err(io)?;
                    let name = String::from_utf8_lossy(&b).into_owned();
                    let st = self.state().await?;
                    let exists = st.h.snap_by_name(&name).is_some();
                    if tag == b'f' && !exists {
                        return Err(RbdError::not_found(format!(
                            "start snapshot '{name}' does not exist in the image"
                        )));
                    }
                    if tag == b't' {
                        if exists {
                            return Err(RbdError::exists(format!(
                                "end snapshot '{name}' already exists"
                            )));
                        }
                        to_snap = Some(name);
                    }
                }
                // one byte, whatever the record length says (see write_diff)
                b'p' if v2 => protect = r.read_u8().await.map_err(io)? != 0,
                b's' => {
                    let size = r.read_u64_le().await.map_err(io)?;
                    if size != self.size().await? {
                        self.resize(size, true).await?;
                    }
                }
                b'w' => {
                    let off = r.read_u64_le().await.map_err(io)?;
                    let len = r.read_u64_le().await.map_err(io)?;
                    if rec_len.is_some_and(|l| l != len.saturating_add(16)) {
                        return Err(RbdError::Stream(format!(
                            "data record of {len} bytes has record length {rec_len:?}"
                        )));
                    }
                    let mut o = off;
                    while o < off + len {
                        let l = CHUNK.min(off + len - o) as usize;
                        let mut b = vec![0u8; l];
                        r.read_exact(&mut b).await.map_err(io)?;
                        self.write(o, bytes::Bytes::from(b)).await?;
                        o += l as u64;
                    }
                }
                b'z' => {
                    let off = r.read_u64_le().await.map_err(io)?;
                    let len = r.read_u64_le().await.map_err(io)?;
                    self.write_zeroes(off, len).await?;
                }
                other => match rec_len {
                    Some(mut left) => {
                        // librbd: "unrecognized tag byte ... in stream; skipping"
                        let mut sink = [0u8; 4096];
                        while left > 0 {
                            let n = left.min(sink.len() as u64) as usize;
                            r.read_exact(&mut sink[..n]).await.map_err(io)?;
                            left -= n as u64;
                        }
                    }
                    None => return Err(RbdError::Stream(format!("unknown record tag {other:#x}"))),
                },
            }
        }
        // under write-around the writes above are only sent: their failures surface
        // here, before the end snapshot marks the diff as applied
        self.flush().await?;
        if let Some(t) = to_snap {
            self.snap_create(&t).await?;
            if protect {
                self.snap_protect(&t).await?;
            }
        }
        Ok(())
    }
}

/// The header of an `rbd diff v1` stream (what comes before the first data record).
#[derive(Debug, Default)]
struct DiffHeader {
    from: Option<String>,
    to: Option<String>,
    size: Option<u64>,
}

/// A data or zero record of a diff stream; `left` bytes of a data record are still
/// unread in the stream.
#[derive(Debug, Clone, Copy)]
struct DiffRecord {
    off: u64,
    len: u64,
    data: bool,
}

fn stream_err(e: std::io::Error) -> RbdError {
    RbdError::Stream(e.to_string())
}

/// Read the header records; returns the header and the first data record (`None` at
/// the end record).
async fn read_diff_header<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<(DiffHeader, Option<DiffRecord>)> {
    let mut banner = [0u8; 12];
    r.read_exact(&mut banner).await.map_err(stream_err)?;
    if banner != DIFF_V1_BANNER {
        return Err(RbdError::InvalidArgument(
            "invalid or unexpected diff banner".into(),
        ));
    }
    let mut h = DiffHeader::default();
    loop {
        let tag = r.read_u8().await.map_err(stream_err)?;
        match tag {
            b'f' | b't' => {
                let n = r.read_u32_le().await.map_err(stream_err)? as usize;
                if n > 4096 {
                    return Err(RbdError::Stream("snapshot name too long".into()));
                }
                let mut b = vec![0u8; n];
                r.read_exact(&mut b).await.map_err(stream_err)?;
                let name = String::from_utf8_lossy(&b).into_owned();
                if tag == b'f' {
                    h.from = Some(name);
                } else {
                    h.to = Some(name);
                }
            }
            b's' => h.size = Some(r.read_u64_le().await.map_err(stream_err)?),
            _ => return Ok((h, read_diff_record(r, Some(tag)).await?)),
        }
    }
}

/// The next data/zero record (`None` at the end record).
async fn read_diff_record<R: AsyncRead + Unpin>(
    r: &mut R,
    tag: Option<u8>,
) -> Result<Option<DiffRecord>> {
    let tag = match tag {
        Some(t) => t,
        None => r.read_u8().await.map_err(stream_err)?,
    };
    match tag {
        b'w' | b'z' => {
            let off = r.read_u64_le().await.map_err(stream_err)?;
            let len = r.read_u64_le().await.map_err(stream_err)?;
            if off.checked_add(len).is_none() {
                return Err(RbdError::Stream("diff record past 2^64".into()));
            }
            Ok(Some(DiffRecord {
                off,
                len,
                data: tag == b'w',
            }))
        }
        b'e' => Ok(None),
        other => Err(RbdError::Stream(format!(
            "unknown or misplaced record tag {other:#x}"
        ))),
    }
}

/// Move `n` bytes from `r` to `w` (`w = None`: skip them).
async fn pass_bytes<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    r: &mut R,
    w: Option<&mut W>,
    mut n: u64,
) -> Result<()> {
    let mut buf = vec![0u8; CHUNK.min(n) as usize];
    let mut w = w;
    while n > 0 {
        let l = CHUNK.min(n) as usize;
        r.read_exact(&mut buf[..l]).await.map_err(stream_err)?;
        if let Some(w) = w.as_mut() {
            w.write_all(&buf[..l]).await.map_err(stream_err)?;
        }
        n -= l as u64;
    }
    Ok(())
}

/// Write a record header; its data (if any) follows from the caller.
async fn put_record<W: AsyncWrite + Unpin>(
    w: &mut W,
    off: u64,
    len: u64,
    data: bool,
) -> Result<()> {
    w.write_u8(if data { b'w' } else { b'z' })
        .await
        .map_err(stream_err)?;
    w.write_u64_le(off).await.map_err(stream_err)?;
    w.write_u64_le(len).await.map_err(stream_err)?;
    Ok(())
}

/// `rbd merge-diff`: merge two consecutive `rbd diff v1` streams (`first` from A to B,
/// `second` from B to C) into one from A to C, streaming (records of each input are in
/// ascending order, as export-diff writes them): where both have a record the second
/// wins, records of the first past the second's image size are dropped. The first
/// stream's end snapshot must be the second's start snapshot (EINVAL otherwise).
/// ceph: src/tools/rbd/action/MergeDiff.cc
pub async fn merge_diffs<R1, R2, W>(first: &mut R1, second: &mut R2, w: &mut W) -> Result<()>
where
    R1: AsyncRead + Unpin,
    R2: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (h1, mut c1) = read_diff_header(first).await?;
    let (h2, mut c2) = read_diff_header(second).await?;
    if h1.to != h2.from {
        return Err(RbdError::InvalidArgument(
            "The first TO snapshot must be equal with the second FROM snapshot, aborting".into(),
        ));
    }
    let size = h2.size.or(h1.size).unwrap_or(0);
    w.write_all(DIFF_V1_BANNER).await.map_err(stream_err)?;
    for (tag, name) in [(b'f', &h1.from), (b't', &h2.to)] {
        if let Some(n) = name {
            w.write_u8(tag).await.map_err(stream_err)?;
            w.write_u32_le(n.len() as u32).await.map_err(stream_err)?;
            w.write_all(n.as_bytes()).await.map_err(stream_err)?;
        }
    }
    w.write_u8(b's').await.map_err(stream_err)?;
    w.write_u64_le(size).await.map_err(stream_err)?;
    loop {
        match (c1, c2) {
            (None, None) => break,
            // the second stream's record starts first (or the first stream is done):
            // it overrides whatever the first has under it
            (a, Some(b)) if a.is_none_or(|a| b.off <= a.off) => {
                if let Some(mut a) = a {
                    // drop the part of `a` under `b`
                    let cut = (b.off + b.len).min(a.off + a.len).saturating_sub(a.off);
                    if cut > 0 {
                        if a.data {
                            pass_bytes::<_, W>(first, None, cut).await?;
                        }
                        a.off += cut;
                        a.len -= cut;
                    }
                    if a.len == 0 {
                        c1 = read_diff_record(first, None).await?;
                    } else {
                        c1 = Some(a);
                    }
                    if c1.is_some_and(|a| a.off < b.off + b.len) {
                        continue;
                    }
                }
                put_record(w, b.off, b.len, b.data).await?;
                if b.data {
                    pass_bytes(second, Some(&mut *w), b.len).await?;
                }
                c2 = read_diff_record(second, None).await?;
            }
            (Some(mut a), b) => {
                // `a` starts first: emit it up to where `b` begins, clipped to the size
                let stop = b.map(|b| b.off).unwrap_or(u64::MAX).min(a.off + a.len);
                let n = stop - a.off;
                let keep = size.saturating_sub(a.off).min(n);
                if keep > 0 {
                    put_record(w, a.off, keep, a.data).await?;
                    if a.data {
                        pass_bytes(first, Some(&mut *w), keep).await?;
                    }
                }
                if a.data && n > keep {
                    pass_bytes::<_, W>(first, None, n - keep).await?;
                }
                a.off += n;
                a.len -= n;
                c1 = if a.len == 0 {
                    read_diff_record(first, None).await?
                } else {
                    Some(a)
                };
            }
            (None, Some(_)) => unreachable!("handled above"),
        }
    }
    w.write_u8(b'e').await.map_err(stream_err)?;
    w.flush().await.map_err(stream_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(cloneid: u64, snaps: &[u64], overlap: &[(u64, u64)], size: u64) -> CloneInfo {
        CloneInfo {
            cloneid,
            snaps: snaps.to_vec(),
            overlap: overlap.to_vec(),
            size,
        }
    }

    fn diff_bytes(
        from: Option<&str>,
        to: Option<&str>,
        size: u64,
        recs: &[(u64, u64, Option<u8>)],
    ) -> Vec<u8> {
        let mut v = DIFF_V1_BANNER.to_vec();
        if let Some(f) = from {
            v.push(b'f');
            v.extend((f.len() as u32).to_le_bytes());
            v.extend(f.as_bytes());
        }
        if let Some(t) = to {
            v.push(b't');
            v.extend((t.len() as u32).to_le_bytes());
            v.extend(t.as_bytes());
        }
        v.push(b's');
        v.extend(size.to_le_bytes());
        for &(o, l, d) in recs {
            v.push(if d.is_some() { b'w' } else { b'z' });
            v.extend(o.to_le_bytes());
            v.extend(l.to_le_bytes());
            if let Some(b) = d {
                v.extend(std::iter::repeat_n(b, l as usize));
            }
        }
        v.push(b'e');
        v
    }

    /// Apply a diff to a byte image (zeros for 'z'), resizing to the recorded size.
    fn apply(img: &mut Vec<u8>, diff: &[u8]) {
        let mut p = 12;
        loop {
            let t = diff[p];
            p += 1;
            match t {
                b'f' | b't' => {
                    let n = u32::from_le_bytes(diff[p..p + 4].try_into().unwrap()) as usize;
                    p += 4 + n;
                }
                b's' => {
                    let s = u64::from_le_bytes(diff[p..p + 8].try_into().unwrap());
                    img.resize(s as usize, 0);
                    p += 8;
                }
                b'w' | b'z' => {
                    let o = u64::from_le_bytes(diff[p..p + 8].try_into().unwrap()) as usize;
                    let l = u64::from_le_bytes(diff[p + 8..p + 16].try_into().unwrap()) as usize;
                    p += 16;
                    if t == b'w' {
                        img[o..o + l].copy_from_slice(&diff[p..p + l]);
                        p += l;
                    } else {
                        img[o..o + l].fill(0);
                    }
                }
                _ => return,
            }
        }
    }

    #[tokio::test]
    async fn merge_two_diffs() {
        let d1 = diff_bytes(
            Some("a"),
            Some("b"),
            100,
            &[
                (0, 10, Some(1)),
                (20, 30, Some(2)),
                (60, 10, None),
                (90, 10, Some(3)),
            ],
        );
        let d2 = diff_bytes(
            Some("b"),
            Some("c"),
            95,
            &[(5, 20, Some(4)), (30, 5, None), (40, 25, Some(5))],
        );
        let mut out = Vec::new();
        merge_diffs(&mut &d1[..], &mut &d2[..], &mut out)
            .await
            .unwrap();
        let mut seq = vec![9u8; 100];
        apply(&mut seq, &d1);
        apply(&mut seq, &d2);
        let mut merged = vec![9u8; 100];
        apply(&mut merged, &out);
        assert_eq!(seq, merged);
        // from a, to c, size 95
        assert_eq!(
            &out[12..24],
            &[b'f', 1, 0, 0, 0, b'a', b't', 1, 0, 0, 0, b'c']
        );
        // snapshots that do not chain are refused
        let d3 = diff_bytes(Some("x"), Some("y"), 100, &[]);
        let e = merge_diffs(&mut &d1[..], &mut &d3[..], &mut Vec::new()).await;
        assert_eq!(e.unwrap_err().errno(), ceph_rados::Errno::EINVAL);
    }

    #[test]
    fn intervals() {
        let mut i = Intervals::default();
        i.insert(10, 10);
        i.insert(30, 10);
        i.insert(15, 20); // joins
        assert_eq!(i.intersect(0, 100), vec![(10, 30)]);
        i.erase(20, 5);
        assert_eq!(i.intersect(0, 100), vec![(10, 10), (25, 15)]);
        assert_eq!(i.intersect(12, 15), vec![(12, 8), (25, 2)]);
    }

    #[test]
    fn snap_set_diff_cases() {
        // head only, created after snap 5 (seq 5): from creation -> whole object
        let d = calc_snap_set_diff(&[c(NOSNAP, &[], &[], 100)], 5, 0, NOSNAP);
        assert!(d.end_exists);
        assert_eq!(d.diff.intersect(0, 1000), vec![(0, 100)]);
        // from snap 5 to head, object created after 5 -> all new
        let d = calc_snap_set_diff(&[c(NOSNAP, &[], &[], 100)], 5, 5, NOSNAP);
        assert_eq!(d.diff.intersect(0, 1000), vec![(0, 100)]);
        // clone for snap 3 (size 100), head rewritten in [40,60) and grown to 120
        let clones = [
            c(3, &[3], &[(0, 40), (60, 40)], 100),
            c(NOSNAP, &[], &[], 120),
        ];
        let d = calc_snap_set_diff(&clones, 3, 3, NOSNAP);
        assert!(d.end_exists && d.end_size == 120);
        assert_eq!(d.diff.intersect(0, 1000), vec![(40, 20), (100, 20)]);
        // between creation and snap 3: everything in the clone
        let d = calc_snap_set_diff(&clones, 3, 0, 3);
        assert_eq!(d.end_size, 100);
        assert_eq!(d.diff.intersect(0, 1000), vec![(0, 100)]);
        // object deleted after snap 3 (no head): from 3 to head -> gone, start size zeros
        let d = calc_snap_set_diff(&[c(3, &[3], &[], 100)], 3, 3, NOSNAP);
        assert!(!d.end_exists);
        assert_eq!(d.diff.intersect(0, 1000), vec![(0, 100)]);
    }
}
