//! `scorpio config init|validate|show`, upstream Scorpio's configs through the binary (the
//! daemon runs on one, flat and in tables), and the exit codes of a start that cannot listen
//! (4) or cannot mount (5), and a client that finds no daemon (3).

use crate::support::daemon::{free_port, run_with_timeout, scorpio_command, Daemon};
use crate::support::fixture;
use crate::support::mountinfo::is_fuse_mounted;

/// Upstream keys with no meaning here, as written flat and in their table: each must get
/// exactly one warning line.
const IGNORED: &[(&str, &str)] = &[
    ("lfs_url", "server.lfs_url"),
    ("config_file", "server.config_file"),
    ("dicfuse_readable", "dicfuse.readable"),
    ("dicfuse_import_concurrency", "dicfuse.import_concurrency"),
    ("dicfuse_dir_sync_ttl_secs", "dicfuse.dir_sync_ttl_secs"),
    ("dicfuse_reply_ttl_secs", "dicfuse.reply_ttl_secs"),
    (
        "dicfuse_fetch_dir_timeout_secs",
        "dicfuse.fetch_dir_timeout_secs",
    ),
    (
        "dicfuse_fetch_dir_max_retries",
        "dicfuse.fetch_dir_max_retries",
    ),
    ("dicfuse_stat_mode", "dicfuse.stat_mode"),
    ("dicfuse_open_buff_max_bytes", "dicfuse.open_buff_max_bytes"),
    ("dicfuse_open_buff_max_files", "dicfuse.open_buff_max_files"),
    ("antares_dicfuse_stat_mode", "antares.stat_mode"),
    (
        "antares_dicfuse_open_buff_max_bytes",
        "antares.open_buff_max_bytes",
    ),
    (
        "antares_dicfuse_open_buff_max_files",
        "antares.open_buff_max_files",
    ),
    (
        "antares_dicfuse_dir_sync_ttl_secs",
        "antares.dir_sync_ttl_secs",
    ),
    ("antares_dicfuse_reply_ttl_secs", "antares.reply_ttl_secs"),
    ("antares_state_file", "antares.state_file"),
];

/// `s` as a TOML string.
fn q(s: &std::path::Path) -> String {
    toml::Value::String(s.display().to_string()).to_string()
}

/// An upstream Scorpio config using every one of its keys, flat (values as strings, as
/// upstream's own sample writes them), with our `http_addr` first.
fn flat(http: &str, repo: &str, ws: &str, store: &str, antares: &str) -> String {
    format!(
        r#"http_addr = "{http}"
base_url = {repo}
lfs_url = "http://localhost:8000/lfs"
workspace = {ws}
store_path = {store}
config_file = "config.toml"
git_author = "MEGA"
git_email = "admin@mega.org"
log_level = "info"
dicfuse_readable = "true"
load_dir_depth = "3"
fetch_file_thread = "10"
dicfuse_import_concurrency = "4"
dicfuse_dir_sync_ttl_secs = "5"
dicfuse_reply_ttl_secs = "2"
dicfuse_fetch_dir_timeout_secs = "10"
dicfuse_connect_timeout_secs = "3"
dicfuse_fetch_dir_max_retries = "3"
dicfuse_stat_mode = "accurate"
dicfuse_open_buff_max_bytes = "268435456"
dicfuse_open_buff_max_files = "4096"
antares_load_dir_depth = "3"
antares_dicfuse_stat_mode = "fast"
antares_dicfuse_open_buff_max_bytes = "67108864"
antares_dicfuse_open_buff_max_files = "1024"
antares_dicfuse_dir_sync_ttl_secs = "120"
antares_dicfuse_reply_ttl_secs = "60"
antares_upper_root = "{antares}/upper"
antares_cl_root = "{antares}/cl"
antares_mount_root = "{antares}/mnt"
antares_state_file = "{antares}/state.toml"
"#
    )
}

/// The same keys in upstream's `[server]`, `[dicfuse]` and `[antares]` tables, numbers native.
fn tables(http: &str, repo: &str, ws: &str, store: &str, antares: &str) -> String {
    format!(
        r#"http_addr = "{http}"

[server]
base_url = {repo}
lfs_url = "http://localhost:8000/lfs"
workspace = {ws}
store_path = {store}
config_file = "config.toml"
git_author = "MEGA"
git_email = "admin@mega.org"
log_level = "info"

[dicfuse]
readable = true
load_dir_depth = 3
fetch_file_thread = 10
import_concurrency = 4
dir_sync_ttl_secs = 5
reply_ttl_secs = 2
fetch_dir_timeout_secs = 10
connect_timeout_secs = 3
fetch_dir_max_retries = 3
stat_mode = "accurate"
open_buff_max_bytes = 268435456
open_buff_max_files = 4096

[antares]
load_dir_depth = 3
stat_mode = "fast"
open_buff_max_bytes = 67108864
open_buff_max_files = 1024
dir_sync_ttl_secs = 120
reply_ttl_secs = 60
upper_root = "{antares}/upper"
cl_root = "{antares}/cl"
mount_root = "{antares}/mnt"
state_file = "{antares}/state.toml"
"#
    )
}

/// The lines of `text` that name `key` (in backquotes).
fn naming<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    let k = format!("`{key}`");
    text.lines().filter(|l| l.contains(&k)).collect()
}

/// A config written for upstream Scorpio, with every one of its keys, runs the daemon in both
/// of upstream's layouts: `base_url` is the repository, `workspace` and `store_path` are used,
/// and each key with no meaning here is one warning line naming it. `config show` says where
/// each mapped value came from.
#[test]
fn an_upstream_config_runs_the_daemon_in_both_layouts() {
    let fx = fixture::standard();
    let mut d = Daemon::local(&fx);
    assert!(d.stop().success());
    let antares = tempfile::tempdir().expect("tempdir");
    let (repo, ws, store) = (q(&fx.repo_path), q(&d.workspace), q(&d.store));
    let aroot = antares.path().display().to_string();
    for (layout, text) in [
        ("flat", flat(&d.http_addr, &repo, &ws, &store, &aroot)),
        ("tables", tables(&d.http_addr, &repo, &ws, &store, &aroot)),
    ] {
        std::fs::write(&d.config_path, &text).expect("config");
        let log_before = d.log().len();
        d.restart()
            .unwrap_or_else(|e| panic!("{layout}: the daemon did not start: {e}"));
        let readme = d.workspace.join(fixture::README);
        assert_eq!(
            std::fs::read(&readme).expect("read through the mount"),
            fixture::README_CONTENT,
            "{layout}"
        );
        let (code, body) = crate::support::http::get(&d.http_addr, "/health");
        assert_eq!(code, 200, "{layout}: {body}");
        assert!(d.stop().success(), "{layout}");
        let log = d.log()[log_before..].to_string();
        for (f, t) in IGNORED {
            let name = if layout == "flat" { f } else { t };
            let lines = naming(&log, name);
            assert_eq!(lines.len(), 1, "{layout}: {name}: {log}");
            assert!(
                lines[0].starts_with("scorpio: warning: upstream config key")
                    && lines[0].contains("ignored"),
                "{}",
                lines[0]
            );
        }
        let out = run_with_timeout(scorpio_command(&d.config_path).args(["config", "show"]), 30);
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{layout}: {shown}");
        let remote = naming(
            &shown,
            if layout == "flat" {
                "base_url"
            } else {
                "server.base_url"
            },
        );
        assert!(
            remote.len() == 1 && remote[0].starts_with("remote = ") && remote[0].contains(&repo),
            "{layout}: {shown}"
        );
        assert!(
            shown
                .lines()
                .any(|l| l.starts_with("fetch_concurrency = 10 ")),
            "{layout}: {shown}"
        );
        // Upstream's listing depths are ours: the daemon prefetched with them.
        for key in ["prefetch_depth", "antares.preload_depth"] {
            assert!(
                shown
                    .lines()
                    .any(|l| l.starts_with(&format!("{key} = 3 ")) && l.contains("load_dir_depth")),
                "{layout}: {key}: {shown}"
            );
        }
        assert!(
            shown
                .lines()
                .any(|l| l.starts_with(&format!("antares.cl_root = \"{aroot}/cl\""))),
            "{layout}: {shown}"
        );
    }
}

/// Upstream's `SCORPIO_*` names work; our key wins over its upstream name with a warning; a key
/// neither ours nor upstream's is still exit 2 naming it.
#[test]
fn upstream_names_in_the_environment_and_keys_nobody_knows() {
    let fx = fixture::standard();
    let repo = fx.repo_path.display().to_string();
    let (out, _dir) = crate::scorpio_env(
        &["config", "show"],
        "store_path = 'st'\n",
        &[
            ("SCORPIO_BASE_URL", repo.as_str()),
            ("SCORPIO_DICFUSE_CONNECT_TIMEOUT_SECS", "7"),
            ("SCORPIO_LOAD_DIR_DEPTH", "3"),
        ],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.lines().any(|l| l.starts_with("remote = ")
            && l.contains(&repo)
            && l.ends_with("# SCORPIO_BASE_URL, as upstream `base_url`")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("connect_timeout_secs = 7 ")),
        "{stdout}"
    );
    assert!(naming(&stderr, "load_dir_depth").is_empty(), "{stderr}");
    assert!(
        stdout.lines().any(|l| l.starts_with("prefetch_depth = 3 ")
            && l.ends_with("# SCORPIO_LOAD_DIR_DEPTH, as upstream `load_dir_depth`")),
        "{stdout}"
    );
    // Ours in the file wins over upstream's in the environment.
    let (out, _dir) = crate::scorpio_env(
        &["config", "show"],
        &format!("remote = '{repo}'\nstore_path = 'st'\n"),
        &[("SCORPIO_BASE_URL", "http://127.0.0.1:1")],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains("127.0.0.1:1"), "{stdout}");
    let w = naming(&stderr, "base_url");
    assert!(
        w.len() == 1 && w[0].contains("`remote`") && w[0].contains("ignored"),
        "{stderr}"
    );
    for (text, key) in [
        (
            format!("base_url = '{repo}'\nstore_path = 'st'\nbogus_key = 1\n"),
            "bogus_key",
        ),
        (
            format!(
                "store_path = 'st'\n[server]\nbase_url = '{repo}'\nhttp_addr = '127.0.0.1:1'\n"
            ),
            "server.http_addr",
        ),
        (
            format!("base_url = '{repo}'\nstore_path = 'st'\n[dicfuse]\nwarp_speed = 9\n"),
            "dicfuse.warp_speed",
        ),
    ] {
        for args in [&["config", "validate"][..], &[]] {
            let (out, dir) = crate::scorpio(args, &text);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?} {text}: {stderr}");
            assert!(
                stderr.contains(&format!("unknown config key `{key}`")),
                "{stderr}"
            );
            assert!(!is_fuse_mounted(&dir.path().join("workspace")));
        }
    }
}

/// `config init` writes a file that `config validate` passes, refuses to overwrite it without
/// `--force`, and writes the `-c` file or `./scorpio.toml` when `--path` is not given;
/// `validate` names a bad key and its source (file or environment); `show` prints every key.
#[test]
fn config_init_validate_and_show() {
    let fx = fixture::standard();
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_scorpio");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(args).current_dir(dir.path());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SCORPIO_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run_with_timeout(&mut cmd, 30);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cfg = dir.path().join("etc/scorpio.toml");
    let cfg_s = cfg.to_str().expect("utf-8 path");
    let repo = fx.repo_path.to_str().expect("utf-8 path");
    let (code, out, err) = run(&["config", "init", "--path", cfg_s, "--remote", repo], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(cfg_s), "{out}");
    let written = std::fs::read_to_string(&cfg).expect("written");
    assert!(
        written.contains(&format!("remote = \"{repo}\"")),
        "{written}"
    );
    let (code, out, err) = run(&["-c", cfg_s, "config", "validate"], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("ok"), "{out}");
    assert!(err.is_empty(), "{err}");
    // Kept without --force.
    std::fs::write(&cfg, format!("{written}\n# mine\n")).expect("edit");
    let (code, _, err) = run(&["config", "init", "--path", cfg_s], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("exists") && err.contains("--force"), "{err}");
    assert!(std::fs::read_to_string(&cfg)
        .expect("read")
        .ends_with("# mine\n"));
    let (code, _, err) = run(
        &["-c", cfg_s, "config", "init", "--force", "--remote", repo],
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(!std::fs::read_to_string(&cfg)
        .expect("read")
        .contains("# mine"));
    // No --path, no -c: ./scorpio.toml; its remote `.` is its own directory.
    let (code, _, err) = run(&["config", "init"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&["-c", "scorpio.toml", "config", "validate"], &[]);
    assert_eq!(code, Some(0), "{err}");

    // show: every key, one line each, with where its value came from.
    let (code, out, err) = run(
        &["-c", cfg_s, "--log-level", "debug", "config", "show"],
        &[
            ("SCORPIO_FETCH_CONCURRENCY", "9"),
            ("SCORPIO_AUTH_TOKEN", "sekrit"),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let line = |key: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key}: {out}"))
            .to_string()
    };
    assert!(
        line("remote").contains(repo)
            && line("remote").ends_with(&format!("# config file {cfg_s}")),
        "{out}"
    );
    assert!(line("log_level").ends_with("# --log-level"), "{out}");
    assert!(
        line("fetch_concurrency").starts_with("fetch_concurrency = 9 ")
            && line("fetch_concurrency").ends_with("# SCORPIO_FETCH_CONCURRENCY"),
        "{out}"
    );
    assert!(line("http_addr").ends_with("# default"), "{out}");
    assert!(line("antares.max_mounts").ends_with("# default"), "{out}");
    assert!(!out.contains("sekrit"), "{out}");
    // One line per key of ours (`prefetch_depth`, `antares.preload_depth`, `cache_db_bytes`,
    // `cache_listing_bytes`, `list_ahead` and `fuse_spin_us` made it 29).
    assert_eq!(out.lines().count(), 29, "{out}");
    for key in [
        "cache_db_bytes",
        "cache_listing_bytes",
        "list_ahead",
        "fuse_spin_us",
        "prefetch_depth",
    ] {
        assert!(line(key).ends_with("# default"), "{key}: {out}");
    }

    // validate: the bad key and its source.
    std::fs::write(
        &cfg,
        written.replace("\n[antares]\n", "\nfetch_concurrency = 'many'\n[antares]\n"),
    )
    .expect("edit");
    let (code, _, err) = run(&["-c", cfg_s, "config", "validate"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "config key `fetch_concurrency` (from config file {cfg_s})"
        )),
        "{err}"
    );
    std::fs::write(&cfg, &written).expect("restore");
    let (code, _, err) = run(
        &["-c", cfg_s, "config", "validate"],
        &[("SCORPIO_HTTP_ADDR", "nowhere")],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("config key `http_addr` (from SCORPIO_HTTP_ADDR)"),
        "{err}"
    );
}

/// A port another process holds ends the start with exit 4, naming `http_addr` and where it
/// came from, and nothing mounted.
#[test]
fn a_taken_port_exits_4_naming_http_addr() {
    let fx = fixture::standard();
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = held.local_addr().expect("addr");
    let (out, dir) = crate::scorpio(
        &[],
        &format!(
            "remote = '{}'\nworkspace = 'ws'\nstore_path = 'st'\nhttp_addr = '{addr}'\n",
            fx.repo_path.display()
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("config key `http_addr` (from config file ")
            && stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(!is_fuse_mounted(&dir.path().join("ws")));
}

/// Exit 3 stays "not reachable": a client command with no daemon at `http_addr`.
#[test]
fn a_client_with_no_daemon_exits_3() {
    let fx = fixture::standard();
    for args in [&["list"][..], &["antares", "--via-daemon", "list"]] {
        let (out, _dir) = crate::scorpio(
            args,
            &format!(
                "remote = '{}'\nstore_path = 'st'\nhttp_addr = '127.0.0.1:{}'\n",
                fx.repo_path.display(),
                free_port()
            ),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains("not reachable"), "{stderr}");
    }
}

/// `antares serve` on a port another process holds: exit 4 too, naming `antares.bind`.
#[test]
fn antares_serve_on_a_taken_port_exits_4_naming_antares_bind() {
    let fx = fixture::standard();
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = held.local_addr().expect("addr");
    let (out, _dir) = crate::scorpio(
        &["antares", "serve"],
        &format!(
            "remote = '{}'\nstore_path = 'st'\n[antares]\nbind = '{addr}'\n",
            fx.repo_path.display()
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("config key `antares.bind` (from config file ")
            && stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

/// A FUSE mount the kernel refuses ends the start with exit 5. The daemon runs in a mount
/// namespace of its own where `/dev/fuse` is `/dev/null`: the device opens, and mount(2)
/// refuses it (EINVAL), as it would any file that is not the FUSE device.
#[test]
fn a_refused_mount_exits_5() {
    let fx = fixture::standard();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("scorpio.toml");
    std::fs::write(
        &cfg,
        format!(
            "remote = '{}'\nworkspace = 'ws'\nstore_path = 'st'\nhttp_addr = '127.0.0.1:{}'\n",
            fx.repo_path.display(),
            free_port()
        ),
    )
    .expect("config");
    let plain = scorpio_command(&cfg);
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--", "sh", "-c"])
        .arg(r#"mount --bind /dev/null /dev/fuse && exec "$0" "$@""#)
        .arg(plain.get_program())
        .args(plain.get_args())
        .current_dir(dir.path());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SCORPIO_") {
            cmd.env_remove(k);
        }
    }
    let out = run_with_timeout(&mut cmd, 60);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot mount at {}",
            dir.path().join("ws").display()
        )),
        "{stderr}"
    );
    assert!(!is_fuse_mounted(&dir.path().join("ws")));
}
