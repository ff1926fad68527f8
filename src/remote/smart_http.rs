//! Git smart HTTP, the receive side: `info/refs?service=git-receive-pack` and
//! `git-receive-pack` with a pack, reading the server's `report-status`.
//!
//! Only what a push needs: one ref update per request, no side-band, no thin packs.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Oid, RemoteError};

/// Why a push did not land.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The server's branch is not where the push started from.
    #[error("the remote {refname} is at {actual}, not at {expected}: fetch the new commit and try again")]
    Moved {
        /// The ref.
        refname: String,
        /// Where the push expected it.
        expected: String,
        /// Where it is.
        actual: String,
    },
    /// The server refused the update (non-fast-forward, hook, fsck, ...).
    #[error("the remote refused {refname}: {reason}")]
    Refused {
        /// The ref.
        refname: String,
        /// The server's words.
        reason: String,
    },
    /// The mount follows no branch (a commit id was configured as `ref`).
    #[error("the workspace is pinned to commit {0}, not a branch: set `ref` to a branch to push")]
    NoBranch(String),
    /// Transport or protocol trouble.
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// Encodes one pkt-line.
pub fn pkt_line(payload: &[u8]) -> Vec<u8> {
    let mut v = format!("{:04x}", payload.len() + 4).into_bytes();
    v.extend_from_slice(payload);
    v
}

/// Splits a pkt-line stream into payloads (`None` for a flush packet).
pub fn parse_pkt_lines(mut body: &[u8]) -> Result<Vec<Option<Vec<u8>>>, String> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if body.len() < 4 {
            return Err("truncated pkt-line header".into());
        }
        let len = std::str::from_utf8(&body[..4])
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .ok_or("bad pkt-line length")?;
        if len == 0 {
            out.push(None);
            body = &body[4..];
            continue;
        }
        if len < 4 || len > body.len() {
            return Err(format!("pkt-line length {len} out of range"));
        }
        out.push(Some(body[4..len].to_vec()));
        body = &body[len..];
    }
    Ok(out)
}

/// Parses a receive-pack ref advertisement into `ref -> oid`.
pub fn parse_advertisement(body: &[u8]) -> Result<BTreeMap<String, Oid>, String> {
    let mut refs = BTreeMap::new();
    for line in parse_pkt_lines(body)?.into_iter().flatten() {
        if line.starts_with(b"#") {
            continue;
        }
        let line = line.split(|b| *b == 0).next().unwrap_or_default();
        let text = String::from_utf8_lossy(line);
        let mut parts = text.trim_end().splitn(2, ' ');
        let (Some(oid), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        if name == "capabilities^{}" {
            continue;
        }
        refs.insert(
            name.to_string(),
            Oid::from_hex(oid).map_err(|e| e.to_string())?,
        );
    }
    Ok(refs)
}

/// Reads `report-status`: `Ok` when the pack unpacked and `refname` was updated.
pub fn parse_report(body: &[u8], refname: &str) -> Result<(), PushError> {
    let lines = parse_pkt_lines(body).map_err(|reason| RemoteError::Protocol {
        url: "git-receive-pack".into(),
        reason,
    })?;
    let mut unpacked = false;
    for line in lines.into_iter().flatten() {
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if let Some(rest) = text.strip_prefix("unpack ") {
            if rest != "ok" {
                return Err(PushError::Refused {
                    refname: refname.into(),
                    reason: format!("unpack: {rest}"),
                });
            }
            unpacked = true;
        } else if let Some(rest) = text.strip_prefix("ng ") {
            let reason = rest
                .strip_prefix(refname)
                .map(str::trim)
                .unwrap_or(rest)
                .to_string();
            return Err(PushError::Refused {
                refname: refname.into(),
                reason,
            });
        } else if text.strip_prefix("ok ").is_some_and(|r| r == refname) && unpacked {
            return Ok(());
        }
    }
    Err(PushError::Refused {
        refname: refname.into(),
        reason: "no report for the ref".into(),
    })
}

/// A receive-pack endpoint: `<url>/info/refs` and `<url>/git-receive-pack`.
pub struct Endpoint {
    /// The repository URL, e.g. `http://host/project.git`.
    pub url: String,
    /// Sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// Deadline of each request.
    pub timeout: Duration,
}

impl Endpoint {
    fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        url: &str,
    ) -> reqwest::RequestBuilder {
        let r = client.request(method, url).timeout(self.timeout);
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder, url: &str) -> Result<Vec<u8>, RemoteError> {
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                RemoteError::Timeout {
                    url: url.into(),
                    secs: self.timeout.as_secs(),
                }
            } else {
                RemoteError::Unreachable {
                    url: url.into(),
                    reason: e.to_string(),
                }
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(RemoteError::Http {
                url: url.into(),
                status: status.as_u16(),
            });
        }
        Ok(resp
            .bytes()
            .await
            .map_err(|e| RemoteError::Unreachable {
                url: url.into(),
                reason: e.to_string(),
            })?
            .to_vec())
    }

    /// The refs the server would accept updates to, with their current ids.
    pub async fn refs(
        &self,
        client: &reqwest::Client,
    ) -> Result<BTreeMap<String, Oid>, RemoteError> {
        let url = format!("{}/info/refs?service=git-receive-pack", self.url);
        let body = self
            .send(self.request(client, reqwest::Method::GET, &url), &url)
            .await?;
        parse_advertisement(&body).map_err(|reason| RemoteError::Protocol { url, reason })
    }

    /// Moves `refname` from `old` to `new`, sending `pack` (which must hold every object the
    /// server lacks). `old` must be where the server's ref is now.
    pub async fn push(
        &self,
        client: &reqwest::Client,
        refname: &str,
        old: Oid,
        new: Oid,
        pack: Vec<u8>,
    ) -> Result<(), PushError> {
        let actual = self
            .refs(client)
            .await?
            .get(refname)
            .copied()
            .unwrap_or(Oid([0; 20]));
        if actual != old {
            return Err(PushError::Moved {
                refname: refname.into(),
                expected: old.to_hex(),
                actual: actual.to_hex(),
            });
        }
        let mut body = pkt_line(
            format!(
                "{old} {new} {refname}\0report-status agent=scorpio/{}\n",
                env!("CARGO_PKG_VERSION")
            )
            .as_bytes(),
        );
        body.extend_from_slice(b"0000");
        body.extend_from_slice(&pack);
        let url = format!("{}/git-receive-pack", self.url);
        let req = self
            .request(client, reqwest::Method::POST, &url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-git-receive-pack-request",
            )
            .header(
                reqwest::header::ACCEPT,
                "application/x-git-receive-pack-result",
            )
            .body(body);
        let report = self.send(req, &url).await?;
        parse_report(&report, refname)
    }
}

/// Pushes over smart HTTP to one endpoint.
pub struct HttpPush {
    endpoint: Endpoint,
    client: reqwest::Client,
}

impl HttpPush {
    /// A pusher to `endpoint`.
    pub fn new(endpoint: Endpoint) -> Result<HttpPush, RemoteError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("scorpio/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RemoteError::Unreachable {
                url: endpoint.url.clone(),
                reason: e.to_string(),
            })?;
        Ok(HttpPush { endpoint, client })
    }
}

#[async_trait::async_trait]
impl super::Push for HttpPush {
    fn target(&self) -> String {
        self.endpoint.url.clone()
    }

    async fn refname(&self, configured: Option<&str>) -> Result<String, PushError> {
        super::branch_ref(configured)
    }

    async fn push(
        &self,
        refname: &str,
        old: Oid,
        new: Oid,
        pack: Vec<u8>,
    ) -> Result<(), PushError> {
        self.endpoint
            .push(&self.client, refname, old, new, pack)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkt_lines_round_trip() {
        let mut s = pkt_line(b"hello\n");
        s.extend_from_slice(b"0000");
        s.extend(pkt_line(b"x"));
        assert_eq!(
            parse_pkt_lines(&s).unwrap(),
            vec![Some(b"hello\n".to_vec()), None, Some(b"x".to_vec())]
        );
        assert!(parse_pkt_lines(b"00").is_err());
        assert!(parse_pkt_lines(b"0009abc").is_err());
    }

    #[test]
    fn advertisement_and_report() {
        let oid = "ce013625030ba8dba906f756967f9e9ca394464a";
        let mut adv = pkt_line(b"# service=git-receive-pack\n");
        adv.extend_from_slice(b"0000");
        adv.extend(pkt_line(
            format!("{oid} refs/heads/main\0report-status delete-refs\n").as_bytes(),
        ));
        adv.extend_from_slice(b"0000");
        let refs = parse_advertisement(&adv).unwrap();
        assert_eq!(refs["refs/heads/main"].to_hex(), oid);

        let mut ok = pkt_line(b"unpack ok\n");
        ok.extend(pkt_line(b"ok refs/heads/main\n"));
        ok.extend_from_slice(b"0000");
        assert!(parse_report(&ok, "refs/heads/main").is_ok());
        let mut ng = pkt_line(b"unpack ok\n");
        ng.extend(pkt_line(b"ng refs/heads/main non-fast-forward\n"));
        let e = parse_report(&ng, "refs/heads/main")
            .unwrap_err()
            .to_string();
        assert!(e.contains("non-fast-forward"), "{e}");
        let bad = pkt_line(b"unpack index-pack abnormal exit\n");
        assert!(parse_report(&bad, "refs/heads/main").is_err());
    }
}
