//! Pushing the local commits to a Mega server, writable path by writable path, as Mega takes
//! changes (`../shared/mega/README.md`):
//! - a path under `/third-party/<repo>`: that repository's own commits (each local commit's
//!   tree at `third-party/<repo>`, on the repository's advertised `main`) go to
//!   `/third-party/<repo>.git`; its `main` moves, and then the workspace moves to the local
//!   head as with any receiver whose branch moves — or, when the local commits also hold
//!   changes no one took (a CL's), to the base with the pushed repositories grafted in, the rest
//!   staying ahead as one local commit on it (`graft`);
//! - any other path `P`: ONE commit (the local commits squashed; tree: `P`'s new tree; parent:
//!   the commit `P.git` advertises as `main`) goes to `/P.git`, where Mega opens or updates a
//!   change list (CL). Nothing lands: the base, the local commits and the upper layer stay,
//!   and the CL is recorded for the path (in sled, with the history) for `status` and for the
//!   next push, which updates the same CL;
//! - `/third-party` itself is refused (see [`MegaPushError`]); the root is pushed whole to
//!   `/.git` (`mega_root`): landed if `main` moved there, else a CL at `/`.
//!
//! Promises: a path whose tree the local commits do not change is not sent; nothing in the
//! workspace changes unless the server took the push.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::commit::{our_oid, pack_commits};
use super::{PushFailure, PushOutcome, Vcs, VcsError};
use crate::remote::mega_push::MegaPush;
use crate::remote::{Oid, PushError};

pub(super) const MAIN: &str = "refs/heads/main";

/// A change list a push opened or updated.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClRecord {
    /// The writable path (repository path, no leading `/`).
    pub path: String,
    /// The CL's link (`None` when the server did not let us find it).
    pub link: Option<String>,
    /// The commit sent (its tree is the path's tree).
    pub commit: String,
    /// The path's tree in that commit.
    pub tree: String,
}

/// What a push to a Mega server did, path by path.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MegaPushed {
    /// `/third-party` repositories whose `main` moved: (repository path, its new `main`).
    pub repositories: Vec<(String, String)>,
    /// CLs opened or updated.
    pub cls: Vec<ClRecord>,
}

/// Writable paths a Mega push refuses.
#[derive(Debug, thiserror::Error)]
pub enum MegaPushError {
    /// `/third-party` itself holds several repositories of the server.
    #[error("{0:?} holds several of the server's repositories (the monorepo and each /third-party/<repo>); mount the paths to push one by one (e.g. /project/x, /third-party/y)")]
    TooWide(String),
}

/// Where a writable path goes.
enum Target {
    /// `third-party/<name>`.
    Repository(String),
    /// A change list at this path.
    Cl(String),
}

fn classify(path: &str) -> Result<Target, MegaPushError> {
    let mut parts = path.split('/');
    match (parts.next(), parts.next()) {
        (Some("third-party"), None) => Err(MegaPushError::TooWide(format!("/{path}"))),
        (Some("third-party"), Some(name)) => Ok(Target::Repository(format!("third-party/{name}"))),
        _ => Ok(Target::Cl(path.to_string())),
    }
}

pub(super) fn lower(e: git2::Error) -> VcsError {
    VcsError::Lower(e.to_string())
}

/// The local commits from `head` back to (not including) `base`, oldest first.
pub(super) fn chain(
    repo: &git2::Repository,
    head: Oid,
    base: Oid,
) -> Result<Vec<git2::Oid>, VcsError> {
    let mut out = Vec::new();
    let mut c = head;
    while c != base {
        let commit = repo
            .find_commit(git2::Oid::from_bytes(&c.0).map_err(lower)?)
            .map_err(lower)?;
        out.push(commit.id());
        c = our_oid(commit.parent_id(0).map_err(lower)?);
    }
    out.reverse();
    Ok(out)
}

/// The tree at `path` of commit `c` (`None` when there is none there).
pub(super) fn tree_at(
    repo: &git2::Repository,
    c: git2::Oid,
    path: &str,
) -> Result<Option<git2::Oid>, VcsError> {
    let tree = repo.find_commit(c).and_then(|c| c.tree()).map_err(lower)?;
    if path.is_empty() {
        return Ok(Some(tree.id()));
    }
    Ok(tree
        .get_path(std::path::Path::new(path))
        .ok()
        .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
        .map(|e| e.id()))
}

/// The messages of the local commits from `base` to `head`, each once, oldest first.
pub(super) fn messages(repo: &git2::Repository, head: Oid, base: Oid) -> Result<String, VcsError> {
    let mut msgs: Vec<String> = Vec::new();
    for c in chain(repo, head, base)? {
        let commit = repo.find_commit(c).map_err(lower)?;
        let m = commit.message().unwrap_or_default().trim().to_string();
        if !m.is_empty() && !msgs.contains(&m) {
            msgs.push(m);
        }
    }
    Ok(msgs.join("\n\n") + "\n")
}

/// The tree at `path` of the base, when the base is a commit of the staging repository (one a
/// graft made, see `graft`); a base from the server is not there.
fn base_tree_at(repo: &git2::Repository, base: Oid, path: &str) -> Option<git2::Oid> {
    let c = git2::Oid::from_bytes(&base.0).ok()?;
    repo.find_commit(c).ok()?;
    tree_at(repo, c, path).ok().flatten()
}

/// Writes a commit of `tree` on `parent` with `from`'s author and committer and `message`.
pub(super) fn rewrite(
    repo: &git2::Repository,
    from: &git2::Commit<'_>,
    tree: git2::Oid,
    parent: Option<Oid>,
    message: &[u8],
) -> Result<git2::Oid, VcsError> {
    let mut body = format!("tree {tree}\n").into_bytes();
    if let Some(p) = parent.filter(|p| p.0 != [0; 20]) {
        body.extend_from_slice(format!("parent {p}\n").as_bytes());
    }
    for line in from.raw_header_bytes().split(|b| *b == b'\n') {
        if line.starts_with(b"author ") || line.starts_with(b"committer ") {
            body.extend_from_slice(line);
            body.push(b'\n');
        }
    }
    body.push(b'\n');
    body.extend_from_slice(message);
    repo.odb()
        .and_then(|o| o.write(git2::ObjectType::Commit, &body))
        .map_err(lower)
}

/// Names under `tree` whose trees the staging repository holds (what the local commits
/// rewrote), as paths joined to `prefix`; blobs it holds count as well.
pub(super) fn written(
    repo: &git2::Repository,
    tree: git2::Oid,
    prefix: &str,
) -> Result<Vec<String>, VcsError> {
    let odb = repo.odb().map_err(lower)?;
    let t = repo.find_tree(tree).map_err(lower)?;
    Ok(t.iter()
        .filter(|e| odb.exists(e.id()))
        .map(|e| {
            let n = String::from_utf8_lossy(e.name_bytes()).into_owned();
            if prefix.is_empty() {
                n
            } else {
                format!("{prefix}/{n}")
            }
        })
        .collect())
}

impl Vcs {
    pub(super) fn cl_key(path: &str) -> Vec<u8> {
        format!("cl:{path}").into_bytes()
    }

    /// The CL recorded for every path a push sent to one.
    pub fn cl_records(&self) -> Vec<ClRecord> {
        self.cls
            .scan_prefix(b"cl:")
            .values()
            .filter_map(|v| v.ok())
            .filter_map(|v| serde_json::from_slice(&v).ok())
            .collect()
    }

    pub(super) fn save_cl(&self, rec: &ClRecord) -> Result<(), VcsError> {
        let v = serde_json::to_vec(rec).map_err(|e| VcsError::Lower(e.to_string()))?;
        self.cls
            .insert(Self::cl_key(&rec.path), v)
            .and_then(|_| self.cls.flush().map(|_| ()))
            .map_err(|e| VcsError::Lower(format!("recording the CL: {e}")))
    }

    /// Whether pushes go to a Mega server path by path.
    pub fn is_mega(&self) -> bool {
        self.pusher.mega().is_some()
    }

    /// Pushes the local commits to the Mega server for the writable paths `paths` (see the
    /// module doc). `Ok((moved, pushed))`: `moved` when a `/third-party` repository took the
    /// commits and the workspace moved to the local head (the caller prunes then).
    pub async fn push_mega(
        &self,
        paths: &[String],
    ) -> Result<(Option<PushOutcome>, MegaPushed), PushFailure> {
        let Some(mega) = self.pusher.mega() else {
            return Ok((Some(self.push().await?), MegaPushed::default()));
        };
        let _one_at_a_time = self.op.lock().await;
        // The root holds everything: see `mega_root`.
        if paths.is_empty() || paths.iter().any(String::is_empty) {
            return self.push_root(mega).await;
        }
        let base = self.base();
        let (head, ahead) = self.history.head(base);
        if ahead == 0 {
            return Err(PushFailure::NothingToPush(base.to_hex()));
        }
        let mut repos = BTreeSet::new();
        let mut cls = Vec::new();
        for p in paths {
            match classify(p).map_err(|e| PushFailure::Unsupported(e.to_string()))? {
                Target::Repository(r) => {
                    repos.insert(r);
                }
                Target::Cl(p) => cls.push(p),
            }
        }
        let mut out = MegaPushed::default();
        let head_git = git2::Oid::from_bytes(&head.0).map_err(lower)?;
        let mut moved = None;
        // CLs first: they read the local commits, which a move below may start afresh.
        for p in &cls {
            if let Some(rec) = self.push_cl(mega, p, head, base).await? {
                out.cls.push(rec);
            }
        }
        if !repos.is_empty() {
            let changed: Vec<String> = repos
                .iter()
                .filter(|r| {
                    let repo = self.staging();
                    tree_at(&repo, head_git, r).ok().flatten().is_some_and(|t| {
                        repo.odb().is_ok_and(|o| o.exists(t))
                            && base_tree_at(&repo, base, r) != Some(t)
                    })
                })
                .cloned()
                .collect();
            if !changed.is_empty() {
                let others = self.others(head_git, &changed)?;
                let (mut objects, mut bytes) = (0, 0);
                for r in &changed {
                    let (main, o, b) = self.push_repository(mega, r, head, base).await?;
                    out.repositories.push((r.clone(), main));
                    (objects, bytes) = (objects + o, bytes + b);
                }
                let mut o = match others.is_empty() {
                    true => self.move_to_head(head, base, ahead, &changed).await?,
                    false => {
                        tracing::info!(others = others.join(", "), "the local commits change more than the pushed repositories; grafting them onto the base");
                        self.move_to_graft(head, base, ahead, &changed).await?
                    }
                };
                (o.objects, o.pack_bytes) = (objects, bytes);
                moved = Some(o);
            }
        }
        if moved.is_none() && out.cls.is_empty() {
            return Err(PushFailure::NothingToPush(format!(
                "{} (every writable path's commits are sent already)",
                base.to_hex()
            )));
        }
        Ok((moved, out))
    }

    /// What the local commits change besides the repositories `repos` (top-level names, and
    /// names under `third-party`).
    fn others(&self, head: git2::Oid, repos: &[String]) -> Result<Vec<String>, PushFailure> {
        let repo = self.staging();
        let root =
            tree_at(&repo, head, "")?.ok_or_else(|| VcsError::Lower("no root tree".into()))?;
        let mut other: Vec<String> = written(&repo, root, "")?
            .into_iter()
            .filter(|n| n != "third-party")
            .collect();
        if let Some(tp) = tree_at(&repo, head, "third-party")? {
            other.extend(
                written(&repo, tp, "third-party")?
                    .into_iter()
                    .filter(|n| !repos.contains(n)),
            );
        }
        Ok(other)
    }

    /// Sends repository `r`'s commits (re-rooted) to `/r.git`; returns its new `main`.
    async fn push_repository(
        &self,
        mega: &MegaPush,
        r: &str,
        head: Oid,
        base: Oid,
    ) -> Result<(String, usize, usize), PushFailure> {
        let zero = Oid([0; 20]);
        let main = mega
            .refs(r)
            .await
            .map_err(PushError::from)?
            .get(MAIN)
            .copied()
            .unwrap_or(zero);
        let (last, pack, objects) = {
            let repo = self.staging();
            let mut parent = main;
            let mut prev_tree = base_tree_at(&repo, base, r);
            let mut made = Vec::new();
            let odb = repo.odb().map_err(lower)?;
            for c in chain(&repo, head, base)? {
                let Some(tree) = tree_at(&repo, c, r)? else {
                    continue;
                };
                // A commit that left the repository as the server has it adds nothing to it.
                if prev_tree == Some(tree) || !odb.exists(tree) {
                    continue;
                }
                prev_tree = Some(tree);
                let commit = repo.find_commit(c).map_err(lower)?;
                let id = rewrite(
                    &repo,
                    &commit,
                    tree,
                    Some(parent),
                    commit.message_raw_bytes(),
                )?;
                parent = our_oid(id);
                made.push(id);
            }
            let (pack, objects) = pack_commits(&repo, &made)?;
            (parent, pack, objects)
        };
        tracing::info!(repository = r, %main, new = %last, objects, pack_bytes = pack.len(), "pushing to a /third-party repository");
        let bytes = pack.len();
        mega.push_to(r, MAIN, main, last, pack).await?;
        Ok((last.to_hex(), objects, bytes))
    }

    /// After the repositories took the commits: the workspace moves to the local head.
    pub(super) async fn move_to_head(
        &self,
        head: Oid,
        base: Oid,
        ahead: u64,
        repos: &[String],
    ) -> Result<PushOutcome, PushFailure> {
        let (tree, time, updates) = {
            let repo = self.staging();
            let (tree, time) = super::push::commit_tree(&repo, head)?;
            (tree, time, super::push::changed_dirs(&repo, tree)?)
        };
        let touched = self.rebase_view(head, tree, time, &updates).await?;
        match super::commit::renew_staging(&self.store_path) {
            Ok(fresh) => *self.staging() = fresh,
            Err(e) => tracing::warn!(error = %e, "could not start the staging repository afresh"),
        }
        Ok(PushOutcome {
            commit: head.to_hex(),
            previous: base.to_hex(),
            refname: MAIN.into(),
            target: repos.join(", "),
            commits: ahead,
            objects: 0,
            pack_bytes: 0,
            touched,
        })
    }

    /// Sends path `p`'s changes as one commit to `/p.git` (a CL), unless the recorded CL has
    /// exactly this tree already; records the CL.
    async fn push_cl(
        &self,
        mega: &MegaPush,
        p: &str,
        head: Oid,
        base: Oid,
    ) -> Result<Option<ClRecord>, PushFailure> {
        let recorded: Option<ClRecord> = self
            .cls
            .get(Self::cl_key(p))
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice(&v).ok());
        let head_git = git2::Oid::from_bytes(&head.0).map_err(lower)?;
        let (tree, message, added) = {
            let repo = self.staging();
            let Some(tree) = tree_at(&repo, head_git, p)? else {
                return Ok(None);
            };
            if !repo.odb().map_err(lower)?.exists(tree)
                || recorded
                    .as_ref()
                    .is_some_and(|r| r.tree == tree.to_string())
            {
                return Ok(None);
            }
            (
                tree,
                messages(&repo, head, base)?,
                written(&repo, tree, "")?,
            )
        };
        let refs = mega.refs(p).await.map_err(PushError::from)?;
        let parent = refs.get(MAIN).copied().unwrap_or(Oid([0; 20]));
        let (commit, pack) = {
            let repo = self.staging();
            let from = repo.find_commit(head_git).map_err(lower)?;
            let id = rewrite(&repo, &from, tree, Some(parent), message.as_bytes())?;
            (id, pack_commits(&repo, &[id])?.0)
        };
        tracing::info!(path = p, %parent, %commit, pack_bytes = pack.len(), "pushing a change list");
        mega.push_to(p, MAIN, parent, our_oid(commit), pack).await?;
        let link = self
            .find_cl(mega, p, recorded.and_then(|r| r.link), &message, &added)
            .await;
        let rec = ClRecord {
            path: p.to_string(),
            link,
            commit: commit.to_string(),
            tree: tree.to_string(),
        };
        self.save_cl(&rec)?;
        Ok(Some(rec))
    }

    /// The link of the CL the push to `p` made: one Mega advertises at `p.git` (`refs/cl/*`)
    /// and lists open; else the one recorded, if still open; else the open CL titled with the
    /// message whose files include what the commit wrote. `None` when nothing fits.
    pub(super) async fn find_cl(
        &self,
        mega: &MegaPush,
        p: &str,
        recorded: Option<String>,
        message: &str,
        wrote: &[String],
    ) -> Option<String> {
        let open = match mega.open_cls().await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "could not list the open CLs");
                return recorded;
            }
        };
        let is_open = |l: &str| open.iter().any(|c| c.link == l);
        if let Some(r) = recorded.filter(|r| is_open(r)) {
            return Some(r);
        }
        if let Ok(refs) = mega.refs(p).await {
            let adv: Vec<&str> = refs
                .keys()
                .filter_map(|k| k.strip_prefix("refs/cl/"))
                .filter(|l| is_open(l))
                .collect();
            if let [one] = adv[..] {
                return Some(one.to_string());
            }
        }
        let title = message.lines().next().unwrap_or_default().trim();
        let taken: Vec<String> = self
            .cl_records()
            .into_iter()
            .filter_map(|r| r.link)
            .collect();
        for c in open.iter().filter(|c| {
            (c.title.trim() == title || c.title.trim() == message.trim())
                && !taken.contains(&c.link)
        }) {
            match mega.cl_paths(&c.link).await {
                Ok(files)
                    if wrote.iter().all(|w| {
                        files
                            .iter()
                            .any(|f| f == w || f.starts_with(&format!("{w}/")))
                    }) =>
                {
                    return Some(c.link.clone())
                }
                _ => {}
            }
        }
        tracing::warn!(path = p, "pushed, but could not find the CL it opened");
        None
    }
}

/// The CL a change at a repository path is in, for `status`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct InCl {
    /// The CL's link (`None`: pushed, but the link was not found).
    pub link: Option<String>,
    /// The writable path the CL is for.
    pub path: String,
    /// Whether the CL holds this very version (false: changed again since the push; `None`:
    /// not known any more).
    pub current: Option<bool>,
}

impl Vcs {
    /// The CL that holds the change at `path` (a repository path) from `old` to `new`
    /// (`None`: absent), if a push sent its writable path to one and the CL changes that path.
    pub fn in_cl(
        &self,
        records: &[ClRecord],
        path: &str,
        old: Option<Oid>,
        new: Option<Oid>,
    ) -> Option<InCl> {
        let rec = records.iter().find(|r| {
            r.path.is_empty()
                || path
                    .strip_prefix(&r.path)
                    .is_some_and(|rest| rest.starts_with('/'))
        })?;
        let rel = match rec.path.is_empty() {
            true => path,
            false => &path[rec.path.len() + 1..],
        };
        // The CL's entry there, when its commit is still in the staging repository.
        let there = git2::Oid::from_str(&rec.commit).ok().and_then(|c| {
            let repo = self.staging();
            let tree = repo.find_commit(c).and_then(|c| c.tree()).ok()?;
            Some(
                tree.get_path(std::path::Path::new(rel))
                    .ok()
                    .map(|e| our_oid(e.id())),
            )
        });
        if there.is_some_and(|t| t == old) {
            // The CL leaves this path as the base has it: the change is not in it.
            return None;
        }
        Some(InCl {
            link: rec.link.clone(),
            path: rec.path.clone(),
            current: there.map(|t| t == new),
        })
    }
}

#[cfg(test)]
#[path = "mega_tests.rs"]
mod tests;
