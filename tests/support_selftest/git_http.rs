//! Selftest: git smart HTTP of the test server (see tests/support_selftest.rs). Clone and push
//! through real `git http-backend` at the plain endpoint (`/git/<name>.git`), the push token,
//! refusals by git itself, faults, gzip bodies.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{get, git, send, url};
use crate::support::fixture;
use crate::support::run_with_timeout;
use crate::support::{Fault, MegaServer};

pub(super) fn git_cli(dir: &Path, args: &[&str]) -> std::process::Output {
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
pub(super) fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git_cli(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `git_cli` that must fail; returns stderr.
pub(super) fn git_fails(dir: &Path, args: &[&str]) -> String {
    let out = git_cli(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "git {args:?} succeeded unexpectedly: {stderr}"
    );
    stderr
}

/// Clones the server's repository over HTTP into `<parent>/clone`.
pub(super) fn http_clone(server: &MegaServer, parent: &Path, url_path: &str) -> std::path::PathBuf {
    let url = format!("{}{url_path}", server.url());
    git_ok(parent, &["clone", "-q", &url, "clone"]);
    parent.join("clone")
}

/// Changes `path` in the work tree `work` and commits; returns the new commit id.
pub(super) fn commit_change(work: &Path, path: &str, content: &str) -> String {
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
    let work = http_clone(&server, tmp.path(), "/git/project.git");
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

    // Any `/git/<name>.git` names the same repository, `/git/.git` included.
    let newer = commit_change(&work, "added/by/push.txt", "second push\n");
    git_ok(
        &work,
        &[
            "-c",
            "http.extraHeader=Authorization: Bearer s3cret",
            "push",
            &format!("{}/git/.git", server.url()),
            "HEAD:refs/heads/main",
        ],
    );
    assert_eq!(fixture::head(&fx), newer);
    let ls = git_ok(
        tmp.path(),
        &["ls-remote", &format!("{}/git/a/b/mono.git", server.url())],
    );
    assert!(ls.contains(&format!("{newer}\trefs/heads/main")), "{ls}");
    fsck_strict(&fx);

    // Raw requests: the advertisement needs the token only for receive-pack.
    let refs = |service: &str, auth: &[(&str, &str)]| {
        send(
            "GET",
            &format!(
                "{}/git/project.git/info/refs?service={service}",
                server.url()
            ),
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
        "POST",
        &format!("{}/git/project.git/git-receive-pack", server.url()),
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
    let work = http_clone(&server, tmp.path(), "/git/project.git");
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
    let work = http_clone(&server, tmp.path(), "/git/project.git");
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
            "POST",
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
        "POST",
        &format!("{}/.git/git-upload-pack", server.url()),
        &[("Content-Type", "text/plain")],
        b"0000".to_vec(),
    );
    assert_eq!(r.status, 415);
}
