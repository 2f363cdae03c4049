use crate::{DecodeError, Result};
use std::collections::{BTreeMap, BTreeSet};

/// A bounded cursor over encoded bytes.
///
/// Every read checks the remaining length first, and container counts are checked against
/// the bytes that are left before anything is allocated, so a hostile length can neither
/// panic nor make us reserve gigabytes.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A type that can be decoded from Ceph's wire encoding.
pub trait Decode: Sized {
    /// Decode one value, advancing the cursor.
    fn decode(d: &mut Decoder<'_>) -> Result<Self>;
}

macro_rules! int_reader {
    ($name:ident, $t:ty) => {
        #[doc = concat!("Read a little-endian `", stringify!($t), "`.")]
        pub fn $name(&mut self) -> Result<$t> {
            const N: usize = std::mem::size_of::<$t>();
            let b = self.take(N, stringify!($t))?;
            let mut a = [0u8; N];
            a.copy_from_slice(b);
            Ok(<$t>::from_le_bytes(a))
        }
    };
}

impl<'a> Decoder<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Current offset from the start of the buffer.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The whole underlying buffer (for checksums over already-decoded ranges).
    pub fn buffer(&self) -> &'a [u8] {
        self.buf
    }

    /// The bytes not yet consumed, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// True when all bytes are consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Error unless every byte was consumed.
    pub fn finish(&self, what: &'static str) -> Result<()> {
        if self.remaining() != 0 {
            return Err(DecodeError::TrailingBytes {
                what,
                extra: self.remaining(),
            });
        }
        Ok(())
    }

    /// Take exactly `n` raw bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                what,
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Skip `n` bytes.
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<()> {
        self.take(n, what).map(|_| ())
    }

    /// Take exactly `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let b = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    int_reader!(u8, u8);
    int_reader!(u16, u16);
    int_reader!(u32, u32);
    int_reader!(u64, u64);
    int_reader!(i8, i8);
    int_reader!(i16, i16);
    int_reader!(i32, i32);
    int_reader!(i64, i64);

    /// A bool encoded as one byte (any non-zero value is true, as in Ceph).
    pub fn bool(&mut self) -> Result<bool> {
        Ok(self.u8()? != 0)
    }

    /// A `u32` length checked against the remaining input (each element takes at least
    /// `min_elem` bytes), so a forged count fails fast instead of allocating.
    pub fn count(&mut self, min_elem: usize, what: &'static str) -> Result<usize> {
        let n = self.u32()? as usize;
        let need = n.saturating_mul(min_elem.max(1));
        if min_elem > 0 && need > self.remaining() {
            return Err(DecodeError::Truncated {
                what,
                needed: need,
                available: self.remaining(),
            });
        }
        Ok(n)
    }

    /// A length-prefixed byte blob (Ceph `bufferlist` as a field): u32 length + bytes.
    pub fn blob(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n, what)
    }

    /// A Ceph string: u32 length + bytes. Invalid UTF-8 is replaced, never rejected: names
    /// on the wire are bytes, and an odd byte must not make a whole map undecodable.
    pub fn string(&mut self) -> Result<String> {
        let b = self.blob("string")?;
        // `from_utf8` checks ASCII a word at a time; the lossy form walks it in chunks,
        // several times slower on the object name every OSD reply carries
        Ok(match std::str::from_utf8(b) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        })
    }

    /// A sub-cursor over the next `n` bytes, consuming them from this one.
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Decoder<'a>> {
        Ok(Decoder::new(self.take(n, what)?))
    }

    /// Open an `ENCODE_START` envelope: `u8 struct_v, u8 compat, u32 len`.
    ///
    /// Fails if `compat` is newer than `max_v` (we cannot understand it). Returns the
    /// struct version and a sub-cursor of exactly `len` bytes; whatever a newer encoder
    /// appended beyond the fields we read is skipped simply by dropping the sub-cursor.
    pub fn versioned(&mut self, max_v: u8, what: &'static str) -> Result<(u8, Decoder<'a>)> {
        let v = self.u8()?;
        let compat = self.u8()?;
        if compat > max_v {
            return Err(DecodeError::IncompatibleVersion {
                what,
                compat,
                supported: max_v,
            });
        }
        let len = self.u32()? as usize;
        let sub = self.sub(len, what)?;
        Ok((v, sub))
    }

    /// Decode a `T`.
    pub fn decode<T: Decode>(&mut self) -> Result<T> {
        T::decode(self)
    }

    /// A `vec<T>` / `list<T>` / `set<T>`: u32 count then elements.
    /// `min_elem` is the smallest possible encoded size of one element (for the bound check).
    pub fn vec_with<T>(
        &mut self,
        min_elem: usize,
        what: &'static str,
        mut f: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let n = self.count(min_elem, what)?;
        let mut v = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            v.push(f(self)?);
        }
        Ok(v)
    }

    /// `vec<T>` of a [`Decode`] type.
    pub fn vec<T: Decode>(&mut self, min_elem: usize, what: &'static str) -> Result<Vec<T>> {
        self.vec_with(min_elem, what, |d| T::decode(d))
    }

    /// `map<K,V>` with custom element decoders.
    pub fn map_with<K: Ord, V>(
        &mut self,
        min_elem: usize,
        what: &'static str,
        mut fk: impl FnMut(&mut Self) -> Result<K>,
        mut fv: impl FnMut(&mut Self) -> Result<V>,
    ) -> Result<BTreeMap<K, V>> {
        let n = self.count(min_elem, what)?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = fk(self)?;
            let v = fv(self)?;
            m.insert(k, v);
        }
        Ok(m)
    }

    /// `map<K,V>` of [`Decode`] types.
    pub fn map<K: Decode + Ord, V: Decode>(
        &mut self,
        min_elem: usize,
        what: &'static str,
    ) -> Result<BTreeMap<K, V>> {
        self.map_with(min_elem, what, K::decode, V::decode)
    }

    /// `set<T>` of a [`Decode`] type.
    pub fn set<T: Decode + Ord>(
        &mut self,
        min_elem: usize,
        what: &'static str,
    ) -> Result<BTreeSet<T>> {
        let n = self.count(min_elem, what)?;
        let mut s = BTreeSet::new();
        for _ in 0..n {
            s.insert(T::decode(self)?);
        }
        Ok(s)
    }

    /// `optional<T>`: u8 flag then T.
    pub fn optional<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<Option<T>> {
        if self.bool()? {
            Ok(Some(f(self)?))
        } else {
            Ok(None)
        }
    }
}

macro_rules! decode_int {
    ($($t:ident),*) => {$(
        impl Decode for $t {
            fn decode(d: &mut Decoder<'_>) -> Result<Self> { d.$t() }
        }
    )*};
}
decode_int!(u8, u16, u32, u64, i8, i16, i32, i64);

impl Decode for bool {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        d.bool()
    }
}

impl Decode for String {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        d.string()
    }
}

impl Decode for Vec<u8> {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(d.blob("bufferlist")?.to_vec())
    }
}

impl Decode for bytes::Bytes {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(bytes::Bytes::copy_from_slice(d.blob("bufferlist")?))
    }
}

impl<A: Decode, B: Decode> Decode for (A, B) {
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok((A::decode(d)?, B::decode(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_keep_valid_utf8_and_replace_invalid_bytes() {
        let mut b = Vec::new();
        for s in [
            &b"rbd_data.1234"[..],
            "h\u{e9}llo".as_bytes(),
            b"a\xffb",
            b"",
        ] {
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s);
        }
        let mut d = Decoder::new(&b);
        assert_eq!(d.string().unwrap(), "rbd_data.1234");
        assert_eq!(d.string().unwrap(), "h\u{e9}llo");
        assert_eq!(d.string().unwrap(), "a\u{fffd}b");
        assert_eq!(d.string().unwrap(), "");
        assert!(d.string().is_err());
    }

    #[test]
    fn forged_count_does_not_allocate() {
        let bytes = [0xff, 0xff, 0xff, 0x7f];
        let mut d = Decoder::new(&bytes);
        assert!(matches!(
            d.vec::<u64>(8, "x"),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn versioned_skips_unknown_tail() {
        // v=3 compat=1 len=6: a u16 we know + 4 bytes from a "newer" encoder, then 0xAA.
        let bytes = [3, 1, 6, 0, 0, 0, 0x34, 0x12, 9, 9, 9, 9, 0xAA];
        let mut d = Decoder::new(&bytes);
        let (v, mut s) = d.versioned(2, "t").unwrap();
        assert_eq!(v, 3);
        assert_eq!(s.u16().unwrap(), 0x1234);
        assert_eq!(d.u8().unwrap(), 0xAA);
    }

    #[test]
    fn versioned_rejects_newer_compat() {
        let bytes = [5, 4, 0, 0, 0, 0];
        let mut d = Decoder::new(&bytes);
        assert!(matches!(
            d.versioned(3, "t"),
            Err(DecodeError::IncompatibleVersion { .. })
        ));
    }

    #[test]
    fn truncated_len_is_error() {
        let bytes = [1, 1, 0xff, 0, 0, 0, 1];
        let mut d = Decoder::new(&bytes);
        assert!(d.versioned(1, "t").is_err());
    }
}
