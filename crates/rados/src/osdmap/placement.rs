//! Object → PG → OSDs (ceph: `src/osd/OSDMap.cc` object_locator_to_pg, map_to_pg,
//! _pg_to_raw_osds, _remove_nonexistent_osds, _apply_upmap, _raw_to_up_osds,
//! _apply_primary_affinity, _get_temp_osds, _pg_to_up_acting_osds).

use super::{OsdMap, OsdMapError, PgId, PgPool, CEPH_OSD_DEFAULT_PRIMARY_AFFINITY};
use crate::crush::{crush_hash32_2, CRUSH_ITEM_NONE};

/// The result of [`OsdMap::pg_to_up_acting`].
pub type UpActing = (Vec<i32>, i32, Vec<i32>, i32);

impl OsdMap {
    /// `object_locator_to_pg` without an explicit hash: hash `locator_key` (or `name` when
    /// there is none) in namespace `nspace` with the pool's hash function.
    ///
    /// Returns the raw PG (seed = the full 32-bit hash, what MOSDOp carries) and the actual
    /// PG (seed folded into `0..pg_num`).
    pub fn object_to_pg(
        &self,
        pool_id: i64,
        name: &str,
        nspace: &str,
        locator_key: Option<&str>,
    ) -> Result<(PgId, PgId), OsdMapError> {
        let pool = self
            .pools
            .get(&pool_id)
            .ok_or(OsdMapError::NoSuchPool(pool_id))?;
        let key = match locator_key {
            Some(k) if !k.is_empty() => k,
            _ => name,
        };
        let raw = PgId {
            pool: pool_id as u64,
            seed: pool.hash_key(key, nspace),
        };
        Ok((raw, pool.raw_pg_to_pg(raw)))
    }

    /// `object_locator_to_pg` with an explicit locator hash (`object_locator_t::hash >= 0`).
    pub fn hash_to_pg(&self, pool_id: i64, hash: u32) -> Result<(PgId, PgId), OsdMapError> {
        let pool = self
            .pools
            .get(&pool_id)
            .ok_or(OsdMapError::NoSuchPool(pool_id))?;
        let raw = PgId {
            pool: pool_id as u64,
            seed: hash,
        };
        Ok((raw, pool.raw_pg_to_pg(raw)))
    }

    /// `raw_pg_to_pg`: fold a raw PG into `0..pg_num` of its pool.
    pub fn raw_pg_to_pg(&self, pg: PgId) -> Option<PgId> {
        Some(self.pools.get(&(pg.pool as i64))?.raw_pg_to_pg(pg))
    }

    /// `raw_pg_to_pps`: the CRUSH input for a PG.
    pub fn raw_pg_to_pps(&self, pg: PgId) -> Option<u32> {
        Some(self.pools.get(&(pg.pool as i64))?.raw_pg_to_pps(pg))
    }

    /// `_pg_to_raw_osds`: CRUSH (pool rule via `find_rule`, osd weights, the pool's
    /// choose_args), then nonexistent OSDs removed. Returns the OSDs and the pps.
    fn pg_to_raw_osds_inner(&self, pool: &PgPool, pg: PgId) -> (Vec<i32>, u32) {
        let pps = pool.raw_pg_to_pps(pg);
        let size = pool.size as usize;
        let ruleno =
            self.crush
                .find_rule(pool.crush_rule as i32, pool.pool_type as i32, size as i32);
        let mut osds = if ruleno >= 0 {
            self.crush
                .do_rule(ruleno, pps, size, &self.osd_weight, Some(pg.pool as i64))
        } else {
            Vec::new()
        };
        self.remove_nonexistent_osds(pool, &mut osds);
        (osds, pps)
    }

    /// `pg_to_raw_osds`: the CRUSH result minus nonexistent OSDs, and its first entry.
    pub fn pg_to_raw_osds(&self, pg: PgId) -> (Vec<i32>, i32) {
        match self.pools.get(&(pg.pool as i64)) {
            Some(pool) => {
                let (raw, _) = self.pg_to_raw_osds_inner(pool, pg);
                let p = pick_primary(&raw);
                (raw, p)
            }
            None => (Vec::new(), -1),
        }
    }

    fn remove_nonexistent_osds(&self, pool: &PgPool, osds: &mut Vec<i32>) {
        if pool.can_shift_osds() {
            osds.retain(|&o| self.exists(o));
        } else {
            for o in osds.iter_mut() {
                if !self.exists(*o) {
                    *o = CRUSH_ITEM_NONE;
                }
            }
        }
    }

    fn weight_is_zero(&self, osd: i32) -> bool {
        osd != CRUSH_ITEM_NONE
            && osd >= 0
            && osd < self.max_osd
            && self.osd_weight.get(osd as usize).copied().unwrap_or(0) == 0
    }

    /// `_apply_upmap`: explicit mappings for the (actual) PG.
    fn apply_upmap(&self, pool: &PgPool, raw_pg: PgId, raw: &mut Vec<i32>) {
        let pg = pool.raw_pg_to_pg(raw_pg);
        if let Some(up) = self.pg_upmap.get(&pg) {
            // make sure targets aren't marked out; if one is, ignore the explicit
            // mapping (and, as ceph does, the items and primaries too)
            if up.iter().any(|&o| self.weight_is_zero(o)) {
                return;
            }
            *raw = up.clone();
        }
        if let Some(items) = self.pg_upmap_items.get(&pg) {
            // NOTE: this does not allow a bidirectional swap, e.g. [[1,2],[2,1]]
            // applied to [0,1,2] -> [0,2,1].
            for &(from, to) in items {
                let mut exists = false;
                let mut pos = None;
                for (i, &osd) in raw.iter().enumerate() {
                    if osd == to {
                        exists = true;
                        break;
                    }
                    // ignore the mapping if the target is marked out (or invalid)
                    if osd == from && pos.is_none() && !self.weight_is_zero(to) {
                        pos = Some(i);
                    }
                }
                if let (false, Some(i)) = (exists, pos) {
                    raw[i] = to;
                }
            }
        }
        if let Some(&prim) = self.pg_upmap_primaries.get(&pg) {
            // only a valid, in OSD that is already a (non-first) member
            if prim != CRUSH_ITEM_NONE
                && prim >= 0
                && prim < self.max_osd
                && self.osd_weight.get(prim as usize).copied().unwrap_or(0) != 0
            {
                if let Some(i) = raw.iter().skip(1).position(|&o| o == prim).map(|i| i + 1) {
                    raw[i] = raw[0];
                    raw[0] = prim;
                }
            }
        }
    }

    /// `_raw_to_up_osds`: drop (replicated) or blank (EC) OSDs that are down.
    fn raw_to_up_osds(&self, pool: &PgPool, raw: &[i32]) -> Vec<i32> {
        if pool.can_shift_osds() {
            raw.iter().copied().filter(|&o| self.is_up(o)).collect()
        } else {
            raw.iter()
                .map(|&o| if self.is_up(o) { o } else { CRUSH_ITEM_NONE })
                .collect()
        }
    }

    /// `_apply_primary_affinity`.
    fn apply_primary_affinity(
        &self,
        seed: u32,
        pool: &PgPool,
        osds: &mut [i32],
        primary: &mut i32,
    ) {
        let Some(aff) = &self.osd_primary_affinity else {
            return;
        };
        let affinity = |o: i32| {
            aff.get(o as usize)
                .copied()
                .unwrap_or(CEPH_OSD_DEFAULT_PRIMARY_AFFINITY)
        };
        // do we have any non-default primary_affinity values for these osds?
        if !osds
            .iter()
            .any(|&o| o != CRUSH_ITEM_NONE && affinity(o) != CEPH_OSD_DEFAULT_PRIMARY_AFFINITY)
        {
            return;
        }
        // Pick the primary: feed both the seed (for the pg) and the osd into the hash so
        // that a proportional fraction of an osd's pgs get rejected as primary.
        let mut pos: Option<usize> = None;
        for (i, &o) in osds.iter().enumerate() {
            if o == CRUSH_ITEM_NONE {
                continue;
            }
            let a = affinity(o);
            if a < CEPH_OSD_DEFAULT_PRIMARY_AFFINITY && (crush_hash32_2(seed, o as u32) >> 16) >= a
            {
                // we chose not to use this primary; note it anyway as a fallback in case
                // we don't pick anyone else, but keep looking.
                if pos.is_none() {
                    pos = Some(i);
                }
            } else {
                pos = Some(i);
                break;
            }
        }
        let Some(pos) = pos else { return };
        *primary = osds[pos];
        if pool.can_shift_osds() && pos > 0 {
            // move the new primary to the front
            osds[..=pos].rotate_right(1);
        }
    }

    /// `_get_temp_osds`: pg_temp (filtered for up OSDs) and primary_temp.
    fn get_temp_osds(&self, pool: &PgPool, pg: PgId) -> (Vec<i32>, i32) {
        let pg = pool.raw_pg_to_pg(pg);
        let mut temp = Vec::new();
        if let Some(t) = self.pg_temp.get(&pg) {
            for &o in t {
                if !self.is_up(o) {
                    if !pool.can_shift_osds() {
                        temp.push(CRUSH_ITEM_NONE);
                    }
                } else {
                    temp.push(o);
                }
            }
        }
        let primary = match self.primary_temp.get(&pg) {
            Some(&p) => p,
            None => pick_primary(&temp),
        };
        (temp, primary)
    }

    /// `pg_to_up_acting_osds(pg)`: `(up, up_primary, acting, acting_primary)`.
    ///
    /// Accepts raw or actual PGs (the seed is folded with the pool's pg_num). A PG of a
    /// pool that does not exist maps to `([], -1, [], -1)`. For erasure-coded pools the
    /// vectors are positional, with `CRUSH_ITEM_NONE` holes.
    pub fn pg_to_up_acting(&self, pg: PgId) -> UpActing {
        let Some(pool) = self.pools.get(&(pg.pool as i64)) else {
            return (Vec::new(), -1, Vec::new(), -1);
        };
        let (mut acting, mut acting_primary) = self.get_temp_osds(pool, pg);
        let (mut raw, pps) = self.pg_to_raw_osds_inner(pool, pg);
        self.apply_upmap(pool, pg, &mut raw);
        let mut up = self.raw_to_up_osds(pool, &raw);
        let mut up_primary = pick_primary(&up);
        self.apply_primary_affinity(pps, pool, &mut up, &mut up_primary);
        if acting.is_empty() {
            acting = up.clone();
            if acting_primary == -1 {
                acting_primary = up_primary;
            }
        }
        (up, up_primary, acting, acting_primary)
    }

    /// `pg_to_raw_up`: the up set and primary, ignoring pg_temp/primary_temp. (As in
    /// ceph, the primary starts as the first entry of the *raw* set here.)
    pub fn pg_to_raw_up(&self, pg: PgId) -> (Vec<i32>, i32) {
        let Some(pool) = self.pools.get(&(pg.pool as i64)) else {
            return (Vec::new(), -1);
        };
        let (mut raw, pps) = self.pg_to_raw_osds_inner(pool, pg);
        self.apply_upmap(pool, pg, &mut raw);
        let mut up = self.raw_to_up_osds(pool, &raw);
        let mut primary = pick_primary(&raw);
        self.apply_primary_affinity(pps, pool, &mut up, &mut primary);
        (up, primary)
    }
}

/// `_pick_primary`: the first entry that is not a hole.
fn pick_primary(osds: &[i32]) -> i32 {
    osds.iter()
        .copied()
        .find(|&o| o != CRUSH_ITEM_NONE)
        .unwrap_or(-1)
}
