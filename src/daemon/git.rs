//! Version-control routes: `/api/git/status|diff|commit|push|pull|reset` and `POST /api/commit`.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiJson, AppError, AppState};
use crate::vcs::status::Change;
use crate::vcs::{diff, status, VcsError};

/// `?path=`: one mounted path, or every one when absent.
#[derive(Deserialize, Debug, Default)]
pub struct PathQuery {
    /// Repository path of a writable mount.
    #[serde(default)]
    pub path: Option<String>,
}

/// Answer of `GET /api/git/status`.
#[derive(Serialize, Deserialize, Debug)]
pub struct StatusResponse {
    /// The path asked about (`""` for all).
    pub path: String,
    /// The commit the changes are relative to.
    pub base: String,
    /// The last local commit (the base when there is none).
    pub head: String,
    /// Local commits not pushed yet.
    pub ahead: u64,
    /// Changes, sorted by path; a change a push sent to a change list has `cl`
    /// (`{link, path, current}`, see `vcs::mega::InCl`).
    pub changes: Vec<serde_json::Value>,
    /// The change lists the writable paths were pushed to (Mega), by path.
    #[serde(default)]
    pub cls: Vec<crate::vcs::mega::ClRecord>,
    /// Changes a pull left in conflict (also marked `conflict` in `changes`).
    #[serde(default)]
    pub conflicts: usize,
}

impl From<VcsError> for AppError {
    fn from(e: VcsError) -> Self {
        let (status, code) = match &e {
            VcsError::Unstable(_) => (StatusCode::CONFLICT, "CHANGED_DURING_READ"),
            VcsError::NoSpace(_) => (StatusCode::INSUFFICIENT_STORAGE, "NO_SPACE"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "VCS_FAILED"),
        };
        AppError::new(status, code, e.to_string())
    }
}

async fn collect(s: &AppState, path: Option<&str>) -> Result<Vec<Change>, AppError> {
    let m = super::workspace::writable_paths(s)?;
    let mut out = Vec::new();
    for (p, upper, lower) in m.layers(path).await? {
        out.extend(status::status(m.dicfuse(), &upper, Some(lower), &p).await?);
    }
    Ok(out)
}

async fn get_status(
    State(s): State<AppState>,
    Query(q): Query<PathQuery>,
) -> Result<Json<StatusResponse>, AppError> {
    let v = vcs(&s)?;
    let cls = v.cl_records();
    let conflicts = v.conflicts();
    let changes: Vec<serde_json::Value> = collect(&s, q.path.as_deref())
        .await?
        .into_iter()
        .map(|c| {
            let mut j = serde_json::to_value(&c).unwrap_or_default();
            let path = String::from_utf8_lossy(&c.path);
            if let Some(cl) = v.in_cl(&cls, &path, c.old.map(|o| o.oid), c.new.map(|n| n.oid)) {
                j["cl"] = serde_json::to_value(cl).unwrap_or_default();
            }
            if let Some(k) = crate::vcs::Vcs::conflict_at(&conflicts, &path) {
                j["conflict"] = serde_json::json!({"since": k.since, "pulled": k.pulled});
            }
            j
        })
        .collect();
    let (head, ahead) = v.head();
    let in_conflict = changes
        .iter()
        .filter(|c: &&serde_json::Value| c.get("conflict").is_some())
        .count();
    Ok(Json(StatusResponse {
        path: q.path.unwrap_or_default(),
        base: v.base().to_hex(),
        head: head.to_hex(),
        ahead,
        changes,
        cls,
        conflicts: in_conflict,
    }))
}

async fn get_diff(
    State(s): State<AppState>,
    Query(q): Query<PathQuery>,
) -> Result<impl IntoResponse, AppError> {
    let m = super::workspace::writable_paths(&s)?;
    let mut text = String::new();
    for (p, upper, lower) in m.layers(q.path.as_deref()).await? {
        text.push_str(&diff::diff(m.dicfuse(), &upper, Some(lower), &p).await?);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

fn vcs(s: &AppState) -> Result<std::sync::Arc<crate::vcs::Vcs>, AppError> {
    s.vcs.clone().ok_or_else(|| {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "NO_WORKSPACE",
            "no workspace is mounted",
        )
    })
}

impl From<crate::vcs::CommitError> for AppError {
    fn from(e: crate::vcs::CommitError) -> Self {
        use crate::vcs::CommitError as E;
        match e {
            E::NothingToCommit => {
                AppError::new(StatusCode::CONFLICT, "NOTHING_TO_COMMIT", e.to_string())
            }
            E::NoMessage => AppError::new(StatusCode::BAD_REQUEST, "NO_MESSAGE", e.to_string()),
            E::Failed(inner @ VcsError::Unstable(_)) => AppError::new(
                StatusCode::CONFLICT,
                "CHANGED_DURING_COMMIT",
                format!("{inner}; nothing was committed"),
            ),
            E::Failed(inner @ VcsError::NoSpace(_)) => AppError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "NO_SPACE",
                format!("{inner}; nothing was committed, free some space and commit again"),
            ),
            E::Failed(inner) => inner.into(),
        }
    }
}

/// An author given in a request.
#[derive(Deserialize, Serialize, Debug, Clone)]
pub struct AuthorBody {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
}

/// Body of `POST /api/git/commit` and `POST /api/commit`.
#[derive(Deserialize, Serialize, Debug)]
pub struct CommitRequest {
    /// One writable path (absent: every one).
    #[serde(default)]
    pub path: Option<String>,
    /// The commit message.
    pub message: String,
    /// The author (default: `git_author`/`git_email` from the config).
    #[serde(default)]
    pub author: Option<AuthorBody>,
}

async fn post_commit(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<CommitRequest>,
) -> Result<Json<crate::vcs::CommitOutcome>, AppError> {
    let v = vcs(&s)?;
    let m = super::workspace::writable_paths(&s)?;
    // `path` narrows which writable paths' changes are taken.
    let layers = m.layers(req.path.as_deref()).await?;
    let author = req.author.map(|a| crate::vcs::commit::Author {
        name: a.name,
        email: a.email,
    });
    Ok(Json(v.commit(layers, &req.message, author).await?))
}

impl From<crate::vcs::PushFailure> for AppError {
    fn from(e: crate::vcs::PushFailure) -> Self {
        use crate::remote::PushError as P;
        use crate::vcs::PushFailure as F;
        let (status, code) = match &e {
            F::NothingToPush(_) => (StatusCode::CONFLICT, "NOTHING_TO_PUSH"),
            F::Push(P::Moved { .. }) => (StatusCode::CONFLICT, "REMOTE_MOVED"),
            F::Push(P::Refused { .. }) => (StatusCode::CONFLICT, "PUSH_REFUSED"),
            F::Push(P::NoBranch(_)) => (StatusCode::BAD_REQUEST, "NO_BRANCH"),
            F::Push(P::Remote(_)) => (StatusCode::BAD_GATEWAY, "REMOTE_FAILED"),
            F::Unsupported(_) => (StatusCode::CONFLICT, "PUSH_UNSUPPORTED"),
            F::Rebase { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "REBASE_FAILED"),
            F::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "VCS_FAILED"),
        };
        let msg = match &e {
            F::Push(_) | F::NothingToPush(_) => {
                format!("{e}; nothing changed in the workspace")
            }
            _ => e.to_string(),
        };
        AppError::new(status, code, msg)
    }
}

/// Body of `POST /api/git/push` (optional).
#[derive(Deserialize, Serialize, Debug, Default)]
pub struct PushRequest {
    /// A writable path: on a Mega remote only that path is pushed; elsewhere the push carries
    /// the local commits, which hold every writable path's changes, so this only checks that
    /// the path is mounted.
    #[serde(default)]
    pub path: Option<String>,
}

async fn post_push(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<PushRequest>,
) -> Result<Json<serde_json::Value>, AppError> {
    let v = vcs(&s)?;
    let m = super::workspace::writable_paths(&s)?;
    let only = match req.path.as_deref() {
        Some(p) => m
            .layers(Some(p))
            .await?
            .into_iter()
            .next()
            .map(|(p, _, _)| p),
        None => None,
    };
    no_antares(&s, "push")?;
    let crate::workspace::Pushed {
        outcome,
        mega,
        pruned,
    } = m.push(&v, only.as_deref()).await?;
    let mut body = match &outcome {
        Some(out) => serde_json::to_value(out).unwrap_or_default(),
        None => serde_json::json!({}),
    };
    let mut lines = Vec::new();
    if let Some(out) = &outcome {
        lines.push(format!(
            "pushed {} to {} {} ({} commit(s), {} objects, {} bytes); {pruned} upper entries now come from the pushed commit",
            out.commit, out.target, out.refname, out.commits, out.objects, out.pack_bytes
        ));
    }
    for (repo, main) in &mega.repositories {
        lines.push(format!("/{repo}: main is now {main}"));
    }
    for cl in &mega.cls {
        lines.push(format!(
            "/{}: change list {} ({}); the changes stay in the workspace until it is merged",
            cl.path,
            cl.link.as_deref().unwrap_or("(link not found)"),
            cl.commit
        ));
    }
    body["status"] = "Success".into();
    body["moved"] = outcome.is_some().into();
    body["settled"] = pruned.into();
    body["repositories"] = serde_json::to_value(&mega.repositories).unwrap_or_default();
    body["cls"] = serde_json::to_value(&mega.cls).unwrap_or_default();
    body["message"] = lines.join("\n").into();
    Ok(Json(body))
}

/// CI mounts of this daemon sit on the same read-only view, which a push or a pull moves;
/// their jobs must not see the base change under them.
fn no_antares(s: &AppState, what: &str) -> Result<(), AppError> {
    match s.antares.as_ref().map(|a| a.count()).filter(|n| *n > 0) {
        Some(n) => Err(AppError::new(
            StatusCode::CONFLICT,
            "ANTARES_MOUNTS_ACTIVE",
            format!("{n} Antares mount(s) share this daemon's view of the commit, which a {what} would move under them; delete them (or run Antares standalone) and {what} again; nothing changed"),
        )),
        None => Ok(()),
    }
}

impl From<crate::vcs::pull::PullFailure> for AppError {
    fn from(e: crate::vcs::pull::PullFailure) -> Self {
        use crate::vcs::pull::PullFailure as F;
        let (status, code) = match &e {
            F::CommitsAhead(..) => (StatusCode::CONFLICT, "COMMITS_AHEAD"),
            F::MountedPathGone { .. } => (StatusCode::CONFLICT, "MOUNTED_PATH_GONE"),
            F::Remote(_) => (StatusCode::BAD_GATEWAY, "REMOTE_FAILED"),
            F::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "VCS_FAILED"),
        };
        AppError::new(
            status,
            code,
            format!("{e}; nothing changed in the workspace"),
        )
    }
}

async fn post_pull(State(s): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    let v = vcs(&s)?;
    let m = super::workspace::writable_paths(&s)?;
    no_antares(&s, "pull")?;
    let p = m.pull(&v).await?;
    let mut lines = vec![if p.up_to_date {
        format!("already at the newest commit {}", p.commit)
    } else {
        format!(
            "moved from {} to {} ({} paths changed, {} directories listed); {} upper entries now come from the new commit",
            p.previous, p.commit, p.changed, p.listed, p.pruned
        )
    }];
    if let Some(c) = &p.carried {
        lines.push(format!(
            "{} local commit(s) not pushed yet are now one local commit on it: {c}",
            p.carried_commits
        ));
    }
    if p.dropped_commits > 0 {
        lines.push(format!(
            "{} local commit(s) sent to change lists are left behind; what is not merged stays as changes",
            p.dropped_commits
        ));
    }
    for c in &p.conflicts {
        lines.push(format!(
            "conflict: {} changed here and in {}; the local version stays",
            c.path, c.pulled
        ));
    }
    let mut body = serde_json::to_value(&p).unwrap_or_default();
    body["status"] = "Success".into();
    body["message"] = lines.join("\n").into();
    Ok(Json(body))
}

/// Body of `POST /api/git/reset`.
#[derive(Deserialize, Serialize, Debug)]
pub struct ResetRequest {
    /// A mounted path (drop all its changes) or a path inside one (drop the changes there).
    pub path: String,
}

async fn post_reset(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<ResetRequest>,
) -> Result<Json<serde_json::Value>, AppError> {
    let m = super::workspace::writable_paths(&s)?;
    let (mounted, removed) = m.reset(&req.path).await?;
    if let Some(v) = &s.vcs {
        // What a pull left in conflict there is gone with the changes.
        v.clear_conflicts(req.path.trim_matches('/'));
    }
    Ok(Json(serde_json::json!({
        "status": "Success",
        "path": mounted,
        "removed": removed,
        "message": format!("dropped the changes at {:?} ({removed} upper entries)", req.path),
    })))
}

/// The version-control routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/git/status", get(get_status))
        .route("/api/git/diff", get(get_diff))
        .route("/api/git/reset", post(post_reset))
        .route("/api/git/commit", post(post_commit))
        .route("/api/git/push", post(post_push))
        .route("/api/git/pull", post(post_pull))
        .route("/api/commit", post(post_commit))
}
