//! The hash functions placement depends on.
//!
//! * `crush_hash32_rjenkins1_{2,3,4,5}`: Robert Jenkins' 96-bit mix as used inside CRUSH
//!   (ceph: `src/crush/hash.c`, kernel: `net/ceph/crush/hash.c`).
//! * `ceph_str_hash_rjenkins` / `ceph_str_hash_linux`: object name hashes
//!   (ceph: `src/common/ceph_hash.cc`, kernel: `net/ceph/ceph_hash.c`).
//! * `ceph_stable_mod`: the PG-split friendly modulo (ceph: `src/include/rados.h`).
//!
//! All arithmetic is modulo 2^32, exactly as the C code's `__u32` arithmetic.

/// The only CRUSH hash type (`CRUSH_HASH_RJENKINS1`).
pub const CRUSH_HASH_RJENKINS1: u8 = 0;

/// `CEPH_STR_HASH_LINUX`: the Linux dcache hash, for pools with `object_hash = 1`.
pub const CEPH_STR_HASH_LINUX: u8 = 1;
/// `CEPH_STR_HASH_RJENKINS`: the default object name hash (`object_hash = 2`).
pub const CEPH_STR_HASH_RJENKINS: u8 = 2;

const CRUSH_HASH_SEED: u32 = 1_315_423_911;

/// Jenkins' mix step; updates all three words in place (callers rely on that).
#[inline(always)]
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 13);
    *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 8);
    *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 13);
    *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 12);
    *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 16);
    *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 5);
    *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 3);
    *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 10);
    *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 15);
}

/// `crush_hash32_rjenkins1_2(a, b)`.
pub fn crush_hash32_2(a: u32, b: u32) -> u32 {
    let (mut a, mut b) = (a, b);
    let mut h = CRUSH_HASH_SEED ^ a ^ b;
    let (mut x, mut y) = (231_232u32, 1232u32);
    mix(&mut a, &mut b, &mut h);
    mix(&mut x, &mut a, &mut h);
    mix(&mut b, &mut y, &mut h);
    h
}

/// `crush_hash32_rjenkins1_3(a, b, c)`.
pub fn crush_hash32_3(a: u32, b: u32, c: u32) -> u32 {
    let (mut a, mut b, mut c) = (a, b, c);
    let mut h = CRUSH_HASH_SEED ^ a ^ b ^ c;
    let (mut x, mut y) = (231_232u32, 1232u32);
    mix(&mut a, &mut b, &mut h);
    mix(&mut c, &mut x, &mut h);
    mix(&mut y, &mut a, &mut h);
    mix(&mut b, &mut x, &mut h);
    mix(&mut y, &mut c, &mut h);
    h
}

/// `crush_hash32_rjenkins1_4(a, b, c, d)`.
pub fn crush_hash32_4(a: u32, b: u32, c: u32, d: u32) -> u32 {
    let (mut a, mut b, mut c, mut d) = (a, b, c, d);
    let mut h = CRUSH_HASH_SEED ^ a ^ b ^ c ^ d;
    let (mut x, mut y) = (231_232u32, 1232u32);
    mix(&mut a, &mut b, &mut h);
    mix(&mut c, &mut d, &mut h);
    mix(&mut a, &mut x, &mut h);
    mix(&mut y, &mut b, &mut h);
    mix(&mut c, &mut x, &mut h);
    mix(&mut y, &mut d, &mut h);
    h
}

/// `crush_hash32_rjenkins1_5(a, b, c, d, e)`.
pub fn crush_hash32_5(a: u32, b: u32, c: u32, d: u32, e: u32) -> u32 {
    let (mut a, mut b, mut c, mut d, mut e) = (a, b, c, d, e);
    let mut h = CRUSH_HASH_SEED ^ a ^ b ^ c ^ d ^ e;
    let (mut x, mut y) = (231_232u32, 1232u32);
    mix(&mut a, &mut b, &mut h);
    mix(&mut c, &mut d, &mut h);
    mix(&mut e, &mut x, &mut h);
    mix(&mut y, &mut a, &mut h);
    mix(&mut b, &mut x, &mut h);
    mix(&mut y, &mut c, &mut h);
    mix(&mut d, &mut x, &mut h);
    mix(&mut y, &mut e, &mut h);
    h
}

// Typed dispatchers as in hash.c: an unknown hash type hashes to 0.
pub(crate) fn hash32_3(ty: u8, a: u32, b: u32, c: u32) -> u32 {
    if ty == CRUSH_HASH_RJENKINS1 {
        crush_hash32_3(a, b, c)
    } else {
        0
    }
}

pub(crate) fn hash32_4(ty: u8, a: u32, b: u32, c: u32, d: u32) -> u32 {
    if ty == CRUSH_HASH_RJENKINS1 {
        crush_hash32_4(a, b, c, d)
    } else {
        0
    }
}

/// `ceph_str_hash_rjenkins`: Jenkins' lookup2 over the bytes, the default object hash.
pub fn ceph_str_hash_rjenkins(s: &[u8]) -> u32 {
    let length = s.len() as u32;
    let mut a: u32 = 0x9e37_79b9;
    let mut b: u32 = a;
    let mut c: u32 = 0;
    let word = |k: &[u8]| u32::from_le_bytes([k[0], k[1], k[2], k[3]]);
    let mut k = s;
    while k.len() >= 12 {
        a = a.wrapping_add(word(&k[0..4]));
        b = b.wrapping_add(word(&k[4..8]));
        c = c.wrapping_add(word(&k[8..12]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    c = c.wrapping_add(length);
    // The tail: bytes 0..4 go to a, 4..8 to b, 8..11 to c shifted up one byte (the
    // low byte of c is "reserved" for the length).
    for (i, &byte) in k.iter().enumerate() {
        let v = byte as u32;
        match i {
            0..=3 => a = a.wrapping_add(v << (8 * i)),
            4..=7 => b = b.wrapping_add(v << (8 * (i - 4))),
            _ => c = c.wrapping_add(v << (8 * (i - 7))),
        }
    }
    mix(&mut a, &mut b, &mut c);
    c
}

/// `ceph_str_hash_linux`: the Linux dcache string hash.
pub fn ceph_str_hash_linux(s: &[u8]) -> u32 {
    // The C code accumulates in an `unsigned long` and truncates; only the low 32 bits
    // of sums and products matter, so u32 wrapping arithmetic is exact.
    let mut hash: u32 = 0;
    for &c in s {
        let c = c as u32;
        hash = hash
            .wrapping_add(c << 4)
            .wrapping_add(c >> 4)
            .wrapping_mul(11);
    }
    hash
}

/// `ceph_str_hash(type, s)`: dispatch on a pool's `object_hash`; unknown types give
/// `0xffffffff` as in Ceph.
pub fn ceph_str_hash(ty: u8, s: &[u8]) -> u32 {
    match ty {
        CEPH_STR_HASH_LINUX => ceph_str_hash_linux(s),
        CEPH_STR_HASH_RJENKINS => ceph_str_hash_rjenkins(s),
        _ => u32::MAX,
    }
}

/// `ceph_stable_mod(x, b, bmask)`: `x mod b` that keeps PGs stable while `b` grows
/// towards the next power of two (`bmask = 2^k - 1 >= b - 1`).
pub fn ceph_stable_mod(x: u32, b: u32, bmask: u32) -> u32 {
    if (x & bmask) < b {
        x & bmask
    } else {
        x & (bmask >> 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_hash_vectors() {
        // protocol map §5.5 / §9.6 (VERIFIED-LOCAL against osdmaptool).
        assert_eq!(ceph_str_hash_rjenkins(b"foo"), 0x7fc1_f406);
        assert_eq!(ceph_str_hash_rjenkins(b"rbd_directory"), 0x30a9_8c1c);
        assert_eq!(ceph_str_hash_rjenkins(b"rbd_id.img1"), 0x8bd6_e621);
        assert_eq!(ceph_str_hash(CEPH_STR_HASH_RJENKINS, b"foo"), 0x7fc1_f406);
        assert_eq!(ceph_str_hash(7, b"foo"), u32::MAX);
    }

    #[test]
    fn linux_hash_matches_definition() {
        // hash = (hash + (c << 4) + (c >> 4)) * 11, by hand for "ab".
        let a = (((97u64 << 4) + (97 >> 4)) * 11) as u32;
        let ab = ((a as u64 + (98 << 4) + (98 >> 4)) * 11) as u32;
        assert_eq!(ceph_str_hash_linux(b"ab"), ab);
        assert_eq!(ceph_str_hash_linux(b""), 0);
    }

    #[test]
    fn stable_mod_vectors() {
        // pg_num 48 -> mask 63; 0x7fc1f406 & 63 = 6 < 48.
        assert_eq!(ceph_stable_mod(0x7fc1_f406, 48, 63), 6);
        // 0x30a98c1c & 63 = 0x1c = 28 < 48.
        assert_eq!(ceph_stable_mod(0x30a9_8c1c, 48, 63), 0x1c);
        // 0x8bd6e621 & 63 = 0x21 = 33 < 48.
        assert_eq!(ceph_stable_mod(0x8bd6_e621, 48, 63), 0x21);
        // x & mask >= b falls back to the half mask.
        assert_eq!(ceph_stable_mod(62, 48, 63), 62 & 31);
    }

    #[test]
    fn pps_vectors() {
        // pool 1, pg_num = pgp_num = 48, HASHPSPOOL: pps = hash32_2(stable_mod(seed), pool).
        assert_eq!(crush_hash32_2(6, 1), 3_614_737_657);
        assert_eq!(crush_hash32_2(0x1c, 1), 633_844_593);
        assert_eq!(crush_hash32_2(0x21, 1), 2_434_882_463);
    }
}
