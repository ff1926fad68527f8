//! Unit tests for loading: layering, defaults, relative paths, and errors that name key and origin.

use super::*;

fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("scorpio.toml");
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

#[test]
fn defaults_and_relative_paths() {
    let (dir, p) = file("remote = \".\"\nworkspace = \"ws\"\nstore_path = \"st\"\n");
    let c = Sources::from_file(Some(&p)).unwrap().build().unwrap();
    assert_eq!(c.workspace, dir.path().join("ws"));
    assert_eq!(c.store_path, dir.path().join("st"));
    assert_eq!(c.http_addr.to_string(), "127.0.0.1:8000");
    assert_eq!(c.fetch_concurrency, 16);
    assert!(matches!(c.remote, RemoteSpec::Local(_)));
}

#[test]
fn precedence_cli_over_env_over_file() {
    let (_d, p) = file(
        "remote = \"http://a\"\nfetch_concurrency = 3\nlog_level = \"warn\"\nstore_path = \"/s\"\n",
    );
    let env = [
        ("SCORPIO_FETCH_CONCURRENCY".to_string(), "5".to_string()),
        ("SCORPIO_LOG_LEVEL".to_string(), "debug".to_string()),
    ];
    let c = Sources::from_file(Some(&p))
        .unwrap()
        .with_env(env)
        .with_cli(&[("log_level", Some("trace".into())), ("workspace", None)])
        .build()
        .unwrap();
    assert_eq!(c.fetch_concurrency, 5);
    assert_eq!(c.log_level, "trace");
    assert_eq!(c.remote, RemoteSpec::Mega("http://a".into()));
}

#[test]
fn unknown_and_bad_keys_are_named() {
    let (_d, p) = file("remote = \".\"\nbogus = 1\n");
    let e = Sources::from_file(Some(&p)).unwrap_err().to_string();
    assert!(e.contains("bogus"), "{e}");
    let (_d, p) = file("remote = \".\"\n[antares]\nnope = 1\n");
    assert!(Sources::from_file(Some(&p))
        .unwrap_err()
        .to_string()
        .contains("antares.nope"));
    let (_d, p) = file("remote = \".\"\nfetch_concurrency = \"many\"\nstore_path = \"/s\"\n");
    let e = Sources::from_file(Some(&p))
        .unwrap()
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("fetch_concurrency"), "{e}");
    let env = [("SCORPIO_HTTP_ADDR".to_string(), "nowhere".to_string())];
    let (_d, p) = file("remote = \".\"\nstore_path = \"/s\"\n");
    let e = Sources::from_file(Some(&p))
        .unwrap()
        .with_env(env)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("http_addr") && e.contains("SCORPIO_HTTP_ADDR"),
        "{e}"
    );
}

#[test]
fn urls_and_listen_addresses() {
    let build = |text: &str| {
        let (_d, p) = file(text);
        Sources::from_file(Some(&p)).unwrap().build()
    };
    let e = build("remote = \"ftp://x\"\nstore_path = \"/s\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`remote`") && e.contains("ftp"), "{e}");
    for bad in ["not a url", "ftp://h/r.git", "http://"] {
        let e = build(&format!(
            "remote = \".\"\nstore_path = \"/s\"\npush_url = {bad:?}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("`push_url`"), "{bad}: {e}");
    }
    let c = build("remote = \".\"\nstore_path = \"/s\"\npush_url = \"https://h/r.git\"\n").unwrap();
    assert_eq!(c.push_url.as_deref(), Some("https://h/r.git"));
    let c = build("remote = \".\"\nstore_path = \"/s\"\nhttp_addr = \"localhost:8001\"\n").unwrap();
    assert!(c.http_addr.ip().is_loopback() && c.http_addr.port() == 8001);
    let origin = c.origin("http_addr");
    assert!(
        origin.starts_with("config file ") && origin.ends_with("scorpio.toml"),
        "{origin}"
    );
    assert!(build("remote = \".\"\nstore_path = \"/s\"\nhttp_addr = \"localhost\"\n").is_err());
}

#[test]
fn antares_keys() {
    let (d, p) = file("remote = \".\"\nstore_path = \"st\"\n[antares]\nallow_other_roots = true\nmax_mounts = 3\n");
    let c = Sources::from_file(Some(&p)).unwrap().build().unwrap();
    assert!(c.antares.allow_other_roots);
    assert_eq!(c.antares.max_mounts, 3);
    assert_eq!(c.antares.mount_root, d.path().join("st/antares/mnt"));
    let (_d, p) = file("remote = \".\"\nstore_path = \"/s\"\n[antares]\nallow_other_roots = 1\n");
    let e = Sources::from_file(Some(&p))
        .unwrap()
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("antares.allow_other_roots"), "{e}");
    let (_d, p) = file("remote = \".\"\nstore_path = \"/s\"\n[antares]\nbind = \"0.0.0.0:2726\"\n");
    assert!(Sources::from_file(Some(&p)).unwrap().build().is_err());
    let c = Sources::from_file(None)
        .unwrap()
        .with_env([
            ("SCORPIO_REMOTE".to_string(), ".".to_string()),
            ("SCORPIO_STORE_PATH".to_string(), "/s".to_string()),
            (
                "SCORPIO_ANTARES_ALLOW_OTHER_ROOTS".to_string(),
                "true".to_string(),
            ),
        ])
        .build()
        .unwrap();
    assert!(c.antares.allow_other_roots);
}

#[test]
fn refuses_open_bind_without_token_and_missing_remote() {
    let (_d, p) = file("remote = \".\"\nhttp_addr = \"0.0.0.0:8000\"\nstore_path = \"/s\"\n");
    assert!(Sources::from_file(Some(&p)).unwrap().build().is_err());
    let (_d, p) = file(
        "remote = \".\"\nhttp_addr = \"0.0.0.0:8000\"\nauth_token = \"t\"\nstore_path = \"/s\"\n",
    );
    assert!(Sources::from_file(Some(&p)).unwrap().build().is_ok());
    let (_d, p) = file("store_path = \"/s\"\n");
    assert!(Sources::from_file(Some(&p))
        .unwrap()
        .build()
        .unwrap_err()
        .to_string()
        .contains("remote"));
    let (_d, p) = file("remote = \"/does/not/exist\"\nstore_path = \"/s\"\n");
    assert!(Sources::from_file(Some(&p)).unwrap().build().is_err());
    let (_d, p) = file("remote = \".\"\nstore_path = \"/s\"\ncache_mem_bytes = 0\n");
    assert!(Sources::from_file(Some(&p))
        .unwrap()
        .build()
        .unwrap_err()
        .to_string()
        .contains("cache_mem_bytes"));
}

#[test]
fn allow_other_defaults_to_whether_the_daemon_is_root() {
    let build = |text: &str| {
        let (_d, p) = file(text);
        Sources::from_file(Some(&p)).unwrap().build()
    };
    let c = build("remote = \".\"\nstore_path = \"/s\"\n").unwrap();
    assert_eq!(c.allow_other, crate::privacy::is_root());
    let c = build("remote = \".\"\nstore_path = \"/s\"\nallow_other = false\n").unwrap();
    assert!(!c.allow_other);
    let c = build("remote = \".\"\nstore_path = \"/s\"\nallow_other = true\n").unwrap();
    assert!(c.allow_other);
    let e = build("remote = \".\"\nstore_path = \"/s\"\nallow_other = \"yes\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("allow_other"), "{e}");
}

mod init_show;
mod upstream_keys;

#[test]
fn prefetch_depths_default_to_none_and_are_bounded() {
    let (_d, p) = file("remote = \".\"\nstore_path = \"/s\"\n");
    let c = Sources::from_file(Some(&p)).unwrap().build().unwrap();
    assert_eq!((c.prefetch_depth, c.antares.preload_depth), (0, 0));
    let (_d, p) = file(
        "remote = \".\"\nstore_path = \"/s\"\nprefetch_depth = 2\n[antares]\npreload_depth = 4\n",
    );
    let c = Sources::from_file(Some(&p)).unwrap().build().unwrap();
    assert_eq!((c.prefetch_depth, c.antares.preload_depth), (2, 4));
    for text in [
        "remote = \".\"\nstore_path = \"/s\"\nprefetch_depth = -1\n",
        "remote = \".\"\nstore_path = \"/s\"\nprefetch_depth = 5000\n",
        "remote = \".\"\nstore_path = \"/s\"\n[antares]\npreload_depth = \"deep\"\n",
    ] {
        let (_d, p) = file(text);
        let e = Sources::from_file(Some(&p))
            .unwrap()
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("prefetch_depth") || e.contains("antares.preload_depth"),
            "{e}"
        );
    }
}
