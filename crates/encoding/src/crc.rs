/// Ceph's `ceph_crc32c(seed, data)`: CRC-32C (Castagnoli) with no pre- or post-inversion.
///
/// The `crc32c` crate computes the standard, inverted form; Ceph's running value is the
/// seed as given and the result is returned as is, so we invert on the way in and out.
/// ceph: src/include/crc32c.h; msgr2 preamble seed 0, segment seed `u32::MAX`.
pub fn ceph_crc32c(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from ceph: src/test/common/test_crc32c.cc (see the protocol map §1.5).
    #[test]
    fn ceph_vectors() {
        assert_eq!(ceph_crc32c(0, b"foo bar baz"), 4119623852);
        assert_eq!(ceph_crc32c(1234, b"foo bar baz"), 881700046);
        assert_eq!(ceph_crc32c(0, b"whiz bang boom"), 2360230088);
        assert_eq!(ceph_crc32c(5678, b"whiz bang boom"), 3743019208);
        assert_eq!(ceph_crc32c(0, &[1u8; 5]), 2715569182);
        assert_eq!(ceph_crc32c(0xFFFF_FFFF, b""), 0xFFFF_FFFF);
    }

    #[test]
    fn chaining_equals_whole() {
        let whole = ceph_crc32c(7, b"hello world");
        let part = ceph_crc32c(ceph_crc32c(7, b"hello "), b"world");
        assert_eq!(whole, part);
    }
}
