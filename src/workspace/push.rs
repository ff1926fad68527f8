//! Pushing: the local commits go to the remote (`Vcs::push`), then every mounted overlay is
//! settled on the pushed commit and the kernel forgets what changed, in one operation.

use std::ffi::OsString;
use std::sync::Arc;

use super::MountManager;
use crate::overlay::OverlayFs;
use crate::vcs::{PushFailure, PushOutcome, Vcs};

/// What a push did.
#[derive(Debug)]
pub struct Pushed {
    /// The push itself.
    pub outcome: PushOutcome,
    /// Upper entries dropped because the pushed commit now holds them.
    pub settled: usize,
}

impl MountManager {
    /// Pushes the local commits of `vcs`, then settles every mounted overlay on the pushed
    /// commit. A refused or failed push changes nothing in the workspace.
    pub async fn push(&self, vcs: &Vcs) -> Result<Pushed, PushFailure> {
        let outcome = vcs.push().await?;
        let settled = self.settle_after_push(&outcome.touched).await;
        Ok(Pushed { outcome, settled })
    }

    /// After a push moved the base: settles every mounted overlay on it (see
    /// `overlay::settle`) and has the kernel forget what changed (`touched`: the read-only
    /// view's entries the rebase changed). Returns the number of upper entries dropped.
    async fn settle_after_push(&self, touched: &[crate::store::Touched]) -> usize {
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
            match ovl.settle().await {
                Ok(s) => {
                    tracing::info!(
                        path,
                        dropped = s.dropped,
                        forgotten = s.forget.len(),
                        "upper layer settled on the pushed commit"
                    );
                    dropped += s.dropped;
                    self.router.forget_inodes(ovl.as_ref(), &s.forget).await;
                }
                // Nothing is lost: what stays in the upper layer still shows, and equals the base.
                Err(e) => {
                    tracing::warn!(path, error = %e, "could not settle the upper layer on the pushed commit")
                }
            }
        }
        // The push is answered once the kernel shows the pushed commit.
        self.router.flush_notifications().await;
        dropped
    }
}
