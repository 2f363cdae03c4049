//! The thin tokio layer under a msgr2 session: one task per TCP connection that only moves
//! bytes between the socket and the sans-IO [`Connection`], sends keepalives, and notices a
//! silent or dead peer. Whoever owns the session (monitor client, objecter) talks to it
//! through a [`ConnHandle`] and receives [`ConnEvent`]s tagged with the connection id.

use crate::error::Error;
use bytes::Bytes;
use ceph_encoding::UTime;
use ceph_msgr2::{AuthClient, Connection, ConnectionConfig, Event, Message};
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
    Ready { global_id: u64 },
    Message(Message),
    Closed(Error),
}

/// Timing knobs for a connection task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DriverOpts {
    /// TCP connect plus handshake must finish within this.
    pub handshake_timeout: Duration,
    /// How often to send KEEPALIVE2 once ready.
    pub keepalive_interval: Duration,
    /// Drop the session if nothing arrived for this long.
    pub idle_timeout: Duration,
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

/// Start a connection task to `addr`.
pub(crate) fn spawn(
    id: u64,
    addr: SocketAddr,
    cfg: ConnectionConfig,
    auth: Box<dyn AuthClient>,
    events: EventTx,
    opts: DriverOpts,
) -> ConnHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let err = match run(id, addr, cfg, auth, &events, rx, opts).await {
            Ok(()) => return,
            Err(e) => e,
        };
        debug!(id, %addr, error = %err, "connection closed");
        let _ = events.send((id, ConnEvent::Closed(err)));
    });
    ConnHandle { id, tx }
}

async fn run(
    id: u64,
    addr: SocketAddr,
    cfg: ConnectionConfig,
    auth: Box<dyn AuthClient>,
    events: &EventTx,
    mut rx: mpsc::UnboundedReceiver<ConnCmd>,
    opts: DriverOpts,
) -> Result<(), Error> {
    let deadline = Instant::now() + opts.handshake_timeout;
    let stream = match tokio::time::timeout(opts.handshake_timeout, TcpStream::connect(addr)).await
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
    flush(&mut conn, &mut wr).await?;

    let mut ticker = tokio::time::interval(opts.keepalive_interval.min(Duration::from_secs(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_rx = Instant::now();
    let mut last_ka = Instant::now();
    loop {
        tokio::select! {
            r = read_into(&mut rd, conn.receive_buffer()) => {
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
                            ConnEvent::Ready { global_id }
                        }
                        Event::Message(m) => {
                            trace!(id, ty = ?m.header.ty, "message in");
                            ConnEvent::Message(m)
                        }
                        Event::KeepaliveAck(_) => continue,
                    };
                    if events.send((id, ev)).is_err() {
                        return Ok(());
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
        flush(&mut conn, &mut wr).await?;
    }
}

/// Read from the socket straight into the connection's receive buffer (no intermediate
/// copy), keeping at least 64 KiB of room.
async fn read_into(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut bytes::BytesMut,
) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 64 * 1024 {
        buf.reserve(256 * 1024);
    }
    rd.read_buf(buf).await
}

/// Write everything the connection queued. Small chunks are coalesced into one write;
/// large data segments go out as they are, without a copy.
async fn flush(
    conn: &mut Connection,
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
) -> Result<(), Error> {
    if !conn.has_transmit() {
        return Ok(());
    }
    let chunks = conn.poll_transmit();
    let mut small: Vec<u8> = Vec::new();
    for c in chunks {
        if c.len() >= 64 * 1024 {
            if !small.is_empty() {
                wr.write_all(&small).await?;
                small.clear();
            }
            write_bytes(wr, c).await?;
        } else {
            small.extend_from_slice(&c);
        }
    }
    if !small.is_empty() {
        wr.write_all(&small).await?;
    }
    Ok(())
}

async fn write_bytes(wr: &mut tokio::net::tcp::OwnedWriteHalf, b: Bytes) -> Result<(), Error> {
    wr.write_all(&b).await?;
    Ok(())
}
