//! The tests' one HTTP client: blocking, a fresh TCP connection per request, the answer read
//! until the server closes (tests run on plain threads). [`request`], [`get`] and [`post`] speak
//! to the daemon's API; [`send`] and [`send_url`] to any server (the test Mega server too);
//! [`exchange`] sends a head written by hand, for tests of how a server takes odd requests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long a request waits for the answer to go on.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// An answer: the status, the head as text, the two headers tests look at, and the body.
#[derive(Debug)]
pub struct Response {
    /// The status code; 0 when the server closed without a status line.
    pub status: u16,
    /// The status line and the headers (without the blank line that ends them).
    pub head: String,
    /// `Content-Length`, if sent and a number.
    pub content_length: Option<u64>,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// Everything after the head.
    pub body: Vec<u8>,
}

impl Response {
    /// Splits what the server sent into head and body.
    fn parse(raw: &[u8]) -> Response {
        let (head, body) = match raw.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(at) => (&raw[..at], raw[at + 4..].to_vec()),
            None => (raw, Vec::new()),
        };
        let head = String::from_utf8_lossy(head).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut r = Response {
            status,
            head,
            content_length: None,
            content_type: None,
            body,
        };
        r.content_length = r.header("content-length").and_then(|v| v.parse().ok());
        r.content_type = r.header("content-type").map(str::to_string);
        r
    }

    /// The value of the first header called `name` (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Why a request got no answer: no connection, or the request could not be sent.
#[derive(Debug)]
pub struct Error {
    connect: bool,
    source: std::io::Error,
}

impl Error {
    /// Whether nothing could be connected to (no server listening, or none in time).
    pub fn is_connect(&self) -> bool {
        self.connect
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.connect { "connect" } else { "send" };
        write!(f, "{what}: {}", self.source)
    }
}

/// Writes `head` (the request line and headers, up to and including the blank line) and then
/// `body` on a fresh connection to `addr`, the body from another thread so that a server that
/// answers before reading all of it is still heard, and reads until the server closes or
/// `read_timeout` passes without a byte. What came by then is the answer.
pub fn exchange(
    addr: &str,
    head: &str,
    body: Vec<u8>,
    connect_timeout: Option<Duration>,
    read_timeout: Duration,
) -> Result<Response, Error> {
    let connect = |source| Error {
        connect: true,
        source,
    };
    let mut s = match connect_timeout {
        None => TcpStream::connect(addr).map_err(connect)?,
        Some(t) => {
            let to: SocketAddr = addr
                .to_socket_addrs()
                .map_err(connect)?
                .next()
                .ok_or_else(|| connect(std::io::ErrorKind::AddrNotAvailable.into()))?;
            TcpStream::connect_timeout(&to, t).map_err(connect)?
        }
    };
    let sending = |source| Error {
        connect: false,
        source,
    };
    s.set_read_timeout(Some(read_timeout)).map_err(sending)?;
    s.write_all(head.as_bytes()).map_err(sending)?;
    let writer = if body.is_empty() {
        None
    } else {
        let mut w = s.try_clone().map_err(sending)?;
        Some(std::thread::spawn(move || {
            let _ = w.write_all(&body);
        }))
    };
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(Response::parse(&raw))
}

/// Sends `method path` to `addr` as HTTP/1.0 with `headers` and `body` (and its length).
pub fn send(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Response, Error> {
    let mut head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    exchange(addr, &head, body, None, READ_TIMEOUT)
}

/// [`send`] to a whole URL, `http://host:port/path?query`.
pub fn send_url(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Response, Error> {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http:// URL: {url}"));
    let (addr, path) = match rest.find(['/', '?']) {
        Some(at) if rest[at..].starts_with('?') => (&rest[..at], format!("/{}", &rest[at..])),
        Some(at) => (&rest[..at], rest[at..].to_string()),
        None => (rest, "/".to_string()),
    };
    send(addr, method, &path, headers, body)
}

/// Sends `method path` with an optional JSON body and bearer token; returns (status, body).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, String) {
    let body = body.unwrap_or("");
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = Vec::new();
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let r = send(addr, method, path, &headers, body.as_bytes().to_vec())
        .unwrap_or_else(|e| panic!("{method} {path} to the daemon API at {addr}: {e}"));
    assert_ne!(r.status, 0, "no status line from {addr}: {:?}", r.head);
    (r.status, r.text())
}

/// `GET path`.
pub fn get(addr: &str, path: &str) -> (u16, String) {
    request(addr, "GET", path, None, None)
}

/// `POST path` with a JSON body.
pub fn post(addr: &str, path: &str, json: &str) -> (u16, String) {
    request(addr, "POST", path, Some(json), None)
}
