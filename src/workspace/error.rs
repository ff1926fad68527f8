//! Why a workspace request was refused (the HTTP edge maps each to a status and code).

use crate::overlay::assemble::AssembleError;

/// Why a mount request was refused.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The path is not a clean repository path.
    #[error("bad path {0:?}: {1}")]
    BadPath(String, &'static str),
    /// The repository has no such directory.
    #[error("{0:?} does not exist in the repository")]
    NotFound(String),
    /// The path is a file.
    #[error("{0:?} is not a directory")]
    NotDir(String),
    /// The path goes through a file or a symlink of the repository (the second path).
    #[error("{0:?} goes through {1:?}, which is not a directory")]
    Through(String, String),
    /// The path is mounted already.
    #[error("{0:?} is already mounted")]
    AlreadyMounted(String),
    /// The path is inside, or holds, a mounted path.
    #[error("{0:?} overlaps the mounted path {1:?}")]
    Overlaps(String, String),
    /// The path is not mounted.
    #[error("{0:?} is not mounted")]
    NotMounted(String),
    /// Something under the mount is in use (open files, mappings, working directories).
    #[error("{0:?} is in use by {1}; close its files first")]
    Busy(String, String),
    /// The change list could not be read or applied.
    #[error("change list {0:?}: {1}")]
    Cl(String, String),
    /// The change list changes nothing under the path (the second field).
    #[error("change list {0:?} changes nothing under {1:?} (its files are elsewhere in the repository, or it has none)")]
    ClNothingHere(String, String),
    /// The store or the layer directories failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Each refusal of the assembly as the workspace has always answered it.
impl From<AssembleError> for MountError {
    fn from(e: AssembleError) -> Self {
        match e {
            AssembleError::BadPath(p, why) => MountError::BadPath(p, why),
            AssembleError::BadClName(c) => {
                MountError::BadPath(c, "a CL name is one path-free token")
            }
            AssembleError::NotInRepository(p) => MountError::NotFound(p),
            AssembleError::NotADirectory(p) => MountError::NotDir(p),
            AssembleError::Through { path, through } => MountError::Through(path, through),
            AssembleError::NoSuchCl(cl) => MountError::NotFound(format!("change list {cl}")),
            AssembleError::Cl { cl, message } => MountError::Cl(cl, message),
            AssembleError::ClNothingHere { cl, path } => MountError::ClNothingHere(cl, path),
            AssembleError::Repository(m) => MountError::Internal(m),
            AssembleError::Layer(e) => MountError::Internal(e.to_string()),
        }
    }
}
