//! The daemon's counters, in one registry, exposed as `GET /metrics` (Prometheus text).
//!
//! One [`Metrics`] per process ([`global`]): requests at the kernel edge (by FUSE opcode), at
//! the remote (by kind: commit, tree, blob, size, pack, cl), the object caches (memory and disk), and
//! gauges set when scraped (inode table entries, upper layer bytes, Antares mounts by state).
//! It is process-wide rather than handed down because its counters are bumped at the bottom of
//! every path (a generic wrapper every FUSE session goes through, the remote every store is
//! built on, the store's caches): passing it down would change the signatures of
//! `remote::from_config`, `Store::open`, `Mounted::mount` and everything between, and one
//! process runs one daemon, whose numbers are what a scrape wants. The registry itself is
//! prometheus-client's explicit one (no hidden global of the crate); tests make their own.
//!
//! This module imports nothing of the crate: every layer may bump a counter.

pub mod text;

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// One label, as every family here has.
type Label = [(&'static str, &'static str); 1];

/// A family of counters by one label.
type Counters = Family<Label, Counter>;

/// A family of latency histograms by one label.
type Latencies = Family<Label, Histogram, fn() -> Histogram>;

/// Every family name starts with this (`scorpio_fuse_requests_total`, ...).
pub const PREFIX: &str = "scorpio";

/// Which object cache an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cache {
    /// The bounded in-memory cache of small objects (`cache.memory_bytes`).
    Memory,
    /// The object directory on disk (`cache.disk_bytes`).
    Disk,
}

impl Cache {
    fn label(self) -> Label {
        [(
            "cache",
            match self {
                Cache::Memory => "memory",
                Cache::Disk => "disk",
            },
        )]
    }
}

/// FUSE request latency buckets: 50 µs (a cached getattr) to ~13 s (a large blob over a slow
/// network), x4 apart.
fn fuse_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 4.0, 10))
}

/// Remote request latency buckets: 1 ms (loopback) to ~65 s (the longest deadline), x4 apart.
fn remote_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 9))
}

/// The families, registered once.
pub struct Metrics {
    registry: Registry,
    fuse_requests: Counters,
    fuse_errors: Counters,
    fuse_seconds: Latencies,
    remote_requests: Counters,
    remote_errors: Counters,
    remote_retries: Counters,
    remote_bytes: Counters,
    remote_seconds: Latencies,
    cache_hits: Counters,
    cache_misses: Counters,
    cache_evictions: Counters,
    inode_entries: Gauge,
    upper_bytes: Family<Label, Gauge>,
    antares_mounts: Family<Label, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every family, all at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        let fuse_requests = Counters::default();
        let fuse_errors = Counters::default();
        let fuse_seconds = Latencies::new_with_constructor(fuse_histogram as fn() -> Histogram);
        let remote_requests = Counters::default();
        let remote_errors = Counters::default();
        let remote_retries = Counters::default();
        let remote_bytes = Counters::default();
        let remote_seconds = Latencies::new_with_constructor(remote_histogram as fn() -> Histogram);
        let cache_hits = Counters::default();
        let cache_misses = Counters::default();
        let cache_evictions = Counters::default();
        let inode_entries = Gauge::default();
        let upper_bytes = Family::<Label, Gauge>::default();
        let antares_mounts = Family::<Label, Gauge>::default();
        let r = &mut registry;
        r.register(
            "fuse_requests",
            "FUSE requests answered, by opcode",
            fuse_requests.clone(),
        );
        r.register(
            "fuse_errors",
            "FUSE requests answered with an error (ENOENT included), by opcode",
            fuse_errors.clone(),
        );
        r.register(
            "fuse_request_seconds",
            "Time to answer a FUSE request, by opcode",
            fuse_seconds.clone(),
        );
        r.register(
            "remote_requests",
            "Requests to the remote, by kind (commit, tree, blob, size, pack, cl), retries inside one counted once",
            remote_requests.clone(),
        );
        r.register(
            "remote_errors",
            "Requests to the remote that failed (after their retries), by kind",
            remote_errors.clone(),
        );
        r.register(
            "remote_retries",
            "Attempts repeated after a 5xx, a timeout or a refused connection, by kind",
            remote_retries.clone(),
        );
        r.register(
            "remote_bytes",
            "Bytes received from the remote: blob contents and tree objects, by kind",
            remote_bytes.clone(),
        );
        r.register(
            "remote_request_seconds",
            "Time of a request to the remote, retries included, by kind",
            remote_seconds.clone(),
        );
        r.register(
            "cache_hits",
            "Objects found in a cache, by cache (memory, disk)",
            cache_hits.clone(),
        );
        r.register(
            "cache_misses",
            "Objects not found in a cache, by cache (memory, disk)",
            cache_misses.clone(),
        );
        r.register(
            "cache_evictions",
            "Objects evicted to keep a cache within its bound, by cache (memory, disk)",
            cache_evictions.clone(),
        );
        r.register(
            "inode_entries",
            "Entries in the persistent inode table (at scrape time)",
            inode_entries.clone(),
        );
        r.register(
            "upper_bytes",
            "Bytes of the files in the upper layers (at scrape time), by owner (workspace, antares)",
            upper_bytes.clone(),
        );
        r.register(
            "antares_mounts",
            "Antares mounts by state (at scrape time)",
            antares_mounts.clone(),
        );
        // The series a dashboard divides by exist from the first scrape, at zero.
        for c in [Cache::Memory, Cache::Disk] {
            for f in [&cache_hits, &cache_misses, &cache_evictions] {
                drop(f.get_or_create(&c.label()));
            }
        }
        for kind in ["commit", "tree", "blob", "size", "pack"] {
            for f in [
                &remote_requests,
                &remote_errors,
                &remote_retries,
                &remote_bytes,
            ] {
                drop(f.get_or_create(&[("kind", kind)]));
            }
        }
        Metrics {
            registry,
            fuse_requests,
            fuse_errors,
            fuse_seconds,
            remote_requests,
            remote_errors,
            remote_retries,
            remote_bytes,
            remote_seconds,
            cache_hits,
            cache_misses,
            cache_evictions,
            inode_entries,
            upper_bytes,
            antares_mounts,
        }
    }

    /// Counts FUSE request `op`, answered after `took`, failed or not.
    pub fn fuse_request(&self, op: &'static str, took: Duration, failed: bool) {
        let l = [("op", op)];
        self.fuse_requests.get_or_create(&l).inc();
        if failed {
            self.fuse_errors.get_or_create(&l).inc();
        }
        self.fuse_seconds
            .get_or_create(&l)
            .observe(took.as_secs_f64());
    }

    /// Counts a request of `kind` to the remote, done after `took`, with `bytes` received, or
    /// failed.
    pub fn remote_request(&self, kind: &'static str, took: Duration, bytes: u64, failed: bool) {
        let l = [("kind", kind)];
        self.remote_requests.get_or_create(&l).inc();
        if failed {
            self.remote_errors.get_or_create(&l).inc();
        }
        self.remote_bytes.get_or_create(&l).inc_by(bytes);
        self.remote_seconds
            .get_or_create(&l)
            .observe(took.as_secs_f64());
    }

    /// Counts one retried attempt of a request of `kind`.
    pub fn remote_retry(&self, kind: &'static str) {
        self.remote_retries.get_or_create(&[("kind", kind)]).inc();
    }

    /// Counts an object found in `cache`.
    pub fn cache_hit(&self, cache: Cache) {
        self.cache_hits.get_or_create(&cache.label()).inc();
    }

    /// Counts an object not found in `cache`.
    pub fn cache_miss(&self, cache: Cache) {
        self.cache_misses.get_or_create(&cache.label()).inc();
    }

    /// Counts `n` objects evicted from `cache`.
    pub fn cache_evicted(&self, cache: Cache, n: u64) {
        self.cache_evictions.get_or_create(&cache.label()).inc_by(n);
    }

    /// Sets the inode table's entry count.
    pub fn set_inode_entries(&self, n: u64) {
        self.inode_entries.set(clamp(n));
    }

    /// Sets the bytes in the upper layers of `owner` (`workspace`, `antares`).
    pub fn set_upper_bytes(&self, owner: &'static str, n: u64) {
        self.upper_bytes
            .get_or_create(&[("owner", owner)])
            .set(clamp(n));
    }

    /// Sets the number of Antares mounts in `state`.
    pub fn set_antares_mounts(&self, state: &'static str, n: u64) {
        self.antares_mounts
            .get_or_create(&[("state", state)])
            .set(clamp(n));
    }

    /// Every family in the OpenMetrics text format (see [`text::prometheus`] for the classic
    /// Prometheus one).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an encoder error would leave a partial body, which
        // a scraper rejects as a whole.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            out = format!("# encoding the metrics failed: {e}\n# EOF\n");
        }
        out
    }
}

/// A gauge holds an i64; no count here comes near it.
fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Bytes of the regular files under `dir` (apparent sizes; symlinks not followed, unreadable
/// directories skipped): an upper layer's size, computed when scraped.
pub fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                total = total.saturating_add(meta.len());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests;
