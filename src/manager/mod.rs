//! Version control for a writable path, computed from its upper layer alone.
//!
//! Only the upper layer is walked; the commit is consulted for the paths found there (and the
//! directories they sit in), never walked as a whole, so `status` costs what was changed, not
//! what the repository holds.

pub mod commit;
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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dicfuse::Dicfuse;
use crate::remote::Oid;
use commit::{Author, History};
use status::Change;

/// What a commit made.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CommitOutcome {
    /// The new commit.
    pub commit: String,
    /// Its tree.
    pub tree: String,
    /// Its parent.
    pub parent: String,
    /// Local commits not yet pushed.
    pub ahead: u64,
}

/// Why a commit was not made.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// No change since the base or the last local commit.
    #[error("nothing to commit")]
    NothingToCommit,
    /// An empty message.
    #[error("a commit needs a message")]
    NoMessage,
    /// Reading or writing failed.
    #[error(transparent)]
    Failed(#[from] ManagerError),
}

/// Commits and their history for one workspace.
pub struct Vcs {
    repo: tokio::sync::Mutex<git2::Repository>,
    history: History,
    author: Author,
    dic: Arc<Dicfuse>,
}

impl Vcs {
    /// Opens the staging repository under `store_path`.
    pub fn open(
        dic: Arc<Dicfuse>,
        history: sled::Tree,
        store_path: &Path,
        author: Author,
    ) -> Result<Vcs, ManagerError> {
        Ok(Vcs {
            repo: tokio::sync::Mutex::new(commit::open_staging(store_path)?),
            history: History::new(history),
            author,
            dic,
        })
    }

    /// The commit the workspace shows.
    pub fn base(&self) -> Oid {
        self.dic.commit().oid
    }

    /// The last local commit and how many are ahead of the base.
    pub fn head(&self) -> (Oid, u64) {
        self.history.head(self.base())
    }

    /// Commits `changes` (from the upper layers `uppers`, as `(mounted path, upper dir)`).
    pub async fn commit(
        &self,
        uppers: &[(String, PathBuf)],
        changes: Vec<Change>,
        message: &str,
        author: Option<Author>,
    ) -> Result<CommitOutcome, CommitError> {
        if message.trim().is_empty() {
            return Err(CommitError::NoMessage);
        }
        let base = self.base();
        if changes.is_empty() && self.history.head(base).0 == base {
            return Err(CommitError::NothingToCommit);
        }
        let plan = commit::plan(&self.dic, changes).await?;
        // git2 objects are not Sync: all git work happens here, without awaiting.
        let _one_at_a_time = self.repo.lock().await;
        let repo = &*_one_at_a_time;
        let (parent, _) = self.history.head(base);
        let tree = commit::tree_with(repo, uppers, &plan)?;
        let parent_tree = if parent == base {
            self.dic.commit().root_tree
        } else {
            git2::Oid::from_bytes(&parent.0)
                .and_then(|p| repo.find_commit(p))
                .map(|c| {
                    let mut b = [0u8; 20];
                    b.copy_from_slice(c.tree_id().as_bytes());
                    Oid(b)
                })
                .ok()
        };
        if parent_tree == Some(tree) {
            return Err(CommitError::NothingToCommit);
        }
        let author = author.unwrap_or_else(|| self.author.clone());
        let commit = commit::write_commit(repo, tree, parent, &author, message)?;
        let ahead = self.history.advance(base, commit)?;
        tracing::info!(%commit, %tree, %parent, ahead, "committed");
        Ok(CommitOutcome {
            commit: commit.to_hex(),
            tree: tree.to_hex(),
            parent: parent.to_hex(),
            ahead,
        })
    }
}
