//! CRUSH: the map that says where data lives, and the mapper that computes it.
//!
//! What this module is: a decoder (and encoder) for the `CrushWrapper` encoding
//! (ceph: `src/crush/CrushWrapper.cc` encode/decode), and an exact port of the mapper
//! (ceph: `src/crush/mapper.c`, kernel: `net/ceph/crush/mapper.c`) as Pacific runs it:
//! all five bucket algorithms, firstn and indep choices, every `set_*` rule step, every
//! tunable, and per-pool `choose_args` weight sets with fallback to the default set.
//!
//! What it is not: no map building or editing beyond what tests need, no shadow-tree
//! (device class) logic — classes are already compiled into shadow buckets, which are
//! ordinary buckets to the mapper.
//!
//! Hostile maps: [`CrushMap::decode`] bounds every count by the bytes present, and the
//! mapper checks every bucket id, item id and index; a map that would make the C code
//! read out of bounds or loop forever yields fewer results (or `CRUSH_ITEM_NONE` holes)
//! here instead of a panic.

#![warn(missing_docs)]

pub mod hash;
mod ln;
mod mapper;

use ceph_encoding::{DecodeError, Decoder, EncodeExt};
use std::collections::BTreeMap;

pub use hash::{
    ceph_stable_mod, ceph_str_hash, ceph_str_hash_linux, ceph_str_hash_rjenkins, crush_hash32_2,
    crush_hash32_3, crush_hash32_4, crush_hash32_5,
};

/// `CRUSH_MAGIC`, the first word of an encoded map.
pub const CRUSH_MAGIC: u32 = 0x0001_0000;
/// A hole in a positional (indep / erasure-coded) result: no device for this slot.
pub const CRUSH_ITEM_NONE: i32 = 0x7fff_ffff;
/// Internal "not decided yet" marker of the indep chooser; never returned.
pub const CRUSH_ITEM_UNDEF: i32 = 0x7fff_fffe;
/// The choose_args index that applies to every pool without its own set.
pub const DEFAULT_CHOOSE_ARGS: i64 = -1;

/// Bucket algorithm (`CRUSH_BUCKET_*`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketAlg(pub u8);

impl BucketAlg {
    /// Permutation choice over equally weighted items.
    pub const UNIFORM: Self = Self(1);
    /// Linked list, cheap to add at the head.
    pub const LIST: Self = Self(2);
    /// Binary tree of weights.
    pub const TREE: Self = Self(3);
    /// Legacy straw (precomputed straw lengths).
    pub const STRAW: Self = Self(4);
    /// straw2: independent exponential draws, the modern default.
    pub const STRAW2: Self = Self(5);

    /// The name `crushtool -d` prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::UNIFORM => "uniform",
            Self::LIST => "list",
            Self::TREE => "tree",
            Self::STRAW => "straw",
            Self::STRAW2 => "straw2",
            _ => "unknown",
        }
    }
}

impl std::fmt::Debug for BucketAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

/// Algorithm-specific bucket data, each vector as long as the bucket's item list
/// (except tree node weights, which have `num_nodes` entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketData {
    /// `crush_bucket_uniform`: one weight for every item.
    Uniform {
        /// Weight of each item (16.16).
        item_weight: u32,
    },
    /// `crush_bucket_list`.
    List {
        /// Weight of each item (16.16).
        item_weights: Vec<u32>,
        /// Running sums of the weights from the tail.
        sum_weights: Vec<u32>,
    },
    /// `crush_bucket_tree`.
    Tree {
        /// Node weights of the implicit binary tree (`num_nodes` entries).
        node_weights: Vec<u32>,
    },
    /// `crush_bucket_straw`.
    Straw {
        /// Weight of each item (16.16).
        item_weights: Vec<u32>,
        /// Precomputed straw lengths.
        straws: Vec<u32>,
    },
    /// `crush_bucket_straw2`.
    Straw2 {
        /// Weight of each item (16.16).
        item_weights: Vec<u32>,
    },
}

/// A bucket: an interior node of the hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrushBucket {
    /// Bucket id (negative); it lives in slot `-1 - id`.
    pub id: i32,
    /// Type id (an index into [`CrushMap::type_names`]).
    pub type_id: u16,
    /// Algorithm.
    pub alg: BucketAlg,
    /// Hash type (0 = rjenkins1).
    pub hash: u8,
    /// Total weight (16.16).
    pub weight: u32,
    /// Child ids: devices (>= 0) and buckets (< 0).
    pub items: Vec<i32>,
    /// Algorithm data.
    pub data: BucketData,
}

impl CrushBucket {
    /// The weight of the item at `pos` as the bucket records it (16.16).
    pub fn item_weight(&self, pos: usize) -> Option<u32> {
        match &self.data {
            BucketData::Uniform { item_weight } => (pos < self.items.len()).then_some(*item_weight),
            BucketData::List { item_weights, .. }
            | BucketData::Straw { item_weights, .. }
            | BucketData::Straw2 { item_weights } => item_weights.get(pos).copied(),
            BucketData::Tree { node_weights } => node_weights.get(2 * pos + 1).copied(),
        }
    }
}

/// A rule step opcode (`CRUSH_RULE_*`); unknown values are kept (and ignored by the
/// mapper, as Pacific does).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleOp(pub u32);

impl RuleOp {
    /// Does nothing.
    pub const NOOP: Self = Self(0);
    /// `take <item>`: start from a bucket (or device).
    pub const TAKE: Self = Self(1);
    /// `choose firstn <n> type <t>`.
    pub const CHOOSE_FIRSTN: Self = Self(2);
    /// `choose indep <n> type <t>`.
    pub const CHOOSE_INDEP: Self = Self(3);
    /// `emit`: append the working set to the result.
    pub const EMIT: Self = Self(4);
    /// `chooseleaf firstn <n> type <t>`.
    pub const CHOOSELEAF_FIRSTN: Self = Self(6);
    /// `chooseleaf indep <n> type <t>`.
    pub const CHOOSELEAF_INDEP: Self = Self(7);
    /// `set_choose_tries <n>`.
    pub const SET_CHOOSE_TRIES: Self = Self(8);
    /// `set_chooseleaf_tries <n>`.
    pub const SET_CHOOSELEAF_TRIES: Self = Self(9);
    /// `set_choose_local_tries <n>`.
    pub const SET_CHOOSE_LOCAL_TRIES: Self = Self(10);
    /// `set_choose_local_fallback_tries <n>`.
    pub const SET_CHOOSE_LOCAL_FALLBACK_TRIES: Self = Self(11);
    /// `set_chooseleaf_vary_r <n>`.
    pub const SET_CHOOSELEAF_VARY_R: Self = Self(12);
    /// `set_chooseleaf_stable <n>`.
    pub const SET_CHOOSELEAF_STABLE: Self = Self(13);

    /// The step name as `crushtool -d` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Self::NOOP => "noop",
            Self::TAKE => "take",
            Self::CHOOSE_FIRSTN => "choose_firstn",
            Self::CHOOSE_INDEP => "choose_indep",
            Self::EMIT => "emit",
            Self::CHOOSELEAF_FIRSTN => "chooseleaf_firstn",
            Self::CHOOSELEAF_INDEP => "chooseleaf_indep",
            Self::SET_CHOOSE_TRIES => "set_choose_tries",
            Self::SET_CHOOSELEAF_TRIES => "set_chooseleaf_tries",
            Self::SET_CHOOSE_LOCAL_TRIES => "set_choose_local_tries",
            Self::SET_CHOOSE_LOCAL_FALLBACK_TRIES => "set_choose_local_fallback_tries",
            Self::SET_CHOOSELEAF_VARY_R => "set_chooseleaf_vary_r",
            Self::SET_CHOOSELEAF_STABLE => "set_chooseleaf_stable",
            _ => "unknown",
        }
    }
}

impl std::fmt::Debug for RuleOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

/// One rule step: opcode and two arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleStep {
    /// Opcode.
    pub op: RuleOp,
    /// First argument (item id, count, or tunable value).
    pub arg1: i32,
    /// Second argument (bucket type for choose steps).
    pub arg2: i32,
}

/// Rule type in the mask (`pg_pool_t` type it serves).
pub mod rule_type {
    /// Replicated pools.
    pub const REPLICATED: u8 = 1;
    /// Erasure-coded pools.
    pub const ERASURE: u8 = 3;
}

/// A rule: its legacy mask and its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrushRule {
    /// Legacy ruleset id (equal to the rule id on every map made since Luminous).
    pub ruleset: u8,
    /// Pool type this rule serves ([`rule_type`]).
    pub rule_type: u8,
    /// Smallest pool size the rule accepts.
    pub min_size: u8,
    /// Largest pool size the rule accepts.
    pub max_size: u8,
    /// The steps.
    pub steps: Vec<RuleStep>,
}

/// Map-wide tunables (see the protocol map §6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunables {
    /// Local retries on collision.
    pub choose_local_tries: u32,
    /// Local retries using a full permutation.
    pub choose_local_fallback_tries: u32,
    /// Total descent attempts (the mapper adds one).
    pub choose_total_tries: u32,
    /// chooseleaf: retry the recursive descent only once.
    pub chooseleaf_descend_once: u32,
    /// chooseleaf: vary r of the inner descent by the outer r (shift = value - 1).
    pub chooseleaf_vary_r: u8,
    /// How straw (v1) lengths were computed; not used by the mapper.
    pub straw_calc_version: u8,
    /// Bitmask of bucket algorithms allowed for new buckets.
    pub allowed_bucket_algs: u32,
    /// chooseleaf firstn: stable results (inner numrep 1, rep from 0).
    pub chooseleaf_stable: u8,
    /// Squid+ MSR tunables `(msr_descents, msr_collision_tries)` if encoded.
    pub msr: Option<(u32, u32)>,
}

impl Tunables {
    /// The legacy (argonaut) values a map without tunables is decoded with.
    pub const LEGACY: Tunables = Tunables {
        choose_local_tries: 2,
        choose_local_fallback_tries: 5,
        choose_total_tries: 19,
        chooseleaf_descend_once: 0,
        chooseleaf_vary_r: 0,
        straw_calc_version: 0,
        allowed_bucket_algs: (1 << 1) | (1 << 2) | (1 << 4),
        chooseleaf_stable: 0,
        msr: None,
    };
}

impl Default for Tunables {
    fn default() -> Self {
        Self::LEGACY
    }
}

/// Per-bucket choose_args: alternative weights (per output position) and ids for
/// straw2 hashing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChooseArg {
    /// Replacement ids used when hashing (empty = use the bucket's items).
    pub ids: Vec<i32>,
    /// Weight sets, one per position (empty = use the bucket's weights).
    pub weight_set: Vec<Vec<u32>>,
}

/// The choose_args of one index: bucket slot (`-1 - bucket_id`) → args.
pub type ChooseArgMap = BTreeMap<u32, ChooseArg>;

/// A decoded CRUSH map (`CrushWrapper`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrushMap {
    /// Bucket slots; `buckets[i]` has id `-1 - i`.
    pub buckets: Vec<Option<CrushBucket>>,
    /// Rule slots; the index is the rule id.
    pub rules: Vec<Option<CrushRule>>,
    /// `max_devices`: device ids are below this.
    pub max_devices: i32,
    /// Type id → name (`0 osd`, `1 host`, …).
    pub type_names: BTreeMap<i32, String>,
    /// Item id → name (buckets and devices).
    pub names: BTreeMap<i32, String>,
    /// Rule id → name.
    pub rule_names: BTreeMap<i32, String>,
    /// Tunables.
    pub tunables: Tunables,
    /// Device → class id.
    pub class_map: BTreeMap<i32, i32>,
    /// Class id → class name.
    pub class_names: BTreeMap<i32, String>,
    /// Bucket → (class id → shadow bucket id).
    pub class_buckets: BTreeMap<i32, BTreeMap<i32, i32>>,
    /// choose_args index (pool id, or -1 for the default) → per-bucket args.
    pub choose_args: BTreeMap<i64, ChooseArgMap>,
}

fn invalid(detail: impl Into<String>) -> DecodeError {
    DecodeError::invalid("CrushWrapper", detail)
}

/// `decode_32_or_64_string_map`: an old encoder bug wrote some keys as 64-bit; a zero
/// string length means the next u32 is the real length.
fn decode_name_map(d: &mut Decoder<'_>) -> Result<BTreeMap<i32, String>, DecodeError> {
    let n = d.count(8, "crush name map")?;
    let mut m = BTreeMap::new();
    for _ in 0..n {
        let key = d.i32()?;
        let mut len = d.u32()?;
        if len == 0 {
            len = d.u32()?;
        }
        let bytes = d.take(len as usize, "crush name")?;
        m.insert(key, String::from_utf8_lossy(bytes).into_owned());
    }
    Ok(m)
}

fn decode_u32s(d: &mut Decoder<'_>, n: usize, what: &'static str) -> Result<Vec<u32>, DecodeError> {
    if n.saturating_mul(4) > d.remaining() {
        return Err(DecodeError::Truncated {
            what,
            needed: n * 4,
            available: d.remaining(),
        });
    }
    (0..n).map(|_| d.u32()).collect()
}

fn decode_bucket(d: &mut Decoder<'_>, slot: usize) -> Result<Option<CrushBucket>, DecodeError> {
    let alg = d.u32()?;
    if alg == 0 {
        return Ok(None);
    }
    if !(1..=5).contains(&alg) {
        return Err(invalid(format!("unsupported bucket algorithm {alg}")));
    }
    let id = d.i32()?;
    let type_id = d.u16()?;
    let alg = BucketAlg(d.u8()?);
    let hash = d.u8()?;
    let weight = d.u32()?;
    let size = d.u32()? as usize;
    // The mapper and the wrapper both assume bucket `i` has id `-1 - i`.
    if id != -1 - slot as i64 as i32 || slot > i32::MAX as usize {
        return Err(invalid(format!("bucket id {id} in slot {slot}")));
    }
    let items: Vec<i32> = decode_u32s(d, size, "crush bucket items")?
        .into_iter()
        .map(|v| v as i32)
        .collect();
    let data = match alg {
        BucketAlg::UNIFORM => BucketData::Uniform {
            item_weight: d.u32()?,
        },
        BucketAlg::LIST => {
            let pairs = decode_u32s(d, size.saturating_mul(2), "crush list bucket")?;
            BucketData::List {
                item_weights: pairs.iter().step_by(2).copied().collect(),
                sum_weights: pairs.iter().skip(1).step_by(2).copied().collect(),
            }
        }
        BucketAlg::TREE => {
            let num_nodes = d.u8()? as usize;
            BucketData::Tree {
                node_weights: decode_u32s(d, num_nodes, "crush tree bucket")?,
            }
        }
        BucketAlg::STRAW => {
            let pairs = decode_u32s(d, size.saturating_mul(2), "crush straw bucket")?;
            BucketData::Straw {
                item_weights: pairs.iter().step_by(2).copied().collect(),
                straws: pairs.iter().skip(1).step_by(2).copied().collect(),
            }
        }
        BucketAlg::STRAW2 => BucketData::Straw2 {
            item_weights: decode_u32s(d, size, "crush straw2 bucket")?,
        },
        other => {
            return Err(invalid(format!(
                "bucket alg byte {} disagrees with header",
                other.0
            )))
        }
    };
    Ok(Some(CrushBucket {
        id,
        type_id,
        alg,
        hash,
        weight,
        items,
        data,
    }))
}

impl CrushMap {
    /// Decode a `CrushWrapper` encoding (the `crush` bufferlist of an OSDMap, or the
    /// output of `ceph osd getcrushmap` / `crushtool -c`).
    ///
    /// Trailing groups (tunables, device classes, choose_args, MSR tunables) are optional
    /// as in `CrushWrapper::decode`; like it, bytes after the last group this decoder
    /// knows are ignored (a newer encoder may append more).
    pub fn decode(bytes: &[u8]) -> Result<CrushMap, DecodeError> {
        Self::decode_from(&mut Decoder::new(bytes))
    }

    /// Decode from a cursor bounded to the map's bytes (trailing groups are detected by
    /// the bytes that remain).
    pub fn decode_from(d: &mut Decoder<'_>) -> Result<CrushMap, DecodeError> {
        let magic = d.u32()?;
        if magic != CRUSH_MAGIC {
            return Err(invalid(format!("bad magic {magic:#x}")));
        }
        let max_buckets = d.i32()?;
        let max_rules = d.u32()?;
        let max_devices = d.i32()?;
        if max_buckets < 0 {
            return Err(invalid(format!("max_buckets {max_buckets}")));
        }
        // Like the OSDMap's max_osd: device ids index per-device vectors; bound them.
        if !(0..=1 << 20).contains(&max_devices) {
            return Err(invalid(format!("max_devices {max_devices}")));
        }
        // Each slot takes at least 4 bytes, so these counts are bounded by the input.
        let nb = max_buckets as usize;
        if nb.saturating_mul(4) > d.remaining() {
            return Err(DecodeError::Truncated {
                what: "crush buckets",
                needed: nb * 4,
                available: d.remaining(),
            });
        }
        let mut buckets = Vec::with_capacity(nb);
        for slot in 0..nb {
            buckets.push(decode_bucket(d, slot)?);
        }
        let nr = max_rules as usize;
        if nr.saturating_mul(4) > d.remaining() {
            return Err(DecodeError::Truncated {
                what: "crush rules",
                needed: nr * 4,
                available: d.remaining(),
            });
        }
        let mut rules = Vec::with_capacity(nr);
        for _ in 0..nr {
            if d.u32()? == 0 {
                rules.push(None);
                continue;
            }
            let len = d.u32()? as usize;
            let ruleset = d.u8()?;
            let rule_type = d.u8()?;
            let min_size = d.u8()?;
            let max_size = d.u8()?;
            if len.saturating_mul(12) > d.remaining() {
                return Err(DecodeError::Truncated {
                    what: "crush rule steps",
                    needed: len * 12,
                    available: d.remaining(),
                });
            }
            let mut steps = Vec::with_capacity(len);
            for _ in 0..len {
                steps.push(RuleStep {
                    op: RuleOp(d.u32()?),
                    arg1: d.i32()?,
                    arg2: d.i32()?,
                });
            }
            rules.push(Some(CrushRule {
                ruleset,
                rule_type,
                min_size,
                max_size,
                steps,
            }));
        }
        let type_names = decode_name_map(d)?;
        let names = decode_name_map(d)?;
        let rule_names = decode_name_map(d)?;

        let mut t = Tunables::LEGACY;
        if !d.is_empty() {
            t.choose_local_tries = d.u32()?;
            t.choose_local_fallback_tries = d.u32()?;
            t.choose_total_tries = d.u32()?;
        }
        if !d.is_empty() {
            t.chooseleaf_descend_once = d.u32()?;
        }
        if !d.is_empty() {
            t.chooseleaf_vary_r = d.u8()?;
        }
        if !d.is_empty() {
            t.straw_calc_version = d.u8()?;
        }
        if !d.is_empty() {
            t.allowed_bucket_algs = d.u32()?;
        }
        if !d.is_empty() {
            t.chooseleaf_stable = d.u8()?;
        }
        let mut class_map = BTreeMap::new();
        let mut class_names = BTreeMap::new();
        let mut class_buckets = BTreeMap::new();
        if !d.is_empty() {
            class_map = d.map::<i32, i32>(8, "crush class_map")?;
            class_names = d.map::<i32, String>(8, "crush class_name")?;
            class_buckets = d.map_with(
                8,
                "crush class_bucket",
                |d| d.i32(),
                |d| d.map::<i32, i32>(8, "crush class_bucket"),
            )?;
        }
        let mut choose_args = BTreeMap::new();
        if !d.is_empty() {
            let n = d.count(12, "crush choose_args")?;
            for _ in 0..n {
                let index = d.i64()?;
                let nargs = d.count(12, "crush choose_arg_map")?;
                let mut args = ChooseArgMap::new();
                for _ in 0..nargs {
                    let slot = d.u32()?;
                    let bucket = buckets
                        .get(slot as usize)
                        .and_then(|b| b.as_ref())
                        .ok_or_else(|| {
                            invalid(format!("choose_args for missing bucket slot {slot}"))
                        })?;
                    let positions = d.count(4, "crush weight_set")?;
                    let mut weight_set = Vec::with_capacity(positions.min(64));
                    for _ in 0..positions {
                        let n = d.count(4, "crush weight_set weights")?;
                        weight_set.push(decode_u32s(d, n, "crush weight_set weights")?);
                    }
                    let ids_size = d.count(4, "crush choose_args ids")?;
                    // ceph asserts this; a hostile map gets an error instead.
                    if ids_size != 0 && ids_size != bucket.items.len() {
                        return Err(invalid(format!(
                            "choose_args ids size {ids_size} for bucket {} of size {}",
                            bucket.id,
                            bucket.items.len()
                        )));
                    }
                    let ids = decode_u32s(d, ids_size, "crush choose_args ids")?
                        .into_iter()
                        .map(|v| v as i32)
                        .collect();
                    args.insert(slot, ChooseArg { ids, weight_set });
                }
                choose_args.insert(index, args);
            }
        }
        if !d.is_empty() {
            t.msr = Some((d.u32()?, d.u32()?));
        }
        let mut map = CrushMap {
            buckets,
            rules,
            max_devices,
            type_names,
            names,
            rule_names,
            tunables: t,
            class_map,
            class_names,
            class_buckets,
            choose_args,
        };
        map.update_choose_args();
        Ok(map)
    }

    /// `CrushWrapper::update_choose_args` as run at the end of decode: drop args of
    /// buckets that are gone or not straw2, resize mis-sized weight sets, drop empty ones.
    fn update_choose_args(&mut self) {
        let buckets = &self.buckets;
        for args in self.choose_args.values_mut() {
            // positions: those of the first bucket that has any, else 1.
            let positions = args
                .values()
                .map(|a| a.weight_set.len())
                .find(|&n| n != 0)
                .unwrap_or(1);
            for (slot, arg) in args.iter_mut() {
                let bucket = match buckets.get(*slot as usize).and_then(|b| b.as_ref()) {
                    Some(b) if b.alg == BucketAlg::STRAW2 => b,
                    _ => {
                        arg.ids.clear();
                        arg.weight_set.clear();
                        continue;
                    }
                };
                if arg.weight_set.is_empty() || arg.weight_set.len() != positions {
                    continue;
                }
                for ws in &mut arg.weight_set {
                    ws.resize(bucket.items.len(), 0);
                }
            }
            // an entry without ids or weights is what ceph's zeroed array slot means, and
            // the encoder skips it: keep none, so a decoded map re-encodes to itself
            args.retain(|_, a| !a.ids.is_empty() || !a.weight_set.is_empty());
        }
    }

    /// Encode as `CrushWrapper::encode` does for a peer with every feature this crate
    /// knows (tunables5, device classes and choose_args; MSR tunables when present).
    /// Rule masks are written as stored.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(CRUSH_MAGIC);
        out.put_i32(self.buckets.len() as i32);
        out.put_u32(self.rules.len() as u32);
        out.put_i32(self.max_devices);
        for b in &self.buckets {
            let Some(b) = b else {
                out.put_u32(0);
                continue;
            };
            out.put_u32(b.alg.0 as u32);
            out.put_i32(b.id);
            out.put_u16(b.type_id);
            out.put_u8(b.alg.0);
            out.put_u8(b.hash);
            out.put_u32(b.weight);
            out.put_u32(b.items.len() as u32);
            for &i in &b.items {
                out.put_i32(i);
            }
            match &b.data {
                BucketData::Uniform { item_weight } => out.put_u32(*item_weight),
                BucketData::List {
                    item_weights,
                    sum_weights,
                } => {
                    for (w, s) in item_weights.iter().zip(sum_weights) {
                        out.put_u32(*w);
                        out.put_u32(*s);
                    }
                }
                BucketData::Tree { node_weights } => {
                    out.put_u8(node_weights.len() as u8);
                    for &w in node_weights {
                        out.put_u32(w);
                    }
                }
                BucketData::Straw {
                    item_weights,
                    straws,
                } => {
                    for (w, s) in item_weights.iter().zip(straws) {
                        out.put_u32(*w);
                        out.put_u32(*s);
                    }
                }
                BucketData::Straw2 { item_weights } => {
                    for &w in item_weights {
                        out.put_u32(w);
                    }
                }
            }
        }
        for r in &self.rules {
            let Some(r) = r else {
                out.put_u32(0);
                continue;
            };
            out.put_u32(1);
            out.put_u32(r.steps.len() as u32);
            out.put_u8(r.ruleset);
            out.put_u8(r.rule_type);
            out.put_u8(r.min_size);
            out.put_u8(r.max_size);
            for s in &r.steps {
                out.put_u32(s.op.0);
                out.put_i32(s.arg1);
                out.put_i32(s.arg2);
            }
        }
        for m in [&self.type_names, &self.names, &self.rule_names] {
            out.put(m);
        }
        let t = &self.tunables;
        out.put_u32(t.choose_local_tries);
        out.put_u32(t.choose_local_fallback_tries);
        out.put_u32(t.choose_total_tries);
        out.put_u32(t.chooseleaf_descend_once);
        out.put_u8(t.chooseleaf_vary_r);
        out.put_u8(t.straw_calc_version);
        out.put_u32(t.allowed_bucket_algs);
        out.put_u8(t.chooseleaf_stable);
        out.put(&self.class_map);
        out.put(&self.class_names);
        out.put(&self.class_buckets);
        out.put_u32(self.choose_args.len() as u32);
        for (index, args) in &self.choose_args {
            out.put_i64(*index);
            let live: Vec<_> = args
                .iter()
                .filter(|(_, a)| !a.weight_set.is_empty() || !a.ids.is_empty())
                .collect();
            out.put_u32(live.len() as u32);
            for (slot, a) in live {
                out.put_u32(*slot);
                out.put_u32(a.weight_set.len() as u32);
                for ws in &a.weight_set {
                    out.put_u32(ws.len() as u32);
                    for &w in ws {
                        out.put_u32(w);
                    }
                }
                out.put_u32(a.ids.len() as u32);
                for &i in &a.ids {
                    out.put_i32(i);
                }
            }
        }
        if let Some((descents, tries)) = t.msr {
            out.put_u32(descents);
            out.put_u32(tries);
        }
    }

    /// `max_buckets`: the number of bucket slots.
    pub fn max_buckets(&self) -> usize {
        self.buckets.len()
    }

    /// `max_rules`: the number of rule slots.
    pub fn max_rules(&self) -> usize {
        self.rules.len()
    }

    /// The bucket with this (negative) id.
    pub fn bucket(&self, id: i32) -> Option<&CrushBucket> {
        if id >= 0 {
            return None;
        }
        let slot = (-1i64 - id as i64) as usize;
        self.buckets.get(slot).and_then(|b| b.as_ref())
    }

    /// The rule with this id.
    pub fn rule(&self, id: i32) -> Option<&CrushRule> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.rules.get(i))
            .and_then(|r| r.as_ref())
    }

    /// A rule id by name.
    pub fn rule_id(&self, name: &str) -> Option<i32> {
        self.rule_names
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(&id, _)| id)
    }

    /// An item (bucket or device) id by name.
    pub fn item_id(&self, name: &str) -> Option<i32> {
        self.names
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(&id, _)| id)
    }

    /// True when every rule's legacy ruleset equals its id (`!has_legacy_rule_ids()`).
    pub fn has_uniform_rules(&self) -> bool {
        self.rules.iter().enumerate().all(|(i, r)| match r {
            Some(r) => r.ruleset as usize == i,
            None => true,
        })
    }

    /// `CrushWrapper::find_rule(ruleset, type, size)` as Pacific does it: on a map whose
    /// rules all have `ruleset == id` the rule with id `ruleset` is taken directly, and
    /// otherwise (or if that misses) `crush_find_rule` searches for the first rule whose
    /// mask matches ruleset, type and `min_size <= size <= max_size`. Either way the mask
    /// must match: a pool whose size is outside its rule's range maps to nothing
    /// (verified with osdmaptool 16.2.15). Returns -1 when nothing matches.
    pub fn find_rule(&self, ruleset: i32, rule_type: i32, size: i32) -> i32 {
        let matches = |r: &CrushRule, ruleset: i32| {
            r.ruleset as i32 == ruleset
                && r.rule_type as i32 == rule_type
                && r.min_size as i32 <= size
                && r.max_size as i32 >= size
        };
        if self.has_uniform_rules() {
            if let Some(r) = self.rule(ruleset) {
                if r.rule_type as i32 == rule_type
                    && r.min_size as i32 <= size
                    && r.max_size as i32 >= size
                {
                    return ruleset;
                }
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            if let Some(r) = r {
                if matches(r, ruleset) {
                    return i as i32;
                }
            }
        }
        -1
    }

    /// `choose_args_get_with_fallback(index)`: the pool's set, else the default (-1).
    pub fn choose_args_with_fallback(&self, index: i64) -> Option<&ChooseArgMap> {
        self.choose_args
            .get(&index)
            .or_else(|| self.choose_args.get(&DEFAULT_CHOOSE_ARGS))
    }

    /// True if `item` appears in some bucket (`check_item_present`).
    pub fn item_present(&self, item: i32) -> bool {
        self.buckets
            .iter()
            .flatten()
            .any(|b| b.items.contains(&item))
    }

    /// Run rule `rule_id` for input `x` (`CrushWrapper::do_rule` →
    /// `crush_do_rule`): at most `result_max` items. `weights` are the per-device 16.16
    /// reweights (the OSDMap's `osd_weight`; devices past its end count as out).
    /// `choose_args_index` selects a choose_args set (with fallback to the default set);
    /// `None` uses no choose_args at all.
    ///
    /// Results of indep rules keep their positions, with [`CRUSH_ITEM_NONE`] holes.
    /// A missing rule, or anything the map makes impossible, gives fewer items, never a
    /// panic.
    pub fn do_rule(
        &self,
        rule_id: i32,
        x: u32,
        result_max: usize,
        weights: &[u32],
        choose_args_index: Option<i64>,
    ) -> Vec<i32> {
        let args = choose_args_index.and_then(|i| self.choose_args_with_fallback(i));
        mapper::do_rule(self, rule_id, x, result_max, weights, args)
    }

    /// The weight vector `crushtool --test` uses: 0x10000 for every device present in a
    /// bucket, 0 for the others, for ids `0..max_devices`; `overrides` replaces entries
    /// (like `--weight <dev> <w>`, already in 16.16).
    pub fn crushtool_weights(&self, overrides: &[(i32, u32)]) -> Vec<u32> {
        let present: std::collections::BTreeSet<i32> = self
            .buckets
            .iter()
            .flatten()
            .flat_map(|b| b.items.iter().copied())
            .filter(|&i| i >= 0)
            .collect();
        let n = self.max_devices.max(0) as usize;
        let mut w: Vec<u32> = (0..n)
            .map(|i| {
                if present.contains(&(i as i32)) {
                    0x10000
                } else {
                    0
                }
            })
            .collect();
        for &(dev, v) in overrides {
            if let Some(slot) = usize::try_from(dev).ok().and_then(|d| w.get_mut(d)) {
                *slot = v;
            }
        }
        w
    }
}

/// The lines `crushtool -i MAP --test --show-mappings --rule R --num-rep N --min-x A
/// --max-x B` prints, e.g. `CRUSH rule 0 x 0 [0,3,5]` (holes print as `2147483647`).
///
/// `weights` is the device weight vector (see [`CrushMap::crushtool_weights`]). Like
/// crushtool, nothing is printed for a rule that does not exist or when every weight is
/// zero; x is used as is, and the choose_args set of index 0 applies (CrushTester passes
/// index 0, which falls back to the default set -1).
pub fn crushtool_test_lines(
    map: &CrushMap,
    rule: i32,
    num_rep: usize,
    min_x: u32,
    max_x: u32,
    weights: &[u32],
) -> Vec<String> {
    test_lines(map, rule, num_rep, min_x, max_x, weights, None)
}

/// Like [`crushtool_test_lines`] for `crushtool --test --pool-id P`: each x is first
/// hashed with the pool id (`crush_hash32_2(x, P)`, as a PG's pps is). The choose_args
/// set is still that of index 0 (crushtool does not select the pool's set), and the lines
/// show the unhashed x, as crushtool does.
pub fn crushtool_test_lines_for_pool(
    map: &CrushMap,
    rule: i32,
    num_rep: usize,
    min_x: u32,
    max_x: u32,
    weights: &[u32],
    pool_id: i64,
) -> Vec<String> {
    test_lines(map, rule, num_rep, min_x, max_x, weights, Some(pool_id))
}

fn test_lines(
    map: &CrushMap,
    rule: i32,
    num_rep: usize,
    min_x: u32,
    max_x: u32,
    weights: &[u32],
    pool_id: Option<i64>,
) -> Vec<String> {
    let mut lines = Vec::new();
    if map.rule(rule).is_none() || min_x > max_x {
        return lines;
    }
    // CrushTester sums the weights of devices 0..max_devices into an int and skips the
    // rule if the total is 0.
    let total = weights
        .iter()
        .take(map.max_devices.max(0) as usize)
        .fold(0i32, |a, &w| a.wrapping_add(w as i32));
    if total == 0 {
        return lines;
    }
    for x in min_x..=max_x {
        let real_x = match pool_id {
            Some(p) => crush_hash32_2(x, p as u32),
            None => x,
        };
        let out = map.do_rule(rule, real_x, num_rep, weights, Some(0));
        let items: Vec<String> = out.iter().map(|i| i.to_string()).collect();
        lines.push(format!("CRUSH rule {rule} x {x} [{}]", items.join(",")));
    }
    lines
}

#[cfg(test)]
pub(crate) mod tests;
