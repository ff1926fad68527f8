//! Version control from the upper layer: status, diff, commit and reset (push: tests/push.rs).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use support::api::{changes as status, cli, commit_body as commit, mount};
use support::daemon::{run_with_timeout, Daemon};
use support::fixture::{self, Fixture};
use support::http;
use support::mega_server::MegaServer;

/// The edits issue #4 names, on the standard fixture mounted whole.
fn edit(root: &std::path::Path) {
    std::fs::write(root.join("README.md"), b"# Changed\n").expect("modify");
    std::fs::write(root.join("new.txt"), b"new\n").expect("add");
    std::fs::remove_file(root.join("src/lib.rs")).expect("delete");
    let p = root.join("dir with space/file name.txt");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod +x");
    std::fs::remove_file(root.join("empty.txt")).expect("rm");
    std::os::unix::fs::symlink("README.md", root.join("empty.txt")).expect("file -> symlink");
    std::fs::rename(root.join("a/b/d"), root.join("a/dd")).expect("rename a directory");
    std::fs::remove_dir_all(root.join("ünïcødé")).expect("delete a whole directory");
    // Copied up, rewritten with the same bytes: not a change.
    std::fs::write(root.join("bin/run.sh"), fixture::EXEC_FILE_CONTENT).expect("same content");
}

#[test]
fn status_lists_exactly_the_changes() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    assert!(status(&d, "").is_empty(), "a fresh mount has no changes");
    edit(&d.workspace);
    let got = status(&d, "");
    let want: Vec<(String, String)> = [
        ("modified", "README.md"),
        ("deleted", "a/b/d"),
        ("added", "a/dd/e/deep.txt"),
        ("modified", "dir with space/file name.txt"),
        ("modified", "empty.txt"),
        ("added", "new.txt"),
        ("deleted", "src/lib.rs"),
        ("deleted", "ünïcødé"),
    ]
    .iter()
    .map(|(k, p)| (k.to_string(), p.to_string()))
    .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort_by(|a, b| a.1.cmp(&b.1));
    let mut want_sorted = want;
    want_sorted.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(got_sorted, want_sorted);
    // One mounted path at a time, and a path that is not mounted is a 404.
    assert_eq!(status(&d, "?path=/").len(), got.len());
    assert_eq!(http::get(&d.http_addr, "/api/git/status?path=src").0, 404);
}

#[test]
fn diff_is_unified_with_modes_and_binaries() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    edit(&d.workspace);
    let mut big = fixture::big_blob_content();
    big[10] ^= 0xff;
    std::fs::write(d.workspace.join(fixture::BIG_FILE), &big).expect("binary change");
    let (code, text) = http::get(&d.http_addr, "/api/git/diff");
    assert_eq!(code, 200, "{text}");
    for needle in [
        "diff --git a/README.md b/README.md",
        "--- a/README.md\n+++ b/README.md\n",
        "-# Fixture repository\n",
        "+# Changed\n",
        "new file mode 100644",
        "+new\n",
        "deleted file mode 100644",
        "old mode 100644\nnew mode 100755",
        "Binary files a/big/blob.bin and b/big/blob.bin differ",
        "deleted directory 040000",
    ] {
        assert!(text.contains(needle), "diff lacks {needle:?}:\n{text}");
    }
    // The CLI prints the same, and status as `X path` lines.
    let cli = |args: &[&str]| cli(&d, args);
    let out = cli(&["diff"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("+# Changed"));
    let out = cli(&["status", "/"]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.lines().any(|l| l == "M README.md")
            && s.lines().any(|l| l == "A new.txt")
            && s.lines().any(|l| l == "D src/lib.rs"),
        "{s}"
    );
}

#[test]
fn status_on_a_large_tree_reads_no_untouched_directory() {
    let n = 50_000;
    let fx: Fixture = fixture::generated(n, 100);
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    mount(&d, "/");
    let touched = [1usize, 2, 3, 150, 151, 30_000, 30_001, 49_998, 49_999];
    for i in touched {
        let p = d.workspace.join(fixture::generated_path(i, n, 100));
        std::fs::write(&p, format!("changed {i}\n")).expect("modify");
    }
    std::fs::write(
        d.workspace
            .join(fixture::generated_path(5, n, 100))
            .with_file_name("added.txt"),
        b"new\n",
    )
    .expect("add");
    // The writes' look-ups have sizes and small blobs of their neighbours fetched ahead in the
    // background (the mega remote's read-ahead); let that finish before counting status alone.
    let mut last = server.counts();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let now = server.counts();
        if now == last {
            break;
        }
        last = now;
    }
    server.reset_counts();
    let changes = status(&d, "");
    assert_eq!(changes.len(), 10, "{changes:?}");
    let c = server.counts();
    assert!(
        c.tree.is_empty() && c.content_hash.is_empty(),
        "status listed directories: {c:?}"
    );
    assert!(
        c.blob_get.is_empty() && c.blob_head.is_empty(),
        "status fetched blobs: {c:?}"
    );
}

#[test]
fn reset_drops_changes_under_a_path_or_all_of_them() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    edit(&d.workspace);
    // Only under a/: the renamed directory comes back, everything else stays changed.
    let (code, body) = http::post(&d.http_addr, "/api/git/reset", r#"{"path":"a"}"#);
    assert_eq!(code, 200, "{body}");
    assert!(d.workspace.join("a/b/d/e/deep.txt").exists() && !d.workspace.join("a/dd").exists());
    let left = status(&d, "");
    assert!(!left.iter().any(|(_, p)| p.starts_with("a/")), "{left:?}");
    assert!(left.iter().any(|(_, p)| p == "README.md"), "{left:?}");
    // A path that is not inside any writable path is refused.
    let (code, _) = http::post(&d.http_addr, "/api/git/reset", r#"{"path":"../x"}"#);
    assert_eq!(code, 400);
    // Everything, through the CLI.
    let out = cli(&d, &["reset", "/"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(status(&d, "").is_empty());
    assert_eq!(
        std::fs::read(d.workspace.join("README.md")).expect("read"),
        fixture::README_CONTENT
    );
    assert_eq!(
        std::fs::read(d.workspace.join("src/lib.rs")).expect("restored"),
        fixture::LIB_RS_CONTENT
    );
    assert!(std::fs::symlink_metadata(d.workspace.join("empty.txt"))
        .expect("stat")
        .is_file());
    // Still writable afterwards.
    std::fs::write(d.workspace.join("after.txt"), b"x").expect("write after reset");
}

/// The tree git itself makes from the same edits in a checkout of the fixture.
fn git_tree_after_edits(fx: &Fixture) -> String {
    let wt = fixture::Worktree::clone_of(fx);
    let git = |args: &[&str]| wt.git(args);
    edit(wt.path());
    git(&["add", "-A"]);
    git(&["write-tree"])
}

#[test]
fn commit_builds_the_tree_git_would_and_stacks() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    let (code, v) = commit(&d, r#"{"message":"nothing yet"}"#);
    assert_eq!(
        (code, v["code"].as_str()),
        (409, Some("NOTHING_TO_COMMIT")),
        "{v}"
    );
    edit(&d.workspace);
    let (code, v) = commit(&d, r#"{"message":"   "}"#);
    assert_eq!(code, 400, "{v}");
    let (code, v) = commit(
        &d,
        r#"{"message":"edits","author":{"name":"Ada","email":"ada@example.com"}}"#,
    );
    assert_eq!(code, 200, "{v}\n{}", d.log());
    assert_eq!(
        v["tree"].as_str(),
        Some(git_tree_after_edits(&fx).as_str()),
        "tree differs from git's"
    );
    assert_eq!(v["parent"].as_str(), Some(fx.commit.as_str()));
    assert_eq!(v["ahead"], 1);
    let first = v["commit"].as_str().expect("commit").to_string();
    // The commit object is well formed and names its author.
    let out = run_with_timeout(
        Command::new("git")
            .arg("--git-dir")
            .arg(d.store.join("git"))
            .args(["cat-file", "-p", &first]),
        60,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("parent {}", fx.commit))
            && text.contains("author Ada <ada@example.com>"),
        "{text}"
    );
    // The CLI commits too (nothing new here, so it is refused with exit code 1).
    let out = cli(&d, &["commit", "-m", "x"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to commit"));
    // Nothing new since: refused; then a second commit stacks on the first.
    assert_eq!(commit(&d, r#"{"message":"again"}"#).0, 409);
    std::fs::write(d.workspace.join("second.txt"), b"2\n").expect("write");
    let (code, v) = http::post(&d.http_addr, "/api/commit", r#"{"message":"second"}"#);
    assert_eq!(code, 200, "{v}");
    let v: serde_json::Value = serde_json::from_str(&v).expect("JSON");
    assert_eq!(v["parent"].as_str(), Some(first.as_str()));
    assert_eq!(v["ahead"], 2);
    let (_, body) = http::get(&d.http_addr, "/api/git/status");
    let s: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(s["ahead"], 2);
    assert_eq!(s["head"].as_str(), v["commit"].as_str());
}

#[test]
fn a_directory_made_over_a_deleted_one_is_committed_without_its_old_entries() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    std::fs::remove_dir_all(d.workspace.join(fixture::SPACE_DIR)).expect("rm -r");
    std::fs::create_dir(d.workspace.join(fixture::SPACE_DIR)).expect("mkdir (opaque)");
    std::fs::write(d.workspace.join("dir with space/only.txt"), b"fresh\n").expect("write");
    let (code, v) = commit(&d, r#"{"message":"replace a directory"}"#);
    assert_eq!(code, 200, "{v}\n{}", d.log());
    let out = run_with_timeout(
        Command::new("git")
            .env(
                "GIT_ALTERNATE_OBJECT_DIRECTORIES",
                fx.repo_path.join("objects"),
            )
            .arg("--git-dir")
            .arg(d.store.join("git"))
            .args(["ls-tree", "-r", "--name-only"])
            .arg(v["commit"].as_str().expect("commit")),
        60,
    );
    let names = String::from_utf8_lossy(&out.stdout);
    assert!(
        names.lines().any(|n| n == "dir with space/only.txt")
            && !names.lines().any(|n| n == fixture::SPACE_FILE),
        "{names}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
