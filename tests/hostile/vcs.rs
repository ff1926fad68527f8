//! Hostile cases: vcs (see tests/hostile.rs).
//!
//! Version control against a build that keeps writing (status, diff and commit while eight
//! writers churn), names that are not UTF-8, a commit that runs out of disk, and a file of
//! 300 MB diffed and committed in bounded memory.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::api::{cli, commit, json_or_text, mount};
use crate::support::daemon::{run_with_timeout, Daemon, DaemonOpts};
use crate::support::fixture;
use crate::support::host::Tmpfs;
use crate::support::http;

/// Standard base64 decoding (the API's `path_b64`).
fn b64_decode(text: &str) -> Vec<u8> {
    const DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        let d = DIGITS
            .iter()
            .position(|x| *x == c)
            .unwrap_or_else(|| panic!("{text:?} is not base64"));
        bits = (bits << 6) | d as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// The staging repository, where commits are written.
fn staging(d: &Daemon) -> git2::Repository {
    git2::Repository::open_bare(d.store.join("git")).expect("open the staging repository")
}

/// Every entry but trees under `tree` (recursively), by path bytes; trees the staging
/// repository does not hold (the mounted commit's) are not entered.
fn blobs(
    repo: &git2::Repository,
    tree: git2::Oid,
    prefix: &[u8],
    out: &mut Vec<(Vec<u8>, git2::Oid)>,
) {
    let Ok(tree) = repo.find_tree(tree) else {
        return;
    };
    for e in tree.iter() {
        let mut path = prefix.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(e.name_bytes());
        match e.kind() {
            Some(git2::ObjectType::Tree) => blobs(repo, e.id(), &path, out),
            _ => out.push((path, e.id())),
        }
    }
}

/// The id of entry `name` of `tree`.
fn subtree(repo: &git2::Repository, tree: git2::Oid, name: &str) -> Option<git2::Oid> {
    let t = repo.find_tree(tree).expect("tree");
    let id = t.get_name(name).map(|e| e.id());
    id
}

const WRITERS: usize = 8;
const FILES: u64 = 6;
/// Every version is this long, so a torn read cannot be told by its size.
const SIZE: usize = 64 << 10;

/// Version `n` of `path` by writer `w`: recognisable all through, so a mix of two versions
/// is neither.
fn version(w: usize, n: u64, path: &str) -> Vec<u8> {
    let line = format!("writer {w} iteration {n} of {path}\n");
    let mut v = line.repeat(SIZE / line.len() + 1).into_bytes();
    v.truncate(SIZE);
    v
}

/// Every content ever written to each workspace path.
type Written = Arc<Mutex<HashMap<String, Vec<Vec<u8>>>>>;

/// Whether `content` is a state a file written only with `versions` can have: a version, or
/// the part of one written so far (a file that is truncated and written holds a prefix of
/// its new content). A mix of two versions (a torn read) is none of these.
fn had(versions: Option<&Vec<Vec<u8>>>, content: &[u8]) -> bool {
    content.is_empty() || versions.is_some_and(|vs| vs.iter().any(|v| v.starts_with(content)))
}

fn writer(ws: PathBuf, w: usize, stop: Arc<AtomicBool>, written: Written) -> u64 {
    use std::io::Write;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (w as u64 + 1);
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let dir = format!("churn/w{w}");
    std::fs::create_dir_all(ws.join(&dir)).expect("writer directory");
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let i = next() % FILES;
        let (op, file, sub) = (next() % 10, format!("{dir}/f{i}"), format!("{dir}/d{i}"));
        let write = |rel: &str, in_place: bool| {
            let v = version(w, n, rel);
            // Recorded before it is written: the file may hold it from the first byte on.
            written
                .lock()
                .expect("lock")
                .entry(rel.to_string())
                .or_default()
                .push(v.clone());
            let path = ws.join(rel);
            let r = if in_place {
                // Over the old version in one write, as a database rewrites a page: a reader
                // racing it can get the old head with the new tail.
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .and_then(|mut f| f.write_all(&v))
            } else {
                std::fs::write(&path, &v)
            };
            r.unwrap_or_else(|e| panic!("write {rel}: {e}"));
        };
        match op {
            0..=2 => write(&file, false),
            3..=5 => write(&file, true),
            6 => {
                let _ = std::fs::remove_file(ws.join(&file));
            }
            7 => {
                let _ = std::fs::create_dir(ws.join(&sub));
                write(&format!("{sub}/g"), next() % 2 == 0);
            }
            _ => {
                let _ = std::fs::remove_dir_all(ws.join(&sub));
            }
        }
    }
    n
}

/// A build keeps writing while the user asks for status, diff and commits: none of them fails
/// with a 5xx, a commit is made or refused with a 409 and a code, and every file in every
/// commit holds a content it really had (never a mix of two versions, never a torn read).
#[test]
fn status_diff_and_commit_while_eight_writers_churn() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    let stop = Arc::new(AtomicBool::new(false));
    let written: Written = Arc::default();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (ws, stop, written) = (d.workspace.clone(), stop.clone(), written.clone());
            std::thread::spawn(move || writer(ws, w, stop, written))
        })
        .collect();
    // The churn is under way before the first request.
    while written.lock().expect("lock").len() < WRITERS {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut trees = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    let ok_or_409 = |what: &str, code: u16, body: &str, codes: &[&str]| {
        let v = json_or_text(body);
        let fine =
            code == 200 || (code == 409 && codes.contains(&v["code"].as_str().unwrap_or("")));
        assert!(fine, "{what} answered {code}: {body}\n{}", d.log());
        v
    };
    for round in 0..25 {
        let (code, body) = http::get(&d.http_addr, "/api/git/status");
        ok_or_409("status", code, &body, &["CHANGED_DURING_READ"]);
        let (code, body) = http::get(&d.http_addr, "/api/git/diff");
        ok_or_409("diff", code, &body, &["CHANGED_DURING_READ"]);
        let (code, v) = commit(&d, &format!("churn {round}"));
        ok_or_409(
            "commit",
            code,
            &v.to_string(),
            &["CHANGED_DURING_COMMIT", "NOTHING_TO_COMMIT"],
        );
        if code == 200 {
            trees.push(v["tree"].as_str().expect("tree").to_string());
        } else {
            refused.push(v["code"].as_str().unwrap_or("?").to_string());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let ops: u64 = writers.into_iter().map(|t| t.join().expect("writer")).sum();
    assert!(
        !trees.is_empty(),
        "no commit succeeded while the writers ran (refused: {refused:?})"
    );
    // Once the writers stopped, a commit holds exactly what the files hold.
    let (code, v) = commit(&d, "after the churn");
    assert!(
        code == 200 || v["code"] == "NOTHING_TO_COMMIT",
        "{code} {v}\n{}",
        d.log()
    );
    let (code, body) = http::get(&d.http_addr, "/api/git/status");
    assert_eq!(code, 200, "{body}");
    let head = json_or_text(&body)["head"]
        .as_str()
        .expect("head")
        .to_string();
    let repo = staging(&d);
    let head_tree = repo
        .find_commit(git2::Oid::from_str(&head).expect("oid"))
        .expect("head commit")
        .tree_id();
    let mut last = Vec::new();
    if let Some(churn) = subtree(&repo, head_tree, "churn") {
        blobs(&repo, churn, b"churn", &mut last);
    }
    let mut on_disk = Vec::new();
    for e in walkdir::WalkDir::new(d.workspace.join("churn")).sort_by_file_name() {
        let e = e.expect("walk the workspace");
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(&d.workspace).expect("inside");
            on_disk.push((
                rel.as_os_str().as_bytes().to_vec(),
                std::fs::read(e.path()).expect("read"),
            ));
        }
    }
    let committed: Vec<(Vec<u8>, Vec<u8>)> = last
        .iter()
        .map(|(p, id)| {
            (
                p.clone(),
                repo.find_blob(*id).expect("blob").content().to_vec(),
            )
        })
        .collect();
    let mut committed_sorted = committed.clone();
    committed_sorted.sort();
    on_disk.sort();
    assert!(
        committed_sorted == on_disk,
        "the last commit differs from the files ({} vs {} files)",
        committed_sorted.len(),
        on_disk.len()
    );
    // Every blob of every commit made during the churn is a version its file had.
    let written = written.lock().expect("lock");
    let mut checked = 0;
    for t in &trees {
        let t = git2::Oid::from_str(t).expect("tree id");
        let Some(churn) = subtree(&repo, t, "churn") else {
            continue;
        };
        let mut found = Vec::new();
        blobs(&repo, churn, b"churn", &mut found);
        for (path, id) in found {
            let content = repo.find_blob(id).expect("blob").content().to_vec();
            let path = String::from_utf8(path).expect("writers make UTF-8 names");
            assert!(
                had(written.get(&path), &content),
                "{path} was committed with a content it never had ({} bytes: {:?}...)",
                content.len(),
                String::from_utf8_lossy(&content[..content.len().min(80)])
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no commit held a writer's file");
    eprintln!(
        "{ops} writer operations; {} commits made, refused: {refused:?}; {checked} blobs checked",
        trees.len()
    );
}

/// A name that is not UTF-8 (`caf\xe9.txt`, and a directory `d\xff`) in a writable path:
/// status, diff and commit work, the JSON gives the exact bytes back, the CLI quotes the name
/// as git does, and the committed tree holds the exact name.
#[test]
fn names_that_are_not_utf8_work_in_status_diff_and_commit() {
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    mount(&d, "/");
    let file = b"caf\xe9.txt";
    std::fs::write(d.workspace.join(OsStr::from_bytes(file)), b"latin-1 name\n").expect("create");
    let dir = d.workspace.join(OsStr::from_bytes(b"d\xff"));
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("inner.txt"), b"inside\n").expect("create inside");

    let (code, body) = http::get(&d.http_addr, "/api/git/status");
    assert_eq!(code, 200, "{body}\n{}", d.log());
    let v = json_or_text(&body);
    let paths: Vec<Vec<u8>> = v["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| match c["path_b64"].as_str() {
            Some(b) => b64_decode(b),
            None => c["path"].as_str().expect("path").as_bytes().to_vec(),
        })
        .collect();
    assert!(paths.contains(&file.to_vec()), "{body}");
    assert!(paths.contains(&b"d\xff/inner.txt".to_vec()), "{body}");
    let readme = v["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["path"] == "README.md");
    assert!(readme.is_none(), "unchanged files are not listed: {body}");

    let (code, text) = http::get(&d.http_addr, "/api/git/diff");
    assert_eq!(code, 200, "{text}\n{}", d.log());
    assert!(
        text.contains("diff --git \"a/caf\\351.txt\" \"b/caf\\351.txt\"")
            && text.contains("+++ \"b/caf\\351.txt\"")
            && text.contains("+latin-1 name"),
        "{text}"
    );
    let out = cli(&d, &["status"]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.lines().any(|l| l == "A \"caf\\351.txt\"")
            && s.lines().any(|l| l == "A \"d\\377/inner.txt\""),
        "{s}"
    );

    let (code, v) = commit(&d, "names");
    assert_eq!(code, 200, "{v}\n{}", d.log());
    let repo = staging(&d);
    let tree = git2::Oid::from_str(v["tree"].as_str().expect("tree")).expect("oid");
    let mut all = Vec::new();
    blobs(&repo, tree, b"", &mut all);
    let content = |name: &[u8]| {
        all.iter()
            .find(|(p, _)| p == name)
            .map(|(_, id)| repo.find_blob(*id).expect("blob").content().to_vec())
    };
    assert_eq!(content(file).as_deref(), Some(&b"latin-1 name\n"[..]));
    assert_eq!(
        content(b"d\xff/inner.txt").as_deref(),
        Some(&b"inside\n"[..])
    );
    // git itself reads the same names back.
    let out = run_with_timeout(
        Command::new("git")
            .arg("--git-dir")
            .arg(d.store.join("git"))
            .args(["ls-tree", "-z", "--name-only", &tree.to_string()]),
        60,
    );
    assert!(
        out.stdout.split(|b| *b == 0).any(|n| n == file),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Every file under `dir` with its size.
fn listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| !e.file_type().is_dir())
        .map(|e| (e.path().to_path_buf(), e.metadata().expect("stat").len()))
        .collect();
    out.sort();
    out
}

/// Writes `filler` until the filesystem is full, then gives `leave` bytes back.
fn fill(filler: &Path, leave: u64) {
    use std::io::Write;
    let mut f = std::fs::File::create(filler).expect("create the filler");
    let chunk = vec![0x5a_u8; 1 << 20];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("fill: {e}"),
        }
    }
    let len = f.metadata().expect("stat").len();
    f.set_len(len.saturating_sub(leave))
        .expect("give space back");
}

/// A commit that runs out of disk midway is refused with 507 `NO_SPACE` and leaves nothing in
/// the staging repository; once space is freed, the same commit is made. So does one whose
/// disk runs out while a file too large for memory is written into its object.
/// Commits and requires 507 `NO_SPACE` with the staging repository's objects exactly `before`.
fn commit_fails_leaving_nothing(
    d: &Daemon,
    message: &str,
    objects: &Path,
    before: &[(PathBuf, u64)],
) {
    let (code, v) = commit(d, message);
    assert_eq!(
        (code, v["code"].as_str()),
        (507, Some("NO_SPACE")),
        "{v}\n{}",
        d.log()
    );
    assert_eq!(
        listing(objects),
        before,
        "the failed commit left files in the staging repository"
    );
}

#[test]
fn a_commit_that_runs_out_of_space_leaves_nothing_behind() {
    let fs = Tmpfs::new("80m");
    let fx = fixture::standard();
    let mut opts = DaemonOpts::new(fx.repo_path.display().to_string());
    opts.store = Some(fs.path().join("store"));
    let d = Daemon::start_or_panic(opts);
    mount(&d, "/");
    // A first commit, so the repository holds objects that must survive the failure.
    std::fs::write(d.workspace.join("small.txt"), b"small\n").expect("write");
    let (code, v) = commit(&d, "small");
    assert_eq!(code, 200, "{v}\n{}", d.log());
    // 12 MB that does not compress, in four files.
    for i in 0..4u64 {
        let data = fixture::xorshift_bytes(1000 + i, 3 << 20);
        std::fs::write(d.workspace.join(format!("large{i}.bin")), data).expect("stage");
    }
    let objects = d.store.join("git/objects");
    let before = listing(&objects);
    let filler = fs.path().join("filler");
    fill(&filler, 5 << 20);
    commit_fails_leaving_nothing(&d, "large", &objects, &before);
    // It failed midway: blobs had been written, and were taken back.
    assert!(
        d.log().contains("its objects were removed"),
        "the commit did not fail midway\n{}",
        d.log()
    );
    std::fs::remove_file(&filler).expect("free the space");
    let (code, v) = commit(&d, "large");
    assert_eq!(code, 200, "{v}\n{}", d.log());
    assert_eq!(v["ahead"], 2, "{v}");

    // A file too large to be read into memory is written into its object as it is read: the
    // disk running out midway leaves no part-written object behind either.
    let data = fixture::xorshift_bytes(4242, 12 << 20);
    std::fs::write(d.workspace.join("huge.bin"), &data).expect("stage");
    let before = listing(&objects);
    fill(&filler, 6 << 20);
    commit_fails_leaving_nothing(&d, "huge", &objects, &before);
    std::fs::remove_file(&filler).expect("free the space");
    let (code, v) = commit(&d, "huge");
    assert_eq!(code, 200, "{v}\n{}", d.log());
    let repo = staging(&d);
    let tree = git2::Oid::from_str(v["tree"].as_str().expect("tree")).expect("oid");
    let id = subtree(&repo, tree, "huge.bin").expect("huge.bin is committed");
    let blob = repo
        .find_blob(id)
        .expect("the blob is in the staging repository");
    assert!(blob.content() == &data[..], "the blob is not the file");
    drop(d);
}

/// The most memory the process `pid` has held (its `VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    kb << 10
}

/// A 300 MB file written through the mount is diffed and committed without being held in
/// memory: the daemon's peak resident size stays far below the file's size, and the blob in the
/// staging repository is exactly the file's (the id git computes of the upper-layer file).
#[test]
fn a_file_of_300_mb_is_diffed_and_committed_without_holding_it_in_memory() {
    use std::io::Write;
    const MB: u64 = 1 << 20;
    const LEN: u64 = 300 * MB;
    /// Far below the file's size, far above what the daemon holds otherwise.
    const BOUND: u64 = 150 * MB;
    let fx = fixture::standard();
    let d = Daemon::local(&fx);
    let pid = d.pid().expect("daemon pid");
    mount(&d, "/");
    let mut block = fixture::xorshift_bytes(77, MB as usize);
    {
        let mut f = std::fs::File::create(d.workspace.join("big.bin")).expect("create");
        for i in 0..LEN / MB {
            // Each block differs from the last, so no part of the file is a copy of another.
            block[0..8].copy_from_slice(&i.to_le_bytes());
            f.write_all(&block).expect("write through the mount");
        }
        f.sync_all().expect("sync");
    }
    let before = peak_rss(pid);

    let (code, text) = http::get(&d.http_addr, "/api/git/diff");
    assert_eq!(code, 200, "{text}\n{}", d.log());
    assert!(
        text.contains("diff --git a/big.bin b/big.bin\nnew file mode 100644\nBinary files /dev/null and b/big.bin differ\n"),
        "{text}"
    );
    let after_diff = peak_rss(pid);
    assert!(
        after_diff < BOUND,
        "diff: peak RSS {} MB (before it {} MB)",
        after_diff / MB,
        before / MB
    );

    let (code, v) = commit(&d, "big");
    assert_eq!(code, 200, "{v}\n{}", d.log());
    let after_commit = peak_rss(pid);
    eprintln!(
        "daemon peak RSS: {} MB before, {} MB after the diff, {} MB after the commit",
        before / MB,
        after_diff / MB,
        after_commit / MB
    );
    assert!(
        after_commit < BOUND,
        "commit: peak RSS {} MB (before it {} MB, after the diff {} MB)",
        after_commit / MB,
        before / MB,
        after_diff / MB
    );

    // The blob committed is the file's: git's id of the upper-layer file, as git reads it.
    let upper = std::fs::read_dir(d.store.join("mounts"))
        .expect("mounts")
        .map(|e| e.expect("entry").path().join("upper/big.bin"))
        .find(|p| p.exists())
        .expect("the upper layer holds big.bin");
    let git = |args: &[&str]| {
        let out = run_with_timeout(Command::new("git").args(args), 120);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let want = git(&["hash-object", &upper.display().to_string()]);
    let git_dir = d.store.join("git").display().to_string();
    let commit_id = v["commit"].as_str().expect("commit");
    let listed = git(&["--git-dir", &git_dir, "ls-tree", commit_id, "big.bin"]);
    assert_eq!(listed, format!("100644 blob {want}\tbig.bin"));
    // The object is whole: git reads it back to the same id and size.
    let size = git(&["--git-dir", &git_dir, "cat-file", "-s", &want]);
    assert_eq!(size, LEN.to_string());
    let out = run_with_timeout(
        Command::new("sh").arg("-c").arg(format!(
            "git --git-dir '{git_dir}' cat-file blob {want} | git hash-object --stdin"
        )),
        120,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        want,
        "the object reads back whole"
    );
    drop(d);
}
