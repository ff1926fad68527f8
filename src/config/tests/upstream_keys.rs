//! Upstream Scorpio's configs: both layouts load, each key with a meaning sets ours, each
//! without one is one warning line, ours beats its upstream alias, and anything else is refused.

use super::*;
use crate::config::{sources, upstream};

/// Every upstream key, flat, written as upstream writes them (numbers and booleans as strings).
/// `{repo}` and `{root}` are filled in.
const FLAT: &str = r#"
base_url = "{repo}"
lfs_url = "http://localhost:8000/lfs"
workspace = "{root}/mount"
store_path = "{root}/store"
config_file = "config.toml"
git_author = "MEGA"
git_email = "admin@mega.org"
log_level = "debug"
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
antares_upper_root = "{root}/antares/upper"
antares_cl_root = "{root}/antares/cl"
antares_mount_root = "{root}/antares/mnt"
antares_state_file = "{root}/antares/state.toml"
"#;

/// The same keys in upstream's tables, with native numbers and booleans.
const TABLES: &str = r#"
[server]
base_url = "{repo}"
lfs_url = "http://localhost:8000/lfs"
workspace = "{root}/mount"
store_path = "{root}/store"
config_file = "config.toml"
git_author = "MEGA"
git_email = "admin@mega.org"
log_level = "debug"

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
upper_root = "{root}/antares/upper"
cl_root = "{root}/antares/cl"
mount_root = "{root}/antares/mnt"
state_file = "{root}/antares/state.toml"
"#;

/// The issue's list of upstream keys, as upstream names them flat.
const ISSUE_KEYS: &[&str] = &[
    "base_url",
    "lfs_url",
    "workspace",
    "store_path",
    "config_file",
    "git_author",
    "git_email",
    "log_level",
    "dicfuse_readable",
    "load_dir_depth",
    "fetch_file_thread",
    "dicfuse_import_concurrency",
    "dicfuse_dir_sync_ttl_secs",
    "dicfuse_reply_ttl_secs",
    "dicfuse_fetch_dir_timeout_secs",
    "dicfuse_connect_timeout_secs",
    "dicfuse_fetch_dir_max_retries",
    "dicfuse_stat_mode",
    "dicfuse_open_buff_max_bytes",
    "dicfuse_open_buff_max_files",
    "antares_load_dir_depth",
    "antares_dicfuse_stat_mode",
    "antares_dicfuse_open_buff_max_bytes",
    "antares_dicfuse_open_buff_max_files",
    "antares_dicfuse_dir_sync_ttl_secs",
    "antares_dicfuse_reply_ttl_secs",
    "antares_upper_root",
    "antares_cl_root",
    "antares_mount_root",
    "antares_state_file",
];

/// Keys with no meaning here, flat and as written in their table.
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

fn load(template: &str) -> (tempfile::TempDir, Result<Config, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let text = template
        .replace("{repo}", &repo.display().to_string())
        .replace("{root}", &dir.path().display().to_string());
    let p = dir.path().join("scorpio.toml");
    std::fs::write(&p, text).unwrap();
    let c = Sources::from_file(Some(&p)).and_then(|s| s.build());
    (dir, c)
}

#[test]
fn the_table_holds_exactly_the_issues_keys() {
    let flat: Vec<&str> = upstream::UPSTREAM_KEYS.iter().map(|k| k.flat).collect();
    assert_eq!(flat, ISSUE_KEYS);
    let ignored: Vec<&str> = upstream::UPSTREAM_KEYS
        .iter()
        .filter(|k| matches!(k.meaning, upstream::Meaning::Ignored(_)))
        .map(|k| k.flat)
        .collect();
    let expected: Vec<&str> = IGNORED.iter().map(|(f, _)| *f).collect();
    assert_eq!(ignored, expected);
    // Every key of ours an upstream key maps to exists.
    for k in upstream::UPSTREAM_KEYS {
        if let upstream::Meaning::Ours(ours) = k.meaning {
            assert!(sources::KEYS.contains(&ours), "{ours}");
        }
    }
}

#[test]
fn both_layouts_load_mapping_what_has_a_meaning_and_warning_once_for_the_rest() {
    for (layout, text) in [("flat", FLAT), ("tables", TABLES)] {
        let (dir, c) = load(text);
        let c = c.unwrap_or_else(|e| panic!("{layout}: {e}"));
        let root = dir.path();
        assert_eq!(c.remote, RemoteSpec::Local(root.join("repo")), "{layout}");
        assert_eq!(c.workspace, root.join("mount"));
        assert_eq!(c.store_path, root.join("store"));
        assert_eq!(c.git_author.as_deref(), Some("MEGA"));
        assert_eq!(c.git_email.as_deref(), Some("admin@mega.org"));
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.fetch_concurrency, 10, "{layout}: fetch_file_thread");
        assert_eq!(c.connect_timeout.as_secs(), 3, "{layout}");
        assert_eq!(c.request_timeout.as_secs(), 30, "{layout}: not mapped");
        assert_eq!(c.antares.upper_root, root.join("antares/upper"));
        assert_eq!(c.antares.cl_root, root.join("antares/cl"));
        assert_eq!(c.antares.mount_root, root.join("antares/mnt"));
        assert_eq!(c.prefetch_depth, 3, "{layout}: load_dir_depth");
        assert_eq!(
            c.antares.preload_depth, 3,
            "{layout}: antares load_dir_depth"
        );
        let w = c.warnings();
        assert_eq!(w.len(), IGNORED.len(), "{layout}: {w:#?}");
        for (flat, table) in IGNORED {
            let name = if layout == "flat" { flat } else { table };
            let lines: Vec<&String> = w
                .iter()
                .filter(|l| l.contains(&format!("`{name}`")))
                .collect();
            assert_eq!(lines.len(), 1, "{layout}: {name}: {w:#?}");
            assert!(lines[0].contains("ignored"), "{}", lines[0]);
            assert!(lines[0].contains("config file"), "{}", lines[0]);
        }
        // Where a value came from names the upstream key it was given under.
        assert_eq!(
            c.spelled("remote"),
            if layout == "flat" {
                "base_url"
            } else {
                "server.base_url"
            }
        );
        assert_eq!(c.spelled("http_addr"), "http_addr");
    }
}

#[test]
fn upstream_names_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SCORPIO_BASE_URL", "http://mega.example:8000/"),
        ("SCORPIO_FETCH_FILE_THREAD", "7"),
        ("SCORPIO_DICFUSE_CONNECT_TIMEOUT_SECS", "9"),
        ("SCORPIO_ANTARES_UPPER_ROOT", "/u"),
        ("SCORPIO_LOAD_DIR_DEPTH", "3"),
        ("SCORPIO_ANTARES_LOAD_DIR_DEPTH", "2"),
        ("SCORPIO_DICFUSE_IMPORT_CONCURRENCY", "4"),
        // Empty is unset, as upstream takes it.
        ("SCORPIO_LFS_URL", ""),
        ("SCORPIO_STORE_PATH", dir.path().to_str().unwrap()),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let c = Sources::from_file(None)
        .unwrap()
        .with_env(env)
        .build()
        .unwrap();
    assert_eq!(
        c.remote,
        RemoteSpec::Mega("http://mega.example:8000".into())
    );
    assert_eq!(c.origin("remote"), "SCORPIO_BASE_URL");
    assert_eq!(c.spelled("remote"), "base_url");
    assert_eq!(c.fetch_concurrency, 7);
    assert_eq!(c.connect_timeout.as_secs(), 9);
    assert_eq!(c.antares.upper_root, PathBuf::from("/u"));
    assert_eq!(c.prefetch_depth, 3);
    assert_eq!(c.spelled("prefetch_depth"), "load_dir_depth");
    assert_eq!(c.antares.preload_depth, 2);
    assert_eq!(c.warnings().len(), 1, "{:#?}", c.warnings());
    assert!(
        c.warnings()[0]
            .contains("`dicfuse_import_concurrency` (from SCORPIO_DICFUSE_IMPORT_CONCURRENCY)"),
        "{:#?}",
        c.warnings()
    );
}

#[test]
fn ours_wins_over_its_upstream_alias_in_any_layer_with_a_warning() {
    let (d, p) = file("remote = \".\"\nbase_url = \"http://other\"\nstore_path = \"/s\"\n");
    let c = Sources::from_file(Some(&p)).unwrap().build().unwrap();
    assert_eq!(c.remote, RemoteSpec::Local(d.path().to_path_buf()));
    assert_eq!(c.spelled("remote"), "remote");
    assert_eq!(c.warnings().len(), 1);
    let w = &c.warnings()[0];
    assert!(
        w.contains("`base_url`") && w.contains("`remote`") && w.contains("ignored"),
        "{w}"
    );
    // Ours in the file beats upstream's in the environment, the higher layer.
    let (_d, p) = file("fetch_concurrency = 3\nremote = \".\"\nstore_path = \"/s\"\n");
    let c = Sources::from_file(Some(&p))
        .unwrap()
        .with_env([("SCORPIO_FETCH_FILE_THREAD".into(), "8".into())])
        .build()
        .unwrap();
    assert_eq!(c.fetch_concurrency, 3);
    assert!(
        c.warnings()[0].contains("SCORPIO_FETCH_FILE_THREAD"),
        "{:?}",
        c.warnings()
    );
    // A flag of ours beats upstream's name in the file.
    let (_d, p) = file("base_url = \"http://a\"\nstore_path = \"/s\"\n");
    let c = Sources::from_file(Some(&p))
        .unwrap()
        .with_cli(&[("remote", Some("http://b".into()))])
        .build()
        .unwrap();
    assert_eq!(c.remote, RemoteSpec::Mega("http://b".into()));
    assert_eq!(c.origin("remote"), "--remote");
    // Among upstream names, a table beats the flat name (as upstream has it), silently.
    let (_d, p) = file(
        "base_url = \"http://flat\"\nstore_path = \"/s\"\n[server]\nbase_url = \"http://table\"\n",
    );
    let c = Sources::from_file(Some(&p)).unwrap().build().unwrap();
    assert_eq!(c.remote, RemoteSpec::Mega("http://table".into()));
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
}

#[test]
fn errors_name_the_upstream_key_as_written() {
    let build = |text: &str| {
        let (_d, p) = file(text);
        Sources::from_file(Some(&p)).and_then(|s| s.build())
    };
    let e = build("remote = \".\"\nstore_path = \"/s\"\nfetch_file_thread = \"many\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`fetch_file_thread`") && e.contains("config file"),
        "{e}"
    );
    let e = build("store_path = \"/s\"\n[server]\nbase_url = \"ftp://x\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`server.base_url`"), "{e}");
    let e = build("remote = \".\"\nstore_path = \"/s\"\n[dicfuse]\nconnect_timeout_secs = 0\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`dicfuse.connect_timeout_secs`"), "{e}");
    // After loading too (the start-up checks name the key a value came under).
    let c = build("base_url = \".\"\nstore_path = \"/s\"\n").unwrap();
    let e = c.invalid("remote", "not a git repository").to_string();
    assert!(
        e.starts_with("config key `base_url` (from config file "),
        "{e}"
    );
    // Numbers as strings only under upstream's names: ours keep their types.
    let e = build("remote = \".\"\nstore_path = \"/s\"\nfetch_concurrency = \"5\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`fetch_concurrency`"), "{e}");
}

#[test]
fn keys_neither_ours_nor_upstreams_are_still_refused_by_name() {
    for (text, key) in [
        ("remote = \".\"\nbogus = 1\n", "bogus"),
        (
            "remote = \".\"\n[server]\nhttp_addr = \"127.0.0.1:1\"\n",
            "server.http_addr",
        ),
        (
            "remote = \".\"\n[dicfuse]\nbase_url = \"http://x\"\n",
            "dicfuse.base_url",
        ),
        (
            "remote = \".\"\n[antares]\nfetch_file_thread = 1\n",
            "antares.fetch_file_thread",
        ),
        ("remote = \".\"\n[mst2]\nbase_url = \"http://x\"\n", "mst2"),
        ("remote = \".\"\nserver = \"x\"\n", "server"),
    ] {
        let (_d, p) = file(text);
        let e = Sources::from_file(Some(&p)).unwrap_err().to_string();
        assert!(e.contains(&format!("`{key}`")), "{text:?}: {e}");
    }
}
