//! The NBD protocol, server side, sans I/O: bytes in ([`Server::feed`]), events out
//! ([`Event`]), reply bytes from the encoders. Fixed newstyle negotiation
//! (NBD_OPT_EXPORT_NAME, GO, INFO, LIST, ABORT, STRUCTURED_REPLY, LIST/SET_META_CONTEXT
//! with `base:allocation`), then transmission
//! (READ, WRITE, FLUSH, TRIM, WRITE_ZEROES, BLOCK_STATUS, DISC; FUA; simple and
//! structured replies).
//! Requests are handed out as they arrive; the driver may answer them in any order
//! (replies carry the request's cookie).
//!
//! Reference: the NBD protocol document (nbd project, doc/proto.md) and the Linux client
//! (linux: drivers/block/nbd.c, include/uapi/linux/nbd.h).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// `NBDMAGIC`.
pub const NBD_MAGIC: u64 = 0x4e42_444d_4147_4943;
/// `IHAVEOPT`.
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
/// Option reply magic.
pub const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
/// Request magic.
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
/// Simple reply magic.
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
/// Structured reply magic.
pub const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

// handshake flags
const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;
const FLAG_C_FIXED_NEWSTYLE: u32 = 1;
const FLAG_C_NO_ZEROES: u32 = 2;

// transmission flags
const TF_HAS_FLAGS: u16 = 1;
const TF_READ_ONLY: u16 = 1 << 1;
const TF_SEND_FLUSH: u16 = 1 << 2;
const TF_SEND_FUA: u16 = 1 << 3;
const TF_SEND_TRIM: u16 = 1 << 5;
const TF_SEND_WRITE_ZEROES: u16 = 1 << 6;
const TF_CAN_MULTI_CONN: u16 = 1 << 8;

// options
const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_LIST: u32 = 3;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;
const OPT_STRUCTURED_REPLY: u32 = 8;
const OPT_LIST_META_CONTEXT: u32 = 9;
const OPT_SET_META_CONTEXT: u32 = 10;

// option replies
const REP_ACK: u32 = 1;
const REP_SERVER: u32 = 2;
const REP_INFO: u32 = 3;
const REP_META_CONTEXT: u32 = 4;
const REP_ERR_UNSUP: u32 = (1 << 31) + 1;
const REP_ERR_INVALID: u32 = (1 << 31) + 3;
const REP_ERR_UNKNOWN: u32 = (1 << 31) + 6;

const INFO_EXPORT: u16 = 0;
const INFO_BLOCK_SIZE: u16 = 3;

// structured reply chunk types
const CHUNK_NONE: u16 = 0;
const CHUNK_OFFSET_DATA: u16 = 1;
const CHUNK_BLOCK_STATUS: u16 = 5;
const CHUNK_ERROR: u16 = (1 << 15) + 1;
const CHUNK_FLAG_DONE: u16 = 1;

/// Command flag: force unit access.
pub const CMD_FLAG_FUA: u16 = 1;
/// Command flag (BLOCK_STATUS): one descriptor is enough.
pub const CMD_FLAG_REQ_ONE: u16 = 1 << 3;

/// The one metadata context we serve: which ranges hold data (`base:allocation`).
pub const META_BASE_ALLOCATION: &str = "base:allocation";
/// Its id on the wire (ours to choose).
const META_ALLOCATION_ID: u32 = 1;
/// `base:allocation` states: a hole (no storage allocated), reads as zeros.
pub const STATE_HOLE: u32 = 1;
/// `base:allocation` states: reads as zeros.
pub const STATE_ZERO: u32 = 2;

/// The largest request payload accepted (what the Linux client and qemu send stays far
/// below; a bigger WRITE is a protocol error: we could not skip its data safely).
pub const MAX_REQUEST: u32 = 32 << 20;
/// Option payloads are small; a huge length is a broken or hostile client.
const MAX_OPTION: u32 = 64 << 10;

/// What the client asked for, in transmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// NBD_CMD_READ.
    Read,
    /// NBD_CMD_WRITE.
    Write,
    /// NBD_CMD_DISC: finish what is in flight, then close.
    Disconnect,
    /// NBD_CMD_FLUSH.
    Flush,
    /// NBD_CMD_TRIM.
    Trim,
    /// NBD_CMD_WRITE_ZEROES.
    WriteZeroes,
    /// NBD_CMD_BLOCK_STATUS (only after `base:allocation` was selected).
    BlockStatus,
    /// Anything else (answered EINVAL).
    Other(u16),
}

impl Cmd {
    fn from_u16(t: u16) -> Cmd {
        match t {
            0 => Cmd::Read,
            1 => Cmd::Write,
            2 => Cmd::Disconnect,
            3 => Cmd::Flush,
            4 => Cmd::Trim,
            6 => Cmd::WriteZeroes,
            7 => Cmd::BlockStatus,
            t => Cmd::Other(t),
        }
    }
}

/// One transmission request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The client's cookie (handle), echoed in the reply.
    pub cookie: u64,
    /// Command.
    pub cmd: Cmd,
    /// Command flags (`CMD_FLAG_FUA`, ...).
    pub flags: u16,
    /// Offset.
    pub offset: u64,
    /// Length.
    pub len: u32,
    /// WRITE payload.
    pub data: Bytes,
}

/// What the driver must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Negotiation is over; requests follow.
    Transmission,
    /// A request to serve.
    Request(Request),
    /// The client ended (NBD_OPT_ABORT, or NBD_CMD_DISC already delivered as a request):
    /// close after sending what is queued.
    Close,
}

/// Protocol violations: the connection is closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NbdError {
    /// A magic number was wrong.
    #[error("bad {0} magic {1:#x}")]
    BadMagic(&'static str, u64),
    /// The client does not speak fixed newstyle.
    #[error("client flags {0:#x}: fixed newstyle not supported by the client")]
    NotFixedNewstyle(u32),
    /// A length beyond what we accept.
    #[error("{0} length {1} too large")]
    TooLarge(&'static str, u32),
    /// NBD_OPT_EXPORT_NAME named an export we do not have (no way to say so but closing).
    #[error("unknown export '{0}'")]
    UnknownExport(String),
}

/// The export this server offers.
#[derive(Debug, Clone)]
pub struct Export {
    /// Its name (the image spec); the empty name selects it too (the default export).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Read-only.
    pub read_only: bool,
}

impl Export {
    /// The transmission flags (`NBD_FLAG_*`) of this export.
    pub fn tflags(&self) -> u16 {
        let mut f = TF_HAS_FLAGS | TF_SEND_FLUSH | TF_SEND_FUA | TF_CAN_MULTI_CONN;
        if self.read_only {
            f |= TF_READ_ONLY;
        } else {
            f |= TF_SEND_TRIM | TF_SEND_WRITE_ZEROES;
        }
        f
    }

    fn matches(&self, name: &[u8]) -> bool {
        name.is_empty() || name == self.name.as_bytes()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    ClientFlags,
    Options,
    Transmission,
    Closed,
}

/// The server side of one connection.
#[derive(Debug)]
pub struct Server {
    export: Export,
    phase: Phase,
    no_zeroes: bool,
    structured: bool,
    /// `base:allocation` selected by NBD_OPT_SET_META_CONTEXT.
    allocation: bool,
    out: BytesMut,
}

impl Server {
    /// A new connection; the greeting is already queued in the output.
    pub fn new(export: Export) -> Server {
        let mut out = BytesMut::new();
        out.put_u64(NBD_MAGIC);
        out.put_u64(IHAVEOPT);
        out.put_u16(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
        Server {
            export,
            phase: Phase::ClientFlags,
            no_zeroes: false,
            structured: false,
            allocation: false,
            out,
        }
    }

    /// A connection that starts in the transmission phase, without a handshake: the
    /// socket the Linux nbd driver was given through netlink (it knows the size and
    /// flags from the CONNECT message and only ever uses simple replies).
    pub fn attached(export: Export) -> Server {
        Server {
            export,
            phase: Phase::Transmission,
            no_zeroes: true,
            structured: false,
            allocation: false,
            out: BytesMut::new(),
        }
    }

    /// Bytes to send (negotiation replies); empties the queue.
    pub fn take_output(&mut self) -> Bytes {
        self.out.split().freeze()
    }

    /// True once structured replies were negotiated.
    pub fn structured(&self) -> bool {
        self.structured
    }

    /// True if the client selected `base:allocation` (BLOCK_STATUS may follow).
    pub fn allocation(&self) -> bool {
        self.allocation
    }

    /// Consume what `buf` holds completely; leave a partial message in it.
    pub fn feed(&mut self, buf: &mut BytesMut) -> Result<Vec<Event>, NbdError> {
        let mut ev = Vec::new();
        loop {
            match self.phase {
                Phase::Closed => return Ok(ev),
                Phase::ClientFlags => {
                    if buf.len() < 4 {
                        return Ok(ev);
                    }
                    let f = buf.get_u32();
                    if f & FLAG_C_FIXED_NEWSTYLE == 0 {
                        return Err(NbdError::NotFixedNewstyle(f));
                    }
                    self.no_zeroes = f & FLAG_C_NO_ZEROES != 0;
                    self.phase = Phase::Options;
                }
                Phase::Options => {
                    if buf.len() < 16 {
                        return Ok(ev);
                    }
                    let magic = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
                    if magic != IHAVEOPT {
                        return Err(NbdError::BadMagic("option", magic));
                    }
                    let opt = u32::from_be_bytes(buf[8..12].try_into().expect("4 bytes"));
                    let len = u32::from_be_bytes(buf[12..16].try_into().expect("4 bytes"));
                    if len > MAX_OPTION {
                        return Err(NbdError::TooLarge("option", len));
                    }
                    if buf.len() < 16 + len as usize {
                        return Ok(ev);
                    }
                    buf.advance(16);
                    let data = buf.split_to(len as usize).freeze();
                    self.option(opt, data, &mut ev)?;
                }
                Phase::Transmission => {
                    if buf.len() < 28 {
                        return Ok(ev);
                    }
                    let magic = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes"));
                    if magic != REQUEST_MAGIC {
                        return Err(NbdError::BadMagic("request", magic as u64));
                    }
                    let flags = u16::from_be_bytes([buf[4], buf[5]]);
                    let cmd = Cmd::from_u16(u16::from_be_bytes([buf[6], buf[7]]));
                    let cookie = u64::from_be_bytes(buf[8..16].try_into().expect("8 bytes"));
                    let offset = u64::from_be_bytes(buf[16..24].try_into().expect("8 bytes"));
                    let len = u32::from_be_bytes(buf[24..28].try_into().expect("4 bytes"));
                    let payload = if cmd == Cmd::Write { len } else { 0 };
                    if payload > MAX_REQUEST {
                        return Err(NbdError::TooLarge("write", len));
                    }
                    if buf.len() < 28 + payload as usize {
                        buf.reserve(28 + payload as usize - buf.len());
                        return Ok(ev);
                    }
                    buf.advance(28);
                    let data = buf.split_to(payload as usize).freeze();
                    ev.push(Event::Request(Request {
                        cookie,
                        cmd,
                        flags,
                        offset,
                        len,
                        data,
                    }));
                    if cmd == Cmd::Disconnect {
                        self.phase = Phase::Closed;
                    }
                }
            }
        }
    }

    fn option_reply(&mut self, opt: u32, kind: u32, data: &[u8]) {
        self.out.put_u64(REPLY_MAGIC);
        self.out.put_u32(opt);
        self.out.put_u32(kind);
        self.out.put_u32(data.len() as u32);
        self.out.put_slice(data);
    }

    fn option(&mut self, opt: u32, mut data: Bytes, ev: &mut Vec<Event>) -> Result<(), NbdError> {
        match opt {
            OPT_EXPORT_NAME => {
                if !self.export.matches(&data) {
                    self.phase = Phase::Closed;
                    return Err(NbdError::UnknownExport(
                        String::from_utf8_lossy(&data).into_owned(),
                    ));
                }
                self.out.put_u64(self.export.size);
                self.out.put_u16(self.export.tflags());
                if !self.no_zeroes {
                    self.out.put_bytes(0, 124);
                }
                self.phase = Phase::Transmission;
                ev.push(Event::Transmission);
            }
            OPT_ABORT => {
                self.option_reply(opt, REP_ACK, &[]);
                self.phase = Phase::Closed;
                ev.push(Event::Close);
            }
            OPT_LIST => {
                if !data.is_empty() {
                    self.option_reply(opt, REP_ERR_INVALID, b"LIST takes no data");
                    return Ok(());
                }
                let mut d = Vec::with_capacity(4 + self.export.name.len());
                d.put_u32(self.export.name.len() as u32);
                d.put_slice(self.export.name.as_bytes());
                self.option_reply(opt, REP_SERVER, &d);
                self.option_reply(opt, REP_ACK, &[]);
            }
            OPT_STRUCTURED_REPLY => {
                if !data.is_empty() {
                    self.option_reply(opt, REP_ERR_INVALID, b"STRUCTURED_REPLY takes no data");
                } else {
                    self.structured = true;
                    self.option_reply(opt, REP_ACK, &[]);
                }
            }
            OPT_LIST_META_CONTEXT | OPT_SET_META_CONTEXT => self.meta_context(opt, data),
            OPT_INFO | OPT_GO => {
                // u32 name length, name, u16 count, count x u16 info requests
                if data.len() < 4 {
                    self.option_reply(opt, REP_ERR_INVALID, b"short option");
                    return Ok(());
                }
                let nlen = data.get_u32() as usize;
                if data.len() < nlen + 2 {
                    self.option_reply(opt, REP_ERR_INVALID, b"short option");
                    return Ok(());
                }
                let name = data.split_to(nlen);
                let n = data.get_u16() as usize;
                if data.len() != 2 * n {
                    self.option_reply(opt, REP_ERR_INVALID, b"bad information request list");
                    return Ok(());
                }
                if !self.export.matches(&name) {
                    let msg = format!("unknown export '{}'", String::from_utf8_lossy(&name));
                    self.option_reply(opt, REP_ERR_UNKNOWN, msg.as_bytes());
                    return Ok(());
                }
                let mut info = Vec::with_capacity(12);
                info.put_u16(INFO_EXPORT);
                info.put_u64(self.export.size);
                info.put_u16(self.export.tflags());
                self.option_reply(opt, REP_INFO, &info);
                // any offset and length work; 4 KiB is the efficient unit (object
                // writes below it are read-modify-free, but the device is 4K-native)
                let mut bs = Vec::with_capacity(14);
                bs.put_u16(INFO_BLOCK_SIZE);
                bs.put_u32(1);
                bs.put_u32(4096);
                bs.put_u32(MAX_REQUEST);
                self.option_reply(opt, REP_INFO, &bs);
                self.option_reply(opt, REP_ACK, &[]);
                if opt == OPT_GO {
                    self.phase = Phase::Transmission;
                    ev.push(Event::Transmission);
                }
            }
            _ => self.option_reply(opt, REP_ERR_UNSUP, b"unsupported option"),
        }
        Ok(())
    }
}

impl Server {
    /// NBD_OPT_LIST/SET_META_CONTEXT: u32 export name length, name, u32 query count,
    /// queries (u32 length, string). We know one context, `base:allocation`; LIST with
    /// no queries or the query `base:` names it, SET selects it when asked by name.
    fn meta_context(&mut self, opt: u32, mut data: Bytes) {
        let set = opt == OPT_SET_META_CONTEXT;
        if set && !self.structured {
            self.option_reply(opt, REP_ERR_INVALID, b"structured replies first");
            return;
        }
        let mut queries = Vec::new();
        let ok = (|| {
            if data.len() < 4 {
                return None;
            }
            let nlen = data.get_u32() as usize;
            if data.len() < nlen + 4 {
                return None;
            }
            let name = data.split_to(nlen);
            let n = data.get_u32();
            for _ in 0..n {
                if data.len() < 4 {
                    return None;
                }
                let l = data.get_u32() as usize;
                if data.len() < l {
                    return None;
                }
                queries.push(data.split_to(l));
            }
            data.is_empty().then_some(name)
        })();
        let Some(name) = ok else {
            self.option_reply(opt, REP_ERR_INVALID, b"malformed meta context request");
            return;
        };
        if !self.export.matches(&name) {
            let msg = format!("unknown export '{}'", String::from_utf8_lossy(&name));
            self.option_reply(opt, REP_ERR_UNKNOWN, msg.as_bytes());
            return;
        }
        let wanted = queries
            .iter()
            .any(|q| &q[..] == META_BASE_ALLOCATION.as_bytes() || (!set && &q[..] == b"base:"));
        let wanted = wanted || (!set && queries.is_empty());
        if set {
            // a SET replaces what an earlier one selected
            self.allocation = wanted;
        }
        if wanted {
            let mut d = Vec::with_capacity(4 + META_BASE_ALLOCATION.len());
            d.put_u32(META_ALLOCATION_ID);
            d.put_slice(META_BASE_ALLOCATION.as_bytes());
            self.option_reply(opt, REP_META_CONTEXT, &d);
        }
        self.option_reply(opt, REP_ACK, &[]);
    }
}

/// The whole reply to a BLOCK_STATUS request: one `base:allocation` chunk with
/// `(length, state)` descriptors, in order from the request's offset.
pub fn block_status_reply(req: &Request, descriptors: &[(u32, u32)]) -> Bytes {
    let mut b = BytesMut::with_capacity(24 + 8 * descriptors.len());
    b.put_u32(STRUCTURED_REPLY_MAGIC);
    b.put_u16(CHUNK_FLAG_DONE);
    b.put_u16(CHUNK_BLOCK_STATUS);
    b.put_u64(req.cookie);
    b.put_u32(4 + 8 * descriptors.len() as u32);
    b.put_u32(META_ALLOCATION_ID);
    for &(len, state) in descriptors {
        b.put_u32(len);
        b.put_u32(state);
    }
    b.freeze()
}

/// The reply header for a request that succeeded or failed (`errno` 0 = success);
/// for a successful READ, the data follows it (send `data` right after, unchanged).
pub fn reply_header(structured: bool, req: &Request, errno: u32, data_len: usize) -> Bytes {
    let mut b = BytesMut::with_capacity(32);
    let read = matches!(req.cmd, Cmd::Read | Cmd::BlockStatus);
    if !structured || !read {
        // simple replies are allowed for everything but reads (and block status, whose
        // errors come as error chunks) once structured replies are on
        b.put_u32(SIMPLE_REPLY_MAGIC);
        b.put_u32(errno);
        b.put_u64(req.cookie);
        return b.freeze();
    }
    b.put_u32(STRUCTURED_REPLY_MAGIC);
    b.put_u16(CHUNK_FLAG_DONE);
    if errno != 0 {
        b.put_u16(CHUNK_ERROR);
        b.put_u64(req.cookie);
        b.put_u32(6);
        b.put_u32(errno);
        b.put_u16(0);
    } else if data_len == 0 {
        b.put_u16(CHUNK_NONE);
        b.put_u64(req.cookie);
        b.put_u32(0);
    } else {
        b.put_u16(CHUNK_OFFSET_DATA);
        b.put_u64(req.cookie);
        b.put_u32(8 + data_len as u32);
        b.put_u64(req.offset);
    }
    b.freeze()
}

/// NBD error values (the protocol's, which are Linux errnos for these).
pub fn nbd_errno(errno: i32) -> u32 {
    match errno {
        1 | 5 | 12 | 22 | 28 | 75 | 95 | 108 => errno as u32,
        13 | 30 => 1, // EACCES, EROFS -> EPERM
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(ro: bool) -> Export {
        Export {
            name: "rbd/img".into(),
            size: 1 << 30,
            read_only: ro,
        }
    }

    fn opt(o: u32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.put_u64(IHAVEOPT);
        v.put_u32(o);
        v.put_u32(data.len() as u32);
        v.put_slice(data);
        v
    }

    fn go_data(name: &str, infos: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.put_u32(name.len() as u32);
        v.put_slice(name.as_bytes());
        v.put_u16(infos.len() as u16);
        for i in infos {
            v.put_u16(*i);
        }
        v
    }

    /// Parse option replies: (option, type, data).
    fn replies(mut b: Bytes) -> Vec<(u32, u32, Bytes)> {
        let mut v = Vec::new();
        while !b.is_empty() {
            assert_eq!(b.get_u64(), REPLY_MAGIC);
            let o = b.get_u32();
            let t = b.get_u32();
            let n = b.get_u32() as usize;
            v.push((o, t, b.split_to(n)));
        }
        v
    }

    fn negotiated(s: &mut Server) {
        let mut greet = s.take_output();
        assert_eq!(greet.get_u64(), NBD_MAGIC);
        assert_eq!(greet.get_u64(), IHAVEOPT);
        assert_eq!(greet.get_u16(), FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
        let mut b = BytesMut::new();
        b.put_u32(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
        assert!(s.feed(&mut b).unwrap().is_empty());
    }

    #[test]
    fn go_with_structured_replies_then_requests() {
        let mut s = Server::new(export(false));
        negotiated(&mut s);
        let mut b = BytesMut::new();
        b.put_slice(&opt(OPT_STRUCTURED_REPLY, &[]));
        b.put_slice(&opt(OPT_LIST, &[]));
        b.put_slice(&opt(OPT_GO, &go_data("rbd/img", &[INFO_BLOCK_SIZE])));
        // a request in the same buffer, split in the middle of its payload
        let mut req = Vec::new();
        req.put_u32(REQUEST_MAGIC);
        req.put_u16(CMD_FLAG_FUA);
        req.put_u16(1);
        req.put_u64(77);
        req.put_u64(4096);
        req.put_u32(5);
        req.put_slice(b"hello");
        b.put_slice(&req[..30]);
        let ev = s.feed(&mut b).unwrap();
        assert_eq!(ev, vec![Event::Transmission]);
        assert!(s.structured());
        let r = replies(s.take_output());
        assert_eq!(r[0].0, OPT_STRUCTURED_REPLY);
        assert_eq!(r[0].1, REP_ACK);
        assert_eq!(r[1].1, REP_SERVER);
        assert_eq!(&r[1].2[4..], b"rbd/img");
        assert_eq!(r[2].1, REP_ACK);
        assert_eq!(r[3].1, REP_INFO);
        let mut info = r[3].2.clone();
        assert_eq!(info.get_u16(), INFO_EXPORT);
        assert_eq!(info.get_u64(), 1 << 30);
        let tf = info.get_u16();
        assert_eq!(tf & TF_READ_ONLY, 0);
        assert_ne!(tf & TF_SEND_WRITE_ZEROES, 0);
        assert_eq!(r[4].1, REP_INFO);
        assert_eq!(r[5], (OPT_GO, REP_ACK, Bytes::new()));
        b.put_slice(&req[30..]);
        let ev = s.feed(&mut b).unwrap();
        assert_eq!(
            ev,
            vec![Event::Request(Request {
                cookie: 77,
                cmd: Cmd::Write,
                flags: CMD_FLAG_FUA,
                offset: 4096,
                len: 5,
                data: Bytes::from_static(b"hello"),
            })]
        );
        assert!(b.is_empty());
    }

    fn meta_data(name: &str, queries: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        v.put_u32(name.len() as u32);
        v.put_slice(name.as_bytes());
        v.put_u32(queries.len() as u32);
        for q in queries {
            v.put_u32(q.len() as u32);
            v.put_slice(q.as_bytes());
        }
        v
    }

    #[test]
    fn base_allocation_meta_context_and_block_status_reply() {
        let mut s = Server::new(export(false));
        negotiated(&mut s);
        let mut b = BytesMut::new();
        // SET before structured replies is refused; LIST works, with or without queries
        b.put_slice(&opt(
            OPT_SET_META_CONTEXT,
            &meta_data("rbd/img", &["base:allocation"]),
        ));
        b.put_slice(&opt(OPT_LIST_META_CONTEXT, &meta_data("rbd/img", &[])));
        b.put_slice(&opt(
            OPT_LIST_META_CONTEXT,
            &meta_data("rbd/img", &["qemu:dirty"]),
        ));
        b.put_slice(&opt(OPT_STRUCTURED_REPLY, &[]));
        b.put_slice(&opt(
            OPT_SET_META_CONTEXT,
            &meta_data("other", &["base:allocation"]),
        ));
        b.put_slice(&opt(OPT_SET_META_CONTEXT, &[0, 0, 0, 9])); // truncated
        b.put_slice(&opt(
            OPT_SET_META_CONTEXT,
            &meta_data("rbd/img", &["qemu:dirty-bitmap:x", "base:allocation"]),
        ));
        b.put_slice(&opt(OPT_GO, &go_data("rbd/img", &[])));
        let mut req = Vec::new();
        req.put_u32(REQUEST_MAGIC);
        req.put_u16(CMD_FLAG_REQ_ONE);
        req.put_u16(7);
        req.put_u64(5);
        req.put_u64(0);
        req.put_u32(1 << 20);
        b.put_slice(&req);
        let ev = s.feed(&mut b).unwrap();
        assert!(s.allocation());
        let r = replies(s.take_output());
        assert_eq!(r[0].1, REP_ERR_INVALID);
        assert_eq!(r[1].1, REP_META_CONTEXT);
        assert_eq!(&r[1].2[..4], &META_ALLOCATION_ID.to_be_bytes());
        assert_eq!(&r[1].2[4..], b"base:allocation");
        assert_eq!(r[2].1, REP_ACK);
        assert_eq!(r[3], (OPT_LIST_META_CONTEXT, REP_ACK, Bytes::new()));
        assert_eq!(r[4].1, REP_ACK); // structured replies
        assert_eq!(r[5].1, REP_ERR_UNKNOWN);
        assert_eq!(r[6].1, REP_ERR_INVALID);
        assert_eq!(r[7].1, REP_META_CONTEXT);
        assert_eq!(r[8], (OPT_SET_META_CONTEXT, REP_ACK, Bytes::new()));
        let Event::Request(req) = &ev[1] else {
            panic!("{ev:?}")
        };
        assert_eq!(req.cmd, Cmd::BlockStatus);
        assert_eq!(req.flags, CMD_FLAG_REQ_ONE);
        let mut out = block_status_reply(req, &[(4096, 0), (8192, STATE_HOLE | STATE_ZERO)]);
        assert_eq!(out.get_u32(), STRUCTURED_REPLY_MAGIC);
        assert_eq!(out.get_u16(), CHUNK_FLAG_DONE);
        assert_eq!(out.get_u16(), CHUNK_BLOCK_STATUS);
        assert_eq!(out.get_u64(), 5);
        assert_eq!(out.get_u32(), 4 + 16);
        assert_eq!(out.get_u32(), META_ALLOCATION_ID);
        assert_eq!((out.get_u32(), out.get_u32()), (4096, 0));
        assert_eq!((out.get_u32(), out.get_u32()), (8192, 3));
        assert!(out.is_empty());
        // its errors are error chunks, not simple replies
        let mut e = reply_header(true, req, 22, 0);
        assert_eq!(e.get_u32(), STRUCTURED_REPLY_MAGIC);
        assert_eq!(e.get_u16(), CHUNK_FLAG_DONE);
        assert_eq!(e.get_u16(), CHUNK_ERROR);
    }

    #[test]
    fn unknown_export_and_unsupported_option() {
        let mut s = Server::new(export(true));
        negotiated(&mut s);
        let mut b = BytesMut::new();
        b.put_slice(&opt(OPT_INFO, &go_data("nope", &[])));
        b.put_slice(&opt(5, &[])); // STARTTLS
        b.put_slice(&opt(OPT_INFO, &go_data("", &[])));
        assert!(s.feed(&mut b).unwrap().is_empty());
        let r = replies(s.take_output());
        assert_eq!(r[0].1, REP_ERR_UNKNOWN);
        assert_eq!(r[1].1, REP_ERR_UNSUP);
        assert_eq!(r[2].1, REP_INFO);
        let tf = u16::from_be_bytes([r[2].2[10], r[2].2[11]]);
        assert_ne!(tf & TF_READ_ONLY, 0);
        assert_eq!(tf & TF_SEND_TRIM, 0);
        b.put_slice(&opt(OPT_ABORT, &[]));
        assert_eq!(s.feed(&mut b).unwrap(), vec![Event::Close]);
    }

    #[test]
    fn export_name_without_no_zeroes_pads_124_bytes() {
        let mut s = Server::new(export(false));
        let _ = s.take_output();
        let mut b = BytesMut::new();
        b.put_u32(FLAG_C_FIXED_NEWSTYLE);
        b.put_slice(&opt(OPT_EXPORT_NAME, b"rbd/img"));
        assert_eq!(s.feed(&mut b).unwrap(), vec![Event::Transmission]);
        let out = s.take_output();
        assert_eq!(out.len(), 8 + 2 + 124);
        assert_eq!(&out[..8], &(1u64 << 30).to_be_bytes());

        let mut s = Server::new(export(false));
        let mut b = BytesMut::new();
        b.put_u32(FLAG_C_FIXED_NEWSTYLE);
        b.put_slice(&opt(OPT_EXPORT_NAME, b"other"));
        assert_eq!(
            s.feed(&mut b).unwrap_err(),
            NbdError::UnknownExport("other".into())
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut s = Server::new(export(false));
        let mut b = BytesMut::from(&0u32.to_be_bytes()[..]);
        assert!(matches!(s.feed(&mut b), Err(NbdError::NotFixedNewstyle(0))));
        let mut s = Server::new(export(false));
        let mut b = BytesMut::new();
        b.put_u32(FLAG_C_FIXED_NEWSTYLE);
        b.put_u64(0xdead);
        b.put_u64(0);
        assert!(matches!(s.feed(&mut b), Err(NbdError::BadMagic(..))));
        let mut s = Server::new(export(false));
        let mut b = BytesMut::new();
        b.put_u32(FLAG_C_FIXED_NEWSTYLE);
        b.put_slice(&opt(OPT_GO, &go_data("rbd/img", &[])));
        s.feed(&mut b).unwrap();
        b.put_u32(REQUEST_MAGIC);
        b.put_u16(0);
        b.put_u16(1);
        b.put_u64(1);
        b.put_u64(0);
        b.put_u32(u32::MAX);
        assert!(matches!(s.feed(&mut b), Err(NbdError::TooLarge(..))));
        // truncated GO data
        let mut s = Server::new(export(false));
        let _ = s.take_output();
        let mut b = BytesMut::new();
        b.put_u32(FLAG_C_FIXED_NEWSTYLE);
        b.put_slice(&opt(OPT_GO, &[0, 0, 0, 9, b'x']));
        assert!(s.feed(&mut b).unwrap().is_empty());
        assert_eq!(replies(s.take_output())[0].1, REP_ERR_INVALID);
    }

    #[test]
    fn reply_encodings() {
        let req = Request {
            cookie: 9,
            cmd: Cmd::Read,
            flags: 0,
            offset: 512,
            len: 4,
            data: Bytes::new(),
        };
        let h = reply_header(false, &req, 0, 4);
        assert_eq!(&h[..4], &SIMPLE_REPLY_MAGIC.to_be_bytes());
        assert_eq!(h.len(), 16);
        let mut h = reply_header(true, &req, 0, 4);
        assert_eq!(h.get_u32(), STRUCTURED_REPLY_MAGIC);
        assert_eq!(h.get_u16(), CHUNK_FLAG_DONE);
        assert_eq!(h.get_u16(), CHUNK_OFFSET_DATA);
        assert_eq!(h.get_u64(), 9);
        assert_eq!(h.get_u32(), 12);
        assert_eq!(h.get_u64(), 512);
        let mut h = reply_header(true, &req, 5, 0);
        h.advance(6);
        assert_eq!(h.get_u16(), CHUNK_ERROR);
        h.advance(8);
        assert_eq!(h.get_u32(), 6);
        assert_eq!(h.get_u32(), 5);
        assert_eq!(nbd_errno(30), 1);
        assert_eq!(nbd_errno(2), 5);
    }
}
