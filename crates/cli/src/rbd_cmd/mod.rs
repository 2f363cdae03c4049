//! `rbd-rs`: the `rbd` tool's commands on the pure-Rust client, with its argument forms,
//! output (byte for byte where scripts parse it), messages and exit statuses (the errno).
//! ceph: src/tools/rbd (Shell.cc, Utils.cc, action/*.cc), Ceph 16.2.

pub mod args;
pub use ceph_cli::fmt;

mod bench;
mod cli;
mod config;
mod copy;
mod device;
mod features;
mod group;
mod help;
mod image;
mod lock;
mod meta;
mod namespace;
mod nbd;
mod snap;
mod transfer;
mod trash;

use args::{Args, Spec};
use ceph_rados::{CommonArgs, IoCtx, Rados};
use ceph_rbd::{CacheConfig, Image, OpenOptions, Rbd, RbdError};
use std::io::Write as _;

/// A failed command: the message for stderr (already formatted like rbd's) and the exit
/// status.
#[derive(Debug)]
pub struct Fail {
    /// What to print on stderr (may be empty: already printed).
    pub msg: String,
    /// Exit status.
    pub code: i32,
}

impl Fail {
    /// A failure with an explicit status.
    pub fn new(msg: impl Into<String>, code: i32) -> Fail {
        Fail {
            msg: msg.into(),
            code: code.clamp(1, 255),
        }
    }

    /// A command-line syntax error (boost::program_options): status 1.
    pub fn usage(msg: impl Into<String>) -> Fail {
        Fail::new(msg, 1)
    }

    /// EINVAL.
    pub fn einval(msg: impl Into<String>) -> Fail {
        Fail::new(msg, 22)
    }

    /// `rbd: <what>: (<errno>) <strerror>`, exit status the errno.
    pub fn rbd(what: &str, e: &RbdError) -> Fail {
        let n = e.errno().0;
        let mut msg = format!("rbd: {what}: ({n}) {}", strerror(n));
        if let Some(extra) = detail(e) {
            msg.push('\n');
            msg.push_str(&extra);
        }
        Fail::new(msg, n)
    }

    /// Like [`Fail::rbd`] for an errno.
    pub fn errno(what: &str, n: i32) -> Fail {
        Fail::new(format!("rbd: {what}: ({n}) {}", strerror(n)), n)
    }
}

/// Our own explanation where the errno alone would puzzle (features we do not
/// implement); librbd prints such details as log lines.
fn detail(e: &RbdError) -> Option<String> {
    match e {
        RbdError::UnsupportedFeatures { image, names, .. } if image.is_empty() => Some(format!(
            "rbd-rs: features this client does not implement: {names}"
        )),
        RbdError::UnsupportedFeatures { .. } => Some(format!("rbd-rs: {e}")),
        _ => None,
    }
}

/// Result of a command.
pub type R<T = ()> = Result<T, Fail>;

/// The C library's text for an errno, as `cpp_strerror` prints it.
pub fn strerror(n: i32) -> String {
    let s = std::io::Error::from_raw_os_error(n).to_string();
    match s.rfind(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// How an image is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read-only, without a header watch (librbd's read-only open registers none).
    ReadOnly,
    /// Read-write, with a header watch.
    ReadWrite,
}

/// Per-invocation state: arguments, and the cluster connection once made.
pub struct Ctx {
    /// The command line.
    pub args: Args,
    common: CommonArgs,
    conf: Option<ceph_rados::config::CephConf>,
    rados: Option<Rados>,
}

impl Ctx {
    fn new(args: Args, common: CommonArgs) -> Ctx {
        let path = common
            .conf
            .clone()
            .or_else(|| std::env::var_os("CEPH_CONF").map(Into::into))
            .or_else(|| {
                Some(std::path::PathBuf::from("/etc/ceph/ceph.conf")).filter(|p| p.exists())
            });
        let conf = path.and_then(|p| ceph_rados::config::CephConf::load(&p).ok());
        Ctx {
            args,
            common,
            conf,
            rados: None,
        }
    }

    /// A Ceph option: command line override, then ceph.conf (`[client]`/`[global]`).
    pub fn config(&self, key: &str) -> Option<String> {
        if let Some(v) = self.args.config.get(key) {
            return Some(v.clone());
        }
        let name = self
            .common
            .name
            .clone()
            .unwrap_or_else(|| ceph_encoding::EntityName::client("admin"));
        self.conf
            .as_ref()
            .and_then(|c| c.get(&name, key))
            .map(str::to_string)
    }

    /// `rbd_default_pool` (default `rbd`).
    pub fn default_pool(&self) -> String {
        self.config("rbd_default_pool")
            .unwrap_or_else(|| "rbd".into())
    }

    /// The connection (made on first use; `rbd: couldn't connect to the cluster!`).
    pub async fn rados(&mut self) -> R<Rados> {
        if let Some(r) = &self.rados {
            return Ok(r.clone());
        }
        let cfg = self.common.to_config().map_err(|e| {
            let n = e.errno().0;
            Fail::new(format!("rbd: couldn't initialize rados!\nrbd-rs: {e}"), n)
        })?;
        let r = Rados::connect(cfg).await.map_err(|e| {
            let n = e.errno().0;
            Fail::new(
                format!("rbd: couldn't connect to the cluster!\nrbd-rs: {e}"),
                n,
            )
        })?;
        self.rados = Some(r.clone());
        Ok(r)
    }

    /// `utils::init_io_ctx`: open the pool (default pool if empty) and check the
    /// namespace exists.
    pub async fn ioctx(&mut self, pool: &str, ns: &str) -> R<IoCtx> {
        let pool = if pool.is_empty() {
            self.default_pool()
        } else {
            pool.to_string()
        };
        let rados = self.rados().await?;
        let mut io = match rados.ioctx(&pool).await {
            Ok(io) => io,
            Err(e) if e.is_not_found() && pool == self.default_pool() => {
                return Err(Fail::new(
                    format!(
                        "rbd: error opening default pool '{pool}'\nEnsure that the default pool has been created or specify an alternate pool name."
                    ),
                    2,
                ))
            }
            Err(e) => {
                let n = e.errno().0;
                return Err(Fail::new(format!("rbd: error opening pool '{pool}': ({n}) {}", strerror(n)), n));
            }
        };
        if !ns.is_empty() {
            // librbd Namespace::exists: dir_state_assert on the namespace's directory
            let mut nio = io.clone();
            nio.set_namespace(ns);
            match ceph_rbd::cls::dir_state_assert(0)
                .exec(&nio, ceph_rbd::util::RBD_DIRECTORY)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {
                    return Err(Fail::new(
                        format!("rbd: namespace '{ns}' does not exist."),
                        2,
                    ))
                }
                Err(e) => return Err(Fail::rbd("error asserting namespace", &e)),
            }
            io.set_namespace(ns);
        }
        Ok(io)
    }

    /// The [`Rbd`] handle of a spec's pool and namespace.
    pub async fn rbd(&mut self, s: &Spec) -> R<Rbd> {
        let expire = self.blocklist_expire_seconds()?;
        let cache = self.cache_config()?;
        Ok(Rbd::new(self.ioctx(&s.pool, &s.namespace).await?)
            .with_blocklist_expire_seconds(expire)
            .with_cache_config(cache))
    }

    /// The `rbd_cache*` options (overrides or ceph.conf) over librbd's defaults, with
    /// `rbd_cache_writethrough_until_flush` false unless given: the `rbd` tool sets it
    /// so (src/tools/rbd/Utils.cc `init_context`), since its commands flush before they
    /// finish and need no protection from write-around.
    pub fn cache_config(&self) -> R<CacheConfig> {
        let mut cfg = CacheConfig {
            writethrough_until_flush: false,
            ..CacheConfig::default()
        };
        for k in CACHE_OPTIONS {
            if let Some(v) = self.config(k) {
                cfg.set(k, &v)
                    .map_err(|_| Fail::usage(format!("rbd: invalid value for {k}: {v}")))?;
            }
        }
        Ok(cfg)
    }

    /// `rbd_blocklist_expire_seconds` (override or ceph.conf; 0: the cluster's default),
    /// for a dead exclusive-lock owner we break and for `rbd lock rm`.
    pub fn blocklist_expire_seconds(&self) -> R<u64> {
        match self.config("rbd_blocklist_expire_seconds") {
            None => Ok(0),
            Some(v) => v.trim().parse::<u64>().map_err(|_| {
                Fail::usage(format!(
                    "rbd: invalid value for rbd_blocklist_expire_seconds: {v}"
                ))
            }),
        }
    }

    /// `utils::open_image` (+ `snap_set`): open `s.image` (at `s.snap` if set).
    pub async fn open(&mut self, s: &Spec, mode: Mode) -> R<Image> {
        let rbd = self.rbd(s).await?;
        if let (true, Some(id)) = (s.image.is_empty(), self.args.get("image-id")) {
            // librbd opens by id, also an image in the trash (its name from the entry)
            let opts = OpenOptions {
                read_only: mode == Mode::ReadOnly || !s.snap.is_empty(),
                snapshot: (!s.snap.is_empty()).then(|| s.snap.clone()),
                no_watch: mode == Mode::ReadOnly || !s.snap.is_empty(),
                ..Default::default()
            };
            return rbd
                .open_by_id(id, &opts)
                .await
                .map_err(|e| Fail::rbd(&format!("error opening image {id}"), &e));
        }
        open_image(&rbd, &s.image, &s.snap, mode).await
    }

    /// `--format json|xml|plain` and `--pretty-format`: the formatter rbd would build, `None` for plain.
    pub fn json(&self) -> R<Option<fmt::Format>> {
        let pretty = self.args.flag("pretty-format");
        match self.args.get("format") {
            None | Some("plain") if pretty => Err(Fail::einval(
                "rbd: --pretty-format only works when --format is json or xml",
            )),
            None | Some("plain") => Ok(None),
            Some("json") => Ok(Some(fmt::Format::json(pretty))),
            Some("xml") => Ok(Some(fmt::Format::xml(pretty))),
            Some(_) => Err(args::invalid("format")),
        }
    }
}

/// Open an image with rbd's error line.
pub async fn open_image(rbd: &Rbd, name: &str, snap: &str, mode: Mode) -> R<Image> {
    let opts = OpenOptions {
        read_only: mode == Mode::ReadOnly,
        snapshot: None,
        no_watch: mode == Mode::ReadOnly,
        ..Default::default()
    };
    let img = rbd
        .open_with(name, &opts)
        .await
        .map_err(|e| Fail::rbd(&format!("error opening image {name}"), &e))?;
    if snap.is_empty() {
        return Ok(img);
    }
    // librbd's snap_set on the open image; we reopen at the snapshot
    let _ = img.close().await;
    let opts = OpenOptions {
        read_only: true,
        snapshot: Some(snap.to_string()),
        no_watch: true,
        ..Default::default()
    };
    rbd.open_with(name, &opts).await.map_err(|e| {
        if e.is_not_found() {
            Fail::errno("error setting snapshot context", 2).with_prefix_stripped()
        } else {
            Fail::rbd(&format!("error opening image {name}"), &e)
        }
    })
}

impl Fail {
    /// librbd prints `error setting snapshot context: ...` without the `rbd: ` prefix.
    fn with_prefix_stripped(mut self) -> Fail {
        if let Some(s) = self.msg.strip_prefix("rbd: ") {
            self.msg = s.to_string();
        }
        self
    }
}

/// Write text to stdout.
pub fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

/// Close an image, ignoring errors (its watch goes away).
pub async fn close(img: Image) {
    let _ = img.close().await;
}

/// The cache options rbd-rs acts on (see [`Ctx::cache_config`]).
const CACHE_OPTIONS: &[&str] = &[
    "rbd_cache",
    "rbd_cache_policy",
    "rbd_cache_max_dirty",
    "rbd_cache_writethrough_until_flush",
    "rbd_io_scheduler",
    "rbd_io_scheduler_simple_max_delay",
];

/// Configuration overrides rbd-rs acts on.
const HONORED: &[&str] = &[
    "rbd_cache",
    "rbd_cache_policy",
    "rbd_cache_max_dirty",
    "rbd_cache_writethrough_until_flush",
    "rbd_io_scheduler",
    "rbd_io_scheduler_simple_max_delay",
    "rbd_default_pool",
    "rbd_default_features",
    "rbd_default_clone_format",
    "rbd_move_to_trash_on_remove",
    "rbd_move_to_trash_on_remove_expire_seconds",
    "rbd_blocklist_on_break_lock",
    "rbd_blocklist_expire_seconds",
];

/// Other librbd options rbd accepts on the command line (not per-image overrides).
const OTHER_KNOWN: &[&str] = &[
    "rbd_default_order",
    "rbd_default_stripe_count",
    "rbd_default_stripe_unit",
    "rbd_default_data_pool",
    "rbd_default_format",
    "rbd_validate_pool",
    "rbd_validate_names",
    "rbd_auto_exclusive_lock_until_manual_request",
    "rbd_op_threads",
    "rbd_op_thread_timeout",
    "rbd_tracing",
];

/// No option may be accepted and silently ignored: `--rbd_*` overrides that are not
/// librbd options are refused like rbd refuses them (exit 1); real librbd options this
/// tool does not act on are accepted (scripts pass them) with a warning on stderr.
fn check_overrides(a: &Args) -> R {
    for k in a.config.keys() {
        if HONORED.contains(&k.as_str()) {
            continue;
        }
        if ceph_rbd::meta::option_kind(k).is_some() || OTHER_KNOWN.contains(&k.as_str()) {
            eprintln!("rbd-rs: warning: option {k} has no effect in rbd-rs");
            continue;
        }
        return Err(Fail::usage(format!("rbd: unrecognised option '--{k}'")));
    }
    Ok(())
}

/// `rbd-rs completion SHELL`: the shell's completion script, generated from the same
/// description the parser uses.
fn completion(shell: &str) -> R {
    let sh: clap_complete::Shell = shell.parse().map_err(|_| {
        Fail::einval(format!(
            "rbd-rs: completion: unknown shell '{shell}' (bash, zsh, fish, elvish, powershell)"
        ))
    })?;
    let mut buf = Vec::new();
    clap_complete::generate(sh, &mut cli::command(), "rbd-rs", &mut buf);
    out(&String::from_utf8_lossy(&buf));
    Ok(())
}

/// True in the daemon of a FUSE + loop `device map` (see [`ceph_cli::device_runtime`]).
pub fn is_fuse_device_daemon(args: &Args) -> bool {
    device::is_fuse_daemon(args)
}

/// Run the command line (after the global options were taken out).
pub async fn run(args: Args, common: CommonArgs) -> R {
    let mut c = Ctx::new(args, common);
    let words: Vec<String> = c.args.pos.clone();
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    // `help COMMAND`: that command's usage (rbd exits 0)
    let asked: &[String] = if w(0) == "help" { &words[1..] } else { &[] };
    if !asked.is_empty() {
        return match help::command_help(asked) {
            Some(h) => {
                out(&h);
                Ok(())
            }
            None => {
                out(&format!("{}\n", help::general()));
                Err(Fail::usage(format!(
                    "rbd-rs: no such command (or not implemented by rbd-rs): {}",
                    asked.join(" ")
                )))
            }
        };
    }
    if c.args.flag("help") {
        // `COMMAND --help`: that command's help (rbd 16.2 prints the general usage;
        // the command's is what a reader of `--help` wants), the command words being
        // the longest prefix of the positionals that names a command
        let h = (1..=words.len().min(4))
            .rev()
            .find_map(|n| help::command_help(&words[..n]))
            .unwrap_or_else(|| format!("{}\n", help::general()));
        out(&h);
        return Ok(());
    }
    if words.is_empty() || w(0) == "help" {
        out(&format!("{}\n", help::general()));
        return Ok(());
    }
    if w(0) == "completion" {
        return completion(w(1));
    }
    if let Some(cmd) = features::dispatch_words(w(0), w(1)) {
        c.args.pos.drain(..2);
        return features::run(&mut c, cmd).await;
    }
    // (command word count, handler)
    let (n, cmd) = match (w(0), w(1), w(2)) {
        ("pool", "init", _) => (2, "pool init"),
        ("pool", "stats", _) => (2, "pool stats"),
        ("device", "map" | "unmap" | "list" | "ls", _) => (2, "device"),
        ("nbd", "serve", _) => (2, "nbd serve"),
        ("snap", "limit", "set") => (3, "snap limit set"),
        ("snap", "limit", "clear") => (3, "snap limit clear"),
        ("snap", "create" | "add", _) => (2, "snap create"),
        ("snap", "list" | "ls", _) => (2, "snap ls"),
        ("snap", "remove" | "rm", _) => (2, "snap rm"),
        ("snap", "purge", _) => (2, "snap purge"),
        ("snap", "rename", _) => (2, "snap rename"),
        ("snap", "rollback" | "revert", _) => (2, "snap rollback"),
        ("snap", "protect", _) => (2, "snap protect"),
        ("snap", "unprotect", _) => (2, "snap unprotect"),
        ("image-meta", "list" | "ls", _) => (2, "image-meta list"),
        ("image-meta", "get", _) => (2, "image-meta get"),
        ("image-meta", "set", _) => (2, "image-meta set"),
        ("image-meta", "remove" | "rm", _) => (2, "image-meta remove"),
        ("trash", "move" | "mv", _) => (2, "trash mv"),
        ("trash", "list" | "ls", _) => (2, "trash ls"),
        ("trash", "remove" | "rm", _) => (2, "trash rm"),
        ("trash", "restore", _) => (2, "trash restore"),
        ("trash", "purge", _) => (2, "trash purge"),
        ("group", "image", "add") => (3, "group image add"),
        ("group", "image", "remove" | "rm") => (3, "group image rm"),
        ("group", "image", "list" | "ls") => (3, "group image ls"),
        ("group", "snap", "create") => (3, "group snap create"),
        ("group", "snap", "list" | "ls") => (3, "group snap ls"),
        ("group", "snap", "remove" | "rm") => (3, "group snap rm"),
        ("group", "snap", "rename") => (3, "group snap rename"),
        ("group", "snap", "rollback") => (3, "group snap rollback"),
        ("group", "create", _) => (2, "group create"),
        ("group", "list" | "ls", _) => (2, "group ls"),
        ("group", "remove" | "rm", _) => (2, "group rm"),
        ("group", "rename", _) => (2, "group rename"),
        ("namespace", "create", _) => (2, "namespace create"),
        ("namespace", "list" | "ls", _) => (2, "namespace ls"),
        ("namespace", "remove" | "rm", _) => (2, "namespace rm"),
        ("config", "image", "get") => (3, "config image get"),
        ("config", "image", "set") => (3, "config image set"),
        ("config", "image", "remove" | "rm") => (3, "config image rm"),
        ("config", "image", "list" | "ls") => (3, "config image list"),
        ("config", "pool", "get") => (3, "config pool get"),
        ("config", "pool", "set") => (3, "config pool set"),
        ("config", "pool", "remove" | "rm") => (3, "config pool rm"),
        ("config", "pool", "list" | "ls") => (3, "config pool list"),
        ("config", "global", "get") => (3, "config global get"),
        ("config", "global", "set") => (3, "config global set"),
        ("config", "global", "remove" | "rm") => (3, "config global rm"),
        ("config", "global", "list" | "ls") => (3, "config global list"),
        ("lock", "list" | "ls", _) => (2, "lock ls"),
        ("lock", "add", _) => (2, "lock add"),
        ("lock", "remove" | "rm", _) => (2, "lock rm"),
        ("deep", "cp" | "copy", _) => (2, "deep cp"),
        ("cp" | "copy", ..) => (1, "cp"),
        ("sparsify", ..) => (1, "sparsify"),
        ("merge-diff", ..) => (1, "merge-diff"),
        ("create", ..) => (1, "create"),
        ("list" | "ls", ..) => (1, "ls"),
        ("info", ..) => (1, "info"),
        ("remove" | "rm", ..) => (1, "rm"),
        ("rename" | "mv", ..) => (1, "rename"),
        ("resize", ..) => (1, "resize"),
        ("export", ..) => (1, "export"),
        ("import", ..) => (1, "import"),
        ("bench", ..) => (1, "bench"),
        ("bench-write", ..) => (1, "bench-write"),
        ("disk-usage" | "du", ..) => (1, "du"),
        ("status", ..) => (1, "status"),
        ("watch", ..) => (1, "watch"),
        ("clone", ..) => (1, "clone"),
        ("flatten", ..) => (1, "flatten"),
        ("children", ..) => (1, "children"),
        ("diff", ..) => (1, "diff"),
        ("export-diff", ..) => (1, "export-diff"),
        ("import-diff", ..) => (1, "import-diff"),
        _ => {
            let unknown = words.join(" ");
            out(&format!("{}\n", help::general()));
            return Err(Fail::usage(format!("error: unknown option '{unknown}'\n")));
        }
    };
    let cmd = match (cmd, w(1)) {
        ("device", "list" | "ls") => "device list",
        _ => cmd,
    };
    c.args.pos.drain(..n);
    check_overrides(&c.args)?;
    match cmd {
        "pool init" => image::pool_init(&mut c).await,
        "pool stats" => image::pool_stats(&mut c).await,
        "device" | "device list" => device::dispatch(&mut c, &words[1]).await,
        "nbd serve" => nbd::serve(&mut c).await,
        "create" => image::create(&mut c).await,
        "cp" => copy::copy(&mut c, false).await,
        "deep cp" => copy::copy(&mut c, true).await,
        "sparsify" => copy::sparsify(&mut c).await,
        "merge-diff" => copy::merge_diff(&mut c).await,
        "ls" => image::list(&mut c).await,
        "info" => image::info(&mut c).await,
        "rm" => match trash::remove_via_trash(&mut c).await {
            Some(r) => r,
            None => image::remove(&mut c).await,
        },
        "config image get" => config::get(&mut c, config::Level::Image).await,
        "config image set" => config::set(&mut c, config::Level::Image).await,
        "config image rm" => config::remove(&mut c, config::Level::Image).await,
        "config image list" => config::image_list(&mut c).await,
        "config pool get" => config::get(&mut c, config::Level::Pool).await,
        "config pool set" => config::set(&mut c, config::Level::Pool).await,
        "config pool rm" => config::remove(&mut c, config::Level::Pool).await,
        "config pool list" => config::pool_list(&mut c).await,
        "config global get" => config::global_get(&mut c).await,
        "config global set" => config::global_set(&mut c).await,
        "config global rm" => config::global_remove(&mut c).await,
        "config global list" => config::global_list(&mut c).await,
        "lock ls" => lock::list(&mut c).await,
        "lock add" => lock::add(&mut c).await,
        "lock rm" => lock::remove(&mut c).await,
        "image-meta list" => meta::list(&mut c).await,
        "image-meta get" => meta::get(&mut c).await,
        "image-meta set" => meta::set(&mut c).await,
        "image-meta remove" => meta::remove(&mut c).await,
        "trash mv" => trash::mv(&mut c).await,
        "trash ls" => trash::ls(&mut c).await,
        "trash rm" => trash::rm(&mut c).await,
        "trash restore" => trash::restore(&mut c).await,
        "trash purge" => trash::purge(&mut c).await,
        "group create" => group::create(&mut c).await,
        "group ls" => group::list(&mut c).await,
        "group rm" => group::remove(&mut c).await,
        "group rename" => group::rename(&mut c).await,
        "group image add" => group::image_add(&mut c).await,
        "group image rm" => group::image_remove(&mut c).await,
        "group image ls" => group::image_list(&mut c).await,
        "group snap create" => group::snap_create(&mut c).await,
        "group snap ls" => group::snap_list(&mut c).await,
        "group snap rm" => group::snap_remove(&mut c).await,
        "group snap rename" => group::snap_rename(&mut c).await,
        "group snap rollback" => group::snap_rollback(&mut c).await,
        "namespace create" => namespace::create(&mut c).await,
        "namespace ls" => namespace::list(&mut c).await,
        "namespace rm" => namespace::remove(&mut c).await,
        "rename" => image::rename(&mut c).await,
        "resize" => image::resize(&mut c).await,
        "status" => image::status(&mut c).await,
        "watch" => image::watch(&mut c).await,
        "du" => image::disk_usage(&mut c).await,
        "export" => transfer::export(&mut c).await,
        "import" => transfer::import(&mut c).await,
        "diff" => transfer::diff(&mut c).await,
        "export-diff" => transfer::export_diff(&mut c).await,
        "import-diff" => transfer::import_diff(&mut c).await,
        "bench" => bench::bench(&mut c, false).await,
        "bench-write" => bench::bench(&mut c, true).await,
        "clone" => snap::clone(&mut c).await,
        "flatten" => snap::flatten(&mut c).await,
        "children" => snap::children(&mut c).await,
        "snap create" => snap::create(&mut c).await,
        "snap ls" => snap::list(&mut c).await,
        "snap rm" => snap::remove(&mut c).await,
        "snap purge" => snap::purge(&mut c).await,
        "snap rename" => snap::rename(&mut c).await,
        "snap rollback" => snap::rollback(&mut c).await,
        "snap protect" => snap::protect(&mut c).await,
        "snap unprotect" => snap::unprotect(&mut c).await,
        "snap limit set" => snap::limit(&mut c, true).await,
        "snap limit clear" => snap::limit(&mut c, false).await,
        _ => unreachable!("dispatch table"),
    }
}
