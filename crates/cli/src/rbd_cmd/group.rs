//! `rbd group create|ls|rm|rename`, `rbd group image add|rm|ls` and
//! `rbd group snap create|ls|rm|rename|rollback`, with Pacific's argument forms,
//! messages and exit statuses. ceph: src/tools/rbd/action/Group.cc (16.2).

use super::args::{split_spec, Args, SpecCheck};
use super::fmt::{Align, Json, Progress, TextTable};
use super::{out, Ctx, Fail, R};
use ceph_rbd::cls::group_snap_state;
use ceph_rbd::{Rbd, RbdError};

/// A `[POOL/[NAMESPACE/]]NAME[@SNAP]` group (or image) spec.
#[derive(Debug, Default, Clone)]
struct GSpec {
    pool: String,
    ns: String,
    name: String,
    snap: String,
}

/// Which option names a spec is read from (rbd's argument modifiers).
struct Keys {
    pool: &'static str,
    ns: &'static str,
    name: &'static str,
    /// `rbd: <what> name was not specified`.
    what: &'static str,
}

const GROUP: Keys = Keys {
    pool: "pool",
    ns: "namespace",
    name: "group",
    what: "group",
};
const DEST_GROUP: Keys = Keys {
    pool: "dest-pool",
    ns: "dest-namespace",
    name: "dest-group",
    what: "destination group",
};
/// `group image add|rm`: the group side (`--pool` is not consulted by 16.2 here).
const SPECIAL_GROUP: Keys = Keys {
    pool: "group-pool",
    ns: "group-namespace",
    name: "group",
    what: "group",
};
const SPECIAL_IMAGE: Keys = Keys {
    pool: "image-pool",
    ns: "image-namespace",
    name: "image",
    what: "image",
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Snap {
    None,
    Required,
}

/// `utils::get_pool_generic_snapshot_names`: the name option is taken as a plain
/// name; otherwise the next positional argument is split like a full spec.
fn gspec(a: &Args, idx: &mut usize, k: &Keys, snap: Snap) -> R<GSpec> {
    let mut s = GSpec {
        pool: a.get(k.pool).unwrap_or("").into(),
        ns: a.get(k.ns).unwrap_or("").into(),
        ..Default::default()
    };
    if k.name == "group" {
        s.snap = a.get("snap").unwrap_or("").into();
    }
    if let Some(n) = a.get(k.name) {
        s.name = n.into();
    } else if let Some(p) = a.pos.get(*idx) {
        *idx += 1;
        let p = split_spec(p, SpecCheck::Full)
            .ok_or_else(|| Fail::einval(format!("rbd: invalid spec '{p}'")))?;
        if !p.pool.is_empty() {
            s.pool = p.pool;
        }
        if !p.namespace.is_empty() {
            s.ns = p.namespace;
        }
        s.name = p.image;
        if !p.snap.is_empty() {
            s.snap = p.snap;
        }
    }
    if s.name.is_empty() {
        return Err(Fail::einval(format!(
            "rbd: {} name was not specified",
            k.what
        )));
    }
    match snap {
        Snap::None if !s.snap.is_empty() => Err(Fail::einval(
            "rbd: snapshot name specified for a command that doesn't use it",
        )),
        Snap::Required if s.snap.is_empty() => {
            Err(Fail::einval("rbd: snapshot name was not specified"))
        }
        _ => Ok(s),
    }
}

async fn handle(c: &mut Ctx, s: &GSpec) -> R<Rbd> {
    Ok(Rbd::new(c.ioctx(&s.pool, &s.ns).await?))
}

/// `rbd: <what>: (<errno>) <strerror>` with the errno as exit status.
fn fail(what: &str, e: &RbdError) -> Fail {
    Fail::errno(what, e.errno().0)
}

/// Exit status only: 16.2 prints nothing of its own for these failures (librbd's log
/// line is all the user sees).
fn silent(e: &RbdError) -> Fail {
    Fail::new("", e.errno().0)
}

/// `rbd group create [POOL/[NS/]]GROUP`.
pub async fn create(c: &mut Ctx) -> R {
    let s = gspec(&c.args, &mut 0, &GROUP, Snap::None)?;
    let rbd = handle(c, &s).await?;
    rbd.group_create(&s.name)
        .await
        .map_err(|e| fail("create error", &e))
}

/// `rbd group ls [POOL[/NS]] [--format json]`.
pub async fn list(c: &mut Ctx) -> R {
    let (pool, ns) = super::args::pool_spec(&c.args, &mut 0)?;
    let json = c.json()?;
    let rbd = Rbd::new(c.ioctx(&pool, &ns).await?);
    let names = rbd.group_list().await.map_err(|e| silent(&e))?;
    match json {
        Some(pretty) => out(&Json::arr("name", names.iter().map(Json::s)).render("groups", pretty)),
        None => {
            for n in names {
                out(&format!("{n}\n"));
            }
        }
    }
    Ok(())
}

/// `rbd group rm [POOL/[NS/]]GROUP`: snapshots and memberships go with it.
pub async fn remove(c: &mut Ctx) -> R {
    let s = gspec(&c.args, &mut 0, &GROUP, Snap::None)?;
    let rbd = handle(c, &s).await?;
    rbd.group_remove(&s.name)
        .await
        .map_err(|e| fail("remove error", &e))
}

/// `rbd group rename SRC DEST` (same pool and namespace).
pub async fn rename(c: &mut Ctx) -> R {
    let mut idx = 0;
    let s = gspec(&c.args, &mut idx, &GROUP, Snap::None)?;
    let d = gspec(&c.args, &mut idx, &DEST_GROUP, Snap::None)?;
    if s.pool != d.pool {
        return Err(Fail::einval(format!(
            "rbd: group rename across pools not supported\nsource pool: {}, dest pool: {}",
            s.pool, d.pool
        )));
    }
    if s.ns != d.ns {
        return Err(Fail::einval(format!(
            "rbd: group rename across namespaces not supported\nsource namespace: {}, dest namespace: {}",
            s.ns, d.ns
        )));
    }
    let rbd = handle(c, &s).await?;
    rbd.group_rename(&s.name, &d.name)
        .await
        .map_err(|e| fail("failed to rename group", &e))
}

async fn group_and_image(c: &mut Ctx) -> R<(GSpec, GSpec, Rbd, Rbd)> {
    let mut idx = 0;
    let g = gspec(&c.args, &mut idx, &SPECIAL_GROUP, Snap::None)?;
    let i = gspec(&c.args, &mut idx, &SPECIAL_IMAGE, Snap::None)?;
    if g.ns != i.ns {
        return Err(Fail::einval("rbd: group and image namespace must match."));
    }
    let grbd = handle(c, &g).await?;
    let irbd = handle(c, &i).await?;
    Ok((g, i, grbd, irbd))
}

/// `rbd group image add GROUP_SPEC IMAGE_SPEC` (`--group-pool`, `--image-pool`, ...).
pub async fn image_add(c: &mut Ctx) -> R {
    let (g, i, grbd, irbd) = group_and_image(c).await?;
    grbd.group_image_add(&g.name, &irbd, &i.name)
        .await
        .map_err(|e| fail("add image error", &e))
}

/// `rbd group image rm GROUP_SPEC IMAGE_SPEC`.
pub async fn image_remove(c: &mut Ctx) -> R {
    let (g, i, grbd, irbd) = group_and_image(c).await?;
    grbd.group_image_remove(&g.name, &irbd, &i.name)
        .await
        .map_err(|e| fail("remove image error", &e))
}

/// `rbd group image ls GROUP_SPEC [--format json]` (a missing group lists nothing).
pub async fn image_list(c: &mut Ctx) -> R {
    let s = gspec(&c.args, &mut 0, &GROUP, Snap::None)?;
    let json = c.json()?;
    let rbd = handle(c, &s).await?;
    let mut images = match rbd.group_image_list(&s.name).await {
        Ok(v) => v,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(silent(&e)),
    };
    // rbd sorts the members by pool, then name (the group header keeps them by id)
    images.sort_by(|a, b| (a.pool_id, &a.name).cmp(&(b.pool_id, &b.name)));
    let pools = c.rados().await?.pool_list();
    let pool_name = |id: i64| {
        pools
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| format!("<missing image pool {id}>"))
    };
    let ns = rbd.ioctx().namespace().to_string();
    if let Some(pretty) = json {
        let arr = images.iter().map(|i| {
            Json::obj(vec![
                ("image", Json::s(&i.name)),
                ("pool", Json::s(pool_name(i.pool_id))),
                ("namespace", Json::s(&ns)),
                ("state", Json::I(i.state as i64)),
            ])
        });
        out(&Json::arr("image", arr).render("images", pretty));
        return Ok(());
    }
    for i in &images {
        let state = if i.state == ceph_rbd::cls::link_state::INCOMPLETE {
            "incomplete"
        } else {
            ""
        };
        let nsp = if ns.is_empty() {
            String::new()
        } else {
            format!("{ns}/")
        };
        out(&format!(
            "{}/{nsp}{} {state}\n",
            pool_name(i.pool_id),
            i.name
        ));
    }
    Ok(())
}

/// `rbd group snap create GROUP@SNAP` (also `--group`/`--snap`).
pub async fn snap_create(c: &mut Ctx) -> R {
    let s = gspec(&c.args, &mut 0, &GROUP, Snap::Required)?;
    let rbd = handle(c, &s).await?;
    rbd.group_snap_create(&s.name, &s.snap)
        .await
        .map_err(|e| silent(&e))
}

/// `rbd group snap ls GROUP [--format json]` (a missing group lists nothing).
pub async fn snap_list(c: &mut Ctx) -> R {
    let s = gspec(&c.args, &mut 0, &GROUP, Snap::None)?;
    let json = c.json()?;
    let rbd = handle(c, &s).await?;
    let snaps = match rbd.group_snap_list(&s.name).await {
        Ok(v) => v,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(silent(&e)),
    };
    let state = |st: u8| {
        if st == group_snap_state::INCOMPLETE {
            "incomplete"
        } else {
            "ok"
        }
    };
    if let Some(pretty) = json {
        let arr = snaps.iter().map(|x| {
            Json::obj(vec![
                ("snapshot", Json::s(&x.name)),
                ("state", Json::s(state(x.state))),
            ])
        });
        out(&Json::arr("group_snap", arr).render("group_snaps", pretty));
        return Ok(());
    }
    let mut t = TextTable::new(&[
        ("NAME", Align::Left, Align::Left),
        ("STATUS", Align::Right, Align::Right),
    ]);
    for x in &snaps {
        t.row(vec![x.name.clone(), state(x.state).into()]);
    }
    if !snaps.is_empty() {
        out(&t.render());
    }
    Ok(())
}

/// `rbd group snap rm GROUP@SNAP`.
pub async fn snap_remove(c: &mut Ctx) -> R {
    let s = gspec(&c.args, &mut 0, &GROUP, Snap::Required)?;
    let rbd = handle(c, &s).await?;
    rbd.group_snap_remove(&s.name, &s.snap)
        .await
        .map_err(|e| fail("failed to remove group snapshot", &e))
}

/// `rbd group snap rename GROUP@SNAP DEST_SNAP` (or `--dest-snap`).
pub async fn snap_rename(c: &mut Ctx) -> R {
    let mut idx = 0;
    let s = gspec(&c.args, &mut idx, &GROUP, Snap::Required)?;
    let dest = match c.args.get("dest-snap") {
        Some(d) => d.to_string(),
        None => c.args.pos.get(idx).cloned().unwrap_or_default(),
    };
    if dest.is_empty() {
        return Err(Fail::einval(
            "rbd: destination snapshot name was not specified",
        ));
    }
    if dest.contains('/') || dest.contains('@') {
        return Err(Fail::einval(format!("rbd: invalid snap name '{dest}'")));
    }
    let rbd = handle(c, &s).await?;
    rbd.group_snap_rename(&s.name, &s.snap, &dest)
        .await
        .map_err(|e| fail("failed to rename group snapshot", &e))
}

/// `rbd group snap rollback GROUP@SNAP`.
pub async fn snap_rollback(c: &mut Ctx) -> R {
    let s = gspec(&c.args, &mut 0, &GROUP, Snap::Required)?;
    let rbd = handle(c, &s).await?;
    let p = &Progress::new("Rolling back to group snapshot", c.args.no_progress());
    match rbd
        .group_snap_rollback(&s.name, &s.snap, |d, t| p.update(d, t))
        .await
    {
        Ok(()) => {
            p.finish();
            Ok(())
        }
        Err(e) => {
            p.fail();
            Err(fail("rollback group to snapshot failed", &e))
        }
    }
}
