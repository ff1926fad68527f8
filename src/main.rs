//! The `scorpio` binary: parse the CLI and config, then run the daemon or a subcommand.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

use scorpio::cli::{exit, AntaresCmd, Cli, Cmd, ConfigCmd};
use scorpio::config::{Config, ConfigError};
use scorpio::fuse::mount;
use scorpio::fuse::router::WorkspaceFs;
use scorpio::fuse::workspace_mount::WorkspaceMount;
use scorpio::workspace::WritablePaths;
use scorpio::{daemon, doctor, remote};

/// mimalloc serves the daemon's allocations: a cold walk allocates and frees a name, a listing
/// and a reply per entry across threads, and glibc's malloc (its consolidation and free-list
/// upkeep) was about a fifth of the daemon's CPU time there. Built without transparent huge
/// pages (`no_thp`): with them the walk's resident memory grew by half.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        None | Some(Cmd::Run)
            | Some(Cmd::Antares {
                cmd: AntaresCmd::Serve { .. },
                ..
            })
    ) {
        // First, before the daemon opens any file: the FUSE sessions must never run short.
        raise_fd_limit();
    }
    if let Some(Cmd::Completions { shell }) = cli.command {
        // Needs no config: a package or a user's dotfiles run it anywhere.
        clap_complete::generate(
            shell,
            &mut <Cli as clap::CommandFactory>::command(),
            "scorpio",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    if let Some(Cmd::Config {
        cmd: ConfigCmd::Init { path, force },
    }) = &cli.command
    {
        // Needs no config: it writes one.
        return config_init(&cli, path.as_deref(), *force);
    }
    let cfg = match Config::load(cli.config.as_deref(), &cli.overrides()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("scorpio: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    // Said by what reads the config for itself; the API clients (mount, list, ...) stay quiet.
    if matches!(
        cli.command,
        None | Some(Cmd::Run | Cmd::Doctor | Cmd::Config { .. })
            | Some(Cmd::Antares {
                cmd: AntaresCmd::Serve { .. },
                ..
            })
    ) {
        for w in cfg.warnings() {
            eprintln!("scorpio: warning: {w}");
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(log_filter(
            &cfg.log_level,
        )))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("scorpio: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command.clone().unwrap_or(Cmd::Run) {
        Cmd::Doctor => {
            let checks = rt.block_on(doctor::run(&cfg));
            for c in &checks {
                println!(
                    "{} {:<12} {}",
                    if c.ok { "ok  " } else { "FAIL" },
                    c.name,
                    c.detail
                );
            }
            if checks.iter().all(|c| c.ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Cmd::Mount { path, cl } => api(
            &rt,
            &cfg,
            reqwest::Method::POST,
            "/api/fs/mount",
            Some(serde_json::json!({"path": path, "cl": cl})),
        ),
        Cmd::Umount { path } => api(
            &rt,
            &cfg,
            reqwest::Method::POST,
            "/api/fs/unmount",
            Some(serde_json::json!({"path": path})),
        ),
        Cmd::Status { path } => api(
            &rt,
            &cfg,
            reqwest::Method::GET,
            &query("/api/git/status", path.as_deref()),
            None,
        ),
        Cmd::Diff { path } => api(
            &rt,
            &cfg,
            reqwest::Method::GET,
            &query("/api/git/diff", path.as_deref()),
            None,
        ),
        Cmd::Commit { message, path } => api(
            &rt,
            &cfg,
            reqwest::Method::POST,
            "/api/git/commit",
            Some(serde_json::json!({"message": message, "path": path})),
        ),
        Cmd::Push { path } => api(
            &rt,
            &cfg,
            reqwest::Method::POST,
            "/api/git/push",
            Some(serde_json::json!({"path": path})),
        ),
        Cmd::Pull => api(
            &rt,
            &cfg,
            reqwest::Method::POST,
            "/api/git/pull",
            Some(serde_json::json!({})),
        ),
        Cmd::Reset { path } => api(
            &rt,
            &cfg,
            reqwest::Method::POST,
            "/api/git/reset",
            Some(serde_json::json!({"path": path})),
        ),
        // Answered above, before the config.
        Cmd::Completions { .. }
        | Cmd::Config {
            cmd: ConfigCmd::Init { .. },
        } => ExitCode::SUCCESS,
        Cmd::Config {
            cmd: ConfigCmd::Validate,
        } => {
            // Loading validated every value; a failure exited 2 above.
            match &cli.config {
                Some(p) => println!("{}: ok", p.display()),
                None => println!("ok (no config file: the environment, flags and defaults)"),
            }
            ExitCode::SUCCESS
        }
        Cmd::Config {
            cmd: ConfigCmd::Show,
        } => {
            print!("{}", cfg.show_text());
            ExitCode::SUCCESS
        }
        Cmd::List => api(&rt, &cfg, reqwest::Method::GET, "/api/fs/mpoint", None),
        Cmd::Stats => {
            let out = rt.block_on(scorpio::client::stats(&cfg));
            if out.code == 0 {
                println!("{}", out.text);
            } else {
                eprintln!("scorpio: {}", out.text);
            }
            ExitCode::from(out.code)
        }
        Cmd::Prefetch { path, depth, blobs } => {
            let out = rt.block_on(scorpio::prefetch::cli::run(&cfg, &path, depth, blobs));
            if out.code == 0 {
                println!("{}", out.text);
            } else {
                eprintln!("scorpio: {}", out.text);
            }
            ExitCode::from(out.code)
        }
        Cmd::Antares {
            cmd: AntaresCmd::Serve { .. },
            ..
        } => exit(rt.block_on(scorpio::antares::serve::run(cfg))),
        Cmd::Antares { via_daemon, cmd } => {
            let out = rt.block_on(scorpio::antares::cli::run(&cfg, via_daemon, &cmd));
            if out.code == 0 {
                println!("{}", out.text);
            } else {
                eprintln!("scorpio: {}", out.text);
            }
            ExitCode::from(out.code)
        }
        Cmd::Run => exit(rt.block_on(run(cfg))),
    }
}

/// `scorpio config init`: writes the commented config to `--path`, else the `-c` file, else
/// `./scorpio.toml`.
fn config_init(cli: &Cli, path: Option<&std::path::Path>, force: bool) -> ExitCode {
    let path = path
        .or(cli.config.as_deref())
        .unwrap_or(std::path::Path::new("scorpio.toml"));
    match scorpio::config::write_template(path, cli.remote.as_deref(), force) {
        Ok(()) => {
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("scorpio: {e}");
            ExitCode::from(exit::FAILED)
        }
    }
}

/// The workspace's FUSE mount failed: the context of that error, so [`exit`] finds it.
#[derive(Debug, thiserror::Error)]
#[error("cannot mount at {0}")]
struct MountFailed(std::path::PathBuf);

/// The exit of a daemon (see `cli::exit`): 0; 2 for a start-up error the user can fix (a
/// [`ConfigError`] naming the key and its source); 4 for an address it cannot listen on (also
/// named so); 5 for a workspace it cannot mount; 1 for anything else. Printed once, on stderr.
fn exit(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scorpio: {e:#}");
            let code = match e.downcast_ref::<ConfigError>() {
                Some(c) if c.is_bind() => exit::BIND,
                Some(_) => exit::CONFIG,
                None if e.downcast_ref::<MountFailed>().is_some() => exit::MOUNT,
                None => exit::FAILED,
            };
            ExitCode::from(code)
        }
    }
}

async fn run(cfg: Config) -> anyhow::Result<()> {
    // Umask 022 and a store an older version left world-writable made private (issue 11).
    scorpio::privacy::make_private(&cfg.store_path);
    // Before anything is mounted: a SIGTERM that arrives early must unmount, not kill.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    cfg.check_host()?;
    scorpio::fuse::mount::set_allow_other(cfg.allow_other);
    rfuse3::raw::set_read_spin(
        std::time::Duration::from_micros(cfg.fuse_spin_us),
        Some(&scorpio::busy::BACKGROUND),
    );
    mount::prepare_mountpoint(&cfg.workspace).map_err(|e| {
        match std::fs::metadata(&cfg.workspace) {
            Ok(m) if !m.is_dir() => cfg.invalid(
                "workspace",
                format!("{} is not a directory", cfg.workspace.display()),
            ),
            _ => cfg.invalid("workspace", e),
        }
    })?;
    let (store, dic) = scorpio::view::open_view(&cfg, scorpio::view::Start::Recorded).await?;
    let commit = dic.commit();
    let listener = tokio::net::TcpListener::bind(cfg.http_addr)
        .await
        .map_err(|e| cfg.cannot_listen("http_addr", cfg.http_addr, e))?;
    let router = Arc::new(WorkspaceFs::new(dic));
    let kernel = Arc::new(WorkspaceMount::new(router.as_ref().clone(), &cfg.workspace));
    let mounts = Arc::new(WritablePaths::new(
        router.clone(),
        kernel.clone(),
        &store,
        &cfg.store_path,
    )?);
    // Writable mounts are back in place before the kernel sees the workspace.
    for (path, e) in mounts.restore().await {
        tracing::error!(path, error = %e, "a writable mount from the last run could not be restored; its upper layer is kept");
    }
    // Read-only to the kernel while nothing is writable (see fuse::workspace_mount). From here
    // every way out unmounts: the session detaches its mount when dropped.
    kernel
        .mount(mounts.count().await == 0)
        .await
        .context(MountFailed(cfg.workspace.clone()))?;
    tracing::info!(workspace = %cfg.workspace.display(), commit = %commit.oid, remote = store.remote().kind(), http = %cfg.http_addr, "mounted");
    router.set_live();

    let (name, email) = cfg.commit_identity();
    let author = scorpio::vcs::commit::Author { name, email };
    let pusher = remote::pusher_from_config(&cfg).context("cannot set up pushing")?;
    let vcs = scorpio::vcs::Vcs::open(
        router.dicfuse().clone(),
        store.tree("vcs")?,
        &cfg.store_path,
        author,
        pusher,
        cfg.refname.clone(),
    )?;
    // Prefetch jobs, and the background listing of `prefetch_depth` levels from the root and
    // from each writable path (the mount does not wait for it).
    let prefetch =
        scorpio::prefetch::Prefetcher::new(router.dicfuse().clone(), cfg.fetch_concurrency);
    let mut preload_from = vec![String::new()];
    preload_from.extend(mounts.list().await.into_iter().map(|m| m.path));
    for path in preload_from {
        let (p, depth) = (prefetch.clone(), cfg.prefetch_depth);
        tokio::spawn(async move { p.preload(&path, depth).await });
    }
    // Per-job mounts (Antares) share this daemon's read-only view; each is its own session.
    let antares = scorpio::antares::Antares::open(
        router.dicfuse().clone(),
        scorpio::antares::Settings::from_config(&cfg),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the Antares state: {e}"))?;
    antares.preload_with(prefetch.clone(), cfg.antares.preload_depth);
    for (id, why) in antares.restore().await {
        tracing::error!(id, reason = why, "an antares mount could not be restored");
    }
    let state = daemon::AppState::new(commit.oid.to_hex())
        .with_antares(antares.clone())
        .with_mounts(mounts.clone())
        .with_vcs(Arc::new(vcs))
        .with_prefetch(prefetch, cfg.prefetch_depth)
        .with_auth_token(cfg.auth_token.clone());
    state.set_mount_count(1 + mounts.count().await);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = daemon::router(state);
    let server = tokio::spawn(scorpio::http::serve::serve(listener, app, async {
        let _ = stop_rx.await;
    }));
    // The workspace is mounted and the listener bound (connections queue until served).
    scorpio::service::ready(&format!(
        "commit {} mounted at {}; API on {}",
        commit.oid,
        cfg.workspace.display(),
        cfg.http_addr
    ));

    tokio::select! {
        r = kernel.ended() => {
            tracing::warn!(result = ?r, "the FUSE session ended (unmounted from outside?)");
        }
        _ = sigterm.recv() => tracing::info!("SIGTERM: unmounting"),
        _ = sigint.recv() => tracing::info!("SIGINT: unmounting"),
    }
    scorpio::service::stopping();
    // Requests get 503 while the Antares sessions go.
    antares.shutdown().await;
    let _ = stop_tx.send(());
    kernel
        .unmount(Duration::from_secs(10))
        .await
        .with_context(|| format!("cannot unmount {}", cfg.workspace.display()))?;
    store.flush()?;
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    drop(Arc::clone(&store));
    tracing::info!("unmounted; bye");
    Ok(())
}

/// Lets the daemon keep one open file per open file of its users, and more.
fn raise_fd_limit() {
    if let Ok(l) = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .ok_or(())
    {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(l),
                maximum: Some(l),
            },
        );
    }
}

/// The user's filter, with rfuse3's per-request warnings (unaligned writes, reply sizes) kept
/// out unless the user asks for rfuse3 by name.
fn log_filter(user: &str) -> String {
    if user.contains("rfuse3") {
        user.to_string()
    } else {
        format!("{user},rfuse3=error")
    }
}

fn api(
    rt: &tokio::runtime::Runtime,
    cfg: &Config,
    m: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> ExitCode {
    let out = rt.block_on(scorpio::client::call(cfg, m, path, body));
    if out.code == 0 {
        println!("{}", out.text);
    } else {
        eprintln!("scorpio: {}", out.text);
    }
    ExitCode::from(out.code)
}

/// `route?path=<p>` with `p` percent-encoded, or just `route`.
fn query(route: &str, path: Option<&str>) -> String {
    match path {
        Some(p) => {
            let enc: String = p
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_./~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{route}?path={enc}")
        }
        None => route.to_string(),
    }
}
