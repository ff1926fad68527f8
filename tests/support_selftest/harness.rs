//! Selftest: the harness (see tests/support_selftest.rs). Mountinfo parsing, command timeouts,
//! and the server's raw HTTP/1.1 headers; no daemon is run.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::daemon::try_run_with_timeout;
use crate::support::fixture;
use crate::support::http;
use crate::support::mountinfo::parse_mountinfo_line;
use crate::support::{run_with_timeout, MegaServer};

#[test]
fn mountinfo_parsing_and_command_timeouts() {
    let line = r"612 35 0:77 / /tmp/x\040y/ws rw,nosuid,nodev,relatime shared:300 - fuse.scorpio scorpio rw,user_id=0,group_id=0";
    let m = parse_mountinfo_line(line).expect("parse mountinfo line");
    assert_eq!(m.mount_id, 612);
    assert_eq!(m.mount_point, Path::new("/tmp/x y/ws"));
    assert_eq!(m.fstype, "fuse.scorpio");
    assert_eq!(m.source, "scorpio");
    let line = r"22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw";
    let m = parse_mountinfo_line(line).expect("parse line without optional fields");
    assert_eq!(m.mount_point, Path::new("/"));
    assert_eq!(m.fstype, "ext4");
    assert_eq!(
        crate::support::mountinfo::decode_mount_field(r"a\134b\011c\012"),
        b"a\\b\tc\n"
    );

    assert!(crate::support::is_mounted(Path::new("/")));
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(!crate::support::is_mounted(dir.path()));
    assert!(!crate::support::is_fuse_mounted(dir.path()));

    let out = run_with_timeout(Command::new("echo").arg("hi"), 5);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hi\n");
    let t = Instant::now();
    let err = try_run_with_timeout(Command::new("sleep").arg("30"), 1)
        .expect_err("sleep 30 must time out");
    assert!(err.contains("timed out"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10));
}

/// Sends a raw HTTP/1.1 request (Connection: close); returns the head and the body as text.
fn raw_http(server: &MegaServer, method: &str, path: &str) -> (String, String) {
    let head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let r = http::exchange(
        &server.addr().to_string(),
        &head,
        Vec::new(),
        None,
        Duration::from_secs(30),
    )
    .expect("connect to MegaServer");
    let body = r.text();
    (r.head, body)
}

#[test]
fn server_raw_http_headers() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let oid = fixture::entry_oid(&fx, &fx.commit, fixture::README).expect("README");
    let len = fixture::README_CONTENT.len();
    for method in ["GET", "HEAD"] {
        let (head, body) = raw_http(&server, method, &format!("/api/v1/file/blob/{oid}"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let lengths: Vec<&str> = head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("content-length:"))
            .collect();
        assert_eq!(lengths.len(), 1, "{method}: {head}");
        assert_eq!(
            lengths[0].split(':').nth(1).map(str::trim),
            Some(&*len.to_string())
        );
        if method == "HEAD" {
            assert!(body.is_empty(), "HEAD returned a body: {body:?}");
        } else {
            assert_eq!(body.as_bytes(), fixture::README_CONTENT);
        }
    }
    let c = server.counts();
    assert_eq!((c.blob_get.len(), c.blob_head.len()), (1, 1));
}
