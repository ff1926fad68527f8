//! The `scorpio` command line: the `mount`, `umount`, `list` and `doctor` subcommands, how a
//! bad config or an unreachable remote ends a start (exit status, the key named, no mount left),
//! and what a service manager hears from the daemon (READY, STOPPING); `config` (in
//! `cli/config.rs`): `config init|validate|show`, upstream Scorpio's configs, and the exit codes
//! of a start that cannot listen or cannot mount.

mod support;

#[path = "cli/config.rs"]
mod config;

use support::api::cli;
use support::daemon::{free_port, run_with_timeout, scorpio_command, Daemon};
use support::fixture;
use support::mountinfo::is_fuse_mounted;

#[test]
fn cli_mount_umount_list() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let cli = |args: &[&str]| cli(&d, args);
    let out = cli(&["mount", "src"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(d.workspace.join("src/x.rs"), b"x").expect("src is writable");
    let out = cli(&["list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"src\""),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = cli(&["mount", "src"]);
    assert_eq!(out.status.code(), Some(1), "a second mount is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already mounted"));
    let out = cli(&["umount", "src"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !d.workspace.join("src/x.rs").exists(),
        "after umount the path shows the repository again"
    );
    let out = cli(&["mount", "src"]);
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(d.workspace.join("src/x.rs")).expect("edits come back"),
        b"x"
    );
}

fn scorpio(args: &[&str], config: &str) -> (std::process::Output, tempfile::TempDir) {
    scorpio_env(args, config, &[])
}

/// `scorpio -c <config> <args>` run in a fresh directory holding the config, with `env` set.
fn scorpio_env(
    args: &[&str],
    config: &str,
    env: &[(&str, &str)],
) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("scorpio.toml");
    std::fs::write(&cfg, config).expect("write config");
    let mut cmd = scorpio_command(&cfg);
    cmd.args(args).current_dir(dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    (run_with_timeout(&mut cmd, 60), dir)
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let fx = fixture::standard();
    let remote = fx.repo_path.display();
    for (text, key) in [
        (format!("remote = '{remote}'\nworkspace = 'ws'\nstore_path = 'st'\nfetch_concurrency = 'many'\n"), "fetch_concurrency"),
        (format!("remote = '{remote}'\nworkspace = 'ws'\nstore_path = 'st'\nbogus_key = 1\n"), "bogus_key"),
        (format!("remote = '{remote}'\nworkspace = 'ws'\nstore_path = 'st'\nhttp_addr = 'nowhere'\n"), "http_addr"),
        ("remote = '/no/such/repo'\nworkspace = 'ws'\nstore_path = 'st'\n".to_string(), "remote"),
    ] {
        let (out, dir) = scorpio(&[], &text);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "config {text:?}: {stderr}");
        assert!(stderr.contains(key), "error does not name {key}: {stderr}");
        assert!(!is_fuse_mounted(&dir.path().join("ws")));
    }
}

#[test]
fn unreachable_remote_fails_cleanly() {
    let port = free_port();
    let (out, dir) = scorpio(
        &[],
        &format!("remote = 'http://127.0.0.1:{port}'\nworkspace = 'ws'\nstore_path = 'st'\nhttp_addr = '127.0.0.1:{}'\nrequest_timeout_secs = 2\n", free_port()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("cannot resolve"), "{stderr}");
    assert!(
        !is_fuse_mounted(&dir.path().join("ws")),
        "a mount was left behind"
    );

    let not_a_repo = tempfile::tempdir().expect("tempdir");
    let (out, dir) = scorpio(
        &[],
        &format!(
            "remote = '{}'\nworkspace = 'ws'\nstore_path = 'st'\n",
            not_a_repo.path().display()
        ),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("remote"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!is_fuse_mounted(&dir.path().join("ws")));
}

#[test]
fn doctor_checks_fuse_store_and_remote() {
    let fx = fixture::standard();
    let (out, _dir) = scorpio(
        &["doctor"],
        &format!(
            "remote = '{}'\nworkspace = 'ws'\nstore_path = 'st'\n",
            fx.repo_path.display()
        ),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["fuse device", "fusermount3", "store", "remote"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(name)),
            "{name} missing: {stdout}"
        );
    }
    let port = free_port();
    let (out, _dir) = scorpio(&["doctor"], &format!("remote = 'http://127.0.0.1:{port}'\nworkspace = 'ws'\nstore_path = 'st'\nrequest_timeout_secs = 1\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.starts_with("FAIL") && l.contains("remote")));
}

/// The daemon run by a test itself (not through `Daemon`), killed and unmounted if the test fails.
struct Spawned {
    child: std::process::Child,
    workspace: std::path::PathBuf,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if is_fuse_mounted(&self.workspace) {
            support::daemon::lazy_unmount(&self.workspace);
        }
    }
}

/// The next datagram on `sock`, as text, or a panic after 30 s.
fn next_datagram(sock: &std::os::unix::net::UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a datagram within 30 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Under systemd (`Type=notify`), READY comes only once the workspace is mounted and the API
/// answers, and STOPPING as soon as SIGTERM starts the shutdown; the daemon then unmounts and
/// exits 0. Checked against a real `NOTIFY_SOCKET` datagram socket, as systemd gives one.
#[test]
fn a_service_manager_hears_ready_once_mounted_and_stopping_on_sigterm() {
    let fx = fixture::standard();
    // The harness writes the config (and proves it mounts); the daemon under test is started
    // again over it, by the test, with the socket in its environment.
    let mut d = Daemon::local(&fx);
    assert!(d.stop().success());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).expect("bind the notify socket");
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let child = scorpio_command(&d.config_path)
        .env("NOTIFY_SOCKET", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn scorpio");
    let mut run = Spawned {
        child,
        workspace: d.workspace.clone(),
    };
    let ready = next_datagram(&sock);
    // At the moment READY is heard, both promises hold already.
    assert!(
        is_fuse_mounted(&d.workspace),
        "READY before the mount: {ready:?}"
    );
    let (code, body) = support::http::get(&d.http_addr, "/health");
    assert_eq!(code, 200, "READY before the API answers: {ready:?} {body}");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(
        ready
            .lines()
            .any(|l| l.starts_with("STATUS=") && l.contains("mounted at")),
        "{ready:?}"
    );
    assert!(
        std::fs::read_dir(&d.workspace)
            .expect("list")
            .next()
            .is_some(),
        "the mounted workspace shows the repository"
    );
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&run.child),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM");
    let stopping = next_datagram(&sock);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let status = run.child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    assert!(
        !is_fuse_mounted(&d.workspace),
        "still mounted after SIGTERM"
    );
}

/// The systemd units under `contrib/systemd/` pass `systemd-analyze verify` with no warning
/// (an unknown key is only a warning there, so stderr must be empty too). Their `ExecStart`
/// binary is pointed at the one built here, since verify requires it to exist.
#[test]
fn the_systemd_units_verify_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_scorpio");
    let units = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    // The template is verified as one instance of it.
    for (file, as_unit) in [
        ("scorpio.service", "scorpio.service"),
        ("scorpio@.service", "scorpio@alice.service"),
        ("scorpio-antares.service", "scorpio-antares.service"),
    ] {
        let text = std::fs::read_to_string(units.join(file)).expect("read unit");
        assert!(text.contains("Type=notify"), "{file}: Type=notify");
        let text = text
            .replace("%h/.local/bin/scorpio", bin)
            .replace("/usr/local/bin/scorpio", bin);
        assert!(
            text.contains(bin),
            "{file}: ExecStart names the scorpio binary"
        );
        let path = dir.path().join(as_unit);
        std::fs::write(&path, text).expect("write unit");
        let out = run_with_timeout(
            std::process::Command::new("systemd-analyze")
                .arg("verify")
                .arg(&path),
            60,
        );
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `scorpio doctor` speaks for the user who runs it: as a plain user (`nobody`) it names a
/// store and a workspace that are not theirs, with the fix, and exits 1; once both are theirs
/// those lines pass. `/dev/fuse` passes exactly when its mode lets others read and write it,
/// and `fusermount3` passes for a plain user only because it is setuid root.
#[test]
fn doctor_speaks_for_a_plain_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().expect("tempdir");
    // Everyone may walk to the config; the store and the workspace are root's.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (store, ws) = (dir.path().join("st"), dir.path().join("ws"));
    for d in [&store, &ws] {
        std::fs::create_dir(d).expect("mkdir");
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let config = dir.path().join("scorpio.toml");
    std::fs::write(
        &config,
        format!(
            "remote = 'http://127.0.0.1:{}'\nworkspace = '{}'\nstore_path = '{}'\nrequest_timeout_secs = 1\n",
            free_port(),
            ws.display(),
            store.display()
        ),
    )
    .expect("config");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    // A copy nobody can run: the build directory may be one only root can enter.
    let bin = dir.path().join("scorpio");
    std::fs::copy(env!("CARGO_BIN_EXE_scorpio"), &bin).expect("copy the binary");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let doctor = || {
        let out = run_with_timeout(
            support::host::nobody(&bin.to_string_lossy())
                .arg("-c")
                .arg(&config)
                .arg("doctor")
                .env("PATH", "/usr/local/bin:/usr/bin:/bin"),
            60,
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let line = |out: &str, name: &str| -> String {
        out.lines()
            .find(|l| l[4..].trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line: {out}"))
            .to_string()
    };
    let (code, out) = doctor();
    assert_eq!(code, Some(1), "{out}");
    let st = line(&out, "store");
    assert!(
        st.starts_with("FAIL") && st.contains("belongs to uid 0") && st.contains("65534"),
        "{st}"
    );
    let w = line(&out, "workspace");
    assert!(w.starts_with("FAIL") && w.contains("may not write"), "{w}");
    let fm = line(&out, "fusermount3");
    assert!(fm.starts_with("ok") && fm.contains("setuid root"), "{fm}");
    let others_rw = std::fs::metadata("/dev/fuse").expect("/dev/fuse").mode() & 0o006 == 0o006;
    let dev = line(&out, "fuse device");
    if others_rw {
        assert!(dev.starts_with("ok"), "{dev}");
    } else {
        assert!(dev.starts_with("FAIL") && dev.contains("0666"), "{dev}");
    }
    // Made theirs, both pass (the remote still fails: nothing listens there).
    for d in [&store, &ws] {
        std::os::unix::fs::chown(d, Some(65534), Some(65534)).expect("chown");
    }
    let (code, out) = doctor();
    assert_eq!(code, Some(1), "the remote fails: {out}");
    assert!(line(&out, "store").starts_with("ok"), "{out}");
    assert!(line(&out, "workspace").starts_with("ok"), "{out}");
    assert!(line(&out, "remote").starts_with("FAIL"), "{out}");
}

/// `scorpio completions <shell>` needs no config (run where none is), and bash's script, loaded
/// into a bash, completes subcommands and their options; zsh's and fish's name the subcommands;
/// an unknown shell is exit 2.
#[test]
fn completions_complete_subcommands_without_a_config() {
    let empty = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_scorpio");
    let complete = |words: &str, cword: usize| -> Vec<String> {
        let script = format!(
            "source <('{bin}' completions bash) && COMP_WORDS=({words}) && COMP_CWORD={cword} \
             && _scorpio scorpio \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\" \
             && printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = run_with_timeout(
            std::process::Command::new("bash")
                .arg("-c")
                .arg(&script)
                .current_dir(empty.path())
                .env_remove("SCORPIO_REMOTE"),
            30,
        );
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(complete("scorpio pus", 1), vec!["push".to_string()]);
    let mut pu = complete("scorpio pu", 1);
    pu.sort();
    assert_eq!(pu, vec!["pull".to_string(), "push".to_string()]);
    let antares = complete("scorpio antares ''", 2);
    assert!(
        antares.iter().any(|w| w == "serve") && antares.iter().any(|w| w == "--via-daemon"),
        "{antares:?}"
    );
    let mount = complete("scorpio mount src --c", 3);
    assert!(mount.iter().any(|w| w == "--cl"), "{mount:?}");
    for shell in ["zsh", "fish"] {
        let out = run_with_timeout(
            std::process::Command::new(bin)
                .args(["completions", shell])
                .current_dir(empty.path()),
            30,
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell}");
        for sub in ["mount", "umount", "push", "antares", "completions"] {
            assert!(text.contains(sub), "{shell} script lacks {sub}");
        }
    }
    let out = run_with_timeout(
        std::process::Command::new(bin)
            .args(["completions", "tcsh"])
            .current_dir(empty.path()),
        30,
    );
    assert_eq!(out.status.code(), Some(2));
}
