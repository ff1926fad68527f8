//! Merged directory listings.
//!
//! A listing is taken once, when the directory is opened, and offsets index into it: a
//! directory read while it changes never skips or repeats an entry.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use rfuse3::FileType;
use rustix::fs::{AtFlags, OFlags};

use super::{whiteout, OverlayFs, Result};

/// One entry of a merged listing.
#[derive(Clone, Debug)]
pub(super) struct DirItem {
    pub name: OsString,
    pub kind: FileType,
    /// A number for `d_ino`; the real inode comes from a lookup.
    pub ino_hint: u64,
}

impl OverlayFs {
    /// The merged entries of directory `ino` (without `.` and `..`), sorted by name.
    pub(super) async fn merged_listing(&self, ino: u64) -> Result<Vec<DirItem>> {
        let mut items: BTreeMap<OsString, DirItem> = BTreeMap::new();
        let mut hidden: Vec<OsString> = Vec::new();
        let upper = match self.upper_stat(ino)? {
            Some((t, st))
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::Directory =>
            {
                Some(t.open(OFlags::RDONLY | OFlags::DIRECTORY)?)
            }
            Some(_) => return Err(super::OverlayError::Errno(libc::ENOTDIR)),
            None => None,
        };
        if let Some(dir) = &upper {
            let mut d = rustix::fs::Dir::read_from(dir)?;
            while let Some(entry) = d.read() {
                let entry = entry?;
                let name = OsStr::from_bytes(entry.file_name().to_bytes());
                if name == "." || name == ".." {
                    continue;
                }
                let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => st,
                    Err(e) if e == rustix::io::Errno::NOENT => continue,
                    Err(e) => return Err(e.into()),
                };
                if whiteout::is_whiteout(dir, name, &st) {
                    hidden.push(name.to_os_string());
                    continue;
                }
                items.insert(
                    name.to_os_string(),
                    DirItem {
                        name: name.to_os_string(),
                        kind: super::file_type(st.st_mode),
                        ino_hint: st.st_ino,
                    },
                );
            }
        }
        if let Some(lower) = self.info(ino)?.lower {
            for child in self.lower.lower_children(lower).await?.iter() {
                let name = OsStr::from_bytes(&child.name).to_os_string();
                if items.contains_key(&name) || hidden.contains(&name) {
                    continue;
                }
                let kind = if child.node.kind.is_dir() {
                    FileType::Directory
                } else if child.node.kind == crate::remote::EntryKind::Symlink {
                    FileType::Symlink
                } else {
                    FileType::RegularFile
                };
                items.insert(
                    name.clone(),
                    DirItem {
                        name,
                        kind,
                        ino_hint: child.ino,
                    },
                );
            }
        }
        Ok(items.into_values().collect())
    }
}
