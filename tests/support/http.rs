//! A tiny blocking HTTP/1.0 client for the daemon's API (tests run on plain threads).

use std::io::{Read, Write};
use std::time::Duration;

/// Sends `method path` with an optional JSON body and bearer token; returns (status, body).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr)
        .unwrap_or_else(|e| panic!("connect to the daemon API at {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set timeout");
    let body = body.unwrap_or("");
    let mut head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("send head");
    s.write_all(body.as_bytes()).expect("send body");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = resp
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

/// `GET path`.
pub fn get(addr: &str, path: &str) -> (u16, String) {
    request(addr, "GET", path, None, None)
}

/// `POST path` with a JSON body.
pub fn post(addr: &str, path: &str, json: &str) -> (u16, String) {
    request(addr, "POST", path, Some(json), None)
}
