use super::*;
use crate::crush::CRUSH_ITEM_NONE as NONE;

const UP_IN: u32 = osd_state::EXISTS | osd_state::UP;

/// 6 OSDs on 3 hosts (protocol map §6.9 CRUSH map), all up and in; pool 1 replicated
/// size 3 pg_num 48 (rule 0), pool 2 erasure size 4 pg_num 16 (rule 1, indep).
pub(crate) fn base_map() -> OsdMap {
    let mut pools = BTreeMap::new();
    pools.insert(1, PgPool::new(pool_type::REPLICATED, 3, 0, 48));
    pools.insert(2, PgPool::new(pool_type::ERASURE, 4, 1, 16));
    let pool_names = [(1, "rbd".to_string()), (2, "ec".to_string())]
        .into_iter()
        .collect();
    OsdMap {
        fsid: Uuid([7; 16]),
        epoch: 10,
        created: UTime::default(),
        modified: UTime::default(),
        pools,
        pool_names,
        pool_max: 2,
        flags: 0,
        max_osd: 6,
        osd_state: vec![UP_IN; 6],
        osd_weight: vec![CEPH_OSD_IN; 6],
        osd_addrs: vec![EntityAddrVec::default(); 6],
        pg_temp: BTreeMap::new(),
        primary_temp: BTreeMap::new(),
        osd_primary_affinity: None,
        crush: Arc::new(crate::crush::tests::cm6()),
        erasure_code_profiles: BTreeMap::new(),
        pg_upmap: BTreeMap::new(),
        pg_upmap_items: BTreeMap::new(),
        pg_upmap_primaries: BTreeMap::new(),
        crush_version: 1,
        new_removed_snaps: BTreeMap::new(),
        new_purged_snaps: BTreeMap::new(),
        last_up_change: UTime::default(),
        last_in_change: UTime::default(),
        blocklist: BTreeMap::new(),
        range_blocklist: BTreeMap::new(),
        crc: None,
    }
}

fn pg(pool: u64, seed: u32) -> PgId {
    PgId::new(pool, seed)
}

/// The plain CRUSH result of a PG.
fn crush_of(m: &OsdMap, pg: PgId) -> Vec<i32> {
    let pool = &m.pools[&(pg.pool as i64)];
    m.crush.do_rule(
        pool.crush_rule as i32,
        pool.raw_pg_to_pps(pg),
        pool.size as usize,
        &m.osd_weight,
        None,
    )
}

#[test]
fn protocol_map_vectors_through_the_pipeline() {
    let m = base_map();
    for (name, want_pg, osds) in [
        ("foo", 0x6, [3, 4, 1]),
        ("rbd_directory", 0x1c, [0, 4, 2]),
        ("rbd_id.img1", 0x21, [5, 0, 2]),
    ] {
        let (raw, g) = m.object_to_pg(1, name, "", None).unwrap();
        assert_eq!(g, pg(1, want_pg), "{name}");
        assert_eq!(m.raw_pg_to_pg(raw), Some(g));
        assert_eq!(
            m.pg_to_up_acting(g),
            (osds.to_vec(), osds[0], osds.to_vec(), osds[0]),
            "{name}"
        );
        // a raw PG maps like its folded PG
        assert_eq!(m.pg_to_up_acting(raw), m.pg_to_up_acting(g));
    }
    assert!(matches!(
        m.object_to_pg(9, "foo", "", None),
        Err(OsdMapError::NoSuchPool(9))
    ));
    assert_eq!(m.pg_to_up_acting(pg(9, 0)), (vec![], -1, vec![], -1));
    assert_eq!(m.lookup_pool("ec"), Some(2));
    assert_eq!(m.pool_name(1), Some("rbd"));
}

#[test]
fn down_and_nonexistent_osds_replicated_vs_erasure() {
    let mut m = base_map();
    let rp = pg(1, 5);
    let ep = pg(2, 3);
    let r = crush_of(&m, rp);
    let e = crush_of(&m, ep);
    assert_eq!(r.len(), 3);
    assert_eq!(e.len(), 4);
    // r[1] down (still exists): replicated shifts, EC leaves a hole at its position
    let down = r[1];
    m.osd_state[down as usize] = osd_state::EXISTS;
    let (up, upp, acting, actp) = m.pg_to_up_acting(rp);
    assert_eq!(up, vec![r[0], r[2]]);
    assert_eq!((upp, actp), (r[0], r[0]));
    assert_eq!(acting, up);
    let (raw, _) = m.pg_to_raw_osds(rp);
    assert_eq!(raw, r, "raw keeps down OSDs");
    let (up, upp, _, _) = m.pg_to_up_acting(ep);
    let want: Vec<i32> = e
        .iter()
        .map(|&o| if o == down { NONE } else { o })
        .collect();
    assert_eq!(up, want);
    assert_eq!(upp, *want.iter().find(|&&o| o != NONE).unwrap());
    // r[0] does not exist at all: removed from raw (replicated) or NONE (EC)
    let gone = r[0];
    m.osd_state[gone as usize] = 0;
    let (raw, rawp) = m.pg_to_raw_osds(rp);
    assert!(!raw.contains(&gone));
    assert_eq!(rawp, raw.first().copied().unwrap_or(-1));
    let (raw, _) = m.pg_to_raw_osds(ep);
    assert!(!raw.contains(&gone) && raw.len() == 4);
}

#[test]
fn pg_temp_and_primary_temp() {
    let mut m = base_map();
    let rp = pg(1, 7);
    let r = crush_of(&m, rp);
    // pg_temp replaces acting; down members are dropped (replicated)
    let others: Vec<i32> = (0..6).filter(|o| !r.contains(o)).collect();
    m.pg_temp.insert(rp, vec![others[0], r[2], others[1]]);
    m.osd_state[others[1] as usize] = osd_state::EXISTS;
    let (up, upp, acting, actp) = m.pg_to_up_acting(rp);
    assert_eq!(up, r);
    assert_eq!(upp, r[0]);
    assert_eq!(acting, vec![others[0], r[2]]);
    assert_eq!(actp, others[0]);
    // primary_temp overrides the acting primary
    m.primary_temp.insert(rp, r[2]);
    assert_eq!(m.pg_to_up_acting(rp).3, r[2]);
    // primary_temp alone: acting = up, primary from primary_temp
    m.pg_temp.clear();
    let (up, upp, acting, actp) = m.pg_to_up_acting(rp);
    assert_eq!((acting.clone(), actp), (up.clone(), r[2]));
    assert_eq!(upp, r[0]);
    // EC: a down pg_temp member keeps its position as NONE
    let ep = pg(2, 1);
    m.pg_temp.insert(ep, vec![0, 1, 2, 3]);
    m.osd_state = vec![UP_IN; 6];
    m.osd_state[1] = osd_state::EXISTS;
    let (_, _, acting, actp) = m.pg_to_up_acting(ep);
    assert_eq!(acting, vec![0, NONE, 2, 3]);
    assert_eq!(actp, 0);
    // a pg_temp of only down OSDs on a replicated pool is empty: acting falls back to up
    m.pg_temp.insert(rp, vec![1]);
    m.primary_temp.clear();
    let (up, upp, acting, actp) = m.pg_to_up_acting(rp);
    assert_eq!((acting, actp), (up, upp));
}

#[test]
fn primary_affinity() {
    let mut m = base_map();
    let rp = pg(1, 0x1c);
    let r = crush_of(&m, rp);
    assert_eq!(r, [0, 4, 2]);
    // affinity 0 for the CRUSH primary: the next one becomes primary and moves to front
    m.set_primary_affinity(0, 0);
    let (up, upp, acting, actp) = m.pg_to_up_acting(rp);
    assert_eq!(up, [4, 0, 2]);
    assert_eq!((upp, actp), (4, 4));
    assert_eq!(acting, up);
    // every member rejected: the first rejected one is the fallback
    for o in 0..6 {
        m.set_primary_affinity(o, 0);
    }
    assert_eq!(m.pg_to_up_acting(rp).0, [0, 4, 2]);
    assert_eq!(m.pg_to_up_acting(rp).1, 0);
    // a partial affinity decides per PG with hash32_2(pps, osd) >> 16 < a
    let mut m = base_map();
    m.set_primary_affinity(0, 0x8000);
    let pps = m.raw_pg_to_pps(rp).unwrap();
    let keep = (crate::crush::crush_hash32_2(pps, 0) >> 16) < 0x8000;
    assert_eq!(m.pg_to_up_acting(rp).1, if keep { 0 } else { 4 });
    // EC pools keep positions; only the primary changes
    let mut m = base_map();
    let ep = pg(2, 2);
    let e = crush_of(&m, ep);
    let first = *e.iter().find(|&&o| o != NONE).unwrap();
    m.set_primary_affinity(first, 0);
    let (up, upp, _, _) = m.pg_to_up_acting(ep);
    assert_eq!(up, e);
    assert_ne!(upp, first);
    assert!(up.contains(&upp));
}

#[test]
fn upmap_semantics() {
    let mut m = base_map();
    let rp = pg(1, 0x1c); // CRUSH: [0, 4, 2]
                          // pg_upmap replaces the raw set
    m.pg_upmap.insert(rp, vec![1, 3, 5]);
    assert_eq!(m.pg_to_up_acting(rp).0, [1, 3, 5]);
    // ... and pg_upmap_items apply on top of it
    m.pg_upmap_items.insert(rp, vec![(3, 2)]);
    assert_eq!(m.pg_to_up_acting(rp).0, [1, 2, 5]);
    // an out target in pg_upmap abandons the whole step (items too)
    m.osd_weight[5] = 0;
    let r = crush_of(&m, rp);
    assert_eq!(m.pg_to_up_acting(rp).0, r);
    m.osd_weight[5] = CEPH_OSD_IN;
    m.pg_upmap.clear();
    // items: "to" already present -> skipped; "to" out -> skipped; else first "from" replaced
    m.pg_upmap_items.insert(rp, vec![(0, 4), (4, 1), (2, 3)]);
    assert_eq!(m.pg_to_up_acting(rp).0, [0, 1, 3]);
    m.osd_weight[3] = 0;
    assert_eq!(m.pg_to_up_acting(rp).0, [0, 1, 2]);
    m.osd_weight[3] = CEPH_OSD_IN;
    // an upmapped OSD that is down leaves the up set
    m.osd_state[1] = osd_state::EXISTS;
    assert_eq!(m.pg_to_up_acting(rp).0, [0, 3]);
    m.osd_state[1] = UP_IN;
    // pg_upmap_primaries: swap a member to the front; ignored if not a member or out
    m.pg_upmap_items.clear();
    m.pg_upmap_primaries.insert(rp, 2);
    assert_eq!(m.pg_to_up_acting(rp).0, [2, 4, 0]);
    m.pg_upmap_primaries.insert(rp, 5);
    assert_eq!(m.pg_to_up_acting(rp).0, [0, 4, 2]);
    m.pg_upmap_primaries.insert(rp, 4);
    m.osd_weight[4] = 0;
    let r = crush_of(&m, rp);
    assert_eq!(m.pg_to_up_acting(rp).0, r);
    // upmaps are keyed by the actual PG: a raw PG folds onto it
    let mut m = base_map();
    m.pg_upmap.insert(rp, vec![5, 1, 3]);
    assert_eq!(m.pg_to_up_acting(pg(1, 0x30a9_8c1c)).0, [5, 1, 3]);
}

#[test]
fn apply_incremental_semantics() {
    let mut m = base_map();
    m.osd_state[3] |= osd_state::AUTOOUT | osd_state::NEW;
    m.osd_weight[3] = 0;
    m.pg_temp.insert(pg(1, 1), vec![0, 1, 2]);
    m.primary_temp.insert(pg(1, 1), 1);
    m.pg_upmap.insert(pg(1, 2), vec![0, 1, 2]);
    m.pg_upmap_items.insert(pg(1, 3), vec![(0, 1)]);
    m.set_primary_affinity(2, 0x4000);
    let mut inc = Incremental::new(m.fsid, 11);
    inc.new_max_osd = 8;
    inc.new_flags = map_flags::PAUSEWR as i32;
    inc.new_pools
        .insert(3, PgPool::new(pool_type::REPLICATED, 2, 0, 8));
    inc.new_pool_names.insert(3, "new".into());
    inc.old_pools.insert(2);
    inc.new_state.insert(1, 0); // legacy "0 means UP": osd.1 goes down
    inc.new_state.insert(2, osd_state::EXISTS); // destroy osd.2
    inc.new_up_client.insert(
        6,
        EntityAddrVec(vec![ceph_encoding::EntityAddr::msgr2(
            "10.0.0.6:6800".parse().unwrap(),
        )]),
    );
    inc.new_weight.insert(6, CEPH_OSD_IN);
    inc.new_weight.insert(3, 0x8000);
    inc.new_pg_temp.insert(pg(1, 1), vec![]);
    inc.new_primary_temp.insert(pg(1, 1), -1);
    inc.new_pg_temp.insert(pg(1, 4), vec![5, 4]);
    inc.old_pg_upmap.insert(pg(1, 2));
    inc.new_pg_upmap_items.insert(pg(1, 5), vec![(4, 5)]);
    inc.old_pg_upmap_items.insert(pg(1, 3));
    inc.new_pg_upmap_primary.insert(pg(1, 6), 3);
    inc.new_erasure_code_profiles
        .insert("p".into(), [("k".to_string(), "2".to_string())].into());
    inc.full_crc = Some(0x1234);

    // errors leave the map untouched
    let before = format!("{m:?}");
    let mut bad = inc.clone();
    bad.epoch = 13;
    assert!(matches!(
        m.apply_incremental(&bad),
        Err(OsdMapError::EpochMismatch { .. })
    ));
    let mut bad = inc.clone();
    bad.fsid = Uuid([1; 16]);
    assert!(matches!(
        m.apply_incremental(&bad),
        Err(OsdMapError::FsidMismatch { .. })
    ));
    let mut bad = inc.clone();
    bad.new_weight.insert(8, 0);
    assert!(matches!(
        m.apply_incremental(&bad),
        Err(OsdMapError::BadOsd { osd: 8, .. })
    ));
    let mut bad = inc.clone();
    bad.crush = vec![1, 2, 3];
    assert!(matches!(
        m.apply_incremental(&bad),
        Err(OsdMapError::Decode(_))
    ));
    let mut bad = inc.clone();
    bad.new_max_osd = i32::MAX;
    assert!(matches!(
        m.apply_incremental(&bad),
        Err(OsdMapError::BadMaxOsd(_))
    ));
    assert_eq!(format!("{m:?}"), before);

    m.apply_incremental(&inc).unwrap();
    assert_eq!(m.epoch, 11);
    assert_eq!(m.flags, map_flags::PAUSEWR);
    assert_eq!(m.max_osd, 8);
    assert_eq!(
        (m.osd_state.len(), m.osd_weight.len(), m.osd_addrs.len()),
        (8, 8, 8)
    );
    assert_eq!(m.osd_primary_affinity.as_ref().unwrap().len(), 8);
    assert_eq!(
        m.pools[&3].last_change, 11,
        "new pools get last_change = epoch"
    );
    assert_eq!(m.pool_name(3), Some("new"));
    assert!(!m.pools.contains_key(&2) && m.pool_name(2).is_none());
    assert!(m.exists(1) && !m.is_up(1));
    assert_eq!(m.osd_state_bits(2), 0, "destroyed");
    assert_eq!(m.primary_affinity(2), CEPH_OSD_DEFAULT_PRIMARY_AFFINITY);
    assert!(m.is_up(6) && m.is_in(6) && m.osd_addrs(6).unwrap().msgr2().is_some());
    assert!(!m.exists(7) && m.osd_addrs(7).is_none());
    assert_eq!(m.weight(3), 0x8000);
    assert_eq!(
        m.osd_state_bits(3) & (osd_state::AUTOOUT | osd_state::NEW),
        0,
        "marking in clears AUTOOUT|NEW"
    );
    assert!(!m.pg_temp.contains_key(&pg(1, 1)) && !m.primary_temp.contains_key(&pg(1, 1)));
    assert_eq!(m.pg_temp[&pg(1, 4)], [5, 4]);
    assert!(m.pg_upmap.is_empty());
    assert_eq!(
        m.pg_upmap_items.keys().copied().collect::<Vec<_>>(),
        [pg(1, 5)]
    );
    assert_eq!(m.pg_upmap_primaries[&pg(1, 6)], 3);
    assert_eq!(m.erasure_code_profiles["p"]["k"], "2");
    assert_eq!(m.crc, Some(0x1234));

    // a second state toggle brings osd.1 back up; a full map short-circuits
    let mut inc2 = Incremental::new(m.fsid, 12);
    inc2.new_state.insert(1, osd_state::UP);
    m.apply_incremental(&inc2).unwrap();
    assert!(m.is_up(1));
    // new crush map: replaced last, crush_version bumped
    let mut inc3 = Incremental::new(m.fsid, 13);
    let mut c = (*m.crush).clone();
    c.tunables.choose_total_tries = 77;
    c.encode(&mut inc3.crush);
    let v = m.crush_version;
    m.apply_incremental(&inc3).unwrap();
    assert_eq!(m.crush.tunables.choose_total_tries, 77);
    assert_eq!(m.crush_version, v + 1);
}

#[test]
fn incremental_with_garbage_fullmap_is_rejected() {
    let mut m = base_map();
    let mut inc = Incremental::new(m.fsid, 11);
    inc.fullmap = vec![8, 7, 0, 0, 0, 0];
    assert!(m.apply_incremental(&inc).is_err());
    assert_eq!(m.epoch, 10);
}
