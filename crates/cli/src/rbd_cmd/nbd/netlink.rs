//! The Linux nbd driver's generic-netlink interface (family `nbd`, version 1;
//! include/uapi/linux/nbd-netlink.h, drivers/block/nbd.c), which `device map
//! --device-type nbd` uses as rbd-nbd's netlink path does: CONNECT hands the kernel one end
//! of a socketpair together with the size, block size, transmission flags and timeout,
//! and answers with the index of the `/dev/nbdN` it attached; DISCONNECT makes the kernel
//! send NBD_CMD_DISC down the socket and let go of it; RECONFIGURE changes the size after
//! an image resize.
//!
//! The kernel talks the NBD transmission phase directly on the socket (no handshake, simple
//! replies), so the request loop is the same one `nbd serve` runs
//! ([`super::proto::Server::attached`]).
//!
//! The family exists only while the nbd module is loaded; resolving it fails with ENOENT
//! otherwise, which [`NbdLink::open`] turns into a message that says so.

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, ErrorContext, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    Nla, NlaBuffer, NlasIterator, Parseable, ParseableParametrized, NLA_F_NESTED, NLM_F_ACK,
    NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};
use std::io;

/// The family's name and the version its commands carry.
pub const FAMILY: &str = "nbd";
const VERSION: u8 = 1;

// commands
const CMD_CONNECT: u8 = 1;
const CMD_DISCONNECT: u8 = 2;
const CMD_RECONFIGURE: u8 = 3;

// NBD_ATTR_*
const ATTR_INDEX: u16 = 1;
const ATTR_SIZE_BYTES: u16 = 2;
const ATTR_BLOCK_SIZE_BYTES: u16 = 3;
const ATTR_TIMEOUT: u16 = 4;
const ATTR_SERVER_FLAGS: u16 = 5;
const ATTR_CLIENT_FLAGS: u16 = 6;
const ATTR_SOCKETS: u16 = 7;
// NBD_SOCK_ITEM inside NBD_ATTR_SOCKETS, NBD_SOCK_FD inside that
const SOCK_ITEM: u16 = 1;
const SOCK_FD: u16 = 1;

/// NBD_CFLAG_DESTROY_ON_DISCONNECT: the device is freed when we disconnect, so an
/// unmapped `/dev/nbdN` does not linger as a zero-size device.
pub const CFLAG_DESTROY_ON_DISCONNECT: u64 = 1;

/// One attribute of an nbd message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NbdAttr {
    /// The device number N of `/dev/nbdN`.
    Index(u32),
    SizeBytes(u64),
    BlockSizeBytes(u64),
    /// Per-request timeout in seconds (0: none).
    Timeout(u64),
    /// The NBD transmission flags (`NBD_FLAG_*`) the server would have sent.
    ServerFlags(u64),
    ClientFlags(u64),
    /// The connected sockets' descriptors, in the sending process.
    Sockets(Vec<u32>),
    Other(DefaultNla),
}

/// NBD_SOCK_ITEM { NBD_SOCK_FD: u32 }.
struct SockItem(u32);

impl Nla for SockItem {
    fn value_len(&self) -> usize {
        8 // one u32 attribute: 4 bytes of header, 4 of value
    }
    fn kind(&self) -> u16 {
        SOCK_ITEM | NLA_F_NESTED
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        let mut b = NlaBuffer::new(&mut buffer[..8]);
        b.set_kind(SOCK_FD);
        b.set_length(8);
        b.value_mut()[..4].copy_from_slice(&self.0.to_ne_bytes());
    }
}

impl Nla for NbdAttr {
    fn value_len(&self) -> usize {
        match self {
            NbdAttr::Index(_) => 4,
            NbdAttr::Sockets(fds) => fds.iter().map(|f| SockItem(*f).buffer_len()).sum(),
            NbdAttr::Other(n) => n.value_len(),
            _ => 8,
        }
    }
    fn kind(&self) -> u16 {
        match self {
            NbdAttr::Index(_) => ATTR_INDEX,
            NbdAttr::SizeBytes(_) => ATTR_SIZE_BYTES,
            NbdAttr::BlockSizeBytes(_) => ATTR_BLOCK_SIZE_BYTES,
            NbdAttr::Timeout(_) => ATTR_TIMEOUT,
            NbdAttr::ServerFlags(_) => ATTR_SERVER_FLAGS,
            NbdAttr::ClientFlags(_) => ATTR_CLIENT_FLAGS,
            NbdAttr::Sockets(_) => ATTR_SOCKETS | NLA_F_NESTED,
            NbdAttr::Other(n) => n.kind(),
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            NbdAttr::Index(v) => buffer[..4].copy_from_slice(&v.to_ne_bytes()),
            NbdAttr::SizeBytes(v)
            | NbdAttr::BlockSizeBytes(v)
            | NbdAttr::Timeout(v)
            | NbdAttr::ServerFlags(v)
            | NbdAttr::ClientFlags(v) => buffer[..8].copy_from_slice(&v.to_ne_bytes()),
            NbdAttr::Sockets(fds) => {
                let items: Vec<SockItem> = fds.iter().map(|f| SockItem(*f)).collect();
                items.as_slice().emit(buffer);
            }
            NbdAttr::Other(n) => n.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for NbdAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let v = buf.value();
        let u32_of = |v: &[u8]| -> Result<u32, DecodeError> {
            Ok(u32::from_ne_bytes(
                v.get(..4)
                    .ok_or_else(|| DecodeError::from("short u32 attribute"))?
                    .try_into()
                    .expect("4 bytes"),
            ))
        };
        Ok(match buf.kind() {
            ATTR_INDEX => NbdAttr::Index(u32_of(v)?),
            _ => NbdAttr::Other(DefaultNla::parse(buf).context("nbd attribute")?),
        })
    }
}

/// A message of the `nbd` family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NbdMsg {
    pub cmd: u8,
    pub attrs: Vec<NbdAttr>,
}

impl GenlFamily for NbdMsg {
    fn family_name() -> &'static str {
        FAMILY
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        VERSION
    }
}

impl Emitable for NbdMsg {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for NbdMsg {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let attrs = NlasIterator::new(buf)
            .map(|n| n.and_then(|n| NbdAttr::parse(&n)))
            .collect::<Result<Vec<_>, _>>()
            .context("nbd message attributes")?;
        Ok(NbdMsg {
            cmd: header.cmd,
            attrs,
        })
    }
}

/// What CONNECT asks for.
#[derive(Debug, Clone)]
pub struct Connect {
    pub size: u64,
    pub block_size: u64,
    pub server_flags: u64,
    pub timeout_secs: u64,
    /// The socket's descriptor in this process (the kernel takes its own reference).
    pub fd: u32,
}

impl Connect {
    /// The CONNECT message (no index: the kernel picks a free device or makes one).
    pub fn message(&self) -> NbdMsg {
        NbdMsg {
            cmd: CMD_CONNECT,
            attrs: vec![
                NbdAttr::SizeBytes(self.size),
                NbdAttr::BlockSizeBytes(self.block_size),
                NbdAttr::ServerFlags(self.server_flags),
                NbdAttr::ClientFlags(CFLAG_DESTROY_ON_DISCONNECT),
                NbdAttr::Timeout(self.timeout_secs),
                NbdAttr::Sockets(vec![self.fd]),
            ],
        }
    }
}

/// Serialize one request (NLM_F_REQUEST | NLM_F_ACK) with a resolved family id.
pub fn encode<F>(payload: F, family_id: u16, seq: u32) -> Vec<u8>
where
    F: GenlFamily + Emitable + std::fmt::Debug,
{
    let mut genl = GenlMessage::from_payload(payload);
    genl.set_resolved_family_id(family_id);
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(genl));
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// Split a received datagram into its messages: the payloads in order, or the errno of a
/// NACK; `Ok((payloads, true))` once the ACK (or a DONE) was seen.
pub fn decode<F>(mut data: &[u8]) -> io::Result<(Vec<F>, bool)>
where
    F: GenlFamily + ParseableParametrized<[u8], GenlHeader> + std::fmt::Debug,
{
    let mut out = Vec::new();
    while data.len() >= 16 {
        let len = u32::from_ne_bytes(data[..4].try_into().expect("4 bytes")) as usize;
        if len < 16 || len > data.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "netlink message of {len} bytes in a {}-byte datagram",
                    data.len()
                ),
            ));
        }
        let msg = NetlinkMessage::<GenlMessage<F>>::deserialize(&data[..len])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        match msg.payload {
            NetlinkPayload::InnerMessage(m) => out.push(m.payload),
            NetlinkPayload::Error(e) => {
                return match e.code {
                    None => Ok((out, true)),
                    Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                }
            }
            NetlinkPayload::Done(_) => return Ok((out, true)),
            _ => {}
        }
        data = &data[(len + 3) & !3..];
    }
    Ok((out, false))
}

/// A generic-netlink socket with the nbd family resolved.
pub struct NbdLink {
    sock: Socket,
    family: u16,
    seq: u32,
}

impl NbdLink {
    /// Open the socket and resolve the `nbd` family; a missing family (module not loaded)
    /// is ENOENT with a message that names the module.
    pub fn open() -> io::Result<NbdLink> {
        let mut link = NbdLink::socket()?;
        link.family = match link.resolve(FAMILY) {
            Ok(id) => id,
            Err(e) if e.raw_os_error() == Some(2) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "the nbd kernel module is not loaded (no 'nbd' generic netlink family; \
                     try `modprobe nbd`, or map without --device-type nbd: FUSE + loop)",
                ))
            }
            Err(e) => return Err(e),
        };
        Ok(link)
    }

    fn socket() -> io::Result<NbdLink> {
        let mut sock = Socket::new(NETLINK_GENERIC)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(NbdLink {
            sock,
            family: 0,
            seq: 0,
        })
    }

    /// The id the kernel gave generic netlink family `name` (ENOENT: no such family).
    fn resolve(&mut self, name: &str) -> io::Result<u16> {
        let req = GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(name.into())],
        };
        // the controller's own id, GENL_ID_CTRL
        let replies: Vec<GenlCtrl> = self.transact(req, 0x10)?;
        replies
            .iter()
            .flat_map(|r| r.nlas.iter())
            .find_map(|a| match a {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
            .ok_or_else(|| io::Error::other(format!("the kernel did not say family {name}'s id")))
    }

    fn transact<F>(&mut self, payload: F, family: u16) -> io::Result<Vec<F>>
    where
        F: GenlFamily + Emitable + ParseableParametrized<[u8], GenlHeader> + std::fmt::Debug,
    {
        self.seq = self.seq.wrapping_add(1);
        let buf = encode(payload, family, self.seq);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let (mut msgs, done) = decode::<F>(&data)?;
            out.append(&mut msgs);
            if done {
                return Ok(out);
            }
        }
    }

    /// Attach: the kernel's device index N of `/dev/nbdN`.
    pub fn connect(&mut self, c: &Connect) -> io::Result<u32> {
        let fam = self.family;
        let replies = self.transact(c.message(), fam)?;
        replies
            .iter()
            .flat_map(|r| r.attrs.iter())
            .find_map(|a| match a {
                NbdAttr::Index(i) => Some(*i),
                _ => None,
            })
            .ok_or_else(|| io::Error::other("nbd CONNECT: the kernel named no device index"))
    }

    /// Detach device `index` (the kernel sends NBD_CMD_DISC and closes its socket).
    pub fn disconnect(&mut self, index: u32) -> io::Result<()> {
        let fam = self.family;
        let msg = NbdMsg {
            cmd: CMD_DISCONNECT,
            attrs: vec![NbdAttr::Index(index)],
        };
        self.transact(msg, fam).map(drop)
    }

    /// Tell the kernel the export's new size.
    pub fn resize(&mut self, index: u32, size: u64) -> io::Result<()> {
        let fam = self.family;
        let msg = NbdMsg {
            cmd: CMD_RECONFIGURE,
            attrs: vec![NbdAttr::Index(index), NbdAttr::SizeBytes(size)],
        };
        self.transact(msg, fam).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes(b[at..at + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// The CONNECT request laid out as the kernel's nla_parse reads it:
    /// nlmsghdr (16), genlmsghdr (4), then 12-byte u64 attributes and the nested sockets.
    #[test]
    fn connect_request_layout() {
        let c = Connect {
            size: 10 << 30,
            block_size: 512,
            server_flags: 0x16d,
            timeout_secs: 30,
            fd: 7,
        };
        let b = encode(c.message(), 0x1d, 9);
        // nlmsghdr
        assert_eq!(u32_at(&b, 0) as usize, b.len());
        assert_eq!(u16_at(&b, 4), 0x1d, "message type = the resolved family id");
        assert_eq!(u16_at(&b, 6), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(u32_at(&b, 8), 9);
        // genlmsghdr: cmd, version, reserved
        assert_eq!(&b[16..20], &[CMD_CONNECT, 1, 0, 0]);
        let mut at = 20;
        for (kind, val) in [
            (ATTR_SIZE_BYTES, 10u64 << 30),
            (ATTR_BLOCK_SIZE_BYTES, 512),
            (ATTR_SERVER_FLAGS, 0x16d),
            (ATTR_CLIENT_FLAGS, CFLAG_DESTROY_ON_DISCONNECT),
            (ATTR_TIMEOUT, 30),
        ] {
            assert_eq!(u16_at(&b, at), 12, "nla_len of attribute {kind}");
            assert_eq!(u16_at(&b, at + 2), kind);
            assert_eq!(u64_at(&b, at + 4), val);
            at += 12;
        }
        // NBD_ATTR_SOCKETS { NBD_SOCK_ITEM { NBD_SOCK_FD = 7 } }
        assert_eq!(u16_at(&b, at), 4 + 4 + 8);
        assert_eq!(u16_at(&b, at + 2), ATTR_SOCKETS | NLA_F_NESTED);
        assert_eq!(u16_at(&b, at + 4), 4 + 8);
        assert_eq!(u16_at(&b, at + 6), SOCK_ITEM | NLA_F_NESTED);
        assert_eq!(u16_at(&b, at + 8), 8);
        assert_eq!(u16_at(&b, at + 10), SOCK_FD);
        assert_eq!(u32_at(&b, at + 12), 7);
        assert_eq!(at + 16, b.len());
    }

    /// The socket and request/reply loop against the running kernel: the controller
    /// resolves itself ("nlctrl" is always id 0x10) and refuses an unknown family with
    /// ENOENT, which is how a missing nbd module shows.
    #[test]
    fn kernel_resolves_families() {
        let mut link = NbdLink::socket().expect("netlink socket");
        assert_eq!(link.resolve("nlctrl").expect("nlctrl"), 0x10);
        let e = link.resolve("rbdrs-nofam").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(2));
        // names longer than GENL_NAMSIZ - 1 are refused by the policy (EINVAL)
        let e = link.resolve("no-such-family-rbd-rs").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(22));
        // the sequence advanced and the socket still works
        assert_eq!(link.resolve("nlctrl").expect("nlctrl again"), 0x10);
    }

    /// A reply datagram as nbd_genl_connect sends it (the index), then the ACK; and a NACK.
    #[test]
    fn replies_decode() {
        let reply = NbdMsg {
            cmd: CMD_CONNECT,
            attrs: vec![NbdAttr::Index(3)],
        };
        let mut dgram = encode(reply, 0x1d, 1);
        // NLMSG_ERROR with error 0 = ACK: header + i32 error + the request's header
        let mut ack = vec![0u8; 16 + 4 + 16];
        let n = ack.len() as u32;
        ack[..4].copy_from_slice(&n.to_ne_bytes());
        ack[4..6].copy_from_slice(&2u16.to_ne_bytes());
        ack[20..24].copy_from_slice(&16u32.to_ne_bytes());
        dgram.extend_from_slice(&ack);
        let (msgs, done) = decode::<NbdMsg>(&dgram).unwrap();
        assert!(done);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].attrs, vec![NbdAttr::Index(3)]);
        // only the reply: not done yet
        let (msgs, done) = decode::<NbdMsg>(&dgram[..dgram.len() - ack.len()]).unwrap();
        assert!(!done && msgs.len() == 1);
        // a NACK with -EBUSY
        let mut nack = ack.clone();
        nack[16..20].copy_from_slice(&(-16i32).to_ne_bytes());
        let e = decode::<NbdMsg>(&nack).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(16));
        // garbage lengths are errors, not panics
        let mut bad = nack.clone();
        bad[..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(decode::<NbdMsg>(&bad).is_err());
        bad[..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(decode::<NbdMsg>(&bad).is_err());
    }
}
