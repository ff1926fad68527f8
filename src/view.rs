//! The read-only view of the configured commit, as both daemons open it at start: the store
//! over the remote, the commit to show, and the Dicfuse over it.

use std::sync::Arc;

use anyhow::{bail, Context};

use crate::config::Config;
use crate::dicfuse::Dicfuse;
use crate::fuse::mount;
use crate::store::Store;

/// Opens the store over the configured remote and the read-only view of its commit: the commit
/// the remote names now, or, when it cannot be reached, the one this store last served.
pub async fn open_view(cfg: &Config) -> anyhow::Result<(Arc<Store>, Arc<Dicfuse>)> {
    let remote = crate::remote::from_config(cfg).context("cannot open the remote")?;
    let store = Store::open(
        &cfg.store_path,
        remote.clone(),
        cfg.cache_mem_bytes,
        cfg.cache_disk_bytes,
    )
    .with_context(|| {
        format!(
            "cannot open the store at {} (is another scorpio using it?)",
            cfg.store_path.display()
        )
    })?;
    let remote_id = cfg.remote_id();
    let refname = cfg.refname.as_deref();
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
    let dic = Arc::new(Dicfuse::new(store.clone(), commit, uid, gid));
    Ok((store, dic))
}
