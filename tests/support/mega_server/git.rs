//! Git smart HTTP of the test Mega server: `<path>.git/info/refs`, `git-receive-pack` and
//! `git-upload-pack` handed to the real `git http-backend` as a CGI over the one repository,
//! with the push token checked first and the server's faults applied; a Mega path runs in its
//! own git namespace, set up before and recorded after (see `paths`), one such request at a
//! time.

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use git2::Repository;

use super::paths::{self, Kind};
use super::{apply_fault, text, AppState, Fail, Fault};

/// How long `git http-backend` may run for one request before it is killed.
const CGI_TIMEOUT: Duration = Duration::from_secs(60);

/// Switches on the receive-side checks in the repository's own (local) config.
pub(super) fn make_strict(repo_path: &Path) -> Result<(), git2::Error> {
    let repo = Repository::open_bare(repo_path)?;
    let mut cfg = repo.config()?.open_level(git2::ConfigLevel::Local)?;
    cfg.set_bool("receive.fsckObjects", true)?;
    cfg.set_bool("receive.denyNonFastForwards", true)?;
    Ok(())
}

/// The git smart-HTTP endpoints the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GitEndpoint {
    InfoRefs,
    ReceivePack,
    UploadPack,
}

impl GitEndpoint {
    /// The part of `PATH_INFO` after the repository.
    fn tail(self) -> &'static str {
        match self {
            GitEndpoint::InfoRefs => "info/refs",
            GitEndpoint::ReceivePack => "git-receive-pack",
            GitEndpoint::UploadPack => "git-upload-pack",
        }
    }
}

/// `path` (the URL path) as `<anything>.git/<endpoint>`, e.g. `/project/foo.git/info/refs`,
/// `/.git/git-receive-pack`; any such prefix names the one repository served.
fn git_endpoint(path: &str) -> Option<GitEndpoint> {
    [
        GitEndpoint::InfoRefs,
        GitEndpoint::ReceivePack,
        GitEndpoint::UploadPack,
    ]
    .into_iter()
    .find(|ep| {
        path.strip_suffix(ep.tail())
            .is_some_and(|prefix| prefix.ends_with(".git/"))
    })
}

/// The value of `name` in a URL query string (no percent-decoding; git's values need none).
fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether `headers` carry `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer_ok(headers: &header::HeaderMap, token: &str) -> bool {
    headers.get_all(header::AUTHORIZATION).iter().any(|v| {
        v.to_str()
            .ok()
            .and_then(|s| s.trim().split_once(' '))
            .is_some_and(|(scheme, t)| scheme.eq_ignore_ascii_case("bearer") && t.trim() == token)
    })
}

fn header_str(headers: &header::HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `GET <path>.git/info/refs`, `POST <path>.git/git-receive-pack`, `POST <path>.git/git-upload-pack`:
/// count, apply the fault, check the push token, then run `git http-backend`.
pub(super) async fn git_smart_http(
    State(state): State<AppState>,
    req: axum::extract::Request,
) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let Some(ep) = git_endpoint(&path) else {
        return text(StatusCode::NOT_FOUND, format!("no route for {path}"));
    };
    let is_get =
        req.method() == axum::http::Method::GET || req.method() == axum::http::Method::HEAD;
    let is_post = req.method() == axum::http::Method::POST;
    if (ep == GitEndpoint::InfoRefs && !is_get) || (ep != GitEndpoint::InfoRefs && !is_post) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    {
        let mut c = state.counts();
        match ep {
            GitEndpoint::InfoRefs => c.info_refs += 1,
            GitEndpoint::ReceivePack => c.receive_pack += 1,
            GitEndpoint::UploadPack => c.upload_pack += 1,
        }
    }
    if let Some(resp) = apply_fault(&state).await {
        return resp;
    }
    let receive = ep == GitEndpoint::ReceivePack
        || (ep == GitEndpoint::InfoRefs
            && query_param(&query, "service") == Some("git-receive-pack"));
    if receive {
        if let Some(token) = state.push_token() {
            if !bearer_ok(req.headers(), &token) {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer realm=\"mega\"")],
                    "push needs Authorization: Bearer <token>",
                )
                    .into_response();
            }
        }
    }
    if let (GitEndpoint::ReceivePack, Fault::SlowPush(d)) = (ep, state.fault()) {
        tokio::time::sleep(d).await;
    }
    if ep == GitEndpoint::ReceivePack && state.fault() == Fault::RefusePush {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected fault: push refused",
        );
    }

    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), usize::MAX).await {
        Ok(b) => b,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("read request body: {e}")),
    };
    let body = match header_str(&headers, header::CONTENT_ENCODING)
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => body.to_vec(),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::new();
            let mut dec = flate2::read::MultiGzDecoder::new(&body[..]);
            if let Err(e) = std::io::Read::read_to_end(&mut dec, &mut out) {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("bad gzip request body: {e}"),
                );
            }
            out
        }
        Some(other) => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Encoding {other:?}"),
            )
        }
    };
    let prefix = path
        .strip_suffix(ep.tail())
        .and_then(|p| p.strip_suffix(".git/"))
        .unwrap_or_default();
    let kind = paths::kind(prefix);
    let cgi = Cgi {
        method: if is_post { "POST" } else { "GET" },
        tail: ep.tail(),
        query,
        content_type: header_str(&headers, header::CONTENT_TYPE),
        git_protocol: header_str(&headers, "git-protocol"),
        body,
        env: Vec::new(),
    };
    match serve_at(&state, &kind, ep, cgi).await {
        Ok(resp) => resp,
        Err(fail) => fail.into_response(),
    }
}

/// Runs `cgi` for a path of `kind`: a Mega path in its namespace, set up before and set back
/// after (a push recorded in between; a refusal of the hook answered in Mega's words).
async fn serve_at(
    state: &AppState,
    kind: &Kind,
    ep: GitEndpoint,
    mut cgi: Cgi,
) -> Result<Response, Fail> {
    let (Kind::Path(p) | Kind::Repository(p)) = kind else {
        return run_http_backend(&state.repo_path, cgi).await;
    };
    let _one = state.git_lock.lock().await;
    let base = {
        let (st, k) = (state.clone(), kind.clone());
        tokio::task::spawn_blocking(move || st.prepare(&k))
            .await
            .map_err(|e| Fail::internal(format!("prepare panicked: {e}")))??
    };
    cgi.env.push(("GIT_NAMESPACE".into(), paths::namespace(p)));
    let verdict = match (ep, kind) {
        (GitEndpoint::ReceivePack, Kind::Path(_)) => {
            let f = tempfile::NamedTempFile::new()
                .map_err(|e| Fail::internal(format!("verdict file: {e}")))?;
            cgi.env.push((
                "MEGA_DOUBLE_VERDICT".into(),
                f.path().to_string_lossy().into_owned(),
            ));
            Some(f)
        }
        _ => None,
    };
    let request = cgi.body.clone();
    let resp = run_http_backend(&state.repo_path, cgi).await;
    if ep == GitEndpoint::ReceivePack {
        let (st, k) = (state.clone(), kind.clone());
        tokio::task::spawn_blocking(move || st.after_push(&k, base))
            .await
            .map_err(|e| Fail::internal(format!("after_push panicked: {e}")))??;
    }
    let refused = verdict
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f.path()).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    match refused {
        Some(reason) => Ok(mega_refusal(&request, &reason)),
        None => resp,
    }
}

/// The `report-status` Mega sends when it refuses a push: the pack unpacked, each ref `ng`
/// with `reason`, in side-band when the client asked for it.
fn mega_refusal(request: &[u8], reason: &str) -> Response {
    let pkt = |s: &[u8]| {
        let mut v = format!("{:04x}", s.len() + 4).into_bytes();
        v.extend_from_slice(s);
        v
    };
    let mut refs = Vec::new();
    let mut caps = String::new();
    let mut rest = request;
    while rest.len() >= 4 {
        let Some(len) = std::str::from_utf8(&rest[..4])
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
        else {
            break;
        };
        if len < 4 || len > rest.len() {
            break;
        }
        let line = &rest[4..len];
        rest = &rest[len..];
        let (cmd, c) = match line.iter().position(|b| *b == 0) {
            Some(i) => (
                &line[..i],
                String::from_utf8_lossy(&line[i + 1..]).into_owned(),
            ),
            None => (line, String::new()),
        };
        if caps.is_empty() {
            caps = c;
        }
        if let Some(r) = String::from_utf8_lossy(cmd).trim().split(' ').nth(2) {
            refs.push(r.to_string());
        }
    }
    let mut report = pkt(b"unpack ok\n");
    for r in refs {
        report.extend(pkt(format!("ng {r} {reason}\n").as_bytes()));
    }
    report.extend_from_slice(b"0000");
    let body = if caps
        .split(' ')
        .any(|c| c == "side-band-64k" || c == "side-band")
    {
        let mut band = vec![1u8];
        band.extend(report);
        let mut b = pkt(&band);
        b.extend_from_slice(b"0000");
        b
    } else {
        report
    };
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/x-git-receive-pack-result",
        )],
        body,
    )
        .into_response()
}

/// One CGI request to `git http-backend`.
struct Cgi {
    method: &'static str,
    /// `info/refs`, `git-receive-pack` or `git-upload-pack`.
    tail: &'static str,
    query: String,
    content_type: Option<String>,
    /// The `Git-Protocol` request header (protocol v2), passed on as `HTTP_GIT_PROTOCOL`.
    git_protocol: Option<String>,
    /// The (decompressed) request body.
    body: Vec<u8>,
    /// More environment for git (the namespace, the hook's inputs).
    env: Vec<(String, String)>,
}

/// Runs `git http-backend` for `cgi` over the bare repository `repo_path` and turns its CGI
/// output into a response. The process is killed after [`CGI_TIMEOUT`].
async fn run_http_backend(repo_path: &Path, cgi: Cgi) -> Result<Response, Fail> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let root = repo_path
        .parent()
        .ok_or_else(|| Fail::internal("bare repository has no parent directory"))?;
    let name = repo_path
        .file_name()
        .ok_or_else(|| Fail::internal("bare repository has no directory name"))?;
    let mut path_info = std::ffi::OsString::from("/");
    path_info.push(name);
    path_info.push("/");
    path_info.push(cgi.tail);

    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend");
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_NAMESPACE",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "HTTP_CONTENT_ENCODING",
        "HTTP_GIT_PROTOCOL",
        "GIT_PROTOCOL",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", &path_info)
        .env("REQUEST_METHOD", cgi.method)
        .env("QUERY_STRING", &cgi.query)
        .env("CONTENT_TYPE", cgi.content_type.as_deref().unwrap_or(""))
        .env("REMOTE_USER", "test")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("GATEWAY_INTERFACE", "CGI/1.1");
    if cgi.method == "POST" {
        cmd.env("CONTENT_LENGTH", cgi.body.len().to_string());
    } else {
        cmd.env_remove("CONTENT_LENGTH");
    }
    if let Some(proto) = &cgi.git_protocol {
        cmd.env("HTTP_GIT_PROTOCOL", proto);
    }
    for (k, v) in &cgi.env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| Fail::internal(format!("spawn git http-backend: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let body = cgi.body;
    // Owns `child`: when the timeout drops this future, kill_on_drop kills the process.
    let run = async move {
        let write = async move {
            // git may stop reading early (e.g. when it refuses a request): ignore EPIPE.
            let _ = stdin.write_all(&body).await;
            drop(stdin);
        };
        let mut out = Vec::new();
        let mut err = Vec::new();
        let (_, out_res, err_res) = tokio::join!(
            write,
            stdout.read_to_end(&mut out),
            stderr.read_to_end(&mut err)
        );
        out_res.map_err(|e| format!("read stdout: {e}"))?;
        let _ = err_res;
        let status = child
            .wait()
            .await
            .map_err(|e| format!("wait for git http-backend: {e}"))?;
        Ok::<_, String>((status, out, err))
    };
    let (status, out, err) = match tokio::time::timeout(CGI_TIMEOUT, run).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return Err(Fail::internal(e)),
        Err(_) => {
            return Err(Fail::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("git http-backend {path_info:?} killed after {CGI_TIMEOUT:?}"),
            ))
        }
    };
    let err = String::from_utf8_lossy(&err).into_owned();
    let resp = parse_cgi_output(&out).map_err(|e| {
        Fail::internal(format!(
            "git http-backend {path_info:?} ({status}): {e}; stderr: {err}"
        ))
    })?;
    if !resp.status().is_success() || !status.success() {
        eprintln!(
            "MegaServer: git http-backend {path_info:?} -> {} ({status}): {}",
            resp.status(),
            err.trim()
        );
    }
    Ok(resp)
}

/// Splits CGI output into headers (`Status:` and the rest) and body.
fn parse_cgi_output(out: &[u8]) -> Result<Response, String> {
    let crlf = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    let lf = out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let (end, sep) = match (crlf, lf) {
        (Some(a), Some(b)) => {
            if a.0 <= b.0 {
                a
            } else {
                b
            }
        }
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => {
            return Err(format!(
                "no CGI header block in {} bytes of output",
                out.len()
            ))
        }
    };
    let head = std::str::from_utf8(&out[..end]).map_err(|e| format!("CGI headers: {e}"))?;
    let mut builder = Response::builder().status(StatusCode::OK);
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad CGI header line {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(|| format!("bad CGI status {value:?}"))?;
            builder = builder.status(code);
        } else if name.eq_ignore_ascii_case("content-length") {
            // The body below is the whole rest; hyper sets the length itself.
        } else {
            builder = builder.header(name.trim(), value);
        }
    }
    builder
        .body(Body::from(out[end + sep..].to_vec()))
        .map_err(|e| format!("build response: {e}"))
}
