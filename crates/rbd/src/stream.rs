//! Positioned and streaming I/O on an image for embedders: a block-device server (FUSE,
//! NBD), a copy tool, anything that speaks `std::io` or tokio's I/O traits.
//!
//! - [`Image`] itself is the positioned async handle (`read(off, len)`, `write(off,
//!   data)`, `flush`, `discard`, `write_zeroes`); [`Image::read_into`] and
//!   [`Image::write_from`] add the slice forms.
//! - [`ImageStream`]: a cursor implementing tokio's `AsyncRead`, `AsyncWrite` and
//!   `AsyncSeek` (so `tokio::io::copy`, `BufReader`, codecs work on an image).
//! - [`BlockingImage`] gains `read_at`/`write_at` (like `std::os::unix::fs::FileExt`) and
//!   [`BlockingCursor`] implements `std::io::{Read, Write, Seek}`.
//!
//! Copies: reads arrive from the OSDs in one `Bytes` per request; [`Image::read`] hands
//! that buffer over as is (zero copies), the slice/trait forms copy it once into the
//! caller's buffer. Writes given as `Bytes` ([`Image::write`], [`ImageStream::write_bytes`])
//! go to the messenger without a copy; the `&[u8]` forms copy once (the borrow cannot
//! outlive the call). The image is a fixed-size device: reads stop at its end (0 bytes,
//! EOF) and writes past it fail (`ENOSPC`, like a block device), neither extends it.

use crate::blocking::BlockingImage;
use crate::error::{RbdError, Result};
use crate::image::Image;
use bytes::Bytes;
use std::future::Future;
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

fn io_err(e: RbdError) -> io::Error {
    io::Error::from_raw_os_error(e.errno().0)
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

/// Where a seek lands, given the image size; `EINVAL` before 0 (lseek's rule).
fn seek_target(pos: u64, size: u64, to: SeekFrom) -> io::Result<u64> {
    let (base, delta) = match to {
        SeekFrom::Start(n) => return Ok(n),
        SeekFrom::Current(d) => (pos, d),
        SeekFrom::End(d) => (size, d),
    };
    base.checked_add_signed(delta)
        .ok_or_else(|| io::Error::from_raw_os_error(22))
}

impl Image {
    /// Read into `buf` at `off`; returns the bytes read (fewer only at the image's end).
    pub async fn read_into(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        let size = self.size().await?;
        let n = (buf.len() as u64).min(size.saturating_sub(off)) as usize;
        if n == 0 {
            return Ok(0);
        }
        let b = self.read(off, n as u64).await?;
        buf[..b.len()].copy_from_slice(&b);
        Ok(b.len())
    }

    /// Write `buf` at `off` (copied once; use [`Image::write`] with `Bytes` to avoid it).
    pub async fn write_from(&self, off: u64, buf: &[u8]) -> Result<()> {
        self.write(off, Bytes::copy_from_slice(buf)).await
    }
}

impl BlockingImage {
    /// `pread`: read into `buf` at `off`; 0 at the end of the image.
    pub fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        self.rt()
            .block_on(self.image().read_into(off, buf))
            .map_err(io_err)
    }

    /// `pwrite`: write all of `buf` at `off` (`ENOSPC` past the end).
    pub fn write_at(&self, buf: &[u8], off: u64) -> io::Result<usize> {
        let size = self.size().map_err(io_err)?;
        if off.saturating_add(buf.len() as u64) > size {
            return Err(enospc());
        }
        self.rt()
            .block_on(self.image().write_from(off, buf))
            .map_err(io_err)?;
        Ok(buf.len())
    }

    /// A `std::io::{Read, Write, Seek}` cursor at offset 0.
    pub fn cursor(&self) -> BlockingCursor {
        BlockingCursor {
            img: self.clone(),
            pos: 0,
        }
    }
}

/// A blocking cursor over an image: `std::io::Read + Write + Seek`.
#[derive(Debug, Clone)]
pub struct BlockingCursor {
    img: BlockingImage,
    pos: u64,
}

impl BlockingCursor {
    /// Current position.
    pub fn position(&self) -> u64 {
        self.pos
    }
}

impl io::Read for BlockingCursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.img.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl io::Write for BlockingCursor {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.img.write_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.img.flush().map_err(io_err)
    }
}

impl io::Seek for BlockingCursor {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let size = self.img.size().map_err(io_err)?;
        self.pos = seek_target(self.pos, size, to)?;
        Ok(self.pos)
    }
}

type Op<T> = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

/// The operation an [`ImageStream`] has in flight (the traits poll one at a time).
enum Pending {
    None,
    Read(Op<Bytes>),
    Write(Op<()>, usize),
    Flush(Op<()>),
    Seek(Op<u64>, SeekFrom),
}

/// A cursor over an image implementing tokio's `AsyncRead`, `AsyncWrite` and
/// `AsyncSeek`. One request at a time per stream (the traits' contract); open several
/// streams, or use [`Image`]'s positioned calls, for parallel I/O.
pub struct ImageStream {
    img: Image,
    pos: u64,
    pending: Pending,
    seek_result: Option<io::Result<u64>>,
}

impl std::fmt::Debug for ImageStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStream")
            .field("img", &self.img)
            .field("pos", &self.pos)
            .finish()
    }
}

impl ImageStream {
    /// A stream at offset 0.
    pub fn new(img: Image) -> ImageStream {
        ImageStream {
            img,
            pos: 0,
            pending: Pending::None,
            seek_result: None,
        }
    }

    /// The image underneath.
    pub fn image(&self) -> &Image {
        &self.img
    }

    /// Current position.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Write a `Bytes` at the position without copying it, and advance.
    pub async fn write_bytes(&mut self, data: Bytes) -> Result<()> {
        let n = data.len() as u64;
        self.img.write(self.pos, data).await?;
        self.pos += n;
        Ok(())
    }

    /// Read up to `len` bytes at the position as one `Bytes` (no copy), and advance.
    pub async fn read_bytes(&mut self, len: u64) -> Result<Bytes> {
        let size = self.img.size().await?;
        let len = len.min(size.saturating_sub(self.pos));
        if len == 0 {
            return Ok(Bytes::new());
        }
        let b = self.img.read(self.pos, len).await?;
        self.pos += b.len() as u64;
        Ok(b)
    }
}

impl AsyncRead for ImageStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !matches!(this.pending, Pending::Read(_)) {
            let img = this.img.clone();
            let (pos, want) = (this.pos, buf.remaining() as u64);
            this.pending = Pending::Read(Box::pin(async move {
                let size = img.size().await?;
                let n = want.min(size.saturating_sub(pos));
                if n == 0 {
                    return Ok(Bytes::new());
                }
                img.read(pos, n).await
            }));
        }
        let Pending::Read(op) = &mut this.pending else {
            unreachable!()
        };
        let r = ready!(op.as_mut().poll(cx));
        this.pending = Pending::None;
        let b = r.map_err(io_err)?;
        let n = b.len().min(buf.remaining());
        buf.put_slice(&b[..n]);
        this.pos += n as u64;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ImageStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if !matches!(this.pending, Pending::Write(..)) {
            let img = this.img.clone();
            let pos = this.pos;
            let data = Bytes::copy_from_slice(buf);
            let n = buf.len();
            this.pending = Pending::Write(
                Box::pin(async move {
                    let size = img.size().await?;
                    if pos.saturating_add(data.len() as u64) > size {
                        return Err(RbdError::refused(
                            "write past the end of the image",
                            ceph_rados::Errno(28),
                        ));
                    }
                    img.write(pos, data).await
                }),
                n,
            );
        }
        let Pending::Write(op, n) = &mut this.pending else {
            unreachable!()
        };
        let n = *n;
        let r = ready!(op.as_mut().poll(cx));
        this.pending = Pending::None;
        r.map_err(io_err)?;
        this.pos += n as u64;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !matches!(this.pending, Pending::Flush(_)) {
            let img = this.img.clone();
            this.pending = Pending::Flush(Box::pin(async move { img.flush().await }));
        }
        let Pending::Flush(op) = &mut this.pending else {
            unreachable!()
        };
        let r = ready!(op.as_mut().poll(cx));
        this.pending = Pending::None;
        Poll::Ready(r.map_err(io_err))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl AsyncSeek for ImageStream {
    fn start_seek(mut self: Pin<&mut Self>, to: SeekFrom) -> io::Result<()> {
        let this = &mut *self;
        if !matches!(this.pending, Pending::None) {
            return Err(io::Error::other("another operation is in progress"));
        }
        match to {
            SeekFrom::End(_) => {
                let img = this.img.clone();
                this.pending = Pending::Seek(Box::pin(async move { img.size().await }), to);
            }
            _ => this.seek_result = Some(seek_target(this.pos, 0, to)),
        }
        Ok(())
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = &mut *self;
        if let Pending::Seek(op, to) = &mut this.pending {
            let to = *to;
            let r = ready!(op.as_mut().poll(cx));
            this.pending = Pending::None;
            this.seek_result = Some(
                r.map_err(io_err)
                    .and_then(|size| seek_target(this.pos, size, to)),
            );
        }
        match this.seek_result.take() {
            Some(Ok(p)) => {
                this.pos = p;
                Poll::Ready(Ok(p))
            }
            Some(Err(e)) => Poll::Ready(Err(e)),
            None => Poll::Ready(Ok(this.pos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_targets() {
        assert_eq!(seek_target(5, 100, SeekFrom::Start(7)).unwrap(), 7);
        assert_eq!(seek_target(5, 100, SeekFrom::Current(-5)).unwrap(), 0);
        assert_eq!(seek_target(5, 100, SeekFrom::End(-1)).unwrap(), 99);
        assert_eq!(seek_target(5, 100, SeekFrom::End(10)).unwrap(), 110);
        assert_eq!(
            seek_target(5, 100, SeekFrom::Current(-6))
                .unwrap_err()
                .raw_os_error(),
            Some(22)
        );
    }
}
