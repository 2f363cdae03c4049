//! Glue between cephx (sans-IO tickets and authorizers) and msgr2's [`AuthClient`] trait.
//!
//! Monitor sessions authenticate with the client key and obtain tickets; OSD and manager
//! sessions present an authorizer built from the service ticket. The ticket store is one
//! [`AuthState`] shared by every session of a client, so a renewed ticket is used by the
//! next OSD connection without further plumbing.

use ceph_cephx::{Authorizer, CephxClient, CephxError, NoneAuth};
use ceph_encoding::{EntityName, EntityType};
use ceph_msgr2::{auth_method, AuthClient, AuthKeys, Error as MsgrError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Random u64 from the OS (nonces, challenges, cookies).
pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).expect("the OS random source is available");
    u64::from_le_bytes(b)
}

/// Random non-zero u32 (instance nonce).
pub(crate) fn random_u32() -> u32 {
    (random_u64() as u32).max(1)
}

/// The client's authentication state: the cephx ticket machine (absent for auth none)
/// and the global id the monitors assigned.
pub(crate) struct AuthState {
    pub name: EntityName,
    pub cephx: Option<CephxClient>,
    pub global_id: u64,
}

pub(crate) type SharedAuth = Arc<Mutex<AuthState>>;

fn cephx_err(e: CephxError) -> MsgrError {
    MsgrError::Auth(e.to_string())
}

/// Authentication towards a monitor. Each hunting attempt has its own ticket machine (a
/// clone of the current one), because parallel attempts may each be assigned a different
/// global id; only the winner's machine is installed in the shared state.
pub(crate) struct MonAuth {
    pub slot: Arc<Mutex<MonAuthSlot>>,
}

pub(crate) struct MonAuthSlot {
    pub name: EntityName,
    pub cephx: Option<CephxClient>,
    pub global_id: u64,
    /// The cephx failure, kept typed so the monitor client can tell "wrong key" from
    /// "monitor unreachable".
    pub error: Option<CephxError>,
}

impl AuthClient for MonAuth {
    fn auth_request(&mut self) -> Result<(u32, Vec<u8>), MsgrError> {
        let s = self.slot.lock().expect("auth slot");
        match &s.cephx {
            Some(c) => Ok((auth_method::CEPHX, c.initial_request(s.global_id))),
            None => Ok((
                auth_method::NONE,
                NoneAuth::new(s.name.clone()).initial_request(s.global_id),
            )),
        }
    }

    fn handle_reply_more(&mut self, payload: &[u8]) -> Result<Vec<u8>, MsgrError> {
        let mut s = self.slot.lock().expect("auth slot");
        let Some(c) = s.cephx.as_mut() else {
            return Err(MsgrError::Auth(
                "unexpected AUTH_REPLY_MORE with auth none".into(),
            ));
        };
        match c.handle_server_challenge(payload, random_u64()) {
            Ok(v) => Ok(v),
            Err(e) => {
                let m = MsgrError::Auth(e.to_string());
                s.error = Some(e);
                Err(m)
            }
        }
    }

    fn handle_done(
        &mut self,
        global_id: u64,
        _mode: u32,
        payload: &[u8],
    ) -> Result<AuthKeys, MsgrError> {
        let mut s = self.slot.lock().expect("auth slot");
        s.global_id = global_id;
        let Some(c) = s.cephx.as_mut() else {
            return Ok(AuthKeys::default());
        };
        match c.handle_auth_done(payload, Instant::now()) {
            Ok(mut r) => {
                c.set_global_id(global_id);
                Ok(AuthKeys {
                    session_key: std::mem::take(&mut r.session_key),
                    connection_secret: std::mem::take(&mut r.connection_secret),
                })
            }
            Err(e) => {
                let m = MsgrError::Auth(e.to_string());
                s.error = Some(e);
                Err(m)
            }
        }
    }

    fn peer_type(&self) -> Option<EntityType> {
        Some(EntityType::MON)
    }
}

/// Authentication towards an OSD or manager with a cephx authorizer.
pub(crate) struct ServiceAuth {
    pub shared: SharedAuth,
    pub service: EntityType,
    pub authorizer: Option<Authorizer>,
}

impl AuthClient for ServiceAuth {
    fn auth_request(&mut self) -> Result<(u32, Vec<u8>), MsgrError> {
        let s = self.shared.lock().expect("auth state");
        match &s.cephx {
            None => Ok((
                auth_method::NONE,
                NoneAuth::new(s.name.clone()).authorizer(s.global_id),
            )),
            Some(c) => {
                let a = c
                    .build_authorizer(self.service, random_u64(), s.global_id)
                    .map_err(cephx_err)?;
                let p = a.payload().to_vec();
                self.authorizer = Some(a);
                Ok((auth_method::CEPHX, p))
            }
        }
    }

    fn handle_reply_more(&mut self, payload: &[u8]) -> Result<Vec<u8>, MsgrError> {
        let a = self
            .authorizer
            .as_mut()
            .ok_or_else(|| MsgrError::Auth("no authorizer".into()))?;
        a.add_challenge(payload).map_err(cephx_err)
    }

    fn handle_done(
        &mut self,
        _global_id: u64,
        _mode: u32,
        payload: &[u8],
    ) -> Result<AuthKeys, MsgrError> {
        let Some(a) = self.authorizer.as_ref() else {
            return Ok(AuthKeys::default());
        };
        let mut r = a.verify_reply(payload).map_err(cephx_err)?;
        Ok(AuthKeys {
            session_key: a.session_key().secret().to_vec(),
            connection_secret: std::mem::take(&mut r.connection_secret),
        })
    }

    fn peer_type(&self) -> Option<EntityType> {
        Some(self.service)
    }
}
