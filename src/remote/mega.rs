//! The `mega` remote: the Mega HTTP API over reqwest.
//!
//! Every fetch has one deadline (`request_timeout`) that covers its retries; 5xx answers,
//! timeouts and refused connections are retried with exponential backoff inside it. A semaphore
//! bounds the requests in flight.
//!
//! Listings keep git's modes wherever the server can prove them: a raw tree is asked for by the
//! id we expect and checked against it. When Mega answers that id with an empty body (the tree
//! is not its current one at that path: the monorepo moved on, or the path is the top of a
//! `/third-party` repository, where the monorepo holds a placeholder tree) and for the root
//! (whose id we do not know), the server's current tree there is used only when it agrees, entry
//! by entry (names and ids), with the listing pinned to the mounted commit; otherwise that
//! pinned listing is used, which has no modes (files then show as 0644).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::object::{parse_tree, verify};
use super::{
    ClChange, CommitInfo, EntryKind, ListedEntry, Listing, ObjectKind, Oid, Remote, RemoteError,
    TreeEntry,
};

/// Settings for [`MegaRemote`].
#[derive(Clone, Debug)]
pub struct MegaOptions {
    /// Base URL without a trailing `/`.
    pub base_url: String,
    /// Bearer token sent with every request.
    pub token: Option<String>,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Deadline for one fetch, retries included.
    pub request_timeout: Duration,
    /// Most requests in flight.
    pub concurrency: usize,
}

/// A Mega server.
pub struct MegaRemote {
    opts: MegaOptions,
    http: reqwest::Client,
    permits: Semaphore,
}

#[derive(Deserialize)]
struct LatestCommit {
    oid: String,
    #[serde(default)]
    date: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct CommonResult<T> {
    req_result: bool,
    data: Option<T>,
    #[serde(default)]
    err_message: String,
}

#[derive(Deserialize)]
struct HashItem {
    name: String,
    content_type: String,
    oid: String,
}

mod cl;
mod pack;

const RETRY_BASE: Duration = Duration::from_millis(100);

impl MegaRemote {
    /// Builds the client.
    pub fn new(opts: MegaOptions) -> Result<MegaRemote, RemoteError> {
        let http = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .pool_max_idle_per_host(opts.concurrency)
            .user_agent(concat!("scorpio/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RemoteError::Protocol {
                url: opts.base_url.clone(),
                reason: e.to_string(),
            })?;
        let permits = Semaphore::new(opts.concurrency.max(1));
        Ok(MegaRemote {
            opts,
            http,
            permits,
        })
    }

    /// One of the requests in flight (see `concurrency`), waited for until `deadline`.
    async fn permit(
        &self,
        url: &str,
        deadline: Instant,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, RemoteError> {
        tokio::time::timeout_at(deadline.into(), self.permits.acquire())
            .await
            .map_err(|_| RemoteError::Timeout {
                url: url.to_string(),
                secs: self.opts.request_timeout.as_secs(),
            })?
            .map_err(|_| RemoteError::Unreachable {
                url: url.to_string(),
                reason: "client closed".into(),
            })
    }

    /// Sends one request with retries under one deadline; returns the successful response's
    /// headers and body.
    async fn fetch(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(reqwest::header::HeaderMap, Bytes), RemoteError> {
        let url = format!("{}{}", self.opts.base_url, path);
        let deadline = Instant::now() + self.opts.request_timeout;
        let timeout_err = || RemoteError::Timeout {
            url: url.clone(),
            secs: self.opts.request_timeout.as_secs(),
        };
        let _permit = self.permit(&url, deadline).await?;
        let mut attempt = 0u32;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout_err());
            }
            tracing::debug!(%method, url, ?query, attempt, "remote request");
            let mut req = self
                .http
                .request(method.clone(), &url)
                .query(query)
                .timeout(left);
            if let Some(t) = &self.opts.token {
                req = req.bearer_auth(t);
            }
            let outcome = match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(body) => return Ok((headers, body)),
                        Err(e) if e.is_timeout() => Err(timeout_err()),
                        Err(e) => Err(RemoteError::Unreachable {
                            url: url.clone(),
                            reason: e.to_string(),
                        }),
                    }
                }
                Ok(resp) if resp.status() == StatusCode::NOT_FOUND => {
                    return Err(RemoteError::NotFound { what: url.clone() });
                }
                Ok(resp)
                    if resp.status().is_server_error()
                        || resp.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    Err(RemoteError::Http {
                        url: url.clone(),
                        status: resp.status().as_u16(),
                    })
                }
                Ok(resp) => {
                    return Err(RemoteError::Http {
                        url: url.clone(),
                        status: resp.status().as_u16(),
                    })
                }
                Err(e) if e.is_timeout() => Err(timeout_err()),
                Err(e) => Err(RemoteError::Unreachable {
                    url: url.clone(),
                    reason: error_chain(&e),
                }),
            };
            let backoff = RETRY_BASE * 2u32.pow(attempt.min(6));
            attempt += 1;
            if Instant::now() + backoff >= deadline {
                return outcome;
            }
            tracing::debug!(%url, attempt, error = ?outcome.as_ref().err(), "retrying remote request");
            crate::metrics::global()
                .remote_retry(super::metered::kind_of_path(method == Method::HEAD, path));
            tokio::time::sleep(backoff).await;
        }
    }

    async fn pinned_listing(
        &self,
        commit: &CommitInfo,
        path: &str,
    ) -> Result<Listing, RemoteError> {
        let api_path = format!("/{path}");
        let commit_hex = commit.oid.to_hex();
        let (_, body) = self
            .fetch(
                Method::GET,
                "/api/v1/tree/content-hash",
                &[("path", &api_path), ("refs", &commit_hex)],
            )
            .await?;
        let url = format!(
            "{}/api/v1/tree/content-hash?path={api_path}",
            self.opts.base_url
        );
        let data: Vec<HashItem> = common_data(&url, &body)?;
        let mut entries = Vec::new();
        for item in data {
            let name = item.name.into_bytes();
            super::object::check_name(&name).map_err(|reason| RemoteError::Protocol {
                url: url.clone(),
                reason,
            })?;
            let kind = match item.content_type.as_str() {
                "directory" => EntryKind::Dir,
                "file" => EntryKind::File,
                other => {
                    return Err(RemoteError::Protocol {
                        url,
                        reason: format!("unknown content_type {other:?}"),
                    });
                }
            };
            let oid = Oid::from_hex(&item.oid)?;
            entries.push(ListedEntry {
                entry: TreeEntry { name, kind, oid },
                size: None,
            });
        }
        Ok(Listing {
            entries,
            exact_modes: false,
        })
    }

    /// The server's current tree at `path` when it agrees with the listing pinned to `commit`
    /// entry by entry (names and ids: then every entry is ours and only the modes are new
    /// information), else that pinned listing.
    ///
    /// The current tree's own id (hashed from the bytes as served: Mega's own trees are not in
    /// git's order) only names it in errors. It is not the directory's id in `commit` (at the
    /// top of a `/third-party` repository the parent lists a placeholder's), so the listing
    /// carries no id and the directory keeps the one its parent gave it. The modes are
    /// the current tree's: a newer commit that changed only modes here would show its modes.
    /// Inside a `/third-party` repository Mega answers the pinned listing from that repository's
    /// current state (it ignores `refs` there; the monorepo commit pins only the placeholder), so
    /// there the check only guards against a tree that moved between the two requests.
    async fn current_if_agrees(
        &self,
        commit: &CommitInfo,
        path: &str,
    ) -> Result<Listing, RemoteError> {
        let (pinned, body) =
            tokio::try_join!(self.pinned_listing(commit, path), self.raw_tree(path, None))?;
        if body.is_empty() {
            tracing::debug!(
                path,
                "no current tree on the server; using the pinned listing (no modes)"
            );
            return Ok(pinned);
        }
        let served = Oid::hash_object(ObjectKind::Tree, &body);
        let current = listing_from_raw(served, &body)?;
        if same_entries(&current, &pinned) {
            return Ok(current);
        }
        tracing::debug!(
            path,
            current = %served,
            "the current tree differs from the mounted commit's; using the pinned listing (no modes)"
        );
        Ok(pinned)
    }

    async fn raw_tree(&self, path: &str, oid: Option<Oid>) -> Result<Bytes, RemoteError> {
        let api_path = format!("/{path}");
        let hex = oid.map(|o| o.to_hex());
        let mut query = vec![("path", api_path.as_str())];
        if let Some(h) = &hex {
            query.push(("oid", h.as_str()));
        }
        Ok(self
            .fetch(Method::GET, "/api/v1/file/tree", &query)
            .await?
            .1)
    }
}

/// The `data` of a Mega `CommonResult` body, or the server's error message.
fn common_data<T: serde::de::DeserializeOwned + Default>(
    url: &str,
    body: &[u8],
) -> Result<T, RemoteError> {
    let parsed: CommonResult<T> =
        serde_json::from_slice(body).map_err(|e| RemoteError::Protocol {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    if !parsed.req_result {
        return Err(RemoteError::Protocol {
            url: url.to_string(),
            reason: parsed.err_message,
        });
    }
    Ok(parsed.data.unwrap_or_default())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Whether two listings hold the same entries (names and ids), in any order.
fn same_entries(a: &Listing, b: &Listing) -> bool {
    fn key(l: &Listing) -> Vec<(&[u8], Oid)> {
        let mut v: Vec<(&[u8], Oid)> = l
            .entries
            .iter()
            .map(|e| (e.entry.name.as_slice(), e.entry.oid))
            .collect();
        v.sort_unstable();
        v
    }
    a.entries.len() == b.entries.len() && key(a) == key(b)
}

fn listing_from_raw(oid: Oid, body: &[u8]) -> Result<Listing, RemoteError> {
    let entries = parse_tree(oid, body)?;
    Ok(Listing {
        entries: entries
            .into_iter()
            .map(|entry| ListedEntry { entry, size: None })
            .collect(),
        exact_modes: true,
    })
}

#[async_trait]
impl Remote for MegaRemote {
    fn kind(&self) -> &'static str {
        "mega"
    }

    async fn resolve(&self, refname: Option<&str>) -> Result<CommitInfo, RemoteError> {
        // A full commit id pins the mount; anything else means the server's latest commit.
        if let Some(r) = refname {
            if let Ok(oid) = Oid::from_hex(r) {
                return Ok(CommitInfo {
                    oid,
                    root_tree: None,
                    time: 0,
                });
            }
        }
        let (_, body) = self
            .fetch(Method::GET, "/api/v1/latest-commit", &[("path", "/")])
            .await?;
        let url = format!("{}/api/v1/latest-commit", self.opts.base_url);
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| RemoteError::Protocol {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        // Accept both the bare object and a `CommonResult` wrapper.
        let inner = if v.get("data").is_some_and(|d| d.get("oid").is_some()) {
            v["data"].clone()
        } else {
            v
        };
        let lc: LatestCommit =
            serde_json::from_value(inner).map_err(|e| RemoteError::Protocol {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let time = match lc.date {
            Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(0),
            Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
            _ => 0,
        };
        Ok(CommitInfo {
            oid: Oid::from_hex(&lc.oid)?,
            root_tree: None,
            time,
        })
    }

    async fn list_tree(
        &self,
        commit: &CommitInfo,
        path: &str,
        oid: Option<Oid>,
    ) -> Result<Listing, RemoteError> {
        if let Some(oid) = oid {
            let body = self.raw_tree(path, Some(oid)).await?;
            if !body.is_empty() {
                verify(ObjectKind::Tree, oid, &body)?;
                return listing_from_raw(oid, &body);
            }
            tracing::debug!(path, %oid, "tree is not the server's current one at this path");
        }
        self.current_if_agrees(commit, path).await
    }

    async fn blob(&self, oid: Oid) -> Result<Bytes, RemoteError> {
        Ok(self
            .fetch(Method::GET, &format!("/api/v1/file/blob/{oid}"), &[])
            .await?
            .1)
    }

    async fn blob_size(&self, oid: Oid) -> Result<u64, RemoteError> {
        let path = format!("/api/v1/file/blob/{oid}");
        let (headers, _) = self.fetch(Method::HEAD, &path, &[]).await?;
        headers
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| RemoteError::Protocol {
                url: format!("{}{path}", self.opts.base_url),
                reason: "HEAD without Content-Length".into(),
            })
    }

    fn pack_unit(&self, path: &str) -> Option<super::PackUnit> {
        pack::third_party_unit(path)
    }

    async fn pack(
        &self,
        unit: &super::PackUnit,
        max_bytes: u64,
        sink: tokio::sync::mpsc::Sender<super::PackObject>,
    ) -> Result<super::PackSummary, RemoteError> {
        self.stream_pack(unit, max_bytes, sink).await
    }

    /// Every size and blob is a request of its own: as many ahead of the reader as the
    /// requests this remote allows in flight, less a quarter kept for readers' own requests.
    fn ahead_concurrency(&self) -> usize {
        let all = self.opts.concurrency.max(1);
        (all - all / 4).max(1)
    }

    async fn cl_changes(
        &self,
        cl: &str,
        _base: &CommitInfo,
        at: &str,
    ) -> Result<Vec<ClChange>, RemoteError> {
        self.cl_changes_at(cl, at).await
    }
}

#[cfg(test)]
mod tests;
