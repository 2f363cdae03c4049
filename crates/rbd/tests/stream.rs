//! The streaming handles on a real image: tokio `AsyncRead/AsyncWrite/AsyncSeek`
//! ([`ImageStream`]) and `std::io` ([`BlockingCursor`], `read_at`/`write_at`), checked
//! against librbd's `rbd export` of the same image.

mod common;

use bytes::Bytes;
use ceph_rbd::{BlockingImage, CreateOptions, ImageStream};
use common::*;
use std::io::{Read, Seek, SeekFrom, Write};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

const SIZE: u64 = 12 << 20;

#[test]
fn async_and_blocking_streams_read_and_write_the_image() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (pool, img, mut want) = rt.block_on(async {
        let rados = connect().await;
        let pool = TestPool::new(&rados, "stream").await;
        pool.rbd
            .create("s", SIZE, &CreateOptions::default())
            .await
            .unwrap();
        let img = pool.rbd.open("s").await.unwrap();
        let mut want = vec![0u8; SIZE as usize];
        let mut rng = Rng(seed());

        // tokio::io::copy from a reader into the stream (many 8 KiB writes across objects)
        let data = rng.bytes(5 << 20);
        let mut s = ImageStream::new(img.clone());
        s.seek(SeekFrom::Start(3 << 20)).await.unwrap();
        let n = tokio::io::copy(&mut &data[..], &mut s).await.unwrap();
        assert_eq!(n, data.len() as u64);
        s.flush().await.unwrap();
        want[3 << 20..8 << 20].copy_from_slice(&data);
        assert_eq!(s.position(), 8 << 20);

        // zero-copy Bytes write, seek from the end, read back through AsyncRead
        let tail = Bytes::from(rng.bytes(4096));
        assert_eq!(s.seek(SeekFrom::End(-4096)).await.unwrap(), SIZE - 4096);
        s.write_bytes(tail.clone()).await.unwrap();
        want[(SIZE - 4096) as usize..].copy_from_slice(&tail);
        // at the end: EOF for reads, ENOSPC for writes
        let mut b = [0u8; 16];
        assert_eq!(s.read(&mut b).await.unwrap(), 0);
        let e = s.write_all(b"x").await.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28));

        s.seek(SeekFrom::Start(0)).await.unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.unwrap();
        assert_eq!(all.len() as u64, SIZE);
        assert!(all == want, "read_to_end differs");
        (pool, img, want)
    });

    // blocking: pread/pwrite and a std::io cursor, from a plain thread
    let b = BlockingImage::new(img.clone(), rt.handle().clone());
    let mut rng = Rng(seed() ^ 0x55);
    let chunk = rng.bytes(100_000);
    assert_eq!(b.write_at(&chunk, 1_000_001).unwrap(), chunk.len());
    want[1_000_001..1_000_001 + chunk.len()].copy_from_slice(&chunk);
    let mut back = vec![0u8; chunk.len()];
    assert_eq!(b.read_at(&mut back, 1_000_001).unwrap(), chunk.len());
    assert_eq!(back, chunk);
    let mut c = b.cursor();
    c.seek(SeekFrom::Start(9 << 20)).unwrap();
    let more = rng.bytes(70_000);
    c.write_all(&more).unwrap();
    c.flush().unwrap();
    want[9 << 20..(9 << 20) + more.len()].copy_from_slice(&more);
    c.seek(SeekFrom::End(-10)).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert_eq!(&rest[..], &want[want.len() - 10..]);
    assert_eq!(
        b.write_at(b"xy", SIZE - 1).unwrap_err().raw_os_error(),
        Some(28)
    );

    // librbd sees what the streams wrote
    let exported = rbd_export(&pool.name, "s");
    assert!(exported == want, "rbd export differs");
    rt.block_on(async {
        img.close().await.unwrap();
        pool.cleanup().await;
    });
}
