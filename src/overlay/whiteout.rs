//! Whiteouts and opaque directories in a layer directory.
//!
//! A whiteout is an empty regular file with mode 0000 carrying the xattr
//! `trusted.scorpio.whiteout` (the mode lets a stat rule out nearly every other file without
//! reading an xattr, which through `/proc/self/fd` costs more than the request); an opaque
//! directory carries `trusted.scorpio.opaque`. Unlike kernel overlayfs (a 0/0 character device),
//! this never mistakes a file a user made for a whiteout. A daemon without CAP_SYS_ADMIN cannot
//! write `trusted.*`, so it uses `user.scorpio.*`; both are recognised when reading. Such a daemon
//! makes its whiteouts mode 0400, as reading a `user.*` xattr needs read permission (and writing
//! one write permission, lent for the call). These xattrs are never shown through the mount and
//! cannot be set through it.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, Mode, OFlags, Stat, XattrFlags};

use crate::privacy::is_root;

/// The xattr marking a whiteout, for a privileged daemon.
pub const WHITEOUT_XATTR: &str = "trusted.scorpio.whiteout";
/// The xattr marking an opaque directory, for a privileged daemon.
pub const OPAQUE_XATTR: &str = "trusted.scorpio.opaque";
const USER_WHITEOUT_XATTR: &str = "user.scorpio.whiteout";
const USER_OPAQUE_XATTR: &str = "user.scorpio.opaque";

/// Whether an xattr name is one of Scorpio's private marks.
pub fn is_private_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.scorpio.") || name.starts_with(b"user.scorpio.")
}

/// A plain daemon's whiteouts are mode 0400: reading a `user.*` xattr needs read permission,
/// which root has on mode 0000 and its owner does not.
const PLAIN_WHITEOUT_MODE: u32 = 0o400;

fn marks(whiteout: bool) -> [&'static str; 2] {
    if whiteout {
        [WHITEOUT_XATTR, USER_WHITEOUT_XATTR]
    } else {
        [OPAQUE_XATTR, USER_OPAQUE_XATTR]
    }
}

/// The path through which xattrs of `name` in directory `dir` are reached without following it.
pub fn xattr_path(dir: impl AsFd, name: &OsStr) -> std::path::PathBuf {
    let mut p = std::path::PathBuf::from(format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd()));
    p.push(name);
    p
}

fn has_mark(dir: impl AsFd, name: &OsStr, whiteout: bool) -> bool {
    let path = xattr_path(dir, name);
    marks(whiteout)
        .iter()
        .any(|m| rustix::fs::lgetxattr(&path, *m, &mut [0u8; 4][..]).is_ok())
}

fn set_mark(dir: impl AsFd, name: &OsStr, whiteout: bool) -> io::Result<()> {
    let path = xattr_path(dir.as_fd(), name);
    if is_root() {
        rustix::fs::lsetxattr(&path, marks(whiteout)[0], b"y", XattrFlags::empty())?;
        return Ok(());
    }
    let mark = marks(whiteout)[1];
    match rustix::fs::lsetxattr(&path, mark, b"y", XattrFlags::empty()) {
        // Without CAP_FOWNER a `user.*` xattr needs write permission on the entry, which a
        // whiteout (mode 0000) or a read-only directory lacks: the owner lends it for the call.
        Err(rustix::io::Errno::ACCESS) => {
            let st = rustix::fs::statat(dir.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW)?;
            // chmodat follows a symlink; only a file or a directory is lent the bit.
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink {
                return Err(rustix::io::Errno::ACCESS.into());
            }
            let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
            rustix::fs::chmodat(dir.as_fd(), name, mode | Mode::WUSR, AtFlags::empty())?;
            let set = rustix::fs::lsetxattr(&path, mark, b"y", XattrFlags::empty());
            rustix::fs::chmodat(dir.as_fd(), name, mode, AtFlags::empty())?;
            set?;
        }
        r => r?,
    }
    Ok(())
}

/// Only empty regular files of mode 0000 (or a plain daemon's 0400) can be whiteouts; checking
/// this first spares the xattr calls for everything else. Both modes count whoever reads, so a
/// root daemon over an upper layer a plain one wrote (the same user's store, run through sudo
/// or a system unit) still sees its deletions.
fn may_be_whiteout(st: &Stat) -> bool {
    rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
        && st.st_size == 0
        && matches!(st.st_mode & 0o7777, 0 | PLAIN_WHITEOUT_MODE)
}

/// Whether the entry `name` (with stat `st`) in `dir` is a whiteout.
pub fn is_whiteout(dir: impl AsFd, name: &OsStr, st: &Stat) -> bool {
    may_be_whiteout(st) && has_mark(dir, name, true)
}

/// Whether the open file `fd` (with stat `st`) is a whiteout.
pub fn is_whiteout_fd(fd: impl AsFd, st: &Stat) -> bool {
    may_be_whiteout(st)
        && marks(true)
            .iter()
            .any(|m| rustix::fs::fgetxattr(fd.as_fd(), *m, &mut [0u8; 4][..]).is_ok())
}

/// Whether directory `name` in `dir` is opaque (hides the layers below it).
pub fn is_opaque(dir: impl AsFd, name: &OsStr) -> bool {
    has_mark(dir, name, false)
}

/// Creates a whiteout at `name` in `dir` (which must not hold `name`), with mode 0000 (0400 when
/// the daemon is not root).
pub fn make_whiteout(dir: impl AsFd, name: &OsStr) -> io::Result<()> {
    let fd = rustix::fs::openat(
        dir.as_fd(),
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        if is_root() {
            Mode::empty()
        } else {
            Mode::from_raw_mode(PLAIN_WHITEOUT_MODE)
        },
    )?;
    drop(fd);
    if let Err(e) = set_mark(dir.as_fd(), name, true) {
        let _ = rustix::fs::unlinkat(dir.as_fd(), name, AtFlags::empty());
        return Err(e);
    }
    Ok(())
}

/// Marks directory `name` in `dir` opaque.
pub fn make_opaque(dir: impl AsFd, name: &OsStr) -> io::Result<()> {
    set_mark(dir, name, false)
}

/// Removes Scorpio's marks from a name list returned by `listxattr`.
pub fn filter_xattr_list(list: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(list.len());
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if !is_private_xattr(name) {
            out.extend_from_slice(name);
            out.push(0);
        }
    }
    out
}

/// True when `name` as bytes is a private mark (for OsStr callers).
pub fn is_private_xattr_os(name: &OsStr) -> bool {
    is_private_xattr(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn stat(dir: &std::fs::File, name: &str) -> Stat {
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).unwrap()
    }

    #[test]
    fn whiteouts_and_opaque_marks() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::File::open(tmp.path()).unwrap();
        make_whiteout(&dir, OsStr::new("gone")).unwrap();
        assert!(is_whiteout(&dir, OsStr::new("gone"), &stat(&dir, "gone")));
        // An empty file a user made is not a whiteout, nor is a 0/0 character device.
        std::fs::write(tmp.path().join("empty"), b"").unwrap();
        assert!(!is_whiteout(
            &dir,
            OsStr::new("empty"),
            &stat(&dir, "empty")
        ));
        rustix::fs::mknodat(
            &dir,
            "chr",
            rustix::fs::FileType::CharacterDevice,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert!(!is_whiteout(&dir, OsStr::new("chr"), &stat(&dir, "chr")));
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        assert!(!is_opaque(&dir, OsStr::new("d")));
        make_opaque(&dir, OsStr::new("d")).unwrap();
        assert!(is_opaque(&dir, OsStr::new("d")));
        let gone = std::fs::metadata(tmp.path().join("gone")).unwrap();
        assert_eq!((gone.size(), gone.mode() & 0o7777), (0, 0));
        // Nor is an empty file of mode 0000 without the mark (its xattrs are read).
        std::fs::write(tmp.path().join("zero"), b"").unwrap();
        rustix::fs::chmodat(&dir, "zero", Mode::empty(), AtFlags::empty()).unwrap();
        assert!(!is_whiteout(&dir, OsStr::new("zero"), &stat(&dir, "zero")));
        assert!(
            make_whiteout(&dir, OsStr::new("empty")).is_err(),
            "never replaces an entry"
        );
    }

    #[test]
    fn a_plain_daemons_whiteout_counts_for_root_too() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::File::open(tmp.path()).unwrap();
        // What a plain daemon leaves: empty, 0400, `user.scorpio.whiteout`.
        for (name, mark) in [("plain", Some(USER_WHITEOUT_XATTR)), ("unmarked", None)] {
            std::fs::write(tmp.path().join(name), b"").unwrap();
            if let Some(m) = mark {
                rustix::fs::setxattr(tmp.path().join(name), m, b"y", XattrFlags::empty()).unwrap();
            }
            rustix::fs::chmodat(&dir, name, Mode::from_raw_mode(0o400), AtFlags::empty()).unwrap();
        }
        assert!(is_whiteout(&dir, OsStr::new("plain"), &stat(&dir, "plain")));
        let fd = std::fs::File::open(tmp.path().join("plain")).unwrap();
        assert!(is_whiteout_fd(&fd, &stat(&dir, "plain")));
        assert!(!is_whiteout(
            &dir,
            OsStr::new("unmarked"),
            &stat(&dir, "unmarked")
        ));
        // An opaque mark a plain daemon set counts too.
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        rustix::fs::setxattr(
            tmp.path().join("d"),
            USER_OPAQUE_XATTR,
            b"y",
            XattrFlags::empty(),
        )
        .unwrap();
        assert!(is_opaque(&dir, OsStr::new("d")));
    }

    #[test]
    fn private_marks_are_filtered() {
        let list = b"user.a\0trusted.scorpio.whiteout\0security.selinux\0user.scorpio.opaque\0";
        assert_eq!(
            filter_xattr_list(list),
            b"user.a\0security.selinux\0".to_vec()
        );
        assert!(is_private_xattr(b"trusted.scorpio.x"));
        assert!(!is_private_xattr(b"trusted.other"));
    }
}
