//! `rbd cp` / `copy`, `rbd deep cp` / `deep copy`, `rbd sparsify`, `rbd merge-diff`.
//! ceph: src/tools/rbd/action/{Copy,Sparsify,MergeDiff}.cc

use super::args::{iec_size, image_spec, SnapPresence, Spec, SpecCheck, Which};
use super::fmt::Progress;
use super::image::create_options;
use super::{close, Ctx, Fail, Mode, R};
use ceph_rbd::{features, CopyOptions, DEFAULT_SPARSE_SIZE};
use tokio::io::AsyncWriteExt;

/// `--sparse-size`: a size in B/K/M (rbd's `ImageSparseSize` takes any positive size
/// here and lets librbd judge it).
fn sparse_size(c: &Ctx) -> R<u64> {
    Ok(c.args
        .parsed("sparse-size", iec_size)?
        .unwrap_or(DEFAULT_SPARSE_SIZE))
}

/// `rbd cp SRC[@SNAP] DEST` (`deep = false`) and `rbd deep cp SRC[@SNAP] DEST`.
pub async fn copy(c: &mut Ctx, deep: bool) -> R {
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
    let d = image_spec(
        &c.args,
        &mut idx,
        Which::Dest,
        true,
        SnapPresence::None,
        SpecCheck::Full,
        &Spec::default(),
    )?;
    // unset layout options and features come from the source (librbd copy/deep_copy)
    let co = create_options(c, true)?;
    let opts = CopyOptions {
        order: co.order,
        features: co.features,
        stripe_unit: co.stripe_unit,
        stripe_count: co.stripe_count,
        data_pool: co.data_pool,
        sparse_size: if deep {
            DEFAULT_SPARSE_SIZE
        } else {
            sparse_size(c)?
        },
        flatten: deep && c.args.flag("flatten"),
    };
    let mut opts = opts;
    let src = c.open(&s, Mode::ReadOnly).await?;
    if c.args.flag("image-shared") && opts.features.is_none() {
        // librbd clears the single-client features from the source's
        // (RBD_IMAGE_OPTION_FEATURES_CLEAR)
        match src.features().await {
            Ok(f) => {
                let single = features::EXCLUSIVE_LOCK
                    | features::OBJECT_MAP
                    | features::FAST_DIFF
                    | features::JOURNALING;
                opts.features = Some(
                    f & features::CREATABLE
                        & !(single | features::STRIPINGV2 | features::DATA_POOL),
                );
            }
            Err(e) => {
                close(src).await;
                return Err(Fail::rbd("error reading the source's features", &e));
            }
        }
    }
    let dest = c.rbd(&d).await;
    let dest = match dest {
        Ok(r) => r,
        Err(f) => {
            close(src).await;
            return Err(f);
        }
    };
    let (label, what) = if deep {
        ("Image deep copy", "deep copy failed")
    } else {
        ("Image copy", "copy failed")
    };
    let p = Progress::new(label, c.args.no_progress());
    let r = if deep {
        src.deep_copy(&dest, &d.image, &opts, |a, b| p.update(a, b))
            .await
    } else {
        src.copy(&dest, &d.image, &opts, |a, b| p.update(a, b))
            .await
    };
    close(src).await;
    match r {
        Ok(()) => {
            p.finish();
            Ok(())
        }
        Err(e) => {
            p.fail();
            Err(Fail::rbd(what, &e))
        }
    }
}

/// `rbd sparsify [--sparse-size S] IMAGE`.
pub async fn sparsify(c: &mut Ctx) -> R {
    let s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        SnapPresence::None,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let size = sparse_size(c)?;
    let img = c.open(&s, Mode::ReadWrite).await?;
    let p = Progress::new("Image sparsify", c.args.no_progress());
    let r = img.sparsify(size, |a, b| p.update(a, b)).await;
    close(img).await;
    match r {
        Ok(()) => {
            p.finish();
            Ok(())
        }
        Err(e) => {
            p.fail();
            Err(Fail::rbd("sparsify error", &e))
        }
    }
}

/// `rbd merge-diff DIFF1 DIFF2 OUT` (`-` for stdin as the first, stdout as the output).
pub async fn merge_diff(c: &mut Ctx) -> R {
    let pos = c.args.pos.clone();
    let first = pos
        .first()
        .cloned()
        .ok_or_else(|| Fail::einval("rbd: first diff was not specified"))?;
    let second = pos
        .get(1)
        .cloned()
        .ok_or_else(|| Fail::einval("rbd: second diff was not specified"))?;
    let path = match c.args.get("path") {
        Some(p) => p.to_string(),
        None => pos
            .get(2)
            .cloned()
            .ok_or_else(|| Fail::einval("rbd: path was not specified"))?,
    };
    let p = Progress::new("Merging image diff", c.args.no_progress());
    // the tool prints its reason, the progress line, then `rbd: merge-diff error`
    let fail_with = |p: &Progress, msg: String, code: i32| {
        eprintln!("{msg}");
        p.fail();
        Fail::new("rbd: merge-diff error", code)
    };
    let fail = |p: &Progress, msg: String| fail_with(p, msg, 2);
    let open = |path: &str| {
        let path = path.to_string();
        async move {
            tokio::fs::File::open(&path)
                .await
                .map(|f| tokio::io::BufReader::with_capacity(1 << 20, f))
                .map_err(|_| format!("rbd: error opening {path}"))
        }
    };
    let mut r1: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if first == "-" {
        Box::new(tokio::io::BufReader::with_capacity(
            1 << 20,
            tokio::io::stdin(),
        ))
    } else {
        match open(&first).await {
            Ok(f) => Box::new(f),
            Err(m) => return Err(fail(&p, m)),
        }
    };
    if second == "-" {
        return Err(fail(
            &p,
            "rbd: merge-diff does not support stdin for the second diff".into(),
        ));
    }
    let mut r2 = match open(&second).await {
        Ok(f) => f,
        Err(m) => return Err(fail(&p, m)),
    };
    let mut w: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = if path == "-" {
        Box::new(tokio::io::BufWriter::with_capacity(
            1 << 20,
            tokio::io::stdout(),
        ))
    } else {
        match tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
        {
            Ok(f) => Box::new(tokio::io::BufWriter::with_capacity(1 << 20, f)),
            Err(_) => return Err(fail(&p, format!("rbd: error creating {path}"))),
        }
    };
    let r = ceph_rbd::merge_diffs(&mut r1, &mut r2, &mut w).await;
    let r = match r {
        Ok(()) => w
            .shutdown()
            .await
            .map_err(|e| ceph_rbd::RbdError::Stream(e.to_string())),
        e => e,
    };
    match r {
        Ok(()) => {
            p.finish();
            Ok(())
        }
        Err(e) => {
            if path != "-" {
                let _ = std::fs::remove_file(&path);
            }
            Err(fail_with(&p, format!("rbd-rs: {e}"), e.errno().0))
        }
    }
}
