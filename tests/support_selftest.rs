//! Tests of the test-support code itself (fixtures, Mega-API server, daemon helpers); nothing
//! here runs scorpio. One module per part of tests/support.

mod support;

use std::process::Command;

use git2::{ObjectType, Oid};
use support::http::{self, Response};
use support::mega_server::MegaServer;
use support::run_with_timeout;

#[path = "support_selftest/fixtures.rs"]
mod fixtures;
#[path = "support_selftest/git_http.rs"]
mod git_http;
#[path = "support_selftest/harness.rs"]
mod harness;
#[path = "support_selftest/mega_api.rs"]
mod mega_api;
#[path = "support_selftest/mega_push.rs"]
mod mega_push;
#[path = "support_selftest/mono.rs"]
mod mono;

/// `GET url` through the tests' HTTP client.
pub(crate) fn get(url: &str) -> Response {
    send("GET", url, &[], Vec::new())
}

/// `HEAD url` through the tests' HTTP client.
pub(crate) fn head(url: &str) -> Response {
    send("HEAD", url, &[], Vec::new())
}

/// One request with headers and a body; panics when it gets no answer.
pub(crate) fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Response {
    http::send_url(method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

pub(crate) fn url(server: &MegaServer, route: &str, params: &[(&str, &str)]) -> String {
    let base = format!("{}{route}", server.url());
    reqwest::Url::parse_with_params(&base, params)
        .expect("valid URL")
        .to_string()
}

pub(crate) fn blob_url(server: &MegaServer, oid: &str) -> String {
    format!("{}/api/v1/file/blob/{oid}", server.url())
}

pub(crate) fn git(args: &[&str]) -> std::process::Output {
    let out = run_with_timeout(Command::new("git").args(args), 60);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub(crate) fn hash(kind: ObjectType, body: &[u8]) -> String {
    Oid::hash_object(kind, body)
        .expect("hash object")
        .to_string()
}
