//! Read-only lazy mount, end to end: real FUSE mounts of the `scorpio` binary over the `local`
//! remote (a git repository on disk) and the `mega` remote (the Mega-API test server).

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use support::daemon::{read_guarded, Daemon, DaemonOpts};
use support::fixture;
use support::host::drop_caches;
use support::mega_server::{Fault, MegaServer};
use support::mountinfo::{fuse_mounts, is_fuse_mounted};
use support::tree::{archive, assert_same_tree};

fn errno_of(r: std::io::Result<Vec<u8>>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn local_mount_matches_git_archive() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let want = archive(&fx, &fx.commit);
    assert_same_tree(&d.workspace, want.path());
}

#[test]
fn mega_mount_matches_git_archive() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    let want = archive(&fx, &fx.commit);
    assert_same_tree(&d.workspace, want.path());
}

#[test]
fn mega_falls_back_to_pinned_listing_when_tree_is_no_longer_current() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::start(DaemonOpts {
        ref_: Some(fx.commit.clone()),
        ..DaemonOpts::new(server.url())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // The server moves on: `a/b` of the mounted commit is no longer its current tree.
    fixture::add_commit(&fx, "a/b/new.txt", b"newer\n");
    let got = std::fs::read(d.workspace.join(fixture::DEEP_FILE))
        .expect("read through the fallback listing");
    assert_eq!(got, fixture::DEEP_FILE_CONTENT);
    assert!(
        !d.workspace.join("a/b/new.txt").exists(),
        "the mount must stay pinned to its commit"
    );
    assert!(
        server.counts().content_hash.iter().any(|p| p == "/a/b"),
        "{:?}",
        server.counts()
    );
}

#[test]
fn mega_third_party_top_keeps_its_modes_from_the_current_tree() {
    // A `/third-party/tool` repository: at its top the server answers `file/tree` with an `oid`
    // with an empty body, as Mega does (it holds a placeholder there).
    let fx = fixture::standard();
    let wt = fixture::Worktree::clone_of(&fx);
    let tool = wt.path().join("third-party/tool");
    std::fs::create_dir_all(tool.join("lib")).expect("mkdir");
    std::fs::write(tool.join("run.sh"), b"#!/bin/sh\n").expect("write");
    std::fs::write(tool.join("lib/build.sh"), b"#!/bin/sh\nmake\n").expect("write");
    for exec in ["run.sh", "lib/build.sh"] {
        std::fs::set_permissions(tool.join(exec), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    std::fs::write(tool.join("README"), b"a tool\n").expect("write");
    std::os::unix::fs::symlink("run.sh", tool.join("start")).expect("symlink");
    let commit = wt.commit_all("a third-party repository");
    wt.git(&["push", "-q", "origin", "HEAD:refs/heads/main"]);
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    let want = archive(&fx, &commit);
    assert_same_tree(
        &d.workspace.join("third-party/tool"),
        &want.path().join("third-party/tool"),
    );
    let c = server.counts();
    // With the id (empty), then without it, checked against the listing pinned to the commit.
    assert_eq!(
        c.tree.iter().filter(|p| *p == "/third-party/tool").count(),
        2,
        "{c:?}"
    );
    assert_eq!(
        c.content_hash
            .iter()
            .filter(|p| *p == "/third-party/tool")
            .count(),
        1,
        "{c:?}"
    );
}

#[test]
fn laziness_is_counted_at_the_server() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    let names: Vec<_> = std::fs::read_dir(&d.workspace)
        .expect("list root")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(names.iter().any(|n| n == "a"), "{names:?}");
    let after_ls = server.counts();
    assert!(
        after_ls.blob_get.is_empty(),
        "listing the root fetched blobs: {after_ls:?}"
    );
    assert!(
        after_ls.blob_head.is_empty(),
        "listing the root asked for sizes: {after_ls:?}"
    );
    assert!(
        after_ls.tree.iter().all(|p| p == "/"),
        "listing the root fetched other trees: {after_ls:?}"
    );
    assert!(
        after_ls.content_hash.iter().all(|p| p == "/"),
        "{after_ls:?}"
    );

    server.reset_counts();
    let content = std::fs::read(d.workspace.join(fixture::DEEP_FILE)).expect("cat a/b/c.txt");
    assert_eq!(content, fixture::DEEP_FILE_CONTENT);
    let after_cat = server.counts();
    assert_eq!(
        after_cat.tree,
        ["/a", "/a/b"],
        "exactly the trees on the path: {after_cat:?}"
    );
    assert!(after_cat.content_hash.is_empty(), "{after_cat:?}");
    let oid = fixture::entry_oid(&fx, &fx.commit, fixture::DEEP_FILE).expect("oid");
    assert_eq!(
        after_cat.blob_get,
        std::slice::from_ref(&oid),
        "exactly one blob: {after_cat:?}"
    );
    assert!(
        after_cat.blob_head.iter().all(|o| *o == oid),
        "{after_cat:?}"
    );

    server.reset_counts();
    let again = std::fs::read(d.workspace.join(fixture::DEEP_FILE)).expect("second cat");
    assert_eq!(again, fixture::DEEP_FILE_CONTENT);
    let meta = std::fs::metadata(d.workspace.join(fixture::DEEP_FILE)).expect("stat");
    assert_eq!(meta.len(), fixture::DEEP_FILE_CONTENT.len() as u64);
    assert_eq!(
        server.counts(),
        Default::default(),
        "a second cat must not reach the server"
    );
}

#[test]
fn stat_gives_exact_size_without_fetching_the_blob() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    let meta = std::fs::metadata(d.workspace.join(fixture::BIG_FILE)).expect("stat big file");
    assert_eq!(meta.len(), fixture::BIG_FILE_SIZE as u64);
    assert!(
        server.counts().blob_get.is_empty(),
        "stat fetched a blob: {:?}",
        server.counts()
    );

    let local = Daemon::local(&fx);
    let meta =
        std::fs::metadata(local.workspace.join(fixture::BIG_FILE)).expect("stat big file (local)");
    assert_eq!(meta.len(), fixture::BIG_FILE_SIZE as u64);
    let objects = local.store.join("objects");
    let stored = walkdir::WalkDir::new(&objects)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .count();
    assert_eq!(
        stored, 0,
        "stat on the local remote copied a blob into the store"
    );
}

#[test]
fn concurrent_readers_share_one_fetch() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    server.set_fault(Fault::Slow(Duration::from_millis(300)));
    let d = Daemon::mega(&server);
    let path = d.workspace.join(fixture::BIG_FILE);
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || read_guarded(p, 60))
        })
        .collect();
    let want = fixture::big_blob_content();
    for r in readers {
        let got = r.join().expect("reader thread").expect("read big file");
        assert!(got == want, "big file content differs");
    }
    let oid = fixture::entry_oid(&fx, &fx.commit, fixture::BIG_FILE).expect("oid");
    let gets = server
        .counts()
        .blob_get
        .iter()
        .filter(|o| **o == oid)
        .count();
    assert_eq!(gets, 1, "8 concurrent readers must share one fetch");
}

#[test]
fn restart_keeps_inodes_and_serves_what_was_seen_offline() {
    let fx = fixture::standard();
    let mut server = MegaServer::start(&fx.repo_path);
    let store = tempfile::tempdir().expect("store dir");
    let opts = DaemonOpts {
        store: Some(store.path().to_path_buf()),
        ..DaemonOpts::new(server.url())
    };
    let mut d = Daemon::start_or_panic(opts);
    let seen = [
        fixture::DEEP_FILE,
        fixture::SPACE_FILE,
        fixture::UNICODE_FILE,
        fixture::EXEC_FILE,
    ];
    let mut before = BTreeMap::new();
    for p in seen {
        let full = d.workspace.join(p);
        assert!(!std::fs::read(&full).expect("read").is_empty() || p == fixture::EMPTY_FILE);
        before.insert(p, std::fs::metadata(&full).expect("stat").ino());
    }
    let listed_only = d.workspace.join(fixture::README);
    let readme_ino = std::fs::symlink_metadata(&listed_only)
        .expect("stat README")
        .ino();
    assert!(
        d.stop().success(),
        "daemon did not exit 0 on SIGTERM: {}",
        d.log()
    );

    server.stop();
    d.restart()
        .unwrap_or_else(|e| panic!("restart with the server down: {e}"));
    for p in seen {
        let full = d.workspace.join(p);
        assert_eq!(
            std::fs::metadata(&full).expect("stat offline").ino(),
            before[p],
            "{p} changed inode"
        );
        let bytes =
            read_guarded(full, 30).unwrap_or_else(|e| panic!("{p} unreadable offline: {e}"));
        assert!(!bytes.is_empty(), "{p}");
    }
    assert_eq!(
        std::fs::symlink_metadata(&listed_only)
            .expect("stat README offline")
            .ino(),
        readme_ino
    );
    // Never read, so not cached: the server being down is an I/O error, not a missing file.
    assert_eq!(errno_of(read_guarded(listed_only, 30)), Some(libc::EIO));
    // It started on the commit it showed, without asking the server.
    assert!(
        d.log()
            .contains("serving the commit this workspace showed last"),
        "{}",
        d.log()
    );
}

#[test]
fn wrong_bytes_are_eio_and_never_cached() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    server.set_fault(Fault::WrongBytes);
    let path = d.workspace.join(fixture::DEEP_FILE);
    assert_eq!(errno_of(read_guarded(path.clone(), 30)), Some(libc::EIO));
    let oid = fixture::entry_oid(&fx, &fx.commit, fixture::DEEP_FILE).expect("oid");
    assert!(
        !d.store
            .join("objects")
            .join(&oid[..2])
            .join(&oid[2..])
            .exists(),
        "a corrupt blob was cached"
    );
    server.set_fault(Fault::None);
    assert_eq!(
        read_guarded(path, 30).expect("read after the server is fixed"),
        fixture::DEEP_FILE_CONTENT
    );
}

#[test]
fn server_down_is_eio_within_the_timeout() {
    let fx = fixture::standard();
    let mut server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    std::fs::read_dir(&d.workspace)
        .expect("list root")
        .for_each(drop);
    server.stop();
    // Never listed, never read: nothing to serve.
    assert_eq!(
        errno_of(read_guarded(d.workspace.join(fixture::DEEP_FILE), 30)),
        Some(libc::EIO)
    );
}

#[test]
fn slow_server_is_eio_within_the_timeout_not_a_hang() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    std::fs::read_dir(&d.workspace)
        .expect("list root")
        .for_each(drop);
    server.set_fault(Fault::Slow(Duration::from_secs(60)));
    // request_timeout_secs is 5 in the test config; 30 s is only the hang guard.
    assert_eq!(
        errno_of(read_guarded(d.workspace.join(fixture::README), 30)),
        Some(libc::EIO)
    );
    server.set_fault(Fault::Http500);
    assert_eq!(
        errno_of(read_guarded(d.workspace.join(fixture::LIB_RS), 30)),
        Some(libc::EIO)
    );
}

#[test]
fn writes_are_refused_with_erofs() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let e = std::fs::write(d.workspace.join("new.txt"), b"x").expect_err("create must fail");
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    let e = std::fs::create_dir(d.workspace.join("newdir")).expect_err("mkdir must fail");
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    let e = std::fs::OpenOptions::new()
        .append(true)
        .open(d.workspace.join(fixture::README))
        .expect_err("write open");
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    let e = std::fs::remove_file(d.workspace.join(fixture::README)).expect_err("unlink must fail");
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    assert_eq!(
        std::fs::read(d.workspace.join(fixture::README)).expect("still readable"),
        fixture::README_CONTENT
    );
}

#[test]
fn missing_names_are_enoent_and_files_are_not_dirs() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let e = std::fs::metadata(d.workspace.join("nope")).expect_err("missing");
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    // Twice: the second answer comes from the kernel's negative cache and must agree.
    let e = std::fs::metadata(d.workspace.join("nope")).expect_err("missing again");
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    let e = std::fs::metadata(d.workspace.join("README.md/x")).expect_err("file as dir");
    assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
    let sub = std::fs::read_dir(d.workspace.join(fixture::SUBMODULE))
        .expect("submodule is a dir")
        .count();
    assert_eq!(sub, 0, "a submodule shows as an empty directory");
}

#[test]
fn sigterm_and_sigint_unmount_and_exit_zero() {
    let fx = fixture::standard();
    let mut d = Daemon::local(&fx);
    let (status, body) = support::http::get(&d.http_addr, "/health");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("health is JSON");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["commit"], fx.commit.as_str());
    assert!(v["uptime_secs"].is_u64() && v["mount_count"] == 1, "{v}");
    let status = d.stop();
    assert!(status.success(), "SIGTERM exit: {status:?}\n{}", d.log());
    assert!(!is_fuse_mounted(&d.workspace));

    d.restart().unwrap_or_else(|e| panic!("{e}"));
    let pid = d.pid().expect("pid") as libc::pid_t;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    for _ in 0..200 {
        if !is_fuse_mounted(&d.workspace) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!is_fuse_mounted(&d.workspace), "SIGINT did not unmount");
    assert!(d.stop().success(), "SIGINT exit status\n{}", d.log());

    // A file held open makes the clean unmount fail (busy): the session still ends (its
    // connection is aborted), the daemon detaches the mount and exits 0, promptly.
    // The abort goes through fusectl, which a fresh machine may not have mounted: the daemon
    // mounts it. (Lazily detached here so the case is covered on every machine.)
    let _ = rustix::mount::unmount(
        "/sys/fs/fuse/connections",
        rustix::mount::UnmountFlags::DETACH,
    );
    d.restart().unwrap_or_else(|e| panic!("{e}"));
    let held = std::fs::File::open(d.workspace.join(fixture::DEEP_FILE)).expect("open");
    // `stop` sends SIGKILL (a failed status) when SIGTERM is not done within STOP_TIMEOUT.
    let status = d.stop();
    assert!(
        status.success(),
        "SIGTERM exit with a busy mount: {status:?}\n{}",
        d.log()
    );
    assert!(
        !d.log().contains("did not end within"),
        "the session ended only by the daemon's timeout: the connection was not aborted\n{}",
        d.log()
    );
    assert!(!is_fuse_mounted(&d.workspace));
    drop(held);
}

#[test]
fn stale_mount_from_a_crash_is_cleared_at_start() {
    let fx = fixture::standard();
    let mut d = Daemon::local(&fx);
    std::fs::read(d.workspace.join(fixture::DEEP_FILE)).expect("read");
    d.kill9();
    assert!(
        is_fuse_mounted(&d.workspace),
        "SIGKILL should leave a stale mount behind"
    );
    d.restart()
        .unwrap_or_else(|e| panic!("restart over a stale mount: {e}"));
    let again = std::fs::read(d.workspace.join(fixture::DEEP_FILE))
        .unwrap_or_else(|e| panic!("read after restart: {e}\n{}\n{}", d.log(), fuse_mounts()));
    assert_eq!(again, fixture::DEEP_FILE_CONTENT);
    assert!(
        d.log().contains("stale mount"),
        "no log line about the stale mount:\n{}",
        d.log()
    );
}

fn stored_objects(store: &Path) -> Vec<(String, u64)> {
    walkdir::WalkDir::new(store.join("objects"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && !e.path().starts_with(store.join("objects/tmp")))
        .map(|e| {
            let fan = e
                .path()
                .parent()
                .and_then(|p| p.file_name())
                .expect("fan-out dir")
                .to_string_lossy()
                .into_owned();
            (
                format!("{fan}{}", e.file_name().to_string_lossy()),
                e.metadata().expect("stat object").len(),
            )
        })
        .collect()
}

#[test]
fn disk_cache_is_bounded_and_evicted_blobs_come_back() {
    let fx = fixture::standard();
    let opts = DaemonOpts {
        extra_toml: "cache_disk_bytes = 1048576\n".into(),
        ..DaemonOpts::new(fx.repo_path.display().to_string())
    };
    let d = Daemon::start_or_panic(opts);
    let big_oid = fixture::entry_oid(&fx, &fx.commit, fixture::BIG_FILE).expect("oid");
    let want = fixture::big_blob_content();
    assert!(std::fs::read(d.workspace.join(fixture::BIG_FILE)).expect("read big") == want);
    // One object larger than the bound is kept alone...
    assert!(stored_objects(&d.store).iter().any(|(o, _)| *o == big_oid));
    // ...and is the least recently used one once others arrive.
    for p in [fixture::README, fixture::DEEP_FILE, fixture::LIB_RS] {
        std::fs::read(d.workspace.join(p)).expect("read small file");
    }
    let stored = stored_objects(&d.store);
    assert!(
        !stored.iter().any(|(o, _)| *o == big_oid),
        "the big blob was not evicted: {stored:?}"
    );
    assert!(
        stored.iter().map(|(_, n)| n).sum::<u64>() <= 1 << 20,
        "{stored:?}"
    );
    // Drop the page cache when allowed (root) so the read reaches the daemon; content is checked either way.
    drop_caches();
    assert!(std::fs::read(d.workspace.join(fixture::BIG_FILE)).expect("read big again") == want);
}
