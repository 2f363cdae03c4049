//! Image feature bits, operation features and flags, with the names `rbd` prints
//! (ceph: src/include/rbd/features.h, src/librbd/Features.cc).

#![allow(missing_docs)]

pub const LAYERING: u64 = 1 << 0;
pub const STRIPINGV2: u64 = 1 << 1;
pub const EXCLUSIVE_LOCK: u64 = 1 << 2;
pub const OBJECT_MAP: u64 = 1 << 3;
pub const FAST_DIFF: u64 = 1 << 4;
pub const DEEP_FLATTEN: u64 = 1 << 5;
pub const JOURNALING: u64 = 1 << 6;
pub const DATA_POOL: u64 = 1 << 7;
pub const OPERATIONS: u64 = 1 << 8;
pub const MIGRATING: u64 = 1 << 9;
pub const NON_PRIMARY: u64 = 1 << 10;
pub const DIRTY_CACHE: u64 = 1 << 11;

/// Every feature librbd 16.2 knows.
pub const ALL: u64 = LAYERING
    | STRIPINGV2
    | EXCLUSIVE_LOCK
    | OBJECT_MAP
    | FAST_DIFF
    | DEEP_FLATTEN
    | JOURNALING
    | DATA_POOL
    | OPERATIONS
    | MIGRATING
    | NON_PRIMARY
    | DIRTY_CACHE;

/// Features that make an image unreadable by clients that don't understand them.
pub const INCOMPATIBLE: u64 = LAYERING | STRIPINGV2 | DATA_POOL | DIRTY_CACHE;
/// Features that make an image unwritable by clients that don't understand them.
pub const RW_INCOMPATIBLE: u64 = INCOMPATIBLE
    | EXCLUSIVE_LOCK
    | OBJECT_MAP
    | FAST_DIFF
    | DEEP_FLATTEN
    | JOURNALING
    | OPERATIONS
    | MIGRATING
    | NON_PRIMARY;
/// Features set implicitly by librbd (never requested by users).
pub const IMPLICIT_ENABLE: u64 =
    STRIPINGV2 | DATA_POOL | FAST_DIFF | OPERATIONS | MIGRATING | NON_PRIMARY | DIRTY_CACHE;

/// Features this client implements for reading (of the incompatible set).
pub const SUPPORTED_READ: u64 = LAYERING | STRIPINGV2 | DATA_POOL;
/// Features this client implements for writing (of the read/write-incompatible set).
///
/// DEEP_FLATTEN: our copy-up is librbd's (the copy-up goes out alone with an empty
/// snapshot context when the image has snapshots), so clone snapshots carry the parent
/// data and flatten may detach them; OPERATIONS: we understand the clone-v2 op features.
///
/// EXCLUSIVE_LOCK / OBJECT_MAP / FAST_DIFF: librbd's managed lock and object map
/// (`crate::exclusive_lock`, [`crate::object_map`]).
pub const SUPPORTED_WRITE: u64 =
    SUPPORTED_READ | DEEP_FLATTEN | OPERATIONS | EXCLUSIVE_LOCK | OBJECT_MAP | FAST_DIFF;
/// Features `create` accepts from a caller.
pub const CREATABLE: u64 =
    LAYERING | STRIPINGV2 | DEEP_FLATTEN | DATA_POOL | EXCLUSIVE_LOCK | OBJECT_MAP | FAST_DIFF;
/// The default for new images: librbd's `rbd_default_features` (61: layering,
/// exclusive-lock, object-map, fast-diff, deep-flatten).
pub const DEFAULT: u64 = LAYERING | EXCLUSIVE_LOCK | OBJECT_MAP | FAST_DIFF | DEEP_FLATTEN;

/// librbd `validate_features` dependency rules: the feature a feature needs, if any.
pub fn missing_dependency(bits: u64) -> Option<&'static str> {
    if bits & OBJECT_MAP != 0 && bits & EXCLUSIVE_LOCK == 0 {
        return Some("cannot use object map without exclusive lock");
    }
    if bits & FAST_DIFF != 0 && bits & OBJECT_MAP == 0 {
        return Some("cannot use fast diff without object map");
    }
    if bits & JOURNALING != 0 && bits & EXCLUSIVE_LOCK == 0 {
        return Some("cannot use journaling without exclusive lock");
    }
    None
}

/// Operation features (`op_features` header key).
pub mod op {
    #![allow(missing_docs)]
    pub const CLONE_PARENT: u64 = 1 << 0;
    pub const CLONE_CHILD: u64 = 1 << 1;
    pub const GROUP: u64 = 1 << 2;
    pub const SNAP_TRASH: u64 = 1 << 3;
    pub const ALL: u64 = CLONE_PARENT | CLONE_CHILD | GROUP | SNAP_TRASH;
}

/// Image flags (`flags` header key).
pub mod flag {
    #![allow(missing_docs)]
    pub const OBJECT_MAP_INVALID: u64 = 1 << 0;
    pub const FAST_DIFF_INVALID: u64 = 1 << 1;
}

const NAMES: &[(u64, &str)] = &[
    (LAYERING, "layering"),
    (STRIPINGV2, "striping"),
    (EXCLUSIVE_LOCK, "exclusive-lock"),
    (OBJECT_MAP, "object-map"),
    (FAST_DIFF, "fast-diff"),
    (DEEP_FLATTEN, "deep-flatten"),
    (JOURNALING, "journaling"),
    (DATA_POOL, "data-pool"),
    (OPERATIONS, "operations"),
    (MIGRATING, "migrating"),
    (NON_PRIMARY, "non-primary"),
    (DIRTY_CACHE, "dirty-cache"),
];

const OP_NAMES: &[(u64, &str)] = &[
    (op::CLONE_PARENT, "clone-parent"),
    (op::CLONE_CHILD, "clone-child"),
    (op::GROUP, "group"),
    (op::SNAP_TRASH, "snap-trash"),
];

const FLAG_NAMES: &[(u64, &str)] = &[
    (flag::OBJECT_MAP_INVALID, "object map invalid"),
    (flag::FAST_DIFF_INVALID, "fast diff invalid"),
];

fn names(bits: u64, table: &[(u64, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut left = bits;
    for (b, n) in table {
        if bits & b != 0 {
            out.push(n.to_string());
            left &= !b;
        }
    }
    if left != 0 {
        out.push(format!("{left:#x}"));
    }
    out
}

/// Feature names in bit order, as `rbd info` prints them; unknown bits as one hex value.
pub fn feature_names(bits: u64) -> Vec<String> {
    names(bits, NAMES)
}

/// Operation feature names.
pub fn op_feature_names(bits: u64) -> Vec<String> {
    names(bits, OP_NAMES)
}

/// Flag names.
pub fn flag_names(bits: u64) -> Vec<String> {
    names(bits, FLAG_NAMES)
}

/// Parse one feature name (`layering`, `exclusive-lock`, also the numeric form).
pub fn parse_feature(name: &str) -> Option<u64> {
    let n = name.trim();
    if let Some((b, _)) = NAMES.iter().find(|(_, s)| *s == n) {
        return Some(*b);
    }
    n.parse::<u64>().ok().filter(|v| v & !ALL == 0)
}

/// Parse a comma separated list of feature names (the `--image-feature` form).
pub fn parse_features(list: &str) -> Result<u64, String> {
    let mut bits = 0;
    for part in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        bits |= parse_feature(part).ok_or_else(|| format!("unknown image feature '{part}'"))?;
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_parse() {
        assert_eq!(
            feature_names(61),
            vec![
                "layering",
                "exclusive-lock",
                "object-map",
                "fast-diff",
                "deep-flatten"
            ]
        );
        assert_eq!(feature_names(1 << 20), vec!["0x100000"]);
        assert_eq!(parse_features("layering,deep-flatten").unwrap(), 33);
        assert!(parse_features("layering,bogus").is_err());
        assert_eq!(op_feature_names(2), vec!["clone-child"]);
        assert_eq!(RW_INCOMPATIBLE, 0xfff);
        assert_eq!(INCOMPATIBLE, 0x883);
        assert_eq!(DEFAULT, 61);
        assert!(missing_dependency(61).is_none());
        assert!(missing_dependency(LAYERING | OBJECT_MAP).is_some());
        assert!(missing_dependency(EXCLUSIVE_LOCK | FAST_DIFF).is_some());
    }
}
