//! `config init`'s file and `config show`'s rows.

use super::*;
use crate::config::sources::KEYS;

/// The key a template line sets or shows (`# key = value` or `key = value`), if any.
fn line_key(line: &str) -> Option<&str> {
    let l = line.strip_prefix("# ").unwrap_or(line);
    let (k, _) = l.split_once(" = ")?;
    k.chars()
        .all(|c| c.is_ascii_lowercase() || c == '_')
        .then_some(k)
}

#[test]
fn the_template_names_every_key_and_validates_as_written_and_uncommented() {
    let text = template(".");
    let mut section = String::new();
    let mut named = Vec::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('[') {
            section = format!("{}.", t.trim_end_matches(']'));
        } else if let Some(k) = line_key(line) {
            named.push(format!("{section}{k}"));
        }
    }
    let mut keys: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
    keys.sort();
    named.sort();
    assert_eq!(named, keys, "{text}");
    let (_d, p) = file(&text);
    let c = Sources::from_file(Some(&p)).unwrap().build().unwrap();
    assert!(c.warnings().is_empty());
    // Every commented line is a valid value, and the defaults it shows are the defaults.
    let uncommented: String = text
        .lines()
        .map(|l| match line_key(l) {
            Some(_) => l.strip_prefix("# ").unwrap_or(l),
            None => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let (_d, p) = file(&uncommented);
    let u = Sources::from_file(Some(&p)).unwrap().build().unwrap();
    assert_eq!(u.http_addr, c.http_addr);
    assert_eq!(u.log_level, c.log_level);
    assert_eq!(u.cache_mem_bytes, c.cache_mem_bytes);
    assert_eq!(u.cache_disk_bytes, c.cache_disk_bytes);
    assert_eq!(u.cache_db_bytes, c.cache_db_bytes);
    assert_eq!(u.cache_listing_bytes, c.cache_listing_bytes);
    assert_eq!(u.list_ahead, c.list_ahead);
    assert_eq!(u.fuse_spin_us, c.fuse_spin_us);
    assert_eq!(u.fetch_concurrency, c.fetch_concurrency);
    assert_eq!(u.connect_timeout, c.connect_timeout);
    assert_eq!(u.request_timeout, c.request_timeout);
    assert_eq!(u.commit_identity(), c.commit_identity());
    assert_eq!(u.antares.bind, c.antares.bind);
    assert_eq!(u.antares.max_mounts, c.antares.max_mounts);
}

#[test]
fn init_refuses_an_existing_file_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("etc/scorpio.toml");
    write_template(&p, Some("http://mega:8000"), false).unwrap();
    let c = Sources::from_file(Some(&p)).unwrap().build().unwrap();
    assert_eq!(c.remote, RemoteSpec::Mega("http://mega:8000".into()));
    std::fs::write(&p, "kept").unwrap();
    let e = write_template(&p, None, false).unwrap_err();
    assert!(matches!(e, InitError::Exists(_)), "{e}");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "kept");
    write_template(&p, None, true).unwrap();
    let c = Sources::from_file(Some(&p)).unwrap().build().unwrap();
    assert_eq!(c.remote, RemoteSpec::Local(dir.path().join("etc")));
    // A relative remote is the cwd's, written as an absolute path.
    write_template(&p, Some("src"), true).unwrap();
    let text = std::fs::read_to_string(&p).unwrap();
    let cwd = std::env::current_dir().unwrap().join("src");
    assert!(
        text.contains(&format!("remote = \"{}\"", cwd.display())),
        "{text}"
    );
}

#[test]
fn show_gives_every_key_its_value_and_origin_and_hides_tokens() {
    let (d, p) = file(
        "base_url = \".\"\nstore_path = \"st\"\nremote_token = \"sekrit\"\n[antares]\nmax_mounts = 3\n",
    );
    let c = Sources::from_file(Some(&p))
        .unwrap()
        .with_env([("SCORPIO_LOG_LEVEL".to_string(), "debug".to_string())])
        .with_cli(&[
            ("http_addr", Some("127.0.0.1:9001".into())),
            ("antares.bind", Some("127.0.0.1:9002".into())),
        ])
        .build()
        .unwrap();
    let rows = c.show();
    let keys: Vec<&str> = rows.iter().map(|r| r.key).collect();
    assert_eq!(keys, KEYS);
    let row = |k: &str| rows.iter().find(|r| r.key == k).unwrap().clone();
    let from_file = format!("config file {}", p.display());
    assert_eq!(
        row("remote").origin,
        format!("{from_file}, as upstream `base_url`")
    );
    assert_eq!(
        row("remote").value,
        format!("\"{}\"", d.path().join(".").display())
    );
    assert_eq!(
        row("store_path").value,
        format!("\"{}\"", d.path().join("st").display())
    );
    assert_eq!(row("store_path").origin, from_file);
    assert_eq!(row("log_level").value, "\"debug\"");
    assert_eq!(row("log_level").origin, "SCORPIO_LOG_LEVEL");
    assert_eq!(row("http_addr").value, "\"127.0.0.1:9001\"");
    assert_eq!(row("http_addr").origin, "--http-addr");
    assert_eq!(row("antares.max_mounts").value, "3");
    assert_eq!(row("antares.bind").origin, "--bind");
    assert_eq!(row("fetch_concurrency").value, "16");
    assert_eq!(row("fetch_concurrency").origin, "default");
    assert_eq!(row("git_author").value, "(not set: \"Scorpio\")");
    assert_eq!(row("remote_token").value, "(set; not shown)");
    assert_eq!(row("auth_token").value, "(not set)");
    let text = c.show_text();
    assert!(!text.contains("sekrit"), "{text}");
    assert_eq!(text.lines().count(), KEYS.len());
    assert!(
        text.lines()
            .any(|l| l.starts_with("log_level = \"debug\"") && l.ends_with("# SCORPIO_LOG_LEVEL")),
        "{text}"
    );
}
