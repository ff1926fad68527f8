//! The error of status, diff, commit and reset, and how a full disk is told apart: below every
//! other file of `vcs`, which all report through it.

/// Errors of status, diff, commit and reset.
#[derive(Debug, thiserror::Error)]
pub enum VcsError {
    /// The upper layer could not be read.
    #[error("upper layer: {0}")]
    Io(#[from] std::io::Error),
    /// An entry of the upper layer could not be read.
    #[error("upper layer: reading {path}: {source}")]
    Read {
        /// Repository path (quoted as git does).
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file kept changing while it was read, every time it was read again.
    #[error("{0} kept changing while it was read; try again once it is still")]
    Unstable(String),
    /// The staging repository's disk is full (nothing of the failed commit is left on it).
    #[error("no space left: {0}")]
    NoSpace(String),
    /// The commit could not be read.
    #[error("repository: {0}")]
    Lower(String),
}

/// Whether `e` is a full disk or quota: by errno, or by kind when a path was wrapped around
/// it (as tempfile does, losing the errno).
pub(super) fn is_no_space(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
        || matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}

impl From<crate::dicfuse::DicError> for VcsError {
    fn from(e: crate::dicfuse::DicError) -> Self {
        VcsError::Lower(e.to_string())
    }
}

impl From<crate::store::StoreError> for VcsError {
    fn from(e: crate::store::StoreError) -> Self {
        VcsError::Lower(e.to_string())
    }
}
