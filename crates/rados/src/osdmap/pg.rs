//! `pg_t`: a placement group id (ceph: `src/osd/osd_types.h` pg_t).

use ceph_encoding::{Decode, DecodeError, Decoder, Encode, EncodeExt};
use std::fmt;

/// A placement group: pool id and placement seed.
///
/// For a *raw* PG (as an object hashes) `seed` is the full 32-bit object hash; for an
/// actual PG it is that hash folded into `0..pg_num` ([`super::PgPool::raw_pg_to_pg`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PgId {
    /// Pool id.
    pub pool: u64,
    /// Placement seed (`ps`).
    pub seed: u32,
}

impl PgId {
    /// A PG of pool `pool` with seed `seed`.
    pub fn new(pool: u64, seed: u32) -> Self {
        PgId { pool, seed }
    }

    /// Parse the text form `<pool>.<hex seed>` (e.g. `1.1c`).
    pub fn parse(s: &str) -> Option<PgId> {
        let (p, s) = s.split_once('.')?;
        Some(PgId {
            pool: p.parse().ok()?,
            seed: u32::from_str_radix(s, 16).ok()?,
        })
    }
}

impl fmt::Display for PgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:x}", self.pool, self.seed)
    }
}

impl fmt::Debug for PgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Decode for PgId {
    /// `u8 v (1)`, `u64 pool`, `u32 seed`, `s32 preferred` (always -1 since Luminous).
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let _v = d.u8()?;
        let pool = d.u64()?;
        let seed = d.u32()?;
        let _preferred = d.i32()?;
        Ok(PgId { pool, seed })
    }
}

impl Encode for PgId {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1);
        out.put_u64(self.pool);
        out.put_u32(self.seed);
        out.put_i32(-1);
    }
}

/// Encoded size of a `pg_t`.
pub(crate) const PG_T_LEN: usize = 17;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_wire_forms() {
        let pg = PgId::new(1, 0x1c);
        assert_eq!(pg.to_string(), "1.1c");
        assert_eq!(PgId::parse("1.1c"), Some(pg));
        assert_eq!(PgId::parse("x.1"), None);
        let bytes = ceph_encoding::encode_to_vec(&pg);
        assert_eq!(
            bytes,
            [1, 1, 0, 0, 0, 0, 0, 0, 0, 0x1c, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(bytes.len(), PG_T_LEN);
        let back: PgId = ceph_encoding::decode_exact(&bytes).unwrap();
        assert_eq!(back, pg);
    }
}
