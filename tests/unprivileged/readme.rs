//! The README's flow as a plain user, and as root, with its own commands: a `git clone`, the daemon started
//! with `scorpio -c scorpio.toml.example` in it, a path made writable, a file edited, committed
//! and pushed back into that clone (which takes it with `receive.denyCurrentBranch
//! updateInstead`, as the README says to set), and Ctrl-C (SIGINT) leaving nothing mounted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use super::harness::{as_user, chown_r, prepare_host, scorpio_as, spawn_until, wait_exit, User};
use super::support::daemon::{free_port, lazy_unmount, run_with_timeout};
use super::support::fixture;
use super::support::mountinfo::{fuse_mounts, mounts_at};

/// The daemon the README starts, run as the user in the clone; killed and its mount detached
/// on drop.
struct ReadmeDaemon {
    child: Option<Child>,
    workspace: PathBuf,
    log: PathBuf,
}

impl ReadmeDaemon {
    fn report(&self) -> String {
        format!(
            "--- log ---\n{}\n--- fuse mounts ---\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            fuse_mounts()
        )
    }
}

impl Drop for ReadmeDaemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if mounts_at(&self.workspace)
            .iter()
            .any(|m| m.fstype.starts_with("fuse"))
        {
            lazy_unmount(&self.workspace);
        }
    }
}

/// A command of the README, run as the user in `dir`: `scorpio` is the binary under test, and
/// the API address is moved off the example's port 8000 (tests run side by side).
fn readme_cmd(user: &User, dir: &Path, http: &str, program: &str, args: &[&str]) -> Command {
    let mut cmd = if program == "scorpio" {
        scorpio_as(user)
    } else {
        as_user(user, program)
    };
    cmd.current_dir(dir)
        .args(args)
        .env("SCORPIO_HTTP_ADDR", http);
    cmd
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_plain_user_follows_the_readme_from_clone_to_push() {
    let (uid, gid, home) = prepare_host();
    readme_flow(User { uid, gid, home });
}

/// The same commands as root (a CI host): root's own clone, root's mount.
#[test]
fn root_follows_the_readme_from_clone_to_push() {
    readme_flow(User {
        uid: 0,
        gid: 0,
        home: PathBuf::from("/root"),
    });
}

/// The README's flow, every command run as `user` (through setpriv, root included).
fn readme_flow(user: User) {
    let (uid, gid) = (user.uid, user.gid);
    let fx = fixture::standard();
    let dir = tempfile::Builder::new()
        .prefix("scorpio-readme-")
        .tempdir()
        .expect("tempdir");
    // Where the user clones from (their own copy: git refuses a repository another user owns).
    let origin = dir.path().join("origin.git");
    let out = run_with_timeout(
        Command::new("cp").arg("-a").arg(&fx.repo_path).arg(&origin),
        30,
    );
    assert!(out.status.success(), "copy the fixture repository");
    chown_r(dir.path(), uid, gid);
    let http = format!("127.0.0.1:{}", free_port());
    let run = |cwd: &Path, program: &str, args: &[&str]| {
        run_with_timeout(&mut readme_cmd(&user, cwd, &http, program, args), 120)
    };

    // git clone <the project>; target/ is kept out of it, as this project's .gitignore does.
    let clone = dir.path().join("clone");
    let repo = origin.to_string_lossy().into_owned();
    ok(
        run(dir.path(), "git", &["clone", "-q", &repo, "clone"]),
        "git clone",
    );
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scorpio.toml.example"),
        clone.join("scorpio.toml.example"),
    )
    .expect("the example config");
    std::fs::write(
        clone.join(".git/info/exclude"),
        "/target\n/scorpio.toml.example\n",
    )
    .expect("exclude target/ and the config copy");
    chown_r(&clone, uid, gid);
    ok(
        run(
            &clone,
            "git",
            &["config", "receive.denyCurrentBranch", "updateInstead"],
        ),
        "git config",
    );

    // scorpio -c scorpio.toml.example (cargo run --release -- -c ... runs the same binary).
    let mut d = ReadmeDaemon {
        child: None,
        workspace: clone.join("target/scorpio/workspace"),
        log: dir.path().join("scorpio.log"),
    };
    let child = spawn_until(
        &mut readme_cmd(
            &user,
            &clone,
            &http,
            "scorpio",
            &["-c", "scorpio.toml.example"],
        ),
        &d.log,
        30,
        || {
            let listed = run(&clone, "ls", &["target/scorpio/workspace/src"]);
            listed.status.success() && String::from_utf8_lossy(&listed.stdout).contains("lib.rs")
        },
        || d.report(),
    );
    d.child = Some(child);

    // The README's edit, commit and push, each a `scorpio -c scorpio.toml.example` subcommand.
    let cfg = ["-c", "scorpio.toml.example"];
    let with = |args: &[&str]| -> Vec<String> {
        cfg.iter()
            .chain(args.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let scorpio = |args: &[&str]| {
        let args = with(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&clone, "scorpio", &args)
    };
    ok(scorpio(&["mount", "src"]), "scorpio mount src");
    ok(
        run(
            &clone,
            "sh",
            &[
                "-c",
                "echo '// edit' >> target/scorpio/workspace/src/lib.rs",
            ],
        ),
        "the edit",
    );
    let status = ok(scorpio(&["status"]), "scorpio status");
    assert!(status.contains("M src/lib.rs"), "{status}");
    ok(scorpio(&["commit", "-m", "fix"]), "scorpio commit");
    let pushed = ok(scorpio(&["push"]), "scorpio push");
    assert!(pushed.contains("pushed"), "{pushed}\n{}", d.report());

    // The clone has the commit, checked out, and nothing else changed there.
    let subject = ok(run(&clone, "git", &["log", "-1", "--format=%s"]), "git log");
    assert_eq!(subject.trim(), "fix");
    let lib = std::fs::read_to_string(clone.join("src/lib.rs")).expect("src/lib.rs");
    assert!(lib.ends_with("// edit\n"), "{lib:?}");
    let porcelain = ok(run(&clone, "git", &["status", "--porcelain"]), "git status");
    assert_eq!(porcelain, "", "the clone's working tree");
    let status = ok(scorpio(&["status"]), "scorpio status after the push");
    assert!(!status.contains("src/lib.rs"), "{status}");

    // Ctrl-C: unmounted, exit 0 (the other tests end with SIGTERM).
    let child = d.child.take().expect("the daemon");
    // SAFETY: kill(2) on our own child's pid.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let status = wait_exit(child, 20, || d.report());
    assert!(status.success(), "exit: {status}\n{}", d.report());
    assert!(
        !mounts_at(&d.workspace)
            .iter()
            .any(|m| m.fstype.starts_with("fuse")),
        "still mounted\n{}",
        d.report()
    );
}
