//! The Kubernetes volume flow with the library alone (issue 4): connect as a user whose
//! key is passed the way a Kubernetes Secret holds it (the bare base64 secret), create
//! an image, list it, print its info, write and read back.
//!
//! ```text
//! CEPH_CONF=/tmp/ceph-rs-cluster/ceph.conf CEPH_USER=kubernetes CEPH_KEY=$(ceph auth print-key client.kubernetes) \
//!   cargo run -p ceph-rbd --example k8s_volume -- kubernetes_data rbd_volume_data.img
//! ```

use bytes::Bytes;
use ceph_rbd::{CreateOptions, Rbd};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pool = args.next().unwrap_or_else(|| "kubernetes_data".into());
    let image = args.next().unwrap_or_else(|| "rbd_volume_data.img".into());
    let conf = std::env::var("CEPH_CONF").ok();
    let user = std::env::var("CEPH_USER").unwrap_or_else(|_| "kubernetes".into());
    let key = std::env::var("CEPH_KEY")
        .map_err(|_| "set CEPH_KEY to the user's secret (ceph auth print-key)")?;

    let cfg = ceph_rados::CommonArgs {
        conf: conf.map(Into::into),
        name: Some(ceph_encoding::EntityName::client(user)),
        key: Some(key),
        ..Default::default()
    }
    .to_config()?;
    let rados = ceph_rados::Rados::connect(cfg).await?;
    let rbd = Rbd::open_pool(&rados, &pool).await?;

    if !rbd.list().await?.iter().any(|i| i.name == image) {
        rbd.create(&image, 10 << 30, &CreateOptions::default())
            .await?;
    }
    for i in rbd.list().await? {
        println!("{}", i.name);
    }
    let img = rbd.open(&image).await?;
    println!("{}", img.info().await?.to_json_string());
    img.write(1 << 20, Bytes::from_static(b"hello from ceph-rbd"))
        .await?;
    let back = img.read(1 << 20, 19).await?;
    println!("read back: {}", String::from_utf8_lossy(&back));
    img.close().await?;
    Ok(())
}
