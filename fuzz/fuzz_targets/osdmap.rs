//! OSDMap, OSDMap::Incremental, CRUSH map and MonMap decoding, and placement on what
//! decodes.
//!
//! Input: `selector`, then bytes. `selector % 4` picks:
//! 0. a full OSDMap; with `selector & 4` the bytes are `u32 len, map, incremental`, and the
//!    incremental (its fsid and epoch set to follow the map) is applied to the map;
//! 1. an Incremental;
//! 2. a CRUSH map;
//! 3. a MonMap.
//! The OSDMap/Incremental crc is fixed up unless `selector & 0x80` (else almost every mutation
//! would stop at the crc check). Whatever decodes is then used: objects are placed in every
//! pool (`object_to_pg`, `pg_to_up_acting`, `pg_to_raw_up`), every CRUSH rule is run for a few
//! inputs, and a CRUSH map must survive encode → decode unchanged.
//! Invariants: no panic, no hang; CRUSH never returns more items than asked for.
#![no_main]

use ceph_encoding::ceph_crc32c;
use ceph_fuzz::Input;
use ceph_rados::crush::{CrushMap, RuleOp};
use ceph_rados::mon::monmap::MonMap;
use ceph_rados::osdmap::{Incremental, OsdMap};
use libfuzzer_sys::fuzz_target;

fn le32(b: &[u8], o: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?) as usize)
}

/// OSDMap / Incremental (struct_v ≥ 8): after the outer envelope come two envelopes (client
/// data, osd-only data), then the crc: crc32c(-1) of everything before it, continued over
/// everything after it up to the end of the outer envelope.
fn fix_crc(b: &mut [u8]) {
    let Some(end) = le32(b, 2).map(|l| l.saturating_add(6)) else {
        return;
    };
    if b[0] < 8 || end > b.len() {
        return;
    }
    let mut p = 6;
    for _ in 0..2 {
        let Some(l) = le32(b, p + 2) else { return };
        p = p.saturating_add(6).saturating_add(l);
        if p > end {
            return;
        }
    }
    if p + 4 > end {
        return;
    }
    let crc = ceph_crc32c(ceph_crc32c(u32::MAX, &b[..p]), &b[p + 4..end]);
    b[p..p + 4].copy_from_slice(&crc.to_le_bytes());
}

/// CRUSH's running time grows with the retry tunables (`choose_total_tries`,
/// `choose_local_tries`, … and the `set_choose*_tries` rule steps) and with the replica
/// counts of the choose steps, in ceph's mapper.c as in ours: a map asking for 10^8 local
/// retries spins for minutes, which is a property of the map, not of the decoder. Maps beyond
/// what any real cluster uses are decoded but not run (do_rule has no work bound of its own).
fn crush_is_tame(crush: &CrushMap) -> bool {
    let t = &crush.tunables;
    let small = |v: u32, max: u32| v <= max;
    small(t.choose_total_tries, 100)
        && small(t.choose_local_tries, 10)
        && small(t.choose_local_fallback_tries, 10)
        && crush.rules.iter().flatten().flat_map(|r| r.steps.iter()).all(|s| match s.op {
            RuleOp::SET_CHOOSE_TRIES => small(s.arg1 as u32, 100),
            // numrep: crush_choose_firstn loops `for rep < numrep` even when no rep can
            // succeed (an unreachable type), so 5·10^7 replicas take seconds per PG.
            RuleOp::CHOOSE_FIRSTN
            | RuleOp::CHOOSE_INDEP
            | RuleOp::CHOOSELEAF_FIRSTN
            | RuleOp::CHOOSELEAF_INDEP => s.arg1 <= 64,
            RuleOp::SET_CHOOSELEAF_TRIES
            | RuleOp::SET_CHOOSE_LOCAL_TRIES
            | RuleOp::SET_CHOOSE_LOCAL_FALLBACK_TRIES => small(s.arg1 as u32, 10),
            _ => true,
        })
}

fn exercise_crush(crush: &CrushMap) {
    if !crush_is_tame(crush) {
        return;
    }
    // crushtool_weights allocates max_devices entries, and decode bounds max_devices only
    // by i32 (a 29-byte map can ask for 2.7 GB: see the fuzz report); keep it small here.
    let weights = if crush.max_devices <= 1 << 16 {
        crush.crushtool_weights(&[])
    } else {
        vec![0x10000; 1 << 16]
    };
    for (rule, r) in crush.rules.iter().enumerate().take(8) {
        if r.is_none() {
            continue;
        }
        for x in 0..4u32 {
            for n in [1usize, 3, 6] {
                let out = crush.do_rule(
                    rule as i32,
                    x.wrapping_mul(0x9e37_79b9),
                    n,
                    &weights,
                    Some(-1),
                );
                assert!(
                    out.len() <= n,
                    "do_rule returned {} items for result_max {n}",
                    out.len()
                );
            }
        }
    }
}

fn exercise_map(map: &OsdMap) {
    if !crush_is_tame(&map.crush) {
        return;
    }
    for (&pool, _) in map.pools.iter().take(4) {
        for name in ["obj4k", "rbd_header.1234", ""] {
            if let Ok((raw, pg)) = map.object_to_pg(pool, name, "", None) {
                let (up, up_primary, acting, acting_primary) = map.pg_to_up_acting(raw);
                assert!(up_primary == -1 || up.contains(&up_primary));
                let _ = (acting, acting_primary);
                let _ = map.pg_to_raw_up(pg);
                let _ = map.raw_pg_to_pps(raw);
            }
        }
    }
    for osd in map.osds().take(16) {
        let _ = (
            map.is_up(osd),
            map.is_in(osd),
            map.osd_addrs(osd),
            map.primary_affinity(osd),
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let sel = inp.u8();
    let fix = sel & 0x80 == 0;
    match sel % 4 {
        0 => {
            let (mut map_bytes, inc_bytes) = if sel & 4 != 0 {
                let n = inp.u32() as usize;
                (inp.take(n).to_vec(), Some(inp.rest().to_vec()))
            } else {
                (inp.rest().to_vec(), None)
            };
            if fix {
                fix_crc(&mut map_bytes);
            }
            let Ok(mut map) = OsdMap::decode(&map_bytes) else {
                return;
            };
            exercise_map(&map);
            if let Some(mut inc) = inc_bytes {
                // client-data envelope opens at 6: fsid at 12..28, epoch at 28..32.
                if inc.len() >= 32 {
                    inc[12..28].copy_from_slice(&map.fsid.0);
                    inc[28..32].copy_from_slice(&map.epoch.wrapping_add(1).to_le_bytes());
                }
                if fix {
                    fix_crc(&mut inc);
                }
                if let Ok(inc) = Incremental::decode(&inc) {
                    // (OsdMap has no PartialEq: compare the Debug forms.)
                    let before = format!("{map:?}");
                    match map.apply_incremental(&inc) {
                        Ok(()) => exercise_map(&map),
                        Err(_) => assert!(
                            format!("{map:?}") == before,
                            "a failed incremental changed the map"
                        ),
                    }
                }
            }
        }
        1 => {
            let mut b = inp.rest().to_vec();
            if fix {
                fix_crc(&mut b);
            }
            let _ = Incremental::decode(&b);
        }
        2 => {
            let Ok(crush) = CrushMap::decode(inp.rest()) else {
                return;
            };
            // An empty name cannot round-trip: the name maps are decoded with ceph's
            // decode_32_or_64_string_map, where a zero length means "the key was 64-bit,
            // the length follows" (ceph's own encoder has the same ambiguity).
            let empty_name = [&crush.type_names, &crush.names, &crush.rule_names]
                .iter()
                .any(|m| m.values().any(|n| n.is_empty()));
            if !empty_name {
                let mut enc = Vec::new();
                crush.encode(&mut enc);
                let back = CrushMap::decode(&enc).expect("our own CRUSH encoding must decode");
                assert!(back == crush, "CRUSH map changed through encode/decode");
            }
            exercise_crush(&crush);
        }
        _ => {
            let _ = MonMap::decode(inp.rest());
        }
    }
});
