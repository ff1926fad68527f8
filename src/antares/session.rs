//! One FUSE session per Antares mount.
//!
//! A writable mount is the workspace router ([`WorkspaceFs`]) with one overlay attached over the
//! whole of its view: the router already maps the kernel's root inode 1 to the overlay's root,
//! so a mount of any repository directory is served by the same code as the workspace. A
//! read-only mount serves the Dicfuse directory through [`Subtree`] on a read-only mount.
//!
//! Each session ([`Mounted`]) runs in its own task that also watches for its end: when the
//! kernel ends it (someone ran `umount` on it), the owner is told through `on_end`; when the
//! owner asks, or drops the [`LiveSession`], the task unmounts it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rfuse3::raw::Session;
use rfuse3::MountOptions;
use tokio::sync::oneshot;

use crate::dicfuse::Dicfuse;
use crate::fuse::mount;
use crate::fuse::router::WorkspaceFs;
use crate::fuse::session::Mounted;
use crate::fuse::subtree::Subtree;
use crate::ino::Slot;
use crate::overlay::OverlayFs;

/// How long a clean unmount may take before the mount is detached lazily.
const UNMOUNT_TIMEOUT: Duration = Duration::from_secs(10);

/// Called once when a session ends without being asked to, with the reason.
pub type OnEnd = Box<dyn FnOnce(String) + Send + 'static>;

/// A mounted session; [`LiveSession::unmount`] ends it (dropping it unmounts it too).
pub struct LiveSession {
    mountpoint: PathBuf,
    stop: Option<oneshot::Sender<Done>>,
}

/// Where the session's task answers an unmount with its outcome.
type Done = oneshot::Sender<std::io::Result<()>>;

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
        let mounted = Mounted::mount(session, router.clone(), mountpoint).await?;
        router.set_live();
        Ok(Self::watch(mounted, on_end))
    }

    /// Mounts Dicfuse directory `root` read-only at `mountpoint`.
    pub async fn readonly(
        dic: Arc<Dicfuse>,
        root: u64,
        mountpoint: &Path,
        on_end: OnEnd,
    ) -> std::io::Result<LiveSession> {
        let session = Session::new(options(true));
        let mounted = Mounted::mount(session, Subtree::new(dic, root), mountpoint).await?;
        Ok(Self::watch(mounted, on_end))
    }

    fn watch(mut mounted: Mounted, on_end: OnEnd) -> LiveSession {
        let (stop_tx, mut stop_rx) = oneshot::channel::<Done>();
        let mountpoint = mounted.mountpoint().to_path_buf();
        tokio::spawn(async move {
            let asked = tokio::select! {
                r = mounted.ended() => {
                    let why = match r {
                        Ok(()) => "the FUSE session ended (unmounted from outside?)".to_string(),
                        Err(e) => format!("the FUSE session failed: {e}"),
                    };
                    tracing::warn!(mountpoint = %mounted.mountpoint().display(), reason = why, "antares session ended");
                    on_end(why);
                    None
                }
                r = &mut stop_rx => Some(r),
            };
            // An ended session's mountpoint is still the owner's to clear, when it asks.
            let asked = match asked {
                Some(r) => r,
                None => stop_rx.await,
            };
            match asked {
                Ok(done) => {
                    let _ = done.send(mounted.unmount(UNMOUNT_TIMEOUT).await);
                }
                // The owner dropped its session: `mounted` goes too, and detaches the mount.
                Err(_) => drop(mounted),
            }
        });
        LiveSession {
            mountpoint,
            stop: Some(stop_tx),
        }
    }

    /// Ends the session and makes sure nothing stays mounted at the mountpoint: a clean
    /// unmount first, a lazy detach when users still hold it.
    pub async fn unmount(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let (done_tx, done_rx) = oneshot::channel();
            if stop.send(done_tx).is_ok() {
                if let Ok(r) = done_rx.await {
                    return r;
                }
            }
        }
        // The session's task is gone (its runtime is shutting down): check for ourselves.
        mount::detach_fuse(&self.mountpoint)
    }
}
