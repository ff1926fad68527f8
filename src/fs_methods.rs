//! rfuse3's `Filesystem` signatures, spelled once, and the macros that write methods from them.
//!
//! Scorpio has several `Filesystem` implementations (Dicfuse, the overlay, the workspace
//! router, the read-only subtree adapter); most of their methods hand a request on or refuse
//! it, and every one repeated the trait's long signatures. Here each signature has one home
//! (`fs_sig!`), and three macros write methods from it inside an `impl Filesystem`:
//! - `forward!(via: name, ...)`: hand the request on through
//!   `via!(self, ino, |fs, i| fs.name(req, i, ...).await)`, every other argument unchanged;
//!   `forward!(attr via: getattr, setattr)` also gives the reply the kernel's number.
//! - `refuse!(libc::ERRNO: name, ...)`: answer the error.
//! - `method!(fn name(self, req, arg, ...) { body })`: the caller's body, with the caller's
//!   names for the arguments (in the trait's order).
//!
//! [`relist`] renumbers a directory listing on its way to the kernel, for a filesystem whose
//! numbers are not the kernel's.
//!
//! No module of the crate is imported: this is a leaf, below every filesystem that uses it.

use futures::stream::{self, Stream, StreamExt};
use rfuse3::Result;

/// The signature of `Filesystem` method `$name`, handed to `$cb!{$($pre)* ; name <lifetime>
/// (arguments after `req`) -> reply}`. The first argument is the inode the request is about.
macro_rules! fs_sig {
    ($cb:ident {$($pre:tt)*} getattr) => { $cb!{$($pre)*; getattr<>(inode: u64, fh: Option<u64>, flags: u32) -> ReplyAttr} };
    ($cb:ident {$($pre:tt)*} setattr) => { $cb!{$($pre)*; setattr<>(inode: u64, fh: Option<u64>, set_attr: SetAttr) -> ReplyAttr} };
    ($cb:ident {$($pre:tt)*} readlink) => { $cb!{$($pre)*; readlink<>(inode: u64) -> ReplyData} };
    ($cb:ident {$($pre:tt)*} symlink) => { $cb!{$($pre)*; symlink<>(parent: u64, name: &OsStr, link: &OsStr) -> ReplyEntry} };
    ($cb:ident {$($pre:tt)*} mknod) => { $cb!{$($pre)*; mknod<>(parent: u64, name: &OsStr, mode: u32, rdev: u32) -> ReplyEntry} };
    ($cb:ident {$($pre:tt)*} mkdir) => { $cb!{$($pre)*; mkdir<>(parent: u64, name: &OsStr, mode: u32, umask: u32) -> ReplyEntry} };
    ($cb:ident {$($pre:tt)*} unlink) => { $cb!{$($pre)*; unlink<>(parent: u64, name: &OsStr) -> ()} };
    ($cb:ident {$($pre:tt)*} rmdir) => { $cb!{$($pre)*; rmdir<>(parent: u64, name: &OsStr) -> ()} };
    ($cb:ident {$($pre:tt)*} rename) => { $cb!{$($pre)*; rename<>(parent: u64, name: &OsStr, new_parent: u64, new_name: &OsStr) -> ()} };
    ($cb:ident {$($pre:tt)*} rename2) => { $cb!{$($pre)*; rename2<>(parent: u64, name: &OsStr, new_parent: u64, new_name: &OsStr, flags: u32) -> ()} };
    ($cb:ident {$($pre:tt)*} link) => { $cb!{$($pre)*; link<>(inode: u64, new_parent: u64, new_name: &OsStr) -> ReplyEntry} };
    ($cb:ident {$($pre:tt)*} open) => { $cb!{$($pre)*; open<>(inode: u64, flags: u32) -> ReplyOpen} };
    ($cb:ident {$($pre:tt)*} read) => { $cb!{$($pre)*; read<>(inode: u64, fh: u64, offset: u64, size: u32) -> ReplyData} };
    ($cb:ident {$($pre:tt)*} write) => { $cb!{$($pre)*; write<>(inode: u64, fh: u64, offset: u64, data: &[u8], write_flags: u32, flags: u32) -> ReplyWrite} };
    ($cb:ident {$($pre:tt)*} statfs) => { $cb!{$($pre)*; statfs<>(inode: u64) -> ReplyStatFs} };
    ($cb:ident {$($pre:tt)*} release) => { $cb!{$($pre)*; release<>(inode: u64, fh: u64, flags: u32, lock_owner: u64, flush: bool) -> ()} };
    ($cb:ident {$($pre:tt)*} fsync) => { $cb!{$($pre)*; fsync<>(inode: u64, fh: u64, datasync: bool) -> ()} };
    ($cb:ident {$($pre:tt)*} setxattr) => { $cb!{$($pre)*; setxattr<>(inode: u64, name: &OsStr, value: &[u8], flags: u32, position: u32) -> ()} };
    ($cb:ident {$($pre:tt)*} getxattr) => { $cb!{$($pre)*; getxattr<>(inode: u64, name: &OsStr, size: u32) -> ReplyXAttr} };
    ($cb:ident {$($pre:tt)*} listxattr) => { $cb!{$($pre)*; listxattr<>(inode: u64, size: u32) -> ReplyXAttr} };
    ($cb:ident {$($pre:tt)*} removexattr) => { $cb!{$($pre)*; removexattr<>(inode: u64, name: &OsStr) -> ()} };
    ($cb:ident {$($pre:tt)*} opendir) => { $cb!{$($pre)*; opendir<>(inode: u64, flags: u32) -> ReplyOpen} };
    ($cb:ident {$($pre:tt)*} readdir) => { $cb!{$($pre)*; readdir<'a>(parent: u64, fh: u64, offset: i64) -> ReplyDirectory<impl Stream<Item = Result<DirectoryEntry>> + Send + 'a>} };
    ($cb:ident {$($pre:tt)*} readdirplus) => { $cb!{$($pre)*; readdirplus<'a>(parent: u64, fh: u64, offset: u64, lock_owner: u64) -> ReplyDirectoryPlus<impl Stream<Item = Result<DirectoryEntryPlus>> + Send + 'a>} };
    ($cb:ident {$($pre:tt)*} releasedir) => { $cb!{$($pre)*; releasedir<>(inode: u64, fh: u64, flags: u32) -> ()} };
    ($cb:ident {$($pre:tt)*} fsyncdir) => { $cb!{$($pre)*; fsyncdir<>(inode: u64, fh: u64, datasync: bool) -> ()} };
    ($cb:ident {$($pre:tt)*} access) => { $cb!{$($pre)*; access<>(inode: u64, mask: u32) -> ()} };
    ($cb:ident {$($pre:tt)*} create) => { $cb!{$($pre)*; create<>(parent: u64, name: &OsStr, mode: u32, flags: u32) -> ReplyCreated} };
    ($cb:ident {$($pre:tt)*} fallocate) => { $cb!{$($pre)*; fallocate<>(inode: u64, fh: u64, offset: u64, length: u64, mode: u32) -> ()} };
}

/// `forward!(via: name, ...)` and `forward!(attr via: name, ...)`: see the module doc.
macro_rules! forward {
    ($via:ident: $($name:ident),+ $(,)?) => {
        $( fs_sig!(forward {@plain $via} $name); )+
    };
    (attr $via:ident: $($name:ident),+ $(,)?) => {
        $( fs_sig!(forward {@attr $via} $name); )+
    };
    (@plain $via:ident; $name:ident<>($ino:ident: u64 $(, $arg:ident: $ty:ty)*) -> $ret:ty) => {
        async fn $name(&self, req: Request, $ino: u64 $(, $arg: $ty)*) -> Result<$ret> {
            $via!(self, $ino, |fs, i| fs.$name(req, i $(, $arg)*).await)
        }
    };
    (@attr $via:ident; $name:ident<>($ino:ident: u64 $(, $arg:ident: $ty:ty)*) -> $ret:ty) => {
        async fn $name(&self, req: Request, $ino: u64 $(, $arg: $ty)*) -> Result<$ret> {
            let mut a = $via!(self, $ino, |fs, i| fs.$name(req, i $(, $arg)*).await)?;
            a.attr.ino = $ino;
            Ok(a)
        }
    };
}

/// `refuse!(ERRNO: name, ...)`: see the module doc.
macro_rules! refuse {
    ($errno:path: $($name:ident),+ $(,)?) => {
        $( fs_sig!(refuse {@one $errno} $name); )+
    };
    (@one $errno:path; $name:ident<>($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        async fn $name(&self, _: Request $(, _: $ty)*) -> Result<$ret> {
            Err($errno.into())
        }
    };
}

/// `method!(fn name(self, req, arg, ...) { body })`: see the module doc.
macro_rules! method {
    (fn $name:ident($s:ident, $req:ident $(, $n:ident)* $(,)?) $body:block) => {
        fs_sig!(method {@one $s, $req, [$($n),*], $body} $name);
    };
    (@one $s:ident, $req:ident, [$($n:ident),*], $body:block;
        $name:ident<$($lt:lifetime)?>($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        async fn $name<$($lt)?>(&$($lt)? $s, $req: Request $(, $n: $ty)*) -> Result<$ret> $body
    };
}

/// A directory listing with every entry passed through `renumber`, ready for the kernel.
pub(crate) async fn relist<T>(
    entries: impl Stream<Item = Result<T>>,
    renumber: impl FnMut(&mut T),
) -> stream::Iter<std::vec::IntoIter<Result<T>>> {
    let mut v: Vec<Result<T>> = entries.collect().await;
    v.iter_mut().flatten().for_each(renumber);
    stream::iter(v)
}
