//! The workspace's HTTP API: mounting and unmounting writable paths, request outcomes, refusals
//! of bad input (which change nothing on disk), the busy check, and the bearer token.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::api::{cli, layer_snapshot, mount, unmount};
use support::daemon::{run_with_timeout, Daemon, DaemonOpts};
use support::fixture;
use support::http;
use support::mountinfo::mount_options_of;

#[test]
fn a_mounted_path_is_writable_and_the_rest_stays_read_only() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let v = mount(&d, "a");
    assert_eq!(v["status"], "Success");
    let a = d.workspace.join("a");
    std::fs::write(a.join("new.txt"), b"fresh\n").expect("create in the writable path");
    assert_eq!(
        std::fs::read(a.join("new.txt")).expect("read back"),
        b"fresh\n"
    );
    // Copy-up keeps the content and appends.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(a.join("b/c.txt"))
        .expect("open lower file for append");
    std::io::Write::write_all(&mut f, b"more\n").expect("append");
    drop(f);
    let mut want = fixture::DEEP_FILE_CONTENT.to_vec();
    want.extend_from_slice(b"more\n");
    assert_eq!(std::fs::read(a.join("b/c.txt")).expect("read"), want);
    // Outside the mounted path nothing is writable.
    let e = std::fs::write(d.workspace.join("outside.txt"), b"x").expect_err("root is read-only");
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    // The remote layer is untouched: the lower object for c.txt still has the old content.
    let out = run_with_timeout(
        Command::new("git")
            .arg("--git-dir")
            .arg(&fx.repo_path)
            .args(["show", &format!("{}:a/b/c.txt", fx.commit)]),
        30,
    );
    assert_eq!(out.stdout, fixture::DEEP_FILE_CONTENT);
    // The mount shows up in the list.
    let (status, body) = http::get(&d.http_addr, "/api/fs/mpoint");
    assert_eq!(status, 200);
    assert!(body.contains("\"path\":\"a\""), "{body}");
}

#[test]
fn api_refuses_bad_input_and_changes_nothing() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "a/b");
    let before = layer_snapshot(&d.store);
    for (body, status, code) in [
        (r#"{"path":"no/such/dir"}"#, 404, "NOT_FOUND"),
        (r#"{"path":"a/../etc"}"#, 400, "BAD_PATH"),
        (r#"{"path":"./a"}"#, 400, "BAD_PATH"),
        (r#"{"path":"README.md"}"#, 400, "NOT_A_DIRECTORY"),
        (r#"{"path":"a/b"}"#, 409, "ALREADY_MOUNTED"),
        (r#"{"path":"/a/b/"}"#, 409, "ALREADY_MOUNTED"),
        (r#"{"path":"a/b/d"}"#, 409, "OVERLAPS_MOUNT"),
        (r#"{"path":"a"}"#, 409, "OVERLAPS_MOUNT"),
        (r#"{"path":"/"}"#, 409, "OVERLAPS_MOUNT"),
        (r#"{"nope":1}"#, 422, ""),
        ("not json", 400, ""),
    ] {
        let (got, resp) = http::post(&d.http_addr, "/api/fs/mount", body);
        assert_eq!(got, status, "{body} -> {resp}");
        if !code.is_empty() {
            let v: serde_json::Value = serde_json::from_str(&resp).expect("error body is JSON");
            assert_eq!(v["code"], code, "{resp}");
            assert!(v["error"].as_str().is_some_and(|m| !m.is_empty()), "{resp}");
        }
    }
    let (got, resp) = http::post(&d.http_addr, "/api/fs/unmount", r#"{"path":"src"}"#);
    assert_eq!(got, 404, "{resp}");
    assert_eq!(
        layer_snapshot(&d.store),
        before,
        "a refused request changed the store"
    );
}

#[test]
fn select_reports_the_outcome_of_a_request() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let v = mount(&d, "src");
    let id = v["request_id"].as_str().expect("request_id");
    let (status, body) = http::get(&d.http_addr, &format!("/api/fs/select/{id}"));
    assert_eq!(status, 200, "{body}");
    let s: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(s["status"], "Success");
    assert_eq!(s["path"], "src");
    assert_eq!(http::get(&d.http_addr, "/api/fs/select/unknown").0, 404);
}

#[test]
fn api_requires_the_bearer_token_when_one_is_set() {
    let fx = fixture::standard();
    let opts = DaemonOpts {
        extra_toml: "auth_token = \"s3cret\"\n".into(),
        ..DaemonOpts::new(fx.repo_path.display().to_string())
    };
    let d = Daemon::start_or_panic(opts);
    let body = r#"{"path":"a"}"#;
    let (status, resp) = http::request(&d.http_addr, "POST", "/api/fs/mount", Some(body), None);
    assert_eq!(status, 401, "{resp}");
    let (status, _) = http::request(
        &d.http_addr,
        "POST",
        "/api/fs/mount",
        Some(body),
        Some("wrong"),
    );
    assert_eq!(status, 401);
    assert_eq!(
        http::request(&d.http_addr, "GET", "/health", None, None).0,
        401
    );
    assert!(
        layer_snapshot(&d.store).is_empty(),
        "a refused request changed the store"
    );
    let (status, resp) = http::request(
        &d.http_addr,
        "POST",
        "/api/fs/mount",
        Some(body),
        Some("s3cret"),
    );
    assert_eq!(status, 200, "{resp}");
    // The CLI sends the token from the config.
    let out = cli(&d, &["list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn workspace_is_read_only_while_nothing_is_writable() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    // The superblock's flag is the one that counts (the per-mount one is the first field).
    let ro = |d: &Daemon| {
        mount_options_of(&d.workspace)
            .split(',')
            .skip(1)
            .any(|o| o == "ro")
    };
    assert!(ro(&d), "{}", mount_options_of(&d.workspace));
    mount(&d, "src");
    assert!(!ro(&d), "a writable path needs a read-write superblock");
    unmount(&d, "src");
    assert!(ro(&d), "back to read-only once nothing is writable");
}

/// The daemon does not see opens, so it asks the process table before it unmounts a path:
/// an open file, or a working directory, under it makes the unmount a 409 that names the
/// process, and changes nothing.
#[test]
fn unmount_refuses_while_a_process_uses_the_path() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "a");
    let a = d.workspace.join("a");
    std::fs::write(a.join("kept.txt"), b"kept").expect("write");
    let unmount_status = || http::post(&d.http_addr, "/api/fs/unmount", r#"{"path":"a"}"#);
    for script in [
        "exec 3<\"$0/kept.txt\"; exec sleep 30",
        "cd \"$0/b\" && exec sleep 30",
    ] {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&a)
            .spawn()
            .expect("spawn a holder");
        let deadline = Instant::now() + Duration::from_secs(10);
        let (status, body) = loop {
            let (status, body) = unmount_status();
            if status != 200 && body.contains(&child.id().to_string()) || Instant::now() > deadline
            {
                break (status, body);
            }
            // Not yet holding it: this unmount succeeded, so mount again and retry.
            if status == 200 {
                mount(&d, "a");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(status, 409, "{script}: {body}");
        assert!(body.contains("BUSY") && body.contains("sleep"), "{body}");
        assert_eq!(
            std::fs::read(a.join("kept.txt")).expect("still mounted"),
            b"kept"
        );
    }
    unmount(&d, "a");
    assert!(
        !a.join("kept.txt").exists(),
        "unmounted once nothing used it"
    );
}
