//! `pg_pool_t`: a pool's placement parameters (ceph: `src/osd/osd_types.cc`
//! pg_pool_t::decode; kernel `decode_pool()` in `net/ceph/osdmap.c`).

use super::pg::PgId;
use crate::crush::hash::{ceph_stable_mod, ceph_str_hash, crush_hash32_2};
use ceph_encoding::{DecodeError, Decoder, UTime};
use std::collections::{BTreeMap, BTreeSet};

/// An `interval_set<snapid_t>`: start → length.
pub type SnapIntervals = BTreeMap<u64, u64>;

/// Pool types (`pg_pool_t::TYPE_*`).
pub mod pool_type {
    /// Replicated pool: OSD lists shift when members drop out.
    pub const REPLICATED: u8 = 1;
    /// Erasure-coded pool: positions are shard ids; holes are `CRUSH_ITEM_NONE`.
    pub const ERASURE: u8 = 3;
}

/// Pool flags (`pg_pool_t::FLAG_*`, ceph: `src/osd/osd_types.h`).
pub mod pool_flags {
    /// Hash the pool id into the placement seed (all pools since Firefly).
    pub const HASHPSPOOL: u64 = 1 << 0;
    /// Pool is full (writes are held).
    pub const FULL: u64 = 1 << 1;
    /// EC pool allows overwrites.
    pub const EC_OVERWRITES: u64 = 1 << 2;
    /// Cache pool may have incomplete clones.
    pub const INCOMPLETE_CLONES: u64 = 1 << 3;
    /// Pool may not be deleted.
    pub const NODELETE: u64 = 1 << 4;
    /// pg_num may not change.
    pub const NOPGCHANGE: u64 = 1 << 5;
    /// size may not change.
    pub const NOSIZECHANGE: u64 = 1 << 6;
    /// Writes get FADVISE_DONTNEED.
    pub const WRITE_FADVISE_DONTNEED: u64 = 1 << 7;
    /// No scrubbing.
    pub const NOSCRUB: u64 = 1 << 8;
    /// No deep scrubbing.
    pub const NODEEP_SCRUB: u64 = 1 << 9;
    /// Full because of the quota.
    pub const FULL_QUOTA: u64 = 1 << 10;
    /// Near full.
    pub const NEARFULL: u64 = 1 << 11;
    /// Backfill full.
    pub const BACKFILLFULL: u64 = 1 << 12;
    /// Self-managed snapshots in use (RBD).
    pub const SELFMANAGED_SNAPS: u64 = 1 << 13;
    /// Pool snapshots in use.
    pub const POOL_SNAPS: u64 = 1 << 14;
    /// Pool is being created.
    pub const CREATING: u64 = 1 << 15;
}

/// A pool snapshot (`pool_snap_info_t`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSnapInfo {
    /// Snapshot id.
    pub snapid: u64,
    /// Creation time.
    pub stamp: UTime,
    /// Name.
    pub name: String,
}

/// A pool (`pg_pool_t`), with the fields a client uses; everything else in the encoding
/// is skipped by length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgPool {
    /// Encoding version the pool was decoded from.
    pub struct_v: u8,
    /// [`pool_type`].
    pub pool_type: u8,
    /// Replica count, or k+m.
    pub size: u8,
    /// Rule id (or legacy ruleset; see `CrushMap::find_rule`).
    pub crush_rule: u8,
    /// Object name hash: 1 = linux, 2 = rjenkins.
    pub object_hash: u8,
    /// Number of PGs.
    pub pg_num: u32,
    /// Number of PGs used for placement.
    pub pgp_num: u32,
    /// Epoch of the last change.
    pub last_change: u32,
    /// Pool snapshot sequence.
    pub snap_seq: u64,
    /// Epoch of the last snapshot change.
    pub snap_epoch: u32,
    /// Pool snapshots by id.
    pub snaps: BTreeMap<u64, PoolSnapInfo>,
    /// Removed snapshots (pre-Octopus bookkeeping; usually empty now).
    pub removed_snaps: SnapIntervals,
    /// Obsolete owner id.
    pub auid: u64,
    /// [`pool_flags`].
    pub flags: u64,
    /// Minimum replicas for I/O.
    pub min_size: u8,
    /// Byte quota (0 = none).
    pub quota_max_bytes: u64,
    /// Object quota (0 = none).
    pub quota_max_objects: u64,
    /// Cache tiers of this pool.
    pub tiers: BTreeSet<i64>,
    /// Base pool if this is a tier, else -1.
    pub tier_of: i64,
    /// Cache mode.
    pub cache_mode: u8,
    /// Overlay pool for reads, else -1.
    pub read_tier: i64,
    /// Overlay pool for writes, else -1.
    pub write_tier: i64,
    /// Free-form properties.
    pub properties: BTreeMap<String, String>,
    /// EC stripe width.
    pub stripe_width: u32,
    /// Cache tier target bytes.
    pub target_max_bytes: u64,
    /// Cache tier target objects.
    pub target_max_objects: u64,
    /// EC profile name.
    pub erasure_code_profile: String,
    /// Resend barrier for pre-Luminous clients.
    pub last_force_op_resend_preluminous: u32,
    /// Expected object count (pre-splitting hint).
    pub expected_num_objects: u64,
    /// Reads may go to all shards (EC).
    pub fast_read: bool,
    /// Resend barrier for pre-Nautilus clients.
    pub last_force_op_resend_prenautilus: u32,
    /// Application tags and their metadata (e.g. `rbd: {}`).
    pub application_metadata: BTreeMap<String, BTreeMap<String, String>>,
    /// Creation time.
    pub create_time: UTime,
    /// Target pg_num of a pending split/merge.
    pub pg_num_target: u32,
    /// Target pgp_num.
    pub pgp_num_target: u32,
    /// pg_num the OSDs are moving to.
    pub pg_num_pending: u32,
    /// The resend barrier: ops sent before this epoch must be resent.
    pub last_force_op_resend: u32,
    /// Autoscale mode.
    pub pg_autoscale_mode: u8,
}

fn decode_str_map(d: &mut Decoder<'_>) -> Result<BTreeMap<String, String>, DecodeError> {
    d.map::<String, String>(8, "string map")
}

/// `interval_set<u64>`: u32 count + (start, len) pairs.
pub(crate) fn decode_intervals(d: &mut Decoder<'_>) -> Result<SnapIntervals, DecodeError> {
    d.map::<u64, u64>(16, "interval_set")
}

impl PgPool {
    /// A pool as `osd pool create` makes it (HASHPSPOOL, rjenkins, pg_num = pgp_num), for
    /// tools and tests.
    pub fn new(pool_type: u8, size: u8, crush_rule: u8, pg_num: u32) -> PgPool {
        PgPool {
            struct_v: 29,
            pool_type,
            size,
            crush_rule,
            object_hash: crate::crush::hash::CEPH_STR_HASH_RJENKINS,
            pg_num,
            pgp_num: pg_num,
            last_change: 0,
            snap_seq: 0,
            snap_epoch: 0,
            snaps: BTreeMap::new(),
            removed_snaps: SnapIntervals::new(),
            auid: 0,
            flags: pool_flags::HASHPSPOOL,
            min_size: size - size / 2,
            quota_max_bytes: 0,
            quota_max_objects: 0,
            tiers: BTreeSet::new(),
            tier_of: -1,
            cache_mode: 0,
            read_tier: -1,
            write_tier: -1,
            properties: BTreeMap::new(),
            stripe_width: 0,
            target_max_bytes: 0,
            target_max_objects: 0,
            erasure_code_profile: String::new(),
            last_force_op_resend_preluminous: 0,
            expected_num_objects: 0,
            fast_read: false,
            last_force_op_resend_prenautilus: 0,
            application_metadata: BTreeMap::new(),
            create_time: UTime::default(),
            pg_num_target: pg_num,
            pgp_num_target: pg_num,
            pg_num_pending: pg_num,
            last_force_op_resend: 0,
            pg_autoscale_mode: 0,
        }
    }

    /// Decode one `pg_pool_t` (versioned; unknown newer fields are skipped).
    pub fn decode(d: &mut Decoder<'_>) -> Result<PgPool, DecodeError> {
        // DECODE_START_LEGACY_COMPAT_LEN(29, 5, 5): every encoding since Bobtail has the
        // full envelope; compat stays 5 through Tentacle.
        let v = *d.rest().first().ok_or(DecodeError::Truncated {
            what: "pg_pool_t",
            needed: 1,
            available: 0,
        })?;
        if v < 5 {
            return Err(DecodeError::invalid(
                "pg_pool_t",
                format!("legacy encoding v{v} is not supported"),
            ));
        }
        let (v, mut d) = d.versioned(29, "pg_pool_t")?;
        let d = &mut d;
        let pool_type = d.u8()?;
        let size = d.u8()?;
        let crush_rule = d.u8()?;
        let object_hash = d.u8()?;
        let pg_num = d.u32()?;
        let pgp_num = d.u32()?;
        let _lpg_num = d.u32()?;
        let _lpgp_num = d.u32()?;
        let last_change = d.u32()?;
        let snap_seq = d.u64()?;
        let snap_epoch = d.u32()?;
        // v >= 3 (always here)
        let snaps = d.map_with(
            14,
            "pool snaps",
            |d| d.u64(),
            |d| {
                let (_sv, mut s) = d.versioned(2, "pool_snap_info_t")?;
                Ok(PoolSnapInfo {
                    snapid: s.u64()?,
                    stamp: s.decode()?,
                    name: s.string()?,
                })
            },
        )?;
        let removed_snaps = decode_intervals(d)?;
        let auid = d.u64()?;
        // v >= 4
        let mut flags = d.u64()?;
        let _crash_replay_interval = d.u32()?;
        // upgrade path for selfmanaged vs pool snaps
        if snap_seq > 0 && flags & (pool_flags::SELFMANAGED_SNAPS | pool_flags::POOL_SNAPS) == 0 {
            if !removed_snaps.is_empty() {
                flags |= pool_flags::SELFMANAGED_SNAPS;
            } else {
                flags |= pool_flags::POOL_SNAPS;
            }
        }
        let mut p = PgPool {
            struct_v: v,
            pool_type,
            size,
            crush_rule,
            object_hash,
            pg_num,
            pgp_num,
            last_change,
            snap_seq,
            snap_epoch,
            snaps,
            removed_snaps,
            auid,
            flags,
            min_size: size - size / 2,
            quota_max_bytes: 0,
            quota_max_objects: 0,
            tiers: BTreeSet::new(),
            tier_of: -1,
            cache_mode: 0,
            read_tier: -1,
            write_tier: -1,
            properties: BTreeMap::new(),
            stripe_width: 0,
            target_max_bytes: 0,
            target_max_objects: 0,
            erasure_code_profile: String::new(),
            last_force_op_resend_preluminous: 0,
            expected_num_objects: 0,
            fast_read: false,
            last_force_op_resend_prenautilus: 0,
            application_metadata: BTreeMap::new(),
            create_time: UTime::default(),
            pg_num_target: pg_num,
            pgp_num_target: pgp_num,
            pg_num_pending: pg_num,
            last_force_op_resend: 0,
            pg_autoscale_mode: 0,
        };
        if v >= 7 {
            p.min_size = d.u8()?;
        }
        if v >= 8 {
            p.quota_max_bytes = d.u64()?;
            p.quota_max_objects = d.u64()?;
        }
        if v >= 9 {
            p.tiers = d.set::<i64>(8, "pool tiers")?;
            p.tier_of = d.i64()?;
            p.cache_mode = d.u8()?;
            p.read_tier = d.i64()?;
            p.write_tier = d.i64()?;
        }
        if v >= 10 {
            p.properties = decode_str_map(d)?;
        }
        if v >= 11 {
            // HitSet::Params, its own envelope
            let _ = d.versioned(u8::MAX, "HitSet::Params")?;
            let _hit_set_period = d.u32()?;
            let _hit_set_count = d.u32()?;
        }
        if v >= 12 {
            p.stripe_width = d.u32()?;
        }
        if v >= 13 {
            p.target_max_bytes = d.u64()?;
            p.target_max_objects = d.u64()?;
            // cache_target_dirty_ratio_micro, cache_target_full_ratio_micro,
            // cache_min_flush_age, cache_min_evict_age
            d.skip(16, "pg_pool_t cache tunables")?;
        }
        if v >= 14 {
            p.erasure_code_profile = d.string()?;
        }
        if v >= 15 {
            p.last_force_op_resend_preluminous = d.u32()?;
        }
        if v >= 16 {
            let _min_read_recency_for_promote = d.u32()?;
        }
        if v >= 17 {
            p.expected_num_objects = d.u64()?;
        }
        if v >= 19 {
            let _cache_target_dirty_high_ratio_micro = d.u32()?;
        }
        if v >= 20 {
            let _min_write_recency_for_promote = d.u32()?;
        }
        if v >= 21 {
            let _use_gmt_hitset = d.u8()?;
        }
        if v >= 22 {
            p.fast_read = d.bool()?;
        }
        if v >= 23 {
            let _hit_set_grade_decay_rate = d.u32()?;
            let _hit_set_search_last_n = d.u32()?;
        }
        if v >= 24 {
            // pool_opts_t, its own envelope
            let _ = d.versioned(u8::MAX, "pool_opts_t")?;
        }
        p.last_force_op_resend_prenautilus = p.last_force_op_resend_preluminous;
        if v >= 25 {
            p.last_force_op_resend_prenautilus = d.u32()?;
        }
        if v >= 26 {
            p.application_metadata =
                d.map_with(8, "application_metadata", |d| d.string(), decode_str_map)?;
        }
        if v >= 27 {
            p.create_time = d.decode()?;
        }
        if v >= 28 {
            p.pg_num_target = d.u32()?;
            p.pgp_num_target = d.u32()?;
            p.pg_num_pending = d.u32()?;
            let _old_merge_last_epoch_started = d.u32()?;
            let _old_merge_last_epoch_clean = d.u32()?;
            p.last_force_op_resend = d.u32()?;
            p.pg_autoscale_mode = d.u8()?;
        } else {
            p.last_force_op_resend = p.last_force_op_resend_prenautilus;
            p.pg_autoscale_mode = 1; // WARN, as on upgrade
        }
        // v >= 29: last_pg_merge_meta; v >= 30: stretch peering fields; later versions
        // append more. None of it concerns a client: skipped with the envelope.
        Ok(p)
    }

    /// True for replicated pools.
    pub fn is_replicated(&self) -> bool {
        self.pool_type == pool_type::REPLICATED
    }

    /// True for erasure-coded pools.
    pub fn is_erasure(&self) -> bool {
        self.pool_type == pool_type::ERASURE
    }

    /// `can_shift_osds()`: replicated pools compact their OSD lists; erasure-coded pools
    /// keep positions (holes become `CRUSH_ITEM_NONE`). Unknown types are treated as
    /// positional.
    pub fn can_shift_osds(&self) -> bool {
        self.is_replicated()
    }

    /// True if `flag` ([`pool_flags`]) is set.
    pub fn has_flag(&self, flag: u64) -> bool {
        self.flags & flag != 0
    }

    /// `(1 << cbits(pg_num - 1)) - 1`.
    pub fn pg_num_mask(&self) -> u32 {
        calc_mask(self.pg_num)
    }

    /// `(1 << cbits(pgp_num - 1)) - 1`.
    pub fn pgp_num_mask(&self) -> u32 {
        calc_mask(self.pgp_num)
    }

    /// `hash_key(key, nspace)`: the object hash, with the namespace joined by `\x1f`.
    pub fn hash_key(&self, key: &str, nspace: &str) -> u32 {
        if nspace.is_empty() {
            return ceph_str_hash(self.object_hash, key.as_bytes());
        }
        let mut buf = Vec::with_capacity(nspace.len() + 1 + key.len());
        buf.extend_from_slice(nspace.as_bytes());
        buf.push(0x1f);
        buf.extend_from_slice(key.as_bytes());
        ceph_str_hash(self.object_hash, &buf)
    }

    /// `raw_pg_to_pg`: fold a raw seed into `0..pg_num`.
    pub fn raw_pg_to_pg(&self, pg: PgId) -> PgId {
        PgId {
            pool: pg.pool,
            seed: ceph_stable_mod(pg.seed, self.pg_num, self.pg_num_mask()),
        }
    }

    /// `raw_pg_to_pps`: the placement seed fed to CRUSH.
    pub fn raw_pg_to_pps(&self, pg: PgId) -> u32 {
        let ps = ceph_stable_mod(pg.seed, self.pgp_num, self.pgp_num_mask());
        if self.has_flag(pool_flags::HASHPSPOOL) {
            // hash the pool id so that pool PGs do not overlap
            crush_hash32_2(ps, pg.pool as u32)
        } else {
            // legacy: add ps and pool together
            ps.wrapping_add(pg.pool as u32)
        }
    }
}

/// `(1 << cbits(n - 1)) - 1` with C's unsigned wrap for `n = 0`.
fn calc_mask(n: u32) -> u32 {
    let v = n.wrapping_sub(1);
    let bits = 32 - v.leading_zeros();
    ((1u64 << bits) - 1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(calc_mask(192), 255);
        assert_eq!(calc_mask(48), 63);
        assert_eq!(calc_mask(32), 31);
        assert_eq!(calc_mask(1), 0);
        assert_eq!(calc_mask(0), u32::MAX);
    }
}
