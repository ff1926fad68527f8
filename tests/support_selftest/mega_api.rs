//! Selftest: the Mega API of the test server (see tests/support_selftest.rs). Latest commit, trees,
//! content hashes and blobs as the real server gives them, counters, faults, restarts.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use git2::ObjectType;

use super::{blob_url, get, hash, head, url};
use crate::support::fixture;
use crate::support::http;
use crate::support::{Counts, Fault, MegaServer};

#[test]
fn server_latest_commit_and_file_tree() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    assert!(server.url().starts_with("http://127.0.0.1:"));

    let r = get(&url(&server, "/api/v1/latest-commit", &[("path", "/")]));
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["oid"], fx.commit.as_str());
    assert_eq!(j["date"], fixture::BASE_TIME);
    assert_eq!(j["short_message"], fixture::STANDARD_MESSAGE);

    // Raw tree with the right oid: bytes hash to that oid.
    let a_oid = fixture::entry_oid(&fx, &fx.commit, "a").expect("tree a");
    let r = get(&url(
        &server,
        "/api/v1/file/tree",
        &[("path", "/a"), ("oid", &a_oid)],
    ));
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("application/octet-stream"));
    assert!(!r.body.is_empty());
    assert_eq!(hash(ObjectType::Tree, &r.body), a_oid);
    assert_eq!(r.body, fixture::object_bytes(&fx, &a_oid));

    // Wrong oid: 200 with an empty body.
    let wrong = "1111111111111111111111111111111111111111";
    let r = get(&url(
        &server,
        "/api/v1/file/tree",
        &[("path", "/a"), ("oid", wrong)],
    ));
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty(), "expected empty body for a stale oid");

    // No oid: the current tree; root spelled "/" and "".
    let root_oid = fixture::entry_oid(&fx, &fx.commit, "/").expect("root");
    for p in ["/", ""] {
        let r = get(&url(&server, "/api/v1/file/tree", &[("path", p)]));
        assert_eq!(r.status, 200);
        assert_eq!(hash(ObjectType::Tree, &r.body), root_oid, "root via {p:?}");
    }
    let r = get(&format!("{}/api/v1/file/tree", server.url()));
    assert_eq!(hash(ObjectType::Tree, &r.body), root_oid, "root, no path");

    // Non-ASCII and spaced paths, nested, trailing slash.
    for p in [fixture::UNICODE_DIR, fixture::SPACE_DIR, "a/b/d/e"] {
        let oid = fixture::entry_oid(&fx, &fx.commit, p).expect("dir exists");
        let r = get(&url(
            &server,
            "/api/v1/file/tree",
            &[("path", &format!("/{p}/")), ("oid", &oid)],
        ));
        assert_eq!(r.status, 200);
        assert_eq!(hash(ObjectType::Tree, &r.body), oid, "tree {p}");
    }

    // Not found / not a tree.
    for p in ["/nope", "/README.md", "/vendor/sub", "/a/../a"] {
        let r = get(&url(&server, "/api/v1/file/tree", &[("path", p)]));
        assert_eq!(r.status, 404, "file/tree {p}");
    }

    let c = server.counts();
    assert_eq!(c.latest_commit, 1);
    assert_eq!(c.tree.len(), 12);
    assert_eq!(c.tree[0], "/a");
    assert_eq!(c.tree[1], "/a");
    assert_eq!(c.tree[5], "/ünïcødé/");
    assert_eq!(c.tree[11], "/a/../a");
    assert!(c.blob_get.is_empty() && c.blob_head.is_empty() && c.content_hash.is_empty());
}

#[test]
fn server_content_hash() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);

    let r = get(&url(
        &server,
        "/api/v1/tree/content-hash",
        &[("path", "/"), ("refs", &fx.commit)],
    ));
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["req_result"], true);
    assert_eq!(j["err_message"], "");
    let data = j["data"].as_array().expect("data array");
    let listing: BTreeMap<String, (String, String)> = data
        .iter()
        .map(|e| {
            (
                e["name"].as_str().expect("name").to_string(),
                (
                    e["content_type"]
                        .as_str()
                        .expect("content_type")
                        .to_string(),
                    e["oid"].as_str().expect("oid").to_string(),
                ),
            )
        })
        .collect();
    let expect_root = [
        ("README.md", "file"),
        ("a", "directory"),
        ("big", "directory"),
        ("bin", "directory"),
        ("dir with space", "directory"),
        ("empty.txt", "file"),
        ("link-abs", "file"),
        ("link-rel", "file"),
        ("src", "directory"),
        ("vendor", "directory"),
        ("ünïcødé", "directory"),
    ];
    assert_eq!(listing.len(), expect_root.len(), "{listing:?}");
    for (name, ct) in expect_root {
        let (got_ct, oid) = listing
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from {listing:?}"));
        assert_eq!(got_ct, ct, "content_type of {name}");
        assert_eq!(
            Some(oid.clone()),
            fixture::entry_oid(&fx, &fx.commit, name),
            "oid of {name}"
        );
    }

    let r = get(&url(
        &server,
        "/api/v1/tree/content-hash",
        &[("path", "/vendor"), ("refs", &fx.commit)],
    ));
    let j = r.json();
    assert_eq!(j["data"][0]["name"], "sub");
    assert_eq!(j["data"][0]["content_type"], "directory");
    assert_eq!(j["data"][0]["oid"], fixture::SUBMODULE_COMMIT);

    // Pinned to the commit asked for, even after main moves on.
    let old_c = fixture::entry_oid(&fx, &fx.commit, fixture::DEEP_FILE).expect("c.txt");
    let new_commit = fixture::add_commit(&fx, fixture::DEEP_FILE, b"changed\n");
    let r = get(&url(
        &server,
        "/api/v1/tree/content-hash",
        &[("path", "/a/b"), ("refs", &fx.commit)],
    ));
    let j = r.json();
    let c = j["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|e| e["name"] == "c.txt")
        .expect("c.txt listed")
        .clone();
    assert_eq!(c["oid"], old_c.as_str());
    let r = get(&url(
        &server,
        "/api/v1/tree/content-hash",
        &[("path", "/a/b"), ("refs", &new_commit)],
    ));
    let j = r.json();
    assert!(j["data"]
        .as_array()
        .expect("data")
        .iter()
        .any(|e| e["name"] == "c.txt" && e["oid"] != old_c.as_str()));

    // Unknown path / commit: 404 with req_result false.
    for (p, refs) in [
        ("/nope", fx.commit.as_str()),
        ("/README.md", fx.commit.as_str()),
        ("/", "2222222222222222222222222222222222222222"),
    ] {
        let r = get(&url(
            &server,
            "/api/v1/tree/content-hash",
            &[("path", p), ("refs", refs)],
        ));
        assert_eq!(r.status, 404, "content-hash {p} @ {refs}");
        let j = r.json();
        assert_eq!(j["req_result"], false);
        assert!(j["data"].is_null());
        assert!(!j["err_message"].as_str().expect("err_message").is_empty());
    }

    assert_eq!(
        server.counts().content_hash,
        vec!["/", "/vendor", "/a/b", "/a/b", "/nope", "/README.md", "/"]
    );
}

#[test]
fn server_blobs_get_and_head() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);

    let big = fixture::entry_oid(&fx, &fx.commit, fixture::BIG_FILE).expect("big blob");
    let r = get(&blob_url(&server, &big));
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("application/octet-stream"));
    assert_eq!(r.content_length, Some(fixture::BIG_FILE_SIZE as u64));
    assert_eq!(r.body.len(), fixture::BIG_FILE_SIZE);
    assert_eq!(hash(ObjectType::Blob, &r.body), big);

    let r = head(&blob_url(&server, &big));
    assert_eq!(r.status, 200);
    assert_eq!(r.content_length, Some(fixture::BIG_FILE_SIZE as u64));
    assert!(r.body.is_empty());

    let empty = fixture::entry_oid(&fx, &fx.commit, fixture::EMPTY_FILE).expect("empty");
    let r = get(&blob_url(&server, &empty));
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.content_length, Some(0));

    // A symlink's blob is its target.
    let link = fixture::entry_oid(&fx, &fx.commit, fixture::SYMLINK_ABS).expect("link");
    assert_eq!(get(&blob_url(&server, &link)).body, b"/etc/hostname");

    // Absent, not a blob, malformed.
    let tree = fixture::entry_oid(&fx, &fx.commit, "a").expect("tree a");
    for oid in [
        "3333333333333333333333333333333333333333",
        tree.as_str(),
        "xyz",
    ] {
        assert_eq!(get(&blob_url(&server, oid)).status, 404, "GET {oid}");
        assert_eq!(head(&blob_url(&server, oid)).status, 404, "HEAD {oid}");
    }

    let c = server.counts();
    assert_eq!(
        c.blob_get,
        vec![
            big.clone(),
            empty.clone(),
            link.clone(),
            "3333333333333333333333333333333333333333".to_string(),
            tree.clone(),
            "xyz".to_string()
        ]
    );
    assert_eq!(
        c.blob_head,
        vec![
            big.clone(),
            "3333333333333333333333333333333333333333".to_string(),
            tree.clone(),
            "xyz".to_string()
        ]
    );
    server.reset_counts();
    assert_eq!(server.counts(), Counts::default());
}

#[test]
fn server_faults() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let oid = fixture::entry_oid(&fx, &fx.commit, fixture::DEEP_FILE).expect("c.txt");

    // WrongBytes: same length, one byte differs, hash no longer matches; HEAD unchanged.
    server.set_fault(Fault::WrongBytes);
    assert_eq!(server.fault(), Fault::WrongBytes);
    let r = get(&blob_url(&server, &oid));
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), fixture::DEEP_FILE_CONTENT.len());
    let diff = r
        .body
        .iter()
        .zip(fixture::DEEP_FILE_CONTENT)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(diff, 1);
    assert_ne!(hash(ObjectType::Blob, &r.body), oid);
    let r = head(&blob_url(&server, &oid));
    assert_eq!(
        r.content_length,
        Some(fixture::DEEP_FILE_CONTENT.len() as u64)
    );
    // Trees are not affected.
    let a_oid = fixture::entry_oid(&fx, &fx.commit, "a").expect("tree a");
    let r = get(&url(
        &server,
        "/api/v1/file/tree",
        &[("path", "/a"), ("oid", &a_oid)],
    ));
    assert_eq!(hash(ObjectType::Tree, &r.body), a_oid);

    // Http500 on every route, still counted.
    server.set_fault(Fault::Http500);
    server.reset_counts();
    let urls = [
        url(&server, "/api/v1/latest-commit", &[("path", "/")]),
        url(&server, "/api/v1/file/tree", &[("path", "/a")]),
        url(
            &server,
            "/api/v1/tree/content-hash",
            &[("path", "/"), ("refs", &fx.commit)],
        ),
        blob_url(&server, &oid),
    ];
    for u in &urls {
        assert_eq!(get(u).status, 500, "GET {u}");
    }
    assert_eq!(head(&blob_url(&server, &oid)).status, 500);
    assert_eq!(
        server.counts(),
        Counts {
            latest_commit: 1,
            tree: vec!["/a".into()],
            content_hash: vec!["/".into()],
            blob_get: vec![oid.clone()],
            blob_head: vec![oid.clone()],
            ..Counts::default()
        }
    );

    // Slow: answers, but only after the delay.
    server.set_fault(Fault::Slow(Duration::from_millis(400)));
    let t = Instant::now();
    let r = get(&blob_url(&server, &oid));
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(r.body, fixture::DEEP_FILE_CONTENT);

    server.set_fault(Fault::None);
    let r = get(&blob_url(&server, &oid));
    assert_eq!(r.body, fixture::DEEP_FILE_CONTENT);
}

#[test]
fn server_stop_and_restart_same_port() {
    let fx = fixture::standard();
    let mut server = MegaServer::start(&fx.repo_path);
    let port = server.port();
    let latest = url(&server, "/api/v1/latest-commit", &[]);
    assert_eq!(get(&latest).status, 200);
    assert!(server.is_running());

    server.stop();
    assert!(!server.is_running());
    let err = TcpStream::connect(server.addr()).expect_err("port should refuse after stop()");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    let err = http::send_url("GET", &latest, &[], Vec::new()).expect_err("request fails");
    assert!(err.is_connect(), "{err}");
    server.stop(); // idempotent

    server.restart();
    assert_eq!(server.port(), port);
    let r = get(&latest);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["oid"], fx.commit.as_str());
    assert_eq!(server.counts().latest_commit, 2, "counters survive restart");

    // restart() while running, and stop/restart with a keep-alive client in between: the
    // daemon's own client (reqwest, pooled connections), which the tests' one-shot client is not.
    server.restart();
    assert_eq!(get(&latest).status, 200);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let r = client.get(&latest).send().await.expect("first request");
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await;
        server.stop();
        assert!(client.get(&latest).send().await.is_err());
        server.restart();
        let r = client.get(&latest).send().await.expect("after restart");
        assert_eq!(r.status(), 200);
    });
    assert_eq!(server.counts().latest_commit, 5);
}

#[test]
fn server_follows_new_commits() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let old_a = fixture::entry_oid(&fx, &fx.commit, "a").expect("a");
    let old_src = fixture::entry_oid(&fx, &fx.commit, "src").expect("src");

    let new_commit = fixture::add_commit(&fx, fixture::DEEP_FILE, b"new c\n");
    let new_a = fixture::entry_oid(&fx, &new_commit, "a").expect("a");
    assert_ne!(old_a, new_a);

    let j = get(&url(&server, "/api/v1/latest-commit", &[("path", "/")])).json();
    assert_eq!(j["oid"], new_commit.as_str());
    assert_eq!(j["date"], fixture::BASE_TIME + 60);

    // The old tree at /a is no longer current: empty body.
    let r = get(&url(
        &server,
        "/api/v1/file/tree",
        &[("path", "/a"), ("oid", &old_a)],
    ));
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    let r = get(&url(
        &server,
        "/api/v1/file/tree",
        &[("path", "/a"), ("oid", &new_a)],
    ));
    assert_eq!(hash(ObjectType::Tree, &r.body), new_a);
    // An unchanged subtree is still served.
    let r = get(&url(
        &server,
        "/api/v1/file/tree",
        &[("path", "/src"), ("oid", &old_src)],
    ));
    assert_eq!(hash(ObjectType::Tree, &r.body), old_src);
    // Old blobs remain fetchable by oid.
    let old_c = fixture::entry_oid(&fx, &fx.commit, fixture::DEEP_FILE).expect("c");
    assert_eq!(
        get(&blob_url(&server, &old_c)).body,
        fixture::DEEP_FILE_CONTENT
    );
    assert_eq!(server.counts().tree, vec!["/a", "/a", "/src"]);
}
