//! `scorpio prefetch`: starts a job on the daemon and follows it to its end, with a live line
//! on a terminal (objects, bytes, rate) and one summary line at the end (the only output when
//! stderr is not a terminal). Ctrl-C cancels the job on the daemon.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::{human_bytes, JobState, Snapshot};
use crate::cli::exit;
use crate::client::{request, Outcome};
use crate::config::Config;

/// How often the job is asked for its progress.
const POLL: Duration = Duration::from_millis(200);

/// The repository path `arg` names: a path inside the workspace (absolute, or relative to a
/// current directory inside it) becomes the path under its root; anything else is sent as given
/// (a repository path, checked by the daemon).
pub fn repo_arg(workspace: &Path, arg: &str) -> String {
    let Ok(abs) = std::path::absolute(arg) else {
        return arg.to_string();
    };
    // Lexically: the workspace may be a mount that does not answer, and `..` must not follow
    // a symlink out of it.
    let mut norm = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                norm.pop();
            }
            Component::CurDir => {}
            c => norm.push(c),
        }
    }
    let ws = std::path::absolute(workspace).unwrap_or_else(|_| workspace.to_path_buf());
    match norm.strip_prefix(&ws) {
        Ok(rest) => rest.to_string_lossy().into_owned(),
        Err(_) => arg.to_string(),
    }
}

fn snapshot(v: Value) -> Result<Snapshot, Outcome> {
    serde_json::from_value(v).map_err(|e| Outcome {
        code: exit::FAILED,
        text: format!("the daemon answered something else than a prefetch job: {e}"),
    })
}

/// The live line's text.
fn live(s: &Snapshot) -> String {
    let secs = (s.elapsed_ms as f64 / 1e3).max(1e-3);
    format!(
        "{} dirs, {} blobs fetched ({}), {} kept; {:.0} objects/s, {}/s",
        s.dirs_fetched,
        s.blobs_fetched,
        human_bytes(s.bytes_fetched),
        s.kept(),
        s.fetched() as f64 / secs,
        human_bytes((s.bytes_fetched as f64 / secs) as u64),
    )
}

/// Runs `scorpio prefetch <path> [--depth N] [--blobs]` against the daemon of `cfg`.
pub async fn run(cfg: &Config, path: &str, depth: Option<u32>, blobs: bool) -> Outcome {
    let path = repo_arg(&cfg.workspace, path);
    let base = format!("http://{}/api/prefetch", cfg.http_addr);
    let what = format!("the daemon at {}", cfg.http_addr);
    let body = json!({"path": path, "depth": depth, "blobs": blobs});
    let started = request(cfg, &what, reqwest::Method::POST, &base, Some(body)).await;
    let mut snap = match started.and_then(snapshot) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let url = format!("{base}/{}", snap.id);
    let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let b = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} prefetch {prefix}: {msg}") {
            b.set_style(style);
        }
        b.set_prefix(if snap.path.is_empty() {
            "/".to_string()
        } else {
            snap.path.clone()
        });
        b.enable_steady_tick(Duration::from_millis(120));
        b
    });
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    while snap.state == JobState::Running {
        let method = tokio::select! {
            _ = &mut ctrl_c => reqwest::Method::DELETE,
            _ = tokio::time::sleep(POLL) => reqwest::Method::GET,
        };
        let cancelling = method == reqwest::Method::DELETE;
        match request(cfg, &what, method, &url, None)
            .await
            .and_then(snapshot)
        {
            Ok(s) => snap = s,
            Err(o) => {
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                return o;
            }
        }
        if let Some(b) = &bar {
            b.set_message(live(&snap));
        }
        if cancelling {
            break;
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let mut text = snap.summary();
    if let Some(e) = &snap.error {
        text.push_str(&format!(": {e}"));
    }
    Outcome {
        code: if snap.state == JobState::Done {
            exit::OK
        } else {
            exit::FAILED
        },
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_paths_become_repository_paths() {
        let ws = Path::new("/ws/mnt");
        assert_eq!(repo_arg(ws, "/ws/mnt/a/b"), "a/b");
        assert_eq!(repo_arg(ws, "/ws/mnt"), "");
        assert_eq!(repo_arg(ws, "/ws/mnt/a/../b"), "b");
        // Outside the workspace: as given, for the daemon to judge.
        assert_eq!(repo_arg(ws, "/a/b"), "/a/b");
        assert_eq!(repo_arg(ws, "/ws/mnt/../x"), "/ws/mnt/../x");
    }
}
