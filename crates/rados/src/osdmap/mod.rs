//! The OSDMap: pools, OSD states and addresses, CRUSH, temporary and explicit mappings —
//! everything a client needs to find the OSD that serves an object.
//!
//! What this module is: decoders for the full map and for incrementals (ceph:
//! `src/osd/OSDMap.cc` OSDMap::decode / Incremental::decode, client section only; the
//! OSD-only section for its blocklist), `apply_incremental` as the userspace code runs
//! it, and the placement pipeline object → PG → up/acting OSDs
//! (`_pg_to_up_acting_osds`).
//!
//! From the OSD-only section only the blocklist is kept (a client must notice it was
//! blocklisted: `blocklist.rs`); the rest of it (osd_info, require_osd_release…) is walked
//! over. What it is not: no encoder for the full map.

#![warn(missing_docs)]

pub mod blocklist;
mod incremental;
pub mod pg;
mod placement;
pub mod pool;

pub use incremental::Incremental;
pub use pg::PgId;
pub use pool::{pool_flags, pool_type, PgPool, PoolSnapInfo, SnapIntervals};

use crate::crush::CrushMap;
use ceph_encoding::{ceph_crc32c, DecodeError, Decoder, EntityAddrVec, UTime, Uuid};
use std::collections::BTreeMap;
use std::sync::Arc;

/// OSD state bits (`CEPH_OSD_*`, ceph: `src/include/rados.h`).
pub mod osd_state {
    /// The OSD id is allocated.
    pub const EXISTS: u32 = 1 << 0;
    /// The OSD is up.
    pub const UP: u32 = 1 << 1;
    /// Marked out automatically.
    pub const AUTOOUT: u32 = 1 << 2;
    /// Newly created.
    pub const NEW: u32 = 1 << 3;
    /// Full.
    pub const FULL: u32 = 1 << 4;
    /// Near full.
    pub const NEARFULL: u32 = 1 << 5;
    /// Backfill full.
    pub const BACKFILLFULL: u32 = 1 << 6;
    /// Destroyed (id kept for replacement).
    pub const DESTROYED: u32 = 1 << 7;
    /// Not to be marked up.
    pub const NOUP: u32 = 1 << 8;
    /// Not to be marked down.
    pub const NODOWN: u32 = 1 << 9;
    /// Not to be marked in.
    pub const NOIN: u32 = 1 << 10;
    /// Not to be marked out.
    pub const NOOUT: u32 = 1 << 11;
    /// Stopped cleanly.
    pub const STOP: u32 = 1 << 12;
}

/// Map flags (`CEPH_OSDMAP_*`).
pub mod map_flags {
    /// Some OSD is near full.
    pub const NEARFULL: u32 = 1 << 0;
    /// Some OSD is full.
    pub const FULL: u32 = 1 << 1;
    /// Reads are paused.
    pub const PAUSERD: u32 = 1 << 2;
    /// Writes are paused.
    pub const PAUSEWR: u32 = 1 << 3;
    /// Recovery is paused.
    pub const PAUSEREC: u32 = 1 << 4;
    /// OSDs may not be marked up.
    pub const NOUP: u32 = 1 << 5;
    /// OSDs may not be marked down.
    pub const NODOWN: u32 = 1 << 6;
    /// OSDs may not be marked out.
    pub const NOOUT: u32 = 1 << 7;
    /// OSDs may not be marked in.
    pub const NOIN: u32 = 1 << 8;
    /// Objects are sorted bitwise.
    pub const SORTBITWISE: u32 = 1 << 15;
}

/// `CEPH_OSD_IN`: weight of an OSD that is fully in (16.16 fixed point).
pub const CEPH_OSD_IN: u32 = 0x10000;
/// `CEPH_OSD_OUT`.
pub const CEPH_OSD_OUT: u32 = 0;
/// Default (and maximum) primary affinity.
pub const CEPH_OSD_DEFAULT_PRIMARY_AFFINITY: u32 = 0x10000;

/// The most OSD ids this client accepts in a map (an incremental may resize the arrays;
/// ceph has no limit but the wire allows 2^31).
pub const MAX_OSD_LIMIT: i32 = 1 << 20;

/// Errors of OSDMap decoding, applying and placement.
#[derive(Debug, thiserror::Error)]
pub enum OsdMapError {
    /// The bytes are not a valid encoding.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A checksum in the encoding does not match its bytes.
    #[error("{what}: bad crc, computed {actual:#010x} != encoded {expected:#010x}")]
    BadCrc {
        /// Which checksum.
        what: &'static str,
        /// The value in the encoding.
        expected: u32,
        /// The value computed over the bytes.
        actual: u32,
    },
    /// A pre-Firefly ("classic") encoding, which this decoder does not implement.
    #[error("{what}: legacy encoding v{version} is not supported")]
    Legacy {
        /// What was decoded.
        what: &'static str,
        /// Its struct_v.
        version: u8,
    },
    /// An incremental for another cluster.
    #[error("incremental fsid {inc} does not match map fsid {map}")]
    FsidMismatch {
        /// The incremental's fsid.
        inc: Uuid,
        /// The map's fsid.
        map: Uuid,
    },
    /// An incremental that does not follow this map's epoch.
    #[error("incremental epoch {inc} does not follow map epoch {map}")]
    EpochMismatch {
        /// The incremental's epoch.
        inc: u32,
        /// The map's epoch.
        map: u32,
    },
    /// An incremental names an OSD id outside the map.
    #[error("incremental touches osd.{osd} but max_osd is {max_osd}")]
    BadOsd {
        /// The OSD id.
        osd: i32,
        /// The map's max_osd after the incremental's resize.
        max_osd: i32,
    },
    /// max_osd beyond [`MAX_OSD_LIMIT`].
    #[error("max_osd {0} is out of range")]
    BadMaxOsd(i32),
    /// No such pool.
    #[error("pool {0} does not exist")]
    NoSuchPool(i64),
}

/// A decoded OSDMap (client-visible part).
#[derive(Debug, Clone)]
pub struct OsdMap {
    /// Cluster fsid.
    pub fsid: Uuid,
    /// Map epoch.
    pub epoch: u32,
    /// Creation time.
    pub created: UTime,
    /// Last modification time.
    pub modified: UTime,
    /// Pools by id.
    pub pools: BTreeMap<i64, PgPool>,
    /// Pool names by id.
    pub pool_names: BTreeMap<i64, String>,
    /// Highest pool id ever used.
    pub pool_max: i32,
    /// Map flags ([`map_flags`]).
    pub flags: u32,
    /// Number of OSD ids (`0..max_osd`).
    pub max_osd: i32,
    /// Per-OSD state bits ([`osd_state`]).
    pub osd_state: Vec<u32>,
    /// Per-OSD reweight, 16.16 (`CEPH_OSD_IN` = in, 0 = out).
    pub osd_weight: Vec<u32>,
    /// Per-OSD client (public) addresses; an empty vector when unknown.
    pub osd_addrs: Vec<EntityAddrVec>,
    /// Temporary acting sets.
    pub pg_temp: BTreeMap<PgId, Vec<i32>>,
    /// Temporary primaries.
    pub primary_temp: BTreeMap<PgId, i32>,
    /// Per-OSD primary affinity, if any is set.
    pub osd_primary_affinity: Option<Vec<u32>>,
    /// The CRUSH map.
    pub crush: Arc<CrushMap>,
    /// Erasure code profiles by name.
    pub erasure_code_profiles: BTreeMap<String, BTreeMap<String, String>>,
    /// Explicit raw mappings.
    pub pg_upmap: BTreeMap<PgId, Vec<i32>>,
    /// Explicit (from, to) replacements.
    pub pg_upmap_items: BTreeMap<PgId, Vec<(i32, i32)>>,
    /// Explicit primaries (Reef+).
    pub pg_upmap_primaries: BTreeMap<PgId, i32>,
    /// CRUSH map version.
    pub crush_version: i32,
    /// Snapshots removed in this epoch, by pool.
    pub new_removed_snaps: BTreeMap<i64, SnapIntervals>,
    /// Snapshots purged in this epoch, by pool.
    pub new_purged_snaps: BTreeMap<i64, SnapIntervals>,
    /// Last time an OSD went up or down.
    pub last_up_change: UTime,
    /// Last time an OSD went in or out.
    pub last_in_change: UTime,
    /// Blocklisted client addresses and their expiry (OSD-only section).
    pub blocklist: blocklist::BlocklistMap,
    /// Blocklisted CIDR ranges (v11 OSD-only section; prefix length in the nonce).
    pub range_blocklist: blocklist::BlocklistMap,
    /// The map's crc: verified when decoded from a full map; after `apply_incremental`
    /// the `full_crc` the incremental announced for the result.
    pub crc: Option<u32>,
}

/// `map<pg_t, vec<s32>>`.
pub(crate) fn decode_pg_vec_map(
    d: &mut Decoder<'_>,
    what: &'static str,
) -> Result<BTreeMap<PgId, Vec<i32>>, DecodeError> {
    d.map_with(
        pg::PG_T_LEN + 4,
        what,
        |d| d.decode::<PgId>(),
        |d| d.vec::<i32>(4, what),
    )
}

/// `map<pg_t, s32>`.
pub(crate) fn decode_pg_i32_map(
    d: &mut Decoder<'_>,
    what: &'static str,
) -> Result<BTreeMap<PgId, i32>, DecodeError> {
    d.map_with(pg::PG_T_LEN + 4, what, |d| d.decode::<PgId>(), |d| d.i32())
}

/// `map<pg_t, vec<pair<s32,s32>>>`.
pub(crate) fn decode_pg_pairs_map(
    d: &mut Decoder<'_>,
    what: &'static str,
) -> Result<BTreeMap<PgId, Vec<(i32, i32)>>, DecodeError> {
    d.map_with(
        pg::PG_T_LEN + 4,
        what,
        |d| d.decode::<PgId>(),
        |d| d.vec::<(i32, i32)>(8, what),
    )
}

/// `map<s64, pg_pool_t>`.
pub(crate) fn decode_pools(d: &mut Decoder<'_>) -> Result<BTreeMap<i64, PgPool>, DecodeError> {
    d.map_with(14, "pools", |d| d.i64(), PgPool::decode)
}

/// `map<string, map<string,string>>`.
pub(crate) fn decode_profiles(
    d: &mut Decoder<'_>,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, DecodeError> {
    d.map_with(
        8,
        "erasure_code_profiles",
        |d| d.string(),
        |d| d.map::<String, String>(8, "profile"),
    )
}

/// `map<s64, interval_set<snapid_t>>`.
pub(crate) fn decode_snap_map(
    d: &mut Decoder<'_>,
) -> Result<BTreeMap<i64, SnapIntervals>, DecodeError> {
    d.map_with(12, "snap intervals", |d| d.i64(), pool::decode_intervals)
}

/// The outer `ENCODE_START` of a full map or incremental: returns (struct_v, body start,
/// body end) as offsets into `bytes`, rejecting the pre-Firefly layouts.
pub(crate) fn outer_envelope(
    bytes: &[u8],
    what: &'static str,
) -> Result<(u8, usize, usize), OsdMapError> {
    let mut d = Decoder::new(bytes);
    let v = d.u8()?;
    if v < 7 {
        return Err(OsdMapError::Legacy { what, version: v });
    }
    let compat = d.u8()?;
    if compat > 8 {
        return Err(DecodeError::IncompatibleVersion {
            what,
            compat,
            supported: 8,
        }
        .into());
    }
    let len = d.u32()? as usize;
    if len > d.remaining() {
        return Err(DecodeError::Truncated {
            what,
            needed: len,
            available: d.remaining(),
        }
        .into());
    }
    Ok((v, 6, 6 + len))
}

impl OsdMap {
    /// Whether the client instance at `addr` (its IP as the cluster sees it, port, nonce)
    /// is blocklisted in this map (ceph: src/osd/OSDMap.cc `is_blocklisted`).
    pub fn is_blocklisted(&self, addr: &ceph_encoding::EntityAddr) -> bool {
        blocklist::is_blocklisted(&self.blocklist, &self.range_blocklist, addr)
    }

    /// Decode a full map (`OSDMap::decode`) and verify its crc.
    pub fn decode(bytes: &[u8]) -> Result<OsdMap, OsdMapError> {
        let (v, start, end) = outer_envelope(bytes, "OSDMap")?;
        let mut body = Decoder::new(&bytes[start..end]);

        // client-usable data
        let (cv, mut c) = body.versioned(10, "OSDMap client data")?;
        let c = &mut c;
        let fsid = c.decode()?;
        let epoch = c.u32()?;
        let created = c.decode()?;
        let modified = c.decode()?;
        let pools = decode_pools(c)?;
        let pool_names = c.map::<i64, String>(12, "pool_name")?;
        let pool_max = c.i32()?;
        let flags = c.u32()?;
        let max_osd = c.i32()?;
        if !(0..=MAX_OSD_LIMIT).contains(&max_osd) {
            return Err(OsdMapError::BadMaxOsd(max_osd));
        }
        let osd_state = if cv >= 5 {
            c.vec::<u32>(4, "osd_state")?
        } else {
            c.vec::<u8>(1, "osd_state")?
                .into_iter()
                .map(u32::from)
                .collect()
        };
        let osd_weight = c.vec::<u32>(4, "osd_weight")?;
        let osd_addrs = c.vec::<EntityAddrVec>(1, "client_addrs")?;
        let pg_temp = decode_pg_vec_map(c, "pg_temp")?;
        let primary_temp = decode_pg_i32_map(c, "primary_temp")?;
        let mut osd_primary_affinity = None;
        if cv >= 2 {
            let a = c.vec::<u32>(4, "osd_primary_affinity")?;
            if !a.is_empty() {
                osd_primary_affinity = Some(a);
            }
        }
        let crush = CrushMap::decode(c.blob("crush")?)?;
        let mut m = OsdMap {
            fsid,
            epoch,
            created,
            modified,
            pools,
            pool_names,
            pool_max,
            flags,
            max_osd,
            osd_state,
            osd_weight,
            osd_addrs,
            pg_temp,
            primary_temp,
            osd_primary_affinity,
            crush: Arc::new(crush),
            erasure_code_profiles: BTreeMap::new(),
            pg_upmap: BTreeMap::new(),
            pg_upmap_items: BTreeMap::new(),
            pg_upmap_primaries: BTreeMap::new(),
            crush_version: 0,
            new_removed_snaps: BTreeMap::new(),
            new_purged_snaps: BTreeMap::new(),
            last_up_change: UTime::default(),
            last_in_change: UTime::default(),
            blocklist: BTreeMap::new(),
            range_blocklist: BTreeMap::new(),
            crc: None,
        };
        if cv >= 3 {
            m.erasure_code_profiles = decode_profiles(c)?;
        }
        if cv >= 4 {
            m.pg_upmap = decode_pg_vec_map(c, "pg_upmap")?;
            m.pg_upmap_items = decode_pg_pairs_map(c, "pg_upmap_items")?;
        }
        if cv >= 6 {
            m.crush_version = c.i32()?;
        }
        if cv >= 7 {
            m.new_removed_snaps = decode_snap_map(c)?;
            m.new_purged_snaps = decode_snap_map(c)?;
        }
        if cv >= 9 {
            m.last_up_change = c.decode()?;
            m.last_in_change = c.decode()?;
        }
        if cv >= 10 {
            m.pg_upmap_primaries = decode_pg_i32_map(c, "pg_upmap_primaries")?;
        }

        // extended, osd-only data: only the blocklist is kept
        let (ev, mut ext) = body.versioned(u8::MAX, "OSDMap osd-only data")?;
        (m.blocklist, m.range_blocklist) = blocklist::decode_full_osd_only(ev, &mut ext)?;

        if v >= 8 {
            // crc over everything before it, continued over whatever follows it
            let crc_at = start + body.position();
            let expected = body.u32()?;
            let actual = ceph_crc32c(
                ceph_crc32c(u32::MAX, &bytes[..crc_at]),
                &bytes[crc_at + 4..end],
            );
            if expected != actual {
                return Err(OsdMapError::BadCrc {
                    what: "OSDMap",
                    expected,
                    actual,
                });
            }
            m.crc = Some(expected);
        }
        m.normalize();
        Ok(m)
    }

    /// Make every per-OSD array exactly `max_osd` long (a no-op for any map ceph wrote;
    /// keeps indexing safe for one it did not).
    pub(crate) fn normalize(&mut self) {
        let n = self.max_osd.clamp(0, MAX_OSD_LIMIT) as usize;
        self.osd_state.resize(n, 0);
        self.osd_weight.resize(n, CEPH_OSD_OUT);
        self.osd_addrs.resize(n, EntityAddrVec::default());
        if let Some(a) = &mut self.osd_primary_affinity {
            a.resize(n, CEPH_OSD_DEFAULT_PRIMARY_AFFINITY);
        }
    }

    /// The pool with this id.
    pub fn pool(&self, id: i64) -> Option<&PgPool> {
        self.pools.get(&id)
    }

    /// A pool's name.
    pub fn pool_name(&self, id: i64) -> Option<&str> {
        self.pool_names.get(&id).map(String::as_str)
    }

    /// Look a pool id up by name.
    pub fn lookup_pool(&self, name: &str) -> Option<i64> {
        self.pool_names
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(&id, _)| id)
    }

    fn state(&self, osd: i32) -> u32 {
        if osd < 0 || osd >= self.max_osd {
            return 0;
        }
        self.osd_state.get(osd as usize).copied().unwrap_or(0)
    }

    /// `exists(osd)`: the id is allocated.
    pub fn exists(&self, osd: i32) -> bool {
        self.state(osd) & osd_state::EXISTS != 0
    }

    /// `is_up(osd)`: exists and up.
    pub fn is_up(&self, osd: i32) -> bool {
        self.exists(osd) && self.state(osd) & osd_state::UP != 0
    }

    /// `is_down(osd)`: not up (including ids that do not exist).
    pub fn is_down(&self, osd: i32) -> bool {
        !self.is_up(osd)
    }

    /// The 16.16 reweight of `osd` (0 when it does not exist).
    pub fn weight(&self, osd: i32) -> u32 {
        if !self.exists(osd) {
            return CEPH_OSD_OUT;
        }
        self.osd_weight
            .get(osd as usize)
            .copied()
            .unwrap_or(CEPH_OSD_OUT)
    }

    /// `is_in(osd)`: exists and has a non-zero weight.
    pub fn is_in(&self, osd: i32) -> bool {
        self.weight(osd) != CEPH_OSD_OUT
    }

    /// `is_out(osd)`.
    pub fn is_out(&self, osd: i32) -> bool {
        !self.is_in(osd)
    }

    /// The state bits of `osd` ([`osd_state`]).
    pub fn osd_state_bits(&self, osd: i32) -> u32 {
        self.state(osd)
    }

    /// Primary affinity of `osd` (16.16; default 0x10000).
    pub fn primary_affinity(&self, osd: i32) -> u32 {
        match (&self.osd_primary_affinity, usize::try_from(osd)) {
            (Some(a), Ok(i)) => a
                .get(i)
                .copied()
                .unwrap_or(CEPH_OSD_DEFAULT_PRIMARY_AFFINITY),
            _ => CEPH_OSD_DEFAULT_PRIMARY_AFFINITY,
        }
    }

    /// The client-facing addresses of `osd`, if it exists and has any.
    pub fn osd_addrs(&self, osd: i32) -> Option<&EntityAddrVec> {
        if !self.exists(osd) {
            return None;
        }
        self.osd_addrs.get(osd as usize).filter(|a| !a.0.is_empty())
    }

    /// Ids of the OSDs that exist.
    pub fn osds(&self) -> impl Iterator<Item = i32> + '_ {
        (0..self.max_osd).filter(|&o| self.exists(o))
    }

    /// Set an OSD's state bits (tools and tests; osdmaptool `--mark-up`).
    pub fn set_state(&mut self, osd: i32, state: u32) {
        if let Some(s) = usize::try_from(osd)
            .ok()
            .and_then(|i| self.osd_state.get_mut(i))
        {
            *s = state;
        }
    }

    /// `set_weight(osd, w)`: set the reweight; a non-zero weight also marks the OSD as
    /// existing.
    pub fn set_weight(&mut self, osd: i32, w: u32) {
        let Ok(i) = usize::try_from(osd) else { return };
        if i >= self.osd_weight.len() || i >= self.osd_state.len() {
            return;
        }
        self.osd_weight[i] = w;
        if w != 0 {
            self.osd_state[i] |= osd_state::EXISTS;
        }
    }

    /// `set_primary_affinity(osd, a)`.
    pub fn set_primary_affinity(&mut self, osd: i32, a: u32) {
        let Ok(i) = usize::try_from(osd) else { return };
        if osd >= self.max_osd {
            return;
        }
        let n = self.max_osd as usize;
        let v = self
            .osd_primary_affinity
            .get_or_insert_with(|| vec![CEPH_OSD_DEFAULT_PRIMARY_AFFINITY; n]);
        if v.len() < n {
            v.resize(n, CEPH_OSD_DEFAULT_PRIMARY_AFFINITY);
        }
        v[i] = a;
    }

    /// `set_max_osd(m)`: resize the per-OSD arrays (new OSDs do not exist, are out,
    /// have no address and default primary affinity).
    pub fn set_max_osd(&mut self, m: i32) -> Result<(), OsdMapError> {
        if !(0..=MAX_OSD_LIMIT).contains(&m) {
            return Err(OsdMapError::BadMaxOsd(m));
        }
        let n = m as usize;
        self.max_osd = m;
        self.osd_state.resize(n, 0);
        self.osd_weight.resize(n, CEPH_OSD_OUT);
        self.osd_addrs.resize(n, EntityAddrVec::default());
        if let Some(a) = &mut self.osd_primary_affinity {
            a.resize(n, CEPH_OSD_DEFAULT_PRIMARY_AFFINITY);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
