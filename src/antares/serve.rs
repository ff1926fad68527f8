//! `scorpio antares serve`: the Antares API alone, without a workspace mount.
//!
//! It opens the store and the remote from the same config as the daemon, builds the one shared
//! Dicfuse of the commit, mounts again what the state file says was mounted, and serves the
//! API at `antares.bind` until SIGTERM or SIGINT. Then requests get 503 while every session is
//! unmounted, the server stops, and the process exits 0.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::signal::unix::{signal, SignalKind};

use super::{Antares, Settings};
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

/// Runs the standalone Antares daemon until SIGTERM/SIGINT.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    // Before anything is mounted: a SIGTERM that arrives early must unmount, not kill.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let (store, dic) = open_view(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.antares.bind)
        .await
        .with_context(|| format!("cannot listen on antares.bind {}", cfg.antares.bind))?;
    // Modes arrive from the kernel with the caller's umask applied; ours must not apply again.
    rustix::process::umask(rustix::fs::Mode::empty());
    let antares = Antares::open(dic, Settings::from_config(&cfg))
        .map_err(|e| anyhow::anyhow!("cannot open the Antares state: {e}"))?;
    let failed = antares.restore().await;
    tracing::info!(
        bind = %cfg.antares.bind,
        commit = antares.commit(),
        mounts = antares.count(),
        failed = failed.len(),
        "antares serving"
    );
    let app = super::api::router(antares.clone(), cfg.auth_token.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM: unmounting every antares mount"),
        _ = sigint.recv() => tracing::info!("SIGINT: unmounting every antares mount"),
    }
    // The server keeps answering (503) while the sessions go.
    antares.shutdown().await;
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    store.flush()?;
    tracing::info!("bye");
    Ok(())
}
