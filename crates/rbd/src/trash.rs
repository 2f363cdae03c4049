//! The image trash (`rbd trash mv|ls|restore|rm|purge`): deferred deletion through the
//! pool's `rbd_trash` object, as librbd keeps it — an image in the trash has no
//! `rbd_id.<name>` object and no `rbd_directory` entry, only its header, data and an
//! `rbd_trash` entry (`TrashImageSpec`: source, name, deletion and deferment-end times,
//! state). ceph: src/librbd/api/Trash.cc, src/librbd/trash/{Move,Remove}Request.cc.

use crate::cls::{self, trash_source, trash_state, TrashImageSpec};
use crate::error::{RbdError, Result};
use crate::rbd::Rbd;
use crate::util::{self, id_obj_name, GoneOk, RBD_DIRECTORY, RBD_TRASH};
use ceph_encoding::UTime;
use ceph_rados::{Errno, OsdOp};
use std::time::Duration;

/// `EUCLEAN`: an entry still being moved into the trash.
pub const EUCLEAN: Errno = Errno(117);

/// Why an image is in the trash (`rbd_trash_image_source_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrashSource {
    /// `rbd trash mv` (or `rm` with `rbd_move_to_trash_on_remove`).
    User,
    /// rbd-mirror.
    Mirroring,
    /// Live migration.
    Migration,
    /// An `rbd rm` in progress (or interrupted).
    Removing,
    /// A clone-v2 parent moved aside while children remain.
    UserParent,
    /// A value this client does not know.
    Other(u8),
}

impl TrashSource {
    /// From the on-disk value.
    pub fn from_u8(v: u8) -> TrashSource {
        match v {
            trash_source::USER => TrashSource::User,
            trash_source::MIRRORING => TrashSource::Mirroring,
            trash_source::MIGRATION => TrashSource::Migration,
            trash_source::REMOVING => TrashSource::Removing,
            trash_source::USER_PARENT => TrashSource::UserParent,
            n => TrashSource::Other(n),
        }
    }

    /// The name `rbd trash ls -l` prints (empty for sources it has no name for).
    pub fn name(&self) -> &'static str {
        match self {
            TrashSource::User => "USER",
            TrashSource::Mirroring => "MIRRORING",
            TrashSource::Migration => "MIGRATION",
            TrashSource::Removing => "REMOVING",
            TrashSource::UserParent | TrashSource::Other(_) => "",
        }
    }
}

/// One trash entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrashEntry {
    /// Image id (what `trash restore` / `trash rm` take).
    pub id: String,
    /// Image name when it was moved.
    pub name: String,
    /// Why it is there.
    pub source: TrashSource,
    /// When it was moved.
    pub deletion_time: UTime,
    /// Not removable (without force) before this.
    pub deferment_end_time: UTime,
    /// Raw state (`cls::rbd::TrashImageState`).
    pub state: u8,
}

impl TrashEntry {
    fn from_spec(id: String, s: TrashImageSpec) -> TrashEntry {
        TrashEntry {
            id,
            name: s.name,
            source: TrashSource::from_u8(s.source),
            deletion_time: s.deletion_time,
            deferment_end_time: s.deferment_end_time,
            state: s.state,
        }
    }
}

impl Rbd {
    /// Every trash entry of the pool/namespace, any source (librbd `trash_list`
    /// filters nothing; `rbd trash ls` shows USER entries unless `--all`).
    pub async fn trash_list(&self) -> Result<Vec<TrashEntry>> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let b = match cls::trash_list(&after, 1024)
                .exec(self.ioctx(), RBD_TRASH)
                .await
            {
                Ok(b) => b,
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(e),
            };
            let m = cls::decode_trash_list(&b)?;
            let n = m.len();
            if let Some(k) = m.keys().next_back() {
                after = k.clone();
            }
            out.extend(m.into_iter().map(|(id, s)| TrashEntry::from_spec(id, s)));
            if n < 1024 {
                break;
            }
        }
        Ok(out)
    }

    /// One trash entry by image id (ENOENT when it is not in the trash).
    pub async fn trash_get(&self, id: &str) -> Result<TrashEntry> {
        match cls::trash_get(id).exec(self.ioctx(), RBD_TRASH).await {
            Ok(b) => Ok(TrashEntry::from_spec(id.to_string(), cls::decode(&b)?)),
            Err(e) if e.is_not_found() => Err(RbdError::not_found(format!(
                "image id {id} is not in the trash"
            ))),
            Err(e) => Err(e),
        }
    }

    /// Move image `name` to the trash (librbd `trash_move`, source USER): it can be
    /// removed after `delay` (or earlier with force) or restored. The image keeps its
    /// id, header, data and snapshots. Returns the image id.
    pub async fn trash_move(&self, name: &str, delay: Duration) -> Result<String> {
        self.trash_move_with_source(name, delay, trash_source::USER)
            .await
    }

    pub(crate) async fn trash_move_with_source(
        &self,
        name: &str,
        delay: Duration,
        source: u8,
    ) -> Result<String> {
        let io = self.ioctx();
        let id = match cls::dir_get_id(name).exec(io, RBD_DIRECTORY).await {
            Ok(b) => cls::decode_string(&b)?,
            Err(e) if e.is_not_found() && self.is_format1(name).await? => {
                // librbd's trash move refuses format 1 (no id to file it under)
                return Err(RbdError::refused(
                    format!("image {name} is format 1: it cannot be moved to the trash"),
                    Errno::EOPNOTSUPP,
                ));
            }
            Err(e) if e.is_not_found() => {
                // an interrupted move leaves a MOVING entry: finish it
                match self
                    .trash_list()
                    .await?
                    .into_iter()
                    .find(|t| t.name == name && t.state == trash_state::MOVING)
                {
                    Some(t) => t.id,
                    None => {
                        return Err(RbdError::not_found(format!("image {name} does not exist")))
                    }
                }
            }
            Err(e) => return Err(e),
        };
        // librbd refuses to trash an image in live migration
        let h = crate::image::Image::open_by_id(
            io,
            &id,
            Some(name.to_string()),
            &crate::image::OpenOptions {
                read_only: true,
                no_watch: true,
                ..Default::default()
            },
        )
        .await;
        match h {
            Ok(img) => {
                let feats = img.features().await?;
                let _ = img.close().await;
                if feats & crate::features::MIGRATING != 0 {
                    return Err(RbdError::busy("cannot move migrating image to trash"));
                }
            }
            // features we cannot even read do not stop a move (librbd's move works on
            // any image); a vanished header is the interrupted-move case
            Err(e) if e.is_not_found() => {}
            Err(RbdError::UnsupportedFeatures { .. }) => {}
            Err(e) => return Err(e),
        }
        let now = util::now();
        let end = UTime {
            sec: now
                .sec
                .saturating_add(delay.as_secs().min(u32::MAX as u64) as u32),
            nsec: now.nsec,
        };
        let spec = TrashImageSpec {
            source,
            name: name.to_string(),
            deletion_time: now,
            deferment_end_time: end,
            state: trash_state::MOVING,
        };
        // trash::MoveRequest: trash_add, remove the id object, remove the directory entry
        match cls::trash_add(&id, &spec).exec(io, RBD_TRASH).await {
            Ok(_) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(e),
        }
        io.remove(&id_obj_name(name)).await.gone_ok()?;
        cls::dir_remove_image(name, &id)
            .exec(io, RBD_DIRECTORY)
            .await
            .gone_ok()?;
        match cls::trash_state_set(&id, trash_state::NORMAL, trash_state::MOVING)
            .exec(io, RBD_TRASH)
            .await
        {
            Ok(_) => {}
            Err(e) if e.errno() == Errno::EOPNOTSUPP => {}
            Err(e) => return Err(e),
        }
        Ok(id)
    }

    /// Restore image `id` from the trash under its old name, or `new_name` (librbd
    /// `trash_restore`): ENOENT if not in the trash, EEXIST if the name is taken,
    /// EBUSY while it is being removed, EINVAL for sources a user may not restore
    /// (mirroring, migration).
    pub async fn trash_restore(&self, id: &str, new_name: Option<&str>) -> Result<String> {
        let io = self.ioctx();
        let t = self.trash_get(id).await?;
        if !matches!(
            t.source,
            TrashSource::User | TrashSource::Removing | TrashSource::UserParent
        ) {
            return Err(RbdError::InvalidArgument(format!(
                "trash source {} may not be restored",
                t.source.name()
            )));
        }
        if t.state != trash_state::NORMAL && t.state != trash_state::RESTORING {
            return Err(RbdError::busy(format!("image id {id} is pending deletion")));
        }
        let name = match new_name {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => t.name.clone(),
        };
        util::validate_name("image", &name)?;
        match cls::trash_state_set(id, trash_state::RESTORING, trash_state::NORMAL)
            .exec(io, RBD_TRASH)
            .await
        {
            Ok(_) => {}
            Err(e) if e.errno() == Errno::EOPNOTSUPP => {}
            Err(e) if t.state == trash_state::RESTORING => {
                let _ = e; // an interrupted restore: carry on
            }
            Err(e) => return Err(e),
        }
        let undo = |e: RbdError| async move {
            let _ = cls::trash_state_set(id, trash_state::NORMAL, trash_state::RESTORING)
                .exec(io, RBD_TRASH)
                .await;
            e
        };
        if let Err(e) = io
            .operate_write(
                &id_obj_name(&name),
                vec![OsdOp::create(true), cls::set_id(id).op()],
            )
            .await
        {
            let e: RbdError = if e.is_exists() {
                RbdError::exists(format!("an image named {name} already exists"))
            } else {
                e.into()
            };
            return Err(undo(e).await);
        }
        match cls::dir_add_image(&name, id).exec(io, RBD_DIRECTORY).await {
            Ok(_) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => {
                let _ = io.remove(&id_obj_name(&name)).await;
                return Err(undo(e).await);
            }
        }
        cls::trash_remove(id).exec(io, RBD_TRASH).await.gone_ok()?;
        Ok(name)
    }

    /// Remove image `id` from the trash, deleting it (librbd `trash_remove`): EPERM
    /// before its deferment end unless `force`, EUCLEAN while it is still being moved,
    /// EBUSY while restoring or while it has watchers, ENOTEMPTY with snapshots.
    pub async fn trash_remove(
        &self,
        id: &str,
        force: bool,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<()> {
        let t = self.trash_get(id).await?;
        if t.state == trash_state::MOVING {
            return Err(RbdError::refused(
                "image is pending moving to the trash",
                EUCLEAN,
            ));
        }
        if t.state != trash_state::NORMAL && t.state != trash_state::REMOVING {
            return Err(RbdError::busy("image is pending restoration"));
        }
        if !force && util::now() < t.deferment_end_time {
            return Err(RbdError::refused(
                "deferment time has not expired",
                Errno::EPERM,
            ));
        }
        self.trash_remove_image(id, &progress).await
    }

    /// Remove every USER entry whose deferment ended before `expired_before` (now if
    /// `None`), like `rbd trash purge` (librbd `trash_purge`). Clones go before their
    /// parents so trashed parents whose children are trashed too can go. Entries that
    /// cannot be removed yet (watchers, snapshots, live children) stop the purge with
    /// their error after the others were tried.
    pub async fn trash_purge(
        &self,
        expired_before: Option<UTime>,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<()> {
        self.trash_purge_threshold(expired_before, None, progress)
            .await
    }

    /// [`Rbd::trash_purge`] with `rbd trash purge --threshold` (0.0..=1.0): for each
    /// pool holding trashed images' data whose `ceph df` `percent_used` is above the
    /// threshold, the entries whose deferment ends first are added (whatever their
    /// deferment) until their allocated bytes (`rbd du`) reach what brings the pool down
    /// to the threshold; if no pool is above it, nothing is removed (not even expired
    /// entries), as in librbd `Trash::purge`.
    pub async fn trash_purge_threshold(
        &self,
        expired_before: Option<UTime>,
        threshold: Option<f64>,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<()> {
        let limit = expired_before.unwrap_or_else(util::now);
        let mut entries: Vec<TrashEntry> = self
            .trash_list()
            .await?
            .into_iter()
            .filter(|t| {
                matches!(t.source, TrashSource::User | TrashSource::UserParent)
                    && t.state == trash_state::NORMAL
            })
            .collect();
        let mut chosen = std::collections::BTreeSet::new();
        if let Some(th) = threshold {
            if !(0.0..=1.0).contains(&th) {
                return Err(RbdError::InvalidArgument(
                    "argument 'threshold' is out of valid range".into(),
                ));
            }
            let to_free = self.entries_over_threshold(&mut entries, th).await?;
            if to_free.is_empty() {
                return Ok(());
            }
            chosen.extend(to_free);
        }
        for t in &entries {
            if t.deferment_end_time <= limit {
                chosen.insert(t.id.clone());
            }
        }
        let mut todo: Vec<TrashEntry> = entries
            .into_iter()
            .filter(|t| chosen.contains(&t.id))
            .collect();
        let total = todo.len() as u64;
        let mut done = 0u64;
        let mut last_err = None;
        // retry rounds: a parent whose trashed clones are removed in this round can go
        // in the next
        loop {
            let mut left = Vec::new();
            let before = todo.len();
            for t in todo {
                match self.trash_remove_image(&t.id, &|_, _| {}).await {
                    Ok(()) => {
                        done += 1;
                        progress(done, total);
                    }
                    Err(e) => {
                        last_err = Some(e);
                        left.push(t);
                    }
                }
            }
            if left.is_empty() {
                return Ok(());
            }
            if left.len() == before {
                return Err(last_err.expect("an error for each entry left"));
            }
            todo = left;
        }
    }
}

impl Rbd {
    /// The ids `--threshold` picks (see [`Rbd::trash_purge_threshold`]); empty when no
    /// pool is above the threshold or nothing is allocated.
    async fn entries_over_threshold(
        &self,
        entries: &mut [TrashEntry],
        th: f64,
    ) -> Result<Vec<String>> {
        let rados = self.ioctx().rados();
        let out = rados
            .mon_command(r#"{"prefix": "df", "format": "json"}"#, bytes::Bytes::new())
            .await?;
        let df: serde_json::Value = serde_json::from_slice(&out.data).map_err(|e| {
            RbdError::refused(
                format!("ceph df json output could not be parsed: {e}"),
                Errno::EBADMSG,
            )
        })?;
        entries.sort_by_key(|t| t.deferment_end_time);
        // entries by the pool holding their data
        let mut by_pool: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let here = crate::image::pool_name(rados, self.ioctx().pool_id())
            .await
            .unwrap_or_default();
        for t in entries.iter() {
            let dp = match cls::get_data_pool()
                .exec(self.ioctx(), &util::header_name(&t.id))
                .await
            {
                Ok(b) => cls::decode_i64(&b).unwrap_or(-1),
                Err(e) if e.is_not_found() || e.errno() == Errno::EOPNOTSUPP => -1,
                Err(e) => return Err(e),
            };
            let name = if dp < 0 || dp == self.ioctx().pool_id() {
                here.clone()
            } else {
                match crate::image::pool_name(rados, dp).await {
                    Some(n) => n,
                    None => continue,
                }
            };
            by_pool.entry(name).or_default().push(t.id.clone());
        }
        let mut picked = Vec::new();
        let mut bytes_to_free = 0u64;
        for p in df["pools"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let Some(ids) = p["name"].as_str().and_then(|n| by_pool.get(n)) else {
                continue;
            };
            let st = &p["stats"];
            let pct = st["percent_used"].as_f64().unwrap_or(0.0);
            if pct <= th {
                continue;
            }
            bytes_to_free = 0;
            let total =
                st["max_avail"].as_u64().unwrap_or(0) + st["bytes_used"].as_u64().unwrap_or(0);
            let want = (total as f64 * (pct - th)) as u64;
            for id in ids {
                let opts = crate::image::OpenOptions {
                    read_only: true,
                    no_watch: true,
                    ..Default::default()
                };
                let img = match self.open_by_id(id, &opts).await {
                    Ok(i) => i,
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e),
                };
                let used = img.disk_usage(None).await;
                let _ = img.close().await;
                let Ok(used) = used else { continue };
                bytes_to_free += used;
                picked.push(id.clone());
                if bytes_to_free >= want {
                    break;
                }
            }
        }
        if bytes_to_free == 0 {
            picked.clear();
        }
        Ok(picked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(TrashSource::from_u8(0).name(), "USER");
        assert_eq!(TrashSource::from_u8(3), TrashSource::Removing);
        assert_eq!(TrashSource::from_u8(9), TrashSource::Other(9));
    }
}
