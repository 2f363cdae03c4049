//! A blocking wrapper for callers without an async runtime of their own.

use crate::error::Result;
use crate::image::{Image, SnapInfo};
use crate::info::ImageInfo;
use bytes::Bytes;
use tokio::runtime::Handle;

/// An [`Image`] driven by blocking calls on a tokio runtime `Handle`.
///
/// Every method blocks the calling thread until the operation completes; it must not be
/// called from inside the runtime's own worker threads (that would panic). Several
/// threads may use clones of the same `BlockingImage` at once: their requests run
/// concurrently on the runtime.
///
/// ```no_run
/// # fn f(image: ceph_rbd::Image, rt: &tokio::runtime::Runtime) -> ceph_rbd::Result<()> {
/// let img = ceph_rbd::BlockingImage::new(image, rt.handle().clone());
/// img.write(0, bytes::Bytes::from_static(b"hello"))?;
/// assert_eq!(&img.read(0, 5)?[..], b"hello");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct BlockingImage {
    image: Image,
    rt: Handle,
}

impl BlockingImage {
    /// Wrap an open image.
    pub fn new(image: Image, rt: Handle) -> Self {
        BlockingImage { image, rt }
    }

    /// The runtime the calls block on.
    pub(crate) fn rt(&self) -> &Handle {
        &self.rt
    }

    /// The async image underneath.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// See [`Image::read`].
    pub fn read(&self, off: u64, len: u64) -> Result<Bytes> {
        self.rt.block_on(self.image.read(off, len))
    }

    /// See [`Image::write`].
    pub fn write(&self, off: u64, data: Bytes) -> Result<()> {
        self.rt.block_on(self.image.write(off, data))
    }

    /// See [`Image::discard`].
    pub fn discard(&self, off: u64, len: u64) -> Result<()> {
        self.rt.block_on(self.image.discard(off, len))
    }

    /// See [`Image::write_zeroes`].
    pub fn write_zeroes(&self, off: u64, len: u64) -> Result<()> {
        self.rt.block_on(self.image.write_zeroes(off, len))
    }

    /// See [`Image::compare_and_write`].
    pub fn compare_and_write(&self, off: u64, cmp: Bytes, data: Bytes) -> Result<()> {
        self.rt
            .block_on(self.image.compare_and_write(off, cmp, data))
    }

    /// See [`Image::flush`].
    pub fn flush(&self) -> Result<()> {
        self.rt.block_on(self.image.flush())
    }

    /// See [`Image::size`].
    pub fn size(&self) -> Result<u64> {
        self.rt.block_on(self.image.size())
    }

    /// See [`Image::resize`].
    pub fn resize(&self, size: u64, allow_shrink: bool) -> Result<()> {
        self.rt.block_on(self.image.resize(size, allow_shrink))
    }

    /// See [`Image::info`].
    pub fn info(&self) -> Result<ImageInfo> {
        self.rt.block_on(self.image.info())
    }

    /// See [`Image::snap_create`].
    pub fn snap_create(&self, name: &str) -> Result<u64> {
        self.rt.block_on(self.image.snap_create(name))
    }

    /// See [`Image::snap_list`].
    pub fn snap_list(&self) -> Result<Vec<SnapInfo>> {
        self.rt.block_on(self.image.snap_list())
    }

    /// See [`Image::close`].
    pub fn close(self) -> Result<()> {
        self.rt.block_on(self.image.close())
    }
}
