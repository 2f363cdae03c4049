//! SHARED TEST SUPPORT — a minimal pcap reader with TCP stream reassembly.
//!
//! Reusable by other crates' tests: it depends on `std` only. Include it with
//! `#[path = "../../cephx/tests/support/pcap.rs"] mod pcap;` (adjust the path).
//!
//! Scope: classic libpcap files (not pcapng), either byte order, micro- or nanosecond
//! stamps; link types Ethernet (1, with optional 802.1Q tags), Linux cooked SLL (113),
//! SLL2 (276), BSD loopback/NULL (0) and raw IP (101); IPv4 and IPv6 (no extension headers);
//! TCP. Each direction of each connection is reassembled by sequence number starting at
//! the SYN (or the lowest sequence seen), ignoring retransmitted bytes; connections are
//! returned in order of their first packet, so "the n-th connection to port 3300" is stable.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One TCP connection: both byte streams, reassembled.
#[derive(Debug, Clone)]
pub struct TcpConnection {
    /// The side that sent the SYN (or, without a SYN, the first packet's source).
    pub client: SocketAddr,
    /// The other side.
    pub server: SocketAddr,
    /// Bytes client → server.
    pub to_server: Vec<u8>,
    /// Bytes server → client.
    pub to_client: Vec<u8>,
}

#[derive(Default)]
struct Direction {
    isn: Option<u32>,
    segments: BTreeMap<u64, Vec<u8>>, // offset relative to the first seq -> payload
    first_seq: Option<u32>,
}

impl Direction {
    fn add(&mut self, seq: u32, syn: bool, payload: &[u8]) {
        if syn {
            self.isn = Some(seq);
        }
        if payload.is_empty() {
            return;
        }
        if self.first_seq.is_none() {
            self.first_seq = Some(seq);
        }
        self.segments
            .entry(seq as u64)
            .or_insert_with(|| payload.to_vec());
    }

    fn assemble(&self) -> Vec<u8> {
        let Some(base) = self.isn.map(|i| i.wrapping_add(1)).or(self.first_seq) else {
            return Vec::new();
        };
        let mut segs: Vec<(u32, &Vec<u8>)> = self
            .segments
            .iter()
            .map(|(s, p)| ((*s as u32).wrapping_sub(base), p))
            .collect();
        segs.sort_by_key(|(rel, _)| *rel);
        let mut out = Vec::new();
        for (rel, p) in segs {
            let rel = rel as usize;
            if rel > out.len() {
                // A gap: the capture lost bytes. Stop here rather than splice garbage.
                break;
            }
            let end = rel + p.len();
            if end > out.len() {
                out.extend_from_slice(&p[out.len() - rel..]);
            }
        }
        out
    }
}

struct Conn {
    client: SocketAddr,
    server: SocketAddr,
    up: Direction,
    down: Direction,
}

fn u16_at(b: &[u8], o: usize, be: bool) -> Option<u16> {
    let a = b.get(o..o + 2)?;
    Some(if be {
        u16::from_be_bytes([a[0], a[1]])
    } else {
        u16::from_le_bytes([a[0], a[1]])
    })
}

fn u32_at(b: &[u8], o: usize, be: bool) -> Option<u32> {
    let a: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
    Some(if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    })
}

/// Strip the link layer; returns the IP packet.
fn ip_payload(linktype: u32, pkt: &[u8]) -> Option<&[u8]> {
    match linktype {
        1 => {
            let mut off = 12;
            let mut ethertype = u16_at(pkt, off, true)?;
            while ethertype == 0x8100 || ethertype == 0x88a8 {
                off += 4;
                ethertype = u16_at(pkt, off, true)?;
            }
            pkt.get(off + 2..)
        }
        113 => pkt.get(16..),
        276 => pkt.get(20..),
        0 => pkt.get(4..),
        101 => Some(pkt),
        _ => None,
    }
}

/// Parse IPv4/IPv6 + TCP; returns (src, dst, seq, tcp flags, payload).
fn tcp_segment(ip: &[u8]) -> Option<(SocketAddr, SocketAddr, u32, u8, &[u8])> {
    let version = ip.first()? >> 4;
    let (src, dst, tcp) = match version {
        4 => {
            let ihl = ((ip[0] & 0x0f) as usize) * 4;
            if *ip.get(9)? != 6 {
                return None;
            }
            let total = (u16_at(ip, 2, true)? as usize).min(ip.len());
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (
                IpAddr::V4(Ipv4Addr::from(s)),
                IpAddr::V4(Ipv4Addr::from(d)),
                ip.get(ihl..total)?,
            )
        }
        6 => {
            if *ip.get(6)? != 6 {
                return None;
            }
            let plen = u16_at(ip, 4, true)? as usize;
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            let end = (40 + plen).min(ip.len());
            (
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                ip.get(40..end)?,
            )
        }
        _ => return None,
    };
    let sport = u16_at(tcp, 0, true)?;
    let dport = u16_at(tcp, 2, true)?;
    let seq = u32_at(tcp, 4, true)?;
    let doff = ((tcp.get(12)? >> 4) as usize) * 4;
    let flags = *tcp.get(13)?;
    let payload = tcp.get(doff..)?;
    Some((
        SocketAddr::new(src, sport),
        SocketAddr::new(dst, dport),
        seq,
        flags,
        payload,
    ))
}

/// Read a pcap file's bytes into TCP connections (in order of first appearance).
pub fn tcp_connections(file: &[u8]) -> Result<Vec<TcpConnection>, String> {
    let magic = file.get(0..4).ok_or("not a pcap file: too short")?;
    let (be, _nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        _ => return Err(format!("not a classic pcap file (magic {magic:02x?})")),
    };
    let linktype = u32_at(file, 20, be).ok_or("truncated pcap header")? & 0x0fff_ffff;
    let mut conns: Vec<Conn> = Vec::new();
    let mut off = 24;
    while off + 16 <= file.len() {
        let incl = u32_at(file, off + 8, be).ok_or("truncated record header")? as usize;
        let pkt = file
            .get(off + 16..off + 16 + incl)
            .ok_or("truncated packet")?;
        off += 16 + incl;
        let Some(ip) = ip_payload(linktype, pkt) else {
            continue;
        };
        let Some((src, dst, seq, flags, payload)) = tcp_segment(ip) else {
            continue;
        };
        let syn = flags & 0x02 != 0;
        let syn_ack = flags & 0x12 == 0x12;
        let idx = match conns.iter().position(|c| {
            (c.client == src && c.server == dst) || (c.client == dst && c.server == src)
        }) {
            Some(i) => i,
            None => {
                // A SYN-ACK seen first comes from the server.
                let (client, server) = if syn_ack { (dst, src) } else { (src, dst) };
                conns.push(Conn {
                    client,
                    server,
                    up: Direction::default(),
                    down: Direction::default(),
                });
                conns.len() - 1
            }
        };
        let c = &mut conns[idx];
        if c.client == src {
            c.up.add(seq, syn, payload);
        } else {
            c.down.add(seq, syn, payload);
        }
    }
    Ok(conns
        .into_iter()
        .map(|c| TcpConnection {
            client: c.client,
            server: c.server,
            to_server: c.up.assemble(),
            to_client: c.down.assemble(),
        })
        .collect())
}

/// Read a pcap file from disk into TCP connections.
pub fn read_tcp_connections(
    path: impl AsRef<std::path::Path>,
) -> Result<Vec<TcpConnection>, String> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    tcp_connections(&bytes)
}
