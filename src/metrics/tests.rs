use std::time::Duration;

use super::text::{parse, prometheus, summary};
use super::*;

fn value(samples: &[text::Sample], name: &str, label: (&str, &str)) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && s.label(label.0) == Some(label.1))
        .map(|s| s.value)
}

#[test]
fn counts_show_up_in_both_text_formats() {
    let m = Metrics::new();
    m.fuse_request("read", Duration::from_micros(70), false);
    m.fuse_request("read", Duration::from_micros(90), false);
    m.fuse_request("lookup", Duration::from_micros(10), true);
    m.remote_request("blob", Duration::from_millis(3), 1234, false);
    m.remote_request("tree", Duration::from_millis(3), 0, true);
    m.remote_retry("tree");
    m.cache_hit(Cache::Disk);
    m.cache_miss(Cache::Memory);
    m.cache_evicted(Cache::Disk, 2);
    m.set_inode_entries(42);
    m.set_upper_bytes("workspace", 10);
    m.set_antares_mounts("mounted", 3);
    let om = m.encode();
    assert!(om.ends_with("# EOF\n"), "{om}");
    for text in [om.clone(), prometheus(&om)] {
        let s = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let v = |name: &str, l: (&str, &str)| value(&s, name, l);
        assert_eq!(v("scorpio_fuse_requests_total", ("op", "read")), Some(2.0));
        assert_eq!(v("scorpio_fuse_errors_total", ("op", "lookup")), Some(1.0));
        assert_eq!(
            v("scorpio_fuse_request_seconds_count", ("op", "read")),
            Some(2.0)
        );
        assert_eq!(
            v("scorpio_remote_bytes_total", ("kind", "blob")),
            Some(1234.0)
        );
        assert_eq!(
            v("scorpio_remote_errors_total", ("kind", "tree")),
            Some(1.0)
        );
        assert_eq!(
            v("scorpio_remote_retries_total", ("kind", "tree")),
            Some(1.0)
        );
        assert_eq!(v("scorpio_cache_hits_total", ("cache", "disk")), Some(1.0));
        assert_eq!(
            v("scorpio_cache_misses_total", ("cache", "memory")),
            Some(1.0)
        );
        assert_eq!(
            v("scorpio_cache_evictions_total", ("cache", "disk")),
            Some(2.0)
        );
        assert_eq!(v("scorpio_upper_bytes", ("owner", "workspace")), Some(10.0));
        assert_eq!(v("scorpio_antares_mounts", ("state", "mounted")), Some(3.0));
        assert!(s
            .iter()
            .any(|x| x.name == "scorpio_inode_entries" && x.value == 42.0));
        // A 70 µs read is under the 200 µs bucket, not under the 50 µs one.
        let le = |b: &str| {
            s.iter()
                .find(|x| {
                    x.name == "scorpio_fuse_request_seconds_bucket"
                        && x.label("op") == Some("read")
                        && x.label("le").is_some_and(|l| l.starts_with(b))
                })
                .map(|x| x.value)
        };
        assert_eq!(le("0.00005"), Some(0.0));
        assert_eq!(le("0.0002"), Some(2.0));
    }
}

#[test]
fn the_prometheus_text_names_counters_like_their_samples_and_has_no_eof() {
    let m = Metrics::new();
    m.cache_hit(Cache::Memory);
    m.fuse_request("getattr", Duration::from_micros(1), false);
    let p = prometheus(&m.encode());
    assert!(
        p.contains("# TYPE scorpio_cache_hits_total counter\n"),
        "{p}"
    );
    assert!(p.contains("# HELP scorpio_cache_hits_total "), "{p}");
    assert!(
        p.contains("# TYPE scorpio_fuse_request_seconds histogram\n"),
        "{p}"
    );
    assert!(p.contains("# TYPE scorpio_inode_entries gauge\n"));
    assert!(!p.contains("# EOF"));
    // Counted nowhere yet, and there at zero all the same.
    assert!(
        p.contains("scorpio_cache_misses_total{cache=\"disk\"} 0\n"),
        "{p}"
    );
    assert!(
        p.contains("scorpio_remote_requests_total{kind=\"blob\"} 0\n"),
        "{p}"
    );
    // The counter's samples carry the name its TYPE line gives.
    assert!(
        p.contains("scorpio_cache_hits_total{cache=\"memory\"} 1\n"),
        "{p}"
    );
}

#[test]
fn the_parser_refuses_what_is_not_a_sample() {
    assert!(parse("# HELP x y\n\nx 1\ny{a=\"b\",c=\"d\\\"e\"} 2 1700000000\n").is_ok());
    for bad in [
        "x",
        "x y",
        "1x 2",
        "x{a=b} 1",
        "x{a=\"b} 1",
        "x 1 2 3",
        "x{=\"b\"} 1",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} parsed");
    }
    let s = parse("x{a=\"q\\\"uote\",b=\"\"} +Inf\n").unwrap();
    assert_eq!(s[0].label("a"), Some("q\"uote"));
    assert_eq!(s[0].label("b"), Some(""));
    assert!(s[0].value.is_infinite());
}

#[test]
fn the_summary_says_requests_bytes_ratio_inodes_and_upper_size() {
    let m = Metrics::new();
    for _ in 0..3 {
        m.fuse_request("read", Duration::from_micros(5), false);
    }
    m.remote_request("blob", Duration::from_millis(1), 2048, false);
    m.cache_hit(Cache::Disk);
    m.cache_hit(Cache::Disk);
    m.cache_hit(Cache::Disk);
    m.cache_miss(Cache::Disk);
    m.set_inode_entries(17);
    m.set_upper_bytes("workspace", 3 << 20);
    let s = summary(&prometheus(&m.encode())).unwrap();
    assert!(s.contains("FUSE requests:   3 (0 errors); read 3"), "{s}");
    assert!(
        s.contains("Remote requests: 1 (0 errors, 0 retries), 2.0 KiB received; blob 1"),
        "{s}"
    );
    assert!(
        s.contains("disk 75.0% (3 hits, 1 misses, 0 evicted)"),
        "{s}"
    );
    assert!(s.contains("memory - (0 hits"), "{s}");
    assert!(s.contains("Inode entries:   17"), "{s}");
    assert!(
        s.contains("Upper layers:    3.0 MiB (workspace 3.0 MiB)"),
        "{s}"
    );
    assert!(summary("not metrics at all").is_err());
}

#[test]
fn tree_bytes_adds_files_and_skips_links() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    std::fs::write(dir.path().join("a/one"), vec![0u8; 100]).unwrap();
    std::fs::write(dir.path().join("a/b/two"), vec![0u8; 23]).unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
    assert_eq!(tree_bytes(dir.path()), 123);
    assert_eq!(tree_bytes(&dir.path().join("missing")), 0);
}
