//! Pushing the workspace: one operation for both halves of a push.
//!
//! Promises: the local commits go to the remote (`Vcs::push`); only once the remote took them
//! is every mounted overlay pruned on the pushed commit (what the commit now holds leaves the
//! upper layer) and the kernel made to forget what changed, and the call returns when the
//! kernel shows the pushed commit. A refused or failed push changes nothing in the workspace.
//! A failed prune loses nothing: what stays in an upper layer still shows, and equals the base.
//! On a Mega server each writable path is pushed on its own (`Vcs::push_mega`); a change list
//! lands nothing, so nothing is pruned for it.

use std::ffi::OsString;
use std::sync::Arc;

use super::WritablePaths;
use crate::overlay::OverlayFs;
use crate::vcs::mega::MegaPushed;
use crate::vcs::{PushFailure, PushOutcome, Vcs};

/// What a push did.
#[derive(Debug)]
pub struct Pushed {
    /// The push that moved the workspace's base, if one did.
    pub outcome: Option<PushOutcome>,
    /// What a Mega server took, path by path (empty for other receivers).
    pub mega: MegaPushed,
    /// Upper entries pruned because the pushed commit now holds them.
    pub pruned: usize,
}

impl WritablePaths {
    /// Pushes the local commits of `vcs`, then prunes every mounted overlay on the pushed
    /// commit (see the module doc).
    ///
    /// On a Mega server `only` (a mounted path) narrows the push to that path; elsewhere the
    /// local commits, which hold every path's changes, go as one.
    pub async fn push(&self, vcs: &Vcs, only: Option<&str>) -> Result<Pushed, PushFailure> {
        let (outcome, mega) = if vcs.is_mega() {
            let paths: Vec<String> = self
                .active
                .lock()
                .await
                .keys()
                .filter(|p| only.map_or(true, |o| o == p.as_str()))
                .cloned()
                .collect();
            vcs.push_mega(&paths).await?
        } else {
            (Some(vcs.push().await?), MegaPushed::default())
        };
        let pruned = match &outcome {
            Some(o) => self.prune_after_move(&o.touched, false).await,
            None => 0,
        };
        Ok(Pushed {
            outcome,
            mega,
            pruned,
        })
    }

    /// After a push or a pull moved the base: prunes every mounted overlay on it
    /// (`OverlayFs::prune_pushed`) and has the kernel forget what changed (`touched`: the
    /// read-only view's entries the rebase changed). `names`: the move changed what the
    /// overlays' directories list (a pull; a push changes nothing the merged view shows), so the
    /// kernel forgets those names in them too. Returns the number of upper entries dropped.
    pub(super) async fn prune_after_move(
        &self,
        touched: &[crate::store::Touched],
        names: bool,
    ) -> usize {
        use std::os::unix::ffi::OsStringExt;
        let forget_dic: Vec<_> = touched
            .iter()
            .map(|t| (t.parent, OsString::from_vec(t.name.clone()), t.ino))
            .collect();
        self.router.forget_cached(forget_dic).await;
        let active: Vec<(String, Arc<OverlayFs>)> = self
            .active
            .lock()
            .await
            .iter()
            .map(|(p, (_, o, _))| (p.clone(), o.clone()))
            .collect();
        let mut dropped = 0;
        for (path, ovl) in active {
            match ovl.prune_pushed().await {
                Ok(s) => {
                    tracing::info!(
                        path,
                        dropped = s.dropped,
                        forgotten = s.forget.len(),
                        "upper layer pruned on the pushed commit"
                    );
                    dropped += s.dropped;
                    self.router.forget_inodes(ovl.as_ref(), &s.forget).await;
                    if names {
                        self.forget_changed_names(ovl.as_ref(), touched).await;
                    }
                }
                // Nothing is lost: what stays in the upper layer still shows, and equals the base.
                Err(e) => {
                    tracing::warn!(path, error = %e, "could not prune the upper layer on the pushed commit")
                }
            }
        }
        // The push is answered once the kernel shows the pushed commit.
        self.router.flush_notifications().await;
        dropped
    }

    /// Has the kernel forget, in the directories of `ovl` over a lower directory the move
    /// changed, the names that came or went there (and those directories' listings). A name
    /// that stays keeps its entry: its inode is the overlay's, which the kernel is told to
    /// refresh (see `prune_pushed`), and dropping the entry would renumber it.
    async fn forget_changed_names(&self, ovl: &OverlayFs, touched: &[crate::store::Touched]) {
        use std::os::unix::ffi::OsStringExt;
        let inodes = &self.dic.store().inodes;
        let mut by_dir: std::collections::HashMap<u64, Vec<OsString>> = Default::default();
        for t in touched {
            let gone = matches!(inodes.child(t.parent, &t.name), Ok(None));
            if t.ino.is_some() && !gone {
                continue;
            }
            by_dir
                .entry(t.parent)
                .or_default()
                .push(OsString::from_vec(t.name.clone()));
        }
        let lowers = by_dir.keys().copied().collect();
        let mut over: std::collections::HashMap<u64, Vec<u64>> = Default::default();
        for (ino, lower) in ovl.over_lower(&lowers) {
            over.entry(lower).or_default().push(ino);
        }
        for (lower, dirs) in over {
            if let Some(names) = by_dir.get(&lower) {
                self.router.forget_names(ovl, &dirs, names).await;
            }
        }
    }
}
