//! Antares end to end: the real `scorpio antares serve` (and the daemon's `/antares` routes)
//! against the Mega-API test server, with real FUSE mounts. Every test has its own temporary
//! directories; the harness stops the server and lazily unmounts anything left under them.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::antares::{fuse_mounts_under, live_fuse, path_of, AntaresServer};
use support::api::cli;
use support::daemon::{lazy_unmount, run_with_timeout, scorpio_command, Daemon};
use support::fixture::{self, Fixture};
use support::host::Tmpfs;
use support::http;
use support::mega_server::MegaServer;
use support::mountinfo::mountinfo;

/// Everything under `dirs` with sizes, and the bytes of `file`: what "nothing changed" means.
fn snapshot(dirs: &[PathBuf], file: &Path) -> Vec<(PathBuf, u64, Vec<u8>)> {
    let mut out = Vec::new();
    for d in dirs {
        for e in walkdir::WalkDir::new(d)
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
        {
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((e.path().to_path_buf(), len, Vec::new()));
        }
    }
    out.push((
        file.to_path_buf(),
        0,
        std::fs::read(file).unwrap_or_default(),
    ));
    out
}

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

#[test]
fn the_same_job_gets_the_same_mount_and_conflicts_are_refused() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let repo = fx.open();
    let blob = repo
        .blob(b"from the change list\n")
        .expect("blob")
        .to_string();
    server.set_cl(
        "42",
        json!([{"path": "/a/b/c.txt", "sha": blob, "action": "modified"}]),
    );
    let s = AntaresServer::start(&server.url(), "");
    let first = s.create(json!({"job_id": "ci-1", "path": "a", "cl": "42"}));
    let mp = path_of(&first, "mountpoint");
    assert_eq!(
        std::fs::read(mp.join("b/c.txt")).expect("read the CL's file"),
        b"from the change list\n"
    );
    // The same request again: the same mount, 200 instead of 201.
    let (st, again) = s.post(&json!({"job_id": "ci-1", "path": "/a/", "cl": "42"}));
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["mount_id"], first["mount_id"]);
    assert_eq!(again["mountpoint"], first["mountpoint"]);
    assert_eq!(s.get("/mounts").1["mounts"].as_array().unwrap().len(), 1);
    // The same job asking for something else.
    for body in [
        json!({"job_id": "ci-1", "path": "src", "cl": "42"}),
        json!({"job_id": "ci-1", "path": "a"}),
        json!({"job_id": "ci-1", "path": "a", "cl": "43"}),
    ] {
        let (st, v) = s.post(&body);
        assert_eq!(st, 409, "{body}: {v}");
        assert_eq!(v["code"], "JOB_CONFLICT");
    }
    let (st, by_job) = s.get("/mounts/by-job/ci-1");
    assert_eq!(st, 200);
    assert_eq!(by_job["mount_id"], first["mount_id"]);
    // Unknown ids and jobs.
    for (method, path) in [
        ("GET", "/mounts/00000000-0000-4000-8000-000000000000"),
        ("DELETE", "/mounts/00000000-0000-4000-8000-000000000000"),
        ("GET", "/mounts/nope/changes"),
        ("GET", "/mounts/by-job/nobody"),
        ("DELETE", "/mounts/by-job/nobody"),
    ] {
        let (st, v) = s.call(method, path, None);
        assert_eq!(st, 404, "{method} {path}: {v}");
        assert_eq!(v["code"], "NOT_FOUND");
    }
    // An unknown CL is refused.
    let (st, v) = s.post(&json!({"job_id": "ci-2", "path": "a", "cl": "no-such"}));
    assert_eq!(st, 400, "{v}");
    // Delete by job; then the job is unknown and may start afresh.
    let (st, v) = s.delete("/mounts/by-job/ci-1");
    assert_eq!(st, 200, "{v}");
    assert_eq!(s.get("/mounts/by-job/ci-1").0, 404);
    let fresh = s.create(json!({"job_id": "ci-1", "path": "src"}));
    assert_ne!(fresh["mount_id"], first["mount_id"]);
}

#[test]
fn limits_and_bad_paths_are_refused_and_change_nothing_on_disk() {
    let fx = fixture::standard();
    let s = AntaresServer::start(&fx.repo_path.display().to_string(), "max_mounts = 2");
    // The root itself is not inside the root (later it would also hold another mount).
    let (st, v) = s.post(&json!({"path": "a", "mountpoint": s.mount_root().display().to_string()}));
    assert_eq!((st, v["code"].as_str()), (400, Some("OUTSIDE_ROOT")), "{v}");
    let first = s.create(json!({"job_id": "one", "path": "a"}));
    let first_mp = path_of(&first, "mountpoint");
    let first_upper = path_of(&first, "upper_dir");
    let mroot = s.mount_root();
    let uroot = s.upper_root();
    // Things on disk the refusals will meet.
    let full = mroot.join("full");
    std::fs::create_dir(&full).expect("mkdir");
    std::fs::write(full.join("x"), b"x").expect("write");
    std::fs::write(mroot.join("a-file"), b"x").expect("write");
    let outside = tempfile::tempdir().expect("outside dir");
    let outside_path = outside.path().canonicalize().expect("canonical");
    std::os::unix::fs::symlink(&outside_path, mroot.join("escape")).expect("symlink");
    let _tmpfs = Tmpfs::at(&mroot.join("foreign"));
    let state = s.root.join("store/antares/state.json");
    let before = snapshot(
        &[
            mroot.clone(),
            uroot.clone(),
            s.root.join("cl"),
            outside_path.clone(),
        ],
        &state,
    );
    let m = |p: &str| mroot.join(p).display().to_string();
    let u = |p: &str| uroot.join(p).display().to_string();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"path": "a/../src"}), 400, "BAD_PATH"),
        (json!({"path": "no/such/dir"}), 400, "NOT_IN_REPOSITORY"),
        (json!({"path": fixture::DEEP_FILE}), 400, "NOT_A_DIRECTORY"),
        (
            json!({"path": "a", "mountpoint": "relative/x"}),
            400,
            "BAD_PATH",
        ),
        (
            json!({"path": "a", "mountpoint": m("x/../y")}),
            400,
            "BAD_PATH",
        ),
        (
            json!({"path": "a", "mountpoint": format!("{}/..", mroot.display())}),
            400,
            "BAD_PATH",
        ),
        (
            json!({"path": "a", "mountpoint": outside_path.join("m").display().to_string()}),
            400,
            "OUTSIDE_ROOT",
        ),
        (
            json!({"path": "a", "mountpoint": m("escape/m")}),
            400,
            "OUTSIDE_ROOT",
        ),
        (
            json!({"path": "a", "upper_dir": outside_path.join("u").display().to_string()}),
            400,
            "OUTSIDE_ROOT",
        ),
        (
            json!({"path": "a", "upper_dir": u("x/../../y")}),
            400,
            "BAD_PATH",
        ),
        (
            json!({"path": "a", "upper_dir": m("u")}),
            400,
            "OUTSIDE_ROOT",
        ),
        (
            json!({"path": "a", "mountpoint": m("full")}),
            409,
            "NOT_EMPTY",
        ),
        (
            json!({"path": "a", "mountpoint": m("a-file")}),
            400,
            "NOT_A_DIRECTORY",
        ),
        (
            json!({"path": "a", "mountpoint": m("foreign")}),
            409,
            "ALREADY_MOUNTED",
        ),
        (
            json!({"path": "a", "mountpoint": first_mp.display().to_string()}),
            409,
            "IN_USE",
        ),
        (
            json!({"path": "a", "mountpoint": first_mp.join("inside").display().to_string()}),
            409,
            "IN_USE",
        ),
        (
            json!({"path": "a", "upper_dir": first_upper.display().to_string()}),
            409,
            "IN_USE",
        ),
        (
            json!({"path": "a", "upper_dir": first_upper.join("sub").display().to_string()}),
            409,
            "IN_USE",
        ),
        (
            json!({"path": "a", "readonly": true, "upper_dir": u("r")}),
            400,
            "BAD_REQUEST",
        ),
        (json!({"path": "a", "job_id": "a/b"}), 400, "BAD_REQUEST"),
        (json!({"path": "a", "cl": "../x"}), 400, "BAD_REQUEST"),
        (json!({"path": "a", "surprise": 1}), 400, "BAD_JSON"),
        (json!({"job_id": "no-path"}), 400, "BAD_JSON"),
    ];
    for (body, status, code) in &cases {
        let (st, v) = s.post(body);
        assert_eq!(
            (st, v["code"].as_str()),
            (*status, Some(*code)),
            "{body}: {v}"
        );
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    let (st, v) = s.call("POST", "/mounts", Some("{not json"));
    assert_eq!((st, v["code"].as_str()), (400, Some("BAD_JSON")), "{v}");
    assert_eq!(
        snapshot(
            &[
                mroot.clone(),
                uroot.clone(),
                s.root.join("cl"),
                outside_path.clone()
            ],
            &state
        ),
        before,
        "a refusal changed the disk"
    );
    // The limit: two mounts are fine, a third is 429 and changes nothing.
    let second =
        s.create(json!({"path": "src", "mountpoint": m("given"), "upper_dir": u("given")}));
    assert_eq!(path_of(&second, "mountpoint"), mroot.join("given"));
    assert_eq!(path_of(&second, "upper_dir"), uroot.join("given"));
    let before = snapshot(&[mroot.clone(), uroot.clone()], &state);
    let (st, v) = s.post(&json!({"path": "bin"}));
    assert_eq!(
        (st, v["code"].as_str()),
        (429, Some("TOO_MANY_MOUNTS")),
        "{v}"
    );
    assert_eq!(snapshot(&[mroot.clone(), uroot.clone()], &state), before);
    // Deleting one makes room again.
    assert_eq!(
        s.delete(&format!("/mounts/{}", first["mount_id"].as_str().unwrap()))
            .0,
        200
    );
    s.create(json!({"path": "bin"}));
}

#[test]
fn other_roots_only_when_the_config_allows_them() {
    let fx = fixture::standard();
    let s = AntaresServer::start(
        &fx.repo_path.display().to_string(),
        "allow_other_roots = true",
    );
    let elsewhere = tempfile::tempdir().expect("dir");
    let base = elsewhere.path().canonicalize().expect("canonical");
    let v = s.create(json!({
        "path": "a",
        "mountpoint": base.join("m").display().to_string(),
        "upper_dir": base.join("u").display().to_string(),
    }));
    assert_eq!(path_of(&v, "mountpoint"), base.join("m"));
    std::fs::write(base.join("m/new.txt"), b"n").expect("write");
    assert!(base.join("u/new.txt").exists());
    let (st, e) =
        s.post(&json!({"path": "a", "mountpoint": base.join("x/../y").display().to_string()}));
    assert_eq!((st, e["code"].as_str()), (400, Some("BAD_PATH")), "{e}");
    assert_eq!(
        s.delete(&format!("/mounts/{}", v["mount_id"].as_str().unwrap()))
            .0,
        200
    );
    assert!(!base.join("m").exists() && !base.join("u").exists());
}

#[test]
fn delete_frees_the_mountpoint_the_upper_layer_and_the_session() {
    let fx = fixture::standard();
    let s = AntaresServer::start(&fx.repo_path.display().to_string(), "");
    let v = s.create(json!({"job_id": "d", "path": "a"}));
    let ro = s.create(json!({"path": "/", "readonly": true}));
    let mp = path_of(&v, "mountpoint");
    let upper = path_of(&v, "upper_dir");
    let ro_mp = path_of(&ro, "mountpoint");
    assert!(live_fuse(&mp) && live_fuse(&ro_mp));
    std::fs::write(mp.join("job.txt"), b"work").expect("write");
    std::fs::write(mp.join("b/c.txt"), b"changed").expect("copy-up");
    assert!(upper.join("job.txt").exists());
    // The read-only mount shows the repository and refuses writes.
    assert_eq!(
        std::fs::read(ro_mp.join(fixture::DEEP_FILE)).expect("read"),
        fixture::DEEP_FILE_CONTENT
    );
    assert_eq!(ro_mp.metadata().expect("stat").ino(), 1);
    let err = std::fs::write(ro_mp.join("x"), b"x").expect_err("read-only");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    // A file held open does not keep the mount alive past DELETE.
    let held = File::open(mp.join("job.txt")).expect("open");
    let (st, body) = s.delete(&format!("/mounts/{}", v["mount_id"].as_str().unwrap()));
    assert_eq!(st, 200, "{body}\n{}", s.log());
    drop(held);
    assert!(
        !mountinfo().iter().any(|m| m.mount_point == mp),
        "session gone"
    );
    assert!(!mp.exists(), "mountpoint removed");
    assert!(!upper.exists(), "upper removed");
    assert!(!upper
        .with_file_name(format!(
            ".{}.work",
            upper.file_name().unwrap().to_string_lossy()
        ))
        .exists());
    assert_eq!(
        s.get(&format!("/mounts/{}", v["mount_id"].as_str().unwrap()))
            .0,
        404
    );
    let (st, _) = s.delete(&format!("/mounts/{}", ro["mount_id"].as_str().unwrap()));
    assert_eq!(st, 200);
    // A mount someone unmounts behind the server's back becomes `failed`, and DELETE still
    // cleans it up.
    let gone = s.create(json!({"path": "src"}));
    let gone_mp = path_of(&gone, "mountpoint");
    let out = run_with_timeout(Command::new("fusermount3").arg("-u").arg(&gone_mp), 10);
    assert!(out.status.success(), "{out:?}");
    let url = format!("/mounts/{}", gone["mount_id"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let (_, v) = s.get(&url);
        if v["state"] == "failed" || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(failed["state"], "failed", "{failed}\n{}", s.log());
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ended")),
        "{failed}"
    );
    assert_eq!(s.delete(&url).0, 200);
    assert!(!gone_mp.exists() && !path_of(&gone, "upper_dir").exists());
    assert!(s.fuse_mounts().is_empty(), "{:?}", s.fuse_mounts());
    assert_eq!(s.get("/mounts").1["mounts"], json!([]));
    // The state file agrees.
    let state: Value = serde_json::from_slice(
        &std::fs::read(s.root.join("store/antares/state.json")).expect("state"),
    )
    .expect("JSON");
    assert_eq!(state["mounts"], json!([]));
}

#[test]
fn after_sigkill_a_restart_recovers_every_mount_and_loses_no_upper_layer() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let mut s = AntaresServer::start(&server.url(), "");
    let a = s.create(json!({"job_id": "a", "path": "a"}));
    let b = s.create(json!({"job_id": "b", "path": "/", "readonly": true}));
    let c = s.create(json!({"job_id": "c", "path": "src"}));
    let (amp, cmp) = (path_of(&a, "mountpoint"), path_of(&c, "mountpoint"));
    let (aup, cup) = (path_of(&a, "upper_dir"), path_of(&c, "upper_dir"));
    std::fs::write(amp.join("a.txt"), b"kept a").expect("write");
    std::fs::write(cmp.join("c.txt"), b"kept c").expect("write");
    let mut f = File::create(amp.join("synced.txt")).expect("create");
    f.write_all(b"synced").expect("write");
    f.sync_all().expect("fsync");
    drop(f);
    s.kill9();
    // The dead mounts are still there; c's mountpoint is then cleared by hand and filled, so
    // it cannot be mounted again.
    assert_eq!(s.fuse_mounts().len(), 3);
    lazy_unmount(&cmp);
    std::fs::write(cmp.join("in-the-way"), b"x").expect("write");
    s.spawn();
    // a and b are back; c failed with a reason; no dead mount is left.
    let (_, a2) = s.get("/mounts/by-job/a");
    let (_, b2) = s.get("/mounts/by-job/b");
    let (_, c2) = s.get("/mounts/by-job/c");
    assert_eq!(a2["state"], "mounted", "{a2}\n{}", s.log());
    assert_eq!(b2["state"], "mounted", "{b2}");
    assert_eq!(c2["state"], "failed", "{c2}");
    assert!(
        c2["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not empty")),
        "{c2}"
    );
    assert_eq!(a2["mount_id"], a["mount_id"]);
    let mounted = s.fuse_mounts();
    assert_eq!(mounted.len(), 2, "{mounted:?}");
    assert!(
        mounted.iter().all(|m| live_fuse(m)),
        "a dead mount is left: {mounted:?}"
    );
    assert_eq!(std::fs::read(amp.join("a.txt")).expect("read"), b"kept a");
    assert_eq!(
        std::fs::read(amp.join("synced.txt")).expect("read"),
        b"synced"
    );
    assert_eq!(
        std::fs::read(path_of(&b, "mountpoint").join(fixture::README)).expect("read"),
        fixture::README_CONTENT
    );
    // No upper layer is lost, the failed one's included.
    assert_eq!(std::fs::read(aup.join("a.txt")).expect("read"), b"kept a");
    assert_eq!(std::fs::read(cup.join("c.txt")).expect("read"), b"kept c");
    // A failed mount can still be deleted; the file in its way is not ours to remove.
    let (st, v) = s.delete("/mounts/by-job/c");
    assert_eq!(st, 200, "{v}");
    assert!(!cup.exists());
    // A clean stop unmounts everything and exits 0; the next start mounts the same again.
    let status = s.stop().expect("exited");
    assert!(status.success(), "{status}\n{}", s.log());
    assert!(s.fuse_mounts().is_empty(), "{:?}", s.fuse_mounts());
    s.spawn();
    assert_eq!(s.get("/mounts/by-job/a").1["state"], "mounted");
    assert_eq!(std::fs::read(amp.join("a.txt")).expect("read"), b"kept a");
    assert_eq!(s.fuse_mounts().len(), 2);
}

/// Lazily unmounts every FUSE mount under a directory when dropped.
struct UnmountUnder(Option<PathBuf>);

impl Drop for UnmountUnder {
    fn drop(&mut self) {
        if let Some(root) = &self.0 {
            for m in fuse_mounts_under(root) {
                lazy_unmount(&m);
            }
        }
    }
}

#[test]
fn the_daemon_serves_the_same_api_at_antares() {
    let fx = fixture::standard();
    // Dropped after the daemon: clears Antares mounts a failed test would leave.
    let mut cleanup = UnmountUnder(None);
    let d = Daemon::local(&fx);
    cleanup.0 = Some(d.store.clone());
    let (st, h) = http::get(&d.http_addr, "/antares/health");
    assert_eq!(st, 200, "{h}");
    let (st, body) = http::post(
        &d.http_addr,
        "/antares/mounts",
        r#"{"job_id":"w","path":"a"}"#,
    );
    assert_eq!(st, 201, "{body}\n{}", d.log());
    let v: Value = serde_json::from_str(&body).expect("JSON");
    let mp = path_of(&v, "mountpoint");
    assert!(
        mp.starts_with(&d.store),
        "default roots live in the store: {mp:?}"
    );
    std::fs::write(mp.join("n.txt"), b"n").expect("write");
    // The workspace does not see the job's write.
    assert!(!d.workspace.join("a/n.txt").exists());
    assert_eq!(
        std::fs::read(d.workspace.join(fixture::DEEP_FILE)).expect("read"),
        fixture::DEEP_FILE_CONTENT
    );
    // The CLI talks to the same routes.
    let out = cli(&d, &["antares", "--via-daemon", "list"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(v["mount_id"].as_str().unwrap()));
    let out = cli(&d, &["antares", "--via-daemon", "umount", "--job", "w"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!mountinfo().iter().any(|m| m.mount_point == mp));
    let (st, _) = http::get(&d.http_addr, "/antares/mounts/by-job/w");
    assert_eq!(st, 404);
    // A mount left at shutdown is unmounted by SIGTERM with the workspace.
    let (st, body) = http::post(&d.http_addr, "/antares/mounts", r#"{"path":"src"}"#);
    assert_eq!(st, 201, "{body}");
    let mp = path_of(&serde_json::from_str(&body).expect("JSON"), "mountpoint");
    let mut d = d;
    assert!(d.stop().success());
    assert!(!mountinfo().iter().any(|m| m.mount_point == mp));
}

#[test]
fn the_cli_mounts_lists_and_unmounts() {
    let fx = fixture::standard();
    let s = AntaresServer::start(&fx.repo_path.display().to_string(), "");
    let cli =
        |args: &[&str]| run_with_timeout(scorpio_command(&s.config).arg("antares").args(args), 60);
    let out = cli(&["mount", "a", "--job-id", "cli", "--label", "team=ci"]);
    assert!(out.status.success(), "{out:?}\n{}", s.log());
    let mp = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(live_fuse(&mp), "{mp:?}");
    assert_eq!(
        std::fs::read(mp.join("b/c.txt")).expect("read"),
        fixture::DEEP_FILE_CONTENT
    );
    let out = cli(&["list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cli"),
        "{out:?}"
    );
    let out = cli(&["mount", "a/../b"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = cli(&["umount", "--job", "cli"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!mp.exists());
    let out = cli(&["umount", "no-such-id"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn a_crash_in_the_middle_of_a_create_or_a_delete_is_finished_at_start() {
    let fx = fixture::standard();
    let mut s = AntaresServer::start(&fx.repo_path.display().to_string(), "");
    let x = s.create(json!({"job_id": "x", "path": "a"}));
    let y = s.create(json!({"job_id": "y", "path": "src"}));
    let (xmp, xup) = (path_of(&x, "mountpoint"), path_of(&x, "upper_dir"));
    let ymp = path_of(&y, "mountpoint");
    std::fs::write(xmp.join("x.txt"), b"x").expect("write");
    std::fs::write(ymp.join("y.txt"), b"y").expect("write");
    s.kill9();
    // As if the crash came while x was being deleted and y was being made.
    let state_path = s.root.join("store/antares/state.json");
    let mut state: Value =
        serde_json::from_slice(&std::fs::read(&state_path).expect("state")).expect("JSON");
    for m in state["mounts"].as_array_mut().expect("mounts") {
        m["state"] = match m["job_id"].as_str() {
            Some("x") => json!("unmounting"),
            _ => json!("provisioning"),
        };
    }
    std::fs::write(&state_path, state.to_string()).expect("write state");
    s.spawn();
    // x's deletion is finished: no record, no mount, no upper layer, no mountpoint.
    assert_eq!(s.get("/mounts/by-job/x").0, 404, "{}", s.log());
    assert!(!xup.exists(), "x's upper layer is gone");
    assert!(!xmp.exists(), "x's mountpoint is gone");
    // y is mounted, with what was written before the crash.
    let (_, y2) = s.get("/mounts/by-job/y");
    assert_eq!(y2["state"], "mounted", "{y2}");
    assert_eq!(std::fs::read(ymp.join("y.txt")).expect("read"), b"y");
    assert_eq!(s.fuse_mounts(), vec![ymp.clone()]);
    assert!(live_fuse(&ymp));
}
