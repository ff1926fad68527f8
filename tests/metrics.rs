//! `GET /metrics` and `scorpio stats` against the real daemon: counters move with the work they
//! count (FUSE requests, blob fetches as the Mega test server saw them, cache hits on a read
//! after the kernel's cache is dropped, the upper layer's bytes, the inode table), the body is
//! Prometheus text, and the route has the other routes' access rule.

mod support;

use std::collections::BTreeMap;

use support::antares::AntaresServer;
use support::api::{cli, mount};
use support::daemon::{run_with_timeout, Daemon, DaemonOpts};
use support::fixture;
use support::host::{drop_caches, nobody};
use support::http;
use support::mega_server::MegaServer;

/// One scrape: `name{labels}` (labels sorted, as written) -> value.
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    /// The value of `name` with the one label `key=value`, 0 when absent (not counted yet).
    fn get(&self, name: &str, label: (&str, &str)) -> f64 {
        let key = format!("{name}{{{}=\"{}\"}}", label.0, label.1);
        self.0.get(&key).copied().unwrap_or(0.0)
    }

    /// The value of `name`, without labels.
    fn plain(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(0.0)
    }
}

/// Checks one sample line of the text format (`name{k="v",...} value`) and splits it.
fn sample(line: &str) -> (String, f64) {
    let (series, value) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("no value in {line:?}"));
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("value of {line:?} is not a number")),
    };
    let name_end = series.find('{').unwrap_or(series.len());
    let name = &series[..name_end];
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit()),
        "bad metric name in {line:?}"
    );
    if name_end < series.len() {
        let labels = &series[name_end..];
        assert!(
            labels.ends_with('}') && labels.len() >= 2,
            "bad labels in {line:?}"
        );
        for pair in labels[1..labels.len() - 1].split(',') {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("label without '=' in {line:?}"));
            assert!(
                !k.is_empty() && v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                "bad label {pair:?} in {line:?}"
            );
        }
    }
    (series.to_string(), value)
}

/// `GET /metrics` with `token`: checks the status, the content type and that every line is a
/// comment or a sample, and that every `# TYPE` names samples.
fn scrape_at(addr: &str, token: Option<&str>) -> Scrape {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("Authorization", b.as_str()))
        .collect();
    let r = http::send(addr, "GET", "/metrics", &headers, Vec::new()).expect("GET /metrics");
    let body = r.text();
    assert_eq!(r.status, 200, "{body}");
    assert_eq!(
        r.content_type.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let mut out = BTreeMap::new();
    for line in body.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = sample(line);
        out.insert(series, value);
    }
    for typed in body.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = typed.split_once(' ').expect("TYPE name kind");
        let suffix = if kind == "histogram" { "_count" } else { "" };
        let want = format!("{name}{suffix}");
        assert!(
            out.keys()
                .any(|k| k == &want || k.starts_with(&format!("{want}{{"))),
            "# TYPE {name} {kind} without samples named {want}:\n{body}"
        );
    }
    Scrape(out)
}

fn scrape(d: &Daemon) -> Scrape {
    scrape_at(&d.http_addr, None)
}

#[test]
fn metrics_move_with_the_work_they_count() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::mega(&server);
    let before = scrape(&d);
    let seen = server.counts();

    let files = [
        (fixture::DEEP_FILE, fixture::DEEP_FILE_CONTENT),
        (fixture::DEEPEST_FILE, fixture::DEEPEST_FILE_CONTENT),
        (fixture::EXEC_FILE, fixture::EXEC_FILE_CONTENT),
    ];
    for (path, content) in files {
        assert_eq!(
            std::fs::read(d.workspace.join(path)).expect("read"),
            content
        );
    }
    let after = scrape(&d);
    let now = server.counts();
    let delta = |s: &Scrape, name: &str, l: (&str, &str)| s.get(name, l) - before.get(name, l);

    // The kernel edge.
    assert!(delta(&after, "scorpio_fuse_requests_total", ("op", "read")) >= 3.0);
    assert!(delta(&after, "scorpio_fuse_requests_total", ("op", "lookup")) >= 3.0);
    assert!(
        delta(&after, "scorpio_fuse_request_seconds_count", ("op", "read")) >= 3.0,
        "the latency histogram counts what the counter counts"
    );
    // The remote, as the server saw it: one GET per blob, and their bytes.
    let blobs = (now.blob_get.len() - seen.blob_get.len()) as f64;
    assert_eq!(blobs, 3.0, "{now:?}");
    assert_eq!(
        delta(&after, "scorpio_remote_requests_total", ("kind", "blob")),
        blobs
    );
    assert_eq!(
        delta(&after, "scorpio_remote_requests_total", ("kind", "size")),
        (now.blob_head.len() - seen.blob_head.len()) as f64
    );
    let bytes: usize = files.iter().map(|(_, c)| c.len()).sum();
    assert_eq!(
        delta(&after, "scorpio_remote_bytes_total", ("kind", "blob")),
        bytes as f64
    );
    assert!(delta(&after, "scorpio_remote_requests_total", ("kind", "tree")) >= 3.0);
    assert_eq!(
        after.get("scorpio_remote_errors_total", ("kind", "blob")),
        0.0
    );
    // Each first read missed the disk cache.
    assert_eq!(
        delta(&after, "scorpio_cache_misses_total", ("cache", "disk")),
        blobs
    );
    // Listing `a/b/d/e` put entries in the inode table.
    assert!(
        after.plain("scorpio_inode_entries") > before.plain("scorpio_inode_entries"),
        "inode entries did not grow"
    );

    // The same file again, with the kernel's cache dropped: served from the disk cache.
    drop_caches();
    assert_eq!(
        std::fs::read(d.workspace.join(fixture::DEEP_FILE)).expect("read again"),
        fixture::DEEP_FILE_CONTENT
    );
    let again = scrape(&d);
    assert!(
        again.get("scorpio_cache_hits_total", ("cache", "disk"))
            > after.get("scorpio_cache_hits_total", ("cache", "disk")),
        "no disk cache hit on the second read"
    );
    assert_eq!(server.counts().blob_get.len(), now.blob_get.len());
    assert_eq!(
        again.get("scorpio_remote_requests_total", ("kind", "blob")),
        after.get("scorpio_remote_requests_total", ("kind", "blob"))
    );

    // A symlink's target goes through the memory cache: a miss, then (the kernel's cache
    // dropped) a hit.
    let link = d.workspace.join(fixture::SYMLINK_REL);
    let mem = |s: &Scrape, n: &str| s.get(n, ("cache", "memory"));
    assert_eq!(
        std::fs::read_link(&link).expect("readlink"),
        std::path::Path::new(fixture::SYMLINK_REL_TARGET)
    );
    let once = scrape(&d);
    assert!(mem(&once, "scorpio_cache_misses_total") > mem(&again, "scorpio_cache_misses_total"));
    drop_caches();
    std::fs::read_link(&link).expect("readlink again");
    let twice = scrape(&d);
    assert!(mem(&twice, "scorpio_cache_hits_total") > mem(&once, "scorpio_cache_hits_total"));

    // The upper layer grows by what is written into a writable path.
    mount(&d, "a");
    let upper_before = scrape(&d).get("scorpio_upper_bytes", ("owner", "workspace"));
    std::fs::write(d.workspace.join("a/new.bin"), vec![7u8; 10_000]).expect("write");
    let upper_after = scrape(&d).get("scorpio_upper_bytes", ("owner", "workspace"));
    assert_eq!(upper_after - upper_before, 10_000.0);

    // `scorpio stats` sums it up.
    let out = cli(&d, &["stats"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "FUSE requests:",
        "Remote requests:",
        "Cache hit ratio:",
        "Inode entries:",
        "Upper layers:",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(text.contains("blob 4"), "{text}");
    assert!(text.contains("workspace 9.8 KiB"), "{text}");
}

#[test]
fn metrics_have_the_access_rule_of_the_other_routes() {
    let fx = fixture::standard();
    let d = Daemon::start_or_panic(DaemonOpts {
        extra_toml: "auth_token = \"s3cret\"\n".into(),
        ..DaemonOpts::new(fx.repo_path.display().to_string())
    });
    for token in [None, Some("wrong")] {
        let (status, body) = http::request(&d.http_addr, "GET", "/metrics", None, token);
        assert_eq!(status, 401, "{token:?}: {body}");
        // As for a route that exists and refuses.
        assert_eq!(
            http::request(&d.http_addr, "GET", "/health", None, token).0,
            401
        );
    }
    scrape_at(&d.http_addr, Some("s3cret"));
    // The CLI sends the config's token.
    let out = cli(&d, &["stats"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn another_user_gets_no_metrics_without_the_token() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let get = |url: String| {
        let out = run_with_timeout(
            nobody("curl").args(["-sS", "-w", "\n%{http_code}", &url]),
            60,
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
        (code.trim().to_string(), body.to_string())
    };
    let (code, body) = get(format!("{}/metrics", d.http_url()));
    assert_eq!(code, "403", "{body}");
    // The same refusal as a route that changes things.
    assert_eq!(get(format!("{}/api/fs/mpoint", d.http_url())).0, "403");
    // The daemon's own user is served.
    scrape(&d);
}

#[test]
fn the_standalone_antares_api_counts_its_mounts_and_their_upper_layers() {
    let fx = fixture::standard();
    let s = AntaresServer::start(&fx.repo_path.display().to_string(), "");
    let before = scrape_at(&s.addr, None);
    assert_eq!(
        before.get("scorpio_antares_mounts", ("state", "mounted")),
        0.0
    );
    let rec = s.create(serde_json::json!({"path": "a", "job_id": "metrics"}));
    let mp = std::path::PathBuf::from(rec["mountpoint"].as_str().expect("mountpoint"));
    std::fs::write(mp.join("out.bin"), vec![1u8; 5_000]).expect("write");
    let after = scrape_at(&s.addr, None);
    assert_eq!(
        after.get("scorpio_antares_mounts", ("state", "mounted")),
        1.0
    );
    assert_eq!(
        after.get("scorpio_upper_bytes", ("owner", "antares"))
            - before.get("scorpio_upper_bytes", ("owner", "antares")),
        5_000.0
    );
    assert!(
        after.get("scorpio_fuse_requests_total", ("op", "create"))
            > before.get("scorpio_fuse_requests_total", ("op", "create")),
        "the mount's requests are counted"
    );
    let (st, v) = s.delete("/mounts/by-job/metrics");
    assert_eq!(st, 200, "{v}");
    let gone = scrape_at(&s.addr, None);
    assert_eq!(
        gone.get("scorpio_antares_mounts", ("state", "mounted")),
        0.0
    );
}

#[test]
fn failures_retries_and_evictions_are_counted() {
    let fx = fixture::standard();
    // Two blobs that do not fit the smallest disk cache together.
    fixture::add_commit(&fx, "big/one.bin", &vec![1u8; 700_000]);
    fixture::add_commit(&fx, "big/two.bin", &vec![2u8; 700_000]);
    let server = MegaServer::start(&fx.repo_path);
    let d = Daemon::start_or_panic(DaemonOpts {
        extra_toml: format!("cache_disk_bytes = {}\n", 1 << 20),
        ..DaemonOpts::new(server.url())
    });
    let disk = |s: &Scrape, n: &str| s.get(n, ("cache", "disk"));
    let blob = |s: &Scrape, n: &str| s.get(n, ("kind", "blob"));
    let before = scrape(&d);
    std::fs::read(d.workspace.join("big/one.bin")).expect("read one");
    std::fs::read(d.workspace.join("big/two.bin")).expect("read two");
    let after = scrape(&d);
    assert_eq!(
        disk(&after, "scorpio_cache_evictions_total")
            - disk(&before, "scorpio_cache_evictions_total"),
        1.0,
        "the first blob made room for the second"
    );

    // Every request fails: the evicted blob's fetch is retried within its deadline, then fails,
    // and both count.
    drop_caches();
    server.set_fault(support::mega_server::Fault::Http500);
    let failed = std::fs::read(d.workspace.join("big/one.bin"));
    server.set_fault(support::mega_server::Fault::None);
    assert!(failed.is_err(), "a read through a failing remote succeeded");
    let faulted = scrape(&d);
    // At least one: after a failed readahead the kernel asks again for the page it needs.
    assert!(
        blob(&faulted, "scorpio_remote_errors_total") - blob(&after, "scorpio_remote_errors_total")
            >= 1.0
    );
    assert!(
        blob(&faulted, "scorpio_remote_retries_total")
            > blob(&after, "scorpio_remote_retries_total"),
        "no retry counted"
    );
    // The server saw the first attempt and every retry.
    assert_eq!(
        (server.counts().blob_get.len()) as f64,
        blob(&faulted, "scorpio_remote_requests_total")
            + blob(&faulted, "scorpio_remote_retries_total")
    );
    assert_eq!(
        std::fs::read(d.workspace.join("big/one.bin")).expect("read once the server is back"),
        vec![1u8; 700_000]
    );
}

/// Directories and other entries below `dir`, by the listing's own types (no stat).
fn walk_types(
    dir: &std::path::Path,
    dirs: &mut Vec<std::path::PathBuf>,
    others: &mut Vec<std::path::PathBuf>,
) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("entry");
        if e.file_type().expect("d_type").is_dir() {
            dirs.push(e.path());
            walk_types(&e.path(), dirs, others);
        } else {
            others.push(e.path());
        }
    }
}

#[test]
fn a_walk_costs_two_requests_per_directory_and_nothing_per_file() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let before = scrape(&d);
    let (mut dirs, mut others) = (Vec::new(), Vec::new());
    walk_types(&d.workspace, &mut dirs, &mut others);
    assert!(dirs.len() >= 3 && others.len() >= 3, "{dirs:?} {others:?}");
    let walked = scrape(&d);
    let delta = |s: &Scrape, op: &str| {
        s.get("scorpio_fuse_requests_total", ("op", op))
            - before.get("scorpio_fuse_requests_total", ("op", op))
    };
    // Directories are opened without the daemon: one OPENDIR answered ENOSYS at most, then none.
    assert!(
        delta(&walked, "opendir") <= 1.0,
        "{}",
        delta(&walked, "opendir")
    );
    assert_eq!(delta(&walked, "releasedir"), 0.0);
    // One listing and one end-of-listing per directory (the root's included).
    let listings = delta(&walked, "readdirplus") + delta(&walked, "readdir");
    assert!(
        listings <= 2.0 * (dirs.len() + 1) as f64,
        "{listings} listing requests for {} directories",
        dirs.len() + 1
    );
    // Subdirectories came with their attributes: the walk looked nothing up.
    assert_eq!(delta(&walked, "lookup"), 0.0);

    // Files came without theirs (no kernel inode per file of a walk): a stat of each is one
    // LOOKUP, and a second stat none.
    for p in &others {
        std::fs::symlink_metadata(p).expect("lstat");
    }
    let statted = scrape(&d);
    assert_eq!(delta(&statted, "lookup"), others.len() as f64, "{others:?}");
    for p in &others {
        std::fs::symlink_metadata(p).expect("lstat");
    }
    assert_eq!(delta(&scrape(&d), "lookup"), others.len() as f64);
}

#[test]
fn a_listing_after_files_were_looked_up_carries_their_attributes() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let lookups = || scrape(&d).get("scorpio_fuse_requests_total", ("op", "lookup"));
    // A reader that looks files up (as `grep -r` or `ls -l` do) ...
    std::fs::symlink_metadata(d.workspace.join(fixture::DEEP_FILE)).expect("lstat");
    // ... gets the files of the next listing with their attributes: no LOOKUP for them.
    let names: Vec<_> = std::fs::read_dir(d.workspace.join(fixture::SPACE_DIR))
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["file name.txt"]);
    let before = lookups();
    let m = std::fs::symlink_metadata(d.workspace.join(fixture::SPACE_FILE)).expect("lstat");
    assert_eq!(m.len(), fixture::SPACE_FILE_CONTENT.len() as u64);
    assert_eq!(
        lookups(),
        before,
        "the listing should have carried the file"
    );
    // Nothing was looked up since: the next listing sends names alone, and a stat asks.
    std::fs::read_dir(d.workspace.join(fixture::UNICODE_DIR))
        .expect("list")
        .for_each(drop);
    let before = lookups();
    std::fs::symlink_metadata(d.workspace.join(fixture::UNICODE_FILE)).expect("lstat");
    assert_eq!(lookups(), before + 1.0);
}
