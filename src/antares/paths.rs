//! Path rules for Antares requests.
//!
//! A mountpoint or upper directory given in a request is taken apart lexically first: it must be
//! absolute, hold no NUL and no `..`; `.` and repeated `/` are dropped. Only then is the disk
//! consulted: the deepest existing ancestor is canonicalised (so a symlink cannot carry the path
//! out of its root) and the result must lie strictly inside the configured root.

use std::ffi::OsStr;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a path was refused before anything touched the disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not absolute.
    #[error("must be an absolute path")]
    Relative,
    /// Holds `..`.
    #[error("`..` is not allowed")]
    DotDot,
    /// Holds a NUL byte.
    #[error("holds a NUL byte")]
    Nul,
    /// Is `/` or empty.
    #[error("must name a directory below /")]
    Root,
}

/// The lexically cleaned form of an absolute path: no `.`, no repeated `/`; `..` and NUL refused.
pub fn clean_abs(raw: &str) -> Result<PathBuf, PathError> {
    if raw.contains('\0') {
        return Err(PathError::Nul);
    }
    let p = Path::new(raw);
    if !p.is_absolute() {
        return Err(PathError::Relative);
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(PathError::DotDot),
            Component::Normal(n) => out.push(n),
            Component::Prefix(_) => return Err(PathError::Relative),
        }
    }
    if out == Path::new("/") {
        return Err(PathError::Root);
    }
    Ok(out)
}

/// Whether `p` lies strictly below `root` (both clean and absolute).
pub fn strictly_inside(root: &Path, p: &Path) -> bool {
    p != root && p.starts_with(root)
}

/// Whether one of `a` and `b` is, or lies inside, the other.
pub fn overlap(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// `p` with its deepest existing ancestor canonicalised and the rest appended, so that symlinks
/// on the way are resolved even when the last components do not exist yet.
pub fn canonical_prefix(p: &Path) -> io::Result<PathBuf> {
    let mut rest: Vec<&OsStr> = Vec::new();
    let mut cur = p;
    loop {
        match std::fs::canonicalize(cur) {
            Ok(mut c) => {
                for part in rest.iter().rev() {
                    c.push(part);
                }
                return Ok(c);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (cur.parent(), cur.file_name()) else {
                    return Err(e);
                };
                rest.push(name);
                cur = parent;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The scratch directory of an overlay whose upper layer is `upper`: a hidden sibling, so it is
/// on the same filesystem (copy-up renames from it into the upper layer).
pub fn work_dir_for(upper: &Path) -> PathBuf {
    let name = upper
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    upper.with_file_name(format!(".{name}.work"))
}

/// A job id: 1 to 128 printable ASCII characters, no `/`, `\` or space (it appears in URLs).
pub fn valid_job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\' && b != b'%' && b != b'?')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_refuses_dotdot_relative_and_root() {
        assert_eq!(clean_abs("/a//b/./c/").unwrap(), PathBuf::from("/a/b/c"));
        assert_eq!(clean_abs("/a/../b"), Err(PathError::DotDot));
        assert_eq!(clean_abs("/a/.."), Err(PathError::DotDot));
        assert_eq!(clean_abs("a/b"), Err(PathError::Relative));
        assert_eq!(clean_abs(""), Err(PathError::Relative));
        assert_eq!(clean_abs("/"), Err(PathError::Root));
        assert_eq!(clean_abs("/./"), Err(PathError::Root));
        assert_eq!(clean_abs("/a\0b"), Err(PathError::Nul));
    }

    #[test]
    fn inside_and_overlap() {
        let r = Path::new("/srv/mnt");
        assert!(strictly_inside(r, Path::new("/srv/mnt/x")));
        assert!(!strictly_inside(r, Path::new("/srv/mnt")));
        assert!(!strictly_inside(r, Path::new("/srv/mntx")));
        assert!(!strictly_inside(r, Path::new("/srv")));
        assert!(overlap(Path::new("/a/b"), Path::new("/a")));
        assert!(overlap(Path::new("/a"), Path::new("/a/b")));
        assert!(!overlap(Path::new("/a/b"), Path::new("/a/c")));
        assert!(!overlap(Path::new("/ab"), Path::new("/a")));
    }

    #[test]
    fn canonical_prefix_resolves_symlinks_of_existing_part() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, d.path().join("link")).unwrap();
        let got = canonical_prefix(&d.path().join("link/new/deeper")).unwrap();
        assert_eq!(got, real.canonicalize().unwrap().join("new/deeper"));
        // A symlink leading out of a root is seen for what it is.
        std::os::unix::fs::symlink("/etc", d.path().join("out")).unwrap();
        let got = canonical_prefix(&d.path().join("out/x")).unwrap();
        assert!(got.starts_with("/etc"));
    }

    #[test]
    fn ids_and_work_dirs() {
        assert!(valid_job_id("ci-1234.build:7"));
        assert!(!valid_job_id(""));
        assert!(!valid_job_id("a/b"));
        assert!(!valid_job_id("a b"));
        assert!(!valid_job_id(&"x".repeat(129)));
        assert_eq!(
            work_dir_for(Path::new("/u/abc")),
            PathBuf::from("/u/.abc.work")
        );
    }
}
