//! `rbd lock ls|add|rm`: advisory locks on an image. ceph: src/tools/rbd/action/Lock.cc.

use super::args::{image_spec, SnapPresence, Spec, SpecCheck, Which};
use super::fmt::{Align, Json, TextTable};
use super::{close, open_image, out, strerror, Ctx, Fail, Mode, R};
use ceph_rbd::Image;

async fn open(c: &mut Ctx) -> R<Image> {
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
    open_image(&rbd, &s.image, "", Mode::ReadOnly).await
}

/// The positional after the image spec (whose slot `--image` may have taken).
fn positional(c: &Ctx, i: usize) -> String {
    let shift = usize::from(c.args.get("image").is_some());
    c.args.pos.get(i - shift).cloned().unwrap_or_default()
}

fn lock_id(c: &Ctx) -> R<String> {
    let id = positional(c, 1);
    if id.is_empty() {
        return Err(Fail::einval("rbd: lock id was not specified"));
    }
    Ok(id)
}

/// `rbd lock ls IMAGE [--format json]`.
pub async fn list(c: &mut Ctx) -> R {
    let json = c.json()?;
    let img = open(c).await?;
    let l = img.list_lockers().await;
    close(img).await;
    let l = l.map_err(|e| Fail::rbd("listing locks failed", &e))?;
    match json {
        Some(pretty) => out(&Json::arr(
            "lock",
            l.lockers.iter().map(|k| {
                Json::obj(vec![
                    ("id", Json::s(&k.cookie)),
                    ("locker", Json::s(&k.client)),
                    ("address", Json::s(&k.address)),
                ])
            }),
        )
        .render("locks", pretty)),
        None if l.lockers.is_empty() => {}
        None => {
            let n = l.lockers.len();
            let mut s = format!(
                "There {} {n} {} lock{} on this image.\n",
                if n == 1 { "is" } else { "are" },
                if l.exclusive { "exclusive" } else { "shared" },
                if n == 1 { "" } else { "s" }
            );
            if !l.exclusive {
                s.push_str(&format!("Lock tag: {}\n", l.tag));
            }
            let mut t = TextTable::new(&[
                ("Locker", Align::Left, Align::Left),
                ("ID", Align::Left, Align::Left),
                ("Address", Align::Left, Align::Left),
            ]);
            for k in &l.lockers {
                t.row(vec![k.client.clone(), k.cookie.clone(), k.address.clone()]);
            }
            s.push_str(&t.render());
            out(&s);
        }
    }
    Ok(())
}

/// `rbd lock add IMAGE LOCK_ID [--shared TAG]`.
pub async fn add(c: &mut Ctx) -> R {
    let id = lock_id(c)?;
    let tag = c.args.get("shared").map(str::to_string);
    let img = open(c).await?;
    let r = match &tag {
        Some(t) => img.lock_shared(&id, t).await,
        None => img.lock_exclusive(&id).await,
    };
    close(img).await;
    r.map_err(|e| {
        let n = e.errno().0;
        match (n, &tag) {
            (16 | 17, Some(_)) => Fail::new(
                "rbd: lock is already held by someone else with a different tag",
                n,
            ),
            (16 | 17, None) => Fail::new("rbd: lock is already held by someone else", n),
            _ => Fail::new(format!("rbd: taking lock failed: ({n}) {}", strerror(n)), n),
        }
    })
}

/// `rbd lock rm IMAGE LOCK_ID LOCKER`: break the lock, blocklisting the holder first
/// when `rbd_blocklist_on_break_lock` (default true), for
/// `rbd_blocklist_expire_seconds` (default 0: the cluster's default).
pub async fn remove(c: &mut Ctx) -> R {
    let id = lock_id(c)?;
    let client = positional(c, 2);
    if client.is_empty() {
        return Err(Fail::einval("rbd: locker was not specified"));
    }
    let blocklist = match c.config("rbd_blocklist_on_break_lock") {
        None => true,
        Some(v) => super::trash::parse_bool(&v).ok_or_else(|| {
            Fail::usage(format!(
                "rbd: invalid value for rbd_blocklist_on_break_lock: {v}"
            ))
        })?,
    };
    let secs = c.blocklist_expire_seconds()?;
    let img = open(c).await?;
    let r = img
        .break_lock(&client, &id, blocklist.then_some(secs))
        .await;
    close(img).await;
    r.map_err(|e| {
        let n = e.errno().0;
        Fail::new(
            format!("rbd: releasing lock failed: ({n}) {}", strerror(n)),
            n,
        )
    })
}
