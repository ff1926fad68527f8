//! Filesystem: workloads (see tests/filesystem.rs). A script of edits giving the same view as
//! kernel overlayfs, eight threads of churn, and what build tools do (exclusive creates,
//! rename flags, mmap, locks, chown, utimens, links, fifos).

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::api::mount;
use crate::support::daemon::{run_with_timeout, Daemon};
use crate::support::fixture;
use crate::support::host::{drop_caches, fd_count, KernelOverlay};
use crate::support::tree::{archive, assert_same_tree, walk};

/// The same operations, whatever the filesystem; `mv` falls back to copy+delete on EXDEV.
fn script(root: &Path) {
    let w = |p: &str, data: &[u8]| {
        std::fs::write(root.join(p), data).unwrap_or_else(|e| panic!("write {p}: {e}"))
    };
    w("new.txt", b"new\n");
    w("b/c.txt", b"rewritten lower file\n");
    std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("b/d/e/deep.txt"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"appended\n"))
        .expect("append");
    std::fs::set_permissions(root.join("new.txt"), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    std::fs::set_permissions(root.join("b/c.txt"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod lower");
    std::fs::remove_file(root.join("up")).expect("rm lower symlink");
    std::os::unix::fs::symlink("b/c.txt", root.join("up")).expect("symlink over a whiteout");
    std::fs::create_dir_all(root.join("n1/n2")).expect("mkdir -p");
    w("n1/n2/f", b"nested\n");
    std::fs::hard_link(root.join("n1/n2/f"), root.join("n1/hard")).expect("link");
    move_path(&root.join("new.txt"), &root.join("n1/moved.txt"));
    move_path(&root.join("b/d"), &root.join("d-moved"));
    std::fs::remove_dir_all(root.join("b")).expect("rm -r a lower dir");
    std::fs::create_dir(root.join("b")).expect("mkdir where a lower dir was");
    w("b/only.txt", b"only\n");
    std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("n1/n2/f"))
        .and_then(|f| f.set_len(3))
        .expect("truncate");
}

fn move_path(from: &Path, to: &Path) {
    match std::fs::rename(from, to) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let out = run_with_timeout(Command::new("cp").arg("-a").arg(from).arg(to), 60);
            assert!(out.status.success());
            let rm = if from.is_dir() {
                std::fs::remove_dir_all(from)
            } else {
                std::fs::remove_file(from)
            };
            rm.expect("remove after copy");
        }
        Err(e) => panic!("rename {} -> {}: {e}", from.display(), to.display()),
    }
}

#[test]
fn same_operations_give_the_same_view_as_kernel_overlayfs() {
    let fx = fixture::standard();
    let extracted = archive(&fx, &fx.commit);
    let kernel = KernelOverlay::new(&extracted.path().join("a"));
    script(&kernel.merged);

    let d = Daemon::local(&fx);
    mount(&d, "a");
    script(&d.workspace.join("a"));
    assert_same_tree(&d.workspace.join("a"), &kernel.merged);
    assert!(walk(&d.workspace.join("a")).len() > 5);
    // Hard links share an inode, as on the kernel's overlay.
    let m = |p: &str| std::fs::metadata(d.workspace.join("a").join(p)).expect("stat");
    assert_eq!(m("n1/hard").ino(), m("n1/n2/f").ino());
    assert_eq!(m("n1/hard").nlink(), 2);
}

#[test]
fn eight_threads_of_churn_keep_every_byte_and_leak_no_fds() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "a");
    let root = d.workspace.join("a");
    std::fs::create_dir(root.join("shared")).expect("shared dir");
    let pid = d.pid().expect("pid");
    let fds_before = fd_count(pid);
    let secs: u64 = std::env::var("SCORPIO_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || {
                let own = root.join(format!("t{t}"));
                std::fs::create_dir(&own).expect("own dir");
                let mut kept = Vec::new();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let dir = if i % 2 == 0 {
                        root.join("shared")
                    } else {
                        own.clone()
                    };
                    let name = dir.join(format!("f-{t}-{i}"));
                    let body = format!("thread {t} file {i}\n").repeat((i % 7 + 1) as usize);
                    std::fs::write(&name, &body)
                        .unwrap_or_else(|e| panic!("write {}: {e}", name.display()));
                    let renamed = dir.join(format!("r-{t}-{i}"));
                    std::fs::rename(&name, &renamed).unwrap_or_else(|e| panic!("rename: {e}"));
                    if i % 3 == 0 {
                        std::fs::remove_file(&renamed).unwrap_or_else(|e| panic!("unlink: {e}"));
                    } else {
                        kept.push((renamed, body));
                    }
                    // Touch the lower layer too.
                    let _ = std::fs::read(root.join("b/c.txt")).expect("read lower");
                    i += 1;
                }
                kept
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        for (path, body) in w.join().expect("worker") {
            let got = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(got, body.as_bytes(), "{}", path.display());
            total += 1;
        }
    }
    assert!(total > 100, "too little work done: {total}");
    // Drop the kernel's caches so it forgets inodes, then count the daemon's fds.
    drop_caches();
    std::thread::sleep(Duration::from_millis(500));
    let fds_after = fd_count(pid);
    assert!(
        fds_after <= fds_before + 4,
        "fd leak: {fds_before} before, {fds_after} after"
    );
    assert!(
        !d.log().contains("Too many open files"),
        "EMFILE in the log"
    );
}

#[test]
fn build_tool_operations_work() {
    use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, RenameFlags, CWD};
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    let root = d.workspace.clone();
    // The whole repository is writable now, root included.
    std::fs::write(root.join("top.txt"), b"top").expect("write at the root");

    // O_EXCL on an existing lower file, O_TRUNC of a lower file.
    let e = rustix::fs::open(
        root.join("README.md"),
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY,
        Mode::from_raw_mode(0o644),
    )
    .expect_err("O_EXCL on an existing file");
    assert_eq!(e, rustix::io::Errno::EXIST);
    drop(
        rustix::fs::open(
            root.join("README.md"),
            OFlags::WRONLY | OFlags::TRUNC,
            Mode::empty(),
        )
        .expect("O_TRUNC"),
    );
    assert_eq!(
        std::fs::metadata(root.join("README.md"))
            .expect("stat")
            .len(),
        0
    );

    // RENAME_NOREPLACE and RENAME_EXCHANGE across layers.
    let e = rustix::fs::renameat_with(
        CWD,
        root.join("top.txt"),
        CWD,
        root.join("src/lib.rs"),
        RenameFlags::NOREPLACE,
    )
    .expect_err("NOREPLACE onto a lower file");
    assert_eq!(e, rustix::io::Errno::EXIST);
    rustix::fs::renameat_with(
        CWD,
        root.join("top.txt"),
        CWD,
        root.join("src/lib.rs"),
        RenameFlags::EXCHANGE,
    )
    .expect("EXCHANGE");
    assert_eq!(
        std::fs::read(root.join("src/lib.rs")).expect("read"),
        b"top"
    );
    assert_eq!(
        std::fs::read(root.join("top.txt")).expect("read"),
        fixture::LIB_RS_CONTENT
    );

    // fallocate, fsync, shared mmap writes.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(root.join("mapped"))
        .expect("create");
    rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, 8192).expect("fallocate");
    assert_eq!(f.metadata().expect("stat").len(), 8192);
    // SAFETY: a fresh shared mapping of a file we own, unmapped below.
    unsafe {
        let p = rustix::mm::mmap(
            std::ptr::null_mut(),
            8192,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::SHARED,
            &f,
            0,
        )
        .expect("mmap shared");
        std::ptr::copy_nonoverlapping(b"via mmap".as_ptr(), p.cast::<u8>(), 8);
        rustix::mm::msync(p, 8192, rustix::mm::MsyncFlags::SYNC).expect("msync");
        rustix::mm::munmap(p, 8192).expect("munmap");
    }
    f.sync_all().expect("fsync");
    drop(f);
    assert_eq!(
        &std::fs::read(root.join("mapped")).expect("read")[..8],
        b"via mmap"
    );

    // flock and POSIX record locks.
    let a = std::fs::File::open(root.join("top.txt")).expect("open");
    let b = std::fs::File::open(root.join("top.txt")).expect("open again");
    rustix::fs::flock(&a, FlockOperation::NonBlockingLockExclusive).expect("flock");
    assert_eq!(
        rustix::fs::flock(&b, FlockOperation::NonBlockingLockExclusive).expect_err("second flock"),
        rustix::io::Errno::WOULDBLOCK
    );
    rustix::fs::flock(&a, FlockOperation::Unlock).expect("unlock");
    rustix::fs::flock(&b, FlockOperation::NonBlockingLockShared).expect("flock after unlock");
    let rw = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(root.join("top.txt"))
        .expect("open rw");
    rustix::fs::fcntl_lock(&rw, FlockOperation::NonBlockingLockExclusive).expect("POSIX lock");

    // chown, utimens, O_APPEND on a copied-up file, hard link across directories, mknod fifo.
    rustix::fs::chownat(
        CWD,
        root.join("top.txt"),
        Some(rustix::fs::Uid::from_raw(65534)),
        Some(rustix::fs::Gid::from_raw(65534)),
        AtFlags::empty(),
    )
    .expect("chown");
    let st = std::fs::metadata(root.join("top.txt")).expect("stat");
    assert_eq!((st.uid(), st.gid()), (65534, 65534));
    let t = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(root.join("top.txt"))
        .expect("open")
        .set_modified(t)
        .expect("utimens");
    assert_eq!(
        std::fs::metadata(root.join("top.txt"))
            .expect("stat")
            .mtime(),
        1_000_000_000
    );
    std::fs::hard_link(root.join("top.txt"), root.join("a/b/linked")).expect("link across dirs");
    assert_eq!(
        std::fs::metadata(root.join("a/b/linked"))
            .expect("stat")
            .ino(),
        std::fs::metadata(root.join("top.txt")).expect("stat").ino()
    );
    rustix::fs::mknodat(
        CWD,
        root.join("fifo"),
        rustix::fs::FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
    assert!(std::fs::symlink_metadata(root.join("fifo"))
        .expect("stat fifo")
        .file_type()
        .is_fifo());
    let statfs = rustix::fs::statvfs(&root).expect("statfs");
    assert!(statfs.f_blocks > 0);
}
