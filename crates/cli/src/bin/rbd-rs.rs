//! `rbd-rs`: an `rbd`-compatible command-line tool on the pure-Rust client (no librbd):
//! the same commands, argument forms, output, messages and exit statuses (the errno).

#[path = "../rbd_cmd/mod.rs"]
mod rbd_cmd;

use ceph_cli::common_setup;

/// The most worker threads a FUSE-backed `device map` daemon runs.
const DEVICE_WORKERS_MAX: usize = 4;

/// The Ceph global options `rbd` takes that are about logging and the cluster name,
/// which the shared option parser does not know: `--log-file PATH`,
/// `--debug-<subsys> LEVEL` (any subsystem; the highest level decides ours),
/// `--no-log-to-stderr`, `--log-to-stderr[=BOOL]`, `--cluster NAME` (ceph.conf and
/// keyring at `/etc/ceph/NAME.*` unless given).
struct Global {
    log_file: Option<String>,
    level: u32,
    to_stderr: bool,
}

fn take_globals(args: Vec<String>) -> Result<(Vec<String>, Global), String> {
    let mut g = Global {
        log_file: None,
        level: 0,
        to_stderr: true,
    };
    let mut cluster = None;
    let mut rest = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--" {
            rest.push(a);
            rest.extend(it.by_ref());
            break;
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.replace('_', "-"), Some(v.to_string())),
            _ => (a.replace('_', "-"), None),
        };
        let mut value = |inline: Option<String>| {
            inline
                .or_else(|| it.next())
                .ok_or_else(|| format!("the required argument for option '{flag}' is missing"))
        };
        match flag.as_str() {
            "--log-file" => g.log_file = Some(value(inline)?),
            "--cluster" => cluster = Some(value(inline)?),
            "--no-log-to-stderr" => g.to_stderr = false,
            "--log-to-stderr" => {
                g.to_stderr = !matches!(inline.as_deref(), Some("false" | "0" | "no"))
            }
            f if f.starts_with("--debug-") => {
                // LEVEL or LOG/MEMORY (`--debug-rbd 20/20`)
                let v = value(inline)?;
                let lvl = v.split('/').next().unwrap_or("").trim().parse::<u32>();
                g.level = g
                    .level
                    .max(lvl.map_err(|_| format!("invalid value for {f}: {v}"))?);
            }
            _ => rest.push(a),
        }
    }
    if let Some(c) = cluster {
        let has = |rest: &[String], names: &[&str]| {
            rest.iter().any(|a| {
                names
                    .iter()
                    .any(|n| a == n || a.starts_with(&format!("{n}=")))
            })
        };
        if !has(&rest, &["-c", "--conf"]) && std::env::var_os("CEPH_CONF").is_none() {
            rest.insert(0, format!("--conf=/etc/ceph/{c}.conf"));
        }
        let name = rest
            .iter()
            .position(|a| a == "--id" || a == "--user")
            .and_then(|i| rest.get(i + 1))
            .map(|n| format!("client.{n}"))
            .unwrap_or_else(|| "client.admin".into());
        let kr = format!("/etc/ceph/{c}.{name}.keyring");
        if !has(&rest, &["-k", "--keyring"]) && std::path::Path::new(&kr).exists() {
            rest.insert(0, format!("--keyring={kr}"));
        }
    }
    Ok((rest, g))
}

/// Logging as the global options ask: to the log file if given, else to stderr unless
/// `--no-log-to-stderr`; debug level from the highest `--debug-*` (RUST_LOG wins).
fn init_logging(g: &Global) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::new(v),
        _ if g.level >= 20 => EnvFilter::new("trace"),
        _ if g.level >= 5 => EnvFilter::new("debug"),
        _ if g.level >= 1 => EnvFilter::new("info"),
        _ => EnvFilter::new("error"),
    };
    if let Some(path) = &g.log_file {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => {
                let _ = tracing_subscriber::fmt()
                    .with_env_filter(filter)
                    .with_ansi(false)
                    .with_writer(std::sync::Mutex::new(f))
                    .try_init();
            }
            Err(e) => eprintln!("rbd: unable to open log file {path}: {e}"),
        }
    } else if !g.to_stderr {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new("off"))
            .with_writer(std::io::sink)
            .try_init();
    } else if g.level > 0 {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// See the `mimalloc` feature in Cargo.toml.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    ceph_cli::tune_allocator();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (args, global) = match take_globals(args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("rbd: {e}");
            std::process::exit(1);
        }
    };
    init_logging(&global);
    let (common, rest) = match common_setup(args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("rbd: {e}");
            std::process::exit(ceph_cli::exit_code(e.errno()));
        }
    };
    let code = match rbd_cmd::args::Args::parse(rest) {
        Err(f) => report(f),
        Ok(args) => {
            // import/export read and write files and pipes with blocking calls
            let blocking_io = matches!(
                args.pos.first().map(String::as_str),
                Some("import" | "export" | "import-diff" | "export-diff" | "merge-diff")
            );
            // a bench of large I/O: the per-byte work (AES-GCM or crc32c, copies) of
            // several OSD sessions runs in parallel on worker threads (measured in
            // secure mode, 4 MiB x 16: ~10% more throughput at the same CPU per op);
            // small ops stay on one thread, where their hand-offs are cheapest
            let large_bench = matches!(
                args.pos.first().map(String::as_str),
                Some("bench" | "bench-write")
            ) && args
                .get("io-size")
                .and_then(rbd_cmd::args::iec_size)
                .is_some_and(|n| n >= 1 << 20);
            let rt = if rbd_cmd::is_fuse_device_daemon(&args) {
                ceph_cli::device_runtime(DEVICE_WORKERS_MAX)
            } else {
                ceph_cli::runtime(blocking_io || large_bench)
            };
            match rt.block_on(rbd_cmd::run(args, common)) {
                Ok(()) => 0,
                Err(f) => report(f),
            }
        }
    };
    std::process::exit(code);
}

fn report(f: rbd_cmd::Fail) -> i32 {
    if !f.msg.is_empty() {
        eprintln!("{}", f.msg);
    }
    f.code
}
