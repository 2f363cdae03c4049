//! The image as one regular file (`image`) in a private FUSE mount, the backing file of
//! a loop device.
//!
//! Why FUSE + loop: hosts (and containers) without the `rbd` and `nbd` kernel modules
//! still have both. The loop device is attached with direct I/O, so the kernel sends
//! its requests to us asynchronously (FUSE_ASYNC_DIO) and we answer them out of order
//! from tokio tasks: many requests are in flight at once. The file is opened with
//! FOPEN_DIRECT_IO (no second page cache under the loop device's own) and
//! FOPEN_PARALLEL_DIRECT_WRITES (no inode lock serialising writes).
//!
//! The loop driver turns REQ_OP_DISCARD into `fallocate(PUNCH_HOLE|KEEP_SIZE)` and
//! REQ_OP_WRITE_ZEROES into `fallocate(ZERO_RANGE)` or `PUNCH_HOLE` (linux:
//! drivers/block/loop.c `lo_fallocate`); both map to the image's zeroing discard, after
//! which the range reads as zeros (librbd's discard with `rbd_skip_partial_discard`
//! would not guarantee that, ours does).

use bytes::Bytes;
use ceph_rbd::{Image, RbdError};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyWrite, Request, WriteFlags,
};
use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The one file's name in the mount.
pub const FILE_NAME: &str = "image";
const ROOT: u64 = 1;
const FILE: u64 = 2;
/// Attributes are cached briefly; a resize invalidates them explicitly.
const TTL: Duration = Duration::from_secs(1);

// fallocate(2) modes (linux: include/uapi/linux/falloc.h)
const FALLOC_FL_KEEP_SIZE: i32 = 0x01;
const FALLOC_FL_PUNCH_HOLE: i32 = 0x02;
const FALLOC_FL_ZERO_RANGE: i32 = 0x10;

/// Requests still being served (the daemon waits for zero before flushing and closing).
#[derive(Default)]
pub struct Inflight(AtomicUsize);

impl Inflight {
    /// Number of requests not yet answered.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

struct Guard(Arc<Inflight>);

impl Guard {
    fn new(i: &Arc<Inflight>) -> Guard {
        i.0.fetch_add(1, Ordering::AcqRel);
        Guard(i.clone())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The FUSE filesystem serving one image.
pub struct ImageFs {
    img: Image,
    rt: tokio::runtime::Handle,
    /// Current image size (the daemon updates it when the header changes).
    pub size: Arc<AtomicU64>,
    read_only: bool,
    /// Requests in progress.
    pub inflight: Arc<Inflight>,
    started: SystemTime,
    /// `-o notrim`: discards and zeroing write zeros and keep the space (a thick image
    /// stays thick), as krbd's notrim keeps discards away from the image.
    pub notrim: bool,
    /// `-o queue_depth=N`: the most requests the kernel keeps in flight (FUSE
    /// max_background), 256 by default.
    pub queue_depth: u16,
}

/// Zeros written by `notrim` zeroing, a chunk at a time.
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

fn errno(e: &RbdError) -> Errno {
    Errno::from_i32(e.errno().0)
}

impl ImageFs {
    /// Serve `img` (of `size` bytes) on runtime `rt`.
    pub fn new(img: Image, rt: tokio::runtime::Handle, size: u64, read_only: bool) -> ImageFs {
        ImageFs {
            img,
            rt,
            size: Arc::new(AtomicU64::new(size)),
            read_only,
            inflight: Arc::new(Inflight::default()),
            started: SystemTime::now(),
            notrim: false,
            queue_depth: 256,
        }
    }

    fn attr(&self, ino: u64) -> FileAttr {
        let (kind, perm, size, nlink) = if ino == ROOT {
            (FileType::Directory, 0o700, 0, 2)
        } else {
            let perm = if self.read_only { 0o400 } else { 0o600 };
            (
                FileType::RegularFile,
                perm,
                self.size.load(Ordering::Acquire),
                1,
            )
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: self.started,
            mtime: self.started,
            ctime: self.started,
            crtime: self.started,
            kind,
            perm,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    /// Clip `[off, off+len)` to the image; `None` if it starts past the end.
    fn clip(&self, off: u64, len: u64) -> Option<u64> {
        let size = self.size.load(Ordering::Acquire);
        (off <= size).then(|| len.min(size - off))
    }
}

impl Filesystem for ImageFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // async direct I/O: the loop device's requests come in parallel
        let _ = config.add_capabilities(InitFlags::FUSE_ASYNC_DIO);
        let qd = self.queue_depth.max(1);
        let _ = config.set_max_background(qd);
        let _ = config.set_congestion_threshold((qd - qd / 4).max(1));
        let _ = config.set_max_write(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent.0 == ROOT && name == FILE_NAME {
            reply.entry(&TTL, &self.attr(FILE), Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match ino.0 {
            ROOT | FILE => reply.attr(&TTL, &self.attr(ino.0)),
            _ => reply.error(Errno::ENOENT),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // the size is the image's: `rbd resize` changes it, not truncate(2)
        match size {
            Some(s) if s != self.size.load(Ordering::Acquire) => reply.error(Errno::EPERM),
            _ => reply.attr(&TTL, &self.attr(ino.0)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if ino.0 != FILE {
            return reply.error(Errno::EISDIR);
        }
        let writing = flags.0 & 0b11 != 0; // O_WRONLY or O_RDWR
        if writing && self.read_only {
            return reply.error(Errno::EROFS);
        }
        reply.opened(
            FileHandle(0),
            FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES,
        );
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(len) = self.clip(offset, size as u64) else {
            return reply.data(&[]);
        };
        if len == 0 {
            return reply.data(&[]);
        }
        let img = self.img.clone();
        let g = Guard::new(&self.inflight);
        self.rt.spawn(async move {
            match img.read(offset, len).await {
                Ok(b) => reply.data(&b),
                Err(e) => {
                    eprintln!("rbd-rs device: read {offset}~{len}: {e}");
                    reply.error(errno(&e))
                }
            }
            drop(g);
        });
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        if self.read_only {
            return reply.error(Errno::EROFS);
        }
        let n = data.len() as u64;
        match self.clip(offset, n) {
            Some(len) if len == n => {}
            _ => return reply.error(Errno::ENOSPC),
        }
        // the one copy: the request buffer belongs to the session loop
        let buf = Bytes::copy_from_slice(data);
        let img = self.img.clone();
        let g = Guard::new(&self.inflight);
        self.rt.spawn(async move {
            match img.write(offset, buf).await {
                Ok(()) => reply.written(n as u32),
                Err(e) => {
                    eprintln!("rbd-rs device: write {offset}~{n}: {e}");
                    reply.error(errno(&e))
                }
            }
            drop(g);
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.flush_reply(reply);
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.flush_reply(reply);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        if self.read_only {
            return reply.error(Errno::EROFS);
        }
        let zero = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) != 0;
        if mode & !(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) != 0 {
            return reply.error(Errno::EOPNOTSUPP);
        }
        let Some(len) = self.clip(offset, length) else {
            return reply.error(Errno::EINVAL);
        };
        if !zero {
            // preallocation: a thin image has nothing to reserve
            return if len == length || mode & FALLOC_FL_KEEP_SIZE != 0 {
                reply.ok()
            } else {
                reply.error(Errno::EOPNOTSUPP)
            };
        }
        let img = self.img.clone();
        let g = Guard::new(&self.inflight);
        let punch = mode & FALLOC_FL_PUNCH_HOLE != 0;
        let notrim = self.notrim;
        self.rt.spawn(async move {
            let r = if notrim {
                write_zeros(&img, offset, len).await
            } else if punch {
                img.discard(offset, len).await
            } else {
                img.write_zeroes(offset, len).await
            };
            match r {
                Ok(()) => reply.ok(),
                Err(e) => {
                    eprintln!("rbd-rs device: fallocate {mode:#x} {offset}~{len}: {e}");
                    reply.error(errno(&e))
                }
            }
            drop(g);
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino.0 != ROOT {
            return reply.error(Errno::ENOTDIR);
        }
        let entries = [
            (ROOT, FileType::Directory, "."),
            (ROOT, FileType::Directory, ".."),
            (FILE, FileType::RegularFile, FILE_NAME),
        ];
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

impl ImageFs {
    fn flush_reply(&self, reply: ReplyEmpty) {
        let img = self.img.clone();
        let g = Guard::new(&self.inflight);
        self.rt.spawn(async move {
            match img.flush().await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            }
            drop(g);
        });
    }
}

/// Zero `[off, off+len)` with real zeros (`-o notrim`): nothing is deallocated.
async fn write_zeros(img: &Image, off: u64, len: u64) -> ceph_rbd::Result<()> {
    let mut done = 0;
    while done < len {
        let n = (len - done).min(ZEROS.len() as u64);
        img.write(off + done, bytes::Bytes::from_static(&ZEROS[..n as usize]))
            .await?;
        done += n;
    }
    Ok(())
}
