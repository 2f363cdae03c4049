//! Pool-level operations: pool init, create, list, open, rename, remove, clone.
//! Laid out exactly as librbd 16.2 does (ceph: src/librbd/api/Pool.cc `init`,
//! image/CreateRequest.cc, api/Image.cc `remove`, api/Trash.cc, image/RemoveRequest.cc,
//! image/CloneRequest.cc, image/AttachChildRequest.cc).

use crate::cache::CacheConfig;
use crate::cls::{
    self, trash_source, trash_state, ChildImageSpec, ParentImageSpec, SnapshotNamespace,
    TrashImageSpec,
};
use crate::error::{RbdError, Result, EBADF, ECHILD, EMLINK};
use crate::features;
use crate::image::{Image, OpenOptions};
use crate::layout::Layout;
use crate::util::{
    self, header_name, id_obj_name, GoneOk, RBD_CHILDREN, RBD_DIRECTORY, RBD_INFO, RBD_TRASH,
};
use bytes::Bytes;
use ceph_rados::{Errno, IoCtx, OsdOp, Rados};
use std::collections::BTreeMap;
use tracing::debug;

/// Options for [`Rbd::create`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Object size order (12..=25; `None` = 22, 4 MiB objects).
    pub order: Option<u8>,
    /// Feature bits (`None` = [`features::DEFAULT`], librbd's default 61).
    pub features: Option<u64>,
    /// Stripe unit (`None`/0 = object size).
    pub stripe_unit: Option<u64>,
    /// Stripe count (`None`/0 = 1).
    pub stripe_count: Option<u64>,
    /// Separate data pool, by name.
    pub data_pool: Option<String>,
}

/// Clone format (`rbd_default_clone_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CloneFormat {
    /// v2 if the cluster requires mimic or newer clients, else v1 (librbd's default).
    #[default]
    Auto,
    /// v1: the parent snapshot must be protected; children in `rbd_children`.
    V1,
    /// v2: children attached to the parent snapshot; no protection needed.
    V2,
}

/// Options for [`Rbd::clone_image`].
#[derive(Debug, Clone, Default)]
pub struct CloneOptions {
    /// Features of the clone (`None` = the parent's).
    pub features: Option<u64>,
    /// Order (`None` = the parent's).
    pub order: Option<u8>,
    /// Stripe unit/count (`None` = the parent's).
    pub stripe_unit: Option<u64>,
    /// Stripe count.
    pub stripe_count: Option<u64>,
    /// Separate data pool.
    pub data_pool: Option<String>,
    /// Clone format.
    pub format: CloneFormat,
}

/// A name/id pair of the directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageSpec {
    /// Image name.
    pub name: String,
    /// Image id.
    pub id: String,
}

/// A clone of a snapshot (`rbd children`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChildInfo {
    /// Pool name.
    pub pool: String,
    /// Pool id.
    pub pool_id: i64,
    /// RADOS namespace.
    pub pool_namespace: String,
    /// Image name.
    pub image: String,
    /// Image id.
    pub id: String,
    /// True if the child is in the trash.
    pub trash: bool,
}

/// RBD operations on one pool and RADOS namespace (librbd's `RBD` class with an
/// `IoCtx`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Rbd {
    io: IoCtx,
    /// `rbd_blocklist_expire_seconds` for images opened through this handle (0: the
    /// monitor's default), unless the open options give one.
    blocklist_expire_seconds: u64,
    /// The `rbd_cache*` options for images opened through this handle, unless the open
    /// options give them (`None`: librbd's defaults).
    cache: Option<CacheConfig>,
}

impl Rbd {
    /// RBD operations in the pool/namespace of `io`.
    pub fn new(io: IoCtx) -> Rbd {
        Rbd {
            io,
            blocklist_expire_seconds: 0,
            cache: None,
        }
    }

    /// Set `rbd_blocklist_expire_seconds` (librbd reads it from the configuration):
    /// how long a dead lock owner broken by images opened here stays blocklisted.
    pub fn with_blocklist_expire_seconds(mut self, secs: u64) -> Rbd {
        self.blocklist_expire_seconds = secs;
        self
    }

    /// Set the `rbd_cache*` options (librbd reads them from the configuration) for
    /// images opened through this handle; see [`CacheConfig`].
    pub fn with_cache_config(mut self, cache: CacheConfig) -> Rbd {
        self.cache = Some(cache);
        self
    }

    /// Open the pool `pool` (default namespace).
    pub async fn open_pool(rados: &Rados, pool: &str) -> Result<Rbd> {
        Ok(Rbd::new(rados.ioctx(pool).await?))
    }

    /// The I/O context.
    pub fn ioctx(&self) -> &IoCtx {
        &self.io
    }

    fn rados(&self) -> &Rados {
        self.io.rados()
    }

    /// `rbd pool init`: enable the `rbd` application on the pool, then validate it for
    /// self-managed snapshots and overwrites (`rbd_info` = "overwrite validated").
    pub async fn pool_init(&self, force: bool) -> Result<()> {
        let name = crate::image::pool_name(self.rados(), self.io.pool_id())
            .await
            .ok_or_else(|| RbdError::not_found(format!("pool {}", self.io.pool_id())))?;
        let _ = force;
        self.rados().pool_application_enable(&name, "rbd").await?;
        validate_pool(&self.io).await
    }

    /// Create an image (librbd `create`, format 2). Returns the new image id.
    pub async fn create(&self, name: &str, size: u64, opts: &CreateOptions) -> Result<String> {
        util::validate_name("image", name)?;
        let order = opts.order.unwrap_or(22);
        let mut feats = opts.features.unwrap_or(features::DEFAULT);
        validate_create(size, order, feats)?;
        // librbd enables fast-diff with every new object map (`create(features = 13)`
        // makes an image with 29)
        if feats & features::OBJECT_MAP != 0 {
            feats |= features::FAST_DIFF;
        }
        let su = opts.stripe_unit.unwrap_or(0);
        let sc = opts.stripe_count.unwrap_or(0);
        if (su == 0) != (sc == 0) && !(su == 0 && sc == 0) {
            return Err(RbdError::InvalidArgument(
                "must specify both (or neither) of stripe unit and stripe count".into(),
            ));
        }
        if su != 0 && ((1u64 << order) % su != 0 || su > (1u64 << order)) {
            return Err(RbdError::InvalidArgument(
                "stripe unit is not a factor of the object size".into(),
            ));
        }
        if (su != 0 && su != 1u64 << order) || (sc != 0 && sc != 1) {
            feats |= features::STRIPINGV2;
        } else {
            feats &= !features::STRIPINGV2;
        }
        // data pool
        let mut data_pool_id = -1i64;
        if let Some(dp) = &opts.data_pool {
            let id = self.rados().pool_lookup(dp).await?;
            if id != self.io.pool_id() {
                data_pool_id = id;
                feats |= features::DATA_POOL;
            }
        }
        if feats & features::DATA_POOL == 0 {
            data_pool_id = -1;
        }
        // an existing name, in either format
        if self.io.stat(&id_obj_name(name)).await.is_ok()
            || self.io.stat(&format!("{name}.rbd")).await.is_ok()
        {
            return Err(RbdError::exists(format!("rbd image {name} already exists")));
        }
        let id = util::generate_image_id(self.rados().instance_id());
        // validate the data pool (or this pool) like ValidatePoolRequest
        let mut data_io = if data_pool_id >= 0 {
            self.rados().ioctx_by_id(data_pool_id)
        } else {
            self.io.clone()
        };
        data_io.set_namespace(self.io.namespace());
        validate_pool(&data_io).await?;
        self.create_with_id(name, &id, size, order, feats, su, sc, data_pool_id)
            .await?;
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_with_id(
        &self,
        name: &str,
        id: &str,
        size: u64,
        order: u8,
        mut feats: u64,
        su: u64,
        sc: u64,
        data_pool_id: i64,
    ) -> Result<()> {
        let io = &self.io;
        // 1. directory entry
        let mut ops = Vec::new();
        if !io.namespace().is_empty() {
            ops.push(cls::dir_state_assert(0).op());
        }
        ops.push(cls::dir_add_image(name, id).op());
        match io.operate_write(RBD_DIRECTORY, ops).await {
            Ok(_) => {}
            Err(e) if e.is_exists() => {
                return Err(RbdError::exists(format!("rbd image {name} already exists")))
            }
            Err(e) => return Err(e.into()),
        }
        // 2. id object
        let r = io
            .operate_write(
                &id_obj_name(name),
                vec![OsdOp::create(true), cls::set_id(id).op()],
            )
            .await;
        if let Err(e) = r {
            let _ = cls::dir_remove_image(name, id)
                .exec(io, RBD_DIRECTORY)
                .await;
            return Err(if e.is_exists() {
                RbdError::exists(format!("id object for {name} already exists"))
            } else {
                e.into()
            });
        }
        // 3. negotiate features with what the OSDs' cls_rbd supports
        if let Ok(b) = cls::get_all_features().exec(io, RBD_DIRECTORY).await {
            if let Ok(all) = cls::decode_u64(&b) {
                if feats & all != feats {
                    return self
                        .undo_create(
                            name,
                            id,
                            false,
                            RbdError::UnsupportedFeatures {
                                image: name.into(),
                                mask: feats & !all,
                                names: features::feature_names(feats & !all).join(", "),
                                write: true,
                            },
                        )
                        .await;
                }
                feats &= all;
            }
        }
        // 4. header
        let prefix = if data_pool_id >= 0 {
            format!("rbd_data.{}.{id}", io.pool_id())
        } else {
            format!("rbd_data.{id}")
        };
        if prefix.len() > util::MAX_BLOCK_NAME_PREFIX_LENGTH {
            return self
                .undo_create(
                    name,
                    id,
                    false,
                    RbdError::InvalidArgument(format!("object prefix '{prefix}' too large")),
                )
                .await;
        }
        let r = io
            .operate_write(
                &header_name(id),
                vec![
                    OsdOp::create(true),
                    cls::create(size, order, feats, &prefix, data_pool_id).op(),
                ],
            )
            .await;
        if let Err(e) = r {
            if e.is_exists() {
                return Err(RbdError::refused("image id already in use", EBADF));
            }
            return self.undo_create(name, id, false, e.into()).await;
        }
        // 5. object map (librbd CreateRequest::send_object_map_resize)
        if feats & features::OBJECT_MAP != 0 {
            let n = Layout::new(order, su, sc).num_objects(size);
            if let Err(e) = crate::object_map::resize(n, crate::object_map::state::NONEXISTENT)
                .exec(
                    io,
                    &crate::object_map::object_map_name(id, ceph_rados::NOSNAP),
                )
                .await
            {
                return self.undo_create(name, id, true, e).await;
            }
        }
        // 6. striping
        if su != 0 && !(sc == 1 && su == 1u64 << order) {
            if let Err(e) = cls::set_stripe_unit_count(su, sc)
                .exec(io, &header_name(id))
                .await
            {
                return self.undo_create(name, id, true, e).await;
            }
        }
        Ok(())
    }

    async fn undo_create(&self, name: &str, id: &str, header: bool, err: RbdError) -> Result<()> {
        if header {
            let _ = self.io.remove(&header_name(id)).await;
        }
        let _ = self.io.remove(&id_obj_name(name)).await;
        let _ = cls::dir_remove_image(name, id)
            .exec(&self.io, RBD_DIRECTORY)
            .await;
        Err(err)
    }

    /// Images of the pool/namespace as `rbd ls` lists them: format-1 names first (the
    /// `rbd_directory` TMAP, with an empty id), then format 2 (`dir_list`), by name.
    pub async fn list(&self) -> Result<Vec<ImageSpec>> {
        let mut out: Vec<ImageSpec> = self
            .list_v1()
            .await?
            .into_iter()
            .map(|name| ImageSpec {
                name,
                id: String::new(),
            })
            .collect();
        let mut after = String::new();
        loop {
            let b = match cls::dir_list(&after, 1024)
                .exec(&self.io, RBD_DIRECTORY)
                .await
            {
                Ok(b) => b,
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(e),
            };
            let m = cls::decode_dir_list(&b)?;
            let n = m.len();
            if let Some(last) = m.keys().next_back() {
                after = last.clone();
            }
            out.extend(m.into_iter().map(|(name, id)| ImageSpec { name, id }));
            if n < 1024 {
                break;
            }
        }
        Ok(out)
    }

    /// Names of the format-1 images: the keys of the TMAP in `rbd_directory`'s data
    /// (librbd `list_images` reads it with a plain read).
    pub async fn list_v1(&self) -> Result<Vec<String>> {
        match self.io.read_full(RBD_DIRECTORY).await {
            Ok(b) => crate::format1::decode_tmap_keys(&b),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Create format-1 image `name` (librbd `create_v1`, what `rbd create
    /// --image-format 1` does when `RBD_FORCE_ALLOW_V1` is set): the name into the
    /// `rbd_directory` TMAP, then the `<name>.rbd` header with block name
    /// `rb.<instance id>.<random>`. EEXIST if an image of either format has the name;
    /// EINVAL in a namespace (format 1 predates them) or for an order outside 12..=25.
    pub async fn create_v1(&self, name: &str, size: u64, order: Option<u8>) -> Result<()> {
        util::validate_name("image", name)?;
        if !self.io.namespace().is_empty() {
            return Err(RbdError::InvalidArgument(
                "format-1 images cannot be created in a namespace".into(),
            ));
        }
        let order = order.unwrap_or(22);
        if !(12..=25).contains(&order) {
            return Err(RbdError::InvalidArgument(format!(
                "order {order} out of range"
            )));
        }
        if self.image_id(name).await.is_ok() || self.is_format1(name).await? {
            return Err(RbdError::exists(format!("rbd image {name} already exists")));
        }
        validate_pool(&self.io).await?;
        let io = &self.io;
        io.operate_write(
            RBD_DIRECTORY,
            vec![OsdOp::tmap_update(Bytes::from(
                crate::format1::tmap_set_cmd(name),
            ))],
        )
        .await?;
        let mut r = [0u8; 4];
        let _ = getrandom::getrandom(&mut r);
        let extra = u32::from_le_bytes(r) % 0xffff_ffff;
        let block = crate::format1::block_name(io.rados().instance_id(), extra);
        let hdr = crate::format1::HeaderV1::encode_new(&block, order, size)?;
        // exclusive create: a header that appeared since the check is someone else's
        // image, whose directory entry must stay
        match io
            .operate_write(
                &crate::format1::header_name(name),
                vec![OsdOp::create(true), OsdOp::write_full(Bytes::from(hdr))],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_exists() => {
                Err(RbdError::exists(format!("rbd image {name} already exists")))
            }
            Err(e) => {
                let _ = self.tmap_rm(name).await;
                Err(e.into())
            }
        }
    }

    /// Rename format-1 image `src` (librbd `rename` for the old format): copy the
    /// `<name>.rbd` header to the new name (exclusive create), enter the new name and
    /// drop the old one in the `rbd_directory` TMAP, then remove the old header. The
    /// data objects keep their block name, so nothing else moves.
    async fn rename_v1(&self, src: &str, dst: &str) -> Result<()> {
        let io = &self.io;
        if self.image_id(dst).await.is_ok() || self.is_format1(dst).await? {
            return Err(RbdError::exists(format!("rbd image {dst} already exists")));
        }
        let (from, to) = (
            crate::format1::header_name(src),
            crate::format1::header_name(dst),
        );
        let hdr = io.read_full(&from).await?;
        // the header must be one we understand before it is copied
        crate::format1::HeaderV1::decode(&from, &hdr)?;
        match io
            .operate_write(&to, vec![OsdOp::create(true), OsdOp::write_full(hdr)])
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_exists() => {
                return Err(RbdError::exists(format!("rbd image {dst} already exists")))
            }
            Err(e) => return Err(e.into()),
        }
        let set = io
            .operate_write(
                RBD_DIRECTORY,
                vec![OsdOp::tmap_update(Bytes::from(
                    crate::format1::tmap_set_cmd(dst),
                ))],
            )
            .await;
        if let Err(e) = set {
            let _ = io.remove(&to).await;
            return Err(e.into());
        }
        self.tmap_rm(src).await?;
        io.remove(&from).await?;
        Ok(())
    }

    async fn tmap_rm(&self, name: &str) -> Result<()> {
        self.io
            .operate_write(
                RBD_DIRECTORY,
                vec![OsdOp::tmap_update(Bytes::from(
                    crate::format1::tmap_rm_cmd(name),
                ))],
            )
            .await?;
        Ok(())
    }

    /// Remove format-1 image `name` as librbd's `RemoveRequest` does for it: EBUSY
    /// while its header has watchers, ENOTEMPTY while it has snapshots; then every
    /// data object, the header, and the directory entry.
    async fn remove_v1(
        &self,
        name: &str,
        progress: &(impl Fn(u64, u64) + Send + Sync),
    ) -> Result<()> {
        let io = &self.io;
        let oid = crate::format1::header_name(name);
        if !io.list_watchers(&oid).await?.is_empty() {
            return Err(RbdError::busy("image still has watchers"));
        }
        let h = crate::format1::HeaderV1::decode(&oid, &io.read_full(&oid).await?)?;
        if !h.snaps.is_empty() {
            return Err(RbdError::refused(
                "image has snapshots - not removing",
                Errno::ENOTEMPTY,
            ));
        }
        let n = Layout::new(h.order, 0, 0).num_objects(h.size);
        let mut done = 0u64;
        for chunk in (0..n).collect::<Vec<_>>().chunks(16) {
            let futs: Vec<util::BoxFut<()>> = chunk
                .iter()
                .map(|&no| {
                    let io = io.clone();
                    let obj = crate::format1::data_object_name(&h.block_name, no);
                    Box::pin(async move {
                        match io.remove(&obj).await {
                            Ok(()) => Ok(()),
                            Err(e) if e.is_not_found() => Ok(()),
                            Err(e) => Err(e.into()),
                        }
                    }) as util::BoxFut<()>
                })
                .collect();
            util::run_all(futs, 16).await?;
            done += chunk.len() as u64;
            progress(done, n);
        }
        io.remove(&oid).await.gone_ok()?;
        match self.tmap_rm(name).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// True if `name` is a format-1 image (its `<name>.rbd` header exists).
    pub async fn is_format1(&self, name: &str) -> Result<bool> {
        match self.io.stat(&crate::format1::header_name(name)).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The id of image `name`.
    pub async fn image_id(&self, name: &str) -> Result<String> {
        match cls::get_id().exec(&self.io, &id_obj_name(name)).await {
            Ok(b) => Ok(cls::decode_string(&b)?),
            Err(e) if e.is_not_found() => {
                Err(RbdError::not_found(format!("image {name} does not exist")))
            }
            Err(e) => Err(e),
        }
    }

    /// Open image `name` for reading and writing.
    pub async fn open(&self, name: &str) -> Result<Image> {
        self.open_with(name, &OpenOptions::default()).await
    }

    /// Open image `name` read-only.
    pub async fn open_read_only(&self, name: &str) -> Result<Image> {
        self.open_with(
            name,
            &OpenOptions {
                read_only: true,
                ..Default::default()
            },
        )
        .await
    }

    /// Open image `name` read-only at snapshot `snap`.
    pub async fn open_snapshot(&self, name: &str, snap: &str) -> Result<Image> {
        self.open_with(
            name,
            &OpenOptions {
                read_only: true,
                snapshot: Some(snap.into()),
                ..Default::default()
            },
        )
        .await
    }

    /// Open image `name` with options.
    pub async fn open_with(&self, name: &str, opts: &OpenOptions) -> Result<Image> {
        let id = match self.image_id(name).await {
            Ok(id) => id,
            // librbd OpenRequest: no `rbd_id.<name>` → try the format-1 header
            Err(e) if e.errno() == Errno::ENOENT && self.is_format1(name).await? => {
                return Image::open_v1(&self.io, name, &self.with_defaults(opts)).await;
            }
            Err(e) => return Err(e),
        };
        Image::open_by_id(
            &self.io,
            &id,
            Some(name.to_string()),
            &self.with_defaults(opts),
        )
        .await
    }

    /// Open an image by id.
    pub async fn open_by_id(&self, id: &str, opts: &OpenOptions) -> Result<Image> {
        Image::open_by_id(&self.io, id, None, &self.with_defaults(opts)).await
    }

    fn with_defaults(&self, opts: &OpenOptions) -> OpenOptions {
        let mut o = opts.clone();
        if o.blocklist_expire_seconds == 0 {
            o.blocklist_expire_seconds = self.blocklist_expire_seconds;
        }
        if o.cache.is_none() {
            o.cache = self.cache.clone();
        }
        o
    }

    /// Rename an image (librbd `rename`: new id object, directory rename, old id object
    /// removed).
    pub async fn rename(&self, src: &str, dst: &str) -> Result<()> {
        util::validate_name("image", dst)?;
        let id = match self.image_id(src).await {
            Err(e) if e.is_not_found() && self.is_format1(src).await? => {
                return self.rename_v1(src, dst).await;
            }
            r => r?,
        };
        if self.io.stat(&id_obj_name(dst)).await.is_ok() || self.is_format1(dst).await? {
            return Err(RbdError::exists(format!("rbd image {dst} already exists")));
        }
        let io = &self.io;
        // copy the id object (it holds only the id)
        let data = io.read_full(&id_obj_name(src)).await?;
        io.operate_write(
            &id_obj_name(dst),
            vec![OsdOp::create(true), OsdOp::write_full(data)],
        )
        .await?;
        if let Err(e) = cls::dir_rename_image(src, dst, &id)
            .exec(io, RBD_DIRECTORY)
            .await
        {
            let _ = io.remove(&id_obj_name(dst)).await;
            return Err(e);
        }
        io.remove(&id_obj_name(src)).await?;
        // tell open handles (librbd sends HEADER_UPDATE after a rename)
        let msg =
            ceph_encoding::encode_to_vec(&crate::watch_notify::NotifyMessage::header_update());
        let _ = io
            .notify(&header_name(&id), &msg, crate::image::NOTIFY_TIMEOUT)
            .await;
        Ok(())
    }

    /// Remove an image like `rbd rm`: refused with EBUSY while it has watchers other
    /// than this client, ENOTEMPTY while it has snapshots, EMLINK in a group. The image
    /// goes through the trash (source REMOVING), its data objects, header, id object and
    /// directory entry are removed, and a clone is detached from its parent.
    pub async fn remove(&self, name: &str) -> Result<()> {
        self.remove_with_progress(name, |_, _| {}).await
    }

    /// [`Rbd::remove`] with progress (objects done, total).
    pub async fn remove_with_progress(
        &self,
        name: &str,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<()> {
        let io = &self.io;
        let id = match cls::dir_get_id(name).exec(io, RBD_DIRECTORY).await {
            Ok(b) => cls::decode_string(&b)?,
            Err(e) if e.is_not_found() => {
                if self.is_format1(name).await? {
                    return self.remove_v1(name, &progress).await;
                }
                // an aborted remove leaves the image in the trash with source REMOVING
                if let Some(id) = self.find_removing_trash_entry(name).await? {
                    return self.trash_remove_image(&id, &progress).await;
                }
                return Err(RbdError::not_found(format!("image {name} does not exist")));
            }
            Err(e) => return Err(e),
        };
        // pre-validate (librbd pre_remove_image)
        match self.pre_remove(&id).await {
            Ok(()) => {}
            Err(e) if e.errno() == ECHILD => {
                return Err(RbdError::refused(
                    "image has snapshots with linked clones - not removing",
                    Errno::ENOTEMPTY,
                ))
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        // move to the trash with source REMOVING
        let now = util::now();
        let spec = TrashImageSpec {
            source: trash_source::REMOVING,
            name: name.to_string(),
            deletion_time: now,
            deferment_end_time: now,
            state: trash_state::MOVING,
        };
        match cls::trash_add(&id, &spec).exec(io, RBD_TRASH).await {
            Ok(_) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(e),
        }
        io.remove(&id_obj_name(name)).await.gone_ok()?;
        cls::dir_remove_image(name, &id)
            .exec(io, RBD_DIRECTORY)
            .await
            .gone_ok()?;
        let _ = cls::trash_state_set(&id, trash_state::NORMAL, trash_state::MOVING)
            .exec(io, RBD_TRASH)
            .await;
        let r = self.trash_remove_image(&id, &progress).await;
        if let Err(e) = &r {
            let n = e.errno();
            if n == Errno::ENOTEMPTY || n == Errno::EBUSY || n == EMLINK {
                // best effort: put the image back where it was
                let _ = self.restore_after_failed_remove(&id, name).await;
            }
        }
        r
    }

    async fn find_removing_trash_entry(&self, name: &str) -> Result<Option<String>> {
        let b = match cls::trash_list("", 1024).exec(&self.io, RBD_TRASH).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(cls::decode_trash_list(&b)?
            .into_iter()
            .find(|(_, s)| s.name == name && s.source == trash_source::REMOVING)
            .map(|(id, _)| id))
    }

    async fn restore_after_failed_remove(&self, id: &str, name: &str) -> Result<()> {
        let io = &self.io;
        cls::trash_state_set(id, trash_state::RESTORING, trash_state::NORMAL)
            .exec(io, RBD_TRASH)
            .await
            .ok();
        io.operate_write(
            &id_obj_name(name),
            vec![OsdOp::create(true), cls::set_id(id).op()],
        )
        .await
        .ok();
        match cls::dir_add_image(name, id).exec(io, RBD_DIRECTORY).await {
            Ok(_) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(e),
        }
        cls::trash_remove(id).exec(io, RBD_TRASH).await.ok();
        Ok(())
    }

    /// Checks librbd's `PreRemoveRequest` makes: no user snapshots (trash snapshots
    /// without children are removed), no watchers but ours, not in a group.
    async fn pre_remove(&self, id: &str) -> Result<()> {
        let img = Image::open_by_id(
            &self.io,
            id,
            Some(String::new()),
            &OpenOptions {
                read_only: true,
                no_watch: true,
                ..Default::default()
            },
        )
        .await?;
        let st = img.state().await?;
        if st.h.features & features::MIGRATING != 0 {
            return Err(RbdError::busy("image in migration state - not removing"));
        }
        let mut trash_snaps = Vec::new();
        for s in &st.h.snaps {
            match s.namespace {
                SnapshotNamespace::Trash { .. } => trash_snaps.push(s.clone()),
                _ => {
                    return Err(RbdError::refused(
                        "image has snapshots - not removing",
                        Errno::ENOTEMPTY,
                    ))
                }
            }
        }
        // any watcher blocks (this check opens the image without a watch of its own)
        let w = img.watchers().await?;
        if !w.is_empty() {
            return Err(RbdError::busy("image has watchers - not removing"));
        }
        match cls::image_group_get()
            .exec(&self.io, &header_name(id))
            .await
        {
            Ok(b) => {
                if let Ok(g) = cls::decode::<cls::GroupSpec>(&b) {
                    if g.is_valid() {
                        return Err(RbdError::refused(
                            "image is in a group - not removing",
                            EMLINK,
                        ));
                    }
                }
            }
            Err(e) if e.is_not_found() || e.errno() == Errno::EOPNOTSUPP => {}
            Err(e) => return Err(e),
        }
        let mut ret = Ok(());
        for s in trash_snaps {
            if s.child_count > 0 {
                ret = Err(RbdError::refused(
                    "trashed snapshot still has clones",
                    ECHILD,
                ));
                continue;
            }
            crate::snap::remove_snapshot_by_id(&img, &st, s.id)
                .await
                .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })?;
        }
        ret
    }

    /// librbd `Trash::remove` + `image::RemoveRequest`.
    pub(crate) async fn trash_remove_image(
        &self,
        id: &str,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<()> {
        let io = &self.io;
        let spec: TrashImageSpec = match cls::trash_get(id).exec(io, RBD_TRASH).await {
            Ok(b) => cls::decode(&b)?,
            Err(e) => return Err(e),
        };
        if spec.state != trash_state::NORMAL && spec.state != trash_state::REMOVING {
            return Err(RbdError::busy("image is pending restoration"));
        }
        let _ = cls::trash_state_set(id, trash_state::REMOVING, trash_state::NORMAL)
            .exec(io, RBD_TRASH)
            .await;
        let r = self.remove_image_by_id(id, progress).await;
        if r.is_err() {
            let _ = cls::trash_state_set(id, trash_state::NORMAL, trash_state::REMOVING)
                .exec(io, RBD_TRASH)
                .await;
            return r;
        }
        match cls::trash_remove(id).exec(io, RBD_TRASH).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn remove_image_by_id(
        &self,
        id: &str,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<()> {
        let io = &self.io;
        let img = match Image::open_by_id(
            io,
            id,
            Some(String::new()),
            &OpenOptions {
                read_only: true,
                no_watch: true,
                ..Default::default()
            },
        )
        .await
        {
            Ok(i) => Some(i),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        if let Some(img) = img {
            self.pre_remove(id).await.map_err(|e| {
                if e.errno() == ECHILD {
                    RbdError::refused(
                        "image has snapshots with linked clones - not removing",
                        Errno::ENOTEMPTY,
                    )
                } else {
                    e
                }
            })?;
            let st = img.state().await?;
            // trim all data objects
            let n = st.h.layout.num_objects(st.h.size);
            crate::resize::remove_objects(&st, 0..n, progress).await?;
            // detach from the parent
            crate::clone::detach_child(&img, &st).await?;
        }
        io.remove(&header_name(id)).await.gone_ok()?;
        // object map objects (if a librbd image had one) and the id object were handled
        // by the trash move; nothing else to clean up
        let _ = io.remove(&format!("rbd_object_map.{id}")).await;
        Ok(())
    }

    /// Clone `parent_name@snap` (in this pool) into `child` in `child_rbd`'s pool
    /// (librbd `clone`).
    pub async fn clone_image(
        &self,
        parent_name: &str,
        snap: &str,
        child_rbd: &Rbd,
        child: &str,
        opts: &CloneOptions,
    ) -> Result<()> {
        crate::clone::clone(self, parent_name, snap, child_rbd, child, opts).await
    }

    /// Clones of `image@snap` (`rbd children`): clone-v2 children registered on the
    /// snapshot and clone-v1 children in every pool's `rbd_children`.
    pub async fn children(&self, image: &str, snap: &str) -> Result<Vec<ChildInfo>> {
        let img = self.open_read_only(image).await?;
        let r = crate::clone::list_children(&img, snap).await;
        let _ = img.close().await;
        r
    }

    /// Names of v1 children via `rbd_children` in this pool (raw).
    pub(crate) async fn v1_children(&self, parent: &ParentImageSpec) -> Result<Vec<String>> {
        match cls::get_children(parent).exec(&self.io, RBD_CHILDREN).await {
            Ok(b) => Ok(cls::decode_string_set(&b)?.into_iter().collect()),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Image metadata (`metadata_list`).
    pub async fn metadata(&self, image_id: &str) -> Result<BTreeMap<String, Vec<u8>>> {
        let mut all = BTreeMap::new();
        let mut after = String::new();
        loop {
            let b = match cls::metadata_list(&after, 1024)
                .exec(&self.io, &header_name(image_id))
                .await
            {
                Ok(b) => b,
                Err(e) if e.is_not_found() || e.errno() == Errno::EOPNOTSUPP => break,
                Err(e) => return Err(e),
            };
            let m = cls::decode_metadata_list(&b)?;
            let n = m.len();
            if let Some(k) = m.keys().next_back() {
                after = k.clone();
            }
            all.extend(m);
            if n < 1024 {
                break;
            }
        }
        Ok(all)
    }
}

/// Validation of a create request (librbd `validate_features`, `validate_order`, size).
pub(crate) fn validate_create(size: u64, order: u8, feats: u64) -> Result<()> {
    if size == 0 {
        return Err(RbdError::InvalidArgument(
            "image size must be greater than zero".into(),
        ));
    }
    if size > i64::MAX as u64 {
        return Err(RbdError::refused(
            format!("image size {size} is too large (at most {})", i64::MAX),
            Errno::EFBIG,
        ));
    }
    if !(12..=25).contains(&order) {
        return Err(RbdError::refused(
            "order must be in the range [12, 25]",
            Errno::EDOM,
        ));
    }
    if feats & !features::ALL != 0 {
        return Err(RbdError::UnsupportedFeatures {
            image: String::new(),
            mask: feats & !features::ALL,
            names: features::feature_names(feats & !features::ALL).join(", "),
            write: true,
        });
    }
    if feats & features::OPERATIONS != 0 {
        return Err(RbdError::InvalidArgument(
            "cannot use internally controlled features (operations)".into(),
        ));
    }
    if let Some(why) = features::missing_dependency(feats) {
        return Err(RbdError::InvalidArgument(why.into()));
    }
    let unsupported = feats & !features::CREATABLE;
    if unsupported != 0 {
        return Err(RbdError::UnsupportedFeatures {
            image: String::new(),
            mask: unsupported,
            names: features::feature_names(unsupported).join(", "),
            write: true,
        });
    }
    let _ = Layout::simple(order);
    Ok(())
}

/// librbd `ValidatePoolRequest`: make sure the pool is in self-managed snapshot mode and
/// supports overwrites; marks it with `rbd_info` = "overwrite validated".
pub(crate) async fn validate_pool(io: &IoCtx) -> Result<()> {
    const VALIDATED: &[u8] = b"overwrite validated";
    const VALIDATE: &[u8] = b"validate";
    let mut io = io.clone();
    io.set_namespace("");
    let mut need_snap = true;
    match io.read(RBD_INFO, 0, 0).await {
        Ok(b) if &b[..] == VALIDATED => return Ok(()),
        Ok(b) if &b[..] == VALIDATE => need_snap = false,
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    if need_snap {
        let snap = match io.selfmanaged_snap_create().await {
            Ok(s) => s,
            Err(e) if e.errno() == Errno::EINVAL => {
                return Err(RbdError::InvalidArgument(
                    "pool not configured for self-managed RBD snapshot support".into(),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let r = io
            .operate_write(
                RBD_INFO,
                vec![
                    OsdOp::create(true),
                    OsdOp::write(0, Bytes::from_static(VALIDATE)),
                ],
            )
            .await;
        if let Err(e) = io.selfmanaged_snap_remove(snap).await {
            debug!("failed to remove validation snapshot: {e}");
        }
        match r {
            Ok(_) => {}
            Err(e) if e.is_exists() => {}
            Err(e) if e.errno() == Errno::EOPNOTSUPP => {
                return Err(RbdError::InvalidArgument(
                    "pool missing required overwrite support".into(),
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    match io.write(RBD_INFO, 0, Bytes::from_static(VALIDATED)).await {
        Ok(()) => Ok(()),
        Err(e) if e.errno() == Errno::EOPNOTSUPP => Err(RbdError::InvalidArgument(
            "pool missing required overwrite support".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The `ChildImageSpec` of an image.
pub(crate) fn child_spec(img: &Image) -> ChildImageSpec {
    ChildImageSpec {
        pool_id: img.ioctx().pool_id(),
        pool_namespace: img.ioctx().namespace().to_string(),
        image_id: img.id().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_validation() {
        assert_eq!(
            validate_create(0, 22, 1).unwrap_err().errno(),
            Errno::EINVAL
        );
        assert_eq!(
            validate_create(1 << 30, 11, 1).unwrap_err().errno(),
            Errno::EDOM
        );
        assert_eq!(
            validate_create(u64::MAX, 22, 1).unwrap_err().errno(),
            Errno::EFBIG
        );
        assert_eq!(
            validate_create(1 << 30, 22, 1 << 40).unwrap_err().errno(),
            Errno::ENOSYS
        );
        assert_eq!(
            validate_create(1 << 30, 22, features::OBJECT_MAP)
                .unwrap_err()
                .errno(),
            Errno::EINVAL
        );
        assert_eq!(
            validate_create(1 << 30, 22, features::OPERATIONS)
                .unwrap_err()
                .errno(),
            Errno::EINVAL
        );
        assert!(validate_create(1 << 30, 22, features::LAYERING).is_ok());
    }
}
