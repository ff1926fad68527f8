//! Selftest: pushes to the test server behave as on the real Mega (../shared/mega/README.md):
//! a push to a path `P` opens or updates a change list and `main` stays; `P.git` advertises a
//! per-path `main` and its open CLs; more than one commit is refused in Mega's words; a merge
//! (`merge-no-auth`) lands the CL; a push to `/third-party/<name>.git` moves that repository.

use std::path::Path;

use git2::Oid;
use serde_json::{json, Value};

use super::git_http::{commit_change, git_fails, git_ok, http_clone};
use super::{get, send, url};
use crate::support::fixture;
use crate::support::MegaServer;

const AUTH: &str = "http.extraHeader=Authorization: Bearer tok";

/// The refs `P.git` advertises for receive-pack (`HEAD` left out): `name -> id`.
fn advertised(server: &MegaServer, at: &str) -> Vec<(String, String)> {
    let r = send(
        "GET",
        &format!(
            "{}{at}.git/info/refs?service=git-receive-pack",
            server.url()
        ),
        &[("Authorization", "Bearer tok")],
        Vec::new(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    String::from_utf8_lossy(&r.body)
        .lines()
        .filter_map(|l| {
            let l = l.get(4..)?.split('\0').next()?;
            let (id, name) = l.split_once(' ')?;
            (id.len() == 40 && name != "HEAD").then(|| (name.to_string(), id.to_string()))
        })
        .collect()
}

fn main_of(refs: &[(String, String)]) -> String {
    refs.iter()
        .find(|(n, _)| n == "refs/heads/main")
        .map(|(_, id)| id.clone())
        .unwrap_or_else(|| panic!("no refs/heads/main in {refs:?}"))
}

fn api(server: &MegaServer, method: &str, route: &str, body: Option<Value>) -> (u16, Value) {
    let r = send(
        method,
        &format!("{}{route}", server.url()),
        &[("Content-Type", "application/json")],
        body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
    );
    (r.status, r.json())
}

fn open_cls(server: &MegaServer) -> Vec<Value> {
    let body =
        json!({"additional":{"status":"open","asc":false},"pagination":{"page":1,"per_page":20}});
    let (code, v) = api(server, "POST", "/api/v1/cl/list", Some(body));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["req_result"], true, "{v}");
    v["data"]["items"].as_array().expect("items").clone()
}

fn files(server: &MegaServer, link: &str) -> Vec<(String, String)> {
    let (code, v) = api(
        server,
        "GET",
        &format!("/api/v1/cl/{link}/files-list"),
        None,
    );
    assert_eq!(code, 200, "{v}");
    let mut out: Vec<(String, String)> = v["data"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap_or_default().to_string(),
                f["action"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn push(work: &Path) -> String {
    git_ok(
        work,
        &["-c", AUTH, "push", "origin", "HEAD:refs/heads/main"],
    )
}

#[test]
fn server_push_to_a_path_is_a_change_list_until_merged() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    server.set_push_token(Some("tok".into()));
    let repo = fx.open();
    let a_tree = fixture::entry_oid(&fx, &fx.commit, "a").expect("a");

    // `a.git` advertises a per-path main X: a's tree, no parent; the same on every request.
    let refs = advertised(&server, "/a");
    let x = main_of(&refs);
    assert_eq!(refs.len(), 1, "no CL yet: {refs:?}");
    let xc = repo
        .find_commit(Oid::from_str(&x).expect("oid"))
        .expect("X is a commit");
    assert_eq!(xc.tree_id().to_string(), a_tree);
    assert_eq!(xc.parent_count(), 0);
    assert_eq!(main_of(&advertised(&server, "/a")), x, "stable");

    // A clone of a.git is a's tree; one commit on X opens a CL; main stays.
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = http_clone(&server, tmp.path(), "/a.git");
    assert_eq!(git_ok(&work, &["rev-parse", "HEAD"]), x);
    assert!(work.join("b/c.txt").is_file());
    let c1 = commit_change(&work, "b/c.txt", "changed in a CL\n");
    push(&work);
    assert_eq!(fixture::head(&fx), fx.commit, "main did not move");
    let open = open_cls(&server);
    assert_eq!(open.len(), 1, "{open:?}");
    let link = open[0]["link"].as_str().expect("link").to_string();
    assert!(
        link.len() == 8
            && link
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "{link}"
    );
    assert_eq!(open[0]["title"], "change b/c.txt");
    assert_eq!(
        files(&server, &link),
        [("b/c.txt".into(), "modified".into())]
    );
    let (_, st) = api(
        &server,
        "GET",
        &format!("/api/v1/cl/{link}/update-status"),
        None,
    );
    assert_eq!(st["data"]["target_head"], x.as_str(), "{st}");
    // info/refs: still X as main, and the CL.
    let refs = advertised(&server, "/a");
    assert_eq!(main_of(&refs), x);
    assert!(
        refs.contains(&(format!("refs/cl/{link}"), c1.clone())),
        "{refs:?}"
    );

    // A second push (one commit on X again) updates the same CL.
    git_ok(&work, &["reset", "-q", "--hard", &x]);
    std::fs::write(work.join("b/c.txt"), "changed again\n").expect("write");
    std::fs::write(work.join("new.txt"), "new\n").expect("write");
    git_ok(&work, &["add", "-A"]);
    git_ok(&work, &["commit", "-q", "-m", "second version"]);
    let c2 = git_ok(&work, &["rev-parse", "HEAD"]);
    push(&work);
    let open = open_cls(&server);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["link"], link.as_str());
    assert_eq!(
        files(&server, &link),
        [
            ("b/c.txt".into(), "modified".into()),
            ("new.txt".into(), "new".into())
        ]
    );
    assert!(advertised(&server, "/a").contains(&(format!("refs/cl/{link}"), c2.clone())));

    // Two commits in one push: refused in Mega's words. Nothing changes.
    git_ok(&work, &["reset", "-q", "--hard", &x]);
    commit_change(&work, "one.txt", "1\n");
    commit_change(&work, "two.txt", "2\n");
    let err = git_fails(
        &work,
        &["-c", AUTH, "push", "origin", "HEAD:refs/heads/main"],
    );
    assert!(
        err.contains("only single commit support in each push"),
        "{err}"
    );
    assert_eq!(files(&server, &link).len(), 2);
    assert_eq!(main_of(&advertised(&server, "/a")), x);
    assert_eq!(fixture::head(&fx), fx.commit);

    // The merge lands the CL: a new monorepo commit on main with a's tree from the CL.
    let (code, v) = api(
        &server,
        "POST",
        &format!("/api/v1/cl/{link}/merge-no-auth"),
        None,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"], "Merge completed successfully");
    let latest = get(&url(&server, "/api/v1/latest-commit", &[("path", "/")])).json();
    let merged = latest["oid"].as_str().expect("oid").to_string();
    assert_eq!(merged, fixture::head(&fx));
    assert_ne!(merged, fx.commit);
    let mc = repo
        .find_commit(Oid::from_str(&merged).expect("oid"))
        .expect("merged commit");
    assert_eq!(mc.parent_id(0).expect("parent").to_string(), fx.commit);
    let c2_tree = repo
        .find_commit(Oid::from_str(&c2).expect("oid"))
        .expect("c2")
        .tree_id();
    assert_eq!(
        fixture::entry_oid(&fx, &merged, "a"),
        Some(c2_tree.to_string())
    );
    assert_eq!(
        fixture::entry_oid(&fx, &merged, "README.md"),
        fixture::entry_oid(&fx, &fx.commit, "README.md")
    );
    assert!(open_cls(&server).is_empty());
    // a.git now advertises a new X of the merged tree, and no CL.
    let refs = advertised(&server, "/a");
    assert_eq!(refs.len(), 1, "{refs:?}");
    let x2 = repo
        .find_commit(Oid::from_str(&main_of(&refs)).expect("oid"))
        .expect("X'");
    assert_eq!(x2.tree_id(), c2_tree);
    // Merged already: refused.
    let (code, v) = api(
        &server,
        "POST",
        &format!("/api/v1/cl/{link}/merge-no-auth"),
        None,
    );
    assert_eq!(code, 400, "{v}");
    assert_eq!(
        v["err_message"],
        "Bad request: CL is not in Open status, current status: Merged"
    );
    let (code, v) = api(&server, "POST", "/api/v1/cl/NOSUCHCL/merge-no-auth", None);
    assert_eq!(code, 404, "{v}");
    assert_eq!(v["err_message"], "Not Found error: CL not found: NOSUCHCL");
    // The merged CL is listed as not open.
    let body =
        json!({"additional":{"status":"closed","asc":false},"pagination":{"page":1,"per_page":20}});
    let (_, v) = api(&server, "POST", "/api/v1/cl/list", Some(body));
    assert_eq!(v["data"]["items"][0]["link"], link.as_str(), "{v}");
    assert_eq!(v["data"]["items"][0]["status"], "Merged", "{v}");
    let c = server.counts();
    assert_eq!((c.merge, c.cl_list > 0), (3, true), "{c:?}");
}

#[test]
fn server_push_to_the_root_is_a_change_list_too() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    // `/.git` advertises the repository's own main.
    assert_eq!(main_of(&advertised(&server, "/")), fx.commit);
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = http_clone(&server, tmp.path(), "/.git");
    commit_change(&work, "README.md", "# via a CL at /\n");
    git_ok(&work, &["push", "origin", "HEAD:refs/heads/main"]);
    assert_eq!(fixture::head(&fx), fx.commit, "main did not move");
    let open = open_cls(&server);
    assert_eq!(open.len(), 1, "{open:?}");
    let link = open[0]["link"].as_str().expect("link").to_string();
    assert_eq!(
        files(&server, &link),
        [("README.md".into(), "modified".into())]
    );
    let (code, v) = api(
        &server,
        "POST",
        &format!("/api/v1/cl/{link}/merge-no-auth"),
        None,
    );
    assert_eq!(code, 200, "{v}");
    let head = fixture::head(&fx);
    assert_ne!(head, fx.commit);
    assert_eq!(
        fixture::object_bytes(
            &fx,
            &fixture::entry_oid(&fx, &head, "README.md").expect("README")
        ),
        b"# via a CL at /\n"
    );
}

#[test]
fn server_push_to_a_third_party_repository_moves_its_main() {
    let fx = fixture::standard();
    let first = fixture::add_commit(&fx, "third-party/tool/README", b"a tool\n");
    let server = MegaServer::start(&fx.repo_path);
    let repo = fx.open();
    let tool_tree = fixture::entry_oid(&fx, &first, "third-party/tool").expect("tool");
    // The repository's main: a commit of its own tree.
    let r = main_of(&advertised(&server, "/third-party/tool"));
    let rc = repo
        .find_commit(Oid::from_str(&r).expect("oid"))
        .expect("R");
    assert_eq!(rc.tree_id().to_string(), tool_tree);
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = http_clone(&server, tmp.path(), "/third-party/tool.git");
    assert!(work.join("README").is_file());
    // Several commits are fine there; main moves, no CL.
    commit_change(&work, "a.txt", "a\n");
    let last = commit_change(&work, "b.txt", "b\n");
    git_ok(&work, &["push", "origin", "HEAD:refs/heads/main"]);
    assert_eq!(main_of(&advertised(&server, "/third-party/tool")), last);
    assert!(open_cls(&server).is_empty());
    // The monorepo's main holds the new tree there.
    let head = fixture::head(&fx);
    assert_ne!(head, first);
    let last_tree = repo
        .find_commit(Oid::from_str(&last).expect("oid"))
        .expect("last")
        .tree_id();
    assert_eq!(
        fixture::entry_oid(&fx, &head, "third-party/tool"),
        Some(last_tree.to_string())
    );
    assert_eq!(
        fixture::entry_oid(&fx, &head, "a"),
        fixture::entry_oid(&fx, &first, "a")
    );
}

#[test]
fn server_faults_and_the_push_token_apply_to_mega_paths_and_cl_routes() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    server.set_push_token(Some("tok".into()));
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = http_clone(&server, tmp.path(), "/a.git");
    commit_change(&work, "b/c.txt", "changed\n");
    // No token: refused before git runs; no CL.
    git_fails(&work, &["push", "origin", "HEAD:refs/heads/main"]);
    // RefusePush: info/refs answers, the POST is a 500; no CL.
    server.set_fault(crate::support::Fault::RefusePush);
    server.reset_counts();
    git_fails(
        &work,
        &["-c", AUTH, "push", "origin", "HEAD:refs/heads/main"],
    );
    let c = server.counts();
    assert_eq!((c.info_refs, c.receive_pack), (1, 1), "{c:?}");
    server.set_fault(crate::support::Fault::None);
    assert!(open_cls(&server).is_empty());
    // Http500 on the CL routes, counted.
    server.set_fault(crate::support::Fault::Http500);
    server.reset_counts();
    let body = json!({"additional":{"status":"open"},"pagination":{"page":1,"per_page":20}});
    let r = send(
        "POST",
        &format!("{}/api/v1/cl/list", server.url()),
        &[("Content-Type", "application/json")],
        body.to_string().into_bytes(),
    );
    assert_eq!(r.status, 500);
    let r = send(
        "POST",
        &format!("{}/api/v1/cl/ABCDEFGH/merge-no-auth", server.url()),
        &[],
        Vec::new(),
    );
    assert_eq!(r.status, 500);
    let c = server.counts();
    assert_eq!((c.cl_list, c.merge), (1, 1), "{c:?}");
    // Fixed: the push goes through as a CL.
    server.set_fault(crate::support::Fault::None);
    push(&work);
    let open = open_cls(&server);
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["status"], "Open");
    assert_eq!(fixture::head(&fx), fx.commit);
}
