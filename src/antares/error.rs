//! The errors of Antares requests, each with its HTTP status and stable code.

use std::path::PathBuf;

/// Why an Antares request failed; [`AntaresError::status`] gives its HTTP status and code.
#[derive(Debug, thiserror::Error)]
pub enum AntaresError {
    /// A path that breaks the lexical rules.
    #[error("bad {field} {value:?}: {reason}")]
    BadPath {
        /// Which request field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A path outside its configured root.
    #[error("{field} {path} is outside {root} (antares.allow_other_roots is off)")]
    OutsideRoot {
        /// Which request field.
        field: &'static str,
        /// The path, canonical.
        path: PathBuf,
        /// The root it must be inside.
        root: PathBuf,
    },
    /// Any other malformed request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The repository has no such path.
    #[error("{0:?} does not exist in the repository")]
    NotInRepository(String),
    /// The repository path is a file.
    #[error("{0:?} is not a directory in the repository")]
    NotADirectory(String),
    /// The repository path goes through a file or a symlink.
    #[error("{path:?} goes through {through:?}, which is not a directory in the repository")]
    Through {
        /// The requested path.
        path: String,
        /// The file or symlink on its way.
        through: String,
    },
    /// The change list does not exist.
    #[error("change list {0:?} does not exist")]
    NoSuchCl(String),
    /// No mount with that id or job.
    #[error("no mount {0}")]
    NotFound(String),
    /// The job has a mount of something else.
    #[error("job {job_id} already has mount {mount_id} of path {path:?} (cl {cl:?}, readonly {readonly})")]
    JobConflict {
        /// The job.
        job_id: String,
        /// Its mount.
        mount_id: String,
        /// What that mount shows.
        path: String,
        /// With that CL.
        cl: Option<String>,
        /// Read-only or not.
        readonly: bool,
    },
    /// The path is, holds or lies inside another mount's mountpoint or upper layer.
    #[error("{field} {path} overlaps mount {mount_id}")]
    InUse {
        /// Which request field.
        field: &'static str,
        /// The path.
        path: PathBuf,
        /// The other mount.
        mount_id: String,
    },
    /// The mountpoint has files in it.
    #[error("mountpoint {0} is not empty")]
    NotEmpty(PathBuf),
    /// Something is mounted there already.
    #[error("{0} is already a mount point")]
    MountedOver(PathBuf),
    /// A path that exists and is not a directory.
    #[error("{field} {path} exists and is not a directory")]
    NotADir {
        /// Which request field.
        field: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// `max_mounts` reached.
    #[error("at most {0} mounts at once (antares.max_mounts)")]
    TooMany(usize),
    /// The daemon is stopping.
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// The change list could not be fetched or laid out.
    #[error("change list {cl:?}: {message}")]
    Cl {
        /// The CL.
        cl: String,
        /// Why.
        message: String,
    },
    /// The change list changes nothing under the requested path.
    #[error("change list {cl:?} changes nothing under {path:?} (its files are elsewhere in the repository, or it has none)")]
    ClNothingHere {
        /// The CL.
        cl: String,
        /// The repository path.
        path: String,
    },
    /// The repository could not be read.
    #[error("the repository could not be read: {0}")]
    Repository(String),
    /// The kernel or the layer directories refused.
    #[error("mounting at {path} failed: {message}")]
    Mount {
        /// The mountpoint.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Files of the upper layer kept changing through every read of them.
    #[error("{0} kept changing while it was read; try again once it is still")]
    Changing(String),
    /// The mount is not serving (being made or deleted, failed), so its layers stay as they are.
    #[error("mount {mount_id} is not serving (state {state}); its CL layer cannot be swapped")]
    NotServing {
        /// The mount.
        mount_id: String,
        /// Its state.
        state: String,
    },
    /// Saving the state or cleaning up failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AntaresError {
    /// The HTTP status and the stable code of the error.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            AntaresError::BadPath { .. } => (400, "BAD_PATH"),
            AntaresError::OutsideRoot { .. } => (400, "OUTSIDE_ROOT"),
            AntaresError::BadRequest(_) => (400, "BAD_REQUEST"),
            AntaresError::NotInRepository(_) => (400, "NOT_IN_REPOSITORY"),
            AntaresError::NotADirectory(_) | AntaresError::Through { .. } => {
                (400, "NOT_A_DIRECTORY")
            }
            AntaresError::NoSuchCl(_) => (400, "NO_SUCH_CL"),
            AntaresError::NotADir { .. } => (400, "NOT_A_DIRECTORY"),
            AntaresError::NotFound(_) => (404, "NOT_FOUND"),
            AntaresError::JobConflict { .. } => (409, "JOB_CONFLICT"),
            AntaresError::InUse { .. } => (409, "IN_USE"),
            AntaresError::NotEmpty(_) => (409, "NOT_EMPTY"),
            AntaresError::MountedOver(_) => (409, "ALREADY_MOUNTED"),
            AntaresError::TooMany(_) => (429, "TOO_MANY_MOUNTS"),
            AntaresError::Changing(_) => (409, "CHANGED_DURING_READ"),
            AntaresError::ShuttingDown => (503, "SHUTTING_DOWN"),
            AntaresError::Cl { .. } => (502, "CL_UNAVAILABLE"),
            AntaresError::ClNothingHere { .. } => (400, "CL_NOT_UNDER_PATH"),
            AntaresError::Repository(_) => (502, "REPOSITORY_UNAVAILABLE"),
            AntaresError::Mount { .. } => (500, "MOUNT_FAILED"),
            AntaresError::NotServing { .. } => (409, "NOT_SERVING"),
            AntaresError::Internal(_) => (500, "INTERNAL"),
        }
    }
}

/// A failure of ours (state file, cleanup), as an error for the caller.
pub(crate) fn internal(e: impl std::fmt::Display) -> AntaresError {
    AntaresError::Internal(e.to_string())
}
