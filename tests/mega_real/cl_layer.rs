//! A CL layer from a per-path CL of the real Mega: a push to `/project/x.git` opens a CL at
//! `/project/x` whose `files-list` names `a.txt`, not `project/x/a.txt`; mounted with
//! `{"path":"project/x","cl":<link>}`, its files are in place over the base. A CL that lives
//! elsewhere is refused with an error answer, and nothing is mounted or written.
//!
//! Pushes are ONE commit without a parent, carrying the whole tree of the path: Mega takes it
//! as the path's new tree (a parent would have to be the advertised per-path commit, whose
//! objects cannot be fetched: its bootstrap `.gitkeep` blob was never stored, a Mega bug).

use std::path::Path;
use std::process::Command;

use super::support::api::{layer_snapshot, mount_cl};
use super::support::daemon::{run_with_timeout, Daemon, DaemonOpts};
use super::support::http;
use super::support::mono::Mono;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = run_with_timeout(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args),
        60,
    );
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes `files` (`None`: removed) in work tree `dir` and pushes its whole tree to `path` as
/// one parentless commit titled `message`.
fn push(mono: &Mono, dir: &Path, path: &str, message: &str, files: &[(&str, Option<&str>)]) {
    for (name, content) in files {
        let p = dir.join(name);
        match content {
            Some(c) => {
                std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                std::fs::write(&p, c).expect("write");
            }
            None => std::fs::remove_file(&p).expect("rm"),
        }
    }
    git(dir, &["add", "-A"]);
    let tree = git(dir, &["write-tree"]);
    let commit = git(dir, &["commit-tree", &tree, "-m", message]);
    mono.push_ok(dir, path, &format!("+{commit}:refs/heads/main"));
}

/// The link of the open CL titled `title` (`POST /api/v1/cl/list`).
fn open_cl(mono: &Mono, title: &str) -> String {
    let (status, body) = http::post(
        &mono.addr(),
        "/api/v1/cl/list",
        r#"{"additional":{"status":"open","asc":false},"pagination":{"page":1,"per_page":100}}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    v["data"]["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["title"] == title))
        .and_then(|i| i["link"].as_str())
        .unwrap_or_else(|| panic!("no open CL {title:?}: {body}"))
        .to_string()
}

fn work_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("work tree");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    dir
}

/// The layer directories of `d`'s store (its `mounts` root, made on the first request, aside).
fn layers(d: &Daemon) -> Vec<(std::path::PathBuf, u64)> {
    let root = d.store.join("mounts");
    layer_snapshot(&d.store)
        .into_iter()
        .filter(|(p, _)| *p != root)
        .collect()
}

#[test]
fn a_per_path_cl_is_layered_at_its_own_path() {
    let Some(mono) = Mono::start() else { return };
    // The base: /project/x with a.txt, b.txt and sub/c.txt, landed. The first push to a new
    // path opens a CL whose ref Mega names otherwise, so a second push updates it before the
    // merge (README of ../shared/mega). Its changes are all new files: no merge of a change
    // below the top of an existing path (Mega's propagate_up bug).
    let x = work_tree();
    let base = [
        ("a.txt", Some("draft a\n")),
        ("b.txt", Some("base b\n")),
        ("sub/c.txt", Some("base c\n")),
    ];
    push(&mono, x.path(), "project/x", "x: base", &base);
    push(
        &mono,
        x.path(),
        "project/x",
        "x: base again",
        &[("a.txt", Some("base a\n"))],
    );
    let landed = open_cl(&mono, "x: base");
    let (status, body) = http::post(
        &mono.addr(),
        &format!("/api/v1/cl/{landed}/merge-no-auth"),
        "{}",
    );
    assert_eq!(status, 200, "merge {landed}: {body}\n{}", mono.log());
    // The CL to layer: a.txt modified, b.txt deleted, sub/new.txt added; sub/c.txt untouched.
    push(
        &mono,
        x.path(),
        "project/x",
        "x: change",
        &[
            ("a.txt", Some("changed a\n")),
            ("b.txt", None),
            ("sub/new.txt", Some("new\n")),
        ],
    );
    let cl = open_cl(&mono, "x: change");
    let (_, files) = http::get(&mono.addr(), &format!("/api/v1/cl/{cl}/files-list"));
    assert!(
        files.contains(r#""path":"a.txt""#) && !files.contains("project/x"),
        "Mega's files-list is relative to the CL's path: {files}"
    );
    // A CL elsewhere: opened at /project/y.
    let y = work_tree();
    push(
        &mono,
        y.path(),
        "project/y",
        "y: elsewhere",
        &[("f.txt", Some("y\n"))],
    );
    let elsewhere = open_cl(&mono, "y: elsewhere");

    let d = Daemon::start_or_panic(DaemonOpts::new(mono.url.clone()));
    let px = d.workspace.join("project/x");
    assert_eq!(
        std::fs::read(px.join("a.txt")).expect("base a"),
        b"base a\n"
    );

    // Refused: nothing under project/x comes from it; nothing mounted, nothing on disk.
    let before = layers(&d);
    let (status, body) = mount_cl(&d, "project/x", &elsewhere);
    assert_eq!(status, 400, "{body}\n{}", d.log());
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
    assert_eq!(v["code"], "CL_NOT_UNDER_PATH", "{body}");
    assert!(
        v["error"].as_str().unwrap_or_default().contains(&elsewhere),
        "{body}"
    );
    assert_eq!(layers(&d), before);
    let (_, mpoint) = http::get(&d.http_addr, "/api/fs/mpoint");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&mpoint).expect("JSON")["mounts"],
        serde_json::json!([]),
        "{mpoint}"
    );
    assert_eq!(
        std::fs::read(px.join("a.txt")).expect("base a"),
        b"base a\n"
    );

    // The per-path CL: its files at project/x/..., the rest from the base.
    let (status, body) = mount_cl(&d, "project/x", &cl);
    assert_eq!(status, 200, "{body}\n{}", d.log());
    assert_eq!(
        std::fs::read(px.join("a.txt")).expect("a.txt"),
        b"changed a\n"
    );
    assert!(!px.join("b.txt").exists(), "the CL deletes b.txt");
    assert_eq!(
        std::fs::read(px.join("sub/new.txt")).expect("new"),
        b"new\n"
    );
    assert_eq!(std::fs::read(px.join("sub/c.txt")).expect("c"), b"base c\n");
    let mut names: Vec<String> = std::fs::read_dir(&px)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a.txt", "sub"]);
}
