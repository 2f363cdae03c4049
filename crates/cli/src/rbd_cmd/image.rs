//! Image-level commands: pool init, create, ls, info, rm, rename, resize, status, du.
//! ceph: src/tools/rbd/action/{Pool,Create,List,Info,Remove,Rename,Resize,Status,DiskUsage}.cc

use super::args::{
    iec_size, image_size, image_spec, invalid, pool_spec, SnapPresence, Spec, SpecCheck, Which,
};
use super::fmt::{byte_u, Align, Format, Json, Progress, TextTable};
use super::{close, open_image, out, Ctx, Fail, Mode, R};
use ceph_rbd::features;
use ceph_rbd::{CreateOptions, Image, ParentInfo, Rbd};

/// `rbd pool init [--force] POOL`.
pub async fn pool_init(c: &mut Ctx) -> R {
    let (pool, _) = pool_spec(&c.args, &mut 0)?;
    let pool = if pool.is_empty() {
        c.default_pool()
    } else {
        pool
    };
    let io = c.ioctx(&pool, "").await?;
    let force = c.args.flag("force");
    let rados = c.rados().await?;
    if !force {
        // librados application_enable(force = false): refused if another application
        // owns the pool
        let cmd = serde_json::json!({"prefix": "osd pool application get", "pool": pool, "format": "json"});
        if let Ok(o) = rados
            .mon_command(&cmd.to_string(), bytes::Bytes::new())
            .await
        {
            if let Ok(serde_json::Value::Object(apps)) = serde_json::from_slice(&o.data) {
                if !apps.is_empty() && !apps.contains_key("rbd") {
                    // rbd prints this and still exits 0
                    eprintln!("rbd: pool already registered to a different application.");
                    return Ok(());
                }
            }
        }
    }
    if let Err(e) = Rbd::new(io).pool_init(force).await {
        let n = e.errno().0;
        if n == 95 {
            eprintln!("rbd: luminous or later release required.");
        } else if n == 1 {
            eprintln!("rbd: pool already registered to a different application.");
        } else {
            // rbd prints the error and still exits 0 (Pool.cc execute_init returns 0)
            let n = e.errno().0;
            eprintln!(
                "rbd: error registered application: ({n}) {}",
                super::strerror(n)
            );
        }
    }
    Ok(())
}

/// `rbd pool stats [POOL[/NS]]`: images and trash, count, provisioned size, snapshots.
pub async fn pool_stats(c: &mut Ctx) -> R {
    let (pool, ns) = pool_spec(&c.args, &mut 0)?;
    let json = c.json()?;
    let rbd = Rbd::new(c.ioctx(&pool, &ns).await?);
    let s = rbd
        .pool_stats()
        .await
        .map_err(|e| Fail::rbd("failed to query pool stats", &e))?;
    match json {
        Some(pretty) => {
            let part = |n: u64, b: u64, sn: u64| {
                Json::obj(vec![
                    ("count", Json::U(n)),
                    ("provisioned_bytes", Json::U(b)),
                    ("snap_count", Json::U(sn)),
                ])
            };
            out(&Json::obj(vec![
                (
                    "images",
                    part(s.images, s.image_provisioned_bytes, s.image_snapshots),
                ),
                (
                    "trash",
                    part(s.trash_images, s.trash_provisioned_bytes, s.trash_snapshots),
                ),
            ])
            .render("stats", pretty));
        }
        None => {
            let trash = |v: String| {
                if s.trash_images > 0 {
                    format!(" ({v} in trash)")
                } else {
                    String::new()
                }
            };
            out(&format!(
                "Total Images: {}{}\nTotal Snapshots: {}{}\nProvisioned Size: {}{}\n",
                s.images,
                trash(s.trash_images.to_string()),
                s.image_snapshots,
                trash(s.trash_snapshots.to_string()),
                byte_u(s.image_provisioned_bytes),
                trash(byte_u(s.trash_provisioned_bytes)),
            ));
        }
    }
    Ok(())
}

/// Names `--image-feature` accepts (`ImageFeatures::FEATURE_MAPPING`).
const FEATURE_NAMES: &[(u64, &str)] = &[
    (features::LAYERING, "layering"),
    (features::STRIPINGV2, "striping"),
    (features::EXCLUSIVE_LOCK, "exclusive-lock"),
    (features::OBJECT_MAP, "object-map"),
    (features::FAST_DIFF, "fast-diff"),
    (features::DEEP_FLATTEN, "deep-flatten"),
    (features::JOURNALING, "journaling"),
    (features::DATA_POOL, "data-pool"),
    (features::OPERATIONS, "operations"),
    (features::MIGRATING, "migrating"),
    (features::NON_PRIMARY, "non-primary"),
];

fn parse_feature_list(v: &str) -> Option<u64> {
    let mut bits = 0;
    for tok in v.split(',').filter(|t| !t.is_empty()) {
        bits |= FEATURE_NAMES
            .iter()
            .find(|(_, n)| *n == tok)
            .map(|(b, _)| *b)?;
    }
    Some(bits)
}

/// `rbd_default_features`: names or a number.
fn parse_default_features(v: &str) -> Option<u64> {
    v.trim()
        .parse::<u64>()
        .ok()
        .or_else(|| parse_feature_list(&v.replace(' ', "")))
}

/// What librbd makes of requested features before creating: the implicitly managed
/// ones are dropped (fast-diff survives only with object-map), and the dependency checks
/// of `validate_features` come before ours (so the errno matches).
fn librbd_features(mut f: u64) -> R<u64> {
    f &= !(features::OPERATIONS | features::MIGRATING | features::NON_PRIMARY);
    if f & features::OBJECT_MAP == 0 {
        f &= !features::FAST_DIFF;
    }
    let msg = if f & features::OBJECT_MAP != 0 && f & features::EXCLUSIVE_LOCK == 0 {
        "cannot use object map without exclusive lock"
    } else if f & features::JOURNALING != 0 && f & features::EXCLUSIVE_LOCK == 0 {
        "cannot use journaling without exclusive lock"
    } else {
        return Ok(f);
    };
    Err(Fail::new(
        format!("rbd-rs: {msg}\nrbd: create error: (22) Invalid argument"),
        22,
    ))
}

/// `utils::get_image_options`: features, order / object size, striping, data pool.
/// `clone` leaves unset what the parent decides.
pub fn create_options(c: &Ctx, for_clone: bool) -> R<CreateOptions> {
    let a = &c.args;
    let mut opts = CreateOptions::default();
    if let Some(f) = a.get("image-format") {
        match f {
            "2" => {}
            "1" => {
                return Err(Fail::einval(
                    "rbd: image format 1 is deprecated\nrbd-rs: image format 1 is not supported",
                ))
            }
            _ => return Err(invalid("image-format")),
        }
    }
    if let Some(o) = a.get("order") {
        let o = order_arg(o)?;
        opts.order = Some(o);
    } else if let Some(s) = a.parsed("object-size", iec_size)? {
        if s == 0 {
            return Err(invalid("object-size"));
        }
        opts.order = Some((s as f64).log2().round() as u8);
    }
    let mut feats: Option<u64> = None;
    for v in a.all("image-feature") {
        let b = parse_feature_list(v).ok_or_else(|| invalid("image-feature"))?;
        feats = Some(feats.unwrap_or(0) | b);
    }
    if feats.is_none() && !for_clone {
        if let Some(d) = c.config("rbd_default_features") {
            let d = parse_default_features(&d).unwrap_or(features::DEFAULT);
            let unsupported = d & !features::CREATABLE;
            if unsupported != 0 {
                eprintln!(
                    "rbd-rs: ignoring default features this client does not implement: {}",
                    features::feature_names(unsupported).join(", ")
                );
            }
            feats = Some(d & features::CREATABLE);
        }
    }
    if a.flag("image-shared") {
        let single = features::EXCLUSIVE_LOCK
            | features::OBJECT_MAP
            | features::FAST_DIFF
            | features::JOURNALING;
        feats = feats.map(|f| f & !single);
    }
    if let Some(f) = feats {
        feats = Some(librbd_features(f)?);
    }
    if let Some(su) = a.parsed("stripe-unit", iec_size)? {
        opts.stripe_unit = Some(su);
    }
    if let Some(sc) = a.parsed("stripe-count", |s| s.parse::<u64>().ok())? {
        opts.stripe_count = Some(sc);
    }
    if opts.stripe_unit.is_some() != opts.stripe_count.is_some() {
        // librbd treats a missing half as 0 and refuses the pair
        opts.stripe_unit.get_or_insert(0);
        opts.stripe_count.get_or_insert(0);
    }
    opts.data_pool = a.get("data-pool").map(str::to_string);
    if let Some(f) = feats.as_mut() {
        // librbd drops the data-pool bit without a data pool (the library would pass it
        // on to cls `create`, which refuses it)
        if opts.data_pool.is_none() {
            *f &= !features::DATA_POOL;
        }
    }
    opts.features = feats;
    Ok(opts)
}

/// `rbd create --image-format 1`, as Pacific's rbd: a deprecation warning, format-2
/// options refused (EINVAL), an existing name refused (EEXIST), and then librbd's
/// refusal (EINVAL) unless `RBD_FORCE_ALLOW_V1` is set in the environment, in which
/// case the format-1 image is made.
async fn create_v1(c: &mut Ctx, s: &Spec, size: u64) -> R {
    eprintln!("rbd: image format 1 is deprecated");
    let a = &c.args;
    let two = |what: &str| {
        Fail::einval(format!(
            "rbd: {what} not allowed with format 1; use --image-format 2"
        ))
    };
    if !a.all("image-feature").is_empty() {
        return Err(two("features"));
    }
    if a.get("stripe-unit").is_some() || a.get("stripe-count").is_some() {
        return Err(two("non-default striping"));
    }
    if a.get("data-pool").is_some() {
        return Err(two("data pool"));
    }
    let opts = create_options_v1(c)?;
    let rbd = c.rbd(s).await?;
    let exists = match rbd.image_id(&s.image).await {
        Ok(_) => true,
        Err(_) => rbd
            .is_format1(&s.image)
            .await
            .map_err(|e| Fail::rbd("create error", &e))?,
    };
    if exists {
        return Err(Fail::new("rbd: create error: (17) File exists", 17));
    }
    if std::env::var_os("RBD_FORCE_ALLOW_V1").is_none() {
        return Err(Fail::new(
            "librbd: Format 1 image creation unsupported.\nrbd: create error: (22) Invalid argument",
            22,
        ));
    }
    rbd.create_v1(&s.image, size, opts)
        .await
        .map_err(|e| Fail::rbd("create error", &e))
}

/// `--order`: an object size order librbd accepts (12..=25).
fn order_arg(o: &str) -> R<u8> {
    o.parse()
        .ok()
        .filter(|o| (12..=25).contains(o))
        .ok_or_else(|| invalid("order"))
}

/// The object size order of `rbd create --image-format 1` (`--order` or
/// `--object-size`; `None`: librbd's default).
fn create_options_v1(c: &Ctx) -> R<Option<u8>> {
    let a = &c.args;
    if let Some(o) = a.get("order") {
        let o = order_arg(o)?;
        return Ok(Some(o));
    }
    match a.parsed("object-size", iec_size)? {
        Some(0) => Err(invalid("object-size")),
        Some(s) => Ok(Some((s as f64).log2().round() as u8)),
        None => Ok(None),
    }
}

/// `rbd create`.
pub async fn create(c: &mut Ctx) -> R {
    let s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        SnapPresence::None,
        SpecCheck::Full,
        &Spec::default(),
    )?;
    let size = c
        .args
        .parsed("size", image_size)?
        .ok_or_else(|| Fail::einval("rbd: must specify --size <M/G/T>"))?;
    if c.args.get("image-format") == Some("1") {
        return create_v1(c, &s, size).await;
    }
    let opts = create_options(c, false)?;
    let rbd = c.rbd(&s).await?;
    if let Err(e) = rbd.create(&s.image, size, &opts).await {
        return Err(Fail::rbd("create error", &e));
    }
    if !c.args.flag("thick-provision") {
        return Ok(());
    }
    // `--thick-provision`: every byte written (with zeros), so the image owns its space
    // up front; a failure removes the half-made image, as rbd's Create.cc does
    let p = super::fmt::Progress::new("Thick provisioning", c.args.no_progress());
    let img = super::open_image(&rbd, &s.image, "", Mode::ReadWrite).await?;
    let r = thick_write(&img, size, &p).await;
    close(img).await;
    match r {
        Ok(()) => {
            p.finish();
            Ok(())
        }
        Err(e) => {
            p.fail();
            let _ = rbd.remove(&s.image).await;
            Err(Fail::rbd("image thick provisioning failed", &e))
        }
    }
}

async fn thick_write(
    img: &ceph_rbd::Image,
    size: u64,
    p: &super::fmt::Progress,
) -> ceph_rbd::Result<()> {
    let chunk = img.layout().await?.object_size.max(4096);
    let zeros = bytes::Bytes::from(vec![0u8; chunk as usize]);
    let mut set = tokio::task::JoinSet::new();
    let mut off = 0u64;
    let mut done = 0u64;
    while off < size || !set.is_empty() {
        while off < size && set.len() < 8 {
            let len = chunk.min(size - off);
            let (i, z, o) = (img.clone(), zeros.slice(..len as usize), off);
            set.spawn(async move { i.write(o, z).await.map(|()| len) });
            off += len;
        }
        if let Some(r) = set.join_next().await {
            done += r.map_err(|e| ceph_rbd::RbdError::Stream(e.to_string()))??;
            p.update(done, size);
        }
    }
    img.flush().await
}

/// `pool/[ns/]image@snap` of a parent.
fn parent_str(p: &ParentInfo) -> String {
    let ns = if p.pool_namespace.is_empty() {
        String::new()
    } else {
        format!("{}/", p.pool_namespace)
    };
    format!("{}/{ns}{}@{}", p.pool, p.image, p.snapshot)
}

fn parent_json(p: &ParentInfo) -> Json {
    Json::obj(vec![
        ("pool", Json::s(&p.pool)),
        ("pool_namespace", Json::s(&p.pool_namespace)),
        ("image", Json::s(&p.image)),
        ("snapshot", Json::s(&p.snapshot)),
    ])
}

/// `rbd ls [-l]`.
pub async fn list(c: &mut Ctx) -> R {
    let (pool, ns) = pool_spec(&c.args, &mut 0)?;
    let json = c.json()?;
    let long = c.args.flag("long");
    let rbd = Rbd::new(c.ioctx(&pool, &ns).await?);
    let images = rbd
        .list()
        .await
        .map_err(|e| Fail::rbd("listing images failed", &e))?;
    if !long {
        match json {
            Some(pretty) => out(&Json::arr("name", images.iter().map(|i| Json::s(&i.name)))
                .render("images", pretty)),
            None => out(&images
                .iter()
                .map(|i| format!("{}\n", i.name))
                .collect::<String>()),
        }
        return Ok(());
    }
    let mut tbl = TextTable::new(&[
        ("NAME", Align::Left, Align::Left),
        ("SIZE", Align::Left, Align::Right),
        ("PARENT", Align::Left, Align::Left),
        ("FMT", Align::Left, Align::Right),
        ("PROT", Align::Left, Align::Left),
        ("LOCK", Align::Left, Align::Left),
    ]);
    let mut arr = Vec::new();
    for spec in &images {
        let img = match open_image(&rbd, &spec.name, "", Mode::ReadOnly).await {
            Ok(i) => i,
            Err(_) => {
                // the image may have gone between list and open
                continue;
            }
        };
        if let Err(e) = list_one(&rbd, &img, &spec.id, json.is_some(), &mut tbl, &mut arr).await {
            eprintln!("rbd: error processing image {}: {}", spec.name, e.msg);
        }
    }
    match json {
        Some(pretty) => out(&Json::Arr(arr).render("images", pretty)),
        None if !images.is_empty() => out(&tbl.render()),
        None => {}
    }
    Ok(())
}

async fn list_one(
    rbd: &Rbd,
    img: &Image,
    id: &str,
    json: bool,
    tbl: &mut TextTable,
    arr: &mut Vec<(String, Json)>,
) -> R {
    let name = img.name();
    let fmt = img.format() as i64;
    let e = |e: ceph_rbd::RbdError| Fail::rbd("error", &e);
    let size = img.size().await.map_err(e)?;
    let parent = img.parent_info().await.map_err(e)?;
    let lock = img.lock_info().await.map_err(e)?;
    let (lockstr, lock_type) = if lock.lockers.is_empty() {
        ("", "")
    } else if lock.lock_type == 1 {
        ("excl", "exclusive")
    } else {
        ("shr", "shared")
    };
    if json {
        let mut f = vec![
            ("image", Json::s(&name)),
            ("id", Json::s(id)),
            ("size", Json::U(size)),
        ];
        if let Some(p) = &parent {
            f.push(("parent", parent_json(p)));
        }
        f.push(("format", Json::I(fmt)));
        if !lock_type.is_empty() {
            f.push(("lock_type", Json::s(lock_type)));
        }
        arr.push(("image".into(), Json::obj(f)));
    } else {
        tbl.row(vec![
            name.clone(),
            byte_u(size),
            parent.as_ref().map(parent_str).unwrap_or_default(),
            fmt.to_string(),
            String::new(),
            lockstr.into(),
        ]);
    }
    let snaps = img.snap_list().await.map_err(e)?;
    let has_parent_spec = img.parent_spec().await.map_err(e)?.is_some();
    for s in snaps {
        let sparent = if has_parent_spec {
            match open_image(rbd, &name, &s.name, Mode::ReadOnly).await {
                Ok(si) => {
                    let p = si.parent_info().await.ok().flatten();
                    close(si).await;
                    p
                }
                Err(_) => None,
            }
        } else {
            None
        };
        let prot = s.is_protected();
        if json {
            let mut f = vec![
                ("image", Json::s(&name)),
                ("id", Json::s(id)),
                ("snapshot", Json::s(&s.name)),
                ("snapshot_id", Json::U(s.id)),
                ("size", Json::U(s.size)),
            ];
            if let Some(p) = &sparent {
                f.push(("parent", parent_json(p)));
            }
            f.push(("format", Json::I(fmt)));
            f.push(("protected", Json::s(if prot { "true" } else { "false" })));
            arr.push(("snapshot".into(), Json::obj(f)));
        } else {
            tbl.row(vec![
                format!("{name}@{}", s.name),
                byte_u(s.size),
                sparent.as_ref().map(parent_str).unwrap_or_default(),
                fmt.to_string(),
                if prot { "yes".into() } else { String::new() },
                String::new(),
            ]);
        }
    }
    Ok(())
}

/// `rbd info IMAGE[@SNAP]`.
pub async fn info(c: &mut Ctx) -> R {
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
    let img = c.open(&s, Mode::ReadOnly).await?;
    // librbd image_get_group; tools/rbd Info.cc prints POOL/[NS/]GROUP
    let rbd = c.rbd(&s).await?;
    // a format-1 image has no id and cannot be in a group (librbd's group_spec stays
    // invalid for it)
    let group_of = if img.format() == 1 {
        Ok(None)
    } else {
        rbd.image_group_by_id(img.id()).await
    };
    let group = match group_of {
        Ok(Some(g)) => {
            let pools = c.rados().await?.pool_list();
            let pool = pools
                .iter()
                .find(|(i, _)| *i == g.pool_id)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| format!("<missing group pool {}>", g.pool_id));
            let ns = rbd.ioctx().namespace();
            let ns = if ns.is_empty() {
                String::new()
            } else {
                format!("{ns}/")
            };
            Some(format!("{pool}/{ns}{}", g.name))
        }
        Ok(None) => None,
        Err(e) => {
            close(img).await;
            return Err(Fail::rbd("error getting image group info", &e));
        }
    };
    let r = info_of(&img, json, group).await;
    close(img).await;
    r
}

async fn info_of(img: &Image, json: Option<Format>, group: Option<String>) -> R {
    let i = img.info().await.map_err(|e| Fail::rbd("info", &e))?;
    // Info.cc prints id, features, flags, timestamps and the snapshot limit only for
    // format 2 (librbd's snap_get_limit is a format-2 cls call)
    let v2 = i.format != 1;
    let limit = if v2 {
        img.snap_get_limit().await.unwrap_or(None)
    } else {
        None
    };
    if let Some(pretty) = json {
        // rbd's `format_bitmask`: the array is the plural, each item the singular
        let strs = |item: &str, v: &[String]| Json::arr(item, v.iter().map(Json::s));
        let mut f = vec![
            ("name", Json::s(&i.name)),
            ("id", Json::s(&i.id)),
            ("size", Json::U(i.size)),
            ("objects", Json::U(i.objects)),
            ("order", Json::I(i.order as i64)),
            ("object_size", Json::U(i.object_size)),
            ("snapshot_count", Json::U(i.snapshot_count)),
        ];
        if let Some(p) = &i.data_pool {
            f.push(("data_pool", Json::s(p)));
        }
        f.extend([
            ("block_name_prefix", Json::s(&i.block_name_prefix)),
            ("format", Json::I(i.format as i64)),
        ]);
        if v2 {
            f.extend([
                ("features", strs("feature", &i.features)),
                ("op_features", strs("op_feature", &i.op_features)),
                ("flags", strs("flag", &i.flags)),
            ]);
        }
        if let Some(g) = &group {
            f.push(("group", Json::s(g)));
        }
        if v2 {
            f.extend([
                ("create_timestamp", Json::s(&i.create_timestamp)),
                ("access_timestamp", Json::s(&i.access_timestamp)),
                ("modify_timestamp", Json::s(&i.modify_timestamp)),
            ]);
        }
        if let Some(p) = i.protected {
            f.push(("protected", Json::s(if p { "true" } else { "false" })));
        }
        if let Some(l) = limit {
            f.push(("snapshot_limit", Json::U(l)));
        }
        if let Some(p) = &i.parent {
            f.push((
                "parent",
                Json::obj(vec![
                    ("pool", Json::s(&p.pool)),
                    ("pool_namespace", Json::s(&p.pool_namespace)),
                    ("image", Json::s(&p.image)),
                    ("id", Json::s(&p.id)),
                    ("snapshot", Json::s(&p.snapshot)),
                    ("trash", Json::Bool(p.trash)),
                    ("overlap", Json::U(p.overlap)),
                ]),
            ));
        }
        if let (Some(su), Some(sc)) = (i.stripe_unit, i.stripe_count) {
            f.push(("stripe_unit", Json::U(su)));
            f.push(("stripe_count", Json::U(sc)));
        }
        out(&Json::obj(f).render("image", pretty));
        return Ok(());
    }
    let mut o = format!(
        "rbd image '{}':\n\tsize {} in {} objects\n\torder {} ({} objects)\n\tsnapshot_count: {}\n",
        i.name,
        byte_u(i.size),
        i.objects,
        i.order,
        byte_u(i.object_size),
        i.snapshot_count,
    );
    if v2 {
        o += &format!("\tid: {}\n", i.id);
    }
    if let Some(p) = &i.data_pool {
        o += &format!("\tdata_pool: {p}\n");
    }
    o += &format!(
        "\tblock_name_prefix: {}\n\tformat: {}\n",
        i.block_name_prefix, i.format
    );
    if v2 {
        o += &format!(
            "\tfeatures: {}\n\top_features: {}\n\tflags: {}\n",
            i.features.join(", "),
            i.op_features.join(", "),
            i.flags.join(", ")
        );
    }
    if let Some(g) = &group {
        o += &format!("\tgroup: {g}\n");
    }
    if v2 {
        o += &format!(
            "\tcreate_timestamp: {}\n\taccess_timestamp: {}\n\tmodify_timestamp: {}\n",
            i.create_timestamp, i.access_timestamp, i.modify_timestamp
        );
    }
    if let Some(p) = i.protected {
        o += &format!("\tprotected: {}\n", if p { "True" } else { "False" });
    }
    if let Some(l) = limit {
        o += &format!("\tsnapshot_limit: {l}\n");
    }
    if let Some(p) = &i.parent {
        o += &format!("\tparent: {}", parent_str(p));
        if p.trash {
            o += &format!(" (trash {})", p.id);
        }
        o += &format!("\n\toverlap: {}\n", byte_u(p.overlap));
    }
    if let (Some(su), Some(sc)) = (i.stripe_unit, i.stripe_count) {
        o += &format!("\tstripe unit: {}\n\tstripe count: {sc}\n", byte_u(su));
    }
    out(&o);
    Ok(())
}

/// `rbd rm IMAGE`.
pub async fn remove(c: &mut Ctx) -> R {
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
    match rbd
        .remove_with_progress(&s.image, |d, t| p.update(d, t))
        .await
    {
        Ok(()) => {
            p.finish();
            Ok(())
        }
        Err(e) => {
            p.fail();
            let n = e.errno().0;
            // tools/rbd/action/Remove.cc names the group as POOL/NAME
            let g = if n == 31 {
                rbd.image_group(&s.image).await.ok().flatten()
            } else {
                None
            };
            let group = match g {
                Some(g) => {
                    let pools = c.rados().await?.pool_list();
                    let pool = pools
                        .iter()
                        .find(|(i, _)| *i == g.pool_id)
                        .map(|(_, n)| n.clone())
                        .unwrap_or_else(|| format!("<missing group pool {}>", g.pool_id));
                    format!(" {pool}/{}", g.name)
                }
                None => String::new(),
            };
            Err(match n {
                39 => Fail::new(
                    "rbd: image has snapshots - these must be deleted with 'rbd snap purge' before the image can be removed.",
                    n,
                ),
                16 => Fail::new(
                    "rbd: error: image still has watchers\nThis means the image is still open or the client using it crashed. Try again after closing/unmapping it or waiting 30s for the crashed client to timeout.",
                    n,
                ),
                31 => Fail::new(
                    format!("rbd: error: image belongs to a group{group}\nRemove the image from the group and try again."),
                    n,
                ),
                _ => Fail::rbd("delete error", &e),
            })
        }
    }
}

/// `rbd rename SRC DEST` (same pool and namespace).
pub async fn rename(c: &mut Ctx) -> R {
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
        SnapPresence::None,
        SpecCheck::Full,
        &defaults,
    )?;
    let (sp, dp) = (norm_pool(c, &s.pool), norm_pool(c, &d.pool));
    if sp != dp {
        return Err(Fail::einval(format!(
            "rbd: mv/rename across pools not supported\nsource pool: {sp} dest pool: {dp}"
        )));
    }
    if s.namespace != d.namespace {
        return Err(Fail::einval(format!(
            "rbd: mv/rename across namespaces not supported\nsource namespace: {} dest namespace: {}",
            s.namespace, d.namespace
        )));
    }
    let rbd = c.rbd(&s).await?;
    rbd.rename(&s.image, &d.image)
        .await
        .map_err(|e| Fail::rbd("rename error", &e))
}

fn norm_pool(c: &Ctx, p: &str) -> String {
    if p.is_empty() {
        c.default_pool()
    } else {
        p.to_string()
    }
}

/// `rbd resize --size SIZE [--allow-shrink] IMAGE`.
pub async fn resize(c: &mut Ctx) -> R {
    let s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        SnapPresence::None,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let size = c
        .args
        .parsed("size", image_size)?
        .ok_or_else(|| Fail::einval("rbd: must specify --size <M/G/T>"))?;
    let shrink = c.args.flag("allow-shrink");
    let img = c.open(&s, Mode::ReadWrite).await?;
    let r = async {
        let cur = img
            .size()
            .await
            .map_err(|e| Fail::rbd("resize error", &e))?;
        if cur == size {
            return Err(Fail::einval("rbd: new size is equal to original size "));
        }
        if size < cur && !shrink {
            return Err(Fail::einval(
                "rbd: shrinking an image is only allowed with the --allow-shrink flag",
            ));
        }
        let p = Progress::new("Resizing image", c.args.no_progress());
        match img.resize(size, shrink).await {
            Ok(()) => {
                p.finish();
                Ok(())
            }
            Err(e) => {
                p.fail();
                Err(Fail::rbd("resize error", &e))
            }
        }
    }
    .await;
    close(img).await;
    r
}

/// An `entity_addr_t` as Ceph prints it (`127.0.0.1:0/2697617873`, `v2:...`).
fn addr_str(a: &ceph_encoding::EntityAddr) -> String {
    use ceph_encoding::EntityAddrType as T;
    let prefix = match a.ty {
        T::NONE => return "-".into(),
        T::MSGR2 => "v2:",
        T::LEGACY => "v1:",
        _ => "",
    };
    match a.addr {
        Some(sa) => format!("{prefix}{sa}/{}", a.nonce),
        None => format!("{prefix}-/{}", a.nonce),
    }
}

/// `rbd status IMAGE`: the header's watchers.
pub async fn status(c: &mut Ctx) -> R {
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
    let img = c.open(&s, Mode::ReadOnly).await?;
    let w = img.watchers().await;
    close(img).await;
    let w = w.map_err(|e| Fail::rbd("show status failed", &e))?;
    match json {
        Some(pretty) => {
            let ws = w.iter().map(|x| {
                Json::obj(vec![
                    ("address", Json::s(addr_str(&x.addr))),
                    ("client", Json::U(x.name.num as u64)),
                    ("cookie", Json::U(x.cookie)),
                ])
            });
            out(&Json::obj(vec![("watchers", Json::arr("watcher", ws))]).render("status", pretty));
        }
        None if w.is_empty() => out("Watchers: none\n"),
        None => {
            let mut o = String::from("Watchers:\n");
            for x in &w {
                o += &format!(
                    "\twatcher={} client.{} cookie={}\n",
                    addr_str(&x.addr),
                    x.name.num,
                    x.cookie
                );
            }
            out(&o);
        }
    }
    Ok(())
}

/// `rbd du [IMAGE[@SNAP]] [--from-snap S] [--exact] [--merge-snapshots]`.
pub async fn disk_usage(c: &mut Ctx) -> R {
    let from = c.args.get("from-snap").map(str::to_string);
    let s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        from.is_some(),
        SnapPresence::Permitted,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let json = c.json()?;
    let exact = c.args.flag("exact");
    let merge = c.args.flag("merge-snapshots");
    let rbd = c.rbd(&s).await?;
    let du_fail = |e: &ceph_rbd::RbdError| Fail::rbd("du failed", e);
    let images = rbd.list().await.map_err(|e| du_fail(&e))?;
    let imgname = (!s.image.is_empty()).then_some(s.image.as_str());
    let snapname = (!s.snap.is_empty()).then_some(s.snap.as_str());
    let mut tbl = TextTable::new(&[
        ("NAME", Align::Left, Align::Left),
        ("PROVISIONED", Align::Left, Align::Right),
        ("USED", Align::Left, Align::Right),
    ]);
    let mut arr = Vec::new();
    let (mut count, mut total_prov, mut total_used) = (0u32, 0u64, 0u64);
    let mut found = false;
    let mut row = |name: &str, id: &str, snap: Option<(&str, u64)>, size: u64, used: u64| {
        if json.is_some() {
            let mut f = vec![("name", Json::s(name)), ("id", Json::s(id))];
            if let Some((sn, sid)) = snap {
                f.push(("snapshot", Json::s(sn)));
                f.push(("snapshot_id", Json::U(sid)));
            }
            f.push(("provisioned_size", Json::U(size)));
            f.push(("used_size", Json::U(used)));
            arr.push(("image".to_string(), Json::obj(f)));
        } else {
            let full = match snap {
                Some((sn, _)) => format!("{name}@{sn}"),
                None => name.to_string(),
            };
            tbl.row(vec![full, byte_u(size), byte_u(used)]);
        }
    };
    for spec in &images {
        if imgname.is_some_and(|n| n != spec.name) {
            continue;
        }
        let img = match open_image(&rbd, &spec.name, "", Mode::ReadOnly).await {
            Ok(i) => i,
            Err(f) if f.code == 2 => continue,
            Err(f) => {
                found = true;
                eprintln!(
                    "rbd: error opening {}: ({}) {}",
                    spec.name,
                    f.code,
                    super::strerror(f.code)
                );
                continue;
            }
        };
        found = true;
        let feats = img.features().await.map_err(|e| du_fail(&e))?;
        if feats & features::FAST_DIFF == 0 {
            eprintln!(
                "warning: fast-diff map is not enabled for {}. operation may be slow.",
                spec.name
            );
        }
        let size = img.size().await.map_err(|e| du_fail(&e))?;
        let snaps = img.snap_list().await.map_err(|e| du_fail(&e))?;
        let snap_id = snapname
            .and_then(|n| snaps.iter().find(|x| x.name == n))
            .map(|x| x.id);
        let from_id = from
            .as_deref()
            .and_then(|n| snaps.iter().find(|x| x.name == n))
            .map(|x| x.id);
        if (snapname.is_some() && snap_id.is_none()) || (from.is_some() && from_id.is_none()) {
            close(img).await;
            return Err(Fail::new(
                "specified snapshot is not found.\nrbd: du failed: (2) No such file or directory",
                2,
            ));
        }
        if let (Some(sid), Some(fid)) = (snap_id, from_id) {
            if fid == sid {
                close(img).await;
                return Ok(());
            }
            if fid > sid {
                close(img).await;
                return Err(Fail::errno("du failed", 22));
            }
        }
        let mut found_from = from.is_none();
        let mut last: Option<String> = None;
        let mut full_used = 0u64;
        for sn in &snaps {
            let si = open_image(&rbd, &spec.name, &sn.name, Mode::ReadOnly).await?;
            if imgname.is_none() || found_from {
                let used = used_size(&si, last.as_deref(), sn.size, exact).await;
                close(si).await;
                let used = used.map_err(|e| du_fail(&e))?;
                if !merge {
                    row(&spec.name, &spec.id, Some((&sn.name, sn.id)), sn.size, used);
                }
                full_used += used;
                if snapname.is_some() {
                    total_prov += sn.size;
                }
                total_used += used;
                count += 1;
            } else {
                close(si).await;
            }
            if !found_from && from.as_deref() == Some(sn.name.as_str()) {
                found_from = true;
            }
            if snapname == Some(sn.name.as_str()) {
                break;
            }
            last = Some(sn.name.clone());
        }
        if snapname.is_none() {
            let used = used_size(&img, last.as_deref(), size, exact)
                .await
                .map_err(|e| du_fail(&e))?;
            full_used += used;
            row(
                &spec.name,
                &spec.id,
                None,
                size,
                if merge { full_used } else { used },
            );
            total_prov += size;
            total_used += used;
            count += 1;
        }
        close(img).await;
    }
    if let Some(n) = imgname {
        if !found {
            return Err(Fail::new(format!("specified image {n} is not found.\nrbd: du failed: (2) No such file or directory"), 2));
        }
    }
    match json {
        Some(pretty) => {
            let mut f = vec![("images", Json::Arr(arr))];
            if imgname.is_none() {
                f.push(("total_provisioned_size", Json::U(total_prov)));
                f.push(("total_used_size", Json::U(total_used)));
            }
            out(&Json::obj(f).render("stats", pretty));
        }
        None if !images.is_empty() => {
            if count > 1 {
                tbl.row(vec![
                    "<TOTAL>".into(),
                    byte_u(total_prov),
                    byte_u(total_used),
                ]);
            }
            out(&tbl.render());
        }
        None => {}
    }
    Ok(())
}

/// Bytes that changed between `from` (or creation) and the image's open snapshot/head,
/// counted in whole objects unless `exact` (librbd `diff_iterate2(..., whole_object)`).
async fn used_size(
    img: &Image,
    from: Option<&str>,
    size: u64,
    exact: bool,
) -> ceph_rbd::Result<u64> {
    let ext = img.diff_iterate(from, 0, size, false, !exact).await?;
    Ok(ext.iter().filter(|e| e.exists).map(|e| e.length).sum())
}

/// `rbd watch IMAGE`: watch the image's header and print every notification (and ack
/// it) until a line (or end of input) arrives on stdin, as rbd's Watch.cc does.
pub async fn watch(c: &mut Ctx) -> R {
    let s = image_spec(
        &c.args,
        &mut 0,
        Which::Source,
        true,
        SnapPresence::None,
        SpecCheck::None,
        &Spec::default(),
    )?;
    let img = c.open(&s, Mode::ReadOnly).await?;
    let io = img.ioctx().clone();
    let oid = ceph_rbd::util::header_name(img.id());
    close(img).await;
    let mut w = io.watch(&oid).await.map_err(|e| {
        let n = e.errno().0;
        Fail::new(
            format!(
                "rbd: watch failed\nrbd: watch failed: ({n}) {}",
                super::strerror(n)
            ),
            n,
        )
    })?;
    out("press enter to exit...\n");
    let name = s.image.clone();
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut line = String::new();
    let mut enter = std::pin::pin!(tokio::io::AsyncBufReadExt::read_line(&mut stdin, &mut line));
    loop {
        tokio::select! {
            _ = &mut enter => break,
            ev = w.next() => match ev {
                Some(ceph_rados::WatchEvent::Notify { notify_id, cookie, notifier_gid, payload }) => {
                    // rbd 16.2 decodes the librbd message for its op; an empty payload
                    // is a header update (as librbd's ImageWatcher reads it)
                    let op = if payload.is_empty() {
                        ceph_rbd::watch_notify::op::HEADER_UPDATE
                    } else {
                        match ceph_encoding::Decode::decode(&mut ceph_encoding::Decoder::new(&payload)) {
                            Ok(ceph_rbd::watch_notify::NotifyMessage { op, .. }) => op,
                            Err(_) => {
                                eprintln!("rbd: failed to decode image notification");
                                u32::MAX
                            }
                        }
                    };
                    out(&format!(
                        "{name} received notification: notify_id={notify_id}, cookie={cookie}, \
                         notifier_id={notifier_gid}, bl.length={}, notify_op={}\n",
                        payload.len(),
                        ceph_rbd::watch_notify::op::name(op)
                    ));
                    let _ = io.notify_ack(&oid, notify_id, cookie, &[]).await;
                }
                Some(ceph_rados::WatchEvent::Disconnected { errno }) => eprintln!(
                    "{name} received error: cookie={}, err=({}) {}",
                    w.cookie,
                    errno.0,
                    super::strerror(errno.0)
                ),
                None => break,
            }
        }
    }
    io.unwatch(w).await.map_err(|e| {
        let n = e.errno().0;
        Fail::new(
            format!(
                "rbd: unwatch failed\nrbd: watch failed: ({n}) {}",
                super::strerror(n)
            ),
            n,
        )
    })
}
