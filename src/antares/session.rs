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

use super::gate::{Gate, Gated};
use crate::dicfuse::Dicfuse;
use crate::fuse::mount;
use crate::fuse::router::WorkspaceFs;
use crate::fuse::session::Mounted;
use crate::fuse::subtree::Subtree;
use crate::ino::{RootMap, Slot};
use crate::overlay::cl::ClSwapped;
use crate::overlay::OverlayFs;
use rfuse3::notify::Notify;

/// How long a clean unmount may take before the mount is detached lazily.
const UNMOUNT_TIMEOUT: Duration = Duration::from_secs(10);

/// Called once when a session ends without being asked to, with the reason.
pub type OnEnd = Box<dyn FnOnce(String) + Send + 'static>;

/// A mounted session; [`LiveSession::unmount`] ends it (dropping it unmounts it too).
pub struct LiveSession {
    mountpoint: PathBuf,
    stop: Option<oneshot::Sender<Done>>,
    swap: Option<SwapHandle>,
}

/// What swapping the CL layer of a writable session needs: its overlay, the gate its requests
/// pass, and its channel to the kernel.
#[derive(Clone)]
pub struct SwapHandle {
    /// The overlay served.
    pub ovl: Arc<OverlayFs>,
    /// Held exclusively while the layer is swapped (see `gate`).
    pub gate: Gate,
    notify: Notify,
}

impl SwapHandle {
    /// Has the kernel drop what `changed` names, and waits until that is written. Called with
    /// the gate released (see `gate`).
    pub async fn invalidate(&self, changed: &ClSwapped) {
        // The overlay's root is the session's root inode.
        let map = RootMap::new(self.ovl.root_ino());
        for (parent, name) in &changed.entries {
            self.notify
                .clone()
                .invalid_entry(map.outward(*parent), name.clone())
                .await;
        }
        for ino in &changed.inodes {
            self.notify
                .clone()
                .invalid_inode(map.outward(*ino), 0, 0)
                .await;
        }
        crate::overlay::notifications_written().await;
    }
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
        router.attach(Slot::FIRST, None, ovl.clone()).await;
        let session = Session::new(options(false));
        router.set_notify(session.get_notify());
        let swap = SwapHandle {
            ovl,
            gate: Gate::default(),
            notify: session.get_notify(),
        };
        let gated = Gated::new(router.clone(), swap.gate.clone());
        let mounted = Mounted::mount(session, gated, mountpoint).await?;
        router.set_live();
        let mut live = Self::watch(mounted, on_end);
        live.swap = Some(swap);
        Ok(live)
    }

    /// What swapping its CL layer needs (`None` for a read-only session).
    pub fn swap(&self) -> Option<SwapHandle> {
        self.swap.clone()
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
            swap: None,
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
