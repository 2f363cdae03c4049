//! The CSI snapshot and clone flow with the library alone: a volume snapshot
//! (`CreateSnapshot`) and a new volume made from it (`CreateVolume` with a snapshot as
//! its data source), as ceph-csi does it with librbd:
//!
//! ```text
//! rbd create POOL/vol --size 64M                 # the source volume, with data
//! rbd snap create POOL/vol@snap                  # CreateSnapshot
//! rbd clone POOL/vol@snap POOL/restored          # CreateVolume from the snapshot
//! rbd flatten POOL/restored                      # detach it (ceph-csi does past a depth)
//! rbd snap rm POOL/vol@snap; rbd rm ...          # DeleteSnapshot, DeleteVolume
//! ```
//!
//! Clone v2 needs no protected snapshot; with clone v1 the snapshot would be protected
//! first. The program checks that the clone shows the snapshot's bytes (not the source's
//! later writes), before and after the flatten, and exits non-zero otherwise. Every image
//! it made is removed at the end.
//!
//! The cluster comes from `CEPH_CONF` / `CEPH_KEYRING` (and `CEPH_ARGS`), as for the
//! tools; `CEPH_POOL` names the pool (default `rbd`).
//!
//! ```sh
//! CEPH_CONF=/tmp/ceph-rs-cluster/ceph.conf \
//! CEPH_KEYRING=/tmp/ceph-rs-cluster/ceph.client.admin.keyring \
//!     cargo run -p ceph-examples --example snapshot_clone
//! ```

use bytes::Bytes;
use ceph_examples::pattern;
use ceph_rados::{CommonArgs, Rados};
use ceph_rbd::{CloneFormat, CloneOptions, CreateOptions, Rbd};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Res<()> {
    let pool = std::env::var("CEPH_POOL").unwrap_or_else(|_| "rbd".into());
    let rados = Rados::connect(CommonArgs::from_env()?.to_config()?).await?;
    let rbd = Rbd::open_pool(&rados, &pool).await?;
    let tag = std::process::id();
    let (vol, restored) = (format!("vol-{tag}"), format!("restored-{tag}"));
    let r = flow(&rbd, &vol, &restored).await;
    // clean up whatever exists, whatever happened
    ceph_examples::remove_images(&rbd, &[&restored, &vol]).await;
    r
}

async fn flow(rbd: &Rbd, vol: &str, restored: &str) -> Res<()> {
    const MIB: u64 = 1 << 20;
    rbd.create(vol, 64 * MIB, &CreateOptions::default()).await?;
    let src = rbd.open(vol).await?;
    // data in two objects, one write across their boundary
    let before = pattern(1, 6 * MIB as usize);
    src.write(MIB, before.clone()).await?;
    src.flush().await?;

    // CreateSnapshot
    src.snap_create("snap").await?;
    println!("{vol}@snap created");
    // the source goes on changing after the snapshot
    src.write(2 * MIB, pattern(9, MIB as usize)).await?;

    // CreateVolume from the snapshot: a v2 clone, no protection needed
    let opts = CloneOptions {
        format: CloneFormat::V2,
        ..Default::default()
    };
    rbd.clone_image(vol, "snap", rbd, restored, &opts).await?;
    let clone = rbd.open(restored).await?;
    let check = |got: Bytes, when: &str| -> Res<()> {
        if got != before {
            return Err(format!("{restored} does not show {vol}@snap's data {when}").into());
        }
        println!("{restored} reads {vol}@snap's bytes {when}");
        Ok(())
    };
    check(
        clone.read(MIB, before.len() as u64).await?,
        "through its parent",
    )?;
    let kids = rbd.children(vol, "snap").await?;
    println!(
        "children of {vol}@snap: {:?}",
        kids.iter().map(|k| &k.image).collect::<Vec<_>>()
    );

    // the clone is a volume of its own: writes land in it, not in the parent
    clone.write(0, pattern(5, 4096)).await?;
    clone
        .flatten(|done, total| println!("flatten {done}/{total}"))
        .await?;
    check(
        clone.read(MIB, before.len() as u64).await?,
        "after the flatten",
    )?;
    if !rbd.children(vol, "snap").await?.is_empty() {
        return Err("the flattened clone is still a child of the snapshot".into());
    }
    clone.close().await?;

    // DeleteSnapshot: nothing depends on it any more
    src.snap_remove("snap").await?;
    src.close().await?;
    println!("{vol}@snap removed; the flow is complete");
    Ok(())
}
