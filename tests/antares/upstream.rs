//! Antares: an upstream (scorpiofs) client (see tests/antares.rs). Its requests carry fields of
//! its own (`build_id`, and ones this daemon does not know); it reads upstream's fields back
//! (`layers`, `*_epoch_ms`, `lifecycle`), polls `GET /mounts/{id}/ready`, and swaps the CL layer
//! of a live mount with `POST|DELETE /mounts/{id}/cl` while processes hold files open in it.

use serde_json::json;

use crate::support::antares::{path_of, AntaresServer};
use crate::support::fixture;
use crate::support::mega_server::{Fault, MegaServer};

#[test]
fn an_upstream_client_creates_reads_and_polls_readiness() {
    let fx = fixture::standard();
    let s = AntaresServer::start(&fx.repo_path.display().to_string(), "");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let (st, v) = s.post(&json!({
        "build_id": "build-77",
        "path": "/a",
        "priority": "high",
        "orion": {"task": 3},
    }));
    assert_eq!(st, 201, "{v}\n{}", s.log());
    let id = v["mount_id"].as_str().expect("mount_id").to_string();
    assert!(
        s.log().contains("priority") && s.log().contains("orion"),
        "the ignored fields are named in the log:\n{}",
        s.log()
    );
    // Ours as before, upstream's beside them.
    assert_eq!(v["state"], "mounted");
    assert_eq!(v["build_id"], "build-77");
    assert_eq!(
        v["job_id"], "build-77",
        "without job_id the build id is the job's key"
    );
    assert_eq!(v["lifecycle"], "Ready");
    assert_eq!(v["layers"]["upper"], v["upper_dir"]);
    assert!(v["layers"]["cl"].is_null());
    assert!(path_of(&v["layers"], "dicfuse").is_dir(), "{v}");
    for key in [
        "created_at_epoch_ms",
        "mounted_at_epoch_ms",
        "last_seen_epoch_ms",
    ] {
        let t = v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"));
        assert!(t >= before && t < before + 60_000, "{key} = {t}");
    }
    let (st, got) = s.get(&format!("/mounts/{id}"));
    assert_eq!(st, 200);
    assert_eq!(got, v, "GET shows what POST answered");
    // The same build again is the same mount; by-job finds it by its build id.
    let (st, again) = s.post(&json!({"build_id": "build-77", "path": "a"}));
    assert_eq!((st, &again["mount_id"]), (200, &v["mount_id"]), "{again}");
    assert_eq!(
        s.get("/mounts/by-job/build-77").1["mount_id"],
        v["mount_id"]
    );
    assert_eq!(s.get("/mounts").1["mounts"][0]["lifecycle"], "Ready");
    // Readiness: upstream's probe.
    let (st, r) = s.get(&format!("/mounts/{id}/ready"));
    assert_eq!(st, 200, "{r}");
    assert_eq!(r, json!({"mount_id": id, "ready": true, "state": "Ready"}));
    let (st, r) = s.get("/mounts/00000000-0000-4000-8000-000000000000/ready");
    assert_eq!((st, &r["code"]), (404, &json!("NOT_FOUND")), "{r}");
    // Wrong types are still refused.
    let (st, r) = s.post(&json!({"path": "a", "build_id": ["x"]}));
    assert_eq!((st, &r["code"]), (400, &json!("BAD_JSON")), "{r}");
    let (st, gone) = s.delete(&format!("/mounts/{id}"));
    assert_eq!(
        (st, &gone["lifecycle"]),
        (200, &json!("Unmounted")),
        "{gone}"
    );
    assert_eq!(s.get(&format!("/mounts/{id}/ready")).0, 404);
}

/// Blob ids of `contents` in the fixture's repository (so the test server can serve them).
fn blobs(fx: &fixture::Fixture, contents: &[&[u8]]) -> Vec<String> {
    let repo = fx.open();
    contents
        .iter()
        .map(|c| repo.blob(c).expect("blob").to_string())
        .collect()
}

fn read_at_start(f: &mut std::fs::File) -> String {
    use std::io::{Read, Seek};
    f.seek(std::io::SeekFrom::Start(0)).expect("seek");
    let mut s = String::new();
    f.read_to_string(&mut s).expect("read through the open fd");
    s
}

fn text(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_live_mount_swaps_and_drops_its_cl_with_files_held_open() {
    use std::os::unix::fs::FileExt;
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let [one, only1, two, deep2, only2]: [String; 5] = blobs(
        &fx,
        &[
            b"one\n",
            b"only in one\n",
            b"two: longer than one\n",
            b"deep, as CL two has it\n",
            b"only in two\n",
        ],
    )
    .try_into()
    .expect("five blobs");
    server.set_cl(
        "1",
        json!([
            {"path": "/a/b/c.txt", "sha": one, "action": "modified"},
            {"path": "/a/b/only1.txt", "sha": only1, "action": "new"},
        ]),
    );
    server.set_cl(
        "2",
        json!([
            {"path": "/a/b/c.txt", "sha": two, "action": "modified"},
            {"path": "/a/b/d/e/deep.txt", "sha": deep2, "action": "modified"},
            {"path": "/a/b/only2.txt", "sha": only2, "action": "new"},
            {"path": "/a/up", "sha": one, "action": "deleted"},
        ]),
    );
    let s = AntaresServer::start_with_env(
        &server.url(),
        "",
        &[("SCORPIO_TEST_CL_SWAP_HOLD_MS", "3000")],
    );
    let v = s.create(json!({"build_id": "swap", "path": "a", "cl": "1"}));
    let id = v["mount_id"].as_str().expect("id").to_string();
    let mp = path_of(&v, "mountpoint");
    let upper = path_of(&v, "upper_dir");
    let cl_layer = path_of(&v["layers"], "cl");
    // What the job did and holds open: a file of its own (upper layer), the CL's file, and a
    // file of the commit that CL 2 changes (open for writing, not yet written).
    std::fs::write(mp.join("b/job.txt"), "job's own\n").expect("write job.txt");
    let mut job_fd = std::fs::File::open(mp.join("b/job.txt")).expect("open job.txt");
    let mut cl_fd = std::fs::File::open(mp.join("b/c.txt")).expect("open c.txt");
    let mut deep_fd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(mp.join("b/d/e/deep.txt"))
        .expect("open deep.txt");
    // The kernel caches all of these, and that only2.txt is missing.
    assert_eq!(read_at_start(&mut cl_fd), "one\n");
    assert_eq!(read_at_start(&mut deep_fd), "deep down in a/b/d/e\n");
    assert_eq!(text(&mp.join("b/only1.txt")), "only in one\n");
    assert!(!mp.join("b/only2.txt").exists());
    assert!(mp.join("up").symlink_metadata().is_ok());

    let swap_url = format!("/mounts/{id}/cl");
    std::thread::scope(|sc| {
        let swap = sc.spawn(|| s.call("POST", &swap_url, Some(r#"{"cl": "2"}"#)));
        let t0 = std::time::Instant::now();
        while !s.log().contains("CL swap: the mount's requests are held") {
            assert!(t0.elapsed().as_secs() < 30, "no swap began:\n{}", s.log());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let (_, during) = s.get(&format!("/mounts/{id}"));
        assert_eq!(during["lifecycle"], "Quiescing", "{during}");
        assert_eq!(s.get(&format!("/mounts/{id}/ready")).1["ready"], false);
        // A write issued now is held, not failed, and lands on the new layer.
        let write = sc.spawn(|| deep_fd.write_at(b"XY", 0));
        std::thread::sleep(std::time::Duration::from_millis(400));
        assert!(!write.is_finished(), "the write was not held");
        assert!(!swap.is_finished());
        let (st, after) = swap.join().expect("swap thread");
        assert_eq!(st, 200, "{after}\n{}", s.log());
        assert_eq!(write.join().expect("write thread").expect("held write"), 2);
        assert_eq!(after["cl"], "2");
        assert_eq!(after["lifecycle"], "Ready");
        assert_eq!(after["layers"]["cl"], v["layers"]["cl"]);
    });
    assert_eq!(s.get(&format!("/mounts/{id}/ready")).1["ready"], true);
    // The job's own file is untouched, through its fd and by path, and in the upper layer.
    assert_eq!(read_at_start(&mut job_fd), "job's own\n");
    assert_eq!(text(&mp.join("b/job.txt")), "job's own\n");
    assert_eq!(text(&upper.join("b/job.txt")), "job's own\n");
    // The kernel sees the new layer: through fds opened before, and by path.
    assert_eq!(read_at_start(&mut cl_fd), "two: longer than one\n");
    assert_eq!(text(&mp.join("b/c.txt")), "two: longer than one\n");
    assert_eq!(text(&mp.join("b/only2.txt")), "only in two\n");
    assert!(!mp.join("b/only1.txt").exists());
    assert!(mp.join("up").symlink_metadata().is_err(), "CL 2 deletes up");
    // The held write was applied over what CL 2 shows (copied up then written).
    assert_eq!(read_at_start(&mut deep_fd), "XYep, as CL two has it\n");
    assert_eq!(text(&mp.join("b/d/e/deep.txt")), "XYep, as CL two has it\n");
    // The layer on disk is CL 2's alone, with nothing left beside it.
    assert_eq!(text(&cl_layer.join("b/c.txt")), "two: longer than one\n");
    for ext in ["new", "old"] {
        assert!(!cl_layer.with_extension(ext).exists(), ".{ext} left behind");
    }

    // A swap that fails leaves the layer laid: an unknown CL, then the remote failing.
    let (st, r) = s.call("POST", &swap_url, Some(r#"{"cl": "no-such"}"#));
    assert_eq!((st, &r["code"]), (400, &json!("NO_SUCH_CL")), "{r}");
    server.set_fault(Fault::Http500);
    let (st, r) = s.call("POST", &swap_url, Some(r#"{"cl": "1"}"#));
    server.set_fault(Fault::None);
    assert_eq!((st, &r["code"]), (502, &json!("CL_UNAVAILABLE")), "{r}");
    let (st, r) = s.call("POST", &swap_url, Some(r#"{"link": "1"}"#));
    assert_eq!((st, &r["code"]), (400, &json!("BAD_JSON")), "{r}");
    assert_eq!(s.get(&format!("/mounts/{id}")).1["cl"], "2");
    assert_eq!(read_at_start(&mut cl_fd), "two: longer than one\n");
    assert_eq!(text(&mp.join("b/only2.txt")), "only in two\n");

    // DELETE drops the layer: the commit shows again under the job's writes.
    let (st, r) = s.delete(&swap_url);
    assert_eq!(st, 200, "{r}\n{}", s.log());
    assert!(r["cl"].is_null() && r["layers"]["cl"].is_null(), "{r}");
    assert_eq!(read_at_start(&mut cl_fd), "hello from a/b/c.txt\n");
    assert_eq!(text(&mp.join("b/c.txt")), "hello from a/b/c.txt\n");
    assert!(!mp.join("b/only2.txt").exists());
    assert_eq!(
        std::fs::read_link(mp.join("up")).expect("up is back"),
        std::path::PathBuf::from("../empty.txt")
    );
    assert_eq!(read_at_start(&mut job_fd), "job's own\n");
    assert_eq!(read_at_start(&mut deep_fd), "XYep, as CL two has it\n");
    assert!(!cl_layer.exists());
    // Unknown mounts are 404; a read-only one has no CL to swap.
    let (st, r) = s.call(
        "POST",
        "/mounts/00000000-0000-4000-8000-000000000000/cl",
        Some(r#"{"cl": "2"}"#),
    );
    assert_eq!((st, &r["code"]), (404, &json!("NOT_FOUND")), "{r}");
    let ro = s.create(json!({"path": "a", "readonly": true}));
    let (st, r) = s.call(
        "POST",
        &format!("/mounts/{}/cl", ro["mount_id"].as_str().expect("id")),
        Some(r#"{"cl": "2"}"#),
    );
    assert_eq!((st, &r["code"]), (400, &json!("BAD_REQUEST")), "{r}");
    drop((job_fd, cl_fd, deep_fd));
}

#[test]
fn a_cl_laid_on_a_mount_made_without_one_comes_back_after_restarts() {
    let fx = fixture::standard();
    let server = MegaServer::start(&fx.repo_path);
    let [two, only2]: [String; 2] = blobs(&fx, &[b"two\n", b"only in two\n"])
        .try_into()
        .expect("two blobs");
    server.set_cl(
        "2",
        json!([
            {"path": "/a/b/c.txt", "sha": two, "action": "modified"},
            {"path": "/a/b/only2.txt", "sha": only2, "action": "new"},
        ]),
    );
    let mut s = AntaresServer::start(&server.url(), "");
    let v = s.create(json!({"job_id": "late", "path": "a"}));
    let id = v["mount_id"].as_str().expect("id").to_string();
    let mp = path_of(&v, "mountpoint");
    std::fs::write(mp.join("b/job.txt"), "job's own\n").expect("write job.txt");
    let mut cl_fd = std::fs::File::open(mp.join("b/c.txt")).expect("open c.txt");
    assert_eq!(read_at_start(&mut cl_fd), "hello from a/b/c.txt\n");
    assert!(!mp.join("b/only2.txt").exists());
    let (st, r) = s.call("POST", &format!("/mounts/{id}/cl"), Some(r#"{"cl": "2"}"#));
    assert_eq!(st, 200, "{r}\n{}", s.log());
    let cl_layer = path_of(&r["layers"], "cl");
    assert_eq!(read_at_start(&mut cl_fd), "two\n");
    assert_eq!(text(&mp.join("b/only2.txt")), "only in two\n");
    drop(cl_fd);
    // A clean restart mounts it again over the same layer.
    assert!(s.stop().expect("exited").success(), "{}", s.log());
    s.spawn();
    let (_, back) = s.get("/mounts/by-job/late");
    assert_eq!(
        (&back["state"], &back["cl"]),
        (&json!("mounted"), &json!("2")),
        "{back}"
    );
    assert_eq!(text(&mp.join("b/c.txt")), "two\n");
    assert_eq!(text(&mp.join("b/job.txt")), "job's own\n");
    // A crash that left no layer in place (between moving the old one out and the new one in)
    // builds it again from the CL the record names.
    s.kill9();
    std::fs::remove_dir_all(&cl_layer).expect("remove the layer");
    s.spawn();
    assert_eq!(
        s.get("/mounts/by-job/late").1["state"],
        "mounted",
        "{}",
        s.log()
    );
    assert_eq!(text(&mp.join("b/c.txt")), "two\n");
    assert_eq!(text(&mp.join("b/only2.txt")), "only in two\n");
    assert_eq!(text(&mp.join("b/job.txt")), "job's own\n");
}
