//! `push`: local commits go to a real git server (git http-backend at the test Mega server's
//! plain git endpoint, the `push_url`, or a local repository), the workspace moves to the pushed commit in place, and nothing the
//! user wrote is ever lost — not on refusal, not while the push is in flight.

mod support;

#[path = "push/mega.rs"]
mod mega;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::api::{cli, json, mount, only_upper, push, status};
use support::daemon::{run_with_timeout, Daemon, DaemonOpts};
use support::fixture::{self, Fixture};
use support::http;
use support::mega_server::{Fault, MegaServer};
use support::tree::{archive, assert_same_tree, walk};

/// Commits everything changed; returns the new commit's id.
fn commit(d: &Daemon, message: &str) -> String {
    let (code, v) = support::api::commit(d, message);
    assert_eq!(code, 200, "commit: {v}\n{}", d.log());
    v["commit"].as_str().expect("commit id").to_string()
}

fn changes(d: &Daemon) -> Vec<(String, String)> {
    support::api::changes(d, "")
}

fn fsck(fx: &Fixture) {
    let out = run_with_timeout(
        Command::new("git")
            .arg("--git-dir")
            .arg(&fx.repo_path)
            .args(["fsck", "--strict"]),
        120,
    );
    assert!(
        out.status.success(),
        "git fsck --strict: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every change kind the issue names, on the standard fixture mounted whole.
fn edit(root: &Path) {
    std::fs::write(root.join("README.md"), b"# Changed\n").expect("modify");
    std::fs::write(root.join("a/b/new.txt"), b"new\n").expect("add");
    std::fs::remove_file(root.join("src/lib.rs")).expect("delete");
    // git keeps no empty directories; neither does the comparison with `git archive`.
    std::fs::remove_dir(root.join("src")).expect("rmdir");
    let p = root.join(fixture::SPACE_FILE);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod +x");
    std::fs::remove_file(root.join(fixture::EMPTY_FILE)).expect("rm");
    std::os::unix::fs::symlink("README.md", root.join(fixture::EMPTY_FILE)).expect("symlink");
    std::fs::rename(root.join("a/b/d"), root.join("a/dd")).expect("rename a directory");
    std::fs::remove_dir_all(root.join(fixture::UNICODE_DIR)).expect("delete a directory");
}

/// A daemon reading from the test Mega server and pushing to its plain git endpoint (`push_url`):
/// a git server whose `main` moves on a push (on Mega itself a push opens a change list).
fn mega_daemon(fx: &Fixture) -> (MegaServer, Daemon) {
    let server = MegaServer::start(&fx.repo_path);
    server.set_push_token(Some("tok".into()));
    let mut opts = DaemonOpts::new(server.url());
    opts.extra_toml = format!(
        "remote_token = \"tok\"\npush_url = \"{}\"\n",
        server.git_url()
    );
    let d = Daemon::start_or_panic(opts);
    (server, d)
}

#[test]
fn push_lands_on_a_real_git_server_and_the_mount_moves_to_it_in_place() {
    let fx = fixture::standard();
    let (server, mut d) = mega_daemon(&fx);
    mount(&d, "/");
    let ws = d.workspace.clone();
    let ino = |p: &str| std::fs::symlink_metadata(ws.join(p)).expect("stat").ino();
    let deep_ino = ino(fixture::DEEP_FILE);
    edit(&ws);
    let c1 = commit(&d, "every kind of change");

    // Through the CLI, as a user would.
    let out = cli(&d, &["push"]);
    assert!(
        out.status.success(),
        "scorpio push: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&c1));
    assert_eq!(
        fixture::head(&fx),
        c1,
        "the server's branch is the pushed commit"
    );
    assert!(server.counts().receive_pack >= 1);
    fsck(&fx);
    let pushed = archive(&fx, &c1);
    assert_same_tree(&ws, pushed.path());

    // The workspace now stands on the pushed commit: nothing to show, nothing ahead, and the
    // upper layer gave back everything the commit now holds.
    let st = status(&d);
    assert_eq!(st["base"], c1.as_str(), "{st}");
    let (_, health) = http::get(&d.http_addr, "/health");
    assert_eq!(json(&health)["commit"], c1.as_str(), "{health}");
    assert_eq!(st["ahead"], 0, "{st}");
    assert!(changes(&d).is_empty(), "{st}");
    let left = walk(&only_upper(&d));
    assert!(left.is_empty(), "upper layer still holds {:?}", left.keys());
    // In place, no remount: an entry the push did not change keeps its inode.
    assert_eq!(ino(fixture::DEEP_FILE), deep_ino);
    assert_eq!(
        std::fs::read(ws.join(fixture::README)).expect("read"),
        b"# Changed\n"
    );

    // A second round starts from the pushed commit and sends only what is new.
    std::fs::write(ws.join(fixture::README), b"# Second\n").expect("modify again");
    let c2 = commit(&d, "second");
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert!(body["objects"].as_u64().expect("objects") <= 3, "{body}");
    assert_eq!(fixture::head(&fx), c2);
    fsck(&fx);
    assert_same_tree(&ws, archive(&fx, &c2).path());

    // Nothing left to push is a clear refusal that changes nothing.
    let (code, body) = push(&d);
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["code"], "NOTHING_TO_PUSH");

    // After a restart the workspace shows the pushed commit, with no changes.
    d.restart().unwrap_or_else(|e| panic!("{e}"));
    assert_same_tree(&d.workspace, archive(&fx, &c2).path());
    assert!(changes(&d).is_empty());
}

#[test]
fn a_refused_push_loses_nothing_and_works_once_the_branch_is_sorted_out() {
    let fx = fixture::standard();
    let (server, mut d) = mega_daemon(&fx);
    mount(&d, "/");
    let ws = d.workspace.clone();
    std::fs::write(ws.join(fixture::README), b"# mine\n").expect("modify");
    let base = fx.commit.clone();
    let mine = commit(&d, "mine");
    // A server error: a clear error, and nothing changes on either side.
    server.set_fault(Fault::RefusePush);
    let (code, body) = push(&d);
    assert_eq!(code, 502, "{body}");
    assert_eq!(body["code"], "REMOTE_FAILED", "{body}");
    assert!(
        body["error"].as_str().expect("error").contains("500"),
        "{body}"
    );
    server.set_fault(Fault::None);
    assert_eq!(fixture::head(&fx), base);
    assert_eq!(status(&d)["ahead"], 1);
    assert!(only_upper(&d).join(fixture::README).exists());
    // Someone else pushes first.
    let theirs = fixture::add_commit(&fx, "theirs.txt", b"theirs\n");

    let (code, body) = push(&d);
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["code"], "REMOTE_MOVED", "{body}");
    let msg = body["error"].as_str().expect("error");
    assert!(
        msg.contains(&theirs) && msg.contains("fetch the new commit"),
        "{msg}"
    );
    let out = cli(&d, &["push"]);
    assert_eq!(out.status.code(), Some(1), "a refusal exits 1");
    assert!(String::from_utf8_lossy(&out.stderr).contains("fetch the new commit"));
    // Nothing lost: the edit, its status, the local commit.
    assert_eq!(
        std::fs::read(ws.join(fixture::README)).expect("read"),
        b"# mine\n"
    );
    assert_eq!(
        changes(&d),
        [("modified".to_string(), "README.md".to_string())]
    );
    assert_eq!(status(&d)["ahead"], 1);
    assert_eq!(fixture::head(&fx), theirs);

    // The remote is put back where the workspace started: the same push now lands.
    let reset = run_with_timeout(
        Command::new("git")
            .arg("--git-dir")
            .arg(&fx.repo_path)
            .args(["update-ref", "refs/heads/main", &base]),
        60,
    );
    assert!(reset.status.success());
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(fixture::head(&fx), mine);
    fsck(&fx);

    // The branch moves again. A restart does not move the workspace (its local commit is
    // relative to its base); `pull` does, carrying the local commit over, and then a push works.
    let theirs2 = fixture::add_commit(&fx, "theirs2.txt", b"again\n");
    std::fs::write(ws.join("mine.txt"), b"mine too\n").expect("add");
    let before = commit(&d, "mine too");
    let (code, body) = push(&d);
    assert_eq!(code, 409, "{body}");
    d.restart().unwrap_or_else(|e| panic!("{e}"));
    let ws = d.workspace.clone();
    let st = status(&d);
    assert_eq!(st["base"], mine.as_str(), "{st}");
    assert_eq!(
        (st["head"].as_str(), st["ahead"].as_u64()),
        (Some(before.as_str()), Some(1))
    );
    assert!(
        !ws.join("theirs2.txt").exists(),
        "a restart does not move the workspace"
    );
    let (code, body) = http::post(&d.http_addr, "/api/git/pull", "{}");
    assert_eq!(code, 200, "{body}\n{}", d.log());
    let body = json(&body);
    assert_eq!(body["carried_commits"], 1, "{body}");
    assert_eq!(
        std::fs::read(ws.join("mine.txt")).expect("kept"),
        b"mine too\n"
    );
    assert_eq!(
        std::fs::read(ws.join("theirs2.txt")).expect("theirs"),
        b"again\n"
    );
    assert_eq!(changes(&d), [("added".to_string(), "mine.txt".to_string())]);
    let st = status(&d);
    assert_eq!(
        (st["base"].as_str(), st["ahead"].as_u64()),
        (Some(theirs2.as_str()), Some(1))
    );
    let last = st["head"].as_str().expect("head").to_string();
    assert_eq!(body["carried"], last.as_str(), "{body}");
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(fixture::head(&fx), last);
    fsck(&fx);
    let tree = archive(&fx, &last);
    assert_same_tree(&ws, tree.path());
    assert!(tree.path().join("theirs2.txt").exists() && tree.path().join("mine.txt").exists());
    let _ = theirs2;

    // reset drops what is left in the upper layer.
    std::fs::write(ws.join(fixture::README), b"# scratch\n").expect("modify");
    let (code, body) = http::post(&d.http_addr, "/api/git/reset", r#"{"path":"/"}"#);
    assert_eq!(code, 200, "{body}");
    assert!(changes(&d).is_empty());
}

#[test]
fn a_thousand_files_push_to_a_local_repository_with_compare_and_swap() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    let ws = d.workspace.clone();
    for i in 0..1000 {
        let dir = ws.join(format!("many/d{:02}", i / 100));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(format!("f{i:04}.txt")), format!("file {i}\n")).expect("write");
    }
    let c = commit(&d, "a thousand files");
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert!(body["objects"].as_u64().expect("objects") >= 1000, "{body}");
    assert_eq!(fixture::head(&fx), c);
    fsck(&fx);
    assert_same_tree(&ws, archive(&fx, &c).path());
    assert!(
        walk(&only_upper(&d)).is_empty(),
        "pushed files left the upper layer"
    );
    assert_eq!(
        std::fs::read(ws.join("many/d07/f0777.txt")).expect("read"),
        b"file 777\n"
    );

    // The local repository's branch moved: compare-and-swap refuses, nothing is lost.
    let theirs = fixture::add_commit(&fx, "theirs.txt", b"x\n");
    std::fs::write(ws.join("many/d00/f0000.txt"), b"changed\n").expect("modify");
    commit(&d, "after theirs");
    let (code, body) = push(&d);
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["code"], "REMOTE_MOVED");
    assert_eq!(fixture::head(&fx), theirs);
    assert_eq!(
        std::fs::read(ws.join("many/d00/f0000.txt")).expect("kept"),
        b"changed\n"
    );
}

#[test]
fn a_file_written_while_a_push_is_in_flight_stays() {
    let fx = fixture::standard();
    let (server, d) = mega_daemon(&fx);
    mount(&d, "/");
    let ws = d.workspace.clone();
    std::fs::write(ws.join(fixture::README), b"v1\n").expect("modify");
    std::fs::write(ws.join("pushed.txt"), b"pushed\n").expect("add");
    let c = commit(&d, "v1");
    server.set_fault(Fault::SlowPush(Duration::from_secs(3)));
    let before = server.counts().receive_pack;
    let addr = d.http_addr.clone();
    let pusher = std::thread::spawn(move || http::post(&addr, "/api/git/push", "{}"));
    let t0 = Instant::now();
    while server.counts().receive_pack == before {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the push never reached the server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The pack is on its way: edit a pushed file, and write a new one.
    std::fs::write(ws.join(fixture::README), b"v2, written during the push\n").expect("write");
    std::fs::write(ws.join("during.txt"), b"during\n").expect("add");
    let (code, body) = pusher.join().expect("push thread");
    assert_eq!(code, 200, "{body}\n{}", d.log());
    server.set_fault(Fault::None);
    assert_eq!(fixture::head(&fx), c);
    let pushed = archive(&fx, &c);
    assert_eq!(
        std::fs::read(pushed.path().join(fixture::README)).expect("pushed"),
        b"v1\n"
    );
    // Both edits made during the push are still there, and show as changes to the new base.
    assert_eq!(
        std::fs::read(ws.join(fixture::README)).expect("kept"),
        b"v2, written during the push\n"
    );
    assert_eq!(
        std::fs::read(ws.join("during.txt")).expect("kept"),
        b"during\n"
    );
    let mut got = changes(&d);
    got.sort();
    assert_eq!(
        got,
        [
            ("added".to_string(), "during.txt".to_string()),
            ("modified".to_string(), "README.md".to_string()),
        ]
    );
    // What was pushed unchanged left the upper layer.
    assert!(!only_upper(&d).join("pushed.txt").exists());
    assert_eq!(
        std::fs::read(ws.join("pushed.txt")).expect("read"),
        b"pushed\n"
    );
}

#[test]
fn a_push_after_unmount_shows_in_the_read_only_view() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "a");
    let ws = d.workspace.clone();
    // The kernel caches the read-only view for a long time; look at it first.
    assert!(ws.join(fixture::README).exists());
    std::fs::write(ws.join("a/x.txt"), b"x\n").expect("add");
    std::fs::write(ws.join(fixture::DEEP_FILE), b"changed\n").expect("modify");
    let c = commit(&d, "in a");
    let (code, body) = http::post(&d.http_addr, "/api/fs/unmount", r#"{"path":"a"}"#);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        std::fs::read(ws.join(fixture::DEEP_FILE)).expect("read-only view"),
        fixture::DEEP_FILE_CONTENT
    );
    assert!(!ws.join("a/x.txt").exists());
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(fixture::head(&fx), c);
    // The read-only view moved with the push, though nothing of it was mounted.
    assert_eq!(
        std::fs::read(ws.join("a/x.txt")).expect("pushed file"),
        b"x\n"
    );
    assert_eq!(
        std::fs::read(ws.join(fixture::DEEP_FILE)).expect("pushed change"),
        b"changed\n"
    );
    assert_same_tree(&ws, archive(&fx, &c).path());
}

#[test]
fn a_push_waits_for_ci_mounts_that_share_the_view() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    std::fs::write(d.workspace.join(fixture::README), b"# pushed later\n").expect("modify");
    let c = commit(&d, "after the CI job");
    let (code, body) = http::post(
        &d.http_addr,
        "/antares/mounts",
        r#"{"job_id":"ci","path":"a"}"#,
    );
    assert_eq!(code, 201, "{body}\n{}", d.log());
    let (code, body) = push(&d);
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["code"], "ANTARES_MOUNTS_ACTIVE", "{body}");
    assert_eq!(fixture::head(&fx), fx.commit, "nothing was sent");
    let (code, body) = http::request(
        &d.http_addr,
        "DELETE",
        "/antares/mounts/by-job/ci",
        None,
        None,
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(fixture::head(&fx), c);
}

/// A non-bare clone of `fx` with its branch checked out, the daemon's store and workspace in
/// its ignored `target/` (as scorpio.toml.example has it), and a daemon over it with `/`
/// mounted writable. The daemon is dropped (and unmounted) before the clone.
fn clone_daemon(fx: &Fixture) -> (fixture::Worktree, Daemon) {
    let wt = fixture::Worktree::clone_of(fx);
    std::fs::write(wt.path().join(".git/info/exclude"), b"/target/\n").expect("exclude");
    let mut opts = DaemonOpts::new(wt.path().display().to_string());
    opts.store = Some(wt.path().join("target/scorpio/store"));
    opts.workspace = Some(wt.path().join("target/scorpio/workspace"));
    let d = Daemon::start_or_panic(opts);
    mount(&d, "/");
    (wt, d)
}

/// `git status --porcelain` of tracked files in the clone (untracked and ignored aside).
fn tracked_status(wt: &fixture::Worktree) -> String {
    wt.git(&["status", "--porcelain", "--untracked-files=no"])
}

#[test]
fn a_push_to_the_branch_a_clone_has_checked_out_is_refused_until_update_instead() {
    let fx = fixture::standard();
    let (wt, d) = clone_daemon(&fx);
    let ws = d.workspace.clone();
    std::fs::write(ws.join(fixture::README), b"# mine\n").expect("modify");
    let mine = commit(&d, "mine");
    let readme = std::fs::read(wt.path().join(fixture::README)).expect("clone README");
    let before = changes(&d);

    let (code, body) = push(&d);
    assert_eq!(code, 409, "{body}\n{}", d.log());
    assert_eq!(body["code"], "PUSH_REFUSED", "{body}");
    let msg = body["error"].as_str().expect("error");
    for part in [
        "refs/heads/main",
        "checked out in the working tree",
        &wt.path().display().to_string(),
        "bare repository",
        "`ref`",
        "receive.denyCurrentBranch updateInstead",
        "nothing changed in the workspace",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    let out = cli(&d, &["push"]);
    assert_eq!(out.status.code(), Some(1), "a refusal exits 1");
    assert!(String::from_utf8_lossy(&out.stderr).contains("receive.denyCurrentBranch"));
    // Nothing moved in the clone, nothing was even stored there; the workspace is as it was.
    assert_eq!(wt.git(&["rev-parse", "main"]), fx.commit);
    let stored = run_with_timeout(
        Command::new("git")
            .arg("-C")
            .arg(wt.path())
            .args(["cat-file", "-e", &mine]),
        60,
    );
    assert!(!stored.status.success(), "the pack was not stored");
    assert_eq!(
        std::fs::read(wt.path().join(fixture::README)).expect("clone README"),
        readme
    );
    assert_eq!(tracked_status(&wt), "");
    assert_eq!(changes(&d), before);
    assert_eq!(status(&d)["ahead"], 1);
    assert!(only_upper(&d).join(fixture::README).exists());
    assert_eq!(
        std::fs::read(ws.join(fixture::README)).expect("read"),
        b"# mine\n"
    );

    // git's own way out: the same push now lands and updates the clone's tree and index.
    wt.git(&["config", "receive.denyCurrentBranch", "updateInstead"]);
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(wt.git(&["rev-parse", "main"]), mine);
    assert_eq!(
        std::fs::read(wt.path().join(fixture::README)).expect("clone README"),
        b"# mine\n"
    );
    assert_eq!(tracked_status(&wt), "");
    assert!(changes(&d).is_empty());
}

#[test]
fn update_instead_moves_a_clean_clone_with_the_branch() {
    let fx = fixture::standard();
    let (wt, d) = clone_daemon(&fx);
    wt.git(&["config", "receive.denyCurrentBranch", "updateInstead"]);
    std::fs::write(wt.path().join("notes.txt"), b"untracked, mine\n").expect("untracked");
    let ws = d.workspace.clone();
    std::fs::write(ws.join(fixture::README), b"# Changed\n").expect("modify");
    std::fs::write(ws.join("a/b/new.txt"), b"new\n").expect("add");
    std::fs::remove_file(ws.join(fixture::LIB_RS)).expect("delete");
    let c = commit(&d, "three kinds of change");

    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(wt.git(&["rev-parse", "main"]), c);
    assert_eq!(wt.git(&["rev-parse", "HEAD"]), c);
    let clone = wt.path();
    assert_eq!(
        std::fs::read(clone.join(fixture::README)).expect("README"),
        b"# Changed\n"
    );
    assert_eq!(
        std::fs::read(clone.join("a/b/new.txt")).expect("new"),
        b"new\n"
    );
    assert!(!clone.join(fixture::LIB_RS).exists());
    // Tree and index are the pushed commit's; the untracked file and the ignored target/
    // (the daemon's store and mounted workspace) were left alone.
    assert_eq!(tracked_status(&wt), "");
    assert_eq!(
        wt.git(&["status", "--porcelain"]),
        "?? notes.txt",
        "only the untracked file"
    );
    assert_eq!(
        std::fs::read(clone.join("notes.txt")).expect("kept"),
        b"untracked, mine\n"
    );
    assert!(d.is_mounted());
    assert!(changes(&d).is_empty());
    assert_eq!(status(&d)["ahead"], 0);
}

#[test]
fn update_instead_refuses_while_the_clone_has_a_tracked_file_changed() {
    let fx = fixture::standard();
    let (wt, d) = clone_daemon(&fx);
    wt.git(&["config", "receive.denyCurrentBranch", "updateInstead"]);
    std::fs::write(wt.path().join(fixture::README), b"edited in the clone\n").expect("dirty");
    let ws = d.workspace.clone();
    std::fs::write(ws.join(fixture::DEEP_FILE), b"changed in the workspace\n").expect("modify");
    let c = commit(&d, "deep");

    let (code, body) = push(&d);
    assert_eq!(code, 409, "{body}\n{}", d.log());
    assert_eq!(body["code"], "PUSH_REFUSED", "{body}");
    let msg = body["error"].as_str().expect("error");
    assert!(
        msg.contains("uncommitted changes") && msg.contains(fixture::README),
        "{msg}"
    );
    assert_eq!(wt.git(&["rev-parse", "main"]), fx.commit);
    assert_eq!(
        std::fs::read(wt.path().join(fixture::README)).expect("dirty file"),
        b"edited in the clone\n"
    );
    assert_eq!(
        std::fs::read(wt.path().join(fixture::DEEP_FILE)).expect("untouched"),
        fixture::DEEP_FILE_CONTENT
    );
    assert_eq!(tracked_status(&wt), format!("M {}", fixture::README));
    assert_eq!(status(&d)["ahead"], 1);
    assert!(only_upper(&d).join(fixture::DEEP_FILE).exists());

    // Once the clone's change is gone, the same push lands.
    wt.git(&["checkout", "--", fixture::README]);
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(wt.git(&["rev-parse", "main"]), c);
    assert_eq!(
        std::fs::read(wt.path().join(fixture::DEEP_FILE)).expect("pushed"),
        b"changed in the workspace\n"
    );
    assert_eq!(tracked_status(&wt), "");
}
