//! A push of the root (or with no writable path mounted) to a Mega server: the whole tree goes
//! to `/.git` on the base, with a compare-and-swap as to any receiver. Where `main` then is the
//! pushed commit (a server that lands pushes at the root), it landed and the workspace moves to
//! it as with `Vcs::push`. Mega (and the suite's double of it) opens a CL at `/` instead: the
//! push is then a CL like any other path's (recorded for the path `""`; base, local commits and
//! edits stay).
//!
//! Promises: Mega takes one commit per push, so several local commits are squashed into one
//! (messages kept); one is sent as it is. Local commits that change `/third-party` are refused
//! before anything is sent (those trees live in the repositories there, which Mega refuses at
//! `/`).

use super::commit::{our_oid, pack_commits, pack_new_objects};
use super::mega::{lower, messages, rewrite, tree_at, written, ClRecord, MegaPushed};
use super::{PushFailure, PushOutcome, Vcs, VcsError};
use crate::remote::mega_push::MegaPush;
use crate::remote::PushError;

impl Vcs {
    /// Pushes the root to `mega` (see the module doc); the caller holds `op`.
    pub(super) async fn push_root(
        &self,
        mega: &MegaPush,
    ) -> Result<(Option<PushOutcome>, MegaPushed), PushFailure> {
        let base = self.base();
        let (head, ahead) = self.history.head(base);
        if ahead == 0 {
            return Err(PushFailure::NothingToPush(base.to_hex()));
        }
        let recorded: Option<ClRecord> = self
            .cls
            .get(Self::cl_key(""))
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice(&v).ok());
        let refname = self.pusher.refname(self.refname.as_deref()).await?;
        let head_git = git2::Oid::from_bytes(&head.0).map_err(lower)?;
        let (commit, tree, pack, objects, message, wrote) = {
            let repo = self.staging();
            let tree = tree_at(&repo, head_git, "")?
                .ok_or_else(|| VcsError::Lower("no root tree".into()))?;
            if recorded
                .as_ref()
                .is_some_and(|r| r.tree == tree.to_string())
            {
                return Err(PushFailure::NothingToPush(format!(
                    "{} (the CL at / has these changes already)",
                    base.to_hex()
                )));
            }
            let wrote = written(&repo, tree, "")?;
            if wrote.iter().any(|w| w == "third-party") {
                return Err(PushFailure::Unsupported(
                    "the local commits change /third-party, whose directories are repositories of their own on Mega: mount /third-party/<repo> (and the other paths you changed) and push them; nothing was sent".into(),
                ));
            }
            let message = messages(&repo, head, base)?;
            let (commit, (pack, objects)) = if ahead == 1 {
                (head_git, pack_new_objects(&repo, head, base)?)
            } else {
                let from = repo.find_commit(head_git).map_err(lower)?;
                let c = rewrite(&repo, &from, tree, Some(base), message.as_bytes())?;
                (c, pack_commits(&repo, &[c])?)
            };
            (our_oid(commit), tree, pack, objects, message, wrote)
        };
        let pack_bytes = pack.len();
        let target = self.pusher.target();
        tracing::info!(%commit, %base, refname, target, objects, pack_bytes, commits = ahead, "pushing the root");
        mega.push_to("", &refname, base, commit, pack).await?;
        let now = mega.refs("").await.map_err(PushError::from)?;
        if now.get(&refname) == Some(&commit) {
            tracing::info!(%commit, refname, "the remote's branch moved to the push; moving the workspace to it");
            let mut o = self.move_to_head(commit, base, ahead, &[]).await?;
            (o.refname, o.target, o.objects, o.pack_bytes) = (refname, target, objects, pack_bytes);
            return Ok((Some(o), MegaPushed::default()));
        }
        // Mega answered "ok" for a change list: nothing landed.
        let link = self
            .find_cl(mega, "", recorded.and_then(|r| r.link), &message, &wrote)
            .await;
        let rec = ClRecord {
            path: String::new(),
            link,
            commit: commit.to_hex(),
            tree: tree.to_string(),
        };
        self.save_cl(&rec)?;
        Ok((
            None,
            MegaPushed {
                repositories: Vec::new(),
                cls: vec![rec],
            },
        ))
    }
}
