//! The harness of the plain-user tests: the system user `scorpio-dev` and a host made as
//! desktop distributions ship FUSE, the `scorpio` daemon run as that user over a repository
//! the user owns ([`PlainDaemon`]), and what the tests do as the user (API calls with curl,
//! shell scripts in the workspace, the CLI, `git`, `tar`).

use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::api::change_pairs;
use crate::support::daemon::{free_port, lazy_unmount, run_with_timeout};
use crate::support::fixture;
use crate::support::mountinfo::{fuse_mounts, mounts_at};

/// The system user the daemon runs as (not `nobody`: other tests use it for cross-user checks).
const USER: &str = "scorpio-dev";

/// The `scorpio` binary as the user can run it: the build's own when the user can reach it,
/// else (a clone under `/root`, as on a CI host) a copy in a root-owned 0755 directory of the
/// temp dir, replaced by rename so a concurrent run never sees half a file.
pub(crate) fn scorpio_bin() -> String {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let built = env!("CARGO_BIN_EXE_scorpio");
        let (uid, gid, _) = prepare_host();
        let reachable = Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .args(["--clear-groups", "test", "-x", built])
            .status()
            .is_ok_and(|s| s.success());
        if reachable {
            return built.to_string();
        }
        let dir = std::env::temp_dir().join("scorpio-unprivileged-bin");
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("mkdir {}: {e}", dir.display()),
        }
        let meta = std::fs::symlink_metadata(&dir).expect("stat the binary's directory");
        // Only root can have made a root-owned directory there; made 0755 below either way.
        assert!(
            meta.is_dir() && meta.uid() == 0,
            "{} must be a directory of root's",
            dir.display()
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let tmp = dir.join(format!("scorpio.{}", std::process::id()));
        std::fs::copy(built, &tmp).expect("copy the binary");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let bin = dir.join("scorpio");
        std::fs::rename(&tmp, &bin).expect("rename the binary");
        bin.to_string_lossy().into_owned()
    })
    .clone()
}

/// `scorpio` run as the user, without the test process's own `SCORPIO_*` variables.
pub(crate) fn scorpio_as(user: &User) -> Command {
    let mut cmd = as_user(user, &scorpio_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SCORPIO_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Spawns `cmd` with its output appended to `log` and waits (`secs`) until `ready()`; panics
/// with `report()` when the process exits first or time runs out.
pub(crate) fn spawn_until(
    cmd: &mut Command,
    log: &Path,
    secs: u64,
    mut ready: impl FnMut() -> bool,
    report: impl Fn() -> String,
) -> Child {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("open log");
    let err = out.try_clone().expect("clone log");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("spawn scorpio as the user");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("scorpio exited at start: {status}\n{}", report());
        }
        if ready() {
            return child;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("scorpio not ready within {secs} s\n{}", report());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (`secs`) for `child` to exit; kills it and panics with `report()` when it does not.
pub(crate) fn wait_exit(mut child: Child, secs: u64, report: impl Fn() -> String) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("scorpio did not exit within {secs} s\n{}", report());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Edits of every kind, as shell steps run in a writable root: create, modify, delete a lower
/// file (a whiteout), remove a lower directory, make a directory where a lower one was
/// deleted (opaque).
pub(crate) const EDITS: [&str; 5] = [
    "printf 'new\\n' > new.txt",
    "printf '# Changed\\n' > README.md",
    "rm src/lib.rs",
    "rm a/b/d/e/deep.txt && rmdir a/b/d/e",
    "rm -r 'dir with space' && mkdir 'dir with space' && printf 'fresh\\n' > 'dir with space/only.txt'",
];

/// Runs `producer` (a shell command writing a tar to stdout) as `user` and extracts its output,
/// keeping modes, into a fresh directory; panics with `report()` when it fails.
pub(crate) fn tar_as_user(
    user: &User,
    producer: &str,
    report: impl Fn() -> String,
) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("tempdir");
    let script = format!(
        "export HOME='{}'; setpriv --reuid={} --regid={} --clear-groups {producer} | tar -xpf - -C '{}'",
        user.home.display(),
        user.uid,
        user.gid,
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
        report()
    );
    copy
}

/// The uid and gid of [`USER`], created (`useradd --system --create-home`) when missing, and its
/// home; and the host made as a distribution ships it (`/dev/fuse` 0666, setuid fusermount3).
pub(crate) fn prepare_host() -> (u32, u32, PathBuf) {
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
pub(crate) fn chown_r(path: &Path, uid: u32, gid: u32) {
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
pub(crate) fn as_user(user: &User, program: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg("--clear-groups")
        .arg(program)
        .env("HOME", &user.home)
        .env("USER", USER);
    cmd
}

/// The user the daemon runs as.
pub(crate) struct User {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) home: PathBuf,
}

/// The daemon as the user, over a fixture repository the user owns; lazily unmounts the
/// workspace and kills the daemon on drop, so nothing stays mounted.
pub(crate) struct PlainDaemon {
    pub(crate) user: User,
    /// The user's temp dir: repository copy, config, store, workspace, log (kept until drop).
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) workspace: PathBuf,
    pub(crate) config: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) http_addr: String,
    child: Option<Child>,
}

impl PlainDaemon {
    pub(crate) fn new(fx: &fixture::Fixture) -> PlainDaemon {
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
    pub(crate) fn start(&mut self) {
        // A stale mount's directory may still list from the kernel's cache, and the new
        // mount may reuse its id: the new daemon's own "mounted" log line tells.
        let before = self.mounted_lines();
        let mut cmd = scorpio_as(&self.user);
        cmd.arg("-c").arg(&self.config);
        let child = spawn_until(
            &mut cmd,
            &self.log,
            20,
            || self.mounted_lines() > before && self.live(),
            || self.report(),
        );
        self.child = Some(child);
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

    pub(crate) fn fuse_mounted(&self) -> bool {
        mounts_at(&self.workspace)
            .iter()
            .any(|m| m.fstype.starts_with("fuse"))
    }

    pub(crate) fn report(&self) -> String {
        format!(
            "--- log ---\n{}\n--- fuse mounts ---\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            fuse_mounts()
        )
    }

    pub(crate) fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    /// SIGTERM, then the daemon must exit 0 with nothing left mounted.
    pub(crate) fn stop_cleanly(&mut self) {
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
    pub(crate) fn wait(&mut self) -> ExitStatus {
        let child = self.child.take().expect("a running daemon");
        wait_exit(child, 15, || self.report())
    }
}

/// More of the harness: the user's repository, the workspace and `git archive` read as the
/// user, and the CLI run as the user.
impl PlainDaemon {
    /// The bare repository the user owns and the daemon uses as `remote`.
    pub(crate) fn repo(&self) -> PathBuf {
        self._dir.path().join("repo.git")
    }

    /// `git --git-dir <repo> <args>` as the user; panics with its stderr when it fails.
    pub(crate) fn git(&self, args: &[&str]) -> String {
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
    pub(crate) fn archive(&self, commit: &str) -> tempfile::TempDir {
        tar_as_user(
            &self.user,
            &format!(
                "git --git-dir '{}' -c tar.umask=0022 archive --format=tar {commit}",
                self.repo().display()
            ),
            || self.report(),
        )
    }

    /// A copy of the workspace, read as the user (root may not enter the user's FUSE mount).
    pub(crate) fn copy_of_workspace(&self) -> tempfile::TempDir {
        tar_as_user(
            &self.user,
            &format!("tar -C '{}' -cf - .", self.workspace.display()),
            || self.report(),
        )
    }

    /// The upper layer directories of the mounted paths (read by root: the store is the user's).
    pub(crate) fn upper_layers(&self) -> Vec<PathBuf> {
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
    pub(crate) fn cli(&self, args: &[&str]) -> std::process::Output {
        run_with_timeout(
            scorpio_as(&self.user)
                .arg("-c")
                .arg(&self.config)
                .args(args),
            120,
        )
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

/// An API request sent as the user (the daemon admits only its own user), with curl: the status
/// code and the body.
pub(crate) fn api_as_user(
    d: &PlainDaemon,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
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
pub(crate) fn sh_in_workspace(d: &PlainDaemon, script: &str) -> std::process::Output {
    run_with_timeout(
        as_user(&d.user, "sh")
            .arg("-c")
            .arg(format!("cd \"$1\" && {script}"))
            .arg("sh")
            .arg(&d.workspace),
        30,
    )
}

/// An API request as the user that must answer 200; its body as JSON.
pub(crate) fn api_ok(
    d: &PlainDaemon,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> serde_json::Value {
    let (code, reply) = api_as_user(d, method, path, body);
    assert_eq!(code, 200, "{method} {path}: {reply}\n{}", d.report());
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {reply}"))
}

/// `GET /api/git/status` as the user: the answer, and its (kind, path) pairs sorted by path.
pub(crate) fn status_as_user(d: &PlainDaemon) -> (serde_json::Value, Vec<(String, String)>) {
    let (code, body) = api_as_user(d, "GET", "/api/git/status", None);
    assert_eq!(code, 200, "status: {body}\n{}", d.report());
    let mut pairs = change_pairs(&body);
    pairs.sort_by(|a, b| a.1.cmp(&b.1));
    (serde_json::from_str(&body).expect("status is JSON"), pairs)
}

/// Owned (kind, path) pairs, to compare with [`status_as_user`].
pub(crate) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, p)| (k.to_string(), p.to_string()))
        .collect()
}

/// [`sh_in_workspace`] that must succeed; its stdout.
pub(crate) fn sh_ok(d: &PlainDaemon, script: &str) -> String {
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
pub(crate) fn commit_as_user(d: &PlainDaemon, message: &str) -> String {
    let body = serde_json::json!({ "message": message }).to_string();
    let v = api_ok(d, "POST", "/api/git/commit", Some(&body));
    v["commit"].as_str().expect("a commit id").to_string()
}

/// A CLI run that must exit 0; its stdout.
pub(crate) fn cli_ok(d: &PlainDaemon, args: &[&str]) -> String {
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

/// A process of the user holding something in the workspace; killed on drop.
pub(crate) struct Holder(Child);

impl Holder {
    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Runs `script` as the user from the workspace, and waits (10 s) until `/proc/<pid>/<link>`
    /// names `target` (a path in the workspace).
    pub(crate) fn start(d: &PlainDaemon, script: &str, link: &str, target: &str) -> Holder {
        let child = as_user(&d.user, "sh")
            .arg("-c")
            .arg(format!("cd \"$1\" && {script}"))
            .arg("sh")
            .arg(&d.workspace)
            .spawn()
            .expect("spawn a process of the user");
        let h = Holder(child);
        let proc_link = format!("/proc/{}/{link}", h.pid());
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
