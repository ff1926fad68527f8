//! The machine around the daemon: a process's open descriptors, commands run as another user,
//! the kernel's caches, and scratch mounts (tmpfs, kernel overlayfs) that go away when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::daemon::{lazy_unmount, run_with_timeout};

/// How many descriptors `pid` has open (0 when it is gone).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Waits until `pid` has at most `want` fds open (the kernel forgets inodes a moment after the
/// last close), and returns the count seen last.
pub fn fd_count_after(pid: u32, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = fd_count(pid);
        if n <= want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asks the kernel to drop its page, dentry and inode caches (allowed to fail: not root).
pub fn drop_caches() {
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

/// `program` to be run as nobody:nogroup (uid and gid 65534, no supplementary groups).
pub fn nobody(program: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", program]);
    cmd
}

/// Runs `script` (with `$0` = `p`) as nobody:nogroup; panics unless it succeeds.
pub fn as_nobody(script: &str, p: &Path) {
    let status = nobody("sh")
        .arg("-c")
        .arg(script)
        .arg(p)
        .status()
        .expect("run sh as nobody");
    assert!(status.success(), "{script} as nobody: {status:?}");
}

/// `curl` as nobody: POSTs the JSON `body` to `url` (with a bearer `token` if given); returns
/// (status, body), status 0 when curl got no answer.
pub fn curl_as_nobody(url: &str, body: &str, token: Option<&str>) -> (u16, String) {
    let mut cmd = nobody("curl");
    cmd.args([
        "-sS",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        body,
        "-w",
        "\n%{http_code}",
    ]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    cmd.arg(url);
    let out = run_with_timeout(&mut cmd, 60);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Kernel overlayfs mounted over `lower` in a fresh directory; unmounted when dropped.
pub struct KernelOverlay {
    _dir: tempfile::TempDir,
    /// The merged view.
    pub merged: PathBuf,
}

impl KernelOverlay {
    /// Mounts it (empty upper layer); panics when the kernel refuses.
    pub fn new(lower: &Path) -> KernelOverlay {
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

/// A tmpfs mounted for the test's life; unmounted (lazily) when dropped.
pub struct Tmpfs {
    path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it, e.g. `20m`) on a fresh directory.
    pub fn new(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("scorpio-tmpfs-")
            .tempdir()
            .expect("tempdir");
        let mut t = Tmpfs::mount(dir.path(), &["-o", &format!("size={size}")]);
        t._dir = Some(dir);
        t
    }

    /// Mounts a tmpfs of the default size at `p` (made if missing).
    pub fn at(p: &Path) -> Tmpfs {
        std::fs::create_dir_all(p).expect("mkdir");
        Tmpfs::mount(p, &[])
    }

    fn mount(p: &Path, opts: &[&str]) -> Tmpfs {
        let out = run_with_timeout(
            Command::new("mount")
                .args(["-t", "tmpfs"])
                .args(opts)
                .arg("tmpfs")
                .arg(p),
            30,
        );
        assert!(
            out.status.success(),
            "mount tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            path: p.to_path_buf(),
            _dir: None,
        }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes free, as statvfs says.
    pub fn free(&self) -> u64 {
        let st = rustix::fs::statvfs(&self.path).expect("statvfs");
        st.f_bavail * st.f_frsize
    }

    /// Bytes in use, as statvfs says (open but unlinked files included).
    pub fn used(&self) -> u64 {
        let st = rustix::fs::statvfs(&self.path).expect("statvfs");
        (st.f_blocks - st.f_bfree) * st.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = run_with_timeout(Command::new("umount").arg("-l").arg(&self.path), 30);
    }
}
