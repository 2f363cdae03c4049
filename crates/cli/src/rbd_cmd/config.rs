//! `rbd config image get|set|remove|list` and `rbd config pool get|set|remove`:
//! librbd configuration overrides stored as `conf_<option>` metadata of the image
//! header or of the pool's `rbd_info`. ceph: src/tools/rbd/action/Config.cc,
//! src/librbd/api/Config.cc.

use super::args::{image_spec, pool_spec, SnapPresence, Spec, SpecCheck, Which};
use super::fmt::{Align, Json, TextTable};
use super::{close, open_image, out, strerror, Ctx, Fail, Mode, R};
use ceph_rbd::meta::{option_kind, CONF_PREFIX, OPTIONS};
use ceph_rbd::Rbd;

/// Image or pool level.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `config image`.
    Image,
    /// `config pool`.
    Pool,
}

/// The target: the pool's `Rbd` and, for image level, the image id.
async fn target(c: &mut Ctx, level: Level) -> R<(Rbd, Option<String>, usize)> {
    match level {
        Level::Image => {
            let s = image_spec(
                &c.args,
                &mut 0,
                Which::Source,
                true,
                SnapPresence::None,
                SpecCheck::None,
                &Spec::default(),
            )?;
            let rbd = c.rbd(&s).await?;
            let img = open_image(&rbd, &s.image, "", Mode::ReadOnly).await?;
            let id = img.id().to_string();
            close(img).await;
            let used = usize::from(c.args.get("image").is_none());
            Ok((rbd, Some(id), used))
        }
        Level::Pool => {
            let mut idx = 0;
            let (pool, _) = pool_spec(&c.args, &mut idx)?;
            let pool = if pool.is_empty() {
                c.default_pool()
            } else {
                pool
            };
            Ok((Rbd::new(c.ioctx(&pool, "").await?), None, idx))
        }
    }
}

fn key_arg(c: &Ctx, at: usize) -> R<String> {
    let k = c.args.pos.get(at).cloned().unwrap_or_default();
    if k.is_empty() {
        return Err(Fail::einval("rbd: config key was not specified"));
    }
    if option_kind(&k).is_none() {
        return Err(Fail::einval(format!("rbd: not rbd option: {k}")));
    }
    Ok(k)
}

/// `rbd config image|pool get TARGET KEY`.
pub async fn get(c: &mut Ctx, level: Level) -> R {
    let (rbd, id, at) = target(c, level).await?;
    let k = key_arg(c, at)?;
    let key = format!("{CONF_PREFIX}{k}");
    let r = match &id {
        Some(id) => rbd.metadata_get(id, &key).await,
        None => rbd.pool_metadata_get(&key).await,
    };
    match r {
        Ok(v) => {
            out(&format!("{}\n", String::from_utf8_lossy(&v)));
            Ok(())
        }
        Err(e) if e.is_not_found() => Err(Fail::new(format!("rbd: {k} is not set"), 2)),
        Err(e) => {
            let n = e.errno().0;
            Err(Fail::new(
                format!("rbd: failed to get {k}: ({n}) {}", strerror(n)),
                n,
            ))
        }
    }
}

/// `rbd config image|pool set TARGET KEY VALUE`.
pub async fn set(c: &mut Ctx, level: Level) -> R {
    let (rbd, id, at) = target(c, level).await?;
    let k = key_arg(c, at)?;
    let v = c.args.pos.get(at + 1).cloned().unwrap_or_default();
    if v.is_empty() {
        return Err(Fail::einval("rbd: config value was not specified"));
    }
    let key = format!("{CONF_PREFIX}{k}");
    let r = match &id {
        Some(id) => rbd.metadata_set(id, &key, v.as_bytes()).await,
        None => rbd.pool_metadata_set(&key, v.as_bytes()).await,
    };
    r.map_err(|e| {
        let n = e.errno().0;
        Fail::new(format!("rbd: failed to set {k}: ({n}) {}", strerror(n)), n)
    })
}

/// `rbd config image|pool remove TARGET KEY`.
pub async fn remove(c: &mut Ctx, level: Level) -> R {
    let (rbd, id, at) = target(c, level).await?;
    let k = key_arg(c, at)?;
    let key = format!("{CONF_PREFIX}{k}");
    let r = match &id {
        Some(id) => rbd.metadata_remove(id, &key).await,
        None => rbd.pool_metadata_remove(&key).await,
    };
    r.map_err(|e| {
        let n = e.errno().0;
        Fail::new(
            format!("rbd: failed to remove {k}: ({n}) {}", strerror(n)),
            n,
        )
    })
}

/// `rbd config image list IMAGE [--format json]`: every overridable option with its
/// effective value and where it comes from (image > pool > config).
pub async fn image_list(c: &mut Ctx) -> R {
    let json = c.json()?;
    let (rbd, id, _) = target(c, Level::Image).await?;
    let id = id.expect("image level");
    let err = |e: ceph_rbd::RbdError| {
        let n = e.errno().0;
        Fail::new(
            format!("rbd: listing config failed: ({n}) {}", strerror(n)),
            n,
        )
    };
    let img_meta = rbd.metadata(&id).await.map_err(err)?;
    let pool_meta = rbd.pool_metadata().await.map_err(err)?;
    let mut rows = Vec::new();
    for (name, _, default) in OPTIONS {
        let key = format!("{CONF_PREFIX}{name}");
        let (value, source) = if let Some(v) = img_meta.get(&key) {
            (String::from_utf8_lossy(v).into_owned(), "image")
        } else if let Some(v) = pool_meta.get(&key) {
            (String::from_utf8_lossy(v).into_owned(), "pool")
        } else {
            (
                c.config(name).unwrap_or_else(|| default.to_string()),
                "config",
            )
        };
        rows.push((name.to_string(), value, source));
    }
    match json {
        Some(pretty) => out(&Json::Arr(
            rows.iter()
                .map(|(n, v, s)| {
                    Json::obj(vec![
                        ("name", Json::s(n)),
                        ("value", Json::s(v)),
                        ("source", Json::s(*s)),
                    ])
                })
                .collect(),
        )
        .render(pretty)),
        None => {
            let mut t = TextTable::new(&[
                ("Name", Align::Left, Align::Left),
                ("Value", Align::Left, Align::Left),
                ("Source", Align::Left, Align::Left),
            ]);
            for (n, v, s) in &rows {
                t.row(vec![n.clone(), v.clone(), s.to_string()]);
            }
            out(&format!("There are {} values:\n{}", rows.len(), t.render()));
        }
    }
    Ok(())
}
