//! Hostile cases: the store is the daemon's alone (see tests/hostile.rs). Another local user
//! (`nobody`) must not be able to plant git configuration the owner (or root) will run, nor
//! delete unpushed objects; files made through the mount keep exactly the mode asked for.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::api::mount;
use crate::support::daemon::{run_with_timeout, Daemon, DaemonOpts};
use crate::support::fixture;
use crate::support::host::nobody;
use crate::support::http;

/// A store in a directory every user may pass through (as `~/.local/share` is), so only the
/// store's own modes keep `nobody` out.
fn reachable_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("scorpio-private-")
        .tempdir()
        .expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let store = dir.path().join("store");
    (dir, store)
}

fn start(fx: &fixture::Fixture, store: &Path) -> Daemon {
    Daemon::start(DaemonOpts {
        store: Some(store.to_path_buf()),
        ..DaemonOpts::new(fx.repo_path.display().to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `script` as nobody; its output, whatever the exit status.
fn sh_as_nobody(script: &str) -> Output {
    run_with_timeout(nobody("sh").args(["-c", script]), 30)
}

/// Mode bits of `p` (not following it).
fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .mode()
        & 0o7777
}

/// Every directory and file under `root` (symlinks not followed), `root` included.
fn everything(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        i += 1;
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            for e in std::fs::read_dir(&p).expect("list") {
                out.push(e.expect("entry").path());
            }
        }
    }
    out
}

/// Panics naming every path of `paths` that a group or other user may write.
fn assert_private(paths: &[PathBuf], what: &str) {
    let open: Vec<String> = paths
        .iter()
        .filter(|p| !std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()))
        .filter(|p| mode(p) & 0o022 != 0)
        .map(|p| format!("{} {:o}", p.display(), mode(p)))
        .collect();
    assert!(open.is_empty(), "{what}: group/world-writable: {open:#?}");
}

/// The daemon's own state: the store root, the staging repository, the inode table, the
/// object cache, and the layer directories (not what the upper layers hold).
fn private_state(store: &Path) -> Vec<PathBuf> {
    let mut v = vec![store.to_path_buf()];
    v.extend(everything(&store.join("git")));
    v.extend(everything(&store.join("meta.sled")));
    v.extend(
        everything(&store.join("objects"))
            .into_iter()
            .filter(|p| p.is_dir()),
    );
    v.push(store.join("mounts"));
    v
}

/// A loose object file of the staging repository.
fn a_git_object(store: &Path) -> PathBuf {
    everything(&store.join("git/objects"))
        .into_iter()
        .find(|p| {
            p.is_file()
                && p.parent()
                    .and_then(|d| d.file_name())
                    .is_some_and(|n| n.len() == 2)
        })
        .expect("a loose object in the staging repository")
}

/// `nobody` tries to plant a pager in the staging repository's config and to delete an object.
fn nobody_is_kept_out(store: &Path) {
    let config = store.join("git/config");
    let before = std::fs::read(&config).expect("read config");
    let out = sh_as_nobody(&format!(
        "printf '[core]\\n\\tpager = id > /tmp/pwned; cat\\n' >> '{}'",
        config.display()
    ));
    assert!(!out.status.success(), "nobody appended to git/config");
    assert_eq!(std::fs::read(&config).expect("read config"), before);
    let obj = a_git_object(store);
    let out = sh_as_nobody(&format!("rm -f '{}'", obj.display()));
    assert!(obj.exists(), "nobody deleted an unpushed object: {out:?}");
    let out = sh_as_nobody(&format!("touch '{}/planted'", store.join("git").display()));
    assert!(!out.status.success() && !store.join("git/planted").exists());
}

fn commit_something(d: &Daemon) {
    mount(d, "a");
    std::fs::write(d.workspace.join("a/new.txt"), b"new\n").expect("write");
    let (code, body) = http::post(&d.http_addr, "/api/git/commit", r#"{"message":"m"}"#);
    assert_eq!(code, 200, "{body}\n{}", d.log());
}

#[test]
fn the_store_is_private_after_a_start() {
    let fx = fixture::standard();
    let (_dir, store) = reachable_store();
    let d = start(&fx, &store);
    commit_something(&d);
    assert_private(&private_state(&store), "a fresh store");
    nobody_is_kept_out(&store);
}

/// The upper layer of writable path `path`, as the API names it.
fn upper_of(d: &Daemon, path: &str) -> PathBuf {
    let (_, body) = http::get(&d.http_addr, "/api/fs/mpoint");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    v["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["path"] == path)
        .and_then(|m| m["upper"].as_str())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{path} is not mounted: {body}"))
}

/// Creates through the mount, with umask 0 in the creating process: `f666` (0666), `d777`
/// (0777, and `d777/inner`), `p666` (a FIFO, 0666), `g2775` (a set-group-id 2775 directory).
fn create_with_umask_0(dir: &Path) {
    let out = run_with_timeout(
        Command::new("sh").arg("-c").arg(format!(
            "umask 0 && cd '{}' && echo x > f666 && mkdir d777 && mkfifo p666 \
             && mkdir -m 2775 g2775 && mkdir d777/inner",
            dir.display()
        )),
        30,
    );
    assert!(out.status.success(), "{out:?}");
}

fn assert_modes(dir: &Path, what: &str) {
    for (name, want) in [
        ("f666", 0o666),
        ("d777", 0o777),
        ("d777/inner", 0o777),
        ("p666", 0o666),
        ("g2775", 0o2775),
    ] {
        assert_eq!(
            mode(&dir.join(name)),
            want,
            "{what}: {name} is {:o}",
            mode(&dir.join(name))
        );
    }
}

#[test]
fn entries_made_through_the_mount_keep_exactly_the_mode_asked_for() {
    let fx = fixture::standard();
    let (_dir, store) = reachable_store();
    let d = start(&fx, &store);
    mount(&d, "a");
    create_with_umask_0(&d.workspace.join("a"));
    assert_modes(&d.workspace.join("a"), "through the mount");
    assert_modes(&upper_of(&d, "a"), "in the upper layer");
    // Copied up: the lower 0644 stays 0644; chmod 0666 of a lower file gives 0666.
    std::fs::set_permissions(
        d.workspace.join("a/b/c.txt"),
        std::fs::Permissions::from_mode(0o666),
    )
    .expect("chmod");
    assert_eq!(mode(&upper_of(&d, "a").join("b/c.txt")), 0o666);
    assert_eq!(mode(&upper_of(&d, "a").join("b")), 0o755);
}

#[test]
fn a_world_writable_store_of_an_older_version_is_made_private_at_start() {
    let fx = fixture::standard();
    let (_dir, store) = reachable_store();
    let mut d = start(&fx, &store);
    commit_something(&d);
    create_with_umask_0(&d.workspace.join("a"));
    let upper = upper_of(&d, "a");
    d.stop();
    // What a version running with umask 0 left: everything group/world-writable.
    for p in private_state(&store) {
        if !std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            let m = mode(&p);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m | 0o022))
                .expect("chmod");
        }
    }
    let layer = upper.parent().expect("layer dir").to_path_buf();
    std::fs::set_permissions(&layer, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    // A symlink in the store must not carry the repair elsewhere.
    let outside = tempfile::tempdir().expect("outside");
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    std::os::unix::fs::symlink(outside.path(), store.join("git/outside-link")).expect("ln -s");
    nobody_can_write(&store.join("git/config"));
    d.restart().unwrap_or_else(|e| panic!("{e}"));
    assert_private(&private_state(&store), "a repaired store");
    assert_eq!(mode(&layer) & 0o022, 0, "the layer directory");
    nobody_is_kept_out(&store);
    // Users' files keep their modes; what the symlink leads to is not the store's.
    assert_modes(&upper, "in the upper layer after the repair");
    assert_modes(&d.workspace.join("a"), "through the mount after the repair");
    assert_eq!(mode(outside.path()), 0o777);
}

/// Checks the test's premise: before the repair, `nobody` could write `p`.
fn nobody_can_write(p: &Path) {
    let out = sh_as_nobody(&format!("test -w '{}'", p.display()));
    assert!(
        out.status.success(),
        "premise: {} is writable by nobody",
        p.display()
    );
}
