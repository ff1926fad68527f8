//! Antares: refusals (see tests/antares.rs). Idempotent creates, conflicts, limits, bad paths and
//! other roots are refused and change nothing on disk.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::antares::{path_of, AntaresServer};
use crate::support::fixture;
use crate::support::host::Tmpfs;
use crate::support::mega_server::MegaServer;

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
    // A CL with nothing under the path is refused too, before anything is made.
    let (st, v) = s.post(&json!({"job_id": "ci-3", "path": "src", "cl": "42"}));
    assert_eq!((st, &v["code"]), (400, &json!("CL_NOT_UNDER_PATH")), "{v}");
    assert_eq!(s.get("/mounts/by-job/ci-3").0, 404);
    assert_eq!(s.get("/mounts").1["mounts"].as_array().unwrap().len(), 1);
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
        (json!({"path": "a", "readonly": "yes"}), 400, "BAD_JSON"),
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
