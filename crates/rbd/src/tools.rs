//! Whole-image helpers the `rbd` tool offers: export, import, du, bench
//! (ceph: src/tools/rbd/action/{Export,Import,DiskUsage,Bench}.cc).

use crate::error::{RbdError, Result};
use crate::image::Image;
use crate::rbd::{CreateOptions, Rbd};
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Kind of I/O for [`Image::bench`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchIoType {
    /// Reads.
    Read,
    /// Writes.
    Write,
}

/// Offset pattern for [`Image::bench`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchPattern {
    /// Sequential.
    Seq,
    /// Uniformly random, aligned to the I/O size.
    Rand,
}

/// `rbd bench` parameters.
#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// Read or write.
    pub io_type: BenchIoType,
    /// Bytes per I/O.
    pub io_size: u64,
    /// I/Os in flight.
    pub io_threads: usize,
    /// Total bytes.
    pub io_total: u64,
    /// Offsets.
    pub pattern: BenchPattern,
}

/// `rbd bench` results.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchReport {
    /// I/Os done.
    pub ops: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl BenchReport {
    /// I/Os per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    /// Bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn io_err(e: std::io::Error) -> RbdError {
    RbdError::Stream(e.to_string())
}

impl Image {
    /// Bytes allocated in the image (at the open snapshot), counting whole objects that
    /// exist, like `rbd du` without fast-diff; `from`: only what changed since that
    /// snapshot.
    pub async fn disk_usage(&self, from: Option<&str>) -> Result<u64> {
        let size = self.size().await?;
        let ext = self.diff_iterate(from, 0, size, false, true).await?;
        Ok(ext.iter().filter(|e| e.exists).map(|e| e.length).sum())
    }

    /// Write the whole image (at the open snapshot) to `w` (`rbd export`). Reads run
    /// ahead in object-sized chunks, a few at a time. `progress(done, total)`.
    pub async fn export<W: AsyncWrite + Unpin>(
        &self,
        w: &mut W,
        progress: impl Fn(u64, u64),
    ) -> Result<()> {
        let size = self.size().await?;
        let chunk = self.layout().await?.period().max(1 << 20);
        let mut off = 0u64;
        let mut pending: std::collections::VecDeque<tokio::task::JoinHandle<Result<Bytes>>> =
            Default::default();
        let mut next = 0u64;
        while off < size {
            while pending.len() < 4 && next < size {
                let l = chunk.min(size - next);
                let img = self.clone();
                let o = next;
                pending.push_back(tokio::spawn(async move { img.read(o, l).await }));
                next += l;
            }
            let d = pending
                .pop_front()
                .expect("a read is pending")
                .await
                .map_err(|e| RbdError::Stream(format!("read task: {e}")))??;
            w.write_all(&d).await.map_err(io_err)?;
            off += d.len() as u64;
            progress(off, size);
            if d.is_empty() {
                break;
            }
        }
        w.flush().await.map_err(io_err)?;
        Ok(())
    }

    /// `rbd bench`: run I/O against the image and report throughput. Writes write a
    /// fixed pattern.
    pub async fn bench(&self, o: BenchOptions) -> Result<BenchReport> {
        if o.io_size == 0 || o.io_threads == 0 {
            return Err(RbdError::InvalidArgument(
                "io size and threads must be positive".into(),
            ));
        }
        if o.io_type == BenchIoType::Write {
            self.check_writable()?;
        }
        let size = self.size().await?;
        if o.io_size > size {
            return Err(RbdError::InvalidArgument(
                "io size is larger than the image".into(),
            ));
        }
        let slots = size / o.io_size;
        let n_ops = o.io_total / o.io_size;
        let issued = Arc::new(AtomicU64::new(0));
        let data = Bytes::from(vec![0x5au8; o.io_size as usize]);
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for t in 0..o.io_threads {
            let img = self.clone();
            let issued = issued.clone();
            let data = data.clone();
            set.spawn(async move {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
                loop {
                    let i = issued.fetch_add(1, Ordering::Relaxed);
                    if i >= n_ops {
                        return Ok::<(), RbdError>(());
                    }
                    let slot = match o.pattern {
                        BenchPattern::Seq => i % slots,
                        BenchPattern::Rand => {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            x % slots
                        }
                    };
                    let off = slot * o.io_size;
                    match o.io_type {
                        BenchIoType::Read => {
                            img.read(off, o.io_size).await?;
                        }
                        BenchIoType::Write => img.write(off, data.clone()).await?,
                    }
                }
            });
        }
        // every worker is awaited before an error is returned (no write of ours may land
        // after the caller heard "failed"); the others stop issuing at once
        let mut first_err = None;
        while let Some(r) = set.join_next().await {
            let r = r
                .map_err(|e| RbdError::Stream(format!("bench task: {e}")))
                .and_then(|r| r);
            if let Err(e) = r {
                issued.store(n_ops, Ordering::Relaxed);
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok(BenchReport {
            ops: n_ops,
            bytes: n_ops * o.io_size,
            elapsed: start.elapsed(),
        })
    }
}

/// `rbd pool stats`: images of the pool/namespace and of its trash (librbd
/// `Pool::get_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Images in the directory.
    pub images: u64,
    /// Sum of their head sizes.
    pub image_provisioned_bytes: u64,
    /// Their snapshots (every namespace).
    pub image_snapshots: u64,
    /// Images in the trash.
    pub trash_images: u64,
    /// Sum of their head sizes.
    pub trash_provisioned_bytes: u64,
    /// Their snapshots.
    pub trash_snapshots: u64,
}

impl Rbd {
    /// Count images, provisioned bytes and snapshots of the directory and the trash, from
    /// one header read per image (`get_size` + `get_snapcontext`); headers that vanished
    /// meanwhile count as images without bytes (ceph: src/librbd/api/Pool.cc).
    pub async fn pool_stats(&self) -> Result<PoolStats> {
        let ids: Vec<String> = self.list().await?.into_iter().map(|s| s.id).collect();
        let trash: Vec<String> = match self.trash_list().await {
            Ok(t) => t.into_iter().map(|t| t.id).collect(),
            Err(e) if e.errno() == ceph_rados::Errno::EOPNOTSUPP => Vec::new(),
            Err(e) => return Err(e),
        };
        let (b, s) = self.sum_headers(&ids).await?;
        let (tb, ts) = self.sum_headers(&trash).await?;
        Ok(PoolStats {
            images: ids.len() as u64,
            image_provisioned_bytes: b,
            image_snapshots: s,
            trash_images: trash.len() as u64,
            trash_provisioned_bytes: tb,
            trash_snapshots: ts,
        })
    }

    async fn sum_headers(&self, ids: &[String]) -> Result<(u64, u64)> {
        let futs: Vec<crate::util::BoxFut<(u64, u64)>> = ids
            .iter()
            .map(|id| {
                let io = self.ioctx().clone();
                let oid = crate::util::header_name(id);
                Box::pin(async move {
                    let ops = vec![
                        crate::cls::get_size(ceph_rados::NOSNAP).op(),
                        crate::cls::get_snapcontext().op(),
                    ];
                    match io.operate(&oid, ops).await {
                        Ok(r) => {
                            let out = |i: usize| r.get(i).map(|o| &o.outdata[..]).unwrap_or(&[]);
                            let (_, size) = crate::cls::decode_get_size(out(0))?;
                            let snapc = crate::cls::decode_snapcontext_reply(out(1))?;
                            Ok((size, snapc.snaps.len() as u64))
                        }
                        Err(e) if e.is_not_found() => Ok((0, 0)),
                        Err(e) => Err(e.into()),
                    }
                }) as crate::util::BoxFut<(u64, u64)>
            })
            .collect();
        let v = crate::util::run_all(futs, 10).await?;
        Ok(v.iter().fold((0, 0), |a, x| (a.0 + x.0, a.1 + x.1)))
    }

    /// Create image `name` from a stream (`rbd import`). With `size` unknown (a pipe)
    /// the image grows as data arrives. All-zero chunks are skipped (sparse import).
    pub async fn import<R: AsyncRead + Unpin>(
        &self,
        r: &mut R,
        name: &str,
        size: Option<u64>,
        opts: &CreateOptions,
    ) -> Result<Image> {
        let order = opts.order.unwrap_or(22);
        let chunk = 1u64 << order;
        let initial = size.unwrap_or(chunk).max(1);
        self.create(name, initial, opts).await?;
        let img = self.open(name).await?;
        let mut off = 0u64;
        let mut cur_size = initial;
        let mut inflight: std::collections::VecDeque<tokio::task::JoinHandle<Result<()>>> =
            Default::default();
        loop {
            let mut buf = vec![0u8; chunk as usize];
            let mut filled = 0usize;
            while filled < buf.len() {
                let n = r.read(&mut buf[filled..]).await.map_err(io_err)?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            buf.truncate(filled);
            if size.is_none() && off + filled as u64 > cur_size {
                // wait for writes in flight before growing the header
                while let Some(h) = inflight.pop_front() {
                    h.await
                        .map_err(|e| RbdError::Stream(format!("write task: {e}")))??;
                }
                cur_size = (off + filled as u64)
                    .max(cur_size * 2)
                    .min(off + 64 * chunk);
                img.resize(cur_size, false).await?;
            }
            if buf.iter().any(|b| *b != 0) {
                let i = img.clone();
                let o = off;
                inflight.push_back(tokio::spawn(
                    async move { i.write(o, Bytes::from(buf)).await },
                ));
                if inflight.len() >= 8 {
                    let h = inflight.pop_front().expect("in flight");
                    h.await
                        .map_err(|e| RbdError::Stream(format!("write task: {e}")))??;
                }
            }
            off += filled as u64;
        }
        while let Some(h) = inflight.pop_front() {
            h.await
                .map_err(|e| RbdError::Stream(format!("write task: {e}")))??;
        }
        if size.is_none() && cur_size != off.max(1) {
            img.resize(off.max(1), true).await?;
        }
        Ok(img)
    }
}
