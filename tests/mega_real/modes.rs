//! Reading a `/third-party` repository with every mode: the mount's subtree is `git archive` of
//! the pushed commit (names, types, modes, symlink targets, bytes). At the top of such a
//! repository Mega's monorepo holds a placeholder tree, so the remote lists it from the current
//! tree, checked against the listing pinned to the mounted commit.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use crate::support::daemon::{Daemon, DaemonOpts};
use crate::support::fixture::{self, Worktree};
use crate::support::mono::Mono;
use crate::support::tree::{archive, assert_same_tree};

/// An executable at the top of the repository (standard() has its one in `bin/`).
const TOP_EXEC: &str = "run.sh";
const TOP_EXEC_CONTENT: &[u8] = b"#!/bin/sh\nexec bin/run.sh\n";
/// A symlink two levels down, beside nothing but itself, pointing up to the nested executable.
const DEEP_LINK: &str = "bin/deeper/run-again";
const DEEP_LINK_TARGET: &str = "../run.sh";

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn a_third_party_repository_reads_with_every_mode_as_git_archive() {
    let Some(mono) = Mono::start() else { return };
    // standard(): files 0644, `bin/run.sh` 0755, relative and absolute symlinks at the top,
    // `a/up` one level down, an empty file, names with spaces and non-ASCII, a 20 MiB file and a
    // gitlink. Added here: an executable at the top, a symlink deeper in the nested `bin/`.
    let fx = fixture::standard();
    let wt = Worktree::clone_of(&fx);
    let top_exec = wt.path().join(TOP_EXEC);
    std::fs::write(&top_exec, TOP_EXEC_CONTENT).expect("write run.sh");
    std::fs::set_permissions(&top_exec, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let deep_link = wt.path().join(DEEP_LINK);
    std::fs::create_dir_all(deep_link.parent().expect("parent")).expect("mkdir bin/deeper");
    symlink(DEEP_LINK_TARGET, &deep_link).expect("symlink");
    let commit = wt.commit_all("every mode");
    wt.git(&["push", "-q", "origin", "HEAD:refs/heads/main"]);
    mono.push_ok(
        &fx.repo_path,
        "/third-party/modes",
        "refs/heads/main:refs/heads/main",
    );

    let d = Daemon::start_or_panic(DaemonOpts::new(mono.url.clone()));
    let top = d.workspace.join("third-party/modes");
    // The top of the repository first, on a fresh mount: the listing Mega serves only
    // without `oid`.
    assert_eq!(mode(&top.join(TOP_EXEC)), 0o755, "{}", d.log());
    assert_eq!(
        std::fs::read(top.join(TOP_EXEC)).expect("read run.sh"),
        TOP_EXEC_CONTENT
    );
    assert_eq!(mode(&top.join(fixture::README)), 0o644);
    assert_eq!(
        std::fs::read(top.join(fixture::README)).expect("read README.md"),
        fixture::README_CONTENT
    );
    for (link, target) in [
        (fixture::SYMLINK_REL, fixture::SYMLINK_REL_TARGET),
        (fixture::SYMLINK_ABS, fixture::SYMLINK_ABS_TARGET),
        (fixture::SYMLINK_UP, fixture::SYMLINK_UP_TARGET),
        (DEEP_LINK, DEEP_LINK_TARGET),
    ] {
        let got = std::fs::read_link(top.join(link))
            .unwrap_or_else(|e| panic!("{link} is not a symlink: {e}"));
        assert_eq!(got, Path::new(target), "{link}");
    }
    assert_eq!(mode(&top.join(fixture::EXEC_FILE)), 0o755);
    assert_eq!(
        std::fs::read(top.join(fixture::DEEPEST_FILE)).expect("read the deepest file"),
        fixture::DEEPEST_FILE_CONTENT
    );
    assert_eq!(
        std::fs::read(top.join(fixture::EMPTY_FILE)).expect("read the empty file"),
        b""
    );

    // Then everything: names, types, modes, symlink targets and bytes.
    let want = archive(&fx, &commit);
    assert_same_tree(&top, want.path());
}
