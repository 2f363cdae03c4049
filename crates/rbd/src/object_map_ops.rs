//! Object map maintenance: check and rebuild from the objects' clone lists, and feature
//! changes with librbd's dependency rules (ceph: src/librbd/operation/
//! {ObjectMapIterate,RebuildObjectMapRequest,EnableFeaturesRequest,
//! DisableFeaturesRequest}.cc, src/librbd/Operations.cc `update_features`).

use crate::cls::{self, lock::lock_type, lock::RBD_LOCK_NAME, ClsCall};
use crate::diff::calc_snap_set_diff;
use crate::error::{RbdError, Result};
use crate::features;
use crate::image::{Image, State};
use crate::object_map::{self, state, ObjectMap};
use crate::util::{run_all, BoxFut, GoneOk};
use ceph_encoding::EncodeExt;
use ceph_rados::NOSNAP;
use std::sync::Arc;

/// Features `feature enable` accepts (librbd `RBD_FEATURES_MUTABLE` minus the ones this
/// client does not implement).
pub const ENABLE_MUTABLE: u64 =
    features::EXCLUSIVE_LOCK | features::OBJECT_MAP | features::FAST_DIFF;
/// Features `feature disable` accepts (`RBD_FEATURES_MUTABLE | RBD_FEATURES_DISABLE_ONLY`).
pub const DISABLE_MUTABLE: u64 = ENABLE_MUTABLE | features::DEEP_FLATTEN | features::JOURNALING;

/// cls_rbd `set_features(features, mask)`.
fn set_features(bits: u64, mask: u64) -> ClsCall {
    let mut v = Vec::new();
    v.put_u64(bits);
    v.put_u64(mask);
    ClsCall::new("rbd", "set_features", v, true)
}

/// cls_rbd `set_flags(flags, mask, snap_id)`.
pub(crate) fn set_flags(flags: u64, mask: u64, snap_id: u64) -> ClsCall {
    let mut v = Vec::new();
    v.put_u64(flags);
    v.put_u64(mask);
    v.put_u64(snap_id);
    ClsCall::new("rbd", "set_flags", v, true)
}

/// What a correct map says for object `ono` at each of `ends` (ascending snap ids,
/// NOSNAP last for the head), from one LIST_SNAPS: NONEXISTENT if the object is absent
/// there, EXISTS_CLEAN (fast-diff) if unchanged since the snapshot before, else EXISTS.
pub(crate) async fn expected_states(
    st: &State,
    ono: u64,
    snaps: &[u64],
    ends: &[u64],
    fast_diff: bool,
) -> Result<Vec<u8>> {
    let oid = st.object_name(ono);
    let (clones, seq) = match st.data_io.list_snaps(&oid).await {
        Ok(r) => r,
        Err(e) if e.is_not_found() => return Ok(vec![state::NONEXISTENT; ends.len()]),
        Err(e) => return Err(e.into()),
    };
    // librbd ObjectMapIterateRequest: with fast-diff an object is clean at a snapshot
    // (or the head) when the same clone (or the head) serves the snapshot before it,
    // i.e. no write reached the object in between (overlaps are not consulted)
    let exists_at = |x: u64| calc_snap_set_diff(&clones, seq, 0, x).end_exists;
    let server = |x: u64| -> Option<usize> {
        if x == NOSNAP {
            return None;
        }
        clones
            .iter()
            .position(|c| c.cloneid != NOSNAP && c.snaps.last().map(|&l| l >= x).unwrap_or(false))
    };
    Ok(ends
        .iter()
        .map(|&end| {
            let prev = snaps
                .iter()
                .copied()
                .filter(|&id| id < end)
                .max()
                .unwrap_or(0);
            if !exists_at(end) {
                state::NONEXISTENT
            } else if fast_diff && prev != 0 && exists_at(prev) && server(prev) == server(end) {
                state::EXISTS_CLEAN
            } else {
                state::EXISTS
            }
        })
        .collect())
}

async fn expected_state(st: &State, ono: u64, prev: u64, end: u64, fast_diff: bool) -> Result<u8> {
    let snaps: Vec<u64> = if prev == 0 { vec![] } else { vec![prev] };
    Ok(expected_states(st, ono, &snaps, &[end], fast_diff).await?[0])
}

/// After a copy-up under an empty snap context (the object now shows in the snapshots
/// too), or a rollback: set object `ono`'s state in every snapshot map (and the head's,
/// with `head`) to what its clone list says (librbd `CopyupRequest::update_object_maps`).
pub(crate) async fn sync_object_states(st: &State, ono: u64, head: bool) -> Result<()> {
    let Some(x) = st.xlock.as_ref().filter(|x| x.has_map()) else {
        return Ok(());
    };
    let snaps: Vec<u64> = st.h.snaps.iter().map(|s| s.id).collect();
    let mut ends = snaps.clone();
    if head {
        ends.push(NOSNAP);
    }
    let fast_diff = st.h.features & features::FAST_DIFF != 0;
    let want = expected_states(st, ono, &snaps, &ends, fast_diff).await?;
    for (&end, &w) in ends.iter().zip(&want) {
        if end == NOSNAP {
            x.update_object(ono, w, None).await?;
        } else if st
            .h
            .snap(end)
            .map(|s| ono < st.h.layout.num_objects(s.size))
            .unwrap_or(false)
        {
            x.set_snapshot_state(end, ono, w).await?;
        }
    }
    Ok(())
}

/// After a rollback: recompute the whole head map from the objects and save it (the
/// rolled-back objects differ from the newest snapshot, so a copy of the snapshot's map
/// would mark them clean).
pub(crate) async fn rebuild_head_map(
    st: &Arc<State>,
    md_io: &ceph_rados::IoCtx,
    image_id: &str,
) -> Result<()> {
    let Some(x) = st.xlock.as_ref().filter(|x| x.has_map()) else {
        return Ok(());
    };
    let snaps: Vec<u64> = st.h.snaps.iter().map(|s| s.id).collect();
    let fast_diff = st.h.features & features::FAST_DIFF != 0;
    let n = st.h.layout.num_objects(st.h.size);
    let futs: Vec<BoxFut<u8>> = (0..n)
        .map(|ono| {
            let st = st.clone();
            let snaps = snaps.clone();
            Box::pin(async move {
                Ok(expected_states(&st, ono, &snaps, &[NOSNAP], fast_diff).await?[0])
            }) as BoxFut<u8>
        })
        .collect();
    let map = ObjectMap {
        states: run_all(futs, 64).await?,
    };
    let ops = vec![
        cls::lock::assert_locked(RBD_LOCK_NAME, lock_type::EXCLUSIVE, "", "").op(),
        object_map::save(&map).op(),
    ];
    md_io
        .operate_write(&object_map::object_map_name(image_id, NOSNAP), ops)
        .await?;
    x.replace_map(map);
    Ok(())
}

impl Image {
    fn snap_ids(st: &State, snap: Option<&str>) -> Result<(u64, u64, u64)> {
        // (end id, previous snapshot id or 0, image size at end)
        let (end, size) = match snap {
            None => (NOSNAP, st.h.size),
            Some(n) => {
                let s = st
                    .h
                    .snap_by_name(n)
                    .ok_or_else(|| RbdError::not_found(format!("snapshot '{n}' does not exist")))?;
                (s.id, s.size)
            }
        };
        let prev =
            st.h.snaps
                .iter()
                .map(|s| s.id)
                .filter(|&id| id < end)
                .max()
                .unwrap_or(0);
        Ok((end, prev, size))
    }

    async fn computed_map(&self, st: &Arc<State>, snap: Option<&str>) -> Result<(u64, ObjectMap)> {
        let (end, prev, size) = Self::snap_ids(st, snap)?;
        let fast_diff = st.h.features & features::FAST_DIFF != 0;
        let n = st.h.layout.num_objects(size);
        let futs: Vec<BoxFut<u8>> = (0..n)
            .map(|ono| {
                let st = st.clone();
                Box::pin(async move { expected_state(&st, ono, prev, end, fast_diff).await })
                    as BoxFut<u8>
            })
            .collect();
        let states = run_all(futs, 64).await?;
        Ok((end, ObjectMap { states }))
    }

    /// `rbd object-map check`: compare the stored map of the head (or `snap`) with the
    /// objects; returns the mismatches as (object, stored, expected).
    pub async fn object_map_check(&self, snap: Option<&str>) -> Result<Vec<(u64, u8, u8)>> {
        let st = self.state().await?;
        if st.h.features & features::OBJECT_MAP == 0 {
            return Err(RbdError::InvalidArgument(
                "image does not have object map feature enabled".into(),
            ));
        }
        let (end, want) = self.computed_map(&st, snap).await?;
        let oid = object_map::object_map_name(&self.inner.id, end);
        let have = match object_map::load().exec(&self.inner.md_io, &oid).await {
            Ok(b) => ObjectMap::decode(&b)?,
            Err(e) if e.is_not_found() => ObjectMap::default(),
            Err(e) => return Err(e),
        };
        let mut bad = Vec::new();
        for i in 0..want.len().max(have.len()) {
            let (h, w) = (have.get(i), want.get(i));
            if h != w || i >= have.len() {
                bad.push((i, h, w));
            }
        }
        Ok(bad)
    }

    /// `rbd object-map rebuild`: recompute the head's (or `snap`'s) map from the objects,
    /// save it under the exclusive lock and clear the invalid flags.
    pub async fn object_map_rebuild(&self, snap: Option<&str>) -> Result<()> {
        self.check_writable()?;
        // librbd proxies the head's rebuild only (a snapshot's map needs no lock)
        if snap.is_none()
            && self
                .invoke_proxied(crate::watch_notify::Request::RebuildObjectMap)
                .await?
        {
            return Ok(());
        }
        let _og = self.op_gate().await?;
        let st = self.state().await?;
        if st.h.features & features::OBJECT_MAP == 0 {
            return Err(RbdError::InvalidArgument(
                "image does not have object map feature enabled".into(),
            ));
        }
        let _q = self.inner.quiesce.write().await;
        let (end, map) = self.computed_map(&st, snap).await?;
        let io = &self.inner.md_io;
        let oid = object_map::object_map_name(&self.inner.id, end);
        let mut ops = Vec::new();
        if end == NOSNAP {
            ops.push(cls::lock::assert_locked(RBD_LOCK_NAME, lock_type::EXCLUSIVE, "", "").op());
        }
        ops.push(object_map::save(&map).op());
        io.operate_write(&oid, ops).await?;
        if end == NOSNAP {
            if let Some(x) = self.xlock() {
                x.replace_map(map);
            }
        }
        set_flags(
            0,
            features::flag::OBJECT_MAP_INVALID | features::flag::FAST_DIFF_INVALID,
            end,
        )
        .exec(io, &self.inner.header_oid)
        .await?;
        drop(_q);
        drop(_og);
        self.notify_header_update().await;
        Ok(())
    }

    /// `rbd feature enable|disable`: librbd's dependency rules; enabling the object map
    /// creates it flagged invalid (to be rebuilt), disabling it removes the maps.
    pub async fn update_features(&self, mask: u64, enable: bool) -> Result<()> {
        self.check_writable()?;
        if self.inner.format == 1 {
            // librbd::Operations refuses it the same way (EINVAL)
            return Err(RbdError::InvalidArgument(
                "old-format images do not support features".into(),
            ));
        }
        let st = self.state().await?;
        let cur = st.h.features;
        let allowed = if enable {
            ENABLE_MUTABLE
        } else {
            DISABLE_MUTABLE
        };
        if mask == 0 || mask & !allowed != 0 {
            return Err(RbdError::InvalidArgument(
                "cannot update immutable features".into(),
            ));
        }
        // librbd 16.2 (checked with python3-rbd): a feature already in the requested
        // state is EINVAL, and object-map and fast-diff go together both ways
        // (disabling fast-diff drops the object map, enabling either enables both)
        if enable && mask & cur != 0 {
            return Err(RbdError::InvalidArgument(
                "one or more requested features are already enabled".into(),
            ));
        }
        if !enable && mask & !cur != 0 {
            return Err(RbdError::InvalidArgument(
                "one or more requested features are already disabled".into(),
            ));
        }
        let mut mask = mask;
        if mask & (features::OBJECT_MAP | features::FAST_DIFF) != 0 {
            mask |= features::OBJECT_MAP | features::FAST_DIFF;
        }
        if enable {
            mask &= !cur;
            let after = cur | mask;
            if let Some(why) = features::missing_dependency(after) {
                return Err(RbdError::InvalidArgument(why.into()));
            }
        } else {
            mask &= cur;
            if mask & features::OBJECT_MAP != 0 {
                mask |= cur & features::FAST_DIFF;
            }
            let after = cur & !mask;
            if mask & features::EXCLUSIVE_LOCK != 0
                && after & (features::OBJECT_MAP | features::JOURNALING) != 0
            {
                return Err(RbdError::InvalidArgument(
                    "cannot disable exclusive-lock. object-map or journaling must be disabled before disabling exclusive-lock.".into(),
                ));
            }
            if let Some(why) = features::missing_dependency(after) {
                return Err(RbdError::InvalidArgument(why.into()));
            }
        }
        if mask == 0 {
            return Ok(());
        }
        // the lock owner changes features (librbd proxies to it or acquires it first)
        if self
            .invoke_proxied(crate::watch_notify::Request::UpdateFeatures {
                features: mask,
                enabled: enable,
            })
            .await?
        {
            return Ok(());
        }
        let _og = self.op_gate().await?;
        let io = &self.inner.md_io;
        let hoid = &self.inner.header_oid;
        if enable {
            if mask & (features::OBJECT_MAP | features::FAST_DIFF) != 0 {
                let flags = features::flag::OBJECT_MAP_INVALID | features::flag::FAST_DIFF_INVALID;
                set_flags(flags, flags, NOSNAP).exec(io, hoid).await?;
                if mask & features::OBJECT_MAP != 0 {
                    let n = st.h.layout.num_objects(st.h.size);
                    object_map::resize(n, state::NONEXISTENT)
                        .exec(io, &object_map::object_map_name(&self.inner.id, NOSNAP))
                        .await?;
                    for s in &st.h.snaps {
                        set_flags(flags, flags, s.id).exec(io, hoid).await?;
                        let sn = st.h.layout.num_objects(s.size);
                        object_map::resize(sn, state::NONEXISTENT)
                            .exec(io, &object_map::object_map_name(&self.inner.id, s.id))
                            .await?;
                    }
                }
            }
            set_features(cur | mask, mask).exec(io, hoid).await?;
        } else {
            set_features(cur & !mask, mask).exec(io, hoid).await?;
            if mask & features::OBJECT_MAP != 0 {
                let mut ids: Vec<u64> = st.h.snaps.iter().map(|s| s.id).collect();
                ids.push(NOSNAP);
                for id in ids {
                    io.remove(&object_map::object_map_name(&self.inner.id, id))
                        .await
                        .gone_ok()?;
                }
            }
            if mask & (features::OBJECT_MAP | features::FAST_DIFF) != 0 {
                let flags = features::flag::OBJECT_MAP_INVALID | features::flag::FAST_DIFF_INVALID;
                let clear = if mask & features::OBJECT_MAP != 0 {
                    flags
                } else {
                    features::flag::FAST_DIFF_INVALID
                };
                let _ = set_flags(0, clear, NOSNAP).exec(io, hoid).await;
            }
        }
        if mask & (features::OBJECT_MAP | features::FAST_DIFF) != 0 {
            self.reload_object_map().await?;
        }
        drop(_og);
        self.notify_header_update().await;
        Ok(())
    }
}

/// Per-object change between snapshot `from` (0: creation) and `end` (snap id or NOSNAP)
/// from the object maps alone (librbd `object_map::DiffRequest`): `None` when fast-diff
/// cannot be used (feature off, a map flagged invalid or missing); else, per object of
/// the image at `end`, `Some(exists_at_end)` if it changed.
pub(crate) async fn fast_diff(
    st: &Arc<State>,
    md_io: &ceph_rados::IoCtx,
    image_id: &str,
    from: u64,
    end: u64,
) -> Result<Option<Vec<Option<bool>>>> {
    let h = &st.h;
    if h.features & features::FAST_DIFF == 0 {
        return Ok(None);
    }
    let bad = features::flag::OBJECT_MAP_INVALID | features::flag::FAST_DIFF_INVALID;
    // the maps to walk: `from` (the base), then every snapshot after it up to `end`
    let mut ids: Vec<u64> = h
        .snaps
        .iter()
        .map(|s| s.id)
        .filter(|&id| id > from && (end == NOSNAP || id <= end))
        .collect();
    ids.sort_unstable();
    if end == NOSNAP {
        ids.push(NOSNAP);
    }
    let flags_of = |id: u64| -> Option<u64> {
        if id == NOSNAP {
            Some(h.flags)
        } else {
            h.snap(id).map(|s| s.flags)
        }
    };
    let md = crate::object_map::object_map_name;
    let mut maps = Vec::new();
    let base = if from == 0 { None } else { Some(from) };
    for id in base.into_iter().chain(ids.iter().copied()) {
        if flags_of(id).map(|f| f & bad != 0).unwrap_or(true) {
            return Ok(None);
        }
        maps.push(id);
    }
    let end_size = if end == NOSNAP {
        h.size
    } else {
        h.snap(end).map(|s| s.size).unwrap_or(0)
    };
    let n = h.layout.num_objects(end_size);
    let mut loaded = Vec::with_capacity(maps.len());
    for id in &maps {
        let b = match md_io.read_full(&md(image_id, *id)).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        loaded.push(ObjectMap::decode(&b)?);
    }
    let exists = |s: u8| s != state::NONEXISTENT;
    let mut out = vec![None; n as usize];
    for (j, slot) in out.iter_mut().enumerate() {
        let j = j as u64;
        let (start_exists, rest) = if from == 0 {
            (false, &loaded[..])
        } else {
            (exists(loaded[0].get(j)), &loaded[1..])
        };
        let end_exists = rest
            .last()
            .map(|m| exists(m.get(j)))
            .unwrap_or(start_exists);
        let dirty = rest
            .iter()
            .any(|m| matches!(m.get(j), state::EXISTS | state::PENDING));
        if end_exists != start_exists || (end_exists && (dirty || from == 0)) {
            *slot = Some(end_exists);
        }
    }
    Ok(Some(out))
}
