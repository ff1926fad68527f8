//! `pull`: the workspace moves in place to the remote's newest commit, keeping every local edit
//! on top; what the remote now holds exactly leaves the upper layer; an edit of a path the
//! remote changed too stays and is marked as a conflict.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use support::api::{cli, commit, mount, only_upper, push, status};
use support::daemon::Daemon;
use support::fixture::{self, Fixture};
use support::http;
use support::tree::{archive, walk};

/// `POST /api/git/pull`: the status code and the JSON answer.
fn pull(d: &Daemon) -> (u16, serde_json::Value) {
    let (code, body) = http::post(&d.http_addr, "/api/git/pull", "{}");
    (code, support::api::json(&body))
}

/// Commits, in a clone of `fx`, what `change` does to its checkout, and pushes it to `main`:
/// the remote moves on without the daemon. Returns the new commit.
fn upstream(fx: &Fixture, message: &str, change: impl FnOnce(&Path)) -> String {
    let wt = fixture::Worktree::clone_of(fx);
    change(wt.path());
    let c = wt.commit_all(message);
    wt.git(&["push", "-q", "origin", "HEAD:main"]);
    assert_eq!(fixture::head(fx), c);
    c
}

/// Changes by path, with `conflict` when a pull marked one: `(path, kind, in conflict)`.
fn changes(d: &Daemon) -> Vec<(String, String, bool)> {
    let v = status(d);
    let mut out: Vec<_> = v["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap_or_default().to_string(),
                c["kind"].as_str().unwrap_or_default().to_string(),
                c.get("conflict").is_some(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_pull_moves_the_workspace_in_place_and_keeps_the_edits_on_top() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    let ws = d.workspace.clone();
    // What the kernel holds before the pull: a file's pages, a name that exists (and goes), a
    // name that does not (and comes), and inode numbers.
    assert_eq!(
        std::fs::read(ws.join(fixture::LIB_RS)).expect("read"),
        fixture::LIB_RS_CONTENT
    );
    assert!(ws.join(fixture::EXEC_FILE).exists());
    assert!(!ws.join("a/b/upstream.txt").exists());
    let deep_ino = std::fs::metadata(ws.join(fixture::DEEP_FILE))
        .expect("stat")
        .ino();
    let dir_ino = std::fs::metadata(ws.join("a/b")).expect("stat").ino();
    // Local edits: one the remote will not touch, one it will make too (same bytes).
    std::fs::write(ws.join(fixture::README), b"# mine\n").expect("modify");
    std::fs::write(ws.join("local.txt"), b"local\n").expect("add");
    std::fs::write(ws.join(fixture::SPACE_FILE), b"both sides\n").expect("modify");

    let theirs = upstream(&fx, "upstream work", |co| {
        std::fs::write(co.join(fixture::LIB_RS), b"pub fn answer() -> u32 { 43 }\n").unwrap();
        std::fs::write(co.join("a/b/upstream.txt"), b"from upstream\n").unwrap();
        std::fs::remove_file(co.join(fixture::EXEC_FILE)).unwrap();
        std::fs::write(co.join(fixture::SPACE_FILE), b"both sides\n").unwrap();
    });
    let (code, body) = pull(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(body["commit"], theirs.as_str(), "{body}");
    assert_eq!(body["previous"], fx.commit.as_str(), "{body}");
    assert_eq!(body["up_to_date"], false, "{body}");
    // The edit equal to the new commit left (with the directory its copy-up made).
    assert!(body["pruned"].as_u64().unwrap_or(0) >= 1, "{body}");
    assert_eq!(body["conflicts"], serde_json::json!([]), "{body}");

    // The kernel shows the new commit: new pages, the new name, the removed name gone.
    assert_eq!(
        std::fs::read(ws.join(fixture::LIB_RS)).expect("read"),
        b"pub fn answer() -> u32 { 43 }\n"
    );
    assert_eq!(
        std::fs::read(ws.join("a/b/upstream.txt")).expect("new file"),
        b"from upstream\n"
    );
    assert!(!ws.join(fixture::EXEC_FILE).exists(), "removed upstream");
    // In place: what did not change keeps its inode.
    let st = std::fs::metadata(ws.join(fixture::DEEP_FILE)).expect("stat");
    assert_eq!(st.ino(), deep_ino);
    assert_eq!(
        std::fs::metadata(ws.join("a/b")).expect("stat").ino(),
        dir_ino
    );
    // The edits stay on top; the one the remote made too is no change any more.
    assert_eq!(
        std::fs::read(ws.join(fixture::README)).expect("kept"),
        b"# mine\n"
    );
    assert_eq!(
        std::fs::read(ws.join("local.txt")).expect("kept"),
        b"local\n"
    );
    assert_eq!(
        std::fs::read(ws.join(fixture::SPACE_FILE)).expect("read"),
        b"both sides\n"
    );
    let v = status(&d);
    assert_eq!(v["base"], theirs.as_str(), "{v}");
    assert_eq!(
        changes(&d),
        vec![
            (fixture::README.to_string(), "modified".into(), false),
            ("local.txt".into(), "added".into(), false),
        ]
    );
    let left: Vec<String> = walk(&only_upper(&d))
        .into_keys()
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        !left.iter().any(|p| p.contains("space")),
        "the upper copy equal to the new commit left: {left:?}"
    );

    // Nothing new: up to date, nothing moves.
    let (code, body) = pull(&d);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["up_to_date"], true, "{body}");

    // The local edits now go on top of the remote's work: the push is not refused as moved.
    let c = commit(&d, "mine on theirs").1["commit"]
        .as_str()
        .expect("commit")
        .to_string();
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(fixture::head(&fx), c);
    let tree = archive(&fx, &c);
    assert_eq!(
        std::fs::read(tree.path().join("a/b/upstream.txt")).expect("theirs"),
        b"from upstream\n"
    );
    assert_eq!(
        std::fs::read(tree.path().join(fixture::README)).expect("mine"),
        b"# mine\n"
    );
}

#[test]
fn an_edit_the_remote_also_changed_stays_and_is_a_conflict_until_committed() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    let ws = d.workspace.clone();
    std::fs::write(ws.join(fixture::README), b"# mine\n").expect("modify");
    std::fs::remove_file(ws.join(fixture::DEEP_FILE)).expect("delete");
    let theirs = upstream(&fx, "theirs", |co| {
        std::fs::write(co.join(fixture::README), b"# theirs\n").unwrap();
        std::fs::write(co.join(fixture::DEEP_FILE), b"theirs too\n").unwrap();
    });
    let (code, body) = pull(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    let mut conflicts: Vec<&str> = body["conflicts"]
        .as_array()
        .expect("conflicts")
        .iter()
        .map(|c| c["path"].as_str().unwrap_or_default())
        .collect();
    conflicts.sort();
    assert_eq!(
        conflicts,
        vec![fixture::README, fixture::DEEP_FILE],
        "{body}"
    );
    assert!(body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("conflict"));
    // The local versions stay: the edit and the deletion.
    assert_eq!(
        std::fs::read(ws.join(fixture::README)).expect("kept"),
        b"# mine\n"
    );
    assert!(!ws.join(fixture::DEEP_FILE).exists());
    let v = status(&d);
    assert_eq!(v["base"], theirs.as_str());
    assert_eq!(v["conflicts"], 2, "{v}");
    let readme = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == fixture::README)
        .expect("README changed")
        .clone();
    assert_eq!(readme["conflict"]["since"], fx.commit.as_str(), "{readme}");
    assert_eq!(readme["conflict"]["pulled"], theirs.as_str(), "{readme}");
    let out = cli(&d, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[conflict"), "{text}");

    // Kept across a restart.
    let mut d = d;
    d.restart().expect("restart");
    assert_eq!(status(&d)["conflicts"], 2);

    // A commit takes the local versions: the conflicts are settled.
    let (code, body) = commit(&d, "mine wins");
    assert_eq!(code, 200, "{body}");
    let v = status(&d);
    assert_eq!(v["conflicts"], 0, "{v}");
}

#[test]
fn unpushed_commits_come_along_as_one_and_edits_beyond_them_or_ci_mounts_hold_the_pull() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    let ws = d.workspace.clone();
    std::fs::write(ws.join(fixture::README), b"# mine\n").expect("modify");
    let (_, first) = commit(&d, "first, not pushed yet");
    std::fs::write(ws.join("second.txt"), b"second\n").expect("add");
    commit(&d, "second, not pushed yet");
    std::fs::write(ws.join("uncommitted.txt"), b"scratch\n").expect("add");
    let theirs = upstream(&fx, "theirs", |co| {
        std::fs::write(co.join("theirs.txt"), b"theirs\n").unwrap();
    });
    // Edits beyond the local commits: the pull would have to sweep them in, so it waits.
    let (code, body) = pull(&d);
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["code"], "COMMITS_AHEAD", "{body}");
    assert_eq!(status(&d)["base"], fx.commit.as_str(), "nothing moved");
    assert!(!ws.join("theirs.txt").exists());
    let out = cli(&d, &["pull"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    // Without them, the two local commits come along as one on the new base.
    let (code, body) = http::post(
        &d.http_addr,
        "/api/git/reset",
        r#"{"path":"/uncommitted.txt"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = pull(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(body["carried_commits"], 2, "{body}");
    let st = status(&d);
    assert_eq!(st["base"], theirs.as_str(), "{st}");
    assert_eq!(st["ahead"], 1, "{st}");
    assert_eq!(st["head"], body["carried"], "{st}");
    assert_ne!(st["head"], first["commit"]);
    assert!(ws.join("theirs.txt").exists());
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    let landed = fixture::head(&fx);
    let repo = fx.open();
    let c = repo
        .find_commit(git2::Oid::from_str(&landed).expect("oid"))
        .expect("landed commit");
    assert_eq!(c.parent_id(0).expect("parent").to_string(), theirs);
    let msg = c.message().unwrap_or_default();
    assert!(
        msg.contains("first, not pushed yet") && msg.contains("second, not pushed yet"),
        "{msg}"
    );
    let tree = archive(&fx, &landed);
    for (path, bytes) in [
        (fixture::README, &b"# mine\n"[..]),
        ("second.txt", b"second\n"),
        ("theirs.txt", b"theirs\n"),
    ] {
        assert_eq!(
            std::fs::read(tree.path().join(path)).expect("in the push"),
            bytes
        );
    }
    assert!(!tree.path().join("uncommitted.txt").exists());

    // CI mounts sharing the view hold a pull back.
    upstream(&fx, "theirs again", |co| {
        std::fs::write(co.join("theirs2.txt"), b"theirs\n").unwrap();
    });
    let (code, body) = http::post(
        &d.http_addr,
        "/antares/mounts",
        r#"{"job_id":"ci","path":"a"}"#,
    );
    assert_eq!(code, 201, "{body}\n{}", d.log());
    let before = status(&d)["base"].clone();
    let (code, body) = pull(&d);
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["code"], "ANTARES_MOUNTS_ACTIVE", "{body}");
    assert_eq!(status(&d)["base"], before);
    let (code, body) = http::request(
        &d.http_addr,
        "DELETE",
        "/antares/mounts/by-job/ci",
        None,
        None,
    );
    assert_eq!(code, 200, "{body}");
    let out = cli(&d, &["pull"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", d.log());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("moved from"),
        "{out:?}"
    );
    assert!(ws.join("theirs2.txt").exists());
}

#[test]
fn a_pull_with_nothing_writable_moves_the_read_only_view() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let ws = d.workspace.clone();
    assert_eq!(
        std::fs::read(ws.join(fixture::DEEP_FILE)).expect("read"),
        fixture::DEEP_FILE_CONTENT
    );
    assert!(!ws.join("a/new.txt").exists());
    let readme_ino = std::fs::metadata(ws.join(fixture::README))
        .expect("stat")
        .ino();
    let theirs = upstream(&fx, "theirs", |co| {
        std::fs::write(co.join(fixture::DEEP_FILE), b"deeper\n").unwrap();
        std::fs::write(co.join("a/new.txt"), b"new\n").unwrap();
    });
    let out = cli(&d, &["pull"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", d.log());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&theirs),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read(ws.join(fixture::DEEP_FILE)).expect("read"),
        b"deeper\n"
    );
    assert_eq!(std::fs::read(ws.join("a/new.txt")).expect("new"), b"new\n");
    assert_eq!(
        std::fs::metadata(ws.join(fixture::README))
            .expect("stat")
            .ino(),
        readme_ino
    );
    assert_eq!(status(&d)["base"], theirs.as_str());
    // And it stays there over a restart.
    let mut d = d;
    d.restart().expect("restart");
    assert_eq!(status(&d)["base"], theirs.as_str());
    assert_eq!(
        std::fs::read(d.workspace.join("a/new.txt")).expect("new"),
        b"new\n"
    );
}
