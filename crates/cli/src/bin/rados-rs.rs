//! `rados-rs`: a `rados`-compatible command-line tool on the pure-Rust client.

use bytes::Bytes;
use ceph_cli::fmt::{Format, Json};
use ceph_cli::{common_setup, fail, hexdump, parse_size, usage_error};
use ceph_rados::{Errno, Error, IoCtx, Rados};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: rados-rs [options] <command> [args]
global options: -c CONF  -m MONADDR  --id NAME | -n TYPE.NAME  --keyring PATH  --key KEY  --debug
                -p POOL  -N NAMESPACE  --all  --format json|json-pretty|xml|xml-pretty
commands:
  lspools                         list pools
  status                          cluster summary as JSON
  mon-command JSON [-i INFILE]    run a monitor command, print its output
  mkpool POOL [PG_NUM]            create a pool
  rmpool POOL POOL --yes-i-really-really-mean-it
  osd-map POOL OBJECT             placement of an object (like `ceph osd map`)
  crush-test -i MAP --rule R --num-rep N --min-x A --max-x B [--weight OSD W]...
  ls                              list objects
  put OBJ FILE|-                  write an object from a file or stdin
  get OBJ FILE|-                  read an object to a file or stdout
  rm OBJ...                       remove objects
  stat OBJ                        size and mtime
  truncate OBJ SIZE
  create OBJ
  listomapkeys OBJ | listomapvals OBJ | getomapval OBJ KEY [FILE]
  setomapval OBJ KEY VALUE | rmomapkey OBJ KEY | clearomap OBJ
  listxattr OBJ | getxattr OBJ NAME | setxattr OBJ NAME VALUE | rmxattr OBJ NAME
  listwatchers OBJ
  bench SECONDS write|seq|rand [-b SIZE] [-t CONCURRENCY] [--no-cleanup]";

struct Opts {
    pool: Option<String>,
    nspace: String,
    all_ns: bool,
    json: bool,
    /// `--format json|json-pretty|xml|xml-pretty` for the commands rados formats.
    format: Option<Format>,
    block_size: u64,
    threads: usize,
    no_cleanup: bool,
    infile: Option<String>,
    rest: Vec<String>,
}

fn parse_opts(args: Vec<String>) -> Opts {
    let mut o = Opts {
        pool: None,
        nspace: String::new(),
        all_ns: false,
        json: false,
        format: None,
        block_size: 4 << 20,
        threads: 16,
        no_cleanup: false,
        infile: None,
        rest: vec![],
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut val = |name: &str| -> String {
            inline
                .clone()
                .or_else(|| it.next())
                .unwrap_or_else(|| usage_error(&format!("{name} needs a value")))
        };
        match flag.as_str() {
            "-p" | "--pool" => o.pool = Some(val("--pool")),
            "-N" | "--namespace" => o.nspace = val("--namespace"),
            "--all" => o.all_ns = true,
            "-f" | "--format" => {
                let f = val("--format");
                o.json = f.starts_with("json");
                o.format = match f.as_str() {
                    "json" => Some(Format::json(false)),
                    "json-pretty" => Some(Format::json(true)),
                    "xml" => Some(Format::xml(false)),
                    "xml-pretty" => Some(Format::xml(true)),
                    // rados builds its formatter before any command and refuses any
                    // other name, `plain` included, with -EINVAL from main (status 234)
                    _ => {
                        eprintln!("unrecognized format: {f}");
                        std::process::exit(234);
                    }
                };
            }
            "-b" | "--block-size" => {
                o.block_size =
                    parse_size(&val("-b"), false).unwrap_or_else(|| usage_error("bad block size"))
            }
            "-t" | "--concurrent-ios" => {
                o.threads = val("-t")
                    .parse()
                    .unwrap_or_else(|_| usage_error("bad concurrency"))
            }
            "--no-cleanup" => o.no_cleanup = true,
            "-i" | "--input-file" => o.infile = Some(val("-i")),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            _ => o.rest.push(a),
        }
    }
    o
}

/// See the `mimalloc` feature in Cargo.toml.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    ceph_cli::tune_allocator();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (common, rest) = common_setup(args).unwrap_or_else(|e| fail("rados-rs", &e));
    let opts = parse_opts(rest);
    if opts.rest.is_empty() {
        usage_error(USAGE);
    }
    // put/setomapval/setxattr read stdin and files with blocking calls: only `bench`
    // runs on the leaner current-thread runtime
    let rt = ceph_cli::runtime(opts.rest[0] != "bench");
    let code = rt.block_on(async move {
        // crush-test needs no cluster.
        if opts.rest[0] == "crush-test" {
            return crush_test(&opts.rest[1..], opts.infile.clone());
        }
        let cfg = common.to_config().unwrap_or_else(|e| fail("rados-rs", &e));
        let rados = Rados::connect(cfg)
            .await
            .unwrap_or_else(|e| fail("failed to connect to the cluster", &e));
        match run(&rados, &opts).await {
            Ok(()) => 0,
            Err((prefix, e)) => fail(&prefix, &e),
        }
    });
    std::process::exit(code);
}

type CmdResult = Result<(), (String, Error)>;

fn err(prefix: impl Into<String>) -> impl FnOnce(Error) -> (String, Error) {
    let p = prefix.into();
    move |e| (p, e)
}

fn need<'a>(args: &'a [String], n: usize, usage: &str) -> &'a [String] {
    if args.len() < n {
        usage_error(&format!("usage: rados-rs {usage}"));
    }
    args
}

async fn ioctx(rados: &Rados, o: &Opts) -> Result<IoCtx, (String, Error)> {
    let Some(p) = &o.pool else {
        usage_error("error: no pool specified (-p POOL)")
    };
    let mut io = rados
        .ioctx(p)
        .await
        .map_err(err(format!("error opening pool {p}")))?;
    io.set_namespace(&o.nspace);
    Ok(io)
}

async fn run(rados: &Rados, o: &Opts) -> CmdResult {
    let cmd = o.rest[0].as_str();
    let a = &o.rest[1..];
    let mut out = std::io::stdout().lock();
    match cmd {
        "lspools" => {
            for (_, name) in rados.pool_list() {
                let _ = writeln!(out, "{name}");
            }
        }
        "status" => {
            let m = rados.osdmap();
            let mm = rados.mon().monmap();
            let osds: Vec<i32> = (0..m.max_osd).filter(|o| m.exists(*o)).collect();
            let up = osds.iter().filter(|o| m.is_up(**o)).count();
            let inn = osds.iter().filter(|o| m.is_in(**o)).count();
            let v = serde_json::json!({
                "fsid": mm.as_ref().map(|x| x.fsid.to_string()),
                "monmap": {
                    "epoch": mm.as_ref().map(|x| x.epoch),
                    "mons": mm.as_ref().map(|x| x.mons.iter().map(|mon| serde_json::json!({
                        "name": mon.name, "addrs": mon.addrs.to_string()})).collect::<Vec<_>>()),
                },
                "osdmap": {"epoch": m.epoch, "num_osds": osds.len(), "num_up_osds": up, "num_in_osds": inn},
                "pools": rados.pool_list().iter().map(|(id, n)| serde_json::json!({"id": id, "name": n})).collect::<Vec<_>>(),
                "client": format!("client.{}", rados.instance_id()),
            });
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).expect("json"));
        }
        "mon-command" => {
            need(a, 1, "mon-command JSON");
            let input = match &o.infile {
                Some(f) => Bytes::from(
                    std::fs::read(f).map_err(|e| ("reading input".to_string(), Error::Io(e)))?,
                ),
                None => Bytes::new(),
            };
            let r = rados
                .mon_command(&a[0], input)
                .await
                .map_err(err("mon command failed"))?;
            if !r.status.is_empty() {
                eprintln!("{}", r.status);
            }
            let _ = out.write_all(&r.data);
        }
        "mkpool" => {
            need(a, 1, "mkpool POOL [PG_NUM]");
            let pg = a.get(1).and_then(|s| s.parse().ok());
            rados
                .pool_create(&a[0], pg)
                .await
                .map_err(err(format!("error creating pool {}", a[0])))?;
            let _ = writeln!(out, "successfully created pool {}", a[0]);
        }
        "rmpool" => {
            need(a, 2, "rmpool POOL POOL --yes-i-really-really-mean-it");
            if a[0] != a[1] || !a.iter().any(|x| x == "--yes-i-really-really-mean-it") {
                usage_error("WARNING: this will *PERMANENTLY DESTROY* all data; repeat the pool name and pass --yes-i-really-really-mean-it");
            }
            rados
                .pool_delete(&a[0])
                .await
                .map_err(err(format!("error deleting pool {}", a[0])))?;
            let _ = writeln!(out, "successfully deleted pool {}", a[0]);
        }
        "osd-map" => {
            need(a, 2, "osd-map POOL OBJECT");
            let pool = rados.pool_lookup(&a[0]).await.map_err(err("error"))?;
            let m = rados.osdmap();
            let (raw, pg) = m
                .object_to_pg(pool, &a[1], &o.nspace, None)
                .map_err(|e| ("error".to_string(), Error::InvalidArgument(e.to_string())))?;
            let (up, up_primary, acting, acting_primary) = m.pg_to_up_acting(pg);
            if o.json {
                let v = serde_json::json!({
                    "epoch": m.epoch, "pool": a[0], "pool_id": pool, "objname": a[1],
                    "raw_pgid": format!("{}.{:x}", raw.pool, raw.seed), "pgid": pg.to_string(),
                    "up": up, "up_primary": up_primary, "acting": acting, "acting_primary": acting_primary,
                });
                let _ = writeln!(out, "{v}");
            } else {
                let _ = writeln!(
                    out,
                    "osdmap e{} pool '{}' ({}) object '{}' -> pg {}.{:x} ({}) -> up ({:?}, p{}) acting ({:?}, p{})",
                    m.epoch, a[0], pool, a[1], raw.pool, raw.seed, pg, up, up_primary, acting, acting_primary
                );
            }
        }
        "ls" => {
            let mut io = ioctx(rados, o).await?;
            if o.all_ns {
                io.set_namespace("\u{1}");
            }
            let list = io
                .list_objects()
                .await
                .map_err(err("error listing objects"))?;
            if let Some(f) = o.format {
                let objs = list.iter().map(|e| {
                    Json::obj(vec![
                        ("namespace", Json::s(&e.nspace)),
                        ("name", Json::s(&e.oid)),
                    ])
                });
                let mut s = Json::arr("object", objs).render("objects", f);
                // rados flushes its formatter without the line break rbd enables: the
                // compact forms end without a newline (the pretty ones keep theirs)
                if !f.pretty {
                    s.pop();
                }
                let _ = out.write_all(s.as_bytes());
                return Ok(());
            }
            for e in list {
                if o.all_ns {
                    let _ = writeln!(out, "{}\t{}", e.nspace, e.oid);
                } else {
                    let _ = writeln!(out, "{}", e.oid);
                }
            }
        }
        "put" => {
            need(a, 2, "put OBJ FILE|-");
            let io = ioctx(rados, o).await?;
            let data = if a[1] == "-" {
                let mut v = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut v)
                    .map_err(|e| ("error reading stdin".to_string(), Error::Io(e)))?;
                v
            } else {
                std::fs::read(&a[1])
                    .map_err(|e| (format!("error reading {}", a[1]), Error::Io(e)))?
            };
            io.write_full(&a[0], Bytes::from(data))
                .await
                .map_err(err(format!(
                    "error putting {}/{}",
                    o.pool.as_deref().unwrap_or(""),
                    a[0]
                )))?;
        }
        "get" => {
            need(a, 2, "get OBJ FILE|-");
            let io = ioctx(rados, o).await?;
            let data = io.read_full(&a[0]).await.map_err(err(format!(
                "error getting {}/{}",
                o.pool.as_deref().unwrap_or(""),
                a[0]
            )))?;
            if a[1] == "-" {
                let _ = out.write_all(&data);
            } else {
                std::fs::write(&a[1], &data)
                    .map_err(|e| (format!("error writing {}", a[1]), Error::Io(e)))?;
            }
        }
        "rm" => {
            need(a, 1, "rm OBJ...");
            let io = ioctx(rados, o).await?;
            for obj in a {
                io.remove(obj).await.map_err(err(format!(
                    "error removing {}>{}",
                    o.pool.as_deref().unwrap_or(""),
                    obj
                )))?;
            }
        }
        "create" => {
            need(a, 1, "create OBJ");
            let io = ioctx(rados, o).await?;
            io.create(&a[0], true).await.map_err(err(format!(
                "error creating {}/{}",
                o.pool.as_deref().unwrap_or(""),
                a[0]
            )))?;
        }
        "truncate" => {
            need(a, 2, "truncate OBJ SIZE");
            let io = ioctx(rados, o).await?;
            let size = a[1].parse().unwrap_or_else(|_| usage_error("bad size"));
            io.truncate(&a[0], size)
                .await
                .map_err(err(format!("error truncating {}", a[0])))?;
        }
        "stat" => {
            need(a, 1, "stat OBJ");
            let io = ioctx(rados, o).await?;
            let pool = o.pool.clone().unwrap_or_default();
            let st = io
                .stat(&a[0])
                .await
                .map_err(err(format!(" error stat-ing {pool}/{}", a[0])))?;
            let _ = writeln!(
                out,
                "{pool}/{} mtime {}, size {}",
                a[0],
                format_mtime(st.mtime),
                st.size
            );
        }
        "listomapkeys" => {
            need(a, 1, "listomapkeys OBJ");
            let io = ioctx(rados, o).await?;
            let vals = io.omap_get_all(&a[0]).await.map_err(err(format!(
                "error getting omap keys {}/{}",
                o.pool.as_deref().unwrap_or(""),
                a[0]
            )))?;
            for k in vals.keys() {
                let _ = writeln!(out, "{k}");
            }
        }
        "listomapvals" => {
            need(a, 1, "listomapvals OBJ");
            let io = ioctx(rados, o).await?;
            let vals = io.omap_get_all(&a[0]).await.map_err(err(format!(
                "error getting omap keys {}/{}",
                o.pool.as_deref().unwrap_or(""),
                a[0]
            )))?;
            for (k, v) in vals {
                let _ = writeln!(out, "{k}");
                let _ = write!(out, "value ({} bytes) :\n{}\n", v.len(), hexdump(&v));
            }
        }
        "getomapval" => {
            need(a, 2, "getomapval OBJ KEY [FILE]");
            let io = ioctx(rados, o).await?;
            let keys: BTreeSet<String> = [a[1].clone()].into();
            let vals = io
                .omap_get_vals_by_keys(&a[0], &keys)
                .await
                .map_err(err(format!(
                    "error getting omap value {}/{}/{}",
                    o.pool.as_deref().unwrap_or(""),
                    a[0],
                    a[1]
                )))?;
            match vals.get(&a[1]) {
                Some(v) => match a.get(2) {
                    Some(f) if f != "-" => std::fs::write(f, v)
                        .map_err(|e| (format!("error writing {f}"), Error::Io(e)))?,
                    Some(_) => {
                        let _ = out.write_all(v);
                    }
                    None => {
                        let _ = write!(out, "value ({} bytes) :\n{}\n", v.len(), hexdump(v));
                    }
                },
                None => {
                    let _ = writeln!(
                        out,
                        "No such key: {}/{}/{}",
                        o.pool.as_deref().unwrap_or(""),
                        a[0],
                        a[1]
                    );
                    return Err(("".into(), Error::server("", Errno::ENOENT)));
                }
            }
        }
        "setomapval" => {
            need(a, 2, "setomapval OBJ KEY [VALUE]");
            let io = ioctx(rados, o).await?;
            let value = match (a.get(2), &o.infile) {
                (Some(v), _) => Bytes::from(v.clone().into_bytes()),
                (None, Some(f)) => Bytes::from(
                    std::fs::read(f).map_err(|e| (format!("error reading {f}"), Error::Io(e)))?,
                ),
                (None, None) => {
                    let mut v = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut v)
                        .map_err(|e| ("stdin".to_string(), Error::Io(e)))?;
                    Bytes::from(v)
                }
            };
            let kv: BTreeMap<String, Bytes> = [(a[1].clone(), value)].into();
            io.omap_set(&a[0], &kv)
                .await
                .map_err(err(format!("error setting omap value {}", a[0])))?;
        }
        "rmomapkey" => {
            need(a, 2, "rmomapkey OBJ KEY");
            let io = ioctx(rados, o).await?;
            let keys: BTreeSet<String> = [a[1].clone()].into();
            io.omap_rm_keys(&a[0], &keys)
                .await
                .map_err(err(format!("error removing omap key {}", a[0])))?;
        }
        "clearomap" => {
            need(a, 1, "clearomap OBJ");
            let io = ioctx(rados, o).await?;
            io.omap_clear(&a[0])
                .await
                .map_err(err(format!("error clearing omap {}", a[0])))?;
        }
        "listxattr" => {
            need(a, 1, "listxattr OBJ");
            let io = ioctx(rados, o).await?;
            let x = io
                .getxattrs(&a[0])
                .await
                .map_err(err(format!("error getting xattr set {}", a[0])))?;
            for k in x.keys() {
                let _ = writeln!(out, "{k}");
            }
        }
        "getxattr" => {
            need(a, 2, "getxattr OBJ NAME");
            let io = ioctx(rados, o).await?;
            let v = io.getxattr(&a[0], &a[1]).await.map_err(err(format!(
                "error getting xattr {}/{}/{}",
                o.pool.as_deref().unwrap_or(""),
                a[0],
                a[1]
            )))?;
            let _ = out.write_all(&v);
        }
        "setxattr" => {
            need(a, 2, "setxattr OBJ NAME [VALUE]");
            let io = ioctx(rados, o).await?;
            let v = match a.get(2) {
                Some(v) => v.clone().into_bytes(),
                None => {
                    let mut v = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut v)
                        .map_err(|e| ("stdin".to_string(), Error::Io(e)))?;
                    v
                }
            };
            io.setxattr(&a[0], &a[1], &v).await.map_err(err(format!(
                "error setting xattr {}/{}/{}",
                o.pool.as_deref().unwrap_or(""),
                a[0],
                a[1]
            )))?;
        }
        "rmxattr" => {
            need(a, 2, "rmxattr OBJ NAME");
            let io = ioctx(rados, o).await?;
            io.rmxattr(&a[0], &a[1]).await.map_err(err(format!(
                "error removing xattr {}/{}/{}",
                o.pool.as_deref().unwrap_or(""),
                a[0],
                a[1]
            )))?;
        }
        "listwatchers" => {
            need(a, 1, "listwatchers OBJ");
            let io = ioctx(rados, o).await?;
            let w = io.list_watchers(&a[0]).await.map_err(err(format!(
                "error listing watchers {}/{}",
                o.pool.as_deref().unwrap_or(""),
                a[0]
            )))?;
            for x in w {
                let addr = x
                    .addr
                    .addr
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    out,
                    "watcher={addr}/{} {} cookie={}",
                    x.addr.nonce, x.name, x.cookie
                );
            }
        }
        "bench" => {
            need(a, 2, "bench SECONDS write|seq|rand");
            let io = ioctx(rados, o).await?;
            let secs: u64 = a[0].parse().unwrap_or_else(|_| usage_error("bad seconds"));
            let no_cleanup = o.no_cleanup || a.iter().any(|x| x == "--no-cleanup");
            bench(&io, secs, &a[1], o.block_size, o.threads, no_cleanup).await?;
        }
        other => usage_error(&format!("unrecognized command {other}; try --help")),
    }
    Ok(())
}

fn format_mtime(t: ceph_encoding::UTime) -> String {
    // rados prints the mtime as a time_t (whole seconds) in local time, UTC on these machines:
    // YYYY-MM-DDTHH:MM:SS.000000+0000.
    let secs = t.sec as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}+0000",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        0
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

async fn bench(
    io: &IoCtx,
    secs: u64,
    mode: &str,
    bs: u64,
    threads: usize,
    no_cleanup: bool,
) -> CmdResult {
    let prefix = format!("benchmark_data_rados-rs_{}", std::process::id());
    let meta = "benchmark_last_metadata_rados-rs";
    let data = Bytes::from(vec![0x5au8; bs as usize]);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (objects, bs) = match mode {
        "write" => (0u64, bs),
        "seq" | "rand" => {
            let m = io.read_full(meta).await.map_err(err(
                "no benchmark data: run a write bench with --no-cleanup first",
            ))?;
            let s = String::from_utf8_lossy(&m).to_string();
            let mut it = s.split_whitespace();
            let n: u64 = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            let b: u64 = it.next().and_then(|x| x.parse().ok()).unwrap_or(bs);
            (n, b)
        }
        _ => usage_error("bench mode must be write, seq or rand"),
    };
    let prefix_read = if mode == "write" {
        prefix.clone()
    } else {
        let m = io
            .read_full(meta)
            .await
            .map_err(err("reading bench metadata"))?;
        String::from_utf8_lossy(&m)
            .split_whitespace()
            .nth(2)
            .unwrap_or("")
            .to_string()
    };
    let cpu0 = cpu_seconds();
    let mut tasks = Vec::new();
    for t in 0..threads {
        let io = io.clone();
        let counter = counter.clone();
        let data = data.clone();
        let prefix = prefix_read.clone();
        let mode = mode.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = t as u64;
            let mut rng = 0x9e3779b97f4a7c15u64 ^ t as u64;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let t0 = Instant::now();
                let r = match mode.as_str() {
                    "write" => {
                        io.write_full(&format!("{prefix}_object{n}"), data.clone())
                            .await
                    }
                    "seq" => {
                        if n >= objects {
                            break;
                        }
                        io.read(&format!("{prefix}_object{n}"), 0, bs)
                            .await
                            .map(|_| ())
                    }
                    _ => {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        io.read(&format!("{prefix}_object{}", rng % objects.max(1)), 0, bs)
                            .await
                            .map(|_| ())
                    }
                };
                r?;
                lat.push(t0.elapsed().as_secs_f64());
                i += 1;
            }
            let _ = i;
            Ok::<Vec<f64>, Error>(lat)
        }));
    }
    let mut lats = Vec::new();
    for t in tasks {
        lats.extend(
            t.await
                .expect("bench task")
                .map_err(err("bench op failed"))?,
        );
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let ops = lats.len() as u64;
    let mb = ops as f64 * bs as f64 / (1 << 20) as f64;
    lats.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let avg = if ops > 0 {
        lats.iter().sum::<f64>() / ops as f64
    } else {
        0.0
    };
    println!("Total time run:         {elapsed:.4}");
    println!(
        "Total {}s made:      {ops}",
        if mode == "write" { "write" } else { "read" }
    );
    println!(
        "{} size:             {bs}",
        if mode == "write" { "Write" } else { "Read" }
    );
    println!("Bandwidth (MB/sec):     {:.3}", mb / elapsed);
    println!("Average IOPS:           {:.0}", ops as f64 / elapsed);
    println!("Average Latency(s):     {avg:.6}");
    println!(
        "Max latency(s):         {:.6}",
        lats.last().copied().unwrap_or(0.0)
    );
    println!(
        "Min latency(s):         {:.6}",
        lats.first().copied().unwrap_or(0.0)
    );
    println!(
        "Client CPU seconds/op:  {:.9}",
        if ops > 0 { cpu / ops as f64 } else { 0.0 }
    );
    if mode == "write" {
        if no_cleanup {
            let m = format!("{ops} {bs} {prefix}");
            io.write_full(meta, Bytes::from(m))
                .await
                .map_err(err("writing bench metadata"))?;
        } else {
            for n in 0..ops {
                let _ = io.remove(&format!("{prefix}_object{n}")).await;
            }
        }
    }
    Ok(())
}

/// User+system CPU seconds of this process (from /proc/self/stat).
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn crush_test(args: &[String], infile: Option<String>) -> i32 {
    // `-i MAP` was already taken by the global option parser as the input file.
    let mut map = infile;
    let (mut rule, mut num_rep, mut min_x, mut max_x) = (0i32, 1usize, 0u32, 1023u32);
    let mut weights: Vec<(i32, u32)> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| usage_error(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "-i" => map = Some(v()),
            "--rule" => rule = v().parse().unwrap_or_else(|_| usage_error("bad --rule")),
            "--num-rep" => num_rep = v().parse().unwrap_or_else(|_| usage_error("bad --num-rep")),
            "--min-x" => min_x = v().parse().unwrap_or_else(|_| usage_error("bad --min-x")),
            "--max-x" => max_x = v().parse().unwrap_or_else(|_| usage_error("bad --max-x")),
            "--weight" => {
                let osd = v()
                    .parse()
                    .unwrap_or_else(|_| usage_error("bad --weight osd"));
                let w: f64 = v()
                    .parse()
                    .unwrap_or_else(|_| usage_error("bad --weight value"));
                weights.push((osd, (w * 65536.0) as u32));
            }
            "--test" | "--show-mappings" => {}
            other => usage_error(&format!("crush-test: unknown option {other}")),
        }
    }
    let path = map.unwrap_or_else(|| usage_error("crush-test needs -i MAP"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| fail("crush-test", &Error::Io(e)));
    let cm = ceph_rados::crush::CrushMap::decode(&bytes)
        .unwrap_or_else(|e| fail("crush-test: bad map", &Error::Decode(e)));
    let w = cm.crushtool_weights(&weights);
    for l in ceph_rados::crush::crushtool_test_lines(&cm, rule, num_rep, min_x, max_x, &w) {
        println!("{l}");
    }
    0
}
