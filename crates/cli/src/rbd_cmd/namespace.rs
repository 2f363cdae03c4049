//! `rbd namespace create|ls|rm`. ceph: src/tools/rbd/action/Namespace.cc.

use super::args::pool_spec;
use super::fmt::{Align, Json, TextTable};
use super::{out, strerror, Ctx, Fail, R};
use ceph_rbd::Rbd;

async fn pool_and_ns(c: &mut Ctx) -> R<(Rbd, String)> {
    let (pool, ns) = pool_spec(&c.args, &mut 0)?;
    if ns.is_empty() {
        return Err(Fail::einval("rbd: namespace name was not specified"));
    }
    Ok((Rbd::new(c.ioctx(&pool, "").await?), ns))
}

/// `rbd namespace create POOL/NS`.
pub async fn create(c: &mut Ctx) -> R {
    let (rbd, ns) = pool_and_ns(c).await?;
    rbd.namespace_create(&ns).await.map_err(|e| {
        let n = e.errno().0;
        Fail::new(
            format!("rbd: failed to created namespace: ({n}) {}", strerror(n)),
            n,
        )
    })
}

/// `rbd namespace rm POOL/NS`.
pub async fn remove(c: &mut Ctx) -> R {
    let (rbd, ns) = pool_and_ns(c).await?;
    rbd.namespace_remove(&ns).await.map_err(|e| {
        let n = e.errno().0;
        match n {
            16 => Fail::new(
                "rbd: namespace contains images which must be deleted first.",
                n,
            ),
            2 => Fail::new("rbd: namespace does not exist.", n),
            _ => Fail::new(
                format!("rbd: failed to remove namespace: ({n}) {}", strerror(n)),
                n,
            ),
        }
    })
}

/// `rbd namespace ls [POOL] [--format json]`.
pub async fn list(c: &mut Ctx) -> R {
    let (pool, _) = pool_spec(&c.args, &mut 0)?;
    let json = c.json()?;
    let rbd = Rbd::new(c.ioctx(&pool, "").await?);
    let mut names = rbd.namespace_list().await.map_err(|e| {
        let n = e.errno().0;
        Fail::new(
            format!("rbd: failed to list namespaces: ({n}) {}", strerror(n)),
            n,
        )
    })?;
    names.sort();
    match json {
        Some(pretty) => out(&Json::arr(
            "namespace",
            names.iter().map(|n| Json::obj(vec![("name", Json::s(n))])),
        )
        .render("namespaces", pretty)),
        None if !names.is_empty() => {
            let mut t = TextTable::new(&[("NAME", Align::Left, Align::Left)]);
            for n in &names {
                t.row(vec![n.clone()]);
            }
            out(&t.render());
        }
        None => {}
    }
    Ok(())
}
