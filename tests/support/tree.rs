//! Walking and comparing directory trees (the mount against `git archive`, kernel overlayfs, ...).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::daemon::run_with_timeout;
use super::fixture::Fixture;

/// What a walked path is, with everything git records about it.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    Dir { mode: u32 },
    File { mode: u32, content: Vec<u8> },
    Symlink { target: PathBuf },
}

/// Walks `root` without following symlinks: relative path -> item.
pub fn walk(root: &Path) -> BTreeMap<PathBuf, Item> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let e = e.unwrap_or_else(|err| panic!("walking {}: {err}", root.display()));
        let rel = e
            .path()
            .strip_prefix(root)
            .expect("under root")
            .to_path_buf();
        let meta = e.path().symlink_metadata().expect("lstat");
        let mode = meta.permissions().mode() & 0o7777;
        let item = if meta.file_type().is_symlink() {
            Item::Symlink {
                target: std::fs::read_link(e.path()).expect("readlink"),
            }
        } else if meta.is_dir() {
            Item::Dir { mode }
        } else {
            let content = std::fs::read(e.path())
                .unwrap_or_else(|err| panic!("read {}: {err}", e.path().display()));
            assert_eq!(
                meta.len(),
                content.len() as u64,
                "stat size of {} differs from its content",
                rel.display()
            );
            Item::File { mode, content }
        };
        out.insert(rel, item);
    }
    out
}

/// Extracts `git archive` of `commit` into a fresh directory.
pub fn archive(fx: &Fixture, commit: &str) -> tempfile::TempDir {
    let dest = tempfile::tempdir().expect("tempdir");
    let script = format!(
        "git --git-dir '{}' -c tar.umask=0022 archive --format=tar {commit} | tar -x -C '{}'",
        fx.repo_path.display(),
        dest.path().display()
    );
    let out = run_with_timeout(Command::new("bash").arg("-c").arg(&script), 60);
    assert!(
        out.status.success(),
        "git archive failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dest
}

pub fn assert_same_tree(mount: &Path, expected: &Path) {
    let got = walk(mount);
    let want = walk(expected);
    let got_names: Vec<_> = got.keys().collect();
    let want_names: Vec<_> = want.keys().collect();
    assert_eq!(
        got_names, want_names,
        "the mount lists different names than git archive"
    );
    for (path, item) in &want {
        let mine = &got[path];
        if mine != item {
            let short = |i: &Item| match i {
                Item::File { mode, content } => format!("file {mode:o} {} bytes", content.len()),
                other => format!("{other:?}"),
            };
            panic!(
                "{}: mount has {}, git archive has {}",
                path.display(),
                short(mine),
                short(item)
            );
        }
    }
}
