//! Header watch/notify payloads: `librbd::watch_notify::NotifyMessage` VERS(7,1) and
//! `ResponseMessage` VERS(1,1) (ceph: src/librbd/WatchNotifyTypes.{h,cc}).

use crate::cls::SnapshotNamespace;
use ceph_encoding::{Decode, DecodeError, Decoder, Encode, EncodeExt};

type DResult<T> = std::result::Result<T, DecodeError>;

/// Notify op codes (`NotifyOp`).
pub mod op {
    #![allow(missing_docs)]

    /// librbd's name of an op (`operator<<(NotifyOp)`, what `rbd watch` prints).
    pub fn name(op: u32) -> String {
        const NAMES: [&str; 21] = [
            "AcquiredLock",
            "ReleasedLock",
            "RequestLock",
            "HeaderUpdate",
            "AsyncProgress",
            "AsyncComplete",
            "Flatten",
            "Resize",
            "SnapCreate",
            "SnapRemove",
            "RebuildObjectMap",
            "SnapRename",
            "SnapProtect",
            "SnapUnprotect",
            "Rename",
            "UpdateFeatures",
            "Migrate",
            "Sparsify",
            "Quiesce",
            "Unquiesce",
            "MetadataUpdate",
        ];
        match NAMES.get(op as usize) {
            Some(n) => n.to_string(),
            None => format!("Unknown ({op})"),
        }
    }

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

impl AsyncRequestId {
    /// librbd treats a zero request id as "no async id" (legacy requests whose ack
    /// carries the final result).
    pub fn is_valid(&self) -> bool {
        self.request_id != 0
    }

    fn put(&self, out: &mut Vec<u8>) {
        out.put_u64(self.client.gid);
        out.put_u64(self.client.handle);
        out.put_u64(self.request_id);
    }
}

/// A maintenance operation a non-owner asks the exclusive-lock owner to run
/// (librbd `Operations::invoke_async_request` -> `ImageWatcher::notify_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// FLATTEN.
    Flatten,
    /// RESIZE (`allow_shrink` from v4).
    Resize {
        /// New size in bytes.
        size: u64,
        /// Shrinking allowed.
        allow_shrink: bool,
    },
    /// SNAP_CREATE (`flags`: `SNAP_CREATE_FLAG_*`).
    SnapCreate {
        /// Namespace of the new snapshot.
        ns: SnapshotNamespace,
        /// Its name.
        name: String,
        /// librbd snap create flags.
        flags: u64,
    },
    /// SNAP_REMOVE.
    SnapRemove {
        /// Namespace.
        ns: SnapshotNamespace,
        /// Name.
        name: String,
    },
    /// SNAP_RENAME (librbd proxies it only on journaling images).
    SnapRename {
        /// Snapshot id to rename.
        snap_id: u64,
        /// New name.
        name: String,
    },
    /// SNAP_PROTECT (journaling images only).
    SnapProtect {
        /// Namespace.
        ns: SnapshotNamespace,
        /// Name.
        name: String,
    },
    /// SNAP_UNPROTECT (journaling images only).
    SnapUnprotect {
        /// Namespace.
        ns: SnapshotNamespace,
        /// Name.
        name: String,
    },
    /// REBUILD_OBJECT_MAP (head).
    RebuildObjectMap,
    /// RENAME of the image.
    Rename {
        /// New image name.
        name: String,
    },
    /// UPDATE_FEATURES.
    UpdateFeatures {
        /// Feature mask.
        features: u64,
        /// Enable (true) or disable.
        enabled: bool,
    },
    /// METADATA_UPDATE: set (`Some`) or remove (`None`) a key.
    MetadataUpdate {
        /// Key.
        key: String,
        /// New value, or removal.
        value: Option<String>,
    },
}

/// A proxied maintenance request with its async request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// Who asked and which request (zero request id: legacy, result in the ack).
    pub id: AsyncRequestId,
    /// The operation.
    pub req: Request,
}

impl ProxiedRequest {
    /// The notify op code.
    pub fn op(&self) -> u32 {
        match self.req {
            Request::Flatten => op::FLATTEN,
            Request::Resize { .. } => op::RESIZE,
            Request::SnapCreate { .. } => op::SNAP_CREATE,
            Request::SnapRemove { .. } => op::SNAP_REMOVE,
            Request::SnapRename { .. } => op::SNAP_RENAME,
            Request::SnapProtect { .. } => op::SNAP_PROTECT,
            Request::SnapUnprotect { .. } => op::SNAP_UNPROTECT,
            Request::RebuildObjectMap => op::REBUILD_OBJECT_MAP,
            Request::Rename { .. } => op::RENAME,
            Request::UpdateFeatures { .. } => op::UPDATE_FEATURES,
            Request::MetadataUpdate { .. } => op::METADATA_UPDATE,
        }
    }

    /// The notification, in librbd 16.2's v7 layout (checked against the bytes
    /// `rbd resize/snap create/snap rm/feature disable/object-map rebuild/image-meta set/
    /// rename` send to a python3-rbd lock owner):
    /// RESIZE `u64 size, id, bool allow_shrink`; SNAP_CREATE `name, ns, id, u64 flags`;
    /// SNAP_REMOVE/PROTECT/UNPROTECT `name, ns, id`; SNAP_RENAME `u64 snap_id, name, ns,
    /// id`; UPDATE_FEATURES `u64 features, bool enabled, id`; METADATA_UPDATE `key,
    /// optional<string> value, id`; RENAME `name, id`; FLATTEN/REBUILD_OBJECT_MAP `id`.
    pub fn to_message(&self) -> NotifyMessage {
        let mut raw = Vec::new();
        let snap = |raw: &mut Vec<u8>, ns: &SnapshotNamespace, name: &str| {
            raw.put_str(name);
            ns.encode(raw);
            self.id.put(raw);
        };
        match &self.req {
            Request::Flatten | Request::RebuildObjectMap => self.id.put(&mut raw),
            Request::Resize { size, allow_shrink } => {
                raw.put_u64(*size);
                self.id.put(&mut raw);
                raw.put_bool(*allow_shrink);
            }
            Request::SnapCreate { ns, name, flags } => {
                snap(&mut raw, ns, name);
                raw.put_u64(*flags);
            }
            Request::SnapRemove { ns, name }
            | Request::SnapProtect { ns, name }
            | Request::SnapUnprotect { ns, name } => snap(&mut raw, ns, name),
            Request::SnapRename { snap_id, name } => {
                raw.put_u64(*snap_id);
                snap(&mut raw, &SnapshotNamespace::User, name);
            }
            Request::Rename { name } => {
                raw.put_str(name);
                self.id.put(&mut raw);
            }
            Request::UpdateFeatures { features, enabled } => {
                raw.put_u64(*features);
                raw.put_bool(*enabled);
                self.id.put(&mut raw);
            }
            Request::MetadataUpdate { key, value } => {
                raw.put_str(key);
                raw.put_bool(value.is_some());
                if let Some(v) = value {
                    raw.put_str(v);
                }
                self.id.put(&mut raw);
            }
        }
        NotifyMessage {
            version: NOTIFY_MESSAGE_VERSION,
            op: self.op(),
            raw,
        }
    }

    /// Decode the payload of `m` (None: not a request this client runs, or an
    /// encoding older than librbd's v7).
    pub fn from_message(m: &NotifyMessage) -> DResult<Option<Self>> {
        if m.version < NOTIFY_MESSAGE_VERSION {
            return Ok(None);
        }
        let mut d = Decoder::new(&m.raw);
        let snap = |d: &mut Decoder<'_>| -> DResult<(String, SnapshotNamespace, AsyncRequestId)> {
            let name = d.string()?;
            let ns = d.decode::<SnapshotNamespace>()?;
            Ok((name, ns, async_id(d)?))
        };
        let (id, req) = match m.op {
            op::FLATTEN => (async_id(&mut d)?, Request::Flatten),
            op::REBUILD_OBJECT_MAP => (async_id(&mut d)?, Request::RebuildObjectMap),
            op::RESIZE => {
                let size = d.u64()?;
                let id = async_id(&mut d)?;
                let allow_shrink = d.bool()?;
                (id, Request::Resize { size, allow_shrink })
            }
            op::SNAP_CREATE => {
                let (name, ns, id) = snap(&mut d)?;
                let flags = d.u64()?;
                (id, Request::SnapCreate { ns, name, flags })
            }
            op::SNAP_REMOVE => {
                let (name, ns, id) = snap(&mut d)?;
                (id, Request::SnapRemove { ns, name })
            }
            op::SNAP_PROTECT => {
                let (name, ns, id) = snap(&mut d)?;
                (id, Request::SnapProtect { ns, name })
            }
            op::SNAP_UNPROTECT => {
                let (name, ns, id) = snap(&mut d)?;
                (id, Request::SnapUnprotect { ns, name })
            }
            op::SNAP_RENAME => {
                let snap_id = d.u64()?;
                let (name, _ns, id) = snap(&mut d)?;
                (id, Request::SnapRename { snap_id, name })
            }
            op::RENAME => {
                let name = d.string()?;
                (async_id(&mut d)?, Request::Rename { name })
            }
            op::UPDATE_FEATURES => {
                let features = d.u64()?;
                let enabled = d.bool()?;
                (
                    async_id(&mut d)?,
                    Request::UpdateFeatures { features, enabled },
                )
            }
            op::METADATA_UPDATE => {
                let key = d.string()?;
                let value = if d.bool()? { Some(d.string()?) } else { None };
                (async_id(&mut d)?, Request::MetadataUpdate { key, value })
            }
            _ => return Ok(None),
        };
        Ok(Some(ProxiedRequest { id, req }))
    }
}

/// ASYNC_PROGRESS / ASYNC_COMPLETE of a proxied request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsyncEvent {
    /// Progress `offset` of `total`.
    Progress {
        /// The request.
        id: AsyncRequestId,
        /// Done so far.
        offset: u64,
        /// Total.
        total: u64,
    },
    /// Done with `result` (0 or a negative errno).
    Complete {
        /// The request.
        id: AsyncRequestId,
        /// Result.
        result: i32,
    },
}

impl AsyncEvent {
    /// The request it reports on.
    pub fn id(&self) -> AsyncRequestId {
        match *self {
            AsyncEvent::Progress { id, .. } | AsyncEvent::Complete { id, .. } => id,
        }
    }

    /// The notification (`id, u64 offset, u64 total` / `id, s32 result`).
    pub fn to_message(&self) -> NotifyMessage {
        let mut raw = Vec::new();
        let op = match *self {
            AsyncEvent::Progress { id, offset, total } => {
                id.put(&mut raw);
                raw.put_u64(offset);
                raw.put_u64(total);
                op::ASYNC_PROGRESS
            }
            AsyncEvent::Complete { id, result } => {
                id.put(&mut raw);
                raw.put_i32(result);
                op::ASYNC_COMPLETE
            }
        };
        NotifyMessage {
            version: NOTIFY_MESSAGE_VERSION,
            op,
            raw,
        }
    }
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
    /// Progress or completion of a request we proxied to the owner.
    Async(AsyncEvent),
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
            op::ASYNC_PROGRESS => (|| {
                Ok(NotifyPayload::Async(AsyncEvent::Progress {
                    id: async_id(&mut d)?,
                    offset: d.u64()?,
                    total: d.u64()?,
                }))
            })(),
            op::ASYNC_COMPLETE => (|| {
                Ok(NotifyPayload::Async(AsyncEvent::Complete {
                    id: async_id(&mut d)?,
                    result: d.i32()?,
                }))
            })(),
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

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Notifications captured from librbd 16.2 (`rbd` CLI against a python3-rbd owner);
    /// each decodes and re-encodes to the same bytes.
    #[test]
    fn librbd_proxied_requests() {
        let cases = [
            // rbd resize --size 80M
            "0701250000000700000000000005000000002d10000000000000003200f47f7f0000010000000000000000",
            // rbd snap create @s1
            "07013400000008000000020000007331010104000000000000002f10000000000000202f0154a67f000001000000000000000000000000000000",
            // rbd snap rm @s2
            "07012c000000090000000200000073320101040000000000000037100000000000001029011c137f00000100000000000000",
            // rbd feature disable fast-diff
            "0701250000000f000000100000000000000000391000000000000000320030567f00000100000000000000",
            // rbd object-map rebuild
            "07011c0000000a0000003d1000000000000050260170177f00000100000000000000",
            // rbd image-meta set k v
            "07012700000014000000010000006b0101000000763f1000000000000000320004977f00000100000000000000",
            // rbd rename img img2
            "0701240000000e00000004000000696d673241100000000000007026018c4d7f00000100000000000000",
            // rbd snap rename @j1 @j2 (journaling image)
            "0701340000000b0000000700000000000000020000006a32010104000000000000004d10000000000000c0280188717f00000100000000000000",
            // rbd snap protect @j2 (journaling image)
            "07012c0000000c000000020000006a32010104000000000000004f1000000000000010750190047f00000100000000000000",
        ];
        let mut got = Vec::new();
        for c in cases {
            let b = hex(c);
            let m = NotifyMessage::from_payload(&b).unwrap();
            let r = ProxiedRequest::from_message(&m).unwrap().unwrap();
            assert_eq!(r.id.request_id, 1);
            assert_eq!(encode_to_vec(&r.to_message()), b, "{r:?}");
            got.push(r.req);
        }
        assert_eq!(
            got[0],
            Request::Resize {
                size: 80 << 20,
                allow_shrink: false
            }
        );
        assert_eq!(
            got[1],
            Request::SnapCreate {
                ns: SnapshotNamespace::User,
                name: "s1".into(),
                flags: 0
            }
        );
        assert_eq!(
            got[3],
            Request::UpdateFeatures {
                features: 16,
                enabled: false
            }
        );
        assert_eq!(
            got[5],
            Request::MetadataUpdate {
                key: "k".into(),
                value: Some("v".into())
            }
        );
        assert_eq!(
            got[7],
            Request::SnapRename {
                snap_id: 7,
                name: "j2".into()
            }
        );
        // ASYNC_PROGRESS 1/10 and ASYNC_COMPLETE 0 from the python owner
        for c in [
            "07012c000000040000002f10000000000000202f0154a67f0000010000000000000001000000000000000a00000000000000",
            "070120000000050000002d10000000000000003200f47f7f0000010000000000000000000000",
        ] {
            let b = hex(c);
            let m = NotifyMessage::from_payload(&b).unwrap();
            let NotifyPayload::Async(ev) = m.payload() else {
                panic!("{m:?}")
            };
            assert_eq!(encode_to_vec(&ev.to_message()), b);
        }
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
