//! The `mega` remote under many reads (issue 15, item 3), counted at the Mega-API test server:
//! a stat, or a read, of every file of a tree has the sizes, or the small blobs, of the files
//! of its directory (and of the listed directories below) fetched ahead side by side, each once,
//! and a blob fetched ahead is verified like any other: never served, never kept when wrong.
//! In a `/third-party` repository, many files wanted ahead cost one pack of the repository
//! instead, and a pack that does not hold the mounted blobs leaves them to single requests.
//! Nothing here is timed: the server's delay only makes requests overlap when they can.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use support::daemon::{read_guarded, Daemon};
use support::fixture::{self, Fixture};
use support::mega_server::{Fault, MegaServer};

/// Files per directory of the generated repository (two directories).
const PER_DIR: usize = 30;
const FILES: usize = 2 * PER_DIR;

fn errno_of(r: std::io::Result<Vec<u8>>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

fn path_of(i: usize) -> String {
    fixture::generated_path(i, FILES, PER_DIR)
}

fn oid_of(fx: &Fixture, path: &str) -> String {
    let head = fixture::head(fx);
    fixture::entry_oid(fx, &head, path).unwrap_or_else(|| panic!("no {path}"))
}

/// How many times each id was asked for.
fn per_oid(asked: &[String]) -> BTreeMap<&str, usize> {
    let mut m = BTreeMap::new();
    for o in asked {
        *m.entry(o.as_str()).or_default() += 1;
    }
    m
}

/// Waits (at most 30 s) until `done` holds for the server's counts.
fn wait_for(server: &MegaServer, what: &str, done: impl Fn(&support::mega_server::Counts) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(&server.counts()) {
        assert!(Instant::now() < deadline, "{what}: {:?}", server.counts());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn object_stored(store: &Path, oid: &str) -> bool {
    store
        .join("objects")
        .join(&oid[..2])
        .join(&oid[2..])
        .exists()
}

#[test]
fn a_stat_of_every_file_asks_each_size_once_side_by_side() {
    let fx = fixture::generated(FILES, PER_DIR);
    fixture::add_commit(&fx, "top.txt", b"at the top\n");
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    for dir in ["", "d0000", "d0001"] {
        assert!(
            std::fs::read_dir(d.workspace.join(dir))
                .expect("list")
                .count()
                > 0
        );
    }
    assert!(
        server.counts().blob_head.is_empty(),
        "listing asked for sizes: {:?}",
        server.counts()
    );
    server.reset_counts();
    server.set_fault(Fault::Slow(Duration::from_millis(100)));

    // The first stat, at the top, has every listed directory below asked for ahead.
    let top = std::fs::metadata(d.workspace.join("top.txt")).expect("stat top.txt");
    assert_eq!(top.len(), 11);
    for i in 0..FILES {
        let meta = std::fs::metadata(d.workspace.join(path_of(i))).expect("stat");
        assert_eq!(
            meta.len(),
            fixture::generated_content(i).len() as u64,
            "{i}"
        );
    }
    let c = server.counts();
    let heads = per_oid(&c.blob_head);
    let mut want: Vec<String> = (0..FILES).map(|i| oid_of(&fx, &path_of(i))).collect();
    want.push(oid_of(&fx, "top.txt"));
    for oid in &want {
        assert_eq!(heads.get(oid.as_str()), Some(&1), "{oid} asked once: {c:?}");
    }
    assert_eq!(c.blob_head.len(), want.len(), "{c:?}");
    assert!(c.blob_get.is_empty(), "a stat fetched a blob: {c:?}");
    assert!(
        server.blob_max_in_flight() > 1,
        "the sizes were asked one after another"
    );
}

#[test]
fn a_read_of_every_file_fetches_each_blob_once_side_by_side() {
    let fx = fixture::generated(FILES, PER_DIR);
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    server.set_fault(Fault::Slow(Duration::from_millis(100)));
    for i in 0..FILES {
        let got = read_guarded(d.workspace.join(path_of(i)), 60).expect("read");
        assert_eq!(got, fixture::generated_content(i), "{i}");
    }
    let c = server.counts();
    let gets = per_oid(&c.blob_get);
    for i in 0..FILES {
        let oid = oid_of(&fx, &path_of(i));
        assert_eq!(
            gets.get(oid.as_str()),
            Some(&1),
            "{oid} fetched once: {c:?}"
        );
    }
    assert_eq!(c.blob_get.len(), FILES, "{c:?}");
    assert!(
        server.blob_max_in_flight() > 1,
        "the blobs were fetched one after another"
    );
    // Everything read is stored, and a second read asks nothing.
    server.reset_counts();
    for i in 0..FILES {
        assert_eq!(
            std::fs::read(d.workspace.join(path_of(i))).expect("read again"),
            fixture::generated_content(i)
        );
    }
    assert_eq!(server.counts(), Default::default());
}

#[test]
fn a_wrong_blob_fetched_ahead_is_never_served_nor_kept() {
    let fx = fixture::generated(FILES, PER_DIR);
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    server.set_fault(Fault::WrongBytes);
    let first = path_of(0);
    assert_eq!(
        errno_of(read_guarded(d.workspace.join(&first), 30)),
        Some(libc::EIO)
    );
    // The others of the directory were fetched ahead (wrong, too).
    let siblings: Vec<(usize, String)> = (1..PER_DIR)
        .map(|i| (i, oid_of(&fx, &path_of(i))))
        .collect();
    wait_for(&server, "the siblings fetched ahead", |c| {
        siblings.iter().all(|(_, o)| c.blob_get.contains(o))
    });
    let (i, oid) = &siblings[0];
    let asked = |c: &support::mega_server::Counts| c.blob_get.iter().filter(|o| *o == oid).count();
    let before = asked(&server.counts());
    assert_eq!(
        errno_of(read_guarded(d.workspace.join(path_of(*i)), 30)),
        Some(libc::EIO),
        "a blob fetched ahead with the wrong bytes was served"
    );
    assert!(
        asked(&server.counts()) > before,
        "the reader was not asked again for what was fetched ahead"
    );
    for (_, o) in &siblings {
        assert!(
            !object_stored(&d.store, o),
            "a corrupt blob was cached: {o}"
        );
    }
    server.set_fault(Fault::None);
    for i in 0..PER_DIR {
        assert_eq!(
            read_guarded(d.workspace.join(path_of(i)), 30).expect("read after the fix"),
            fixture::generated_content(i)
        );
    }
}

/// Directories and files per directory of the `/third-party/lib` repository below.
const LIB_DIRS: usize = 3;
const LIB_PER_DIR: usize = 50;

/// The content of the `i`-th file of `third-party/lib` in `version`: mostly shared lines, so
/// git stores most of them as deltas of one another.
fn lib_content(i: usize, version: u32) -> Vec<u8> {
    let shared: String = (0..60)
        .map(|l| format!("static int shared_line_{l} = {l};\n"))
        .collect();
    format!("{shared}/* file {i}, version {version} */\n").into_bytes()
}

fn lib_path(i: usize) -> String {
    format!("third-party/lib/d{}/f{i:03}.c", i / LIB_PER_DIR)
}

/// Writes every file of `third-party/lib` in `version` on `main` of the fixture.
fn push_lib(fx: &Fixture, version: u32) {
    let wt = fixture::Worktree::clone_of(fx);
    for i in 0..LIB_DIRS * LIB_PER_DIR {
        let p = wt.path().join(lib_path(i));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, lib_content(i, version)).expect("write");
    }
    wt.commit_all(&format!("third-party/lib version {version}"));
    wt.git(&["push", "-q", "origin", "HEAD:refs/heads/main"]);
}

/// Lists every directory under `dir` (no file is stat'ed: the types come with the listing).
fn list_all(dir: &Path) -> usize {
    let mut files = 0;
    for e in std::fs::read_dir(dir).expect("list") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_dir() {
            files += list_all(&e.path());
        } else {
            files += 1;
        }
    }
    files
}

/// A mount over a Mega double whose `third-party/lib` (version 1) has every directory listed.
fn lib_listed() -> (Fixture, MegaServer, Daemon) {
    let fx = fixture::standard();
    push_lib(&fx, 1);
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    assert_eq!(
        list_all(&d.workspace.join("third-party/lib")),
        LIB_DIRS * LIB_PER_DIR
    );
    (fx, server, d)
}

#[test]
fn a_stat_and_a_read_of_every_file_of_a_third_party_repository_cost_one_pack() {
    // The fixture holds the served repository: kept to the end.
    let (_fx, server, d) = lib_listed();
    let n = LIB_DIRS * LIB_PER_DIR;
    server.reset_counts();
    for i in 0..n {
        let meta = std::fs::metadata(d.workspace.join(lib_path(i))).expect("stat");
        assert_eq!(meta.len(), lib_content(i, 1).len() as u64, "{i}");
    }
    let c = server.counts();
    assert_eq!(c.upload_pack, 1, "{c:?}");
    assert_eq!(c.info_refs, 1, "{c:?}");
    // Only the files wanted before the pack was worth it were asked for one by one.
    assert!(
        c.blob_head.len() + c.blob_get.len() < n / 2,
        "{} single requests for {n} files: {c:?}",
        c.blob_head.len() + c.blob_get.len()
    );
    // The pack brought every blob: a read of every file asks nothing more.
    server.reset_counts();
    for i in 0..n {
        let got = read_guarded(d.workspace.join(lib_path(i)), 30).expect("read");
        assert_eq!(got, lib_content(i, 1), "{i}");
    }
    assert_eq!(server.counts(), Default::default());
    assert!(
        d.log().contains("pack taken"),
        "the pack was not taken: {}",
        d.log()
    );
    // After a restart the blobs on disk are only checked: no pack, no request for any of them.
    let mut d = d;
    d.restart().expect("restart");
    server.reset_counts();
    for i in 0..n {
        let got = read_guarded(d.workspace.join(lib_path(i)), 30).expect("read after restart");
        assert_eq!(got, lib_content(i, 1), "{i}");
    }
    let c = server.counts();
    assert_eq!(c.upload_pack, 0, "{c:?}");
    assert!(c.blob_get.is_empty() && c.blob_head.is_empty(), "{c:?}");
}

#[test]
fn a_pack_of_a_repository_that_moved_on_since_the_mount_serves_only_the_mounted_bytes() {
    let (fx, server, d) = lib_listed();
    let n = LIB_DIRS * LIB_PER_DIR;
    // Every file changes on the server: its pack now holds none of the mounted blobs.
    push_lib(&fx, 2);
    server.reset_counts();
    for i in 0..n {
        let got = read_guarded(d.workspace.join(lib_path(i)), 30).expect("read");
        assert_eq!(got, lib_content(i, 1), "{i}");
    }
    let c = server.counts();
    assert_eq!(c.upload_pack, 1, "{c:?}");
    // Each mounted blob came by itself, once.
    let gets = per_oid(&c.blob_get);
    assert_eq!(gets.len(), n, "{c:?}");
    assert!(gets.values().all(|k| *k == 1), "{c:?}");
    // Nothing of the new version is served, nor stored in place of the mounted bytes.
    for i in 0..n {
        assert_eq!(
            std::fs::read(d.workspace.join(lib_path(i))).expect("read again"),
            lib_content(i, 1)
        );
    }
}
