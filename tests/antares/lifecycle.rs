//! Antares: lifecycle (see tests/antares.rs). DELETE frees everything a mount had; a restart after
//! SIGKILL, or after a crash in the middle of a create or a delete, recovers or finishes it.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::antares::{live_fuse, path_of, AntaresServer};
use crate::support::daemon::{lazy_unmount, run_with_timeout};
use crate::support::fixture;
use crate::support::mega_server::MegaServer;
use crate::support::mountinfo::mountinfo;

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
