//! Change lists on Mega, by their own path.
//!
//! Mega opens a change list (CL) at the path that was pushed to (`/project/x` for a push to
//! `/project/x.git`), and `GET /api/v1/cl/<link>/files-list` names its files relative to that
//! path. No route open to a token names the path (the detail route wants a session cookie, the
//! list has no path), so it is found from what is open:
//! - `GET /api/v1/cl/<link>/update-status` gives `target_head`, the commit that the CL's path
//!   advertises as its `refs/heads/main` (a per-path commit);
//! - `GET /<P>.git/info/refs?service=git-upload-pack` advertises that per-path `main` and the
//!   path's open CLs as `refs/cl/<name>` (Mega's first push to a path may give the ref another
//!   name than the CL, so the name alone is not trusted to be there).
//!
//! The candidates are the path the changes are for and its parents, the root first; the first
//! whose `main` is `target_head` or which advertises `refs/cl/<link>` is the CL's path. The
//! changes come back repository-relative. A CL whose path is none of them (elsewhere, or below
//! the path asked for) yields no change, which the overlay refuses as a CL with nothing there.

use reqwest::Method;
use serde::Deserialize;

use super::{common_data, MegaRemote};
use crate::remote::{ClAction, ClChange, EntryKind, Oid, RemoteError};

#[derive(Deserialize)]
struct ClFile {
    path: String,
    #[serde(default)]
    sha: String,
    action: String,
    #[serde(default, alias = "from_path")]
    old_path: Option<String>,
}

#[derive(Deserialize, Default)]
struct UpdateStatus {
    #[serde(default)]
    target_head: String,
}

/// `at` and each of its parents, the root (`""`) first.
pub(super) fn candidates(at: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut cur = String::new();
    for part in at.split('/').filter(|p| !p.is_empty()) {
        if !cur.is_empty() {
            cur.push('/');
        }
        cur.push_str(part);
        out.push(cur.clone());
    }
    out
}

/// The repository path of `rel`, a path relative to the CL's path `cl_path` (both `/`-separated,
/// with or without leading `/`).
pub(super) fn rejoin(cl_path: &str, rel: &str) -> String {
    let base = cl_path.trim_matches('/');
    let rel = rel.trim_start_matches('/');
    match (base.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (false, true) => base.to_string(),
        (false, false) => format!("{base}/{rel}"),
    }
}

/// The refs of a smart-HTTP `info/refs` advertisement: `(id, name)` pairs (pkt-lines; the
/// service line, flushes and capabilities skipped).
pub(super) fn advertised(body: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = body;
    while rest.len() >= 4 {
        let Some(len) = std::str::from_utf8(&rest[..4])
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
        else {
            break;
        };
        if len == 0 {
            rest = &rest[4..];
            continue;
        }
        if len < 4 || len > rest.len() {
            break;
        }
        let line = &rest[4..len];
        rest = &rest[len..];
        let line = line.split(|b| *b == 0).next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\n');
        if let Some((id, name)) = line.split_once(' ') {
            if id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                out.push((id.to_ascii_lowercase(), name.to_string()));
            }
        }
    }
    out
}

/// Whether an advertisement is the one of CL `cl`'s path: its `main` is `target_head`, or it
/// names `refs/cl/<cl>`.
pub(super) fn is_cl_path(refs: &[(String, String)], cl: &str, target_head: &str) -> bool {
    let cl_ref = format!("refs/cl/{cl}");
    refs.iter().any(|(id, name)| {
        (name == "refs/heads/main" && id.eq_ignore_ascii_case(target_head)) || *name == cl_ref
    })
}

/// The files-list items as repository-relative changes under `cl_path`.
fn changes(url: &str, cl_path: &str, files: Vec<ClFile>) -> Result<Vec<ClChange>, RemoteError> {
    let mut out = Vec::new();
    for f in files {
        match f.action.as_str() {
            "deleted" | "delete" => out.push(ClChange {
                path: rejoin(cl_path, &f.path),
                action: ClAction::Delete,
            }),
            "new" | "added" | "add" | "modified" | "modify" | "renamed" | "moved" | "rename"
            | "move" => {
                if let Some(old) = f.old_path.as_deref().filter(|o| !o.is_empty()) {
                    out.push(ClChange {
                        path: rejoin(cl_path, old),
                        action: ClAction::Delete,
                    });
                }
                // Mega's list has no modes: files it adds are plain files.
                out.push(ClChange {
                    path: rejoin(cl_path, &f.path),
                    action: ClAction::Write {
                        oid: Oid::from_hex(&f.sha)?,
                        kind: EntryKind::File,
                    },
                });
            }
            other => {
                return Err(RemoteError::Protocol {
                    url: url.to_string(),
                    reason: format!("unknown CL action {other:?}"),
                })
            }
        }
    }
    Ok(out)
}

impl MegaRemote {
    /// The changes of CL `cl` for repository path `at`, repository-relative.
    pub(super) async fn cl_changes_at(
        &self,
        cl: &str,
        at: &str,
    ) -> Result<Vec<ClChange>, RemoteError> {
        // The files first: an unknown CL is a 404 here (update-status answers it with a 500).
        let path = format!("/api/v1/cl/{cl}/files-list");
        let url = format!("{}{path}", self.opts.base_url);
        let (_, body) = self.fetch(Method::GET, &path, &[]).await?;
        let files: Vec<ClFile> = common_data(&url, &body)?;
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let status_path = format!("/api/v1/cl/{cl}/update-status");
        let status_url = format!("{}{status_path}", self.opts.base_url);
        let (_, body) = self.fetch(Method::GET, &status_path, &[]).await?;
        let status: UpdateStatus = common_data(&status_url, &body)?;
        for p in candidates(at) {
            let refs_path = format!("/{p}.git/info/refs");
            let (_, body) = self
                .fetch(Method::GET, &refs_path, &[("service", "git-upload-pack")])
                .await?;
            if is_cl_path(&advertised(&body), cl, &status.target_head) {
                tracing::debug!(cl, cl_path = p, "found the change list's path");
                return changes(&url, &p, files);
            }
        }
        tracing::info!(
            cl,
            at,
            "the change list's path is neither {at:?} nor one of its parents"
        );
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_the_path_and_its_parents_root_first() {
        assert_eq!(candidates(""), [""]);
        assert_eq!(candidates("project"), ["", "project"]);
        assert_eq!(candidates("/project/x/"), ["", "project", "project/x"]);
    }

    #[test]
    fn files_list_paths_are_rejoined_under_the_cl_path() {
        assert_eq!(rejoin("/project/x", "a.txt"), "project/x/a.txt");
        assert_eq!(rejoin("project/x", "/sub/c.txt"), "project/x/sub/c.txt");
        assert_eq!(rejoin("/", "/a/b/c.txt"), "a/b/c.txt");
        assert_eq!(rejoin("", "a.txt"), "a.txt");
    }

    #[test]
    fn files_list_items_become_repository_changes() {
        let blob = "14a1a3c850289f2e692966071ac027b9447c4a52";
        let files: Vec<ClFile> = serde_json::from_value(serde_json::json!([
            {"path": "a.txt", "sha": blob, "action": "modified"},
            {"path": "b.txt", "sha": blob, "action": "deleted"},
            {"path": "sub/n.txt", "sha": blob, "action": "renamed", "old_path": "old.txt"},
        ]))
        .expect("items");
        let got = changes("u", "project/x", files).expect("changes");
        let paths: Vec<_> = got
            .iter()
            .map(|c| (c.path.as_str(), c.action == ClAction::Delete))
            .collect();
        assert_eq!(
            paths,
            [
                ("project/x/a.txt", false),
                ("project/x/b.txt", true),
                ("project/x/old.txt", true),
                ("project/x/sub/n.txt", false),
            ]
        );
    }

    /// An advertisement as the real server sends it for `/project/x.git` (its CL ref named
    /// otherwise than the CL, as Mega's first push does).
    const ADVERTISED: &[u8] = b"001e# service=git-upload-pack\n0000\
0082a059f93dd36137879cf0467d6c8bda817acae47a HEAD\0multi_ack_detailed no-done include-tag side-band-64k ofs-delta agent=mega/0.1.0\n\
003e0f6ae81c803d34fea9537f30a647f175aed2232d refs/cl/OACEXNZY\n\
003da059f93dd36137879cf0467d6c8bda817acae47a refs/heads/main\n0000";

    #[test]
    fn advertisements_are_parsed_and_matched() {
        let refs = advertised(ADVERTISED);
        assert_eq!(
            refs.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(),
            ["HEAD", "refs/cl/OACEXNZY", "refs/heads/main"]
        );
        let head = "a059f93dd36137879cf0467d6c8bda817acae47a";
        assert!(is_cl_path(&refs, "TBNJEZXO", head));
        assert!(is_cl_path(&refs, "OACEXNZY", "0"));
        assert!(!is_cl_path(
            &refs,
            "TBNJEZXO",
            "0f6ae81c803d34fea9537f30a647f175aed2232d"
        ));
        // A path without a main (Mega's zero-id capabilities line) matches nothing.
        let empty = advertised(
            b"001e# service=git-upload-pack\n0000\
008d0000000000000000000000000000000000000000 capabilities^{}\0multi_ack_detailed no-done include-tag side-band-64k ofs-delta agent=mega/0.1.0\n0000",
        );
        assert_eq!(empty.len(), 1);
        assert!(!is_cl_path(
            &empty,
            "X",
            "0000000000000000000000000000000000000000"
        ));
        assert!(advertised(b"zzzz").is_empty());
    }
}
