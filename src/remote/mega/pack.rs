//! The `mega` remote's packs. A `/third-party/<name>` directory is a repository of its own on
//! Mega, and its upload-pack (`/third-party/<name>.git/git-upload-pack`) answers any `want`
//! with every object of that repository in one stream, without deltas (checked against
//! `mono`): one request instead of one per blob. That is what a stat or a read of many of its
//! files is worth, and what `git clone` of it costs.
//!
//! Monorepo paths have no pack here: Mega's `<path>.git` makes a commit of its own for the path
//! on the first request (a write on the server for a read), and holds the path's current tree,
//! not necessarily the mounted one.

use std::time::Instant;

use bytes::Bytes;
use reqwest::Method;

use super::super::pack::{PackReader, SideBand};
use super::super::{PackObject, PackSummary, PackUnit, RemoteError};
use super::cl::advertised;
use super::MegaRemote;
use crate::remote::smart_http::pkt_line;

/// The pack of the `/third-party` repository that holds `path`, when it has a plain name
/// (anything else is left to single requests rather than quoted into a URL).
pub(super) fn third_party_unit(path: &str) -> Option<PackUnit> {
    let mut parts = path.trim_matches('/').split('/');
    let (Some("third-party"), Some(name)) = (parts.next(), parts.next()) else {
        return None;
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.starts_with('.') || !name.chars().all(plain) {
        return None;
    }
    Some(PackUnit {
        root: format!("third-party/{name}"),
        endpoint: format!("/third-party/{name}.git"),
    })
}

impl MegaRemote {
    /// Asks for `unit`'s `main` and streams its pack to `sink` (see [`crate::remote::Remote::pack`]).
    pub(super) async fn stream_pack(
        &self,
        unit: &PackUnit,
        max_bytes: u64,
        sink: tokio::sync::mpsc::Sender<PackObject>,
    ) -> Result<PackSummary, RemoteError> {
        let refs_path = format!("{}/info/refs", unit.endpoint);
        let (_, body) = self
            .fetch(Method::GET, &refs_path, &[("service", "git-upload-pack")])
            .await?;
        let refs = advertised(&body);
        let want = ["refs/heads/main", "HEAD"]
            .iter()
            .find_map(|n| refs.iter().find(|(_, name)| name == n))
            .map(|(id, _)| id.clone())
            .ok_or_else(|| RemoteError::NotFound {
                what: format!("{}{refs_path}: no main", self.opts.base_url),
            })?;
        let mut request = pkt_line(
            format!(
                "want {want} side-band-64k ofs-delta agent=scorpio/{}\n",
                env!("CARGO_PKG_VERSION")
            )
            .as_bytes(),
        );
        request.extend_from_slice(b"0000");
        request.extend(pkt_line(b"done\n"));

        let url = format!("{}{}/git-upload-pack", self.opts.base_url, unit.endpoint);
        let timeout = || RemoteError::Timeout {
            url: url.clone(),
            secs: self.opts.request_timeout.as_secs(),
        };
        let unreachable = |e: reqwest::Error| RemoteError::Unreachable {
            url: url.clone(),
            reason: super::error_chain(&e),
        };
        // One of the requests in flight, for as long as the pack streams.
        let _permit = self
            .permit(&url, Instant::now() + self.opts.request_timeout)
            .await?;
        tracing::debug!(url, %want, "pack request");
        let mut req = self
            .http
            .request(Method::POST, &url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-git-upload-pack-request",
            )
            .body(request);
        if let Some(t) = &self.opts.token {
            req = req.bearer_auth(t);
        }
        let mut resp = tokio::time::timeout(self.opts.request_timeout, req.send())
            .await
            .map_err(|_| timeout())?
            .map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(RemoteError::Http {
                url: url.clone(),
                status: resp.status().as_u16(),
            });
        }
        let protocol = |e: super::super::pack::PackError| RemoteError::Protocol {
            url: url.clone(),
            reason: e.to_string(),
        };
        let mut band = SideBand::default();
        let mut reader = PackReader::default();
        let mut summary = PackSummary::default();
        let mut data = Vec::new();
        let mut objects = Vec::new();
        loop {
            // The whole pack may take long; each piece of it must come within the deadline.
            let chunk: Option<Bytes> =
                tokio::time::timeout(self.opts.request_timeout, resp.chunk())
                    .await
                    .map_err(|_| timeout())?
                    .map_err(unreachable)?;
            let Some(chunk) = chunk else { break };
            band.feed(&chunk, &mut data).map_err(protocol)?;
            summary.bytes += data.len() as u64;
            reader
                .feed(&data, &mut |o| objects.push(o))
                .map_err(protocol)?;
            data.clear();
            for o in objects.drain(..) {
                if sink.send(o).await.is_err() {
                    // Nobody wants the rest.
                    return Ok(finish(summary, &reader));
                }
                summary.objects += 1;
            }
            if reader.done() || band.ended() {
                break;
            }
            if summary.bytes >= max_bytes {
                tracing::info!(
                    url,
                    bytes = summary.bytes,
                    max_bytes,
                    "pack cut short at its bound; the rest is fetched file by file"
                );
                return Ok(finish(summary, &reader));
            }
        }
        if !reader.done() {
            return Err(RemoteError::Protocol {
                url,
                reason: format!(
                    "the pack ended after {} of {} objects",
                    reader.progress().0,
                    reader.progress().1
                ),
            });
        }
        Ok(finish(summary, &reader))
    }
}

fn finish(mut summary: PackSummary, reader: &PackReader) -> PackSummary {
    let (read, announced) = reader.progress();
    summary.announced = announced;
    summary.dropped = reader.dropped;
    summary.too_big = reader.too_big;
    summary.complete = reader.done() && read == announced;
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plainly_named_third_party_repository_is_a_pack() {
        let unit = third_party_unit("third-party/lib-1.2_x/src/a").expect("unit");
        assert_eq!(unit.root, "third-party/lib-1.2_x");
        assert_eq!(unit.endpoint, "/third-party/lib-1.2_x.git");
        assert_eq!(
            third_party_unit("/third-party/lib/").expect("unit").root,
            "third-party/lib"
        );
        for none in [
            "",
            "third-party",
            "project/third-party/x",
            "third-party/.hidden",
            "third-party/a b",
            "third-party/a?b",
            "third-party/a#b",
            "third-party/%2e%2e",
        ] {
            assert_eq!(third_party_unit(none), None, "{none:?}");
        }
    }
}
