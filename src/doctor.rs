//! `scorpio doctor`: checks what a mount needs, one line per check.

use std::path::Path;

use crate::config::Config;

/// One check's outcome.
#[derive(Debug)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// Detail for people.
    pub detail: String,
}

fn check(name: &'static str, r: Result<String, String>) -> Check {
    match r {
        Ok(detail) => Check {
            name,
            ok: true,
            detail,
        },
        Err(detail) => Check {
            name,
            ok: false,
            detail,
        },
    }
}

fn dev_fuse() -> Result<String, String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map(|_| "/dev/fuse opens read-write".to_string())
        .map_err(|e| format!("/dev/fuse: {e} (install fuse3, or run with access to /dev/fuse)"))
}

fn fusermount() -> Result<String, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("fusermount3"))
        .find(|p| p.is_file())
        .map(|p| format!("{}", p.display()))
        .ok_or_else(|| "fusermount3 not found in PATH (apt-get install fuse3)".to_string())
}

fn store_writable(store: &Path) -> Result<String, String> {
    std::fs::create_dir_all(store).map_err(|e| format!("{}: {e}", store.display()))?;
    let probe = tempfile::NamedTempFile::new_in(store)
        .map_err(|e| format!("{} is not writable: {e}", store.display()))?;
    drop(probe);
    Ok(format!("{} is writable", store.display()))
}

/// Runs every check; the remote check resolves the configured ref.
pub async fn run(cfg: &Config) -> Vec<Check> {
    let mut checks = vec![
        check("fuse device", dev_fuse()),
        check("fusermount3", fusermount()),
        check("store", store_writable(&cfg.store_path)),
    ];
    let remote = match crate::remote::from_config(cfg) {
        Ok(r) => {
            match tokio::time::timeout(cfg.request_timeout * 2, r.resolve(cfg.refname.as_deref()))
                .await
            {
                Ok(Ok(c)) => Ok(format!(
                    "{} remote resolves {} to {}",
                    r.kind(),
                    cfg.refname.as_deref().unwrap_or("HEAD"),
                    c.oid
                )),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the remote did not answer in time".into()),
            }
        }
        Err(e) => Err(e.to_string()),
    };
    checks.push(check("remote", remote));
    checks
}
