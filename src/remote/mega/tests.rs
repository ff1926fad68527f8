//! The agreement check between the server's current tree and the listing pinned to the mounted
//! commit, alone and through `list_tree` against a minimal server that answers like Mega at the
//! top of a `/third-party` repository.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;

use super::*;

fn blob(data: &[u8]) -> Oid {
    Oid::hash_object(ObjectKind::Blob, data)
}

/// A raw tree body with these `(mode, name, id)` entries, in the order given (Mega's own trees
/// are not in git's order).
fn tree_body(entries: &[(&str, &str, Oid)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (mode, name, oid) in entries {
        out.extend_from_slice(format!("{mode} {name}\0").as_bytes());
        out.extend_from_slice(&oid.0);
    }
    out
}

/// What `tree/content-hash` says about the same entries: names, ids, file or directory.
fn pinned(entries: &[(&str, &str, Oid)]) -> Listing {
    Listing {
        entries: entries
            .iter()
            .map(|(mode, name, oid)| ListedEntry {
                entry: TreeEntry {
                    name: name.as_bytes().to_vec(),
                    kind: if *mode == "40000" {
                        EntryKind::Dir
                    } else {
                        EntryKind::File
                    },
                    oid: *oid,
                },
                size: None,
            })
            .collect(),
        exact_modes: false,
    }
}

/// A repository top: a script, a symlink, a file and a directory, with Mega's order.
fn repo_top() -> Vec<(&'static str, &'static str, Oid)> {
    vec![
        ("100644", "zz.txt", blob(b"last\n")),
        ("100755", "run.sh", blob(b"#!/bin/sh\n")),
        ("40000", "src", Oid([7; 20])),
        ("120000", "link", blob(b"zz.txt")),
    ]
}

#[test]
fn the_same_names_and_ids_in_another_order_agree() {
    let top = repo_top();
    let served = tree_body(&top);
    let current =
        listing_from_raw(Oid::hash_object(ObjectKind::Tree, &served), &served).expect("parses");
    let mut reversed = top.clone();
    reversed.reverse();
    assert!(same_entries(&current, &pinned(&reversed)));
}

#[test]
fn another_id_or_another_entry_disagrees() {
    let top = repo_top();
    let served = tree_body(&top);
    let current =
        listing_from_raw(Oid::hash_object(ObjectKind::Tree, &served), &served).expect("parses");
    // A newer commit changed a file: same names, one id differs.
    let mut changed = top.clone();
    changed[0].2 = blob(b"newer\n");
    assert!(!same_entries(&current, &pinned(&changed)));
    // A newer commit added or removed an entry.
    let mut more = top.clone();
    more.push(("100644", "new.txt", blob(b"new\n")));
    assert!(!same_entries(&current, &pinned(&more)));
    assert!(!same_entries(&current, &pinned(&top[1..])));
    // A rename keeps the id, not the name.
    let mut renamed = top.clone();
    renamed[0].1 = "renamed.txt";
    assert!(!same_entries(&current, &pinned(&renamed)));
}

/// Answers like Mega at the top of a `/third-party` repository: `file/tree` with an `oid` is
/// empty (the monorepo holds a placeholder there), without one it is the repository's tree;
/// `tree/content-hash` is the pinned listing. Records each request as `route path [oid]`.
struct Placeholder {
    current: Vec<u8>,
    pinned: serde_json::Value,
    seen: Mutex<Vec<String>>,
}

async fn serve(state: Arc<Placeholder>) -> String {
    async fn file_tree(
        State(s): State<Arc<Placeholder>>,
        Query(q): Query<HashMap<String, String>>,
    ) -> Vec<u8> {
        let with_oid = q.contains_key("oid");
        s.seen.lock().unwrap().push(format!(
            "tree {}{}",
            q["path"],
            if with_oid { " oid" } else { "" }
        ));
        if with_oid {
            Vec::new()
        } else {
            s.current.clone()
        }
    }
    async fn content_hash(
        State(s): State<Arc<Placeholder>>,
        Query(q): Query<HashMap<String, String>>,
    ) -> axum::Json<serde_json::Value> {
        s.seen
            .lock()
            .unwrap()
            .push(format!("content-hash {}", q["path"]));
        axum::Json(serde_json::json!({"req_result": true, "data": s.pinned, "err_message": ""}))
    }
    let app = Router::new()
        .route("/api/v1/file/tree", get(file_tree))
        .route("/api/v1/tree/content-hash", get(content_hash))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn content_hash_json(entries: &[(&str, &str, Oid)]) -> serde_json::Value {
    entries
        .iter()
        .map(|(mode, name, oid)| {
            serde_json::json!({
                "name": name,
                "content_type": if *mode == "40000" { "directory" } else { "file" },
                "oid": oid.to_hex(),
            })
        })
        .collect()
}

async fn list_placeholder(pinned_entries: &[(&str, &str, Oid)]) -> (Listing, Vec<String>) {
    let state = Arc::new(Placeholder {
        current: tree_body(&repo_top()),
        pinned: content_hash_json(pinned_entries),
        seen: Mutex::new(Vec::new()),
    });
    let remote = MegaRemote::new(MegaOptions {
        base_url: serve(state.clone()).await,
        token: None,
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        concurrency: 4,
    })
    .expect("client");
    let commit = CommitInfo {
        oid: Oid([1; 20]),
        root_tree: None,
        time: 0,
    };
    let placeholder = Oid([2; 20]);
    let listing = remote
        .list_tree(&commit, "third-party/x", Some(placeholder))
        .await
        .expect("listed");
    let mut seen = state.seen.lock().unwrap().clone();
    // The pinned listing and the current tree are asked for together.
    seen[1..].sort();
    (listing, seen)
}

#[tokio::test]
async fn a_placeholder_top_is_listed_with_exact_modes_when_the_current_tree_agrees() {
    let (listing, seen) = list_placeholder(&repo_top()).await;
    assert!(listing.exact_modes);
    let kinds: Vec<(String, EntryKind)> = listing
        .entries
        .iter()
        .map(|e| (String::from_utf8_lossy(&e.entry.name).into(), e.entry.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("zz.txt".into(), EntryKind::File),
            ("run.sh".into(), EntryKind::Executable),
            ("src".into(), EntryKind::Dir),
            ("link".into(), EntryKind::Symlink),
        ]
    );
    assert_eq!(
        seen,
        [
            "tree /third-party/x oid",
            "content-hash /third-party/x",
            "tree /third-party/x",
        ]
    );
}

#[tokio::test]
async fn a_placeholder_top_falls_back_to_the_pinned_listing_when_the_current_tree_differs() {
    let mut ours = repo_top();
    ours[1].2 = blob(b"#!/bin/sh\necho older\n");
    let (listing, _) = list_placeholder(&ours).await;
    assert!(!listing.exact_modes);
    assert_eq!(listing.entries, pinned(&ours).entries);
}
