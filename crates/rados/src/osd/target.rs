//! Where a request goes, and whether a new map means it must be resent: one pure function
//! over (request target, OSDMap), as the kernel's `calc_target` and Objecter's `_calc_target`.

use crate::osdmap::{OsdMap, PgId};
use std::sync::Arc;

/// `CEPH_OSDMAP_PAUSERD` / `PAUSEWR`.
const FLAG_PAUSERD: u32 = 1 << 2;
const FLAG_PAUSEWR: u32 = 1 << 3;

/// The object a request addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectTarget {
    /// Pool id.
    pub pool: i64,
    /// RADOS namespace.
    pub nspace: String,
    /// Object name.
    pub oid: String,
    /// Locator key (empty = none).
    pub key: String,
}

/// A computed placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Pool actually addressed (after cache-tier overlay).
    pub pool: i64,
    /// Actual PG.
    pub pgid: PgId,
    /// Raw object hash.
    pub hash: u32,
    /// Acting set (shared with the objecter's per-PG cache: every request to a PG has
    /// the same one until the next epoch, so placing one copies no vector).
    pub acting: Arc<[i32]>,
    /// Primary OSD.
    pub primary: i32,
    /// The primary's shard for an erasure-coded pool (its position in the acting set), else
    /// -1 (`shard_id_t::NO_SHARD`). An EC PG exists on its OSDs only as `pgid` + shard
    /// (`2.1s0`): an op addressed to the bare `spg_t` finds no PG there and the OSD parks
    /// it forever waiting for that PG to appear.
    pub shard: i8,
    /// Pool's pg_num at the time (a change means a split or merge).
    pub pg_num: u32,
    /// Pool's last_force_op_resend at the time.
    pub force_resend: u32,
    /// Map epoch used.
    pub epoch: u32,
}

/// Why a request cannot be sent now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// The pool does not exist in this map.
    PoolGone,
    /// No OSD is acting primary for the PG (all down), or the cluster is paused.
    NoPrimary,
    /// Map flags pause this kind of op.
    Paused,
    /// Fewer OSDs act for the PG than the pool's min_size: it cannot go active (and
    /// serve anything) until a new map changes its acting set, which moves the request.
    BelowMinSize {
        /// The PG.
        pgid: PgId,
        /// OSDs acting.
        acting: usize,
        /// The pool's min_size.
        min_size: u8,
    },
}

/// Compute where `t` goes in `map`.
pub fn calc_target(
    map: &OsdMap,
    t: &ObjectTarget,
    pg_seed: Option<u32>,
    is_write: bool,
) -> Result<Placement, Hold> {
    calc_target_with(map, t, pg_seed, is_write, |pgid| acting_of(map, pgid))
}

/// CRUSH's (acting set, acting primary) of `pgid` in `map`: what [`calc_target_with`]
/// asks its caller for.
pub fn acting_of(map: &OsdMap, pgid: PgId) -> (Arc<[i32]>, i32) {
    let (_up, _up_primary, acting, primary) = map.pg_to_up_acting(pgid);
    (acting.into(), primary)
}

/// [`calc_target`] with the PG → (acting set, acting primary) step supplied by the
/// caller, so the objecter can keep CRUSH's answers for the current map (a few
/// microseconds per request otherwise; every request to a PG gets the same answer until
/// the next epoch).
pub fn calc_target_with(
    map: &OsdMap,
    t: &ObjectTarget,
    pg_seed: Option<u32>,
    is_write: bool,
    acting_of: impl FnOnce(PgId) -> (Arc<[i32]>, i32),
) -> Result<Placement, Hold> {
    let base = map.pools.get(&t.pool).ok_or(Hold::PoolGone)?;
    // Cache tiering: unless the pool is its own tier, follow the overlay.
    let tier = if is_write {
        base.write_tier
    } else {
        base.read_tier
    };
    let pool_id = if tier >= 0 && map.pools.contains_key(&tier) {
        tier
    } else {
        t.pool
    };
    let pool = map.pools.get(&pool_id).ok_or(Hold::PoolGone)?;
    if (is_write && map.flags & FLAG_PAUSEWR != 0) || (!is_write && map.flags & FLAG_PAUSERD != 0) {
        return Err(Hold::Paused);
    }
    let key = if t.key.is_empty() {
        None
    } else {
        Some(t.key.as_str())
    };
    let (hash, pgid) = match pg_seed {
        Some(seed) => (
            seed,
            PgId {
                pool: pool_id as u64,
                seed,
            },
        ),
        None => {
            let (raw, pgid) = map
                .object_to_pg(pool_id, &t.oid, &t.nspace, key)
                .map_err(|_| Hold::PoolGone)?;
            (raw.seed, pgid)
        }
    };
    let (acting, primary) = acting_of(pgid);
    if primary < 0 {
        return Err(Hold::NoPrimary);
    }
    // An EC acting set keeps holes (CRUSH_ITEM_NONE) in the positions of missing shards.
    let members = acting.iter().filter(|&&o| o >= 0 && o != i32::MAX).count();
    if members < pool.min_size as usize {
        return Err(Hold::BelowMinSize {
            pgid,
            acting: members,
            min_size: pool.min_size,
        });
    }
    // ceph: src/osdc/Objecter.cc _calc_target: for an erasure pool the spg_t carries the
    // index of the acting primary in the acting set.
    let shard = if pool.is_erasure() {
        acting
            .iter()
            .position(|&o| o == primary)
            .and_then(|i| i8::try_from(i).ok())
            .unwrap_or(-1)
    } else {
        -1
    };
    Ok(Placement {
        pool: pool_id,
        pgid,
        hash,
        acting,
        primary,
        shard,
        pg_num: pool.pg_num,
        force_resend: pool.last_force_op_resend,
        epoch: map.epoch,
    })
}

/// Whether a request placed at `old` must be resent given the new placement `new`.
pub fn needs_resend(old: &Placement, new: &Placement) -> bool {
    old.primary != new.primary
        || old.acting != new.acting
        || old.pgid != new.pgid
        || old.shard != new.shard
        || old.pool != new.pool
        || old.pg_num != new.pg_num
        || (new.force_resend > old.epoch && new.force_resend != old.force_resend)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(primary: i32, acting: Vec<i32>, pg_num: u32, force: u32, epoch: u32) -> Placement {
        Placement {
            pool: 1,
            pgid: PgId { pool: 1, seed: 3 },
            hash: 0x33,
            acting: acting.into(),
            primary,
            shard: -1,
            pg_num,
            force_resend: force,
            epoch,
        }
    }

    #[test]
    fn resend_rules() {
        let a = p(0, vec![0, 1, 2], 8, 0, 10);
        assert!(!needs_resend(&a, &p(0, vec![0, 1, 2], 8, 0, 11)));
        assert!(
            needs_resend(&a, &p(1, vec![1, 2, 0], 8, 0, 11)),
            "primary change"
        );
        assert!(
            needs_resend(&a, &p(0, vec![0, 1], 8, 0, 11)),
            "interval change"
        );
        assert!(
            needs_resend(&a, &p(0, vec![0, 1, 2], 16, 0, 11)),
            "pg split"
        );
        assert!(
            needs_resend(&a, &p(0, vec![0, 1, 2], 8, 11, 11)),
            "force resend"
        );
        assert!(
            !needs_resend(
                &p(0, vec![0, 1, 2], 8, 5, 10),
                &p(0, vec![0, 1, 2], 8, 5, 11)
            ),
            "old force resend"
        );
    }

    fn obj(pool: i64, oid: &str) -> ObjectTarget {
        ObjectTarget {
            pool,
            nspace: String::new(),
            oid: oid.into(),
            key: String::new(),
        }
    }

    #[test]
    fn erasure_pools_address_the_primary_shard() {
        let mut map = crate::osdmap::tests::base_map();
        // Pool 1 is replicated: no shard.
        let r = calc_target(&map, &obj(1, "a"), None, true).unwrap();
        assert_eq!(r.shard, -1);
        // Pool 2 is erasure-coded: the shard is the primary's index in the acting set.
        let e = calc_target(&map, &obj(2, "a"), None, true).unwrap();
        assert!(e.acting.len() >= 3, "{:?}", e.acting);
        assert_eq!(e.acting[e.shard as usize], e.primary);
        // A primary_temp naming the third member makes shard 2 the primary, and moving
        // the primary that way is a resend.
        map.primary_temp.insert(e.pgid, e.acting[2]);
        map.epoch += 1;
        let moved = calc_target(&map, &obj(2, "a"), None, true).unwrap();
        assert_eq!((moved.primary, moved.shard), (e.acting[2], 2));
        assert!(needs_resend(&e, &moved));
    }
}
