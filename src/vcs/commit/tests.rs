//! Unit tests of committing: the staging repository after a crash, and a large file committed
//! through a loose object and taken back.

use super::*;
use std::path::Path;

#[test]
fn a_crash_during_creation_or_a_commit_does_not_block_the_staging_repository() {
    let store = tempfile::tempdir().expect("tempdir");
    // Killed while creating it: a directory with a lock and no repository.
    let half = store.path().join("git");
    std::fs::create_dir_all(&half).expect("mkdir");
    std::fs::write(half.join("config.lock"), b"").expect("lock");
    let r = open_staging(store.path()).expect("opens over a half-made repository");
    drop(r);
    let aside: Vec<_> = std::fs::read_dir(store.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("git.broken-"))
        .collect();
    assert_eq!(aside.len(), 1, "the half-made one is kept aside");
    // Killed during a commit: lock files beside a working repository.
    std::fs::create_dir_all(half.join("refs/heads")).expect("mkdir refs");
    for lock in ["config.lock", "refs/heads/main.lock"] {
        std::fs::write(half.join(lock), b"").expect("lock");
    }
    let r = open_staging(store.path()).expect("opens with stale locks");
    assert!(!half.join("config.lock").exists() && !half.join("refs/heads/main.lock").exists());
    r.config()
        .and_then(|mut c| c.set_str("scorpio.test", "1"))
        .expect("the config can be written again");
}

/// A file larger than what is read into memory is committed through a loose object written
/// as the scan reads it: the blob is exactly the file, under the id the scan computed, and
/// a commit that fails takes it back with nothing left in the repository.
#[test]
fn a_large_file_is_committed_through_a_loose_object_and_taken_back() {
    use crate::vcs::scan::{read_entry, Entry, IN_MEMORY_MAX};
    use std::os::fd::AsFd;
    let store = tempfile::tempdir().expect("store");
    let upper = tempfile::tempdir().expect("upper");
    let repo = open_staging(store.path()).expect("staging");
    let len = usize::try_from(IN_MEMORY_MAX).expect("usize") * 2 + 7;
    let data: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
    std::fs::write(upper.path().join("big"), &data).expect("write");
    let listing = |dir: &Path| {
        let mut all: Vec<_> = walkdir::WalkDir::new(dir)
            .into_iter()
            .map(|e| e.expect("walk").path().to_path_buf())
            .collect();
        all.sort();
        all
    };
    let before = listing(repo.path());
    let mut w = Writer::new(&repo).expect("writer");
    let d = std::fs::File::open(upper.path()).expect("open upper");
    let want = crate::vcs::scan::Sink::wants(&BlobSink { writer: &mut w });
    let Ok(Entry::Blob {
        oid,
        content: Some(Content::Loose(blob)),
        ..
    }) = read_entry(d.as_fd(), std::ffi::OsStr::new("big"), &want)
    else {
        panic!("a large file is read into an object");
    };
    w.place_loose(*blob, git_oid(oid).expect("oid"))
        .expect("placed");
    let found = repo
        .find_blob(git_oid(oid).expect("oid"))
        .expect("the blob");
    assert!(found.content() == &data[..], "the blob is not the file");
    assert_eq!(
        found.id(),
        git2::Oid::hash_object(git2::ObjectType::Blob, &data).expect("id")
    );
    drop(found);
    assert_eq!(w.roll_back(), 1);
    assert_eq!(listing(repo.path()), before, "the failed commit left files");
}
