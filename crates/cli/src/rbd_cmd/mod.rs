//! `rbd-rs`: the `rbd` tool's commands on the pure-Rust client, with its argument forms,
//! output (byte for byte where scripts parse it), messages and exit statuses (the errno).
//! ceph: src/tools/rbd (Shell.cc, Utils.cc, action/*.cc), Ceph 16.2.

pub mod args;
pub mod fmt;

mod bench;
mod device;
mod image;
mod nbd;
mod snap;
mod transfer;

use args::{Args, Spec};
use ceph_rados::{CommonArgs, IoCtx, Rados};
use ceph_rbd::{Image, OpenOptions, Rbd, RbdError};
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
        Ok(Rbd::new(self.ioctx(&s.pool, &s.namespace).await?))
    }

    /// `utils::open_image` (+ `snap_set`): open `s.image` (at `s.snap` if set).
    pub async fn open(&mut self, s: &Spec, mode: Mode) -> R<Image> {
        let rbd = self.rbd(s).await?;
        open_image(&rbd, &s.image, &s.snap, mode).await
    }

    /// `--format json|plain` and `--pretty-format`: `Some(pretty)` for JSON.
    pub fn json(&self) -> R<Option<bool>> {
        let pretty = self.args.flag("pretty-format");
        match self.args.get("format") {
            None | Some("plain") if pretty => Err(Fail::einval(
                "rbd: --pretty-format only works when --format is json or xml",
            )),
            None | Some("plain") => Ok(None),
            Some("json") => Ok(Some(pretty)),
            Some("xml") => Err(Fail::einval(
                "rbd-rs: --format xml is not supported; use json",
            )),
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

pub const USAGE: &str = "usage: rbd-rs [global options] <command> [args]

Commands (the `rbd` tool's syntax, options and output):
  pool init [--force] POOL
  create [--size SIZE] [--image-feature F]... [--order N | --object-size S]
         [--stripe-unit S --stripe-count N] [--data-pool P] IMAGE
  list (ls) [-l] [POOL[/NAMESPACE]]
  info IMAGE[@SNAP]
  remove (rm) IMAGE
  rename (mv) IMAGE DEST
  resize --size SIZE [--allow-shrink] IMAGE
  export IMAGE[@SNAP] FILE|-
  import [--image-feature F]... FILE|- [IMAGE]
  bench --io-type read|write|readwrite [--io-size S] [--io-threads N]
        [--io-total S] [--io-pattern seq|rand] IMAGE
  disk-usage (du) [IMAGE[@SNAP]] [--from-snap S] [--exact]
  status IMAGE
  snap create|ls|rm|purge|rename|rollback|protect|unprotect IMAGE@SNAP ...
  snap limit set --limit N IMAGE | snap limit clear IMAGE
  clone PARENT@SNAP CHILD [--rbd-default-clone-format 1|2|auto]
  flatten IMAGE
  children [-a] IMAGE[@SNAP]
  diff [--from-snap S] [--whole-object] IMAGE[@SNAP]
  export-diff [--from-snap S] IMAGE[@SNAP] FILE|-
  import-diff FILE|- IMAGE
  device map [--read-only] [--exclusive] [-o OPTS] IMAGE[@SNAP] | device unmap DEV|IMAGE
  device list [--format json]
  nbd serve [--bind ADDR:PORT | --socket PATH] [--read-only] IMAGE[@SNAP]

IMAGE is [POOL/[NAMESPACE/]]NAME (or -p POOL --namespace NS --image NAME --snap SNAP).
Common options: --format plain|json [--pretty-format], --no-progress.
Global options: -c CONF  -m MONADDR  --id NAME | -n TYPE.NAME  --keyring PATH  --key KEY
                --keyfile PATH  --debug";

/// Run the command line (after the global options were taken out).
pub async fn run(args: Args, common: CommonArgs) -> R {
    let mut c = Ctx::new(args, common);
    let words: Vec<String> = c.args.pos.clone();
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    if c.args.flag("help") || words.is_empty() || w(0) == "help" {
        out(&format!("{USAGE}\n"));
        return Ok(());
    }
    // (command word count, handler)
    let (n, cmd) = match (w(0), w(1), w(2)) {
        ("pool", "init", _) => (2, "pool init"),
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
        ("clone", ..) => (1, "clone"),
        ("flatten", ..) => (1, "flatten"),
        ("children", ..) => (1, "children"),
        ("diff", ..) => (1, "diff"),
        ("export-diff", ..) => (1, "export-diff"),
        ("import-diff", ..) => (1, "import-diff"),
        _ => {
            let unknown = words.join(" ");
            out(&format!("{USAGE}\n"));
            return Err(Fail::usage(format!("error: unknown option '{unknown}'\n")));
        }
    };
    c.args.pos.drain(..n);
    if c.args.get("image-id").is_some() {
        return Err(Fail::einval(
            "rbd-rs: --image-id is not supported; name the image instead",
        ));
    }
    match cmd {
        "pool init" => image::pool_init(&mut c).await,
        "device" => device::dispatch(&mut c, &words[1]).await,
        "nbd serve" => nbd::serve(&mut c).await,
        "create" => image::create(&mut c).await,
        "ls" => image::list(&mut c).await,
        "info" => image::info(&mut c).await,
        "rm" => image::remove(&mut c).await,
        "rename" => image::rename(&mut c).await,
        "resize" => image::resize(&mut c).await,
        "status" => image::status(&mut c).await,
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
