//! The OSD-only ("extended") sections of the full map and of incrementals, decoded for the
//! one thing a client needs from them: the blocklist. A client learns it was blocklisted
//! from the map, before any OSD answers it EBLOCKLISTED (ceph: src/osd/OSDMap.cc
//! `OSDMap::decode`/`Incremental::decode` extended sections, `is_blocklisted`).
//!
//! Every field is walked (not only the ones kept), so the ranged blocklist of v11 is reached
//! and a misparse shows up as a wrong length in the corpus tests rather than as garbage.

use super::decode_snap_map;
use ceph_encoding::{DecodeError, Decoder, EntityAddr, EntityAddrVec, UTime};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// `map<entity_addr_t, utime_t>`: the address and when its entry expires.
pub type BlocklistMap = BTreeMap<EntityAddr, UTime>;

/// What the extended section of an incremental changes in the blocklist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlocklistChanges {
    /// Entries added (address → expiry).
    pub new_blocklist: BlocklistMap,
    /// Entries removed.
    pub old_blocklist: Vec<EntityAddr>,
    /// CIDR ranges added (the prefix length is in the address' nonce).
    pub new_range_blocklist: BlocklistMap,
    /// CIDR ranges removed.
    pub old_range_blocklist: Vec<EntityAddr>,
}

fn addr_map(d: &mut Decoder<'_>, what: &'static str) -> Result<BlocklistMap, DecodeError> {
    // an entity_addr_t takes at least 1 + 6 + 12 bytes, a utime_t 8
    d.map::<EntityAddr, UTime>(27, what)
}

fn addrvec_vec(d: &mut Decoder<'_>, what: &'static str) -> Result<(), DecodeError> {
    d.vec::<EntityAddrVec>(1, what).map(|_| ())
}

fn addrvec_map(d: &mut Decoder<'_>, what: &'static str) -> Result<(), DecodeError> {
    d.map::<i32, EntityAddrVec>(5, what).map(|_| ())
}

/// Skip a `vector`/`map` of fixed-size elements.
fn skip_fixed(d: &mut Decoder<'_>, elem: usize, what: &'static str) -> Result<(), DecodeError> {
    let n = d.count(elem, what)?;
    d.skip(n * elem, what)
}

/// Skip a versioned (`ENCODE_START`) value.
fn skip_versioned(d: &mut Decoder<'_>, what: &'static str) -> Result<(), DecodeError> {
    d.versioned(u8::MAX, what).map(|_| ())
}

/// The full map's extended section (`v` is its struct_v; `d` its exact contents). Returns
/// (blocklist, range_blocklist).
pub(crate) fn decode_full_osd_only(
    v: u8,
    d: &mut Decoder<'_>,
) -> Result<(BlocklistMap, BlocklistMap), DecodeError> {
    addrvec_vec(d, "hb_back_addrs")?;
    // osd_info_t: u8 struct_v + six epochs
    skip_fixed(d, 25, "osd_info")?;
    let blocklist = addr_map(d, "blocklist")?;
    let mut range = BlocklistMap::new();
    addrvec_vec(d, "cluster_addrs")?;
    d.u32()?; // cluster_snapshot_epoch
    d.string()?; // cluster_snapshot
    skip_fixed(d, 16, "osd_uuid")?;
    let n = d.count(6, "osd_xinfo")?;
    for _ in 0..n {
        skip_versioned(d, "osd_xinfo_t")?;
    }
    addrvec_vec(d, "hb_front_addrs")?;
    if v >= 2 {
        d.skip(8, "nearfull/full ratio")?;
    }
    if v >= 3 {
        d.skip(4, "backfillfull_ratio")?;
    }
    if v == 4 {
        d.string()?; // require_min_compat_client, as a name
    }
    if v >= 5 {
        d.skip(2, "require_min_compat_client/require_osd_release")?;
    }
    if v >= 6 {
        decode_snap_map(d)?; // removed_snaps_queue
    }
    if v >= 8 {
        skip_fixed(d, 8, "crush_node_flags")?;
    }
    if v >= 9 {
        skip_fixed(d, 8, "device_class_flags")?;
    }
    if v >= 10 {
        d.skip(1 + 4 + 4 + 4 + 4, "stretch mode")?;
    }
    if v >= 11 {
        range = addr_map(d, "range_blocklist")?;
    }
    if v >= 12 {
        d.bool()?; // allow_crimson
    }
    Ok((blocklist, range))
}

/// An incremental's extended section.
pub(crate) fn decode_inc_osd_only(
    v: u8,
    d: &mut Decoder<'_>,
) -> Result<BlocklistChanges, DecodeError> {
    let mut c = BlocklistChanges::default();
    addrvec_map(d, "new_hb_back_up")?;
    skip_fixed(d, 8, "new_up_thru")?;
    skip_fixed(d, 12, "new_last_clean_interval")?;
    skip_fixed(d, 8, "new_lost")?;
    c.new_blocklist = addr_map(d, "new_blocklist")?;
    c.old_blocklist = d.vec::<EntityAddr>(19, "old_blocklist")?;
    addrvec_map(d, "new_up_cluster")?;
    d.string()?; // cluster_snapshot
    skip_fixed(d, 20, "new_uuid")?;
    let n = d.count(10, "new_xinfo")?;
    for _ in 0..n {
        d.i32()?;
        skip_versioned(d, "osd_xinfo_t")?;
    }
    addrvec_map(d, "new_hb_front_up")?;
    if v >= 2 {
        d.u64()?; // encode_features
    }
    if v >= 3 {
        d.skip(8, "new_nearfull/full_ratio")?;
    }
    if v >= 4 {
        d.skip(4, "new_backfillfull_ratio")?;
    }
    if v == 5 {
        d.string()?;
    }
    if v >= 6 {
        d.skip(2, "new_require_min_compat_client/osd_release")?;
    }
    if v >= 8 {
        skip_fixed(d, 8, "new_crush_node_flags")?;
    }
    if v >= 9 {
        skip_fixed(d, 8, "new_device_class_flags")?;
    }
    if v >= 10 {
        d.skip(1 + 4 + 4 + 4 + 4 + 1, "stretch mode")?;
    }
    if v >= 11 {
        c.new_range_blocklist = addr_map(d, "new_range_blocklist")?;
        c.old_range_blocklist = d.vec::<EntityAddr>(19, "old_range_blocklist")?;
    }
    if v >= 12 {
        d.u8()?; // mutate_allow_crimson
    }
    Ok(c)
}

/// Whether `a` is blocklisted by `list` or `ranges` (ceph: src/osd/OSDMap.cc
/// `is_blocklisted`): entries are compared without their address type (Nautilus+ monitors
/// store every entry as TYPE_ANY); an entry with port 0 and nonce 0 covers the whole IP;
/// a range entry covers every address of its CIDR prefix (prefix length in its nonce).
pub fn is_blocklisted(list: &BlocklistMap, ranges: &BlocklistMap, a: &EntityAddr) -> bool {
    let Some(sa) = a.addr else {
        return false;
    };
    let same = |e: &EntityAddr, port: u16, nonce: u32| {
        e.nonce == nonce
            && e.addr
                .is_some_and(|x| x.ip() == sa.ip() && x.port() == port)
    };
    if list
        .keys()
        .any(|e| same(e, sa.port(), a.nonce) || same(e, 0, 0))
    {
        return true;
    }
    ranges.keys().any(|r| {
        let Some(net) = r.addr else { return false };
        prefix_matches(net.ip(), r.nonce, sa.ip())
    })
}

/// `range_bits::matches`: same family and equal under the prefix mask (a prefix of 0
/// matches every address of the family, as the OSD's zero mask does).
fn prefix_matches(net: IpAddr, bits: u32, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits.min(32))
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits.min(128))
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceph_encoding::EntityAddrType;

    fn addr(s: &str, nonce: u32, ty: EntityAddrType) -> EntityAddr {
        EntityAddr {
            ty,
            nonce,
            addr: Some(s.parse().unwrap()),
            empty_len: 0,
        }
    }

    #[test]
    fn matching_follows_osdmap_is_blocklisted() {
        let me = addr("10.1.2.3:0", 4242, EntityAddrType::MSGR2);
        let t = UTime { sec: 1, nsec: 0 };
        let none = BlocklistMap::new();
        assert!(!is_blocklisted(&none, &none, &me));
        // this instance (type ANY in the map matches our msgr2 address)
        let l: BlocklistMap = [(addr("10.1.2.3:0", 4242, EntityAddrType::ANY), t)].into();
        assert!(is_blocklisted(&l, &none, &me));
        // another instance on the same IP does not
        let l: BlocklistMap = [(addr("10.1.2.3:0", 4243, EntityAddrType::ANY), t)].into();
        assert!(!is_blocklisted(&l, &none, &me));
        // the whole IP
        let l: BlocklistMap = [(addr("10.1.2.3:0", 0, EntityAddrType::ANY), t)].into();
        assert!(is_blocklisted(&l, &none, &me));
        let l: BlocklistMap = [(addr("10.1.2.4:0", 0, EntityAddrType::ANY), t)].into();
        assert!(!is_blocklisted(&l, &none, &me));
        // ranges: /24 covers, /32 of another host does not, v6 never matches v4
        let r: BlocklistMap = [(addr("10.1.2.0:0", 24, EntityAddrType::ANY), t)].into();
        assert!(is_blocklisted(&none, &r, &me));
        let r: BlocklistMap = [(addr("10.1.2.9:0", 32, EntityAddrType::ANY), t)].into();
        assert!(!is_blocklisted(&none, &r, &me));
        let r: BlocklistMap = [(addr("[::]:0", 0, EntityAddrType::ANY), t)].into();
        assert!(!is_blocklisted(&none, &r, &me));
        let v6 = addr("[fd00::5]:0", 7, EntityAddrType::MSGR2);
        let r: BlocklistMap = [(addr("[fd00::]:0", 64, EntityAddrType::ANY), t)].into();
        assert!(is_blocklisted(&none, &r, &v6));
    }
}

/// Every OSDMap and Incremental of the object corpus (15.x to 20.x): the extended section
/// of each known version is consumed exactly, so every field before the (range) blocklist
/// was walked with its right size.
#[cfg(test)]
mod corpus {
    use super::*;
    use crate::osdmap::{outer_envelope, Incremental, OsdMap};
    use std::path::PathBuf;

    /// Newest version of the extended sections whose every field we know (Squid/Tentacle).
    const KNOWN_OSD_ONLY_V: u8 = 12;

    fn root() -> PathBuf {
        std::env::var_os("CEPH_OBJECT_CORPUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ceph-object-corpus")
            })
    }

    fn objects(ty: &str) -> Vec<(String, Vec<u8>)> {
        let archive = root().join("archive");
        let mut out = Vec::new();
        let versions = std::fs::read_dir(&archive)
            .unwrap_or_else(|e| panic!("no object corpus at {} ({e})", archive.display()));
        for v in versions {
            let v = v.unwrap().path();
            let Ok(files) = std::fs::read_dir(v.join("objects").join(ty)) else {
                continue;
            };
            for f in files {
                let f = f.unwrap().path();
                out.push((f.display().to_string(), std::fs::read(&f).unwrap()));
            }
        }
        out
    }

    /// The extended section's (version, bytes) of a full map or incremental.
    fn extended(bytes: &[u8], what: &'static str) -> (u8, Vec<u8>) {
        let (_v, start, end) = outer_envelope(bytes, what).unwrap();
        let mut body = Decoder::new(&bytes[start..end]);
        body.versioned(u8::MAX, "client").unwrap();
        let (ev, ext) = body.versioned(u8::MAX, "osd-only").unwrap();
        (ev, ext.rest().to_vec())
    }

    #[test]
    fn corpus_extended_sections_decode_exactly() {
        let maps = objects("OSDMap");
        let incs = objects("OSDMap::Incremental");
        assert!(maps.len() >= 50 && incs.len() >= 50, "corpus too small");
        let mut versions = std::collections::BTreeSet::new();
        let mut listed = 0;
        let mut changed = 0;
        for (name, b) in &maps {
            let (v, ext) = extended(b, "OSDMap");
            versions.insert(("full", v));
            let mut d = Decoder::new(&ext);
            decode_full_osd_only(v, &mut d).unwrap_or_else(|e| panic!("{name}: {e}"));
            if v <= KNOWN_OSD_ONLY_V {
                assert_eq!(d.remaining(), 0, "{name}: v{v} left bytes");
            }
            let m = OsdMap::decode(b).unwrap_or_else(|e| panic!("{name}: {e}"));
            listed += m.blocklist.len();
        }
        for (name, b) in &incs {
            let (v, ext) = extended(b, "OSDMap::Incremental");
            versions.insert(("inc", v));
            let mut d = Decoder::new(&ext);
            decode_inc_osd_only(v, &mut d).unwrap_or_else(|e| panic!("{name}: {e}"));
            if v <= KNOWN_OSD_ONLY_V {
                assert_eq!(d.remaining(), 0, "{name}: v{v} left bytes");
            }
            let inc = Incremental::decode(b).unwrap_or_else(|e| panic!("{name}: {e}"));
            changed += inc.blocklist.new_blocklist.len() + inc.blocklist.old_blocklist.len();
        }
        eprintln!(
            "extended versions seen: {versions:?}; blocklist entries {listed}, changes {changed}"
        );
    }
}
