//! Antares as a plain user (see tests/unprivileged.rs): `scorpio antares serve` run as
//! `scorpio-dev` with its roots in a directory that user owns, and the daemon's `/antares` routes
//! as that user. Every request is sent as the user (curl under `setpriv`), every mount is read
//! and written as the user, and the mounts are that user's, through fusermount3.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::harness::{
    api_as_user, as_user, chown_r, prepare_host, scorpio_as, spawn_until, tar_as_user, wait_exit,
    PlainDaemon, User, EDITS,
};
use crate::support::antares::{fuse_mounts_under, path_of};
use crate::support::api::{change_pairs, json_or_text};
use crate::support::daemon::{free_port, lazy_unmount, run_with_timeout};
use crate::support::fixture;
use crate::support::http;
use crate::support::mega_server::MegaServer;
use crate::support::mountinfo::mounts_at;
use crate::support::tree::{archive, assert_same_tree};

/// `scorpio antares serve` as the user, over a copy of a fixture repository the user owns, with
/// its store and its mount, upper and CL roots in the user's temp dir. Dropping it kills the
/// server and lazily unmounts whatever is left under that directory.
struct PlainAntares {
    user: User,
    /// The user's temp dir: repository copy, config, store, roots, log.
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    addr: String,
    child: Option<Child>,
}

impl PlainAntares {
    /// Over `remote` (a URL), or over a copy of the fixture's repository the user owns.
    fn new(fx: &fixture::Fixture, remote: Option<&str>) -> PlainAntares {
        let (uid, gid, home) = prepare_host();
        let user = User { uid, gid, home };
        let dir = tempfile::Builder::new()
            .prefix("scorpio-plain-antares-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path();
        let remote = match remote {
            Some(url) => url.to_string(),
            None => {
                let repo = root.join("repo.git");
                let out = run_with_timeout(
                    Command::new("cp").arg("-a").arg(&fx.repo_path).arg(&repo),
                    30,
                );
                assert!(out.status.success(), "copy the fixture repository");
                repo.display().to_string()
            }
        };
        let addr = format!("127.0.0.1:{}", free_port());
        let config = root.join("scorpio.toml");
        let q = |p: PathBuf| format!("{:?}", p.display().to_string());
        std::fs::write(
            &config,
            format!(
                "remote = {remote:?}\nstore_path = {}\nworkspace = {}\nhttp_addr = \"127.0.0.1:{}\"\n\
                 log_level = \"debug\"\n\n[antares]\nbind = {addr:?}\nmount_root = {}\n\
                 upper_root = {}\ncl_root = {}\n",
                q(root.join("store")),
                q(root.join("ws")),
                free_port(),
                q(root.join("mnt")),
                q(root.join("upper")),
                q(root.join("cl")),
            ),
        )
        .expect("write config");
        chown_r(root, uid, gid);
        PlainAntares {
            user,
            log: root.join("antares.log"),
            dir,
            config,
            addr,
            child: None,
        }
    }

    fn mount_root(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    fn upper_root(&self) -> PathBuf {
        self.dir.path().join("upper")
    }

    /// Runs `scorpio antares serve` as the user and waits (30 s) for `/health` to answer.
    fn start(&mut self) {
        let mut cmd = scorpio_as(&self.user);
        cmd.arg("-c").arg(&self.config).args(["antares", "serve"]);
        let child = spawn_until(
            &mut cmd,
            &self.log,
            30,
            || {
                std::net::TcpStream::connect(&self.addr).is_ok()
                    && http::get(&self.addr, "/health").0 == 200
            },
            || self.report(),
        );
        self.child = Some(child);
    }

    /// A request sent as the user (curl): the status and the answer as JSON.
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (code, text) = curl_as(&self.user, &self.addr, method, path, body);
        (code, json_or_text(&text))
    }

    /// `POST /mounts` as the user; panics unless 201 and mounted.
    fn create(&self, body: Value) -> Value {
        let (code, v) = self.api("POST", "/mounts", Some(body.clone()));
        assert_eq!(code, 201, "create {body}: {v}\n{}", self.report());
        assert_eq!(v["state"], "mounted", "{v}");
        v
    }

    /// The `scorpio antares ...` CLI run as the user with the server's config.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        run_with_timeout(
            scorpio_as(&self.user)
                .arg("-c")
                .arg(&self.config)
                .arg("antares")
                .args(args),
            60,
        )
    }

    /// FUSE mounts under the user's temp dir.
    fn fuse_mounts(&self) -> Vec<PathBuf> {
        fuse_mounts_under(self.dir.path())
    }

    fn report(&self) -> String {
        format!(
            "--- log ---\n{}\n--- fuse mounts ---\n{:?}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            self.fuse_mounts()
        )
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own, not yet reaped, child.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    /// Waits (30 s) for the server to exit.
    fn wait(&mut self) -> ExitStatus {
        let child = self.child.take().expect("a running server");
        wait_exit(child, 30, || self.report())
    }
}

impl Drop for PlainAntares {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for m in self.fuse_mounts() {
            lazy_unmount(&m);
        }
    }
}

/// Lazily unmounts every FUSE mount under a directory when dropped.
struct UnmountUnder(PathBuf);

impl Drop for UnmountUnder {
    fn drop(&mut self) {
        for m in fuse_mounts_under(&self.0) {
            lazy_unmount(&m);
        }
    }
}

/// `curl -X method http://addr/path` run as `user`: the status code and the body.
fn curl_as(
    user: &User,
    addr: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut cmd = as_user(user, "curl");
    cmd.args(["-sS", "-X", method, "-w", "\n%{http_code}"]);
    if let Some(b) = body {
        cmd.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &b.to_string(),
        ]);
    }
    cmd.arg(format!("http://{addr}{path}"));
    let out = run_with_timeout(&mut cmd, 120);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let code = code.trim().parse().unwrap_or_else(|_| {
        panic!(
            "curl {method} {path}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, body.to_string())
}

/// A shell script run as the user in `dir`.
fn sh_in(user: &User, dir: &Path, script: &str) -> std::process::Output {
    run_with_timeout(
        as_user(user, "sh")
            .arg("-c")
            .arg(format!("cd \"$1\" && {script}"))
            .arg("sh")
            .arg(dir),
        60,
    )
}

/// Copies the tree at `dir` as the user (root may not enter another user's FUSE mount) into a
/// fresh directory, keeping modes.
fn copy_as_user(user: &User, dir: &Path) -> tempfile::TempDir {
    tar_as_user(
        user,
        &format!("tar -C '{}' -cf - .", dir.display()),
        String::new,
    )
}

/// Whether a FUSE filesystem of uid `uid` is mounted at `p`, made through fusermount3.
fn users_fuse_mount(p: &Path, uid: u32) -> bool {
    mounts_at(p)
        .iter()
        .any(|m| m.fstype.starts_with("fuse") && m.options.contains(&format!("user_id={uid}")))
}

/// The (kind, path) changes of mount `id`, sorted by path.
fn changes(s: &PlainAntares, id: &str) -> Vec<(String, String)> {
    let (code, v) = s.api("GET", &format!("/mounts/{id}/changes"), None);
    assert_eq!(code, 200, "changes: {v}\n{}", s.report());
    let mut got = change_pairs(&v.to_string());
    got.sort_by(|a, b| a.1.cmp(&b.1));
    got
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, p)| (k.to_string(), p.to_string()))
        .collect()
}

/// The xattr names on `path` (without following it), read as root.
fn xattr_names(path: &Path) -> String {
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(path, &mut buf[..])
        .unwrap_or_else(|e| panic!("llistxattr {}: {e}", path.display()));
    String::from_utf8_lossy(&buf[..n]).replace('\0', " ")
}

#[test]
fn a_plain_user_serves_antares_mounts_and_edits_one() {
    let fx = fixture::standard();
    let want = archive(&fx, &fx.commit);
    let mut s = PlainAntares::new(&fx, None);
    s.start();
    let (code, h) = s.api("GET", "/health", None);
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["commit"], fx.commit.as_str(), "{h}");

    // A writable mount of the whole repository: the user's own FUSE mount, under its roots.
    let job = s.create(json!({"job_id": "plain", "path": "/"}));
    let id = job["mount_id"].as_str().expect("mount_id").to_string();
    let mp = path_of(&job, "mountpoint");
    let upper = path_of(&job, "upper_dir");
    assert!(mp.starts_with(s.mount_root()), "{mp:?}");
    assert!(upper.starts_with(s.upper_root()), "{upper:?}");
    assert!(
        users_fuse_mount(&mp, s.user.uid),
        "not a FUSE mount of uid {}: {:?}\n{}",
        s.user.uid,
        mounts_at(&mp),
        s.report()
    );

    // Read as the user, it is git archive's tree.
    let copy = copy_as_user(&s.user, &mp);
    assert_same_tree(copy.path(), want.path());

    // Create, modify, delete a lower file (a whiteout), remove a lower directory, and make a
    // new directory where a lower one was deleted (opaque).
    for step in EDITS {
        let out = sh_in(&s.user, &mp, step);
        assert!(
            out.status.success(),
            "{step}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            s.report()
        );
    }
    let out = sh_in(
        &s.user,
        &mp,
        "cat new.txt README.md; ls 'dir with space'; test ! -e src/lib.rs && test ! -e a/b/d/e && echo gone",
    );
    let seen = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{seen}\n{}", s.report());
    assert_eq!(seen, "new\n# Changed\nonly.txt\ngone\n");

    // The upper layer holds the user's marks (a plain user cannot write trusted.*).
    let marks = xattr_names(&upper.join("src/lib.rs"));
    assert!(
        marks.contains("user.scorpio.whiteout") && !marks.contains("trusted."),
        "whiteout marks: {marks:?}"
    );
    let marks = xattr_names(&upper.join("dir with space"));
    assert!(
        marks.contains("user.scorpio.opaque") && !marks.contains("trusted."),
        "opaque marks: {marks:?}"
    );

    assert_eq!(
        changes(&s, &id),
        pairs(&[
            ("modified", "README.md"),
            ("deleted", "a/b/d/e"),
            ("deleted", "dir with space"),
            ("added", "dir with space/only.txt"),
            ("added", "new.txt"),
            ("deleted", "src/lib.rs"),
        ]),
        "{}",
        s.report()
    );

    // A read-only mount of a directory: the tree, and the kernel refuses writes.
    let ro = s.create(json!({"path": "a", "readonly": true}));
    let ro_mp = path_of(&ro, "mountpoint");
    assert!(
        users_fuse_mount(&ro_mp, s.user.uid),
        "{:?}",
        mounts_at(&ro_mp)
    );
    let copy = copy_as_user(&s.user, &ro_mp);
    assert_same_tree(copy.path(), &want.path().join("a"));
    let out = sh_in(&s.user, &ro_mp, "printf x | tee new >/dev/null");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{out:?}"
    );

    // DELETE, with a file still held open by a job of the user: nothing stays mounted, the
    // mountpoint and the upper layer are gone.
    let mut held = as_user(&s.user, "sh")
        .arg("-c")
        .arg("exec 3<\"$1\" && echo open && exec sleep 60")
        .arg("sh")
        .arg(mp.join("new.txt"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn a holder");
    {
        use std::io::Read;
        let mut buf = [0u8; 5];
        held.stdout
            .as_mut()
            .expect("stdout")
            .read_exact(&mut buf)
            .expect("the holder opened the file");
    }
    let (code, v) = s.api("DELETE", &format!("/mounts/{id}"), None);
    let _ = held.kill();
    let _ = held.wait();
    assert_eq!(code, 200, "delete: {v}\n{}", s.report());
    assert!(
        mounts_at(&mp).is_empty(),
        "{:?}\n{}",
        mounts_at(&mp),
        s.report()
    );
    assert!(!mp.exists(), "mountpoint kept");
    assert!(!upper.exists(), "upper layer kept");
    assert_eq!(s.api("GET", &format!("/mounts/{id}"), None).0, 404);
    let (code, v) = s.api("DELETE", "/mounts/by-job/none", None);
    assert_eq!(code, 404, "{v}");
    let (code, v) = s.api(
        "DELETE",
        &format!("/mounts/{}", ro["mount_id"].as_str().expect("id")),
        None,
    );
    assert_eq!(code, 200, "{v}");
    assert!(s.fuse_mounts().is_empty(), "{}", s.report());

    // A mount the user unmounts behind the server's back becomes `failed`; DELETE clears it.
    let gone = s.create(json!({"path": "src"}));
    let gone_mp = path_of(&gone, "mountpoint");
    let out = run_with_timeout(as_user(&s.user, "fusermount3").arg("-u").arg(&gone_mp), 10);
    assert!(out.status.success(), "{out:?}");
    let url = format!("/mounts/{}", gone["mount_id"].as_str().expect("id"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let (_, v) = s.api("GET", &url, None);
        if v["state"] == "failed" || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(failed["state"], "failed", "{failed}\n{}", s.report());
    assert_eq!(s.api("DELETE", &url, None).0, 200);
    assert!(!gone_mp.exists() && !path_of(&gone, "upper_dir").exists());
    let (code, list) = s.api("GET", "/mounts", None);
    assert_eq!((code, &list["mounts"]), (200, &json!([])), "{list}");

    // SIGTERM: exit 0, nothing mounted.
    s.signal(libc::SIGTERM);
    let status = s.wait();
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        s.report()
    );
    assert!(s.fuse_mounts().is_empty(), "{}", s.report());
}

#[test]
fn a_plain_users_antares_mount_is_restored_after_sigkill() {
    let fx = fixture::standard();
    // A Mega remote with a change list: it changes one file and deletes another (a whiteout
    // in the CL layer, made by the user).
    let server = MegaServer::start(&fx.repo_path);
    let blob = fx
        .open()
        .blob(b"from the change list\n")
        .expect("blob")
        .to_string();
    server.set_cl(
        "42",
        json!([
            {"path": "/a/b/c.txt", "sha": blob, "action": "modified"},
            {"path": format!("/{}", fixture::DEEPEST_FILE), "action": "deleted"},
        ]),
    );
    let mut s = PlainAntares::new(&fx, Some(&server.url()));
    s.start();
    // Through the CLI, as the user: it prints the mountpoint.
    let out = s.cli(&[
        "mount", "a", "--job-id", "kept", "--cl", "42", "--label", "team=ci",
    ]);
    assert!(out.status.success(), "{out:?}\n{}", s.report());
    let mp = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(users_fuse_mount(&mp, s.user.uid), "{mp:?}\n{}", s.report());
    let out = sh_in(
        &s.user,
        &mp,
        "cat b/c.txt && test ! -e b/d/e/deep.txt && printf kept > kept.txt && rm b/c.txt",
    );
    assert!(out.status.success(), "{out:?}\n{}", s.report());
    assert_eq!(out.stdout, b"from the change list\n", "{out:?}");
    let out = s.cli(&["list"]);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && listed.contains("kept") && listed.contains("mounted"),
        "{out:?}"
    );

    // SIGKILL leaves a dead mount; the next start clears it and mounts the job again.
    s.signal(libc::SIGKILL);
    let _ = s.wait();
    assert_eq!(
        s.fuse_mounts(),
        vec![mp.clone()],
        "SIGKILL leaves the mount"
    );
    s.start();
    let (code, v) = s.api("GET", "/mounts/by-job/kept", None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["state"], "mounted", "{v}\n{}", s.report());
    assert_eq!(s.fuse_mounts(), vec![mp.clone()], "{}", s.report());
    let mounts = mounts_at(&mp);
    assert_eq!(
        mounts.len(),
        1,
        "the dead mount was not cleared: {mounts:?}"
    );
    assert!(users_fuse_mount(&mp, s.user.uid), "{mounts:?}");
    let out = sh_in(
        &s.user,
        &mp,
        "cat kept.txt; test ! -e b/c.txt && test ! -e b/d/e/deep.txt && echo gone; ls b/d/e",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "keptgone\n",
        "{out:?}\n{}",
        s.report()
    );
    let id = v["mount_id"].as_str().expect("id");
    let (code, ch) = s.api("GET", &format!("/mounts/{id}/changes"), None);
    assert_eq!(code, 200, "{ch}");
    let mut got = change_pairs(&ch.to_string());
    got.sort_by(|a, b| a.1.cmp(&b.1));
    // Changes are the upper layer's against the commit, named by repository path.
    assert_eq!(
        got,
        pairs(&[("deleted", "a/b/c.txt"), ("added", "a/kept.txt")])
    );

    // SIGTERM unmounts it and exits 0; the upper layer stays for the next start.
    s.signal(libc::SIGTERM);
    let status = s.wait();
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        s.report()
    );
    assert!(s.fuse_mounts().is_empty(), "{}", s.report());
    assert!(path_of(&v, "upper_dir").join("kept.txt").exists());

    // And the CLI unmounts it, as the user, once the server is back.
    s.start();
    assert_eq!(s.fuse_mounts(), vec![mp.clone()], "{}", s.report());
    let out = s.cli(&["umount", "--job", "kept"]);
    assert!(out.status.success(), "{out:?}\n{}", s.report());
    assert!(s.fuse_mounts().is_empty() && !mp.exists(), "{}", s.report());
    s.signal(libc::SIGTERM);
    assert!(s.wait().success(), "{}", s.report());
}

#[test]
fn a_plain_daemon_serves_antares_under_its_api() {
    let fx = fixture::standard();
    let mut d = PlainDaemon::new(&fx);
    // Dropped before the daemon: clears an Antares mount a failed assertion would leave.
    let _cleanup = UnmountUnder(d._dir.path().to_path_buf());
    d.start();
    let (code, body) = api_as_user(
        &d,
        "POST",
        "/antares/mounts",
        Some(r#"{"job_id":"w","path":"a"}"#),
    );
    assert_eq!(code, 201, "{body}\n{}", d.report());
    let v: Value = serde_json::from_str(&body).expect("JSON");
    let mp = path_of(&v, "mountpoint");
    assert!(users_fuse_mount(&mp, d.user.uid), "{:?}", mounts_at(&mp));
    let out = sh_in(&d.user, &mp, "printf n > n.txt && cat b/c.txt");
    assert_eq!(
        out.stdout,
        fixture::DEEP_FILE_CONTENT,
        "{out:?}\n{}",
        d.report()
    );
    // The workspace does not see the job's write.
    let out = sh_in(&d.user, &d.workspace, "test ! -e a/n.txt && cat a/b/c.txt");
    assert_eq!(out.stdout, fixture::DEEP_FILE_CONTENT, "{out:?}");
    let out = run_with_timeout(
        scorpio_as(&d.user)
            .arg("-c")
            .arg(&d.config)
            .args(["antares", "--via-daemon", "list"]),
        60,
    );
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains(v["mount_id"].as_str().expect("id")),
        "{out:?}"
    );
    // A mount left at shutdown is unmounted by SIGTERM with the workspace.
    d.stop_cleanly();
    assert!(
        mounts_at(&mp).is_empty(),
        "{:?}\n{}",
        mounts_at(&mp),
        d.report()
    );
}
