//! Pulling the workspace: the view moves to the remote's newest commit (`Vcs::pull`), then
//! every mounted overlay is pruned on it as after a push, and what is still changed is settled.
//!
//! Promises: no edit is lost (only upper entries the new commit holds exactly leave); the
//! kernel forgets what the move changed, in the read-only view and in the writable paths; a
//! local edit of a path the pull changed too stays and is recorded as a conflict; a change list
//! with nothing left under its path (merged) is forgotten; unpushed local commits come along as
//! one local commit on the new base. A refused pull changes nothing.

use std::sync::Arc;

use serde::Serialize;

use super::WritablePaths;
use crate::vcs::pull::{Conflict, PullFailure};
use crate::vcs::{status, CommitError, Vcs, VcsError};

/// What a pull did.
#[derive(Debug, Serialize)]
pub struct Pulled {
    /// The commit shown before.
    pub previous: String,
    /// The commit shown now.
    pub commit: String,
    /// Whether the workspace already showed the newest commit.
    pub up_to_date: bool,
    /// Directories listed again at the new commit.
    pub listed: usize,
    /// Paths the new commit changed (of those this daemon had seen).
    pub changed: usize,
    /// Upper entries dropped because the new commit holds them exactly.
    pub pruned: usize,
    /// Local commits left behind because change lists hold them (Mega).
    pub dropped_commits: u64,
    /// The local commit that carries over the unpushed ones (squashed) onto the new commit,
    /// when there were some and the new commit did not already hold all they change.
    pub carried: Option<String>,
    /// How many local commits it carries.
    pub carried_commits: u64,
    /// Edits of paths the pull changed too: the local version stayed.
    pub conflicts: Vec<Conflict>,
}

impl WritablePaths {
    /// Pulls (see the module doc).
    pub async fn pull(&self, vcs: &Arc<Vcs>) -> Result<Pulled, PullFailure> {
        let layers = self
            .layers(None)
            .await
            .map_err(|e| VcsError::Lower(e.to_string()))?;
        let moved = vcs.pull(&layers).await?;
        let up_to_date = moved.previous == moved.commit;
        let pruned = if up_to_date {
            0
        } else {
            self.prune_after_move(&moved.touched, true).await
        };
        let mut carried = None;
        if let Some((_, message)) = &moved.carry {
            // Carried over as one commit of what the upper layers hold now, on the new base.
            match vcs.commit_only(layers.clone(), message, None).await {
                Ok(c) => carried = Some(c.commit),
                Err(CommitError::NothingToCommit) => {}
                Err(CommitError::Failed(e)) => return Err(e.into()),
                Err(e) => return Err(VcsError::Lower(e.to_string()).into()),
            }
        }
        let mut changed = Vec::new();
        for (p, upper, lower) in &layers {
            for c in status::status(&self.dic, upper, Some(*lower), p).await? {
                changed.push(String::from_utf8_lossy(&c.path).into_owned());
            }
        }
        let conflicts = vcs.settle_pull(&moved, &changed)?;
        tracing::info!(
            from = moved.previous,
            to = moved.commit,
            pruned,
            conflicts = conflicts.len(),
            still_changed = changed.len(),
            "pulled"
        );
        Ok(Pulled {
            previous: moved.previous,
            commit: moved.commit,
            up_to_date,
            listed: moved.listed,
            changed: moved.plan.changed.len(),
            pruned,
            dropped_commits: moved.dropped_commits,
            carried_commits: if carried.is_some() {
                moved.carry.as_ref().map_or(0, |(n, _)| *n)
            } else {
                0
            },
            carried,
            conflicts,
        })
    }
}
