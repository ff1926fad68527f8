//! `push` to the test Mega server as Mega takes changes (its double behaves as the real one,
//! ../shared/mega/README.md): a path's push opens or updates a change list and nothing lands
//! until the CL merges; a `/third-party/<name>` push moves that repository. The same flows
//! against the real server: tests/mega_real/push.rs.

use serde_json::{json, Value};

use super::commit;
use crate::support::api::{cli, mount, push, status};
use crate::support::daemon::{Daemon, DaemonOpts};
use crate::support::fixture::{self, Fixture};
use crate::support::http;
use crate::support::mega_server::MegaServer;

/// A daemon whose remote is the Mega double, pushing to it as to Mega (no `push_url`).
fn daemon(fx: &Fixture) -> (MegaServer, Daemon) {
    let server = MegaServer::start(&fx.repo_path);
    server.set_push_token(Some("tok".into()));
    let mut opts = DaemonOpts::new(server.url());
    opts.extra_toml = "remote_token = \"tok\"\n".into();
    (server, Daemon::start_or_panic(opts))
}

fn open_cls(server: &MegaServer) -> Vec<Value> {
    let body =
        json!({"additional":{"status":"open","asc":false},"pagination":{"page":1,"per_page":20}});
    let (code, v) = http::post(
        &server.addr().to_string(),
        "/api/v1/cl/list",
        &body.to_string(),
    );
    assert_eq!(code, 200, "{v}");
    serde_json::from_str::<Value>(&v).expect("JSON")["data"]["items"]
        .as_array()
        .expect("items")
        .clone()
}

fn cl_files(server: &MegaServer, link: &str) -> Vec<String> {
    let (code, v) = http::get(
        &server.addr().to_string(),
        &format!("/api/v1/cl/{link}/files-list"),
    );
    assert_eq!(code, 200, "{v}");
    let mut out: Vec<String> = serde_json::from_str::<Value>(&v).expect("JSON")["data"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().unwrap_or_default().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn a_path_push_to_mega_is_a_cl_until_it_merges_and_pull_brings_it() {
    let fx = fixture::standard();
    let (server, d) = daemon(&fx);
    mount(&d, "a");
    let ws = d.workspace.join("a");
    std::fs::write(ws.join("hello.txt"), b"hello\n").expect("add");
    commit(&d, "first change");
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(body["moved"], false, "{body}");
    assert_eq!(body["cls"][0]["path"], "a", "{body}");
    let link = body["cls"][0]["link"]
        .as_str()
        .unwrap_or_else(|| panic!("no CL link: {body}\n{}", d.log()))
        .to_string();
    let open = open_cls(&server);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["link"], link.as_str());
    assert_eq!(cl_files(&server, &link), ["hello.txt"]);
    // Nothing landed: main, the base and the edit stay; status says which CL holds it.
    assert_eq!(fixture::head(&fx), fx.commit);
    let st = status(&d);
    assert_eq!(st["base"], fx.commit.as_str(), "{st}");
    assert_eq!(st["changes"][0]["path"], "a/hello.txt", "{st}");
    assert_eq!(st["changes"][0]["cl"]["link"], link.as_str(), "{st}");

    // A second push updates the same CL.
    std::fs::write(ws.join("second.txt"), b"second\n").expect("add");
    commit(&d, "second change");
    let out = cli(&d, &["push"]);
    assert!(out.status.success(), "{out:?}\n{}", d.log());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&link));
    let open = open_cls(&server);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(cl_files(&server, &link), ["hello.txt", "second.txt"]);
    assert_eq!(fixture::head(&fx), fx.commit);

    // The CL merges; pull moves the workspace onto it and nothing is left to show.
    let (code, merged) = http::post(
        &server.addr().to_string(),
        &format!("/api/v1/cl/{link}/merge-no-auth"),
        "",
    );
    assert_eq!(code, 200, "{merged}");
    let head = fixture::head(&fx);
    assert_ne!(head, fx.commit);
    let out = cli(&d, &["pull"]);
    assert!(out.status.success(), "{out:?}\n{}", d.log());
    let st = status(&d);
    assert_eq!(st["base"], head.as_str(), "{st}");
    assert_eq!(st["changes"], json!([]), "{st}");
    assert_eq!(st["cls"], json!([]), "{st}");
    assert_eq!(st["ahead"], 0, "{st}");
    assert_eq!(
        std::fs::read(ws.join("second.txt")).expect("merged"),
        b"second\n"
    );
}

#[test]
fn a_root_push_to_mega_is_a_cl_at_the_root_and_main_stays() {
    let fx = fixture::standard();
    let (server, d) = daemon(&fx);
    mount(&d, "/");
    std::fs::write(d.workspace.join(fixture::README), b"# via a CL\n").expect("modify");
    commit(&d, "one");
    std::fs::write(d.workspace.join("two.txt"), b"two\n").expect("add");
    commit(&d, "two");
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(body["moved"], false, "{body}");
    let link = body["cls"][0]["link"].as_str().expect("link").to_string();
    assert_eq!(fixture::head(&fx), fx.commit, "main did not move");
    assert_eq!(cl_files(&server, &link), ["README.md", "two.txt"]);
    let st = status(&d);
    assert_eq!(st["base"], fx.commit.as_str(), "{st}");
    assert_eq!(st["ahead"], 2, "{st}");
}

#[test]
fn a_third_party_push_to_mega_moves_that_repository() {
    let fx = fixture::standard();
    fixture::add_commit(&fx, "third-party/tool/README", b"a tool\n");
    let (server, d) = daemon(&fx);
    mount(&d, "third-party/tool");
    let ws = d.workspace.join("third-party/tool");
    std::fs::write(ws.join("new.txt"), b"new\n").expect("add");
    let local = commit(&d, "a tool change");
    let (code, body) = push(&d);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert_eq!(body["repositories"][0][0], "third-party/tool", "{body}");
    assert!(open_cls(&server).is_empty());
    // The repository's own main: a commit of its tree, with the new file.
    let main = body["repositories"][0][1]
        .as_str()
        .expect("main")
        .to_string();
    let repo = fx.open();
    let c = repo
        .find_commit(git2::Oid::from_str(&main).expect("oid"))
        .expect("the repository's main is on the server");
    assert!(c.tree().expect("tree").get_name("new.txt").is_some());
    assert!(c.tree().expect("tree").get_name("third-party").is_none());
    let st = status(&d);
    assert_eq!(st["base"], local.as_str(), "{st}");
    assert_eq!(st["ahead"], 0, "{st}");
}
