//! Hostile cases: startup (see tests/hostile.rs). A careless user's config: each bad value is
//! refused at start with exit status 2, in one message that names the key and where the value
//! came from (the file, `SCORPIO_<KEY>`, or `--<key>`), and nothing is mounted.

use std::path::PathBuf;

use crate::support::daemon::{free_port, scorpio_command};
use crate::support::host::Tmpfs;
use crate::support::{fixture, http, run_with_timeout, Daemon, DaemonOpts};

/// A scratch directory with a repository, an empty workspace and a store path.
struct Setup {
    dir: tempfile::TempDir,
    fx: fixture::Fixture,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().expect("tempdir"),
            fx: fixture::standard(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the daemon with a config file of `toml` (a valid base is written first, and any
    /// key `toml` sets replaces it), `env` and `args`; returns its exit code and stderr.
    fn run(&self, toml: &[(&str, String)], env: &[(&str, String)], args: &[&str]) -> (i32, String) {
        let ws = self.path("ws");
        std::fs::create_dir_all(&ws).expect("workspace");
        let mut keys: Vec<(&str, String)> = vec![
            ("remote", self.fx.repo_path.display().to_string()),
            ("workspace", ws.display().to_string()),
            ("store_path", self.path("store").display().to_string()),
            ("http_addr", format!("127.0.0.1:{}", free_port())),
        ];
        for (k, v) in toml {
            keys.retain(|(key, _)| key != k);
            keys.push((k, v.clone()));
        }
        let text: String = keys
            .iter()
            .map(|(k, v)| format!("{k} = {}\n", toml::Value::String(v.clone())))
            .collect();
        let cfg = self.path("scorpio.toml");
        std::fs::write(&cfg, text).expect("config");
        let mut cmd = scorpio_command(&cfg);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run_with_timeout(&mut cmd, 60);
        assert!(
            !crate::support::is_mounted(&ws),
            "a refused start left {} mounted",
            ws.display()
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Exit 2, and the key, its source and `words` appear in exactly one message.
fn assert_refused(
    case: &str,
    (code, stderr): (i32, String),
    key: &str,
    source: &str,
    words: &[&str],
) {
    assert_eq!(code, 2, "{case}: exit code; stderr:\n{stderr}");
    let named = format!("config key `{key}` (from {source}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(&named)).collect();
    assert_eq!(
        lines.len(),
        1,
        "{case}: `{named}` should be printed once; stderr:\n{stderr}"
    );
    for w in words {
        assert!(
            lines[0].contains(w),
            "{case}: {w:?} missing in {:?}",
            lines[0]
        );
    }
    let messages = stderr.lines().filter(|l| l.starts_with("scorpio:")).count();
    assert_eq!(messages, 1, "{case}: one message only; stderr:\n{stderr}");
}

#[test]
fn a_ref_the_repository_does_not_have_names_the_ref() {
    let s = Setup::new();
    let r = s.run(&[("ref", "no-such-branch".into())], &[], &[]);
    assert_refused("bad ref", r, "ref", "config file", &["no-such-branch"]);
}

#[test]
fn a_remote_that_is_not_a_repository_names_the_remote() {
    let s = Setup::new();
    let plain = s.path("plain");
    std::fs::create_dir_all(&plain).expect("dir");
    let r = s.run(&[], &[("SCORPIO_REMOTE", plain.display().to_string())], &[]);
    assert_refused(
        "remote is a plain directory",
        r,
        "remote",
        "SCORPIO_REMOTE",
        &["not a git repository"],
    );
}

#[test]
fn an_unknown_url_scheme_is_not_taken_for_a_path() {
    let s = Setup::new();
    let r = s.run(&[("remote", "ftp://x".into())], &[], &[]);
    assert_refused("ftp remote", r, "remote", "config file", &["ftp", "scheme"]);
}

#[test]
fn a_workspace_that_is_a_file_names_the_workspace() {
    let s = Setup::new();
    let f = s.path("a-file");
    std::fs::write(&f, b"x").expect("file");
    let r = s.run(&[], &[], &["--workspace", &f.display().to_string()]);
    assert_refused(
        "workspace is a file",
        r,
        "workspace",
        "--workspace",
        &["not a directory"],
    );
}

#[test]
fn a_workspace_that_is_not_empty_names_the_workspace() {
    let s = Setup::new();
    let ws = s.path("full");
    std::fs::create_dir_all(&ws).expect("dir");
    std::fs::write(ws.join("mine"), b"keep me").expect("file");
    let r = s.run(&[("workspace", ws.display().to_string())], &[], &[]);
    assert_refused(
        "workspace not empty",
        r,
        "workspace",
        "config file",
        &["not empty"],
    );
    assert_eq!(std::fs::read(ws.join("mine")).expect("kept"), b"keep me");
}

#[test]
fn a_workspace_that_is_already_mounted_names_the_workspace() {
    let s = Setup::new();
    let ws = s.path("mounted");
    let _guard = Tmpfs::at(&ws);
    let (code, stderr) = {
        // Not `Setup::run`: the workspace is (rightly) mounted, by us.
        let cfg = s.path("mounted.toml");
        std::fs::write(
            &cfg,
            format!(
                "remote = {}\nworkspace = {}\nstore_path = {}\nhttp_addr = \"127.0.0.1:{}\"\n",
                toml::Value::String(s.fx.repo_path.display().to_string()),
                toml::Value::String(ws.display().to_string()),
                toml::Value::String(s.path("store").display().to_string()),
                free_port()
            ),
        )
        .expect("config");
        let out = run_with_timeout(&mut scorpio_command(&cfg), 60);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_refused(
        "workspace mounted",
        (code, stderr),
        "workspace",
        "config file",
        &["mount point"],
    );
    let fstypes: Vec<String> = crate::support::mountinfo::mounts_at(&ws)
        .into_iter()
        .map(|m| m.fstype)
        .collect();
    assert_eq!(fstypes, ["tmpfs"], "only our tmpfs is mounted there");
}

#[test]
fn a_store_path_that_cannot_be_written_names_the_store_path() {
    let s = Setup::new();
    let f = s.path("a-file");
    std::fs::write(&f, b"x").expect("file");
    let r = s.run(
        &[("store_path", f.join("store").display().to_string())],
        &[],
        &[],
    );
    assert_refused(
        "store under a file",
        r,
        "store_path",
        "config file",
        &["writable"],
    );
}

#[test]
fn a_push_url_that_is_not_a_url_names_the_push_url() {
    let s = Setup::new();
    // The workspace is not empty too, so a daemon that took the URL stops there, unmounted.
    let ws = s.path("full");
    std::fs::create_dir_all(&ws).expect("dir");
    std::fs::write(ws.join("x"), b"x").expect("file");
    for (url, words) in [
        ("not a url", &["not a URL"][..]),
        ("ftp://host/repo.git", &["ftp", "http"][..]),
    ] {
        let r = s.run(
            &[
                ("push_url", url.into()),
                ("workspace", ws.display().to_string()),
            ],
            &[],
            &[],
        );
        assert_refused(url, r, "push_url", "config file", words);
    }
}

#[test]
fn localhost_is_a_loopback_http_addr() {
    let fx = fixture::standard();
    let port = free_port();
    let mut opts = DaemonOpts::new(fx.repo_path.display().to_string());
    opts.env = vec![("SCORPIO_HTTP_ADDR".into(), format!("localhost:{port}"))];
    let d = Daemon::start(opts).unwrap_or_else(|e| panic!("localhost:{port} refused: {e}"));
    let (code, body) = http::get(&format!("127.0.0.1:{port}"), "/health");
    assert_eq!(code, 200, "{body}\n{}", d.log());
}
