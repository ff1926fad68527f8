//! A Mega-API test server: axum + git2 over a bare repository, with the semantics of the real
//! Mega `mono` server (`../shared/mega/README.md`, checked against it), request counters and
//! fault injection.
//!
//! Git smart HTTP (`<path>.git/info/refs`, `<path>.git/git-receive-pack`,
//! `<path>.git/git-upload-pack`) is handed to the real `git http-backend` as a CGI over the one
//! bare repository served, so `git clone`/`git push` work against the server and pushes are
//! accepted or refused by real git (`receive.fsckObjects` and `receive.denyNonFastForwards` are
//! switched on, and a `pre-receive` hook installed, when the server starts). What a path means
//! is Mega's (see `paths`): at `/P.git` (`/.git`: the root) a push of ONE commit on the path's
//! advertised `main` opens or updates the path's change list (CL) and `main` stays;
//! `/third-party/<name>.git` is that import repository, whose `main` a push moves. The double's
//! own plain endpoint, [`MegaServer::git_url`] (`/git/<name>.git`), is the whole repository with
//! `main` moving on a push: a daemon's `push_url` for tests that mean "a git server".
//! With [`MegaServer::set_push_token`], receive-pack requests need `Authorization: Bearer <token>`.
//!
//! Change lists live at a path, as Mega's do (see `cl`): pushed ones, and ones a test defines
//! ([`MegaServer::set_cl_at`], no commit behind them). `files-list` names their files relative
//! to the path, `update-status` gives `target_head` (the path's advertised `main`), `cl/list`
//! lists them, `merge-no-auth` lands a pushed one on `main`.
//!
//! At the top of a `/third-party/<name>` directory Mega's monorepo tree holds a placeholder, whose
//! id is what the parent lists and what `file/tree?oid=` answers with an empty body; the
//! repository's tree comes without `oid`. Here the parent lists the real tree id, so `file/tree`
//! with any `oid` is empty there, which gives a reader the same answers. Inside such a
//! repository `tree/content-hash` ignores `refs`, as Mega's does (its listing there is always
//! the repository's current one).
//!
//! Differences from the real Mega found so far (F: fixed here; L: left, on purpose or not known):
//! - F: a push to `/P.git` ran git over the whole repository and moved `main`; now it opens or
//!   updates `P`'s CL (one open CL per path; the double has one user) and `main` stays. The
//!   root (`/.git`) too.
//! - F: `P.git/info/refs` advertised the whole repository's refs (or, at a CL's path, a made-up
//!   id with no object behind it); now `main` is the per-path commit `X` (`P`'s tree at
//!   `main`, no parent, `main`'s author and message, made on first request and kept) and the
//!   open CLs are `refs/cl/<link>`, for upload-pack and receive-pack alike; a clone of `P.git`
//!   is `P`'s tree.
//! - F: more than one commit in a push to a path was taken; now refused with Mega's report
//!   (`ng refs/heads/main Git error: only single commit support in each push`, a `pre-receive`
//!   hook's verdict sent in Mega's words).
//! - F: `/third-party/<name>.git` advertised the monorepo's `main`, and a push there put the
//!   repository's tree at the monorepo's top; now it has its own `main` (a commit of its tree)
//!   and a push moves that.
//! - F: no `POST /api/v1/cl/list` and no `POST /api/v1/cl/<link>/merge-no-auth`; now both, with
//!   Mega's bodies (`{total, items}`; `"Merge completed successfully"`; "ref hash conflict"
//!   when the path's `main` is no longer the CL's base).
//! - L: Mega takes a (forced) push of a commit that does not descend from the path's `main` `X`
//!   and diffs its tree with `X`'s (checked against mono); here git's
//!   `receive.denyNonFastForwards` refuses it, which a request cannot switch off (http-backend's
//!   child drops `GIT_CONFIG_*`). A commit on `X`, as scorpio sends, is taken the same way.
//! - F (checked against mono by hand): `cl/list` items say `Open`/`Merged` with `merge_timestamp: null`, `closed` lists the
//!   merged ones; merging an unknown CL is a 404 (`Not Found error: CL not found: <link>`), a
//!   merged one a 400 (`Bad request: CL is not in Open status, current status: Merged`); the
//!   merge commit says `cl merge generated commit` by `mega`.
//! - L: Mega names the first push's CL ref differently from the CL at times, and its merge can
//!   put a tree one level too high (`propagate_up`): the double has neither bug.
//! - L: Mega keeps `/third-party/<name>` apart and holds a placeholder in the monorepo tree; the
//!   double keeps the repository's tree there, so a push there also writes a monorepo commit
//!   (Mega's `latest-commit` after such a push was not compared).
//! - L: `files-list` has no rename detection (`new`/`deleted`/`modified` only); `cl/list` items
//!   carry a fixed `author` (`test`; Mega: the token's user) and small ids; "ref hash conflict"
//!   (a CL whose base is no longer the path's `main`) is a 500 here, Mega's status for it was not
//!   checked. Mega kept advertising a stale `refs/cl/<name>` (its first-push ref-name bug) after
//!   the CL merged; here only open CLs are advertised.
//! - L: at a path where `main` has no tree, nothing is advertised and a pushed commit's files are
//!   all `new`; its merge makes the directories (Mega bootstraps `/project/...` paths there; not
//!   compared). Deleting a ref through a path is refused here (not compared).
//! - L: `/git/<name>.git` is not a Mega route (a Mega path `/git` would be shadowed).
//!
//! The server runs on its own tokio runtime in a background std thread, so tests can be plain
//! `#[test]` functions and the server keeps answering while the test thread is blocked in a
//! filesystem syscall on a FUSE mount.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use git2::{ObjectType, Oid, Repository, Tree};
use serde_json::json;

mod cl;
mod git;
mod paths;
use cl::Cl;
use git::{git_smart_http, make_strict};

/// Requests that reached a handler (faulted ones included), per route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `GET /api/v1/latest-commit`.
    pub latest_commit: usize,
    /// `path` of each `GET /api/v1/file/tree`, in order (as sent, `""` if absent).
    pub tree: Vec<String>,
    /// `path` of each `GET /api/v1/tree/content-hash`, in order (as sent, `""` if absent).
    pub content_hash: Vec<String>,
    /// oid of each `GET /api/v1/file/blob/{oid}`, in order.
    pub blob_get: Vec<String>,
    /// oid of each `HEAD /api/v1/file/blob/{oid}`, in order.
    pub blob_head: Vec<String>,
    /// `GET <path>.git/info/refs` (any `service`, unauthorized ones included).
    pub info_refs: usize,
    /// `POST <path>.git/git-receive-pack` (unauthorized and refused ones included).
    pub receive_pack: usize,
    /// `POST <path>.git/git-upload-pack`.
    pub upload_pack: usize,
    /// `POST /api/v1/cl/list`.
    pub cl_list: usize,
    /// `POST /api/v1/cl/{link}/merge-no-auth`.
    pub merge: usize,
}

/// An injected fault, applied to every request until changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Normal behaviour.
    #[default]
    None,
    /// Every route answers 500.
    Http500,
    /// Sleep this long before answering (then answer normally).
    Slow(Duration),
    /// Blob GET bodies have one byte flipped (same length; HEAD and empty blobs unchanged).
    WrongBytes,
    /// `POST .../git-receive-pack` answers 500 without running git (the push fails and the
    /// repository is unchanged); every other route, `info/refs` included, behaves normally.
    RefusePush,
    /// `POST .../git-receive-pack` waits this long, then runs git as usual (a push in flight).
    SlowPush(Duration),
}

struct Shared {
    repo_path: PathBuf,
    counts: Mutex<Counts>,
    fault: Mutex<Fault>,
    /// CL link -> the change list (see `cl`).
    cls: Mutex<BTreeMap<String, Cl>>,
    /// Repository path -> the commit it advertises as `main` (see `paths`).
    mains: Mutex<HashMap<String, Oid>>,
    /// Held while a path's namespace is set up, pushed to and set back, and while a CL merges.
    git_lock: tokio::sync::Mutex<()>,
    /// When set, receive-pack requests need `Authorization: Bearer <token>`.
    push_token: Mutex<Option<String>>,
    /// Blob requests (GET and HEAD) being answered now, and the most there were at once.
    blobs_in_flight: Mutex<(usize, usize)>,
}

/// One blob request being answered, counted in [`Shared::blobs_in_flight`] until dropped.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(state: &Arc<Shared>) -> InFlight {
        let mut n = state
            .blobs_in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        n.0 += 1;
        n.1 = n.1.max(n.0);
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut n = self
            .0
            .blobs_in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        n.0 -= 1;
    }
}

impl Shared {
    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fault(&self) -> Fault {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn push_token(&self) -> Option<String> {
        self.push_token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn cls(&self) -> MutexGuard<'_, BTreeMap<String, Cl>> {
        self.cls.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mains(&self) -> MutexGuard<'_, HashMap<String, Oid>> {
        self.mains.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> Result<Repository, Fail> {
        Repository::open_bare(&self.repo_path)
            .map_err(|e| Fail::internal(format!("open {}: {e}", self.repo_path.display())))
    }
}

type AppState = Arc<Shared>;

/// A background server thread with its own runtime.
struct Running {
    stop_tx: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The Mega-API test server. Dropping it stops the server and joins its thread.
pub struct MegaServer {
    port: u16,
    shared: Arc<Shared>,
    running: Option<Running>,
}

impl MegaServer {
    /// Serves the bare repository at `repo_path` on 127.0.0.1 with an ephemeral port.
    ///
    /// Sets `receive.fsckObjects=true` and `receive.denyNonFastForwards=true` in the repository's
    /// own config first, so pushes of bad objects and non-fast-forward pushes are refused.
    pub fn start(repo_path: &Path) -> MegaServer {
        make_strict(repo_path)
            .unwrap_or_else(|e| panic!("configure {} for pushes: {e}", repo_path.display()));
        paths::install_hook(repo_path)
            .unwrap_or_else(|e| panic!("install the pre-receive hook: {e}"));
        let shared = Arc::new(Shared {
            repo_path: repo_path.to_path_buf(),
            counts: Mutex::new(Counts::default()),
            fault: Mutex::new(Fault::None),
            cls: Mutex::new(BTreeMap::new()),
            mains: Mutex::new(HashMap::new()),
            git_lock: tokio::sync::Mutex::new(()),
            push_token: Mutex::new(None),
            blobs_in_flight: Mutex::new((0, 0)),
        });
        let (port, running) =
            spawn(shared.clone(), 0).unwrap_or_else(|e| panic!("start MegaServer: {e}"));
        MegaServer {
            port,
            shared,
            running: Some(running),
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The double's plain git smart-HTTP endpoint, `{url}/git/repo.git` (any
    /// `/git/<name>.git` serves the same): the whole repository, `main` moves on a push. Not a
    /// Mega route: for tests that mean "a git server" (the daemon's `push_url`).
    pub fn git_url(&self) -> String {
        format!("{}/git/repo.git", self.url())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn repo_path(&self) -> &Path {
        &self.shared.repo_path
    }

    /// Whether the server is currently serving (between start/restart and stop).
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// A snapshot of the request counters.
    pub fn counts(&self) -> Counts {
        self.shared.counts().clone()
    }

    pub fn reset_counts(&self) {
        *self.shared.counts() = Counts::default();
        let mut n = self
            .shared
            .blobs_in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        n.1 = n.0;
    }

    /// The most blob requests (`GET` and `HEAD /api/v1/file/blob/{oid}`, a `Fault::Slow` delay
    /// included) the server was answering at once since it started or counts were reset.
    pub fn blob_max_in_flight(&self) -> usize {
        self.shared
            .blobs_in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
    }

    /// Defines change list `link` at the root, as a push to `/.git` makes:
    /// `GET /api/v1/cl/{link}/files-list` answers with `items` (a JSON array of
    /// `{path, sha, action}`, paths relative to the root).
    pub fn set_cl(&self, link: &str, items: serde_json::Value) {
        self.set_cl_at(link, "/", items);
    }

    /// Defines change list `link` at repository path `path`, as a push to `<path>.git` makes:
    /// `items` name files relative to `path`.
    pub fn set_cl_at(&self, link: &str, path: &str, items: serde_json::Value) {
        let mut cls = self.shared.cls();
        let id = cls.len() as i64 + 1;
        cls.insert(link.to_string(), Cl::defined(path, items, id));
    }

    pub fn set_fault(&self, f: Fault) {
        *self.shared.fault.lock().unwrap_or_else(|e| e.into_inner()) = f;
    }

    pub fn fault(&self) -> Fault {
        self.shared.fault()
    }

    /// `Some(token)`: receive-pack requests (`info/refs?service=git-receive-pack` and
    /// `POST .../git-receive-pack`) without `Authorization: Bearer <token>` get 401, as Mega does.
    /// `None` (the default): no auth. Fetches (`git-upload-pack`) never need auth.
    pub fn set_push_token(&self, token: Option<String>) {
        *self
            .shared
            .push_token
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = token;
    }

    pub fn push_token(&self) -> Option<String> {
        self.shared.push_token()
    }

    /// Graceful shutdown: stops accepting, closes idle connections, waits (at most a few seconds)
    /// for in-flight requests, then joins the server thread. Afterwards the port refuses
    /// connections. Does nothing if already stopped.
    pub fn stop(&mut self) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        if let Some(tx) = running.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = running.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                if thread.join().is_err() {
                    eprintln!("MegaServer: server thread panicked");
                }
            } else {
                eprintln!("MegaServer: server thread did not stop within 10 s; detaching it");
            }
        }
    }

    /// Serves again on the SAME port (stopping first if running), keeping counters and fault.
    pub fn restart(&mut self) {
        self.stop();
        let (port, running) = spawn(self.shared.clone(), self.port)
            .unwrap_or_else(|e| panic!("restart MegaServer on port {}: {e}", self.port));
        assert_eq!(port, self.port, "restart bound a different port");
        self.running = Some(running);
    }
}

impl Drop for MegaServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds 127.0.0.1:`port` (0 = ephemeral) with SO_REUSEADDR, retrying for a few seconds while
/// the address is still in use.
async fn bind(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let attempt = (|| {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(1024)
        })();
        match attempt {
            Ok(listener) => return Ok(listener),
            Err(e) if port != 0 && Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Starts the server thread; returns the bound port once it is accepting connections.
fn spawn(shared: Arc<Shared>, port: u16) -> Result<(u16, Running), String> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<u16, String>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("mega-server-{port}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("mega-server-rt")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("build runtime: {e}")));
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match bind(port).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("bind 127.0.0.1:{port}: {e}")));
                        return;
                    }
                };
                let bound = match listener.local_addr() {
                    Ok(a) => a.port(),
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("local_addr: {e}")));
                        return;
                    }
                };
                let (graceful_tx, graceful_rx) = tokio::sync::oneshot::channel::<()>();
                let mut serve = tokio::spawn(async move {
                    axum::serve(listener, router(shared))
                        .with_graceful_shutdown(async move {
                            let _ = graceful_rx.await;
                        })
                        .await
                });
                let _ = ready_tx.send(Ok(bound));
                tokio::select! {
                    _ = stop_rx => {}
                    res = &mut serve => {
                        eprintln!("MegaServer: serve ended by itself: {res:?}");
                        return;
                    }
                }
                let _ = graceful_tx.send(());
                if tokio::time::timeout(Duration::from_secs(3), &mut serve)
                    .await
                    .is_err()
                {
                    serve.abort();
                    let _ = serve.await;
                }
            });
            // Drops any connection task still alive (e.g. a request sleeping in Fault::Slow).
            rt.shutdown_timeout(Duration::from_secs(2));
        })
        .map_err(|e| format!("spawn server thread: {e}"))?;
    match ready_rx.recv_timeout(Duration::from_secs(15)) {
        Ok(Ok(bound)) => Ok((
            bound,
            Running {
                stop_tx: Some(stop_tx),
                thread: Some(thread),
            },
        )),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(e) => Err(format!("server thread did not report readiness: {e}")),
    }
}

/// All routes. Everything not under the static API routes goes to [`git_smart_http`], which
/// answers `<path>.git/info/refs`, `<path>.git/git-receive-pack` and `<path>.git/git-upload-pack`
/// and 404s the rest.
fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/latest-commit", get(latest_commit))
        .route("/api/v1/file/tree", get(file_tree))
        .route("/api/v1/tree/content-hash", get(content_hash))
        .route("/api/v1/file/blob/{oid}", get(blob_get).head(blob_head))
        .route("/api/v1/cl/{link}/files-list", get(cl::cl_files))
        .route("/api/v1/cl/{link}/update-status", get(cl::cl_status))
        .route("/api/v1/cl/list", post(cl::cl_list))
        .route("/api/v1/cl/{link}/merge-no-auth", post(cl::cl_merge))
        .route("/{*rest}", get(git_smart_http).post(git_smart_http))
        .with_state(state)
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, msg.into()).into_response()
}

/// An error answer: plain text, or Mega's `CommonResult` JSON with `req_result: false`.
struct Fail {
    status: StatusCode,
    msg: String,
    json: bool,
}

impl Fail {
    fn new(status: StatusCode, msg: impl Into<String>) -> Fail {
        Fail {
            status,
            msg: msg.into(),
            json: false,
        }
    }

    fn internal(msg: impl Into<String>) -> Fail {
        Fail::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
    }

    fn not_found(msg: impl Into<String>) -> Fail {
        Fail::new(StatusCode::NOT_FOUND, msg)
    }

    fn json(mut self) -> Fail {
        self.json = true;
        self
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        if self.json {
            (
                self.status,
                Json(json!({"req_result": false, "data": null, "err_message": self.msg})),
            )
                .into_response()
        } else {
            text(self.status, self.msg)
        }
    }
}

type Reply = Result<Response, Fail>;

fn octets(body: Vec<u8>, len: usize) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from(body),
    )
        .into_response()
}

/// Applies the current fault before a handler answers. `Some(response)` means "answer this".
async fn apply_fault(state: &Shared) -> Option<Response> {
    match state.fault() {
        Fault::None | Fault::WrongBytes | Fault::RefusePush | Fault::SlowPush(_) => None,
        Fault::Http500 => Some(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected fault: HTTP 500",
        )),
        Fault::Slow(d) => {
            tokio::time::sleep(d).await;
            None
        }
    }
}

/// Runs blocking git work off the async workers.
async fn blocking<F>(f: F) -> Response
where
    F: FnOnce() -> Reply + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(fail)) => fail.into_response(),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("handler panicked: {e}"),
        ),
    }
}

fn main_commit(repo: &Repository) -> Result<git2::Commit<'_>, Fail> {
    repo.find_reference("refs/heads/main")
        .and_then(|r| r.peel_to_commit())
        .map_err(|e| Fail::internal(format!("resolve refs/heads/main: {e}")))
}

/// The tree at `path` (`/`, `""`, `/a/b`, `a/b/`) under `root`; `None` if absent or not a tree.
fn tree_at<'r>(repo: &'r Repository, root: Tree<'r>, path: &str) -> Option<Tree<'r>> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return None;
    }
    if parts.is_empty() {
        return Some(root);
    }
    let entry = root.get_path(Path::new(&parts.join("/"))).ok()?;
    if entry.kind() != Some(ObjectType::Tree) {
        return None;
    }
    repo.find_tree(entry.id()).ok()
}

/// How many components below `/third-party` the path is (1 at the top of a repository), or
/// `None` outside `/third-party/<name>`.
fn import_depth(path: &str) -> Option<usize> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["third-party", rest @ ..] if !rest.is_empty() => Some(rest.len()),
        _ => None,
    }
}

/// Whether `path` is the top of a `/third-party/<name>` repository.
fn is_import_top(path: &str) -> bool {
    import_depth(path) == Some(1)
}

fn parse_oid(hex: &str) -> Option<Oid> {
    if hex.len() != 40 {
        return None;
    }
    Oid::from_str(hex).ok()
}

// ---- handlers: count, apply the fault, then answer ----------------------------------------

async fn latest_commit(
    State(state): State<AppState>,
    Query(_q): Query<HashMap<String, String>>,
) -> Response {
    state.counts().latest_commit += 1;
    if let Some(resp) = apply_fault(&state).await {
        return resp;
    }
    blocking(move || {
        let repo = state.open()?;
        let commit = main_commit(&repo)?;
        let short = commit.summary().unwrap_or_default().to_string();
        Ok(Json(json!({
            "oid": commit.id().to_string(),
            "date": commit.time().seconds(),
            "short_message": short,
            "author": commit.author().name().unwrap_or_default(),
        }))
        .into_response())
    })
    .await
}

async fn file_tree(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = q.get("path").cloned().unwrap_or_default();
    state.counts().tree.push(path.clone());
    if let Some(resp) = apply_fault(&state).await {
        return resp;
    }
    let want = q.get("oid").filter(|s| !s.is_empty()).cloned();
    blocking(move || {
        let repo = state.open()?;
        let root = main_commit(&repo)?
            .tree()
            .map_err(|e| Fail::internal(e.to_string()))?;
        let tree = tree_at(&repo, root, &path)
            .ok_or_else(|| Fail::not_found(format!("no tree at {path:?}")))?;
        if let Some(want) = want {
            // Mega's answer for a tree that is not the current one at this path, and for the
            // placeholder id the parent lists at the top of a `/third-party/<name>` repository
            // (here the parent lists the real id: every id is answered so there).
            if !want.eq_ignore_ascii_case(&tree.id().to_string()) || is_import_top(&path) {
                return Ok(octets(Vec::new(), 0));
            }
        }
        let body = repo
            .odb()
            .and_then(|odb| odb.read(tree.id()).map(|o| o.data().to_vec()))
            .map_err(|e| Fail::internal(e.to_string()))?;
        let len = body.len();
        Ok(octets(body, len))
    })
    .await
}

async fn content_hash(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = q.get("path").cloned().unwrap_or_default();
    state.counts().content_hash.push(path.clone());
    if let Some(resp) = apply_fault(&state).await {
        return resp;
    }
    // Mega ignores `refs` inside a `/third-party` repository: its listing is always that
    // repository's current one.
    let refs = q
        .get("refs")
        .filter(|s| !s.is_empty() && import_depth(&path).is_none())
        .cloned();
    blocking(move || {
        let repo = state.open().map_err(Fail::json)?;
        let commit = match refs {
            None => main_commit(&repo).map_err(Fail::json)?,
            Some(refs) => Oid::from_str(&refs)
                .and_then(|oid| repo.find_commit(oid))
                .map_err(|e| Fail::not_found(format!("unknown commit {refs}: {e}")).json())?,
        };
        let root = commit
            .tree()
            .map_err(|e| Fail::internal(e.to_string()).json())?;
        let tree = tree_at(&repo, root, &path)
            .ok_or_else(|| Fail::not_found(format!("path not found: {path}")).json())?;
        let data: Vec<serde_json::Value> = tree
            .iter()
            .map(|e| {
                let content_type = match e.kind() {
                    Some(ObjectType::Tree) | Some(ObjectType::Commit) => "directory",
                    _ => "file",
                };
                json!({
                    "name": String::from_utf8_lossy(e.name_bytes()),
                    "content_type": content_type,
                    "oid": e.id().to_string(),
                })
            })
            .collect();
        Ok(Json(json!({"req_result": true, "data": data, "err_message": ""})).into_response())
    })
    .await
}

async fn blob_get(State(state): State<AppState>, UrlPath(oid): UrlPath<String>) -> Response {
    state.counts().blob_get.push(oid.clone());
    let _in_flight = InFlight::enter(&state);
    if let Some(resp) = apply_fault(&state).await {
        return resp;
    }
    let wrong = state.fault() == Fault::WrongBytes;
    blocking(move || {
        let id = parse_oid(&oid).ok_or_else(|| Fail::not_found(format!("bad oid {oid}")))?;
        let repo = state.open()?;
        let (kind, mut body) = repo
            .odb()
            .and_then(|odb| odb.read(id).map(|o| (o.kind(), o.data().to_vec())))
            .map_err(|e| Fail::not_found(format!("{oid}: {e}")))?;
        if kind != ObjectType::Blob {
            return Err(Fail::not_found(format!("{oid} is a {kind}, not a blob")));
        }
        if wrong && !body.is_empty() {
            let i = body.len() / 2;
            body[i] ^= 0xff;
        }
        let len = body.len();
        Ok(octets(body, len))
    })
    .await
}

async fn blob_head(State(state): State<AppState>, UrlPath(oid): UrlPath<String>) -> Response {
    state.counts().blob_head.push(oid.clone());
    let _in_flight = InFlight::enter(&state);
    if let Some(resp) = apply_fault(&state).await {
        return resp;
    }
    blocking(move || {
        let id = parse_oid(&oid).ok_or_else(|| Fail::not_found(""))?;
        let repo = state.open()?;
        match repo.odb().and_then(|odb| odb.read_header(id)) {
            // Headers only: Content-Length is the blob's size, the body is empty.
            Ok((len, ObjectType::Blob)) => Ok(octets(Vec::new(), len)),
            _ => Err(Fail::not_found("")),
        }
    })
    .await
}
