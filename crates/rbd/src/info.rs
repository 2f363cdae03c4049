//! `rbd info` as a struct, with the JSON field names and order `rbd info --format json`
//! uses.

use ceph_encoding::UTime;
use serde_json::{json, Map, Value};

/// The parent of a clone, as `rbd info` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentInfo {
    /// Parent pool name.
    pub pool: String,
    /// Parent RADOS namespace.
    pub pool_namespace: String,
    /// Parent image name.
    pub image: String,
    /// Parent image id.
    pub id: String,
    /// Parent snapshot name.
    pub snapshot: String,
    /// True if the parent image is in the trash.
    pub trash: bool,
    /// Bytes of the clone that map onto the parent.
    pub overlap: u64,
}

impl ParentInfo {
    /// As `rbd info --format json` prints it.
    pub fn to_json(&self) -> Value {
        json!({
            "pool": self.pool,
            "pool_namespace": self.pool_namespace,
            "image": self.image,
            "id": self.id,
            "snapshot": self.snapshot,
            "trash": self.trash,
            "overlap": self.overlap,
        })
    }
}

/// Everything `rbd info` shows about an image (field names as in its JSON output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Image name.
    pub name: String,
    /// Image id.
    pub id: String,
    /// Size in bytes (at the open snapshot).
    pub size: u64,
    /// Number of data objects the size spans.
    pub objects: u64,
    /// Object size order.
    pub order: u8,
    /// Object size in bytes.
    pub object_size: u64,
    /// Number of (user) snapshots.
    pub snapshot_count: u64,
    /// Data pool name, if the image has a separate data pool.
    pub data_pool: Option<String>,
    /// Data object prefix.
    pub block_name_prefix: String,
    /// Image format: 1 (no id, features or timestamps) or 2.
    pub format: u8,
    /// Feature names.
    pub features: Vec<String>,
    /// Operation feature names.
    pub op_features: Vec<String>,
    /// Flag names.
    pub flags: Vec<String>,
    /// For an image opened at a snapshot: whether that snapshot is protected.
    pub protected: Option<bool>,
    /// Creation time, `ctime` format (UTC).
    pub create_timestamp: String,
    /// Last access time.
    pub access_timestamp: String,
    /// Last modification time.
    pub modify_timestamp: String,
    /// The parent, for clones.
    pub parent: Option<ParentInfo>,
    /// Stripe unit (only with the striping feature).
    pub stripe_unit: Option<u64>,
    /// Stripe count (only with the striping feature).
    pub stripe_count: Option<u64>,
    /// Raw feature bits.
    pub feature_bits: u64,
    /// Raw operation feature bits.
    pub op_feature_bits: u64,
    /// Raw flag bits.
    pub flag_bits: u64,
    /// Raw creation time.
    pub create_time: UTime,
    /// Raw access time.
    pub access_time: UTime,
    /// Raw modification time.
    pub modify_time: UTime,
}

impl ImageInfo {
    /// Fields in `rbd info --format json` order.
    pub fn json_fields(&self) -> Vec<(&'static str, Value)> {
        let mut v: Vec<(&'static str, Value)> = vec![
            ("name", json!(self.name)),
            ("id", json!(self.id)),
            ("size", json!(self.size)),
            ("objects", json!(self.objects)),
            ("order", json!(self.order)),
            ("object_size", json!(self.object_size)),
            ("snapshot_count", json!(self.snapshot_count)),
        ];
        if let Some(p) = &self.data_pool {
            v.push(("data_pool", json!(p)));
        }
        v.push(("block_name_prefix", json!(self.block_name_prefix)));
        v.push(("format", json!(self.format)));
        // rbd's Info.cc prints neither features nor timestamps for an old-format image
        let v2 = self.format != 1;
        if v2 {
            v.push(("features", json!(self.features)));
            v.push(("op_features", json!(self.op_features)));
            v.push(("flags", json!(self.flags)));
        }
        if let Some(p) = self.protected {
            v.push(("protected", json!(if p { "true" } else { "false" })));
        }
        if v2 {
            v.push(("create_timestamp", json!(self.create_timestamp)));
            v.push(("access_timestamp", json!(self.access_timestamp)));
            v.push(("modify_timestamp", json!(self.modify_timestamp)));
        }
        if let Some(p) = &self.parent {
            v.push(("parent", p.to_json()));
        }
        if let (Some(u), Some(c)) = (self.stripe_unit, self.stripe_count) {
            v.push(("stripe_unit", json!(u)));
            v.push(("stripe_count", json!(c)));
        }
        v
    }

    /// As a JSON object (keys sorted; use [`ImageInfo::to_json_string`] for rbd's order).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.json_fields()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<Map<_, _>>(),
        )
    }

    /// Compact JSON in `rbd info --format json` field order.
    pub fn to_json_string(&self) -> String {
        let body: Vec<String> = self
            .json_fields()
            .into_iter()
            .map(|(k, v)| format!("{}:{}", Value::String(k.to_string()), v))
            .collect();
        format!("{{{}}}", body.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let i = ImageInfo {
            name: "img".into(),
            id: "10ab".into(),
            size: 100 << 20,
            objects: 25,
            order: 22,
            object_size: 4 << 20,
            snapshot_count: 0,
            data_pool: None,
            block_name_prefix: "rbd_data.10ab".into(),
            format: 2,
            features: vec!["layering".into()],
            op_features: vec![],
            flags: vec![],
            protected: None,
            create_timestamp: "Wed Nov 25 01:23:25 2026".into(),
            access_timestamp: "Wed Nov 25 01:23:25 2026".into(),
            modify_timestamp: "Wed Nov 25 01:23:25 2026".into(),
            parent: None,
            stripe_unit: None,
            stripe_count: None,
            feature_bits: 1,
            op_feature_bits: 0,
            flag_bits: 0,
            create_time: UTime::default(),
            access_time: UTime::default(),
            modify_time: UTime::default(),
        };
        let s = i.to_json_string();
        assert!(
            s.starts_with("{\"name\":\"img\",\"id\":\"10ab\",\"size\":104857600,\"objects\":25")
        );
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v, i.to_json());
        assert_eq!(v["features"], json!(["layering"]));
    }
}
