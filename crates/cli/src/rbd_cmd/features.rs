//! `rbd feature enable|disable` and `rbd object-map check|rebuild`
//! (ceph: src/tools/rbd/action/Feature.cc, ObjectMap.cc).

use super::args::{image_spec, SnapPresence, Spec, SpecCheck, Which};
use super::fmt::Progress;
use super::{close, Ctx, Fail, Mode, R};
use ceph_rbd::features;

/// The first word after the dispatcher's command words: handled here?
pub fn dispatch_words(w0: &str, w1: &str) -> Option<&'static str> {
    match (w0, w1) {
        ("feature", "enable") => Some("feature enable"),
        ("feature", "disable") => Some("feature disable"),
        ("object-map", "check") => Some("object-map check"),
        ("object-map", "rebuild") => Some("object-map rebuild"),
        _ => None,
    }
}

/// Run one of this module's commands (after the command words were drained).
pub async fn run(c: &mut Ctx, cmd: &str) -> R {
    match cmd {
        "feature enable" => feature(c, true).await,
        "feature disable" => feature(c, false).await,
        "object-map check" => object_map(c, false).await,
        "object-map rebuild" => object_map(c, true).await,
        _ => unreachable!("features dispatch"),
    }
}

/// `rbd feature enable|disable IMAGE FEATURE...`.
async fn feature(c: &mut Ctx, enable: bool) -> R {
    let mut idx = 0;
    let s = image_spec(
        &c.args,
        &mut idx,
        Which::Source,
        true,
        SnapPresence::None,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let names: Vec<String> = c.args.pos.iter().skip(idx).cloned().collect();
    if names.is_empty() {
        return Err(Fail::einval(
            "rbd: at least one feature name must be specified",
        ));
    }
    let mut mask = 0;
    for n in names.iter().flat_map(|n| n.split(',')) {
        match features::parse_feature(n) {
            Some(b) => mask |= b,
            None => {
                return Err(Fail::usage(format!(
                    "rbd: the argument ('{n}') for option '--features' is invalid"
                )))
            }
        }
    }
    let img = c.open(&s, Mode::ReadWrite).await?;
    let r = img.update_features(mask, enable).await;
    close(img).await;
    r.map_err(|e| {
        let detail = match &e {
            ceph_rbd::RbdError::InvalidArgument(m) => format!("rbd-rs: {m}\n"),
            _ => String::new(),
        };
        let f = Fail::rbd("failed to update image features", &e);
        Fail::new(format!("{detail}{}", f.msg), f.code)
    })
}

/// `rbd object-map check|rebuild IMAGE[@SNAP]`.
async fn object_map(c: &mut Ctx, rebuild: bool) -> R {
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
    let snap = (!s.snap.is_empty()).then(|| s.snap.clone());
    let head = Spec {
        snap: String::new(),
        ..s.clone()
    };
    let op = if rebuild {
        "Object Map Rebuild"
    } else {
        "Object Map Check"
    };
    let p = Progress::new(op, c.args.no_progress());
    let mode = if rebuild {
        Mode::ReadWrite
    } else {
        Mode::ReadOnly
    };
    let img = c.open(&head, mode).await?;
    if rebuild {
        let r = img.object_map_rebuild(snap.as_deref()).await;
        close(img).await;
        return match r {
            Ok(()) => {
                p.finish();
                Ok(())
            }
            Err(e) => {
                p.fail();
                Err(Fail::rbd("rebuilding object map failed", &e))
            }
        };
    }
    let r = img.object_map_check(snap.as_deref()).await;
    let prefix = img.object_prefix().await.unwrap_or_default();
    close(img).await;
    match r {
        Ok(bad) => {
            for (ono, have, want) in &bad {
                eprintln!(
                    "rbd-rs: object map error: object {prefix}.{ono:016x} marked as {have}, but should be {want}"
                );
            }
            if !bad.is_empty() {
                eprintln!("rbd-rs: object map check found {} errors", bad.len());
            }
            p.finish();
            Ok(())
        }
        Err(e) => {
            p.fail();
            Err(Fail::rbd("checking object map failed", &e))
        }
    }
}
