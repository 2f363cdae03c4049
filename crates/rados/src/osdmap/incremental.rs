//! `OSDMap::Incremental`: one epoch's changes, and `apply_incremental`.

use super::{
    decode_pg_i32_map, decode_pg_pairs_map, decode_pg_vec_map, decode_pools, decode_profiles,
    decode_snap_map, osd_state, outer_envelope, OsdMap, OsdMapError, PgId, PgPool, SnapIntervals,
    CEPH_OSD_DEFAULT_PRIMARY_AFFINITY,
};
use crate::crush::CrushMap;
use ceph_encoding::{ceph_crc32c, Decoder, EntityAddrVec, UTime, Uuid};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The client section of `OSDMap::Incremental` (ceph: `src/osd/OSDMap.cc`
/// Incremental::decode). Maps are applied in key order, as `std::map` iterates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Incremental {
    /// Cluster fsid.
    pub fsid: Uuid,
    /// The epoch this incremental produces.
    pub epoch: u32,
    /// Modification time.
    pub modified: UTime,
    /// New pool_max, or -1.
    pub new_pool_max: i64,
    /// New map flags, or -1.
    pub new_flags: i32,
    /// A complete map encoding replacing everything (empty if none).
    pub fullmap: Vec<u8>,
    /// A new CRUSH map encoding (empty if unchanged).
    pub crush: Vec<u8>,
    /// New max_osd, or -1.
    pub new_max_osd: i32,
    /// Pools created or changed.
    pub new_pools: BTreeMap<i64, PgPool>,
    /// Pool names set.
    pub new_pool_names: BTreeMap<i64, String>,
    /// Pools deleted.
    pub old_pools: BTreeSet<i64>,
    /// OSDs that came up, with their client addresses.
    pub new_up_client: BTreeMap<i32, EntityAddrVec>,
    /// State bits to XOR in (0 means UP, for old encoders).
    pub new_state: BTreeMap<i32, u32>,
    /// New reweights.
    pub new_weight: BTreeMap<i32, u32>,
    /// pg_temp changes (empty vector = remove).
    pub new_pg_temp: BTreeMap<PgId, Vec<i32>>,
    /// primary_temp changes (-1 = remove).
    pub new_primary_temp: BTreeMap<PgId, i32>,
    /// New primary affinities.
    pub new_primary_affinity: BTreeMap<i32, u32>,
    /// EC profiles set.
    pub new_erasure_code_profiles: BTreeMap<String, BTreeMap<String, String>>,
    /// EC profiles removed.
    pub old_erasure_code_profiles: Vec<String>,
    /// pg_upmap entries set.
    pub new_pg_upmap: BTreeMap<PgId, Vec<i32>>,
    /// pg_upmap entries removed.
    pub old_pg_upmap: BTreeSet<PgId>,
    /// pg_upmap_items entries set.
    pub new_pg_upmap_items: BTreeMap<PgId, Vec<(i32, i32)>>,
    /// pg_upmap_items entries removed.
    pub old_pg_upmap_items: BTreeSet<PgId>,
    /// Snapshots removed in this epoch.
    pub new_removed_snaps: BTreeMap<i64, SnapIntervals>,
    /// Snapshots purged in this epoch.
    pub new_purged_snaps: BTreeMap<i64, SnapIntervals>,
    /// New last_up_change (zero = unchanged).
    pub new_last_up_change: UTime,
    /// New last_in_change (zero = unchanged).
    pub new_last_in_change: UTime,
    /// pg_upmap_primaries set (Reef+).
    pub new_pg_upmap_primary: BTreeMap<PgId, i32>,
    /// pg_upmap_primaries removed (Reef+).
    pub old_pg_upmap_primary: BTreeSet<PgId>,
    /// Blocklist changes (from the OSD-only section).
    pub blocklist: super::blocklist::BlocklistChanges,
    /// The incremental's own crc (verified on decode), if encoded.
    pub inc_crc: Option<u32>,
    /// The crc of the full map that results from applying this incremental.
    pub full_crc: Option<u32>,
}

impl Incremental {
    /// An empty incremental producing `epoch` for the cluster `fsid` (for tools/tests).
    pub fn new(fsid: Uuid, epoch: u32) -> Self {
        Incremental {
            fsid,
            epoch,
            new_pool_max: -1,
            new_flags: -1,
            new_max_osd: -1,
            ..Default::default()
        }
    }

    /// Decode an incremental and verify its `inc_crc`.
    pub fn decode(bytes: &[u8]) -> Result<Incremental, OsdMapError> {
        let (v, start, end) = outer_envelope(bytes, "OSDMap::Incremental")?;
        let mut body = Decoder::new(&bytes[start..end]);
        let (cv, mut c) = body.versioned(9, "OSDMap::Incremental client data")?;
        let c = &mut c;
        let mut inc = Incremental {
            fsid: c.decode()?,
            epoch: c.u32()?,
            modified: c.decode()?,
            new_pool_max: c.i64()?,
            new_flags: c.i32()?,
            fullmap: c.blob("fullmap")?.to_vec(),
            crush: c.blob("crush")?.to_vec(),
            new_max_osd: c.i32()?,
            ..Default::default()
        };
        inc.new_pools = decode_pools(c)?;
        inc.new_pool_names = c.map::<i64, String>(12, "new_pool_names")?;
        inc.old_pools = c.set::<i64>(8, "old_pools")?;
        inc.new_up_client = c.map::<i32, EntityAddrVec>(5, "new_up_client")?;
        inc.new_state = if cv >= 5 {
            c.map::<i32, u32>(8, "new_state")?
        } else {
            c.map::<i32, u8>(5, "new_state")?
                .into_iter()
                .map(|(k, v)| (k, v as u32))
                .collect()
        };
        inc.new_weight = c.map::<i32, u32>(8, "new_weight")?;
        inc.new_pg_temp = decode_pg_vec_map(c, "new_pg_temp")?;
        inc.new_primary_temp = decode_pg_i32_map(c, "new_primary_temp")?;
        if cv >= 2 {
            inc.new_primary_affinity = c.map::<i32, u32>(8, "new_primary_affinity")?;
        }
        if cv >= 3 {
            inc.new_erasure_code_profiles = decode_profiles(c)?;
            inc.old_erasure_code_profiles = c.vec::<String>(4, "old_erasure_code_profiles")?;
        }
        if cv >= 4 {
            inc.new_pg_upmap = decode_pg_vec_map(c, "new_pg_upmap")?;
            inc.old_pg_upmap = c.set::<PgId>(super::pg::PG_T_LEN, "old_pg_upmap")?;
            inc.new_pg_upmap_items = decode_pg_pairs_map(c, "new_pg_upmap_items")?;
            inc.old_pg_upmap_items = c.set::<PgId>(super::pg::PG_T_LEN, "old_pg_upmap_items")?;
        }
        if cv >= 6 {
            inc.new_removed_snaps = decode_snap_map(c)?;
            inc.new_purged_snaps = decode_snap_map(c)?;
        }
        if cv >= 8 {
            inc.new_last_up_change = c.decode()?;
            inc.new_last_in_change = c.decode()?;
        }
        if cv >= 9 {
            inc.new_pg_upmap_primary = decode_pg_i32_map(c, "new_pg_upmap_primary")?;
            inc.old_pg_upmap_primary =
                c.set::<PgId>(super::pg::PG_T_LEN, "old_pg_upmap_primary")?;
        }

        // extended, osd-only data: only the blocklist changes are kept
        let (ev, mut ext) = body.versioned(u8::MAX, "OSDMap::Incremental osd-only data")?;
        inc.blocklist = super::blocklist::decode_inc_osd_only(ev, &mut ext)?;

        if v >= 8 {
            let crc_at = start + body.position();
            let inc_crc = body.u32()?;
            let full_crc = body.u32()?;
            // crc of everything before inc_crc, continued over everything after it
            let actual = ceph_crc32c(
                ceph_crc32c(u32::MAX, &bytes[..crc_at]),
                &bytes[crc_at + 4..end],
            );
            if actual != inc_crc {
                return Err(OsdMapError::BadCrc {
                    what: "OSDMap::Incremental",
                    expected: inc_crc,
                    actual,
                });
            }
            inc.inc_crc = Some(inc_crc);
            inc.full_crc = Some(full_crc);
        }
        Ok(inc)
    }

    /// Every OSD id this incremental addresses directly.
    fn osd_ids(&self) -> impl Iterator<Item = i32> + '_ {
        self.new_up_client
            .keys()
            .chain(self.new_state.keys())
            .chain(self.new_weight.keys())
            .chain(self.new_primary_affinity.keys())
            .copied()
    }
}

impl OsdMap {
    /// `OSDMap::apply_incremental`, client-visible part, in the userspace order.
    ///
    /// The map is left unchanged when an error is returned: the fsid and epoch, the
    /// embedded full map or CRUSH map, and every OSD id are checked before anything is
    /// modified (ceph asserts on the epoch and would index out of bounds on a bad id).
    ///
    /// Differences from ceph that a client cannot observe: nothing from the OSD-only
    /// section is tracked (osd_info, xinfo, blocklist, require_osd_release, removed-snaps
    /// queue), and `crush_version` is bumped on every CRUSH change (ceph does so once the
    /// cluster requires Luminous, i.e. always on a Pacific cluster).
    pub fn apply_incremental(&mut self, inc: &Incremental) -> Result<(), OsdMapError> {
        if inc.epoch != 1 && inc.fsid != self.fsid {
            return Err(OsdMapError::FsidMismatch {
                inc: inc.fsid,
                map: self.fsid,
            });
        }
        if inc.epoch != self.epoch.wrapping_add(1) {
            return Err(OsdMapError::EpochMismatch {
                inc: inc.epoch,
                map: self.epoch,
            });
        }
        // full map?
        if !inc.fullmap.is_empty() {
            *self = OsdMap::decode(&inc.fullmap)?;
            return Ok(());
        }
        let new_crush = if inc.crush.is_empty() {
            None
        } else {
            Some(CrushMap::decode(&inc.crush)?)
        };
        let max_osd = if inc.new_max_osd >= 0 {
            inc.new_max_osd
        } else {
            self.max_osd
        };
        if !(0..=super::MAX_OSD_LIMIT).contains(&max_osd) {
            return Err(OsdMapError::BadMaxOsd(max_osd));
        }
        if let Some(osd) = inc.osd_ids().find(|&o| o < 0 || o >= max_osd) {
            return Err(OsdMapError::BadOsd { osd, max_osd });
        }

        self.normalize();
        if inc.epoch == 1 {
            self.fsid = inc.fsid;
        }
        self.epoch = inc.epoch;
        self.modified = inc.modified;

        if inc.new_flags >= 0 {
            self.flags = inc.new_flags as u32;
        }
        if inc.new_max_osd >= 0 {
            self.set_max_osd(inc.new_max_osd)?;
        }
        if inc.new_pool_max != -1 {
            self.pool_max = inc.new_pool_max as i32;
        }
        for (&id, pool) in &inc.new_pools {
            let mut p = pool.clone();
            p.last_change = self.epoch;
            self.pools.insert(id, p);
        }
        self.new_removed_snaps = inc.new_removed_snaps.clone();
        self.new_purged_snaps = inc.new_purged_snaps.clone();
        if inc.new_last_up_change != UTime::default() {
            self.last_up_change = inc.new_last_up_change;
        }
        if inc.new_last_in_change != UTime::default() {
            self.last_in_change = inc.new_last_in_change;
        }
        for (&id, name) in &inc.new_pool_names {
            self.pool_names.insert(id, name.clone());
        }
        for id in &inc.old_pools {
            self.pools.remove(id);
            self.pool_names.remove(id);
        }
        for (&osd, &w) in &inc.new_weight {
            self.set_weight(osd, w);
            // marking in clears AUTOOUT and NEW
            if w != 0 {
                self.osd_state[osd as usize] &= !(osd_state::AUTOOUT | osd_state::NEW);
            }
        }
        for (&osd, &a) in &inc.new_primary_affinity {
            self.set_primary_affinity(osd, a);
        }
        for name in &inc.old_erasure_code_profiles {
            self.erasure_code_profiles.remove(name);
        }
        for (name, profile) in &inc.new_erasure_code_profiles {
            self.erasure_code_profiles
                .insert(name.clone(), profile.clone());
        }
        // up/down
        for (&osd, &mask) in &inc.new_state {
            let o = osd as usize;
            // legacy encoders wrote 0 to mean "toggle UP"
            let s = if mask != 0 { mask } else { osd_state::UP };
            if self.osd_state[o] & osd_state::EXISTS != 0 && s & osd_state::EXISTS != 0 {
                // the OSD is destroyed: clear out anything interesting
                self.set_primary_affinity(osd, CEPH_OSD_DEFAULT_PRIMARY_AFFINITY);
                self.osd_addrs[o] = EntityAddrVec::default();
                self.osd_state[o] = 0;
            } else {
                self.osd_state[o] ^= s;
            }
        }
        for (&osd, addrs) in &inc.new_up_client {
            let o = osd as usize;
            self.osd_state[o] |= osd_state::EXISTS | osd_state::UP;
            self.osd_state[o] &= !osd_state::STOP;
            self.osd_addrs[o] = addrs.clone();
        }
        // blocklist: additions, then removals (ceph: OSDMap::apply_incremental)
        let b = &inc.blocklist;
        self.blocklist
            .extend(b.new_blocklist.iter().map(|(a, t)| (*a, *t)));
        for a in &b.old_blocklist {
            self.blocklist.remove(a);
        }
        self.range_blocklist
            .extend(b.new_range_blocklist.iter().map(|(a, t)| (*a, *t)));
        for a in &b.old_range_blocklist {
            self.range_blocklist.remove(a);
        }
        // pg rebuild
        for (pg, osds) in &inc.new_pg_temp {
            if osds.is_empty() {
                self.pg_temp.remove(pg);
            } else {
                self.pg_temp.insert(*pg, osds.clone());
            }
        }
        for (pg, &osd) in &inc.new_primary_temp {
            if osd == -1 {
                self.primary_temp.remove(pg);
            } else {
                self.primary_temp.insert(*pg, osd);
            }
        }
        for (pg, osds) in &inc.new_pg_upmap {
            self.pg_upmap.insert(*pg, osds.clone());
        }
        for pg in &inc.old_pg_upmap {
            self.pg_upmap.remove(pg);
        }
        for (pg, items) in &inc.new_pg_upmap_items {
            self.pg_upmap_items.insert(*pg, items.clone());
        }
        for pg in &inc.old_pg_upmap_items {
            self.pg_upmap_items.remove(pg);
        }
        for (pg, &osd) in &inc.new_pg_upmap_primary {
            self.pg_upmap_primaries.insert(*pg, osd);
        }
        for pg in &inc.old_pg_upmap_primary {
            self.pg_upmap_primaries.remove(pg);
        }
        // do the new crush map last (after up/down stuff)
        if let Some(c) = new_crush {
            self.crush = Arc::new(c);
            self.crush_version = self.crush_version.wrapping_add(1);
        }
        // the crc of the new map is not known without re-encoding it
        self.crc = inc.full_crc;
        Ok(())
    }
}
