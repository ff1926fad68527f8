//! The push path, below the API: a commit made through the mount, packed with only the new
//! objects and sent over git smart HTTP to real `git http-backend` at the test server's plain
//! git endpoint (`MegaServer::git_url`, where `main` moves; a Mega path would open a CL).
//! (The `push` route, and moving the mount's base after it, build on this.)

mod support;

use std::process::Command;

use scorpio::remote::smart_http::{Endpoint, PushError};
use scorpio::remote::Oid;
use scorpio::vcs::commit::{open_staging, pack_new_objects};
use support::daemon::{run_with_timeout, Daemon};
use support::fixture;
use support::http;
use support::mega_server::MegaServer;
use support::tree::assert_same_tree;

fn git(repo: &std::path::Path, args: &[&str]) -> std::process::Output {
    run_with_timeout(
        Command::new("git").arg("--git-dir").arg(repo).args(args),
        120,
    )
}

#[test]
fn a_commit_pushes_as_a_pack_of_new_objects_and_real_git_accepts_it() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    server.set_push_token(Some("tok".into()));
    let d = Daemon::mega(&server);
    let (code, body) = http::post(&d.http_addr, "/api/fs/mount", r#"{"path":"/"}"#);
    assert_eq!(code, 200, "{body}");
    let ws = &d.workspace;
    std::fs::write(ws.join("README.md"), b"# pushed\n").expect("modify");
    std::fs::write(ws.join("a/b/new.txt"), b"new\n").expect("add");
    std::fs::remove_file(ws.join("src/lib.rs")).expect("delete");
    // git keeps no empty directories; neither does this comparison.
    std::fs::remove_dir(ws.join("src")).expect("rmdir");
    std::fs::remove_dir_all(ws.join("ünïcødé")).expect("delete a directory");
    std::fs::rename(ws.join("a/b/d"), ws.join("moved")).expect("rename a directory");
    std::os::unix::fs::symlink("README.md", ws.join("link-new")).expect("symlink");
    let (code, body) = http::post(
        &d.http_addr,
        "/api/git/commit",
        r#"{"message":"from scorpio"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let new = Oid::from_hex(v["commit"].as_str().expect("commit")).expect("oid");
    let base = Oid::from_hex(&fx.commit).expect("oid");

    let staging = open_staging(&d.store).expect("staging repository");
    let (pack, objects) = pack_new_objects(&staging, new, base).expect("pack");
    // The commit, the root tree, the trees on changed paths, and the two new blobs — nothing of
    // the untouched rest (big/blob.bin alone is 20 MB).
    assert!(objects <= 12, "{objects} objects in the pack");
    assert!(pack.len() < 64 * 1024, "pack of {} bytes", pack.len());

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = reqwest::Client::new();
    let ep = |token: Option<&str>| Endpoint {
        url: server.git_url(),
        token: token.map(str::to_string),
        timeout: std::time::Duration::from_secs(60),
    };
    // Without the token Mega refuses, and nothing moves.
    let e = rt
        .block_on(ep(None).push(&client, "refs/heads/main", base, new, pack.clone()))
        .expect_err("no token");
    assert!(e.to_string().contains("401"), "{e}");
    rt.block_on(ep(Some("tok")).push(&client, "refs/heads/main", base, new, pack.clone()))
        .expect("push");
    assert_eq!(fixture::head(&fx), new.to_hex());
    let fsck = git(&fx.repo_path, &["fsck", "--strict"]);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );
    // The pushed commit is exactly what the mount shows.
    let tree = support::tree::archive(&fx, &new.to_hex());
    assert_same_tree(ws, tree.path());

    // The branch has moved on: a push from the old base is refused before anything is sent.
    let before = server.counts().receive_pack;
    let e = rt
        .block_on(ep(Some("tok")).push(&client, "refs/heads/main", base, new, pack))
        .expect_err("stale base");
    assert!(matches!(e, PushError::Moved { .. }), "{e}");
    assert!(e.to_string().contains("fetch the new commit"), "{e}");
    assert_eq!(server.counts().receive_pack, before, "nothing was sent");
}
