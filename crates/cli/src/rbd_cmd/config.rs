//! `rbd config image get|set|remove|list` and `rbd config pool get|set|remove|list`:
//! librbd configuration overrides stored as `conf_<option>` metadata of the image
//! header or of the pool's `rbd_info`; `rbd config global get|set|remove|list`: the
//! monitors' configuration database (sections `global`, `client`, `client.<id>`).
//! ceph: src/tools/rbd/action/Config.cc, src/librbd/api/Config.cc.

use super::args::{image_spec, pool_spec, SnapPresence, Spec, SpecCheck, Which};
use super::fmt::{Align, Json, TextTable};
use super::{close, open_image, out, strerror, Ctx, Fail, Mode, R};
use ceph_rbd::meta::{pool_option_kind, CONF_PREFIX, OPTIONS, POOL_OPTIONS};
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
    if !k.starts_with("rbd_") {
        return Err(Fail::einval(format!("rbd: not rbd option: {k}")));
    }
    // an image-level override of a pool-only option is a valid key that librbd then
    // refuses to store (EINVAL from the set)
    if pool_option_kind(&k).is_none() {
        return Err(Fail::einval(format!("rbd: invalid config key: {k}")));
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

/// `rbd config image|pool list TARGET [--format json]`: every option the level may
/// override, with its effective value and where it comes from (image > pool > config).
pub async fn image_list(c: &mut Ctx) -> R {
    list(c, Level::Image).await
}

/// `rbd config pool list POOL`.
pub async fn pool_list(c: &mut Ctx) -> R {
    list(c, Level::Pool).await
}

async fn list(c: &mut Ctx, level: Level) -> R {
    let json = c.json()?;
    let (rbd, id, _) = target(c, level).await?;
    let err = |e: ceph_rbd::RbdError| {
        let n = e.errno().0;
        Fail::new(
            format!("rbd: listing config failed: ({n}) {}", strerror(n)),
            n,
        )
    };
    let img_meta = match &id {
        Some(id) => rbd.metadata(id).await.map_err(err)?,
        None => Default::default(),
    };
    let pool_meta = rbd.pool_metadata().await.map_err(err)?;
    let mut rows = Vec::new();
    let mut options: Vec<_> = OPTIONS.iter().collect();
    if level == Level::Pool {
        options.extend(POOL_OPTIONS.iter());
        options.sort_by_key(|o| o.0);
    }
    for (name, _, default) in options {
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
        Some(pretty) => out(&Json::arr(
            "option",
            rows.iter().map(|(n, v, s)| {
                Json::obj(vec![
                    ("name", Json::s(n)),
                    ("value", Json::s(v)),
                    ("source", Json::s(*s)),
                ])
            }),
        )
        .render("config", pretty)),
        None => {
            let mut t = TextTable::new(&[
                ("Name", Align::Left, Align::Left),
                ("Value", Align::Left, Align::Left),
                ("Source", Align::Left, Align::Left),
            ]);
            for (n, v, s) in &rows {
                t.row(vec![n.clone(), v.clone(), s.to_string()]);
            }
            // (rbd 16.2 counts the values for an image, not for a pool)
            match level {
                Level::Image => out(&format!("There are {} values:\n{}", rows.len(), t.render())),
                Level::Pool => out(&t.render()),
            }
        }
    }
    Ok(())
}

/// `config global` entity: `global`, `client` or `client.<id>`.
fn entity_arg(c: &Ctx) -> R<String> {
    let who = c.args.pos.first().cloned().unwrap_or_default();
    let ok = who == "global"
        || who == "client"
        || who.strip_prefix("client.").is_some_and(|id| !id.is_empty());
    if !ok {
        return Err(Fail::einval(format!(
            "rbd: invalid config entity: {who} (must be global, client or client.<id>)"
        )));
    }
    Ok(who)
}

/// The monitors' `config dump`: (section, name, value) of every entry.
async fn config_dump(c: &mut Ctx) -> R<Vec<(String, String, String)>> {
    let rados = c.rados().await?;
    let cmd = serde_json::json!({"prefix": "config dump", "format": "json"});
    let o = rados
        .mon_command(&cmd.to_string(), bytes::Bytes::new())
        .await
        .map_err(|e| {
            let n = e.errno().0;
            Fail::new(
                format!("rbd: error reading config: ({n}) {}", strerror(n)),
                n,
            )
        })?;
    let v: serde_json::Value = serde_json::from_slice(&o.data)
        .map_err(|e| Fail::new(format!("rbd: bad config dump from the monitors: {e}"), 5))?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["section"].as_str()?.to_string(),
                e["name"].as_str()?.to_string(),
                e["value"].as_str()?.to_string(),
            ))
        })
        .collect())
}

/// Run a monitor config command; its status text becomes the error (as rbd prints it).
async fn mon_config(c: &mut Ctx, cmd: serde_json::Value, what: &str) -> R {
    let rados = c.rados().await?;
    match rados
        .mon_command(&cmd.to_string(), bytes::Bytes::new())
        .await
    {
        Ok(_) => Ok(()),
        Err(ceph_rados::Error::Server { context, errno }) => {
            Err(Fail::new(format!("rbd: {what}: {context}"), errno.0))
        }
        Err(e) => {
            let n = e.errno().0;
            Err(Fail::new(format!("rbd: {what}: ({n}) {}", strerror(n)), n))
        }
    }
}

/// `rbd config global get ENTITY KEY`: the value set in exactly that section.
pub async fn global_get(c: &mut Ctx) -> R {
    let who = entity_arg(c)?;
    let k = key_arg(c, 1)?;
    match config_dump(c)
        .await?
        .into_iter()
        .find(|(s, n, _)| *s == who && *n == k)
    {
        Some((_, _, v)) => {
            out(&format!("{v}\n"));
            Ok(())
        }
        None => Err(Fail::new(format!("rbd: {k} is not set"), 2)),
    }
}

/// `rbd config global set ENTITY KEY VALUE` (the monitors check the value).
pub async fn global_set(c: &mut Ctx) -> R {
    let who = entity_arg(c)?;
    let k = key_arg(c, 1)?;
    let v = c.args.pos.get(2).cloned().unwrap_or_default();
    let cmd = serde_json::json!({"prefix": "config set", "who": who, "name": k, "value": v});
    mon_config(c, cmd, &format!("error setting {k}")).await
}

/// `rbd config global remove ENTITY KEY` (removing what is not set succeeds).
pub async fn global_remove(c: &mut Ctx) -> R {
    let who = entity_arg(c)?;
    let k = key_arg(c, 1)?;
    let cmd = serde_json::json!({"prefix": "config rm", "who": who, "name": k});
    mon_config(c, cmd, &format!("error removing {k}")).await
}

/// `rbd config global list ENTITY`: the `rbd_*` entries that apply to the entity
/// (`global` < `client` < `client.<id>`, the most specific wins), with their section.
pub async fn global_list(c: &mut Ctx) -> R {
    let json = c.json()?;
    let who = entity_arg(c)?;
    let chain: Vec<&str> = match who.as_str() {
        "global" => vec!["global"],
        "client" => vec!["global", "client"],
        w => vec!["global", "client", w],
    };
    let mut rows: std::collections::BTreeMap<String, (String, String, usize)> = Default::default();
    for (section, name, value) in config_dump(c).await? {
        let Some(rank) = chain.iter().position(|s| *s == section) else {
            continue;
        };
        if !name.starts_with("rbd_") {
            continue;
        }
        match rows.get(&name) {
            Some((_, _, r)) if *r > rank => {}
            _ => {
                rows.insert(name, (value, section, rank));
            }
        }
    }
    match json {
        Some(pretty) => out(&Json::arr(
            "option",
            rows.iter().map(|(n, (v, s, _))| {
                Json::obj(vec![
                    ("name", Json::s(n)),
                    ("value", Json::s(v)),
                    ("section", Json::s(s)),
                ])
            }),
        )
        .render("config", pretty)),
        None if rows.is_empty() => {}
        None => {
            let mut t = TextTable::new(&[
                ("Name", Align::Left, Align::Left),
                ("Value", Align::Left, Align::Left),
                ("Section", Align::Left, Align::Left),
            ]);
            for (n, (v, s, _)) in &rows {
                t.row(vec![n.clone(), v.clone(), s.clone()]);
            }
            out(&t.render());
        }
    }
    Ok(())
}
