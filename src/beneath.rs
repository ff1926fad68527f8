//! Reaching and removing entries of a directory that users fill (an upper, CL or work layer)
//! without ever following a symlink.
//!
//! The daemon (often root) acts in these directories on its own behalf: reset, prune after a
//! push, CL rebuilds, Antares deletes. A user controls what they hold, so a path is never joined
//! and handed to the kernel whole: it is resolved from an fd of the layer root with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, and trees are removed entry by entry from
//! directory fds (`unlinkat`), so a symlink is only ever removed itself, never gone through.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;

/// How every user-made path is resolved: inside the starting directory, through no symlink.
pub const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// What a removal found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// The entry (with everything below it) is gone.
    Removed,
    /// Nothing was there.
    Absent,
    /// The path goes through a symlink (or a non-directory): what it names is not in this
    /// directory, and nothing was touched.
    NotBeneath,
}

/// Opens `rel` (`""` is `root` itself) beneath `root` with `flags` (close-on-exec added),
/// following no symlink on the way or at the end.
pub fn open(root: impl AsFd, rel: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let rel: &Path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(root, rel, flags | OFlags::CLOEXEC, Mode::empty(), RESOLVE)
}

/// Opens the directory at `path`, a place the daemon chose itself (a layer root): symlinks
/// among its ancestors are the administrator's, but the last component must not be one.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `/` opened (`O_PATH`), and the absolute `path` relative to it.
fn from_slash(path: &Path) -> io::Result<(OwnedFd, &Path)> {
    let rel = path.strip_prefix("/").map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not an absolute path", path.display()),
        )
    })?;
    let slash = rustix::fs::openat(
        CWD,
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok((slash, rel))
}

/// Opens the directory at the absolute `path` (`O_PATH`) through no symlink at all, or fails
/// (ELOOP when one is on the way); a missing directory is fine (`Ok(None)`).
pub fn open_abs(path: &Path) -> io::Result<Option<OwnedFd>> {
    let (slash, rel) = from_slash(path)?;
    match open(&slash, rel, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The names in directory `dir` (without `.` and `..`), with their `d_type`.
pub fn names(dir: impl AsFd) -> io::Result<Vec<(OsString, FileType)>> {
    let fd = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = rustix::fs::Dir::new(fd)?;
    let mut out = Vec::new();
    while let Some(e) = d.read() {
        let e = e?;
        let name = e.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push((OsStr::from_bytes(name).to_os_string(), e.file_type()));
        }
    }
    Ok(out)
}

/// Splits a relative path into its parent and last name; `None` when it has `..`, `.`, a root,
/// or no name.
fn split(rel: &Path) -> Option<(&Path, &OsStr)> {
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    Some((rel.parent()?, rel.file_name()?))
}

/// Removes `rel` beneath `root` (see [`remove_entry`]). A path that leaves `root`, or goes
/// through a symlink or a file, names nothing in it: [`Removal::NotBeneath`].
pub fn remove(root: impl AsFd, rel: &Path) -> io::Result<Removal> {
    let Some((parent, name)) = split(rel) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a plain relative path", rel.display()),
        ));
    };
    match open(root, parent, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(dir) => remove_entry(&dir, name),
        Err(Errno::NOENT) => Ok(Removal::Absent),
        Err(Errno::LOOP | Errno::NOTDIR | Errno::XDEV) => Ok(Removal::NotBeneath),
        Err(e) => Err(e.into()),
    }
}

/// Opens the parent of the absolute `path`, which lies inside `root` (a directory the daemon
/// chose): `root` is opened as it is, the rest is resolved beneath it without symlinks. A
/// `path` outside `root` is resolved from `/` through no symlink at all. `Err(removal)` when
/// there is nothing to act on.
fn parent_under<'p>(
    root: &Path,
    path: &'p Path,
) -> io::Result<std::result::Result<(OwnedFd, &'p OsStr), Removal>> {
    let (start, rel) = match path.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => match open_dir(root) {
            Ok(r) => (r, rel),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Err(Removal::Absent)),
            Err(e) => return Err(e),
        },
        _ => from_slash(path)?,
    };
    let Some((parent, name)) = split(rel) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a plain path", path.display()),
        ));
    };
    match open(&start, parent, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(dir) => Ok(Ok((dir, name))),
        Err(Errno::NOENT) => Ok(Err(Removal::Absent)),
        Err(Errno::LOOP | Errno::NOTDIR | Errno::XDEV) => Ok(Err(Removal::NotBeneath)),
        Err(e) => Err(e.into()),
    }
}

/// Removes the tree at the absolute `path` inside `root` (see `parent_under` for how it is
/// reached, and [`remove_entry`]).
pub fn remove_under(root: &Path, path: &Path) -> io::Result<Removal> {
    match parent_under(root, path)? {
        Ok((dir, name)) => remove_entry(&dir, name),
        Err(r) => Ok(r),
    }
}

/// Removes the empty directory at the absolute `path` inside `root`, reached as by
/// [`remove_under`].
pub fn rmdir_under(root: &Path, path: &Path) -> io::Result<Removal> {
    match parent_under(root, path)? {
        Ok((dir, name)) => match rustix::fs::unlinkat(&dir, name, AtFlags::REMOVEDIR) {
            Ok(()) => Ok(Removal::Removed),
            Err(Errno::NOENT) => Ok(Removal::Absent),
            Err(e) => Err(e.into()),
        },
        Err(r) => Ok(r),
    }
}

/// Removes `name` in `dir`: a directory with everything in it, anything else (a symlink too)
/// itself. Nothing is followed, so nothing outside `dir` is touched.
pub fn remove_entry(dir: impl AsFd, name: &OsStr) -> io::Result<Removal> {
    let dir = dir.as_fd();
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(Removal::Absent),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let sub = rustix::fs::openat(
            dir,
            name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        empty(&sub)?;
        rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    } else {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
    }
    Ok(Removal::Removed)
}

/// Removes everything in directory `dir`.
pub fn empty(dir: impl AsFd) -> io::Result<()> {
    let dir = dir.as_fd();
    for (name, kind) in names(dir)? {
        // d_type saves a stat for everything but directories (and filesystems without it).
        let removed = match kind {
            FileType::Directory | FileType::Unknown => remove_entry(dir, &name).map(|_| ()),
            _ => match rustix::fs::unlinkat(dir, &name, AtFlags::empty()) {
                // Replaced by a directory since it was listed.
                Err(Errno::ISDIR) => remove_entry(dir, &name).map(|_| ()),
                Err(Errno::NOENT) => Ok(()),
                r => r.map_err(io::Error::from),
            },
        };
        removed?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A layer with a symlink to a victim directory outside it.
    fn layer_and_victim() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let layer = t.path().join("layer");
        let victim = t.path().join("victim");
        std::fs::create_dir_all(victim.join("sub")).unwrap();
        std::fs::write(victim.join("f"), b"keep").unwrap();
        std::fs::write(victim.join("sub/g"), b"keep").unwrap();
        std::fs::create_dir_all(layer.join("d/e")).unwrap();
        std::fs::write(layer.join("d/e/x"), b"x").unwrap();
        symlink(&victim, layer.join("lnk")).unwrap();
        symlink(&victim, layer.join("d/e/lnk")).unwrap();
        (t, layer, victim)
    }

    fn victim_intact(victim: &Path) {
        assert_eq!(std::fs::read(victim.join("f")).unwrap(), b"keep");
        assert_eq!(std::fs::read(victim.join("sub/g")).unwrap(), b"keep");
    }

    #[test]
    fn paths_through_symlinks_remove_nothing() {
        let (_t, layer, victim) = layer_and_victim();
        let root = open_dir(&layer).unwrap();
        assert_eq!(
            remove(&root, Path::new("lnk/f")).unwrap(),
            Removal::NotBeneath
        );
        assert_eq!(
            remove(&root, Path::new("lnk/sub")).unwrap(),
            Removal::NotBeneath
        );
        assert!(remove(&root, Path::new("../victim/f")).is_err());
        victim_intact(&victim);
        assert_eq!(remove(&root, Path::new("nope")).unwrap(), Removal::Absent);
    }

    #[test]
    fn trees_go_with_their_symlinks_but_not_what_they_point_to() {
        let (_t, layer, victim) = layer_and_victim();
        let root = open_dir(&layer).unwrap();
        assert_eq!(remove(&root, Path::new("d")).unwrap(), Removal::Removed);
        assert_eq!(remove(&root, Path::new("lnk")).unwrap(), Removal::Removed);
        assert!(std::fs::read_dir(&layer).unwrap().next().is_none());
        victim_intact(&victim);
    }

    #[test]
    fn remove_under_refuses_a_swapped_in_symlink() {
        let (t, layer, victim) = layer_and_victim();
        let moved = t.path().join("moved");
        std::fs::rename(&layer, &moved).unwrap();
        // The layer's place now leads to the victim's parent.
        symlink(t.path(), &layer).unwrap();
        assert_eq!(
            remove_under(Path::new("/nonexistent-root"), &layer.join("victim")).unwrap(),
            Removal::NotBeneath
        );
        victim_intact(&victim);
        assert_eq!(
            remove_under(t.path(), &moved.join("d")).unwrap(),
            Removal::Removed
        );
    }
}
