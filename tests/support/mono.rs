//! The real Mega server (`mono`), started through `../shared/mega/mega.sh` with a state dir and
//! three free ports of its own (HTTP, postgres, redis), and stopped on drop.
//!
//! Where `../shared/mega` is absent (or `SCORPIO_MEGA_DIR` names none), [`Mono::start`] returns
//! `None` after saying why, and the test returns early; with `SCORPIO_REQUIRE_MONO=1` (set by
//! `.ci/run` wherever the server is there) that is a failure instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::daemon::{free_port, run_with_timeout, try_run_with_timeout};

/// The directory holding `mega.sh` and `mono`: `SCORPIO_MEGA_DIR`, else `../shared/mega` beside
/// the repository.
pub fn mega_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SCORPIO_MEGA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/mega"));
    (dir.join("mega.sh").is_file() && dir.join("mono").is_file()).then_some(dir)
}

/// A running `mono`; stopped (with its postgres and redis) on drop.
pub struct Mono {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub url: String,
    /// The bearer token pushes need.
    pub token: String,
    state: tempfile::TempDir,
    script: PathBuf,
    ports: [u16; 3],
}

impl Mono {
    /// Starts a fresh server (about 3-5 s), or `None` where the server is not available here
    /// (printed; a panic under `CI=true`).
    pub fn start() -> Option<Mono> {
        let Some(dir) = mega_dir() else {
            let why = "the real Mega server is not here (../shared/mega/mega.sh and mono, or \
                       SCORPIO_MEGA_DIR): skipped";
            assert!(
                std::env::var("SCORPIO_REQUIRE_MONO").ok().as_deref() != Some("1"),
                "{why}, which SCORPIO_REQUIRE_MONO=1 does not allow"
            );
            eprintln!("{why}");
            return None;
        };
        let state = tempfile::Builder::new()
            .prefix("scorpio-mono-")
            .tempdir_in("/var/tmp")
            .expect("state dir");
        let ports = [free_port(), free_port(), free_port()];
        let script = dir.join("mega.sh");
        let out = run_with_timeout(
            Self::cmd(&script, &ports).arg("start").arg(state.path()),
            600,
        );
        let mono = Mono {
            url: format!("http://127.0.0.1:{}", ports[0]),
            token: String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_string(),
            state,
            script,
            ports,
        };
        assert!(
            out.status.success() && !mono.token.is_empty(),
            "mega.sh start: {}\n{}\n--- mono.log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            mono.log()
        );
        Some(mono)
    }

    fn cmd(script: &Path, ports: &[u16; 3]) -> Command {
        let mut c = Command::new("bash");
        c.arg(script)
            .env("MEGA_PORT", ports[0].to_string())
            .env("MEGA_PG_PORT", ports[1].to_string())
            .env("MEGA_REDIS_PORT", ports[2].to_string());
        c
    }

    /// The server's own log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("mono.log")).unwrap_or_default()
    }

    /// `host:port` of the HTTP API.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports[0])
    }

    /// `git push` from `repo` (a git directory or work tree) to the server's `<path>.git`, with
    /// the token; `refspec` such as `HEAD:refs/heads/main`.
    pub fn git_push(&self, repo: &Path, path: &str, refspec: &str) -> Output {
        run_with_timeout(
            Command::new("git")
                .arg("-C")
                .arg(repo)
                .arg("-c")
                .arg(format!(
                    "http.extraHeader=Authorization: Bearer {}",
                    self.token
                ))
                .args(["push", "-q"])
                .arg(format!("{}/{}.git", self.url, path.trim_matches('/')))
                .arg(refspec),
            120,
        )
    }
}

impl Mono {
    /// [`Mono::git_push`], which must succeed (else a panic with git's stderr and the server's
    /// log).
    pub fn push_ok(&self, repo: &Path, path: &str, refspec: &str) {
        let out = self.git_push(repo, path, refspec);
        assert!(
            out.status.success(),
            "push to {path}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

impl Drop for Mono {
    fn drop(&mut self) {
        // Never a panic here (a test that failed is unwinding already).
        let _ = try_run_with_timeout(
            Self::cmd(&self.script, &self.ports)
                .arg("stop")
                .arg(self.state.path()),
            120,
        );
    }
}
