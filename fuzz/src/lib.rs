//! Helpers shared by the fuzz targets: a byte-stream reader for structured inputs, and
//! "wire fix-ups" that turn fuzzer bytes into streams whose checksums and encryption are
//! right, so the fuzzer reaches the parsers behind them instead of stopping at a crc or a GCM
//! tag. The fix-ups follow the msgr2.1 wire format (docs/ceph-protocol-map.md §2.3); they are
//! input generators only — a mistake here costs coverage, never a false crash.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce};
use ceph_encoding::ceph_crc32c;

/// The connection secret every secure-mode target uses (key 0..16, client rx nonce 16..28,
/// client tx nonce 28..40).
pub const SECRET: [u8; 64] = {
    let mut s = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        s[i] = i as u8;
        i += 1;
    }
    s
};

const PREAMBLE: usize = 32;
const INLINE: usize = 48;
const EPI_CRC: usize = 13;
const EPI_SECURE: usize = 16;

/// Reads a fuzzer input front to back; every read past the end yields zeros / empty slices.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Wrap `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }
    /// Bytes left.
    pub fn len(&self) -> usize {
        self.data.len()
    }
    /// Nothing left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(usize::MAX)
    }
    /// One byte (0 at the end).
    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    /// Little-endian u16.
    pub fn u16(&mut self) -> u16 {
        let b = self.take(2);
        let mut a = [0u8; 2];
        a[..b.len()].copy_from_slice(b);
        u16::from_le_bytes(a)
    }
    /// Little-endian u32.
    pub fn u32(&mut self) -> u32 {
        let b = self.take(4);
        let mut a = [0u8; 4];
        a[..b.len()].copy_from_slice(b);
        u32::from_le_bytes(a)
    }
    /// Little-endian u64.
    pub fn u64(&mut self) -> u64 {
        let b = self.take(8);
        let mut a = [0u8; 8];
        a[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(a)
    }
    /// A u16-length-prefixed slice.
    pub fn chunk(&mut self) -> &'a [u8] {
        let n = self.u16() as usize;
        self.take(n)
    }
}

/// Deterministic uneven chunk sizes (1..=max) for feeding a stream, seeded by the input.
pub struct Chunker {
    state: u32,
    max: usize,
}

impl Chunker {
    /// Chunk sizes from `seed`; `seed == 0` means "everything at once".
    pub fn new(seed: u8) -> Self {
        Chunker {
            state: seed as u32,
            max: if seed == 0 {
                usize::MAX
            } else {
                1 + (seed as usize % 64) * 9
            },
        }
    }
    /// Split `data` into chunks.
    pub fn split<'a>(&mut self, data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            self.state = self.state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let n = if self.max == usize::MAX {
                rest.len()
            } else {
                1 + (self.state >> 8) as usize % self.max
            };
            let (a, b) = rest.split_at(n.min(rest.len()));
            out.push(a);
            rest = b;
        }
        out
    }
}

fn le32(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize
}

/// Segment lengths and count declared by a 32-byte preamble (count clamped to 1..=4).
pub fn preamble_lens(p: &[u8]) -> (usize, [usize; 4]) {
    let nsegs = (p[1] as usize).clamp(1, 4);
    let mut lens = [0usize; 4];
    for (i, l) in lens.iter_mut().enumerate() {
        *l = le32(p, 2 + 6 * i);
    }
    (nsegs, lens)
}

/// Recompute the preamble crc of `p` (32 bytes).
pub fn fix_preamble_crc(p: &mut [u8]) {
    let crc = ceph_crc32c(0, &p[..28]);
    p[28..32].copy_from_slice(&crc.to_le_bytes());
}

/// Walk `stream` as crc-mode rev1 frames from `off` and rewrite every checksum (preamble,
/// segment 0, epilogue) to the right value. Stops at the first frame that does not fit.
pub fn crc_fixup(stream: &mut [u8], mut off: usize) {
    while off + PREAMBLE <= stream.len() {
        fix_preamble_crc(&mut stream[off..off + PREAMBLE]);
        let (nsegs, lens) = preamble_lens(&stream[off..off + PREAMBLE]);
        let mut p = off + PREAMBLE;
        if lens[0] > 0 {
            let Some(end) = p.checked_add(lens[0]).filter(|e| e + 4 <= stream.len()) else {
                return;
            };
            let crc = ceph_crc32c(u32::MAX, &stream[p..end]);
            stream[end..end + 4].copy_from_slice(&crc.to_le_bytes());
            p = end + 4;
        }
        if nsegs > 1 {
            let mut crcs = [0u32; 3];
            for i in 1..nsegs {
                let Some(end) = p.checked_add(lens[i]).filter(|e| *e <= stream.len()) else {
                    return;
                };
                crcs[i - 1] = ceph_crc32c(u32::MAX, &stream[p..end]);
                p = end;
            }
            if p + EPI_CRC > stream.len() {
                return;
            }
            for (i, c) in crcs.iter().enumerate().take(nsegs - 1) {
                let o = p + 1 + 4 * i;
                stream[o..o + 4].copy_from_slice(&c.to_le_bytes());
            }
            p += EPI_CRC;
        }
        off = p;
    }
}

/// One frame as read leniently from crc-mode wire bytes.
#[derive(Debug, Clone)]
pub struct LooseFrame<'a> {
    /// Tag byte.
    pub tag: u8,
    /// Segments (1..=4), each cut to what the input holds.
    pub segments: Vec<&'a [u8]>,
    /// Late status byte of the epilogue (0x0e when absent).
    pub late_status: u8,
}

/// Split `stream` into frames the way a crc-mode reader would, ignoring every checksum and
/// cutting lengths to what is there. Used to turn fuzzer bytes into frames to re-encode.
pub fn loose_frames(stream: &[u8]) -> Vec<LooseFrame<'_>> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + PREAMBLE <= stream.len() {
        let (nsegs, lens) = preamble_lens(&stream[off..off + PREAMBLE]);
        let tag = stream[off];
        let mut p = off + PREAMBLE;
        let mut segments = Vec::with_capacity(nsegs);
        let cut = |p: usize, n: usize| p.saturating_add(n).min(stream.len());
        let e = cut(p, lens[0]);
        segments.push(&stream[p..e]);
        p = if lens[0] > 0 { cut(e, 4) } else { e };
        let mut late_status = 0x0e;
        if nsegs > 1 {
            for &len in &lens[1..nsegs] {
                let e = cut(p, len);
                segments.push(&stream[p..e]);
                p = e;
            }
            late_status = stream.get(p).copied().unwrap_or(0x0e);
            p = cut(p, EPI_CRC);
        }
        out.push(LooseFrame {
            tag,
            segments,
            late_status,
        });
        off = p;
    }
    out
}

/// One direction of msgr2 secure mode as a sender: AES-128-GCM with the rev1 nonce rule
/// (64-bit little-endian counter in bytes 4..12, +1 per chunk).
pub struct GcmTx {
    cipher: Aes128Gcm,
    nonce: [u8; 12],
}

impl GcmTx {
    /// The sender whose chunks a reader built with `SecureKeys::from_connection_secret(secret)`
    /// decrypts (i.e. the server's tx: nonce = secret[16..28]).
    pub fn server_tx(secret: &[u8]) -> Self {
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&secret[16..28]);
        GcmTx {
            cipher: Aes128Gcm::new_from_slice(&secret[..16]).expect("16-byte key"),
            nonce,
        }
    }

    /// Encrypt one chunk and append `ciphertext ‖ tag` to `out`.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&Nonce::from(self.nonce), b"", &mut out[start..])
            .expect("bounded chunk");
        out.extend_from_slice(&tag);
        let mut c = [0u8; 8];
        c.copy_from_slice(&self.nonce[4..12]);
        self.nonce[4..12].copy_from_slice(&u64::from_le_bytes(c).wrapping_add(1).to_le_bytes());
    }
}

fn pad16(n: usize) -> usize {
    n.div_ceil(16).saturating_mul(16)
}

/// Turn plaintext into secure-mode wire bytes chunk by chunk, the way a secure reader will
/// cut it: 80 bytes (preamble + inline area) → chunk A; then from the preamble's declared
/// lengths, chunk B (rest of segment 0, padded) and chunk C (segments 1.. padded + epilogue).
/// The plaintext supplies every byte, padding and epilogue included; when `fix_crc`, each
/// preamble crc is made right first. A chunk the input cannot fill is sealed short (the
/// reader will then wait for more bytes or fail authentication).
pub fn secure_encode(plain: &[u8], secret: &[u8], fix_crc: bool) -> Vec<u8> {
    let mut tx = GcmTx::server_tx(secret);
    let mut out = Vec::with_capacity(plain.len() + plain.len() / 4 + 64);
    let mut inp = Input::new(plain);
    while !inp.is_empty() {
        let mut a = [0u8; PREAMBLE + INLINE];
        let got = inp.take(PREAMBLE + INLINE);
        a[..got.len()].copy_from_slice(got);
        if fix_crc {
            fix_preamble_crc(&mut a[..PREAMBLE]);
        }
        tx.seal(&a, &mut out);
        let (nsegs, lens) = preamble_lens(&a[..PREAMBLE]);
        if lens[0] > INLINE {
            let b = inp.take(pad16(lens[0] - INLINE));
            tx.seal(b, &mut out);
        }
        if nsegs > 1 {
            let c_len = lens[1..nsegs]
                .iter()
                .fold(EPI_SECURE, |acc, l| acc.saturating_add(pad16(*l)));
            let c = inp.take(c_len);
            tx.seal(c, &mut out);
        }
    }
    out
}

/// The 41-byte `ceph_msg_header2` for a MESSAGE frame of type `ty` with sequence `seq`.
pub fn header2(seq: u64, ty: u16, version: u16, compat: u16) -> [u8; 41] {
    let mut h = [0u8; 41];
    h[0..8].copy_from_slice(&seq.to_le_bytes());
    h[16..18].copy_from_slice(&ty.to_le_bytes());
    h[20..22].copy_from_slice(&version.to_le_bytes());
    h[37..39].copy_from_slice(&compat.to_le_bytes());
    h
}
