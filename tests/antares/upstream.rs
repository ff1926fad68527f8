//! Antares: an upstream (scorpiofs) client (see tests/antares.rs). Its requests carry fields of
//! its own (`build_id`, and ones this daemon does not know); it reads upstream's fields back
//! (`layers`, `*_epoch_ms`, `lifecycle`), polls `GET /mounts/{id}/ready`, and swaps the CL layer
//! of a live mount with `POST|DELETE /mounts/{id}/cl` while processes hold files open in it.

use serde_json::json;

use crate::support::antares::{path_of, AntaresServer};
use crate::support::fixture;

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
