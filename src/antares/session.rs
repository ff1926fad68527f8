//! One FUSE session per Antares mount.
//!
//! A writable mount is the workspace router ([`WorkspaceFs`]) with one overlay attached over the
//! whole of its view: the router already maps the kernel's root inode 1 to the overlay's root,
//! so a mount of any repository directory is served by the same code as the workspace. A
//! read-only mount serves the Dicfuse directory through [`Subtree`] on a read-only mount.
//!
//! Each session runs in its own task that also watches for its end: when the kernel ends it
//! (someone ran `umount` on it), the owner is told through `on_end`; when the owner asks, the
//! task unmounts it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rfuse3::raw::{MountHandle, Session};
use rfuse3::MountOptions;
use tokio::sync::oneshot;

use super::subtree::Subtree;
use crate::dicfuse::Dicfuse;
use crate::fuse::mount;
use crate::fuse::router::WorkspaceFs;
use crate::ino::Slot;
use crate::overlay::OverlayFs;

/// How long a clean unmount may take before the mount is detached lazily.
const UNMOUNT_TIMEOUT: Duration = Duration::from_secs(10);

/// Called once when a session ends without being asked to, with the reason.
pub type OnEnd = Box<dyn FnOnce(String) + Send + 'static>;

/// A mounted session; [`LiveSession::unmount`] ends it.
pub struct LiveSession {
    mountpoint: PathBuf,
    stop: Option<oneshot::Sender<oneshot::Sender<()>>>,
}

/// Mount options of an Antares session: like the workspace's (the kernel checks permissions
/// from the modes we report; root lets every user in), read-only when asked.
fn options(readonly: bool) -> MountOptions {
    let mut o = mount::workspace_options();
    o.fs_name("scorpio-antares").read_only(readonly);
    o
}

impl LiveSession {
    /// Mounts `ovl` (an overlay over the shared view `dic`) at `mountpoint`.
    pub async fn writable(
        dic: Arc<Dicfuse>,
        ovl: Arc<OverlayFs>,
        mountpoint: &Path,
        on_end: OnEnd,
    ) -> std::io::Result<LiveSession> {
        let router = WorkspaceFs::new(dic);
        // Attached before the kernel sees the session: nothing is cached yet to invalidate.
        router.attach(Slot::FIRST, None, ovl).await;
        let session = Session::new(options(false));
        router.set_notify(session.get_notify());
        let handle = session.mount(router.clone(), mountpoint).await?;
        router.set_live();
        Ok(Self::watch(handle, mountpoint, on_end))
    }

    /// Mounts Dicfuse directory `root` read-only at `mountpoint`.
    pub async fn readonly(
        dic: Arc<Dicfuse>,
        root: u64,
        mountpoint: &Path,
        on_end: OnEnd,
    ) -> std::io::Result<LiveSession> {
        let session = Session::new(options(true));
        let handle = session.mount(Subtree::new(dic, root), mountpoint).await?;
        Ok(Self::watch(handle, mountpoint, on_end))
    }

    fn watch(mut handle: MountHandle, mountpoint: &Path, on_end: OnEnd) -> LiveSession {
        let (stop_tx, stop_rx) = oneshot::channel::<oneshot::Sender<()>>();
        let mp = mountpoint.to_path_buf();
        tokio::spawn(async move {
            tokio::select! {
                r = &mut handle => {
                    let why = match r {
                        Ok(()) => "the FUSE session ended (unmounted from outside?)".to_string(),
                        Err(e) => format!("the FUSE session failed: {e}"),
                    };
                    tracing::warn!(mountpoint = %mp.display(), reason = why, "antares session ended");
                    on_end(why);
                }
                Ok(done) = stop_rx => {
                    match tokio::time::timeout(UNMOUNT_TIMEOUT, handle.unmount()).await {
                        Ok(Ok(())) => {}
                        other => {
                            tracing::warn!(mountpoint = %mp.display(), result = ?other.map(|r| r.map_err(|e| e.to_string())), "clean unmount failed; detaching lazily");
                        }
                    }
                    let _ = done.send(());
                }
            }
        });
        LiveSession {
            mountpoint: mountpoint.to_path_buf(),
            stop: Some(stop_tx),
        }
    }

    /// Ends the session and makes sure nothing stays mounted at the mountpoint: a clean
    /// unmount first, a lazy detach when users still hold it.
    pub async fn unmount(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let (done_tx, done_rx) = oneshot::channel();
            // A send error means the session had already ended by itself.
            if stop.send(done_tx).is_ok() {
                let _ = done_rx.await;
            }
        }
        if mount::mounted_fstype(&self.mountpoint).is_some_and(|t| t.starts_with("fuse")) {
            mount::detach(&self.mountpoint)?;
        }
        Ok(())
    }
}
