//! Plain-text keyrings (`/etc/ceph/ceph.client.admin.keyring`).
//!
//! ceph: src/auth/KeyRing.cc `decode_plaintext` / `set_modifier` (INI via ConfFile).
//! Format:
//!
//! ```text
//! # comment            ; also a comment
//! [client.kubernetes]
//!     key = AQApMwZrvCZ+DRAAeS5Mu4cmvIHECPmzhXTB5g==
//!     caps mon = "profile rbd"
//!     caps osd = "profile rbd pool=kubernetes_data"
//! ```
//!
//! Section names are entity names (`type.id`; `[global]` is skipped). Within a section,
//! `key` holds the base64 `CryptoKey`, `caps <service>` (or `caps_<service>`) a capability
//! string (quotes removed), `auid` is accepted and ignored, and other keys are ignored.
//! Values may be double-quoted (with `\"` and `\\` escapes); an unquoted value ends at
//! `#` or `;`. Whitespace is free around names, `=` and values; CRLF line ends are fine.

use crate::crypto::CryptoKey;
use crate::error::{CephxError, Result};
use ceph_encoding::{EntityName, EntityType};
use nom::branch::alt;
use nom::bytes::complete::{is_not, tag, take, take_while};
use nom::character::complete::{char, one_of, space0};
use nom::combinator::{all_consuming, eof, map, not, opt, rest, value};
use nom::multi::fold_many0;
use nom::sequence::{delimited, pair, preceded, terminated, tuple};
use nom::IResult;
use std::collections::BTreeMap;
use std::path::Path;

/// One entity's entry in a keyring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyringEntry {
    /// The entity's secret (absent if the section has only caps).
    pub key: Option<CryptoKey>,
    /// Capabilities by service (`mon`, `osd`, `mgr`, ...), quotes removed.
    pub caps: BTreeMap<String, String>,
}

/// A parsed keyring: entity name → key and caps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    entries: BTreeMap<EntityName, KeyringEntry>,
}

/// One parsed line.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    Blank,
    Section(&'a str),
    Entry(&'a str, String),
}

/// `# ...` or `; ...` to the end of the line, or nothing; then the end.
fn line_end(i: &str) -> IResult<&str, ()> {
    value(
        (),
        pair(space0, pair(opt(preceded(one_of("#;"), rest)), eof)),
    )(i)
}

fn section(i: &str) -> IResult<&str, Line<'_>> {
    map(
        terminated(delimited(char('['), is_not("]\n"), char(']')), line_end),
        |name: &str| Line::Section(name.trim()),
    )(i)
}

/// A double-quoted value with `\"` / `\\` (and any `\x` → `x`) escapes.
fn quoted(i: &str) -> IResult<&str, String> {
    delimited(
        char('"'),
        fold_many0(
            alt((is_not("\\\""), preceded(char('\\'), take(1usize)))),
            String::new,
            |mut acc, s: &str| {
                acc.push_str(s);
                acc
            },
        ),
        char('"'),
    )(i)
}

fn bare(i: &str) -> IResult<&str, String> {
    map(take_while(|c| c != '#' && c != ';'), |s: &str| {
        s.trim_end().to_string()
    })(i)
}

fn entry(i: &str) -> IResult<&str, Line<'_>> {
    map(
        tuple((
            is_not("=#;[\""),
            tag("="),
            space0,
            alt((
                terminated(quoted, line_end),
                preceded(not(char('"')), terminated(bare, line_end)),
            )),
        )),
        |(k, _, _, v): (&str, _, _, String)| Line::Entry(k.trim(), v),
    )(i)
}

fn line(i: &str) -> IResult<&str, Line<'_>> {
    all_consuming(preceded(
        space0,
        alt((map(line_end, |_| Line::Blank), section, entry)),
    ))(i)
}

/// `caps_mon`, `caps  mon` → `caps mon` (Ceph treats `_` and ` ` in key names alike).
fn normalize_key(k: &str) -> String {
    let mut out = String::with_capacity(k.len());
    let mut gap = false;
    for c in k.chars() {
        if c == '_' || c.is_whitespace() {
            gap = true;
        } else {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(c);
        }
    }
    out
}

/// Entity names in keyrings are `type.id`; unlike command-line ids a bare id is not a
/// client, and `mon.` (empty id) is valid.
fn parse_entity(s: &str) -> Option<EntityName> {
    let (t, id) = s.split_once('.')?;
    Some(EntityName {
        ty: EntityType::from_name(t)?,
        id: id.to_string(),
    })
}

impl Keyring {
    /// Parse keyring text.
    pub fn parse(text: &str) -> Result<Self> {
        let mut kr = Keyring::default();
        let mut current: Option<Option<EntityName>> = None; // Some(None) = [global]
        for (n, raw) in text.split('\n').enumerate() {
            let lineno = n + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let err = |detail: String| CephxError::Keyring {
                line: lineno,
                detail,
            };
            let (_, parsed) = line(raw).map_err(|_| err(format!("cannot parse {raw:?}")))?;
            match parsed {
                Line::Blank => {}
                Line::Section("global") => current = Some(None),
                Line::Section(name) => {
                    let ename = parse_entity(name)
                        .ok_or_else(|| err(format!("bad entity name [{name}]")))?;
                    kr.entries.entry(ename.clone()).or_default();
                    current = Some(Some(ename));
                }
                Line::Entry(k, v) => {
                    let ename = match &current {
                        None => return Err(err(format!("{k:?} outside of any [section]"))),
                        Some(None) => continue,
                        Some(Some(e)) => e,
                    };
                    let entry = kr.entries.get_mut(ename).expect("section inserted");
                    let k = normalize_key(k);
                    if k == "key" {
                        let key =
                            CryptoKey::from_base64(&v).map_err(|e| err(format!("key: {e}")))?;
                        entry.key = Some(key);
                    } else if let Some(svc) = k.strip_prefix("caps ") {
                        entry.caps.insert(svc.to_string(), v);
                    } else if k == "auid" {
                        // retired
                    } else {
                        tracing::debug!(line = lineno, key = %k, "ignoring unknown keyring field");
                    }
                }
            }
        }
        Ok(kr)
    }

    /// Read and parse a keyring file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            CephxError::KeyFile {
                path: path.to_path_buf(),
                source,
            }
        })?);
        Self::parse(&text)
    }

    /// The entry for `name`, if present.
    pub fn get(&self, name: &EntityName) -> Option<&KeyringEntry> {
        self.entries.get(name)
    }

    /// The key for `name`, or [`CephxError::EntityNotInKeyring`].
    pub fn key(&self, name: &EntityName) -> Result<&CryptoKey> {
        self.entries
            .get(name)
            .and_then(|e| e.key.as_ref())
            .ok_or_else(|| CephxError::EntityNotInKeyring(name.clone()))
    }

    /// All entries, in entity-name order.
    pub fn iter(&self) -> impl Iterator<Item = (&EntityName, &KeyringEntry)> {
        self.entries.iter()
    }

    /// Number of entities.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the keyring has no entity.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add or replace an entity's key.
    pub fn insert_key(&mut self, name: EntityName, key: CryptoKey) {
        self.entries.entry(name).or_default().key = Some(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AQApMwZrvCZ+DRAAeS5Mu4cmvIHECPmzhXTB5g==";
    const K2: &str = "AQAtMwZr8AWaEhAAKxtwNQf1S+0Dy5vh/mfhcQ==";

    #[test]
    fn simple_keyring() {
        let kr = Keyring::parse(&format!("[client.kubernetes]\n\tkey = {K1}\n")).unwrap();
        let name = EntityName::client("kubernetes");
        assert_eq!(kr.key(&name).unwrap().to_base64(), K1);
        assert_eq!(kr.len(), 1);
    }

    #[test]
    fn full_syntax() {
        let text = format!(
            "# leading comment\n\
             ; another comment\n\
             \n\
             [global]\n\
             fsid = whatever\n\
             [ client.admin ]   # trailing comment\r\n\
             \tkey={K1}\r\n\
             \tcaps mon = \"allow *\"\n\
             \tcaps_osd = \"allow rw pool=a; b\" ; comment after quotes\n\
             caps  mgr = allow r # bare value\n\
             auid = 0\n\
             unknown thing = 3\n\
             [mon.]\n\
             key = {K2}\n\
             [client.rbd-mirror.site-a]\n\
             \x20 key = \"{K2}\"\n\
             \x20 caps mon = \"profile \\\"rbd\\\"\"\n"
        );
        let kr = Keyring::parse(&text).unwrap();
        assert_eq!(kr.len(), 3);
        let admin = kr.get(&EntityName::client("admin")).unwrap();
        assert_eq!(admin.key.as_ref().unwrap().to_base64(), K1);
        assert_eq!(admin.caps["mon"], "allow *");
        assert_eq!(admin.caps["osd"], "allow rw pool=a; b");
        assert_eq!(admin.caps["mgr"], "allow r");
        let mon = EntityName {
            ty: EntityType::MON,
            id: String::new(),
        };
        assert_eq!(kr.key(&mon).unwrap().to_base64(), K2);
        let m = kr.get(&EntityName::client("rbd-mirror.site-a")).unwrap();
        assert_eq!(m.key.as_ref().unwrap().to_base64(), K2);
        assert_eq!(m.caps["mon"], "profile \"rbd\"");
    }

    #[test]
    fn shared_capture_keyring() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/captures/crc.client.kubernetes.keyring"
        );
        let kr = Keyring::from_file(path).unwrap();
        assert_eq!(
            kr.key(&EntityName::client("kubernetes"))
                .unwrap()
                .to_base64(),
            K1
        );
    }

    #[test]
    fn errors() {
        let e = Keyring::parse(&format!("[client.a]\nkey = {K1}\n")).unwrap();
        match e.key(&EntityName::client("b")) {
            Err(CephxError::EntityNotInKeyring(n)) => assert_eq!(n.to_string(), "client.b"),
            other => panic!("{other:?}"),
        }
        let e = Keyring::parse("[client.a]\nkey = AQAAAA==\n").unwrap_err();
        assert!(matches!(e, CephxError::Keyring { line: 2, .. }), "{e}");
        assert!(e.to_string().contains("bad key material"), "{e}");
        assert!(matches!(
            Keyring::parse("[bogus.a]\n"),
            Err(CephxError::Keyring { line: 1, .. })
        ));
        assert!(matches!(
            Keyring::parse("[client.a\n"),
            Err(CephxError::Keyring { line: 1, .. })
        ));
        assert!(matches!(
            Keyring::parse("key = x\n"),
            Err(CephxError::Keyring { line: 1, .. })
        ));
        assert!(matches!(
            Keyring::parse("[client.a]\ncaps mon = \"unterminated\n"),
            Err(CephxError::Keyring { line: 2, .. })
        ));
        // a section without a key is kept, but has no key
        let kr = Keyring::parse("[client.a]\ncaps mon = \"allow r\"\n").unwrap();
        assert!(kr.key(&EntityName::client("a")).is_err());
    }

    #[test]
    fn line_parser() {
        assert_eq!(line("").unwrap().1, Line::Blank);
        assert_eq!(line("   # x").unwrap().1, Line::Blank);
        assert_eq!(line("[a.b]").unwrap().1, Line::Section("a.b"));
        assert_eq!(line(" k = v ").unwrap().1, Line::Entry("k", "v".into()));
        assert_eq!(line("k=\"\"").unwrap().1, Line::Entry("k", String::new()));
        assert_eq!(line("k =").unwrap().1, Line::Entry("k", String::new()));
    }
}
