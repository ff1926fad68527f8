//! Which processes use a directory of the workspace: open files, mappings, working directories.
//!
//! Opens are zero-message (`crate::NO_OPEN`), so the daemon does not know which files are open.
//! Before a writable path is unmounted (its inodes then stop answering), the process table is
//! asked instead, the way `fuser -m` does: an fd, a mapping, a working or root directory whose
//! path lies under the directory. Paths are read from `/proc` and never touch the mount.
//!
//! Root reads every process. A plain daemon reads only its own user's (the kernel hides the
//! links of others), and a process it cannot read counts as not using the directory. Without
//! `allow_other` (a plain daemon never sets it) the kernel refuses the mount to any process
//! whose uids are not all the user's, so another user's or root's process cannot be inside.
//! The one that can is a setuid program the user started from inside (`sudo` keeps the cwd
//! and fds): it is not seen, so the unmount goes ahead; its cwd was already unusable, an fd it
//! inherited may still read what the kernel caches, and the upper layer loses nothing.
//! Counting unreadable processes instead would refuse every unmount while any `sudo` runs.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Whether `p` (as `/proc` prints a path) names `dir` or something below it.
fn under(p: &[u8], dir: &[u8]) -> bool {
    // A removed file reads "<path> (deleted)": the path part still tells where it was.
    let p = p.strip_suffix(b" (deleted)").unwrap_or(p);
    p.starts_with(dir) && (p.len() == dir.len() || p[dir.len()] == b'/')
}

/// The ids of processes (other than this one) using something under `dir`.
pub fn holders(dir: &Path) -> Vec<u32> {
    let dir = dir.as_os_str().as_bytes();
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in procs.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid != me && uses(&e.path(), dir) {
            out.push(pid);
        }
    }
    out
}

/// Whether the process at `/proc/<pid>` uses something under `dir`; links it may not read
/// count as not (see the module doc).
fn uses(proc_dir: &Path, dir: &[u8]) -> bool {
    let link_under =
        |p: &Path| std::fs::read_link(p).is_ok_and(|t| under(t.as_os_str().as_bytes(), dir));
    if link_under(&proc_dir.join("cwd")) || link_under(&proc_dir.join("root")) {
        return true;
    }
    if let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) {
        if fds.flatten().any(|fd| link_under(&fd.path())) {
            return true;
        }
    }
    // Mapped files (a running binary, an mmap) stay in use after their fd is closed.
    std::fs::read(proc_dir.join("maps")).is_ok_and(|maps| {
        maps.split(|b| *b == b'\n').any(|line| {
            line.iter()
                .position(|b| *b == b'/')
                .is_some_and(|i| under(&line[i..], dir))
        })
    })
}

/// The first of `pids` with its command name, for a message.
pub fn describe(pids: &[u32]) -> String {
    let Some(pid) = pids.first() else {
        return String::new();
    };
    let comm = std::fs::read(format!("/proc/{pid}/comm")).unwrap_or_default();
    let comm = OsStr::from_bytes(comm.trim_ascii_end()).to_string_lossy();
    match pids.len() {
        1 => format!("process {pid} ({comm})"),
        n => format!("process {pid} ({comm}) and {} more", n - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_a_directory() {
        assert!(under(b"/ws/a", b"/ws/a"));
        assert!(under(b"/ws/a/b.c", b"/ws/a"));
        assert!(under(b"/ws/a/b.c (deleted)", b"/ws/a"));
        assert!(!under(b"/ws/ab", b"/ws/a"));
        assert!(!under(b"/ws", b"/ws/a"));
    }
}
