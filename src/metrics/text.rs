//! The text formats of `GET /metrics`, read back: the classic Prometheus text (0.0.4) made from
//! the OpenMetrics text prometheus-client writes, a parser of either, and the short summary
//! `scorpio stats` prints.

use std::collections::BTreeMap;

/// Content type of the classic Prometheus text format, served unless a scraper asks for
/// OpenMetrics.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Content type of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics (as Prometheus does when it can read it).
pub fn wants_openmetrics(accept: &str) -> bool {
    accept.contains("application/openmetrics-text")
}

/// The classic Prometheus text of an OpenMetrics exposition: the same samples, with a counter's
/// `# HELP`/`# TYPE` named like its samples (`x_total`, which OpenMetrics names `x`, and a 0.0.4
/// parser would then see as a different, untyped metric) and no `# EOF`.
pub fn prometheus(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// One sample line: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric name (with its `_total`, `_bucket`, ... suffix).
    pub name: String,
    /// Its labels, in order.
    pub labels: Labels,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a text exposition (Prometheus or OpenMetrics): every line is empty, a `#` comment or
/// a sample `name{labels} value [timestamp]`; anything else is an error naming the line.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(sample(line).map_err(|why| format!("line {}: {why}: {line:?}", n + 1))?);
    }
    Ok(out)
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !is_name(name) {
        return Err("bad metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = label_set(inner)?;
        labels = parsed;
        rest = after;
    }
    let mut fields = rest.split_whitespace();
    let value = match fields.next().ok_or("no value")? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse::<f64>().map_err(|_| "value is not a number")?,
    };
    if let Some(ts) = fields.next() {
        ts.parse::<f64>().map_err(|_| "timestamp is not a number")?;
    }
    if fields.next().is_some() {
        return Err("text after the value".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// A sample's labels, in order.
type Labels = Vec<(String, String)>;

/// The labels after a `{`, and what follows the closing `}`.
fn label_set(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("label without '='")?;
        let key = &s[..eq];
        if !is_name(key) {
            return Err("bad label name".into());
        }
        let mut chars = s[eq + 1..].char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err("label value not quoted".into());
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    _ => return Err("bad escape in a label value".into()),
                },
                '"' => {
                    end = Some(eq + 1 + i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.ok_or("label value not closed")?;
        labels.push((key.to_string(), value));
        s = &s[end..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

/// The sum of the samples named `name`, by the value of label `key`.
fn by_label(samples: &[Sample], name: &str, key: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == name) {
        let k = s.label(key).unwrap_or("").to_string();
        *out.entry(k).or_insert(0.0) += s.value;
    }
    out
}

fn total(m: &BTreeMap<String, f64>) -> f64 {
    m.values().fold(0.0, |a, b| a + b)
}

/// `1.5 MiB`.
fn bytes(n: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", units[0])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// `read 10, lookup 4`: the largest first, at most `max`.
fn top(m: &BTreeMap<String, f64>, max: usize) -> String {
    let mut v: Vec<(&String, &f64)> = m.iter().filter(|(_, n)| **n > 0.0).collect();
    v.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .take(max)
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The short human summary of a scrape that `scorpio stats` prints.
pub fn summary(text: &str) -> Result<String, String> {
    let s = parse(text)?;
    let name = |n: &str| format!("{}_{n}", super::PREFIX);
    let fuse = by_label(&s, &name("fuse_requests_total"), "op");
    let fuse_err = by_label(&s, &name("fuse_errors_total"), "op");
    let remote = by_label(&s, &name("remote_requests_total"), "kind");
    let remote_err = by_label(&s, &name("remote_errors_total"), "kind");
    let retries = by_label(&s, &name("remote_retries_total"), "kind");
    let received = by_label(&s, &name("remote_bytes_total"), "kind");
    let hits = by_label(&s, &name("cache_hits_total"), "cache");
    let misses = by_label(&s, &name("cache_misses_total"), "cache");
    let evictions = by_label(&s, &name("cache_evictions_total"), "cache");
    let inodes = total(&by_label(&s, &name("inode_entries"), ""));
    let upper = by_label(&s, &name("upper_bytes"), "owner");
    let antares = by_label(&s, &name("antares_mounts"), "state");
    let mut lines = vec![
        format!(
            "FUSE requests:   {} ({} errors){}",
            total(&fuse),
            total(&fuse_err),
            match top(&fuse, 5).as_str() {
                "" => String::new(),
                t => format!("; {t}"),
            }
        ),
        format!(
            "Remote requests: {} ({} errors, {} retries), {} received{}",
            total(&remote),
            total(&remote_err),
            total(&retries),
            bytes(total(&received)),
            match top(&remote, 5).as_str() {
                "" => String::new(),
                t => format!("; {t}"),
            }
        ),
    ];
    let ratio = ["memory", "disk"]
        .iter()
        .map(|c| {
            let h = hits.get(*c).copied().unwrap_or(0.0);
            let m = misses.get(*c).copied().unwrap_or(0.0);
            let e = evictions.get(*c).copied().unwrap_or(0.0);
            let pct = if h + m > 0.0 {
                format!("{:.1}%", 100.0 * h / (h + m))
            } else {
                "-".to_string()
            };
            format!("{c} {pct} ({h} hits, {m} misses, {e} evicted)")
        })
        .collect::<Vec<_>>()
        .join("; ");
    lines.push(format!("Cache hit ratio: {ratio}"));
    lines.push(format!("Inode entries:   {inodes}"));
    lines.push(format!(
        "Upper layers:    {}{}",
        bytes(total(&upper)),
        if upper.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                upper
                    .iter()
                    .map(|(k, v)| format!("{k} {}", bytes(*v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ));
    if total(&antares) > 0.0 {
        lines.push(format!("Antares mounts:  {}", top(&antares, 4)));
    }
    Ok(lines.join("\n"))
}
