//! cls_rbd calls for image/pool metadata, namespaces and directory state, as librbd
//! sends them. ceph: src/cls/rbd/cls_rbd_client.cc (metadata_get, metadata_remove,
//! namespace_add, namespace_remove, namespace_list, dir_state_set).

use super::{enc, exact, ClsCall, DResult};
use ceph_encoding::{Decode, EncodeExt};

/// The object listing a pool's namespaces (in the default namespace).
pub const RBD_NAMESPACE: &str = "rbd_namespace";

/// `cls::rbd::DirectoryState::DIRECTORY_STATE_READY`.
pub const DIRECTORY_STATE_READY: u8 = 0;
/// `cls::rbd::DirectoryState::DIRECTORY_STATE_ADD_DISABLED`: no images may be added
/// (a namespace being removed).
pub const DIRECTORY_STATE_ADD_DISABLED: u8 = 1;

/// `metadata_get(key)` → bufferlist value (ENOENT when absent).
pub fn metadata_get(key: &str) -> ClsCall {
    ClsCall::rbd("metadata_get", enc(|b| b.put_str(key)), false)
}

/// Decode `metadata_get`: the value as an encoded string/bufferlist.
pub fn decode_metadata_get(b: &[u8]) -> DResult<Vec<u8>> {
    exact(b, "metadata_get", Vec::<u8>::decode)
}

/// `metadata_remove(key)` (ENOENT when absent).
pub fn metadata_remove(key: &str) -> ClsCall {
    ClsCall::rbd("metadata_remove", enc(|b| b.put_str(key)), true)
}

/// `namespace_add(name)` on [`RBD_NAMESPACE`] (EEXIST when present).
pub fn namespace_add(name: &str) -> ClsCall {
    ClsCall::rbd("namespace_add", enc(|b| b.put_str(name)), true)
}

/// `namespace_remove(name)` on [`RBD_NAMESPACE`] (ENOENT when absent).
pub fn namespace_remove(name: &str) -> ClsCall {
    ClsCall::rbd("namespace_remove", enc(|b| b.put_str(name)), true)
}

/// `namespace_list(start_after, max)` on [`RBD_NAMESPACE`] → list of names.
pub fn namespace_list(start_after: &str, max: u64) -> ClsCall {
    ClsCall::rbd(
        "namespace_list",
        enc(|b| {
            b.put_str(start_after);
            b.put_u64(max);
        }),
        false,
    )
}

/// Decode `namespace_list`.
pub fn decode_namespace_list(b: &[u8]) -> DResult<Vec<String>> {
    exact(b, "namespace_list", |d| d.vec::<String>(4, "namespaces"))
}

/// `dir_state_set(state)` on `rbd_directory` (EBUSY when images remain and the
/// state would disable adds).
pub fn dir_state_set(state: u8) -> ClsCall {
    ClsCall::rbd("dir_state_set", enc(|b| b.put_u8(state)), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(metadata_get("k").input, vec![1, 0, 0, 0, b'k']);
        let l = namespace_list("", 7);
        assert_eq!(l.input, vec![0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]);
        assert!(!l.write);
        assert_eq!(dir_state_set(1).input, vec![1]);
        let v = decode_namespace_list(&[1, 0, 0, 0, 2, 0, 0, 0, b'n', b's']).unwrap();
        assert_eq!(v, vec!["ns".to_string()]);
        assert_eq!(
            decode_metadata_get(&[2, 0, 0, 0, b'v', b'1']).unwrap(),
            b"v1".to_vec()
        );
    }
}
