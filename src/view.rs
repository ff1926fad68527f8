//! The read-only view of the configured commit, as both daemons open it at start: the store
//! over the remote, the commit to show, and the Dicfuse over it.

use std::sync::Arc;

use anyhow::{bail, Context};

use crate::config::Config;
use crate::dicfuse::Dicfuse;
use crate::fuse::mount;
use crate::store::{Bounds, Store};

/// Which commit a view opens on when its store already served one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The one the store served last: a workspace does not move on its own (its local commits
    /// and conflicts are relative to it); `scorpio pull` moves it. The remote is asked in the
    /// background only to say in the log how far behind it is.
    Recorded,
    /// The one the remote names now (Antares: each job starts from the newest commit).
    Newest,
}

/// Opens the store over the configured remote and the read-only view of a commit: per `start`,
/// the one the store served last or the one the remote names now; when the remote cannot be
/// reached, the one this store last served.
pub async fn open_view(cfg: &Config, start: Start) -> anyhow::Result<(Arc<Store>, Arc<Dicfuse>)> {
    let remote = crate::remote::from_config(cfg).context("cannot open the remote")?;
    let store = Store::open(&cfg.store_path, remote.clone(), Bounds::from_config(cfg))
        .with_context(|| {
            format!(
                "cannot open the store at {} (is another scorpio using it?)",
                cfg.store_path.display()
            )
        })?;
    let remote_id = cfg.remote_id();
    let refname = cfg.refname.as_deref();
    if start == Start::Recorded {
        if let Some(c) = store.inodes.recorded(&remote_id)? {
            tracing::info!(commit = %c.oid, "serving the commit this workspace showed last (scorpio pull moves it)");
            tell_if_behind(remote.clone(), cfg.refname.clone(), c.oid);
            let (uid, gid) = mount::current_ids();
            let dic = Arc::new(
                Dicfuse::new(store.clone(), c, uid, gid)
                    .with_listing_bytes(cfg.cache_listing_bytes)
                    .with_list_ahead(cfg.list_ahead),
            );
            return Ok((store, dic));
        }
    }
    let commit = match tokio::time::timeout(cfg.request_timeout, remote.resolve(refname)).await {
        Ok(Ok(c)) => c,
        failure => {
            let why = match failure {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {}s", cfg.request_timeout.as_secs()),
            };
            match store.inodes.recorded(&remote_id)? {
                Some(c) => {
                    tracing::warn!(error = %why, commit = %c.oid, "remote unreachable; serving the commit this store last mounted");
                    c
                }
                None => bail!(
                    "cannot resolve {} on the {} remote: {why}",
                    refname.unwrap_or("HEAD"),
                    remote.kind()
                ),
            }
        }
    };
    if store.inodes.bind(&remote_id, &commit)? {
        tracing::info!(commit = %commit.oid, "new commit for this store; inode table started afresh");
    }
    let (uid, gid) = mount::current_ids();
    let dic = Arc::new(
        Dicfuse::new(store.clone(), commit, uid, gid)
            .with_listing_bytes(cfg.cache_listing_bytes)
            .with_list_ahead(cfg.list_ahead),
    );
    Ok((store, dic))
}

/// Logs, once the remote answers, whether it has moved past `shown`.
fn tell_if_behind(
    remote: Arc<dyn crate::remote::Remote>,
    refname: Option<String>,
    shown: crate::remote::Oid,
) {
    tokio::spawn(async move {
        match remote.resolve(refname.as_deref()).await {
            Ok(c) if c.oid != shown => {
                tracing::info!(shown = %shown, remote = %c.oid, "the remote has a newer commit; scorpio pull moves the workspace to it")
            }
            Ok(_) => {
                tracing::debug!(commit = %shown, "the workspace shows the remote's newest commit")
            }
            Err(e) => tracing::debug!(error = %e, "could not ask the remote for its newest commit"),
        }
    });
}
