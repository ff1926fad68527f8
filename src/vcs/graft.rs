//! After a `/third-party` push while the local commits also hold changes no one has taken (a
//! change list's, say): the workspace cannot move to the local head, which holds those too.
//! It moves to the base with only the pushed repositories grafted in (`B'`: the base's root and
//! `third-party` directories, the pushed repositories' trees from the head), and what else the
//! local commits change stays ahead as one local commit on it (`H'`: the head's tree, the local
//! commits' messages).
//!
//! Promises: `H'` has the head's tree exactly, so nothing of the unpushed changes is lost, and
//! the upper layer keeps them (only what `B'` holds exactly is pruned); the objects stay in the
//! staging repository for the next push.

use std::collections::BTreeMap;

use super::commit::{mode, our_oid};
use super::mega::{lower, messages, rewrite, tree_at};
use super::push::changed_dirs;
use super::{PushFailure, PushOutcome, Vcs, VcsError};
use crate::remote::Oid;

const DIR: i32 = 0o040000;

impl Vcs {
    /// Moves the workspace to `B'` with `H'` ahead of it (see the module doc), after the
    /// repositories `repos` (`third-party/<name>`) took the head's trees.
    pub(super) async fn move_to_graft(
        &self,
        head: Oid,
        base: Oid,
        ahead: u64,
        repos: &[String],
    ) -> Result<PushOutcome, PushFailure> {
        let root_entries = self
            .dic
            .lower_children(crate::store::ROOT_INO)
            .await
            .map_err(VcsError::from)?;
        let tp_entries = match root_entries.iter().find(|c| c.name() == b"third-party") {
            Some(c) => Some(
                self.dic
                    .lower_children(c.ino)
                    .await
                    .map_err(VcsError::from)?,
            ),
            None => None,
        };
        let entry = |c: &crate::store::inodes::Child| -> Result<(git2::Oid, i32), VcsError> {
            let oid = c.node.oid.ok_or_else(|| {
                VcsError::Lower(format!(
                    "entry {} without an id",
                    String::from_utf8_lossy(c.name())
                ))
            })?;
            Ok((
                git2::Oid::from_bytes(&oid.0).map_err(lower)?,
                mode(c.node.kind),
            ))
        };
        let (graft, squash, root, time, updates) = {
            let repo = self.staging();
            let head_git = git2::Oid::from_bytes(&head.0).map_err(lower)?;
            let mut grafts = BTreeMap::new();
            for r in repos {
                let name = r.trim_start_matches("third-party/").as_bytes().to_vec();
                let tree = tree_at(&repo, head_git, r)?
                    .ok_or_else(|| VcsError::Lower(format!("no tree at {r}")))?;
                grafts.insert(name, tree);
            }
            let mut tb = repo.treebuilder(None).map_err(lower)?;
            for c in tp_entries.iter().flat_map(|e| e.iter()) {
                if !grafts.contains_key(c.name()) {
                    let (oid, m) = entry(c)?;
                    tb.insert(c.name(), oid, m).map_err(lower)?;
                }
            }
            for (name, tree) in &grafts {
                tb.insert(name, *tree, DIR).map_err(lower)?;
            }
            let tp = tb.write().map_err(lower)?;
            let mut rb = repo.treebuilder(None).map_err(lower)?;
            for c in root_entries.iter().filter(|c| c.name() != b"third-party") {
                let (oid, m) = entry(c)?;
                rb.insert(c.name(), oid, m).map_err(lower)?;
            }
            rb.insert("third-party", tp, DIR).map_err(lower)?;
            let root = rb.write().map_err(lower)?;
            let from = repo.find_commit(head_git).map_err(lower)?;
            let note = format!("Scorpio: {} pushed to Mega\n", repos.join(", "));
            let graft = rewrite(&repo, &from, root, Some(base), note.as_bytes())?;
            let msg = messages(&repo, head, base)?;
            let squash = rewrite(
                &repo,
                &from,
                from.tree_id(),
                Some(our_oid(graft)),
                msg.as_bytes(),
            )?;
            let updates = changed_dirs(&repo, root)?;
            (
                our_oid(graft),
                our_oid(squash),
                root,
                from.time().seconds(),
                updates,
            )
        };
        let touched = self.rebase_view(graft, root, time, &updates).await?;
        let left = self.history.advance(graft, squash)?;
        tracing::info!(%graft, %squash, left, "the workspace moved to the base with the pushed repositories; the rest stays ahead");
        Ok(PushOutcome {
            commit: graft.to_hex(),
            previous: base.to_hex(),
            refname: "refs/heads/main".into(),
            target: repos.join(", "),
            commits: ahead,
            objects: 0,
            pack_bytes: 0,
            touched,
        })
    }
}
