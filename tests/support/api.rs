//! Calls to a running daemon's version-control and workspace API, shared by the test files.

use std::process::{Command, Output};

use super::daemon::{run_with_timeout, Daemon};
use super::http;

/// Makes `path` writable; panics with the daemon's log when refused.
pub fn mount(d: &Daemon, path: &str) {
    let (status, body) = http::post(
        &d.http_addr,
        "/api/fs/mount",
        &format!(r#"{{"path":"{path}"}}"#),
    );
    assert_eq!(status, 200, "mount {path}: {body}\n{}", d.log());
}

/// `GET /api/git/status{query}` as (kind, path) pairs.
pub fn changes(d: &Daemon, query: &str) -> Vec<(String, String)> {
    let (code, body) = http::get(&d.http_addr, &format!("/api/git/status{query}"));
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("status is JSON");
    v["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap_or("?").to_string(),
                c["path"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// Runs the `scorpio` CLI with the daemon's config.
pub fn cli(d: &Daemon, args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_scorpio"))
            .arg("-c")
            .arg(&d.config_path)
            .args(args),
        120,
    )
}
