//! `scorpio antares serve`: the Antares API alone, without a workspace mount.
//!
//! It opens the store and the remote from the same config as the daemon, builds the one shared
//! Dicfuse of the commit, mounts again what the state file says was mounted, and serves the
//! API at `antares.bind` until SIGTERM or SIGINT. Then requests get 503 while every session is
//! unmounted, the server stops, and the process exits 0.

use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use super::{Antares, Settings};
use crate::config::Config;

/// Runs the standalone Antares daemon until SIGTERM/SIGINT.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    // Umask 022 and a store an older version left world-writable made private.
    crate::privacy::make_private(&cfg.store_path);
    // Before anything is mounted: a SIGTERM that arrives early must unmount, not kill.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    cfg.check_host()?;
    crate::fuse::mount::set_allow_other(cfg.allow_other);
    rfuse3::raw::set_read_spin(
        std::time::Duration::from_micros(cfg.fuse_spin_us),
        Some(&crate::busy::BACKGROUND),
    );
    let (store, dic) = crate::view::open_view(&cfg, crate::view::Start::Newest).await?;
    let listener = tokio::net::TcpListener::bind(cfg.antares.bind)
        .await
        .map_err(|e| cfg.cannot_listen("antares.bind", cfg.antares.bind, e))?;
    let antares = Antares::open(dic.clone(), Settings::from_config(&cfg))
        .map_err(|e| anyhow::anyhow!("cannot open the Antares state: {e}"))?;
    let prefetch = crate::prefetch::Prefetcher::new(dic, cfg.fetch_concurrency);
    antares.preload_with(prefetch, cfg.antares.preload_depth);
    let failed = antares.restore().await;
    tracing::info!(
        bind = %cfg.antares.bind,
        commit = antares.commit(),
        mounts = antares.count(),
        failed = failed.len(),
        "antares serving"
    );
    let app = super::api::router(
        antares.clone(),
        Some(crate::http::Access::new(cfg.auth_token.clone())),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::http::serve::serve(listener, app, async {
        let _ = stop_rx.await;
    }));
    crate::service::ready(&format!(
        "antares on {}: {} mount(s)",
        cfg.antares.bind,
        antares.count()
    ));
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM: unmounting every antares mount"),
        _ = sigint.recv() => tracing::info!("SIGINT: unmounting every antares mount"),
    }
    crate::service::stopping();
    // The server keeps answering (503) while the sessions go.
    antares.shutdown().await;
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    store.flush()?;
    tracing::info!("bye");
    Ok(())
}
