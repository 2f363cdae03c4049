//! The MonMap (ceph: src/mon/MonMap.cc; kernel: ceph_monmap_decode).

use ceph_encoding::{Decode, DecodeError, Decoder, EntityAddrVec, UTime, Uuid};

/// One monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonInfo {
    /// Monitor name.
    pub name: String,
    /// Public addresses (v2 first).
    pub addrs: EntityAddrVec,
    /// Priority.
    pub priority: u16,
    /// Weight.
    pub weight: u16,
}

/// The monitor map: fsid, epoch and the monitors in rank order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonMap {
    /// Cluster fsid.
    pub fsid: Uuid,
    /// Epoch.
    pub epoch: u32,
    /// Last change.
    pub last_changed: UTime,
    /// Creation.
    pub created: UTime,
    /// Monitors in rank order.
    pub mons: Vec<MonInfo>,
    /// `min_mon_release`.
    pub min_mon_release: u8,
}

fn mon_feature(d: &mut Decoder<'_>) -> Result<u64, DecodeError> {
    let (_v, mut s) = d.versioned(1, "mon_feature_t")?;
    s.u64()
}

impl MonMap {
    /// Decode an encoded MonMap (struct_v 7 and later: Nautilus onwards).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let (v, mut s) = d.versioned(9, "MonMap")?;
        if v < 7 {
            return Err(DecodeError::invalid(
                "MonMap",
                format!("pre-Nautilus encoding v{v}"),
            ));
        }
        let fsid = Uuid::decode(&mut s)?;
        let epoch = s.u32()?;
        let last_changed = UTime::decode(&mut s)?;
        let created = UTime::decode(&mut s)?;
        let _persistent = mon_feature(&mut s)?;
        let _optional = mon_feature(&mut s)?;
        let infos = s.map_with(
            4,
            "mon_info",
            |d| d.string(),
            |d| {
                let (iv, mut m) = d.versioned(6, "mon_info_t")?;
                let name = m.string()?;
                let addrs = EntityAddrVec::decode(&mut m)?;
                let priority = if iv >= 2 { m.u16()? } else { 0 };
                let weight = if iv >= 4 { m.u16()? } else { 0 };
                Ok(MonInfo {
                    name,
                    addrs,
                    priority,
                    weight,
                })
            },
        )?;
        let ranks: Vec<String> = s.vec(4, "ranks")?;
        let min_mon_release = if v >= 8 { s.u8()? } else { 0 };
        let mut mons = Vec::with_capacity(ranks.len());
        for r in &ranks {
            if let Some(i) = infos.get(r) {
                mons.push(i.clone());
            }
        }
        // Monitors missing from `ranks` (should not happen) still count.
        for (n, i) in &infos {
            if !ranks.contains(n) {
                mons.push(i.clone());
            }
        }
        Ok(MonMap {
            fsid,
            epoch,
            last_changed,
            created,
            mons,
            min_mon_release,
        })
    }
}
