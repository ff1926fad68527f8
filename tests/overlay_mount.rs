//! Writable overlays, end to end: the mount API, copy-up, whiteouts, persistence across
//! restarts and crashes, and the same operations on kernel overlayfs giving the same view.

mod support;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::daemon::{run_with_timeout, Daemon, DaemonOpts};
use support::fixture::{self, Fixture};
use support::http;
use support::tree::{archive, assert_same_tree, walk};

fn daemon(fx: &Fixture) -> Daemon {
    Daemon::start(DaemonOpts::new(fx.repo_path.display().to_string()))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn mount(d: &Daemon, path: &str) -> serde_json::Value {
    let (status, body) = http::post(
        &d.http_addr,
        "/api/fs/mount",
        &format!(r#"{{"path":"{path}"}}"#),
    );
    assert_eq!(status, 200, "mount {path}: {body}\n{}", d.log());
    serde_json::from_str(&body).expect("JSON")
}

fn unmount(d: &Daemon, path: &str) {
    let (status, body) = http::post(
        &d.http_addr,
        "/api/fs/unmount",
        &format!(r#"{{"path":"{path}"}}"#),
    );
    assert_eq!(status, 200, "unmount {path}: {body}");
}

/// Everything under the store's layer directory, with sizes: what "nothing changed on disk" means.
fn layer_snapshot(store: &Path) -> Vec<(PathBuf, u64)> {
    let root = store.join("mounts");
    if !root.exists() {
        return Vec::new();
    }
    walkdir::WalkDir::new(&root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| {
            (
                e.path().to_path_buf(),
                e.metadata().map(|m| m.len()).unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn a_mounted_path_is_writable_and_the_rest_stays_read_only() {
    let fx = fixture::standard();
    let d = daemon(&fx);
    let v = mount(&d, "a");
    assert_eq!(v["status"], "Success");
    let a = d.workspace.join("a");
    std::fs::write(a.join("new.txt"), b"fresh\n").expect("create in the writable path");
    assert_eq!(
        std::fs::read(a.join("new.txt")).expect("read back"),
        b"fresh\n"
    );
    // Copy-up keeps the content and appends.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(a.join("b/c.txt"))
        .expect("open lower file for append");
    std::io::Write::write_all(&mut f, b"more\n").expect("append");
    drop(f);
    let mut want = fixture::DEEP_FILE_CONTENT.to_vec();
    want.extend_from_slice(b"more\n");
    assert_eq!(std::fs::read(a.join("b/c.txt")).expect("read"), want);
    // Outside the mounted path nothing is writable.
    let e = std::fs::write(d.workspace.join("outside.txt"), b"x").expect_err("root is read-only");
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    // The remote layer is untouched: the lower object for c.txt still has the old content.
    let out = run_with_timeout(
        Command::new("git")
            .arg("--git-dir")
            .arg(&fx.repo_path)
            .args(["show", &format!("{}:a/b/c.txt", fx.commit)]),
        30,
    );
    assert_eq!(out.stdout, fixture::DEEP_FILE_CONTENT);
    // The mount shows up in the list.
    let (status, body) = http::get(&d.http_addr, "/api/fs/mpoint");
    assert_eq!(status, 200);
    assert!(body.contains("\"path\":\"a\""), "{body}");
}

#[test]
fn api_refuses_bad_input_and_changes_nothing() {
    let fx = fixture::standard();
    let d = daemon(&fx);
    mount(&d, "a/b");
    let before = layer_snapshot(&d.store);
    for (body, status, code) in [
        (r#"{"path":"no/such/dir"}"#, 404, "NOT_FOUND"),
        (r#"{"path":"a/../etc"}"#, 400, "BAD_PATH"),
        (r#"{"path":"./a"}"#, 400, "BAD_PATH"),
        (r#"{"path":"README.md"}"#, 400, "NOT_A_DIRECTORY"),
        (r#"{"path":"a/b"}"#, 409, "ALREADY_MOUNTED"),
        (r#"{"path":"/a/b/"}"#, 409, "ALREADY_MOUNTED"),
        (r#"{"path":"a/b/d"}"#, 409, "OVERLAPS_MOUNT"),
        (r#"{"path":"a"}"#, 409, "OVERLAPS_MOUNT"),
        (r#"{"path":"/"}"#, 409, "OVERLAPS_MOUNT"),
        (r#"{"nope":1}"#, 422, ""),
        ("not json", 400, ""),
    ] {
        let (got, resp) = http::post(&d.http_addr, "/api/fs/mount", body);
        assert_eq!(got, status, "{body} -> {resp}");
        if !code.is_empty() {
            let v: serde_json::Value = serde_json::from_str(&resp).expect("error body is JSON");
            assert_eq!(v["code"], code, "{resp}");
            assert!(v["error"].as_str().is_some_and(|m| !m.is_empty()), "{resp}");
        }
    }
    let (got, resp) = http::post(&d.http_addr, "/api/fs/unmount", r#"{"path":"src"}"#);
    assert_eq!(got, 404, "{resp}");
    assert_eq!(
        layer_snapshot(&d.store),
        before,
        "a refused request changed the store"
    );
}

#[test]
fn select_reports_the_outcome_of_a_request() {
    let fx = fixture::standard();
    let d = daemon(&fx);
    let v = mount(&d, "src");
    let id = v["request_id"].as_str().expect("request_id");
    let (status, body) = http::get(&d.http_addr, &format!("/api/fs/select/{id}"));
    assert_eq!(status, 200, "{body}");
    let s: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(s["status"], "Success");
    assert_eq!(s["path"], "src");
    assert_eq!(http::get(&d.http_addr, "/api/fs/select/unknown").0, 404);
}

#[test]
fn cli_mount_umount_list() {
    let fx = fixture::standard();
    let d = daemon(&fx);
    let cli = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_scorpio"));
        c.arg("-c").arg(&d.config_path).args(args);
        run_with_timeout(&mut c, 60)
    };
    let out = cli(&["mount", "src"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(d.workspace.join("src/x.rs"), b"x").expect("src is writable");
    let out = cli(&["list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"src\""),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = cli(&["mount", "src"]);
    assert_eq!(out.status.code(), Some(1), "a second mount is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already mounted"));
    let out = cli(&["umount", "src"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !d.workspace.join("src/x.rs").exists(),
        "after umount the path shows the repository again"
    );
    let out = cli(&["mount", "src"]);
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(d.workspace.join("src/x.rs")).expect("edits come back"),
        b"x"
    );
}

#[test]
fn edits_survive_unmount_and_daemon_restart() {
    let fx = fixture::standard();
    let mut d = daemon(&fx);
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
    let mut d = daemon(&fx);
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

#[test]
fn private_marks_are_hidden_and_protected() {
    let fx = fixture::standard();
    let d = daemon(&fx);
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

/// Mounts kernel overlayfs over `lower`; unmounts on drop.
struct KernelOverlay {
    _dir: tempfile::TempDir,
    merged: PathBuf,
}

impl KernelOverlay {
    fn new(lower: &Path) -> KernelOverlay {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["upper", "work", "merged"] {
            std::fs::create_dir(dir.path().join(d)).expect("mkdir");
        }
        let merged = dir.path().join("merged");
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            dir.path().join("upper").display(),
            dir.path().join("work").display()
        );
        let out = run_with_timeout(
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o", &opts])
                .arg(&merged),
            30,
        );
        assert!(
            out.status.success(),
            "kernel overlayfs mount failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        KernelOverlay { _dir: dir, merged }
    }
}

impl Drop for KernelOverlay {
    fn drop(&mut self) {
        let _ = run_with_timeout(Command::new("umount").arg("-l").arg(&self.merged), 30);
    }
}

#[test]
fn same_operations_give_the_same_view_as_kernel_overlayfs() {
    let fx = fixture::standard();
    let extracted = archive(&fx, &fx.commit);
    let kernel = KernelOverlay::new(&extracted.path().join("a"));
    script(&kernel.merged);

    let d = daemon(&fx);
    mount(&d, "a");
    script(&d.workspace.join("a"));
    assert_same_tree(&d.workspace.join("a"), &kernel.merged);
    assert!(walk(&d.workspace.join("a")).len() > 5);
    // Hard links share an inode, as on the kernel's overlay.
    let m = |p: &str| std::fs::metadata(d.workspace.join("a").join(p)).expect("stat");
    assert_eq!(m("n1/hard").ino(), m("n1/n2/f").ino());
    assert_eq!(m("n1/hard").nlink(), 2);
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn eight_threads_of_churn_keep_every_byte_and_leak_no_fds() {
    let fx = fixture::standard();
    let d = daemon(&fx);
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
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
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
    let d = daemon(&fx);
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

#[test]
fn api_requires_the_bearer_token_when_one_is_set() {
    let fx = fixture::standard();
    let opts = DaemonOpts {
        extra_toml: "auth_token = \"s3cret\"\n".into(),
        ..DaemonOpts::new(fx.repo_path.display().to_string())
    };
    let d = Daemon::start(opts).unwrap_or_else(|e| panic!("{e}"));
    let body = r#"{"path":"a"}"#;
    let (status, resp) = http::request(&d.http_addr, "POST", "/api/fs/mount", Some(body), None);
    assert_eq!(status, 401, "{resp}");
    let (status, _) = http::request(
        &d.http_addr,
        "POST",
        "/api/fs/mount",
        Some(body),
        Some("wrong"),
    );
    assert_eq!(status, 401);
    assert_eq!(
        http::request(&d.http_addr, "GET", "/health", None, None).0,
        401
    );
    assert!(
        layer_snapshot(&d.store).is_empty(),
        "a refused request changed the store"
    );
    let (status, resp) = http::request(
        &d.http_addr,
        "POST",
        "/api/fs/mount",
        Some(body),
        Some("s3cret"),
    );
    assert_eq!(status, 200, "{resp}");
    // The CLI sends the token from the config.
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_scorpio"))
            .arg("-c")
            .arg(&d.config_path)
            .arg("list"),
        60,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes branch `name` on the fixture: one commit over the fixture commit that rewrites
/// `a/b/c.txt`, adds an executable `a/tool.sh`, deletes `a/up` and `a/b/d/e/deep.txt`.
fn cl_branch(fx: &Fixture, name: &str) -> String {
    let wt = fixture::Worktree::clone_of(fx);
    let git = |args: &[&str]| wt.git(args);
    std::fs::write(wt.path().join("a/b/c.txt"), b"from the change list\n").expect("write");
    std::fs::write(wt.path().join("a/tool.sh"), b"#!/bin/sh\n").expect("write");
    std::fs::set_permissions(
        wt.path().join("a/tool.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    std::fs::remove_file(wt.path().join("a/up")).expect("rm");
    std::fs::remove_file(wt.path().join("a/b/d/e/deep.txt")).expect("rm");
    git(&["add", "-A"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qm",
        "cl",
    ]);
    git(&["push", "-q", "origin", &format!("HEAD:refs/heads/{name}")]);
    git(&["rev-parse", "HEAD"])
}

fn mount_cl(d: &Daemon, path: &str, cl: &str) -> (u16, String) {
    http::post(
        &d.http_addr,
        "/api/fs/mount",
        &format!(r#"{{"path":"{path}","cl":"{cl}"}}"#),
    )
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
    let mut d = daemon(&fx);
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
    let server = support::mega_server::MegaServer::start(&fx.repo_path);
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
    let d = Daemon::start(DaemonOpts::new(server.url())).unwrap_or_else(|e| panic!("{e}"));
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

fn mount_options_of(path: &Path) -> String {
    support::daemon::mounts_at(path)
        .last()
        .map(|m| m.options.clone())
        .unwrap_or_default()
}

#[test]
fn workspace_is_read_only_while_nothing_is_writable() {
    let fx = fixture::standard();
    let d = daemon(&fx);
    // The superblock's flag is the one that counts (the per-mount one is the first field).
    let ro = |d: &Daemon| {
        mount_options_of(&d.workspace)
            .split(',')
            .skip(1)
            .any(|o| o == "ro")
    };
    assert!(ro(&d), "{}", mount_options_of(&d.workspace));
    mount(&d, "src");
    assert!(!ro(&d), "a writable path needs a read-write superblock");
    unmount(&d, "src");
    assert!(ro(&d), "back to read-only once nothing is writable");
}

/// Opens are zero-message: the daemon sees reads and writes of an inode, never the opens, and
/// one page cache serves every open of the inode. Every mix of opens must show the same bytes.
#[test]
fn every_mix_of_opens_shows_the_same_bytes() {
    use std::io::{Read, Write};
    use std::os::unix::fs::FileExt;
    let fx = fixture::standard();
    let d = daemon(&fx);
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
    let status = {
        use std::os::unix::process::CommandExt;
        Command::new("sh")
            .arg("-c")
            .arg(format!("echo more >> '{}'", s.display()))
            .uid(65534)
            .gid(65534)
            .status()
            .expect("run sh as nobody")
    };
    assert!(status.success(), "nobody could not append: {status:?}");
    let mode = std::fs::metadata(&s).expect("stat").permissions().mode();
    assert_eq!(mode & 0o7777, 0o777, "mode after the write: {mode:o}");
    assert_eq!(read(&s), b"xmore\n");

    // The bytes are in the upper layer, where commit and push take them from.
    assert_eq!(read(&upper.join("written.bin")), b"SPort");
    assert_eq!(read(&upper.join(fixture::DEEP_FILE)), want);
}

/// Waits until `pid` has at most `want` fds open (the kernel forgets inodes a moment after the
/// last close), and returns the count seen last.
fn fd_count_settles(pid: u32, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = fd_count(pid);
        if n <= want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A file held open keeps working after its name is unlinked or renamed over, whichever layer
/// it came from, although the daemon never saw the open; the daemon lets the kept file go once
/// the kernel forgets the inode.
#[test]
fn open_files_outlive_their_names() {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::FileExt;
    let fx = fixture::standard();
    let d = daemon(&fx);
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
    let after = fd_count_settles(pid, fds_before);
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
    let d = daemon(&fx);
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

/// The daemon does not see opens, so it asks the process table before it unmounts a path:
/// an open file, or a working directory, under it makes the unmount a 409 that names the
/// process, and changes nothing.
#[test]
fn unmount_refuses_while_a_process_uses_the_path() {
    let fx = fixture::standard();
    let d = daemon(&fx);
    mount(&d, "a");
    let a = d.workspace.join("a");
    std::fs::write(a.join("kept.txt"), b"kept").expect("write");
    let unmount_status = || http::post(&d.http_addr, "/api/fs/unmount", r#"{"path":"a"}"#);
    for script in [
        "exec 3<\"$0/kept.txt\"; exec sleep 30",
        "cd \"$0/b\" && exec sleep 30",
    ] {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&a)
            .spawn()
            .expect("spawn a holder");
        let deadline = Instant::now() + Duration::from_secs(10);
        let (status, body) = loop {
            let (status, body) = unmount_status();
            if status != 200 && body.contains(&child.id().to_string()) || Instant::now() > deadline
            {
                break (status, body);
            }
            // Not yet holding it: this unmount succeeded, so mount again and retry.
            if status == 200 {
                mount(&d, "a");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(status, 409, "{script}: {body}");
        assert!(body.contains("BUSY") && body.contains("sleep"), "{body}");
        assert_eq!(
            std::fs::read(a.join("kept.txt")).expect("still mounted"),
            b"kept"
        );
    }
    unmount(&d, "a");
    assert!(
        !a.join("kept.txt").exists(),
        "unmounted once nothing used it"
    );
}

/// A path mounted again gets inode numbers the kernel has never seen: it may still hold the old
/// overlay's inodes (a file opened just as the unmount went through), and an old number
/// reused would make it take a new inode for the old one, or forget the new one.
#[test]
fn a_remount_never_reuses_inode_numbers() {
    let fx = fixture::standard();
    let d = daemon(&fx);
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

/// Runs `script` (with `$0` = `p`) as nobody:nogroup.
fn as_nobody(script: &str, p: &Path) {
    use std::os::unix::process::CommandExt;
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(p)
        .uid(65534)
        .gid(65534)
        .status()
        .expect("run sh as nobody");
    assert!(status.success(), "{script} as nobody: {status:?}");
}

/// The kernel leaves killing set-user-ID and set-group-ID bits to the daemon (so it need not ask
/// for `security.capability` before every write): a write, a truncate or an fallocate by a user
/// without CAP_FSETID clears them, on disk and in what the kernel has cached; root's writes keep
/// them; set-group-ID without group execute stays, as on any Linux filesystem.
#[test]
fn writes_by_other_users_kill_set_id_bits() {
    let fx = fixture::standard();
    let d = daemon(&fx);
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

/// Reads the names of an open directory with `getdents64`, a few at a time (`buf` bytes a call),
/// into `seen` until `stop` says so or the end; returns whether the end was reached.
fn getdents_names(
    dir: &std::fs::File,
    buf: usize,
    seen: &mut Vec<String>,
    mut stop: impl FnMut(&[String]) -> bool,
) -> bool {
    use std::os::fd::AsRawFd;
    let mut b = vec![0u8; buf];
    loop {
        // SAFETY: reads into a buffer of the length passed, on an fd we own.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                b.as_mut_ptr(),
                b.len(),
            )
        };
        assert!(n >= 0, "getdents64: {}", std::io::Error::last_os_error());
        if n == 0 {
            return true;
        }
        let mut at = 0usize;
        while at < n as usize {
            // struct linux_dirent64: ino u64, off i64, reclen u16, type u8, name.
            let reclen = u16::from_ne_bytes([b[at + 16], b[at + 17]]) as usize;
            let name = &b[at + 19..at + reclen];
            let name = &name[..name.iter().position(|c| *c == 0).unwrap_or(name.len())];
            seen.push(String::from_utf8_lossy(name).into_owned());
            at += reclen;
        }
        if stop(seen) {
            return false;
        }
    }
}

/// A directory read while it changes, a few entries per `getdents`: no name comes twice, every
/// name that stayed all along comes once, and nothing comes that never was there, whether it
/// sits in the lower layer or the upper one.
#[test]
fn a_directory_read_while_it_changes_skips_and_repeats_nothing() {
    use std::collections::HashSet;
    let fx = fixture::generated(500, 500);
    let d = daemon(&fx);
    mount(&d, "d0000");
    let dir = d.workspace.join("d0000");
    for i in 0..400 {
        std::fs::write(dir.join(format!("u{i:04}.txt")), b"upper").expect("create upper");
    }
    let names_in = |dir: &Path| -> HashSet<String> {
        std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    };
    let initial = names_in(&dir);
    assert_eq!(initial.len(), 900);

    for round in 0..3 {
        let f = std::fs::File::open(&dir).expect("open dir");
        let mut seen = Vec::new();
        let done = getdents_names(&f, 600, &mut seen, |s| s.len() >= 150);
        assert!(!done, "the first calls end early");
        // Remove lower and upper names (read or not yet), rename some, add new ones.
        let mut gone = HashSet::new();
        let mut added = HashSet::new();
        let names: Vec<&String> = {
            let mut v: Vec<_> = initial.iter().collect();
            v.sort();
            v
        };
        for (k, n) in names.iter().enumerate() {
            let p = dir.join(n);
            if !p.exists() {
                gone.insert((*n).clone());
                continue;
            }
            match (k + round) % 7 {
                0 => {
                    std::fs::remove_file(&p).expect("unlink");
                    gone.insert((*n).clone());
                }
                3 => {
                    let to = format!("r{round}-{n}");
                    std::fs::rename(&p, dir.join(&to)).expect("rename");
                    gone.insert((*n).clone());
                    added.insert(to);
                }
                _ => {}
            }
        }
        for i in 0..200 {
            let n = format!("n{round}-{i:04}.txt");
            std::fs::write(dir.join(&n), b"new").expect("create new");
            added.insert(n);
        }
        assert!(getdents_names(&f, 600, &mut seen, |_| false));
        let mut once = HashSet::new();
        for n in &seen {
            assert!(once.insert(n.clone()), "round {round}: {n} listed twice");
            assert!(
                n == "." || n == ".." || initial.contains(n) || added.contains(n),
                "round {round}: {n} never existed"
            );
        }
        let missing: Vec<_> = initial
            .iter()
            .filter(|n| !gone.contains(*n) && !once.contains(*n))
            .collect();
        assert!(missing.is_empty(), "round {round}: skipped {missing:?}");
        // A fresh open lists exactly what is there now (the kernel's cached listing is gone).
        let now = names_in(&dir);
        let expected: HashSet<String> = initial
            .iter()
            .filter(|n| !gone.contains(*n))
            .cloned()
            .chain(added.iter().cloned())
            .collect();
        let (extra, lost): (Vec<_>, Vec<_>) = (
            now.difference(&expected).collect(),
            expected.difference(&now).collect(),
        );
        assert!(
            extra.is_empty() && lost.is_empty(),
            "round {round}: listed but gone {extra:?}; there but not listed {lost:?}"
        );
        // Put the directory back the way it was for the next round.
        for n in &added {
            std::fs::remove_file(dir.join(n)).expect("clean up");
        }
        for n in initial.iter().filter(|n| !dir.join(n).exists()) {
            if n.starts_with('u') {
                std::fs::write(dir.join(n), b"upper").expect("recreate upper");
            }
        }
    }
}

/// Listing a large directory with attributes (READDIRPLUS, more entries than one reply holds)
/// counts no lookup the kernel will not forget: once the files are removed and the kernel lets
/// go, the daemon holds no file for any of them.
#[test]
fn large_listings_leave_no_lookups_behind() {
    let fx = fixture::standard();
    let d = daemon(&fx);
    mount(&d, "/");
    let dir = d.workspace.join("many");
    std::fs::create_dir(&dir).expect("mkdir");
    let pid = d.pid().expect("daemon pid");
    let file = |i: usize| dir.join(format!("file-with-a-longish-name-{i:05}.txt"));
    for i in 0..1500 {
        std::fs::write(file(i), b"x").expect("create");
    }
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
    let fds_before = fd_count(pid);
    for e in std::fs::read_dir(&dir).expect("list") {
        e.expect("entry").metadata().expect("stat");
    }
    for i in 0..1500 {
        std::fs::remove_file(file(i)).expect("unlink");
    }
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
    let after = fd_count_settles(pid, fds_before);
    assert!(
        after <= fds_before,
        "daemon fds: {fds_before} before listing 1500 files, {after} after they were removed"
    );
}
