//! What a mount made on disk, and removing it: never through a symlink, never through a mount.

use std::path::{Path, PathBuf};

use super::{paths, MountRecord};
use crate::beneath::{self, Removal};
use crate::fuse::mount;

/// Makes directory `p` (and its parents) with `mode`.
pub(super) fn make_dir(p: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(p)
}

/// Removes the tree at `p`, a layer directory inside `root` (or, with `allow_other_roots`, a
/// requested one anywhere), without following any symlink: a job may have put one on the way.
pub(super) fn remove_tree(root: &Path, p: &Path) -> std::io::Result<()> {
    if beneath::remove_under(root, p)? == Removal::NotBeneath {
        tracing::warn!(path = %p.display(), "a symlink or a file now stands on the way to this directory; it is left alone");
    }
    Ok(())
}

/// Removes CL layer `cl` (in `root`) and what a build or a swap leaves beside it (`.new`,
/// `.old`, `.done`).
pub(super) fn remove_cl_dirs(root: &Path, cl: &Path) -> std::io::Result<()> {
    remove_tree(root, cl)?;
    for ext in ["new", "old", "done"] {
        remove_tree(root, &cl.with_extension(ext))?;
    }
    Ok(())
}

/// The directories mounts are made in, which the daemon chose (canonical).
pub(super) struct Roots {
    /// Mountpoints.
    pub mount: PathBuf,
    /// Upper layers.
    pub upper: PathBuf,
    /// CL layers.
    pub cl: PathBuf,
}

/// Removes what a mount made on disk: its scratch directory, its upper layer when it was made
/// for it, and its mountpoint when it was made for it (only if empty: never delete through a
/// mount).
pub(super) fn remove_layers(rec: &MountRecord, roots: &Roots) -> std::io::Result<()> {
    if let Some(u) = &rec.upper_dir {
        let mut doomed = vec![paths::work_dir_for(u)];
        if rec.owns_upper {
            doomed.push(u.clone());
        }
        for p in doomed {
            if mount::mounted_fstype(&p).is_some() {
                return Err(std::io::Error::other(format!(
                    "{} is a mount point",
                    p.display()
                )));
            }
            remove_tree(&roots.upper, &p)?;
        }
    }
    if rec.owns_mountpoint && mount::mounted_fstype(&rec.mountpoint).is_none() {
        if let Err(e) = beneath::rmdir_under(&roots.mount, &rec.mountpoint) {
            tracing::warn!(mountpoint = %rec.mountpoint.display(), error = %e, "mountpoint kept");
        }
    }
    Ok(())
}
