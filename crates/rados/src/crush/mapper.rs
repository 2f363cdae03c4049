//! Port of `crush_do_rule` and its helpers (ceph: `src/crush/mapper.c`, identical to the
//! kernel's `net/ceph/crush/mapper.c` for everything Pacific runs).
//!
//! The structure follows the C code closely on purpose: variable names, loop shapes and
//! integer widths match, so the two can be compared line by line. Where the C code
//! trusts the map (bucket ids, array lengths, acyclic hierarchy), this port checks and
//! treats a violation like the "bad item" paths of the C code.

use super::hash::{crush_hash32_2, hash32_3, hash32_4};
use super::ln::crush_ln;
use super::{
    BucketAlg, BucketData, ChooseArg, ChooseArgMap, CrushBucket, CrushMap, RuleOp, CRUSH_ITEM_NONE,
    CRUSH_ITEM_UNDEF,
};
use std::collections::HashMap;

/// Per-call scratch state: the lazily built permutations of uniform buckets
/// (`crush_work_bucket`), keyed by bucket slot. C allocates one per bucket per call and
/// starts each with `perm_x = 0, perm_n = 0`.
#[derive(Default)]
struct Work {
    perms: HashMap<usize, Perm>,
}

struct Perm {
    perm_x: u32,
    perm_n: u32,
    perm: Vec<u32>,
}

/// A bucket choice that the map made impossible (a hostile or corrupt map).
struct Bad;

fn slot_of(id: i32) -> usize {
    (-1i64 - id as i64) as usize
}

impl CrushMap {
    fn bucket_at(&self, slot: usize) -> Option<&CrushBucket> {
        self.buckets.get(slot).and_then(|b| b.as_ref())
    }

    /// The type of item `item`: 0 for devices, the bucket's type otherwise (`None` if the
    /// bucket does not exist — the C code would read a NULL pointer).
    fn item_type(&self, item: i32) -> Option<i32> {
        if item >= 0 {
            Some(0)
        } else {
            self.bucket_at(slot_of(item)).map(|b| b.type_id as i32)
        }
    }

    /// An upper bound on the length of any descent through an acyclic hierarchy.
    fn descent_limit(&self) -> usize {
        self.buckets.len() + 1
    }
}

fn bucket_perm_choose(bucket: &CrushBucket, work: &mut Work, x: u32, r: i32) -> i32 {
    let size = bucket.items.len() as u32;
    let pr = (r as u32) % size;
    let slot = slot_of(bucket.id);
    let w = work.perms.entry(slot).or_insert_with(|| Perm {
        perm_x: 0,
        perm_n: 0,
        perm: vec![0; size as usize],
    });
    let s: u32;
    // start a new permutation if x has changed
    if w.perm_x != x || w.perm_n == 0 {
        w.perm_x = x;
        // optimize the common r = 0 case
        if pr == 0 {
            s = hash32_3(bucket.hash, x, bucket.id as u32, 0) % size;
            w.perm[0] = s;
            w.perm_n = 0xffff; // magic value, see below
            return bucket.items[s as usize];
        }
        for (i, p) in w.perm.iter_mut().enumerate() {
            *p = i as u32;
        }
        w.perm_n = 0;
    } else if w.perm_n == 0xffff {
        // clean up after the r = 0 case above
        for i in 1..size as usize {
            w.perm[i] = i as u32;
        }
        let p0 = w.perm[0] as usize;
        w.perm[p0] = 0;
        w.perm_n = 1;
    }
    // calculate permutation up to pr
    while w.perm_n <= pr {
        let p = w.perm_n;
        // no point in swapping the final entry
        if p < size - 1 {
            let i = hash32_3(bucket.hash, x, bucket.id as u32, p) % (size - p);
            if i != 0 {
                w.perm.swap((p + i) as usize, p as usize);
            }
        }
        w.perm_n += 1;
    }
    s = w.perm[pr as usize];
    bucket.items[s as usize]
}

fn bucket_list_choose(
    bucket: &CrushBucket,
    item_weights: &[u32],
    sum_weights: &[u32],
    x: u32,
    r: i32,
) -> Result<i32, Bad> {
    for i in (0..bucket.items.len()).rev() {
        let (Some(&iw), Some(&sw)) = (item_weights.get(i), sum_weights.get(i)) else {
            return Err(Bad);
        };
        let mut w = hash32_4(
            bucket.hash,
            x,
            bucket.items[i] as u32,
            r as u32,
            bucket.id as u32,
        ) as u64;
        w &= 0xffff;
        w *= sw as u64;
        w >>= 16;
        if w < iw as u64 {
            return Ok(bucket.items[i]);
        }
    }
    Ok(bucket.items[0])
}

fn tree_height(mut n: u32) -> u32 {
    // n is even and non-zero here, so this terminates.
    let mut h = 0;
    while n & 1 == 0 {
        h += 1;
        n >>= 1;
    }
    h
}

fn bucket_tree_choose(
    bucket: &CrushBucket,
    node_weights: &[u32],
    x: u32,
    r: i32,
) -> Result<i32, Bad> {
    // start at root
    let mut n = (node_weights.len() as u32) >> 1;
    while n & 1 == 0 {
        if n == 0 {
            return Err(Bad);
        }
        // pick point in [0, w)
        let w = *node_weights.get(n as usize).ok_or(Bad)?;
        let t = (hash32_4(bucket.hash, x, n, r as u32, bucket.id as u32) as u64 * w as u64) >> 32;
        // descend to the left or right?
        let h = tree_height(n);
        let l = n - (1 << (h - 1));
        if t < *node_weights.get(l as usize).ok_or(Bad)? as u64 {
            n = l;
        } else {
            n += 1 << (h - 1);
        }
    }
    bucket.items.get((n >> 1) as usize).copied().ok_or(Bad)
}

fn bucket_straw_choose(bucket: &CrushBucket, straws: &[u32], x: u32, r: i32) -> Result<i32, Bad> {
    let mut high = 0;
    let mut high_draw: u64 = 0;
    for (i, &item) in bucket.items.iter().enumerate() {
        let straw = *straws.get(i).ok_or(Bad)?;
        let mut draw = hash32_3(bucket.hash, x, item as u32, r as u32) as u64;
        draw &= 0xffff;
        draw *= straw as u64;
        if i == 0 || draw > high_draw {
            high = i;
            high_draw = draw;
        }
    }
    Ok(bucket.items[high])
}

fn bucket_straw2_choose(
    bucket: &CrushBucket,
    item_weights: &[u32],
    x: u32,
    r: i32,
    arg: Option<&ChooseArg>,
    position: usize,
) -> Result<i32, Bad> {
    let size = bucket.items.len();
    // get_choose_arg_weights: the weight set for this position (clamped to the last one)
    let mut weights = item_weights;
    if let Some(arg) = arg {
        if !arg.weight_set.is_empty() {
            let pos = position.min(arg.weight_set.len() - 1);
            let ws = &arg.weight_set[pos];
            // decode resized weight sets of matching position counts; a set that is
            // still mis-sized would make C read out of bounds, so use the bucket's own.
            if ws.len() >= size {
                weights = ws;
            }
        }
    }
    // get_choose_arg_ids
    let ids: &[i32] = match arg {
        Some(a) if a.ids.len() >= size => &a.ids,
        _ => &bucket.items,
    };
    if weights.len() < size {
        return Err(Bad);
    }
    let mut high = 0;
    let mut high_draw: i64 = 0;
    for i in 0..size {
        let draw = if weights[i] != 0 {
            let u = hash32_3(bucket.hash, x, ids[i] as u32, r as u32) & 0xffff;
            // the natural log lookup table maps [0,0xffff] to [0, 0xffffffffffff]
            // (corresponding to real numbers [-11.090355, 0]); a larger weight gives a
            // larger (less negative) draw.
            let ln = crush_ln(u) as i64 - 0x1_0000_0000_0000;
            ln / weights[i] as i64
        } else {
            i64::MIN
        };
        if i == 0 || draw > high_draw {
            high = i;
            high_draw = draw;
        }
    }
    Ok(bucket.items[high])
}

fn crush_bucket_choose(
    bucket: &CrushBucket,
    work: &mut Work,
    x: u32,
    r: i32,
    arg: Option<&ChooseArg>,
    position: usize,
) -> Result<i32, Bad> {
    // callers have checked size != 0
    match (&bucket.data, bucket.alg) {
        (BucketData::Uniform { .. }, BucketAlg::UNIFORM) => {
            Ok(bucket_perm_choose(bucket, work, x, r))
        }
        (
            BucketData::List {
                item_weights,
                sum_weights,
            },
            BucketAlg::LIST,
        ) => bucket_list_choose(bucket, item_weights, sum_weights, x, r),
        (BucketData::Tree { node_weights }, BucketAlg::TREE) => {
            bucket_tree_choose(bucket, node_weights, x, r)
        }
        (BucketData::Straw { straws, .. }, BucketAlg::STRAW) => {
            bucket_straw_choose(bucket, straws, x, r)
        }
        (BucketData::Straw2 { item_weights }, BucketAlg::STRAW2) => {
            bucket_straw2_choose(bucket, item_weights, x, r, arg, position)
        }
        // unknown bucket alg: C returns items[0]
        _ => Ok(bucket.items[0]),
    }
}

/// `is_out`: probabilistic reweighting of devices.
fn is_out(weight: &[u32], item: i32, x: u32) -> bool {
    let Some(&w) = usize::try_from(item).ok().and_then(|i| weight.get(i)) else {
        return true;
    };
    if w >= 0x10000 {
        return false;
    }
    if w == 0 {
        return true;
    }
    (crush_hash32_2(x, item as u32) & 0xffff) >= w
}

/// The parameters that stay fixed through one choose step (and its recursion).
struct Ctx<'a> {
    map: &'a CrushMap,
    weight: &'a [u32],
    x: u32,
    choose_args: Option<&'a ChooseArgMap>,
}

impl Ctx<'_> {
    fn arg_for(&self, bucket: &CrushBucket) -> Option<&ChooseArg> {
        self.choose_args
            .and_then(|a| a.get(&(slot_of(bucket.id) as u32)))
    }
}

/// Bounds on the work a (possibly hostile) map can ask for. Real maps use tries of 50 to a
/// few hundred and replica counts below 20; ceph's mapper.c has no bound at all, so a
/// forged map could keep a caller busy for minutes (found by fuzzing). These caps change
/// no mapping of any sane map.
const MAX_TRIES: u32 = 10_000;
const MAX_NUMREP: i32 = 1024;

/// `crush_choose_firstn`: choose `numrep` distinct items of `type_`, depth first.
#[allow(clippy::too_many_arguments)]
fn choose_firstn(
    ctx: &Ctx<'_>,
    work: &mut Work,
    bucket: &CrushBucket,
    numrep: i32,
    type_: i32,
    out: &mut [i32],
    mut outpos: i32,
    out_size: i32,
    tries: u32,
    recurse_tries: u32,
    local_retries: u32,
    local_fallback_retries: u32,
    recurse_to_leaf: bool,
    vary_r: u32,
    stable: u32,
    mut out2: Option<&mut [i32]>,
    parent_r: i32,
) -> i32 {
    let map = ctx.map;
    let mut count = out_size;
    let mut item: i32 = 0;
    let mut rep: i32 = if stable != 0 { 0 } else { outpos };
    while rep < numrep && count > 0 {
        // keep trying until we get a non-out, non-colliding item
        let mut ftotal: u32 = 0;
        let mut skip_rep = false;
        loop {
            let mut retry_descent = false;
            let mut in_b = bucket; // initial bucket
                                   // choose through intervening buckets
            let mut flocal: u32 = 0;
            let mut depth = 0usize;
            'bucket: loop {
                let mut retry_bucket = false;
                let r = rep.wrapping_add(parent_r).wrapping_add(ftotal as i32); // r' = r + f_total
                let mut collide = false;
                let reject;
                'choose: {
                    // bucket choose
                    if in_b.items.is_empty() {
                        reject = true;
                        break 'choose;
                    }
                    let size = in_b.items.len() as u32;
                    let chosen = if local_fallback_retries > 0
                        && flocal >= (size >> 1)
                        && flocal > local_fallback_retries
                    {
                        Ok(bucket_perm_choose(in_b, work, ctx.x, r))
                    } else {
                        crush_bucket_choose(
                            in_b,
                            work,
                            ctx.x,
                            r,
                            ctx.arg_for(in_b),
                            outpos.max(0) as usize,
                        )
                    };
                    item = match chosen {
                        Ok(i) if i < map.max_devices => i,
                        // bad item
                        _ => {
                            skip_rep = true;
                            break 'bucket;
                        }
                    };
                    // desired type?
                    let Some(itemtype) = map.item_type(item) else {
                        skip_rep = true;
                        break 'bucket;
                    };
                    // keep going?
                    if itemtype != type_ {
                        depth += 1;
                        let next = if item < 0 {
                            map.bucket_at(slot_of(item))
                        } else {
                            None
                        };
                        match next {
                            // (a descent longer than the bucket count means a cycle; C
                            // would spin forever)
                            Some(b) if depth <= map.descent_limit() => in_b = b,
                            _ => {
                                // bad item type
                                skip_rep = true;
                                break 'bucket;
                            }
                        }
                        continue 'bucket;
                    }
                    // collision?
                    let placed = out.get(..outpos.max(0) as usize).unwrap_or(&out[..]);
                    collide = placed.contains(&item);
                    let mut rej = false;
                    if !collide && recurse_to_leaf {
                        if item < 0 {
                            let sub_r = if vary_r != 0 {
                                r >> (vary_r - 1).min(31)
                            } else {
                                0
                            };
                            let got = match (map.bucket_at(slot_of(item)), out2.as_deref_mut()) {
                                (Some(b), Some(o2)) => choose_firstn(
                                    ctx,
                                    work,
                                    b,
                                    if stable != 0 { 1 } else { outpos + 1 },
                                    0,
                                    o2,
                                    outpos,
                                    count,
                                    recurse_tries,
                                    0,
                                    local_retries,
                                    local_fallback_retries,
                                    false,
                                    vary_r,
                                    stable,
                                    None,
                                    sub_r,
                                ),
                                _ => outpos,
                            };
                            if got <= outpos {
                                // didn't get leaf
                                rej = true;
                            }
                        } else if let Some(o2) = out2.as_deref_mut() {
                            // we already have a leaf!
                            if let Some(slot) = o2.get_mut(outpos.max(0) as usize) {
                                *slot = item;
                            }
                        }
                    }
                    if !rej && !collide && itemtype == 0 {
                        // out?
                        rej = is_out(ctx.weight, item, ctx.x);
                    }
                    reject = rej;
                }
                if reject || collide {
                    ftotal = ftotal.wrapping_add(1);
                    flocal = flocal.wrapping_add(1);
                    if collide && flocal <= local_retries {
                        // retry locally a few times
                        retry_bucket = true;
                    } else if local_fallback_retries > 0
                        && flocal <= (in_b.items.len() as u32).wrapping_add(local_fallback_retries)
                    {
                        // exhaustive bucket search
                        retry_bucket = true;
                    } else if ftotal < tries {
                        // then retry descent
                        retry_descent = true;
                    } else {
                        // else give up
                        skip_rep = true;
                    }
                }
                if !retry_bucket {
                    break;
                }
            }
            if !retry_descent || skip_rep {
                break;
            }
        }
        if !skip_rep {
            match out.get_mut(outpos as usize) {
                Some(slot) => *slot = item,
                None => break,
            }
            outpos += 1;
            count -= 1;
        }
        rep += 1;
    }
    outpos
}

/// `crush_choose_indep`: breadth-first, positionally stable choice (erasure coding).
#[allow(clippy::too_many_arguments)]
fn choose_indep(
    ctx: &Ctx<'_>,
    work: &mut Work,
    bucket: &CrushBucket,
    mut left: i32,
    numrep: i32,
    type_: i32,
    out: &mut [i32],
    outpos: i32,
    tries: u32,
    recurse_tries: u32,
    recurse_to_leaf: bool,
    mut out2: Option<&mut [i32]>,
    parent_r: i32,
) {
    let map = ctx.map;
    let endpos = outpos.saturating_add(left).min(out.len() as i32);
    let outpos_u = outpos.max(0) as usize;
    let range = outpos_u..(endpos.max(outpos)) as usize;
    if let Some(o2) = out2.as_deref() {
        if o2.len() < range.end {
            return;
        }
    }
    // initially my result is undefined
    for rep in range.clone() {
        out[rep] = CRUSH_ITEM_UNDEF;
        if let Some(o2) = out2.as_deref_mut() {
            o2[rep] = CRUSH_ITEM_UNDEF;
        }
    }
    let mut ftotal: u32 = 0;
    while left > 0 && ftotal < tries {
        for rep in range.clone() {
            if out[rep] != CRUSH_ITEM_UNDEF {
                continue;
            }
            let mut in_b = bucket; // initial bucket
            let mut depth = 0usize;
            // choose through intervening buckets
            loop {
                // note: we base the choice on the position even in the nested call.
                let mut r = (rep as i32).wrapping_add(parent_r);
                // be careful
                let size = in_b.items.len() as u32;
                if in_b.alg == BucketAlg::UNIFORM && size.checked_rem(numrep as u32) == Some(0) {
                    // r' = r + (n+1) * f_total
                    r = r.wrapping_add((numrep.wrapping_add(1) as u32).wrapping_mul(ftotal) as i32);
                } else {
                    // r' = r + n * f_total
                    r = r.wrapping_add((numrep as u32).wrapping_mul(ftotal) as i32);
                }
                // bucket choose
                if in_b.items.is_empty() {
                    break;
                }
                let chosen = crush_bucket_choose(in_b, work, ctx.x, r, ctx.arg_for(in_b), outpos_u);
                let item = match chosen {
                    Ok(i) if i < map.max_devices => i,
                    _ => {
                        // bad item
                        out[rep] = CRUSH_ITEM_NONE;
                        if let Some(o2) = out2.as_deref_mut() {
                            o2[rep] = CRUSH_ITEM_NONE;
                        }
                        left -= 1;
                        break;
                    }
                };
                // desired type?
                let itemtype = map.item_type(item);
                // keep going?
                if itemtype != Some(type_) {
                    depth += 1;
                    let next = if item < 0 {
                        map.bucket_at(slot_of(item))
                    } else {
                        None
                    };
                    match next {
                        // (a descent longer than the bucket count means a cycle)
                        Some(b) if depth <= map.descent_limit() => {
                            in_b = b;
                            continue;
                        }
                        _ => {
                            // bad item type
                            out[rep] = CRUSH_ITEM_NONE;
                            if let Some(o2) = out2.as_deref_mut() {
                                o2[rep] = CRUSH_ITEM_NONE;
                            }
                            left -= 1;
                            break;
                        }
                    }
                }
                // collision?
                if out[range.clone()].contains(&item) {
                    break;
                }
                if recurse_to_leaf {
                    if let Some(o2) = out2.as_deref_mut() {
                        if item < 0 {
                            if let Some(b) = map.bucket_at(slot_of(item)) {
                                choose_indep(
                                    ctx,
                                    work,
                                    b,
                                    1,
                                    numrep,
                                    0,
                                    o2,
                                    rep as i32,
                                    recurse_tries,
                                    0,
                                    false,
                                    None,
                                    r,
                                );
                            } else {
                                o2[rep] = CRUSH_ITEM_NONE;
                            }
                            if o2[rep] == CRUSH_ITEM_NONE {
                                // placed nothing; no leaf
                                break;
                            }
                        } else {
                            // we already have a leaf!
                            o2[rep] = item;
                        }
                    }
                }
                // out?
                if itemtype == Some(0) && is_out(ctx.weight, item, ctx.x) {
                    break;
                }
                // yay!
                out[rep] = item;
                left -= 1;
                break;
            }
        }
        ftotal += 1;
    }
    for rep in range {
        if out[rep] == CRUSH_ITEM_UNDEF {
            out[rep] = CRUSH_ITEM_NONE;
        }
        if let Some(o2) = out2.as_deref_mut() {
            if o2[rep] == CRUSH_ITEM_UNDEF {
                o2[rep] = CRUSH_ITEM_NONE;
            }
        }
    }
}

/// `crush_do_rule`.
pub(super) fn do_rule(
    map: &CrushMap,
    ruleno: i32,
    x: u32,
    result_max: usize,
    weight: &[u32],
    choose_args: Option<&ChooseArgMap>,
) -> Vec<i32> {
    let Some(rule) = map.rule(ruleno) else {
        return Vec::new();
    };
    // Everything below is sized by result_max; keep it to what an int can index.
    let result_max = result_max.min(i32::MAX as usize / 4);
    let result_max_i = result_max as i32;
    let ctx = Ctx {
        map,
        weight,
        x,
        choose_args,
    };
    let mut work = Work::default();
    let mut result: Vec<i32> = Vec::with_capacity(result_max);
    let mut w: Vec<i32> = vec![0; result_max];
    let mut o: Vec<i32> = vec![0; result_max];
    let mut c: Vec<i32> = vec![0; result_max];
    let mut wsize: usize = 0;

    let t = &map.tunables;
    // the original choose_total_tries value was off by one (it counted "retries" and
    // not "tries"); add one.
    let mut choose_tries: u32 = t.choose_total_tries.wrapping_add(1).min(MAX_TRIES);
    let mut choose_leaf_tries: u32 = 0;
    // the local tries values were counted as "retries", though, and need no adjustment
    let mut choose_local_retries: u32 = t.choose_local_tries.min(MAX_TRIES);
    let mut choose_local_fallback_retries: u32 = t.choose_local_fallback_tries.min(MAX_TRIES);
    let mut vary_r: u32 = t.chooseleaf_vary_r as u32;
    let mut stable: u32 = t.chooseleaf_stable as u32;

    for step in &rule.steps {
        let mut firstn = false;
        match step.op {
            RuleOp::TAKE => {
                let a = step.arg1;
                if (a >= 0 && a < map.max_devices) || (a < 0 && map.bucket(a).is_some()) {
                    if let Some(first) = w.first_mut() {
                        *first = a;
                        wsize = 1;
                    }
                }
            }
            RuleOp::SET_CHOOSE_TRIES if step.arg1 > 0 => {
                choose_tries = (step.arg1 as u32).min(MAX_TRIES);
            }
            RuleOp::SET_CHOOSELEAF_TRIES if step.arg1 > 0 => {
                choose_leaf_tries = (step.arg1 as u32).min(MAX_TRIES);
            }
            RuleOp::SET_CHOOSE_LOCAL_TRIES if step.arg1 >= 0 => {
                choose_local_retries = (step.arg1 as u32).min(MAX_TRIES);
            }
            RuleOp::SET_CHOOSE_LOCAL_FALLBACK_TRIES if step.arg1 >= 0 => {
                choose_local_fallback_retries = (step.arg1 as u32).min(MAX_TRIES);
            }
            RuleOp::SET_CHOOSELEAF_VARY_R if step.arg1 >= 0 => {
                vary_r = step.arg1 as u32;
            }
            RuleOp::SET_CHOOSELEAF_STABLE if step.arg1 >= 0 => {
                stable = step.arg1 as u32;
            }
            RuleOp::CHOOSELEAF_FIRSTN
            | RuleOp::CHOOSE_FIRSTN
            | RuleOp::CHOOSELEAF_INDEP
            | RuleOp::CHOOSE_INDEP => {
                if matches!(step.op, RuleOp::CHOOSELEAF_FIRSTN | RuleOp::CHOOSE_FIRSTN) {
                    firstn = true;
                }
                if wsize == 0 {
                    continue;
                }
                let recurse_to_leaf = matches!(
                    step.op,
                    RuleOp::CHOOSELEAF_FIRSTN | RuleOp::CHOOSELEAF_INDEP
                );
                // reset output
                let mut osize: usize = 0;
                for &wi in &w[..wsize] {
                    let mut numrep = step.arg1.min(MAX_NUMREP);
                    if numrep <= 0 {
                        numrep = numrep.wrapping_add(result_max_i);
                        if numrep <= 0 {
                            continue;
                        }
                    }
                    // make sure bucket id is valid (w[i] is probably CRUSH_ITEM_NONE)
                    if wi >= 0 {
                        continue;
                    }
                    let Some(bucket) = map.bucket_at(slot_of(wi)) else {
                        continue;
                    };
                    let room = (result_max - osize) as i32;
                    if firstn {
                        let recurse_tries = if choose_leaf_tries != 0 {
                            choose_leaf_tries
                        } else if t.chooseleaf_descend_once != 0 {
                            1
                        } else {
                            choose_tries
                        };
                        let got = choose_firstn(
                            &ctx,
                            &mut work,
                            bucket,
                            numrep,
                            step.arg2,
                            &mut o[osize..],
                            0,
                            room,
                            choose_tries,
                            recurse_tries,
                            choose_local_retries,
                            choose_local_fallback_retries,
                            recurse_to_leaf,
                            vary_r,
                            stable,
                            Some(&mut c[osize..]),
                            0,
                        );
                        osize += got.max(0) as usize;
                    } else {
                        let out_size = numrep.min(room);
                        choose_indep(
                            &ctx,
                            &mut work,
                            bucket,
                            out_size,
                            numrep,
                            step.arg2,
                            &mut o[osize..],
                            0,
                            choose_tries,
                            if choose_leaf_tries != 0 {
                                choose_leaf_tries
                            } else {
                                1
                            },
                            recurse_to_leaf,
                            Some(&mut c[osize..]),
                            0,
                        );
                        osize += out_size.max(0) as usize;
                    }
                }
                if recurse_to_leaf {
                    // copy final _leaf_ values to output set
                    o[..osize].copy_from_slice(&c[..osize]);
                }
                // swap o and w arrays
                std::mem::swap(&mut o, &mut w);
                wsize = osize;
            }
            RuleOp::EMIT => {
                for &item in &w[..wsize] {
                    if result.len() >= result_max {
                        break;
                    }
                    result.push(item);
                }
                wsize = 0;
            }
            _ => {
                // unknown op: ignored
            }
        }
    }
    result
}
