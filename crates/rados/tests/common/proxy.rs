//! An in-process TCP fault proxy for integration tests (issue 10, fault-injection harness).
//!
//! The client dials through it with [`FaultProxy::hook`] (`ClientConfig::dial`): for every
//! real monitor or OSD address the hook opens (once) a loopback listener that forwards to
//! that address, so the live cluster is still the peer and the session is the real msgr2
//! session, crc or secure. Each accepted connection is a [`ProxyConn`] whose byte streams
//! the test can reset, black-hole, stall, slow down or corrupt at an exact offset: faults a
//! paused daemon cannot produce (a half-sent frame, one flipped bit, a peer that stops
//! reading while the client still has megabytes to write).
#![allow(dead_code)]

use ceph_rados::DialHook;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Direction of a byte stream through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to Ceph daemon.
    ToServer = 0,
    /// Ceph daemon to client.
    ToClient = 1,
}

#[derive(Default)]
struct Faults {
    black_hole: bool,
    stall_until: Option<Instant>,
    delay: Duration,
    flip: [Option<u64>; 2],
    reset_at: [Option<u64>; 2],
}

/// One proxied connection and its fault controls.
pub struct ProxyConn {
    /// The real daemon address behind it.
    pub upstream: SocketAddr,
    /// Accept order over the whole proxy, from 0.
    pub seq: usize,
    faults: Mutex<Faults>,
    pos: [AtomicU64; 2],
    flipped: AtomicU64,
    closed: AtomicBool,
    kill: watch::Sender<bool>,
}

impl ProxyConn {
    /// Close both sides now (the client sees its socket drop mid-whatever).
    pub fn reset(&self) {
        self.kill.send_replace(true);
    }

    /// From now on forward nothing and read nothing in either direction: the peer looks
    /// alive (the sockets stay open) but silent, and the client's writes back up into its
    /// socket buffer once the kernel's buffers are full.
    pub fn black_hole(&self) {
        self.faults.lock().unwrap().black_hole = true;
    }

    /// Forward nothing for `d`, then carry on.
    pub fn stall(&self, d: Duration) {
        self.faults.lock().unwrap().stall_until = Some(Instant::now() + d);
    }

    /// Hold every chunk read from either side for `d` before forwarding it.
    pub fn delay_chunks(&self, d: Duration) {
        self.faults.lock().unwrap().delay = d;
    }

    /// Invert the byte at absolute offset `off` of the `dir` stream (once).
    pub fn flip_at(&self, dir: Dir, off: u64) {
        self.faults.lock().unwrap().flip[dir as usize] = Some(off);
    }

    /// Reset the connection once the `dir` stream reaches offset `off`: bytes before it
    /// are forwarded, the byte at `off` and everything after are not.
    pub fn reset_at(&self, dir: Dir, off: u64) {
        self.faults.lock().unwrap().reset_at[dir as usize] = Some(off);
    }

    /// Bytes of the `dir` stream read so far (the next byte has this offset).
    pub fn position(&self, dir: Dir) -> u64 {
        self.pos[dir as usize].load(Ordering::SeqCst)
    }

    /// How many flips have been applied.
    pub fn flipped(&self) -> u64 {
        self.flipped.load(Ordering::SeqCst)
    }

    /// Both pumps are finished (reset by the test, closed by either side, or a fault).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
struct Inner {
    listeners: Mutex<HashMap<SocketAddr, SocketAddr>>,
    conns: Mutex<Vec<Arc<ProxyConn>>>,
    accepted: AtomicUsize,
}

/// The proxy: one loopback listener per upstream address, created on first dial.
#[derive(Clone, Default)]
pub struct FaultProxy {
    inner: Arc<Inner>,
}

impl FaultProxy {
    /// An empty proxy; listeners appear as the client dials.
    pub fn new() -> Self {
        Self::default()
    }

    /// The dial hook to put into `ClientConfig::dial`. It must be called inside a tokio
    /// runtime (the client's connection tasks are).
    pub fn hook(&self) -> DialHook {
        let inner = self.inner.clone();
        DialHook(Arc::new(move |upstream| listen_for(&inner, upstream)))
    }

    /// Every connection accepted so far, in accept order.
    pub fn conns(&self) -> Vec<Arc<ProxyConn>> {
        self.inner.conns.lock().unwrap().clone()
    }

    /// Open connections whose upstream satisfies `f`.
    pub fn live(&self, f: impl Fn(SocketAddr) -> bool) -> Vec<Arc<ProxyConn>> {
        self.conns()
            .into_iter()
            .filter(|c| !c.is_closed() && f(c.upstream))
            .collect()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.inner.accepted.load(Ordering::SeqCst)
    }
}

fn listen_for(inner: &Arc<Inner>, upstream: SocketAddr) -> SocketAddr {
    let mut map = inner.listeners.lock().unwrap();
    if let Some(a) = map.get(&upstream) {
        return *a;
    }
    let std_l = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy bind");
    std_l.set_nonblocking(true).unwrap();
    let local = std_l.local_addr().unwrap();
    let l = TcpListener::from_std(std_l).expect("proxy listener (inside a tokio runtime)");
    map.insert(upstream, local);
    let inner2 = inner.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = l.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let seq = inner2.accepted.fetch_add(1, Ordering::SeqCst);
            let conn = Arc::new(ProxyConn {
                upstream,
                seq,
                faults: Mutex::new(Faults::default()),
                pos: [AtomicU64::new(0), AtomicU64::new(0)],
                flipped: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                kill: watch::channel(false).0,
            });
            inner2.conns.lock().unwrap().push(conn.clone());
            let (crd, cwr) = client.into_split();
            let (srd, swr) = server.into_split();
            let a = tokio::spawn(pump(conn.clone(), Dir::ToServer, crd, swr));
            let b = tokio::spawn(pump(conn.clone(), Dir::ToClient, srd, cwr));
            tokio::spawn(async move {
                let _ = a.await;
                let _ = b.await;
                conn.closed.store(true, Ordering::SeqCst);
            });
        }
    });
    local
}

/// Resolves once the connection is to be torn down.
async fn killed(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn pump(conn: Arc<ProxyConn>, dir: Dir, mut rd: OwnedReadHalf, mut wr: OwnedWriteHalf) {
    let mut kill = conn.kill.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    let d = dir as usize;
    'outer: loop {
        // Gates checked before reading, so a black hole also stops draining the sender.
        loop {
            let (bh, stall) = {
                let f = conn.faults.lock().unwrap();
                (f.black_hole, f.stall_until)
            };
            if bh {
                killed(&mut kill).await;
                break 'outer;
            }
            match stall {
                Some(t) if t > Instant::now() => tokio::select! {
                    _ = tokio::time::sleep_until(t.into()) => {}
                    _ = killed(&mut kill) => break 'outer,
                },
                _ => break,
            }
        }
        let n = tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = killed(&mut kill) => break,
        };
        // A stall set while this pump sat in `read` holds the chunk it just got.
        let (delay, stall) = {
            let f = conn.faults.lock().unwrap();
            (f.delay, f.stall_until)
        };
        if let Some(t) = stall.filter(|t| *t > Instant::now()) {
            tokio::select! {
                _ = tokio::time::sleep_until(t.into()) => {}
                _ = killed(&mut kill) => break,
            }
        }
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = killed(&mut kill) => break,
            }
        }
        let start = conn.pos[d].fetch_add(n as u64, Ordering::SeqCst);
        let end = start + n as u64;
        let mut send = n;
        let mut reset_after = false;
        {
            let mut f = conn.faults.lock().unwrap();
            if f.black_hole {
                // Swallow what was read after the hole opened; the gate then holds.
                continue;
            }
            if let Some(o) = f.reset_at[d] {
                if o < end {
                    send = o.saturating_sub(start) as usize;
                    reset_after = true;
                    f.reset_at[d] = None;
                }
            }
            if let Some(o) = f.flip[d] {
                if o >= start && o < start + send as u64 {
                    buf[(o - start) as usize] ^= 0xff;
                    f.flip[d] = None;
                    conn.flipped.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        if send > 0 {
            tokio::select! {
                r = wr.write_all(&buf[..send]) => if r.is_err() { break },
                _ = killed(&mut kill) => break,
            }
        }
        if reset_after {
            break;
        }
    }
    // Either side gone or a reset: take the other direction down with it.
    conn.kill.send_replace(true);
}
