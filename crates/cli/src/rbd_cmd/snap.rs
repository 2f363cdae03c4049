//! Snapshots and layering: `snap *`, `clone`, `flatten`, `children`.
//! ceph: src/tools/rbd/action/{Snap,Clone,Flatten,Children}.cc

use super::args::{image_spec, SnapPresence, Spec, SpecCheck, Which};
use super::fmt::{byte_u, Align, Json, Progress, TextTable};
use super::image::create_options;
use super::{close, out, Ctx, Fail, Mode, R};
use ceph_rbd::cls::SnapshotNamespace;
use ceph_rbd::{CloneFormat, CloneOptions, Image};

fn snap_spec(c: &Ctx, check: SpecCheck) -> R<Spec> {
    image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        SnapPresence::Required,
        check,
        &Spec::default(),
    )
}

/// Run `f` on the image opened read-write, then close it (so its watch goes away).
async fn with_rw<T, F: std::future::Future<Output = R<T>>>(
    c: &mut Ctx,
    s: &Spec,
    f: impl FnOnce(Image) -> F,
) -> R<T> {
    let img = c
        .open(
            &Spec {
                snap: String::new(),
                ..s.clone()
            },
            Mode::ReadWrite,
        )
        .await?;
    let r = f(img.clone()).await;
    close(img).await;
    r
}

/// `rbd snap create IMAGE@SNAP`.
pub async fn create(c: &mut Ctx) -> R {
    let s = snap_spec(c, SpecCheck::Snap)?;
    let p = &Progress::new("Creating snap", c.args.no_progress());
    let s = &s;
    with_rw(c, s, |img: Image| async move {
        match img.snap_create(&s.snap).await {
            Ok(_) => {
                p.finish();
                Ok(())
            }
            Err(e) => {
                p.fail();
                Err(Fail::rbd("failed to create snapshot", &e))
            }
        }
    })
    .await
}

fn ns_name(ns: &SnapshotNamespace) -> &'static str {
    match ns {
        SnapshotNamespace::User => "user",
        SnapshotNamespace::Group { .. } => "group",
        SnapshotNamespace::Trash { .. } => "trash",
        SnapshotNamespace::Other { ty: 3, .. } => "mirror",
        SnapshotNamespace::Other { .. } => "unknown",
    }
}

/// `rbd snap ls [--all] IMAGE`.
pub async fn list(c: &mut Ctx) -> R {
    let s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        SnapPresence::None,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let json = c.json()?;
    let all = c.args.flag("all");
    let img = c.open(&s, Mode::ReadOnly).await?;
    let rbd = c.rbd(&s).await?;
    let snaps = if all {
        img.snapshots().await
    } else {
        img.snap_list().await
    };
    close(img).await;
    let snaps = snaps.map_err(|e| Fail::rbd("failed to list snapshots", &e))?;
    // GROUP namespace: (pool, group, group snapshot) names, as librbd resolves them
    let mut groups = Vec::new();
    for x in &snaps {
        groups.push(match &x.namespace {
            SnapshotNamespace::Group {
                group_pool,
                group_id,
                group_snapshot_id,
            } if all => {
                rbd.group_snap_names(*group_pool, group_id, group_snapshot_id)
                    .await
            }
            _ => None,
        });
    }
    let ts = |t: ceph_encoding::UTime| {
        if t.sec == 0 {
            String::new()
        } else {
            ceph_rbd::util::format_ctime(t)
        }
    };
    if let Some(pretty) = json {
        let arr = snaps.iter().zip(&groups).map(|(x, g)| {
            let prot = x.namespace == SnapshotNamespace::User && x.is_protected();
            let mut f = vec![
                ("id", Json::U(x.id)),
                ("name", Json::s(&x.name)),
                ("size", Json::U(x.size)),
                ("protected", Json::s(if prot { "true" } else { "false" })),
                ("timestamp", Json::s(ts(x.timestamp))),
            ];
            if all {
                let mut n = vec![("type", Json::s(ns_name(&x.namespace)))];
                // 16.2 shows the original name only (not its namespace type)
                if let SnapshotNamespace::Trash { original_name, .. } = &x.namespace {
                    n.push(("original_name", Json::s(original_name)));
                }
                if let Some((pool, group, snap)) = g {
                    n.push(("pool", Json::s(pool)));
                    n.push(("group", Json::s(group)));
                    n.push(("group snap", Json::s(snap)));
                }
                f.push(("namespace", Json::obj(n)));
            }
            Json::obj(f)
        });
        out(&Json::arr("snapshot", arr).render("snapshots", pretty));
        return Ok(());
    }
    let mut cols = vec![
        ("SNAPID", Align::Left, Align::Right),
        ("NAME", Align::Left, Align::Left),
        ("SIZE", Align::Left, Align::Right),
        ("PROTECTED", Align::Left, Align::Left),
        ("TIMESTAMP", Align::Left, Align::Right),
    ];
    if all {
        cols.push(("NAMESPACE", Align::Left, Align::Left));
    }
    let mut t = TextTable::new(&cols);
    for (x, g) in snaps.iter().zip(&groups) {
        let prot = x.namespace == SnapshotNamespace::User && x.is_protected();
        let mut row = vec![
            x.id.to_string(),
            x.name.clone(),
            byte_u(x.size),
            if prot { "yes".into() } else { String::new() },
            ts(x.timestamp),
        ];
        if all {
            let mut n = ns_name(&x.namespace).to_string();
            if let SnapshotNamespace::Trash { original_name, .. } = &x.namespace {
                n += &format!(" ({original_name})");
            }
            if let Some((pool, group, snap)) = g {
                n += &format!(" ({pool}/{group}@{snap})");
            }
            row.push(n);
        }
        t.row(row);
    }
    if !snaps.is_empty() {
        out(&t.render());
    }
    Ok(())
}

/// `rbd snap rm IMAGE@SNAP`.
pub async fn remove(c: &mut Ctx) -> R {
    let snap_id = c.args.parsed("snap-id", |v| v.parse::<u64>().ok())?;
    let s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        if snap_id.is_some() {
            SnapPresence::Permitted
        } else {
            SnapPresence::Required
        },
        SpecCheck::None,
        &Spec::default(),
    )?;
    if snap_id.is_some() && !s.snap.is_empty() {
        return Err(Fail::einval(
            "rbd: trying to access snapshot using both name and id.",
        ));
    }
    let force = c.args.flag("force");
    let p = &Progress::new("Removing snap", c.args.no_progress());
    let s = &s;
    with_rw(c, s, |img: Image| async move {
        let r = match snap_id {
            Some(id) => img.snap_remove_by_id(id).await,
            // --force: flatten the clones and unprotect first (librbd RBD_SNAP_REMOVE_FORCE)
            None if force => img.snap_remove_force(&s.snap, |d, t| p.update(d, t)).await,
            None => img.snap_remove(&s.snap).await,
        };
        match r {
            Ok(()) => {
                p.finish();
                Ok(())
            }
            Err(e) => {
                p.fail();
                if e.errno().0 == 16 {
                    Err(Fail::new(
                        format!("rbd: snapshot '{}' is protected from removal.", s.snap),
                        16,
                    ))
                } else {
                    Err(Fail::rbd("failed to remove snapshot", &e))
                }
            }
        }
    })
    .await
}

/// `rbd snap purge IMAGE`: remove every unprotected user snapshot.
pub async fn purge(c: &mut Ctx) -> R {
    let s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        SnapPresence::None,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let p = &Progress::new("Removing all snapshots", c.args.no_progress());
    let s = &s;
    with_rw(c, s, |img: Image| async move {
        let snaps = img.snap_list().await.map_err(|e| {
            p.fail();
            Fail::rbd("removing snaps failed", &e)
        })?;
        if snaps.is_empty() {
            return Ok(());
        }
        let (protect, todo): (Vec<_>, Vec<_>) = snaps.into_iter().partition(|x| x.is_protected());
        if !protect.is_empty() {
            let names: Vec<&str> = protect.iter().map(|x| x.name.as_str()).collect();
            out(&format!(
                "rbd: error removing snapshot(s) '{}', which {} protected - these must be unprotected with `rbd snap unprotect`.\n",
                names.join(","),
                if names.len() == 1 { "is" } else { "are" }
            ));
        }
        let total = (todo.len() + protect.len()) as u64;
        for (i, x) in todo.iter().enumerate() {
            if let Err(e) = img.snap_remove(&x.name).await {
                p.fail();
                return Err(Fail::rbd("removing snaps failed", &e));
            }
            p.update(i as u64 + 1, total);
        }
        if !protect.is_empty() {
            p.fail();
        } else {
            p.finish();
        }
        Ok(())
    })
    .await
}

/// `rbd snap rename IMAGE@SRC IMAGE@DEST`.
pub async fn rename(c: &mut Ctx) -> R {
    let mut idx = 0;
    let s = image_spec(
        &c.args,
        &mut idx,
        Which::Source,
        true,
        SnapPresence::Required,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let defaults = Spec {
        pool: s.pool.clone(),
        namespace: s.namespace.clone(),
        ..Default::default()
    };
    let d = image_spec(
        &c.args,
        &mut idx,
        Which::Dest,
        true,
        SnapPresence::Required,
        SpecCheck::Snap,
        &defaults,
    )?;
    if s.pool != d.pool {
        return Err(Fail::einval(
            "rbd: source and destination pool must be the same",
        ));
    }
    if s.namespace != d.namespace {
        return Err(Fail::einval(
            "rbd: source and destination namespace must be the same",
        ));
    }
    if s.image != d.image {
        return Err(Fail::einval(
            "rbd: source and destination image name must be the same",
        ));
    }
    let s = &s;
    with_rw(c, s, |img: Image| async move {
        img.snap_rename(&s.snap, &d.snap)
            .await
            .map_err(|e| Fail::rbd("renaming snap failed", &e))
    })
    .await
}

/// `rbd snap rollback IMAGE@SNAP`.
pub async fn rollback(c: &mut Ctx) -> R {
    let s = snap_spec(c, SpecCheck::None)?;
    let p = &Progress::new("Rolling back to snapshot", c.args.no_progress());
    let s = &s;
    with_rw(c, s, |img: Image| async move {
        match img.snap_rollback(&s.snap, |d, t| p.update(d, t)).await {
            Ok(()) => {
                p.finish();
                Ok(())
            }
            Err(e) => {
                p.fail();
                Err(Fail::rbd("rollback failed", &e))
            }
        }
    })
    .await
}

/// `rbd snap protect IMAGE@SNAP`.
pub async fn protect(c: &mut Ctx) -> R {
    let s = snap_spec(c, SpecCheck::None)?;
    let s = &s;
    with_rw(c, s, |img: Image| async move {
        let p = img
            .snap_is_protected(&s.snap)
            .await
            .map_err(|e| Fail::rbd("protecting snap failed", &e))?;
        if p {
            return Err(Fail::new("rbd: snap is already protected", 16));
        }
        img.snap_protect(&s.snap)
            .await
            .map_err(|e| Fail::rbd("protecting snap failed", &e))
    })
    .await
}

/// `rbd snap unprotect IMAGE@SNAP`.
pub async fn unprotect(c: &mut Ctx) -> R {
    let s = snap_spec(c, SpecCheck::None)?;
    let s = &s;
    with_rw(c, s, |img: Image| async move {
        let p = img
            .snap_is_protected(&s.snap)
            .await
            .map_err(|e| Fail::rbd("unprotecting snap failed", &e))?;
        if !p {
            return Err(Fail::einval("rbd: snap is already unprotected"));
        }
        img.snap_unprotect(&s.snap)
            .await
            .map_err(|e| Fail::rbd("unprotecting snap failed", &e))
    })
    .await
}

/// `rbd snap limit set --limit N IMAGE` / `rbd snap limit clear IMAGE`.
pub async fn limit(c: &mut Ctx, set: bool) -> R {
    let s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        SnapPresence::None,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let limit = if set {
        let l = c.args.parsed("limit", |v| v.parse::<u64>().ok())?;
        Some(l.ok_or_else(|| Fail::new("rbd: must specify --limit <num>", 34))?)
    } else {
        None
    };
    let s = &s;
    with_rw(c, s, |img: Image| async move {
        img.snap_set_limit(limit).await.map_err(|e| {
            Fail::rbd(
                if set {
                    "setting snapshot limit failed"
                } else {
                    "clearing snapshot limit failed"
                },
                &e,
            )
        })
    })
    .await
}

/// `rbd clone PARENT@SNAP CHILD`.
pub async fn clone(c: &mut Ctx) -> R {
    let mut idx = 0;
    let s = image_spec(
        &c.args,
        &mut idx,
        Which::Source,
        true,
        SnapPresence::Required,
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
    let co = create_options(c, true)?;
    let format = match c.config("rbd_default_clone_format").as_deref() {
        None | Some("auto") => CloneFormat::Auto,
        Some("1") => CloneFormat::V1,
        Some("2") => CloneFormat::V2,
        Some(_) => {
            return Err(Fail::einval(
                "rbd: invalid rbd_default_clone_format (1, 2 or auto)",
            ))
        }
    };
    let opts = CloneOptions {
        features: co.features,
        order: co.order,
        stripe_unit: co.stripe_unit,
        stripe_count: co.stripe_count,
        data_pool: co.data_pool,
        format,
    };
    let parent = c.rbd(&s).await?;
    let child = c
        .rbd(&Spec {
            snap: String::new(),
            ..d.clone()
        })
        .await?;
    parent
        .clone_image(&s.image, &s.snap, &child, &d.image, &opts)
        .await
        .map_err(|e| Fail::rbd("clone error", &e))
}

/// `rbd flatten IMAGE`.
pub async fn flatten(c: &mut Ctx) -> R {
    let s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        SnapPresence::None,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let p = &Progress::new("Image flatten", c.args.no_progress());
    let s = &s;
    with_rw(c, s, |img: Image| async move {
        match img.flatten(|d, t| p.update(d, t)).await {
            Ok(()) => {
                p.finish();
                Ok(())
            }
            Err(e) => {
                p.fail();
                Err(Fail::rbd("flatten error", &e))
            }
        }
    })
    .await
}

/// `rbd children [--all] IMAGE[@SNAP]` (all snapshots without `@SNAP`).
pub async fn children(c: &mut Ctx) -> R {
    let s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        SnapPresence::Permitted,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let json = c.json()?;
    let all = c.args.flag("all");
    // Reef's children takes `--image-id` (Pacific's does not; we accept the superset)
    let head = Spec {
        snap: String::new(),
        ..s.clone()
    };
    let img = c.open(&head, Mode::ReadOnly).await?;
    let r = async {
        let lerr = |e: ceph_rbd::RbdError| Fail::rbd("listing children failed", &e);
        let snaps = img.snapshots().await.map_err(lerr)?;
        let chosen: Vec<&ceph_rbd::SnapInfo> = if s.snap.is_empty() {
            // librbd walks `ictx->snaps` (every namespace), newest first
            snaps.iter().rev().collect()
        } else {
            let found = snaps
                .iter()
                .find(|x| x.name == s.snap && x.namespace == SnapshotNamespace::User);
            match found {
                Some(x) => vec![x],
                None => {
                    return Err(Fail::new(
                        "error setting snapshot context: (2) No such file or directory",
                        2,
                    ))
                }
            }
        };
        let mut kids = Vec::new();
        for x in &chosen {
            if x.namespace == SnapshotNamespace::User {
                kids.extend(img.children(&x.name).await.map_err(lerr)?);
            } else {
                // ceph-rbd lists children by user snapshot name only; a snapshot in the
                // trash namespace can only have clone-v2 children, registered on it
                kids.extend(v2_children(&img, x.id).await.map_err(lerr)?);
            }
        }
        if chosen.len() > 1 {
            kids.sort_by(|a, b| {
                (&a.pool, &a.pool_namespace, &a.image).cmp(&(&b.pool, &b.pool_namespace, &b.image))
            });
        }
        Ok(kids)
    }
    .await;
    close(img).await;
    let kids = r?;
    let spec = |k: &ceph_rbd::ChildInfo| {
        if k.pool_namespace.is_empty() {
            format!("{}/{}", k.pool, k.image)
        } else {
            format!("{}/{}/{}", k.pool, k.pool_namespace, k.image)
        }
    };
    match json {
        Some(pretty) => {
            let arr = kids.iter().filter(|k| all || !k.trash).map(|k| {
                let mut f = vec![
                    ("pool", Json::s(&k.pool)),
                    ("pool_namespace", Json::s(&k.pool_namespace)),
                    ("image", Json::s(&k.image)),
                ];
                if all {
                    f.push(("id", Json::s(&k.id)));
                    f.push(("trash", Json::Bool(k.trash)));
                }
                Json::obj(f)
            });
            out(&Json::arr("child", arr).render("children", pretty));
        }
        None => {
            let mut o = String::new();
            for k in kids.iter().filter(|k| all || !k.trash) {
                o += &spec(k);
                if k.trash {
                    o += &format!(" (trash {})", k.id);
                }
                o.push('\n');
            }
            out(&o);
        }
    }
    Ok(())
}

/// Clone-v2 children registered on snapshot `snap_id` (cls `children_list`), with names
/// resolved like `rbd children` (an image in the trash is marked so).
async fn v2_children(img: &Image, snap_id: u64) -> ceph_rbd::Result<Vec<ceph_rbd::ChildInfo>> {
    use ceph_rbd::cls;
    use ceph_rbd::util::{header_name, RBD_DIRECTORY, RBD_TRASH};
    let io = img.ioctx();
    let rados = io.rados();
    let specs = match cls::children_list(snap_id)
        .exec(io, &header_name(img.id()))
        .await
    {
        Ok(b) => cls::decode_children_list(&b)?,
        Err(e) if e.is_not_found() || e.errno().0 == 95 => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let _ = rados.mon().wait_for_latest_osdmap().await;
    let pools = rados.pool_list();
    let mut out = Vec::new();
    for c in specs {
        let mut cio = rados.ioctx_by_id(c.pool_id);
        cio.set_namespace(&c.pool_namespace);
        let (image, trash) = match cls::dir_get_name(&c.image_id)
            .exec(&cio, RBD_DIRECTORY)
            .await
        {
            Ok(b) => (cls::decode_string(&b)?, false),
            Err(e) if e.is_not_found() => {
                match cls::trash_get(&c.image_id).exec(&cio, RBD_TRASH).await {
                    Ok(b) => (cls::decode::<cls::TrashImageSpec>(&b)?.name, true),
                    Err(_) => (String::new(), false),
                }
            }
            Err(e) => return Err(e),
        };
        let pool = pools
            .iter()
            .find(|(id, _)| *id == c.pool_id)
            .map(|(_, n)| n.clone())
            .unwrap_or_default();
        out.push(ceph_rbd::ChildInfo {
            pool,
            pool_id: c.pool_id,
            pool_namespace: c.pool_namespace,
            image,
            id: c.image_id,
            trash,
        });
    }
    Ok(out)
}
