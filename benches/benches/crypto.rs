//! AES-128-GCM seal/open at the sizes the data path sees (a 4 KiB block, a 4 MiB object),
//! the primitive under msgr2 secure mode, with both backends ceph-msgr2 can use: RustCrypto
//! `aes-gcm` (feature `ring` off) and `ring` (the default). No cluster needed.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce, Tag};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn gcm(c: &mut Criterion) {
    let mut g = c.benchmark_group("aes128gcm_rustcrypto");
    let cipher = Aes128Gcm::new_from_slice(&[7u8; 16]).unwrap();
    let nonce = Nonce::from([3u8; 12]);
    for size in [4096usize, 4 << 20] {
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0xa5u8; size];
        g.bench_with_input(BenchmarkId::new("seal", size), &size, |b, _| {
            b.iter(|| {
                cipher
                    .encrypt_in_place_detached(&nonce, b"", &mut buf)
                    .unwrap()
            })
        });
        let mut buf = vec![0xa5u8; size];
        let tag: Tag = cipher
            .encrypt_in_place_detached(&nonce, b"", &mut buf)
            .unwrap();
        let ct = buf.clone();
        g.bench_with_input(BenchmarkId::new("open", size), &size, |b, _| {
            b.iter(|| {
                buf.copy_from_slice(&ct);
                cipher
                    .decrypt_in_place_detached(&nonce, b"", &mut buf, &tag)
                    .unwrap()
            })
        });
    }
    g.finish();

    use ring::aead::{Aad, LessSafeKey, Nonce as RNonce, UnboundKey, AES_128_GCM};
    let mut g = c.benchmark_group("aes128gcm_ring");
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[7u8; 16]).unwrap());
    let n = || RNonce::assume_unique_for_key([3u8; 12]);
    for size in [4096usize, 4 << 20] {
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0xa5u8; size];
        g.bench_with_input(BenchmarkId::new("seal", size), &size, |b, _| {
            b.iter(|| {
                key.seal_in_place_separate_tag(n(), Aad::empty(), &mut buf)
                    .unwrap()
            })
        });
        let mut sealed = vec![0xa5u8; size];
        key.seal_in_place_append_tag(n(), Aad::empty(), &mut sealed)
            .unwrap();
        let mut buf = sealed.clone();
        g.bench_with_input(BenchmarkId::new("open", size), &size, |b, _| {
            b.iter(|| {
                buf.copy_from_slice(&sealed);
                key.open_in_place(n(), Aad::empty(), &mut buf)
                    .unwrap()
                    .len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, gcm);
criterion_main!(benches);
