//! The Antares HTTP API (axum): served alone by `scorpio antares serve`, and nested at
//! `/antares` in the main daemon.
//!
//! Errors are `{"error", "code"}` with the status of [`AntaresError::status`]; bodies are read
//! by the daemon's [`ApiJson`] (any content type) and every other refusal is made JSON by
//! [`json_errors`], as in the daemon. Once shutdown has begun every request gets 503.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::{Antares, AntaresError, CreateRequest};
use crate::http::{json_errors, Access, ApiJson, AppError, BodyError, Health};

impl From<AntaresError> for AppError {
    fn from(e: AntaresError) -> Self {
        let (status, code) = e.status();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %e, "antares request failed");
        } else {
            tracing::debug!(error = %e, "antares request refused");
        }
        AppError::new(status, code, e.to_string())
    }
}

type ApiResult = Result<Response, AppError>;

async fn health(State(a): State<Arc<Antares>>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_secs: a.uptime_secs(),
        mount_count: a.count(),
        commit: a.commit(),
    })
}

async fn create(
    State(a): State<Arc<Antares>>,
    body: Result<ApiJson<CreateRequest>, BodyError>,
) -> ApiResult {
    // The Antares contract answers 400 BAD_JSON to any body that is not a mount request.
    let req = match body {
        Ok(ApiJson(req)) => req,
        Err(e @ (BodyError::Syntax(_) | BodyError::Shape(_))) => {
            return Err(AppError::new(
                StatusCode::BAD_REQUEST,
                "BAD_JSON",
                format!("the body is not a mount request: {e}"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if !req.extra.is_empty() {
        let fields: Vec<&str> = req.extra.keys().map(String::as_str).collect();
        tracing::warn!(
            ?fields,
            "POST /mounts: fields this daemon does not know are ignored"
        );
    }
    let (rec, new) = a.create(req).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(a.view(rec))).into_response())
}

async fn list(State(a): State<Arc<Antares>>) -> Json<serde_json::Value> {
    let views: Vec<_> = a.list().into_iter().map(|r| a.view(r)).collect();
    Json(json!({ "mounts": views }))
}

async fn get_one(State(a): State<Arc<Antares>>, Path(id): Path<String>) -> ApiResult {
    Ok(Json(a.view(a.get(&id)?)).into_response())
}

/// Upstream's readiness probe: `state` here is upstream's name ([`super::Lifecycle`]).
async fn ready(State(a): State<Arc<Antares>>, Path(id): Path<String>) -> ApiResult {
    let (ready, state) = a.readiness(&id)?;
    Ok(Json(json!({ "mount_id": id, "ready": ready, "state": state })).into_response())
}

async fn delete_one(State(a): State<Arc<Antares>>, Path(id): Path<String>) -> ApiResult {
    let rec = a.delete(&id).await?;
    let message = match &rec.upper_dir {
        Some(u) if !rec.owns_upper => format!(
            "mount {} deleted; its upper layer {} was there before it and is kept",
            rec.mount_id,
            u.display()
        ),
        _ => format!("mount {} deleted", rec.mount_id),
    };
    Ok(Json(json!({
        "mount_id": rec.mount_id,
        "mountpoint": rec.mountpoint,
        "message": message,
        "lifecycle": super::Lifecycle::Unmounted,
    }))
    .into_response())
}

/// Body of `POST /mounts/{id}/cl` (other fields are ignored).
#[derive(serde::Deserialize)]
struct ClRequest {
    cl: String,
}

async fn swap_cl(
    State(a): State<Arc<Antares>>,
    Path(id): Path<String>,
    body: Result<ApiJson<ClRequest>, BodyError>,
) -> ApiResult {
    let req = match body {
        Ok(ApiJson(req)) => req,
        Err(e @ (BodyError::Syntax(_) | BodyError::Shape(_))) => {
            return Err(AppError::new(
                StatusCode::BAD_REQUEST,
                "BAD_JSON",
                format!("the body is not {{\"cl\": \"<link>\"}}: {e}"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let rec = a.swap_cl(&id, Some(&req.cl)).await?;
    Ok(Json(a.view(rec)).into_response())
}

async fn drop_cl(State(a): State<Arc<Antares>>, Path(id): Path<String>) -> ApiResult {
    let rec = a.swap_cl(&id, None).await?;
    Ok(Json(a.view(rec)).into_response())
}

async fn get_job(State(a): State<Arc<Antares>>, Path(job): Path<String>) -> ApiResult {
    Ok(Json(a.view(a.by_job(&job)?)).into_response())
}

async fn delete_job(State(a): State<Arc<Antares>>, Path(job): Path<String>) -> ApiResult {
    let id = a.by_job(&job)?.mount_id;
    delete_one(State(a), Path(id)).await
}

async fn changes(State(a): State<Arc<Antares>>, Path(id): Path<String>) -> ApiResult {
    let rec = a.get(&id)?;
    let changes = a.changes(&id).await?;
    Ok(Json(json!({
        "mount_id": rec.mount_id,
        "path": rec.path,
        "base": rec.commit,
        "changes": changes,
    }))
    .into_response())
}

async fn not_found() -> AppError {
    AppError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

/// Answers 503 once shutdown has begun, before anything else runs.
async fn refuse_when_closing(
    State(a): State<Arc<Antares>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if a.is_closing() {
        return AppError::from(AntaresError::ShuttingDown).into_response();
    }
    next.run(req).await
}

/// The Antares routes over `a`. With `access` (the standalone server) every request passes its
/// check; the main daemon passes `None`: its own check already covers the nested routes.
pub fn router<S: Clone + Send + Sync + 'static>(
    a: Arc<Antares>,
    access: Option<Access>,
) -> Router<S> {
    let r = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(super::gauges::scrape))
        .route("/mounts", get(list).post(create))
        .route("/mounts/{id}", get(get_one).delete(delete_one))
        .route("/mounts/{id}/changes", get(changes))
        .route("/mounts/{id}/ready", get(ready))
        .route("/mounts/{id}/cl", post(swap_cl).delete(drop_cl))
        .route("/mounts/by-job/{job_id}", get(get_job).delete(delete_job))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            a.clone(),
            refuse_when_closing,
        ))
        .with_state(a);
    let r = match access {
        Some(acc) => r.layer(axum::middleware::from_fn_with_state(
            acc,
            crate::http::peer::guard,
        )),
        None => r,
    };
    r.layer(axum::middleware::from_fn(json_errors))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::antares::Settings;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    /// Antares over a one-commit local repository; no FUSE is involved until a mount is made.
    pub(crate) async fn antares(dir: &std::path::Path) -> Arc<Antares> {
        let repo = git2::Repository::init(dir.join("repo")).expect("init");
        let blob = repo.blob(b"hello\n").expect("blob");
        let mut sub = repo.treebuilder(None).expect("tb");
        sub.insert("f.txt", blob, 0o100644).expect("insert");
        let sub = sub.write().expect("write");
        let mut root = repo.treebuilder(None).expect("tb");
        root.insert("a", sub, 0o040000).expect("insert");
        root.insert("top.txt", blob, 0o100644).expect("insert");
        let tree = repo.find_tree(root.write().expect("write")).expect("tree");
        let sig = git2::Signature::now("t", "t@t").expect("sig");
        repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &[])
            .expect("commit");
        let dic = crate::dicfuse::test_view(&dir.join("repo"), &dir.join("store")).await;
        Antares::open(
            dic,
            Settings {
                mount_root: dir.join("mnt"),
                upper_root: dir.join("upper"),
                cl_root: dir.join("cl"),
                max_mounts: 4,
                allow_other_roots: false,
                state_path: dir.join("store/antares/state.json"),
                dicfuse_dir: dir.join("store"),
            },
        )
        .expect("open")
    }

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let resp = app.clone().oneshot(req).await.expect("response");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn refusals_are_json_and_leave_the_roots_empty() {
        let d = tempfile::tempdir().expect("dir");
        let a = antares(d.path()).await;
        let app: Router = router(a.clone(), None);
        let (st, h) = call(&app, "GET", "/health", "").await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(h["commit"], a.commit());
        for (body, status, code) in [
            ("{", 400, "BAD_JSON"),
            (r#"{"path":"a/../a"}"#, 400, "BAD_PATH"),
            (r#"{"path":"nope"}"#, 400, "NOT_IN_REPOSITORY"),
            (r#"{"path":"top.txt"}"#, 400, "NOT_A_DIRECTORY"),
            (r#"{"path":"a","mountpoint":"/etc/x"}"#, 400, "OUTSIDE_ROOT"),
        ] {
            let (st, v) = call(&app, "POST", "/mounts", body).await;
            assert_eq!(
                (st.as_u16(), v["code"].as_str()),
                (status, Some(code)),
                "{body}: {v}"
            );
        }
        for (m, uri) in [
            ("GET", "/mounts/x"),
            ("DELETE", "/mounts/x"),
            ("GET", "/mounts/by-job/j"),
            ("GET", "/nope"),
        ] {
            let (st, v) = call(&app, m, uri, "").await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{m} {uri}");
            assert_eq!(v["code"], "NOT_FOUND");
        }
        for root in ["mnt", "upper", "cl"] {
            let n = std::fs::read_dir(d.path().join(root))
                .expect("root")
                .count();
            assert_eq!(n, 0, "{root} was touched");
        }
        assert!(!d.path().join("store/antares/state.json").exists());
    }

    #[tokio::test]
    async fn upstream_fields_are_read_and_unknown_ones_ignored() {
        let d = tempfile::tempdir().expect("dir");
        let a = antares(d.path()).await;
        let app: Router = router(a, None);
        for (body, status, code) in [
            // Read past the unknown field: the path's own refusal answers.
            (
                r#"{"path":"top.txt","build_id":"b-1","surprise":{"x":1}}"#,
                400,
                "NOT_A_DIRECTORY",
            ),
            (r#"{"path":"a","build_id":"a b"}"#, 400, "BAD_REQUEST"),
            // Wrong types and bad JSON are still not a mount request.
            (r#"{"path":"a","readonly":"yes"}"#, 400, "BAD_JSON"),
            (r#"{"path":"a","build_id":7}"#, 400, "BAD_JSON"),
        ] {
            let (st, v) = call(&app, "POST", "/mounts", body).await;
            assert_eq!(
                (st.as_u16(), v["code"].as_str()),
                (status, Some(code)),
                "{body}: {v}"
            );
        }
        let (st, v) = call(&app, "GET", "/mounts/x/ready", "").await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
        );
    }

    #[tokio::test]
    async fn framework_refusals_are_json_and_any_content_type_is_read() {
        let d = tempfile::tempdir().expect("dir");
        let a = antares(d.path()).await;
        let app: Router = router(a, Some(Access::new(None)));
        let send = |method: &str, uri: &str, ctype: Option<&str>, body: Vec<u8>| {
            let mut b = Request::builder().method(method).uri(uri);
            if let Some(t) = ctype {
                b = b.header("content-type", t);
            }
            let req = b.body(Body::from(body)).expect("request");
            let app = app.clone();
            async move {
                let resp = app.oneshot(req).await.expect("response");
                let status = resp.status().as_u16();
                let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                    .await
                    .expect("body");
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                (status, v["code"].as_str().unwrap_or_default().to_string())
            }
        };
        let form = Some("application/x-www-form-urlencoded");
        for (method, uri, ctype, body, want) in [
            ("PUT", "/mounts", None, vec![], (405, "METHOD_NOT_ALLOWED")),
            ("POST", "/health", None, vec![], (405, "METHOD_NOT_ALLOWED")),
            ("POST", "/mounts", form, b"{".to_vec(), (400, "BAD_JSON")),
            ("POST", "/mounts", form, b"[1]".to_vec(), (400, "BAD_JSON")),
            (
                "POST",
                "/mounts",
                None,
                vec![b' '; 11 << 20],
                (413, "TOO_LARGE"),
            ),
            // Read without a JSON content type: the handler itself answers.
            (
                "POST",
                "/mounts",
                form,
                br#"{"path":"nope"}"#.to_vec(),
                (400, "NOT_IN_REPOSITORY"),
            ),
        ] {
            let got = send(method, uri, ctype, body).await;
            assert_eq!((got.0, got.1.as_str()), want, "{method} {uri}");
        }
    }

    #[tokio::test]
    async fn every_request_gets_503_once_shutdown_has_begun() {
        let d = tempfile::tempdir().expect("dir");
        let a = antares(d.path()).await;
        let app: Router = router(a.clone(), None);
        assert_eq!(call(&app, "GET", "/mounts", "").await.0, StatusCode::OK);
        a.shutdown().await;
        for (m, uri, body) in [
            ("GET", "/health", ""),
            ("GET", "/mounts", ""),
            ("POST", "/mounts", r#"{"path":"a"}"#),
            ("DELETE", "/mounts/x", ""),
        ] {
            let (st, v) = call(&app, m, uri, body).await;
            assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{m} {uri}");
            assert_eq!(v["code"], "SHUTTING_DOWN");
        }
        // Antares itself refuses too, whoever calls it.
        assert!(matches!(
            a.create(CreateRequest {
                path: "a".into(),
                ..Default::default()
            })
            .await,
            Err(AntaresError::ShuttingDown)
        ));
    }

    #[tokio::test]
    async fn a_token_is_required_when_configured() {
        let d = tempfile::tempdir().expect("dir");
        let a = antares(d.path()).await;
        let app: Router = router(a, Some(Access::new(Some("s3cret".into()))));
        let (st, v) = call(&app, "GET", "/mounts", "").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        assert_eq!(v["code"], "UNAUTHORIZED");
        let req = Request::get("/mounts")
            .header("authorization", "Bearer s3cret")
            .body(Body::empty())
            .expect("request");
        assert_eq!(
            app.oneshot(req).await.expect("resp").status(),
            StatusCode::OK
        );
    }
}
