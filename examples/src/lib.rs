//! Examples live beside this crate: `cargo run -p ceph-examples --example kubernetes_volume`.

use bytes::Bytes;
use ceph_rbd::Rbd;

/// `len` bytes of a recognisable pattern (distinct per `seed`), for examples that
/// write data and check it back.
pub fn pattern(seed: u8, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

/// Remove the images an example made, whatever state it stopped in: each one's
/// snapshots first, then the image; errors are ignored (an image may not exist).
pub async fn remove_images(rbd: &Rbd, names: &[&str]) {
    for name in names {
        if let Ok(img) = rbd.open(name).await {
            for s in img.snapshots().await.unwrap_or_default() {
                let _ = img.snap_remove(&s.name).await;
            }
            let _ = img.close().await;
        }
        let _ = rbd.remove(name).await;
    }
}
