#[cfg(target_os = "macos")]
use std::env;
#[cfg(target_os = "macos")]
use std::ffi::OsStr;
#[cfg(all(target_os = "linux", feature = "unprivileged"))]
use std::ffi::OsString;
#[cfg(any(target_os = "linux", target_os = "macos"))]
use std::fs::File;
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
use std::fs::OpenOptions;
use std::io;
#[cfg(any(target_os = "linux", target_os = "macos"))]
use std::io::Write;
use std::io::{IoSlice, IoSliceMut};
use std::ops::{Deref, DerefMut};
#[cfg(any(
    all(target_os = "linux", feature = "unprivileged"),
    target_os = "freebsd",
))]
use std::os::fd::OwnedFd;
use std::os::fd::{AsFd, BorrowedFd};
#[cfg(target_os = "freebsd")]
use std::os::unix::fs::OpenOptionsExt;
#[cfg(any(
    target_os = "macos",
    all(target_os = "linux", feature = "unprivileged")
))]
use std::os::unix::io::RawFd;
#[cfg(target_os = "macos")]
use std::os::unix::io::{AsRawFd, FromRawFd};
#[cfg(any(
    all(target_os = "linux", feature = "unprivileged"),
    target_os = "macos"
))]
use std::path::Path;
use std::pin::pin;
#[cfg(target_os = "macos")]
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_notify::Notify;
use futures_util::lock::Mutex;
use futures_util::{select, FutureExt};
#[cfg(any(
    all(target_os = "linux", feature = "unprivileged"),
    target_os = "macos"
))]
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};
#[cfg(any(
    all(target_os = "linux", feature = "unprivileged"),
    target_os = "freebsd",
))]
use nix::sys::uio;
#[cfg(all(target_os = "linux", feature = "unprivileged"))]
use nix::{
    fcntl::{FcntlArg, OFlag},
    sys::socket::{ControlMessageOwned, MsgFlags},
};
#[cfg(any(
    all(target_os = "linux", feature = "unprivileged"),
    target_os = "freebsd",
))]
use tokio::io::unix::AsyncFd;
#[cfg(any(
    all(target_os = "linux", feature = "unprivileged"),
    target_os = "freebsd",
))]
use tokio::io::Interest;
#[cfg(any(
    all(target_os = "linux", feature = "unprivileged"),
    target_os = "macos"
))]
use tokio::process::Command;
#[cfg(any(target_os = "linux", target_os = "macos"))]
use tokio::task;
#[cfg(any(
    all(target_os = "linux", feature = "unprivileged"),
    target_os = "macos"
))]
use tracing::debug;
#[cfg(target_os = "freebsd")]
use tracing::warn;

use super::CompleteIoResult;
#[cfg(target_os = "macos")]
use super::{macfuse_command_failure_error, recv_fuse_fd_blocking, MACFUSE_COMMFD_TIMEOUT};
#[cfg(all(target_os = "linux", feature = "unprivileged"))]
use crate::find_fusermount3;
#[cfg(any(
    all(target_os = "linux", feature = "unprivileged"),
    target_os = "macos"
))]
use crate::MountOptions;

#[cfg(target_os = "macos")]
fn macfuse_fd_receive_error(binary_path: &Path, mount_path: &OsStr, err: io::Error) -> io::Error {
    io::Error::new(
        err.kind(),
        format!(
            "failed to receive FUSE fd from mount_macfuse: binary={}, mount={}: {}",
            binary_path.display(),
            mount_path.to_string_lossy(),
            err
        ),
    )
}

#[cfg(target_os = "macos")]
fn macfuse_fd_timeout_error(binary_path: &Path, mount_path: &OsStr) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "timed out after {:?} waiting for mount_macfuse to send FUSE fd: binary={}, mount={}",
            MACFUSE_COMMFD_TIMEOUT,
            binary_path.display(),
            mount_path.to_string_lossy()
        ),
    )
}

#[cfg(target_os = "macos")]
async fn wait_for_macfuse_fd_task(
    fd_task: &mut task::JoinHandle<io::Result<RawFd>>,
    binary_path: &Path,
    mount_path: &OsStr,
) -> io::Result<RawFd> {
    fd_task
        .await
        .map_err(|err| {
            io::Error::other(format!("wait for mount_macfuse FUSE fd task failed: {err}"))
        })?
        .map_err(|err| macfuse_fd_receive_error(binary_path, mount_path, err))
}

#[cfg(target_os = "macos")]
async fn wait_for_macfuse_fd_task_until_timeout(
    fd_task: &mut task::JoinHandle<io::Result<RawFd>>,
    binary_path: &Path,
    mount_path: &OsStr,
) -> io::Result<RawFd> {
    match tokio::time::timeout(
        MACFUSE_COMMFD_TIMEOUT,
        wait_for_macfuse_fd_task(fd_task, binary_path, mount_path),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => {
            fd_task.abort();
            Err(macfuse_fd_timeout_error(binary_path, mount_path))
        }
    }
}

#[derive(Debug)]
pub struct FuseConnection {
    // Scorpio patch: on Linux the session thread reads with `read_blocking` instead.
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    unmount_notify: Arc<Notify>,
    mode: ConnectionMode,
}

impl FuseConnection {
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    pub fn new(unmount_notify: Arc<Notify>) -> io::Result<Self> {
        #[cfg(target_os = "freebsd")]
        {
            let connection = NonBlockFuseConnection::new()?;

            Ok(Self {
                unmount_notify,
                mode: ConnectionMode::NonBlock(connection),
            })
        }

        #[cfg(target_os = "linux")]
        {
            let connection = BlockFuseConnection::new()?;

            Ok(Self {
                unmount_notify,
                mode: ConnectionMode::Block(connection),
            })
        }
    }

    #[cfg(all(target_os = "linux", feature = "unprivileged"))]
    pub async fn new_with_unprivileged(
        mount_options: MountOptions,
        mount_path: impl AsRef<Path>,
        unmount_notify: Arc<Notify>,
    ) -> io::Result<Self> {
        let connection =
            NonBlockFuseConnection::new_with_unprivileged(mount_options, mount_path).await?;
        use std::os::fd::AsRawFd;

        // Scorpio patch: the session thread reads with `read_blocking`, which only a blocking
        // connection offers; the device fd fusermount3 passed back is turned blocking again.
        let fd = connection.fd.into_inner();
        let flags = nix::fcntl::fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?;
        let flags = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags))?;
        // Nor may the daemon's children inherit the device (it came without close-on-exec):
        // one that outlived the daemon would keep a dead mount's connection open.
        nix::fcntl::fcntl(
            fd.as_raw_fd(),
            FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )?;

        Ok(Self {
            unmount_notify,
            mode: ConnectionMode::Block(BlockFuseConnection {
                file: File::from(fd),
                spinning: AtomicBool::new(true),
                read: Mutex::new(()),
                write: Mutex::new(()),
            }),
        })
    }

    #[cfg(target_os = "macos")]
    pub async fn new_with_unprivileged(
        mount_options: MountOptions,
        mount_path: impl AsRef<Path>,
        unmount_notify: Arc<Notify>,
    ) -> io::Result<Self> {
        let connection =
            BlockFuseConnection::new_with_unprivileged(mount_options, mount_path).await?;

        Ok(Self {
            unmount_notify,
            mode: ConnectionMode::Block(connection),
        })
    }

    #[cfg_attr(target_os = "linux", allow(dead_code))]
    pub async fn read_vectored<T: DerefMut<Target = [u8]> + Send + 'static>(
        &self,
        header_buf: Vec<u8>,
        data_buf: T,
    ) -> Option<CompleteIoResult<(Vec<u8>, T), usize>> {
        let mut unmount_fut = pin!(self.unmount_notify.notified().fuse());
        let mut read_fut = pin!(self.inner_read_vectored(header_buf, data_buf).fuse());

        select! {
            _ = unmount_fut => None,
            res = read_fut => Some(res)
        }
    }

    #[cfg_attr(target_os = "linux", allow(dead_code))]
    async fn inner_read_vectored<T: DerefMut<Target = [u8]> + Send + 'static>(
        &self,
        header_buf: Vec<u8>,
        data_buf: T,
    ) -> CompleteIoResult<(Vec<u8>, T), usize> {
        match &self.mode {
            #[cfg(any(target_os = "linux", target_os = "macos"))]
            ConnectionMode::Block(connection) => {
                connection.read_vectored(header_buf, data_buf).await
            }
            #[cfg(any(
                all(target_os = "linux", feature = "unprivileged"),
                target_os = "freebsd",
            ))]
            ConnectionMode::NonBlock(connection) => {
                connection.read_vectored(header_buf, data_buf).await
            }
        }
    }

    /// Scorpio patch: reads the next request on the calling thread, blocking until one comes.
    ///
    /// `None` when there is no blocking connection to read. The read ends when the connection
    /// does (unmount, or an abort through fusectl): `MountHandle::unmount` unmounts first and
    /// so ends the session thread that way.
    #[cfg(target_os = "linux")]
    pub fn read_blocking(&self, header: &mut [u8], data: &mut [u8]) -> Option<io::Result<usize>> {
        match &self.mode {
            ConnectionMode::Block(connection) => Some(connection.read_blocking(header, data)),
            #[cfg(feature = "unprivileged")]
            ConnectionMode::NonBlock(_) => None,
        }
    }

    /// Scorpio patch: registers `fd` as a backing file (`FUSE_DEV_IOC_BACKING_OPEN`); the id
    /// goes into an open reply with `FOPEN_PASSTHROUGH`. Needs CAP_SYS_ADMIN and a connection
    /// that negotiated passthrough.
    #[cfg(target_os = "linux")]
    pub fn backing_open(&self, fd: BorrowedFd<'_>) -> io::Result<i32> {
        use std::os::fd::AsRawFd;

        /// `struct fuse_backing_map`.
        #[repr(C)]
        struct BackingMap {
            fd: i32,
            flags: u32,
            padding: u64,
        }
        /// `_IOW(229, 1, struct fuse_backing_map)`.
        const FUSE_DEV_IOC_BACKING_OPEN: libc::c_ulong = 0x4010_e501;

        let map = BackingMap {
            fd: fd.as_raw_fd(),
            flags: 0,
            padding: 0,
        };
        // SAFETY: the device fd is ours; `map` is a valid fuse_backing_map for the call.
        let rc = unsafe {
            libc::ioctl(
                self.as_fd().as_raw_fd(),
                FUSE_DEV_IOC_BACKING_OPEN,
                &map as *const BackingMap,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc)
    }

    /// Scorpio patch: drops a backing id (`FUSE_DEV_IOC_BACKING_CLOSE`); files already open
    /// with it keep their backing file.
    #[cfg(target_os = "linux")]
    pub fn backing_close(&self, id: i32) -> io::Result<()> {
        use std::os::fd::AsRawFd;

        /// `_IOW(229, 2, uint32_t)`.
        const FUSE_DEV_IOC_BACKING_CLOSE: libc::c_ulong = 0x4004_e502;

        let id = id as u32;
        // SAFETY: the device fd is ours; `id` is a valid u32 for the call.
        let rc = unsafe {
            libc::ioctl(
                self.as_fd().as_raw_fd(),
                FUSE_DEV_IOC_BACKING_CLOSE,
                &id as *const u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Scorpio patch: writes one reply or notification on the calling thread, without a lock.
    ///
    /// Each `write` carries one whole message, so threads need no lock between them. The kernel
    /// may block an invalidation until a lookup in the same directory has its reply, so
    /// notifications must not be written by a thread that also writes replies.
    pub fn write_blocking(&self, data: &[u8], extend: Option<&[u8]>) -> io::Result<usize> {
        match &self.mode {
            #[cfg(any(target_os = "linux", target_os = "macos"))]
            ConnectionMode::Block(connection) => match extend {
                None => (&connection.file).write_vectored(&[IoSlice::new(data)]),
                Some(e) => (&connection.file).write_vectored(&[IoSlice::new(data), IoSlice::new(e)]),
            },
            #[cfg(any(
                all(target_os = "linux", feature = "unprivileged"),
                target_os = "freebsd",
            ))]
            ConnectionMode::NonBlock(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "notifications need a blocking connection",
            )),
        }
    }

    pub async fn write_vectored<T: Deref<Target = [u8]> + Send, U: Deref<Target = [u8]> + Send>(
        &self,
        data: T,
        body_extend_data: Option<U>,
    ) -> CompleteIoResult<(T, Option<U>), usize> {
        match &self.mode {
            #[cfg(any(target_os = "linux", target_os = "macos"))]
            ConnectionMode::Block(connection) => {
                connection.write_vectored(data, body_extend_data).await
            }
            #[cfg(any(
                all(target_os = "linux", feature = "unprivileged"),
                target_os = "freebsd",
            ))]
            ConnectionMode::NonBlock(connection) => {
                connection.write_vectored(data, body_extend_data).await
            }
        }
    }
}

#[derive(Debug)]
enum ConnectionMode {
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    Block(BlockFuseConnection),
    #[cfg(any(
        all(target_os = "linux", feature = "unprivileged"),
        target_os = "freebsd",
    ))]
    // Scorpio patch: on Linux a fusermount3 mount is made blocking too (`new_with_unprivileged`).
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    NonBlock(NonBlockFuseConnection),
}

#[cfg(any(target_os = "linux", target_os = "macos"))]
#[derive(Debug)]
struct BlockFuseConnection {
    file: File,
    /// Scorpio patch: whether the session thread polls before it sleeps ([`set_read_spin`]).
    spinning: AtomicBool,
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    read: Mutex<()>,
    write: Mutex<()>,
}

#[cfg(any(target_os = "linux", target_os = "macos"))]
impl BlockFuseConnection {
    #[cfg(target_os = "linux")]
    pub fn new() -> io::Result<Self> {
        const DEV_FUSE: &str = "/dev/fuse";

        let file = OpenOptions::new().write(true).read(true).open(DEV_FUSE)?;

        Ok(Self {
            file,
            spinning: AtomicBool::new(true),
            read: Mutex::new(()),
            write: Mutex::new(()),
        })
    }

    /// Scorpio patch: see [`FuseConnection::read_blocking`].
    #[cfg(target_os = "linux")]
    fn read_blocking(&self, header: &mut [u8], data: &mut [u8]) -> io::Result<usize> {
        let spin = SPIN_MAX_NS.load(Ordering::Relaxed);
        // While a handler waits on the runtime (a download, a listing), its caller sends
        // nothing more, and the CPU is the runtime's: no polling then.
        if spin > 0
            && self.spinning.load(Ordering::Relaxed)
            && HANDLERS_WAITING.load(Ordering::Relaxed) == 0
            && BUSY
                .get()
                .is_none_or(|b| b.load(Ordering::Relaxed) == 0)
        {
            if self.spin_for(Duration::from_nanos(spin)) {
                return self.read_now(header, data);
            }
            // Nothing came while spinning: sleep until a request comes, and spin again only if
            // it came soon (a burst, not an idle daemon).
            self.spinning.store(false, Ordering::Relaxed);
        }
        let slept = Instant::now();
        let res = self.read_now(header, data);
        if spin > 0 && slept.elapsed() < Duration::from_nanos(spin) {
            self.spinning.store(true, Ordering::Relaxed);
        }
        res
    }

    /// Polls the device (without sleeping) for at most `budget`; whether a request is waiting.
    #[cfg(target_os = "linux")]
    fn spin_for(&self, budget: Duration) -> bool {
        use std::os::fd::AsRawFd;

        let start = Instant::now();
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd, zero timeout.
            if unsafe { libc::poll(&mut pfd, 1, 0) } != 0 {
                return true;
            }
            if start.elapsed() >= budget {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// Reads one request, sleeping until one comes.
    #[cfg(target_os = "linux")]
    fn read_now(&self, header: &mut [u8], data: &mut [u8]) -> io::Result<usize> {
        use std::io::Read;

        loop {
            match (&self.file).read_vectored(&mut [IoSliceMut::new(header), IoSliceMut::new(data)])
            {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                res => return res,
            }
        }
    }

    #[cfg(target_os = "macos")]
    async fn new_with_unprivileged(
        mount_options: MountOptions,
        mount_path: impl AsRef<Path>,
    ) -> io::Result<Self> {
        use tokio::time::sleep;

        use crate::find_macfuse_mount;

        let (sock0, sock1) = match socket::socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::empty(),
        ) {
            Err(err) => return Err(err.into()),

            Ok((sock0, sock1)) => (sock0, sock1),
        };

        let binary_path = find_macfuse_mount()?;

        const ENV: &str = "_FUSE_COMMFD";

        let options = mount_options.build();

        debug!("mount options {:?}", options);

        let exec_path = match env::current_exe() {
            Ok(path) => path,
            Err(err) => return Err(err),
        };

        let mount_path = mount_path.as_ref().as_os_str().to_os_string();
        let mount_path_for_error = mount_path.clone();
        let binary_path_for_error = binary_path.clone();

        let fd0 = sock0.as_raw_fd();
        let mut binding = Command::new(&binary_path);
        let child = binding
            .env(ENV, fd0.to_string())
            .env("_FUSE_CALL_BY_LIB", "1")
            .env("_FUSE_COMMVERS", "2")
            .env("_FUSE_DAEMON_PATH", exec_path)
            .args(vec![options, mount_path])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!(
                        "spawn mount_macfuse failed: binary={}, mount={}: {}",
                        binary_path_for_error.display(),
                        mount_path_for_error.to_string_lossy(),
                        err
                    ),
                )
            })?;
        drop(sock0);

        let (child_result_tx, mut child_result_rx) = tokio::sync::oneshot::channel();
        let child_task = tokio::spawn(async move {
            let output = child.wait_with_output().await;
            let _ = child_result_tx.send(output);
        });

        let mut fd_task = task::spawn_blocking(move || {
            debug!("wait_thread start");
            recv_fuse_fd_blocking(sock1.as_raw_fd())
        });

        let fd_result = tokio::select! {
            fd_result = wait_for_macfuse_fd_task(
                &mut fd_task,
                &binary_path_for_error,
                mount_path_for_error.as_os_str(),
            ) => {
                fd_result
            }
            child_result = &mut child_result_rx => {
                match child_result {
                    Ok(Ok(output)) if output.status.success() => {
                        wait_for_macfuse_fd_task_until_timeout(
                            &mut fd_task,
                            &binary_path_for_error,
                            mount_path_for_error.as_os_str(),
                        ).await
                    }
                    Ok(Ok(output)) => {
                        Err(macfuse_command_failure_error(
                            &binary_path_for_error,
                            mount_path_for_error.as_os_str(),
                            &output,
                        ))
                    }
                    Ok(Err(err)) => {
                        Err(io::Error::new(
                            err.kind(),
                            format!(
                                "wait for mount_macfuse failed: binary={}, mount={}: {}",
                                binary_path_for_error.display(),
                                mount_path_for_error.to_string_lossy(),
                                err
                            ),
                        ))
                    }
                    Err(_) => {
                        Err(io::Error::other(format!(
                            "mount_macfuse monitor task dropped before sending FUSE fd: binary={}, mount={}",
                            binary_path_for_error.display(),
                            mount_path_for_error.to_string_lossy()
                        )))
                    }
                }
            }
            _ = sleep(MACFUSE_COMMFD_TIMEOUT) => {
                fd_task.abort();
                Err(macfuse_fd_timeout_error(
                    &binary_path_for_error,
                    mount_path_for_error.as_os_str(),
                ))
            }
        };

        let fd = match fd_result {
            Ok(fd) => fd,
            Err(err) => {
                child_task.abort();
                return Err(err);
            }
        };

        let file = unsafe { File::from_raw_fd(fd) };
        Ok(Self {
            file,
            spinning: AtomicBool::new(true),
            read: Mutex::new(()),
            write: Mutex::new(()),
        })
    }

    #[cfg_attr(target_os = "linux", allow(dead_code))]
    async fn read_vectored<T: DerefMut<Target = [u8]> + Send + 'static>(
        &self,
        mut header_buf: Vec<u8>,
        mut data_buf: T,
    ) -> CompleteIoResult<(Vec<u8>, T), usize> {
        use std::io::Read;
        use std::mem::ManuallyDrop;
        use std::os::fd::{AsRawFd, FromRawFd};

        let _guard = self.read.lock().await;
        let fd = self.file.as_raw_fd();

        let ((header_buf, data_buf), res) = task::spawn_blocking(move || {
            // Safety: when we call read, the fd is still valid, when fd is closed and file is
            // dropped, the read operation will return error
            let file = unsafe { File::from_raw_fd(fd) };
            // avoid close the file
            let mut file = ManuallyDrop::new(file);

            let res = file.read_vectored(&mut [
                IoSliceMut::new(&mut header_buf),
                IoSliceMut::new(&mut data_buf),
            ]);

            ((header_buf, data_buf), res)
        })
        .await
        .unwrap();

        ((header_buf, data_buf), res)
    }

    async fn write_vectored<T: Deref<Target = [u8]> + Send, U: Deref<Target = [u8]> + Send>(
        &self,
        data: T,
        body_extend_data: Option<U>,
    ) -> CompleteIoResult<(T, Option<U>), usize> {
        let _guard = self.write.lock().await;

        let res = {
            let body_extend_data = body_extend_data.as_deref();

            match body_extend_data {
                None => (&self.file).write_vectored(&[IoSlice::new(data.deref())]),

                Some(body_extend_data) => (&self.file)
                    .write_vectored(&[IoSlice::new(data.deref()), IoSlice::new(body_extend_data)]),
            }
        };

        match res {
            Err(err) => ((data, body_extend_data), Err(err)),
            Ok(n) => ((data, body_extend_data), Ok(n)),
        }
    }
}

#[cfg(any(
    all(target_os = "linux", feature = "unprivileged"),
    target_os = "freebsd",
))]
#[derive(Debug)]
struct NonBlockFuseConnection {
    fd: AsyncFd<OwnedFd>,
    read: Mutex<()>,
    write: Mutex<()>,
}

#[cfg(any(
    all(target_os = "linux", feature = "unprivileged"),
    target_os = "freebsd",
))]
impl NonBlockFuseConnection {
    #[cfg(any(target_os = "freebsd", target_os = "macos"))]
    fn new() -> io::Result<Self> {
        use std::io::ErrorKind;

        #[cfg(target_os = "freebsd")]
        const DEV_FUSE: &str = "/dev/fuse";

        match OpenOptions::new()
            .write(true)
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(DEV_FUSE)
        {
            Err(e) => {
                if e.kind() == ErrorKind::NotFound {
                    warn!("Cannot open {}.  Is the module loaded?", DEV_FUSE);
                }
                warn!("Cannot open {}.  err: {:?}", DEV_FUSE, e);
                Err(e)
            }
            Ok(file) => Ok(Self {
                fd: AsyncFd::new(file.into())?,
                read: Mutex::new(()),
                write: Mutex::new(()),
            }),
        }
    }

    #[cfg(all(target_os = "linux", feature = "unprivileged"))]
    #[allow(deprecated)] // Scorpio patch: AsyncFd::new, as upstream; the fd is ours.
    async fn new_with_unprivileged(
        mount_options: MountOptions,
        mount_path: impl AsRef<Path>,
    ) -> io::Result<Self> {
        use std::os::fd::{AsRawFd, FromRawFd};

        let (sock0, sock1) = match socket::socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::empty(),
        ) {
            Err(err) => return Err(err.into()),

            Ok((sock0, sock1)) => (sock0, sock1),
        };

        let binary_path = find_fusermount3()?;

        const ENV: &str = "_FUSE_COMMFD";

        let options = mount_options.build_with_unprivileged();

        debug!("mount options {:?}", options);

        let mount_path = mount_path.as_ref().as_os_str().to_os_string();

        let fd0 = sock0.as_raw_fd();
        let mut child = Command::new(binary_path)
            .env(ENV, fd0.to_string())
            .args(vec![OsString::from("-o"), options, mount_path])
            .spawn()?;

        if !child.wait().await?.success() {
            return Err(io::Error::other("fusermount run failed"));
        }

        let fd1 = sock1.as_raw_fd();
        let fd = task::spawn_blocking(move || {
            // let mut buf = vec![0; 10000]; // buf should large enough
            let mut buf = vec![]; // it seems 0 len still works well

            let mut cmsg_buf = nix::cmsg_space!([RawFd; 1]);

            let mut bufs = [IoSliceMut::new(&mut buf)];

            let msg = match socket::recvmsg::<()>(
                fd1,
                &mut bufs[..],
                Some(&mut cmsg_buf),
                MsgFlags::empty(),
            ) {
                Err(err) => return Err(err.into()),

                Ok(msg) => msg,
            };

            let fd = if let Some(ControlMessageOwned::ScmRights(fds)) = msg.cmsgs()?.next() {
                if fds.is_empty() {
                    return Err(io::Error::other("no fuse fd"));
                }

                fds[0]
            } else {
                return Err(io::Error::other("get fuse fd failed"));
            };

            Ok(fd)
        })
        .await
        .unwrap()?;

        Self::set_fd_non_blocking(fd)?;

        // Safety: fd is valid
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };

        Ok(Self {
            fd: AsyncFd::new(fd)?,
            read: Mutex::new(()),
            write: Mutex::new(()),
        })
    }

    #[cfg(all(target_os = "linux", feature = "unprivileged"))]
    fn set_fd_non_blocking(fd: RawFd) -> io::Result<()> {
        let flags = nix::fcntl::fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
        debug!(
            "set fd {:?} to non-blocking",
            OFlag::from_bits_truncate(flags)
        );
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;

        debug!("set fd {:?} to non-blocking", flags);
        nix::fcntl::fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;

        Ok(())
    }

    async fn read_vectored<T: DerefMut<Target = [u8]> + Send>(
        &self,
        mut header_buf: Vec<u8>,
        mut data_buf: T,
    ) -> CompleteIoResult<(Vec<u8>, T), usize> {
        let _guard = self.read.lock().await;

        loop {
            let mut read_guard = match self.fd.ready(Interest::READABLE | Interest::ERROR).await {
                Err(err) => return ((header_buf, data_buf), Err(err)),
                Ok(read_guard) => read_guard,
            };

            if let Ok(result) = read_guard.try_io(|fd| {
                uio::readv(
                    fd,
                    &mut [
                        IoSliceMut::new(&mut header_buf),
                        IoSliceMut::new(&mut data_buf),
                    ],
                )
                .map_err(io::Error::from)
            }) {
                return ((header_buf, data_buf), result);
            } else {
                continue;
            }
        }
    }

    async fn write_vectored<T: Deref<Target = [u8]> + Send, U: Deref<Target = [u8]> + Send>(
        &self,
        data: T,
        body_extend_data: Option<U>,
    ) -> CompleteIoResult<(T, Option<U>), usize> {
        let _guard = self.write.lock().await;

        let res = {
            let body_extend_data = body_extend_data.as_deref();

            match body_extend_data {
                None => uio::writev(&self.fd, &[IoSlice::new(data.deref())]),

                Some(body_extend_data) => uio::writev(
                    &self.fd,
                    &[IoSlice::new(data.deref()), IoSlice::new(body_extend_data)],
                ),
            }
        };

        match res {
            Err(err) => ((data, body_extend_data), Err(err.into())),
            Ok(n) => ((data, body_extend_data), Ok(n)),
        }
    }
}

impl AsFd for FuseConnection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.mode {
            #[cfg(any(target_os = "linux", target_os = "macos"))]
            ConnectionMode::Block(connection) => connection.file.as_fd(),

            #[cfg(any(
                all(target_os = "linux", feature = "unprivileged"),
                target_os = "freebsd",
            ))]
            ConnectionMode::NonBlock(connection) => connection.fd.as_fd(),
        }
    }
}

/// Scorpio patch: the most a session thread polls the device for the next request before it
/// sleeps in `read`, in nanoseconds (0: never). See [`set_read_spin`].
static SPIN_MAX_NS: AtomicU64 = AtomicU64::new(0);

/// Scorpio patch: the filesystem's count of its background work ([`set_read_spin`]).
static BUSY: std::sync::OnceLock<&'static std::sync::atomic::AtomicUsize> =
    std::sync::OnceLock::new();

/// Scorpio patch: handlers moved to the runtime and not finished yet (all sessions).
pub(crate) static HANDLERS_WAITING: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Scorpio patch: after each reply, a session thread polls the device for up to `max` before it
/// sleeps in `read`, while requests keep coming that fast. A request that finds the thread
/// asleep pays for waking it (tens of microseconds on a virtual machine whose idle CPUs halt),
/// once per request of a walk. An idle session sleeps: one poll that finds nothing stops the
/// polling until requests come within `max` of each other again. Zero turns it off.
///
/// `busy`, when given, counts the filesystem's own background work: no polling while it is not
/// zero, since that work needs the CPU more.
pub fn set_read_spin(max: Duration, busy: Option<&'static std::sync::atomic::AtomicUsize>) {
    if let Some(b) = busy {
        let _ = BUSY.set(b);
    }
    SPIN_MAX_NS.store(
        u64::try_from(max.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}
