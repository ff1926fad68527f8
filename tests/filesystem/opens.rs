//! Filesystem: opens (see tests/filesystem.rs). The daemon never sees an open, so every mix of
//! opens, a file held open after its name is gone, and `O_TRUNC` must still behave as POSIX says.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::api::mount;
use crate::support::daemon::Daemon;
use crate::support::fixture;
use crate::support::host::{as_nobody, fd_count, fd_count_after};

/// Opens are zero-message: the daemon sees reads and writes of an inode, never the opens, and
/// one page cache serves every open of the inode. Every mix of opens must show the same bytes.
#[test]
fn every_mix_of_opens_shows_the_same_bytes() {
    use std::io::{Read, Write};
    use std::os::unix::fs::FileExt;
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let mounted = mount(&d, "/");
    let upper = PathBuf::from(
        mounted["mount"]["upper"]
            .as_str()
            .expect("upper in the reply"),
    );
    let root = d.workspace.clone();
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    let open_w = |p: &Path| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .unwrap_or_else(|e| panic!("open {} for writing: {e}", p.display()))
    };

    // A lower file held open for reading, then opened for writing (copy-up): both opens work,
    // and the edit is what a new open reads.
    let lower = root.join(fixture::DEEP_FILE);
    let reader = std::fs::File::open(&lower).expect("open a lower file for reading");
    let writer = open_w(&lower);
    writer
        .write_all_at(b"HELLO", 0)
        .expect("write while a reader holds the file");
    drop(writer);
    let mut seen = Vec::new();
    (&reader)
        .read_to_end(&mut seen)
        .expect("the reader still reads");
    drop(reader);
    let mut want = fixture::DEEP_FILE_CONTENT.to_vec();
    want[..5].copy_from_slice(b"HELLO");
    assert_eq!(read(&lower), want);

    // A new file written while another open reads it: the reader sees every write.
    let p = root.join("written.bin");
    let mut w = std::fs::File::create(&p).expect("create");
    w.write_all(b"hello").expect("write");
    let r = std::fs::File::open(&p).expect("open for reading while written");
    let mut buf = [0u8; 11];
    r.read_exact_at(&mut buf[..5], 0).expect("read");
    assert_eq!(&buf[..5], b"hello");
    w.write_all(b" world").expect("write more");
    r.read_exact_at(&mut buf, 0).expect("read again");
    assert_eq!(&buf, b"hello world");
    drop((w, r));

    // O_APPEND, then a read that caches the pages, then an overwrite by another open: the
    // next read must not be served the pages cached before the overwrite.
    let mut a = std::fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .expect("open O_APPEND");
    a.write_all(b"!").expect("append");
    drop(a);
    assert_eq!(read(&p), b"hello world!");
    open_w(&p).write_all_at(b"J", 0).expect("overwrite");
    assert_eq!(read(&p), b"Jello world!");
    let mapped = std::fs::File::open(&p).expect("open for mmap");
    // SAFETY: a private read-only mapping of a file this test alone changes.
    let m = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            12,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::PRIVATE,
            &mapped,
            0,
        )
    }
    .expect("mmap");
    // SAFETY: the mapping is 12 bytes long and stays mapped until munmap below.
    let bytes = unsafe { std::slice::from_raw_parts(m as *const u8, 12) }.to_vec();
    // SAFETY: unmapping what was mapped above.
    unsafe { rustix::mm::munmap(m, 12) }.expect("munmap");
    assert_eq!(bytes, b"Jello world!");

    // O_TRUNC on reopen, and two writers at once.
    std::fs::write(&p, b"short").expect("rewrite with O_TRUNC");
    assert_eq!(read(&p), b"short");
    assert_eq!(std::fs::metadata(&p).expect("stat").len(), 5);
    let (w1, w2) = (open_w(&p), open_w(&p));
    w1.write_all_at(b"S", 0).expect("first writer");
    w2.write_all_at(b"P", 1).expect("second writer");
    drop((w1, w2));
    assert_eq!(read(&p), b"SPort");

    // A write by another user clears the set-user-ID bit.
    let s = root.join("setuid.bin");
    std::fs::write(&s, b"x").expect("create");
    std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o4777)).expect("chmod 4777");
    as_nobody("echo more >> \"$0\"", &s);
    let mode = std::fs::metadata(&s).expect("stat").permissions().mode();
    assert_eq!(mode & 0o7777, 0o777, "mode after the write: {mode:o}");
    assert_eq!(read(&s), b"xmore\n");

    // The bytes are in the upper layer, where commit and push take them from.
    assert_eq!(read(&upper.join("written.bin")), b"SPort");
    assert_eq!(read(&upper.join(fixture::DEEP_FILE)), want);
}

/// A file held open keeps working after its name is unlinked or renamed over, whichever layer
/// it came from, although the daemon never saw the open; the daemon lets the kept file go once
/// the kernel forgets the inode.
#[test]
fn open_files_outlive_their_names() {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::FileExt;
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    let root = d.workspace.clone();
    let pid = d.pid().expect("daemon pid");
    let rw = |p: &Path| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(p)
            .unwrap_or_else(|e| panic!("open {}: {e}", p.display()))
    };
    let fds_before = fd_count(pid);

    // An upper file, unlinked while open: it can still be written, read and stat'ed.
    let p = root.join("held.txt");
    std::fs::write(&p, b"abc").expect("create");
    let mut f = rw(&p);
    std::fs::remove_file(&p).expect("unlink while open");
    assert!(!p.exists());
    f.seek(std::io::SeekFrom::End(0)).expect("seek");
    f.write_all(b"def").expect("write after unlink");
    let mut got = String::new();
    f.rewind().expect("rewind");
    f.read_to_string(&mut got).expect("read after unlink");
    assert_eq!(got, "abcdef");
    assert_eq!(f.metadata().expect("fstat after unlink").len(), 6);
    f.set_len(2).expect("ftruncate after unlink");
    assert_eq!(f.metadata().expect("fstat").len(), 2);

    // Renamed over while open: the open file keeps its own bytes, the name shows the new ones.
    let (old, new) = (root.join("old.txt"), root.join("new.txt"));
    std::fs::write(&old, b"old bytes").expect("create old");
    std::fs::write(&new, b"new bytes").expect("create new");
    let g = rw(&old);
    std::fs::rename(&new, &old).expect("rename over an open file");
    let mut buf = [0u8; 9];
    g.read_exact_at(&mut buf, 0)
        .expect("read the replaced file");
    assert_eq!(&buf, b"old bytes");
    g.write_all_at(b"OLD", 0).expect("write the replaced file");
    assert_eq!(std::fs::read(&old).expect("read the name"), b"new bytes");

    // A lower file, unlinked while open for reading and for writing: the reader reads the
    // commit's bytes, the writer writes a copy of its own; the name stays gone.
    let lower = root.join(fixture::LIB_RS);
    let mut r = std::fs::File::open(&lower).expect("open lower for reading");
    let w = rw(&root.join(fixture::README));
    std::fs::remove_file(&lower).expect("unlink lower");
    std::fs::remove_file(root.join(fixture::README)).expect("unlink lower README");
    let mut got = Vec::new();
    r.read_to_end(&mut got).expect("read lower after unlink");
    assert_eq!(got, fixture::LIB_RS_CONTENT);
    w.write_all_at(b"#!", 0).expect("write lower after unlink");
    let mut head = [0u8; 4];
    w.read_exact_at(&mut head, 0).expect("read back");
    assert_eq!(&head, b"#!Fi");
    assert!(!lower.exists() && !root.join(fixture::README).exists());
    let listed: Vec<_> = std::fs::read_dir(&root)
        .expect("list the root")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(
        !listed.iter().any(|n| n == fixture::README),
        "README came back: {listed:?}"
    );

    // Once nothing holds them, the kernel forgets the inodes and the daemon its kept files.
    drop((f, g, r, w));
    let after = fd_count_after(pid, fds_before);
    assert!(
        after <= fds_before,
        "daemon fds: {fds_before} before, {after} after every file was closed"
    );
}

/// `open(O_TRUNC)` truncates without an OPEN request (it is sent as a SETATTR), for an upper
/// file and a lower one; opening a read-only part of the workspace for writing fails at
/// the first write at the latest and changes nothing.
#[test]
fn truncating_opens_and_read_only_parts() {
    use std::io::Write;
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "a");
    let a = d.workspace.join("a");
    let trunc = |p: &Path| {
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(p)
            .unwrap_or_else(|e| panic!("open {} with O_TRUNC: {e}", p.display()))
    };
    let upper = a.join("u.txt");
    std::fs::write(&upper, b"some bytes").expect("create");
    drop(trunc(&upper));
    assert_eq!(std::fs::read(&upper).expect("read"), b"");
    let lower = d.workspace.join(fixture::DEEP_FILE);
    drop(trunc(&lower));
    assert_eq!(std::fs::read(&lower).expect("read"), b"");
    assert_eq!(std::fs::metadata(&lower).expect("stat").len(), 0);

    // Outside the writable path: EROFS, at the open or at the write, and nothing changes.
    let ro = d.workspace.join(fixture::README);
    let e = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&ro)
        .expect_err("O_TRUNC outside the writable path");
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .open(&ro)
        .and_then(|mut f| f.write_all(b"x").and_then(|()| f.sync_all()));
    let e = appended.expect_err("append outside the writable path");
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    assert_eq!(std::fs::read(&ro).expect("read"), fixture::README_CONTENT);
}

/// A file known by two hard links, `d` and `e`: a rename over `d` takes the name `d` only, and
/// the file goes on being `e`, with its own bytes (what the daemon reads for the inode is found
/// through a name of the file, which must not be the one the rename gave away).
#[test]
fn a_rename_over_one_hard_link_leaves_the_other_its_bytes() {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "a");
    let a = d.workspace.join("a");
    std::fs::write(a.join("d"), b"linked\n").expect("write d");
    std::fs::hard_link(a.join("d"), a.join("e")).expect("link e");
    let ino = std::fs::metadata(a.join("e")).expect("stat e").ino();
    assert_eq!(std::fs::metadata(a.join("d")).expect("stat d").ino(), ino);
    std::fs::write(a.join("x"), b"other\n").expect("write x");
    std::fs::rename(a.join("x"), a.join("d")).expect("rename x over d");
    let e = std::fs::File::open(a.join("e")).expect("open e");
    assert_eq!(
        e.metadata().expect("fstat e").ino(),
        ino,
        "e is the same file"
    );
    // Its pages dropped, so that the read reaches the daemon.
    rustix::fs::fadvise(e.as_fd(), 0, None, rustix::fs::Advice::DontNeed).expect("fadvise");
    drop(e);
    assert_eq!(std::fs::read(a.join("e")).expect("read e"), b"linked\n");
    assert_eq!(std::fs::read(a.join("d")).expect("read d"), b"other\n");
    assert_eq!(std::fs::metadata(a.join("e")).expect("stat e").nlink(), 1);
}
