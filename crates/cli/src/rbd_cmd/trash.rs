//! `rbd trash mv|ls|restore|rm|purge` and `rm` through the trash when
//! `rbd_move_to_trash_on_remove` is set. ceph: src/tools/rbd/action/Trash.cc,
//! src/librbd/api/Image.cc (remove → Trash::move).

use super::args::{image_spec, pool_spec, SnapPresence, Spec, SpecCheck, Which};
use super::fmt::{Align, Json, Progress, TextTable};
use super::{out, Ctx, Fail, R};
use ceph_encoding::UTime;
use ceph_rbd::util::format_ctime;
use ceph_rbd::{Rbd, TrashSource};
use std::time::Duration;

/// `utime_t::invoke_date`: the tool runs `date -d STR +%s.%N` and parses the result,
/// so every form GNU date accepts works the same.
fn invoke_date(s: &str) -> R<UTime> {
    let o = std::process::Command::new("date")
        .args(["-d", s, "+%s.%N"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|_| Fail::errno("error calling /bin/date", 2))?;
    let text = String::from_utf8_lossy(&o.stdout);
    let parsed = text.trim().split_once('.').and_then(|(a, b)| {
        Some(UTime {
            sec: a.parse::<u32>().ok()?,
            nsec: b.parse::<u32>().ok()?,
        })
    });
    match parsed {
        Some(t) if o.status.success() => Ok(t),
        // invoke_date returns -EINVAL when date fails
        _ => Err(Fail::errno("error calling /bin/date", 22)),
    }
}

/// `rbd trash mv IMAGE [--expires-at DATE]`.
pub async fn mv(c: &mut Ctx) -> R {
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
    let now = ceph_rbd::util::now();
    let exp = match c.args.get("expires-at") {
        Some(d) => invoke_date(d)?,
        None => now,
    };
    let dt = exp.sec as i64 - now.sec as i64 - i64::from(exp.nsec < now.nsec);
    // rbd 16.2 never prints its "date in the past" error: the utime_t difference
    // wraps, and librbd saturates the deferment end at the largest utime_t (year
    // 2106). Scripts see exit 0 and an entry protected "forever"; so does ours.
    let delay = if dt < 0 { u64::MAX } else { dt as u64 };
    move_to_trash(&rbd, &s.image, delay).await
}

async fn move_to_trash(rbd: &Rbd, name: &str, delay: u64) -> R {
    rbd.trash_move(name, Duration::from_secs(delay))
        .await
        .map(|_| ())
        .map_err(|e| Fail::rbd("deferred delete error", &e))
}

/// librbd's `remove` moves the image to the trash instead when
/// `rbd_move_to_trash_on_remove` is true (with
/// `rbd_move_to_trash_on_remove_expire_seconds` of deferment). `None`: not set.
pub async fn remove_via_trash(c: &mut Ctx) -> Option<R> {
    let on = match c.config("rbd_move_to_trash_on_remove") {
        None => return None,
        Some(v) => match parse_bool(&v) {
            Some(b) => b,
            None => {
                return Some(Err(Fail::usage(format!(
                    "rbd: invalid value for rbd_move_to_trash_on_remove: {v}"
                ))))
            }
        },
    };
    if !on {
        return None;
    }
    let secs = match c.config("rbd_move_to_trash_on_remove_expire_seconds") {
        None => 0,
        Some(v) => match v.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                return Some(Err(Fail::usage(format!(
                    "rbd: invalid value for rbd_move_to_trash_on_remove_expire_seconds: {v}"
                ))))
            }
        },
    };
    Some(
        async {
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
            let p = Progress::new("Removing image", c.args.no_progress());
            match rbd.trash_move(&s.image, Duration::from_secs(secs)).await {
                Ok(_) => {
                    p.finish();
                    Ok(())
                }
                Err(e) => {
                    p.fail();
                    Err(Fail::rbd("delete error", &e))
                }
            }
        }
        .await,
    )
}

/// Ceph's `strict_strtob`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(true),
        "false" | "no" | "off" => Some(false),
        n => n.parse::<i64>().ok().map(|n| n != 0),
    }
}

/// `utils::get_pool_image_id`: `[POOL/[NS/]]ID` positionally or `--image-id`.
fn pool_image_id(c: &Ctx) -> R<(String, String, String)> {
    let mut pool = c.args.get("pool").unwrap_or("").to_string();
    let mut ns = c.args.get("namespace").unwrap_or("").to_string();
    let id = match c.args.get("image-id") {
        Some(i) => i.to_string(),
        None => match c.args.pos.first() {
            Some(p) => {
                let parts: Vec<&str> = p.split('/').collect();
                match parts.as_slice() {
                    [id] => id.to_string(),
                    [p, id] => {
                        pool = p.to_string();
                        id.to_string()
                    }
                    [p, n, id] => {
                        pool = p.to_string();
                        ns = n.to_string();
                        id.to_string()
                    }
                    _ => return Err(Fail::einval(format!("rbd: invalid spec '{p}'"))),
                }
            }
            None => String::new(),
        },
    };
    if id.is_empty() {
        return Err(Fail::einval("rbd: image id was not specified"));
    }
    Ok((pool, ns, id))
}

/// `rbd trash rm [POOL/[NS/]]ID [--force]`.
pub async fn rm(c: &mut Ctx) -> R {
    let (pool, ns, id) = pool_image_id(c)?;
    let rbd = Rbd::new(c.ioctx(&pool, &ns).await?);
    let p = Progress::new("Removing image", c.args.no_progress());
    let force = c.args.flag("force");
    match rbd.trash_remove(&id, force, |d, t| p.update(d, t)).await {
        Ok(()) => {
            p.finish();
            Ok(())
        }
        Err(e) => {
            let n = e.errno().0;
            let msg = match n {
                39 => "rbd: image has snapshots - these must be deleted with 'rbd snap purge' before the image can be removed.".to_string(),
                117 => "rbd: error: image not fully moved to trash.".to_string(),
                16 => "rbd: error: image still has watchers\nThis means the image is still open or the client using it crashed. Try again after closing/unmapping it or waiting 30s for the crashed client to timeout.".to_string(),
                31 => "\nRemove the image from the group and try again.".to_string(),
                1 => "\nDeferment time has not expired, please use --force if you really want to remove the image".to_string(),
                _ => format!("rbd: remove error: ({n}) {}", super::strerror(n)),
            };
            eprintln!("{msg}");
            p.fail();
            Err(Fail::new("", n))
        }
    }
}

/// `rbd trash restore [POOL/[NS/]]ID [--image NAME]`.
pub async fn restore(c: &mut Ctx) -> R {
    let (pool, ns, id) = pool_image_id(c)?;
    let rbd = Rbd::new(c.ioctx(&pool, &ns).await?);
    let name = c.args.get("image").map(str::to_string);
    rbd.trash_restore(&id, name.as_deref())
        .await
        .map(|_| ())
        .map_err(|e| {
            let n = e.errno().0;
            match n {
                2 => Fail::new("rbd: error: image does not exist in trash", n),
                17 => Fail::new(
                    "rbd: error: an image with the same name already exists, try again with with a different name",
                    n,
                ),
                _ => Fail::new(format!("rbd: restore error: ({n}) {}", super::strerror(n)), n),
            }
        })
}

/// The `STATUS` column: `protected until <ctime>` or `expired at <ctime>`.
fn delete_status(end: UTime) -> String {
    let now = ceph_rbd::util::now();
    let t = format_ctime(UTime {
        sec: end.sec,
        nsec: 0,
    });
    if now.sec < end.sec {
        format!("protected until {t}")
    } else {
        format!("expired at {t}")
    }
}

/// `rbd trash ls [POOL[/NS]] [--all] [--long] [--format json]`.
pub async fn ls(c: &mut Ctx) -> R {
    let (pool, ns) = pool_spec(&c.args, &mut 0)?;
    let json = c.json()?;
    let rbd = Rbd::new(c.ioctx(&pool, &ns).await?);
    let mut entries = rbd
        .trash_list()
        .await
        .map_err(|e| Fail::rbd("trash list", &e))?;
    if !c.args.flag("all") {
        entries.retain(|t| t.source == TrashSource::User);
    }
    if !c.args.flag("long") {
        match json {
            Some(pretty) => out(&Json::arr(
                "image",
                entries
                    .iter()
                    .map(|t| Json::obj(vec![("id", Json::s(&t.id)), ("name", Json::s(&t.name))])),
            )
            .render("trash", pretty)),
            None => out(&entries
                .iter()
                .map(|t| format!("{} {}\n", t.id, t.name))
                .collect::<String>()),
        }
        return Ok(());
    }
    let mut tbl = TextTable::new(&[
        ("ID", Align::Left, Align::Left),
        ("NAME", Align::Left, Align::Left),
        ("SOURCE", Align::Left, Align::Left),
        ("DELETED_AT", Align::Left, Align::Left),
        ("STATUS", Align::Left, Align::Left),
        ("PARENT", Align::Left, Align::Left),
    ]);
    let mut arr = Vec::new();
    for t in &entries {
        // the tool opens each image read-only by id and skips those that vanished
        let img = match rbd
            .open_by_id(
                &t.id,
                &ceph_rbd::OpenOptions {
                    read_only: true,
                    no_watch: true,
                    ..Default::default()
                },
            )
            .await
        {
            Ok(i) => i,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                let n = e.errno().0;
                eprintln!("rbd: error opening {}: ({n}) {}", t.id, super::strerror(n));
                continue;
            }
        };
        let parent = img.parent_info().await;
        let _ = img.close().await;
        let parent = parent.map_err(|e| Fail::rbd("trash list", &e))?;
        let deleted = format_ctime(UTime {
            sec: t.deletion_time.sec,
            nsec: 0,
        });
        let status = delete_status(t.deferment_end_time);
        match json {
            Some(_) => {
                let mut f = vec![
                    ("id", Json::s(&t.id)),
                    ("name", Json::s(&t.name)),
                    ("source", Json::s(t.source.name())),
                    ("deleted_at", Json::s(&deleted)),
                    ("status", Json::s(&status)),
                ];
                if let Some(p) = &parent {
                    f.push((
                        "parent",
                        Json::obj(vec![
                            ("pool", Json::s(&p.pool)),
                            ("pool_namespace", Json::s(&p.pool_namespace)),
                            ("image", Json::s(&p.image)),
                            ("snapshot", Json::s(&p.snapshot)),
                        ]),
                    ));
                }
                arr.push(("image".to_string(), Json::obj(f)));
            }
            None => {
                let mut row = vec![
                    t.id.clone(),
                    t.name.clone(),
                    t.source.name().to_string(),
                    deleted,
                    status,
                ];
                if let Some(p) = &parent {
                    let mut s = format!("{}/", p.pool);
                    if !p.pool_namespace.is_empty() {
                        s.push_str(&format!("{}/", p.pool_namespace));
                    }
                    s.push_str(&format!("{}@{}", p.image, p.snapshot));
                    row.push(s);
                }
                tbl.row(row);
            }
        }
    }
    match json {
        Some(pretty) => out(&Json::Arr(arr).render("trash", pretty)),
        None if !entries.is_empty() => out(&tbl.render()),
        None => {}
    }
    Ok(())
}

/// `rbd trash purge [POOL[/NS]] [--expired-before DATE]`.
pub async fn purge(c: &mut Ctx) -> R {
    let (pool, ns) = pool_spec(&c.args, &mut 0)?;
    let threshold = c.args.parsed("threshold", |v| {
        v.parse::<f64>().ok().filter(|f| f.is_finite())
    })?;
    let rbd = Rbd::new(c.ioctx(&pool, &ns).await?);
    let before = match c.args.get("expired-before") {
        Some(d) => Some(invoke_date(d)?),
        None => None,
    };
    let p = Progress::new("Removing images", c.args.no_progress());
    match rbd
        .trash_purge_threshold(before, threshold, |d, t| p.update(d, t))
        .await
    {
        Ok(()) => {
            p.finish();
            Ok(())
        }
        Err(e) => {
            p.fail();
            let n = e.errno().0;
            if matches!(n, 39 | 16 | 31 | 117) {
                eprintln!("rbd: some expired images could not be removed\nEnsure that they are closed/unmapped, do not have snapshots (including trashed snapshots with linked clones), are not in a group and were moved to the trash successfully.");
            } else {
                // librbd says why in a log line (`argument 'threshold' is out of valid range`)
                eprintln!("rbd-rs: error: {e}");
            }
            Err(Fail::new("", n))
        }
    }
}
