//! The daemon's own state is private: nothing it keeps for itself is group- or world-writable.
//!
//! The daemon (often root) runs with umask [`DAEMON_UMASK`], so the store, the staging
//! repository, the inode table and the object cache are made 0755/0644. A store's `git/config`
//! that another user could write would let them plant `core.pager` for root to run; a writable
//! object directory would let them delete unpushed commits. Entries the overlay makes on a
//! user's behalf in an upper layer are put back to exactly the mode the request asked for where
//! this mask took bits away (see `overlay::ops`).
//!
//! Older versions ran with umask 0. At start, [`make_private`] takes group and world write away
//! from what they left: the store root, the staging repository and everything else the daemon
//! keeps for itself, the directories of the object cache, the layer and Antares directories
//! themselves, but nothing an upper layer holds (users' files keep their modes). Nothing is
//! followed: a symlink found in the store is left as it is, and every entry is changed through
//! an fd opened on it without following it.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};

use crate::beneath;

/// The daemon's umask: no group or world write on anything it makes for itself.
pub const DAEMON_UMASK: u32 = 0o022;

/// Whether the daemon runs as root, decided once (the effective uid does not change): root
/// mounts with mount(2) and marks whiteouts with `trusted.*` xattrs; a plain user mounts
/// through `fusermount3` and marks them with `user.*` xattrs.
pub fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| rustix::process::geteuid().is_root())
}

/// The file where the system lets plain users' FUSE mounts use `allow_other`.
pub const FUSE_CONF: &str = "/etc/fuse.conf";

/// Whether the text of a `fuse.conf` has an active `user_allow_other` line (fusermount3 reads
/// it so: a line of its own, `#` starts a comment, blanks around it ignored).
pub fn fuse_conf_allows_other(text: &str) -> bool {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .any(|l| l == "user_allow_other")
}

/// Whether a mount with `allow_other` would succeed for this daemon: always for root; for a
/// plain user only when [`FUSE_CONF`] allows it (fusermount3 refuses the mount otherwise).
pub fn allow_other_permitted() -> bool {
    is_root() || std::fs::read_to_string(FUSE_CONF).is_ok_and(|t| fuse_conf_allows_other(&t))
}

/// What below an entry of the store the repair changes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// Every directory (the object cache: its files are made 0600).
    Dirs,
    /// Everything.
    All,
}

/// Sets the daemon's umask and repairs the store at `store_path` (see the module doc). Called
/// first thing by the daemon and by `antares serve`; a failure to repair is logged, not fatal.
pub fn make_private(store_path: &Path) {
    rustix::process::umask(Mode::from_raw_mode(DAEMON_UMASK));
    match repair(store_path) {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            store = %store_path.display(),
            entries = n,
            "took group/world write away from the store's own state (left by an older version)"
        ),
        Err(e) => tracing::warn!(
            store = %store_path.display(),
            error = %e,
            "could not make the store private"
        ),
    }
}

/// Takes group and world write away from the daemon's own state in `store_path`; returns how
/// many entries changed.
fn repair(store_path: &Path) -> io::Result<usize> {
    let root = match rustix::fs::open(
        store_path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut n = fix(root.as_fd())?;
    for (name, _) in beneath::names(&root)? {
        n += match name.to_str() {
            // `mounts`, each `mounts/<id>` and its own files and directories, but never what
            // an upper layer or a scratch directory holds.
            Some("mounts") => walk(root.as_fd(), &name, Depth::All, 2, &["upper", "work"])?,
            // The state file and the roots themselves; what is inside them belongs to jobs.
            Some("antares") => walk(root.as_fd(), &name, Depth::All, 1, &[])?,
            // The cache and its fan-out and tmp directories; those hold only files (made 0600),
            // so they are not listed: a start does not read a million names twice.
            Some("objects") => walk(root.as_fd(), &name, Depth::Dirs, 1, &[])?,
            _ => walk(root.as_fd(), &name, Depth::All, usize::MAX, &[])?,
        };
    }
    Ok(n)
}

/// Fixes `name` in `dir` and, for a directory, what `depth` says below it, at most `levels`
/// levels down, leaving out entries named in `skip` (at any level).
fn walk(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    depth: Depth,
    levels: usize,
    skip: &[&str],
) -> io::Result<usize> {
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let st = rustix::fs::fstat(&fd)?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind == FileType::Symlink {
        return Ok(0);
    }
    let mut n = fix(fd.as_fd())?;
    if kind != FileType::Directory || levels == 0 {
        return Ok(n);
    }
    for (child, child_kind) in beneath::names(&fd)? {
        let wanted = match depth {
            Depth::All => true,
            Depth::Dirs => matches!(child_kind, FileType::Directory | FileType::Unknown),
        } && !skip.iter().any(|s| child == *s);
        if wanted {
            n += walk(fd.as_fd(), &child, depth, levels - 1, skip)?;
        }
    }
    Ok(n)
}

/// Takes group and world write away from the entry open (`O_PATH`) at `fd`; 1 if it changed.
fn fix(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let st = rustix::fs::fstat(fd)?;
    let mode = st.st_mode & 0o7777;
    if mode & DAEMON_UMASK == 0 || FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        return Ok(0);
    }
    // An O_PATH fd cannot be fchmod'ed; its /proc link names the very inode, not a path.
    rustix::fs::chmod(
        format!("/proc/self/fd/{}", fd.as_raw_fd()),
        Mode::from_raw_mode(mode & !DAEMON_UMASK),
    )?;
    Ok(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_allow_other_is_read_as_fusermount3_reads_it() {
        use super::fuse_conf_allows_other as allows;
        assert!(allows("user_allow_other\n"));
        assert!(allows(
            "# mount_max = 1000\n  user_allow_other  # for the CI user\n"
        ));
        assert!(!allows("#user_allow_other\n"));
        assert!(!allows("# user_allow_other\nmount_max = 1000\n"));
        assert!(!allows("user_allow_others\n"));
        assert!(!allows(""));
    }

    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn chmod(p: &Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }

    #[test]
    fn own_state_loses_group_and_world_write_upper_layers_keep_theirs() {
        let t = tempfile::tempdir().unwrap();
        let s = t.path().join("store");
        let outside = t.path().join("outside");
        for d in [
            "git/objects/ab",
            "objects/cd",
            "mounts/id1/upper/sub",
            "mounts/id1/work",
            "antares/upper/job/d",
        ] {
            std::fs::create_dir_all(s.join(d)).unwrap();
        }
        std::fs::create_dir(&outside).unwrap();
        for f in [
            "git/config",
            "git/objects/ab/obj",
            "objects/cd/blob",
            "mounts/id1/path",
            "mounts/id1/upper/sub/users",
            "antares/state.json",
            "antares/upper/job/d/f",
        ] {
            std::fs::write(s.join(f), b"x").unwrap();
        }
        symlink(&outside, s.join("git/link")).unwrap();
        for p in crate_walk(t.path()) {
            chmod(&p, if p.is_dir() { 0o777 } else { 0o666 });
        }
        repair(&s).unwrap();
        for private in [
            "",
            "git",
            "git/config",
            "git/objects/ab",
            "git/objects/ab/obj",
            "objects",
            "objects/cd",
            "mounts",
            "mounts/id1",
            "mounts/id1/path",
            "antares",
            "antares/state.json",
            "antares/upper",
        ] {
            assert_eq!(mode(&s.join(private)) & 0o022, 0, "{private}");
        }
        for kept in [
            "mounts/id1/upper",
            "mounts/id1/upper/sub",
            "mounts/id1/upper/sub/users",
            "mounts/id1/work",
            "antares/upper/job",
            "antares/upper/job/d/f",
        ] {
            assert_eq!(mode(&s.join(kept)) & 0o022, 0o022, "{kept}");
        }
        // The cache's files are the daemon's (0600 when made); only its directories are walked.
        assert_eq!(mode(&s.join("objects/cd/blob")), 0o666);
        assert_eq!(mode(&outside), 0o777, "the symlink was followed");
    }

    fn crate_walk(root: &Path) -> Vec<std::path::PathBuf> {
        let mut out = vec![];
        let mut todo = vec![root.to_path_buf()];
        while let Some(p) = todo.pop() {
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                for e in std::fs::read_dir(&p).unwrap() {
                    todo.push(e.unwrap().path());
                }
            }
            if !std::fs::symlink_metadata(&p).unwrap().is_symlink() {
                out.push(p);
            }
        }
        out
    }
}
