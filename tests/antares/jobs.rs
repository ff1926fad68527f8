//! Antares: jobs (see tests/antares.rs). Eight CI jobs at once, each in its own mount, see only
//! their own writes, build a C program, and share every fetch of the test server.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::support::antares::{path_of, AntaresServer};
use crate::support::daemon::run_with_timeout;
use crate::support::fixture::{self, Fixture};
use crate::support::mega_server::MegaServer;

/// The C program every job builds.
const MAIN_C: &[u8] =
    b"#include <stdio.h>\n#include \"util.h\"\nint main(void) { printf(\"antares %d\\n\", answer()); return 0; }\n";
const UTIL_H: &[u8] = b"int answer(void);\n";
const UTIL_C: &[u8] = b"#include \"util.h\"\nint answer(void) { return 6 * 7; }\n";

/// The standard fixture plus a small C project in `prog/`.
fn fixture_with_program() -> Fixture {
    let fx = fixture::standard();
    fixture::add_commit(&fx, "prog/main.c", MAIN_C);
    fixture::add_commit(&fx, "prog/util.h", UTIL_H);
    fixture::add_commit(&fx, "prog/util.c", UTIL_C);
    fx
}

/// Reads every file under `root` (symlinks read as links), so every blob gets fetched.
fn read_everything(root: &Path) -> usize {
    let mut n = 0;
    for e in walkdir::WalkDir::new(root).into_iter() {
        let e = e.unwrap_or_else(|err| panic!("walk {}: {err}", root.display()));
        if e.file_type().is_symlink() {
            std::fs::read_link(e.path()).expect("readlink");
            n += 1;
        } else if e.file_type().is_file() {
            std::fs::read(e.path()).unwrap_or_else(|err| panic!("read {:?}: {err}", e.path()));
            n += 1;
        }
    }
    n
}

const FILES_PER_JOB: usize = 1000;
const JOBS: usize = 8;

/// One CI job in its mount: read the repository, write its files, build and run the program.
fn run_job(i: usize, mp: &Path) {
    assert!(read_everything(mp) > 10, "job {i} saw too little");
    let out = mp.join("out");
    std::fs::create_dir(&out).expect("mkdir out");
    for n in 0..FILES_PER_JOB {
        // Same names in every job, different contents: a leak would show.
        std::fs::write(
            out.join(format!("f{n:04}.txt")),
            format!("job {i} file {n}\n"),
        )
        .expect("write");
    }
    std::fs::write(mp.join(format!("mine-{i}.txt")), b"mine").expect("marker");
    let prog = mp.join("prog");
    let cc = run_with_timeout(
        Command::new("cc")
            .args(["-O0", "-o", "hello", "main.c", "util.c"])
            .current_dir(&prog),
        120,
    );
    assert!(
        cc.status.success(),
        "job {i}: cc failed: {}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let run = run_with_timeout(&mut Command::new(prog.join("hello")), 30);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "antares 42\n",
        "job {i}"
    );
}

#[test]
fn eight_jobs_at_once_see_only_their_own_writes_and_share_every_fetch() {
    let fx = fixture_with_program();
    let server = MegaServer::start(&fx.repo_path);
    let s = AntaresServer::start(&server.url(), "max_mounts = 16");
    let mounts: Vec<Value> = (0..JOBS)
        .map(|i| {
            s.create(
                json!({"job_id": format!("job-{i}"), "path": "/", "labels": {"n": i.to_string()}}),
            )
        })
        .collect();
    let mps: Vec<PathBuf> = mounts.iter().map(|m| path_of(m, "mountpoint")).collect();
    assert_eq!(
        mps.iter().collect::<BTreeSet<_>>().len(),
        JOBS,
        "distinct mountpoints"
    );
    std::thread::scope(|sc| {
        for (i, mp) in mps.iter().enumerate() {
            sc.spawn(move || run_job(i, mp));
        }
    });
    // Every job sees its own writes and nobody else's.
    for (i, mp) in mps.iter().enumerate() {
        let names: BTreeSet<String> = std::fs::read_dir(mp.join("out"))
            .expect("list out")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), FILES_PER_JOB, "job {i}");
        for n in (0..FILES_PER_JOB).step_by(37) {
            assert_eq!(
                std::fs::read_to_string(mp.join("out").join(format!("f{n:04}.txt"))).expect("read"),
                format!("job {i} file {n}\n")
            );
        }
        for j in 0..JOBS {
            assert_eq!(
                mp.join(format!("mine-{j}.txt")).exists(),
                i == j,
                "job {i} and the marker of job {j}"
            );
        }
        // The job's upper layer holds its files; the repository's files stay in the lower one.
        let upper = path_of(&mounts[i], "upper_dir");
        assert_eq!(
            std::fs::read_dir(upper.join("out"))
                .expect("upper out")
                .count(),
            FILES_PER_JOB
        );
        assert!(!upper.join("big").exists(), "a read copied nothing up");
        let (st, ch) = s.get(&format!(
            "/mounts/{}/changes",
            mounts[i]["mount_id"].as_str().unwrap()
        ));
        assert_eq!(st, 200, "{ch}");
        let added = ch["changes"].as_array().expect("changes").len();
        assert!(added > FILES_PER_JOB, "job {i}: {added} changes");
    }
    // One shared store: each blob came from the server at most once, over all jobs.
    let counts = server.counts();
    let mut per_blob: BTreeMap<&str, usize> = BTreeMap::new();
    for oid in &counts.blob_get {
        *per_blob.entry(oid.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = per_blob.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "fetched more than once: {twice:?}");
    let head = fixture::head(&fx);
    for p in [
        "prog/main.c",
        "prog/util.c",
        fixture::BIG_FILE,
        fixture::README,
    ] {
        let oid = fixture::entry_oid(&fx, &head, p).expect("oid");
        assert_eq!(per_blob.get(oid.as_str()), Some(&1), "{p} fetched once");
    }
    for m in &mounts {
        let (st, v) = s.delete(&format!("/mounts/{}", m["mount_id"].as_str().unwrap()));
        assert_eq!(st, 200, "{v}");
    }
    assert!(s.fuse_mounts().is_empty(), "{:?}", s.fuse_mounts());
}
