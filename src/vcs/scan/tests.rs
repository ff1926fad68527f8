//! Unit tests of reading entries: torn reads, git's view of each kind, large files.

use super::*;
use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::remote::{EntryKind, ObjectKind, Oid};

fn read(dir: &Path, name: &str, want: Want) -> Entry {
    let d = std::fs::File::open(dir).expect("open dir");
    match read_entry(d.as_fd(), OsStr::new(name), &want) {
        Ok(e) => e,
        Err(_) => panic!("read_entry failed"),
    }
}

/// A file rewritten in place (one `pwrite` of a whole version over the other) while it is
/// read: every read returns one version or the other, never the head of one with the tail
/// of the other, unless one write was in progress for the whole read. No reader can tell a
/// write stalled halfway (its thread preempted, as on a loaded 2-CPU machine) from a finished
/// one: the file's times change when a write starts, and two reads agree while it stands still.
#[test]
fn a_file_rewritten_in_place_is_never_read_torn() {
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    const LEN: usize = 1 << 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let versions = [vec![b'a'; LEN], vec![b'b'; LEN]];
    std::fs::write(dir.path().join("f"), &versions[0]).expect("write");
    let stop = Arc::new(AtomicBool::new(false));
    // When each write started and ended.
    let writes: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
    let rewriter = {
        let (stop, path, versions) = (stop.clone(), dir.path().join("f"), versions.clone());
        let writes = writes.clone();
        std::thread::spawn(move || {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .expect("open");
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let started = Instant::now();
                f.write_all_at(&versions[n % 2], 0).expect("rewrite");
                let ended = Instant::now();
                writes.lock().expect("writes").push((started, ended));
                if n % 4 == 0 {
                    // Room for a read to get through whole.
                    std::thread::sleep(Duration::from_micros(300));
                }
            }
        })
    };
    let d = std::fs::File::open(dir.path()).expect("open dir");
    let ids = versions
        .each_ref()
        .map(|v| Oid::hash_object(ObjectKind::Blob, v));
    let (mut whole, mut unstable) = (0, 0);
    let mut torn = Vec::new();
    for _ in 0..300 {
        // Hashed as read: the reader is slower than the rewriter, which laps it.
        let started = Instant::now();
        match read_entry(d.as_fd(), OsStr::new("f"), &Want::Ids) {
            Ok(Entry::Blob { oid, .. }) => {
                if !ids.contains(&oid) {
                    torn.push((oid, started, Instant::now()));
                }
                whole += 1;
            }
            Err(Fault::Unstable) => unstable += 1,
            _ => panic!("the file is a blob"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    rewriter.join().expect("rewriter");
    let writes = writes.lock().expect("writes");
    for (oid, started, ended) in torn {
        assert!(
            writes.iter().any(|(s, e)| *s <= started && *e >= ended),
            "a torn read ({oid:?}) with no write in progress all through it"
        );
    }
    assert!(whole > 0, "no read got through ({unstable} unstable)");
}

#[test]
fn entries_read_as_git_records_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("f"), b"hello\n").expect("write");
    let Entry::Blob {
        kind,
        oid,
        content: Some(Content::Bytes(bytes)),
    } = read(dir.path(), "f", Want::Small)
    else {
        panic!("a file is a blob");
    };
    assert_eq!(
        (kind, oid.to_hex().as_str(), &bytes[..]),
        (
            EntryKind::File,
            "ce013625030ba8dba906f756967f9e9ca394464a",
            &b"hello\n"[..]
        )
    );
    let Entry::Blob {
        oid: hashed,
        content,
        ..
    } = read(dir.path(), "f", Want::Ids)
    else {
        panic!("a file is a blob");
    };
    assert!(hashed == oid && content.is_none());
    std::fs::set_permissions(dir.path().join("f"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    assert!(matches!(
        read(dir.path(), "f", Want::Ids),
        Entry::Blob {
            kind: EntryKind::Executable,
            ..
        }
    ));
    std::os::unix::fs::symlink("target", dir.path().join("l")).expect("symlink");
    let Entry::Blob { kind, oid, .. } = read(dir.path(), "l", Want::Ids) else {
        panic!("a symlink is a blob");
    };
    assert_eq!(kind, EntryKind::Symlink);
    assert_eq!(oid, Oid::hash_object(ObjectKind::Blob, b"target"));
    assert!(matches!(
        read(dir.path(), "gone", Want::Small),
        Entry::Absent
    ));
    std::fs::create_dir(dir.path().join("d")).expect("mkdir");
    assert!(matches!(
        read(dir.path(), "d", Want::Small),
        Entry::Dir { opaque: false, .. }
    ));
}

/// A file larger than [`IN_MEMORY_MAX`] is never read into memory: a sink that wants small
/// contents gets only its id; one that wants every content gets a loose object being made
/// in the directory it named, which leaves nothing there when dropped (the commit puts it in
/// place: see the commit's tests).
#[test]
fn a_large_file_is_only_hashed_or_written_to_an_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = tempfile::tempdir().expect("objects dir");
    let len = usize::try_from(IN_MEMORY_MAX).expect("usize") + 12345;
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join("big"), &data).expect("write");
    let id = Oid::hash_object(ObjectKind::Blob, &data);
    let Entry::Blob {
        oid,
        content: Some(Content::TooLarge(n)),
        ..
    } = read(dir.path(), "big", Want::Small)
    else {
        panic!("a large file is only hashed");
    };
    assert_eq!((oid, n), (id, len as u64));
    let Entry::Blob {
        oid,
        content: Some(Content::Loose(blob)),
        ..
    } = read(dir.path(), "big", Want::All(objects.path().to_path_buf()))
    else {
        panic!("a large file is written to an object");
    };
    assert_eq!(oid, id);
    let names = || std::fs::read_dir(objects.path()).expect("list").count();
    assert_eq!(names(), 1, "the object is being made there");
    drop(blob);
    assert_eq!(names(), 0, "a dropped object leaves nothing");
}
