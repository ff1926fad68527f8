//! Hostile cases: store (see tests/hostile.rs).
//!
//! A careless user (or a failing disk) damages the object cache under `store_path/objects`:
//! flipped bytes, truncated or swapped object files, the whole directory removed, a full disk.
//! Whatever happened, the mount serves the bytes of the commit or an error, never other bytes,
//! and recovers without a restart once the damage is gone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::daemon::{read_guarded, Daemon, DaemonOpts};
use crate::support::fixture::{self, Fixture};
use crate::support::host::{drop_caches, Tmpfs};
use crate::support::mega_server::MegaServer;

/// Size of each big file of [`big_fixture`].
const BIG: usize = 2 << 20;
/// Number of big files of [`big_fixture`].
const BIGS: usize = 6;
/// Number of small files of [`big_fixture`], [`PER_DIR`] to a directory.
const SMALLS: usize = 2000;
/// Small files per directory: a listing big enough to need new pages of the database's log.
const PER_DIR: usize = 1000;

/// Path of the `i`-th small file of [`big_fixture`].
fn small_path(i: usize) -> String {
    fixture::generated_path(i, SMALLS, PER_DIR)
}

/// Path of the `i`-th big file of [`big_fixture`].
fn big_path(i: usize) -> String {
    format!("big{i}/blob.bin")
}

/// Content of the `i`-th big file of [`big_fixture`].
fn big_content(i: usize) -> Vec<u8> {
    fixture::xorshift_bytes(0x5EED_0000 + i as u64, BIG)
}

/// A repository of [`SMALLS`] small files and [`BIGS`] pseudo-random files of [`BIG`] bytes,
/// each in its own directory (so each read of one lists a directory not seen before).
fn big_fixture() -> Fixture {
    let fx = fixture::generated(SMALLS, PER_DIR);
    for i in 0..BIGS {
        fixture::add_commit(&fx, &big_path(i), &big_content(i));
    }
    fx
}

fn local_opts(fx: &Fixture, store: &Path) -> DaemonOpts {
    DaemonOpts {
        store: Some(store.to_path_buf()),
        ..DaemonOpts::new(fx.repo_path.display().to_string())
    }
}

/// The warnings and errors of the daemon's log.
fn problems(d: &Daemon) -> String {
    d.log()
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads `rel` in the mount, which must succeed with `want`.
fn assert_reads(d: &Daemon, rel: &str, want: &[u8]) {
    let got = read_guarded(d.workspace.join(rel), 60)
        .unwrap_or_else(|e| panic!("read {rel}: {e}\n{}", problems(d)));
    assert!(
        got == want,
        "{rel}: {} bytes read, {} expected; the content differs",
        got.len(),
        want.len()
    );
}

/// The object file of `oid` in the store.
fn object_file(store: &Path, oid: &str) -> PathBuf {
    store.join("objects").join(&oid[..2]).join(&oid[2..])
}

/// The blob id of `path` in the fixture's current commit.
fn oid_of(fx: &Fixture, path: &str) -> String {
    fixture::entry_oid(fx, &fixture::head(fx), path).unwrap_or_else(|| panic!("{path} missing"))
}

/// The git blob id of `bytes`.
fn blob_id(bytes: &[u8]) -> String {
    git2::Oid::hash_object(git2::ObjectType::Blob, bytes)
        .expect("hash")
        .to_string()
}

/// Flips one byte in the middle of the object file of `oid`, in place.
fn flip_byte(store: &Path, oid: &str) {
    let p = object_file(store, oid);
    let mut bytes = std::fs::read(&p).expect("read object file");
    assert!(!bytes.is_empty(), "object {oid} is empty");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&p, bytes).expect("write damaged object");
}

/// The object file of `oid` holds exactly `want` (it was repaired).
fn assert_object_is(store: &Path, oid: &str, want: &[u8]) {
    let got = std::fs::read(object_file(store, oid))
        .unwrap_or_else(|e| panic!("object {oid} is not on disk: {e}"));
    assert!(got == want, "object {oid} on disk is still damaged");
    assert_eq!(blob_id(&got), oid);
}

#[test]
fn flipped_byte_in_a_cached_object_is_refetched_after_restart() {
    let fx = fixture::standard();
    let store = tempfile::tempdir().expect("store dir");
    let mut d = Daemon::start_or_panic(local_opts(&fx, store.path()));
    assert_reads(&d, fixture::DEEP_FILE, fixture::DEEP_FILE_CONTENT);
    let link = d.workspace.join(fixture::SYMLINK_REL);
    assert_eq!(
        std::fs::read_link(&link).expect("readlink").as_os_str(),
        fixture::SYMLINK_REL_TARGET
    );
    assert!(d.stop().success(), "{}", d.log());

    let file_oid = oid_of(&fx, fixture::DEEP_FILE);
    let link_oid = oid_of(&fx, fixture::SYMLINK_REL);
    flip_byte(store.path(), &file_oid);
    flip_byte(store.path(), &link_oid);
    d.restart().unwrap_or_else(|e| panic!("{e}"));

    assert_reads(&d, fixture::DEEP_FILE, fixture::DEEP_FILE_CONTENT);
    assert_eq!(
        std::fs::read_link(&link)
            .expect("readlink after the damage")
            .as_os_str(),
        fixture::SYMLINK_REL_TARGET,
        "a symlink target is read from the cache too"
    );
    let log = d.log();
    for oid in [&file_oid, &link_oid] {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains(oid.as_str())),
            "no warning names {oid}:\n{log}"
        );
        let want = fixture::object_bytes(&fx, oid);
        assert_object_is(store.path(), oid, &want);
    }
}

#[test]
fn truncated_object_is_refetched_not_served_short() {
    let fx = big_fixture();
    let store = tempfile::tempdir().expect("store dir");
    let mut d = Daemon::start_or_panic(local_opts(&fx, store.path()));
    assert_reads(&d, &big_path(0), &big_content(0));
    assert!(d.stop().success(), "{}", d.log());

    let oid = oid_of(&fx, &big_path(0));
    let p = object_file(store.path(), &oid);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .expect("open object");
    f.set_len(BIG as u64 / 2).expect("truncate object");
    drop(f);
    d.restart().unwrap_or_else(|e| panic!("{e}"));

    assert_reads(&d, &big_path(0), &big_content(0));
    assert_object_is(store.path(), &oid, &big_content(0));
    assert!(d.log().contains(&oid), "the log does not name {oid}");
}

#[test]
fn swapped_objects_each_read_their_own_content() {
    let fx = fixture::standard();
    let store = tempfile::tempdir().expect("store dir");
    let mut d = Daemon::start_or_panic(local_opts(&fx, store.path()));
    assert_reads(&d, fixture::README, fixture::README_CONTENT);
    assert_reads(&d, fixture::LIB_RS, fixture::LIB_RS_CONTENT);
    assert!(d.stop().success(), "{}", d.log());

    let (a, b) = (
        object_file(store.path(), &oid_of(&fx, fixture::README)),
        object_file(store.path(), &oid_of(&fx, fixture::LIB_RS)),
    );
    let parked = store.path().join("parked");
    std::fs::rename(&a, &parked).expect("park a");
    std::fs::rename(&b, &a).expect("b -> a");
    std::fs::rename(&parked, &b).expect("a -> b");
    d.restart().unwrap_or_else(|e| panic!("{e}"));

    assert_reads(&d, fixture::README, fixture::README_CONTENT);
    assert_reads(&d, fixture::LIB_RS, fixture::LIB_RS_CONTENT);
    assert_object_is(
        store.path(),
        &oid_of(&fx, fixture::README),
        fixture::README_CONTENT,
    );
}

#[test]
fn object_damaged_under_a_running_daemon_is_checked_at_first_use() {
    let fx = big_fixture();
    let store = tempfile::tempdir().expect("store dir");
    let mut d = Daemon::start_or_panic(local_opts(&fx, store.path()));
    assert_reads(&d, &big_path(1), &big_content(1));
    assert!(d.stop().success(), "{}", d.log());
    d.restart().unwrap_or_else(|e| panic!("{e}"));

    // Cached by the previous run, not yet used by this one.
    let oid = oid_of(&fx, &big_path(1));
    flip_byte(store.path(), &oid);
    assert_reads(&d, &big_path(1), &big_content(1));
    assert_object_is(store.path(), &oid, &big_content(1));
}

#[test]
fn removed_objects_directory_is_recreated_while_running() {
    let fx = big_fixture();
    let store = tempfile::tempdir().expect("store dir");
    let d = Daemon::start_or_panic(local_opts(&fx, store.path()));
    assert_reads(&d, &big_path(0), &big_content(0));
    let objects = store.path().join("objects");
    std::fs::remove_dir_all(&objects).expect("rm -rf objects");

    // Never cached: fetched into a directory that has to be made again.
    assert_reads(&d, &big_path(1), &big_content(1));
    assert!(
        objects.join("tmp").is_dir(),
        "objects/tmp was not re-created"
    );
    assert_object_is(store.path(), &oid_of(&fx, &big_path(1)), &big_content(1));
    // Cached before the removal: the index forgets it and it comes back.
    drop_caches();
    assert_reads(&d, &big_path(0), &big_content(0));
    // Small files of directories never listed, and a fan-out directory lost on its own.
    let small = small_path(5);
    let small_oid = oid_of(&fx, &small);
    let _ = std::fs::remove_dir_all(objects.join(&small_oid[..2]));
    assert_reads(&d, &small, &fixture::generated_content(5));
    std::fs::remove_dir_all(objects.join("tmp")).expect("rm -rf objects/tmp");
    assert_reads(&d, &big_path(2), &big_content(2));
}

#[test]
fn damaged_object_with_the_remote_gone_is_eio_not_wrong_bytes() {
    let fx = fixture::standard();
    let mut server = MegaServer::start(&fx.repo_path);
    let store = tempfile::tempdir().expect("store dir");
    let mut d = Daemon::start_or_panic(DaemonOpts {
        store: Some(store.path().to_path_buf()),
        ..DaemonOpts::new(server.url())
    });
    assert_reads(&d, fixture::DEEP_FILE, fixture::DEEP_FILE_CONTENT);
    assert!(d.stop().success(), "{}", d.log());
    server.stop();
    d.restart().unwrap_or_else(|e| panic!("{e}"));

    let oid = oid_of(&fx, fixture::DEEP_FILE);
    flip_byte(store.path(), &oid);
    let r = read_guarded(d.workspace.join(fixture::DEEP_FILE), 60);
    match r {
        Ok(bytes) => panic!(
            "read {} bytes ({}) from a damaged object with no remote",
            bytes.len(),
            if bytes == fixture::DEEP_FILE_CONTENT {
                "right, yet nothing could give them"
            } else {
                "wrong"
            }
        ),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}"),
    }
    assert!(d.log().contains(&oid), "the log does not name {oid}");

    // Once the remote is back the same read is right, without a restart.
    server.restart();
    assert_reads(&d, fixture::DEEP_FILE, fixture::DEEP_FILE_CONTENT);
}

/// Writes `path` until the filesystem is full (ENOSPC, any other error fails the test);
/// returns the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0xA5u8; 64 << 10];
    let mut n = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("fill {}: {e}", path.display()),
        }
    }
    let _ = f.sync_all();
    n
}

/// Bytes allocated to the files under `dir` (what `du` counts, space kept past their ends
/// included).
fn allocated_under(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.blocks() * 512)
        .sum()
}

#[test]
fn full_disk_is_a_clean_error_and_reads_work_again_once_space_is_freed() {
    let fx = big_fixture();
    // Declared first, dropped last: the daemon stops before its store is unmounted.
    let tmpfs = Tmpfs::new("20m");
    let d = Daemon::start_or_panic(local_opts(&fx, tmpfs.path()));
    assert_reads(&d, &big_path(0), &big_content(0));

    // A careless user fills the disk through a writable path of the same store: a clean ENOSPC.
    crate::support::api::mount(&d, "d0000");
    let filler = d.workspace.join("d0000/filler");
    fill(&filler);
    // Files of directories never listed, whose objects cannot be stored: an error that says why.
    for i in 1..3 {
        match read_guarded(d.workspace.join(big_path(i)), 60) {
            Ok(_) => panic!("read {} with the disk full", big_path(i)),
            Err(e) => assert_eq!(
                e.raw_os_error(),
                Some(libc::ENOSPC),
                "reading an uncached file on a full disk: {e}\n{}",
                problems(&d)
            ),
        }
    }
    // Listing needs no room for objects; it grows the database's log on a full disk.
    let dir = small_path(PER_DIR);
    let dir = dir.split('/').next().expect("a directory");
    let names = std::fs::read_dir(d.workspace.join(dir))
        .and_then(|r| r.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("list {dir} with the disk full: {e}\n{}", problems(&d)));
    assert_eq!(names.len(), PER_DIR);
    let tmp = tmpfs.path().join("objects/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "failed writes left temp files: {left:?}");
    // Let the database's periodic flush (every 200 ms) meet the full disk; without a reserve of
    // its own its log breaks here for good.
    std::thread::sleep(Duration::from_secs(1));

    std::fs::remove_file(&filler).expect("remove the filler through the mount");
    // The space comes back once the kernel has released the file (asynchronously).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tmpfs.free() < 8 << 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the space of the removed filler never came back: {} bytes free",
            tmpfs.free()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // No restart: the files that failed, and directories never listed before.
    for i in 1..4 {
        assert_reads(&d, &big_path(i), &big_content(i));
    }
    let small = small_path(PER_DIR + 6);
    assert_reads(&d, &small, &fixture::generated_content(PER_DIR + 6));
    // Everything in use belongs to a file of the store: no deleted-but-open file holds space.
    let (used, files) = (tmpfs.used(), allocated_under(tmpfs.path()));
    assert!(
        used <= files + (1 << 20),
        "{used} bytes in use, {files} in files: space leaked"
    );
    drop(d);
}
