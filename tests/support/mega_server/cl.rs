//! Change lists of the test Mega server and their routes, as Mega answers them:
//! `GET /api/v1/cl/<link>/files-list` (paths relative to the CL's path),
//! `GET /api/v1/cl/<link>/update-status` (`target_head`: the path's advertised `main`),
//! `POST /api/v1/cl/list` (`{additional: {status, asc}, pagination: {page, per_page}}` ->
//! `{total, items: [{id, link, title, status, author, ...}]}`) and
//! `POST /api/v1/cl/<link>/merge-no-auth` (a new monorepo commit with the CL's tree at its path).

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use git2::{Oid, Repository, Tree};
use serde_json::{json, Value};

use super::paths::{kind, land};
use super::{apply_fault, blocking, main_commit, AppState, Fail};

/// Where a CL is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ClStatus {
    /// Listed as `open`; a push to its path updates it.
    Open,
    /// Landed on `main`.
    Merged,
}

impl ClStatus {
    /// As Mega lists it.
    fn as_str(self) -> &'static str {
        match self {
            ClStatus::Open => "Open",
            ClStatus::Merged => "Merged",
        }
    }

    /// Whether `additional.status` of a list request (`open`, `closed`, ...; `""`: all) takes it.
    fn listed_by(self, filter: &str) -> bool {
        match filter {
            "" => true,
            f if f.eq_ignore_ascii_case("open") => self == ClStatus::Open,
            _ => self != ClStatus::Open,
        }
    }
}

/// One change list.
#[derive(Clone, Debug)]
pub(super) struct Cl {
    /// Its repository path (`""`: the root).
    pub path: String,
    /// The `files-list` items.
    pub items: Value,
    /// The pushed commit (`None` for a CL defined by a test with `set_cl_at`).
    pub commit: Option<Oid>,
    /// The path's `main` the commit was pushed on.
    pub from: Option<Oid>,
    /// The first line of the pushed commit's message.
    pub title: String,
    /// Open or merged.
    pub status: ClStatus,
    /// A number, as Mega lists it.
    pub id: i64,
    /// When it was opened and last updated (seconds since the epoch).
    pub opened: i64,
    pub updated: i64,
}

impl Cl {
    /// A CL a test defines: open, no commit behind it.
    pub(super) fn defined(path: &str, items: Value, id: i64) -> Cl {
        Cl {
            path: path.trim_matches('/').to_string(),
            items,
            commit: None,
            from: None,
            title: String::new(),
            status: ClStatus::Open,
            id,
            opened: now(),
            updated: now(),
        }
    }
}

/// Seconds since the epoch.
pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A new CL link: 8 uppercase letters and digits, as Mega's.
pub(super) fn new_link() -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uuid::Uuid::new_v4().as_bytes()[..8]
        .iter()
        .map(|b| ABC[*b as usize % ABC.len()] as char)
        .collect()
}

/// The `files-list` items from `old` to `new` (paths relative to both trees' top): `new`,
/// `deleted`, `modified` (no rename detection).
pub(super) fn files_between(
    repo: &Repository,
    old: Option<&Tree<'_>>,
    new: &Tree<'_>,
) -> Result<Value, Fail> {
    let diff = repo
        .diff_tree_to_tree(old, Some(new), None)
        .map_err(|e| Fail::internal(format!("diff: {e}")))?;
    let mut out = Vec::new();
    for d in diff.deltas() {
        let (file, action) = match d.status() {
            git2::Delta::Added => (d.new_file(), "new"),
            git2::Delta::Deleted => (d.old_file(), "deleted"),
            _ => (d.new_file(), "modified"),
        };
        let path = file
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push(json!({"path": path, "sha": file.id().to_string(), "action": action}));
    }
    Ok(Value::Array(out))
}

fn ok(data: Value) -> Response {
    Json(json!({"req_result": true, "data": data, "err_message": ""})).into_response()
}

/// `GET /api/v1/cl/{link}/files-list`.
pub(super) async fn cl_files(
    State(state): State<AppState>,
    UrlPath(link): UrlPath<String>,
) -> Response {
    if let Some(resp) = apply_fault(&state).await {
        return resp;
    }
    let items = state.cls().get(&link).map(|cl| cl.items.clone());
    match items {
        Some(data) => ok(data),
        None => Fail::not_found("no such CL").json().into_response(),
    }
}

/// `GET /api/v1/cl/{link}/update-status`: `target_head` is what the CL's path advertises as
/// `main` (the repository's for the root); an unknown CL is a 500, as Mega answers it.
pub(super) async fn cl_status(
    State(state): State<AppState>,
    UrlPath(link): UrlPath<String>,
) -> Response {
    if let Some(resp) = apply_fault(&state).await {
        return resp;
    }
    let cl = state.cls().get(&link).cloned();
    let Some(cl) = cl else {
        return Fail::internal("Internal server error")
            .json()
            .into_response();
    };
    blocking(move || {
        let repo = state.open()?;
        let head = state
            .base_of(&repo, &kind(&format!("/{}", cl.path)))?
            .map(|o| o.to_string())
            .unwrap_or_else(|| Oid::zero().to_string());
        let base = cl
            .from
            .map(|o| o.to_string())
            .unwrap_or_else(|| head.clone());
        let outdated = base != head;
        Ok(ok(
            json!({"base_commit": base, "target_head": head, "outdated": outdated}),
        ))
    })
    .await
}

/// `POST /api/v1/cl/list`: the CLs `additional.status` takes (`open`; `closed` and anything
/// else: the others; absent: all), newest first unless `additional.asc`, one page. Items say
/// `Open`/`Merged` and `merge_timestamp: null`, as Mega's do.
pub(super) async fn cl_list(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    state.counts().cl_list += 1;
    if let Some(resp) = apply_fault(&state).await {
        return resp;
    }
    let q: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Fail::new(StatusCode::BAD_REQUEST, format!("bad body: {e}"))
                .json()
                .into_response()
        }
    };
    let status = q["additional"]["status"].as_str().unwrap_or("").to_string();
    let asc = q["additional"]["asc"].as_bool().unwrap_or(false);
    let page = q["pagination"]["page"].as_u64().unwrap_or(1).max(1) as usize;
    let per_page = q["pagination"]["per_page"].as_u64().unwrap_or(20).max(1) as usize;
    let mut cls: Vec<(String, Cl)> = state
        .cls()
        .iter()
        .filter(|(_, cl)| cl.status.listed_by(&status))
        .map(|(l, cl)| (l.clone(), cl.clone()))
        .collect();
    cls.sort_by_key(|(_, cl)| (cl.updated, cl.id));
    if !asc {
        cls.reverse();
    }
    let total = cls.len();
    let items: Vec<Value> = cls
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|(link, cl)| {
            json!({
                "id": cl.id, "link": link, "title": cl.title, "status": cl.status.as_str(),
                "author": "test", "open_timestamp": cl.opened, "closed_at": null,
                "merge_timestamp": null, "updated_at": cl.updated, "labels": [],
                "assignees": [], "comment_num": 0,
            })
        })
        .collect();
    ok(json!({"total": total, "items": items}))
}

/// `POST /api/v1/cl/{link}/merge-no-auth`: lands an open CL pushed on its path's current `main`
/// (else "ref hash conflict", as Mega's code says): a new monorepo commit on `main` ("cl merge
/// generated commit", by `mega`) whose tree has the CL's tree at the CL's path. The path's `main`
/// is made afresh on the next request. An unknown CL is a 404, one not open a 400, in Mega's
/// words.
pub(super) async fn cl_merge(
    State(state): State<AppState>,
    UrlPath(link): UrlPath<String>,
) -> Response {
    state.counts().merge += 1;
    if let Some(resp) = apply_fault(&state).await {
        return resp;
    }
    let shared = state.clone();
    let _one = shared.git_lock.lock().await;
    blocking(move || {
        let cl = state.cls().get(&link).cloned().ok_or_else(|| {
            Fail::not_found(format!("Not Found error: CL not found: {link}")).json()
        })?;
        if cl.status != ClStatus::Open {
            return Err(Fail::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "Bad request: CL is not in Open status, current status: {}",
                    cl.status.as_str()
                ),
            )
            .json());
        }
        let commit = cl
            .commit
            .ok_or_else(|| Fail::internal("the test server has no commit for this CL").json())?;
        let repo = state.open().map_err(Fail::json)?;
        let head = state
            .base_of(&repo, &kind(&format!("/{}", cl.path)))
            .map_err(Fail::json)?;
        if cl.from != head {
            return Err(Fail::internal("ref hash conflict").json());
        }
        let tree = repo
            .find_commit(commit)
            .map(|c| c.tree_id())
            .map_err(|e| Fail::internal(e.to_string()).json())?;
        let sig = git2::Signature::now("mega", "mega@test-server")
            .map_err(|e| Fail::internal(e.to_string()).json())?;
        land(&repo, &cl.path, tree, "cl merge generated commit", &sig).map_err(Fail::json)?;
        main_commit(&repo).map_err(Fail::json)?;
        state.mains().remove(&cl.path);
        if let Some(c) = state.cls().get_mut(&link) {
            c.status = ClStatus::Merged;
        }
        Ok(ok(json!("Merge completed successfully")))
    })
    .await
}
