//! `rbd image-meta list|get|set|remove`: image metadata, as ceph-csi stores the volume
//! name and owner in it. ceph: src/tools/rbd/action/ImageMeta.cc.

use super::args::{image_spec, SnapPresence, Spec, SpecCheck, Which};
use super::fmt::{Align, Json, TextTable};
use super::{close, open_image, out, strerror, Ctx, Fail, Mode, R};
use ceph_rbd::Image;

/// The image spec (no snapshot, names as they exist) and the open image. rbd opens the
/// image read-write; the metadata calls need no more than its header, so this opens it
/// without a watch (a script's `image-meta` then never makes a concurrent `rm` fail).
async fn open(c: &mut Ctx) -> R<(Spec, Image)> {
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
    Ok((s, img))
}

/// rbd takes the key and value at fixed positions after the image spec (which the
/// `--image` option may replace, leaving its slot empty).
fn positional(c: &Ctx, i: usize) -> String {
    let shift = usize::from(c.args.get("image").is_some());
    c.args.pos.get(i - shift).cloned().unwrap_or_default()
}

fn key(c: &Ctx) -> R<String> {
    let k = positional(c, 1);
    if k.is_empty() {
        return Err(Fail::einval("rbd: metadata key was not specified"));
    }
    Ok(k)
}

/// `rbd image-meta list IMAGE [--format json]`.
pub async fn list(c: &mut Ctx) -> R {
    let json = c.json()?;
    let (_, img) = open(c).await?;
    let r = img.metadata_list().await;
    close(img).await;
    let m = r.map_err(|e| {
        let n = e.errno().0;
        Fail::new(
            format!(
                "failed to list metadata of image : ({n}) {}\nrbd: listing metadata failed: ({n}) {}",
                strerror(n),
                strerror(n)
            ),
            n,
        )
    })?;
    let text = |v: &Vec<u8>| String::from_utf8_lossy(v).into_owned();
    match json {
        Some(pretty) => {
            // the tool opens the section only once there is a key: no output when empty
            if !m.is_empty() {
                out(&Json::obj(
                    m.iter()
                        .map(|(k, v)| (k.clone(), Json::s(text(v))))
                        .collect(),
                )
                .render("metadatas", pretty));
            }
        }
        None => {
            let n = m.len();
            let mut s = format!(
                "There {} {n} {} on this image{}\n",
                if n == 1 { "is" } else { "are" },
                if n == 1 { "metadatum" } else { "metadata" },
                if n == 0 { "." } else { ":" }
            );
            if n > 0 {
                let mut t = TextTable::new(&[
                    ("Key", Align::Left, Align::Left),
                    ("Value", Align::Left, Align::Left),
                ]);
                for (k, v) in &m {
                    t.row(vec![k.clone(), text(v)]);
                }
                s.push('\n');
                s.push_str(&t.render());
            }
            out(&s);
        }
    }
    Ok(())
}

fn failed(what: &str, key: &str, tail: &str, e: &ceph_rbd::RbdError) -> Fail {
    let n = e.errno().0;
    Fail::new(
        format!(
            "{what} {key} of image : ({n}) {}\nrbd: {tail}: ({n}) {}",
            strerror(n),
            strerror(n)
        ),
        n,
    )
}

/// `rbd image-meta get IMAGE KEY`.
pub async fn get(c: &mut Ctx) -> R {
    let k = key(c)?;
    let (_, img) = open(c).await?;
    let r = img.metadata_get(&k).await;
    close(img).await;
    let v = r.map_err(|e| failed("failed to get metadata", &k, "getting metadata failed", &e))?;
    out(&format!("{}\n", String::from_utf8_lossy(&v)));
    Ok(())
}

/// `rbd image-meta set IMAGE KEY VALUE`.
pub async fn set(c: &mut Ctx) -> R {
    let s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        SnapPresence::None,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let k = key(c)?;
    let v = positional(c, 2);
    if v.is_empty() {
        return Err(Fail::einval("rbd: metadata value was not specified"));
    }
    let (_, img) = open(c).await?;
    let rbd = c.rbd(&s).await?;
    let r = rbd.metadata_set(img.id(), &k, v.as_bytes()).await;
    close(img).await;
    r.map_err(|e| failed("failed to set metadata", &k, "setting metadata failed", &e))
}

/// `rbd image-meta remove IMAGE KEY`.
pub async fn remove(c: &mut Ctx) -> R {
    let k = key(c)?;
    let (s, img) = open(c).await?;
    let rbd = c.rbd(&s).await?;
    let r = rbd.metadata_remove(img.id(), &k).await;
    close(img).await;
    r.map_err(|e| {
        if e.is_not_found() {
            failed(
                "rbd: no existing metadata key",
                &k,
                "removing metadata failed",
                &e,
            )
        } else {
            failed(
                "failed to remove metadata",
                &k,
                "removing metadata failed",
                &e,
            )
        }
    })
}
