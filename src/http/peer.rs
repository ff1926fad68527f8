//! Who is on the other end of an API connection, and whether they may use the API.
//!
//! The API listens on loopback, where every local user can connect. A request without the
//! token is accepted only from the daemon's own user or root; anyone else needs `auth_token`.
//! The peer's uid of a loopback TCP connection is the owner of its socket, which the kernel
//! lists in `/proc/net/tcp{,6}`: the row whose local address is the peer's address and port and
//! whose remote address is ours.

use std::io::BufRead;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppError;

/// The two ends of one API connection, and the peer's uid once it has been looked up.
#[derive(Debug)]
pub struct Peer {
    /// The client's address and port.
    pub addr: SocketAddr,
    /// Our address and port on this connection.
    pub local: SocketAddr,
    uid: tokio::sync::OnceCell<Option<u32>>,
}

impl Peer {
    /// A connection from `addr` to our `local`.
    pub fn new(addr: SocketAddr, local: SocketAddr) -> Peer {
        Peer {
            addr,
            local,
            uid: tokio::sync::OnceCell::new(),
        }
    }

    /// The uid owning the peer's socket (`None`: not a local socket, or gone already); looked
    /// up at the connection's first request that needs it, then kept.
    pub async fn uid(&self) -> Option<u32> {
        let (addr, local) = (self.addr, self.local);
        *self
            .uid
            .get_or_init(|| async move {
                tokio::task::spawn_blocking(move || socket_uid(addr, local))
                    .await
                    .ok()
                    .flatten()
            })
            .await
    }
}

/// Who may call an API: the token, when one is configured, else the daemon's user and root.
#[derive(Clone, Debug, Default)]
pub struct Access {
    token: Option<Arc<String>>,
}

impl Access {
    /// Access with `token` (`None`: only the daemon's own user and root).
    pub fn new(token: Option<String>) -> Access {
        Access {
            token: token.filter(|t| !t.is_empty()).map(Arc::new),
        }
    }

    /// The token's verdict, or the peer whose uid decides (the request, whose body is not
    /// Sync, must not be held across an await). A request that did not come through a socket
    /// (no [`Peer`]: the router called in-process) is the daemon's own.
    fn token_or_peer(&self, req: &axum::extract::Request) -> Result<Option<Arc<Peer>>, NoToken> {
        match &self.token {
            Some(t) if has_token(req, t) => Ok(None),
            Some(_) => Err(NoToken),
            None => Ok(req.extensions().get::<Arc<Peer>>().cloned()),
        }
    }
}

/// A request without the configured token.
struct NoToken;

/// The 403 for a peer that is neither the daemon's user nor root.
async fn refuse_other_user(peer: Arc<Peer>) -> Option<Response> {
    let own = rustix::process::geteuid().as_raw();
    let uid = peer.uid().await;
    if uid == Some(own) || uid == Some(0) {
        return None;
    }
    let who = uid.map_or_else(|| "an unknown user".to_string(), |u| format!("uid {u}"));
    tracing::warn!(peer = %peer.addr, ?uid, "API request from another user refused");
    Some(
        AppError::new(
            StatusCode::FORBIDDEN,
            "OWNER_ONLY",
            format!(
                "this API serves only the user running the daemon (uid {own}) and root; \
                 the request came from {who}. To let other users in, set `auth_token` in \
                 the daemon's config and send it as `Authorization: Bearer <token>`"
            ),
        )
        .into_response(),
    )
}

/// Middleware enforcing [`Access`].
pub async fn guard(
    axum::extract::State(a): axum::extract::State<Access>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let refusal = match a.token_or_peer(&req) {
        Err(NoToken) => Some(unauthorized()),
        Ok(None) => None,
        Ok(Some(peer)) => refuse_other_user(peer).await,
    };
    match refusal {
        Some(r) => r,
        None => next.run(req).await,
    }
}

/// Whether `req` carries `Authorization: Bearer <token>`.
fn has_token(req: &axum::extract::Request, token: &str) -> bool {
    req.headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(token)
}

/// The 401 answer for a request without the token.
fn unauthorized() -> Response {
    AppError::new(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "missing or wrong bearer token",
    )
    .into_response()
}

/// Reads of the tables before a peer is taken for unknown: the kernel lists them in chunks, and
/// a socket can be skipped in a read when others in its hash bucket close meanwhile.
const LOOKUPS: usize = 3;

/// The uid owning the local socket at `peer` connected to `ours`, from `/proc/net/tcp{,6}`.
fn socket_uid(peer: SocketAddr, ours: SocketAddr) -> Option<u32> {
    (0..LOOKUPS).find_map(|_| socket_uid_once(peer, ours))
}

fn socket_uid_once(peer: SocketAddr, ours: SocketAddr) -> Option<u32> {
    // A v4 client of a dual-stack listener shows here as ::ffff:a.b.c.d, in its own table as
    // a.b.c.d; try both spellings in both tables.
    let v4 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => Some(SocketAddr::new(IpAddr::V4(ip), a.port())),
        IpAddr::V6(ip) => ip
            .to_ipv4_mapped()
            .map(|ip| SocketAddr::new(IpAddr::V4(ip), a.port())),
    };
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    if let (Some(p), Some(o)) = (v4(peer), v4(ours)) {
        if let Some(uid) = find("/proc/net/tcp", &hex(p), &hex(o)) {
            return Some(uid);
        }
    }
    find("/proc/net/tcp6", &hex(v6(peer)), &hex(v6(ours)))
}

/// The uid column of the row of `table` with local address `local` and remote `remote`.
fn find(table: &str, local: &str, remote: &str) -> Option<u32> {
    let f = std::fs::File::open(table).ok()?;
    std::io::BufReader::new(f)
        .lines()
        .skip(1)
        .map_while(Result::ok)
        .find_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            match cols.as_slice() {
                [_, l, r, _, _, _, _, uid, ..]
                    if l.eq_ignore_ascii_case(local) && r.eq_ignore_ascii_case(remote) =>
                {
                    uid.parse().ok()
                }
                _ => None,
            }
        })
}

/// An address as the kernel prints it in `/proc/net/tcp{,6}`: each 32-bit word of the address
/// in host byte order, then the port, in hex.
fn hex(a: SocketAddr) -> String {
    let ip = match a.ip() {
        IpAddr::V4(ip) => format!("{:08X}", u32::from_ne_bytes(ip.octets())),
        IpAddr::V6(ip) => words(ip),
    };
    format!("{ip}:{:04X}", a.port())
}

fn words(ip: Ipv6Addr) -> String {
    ip.octets()
        .chunks_exact(4)
        .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_owner_of_a_loopback_client_socket() {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(l) = std::net::TcpListener::bind(bind) else {
                continue; // no IPv6 on this box
            };
            let c = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
            let (s, peer) = l.accept().expect("accept");
            let ours = s.local_addr().expect("local");
            assert_eq!(peer, c.local_addr().expect("client addr"));
            assert_eq!(
                socket_uid(peer, ours),
                Some(rustix::process::geteuid().as_raw()),
                "{bind}"
            );
        }
    }

    #[test]
    fn spells_addresses_as_the_kernel_does() {
        assert_eq!(
            hex("127.0.0.1:8000".parse().expect("addr")),
            if cfg!(target_endian = "little") {
                "0100007F:1F40"
            } else {
                "7F000001:1F40"
            }
        );
    }
}
