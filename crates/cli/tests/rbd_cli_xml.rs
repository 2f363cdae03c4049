//! `rbd-rs --format xml` against `rbd --format xml` (issue 12): for every command that
//! prints structured output, both tools run on the same images and must print the same
//! bytes, compact and with `--pretty-format`, and exit the same way. Names and values
//! carry `&`, `<`, `>` and quotes so the XML escaping is compared too. Commands rbd has
//! no `--format` for must be refused the same way (exit 1) before they act.

mod common;

use common::*;

/// Both tools, compact and pretty XML: same stdout, same exit status. Returns the
/// compact output so a test can also check it says what the cluster holds.
#[track_caller]
fn same_xml(args: &[&str]) -> String {
    let mut a = vec!["--format", "xml"];
    a.extend_from_slice(args);
    let compact = same(&a);
    let mut p = vec!["--format", "xml", "--pretty-format"];
    p.extend_from_slice(args);
    let pretty = same(&p);
    assert!(
        pretty.ends_with(">\n\n") || pretty.is_empty(),
        "pretty XML ends with a blank line: {pretty:?}"
    );
    compact
}

/// Options a newer `rbd` lists that Pacific's (our reference) does not; see
/// rbd_cli_config.rs, which compares the other formats the same way.
const NEWER_OPTIONS: &[&str] = &["rbd_qos_exclude_ops"];

/// `rbd`'s XML with the `<option>` elements of [`NEWER_OPTIONS`] cut out (compact or
/// pretty: the element, its children and the line break after it).
fn without_newer_options(mut xml: String) -> String {
    for name in NEWER_OPTIONS {
        let needle = format!("<name>{name}</name>");
        while let Some(at) = xml.find(&needle) {
            let start = xml[..at].rfind("<option>").expect("option start");
            // the pretty form indents the element: cut from the start of its line
            let start = xml[..start]
                .rfind('\n')
                .filter(|&nl| xml[nl + 1..start].trim().is_empty())
                .map_or(start, |nl| nl + 1);
            let end = at + xml[at..].find("</option>").expect("option end") + "</option>".len();
            let end = if xml[end..].starts_with('\n') {
                end + 1
            } else {
                end
            };
            xml.replace_range(start..end, "");
        }
    }
    xml
}

/// [`same_xml`] for the `config ... ls` listings, modulo [`NEWER_OPTIONS`].
#[track_caller]
fn same_config_xml(args: &[&str]) {
    for pretty in [false, true] {
        let mut a = vec!["--format", "xml"];
        if pretty {
            a.push("--pretty-format");
        }
        a.extend_from_slice(args);
        let (theirs, ours) = (run(RBD, &a), run(RBD_RS, &a));
        assert_eq!(
            code(&theirs),
            code(&ours),
            "exit status of `rbd {}`",
            a.join(" ")
        );
        assert_eq!(
            without_newer_options(text(&theirs)),
            text(&ours),
            "`rbd {}`",
            a.join(" ")
        );
    }
}

#[test]
fn xml_output_matches_rbd() {
    let p = Pool::new("xml");
    let pool = p.name.as_str();
    let odd = p.img("a&<b>\"c'");
    let img = p.img("img2");
    ok(RBD_RS, &["create", "--size", "20M", &odd]);
    ok(RBD_RS, &["create", "--size", "20M", &img]);
    // data in the first object so `diff` has extents
    let d = TmpDir::new("xml");
    std::fs::write(d.path("data"), noise(7, 6 << 20)).unwrap();
    ok(
        RBD_RS,
        &[
            "import",
            "--no-progress",
            d.path("data").to_str().unwrap(),
            &p.img("data"),
        ],
    );
    let snap = format!("{img}@s<1>&'");
    ok(RBD_RS, &["snap", "create", &snap]);
    ok(RBD_RS, &["snap", "protect", &snap]);
    ok(
        RBD_RS,
        &["image-meta", "set", &img, "k&<", "v\"<>&'\u{1}\tx"],
    );
    ok(RBD_RS, &["image-meta", "set", &img, "plain", "value"]);
    ok(RBD_RS, &["lock", "add", &img, "l<1>&"]);
    ok(
        RBD_RS,
        &[
            "clone",
            "--rbd-default-clone-format",
            "2",
            &snap,
            &p.img("child"),
        ],
    );
    ok(RBD_RS, &["namespace", "create", &format!("{pool}/ns<1>")]);
    let g = format!("{pool}/g&1");
    ok(RBD_RS, &["group", "create", &g]);
    ok(RBD_RS, &["group", "image", "add", &g, &p.img("data")]);
    ok(RBD_RS, &["group", "snap", "create", &format!("{g}@gs<1>")]);
    ok(
        RBD_RS,
        &[
            "config",
            "image",
            "set",
            &img,
            "rbd_cache_policy",
            "writethrough",
        ],
    );
    ok(
        RBD_RS,
        &["config", "pool", "set", pool, "rbd_cache", "false"],
    );

    let ls = same_xml(&["ls", pool]);
    assert_eq!(
        ls,
        "<images><name>a&amp;&lt;b&gt;&quot;c&apos;</name><name>child</name><name>data</name><name>img2</name></images>\n"
    );
    same_xml(&["ls", "-l", pool]);
    same_xml(&["info", &img]);
    // clone v2: an op_features array with an item
    let child = same_xml(&["info", &p.img("child")]);
    assert!(
        child.contains("<op_features><op_feature>clone-child</op_feature></op_features>"),
        "{child}"
    );
    same_xml(&["info", &snap]);
    let snaps = same_xml(&["snap", "ls", &img]);
    assert!(
        snaps.contains("<name>s&lt;1&gt;&amp;&apos;</name>"),
        "{snaps}"
    );
    same_xml(&["snap", "ls", "--all", &img]);
    let meta = same_xml(&["image-meta", "list", &img]);
    assert!(
        meta.contains("<k&<>v&quot;&lt;&gt;&amp;&apos;&#x01;\tx</k&<>"),
        "{meta}"
    );
    // no metadata: neither tool prints anything
    assert_eq!(same_xml(&["image-meta", "list", &odd]), "");
    same_xml(&["du", &img]);
    same_xml(&["du", "-p", pool]);
    same_xml(&["status", &img]);
    let locks = same_xml(&["lock", "ls", &img]);
    assert!(locks.contains("<id>l&lt;1&gt;&amp;</id>"), "{locks}");
    same_xml(&["lock", "ls", &odd]);
    same_xml(&["children", &snap]);
    same_xml(&["diff", &p.img("data")]);
    same_xml(&["diff", &img]);
    same_xml(&["namespace", "ls", pool]);
    same_xml(&["group", "ls", pool]);
    same_xml(&["group", "image", "ls", &g]);
    same_xml(&["group", "snap", "ls", &g]);
    same_config_xml(&["config", "image", "ls", &img]);
    same_config_xml(&["config", "pool", "ls", pool]);
    same_config_xml(&["config", "global", "ls", "global"]);
    same_xml(&["pool", "stats", pool]);
    same_xml(&["device", "list"]);
    ok(RBD_RS, &["trash", "mv", &odd]);
    let trash = same_xml(&["trash", "ls", pool]);
    assert!(
        trash.contains("<name>a&amp;&lt;b&gt;&quot;c&apos;</name>"),
        "{trash}"
    );
    same_xml(&["trash", "ls", "--all", pool]);
    same_xml(&["pool", "stats", pool]);

    // commands without --format: refused (exit 1) in both formats, and nothing done
    for f in [
        &["--format", "xml"][..],
        &["--format", "json"],
        &["--pretty-format"],
    ] {
        let snap_x = format!("{img}@x");
        for cmd in [
            &["image-meta", "get", &img, "plain"][..],
            &["config", "image", "get", &img, "rbd_cache_policy"],
            &["snap", "create", &snap_x],
            &["feature", "disable", &img, "fast-diff"],
        ] {
            let mut a = f.to_vec();
            a.extend_from_slice(cmd);
            let err = run(RBD_RS, &a);
            same_error(&a, 1);
            assert!(
                String::from_utf8_lossy(&err.stderr).contains("rbd: unrecognised option '--"),
                "{}",
                String::from_utf8_lossy(&err.stderr)
            );
        }
    }
    let snaps = ok(RBD, &["snap", "ls", "--format", "json", &img]);
    assert!(
        !snaps.contains("\"x\""),
        "a refused snap create acted: {snaps}"
    );

    ok(RBD_RS, &["lock", "rm", &img, "l<1>&", &locker(&img)]);
}

/// The locker (`client.N`) of the image's one lock.
fn locker(img: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&ok(RBD, &["lock", "ls", "--format", "json", img])).unwrap();
    v[0]["locker"].as_str().unwrap().to_string()
}

#[test]
fn newer_options_are_cut_from_compact_and_pretty_xml() {
    let opt = |n: &str| format!("<option><name>{n}</name><value>0</value></option>");
    let compact = format!(
        "<config>{}{}</config>\n",
        opt("a"),
        opt("rbd_qos_exclude_ops")
    );
    assert_eq!(
        without_newer_options(compact),
        format!("<config>{}</config>\n", opt("a"))
    );
    let p = |n: &str| format!(" <option>\n  <name>{n}</name>\n  <value>0</value>\n </option>\n");
    let pretty = format!(
        "<config>\n{}{}{}</config>\n\n",
        p("a"),
        p("rbd_qos_exclude_ops"),
        p("b")
    );
    assert_eq!(
        without_newer_options(pretty),
        format!("<config>\n{}{}</config>\n\n", p("a"), p("b"))
    );
}
