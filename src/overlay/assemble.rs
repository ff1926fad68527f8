//! Assembling a writable overlay: the one place the workspace and Antares make one.
//!
//! An overlay is made of a directory of the commit ([`resolve_dir`]: it exists and is a
//! directory, reached through no file or symlink of the repository), optionally a CL layer
//! ([`ClLayer`]), the caller's upper and work directories, and the inode [`Slot`] it owns.
//!
//! Promises:
//! - One rule for repository paths ([`normalize`]) and one for CL names ([`check_cl_name`]).
//! - A CL layer is built aside (`<layer>.new`) and only then swapped into place with `renameat`
//!   from its parent directory's fd; what stood there before (which a change list made, symlinks
//!   too) is removed entry by entry without following anything ([`beneath`]). A half-built layer
//!   is never used.
//! - Where a CL layer's changes come from is the caller's policy ([`ClSource`]); the remote's
//!   refusals and failures are typed ([`AssembleError::NoSuchCl`], [`AssembleError::Cl`]) so that
//!   each caller keeps its own answers.
//! - A change list that changes nothing under the path is refused
//!   ([`AssembleError::ClNothingHere`]) before any layer directory is touched, not laid as an
//!   empty layer.
//! - Nothing is named or placed here: callers pass every directory and the slot.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::{Lower, OverlayFs};
use crate::beneath;
use crate::dicfuse::{Dicfuse, PathLookup};
use crate::ino::Slot;
use crate::remote::{ClChange, RemoteError};

/// Why an overlay could not be assembled. Each caller maps the variants onto its own errors.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// The repository path is not a clean one (the reason is the second field).
    #[error("bad path {0:?}: {1}")]
    BadPath(String, &'static str),
    /// The CL name is not one path-free token.
    #[error("CL name {0:?}: a CL name is one path-free token")]
    BadClName(String),
    /// The repository has no such path.
    #[error("{0:?} does not exist in the repository")]
    NotInRepository(String),
    /// The repository path is a file or a symlink.
    #[error("{0:?} is not a directory")]
    NotADirectory(String),
    /// The repository path goes through a file or a symlink of the repository.
    #[error("{path:?} goes through {through:?}, which is not a directory")]
    Through {
        /// The requested path.
        path: String,
        /// The file or symlink on its way.
        through: String,
    },
    /// The read-only view failed to answer.
    #[error("{0}")]
    Repository(String),
    /// The remote does not have the change list.
    #[error("change list {0:?} does not exist")]
    NoSuchCl(String),
    /// The change list changes nothing under the path: its files are elsewhere, or it has none.
    /// Nothing is built.
    #[error("change list {cl:?} changes nothing under {path:?} (its files are elsewhere in the repository, or it has none)")]
    ClNothingHere {
        /// The change list.
        cl: String,
        /// The repository path asked for (`""`: the root).
        path: String,
    },
    /// The change list could not be fetched or written into its layer.
    #[error("change list {cl:?}: {message}")]
    Cl {
        /// The change list.
        cl: String,
        /// What failed.
        message: String,
    },
    /// A layer directory or the overlay on them failed.
    #[error("{0}")]
    Layer(#[from] std::io::Error),
}

/// Normalises a repository path: no `.`/`..`, no empty components, no NUL; `/` is the root.
pub fn normalize(path: &str) -> Result<String, AssembleError> {
    if path.contains('\0') {
        return Err(AssembleError::BadPath(path.into(), "holds NUL"));
    }
    let mut parts = Vec::new();
    for p in path.split('/') {
        match p {
            "" => continue,
            "." | ".." => {
                return Err(AssembleError::BadPath(
                    path.into(),
                    "`.` and `..` are not allowed",
                ))
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Checks a CL name (trimmed by the caller): 1 to 256 bytes, no `/`, no `..`, no whitespace or
/// control character. It names a layer directory and goes into the remote's URLs.
pub fn check_cl_name(cl: &str) -> Result<(), AssembleError> {
    let ok = !cl.is_empty()
        && cl.len() <= 256
        && !cl.contains('/')
        && !cl.contains("..")
        && !cl.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(AssembleError::BadClName(cl.to_string()))
    }
}

/// A directory of the commit, resolved and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoDir {
    /// Its Dicfuse inode.
    pub ino: u64,
    /// The directory holding it (the root is its own parent).
    pub parent: u64,
    /// Its name in the parent.
    pub name: Vec<u8>,
}

/// The directory at the normalised repository path `path`.
pub async fn resolve_dir(dic: &Dicfuse, path: &str) -> Result<RepoDir, AssembleError> {
    let ino = match dic.resolve_path(path).await {
        Ok(PathLookup::Found(ino)) => ino,
        Ok(PathLookup::Missing) => return Err(AssembleError::NotInRepository(path.into())),
        Ok(PathLookup::NotADirectory(through)) => {
            return Err(AssembleError::Through {
                path: path.into(),
                through,
            })
        }
        Err(e) => return Err(AssembleError::Repository(e.to_string())),
    };
    let node = dic
        .lower_node(ino)
        .map_err(|e| AssembleError::Repository(e.to_string()))?;
    if !node.kind.is_dir() {
        return Err(AssembleError::NotADirectory(path.to_string()));
    }
    Ok(RepoDir {
        ino,
        parent: node.parent,
        name: node.name,
    })
}

/// The changes of change list `cl` against the commit `dic` shows, for a layer at repository
/// path `path`.
pub async fn fetch_cl(dic: &Dicfuse, cl: &str, path: &str) -> Result<Vec<ClChange>, AssembleError> {
    let commit = dic.commit();
    match dic.store().remote().cl_changes(cl, &commit, path).await {
        Ok(c) => Ok(c),
        Err(RemoteError::NotFound { .. }) => Err(AssembleError::NoSuchCl(cl.to_string())),
        Err(e) => Err(AssembleError::Cl {
            cl: cl.to_string(),
            message: e.to_string(),
        }),
    }
}

/// Refuses a change list that changes nothing under repository path `path`: a layer of it would
/// be empty, and the mount would silently show the commit alone.
pub fn check_cl_here(cl: &str, changes: &[ClChange], path: &str) -> Result<(), AssembleError> {
    if changes.iter().any(|c| super::cl::under(c, path).is_some()) {
        Ok(())
    } else {
        Err(AssembleError::ClNothingHere {
            cl: cl.to_string(),
            path: path.to_string(),
        })
    }
}

/// Where a CL layer's changes come from.
#[derive(Debug)]
pub enum ClSource {
    /// Changes fetched already (with [`fetch_cl`]): the layer is built from them.
    Fetched(Vec<ClChange>),
    /// Fetched now and built. When the remote cannot be reached, the layer built before is used
    /// if it was built from this same CL (the marker `<layer>.done` holds the CL's name).
    FetchOrReuse,
    /// The layer built before is used when there is one; otherwise fetched now and built.
    BuiltOrFetch,
}

/// A change list laid between the upper layer and the commit's directory.
#[derive(Debug)]
pub struct ClLayer<'a> {
    /// The change list's name (checked with [`check_cl_name`]).
    pub name: &'a str,
    /// The layer directory; its parent is a directory only the daemon writes.
    pub dir: &'a Path,
    /// Where its changes come from.
    pub source: ClSource,
}

/// Everything a writable overlay is made of.
#[derive(Debug)]
pub struct Assembly<'a> {
    /// The repository path shown (the CL's changes are taken under it, relative to it).
    pub path: &'a str,
    /// The commit's directory at `path`.
    pub dir: &'a RepoDir,
    /// A change list under the upper layer.
    pub cl: Option<ClLayer<'a>>,
    /// The upper layer (made by the overlay when missing).
    pub upper: &'a Path,
    /// Scratch space on the upper layer's filesystem.
    pub work: &'a Path,
    /// The inode range the overlay owns.
    pub slot: Slot,
}

/// Assembles the overlay `a` describes over `dic`, building its CL layer first when it has one.
pub async fn assemble(dic: &Arc<Dicfuse>, a: Assembly<'_>) -> Result<OverlayFs, AssembleError> {
    let (view, root) = match &a.cl {
        None => (Lower::plain(dic.clone()), a.dir.ino),
        Some(cl) => {
            cl_layer(dic, a.path, cl).await?;
            Lower::with_cl(dic.clone(), Some(a.dir.ino), cl.dir, dic.owner())?
        }
    };
    Ok(OverlayFs::new(a.slot, view, Some(root), a.upper, a.work)?)
}

/// [`assemble`], over a lower whose CL layer may be swapped while it serves
/// ([`OverlayFs::swap_cl`]), even when `a` lays none now.
pub async fn assemble_swappable(
    dic: &Arc<Dicfuse>,
    a: Assembly<'_>,
) -> Result<OverlayFs, AssembleError> {
    if let Some(cl) = &a.cl {
        cl_layer(dic, a.path, cl).await?;
    }
    let dir = a.cl.as_ref().map(|cl| cl.dir);
    let (view, root) = Lower::layered(dic.clone(), Some(a.dir.ino), dir, dic.owner())?;
    Ok(OverlayFs::new(a.slot, view, Some(root), a.upper, a.work)?)
}

/// Builds the layer of change list `cl` (its `changes`, checked with [`check_cl_here`]) for
/// repository path `path` beside layer directory `dir`, at `<dir>.new`, for a live overlay to
/// swap to; returns where. The layer at `dir`, which the overlay may be showing, is untouched.
pub async fn build_beside(
    dic: &Dicfuse,
    path: &str,
    cl: &str,
    dir: &Path,
    changes: &[ClChange],
) -> Result<PathBuf, AssembleError> {
    check_cl_here(cl, changes, path)?;
    let place = Place::open(dir)?;
    let layer = ClLayer {
        name: cl,
        dir,
        source: ClSource::BuiltOrFetch,
    };
    build_aside(dic, path, &layer, changes, &place).await?;
    Ok(place.parent.join(&place.aside))
}

/// Once a live overlay no longer shows the layer at `dir` (it swapped to the one built beside
/// it, or dropped it): moves it out of the way, to `<dir>.old`, which goes. Until the next
/// [`promote_beside`], `dir` holds no layer, so a restart builds it again from the CL it records.
pub fn retire_layer(dir: &Path) -> std::io::Result<()> {
    let place = Place::open(dir)?;
    let old = {
        let mut n = place.layer.clone();
        n.push(".old");
        n
    };
    beneath::remove_entry(&place.fd, &old)?;
    if place.built() {
        rustix::fs::renameat(
            &place.fd,
            place.layer.as_os_str(),
            &place.fd,
            old.as_os_str(),
        )
        .map_err(std::io::Error::from)?;
    }
    beneath::remove_entry(&place.fd, &old)?;
    Ok(())
}

/// Moves the layer built beside `dir` ([`build_beside`]) into its place (after
/// [`retire_layer`]; a live overlay showing it keeps showing it through the move).
pub fn promote_beside(dir: &Path) -> std::io::Result<()> {
    let place = Place::open(dir)?;
    rustix::fs::renameat(
        &place.fd,
        place.aside.as_os_str(),
        &place.fd,
        place.layer.as_os_str(),
    )
    .map_err(std::io::Error::from)
}

/// Where a CL layer lives: its parent directory (open) and its entry names there.
struct Place {
    parent: PathBuf,
    fd: OwnedFd,
    /// The layer.
    layer: OsString,
    /// Where it is built before it is swapped in.
    aside: OsString,
    /// Which CL it was built from (see [`ClSource::FetchOrReuse`]).
    marker: OsString,
}

impl Place {
    fn open(dir: &Path) -> std::io::Result<Place> {
        let (Some(parent), Some(layer)) = (dir.parent(), dir.file_name()) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{}: not a layer directory", dir.display()),
            ));
        };
        let with = |suffix: &str| {
            let mut n = layer.to_os_string();
            n.push(suffix);
            n
        };
        Ok(Place {
            fd: beneath::open_dir(parent)?,
            parent: parent.to_path_buf(),
            layer: layer.to_os_string(),
            aside: with(".new"),
            marker: with(".done"),
        })
    }

    /// Whether a directory (not a symlink to one) stands at the layer's place.
    fn built(&self) -> bool {
        rustix::fs::statat(&self.fd, self.layer.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
    }
}

/// Makes sure `cl.dir` holds the layer of `cl.name` for repository path `path`, as its source
/// says.
async fn cl_layer(dic: &Dicfuse, path: &str, cl: &ClLayer<'_>) -> Result<(), AssembleError> {
    let place = Place::open(cl.dir)?;
    let fetched;
    let changes = match &cl.source {
        ClSource::Fetched(changes) => changes,
        ClSource::BuiltOrFetch if place.built() => return Ok(()),
        ClSource::BuiltOrFetch => {
            fetched = fetch_cl(dic, cl.name, path).await?;
            &fetched
        }
        ClSource::FetchOrReuse => match fetch_cl(dic, cl.name, path).await {
            Ok(c) => {
                fetched = c;
                &fetched
            }
            Err(AssembleError::Cl { message, .. })
                if read_marker(&place.fd, &place.marker).as_deref() == Some(cl.name.as_bytes()) =>
            {
                tracing::warn!(
                    path,
                    cl = cl.name,
                    error = message,
                    "remote unreachable; using the CL layer built before"
                );
                return Ok(());
            }
            Err(e) => return Err(e),
        },
    };
    // Before anything is touched: the layer built before (and its marker) stays as it is.
    check_cl_here(cl.name, changes, path)?;
    let marked = matches!(cl.source, ClSource::FetchOrReuse);
    build(dic, path, cl, changes, &place, marked).await
}

/// Builds the layer aside from `changes` and swaps it into place; `marked`: also records which
/// CL it was built from.
async fn build(
    dic: &Dicfuse,
    path: &str,
    cl: &ClLayer<'_>,
    changes: &[ClChange],
    place: &Place,
    marked: bool,
) -> Result<(), AssembleError> {
    let fd = &place.fd;
    let n = build_aside(dic, path, cl, changes, place).await?;
    if marked {
        beneath::remove_entry(fd, &place.marker)?;
    }
    beneath::remove_entry(fd, &place.layer)?;
    rustix::fs::renameat(fd, place.aside.as_os_str(), fd, place.layer.as_os_str())
        .map_err(std::io::Error::from)?;
    if marked {
        write_marker(fd, &place.marker, cl.name)?;
    }
    tracing::info!(path, cl = cl.name, files = n, "CL layer built");
    Ok(())
}

/// Builds the layer from `changes` at its aside name (what stood there goes first); returns
/// how many changes it holds.
async fn build_aside(
    dic: &Dicfuse,
    path: &str,
    cl: &ClLayer<'_>,
    changes: &[ClChange],
    place: &Place,
) -> Result<usize, AssembleError> {
    let fd = &place.fd;
    beneath::remove_entry(fd, &place.aside)?;
    rustix::fs::mkdirat(fd, place.aside.as_os_str(), Mode::from_raw_mode(0o700))
        .map_err(std::io::Error::from)?;
    // Readable by every user of the mount, whatever the daemon's umask.
    let aside = rustix::fs::openat(
        fd,
        place.aside.as_os_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(std::io::Error::from)?;
    rustix::fs::fchmod(&aside, Mode::from_raw_mode(0o755)).map_err(std::io::Error::from)?;
    drop(aside);
    let aside = place.parent.join(&place.aside);
    super::cl::materialize(dic.store(), changes, path, &aside)
        .await
        .map_err(|e| AssembleError::Cl {
            cl: cl.name.to_string(),
            message: e.to_string(),
        })
}

/// The marker's content, if it is a file there.
fn read_marker(parent_fd: &OwnedFd, marker: &OsStr) -> Option<Vec<u8>> {
    use std::io::Read;
    let fd = rustix::fs::openat(
        parent_fd,
        marker,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut v = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut v).ok()?;
    Some(v)
}

fn write_marker(parent_fd: &OwnedFd, marker: &OsStr, cl: &str) -> std::io::Result<()> {
    let fd = rustix::fs::openat(
        parent_fd,
        marker,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    std::fs::File::from(fd).write_all(cl.as_bytes())
}

#[cfg(test)]
mod tests;
