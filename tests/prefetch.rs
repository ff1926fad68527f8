//! Prefetch, end to end against the Mega-API test server, counted at the server: a job lists
//! exactly the directories of a subtree (and with `blobs` fetches its files), after which a walk
//! or a read of that subtree asks the server for nothing; depth bounds it; a second run (after
//! a restart too) fetches nothing; cancel stops it; at most `fetch_concurrency` requests are in
//! flight; the CLI follows a job (a live line on a terminal) and sums it up;
//! refusals start nothing; `prefetch_depth` lists at start and on mount; an Antares mount is
//! ready only once its preload is done.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::antares::AntaresServer;
use support::api::{cli, json};
use support::daemon::{scorpio_command, Daemon, DaemonOpts};
use support::fixture::{self, EntryKind};
use support::http;
use support::mega_server::{Counts, Fault, MegaServer};

/// Starts a prefetch; returns (status, reply).
fn start(d: &Daemon, body: Value) -> (u16, Value) {
    let (st, text) = http::post(&d.http_addr, "/api/prefetch", &body.to_string());
    (st, json(&text))
}

/// The job `id` now.
fn job(d: &Daemon, id: &str) -> Value {
    let (st, text) = http::get(&d.http_addr, &format!("/api/prefetch/{id}"));
    assert_eq!(st, 200, "{text}");
    json(&text)
}

/// Runs a prefetch to its end; returns the ended job.
fn prefetch(d: &Daemon, body: Value) -> Value {
    let (st, v) = start(d, body.clone());
    assert_eq!(st, 202, "{body}: {v}\n{}", d.log());
    let id = v["id"].as_str().expect("id").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = job(d, &id);
        if j["state"] != "running" {
            assert_eq!(j["state"], "done", "{j}\n{}", d.log());
            return j;
        }
        assert!(Instant::now() < deadline, "prefetch still running: {j}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every directory of the standard fixture under `top` (itself included), as the server is
/// asked for it (`/a/b`).
fn dirs_under(top: &str) -> BTreeSet<String> {
    let mut v: BTreeSet<String> = fixture::STANDARD_DIRS
        .iter()
        .filter(|d| **d == top || d.starts_with(&format!("{top}/")))
        .map(|d| format!("/{d}"))
        .collect();
    if top.is_empty() {
        v = fixture::STANDARD_DIRS
            .iter()
            .map(|d| format!("/{d}"))
            .collect();
        v.insert("/".into());
    }
    v
}

/// Blob ids of the files and symlinks of the standard fixture under `top/`.
fn blobs_under(fx: &fixture::Fixture, top: &str) -> BTreeSet<String> {
    fixture::standard_entries()
        .iter()
        .filter(|e| e.kind != EntryKind::Gitlink && e.path.starts_with(&format!("{top}/")))
        .map(|e| fixture::entry_oid(fx, &fx.commit, e.path).expect("oid"))
        .collect()
}

fn nothing_asked(c: &Counts) -> bool {
    c.tree.is_empty()
        && c.content_hash.is_empty()
        && c.blob_get.is_empty()
        && c.blob_head.is_empty()
        && c.upload_pack == 0
}

#[test]
fn trees_are_listed_once_then_a_walk_asks_nothing() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    server.reset_counts();
    let j = prefetch(&d, json!({"path": "/a"}));
    let c = server.counts();
    // Resolving `a` may list the root; the walk lists each directory of `a` exactly once.
    let listed: Vec<&String> = c.tree.iter().filter(|p| *p != "/").collect();
    let want = dirs_under("a");
    assert_eq!(listed.len(), want.len(), "{c:?}");
    assert_eq!(listed.into_iter().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(j["dirs_fetched"], want.len(), "{j}");
    assert!(c.blob_get.is_empty() && c.blob_head.is_empty(), "{c:?}");
    assert_eq!(j["path"], "a");
    server.reset_counts();
    let out = std::process::Command::new("find")
        .arg(d.workspace.join("a"))
        .output()
        .expect("find");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("deep.txt"));
    let c = server.counts();
    assert!(
        nothing_asked(&c),
        "the walk after the prefetch asked: {c:?}"
    );
}

#[test]
fn blobs_are_fetched_once_then_reading_every_file_asks_nothing() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    server.reset_counts();
    let j = prefetch(&d, json!({"path": "a", "blobs": true}));
    let c = server.counts();
    let want = blobs_under(&fx, "a");
    assert_eq!(c.blob_get.len(), want.len(), "{c:?}");
    assert_eq!(c.blob_get.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(j["blobs_fetched"], want.len(), "{j}");
    assert!(j["bytes_fetched"].as_u64().unwrap() > 0, "{j}");
    server.reset_counts();
    for e in walkdir::WalkDir::new(d.workspace.join("a")) {
        let e = e.expect("walk");
        let meta = std::fs::symlink_metadata(e.path()).expect("lstat");
        if meta.file_type().is_symlink() {
            std::fs::read_link(e.path()).expect("readlink");
        } else if meta.is_file() {
            let body = std::fs::read(e.path()).expect("read");
            assert_eq!(body.len() as u64, meta.len(), "{}", e.path().display());
        }
    }
    let c = server.counts();
    assert!(nothing_asked(&c), "reading after the prefetch asked: {c:?}");
}

#[test]
fn depth_bounds_the_levels_listed() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    server.reset_counts();
    let j = prefetch(&d, json!({"path": "a", "depth": 2}));
    let c = server.counts();
    let listed: BTreeSet<&str> = c
        .tree
        .iter()
        .filter(|p| *p != "/")
        .map(String::as_str)
        .collect();
    assert_eq!(listed, BTreeSet::from(["/a", "/a/b"]), "{c:?}");
    assert_eq!(j["dirs_fetched"], 2, "{j}");
    assert_eq!(j["depth"], 2, "{j}");
}

#[test]
fn a_second_prefetch_fetches_nothing_even_after_a_restart() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let mut d = Daemon::mega(&server);
    let first = prefetch(&d, json!({"path": "/", "blobs": true}));
    assert!(first["blobs_fetched"].as_u64().unwrap() > 0, "{first}");
    let again = prefetch(&d, json!({"path": "/", "blobs": true}));
    assert_eq!(
        (&again["dirs_fetched"], &again["blobs_fetched"]),
        (&json!(0), &json!(0)),
        "{again}"
    );
    d.restart().expect("restart");
    server.reset_counts();
    let after = prefetch(&d, json!({"path": "/", "blobs": true}));
    let c = server.counts();
    assert!(nothing_asked(&c), "a prefetch after a restart asked: {c:?}");
    assert_eq!(after["dirs_fetched"], 0, "{after}");
    assert_eq!(after["blobs_fetched"], 0, "{after}");
    assert_eq!(after["blobs_kept"], first["blobs_fetched"], "{after}");
    assert_eq!(after["bytes_kept"], first["bytes_fetched"], "{after}");
    assert!(
        after["dirs_kept"].as_u64().unwrap() >= dirs_under("").len() as u64 - 1,
        "{after}"
    );
}

/// Total requests the server has seen.
fn total(c: &Counts) -> usize {
    c.tree.len() + c.content_hash.len() + c.blob_get.len() + c.blob_head.len()
}

#[test]
fn cancel_stops_a_job_and_the_counts_stop_growing() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    server.set_fault(Fault::Slow(Duration::from_millis(400)));
    let (st, v) = start(&d, json!({"path": "", "blobs": true}));
    assert_eq!(st, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    // Past a second: the daemon has logged its progress once.
    std::thread::sleep(Duration::from_millis(1300));
    let (st, text) = http::request(
        &d.http_addr,
        "DELETE",
        &format!("/api/prefetch/{id}"),
        None,
        None,
    );
    assert_eq!(st, 200, "{text}");
    assert_eq!(json(&text)["state"], "cancelled", "{text}");
    // What was in flight when it was cancelled has reached the server by now.
    std::thread::sleep(Duration::from_millis(600));
    let at_cancel = server.counts();
    let j = job(&d, &id);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        total(&server.counts()),
        total(&at_cancel),
        "requests after the cancel"
    );
    let later = job(&d, &id);
    assert_eq!(later["state"], "cancelled");
    assert_eq!(later["dirs_fetched"], j["dirs_fetched"], "{later}");
    assert_eq!(later["elapsed_ms"], j["elapsed_ms"], "{later}");
    server.set_fault(Fault::None);
    let log = d.log();
    assert!(
        log.contains("prefetch progress") && log.contains("prefetch cancelled"),
        "{log}"
    );
    // A cancelled job says nothing more (1.5 s after its cancel).
    let after = &log[log.find("prefetch cancelled").unwrap_or(0)..];
    assert!(!after.contains("prefetch progress"), "{after}");
    // Cancelling it again changes nothing; an unknown job is 404.
    let (st, text) = http::request(
        &d.http_addr,
        "DELETE",
        &format!("/api/prefetch/{id}"),
        None,
        None,
    );
    assert_eq!(
        (st, json(&text)["state"].clone()),
        (200, json!("cancelled"))
    );
    let (st, text) = http::request(&d.http_addr, "DELETE", "/api/prefetch/nope", None, None);
    assert_eq!(
        (st, json(&text)["code"].clone()),
        (404, json!("NO_SUCH_JOB")),
        "{text}"
    );
}

#[test]
fn the_cli_sums_up_a_job_without_a_terminal_and_a_second_run_fetches_nothing() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    let out = cli(&d, &["prefetch", "a", "--depth", "2", "--blobs"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    // One line, no live line (no terminal): what was fetched, what was kept, how fast.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("prefetch a: done; 2 directories listed, 0 kept; 2 blobs fetched"),
        "{stdout}"
    );
    assert!(stdout.contains("objects/s"), "{stdout}");
    // A path inside the workspace names the same directory; everything is kept now.
    server.reset_counts();
    let ws_a = d.workspace.join("a");
    let out = cli(
        &d,
        &[
            "prefetch",
            ws_a.to_str().unwrap(),
            "--depth",
            "2",
            "--blobs",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.starts_with(
            "prefetch a: done; 0 directories listed, 2 kept; 0 blobs fetched (0 B), 2 kept"
        ),
        "{stdout}"
    );
    assert!(nothing_asked(&server.counts()), "{:?}", server.counts());
}

#[test]
fn ctrl_c_in_the_cli_cancels_the_job_on_the_daemon() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    server.set_fault(Fault::Slow(Duration::from_millis(400)));
    let mut child = scorpio_command(&d.config_path)
        .args(["prefetch", "/", "--blobs"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the CLI");
    // Wait for its job to run.
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let (_, text) = http::get(&d.http_addr, "/api/prefetch");
        if let Some(j) = json(&text)["jobs"]
            .as_array()
            .and_then(|a| a.first())
            .cloned()
        {
            break j["id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no job appeared");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the CLI did not end after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    server.set_fault(Fault::None);
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("prefetch /: cancelled"), "{stderr}");
    assert_eq!(job(&d, &id)["state"], "cancelled");
}

#[test]
fn bad_requests_are_refused_and_start_nothing() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    for (body, status, code) in [
        (json!({"path": "../etc"}), 400, "BAD_PATH"),
        (json!({"path": "a/../../x"}), 400, "BAD_PATH"),
        (json!({"path": "/etc/passwd"}), 404, "NOT_FOUND"),
        (json!({"path": fixture::README}), 400, "NOT_A_DIRECTORY"),
        (json!({"path": "README.md/x"}), 400, "NOT_A_DIRECTORY"),
        (json!({"path": fixture::SUBMODULE}), 400, "NOT_A_DIRECTORY"),
        (json!({"path": "a", "depth": 0}), 400, "BAD_DEPTH"),
        (json!({"path": "a", "depth": "deep"}), 422, "INVALID_BODY"),
    ] {
        let (st, v) = start(&d, body.clone());
        assert_eq!(st, status, "{body}: {v}");
        assert_eq!(v["code"], code, "{body}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    let (_, text) = http::get(&d.http_addr, "/api/prefetch");
    assert_eq!(json(&text)["jobs"], json!([]), "{text}");
    let (st, text) = http::get(&d.http_addr, "/api/prefetch/nope");
    assert_eq!(st, 404, "{text}");
    // The CLI says why, exits 1, and leaves nothing behind either.
    let out = cli(&d, &["prefetch", "/nonexistent/dir"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused (404"), "{stderr}");
    let out = cli(&d, &["prefetch", "a", "--depth", "0"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let (_, text) = http::get(&d.http_addr, "/api/prefetch");
    assert_eq!(json(&text)["jobs"], json!([]), "{text}");
}

/// Waits until the server was asked for every tree of `want`.
fn wait_for_trees(server: &MegaServer, want: &[&str]) -> Counts {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = server.counts();
        if want.iter().all(|w| c.tree.iter().any(|p| p == w)) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "trees {want:?} never listed: {c:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn prefetch_depth_lists_from_the_root_at_start_and_from_each_writable_path() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::start_or_panic(DaemonOpts {
        extra_toml: "prefetch_depth = 2\n".into(),
        ..DaemonOpts::new(server.url())
    });
    // Nobody looks: the root and its subdirectories are listed in the background.
    let tops: Vec<String> = dirs_under("")
        .into_iter()
        .filter(|p| p.matches('/').count() == 1)
        .collect();
    let tops: Vec<&str> = tops.iter().map(String::as_str).collect();
    let c = wait_for_trees(&server, &tops);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!server.counts().tree.iter().any(|p| p == "/a/b"), "{c:?}");
    support::api::mount(&d, "a");
    wait_for_trees(&server, &["/a/b"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !server.counts().tree.iter().any(|p| p == "/a/b/d"),
        "{:?}",
        server.counts()
    );
    assert!(d.log().contains("prefetch ended"), "{}", d.log());
}

#[test]
fn an_antares_mount_is_ready_once_its_preload_is_done() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let s = AntaresServer::start(&server.url(), "preload_depth = 3");
    server.set_fault(Fault::Slow(Duration::from_millis(700)));
    let v = s.create(json!({"path": "a", "readonly": true}));
    let id = v["mount_id"].as_str().unwrap().to_string();
    let (st, r) = s.get(&format!("/mounts/{id}/ready"));
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["ready"], false, "ready while the preload runs: {r}");
    assert_eq!(r["state"], "Mounted", "{r}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, r) = s.get(&format!("/mounts/{id}/ready"));
        if r["ready"] == true {
            assert_eq!(r["state"], "Ready", "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {r}\n{}", s.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    server.set_fault(Fault::None);
    // Ready means listed: `a` (1), `a/b` (2), `a/b/d` (3), not `a/b/d/e`.
    let c = server.counts();
    for want in ["/a/b", "/a/b/d"] {
        assert!(c.tree.iter().any(|p| p == want), "{want}: {c:?}");
    }
    assert!(!c.tree.iter().any(|p| p == "/a/b/d/e"), "{c:?}");
    assert!(Path::new(&s.mount_root()).is_dir());
    // A restored mount is preloaded again (finding every listing kept) before it is ready.
    let mut s = s;
    s.stop();
    s.spawn();
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.get(&format!("/mounts/{id}/ready")).1["ready"] != true {
        assert!(Instant::now() < deadline, "never ready again\n{}", s.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let done = s
        .log()
        .lines()
        .filter(|l| l.contains("antares preload done") && l.contains(&id))
        .count();
    assert_eq!(done, 2, "{}", s.log());
    assert_eq!(s.delete(&format!("/mounts/{id}")).0, 200);
}

#[test]
fn at_most_fetch_concurrency_requests_are_in_flight() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::start_or_panic(DaemonOpts {
        extra_toml: "fetch_concurrency = 2\n".into(),
        ..DaemonOpts::new(server.url())
    });
    // The root is listed: the job's first requests are its subdirectories.
    let _ = std::fs::read_dir(&d.workspace)
        .expect("list the root")
        .count();
    server.set_fault(Fault::Slow(Duration::from_millis(1500)));
    server.reset_counts();
    let (st, v) = start(&d, json!({"path": "", "blobs": true}));
    assert_eq!(st, 202, "{v}");
    // Each request takes 1.5 s: within the first second only the first two have arrived.
    std::thread::sleep(Duration::from_millis(1000));
    let first = total(&server.counts());
    std::thread::sleep(Duration::from_millis(1500));
    let second = total(&server.counts());
    server.set_fault(Fault::None);
    let id = v["id"].as_str().unwrap();
    let _ = http::request(
        &d.http_addr,
        "DELETE",
        &format!("/api/prefetch/{id}"),
        None,
        None,
    );
    assert_eq!(first, 2, "{:?}", server.counts());
    assert!(second <= 4, "{second}: {:?}", server.counts());
}

#[test]
fn on_a_terminal_the_cli_draws_a_live_line_then_the_summary() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    server.set_fault(Fault::Slow(Duration::from_millis(150)));
    // `script` gives the CLI a terminal.
    let cmd = format!(
        "{} -c {} prefetch a --blobs",
        env!("CARGO_BIN_EXE_scorpio"),
        d.config_path.display()
    );
    let out = support::run_with_timeout(
        std::process::Command::new("script").args(["-qec", &cmd, "/dev/null"]),
        60,
    );
    server.set_fault(Fault::None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // Redrawn in place (carriage return, erase line) with the counts, then the summary.
    assert!(text.contains("\r\u{1b}[2K"), "{text:?}");
    assert!(
        text.contains(" dirs, ") && text.contains("objects/s"),
        "{text:?}"
    );
    assert!(
        text.contains("prefetch a: done; 4 directories listed"),
        "{text:?}"
    );
}
