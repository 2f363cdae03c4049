//! Volume metadata, the watcher check and deletion through the trash, as a CSI driver
//! (ceph-csi) uses them, with the library alone:
//!
//! ```text
//! rbd create POOL/csi-vol-<uuid> --size 1G
//! rbd image-meta set POOL/csi-vol-<uuid> csi.volname <pvc>     # CreateVolume
//! rbd status POOL/csi-vol-<uuid>                              # no watchers before delete
//! rbd trash mv POOL/csi-vol-<uuid>                            # DeleteVolume ...
//! rbd trash remove POOL/<image id>                            # ... then purge it
//! ```
//!
//! The cluster comes from `CEPH_CONF` / `CEPH_KEYRING` (and `CEPH_ARGS`), as for the
//! tools; `CEPH_POOL` names the pool (default `rbd`). It uses the blocking facade
//! ([`ceph_rbd::BlockingRbd`]), the shape a driver written without async code takes.
//!
//! ```sh
//! CEPH_CONF=/tmp/ceph-cli/ceph.conf CEPH_KEYRING=/tmp/ceph-cli/ceph.client.admin.keyring \
//!     cargo run -p ceph-examples --example csi_metadata_trash
//! ```

use ceph_rados::{CommonArgs, Rados};
use ceph_rbd::{BlockingRbd, CreateOptions, Rbd};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Runtime::new()?;
    let pool = std::env::var("CEPH_POOL").unwrap_or_else(|_| "rbd".into());
    let cfg = CommonArgs::from_env()?.to_config()?;
    let rados = rt.block_on(Rados::connect(cfg))?;
    let rbd = BlockingRbd::new(
        rt.block_on(Rbd::open_pool(&rados, &pool))?,
        rt.handle().clone(),
    );
    let name = format!("csi-vol-example-{}", std::process::id());

    // CreateVolume: the image, then who it belongs to
    rbd.create(&name, 1 << 30, &CreateOptions::default())?;
    rbd.metadata_set(&name, "csi.volname", b"pvc-example")?;
    rbd.metadata_set(&name, "csi.ceph.com/cluster/name", b"example")?;
    for (k, v) in rbd.metadata_list(&name)? {
        println!("{name}: {k} = {}", String::from_utf8_lossy(&v));
    }

    // DeleteVolume: refuse while the volume is in use (mapped or open somewhere) ...
    let watchers = rbd.watchers(&name)?;
    if !watchers.is_empty() {
        return Err(format!("{name} is in use by {} client(s)", watchers.len()).into());
    }
    // ... else move it to the trash (instant, whatever its size) and remove it there
    let id = rbd.trash_move(&name, Duration::ZERO)?;
    println!("{name} moved to the trash as {id}");
    for t in rbd.trash_list()? {
        println!("trash: {} {} ({})", t.id, t.name, t.source.name());
    }
    rbd.trash_remove(&id, false)?;
    println!("{id} removed");
    Ok(())
}
