//! Moving data in and out: `export`, `import` (raw images, sparse), `diff`,
//! `export-diff`, `import-diff` (the `rbd diff v1` stream).
//! ceph: src/tools/rbd/action/{Export,Import,Diff,ExportDiff,ImportDiff}.cc

use super::args::{image_spec, SnapPresence, Spec, SpecCheck, Which};
use super::fmt::{Align, Json, Progress, TextTable};
use super::image::create_options;
use super::{close, out, Ctx, Fail, Mode, R};
use bytes::Bytes;
use ceph_rbd::{DiffExtent, Image, DIFF_V1_BANNER};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Requests in flight for export/import (`rbd_concurrent_management_ops`).
const IN_FLIGHT: usize = 10;
/// Zero runs of this size are skipped (`--sparse-size`, default 4 KiB).
const SPARSE: usize = 4096;

/// `--sparse-size` (0: write everything).
fn sparse_size(c: &Ctx) -> R<usize> {
    Ok(c.args
        .parsed("sparse-size", super::args::iec_size)?
        .map(|v| v as usize)
        .unwrap_or(SPARSE))
}

fn path_arg(c: &Ctx, idx: &mut usize) -> R<String> {
    if let Some(p) = c.args.get("path") {
        return Ok(p.to_string());
    }
    match c.args.pos.get(*idx) {
        Some(p) => {
            *idx += 1;
            Ok(p.clone())
        }
        None => Err(Fail::einval("rbd: path was not specified")),
    }
}

fn io_errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(5)
}

/// Non-zero runs of `buf` at `sparse` granularity: `(offset, len)` (0: all of it).
fn data_runs(buf: &[u8], sparse: usize) -> Vec<(usize, usize)> {
    if sparse == 0 {
        return if buf.is_empty() {
            Vec::new()
        } else {
            vec![(0, buf.len())]
        };
    }
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut o = 0;
    while o < buf.len() {
        let l = sparse.min(buf.len() - o);
        if buf[o..o + l].iter().any(|b| *b != 0) {
            match runs.last_mut() {
                Some(r) if r.0 + r.1 == o => r.1 += l,
                _ => runs.push((o, l)),
            }
        }
        o += l;
    }
    runs
}

/// `--export-format` / `--import-format`: 1 (raw bytes) or 2 (with snapshots and
/// image properties); true for 2.
fn export_format_v2(c: &Ctx, opt: &str) -> R<bool> {
    match c.args.get(opt) {
        None | Some("1") => Ok(false),
        Some("2") => Ok(true),
        Some(_) => Err(super::args::invalid(opt)),
    }
}

/// `rbd export IMAGE[@SNAP] FILE|-`.
pub async fn export(c: &mut Ctx) -> R {
    let mut idx = 0;
    let s = image_spec(
        &c.args,
        &mut idx,
        Which::Source,
        true,
        SnapPresence::Permitted,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let path = path_arg(c, &mut idx)?;
    let v2 = export_format_v2(c, "export-format")?;
    let img = c.open(&s, Mode::ReadOnly).await?;
    let p = Progress::new("Exporting image", c.args.no_progress());
    let sparse = sparse_size(c)?;
    let r = if v2 {
        export_v2_to(&img, &path).await
    } else {
        export_to(&img, &path, &p, sparse).await
    };
    close(img).await;
    match r {
        Ok(()) => {
            p.finish();
            Ok(())
        }
        Err(n) => {
            if n != 17 {
                p.fail();
            }
            Err(Fail::errno("export error", n))
        }
    }
}

async fn export_to(img: &Image, path: &str, p: &Progress, sparse: usize) -> Result<(), i32> {
    let size = img.size().await.map_err(|e| e.errno().0)?;
    let file = if path == "-" {
        None
    } else {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| io_errno(&e))?;
        Some(f)
    };
    let chunk = img
        .layout()
        .await
        .map_err(|e| e.errno().0)?
        .object_size
        .max(SPARSE as u64);
    let mut q: VecDeque<(u64, tokio::task::JoinHandle<ceph_rbd::Result<Bytes>>)> = VecDeque::new();
    let mut next = 0u64;
    let mut done = 0u64;
    loop {
        while q.len() < IN_FLIGHT && next < size {
            let len = chunk.min(size - next);
            let i = img.clone();
            let off = next;
            q.push_back((off, tokio::spawn(async move { i.read(off, len).await })));
            next += len;
        }
        let Some((off, h)) = q.pop_front() else { break };
        let data = h.await.map_err(|_| 5)?.map_err(|e| e.errno().0)?;
        match &file {
            Some(f) => {
                for (o, l) in data_runs(&data, sparse) {
                    f.write_all_at(&data[o..o + l], off + o as u64)
                        .map_err(|e| io_errno(&e))?;
                }
            }
            None => std::io::stdout()
                .write_all(&data)
                .map_err(|e| io_errno(&e))?,
        }
        done += data.len() as u64;
        p.update(done, size);
    }
    match &file {
        Some(f) => f.set_len(size).map_err(|e| io_errno(&e))?,
        None => std::io::stdout().flush().map_err(|e| io_errno(&e))?,
    }
    Ok(())
}

/// `export --export-format 2`: the stream to a new file (EEXIST if it exists, removed
/// again on failure) or stdout.
async fn export_v2_to(img: &Image, path: &str) -> Result<(), i32> {
    if path == "-" {
        let mut w = tokio::io::BufWriter::with_capacity(1 << 20, tokio::io::stdout());
        return img.export_v2(&mut w).await.map_err(|e| e.errno().0);
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io_errno(&e))?;
    let mut w = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(f));
    let r = img.export_v2(&mut w).await.map_err(|e| e.errno().0);
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// The source of an import: a file (size known) or stdin.
enum Source {
    File(std::fs::File, u64),
    Stdin,
}

impl Source {
    /// Fill `buf` as far as the input goes; returns the bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let r = match self {
                Source::File(f, _) => f.read(&mut buf[n..]),
                Source::Stdin => std::io::stdin().lock().read(&mut buf[n..]),
            };
            match r {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

/// `rbd import FILE|- [IMAGE]`.
pub async fn import(c: &mut Ctx) -> R {
    let mut idx = 0;
    let path = path_arg(c, &mut idx)?;
    // rbd 16.2 reads --export-format here (--import-format is its alias)
    let v2 = export_format_v2(c, "export-format")? || export_format_v2(c, "import-format")?;
    // the deprecated -p/--image name the destination too
    let defaults = Spec {
        pool: c.args.get("pool").unwrap_or("").to_string(),
        namespace: c.args.get("namespace").unwrap_or("").to_string(),
        ..Default::default()
    };
    let mut d = image_spec(
        &c.args,
        &mut idx,
        Which::Dest,
        false,
        SnapPresence::None,
        SpecCheck::Full,
        &defaults,
    )?;
    if c.args.get("pool").is_some() {
        eprintln!("rbd: -p [ --pool ] is deprecated, use --dest-pool");
    }
    if c.args.get("image").is_some() {
        eprintln!("rbd: --image is deprecated, use --dest");
    }
    if let (true, Some(v)) = (d.image.is_empty(), c.args.get("image")) {
        // the deprecated --image is a spec too: `--image POOL/NAME` (16.2 takes no
        // namespace or snapshot there)
        let p = super::args::split_spec(v, SpecCheck::None)
            .ok_or_else(|| Fail::einval(format!("rbd: invalid spec '{v}'")))?;
        if !p.namespace.is_empty() {
            return Err(Fail::einval(
                "rbd: namespace name specified for a command that doesn't use it",
            ));
        }
        if !p.snap.is_empty() {
            return Err(Fail::einval(
                "rbd: destination snapshot name specified for a command that doesn't use it",
            ));
        }
        if !p.pool.is_empty() {
            d.pool = p.pool;
        }
        d.image = p.image;
    }
    if d.image.is_empty() {
        d.image = c.args.get("image").map(str::to_string).unwrap_or_else(|| {
            std::path::Path::new(&path)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    }
    if d.image.is_empty() || (path == "-" && c.args.get("image").is_none() && d.image == "-") {
        return Err(Fail::einval(
            "rbd: destination image name was not specified",
        ));
    }
    let mut opts = create_options(c, false)?;
    let sparse = sparse_size(c)?;
    let p = Progress::new("Importing image", c.args.no_progress());
    if v2 {
        return import_v2(c, &d, &path, &mut opts, &p).await;
    }
    let mut src = if path == "-" {
        Source::Stdin
    } else {
        match std::fs::File::open(&path) {
            Ok(f) => {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                Source::File(f, len)
            }
            Err(e) => {
                let n = io_errno(&e);
                return Err(Fail::new(
                    format!(
                        "rbd: error opening {path}\nrbd: import failed: ({n}) {}",
                        super::strerror(n)
                    ),
                    n,
                ));
            }
        }
    };
    let order = opts.order.unwrap_or(22);
    let size = match &src {
        Source::File(_, l) => *l,
        Source::Stdin => 1u64 << order,
    };
    let rbd = c
        .rbd(&Spec {
            snap: String::new(),
            ..d.clone()
        })
        .await?;
    if let Err(e) = rbd.create(&d.image, size, &opts).await {
        p.fail();
        let n = e.errno().0;
        return Err(Fail::new(
            format!(
                "rbd: image creation failed\nrbd: import failed: ({n}) {}",
                super::strerror(n)
            ),
            n,
        ));
    }
    let img = match super::open_image(&rbd, &d.image, "", Mode::ReadWrite).await {
        Ok(i) => i,
        Err(f) => {
            p.fail();
            let _ = rbd.remove(&d.image).await;
            return Err(f);
        }
    };
    let r = import_from(&img, &mut src, size, &p, sparse).await;
    close(img).await;
    match r {
        Ok(()) => {
            p.finish();
            Ok(())
        }
        Err(n) => {
            p.fail();
            let _ = rbd.remove(&d.image).await;
            Err(Fail::errno("import failed", n))
        }
    }
}

/// `import --import-format 2`: the image's properties from the stream (the command
/// line's options win), then metadata, then each
/// snapshot's diff and the head's. A failed import removes the image again.
async fn import_v2(
    c: &mut Ctx,
    d: &Spec,
    path: &str,
    opts: &mut ceph_rbd::CreateOptions,
    p: &Progress,
) -> R {
    let fail = |n: i32, what: &str| {
        Fail::new(
            format!("{what}rbd: import failed: ({n}) {}", super::strerror(n)),
            n,
        )
    };
    let (mut r, file_len): (Box<dyn tokio::io::AsyncRead + Unpin + Send>, Option<u64>) =
        if path == "-" {
            (Box::new(tokio::io::stdin()), None)
        } else {
            match tokio::fs::File::open(path).await {
                Ok(f) => {
                    let len = f.metadata().await.map(|m| m.len()).ok();
                    (Box::new(f), len)
                }
                Err(e) => {
                    let n = io_errno(&e);
                    return Err(fail(n, &format!("rbd: error opening {path}\n")));
                }
            }
        };
    let mut r = tokio::io::BufReader::with_capacity(1 << 20, &mut r);
    let header = match ceph_rbd::export::read_export_header(&mut r).await {
        Ok(h) => h,
        Err(e) => {
            p.fail();
            return Err(fail(e.errno().0, "rbd: import header failed.\n"));
        }
    };
    header.apply_to(opts);
    // librbd creates the image at the file's size (stdin: one object) and lets the
    // first diff's size record set the real one
    let size = file_len.unwrap_or(1u64 << opts.order.unwrap_or(22));
    let rbd = c
        .rbd(&Spec {
            snap: String::new(),
            ..d.clone()
        })
        .await?;
    if let Err(e) = rbd.create(&d.image, size, opts).await {
        p.fail();
        return Err(fail(e.errno().0, "rbd: image creation failed\n"));
    }
    let img = match super::open_image(&rbd, &d.image, "", Mode::ReadWrite).await {
        Ok(i) => i,
        Err(f) => {
            p.fail();
            let _ = rbd.remove(&d.image).await;
            return Err(f);
        }
    };
    let res = img.import_v2_body(&header, &mut r).await;
    close(img).await;
    match res {
        Ok(()) => {
            p.finish();
            Ok(())
        }
        Err(e) => {
            p.fail();
            let _ = rbd.remove(&d.image).await;
            Err(fail(e.errno().0, "rbd: failed to import image\n"))
        }
    }
}

async fn import_from(
    img: &Image,
    src: &mut Source,
    mut size: u64,
    p: &Progress,
    sparse: usize,
) -> Result<(), i32> {
    let chunk = img.layout().await.map_err(|e| e.errno().0)?.object_size as usize;
    let stdin = matches!(src, Source::Stdin);
    let mut q: VecDeque<tokio::task::JoinHandle<ceph_rbd::Result<()>>> = VecDeque::new();
    let mut off = 0u64;
    loop {
        let mut buf = vec![0u8; chunk];
        let n = src.fill(&mut buf).map_err(|e| io_errno(&e))?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        if stdin && off + n as u64 > size {
            // grow ahead of the data (rbd import from stdin grows as it reads)
            while !q.is_empty() {
                q.pop_front()
                    .expect("queued")
                    .await
                    .map_err(|_| 5)?
                    .map_err(|e| e.errno().0)?;
            }
            size = (off + n as u64).max(size.saturating_mul(2));
            img.resize(size, false).await.map_err(|e| e.errno().0)?;
            // ceph-rbd clears its "stale" flag before the refreshed header is installed,
            // so requests issued during that refresh use the old size: refresh here,
            // before any new write is in flight
            img.refresh().await.map_err(|e| e.errno().0)?;
        }
        let data = Bytes::from(buf);
        for (o, l) in data_runs(&data, sparse) {
            if q.len() >= IN_FLIGHT {
                q.pop_front()
                    .expect("queued")
                    .await
                    .map_err(|_| 5)?
                    .map_err(|e| e.errno().0)?;
            }
            let i = img.clone();
            let d = data.slice(o..o + l);
            let at = off + o as u64;
            q.push_back(tokio::spawn(async move { i.write(at, d).await }));
        }
        off += n as u64;
        if !stdin {
            p.update(off, size);
        }
        if n < chunk {
            break;
        }
    }
    for h in q {
        h.await.map_err(|_| 5)?.map_err(|e| e.errno().0)?;
    }
    if stdin && off != size {
        img.resize(off, true).await.map_err(|e| e.errno().0)?;
    }
    img.flush().await.map_err(|e| e.errno().0)?;
    Ok(())
}

/// Split extents at object boundaries: librbd reports changes object by object.
fn per_object(ext: &[DiffExtent], object_size: u64) -> Vec<DiffExtent> {
    let mut out = Vec::with_capacity(ext.len());
    for e in ext {
        let mut o = e.offset;
        let end = e.offset + e.length;
        while o < end {
            let l = (object_size - o % object_size).min(end - o);
            out.push(DiffExtent {
                offset: o,
                length: l,
                exists: e.exists,
            });
            o += l;
        }
    }
    out
}

/// `rbd diff [--from-snap S] [--whole-object] IMAGE[@SNAP]`.
pub async fn diff(c: &mut Ctx) -> R {
    let s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        SnapPresence::Permitted,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let from = c.args.get("from-snap").map(str::to_string);
    let whole = c.args.flag("whole-object");
    let json = c.json()?;
    let img = c.open(&s, Mode::ReadOnly).await?;
    let r = async {
        let size = img.size().await?;
        let l = img.layout().await?;
        let ext = img
            .diff_iterate(from.as_deref(), 0, size, true, whole)
            .await?;
        Ok::<_, ceph_rbd::RbdError>(per_object(&ext, l.stripe_unit.min(l.object_size)))
    }
    .await;
    close(img).await;
    let ext = r.map_err(|e| Fail::rbd("diff error", &e))?;
    match json {
        Some(pretty) => {
            let arr = ext.iter().map(|e| {
                Json::obj(vec![
                    ("offset", Json::U(e.offset)),
                    ("length", Json::U(e.length)),
                    ("exists", Json::s(if e.exists { "true" } else { "false" })),
                ])
            });
            out(&Json::arr("extent", arr).render("extents", pretty));
        }
        None if ext.is_empty() => {}
        None => {
            let mut t = TextTable::new(&[
                ("Offset", Align::Left, Align::Left),
                ("Length", Align::Left, Align::Left),
                ("Type", Align::Left, Align::Left),
            ]);
            for e in &ext {
                t.row(vec![
                    e.offset.to_string(),
                    e.length.to_string(),
                    if e.exists { "data" } else { "zero" }.into(),
                ]);
            }
            out(&t.render());
        }
    }
    Ok(())
}

/// `rbd export-diff [--from-snap S] IMAGE[@SNAP] FILE|-`.
pub async fn export_diff(c: &mut Ctx) -> R {
    let mut idx = 0;
    let s = image_spec(
        &c.args,
        &mut idx,
        Which::Source,
        true,
        SnapPresence::Permitted,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let path = path_arg(c, &mut idx)?;
    let from = c.args.get("from-snap").map(str::to_string);
    let file = if path == "-" {
        None
    } else {
        match tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
        {
            Ok(f) => Some(f),
            Err(e) => return Err(Fail::errno("export-diff error", io_errno(&e))),
        }
    };
    let img = c.open(&s, Mode::ReadOnly).await?;
    let p = Progress::new("Exporting image", c.args.no_progress());
    let r = match file {
        Some(f) => {
            let mut w = tokio::io::BufWriter::with_capacity(1 << 20, f);
            let r = img.export_diff(from.as_deref(), &mut w).await;
            match r {
                Ok(()) => w
                    .flush()
                    .await
                    .map_err(|e| ceph_rbd::RbdError::Stream(e.to_string())),
                e => e,
            }
        }
        None => {
            let mut w = tokio::io::BufWriter::with_capacity(1 << 20, tokio::io::stdout());
            let r = img.export_diff(from.as_deref(), &mut w).await;
            match r {
                Ok(()) => w
                    .flush()
                    .await
                    .map_err(|e| ceph_rbd::RbdError::Stream(e.to_string())),
                e => e,
            }
        }
    };
    close(img).await;
    match r {
        Ok(()) => {
            p.finish();
            Ok(())
        }
        Err(e) => {
            p.fail();
            if path != "-" {
                let _ = std::fs::remove_file(&path);
            }
            Err(Fail::rbd("export-diff error", &e))
        }
    }
}

/// `rbd import-diff FILE|- IMAGE`.
pub async fn import_diff(c: &mut Ctx) -> R {
    let mut idx = 0;
    let path = path_arg(c, &mut idx)?;
    let s = image_spec(
        &c.args,
        &mut idx,
        Which::Source,
        true,
        SnapPresence::None,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let fail_open = |n: i32| {
        Fail::new(
            format!(
                "rbd: error opening {path}\nrbd: import-diff failed: ({n}) {}",
                super::strerror(n)
            ),
            n,
        )
    };
    let mut reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if path == "-" {
        Box::new(tokio::io::stdin())
    } else {
        match tokio::fs::File::open(&path).await {
            Ok(f) => Box::new(tokio::io::BufReader::with_capacity(1 << 20, f)),
            Err(e) => return Err(fail_open(io_errno(&e))),
        }
    };
    let mut banner = [0u8; 12];
    if reader.read_exact(&mut banner).await.is_err() || banner[..] != DIFF_V1_BANNER[..] {
        return Err(Fail::einval("rbd: invalid or unexpected diff banner\nrbd: import-diff failed: (22) Invalid argument"));
    }
    let img = c.open(&s, Mode::ReadWrite).await?;
    let p = Progress::new("Importing image diff", c.args.no_progress());
    let mut chained = AsyncReadExt::chain(&banner[..], reader);
    let r = img.import_diff(&mut chained).await;
    close(img).await;
    match r {
        Ok(()) => {
            p.finish();
            Ok(())
        }
        Err(e) => {
            p.fail();
            Err(Fail::rbd("import-diff failed", &e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_runs() {
        let mut b = vec![0u8; 5 * SPARSE + 100];
        b[SPARSE + 3] = 1;
        b[2 * SPARSE] = 1;
        b[5 * SPARSE + 99] = 1;
        assert_eq!(
            data_runs(&b, SPARSE),
            vec![(SPARSE, 2 * SPARSE), (5 * SPARSE, 100)]
        );
        assert_eq!(data_runs(&b, 0), vec![(0, b.len())]);
    }

    #[test]
    fn split_per_object() {
        let e = [DiffExtent {
            offset: 1000,
            length: 10 << 20,
            exists: true,
        }];
        let v = per_object(&e, 4 << 20);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].length, (4 << 20) - 1000);
        assert_eq!(v.iter().map(|x| x.length).sum::<u64>(), 10 << 20);
    }
}
