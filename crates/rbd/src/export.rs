//! `rbd export --export-format 2` / `rbd import --import-format 2` (tools/rbd/action/
//! Export.cc, Import.cc): one stream that carries an image with its snapshots, so a
//! backup restores with its history, not only the head's bytes.
//!
//! Layout: `"rbd image v2\n"`, the image's properties as tagged records (tag byte, u64
//! length, value: order `O`, features `T`, stripe unit `U`, stripe count `C`, one `M`
//! per metadata key with two length-prefixed strings), `E`; then `"rbd image diffs
//! v2\n"`, a u64 count, and that many `rbd diff v2` streams: the first user snapshot from
//! nothing, each next one from the previous, the head last ([`DiffFormat::V2`]). Import
//! creates the image from the properties (options the caller gave win), sets the
//! metadata, and applies the diffs in order, which recreates (and protects) each
//! snapshot. A clone's stream includes its parent's data: the import is a standalone
//! image.

use crate::diff::DiffFormat;
use crate::error::{RbdError, Result};
use crate::image::{Image, OpenOptions};
use crate::rbd::{CreateOptions, Rbd};
use std::collections::BTreeMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// First line of a format-2 export.
pub const IMAGE_V2_BANNER: &[u8] = b"rbd image v2\n";
/// Start of the diffs section.
pub const IMAGE_DIFFS_V2_BANNER: &[u8] = b"rbd image diffs v2\n";
/// First line of each per-snapshot diff inside.
pub const DIFF_V2_BANNER: &[u8] = b"rbd diff v2\n";

const TAG_ORDER: u8 = b'O';
const TAG_FEATURES: u8 = b'T';
const TAG_STRIPE_UNIT: u8 = b'U';
const TAG_STRIPE_COUNT: u8 = b'C';
const TAG_META: u8 = b'M';
const TAG_END: u8 = b'E';

/// Bounds what a header record may make us allocate (metadata values are small).
const MAX_META_RECORD: u64 = 64 << 20;

/// The image properties at the head of a format-2 export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportHeader {
    /// Object size order.
    pub order: Option<u64>,
    /// Feature bits of the exported image.
    pub features: Option<u64>,
    /// Stripe unit in bytes.
    pub stripe_unit: Option<u64>,
    /// Stripe count.
    pub stripe_count: Option<u64>,
    /// Image metadata (`rbd image-meta`), `conf_` keys included.
    pub metadata: BTreeMap<String, Vec<u8>>,
}

impl ExportHeader {
    /// Fill what `opts` leaves unset from the stream (librbd: the command line wins).
    pub fn apply_to(&self, opts: &mut CreateOptions) {
        if opts.order.is_none() {
            opts.order = self.order.map(|o| o as u8);
        }
        if opts.features.is_none() {
            opts.features = self.features;
        }
        if opts.stripe_unit.is_none() {
            opts.stripe_unit = self.stripe_unit;
        }
        if opts.stripe_count.is_none() {
            opts.stripe_count = self.stripe_count;
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut b = IMAGE_V2_BANNER.to_vec();
        let mut u64_rec = |t: u8, v: Option<u64>| {
            if let Some(v) = v {
                b.push(t);
                b.extend_from_slice(&8u64.to_le_bytes());
                b.extend_from_slice(&v.to_le_bytes());
            }
        };
        u64_rec(TAG_ORDER, self.order);
        u64_rec(TAG_FEATURES, self.features);
        u64_rec(TAG_STRIPE_UNIT, self.stripe_unit);
        u64_rec(TAG_STRIPE_COUNT, self.stripe_count);
        for (k, v) in &self.metadata {
            b.push(TAG_META);
            b.extend_from_slice(&((k.len() + v.len() + 8) as u64).to_le_bytes());
            b.extend_from_slice(&(k.len() as u32).to_le_bytes());
            b.extend_from_slice(k.as_bytes());
            b.extend_from_slice(&(v.len() as u32).to_le_bytes());
            b.extend_from_slice(v);
        }
        b.push(TAG_END);
        b
    }
}

fn io(e: std::io::Error) -> RbdError {
    RbdError::Stream(e.to_string())
}

fn bad(what: &str) -> RbdError {
    RbdError::InvalidArgument(what.to_string())
}

/// Read the banner and the property records (up to and including `E`).
pub async fn read_export_header<R: AsyncRead + Unpin>(r: &mut R) -> Result<ExportHeader> {
    let mut banner = [0u8; IMAGE_V2_BANNER.len()];
    r.read_exact(&mut banner).await.map_err(io)?;
    if banner[..] != IMAGE_V2_BANNER[..] {
        return Err(bad("invalid or unexpected diff banner"));
    }
    let mut h = ExportHeader::default();
    loop {
        let tag = r.read_u8().await.map_err(io)?;
        if tag == TAG_END {
            return Ok(h);
        }
        let len = r.read_u64_le().await.map_err(io)?;
        if len > MAX_META_RECORD {
            return Err(bad("image property record too long"));
        }
        let mut v = vec![0u8; len as usize];
        r.read_exact(&mut v).await.map_err(io)?;
        let u64_of = |v: &[u8]| -> Result<u64> {
            v.get(..8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                .ok_or_else(|| bad("short image property record"))
        };
        match tag {
            TAG_ORDER => h.order = Some(u64_of(&v)?),
            TAG_FEATURES => h.features = Some(u64_of(&v)?),
            TAG_STRIPE_UNIT => h.stripe_unit = Some(u64_of(&v)?),
            TAG_STRIPE_COUNT => h.stripe_count = Some(u64_of(&v)?),
            TAG_META => {
                let mut at = 0usize;
                let mut string = || -> Result<Vec<u8>> {
                    let n = v
                        .get(at..at + 4)
                        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
                        .ok_or_else(|| bad("short metadata record"))?;
                    let s = v
                        .get(at + 4..at + 4 + n)
                        .ok_or_else(|| bad("short metadata record"))?
                        .to_vec();
                    at += 4 + n;
                    Ok(s)
                };
                let k = string()?;
                let val = string()?;
                h.metadata
                    .insert(String::from_utf8_lossy(&k).into_owned(), val);
            }
            // librbd skips property tags it does not know
            _ => {}
        }
    }
}

impl Image {
    /// Write this image, with every user snapshot, as an `rbd export --export-format 2`
    /// stream. (Like `rbd`, the whole image is exported even from a snapshot handle.)
    pub async fn export_v2<W: AsyncWrite + Unpin>(&self, w: &mut W) -> Result<()> {
        let layout = self.layout().await?;
        let header = ExportHeader {
            order: Some(self.order().await? as u64),
            features: Some(self.features().await?),
            stripe_unit: Some(layout.stripe_unit),
            stripe_count: Some(layout.stripe_count),
            metadata: self.metadata_list().await?,
        };
        w.write_all(&header.encode()).await.map_err(io)?;
        let snaps = self.snap_list().await?;
        w.write_all(IMAGE_DIFFS_V2_BANNER).await.map_err(io)?;
        w.write_u64_le(snaps.len() as u64 + 1).await.map_err(io)?;
        let rbd = Rbd::new(self.ioctx().clone());
        let view = |snapshot: Option<String>| {
            let rbd = &rbd;
            async move {
                rbd.open_by_id(
                    self.id(),
                    &OpenOptions {
                        read_only: true,
                        no_watch: true,
                        snapshot,
                        ..Default::default()
                    },
                )
                .await
            }
        };
        let mut prev: Option<String> = None;
        for s in &snaps {
            let v = view(Some(s.name.clone())).await?;
            let r = v.write_diff(prev.as_deref(), DiffFormat::V2, w).await;
            let _ = v.close().await;
            r?;
            prev = Some(s.name.clone());
        }
        let head = if self.snap_id().is_none() {
            self.clone()
        } else {
            view(None).await?
        };
        let r = head.write_diff(prev.as_deref(), DiffFormat::V2, w).await;
        if self.snap_id().is_some() {
            let _ = head.close().await;
        }
        r?;
        w.flush().await.map_err(io)
    }

    /// The part of an import after the header: metadata set, then every diff applied in
    /// order (each recreates its snapshot). The image should be new and empty.
    pub async fn import_v2_body<R: AsyncRead + Unpin>(
        &self,
        header: &ExportHeader,
        r: &mut R,
    ) -> Result<()> {
        for (k, v) in &header.metadata {
            self.metadata_set(k, v).await?;
        }
        let mut banner = [0u8; IMAGE_DIFFS_V2_BANNER.len()];
        r.read_exact(&mut banner).await.map_err(io)?;
        if banner[..] != IMAGE_DIFFS_V2_BANNER[..] {
            return Err(bad("invalid or unexpected diff banner"));
        }
        let n = r.read_u64_le().await.map_err(io)?;
        for _ in 0..n {
            self.apply_diff(DiffFormat::V2, r).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn header_round_trips_and_skips_unknown_tags() {
        let mut h = ExportHeader {
            order: Some(22),
            features: Some(61),
            stripe_unit: Some(4 << 20),
            stripe_count: Some(1),
            metadata: BTreeMap::new(),
        };
        h.metadata
            .insert("conf_rbd_cache".into(), b"false".to_vec());
        h.metadata.insert("owner".into(), b"pvc-1".to_vec());
        let mut b = h.encode();
        // what librbd writes: banner, O, T, U, C with 8-byte lengths
        assert!(b.starts_with(b"rbd image v2\nO\x08\0\0\0\0\0\0\0\x16\0\0\0\0\0\0\0T"));
        // an unknown property record before the end is skipped
        let end = b.pop().unwrap();
        b.extend_from_slice(b"X\x03\0\0\0\0\0\0\0abc");
        b.push(end);
        b.extend_from_slice(b"trailing");
        let mut r = &b[..];
        assert_eq!(read_export_header(&mut r).await.unwrap(), h);
        assert_eq!(r, b"trailing");
        // truncated and malformed streams are errors
        assert!(read_export_header(&mut &b[..20]).await.is_err());
        assert!(read_export_header(&mut &b"rbd image v1\nE"[..])
            .await
            .is_err());
        let mut huge = IMAGE_V2_BANNER.to_vec();
        huge.push(b'M');
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(read_export_header(&mut &huge[..]).await.is_err());
        let mut short = IMAGE_V2_BANNER.to_vec();
        short.push(b'M');
        short.extend_from_slice(&6u64.to_le_bytes());
        short.extend_from_slice(&[9, 0, 0, 0, b'a', b'b']);
        short.push(b'E');
        assert!(read_export_header(&mut &short[..]).await.is_err());
    }
}
