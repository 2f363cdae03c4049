use std::collections::{BTreeMap, BTreeSet};

/// A type with a Ceph wire encoding. Encoding never fails: it appends to a `Vec<u8>`.
pub trait Encode {
    /// Append the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);
}

/// Helpers for writing Ceph primitives into a byte vector.
pub trait EncodeExt {
    /// Append a `u8`.
    fn put_u8(&mut self, v: u8);
    /// Append a little-endian `u16`.
    fn put_u16(&mut self, v: u16);
    /// Append a little-endian `u32`.
    fn put_u32(&mut self, v: u32);
    /// Append a little-endian `u64`.
    fn put_u64(&mut self, v: u64);
    /// Append a little-endian `i32`.
    fn put_i32(&mut self, v: i32);
    /// Append a little-endian `i64`.
    fn put_i64(&mut self, v: i64);
    /// Append a bool as one byte.
    fn put_bool(&mut self, v: bool);
    /// Append a Ceph string (u32 length + bytes).
    fn put_str(&mut self, s: &str);
    /// Append a bufferlist field (u32 length + bytes).
    fn put_blob(&mut self, b: &[u8]);
    /// Append raw bytes.
    fn put_raw(&mut self, b: &[u8]);
    /// Append any [`Encode`] value.
    fn put<T: Encode + ?Sized>(&mut self, v: &T);
    /// Begin an `ENCODE_START(v, compat)` envelope; finish it with [`VersionedGuard::finish`].
    fn start_versioned(&mut self, v: u8, compat: u8) -> VersionedGuard;
}

/// The placeholder of an `ENCODE_START` envelope, back-patched with the body length.
#[must_use = "call finish() to write the struct length"]
pub struct VersionedGuard {
    len_at: usize,
}

impl VersionedGuard {
    /// Write the body length into the envelope header.
    pub fn finish(self, out: &mut [u8]) {
        let len = (out.len() - self.len_at - 4) as u32;
        out[self.len_at..self.len_at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

impl EncodeExt for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_bool(&mut self, v: bool) {
        self.push(v as u8);
    }
    fn put_str(&mut self, s: &str) {
        self.put_blob(s.as_bytes());
    }
    fn put_blob(&mut self, b: &[u8]) {
        self.put_u32(b.len() as u32);
        self.extend_from_slice(b);
    }
    fn put_raw(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
    fn put<T: Encode + ?Sized>(&mut self, v: &T) {
        v.encode(self);
    }
    fn start_versioned(&mut self, v: u8, compat: u8) -> VersionedGuard {
        self.push(v);
        self.push(compat);
        let len_at = self.len();
        self.extend_from_slice(&[0; 4]);
        VersionedGuard { len_at }
    }
}

macro_rules! encode_int {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_le_bytes()); }
        }
    )*};
}
encode_int!(u8, u16, u32, u64, i8, i16, i32, i64);

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
}

impl Encode for str {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_str(self);
    }
}

impl Encode for String {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_str(self);
    }
}

impl Encode for [u8] {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_blob(self);
    }
}

impl Encode for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_blob(self);
    }
}

impl<A: Encode, B: Encode> Encode for (A, B) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
}

impl<T: Encode> Encode for BTreeSet<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.len() as u32);
        for v in self {
            v.encode(out);
        }
    }
}

impl<K: Encode, V: Encode> Encode for BTreeMap<K, V> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.len() as u32);
        for (k, v) in self {
            k.encode(out);
            v.encode(out);
        }
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
            None => out.push(0),
        }
    }
}

/// Encode a slice as a Ceph `vec<T>` (u32 count + elements).
pub fn encode_vec<T: Encode>(items: &[T], out: &mut Vec<u8>) {
    out.put_u32(items.len() as u32);
    for i in items {
        i.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Decoder;

    #[test]
    fn versioned_roundtrip() {
        let mut out = Vec::new();
        let g = out.start_versioned(2, 1);
        out.put_u32(7);
        out.put_str("abc");
        g.finish(&mut out);
        let mut d = Decoder::new(&out);
        let (v, mut s) = d.versioned(2, "t").unwrap();
        assert_eq!(v, 2);
        assert_eq!(s.u32().unwrap(), 7);
        assert_eq!(s.string().unwrap(), "abc");
        assert!(s.is_empty() && d.is_empty());
    }
}
