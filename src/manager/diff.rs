//! `diff`: a unified diff of the upper layer against the mounted commit.

use std::fmt::Write as _;
use std::path::Path;

use super::status::{Change, ChangeKind, GitEntry};
use super::ManagerError;
use crate::remote::EntryKind;
use crate::store::Store;
use std::sync::Arc;

fn mode(e: &GitEntry) -> &'static str {
    match e.kind {
        EntryKind::File => "100644",
        EntryKind::Executable => "100755",
        EntryKind::Symlink => "120000",
        EntryKind::Dir => "040000",
        EntryKind::Submodule => "160000",
    }
}

fn is_binary(b: &[u8]) -> bool {
    b[..b.len().min(8000)].contains(&0)
}

/// The content of an upper entry at repository path `path`, read from `upper_root`.
fn upper_content(
    upper_root: &Path,
    prefix: &str,
    path: &str,
    e: &GitEntry,
) -> Result<Vec<u8>, ManagerError> {
    let rel = if prefix.is_empty() {
        path
    } else {
        path.strip_prefix(prefix)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(path)
    };
    let p = upper_root.join(rel);
    Ok(match e.kind {
        EntryKind::Symlink => {
            std::os::unix::ffi::OsStrExt::as_bytes(std::fs::read_link(&p)?.as_os_str()).to_vec()
        }
        _ => std::fs::read(&p)?,
    })
}

/// Unified diff text for `changes` (from [`super::status::status`]).
pub async fn diff(
    store: &Arc<Store>,
    upper_root: &Path,
    prefix: &str,
    changes: &[Change],
) -> Result<String, ManagerError> {
    let mut out = String::new();
    for c in changes {
        let p = &c.path;
        let old_is_dir = c.old.is_some_and(|o| o.kind.is_dir());
        if old_is_dir && c.kind == ChangeKind::Deleted {
            let _ = writeln!(
                out,
                "diff --git a/{p} b/{p}\ndeleted directory {}\n",
                mode(c.old.as_ref().expect("checked"))
            );
            continue;
        }
        let old = match &c.old {
            Some(o) if !o.kind.is_dir() => store.blob_bytes(o.oid).await?.to_vec(),
            _ => Vec::new(),
        };
        let new = match &c.new {
            Some(n) => upper_content(upper_root, prefix, p, n)?,
            None => Vec::new(),
        };
        let _ = writeln!(out, "diff --git a/{p} b/{p}");
        match (&c.old, &c.new) {
            (None, Some(n)) => {
                let _ = writeln!(out, "new file mode {}", mode(n));
            }
            (Some(o), None) => {
                let _ = writeln!(out, "deleted file mode {}", mode(o));
            }
            (Some(o), Some(n)) if mode(o) != mode(n) => {
                let _ = writeln!(out, "old mode {}\nnew mode {}", mode(o), mode(n));
            }
            _ => {}
        }
        let (a, b) = (
            if c.old.is_some() {
                format!("a/{p}")
            } else {
                "/dev/null".into()
            },
            if c.new.is_some() {
                format!("b/{p}")
            } else {
                "/dev/null".into()
            },
        );
        if old == new {
            continue;
        }
        if is_binary(&old) || is_binary(&new) {
            let _ = writeln!(out, "Binary files {a} and {b} differ");
            continue;
        }
        let (old_s, new_s) = (String::from_utf8_lossy(&old), String::from_utf8_lossy(&new));
        let text = similar::TextDiff::from_lines(old_s.as_ref(), new_s.as_ref());
        let _ = write!(
            out,
            "{}",
            text.unified_diff().context_radius(3).header(&a, &b)
        );
    }
    Ok(out)
}
