//! Tests of the test-support code itself (fixtures, Mega-API server, daemon helpers); nothing
//! here runs scorpio.

mod support;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use git2::{ObjectType, Oid};
use support::daemon::try_run_with_timeout;
use support::fixture::{self, EntryKind};
use support::mountinfo::parse_mountinfo_line;
use support::{run_with_timeout, Counts, Fault, MegaServer};

#[derive(Debug)]
struct Resp {
    status: u16,
    content_length: Option<u64>,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// One request with a fresh reqwest client on a small runtime.
fn request(method: reqwest::Method, url: &str) -> Result<Resp, reqwest::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build client runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let r = client.request(method, url).send().await?;
        let header = |name: reqwest::header::HeaderName| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_length =
            header(reqwest::header::CONTENT_LENGTH).and_then(|s| s.parse::<u64>().ok());
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let status = r.status().as_u16();
        let body = r.bytes().await?.to_vec();
        Ok(Resp {
            status,
            content_length,
            content_type,
            body,
        })
    })
}

fn get(url: &str) -> Resp {
    request(reqwest::Method::GET, url).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

fn head(url: &str) -> Resp {
    request(reqwest::Method::HEAD, url).unwrap_or_else(|e| panic!("HEAD {url}: {e}"))
}

fn url(server: &MegaServer, route: &str, params: &[(&str, &str)]) -> String {
    let base = format!("{}{route}", server.url());
    reqwest::Url::parse_with_params(&base, params)
        .expect("valid URL")
        .to_string()
}

fn blob_url(server: &MegaServer, oid: &str) -> String {
    format!("{}/api/v1/file/blob/{oid}", server.url())
}

fn git(args: &[&str]) -> std::process::Output {
    let out = run_with_timeout(Command::new("git").args(args), 60);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn hash(kind: ObjectType, body: &[u8]) -> String {
    Oid::hash_object(kind, body)
        .expect("hash object")
        .to_string()
}

// ---- fixtures ---------------------------------------------------------------------------------

#[test]
fn standard_fixture_archive_lists_expected_paths() {
    let fx = fixture::standard();
    let git_dir = fx.repo_path.to_str().expect("utf-8 temp path");
    let tar = fx.dir.path().join("archive.tar");
    git(&[
        "--git-dir",
        git_dir,
        "archive",
        "--format=tar",
        "-o",
        tar.to_str().expect("utf-8 temp path"),
        &fx.commit,
    ]);
    let out = run_with_timeout(Command::new("tar").arg("-tf").arg(&tar), 60);
    assert!(out.status.success(), "tar -t failed");
    let listed: Vec<String> = String::from_utf8(out.stdout)
        .expect("utf-8 tar listing")
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();
    for p in fixture::standard_paths()
        .into_iter()
        .chain(fixture::STANDARD_DIRS.iter().copied())
    {
        assert!(
            listed.iter().any(|l| l == p),
            "git archive does not list {p}: {listed:?}"
        );
    }
    assert!(listed.iter().any(|l| l == fixture::SUBMODULE));
    assert_eq!(
        listed.len(),
        fixture::standard_paths().len() + fixture::STANDARD_DIRS.len(),
        "unexpected entries in {listed:?}"
    );

    // Modes and ids, as git itself reads them.
    let out = git(&["--git-dir", git_dir, "ls-tree", "-r", "-z", &fx.commit]);
    let mut tree: BTreeMap<String, (String, String)> = BTreeMap::new();
    for rec in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rec = String::from_utf8(rec.to_vec()).expect("utf-8 ls-tree");
        let (meta, path) = rec.split_once('\t').expect("tab in ls-tree record");
        let mut f = meta.split(' ');
        let mode = f.next().expect("mode").to_string();
        let _kind = f.next().expect("type");
        let oid = f.next().expect("oid").to_string();
        tree.insert(path.to_string(), (mode, oid));
    }
    let entries = fixture::standard_entries();
    assert_eq!(tree.len(), entries.len(), "ls-tree: {:?}", tree.keys());
    for e in &entries {
        let (mode, oid) = tree
            .get(e.path)
            .unwrap_or_else(|| panic!("{} missing from ls-tree", e.path));
        assert_eq!(
            *mode,
            format!("{:06o}", e.kind.mode()),
            "mode of {}",
            e.path
        );
        let want = match e.kind {
            EntryKind::Gitlink => fixture::SUBMODULE_COMMIT.to_string(),
            _ => hash(ObjectType::Blob, &e.data),
        };
        assert_eq!(*oid, want, "oid of {}", e.path);
    }
    assert_eq!(tree[fixture::EXEC_FILE].0, "100755");
    assert_eq!(tree[fixture::SYMLINK_ABS].0, "120000");
    assert_eq!(tree[fixture::SUBMODULE].0, "160000");
    let big = fixture::object_bytes(&fx, &tree[fixture::BIG_FILE].1);
    assert_eq!(big.len(), fixture::BIG_FILE_SIZE);
    assert_eq!(
        fixture::object_bytes(&fx, &tree[fixture::SYMLINK_UP].1),
        b"../empty.txt"
    );

    // Well-formed objects, HEAD on main.
    git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);
    let out = git(&["--git-dir", git_dir, "symbolic-ref", "HEAD"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "refs/heads/main"
    );
    assert_eq!(fixture::head(&fx), fx.commit);
}

#[test]
fn standard_fixture_is_deterministic() {
    let a = fixture::standard();
    let b = fixture::standard();
    assert_eq!(a.commit, b.commit);
    assert_eq!(a.commit.len(), 40);
    let big1 = fixture::big_blob_content();
    assert_eq!(big1.len(), 20 * 1024 * 1024);
    assert_eq!(big1, fixture::big_blob_content());
    // Not trivially repetitive.
    assert_ne!(big1[..4096], big1[4096..8192]);
}

#[test]
fn generated_fixture_and_add_commit() {
    let fx = fixture::generated(1000, 30);
    let git_dir = fx.repo_path.to_str().expect("utf-8 temp path");
    let out = git(&[
        "--git-dir",
        git_dir,
        "ls-tree",
        "-r",
        "--name-only",
        &fx.commit,
    ]);
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(names.len(), 1000);
    let p = fixture::generated_path(999, 1000, 30);
    assert!(names.contains(&p), "{p} not in listing");
    let oid = fixture::entry_oid(&fx, &fx.commit, &p).expect("generated file exists");
    assert_eq!(
        fixture::object_bytes(&fx, &oid),
        fixture::generated_content(999)
    );
    git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);

    // More than 256 directories: grouped one level deeper.
    let big = fixture::generated(3000, 5);
    let out = git(&[
        "--git-dir",
        big.repo_path.to_str().expect("utf-8"),
        "ls-tree",
        "-r",
        "--name-only",
        &big.commit,
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3000);

    // add_commit: new commit on main, parent = old tip, old tree unchanged.
    let c1 = fixture::add_commit(&fx, "d0000/new/file.txt", b"new content\n");
    assert_ne!(c1, fx.commit);
    assert_eq!(fixture::head(&fx), c1);
    let out = git(&["--git-dir", git_dir, "rev-parse", &format!("{c1}^")]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), fx.commit);
    let new_oid = fixture::entry_oid(&fx, &c1, "d0000/new/file.txt").expect("new file");
    assert_eq!(fixture::object_bytes(&fx, &new_oid), b"new content\n");
    assert!(fixture::entry_oid(&fx, &fx.commit, "d0000/new/file.txt").is_none());
    assert_ne!(
        fixture::entry_oid(&fx, &fx.commit, "d0000"),
        fixture::entry_oid(&fx, &c1, "d0000")
    );
    assert_eq!(
        fixture::entry_oid(&fx, &fx.commit, "d0001"),
        fixture::entry_oid(&fx, &c1, "d0001")
    );
    let c2 = fixture::add_commit(&fx, &fixture::generated_path(0, 1000, 30), b"changed\n");
    assert_eq!(fixture::head(&fx), c2);
    git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);
}

#[test]
fn add_commit_keeps_exec_bit() {
    let fx = fixture::generated(3, 3);
    let exec_fx = fixture::standard();
    let c = fixture::add_commit(&exec_fx, fixture::EXEC_FILE, b"#!/bin/sh\necho changed\n");
    let out = git(&[
        "--git-dir",
        exec_fx.repo_path.to_str().expect("utf-8"),
        "ls-tree",
        &c,
        fixture::EXEC_FILE,
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("100755 blob "));
    drop(fx);
}

// ---- Mega server ------------------------------------------------------------------------------

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
    let err = request(reqwest::Method::GET, &latest).expect_err("request fails");
    assert!(err.is_connect(), "{err}");
    server.stop(); // idempotent

    server.restart();
    assert_eq!(server.port(), port);
    let r = get(&latest);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["oid"], fx.commit.as_str());
    assert_eq!(server.counts().latest_commit, 2, "counters survive restart");

    // restart() while running, and stop/restart with a keep-alive client in between.
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

// ---- daemon helpers (no daemon is run) -----------------------------------------------------

#[test]
fn mountinfo_parsing_and_command_timeouts() {
    let line = r"612 35 0:77 / /tmp/x\040y/ws rw,nosuid,nodev,relatime shared:300 - fuse.scorpio scorpio rw,user_id=0,group_id=0";
    let m = parse_mountinfo_line(line).expect("parse mountinfo line");
    assert_eq!(m.mount_id, 612);
    assert_eq!(m.mount_point, Path::new("/tmp/x y/ws"));
    assert_eq!(m.fstype, "fuse.scorpio");
    assert_eq!(m.source, "scorpio");
    let line = r"22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw";
    let m = parse_mountinfo_line(line).expect("parse line without optional fields");
    assert_eq!(m.mount_point, Path::new("/"));
    assert_eq!(m.fstype, "ext4");
    assert_eq!(
        support::mountinfo::decode_mount_field(r"a\134b\011c\012"),
        b"a\\b\tc\n"
    );

    assert!(support::is_mounted(Path::new("/")));
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(!support::is_mounted(dir.path()));
    assert!(!support::is_fuse_mounted(dir.path()));

    let out = run_with_timeout(Command::new("echo").arg("hi"), 5);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hi\n");
    let t = Instant::now();
    let err = try_run_with_timeout(Command::new("sleep").arg("30"), 1)
        .expect_err("sleep 30 must time out");
    assert!(err.contains("timed out"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10));
}

/// Sends a raw HTTP/1.1 request (Connection: close) and returns the whole response as text.
fn raw_http(server: &MegaServer, method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(server.addr()).expect("connect to MegaServer");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set read timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read response");
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn server_raw_http_headers() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let oid = fixture::entry_oid(&fx, &fx.commit, fixture::README).expect("README");
    let len = fixture::README_CONTENT.len();
    for method in ["GET", "HEAD"] {
        let resp = raw_http(&server, method, &format!("/api/v1/file/blob/{oid}"));
        let (head, body) = resp.split_once("\r\n\r\n").expect("header/body separator");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let lengths: Vec<&str> = head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("content-length:"))
            .collect();
        assert_eq!(lengths.len(), 1, "{method}: {head}");
        assert_eq!(
            lengths[0].split(':').nth(1).map(str::trim),
            Some(&*len.to_string())
        );
        if method == "HEAD" {
            assert!(body.is_empty(), "HEAD returned a body: {body:?}");
        } else {
            assert_eq!(body.as_bytes(), fixture::README_CONTENT);
        }
    }
    let c = server.counts();
    assert_eq!((c.blob_get.len(), c.blob_head.len()), (1, 1));
}

// ---- git smart HTTP (git http-backend) ----------------------------------------------------------

/// One request with headers and a body, with a fresh reqwest client on a small runtime.
fn send(method: reqwest::Method, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Resp {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build client runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
            .expect("build client");
        let mut req = client.request(method, url).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let header = |name: reqwest::header::HeaderName| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_length =
            header(reqwest::header::CONTENT_LENGTH).and_then(|s| s.parse::<u64>().ok());
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let status = r.status().as_u16();
        let body = r.bytes().await.expect("response body").to_vec();
        Resp {
            status,
            content_length,
            content_type,
            body,
        }
    })
}

/// The `git` CLI with no system/global config, no prompts, no proxy and a fixed identity, in
/// `dir`. Does not check the exit status.
fn git_cli(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir).args(args);
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("NO_PROXY", "*")
        .env("no_proxy", "*")
        .env("GIT_AUTHOR_NAME", "Selftest")
        .env("GIT_AUTHOR_EMAIL", "selftest@scorpio.test")
        .env("GIT_COMMITTER_NAME", "Selftest")
        .env("GIT_COMMITTER_EMAIL", "selftest@scorpio.test");
    run_with_timeout(&mut cmd, 120)
}

/// `git_cli` that must succeed; returns trimmed stdout.
fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git_cli(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `git_cli` that must fail; returns stderr.
fn git_fails(dir: &Path, args: &[&str]) -> String {
    let out = git_cli(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "git {args:?} succeeded unexpectedly: {stderr}"
    );
    stderr
}

/// Clones the server's repository over HTTP into `<parent>/clone`.
fn http_clone(server: &MegaServer, parent: &Path, url_path: &str) -> std::path::PathBuf {
    let url = format!("{}{url_path}", server.url());
    git_ok(parent, &["clone", "-q", &url, "clone"]);
    parent.join("clone")
}

/// Changes `path` in the work tree `work` and commits; returns the new commit id.
fn commit_change(work: &Path, path: &str, content: &str) -> String {
    let file = work.join(path);
    std::fs::create_dir_all(file.parent().expect("parent dir")).expect("mkdir");
    std::fs::write(&file, content).expect("write work tree file");
    git_ok(work, &["add", path]);
    git_ok(work, &["commit", "-q", "-m", &format!("change {path}")]);
    git_ok(work, &["rev-parse", "HEAD"])
}

fn fsck_strict(fx: &fixture::Fixture) {
    // `git` asserts a zero exit status.
    git(&[
        "--git-dir",
        fx.repo_path.to_str().expect("utf-8 temp path"),
        "fsck",
        "--strict",
        "--no-dangling",
    ]);
}

fn repo_config(fx: &fixture::Fixture, key: &str) -> String {
    String::from_utf8_lossy(
        &git(&[
            "--git-dir",
            fx.repo_path.to_str().expect("utf-8"),
            "config",
            "--local",
            key,
        ])
        .stdout,
    )
    .trim()
    .to_string()
}

#[test]
fn server_git_clone_and_push_with_bearer_token() {
    let fx = fixture::generated(40, 10);
    let server = MegaServer::start(&fx.repo_path);
    assert_eq!(repo_config(&fx, "receive.fsckObjects"), "true");
    assert_eq!(repo_config(&fx, "receive.denyNonFastForwards"), "true");
    server.set_push_token(Some("s3cret".to_string()));
    assert_eq!(server.push_token().as_deref(), Some("s3cret"));
    let tmp = tempfile::tempdir().expect("tempdir");

    // Fetching needs no token.
    let work = http_clone(&server, tmp.path(), "/project.git");
    assert_eq!(git_ok(&work, &["rev-parse", "HEAD"]), fx.commit);
    let c = server.counts();
    assert!(c.info_refs >= 1, "{c:?}");
    assert!(c.upload_pack >= 1, "{c:?}");
    assert_eq!(c.receive_pack, 0);

    let new = commit_change(
        &work,
        &fixture::generated_path(3, 40, 10),
        "changed by push\n",
    );

    // No token: 401 on info/refs?service=git-receive-pack, so git gives up before POSTing.
    server.reset_counts();
    let stderr = git_fails(&work, &["push", "origin", "HEAD:refs/heads/main"]);
    assert!(
        stderr.contains("401") || stderr.contains("Username") || stderr.contains("Authentication"),
        "{stderr}"
    );
    assert_eq!(fixture::head(&fx), fx.commit);
    let c = server.counts();
    assert_eq!((c.info_refs, c.receive_pack), (1, 0), "{c:?}");

    // Wrong token: still refused.
    git_fails(
        &work,
        &[
            "-c",
            "http.extraHeader=Authorization: Bearer wrong",
            "push",
            "origin",
            "HEAD:refs/heads/main",
        ],
    );
    assert_eq!(fixture::head(&fx), fx.commit);

    // With the token: accepted by git, main moves, the repository stays clean.
    server.reset_counts();
    git_ok(
        &work,
        &[
            "-c",
            "http.extraHeader=Authorization: Bearer s3cret",
            "push",
            "origin",
            "HEAD:refs/heads/main",
        ],
    );
    assert_eq!(fixture::head(&fx), new);
    fsck_strict(&fx);
    let c = server.counts();
    assert_eq!((c.info_refs, c.receive_pack), (1, 1), "{c:?}");
    // The API routes serve the pushed commit.
    let j = get(&url(&server, "/api/v1/latest-commit", &[("path", "/")])).json();
    assert_eq!(j["oid"], new.as_str());

    // Any `<path>.git` prefix names the same repository, `/.git` included.
    let newer = commit_change(&work, "added/by/push.txt", "second push\n");
    git_ok(
        &work,
        &[
            "-c",
            "http.extraHeader=Authorization: Bearer s3cret",
            "push",
            &format!("{}/.git", server.url()),
            "HEAD:refs/heads/main",
        ],
    );
    assert_eq!(fixture::head(&fx), newer);
    let ls = git_ok(
        tmp.path(),
        &["ls-remote", &format!("{}/a/b/mono.git", server.url())],
    );
    assert!(ls.contains(&format!("{newer}\trefs/heads/main")), "{ls}");
    fsck_strict(&fx);

    // Raw requests: the advertisement needs the token only for receive-pack.
    let refs = |service: &str, auth: &[(&str, &str)]| {
        send(
            reqwest::Method::GET,
            &format!("{}/project.git/info/refs?service={service}", server.url()),
            auth,
            Vec::new(),
        )
    };
    let r = refs("git-upload-pack", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/x-git-upload-pack-advertisement")
    );
    assert!(r.body.starts_with(b"001e# service=git-upload-pack\n"));
    assert_eq!(refs("git-receive-pack", &[]).status, 401);
    assert_eq!(
        refs(
            "git-receive-pack",
            &[("Authorization", "Basic dGVzdDpzM2NyZXQ=")]
        )
        .status,
        401
    );
    let r = refs("git-receive-pack", &[("Authorization", "Bearer s3cret")]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/x-git-receive-pack-advertisement")
    );
    assert!(String::from_utf8_lossy(&r.body).contains(&newer));
    // A POST without the token is refused before git runs.
    server.reset_counts();
    let r = send(
        reqwest::Method::POST,
        &format!("{}/project.git/git-receive-pack", server.url()),
        &[("Content-Type", "application/x-git-receive-pack-request")],
        b"0000".to_vec(),
    );
    assert_eq!(r.status, 401);
    assert_eq!(server.counts().receive_pack, 1);
    // Not git routes.
    for p in [
        "/project.git/objects/info/packs",
        "/project/info/refs",
        "/nope",
    ] {
        assert_eq!(get(&format!("{}{p}", server.url())).status, 404, "{p}");
    }

    // Token cleared: pushes need none.
    server.set_push_token(None);
    let third = commit_change(&work, "added/by/push.txt", "third push\n");
    git_ok(&work, &["push", "origin", "HEAD:refs/heads/main"]);
    assert_eq!(fixture::head(&fx), third);

    // A pack bigger than git's http.postBuffer goes as a chunked request body (after a probe).
    let big = &fixture::big_blob_content()[..4 << 20];
    std::fs::write(work.join("big.bin"), big).expect("write big file");
    git_ok(&work, &["add", "big.bin"]);
    git_ok(&work, &["commit", "-q", "-m", "big"]);
    let fourth = git_ok(&work, &["rev-parse", "HEAD"]);
    server.reset_counts();
    git_ok(&work, &["push", "origin", "HEAD:refs/heads/main"]);
    assert_eq!(fixture::head(&fx), fourth);
    assert!(server.counts().receive_pack >= 1);
    let big_oid = fixture::entry_oid(&fx, &fourth, "big.bin").expect("big.bin pushed");
    assert_eq!(fixture::object_bytes(&fx, &big_oid), big);
    fsck_strict(&fx);
}

#[test]
fn server_git_refuses_non_fast_forward_and_bad_objects() {
    let fx = fixture::generated(12, 4);
    let server = MegaServer::start(&fx.repo_path);
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = http_clone(&server, tmp.path(), "/project.git");
    let a = commit_change(&work, "one.txt", "one\n");
    git_ok(&work, &["push", "origin", "HEAD:refs/heads/main"]);
    assert_eq!(fixture::head(&fx), a);

    // An older commit with a different parent (the original tip), force-pushed: git on the server
    // refuses it (receive.denyNonFastForwards), main stays.
    let tree = git_ok(&work, &["rev-parse", "HEAD^{tree}"]);
    let other = git_ok(
        &work,
        &["commit-tree", &tree, "-p", &fx.commit, "-m", "sideways"],
    );
    server.reset_counts();
    let stderr = git_fails(
        &work,
        &[
            "push",
            "--force",
            "origin",
            &format!("{other}:refs/heads/main"),
        ],
    );
    assert!(
        stderr.contains("denying non-fast-forward") && stderr.contains("remote rejected"),
        "{stderr}"
    );
    assert_eq!(server.counts().receive_pack, 1, "reached git");
    assert_eq!(fixture::head(&fx), a);

    // A malformed commit (no author line): refused by receive.fsckObjects.
    let bad_body = format!(
        "tree {tree}\nparent {a}\ncommitter Selftest <selftest@scorpio.test> 1700000000 +0000\n\nno author\n"
    );
    let bad_file = tmp.path().join("bad-commit");
    std::fs::write(&bad_file, bad_body).expect("write bad commit");
    let bad = git_ok(
        &work,
        &[
            "hash-object",
            "-t",
            "commit",
            "--literally",
            "-w",
            bad_file.to_str().expect("utf-8"),
        ],
    );
    let stderr = git_fails(
        &work,
        &["push", "origin", &format!("{bad}:refs/heads/main")],
    );
    assert!(
        stderr.contains("missingAuthor") && stderr.contains("remote rejected"),
        "{stderr}"
    );
    assert_eq!(fixture::head(&fx), a);
    fsck_strict(&fx);

    // A fast-forward still goes through.
    let b = commit_change(&work, "two.txt", "two\n");
    git_ok(&work, &["push", "origin", "HEAD:refs/heads/main"]);
    assert_eq!(fixture::head(&fx), b);
    fsck_strict(&fx);
}

#[test]
fn server_git_faults() {
    let fx = fixture::generated(12, 4);
    let server = MegaServer::start(&fx.repo_path);
    server.set_push_token(Some("tok".to_string()));
    let auth = "http.extraHeader=Authorization: Bearer tok";
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = http_clone(&server, tmp.path(), "/project.git");
    let a = commit_change(&work, "one.txt", "one\n");

    // RefusePush: info/refs works, the POST gets 500, nothing changes.
    server.set_fault(Fault::RefusePush);
    server.reset_counts();
    git_fails(
        &work,
        &["-c", auth, "push", "origin", "HEAD:refs/heads/main"],
    );
    assert_eq!(fixture::head(&fx), fx.commit);
    let c = server.counts();
    assert_eq!((c.info_refs, c.receive_pack), (1, 1), "{c:?}");
    // Fetches and the API are unaffected.
    git_ok(&work, &["fetch", "-q", "origin"]);
    assert_eq!(
        get(&url(&server, "/api/v1/latest-commit", &[])).json()["oid"],
        fx.commit.as_str()
    );

    // Http500 applies to git routes too, counted.
    server.set_fault(Fault::Http500);
    server.reset_counts();
    git_fails(
        &work,
        &["-c", auth, "push", "origin", "HEAD:refs/heads/main"],
    );
    git_fails(&work, &["fetch", "-q", "origin"]);
    assert_eq!(fixture::head(&fx), fx.commit);
    let c = server.counts();
    assert_eq!((c.info_refs, c.receive_pack), (2, 0), "{c:?}");

    // Slow: the push succeeds after the delays.
    server.set_fault(Fault::Slow(Duration::from_millis(300)));
    let t = Instant::now();
    git_ok(
        &work,
        &["-c", auth, "push", "origin", "HEAD:refs/heads/main"],
    );
    assert!(
        t.elapsed() >= Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(fixture::head(&fx), a);

    server.set_fault(Fault::None);
    let b = commit_change(&work, "two.txt", "two\n");
    git_ok(
        &work,
        &["-c", auth, "push", "origin", "HEAD:refs/heads/main"],
    );
    assert_eq!(fixture::head(&fx), b);
    fsck_strict(&fx);
}

/// Builds one pkt-line.
fn pkt(line: &str) -> String {
    format!("{:04x}{line}", line.len() + 4)
}

#[test]
fn server_git_gzip_request_body() {
    use std::io::Write;
    let fx = fixture::generated(12, 4);
    let server = MegaServer::start(&fx.repo_path);
    // A protocol v0 upload-pack request for the tip, gzip-compressed as git clients send it.
    let request = format!(
        "{}0000{}",
        pkt(&format!("want {}\n", fx.commit)),
        pkt("done\n")
    );
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(request.as_bytes()).expect("gzip");
    let gz = enc.finish().expect("gzip finish");
    for (body, encoding) in [(gz, Some("gzip")), (request.into_bytes(), None)] {
        let mut headers = vec![("Content-Type", "application/x-git-upload-pack-request")];
        if let Some(e) = encoding {
            headers.push(("Content-Encoding", e));
        }
        let r = send(
            reqwest::Method::POST,
            &format!("{}/.git/git-upload-pack", server.url()),
            &headers,
            body,
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/x-git-upload-pack-result")
        );
        assert!(
            r.body.starts_with(b"0008NAK\n"),
            "{:?}",
            &r.body[..16.min(r.body.len())]
        );
        assert!(
            r.body.windows(4).any(|w| w == b"PACK"),
            "no pack in the answer"
        );
    }
    assert_eq!(server.counts().upload_pack, 2);
    // A wrong Content-Type is refused by git itself.
    let r = send(
        reqwest::Method::POST,
        &format!("{}/.git/git-upload-pack", server.url()),
        &[("Content-Type", "text/plain")],
        b"0000".to_vec(),
    );
    assert_eq!(r.status, 415);
}
