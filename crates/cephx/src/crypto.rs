//! `CryptoKey`, AES-128-CBC and the cephx encryption envelopes.
//!
//! ceph: src/auth/Crypto.{h,cc} (CryptoKey, CryptoAESKeyHandler, CEPH_AES_IV);
//! src/auth/cephx/CephxProtocol.h (encode_encrypt, decode_decrypt, AUTH_ENC_MAGIC);
//! kernel: net/ceph/crypto.c, auth_x.c ceph_x_encrypt / ceph_x_decrypt.

use crate::error::{CephxError, Result};
use base64::Engine as _;
use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use ceph_encoding::{Decode, DecodeError, Decoder, Encode, EncodeExt, UTime};
use std::fmt;
use std::path::Path;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// The fixed IV of every cephx AES-CBC operation (`CEPH_AES_IV`).
pub const CEPH_AES_IV: [u8; 16] = *b"cephsageyudagreg";

/// Magic number at the start of every cephx encrypted envelope (`AUTH_ENC_MAGIC`).
pub const AUTH_ENC_MAGIC: u64 = 0xff00_9cad_8826_aa55;

/// Length of an AES-128 secret.
pub const AES_KEY_LEN: usize = 16;

/// Length of an encoded AES `CryptoKey` (u16 type, utime, u16 len, 16 bytes).
pub const ENCODED_KEY_LEN: usize = 2 + 8 + 2 + AES_KEY_LEN;

const ENVELOPE_HEADER_LEN: usize = 1 + 8;
const BLOCK: usize = 16;

type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;
type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

/// Crypto type of a key (`CEPH_CRYPTO_*`). Open newtype.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CryptoType(pub u16);

impl CryptoType {
    /// No encryption: Ceph's default-constructed key (empty secret).
    pub const NONE: CryptoType = CryptoType(0);
    /// AES-128-CBC.
    pub const AES: CryptoType = CryptoType(1);
}

impl fmt::Debug for CryptoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NONE => f.write_str("NONE"),
            Self::AES => f.write_str("AES"),
            CryptoType(n) => write!(f, "CryptoType({n})"),
        }
    }
}

/// A cephx secret: an AES-128 key plus its creation stamp.
///
/// Used for an entity's long-term key (from a keyring) and for the session keys the
/// monitor hands out inside tickets. `Debug` never prints the secret and the secret bytes
/// are zeroed when the value is dropped.
///
/// The only other type accepted is `NONE` with an empty secret, because Ceph encodes
/// default-constructed keys that way (it appears in test objects); such a key "encrypts"
/// by copying, like Ceph's `CryptoNoneKeyHandler`, and the ticket machine refuses it as a
/// session key.
#[derive(Clone)]
pub struct CryptoKey {
    ty: CryptoType,
    created: UTime,
    secret: [u8; AES_KEY_LEN],
}

impl Drop for CryptoKey {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl fmt::Debug for CryptoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoKey")
            .field("type", &self.ty)
            .field("created", &self.created)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl PartialEq for CryptoKey {
    fn eq(&self, other: &Self) -> bool {
        // Constant time over the secret bytes, so that no comparison of keys can leak
        // how many leading bytes matched.
        self.ty == other.ty
            && self.created == other.created
            && bool::from(self.secret.ct_eq(&other.secret))
    }
}
impl Eq for CryptoKey {}

impl CryptoKey {
    /// An AES-128 key from raw secret bytes.
    pub fn new_aes(secret: [u8; AES_KEY_LEN], created: UTime) -> Self {
        CryptoKey {
            ty: CryptoType::AES,
            created,
            secret,
        }
    }

    /// Parse the base64 text form (as in keyrings and `ceph auth get-key`), ignoring
    /// surrounding whitespace such as a trailing newline.
    pub fn from_base64(text: &str) -> Result<Self> {
        let raw = Zeroizing::new(base64::engine::general_purpose::STANDARD.decode(text.trim())?);
        Self::from_encoded(&raw)
    }

    /// Parse the contents of a Kubernetes Secret's key file: either the key string itself,
    /// or — if that does not parse — the base64 encoding of the key string (what you get
    /// when the secret was stored already encoded). Surrounding whitespace is ignored at
    /// both levels. On failure the error of the direct interpretation is returned.
    pub fn from_secret_file_contents(contents: impl AsRef<[u8]>) -> Result<Self> {
        let contents = contents.as_ref();
        let text = String::from_utf8_lossy(contents);
        let direct = match Self::from_base64(&text) {
            Ok(k) => return Ok(k),
            Err(e) => e,
        };
        let inner = match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
            Ok(b) => Zeroizing::new(b),
            Err(_) => return Err(direct),
        };
        match std::str::from_utf8(&inner) {
            Ok(s) => Self::from_base64(s).map_err(|_| direct),
            Err(_) => Err(direct),
        }
    }

    /// Read a key file: a file holding just the base64 key (Ceph's `keyfile` option).
    pub fn from_key_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            CephxError::KeyFile {
                path: path.to_path_buf(),
                source,
            }
        })?);
        Self::from_base64(&text)
    }

    /// Parse the 28-byte encoded form (u16 type = 1, utime created, u16 len = 16, secret).
    /// Only AES keys are accepted here: this is for key material given by the user.
    pub fn from_encoded(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != ENCODED_KEY_LEN {
            // Look at the type first so a foreign key type gets the clearer error.
            if bytes.len() >= 2 {
                let ty = u16::from_le_bytes([bytes[0], bytes[1]]);
                if ty != CryptoType::AES.0 {
                    return Err(CephxError::UnknownCryptoType(ty));
                }
            }
            return Err(CephxError::BadKeyLength {
                what: "encoded CryptoKey",
                expected: ENCODED_KEY_LEN,
                found: bytes.len(),
            });
        }
        let mut d = Decoder::new(bytes);
        let key = Self::decode_typed(&mut d, false)?;
        Ok(key)
    }

    /// Decode the wire form; `allow_none` admits the `NONE`-typed empty key.
    fn decode_typed(d: &mut Decoder<'_>, allow_none: bool) -> Result<Self> {
        let ty = CryptoType(d.u16()?);
        let created = UTime::decode(d)?;
        let len = d.u16()? as usize;
        let bytes = d.take(len, "CryptoKey secret")?;
        match ty {
            CryptoType::AES => {
                if len != AES_KEY_LEN {
                    return Err(CephxError::BadKeyLength {
                        what: "AES secret",
                        expected: AES_KEY_LEN,
                        found: len,
                    });
                }
                let mut secret = [0u8; AES_KEY_LEN];
                secret.copy_from_slice(bytes);
                Ok(CryptoKey {
                    ty,
                    created,
                    secret,
                })
            }
            CryptoType::NONE if allow_none => {
                if len != 0 {
                    return Err(CephxError::BadKeyLength {
                        what: "NONE secret",
                        expected: 0,
                        found: len,
                    });
                }
                Ok(CryptoKey {
                    ty,
                    created,
                    secret: [0; AES_KEY_LEN],
                })
            }
            CryptoType(other) => Err(CephxError::UnknownCryptoType(other)),
        }
    }

    /// The base64 text form (as written in keyrings).
    pub fn to_base64(&self) -> String {
        let raw = Zeroizing::new(ceph_encoding::encode_to_vec(self));
        base64::engine::general_purpose::STANDARD.encode(&*raw)
    }

    /// The crypto type.
    pub fn crypto_type(&self) -> CryptoType {
        self.ty
    }

    /// True for an AES key (every usable cephx key).
    pub fn is_aes(&self) -> bool {
        self.ty == CryptoType::AES
    }

    /// When the key was created (informational).
    pub fn created(&self) -> UTime {
        self.created
    }

    /// The raw secret bytes (16 for AES, empty for NONE). This is the HMAC key msgr2 uses
    /// for AUTH_SIGNATURE when this is a session key.
    pub fn secret(&self) -> &[u8] {
        match self.ty {
            CryptoType::AES => &self.secret,
            _ => &[],
        }
    }

    /// AES-128-CBC with the fixed cephx IV and PKCS#7 padding (always adds 1..=16 bytes).
    /// A NONE key returns the plaintext unchanged, as Ceph does.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        if self.ty != CryptoType::AES {
            return plaintext.to_vec();
        }
        let n = plaintext.len();
        let mut buf = vec![0u8; (n / BLOCK + 1) * BLOCK];
        buf[..n].copy_from_slice(plaintext);
        let enc = Aes128CbcEnc::new(&self.secret.into(), &CEPH_AES_IV.into());
        let ct_len = enc
            .encrypt_padded_mut::<Pkcs7>(&mut buf, n)
            .expect("buffer sized for PKCS#7 padding")
            .len();
        debug_assert_eq!(ct_len, buf.len());
        buf
    }

    /// Reverse of [`CryptoKey::encrypt`]: fails with [`CephxError::Decrypt`] when the length is
    /// not a whole number of blocks or the padding is invalid (typically: wrong key).
    pub fn decrypt(&self, ciphertext: &[u8], what: &'static str) -> Result<Zeroizing<Vec<u8>>> {
        if self.ty != CryptoType::AES {
            return Ok(Zeroizing::new(ciphertext.to_vec()));
        }
        if ciphertext.is_empty() || !ciphertext.chunks_exact(BLOCK).remainder().is_empty() {
            return Err(CephxError::Decrypt { what });
        }
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let dec = Aes128CbcDec::new(&self.secret.into(), &CEPH_AES_IV.into());
        let n = dec
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(|_| CephxError::Decrypt { what })?
            .len();
        buf.truncate(n);
        Ok(buf)
    }

    /// `encode_encrypt_enc_bl`: ciphertext of `[u8 1][u64 AUTH_ENC_MAGIC][payload]`, with no
    /// length prefix.
    pub fn encrypt_enc_bl(&self, payload: &[u8]) -> Vec<u8> {
        let mut pt = Zeroizing::new(Vec::with_capacity(ENVELOPE_HEADER_LEN + payload.len()));
        pt.put_u8(1);
        pt.put_u64(AUTH_ENC_MAGIC);
        pt.put_raw(payload);
        self.encrypt(&pt)
    }

    /// `encode_encrypt`: the enc_bl envelope wrapped as a bufferlist (`u32 len` + ciphertext),
    /// appended to `out`.
    pub fn encode_encrypt(&self, payload: &[u8], out: &mut Vec<u8>) {
        let ct = self.encrypt_enc_bl(payload);
        out.put_blob(&ct);
    }

    /// `decode_decrypt_enc_bl`: decrypt raw ciphertext, check the envelope version and magic,
    /// and return the payload.
    pub fn decrypt_enc_bl(
        &self,
        ciphertext: &[u8],
        what: &'static str,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let pt = self.decrypt(ciphertext, what)?;
        if pt.len() < ENVELOPE_HEADER_LEN
            || pt[0] != 1
            || u64::from_le_bytes(pt[1..9].try_into().expect("8 bytes")) != AUTH_ENC_MAGIC
        {
            return Err(CephxError::BadMagic { what });
        }
        Ok(Zeroizing::new(pt[ENVELOPE_HEADER_LEN..].to_vec()))
    }

    /// `decode_decrypt`: read a bufferlist (`u32 len` + ciphertext) from `d` and open it as
    /// [`CryptoKey::decrypt_enc_bl`] does.
    pub fn decode_decrypt(
        &self,
        d: &mut Decoder<'_>,
        what: &'static str,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let ct = d.blob(what)?;
        self.decrypt_enc_bl(ct, what)
    }
}

impl Decode for CryptoKey {
    /// The wire form found inside tickets; admits the NONE-typed empty key Ceph encodes for
    /// default-constructed keys.
    fn decode(d: &mut Decoder<'_>) -> ceph_encoding::Result<Self> {
        CryptoKey::decode_typed(d, true).map_err(|e| match e {
            CephxError::Decode(e) => e,
            other => DecodeError::invalid("CryptoKey", other.to_string()),
        })
    }
}

impl Encode for CryptoKey {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.ty.0);
        self.created.encode(out);
        let s = self.secret();
        out.put_u16(s.len() as u16);
        out.put_raw(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CryptoKey {
        CryptoKey::new_aes(*b"0123456789abcdef", UTime { sec: 1, nsec: 2 })
    }

    #[test]
    fn cbc_round_trip_all_lengths() {
        let k = key();
        for n in 0..70 {
            let pt: Vec<u8> = (0..n as u8).collect();
            let ct = k.encrypt(&pt);
            assert_eq!(ct.len(), (n / 16 + 1) * 16, "PKCS#7 always pads");
            if n > 0 {
                assert_ne!(&ct[..n], &pt[..]);
            }
            assert_eq!(&*k.decrypt(&ct, "t").unwrap(), &pt);
        }
    }

    #[test]
    fn known_vector() {
        // AES-128-CBC, key "0123456789abcdef", IV "cephsageyudagreg", plaintext "hello",
        // computed independently with `openssl enc -aes-128-cbc -K ... -iv ...`.
        let ct = key().encrypt(b"hello");
        assert_eq!(hex::encode(ct), "718279d8e0f1a6bda27507338d6e0625");
    }

    #[test]
    fn envelope_magic_and_layout() {
        let k = key();
        let mut out = Vec::new();
        k.encode_encrypt(b"payload", &mut out);
        let len = u32::from_le_bytes(out[..4].try_into().unwrap()) as usize;
        assert_eq!(len, out.len() - 4);
        assert_eq!(
            len, 32,
            "9 header + 7 payload = 16 -> one full padding block"
        );
        let pt = k.decrypt(&out[4..], "t").unwrap();
        assert_eq!(pt[0], 1);
        assert_eq!(&pt[1..9], &AUTH_ENC_MAGIC.to_le_bytes());
        assert_eq!(&pt[9..], b"payload");
        let mut d = Decoder::new(&out);
        assert_eq!(&*k.decode_decrypt(&mut d, "t").unwrap(), b"payload");
        assert!(d.is_empty());
    }

    #[test]
    fn wrong_key_is_classified() {
        let ct = key().encrypt_enc_bl(b"some ticket bytes here");
        let other = CryptoKey::new_aes([7; 16], UTime::default());
        let e = other.decrypt_enc_bl(&ct, "ticket").unwrap_err();
        assert!(e.is_wrong_key(), "{e}");
        assert!(e.to_string().contains("wrong key"));
    }

    #[test]
    fn bad_magic_detected() {
        let k = key();
        let ct = k.encrypt(b"\x01not the magic at all");
        assert!(matches!(
            k.decrypt_enc_bl(&ct, "x"),
            Err(CephxError::BadMagic { .. })
        ));
        let ct = k.encrypt(b"\x02");
        assert!(matches!(
            k.decrypt_enc_bl(&ct, "x"),
            Err(CephxError::BadMagic { .. })
        ));
    }

    #[test]
    fn truncated_ciphertext() {
        let k = key();
        assert!(matches!(
            k.decrypt(&[0; 15], "x"),
            Err(CephxError::Decrypt { .. })
        ));
        assert!(matches!(
            k.decrypt(&[], "x"),
            Err(CephxError::Decrypt { .. })
        ));
    }

    #[test]
    fn base64_layout() {
        let k = key();
        let b64 = k.to_base64();
        assert!(b64.starts_with("AQ"));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .unwrap();
        assert_eq!(raw.len(), 28);
        assert_eq!(&raw[..2], &[1, 0]);
        assert_eq!(&raw[2..10], &[1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&raw[10..12], &[16, 0]);
        assert_eq!(&raw[12..], b"0123456789abcdef");
        assert_eq!(CryptoKey::from_base64(&format!("{b64}\n")).unwrap(), k);
        assert_eq!(CryptoKey::from_base64(&format!("  {b64} \r\n")).unwrap(), k);
    }

    #[test]
    fn key_errors_are_typed() {
        assert!(matches!(
            CryptoKey::from_base64("not base64!!"),
            Err(CephxError::BadBase64(_))
        ));
        // 27 bytes of an AES key.
        let mut raw = ceph_encoding::encode_to_vec(&key());
        raw.pop();
        let b = base64::engine::general_purpose::STANDARD.encode(&raw);
        assert!(matches!(
            CryptoKey::from_base64(&b),
            Err(CephxError::BadKeyLength {
                expected: 28,
                found: 27,
                ..
            })
        ));
        // type 2
        let mut raw = ceph_encoding::encode_to_vec(&key());
        raw[0] = 2;
        let b = base64::engine::general_purpose::STANDARD.encode(&raw);
        assert!(matches!(
            CryptoKey::from_base64(&b),
            Err(CephxError::UnknownCryptoType(2))
        ));
        // AES with a 15-byte secret (declared length)
        let mut raw = ceph_encoding::encode_to_vec(&key());
        raw[10] = 15;
        raw.pop();
        raw.push(0);
        let b = base64::engine::general_purpose::STANDARD.encode(&raw);
        let e = CryptoKey::from_base64(&b).unwrap_err();
        assert!(e.is_bad_key_material(), "{e}");
    }

    #[test]
    fn secret_file_contents_both_forms() {
        let k = key();
        let direct = format!("{}\n", k.to_base64());
        assert_eq!(CryptoKey::from_secret_file_contents(&direct).unwrap(), k);
        let wrapped = base64::engine::general_purpose::STANDARD.encode(direct.as_bytes());
        assert_eq!(
            CryptoKey::from_secret_file_contents(format!("{wrapped}\n")).unwrap(),
            k
        );
        let wrapped = base64::engine::general_purpose::STANDARD.encode(k.to_base64());
        assert_eq!(CryptoKey::from_secret_file_contents(&wrapped).unwrap(), k);
        assert!(CryptoKey::from_secret_file_contents("garbage").is_err());
    }

    #[test]
    fn debug_redacts() {
        let s = format!("{:?}", key());
        assert!(s.contains("redacted"));
        assert!(!s.contains("0123456789abcdef"));
        assert!(!s.contains("48, 49"));
    }

    #[test]
    fn none_key_decodes_from_wire() {
        let bytes = [0u8; 12];
        let k: CryptoKey = ceph_encoding::decode_exact(&bytes).unwrap();
        assert_eq!(k.crypto_type(), CryptoType::NONE);
        assert!(k.secret().is_empty());
        assert_eq!(ceph_encoding::encode_to_vec(&k), bytes);
        // ...but never as user key material.
        assert!(CryptoKey::from_encoded(&bytes).is_err());
    }
}
