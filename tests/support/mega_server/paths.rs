//! What a git smart-HTTP path means on the test Mega server, as on the real one:
//! - `/git/<anything>.git`: the double's own plain git endpoint (not Mega's): the whole bare
//!   repository, `main` moves on a push;
//! - `/third-party/<name>.git`: that import repository, whose `main` is its own history (a commit
//!   `R` whose tree is the repository's tree); a push moves it, and the double then writes a
//!   monorepo commit with the new tree at `third-party/<name>`;
//! - any other path `P` (`/.git` is the root): `main` is the per-path commit `X` (tree: `P`'s
//!   tree at `main`, no parent, made on first request and kept until a CL at `P` merges), the
//!   open CLs at `P` are `refs/cl/<link>`; a push of ONE commit opens or updates `P`'s CL,
//!   whose files are the diff of `X`'s tree with the commit's, and nothing else moves.
//!
//! Each such path is a git namespace (`GIT_NAMESPACE`) of the one bare repository: before git
//! runs, the namespace's refs are set to what the path advertises; after a push the pushed ref
//! is read back, recorded, and the namespace set back. The checks Mega makes of a push to a
//! path are the repository's `pre-receive` hook, which writes its refusal to the file named by
//! `MEGA_DOUBLE_VERDICT` so the server can answer with Mega's words.

use std::path::Path;

use git2::{Oid, Repository, Signature, Tree};

use super::cl::{files_between, new_link, now, Cl, ClStatus};
use super::{main_commit, tree_at, Fail, Shared};

/// The `pre-receive` hook: one new commit per push (its parent is not checked: Mega takes any,
/// and diffs its tree with the path's `main`; git's `receive.denyNonFastForwards` still refuses
/// one that does not descend from it, see the differences in `mega_server`). Runs only when the
/// server sets `MEGA_DOUBLE_VERDICT` (pushes to a path).
const PRE_RECEIVE: &str = r#"#!/bin/sh
# Installed by the test Mega server (tests/support/mega_server/paths.rs): Mega's checks of a
# push to a path. Plain pushes (no MEGA_DOUBLE_VERDICT) pass.
[ -n "$MEGA_DOUBLE_VERDICT" ] || exit 0
zero=0000000000000000000000000000000000000000
while read old new ref; do
  if [ "$new" = "$zero" ]; then
    echo "deleting $ref is not supported" > "$MEGA_DOUBLE_VERDICT"; exit 1
  fi
  n=$(git rev-list "$new" --not --all | wc -l)
  if [ "$n" -gt 1 ]; then
    echo "Git error: only single commit support in each push" > "$MEGA_DOUBLE_VERDICT"; exit 1
  fi
done
exit 0
"#;

/// Installs the `pre-receive` hook in the bare repository.
pub(super) fn install_hook(repo_path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = repo_path.join("hooks");
    std::fs::create_dir_all(&dir)?;
    let hook = dir.join("pre-receive");
    std::fs::write(&hook, PRE_RECEIVE)?;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
}

/// What a smart-HTTP URL prefix (before `.git/`) names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `/git/<anything>`: the whole repository, plain git.
    Plain,
    /// `third-party/<name>`: an import repository.
    Repository(String),
    /// Any other repository path (`""`: the root): pushes open CLs.
    Path(String),
}

/// `prefix` is the URL path before `.git/` (`/project/x`, `/` for `/.git`).
pub(super) fn kind(prefix: &str) -> Kind {
    if prefix.starts_with("/git/") {
        return Kind::Plain;
    }
    let p = prefix.trim_matches('/').to_string();
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        ["third-party", name] if !name.is_empty() => Kind::Repository(p.clone()),
        _ => Kind::Path(p),
    }
}

/// The git namespace of a repository path (any path maps to its own).
pub(super) fn namespace(path: &str) -> String {
    let hex: String = path.bytes().map(|b| format!("{b:02x}")).collect();
    format!("path-{hex}")
}

fn git_fail(what: &str) -> impl FnOnce(git2::Error) -> Fail + '_ {
    move |e| Fail::internal(format!("{what}: {e}"))
}

/// A commit of `tree` on `parents` with `from`'s author, committer and message.
fn commit_like(
    repo: &Repository,
    from: &git2::Commit<'_>,
    tree: &Tree<'_>,
    parents: &[&git2::Commit<'_>],
) -> Result<Oid, Fail> {
    let msg = String::from_utf8_lossy(from.message_bytes()).into_owned();
    repo.commit(None, &from.author(), &from.committer(), &msg, tree, parents)
        .map_err(git_fail("write commit"))
}

/// `root` with the tree at `path` replaced by `new` (missing directories made).
pub(super) fn replace_at(
    repo: &Repository,
    root: Option<&Tree<'_>>,
    path: &str,
    new: Oid,
) -> Result<Oid, Fail> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let Some((first, rest)) = parts.split_first() else {
        return Ok(new);
    };
    let mut b = repo.treebuilder(root).map_err(git_fail("tree builder"))?;
    let child = root
        .and_then(|t| t.get_name(first))
        .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
        .and_then(|e| repo.find_tree(e.id()).ok());
    let id = replace_at(repo, child.as_ref(), &rest.join("/"), new)?;
    b.insert(first, id, 0o040000)
        .map_err(git_fail("tree entry"))?;
    b.write().map_err(git_fail("write tree"))
}

/// A new monorepo `main`: `main`'s tree with `path` replaced by `tree`, on `main`.
pub(super) fn land(
    repo: &Repository,
    path: &str,
    tree: Oid,
    message: &str,
    sig: &Signature<'_>,
) -> Result<Oid, Fail> {
    let main = main_commit(repo)?;
    let root = main.tree().map_err(git_fail("main's tree"))?;
    let new_root = replace_at(repo, Some(&root), path, tree)?;
    let new_root = repo.find_tree(new_root).map_err(git_fail("new tree"))?;
    repo.commit(
        Some("refs/heads/main"),
        sig,
        sig,
        message,
        &new_root,
        &[&main],
    )
    .map_err(git_fail("write the merged commit"))
}

impl Shared {
    /// The commit `path` advertises as `main` (see the module doc); `None` when `main` has no
    /// tree there.
    pub(super) fn base_of(&self, repo: &Repository, kind: &Kind) -> Result<Option<Oid>, Fail> {
        let main = main_commit(repo)?;
        let root = main.tree().map_err(git_fail("main's tree"))?;
        match kind {
            Kind::Plain => Ok(Some(main.id())),
            Kind::Path(p) if p.is_empty() => Ok(Some(main.id())),
            Kind::Path(p) => {
                if let Some(x) = self.mains().get(p) {
                    return Ok(Some(*x));
                }
                let Some(tree) = tree_at(repo, root, p) else {
                    return Ok(None);
                };
                let x = commit_like(repo, &main, &tree, &[])?;
                self.mains().insert(p.clone(), x);
                Ok(Some(x))
            }
            Kind::Repository(r) => {
                let Some(tree) = tree_at(repo, root, r) else {
                    return Ok(None);
                };
                let known = self.mains().get(r).copied();
                if let Some(known) = known {
                    let c = repo
                        .find_commit(known)
                        .map_err(git_fail("repository main"))?;
                    if c.tree_id() == tree.id() {
                        return Ok(Some(known));
                    }
                    // `main` changed there some other way (the plain endpoint): the repository
                    // takes it as its next commit.
                    let next = commit_like(repo, &main, &tree, &[&c])?;
                    self.mains().insert(r.clone(), next);
                    return Ok(Some(next));
                }
                let first = commit_like(repo, &main, &tree, &[])?;
                self.mains().insert(r.clone(), first);
                Ok(Some(first))
            }
        }
    }

    /// Sets the namespace of `kind`'s path to what it advertises; returns its `main`.
    pub(super) fn prepare(&self, kind: &Kind) -> Result<Option<Oid>, Fail> {
        let (Kind::Path(p) | Kind::Repository(p)) = kind else {
            return Ok(None);
        };
        let repo = self.open()?;
        let base = self.base_of(&repo, kind)?;
        let ns = format!("refs/namespaces/{}/", namespace(p));
        let old: Vec<String> = repo
            .references_glob(&format!("{ns}*"))
            .map_err(git_fail("list refs"))?
            .filter_map(|r| r.ok()?.name().map(str::to_string))
            .collect();
        for name in old {
            if let Ok(mut r) = repo.find_reference(&name) {
                r.delete().map_err(git_fail("delete ref"))?;
            }
        }
        let Some(base) = base else {
            return Ok(None);
        };
        repo.reference(&format!("{ns}refs/heads/main"), base, true, "path main")
            .map_err(git_fail("set the path's main"))?;
        repo.reference_symbolic(
            &format!("{ns}HEAD"),
            &format!("{ns}refs/heads/main"),
            true,
            "path HEAD",
        )
        .map_err(git_fail("set the path's HEAD"))?;
        if matches!(kind, Kind::Path(_)) {
            for (link, cl) in self.cls().iter() {
                if cl.path == *p && cl.status == ClStatus::Open {
                    let at = cl.commit.unwrap_or(base);
                    repo.reference(&format!("{ns}refs/cl/{link}"), at, true, "open CL")
                        .map_err(git_fail("set a CL ref"))?;
                }
            }
        }
        Ok(Some(base))
    }

    /// After `git receive-pack` ran in `kind`'s namespace (advertising `base`): records what
    /// moved there, then sets the namespace back.
    pub(super) fn after_push(&self, kind: &Kind, base: Option<Oid>) -> Result<(), Fail> {
        let (Kind::Path(p) | Kind::Repository(p)) = kind else {
            return Ok(());
        };
        let repo = self.open()?;
        let name = format!("refs/namespaces/{}/refs/heads/main", namespace(p));
        let pushed = repo
            .find_reference(&name)
            .ok()
            .and_then(|r| r.target())
            .filter(|n| Some(*n) != base);
        if let Some(new) = pushed {
            let c = repo.find_commit(new).map_err(git_fail("pushed commit"))?;
            match kind {
                Kind::Repository(r) => {
                    self.mains().insert(r.clone(), new);
                    let msg = String::from_utf8_lossy(c.message_bytes()).into_owned();
                    land(&repo, r, c.tree_id(), &msg, &c.committer())?;
                }
                _ => self.record_cl(&repo, p, base, &c)?,
            }
        }
        drop(repo);
        self.prepare(kind).map(|_| ())
    }

    /// Opens or updates the CL at `p` for the pushed commit `c` (on `base`).
    fn record_cl(
        &self,
        repo: &Repository,
        p: &str,
        base: Option<Oid>,
        c: &git2::Commit<'_>,
    ) -> Result<(), Fail> {
        let old_tree = match base {
            Some(b) => Some(
                repo.find_commit(b)
                    .and_then(|b| b.tree())
                    .map_err(git_fail("base tree"))?,
            ),
            None => None,
        };
        let new_tree = c.tree().map_err(git_fail("pushed tree"))?;
        let items = files_between(repo, old_tree.as_ref(), &new_tree)?;
        let mut cls = self.cls();
        let open = cls
            .iter()
            .find(|(_, cl)| cl.path == p && cl.status == ClStatus::Open && cl.commit.is_some())
            .map(|(l, _)| l.clone());
        let t = now();
        match open.and_then(|l| cls.get_mut(&l)) {
            Some(cl) => {
                cl.commit = Some(c.id());
                cl.from = base;
                cl.items = items;
                cl.updated = t;
            }
            None => {
                let id = cls.len() as i64 + 1;
                let title = c.summary().unwrap_or_default().to_string();
                cls.insert(
                    new_link(),
                    Cl {
                        path: p.to_string(),
                        items,
                        commit: Some(c.id()),
                        from: base,
                        title,
                        status: ClStatus::Open,
                        id,
                        opened: t,
                        updated: t,
                    },
                );
            }
        }
        Ok(())
    }
}
