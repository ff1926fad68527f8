//! Calls to a running daemon's version-control and workspace API, shared by the test files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::daemon::{run_with_timeout, scorpio_command, Daemon};
use super::http;

/// Makes `path` writable; panics with the daemon's log when refused. Returns the reply.
pub fn mount(d: &Daemon, path: &str) -> serde_json::Value {
    let (status, body) = http::post(
        &d.http_addr,
        "/api/fs/mount",
        &format!(r#"{{"path":"{path}"}}"#),
    );
    assert_eq!(status, 200, "mount {path}: {body}\n{}", d.log());
    serde_json::from_str(&body).expect("JSON")
}

/// Asks for `path` to be mounted over the change list `cl`; returns (status, body) as they come.
pub fn mount_cl(d: &Daemon, path: &str, cl: &str) -> (u16, String) {
    http::post(
        &d.http_addr,
        "/api/fs/mount",
        &format!(r#"{{"path":"{path}","cl":"{cl}"}}"#),
    )
}

/// Makes `path` read-only again; panics when refused.
pub fn unmount(d: &Daemon, path: &str) {
    let (status, body) = http::post(
        &d.http_addr,
        "/api/fs/unmount",
        &format!(r#"{{"path":"{path}"}}"#),
    );
    assert_eq!(status, 200, "unmount {path}: {body}");
}

/// The upper layer of the only mounted writable path.
pub fn only_upper(d: &Daemon) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(d.store.join("mounts"))
        .expect("mounts dir")
        .flatten()
        .map(|e| e.path().join("upper"))
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// Everything under the store's layer directory, with sizes: what "nothing changed on disk" means.
pub fn layer_snapshot(store: &Path) -> Vec<(PathBuf, u64)> {
    let root = store.join("mounts");
    if !root.exists() {
        return Vec::new();
    }
    walkdir::WalkDir::new(&root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| {
            (
                e.path().to_path_buf(),
                e.metadata().map(|m| m.len()).unwrap_or(0),
            )
        })
        .collect()
}

/// `GET /api/git/status{query}` as (kind, path) pairs.
pub fn changes(d: &Daemon, query: &str) -> Vec<(String, String)> {
    let (code, body) = http::get(&d.http_addr, &format!("/api/git/status{query}"));
    assert_eq!(code, 200, "{body}");
    change_pairs(&body)
}

/// The (kind, path) pairs of a `GET /api/git/status` answer.
pub fn change_pairs(body: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(body).expect("status is JSON");
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
    run_with_timeout(scorpio_command(&d.config_path).args(args), 120)
}

/// A reply body as JSON; panics when it is not JSON.
pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A reply body as JSON, or as a JSON string when it is not JSON.
pub fn json_or_text(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|_| serde_json::Value::String(body.to_string()))
}

/// `POST /api/git/commit` with `body` as given; returns the status and the reply.
pub fn commit_body(d: &Daemon, body: &str) -> (u16, serde_json::Value) {
    let (code, resp) = http::post(&d.http_addr, "/api/git/commit", body);
    (code, json_or_text(&resp))
}

/// `POST /api/git/commit` of everything changed, with `message`.
pub fn commit(d: &Daemon, message: &str) -> (u16, serde_json::Value) {
    commit_body(d, &serde_json::json!({ "message": message }).to_string())
}

/// `POST /api/git/push` (all writable paths): the status code and the JSON answer.
pub fn push(d: &Daemon) -> (u16, serde_json::Value) {
    let (code, body) = http::post(&d.http_addr, "/api/git/push", "{}");
    (code, json(&body))
}

/// `GET /api/git/status`, which must answer 200: its JSON.
pub fn status(d: &Daemon) -> serde_json::Value {
    let (code, body) = http::get(&d.http_addr, "/api/git/status");
    assert_eq!(code, 200, "{body}");
    json(&body)
}
