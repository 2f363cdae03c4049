//! AES-128-GCM for secure mode, behind one small interface with two backends.
//!
//! Why two: the RustCrypto `aes-gcm` 0.10 stack detects AES-NI and PCLMULQDQ at run time
//! (cpufeatures), but its GHASH (`polyval` 0.6 `clmul`) multiplies one 16-byte block at a
//! time with a full reduction per block, through a `#[target_feature]` function that a
//! generic build cannot inline into the block loop. That serial multiply chain is about
//! three quarters of the cost: ~1.2 GiB/s on this project's build machine, where
//! secure mode then doubles the client CPU per byte. `-C target-cpu=native` lets the
//! compiler inline it (faster, but the binary no longer runs on older CPUs). `ring`
//! (BoringSSL's assembly: stitched AES-CTR + aggregated GHASH, runtime-dispatched to
//! AVX/AVX2/VAES) is ~5x faster in a generic build, so it is the default (`ring`
//! feature); without the feature the pure-Rust stack is used. See docs/performance.md.
//!
//! Zeroization: our own copies of the key are wiped. Neither backend wipes everything it
//! derives (ring has no zeroize support; polyval 0.6's runtime-dispatch wrapper never
//! drops its inner state); with the `aes/zeroize` feature the pure-Rust AES key schedule is
//! wiped on drop.

use crate::error::Error;
use zeroize::Zeroize;

/// Length of a GCM tag.
pub(crate) const TAG_LEN: usize = 16;

/// An AES-128-GCM key, ready to seal and open.
pub(crate) struct GcmKey {
    #[cfg(feature = "ring")]
    key: ring::aead::LessSafeKey,
    #[cfg(not(feature = "ring"))]
    key: aes_gcm::Aes128Gcm,
}

impl GcmKey {
    /// `key` must be 16 bytes (checked by the caller, which slices a fixed range).
    pub(crate) fn new(key: &[u8]) -> Result<Self, Error> {
        let mut k = [0u8; 16];
        if key.len() != 16 {
            return Err(Error::protocol("secure mode key is not 16 bytes"));
        }
        k.copy_from_slice(key);
        let r = Self::from_array(&k);
        k.zeroize();
        Ok(r)
    }

    #[cfg(feature = "ring")]
    fn from_array(k: &[u8; 16]) -> Self {
        let unbound = ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, k)
            .expect("a 16-byte key is valid for AES-128-GCM");
        GcmKey {
            key: ring::aead::LessSafeKey::new(unbound),
        }
    }

    #[cfg(not(feature = "ring"))]
    fn from_array(k: &[u8; 16]) -> Self {
        use aes_gcm::KeyInit;
        GcmKey {
            key: aes_gcm::Aes128Gcm::new(k.into()),
        }
    }

    /// Encrypt `buf` in place (no associated data); return the tag.
    pub(crate) fn seal(&self, nonce: [u8; 12], buf: &mut [u8]) -> [u8; TAG_LEN] {
        #[cfg(feature = "ring")]
        {
            let tag = self
                .key
                .seal_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key(nonce),
                    ring::aead::Aad::empty(),
                    buf,
                )
                .expect("GCM encryption of a bounded buffer cannot fail");
            let mut t = [0u8; TAG_LEN];
            t.copy_from_slice(tag.as_ref());
            t
        }
        #[cfg(not(feature = "ring"))]
        {
            use aes_gcm::aead::AeadInPlace;
            self.key
                .encrypt_in_place_detached(&nonce.into(), b"", buf)
                .expect("GCM encryption of a bounded buffer cannot fail")
                .into()
        }
    }

    /// Decrypt `ct ‖ tag` in place; the plaintext is left in the first `buf.len() - 16`
    /// bytes. Both backends compare the tag in constant time and leave no plaintext behind
    /// on failure that the caller could mistake for data (the caller drops the buffer).
    pub(crate) fn open(&self, nonce: [u8; 12], buf: &mut [u8]) -> Result<usize, Error> {
        if buf.len() < TAG_LEN {
            return Err(Error::protocol("secure chunk shorter than a GCM tag"));
        }
        let n = buf.len() - TAG_LEN;
        #[cfg(feature = "ring")]
        {
            self.key
                .open_in_place(
                    ring::aead::Nonce::assume_unique_for_key(nonce),
                    ring::aead::Aad::empty(),
                    buf,
                )
                .map_err(|_| Error::DecryptFailed)?;
        }
        #[cfg(not(feature = "ring"))]
        {
            use aes_gcm::aead::AeadInPlace;
            let (ct, tag) = buf.split_at_mut(n);
            let tag = aes_gcm::Tag::clone_from_slice(tag);
            self.key
                .decrypt_in_place_detached(&nonce.into(), b"", ct, &tag)
                .map_err(|_| Error::DecryptFailed)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NIST GCM test vector (gcmEncryptExtIV128, Count 0 with 16-byte plaintext: the
    /// McGrew–Viega "Test Case 2"): key and IV all zero, plaintext one zero block.
    #[test]
    fn known_answer() {
        let k = GcmKey::new(&[0u8; 16]).unwrap();
        let mut buf = vec![0u8; 16];
        let tag = k.seal([0u8; 12], &mut buf);
        assert_eq!(buf, hex("0388dace60b6a392f328c2b971b2fe78"));
        assert_eq!(tag.to_vec(), hex("ab6e47d42cec13bdf53a67b21257bddf"));
        buf.extend_from_slice(&tag);
        assert_eq!(k.open([0u8; 12], &mut buf).unwrap(), 16);
        assert_eq!(&buf[..16], &[0u8; 16]);
    }

    /// The active backend agrees with the pure-Rust one byte for byte, at sizes around the
    /// block and the parallel-batch boundaries.
    #[test]
    fn matches_pure_rust_reference() {
        use aes_gcm::aead::AeadInPlace;
        use aes_gcm::KeyInit;
        let key: Vec<u8> = (1..=16).collect();
        let ours = GcmKey::new(&key).unwrap();
        let reference = aes_gcm::Aes128Gcm::new_from_slice(&key).unwrap();
        for len in [
            0usize,
            1,
            15,
            16,
            17,
            95,
            96,
            97,
            128,
            255,
            4096,
            4096 + 48,
            65_537,
        ] {
            let nonce = [len as u8; 12];
            let pt: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut a = pt.clone();
            let ta = ours.seal(nonce, &mut a);
            let mut b = pt.clone();
            let tb = reference
                .encrypt_in_place_detached(&nonce.into(), b"", &mut b)
                .unwrap();
            assert_eq!(a, b, "ciphertext, len {len}");
            assert_eq!(&ta[..], &tb[..], "tag, len {len}");
            a.extend_from_slice(&ta);
            assert_eq!(ours.open(nonce, &mut a).unwrap(), len);
            assert_eq!(&a[..len], &pt[..]);
        }
    }

    #[test]
    fn tampering_rejected() {
        let k = GcmKey::new(&[9u8; 16]).unwrap();
        let mut buf = vec![5u8; 100];
        let tag = k.seal([1u8; 12], &mut buf);
        buf.extend_from_slice(&tag);
        for i in [0usize, 50, 99, 100, 115] {
            let mut t = buf.clone();
            t[i] ^= 0x01;
            assert!(matches!(
                k.open([1u8; 12], &mut t),
                Err(Error::DecryptFailed)
            ));
        }
        // Wrong nonce.
        let mut t = buf.clone();
        assert!(k.open([2u8; 12], &mut t).is_err());
        // Too short to hold a tag.
        assert!(k.open([1u8; 12], &mut [0u8; 15]).is_err());
        assert!(GcmKey::new(&[0u8; 15]).is_err());
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
