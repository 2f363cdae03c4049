//! msgr2.1 frames: preamble, crc mode and secure (AES-128-GCM) mode, both directions.
//!
//! ceph: doc/dev/msgr2.rst, src/msg/async/frames_v2.{h,cc}; kernel: net/ceph/messenger_v2.c.
//! Only revision 1 of the frame format is spoken; Pacific always offers it.

// Segment lengths, crcs and payloads are parallel arrays indexed by segment number;
// index loops say that more plainly than zipped iterators.
#![allow(clippy::needless_range_loop)]

use crate::error::Error;
use crate::gcm::GcmKey;
use crate::message::DataSegment;
use bytes::{Bytes, BytesMut};
use ceph_encoding::ceph_crc32c;
use std::fmt;
use zeroize::Zeroize;

/// Size of the frame preamble.
pub const PREAMBLE_LEN: usize = 32;
/// Bytes of segment 0 carried inside the first secure-mode chunk.
const INLINE_LEN: usize = 48;
const GCM_TAG_LEN: usize = crate::gcm::TAG_LEN;
const GCM_BLOCK: usize = 16;
/// First secure-mode chunk on the wire: preamble + inline area + tag.
const SECURE_HEAD_LEN: usize = PREAMBLE_LEN + INLINE_LEN + GCM_TAG_LEN;
const EPILOGUE_CRC_LEN: usize = 13;
const EPILOGUE_SECURE_LEN: usize = 16;
const LATE_STATUS_COMPLETE: u8 = 0x0e;
const LATE_STATUS_MASK: u8 = 0x0f;
/// Most we reserve ahead of bytes that have not arrived yet. Large enough that a 4 MiB
/// object read is received into one allocation (growing in small steps would copy the
/// partial frame again at every step), small enough that a lying preamble costs little.
const RESERVE_STEP: usize = 16 << 20;
/// Frames at least this large are received into recycled allocations (see
/// [`FrameReader`]'s `recycle`): below it the allocator's own free lists do as well.
const RECYCLE_MIN: usize = 1 << 20;
/// Most allocations a reader keeps for recycling. Replies are usually dropped by the caller
/// soon after they arrive; a few slots cover the replies still being consumed while the
/// next one's preamble arrives, and bound what an idle connection retains (see
/// [`FrameReader::release_idle`]).
const RECYCLE_SLOTS: usize = 4;
/// Maximum number of segments in a frame.
pub const MAX_SEGMENTS: usize = 4;

/// Frame tags (`Tag` in frames_v2.h). Open newtype: unknown tags are a protocol error, but
/// they still print legibly.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag(pub u8);

impl Tag {
    #![allow(missing_docs)]
    pub const HELLO: Tag = Tag(1);
    pub const AUTH_REQUEST: Tag = Tag(2);
    pub const AUTH_BAD_METHOD: Tag = Tag(3);
    pub const AUTH_REPLY_MORE: Tag = Tag(4);
    pub const AUTH_REQUEST_MORE: Tag = Tag(5);
    pub const AUTH_DONE: Tag = Tag(6);
    pub const AUTH_SIGNATURE: Tag = Tag(7);
    pub const CLIENT_IDENT: Tag = Tag(8);
    pub const SERVER_IDENT: Tag = Tag(9);
    pub const IDENT_MISSING_FEATURES: Tag = Tag(10);
    pub const SESSION_RECONNECT: Tag = Tag(11);
    pub const SESSION_RESET: Tag = Tag(12);
    pub const SESSION_RETRY: Tag = Tag(13);
    pub const SESSION_RETRY_GLOBAL: Tag = Tag(14);
    pub const SESSION_RECONNECT_OK: Tag = Tag(15);
    pub const WAIT: Tag = Tag(16);
    pub const MESSAGE: Tag = Tag(17);
    pub const KEEPALIVE2: Tag = Tag(18);
    pub const KEEPALIVE2_ACK: Tag = Tag(19);
    pub const ACK: Tag = Tag(20);

    fn name(self) -> &'static str {
        const NAMES: [&str; 21] = [
            "?",
            "HELLO",
            "AUTH_REQUEST",
            "AUTH_BAD_METHOD",
            "AUTH_REPLY_MORE",
            "AUTH_REQUEST_MORE",
            "AUTH_DONE",
            "AUTH_SIGNATURE",
            "CLIENT_IDENT",
            "SERVER_IDENT",
            "IDENT_MISSING_FEATURES",
            "SESSION_RECONNECT",
            "SESSION_RESET",
            "SESSION_RETRY",
            "SESSION_RETRY_GLOBAL",
            "SESSION_RECONNECT_OK",
            "WAIT",
            "MESSAGE",
            "KEEPALIVE2",
            "KEEPALIVE2_ACK",
            "ACK",
        ];
        NAMES.get(self.0 as usize).copied().unwrap_or("?")
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

/// Limits on what a peer may make us buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    /// Largest accepted segment 0 (control payload or message header).
    pub max_control: usize,
    /// Largest accepted front/middle segment.
    pub max_front: usize,
    /// Largest accepted data segment.
    pub max_data: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        // Ceph: CEPH_MSG_MAX_FRONT_LEN 16 MiB; data: kernel CEPH_MSG_MAX_DATA_LEN 64 MiB,
        // userspace osd_max_write_size 90 MB. We accept up to 128 MiB of data.
        FrameLimits {
            max_control: 16 << 20,
            max_front: 16 << 20,
            max_data: 128 << 20,
        }
    }
}

/// A decoded frame: its tag and up to four segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame tag.
    pub tag: Tag,
    /// The segments (1 to 4).
    pub segments: Vec<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Preamble {
    tag: Tag,
    nsegs: usize,
    lens: [u32; MAX_SEGMENTS],
    aligns: [u16; MAX_SEGMENTS],
}

impl Preamble {
    fn encode(&self) -> [u8; PREAMBLE_LEN] {
        let mut p = [0u8; PREAMBLE_LEN];
        p[0] = self.tag.0;
        p[1] = self.nsegs as u8;
        for i in 0..MAX_SEGMENTS {
            let o = 2 + i * 6;
            p[o..o + 4].copy_from_slice(&self.lens[i].to_le_bytes());
            p[o + 4..o + 6].copy_from_slice(&self.aligns[i].to_le_bytes());
        }
        let crc = ceph_crc32c(0, &p[..28]);
        p[28..32].copy_from_slice(&crc.to_le_bytes());
        p
    }

    fn decode(p: &[u8], limits: &FrameLimits) -> Result<Self, Error> {
        let crc = u32::from_le_bytes([p[28], p[29], p[30], p[31]]);
        let want = ceph_crc32c(0, &p[..28]);
        if crc != want {
            return Err(Error::BadCrc { what: "preamble" });
        }
        let tag = Tag(p[0]);
        let nsegs = p[1] as usize;
        if !(1..=MAX_SEGMENTS).contains(&nsegs) {
            return Err(Error::protocol(format!(
                "frame {tag:?} with {nsegs} segments"
            )));
        }
        let mut lens = [0u32; MAX_SEGMENTS];
        let mut aligns = [0u16; MAX_SEGMENTS];
        for i in 0..MAX_SEGMENTS {
            let o = 2 + i * 6;
            lens[i] = u32::from_le_bytes([p[o], p[o + 1], p[o + 2], p[o + 3]]);
            aligns[i] = u16::from_le_bytes([p[o + 4], p[o + 5]]);
        }
        if nsegs > 1 && lens[nsegs - 1] == 0 {
            return Err(Error::protocol(format!(
                "frame {tag:?}: last segment is empty"
            )));
        }
        let caps = [
            limits.max_control,
            limits.max_front,
            limits.max_front,
            limits.max_data,
        ];
        for i in 0..nsegs {
            if lens[i] as usize > caps[i] {
                return Err(Error::FrameTooLarge {
                    segment: i,
                    len: lens[i] as usize,
                    max: caps[i],
                });
            }
        }
        Ok(Preamble {
            tag,
            nsegs,
            lens,
            aligns,
        })
    }

    fn len(&self, i: usize) -> usize {
        self.lens[i] as usize
    }
}

/// Alignment hints for control frames and message frames (header, front, middle, data).
const CONTROL_ALIGN: u16 = 8;
const MESSAGE_ALIGNS: [u16; 4] = [8, 8, 8, 4096];

fn padded(n: usize) -> usize {
    n.div_ceil(GCM_BLOCK) * GCM_BLOCK
}

/// One direction of AES-128-GCM with the msgr2 nonce rule: a fixed 4-byte part and a
/// 64-bit little-endian counter, incremented after every GCM operation (rev1).
struct GcmStream {
    key: GcmKey,
    nonce: [u8; 12],
}

impl GcmStream {
    fn new(key: &[u8], nonce: &[u8]) -> Result<Self, Error> {
        let mut n = [0u8; 12];
        n.copy_from_slice(nonce);
        Ok(GcmStream {
            key: GcmKey::new(key)?,
            nonce: n,
        })
    }

    fn bump(&mut self) {
        let mut ctr = [0u8; 8];
        ctr.copy_from_slice(&self.nonce[4..12]);
        let c = u64::from_le_bytes(ctr).wrapping_add(1);
        self.nonce[4..12].copy_from_slice(&c.to_le_bytes());
    }

    /// Encrypt `buf[start..]` in place and append the tag.
    fn seal(&mut self, buf: &mut BytesMut, start: usize) {
        let tag = self.key.seal(self.nonce, &mut buf[start..]);
        buf.extend_from_slice(&tag);
        self.bump();
    }

    /// Decrypt `ct ‖ tag` in place; returns the plaintext length.
    fn open(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let n = self.key.open(self.nonce, buf)?;
        self.bump();
        Ok(n)
    }
}

impl Drop for GcmStream {
    fn drop(&mut self) {
        self.nonce.zeroize();
    }
}

/// The keys of a secure-mode session, derived from the cephx connection secret.
pub struct SecureKeys {
    rx: GcmStream,
    tx: GcmStream,
}

impl SecureKeys {
    /// Split a connection secret as a client does: key, then the client's rx nonce, then its
    /// tx nonce (`crypto_onwire.cc` `create_handler_pair`, kernel `setup_crypto`).
    pub fn from_connection_secret(secret: &[u8]) -> Result<Self, Error> {
        if secret.len() < 40 {
            return Err(Error::protocol(format!(
                "connection secret of {} bytes is too short for secure mode",
                secret.len()
            )));
        }
        Ok(SecureKeys {
            rx: GcmStream::new(&secret[0..16], &secret[16..28])?,
            tx: GcmStream::new(&secret[0..16], &secret[28..40])?,
        })
    }

    /// The same split, from the server's point of view (rx and tx crossed); used by tests
    /// that play the server side.
    pub fn server_side(secret: &[u8]) -> Result<Self, Error> {
        let k = Self::from_connection_secret(secret)?;
        Ok(SecureKeys { rx: k.tx, tx: k.rx })
    }
}

impl fmt::Debug for SecureKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecureKeys(..)")
    }
}

/// Frame framing mode in force.
#[derive(Debug)]
pub enum Mode {
    /// crc32c-protected plaintext frames (also used before auth completes).
    Crc,
    /// AES-128-GCM encrypted frames.
    Secure(Box<SecureKeys>),
}

/// Large frame allocations kept for reuse, each with a flag saying whether it was used
/// since the last [`Recycler::release_idle`]. A reference is kept beside the ones handed
/// out (a received frame's slices, a sent frame queued for the socket); once those are
/// dropped it is the only reference left and the next large frame is built in it: its
/// pages are already mapped, where a fresh 4 MiB allocation is served with new pages (a
/// page fault per page, zeroed by the kernel, then unmapped again on free: about a fifth
/// of a 4 MiB read's client CPU, and two fifths of a secure 4 MiB write's, before this).
#[derive(Debug, Default)]
struct Recycler {
    slots: Vec<(Bytes, bool)>,
}

impl Recycler {
    /// An emptied allocation with room for `cap` bytes, if one is no longer referenced
    /// outside this recycler: the one filled most recently.
    ///
    /// Most recent first because its lines are the likeliest to be still in the CPU's
    /// shared cache: the kernel's copy of the next reply into it then writes to cached
    /// memory. Taking the oldest free one instead cost 7% more client CPU on 4 MiB reads
    /// (the copy out of the socket, half of it, 12% more; docs/performance.md).
    fn take(&mut self, cap: usize) -> Option<BytesMut> {
        if !(RECYCLE_MIN..=RESERVE_STEP).contains(&cap) {
            return None;
        }
        let i = self.slots.iter().rposition(|(b, _)| b.is_unique())?;
        // `remove`, not `swap_remove`: the slots stay in the order they were filled
        let (b, _) = self.slots.remove(i);
        let mut m = b.try_into_mut().ok()?;
        m.clear();
        // No copy: the buffer is empty. A smaller allocation than `cap` is replaced.
        m.reserve(cap);
        Some(m)
    }

    /// Keep a reference to a large frame's allocation for [`Recycler::take`].
    fn keep(&mut self, frame: &Bytes) {
        if frame.len() < RECYCLE_MIN {
            return;
        }
        if self.slots.len() == RECYCLE_SLOTS {
            // The oldest is the likeliest to be free already, but a free one is worth
            // more: drop one still in use first.
            let i = self
                .slots
                .iter()
                .position(|(b, _)| !b.is_unique())
                .unwrap_or(0);
            self.slots.remove(i);
        }
        self.slots.push((frame.clone(), true));
    }

    /// Drop the allocations not used since the previous call: a driver calls this every
    /// second or so, so a connection that stopped moving large frames does not keep up to
    /// `RECYCLE_SLOTS` of them (16 MiB per direction with 4 MiB objects).
    fn release_idle(&mut self) {
        self.slots.retain(|(_, used)| *used);
        for (_, used) in &mut self.slots {
            *used = false;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.len()
    }
}

/// Writes frames in the current mode.
#[derive(Debug)]
pub struct FrameWriter {
    mode: Mode,
    /// Secure mode encrypts into a buffer of its own; large ones are reused once the
    /// socket is done with them (crc mode queues the caller's data as is).
    recycle: Recycler,
}

impl Default for FrameWriter {
    fn default() -> Self {
        FrameWriter {
            mode: Mode::Crc,
            recycle: Recycler::default(),
        }
    }
}

impl FrameWriter {
    /// Switch to secure mode with the given tx stream (after AUTH_DONE).
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// Whether frames are encrypted.
    pub fn is_secure(&self) -> bool {
        matches!(self.mode, Mode::Secure(_))
    }

    /// Drop the send buffers kept for reuse that were not used since the previous call;
    /// a driver calls this every second or so, like [`FrameReader::release_idle`].
    pub fn release_idle(&mut self) {
        self.recycle.release_idle();
    }

    /// Encode a control frame (one segment) into `out`.
    pub fn control(&mut self, tag: Tag, payload: &[u8], out: &mut Vec<Bytes>) {
        const NO_DATA: DataSegment = DataSegment::new();
        self.write(
            tag,
            [payload, &[], &[]],
            &NO_DATA,
            &[CONTROL_ALIGN, 0, 0, 0],
            out,
        );
    }

    /// Encode a MESSAGE frame: header2, front, middle, data. In crc mode the data
    /// segment's pieces are queued as they are (no copy of bulk payloads).
    pub fn message(
        &mut self,
        header: &[u8],
        front: &Bytes,
        middle: &Bytes,
        data: &DataSegment,
        out: &mut Vec<Bytes>,
    ) {
        match &mut self.mode {
            Mode::Crc => {
                let segs = [header, &front[..], &middle[..]];
                let nsegs = num_segments(&segs, data);
                let pre = preamble_for(Tag::MESSAGE, &segs, data, nsegs, &MESSAGE_ALIGNS);
                // Without a data segment the epilogue goes in the same buffer (one
                // allocation and one iovec less per small request). Sized exactly, so the
                // vector becomes `Bytes` without a shared header of its own.
                let tail = if nsegs > 1 && data.is_empty() {
                    EPILOGUE_CRC_LEN
                } else {
                    0
                };
                let mut head = Vec::with_capacity(
                    PREAMBLE_LEN + header.len() + 4 + front.len() + middle.len() + tail,
                );
                head.extend_from_slice(&pre.encode());
                head.extend_from_slice(header);
                head.extend_from_slice(&ceph_crc32c(u32::MAX, header).to_le_bytes());
                if nsegs == 1 {
                    out.push(head.into());
                    return;
                }
                head.extend_from_slice(front);
                head.extend_from_slice(middle);
                if data.is_empty() {
                    head.extend_from_slice(&crc_epilogue(&segs, data, nsegs));
                    out.push(head.into());
                    return;
                }
                out.push(head.into());
                out.extend(data.pieces().cloned());
                out.push(crc_epilogue(&segs, data, nsegs).to_vec().into());
            }
            Mode::Secure(_) => {
                self.write(
                    Tag::MESSAGE,
                    [header, front, middle],
                    data,
                    &MESSAGE_ALIGNS,
                    out,
                );
            }
        }
    }

    /// Encode a frame of segments `segs` then `data` (the fourth segment).
    fn write(
        &mut self,
        tag: Tag,
        segs: [&[u8]; 3],
        data: &DataSegment,
        aligns: &[u16; 4],
        out: &mut Vec<Bytes>,
    ) {
        let nsegs = num_segments(&segs, data);
        let pre = preamble_for(tag, &segs, data, nsegs, aligns);
        match &mut self.mode {
            Mode::Crc => {
                let total: usize = segs.iter().map(|s| s.len()).sum::<usize>() + data.len();
                let mut buf = Vec::with_capacity(PREAMBLE_LEN + total + 4 + EPILOGUE_CRC_LEN);
                buf.extend_from_slice(&pre.encode());
                if !segs[0].is_empty() {
                    buf.extend_from_slice(segs[0]);
                    buf.extend_from_slice(&ceph_crc32c(u32::MAX, segs[0]).to_le_bytes());
                }
                if nsegs > 1 {
                    for s in &segs[1..] {
                        buf.extend_from_slice(s);
                    }
                    for p in data.pieces() {
                        buf.extend_from_slice(p);
                    }
                    buf.extend_from_slice(&crc_epilogue(&segs, data, nsegs));
                }
                out.push(buf.into());
            }
            Mode::Secure(keys) => {
                let tx = &mut keys.tx;
                let len0 = segs[0].len();
                let b_len = if len0 > INLINE_LEN {
                    padded(len0 - INLINE_LEN) + GCM_TAG_LEN
                } else {
                    0
                };
                let c_len = if nsegs > 1 {
                    (1..nsegs)
                        .map(|i| padded(seg_len(&segs, data, i)))
                        .sum::<usize>()
                        + EPILOGUE_SECURE_LEN
                        + GCM_TAG_LEN
                } else {
                    0
                };
                // One allocation at the frame's exact wire size (a recycled one for large
                // frames): a 4 MiB write is copied once (it must be: the caller's bytes
                // are shared and we encrypt in place) and never regrown.
                let wire = SECURE_HEAD_LEN + b_len + c_len;
                let mut buf = self
                    .recycle
                    .take(wire)
                    .unwrap_or_else(|| BytesMut::with_capacity(wire));
                // Chunk A: preamble + inline part of segment 0.
                buf.extend_from_slice(&pre.encode());
                let inline = len0.min(INLINE_LEN);
                buf.extend_from_slice(&segs[0][..inline]);
                buf.resize(PREAMBLE_LEN + INLINE_LEN, 0);
                tx.seal(&mut buf, 0);
                // Chunk B: the rest of segment 0.
                if len0 > INLINE_LEN {
                    let start = buf.len();
                    buf.extend_from_slice(&segs[0][INLINE_LEN..]);
                    buf.resize(start + padded(len0 - INLINE_LEN), 0);
                    tx.seal(&mut buf, start);
                }
                // Chunk C: segments 1.. each padded, then the epilogue.
                if nsegs > 1 {
                    let start = buf.len();
                    for i in 1..nsegs {
                        let at = buf.len();
                        if i < 3 {
                            buf.extend_from_slice(segs[i]);
                        } else {
                            for p in data.pieces() {
                                buf.extend_from_slice(p);
                            }
                        }
                        buf.resize(at + padded(seg_len(&segs, data, i)), 0);
                    }
                    let mut epi = [0u8; EPILOGUE_SECURE_LEN];
                    epi[0] = LATE_STATUS_COMPLETE;
                    buf.extend_from_slice(&epi);
                    tx.seal(&mut buf, start);
                }
                debug_assert_eq!(buf.len(), wire);
                let buf = buf.freeze();
                self.recycle.keep(&buf);
                out.push(buf);
            }
        }
    }
}

/// Length of segment `i` of a frame: one of `segs`, or `data` for the fourth.
fn seg_len(segs: &[&[u8]; 3], data: &DataSegment, i: usize) -> usize {
    match i {
        0..=2 => segs[i].len(),
        _ => data.len(),
    }
}

fn num_segments(segs: &[&[u8]; 3], data: &DataSegment) -> usize {
    let mut n = MAX_SEGMENTS;
    while n > 1 && seg_len(segs, data, n - 1) == 0 {
        n -= 1;
    }
    n
}

fn preamble_for(
    tag: Tag,
    segs: &[&[u8]; 3],
    data: &DataSegment,
    nsegs: usize,
    aligns: &[u16; 4],
) -> Preamble {
    let mut lens = [0u32; 4];
    let mut al = [0u16; 4];
    for i in 0..nsegs {
        lens[i] = seg_len(segs, data, i) as u32;
        al[i] = aligns[i];
    }
    Preamble {
        tag,
        nsegs,
        lens,
        aligns: al,
    }
}

/// The crc-mode epilogue: late status and the CRC of segments 1.. (the data segment's
/// chained across its pieces, as if they were one buffer).
fn crc_epilogue(segs: &[&[u8]; 3], data: &DataSegment, nsegs: usize) -> [u8; EPILOGUE_CRC_LEN] {
    let mut e = [0u8; EPILOGUE_CRC_LEN];
    e[0] = LATE_STATUS_COMPLETE;
    for i in 1..nsegs {
        let crc = if i < 3 {
            ceph_crc32c(u32::MAX, segs[i])
        } else {
            data.pieces().fold(u32::MAX, |c, p| ceph_crc32c(c, p))
        };
        let o = 1 + (i - 1) * 4;
        e[o..o + 4].copy_from_slice(&crc.to_le_bytes());
    }
    e
}

/// Reads frames from a byte stream in the current mode.
///
/// Sans-IO: feed bytes with [`FrameReader::feed`], pull frames with [`FrameReader::next`],
/// which returns `Ok(None)` while more bytes are needed. The reader never buffers more
/// than one frame beyond what its limits allow.
#[derive(Debug)]
pub struct FrameReader {
    buf: BytesMut,
    mode: Mode,
    limits: FrameLimits,
    /// Secure mode: preamble already decrypted and consumed, waiting for the rest.
    pending: Option<(Preamble, Bytes)>,
    /// Buffered bytes the frame being received needs in all, once its preamble is known
    /// (0 otherwise): lets the driver read the rest of a large frame straight into the
    /// room reserved for it instead of growing the buffer again mid-frame.
    frame_end: usize,
    /// Allocations of large frames already handed up, reused once the caller has dropped
    /// every slice of one.
    recycle: Recycler,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new(FrameLimits::default())
    }
}

impl FrameReader {
    /// A reader in crc mode.
    pub fn new(limits: FrameLimits) -> Self {
        FrameReader {
            buf: BytesMut::new(),
            mode: Mode::Crc,
            limits,
            pending: None,
            frame_end: 0,
            recycle: Recycler::default(),
        }
    }

    /// Switch mode (after AUTH_DONE).
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// Append received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The receive buffer, for a driver that reads from its socket straight into it
    /// (saving a copy); call [`FrameReader::next`] afterwards.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// How many more bytes the frame being received needs, once its preamble has been
    /// read (0 when unknown: between frames, or before [`FrameReader::next`] saw the
    /// preamble). The room for them is already reserved (up to the reserve step), so the
    /// driver should not grow the buffer while this is non-zero.
    pub fn wanted(&self) -> usize {
        self.frame_end.saturating_sub(self.buf.len())
    }

    /// Make room for the next socket read: the rest of the current frame when its size is
    /// known (reserved once, at its final size, by [`FrameReader::next`]), otherwise a small
    /// buffer of `small` bytes for control frames and preambles. Never grows a buffer in the
    /// middle of a frame whose room is already there, which would copy the partial frame.
    pub fn prepare_read(&mut self, small: usize) {
        let spare = self.buf.capacity() - self.buf.len();
        let want = self.wanted();
        if want > 0 {
            if spare == 0 {
                // Only after a lying or huge preamble exceeded the reserve step.
                self.buf.reserve(want.min(RESERVE_STEP));
            }
        } else if spare < small / 4 {
            self.buf.reserve(small);
        }
    }

    /// Make the buffer hold `frame_len` bytes in all for the frame being received (all of
    /// the buffer belongs to it): a recycled allocation when one is free, with the few bytes
    /// already received copied over, else one new allocation at the final size.
    fn reserve_frame(&mut self, frame_len: usize) {
        self.frame_end = frame_len;
        if let Some(mut b) = self.recycle.take(frame_len) {
            b.extend_from_slice(&self.buf);
            self.buf = b;
            return;
        }
        self.buf
            .reserve((frame_len - self.buf.len()).min(RESERVE_STEP));
    }

    /// Drop the recycled allocations not used since the previous call; a driver calls
    /// this every second or so (`Recycler::release_idle` says why).
    pub fn release_idle(&mut self) {
        self.recycle.release_idle();
    }

    /// Bytes buffered but not yet part of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Look at the first `n` buffered bytes without consuming them.
    pub fn peek(&self, n: usize) -> Option<&[u8]> {
        self.buf.get(..n)
    }

    /// Take `n` raw bytes (used for the banner, which precedes framing).
    pub fn take_raw(&mut self, n: usize) -> Option<Bytes> {
        if self.buf.len() < n {
            return None;
        }
        Some(self.buf.split_to(n).freeze())
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    /// The returned raw length is the number of wire bytes the frame occupied.
    #[allow(clippy::should_implement_trait)] // fallible and bytes-driven: not an Iterator
    pub fn next(&mut self) -> Result<Option<(Frame, Bytes)>, Error> {
        match &mut self.mode {
            Mode::Crc => self.next_crc(),
            Mode::Secure(_) => self.next_secure(),
        }
    }

    fn next_crc(&mut self) -> Result<Option<(Frame, Bytes)>, Error> {
        if self.buf.len() < PREAMBLE_LEN {
            return Ok(None);
        }
        let pre = Preamble::decode(&self.buf[..PREAMBLE_LEN], &self.limits)?;
        let len0 = pre.len(0);
        let mut total = PREAMBLE_LEN + len0 + if len0 > 0 { 4 } else { 0 };
        if pre.nsegs > 1 {
            total += (1..pre.nsegs).map(|i| pre.len(i)).sum::<usize>() + EPILOGUE_CRC_LEN;
        }
        if self.buf.len() < total {
            // One allocation at the frame's final size (bounded by the reserve step, so a
            // lying preamble costs little): the socket reads land in it directly and the
            // data segment is handed out as a slice of it, never copied.
            if self.frame_end != total {
                self.reserve_frame(total);
            }
            return Ok(None);
        }
        self.frame_end = 0;
        let raw = self.buf.split_to(total).freeze();
        self.recycle.keep(&raw);
        let mut off = PREAMBLE_LEN;
        let mut segments = Vec::with_capacity(pre.nsegs);
        let seg0 = raw.slice(off..off + len0);
        off += len0;
        if len0 > 0 {
            let crc = u32::from_le_bytes(raw[off..off + 4].try_into().expect("4 bytes"));
            off += 4;
            if crc != ceph_crc32c(u32::MAX, &seg0) {
                return Err(Error::BadCrc { what: "segment 0" });
            }
        }
        segments.push(seg0);
        if pre.nsegs > 1 {
            for i in 1..pre.nsegs {
                segments.push(raw.slice(off..off + pre.len(i)));
                off += pre.len(i);
            }
            let epi = &raw[off..off + EPILOGUE_CRC_LEN];
            check_late_status(epi[0])?;
            for i in 1..pre.nsegs {
                let o = 1 + (i - 1) * 4;
                let crc = u32::from_le_bytes(epi[o..o + 4].try_into().expect("4 bytes"));
                if crc != ceph_crc32c(u32::MAX, &segments[i]) {
                    return Err(Error::BadCrc { what: "segment" });
                }
            }
        }
        Ok(Some((
            Frame {
                tag: pre.tag,
                segments,
            },
            raw,
        )))
    }

    fn next_secure(&mut self) -> Result<Option<(Frame, Bytes)>, Error> {
        if self.pending.is_none() {
            if self.buf.len() < SECURE_HEAD_LEN {
                return Ok(None);
            }
            let Mode::Secure(keys) = &mut self.mode else {
                unreachable!("checked by caller")
            };
            let mut head = self.buf.split_to(SECURE_HEAD_LEN);
            let n = keys.rx.open(&mut head)?;
            head.truncate(n);
            let pre = Preamble::decode(&head[..PREAMBLE_LEN], &self.limits)?;
            let inline = head.split_off(PREAMBLE_LEN).freeze();
            self.pending = Some((pre, inline));
        }
        let (pre, inline) = self.pending.as_ref().expect("set above");
        let pre = *pre;
        let len0 = pre.len(0);
        let b_len = if len0 > INLINE_LEN {
            padded(len0 - INLINE_LEN) + GCM_TAG_LEN
        } else {
            0
        };
        let c_len = if pre.nsegs > 1 {
            (1..pre.nsegs).map(|i| padded(pre.len(i))).sum::<usize>()
                + EPILOGUE_SECURE_LEN
                + GCM_TAG_LEN
        } else {
            0
        };
        if self.buf.len() < b_len + c_len {
            if self.frame_end != b_len + c_len {
                self.reserve_frame(b_len + c_len);
            }
            return Ok(None);
        }
        self.frame_end = 0;
        let inline = inline.clone();
        self.pending = None;
        let Mode::Secure(keys) = &mut self.mode else {
            unreachable!("checked by caller")
        };
        let mut segments = Vec::with_capacity(pre.nsegs);
        if len0 > INLINE_LEN {
            let mut b = self.buf.split_to(b_len);
            let n = keys.rx.open(&mut b)?;
            let mut seg0 = BytesMut::with_capacity(len0);
            seg0.extend_from_slice(&inline);
            seg0.extend_from_slice(&b[..len0 - INLINE_LEN]);
            debug_assert!(n >= len0 - INLINE_LEN);
            segments.push(seg0.freeze());
        } else {
            segments.push(inline.slice(..len0));
        }
        if pre.nsegs > 1 {
            let mut c = self.buf.split_to(c_len);
            let n = keys.rx.open(&mut c)?;
            let c = c.freeze();
            self.recycle.keep(&c);
            let mut off = 0;
            for i in 1..pre.nsegs {
                segments.push(c.slice(off..off + pre.len(i)));
                off += padded(pre.len(i));
            }
            if off + EPILOGUE_SECURE_LEN != n {
                return Err(Error::protocol("secure epilogue misplaced"));
            }
            check_late_status(c[off])?;
        }
        Ok(Some((
            Frame {
                tag: pre.tag,
                segments,
            },
            Bytes::new(),
        )))
    }
}

fn check_late_status(s: u8) -> Result<(), Error> {
    if s & LATE_STATUS_MASK != LATE_STATUS_COMPLETE {
        return Err(Error::protocol(format!(
            "frame aborted by sender (late status {s:#x})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concat(v: Vec<Bytes>) -> Vec<u8> {
        v.iter().flat_map(|b| b.iter().copied()).collect()
    }

    #[test]
    fn crc_control_roundtrip() {
        let mut w = FrameWriter::default();
        let mut out = vec![];
        w.control(Tag::HELLO, b"hello payload", &mut out);
        let bytes = concat(out);
        assert_eq!(bytes.len(), 32 + 13 + 4);
        let mut r = FrameReader::default();
        r.feed(&bytes[..20]);
        assert!(r.next().unwrap().is_none());
        r.feed(&bytes[20..]);
        let (f, raw) = r.next().unwrap().unwrap();
        assert_eq!(f.tag, Tag::HELLO);
        assert_eq!(&f.segments[0][..], b"hello payload");
        assert_eq!(raw.len(), bytes.len());
    }

    #[test]
    fn crc_message_roundtrip_and_corruption() {
        let mut w = FrameWriter::default();
        let mut out = vec![];
        let data = Bytes::from(vec![7u8; 5000]);
        w.message(
            &[1u8; 41],
            &Bytes::from_static(b"front"),
            &Bytes::new(),
            &data.clone().into(),
            &mut out,
        );
        let mut bytes = concat(out);
        let mut r = FrameReader::default();
        r.feed(&bytes);
        let (f, _) = r.next().unwrap().unwrap();
        assert_eq!(f.segments.len(), 4);
        assert_eq!(&f.segments[1][..], b"front");
        assert!(f.segments[2].is_empty());
        assert_eq!(f.segments[3], data);
        // Flip a data byte: the epilogue crc must catch it.
        let n = bytes.len();
        bytes[n - 20] ^= 1;
        let mut r = FrameReader::default();
        r.feed(&bytes);
        assert!(matches!(r.next(), Err(Error::BadCrc { .. })));
    }

    #[test]
    fn secure_roundtrip_all_shapes() {
        let secret: Vec<u8> = (0..64u8).collect();
        for (len0, front, data) in [
            (5, 0, 0),
            (48, 0, 0),
            (49, 0, 0),
            (200, 0, 0),
            (41, 3, 0),
            (41, 0, 9000),
        ] {
            let mut w = FrameWriter::default();
            w.set_mode(Mode::Secure(Box::new(
                SecureKeys::from_connection_secret(&secret).unwrap(),
            )));
            let mut r = FrameReader::default();
            r.set_mode(Mode::Secure(Box::new(
                SecureKeys::server_side(&secret).unwrap(),
            )));
            let seg0 = vec![0xabu8; len0];
            let mut out = vec![];
            if front == 0 && data == 0 {
                w.control(Tag::KEEPALIVE2, &seg0, &mut out);
                w.control(Tag::ACK, &seg0, &mut out);
            } else {
                let fr = Bytes::from(vec![1u8; front]);
                let d = Bytes::from(vec![2u8; data]);
                w.message(&seg0, &fr, &Bytes::new(), &d.clone().into(), &mut out);
                w.message(&seg0, &fr, &Bytes::new(), &d.clone().into(), &mut out);
            }
            let bytes = concat(out);
            // Feed byte by byte for the first half to exercise partial reads.
            let half = bytes.len() / 2;
            let mut frames = vec![];
            for b in &bytes[..half] {
                r.feed(&[*b]);
                while let Some((f, _)) = r.next().unwrap() {
                    frames.push(f);
                }
            }
            r.feed(&bytes[half..]);
            while let Some((f, _)) = r.next().unwrap() {
                frames.push(f);
            }
            assert_eq!(frames.len(), 2, "len0 {len0}");
            for f in frames {
                assert_eq!(&f.segments[0][..], &seg0[..]);
                if data > 0 {
                    assert_eq!(f.segments[3].len(), data);
                }
            }
        }
    }

    #[test]
    fn secure_tamper_detected() {
        let secret: Vec<u8> = (0..64u8).collect();
        let mut w = FrameWriter::default();
        w.set_mode(Mode::Secure(Box::new(
            SecureKeys::from_connection_secret(&secret).unwrap(),
        )));
        let mut out = vec![];
        w.control(Tag::HELLO, b"x", &mut out);
        let mut bytes = concat(out);
        bytes[40] ^= 0x80;
        let mut r = FrameReader::default();
        r.set_mode(Mode::Secure(Box::new(
            SecureKeys::server_side(&secret).unwrap(),
        )));
        r.feed(&bytes);
        assert!(matches!(r.next(), Err(Error::DecryptFailed)));
    }

    /// A driver that reads into `prepare_read`'s room receives a 4 MiB message into one
    /// allocation made after the preamble: no regrow (and so no copy) mid-frame, and the data
    /// segment handed out is a slice of that allocation.
    #[test]
    fn large_frame_received_into_one_allocation() {
        let secret: Vec<u8> = (0..64u8).collect();
        for secure in [false, true] {
            let mut w = FrameWriter::default();
            let mut r = FrameReader::default();
            if secure {
                w.set_mode(Mode::Secure(Box::new(
                    SecureKeys::from_connection_secret(&secret).unwrap(),
                )));
                r.set_mode(Mode::Secure(Box::new(
                    SecureKeys::server_side(&secret).unwrap(),
                )));
            }
            let data = Bytes::from((0..4u32 << 20).map(|i| i as u8).collect::<Vec<u8>>());
            let mut out = vec![];
            // Two frames back to back: the second starts inside the last read of the first.
            w.message(
                &[1u8; 40],
                &Bytes::from_static(b"front"),
                &Bytes::new(),
                &data.clone().into(),
                &mut out,
            );
            w.control(Tag::KEEPALIVE2, &[0u8; 12], &mut out);
            let wire = concat(out);
            let (mut pos, mut frames) = (0usize, vec![]);
            let mut in_frame_base: Option<usize> = None;
            while pos < wire.len() || frames.len() < 2 {
                r.prepare_read(64 * 1024);
                if r.wanted() > 0 {
                    let base = r.buffer_mut().as_ptr() as usize;
                    assert_eq!(
                        *in_frame_base.get_or_insert(base),
                        base,
                        "regrown mid-frame"
                    );
                }
                let buf = r.buffer_mut();
                let room = buf.capacity() - buf.len();
                assert!(room > 0);
                // Socket reads of at most 100 KB, like a busy TCP stream.
                let n = room.min(100_000).min(wire.len() - pos);
                buf.extend_from_slice(&wire[pos..pos + n]);
                pos += n;
                while let Some((f, _)) = r.next().unwrap() {
                    if f.tag == Tag::MESSAGE {
                        let base = in_frame_base.expect("large frame was announced");
                        let p = f.segments[3].as_ptr() as usize;
                        assert!(p >= base && p < base + (5 << 20), "data segment copied");
                    }
                    frames.push(f);
                }
            }
            assert_eq!(frames.len(), 2);
            assert_eq!(frames[0].segments[3], data);
            assert_eq!(&frames[0].segments[1][..], b"front");
            assert_eq!(frames[1].tag, Tag::KEEPALIVE2);
            assert_eq!(r.wanted(), 0);
        }
    }

    fn reader_pair(secure: bool) -> (FrameWriter, FrameReader) {
        let secret: Vec<u8> = (0..64u8).collect();
        let mut w = FrameWriter::default();
        let mut r = FrameReader::default();
        if secure {
            w.set_mode(Mode::Secure(Box::new(
                SecureKeys::from_connection_secret(&secret).unwrap(),
            )));
            r.set_mode(Mode::Secure(Box::new(
                SecureKeys::server_side(&secret).unwrap(),
            )));
        }
        (w, r)
    }

    /// Reads `wire` like the socket driver does (`prepare_read`, then a read of at most
    /// `next_size()` bytes into the room it made, then `next` until it says "more"),
    /// returning the frames in order.
    fn drive(r: &mut FrameReader, wire: &[u8], mut next_size: impl FnMut() -> usize) -> Vec<Frame> {
        let (mut pos, mut frames) = (0usize, vec![]);
        while pos < wire.len() {
            r.prepare_read(64 * 1024);
            let buf = r.buffer_mut();
            let room = buf.capacity() - buf.len();
            assert!(room > 0, "no room for the next read");
            let n = room.min(next_size().max(1)).min(wire.len() - pos);
            buf.extend_from_slice(&wire[pos..pos + n]);
            pos += n;
            while let Some((f, _)) = r.next().unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(r.buffered(), 0, "bytes left over");
        assert_eq!(r.wanted(), 0);
        frames
    }

    fn pattern(seed: u32, len: usize) -> Bytes {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect::<Vec<u8>>()
            .into()
    }

    /// A data segment in pieces (merged writes) goes out byte for byte as the same
    /// bytes in one piece would, in both modes, and reads back as one segment: the
    /// crc runs across the pieces, secure mode encrypts them as one.
    #[test]
    fn data_in_pieces_is_sent_as_if_joined() {
        for secure in [false, true] {
            for cuts in [&[][..], &[1][..], &[4096, 8192][..], &[3, 4, 5, 70_000][..]] {
                let whole = pattern(cuts.len() as u32 + 7, 100_000);
                let mut pieces = DataSegment::new();
                let mut at = 0;
                for &c in cuts.iter().chain(std::iter::once(&whole.len())) {
                    pieces.push(whole.slice(at..c));
                    at = c;
                }
                assert_eq!(pieces.pieces().count(), cuts.len() + 1);
                assert_eq!(pieces, DataSegment::from(whole.clone()));
                let (mut w1, mut r) = reader_pair(secure);
                let (mut w2, _) = reader_pair(secure);
                let front = Bytes::from_static(b"front");
                let (mut a, mut b) = (vec![], vec![]);
                w1.message(&[9u8; 41], &front, &Bytes::new(), &pieces, &mut a);
                w2.message(
                    &[9u8; 41],
                    &front,
                    &Bytes::new(),
                    &whole.clone().into(),
                    &mut b,
                );
                if !secure {
                    // queued as they are: head, each piece, epilogue
                    assert_eq!(a.len(), cuts.len() + 3);
                }
                let wire = concat(a);
                assert_eq!(wire, concat(b), "secure {secure} cuts {cuts:?}");
                r.feed(&wire);
                let (f, _) = r.next().unwrap().unwrap();
                assert_eq!(f.segments[3], whole);
            }
        }
    }

    /// Large and small frames, crc and secure, arriving in reads of 1 byte, of odd fixed
    /// sizes and of pseudo-random sizes up to 200 KB: every frame comes out whole and
    /// intact whatever the split, including through recycled buffers.
    #[test]
    fn frames_survive_any_read_sizes() {
        for secure in [false, true] {
            let (mut w, _) = reader_pair(secure);
            let mut out = vec![];
            let mut want = vec![];
            // Large (above RECYCLE_MIN) and small messages, with a control frame between.
            for (i, (front, data)) in [
                (41, RECYCLE_MIN + 100),
                (7, 3000),
                (200, RECYCLE_MIN + 4096),
                (5, 0),
                (41, RECYCLE_MIN + 1),
            ]
            .into_iter()
            .enumerate()
            {
                let fr = pattern(i as u32 + 100, front);
                let d = pattern(i as u32, data);
                w.message(
                    &[i as u8; 44],
                    &fr,
                    &Bytes::new(),
                    &d.clone().into(),
                    &mut out,
                );
                w.control(Tag::KEEPALIVE2, &[i as u8; 12], &mut out);
                want.push((fr, d));
            }
            let wire = concat(out);
            let mut rng = 12345u64;
            let schedules: Vec<Box<dyn FnMut() -> usize>> = vec![
                Box::new(|| 1),
                Box::new(|| 7),
                Box::new(|| 4093),
                Box::new(move || {
                    rng = rng
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (rng >> 33) as usize % 200_000
                }),
            ];
            for (k, sched) in schedules.into_iter().enumerate() {
                let (_, mut r) = reader_pair(secure);
                let frames = drive(&mut r, &wire, sched);
                assert_eq!(frames.len(), 2 * want.len(), "secure {secure} schedule {k}");
                for (i, (fr, d)) in want.iter().enumerate() {
                    let m = &frames[2 * i];
                    assert_eq!(m.tag, Tag::MESSAGE);
                    assert_eq!(&m.segments[0][..], &[i as u8; 44][..]);
                    assert_eq!(
                        &m.segments[1], fr,
                        "front {i}, secure {secure} schedule {k}"
                    );
                    // A message without data has fewer segments on the wire.
                    let data = m.segments.get(3).cloned().unwrap_or_default();
                    assert_eq!(&data, d, "data {i}, secure {secure} schedule {k}");
                    assert_eq!(frames[2 * i + 1].tag, Tag::KEEPALIVE2);
                    assert_eq!(&frames[2 * i + 1].segments[0][..], &[i as u8; 12][..]);
                }
            }
        }
    }

    /// A large frame's allocation is reused for a later one only once the caller has
    /// dropped every slice of it: bytes a caller still holds are never overwritten.
    /// `release_idle` lets go of buffers not used since its previous call.
    #[test]
    fn large_buffers_recycled_only_when_free() {
        for secure in [false, true] {
            let (mut w, mut r) = reader_pair(secure);
            let mut frame = |seed: u32| {
                let mut out = vec![];
                let d = pattern(seed, 4 << 20);
                w.message(
                    &[1u8; 44],
                    &Bytes::from_static(b"f"),
                    &Bytes::new(),
                    &d.clone().into(),
                    &mut out,
                );
                (concat(out), d)
            };
            let span = |b: &Bytes| (b.as_ptr() as usize, b.as_ptr() as usize + b.len());
            let inside = |p: usize, (lo, hi): (usize, usize)| p + 4096 > lo && p < hi;
            // A is held by the caller while B arrives: B must not land in A.
            let (wa, da) = frame(1);
            let a = drive(&mut r, &wa, || 100_000).remove(0).segments[3].clone();
            let (wb, db) = frame(2);
            let b = drive(&mut r, &wb, || 100_000).remove(0).segments[3].clone();
            assert!(
                !inside(b.as_ptr() as usize, span(&a)),
                "B received into A while held"
            );
            assert_eq!(a, da);
            assert_eq!(b, db);
            // Both dropped: C is received into B, the one filled last (likelier cached).
            let (sa, sb) = (span(&a), span(&b));
            drop((a, b));
            let (wc, dc) = frame(3);
            let c = drive(&mut r, &wc, || 100_000).remove(0).segments[3].clone();
            assert_eq!(c, dc);
            let p = c.as_ptr() as usize;
            assert!(
                inside(p, sb) && !inside(p, sa),
                "C not received into the most recently filled free buffer"
            );
            assert!(r.recycle.len() <= RECYCLE_SLOTS);
            drop(c);
            // Unused for two periods: nothing is kept.
            r.release_idle();
            assert!(r.recycle.len() > 0);
            r.release_idle();
            assert_eq!(r.recycle.len(), 0);
        }
    }

    /// Secure mode encrypts each frame into a buffer of its own: a large one is reused for
    /// a later frame only once the socket side has dropped it (a frame still queued is
    /// never overwritten), every frame still decrypts to what was sent, and
    /// `release_idle` lets go of buffers not used since its previous call.
    #[test]
    fn large_send_buffers_reused_only_when_free() {
        let (mut w, mut r) = reader_pair(true);
        let send = |w: &mut FrameWriter, seed: u32| {
            let d = pattern(seed, 4 << 20);
            let mut out = vec![];
            w.message(
                &[2u8; 44],
                &Bytes::new(),
                &Bytes::new(),
                &d.clone().into(),
                &mut out,
            );
            assert_eq!(out.len(), 1, "a secure frame is one buffer");
            (out.pop().unwrap(), d)
        };
        let span = |b: &Bytes| (b.as_ptr() as usize, b.as_ptr() as usize + b.len());
        // A is still queued for the socket while B is built: B must not reuse it.
        let (a, da) = send(&mut w, 1);
        let (b, db) = send(&mut w, 2);
        assert_ne!(
            span(&a).0,
            span(&b).0,
            "B built in A's buffer while A was queued"
        );
        let wire_a = a.to_vec();
        // A written and dropped: C is built in its allocation.
        let a_at = span(&a).0;
        drop(a);
        let (c, dc) = send(&mut w, 3);
        assert_eq!(span(&c).0, a_at, "C not built in A's freed buffer");
        let mut wire = wire_a;
        wire.extend_from_slice(&b);
        wire.extend_from_slice(&c);
        let got = drive(&mut r, &wire, || 1 << 20);
        let data: Vec<&Bytes> = got.iter().map(|f| &f.segments[3]).collect();
        assert_eq!(data, vec![&da, &db, &dc]);
        // Unused for two periods: nothing is kept.
        drop((b, c));
        w.release_idle();
        assert!(w.recycle.len() > 0);
        w.release_idle();
        assert_eq!(w.recycle.len(), 0);
    }

    #[test]
    fn oversized_frame_rejected_before_buffering() {
        let pre = Preamble {
            tag: Tag::MESSAGE,
            nsegs: 4,
            lens: [41, 0, 0, u32::MAX],
            aligns: [8; 4],
        };
        let mut r = FrameReader::default();
        r.feed(&pre.encode());
        assert!(matches!(r.next(), Err(Error::FrameTooLarge { .. })));
    }

    #[test]
    fn bad_segment_count_rejected() {
        let pre = Preamble {
            tag: Tag::HELLO,
            nsegs: 0,
            lens: [0; 4],
            aligns: [0; 4],
        };
        let mut r = FrameReader::default();
        r.feed(&pre.encode());
        assert!(r.next().is_err());
    }
}
