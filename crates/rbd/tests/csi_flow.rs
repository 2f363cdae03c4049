//! The library calls a CSI driver (ceph-csi) makes, through the blocking facade, with
//! librbd's `rbd` as the other party: volume metadata, the watcher check, namespaces,
//! deletion through the trash, and a read-only open that does not block `rbd rm`.

mod common;

use ceph_rados::Errno;
use ceph_rbd::{BlockingRbd, CreateOptions, Rbd, TrashSource};
use common::*;
use std::time::Duration;

#[test]
fn csi_metadata_trash_namespace_flow() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (rados, pool) = rt.block_on(async {
        let rados = connect().await;
        let pool = TestPool::new(&rados, "csi").await;
        (rados, pool)
    });
    let p = pool.name.clone();
    let rbd = BlockingRbd::new(pool.rbd.clone(), rt.handle().clone());

    // CreateVolume: image + metadata, read back by librbd
    rbd.create("csi-vol-1", 8 << 20, &CreateOptions::default())
        .unwrap();
    rbd.metadata_set("csi-vol-1", "csi.volname", b"pvc-1")
        .unwrap();
    rbd.metadata_set("csi-vol-1", "csi.ceph.com/cluster/name", b"c1")
        .unwrap();
    assert_eq!(
        rbd_ok(&[
            "image-meta",
            "get",
            &format!("{p}/csi-vol-1"),
            "csi.volname"
        ]),
        "pvc-1\n"
    );
    rbd_ok(&["image-meta", "set", &format!("{p}/csi-vol-1"), "k", "v"]);
    let m = rbd.metadata_list("csi-vol-1").unwrap();
    assert_eq!(m.len(), 3);
    assert_eq!(m["k"], b"v");
    assert_eq!(
        rbd.metadata_get("csi-vol-1", "nope").unwrap_err().errno(),
        Errno::ENOENT
    );
    assert!(rbd.metadata_set("csi-vol-1", "conf_nope", b"1").is_err());

    // the watcher check: nobody, then a writer, then nobody again; a read-only handle
    // adds no watch and does not stop librbd's rm
    assert!(rbd.watchers("csi-vol-1").unwrap().is_empty());
    let w = rbd.open("csi-vol-1").unwrap();
    assert_eq!(rbd.watchers("csi-vol-1").unwrap().len(), 1);
    rt.block_on(w.image().clone().close()).unwrap();
    assert!(rbd.watchers("csi-vol-1").unwrap().is_empty());
    rbd.create("ro", 1 << 20, &CreateOptions::default())
        .unwrap();
    let ro = rbd.open_read_only("ro").unwrap();
    assert!(rbd.watchers("ro").unwrap().is_empty());
    rbd_ok(&["rm", "--no-progress", &format!("{p}/ro")]);
    drop(ro);

    // DeleteVolume: trash mv + trash remove; librbd sees the entry in between
    let id = rbd.trash_move("csi-vol-1", Duration::ZERO).unwrap();
    let ls = rbd_ok(&["trash", "ls", &p]);
    assert_eq!(ls, format!("{id} csi-vol-1\n"));
    let t = rbd.trash_list().unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].source, TrashSource::User);
    // restore (as a different name) and back
    rbd.trash_restore(&id, Some("csi-vol-1b")).unwrap();
    assert_eq!(
        rbd_ok(&[
            "image-meta",
            "get",
            &format!("{p}/csi-vol-1b"),
            "csi.volname"
        ]),
        "pvc-1\n"
    );
    rbd.trash_move("csi-vol-1b", Duration::from_secs(3600))
        .unwrap();
    assert_eq!(
        rbd.trash_remove(&id, false).unwrap_err().errno(),
        Errno::EPERM
    );
    rbd.trash_remove(&id, true).unwrap();
    assert!(rbd.trash_list().unwrap().is_empty());
    assert!(rbd.list().unwrap().is_empty());

    // namespaces (a tenant per namespace)
    rbd.namespace_create("tenant-a").unwrap();
    assert_eq!(rbd.namespace_list().unwrap(), vec!["tenant-a".to_string()]);
    let mut io = pool.rbd.ioctx().clone();
    io.set_namespace("tenant-a");
    let tenant = BlockingRbd::new(Rbd::new(io), rt.handle().clone());
    tenant
        .create("v", 1 << 20, &CreateOptions::default())
        .unwrap();
    assert_eq!(rbd_ok(&["ls", &format!("{p}/tenant-a")]), "v\n");
    assert_eq!(
        rbd.namespace_remove("tenant-a").unwrap_err().errno(),
        Errno::EBUSY
    );
    tenant.remove("v").unwrap();
    rbd.namespace_remove("tenant-a").unwrap();
    assert_eq!(rbd_ok(&["namespace", "ls", &p]), "");
    let _ = rados;
    rt.block_on(pool.cleanup());
}
