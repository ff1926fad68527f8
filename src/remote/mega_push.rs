//! Pushing to a Mega server, path by path: each path `P` is a git smart HTTP endpoint
//! `{base}/P.git`, and what a push there means depends on the path (see
//! `../shared/mega/README.md`): under `/third-party/<repo>` it moves that repository's `main`;
//! anywhere else it opens or updates a change list (CL) and `main` stays.
//!
//! Promises: the root endpoint (`{base}/.git`) is the plain [`Push`](super::Push) of today (a
//! compare-and-swap on `main`); the per-path endpoints and the CL lookups below only read, or
//! send what the caller asked for.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::smart_http::{Endpoint, HttpPush};
use super::{Oid, PushError, RemoteError};

/// A Mega server as a push target.
pub struct MegaPush {
    base: String,
    token: Option<String>,
    timeout: Duration,
    root: HttpPush,
    client: reqwest::Client,
}

/// One open change list, as the CL list gives it.
#[derive(Clone, Debug, Deserialize)]
pub struct OpenCl {
    /// The CL's link (its id in URLs).
    pub link: String,
    /// Its title (Mega takes it from the pushed commit's message).
    #[serde(default)]
    pub title: String,
}

#[derive(Deserialize, Default)]
struct Page {
    #[serde(default)]
    items: Vec<OpenCl>,
}

#[derive(Deserialize)]
struct ClFile {
    path: String,
}

impl MegaPush {
    /// Pushes to the Mega server at `base` (no trailing `/`).
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> Result<Self, RemoteError> {
        let base = base.trim_end_matches('/').to_string();
        let root = HttpPush::new(Endpoint {
            url: format!("{base}/.git"),
            token: token.clone(),
            timeout,
        })?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("scorpio/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RemoteError::Unreachable {
                url: base.clone(),
                reason: e.to_string(),
            })?;
        Ok(MegaPush {
            base,
            token,
            timeout,
            root,
            client,
        })
    }

    /// The receive-pack endpoint of repository path `path` (`""` is the root).
    pub fn endpoint(&self, path: &str) -> Endpoint {
        let p = path.trim_matches('/');
        Endpoint {
            url: if p.is_empty() {
                format!("{}/.git", self.base)
            } else {
                format!("{}/{p}.git", self.base)
            },
            token: self.token.clone(),
            timeout: self.timeout,
        }
    }

    /// The refs `path`'s endpoint advertises.
    pub async fn refs(&self, path: &str) -> Result<BTreeMap<String, Oid>, RemoteError> {
        self.endpoint(path).refs(&self.client).await
    }

    /// Sends `pack` to `path`'s endpoint, updating `refname` from `old` to `new` (refused when
    /// the advertised ref is not at `old`).
    pub async fn push_to(
        &self,
        path: &str,
        refname: &str,
        old: Oid,
        new: Oid,
        pack: Vec<u8>,
    ) -> Result<(), PushError> {
        self.endpoint(path)
            .push(&self.client, refname, old, new, pack)
            .await
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Vec<u8>, RemoteError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.client.request(method, &url).timeout(self.timeout);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| RemoteError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        if !resp.status().is_success() {
            return Err(RemoteError::Http {
                url,
                status: resp.status().as_u16(),
            });
        }
        Ok(resp
            .bytes()
            .await
            .map_err(|e| RemoteError::Unreachable {
                url,
                reason: e.to_string(),
            })?
            .to_vec())
    }

    /// The open CLs, newest first (`POST /api/v1/cl/list`; it does not say a CL's path).
    pub async fn open_cls(&self) -> Result<Vec<OpenCl>, RemoteError> {
        let body = serde_json::json!({
            "additional": {"status": "open", "asc": false},
            "pagination": {"page": 1, "per_page": 100},
        });
        let raw = self
            .api(reqwest::Method::POST, "/api/v1/cl/list", Some(body))
            .await?;
        Ok(common::<Page>(&self.base, &raw)?.items)
    }

    /// The paths a CL changes, relative to the CL's own path (`GET .../files-list`).
    pub async fn cl_paths(&self, link: &str) -> Result<Vec<String>, RemoteError> {
        let raw = self
            .api(
                reqwest::Method::GET,
                &format!("/api/v1/cl/{link}/files-list"),
                None,
            )
            .await?;
        let files: Vec<ClFile> = common(&self.base, &raw)?;
        Ok(files.into_iter().map(|f| f.path).collect())
    }
}

/// The `data` of a Mega `CommonResult` body.
fn common<T: serde::de::DeserializeOwned + Default>(
    url: &str,
    raw: &[u8],
) -> Result<T, RemoteError> {
    #[derive(Deserialize)]
    struct Common<T> {
        #[serde(default)]
        req_result: bool,
        data: Option<T>,
        #[serde(default)]
        err_message: String,
    }
    let c: Common<T> = serde_json::from_slice(raw).map_err(|e| RemoteError::Protocol {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    if !c.req_result {
        return Err(RemoteError::Protocol {
            url: url.to_string(),
            reason: c.err_message,
        });
    }
    Ok(c.data.unwrap_or_default())
}

#[async_trait::async_trait]
impl super::Push for MegaPush {
    fn target(&self) -> String {
        self.root.target()
    }

    async fn refname(&self, configured: Option<&str>) -> Result<String, PushError> {
        self.root.refname(configured).await
    }

    async fn push(
        &self,
        refname: &str,
        old: Oid,
        new: Oid,
        pack: Vec<u8>,
    ) -> Result<(), PushError> {
        self.root.push(refname, old, new, pack).await
    }

    fn mega(&self) -> Option<&MegaPush> {
        Some(self)
    }
}
