//! Runs the real `scorpio` binary as a child process against a remote and waits for its FUSE
//! mount. Everything here has a timeout, so a hung daemon fails a test instead of hanging the
//! suite, and Drop always kills the daemon and lazily unmounts the workspace.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::fixture::Fixture;
use super::mega_server::MegaServer;
use super::mountinfo::{fuse_mounts, mounts_at, MountEntry};

/// How long `Daemon::start` waits for the mount to appear.
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `Daemon::stop` waits after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What to run the daemon with. `DaemonOpts::new(remote)` fills the rest with defaults.
#[derive(Clone, Debug, Default)]
pub struct DaemonOpts {
    /// `remote` config key: a path to a git repository or a Mega base URL.
    pub remote: String,
    /// `ref` config key, if any.
    pub ref_: Option<String>,
    /// `store_path`; `None` = a fresh directory in the daemon's temp dir. Pass a directory you
    /// own to reuse a store across separate `Daemon`s (or use [`Daemon::restart`]).
    pub store: Option<PathBuf>,
    /// Mountpoint; `None` = a fresh directory in the daemon's temp dir.
    pub workspace: Option<PathBuf>,
    /// Appended verbatim to the generated `scorpio.toml`.
    pub extra_toml: String,
    /// Extra environment variables for the daemon (inherited `SCORPIO_*` ones are removed).
    pub env: Vec<(String, String)>,
}

impl DaemonOpts {
    pub fn new(remote: impl Into<String>) -> DaemonOpts {
        DaemonOpts {
            remote: remote.into(),
            ..DaemonOpts::default()
        }
    }
}

/// A running `scorpio` daemon with its workspace mounted.
pub struct Daemon {
    /// Canonical mountpoint path (as it appears in /proc/self/mountinfo).
    pub workspace: PathBuf,
    pub store: PathBuf,
    /// `127.0.0.1:<port>` of the daemon's HTTP API.
    pub http_addr: String,
    pub config_path: PathBuf,
    pub opts: DaemonOpts,
    child: Option<Child>,
    last_status: Option<ExitStatus>,
    tmp: Option<tempfile::TempDir>,
    log_path: PathBuf,
}

/// Quotes `s` as a TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `scorpio -c <config>`, inheriting no `SCORPIO_*` variable from the test's environment (they
/// would override the config).
pub fn scorpio_command(config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scorpio"));
    cmd.arg("-c").arg(config);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SCORPIO_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read it, drop the socket).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0 to find a free port")
        .port()
}

impl Daemon {
    /// A daemon over the fixture's repository on disk, with defaults; panics if it does not start.
    pub fn local(fx: &Fixture) -> Daemon {
        Daemon::start_or_panic(DaemonOpts::new(fx.repo_path.display().to_string()))
    }

    /// A daemon over the test Mega server, with defaults; panics if it does not start.
    pub fn mega(server: &MegaServer) -> Daemon {
        Daemon::start_or_panic(DaemonOpts::new(server.url()))
    }

    /// [`Daemon::start`], panicking with the harness's report when the daemon does not start.
    pub fn start_or_panic(opts: DaemonOpts) -> Daemon {
        Daemon::start(opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Writes `scorpio.toml`, runs `scorpio -c <it>` and waits (up to 20 s) for the workspace to
    /// be a FUSE mount. On failure the daemon is killed, the mount cleaned up, and the error holds
    /// the exit status, the daemon's log and the current FUSE mounts.
    pub fn start(opts: DaemonOpts) -> Result<Daemon, String> {
        let tmp = tempfile::Builder::new()
            .prefix("scorpio-daemon-")
            .tempdir()
            .map_err(|e| format!("create daemon temp dir: {e}"))?;
        let store = match &opts.store {
            Some(p) => p.clone(),
            None => tmp.path().join("store"),
        };
        std::fs::create_dir_all(&store)
            .map_err(|e| format!("create store {}: {e}", store.display()))?;
        let workspace = match &opts.workspace {
            Some(p) => p.clone(),
            None => tmp.path().join("workspace"),
        };
        // A stale FUSE mount (e.g. after kill9) makes create_dir_all/canonicalize fail with
        // ENOTCONN; the daemon is expected to recover it, so fall back to the path as given.
        let _ = std::fs::create_dir_all(&workspace);
        let workspace = canonical_or_self(&workspace);
        let http_addr = format!("127.0.0.1:{}", free_port());
        let config_path = tmp.path().join("scorpio.toml");
        let log_path = tmp.path().join("scorpio.log");

        let mut config = String::new();
        config.push_str(&format!("remote = {}\n", toml_str(&opts.remote)));
        if let Some(r) = &opts.ref_ {
            config.push_str(&format!("ref = {}\n", toml_str(r)));
        }
        config.push_str(&format!(
            "workspace = {}\n",
            toml_str(&workspace.to_string_lossy())
        ));
        config.push_str(&format!(
            "store_path = {}\n",
            toml_str(&store.to_string_lossy())
        ));
        config.push_str(&format!("http_addr = {}\n", toml_str(&http_addr)));
        config.push_str("log_level = \"debug\"\n");
        config.push_str("request_timeout_secs = 5\n");
        config.push_str("connect_timeout_secs = 2\n");
        if !opts.extra_toml.is_empty() {
            config.push('\n');
            config.push_str(&opts.extra_toml);
            config.push('\n');
        }
        std::fs::write(&config_path, config)
            .map_err(|e| format!("write {}: {e}", config_path.display()))?;

        let mut daemon = Daemon {
            workspace,
            store,
            http_addr,
            config_path,
            opts,
            child: None,
            last_status: None,
            tmp: Some(tmp),
            log_path,
        };
        daemon.spawn_and_wait()?;
        Ok(daemon)
    }

    /// Spawns the binary with the existing config and waits for a new FUSE mount.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let before = mounts_at(&self.workspace);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| format!("open log {}: {e}", self.log_path.display()))?;
        let _ = writeln!(
            log,
            "=== test harness: starting {} -c {} ===",
            env!("CARGO_BIN_EXE_scorpio"),
            self.config_path.display()
        );
        let log_err = log
            .try_clone()
            .map_err(|e| format!("clone log handle: {e}"))?;
        let mut cmd = scorpio_command(&self.config_path);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", env!("CARGO_BIN_EXE_scorpio")))?;
        self.child = Some(child);
        self.last_status = None;

        let deadline = Instant::now() + MOUNT_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        self.child = None;
                        self.last_status = Some(status);
                        self.cleanup_mount();
                        return Err(self.failure(&format!(
                            "scorpio exited before mounting {}: {status}",
                            self.workspace.display()
                        )));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let msg = format!("try_wait on scorpio: {e}");
                        self.stop();
                        return Err(self.failure(&msg));
                    }
                }
            }
            if self.new_mount_ready(&before) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let status = self.stop();
                return Err(self.failure(&format!(
                    "{} was not mounted within {:?} (daemon then stopped: {status})",
                    self.workspace.display(),
                    MOUNT_TIMEOUT
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True once the workspace has a FUSE mount that was not there before the spawn, or (if a
    /// stale mount was there) the topmost mount is FUSE and answers stat.
    fn new_mount_ready(&self, before: &[MountEntry]) -> bool {
        let now = mounts_at(&self.workspace);
        let Some(top) = now.last() else {
            return false;
        };
        if !top.fstype.starts_with("fuse") {
            return false;
        }
        if !before.iter().any(|b| b.mount_id == top.mount_id) {
            return true;
        }
        // Same mount id as before: either still the stale mount or a reused id.
        stat_with_timeout(&self.workspace, Duration::from_secs(2))
    }

    fn failure(&self, what: &str) -> String {
        format!(
            "{what}\n--- config {} ---\n{}\n--- daemon log {} ---\n{}\n--- fuse mounts ---\n{}",
            self.config_path.display(),
            std::fs::read_to_string(&self.config_path).unwrap_or_default(),
            self.log_path.display(),
            self.log(),
            fuse_mounts()
        )
    }

    /// `http://127.0.0.1:<port>`, the daemon's HTTP API.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The daemon's stdout+stderr so far (lossy UTF-8).
    pub fn log(&self) -> String {
        let mut buf = Vec::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let _ = f.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// The child's pid, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the workspace currently has a FUSE mount (possibly a stale one).
    pub fn is_mounted(&self) -> bool {
        super::mountinfo::is_fuse_mounted(&self.workspace)
    }

    /// SIGTERM, wait up to 10 s, then SIGKILL; then, if the workspace is still mounted,
    /// `fusermount3 -uz` (falling back to `umount -l`). Returns the daemon's exit status
    /// (the previous one if it had already stopped).
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGTERM);
            let status = match wait_timeout(&mut child, STOP_TIMEOUT) {
                Some(s) => Some(s),
                None => {
                    eprintln!(
                        "Daemon: scorpio (pid {}) ignored SIGTERM for {:?}; sending SIGKILL",
                        child.id(),
                        STOP_TIMEOUT
                    );
                    signal(&child, libc::SIGKILL);
                    wait_timeout(&mut child, Duration::from_secs(10))
                }
            };
            match status {
                Some(s) => self.last_status = Some(s),
                None => eprintln!("Daemon: scorpio (pid {}) did not die", child.id()),
            }
        }
        self.cleanup_mount();
        self.last_status.unwrap_or_else(killed_status)
    }

    /// SIGKILL the daemon and reap it, leaving the mount (now stale) as it is.
    pub fn kill9(&mut self) -> ExitStatus {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            match wait_timeout(&mut child, Duration::from_secs(10)) {
                Some(s) => self.last_status = Some(s),
                None => eprintln!("Daemon: scorpio (pid {}) survived SIGKILL", child.id()),
            }
        }
        self.last_status.unwrap_or_else(killed_status)
    }

    /// Starts the daemon again with the same config, store and workspace (after `stop` or
    /// `kill9`; stops it first if still running). Waits for a new mount like `start`.
    pub fn restart(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn_and_wait()
    }

    /// Lazily unmounts whatever is still mounted at the workspace (a few attempts).
    fn cleanup_mount(&self) {
        for _ in 0..5 {
            if mounts_at(&self.workspace).is_empty() {
                return;
            }
            lazy_unmount(&self.workspace);
        }
        if !mounts_at(&self.workspace).is_empty() {
            eprintln!(
                "Daemon: {} is still mounted after cleanup",
                self.workspace.display()
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        self.cleanup_mount();
        if !mounts_at(&self.workspace).is_empty() {
            // Never delete through a mount: keep the temp dir.
            if let Some(tmp) = self.tmp.take() {
                eprintln!(
                    "Daemon: leaving {} behind because the workspace is still mounted",
                    tmp.path().display()
                );
                std::mem::forget(tmp);
            }
        }
    }
}

fn killed_status() -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(libc::SIGKILL)
}

fn signal(child: &Child, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill(2) on our own (not yet reaped) child's pid.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Polls `try_wait` until the child exits or `timeout` passes.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `fusermount3 -uz <path>`, falling back to `umount -l <path>`; each with a 10 s timeout.
pub fn lazy_unmount(path: &Path) {
    let ok = try_run_with_timeout(Command::new("fusermount3").arg("-uz").arg(path), 10)
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let _ = try_run_with_timeout(Command::new("umount").arg("-l").arg(path), 10);
    }
}

/// `stat(path)` in a helper thread; false if it fails or takes longer than `timeout`.
fn stat_with_timeout(path: &Path, timeout: Duration) -> bool {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("stat-with-timeout".into())
        .spawn(move || {
            // stat alone can be answered from the kernel's attribute cache of a dead mount;
            // opening the directory always reaches the daemon.
            let _ = tx.send(std::fs::metadata(&p).is_ok() && std::fs::read_dir(&p).is_ok());
        });
    spawned.is_ok() && rx.recv_timeout(timeout).unwrap_or(false)
}

/// `canonicalize(path)` with a timeout (a hung mount must not hang us); `path` itself on failure.
fn canonical_or_self(path: &Path) -> PathBuf {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    let _ = std::thread::Builder::new()
        .name("canonicalize".into())
        .spawn(move || {
            let _ = tx.send(std::fs::canonicalize(&p));
        });
    match rx.recv_timeout(Duration::from_secs(2)) {
        Ok(Ok(c)) => c,
        _ => path.to_path_buf(),
    }
}

/// Reads a file on another thread so a hung daemon fails the test instead of hanging it.
pub fn read_guarded(path: PathBuf, secs: u64) -> std::io::Result<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::read(&path));
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("read did not return within {secs}s: a hang"))
}

// ---- running commands with a timeout ---------------------------------------------------------

fn spawn_reader<R: Read + Send + 'static>(mut r: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("output-reader".into())
        .spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    rx
}

/// Runs `cmd` (stdin null, stdout/stderr captured) and waits at most `secs` seconds. On timeout
/// the process is SIGKILLed and Err describes the command and what it printed so far.
pub fn try_run_with_timeout(cmd: &mut Command, secs: u64) -> Result<Output, String> {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {desc}: {e}"))?;
    let out_rx = spawn_reader(child.stdout.take().expect("piped stdout"));
    let err_rx = spawn_reader(child.stderr.take().expect("piped stderr"));
    let status = wait_timeout(&mut child, Duration::from_secs(secs));
    let timed_out = status.is_none();
    let status = match status {
        Some(s) => Some(s),
        None => {
            let _ = child.kill();
            wait_timeout(&mut child, Duration::from_secs(5))
        }
    };
    // A grandchild may keep a pipe open; do not wait for it forever.
    let stdout = out_rx
        .recv_timeout(Duration::from_secs(2))
        .unwrap_or_default();
    let stderr = err_rx
        .recv_timeout(Duration::from_secs(2))
        .unwrap_or_default();
    if timed_out {
        return Err(format!(
            "command timed out after {secs} s: {desc}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ));
    }
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(format!("could not reap {desc}")),
    }
}

/// Like [`try_run_with_timeout`], but panics (with the command and its output) on timeout.
pub fn run_with_timeout(cmd: &mut Command, secs: u64) -> Output {
    try_run_with_timeout(cmd, secs).unwrap_or_else(|e| panic!("{e}"))
}
