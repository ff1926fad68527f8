//! The read-only workspace as a plain user: the `scorpio` binary run as the system user
//! `scorpio-dev` on a host prepared as desktop distributions ship FUSE (`/dev/fuse` mode 0666,
//! setuid-root `fusermount3`). It mounts through fusermount3, serves `git archive`'s tree,
//! answers `/health`, unmounts on SIGTERM and clears the stale mount a SIGKILL left behind.
//! Writable paths as that user: edits, status, commit, push into a repository the user owns
//! (API and CLI), edits kept over a restart, reset, diff, and an unmount refused while a
//! process of the user is inside.
//!
//! The test itself runs as root (as every test). Root cannot enter a FUSE mount another user
//! made without `allow_other`, so the tree is read as that user (`tar` under `setpriv`).

mod support;

use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::api::change_pairs;
use support::daemon::{free_port, lazy_unmount, run_with_timeout};
use support::fixture;
use support::http;
use support::mountinfo::{fuse_mounts, mounts_at};
use support::tree::{archive, assert_same_tree, walk};

/// The system user the daemon runs as (not `nobody`: other tests use it for cross-user checks).
const USER: &str = "scorpio-dev";

/// The uid and gid of [`USER`], created (`useradd --system --create-home`) when missing, and its
/// home; and the host made as a distribution ships it (`/dev/fuse` 0666, setuid fusermount3).
fn prepare_host() -> (u32, u32, PathBuf) {
    let fuse = std::fs::metadata("/dev/fuse").expect("/dev/fuse");
    if fuse.mode() & 0o666 != 0o666 {
        std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(0o666))
            .expect("chmod 0666 /dev/fuse");
    }
    let helper = run_with_timeout(
        Command::new("sh").args(["-c", "command -v fusermount3"]),
        10,
    );
    let helper = String::from_utf8_lossy(&helper.stdout).trim().to_string();
    let meta = std::fs::metadata(&helper).unwrap_or_else(|e| panic!("fusermount3 ({helper}): {e}"));
    assert!(
        meta.uid() == 0 && meta.mode() & 0o4000 != 0,
        "{helper} must be setuid root, as distributions ship it"
    );
    let id = |flag: &str| {
        run_with_timeout(Command::new("id").args([flag, USER]), 10)
            .status
            .success()
    };
    if !id("-u") {
        let out = run_with_timeout(
            Command::new("useradd").args(["--system", "--create-home", "--shell", "/bin/sh", USER]),
            30,
        );
        // Another test of this crate may have created it in between.
        assert!(
            out.status.success() || id("-u"),
            "useradd {USER}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let num = |flag: &str| -> u32 {
        let out = run_with_timeout(Command::new("id").args([flag, USER]), 10);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    let home = run_with_timeout(Command::new("getent").args(["passwd", USER]), 10);
    let home = String::from_utf8_lossy(&home.stdout)
        .trim()
        .split(':')
        .nth(5)
        .map(PathBuf::from)
        .expect("home of the user");
    (num("-u"), num("-g"), home)
}

/// `chown -R uid:gid path`.
fn chown_r(path: &Path, uid: u32, gid: u32) {
    let out = run_with_timeout(
        Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(path),
        30,
    );
    assert!(out.status.success(), "chown {}", path.display());
}

/// A command run as the user (`setpriv`, no supplementary groups, HOME set).
fn as_user(user: &User, program: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg("--clear-groups")
        .arg(program)
        .env("HOME", &user.home)
        .env("USER", USER);
    cmd
}

struct User {
    uid: u32,
    gid: u32,
    home: PathBuf,
}

/// The daemon as the user, over a fixture repository the user owns; lazily unmounts the
/// workspace and kills the daemon on drop, so nothing stays mounted.
struct PlainDaemon {
    user: User,
    /// The user's temp dir: repository copy, config, store, workspace, log (kept until drop).
    _dir: tempfile::TempDir,
    workspace: PathBuf,
    config: PathBuf,
    log: PathBuf,
    http_addr: String,
    child: Option<Child>,
}

impl PlainDaemon {
    fn new(fx: &fixture::Fixture) -> PlainDaemon {
        let (uid, gid, home) = prepare_host();
        let user = User { uid, gid, home };
        let dir = tempfile::Builder::new()
            .prefix("scorpio-plain-")
            .tempdir()
            .expect("tempdir");
        let repo = dir.path().join("repo.git");
        let out = run_with_timeout(
            Command::new("cp").arg("-a").arg(&fx.repo_path).arg(&repo),
            30,
        );
        assert!(out.status.success(), "copy the fixture repository");
        let workspace = dir.path().join("workspace");
        std::fs::create_dir(&workspace).expect("mkdir workspace");
        let http_addr = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("scorpio.toml");
        std::fs::write(
            &config,
            format!(
                "remote = \"{}\"\nworkspace = \"{}\"\nstore_path = \"{}\"\nhttp_addr = \"{http_addr}\"\nlog_level = \"debug\"\n",
                repo.display(),
                workspace.display(),
                dir.path().join("store").display()
            ),
        )
        .expect("write config");
        chown_r(dir.path(), uid, gid);
        let log = dir.path().join("scorpio.log");
        PlainDaemon {
            user,
            _dir: dir,
            workspace,
            config,
            log,
            http_addr,
            child: None,
        }
    }

    /// Runs the daemon as the user and waits (20 s) for a new FUSE mount that answers.
    fn start(&mut self) {
        // A stale mount's directory may still list from the kernel's cache, and the new
        // mount may reuse its id: the new daemon's own "mounted" log line tells.
        let before = self.mounted_lines();
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open log");
        let err = log.try_clone().expect("clone log");
        let mut cmd = as_user(&self.user, env!("CARGO_BIN_EXE_scorpio"));
        cmd.arg("-c").arg(&self.config);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SCORPIO_") {
                cmd.env_remove(k);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        self.child = Some(cmd.spawn().expect("spawn scorpio as the user"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "scorpio exited before mounting: {status}\n{}",
                    self.report()
                );
            }
            if self.mounted_lines() > before && self.live() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not mounted within 20 s\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// How many times a daemon logged that it mounted the workspace.
    fn mounted_lines(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("scorpio: mounted ")
            .count()
    }

    /// Whether the workspace is a FUSE mount the user can list.
    fn live(&self) -> bool {
        self.fuse_mounted()
            && as_user(&self.user, "ls")
                .arg(&self.workspace)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    }

    fn fuse_mounted(&self) -> bool {
        mounts_at(&self.workspace)
            .iter()
            .any(|m| m.fstype.starts_with("fuse"))
    }

    fn report(&self) -> String {
        format!(
            "--- log ---\n{}\n--- fuse mounts ---\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            fuse_mounts()
        )
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    /// SIGTERM, then the daemon must exit 0 with nothing left mounted.
    fn stop_cleanly(&mut self) {
        self.signal(libc::SIGTERM);
        let status = self.wait();
        assert!(
            status.success(),
            "exit after SIGTERM: {status}\n{}",
            self.report()
        );
        assert!(
            !self.fuse_mounted(),
            "still mounted after SIGTERM\n{}",
            self.report()
        );
    }

    /// Waits (15 s) for the daemon to exit.
    fn wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("a running daemon");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                return s;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the daemon did not exit within 15 s\n{}", self.report());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// More of the harness: the user's repository, the workspace and `git archive` read as the
/// user, and the CLI run as the user.
impl PlainDaemon {
    /// The bare repository the user owns and the daemon uses as `remote`.
    fn repo(&self) -> PathBuf {
        self._dir.path().join("repo.git")
    }

    /// `git --git-dir <repo> <args>` as the user; panics with its stderr when it fails.
    fn git(&self, args: &[&str]) -> String {
        let out = run_with_timeout(
            as_user(&self.user, "git")
                .arg("--git-dir")
                .arg(self.repo())
                .args(args),
            120,
        );
        assert!(
            out.status.success(),
            "git {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// `git archive` of `commit` of the user's repository, extracted into a fresh directory.
    fn archive(&self, commit: &str) -> tempfile::TempDir {
        self.tar_as_user(&format!(
            "git --git-dir '{}' -c tar.umask=0022 archive --format=tar {commit}",
            self.repo().display()
        ))
    }

    /// A copy of the workspace, read as the user (root may not enter the user's FUSE mount).
    fn copy_of_workspace(&self) -> tempfile::TempDir {
        self.tar_as_user(&format!("tar -C '{}' -cf - .", self.workspace.display()))
    }

    /// Runs `producer` (a shell command writing a tar to stdout) as the user and extracts its
    /// output, keeping modes, into a fresh directory.
    fn tar_as_user(&self, producer: &str) -> tempfile::TempDir {
        let copy = tempfile::tempdir().expect("tempdir");
        let script = format!(
            "export HOME='{}'; setpriv --reuid={} --regid={} --clear-groups {producer} | tar -xpf - -C '{}'",
            self.user.home.display(),
            self.user.uid,
            self.user.gid,
            copy.path().display()
        );
        let out = run_with_timeout(
            Command::new("bash").args(["-o", "pipefail", "-c", &script]),
            120,
        );
        assert!(
            out.status.success(),
            "{script}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.report()
        );
        copy
    }

    /// The upper layer directories of the mounted paths (read by root: the store is the user's).
    fn upper_layers(&self) -> Vec<PathBuf> {
        let mounts = self._dir.path().join("store/mounts");
        std::fs::read_dir(&mounts)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path().join("upper"))
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `scorpio` CLI with the daemon's config, run as the user (it reads `http_addr` there).
    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = as_user(&self.user, env!("CARGO_BIN_EXE_scorpio"));
        cmd.arg("-c").arg(&self.config).args(args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SCORPIO_") {
                cmd.env_remove(k);
            }
        }
        run_with_timeout(&mut cmd, 120)
    }
}

impl Drop for PlainDaemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Lazily, so a busy mount cannot fail it (root's fusermount3 -uz, or umount -l).
        if self.fuse_mounted() {
            lazy_unmount(&self.workspace);
        }
    }
}

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

/// An API request sent as the user (the daemon admits only its own user), with curl: the status
/// code and the body.
fn api_as_user(d: &PlainDaemon, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut cmd = as_user(&d.user, "curl");
    cmd.args(["-sS", "-X", method, "-w", "\n%{http_code}"]);
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    cmd.arg(format!("http://{}{path}", d.http_addr));
    let out = run_with_timeout(&mut cmd, 120);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or_else(|_| {
            panic!(
                "curl {method} {path}: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        }),
        body.to_string(),
    )
}

/// A shell script run as the user with the workspace as its working directory.
fn sh_in_workspace(d: &PlainDaemon, script: &str) -> std::process::Output {
    run_with_timeout(
        as_user(&d.user, "sh")
            .arg("-c")
            .arg(format!("cd \"$1\" && {script}"))
            .arg("sh")
            .arg(&d.workspace),
        30,
    )
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
    let steps = [
        "printf 'new\\n' > new.txt",
        "printf '# Changed\\n' > README.md",
        "rm src/lib.rs",
        "rm a/b/d/e/deep.txt && rmdir a/b/d/e",
        "rm -r 'dir with space' && mkdir 'dir with space' && printf 'fresh\\n' > 'dir with space/only.txt'",
    ];
    for step in steps {
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

/// An API request as the user that must answer 200; its body as JSON.
fn api_ok(d: &PlainDaemon, method: &str, path: &str, body: Option<&str>) -> serde_json::Value {
    let (code, reply) = api_as_user(d, method, path, body);
    assert_eq!(code, 200, "{method} {path}: {reply}\n{}", d.report());
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {reply}"))
}

/// `GET /api/git/status` as the user: the answer, and its (kind, path) pairs sorted by path.
fn status_as_user(d: &PlainDaemon) -> (serde_json::Value, Vec<(String, String)>) {
    let (code, body) = api_as_user(d, "GET", "/api/git/status", None);
    assert_eq!(code, 200, "status: {body}\n{}", d.report());
    let mut pairs = change_pairs(&body);
    pairs.sort_by(|a, b| a.1.cmp(&b.1));
    (serde_json::from_str(&body).expect("status is JSON"), pairs)
}

/// Owned (kind, path) pairs, to compare with [`status_as_user`].
fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, p)| (k.to_string(), p.to_string()))
        .collect()
}

/// [`sh_in_workspace`] that must succeed; its stdout.
fn sh_ok(d: &PlainDaemon, script: &str) -> String {
    let out = sh_in_workspace(d, script);
    assert!(
        out.status.success(),
        "{script}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.report()
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `POST /api/git/commit` of everything changed, as the user; the new commit's id.
fn commit_as_user(d: &PlainDaemon, message: &str) -> String {
    let body = serde_json::json!({ "message": message }).to_string();
    let v = api_ok(d, "POST", "/api/git/commit", Some(&body));
    v["commit"].as_str().expect("a commit id").to_string()
}

/// A CLI run that must exit 0; its stdout.
fn cli_ok(d: &PlainDaemon, args: &[&str]) -> String {
    let out = d.cli(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "scorpio {args:?}: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        d.report()
    );
    String::from_utf8_lossy(&out.stdout).to_string()
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

/// A process of the user holding something in the workspace; killed on drop.
struct Holder(Child);

impl Holder {
    /// Runs `script` as the user from the workspace, and waits (10 s) until `/proc/<pid>/<link>`
    /// names `target` (a path in the workspace).
    fn start(d: &PlainDaemon, script: &str, link: &str, target: &str) -> Holder {
        let child = as_user(&d.user, "sh")
            .arg("-c")
            .arg(format!("cd \"$1\" && {script}"))
            .arg("sh")
            .arg(&d.workspace)
            .spawn()
            .expect("spawn a process of the user");
        let h = Holder(child);
        let proc_link = format!("/proc/{}/{link}", h.0.id());
        let want = d.workspace.join(target);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_link(&proc_link).ok() != Some(want.clone()) {
            assert!(
                Instant::now() < deadline,
                "{script}: {proc_link} never named {}",
                want.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        h
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
        let pid = holder.0.id().to_string();
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
