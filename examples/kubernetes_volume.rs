//! The Kubernetes-volume flow with the library alone (no librados, no librbd, no CLI):
//!
//! ```text
//! rbd create --image-feature layering kubernetes_data/rbd_volume_data.img --size 10G
//! rbd -p kubernetes_data ls
//! rbd info kubernetes_data/rbd_volume_data.img
//! ... then the node writes to the volume and reads its data back
//! ```
//!
//! Configuration comes from the environment, the way a CSI plugin gets it:
//!
//! | variable          | meaning                                                         |
//! |-------------------|-----------------------------------------------------------------|
//! | `CEPH_MONITORS`   | comma list of monitors: `v2:10.0.0.1:3300,10.0.0.2`             |
//! | `CEPH_USER`       | the Ceph user without `client.` (`kubernetes`)                  |
//! | `CEPH_SECRET_B64` | base64 of the key string, as a Kubernetes Secret stores it      |
//! | `CEPH_POOL`       | pool (default `kubernetes_data`)                                |
//! | `IMAGE`           | image name (default `rbd_volume_data.img`)                      |
//! | `SIZE`            | image size, `rbd --size` syntax (default `10G`; bare number MiB) |
//!
//! The user needs `mon 'profile rbd' osd 'profile rbd pool=<pool>'`. Creating is
//! idempotent: an existing image is reused. The program writes a recognisable pattern at
//! several offsets (one across an object boundary, one at the very end), reads it back,
//! and exits non-zero if anything differs.
//!
//! ```sh
//! CEPH_MONITORS=v2:127.0.0.1:3300 CEPH_USER=kubernetes \
//! CEPH_SECRET_B64=$(ceph auth print-key client.kubernetes | base64 -w0) \
//!     cargo run -p ceph-examples --example kubernetes_volume
//! ```

use bytes::Bytes;
use ceph_cephx::CryptoKey;
use ceph_encoding::EntityName;
use ceph_rados::config::{parse_mon_host, KeySource};
use ceph_rados::{ClientConfig, Rados};
use ceph_rbd::{features, CreateOptions, Image, Rbd};
use std::time::Duration;

/// A failure: what was being done, and the errno to exit with.
struct Failed(String, i32);

fn fail(what: impl Into<String>, errno: i32) -> Failed {
    Failed(what.into(), errno)
}

fn rbd_err(what: &str) -> impl Fn(ceph_rbd::RbdError) -> Failed + '_ {
    move |e| {
        let n = e.errno().0;
        let hint = if n == 1 || n == 13 {
            " (permission denied: check the user's caps, `profile rbd pool=<pool>`)"
        } else {
            ""
        };
        fail(format!("{what}: {e}{hint}"), n)
    }
}

fn var(name: &str) -> Result<String, Failed> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| fail(format!("environment variable {name} is not set"), 22))
}

fn var_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// `rbd --size` syntax: `10G`, `512M`, `4096K`, `1T`; a bare number is MiB.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.trim_end_matches("iB").trim_end_matches('i') {
        "" => 20,
        "B" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// Ceph's `byte_u_t` (`10 GiB`, `4 MiB`, `1.5 GiB`).
fn human(v: u64) -> String {
    const U: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut i = 0;
    let mut n = v;
    while n >= 1024 && i < 6 {
        n /= 1024;
        i += 1;
    }
    let m = 1u64 << (10 * i);
    if i == 0 || v % m == 0 {
        format!("{n} {}", U[i])
    } else if v / m < 10 {
        format!("{:.1} {}", v as f64 / m as f64, U[i])
    } else {
        format!("{:.0} {}", v as f64 / m as f64, U[i])
    }
}

/// A recognisable block: a text header naming the offset, then a byte pattern derived
/// from it.
fn pattern(off: u64, len: usize) -> Bytes {
    let head = format!("ceph-rs kubernetes volume, offset {off}\n");
    let mut v: Vec<u8> = (0..len)
        .map(|i| (((off as usize + i) * 31 + 7) % 251) as u8)
        .collect();
    let n = head.len().min(len);
    v[..n].copy_from_slice(&head.as_bytes()[..n]);
    Bytes::from(v)
}

#[tokio::main]
async fn main() {
    match run().await {
        Ok(()) => {}
        Err(Failed(msg, errno)) => {
            eprintln!("kubernetes_volume: {msg}");
            std::process::exit(if (1..=255).contains(&errno) { errno } else { 1 });
        }
    }
}

async fn run() -> Result<(), Failed> {
    let monitors = var("CEPH_MONITORS")?;
    let user = var("CEPH_USER")?;
    let user = user.strip_prefix("client.").unwrap_or(&user).to_string();
    let secret = var("CEPH_SECRET_B64")?;
    let pool = var_or("CEPH_POOL", "kubernetes_data");
    let name = var_or("IMAGE", "rbd_volume_data.img");
    let size_text = var_or("SIZE", "10G");
    let size = parse_size(&size_text)
        .filter(|s| *s > 0)
        .ok_or_else(|| fail(format!("SIZE {size_text:?} is not a size like 10G"), 22))?;

    // The Secret holds base64 of the key string; the key string is base64 itself.
    let key = CryptoKey::from_secret_file_contents(secret.trim())
        .map_err(|e| fail(format!("CEPH_SECRET_B64 does not hold a Ceph key: {e}"), 22))?;
    let mon_hosts =
        parse_mon_host(&monitors).map_err(|e| fail(format!("CEPH_MONITORS: {e}"), 22))?;
    let cfg = ClientConfig {
        name: EntityName::client(user.clone()),
        mon_hosts,
        keys: vec![KeySource::Key(key)],
        mount_timeout: Duration::from_secs(30),
        ..Default::default()
    };

    println!("== connect");
    let rados = Rados::connect(cfg).await.map_err(|e| {
        let n = e.errno().0;
        fail(format!("connecting to {monitors} as client.{user}: {e}"), n)
    })?;
    println!(
        "connected to {monitors} as client.{user} (global id {})",
        rados.instance_id()
    );
    let rbd = Rbd::open_pool(&rados, &pool)
        .await
        .map_err(rbd_err(&format!("opening pool {pool}")))?;

    println!("\n== rbd create --image-feature layering {pool}/{name} --size {size_text}");
    let opts = CreateOptions {
        features: Some(features::LAYERING),
        ..Default::default()
    };
    let created = match rbd.create(&name, size, &opts).await {
        Ok(id) => {
            println!("created image {name} (id {id}), {}", human(size));
            true
        }
        Err(e) if e.is_exists() => {
            println!("image {name} already exists: reusing it");
            false
        }
        Err(e) => return Err(rbd_err(&format!("creating {pool}/{name}"))(e)),
    };

    println!("\n== rbd -p {pool} ls");
    let list = rbd
        .list()
        .await
        .map_err(rbd_err(&format!("listing pool {pool}")))?;
    for i in &list {
        println!("{}", i.name);
    }

    let img = rbd
        .open(&name)
        .await
        .map_err(rbd_err(&format!("opening {pool}/{name}")))?;
    let r = use_volume(&img, &pool, &name, created).await;
    let _ = img.close().await;
    r?;
    println!("\ndone: {pool}/{name} holds the data written above");
    Ok(())
}

async fn use_volume(img: &Image, pool: &str, name: &str, created: bool) -> Result<(), Failed> {
    println!("\n== rbd info {pool}/{name}");
    let i = img
        .info()
        .await
        .map_err(rbd_err("reading the image info"))?;
    println!("rbd image '{}':", i.name);
    println!("\tsize {} in {} objects", human(i.size), i.objects);
    println!("\torder {} ({} objects)", i.order, human(i.object_size));
    println!("\tsnapshot_count: {}", i.snapshot_count);
    println!("\tid: {}", i.id);
    println!("\tblock_name_prefix: {}", i.block_name_prefix);
    println!("\tformat: {}", i.format);
    println!("\tfeatures: {}", i.features.join(", "));
    println!("\top_features: {}", i.op_features.join(", "));
    println!("\tflags: {}", i.flags.join(", "));
    println!("\tcreate_timestamp: {}", i.create_timestamp);
    println!("\taccess_timestamp: {}", i.access_timestamp);
    println!("\tmodify_timestamp: {}", i.modify_timestamp);

    // where to write: the start, an unaligned offset, across the first object boundary,
    // the middle, and the last bytes of the image
    let size = i.size;
    let os = i.object_size;
    let mut writes: Vec<(u64, usize)> = vec![
        (0, 4096),
        (1_048_576 + 123, 10_000),
        (os.saturating_sub(2_000), 6_000),
        (size / 2 + 7, 65_536),
        (size.saturating_sub(4_096), 4_096),
    ];
    writes.retain(|(o, l)| o + *l as u64 <= size);
    writes.sort();
    writes.dedup_by(|b, a| b.0 < a.0 + a.1 as u64); // no overlaps

    println!("\n== write");
    for &(off, len) in &writes {
        let objs = (off / os, (off + len as u64 - 1) / os);
        img.write(off, pattern(off, len))
            .await
            .map_err(rbd_err(&format!("writing {len} bytes at {off}")))?;
        let span = if objs.0 == objs.1 {
            format!("object {}", objs.0)
        } else {
            format!(
                "objects {}..={} (crosses an object boundary)",
                objs.0, objs.1
            )
        };
        println!("wrote {len:>6} bytes at offset {off:>12}  [{span}]");
    }
    img.flush().await.map_err(rbd_err("flushing"))?;

    println!("\n== read back and verify");
    let mut bad = 0;
    for &(off, len) in &writes {
        let got = img
            .read(off, len as u64)
            .await
            .map_err(rbd_err(&format!("reading {len} bytes at {off}")))?;
        let ok = got == pattern(off, len);
        if !ok {
            bad += 1;
        }
        println!(
            "read  {len:>6} bytes at offset {off:>12}  {}",
            if ok { "OK" } else { "MISMATCH" }
        );
    }
    // on a new image, a range never written reads as zeros (thin provisioning)
    let mut checked = writes.len();
    if created {
        let hole = writes[0].1 as u64;
        let z = img
            .read(hole, 512)
            .await
            .map_err(rbd_err("reading a hole"))?;
        let zeros = z.iter().all(|b| *b == 0);
        println!(
            "read     512 bytes at offset {hole:>12}  {}",
            if zeros {
                "OK (never written: zeros)"
            } else {
                "MISMATCH (expected zeros)"
            }
        );
        bad += usize::from(!zeros);
        checked += 1;
    }
    if bad > 0 {
        return Err(fail(
            format!("{bad} of {checked} ranges did not read back as written"),
            5,
        ));
    }
    println!("all {checked} ranges verified");
    Ok(())
}
