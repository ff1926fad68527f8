//! Hostile cases: api (see tests/hostile.rs). A flood of half-sent connections, another local
//! user calling the owner's API, and malformed requests on every route.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::antares::AntaresServer;
use crate::support::host::{curl_as_nobody, fd_count};
use crate::support::{fixture, http, Daemon, DaemonOpts};

/// Half-sent connections the flood opens (the daemon serves at most 512 at once).
const FLOOD: usize = 3000;
/// The daemon's own descriptors besides its API connections (FUSE, sled, store, log), with room.
const FD_MARGIN: usize = 200;
/// `MAX_CONNECTIONS` of `src/http/serve.rs`.
const MAX_CONNECTIONS: usize = 512;

fn raise_own_fd_limit() {
    let l = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    );
}

#[test]
fn half_sent_connections_leave_the_mount_and_health_working() {
    raise_own_fd_limit();
    let n_files = 64;
    let fx = fixture::generated(n_files, 16);
    let d = Daemon::local(&fx);
    let pid = d.pid().expect("daemon pid");
    let addr: SocketAddr = d.http_addr.parse().expect("addr");
    // Headers begun, never finished: what a slowloris client sends.
    let mut flood = Vec::new();
    for _ in 0..FLOOD {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let _ = s.write_all(b"POST /api/fs/mount HTTP/1.1\r\nHost: x\r\nContent-Le");
            flood.push(s);
        }
    }
    assert!(
        flood.len() > MAX_CONNECTIONS,
        "only {} connections got through",
        flood.len()
    );
    let fds = fd_count(pid);
    assert!(
        fds < MAX_CONNECTIONS + FD_MARGIN,
        "the daemon holds {fds} descriptors under a flood of {} connections",
        flood.len()
    );
    // Files not read yet come right while the flood holds on.
    for i in 0..n_files {
        let p = d.workspace.join(fixture::generated_path(i, n_files, 16));
        let got = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(got, fixture::generated_content(i), "{}", p.display());
    }
    // /health waits in the backlog behind the flood, whose connections time out in rounds of
    // the header deadline; give it far more than that.
    let deadline = Instant::now() + Duration::from_secs(180);
    let health = loop {
        match health_once(&addr) {
            Some(body) => break body,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            None => panic!("/health did not answer under the flood\n{}", d.log()),
        }
    };
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    let fds = fd_count(pid);
    assert!(fds < MAX_CONNECTIONS + FD_MARGIN, "{fds} descriptors");
    drop(flood);
}

#[test]
fn a_body_that_never_comes_is_cut_off_with_a_json_408() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    // Far beyond the 30 s body deadline; only a daemon that never answers reaches it.
    let resp = http::exchange(
        &d.http_addr,
        "POST /api/fs/mount HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        b"{\"pa".to_vec(),
        None,
        Duration::from_secs(150),
    )
    .expect("connect");
    let (head, body) = (&resp.head, &resp.text());
    assert!(head.starts_with("HTTP/1.1 408"), "{resp:?}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["code"], "BODY_TIMEOUT", "{body}");
}

/// One `GET /health` with a long read timeout; `None` when the connection fails.
fn health_once(addr: &SocketAddr) -> Option<String> {
    let r = http::exchange(
        &addr.to_string(),
        "GET /health HTTP/1.0\r\nHost: x\r\n\r\n",
        Vec::new(),
        Some(Duration::from_secs(5)),
        Duration::from_secs(120),
    )
    .ok()?;
    (r.status == 200).then(|| r.text())
}

#[test]
fn another_user_cannot_act_on_the_owners_workspace_without_the_token() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    crate::support::api::mount(&d, "src");
    let mine = d.workspace.join("src/mine.txt");
    std::fs::write(&mine, b"the owner's work\n").expect("write");
    let url = d.http_url();
    for (route, body) in [
        ("/api/git/reset", r#"{"path":"src"}"#),
        ("/api/fs/mount", r#"{"path":"a"}"#),
        ("/api/fs/unmount", r#"{"path":"src"}"#),
    ] {
        let (code, resp) = curl_as_nobody(&format!("{url}{route}"), body, None);
        assert_eq!(code, 403, "{route} as nobody: {resp}");
        let v: serde_json::Value = serde_json::from_str(&resp).expect("JSON refusal");
        assert_eq!(v["code"], "OWNER_ONLY", "{resp}");
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|e| e.contains("auth_token")),
            "the refusal says how to get access: {resp}"
        );
    }
    assert_eq!(
        std::fs::read(&mine).expect("still there"),
        b"the owner's work\n"
    );
    let (code, list) = http::get(&d.http_addr, "/api/fs/mpoint");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&list).expect("list");
    let paths: Vec<&str> = v["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["path"].as_str())
        .collect();
    assert_eq!(paths, ["src"], "{list}");
    // The owner (root here) still may.
    let (code, resp) = http::post(&d.http_addr, "/api/git/reset", r#"{"path":"src"}"#);
    assert_eq!(code, 200, "{resp}");
    assert!(!mine.exists());
}

#[test]
fn with_a_token_another_user_may_use_the_api() {
    let fx = fixture::standard();
    let mut opts = DaemonOpts::new(fx.repo_path.display().to_string());
    opts.extra_toml = "auth_token = \"let-me-in\"".into();
    let d = Daemon::start_or_panic(opts);
    let url = format!("{}/api/fs/mount", d.http_url());
    let (code, resp) = curl_as_nobody(&url, r#"{"path":"src"}"#, None);
    assert_eq!(code, 401, "{resp}");
    let (code, resp) = curl_as_nobody(&url, r#"{"path":"src"}"#, Some("let-me-in"));
    assert_eq!(code, 200, "{resp}");
}

/// One raw HTTP/1.1 request; the body is written from another thread so a server that answers
/// before reading it all is heard. Returns (status, content type, body).
fn raw(
    addr: &str,
    method: &str,
    path: &str,
    ctype: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, String) {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = ctype {
        head.push_str(&format!("Content-Type: {t}\r\n"));
    }
    head.push_str("\r\n");
    let r = http::exchange(addr, &head, body, None, http::READ_TIMEOUT).expect("connect");
    let ctype = r
        .content_type
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    (r.status, ctype, r.text())
}

/// Asserts a JSON `{error, code}` refusal with `status` (and `code`, unless empty).
fn assert_json_refusal(what: &str, got: (u16, String, String), status: u16, code: &str) {
    let (st, ctype, body) = got;
    assert_eq!(st, status, "{what}: {body}");
    assert!(
        ctype.starts_with("application/json"),
        "{what}: content type {ctype:?}: {body}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body:?}"));
    assert!(
        v["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: {body}"
    );
    let got_code = v["code"].as_str().unwrap_or_default();
    assert!(!got_code.is_empty(), "{what}: {body}");
    if !code.is_empty() {
        assert_eq!(got_code, code, "{what}: {body}");
    }
}

#[test]
fn every_refusal_on_every_route_is_json() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let a = d.http_addr.as_str();
    let json = Some("application/json");
    // (route, a body of the right shape, status for a wrong shape and its code)
    let posts = [
        ("/api/fs/mount", r#"{"path":"src"}"#, 422, "INVALID_BODY"),
        ("/api/fs/unmount", r#"{"path":"src"}"#, 422, "INVALID_BODY"),
        ("/api/git/reset", r#"{"path":"src/x"}"#, 422, "INVALID_BODY"),
        ("/api/git/commit", r#"{"message":"m"}"#, 422, "INVALID_BODY"),
        ("/api/commit", r#"{"message":"m"}"#, 422, "INVALID_BODY"),
        ("/api/git/push", r#"{}"#, 422, "INVALID_BODY"),
        ("/antares/mounts", r#"{"path":"a"}"#, 400, "BAD_JSON"),
    ];
    for (route, good, shape_status, shape_code) in posts {
        let r = raw(a, "POST", route, json, br#"{"path": "#.to_vec());
        assert_json_refusal(&format!("{route} malformed"), r, 400, "BAD_JSON");
        let r = raw(
            a,
            "POST",
            route,
            json,
            br#"{"path": 5, "message": []}"#.to_vec(),
        );
        assert_json_refusal(&format!("{route} wrong shape"), r, shape_status, shape_code);
        let r = raw(a, "PUT", route, None, Vec::new());
        assert_json_refusal(&format!("PUT {route}"), r, 405, "METHOD_NOT_ALLOWED");
        let r = raw(a, "POST", route, json, vec![b' '; 11 << 20]);
        assert_json_refusal(&format!("{route} 11 MB"), r, 413, "TOO_LARGE");
        // curl -d sends a form content type; the body is JSON all the same.
        let (st, ctype, body) = raw(
            a,
            "POST",
            route,
            Some("application/x-www-form-urlencoded"),
            good.as_bytes().to_vec(),
        );
        assert!(
            ![400, 413, 415, 422].contains(&st) && ctype.starts_with("application/json"),
            "{route} without a JSON content type: {st} {body}"
        );
    }
    // The README's own example.
    let (st, _, body) = raw(
        a,
        "POST",
        "/api/fs/mount",
        Some("application/x-www-form-urlencoded"),
        br#"{"path":"a"}"#.to_vec(),
    );
    assert_eq!(st, 200, "{body}");
    for route in [
        "/health",
        "/api/git/status",
        "/api/git/diff",
        "/api/fs/mpoint",
        "/api/fs/select/1",
        "/antares/health",
        "/antares/mounts/x",
        "/antares/mounts/x/changes",
    ] {
        let r = raw(a, "PUT", route, json, b"{}".to_vec());
        assert_json_refusal(&format!("PUT {route}"), r, 405, "METHOD_NOT_ALLOWED");
    }
    let r = raw(a, "GET", "/no/such/route", None, Vec::new());
    assert_json_refusal("unknown route", r, 404, "NOT_FOUND");
    let r = raw(a, "GET", "/api/git/status?path=a&path=b", None, Vec::new());
    assert_json_refusal("bad query", r, 400, "");
}

#[test]
fn the_standalone_antares_server_refuses_another_user_too() {
    let fx = fixture::standard();
    let s = AntaresServer::start(&fx.repo_path.display().to_string(), "");
    let url = format!("http://{}/mounts", s.addr);
    let (code, resp) = curl_as_nobody(&url, r#"{"path":"src","job_id":"j"}"#, None);
    assert_eq!(code, 403, "{resp}");
    let v: serde_json::Value = serde_json::from_str(&resp).expect("JSON refusal");
    assert_eq!(v["code"], "OWNER_ONLY", "{resp}");
    let mnt = s.mount_root();
    let made = std::fs::read_dir(&mnt).map(|d| d.count()).unwrap_or(0);
    assert_eq!(made, 0, "nobody's request made a mount");
    let (code, resp) = http::post(&s.addr, "/mounts", r#"{"path":"src","job_id":"j"}"#);
    assert_eq!(code, 201, "{resp}");
    let (code, resp) = http::request(&s.addr, "DELETE", "/mounts/by-job/j", None, None);
    assert_eq!(code, 200, "{resp}");
}
