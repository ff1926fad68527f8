//! `scorpio antares mount|umount|list`: the Antares API over HTTP, for people and CI scripts.
//!
//! `mount` prints the mountpoint alone on stdout (so `cd "$(scorpio antares mount src)"` works);
//! `list` prints one line per mount. Exit codes as for the other commands: 0 done, 1 refused
//! (the message says why), 3 not reachable.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::cli::AntaresCmd;
use crate::config::Config;

pub use crate::client::Outcome;

/// The API's base URL: the standalone server, or the daemon's nested routes.
pub fn base_url(cfg: &Config, via_daemon: bool) -> String {
    if via_daemon {
        format!("http://{}/antares", cfg.http_addr)
    } else {
        format!("http://{}", cfg.antares.bind)
    }
}

/// Runs one client subcommand (`serve` is not one: it returns code 2).
pub async fn run(cfg: &Config, via_daemon: bool, cmd: &AntaresCmd) -> Outcome {
    let base = base_url(cfg, via_daemon);
    match cmd {
        AntaresCmd::Serve { .. } => Outcome {
            code: 2,
            text: "`serve` runs the server; it is not a client command".into(),
        },
        AntaresCmd::Mount {
            path,
            job_id,
            cl,
            mountpoint,
            upper_dir,
            labels,
            readonly,
        } => {
            let mut map = BTreeMap::new();
            for l in labels {
                let Some((k, v)) = l.split_once('=') else {
                    return Outcome {
                        code: 2,
                        text: format!("label {l:?} is not key=value"),
                    };
                };
                map.insert(k.to_string(), v.to_string());
            }
            let body = json!({
                "path": path, "job_id": job_id, "cl": cl, "mountpoint": mountpoint,
                "upper_dir": upper_dir, "labels": map, "readonly": readonly,
            });
            call(
                cfg,
                reqwest::Method::POST,
                &format!("{base}/mounts"),
                Some(body),
            )
            .await
            .map(|v| {
                v.get("mountpoint")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            })
        }
        AntaresCmd::Umount { id, job } => {
            let url = if *job {
                format!("{base}/mounts/by-job/{id}")
            } else {
                format!("{base}/mounts/{id}")
            };
            call(cfg, reqwest::Method::DELETE, &url, None)
                .await
                .map(|v| {
                    v.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("deleted")
                        .to_string()
                })
        }
        AntaresCmd::List => call(cfg, reqwest::Method::GET, &format!("{base}/mounts"), None)
            .await
            .map(|v| {
                let mounts = v.get("mounts").and_then(Value::as_array);
                mounts
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("-");
                        format!(
                            "{} {:<12} {:<10} /{} {}",
                            s("mount_id"),
                            s("state"),
                            s("job_id"),
                            s("path"),
                            s("mountpoint")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
    }
}

/// The JSON answer of a successful call, or the outcome to exit with.
struct Answer(Result<Value, Outcome>);

impl Answer {
    fn map(self, f: impl FnOnce(Value) -> String) -> Outcome {
        match self.0 {
            Ok(v) => Outcome {
                code: 0,
                text: f(v),
            },
            Err(o) => o,
        }
    }
}

async fn call(cfg: &Config, method: reqwest::Method, url: &str, body: Option<Value>) -> Answer {
    let what = format!("the Antares API at {url}");
    Answer(crate::client::request(cfg, &what, method, url, body).await)
}
