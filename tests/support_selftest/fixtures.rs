//! Selftest: fixtures (see tests/support_selftest.rs). The standard and generated repositories
//! are what git reads them to be, deterministic, and `add_commit` stacks commits on `main`.

use std::collections::BTreeMap;
use std::process::Command;

use git2::ObjectType;

use super::{git, hash};
use crate::support::fixture::{self, EntryKind};
use crate::support::run_with_timeout;

#[test]
fn standard_fixture_archive_lists_expected_paths() {
    let fx = fixture::standard();
    let git_dir = fx.repo_path.to_str().expect("utf-8 temp path");
    let tar = fx.dir.path().join("archive.tar");
    git(&[
        "--git-dir",
        git_dir,
        "archive",
        "--format=tar",
        "-o",
        tar.to_str().expect("utf-8 temp path"),
        &fx.commit,
    ]);
    let out = run_with_timeout(Command::new("tar").arg("-tf").arg(&tar), 60);
    assert!(out.status.success(), "tar -t failed");
    let listed: Vec<String> = String::from_utf8(out.stdout)
        .expect("utf-8 tar listing")
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();
    for p in fixture::standard_paths()
        .into_iter()
        .chain(fixture::STANDARD_DIRS.iter().copied())
    {
        assert!(
            listed.iter().any(|l| l == p),
            "git archive does not list {p}: {listed:?}"
        );
    }
    assert!(listed.iter().any(|l| l == fixture::SUBMODULE));
    assert_eq!(
        listed.len(),
        fixture::standard_paths().len() + fixture::STANDARD_DIRS.len(),
        "unexpected entries in {listed:?}"
    );

    // Modes and ids, as git itself reads them.
    let out = git(&["--git-dir", git_dir, "ls-tree", "-r", "-z", &fx.commit]);
    let mut tree: BTreeMap<String, (String, String)> = BTreeMap::new();
    for rec in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rec = String::from_utf8(rec.to_vec()).expect("utf-8 ls-tree");
        let (meta, path) = rec.split_once('\t').expect("tab in ls-tree record");
        let mut f = meta.split(' ');
        let mode = f.next().expect("mode").to_string();
        let _kind = f.next().expect("type");
        let oid = f.next().expect("oid").to_string();
        tree.insert(path.to_string(), (mode, oid));
    }
    let entries = fixture::standard_entries();
    assert_eq!(tree.len(), entries.len(), "ls-tree: {:?}", tree.keys());
    for e in &entries {
        let (mode, oid) = tree
            .get(e.path)
            .unwrap_or_else(|| panic!("{} missing from ls-tree", e.path));
        assert_eq!(
            *mode,
            format!("{:06o}", e.kind.mode()),
            "mode of {}",
            e.path
        );
        let want = match e.kind {
            EntryKind::Gitlink => fixture::SUBMODULE_COMMIT.to_string(),
            _ => hash(ObjectType::Blob, &e.data),
        };
        assert_eq!(*oid, want, "oid of {}", e.path);
    }
    assert_eq!(tree[fixture::EXEC_FILE].0, "100755");
    assert_eq!(tree[fixture::SYMLINK_ABS].0, "120000");
    assert_eq!(tree[fixture::SUBMODULE].0, "160000");
    let big = fixture::object_bytes(&fx, &tree[fixture::BIG_FILE].1);
    assert_eq!(big.len(), fixture::BIG_FILE_SIZE);
    assert_eq!(
        fixture::object_bytes(&fx, &tree[fixture::SYMLINK_UP].1),
        b"../empty.txt"
    );

    // Well-formed objects, HEAD on main.
    git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);
    let out = git(&["--git-dir", git_dir, "symbolic-ref", "HEAD"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "refs/heads/main"
    );
    assert_eq!(fixture::head(&fx), fx.commit);
}

#[test]
fn standard_fixture_is_deterministic() {
    let a = fixture::standard();
    let b = fixture::standard();
    assert_eq!(a.commit, b.commit);
    assert_eq!(a.commit.len(), 40);
    let big1 = fixture::big_blob_content();
    assert_eq!(big1.len(), 20 * 1024 * 1024);
    assert_eq!(big1, fixture::big_blob_content());
    // Not trivially repetitive.
    assert_ne!(big1[..4096], big1[4096..8192]);
}

#[test]
fn generated_fixture_and_add_commit() {
    let fx = fixture::generated(1000, 30);
    let git_dir = fx.repo_path.to_str().expect("utf-8 temp path");
    let out = git(&[
        "--git-dir",
        git_dir,
        "ls-tree",
        "-r",
        "--name-only",
        &fx.commit,
    ]);
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(names.len(), 1000);
    let p = fixture::generated_path(999, 1000, 30);
    assert!(names.contains(&p), "{p} not in listing");
    let oid = fixture::entry_oid(&fx, &fx.commit, &p).expect("generated file exists");
    assert_eq!(
        fixture::object_bytes(&fx, &oid),
        fixture::generated_content(999)
    );
    git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);

    // More than 256 directories: grouped one level deeper.
    let big = fixture::generated(3000, 5);
    let out = git(&[
        "--git-dir",
        big.repo_path.to_str().expect("utf-8"),
        "ls-tree",
        "-r",
        "--name-only",
        &big.commit,
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3000);

    // add_commit: new commit on main, parent = old tip, old tree unchanged.
    let c1 = fixture::add_commit(&fx, "d0000/new/file.txt", b"new content\n");
    assert_ne!(c1, fx.commit);
    assert_eq!(fixture::head(&fx), c1);
    let out = git(&["--git-dir", git_dir, "rev-parse", &format!("{c1}^")]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), fx.commit);
    let new_oid = fixture::entry_oid(&fx, &c1, "d0000/new/file.txt").expect("new file");
    assert_eq!(fixture::object_bytes(&fx, &new_oid), b"new content\n");
    assert!(fixture::entry_oid(&fx, &fx.commit, "d0000/new/file.txt").is_none());
    assert_ne!(
        fixture::entry_oid(&fx, &fx.commit, "d0000"),
        fixture::entry_oid(&fx, &c1, "d0000")
    );
    assert_eq!(
        fixture::entry_oid(&fx, &fx.commit, "d0001"),
        fixture::entry_oid(&fx, &c1, "d0001")
    );
    let c2 = fixture::add_commit(&fx, &fixture::generated_path(0, 1000, 30), b"changed\n");
    assert_eq!(fixture::head(&fx), c2);
    git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);
}

#[test]
fn add_commit_keeps_exec_bit() {
    let fx = fixture::generated(3, 3);
    let exec_fx = fixture::standard();
    let c = fixture::add_commit(&exec_fx, fixture::EXEC_FILE, b"#!/bin/sh\necho changed\n");
    let out = git(&[
        "--git-dir",
        exec_fx.repo_path.to_str().expect("utf-8"),
        "ls-tree",
        &c,
        fixture::EXEC_FILE,
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("100755 blob "));
    drop(fx);
}
