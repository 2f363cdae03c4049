//! RBD (RADOS Block Device) images, format 2, over the pure-Rust RADOS client.
//!
//! What it is: librbd's on-disk layout and protocol, spoken natively — the same objects
//! (`rbd_directory`, `rbd_id.<name>`, `rbd_header.<id>`, `rbd_data.<id>.<%016x>`,
//! `rbd_children`, `rbd_trash`), the same cls_rbd / cls_lock calls and the same header
//! watch/notify messages, so images made here and by librbd (`rbd`, QEMU, the kernel) are
//! interchangeable. It covers pool init, create/list/open/info/rename/resize/remove,
//! byte-granular I/O (read, write, discard, write-zeroes, compare-and-write) with many
//! requests in flight, snapshots (create, remove incl. the clone-v2 snapshot trash,
//! rename, rollback, protect, limit, open at a snapshot), layering (clone v1 and v2,
//! reads through parent chains, copy-up, flatten, children) and snapshot diffs with the
//! `rbd diff v1` export/import stream (and merging two such streams), copies
//! ([`Image::copy`], [`Image::deep_copy`] with snapshots and the clone parent kept),
//! [`Image::sparsify`], pool statistics, image and pool metadata ([`meta`], incl. the
//! `conf_` configuration overrides), the trash ([`trash`]), namespaces, advisory locks
//! ([`advisory`]), consistency groups (`rbd group`, with group snapshots), the watcher check, and librbd's default features (61): the exclusive
//! lock with cooperative hand-over to and from librbd clients, the object map and
//! fast-diff.
//!
//! Writes follow librbd's default write-around policy ([`cache`]): acknowledged once sent,
//! at most `rbd_cache_max_dirty` bytes in flight, overlapping writes and reads kept in
//! order. **Durability contract**: a write that returned an error was never sent and
//! will not land later; a write that returned success is committed only once a later
//! [`Image::flush`] (or [`Image::close`]) succeeds, and if it failed, that flush or
//! close returns its error (once). Until a handle's first flush it writes through
//! (`rbd_cache_writethrough_until_flush`, librbd's library default), and
//! `rbd_cache = false` writes through always ([`CacheConfig`]). Dropping a handle
//! without `close` lets in-flight writes finish in the background, unreported.
//!
//! What it is not: no client-side data cache (no ObjectCacher: `rbd_cache_policy =
//! writeback` writes through), no journaling / mirroring implementation
//! (images using them are refused for writing, with an error naming the features;
//! read-only opening works where it is safe), no encryption, no live
//! migration; maintenance requests proxied by librbd to the lock owner are declined
//! (librbd then takes the lock and runs them itself).
//!
//! Format-1 images ([`format1`]: `<name>.rbd` headers, `rb.0.*` data objects) are
//! listed, opened, read, written, discarded, exported, created (as `rbd create
//! --image-format 1` with `RBD_FORCE_ALLOW_V1`) and removed; snapshots are listed,
//! read, created and removed (cls_rbd's old `snap_add` / `snap_remove`), while snapshot
//! rename / rollback / limit, resize and rename are refused with EOPNOTSUPP here.
//!
//! Entry points: [`Rbd`] (a pool + namespace) and [`Image`] (an open image, async);
//! [`BlockingImage`] and [`BlockingRbd`] for callers without a runtime; [`ImageStream`] (tokio
//! `AsyncRead`/`AsyncWrite`/`AsyncSeek`) and [`BlockingCursor`] (`std::io`) for streaming;
//! [`cls`] for the typed cls_rbd calls.
//!
//! ```no_run
//! # async fn demo(rados: ceph_rados::Rados) -> ceph_rbd::Result<()> {
//! use ceph_rbd::{CreateOptions, Rbd};
//! let rbd = Rbd::open_pool(&rados, "kubernetes_data").await?;
//! rbd.create("vol", 10 << 30, &CreateOptions::default()).await?;
//! let img = rbd.open("vol").await?;
//! img.write(4096, bytes::Bytes::from_static(b"hello")).await?;
//! assert_eq!(&img.read(4096, 5).await?[..], b"hello");
//! println!("{}", img.info().await?.to_json_string());
//! img.close().await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod advisory;
mod blocking;
mod blocking_rbd;
pub mod cache;
mod clone;
pub mod cls;
mod copy;
mod diff;
mod error;
mod exclusive_lock;
pub mod export;
pub mod features;
pub mod format1;
mod group;
mod image;
mod info;
mod io;
pub mod layout;
pub mod meta;
mod namespace;
pub mod object_map;
mod object_map_ops;
mod proxy;
mod rbd;
mod resize;
pub mod scheduler;
mod snap;
mod stream;
mod tools;
pub mod trash;
pub mod util;
pub mod watch_notify;

pub use blocking::BlockingImage;
pub use blocking_rbd::BlockingRbd;
pub use cache::{CacheConfig, CachePolicy, IoScheduler};
pub use clone::auto_clone_format;
pub use copy::{CopyOptions, DEFAULT_SPARSE_SIZE};
pub use diff::{merge_diffs, DiffExtent, DiffFormat, DIFF_V1_BANNER};
pub use error::{RbdError, Result, EILSEQ};
pub use group::{member_snap_name, GroupImageInfo, ImageGroup};
pub use image::{Image, OpenOptions, SnapInfo};
pub use info::{ImageInfo, ParentInfo};
pub use rbd::{ChildInfo, CloneFormat, CloneOptions, CreateOptions, ImageSpec, Rbd};
pub use stream::{BlockingCursor, ImageStream};
pub use tools::{BenchIoType, BenchOptions, BenchPattern, BenchReport, PoolStats};
pub use trash::{TrashEntry, TrashSource};
