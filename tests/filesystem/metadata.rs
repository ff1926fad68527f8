//! Filesystem: metadata (see tests/filesystem.rs). Private overlay marks stay hidden, set-id bits
//! die on writes by other users, and a remounted path never reuses an inode number.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::support::api::{mount, unmount};
use crate::support::daemon::Daemon;
use crate::support::fixture;
use crate::support::host::as_nobody;

#[test]
fn private_marks_are_hidden_and_protected() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "a");
    let a = d.workspace.join("a");
    std::fs::remove_file(a.join("up")).expect("whiteout a lower entry");
    std::fs::create_dir(a.join("up")).expect("a directory over a whiteout is opaque");
    let up = a.join("up");
    let len = rustix::fs::listxattr(&up, &mut [0u8; 0][..]).expect("listxattr size");
    let mut buf = vec![0u8; len.max(1)];
    let n = rustix::fs::listxattr(&up, &mut buf[..]).expect("listxattr");
    assert!(
        !String::from_utf8_lossy(&buf[..n]).contains("scorpio"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let e =
        rustix::fs::getxattr(&up, "trusted.scorpio.opaque", &mut [0u8; 8][..]).expect_err("hidden");
    assert_eq!(e, rustix::io::Errno::NODATA);
    let e = rustix::fs::setxattr(
        a.join("b/c.txt"),
        "trusted.scorpio.whiteout",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .expect_err("setting a private mark through the mount must fail");
    assert_eq!(e, rustix::io::Errno::PERM);
    // Ordinary xattrs work, on lower entries too (copy-up keeps them afterwards).
    rustix::fs::setxattr(
        a.join("b/c.txt"),
        "user.note",
        b"hi",
        rustix::fs::XattrFlags::empty(),
    )
    .expect("user xattr");
    let mut v = [0u8; 8];
    let n =
        rustix::fs::getxattr(a.join("b/c.txt"), "user.note", &mut v[..]).expect("get user xattr");
    assert_eq!(&v[..n], b"hi");
    // A user's own 0/0 character device is an ordinary entry here.
    let dev = a.join("chardev");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &dev,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mknod c 0 0");
    assert!(std::fs::symlink_metadata(&dev).is_ok());
    assert!(std::fs::read_dir(&a)
        .expect("list")
        .any(|e| e.expect("entry").file_name() == "chardev"));
}

/// A path mounted again gets inode numbers the kernel has never seen: it may still hold the old
/// overlay's inodes (a file opened just as the unmount went through), and an old number
/// reused would make it take a new inode for the old one, or forget the new one.
#[test]
fn a_remount_never_reuses_inode_numbers() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let a = d.workspace.join("a");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..3 {
        mount(&d, "a");
        std::fs::write(a.join("kept.txt"), b"kept").expect("write");
        let inos = (
            std::fs::metadata(&a).expect("stat a").ino(),
            std::fs::metadata(a.join("kept.txt")).expect("stat").ino(),
        );
        assert!(seen.insert(inos.0), "root inode {} reused", inos.0);
        assert!(seen.insert(inos.1), "file inode {} reused", inos.1);
        unmount(&d, "a");
    }
}

/// The mode the kernel reports when asked for the mode alone (`statx` with `STATX_MODE`): what
/// it has cached, which is also what an exec trusts. A write invalidates the size and times,
/// not the mode, so this sees a stale set-user-ID bit unless the daemon invalidated it.
fn cached_mode(p: &Path) -> u32 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).expect("path");
    // SAFETY: statx writes into `buf`, a properly sized and aligned statx struct.
    let mut buf: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `buf` is valid for writes.
    let r = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_MODE, &mut buf) };
    assert_eq!(
        r,
        0,
        "statx {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
    u32::from(buf.stx_mode) & 0o7777
}

/// The kernel leaves killing set-user-ID and set-group-ID bits to the daemon (so it need not ask
/// for `security.capability` before every write): a write, a truncate or an fallocate by a user
/// without CAP_FSETID clears them, on disk and in what the kernel has cached; root's writes keep
/// them; set-group-ID without group execute stays, as on any Linux filesystem.
#[test]
fn writes_by_other_users_kill_set_id_bits() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "a");
    let a = d.workspace.join("a");
    let set = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        assert_eq!(cached_mode(p), mode, "mode before");
    };
    let p = a.join("tool");
    std::fs::write(&p, b"#!/bin/sh\n").expect("create");

    // Root (CAP_FSETID) keeps the bits.
    set(&p, 0o6777);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"# root\n"))
        .expect("append as root");
    assert_eq!(cached_mode(&p), 0o6777);

    for (what, script) in [
        ("write", "echo '# nobody' >> \"$0\""),
        ("truncate", ": > \"$0\""),
        ("fallocate", "fallocate -l 8192 \"$0\""),
    ] {
        set(&p, 0o6777);
        as_nobody(script, &p);
        assert_eq!(cached_mode(&p), 0o777, "{what}: the kernel's mode");
        let on_disk = std::fs::metadata(&p).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(on_disk, 0o777, "{what}: the daemon's mode");
    }
    // Set-group-ID without group execute is a mandatory-locking mark, not a privilege.
    set(&p, 0o2666);
    as_nobody("echo x >> \"$0\"", &p);
    assert_eq!(cached_mode(&p), 0o2666);
    // A lower file copied up by the write keeps nothing it should not either.
    let lower = a.join("b/c.txt");
    set(&lower, 0o4666);
    as_nobody("echo more >> \"$0\"", &lower);
    assert_eq!(cached_mode(&lower), 0o666);
    let mut want = fixture::DEEP_FILE_CONTENT.to_vec();
    want.extend_from_slice(b"more\n");
    assert_eq!(std::fs::read(&lower).expect("read"), want);
}
