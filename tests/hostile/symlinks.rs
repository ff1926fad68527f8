//! Hostile cases: symlinks (see tests/hostile.rs). A user puts a symlink to a directory outside
//! the store into the mount (or a change list does); nothing the daemon does on its own behalf
//! (reset, unmount, prune after a push, CL rebuild, Antares DELETE) may reach through it.

use std::path::{Path, PathBuf};

use crate::support::api::mount;
use crate::support::daemon::{Daemon, DaemonOpts};
use crate::support::fixture::{self, Worktree};
use crate::support::host::curl_as_nobody;
use crate::support::http;

/// A directory outside everything the daemon owns, with a file and a subdirectory.
struct Victim {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn victim() -> Victim {
    let dir = tempfile::Builder::new()
        .prefix("scorpio-victim-")
        .tempdir()
        .expect("victim dir");
    let path = dir.path().canonicalize().expect("canonical");
    std::fs::write(path.join("f"), b"outside\n").expect("write f");
    std::fs::create_dir(path.join("sub")).expect("mkdir sub");
    std::fs::write(path.join("sub/g"), b"outside too\n").expect("write sub/g");
    Victim { _dir: dir, path }
}

impl Victim {
    /// Panics unless the victim holds exactly what it was made with.
    fn assert_intact(&self, after: &str) {
        let read = |p: &str| std::fs::read(self.path.join(p));
        assert_eq!(
            read("f").ok().as_deref(),
            Some(&b"outside\n"[..]),
            "{after}: the victim's f was touched"
        );
        assert_eq!(
            read("sub/g").ok().as_deref(),
            Some(&b"outside too\n"[..]),
            "{after}: the victim's sub/g was touched"
        );
        let names = |p: &Path| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(p)
                .expect("list the victim")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            names(&self.path),
            ["f", "sub"],
            "{after}: the victim's entries changed"
        );
        assert_eq!(
            names(&self.path.join("sub")),
            ["g"],
            "{after}: the victim's sub changed"
        );
    }
}

fn reset(d: &Daemon, path: &str) -> (u16, String) {
    http::post(
        &d.http_addr,
        "/api/git/reset",
        &serde_json::json!({ "path": path }).to_string(),
    )
}

/// `ln -s <victim> a/lnk` in a writable `a`.
fn link_in_a(d: &Daemon, v: &Victim) -> PathBuf {
    mount(d, "a");
    let lnk = d.workspace.join("a/lnk");
    std::os::unix::fs::symlink(&v.path, &lnk).expect("ln -s victim a/lnk");
    // Through the link, the victim shows in the mount, as for any symlink.
    assert!(d.workspace.join("a/lnk/f").exists());
    lnk
}

#[test]
fn reset_through_a_symlink_removes_nothing_outside() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let v = victim();
    let lnk = link_in_a(&d, &v);
    for p in ["a/lnk/f", "a/lnk/sub", "a/lnk/sub/g"] {
        let (code, body) = reset(&d, p);
        assert_eq!(code, 200, "reset {p}: {body}\n{}", d.log());
        v.assert_intact(&format!("reset {p}"));
        assert!(
            std::fs::symlink_metadata(&lnk).is_ok(),
            "reset {p} took the link"
        );
    }
    // The link itself is a change of the upper layer: resetting it removes the link, never
    // what it points to; and so does resetting everything.
    let (code, body) = reset(&d, "a/lnk");
    assert_eq!(code, 200, "{body}");
    assert!(std::fs::symlink_metadata(&lnk).is_err());
    v.assert_intact("reset a/lnk");
    std::os::unix::fs::symlink(&v.path, &lnk).expect("ln -s again");
    std::fs::create_dir(d.workspace.join("a/dir")).expect("mkdir");
    std::os::unix::fs::symlink(&v.path, d.workspace.join("a/dir/deeper")).expect("ln -s");
    let (code, body) = reset(&d, "a");
    assert_eq!(code, 200, "{body}");
    assert!(std::fs::symlink_metadata(&lnk).is_err());
    v.assert_intact("reset a");
}

#[test]
fn reset_sent_by_another_user_removes_nothing_outside() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let v = victim();
    link_in_a(&d, &v);
    for p in ["a/lnk/f", "a/lnk/sub"] {
        // `nobody` sends the request, as any local user can on loopback.
        let (code, _) = curl_as_nobody(
            &format!("{}/api/git/reset", d.http_url()),
            &serde_json::json!({ "path": p }).to_string(),
            None,
        );
        // Refused (the auth rule) or done safely; never a failure of ours.
        assert!(
            code == 200 || (400..500).contains(&code),
            "reset {p} as nobody: {code}\n{}",
            d.log()
        );
        v.assert_intact(&format!("reset {p} sent by nobody"));
    }
}

#[test]
fn unmount_and_mount_again_leave_what_a_symlink_points_to() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let v = victim();
    link_in_a(&d, &v);
    let (code, body) = http::post(&d.http_addr, "/api/fs/unmount", r#"{"path":"a"}"#);
    assert_eq!(code, 200, "{body}");
    v.assert_intact("unmount");
    mount(&d, "a");
    assert!(std::fs::symlink_metadata(d.workspace.join("a/lnk")).is_ok());
    v.assert_intact("mount again");
}

#[test]
fn prune_after_a_push_leaves_what_a_symlink_points_to() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let v = victim();
    let lnk = link_in_a(&d, &v);
    std::fs::create_dir(d.workspace.join("a/newdir")).expect("mkdir");
    std::os::unix::fs::symlink(&v.path, d.workspace.join("a/newdir/lnk")).expect("ln -s");
    std::fs::write(d.workspace.join("a/newdir/x.txt"), b"x\n").expect("write");
    let (code, body) = http::post(&d.http_addr, "/api/git/commit", r#"{"message":"links"}"#);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    let (code, body) = http::post(&d.http_addr, "/api/git/push", "{}");
    assert_eq!(code, 200, "{body}\n{}", d.log());
    v.assert_intact("prune after push");
    // The links are the pushed commit's now, and still links.
    assert!(std::fs::symlink_metadata(&lnk)
        .expect("a/lnk")
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_link(&lnk).expect("readlink"), v.path);
}

/// A fixture whose second commit replaces directory `a/b/d` (holding `e/deep.txt`) by a
/// symlink to `target`: as a change list, it says "write a/b/d as a link" and "delete
/// a/b/d/e/deep.txt".
fn fixture_with_dir_turned_link(target: &Path) -> (fixture::Fixture, String) {
    let fx = fixture::standard();
    let wt = Worktree::clone_of(&fx);
    std::fs::remove_dir_all(wt.path().join("a/b/d")).expect("rm a/b/d");
    std::os::unix::fs::symlink(target, wt.path().join("a/b/d")).expect("ln -s");
    let cl = wt.commit_all("d becomes a link");
    wt.git(&["push", "-q", "origin", "HEAD:refs/heads/cl"]);
    (fx, cl)
}

#[test]
fn a_change_list_cannot_build_its_layer_through_its_own_symlink() {
    let v = victim();
    // What the CL deletes under the link is named like the victim's files.
    std::fs::create_dir(v.path.join("e")).expect("mkdir e");
    std::fs::write(v.path.join("e/deep.txt"), b"outside deep\n").expect("write");
    let (fx, cl) = fixture_with_dir_turned_link(&v.path);
    let d = Daemon::start(DaemonOpts {
        ref_: Some(fx.commit.clone()),
        ..DaemonOpts::new(fx.repo_path.display().to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let (code, body) = http::post(
        &d.http_addr,
        "/api/fs/mount",
        &serde_json::json!({ "path": "a", "cl": cl }).to_string(),
    );
    assert_eq!(code, 200, "mount with the CL: {body}\n{}", d.log());
    assert_eq!(
        std::fs::read(v.path.join("e/deep.txt")).ok().as_deref(),
        Some(&b"outside deep\n"[..]),
        "the CL rebuild deleted a file outside through its symlink"
    );
    let mut names: Vec<String> = std::fs::read_dir(v.path.join("e"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["deep.txt"], "the CL rebuild wrote outside");
    // The mount shows the CL: the directory is a link now.
    assert!(std::fs::symlink_metadata(d.workspace.join("a/b/d"))
        .expect("a/b/d")
        .file_type()
        .is_symlink());
    // Rebuilt at the next mount, with the same outcome.
    let (code, body) = http::post(&d.http_addr, "/api/fs/unmount", r#"{"path":"a"}"#);
    assert_eq!(code, 200, "{body}");
    let (code, body) = http::post(
        &d.http_addr,
        "/api/fs/mount",
        &serde_json::json!({ "path": "a", "cl": cl }).to_string(),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        std::fs::read(v.path.join("e/deep.txt")).ok().as_deref(),
        Some(&b"outside deep\n"[..])
    );
    v.assert_extra_intact();
}

impl Victim {
    /// Like `assert_intact`, for a victim that was given an `e/` of its own.
    fn assert_extra_intact(&self) {
        assert_eq!(
            std::fs::read(self.path.join("f")).ok().as_deref(),
            Some(&b"outside\n"[..])
        );
        assert_eq!(
            std::fs::read(self.path.join("sub/g")).ok().as_deref(),
            Some(&b"outside too\n"[..])
        );
    }
}

fn antares_daemon(fx: &fixture::Fixture) -> Daemon {
    Daemon::start(DaemonOpts {
        extra_toml: "[antares]\nallow_other_roots = true".into(),
        ..DaemonOpts::new(fx.repo_path.display().to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn antares_create(d: &Daemon, body: serde_json::Value) -> serde_json::Value {
    let (code, resp) = http::post(&d.http_addr, "/antares/mounts", &body.to_string());
    assert_eq!(code, 201, "{resp}\n{}", d.log());
    serde_json::from_str(&resp).expect("JSON")
}

fn antares_delete(d: &Daemon, v: &serde_json::Value) -> (u16, String) {
    let id = v["mount_id"].as_str().expect("mount_id");
    http::request(
        &d.http_addr,
        "DELETE",
        &format!("/antares/mounts/{id}"),
        None,
        None,
    )
}

#[test]
fn antares_delete_removes_a_symlink_in_the_upper_layer_not_its_target() {
    let fx = fixture::standard();
    let d = antares_daemon(&fx);
    let v = victim();
    let m = antares_create(&d, serde_json::json!({"path": "a"}));
    let mp = PathBuf::from(m["mountpoint"].as_str().expect("mountpoint"));
    let upper = PathBuf::from(m["upper_dir"].as_str().expect("upper_dir"));
    std::os::unix::fs::symlink(&v.path, mp.join("lnk")).expect("ln -s");
    std::fs::create_dir(mp.join("dir")).expect("mkdir");
    std::os::unix::fs::symlink(&v.path, mp.join("dir/lnk")).expect("ln -s");
    let (code, body) = antares_delete(&d, &m);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    assert!(!upper.exists());
    v.assert_intact("antares DELETE");
}

#[test]
fn antares_delete_does_not_follow_a_symlink_swapped_in_for_the_upper_layer() {
    let fx = fixture::standard();
    let d = antares_daemon(&fx);
    let v = victim();
    // A job's own directory (allow_other_roots): it may rename what is in it.
    let job = tempfile::tempdir().expect("job dir");
    let job_dir = job.path().canonicalize().expect("canonical");
    let m = antares_create(
        &d,
        serde_json::json!({
            "path": "a",
            "upper_dir": job_dir.join("sub").display().to_string(),
        }),
    );
    let mp = PathBuf::from(m["mountpoint"].as_str().expect("mountpoint"));
    std::fs::write(mp.join("x.txt"), b"x").expect("write");
    // The job moves its directory away and leaves a link to the victim in its place: the
    // recorded upper layer `<job>/sub` now names the victim's `sub`.
    let moved = job_dir.with_extension("moved");
    std::fs::rename(&job_dir, &moved).expect("mv job dir");
    std::os::unix::fs::symlink(&v.path, &job_dir).expect("ln -s victim job dir");
    let (code, body) = antares_delete(&d, &m);
    assert_eq!(code, 200, "{body}\n{}", d.log());
    v.assert_intact("antares DELETE through a swapped-in link");
    std::fs::remove_file(&job_dir).expect("rm link");
    std::fs::rename(&moved, &job_dir).expect("mv back");
}

/// The standard fixture with `dir_link -> a`, a symlink to a directory, on `main`.
fn fixture_with_dir_link() -> fixture::Fixture {
    let fx = fixture::standard();
    let wt = Worktree::clone_of(&fx);
    std::os::unix::fs::symlink("a", wt.path().join("dir_link")).expect("ln -s a dir_link");
    wt.commit_all("a link to a directory");
    wt.git(&["push", "-q", "origin", "HEAD:refs/heads/main"]);
    fx
}

#[test]
fn a_mount_path_through_a_file_or_a_symlink_is_a_clear_4xx_on_both_apis() {
    let fx = fixture_with_dir_link();
    let d = Daemon::local(&fx);
    assert!(
        std::fs::symlink_metadata(d.workspace.join("dir_link/b"))
            .expect("dir_link/b")
            .is_dir(),
        "the fixture's link leads to a directory"
    );
    let listing = |p: &Path| -> Vec<String> {
        match std::fs::read_dir(p) {
            Ok(r) => r
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    };
    let layers_before = listing(&d.store.join("mounts"));
    let antares_before = listing(&d.store.join("antares/mnt"));
    for p in [
        "README.md/x",
        "README.md",
        "dir_link",
        "dir_link/b",
        "dir_link/b/c.txt",
        "link-rel/x",
        "a/up/x",
    ] {
        let body = serde_json::json!({ "path": p }).to_string();
        for route in ["/api/fs/mount", "/antares/mounts"] {
            let (code, resp) = http::post(&d.http_addr, route, &body);
            let v: serde_json::Value = serde_json::from_str(&resp)
                .unwrap_or_else(|e| panic!("{route} {p}: not JSON ({e}): {resp}"));
            assert_eq!(
                (code, v["code"].as_str()),
                (400, Some("NOT_A_DIRECTORY")),
                "{route} {p}: {resp}"
            );
            assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{resp}");
        }
    }
    // A path that does not exist beneath a directory is still "not found".
    let (code, _) = http::post(&d.http_addr, "/api/fs/mount", r#"{"path":"a/nope/x"}"#);
    assert_eq!(code, 404);
    // Nothing changed: no mount, no layer, no mountpoint.
    let (_, list) = http::get(&d.http_addr, "/api/fs/mpoint");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&list).expect("JSON")["mounts"],
        serde_json::json!([])
    );
    let (_, list) = http::get(&d.http_addr, "/antares/mounts");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&list).expect("JSON")["mounts"],
        serde_json::json!([])
    );
    assert_eq!(listing(&d.store.join("mounts")), layers_before);
    assert_eq!(listing(&d.store.join("antares/mnt")), antares_before);
    // And a real directory still mounts.
    mount(&d, "a/b");
}

#[test]
fn an_antares_mount_restored_at_start_does_not_follow_a_symlink_swapped_in_for_its_upper_layer() {
    let fx = fixture::standard();
    let mut d = antares_daemon(&fx);
    let v = victim();
    // A job's own directory (allow_other_roots) holding the upper layer it asked for.
    let job = tempfile::tempdir().expect("job dir");
    let job_dir = job.path().canonicalize().expect("canonical");
    std::fs::create_dir(job_dir.join("sub")).expect("mkdir sub");
    let m = antares_create(
        &d,
        serde_json::json!({
            "path": "a",
            "job_id": "swap",
            "upper_dir": job_dir.join("sub").display().to_string(),
        }),
    );
    let mp = PathBuf::from(m["mountpoint"].as_str().expect("mountpoint"));
    std::fs::write(mp.join("x.txt"), b"x").expect("write");
    // The daemon stops (its mounts are restored at the next start); meanwhile the job moves
    // its directory away and leaves a link to the victim in its place.
    d.stop();
    let moved = job_dir.with_extension("moved");
    std::fs::rename(&job_dir, &moved).expect("mv job dir");
    std::os::unix::fs::symlink(&v.path, &job_dir).expect("ln -s victim job dir");
    d.restart().unwrap_or_else(|e| panic!("{e}"));
    let (code, body) = http::get(&d.http_addr, "/antares/mounts/by-job/swap");
    assert_eq!(code, 200, "{body}");
    let rec: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    if rec["state"] == "mounted" {
        // What a job writes must not land in the victim.
        let _ = std::fs::write(mp.join("planted.txt"), b"planted");
    }
    v.assert_intact("an antares mount restored through a swapped-in link");
    assert_eq!(rec["state"], "failed", "{rec}");
    let (code, body) = antares_delete(&d, &rec);
    assert_eq!(code, 200, "{body}");
    v.assert_intact("deleting it");
    std::fs::remove_file(&job_dir).expect("rm link");
    std::fs::rename(&moved, &job_dir).expect("mv back");
}
