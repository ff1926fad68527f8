//! `scorpio push` against the real Mega server, as Mega takes changes: a `/third-party`
//! repository's `main` moves (and the workspace with it); a `/project` path opens a change list
//! (CL), which a second push updates, while the edits and the base stay, across a restart; once
//! the CL is merged, `scorpio pull` shows the merged commit with nothing left in status.

use std::path::Path;
use std::process::Command;

use crate::support::api::{cli, commit, json, mount, push, status};
use crate::support::daemon::{run_with_timeout, Daemon, DaemonOpts};
use crate::support::http;
use crate::support::mono::Mono;

fn daemon(mono: &Mono) -> Daemon {
    let mut opts = DaemonOpts::new(mono.url.clone());
    opts.extra_toml = format!("remote_token = \"{}\"\n", mono.token);
    Daemon::start_or_panic(opts)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = run_with_timeout(Command::new("git").arg("-C").arg(dir).args(args), 120);
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A small repository (regular files only) with one commit on `main`.
fn small_repo(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("README.md"), b"# x\n").expect("write");
    std::fs::create_dir(dir.join("src")).expect("mkdir");
    std::fs::write(dir.join("src/lib.rs"), b"pub fn x() {}\n").expect("write");
    git(dir, &["add", "-A"]);
    git(
        dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "-m",
            "init",
        ],
    );
}

/// The requests (`METHOD uri`, one per request) `mono` logged past byte `from` of its log:
/// every git transport request; its API logs a request only when something goes wrong, so the
/// CL list and files-list calls of a CL push are not among them.
fn requests_since(mono: &Mono, from: usize) -> Vec<String> {
    let log = mono.log();
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for line in log.get(from..).unwrap_or_default().lines() {
        let Some(span) = line
            .split("http.request{")
            .nth(1)
            .and_then(|r| r.split('}').next())
        else {
            continue;
        };
        let field = |k: &str| {
            span.split(' ')
                .find_map(|f| f.strip_prefix(k))
                .unwrap_or_default()
                .to_string()
        };
        if seen.insert(field("trace_id=")) {
            out.push(format!("{} {}", field("method="), field("uri=")));
        }
    }
    out
}

/// The Mega API requests the daemon sent since its log was `from` bytes long (Mega logs only
/// its git routes): one line each, `METHOD url query`.
fn api_requests_since(d: &Daemon, from: usize) -> Vec<String> {
    d.log()
        .get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("remote request"))
        .map(|l| {
            let field = |k: &str| {
                l.split(k)
                    .nth(1)
                    .map(|r| r.split_whitespace().next().unwrap_or_default().to_string())
                    .unwrap_or_default()
            };
            format!("{} {}", field("method="), field("url="))
        })
        .collect()
}

/// Pushes through the API and prints the requests the server saw for it.
fn push_counted(mono: &Mono, d: &Daemon, what: &str) -> (u16, serde_json::Value, Vec<String>) {
    let mark = mono.log().len();
    let (code, body) = push(d);
    let seen = requests_since(mono, mark);
    eprintln!("{what}: {} requests:\n  {}", seen.len(), seen.join("\n  "));
    (code, body, seen)
}

/// The server's `refs/heads/main` of `<path>.git`, read as git does, with the token.
fn ls_remote_main(mono: &Mono, path: &str) -> String {
    let out = run_with_timeout(
        Command::new("git")
            .arg("-c")
            .arg(format!(
                "http.extraHeader=Authorization: Bearer {}",
                mono.token
            ))
            .args(["ls-remote"])
            .arg(format!("{}/{path}.git", mono.url))
            .arg("refs/heads/main"),
        60,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn mega_get(mono: &Mono, path: &str) -> serde_json::Value {
    let (code, body) = http::get(&mono.addr(), path);
    assert_eq!(code, 200, "{path}: {body}");
    json(&body)
}

fn open_cls(mono: &Mono) -> Vec<serde_json::Value> {
    let (code, body) = http::post(
        &mono.addr(),
        "/api/v1/cl/list",
        r#"{"additional":{"status":"open","asc":false},"pagination":{"page":1,"per_page":20}}"#,
    );
    assert_eq!(code, 200, "{body}");
    json(&body)["data"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn cl_files(mono: &Mono, link: &str) -> Vec<String> {
    let mut v: Vec<String> = mega_get(mono, &format!("/api/v1/cl/{link}/files-list"))["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| f["path"].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

/// A bare repository holding `main` of the server's `<path>.git`, fetched with the token.
fn fetch_main(mono: &Mono, path: &str) -> tempfile::TempDir {
    let fetched = tempfile::tempdir().expect("tmp");
    git(fetched.path(), &["init", "-q", "--bare"]);
    git(
        fetched.path(),
        &[
            "-c",
            &format!("http.extraHeader=Authorization: Bearer {}", mono.token),
            "fetch",
            "-q",
            &format!("{}/{path}.git", mono.url),
            "refs/heads/main:refs/heads/main",
        ],
    );
    fetched
}

/// A fresh real server whose `/third-party/x` holds [`small_repo`], and the commit pushed there
/// (`None`: the server is not here).
fn mono_with_x() -> Option<(Mono, String)> {
    let mono = Mono::start()?;
    let src = tempfile::tempdir().expect("tmp");
    small_repo(src.path());
    mono.push_ok(
        src.path(),
        "/third-party/x",
        "refs/heads/main:refs/heads/main",
    );
    let head = git(src.path(), &["rev-parse", "HEAD"]);
    Some((mono, head))
}

#[test]
fn a_third_party_push_moves_that_repositorys_main_and_the_workspace_with_it() {
    let Some((mono, pushed)) = mono_with_x() else {
        return;
    };
    let before = ls_remote_main(&mono, "third-party/x");
    assert_eq!(before, pushed);

    let d = daemon(&mono);
    // A path with nothing to push beside it: it is left alone.
    mount(&d, "project");
    mount(&d, "third-party/x");
    let ws = d.workspace.join("third-party/x");
    std::fs::write(ws.join("new.txt"), b"new\n").expect("add");
    std::fs::write(ws.join("src/lib.rs"), b"pub fn y() {}\n").expect("modify");
    let (code, c) = commit(&d, "a change to x");
    assert_eq!(code, 200, "{c}");
    let local = c["commit"].as_str().expect("commit").to_string();

    let (code, body, seen) = push_counted(&mono, &d, "a /third-party push");
    assert_eq!(
        seen.len(),
        3,
        "info/refs, info/refs (compare-and-swap), receive-pack"
    );
    assert_eq!(code, 200, "{body}\n{}\n{}", d.log(), mono.log());
    assert_eq!(body["moved"], true, "{body}");
    assert_eq!(body["repositories"][0][0], "third-party/x", "{body}");
    let main = body["repositories"][0][1]
        .as_str()
        .expect("main")
        .to_string();
    // The repository's main moved to the re-rooted commit, on the old main.
    assert_eq!(ls_remote_main(&mono, "third-party/x"), main);
    let latest = mega_get(&mono, "/api/v1/latest-commit?path=/third-party/x");
    eprintln!("latest-commit of /third-party/x after the push: {latest}");
    let fetched = fetch_main(&mono, "third-party/x");
    assert_eq!(git(fetched.path(), &["rev-parse", "main^"]), before);
    assert_eq!(
        git(fetched.path(), &["log", "-1", "--format=%s", "main"]),
        "a change to x"
    );
    assert_eq!(git(fetched.path(), &["show", "main:new.txt"]), "new");
    assert_eq!(
        git(fetched.path(), &["show", "main:src/lib.rs"]),
        "pub fn y() {}"
    );
    // And through Mega's own API: the current tree of the repository has the pushed file.
    let tree = mega_get(
        &mono,
        "/api/v1/tree/content-hash?path=/third-party/x&refs=main",
    );
    eprintln!("content-hash of /third-party/x: {tree}");
    let (code, blob) = http::get(
        &mono.addr(),
        &format!(
            "/api/v1/file/blob/{}",
            git(fetched.path(), &["rev-parse", "main:new.txt"])
        ),
    );
    assert_eq!((code, blob.as_str()), (200, "new\n"));

    // The workspace moved to the local commit as with any branch that moved: nothing left.
    let st = status(&d);
    assert_eq!(st["base"], local.as_str(), "{st}");
    assert_eq!(st["ahead"], 0, "{st}");
    assert_eq!(st["changes"].as_array().map(Vec::len), Some(0), "{st}");
    assert_eq!(std::fs::read(ws.join("new.txt")).expect("read"), b"new\n");
    // Nothing more to push.
    let (code, body) = push(&d);
    assert_eq!(
        (code, body["code"].as_str()),
        (409, Some("NOTHING_TO_PUSH")),
        "{body}"
    );
}

#[test]
fn a_project_push_opens_a_cl_a_second_push_updates_it_and_the_edits_stay() {
    let Some(mono) = Mono::start() else { return };
    let mut d = daemon(&mono);
    mount(&d, "project");
    let base = status(&d)["base"].as_str().expect("base").to_string();
    let ws = d.workspace.join("project");
    std::fs::write(ws.join("hello.txt"), b"hello\n").expect("add");
    let (code, c) = commit(&d, "first change");
    assert_eq!(code, 200, "{c}");

    let (code, body, seen) = push_counted(&mono, &d, "a first /project push");
    // info/refs (parent), info/refs (compare-and-swap), receive-pack, info/refs (refs/cl/*).
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(code, 200, "{body}\n{}\n{}", d.log(), mono.log());
    assert_eq!(body["moved"], false, "{body}");
    let link = body["cls"][0]["link"]
        .as_str()
        .unwrap_or_else(|| panic!("no CL link: {body}\n{}", d.log()))
        .to_string();
    assert_eq!(body["cls"][0]["path"], "project", "{body}");
    assert!(
        body["message"].as_str().expect("message").contains(&link),
        "{body}"
    );
    let open: Vec<_> = open_cls(&mono);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["link"], link.as_str());
    assert_eq!(cl_files(&mono, &link), ["hello.txt"]);
    // Not landed: the base stays, the edit stays, in the CL.
    let st = status(&d);
    assert_eq!(st["base"], base.as_str(), "{st}");
    assert_eq!(st["changes"][0]["path"], "project/hello.txt", "{st}");
    assert_eq!(st["changes"][0]["cl"]["link"], link.as_str(), "{st}");
    assert_eq!(st["changes"][0]["cl"]["current"], true, "{st}");
    assert_eq!(st["cls"][0]["link"], link.as_str(), "{st}");
    assert_eq!(
        std::fs::read(ws.join("hello.txt")).expect("read"),
        b"hello\n"
    );
    let latest = mega_get(&mono, "/api/v1/latest-commit?path=/");
    assert_eq!(latest["oid"], base.as_str(), "main did not move: {latest}");

    // A second change, pushed through the CLI: the same CL, now with both files.
    std::fs::write(ws.join("second.txt"), b"second\n").expect("add");
    let (code, c) = commit(&d, "second change");
    assert_eq!(code, 200, "{c}");
    let st = status(&d);
    let second = st["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["path"] == "project/second.txt")
        .cloned()
        .expect("second.txt in status");
    assert!(second.get("cl").is_none(), "not pushed yet: {st}");
    let mark = mono.log().len();
    let out = cli(&d, &["push"]);
    let seen = requests_since(&mono, mark);
    eprintln!(
        "a second /project push (CLI): {} requests:\n  {}",
        seen.len(),
        seen.join("\n  ")
    );
    // The recorded CL is still open: no refs/cl/* look-up this time.
    assert_eq!(seen.len(), 3, "info/refs twice, receive-pack: {seen:?}");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    assert!(stdout.contains(&link), "{stdout}");
    let open = open_cls(&mono);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["link"], link.as_str());
    assert_eq!(cl_files(&mono, &link), ["hello.txt", "second.txt"]);

    // Across a restart: the edits, the base and the CL are still there.
    d.restart().unwrap_or_else(|e| panic!("{e}"));
    let st = status(&d);
    assert_eq!(st["base"], base.as_str(), "{st}");
    let paths: Vec<_> = st["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| (c["path"].clone(), c["cl"]["link"].clone()))
        .collect();
    assert_eq!(
        paths,
        [
            ("project/hello.txt".into(), link.as_str().into()),
            ("project/second.txt".into(), link.as_str().into()),
        ],
        "{st}"
    );
    let out = cli(&d, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("A project/hello.txt  [CL {link}]")),
        "{text}"
    );
    assert_eq!(
        std::fs::read(d.workspace.join("project/second.txt")).expect("read"),
        b"second\n"
    );
    // Nothing new to push: refused, and nothing sent.
    let (code, body) = push(&d);
    assert_eq!(
        (code, body["code"].as_str()),
        (409, Some("NOTHING_TO_PUSH")),
        "{body}"
    );

    // The CL merges on the server. Both files sit at the top of the CL's path, where Mega's
    // merge puts them right (below it, its `propagate_up` can put a tree one level too high).
    let (code, merged) = http::post(
        &mono.addr(),
        &format!("/api/v1/cl/{link}/merge-no-auth"),
        "",
    );
    assert_eq!(code, 200, "{merged}");
    assert_eq!(json(&merged)["req_result"], true, "{merged}");
    assert!(open_cls(&mono).is_empty());
    let latest = mega_get(&mono, "/api/v1/latest-commit?path=/");
    let merged_commit = latest["oid"].as_str().expect("latest oid").to_string();
    assert_ne!(merged_commit, base, "the merge made a new commit: {latest}");

    // `scorpio pull`: the workspace moves to the merged commit; the edits are the commit's now,
    // so they leave the upper layer, and nothing is left in status (nor the CL).
    let mark = d.log().len();
    let out = cli(&d, &["pull"]);
    let seen = api_requests_since(&d, mark);
    eprintln!(
        "a pull after the merge: {} requests:\n  {}",
        seen.len(),
        seen.join("\n  ")
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    assert!(stdout.contains(&merged_commit), "{stdout}");
    assert!(
        stdout.contains("left behind"),
        "the CL's local commits: {stdout}"
    );
    let st = status(&d);
    assert_eq!(st["base"], merged_commit.as_str(), "{st}");
    assert_eq!(st["changes"], serde_json::json!([]), "{st}");
    assert_eq!(st["cls"], serde_json::json!([]), "{st}");
    assert_eq!(st["ahead"], 0, "{st}");
    for (name, bytes) in [("hello.txt", &b"hello\n"[..]), ("second.txt", b"second\n")] {
        assert_eq!(std::fs::read(ws.join(name)).expect("merged file"), bytes);
    }
    let upper = d.store.join("mounts");
    let left: Vec<_> = walkdir::WalkDir::new(&upper)
        .into_iter()
        .flatten()
        .filter(|e| {
            e.file_type().is_file() && e.path().components().any(|c| c.as_os_str() == "upper")
        })
        .map(|e| e.path().display().to_string())
        .collect();
    assert!(
        left.is_empty(),
        "the merged edits left the upper layer: {left:?}"
    );
    // Up to date now: one request (the latest commit), nothing moves. The reads above start
    // fetches of neighbouring blobs in the background; they are let finish first.
    let mut mark = d.log().len();
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = d.log().len();
        if now == mark {
            break;
        }
        mark = now;
    }
    let (code, body) = http::post(&d.http_addr, "/api/git/pull", "{}");
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["up_to_date"], true, "{body}");
    let seen = api_requests_since(&d, mark);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].contains("latest-commit"), "{seen:?}");
}

#[test]
fn a_third_party_push_after_a_cl_moves_the_workspace_and_keeps_the_cl_changes_ahead() {
    let Some((mono, _)) = mono_with_x() else {
        return;
    };
    let before = ls_remote_main(&mono, "third-party/x");
    let d = daemon(&mono);
    mount(&d, "project");
    mount(&d, "third-party/x");
    let base = status(&d)["base"].as_str().expect("base").to_string();
    std::fs::write(d.workspace.join("project/hello.txt"), b"hello\n").expect("add");
    let (code, c) = commit(&d, "a change list");
    assert_eq!(code, 200, "{c}");
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    let link = body["cls"][0]["link"].as_str().expect("link").to_string();

    std::fs::write(d.workspace.join("third-party/x/new.txt"), b"new\n").expect("add");
    let (code, c) = commit(&d, "a change to x");
    assert_eq!(code, 200, "{c}");
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(body["moved"], true, "{body}");
    assert_eq!(body["repositories"][0][0], "third-party/x", "{body}");
    assert_eq!(
        body["cls"].as_array().map(Vec::len),
        Some(0),
        "the CL had it all: {body}"
    );
    // x's main has exactly the change to x, on its old main.
    let main = ls_remote_main(&mono, "third-party/x");
    assert_eq!(body["repositories"][0][1], main.as_str());
    let fetched = fetch_main(&mono, "third-party/x");
    assert_eq!(git(fetched.path(), &["rev-parse", "main^"]), before);
    assert_eq!(git(fetched.path(), &["show", "main:new.txt"]), "new");
    // The workspace moved, the change to x left status, the CL's change stays ahead, marked.
    let st = status(&d);
    assert_ne!(st["base"], base.as_str(), "{st}");
    assert_eq!(st["ahead"], 1, "{st}");
    let changes: Vec<_> = st["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| (c["path"].clone(), c["cl"]["link"].clone()))
        .collect();
    assert_eq!(
        changes,
        [("project/hello.txt".into(), link.as_str().into())],
        "{st}"
    );
    assert_eq!(
        std::fs::read(d.workspace.join("third-party/x/new.txt")).expect("read"),
        b"new\n"
    );
    // Nothing new for either path.
    let (code, body) = push(&d);
    assert_eq!(
        (code, body["code"].as_str()),
        (409, Some("NOTHING_TO_PUSH")),
        "{body}"
    );
    assert_eq!(open_cls(&mono).len(), 1);
}

#[test]
fn the_root_pushes_as_a_cl_at_the_root_and_third_party_through_it_is_refused_before_sending() {
    let Some((mono, _)) = mono_with_x() else {
        return;
    };
    let d = daemon(&mono);
    mount(&d, "/");
    let base = status(&d)["base"].as_str().expect("base").to_string();

    // A change under /third-party through the root: refused before anything is sent.
    std::fs::write(d.workspace.join("third-party/x/README.md"), b"# y\n").expect("modify");
    let (code, c) = commit(&d, "through the root");
    assert_eq!(code, 200, "{c}");
    let main = ls_remote_main(&mono, "third-party/x");
    let (code, body) = push(&d);
    assert_eq!(
        (code, body["code"].as_str()),
        (409, Some("PUSH_UNSUPPORTED")),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("/third-party/<repo>"),
        "{body}"
    );
    assert_eq!(ls_remote_main(&mono, "third-party/x"), main);
    assert!(open_cls(&mono).is_empty());
    let (code, body) = http::post(&d.http_addr, "/api/git/reset", r#"{"path":"/third-party"}"#);
    assert_eq!(code, 200, "{body}");

    // A change elsewhere: one commit (two local ones squashed) to /.git, a CL at the root.
    std::fs::write(d.workspace.join("project/root.txt"), b"root\n").expect("add");
    let (code, c) = commit(&d, "at the root");
    assert_eq!(code, 200, "{c}");
    assert_eq!(c["ahead"], 2, "{c}");
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(body["moved"], false, "{body}");
    assert_eq!(body["cls"][0]["path"], "", "{body}");
    let link = body["cls"][0]["link"].as_str().expect("link").to_string();
    assert_eq!(open_cls(&mono).len(), 1);
    assert_eq!(cl_files(&mono, &link), ["project/root.txt"]);
    let st = status(&d);
    assert_eq!(st["base"], base.as_str(), "{st}");
    assert_eq!(st["changes"][0]["path"], "project/root.txt", "{st}");
    assert_eq!(st["changes"][0]["cl"]["link"], link.as_str(), "{st}");
    assert_eq!(
        mega_get(&mono, "/api/v1/latest-commit?path=/")["oid"],
        base.as_str()
    );
}

#[test]
fn third_party_itself_is_refused() {
    let Some((mono, _)) = mono_with_x() else {
        return;
    };
    let d = daemon(&mono);
    mount(&d, "third-party");
    std::fs::write(d.workspace.join("third-party/x/new.txt"), b"new\n").expect("add");
    let (code, c) = commit(&d, "in /third-party");
    assert_eq!(code, 200, "{c}");
    let main = ls_remote_main(&mono, "third-party/x");
    let (code, body) = push(&d);
    assert_eq!(
        (code, body["code"].as_str()),
        (409, Some("PUSH_UNSUPPORTED")),
        "{body}"
    );
    assert!(
        body["error"].as_str().expect("error").contains("several"),
        "{body}"
    );
    assert_eq!(ls_remote_main(&mono, "third-party/x"), main);
    assert_eq!(status(&d)["ahead"], 1);
}

#[test]
fn a_push_of_one_path_sends_only_that_path_each_to_its_own_cl() {
    let Some(mono) = Mono::start() else { return };
    let d = daemon(&mono);
    mount(&d, "project");
    mount(&d, "doc");
    std::fs::write(d.workspace.join("project/p.txt"), b"p\n").expect("add");
    std::fs::write(d.workspace.join("doc/d.txt"), b"d\n").expect("add");
    let (code, c) = commit(&d, "both paths");
    assert_eq!(code, 200, "{c}");
    let (code, body) = http::post(&d.http_addr, "/api/git/push", r#"{"path":"/doc"}"#);
    let body = json(&body);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(body["cls"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["cls"][0]["path"], "doc", "{body}");
    let doc = body["cls"][0]["link"].as_str().expect("link").to_string();
    assert_eq!(cl_files(&mono, &doc), ["d.txt"]);
    let st = status(&d);
    let marked = |p: &str| {
        st["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .find(|c| c["path"] == p)
            .map(|c| c["cl"]["link"].clone())
    };
    assert_eq!(marked("doc/d.txt"), Some(doc.as_str().into()), "{st}");
    assert_eq!(
        marked("project/p.txt"),
        Some(serde_json::Value::Null),
        "{st}"
    );
    // The rest: only /project is new.
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(body["cls"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["cls"][0]["path"], "project", "{body}");
    let project = body["cls"][0]["link"].as_str().expect("link").to_string();
    assert_ne!(project, doc);
    assert_eq!(cl_files(&mono, &project), ["p.txt"]);
    assert_eq!(open_cls(&mono).len(), 2);
}
