//! Mounting and unmounting, and finding a stale mount left behind by a crashed run.
//!
//! Chosen by privilege (the effective uid, [`privileged`]): root mounts with mount(2), detaches
//! with umount2 and flips the workspace read-only with a remount; a plain user goes through the
//! setuid `fusermount3` (as sshfs does) and the workspace stays read-write to the kernel, its
//! read-only parts answering EROFS themselves.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rfuse3::MountOptions;

use crate::privacy::is_root;

/// Errors of mounting.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A live filesystem already sits on the mountpoint.
    #[error("{0} is already a mount point of a live filesystem; unmount it first")]
    Busy(PathBuf),
    /// The mountpoint has files in it.
    #[error("{0} is not empty; Scorpio mounts only over an empty directory")]
    NotEmpty(PathBuf),
    /// The system refused.
    #[error("cannot mount at {path}: {source}")]
    Io {
        /// The mountpoint.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Whether mounts let other users in (`allow_other`), set once from the config at start.
static ALLOW_OTHER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Sets whether the daemon's mounts let users other than its own in (the `allow_other` key;
/// default: only when root). The first call counts.
pub fn set_allow_other(on: bool) {
    let _ = ALLOW_OTHER.set(on);
}

/// Mount options for the workspace: the kernel checks permissions itself (from the modes we
/// report) and may read ahead. Read-only parts answer EROFS themselves.
pub fn workspace_options() -> MountOptions {
    let mut o = MountOptions::default();
    o.fs_name("scorpio")
        .default_permissions(true)
        // Root serves a shared box: every user may read the workspace. A plain user's mount is
        // its own unless the config says otherwise (fusermount3 then needs user_allow_other in
        // /etc/fuse.conf, checked at start).
        .allow_other(ALLOW_OTHER.get().copied().unwrap_or_else(is_root))
        .max_readahead(Some(1 << 20))
        // File data changes only through this mount or through Scorpio's own operations,
        // which invalidate what they change (or give changed content a new inode). The
        // kernel's default, dropping a file's pages whenever it sees a new mtime, made every
        // file written here be read back from the daemon.
        .auto_inval_data(false)
        // Every OPEN is answered ENOSYS (`crate::NO_OPEN`); this also keeps O_TRUNC a SETATTR.
        .no_open_support(true)
        // The kernel leaves killing suid/sgid to us and stops asking for security.capability
        // before every write (overlay/privs.rs).
        .handle_killpriv_v2(true);
    o
}

/// The current user and group.
#[allow(unsafe_code)]
pub fn current_ids() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail and touch no memory.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// Decodes the octal escapes (`\040`) of a field of `/proc/self/mountinfo`.
pub fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The filesystem type mounted exactly at `path`, if any (the last mount wins).
pub fn mounted_fstype(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.as_os_str().as_bytes();
    let mut found = None;
    for line in info.lines() {
        let mut parts = line.split(" - ");
        let (Some(left), Some(right)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(mp) = left.split(' ').nth(4) else {
            continue;
        };
        if unescape(mp) == want {
            found = right.split(' ').next().map(str::to_string);
        }
    }
    found
}

/// Flips the workspace between read-only and read-write.
///
/// While nothing in the workspace is writable it is mounted read-only: then the kernel keeps
/// attributes across reads (on a writable FUSE mount every read from the daemon invalidates the
/// file's atime, so the next `stat` costs a round trip) and refuses writes itself. Needs
/// CAP_SYS_ADMIN: a plain user's workspace stays read-write to the kernel (said once in the log).
pub fn set_readonly(path: &Path, ro: bool) {
    if !is_root() {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            tracing::info!(path = %path.display(), "not root: the workspace is not remounted read-only; writes outside writable paths are refused by the daemon (EROFS)")
        });
        return;
    }
    let flags = if ro {
        rustix::mount::MountFlags::RDONLY
    } else {
        rustix::mount::MountFlags::empty()
    };
    match rustix::mount::mount_remount(path, flags, "") {
        Ok(()) => tracing::debug!(path = %path.display(), ro, "workspace remounted"),
        Err(e) => {
            tracing::debug!(path = %path.display(), ro, error = %e, "workspace not remounted")
        }
    }
}

/// Detaches whatever is mounted at `path` (lazily, so busy users do not block it): umount2 as
/// root, `fusermount3 -uz` (which unmounts only the user's own FUSE mounts) otherwise.
pub fn detach(path: &Path) -> io::Result<()> {
    if !is_root() {
        return fusermount3_detach(path);
    }
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    #[allow(unsafe_code)]
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    // Without CAP_SYS_ADMIN the setuid helper can still unmount our own FUSE mounts.
    let status = Command::new("fusermount3").arg("-uz").arg(path).status();
    match status {
        Ok(s) if s.success() => Ok(()),
        _ => Err(err),
    }
}

/// `fusermount3 -uz <path>`: the setuid helper's lazy unmount of the caller's own FUSE mount.
fn fusermount3_detach(path: &Path) -> io::Result<()> {
    let out = Command::new("fusermount3")
        .arg("-uz")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "fusermount3 -uz {} failed ({}): {}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Detaches the FUSE mount at `path` lazily, if one is there (a clean unmount that failed or a
/// session that ended leaves one; anything else mounted there is not ours to touch).
pub fn detach_fuse(path: &Path) -> io::Result<()> {
    if mounted_fstype(path).is_some_and(|t| t.starts_with("fuse")) {
        detach(path)?;
    }
    Ok(())
}

/// Clears a FUSE mount at `path` left by a crashed run; refuses if a live filesystem is there.
pub fn clear_stale(path: &Path) -> Result<(), MountError> {
    let Some(fstype) = mounted_fstype(path) else {
        return Ok(());
    };
    // stat can be answered from the kernel's attribute cache even when the daemon is gone;
    // opening the directory always reaches it.
    let errors = [std::fs::metadata(path).err(), std::fs::read_dir(path).err()];
    tracing::debug!(path = %path.display(), fstype, ?errors, "something is mounted at the workspace");
    let dead = errors.into_iter().flatten().any(|e| {
        matches!(
            e.raw_os_error(),
            Some(libc::ENOTCONN) | Some(libc::ECONNABORTED)
        )
    });
    if !(fstype.starts_with("fuse") && dead) {
        return Err(MountError::Busy(path.to_path_buf()));
    }
    tracing::warn!(path = %path.display(), fstype, "found a stale mount from a crashed run; clearing it");
    detach(path).map_err(|source| MountError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Makes sure `path` exists, is not mounted (clearing a stale mount) and is empty.
pub fn prepare_mountpoint(path: &Path) -> Result<(), MountError> {
    clear_stale(path)?;
    std::fs::create_dir_all(path).map_err(|source| MountError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut entries = std::fs::read_dir(path).map_err(|source| MountError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if entries.next().is_some() {
        return Err(MountError::NotEmpty(path.to_path_buf()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_fields() {
        assert_eq!(unescape("/tmp/a\\040b"), b"/tmp/a b");
        assert_eq!(unescape("/x\\134y"), b"/x\\y");
        assert_eq!(unescape("/plain"), b"/plain");
        assert_eq!(unescape("/end\\04"), b"/end\\04");
    }

    #[test]
    fn root_is_mounted() {
        assert!(mounted_fstype(Path::new("/")).is_some());
        assert!(mounted_fstype(Path::new("/definitely/not/a/mount")).is_none());
    }
}
