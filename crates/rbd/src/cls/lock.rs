//! cls "lock" (advisory locks on the image header): op and reply structures and calls
//! (ceph: src/cls/lock/cls_lock_ops.h, cls_lock_types.h; kernel:
//! net/ceph/cls_lock_client.c).
//!
//! The exclusive-lock feature built on these is in `crate::exclusive_lock`; the lock
//! state is also read for `info`/`status`, and a stale lock can be broken like
//! `rbd lock rm`.

use super::ClsCall;
use ceph_encoding::{
    Decode, DecodeError, Decoder, Encode, EncodeExt, EntityAddr, EntityNameT, UTime,
};
use std::collections::BTreeMap;

type DResult<T> = std::result::Result<T, DecodeError>;

/// Lock types (`ClsLockType`).
pub mod lock_type {
    #![allow(missing_docs)]
    pub const NONE: u8 = 0;
    pub const EXCLUSIVE: u8 = 1;
    pub const SHARED: u8 = 2;
    pub const EXCLUSIVE_EPHEMERAL: u8 = 3;
}

/// The lock librbd's exclusive-lock feature takes on the header.
pub const RBD_LOCK_NAME: &str = "rbd_lock";

/// `cls_lock_lock_op` VERS(1,1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockOp {
    /// Lock name.
    pub name: String,
    /// Type (see [`lock_type`]).
    pub lock_type: u8,
    /// Cookie.
    pub cookie: String,
    /// Tag.
    pub tag: String,
    /// Description.
    pub description: String,
    /// Duration (0 = until unlocked).
    pub duration: UTime,
    /// Flags (MAY_RENEW 1, MUST_RENEW 2).
    pub flags: u8,
}

impl Encode for LockOp {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(1, 1);
        out.put_str(&self.name);
        out.put_u8(self.lock_type);
        out.put_str(&self.cookie);
        out.put_str(&self.tag);
        out.put_str(&self.description);
        out.put(&self.duration);
        out.put_u8(self.flags);
        g.finish(out);
    }
}

impl Decode for LockOp {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "cls_lock_lock_op")?;
        Ok(LockOp {
            name: s.string()?,
            lock_type: s.u8()?,
            cookie: s.string()?,
            tag: s.string()?,
            description: s.string()?,
            duration: UTime::decode(&mut s)?,
            flags: s.u8()?,
        })
    }
}

/// `cls_lock_unlock_op` VERS(1,1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnlockOp {
    /// Lock name.
    pub name: String,
    /// Cookie.
    pub cookie: String,
}

impl Encode for UnlockOp {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(1, 1);
        out.put_str(&self.name);
        out.put_str(&self.cookie);
        g.finish(out);
    }
}

impl Decode for UnlockOp {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "cls_lock_unlock_op")?;
        Ok(UnlockOp {
            name: s.string()?,
            cookie: s.string()?,
        })
    }
}

/// `cls_lock_break_op` VERS(1,1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BreakOp {
    /// Lock name.
    pub name: String,
    /// The locker to evict.
    pub locker: EntityNameT,
    /// Its cookie.
    pub cookie: String,
}

impl Encode for BreakOp {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(1, 1);
        out.put_str(&self.name);
        out.put(&self.locker);
        out.put_str(&self.cookie);
        g.finish(out);
    }
}

impl Decode for BreakOp {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "cls_lock_break_op")?;
        Ok(BreakOp {
            name: s.string()?,
            locker: EntityNameT::decode(&mut s)?,
            cookie: s.string()?,
        })
    }
}

/// `cls_lock_get_info_op` VERS(1,1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetInfoOp {
    /// Lock name.
    pub name: String,
}

impl Encode for GetInfoOp {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(1, 1);
        out.put_str(&self.name);
        g.finish(out);
    }
}

impl Decode for GetInfoOp {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "cls_lock_get_info_op")?;
        Ok(GetInfoOp { name: s.string()? })
    }
}

/// `cls_lock_assert_op` VERS(1,1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssertOp {
    /// Lock name.
    pub name: String,
    /// Type.
    pub lock_type: u8,
    /// Cookie.
    pub cookie: String,
    /// Tag.
    pub tag: String,
}

impl Encode for AssertOp {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(1, 1);
        out.put_str(&self.name);
        out.put_u8(self.lock_type);
        out.put_str(&self.cookie);
        out.put_str(&self.tag);
        g.finish(out);
    }
}

impl Decode for AssertOp {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "cls_lock_assert_op")?;
        Ok(AssertOp {
            name: s.string()?,
            lock_type: s.u8()?,
            cookie: s.string()?,
            tag: s.string()?,
        })
    }
}

/// `cls_lock_set_cookie_op` VERS(1,1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetCookieOp {
    /// Lock name.
    pub name: String,
    /// Type.
    pub lock_type: u8,
    /// Current cookie.
    pub cookie: String,
    /// Tag.
    pub tag: String,
    /// New cookie.
    pub new_cookie: String,
}

impl Encode for SetCookieOp {
    fn encode(&self, out: &mut Vec<u8>) {
        let g = out.start_versioned(1, 1);
        out.put_str(&self.name);
        out.put_u8(self.lock_type);
        out.put_str(&self.cookie);
        out.put_str(&self.tag);
        out.put_str(&self.new_cookie);
        g.finish(out);
    }
}

impl Decode for SetCookieOp {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "cls_lock_set_cookie_op")?;
        Ok(SetCookieOp {
            name: s.string()?,
            lock_type: s.u8()?,
            cookie: s.string()?,
            tag: s.string()?,
            new_cookie: s.string()?,
        })
    }
}

/// `locker_id_t` VERS(1,1): who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct LockerId {
    /// The holder entity.
    pub locker: EntityNameT,
    /// Its cookie.
    pub cookie: String,
}

impl Decode for LockerId {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "locker_id_t")?;
        Ok(LockerId {
            locker: EntityNameT::decode(&mut s)?,
            cookie: s.string()?,
        })
    }
}

/// `locker_info_t` VERS(1,1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockerInfo {
    /// Expiration (0 = none).
    pub expiration: UTime,
    /// Holder address.
    pub addr: EntityAddr,
    /// Description.
    pub description: String,
}

impl Decode for LockerInfo {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "locker_info_t")?;
        Ok(LockerInfo {
            expiration: UTime::decode(&mut s)?,
            addr: EntityAddr::decode(&mut s)?,
            description: s.string()?,
        })
    }
}

/// `cls_lock_get_info_reply` VERS(1,1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockInfo {
    /// Holders.
    pub lockers: BTreeMap<LockerId, LockerInfo>,
    /// Lock type.
    pub lock_type: u8,
    /// Tag.
    pub tag: String,
}

impl Decode for LockInfo {
    fn decode(d: &mut Decoder<'_>) -> DResult<Self> {
        let (_v, mut s) = d.versioned(1, "cls_lock_get_info_reply")?;
        let lockers = s.map_with(20, "lockers", LockerId::decode, LockerInfo::decode)?;
        Ok(LockInfo {
            lockers,
            lock_type: s.u8()?,
            tag: s.string()?,
        })
    }
}

/// `cls_lock_list_locks_reply` VERS(1,1).
pub fn decode_list_locks(d: &mut Decoder<'_>) -> DResult<Vec<String>> {
    let (_v, mut s) = d.versioned(1, "cls_lock_list_locks_reply")?;
    s.vec::<String>(4, "locks")
}

fn call<T: Encode>(method: &'static str, op: &T, write: bool) -> ClsCall {
    ClsCall::new("lock", method, ceph_encoding::encode_to_vec(op), write)
}

/// `lock`.
pub fn lock(op: &LockOp) -> ClsCall {
    call("lock", op, true)
}
/// `unlock`.
pub fn unlock(name: &str, cookie: &str) -> ClsCall {
    call(
        "unlock",
        &UnlockOp {
            name: name.into(),
            cookie: cookie.into(),
        },
        true,
    )
}
/// `break_lock`.
pub fn break_lock(name: &str, locker: EntityNameT, cookie: &str) -> ClsCall {
    call(
        "break_lock",
        &BreakOp {
            name: name.into(),
            locker,
            cookie: cookie.into(),
        },
        true,
    )
}
/// `get_info`; decode the output with [`LockInfo`].
pub fn get_info(name: &str) -> ClsCall {
    call("get_info", &GetInfoOp { name: name.into() }, false)
}
/// `assert_locked`: fails with EBUSY unless the caller holds `name` with this cookie, type
/// and tag (put in front of a write to make it conditional on holding the lock).
pub fn assert_locked(name: &str, lock_type: u8, cookie: &str, tag: &str) -> ClsCall {
    call(
        "assert_locked",
        &AssertOp {
            name: name.into(),
            lock_type,
            cookie: cookie.into(),
            tag: tag.into(),
        },
        false,
    )
}
