//! Requests issued while a header refresh is running wait for the new header: after a
//! resize, concurrent writes past the old size must all succeed (the refresh race found
//! by the CLI's import from stdin).

mod common;

use bytes::Bytes;
use ceph_rbd::CreateOptions;
use common::*;

#[test]
fn writes_after_resize_see_the_new_size() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let rados = connect().await;
        let pool = TestPool::new(&rados, "race").await;
        for round in 0..5 {
            let name = format!("img{round}");
            pool.rbd
                .create(&name, 4 << 20, &CreateOptions::default())
                .await
                .unwrap();
            let img = pool.rbd.open(&name).await.unwrap();
            img.resize(8 << 20, false).await.unwrap();
            let mut set = tokio::task::JoinSet::new();
            for i in 0..10u64 {
                let img = img.clone();
                set.spawn(async move {
                    img.write((4 << 20) + i * 4096 * 37, Bytes::from(vec![i as u8; 4096]))
                        .await
                });
            }
            while let Some(r) = set.join_next().await {
                r.unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: write after resize failed: {e}"));
            }
            img.close().await.unwrap();
        }
        pool.cleanup().await;
    });
}
