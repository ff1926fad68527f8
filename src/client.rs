//! The CLI side of the HTTP API: `scorpio mount|umount|list|stats` talk to the running daemon.
//!
//! Exit codes (`cli::exit`): 0 done, 1 the daemon refused (the message says why), 3 the daemon
//! is not reachable. (2 is a bad config or command line, as everywhere.)

use serde_json::Value;

use crate::cli::exit;
use crate::config::Config;

/// The outcome of one API call, ready for the terminal.
#[derive(Debug)]
pub struct Outcome {
    /// Process exit code.
    pub code: u8,
    /// What to print.
    pub text: String,
}

/// Sends one request to `url` (`what` names the API in messages) and reads its JSON answer;
/// a refusal or an unreachable API is the [`Outcome`] to print (exit 1 or 3).
pub async fn request(
    cfg: &Config,
    what: &str,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, Outcome> {
    let client = reqwest::Client::builder()
        .timeout(cfg.request_timeout * 4)
        .build()
        .map_err(|e| Outcome {
            code: exit::UNREACHABLE,
            text: format!("cannot build an HTTP client: {e}"),
        })?;
    let mut req = client.request(method, url);
    if let Some(t) = &cfg.auth_token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| Outcome {
        code: exit::UNREACHABLE,
        text: format!("{what} is not reachable: {e}"),
    })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    if status.is_success() {
        Ok(v)
    } else {
        let msg = v.get("error").and_then(Value::as_str).unwrap_or(&text);
        Err(Outcome {
            code: exit::FAILED,
            text: format!("refused ({status}): {msg}"),
        })
    }
}

/// Sends one request to the daemon named by the config.
pub async fn call(
    cfg: &Config,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Outcome {
    let url = format!("http://{}{}", cfg.http_addr, path);
    let what = format!("the daemon at {}", cfg.http_addr);
    let v = match request(cfg, &what, method, &url, body).await {
        Ok(v) => v,
        Err(o) => return o,
    };
    let text = match &v {
        Value::String(t) => t.clone(),
        other => other.to_string(),
    };
    if let Some(changes) = v.get("changes").and_then(Value::as_array) {
        let lines: Vec<String> = changes
            .iter()
            .map(|c| {
                let kind = match c.get("kind").and_then(Value::as_str) {
                    Some("added") => "A",
                    Some("deleted") => "D",
                    _ => "M",
                };
                let path = crate::vcs::names::path_from_json(c).unwrap_or_default();
                // A change a push sent to a change list (Mega): which one, and whether it
                // changed again since.
                let cl = match c.get("cl") {
                    Some(cl) => format!(
                        "  [CL {}{}]",
                        cl.get("link").and_then(Value::as_str).unwrap_or("?"),
                        match cl.get("current").and_then(Value::as_bool) {
                            Some(false) => ", changed since the push",
                            _ => "",
                        }
                    ),
                    None => String::new(),
                };
                // An edit a pull left over a change of the remote's.
                let conflict = match c.get("conflict") {
                    Some(k) => format!(
                        "  [conflict: changed in {} too]",
                        k.get("pulled").and_then(Value::as_str).unwrap_or("?")
                    ),
                    None => String::new(),
                };
                format!(
                    "{kind} {}{cl}{conflict}",
                    crate::vcs::names::quote_path(&path)
                )
            })
            .collect();
        return Outcome {
            code: exit::OK,
            text: lines.join("\n"),
        };
    }
    if !matches!(v, Value::Object(_)) {
        return Outcome {
            code: exit::OK,
            text,
        };
    }
    if let (Some(c), Some(ahead)) = (v.get("commit").and_then(Value::as_str), v.get("ahead")) {
        return Outcome {
            code: exit::OK,
            text: format!("{c} ({ahead} ahead of the mounted commit)"),
        };
    }
    let msg = v.get("message").and_then(Value::as_str).map(str::to_string);
    Outcome {
        code: exit::OK,
        text: msg.unwrap_or_else(|| serde_json::to_string_pretty(&v).unwrap_or(text)),
    }
}

/// `scorpio stats`: the daemon's `/metrics`, summed up for people (see
/// [`crate::metrics::text::summary`]).
pub async fn stats(cfg: &Config) -> Outcome {
    let url = format!("http://{}/metrics", cfg.http_addr);
    let what = format!("the daemon at {}", cfg.http_addr);
    let text = match request(cfg, &what, reqwest::Method::GET, &url, None).await {
        Ok(Value::String(t)) => t,
        Ok(other) => other.to_string(),
        Err(o) => return o,
    };
    match crate::metrics::text::summary(&text) {
        Ok(s) => Outcome { code: 0, text: s },
        Err(e) => Outcome {
            code: 1,
            text: format!("{what} answered /metrics with something else: {e}"),
        },
    }
}
