//! The standalone Antares server (`scorpio antares serve`) as a child process with its own
//! config, store and roots; dropping it stops the server and lazily unmounts what it left.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::api::json_or_text;
use super::daemon::{free_port, lazy_unmount, scorpio_command};
use super::http;
use super::mountinfo::mountinfo;

/// How long the server may take to answer `/health` after it is spawned.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `scorpio antares serve` with its own store and roots.
pub struct AntaresServer {
    tmp: Option<tempfile::TempDir>,
    /// The server's own directory (config, store, roots, log).
    pub root: PathBuf,
    /// `127.0.0.1:<port>` of its API.
    pub addr: String,
    /// Its `scorpio.toml`.
    pub config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// `NOTIFY_SOCKET` for the next [`AntaresServer::spawn`], as systemd would give one.
    pub notify_socket: Option<PathBuf>,
    /// More environment for the server (set before it is spawned).
    pub env: Vec<(String, String)>,
}

impl AntaresServer {
    /// Writes a config for `remote` (plus `extra` lines in `[antares]`) and starts the server.
    pub fn start(remote: &str, extra: &str) -> AntaresServer {
        Self::start_with_env(remote, extra, &[])
    }

    /// [`AntaresServer::start`] with `env` in the server's environment.
    pub fn start_with_env(remote: &str, extra: &str, env: &[(&str, &str)]) -> AntaresServer {
        let tmp = tempfile::Builder::new()
            .prefix("scorpio-antares-")
            .tempdir()
            .expect("temp dir");
        let root = tmp.path().canonicalize().expect("canonical temp dir");
        let addr = format!("127.0.0.1:{}", free_port());
        let config = root.join("scorpio.toml");
        let q = |p: &Path| format!("{:?}", p.display().to_string());
        let text = format!(
            "remote = {remote:?}\nstore_path = {}\nworkspace = {}\nlog_level = \"info\"\n\
             request_timeout_secs = 10\nconnect_timeout_secs = 2\n\n[antares]\nbind = {addr:?}\n\
             mount_root = {}\nupper_root = {}\ncl_root = {}\n{extra}\n",
            q(&root.join("store")),
            q(&root.join("ws")),
            q(&root.join("mnt")),
            q(&root.join("upper")),
            q(&root.join("cl")),
        );
        std::fs::write(&config, text).expect("write config");
        let mut s = AntaresServer {
            log: root.join("antares.log"),
            tmp: Some(tmp),
            root,
            addr,
            config,
            child: None,
            notify_socket: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        s.spawn();
        s
    }

    /// Where its mounts go.
    pub fn mount_root(&self) -> PathBuf {
        self.root.join("mnt")
    }

    /// Where their upper layers go.
    pub fn upper_root(&self) -> PathBuf {
        self.root.join("upper")
    }

    /// Runs the binary with the config and waits until `/health` answers.
    pub fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open log");
        let err = log.try_clone().expect("clone log");
        let mut cmd = scorpio_command(&self.config);
        cmd.args(["antares", "serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        if let Some(sock) = &self.notify_socket {
            cmd.env("NOTIFY_SOCKET", sock);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        self.child = Some(cmd.spawn().expect("spawn scorpio antares serve"));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!("antares serve exited at start: {status}\n{}", self.log());
            }
            if std::net::TcpStream::connect(&self.addr).is_ok() && self.get("/health").0 == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "antares serve did not answer within {START_TIMEOUT:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `method path` with an optional JSON body; the reply as JSON (or a JSON string).
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, text) = http::request(&self.addr, method, path, body, None);
        (status, json_or_text(&text))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.call("DELETE", path, None)
    }

    /// `POST /mounts` with `body`.
    pub fn post(&self, body: &Value) -> (u16, Value) {
        self.call("POST", "/mounts", Some(&body.to_string()))
    }

    /// Creates a mount and returns its record (panics unless 201).
    pub fn create(&self, body: Value) -> Value {
        let (status, v) = self.post(&body);
        assert_eq!(status, 201, "create {body}: {v}\n{}", self.log());
        assert_eq!(v["state"], "mounted", "{v}");
        v
    }

    /// Sends `sig` to the server.
    pub fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own, not yet reaped, child.
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    /// SIGTERM and wait for the exit (SIGKILL after 30 s).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        let status = self.wait(Duration::from_secs(30));
        if status.is_none() {
            self.signal(libc::SIGKILL);
            self.wait(Duration::from_secs(10));
        }
        self.child = None;
        status
    }

    /// SIGKILL, leaving its mounts behind (dead).
    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        assert!(self.wait(Duration::from_secs(10)).is_some(), "SIGKILL");
        self.child = None;
    }

    /// Waits up to `timeout` for the server to exit.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// FUSE mounts under this server's directory.
    pub fn fuse_mounts(&self) -> Vec<PathBuf> {
        fuse_mounts_under(&self.root)
    }
}

impl Drop for AntaresServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        for m in self.fuse_mounts() {
            lazy_unmount(&m);
        }
        if !self.fuse_mounts().is_empty() {
            if let Some(t) = self.tmp.take() {
                eprintln!("leaving {} behind: still mounted", t.path().display());
                std::mem::forget(t);
            }
        }
    }
}

/// FUSE mounts at or under `root`.
pub fn fuse_mounts_under(root: &Path) -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .filter(|m| m.fstype.starts_with("fuse") && m.mount_point.starts_with(root))
        .map(|m| m.mount_point)
        .collect()
}

/// The path in the record field `key`.
pub fn path_of(v: &Value, key: &str) -> PathBuf {
    PathBuf::from(v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")))
}

/// Whether `p` is a live FUSE mount: in mountinfo, and its root can be listed.
pub fn live_fuse(p: &Path) -> bool {
    mountinfo()
        .iter()
        .any(|m| m.mount_point == p && m.fstype.starts_with("fuse"))
        && std::fs::read_dir(p).is_ok()
}
