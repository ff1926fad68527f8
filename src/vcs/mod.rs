//! Version control for a writable path, computed from its upper layer alone.
//!
//! Only the upper layer is walked; the commit is consulted for the paths found there (and the
//! directories they sit in), never walked as a whole, so `status` costs what was changed, not
//! what the repository holds.

pub mod change;
pub mod commit;
pub mod diff;
mod error;
pub mod graft;
pub mod loose;
pub mod mega;
mod mega_root;
pub mod names;
pub mod pull;
pub mod push;
pub mod scan;
pub mod status;

pub use error::VcsError;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dicfuse::Dicfuse;
use crate::remote::Oid;
use commit::{Author, History};

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
    Failed(#[from] VcsError),
}

/// What a push did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PushOutcome {
    /// The pushed commit, now the workspace's base.
    pub commit: String,
    /// Where the ref was before.
    pub previous: String,
    /// The ref updated.
    pub refname: String,
    /// Where it went.
    pub target: String,
    /// Local commits pushed.
    pub commits: u64,
    /// Objects in the pack.
    pub objects: usize,
    /// Size of the pack.
    pub pack_bytes: usize,
    /// Inode-table entries whose identity changed (for the kernel to forget).
    #[serde(skip)]
    pub touched: Vec<crate::store::Touched>,
}

/// Why a push did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum PushFailure {
    /// No local commit to push.
    #[error("nothing to push: no local commit ahead of {0}")]
    NothingToPush(String),
    /// The receiver refused, or could not be reached; nothing changed locally.
    #[error(transparent)]
    Push(#[from] crate::remote::PushError),
    /// The remote has the commit but the workspace could not move to it (the edits stay in the
    /// upper layer; a restart shows the pushed commit).
    #[error("pushed {commit}, but the workspace could not move to it: {reason}")]
    Rebase {
        /// The pushed commit.
        commit: String,
        /// Why.
        reason: String,
    },
    /// The server cannot take this push as asked (see `mega::MegaPushError`).
    #[error("{0}")]
    Unsupported(String),
    /// Reading the local commits failed; nothing was sent.
    #[error(transparent)]
    Failed(#[from] VcsError),
}

/// Commits and their history for one workspace.
pub struct Vcs {
    repo: std::sync::Mutex<git2::Repository>,
    /// One commit or push at a time (held across the network round trips of a push).
    op: tokio::sync::Mutex<()>,
    history: History,
    author: Author,
    dic: Arc<Dicfuse>,
    store_path: PathBuf,
    /// Where pushes go, and the configured `ref` (`None`: the default branch).
    pusher: Arc<dyn crate::remote::Push>,
    refname: Option<String>,
    /// The CL each path was pushed to (`cl:<path>` keys beside the history; see `mega`).
    cls: sled::Tree,
}

impl Vcs {
    /// Opens the staging repository under `store_path`; pushes go to `pusher`, updating the
    /// configured `refname` (`None`: the default branch).
    pub fn open(
        dic: Arc<Dicfuse>,
        history: sled::Tree,
        store_path: &Path,
        author: Author,
        pusher: Arc<dyn crate::remote::Push>,
        refname: Option<String>,
    ) -> Result<Vcs, VcsError> {
        Ok(Vcs {
            repo: std::sync::Mutex::new(commit::open_staging(store_path)?),
            op: tokio::sync::Mutex::new(()),
            cls: history.clone(),
            history: History::new(history),
            author,
            dic,
            store_path: store_path.to_path_buf(),
            pusher,
            refname,
        })
    }

    fn staging(&self) -> std::sync::MutexGuard<'_, git2::Repository> {
        self.repo.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the read-only view in place to `commit` (root `tree` of the staging repository,
    /// made at `time`), whose changed directories are `updates`; what the kernel must forget.
    async fn rebase_view(
        &self,
        commit: Oid,
        tree: git2::Oid,
        time: i64,
        updates: &[(String, Vec<crate::remote::ListedEntry>)],
    ) -> Result<Vec<crate::store::Touched>, PushFailure> {
        let info = crate::remote::CommitInfo {
            oid: commit,
            root_tree: Some(commit::our_oid(tree)),
            time,
        };
        self.dic
            .rebase(info, updates)
            .await
            .map_err(|e| PushFailure::Rebase {
                commit: commit.to_hex(),
                reason: e.to_string(),
            })
    }

    /// Sends the local commits to the remote and, once it has them, makes the last one the
    /// base. The caller then prunes the upper layers (see `workspace::push`).
    pub async fn push(&self) -> Result<PushOutcome, PushFailure> {
        let _one_at_a_time = self.op.lock().await;
        let base = self.base();
        let (head, ahead) = self.history.head(base);
        if ahead == 0 {
            return Err(PushFailure::NothingToPush(base.to_hex()));
        }
        let refname = self.pusher.refname(self.refname.as_deref()).await?;
        let (pack, objects, tree, time, updates) = {
            let repo = self.staging();
            let (pack, objects) = commit::pack_new_objects(&repo, head, base)?;
            let (tree, time) = push::commit_tree(&repo, head)?;
            let updates = push::changed_dirs(&repo, tree)?;
            (pack, objects, tree, time, updates)
        };
        let pack_bytes = pack.len();
        let target = self.pusher.target();
        tracing::info!(%head, %base, refname, target, objects, pack_bytes, commits = ahead, "pushing");
        self.pusher.push(&refname, base, head, pack).await?;
        tracing::info!(%head, refname, "the remote accepted the push; moving the workspace to it");
        let touched = self.rebase_view(head, tree, time, &updates).await?;
        // Everything the staging repository held is on the remote now; start it afresh so the
        // next push packs only what is new again.
        match commit::renew_staging(&self.store_path) {
            Ok(fresh) => *self.staging() = fresh,
            Err(e) => tracing::warn!(error = %e, "could not start the staging repository afresh"),
        }
        Ok(PushOutcome {
            commit: head.to_hex(),
            previous: base.to_hex(),
            refname,
            target,
            commits: ahead,
            objects,
            pack_bytes,
            touched,
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

    /// Commits the changes of the upper layers `layers` (`(mounted path, upper dir, the
    /// commit's directory)`, from `WritablePaths::layers`). Each changed file is read once, its
    /// blob written from exactly those bytes; a commit that fails leaves nothing in the staging
    /// repository.
    pub async fn commit(
        self: &Arc<Self>,
        layers: Vec<(String, PathBuf, u64)>,
        message: &str,
        author: Option<Author>,
    ) -> Result<CommitOutcome, CommitError> {
        let paths: Vec<String> = layers.iter().map(|(p, _, _)| p.clone()).collect();
        let out = self.commit_only(layers, message, author).await?;
        // The commit took the local version of what a pull left in conflict.
        for p in &paths {
            self.clear_conflicts(p);
        }
        Ok(out)
    }

    /// [`Vcs::commit`], leaving the conflicts recorded (a pull's own commit settles none).
    pub(crate) async fn commit_only(
        self: &Arc<Self>,
        layers: Vec<(String, PathBuf, u64)>,
        message: &str,
        author: Option<Author>,
    ) -> Result<CommitOutcome, CommitError> {
        if message.trim().is_empty() {
            return Err(CommitError::NoMessage);
        }
        let _one_at_a_time = self.op.lock().await;
        let (me, message) = (self.clone(), message.to_string());
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || me.commit_now(&rt, &layers, &message, author))
            .await
            .map_err(|e| CommitError::Failed(VcsError::Lower(format!("the commit failed: {e}"))))?
    }

    /// [`Vcs::commit`] on a blocking thread, under `op`.
    fn commit_now(
        &self,
        rt: &tokio::runtime::Handle,
        layers: &[(String, PathBuf, u64)],
        message: &str,
        author: Option<Author>,
    ) -> Result<CommitOutcome, CommitError> {
        let mut repo = self.staging();
        let mut writer = commit::Writer::new(&repo)?;
        let r = self.write_commit(rt, &repo, &mut writer, layers, message, author);
        if r.is_err() {
            let removed = writer.roll_back();
            if removed > 0 {
                tracing::info!(removed, "the commit failed; its objects were removed");
                // The repository's caches may remember what was removed.
                match commit::open_staging(&self.store_path) {
                    Ok(fresh) => *repo = fresh,
                    Err(e) => tracing::warn!(error = %e, "could not reopen the staging repository"),
                }
            }
        }
        r
    }

    /// The changes of the upper layers `layers`, each changed file's blob written by `writer`
    /// from exactly the bytes read.
    fn scan_layers(
        &self,
        rt: &tokio::runtime::Handle,
        writer: &mut commit::Writer<'_>,
        layers: &[(String, PathBuf, u64)],
    ) -> Result<Vec<change::Change>, VcsError> {
        let mut changes = Vec::new();
        for (path, upper, lower) in layers {
            let mut blobs = commit::BlobSink {
                writer: &mut *writer,
            };
            changes.extend(scan::walk(
                &self.dic,
                rt,
                upper,
                Some(*lower),
                path.as_bytes(),
                &mut blobs,
            )?);
        }
        Ok(changes)
    }

    fn write_commit(
        &self,
        rt: &tokio::runtime::Handle,
        repo: &git2::Repository,
        writer: &mut commit::Writer<'_>,
        layers: &[(String, PathBuf, u64)],
        message: &str,
        author: Option<Author>,
    ) -> Result<CommitOutcome, CommitError> {
        let base = self.base();
        let (parent, _) = self.history.head(base);
        let changes = self.scan_layers(rt, writer, layers)?;
        if changes.is_empty() && parent == base {
            return Err(CommitError::NothingToCommit);
        }
        let plan = commit::plan(&self.dic, rt, changes)?;
        let tree = commit::tree_with(writer, &plan)?;
        let parent_tree = if parent == base {
            self.dic.commit().root_tree
        } else {
            git2::Oid::from_bytes(&parent.0)
                .and_then(|p| repo.find_commit(p))
                .map(|c| commit::our_oid(c.tree_id()))
                .ok()
        };
        if parent_tree == Some(tree) {
            return Err(CommitError::NothingToCommit);
        }
        let author = author.unwrap_or_else(|| self.author.clone());
        let commit = commit::write_commit(writer, tree, parent, &author, message)?;
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
