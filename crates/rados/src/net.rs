//! The thin tokio layer under a msgr2 session: one task per TCP connection that only moves
//! bytes between the socket and the sans-IO [`Connection`], sends keepalives, and notices a
//! silent or dead peer. Whoever owns the session (monitor client, objecter) talks to it
//! through a [`ConnHandle`] and receives [`ConnEvent`]s tagged with the connection id.

use crate::config::DialHook;
use crate::error::Error;
use bytes::Bytes;
use ceph_encoding::UTime;
use ceph_msgr2::{AuthClient, Connection, ConnectionConfig, Event, Message};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, trace};

/// Commands from the session owner to the connection task.
#[derive(Debug)]
pub(crate) enum ConnCmd {
    Send(Message),
}

/// What a connection task reports.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// Handshake done. `my_ip`: our IP as the peer saw it (HELLO), part of the address
    /// the cluster knows us by (blocklist entries, watchers).
    Ready {
        global_id: u64,
        my_ip: Option<std::net::IpAddr>,
    },
    Message(Message),
    Closed(Error),
}

/// Timing knobs for a connection task.
#[derive(Debug, Clone)]
pub(crate) struct DriverOpts {
    /// TCP connect plus handshake must finish within this.
    pub handshake_timeout: Duration,
    /// How often to send KEEPALIVE2 once ready.
    pub keepalive_interval: Duration,
    /// Drop the session if nothing arrived for this long.
    pub idle_timeout: Duration,
    /// Dial somewhere else than the peer's address (tests: the fault proxy).
    pub dial: Option<DialHook>,
}

/// Handle to a connection task. Dropping it closes the connection.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    pub id: u64,
    tx: mpsc::UnboundedSender<ConnCmd>,
}

impl ConnHandle {
    /// Queue a message; false if the connection is gone.
    pub fn send(&self, m: Message) -> bool {
        self.tx.send(ConnCmd::Send(m)).is_ok()
    }
}

pub(crate) type EventTx = mpsc::UnboundedSender<(u64, ConnEvent)>;

/// Where a connection task hands its events: a channel to the owner's task (the monitor
/// client), or the owner's state itself (the objecter handles a reply on the session's
/// task and completes the caller from there, with no task in between: see
/// `osd::Driver`).
pub(crate) trait EventSink: Send + Sync + 'static {
    /// Hand over one event of connection `id`; false once the owner is gone (the task
    /// then ends, closing the connection).
    fn deliver(&self, id: u64, ev: ConnEvent) -> bool;
}

impl EventSink for EventTx {
    fn deliver(&self, id: u64, ev: ConnEvent) -> bool {
        self.send((id, ev)).is_ok()
    }
}

/// Start a connection task to `addr`.
pub(crate) fn spawn(
    id: u64,
    addr: SocketAddr,
    cfg: ConnectionConfig,
    auth: Box<dyn AuthClient>,
    events: impl EventSink,
    opts: DriverOpts,
) -> ConnHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let err = match run(id, addr, cfg, auth, &events, rx, opts).await {
            Ok(()) => return,
            Err(e) => e,
        };
        debug!(id, %addr, error = %err, "connection closed");
        events.deliver(id, ConnEvent::Closed(err));
    });
    ConnHandle { id, tx }
}

async fn run(
    id: u64,
    addr: SocketAddr,
    cfg: ConnectionConfig,
    auth: Box<dyn AuthClient>,
    events: &impl EventSink,
    mut rx: mpsc::UnboundedReceiver<ConnCmd>,
    opts: DriverOpts,
) -> Result<(), Error> {
    let deadline = Instant::now() + opts.handshake_timeout;
    let dial = opts.dial.as_ref().map_or(addr, |h| h.dial(addr));
    let stream = match tokio::time::timeout(opts.handshake_timeout, TcpStream::connect(dial)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(Error::Io(std::io::Error::new(
                e.kind(),
                format!("connect to {addr}: {e}"),
            )))
        }
        Err(_) => return Err(Error::Timeout(format!("TCP connect to {addr}"))),
    };
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let mut conn = Connection::new(cfg, auth);

    let mut ticker = tokio::time::interval(opts.keepalive_interval.min(Duration::from_secs(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_rx = Instant::now();
    let mut last_ka = Instant::now();
    // What is being written: the chunks the connection handed out and how far we are.
    // Writing is one more branch of the select below, never awaited on its own: a peer
    // that stops reading (full socket buffer) must not stop the reads, the keepalives and
    // the idle timeout, which is what tears such a session down.
    let mut lowat = RecvLowat::new();
    let mut out: Vec<Bytes> = Vec::new();
    let (mut out_i, mut out_off) = (0usize, 0usize);
    loop {
        skip_written(&out, &mut out_i, &mut out_off);
        if out_i >= out.len() && conn.has_transmit() {
            out = conn.poll_transmit();
            (out_i, out_off) = (0, 0);
            skip_written(&out, &mut out_i, &mut out_off);
        }
        let writing = out_i < out.len();
        lowat.update(rd.as_ref(), conn.receive_wanted());
        tokio::select! {
            r = rd.read_buf(conn.prepare_read(SMALL_READ)) => {
                let n = r?;
                if n == 0 {
                    return Err(Error::Io(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        format!("{addr} closed the connection"),
                    )));
                }
                last_rx = Instant::now();
                conn.process_received()?;
                while let Some(ev) = conn.poll_event() {
                    let ev = match ev {
                        Event::Ready { ident, global_id, my_addr, mode } => {
                            debug!(id, %addr, ?mode, global_id, server = %ident.addrs, ?my_addr, "session ready");
                            ConnEvent::Ready {
                                global_id,
                                my_ip: my_addr.and_then(|a| a.addr).map(|a| a.ip()),
                            }
                        }
                        Event::Message(m) => {
                            trace!(id, ty = ?m.header.ty, "message in");
                            ConnEvent::Message(m)
                        }
                        Event::KeepaliveAck(_) => continue,
                    };
                    if !events.deliver(id, ev) {
                        return Ok(());
                    }
                }
            }
            r = write_some(&mut wr, &out, out_i, out_off), if writing => {
                let mut n = r?;
                if n == 0 {
                    return Err(Error::Io(std::io::ErrorKind::WriteZero.into()));
                }
                while n > 0 {
                    let left = out[out_i].len() - out_off;
                    if n < left {
                        out_off += n;
                        n = 0;
                    } else {
                        n -= left;
                        out_i += 1;
                        out_off = 0;
                    }
                }
            }
            cmd = rx.recv() => {
                match cmd {
                    Some(ConnCmd::Send(m)) => conn.send_message(m),
                    None => return Ok(()),
                }
                // Batch whatever else is queued into the same write.
                while let Ok(ConnCmd::Send(m)) = rx.try_recv() {
                    conn.send_message(m);
                }
            }
            _ = ticker.tick() => {
                let now = Instant::now();
                conn.release_idle_buffers();
                if now.duration_since(last_rx) >= LOWAT_PATIENCE {
                    lowat.relax(rd.as_ref());
                }
                if !conn.is_ready() && now > deadline {
                    return Err(Error::Timeout(format!("msgr2 handshake with {addr}")));
                }
                if conn.is_ready() && now.duration_since(last_ka) >= opts.keepalive_interval {
                    conn.send_keepalive(UTime::from_system(SystemTime::now()));
                    last_ka = now;
                }
                if now.duration_since(last_rx) > opts.idle_timeout {
                    return Err(Error::Timeout(format!("{addr} silent for {:?}", opts.idle_timeout)));
                }
            }
        }
    }
}

/// Room for one socket read between frames (control frames, small replies, the preamble of
/// a large one). The rest of a large frame is read into a buffer reserved at its final size
/// once its preamble is known (`Connection::prepare_read`), so a 4 MiB reply is neither
/// regrown nor copied mid-frame.
const SMALL_READ: usize = 64 * 1024;

/// The socket's receive low-water mark (`SO_RCVLOWAT`) follows the frame being received:
/// while more than [`LOWAT_MIN`] bytes of it are missing, the socket reports readable only
/// once that many (at most [`LOWAT_MAX`]) have arrived, else after every byte.
///
/// Why: reading a 4 MiB reply as it trickles in woke this task every few dozen KiB (8,448
/// `epoll_wait`s for 4 GiB against librbd's 1,959), and on loopback each wake-up is paid by
/// the sending OSD (`try_to_wake_up` in its `sendmsg`). With the mark, 4 MiB reads took
/// 10% less OSD CPU and 17% less of ours, and ran 15% faster (docs/performance.md). Frames
/// under `LOWAT_MIN` (every 4 KiB op) never change it, so cost no system call.
///
/// Never more than the rest of the frame, which the peer is bound to send: a mark the
/// peer might never reach would stall the session until its idle timeout. An error, a
/// hang-up or a reset wakes the reader whatever the mark. Used on Linux 5.7 and later
/// only, where the kernel also wakes the reader under receive-memory pressure (v5.7,
/// "tcp: fix SO_RCVLOWAT possible hangs under high mem pressure") and grows the receive
/// buffer to the mark (v4.18); `CEPH_RS_RCVLOWAT=0` turns it off.
///
/// A slow link (under a mark's worth of bytes per second) would see no reads for a long
/// time, and the idle timeout counts from the last read: after [`LOWAT_PATIENCE`] without
/// one the mark drops to one byte for the rest of that frame.
struct RecvLowat {
    on: bool,
    cur: usize,
    /// The current frame is read byte by byte (see [`RecvLowat::relax`]).
    relaxed: bool,
}

const LOWAT_PATIENCE: Duration = Duration::from_secs(1);

const LOWAT_MIN: usize = 128 * 1024;
const LOWAT_MAX: usize = 1024 * 1024;

// nix names no `SO_RCVLOWAT` option; its public macro for such options defines one (the
// `setsockopt` call it wraps is nix's code, not ours).
use nix::libc;
use nix::{setsockopt_impl, sockopt_impl};
sockopt_impl!(
    RcvLowatOpt,
    SetOnly,
    libc::SOL_SOCKET,
    libc::SO_RCVLOWAT,
    usize
);

impl RecvLowat {
    fn new() -> Self {
        RecvLowat {
            on: lowat_supported(),
            cur: 1,
            relaxed: false,
        }
    }

    /// Nothing read for a while: back to one byte until the frame is complete.
    fn relax(&mut self, sock: &TcpStream) {
        if self.on && self.cur > 1 {
            self.relaxed = true;
            self.set(sock, 1);
        }
    }

    /// Set the mark for a frame with `wanted` bytes still to come (0: between frames).
    fn update(&mut self, sock: &TcpStream, wanted: usize) {
        if !self.on {
            return;
        }
        if wanted < LOWAT_MIN {
            self.relaxed = false;
        }
        let mark = if wanted >= LOWAT_MIN && !self.relaxed {
            wanted.min(LOWAT_MAX)
        } else {
            1
        };
        self.set(sock, mark);
    }

    fn set(&mut self, sock: &TcpStream, mark: usize) {
        if mark == self.cur {
            return;
        }
        if let Err(e) = nix::sys::socket::setsockopt(sock, RcvLowatOpt, &mark) {
            // leave the socket at the kernel's default for good
            debug!(error = %e, "SO_RCVLOWAT refused; reading without it");
            let _ = nix::sys::socket::setsockopt(sock, RcvLowatOpt, &1);
            self.on = false;
        }
        self.cur = mark;
    }
}

/// Linux 5.7 or later (see [`RecvLowat`]), unless `CEPH_RS_RCVLOWAT=0`.
fn lowat_supported() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        if std::env::var("CEPH_RS_RCVLOWAT").is_ok_and(|v| v == "0") {
            return false;
        }
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|r| kernel_at_least(&r, (5, 7)))
            .unwrap_or(false)
    })
}

/// Whether a kernel release string ("6.1.0-18-amd64") is at least `min` (major, minor).
fn kernel_at_least(release: &str, min: (u32, u32)) -> Option<bool> {
    let mut it = release.trim().split(['.', '-']);
    let major: u32 = it.next()?.parse().ok()?;
    let minor: u32 = it.next()?.parse().ok()?;
    Some((major, minor) >= min)
}

/// Most slices handed to one `writev` (Linux accepts 1024).
const MAX_IOVECS: usize = 64;

/// Step over finished (and empty) chunks, so a write never starts with an empty slice
/// (the kernel would report 0 bytes written, which reads as a dead socket).
fn skip_written(chunks: &[Bytes], i: &mut usize, off: &mut usize) {
    while *i < chunks.len() && *off == chunks[*i].len() {
        *i += 1;
        *off = 0;
    }
}

/// One vectored write of what is left of `chunks` from chunk `i`, byte `off`: frame
/// heads, 4 MiB data segments (shared with the caller, never copied) and epilogues leave
/// in one `writev`. Cancel-safe (dropped before completion, nothing was written), so it
/// can sit in a `select!` beside the reads and timers.
async fn write_some(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    chunks: &[Bytes],
    i: usize,
    off: usize,
) -> std::io::Result<usize> {
    let mut iov = Vec::with_capacity((chunks.len() - i).min(MAX_IOVECS));
    iov.push(IoSlice::new(&chunks[i][off..]));
    iov.extend(
        chunks[i + 1..]
            .iter()
            .filter(|c| !c.is_empty())
            .take(MAX_IOVECS - 1)
            .map(|c| IoSlice::new(c)),
    );
    wr.write_vectored(&iov).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `rx` turns readable within 200 ms.
    async fn short(rx: &TcpStream) -> bool {
        tokio::time::timeout(Duration::from_millis(200), rx.readable())
            .await
            .is_ok()
    }

    /// The mark on a real loopback socket: data short of it does not wake the reader,
    /// relaxing (or reaching it) does, and the end of a frame lowers it again.
    #[tokio::test]
    async fn low_water_mark_wakes_the_reader_only_when_reached_or_relaxed() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut tx = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (rx, _) = l.accept().await.unwrap();
        // tokio reports a new socket readable until a read says otherwise
        assert_eq!(
            rx.try_read(&mut [0u8; 16]).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock
        );
        assert!(!short(&rx).await, "readable with nothing sent");
        // on regardless of the kernel check and CEPH_RS_RCVLOWAT: the test never skips
        let mut lw = RecvLowat {
            on: true,
            cur: 1,
            relaxed: false,
        };
        // 4 MiB still to come: the mark is 1 MiB, 100 KiB do not wake the reader
        lw.update(&rx, 4 << 20);
        assert_eq!(lw.cur, LOWAT_MAX);
        tx.write_all(&vec![7u8; 100 << 10]).await.unwrap();
        assert!(!short(&rx).await, "woken below the mark");
        // a slow link: relaxed, the bytes there wake it
        lw.relax(&rx);
        assert_eq!(lw.cur, 1);
        assert!(short(&rx).await, "not woken after relaxing");
        // the same frame stays relaxed; a frame's end clears that, the next one raises it
        lw.update(&rx, 3 << 20);
        assert_eq!(lw.cur, 1);
        lw.update(&rx, 0);
        lw.update(&rx, 200 << 10);
        assert_eq!(lw.cur, 200 << 10);
        // small frames never touch it
        lw.update(&rx, 4096);
        assert_eq!(lw.cur, 1);
    }

    #[test]
    fn kernel_releases() {
        assert_eq!(kernel_at_least("6.1.0-18-amd64\n", (5, 7)), Some(true));
        assert_eq!(kernel_at_least("5.7.0", (5, 7)), Some(true));
        assert_eq!(kernel_at_least("5.4.0-150-generic", (5, 7)), Some(false));
        assert_eq!(
            kernel_at_least("4.18.0-553.el8_10.x86_64", (5, 7)),
            Some(false)
        );
        assert_eq!(kernel_at_least("6.18.44-fc-v1252", (5, 7)), Some(true));
        assert_eq!(kernel_at_least("garbage", (5, 7)), None);
    }
}
