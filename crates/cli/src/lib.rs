//! Code shared by `rados-rs` and `rbd-rs`: the Ceph tools' global options, logging,
//! exit codes (the errno of the failure, as `rados`/`rbd` scripts expect), and output
//! helpers such as Ceph's hexdump.

#![warn(missing_docs)]

use ceph_rados::{ClientConfig, CommonArgs, Errno, Error};
use std::fmt::Write as _;

pub mod fmt;

/// Parse the common options out of `args` (merging `CEPH_ARGS` first), set up logging,
/// and return the client configuration builder input plus the remaining arguments.
pub fn common_setup(mut args: Vec<String>) -> Result<(CommonArgs, Vec<String>), Error> {
    let env = CommonArgs::from_env()?;
    let cli = CommonArgs::extract(&mut args)?;
    let common = env.merge(cli);
    init_logging(common.debug);
    Ok((common, args))
}

/// How long mimalloc keeps freed memory before giving it back to the system, in ms
/// (its default is 10).
///
/// With 10 ms the pages of a 4 MiB reply are returned between one op and the next and
/// faulted in again, zeroed by the kernel: 4 MiB sequential reads took 65-90 k minor
/// faults per 8 GiB read and 2.4 s of client CPU; with 1 s, 4-6 k faults and 2.0 s (-18%),
/// 4 KiB random writes a quarter of the faults, at the same peak RSS within 4%
/// (docs/performance.md). Memory a burst used still goes back a second after it ends,
/// which a long-lived `nbd serve` or `device map` wants.
pub const PURGE_DELAY_MS: i64 = 1000;

/// Set mimalloc's purge delay to [`PURGE_DELAY_MS`], unless `MIMALLOC_PURGE_DELAY` is
/// set (the user's choice wins). Called first thing in `main`.
#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)]
pub fn tune_allocator() {
    // `mi_option_purge_delay` in mimalloc's `mi_option_e` (the same in v2 and v3; the
    // binding names no constant for it). Checked against the documented default before
    // setting, so a renumbered enum changes nothing rather than some other option.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    const DEFAULT: std::os::raw::c_long = 10;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: plain option accessors of the allocator in use; any option index is valid
    // for them (out-of-range ones are ignored).
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == DEFAULT {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS as _);
        }
    }
}

/// Without mimalloc there is nothing to tune.
#[cfg(not(feature = "mimalloc"))]
pub fn tune_allocator() {}

/// Logging through `tracing`: `RUST_LOG` if set, `--debug` for debug level, else warnings.
pub fn init_logging(debug: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::new(v),
        _ if debug => EnvFilter::new("debug"),
        _ => EnvFilter::new("error"),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Build the client configuration from the common options.
pub fn client_config(common: &CommonArgs) -> Result<ClientConfig, Error> {
    common.to_config()
}

/// Print `prefix: error` like the Ceph tools and exit with the errno.
pub fn fail(prefix: &str, e: &Error) -> ! {
    let errno = e.errno();
    match e {
        // The tools print "<what failed>: (errno) <strerror>"; the server context is only
        // useful when the caller gave no prefix.
        Error::Server { context, errno } if prefix.is_empty() => {
            eprintln!("{context}: ({}) {}", errno.0, errno.description())
        }
        Error::Server { errno, .. } => eprintln!("{prefix}: ({}) {}", errno.0, errno.description()),
        other => eprintln!("{prefix}: ({}) {other}", errno.0),
    }
    std::process::exit(exit_code(errno))
}

/// The tokio runtime for one command-line run.
///
/// A client's data path hands every op between tasks several times (caller, objecter,
/// OSD session and back). On a multi-thread runtime each of those wake-ups can land on
/// another worker, which then has to be unparked (a futex call and a context switch):
/// measured with `rbd-rs bench` (4 KiB random reads, 32 in flight), a current-thread
/// runtime needs about a quarter less CPU per op (docs/performance.md, "Small ops").
/// Large transfers are the other way round: their per-byte work (AES-GCM or crc32c,
/// copies) dominates, and worker threads run it for several OSD sessions at once, so
/// `rbd-rs bench` with an I/O size of 1 MiB or more asks for workers (4 MiB x 16 in
/// secure mode: ~10% more throughput, same CPU per op). Commands that do blocking file
/// or pipe I/O between their network ops (import/export) keep a multi-thread runtime,
/// so the network goes on while one thread waits on the disk or the pipe.
/// `CEPH_RS_WORKER_THREADS` overrides the choice: 0 for the current-thread runtime, N
/// for N workers.
pub fn runtime(blocking_io: bool) -> tokio::runtime::Runtime {
    build_runtime(blocking_io.then_some(usize::MAX))
}

/// The runtime of a FUSE-backed `device map` daemon: worker threads, at most `max`.
///
/// The loop device hands us the block layer's requests as they come, large ones from
/// sequential work (mkfs, copies, backups, page-cache writeback), so the per-byte work
/// of several OSD sessions runs in parallel. Measured through `fio` on `/dev/loopN`
/// (docs/performance.md, "device map and nbd serve"): 4 MiB writes +21-60%, 4 MiB reads
/// +8-13%, at 5-9% fewer 4 KiB random reads on 2 cores shared with the OSDs. The cap
/// keeps a node with dozens of mapped images (one daemon each) from running a full set
/// of workers per image. `nbd serve` measured no gain and keeps one thread.
pub fn device_runtime(max: usize) -> tokio::runtime::Runtime {
    build_runtime(Some(max))
}

/// `workers`: None for the current-thread runtime, else a multi-thread one with at most
/// that many workers (tokio's default, one per CPU, below it).
fn build_runtime(workers: Option<usize>) -> tokio::runtime::Runtime {
    let forced = std::env::var("CEPH_RS_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok());
    let workers = match forced {
        Some(0) => None,
        Some(n) => Some(n),
        None => workers.map(|max| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(max)
        }),
    };
    let mut b = match workers {
        None => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.max(1));
            b
        }
    };
    b.enable_all().build().expect("tokio runtime")
}

/// The process exit status for an errno (1..=255).
pub fn exit_code(e: Errno) -> i32 {
    if e.0 <= 0 || e.0 > 255 {
        1
    } else {
        e.0
    }
}

/// A usage error: message and exit with EINVAL, like the Ceph tools.
pub fn usage_error(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(Errno::EINVAL.0)
}

/// Ceph's `bufferlist::hexdump` format (as `rados getomapval` prints values).
pub fn hexdump(data: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    let mut was_same = false;
    while i < data.len() {
        let line = &data[i..(i + 16).min(data.len())];
        if i > 0 && line.len() == 16 && data[i - 16..i] == *line {
            if !was_same {
                out.push_str("*\n");
                was_same = true;
            }
            i += 16;
            continue;
        }
        was_same = false;
        let _ = write!(out, "{i:08x} ");
        for j in 0..16 {
            if j == 8 {
                out.push(' ');
            }
            match line.get(j) {
                Some(b) => {
                    let _ = write!(out, " {b:02x}");
                }
                None => out.push_str("   "),
            }
        }
        out.push_str("  |");
        for b in line {
            out.push(if (32..127).contains(b) {
                *b as char
            } else {
                '.'
            });
        }
        out.push_str("|\n");
        i += 16;
    }
    let _ = writeln!(out, "{:08x}", data.len());
    out
}

/// Parse a size with an optional unit: `10G`, `512M`, `4K`, `4096`, `1T` (binary units,
/// as `rbd --size` takes them; a bare number is MiB for `--size` when `default_mb`).
pub fn parse_size(s: &str, default_mb: bool) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = s[i..].to_ascii_uppercase();
            let m: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                "P" => 1 << 50,
                _ => return None,
            };
            (&s[..i], m)
        }
        None => (s, if default_mb { 1 << 20 } else { 1 }),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// Format a byte count the way `rbd info` does (`10 GiB`, `4 MiB`, `1.5 KiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else if v.fract() == 0.0 {
        format!("{} {}", v as u64, UNITS[u])
    } else {
        format!("{:.1} {}", v, UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hexdump_format() {
        let h = hexdump(&[0, 0, 0, 0x80, 2, 0, 0, 0]);
        assert_eq!(
            h,
            "00000000  00 00 00 80 02 00 00 00                           |........|\n00000008\n"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10G", true), Some(10 << 30));
        assert_eq!(parse_size("1024", true), Some(1 << 30));
        assert_eq!(parse_size("4K", false), Some(4096));
        assert_eq!(parse_size("4096", false), Some(4096));
        assert_eq!(parse_size("1GiB", true), Some(1 << 30));
        assert_eq!(parse_size("x", true), None);
        assert_eq!(human_bytes(10 << 30), "10 GiB");
        assert_eq!(human_bytes(4 << 20), "4 MiB");
    }
}
