//! Version control for a writable path, computed from its upper layer alone.
//!
//! Only the upper layer is walked; the commit is consulted for the paths found there (and the
//! directories they sit in), never walked as a whole, so `status` costs what was changed, not
//! what the repository holds.

pub mod diff;
pub mod status;

/// Errors of status, diff, commit and reset.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The upper layer could not be read.
    #[error("upper layer: {0}")]
    Io(#[from] std::io::Error),
    /// The commit could not be read.
    #[error("repository: {0}")]
    Lower(String),
}

impl From<crate::dicfuse::DicError> for ManagerError {
    fn from(e: crate::dicfuse::DicError) -> Self {
        ManagerError::Lower(e.to_string())
    }
}

impl From<crate::store::StoreError> for ManagerError {
    fn from(e: crate::store::StoreError) -> Self {
        ManagerError::Lower(e.to_string())
    }
}
