//! `rbd-rs nbd serve POOL/IMAGE[@SNAP] [--bind ADDR:PORT | --socket PATH] [--read-only]`:
//! the image as an NBD export (name = the image spec) for qemu, libnbd and the Linux
//! nbd client. The protocol is [`proto`] (sans I/O); this is its tokio driver: one task
//! reads and parses requests, each request runs as its own task on the image (many in
//! flight, answered as they complete, out of order), one writer task sends replies
//! (header, then a READ's data buffer as it came from the OSDs, no copy).
//!
//! The first line on stdout is `listening on ADDR` (the real port when `:0` was asked
//! for). SIGTERM/SIGINT: stop accepting, close the image (watch released).

pub mod netlink;
pub mod proto;

use super::args::{image_spec, SnapPresence, Spec, SpecCheck, Which};
use super::device::spec_string;
use super::{open_image, out, Ctx, Fail, Mode, R};
use bytes::{Bytes, BytesMut};
use ceph_rbd::Image;
use proto::{
    block_status_reply, nbd_errno, reply_header, Cmd, Event, Export, Request, Server, CMD_FLAG_FUA,
    CMD_FLAG_REQ_ONE, STATE_HOLE, STATE_ZERO,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// `nbd serve`.
pub async fn serve(c: &mut Ctx) -> R {
    let mut spec = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        SnapPresence::Permitted,
        SpecCheck::None,
        &Spec::default(),
    )?;
    if spec.pool.is_empty() {
        spec.pool = c.default_pool();
    }
    let read_only = c.args.flag("read-only") || !spec.snap.is_empty();
    let bind = c.args.get("bind").map(str::to_string);
    let socket = c.args.get("socket").map(str::to_string);
    if bind.is_some() && socket.is_some() {
        return Err(Fail::einval(
            "rbd-rs: --bind and --socket exclude each other",
        ));
    }
    let rbd = c.rbd(&spec).await?;
    let mode = if read_only {
        Mode::ReadOnly
    } else {
        Mode::ReadWrite
    };
    let img = open_image(&rbd, &spec.image, &spec.snap, mode).await?;
    let name = spec_string(&spec);
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Fail::new(format!("rbd-rs: signal handler: {e}"), 5))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Fail::new(format!("rbd-rs: signal handler: {e}"), 5))?;
    let listener = match socket {
        Some(path) => {
            let _ = std::fs::remove_file(&path);
            let l = UnixListener::bind(&path)
                .map_err(|e| Fail::new(format!("rbd-rs: bind {path}: {e}"), 98))?;
            out(&format!("listening on {path}\n"));
            Listener::Unix(l)
        }
        None => {
            let addr = bind.unwrap_or_else(|| "127.0.0.1:10809".into());
            let l = TcpListener::bind(&addr)
                .await
                .map_err(|e| Fail::new(format!("rbd-rs: bind {addr}: {e}"), 98))?;
            let local = l.local_addr().map(|a| a.to_string()).unwrap_or(addr);
            out(&format!("listening on {local}\n"));
            Listener::Tcp(l)
        }
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            conn = listener.accept() => {
                let (r, w) = match conn {
                    Ok(x) => x,
                    Err(e) => { eprintln!("rbd-rs nbd: accept: {e}"); continue; }
                };
                let size = match img.size().await {
                    Ok(s) => s,
                    Err(e) => { eprintln!("rbd-rs nbd: size: {e}"); continue; }
                };
                let export = Export { name: name.clone(), size, read_only };
                let img = img.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(img, export, r, w).await {
                        eprintln!("rbd-rs nbd: connection: {e}");
                    }
                });
            }
        }
    }
    let _ = img.flush().await;
    let _ = img.close().await;
    Ok(())
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

type Half = (
    Box<dyn AsyncRead + Send + Unpin>,
    Box<dyn AsyncWrite + Send + Unpin>,
);

impl Listener {
    async fn accept(&self) -> std::io::Result<Half> {
        Ok(match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                let _ = s.set_nodelay(true);
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Listener::Unix(l) => {
                let (s, _) = l.accept().await?;
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
        })
    }
}

/// Serve one client until it disconnects.
pub(crate) async fn connection(
    img: Image,
    export: Export,
    r: Box<dyn AsyncRead + Send + Unpin>,
    w: Box<dyn AsyncWrite + Send + Unpin>,
) -> std::io::Result<()> {
    let size = Arc::new(AtomicU64::new(export.size));
    let read_only = export.read_only;
    connection_with(img, Server::new(export), size, read_only, r, w).await
}

/// Serve one connection whose protocol state starts as `srv` (a handshake to run, or
/// already in transmission for the kernel's socket). `size` is the export's size as the
/// client knows it: the kernel's device follows image resizes, so it can change.
pub(crate) async fn connection_with(
    img: Image,
    mut srv: Server,
    size: Arc<AtomicU64>,
    read_only: bool,
    mut r: Box<dyn AsyncRead + Send + Unpin>,
    w: Box<dyn AsyncWrite + Send + Unpin>,
) -> std::io::Result<()> {
    let (tx, rx) = mpsc::unbounded_channel::<(Bytes, Bytes)>();
    let writer = tokio::spawn(write_loop(w, rx));
    let mut buf = BytesMut::with_capacity(1 << 20);
    let mut structured = false;
    let mut allocation = false;
    let mut tasks = tokio::task::JoinSet::new();
    'conn: loop {
        let greeting = srv.take_output();
        if !greeting.is_empty() && tx.send((greeting, Bytes::new())).is_err() {
            break;
        }
        if buf.capacity() - buf.len() < 64 << 10 {
            buf.reserve(1 << 20);
        }
        if r.read_buf(&mut buf).await? == 0 {
            break;
        }
        let events = srv
            .feed(&mut buf)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        for ev in events {
            match ev {
                Event::Transmission => {
                    structured = srv.structured();
                    allocation = srv.allocation();
                }
                Event::Close => break 'conn,
                Event::Request(req) if req.cmd == Cmd::Disconnect => break 'conn,
                Event::Request(req) => {
                    let img = img.clone();
                    let tx = tx.clone();
                    let size = size.load(Ordering::Acquire);
                    tasks.spawn(async move {
                        if req.cmd == Cmd::BlockStatus && allocation {
                            let reply = match block_status(&img, &req, size).await {
                                Ok(d) => block_status_reply(&req, &d),
                                Err(errno) => reply_header(structured, &req, errno, 0),
                            };
                            let _ = tx.send((reply, Bytes::new()));
                            return;
                        }
                        let (errno, data) = execute(&img, &req, size, read_only).await;
                        let h = reply_header(structured, &req, errno, data.len());
                        let _ = tx.send((h, data));
                    });
                }
            }
        }
        // reap finished request tasks so the set does not grow
        while tasks.try_join_next().is_some() {}
    }
    // requests already received are answered before the connection closes
    while tasks.join_next().await.is_some() {}
    let tail = srv.take_output();
    if !tail.is_empty() {
        let _ = tx.send((tail, Bytes::new()));
    }
    drop(tx);
    let _ = writer.await;
    Ok(())
}

async fn write_loop(
    mut w: Box<dyn AsyncWrite + Send + Unpin>,
    mut rx: mpsc::UnboundedReceiver<(Bytes, Bytes)>,
) {
    while let Some((h, d)) = rx.recv().await {
        if w.write_all(&h).await.is_err() || (!d.is_empty() && w.write_all(&d).await.is_err()) {
            return;
        }
        // batch what is queued before flushing the socket
        if rx.is_empty() && w.flush().await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

/// Run one request; (NBD errno, READ data).
async fn execute(img: &Image, req: &Request, size: u64, read_only: bool) -> (u32, Bytes) {
    let end = req.offset.checked_add(req.len as u64);
    let in_range = end.is_some_and(|e| e <= size);
    let writes = matches!(req.cmd, Cmd::Write | Cmd::Trim | Cmd::WriteZeroes);
    if writes && read_only {
        return (1, Bytes::new()); // EPERM
    }
    if matches!(
        req.cmd,
        Cmd::Read | Cmd::Write | Cmd::Trim | Cmd::WriteZeroes
    ) && !in_range
    {
        return (if req.cmd == Cmd::Write { 28 } else { 22 }, Bytes::new());
    }
    // the advertised maximum block size bounds READ buffers too (WRITE payloads are
    // bounded by the decoder): a client must not make us allocate gigabytes per request
    if req.cmd == Cmd::Read && req.len > proto::MAX_REQUEST {
        return (22, Bytes::new()); // EINVAL, as the NBD spec asks past the maximum
    }
    let r = match req.cmd {
        Cmd::Read => match img.read(req.offset, req.len as u64).await {
            Ok(b) => return (0, b),
            Err(e) => Err(e),
        },
        Cmd::Write => img.write(req.offset, req.data.clone()).await,
        Cmd::Trim => img.discard(req.offset, req.len as u64).await,
        Cmd::WriteZeroes => img.write_zeroes(req.offset, req.len as u64).await,
        Cmd::Flush => img.flush().await,
        Cmd::Disconnect => Ok(()),
        // BLOCK_STATUS without `base:allocation` selected
        Cmd::BlockStatus | Cmd::Other(_) => return (22, Bytes::new()),
    };
    let r = match r {
        Ok(()) if writes && req.flags & CMD_FLAG_FUA != 0 => img.flush().await,
        r => r,
    };
    match r {
        Ok(()) => (0, Bytes::new()),
        Err(e) => {
            eprintln!("rbd-rs nbd: {:?} {}~{}: {e}", req.cmd, req.offset, req.len);
            (nbd_errno(e.errno().0), Bytes::new())
        }
    }
}

/// `base:allocation` for `[offset, offset+len)`: where the image (a clone: with its
/// parent's data) has objects with data, and holes reading as zeros in between, from
/// the same per-object extents `rbd diff` reports. Err = NBD errno.
async fn block_status(img: &Image, req: &Request, size: u64) -> Result<Vec<(u32, u32)>, u32> {
    let off = req.offset;
    let end = match off.checked_add(req.len as u64) {
        Some(e) if e <= size && req.len > 0 => e,
        _ => return Err(22),
    };
    let mut ext = img
        .diff_iterate(None, off, end - off, true, false)
        .await
        .map_err(|e| {
            eprintln!("rbd-rs nbd: block status {off}~{}: {e}", req.len);
            nbd_errno(e.errno().0)
        })?;
    ext.sort_by_key(|e| e.offset);
    let hole = STATE_HOLE | STATE_ZERO;
    let mut runs: Vec<(u32, u32)> = Vec::new();
    let mut push = |len: u64, state: u32| {
        // len <= req.len, a u32
        match runs.last_mut() {
            Some((l, s)) if *s == state => *l += len as u32,
            _ => runs.push((len as u32, state)),
        }
    };
    let mut pos = off;
    for e in ext {
        let s = e.offset.max(pos);
        let t = (e.offset + e.length).min(end);
        if s >= t {
            continue;
        }
        if s > pos {
            push(s - pos, hole);
        }
        push(t - s, if e.exists { 0 } else { hole });
        pos = t;
    }
    if pos < end {
        push(end - pos, hole);
    }
    if req.flags & CMD_FLAG_REQ_ONE != 0 {
        runs.truncate(1);
    }
    Ok(runs)
}
