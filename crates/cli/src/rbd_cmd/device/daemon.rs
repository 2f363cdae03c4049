//! The mapping daemon: image open, in-use check, FUSE mount, loop device, then service
//! until a signal; clean shutdown (detach, drain, flush, close).

use super::fuse::{ImageFs, FILE_NAME};
use super::{losetup, run_dir, spec_string, MapOpts, Mapping, EBUSY};
use crate::rbd_cmd::args::Spec;
use crate::rbd_cmd::nbd::netlink::{Connect, NbdLink};
use crate::rbd_cmd::nbd::proto::{Export, Server};
use crate::rbd_cmd::{open_image, Ctx, Fail, Mode, R};
use ceph_rbd::Image;
use fuser::{Config, INodeNo, MountOption, Notifier, Session, SessionACL};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// How long setup may take before the daemon gives up (the `map` command waits on it).
const SETUP_TIMEOUT: Duration = Duration::from_secs(90);
/// How often the image size is compared with the device's.
const RESIZE_POLL: Duration = Duration::from_millis(500);

fn log(msg: &str) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    eprintln!(
        "{}.{:03} rbd-rs device[{}]: {msg}",
        t.as_secs(),
        t.subsec_millis(),
        std::process::id()
    );
}

/// Tell the waiting `map` command how it went (its first line on our stdout).
fn report(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(line.as_bytes());
    let _ = o.flush();
}

struct Served {
    img: Image,
    /// The size the device shows (followed on image resizes).
    fs_size: Arc<AtomicU64>,
    mapping: Mapping,
    dev: Device,
}

/// How the image is exposed.
enum Device {
    /// A file in our FUSE mount behind a loop device.
    Loop {
        session: fuser::BackgroundSession,
        notifier: Notifier,
        inflight: Arc<super::fuse::Inflight>,
    },
    /// The nbd kernel module's `/dev/nbdN`, fed through one end of a socketpair.
    Nbd {
        index: u32,
        link: NbdLink,
        conn: tokio::task::JoinHandle<std::io::Result<()>>,
        /// Notified when the request loop ends (the kernel let go of the socket).
        ended: Arc<tokio::sync::Notify>,
    },
}

/// The daemon's life (called from `map` with `RBD_RS_DEVICE_DAEMON` set).
pub async fn run(c: &mut Ctx, spec: Spec, opts: MapOpts) -> R {
    log(&format!("mapping {} {opts:?}", spec_string(&spec)));
    let served = match tokio::time::timeout(SETUP_TIMEOUT, setup(c, &spec, &opts)).await {
        Ok(Ok(s)) => s,
        Ok(Err(f)) => {
            log(&format!("map failed: {}", f.msg));
            report(&format!("ERR {}\n{}\n", f.code, f.msg));
            return Err(Fail::new(String::new(), f.code));
        }
        Err(_) => {
            let f = Fail::new("rbd-rs: mapping timed out", 110);
            report(&format!("ERR {}\n{}\n", f.code, f.msg));
            return Err(f);
        }
    };
    log(&format!("mapped at {}", served.mapping.device));
    report(&format!("OK {}\n", served.mapping.device));
    serve(served).await
}

async fn setup(c: &mut Ctx, spec: &Spec, opts: &MapOpts) -> R<Served> {
    let mode = if opts.read_only {
        Mode::ReadOnly
    } else {
        Mode::ReadWrite
    };
    if let Some(t) = opts.timeout {
        // every OSD request of the mapping (0: none)
        c.common.op_timeout = Some(t);
    }
    let rbd = c.rbd(spec).await?;
    // paths on the command line (keyring, conf) are read by now: leave the caller's
    // directory so it can be unmounted / removed
    let _ = std::env::set_current_dir("/");
    let img = if opts.exclusive && mode == Mode::ReadWrite && spec.snap.is_empty() {
        // krbd's `exclusive` map option: take the exclusive lock at map time and keep
        // it (peers' REQUEST_LOCK answered with EROFS) until unmap
        let o = ceph_rbd::OpenOptions {
            exclusive: true,
            ..Default::default()
        };
        rbd.open_with(&spec.image, &o)
            .await
            .map_err(|e| Fail::rbd(&format!("error opening image {}", spec.image), &e))?
    } else {
        open_image(&rbd, &spec.image, &spec.snap, mode).await?
    };
    if mode == Mode::ReadWrite && !opts.shared {
        // ceph-csi's check before mapping: any other watcher on the header means another
        // node (or a crashed client whose watch has not timed out yet) uses the image.
        let ours = img.watch_cookie();
        let gid = img.client_id().gid as i64;
        let others = match img.watchers().await {
            Ok(w) => w
                .into_iter()
                .filter(|w| !(w.cookie == ours && w.name.num == gid))
                .count(),
            Err(e) => {
                let _ = img.close().await;
                return Err(Fail::rbd("error listing watchers", &e));
            }
        };
        if others > 0 {
            let _ = img.close().await;
            return Err(Fail::new(
                format!("rbd: image {} is still being used", spec_string(spec)),
                EBUSY,
            ));
        }
    }
    if opts.exclusive && mode == Mode::ReadWrite {
        // only images with the exclusive-lock feature have a lock to take
        if let Err(e) = img.acquire_lock().await {
            let _ = img.close().await;
            return Err(Fail::rbd("error acquiring the exclusive lock", &e));
        }
    }
    let size = match img.size().await {
        Ok(s) => s,
        Err(e) => {
            let _ = img.close().await;
            return Err(Fail::rbd("error getting size", &e));
        }
    };
    let attached = if opts.nbd {
        attach_nbd(&img, spec, opts, size).await
    } else {
        mount_and_attach(&img, spec, opts, size).await
    };
    match attached {
        Ok(s) => Ok(s),
        Err(f) => {
            let _ = img.close().await;
            Err(f)
        }
    }
}

async fn mount_and_attach(img: &Image, spec: &Spec, opts: &MapOpts, size: u64) -> R<Served> {
    let dir = run_dir();
    let pid = std::process::id();
    let mnt = dir.join("mnt").join(pid.to_string());
    std::fs::create_dir_all(&mnt)
        .map_err(|e| Fail::new(format!("rbd-rs: cannot create {}: {e}", mnt.display()), 5))?;
    let mut fs = ImageFs::new(
        img.clone(),
        tokio::runtime::Handle::current(),
        size,
        opts.read_only,
    );
    fs.notrim = opts.notrim;
    if let Some(qd) = opts.queue_depth {
        fs.queue_depth = qd;
    }
    let fs_size = fs.size.clone();
    let inflight = fs.inflight.clone();
    let config = {
        let mut cfg = Config::default();
        cfg.mount_options = vec![
            MountOption::FSName(format!("rbd-rs:{}", spec_string(spec))),
            MountOption::Subtype("rbd-rs".into()),
            MountOption::NoAtime,
        ];
        cfg.acl = SessionACL::Owner;
        cfg.n_threads = Some(1);
        cfg
    };
    let mnt2 = mnt.clone();
    let session = tokio::task::spawn_blocking(move || Session::new(fs, &mnt2, &config))
        .await
        .map_err(|e| Fail::new(format!("rbd-rs: FUSE mount: {e}"), 5))?
        .map_err(|e| {
            let _ = std::fs::remove_dir(&mnt);
            Fail::new(
                format!("rbd-rs: FUSE mount on {}: {e}", mnt.display()),
                e.raw_os_error().unwrap_or(5),
            )
        })?;
    let notifier = session.notifier();
    let session = session
        .spawn()
        .map_err(|e| Fail::new(format!("rbd-rs: FUSE session: {e}"), 5))?;
    let file: PathBuf = mnt.join(FILE_NAME);
    let ro = opts.read_only;
    let f2 = file.clone();
    let device = match tokio::task::spawn_blocking(move || losetup::attach(&f2, ro)).await {
        Ok(Ok(d)) => d,
        r => {
            let msg = match r {
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
                Ok(Ok(_)) => unreachable!(),
            };
            drop(session);
            let _ = std::fs::remove_dir(&mnt);
            return Err(Fail::new(
                format!("rbd-rs: attaching a loop device: {msg}"),
                5,
            ));
        }
    };
    let mapping = Mapping {
        pid,
        spec: spec.clone(),
        device,
        mountpoint: mnt.to_string_lossy().into_owned(),
        read_only: opts.read_only,
    };
    if let Err(e) = mapping.save(&dir) {
        let _ = losetup::detach(&mapping.device);
        drop(session);
        let _ = std::fs::remove_dir(&mnt);
        return Err(Fail::new(format!("rbd-rs: recording the mapping: {e}"), 5));
    }
    Ok(Served {
        img: img.clone(),
        fs_size,
        mapping,
        dev: Device::Loop {
            session,
            notifier,
            inflight,
        },
    })
}

/// `--device-type nbd`: one end of a socketpair goes to the kernel with NBD_CMD_CONNECT
/// (the device's size, block size and flags travel in the message: no handshake), the
/// other is served by the same request loop as `nbd serve`.
async fn attach_nbd(img: &Image, spec: &Spec, opts: &MapOpts, size: u64) -> R<Served> {
    use std::os::fd::AsRawFd;
    let mut link = tokio::task::spawn_blocking(NbdLink::open)
        .await
        .map_err(|e| Fail::new(format!("rbd-rs: nbd: {e}"), 5))?
        .map_err(|e| Fail::new(format!("rbd-rs: nbd: {e}"), e.raw_os_error().unwrap_or(2)))?;
    let (ours, kernels) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| Fail::new(format!("rbd-rs: socketpair: {e}"), 5))?;
    let export = Export {
        name: spec_string(spec),
        size,
        read_only: opts.read_only,
    };
    let mut flags = export.tflags() as u64;
    if opts.notrim {
        // no discards at all: the kernel then zeroes by writing
        flags &= !((1 << 5) | (1 << 6));
    }
    let connect = Connect {
        size,
        block_size: 512,
        server_flags: flags,
        // whole seconds, 0 = the kernel waits (rbd-nbd's default)
        timeout_secs: opts.timeout.map(|t| t.ceil() as u64).unwrap_or(0),
        fd: kernels.as_raw_fd() as u32,
    };
    let (index, mut link) = tokio::task::spawn_blocking(move || {
        let r = link.connect(&connect);
        // the kernel holds its own reference to the socket now
        drop(kernels);
        r.map(|i| (i, link))
    })
    .await
    .map_err(|e| Fail::new(format!("rbd-rs: nbd: {e}"), 5))?
    .map_err(|e| {
        Fail::new(
            format!("rbd-rs: nbd CONNECT: {e}"),
            e.raw_os_error().unwrap_or(5),
        )
    })?;
    let fs_size = Arc::new(AtomicU64::new(size));
    ours.set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(ours))
        .map(|s| {
            let (r, w) = s.into_split();
            let img2 = img.clone();
            let srv = Server::attached(export);
            let ended = Arc::new(tokio::sync::Notify::new());
            let done = ended.clone();
            let (size, ro) = (fs_size.clone(), opts.read_only);
            let conn = tokio::spawn(async move {
                let r = crate::rbd_cmd::nbd::connection_with(
                    img2,
                    srv,
                    size,
                    ro,
                    Box::new(r),
                    Box::new(w),
                )
                .await;
                done.notify_one();
                r
            });
            (conn, ended)
        })
        .map_err(|e| {
            let _ = link.disconnect(index);
            Fail::new(format!("rbd-rs: nbd socket: {e}"), 5)
        })
        .and_then(|(conn, ended)| {
            let mapping = Mapping {
                pid: std::process::id(),
                spec: spec.clone(),
                device: format!("/dev/nbd{index}"),
                mountpoint: String::new(),
                read_only: opts.read_only,
            };
            if let Err(e) = mapping.save(&run_dir()) {
                let _ = link.disconnect(index);
                return Err(Fail::new(format!("rbd-rs: recording the mapping: {e}"), 5));
            }
            Ok(Served {
                img: img.clone(),
                fs_size: fs_size.clone(),
                mapping,
                dev: Device::Nbd {
                    index,
                    link,
                    conn,
                    ended,
                },
            })
        })
}

async fn serve(mut s: Served) -> R {
    let sig = |k| signal(k).map_err(|e| Fail::new(format!("rbd-rs: signal handler: {e}"), 5));
    let mut term = sig(SignalKind::terminate())?;
    let mut int = sig(SignalKind::interrupt())?;
    // the shell that started us may hang up; we stay
    let mut hup = sig(SignalKind::hangup())?;
    let mut tick = tokio::time::interval(RESIZE_POLL);
    let dev = s.mapping.device.clone();
    let ended = match &s.dev {
        Device::Nbd { ended, .. } => ended.clone(),
        Device::Loop { .. } => Arc::new(tokio::sync::Notify::new()),
    };
    loop {
        tokio::select! {
            _ = term.recv() => { log("SIGTERM"); break; }
            _ = ended.notified() => { log("the kernel closed the nbd socket"); break; }
            _ = int.recv() => { log("SIGINT"); break; }
            _ = hup.recv() => log("SIGHUP ignored"),
            _ = tick.tick() => {
                // a header update notification marks the image stale; size() re-reads it
                let Ok(size) = s.img.size().await else { continue };
                let old = s.fs_size.swap(size, Ordering::AcqRel);
                if size != old {
                    log(&format!("image size {old} -> {size}"));
                    match &mut s.dev {
                        Device::Loop { notifier, .. } => {
                            if let Err(e) = notifier.inval_inode(INodeNo(2), 0, 0) {
                                log(&format!("inval_inode: {e}"));
                            }
                            let d = dev.clone();
                            match tokio::task::spawn_blocking(move || losetup::set_capacity(&d)).await {
                                Ok(Ok(())) => {}
                                Ok(Err(e)) => log(&format!("set capacity: {e}")),
                                Err(e) => log(&format!("set capacity: {e}")),
                            }
                        }
                        Device::Nbd { index, link, .. } => {
                            if let Err(e) = link.resize(*index, size) {
                                log(&format!("nbd RECONFIGURE: {e}"));
                            }
                        }
                    }
                }
            }
        }
    }
    shutdown(s).await
}

async fn shutdown(s: Served) -> R {
    let dev = s.mapping.device.clone();
    let flushed = match s.dev {
        Device::Loop {
            session, inflight, ..
        } => {
            let file = PathBuf::from(&s.mapping.mountpoint).join(FILE_NAME);
            // detach unless `unmap` did already (deferred by the kernel if still in use)
            if losetup::backing_file(&dev).as_deref() == Some(&*file) {
                if let Err(e) = losetup::detach(&dev) {
                    log(&format!("detach {dev}: {e}"));
                }
            }
            // requests the kernel already sent are answered before the image closes
            let t0 = std::time::Instant::now();
            while inflight.count() > 0 && t0.elapsed() < Duration::from_secs(60) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let flushed = s.img.flush().await;
            // unmounting waits for the session thread; the kernel ends it once nothing
            // holds the file (a device still mounted somewhere keeps it: then we leave
            // without waiting)
            let joined = tokio::time::timeout(
                Duration::from_secs(10),
                tokio::task::spawn_blocking(move || session.umount_and_join()),
            )
            .await;
            if joined.is_err() {
                log("FUSE session still busy (device in use); leaving it to the kernel");
            }
            flushed
        }
        Device::Nbd {
            index,
            mut link,
            conn,
            ..
        } => {
            // the kernel sends NBD_CMD_DISC after what it has queued; our request loop
            // answers everything it received and ends when the socket closes
            if let Err(e) = link.disconnect(index) {
                log(&format!("nbd DISCONNECT {dev}: {e}"));
            }
            match tokio::time::timeout(Duration::from_secs(60), conn).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => log(&format!("nbd connection: {e}")),
                Ok(Err(e)) => log(&format!("nbd connection task: {e}")),
                Err(_) => log("nbd connection still open after 60 s; closing anyway"),
            }
            s.img.flush().await
        }
    };
    let _ = s.img.close().await;
    let dir = run_dir();
    let _ = std::fs::remove_file(Mapping::state_file(&dir, s.mapping.pid));
    if !s.mapping.mountpoint.is_empty() {
        let _ = std::fs::remove_dir(&s.mapping.mountpoint);
    }
    match flushed {
        Ok(()) => {
            log("unmapped: flushed, watch released");
            Ok(())
        }
        Err(e) => {
            log(&format!("flush failed: {e}"));
            Err(Fail::rbd("flush failed", &e))
        }
    }
}
