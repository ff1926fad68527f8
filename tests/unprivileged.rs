//! The read-only workspace as a plain user: the `scorpio` binary run as the system user
//! `scorpio-dev` on a host prepared as desktop distributions ship FUSE (`/dev/fuse` mode 0666,
//! setuid-root `fusermount3`). It mounts through fusermount3, serves `git archive`'s tree,
//! answers `/health`, unmounts on SIGTERM and clears the stale mount a SIGKILL left behind.
//! Writable paths as that user: edits, status, commit, push into a repository the user owns
//! (API and CLI), edits kept over a restart, reset, diff, and an unmount refused while a
//! process of the user is inside. The workspace is read-only to the kernel until its first
//! writable path, when a read-write mount takes its place. Antares as that user:
//! `unprivileged/antares.rs`.
//!
//! The test itself runs as root (as every test). Root cannot enter a FUSE mount another user
//! made without `allow_other`, so the tree is read as that user (`tar` under `setpriv`).

mod support;

// The daemon as the user and what the tests do as the user.
#[path = "unprivileged/harness.rs"]
mod harness;

// Antares (per-job mounts) as the user.
#[path = "unprivileged/antares.rs"]
mod antares;

// The README's commands as the user, from a clone to a push.
#[path = "unprivileged/readme.rs"]
mod readme;

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::{
    api_as_user, api_ok, as_user, cli_ok, commit_as_user, pairs, scorpio_as, sh_in_workspace,
    sh_ok, status_as_user, Holder, PlainDaemon, EDITS,
};
use support::api::change_pairs;
use support::daemon::run_with_timeout;
use support::fixture;
use support::http;
use support::mountinfo::{mounts_at, superblock_read_only};
use support::tree::{archive, assert_same_tree, walk};

#[test]
fn a_plain_user_mounts_the_read_only_workspace() {
    let fx = fixture::standard();
    let want = archive(&fx, &fx.commit);
    let mut d = PlainDaemon::new(&fx);
    d.start();

    // Mounted by the user, through fusermount3.
    let top = mounts_at(&d.workspace).pop().expect("a mount");
    assert!(
        top.fstype.starts_with("fuse") && top.options.contains(&format!("user_id={}", d.user.uid)),
        "not a FUSE mount of uid {}: {top:?}",
        d.user.uid
    );

    // The tree, read as the user (root may not enter another user's FUSE mount).
    assert_same_tree(d.copy_of_workspace().path(), want.path());

    // Not remounted read-only (that needs root): the daemon itself refuses writes.
    for target in ["new-file", fixture::DEEP_FILE] {
        let out = run_with_timeout(
            as_user(&d.user, "sh")
                .arg("-c")
                // tee reports the errno (dash's echo says "I/O error" for any failed write).
                .arg("printf x | tee -a \"$1\" >/dev/null")
                .arg("sh")
                .arg(d.workspace.join(target)),
            20,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("Read-only file system"),
            "a write to {target} was not refused with EROFS: {err}\n{}",
            d.report()
        );
    }

    let (status, body) = http::get(&d.http_addr, "/health");
    assert_eq!(status, 200, "{body}");

    d.stop_cleanly();
}

#[test]
fn a_plain_users_stale_mount_is_cleared_by_the_next_start() {
    let fx = fixture::standard();
    let mut d = PlainDaemon::new(&fx);
    d.start();
    d.signal(libc::SIGKILL);
    let _ = d.wait();
    assert!(d.fuse_mounted(), "SIGKILL should leave a stale mount");

    d.start();
    let mounts = mounts_at(&d.workspace);
    assert_eq!(
        mounts
            .iter()
            .filter(|m| m.fstype.starts_with("fuse"))
            .count(),
        1,
        "the stale mount was not cleared: {mounts:?}\n{}",
        d.report()
    );
    let out = run_with_timeout(
        as_user(&d.user, "cat").arg(d.workspace.join(fixture::DEEP_FILE)),
        20,
    );
    assert_eq!(out.stdout, fixture::DEEP_FILE_CONTENT, "{}", d.report());

    d.stop_cleanly();
}

#[test]
fn a_plain_users_busy_workspace_is_detached_on_sigterm() {
    let fx = fixture::standard();
    let mut d = PlainDaemon::new(&fx);
    d.start();
    // A user of the mount (its cwd inside) makes `fusermount3 -u` fail: the daemon detaches
    // lazily instead (the user cannot abort the connection through fusectl).
    let busy = Holder::start(&d, "cd a && exec sleep 60", "cwd", "a");

    d.signal(libc::SIGTERM);
    let status = d.wait();
    drop(busy);
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        d.report()
    );
    assert!(!d.fuse_mounted(), "still mounted\n{}", d.report());
    assert!(
        d.report().contains("detached lazily"),
        "the busy mount was not detached lazily\n{}",
        d.report()
    );
}

#[test]
fn a_plain_user_edits_a_writable_path_and_commits() {
    let fx = fixture::standard();
    let mut d = PlainDaemon::new(&fx);
    d.start();
    let (code, body) = api_as_user(&d, "POST", "/api/fs/mount", Some(r#"{"path":"/"}"#));
    assert_eq!(code, 200, "mount: {body}\n{}", d.report());

    // Create, modify, delete a lower file (a whiteout), remove a lower directory, and make a
    // new directory where a lower one was deleted (opaque).
    for step in EDITS {
        let out = sh_in_workspace(&d, step);
        assert!(
            out.status.success(),
            "{step}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            d.report()
        );
    }
    let out = sh_in_workspace(
        &d,
        "cat new.txt README.md; ls src a/b/d 'dir with space'; test ! -e src/lib.rs && test ! -e a/b/d/e && echo gone",
    );
    let seen = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{seen}\n{}", d.report());
    assert!(
        seen.starts_with("new\n# Changed\n") && seen.ends_with("gone\n"),
        "{seen}"
    );
    assert!(
        seen.contains("only.txt") && !seen.contains("file name.txt") && !seen.contains("lib.rs"),
        "deleted names still listed: {seen}"
    );

    let (code, body) = api_as_user(&d, "GET", "/api/git/status", None);
    assert_eq!(code, 200, "status: {body}");
    let mut got = change_pairs(&body);
    got.sort_by(|a, b| a.1.cmp(&b.1));
    let want: Vec<(String, String)> = [
        ("modified", "README.md"),
        ("deleted", "a/b/d/e"),
        ("deleted", "dir with space"),
        ("added", "dir with space/only.txt"),
        ("added", "new.txt"),
        ("deleted", "src/lib.rs"),
    ]
    .iter()
    .map(|(k, p)| (k.to_string(), p.to_string()))
    .collect();
    assert_eq!(got, want, "status as the user\n{}", d.report());

    let (code, body) = api_as_user(
        &d,
        "POST",
        "/api/git/commit",
        Some(r#"{"message":"plain edits"}"#),
    );
    assert_eq!(code, 200, "commit: {body}\n{}", d.report());
    let v: serde_json::Value = serde_json::from_str(&body).expect("commit is JSON");
    let commit = v["commit"].as_str().expect("a commit id").to_string();
    let git = d._dir.path().join("store/git");
    // The store holds what the commit made; the base's unchanged trees stay in the remote.
    let remote_objects = fx.repo_path.join("objects");
    let out = run_with_timeout(
        Command::new("git")
            .env("GIT_ALTERNATE_OBJECT_DIRECTORIES", &remote_objects)
            .arg("--git-dir")
            .arg(&git)
            .args(["ls-tree", "-r", "--name-only", &commit]),
        30,
    );
    assert!(
        out.status.success(),
        "ls-tree: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout).to_string();
    let names: Vec<&str> = tree.lines().collect();
    for present in [
        "new.txt",
        "README.md",
        "dir with space/only.txt",
        fixture::DEEP_FILE,
    ] {
        assert!(names.contains(&present), "{present} not in {names:?}");
    }
    for absent in ["src/lib.rs", fixture::DEEPEST_FILE, fixture::SPACE_FILE] {
        assert!(!names.contains(&absent), "{absent} still in {names:?}");
    }
    let out = run_with_timeout(
        Command::new("git")
            .env("GIT_ALTERNATE_OBJECT_DIRECTORIES", &remote_objects)
            .arg("--git-dir")
            .arg(&git)
            .arg("show")
            .arg(format!("{commit}:README.md")),
        30,
    );
    assert_eq!(out.stdout, b"# Changed\n");

    d.stop_cleanly();
}

/// The user's repository after a push: its HEAD's branch is `commit`, `git fsck --strict`
/// finds nothing, and the workspace, read as the user, is `git archive` of `commit`.
fn assert_pushed(d: &PlainDaemon, commit: &str) {
    assert_eq!(
        d.git(&["rev-parse", "HEAD"]).trim(),
        commit,
        "{}",
        d.report()
    );
    d.git(&["fsck", "--strict"]);
    assert_same_tree(d.copy_of_workspace().path(), d.archive(commit).path());
}

#[test]
fn a_plain_user_pushes_into_a_repository_it_owns() {
    let fx = fixture::standard();
    let mut d = PlainDaemon::new(&fx);
    d.start();
    api_ok(&d, "POST", "/api/fs/mount", Some(r#"{"path":"/"}"#));
    // Add, modify, delete (and the directory the deleted file leaves empty: git keeps none).
    sh_ok(
        &d,
        "printf 'new\\n' > a/new.txt && printf '# Changed\\n' > README.md && rm src/lib.rs && rmdir src",
    );
    // The CLI, as the user, finds the daemon through the config's http_addr.
    let mut lines: Vec<String> = cli_ok(&d, &["status"])
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(lines, ["A a/new.txt", "D src", "M README.md"]);

    let commit = commit_as_user(&d, "plain push");
    let pushed = api_ok(&d, "POST", "/api/git/push", Some("{}"));
    assert_eq!(pushed["commit"], commit.as_str(), "{pushed}");
    assert_pushed(&d, &commit);
    // The upper layer was pruned: empty on disk, nothing differs from the pushed commit,
    // nothing is ahead.
    let uppers = d.upper_layers();
    assert!(
        uppers.len() == 1 && walk(&uppers[0]).is_empty(),
        "the pushed edits are still in the upper layer: {:?}",
        uppers.iter().map(|u| walk(u)).collect::<Vec<_>>()
    );
    let (status, changes) = status_as_user(&d);
    assert_eq!(changes, pairs(&[]), "{status}\n{}", d.report());
    assert_eq!(status["ahead"], 0, "{status}");
    assert_eq!(status["base"], commit.as_str(), "{status}");
    assert_eq!(
        sh_ok(&d, "cat a/new.txt README.md && test ! -e src && echo gone"),
        "new\n# Changed\ngone\n"
    );

    // Once more, committed and pushed with the CLI.
    sh_ok(&d, "printf 'second\\n' > a/new.txt");
    let out = cli_ok(&d, &["commit", "-m", "second plain push"]);
    let second = out
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        second.len() == 40 && out.contains("(1 ahead of the mounted commit)"),
        "commit: {out}"
    );
    let out = cli_ok(&d, &["push"]);
    assert!(out.starts_with(&format!("pushed {second} ")), "push: {out}");
    assert_pushed(&d, &second);
    assert_eq!(status_as_user(&d).1, pairs(&[]));
    assert_eq!(sh_ok(&d, "cat a/new.txt"), "second\n");

    d.stop_cleanly();
}

#[test]
fn a_plain_users_edits_outlive_a_restart_and_one_is_reset() {
    let fx = fixture::standard();
    let mut d = PlainDaemon::new(&fx);
    d.start();
    api_ok(&d, "POST", "/api/fs/mount", Some(r#"{"path":"a"}"#));
    // One change committed and not pushed, two not committed (an added file, a deleted one).
    sh_ok(&d, "printf 'committed\\n' > a/b/c.txt");
    let commit = commit_as_user(&d, "not pushed");
    sh_ok(&d, "printf 'new\\n' > a/new.txt && rm a/b/d/e/deep.txt");
    let edits = pairs(&[
        ("modified", "a/b/c.txt"),
        ("deleted", "a/b/d/e/deep.txt"),
        ("added", "a/new.txt"),
    ]);
    assert_eq!(status_as_user(&d).1, edits, "{}", d.report());

    d.stop_cleanly();
    d.start();

    let listed = api_ok(&d, "GET", "/api/fs/mpoint", None);
    let paths: Vec<&str> = listed["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["path"].as_str())
        .collect();
    assert_eq!(paths, ["a"], "{listed}");
    assert_eq!(
        sh_ok(
            &d,
            "cat a/b/c.txt a/new.txt && test ! -e a/b/d/e/deep.txt && echo gone"
        ),
        "committed\nnew\ngone\n"
    );
    let (status, changes) = status_as_user(&d);
    assert_eq!(changes, edits, "{status}\n{}", d.report());
    assert_eq!(status["ahead"], 1, "{status}");
    assert_eq!(status["head"], commit.as_str(), "{status}");

    // Resetting the deleted file brings it back and leaves the other two changes.
    api_ok(
        &d,
        "POST",
        "/api/git/reset",
        Some(r#"{"path":"a/b/d/e/deep.txt"}"#),
    );
    assert_eq!(
        status_as_user(&d).1,
        pairs(&[("modified", "a/b/c.txt"), ("added", "a/new.txt")]),
        "{}",
        d.report()
    );
    assert_eq!(
        sh_ok(&d, "cat a/b/d/e/deep.txt a/b/c.txt a/new.txt").as_bytes(),
        [fixture::DEEPEST_FILE_CONTENT, b"committed\nnew\n"].concat()
    );
    let (code, diff) = api_as_user(&d, "GET", "/api/git/diff", None);
    assert_eq!(code, 200, "diff: {diff}");
    for part in ["a/b/c.txt", "+committed", "a/new.txt", "+new"] {
        assert!(diff.contains(part), "{part} not in the diff:\n{diff}");
    }
    assert!(
        !diff.contains("deep.txt"),
        "the reset change is in the diff:\n{diff}"
    );

    d.stop_cleanly();
}

#[test]
fn a_plain_users_busy_writable_path_is_not_unmounted() {
    let fx = fixture::standard();
    let mut d = PlainDaemon::new(&fx);
    d.start();
    api_ok(&d, "POST", "/api/fs/mount", Some(r#"{"path":"a"}"#));
    sh_ok(&d, "printf 'kept\\n' > a/kept.txt");
    let mounted = || {
        let v = api_ok(&d, "GET", "/api/fs/mpoint", None);
        v["mounts"].as_array().map_or(0, Vec::len)
    };
    // The busy check reads /proc: as a plain user, of the user's own processes.
    for (script, link, target) in [
        ("cd a/b && exec sleep 60", "cwd", "a/b"),
        ("exec 3<a/kept.txt && exec sleep 60", "fd/3", "a/kept.txt"),
    ] {
        let holder = Holder::start(&d, script, link, target);
        let (code, body) = api_as_user(&d, "POST", "/api/fs/unmount", Some(r#"{"path":"a"}"#));
        assert_eq!(code, 409, "{script}: {body}\n{}", d.report());
        let pid = holder.pid().to_string();
        assert!(
            body.contains("BUSY") && body.contains("sleep") && body.contains(&pid),
            "{body}"
        );
        // Nothing changed: still mounted, the edit still there.
        assert_eq!(mounted(), 1);
        assert_eq!(sh_ok(&d, "cat a/kept.txt"), "kept\n");
        drop(holder);
    }

    api_ok(&d, "POST", "/api/fs/unmount", Some(r#"{"path":"a"}"#));
    assert_eq!(mounted(), 0);
    assert_eq!(sh_ok(&d, "test ! -e a/kept.txt && echo gone"), "gone\n");
    // The edit was kept in the upper layer: mounted again, it is back.
    api_ok(&d, "POST", "/api/fs/mount", Some(r#"{"path":"a"}"#));
    assert_eq!(sh_ok(&d, "cat a/kept.txt"), "kept\n");

    d.stop_cleanly();
}

/// fusermount3 cannot remount: a plain user's workspace is mounted read-only while nothing in it
/// is writable (so the kernel keeps attributes across reads, as for root), and the first
/// writable path puts a read-write mount in its place. A shell already inside keeps the
/// read-only mount it entered, still served.
#[test]
fn a_plain_users_workspace_turns_read_write_for_its_first_writable_path() {
    let fx = fixture::standard();
    let mut d = PlainDaemon::new(&fx);
    d.start();
    assert!(
        superblock_read_only(&d.workspace),
        "nothing is writable: the superblock should be read-only: {:?}",
        mounts_at(&d.workspace)
    );

    // Inside before the swap; reads and tries a write after it.
    let seen = d._dir.path().join("seen");
    let mut inside = as_user(&d.user, "sh")
        .arg("-c")
        .arg("cd \"$1\" && sleep 3 && cat a/b/c.txt > \"$2\" && { (printf x >> a/new) 2> \"$2.err\" || true; }")
        .arg("sh")
        .arg(&d.workspace)
        .arg(&seen)
        .spawn()
        .expect("spawn a shell inside the workspace");
    let cwd = format!("/proc/{}/cwd", inside.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_link(&cwd).ok().as_deref() != Some(d.workspace.as_path()) {
        assert!(
            Instant::now() < deadline,
            "the shell never entered the workspace"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let (code, body) = api_as_user(&d, "POST", "/api/fs/mount", Some(r#"{"path":"a"}"#));
    assert_eq!(code, 200, "mount: {body}\n{}", d.report());
    let fuse: Vec<_> = mounts_at(&d.workspace)
        .into_iter()
        .filter(|m| m.fstype.starts_with("fuse"))
        .collect();
    assert_eq!(fuse.len(), 1, "one mount in the workspace: {fuse:?}");
    assert!(
        !superblock_read_only(&d.workspace),
        "a writable path needs a read-write superblock: {fuse:?}"
    );
    let out = sh_in_workspace(&d, "printf 'w\\n' > a/new && cat a/new a/b/c.txt");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("w\n{}", String::from_utf8_lossy(fixture::DEEP_FILE_CONTENT)),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.report()
    );

    let status = inside.wait().expect("wait for the shell");
    assert!(
        status.success(),
        "the shell inside: {status}\n{}",
        d.report()
    );
    assert_eq!(
        std::fs::read(&seen).expect("what the shell read"),
        fixture::DEEP_FILE_CONTENT,
        "the replaced mount still serves whoever is inside"
    );
    let err = std::fs::read_to_string(seen.with_extension("err")).unwrap_or_default();
    assert!(
        err.contains("Read-only file system"),
        "a write through the replaced mount: {err:?}"
    );

    // Unmounting the path leaves the mount read-write (replacing it again would cut off
    // whoever is inside); the read-only parts refuse writes themselves.
    let (code, body) = api_as_user(&d, "POST", "/api/fs/unmount", Some(r#"{"path":"a"}"#));
    assert_eq!(code, 200, "unmount: {body}\n{}", d.report());
    let out = sh_in_workspace(&d, "printf x >> a/new");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.stop_cleanly();
}

/// `/etc/fuse.conf` as it was, put back on drop.
struct FuseConf(Option<Vec<u8>>);

impl FuseConf {
    fn set(text: &str) -> FuseConf {
        let old = std::fs::read(scorpio::privacy::FUSE_CONF).ok();
        std::fs::write(scorpio::privacy::FUSE_CONF, text).expect("write /etc/fuse.conf");
        FuseConf(old)
    }
}

impl Drop for FuseConf {
    fn drop(&mut self) {
        let _ = match &self.0 {
            Some(old) => std::fs::write(scorpio::privacy::FUSE_CONF, old),
            None => std::fs::remove_file(scorpio::privacy::FUSE_CONF),
        };
    }
}

/// `allow_other = true` lets other users (root included) into a plain user's workspace, which
/// fusermount3 allows only with `user_allow_other` in /etc/fuse.conf: without it the start
/// fails with exit 2 naming the key and the fix, and `doctor` says so.
#[test]
fn a_plain_users_allow_other_needs_user_allow_other() {
    let fx = fixture::standard();
    let mut d = PlainDaemon::new(&fx);
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(&d.config)
        .expect("open the config");
    std::io::Write::write_all(&mut config, b"allow_other = true\n").expect("append");
    let doctor_line = |d: &PlainDaemon| {
        let out = d.cli(&["doctor"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let line = text
            .lines()
            .find(|l| l.contains("allow_other"))
            .unwrap_or_else(|| panic!("no allow_other line: {text}"))
            .to_string();
        (out.status.code(), line)
    };

    let conf = FuseConf::set("# mount_max = 1000\n#user_allow_other\n");
    let (_, line) = doctor_line(&d);
    assert!(
        line.starts_with("FAIL") && line.contains("user_allow_other"),
        "{line}"
    );
    let out = run_with_timeout(scorpio_as(&d.user).arg("-c").arg(&d.config), 60);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("allow_other") && err.contains("user_allow_other"),
        "{err}"
    );
    assert!(!d.fuse_mounted(), "{}", d.report());

    drop(conf);
    let _conf = FuseConf::set("# mount_max = 1000\nuser_allow_other\n");
    let (_, line) = doctor_line(&d);
    assert!(line.starts_with("ok"), "{line}");
    d.start();
    let top = mounts_at(&d.workspace).pop().expect("a mount");
    assert!(top.options.contains("allow_other"), "{top:?}");
    // The test runs as root, another user to this mount: it may read the tree now.
    assert_eq!(
        std::fs::read(d.workspace.join(fixture::DEEP_FILE)).expect("root reads the workspace"),
        fixture::DEEP_FILE_CONTENT
    );
    // And write in a writable path: the daemon cannot give the file to root, so it stays the
    // daemon's user's.
    api_ok(&d, "POST", "/api/fs/mount", Some(r#"{"path":"a"}"#));
    let by_root = d.workspace.join("a/by-root.txt");
    std::fs::write(&by_root, b"root was here\n").expect("root writes in a writable path");
    let meta = std::fs::metadata(&by_root).expect("stat");
    assert_eq!((meta.uid(), meta.gid()), (d.user.uid, d.user.gid));
    assert_eq!(
        sh_ok(&d, "cat a/by-root.txt"),
        "root was here\n",
        "the user reads what root wrote"
    );
    d.stop_cleanly();
}
