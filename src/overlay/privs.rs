//! Killing set-user-ID and set-group-ID bits: the daemon's half of `FUSE_HANDLE_KILLPRIV_V2`.
//!
//! With that flag the kernel stops checking privileges itself before every `write(2)` (one
//! GETXATTR of `security.capability` per write, a quarter of a build's requests) and leaves it to
//! the daemon: a WRITE with `FUSE_WRITE_KILL_SUIDGID`, a SETATTR with `kill_suidgid` (truncate,
//! chown), and a FALLOCATE by anyone but root must clear S_ISUID, and S_ISGID when the group may
//! execute, as the kernel does for a caller without CAP_FSETID. The daemon itself holds that
//! capability, so its own writes to the upper file clear nothing. File capabilities need no care:
//! the upper filesystem drops `security.capability` on any write or truncate.
//!
//! The kernel keeps the mode it last saw, and trusts it (an exec of a set-user-ID file runs with
//! its owner's rights): when the bits go, its attributes are invalidated before the request is
//! answered, so no process can run the changed file with the old bits.

use std::ffi::OsStr;
use std::os::fd::AsFd;

use rustix::fs::{AtFlags, Mode, Stat};

/// The permission bits `st` keeps once suid/sgid are killed, or `None` when nothing changes.
fn killed(st: &Stat) -> Option<Mode> {
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return None;
    }
    let mode = st.st_mode & 0o7777;
    let mut kept = mode & !libc::S_ISUID;
    if kept & libc::S_IXGRP != 0 {
        kept &= !libc::S_ISGID;
    }
    (kept != mode).then(|| Mode::from_raw_mode(kept))
}

/// Clears S_ISUID, and S_ISGID if group-executable, on open `file`. Returns whether the mode
/// changed.
pub(super) fn kill_suidgid(file: impl AsFd) -> rustix::io::Result<bool> {
    let Some(mode) = killed(&rustix::fs::fstat(&file)?) else {
        return Ok(false);
    };
    rustix::fs::fchmod(&file, mode)?;
    Ok(true)
}

/// The same for `name` in directory `dir`, without opening it (symlinks are left alone).
pub(super) fn kill_suidgid_at(dir: impl AsFd, name: &OsStr) -> rustix::io::Result<bool> {
    let st = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    let Some(mode) = killed(&st) else {
        return Ok(false);
    };
    rustix::fs::chmodat(&dir, name, mode, AtFlags::empty())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn after_kill(mode: u32) -> (bool, u32) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        std::fs::write(&p, b"x").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let f = std::fs::File::open(&p).expect("open");
        let changed = kill_suidgid(&f).expect("kill");
        let now = std::fs::metadata(&p).expect("stat").permissions().mode() & 0o7777;
        (changed, now)
    }

    #[test]
    fn clears_what_the_kernel_clears() {
        assert_eq!(after_kill(0o4755), (true, 0o755));
        assert_eq!(after_kill(0o6755), (true, 0o755));
        // Set-group-ID without group execute marks mandatory locking: it stays.
        assert_eq!(after_kill(0o2644), (false, 0o2644));
        assert_eq!(after_kill(0o6744), (true, 0o2744));
        assert_eq!(after_kill(0o1777), (false, 0o1777));
        assert_eq!(after_kill(0o644), (false, 0o644));
    }
}
