use super::*;

const W1: u32 = 0x10000;

fn straw2(id: i32, type_id: u16, items: &[i32], weights: &[u32]) -> CrushBucket {
    CrushBucket {
        id,
        type_id,
        alg: BucketAlg::STRAW2,
        hash: 0,
        weight: weights.iter().sum(),
        items: items.to_vec(),
        data: BucketData::Straw2 {
            item_weights: weights.to_vec(),
        },
    }
}

fn step(op: RuleOp, arg1: i32, arg2: i32) -> RuleStep {
    RuleStep { op, arg1, arg2 }
}

fn rule(rule_type: u8, steps: Vec<RuleStep>) -> Option<CrushRule> {
    Some(CrushRule {
        ruleset: 0,
        rule_type,
        min_size: 1,
        max_size: 10,
        steps,
    })
}

/// The map of the protocol map §6.9: `crushtool --build --num_osds 6 host straw2 2 root
/// straw2 0` (3 hosts x 2 OSDs, jewel tunables) plus its rules 1 and 2.
pub(crate) fn cm6() -> CrushMap {
    let buckets = vec![
        Some(straw2(-1, 1, &[0, 1], &[W1, W1])),
        Some(straw2(-2, 1, &[2, 3], &[W1, W1])),
        Some(straw2(-3, 1, &[4, 5], &[W1, W1])),
        Some(straw2(-4, 2, &[-1, -2, -3], &[2 * W1, 2 * W1, 2 * W1])),
    ];
    let mut r1 = rule(
        3,
        vec![
            step(RuleOp::SET_CHOOSELEAF_TRIES, 5, 0),
            step(RuleOp::SET_CHOOSE_TRIES, 100, 0),
            step(RuleOp::TAKE, -4, 0),
            step(RuleOp::CHOOSELEAF_INDEP, 0, 1),
            step(RuleOp::EMIT, 0, 0),
        ],
    );
    r1.as_mut().unwrap().ruleset = 1;
    let mut r2 = rule(
        1,
        vec![
            step(RuleOp::TAKE, -4, 0),
            step(RuleOp::CHOOSE_FIRSTN, 0, 0),
            step(RuleOp::EMIT, 0, 0),
        ],
    );
    r2.as_mut().unwrap().ruleset = 2;
    CrushMap {
        buckets,
        rules: vec![
            rule(
                1,
                vec![
                    step(RuleOp::TAKE, -4, 0),
                    step(RuleOp::CHOOSELEAF_FIRSTN, 0, 1),
                    step(RuleOp::EMIT, 0, 0),
                ],
            ),
            r1,
            r2,
        ],
        max_devices: 6,
        type_names: [(0, "osd"), (1, "host"), (2, "root")]
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect(),
        names: BTreeMap::new(),
        rule_names: BTreeMap::new(),
        tunables: Tunables {
            choose_local_tries: 0,
            choose_local_fallback_tries: 0,
            choose_total_tries: 50,
            chooseleaf_descend_once: 1,
            chooseleaf_vary_r: 1,
            straw_calc_version: 1,
            allowed_bucket_algs: 54,
            chooseleaf_stable: 1,
            msr: None,
        },
        class_map: BTreeMap::new(),
        class_names: BTreeMap::new(),
        class_buckets: BTreeMap::new(),
        choose_args: BTreeMap::new(),
    }
}

const N: i32 = CRUSH_ITEM_NONE;

#[test]
fn protocol_map_vectors() {
    // protocol map §6.9 (VERIFIED-LOCAL with crushtool 16.2.15).
    let m = cm6();
    let w = vec![W1; 6];
    let cases: &[(i32, usize, u32, &[i32])] = &[
        (0, 3, 0, &[0, 3, 5]),
        (0, 3, 1, &[0, 5, 2]),
        (0, 3, 2, &[1, 3, 4]),
        (0, 3, 3, &[4, 0, 2]),
        (0, 3, 4, &[2, 0, 5]),
        (0, 3, 5, &[5, 0, 2]),
        (0, 3, 6, &[1, 4, 3]),
        (0, 3, 7, &[2, 5, 1]),
        (0, 3, 8, &[2, 5, 1]),
        (0, 3, 9, &[1, 3, 5]),
        (0, 3, 633_844_593, &[0, 4, 2]),
        (1, 4, 0, &[0, N, 3, 4]),
        (1, 4, 1, &[0, 5, N, 3]),
        (1, 4, 2, &[1, 2, N, 5]),
        (1, 4, 3, &[4, 0, N, 3]),
        (1, 4, 4, &[2, 4, 1, N]),
        (2, 3, 0, &[0, 3, 2]),
        (2, 3, 1, &[0, 5, 1]),
        (2, 3, 2, &[1, 3, 2]),
        (2, 3, 3, &[4, 0, 2]),
        (2, 3, 4, &[2, 0, 5]),
    ];
    for &(r, n, x, want) in cases {
        assert_eq!(m.do_rule(r, x, n, &w, None), want, "rule {r} x {x}");
    }
    // The pipeline vectors of §5.5 (pps of foo and rbd_id.img1, rule 0, 3 replicas).
    assert_eq!(m.do_rule(0, 3_614_737_657, 3, &w, None), [3, 4, 1]);
    assert_eq!(m.do_rule(0, 2_434_882_463, 3, &w, None), [5, 0, 2]);
}

#[test]
fn encode_decode_roundtrip() {
    let m = cm6();
    let mut bytes = Vec::new();
    m.encode(&mut bytes);
    let back = CrushMap::decode(&bytes).unwrap();
    assert_eq!(back, m);
}

#[test]
fn crushtool_lines_format() {
    let m = cm6();
    let w = m.crushtool_weights(&[]);
    // no device is present in a bucket -> all weights are counted from the buckets
    assert_eq!(w, vec![W1; 6]);
    let lines = crushtool_test_lines(&m, 1, 4, 0, 1, &w);
    assert_eq!(
        lines,
        [
            "CRUSH rule 1 x 0 [0,2147483647,3,4]",
            "CRUSH rule 1 x 1 [0,5,2147483647,3]"
        ]
    );
    assert!(crushtool_test_lines(&m, 7, 3, 0, 1, &w).is_empty());
    assert!(crushtool_test_lines(&m, 0, 3, 0, 1, &[0; 6]).is_empty());
}

#[test]
fn find_rule_uniform_and_legacy() {
    let mut m = cm6();
    // uniform: ruleset == id, but type and size must still match the mask
    assert_eq!(m.find_rule(1, 3, 4), 1);
    assert_eq!(m.find_rule(1, 1, 4), -1);
    assert_eq!(m.find_rule(1, 3, 11), -1);
    assert_eq!(m.find_rule(5, 1, 3), -1);
    // legacy: rule 0 claims ruleset 2 -> the mask search decides
    m.rules[0].as_mut().unwrap().ruleset = 2;
    assert!(!m.has_uniform_rules());
    assert_eq!(m.find_rule(2, 1, 3), 0);
    assert_eq!(m.find_rule(0, 1, 3), -1);
    assert_eq!(m.find_rule(2, 1, 11), -1);
}

#[test]
fn hostile_maps_do_not_panic() {
    let w = vec![W1; 8];
    // a bucket that contains itself, looking for a type that never appears
    let mut m = cm6();
    m.buckets[3] = Some(straw2(-4, 2, &[-4, -1], &[W1, W1]));
    m.rules[0] = rule(
        1,
        vec![
            step(RuleOp::TAKE, -4, 0),
            step(RuleOp::CHOOSELEAF_FIRSTN, 0, 7),
            step(RuleOp::EMIT, 0, 0),
        ],
    );
    for x in 0..50 {
        let _ = m.do_rule(0, x, 3, &w, None);
    }
    m.rules[0] = rule(
        3,
        vec![
            step(RuleOp::TAKE, -4, 0),
            step(RuleOp::CHOOSELEAF_INDEP, 0, 7),
            step(RuleOp::EMIT, 0, 0),
        ],
    );
    for x in 0..50 {
        let out = m.do_rule(0, x, 3, &w, None);
        assert!(out.iter().all(|&o| o == N || (0..8).contains(&o)));
    }
    // items pointing at missing buckets and huge device ids
    let mut m = cm6();
    m.buckets[0] = Some(straw2(-1, 1, &[-100, i32::MIN, 1_000_000], &[W1, W1, W1]));
    m.buckets[2] = None;
    for r in 0..3 {
        for x in 0..50 {
            let _ = m.do_rule(r, x, 5, &w, None);
        }
    }
    // a tree bucket with nonsense node weights, a list bucket with short vectors
    let mut m = cm6();
    m.buckets[0] = Some(CrushBucket {
        id: -1,
        type_id: 1,
        alg: BucketAlg::TREE,
        hash: 0,
        weight: 0,
        items: vec![0, 1],
        data: BucketData::Tree {
            node_weights: vec![1, 2],
        },
    });
    m.buckets[1] = Some(CrushBucket {
        id: -2,
        type_id: 1,
        alg: BucketAlg::LIST,
        hash: 0,
        weight: 0,
        items: vec![2, 3],
        data: BucketData::List {
            item_weights: vec![1],
            sum_weights: vec![],
        },
    });
    m.buckets[2] = Some(CrushBucket {
        id: -3,
        type_id: 1,
        alg: BucketAlg::UNIFORM,
        hash: 0,
        weight: 0,
        items: vec![],
        data: BucketData::Uniform { item_weight: 0 },
    });
    for r in 0..3 {
        for x in 0..50 {
            let _ = m.do_rule(r, x, 4, &w, None);
            let _ = m.do_rule(r, x, 0, &w, None);
            let _ = m.do_rule(r, x, 4, &[], None);
        }
    }
    // rule steps with extreme arguments
    let mut m = cm6();
    m.rules[0] = rule(
        1,
        vec![
            step(RuleOp::SET_CHOOSELEAF_VARY_R, 1000, 0),
            step(RuleOp::SET_CHOOSE_LOCAL_TRIES, 3, 0),
            step(RuleOp::SET_CHOOSE_LOCAL_FALLBACK_TRIES, 3, 0),
            step(RuleOp::TAKE, i32::MIN, 0),
            step(RuleOp::TAKE, -4, 0),
            step(RuleOp::CHOOSE_FIRSTN, i32::MIN, 1),
            step(RuleOp::CHOOSELEAF_FIRSTN, -1, 0),
            step(RuleOp::CHOOSE_INDEP, i32::MAX, 1),
            step(RuleOp::EMIT, 0, 0),
            step(RuleOp(99), 1, 1),
        ],
    );
    for x in 0..50 {
        let _ = m.do_rule(0, x, 6, &w, None);
    }
}

#[test]
fn truncated_and_garbage_input_is_an_error() {
    let m = cm6();
    let mut bytes = Vec::new();
    m.encode(&mut bytes);
    for cut in 0..bytes.len() {
        // every prefix either decodes (optional trailing groups) or errors, never panics
        let _ = CrushMap::decode(&bytes[..cut]);
    }
    let mut evil = bytes.clone();
    evil[4..8].copy_from_slice(&0x7fff_ffffu32.to_le_bytes()); // max_buckets
    assert!(CrushMap::decode(&evil).is_err());
    let mut seed = 0x1234_5678u32;
    for _ in 0..2000 {
        let mut b = bytes.clone();
        for _ in 0..4 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let i = (seed >> 8) as usize % b.len();
            b[i] = (seed >> 24) as u8;
        }
        if let Ok(mut m) = CrushMap::decode(&b) {
            // Like the C code, the mapper honours absurd try counts; keep the test quick.
            m.tunables.choose_total_tries = m.tunables.choose_total_tries.min(100);
            m.tunables.choose_local_tries = m.tunables.choose_local_tries.min(100);
            m.tunables.choose_local_fallback_tries =
                m.tunables.choose_local_fallback_tries.min(100);
            // ... and absurd replica counts (numrep 19968 on 6 devices runs every rep).
            for step in m
                .rules
                .iter_mut()
                .flatten()
                .flat_map(|r| r.steps.iter_mut())
            {
                step.arg1 = step.arg1.min(100);
            }
            for r in 0..3 {
                let _ = m.do_rule(r, seed, 4, &[W1; 6], Some(-1));
            }
        }
    }
}

#[test]
fn choose_args_weight_sets_and_ids() {
    let mut m = cm6();
    let w = vec![W1; 6];
    let plain: Vec<Vec<i32>> = (0..64).map(|x| m.do_rule(0, x, 3, &w, Some(1))).collect();
    // a default set that zeroes host0 in the root: nothing maps to osd 0 or 1 any more
    let mut args = ChooseArgMap::new();
    args.insert(
        3,
        ChooseArg {
            ids: vec![],
            weight_set: vec![vec![0, 2 * W1, 2 * W1]],
        },
    );
    m.choose_args.insert(DEFAULT_CHOOSE_ARGS, args);
    for x in 0..64 {
        let out = m.do_rule(0, x, 2, &w, Some(1));
        assert!(!out.contains(&0) && !out.contains(&1), "{out:?}");
        // without choose_args the result is unchanged
        assert_eq!(m.do_rule(0, x, 3, &w, None), plain[x as usize]);
    }
    // a pool-specific set wins over the default
    m.choose_args.insert(1, ChooseArgMap::new());
    for x in 0..64 {
        assert_eq!(m.do_rule(0, x, 3, &w, Some(1)), plain[x as usize]);
    }
}

/// ceph's encoder skips a bucket's choose_args that have neither ids nor weights (and
/// decode empties those of non-straw2 buckets), so such entries are dropped at decode: a
/// decoded map survives encode → decode unchanged. Found by the osdmap fuzz target.
#[test]
fn empty_choose_args_do_not_survive_decode() {
    let mut m = cm6();
    let mut args = ChooseArgMap::new();
    args.insert(0, ChooseArg::default());
    args.insert(
        1,
        ChooseArg {
            ids: vec![],
            weight_set: vec![vec![W1, W1]],
        },
    );
    m.choose_args.insert(DEFAULT_CHOOSE_ARGS, args);
    m.choose_args.insert(1, ChooseArgMap::new());
    let mut bytes = Vec::new();
    m.encode(&mut bytes);
    let back = CrushMap::decode(&bytes).unwrap();
    let keys: Vec<u32> = back.choose_args[&DEFAULT_CHOOSE_ARGS]
        .keys()
        .copied()
        .collect();
    assert_eq!(keys, vec![1]);
    assert!(back.choose_args[&1].is_empty());
    let mut again = Vec::new();
    back.encode(&mut again);
    assert_eq!(again, bytes);
    assert_eq!(CrushMap::decode(&again).unwrap(), back);
}
