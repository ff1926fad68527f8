//! The CLI side of the HTTP API: `scorpio mount|umount|list` talk to the running daemon.
//!
//! Exit codes: 0 done, 1 the daemon refused (the message says why), 3 the daemon is not
//! reachable. (2 is a bad config or command line, as everywhere.)

use serde_json::Value;

use crate::config::Config;

/// The outcome of one API call, ready for the terminal.
#[derive(Debug)]
pub struct Outcome {
    /// Process exit code.
    pub code: u8,
    /// What to print.
    pub text: String,
}

/// Sends one request to the daemon named by the config.
pub async fn call(
    cfg: &Config,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Outcome {
    let url = format!("http://{}{}", cfg.http_addr, path);
    let client = match reqwest::Client::builder()
        .timeout(cfg.request_timeout * 4)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                code: 3,
                text: format!("cannot build an HTTP client: {e}"),
            }
        }
    };
    let mut req = client.request(method, &url);
    if let Some(t) = &cfg.auth_token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                code: 3,
                text: format!("the daemon at {} is not reachable: {e}", cfg.http_addr),
            }
        }
    };
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    if status.is_success() {
        if let Some(changes) = v.get("changes").and_then(Value::as_array) {
            let lines: Vec<String> = changes
                .iter()
                .map(|c| {
                    let kind = match c.get("kind").and_then(Value::as_str) {
                        Some("added") => "A",
                        Some("deleted") => "D",
                        _ => "M",
                    };
                    format!(
                        "{kind} {}",
                        c.get("path").and_then(Value::as_str).unwrap_or_default()
                    )
                })
                .collect();
            return Outcome {
                code: 0,
                text: lines.join("\n"),
            };
        }
        if !matches!(v, Value::Object(_)) {
            return Outcome { code: 0, text };
        }
        if let (Some(c), Some(ahead)) = (v.get("commit").and_then(Value::as_str), v.get("ahead")) {
            return Outcome {
                code: 0,
                text: format!("{c} ({ahead} ahead of the mounted commit)"),
            };
        }
        let msg = v.get("message").and_then(Value::as_str).map(str::to_string);
        Outcome {
            code: 0,
            text: msg.unwrap_or_else(|| serde_json::to_string_pretty(&v).unwrap_or(text)),
        }
    } else {
        let msg = v.get("error").and_then(Value::as_str).unwrap_or(&text);
        Outcome {
            code: 1,
            text: format!("refused ({status}): {msg}"),
        }
    }
}
