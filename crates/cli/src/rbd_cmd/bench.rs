//! `rbd bench`: the same I/O pattern, per-second table and summary lines as the rbd
//! tool, plus the client CPU time per operation.
//! ceph: src/tools/rbd/action/Bench.cc (`do_bench`).

use super::args::{iec_size, image_spec, invalid, SnapPresence, Spec, SpecCheck, Which};
use super::fmt::{byte_u, fmt_g};
use super::{close, out, Ctx, Fail, Mode, R};
use bytes::Bytes;
use ceph_rbd::Image;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

/// One bench op: `Err((was_read, error))`.
type OpResult = Result<(), (bool, ceph_rbd::RbdError)>;
/// One bench op in flight.
type OpFuture = Pin<Box<dyn Future<Output = OpResult> + Send>>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum IoType {
    Read,
    Write,
    ReadWrite,
}

/// A small xorshift generator (the tool uses `rand()`).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// User + system CPU seconds of this process (`/proc/self/stat`, clock ticks).
pub fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// `rbd bench --io-type read|write|readwrite ...` (`bench-write` when `write_only`).
pub async fn bench(c: &mut Ctx, write_only: bool) -> R {
    let io_type = if write_only {
        eprintln!("rbd: bench-write is deprecated, use rbd bench --io-type write ...");
        IoType::Write
    } else {
        match c.args.get("io-type") {
            None => return Err(Fail::einval("rbd: --io-type must be specified.")),
            Some("read") => IoType::Read,
            Some("write") => IoType::Write,
            Some("readwrite" | "rw") => IoType::ReadWrite,
            Some(_) => return Err(invalid("io-type")),
        }
    };
    let presence = if io_type == IoType::Read {
        SnapPresence::Permitted
    } else {
        SnapPresence::None
    };
    let s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        presence,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let io_size = c.args.parsed("io-size", iec_size)?.unwrap_or(4096);
    if io_size == 0 {
        return Err(Fail::einval("rbd: --io-size should be greater than zero."));
    }
    let threads = c
        .args
        .parsed("io-threads", |v| v.parse::<u32>().ok())?
        .unwrap_or(16) as u64;
    if threads == 0 {
        return Err(Fail::einval(
            "rbd: --io-threads should be greater than zero.",
        ));
    }
    let total = c.args.parsed("io-total", iec_size)?.unwrap_or(1 << 30);
    let random = match c.args.get("io-pattern") {
        None | Some("seq") => false,
        Some("rand") => true,
        Some(_) => return Err(invalid("io-pattern")),
    };
    let read_pct = match io_type {
        IoType::Read => 100,
        IoType::Write => 0,
        IoType::ReadWrite => {
            let p = c
                .args
                .parsed("rw-mix-read", |v| v.parse::<u64>().ok())?
                .unwrap_or(50);
            if p > 100 {
                return Err(Fail::einval(
                    "rbd: --rw-mix-read should not be larger than 100.",
                ));
            }
            p
        }
    };
    let mode = if s.snap.is_empty() {
        Mode::ReadWrite
    } else {
        Mode::ReadOnly
    };
    let img = c.open(&s, mode).await?;
    let r = run(&img, io_type, io_size, threads, total, random, read_pct).await;
    close(img).await;
    r
}

async fn run(
    img: &Image,
    io_type: IoType,
    io_size: u64,
    threads: u64,
    total: u64,
    random: bool,
    read_pct: u64,
) -> R {
    let size = img
        .size()
        .await
        .map_err(|e| Fail::rbd("bench failed", &e))?;
    if io_size > size {
        return Err(Fail::einval(format!(
            "rbd: io-size {} larger than image size {}",
            byte_u(io_size),
            byte_u(size)
        )));
    }
    let type_str = match io_type {
        IoType::Read => "read".to_string(),
        IoType::Write => "write".to_string(),
        IoType::ReadWrite => format!("readwrite read:write={}:{}", read_pct, 100 - read_pct),
    };
    out(&format!(
        "bench  type {type_str} io_size {io_size} io_threads {threads} bytes {total} pattern {}\n",
        if random { "random" } else { "sequential" }
    ));
    // which write policy ran (librbd's default write-around or written through), on
    // stderr so stdout stays the same as rbd's
    if io_type != IoType::Read {
        eprintln!("rbd-rs: bench write policy: {}", img.cache_policy());
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    let mut rng = Rng(seed);
    let fill = (rng.next() & 0xff) as u8;
    let wbuf = Bytes::from(vec![fill; io_size as usize]);
    let blocks = size / io_size;
    let unit_len = size / io_size / threads;
    let mut offs: Vec<u64> = (0..threads)
        .map(|i| {
            if random {
                (rng.next() % blocks) * io_size
            } else {
                unit_len * i * io_size
            }
        })
        .collect();

    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let mut last: Option<f64> = None;
    // rolling sums over the last 5 one-second samples
    let mut window: VecDeque<(f64, f64, f64)> = VecDeque::new();
    let (mut cur_ios, mut cur_off) = (0u64, 0u64);
    let (mut ios, mut off) = (0u64, 0u64);
    let (mut read_ops, mut write_ops) = (0u64, 0u64);
    // The ops in flight are futures of this task, as librbd's bench keeps aio
    // completions rather than threads: a task per op would add a spawn, a join and a
    // scheduler round to every op, counted in the CPU per op this tool reports. The work
    // that scales with the bytes (crc or AES-GCM, copies) runs in the OSD session tasks
    // either way, on the runtime's workers when it has them.
    let mut set: FuturesUnordered<OpFuture> = FuturesUnordered::new();
    let reap = |r: Option<OpResult>| -> R {
        match r {
            Some(Err((read, e))) => {
                let n = e.errno().0;
                out(&format!(
                    "{} error: {}\n",
                    if read { "read" } else { "write" },
                    super::strerror(n)
                ));
                Err(Fail::new(String::new(), n))
            }
            _ => Ok(()),
        }
    };
    let mut table = String::from("  SEC       OPS   OPS/SEC   BYTES/SEC\n");
    out(&std::mem::take(&mut table));
    while off < total {
        let mut i = 0;
        while i < threads && off < total {
            let read = read_pct == 100 || (read_pct > 0 && rng.next() % 100 < read_pct);
            while set.len() as u64 >= threads {
                reap(set.next().await)?;
            }
            let im = img.clone();
            let at = offs[i as usize];
            if read {
                set.push(Box::pin(async move {
                    match im.read(at, io_size).await {
                        Ok(d) if d.len() as u64 == io_size => Ok(()),
                        Ok(_) => Err((
                            true,
                            ceph_rbd::RbdError::refused("short read", ceph_rados::Errno::EIO),
                        )),
                        Err(e) => Err((true, e)),
                    }
                }));
                read_ops += 1;
            } else {
                let b = wbuf.clone();
                set.push(Box::pin(async move {
                    im.write(at, b).await.map_err(|e| (false, e))
                }));
                write_ops += 1;
            }
            i += 1;
            ios += 1;
            off += io_size;
            cur_ios += 1;
            cur_off += io_size;
        }
        for (i, o) in offs.iter_mut().enumerate() {
            let i = i as u64;
            if random {
                *o = (rng.next() % blocks) * io_size;
                continue;
            }
            if off < io_size * unit_len * threads {
                *o += io_size;
            } else {
                *o = off + i * io_size;
            }
            if *o + io_size > size {
                *o = unit_len * i * io_size;
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        match last {
            None => last = Some(elapsed),
            Some(l) if elapsed as i64 != l as i64 => {
                window.push_back((elapsed - l, cur_ios as f64, cur_off as f64));
                if window.len() > 5 {
                    window.pop_front();
                }
                cur_ios = 0;
                cur_off = 0;
                let t: f64 = window.iter().map(|w| w.0).sum();
                let n: f64 = window.iter().map(|w| w.1).sum();
                let b: f64 = window.iter().map(|w| w.2).sum();
                out(&format!(
                    "{:>5}{:>10}{:>10}{:>10}/s\n",
                    elapsed as i64,
                    ios as i64 - threads as i64,
                    fmt_g(n / t),
                    byte_u((b / t) as u64)
                ));
                last = Some(elapsed);
            }
            Some(_) => {}
        }
    }
    while !set.is_empty() {
        reap(set.next().await)?;
    }
    if io_type != IoType::Read {
        if let Err(e) = img.flush().await {
            eprintln!(
                "rbd: failed to flush at the end: {}",
                super::strerror(e.errno().0)
            );
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let mut o = format!(
        "elapsed: {}   ops: {ios}   ops/sec: {}   bytes/sec: {}/s\n",
        elapsed as i64,
        fmt_g(ios as f64 / elapsed),
        byte_u((off as f64 / elapsed) as u64)
    );
    if io_type == IoType::ReadWrite {
        o += &format!(
            "read_ops: {read_ops}   read_ops/sec: {}   read_bytes/sec: {}/s\n",
            fmt_g(read_ops as f64 / elapsed),
            byte_u((read_ops as f64 * io_size as f64 / elapsed) as u64)
        );
        o += &format!(
            "write_ops: {write_ops}   write_ops/sec: {}   write_bytes/sec: {}/s\n",
            fmt_g(write_ops as f64 / elapsed),
            byte_u((write_ops as f64 * io_size as f64 / elapsed) as u64)
        );
    }
    o += &format!(
        "client cpu: {cpu:.2} s   cpu/op: {} s\n",
        fmt_g(if ios > 0 { cpu / ios as f64 } else { 0.0 })
    );
    out(&o);
    Ok(())
}
