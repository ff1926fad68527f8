//! `scorpio doctor`: checks what a mount needs, for the user who runs it, one line per check
//! with the fix when it fails; the command exits 1 when a check fails (a start would fail).

use std::path::Path;

use crate::config::Config;
use crate::privacy::is_root;

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
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        Ok(_) => Ok("/dev/fuse opens read-write".to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(
            "/dev/fuse is missing: load the module (modprobe fuse) or, in a container, pass the device in"
                .to_string(),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(format!(
            "/dev/fuse: {e}: distributions ship it mode 0666 (as root: chmod 0666 /dev/fuse, or a \
             udev rule KERNEL==\"fuse\", MODE=\"0666\")"
        )),
        Err(e) => Err(format!("/dev/fuse: {e}")),
    }
}

/// `fusermount3` on `PATH`: a plain user mounts through it, so it must be setuid root.
fn fusermount() -> Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| d.join("fusermount3"))
        .find(|p| p.is_file())
        .ok_or_else(|| "fusermount3 not found in PATH (apt-get install fuse3)".to_string())?;
    if is_root() {
        return Ok(format!("{} (not needed as root)", found.display()));
    }
    let m = std::fs::metadata(&found).map_err(|e| format!("{}: {e}", found.display()))?;
    if m.uid() != 0 || m.mode() & 0o4000 == 0 {
        return Err(format!(
            "{} is not setuid root, so a plain user cannot mount with it (as root: chown root {0} \
             && chmod u+s {0}, as the fuse3 package installs it)",
            found.display()
        ));
    }
    Ok(format!("{} is setuid root", found.display()))
}

/// The store: writable, and the daemon's user's own (its state is private to that user).
fn store_writable(store: &Path) -> Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    std::fs::create_dir_all(store).map_err(|e| format!("{}: {e}", store.display()))?;
    let me = rustix::process::geteuid().as_raw();
    let owner = std::fs::metadata(store)
        .map_err(|e| format!("{}: {e}", store.display()))?
        .uid();
    if owner != me {
        return Err(format!(
            "{} belongs to uid {owner}, not to uid {me} who runs the daemon (chown -R it, or set \
             store_path to a directory of your own)",
            store.display()
        ));
    }
    let probe = tempfile::NamedTempFile::new_in(store)
        .map_err(|e| format!("{} is not writable: {e}", store.display()))?;
    drop(probe);
    Ok(format!("{} is yours and writable", store.display()))
}

/// The workspace: a directory (or one that can be made) the daemon's user may mount on. A plain
/// user needs write access to it (`fusermount3` asks); a stale mount is cleared at start.
fn workspace(ws: &Path) -> Result<String, String> {
    use rustix::fs::{access, Access};
    match std::fs::metadata(ws) {
        Ok(m) if !m.is_dir() => Err(format!("{} is not a directory", ws.display())),
        Ok(_) if !is_root() && access(ws, Access::WRITE_OK).is_err() => Err(format!(
            "{}: you may not write to it, so fusermount3 will not mount on it (use a directory of \
             your own)",
            ws.display()
        )),
        Ok(_) => Ok(format!("{} can be mounted on", ws.display())),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(format!(
            "{}: a mount left by a crashed run; the daemon clears it at start",
            ws.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = ws
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            // The nearest existing ancestor is where the daemon will create it.
            let mut base = parent;
            while !base.exists() {
                match base.parent() {
                    Some(p) if !p.as_os_str().is_empty() => base = p,
                    _ => break,
                }
            }
            access(base, Access::WRITE_OK)
                .map(|_| format!("{} will be created", ws.display()))
                .map_err(|e| {
                    format!(
                        "{} cannot be created in {}: {e}",
                        ws.display(),
                        base.display()
                    )
                })
        }
        Err(e) => Err(format!("{}: {e}", ws.display())),
    }
}

/// `allow_other`: who may enter the mounts, and whether fusermount3 will let a plain user say so.
fn allow_other(on: bool) -> Result<String, String> {
    use crate::privacy::{allow_other_permitted, FUSE_CONF};
    match (on, is_root()) {
        (true, true) => Ok("other users may enter the mounts (allow_other); file modes still apply".into()),
        (false, true) => Ok("allow_other = false: only root may enter the mounts".into()),
        (false, false) => Ok("only you may enter your mounts (allow_other = false)".into()),
        (true, false) if allow_other_permitted() => Ok(format!(
            "{FUSE_CONF} has user_allow_other: other users may enter your mounts; file modes still apply"
        )),
        (true, false) => Err(format!(
            "allow_other = true needs a `user_allow_other` line in {FUSE_CONF} for a plain user \
             (as root: echo user_allow_other >> {FUSE_CONF}); or set allow_other = false"
        )),
    }
}

/// Runs every check; the remote check resolves the configured ref.
pub async fn run(cfg: &Config) -> Vec<Check> {
    let mut checks = vec![
        check("fuse device", dev_fuse()),
        check("fusermount3", fusermount()),
        check("store", store_writable(&cfg.store_path)),
        check("workspace", workspace(&cfg.workspace)),
        check("allow_other", allow_other(cfg.allow_other)),
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
