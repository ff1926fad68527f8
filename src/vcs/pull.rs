//! `pull`: the workspace moves, in place, to the remote's newest commit (Mega's latest commit,
//! the branch of a git remote), keeping every local edit on top.
//!
//! Promises:
//! - the view moves as after a push: entries that still exist keep their inodes, only the
//!   directories the table has listed and the new commit changes are listed again;
//! - the upper layers are not touched here (the caller prunes what the new commit now holds
//!   exactly, see `workspace::pull`), so no edit is lost;
//! - local commits not yet sent anywhere are carried over, as git's rebase would, squashed into
//!   one local commit on the new base (their messages, oldest first) once the upper layers are
//!   pruned — when the upper layers hold exactly the last local commit; with edits beyond it
//!   the pull is refused (commit or reset them first); on a Mega server, local commits whose
//!   every change went to a change list are not carried: the CL holds them, and what it did not
//!   merge stays in the upper layer;
//! - an edit of a path the new commit also changed is a conflict: the local version stays and
//!   `status` marks it (`conflict`) until a commit takes it or a reset drops it.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::mega::{lower, tree_at, ClRecord};
use super::{Vcs, VcsError};
use crate::dicfuse::MovePlan;
use crate::remote::{CommitInfo, Oid, RemoteError};

/// What a pull did on the version-control side.
#[derive(Debug, Default)]
pub struct Moved {
    /// The commit shown before.
    pub previous: String,
    /// The commit shown now (the same when already up to date).
    pub commit: String,
    /// Directories listed again at the new commit.
    pub listed: usize,
    /// Local commits left behind because change lists hold them (Mega).
    pub dropped_commits: u64,
    /// Local commits to carry over as one on the new base: their number and messages.
    pub carry: Option<(u64, String)>,
    /// The plan applied (which paths the new commit changed).
    pub plan: MovePlan,
    /// Entries of the view whose identity changed, for the kernel to forget.
    pub touched: Vec<crate::store::Touched>,
}

/// Why a pull did not happen; nothing changed in the workspace.
#[derive(Debug, thiserror::Error)]
pub enum PullFailure {
    /// Local commits that no receiver has, with edits beyond the last of them.
    #[error("{0} local commit(s) not pushed yet, and edits not committed beyond them: commit (or reset) those edits first, then the pull carries the commits over as one")]
    CommitsAhead(u64),
    /// A writable path is gone from the new commit.
    #[error("the newest commit {commit} has no directory {path:?}, which is mounted writable; unmount it first")]
    MountedPathGone {
        /// The new commit.
        commit: String,
        /// The mounted path.
        path: String,
    },
    /// The remote could not tell or list the new commit.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// Reading the local state failed.
    #[error(transparent)]
    Failed(#[from] VcsError),
}

/// A conflict left by a pull: the local version stayed over a path the pull changed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Conflict {
    /// Repository path.
    pub path: String,
    /// The commit the local edit was made on.
    pub since: String,
    /// The commit pulled, which changed the path too.
    pub pulled: String,
}

const CONFLICT: &str = "conflict:";

fn under(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|r| r.starts_with('/'))
}

impl Vcs {
    /// Moves the view to the remote's newest commit (see the module doc); `layers` are the
    /// writable paths (`WritablePaths::layers`). The caller prunes the upper layers after.
    pub async fn pull(
        self: &Arc<Self>,
        layers: &[(String, PathBuf, u64)],
    ) -> Result<Moved, PullFailure> {
        let _one_at_a_time = self.op.lock().await;
        let base = self.base();
        let remote = self.dic.store().remote().clone();
        let new: CommitInfo = remote.resolve(self.refname.as_deref()).await?;
        let mut moved = Moved {
            previous: base.to_hex(),
            commit: new.oid.to_hex(),
            ..Moved::default()
        };
        if new.oid == base {
            return Ok(moved);
        }
        match self.all_sent(layers)? {
            Some(n) => moved.dropped_commits = n,
            None => moved.carry = self.carry_check(layers).await?,
        }
        let plan = self.dic.plan_move(&new).await.map_err(VcsError::from)?;
        for (path, _, _) in layers {
            check_still_there(&plan, path).map_err(|path| PullFailure::MountedPathGone {
                commit: new.oid.to_hex(),
                path,
            })?;
        }
        moved.listed = plan.updates.len();
        tracing::info!(
            from = %base,
            to = %new.oid,
            listed = moved.listed,
            changed = plan.changed.len(),
            "pulling: moving the workspace to the remote's newest commit"
        );
        moved.touched = self
            .dic
            .rebase(new, &plan.updates)
            .await
            .map_err(VcsError::from)?;
        moved.plan = plan;
        Ok(moved)
    }

    /// The local commits a pull may leave behind: `Some(0)` when there are none; on a Mega
    /// server, `Some(their number)` when every writable path they change went to a change list
    /// as the head has it; otherwise `None` (they are to be carried over).
    fn all_sent(&self, layers: &[(String, PathBuf, u64)]) -> Result<Option<u64>, PullFailure> {
        let base = self.base();
        let (head, ahead) = self.history.head(base);
        if ahead == 0 {
            return Ok(Some(0));
        }
        if !self.is_mega() {
            return Ok(None);
        }
        let records = self.cl_records();
        let repo = self.staging();
        let head_git = git2::Oid::from_bytes(&head.0).map_err(lower)?;
        for (path, _, lower_ino) in layers {
            let Some(tree) = tree_at(&repo, head_git, path)? else {
                return Ok(None);
            };
            let base_tree = self
                .dic
                .store()
                .inodes
                .get(*lower_ino)
                .map_err(|e| VcsError::Lower(e.to_string()))?
                .and_then(|n| n.oid);
            if base_tree == Some(super::commit::our_oid(tree)) {
                continue;
            }
            let sent = records
                .iter()
                .any(|r: &ClRecord| &r.path == path && r.tree == tree.to_string());
            if !sent {
                return Ok(None);
            }
        }
        Ok(Some(ahead))
    }

    /// The local commits to carry over (their number and messages), when the upper layers hold
    /// exactly the last local commit; otherwise the pull is refused.
    async fn carry_check(
        self: &Arc<Self>,
        layers: &[(String, PathBuf, u64)],
    ) -> Result<Option<(u64, String)>, PullFailure> {
        let base = self.base();
        let (head, ahead) = self.history.head(base);
        let (me, layers) = (self.clone(), layers.to_vec());
        let rt = tokio::runtime::Handle::current();
        let upper = tokio::task::spawn_blocking(move || me.upper_tree(&rt, &layers))
            .await
            .map_err(|e| VcsError::Lower(format!("reading the upper layers failed: {e}")))??;
        let repo = self.staging();
        let (head_tree, _) = super::push::commit_tree(&repo, head)?;
        if upper != super::commit::our_oid(head_tree) {
            return Err(PullFailure::CommitsAhead(ahead));
        }
        Ok(Some((ahead, super::mega::messages(&repo, head, base)?)))
    }

    /// The root tree a commit of `layers` would have, computed without keeping anything.
    fn upper_tree(
        &self,
        rt: &tokio::runtime::Handle,
        layers: &[(String, PathBuf, u64)],
    ) -> Result<Oid, VcsError> {
        let repo = self.staging();
        let mut writer = super::commit::Writer::new(&repo)?;
        let tree = (|| {
            let changes = self.scan_layers(rt, &mut writer, layers)?;
            let plan = super::commit::plan(&self.dic, rt, changes)?;
            super::commit::tree_with(&mut writer, &plan)
        })();
        writer.roll_back();
        tree
    }

    /// After a pull and the prune that follows it: records as conflicts the `changes` (repository
    /// paths still changed in the upper layers) that the pull changed too, and forgets the
    /// change lists of paths left with no change (merged). Returns the conflicts recorded.
    pub fn settle_pull(
        &self,
        moved: &Moved,
        changes: &[String],
    ) -> Result<Vec<Conflict>, VcsError> {
        let mut out = Vec::new();
        let db = |e: sled::Error| VcsError::Lower(format!("recording conflicts: {e}"));
        for path in changes.iter().filter(|p| moved.plan.changes(p)) {
            let c = Conflict {
                path: path.clone(),
                since: moved.previous.clone(),
                pulled: moved.commit.clone(),
            };
            let v = serde_json::to_vec(&c).map_err(|e| VcsError::Lower(e.to_string()))?;
            self.cls
                .insert(format!("{CONFLICT}{path}").into_bytes(), v)
                .map_err(db)?;
            out.push(c);
        }
        // A conflict whose path is no longer changed was settled by the pull.
        for c in self.conflicts() {
            if !changes.contains(&c.path) {
                self.cls
                    .remove(format!("{CONFLICT}{}", c.path).into_bytes())
                    .map_err(db)?;
            }
        }
        for r in self.cl_records() {
            if !changes.iter().any(|p| under(p, &r.path)) {
                tracing::info!(path = r.path, link = ?r.link, "no change left under the path: its change list is forgotten");
                self.cls.remove(Self::cl_key(&r.path)).map_err(db)?;
            }
        }
        self.cls.flush().map_err(db)?;
        Ok(out)
    }

    /// The conflicts recorded by pulls.
    pub fn conflicts(&self) -> Vec<Conflict> {
        self.cls
            .scan_prefix(CONFLICT.as_bytes())
            .values()
            .filter_map(|v| v.ok())
            .filter_map(|v| serde_json::from_slice(&v).ok())
            .collect()
    }

    /// Forgets the conflicts at or under `prefix` (a repository path; `""`: all), once a
    /// commit took the local version or a reset dropped it.
    pub fn clear_conflicts(&self, prefix: &str) {
        for c in self.conflicts() {
            if under(&c.path, prefix) {
                let _ = self
                    .cls
                    .remove(format!("{CONFLICT}{}", c.path).into_bytes());
            }
        }
        let _ = self.cls.flush();
    }

    /// The conflict recorded at `path`, if any.
    pub fn conflict_at<'a>(conflicts: &'a [Conflict], path: &str) -> Option<&'a Conflict> {
        conflicts.iter().find(|c| c.path == path)
    }
}

/// `Ok` when every component of `path` is still a directory in the parts of the tree `plan`
/// rewrites; `Err(path)` otherwise.
fn check_still_there(plan: &MovePlan, path: &str) -> Result<(), String> {
    let mut dir = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if let Some(entries) = plan.listing(&dir) {
            let found = entries
                .iter()
                .any(|e| e.entry.name == part.as_bytes() && e.entry.kind.is_dir());
            if !found {
                return Err(path.to_string());
            }
        }
        dir = if dir.is_empty() {
            part.to_string()
        } else {
            format!("{dir}/{part}")
        };
    }
    Ok(())
}
