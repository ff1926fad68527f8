//! Unit tests of the Mega push's pure parts: where a writable path goes, and the local
//! commits' chain, messages and rewriting.

use super::*;

fn target(path: &str) -> Result<String, String> {
    match classify(path) {
        Ok(Target::Repository(r)) => Ok(format!("repo {r}")),
        Ok(Target::Cl(p)) => Ok(format!("cl {p}")),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn a_writable_path_goes_to_its_repository_or_to_a_cl_at_itself() {
    assert_eq!(target("third-party/x"), Ok("repo third-party/x".into()));
    assert_eq!(
        target("third-party/x/sub/dir"),
        Ok("repo third-party/x".into())
    );
    assert_eq!(target("project/x"), Ok("cl project/x".into()));
    assert_eq!(target("third-partyish/x"), Ok("cl third-partyish/x".into()));
    assert_eq!(target(""), Ok("cl ".into()));
    let wide = target("third-party").unwrap_err();
    assert!(
        wide.contains("/third-party") && wide.contains("several"),
        "{wide}"
    );
}

/// A repository with a `root` commit and three on it: `one`, `two`, `two` again (same message).
fn repo_with_three() -> (tempfile::TempDir, git2::Repository, Vec<git2::Oid>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = git2::Repository::init_bare(dir.path()).expect("init");
    let sig = git2::Signature::new(
        "A U Thor",
        "a@example.com",
        &git2::Time::new(1_700_000_000, 0),
    )
    .expect("sig");
    let mut ids = Vec::new();
    for (i, msg) in ["root", "one", "two", "two"].iter().enumerate() {
        let blob = repo.blob(format!("{i}\n").as_bytes()).expect("blob");
        let mut tb = repo.treebuilder(None).expect("tb");
        tb.insert("f.txt", blob, 0o100644).expect("insert");
        let tree = repo.find_tree(tb.write().expect("tree")).expect("tree");
        let parents: Vec<git2::Commit<'_>> = ids
            .last()
            .map(|p| repo.find_commit(*p).expect("parent"))
            .into_iter()
            .collect();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        ids.push(
            repo.commit(None, &sig, &sig, msg, &tree, &refs)
                .expect("commit"),
        );
    }
    (dir, repo, ids)
}

#[test]
fn the_local_commits_are_chained_oldest_first_and_their_messages_kept_once() {
    let (_dir, repo, ids) = repo_with_three();
    let base = our_oid(ids[0]);
    let head = our_oid(ids[3]);
    assert_eq!(chain(&repo, head, base).expect("chain"), ids[1..].to_vec());
    assert_eq!(chain(&repo, base, base).expect("chain"), Vec::new());
    assert_eq!(
        messages(&repo, head, base).expect("messages"),
        "one\n\ntwo\n"
    );
}

#[test]
fn a_rewritten_commit_keeps_its_author_and_committer_on_a_new_tree_and_parent() {
    let (_dir, repo, ids) = repo_with_three();
    let from = repo.find_commit(ids[2]).expect("commit");
    let tree = repo.find_commit(ids[1]).expect("c").tree_id();
    let parent = our_oid(ids[0]);
    let id = rewrite(&repo, &from, tree, Some(parent), b"squashed\n").expect("rewrite");
    let c = repo.find_commit(id).expect("the rewritten commit");
    assert_eq!(c.tree_id(), tree);
    assert_eq!(c.parent_ids().collect::<Vec<_>>(), vec![ids[0]]);
    assert_eq!(c.message(), Some("squashed\n"));
    assert_eq!(c.author().name(), Some("A U Thor"));
    assert_eq!(c.committer().when().seconds(), 1_700_000_000);
    // The zero id is no parent (a path's first commit on Mega has none).
    let orphan = rewrite(&repo, &from, tree, Some(Oid([0; 20])), b"first\n").expect("rewrite");
    assert_eq!(repo.find_commit(orphan).expect("c").parent_count(), 0);
    // The tree at a path of a commit, and none where there is no directory.
    assert_eq!(tree_at(&repo, ids[1], "").expect("root"), Some(tree));
    assert_eq!(tree_at(&repo, ids[1], "f.txt").expect("a file"), None);
    assert_eq!(tree_at(&repo, ids[1], "missing").expect("nothing"), None);
}
