//! Image and pool metadata (`rbd image-meta`, `rbd config image|pool`): key/value
//! pairs in the omap of the image header (`rbd_header.<id>`) or of the pool's
//! `rbd_info` object, through cls_rbd's `metadata_*` methods. Keys starting with
//! `conf_` are librbd configuration overrides and are validated like librbd does.
//! ceph: src/librbd/Operations.cc (metadata_set/remove), src/librbd/api/PoolMetadata.cc,
//! src/librbd/api/Config.cc.
//!
//! Metadata writes go straight to the header object (one atomic cls call) followed by a
//! header-update notification, so open handles — librbd's included — refresh. They do
//! not take the exclusive lock: no image data is involved.

use crate::cls;
use crate::error::{RbdError, Result};
use crate::image::{Image, NOTIFY_TIMEOUT};
use crate::rbd::Rbd;
use crate::util::{header_name, RBD_INFO};
use ceph_rados::{Errno, IoCtx};
use std::collections::BTreeMap;

/// The prefix of configuration-override keys.
pub const CONF_PREFIX: &str = "conf_";

/// How a librbd option's value is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// `true`/`false` (or an integer).
    Bool,
    /// A (signed) integer.
    Int,
    /// A floating-point number.
    Float,
    /// Any string.
    Str,
}

/// The librbd options that may be overridden per pool or image, with their kind and
/// default (Ceph 16.2: what `rbd config image list` shows on a default configuration).
pub const OPTIONS: &[(&str, OptionKind, &str)] = {
    use OptionKind::*;
    &[
        ("rbd_atime_update_interval", Int, "60"),
        ("rbd_balance_parent_reads", Bool, "false"),
        ("rbd_balance_snap_reads", Bool, "false"),
        ("rbd_blkin_trace_all", Bool, "false"),
        ("rbd_blocklist_expire_seconds", Int, "0"),
        ("rbd_blocklist_on_break_lock", Bool, "true"),
        ("rbd_cache", Bool, "true"),
        ("rbd_cache_block_writes_upfront", Bool, "false"),
        ("rbd_cache_max_dirty", Int, "25165824"),
        ("rbd_cache_max_dirty_age", Float, "1.000000"),
        ("rbd_cache_max_dirty_object", Int, "0"),
        ("rbd_cache_policy", Str, "writearound"),
        ("rbd_cache_size", Int, "33554432"),
        ("rbd_cache_target_dirty", Int, "16777216"),
        ("rbd_cache_writethrough_until_flush", Bool, "false"),
        ("rbd_clone_copy_on_read", Bool, "false"),
        ("rbd_compression_hint", Str, "none"),
        ("rbd_concurrent_management_ops", Int, "10"),
        ("rbd_default_map_options", Str, ""),
        ("rbd_default_snapshot_quiesce_mode", Str, "required"),
        ("rbd_disable_zero_copy_writes", Bool, "true"),
        ("rbd_discard_granularity_bytes", Int, "65536"),
        ("rbd_enable_alloc_hint", Bool, "true"),
        ("rbd_invalidate_object_map_on_timeout", Bool, "true"),
        ("rbd_io_scheduler", Str, "simple"),
        ("rbd_io_scheduler_simple_max_delay", Int, "0"),
        ("rbd_journal_commit_age", Float, "5.000000"),
        ("rbd_journal_max_concurrent_object_sets", Int, "0"),
        ("rbd_journal_max_payload_bytes", Int, "16384"),
        ("rbd_journal_object_flush_age", Float, "0.000000"),
        ("rbd_journal_object_flush_bytes", Int, "1048576"),
        ("rbd_journal_object_flush_interval", Int, "0"),
        ("rbd_journal_object_max_in_flight_appends", Int, "0"),
        ("rbd_journal_object_writethrough_until_flush", Bool, "true"),
        ("rbd_localize_parent_reads", Bool, "false"),
        ("rbd_localize_snap_reads", Bool, "false"),
        ("rbd_mirroring_delete_delay", Int, "0"),
        ("rbd_mirroring_max_mirroring_snapshots", Int, "5"),
        ("rbd_mirroring_replay_delay", Int, "0"),
        ("rbd_mirroring_resync_after_disconnect", Bool, "false"),
        ("rbd_move_parent_to_trash_on_remove", Bool, "false"),
        ("rbd_move_to_trash_on_remove", Bool, "false"),
        ("rbd_move_to_trash_on_remove_expire_seconds", Int, "0"),
        ("rbd_mtime_update_interval", Int, "60"),
        ("rbd_non_blocking_aio", Bool, "true"),
        ("rbd_parent_cache_enabled", Bool, "false"),
        ("rbd_persistent_cache_mode", Str, "disabled"),
        ("rbd_persistent_cache_path", Str, "/tmp"),
        ("rbd_persistent_cache_size", Int, "1073741824"),
        ("rbd_plugins", Str, ""),
        ("rbd_qos_bps_burst", Int, "0"),
        ("rbd_qos_bps_burst_seconds", Int, "1"),
        ("rbd_qos_bps_limit", Int, "0"),
        ("rbd_qos_iops_burst", Int, "0"),
        ("rbd_qos_iops_burst_seconds", Int, "1"),
        ("rbd_qos_iops_limit", Int, "0"),
        ("rbd_qos_read_bps_burst", Int, "0"),
        ("rbd_qos_read_bps_burst_seconds", Int, "1"),
        ("rbd_qos_read_bps_limit", Int, "0"),
        ("rbd_qos_read_iops_burst", Int, "0"),
        ("rbd_qos_read_iops_burst_seconds", Int, "1"),
        ("rbd_qos_read_iops_limit", Int, "0"),
        ("rbd_qos_schedule_tick_min", Int, "50"),
        ("rbd_qos_write_bps_burst", Int, "0"),
        ("rbd_qos_write_bps_burst_seconds", Int, "1"),
        ("rbd_qos_write_bps_limit", Int, "0"),
        ("rbd_qos_write_iops_burst", Int, "0"),
        ("rbd_qos_write_iops_burst_seconds", Int, "1"),
        ("rbd_qos_write_iops_limit", Int, "0"),
        ("rbd_quiesce_notification_attempts", Int, "10"),
        ("rbd_read_from_replica_policy", Str, "default"),
        ("rbd_readahead_disable_after_bytes", Int, "52428800"),
        ("rbd_readahead_max_bytes", Int, "524288"),
        ("rbd_readahead_trigger_requests", Int, "10"),
        ("rbd_request_timed_out_seconds", Int, "30"),
        ("rbd_skip_partial_discard", Bool, "true"),
        ("rbd_sparse_read_threshold_bytes", Int, "65536"),
    ]
};

/// The librbd options that only a pool may override (on top of [`OPTIONS`]): image
/// creation defaults, journaling and rbd-mirror settings. Ceph 16.2's `rbd config pool
/// list` shows these 32 and the 77 of [`OPTIONS`]; an image-level override of one of
/// these is refused ("not allowed image level override").
pub const POOL_OPTIONS: &[(&str, OptionKind, &str)] = {
    use OptionKind::*;
    &[
        ("rbd_default_clone_format", Str, "auto"),
        ("rbd_default_data_pool", Str, ""),
        ("rbd_default_features", Str, "61"),
        ("rbd_default_order", Int, "22"),
        ("rbd_default_stripe_count", Int, "0"),
        ("rbd_default_stripe_unit", Int, "0"),
        ("rbd_journal_order", Int, "24"),
        ("rbd_journal_pool", Str, ""),
        ("rbd_journal_splay_width", Int, "4"),
        ("rbd_mirror_concurrent_image_deletions", Int, "1"),
        ("rbd_mirror_concurrent_image_syncs", Int, "5"),
        ("rbd_mirror_delete_retry_interval", Float, "30.000000"),
        ("rbd_mirror_image_perf_stats_prio", Int, "5"),
        ("rbd_mirror_image_policy_migration_throttle", Int, "300"),
        (
            "rbd_mirror_image_policy_rebalance_timeout",
            Float,
            "0.000000",
        ),
        ("rbd_mirror_image_policy_type", Str, "simple"),
        (
            "rbd_mirror_image_policy_update_throttle_interval",
            Float,
            "1.000000",
        ),
        ("rbd_mirror_image_state_check_interval", Int, "30"),
        ("rbd_mirror_journal_commit_age", Float, "5.000000"),
        ("rbd_mirror_journal_poll_age", Float, "5.000000"),
        ("rbd_mirror_leader_heartbeat_interval", Int, "5"),
        (
            "rbd_mirror_leader_max_acquire_attempts_before_break",
            Int,
            "3",
        ),
        ("rbd_mirror_leader_max_missed_heartbeats", Int, "2"),
        ("rbd_mirror_memory_autotune", Bool, "true"),
        ("rbd_mirror_memory_base", Int, "805306368"),
        (
            "rbd_mirror_memory_cache_autotune_interval",
            Float,
            "30.000000",
        ),
        ("rbd_mirror_memory_cache_min", Int, "134217728"),
        ("rbd_mirror_memory_cache_resize_interval", Float, "5.000000"),
        (
            "rbd_mirror_memory_expected_fragmentation",
            Float,
            "0.150000",
        ),
        ("rbd_mirror_memory_target", Int, "4294967296"),
        ("rbd_mirror_perf_stats_prio", Int, "5"),
        ("rbd_mirror_sync_point_update_age", Float, "30.000000"),
    ]
};

/// The kind of a pool-level option: [`OPTIONS`] and [`POOL_OPTIONS`].
pub fn pool_option_kind(name: &str) -> Option<OptionKind> {
    option_kind(name).or_else(|| POOL_OPTIONS.iter().find(|o| o.0 == name).map(|o| o.1))
}

/// The kind of an overridable option, `None` if librbd does not allow it per image/pool.
pub fn option_kind(name: &str) -> Option<OptionKind> {
    OPTIONS.iter().find(|o| o.0 == name).map(|o| o.1)
}

/// Whether `value` parses as an option of `kind` (Ceph's `strict_strtob`,
/// `strict_strtoll`, `strict_strtod`).
pub fn value_parses(kind: OptionKind, value: &str) -> bool {
    match kind {
        OptionKind::Bool => {
            matches!(value.to_ascii_lowercase().as_str(), "true" | "false")
                || value.parse::<i64>().is_ok()
        }
        OptionKind::Int => value.parse::<i64>().is_ok(),
        OptionKind::Float => value.parse::<f64>().is_ok(),
        OptionKind::Str => true,
    }
}

/// librbd's check of a metadata key before it is stored: `conf_<option>` must name an
/// overridable option with a valid value (EINVAL otherwise).
pub fn validate_key(key: &str, value: &[u8]) -> Result<()> {
    validate(key, value, false)
}

/// [`validate_key`] for the pool's metadata, where [`POOL_OPTIONS`] are allowed too.
pub fn validate_pool_key(key: &str, value: &[u8]) -> Result<()> {
    validate(key, value, true)
}

fn validate(key: &str, value: &[u8], pool: bool) -> Result<()> {
    let Some(opt) = key.strip_prefix(CONF_PREFIX) else {
        return Ok(());
    };
    let kind = if pool {
        pool_option_kind(opt)
    } else {
        option_kind(opt)
    };
    let kind = kind.ok_or_else(|| {
        RbdError::InvalidArgument(format!(
            "validation for {key} failed: not allowed image level override"
        ))
    })?;
    let v = std::str::from_utf8(value).unwrap_or("");
    if !value_parses(kind, v) {
        return Err(RbdError::InvalidArgument(format!(
            "validation for {key} failed: invalid value {v:?}"
        )));
    }
    Ok(())
}

/// All metadata on `oid` (paged `metadata_list`; a missing object is empty).
pub(crate) async fn list(io: &IoCtx, oid: &str) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut all = BTreeMap::new();
    let mut after = String::new();
    loop {
        let b = match cls::metadata_list(&after, 64).exec(io, oid).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() || e.errno() == Errno::EOPNOTSUPP => break,
            Err(e) => return Err(e),
        };
        let m = cls::decode_metadata_list(&b)?;
        let n = m.len();
        if let Some(k) = m.keys().next_back() {
            after = k.clone();
        }
        all.extend(m);
        if n < 64 {
            break;
        }
    }
    Ok(all)
}

async fn get(io: &IoCtx, oid: &str, key: &str) -> Result<Vec<u8>> {
    match cls::metadata_get(key).exec(io, oid).await {
        Ok(b) => Ok(cls::decode_metadata_get(&b)?),
        Err(e) if e.is_not_found() => Err(RbdError::not_found(format!(
            "no metadata key {key} on {oid}"
        ))),
        Err(e) => Err(e),
    }
}

async fn set(io: &IoCtx, oid: &str, key: &str, value: &[u8]) -> Result<()> {
    if oid == RBD_INFO {
        validate_pool_key(key, value)?;
    } else {
        validate_key(key, value)?;
    }
    let mut kv = BTreeMap::new();
    kv.insert(key.to_string(), value.to_vec());
    cls::metadata_set(&kv).exec(io, oid).await?;
    Ok(())
}

async fn remove(io: &IoCtx, oid: &str, key: &str) -> Result<()> {
    // cls metadata_remove succeeds on a missing key; librbd looks the key up first
    get(io, oid, key).await?;
    match cls::metadata_remove(key).exec(io, oid).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Err(RbdError::not_found(format!(
            "no metadata key {key} on {oid}"
        ))),
        Err(e) => Err(e),
    }
}

/// Tell the header's watchers to refresh (librbd notifies after a metadata change).
async fn notify_update(io: &IoCtx, oid: &str) {
    let msg = ceph_encoding::encode_to_vec(&crate::watch_notify::NotifyMessage::header_update());
    let _ = io.notify(oid, &msg, NOTIFY_TIMEOUT).await;
}

/// The pool-metadata object: `rbd_info` in the pool's default namespace
/// (librbd's `PoolMetadata` works on the ioctx as given, which the tool opens without a
/// namespace).
fn pool_io(io: &IoCtx) -> IoCtx {
    io.clone()
}

impl Rbd {
    /// Metadata of the image with id `image_id`, one key (ENOENT when absent).
    pub async fn metadata_get(&self, image_id: &str, key: &str) -> Result<Vec<u8>> {
        get(self.ioctx(), &header_name(image_id), key).await
    }

    /// Set one metadata key of the image with id `image_id`; `conf_*` keys are checked
    /// like librbd (EINVAL for options that cannot be overridden or bad values).
    pub async fn metadata_set(&self, image_id: &str, key: &str, value: &[u8]) -> Result<()> {
        let oid = header_name(image_id);
        // the header must exist (a stray omap write would create the object)
        self.ioctx().stat(&oid).await.map_err(|e| {
            if e.is_not_found() {
                RbdError::not_found(format!("image id {image_id} does not exist"))
            } else {
                e.into()
            }
        })?;
        set(self.ioctx(), &oid, key, value).await?;
        notify_update(self.ioctx(), &oid).await;
        Ok(())
    }

    /// Remove one metadata key of the image with id `image_id` (ENOENT when absent).
    pub async fn metadata_remove(&self, image_id: &str, key: &str) -> Result<()> {
        let oid = header_name(image_id);
        remove(self.ioctx(), &oid, key).await?;
        notify_update(self.ioctx(), &oid).await;
        Ok(())
    }

    /// Pool metadata (`rbd config pool`, librbd `pool_metadata_list`).
    pub async fn pool_metadata(&self) -> Result<BTreeMap<String, Vec<u8>>> {
        list(&pool_io(self.ioctx()), RBD_INFO).await
    }

    /// One pool metadata key (ENOENT when absent).
    pub async fn pool_metadata_get(&self, key: &str) -> Result<Vec<u8>> {
        get(&pool_io(self.ioctx()), RBD_INFO, key).await
    }

    /// Set one pool metadata key (`conf_*` keys validated like librbd).
    pub async fn pool_metadata_set(&self, key: &str, value: &[u8]) -> Result<()> {
        set(&pool_io(self.ioctx()), RBD_INFO, key, value).await?;
        self.notify_pool_config_update(key).await;
        Ok(())
    }

    /// Remove one pool metadata key (ENOENT when absent).
    pub async fn pool_metadata_remove(&self, key: &str) -> Result<()> {
        remove(&pool_io(self.ioctx()), RBD_INFO, key).await?;
        self.notify_pool_config_update(key).await;
        Ok(())
    }

    /// After a pool-level `conf_` override changes, librbd bumps the global
    /// `rbd_config_pool_override_update_timestamp` in the monitors' config database so
    /// that running clients re-read their overrides; we do the same. Best effort (a
    /// `profile rbd` user may not be allowed to set it; librbd only logs that).
    async fn notify_pool_config_update(&self, key: &str) {
        if !key.starts_with(CONF_PREFIX) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let cmd = serde_json::json!({
            "prefix": "config set",
            "who": "global",
            "name": "rbd_config_pool_override_update_timestamp",
            "value": now.to_string(),
        });
        if let Err(e) = self
            .ioctx()
            .rados()
            .mon_command(&cmd.to_string(), bytes::Bytes::new())
            .await
        {
            tracing::warn!("failed to notify clients of the pool config update: {e}");
        }
    }
}

impl Image {
    fn check_writable_meta(&self) -> Result<()> {
        if self.snap_id().is_some() || self.is_read_only() {
            return Err(RbdError::ReadOnly);
        }
        Ok(())
    }

    /// All metadata of the image (`rbd image-meta list`).
    pub async fn metadata_list(&self) -> Result<BTreeMap<String, Vec<u8>>> {
        list(self.ioctx(), &header_name(self.id())).await
    }

    /// One metadata value (ENOENT when absent).
    pub async fn metadata_get(&self, key: &str) -> Result<Vec<u8>> {
        get(self.ioctx(), &header_name(self.id()), key).await
    }

    /// Set a metadata key (EROFS on a read-only or snapshot handle, like librbd).
    pub async fn metadata_set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.check_writable_meta()?;
        let oid = header_name(self.id());
        set(self.ioctx(), &oid, key, value).await?;
        notify_update(self.ioctx(), &oid).await;
        Ok(())
    }

    /// Remove a metadata key (ENOENT when absent; EROFS on a read-only handle).
    pub async fn metadata_remove(&self, key: &str) -> Result<()> {
        self.check_writable_meta()?;
        let oid = header_name(self.id());
        remove(self.ioctx(), &oid, key).await?;
        notify_update(self.ioctx(), &oid).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_keys() {
        assert!(validate_key("owner", b"anything").is_ok());
        assert!(validate_key("conf_rbd_cache", b"false").is_ok());
        assert!(validate_key("conf_rbd_cache", b"xyz").is_err());
        assert!(validate_key("conf_foo", b"bar").is_err());
        assert!(validate_key("conf_rbd_qos_iops_limit", b"100").is_ok());
        assert!(validate_key("conf_rbd_qos_iops_limit", b"1x").is_err());
        assert!(validate_key("conf_rbd_cache_max_dirty_age", b"0.5").is_ok());
        assert_eq!(OPTIONS.len(), 77);
    }
}
