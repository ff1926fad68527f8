//! Antares: entry points (see tests/antares.rs). The daemon serves the same API at `/antares`,
//! and the CLI mounts, lists and unmounts.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::antares::{fuse_mounts_under, live_fuse, path_of, AntaresServer};
use crate::support::api::cli;
use crate::support::daemon::{lazy_unmount, run_with_timeout, scorpio_command, Daemon};
use crate::support::fixture;
use crate::support::http;
use crate::support::mountinfo::mountinfo;

/// Lazily unmounts every FUSE mount under a directory when dropped.
struct UnmountUnder(Option<PathBuf>);

impl Drop for UnmountUnder {
    fn drop(&mut self) {
        if let Some(root) = &self.0 {
            for m in fuse_mounts_under(root) {
                lazy_unmount(&m);
            }
        }
    }
}

#[test]
fn the_daemon_serves_the_same_api_at_antares() {
    let fx = fixture::standard();
    // Dropped after the daemon: clears Antares mounts a failed test would leave.
    let mut cleanup = UnmountUnder(None);
    let d = Daemon::local(&fx);
    cleanup.0 = Some(d.store.clone());
    let (st, h) = http::get(&d.http_addr, "/antares/health");
    assert_eq!(st, 200, "{h}");
    let (st, body) = http::post(
        &d.http_addr,
        "/antares/mounts",
        r#"{"job_id":"w","path":"a"}"#,
    );
    assert_eq!(st, 201, "{body}\n{}", d.log());
    let v: Value = serde_json::from_str(&body).expect("JSON");
    let mp = path_of(&v, "mountpoint");
    assert!(
        mp.starts_with(&d.store),
        "default roots live in the store: {mp:?}"
    );
    std::fs::write(mp.join("n.txt"), b"n").expect("write");
    // The workspace does not see the job's write.
    assert!(!d.workspace.join("a/n.txt").exists());
    assert_eq!(
        std::fs::read(d.workspace.join(fixture::DEEP_FILE)).expect("read"),
        fixture::DEEP_FILE_CONTENT
    );
    // The CLI talks to the same routes.
    let out = cli(&d, &["antares", "--via-daemon", "list"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(v["mount_id"].as_str().unwrap()));
    let out = cli(&d, &["antares", "--via-daemon", "umount", "--job", "w"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!mountinfo().iter().any(|m| m.mount_point == mp));
    let (st, _) = http::get(&d.http_addr, "/antares/mounts/by-job/w");
    assert_eq!(st, 404);
    // A mount left at shutdown is unmounted by SIGTERM with the workspace.
    let (st, body) = http::post(&d.http_addr, "/antares/mounts", r#"{"path":"src"}"#);
    assert_eq!(st, 201, "{body}");
    let mp = path_of(&serde_json::from_str(&body).expect("JSON"), "mountpoint");
    let mut d = d;
    assert!(d.stop().success());
    assert!(!mountinfo().iter().any(|m| m.mount_point == mp));
}

#[test]
fn the_cli_mounts_lists_and_unmounts() {
    let fx = fixture::standard();
    let s = AntaresServer::start(&fx.repo_path.display().to_string(), "");
    let cli =
        |args: &[&str]| run_with_timeout(scorpio_command(&s.config).arg("antares").args(args), 60);
    let out = cli(&["mount", "a", "--job-id", "cli", "--label", "team=ci"]);
    assert!(out.status.success(), "{out:?}\n{}", s.log());
    let mp = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(live_fuse(&mp), "{mp:?}");
    assert_eq!(
        std::fs::read(mp.join("b/c.txt")).expect("read"),
        fixture::DEEP_FILE_CONTENT
    );
    let out = cli(&["list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cli"),
        "{out:?}"
    );
    let out = cli(&["mount", "a/../b"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = cli(&["umount", "--job", "cli"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!mp.exists());
    let out = cli(&["umount", "no-such-id"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

/// `antares serve` under systemd (`Type=notify`): READY once the API answers (with the mount
/// count as status), STOPPING when SIGTERM starts the shutdown, then exit 0.
#[test]
fn antares_serve_tells_a_service_manager_ready_and_stopping() {
    let fx = fixture::standard();
    let mut server = AntaresServer::start(&fx.repo_path.to_string_lossy(), "");
    assert!(server.stop().is_some_and(|s| s.success()));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).expect("bind the notify socket");
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let next = || {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("a datagram within 30 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    server.notify_socket = Some(path.clone());
    server.spawn();
    let ready = next();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(
        ready
            .lines()
            .any(|l| l.starts_with("STATUS=antares on ") && l.ends_with("0 mount(s)")),
        "{ready:?}"
    );
    assert_eq!(server.get("/health").0, 200);
    server.signal(libc::SIGTERM);
    let stopping = next();
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    assert!(server.stop().is_some_and(|s| s.success()));
}
