//! Header watch/notify payloads: `librbd::watch_notify::NotifyMessage` VERS(7,1) and
//! `ResponseMessage` VERS(1,1) (ceph: src/librbd/WatchNotifyTypes.{h,cc}).

use ceph_encoding::{Decode, DecodeError, Decoder, Encode, EncodeExt};

type DResult<T> = std::result::Result<T, DecodeError>;

/// Notify op codes (`NotifyOp`).
pub mod op {
    #![allow(missing_docs)]
    pub const ACQUIRED_LOCK: u32 = 0;
    pub const RELEASED_LOCK: u32 = 1;
    pub const REQUEST_LOCK: u32 = 2;
    pub const HEADER_UPDATE: u32 = 3;
    pub const ASYNC_PROGRESS: u32 = 4;
    pub const ASYNC_COMPLETE: u32 = 5;
    pub const FLATTEN: u32 = 6;
    pub const RESIZE: u32 = 7;
    pub const SNAP_CREATE: u32 = 8;
    pub const SNAP_REMOVE: u32 = 9;
    pub const REBUILD_OBJECT_MAP: u32 = 10;
    pub const SNAP_RENAME: u32 = 11;
    pub const SNAP_PROTECT: u32 = 12;
    pub const SNAP_UNPROTECT: u32 = 13;
    pub const RENAME: u32 = 14;
    pub const UPDATE_FEATURES: u32 = 15;
    pub const MIGRATE: u32 = 16;
    pub const SPARSIFY: u32 = 17;
    pub const QUIESCE: u32 = 18;
    pub const UNQUIESCE: u32 = 19;
    pub const METADATA_UPDATE: u32 = 20;
}

/// The version librbd 16.2 encodes.
pub const NOTIFY_MESSAGE_VERSION: u8 = 7;

/// `ClientId`: (global id, watch handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ClientId {
    /// The client's global id (instance id).
    pub gid: u64,
    /// Its watch cookie on the header.
    pub handle: u64,
}

/// `AsyncRequestId`: ClientId + request number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct AsyncRequestId {
    /// Who asked.
    pub client: ClientId,
    /// Request number.
    pub request_id: u64,
}

fn client_id(d: &mut Decoder<'_>) -> DResult<ClientId> {
    Ok(ClientId {
        gid: d.u64()?,
        handle: d.u64()?,
    })
}

fn async_id(d: &mut Decoder<'_>) -> DResult<AsyncRequestId> {
    Ok(AsyncRequestId {
        client: client_id(d)?,
        request_id: d.u64()?,
    })
}

/// A notification on the image header. The payload is kept encoded (so every message,
/// known or not, re-encodes to the same bytes); [`NotifyMessage::payload`] gives a view
/// of the ones this client acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyMessage {
    /// Struct version it was (or will be) encoded with.
    pub version: u8,
    /// Op code (see [`op`]).
    pub op: u32,
    /// The encoded op-specific payload.
    pub raw: Vec<u8>,
}

/// The decoded payloads this client cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyPayload {
    /// Re-read the header.
    HeaderUpdate,
    /// Lock traffic (exclusive-lock feature).
    Lock {
        /// Op code.
        op: u32,
        /// The client concerned.
        client: ClientId,
    },
    /// Block writes and drain, then ack (snapshot creation by a peer).
    Quiesce(AsyncRequestId),
    /// Writes may resume.
    Unquiesce(AsyncRequestId),
    /// Anything else (requests for the exclusive-lock owner, progress reports...).
    Other(u32),
}

impl NotifyMessage {
    /// HEADER_UPDATE (empty payload), as librbd sends it after changing the header.
    pub fn header_update() -> Self {
        NotifyMessage {
            version: NOTIFY_MESSAGE_VERSION,
            op: op::HEADER_UPDATE,
            raw: Vec::new(),
        }
    }

    /// QUIESCE / UNQUIESCE for an async request id.
    pub fn quiesce(unquiesce: bool, id: AsyncRequestId) -> Self {
        let mut raw = Vec::new();
        raw.put_u64(id.client.gid);
        raw.put_u64(id.client.handle);
        raw.put_u64(id.request_id);
        NotifyMessage {
            version: NOTIFY_MESSAGE_VERSION,
            op: if unquiesce {
                op::UNQUIESCE
            } else {
                op::QUIESCE
            },
            raw,
        }
    }

    /// View of the payload.
    pub fn payload(&self) -> NotifyPayload {
        let mut d = Decoder::new(&self.raw);
        let p = match self.op {
            op::HEADER_UPDATE => Ok(NotifyPayload::HeaderUpdate),
            op::ACQUIRED_LOCK | op::RELEASED_LOCK | op::REQUEST_LOCK if self.version >= 2 => {
                client_id(&mut d).map(|client| NotifyPayload::Lock {
                    op: self.op,
                    client,
                })
            }
            op::QUIESCE => async_id(&mut d).map(NotifyPayload::Quiesce),
            op::UNQUIESCE => async_id(&mut d).map(NotifyPayload::Unquiesce),
            other => Ok(NotifyPayload::Other(other)),
        };
        p.unwrap_or(NotifyPayload::Other(self.op))
    }

    /// Decode from a notify payload. An empty payload is a legacy HEADER_UPDATE.
    pub fn from_payload(b: &[u8]) -> DResult<Self> {
        if b.is_empty() {
            return Ok(NotifyMessage {
                version: 1,
                op: op::HEADER_UPDATE,
                raw: Vec::new(),
            });
        }
        ceph_encoding::decode_exact(b)
    }
}

impl Encode for NotifyMessage {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(self.version, 1);
        out.put_u32(self.op);
        out.put_raw(&self.raw);
        g.finish(out);
    }
}

impl Decode for NotifyMessage {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (v, mut s) = d.versioned(NOTIFY_MESSAGE_VERSION, "NotifyMessage")?;
        let op = s.u32()?;
        Ok(NotifyMessage {
            version: v,
            op,
            raw: s.rest().to_vec(),
        })
    }
}

/// `ResponseMessage` VERS(1,1): the ack payload for requests that expect a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseMessage {
    /// 0 or a negative errno.
    pub result: i32,
}

impl Encode for ResponseMessage {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(1, 1);
        out.put_i32(self.result);
        g.finish(out);
    }
}

impl Decode for ResponseMessage {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "ResponseMessage")?;
        Ok(ResponseMessage { result: s.i32()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceph_encoding::encode_to_vec;

    #[test]
    fn header_update_bytes() {
        assert_eq!(
            encode_to_vec(&NotifyMessage::header_update()),
            vec![7, 1, 4, 0, 0, 0, 3, 0, 0, 0]
        );
        assert_eq!(
            NotifyMessage::from_payload(&[]).unwrap().payload(),
            NotifyPayload::HeaderUpdate
        );
    }

    #[test]
    fn quiesce_roundtrip() {
        let id = AsyncRequestId {
            client: ClientId {
                gid: 4100,
                handle: 9,
            },
            request_id: 2,
        };
        let m = NotifyMessage::quiesce(false, id);
        let b = encode_to_vec(&m);
        let back = NotifyMessage::from_payload(&b).unwrap();
        assert_eq!(back.payload(), NotifyPayload::Quiesce(id));
        assert_eq!(
            encode_to_vec(&ResponseMessage { result: 0 }),
            vec![1, 1, 4, 0, 0, 0, 0, 0, 0, 0]
        );
    }
}
