//! Client configuration the way Ceph tools take it: `ceph.conf`, `CEPH_CONF`, `CEPH_ARGS`,
//! `-m`, `--id` / `-n`, `--keyring`, `--key`, `--keyfile`.

use crate::error::{Error, Result};
use ceph_cephx::{CryptoKey, Keyring};
use ceph_encoding::EntityName;
use ceph_msgr2::ConMode;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A monitor address as configured: host (name or IP) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonAddr {
    /// Host name or IP literal.
    pub host: String,
    /// Port; 3300 when not given.
    pub port: u16,
}

impl std::fmt::Display for MonAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parse a `mon host` value: `10.0.0.1,10.0.0.2:3300`, `[v2:1.2.3.4:3300,v1:1.2.3.4:6789]`,
/// `v2:1.2.3.4:3300/0`, separated by commas, spaces or semicolons. v1-only entries are
/// dropped when a v2 entry for the same host exists; a bare port 6789 (the msgr1 port of
/// many guides) is kept as given and the connector tries 3300 on that host instead.
pub fn parse_mon_host(s: &str) -> Result<Vec<MonAddr>> {
    let mut out: Vec<MonAddr> = Vec::new();
    let mut v1_only: Vec<MonAddr> = Vec::new();
    // Split on separators that are outside brackets of IPv6 literals.
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for ch in s.chars() {
        match ch {
            '[' => {
                depth += 1;
                cur.push(ch)
            }
            ']' => {
                depth -= 1;
                cur.push(ch)
            }
            ',' | ' ' | ';' | '\t' if depth <= 1 => {
                // Inside an addrvec bracket a comma separates vec entries: same treatment.
                if !cur.is_empty() {
                    items.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(ch),
        }
    }
    if !cur.is_empty() {
        items.push(cur);
    }
    for raw in items {
        // Strip the brackets of an addrvec (`[v2:...,v1:...]`) but not those of an IPv6
        // literal (`[::1]:3300`).
        let mut t = raw.trim();
        if t.starts_with("[v") || t.starts_with("[any:") {
            t = &t[1..];
        }
        if t.ends_with(']') && t.matches(']').count() > t.matches('[').count() {
            t = &t[..t.len() - 1];
        }
        let mut it = t.to_string();
        if it.is_empty() {
            continue;
        }
        let mut is_v1 = false;
        if let Some(r) = it.strip_prefix("v2:") {
            it = r.to_string();
        } else if let Some(r) = it.strip_prefix("v1:") {
            it = r.to_string();
            is_v1 = true;
        } else if let Some(r) = it.strip_prefix("any:") {
            it = r.to_string();
        }
        if let Some((a, _nonce)) = it.rsplit_once('/') {
            it = a.to_string();
        }
        let (host, port) = split_host_port(&it)?;
        let addr = MonAddr {
            host,
            port: port.unwrap_or(3300),
        };
        if is_v1 {
            v1_only.push(addr);
        } else if !out.contains(&addr) {
            out.push(addr);
        }
    }
    for a in v1_only {
        if !out.iter().any(|o| o.host == a.host) {
            out.push(a);
        }
    }
    if out.is_empty() {
        return Err(Error::Config(format!("no monitor address in {s:?}")));
    }
    Ok(out)
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>)> {
    let bad = || Error::Config(format!("bad monitor address {s:?}"));
    if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once(']').ok_or_else(bad)?;
        let port = match p.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| bad())?),
            None => None,
        };
        return Ok((h.to_string(), port));
    }
    if s.matches(':').count() > 1 {
        return Ok((s.to_string(), None)); // bare IPv6
    }
    match s.split_once(':') {
        Some((h, p)) => Ok((h.to_string(), Some(p.parse().map_err(|_| bad())?))),
        None => Ok((s.to_string(), None)),
    }
}

/// A parsed `ceph.conf`: sections of normalised keys (spaces and dashes become `_`).
#[derive(Debug, Clone, Default)]
pub struct CephConf {
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl CephConf {
    /// Parse INI text. Comments start with `#` or `;`.
    pub fn parse(text: &str) -> Result<Self> {
        let mut conf = CephConf::default();
        let mut section = "global".to_string();
        for (n, line) in text.lines().enumerate() {
            let line = strip_comment(line).trim();
            if line.is_empty() {
                continue;
            }
            if let Some(s) = line.strip_prefix('[') {
                let s = s.strip_suffix(']').ok_or_else(|| {
                    Error::Config(format!("ceph.conf line {}: bad section header", n + 1))
                })?;
                section = s.trim().to_string();
                continue;
            }
            let (k, v) = line.split_once('=').ok_or_else(|| {
                Error::Config(format!("ceph.conf line {}: expected key = value", n + 1))
            })?;
            let v = v.trim().trim_matches('"').to_string();
            conf.sections
                .entry(section.clone())
                .or_default()
                .insert(normalize_key(k), v);
        }
        Ok(conf)
    }

    /// Read and parse a file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text)
    }

    /// Look a key up for an entity: `[client.NAME]`, then `[client]`, then `[global]`.
    pub fn get(&self, name: &EntityName, key: &str) -> Option<&str> {
        let key = normalize_key(key);
        let full = name.to_string();
        for s in [full.as_str(), name.ty.name(), "global"] {
            if let Some(v) = self.sections.get(s).and_then(|m| m.get(&key)) {
                return Some(v);
            }
        }
        None
    }
}

fn strip_comment(line: &str) -> &str {
    match line.find(['#', ';']) {
        Some(i) => &line[..i],
        None => line,
    }
}

fn normalize_key(k: &str) -> String {
    k.trim().replace([' ', '-'], "_").to_ascii_lowercase()
}

/// Where the secret comes from.
#[derive(Clone)]
pub enum KeySource {
    /// A key given directly (`--key`, a Kubernetes Secret).
    Key(CryptoKey),
    /// A keyring file to search for the entity.
    Keyring(PathBuf),
    /// A file holding just the key (`--keyfile`).
    KeyFile(PathBuf),
    /// `auth_client_required = none`: no authentication.
    None,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Key(_) => f.write_str("Key(..)"),
            KeySource::Keyring(p) => write!(f, "Keyring({})", p.display()),
            KeySource::KeyFile(p) => write!(f, "KeyFile({})", p.display()),
            KeySource::None => f.write_str("None"),
        }
    }
}

/// Everything needed to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Who we are (`client.admin`).
    pub name: EntityName,
    /// Monitors to hunt across.
    pub mon_hosts: Vec<MonAddr>,
    /// Key sources, tried in order.
    pub keys: Vec<KeySource>,
    /// Modes offered to monitors (`ms_mon_client_mode`, default `secure crc`).
    pub mon_modes: Vec<ConMode>,
    /// Modes offered to OSDs and managers (`ms_client_mode`, default `crc secure`).
    pub osd_modes: Vec<ConMode>,
    /// How long to keep trying to reach and authenticate with a monitor
    /// (`client_mount_timeout`, default 30 s).
    pub mount_timeout: Duration,
    /// Per-op timeout for OSD operations (`rados_osd_op_timeout`; `None` = wait forever,
    /// resending across map changes).
    pub op_timeout: Option<Duration>,
    /// Per-command timeout for monitor commands (`rados_mon_op_timeout`). Unset, a
    /// command waits on a live monitor as long as it takes, but fails with
    /// `NoMonitor` after `mount_timeout` without any monitor session.
    pub mon_op_timeout: Option<Duration>,
    /// How long a request may wait, never sent, for a PG that cannot serve it (no OSD up
    /// to be its primary, or fewer acting OSDs than the pool's min_size) before it fails
    /// with ETIMEDOUT naming the PG (`rados_osd_unservable_timeout`, our own option;
    /// default 120 s; `None`/0 = wait forever, as librados). Only requests no OSD ever
    /// received fail this way, so a write reported failed cannot land later.
    pub unservable_timeout: Option<Duration>,
    /// Keepalive interval towards monitors (`mon_client_ping_interval`).
    pub mon_ping_interval: Duration,
    /// A monitor session silent for this long is dropped and hunting resumes
    /// (`mon_client_ping_timeout`).
    pub mon_ping_timeout: Duration,
    /// Keepalive interval towards OSDs: the OSD answers each KEEPALIVE2, so a healthy but
    /// quiet session still hears from its peer well within [`Self::osd_idle_timeout`].
    pub osd_keepalive_interval: Duration,
    /// An OSD session silent for this long is torn down and its requests are resent on a
    /// fresh one (a black-holed peer otherwise holds them forever).
    pub osd_idle_timeout: Duration,
    /// Most OSD requests in flight at once (`objecter_inflight_ops`, default 1024; 0 =
    /// no limit, as for Ceph's throttle). A request beyond it waits for a slot, within
    /// its timeout; a slot is free again when the request's reply came (or it failed).
    pub inflight_ops: usize,
    /// Where to actually dial a monitor or OSD address (`None`: the address itself). Only
    /// the TCP connect is redirected; the session still names the real peer, so a
    /// transparent forwarder (the fault-injection proxy of the integration tests) can sit
    /// in between without the cluster noticing.
    pub dial: Option<DialHook>,
}

/// Rewrites the address a connection dials (see [`ClientConfig::dial`]). A plain function
/// instead of a connector trait: it runs once per connection attempt, never on the I/O path.
#[derive(Clone)]
pub struct DialHook(pub Arc<dyn Fn(SocketAddr) -> SocketAddr + Send + Sync>);

impl DialHook {
    /// The address to connect to for peer `addr`.
    pub fn dial(&self, addr: SocketAddr) -> SocketAddr {
        (self.0)(addr)
    }
}

impl fmt::Debug for DialHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DialHook")
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            name: EntityName::client("admin"),
            mon_hosts: Vec::new(),
            keys: Vec::new(),
            mon_modes: vec![ConMode::Secure, ConMode::Crc],
            osd_modes: vec![ConMode::Crc, ConMode::Secure],
            mount_timeout: Duration::from_secs(30),
            op_timeout: None,
            mon_op_timeout: None,
            unservable_timeout: Some(Duration::from_secs(120)),
            mon_ping_interval: Duration::from_secs(10),
            mon_ping_timeout: Duration::from_secs(30),
            osd_keepalive_interval: Duration::from_secs(5),
            osd_idle_timeout: Duration::from_secs(30),
            inflight_ops: 1024,
            dial: None,
        }
    }
}

/// Options common to every Ceph tool, as parsed from a command line and `CEPH_ARGS`.
#[derive(Debug, Clone, Default)]
pub struct CommonArgs {
    /// `-c/--conf`.
    pub conf: Option<PathBuf>,
    /// `-m/--mon-host` (or `--mon_host`).
    pub mon_host: Option<String>,
    /// `--id` or `-n/--name`.
    pub name: Option<EntityName>,
    /// `-k/--keyring`.
    pub keyring: Option<PathBuf>,
    /// `--key`.
    pub key: Option<String>,
    /// `--keyfile`.
    pub keyfile: Option<PathBuf>,
    /// `--client-mount-timeout` / `--client_mount_timeout` seconds.
    pub mount_timeout: Option<f64>,
    /// `--rados-osd-op-timeout` seconds.
    pub op_timeout: Option<f64>,
    /// `--ms-mon-client-mode`.
    pub mon_mode: Option<String>,
    /// `--ms-client-mode`.
    pub client_mode: Option<String>,
    /// `--objecter-inflight-ops`.
    pub inflight_ops: Option<usize>,
    /// `--debug`: verbose logging.
    pub debug: bool,
}

impl CommonArgs {
    /// Take the common options out of `args` (anywhere in the list, like Ceph's
    /// `ceph_argparse`), leaving the rest in order. `--opt=value` and `--opt value` both work.
    pub fn extract(args: &mut Vec<String>) -> Result<Self> {
        let mut c = CommonArgs::default();
        let mut rest = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = args[i].clone();
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (a.clone(), None),
            };
            let norm = flag.replace('_', "-");
            let takes = matches!(
                norm.as_str(),
                "-c" | "--conf"
                    | "-m"
                    | "--mon-host"
                    | "--id"
                    | "--user"
                    | "-i"
                    | "-n"
                    | "--name"
                    | "-k"
                    | "--keyring"
                    | "--key"
                    | "--keyfile"
                    | "--client-mount-timeout"
                    | "--rados-osd-op-timeout"
                    | "--ms-mon-client-mode"
                    | "--ms-client-mode"
                    | "--objecter-inflight-ops"
            );
            // `-i` means --id only for ceph tools where it is not a file option; the CLIs
            // using `-i` as input file take it before calling us, so accept it here.
            if norm == "--debug" || norm == "--debug-ms" && inline.is_none() {
                c.debug = true;
                i += 1;
                continue;
            }
            if !takes || (norm == "-i") {
                rest.push(a);
                i += 1;
                continue;
            }
            let val = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    args.get(i)
                        .cloned()
                        .ok_or_else(|| Error::Config(format!("{flag} needs a value")))?
                }
            };
            match norm.as_str() {
                "-c" | "--conf" => c.conf = Some(val.into()),
                "-m" | "--mon-host" => c.mon_host = Some(val),
                "--id" | "--user" => c.name = Some(EntityName::client(val)),
                "-n" | "--name" => {
                    c.name = Some(
                        EntityName::parse(&val)
                            .ok_or_else(|| Error::Config(format!("bad entity name {val:?}")))?,
                    )
                }
                "-k" | "--keyring" => c.keyring = Some(val.into()),
                "--key" => c.key = Some(val),
                "--keyfile" => c.keyfile = Some(val.into()),
                "--client-mount-timeout" => c.mount_timeout = Some(parse_secs(&val)?),
                "--rados-osd-op-timeout" => c.op_timeout = Some(parse_secs(&val)?),
                "--ms-mon-client-mode" => c.mon_mode = Some(val),
                "--ms-client-mode" => c.client_mode = Some(val),
                "--objecter-inflight-ops" => c.inflight_ops = Some(parse_count(&val)?),
                _ => unreachable!("matched above"),
            }
            i += 1;
        }
        *args = rest;
        Ok(c)
    }

    /// Options from the `CEPH_ARGS` environment variable (whitespace separated).
    pub fn from_env() -> Result<Self> {
        let mut v: Vec<String> = std::env::var("CEPH_ARGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        Self::extract(&mut v)
    }

    /// Later (command line) options override earlier (`CEPH_ARGS`) ones.
    pub fn merge(mut self, over: CommonArgs) -> Self {
        macro_rules! take {
            ($($f:ident),*) => {$( if over.$f.is_some() { self.$f = over.$f; } )*};
        }
        take!(
            conf,
            mon_host,
            name,
            keyring,
            key,
            keyfile,
            mount_timeout,
            op_timeout,
            mon_mode,
            client_mode,
            inflight_ops
        );
        self.debug |= over.debug;
        self
    }

    /// Build the client configuration: ceph.conf (`-c`, `CEPH_CONF`, or
    /// `/etc/ceph/ceph.conf` if present) overridden by these options.
    pub fn to_config(&self) -> Result<ClientConfig> {
        let mut cfg = ClientConfig::default();
        if let Some(n) = &self.name {
            cfg.name = n.clone();
        }
        let conf_path = self
            .conf
            .clone()
            .or_else(|| std::env::var_os("CEPH_CONF").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from("/etc/ceph/ceph.conf")).filter(|p| p.exists()));
        let conf = match &conf_path {
            Some(p) => CephConf::load(p)?,
            None => CephConf::default(),
        };
        let name = cfg.name.clone();
        let expand = |s: &str| {
            s.replace("$cluster", "ceph")
                .replace("$name", &name.to_string())
                .replace("$type", name.ty.name())
                .replace("$id", &name.id)
        };
        let mon_host = self
            .mon_host
            .clone()
            .or_else(|| conf.get(&name, "mon_host").map(str::to_string))
            .or_else(|| std::env::var("CEPH_MON_HOST").ok());
        match mon_host {
            Some(m) => cfg.mon_hosts = parse_mon_host(&m)?,
            None => return Err(Error::Config(
                "no monitors given: use -m ADDR, or mon_host in ceph.conf (-c PATH / CEPH_CONF)"
                    .into(),
            )),
        }
        if let Some(k) = &self.key {
            cfg.keys.push(KeySource::Key(CryptoKey::from_base64(k)?));
        }
        if let Some(p) = &self.keyfile {
            cfg.keys.push(KeySource::KeyFile(p.clone()));
        }
        if let Some(p) = self
            .keyring
            .clone()
            .or_else(|| std::env::var_os("CEPH_KEYRING").map(PathBuf::from))
        {
            cfg.keys.push(KeySource::Keyring(p));
        }
        if cfg.keys.is_empty() {
            if let Some(k) = conf.get(&name, "key") {
                cfg.keys.push(KeySource::Key(CryptoKey::from_base64(k)?));
            }
            if let Some(p) = conf.get(&name, "keyfile") {
                cfg.keys.push(KeySource::KeyFile(expand(p).into()));
            }
            match conf.get(&name, "keyring") {
                Some(list) => {
                    for p in list.split([',', ' ']).filter(|p| !p.is_empty()) {
                        cfg.keys.push(KeySource::Keyring(expand(p).into()));
                    }
                }
                None => {
                    for p in [
                        format!("/etc/ceph/ceph.{name}.keyring"),
                        "/etc/ceph/ceph.keyring".into(),
                        "/etc/ceph/keyring".into(),
                    ] {
                        cfg.keys.push(KeySource::Keyring(p.into()));
                    }
                }
            }
        }
        let auth_req = conf.get(&name, "auth_client_required").unwrap_or("cephx");
        if auth_req.split([',', ' ']).all(|m| m.trim() == "none") {
            cfg.keys = vec![KeySource::None];
        }
        let mode = |s: Option<&str>, what: &str| -> Result<Option<Vec<ConMode>>> {
            match s {
                None => Ok(None),
                Some(s) => ConMode::parse_list(s)
                    .map(Some)
                    .ok_or_else(|| Error::Config(format!("bad {what} {s:?}"))),
            }
        };
        if let Some(m) = mode(
            self.mon_mode
                .as_deref()
                .or(conf.get(&name, "ms_mon_client_mode")),
            "ms_mon_client_mode",
        )? {
            cfg.mon_modes = m;
        }
        if let Some(m) = mode(
            self.client_mode
                .as_deref()
                .or(conf.get(&name, "ms_client_mode")),
            "ms_client_mode",
        )? {
            cfg.osd_modes = m;
        }
        let secs = |v: Option<f64>, key: &str| -> Result<Option<f64>> {
            match v {
                Some(v) => Ok(Some(v)),
                None => conf.get(&name, key).map(parse_secs).transpose(),
            }
        };
        if let Some(s) = secs(self.mount_timeout, "client_mount_timeout")? {
            cfg.mount_timeout = Duration::from_secs_f64(s.max(0.1));
        }
        if let Some(s) = secs(self.op_timeout, "rados_osd_op_timeout")? {
            cfg.op_timeout = (s > 0.0).then(|| Duration::from_secs_f64(s));
        }
        if let Some(s) = secs(None, "rados_mon_op_timeout")? {
            cfg.mon_op_timeout = (s > 0.0).then(|| Duration::from_secs_f64(s));
        }
        if let Some(s) = secs(None, "rados_osd_unservable_timeout")? {
            cfg.unservable_timeout = (s > 0.0).then(|| Duration::from_secs_f64(s));
        }
        if let Some(n) = self.inflight_ops {
            cfg.inflight_ops = n;
        } else if let Some(v) = conf.get(&name, "objecter_inflight_ops") {
            cfg.inflight_ops = parse_count(v)?;
        }
        Ok(cfg)
    }
}

fn parse_count(s: &str) -> Result<usize> {
    s.trim()
        .parse::<usize>()
        .map_err(|_| Error::Config(format!("bad count {s:?}")))
}

fn parse_secs(s: &str) -> Result<f64> {
    s.trim()
        .trim_end_matches('s')
        .parse::<f64>()
        .map_err(|_| Error::Config(format!("bad duration {s:?}")))
}

impl ClientConfig {
    /// Resolve the secret for `self.name` from the configured sources. `Ok(None)` means
    /// authentication is disabled (`auth_client_required = none`).
    pub fn resolve_key(&self) -> Result<Option<CryptoKey>> {
        let mut errors = Vec::new();
        for src in &self.keys {
            match src {
                KeySource::None => return Ok(None),
                KeySource::Key(k) => return Ok(Some(k.clone())),
                KeySource::KeyFile(p) => match CryptoKey::from_key_file(p) {
                    Ok(k) => return Ok(Some(k)),
                    Err(e) => errors.push(format!("{}: {e}", p.display())),
                },
                KeySource::Keyring(p) => {
                    let text = match std::fs::read_to_string(p) {
                        Ok(t) => t,
                        Err(e) => {
                            errors.push(format!("{}: {e}", p.display()));
                            continue;
                        }
                    };
                    let ring = Keyring::parse(&text)?;
                    match ring.key(&self.name) {
                        Ok(k) => return Ok(Some(k.clone())),
                        Err(_) => errors.push(format!("{}: no key for {}", p.display(), self.name)),
                    }
                }
            }
        }
        Err(Error::Config(format!(
            "no key found for {} (tried: {})",
            self.name,
            if errors.is_empty() {
                "nothing configured".to_string()
            } else {
                errors.join("; ")
            }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mon_host_forms() {
        let v = parse_mon_host("10.0.0.1,10.0.0.2:3300").unwrap();
        assert_eq!(
            v,
            vec![
                MonAddr {
                    host: "10.0.0.1".into(),
                    port: 3300
                },
                MonAddr {
                    host: "10.0.0.2".into(),
                    port: 3300
                }
            ]
        );
        let v = parse_mon_host("[v2:127.0.0.1:3300,v1:127.0.0.1:6789]").unwrap();
        assert_eq!(
            v,
            vec![MonAddr {
                host: "127.0.0.1".into(),
                port: 3300
            }]
        );
        let v = parse_mon_host("v2:127.0.0.1:3301/0 [v2:127.0.0.1:3302/0,v1:127.0.0.1:6790/0]")
            .unwrap();
        assert_eq!(v.len(), 2);
        let v = parse_mon_host("mon1.example:6789").unwrap();
        assert_eq!(v[0].port, 6789);
        let v = parse_mon_host("[::1]:3300").unwrap();
        assert_eq!(v[0].host, "::1");
        assert!(parse_mon_host(" , ").is_err());
    }

    #[test]
    fn conf_lookup_order() {
        let c = CephConf::parse(
            "[global]\nmon host = 1.2.3.4 # comment\nkeyring = /a\n[client]\nkeyring=/b\n[client.k8s]\nms-client-mode = secure\n",
        )
        .unwrap();
        let n = EntityName::client("k8s");
        assert_eq!(c.get(&n, "mon_host"), Some("1.2.3.4"));
        assert_eq!(c.get(&n, "keyring"), Some("/b"));
        assert_eq!(c.get(&n, "ms_client_mode"), Some("secure"));
    }

    #[test]
    fn args_extract() {
        let mut a: Vec<String> = [
            "-p",
            "rbd",
            "--id",
            "kubernetes",
            "ls",
            "-m",
            "1.2.3.4",
            "--keyring=/k",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = CommonArgs::extract(&mut a).unwrap();
        assert_eq!(a, vec!["-p", "rbd", "ls"]);
        assert_eq!(c.name.unwrap().to_string(), "client.kubernetes");
        assert_eq!(c.keyring.unwrap(), PathBuf::from("/k"));
        assert_eq!(c.mon_host.as_deref(), Some("1.2.3.4"));
    }

    /// `objecter_inflight_ops`: from ceph.conf, overridden by the command line, both
    /// spellings; a bad count is a configuration error.
    #[test]
    fn inflight_ops_from_conf_and_args() {
        let dir = std::env::temp_dir().join(format!("inflight-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("ceph.conf");
        std::fs::write(
            &conf,
            "[global]\nmon host = 127.0.0.1\n[client]\nobjecter inflight ops = 64\n",
        )
        .unwrap();
        let args = |extra: &[&str]| {
            let mut a: Vec<String> = ["-c", conf.to_str().unwrap()]
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect();
            CommonArgs::extract(&mut a).unwrap()
        };
        assert_eq!(ClientConfig::default().inflight_ops, 1024);
        assert_eq!(args(&[]).to_config().unwrap().inflight_ops, 64);
        let over = args(&["--objecter_inflight_ops", "0"]);
        assert_eq!(over.to_config().unwrap().inflight_ops, 0);
        let over = args(&["--objecter-inflight-ops=8"]);
        assert_eq!(over.to_config().unwrap().inflight_ops, 8);
        let mut bad: Vec<String> = vec!["--objecter-inflight-ops".into(), "many".into()];
        assert!(CommonArgs::extract(&mut bad).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
