//! Placement oracles: the object corpus, the protocol map's vectors, and the real
//! `crushtool` / `osdmaptool` (of the test cluster's release: 16.2 or 18.2) run side by side with our CRUSH mapper and
//! OSDMap pipeline.
//!
//! These tests fail (never skip) when the corpus or the tools are missing.

use ceph_encoding::Decoder;
use ceph_rados::crush::{crushtool_test_lines, CrushMap};
use ceph_rados::osdmap::{Incremental, OsdMap, PgId, PgPool};
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "common/oracle.rs"]
mod oracle;
use oracle::oracle;

// ---------------------------------------------------------------------------------------
// helpers

fn corpus_root() -> PathBuf {
    let root = match std::env::var_os("CEPH_OBJECT_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ceph-object-corpus"),
    };
    assert!(
        root.join("archive").is_dir(),
        "ceph-object-corpus not found at {} (set CEPH_OBJECT_CORPUS)",
        root.display()
    );
    root
}

/// Every (version, file) of one corpus type, across all archived versions.
fn corpus_objects(type_name: &str) -> Vec<(String, PathBuf)> {
    let archive = corpus_root().join("archive");
    let mut out = Vec::new();
    let mut versions: Vec<_> = std::fs::read_dir(&archive)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    versions.sort();
    for v in versions {
        let dir = v.join("objects").join(type_name);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            out.push((v.file_name().unwrap().to_string_lossy().into_owned(), f));
        }
    }
    out
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "ceph-rados-{tag}-{}-{nanos}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run a tool; panic with its output if it fails.
fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(oracle(cmd))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} (is Ceph 16.2 installed?): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------
// corpus

#[test]
fn corpus_crush_wrapper_decodes() {
    let objs = corpus_objects("CrushWrapper");
    assert!(
        objs.len() >= 50,
        "expected CrushWrapper samples, found {}",
        objs.len()
    );
    for (v, f) in &objs {
        let bytes = std::fs::read(f).unwrap();
        let m = CrushMap::decode(&bytes).unwrap_or_else(|e| panic!("{v} {}: {e}", f.display()));
        // The encoder writes back the same bytes (everything was understood).
        let mut again = Vec::new();
        m.encode(&mut again);
        assert!(again == bytes, "{v} {}: re-encoding differs", f.display());
        // Everything we decode we can run: every rule, a few inputs.
        let w = m.crushtool_weights(&[]);
        for r in 0..m.max_rules() as i32 {
            for x in 0..16 {
                let _ = m.do_rule(r, x, 3, &w, Some(-1));
            }
        }
    }
}

#[test]
fn corpus_pg_pool_decodes() {
    let objs = corpus_objects("pg_pool_t");
    assert!(
        objs.len() >= 50,
        "expected pg_pool_t samples, found {}",
        objs.len()
    );
    for (v, f) in &objs {
        let bytes = std::fs::read(f).unwrap();
        let mut d = Decoder::new(&bytes);
        let pool = PgPool::decode(&mut d).unwrap_or_else(|e| panic!("{v} {}: {e}", f.display()));
        assert!(
            d.is_empty(),
            "{v} {}: {} bytes left",
            f.display(),
            d.remaining()
        );
        let _ = pool.raw_pg_to_pps(PgId::new(1, 7));
    }
}

#[test]
fn corpus_osdmap_decodes_with_crc() {
    let objs = corpus_objects("OSDMap");
    assert!(
        objs.len() >= 50,
        "expected OSDMap samples, found {}",
        objs.len()
    );
    for (v, f) in &objs {
        let bytes = std::fs::read(f).unwrap();
        let m = OsdMap::decode(&bytes).unwrap_or_else(|e| panic!("{v} {}: {e}", f.display()));
        assert!(m.crc.is_some(), "{v} {}: no crc", f.display());
        // the crc check is real: flipping a byte in the middle must fail
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        assert!(
            OsdMap::decode(&bad).is_err(),
            "{v} {}: corrupted map accepted",
            f.display()
        );
        for (&id, pool) in &m.pools {
            for seed in 0..pool.pg_num.min(64) {
                let _ = m.pg_to_up_acting(PgId::new(id as u64, seed));
            }
        }
    }
}

#[test]
fn corpus_incremental_decodes_with_crc() {
    let objs = corpus_objects("OSDMap::Incremental");
    assert!(
        objs.len() >= 50,
        "expected Incremental samples, found {}",
        objs.len()
    );
    for (v, f) in &objs {
        let bytes = std::fs::read(f).unwrap();
        let inc =
            Incremental::decode(&bytes).unwrap_or_else(|e| panic!("{v} {}: {e}", f.display()));
        assert!(inc.inc_crc.is_some(), "{v} {}: no inc_crc", f.display());
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        assert!(
            Incremental::decode(&bad).is_err(),
            "{v} {}: corrupted incremental accepted",
            f.display()
        );
        if !inc.fullmap.is_empty() {
            OsdMap::decode(&inc.fullmap)
                .unwrap_or_else(|e| panic!("{v} {}: embedded map: {e}", f.display()));
        }
        if !inc.crush.is_empty() {
            CrushMap::decode(&inc.crush)
                .unwrap_or_else(|e| panic!("{v} {}: embedded crush: {e}", f.display()));
        }
    }
}

// ---------------------------------------------------------------------------------------
// protocol map vectors (§5.5, §6.9, §9.6)

#[test]
fn protocol_map_hash_and_pps_vectors() {
    use ceph_rados::crush::{ceph_stable_mod, ceph_str_hash_rjenkins, crush_hash32_2};
    let cases = [
        ("foo", 0x7fc1_f406u32, 0x6u32, 3_614_737_657u32),
        ("rbd_directory", 0x30a9_8c1c, 0x1c, 633_844_593),
        ("rbd_id.img1", 0x8bd6_e621, 0x21, 2_434_882_463),
    ];
    for (name, hash, ps, pps) in cases {
        assert_eq!(ceph_str_hash_rjenkins(name.as_bytes()), hash, "{name}");
        // pool 1, pg_num = pgp_num = 48 (mask 63)
        assert_eq!(ceph_stable_mod(hash, 48, 63), ps, "{name}");
        assert_eq!(crush_hash32_2(ps, 1), pps, "{name}");
    }
    // pg_num 192 (mask 255): foo -> 1.6, rbd_directory -> 1.1c
    assert_eq!(ceph_stable_mod(0x7fc1_f406, 192, 255), 0x6);
    assert_eq!(ceph_stable_mod(0x30a9_8c1c, 192, 255), 0x1c);
}

/// §9.3: the osdmaptool map of the protocol map (6 OSDs, 3 hosts, pg_num 48) gives the
/// documented object placements; checked through our whole pipeline.
#[test]
fn protocol_map_pipeline_vectors() {
    let dir = TempDir::new("pm");
    let cm6 = dir.path("cm6");
    let om6 = dir.path("om6");
    run(
        "crushtool",
        &[
            "--outfn",
            p(&cm6),
            "--build",
            "--num_osds",
            "6",
            "host",
            "straw2",
            "2",
            "root",
            "straw2",
            "0",
        ],
    );
    run(
        "osdmaptool",
        &[
            "--createsimple",
            "6",
            "--with-default-pool",
            p(&om6),
            "--pg-bits",
            "3",
            "--pgp-bits",
            "3",
        ],
    );
    run("osdmaptool", &[p(&om6), "--import-crush", p(&cm6)]);
    let mut m = OsdMap::decode(&std::fs::read(&om6).unwrap()).unwrap();
    mark_up_in(&mut m);
    let pool = m.pools.get(&1).unwrap();
    assert_eq!((pool.pg_num, pool.pgp_num), (48, 48));
    for (name, raw, pg, osds) in [
        ("foo", 0x7fc1_f406u32, "1.6", [3, 4, 1]),
        ("rbd_directory", 0x30a9_8c1c, "1.1c", [0, 4, 2]),
        ("rbd_id.img1", 0x8bd6_e621, "1.21", [5, 0, 2]),
    ] {
        let (r, g) = m.object_to_pg(1, name, "", None).unwrap();
        assert_eq!(r, PgId::new(1, raw));
        assert_eq!(g.to_string(), pg);
        let (up, upp, acting, actp) = m.pg_to_up_acting(g);
        assert_eq!(up, osds);
        assert_eq!(acting, osds);
        assert_eq!((upp, actp), (osds[0], osds[0]));
        // and the same through osdmaptool itself
        let out = run(
            "osdmaptool",
            &[
                p(&om6),
                "--mark-up-in",
                "--test-map-object",
                name,
                "--pool",
                "1",
            ],
        );
        let want = format!(
            " object '{name}' -> {pg} -> [{},{},{}]",
            osds[0], osds[1], osds[2]
        );
        assert!(out.contains(&want), "{out}");
    }
    // namespaces and locator keys hash "ns\x1fkey"
    let (r1, _) = m.object_to_pg(1, "foo", "ns", None).unwrap();
    let (r2, _) = m.object_to_pg(1, "other", "ns", Some("foo")).unwrap();
    assert_eq!(r1, r2);
    assert_eq!(
        r1.seed,
        ceph_rados::crush::ceph_str_hash_rjenkins(b"ns\x1ffoo")
    );
}

// ---------------------------------------------------------------------------------------
// crushtool oracle

/// A crushtool `--build` spec: number of OSDs and layers (name alg size).
struct Shape {
    osds: u32,
    layers: &'static [(&'static str, &'static str, u32)],
}

const SHAPES: &[Shape] = &[
    Shape {
        osds: 12,
        layers: &[
            ("host", "straw2", 2),
            ("rack", "straw2", 2),
            ("root", "straw2", 0),
        ],
    },
    Shape {
        osds: 12,
        layers: &[
            ("host", "uniform", 2),
            ("rack", "list", 2),
            ("root", "straw2", 0),
        ],
    },
    Shape {
        osds: 9,
        layers: &[("host", "tree", 3), ("root", "straw", 0)],
    },
    Shape {
        osds: 16,
        layers: &[("host", "list", 4), ("root", "uniform", 0)],
    },
    Shape {
        osds: 10,
        layers: &[("host", "straw", 2), ("root", "tree", 0)],
    },
    Shape {
        osds: 20,
        layers: &[
            ("host", "straw2", 4),
            ("rack", "uniform", 2),
            ("row", "straw", 0),
        ],
    },
];

impl Shape {
    fn build(&self, dir: &TempDir, name: &str) -> PathBuf {
        let out = dir.path(name);
        let n = self.osds.to_string();
        let sizes: Vec<String> = self.layers.iter().map(|l| l.2.to_string()).collect();
        let mut args = vec!["--outfn", p(&out), "--build", "--num_osds", &n];
        for (l, s) in self.layers.iter().zip(&sizes) {
            args.extend([l.0, l.1, s.as_str()]);
        }
        run("crushtool", &args);
        out
    }
    fn root(&self) -> &'static str {
        self.layers.last().unwrap().0
    }
    fn t1(&self) -> &'static str {
        self.layers[0].0
    }
    fn t2(&self) -> &'static str {
        self.layers[self.layers.len().saturating_sub(2)].0
    }
}

fn rule_text(id: u32, kind: &str, steps: &[String]) -> String {
    let mut s = format!("rule r{id} {{\n\tid {id}\n\ttype {kind}\n\tmin_size 1\n\tmax_size 10\n");
    for st in steps {
        s.push_str(&format!("\tstep {st}\n"));
    }
    s.push_str("}\n");
    s
}

/// Rules exercising every step kind and argument form.
fn rules_for(shape: &Shape) -> String {
    let (root, t1, t2) = (shape.root(), shape.t1(), shape.t2());
    let b0 = format!("{t1}0");
    let f = |s: &str| {
        s.replace("ROOT", root)
            .replace("T1", t1)
            .replace("T2", t2)
            .replace("B0", &b0)
    };
    let rules: &[(&str, &[&str])] = &[
        (
            "replicated",
            &["take ROOT", "chooseleaf firstn 0 type T1", "emit"],
        ),
        (
            "erasure",
            &[
                "set_chooseleaf_tries 5",
                "set_choose_tries 100",
                "take ROOT",
                "chooseleaf indep 0 type T1",
                "emit",
            ],
        ),
        (
            "replicated",
            &["take ROOT", "choose firstn 0 type osd", "emit"],
        ),
        ("erasure", &["take ROOT", "choose indep 0 type osd", "emit"]),
        (
            "replicated",
            &[
                "take ROOT",
                "choose firstn 0 type T1",
                "chooseleaf firstn 1 type osd",
                "emit",
            ],
        ),
        (
            "erasure",
            &[
                "take ROOT",
                "choose indep 0 type T1",
                "choose indep 1 type osd",
                "emit",
            ],
        ),
        (
            "replicated",
            &[
                "set_chooseleaf_vary_r 0",
                "set_chooseleaf_stable 0",
                "take ROOT",
                "chooseleaf firstn 0 type T1",
                "emit",
            ],
        ),
        (
            "replicated",
            &[
                "set_choose_local_tries 2",
                "set_choose_local_fallback_tries 5",
                "set_choose_tries 30",
                "take ROOT",
                "choose firstn 0 type T1",
                "choose firstn 1 type osd",
                "emit",
            ],
        ),
        (
            "replicated",
            &[
                "set_chooseleaf_vary_r 2",
                "set_chooseleaf_stable 1",
                "set_chooseleaf_tries 3",
                "take ROOT",
                "chooseleaf firstn -1 type T2",
                "emit",
                "take ROOT",
                "choose firstn 1 type osd",
                "emit",
            ],
        ),
        (
            "erasure",
            &[
                "take B0",
                "choose firstn 0 type osd",
                "emit",
                "take ROOT",
                "chooseleaf indep 2 type T1",
                "emit",
            ],
        ),
        (
            "replicated",
            &[
                "take ROOT",
                "choose firstn 2 type T2",
                "chooseleaf firstn 2 type T1",
                "emit",
            ],
        ),
        (
            "erasure",
            &[
                "set_choose_tries 3",
                "take ROOT",
                "choose indep 2 type T2",
                "chooseleaf indep 2 type T1",
                "emit",
            ],
        ),
    ];
    rules
        .iter()
        .enumerate()
        .map(|(i, (kind, steps))| {
            rule_text(
                i as u32,
                kind,
                &steps.iter().map(|s| f(s)).collect::<Vec<_>>(),
            )
        })
        .collect()
}

/// Tunable profiles: (name, [choose_local_tries, choose_local_fallback_tries,
/// choose_total_tries, chooseleaf_descend_once, chooseleaf_vary_r, chooseleaf_stable]).
const PROFILES: &[(&str, [u32; 6])] = &[
    ("jewel", [0, 0, 50, 1, 1, 1]),
    ("argonaut", [2, 5, 19, 0, 0, 0]),
    ("bobtail", [0, 0, 50, 1, 0, 0]),
    ("firefly", [0, 0, 50, 1, 1, 0]),
    ("odd", [1, 0, 7, 0, 3, 1]),
];

/// Replace the rules and tunables of a decompiled map.
fn compose(text: &str, rules: &str, profile: [u32; 6]) -> String {
    let names = [
        "choose_local_tries",
        "choose_local_fallback_tries",
        "choose_total_tries",
        "chooseleaf_descend_once",
        "chooseleaf_vary_r",
        "chooseleaf_stable",
    ];
    let mut out = String::new();
    for (n, v) in names.iter().zip(profile) {
        out.push_str(&format!("tunable {n} {v}\n"));
    }
    let body = &text[..text.find("# rules").expect("decompiled map has rules")];
    for line in body.lines() {
        if names
            .iter()
            .any(|n| line.starts_with(&format!("tunable {n} ")))
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(rules);
    out
}

fn compile(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let src = dir.path(&format!("{name}.txt"));
    let out = dir.path(name);
    std::fs::write(&src, text).unwrap();
    run(
        "crushtool",
        &["-c", p(&src), "-o", p(&out), "--enable-unsafe-tunables"],
    );
    out
}

/// Compare every rule of `map` for one `num_rep` against crushtool; returns the number of
/// mappings compared.
fn compare_crushtool(
    map: &Path,
    num_rep: usize,
    weights: &[(i32, f32)],
    pool: Option<i64>,
) -> usize {
    let m = CrushMap::decode(&std::fs::read(map).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", map.display()));
    let nr = num_rep.to_string();
    let wstr: Vec<(String, String)> = weights
        .iter()
        .map(|(d, w)| (d.to_string(), w.to_string()))
        .collect();
    let ps = pool.map(|p| p.to_string());
    let mut args = vec![
        "-i",
        p(map),
        "--test",
        "--show-mappings",
        "--num-rep",
        &nr,
        "--min-x",
        "0",
        "--max-x",
        "1023",
    ];
    for (d, w) in &wstr {
        args.extend(["--weight", d, w]);
    }
    if let Some(ps) = &ps {
        args.extend(["--pool-id", ps]);
    }
    let out = run("crushtool", &args);
    // crushtool's own weight conversion: (int)(float * 0x10000), clamped to [0, 0x10000]
    let overrides: Vec<(i32, u32)> = weights
        .iter()
        .map(|&(d, w)| (d, ((w * 65536.0) as i32).clamp(0, 0x10000) as u32))
        .collect();
    let wv = m.crushtool_weights(&overrides);
    let mut ours = Vec::new();
    for r in 0..m.max_rules() as i32 {
        ours.extend(match pool {
            Some(p) => {
                ceph_rados::crush::crushtool_test_lines_for_pool(&m, r, num_rep, 0, 1023, &wv, p)
            }
            None => crushtool_test_lines(&m, r, num_rep, 0, 1023, &wv),
        });
    }
    let theirs: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("CRUSH rule "))
        .collect();
    assert_eq!(
        theirs.len(),
        ours.len(),
        "{}: line count (num_rep {num_rep}, weights {weights:?})",
        map.display()
    );
    for (t, o) in theirs.iter().zip(&ours) {
        assert_eq!(
            t,
            o,
            "{}: num_rep {num_rep}, weights {weights:?}, pool {pool:?}",
            map.display()
        );
    }
    ours.len()
}

#[test]
fn crushtool_oracle_shapes_rules_tunables_weights() {
    let dir = TempDir::new("crush");
    let mut total = 0;
    let mut maps = 0;
    let reweights: &[(i32, f32)] = &[(0, 0.5), (3, 0.0), (5, 0.8), (7, 0.3), (8, 1.0)];
    for (si, shape) in SHAPES.iter().enumerate() {
        let built = shape.build(&dir, &format!("b{si}"));
        let text = run("crushtool", &["-d", p(&built)]);
        let rules = rules_for(shape);
        for (pname, profile) in PROFILES {
            let map = compile(
                &dir,
                &format!("m{si}-{pname}"),
                &compose(&text, &rules, *profile),
            );
            maps += 1;
            for num_rep in [1, 3, 5] {
                total += compare_crushtool(&map, num_rep, &[], None);
            }
            total += compare_crushtool(&map, 4, reweights, None);
        }
    }
    eprintln!("crushtool oracle: {maps} maps, {total} mappings identical");
    assert!(total > 300_000);
}

/// Bucket item weights that differ (crushtool --reweight-item), so that list, tree, straw
/// and straw2 choices are not symmetric.
#[test]
fn crushtool_oracle_uneven_item_weights() {
    let dir = TempDir::new("crushw");
    let mut total = 0;
    for (si, shape) in SHAPES.iter().enumerate() {
        let built = shape.build(&dir, &format!("b{si}"));
        let mut cur = built;
        for (k, (item, w)) in [
            ("osd.0", "0.5"),
            ("osd.3", "2.5"),
            ("osd.4", "0.1"),
            ("osd.7", "3"),
        ]
        .iter()
        .enumerate()
        {
            let next = dir.path(&format!("b{si}-w{k}"));
            let ok = Command::new(oracle("crushtool"))
                .args(["-i", p(&cur), "--reweight-item", item, w, "-o", p(&next)])
                .output()
                .unwrap()
                .status
                .success();
            if ok {
                cur = next;
            }
        }
        let text = run("crushtool", &["-d", p(&cur)]);
        let map = compile(
            &dir,
            &format!("m{si}"),
            &compose(&text, &rules_for(shape), PROFILES[0].1),
        );
        let legacy = compile(
            &dir,
            &format!("l{si}"),
            &compose(&text, &rules_for(shape), PROFILES[1].1),
        );
        for num_rep in [2, 3, 6] {
            total += compare_crushtool(&map, num_rep, &[], None);
            total += compare_crushtool(&legacy, num_rep, &[(1, 0.7)], None);
        }
    }
    eprintln!("crushtool oracle (uneven weights): {total} mappings identical");
}

const CLASS_MAP: &str = "
tunable choose_local_tries 0
tunable choose_local_fallback_tries 0
tunable choose_total_tries 50
tunable chooseleaf_descend_once 1
tunable chooseleaf_vary_r 1
tunable chooseleaf_stable 1
tunable straw_calc_version 1
tunable allowed_bucket_algs 54
device 0 osd.0 class hdd
device 1 osd.1 class ssd
device 2 osd.2 class hdd
device 3 osd.3 class ssd
device 4 osd.4 class hdd
device 5 osd.5 class ssd
device 6 osd.6 class hdd
device 7 osd.7 class nvme
type 0 osd
type 1 host
type 2 root
host host0 {
\tid -1
\talg straw2
\thash 0
\titem osd.0 weight 1.000
\titem osd.1 weight 1.000
\titem osd.6 weight 0.500
}
host host1 {
\tid -2
\talg straw2
\thash 0
\titem osd.2 weight 1.000
\titem osd.3 weight 2.000
}
host host2 {
\tid -3
\talg straw2
\thash 0
\titem osd.4 weight 1.000
\titem osd.5 weight 1.000
\titem osd.7 weight 1.000
}
root root {
\tid -4
\talg straw2
\thash 0
\titem host0 weight 2.500
\titem host1 weight 3.000
\titem host2 weight 3.000
}
rule r0 {
\tid 0
\ttype replicated
\tmin_size 1
\tmax_size 10
\tstep take root
\tstep chooseleaf firstn 0 type host
\tstep emit
}
rule r1 {
\tid 1
\ttype replicated
\tmin_size 1
\tmax_size 10
\tstep take root class ssd
\tstep chooseleaf firstn 0 type host
\tstep emit
}
rule r2 {
\tid 2
\ttype erasure
\tmin_size 1
\tmax_size 10
\tstep take root class hdd
\tstep chooseleaf indep 0 type host
\tstep emit
}
rule r3 {
\tid 3
\ttype replicated
\tmin_size 1
\tmax_size 10
\tstep take host2 class nvme
\tstep choose firstn 0 type osd
\tstep emit
}
";

const CHOOSE_ARGS: &str = "
choose_args 18446744073709551615 {
  {
    bucket_id -4
    weight_set [
      [ 0.300 3.000 3.000 ]
    ]
  }
  {
    bucket_id -1
    weight_set [
      [ 1.000 0.100 0.500 ]
    ]
  }
}
choose_args 1 {
  {
    bucket_id -4
    weight_set [
      [ 2.500 3.000 0.200 ]
      [ 2.500 0.200 3.000 ]
    ]
    ids [ -10 -20 -30 ]
  }
  {
    bucket_id -3
    ids [ 40 50 70 ]
  }
}
choose_args 3 {
  {
    bucket_id -2
    weight_set [
      [ 0.000 2.000 ]
      [ 1.000 0.000 ]
      [ 1.000 1.000 ]
    ]
  }
}
";

const CHOOSE_ARGS_0: &str = "
choose_args 0 {
  {
    bucket_id -4
    weight_set [
      [ 3.000 0.100 0.100 ]
      [ 0.100 0.100 3.000 ]
    ]
  }
}
";

/// Device classes (shadow trees) and choose_args (default set, per-pool sets with several
/// positions and replacement ids), with and without --pool-id.
#[test]
fn crushtool_oracle_classes_and_choose_args() {
    let dir = TempDir::new("crushc");
    let classes = compile(&dir, "classes", CLASS_MAP);
    let with_args = compile(&dir, "args", &format!("{CLASS_MAP}{CHOOSE_ARGS}"));
    let m = CrushMap::decode(&std::fs::read(&with_args).unwrap()).unwrap();
    assert_eq!(m.class_names.len(), 3);
    assert!(m.names.values().any(|n| n == "root~ssd"));
    assert_eq!(m.choose_args.len(), 3);
    assert_eq!(m.choose_args[&1][&3].ids, [-10, -20, -30]);
    assert_eq!(
        m.choose_args[&-1][&3].weight_set,
        [vec![0x4ccc, 0x30000, 0x30000]]
    );
    let mut total = 0;
    // crushtool runs with choose_args index 0 (falling back to -1), whatever --pool-id
    let with_args0 = compile(
        &dir,
        "args0",
        &format!("{CLASS_MAP}{CHOOSE_ARGS}{CHOOSE_ARGS_0}"),
    );
    for map in [&classes, &with_args, &with_args0] {
        for num_rep in [1, 2, 3, 4] {
            total += compare_crushtool(map, num_rep, &[], None);
            for pool in [1, 2, 3] {
                total += compare_crushtool(map, num_rep, &[], Some(pool));
            }
        }
        total += compare_crushtool(map, 3, &[(1, 0.5), (4, 0.0)], Some(1));
    }
    eprintln!("crushtool oracle (classes, choose_args): {total} mappings identical");
}

// ---------------------------------------------------------------------------------------
// osdmaptool oracle: the whole pipeline, every PG of every pool

use ceph_rados::osdmap::{osd_state, CEPH_OSD_IN, CEPH_OSD_OUT};

/// `osdmaptool --mark-up-in` (Pacific): every id up and in (which also makes it exist).
fn mark_up_in(m: &mut OsdMap) {
    for o in 0..m.max_osd {
        let s = m.osd_state_bits(o);
        m.set_state(o, s | osd_state::UP);
        m.set_weight(o, CEPH_OSD_IN);
    }
}

/// `osdmaptool --mark-out <o>`: up, but weight 0.
fn mark_out(m: &mut OsdMap, o: i32) {
    let s = m.osd_state_bits(o);
    m.set_state(o, s | osd_state::UP);
    m.set_weight(o, CEPH_OSD_OUT);
}

fn fmt_vec(v: &[i32]) -> String {
    let items: Vec<String> = v.iter().map(|i| i.to_string()).collect();
    format!("[{}]", items.join(","))
}

/// Our rendering of an `osdmaptool --test-map-pgs-dump-all` line.
fn dump_line(m: &OsdMap, pg: PgId) -> String {
    let (raw, rawp) = m.pg_to_raw_osds(pg);
    let (up, upp, acting, actp) = m.pg_to_up_acting(pg);
    format!(
        "{pg} raw ({}, p{rawp}) up ({}, p{upp}) acting ({}, p{actp})",
        fmt_vec(&raw),
        fmt_vec(&up),
        fmt_vec(&acting)
    )
}

/// Run `osdmaptool MAP ARGS --test-map-pgs-dump-all` and compare every line with our
/// pipeline on the decoded map after `prep` (which mimics what ARGS do in memory).
/// Returns the number of PGs compared.
fn compare_osdmaptool(map: &Path, args: &[&str], prep: impl Fn(&mut OsdMap)) -> usize {
    let mut m = OsdMap::decode(&std::fs::read(map).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", map.display()));
    prep(&mut m);
    let mut a = vec![p(map)];
    a.extend_from_slice(args);
    a.push("--test-map-pgs-dump-all");
    let out = run("osdmaptool", &a);
    let mut n = 0;
    let mut pools_seen = Vec::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("pool ") {
            let mut it = rest.split_whitespace();
            let id: i64 = it.next().unwrap().parse().unwrap();
            let pg_num: u32 = it.nth(1).unwrap().parse().unwrap();
            assert_eq!(
                m.pools[&id].pg_num,
                pg_num,
                "{}: pool {id} pg_num",
                map.display()
            );
            pools_seen.push(id);
            continue;
        }
        if !line.contains(" raw (") {
            continue;
        }
        let pgid = PgId::parse(line.split_whitespace().next().unwrap()).unwrap();
        assert_eq!(dump_line(&m, pgid), line, "{} {args:?}", map.display());
        n += 1;
    }
    let mut ours: Vec<i64> = m.pools.keys().copied().collect();
    ours.sort();
    pools_seen.sort();
    assert_eq!(pools_seen, ours, "{}: pools", map.display());
    assert_eq!(
        n,
        m.pools.values().map(|p| p.pg_num as usize).sum::<usize>(),
        "{}: pg count",
        map.display()
    );
    n
}

/// createsimple + import-crush: an OSDMap around `crush` with pool 1 of `size` replicas.
fn simple_osdmap(dir: &TempDir, name: &str, crush: &Path, osds: u32, size: u32) -> PathBuf {
    let om = dir.path(name);
    let n = osds.to_string();
    let sz = format!("--osd_pool_default_size={size}");
    run(
        "osdmaptool",
        &[
            "--createsimple",
            &n,
            "--with-default-pool",
            p(&om),
            "--pg-bits",
            "4",
            "--pgp-bits",
            "3",
            &sz,
        ],
    );
    run("osdmaptool", &[p(&om), "--import-crush", p(crush)]);
    om
}

#[test]
fn osdmaptool_oracle_pipeline() {
    let dir = TempDir::new("osdmap");
    let mut total = 0;
    let mut maps = 0;
    // (crush map, OSDs)
    let mut crushes: Vec<(PathBuf, u32)> = Vec::new();
    for (si, shape) in SHAPES.iter().enumerate() {
        let built = shape.build(&dir, &format!("b{si}"));
        crushes.push((built, shape.osds));
    }
    crushes.push((
        compile(&dir, "classes-args", &format!("{CLASS_MAP}{CHOOSE_ARGS}")),
        8,
    ));
    for (ci, (crush, osds)) in crushes.iter().enumerate() {
        for size in [2, 3, 5] {
            let om = simple_osdmap(&dir, &format!("om{ci}-{size}"), crush, *osds, size);
            maps += 1;
            // as created: no OSD exists yet, every PG maps to nothing
            total += compare_osdmaptool(&om, &[], |_| {});
            total += compare_osdmaptool(&om, &["--mark-up-in"], mark_up_in);
            total += compare_osdmaptool(&om, &["--mark-up-in", "--mark-out", "1"], |m| {
                mark_up_in(m);
                mark_out(m, 1);
            });
            // (osdmaptool's --mark-in is broken in 16.2.15: it marks osd -1 up and aborts)
            total += compare_osdmaptool(&om, &["--mark-up", "3"], |m| {
                let s = m.osd_state_bits(3);
                m.set_state(3, s | osd_state::UP)
            });
            // upmap balancing writes pg_upmap_items (and the up/in/out state) into the map
            let up = dir.path(&format!("om{ci}-{size}-upmap"));
            std::fs::copy(&om, &up).unwrap();
            let cmds = dir.path("upmap-cmds");
            run(
                "osdmaptool",
                &[
                    p(&up),
                    "--mark-up-in",
                    "--mark-out",
                    "0",
                    "--upmap",
                    p(&cmds),
                    "--upmap-deviation",
                    "1",
                    "--upmap-max",
                    "100",
                    "--save",
                ],
            );
            let m = OsdMap::decode(&std::fs::read(&up).unwrap()).unwrap();
            if ci == 0 && size == 3 {
                assert!(
                    !m.pg_upmap_items.is_empty(),
                    "upmap balancing produced no items"
                );
            }
            total += compare_osdmaptool(&up, &[], |_| {});
            total += compare_osdmaptool(&up, &["--mark-out", "2"], |m| mark_out(m, 2));
        }
    }
    eprintln!("osdmaptool oracle: {maps} maps, {total} PG mappings identical");
}

/// Every corpus OSDMap that osdmaptool 16.2.15 can read (Octopus..Squid), every pool
/// (replicated and erasure-coded), every PG.
#[test]
fn osdmaptool_oracle_corpus_maps() {
    let mut total = 0;
    let mut maps = 0;
    for (v, f) in corpus_objects("OSDMap") {
        let readable = Command::new(oracle("osdmaptool"))
            .arg(&f)
            .arg("--print")
            .output()
            .unwrap()
            .status
            .success();
        if !readable {
            // Tentacle encodings are newer than the 16.2 tool understands.
            assert!(
                v.starts_with("20."),
                "osdmaptool cannot read {v} {}",
                f.display()
            );
            continue;
        }
        maps += 1;
        total += compare_osdmaptool(&f, &[], |_| {});
        total += compare_osdmaptool(&f, &["--mark-up-in", "--mark-out", "1"], |m| {
            mark_up_in(m);
            mark_out(m, 1);
        });
    }
    eprintln!("osdmaptool corpus oracle: {maps} maps, {total} PG mappings identical");
    assert!(maps >= 40);
}

/// Pre-Luminous maps whose rule ids and rulesets differ: the pool's crush_rule is a
/// ruleset, resolved by `find_rule`'s mask search (type and size range included).
#[test]
fn osdmaptool_oracle_legacy_rulesets() {
    let dir = TempDir::new("legacy");
    let shape = &SHAPES[0];
    let built = shape.build(&dir, "b");
    let text = run("crushtool", &["-d", p(&built)]);
    let rules = [
        rule_text(
            0,
            "replicated",
            &[
                "take root".into(),
                "chooseleaf firstn 0 type host".into(),
                "emit".into(),
            ],
        ),
        rule_text(
            1,
            "replicated",
            &[
                "take root".into(),
                "choose firstn 0 type osd".into(),
                "emit".into(),
            ],
        ),
        rule_text(
            2,
            "replicated",
            &[
                "take root".into(),
                "chooseleaf firstn 0 type rack".into(),
                "emit".into(),
            ],
        ),
    ]
    .concat();
    let base = compile(&dir, "base", &compose(&text, &rules, PROFILES[0].1));
    let m0 = CrushMap::decode(&std::fs::read(&base).unwrap()).unwrap();
    let mut total = 0;
    let mut refused = 0;
    // Quincy and later drop rulesets: a map whose ruleset differs from the rule id no
    // longer decodes (ceph v18: src/crush/CrushWrapper.cc decode, "crush ruleset_id !=
    // rule_id; encoding is too old"), so only the uniform cases are compared there.
    // Reef 18.2.7 still applies the rule's size range (the uniform case with
    // min_size 4 and a pool of 3 maps nowhere in osdmaptool 18.2.7 as in 16.2.15).
    let quincy_plus = oracle::release() != "pacific";
    // (rulesets of rules 0..3, (min,max) sizes, pool size)
    type Case = ([u8; 3], [(u8, u8); 3], u32);
    let cases: &[Case] = &[
        ([1, 0, 2], [(1, 10), (1, 10), (1, 10)], 3),
        ([0, 0, 0], [(1, 2), (3, 10), (1, 10)], 3),
        ([0, 0, 0], [(1, 2), (3, 10), (1, 10)], 2),
        ([5, 5, 0], [(1, 10), (1, 10), (4, 10)], 3),
        ([5, 5, 0], [(1, 10), (1, 10), (4, 10)], 4),
        // uniform rule ids: the rule is taken by id, but its mask must still match
        ([0, 1, 2], [(4, 5), (1, 10), (1, 10)], 3),
        ([0, 1, 2], [(1, 10), (1, 10), (1, 10)], 3),
    ];
    for (ci, (rulesets, sizes, pool_size)) in cases.iter().enumerate() {
        let mut m = m0.clone();
        for (i, r) in m.rules.iter_mut().enumerate() {
            let r = r.as_mut().unwrap();
            r.ruleset = rulesets[i];
            (r.min_size, r.max_size) = sizes[i];
        }
        assert_eq!(m.has_uniform_rules(), rulesets == &[0, 1, 2]);
        let mut bytes = Vec::new();
        m.encode(&mut bytes);
        let crush = dir.path(&format!("legacy{ci}"));
        std::fs::write(&crush, bytes).unwrap();
        if quincy_plus && !m.has_uniform_rules() {
            let om = dir.path(&format!("refused{ci}"));
            let n = shape.osds.to_string();
            run("osdmaptool", &["--createsimple", &n, p(&om)]);
            let out = Command::new(oracle("osdmaptool"))
                .args([p(&om), "--import-crush", p(&crush)])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && err.contains("ruleset_id != rule_id"),
                "osdmaptool {} should refuse legacy rulesets {rulesets:?}: {err}",
                oracle::release()
            );
            refused += 1;
            continue;
        }
        let om = simple_osdmap(&dir, &format!("om{ci}"), &crush, shape.osds, *pool_size);
        total += compare_osdmaptool(&om, &["--mark-up-in"], mark_up_in);
    }
    eprintln!(
        "osdmaptool legacy ruleset oracle: {total} PG mappings identical, {refused} maps refused"
    );
    assert!(total > 0);
    assert_eq!(refused, if quincy_plus { 5 } else { 0 });
}

// ---------------------------------------------------------------------------------------
// incrementals against the corpus, and hostile bytes

/// Apply every corpus incremental whose predecessor map is in the corpus; where the
/// resulting map is in the corpus too (matched by full_crc), the results must agree.
#[test]
fn corpus_incrementals_apply_to_their_base_maps() {
    let maps: Vec<OsdMap> = corpus_objects("OSDMap")
        .iter()
        .map(|(_, f)| OsdMap::decode(&std::fs::read(f).unwrap()).unwrap())
        .collect();
    let mut applied = 0;
    for (v, f) in corpus_objects("OSDMap::Incremental") {
        let inc = Incremental::decode(&std::fs::read(&f).unwrap()).unwrap();
        for base in maps
            .iter()
            .filter(|m| m.fsid == inc.fsid && m.epoch + 1 == inc.epoch)
        {
            let mut m = base.clone();
            m.apply_incremental(&inc)
                .unwrap_or_else(|e| panic!("{v} {}: {e}", f.display()));
            assert_eq!(m.epoch, inc.epoch);
            assert_eq!(m.crc, inc.full_crc);
            for (osd, &mask) in &inc.new_state {
                let mut before = base.osd_state_bits(*osd);
                // new_weight is applied first: a non-zero weight marks the OSD as existing
                if let Some(&w) = inc.new_weight.get(osd) {
                    if w != 0 {
                        before =
                            (before | osd_state::EXISTS) & !(osd_state::AUTOOUT | osd_state::NEW);
                    }
                }
                let s = if mask == 0 { osd_state::UP } else { mask };
                if before & osd_state::EXISTS != 0 && s & osd_state::EXISTS != 0 {
                    assert_eq!(m.osd_state_bits(*osd), 0);
                } else if !inc.new_up_client.contains_key(osd) {
                    assert_eq!(m.osd_state_bits(*osd), before ^ s);
                }
            }
            if let Some(target) = maps
                .iter()
                .find(|t| t.crc.is_some() && t.crc == inc.full_crc)
            {
                assert_eq!(m.pools, target.pools);
                assert_eq!(m.pool_names, target.pool_names);
                assert_eq!(m.osd_state, target.osd_state);
                assert_eq!(m.osd_weight, target.osd_weight);
                assert_eq!(m.osd_addrs, target.osd_addrs);
                assert_eq!(m.pg_temp, target.pg_temp);
                assert_eq!(m.pg_upmap_items, target.pg_upmap_items);
                assert_eq!(*m.crush, *target.crush);
            }
            applied += 1;
        }
    }
    eprintln!("applied {applied} corpus incrementals to their base maps");
    assert!(applied >= 3);
}

fn lcg(seed: &mut u32) -> u32 {
    *seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
    *seed >> 8
}

/// Random byte mutations of every corpus map and incremental, with the crcs recomputed so
/// that the decoders get past them: decoding, placement and applying must never panic.
#[test]
fn hostile_maps_and_incrementals_never_panic() {
    use ceph_encoding::ceph_crc32c;
    let mut seed = 0x5eed_u32;
    let maps: Vec<Vec<u8>> = corpus_objects("OSDMap")
        .iter()
        .map(|(_, f)| std::fs::read(f).unwrap())
        .collect();
    let incs: Vec<Vec<u8>> = corpus_objects("OSDMap::Incremental")
        .iter()
        .map(|(_, f)| std::fs::read(f).unwrap())
        .collect();
    let mut decoded = 0;
    for round in 0..600 {
        let src = &maps[round % maps.len()];
        let mut b = src.clone();
        for _ in 0..1 + lcg(&mut seed) % 4 {
            let i = lcg(&mut seed) as usize % b.len();
            b[i] = lcg(&mut seed) as u8;
        }
        // fix the crc (the last 4 bytes of a map ceph wrote)
        let n = b.len();
        let crc = ceph_crc32c(u32::MAX, &b[..n - 4]);
        b[n - 4..].copy_from_slice(&crc.to_le_bytes());
        if let Ok(mut m) = OsdMap::decode(&b) {
            decoded += 1;
            let ids: Vec<i64> = m.pools.keys().copied().collect();
            for id in ids {
                for s in 0..8 {
                    let _ = m.pg_to_up_acting(PgId::new(id as u64, s));
                    let _ = m.object_to_pg(id, "obj", "ns", None);
                }
            }
            // and an incremental (also mutated, crc fixed) on top
            let mut ib = incs[round % incs.len()].clone();
            let i = lcg(&mut seed) as usize % ib.len();
            ib[i] = lcg(&mut seed) as u8;
            let n = ib.len();
            let c = ceph_crc32c(ceph_crc32c(u32::MAX, &ib[..n - 8]), &ib[n - 4..]);
            ib[n - 8..n - 4].copy_from_slice(&c.to_le_bytes());
            if let Ok(mut inc) = Incremental::decode(&ib) {
                inc.fsid = m.fsid;
                inc.epoch = m.epoch + 1;
                if m.apply_incremental(&inc).is_ok() {
                    for s in 0..4 {
                        let _ = m.pg_to_up_acting(PgId::new(1, s));
                    }
                }
            }
        }
    }
    eprintln!("hostile: {decoded} mutated maps decoded and mapped");
}
