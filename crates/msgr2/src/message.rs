//! Ceph messages as carried in msgr2 MESSAGE frames.

use bytes::Bytes;
use ceph_encoding::{DecodeError, Decoder};
use std::fmt;

/// Length of `ceph_msg_header2` on the wire.
pub const HEADER2_LEN: usize = 41;

/// Message type numbers (`CEPH_MSG_*`, `MSG_*`). Open newtype.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MsgType(pub u16);

impl MsgType {
    #![allow(missing_docs)]
    pub const MON_MAP: MsgType = MsgType(4);
    pub const STATFS: MsgType = MsgType(13);
    pub const STATFS_REPLY: MsgType = MsgType(14);
    pub const MON_SUBSCRIBE: MsgType = MsgType(15);
    pub const MON_SUBSCRIBE_ACK: MsgType = MsgType(16);
    pub const AUTH: MsgType = MsgType(17);
    pub const AUTH_REPLY: MsgType = MsgType(18);
    pub const MON_GET_VERSION: MsgType = MsgType(19);
    pub const MON_GET_VERSION_REPLY: MsgType = MsgType(20);
    pub const OSD_MAP: MsgType = MsgType(41);
    pub const OSD_OP: MsgType = MsgType(42);
    pub const OSD_OPREPLY: MsgType = MsgType(43);
    pub const WATCH_NOTIFY: MsgType = MsgType(44);
    pub const POOLOP_REPLY: MsgType = MsgType(48);
    pub const POOLOP: MsgType = MsgType(49);
    pub const MON_COMMAND: MsgType = MsgType(50);
    pub const MON_COMMAND_ACK: MsgType = MsgType(51);
    pub const OSD_BACKOFF: MsgType = MsgType(61);
    pub const CONFIG: MsgType = MsgType(62);
    pub const MGR_MAP: MsgType = MsgType(0x704);
}

impl fmt::Debug for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::MON_MAP => "MON_MAP",
            Self::MON_SUBSCRIBE => "MON_SUBSCRIBE",
            Self::AUTH => "AUTH",
            Self::AUTH_REPLY => "AUTH_REPLY",
            Self::MON_GET_VERSION_REPLY => "MON_GET_VERSION_REPLY",
            Self::OSD_MAP => "OSD_MAP",
            Self::OSD_OP => "OSD_OP",
            Self::OSD_OPREPLY => "OSD_OPREPLY",
            Self::WATCH_NOTIFY => "WATCH_NOTIFY",
            Self::POOLOP_REPLY => "POOLOP_REPLY",
            Self::MON_COMMAND_ACK => "MON_COMMAND_ACK",
            Self::OSD_BACKOFF => "OSD_BACKOFF",
            Self::CONFIG => "CONFIG",
            _ => "",
        };
        write!(f, "{name}({})", self.0)
    }
}

/// `ceph_msg_header2`: what a MESSAGE frame's segment 0 carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MsgHeader {
    /// Per-session sequence number (filled in by the connection).
    pub seq: u64,
    /// Transaction id.
    pub tid: u64,
    /// Message type.
    pub ty: MsgType,
    /// Priority (`CEPH_MSG_PRIO_*`).
    pub priority: u16,
    /// Encoding version of the payload.
    pub version: u16,
    /// Data alignment hint.
    pub data_off: u16,
    /// Piggy-backed ack (filled in by the connection).
    pub ack_seq: u64,
    /// Flags.
    pub flags: u8,
    /// Oldest decoder version able to read the payload.
    pub compat_version: u16,
}

impl MsgHeader {
    /// A header for a message of type `ty` at encoding `version` / `compat_version`.
    pub fn new(ty: MsgType, version: u16, compat_version: u16) -> Self {
        MsgHeader {
            ty,
            version,
            compat_version,
            priority: 127,
            ..Default::default()
        }
    }

    /// Encode to the 41 wire bytes.
    pub fn encode(&self) -> [u8; HEADER2_LEN] {
        let mut h = [0u8; HEADER2_LEN];
        h[0..8].copy_from_slice(&self.seq.to_le_bytes());
        h[8..16].copy_from_slice(&self.tid.to_le_bytes());
        h[16..18].copy_from_slice(&self.ty.0.to_le_bytes());
        h[18..20].copy_from_slice(&self.priority.to_le_bytes());
        h[20..22].copy_from_slice(&self.version.to_le_bytes());
        // 22..26 data_pre_padding_len = 0
        h[26..28].copy_from_slice(&self.data_off.to_le_bytes());
        h[28..36].copy_from_slice(&self.ack_seq.to_le_bytes());
        h[36] = self.flags;
        h[37..39].copy_from_slice(&self.compat_version.to_le_bytes());
        h
    }

    /// Decode from segment 0 of a MESSAGE frame.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(b);
        let seq = d.u64()?;
        let tid = d.u64()?;
        let ty = MsgType(d.u16()?);
        let priority = d.u16()?;
        let version = d.u16()?;
        let _pad = d.u32()?;
        let data_off = d.u16()?;
        let ack_seq = d.u64()?;
        let flags = d.u8()?;
        let compat_version = d.u16()?;
        let _reserved = d.u16()?;
        Ok(MsgHeader {
            seq,
            tid,
            ty,
            priority,
            version,
            data_off,
            ack_seq,
            flags,
            compat_version,
        })
    }
}

/// A message's data segment: one buffer, or several sent back to back.
///
/// Why pieces: the I/O scheduler merges runs of small writes into one request, whose
/// write ops all carry their data in this one segment. Joining them would copy every
/// byte again (twice, counting each op's own join) on the busiest path of writes. The
/// frame writer instead queues the pieces as they are in crc mode (the CRC runs across
/// them) and encrypts them into the frame it builds anyway in secure mode. A received
/// segment is always one piece.
#[derive(Clone, Default)]
pub struct DataSegment {
    /// The first piece; empty only when the whole segment is (then `rest` is too).
    first: Bytes,
    /// Further pieces, none empty; no allocation for the common single piece.
    rest: Vec<Bytes>,
    len: usize,
}

impl DataSegment {
    /// An empty segment.
    pub const fn new() -> Self {
        DataSegment {
            first: Bytes::new(),
            rest: Vec::new(),
            len: 0,
        }
    }

    /// Append a piece (empty pieces are dropped).
    pub fn push(&mut self, piece: Bytes) {
        if piece.is_empty() {
            return;
        }
        self.len += piece.len();
        if self.first.is_empty() {
            self.first = piece;
        } else {
            self.rest.push(piece);
        }
    }

    /// Append every piece of `other` (shared, not copied).
    pub fn extend_from(&mut self, other: &DataSegment) {
        // one growth per op at most when a request lists many ops' pieces
        self.rest.reserve(other.rest.len());
        for p in other.pieces() {
            self.push(p.clone());
        }
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the segment carries no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces in order, none empty.
    pub fn pieces(&self) -> impl Iterator<Item = &Bytes> + '_ {
        std::iter::once(&self.first)
            .filter(|b| !b.is_empty())
            .chain(self.rest.iter())
    }

    /// The bytes as one buffer: shared when there is one piece (always so for a received
    /// message), joined otherwise.
    pub fn to_bytes(&self) -> Bytes {
        if self.rest.is_empty() {
            return self.first.clone();
        }
        let mut b = Vec::with_capacity(self.len);
        for p in self.pieces() {
            b.extend_from_slice(p);
        }
        b.into()
    }
}

impl From<Bytes> for DataSegment {
    fn from(b: Bytes) -> Self {
        let mut d = DataSegment::new();
        d.push(b);
        d
    }
}

impl From<Vec<u8>> for DataSegment {
    fn from(v: Vec<u8>) -> Self {
        Bytes::from(v).into()
    }
}

impl FromIterator<Bytes> for DataSegment {
    fn from_iter<I: IntoIterator<Item = Bytes>>(it: I) -> Self {
        let mut d = DataSegment::new();
        for b in it {
            d.push(b);
        }
        d
    }
}

/// Equal when the bytes are, however they are split into pieces.
impl PartialEq for DataSegment {
    fn eq(&self, other: &Self) -> bool {
        if self.len != other.len {
            return false;
        }
        if self.rest.is_empty() && other.rest.is_empty() {
            return self.first == other.first;
        }
        self.pieces()
            .flat_map(|p| p.iter())
            .eq(other.pieces().flat_map(|p| p.iter()))
    }
}

impl Eq for DataSegment {}

impl PartialEq<[u8]> for DataSegment {
    fn eq(&self, other: &[u8]) -> bool {
        self.len == other.len() && self.pieces().flat_map(|p| p.iter()).eq(other.iter())
    }
}

impl fmt::Debug for DataSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DataSegment({} bytes in {} pieces)",
            self.len,
            self.pieces().count()
        )
    }
}

/// A message: header plus front (payload), middle and data segments.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The header.
    pub header: MsgHeader,
    /// Front: the encoded payload.
    pub front: Bytes,
    /// Middle (rarely used).
    pub middle: Bytes,
    /// Data: bulk bytes (object data, command output).
    pub data: DataSegment,
}

impl Message {
    /// A message with the given header and front.
    pub fn new(header: MsgHeader, front: impl Into<Bytes>) -> Self {
        Message {
            header,
            front: front.into(),
            middle: Bytes::new(),
            data: DataSegment::new(),
        }
    }

    /// Attach a data segment.
    pub fn with_data(mut self, data: impl Into<DataSegment>) -> Self {
        self.data = data.into();
        self
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("type", &self.header.ty)
            .field("seq", &self.header.seq)
            .field("tid", &self.header.tid)
            .field("version", &self.header.version)
            .field("front", &self.front.len())
            .field("data", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_segment_pieces_len_and_equality() {
        let whole = Bytes::from((0..=255u8).cycle().take(10_000).collect::<Vec<u8>>());
        let mut d = DataSegment::new();
        assert!(d.is_empty() && d.pieces().next().is_none());
        d.push(Bytes::new());
        d.push(whole.slice(..1));
        d.push(Bytes::new());
        d.push(whole.slice(1..4096));
        d.push(whole.slice(4096..));
        assert_eq!(d.len(), whole.len());
        assert_eq!(d.pieces().count(), 3, "empty pieces are dropped");
        assert_eq!(d.to_bytes(), whole);
        assert_eq!(d, DataSegment::from(whole.clone()));
        assert_eq!(d, whole[..]);
        // same length, one byte different, in the last piece
        let mut other = whole.to_vec();
        other[9_999] ^= 1;
        assert_ne!(d, DataSegment::from(other.clone()));
        assert_ne!(d, other[..]);
        assert_ne!(d, DataSegment::from(whole.slice(1..)));
        // one piece is shared, not copied
        let one = DataSegment::from(whole.clone());
        assert_eq!(one.to_bytes().as_ptr(), whole.as_ptr());
        // extending shares the pieces
        let mut e = DataSegment::from(Bytes::from_static(b"ab"));
        e.extend_from(&d);
        assert_eq!(e.len(), 2 + whole.len());
        assert_eq!(e.pieces().nth(1).unwrap().as_ptr(), whole.as_ptr());
    }
}
