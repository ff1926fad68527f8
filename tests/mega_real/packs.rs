//! A stat, then a read, of every file of a `/third-party` repository on the real `mono`: once
//! enough files are wanted, the repository's upload-pack brings them all in one request, and
//! the reads that follow ask nothing. Counted at the daemon (`/metrics`) and at the server
//! (its log of git routes).

use crate::support::daemon::{Daemon, DaemonOpts};
use crate::support::fixture::{self, Worktree};
use crate::support::http;
use crate::support::mono::Mono;

const FILES: usize = 150;
const PER_DIR: usize = 50;

fn path_of(i: usize) -> String {
    format!("d{}/f{i:03}.c", i / PER_DIR)
}

fn content_of(i: usize) -> Vec<u8> {
    let shared: String = (0..40).map(|l| format!("int line_{l} = {l};\n")).collect();
    format!("{shared}/* file {i} */\n").into_bytes()
}

/// `scorpio_remote_requests_total` of `kind`, from the daemon's `/metrics`.
fn requests(d: &Daemon, kind: &str) -> u64 {
    let r = http::send(&d.http_addr, "GET", "/metrics", &[], Vec::new()).expect("GET /metrics");
    let want = format!("scorpio_remote_requests_total{{kind=\"{kind}\"}} ");
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix(&want))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// How many `git-upload-pack` requests the server logged.
fn upload_packs(mono: &Mono) -> usize {
    mono.log()
        .lines()
        .filter(|l| {
            l.contains("http.request{") && l.contains("git-upload-pack") && l.contains("POST")
        })
        .map(|l| {
            l.split("trace_id=")
                .nth(1)
                .unwrap_or(l)
                .split([' ', '}'])
                .next()
                .unwrap_or("")
        })
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

#[test]
fn a_stat_and_a_read_of_every_file_of_a_third_party_repository_cost_one_pack() {
    let Some(mono) = Mono::start() else { return };
    let fx = fixture::standard();
    let wt = Worktree::clone_of(&fx);
    std::fs::remove_dir_all(wt.path().join("a")).ok();
    for i in 0..FILES {
        let p = wt.path().join(path_of(i));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content_of(i)).expect("write");
    }
    wt.commit_all("many files");
    wt.git(&["push", "-q", "origin", "HEAD:refs/heads/main"]);
    mono.push_ok(
        &fx.repo_path,
        "/third-party/packed",
        "refs/heads/main:refs/heads/main",
    );

    let d = Daemon::start_or_panic(DaemonOpts::new(mono.url.clone()));
    let top = d.workspace.join("third-party/packed");
    for k in 0..FILES / PER_DIR {
        assert_eq!(
            std::fs::read_dir(top.join(format!("d{k}")))
                .expect("list")
                .count(),
            PER_DIR
        );
    }
    let packs_before = upload_packs(&mono);
    let (sizes, blobs) = (requests(&d, "size"), requests(&d, "blob"));
    for i in 0..FILES {
        let meta = std::fs::metadata(top.join(path_of(i))).expect("stat");
        assert_eq!(meta.len(), content_of(i).len() as u64, "{i}");
    }
    assert_eq!(requests(&d, "pack"), 1, "{}", d.log());
    assert_eq!(upload_packs(&mono) - packs_before, 1, "{}", mono.log());
    let singles = requests(&d, "size") - sizes + requests(&d, "blob") - blobs;
    assert!(
        singles < (FILES / 2) as u64,
        "{singles} single requests for {FILES} files"
    );
    let blobs = requests(&d, "blob");
    for i in 0..FILES {
        assert_eq!(
            std::fs::read(top.join(path_of(i))).expect("read"),
            content_of(i),
            "{i}"
        );
    }
    assert_eq!(
        requests(&d, "blob"),
        blobs,
        "a read after the pack fetched a blob"
    );
    assert_eq!(requests(&d, "pack"), 1);
}
