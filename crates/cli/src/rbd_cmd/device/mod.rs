//! `rbd-rs device map|unmap|list`: an image as a block device without the `rbd` or
//! `nbd` kernel modules, like `rbd device map -t nbd` (rbd-nbd) but through FUSE and a
//! loop device.
//!
//! `map` starts a daemon (this same binary, re-executed with the same arguments and
//! `RBD_RS_DEVICE_DAEMON=1`, in its own process group, stdin closed, stderr to a log
//! file) and waits on a pipe for its first line: `OK /dev/loopN` or `ERR <errno>` and a
//! message. The daemon connects, opens the image (with a header watch unless read-only),
//! refuses when another client watches it (Kubernetes' "still being used"), serves the
//! image as `<run dir>/mnt/<pid>/image` through FUSE, attaches a loop device to that file
//! and records the mapping in `<run dir>/devices/<pid>.json`. It stays until SIGTERM /
//! SIGINT (or `device unmap`), then detaches, waits for requests in flight, flushes and
//! closes the image (releasing the watch at once).
//!
//! The run dir is `/run/rbd-rs` (`RBD_RS_RUN_DIR` overrides it, which is how tests play
//! two nodes on one host). ceph: src/tools/rbd_nbd/rbd-nbd.cc (map, list-mapped,
//! unmap, the `id pool namespace image snap device` table); ceph-csi
//! internal/rbd/rbd_attach.go for the in-use check Kubernetes relies on.

mod daemon;
mod fuse;
mod losetup;

use super::args::{image_spec, Args, SnapPresence, Spec, SpecCheck, Which};
use super::fmt::{Align, Json, TextTable};
use super::{out, Ctx, Fail, R};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the daemon's environment (the re-executed `map`).
const DAEMON_ENV: &str = "RBD_RS_DEVICE_DAEMON";

/// True in the re-executed `map` of a FUSE + loop device (not `--device-type nbd`,
/// whose request loop is `nbd serve`'s and keeps one thread).
pub fn is_fuse_daemon(args: &Args) -> bool {
    std::env::var_os(DAEMON_ENV).is_some()
        && args.pos.len() >= 2
        && args.pos[0] == "device"
        && args.pos[1] == "map"
        && args.get("device-type") != Some("nbd")
}

/// EBUSY: what Kubernetes (ceph-csi) and `rbd` scripts expect for an image in use.
pub const EBUSY: i32 = 16;

/// Where mappings, mount points and logs live.
pub fn run_dir() -> PathBuf {
    std::env::var_os("RBD_RS_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/rbd-rs"))
}

/// One mapping, as recorded by its daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Daemon pid (`rbd device list`'s id for nbd devices is the rbd-nbd pid too).
    pub pid: u32,
    /// Pool, namespace, image, snapshot (empty: none).
    pub spec: Spec,
    /// `/dev/loopN`.
    pub device: String,
    /// The FUSE mount point holding the image file.
    pub mountpoint: String,
    /// Mapped read-only.
    pub read_only: bool,
}

impl Mapping {
    fn to_json(&self) -> String {
        serde_json::json!({
            "pid": self.pid,
            "pool": self.spec.pool,
            "namespace": self.spec.namespace,
            "image": self.spec.image,
            "snap": self.spec.snap,
            "device": self.device,
            "mountpoint": self.mountpoint,
            "read_only": self.read_only,
        })
        .to_string()
    }

    fn from_json(s: &str) -> Option<Mapping> {
        let v: serde_json::Value = serde_json::from_str(s).ok()?;
        let st = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        Some(Mapping {
            pid: v.get("pid")?.as_u64()? as u32,
            spec: Spec {
                pool: st("pool")?,
                namespace: st("namespace")?,
                image: st("image")?,
                snap: st("snap")?,
            },
            device: st("device")?,
            mountpoint: st("mountpoint")?,
            read_only: v.get("read_only")?.as_bool()?,
        })
    }

    fn state_file(dir: &Path, pid: u32) -> PathBuf {
        dir.join("devices").join(format!("{pid}.json"))
    }

    /// Record it (written to a temporary name, then renamed: readers never see half).
    fn save(&self, dir: &Path) -> std::io::Result<()> {
        let d = dir.join("devices");
        std::fs::create_dir_all(&d)?;
        let tmp = d.join(format!(".{}.tmp", self.pid));
        std::fs::write(&tmp, self.to_json())?;
        std::fs::rename(tmp, Mapping::state_file(dir, self.pid))
    }
}

/// `pool/[ns/]image[@snap]`.
pub fn spec_string(s: &Spec) -> String {
    let mut o = s.pool.clone();
    o.push('/');
    if !s.namespace.is_empty() {
        o.push_str(&s.namespace);
        o.push('/');
    }
    o.push_str(&s.image);
    if !s.snap.is_empty() {
        o.push('@');
        o.push_str(&s.snap);
    }
    o
}

/// True while process `pid` runs (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Every recorded mapping, live or not.
fn mappings(dir: &Path) -> Vec<(Mapping, bool)> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir.join("devices")) {
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if !name.ends_with(".json") || name.starts_with('.') {
                continue;
            }
            if let Some(m) = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|s| Mapping::from_json(&s))
            {
                let live = alive(m.pid);
                v.push((m, live));
            }
        }
    }
    v.sort_by_key(|(m, _)| m.pid);
    v
}

/// Clean up after a daemon that died (SIGKILL, crash): its loop device still points at
/// the dead FUSE file and its mount point is disconnected.
fn reap_stale(dir: &Path, m: &Mapping) {
    if let Some(index) = nbd_index(&m.device) {
        // the kernel's device of a dead daemon: disconnect it (best effort)
        if let Ok(mut link) = crate::rbd_cmd::nbd::netlink::NbdLink::open() {
            let _ = link.disconnect(index);
        }
        let _ = std::fs::remove_file(Mapping::state_file(dir, m.pid));
        return;
    }
    if losetup::backing_file(&m.device).as_deref()
        == Some(&*Path::new(&m.mountpoint).join(fuse::FILE_NAME))
    {
        let _ = losetup::detach(&m.device);
    }
    let _ = Command::new("umount")
        .args(["-l", &m.mountpoint])
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_dir(&m.mountpoint);
    let _ = std::fs::remove_file(Mapping::state_file(dir, m.pid));
}

/// N of `/dev/nbdN`.
pub fn nbd_index(device: &str) -> Option<u32> {
    device.strip_prefix("/dev/nbd")?.parse().ok()
}

/// Options of `map`: `--read-only`, `--exclusive`, `-o a,b,c`.
#[derive(Debug, Default, Clone)]
pub struct MapOpts {
    /// Map read-only.
    pub read_only: bool,
    /// `--exclusive` (keep others out; the in-use check is always done unless shared).
    pub exclusive: bool,
    /// `-o noexclusive` / `--shared`: map even when others use the image.
    pub shared: bool,
    /// `-o notrim`: discards write zeros instead of deallocating.
    pub notrim: bool,
    /// `-o queue_depth=N`: requests in flight from the kernel.
    pub queue_depth: Option<u16>,
    /// `-o timeout=N` / `osd_request_timeout=N`: seconds before an image request fails
    /// with ETIMEDOUT (krbd's osd_request_timeout, rbd-nbd's io timeout).
    pub timeout: Option<f64>,
    /// `--device-type nbd`: attach through the nbd kernel module (netlink) instead of
    /// FUSE + a loop device.
    pub nbd: bool,
}

fn map_opts(c: &Ctx) -> R<MapOpts> {
    let mut o = MapOpts {
        read_only: c.args.flag("read-only"),
        exclusive: c.args.flag("exclusive"),
        // `--shared` is `lock add`'s valued option (as in rbd); device map takes `-o shared`
        shared: false,
        ..Default::default()
    };
    for list in c.args.all("options") {
        for w in list.split(',').filter(|w| !w.is_empty()) {
            match w {
                "ro" | "read-only" | "read_only" => o.read_only = true,
                "rw" => {}
                "exclusive" => o.exclusive = true,
                "noexclusive" | "shared" => o.shared = true,
                "notrim" => o.notrim = true,
                // rbd-nbd's choice of the kernel interface; the FUSE + loop path has one
                "try-netlink" => {}
                _ => {
                    let (k, v) = w.split_once('=').unwrap_or((w, ""));
                    let bad = || Fail::einval(format!("rbd-rs: bad map option value '{w}'"));
                    match k {
                        "queue_depth" => {
                            let n: u16 = v.parse().map_err(|_| bad())?;
                            if n == 0 {
                                return Err(bad());
                            }
                            o.queue_depth = Some(n);
                        }
                        "timeout" | "osd_request_timeout" | "io_timeout" => {
                            let t: f64 = v.parse().map_err(|_| bad())?;
                            if !(t >= 0.0 && t.is_finite()) {
                                return Err(bad());
                            }
                            // 0 = no timeout, as in krbd
                            o.timeout = Some(t);
                        }
                        _ => return Err(Fail::einval(format!("rbd-rs: unknown map option '{w}'"))),
                    }
                }
            }
        }
    }
    if o.exclusive && o.shared {
        return Err(Fail::einval(
            "rbd: --exclusive and -o noexclusive cannot be used together",
        ));
    }
    match c.args.get("device-type") {
        None | Some("loop") | Some("fuse") => {}
        Some("nbd") => {
            if o.queue_depth.is_some() {
                return Err(Fail::einval(
                    "rbd-rs: queue_depth applies to the FUSE + loop device, not to nbd",
                ));
            }
            o.nbd = true;
        }
        Some(t) => {
            return Err(Fail::einval(format!(
                "rbd-rs: device type '{t}' is not supported (krbd needs the rbd kernel module)"
            )))
        }
    }
    Ok(o)
}

fn spec_arg(c: &Ctx) -> R<Spec> {
    let mut s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        SnapPresence::Permitted,
        SpecCheck::None,
        &Spec::default(),
    )?;
    if s.pool.is_empty() {
        s.pool = c.default_pool();
    }
    Ok(s)
}

/// `device map|unmap|list`.
pub async fn dispatch(c: &mut Ctx, verb: &str) -> R {
    match verb {
        "map" => map(c).await,
        "unmap" => unmap(c).await,
        _ => list(c).await,
    }
}

/// `device map`.
pub async fn map(c: &mut Ctx) -> R {
    let spec = spec_arg(c)?;
    let mut opts = map_opts(c)?;
    if !spec.snap.is_empty() {
        opts.read_only = true;
    }
    if std::env::var_os(DAEMON_ENV).is_some() {
        return daemon::run(c, spec, opts).await;
    }
    let dir = run_dir();
    for (m, live) in mappings(&dir) {
        if m.spec != spec {
            continue;
        }
        if live {
            // pods on one node share the mapping
            out(&format!("{}\n", m.device));
            return Ok(());
        }
        reap_stale(&dir, &m);
    }
    spawn_daemon(&dir, &spec)
}

fn spawn_daemon(dir: &Path, spec: &Spec) -> R {
    let logs = dir.join("log");
    std::fs::create_dir_all(&logs)
        .map_err(|e| Fail::new(format!("rbd-rs: cannot create {}: {e}", logs.display()), 5))?;
    let log_path = logs.join(format!(
        "{}.log",
        spec_string(spec).replace(['/', '@'], "_")
    ));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| {
            Fail::new(
                format!("rbd-rs: cannot open {}: {e}", log_path.display()),
                5,
            )
        })?;
    let exe = std::env::current_exe()
        .map_err(|e| Fail::new(format!("rbd-rs: cannot find own executable: {e}"), 2))?;
    use std::os::unix::process::CommandExt as _;
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(DAEMON_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| Fail::new(format!("rbd-rs: cannot start the device daemon: {e}"), 5))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut r = BufReader::new(stdout);
    let mut line = String::new();
    let _ = r.read_line(&mut line);
    if let Some(dev) = line.strip_prefix("OK ") {
        out(&format!("{}\n", dev.trim_end()));
        return Ok(());
    }
    // failure: "ERR <errno>" then the message; the daemon exits
    let mut msg = String::new();
    let _ = r.read_to_string(&mut msg);
    let _ = child.wait();
    match line
        .strip_prefix("ERR ")
        .and_then(|n| n.trim().parse::<i32>().ok())
    {
        Some(code) => Err(Fail::new(msg.trim_end(), code)),
        None => Err(Fail::new(
            format!(
                "rbd-rs: the device daemon exited before mapping; see {}",
                log_path.display()
            ),
            5,
        )),
    }
}

/// Find the mapping an `unmap` argument names: a device path or an image spec.
fn find(c: &Ctx, dir: &Path) -> R<(Mapping, bool)> {
    let arg = c.args.pos.first().cloned().unwrap_or_default();
    let all = mappings(dir);
    if arg.starts_with("/dev/") {
        return all
            .into_iter()
            .find(|(m, _)| m.device == arg)
            .ok_or_else(|| Fail::einval(format!("rbd-rs: {arg} is not mapped by rbd-rs")));
    }
    if arg.is_empty() && c.args.get("image").is_none() {
        return Err(Fail::einval(
            "rbd: unmap requires either image name or device path",
        ));
    }
    let spec = spec_arg(c)?;
    all.into_iter()
        .find(|(m, _)| m.spec == spec)
        .ok_or_else(|| {
            Fail::einval(format!(
                "rbd-rs: image {} is not mapped",
                spec_string(&spec)
            ))
        })
}

/// `device unmap DEVICE|SPEC`.
pub async fn unmap(c: &mut Ctx) -> R {
    let dir = run_dir();
    let (m, live) = find(c, &dir)?;
    if !live {
        reap_stale(&dir, &m);
        return Ok(());
    }
    // like krbd/rbd-nbd: a mounted (or otherwise exclusively opened) device stays
    if losetup::busy(&m.device) {
        return Err(Fail::new(
            "rbd: sysfs write failed\nrbd: unmap failed: (16) Device or resource busy",
            EBUSY,
        ));
    }
    // an nbd device is disconnected by the daemon itself (it holds the netlink side)
    if nbd_index(&m.device).is_none() {
        if let Err(e) = losetup::detach(&m.device) {
            return Err(Fail::new(format!("rbd-rs: detaching {}: {e}", m.device), 5));
        }
    }
    // the daemon flushes, unmounts, closes the image (watch released) and exits
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(m.pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let t0 = Instant::now();
    while alive(m.pid) {
        if t0.elapsed() > Duration::from_secs(120) {
            return Err(Fail::new(
                format!("rbd-rs: the daemon {} did not stop", m.pid),
                110,
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::fs::remove_file(Mapping::state_file(&dir, m.pid));
    Ok(())
}

/// `device list [--format json]` (rbd-nbd `list-mapped`'s table and fields).
pub async fn list(c: &mut Ctx) -> R {
    let json = c.json()?;
    let live: Vec<Mapping> = mappings(&run_dir())
        .into_iter()
        .filter(|(_, l)| *l)
        .map(|(m, _)| m)
        .collect();
    let snap = |m: &Mapping| {
        if m.spec.snap.is_empty() {
            "-".to_string()
        } else {
            m.spec.snap.clone()
        }
    };
    match json {
        Some(pretty) => {
            let arr = live.iter().map(|m| {
                Json::obj(vec![
                    ("id", Json::I(m.pid as i64)),
                    ("pool", Json::s(&m.spec.pool)),
                    ("namespace", Json::s(&m.spec.namespace)),
                    ("image", Json::s(&m.spec.image)),
                    ("snap", Json::s(snap(m))),
                    ("device", Json::s(&m.device)),
                ])
            });
            out(&Json::arr("device", arr).render("devices", pretty));
        }
        None if live.is_empty() => {}
        None => {
            let l = (Align::Left, Align::Left);
            let mut t = TextTable::new(&[
                ("id", l.0, l.1),
                ("pool", l.0, l.1),
                ("namespace", l.0, l.1),
                ("image", l.0, l.1),
                ("snap", l.0, l.1),
                ("device", l.0, l.1),
            ]);
            for m in &live {
                t.row(vec![
                    m.pid.to_string(),
                    m.spec.pool.clone(),
                    m.spec.namespace.clone(),
                    m.spec.image.clone(),
                    snap(m),
                    m.device.clone(),
                ]);
            }
            out(&t.render());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_round_trips() {
        let m = Mapping {
            pid: 42,
            spec: Spec {
                pool: "p".into(),
                namespace: "ns".into(),
                image: "i".into(),
                snap: "s".into(),
            },
            device: "/dev/loop7".into(),
            mountpoint: "/run/rbd-rs/mnt/42".into(),
            read_only: true,
        };
        assert_eq!(Mapping::from_json(&m.to_json()), Some(m.clone()));
        assert_eq!(spec_string(&m.spec), "p/ns/i@s");
        assert_eq!(Mapping::from_json("{}"), None);
    }
}
