//! `rbd-rs lock ls|add|rm` against the real `rbd`: the same listings (plain and JSON),
//! the same refusals and exit statuses, locks taken by one tool seen and broken by
//! the other (the holder blocklisted, as librbd's `rbd_blocklist_on_break_lock` does).

mod common;
use common::*;

fn locker(img: &str, id: &str) -> String {
    let o = ok(RBD, &["lock", "ls", "--format", "json", img]);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == id)
        .unwrap_or_else(|| panic!("no lock {id}: {o}"))["locker"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn locks_match_rbd() {
    let p = Pool::new("lock");
    let img = p.img("l");
    ok(
        RBD,
        &[
            "create",
            "--size",
            "1M",
            "--image-feature",
            "layering",
            &img,
        ],
    );
    assert_eq!(same(&["lock", "ls", &img]), "");
    assert_eq!(same(&["lock", "ls", "--format", "json", &img]), "[]\n");
    // exclusive, taken by rbd-rs, refused to rbd (and to another rbd-rs)
    ok(RBD_RS, &["lock", "add", &img, "id1"]);
    same_error(&["lock", "add", &img, "id1"], 16);
    same_error(&["lock", "add", &img, "id2"], 16);
    same_error(&["lock", "add", "--shared", "t", &img, "id3"], 16);
    let ls = same(&["lock", "ls", &img]);
    assert!(
        ls.starts_with("There is 1 exclusive lock on this image.\nLocker"),
        "{ls}"
    );
    same(&["lock", "ls", "--format", "json", "--pretty-format", &img]);
    // wrong locker / bad locker
    same_error(&["lock", "rm", &img, "id1", "client.999999"], 2);
    same_error(&["lock", "rm", &img, "id1", "bogus"], 22);
    same_error(&["lock", "rm", &img, "id1"], 22);
    same_error(&["lock", "add", &img], 22);
    // broken by rbd; the holder's address is blocklisted
    let who = locker(&img, "id1");
    let addr = {
        let o = ok(RBD_RS, &["lock", "ls", "--format", "json", &img]);
        let v: serde_json::Value = serde_json::from_str(&o).unwrap();
        v[0]["address"].as_str().unwrap().to_string()
    };
    ok(RBD, &["lock", "rm", &img, "id1", &who]);
    assert!(ok("ceph", &["osd", "blocklist", "ls"]).contains(&addr));
    // shared, one tag from both tools; another tag or exclusive refused
    ok(RBD, &["lock", "add", "--shared", "t", &img, "a"]);
    ok(RBD_RS, &["lock", "add", "--shared", "t", &img, "b"]);
    same_error(&["lock", "add", "--shared", "u", &img, "c"], 16);
    same_error(&["lock", "add", &img, "d"], 16);
    let ls = same(&["lock", "ls", &img]);
    assert!(
        ls.starts_with("There are 2 shared locks on this image.\nLock tag: t\n"),
        "{ls}"
    );
    same(&["lock", "ls", "--format", "json", &img]);
    // broken by rbd-rs (without blocklisting when told so)
    let b = locker(&img, "b");
    ok(
        RBD_RS,
        &[
            "lock",
            "rm",
            "--rbd_blocklist_on_break_lock=false",
            &img,
            "b",
            &b,
        ],
    );
    let a = locker(&img, "a");
    ok(RBD_RS, &["lock", "rm", &img, "a", &a]);
    assert_eq!(same(&["lock", "ls", &img]), "");
    same_error(&["lock", "ls", &p.img("nope")], 2);
}
