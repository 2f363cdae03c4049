//! Loop devices through util-linux `losetup` (present on every node: it is what mount(8)
//! uses). The `loopdev` crates generate their ioctl bindings with bindgen at build time,
//! which needs libclang on every build host, and hand-written ioctls would need unsafe
//! code, which the workspace forbids.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// O_EXCL on a block device: fails with EBUSY while it is mounted or held exclusively
/// (linux: block/bdev.c `bd_prepare_to_claim`).
const O_EXCL: i32 = 0o200;

fn run(args: &[&str]) -> io::Result<String> {
    let o = Command::new("losetup").args(args).output()?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    } else {
        Err(io::Error::other(format!(
            "losetup {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )))
    }
}

/// Attach `file` to the first free loop device with direct I/O (no page cache of the
/// backing file under the device's own); returns `/dev/loopN`.
pub fn attach(file: &Path, read_only: bool) -> io::Result<String> {
    let f = file.to_string_lossy();
    let mut args = vec!["--find", "--show", "--direct-io=on"];
    if read_only {
        args.push("--read-only");
    }
    args.push(&f);
    let dev = run(&args)?;
    if !dev.starts_with("/dev/loop") {
        return Err(io::Error::other(format!("losetup printed '{dev}'")));
    }
    Ok(dev)
}

/// Detach (LOOP_CLR_FD; deferred by the kernel while the device is still open).
pub fn detach(dev: &str) -> io::Result<()> {
    run(&["-d", dev]).map(|_| ())
}

/// Re-read the backing file's size (LOOP_SET_CAPACITY).
pub fn set_capacity(dev: &str) -> io::Result<()> {
    run(&["-c", dev]).map(|_| ())
}

/// The file a loop device is attached to (`None` if none).
pub fn backing_file(dev: &str) -> Option<PathBuf> {
    let name = dev.strip_prefix("/dev/")?;
    let s = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(PathBuf::from(s.trim_end()))
}

/// True if the device is mounted or otherwise claimed exclusively.
pub fn busy(dev: &str) -> bool {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_EXCL)
        .open(dev)
    {
        Ok(_) => false,
        Err(e) => e.raw_os_error() == Some(16),
    }
}
