use crate::{Decode, DecodeError, Decoder, Encode, EncodeExt, Result};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `utime_t`: seconds and nanoseconds since the epoch (or a duration), u32 each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UTime {
    /// Seconds.
    pub sec: u32,
    /// Nanoseconds.
    pub nsec: u32,
}

impl UTime {
    /// From a `SystemTime` (clamped to the u32 range Ceph uses).
    pub fn from_system(t: std::time::SystemTime) -> Self {
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        UTime {
            sec: d.as_secs().min(u32::MAX as u64) as u32,
            nsec: d.subsec_nanos(),
        }
    }
    /// As a `std::time::Duration` (for validity periods).
    pub fn as_duration(&self) -> std::time::Duration {
        std::time::Duration::new(self.sec as u64, self.nsec.min(999_999_999))
    }
}

impl Decode for UTime {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(UTime {
            sec: d.u32()?,
            nsec: d.u32()?,
        })
    }
}
impl Encode for UTime {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.sec);
        out.put_u32(self.nsec);
    }
}

/// `uuid_d`: 16 raw bytes (the cluster fsid).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(pub [u8; 16]);

impl Decode for Uuid {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(Uuid(d.array("uuid")?))
    }
}
impl Encode for Uuid {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_raw(&self.0);
    }
}
impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        for (i, x) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{x:02x}")?;
        }
        Ok(())
    }
}
impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Entity types (`CEPH_ENTITY_TYPE_*`). Open newtype: unknown values survive decoding.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityType(pub u32);

impl EntityType {
    /// Monitor.
    pub const MON: EntityType = EntityType(0x01);
    /// Metadata server.
    pub const MDS: EntityType = EntityType(0x02);
    /// Object storage daemon.
    pub const OSD: EntityType = EntityType(0x04);
    /// Client.
    pub const CLIENT: EntityType = EntityType(0x08);
    /// Manager.
    pub const MGR: EntityType = EntityType(0x10);
    /// The auth service.
    pub const AUTH: EntityType = EntityType(0x20);

    /// The name used in `type.id` strings.
    pub fn name(self) -> &'static str {
        match self {
            Self::MON => "mon",
            Self::MDS => "mds",
            Self::OSD => "osd",
            Self::CLIENT => "client",
            Self::MGR => "mgr",
            Self::AUTH => "auth",
            _ => "unknown",
        }
    }

    /// Parse `client`, `osd`, ...
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "mon" => Self::MON,
            "mds" => Self::MDS,
            "osd" => Self::OSD,
            "client" => Self::CLIENT,
            "mgr" => Self::MGR,
            "auth" => Self::AUTH,
            _ => return None,
        })
    }
}
impl fmt::Debug for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:#x})", self.name(), self.0)
    }
}

/// `EntityName`, the auth identity: `client.kubernetes`. Encoded as u32 type + string id.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityName {
    /// Entity type.
    pub ty: EntityType,
    /// The part after the dot.
    pub id: String,
}

impl EntityName {
    /// `client.<id>`.
    pub fn client(id: impl Into<String>) -> Self {
        EntityName {
            ty: EntityType::CLIENT,
            id: id.into(),
        }
    }
    /// Parse `type.id`; a bare id means a client (as Ceph's `--id`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once('.') {
            Some((t, id)) if !id.is_empty() => Some(EntityName {
                ty: EntityType::from_name(t)?,
                id: id.to_string(),
            }),
            Some(_) => None,
            None if !s.is_empty() => Some(EntityName::client(s)),
            None => None,
        }
    }
}
impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.ty.name(), self.id)
    }
}
impl fmt::Debug for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
impl Decode for EntityName {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(EntityName {
            ty: EntityType(d.u32()?),
            id: d.string()?,
        })
    }
}
impl Encode for EntityName {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.ty.0);
        out.put_str(&self.id);
    }
}

/// `entity_name_t`: u8 type + s64 number (`client.4123`, `osd.3`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EntityNameT {
    /// Entity type (one byte on the wire).
    pub ty: u8,
    /// Number (global id for clients).
    pub num: i64,
}
impl EntityNameT {
    /// `client.<gid>`.
    pub fn client(gid: u64) -> Self {
        EntityNameT {
            ty: EntityType::CLIENT.0 as u8,
            num: gid as i64,
        }
    }
}
impl fmt::Display for EntityNameT {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", EntityType(self.ty as u32).name(), self.num)
    }
}
impl fmt::Debug for EntityNameT {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
impl Decode for EntityNameT {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(EntityNameT {
            ty: d.u8()?,
            num: d.i64()?,
        })
    }
}
impl Encode for EntityNameT {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.ty);
        out.put_i64(self.num);
    }
}

/// `entity_addr_t` type field.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EntityAddrType(pub u32);
impl EntityAddrType {
    /// No address.
    pub const NONE: Self = Self(0);
    /// msgr1.
    pub const LEGACY: Self = Self(1);
    /// msgr2.
    pub const MSGR2: Self = Self(2);
    /// Either (clients that do not listen).
    pub const ANY: Self = Self(3);
}
impl fmt::Debug for EntityAddrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match *self {
            Self::NONE => "none",
            Self::LEGACY => "v1",
            Self::MSGR2 => "v2",
            Self::ANY => "any",
            _ => "?",
        })
    }
}

/// `entity_addr_t`: type, nonce and an optional socket address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EntityAddr {
    /// Address type.
    pub ty: EntityAddrType,
    /// Instance nonce: part of the identity (watchers, blocklist entries).
    pub nonce: u32,
    /// The IP address and port; `None` for an empty address.
    pub addr: Option<SocketAddr>,
    /// For an empty address: the length of the all-zero sockaddr it was encoded with
    /// (Ceph writes 0, or a zeroed `sockaddr_in6` of 28 bytes in newer releases), kept so
    /// re-encoding is byte-exact.
    pub empty_len: u32,
}

impl EntityAddr {
    /// A msgr2 address with nonce 0.
    pub fn msgr2(addr: SocketAddr) -> Self {
        EntityAddr {
            ty: EntityAddrType::MSGR2,
            nonce: 0,
            addr: Some(addr),
            empty_len: 0,
        }
    }
}

impl fmt::Display for EntityAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.ty {
            EntityAddrType::MSGR2 => "v2:",
            EntityAddrType::LEGACY => "v1:",
            EntityAddrType::ANY => "any:",
            _ => "",
        };
        match self.addr {
            Some(a) => write!(f, "{prefix}{a}/{}", self.nonce),
            None => write!(f, "{prefix}-/{}", self.nonce),
        }
    }
}
impl fmt::Debug for EntityAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

fn decode_sockaddr(b: &[u8], family_be: bool) -> Result<Option<SocketAddr>> {
    if b.len() < 2 {
        return Ok(None);
    }
    let family = if family_be {
        u16::from_be_bytes([b[0], b[1]])
    } else {
        u16::from_le_bytes([b[0], b[1]])
    };
    match family {
        0 => Ok(None),
        AF_INET if b.len() >= 8 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Ok(Some(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        AF_INET6 if b.len() >= 24 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            Ok(Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), port)))
        }
        other => Err(DecodeError::invalid(
            "entity_addr_t",
            format!("address family {other}"),
        )),
    }
}

impl Decode for EntityAddr {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let marker = d.u8()?;
        match marker {
            0 => {
                // Legacy: 3 more pad bytes, nonce, 128-byte sockaddr_storage (family BE).
                d.skip(3, "entity_addr_t legacy")?;
                let nonce = d.u32()?;
                let ss = d.take(128, "sockaddr_storage")?;
                Ok(EntityAddr {
                    ty: EntityAddrType::LEGACY,
                    nonce,
                    addr: decode_sockaddr(ss, true)?,
                    empty_len: 0,
                })
            }
            1 => {
                let (_v, mut s) = d.versioned(1, "entity_addr_t")?;
                let ty = EntityAddrType(s.u32()?);
                let nonce = s.u32()?;
                let len = s.u32()? as usize;
                let sa = s.take(len, "sockaddr")?;
                let addr = decode_sockaddr(sa, false)?;
                let empty_len = if addr.is_none() && sa.iter().all(|b| *b == 0) {
                    len as u32
                } else {
                    0
                };
                Ok(EntityAddr {
                    ty,
                    nonce,
                    addr,
                    empty_len,
                })
            }
            m => Err(DecodeError::invalid("entity_addr_t", format!("marker {m}"))),
        }
    }
}

impl Encode for EntityAddr {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        let g = out.start_versioned(1, 1);
        out.put_u32(self.ty.0);
        out.put_u32(self.nonce);
        match self.addr {
            None => {
                out.put_u32(self.empty_len);
                out.extend(std::iter::repeat_n(0u8, self.empty_len as usize));
            }
            Some(SocketAddr::V4(a)) => {
                out.put_u32(16);
                out.put_u16(AF_INET);
                out.put_raw(&a.port().to_be_bytes());
                out.put_raw(&a.ip().octets());
                out.put_raw(&[0; 8]);
            }
            Some(SocketAddr::V6(a)) => {
                out.put_u32(28);
                out.put_u16(AF_INET6);
                out.put_raw(&a.port().to_be_bytes());
                out.put_raw(&a.flowinfo().to_be_bytes());
                out.put_raw(&a.ip().octets());
                out.put_raw(&a.scope_id().to_be_bytes());
            }
        }
        g.finish(out);
    }
}

/// `entity_addrvec_t`: the addresses an entity is reachable at (v2 first, then v1).
#[derive(Clone, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct EntityAddrVec(pub Vec<EntityAddr>);

impl EntityAddrVec {
    /// The msgr2 entry, the one a msgr2 client must dial and quote in CLIENT_IDENT.
    pub fn msgr2(&self) -> Option<&EntityAddr> {
        self.0.iter().find(|a| a.ty == EntityAddrType::MSGR2)
    }
}

impl fmt::Display for EntityAddrVec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
        }
        f.write_str("]")
    }
}
impl fmt::Debug for EntityAddrVec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Decode for EntityAddrVec {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        match d.rest().first() {
            Some(0) | Some(1) => Ok(EntityAddrVec(vec![EntityAddr::decode(d)?])),
            Some(2) => {
                d.u8()?;
                Ok(EntityAddrVec(d.vec(10, "entity_addrvec_t")?))
            }
            Some(m) => Err(DecodeError::invalid(
                "entity_addrvec_t",
                format!("marker {m}"),
            )),
            None => Err(DecodeError::Truncated {
                what: "entity_addrvec_t",
                needed: 1,
                available: 0,
            }),
        }
    }
}
impl Encode for EntityAddrVec {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(2);
        out.put_u32(self.0.len() as u32);
        for a in &self.0 {
            a.encode(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monmaptool_addrvec_golden() {
        // From the protocol map §1.4: monmaptool's encoding of [v2:127.0.0.1:3300, ...].
        let v2 = EntityAddr::msgr2("127.0.0.1:3300".parse().unwrap());
        let bytes = crate::encode_to_vec(&v2);
        let want = [
            1, 1, 1, 28, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 2, 0, 0x0c, 0xe4, 127, 0, 0,
            1, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(bytes, want);
        let back: EntityAddr = crate::decode_exact(&bytes).unwrap();
        assert_eq!(back, v2);
        assert_eq!(back.to_string(), "v2:127.0.0.1:3300/0");
    }

    #[test]
    fn entity_name_parse() {
        assert_eq!(
            EntityName::parse("client.kubernetes").unwrap().to_string(),
            "client.kubernetes"
        );
        assert_eq!(
            EntityName::parse("admin").unwrap().to_string(),
            "client.admin"
        );
        assert!(EntityName::parse("bogus.x").is_none());
    }

    #[test]
    fn uuid_display() {
        let u = Uuid([0x11; 16]);
        assert_eq!(u.to_string(), "11111111-1111-1111-1111-111111111111");
    }
}
