//! Keys made by the real `ceph-authtool` (Ceph 16.2.15, installed on the test machine) decode
//! with the documented layout. Fails when the tool is missing.

use base64::Engine as _;
use ceph_cephx::{CryptoKey, CryptoType, Keyring};
use ceph_encoding::EntityName;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

#[path = "../../rados/tests/common/oracle.rs"]
mod oracle;
use oracle::oracle;

fn authtool(args: &[&str]) -> String {
    let out = Command::new(oracle("ceph-authtool"))
        .args(args)
        .output()
        .expect("ceph-authtool must be installed (ceph-common)");
    assert!(
        out.status.success(),
        "ceph-authtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn gen_print_key_layout() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for _ in 0..3 {
        let text = authtool(&["--gen-print-key"]);
        assert!(text.ends_with('\n'));
        assert!(text.starts_with("AQ"));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .unwrap();
        assert_eq!(raw.len(), 28);
        assert_eq!(&raw[0..2], &[1, 0], "type AES");
        assert_eq!(&raw[10..12], &[16, 0], "secret length 16");
        let key = CryptoKey::from_base64(&text).unwrap();
        assert_eq!(key.crypto_type(), CryptoType::AES);
        assert_eq!(key.secret(), &raw[12..28]);
        let created = key.created();
        assert_eq!(
            created.sec,
            u32::from_le_bytes(raw[2..6].try_into().unwrap())
        );
        assert!(
            (created.sec as u64).abs_diff(now) < 3600,
            "created stamp {created:?} vs now {now}"
        );
        assert!(created.nsec < 1_000_000_000);
        assert_eq!(key.to_base64(), text.trim());
        // The key round-trips through our AES and envelope helpers.
        let ct = key.encrypt_enc_bl(b"hello");
        assert_eq!(&*key.decrypt_enc_bl(&ct, "t").unwrap(), b"hello");
    }
}

#[test]
fn authtool_keyring_parses() {
    let dir = std::env::temp_dir().join(format!("cephx-authtool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("test.keyring");
    let p = path.to_str().unwrap();
    authtool(&[
        "-C",
        "-n",
        "client.test",
        "--gen-key",
        "--cap",
        "mon",
        "allow r",
        "--cap",
        "osd",
        "allow rw pool=x",
        p,
    ]);
    authtool(&["-n", "client.other", "--gen-key", p]);
    let printed = authtool(&[p, "-p", "-n", "client.test"]);
    let kr = Keyring::from_file(&path).unwrap();
    assert_eq!(kr.len(), 2);
    let test = EntityName::client("test");
    assert_eq!(kr.key(&test).unwrap().to_base64(), printed.trim());
    let e = kr.get(&test).unwrap();
    assert_eq!(e.caps.get("mon").map(String::as_str), Some("allow r"));
    assert_eq!(
        e.caps.get("osd").map(String::as_str),
        Some("allow rw pool=x")
    );
    assert!(kr.key(&EntityName::client("other")).is_ok());
    // A key file holding just the key, as `ceph auth get-key` / `--keyfile` use.
    let keyfile = dir.join("key");
    std::fs::write(&keyfile, format!("{}\n", printed.trim())).unwrap();
    assert_eq!(
        &CryptoKey::from_key_file(&keyfile).unwrap(),
        kr.key(&test).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
