//! Edits that outlive the process holding them: across unmount and mount, a daemon restart and
//! a SIGKILL, and change-list (CL) layers, which come back with their mount after a restart.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::api::{mount, mount_cl, unmount};
use support::daemon::Daemon;
use support::fixture::{self, Fixture};
use support::http;
use support::mega_server::MegaServer;

#[test]
fn edits_survive_unmount_and_daemon_restart() {
    let fx = fixture::standard();
    let mut d = Daemon::local(&fx);
    mount(&d, "a");
    let a = d.workspace.join("a");
    std::fs::write(a.join("b/c.txt"), b"changed\n").expect("overwrite lower file");
    std::fs::set_permissions(a.join("b/c.txt"), std::fs::Permissions::from_mode(0o751))
        .expect("chmod");
    std::fs::write(a.join("added.bin"), vec![7u8; 100_000]).expect("add");
    std::fs::remove_file(a.join("up")).expect("delete a lower symlink");
    std::fs::remove_dir_all(a.join("b/d")).expect("delete a lower directory");
    let expect = |a: &Path| {
        assert_eq!(
            std::fs::read(a.join("b/c.txt")).expect("c.txt"),
            b"changed\n"
        );
        assert_eq!(
            std::fs::metadata(a.join("b/c.txt"))
                .expect("stat")
                .permissions()
                .mode()
                & 0o7777,
            0o751
        );
        assert_eq!(
            std::fs::read(a.join("added.bin")).expect("added"),
            vec![7u8; 100_000]
        );
        assert!(
            std::fs::symlink_metadata(a.join("up")).is_err(),
            "whiteout lost"
        );
        assert!(!a.join("b/d").exists(), "deleted directory came back");
    };
    expect(&a);
    unmount(&d, "a");
    assert!(
        a.join("up").exists() && a.join("b/d/e/deep.txt").exists(),
        "unmounted path shows the repository"
    );
    mount(&d, "a");
    expect(&a);
    // Still mounted when the daemon stops: it comes back mounted, with the same content.
    assert!(d.stop().success(), "{}", d.log());
    d.restart().unwrap_or_else(|e| panic!("{e}"));
    expect(&a);
    std::fs::write(a.join("after-restart"), b"ok").expect("still writable after restart");
}

#[test]
fn fsynced_bytes_survive_sigkill() {
    let fx = fixture::standard();
    let mut d = Daemon::local(&fx);
    mount(&d, "src");
    let path = d.workspace.join("src/journal.log");
    let mut f = std::fs::File::create(&path).expect("create");
    let synced = b"committed line 1\ncommitted line 2\n";
    std::io::Write::write_all(&mut f, synced).expect("write");
    f.sync_all().expect("fsync");
    // Keep writing without fsync while the daemon dies.
    let writer = std::thread::spawn(move || {
        for _ in 0..1000 {
            if std::io::Write::write_all(&mut f, b"unsynced\n").is_err() {
                break;
            }
        }
    });
    d.kill9();
    let _ = writer.join();
    d.restart()
        .unwrap_or_else(|e| panic!("restart after SIGKILL: {e}"));
    let got = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("the file does not survive: {e}\n{}", d.log()));
    assert!(
        got.starts_with(synced),
        "fsync'd bytes lost: {:?}",
        String::from_utf8_lossy(&got[..got.len().min(80)])
    );
}

/// Makes branch `name` on the fixture: one commit over the fixture commit that rewrites
/// `a/b/c.txt`, adds an executable `a/tool.sh`, deletes `a/up` and `a/b/d/e/deep.txt`.
fn cl_branch(fx: &Fixture, name: &str) -> String {
    let wt = fixture::Worktree::clone_of(fx);
    std::fs::write(wt.path().join("a/b/c.txt"), b"from the change list\n").expect("write");
    std::fs::write(wt.path().join("a/tool.sh"), b"#!/bin/sh\n").expect("write");
    std::fs::set_permissions(
        wt.path().join("a/tool.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    std::fs::remove_file(wt.path().join("a/up")).expect("rm");
    std::fs::remove_file(wt.path().join("a/b/d/e/deep.txt")).expect("rm");
    let id = wt.commit_all("cl");
    wt.git(&["push", "-q", "origin", &format!("HEAD:refs/heads/{name}")]);
    id
}

fn assert_cl_view(a: &Path) {
    assert_eq!(
        std::fs::read(a.join("b/c.txt")).expect("CL file"),
        b"from the change list\n"
    );
    assert_eq!(
        std::fs::read(a.join("tool.sh")).expect("CL addition"),
        b"#!/bin/sh\n"
    );
    assert!(
        std::fs::symlink_metadata(a.join("up")).is_err(),
        "CL deletion shows"
    );
    assert!(!a.join("b/d/e/deep.txt").exists(), "CL deletion shows");
    assert!(
        a.join("b/d/e").is_dir(),
        "the directory of a deleted file stays"
    );
}

#[test]
fn cl_layer_from_a_local_commit() {
    let fx = fixture::standard();
    let mut d = Daemon::local(&fx);
    cl_branch(&fx, "cl1");
    let (status, body) = mount_cl(&d, "a", "cl1");
    assert_eq!(status, 200, "{body}\n{}", d.log());
    let a = d.workspace.join("a");
    assert_cl_view(&a);
    assert_eq!(
        std::fs::metadata(a.join("tool.sh"))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    // Edits go on top of the CL layer; the layer itself is not changed.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(a.join("b/c.txt"))
        .expect("open");
    std::io::Write::write_all(&mut f, b"and mine\n").expect("append");
    drop(f);
    assert_eq!(
        std::fs::read(a.join("b/c.txt")).expect("read"),
        b"from the change list\nand mine\n"
    );
    // The rest of the workspace does not see the CL.
    assert_eq!(
        http::post(&d.http_addr, "/api/fs/mount", r#"{"path":"src"}"#).0,
        200
    );
    // A restart brings the mount back with its CL.
    assert!(d.stop().success());
    d.restart().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        std::fs::read(a.join("b/c.txt")).expect("read"),
        b"from the change list\nand mine\n"
    );
    assert_eq!(
        std::fs::read(a.join("tool.sh")).expect("read"),
        b"#!/bin/sh\n"
    );
    // Unknown CLs are refused without touching anything.
    let (status, body) = mount_cl(&d, "bin", "no-such-cl");
    assert_eq!(status, 404, "{body}");
    let (status, body) = mount_cl(&d, "bin", "../x");
    assert_eq!(status, 400, "{body}");
}

#[test]
fn cl_layer_from_mega_files_list() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let repo = fx.open();
    let blob = |content: &[u8]| repo.blob(content).expect("write blob").to_string();
    let items = serde_json::json!([
        {"path": "/a/b/c.txt", "sha": blob(b"from the change list\n"), "action": "modified"},
        {"path": "/a/tool.sh", "sha": blob(b"#!/bin/sh\n"), "action": "new"},
        {"path": "/a/up", "sha": "", "action": "deleted"},
        {"path": "/a/b/d/e/deep.txt", "sha": "", "action": "deleted"},
        {"path": "/src/lib.rs", "sha": blob(b"outside the mounted path\n"), "action": "modified"}
    ]);
    server.set_cl("42", items);
    let d = Daemon::mega(&server);
    let (status, body) = mount_cl(&d, "a", "42");
    assert_eq!(status, 200, "{body}\n{}", d.log());
    assert_cl_view(&d.workspace.join("a"));
    assert_eq!(
        std::fs::read(d.workspace.join("src/lib.rs")).expect("read"),
        fixture::LIB_RS_CONTENT
    );
    let (status, body) = mount_cl(&d, "src", "43");
    assert_eq!(status, 404, "{body}");
}

/// The layer directories of `d`'s store (its `mounts` root, made on the first request, aside).
fn layers(d: &Daemon) -> Vec<(std::path::PathBuf, u64)> {
    let root = d.store.join("mounts");
    support::api::layer_snapshot(&d.store)
        .into_iter()
        .filter(|(p, _)| *p != root)
        .collect()
}

/// Mega names a per-path CL's files relative to the CL's path (a push to `a.git` opens a CL
/// at `a`); the layer puts them at their repository paths. A CL with nothing under the mounted
/// path is refused, and nothing of the refused mount stays on disk.
#[test]
fn cl_layer_from_a_per_path_mega_cl() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let repo = fx.open();
    let blob = |content: &[u8]| repo.blob(content).expect("write blob").to_string();
    server.set_cl_at(
        "42",
        "/a",
        serde_json::json!([
            {"path": "b/c.txt", "sha": blob(b"from the change list\n"), "action": "modified"},
            {"path": "tool.sh", "sha": blob(b"#!/bin/sh\n"), "action": "new"},
            {"path": "up", "sha": "", "action": "deleted"},
            {"path": "b/d/e/deep.txt", "sha": "", "action": "deleted"}
        ]),
    );
    server.set_cl_at(
        "43",
        "/a",
        serde_json::json!([{"path": "tool.sh", "sha": blob(b"x\n"), "action": "new"}]),
    );
    let d = Daemon::mega(&server);
    // At a/b/d: nothing of CL 43 is there. Refused before anything is made.
    let before = layers(&d);
    let (status, body) = mount_cl(&d, "a/b/d", "43");
    assert_eq!(status, 400, "{body}\n{}", d.log());
    assert!(body.contains("CL_NOT_UNDER_PATH"), "{body}");
    assert_eq!(layers(&d), before);
    server.reset_counts();
    let (status, body) = mount_cl(&d, "a", "42");
    assert_eq!(status, 200, "{body}\n{}", d.log());
    // Its path found at the second candidate: the root's info/refs, then a's.
    assert_eq!(server.counts().info_refs, 2);
    assert_cl_view(&d.workspace.join("a"));
    // A CL at the root (a push to `/.git`): its paths are the repository's; none under src.
    server.set_cl(
        "44",
        serde_json::json!([{"path": "/a/b/c.txt", "sha": blob(b"y\n"), "action": "modified"}]),
    );
    let (status, body) = mount_cl(&d, "src", "44");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("CL_NOT_UNDER_PATH"), "{body}");
    assert_eq!(
        std::fs::read(d.workspace.join("src/lib.rs")).expect("read"),
        fixture::LIB_RS_CONTENT
    );
}
