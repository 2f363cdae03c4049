//! Incremental backup and restore with export-diff / import-diff, as backup tools do
//! it with librbd, with the library alone:
//!
//! ```text
//! rbd snap create POOL/vol@b1;  rbd export-diff POOL/vol@b1 full.diff          # full
//! ... the volume changes ...
//! rbd snap create POOL/vol@b2;  rbd export-diff --from-snap b1 POOL/vol@b2 incr.diff
//! rbd create POOL/copy --size ...; rbd import-diff full.diff POOL/copy          # restore
//! rbd import-diff incr.diff POOL/copy
//! ```
//!
//! The diff files are the `rbd diff v1` stream librbd writes and reads, so either tool
//! can restore what the other backed up. The incremental file holds only what changed
//! between the two snapshots (its size is printed). After the restore the copy must read
//! exactly as `vol@b2`, and carry the snapshots `b1` and `b2` that import-diff creates;
//! otherwise the program exits non-zero. Images and files are removed at the end.
//!
//! The cluster comes from `CEPH_CONF` / `CEPH_KEYRING` (and `CEPH_ARGS`), as for the
//! tools; `CEPH_POOL` names the pool (default `rbd`).
//!
//! ```sh
//! CEPH_CONF=/tmp/ceph-rs-cluster/ceph.conf \
//! CEPH_KEYRING=/tmp/ceph-rs-cluster/ceph.client.admin.keyring \
//!     cargo run -p ceph-examples --example incremental_backup
//! ```

use ceph_examples::pattern;
use ceph_rados::{CommonArgs, Rados};
use ceph_rbd::{CreateOptions, DiffFormat, Rbd};
use std::path::{Path, PathBuf};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const MIB: u64 = 1 << 20;

#[tokio::main]
async fn main() -> Res<()> {
    let pool = std::env::var("CEPH_POOL").unwrap_or_else(|_| "rbd".into());
    let rados = Rados::connect(CommonArgs::from_env()?.to_config()?).await?;
    let rbd = Rbd::open_pool(&rados, &pool).await?;
    let tag = std::process::id();
    let (vol, copy) = (format!("backup-src-{tag}"), format!("backup-copy-{tag}"));
    let dir = std::env::temp_dir();
    let full = dir.join(format!("{vol}-b1.diff"));
    let incr = dir.join(format!("{vol}-b1-b2.diff"));
    let r = flow(&rbd, &vol, &copy, &full, &incr).await;
    ceph_examples::remove_images(&rbd, &[&copy, &vol]).await;
    let _ = std::fs::remove_file(&full);
    let _ = std::fs::remove_file(&incr);
    r
}

async fn flow(rbd: &Rbd, vol: &str, copy: &str, full: &Path, incr: &PathBuf) -> Res<()> {
    let size = 32 * MIB;
    rbd.create(vol, size, &CreateOptions::default()).await?;
    let img = rbd.open(vol).await?;
    img.write(0, pattern(1, 5 * MIB as usize)).await?;
    img.write(20 * MIB, pattern(2, MIB as usize)).await?;
    img.snap_create("b1").await?;

    // full backup: everything up to b1
    let at_b1 = rbd.open_snapshot(vol, "b1").await?;
    let mut f = tokio::fs::File::create(full).await?;
    at_b1.export_diff(None, &mut f).await?;
    at_b1.close().await?;
    println!(
        "full backup {}: {} bytes",
        full.display(),
        std::fs::metadata(full)?.len()
    );

    // the volume changes a little: one overwrite, one discard
    img.write(3 * MIB, pattern(3, 256 << 10)).await?;
    img.discard(20 * MIB, MIB).await?;
    img.snap_create("b2").await?;

    // incremental backup: only what changed between b1 and b2
    let at_b2 = rbd.open_snapshot(vol, "b2").await?;
    let mut f = tokio::fs::File::create(incr).await?;
    at_b2.export_diff(Some("b1"), &mut f).await?;
    let incr_len = std::fs::metadata(incr)?.len();
    println!("incremental backup {}: {incr_len} bytes", incr.display());
    if incr_len > 2 * MIB {
        return Err("the incremental backup holds more than what changed".into());
    }

    // restore into a new image: the full stream, then the incremental one
    rbd.create(copy, size, &CreateOptions::default()).await?;
    let restored = rbd.open(copy).await?;
    for file in [full, incr.as_path()] {
        let mut r = tokio::fs::File::open(file).await?;
        restored.apply_diff(DiffFormat::V1, &mut r).await?;
    }
    let names: Vec<String> = restored
        .snapshots()
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    if names != ["b1", "b2"] {
        return Err(format!("{copy} has snapshots {names:?}, expected b1 and b2").into());
    }
    let want = at_b2.read(0, size).await?;
    if restored.read(0, size).await? != want {
        return Err(format!("{copy} does not read as {vol}@b2").into());
    }
    println!("{copy} restored: reads exactly as {vol}@b2, snapshots {names:?}");
    at_b2.close().await?;
    restored.close().await?;
    img.close().await?;
    Ok(())
}
