//! RADOS, the object layer of Ceph, spoken natively: the monitor client (maps,
//! subscriptions, commands), OSDMap decoding and CRUSH placement, and the OSD op client.
//!
//! Sans-IO where it matters: CRUSH, the OSDMap and the message codecs are pure functions
//! over bytes; the tokio layer (`net`, the monitor and objecter tasks) only moves bytes
//! and timers. Public entry point: [`Rados`] (connect) and [`IoCtx`] (a pool and namespace).

#![warn(missing_docs)]

mod auth;
pub mod config;
pub mod crush;
mod error;
pub mod mon;
mod net;
pub mod osdmap;

pub use config::{ClientConfig, CommonArgs, DialHook};
pub use error::{Errno, Error, Result};
pub use mon::MonClient;
mod client;
pub mod osd;

/// An op's input data, in pieces when it is (merged writes): see [`OsdOp::write`].
pub use ceph_msgr2::DataSegment;
pub use client::{IoCtx, ObjectStat, Rados, Watch};
pub use osd::messages::{SnapContext, NOSNAP, SNAPDIR};
pub use osd::ops::{OpResult, OsdOp};
pub use osd::WatchEvent;
