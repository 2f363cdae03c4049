//! `rbd-rs device map|unmap|list` on the real cluster, the way a Kubernetes node uses a
//! volume: as `client.<k8s user>` with only `profile rbd` caps, map a fresh layering
//! image, mkfs.ext4, mount, write files, unmount, unmap; librbd's export passes e2fsck;
//! map again (and a snapshot, read-only) and read every file back. A second node (its
//! own run dir, another client) is refused with "still being used" / EBUSY while the
//! image is mapped, maps at once after unmap, and within the watch timeout after the
//! first daemon is SIGKILLed.
//! The same on an image with the default features (exclusive lock held while mapped,
//! released on unmap, object map valid) and on a clone of a golden image.
//!
//! Needs root, FUSE, loop devices, mkfs.ext4/e2fsck (scripts/test-cluster install) and
//! the test cluster; without them these tests fail, they never skip.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const RBD_RS: &str = env!("CARGO_BIN_EXE_rbd-rs");

fn cluster_env() -> (String, String) {
    if let (Ok(conf), Ok(keyring)) = (std::env::var("CEPH_CONF"), std::env::var("CEPH_KEYRING")) {
        return (conf, keyring);
    }
    let dir = std::env::var("CEPH_TEST_CLUSTER").unwrap_or_else(|_| "/tmp/ceph-rs-cluster".into());
    let f = PathBuf::from(&dir).join("env");
    let text = std::fs::read_to_string(&f).unwrap_or_else(|_| {
        panic!(
            "no test cluster: set CEPH_CONF and CEPH_KEYRING, or run `scripts/test-cluster start` (looked for {})",
            f.display()
        )
    });
    let get = |k: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(&format!("export {k}="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| panic!("{} has no {k}", f.display()))
    };
    (get("CEPH_CONF"), get("CEPH_KEYRING"))
}

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "dev-{tag}-{}-{}-{:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run a plain command; panic with its output on failure.
#[track_caller]
fn sh(prog: &str, args: &[&str]) -> String {
    let o = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    assert!(
        o.status.success(),
        "{prog} {}: {}",
        args.join(" "),
        show(&o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// An admin tool (`ceph`, `rbd`) on the test cluster.
fn admin(prog: &str, args: &[&str]) -> Output {
    let (conf, keyring) = cluster_env();
    let mut c = Command::new(prog);
    c.args(["--conf", &conf, "--keyring", &keyring]);
    if prog == "ceph" {
        c.args(["--connect-timeout", "30"]);
    }
    c.args(args).env_remove("CEPH_ARGS");
    c.output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"))
}

#[track_caller]
fn admin_ok(prog: &str, args: &[&str]) -> String {
    let o = admin(prog, args);
    assert!(
        o.status.success(),
        "{prog} {}: {}",
        args.join(" "),
        show(&o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A temporary directory, removed on drop.
struct TmpDir(PathBuf);

impl TmpDir {
    fn new(tag: &str) -> TmpDir {
        let p = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&p).expect("tmp dir");
        TmpDir(p)
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A pool and a `profile rbd` user restricted to it (what a Kubernetes node holds);
/// removed on drop.
struct K8s {
    pool: String,
    users: Vec<String>,
    tmp: TmpDir,
}

impl K8s {
    fn new(tag: &str) -> K8s {
        let pool = unique(tag);
        admin_ok("ceph", &["osd", "pool", "create", &pool, "8", "8"]);
        admin_ok("rbd", &["pool", "init", &pool]);
        K8s {
            pool,
            users: Vec::new(),
            tmp: TmpDir::new(tag),
        }
    }

    /// Make user `client.<id>` with `mon 'profile rbd' osd 'profile rbd pool=<pool>'`.
    fn user(&mut self, id: &str) -> User {
        let name = format!("client.{id}");
        let osd = format!("profile rbd pool={}", self.pool);
        admin_ok(
            "ceph",
            &[
                "auth",
                "get-or-create",
                &name,
                "mon",
                "profile rbd",
                "osd",
                &osd,
            ],
        );
        self.users.push(name.clone());
        let keyring = self.tmp.0.join(format!("{id}.keyring"));
        admin_ok(
            "ceph",
            &["auth", "get", &name, "-o", &keyring.to_string_lossy()],
        );
        let run_dir = self.tmp.0.join(format!("run-{id}"));
        User {
            id: id.to_string(),
            keyring,
            run_dir,
        }
    }
}

impl Drop for K8s {
    fn drop(&mut self) {
        for u in &self.users {
            let _ = admin("ceph", &["auth", "rm", u]);
        }
        let p = &self.pool;
        let _ = admin(
            "ceph",
            &["osd", "pool", "rm", p, p, "--yes-i-really-really-mean-it"],
        );
    }
}

/// One node's view: a user and that node's run dir (`RBD_RS_RUN_DIR`).
struct User {
    id: String,
    keyring: PathBuf,
    run_dir: PathBuf,
}

impl User {
    fn rbd_rs(&self, args: &[&str]) -> Output {
        let (conf, _) = cluster_env();
        Command::new(RBD_RS)
            .args(["--conf", &conf, "--id", &self.id, "--keyring"])
            .arg(&self.keyring)
            .args(args)
            .env("RBD_RS_RUN_DIR", &self.run_dir)
            .env_remove("CEPH_ARGS")
            .output()
            .expect("run rbd-rs")
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let o = self.rbd_rs(args);
        assert!(
            o.status.success(),
            "rbd-rs {}: {}",
            args.join(" "),
            show(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    #[track_caller]
    fn map(&self, args: &[&str]) -> String {
        let mut a = vec!["device", "map"];
        a.extend_from_slice(args);
        let dev = self.ok(&a).trim().to_string();
        assert!(dev.starts_with("/dev/loop"), "map printed {dev:?}");
        dev
    }

    /// Every mapping this node has, as `device list --format json` shows it.
    fn list(&self) -> Vec<serde_json::Value> {
        let out = self.ok(&["device", "list", "--format", "json"]);
        serde_json::from_str::<serde_json::Value>(&out)
            .expect("device list json")
            .as_array()
            .expect("array")
            .clone()
    }
}

impl Drop for User {
    /// Whatever a failed test left mapped on this "node" goes.
    fn drop(&mut self) {
        if let Ok(o) = Command::new(RBD_RS)
            .args(["device", "list", "--format", "json"])
            .env("RBD_RS_RUN_DIR", &self.run_dir)
            .output()
        {
            let v: serde_json::Value =
                serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
            for m in v.as_array().into_iter().flatten() {
                if let Some(d) = m["device"].as_str() {
                    let _ = Command::new("umount").arg(d).output();
                    let _ = Command::new(RBD_RS)
                        .args(["device", "unmap", d])
                        .env("RBD_RS_RUN_DIR", &self.run_dir)
                        .output();
                }
            }
        }
    }
}

/// A mount that is undone on drop.
struct Mounted(PathBuf);

impl Mounted {
    fn new(dev: &str, dir: &Path, ro: bool) -> Mounted {
        std::fs::create_dir_all(dir).expect("mount dir");
        let mut a = vec![];
        if ro {
            a.extend(["-o", "ro,noload"]);
        }
        let d = dir.to_string_lossy();
        a.extend([dev, &*d]);
        sh("mount", &a);
        Mounted(dir.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

/// Deterministic pseudo-random bytes (xorshift).
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Write a tree of files (a few sizes, nested dirs); their checksums by relative path.
fn write_tree(root: &Path) -> BTreeMap<String, String> {
    let mut sums = BTreeMap::new();
    let sizes = [0usize, 1, 511, 4096, 65_537, 1 << 20, 3 << 20];
    for (i, size) in sizes.iter().enumerate() {
        let rel = format!("d{}/sub{}/f{i}.bin", i % 3, i % 2);
        let p = root.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let data = pattern(i as u64 + 1, *size);
        std::fs::write(&p, &data).unwrap();
        sums.insert(rel, sha256_hex(&data));
    }
    sums
}

#[track_caller]
fn check_tree(root: &Path, sums: &BTreeMap<String, String>) {
    for (rel, want) in sums {
        let data = std::fs::read(root.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"));
        assert_eq!(&sha256_hex(&data), want, "checksum of {rel}");
    }
}

#[test]
fn kubernetes_volume_on_a_mapped_device() {
    let mut k = K8s::new("k8s");
    let u = k.user(&unique("kube"));
    let img = format!("{}/vol", k.pool);
    u.ok(&[
        "create",
        "--size",
        "64M",
        "--image-feature",
        "layering",
        &img,
    ]);
    let data_dir = k.tmp.0.join("data");

    // first use: mkfs, mount at the pod's path, write, unmount, unmap
    let dev = u.map(&[&img]);
    let l = u.list();
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0]["image"], "vol");
    assert_eq!(l[0]["snap"], "-");
    assert_eq!(l[0]["device"], dev.as_str());
    // a second map on the same node shares the device
    assert_eq!(u.map(&[&img]), dev);
    sh("mkfs.ext4", &["-q", &dev]);
    let sums = {
        let _m = Mounted::new(&dev, &data_dir, false);
        let s = write_tree(&data_dir);
        sh("sync", &[]);
        s
    };
    u.ok(&["device", "unmap", &dev]);
    assert!(u.list().is_empty());
    // the watch is gone at once
    let status = admin_ok("rbd", &["status", &img]);
    assert!(status.contains("Watchers: none"), "{status}");

    // librbd's export is a clean ext4 filesystem
    let exported = k.tmp.0.join("export.img");
    admin_ok(
        "rbd",
        &["export", "--no-progress", &img, &exported.to_string_lossy()],
    );
    sh("e2fsck", &["-fn", &exported.to_string_lossy()]);

    // a snapshot, then the pod comes back: same files; it writes one more
    u.ok(&["snap", "create", &format!("{img}@s1")]);
    let dev = u.map(&[&img]);
    {
        let _m = Mounted::new(&dev, &data_dir, false);
        check_tree(&data_dir, &sums);
        std::fs::write(data_dir.join("after-snap"), b"later").unwrap();
    }
    // unmapping spec form
    u.ok(&["device", "unmap", &img]);

    // the snapshot maps read-only and holds the tree as it was
    let snap_dev = u.map(&[&format!("{img}@s1")]);
    assert_eq!(
        sh("blockdev", &["--getro", &snap_dev]).trim(),
        "1",
        "snapshot mapped read-only"
    );
    {
        let _m = Mounted::new(&snap_dev, &data_dir, true);
        check_tree(&data_dir, &sums);
        assert!(!data_dir.join("after-snap").exists());
    }
    u.ok(&["device", "unmap", &snap_dev]);
}

#[test]
fn second_node_is_refused_while_the_image_is_mapped() {
    let mut k = K8s::new("busy");
    let node1 = k.user(&unique("kube1"));
    let node2 = k.user(&unique("kube2"));
    let img = format!("{}/shared", k.pool);
    node1.ok(&[
        "create",
        "--size",
        "32M",
        "--image-feature",
        "layering",
        &img,
    ]);

    let dev = node1.map(&[&img]);
    let o = node2.rbd_rs(&["device", "map", &img]);
    assert_eq!(o.status.code(), Some(16), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("rbd: image {img} is still being used")),
        "{err}"
    );
    assert!(node2.list().is_empty());

    // after unmap the other node maps at once
    node1.ok(&["device", "unmap", &dev]);
    let dev2 = node2.map(&[&img]);
    let pid = node2.list()[0]["id"].as_i64().expect("daemon pid");

    // the second node's daemon dies without unmapping: the OSD drops its watch after
    // the watch timeout (osd_client_watch_timeout, 30 s), then node 1 maps
    sh("kill", &["-KILL", &pid.to_string()]);
    let t0 = Instant::now();
    let dev1 = loop {
        let o = node1.rbd_rs(&["device", "map", &img]);
        if o.status.success() {
            break String::from_utf8_lossy(&o.stdout).trim().to_string();
        }
        assert_eq!(o.status.code(), Some(16), "{}", show(&o));
        assert!(
            t0.elapsed() < Duration::from_secs(75),
            "still refused {:?} after the daemon was killed",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    eprintln!("mapped {:?} after the SIGKILL", t0.elapsed());
    assert!(dev1.starts_with("/dev/loop"));
    node1.ok(&["device", "unmap", &img]);
    // node 2 cleans up what its dead daemon left (loop device, mount point)
    node2.ok(&["device", "unmap", &dev2]);
    assert!(node2.list().is_empty());
}

/// The same flow on an image with Ceph's default features (exclusive-lock, object-map,
/// fast-diff, deep-flatten): the mapping owns the exclusive lock while mapped and gives
/// it up on unmap; librbd finds the object map valid afterwards.
#[test]
fn kubernetes_volume_with_default_features() {
    let mut k = K8s::new("k8sdef");
    let u = k.user(&unique("kube"));
    let img = format!("{}/vol", k.pool);
    u.ok(&["create", "--size", "64M", &img]);
    let info: serde_json::Value =
        serde_json::from_str(&admin_ok("rbd", &["info", "--format", "json", &img])).unwrap();
    assert_eq!(
        info["features"].as_array().map(|a| a.len()),
        Some(5),
        "{info}"
    );
    let data_dir = k.tmp.0.join("data");

    let dev = u.map(&[&img]);
    sh("mkfs.ext4", &["-q", &dev]);
    let sums = {
        let _m = Mounted::new(&dev, &data_dir, false);
        let s = write_tree(&data_dir);
        sh("sync", &[]);
        s
    };
    // the mapping wrote, so it holds the lock in librbd's form
    let locks: serde_json::Value =
        serde_json::from_str(&admin_ok("rbd", &["lock", "ls", "--format", "json", &img])).unwrap();
    assert_eq!(locks.as_array().map(|a| a.len()), Some(1), "{locks}");
    assert!(
        locks[0]["id"].as_str().unwrap_or("").starts_with("auto "),
        "{locks}"
    );
    u.ok(&["device", "unmap", &dev]);
    let locks = admin_ok("rbd", &["lock", "ls", "--format", "json", &img]);
    assert_eq!(locks.trim(), "[]", "lock released on unmap");
    admin_ok("rbd", &["object-map", "check", &img]);
    let exported = k.tmp.0.join("export.img");
    admin_ok(
        "rbd",
        &["export", "--no-progress", &img, &exported.to_string_lossy()],
    );
    sh("e2fsck", &["-fn", &exported.to_string_lossy()]);

    let dev = u.map(&[&img]);
    {
        let _m = Mounted::new(&dev, &data_dir, true);
        check_tree(&data_dir, &sums);
    }
    u.ok(&["device", "unmap", &dev]);
}

/// A volume cloned from a golden image (the CSI "create volume from snapshot" flow):
/// the clone maps, shows the golden files, takes new ones; the golden image is untouched.
#[test]
fn kubernetes_volume_cloned_from_a_golden_image() {
    let mut k = K8s::new("k8sclone");
    let u = k.user(&unique("kube"));
    let golden = format!("{}/golden", k.pool);
    u.ok(&[
        "create",
        "--size",
        "48M",
        "--image-feature",
        "layering",
        &golden,
    ]);
    let data_dir = k.tmp.0.join("data");
    let dev = u.map(&[&golden]);
    sh("mkfs.ext4", &["-q", &dev]);
    let sums = {
        let _m = Mounted::new(&dev, &data_dir, false);
        let s = write_tree(&data_dir);
        sh("sync", &[]);
        s
    };
    u.ok(&["device", "unmap", &dev]);
    u.ok(&["snap", "create", &format!("{golden}@base")]);
    u.ok(&["snap", "protect", &format!("{golden}@base")]);
    let vol = format!("{}/vol", k.pool);
    u.ok(&["clone", &format!("{golden}@base"), &vol]);

    let dev = u.map(&[&vol]);
    {
        let _m = Mounted::new(&dev, &data_dir, false);
        check_tree(&data_dir, &sums);
        std::fs::write(data_dir.join("pod-file"), pattern(99, 200_000)).unwrap();
        sh("sync", &[]);
    }
    u.ok(&["device", "unmap", &dev]);
    let exported = k.tmp.0.join("clone.img");
    admin_ok(
        "rbd",
        &["export", "--no-progress", &vol, &exported.to_string_lossy()],
    );
    sh("e2fsck", &["-fn", &exported.to_string_lossy()]);

    // the clone keeps its data; the golden image has no trace of the pod's file
    let dev = u.map(&["--read-only", &vol]);
    {
        let _m = Mounted::new(&dev, &data_dir, true);
        check_tree(&data_dir, &sums);
        assert_eq!(
            std::fs::read(data_dir.join("pod-file")).unwrap(),
            pattern(99, 200_000)
        );
    }
    u.ok(&["device", "unmap", &dev]);
    let dev = u.map(&[&format!("{golden}@base")]);
    {
        let _m = Mounted::new(&dev, &data_dir, true);
        check_tree(&data_dir, &sums);
        assert!(!data_dir.join("pod-file").exists());
    }
    u.ok(&["device", "unmap", &dev]);
}

/// Map options that change behaviour do so: `-o notrim` keeps a discarded range
/// allocated (zeros written), the default gives the space back; bad values are EINVAL.
#[test]
fn map_options_notrim_queue_depth_timeout() {
    let mut k = K8s::new("opts");
    let u = k.user(&unique("kube"));
    let img = format!("{}/thick", k.pool);
    u.ok(&[
        "create",
        "--size",
        "16M",
        "--image-feature",
        "layering",
        &img,
    ]);
    let used = || -> u64 {
        let v: serde_json::Value =
            serde_json::from_str(&admin_ok("rbd", &["du", "--format", "json", &img])).unwrap();
        v["images"][0]["used_size"].as_u64().unwrap()
    };
    for (opts, keeps) in [("notrim,queue_depth=32,timeout=60", true), ("rw", false)] {
        let dev = u.map(&["-o", opts, &img]);
        sh(
            "dd",
            &[
                "if=/dev/urandom",
                &format!("of={dev}"),
                "bs=1M",
                "count=8",
                "oflag=direct",
                "status=none",
            ],
        );
        sh("blkdiscard", &["-o", "0", "-l", "8388608", &dev]);
        let zeros = sh("cmp", &["-n", "8388608", &dev, "/dev/zero"]);
        assert!(zeros.is_empty(), "{opts}: discarded range reads zeros");
        u.ok(&["device", "unmap", &dev]);
        let n = used();
        if keeps {
            assert_eq!(n, 8 << 20, "{opts}: the range stays allocated");
        } else {
            assert_eq!(n, 0, "{opts}: the range was deallocated");
        }
    }
    for bad in [
        "queue_depth=x",
        "queue_depth=0",
        "timeout=-1",
        "nosuchoption",
    ] {
        let o = u.rbd_rs(&["device", "map", "-o", bad, &img]);
        assert_eq!(o.status.code(), Some(22), "-o {bad}: {}", show(&o));
    }
    assert!(u.list().is_empty());
}

/// `--device-type nbd` attaches through the nbd kernel module (generic netlink, as rbd-nbd
/// does). Where the module is there (loaded, or loadable with modprobe) the whole path
/// runs: map, write through `/dev/nbdN`, librbd's export shows the bytes, unmap releases
/// the image. Where it is not (this project's build machines have no nbd module) the map
/// must say so with ENOENT and leave no daemon, mapping or watch behind.
#[test]
fn device_type_nbd_attaches_or_says_the_module_is_missing() {
    let mut k = K8s::new("nbdk");
    let u = k.user(&unique("kube"));
    let img = format!("{}/vol", k.pool);
    u.ok(&[
        "create",
        "--size",
        "16M",
        "--image-feature",
        "layering",
        &img,
    ]);
    let module = Path::new("/sys/module/nbd").exists()
        || Command::new("modprobe")
            .arg("nbd")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
    let watchers = || -> usize {
        let v: serde_json::Value =
            serde_json::from_str(&admin_ok("rbd", &["status", "--format", "json", &img]))
                .expect("status json");
        v["watchers"].as_array().map(|a| a.len()).unwrap_or(0)
    };
    let o = u.rbd_rs(&["device", "map", "--device-type", "nbd", &img]);
    if !module {
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("nbd kernel module is not loaded"),
            "message: {err}"
        );
        assert!(u.list().is_empty(), "no mapping recorded");
        assert_eq!(watchers(), 0, "the daemon closed the image");
        // the default path still maps it at once
        let dev = u.map(&[&img]);
        u.ok(&["device", "unmap", &dev]);
        return;
    }
    assert!(o.status.success(), "map --device-type nbd: {}", show(&o));
    let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(dev.starts_with("/dev/nbd"), "map printed {dev:?}");
    assert_eq!(u.list()[0]["device"].as_str(), Some(dev.as_str()));
    let data = pattern(7, 4 << 20);
    let tmp = TmpDir::new("nbdk-data");
    let src = tmp.0.join("data");
    std::fs::write(&src, &data).expect("write data file");
    sh(
        "dd",
        &[
            &format!("if={}", src.display()),
            &format!("of={dev}"),
            "bs=1M",
            "seek=1",
            "oflag=direct",
            "status=none",
        ],
    );
    u.ok(&["device", "unmap", &dev]);
    assert!(u.list().is_empty());
    assert_eq!(watchers(), 0, "unmap released the image");
    let exported = tmp.0.join("export");
    admin_ok("rbd", &["export", &img, &exported.to_string_lossy()]);
    let bytes = std::fs::read(&exported).expect("export");
    assert_eq!(bytes.len(), 16 << 20);
    assert!(bytes[..1 << 20].iter().all(|&b| b == 0));
    assert!(
        bytes[1 << 20..5 << 20] == data[..],
        "librbd reads what the device wrote"
    );
}
