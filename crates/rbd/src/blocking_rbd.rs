//! A blocking facade over [`Rbd`] for embedders without an async runtime of their own
//! (next to [`crate::BlockingImage`]): the pool-level calls a CSI-style driver makes —
//! create, open, list, remove, clone, snapshots through the image, metadata, trash,
//! namespaces and the watcher check before delete/map.

use crate::blocking::BlockingImage;
use crate::error::Result;
use crate::rbd::{CloneOptions, CreateOptions, ImageSpec, Rbd};
use crate::trash::TrashEntry;
use crate::util::header_name;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::runtime::Handle;

/// An [`Rbd`] (pool + namespace) driven by blocking calls on a tokio runtime `Handle`.
/// Like [`BlockingImage`], its methods must not be called from the runtime's own
/// worker threads.
///
/// ```no_run
/// # fn f(rbd: ceph_rbd::Rbd, rt: &tokio::runtime::Runtime) -> ceph_rbd::Result<()> {
/// let pool = ceph_rbd::BlockingRbd::new(rbd, rt.handle().clone());
/// pool.create("vol", 1 << 30, &Default::default())?;
/// pool.metadata_set("vol", "csi.volname", b"pvc-1")?;
/// assert!(pool.watchers("vol")?.is_empty());
/// pool.trash_move("vol", std::time::Duration::ZERO)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct BlockingRbd {
    rbd: Rbd,
    rt: Handle,
}

impl BlockingRbd {
    /// Wrap an [`Rbd`].
    pub fn new(rbd: Rbd, rt: Handle) -> Self {
        BlockingRbd { rbd, rt }
    }

    /// The async handle underneath.
    pub fn rbd(&self) -> &Rbd {
        &self.rbd
    }

    /// See [`Rbd::create`].
    pub fn create(&self, name: &str, size: u64, opts: &CreateOptions) -> Result<String> {
        self.rt.block_on(self.rbd.create(name, size, opts))
    }

    /// See [`Rbd::open`]: a read-write [`BlockingImage`].
    pub fn open(&self, name: &str) -> Result<BlockingImage> {
        let img = self.rt.block_on(self.rbd.open(name))?;
        Ok(BlockingImage::new(img, self.rt.clone()))
    }

    /// See [`Rbd::open_read_only`] (no header watch, like librbd).
    pub fn open_read_only(&self, name: &str) -> Result<BlockingImage> {
        let img = self.rt.block_on(self.rbd.open_read_only(name))?;
        Ok(BlockingImage::new(img, self.rt.clone()))
    }

    /// See [`Rbd::list`].
    pub fn list(&self) -> Result<Vec<ImageSpec>> {
        self.rt.block_on(self.rbd.list())
    }

    /// See [`Rbd::remove`].
    pub fn remove(&self, name: &str) -> Result<()> {
        self.rt.block_on(self.rbd.remove(name))
    }

    /// See [`Rbd::clone_image`]: clone `parent@snap` (in this pool) into `child` in
    /// `child_pool`.
    pub fn clone_image(
        &self,
        parent: &str,
        snap: &str,
        child_pool: &BlockingRbd,
        child: &str,
        opts: &CloneOptions,
    ) -> Result<()> {
        self.rt.block_on(
            self.rbd
                .clone_image(parent, snap, &child_pool.rbd, child, opts),
        )
    }

    /// Who watches image `name`'s header (clients that have it open or mapped): the
    /// check a CSI driver makes before deleting or mapping.
    pub fn watchers(&self, name: &str) -> Result<Vec<ceph_rados::osd::ops::WatchItem>> {
        self.rt.block_on(self.rbd.watchers(name))
    }

    /// All metadata of image `name`.
    pub fn metadata_list(&self, name: &str) -> Result<BTreeMap<String, Vec<u8>>> {
        self.rt.block_on(async {
            let id = self.rbd.image_id(name).await?;
            self.rbd.metadata(&id).await
        })
    }

    /// One metadata value of image `name` (ENOENT when absent).
    pub fn metadata_get(&self, name: &str, key: &str) -> Result<Vec<u8>> {
        self.rt.block_on(async {
            let id = self.rbd.image_id(name).await?;
            self.rbd.metadata_get(&id, key).await
        })
    }

    /// Set a metadata key of image `name`.
    pub fn metadata_set(&self, name: &str, key: &str, value: &[u8]) -> Result<()> {
        self.rt.block_on(async {
            let id = self.rbd.image_id(name).await?;
            self.rbd.metadata_set(&id, key, value).await
        })
    }

    /// Remove a metadata key of image `name` (ENOENT when absent).
    pub fn metadata_remove(&self, name: &str, key: &str) -> Result<()> {
        self.rt.block_on(async {
            let id = self.rbd.image_id(name).await?;
            self.rbd.metadata_remove(&id, key).await
        })
    }

    /// See [`Rbd::trash_move`].
    pub fn trash_move(&self, name: &str, delay: Duration) -> Result<String> {
        self.rt.block_on(self.rbd.trash_move(name, delay))
    }

    /// See [`Rbd::trash_list`].
    pub fn trash_list(&self) -> Result<Vec<TrashEntry>> {
        self.rt.block_on(self.rbd.trash_list())
    }

    /// See [`Rbd::trash_restore`].
    pub fn trash_restore(&self, id: &str, new_name: Option<&str>) -> Result<String> {
        self.rt.block_on(self.rbd.trash_restore(id, new_name))
    }

    /// See [`Rbd::trash_remove`].
    pub fn trash_remove(&self, id: &str, force: bool) -> Result<()> {
        self.rt
            .block_on(self.rbd.trash_remove(id, force, |_, _| {}))
    }

    /// See [`Rbd::namespace_create`].
    pub fn namespace_create(&self, name: &str) -> Result<()> {
        self.rt.block_on(self.rbd.namespace_create(name))
    }

    /// See [`Rbd::namespace_list`].
    pub fn namespace_list(&self) -> Result<Vec<String>> {
        self.rt.block_on(self.rbd.namespace_list())
    }

    /// See [`Rbd::namespace_remove`].
    pub fn namespace_remove(&self, name: &str) -> Result<()> {
        self.rt.block_on(self.rbd.namespace_remove(name))
    }
}

impl Rbd {
    /// Watchers of image `name`'s header, read without opening the image (so without
    /// adding a watch of our own): empty means nobody has it open or mapped.
    pub async fn watchers(&self, name: &str) -> Result<Vec<ceph_rados::osd::ops::WatchItem>> {
        let id = self.image_id(name).await?;
        Ok(self.ioctx().list_watchers(&header_name(&id)).await?)
    }
}
