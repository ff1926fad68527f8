//! `diff`: a unified diff of the upper layer against the mounted commit.
//!
//! Promises: the new side of every change is the content read once by the scan that found the
//! change (see [`super::scan`]), so the diff shows contents the files really had; names are
//! quoted as git quotes them (`"a/caf\351"` for bytes that are not UTF-8). A side larger than
//! [`IN_MEMORY_MAX`] is never loaded: the file is shown as binary, as git shows a file larger
//! than its `core.bigFileThreshold`.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use tokio::runtime::Handle;

use super::change::{Change, ChangeKind, GitEntry};
use super::names::quote_prefixed;
use super::scan::{Content, Sink, Want, IN_MEMORY_MAX};
use super::VcsError;
use crate::dicfuse::Dicfuse;
use crate::remote::EntryKind;
use crate::store::Store;

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

/// Turns each change into its part of the diff as the scan finds it.
struct DiffSink<'a> {
    store: &'a Arc<Store>,
    rt: &'a Handle,
    /// (path, kind) -> text, put in path order at the end.
    parts: Vec<((Vec<u8>, u8), String)>,
}

impl Sink for DiffSink<'_> {
    fn wants(&self) -> Want {
        Want::Small
    }

    fn change(&mut self, c: &Change, new: Option<Content>) -> Result<(), VcsError> {
        let new = match &new {
            Some(Content::Bytes(b)) => Some(&b[..]),
            None => Some(&[][..]),
            // Never asked for (`Want::Small`), and as large as one that was not kept.
            Some(Content::TooLarge(_) | Content::Loose(_)) => None,
        };
        let text = self.part(c, new)?;
        self.parts.push(((c.path.clone(), c.kind as u8), text));
        Ok(())
    }
}

impl DiffSink<'_> {
    /// The part of change `c`; `new` is its new content, `None` when too large to load.
    fn part(&self, c: &Change, new: Option<&[u8]>) -> Result<String, VcsError> {
        let mut out = String::new();
        let (a, b) = (quote_prefixed("a/", &c.path), quote_prefixed("b/", &c.path));
        let _ = writeln!(out, "diff --git {a} {b}");
        if let Some(o) = c
            .old
            .filter(|o| o.kind.is_dir() && c.kind == ChangeKind::Deleted)
        {
            let _ = writeln!(out, "deleted directory {}\n", mode(&o));
            return Ok(out);
        }
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
        if let (Some(o), Some(n)) = (&c.old, &c.new) {
            if o.oid == n.oid {
                return Ok(out);
            }
        }
        let old = match &c.old {
            // Not needed when the new side is too large: the ids differ, so the files do.
            Some(o) if !o.kind.is_dir() && new.is_some() => self.old_content(o)?,
            _ => Some(Vec::new()),
        };
        let a = if c.old.is_some() {
            a
        } else {
            "/dev/null".into()
        };
        let b = if c.new.is_some() {
            b
        } else {
            "/dev/null".into()
        };
        let (Some(old), Some(new)) = (old, new) else {
            let _ = writeln!(out, "Binary files {a} and {b} differ");
            return Ok(out);
        };
        if old == new {
            return Ok(out);
        }
        if is_binary(&old) || is_binary(new) {
            let _ = writeln!(out, "Binary files {a} and {b} differ");
            return Ok(out);
        }
        let (old_s, new_s) = (String::from_utf8_lossy(&old), String::from_utf8_lossy(new));
        let text = similar::TextDiff::from_lines(old_s.as_ref(), new_s.as_ref());
        let _ = write!(
            out,
            "{}",
            text.unified_diff().context_radius(3).header(&a, &b)
        );
        Ok(out)
    }

    /// The content of the commit's blob `o`; `None` when it is larger than [`IN_MEMORY_MAX`]
    /// (told by the size of the cached object, before anything of it is read).
    fn old_content(&self, o: &GitEntry) -> Result<Option<Vec<u8>>, VcsError> {
        if let Some(b) = self.store.cached_bytes(o.oid) {
            return Ok(Some(b.to_vec()));
        }
        let file = self.rt.block_on(self.store.open_blob(o.oid))?;
        let len = file.metadata()?.len();
        if len > IN_MEMORY_MAX {
            return Ok(None);
        }
        let mut body = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        (&file).take(len + 1).read_to_end(&mut body)?;
        Ok(Some(body))
    }
}

/// Unified diff text of the changes upper layer `upper` makes to the commit's directory
/// `lower`, under repository path `prefix`.
pub async fn diff(
    dic: &Arc<Dicfuse>,
    upper: &Path,
    lower: Option<u64>,
    prefix: &str,
) -> Result<String, VcsError> {
    let (dic, upper, prefix) = (dic.clone(), upper.to_path_buf(), prefix.to_string());
    let rt = Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut sink = DiffSink {
            store: dic.store(),
            rt: &rt,
            parts: Vec::new(),
        };
        super::scan::walk(&dic, &rt, &upper, lower, prefix.as_bytes(), &mut sink)?;
        sink.parts.sort_by(|x, y| x.0.cmp(&y.0));
        Ok(sink.parts.into_iter().map(|(_, t)| t).collect())
    })
    .await
    .map_err(|e| VcsError::Lower(format!("the diff of the upper layer failed: {e}")))?
}
