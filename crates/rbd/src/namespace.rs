//! RBD namespaces (`rbd namespace create|ls|rm`): RADOS namespaces inside a pool that
//! hold their own `rbd_directory`, trash and images; the pool lists them in
//! `rbd_namespace` (default namespace). ceph: src/librbd/api/Namespace.cc.

use crate::cls::{self, DIRECTORY_STATE_ADD_DISABLED, DIRECTORY_STATE_READY, RBD_NAMESPACE};
use crate::error::{RbdError, Result};
use crate::rbd::Rbd;
use crate::util::{RBD_DIRECTORY, RBD_TRASH};
use ceph_rados::{Errno, IoCtx, OsdOp};

fn default_ns(io: &IoCtx) -> IoCtx {
    let mut d = io.clone();
    d.set_namespace("");
    d
}

fn in_ns(io: &IoCtx, name: &str) -> IoCtx {
    let mut d = io.clone();
    d.set_namespace(name);
    d
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.contains('@') {
        return Err(RbdError::InvalidArgument(format!(
            "invalid namespace name '{name}'"
        )));
    }
    Ok(())
}

impl Rbd {
    /// Create namespace `name` in this pool: registered in `rbd_namespace`, then its
    /// directory marked ready (EEXIST if it exists).
    pub async fn namespace_create(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let d = default_ns(self.ioctx());
        cls::namespace_add(name).exec(&d, RBD_NAMESPACE).await?;
        if let Err(e) = cls::dir_state_set(DIRECTORY_STATE_READY)
            .exec(&in_ns(self.ioctx(), name), RBD_DIRECTORY)
            .await
        {
            let _ = cls::namespace_remove(name).exec(&d, RBD_NAMESPACE).await;
            return Err(e);
        }
        Ok(())
    }

    /// Remove namespace `name` (ENOENT if absent; EBUSY while it holds images or trashed
    /// images). Its directory is first closed to new images, so a racing create fails.
    pub async fn namespace_remove(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let d = default_ns(self.ioctx());
        let ns = in_ns(self.ioctx(), name);
        if !self.namespace_list().await?.iter().any(|n| n == name) {
            return Err(RbdError::not_found(format!(
                "namespace {name} does not exist"
            )));
        }
        // disable adds and drop the (empty) directory in one op; EBUSY if not empty
        match ns
            .operate_write(
                RBD_DIRECTORY,
                vec![
                    cls::dir_state_set(DIRECTORY_STATE_ADD_DISABLED).op(),
                    OsdOp::delete(),
                ],
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) if e.errno() == Errno::EBUSY => {
                return Err(RbdError::busy("namespace contains images"))
            }
            Err(e) => return Err(e.into()),
        }
        let trash = match cls::trash_list("", 1).exec(&ns, RBD_TRASH).await {
            Ok(b) => !cls::decode_trash_list(&b)?.is_empty(),
            Err(e) if e.is_not_found() => false,
            Err(e) => return Err(e),
        };
        if trash {
            let _ = cls::dir_state_set(DIRECTORY_STATE_READY)
                .exec(&ns, RBD_DIRECTORY)
                .await;
            return Err(RbdError::busy("namespace contains trashed images"));
        }
        for oid in [RBD_TRASH, "rbd_mirroring", "rbd_info"] {
            let _ = ns.remove(oid).await;
        }
        match cls::namespace_remove(name).exec(&d, RBD_NAMESPACE).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The pool's namespaces, sorted.
    pub async fn namespace_list(&self) -> Result<Vec<String>> {
        let d = default_ns(self.ioctx());
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let b = match cls::namespace_list(&after, 1024)
                .exec(&d, RBD_NAMESPACE)
                .await
            {
                Ok(b) => b,
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(e),
            };
            let v = cls::decode_namespace_list(&b)?;
            let n = v.len();
            if let Some(l) = v.last() {
                after = l.clone();
            }
            out.extend(v);
            if n < 1024 {
                break;
            }
        }
        Ok(out)
    }

    /// Whether namespace `name` exists (its directory is in the READY state).
    pub async fn namespace_exists(&self, name: &str) -> Result<bool> {
        check_name(name)?;
        match cls::dir_state_assert(DIRECTORY_STATE_READY)
            .exec(&in_ns(self.ioctx(), name), RBD_DIRECTORY)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() || e.errno() == Errno::EIO => Ok(false),
            Err(e) => Err(e),
        }
    }
}
