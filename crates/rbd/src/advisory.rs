//! Advisory image locks (`rbd lock add|ls|rm`, librbd `lock_exclusive`,
//! `lock_shared`, `unlock`, `list_lockers`, `break_lock`): cls_lock locks named
//! `rbd_lock` on the image header, identified by a cookie (the lock id), shared locks
//! carrying a tag. They do not stop I/O by themselves; cooperating users (and
//! exclusive-lock owners, which use the same lock name) see them.
//! ceph: src/librbd/internal.cc (lock, unlock, break_lock, list_lockers).

use crate::cls::lock::{self as cls_lock, lock_type, LockOp, RBD_LOCK_NAME};
use crate::error::{RbdError, Result};
use crate::image::Image;
use crate::util::header_name;
use ceph_encoding::{EntityNameT, EntityType};
use ceph_rados::Errno;

/// One holder of an advisory lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locker {
    /// `client.<gid>`.
    pub client: String,
    /// The lock id (cookie).
    pub cookie: String,
    /// The holder's address (`IP:PORT/NONCE`).
    pub address: String,
}

/// The lock state of an image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lockers {
    /// Exclusive (true) or shared.
    pub exclusive: bool,
    /// The tag of a shared lock.
    pub tag: String,
    /// Holders (empty: unlocked).
    pub lockers: Vec<Locker>,
}

/// Parse `client.<N>` (`entity_name_t::parse`).
pub fn parse_entity(s: &str) -> Result<EntityNameT> {
    let bad = || RbdError::InvalidArgument(format!("unable to parse client '{s}'"));
    let (ty, num) = s.split_once('.').ok_or_else(bad)?;
    let ty = match ty {
        "client" => EntityType::CLIENT,
        "osd" => EntityType::OSD,
        "mon" => EntityType::MON,
        "mds" => EntityType::MDS,
        "mgr" => EntityType::MGR,
        _ => return Err(bad()),
    };
    let num: i64 = num.parse().map_err(|_| bad())?;
    Ok(EntityNameT {
        ty: ty.0 as u8,
        num,
    })
}

impl Image {
    async fn lock_with(&self, cookie: &str, ty: u8, tag: &str) -> Result<()> {
        let op = LockOp {
            name: RBD_LOCK_NAME.to_string(),
            lock_type: ty,
            cookie: cookie.to_string(),
            tag: tag.to_string(),
            description: String::new(),
            duration: Default::default(),
            flags: 0,
        };
        cls_lock::lock(&op)
            .exec(self.ioctx(), &header_name(self.id()))
            .await?;
        self.notify_header_update().await;
        Ok(())
    }

    /// Take an exclusive advisory lock with id `cookie` (EBUSY if anyone holds the
    /// lock, EEXIST if this client already holds it with that cookie).
    pub async fn lock_exclusive(&self, cookie: &str) -> Result<()> {
        self.lock_with(cookie, lock_type::EXCLUSIVE, "").await
    }

    /// Take a shared advisory lock with id `cookie` and `tag` (EBUSY if the lock is
    /// exclusive or shared under another tag).
    pub async fn lock_shared(&self, cookie: &str, tag: &str) -> Result<()> {
        self.lock_with(cookie, lock_type::SHARED, tag).await
    }

    /// Release this client's lock `cookie` (ENOENT if it holds none).
    pub async fn unlock(&self, cookie: &str) -> Result<()> {
        cls_lock::unlock(RBD_LOCK_NAME, cookie)
            .exec(self.ioctx(), &header_name(self.id()))
            .await?;
        self.notify_header_update().await;
        Ok(())
    }

    /// The advisory lock and its holders (`rbd lock ls`).
    pub async fn list_lockers(&self) -> Result<Lockers> {
        let info = self.lock_info().await?;
        Ok(Lockers {
            exclusive: info.lock_type == lock_type::EXCLUSIVE
                || info.lock_type == lock_type::EXCLUSIVE_EPHEMERAL,
            tag: info.tag,
            lockers: info
                .lockers
                .into_iter()
                .map(|(id, i)| Locker {
                    client: id.locker.to_string(),
                    cookie: id.cookie,
                    address: match i.addr.addr {
                        Some(a) => format!("{a}/{}", i.addr.nonce),
                        None => format!("-/{}", i.addr.nonce),
                    },
                })
                .collect(),
        })
    }

    /// Break `client`'s lock `cookie` (`rbd lock rm`). With `blocklist_secs`, the
    /// holder's address is first blocklisted for that long (0: the cluster's default)
    /// as librbd does with `rbd_blocklist_on_break_lock`, so a live holder cannot keep
    /// writing. ENOENT if `client` holds no such lock, EINVAL if it does not parse.
    pub async fn break_lock(
        &self,
        client: &str,
        cookie: &str,
        blocklist_secs: Option<u64>,
    ) -> Result<()> {
        let who = parse_entity(client)?;
        if let Some(secs) = blocklist_secs {
            let l = self.list_lockers().await?;
            let addr = l
                .lockers
                .iter()
                .find(|l| l.client == client)
                .map(|l| l.address.clone())
                .ok_or_else(|| RbdError::not_found(format!("{client} holds no lock")))?;
            let mut cmd = serde_json::json!({
                "prefix": "osd blocklist",
                "blocklistop": "add",
                "addr": addr,
            });
            if secs > 0 {
                cmd["expire"] = serde_json::json!(secs as f64);
            }
            self.ioctx()
                .rados()
                .mon_command(&cmd.to_string(), bytes::Bytes::new())
                .await?;
        }
        match cls_lock::break_lock(RBD_LOCK_NAME, who, cookie)
            .exec(self.ioctx(), &header_name(self.id()))
            .await
        {
            Ok(_) => {}
            Err(e) if e.errno() == Errno::ENOENT => {
                return Err(RbdError::not_found(format!(
                    "{client} holds no lock {cookie}"
                )))
            }
            Err(e) => return Err(e),
        }
        self.notify_header_update().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities() {
        let e = parse_entity("client.4157").unwrap();
        assert_eq!(e.to_string(), "client.4157");
        assert!(parse_entity("bogus").is_err());
        assert!(parse_entity("client.x").is_err());
    }
}
