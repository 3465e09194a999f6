//! Thin, safe wrappers over the Linux calls std lacks: `SOCK_SEQPACKET` Unix sockets,
//! `SO_PEERCRED`, epoll and eventfd. Every `unsafe` block in the IPC server lives here.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

fn unix_addr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is a plain C struct for which all-zero bytes are a valid value.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "socket path must be 1..{} bytes without NUL",
                addr.sun_path.len() - 1
            ),
        ));
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let len = mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

fn new_socket(nonblocking: bool) -> io::Result<OwnedFd> {
    let mut ty = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    if nonblocking {
        ty |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: plain syscall with constant arguments; the returned fd is checked before use.
    let fd = cvt(unsafe { libc::socket(libc::AF_UNIX, ty, 0) })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Credentials of the process at the other end of a Unix socket (`SO_PEERCRED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    /// Process id.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// A listening `SOCK_SEQPACKET` Unix socket (non-blocking).
#[derive(Debug)]
pub struct SeqPacketListener {
    fd: OwnedFd,
}

impl SeqPacketListener {
    /// Create, bind to `path` and listen. The path must not exist.
    pub fn bind(path: &Path) -> io::Result<Self> {
        let fd = new_socket(true)?;
        let (addr, len) = unix_addr(path)?;
        // SAFETY: `addr` is a valid sockaddr_un of `len` bytes that lives across the call.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                len,
            )
        })?;
        // SAFETY: plain syscall on an fd we own.
        cvt(unsafe { libc::listen(fd.as_raw_fd(), 128) })?;
        Ok(SeqPacketListener { fd })
    }

    /// Accept one connection (non-blocking); the new socket is non-blocking too.
    pub fn accept(&self) -> io::Result<SeqPacket> {
        // SAFETY: null address pointers are allowed by accept4(2); the fd is ours.
        let fd = cvt(unsafe {
            libc::accept4(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        })?;
        // SAFETY: `fd` was just returned by accept4(2) and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(SeqPacket { fd })
    }
}

impl AsFd for SeqPacketListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A connected `SOCK_SEQPACKET` Unix socket: every send is one message, every recv reads one.
#[derive(Debug)]
pub struct SeqPacket {
    fd: OwnedFd,
}

impl SeqPacket {
    /// Connect (blocking socket) to the server at `path`.
    pub fn connect(path: &Path) -> io::Result<Self> {
        let fd = new_socket(false)?;
        let (addr, len) = unix_addr(path)?;
        // SAFETY: `addr` is a valid sockaddr_un of `len` bytes that lives across the call.
        cvt(unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                len,
            )
        })?;
        Ok(SeqPacket { fd })
    }

    /// A connected pair (blocking), for baselines and tests.
    pub fn pair() -> io::Result<(Self, Self)> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid array of two ints for socketpair(2) to fill.
        cvt(unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        })?;
        // SAFETY: both fds were just created by socketpair(2) and are owned by nobody else.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok((SeqPacket { fd: a }, SeqPacket { fd: b }))
    }

    /// Send one message. Never raises SIGPIPE (a closed peer is `BrokenPipe`).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the duration of the call.
        cvt_size(unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
            )
        })
    }

    /// Send one message made of the concatenation of `bufs` (one `sendmsg`, gathered by the
    /// kernel: no copy here). Never raises SIGPIPE.
    pub fn send_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: msghdr is a plain C struct for which all-zero bytes are a valid value.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = bufs.as_ptr().cast_mut().cast::<libc::iovec>();
        msg.msg_iovlen = bufs.len() as _;
        // SAFETY: `IoSlice` is guaranteed ABI-compatible with `iovec` on Unix; `msg` points to
        // `bufs.len()` of them, and they and the bytes they name outlive the call, which only
        // reads them.
        cvt_size(unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })
    }

    /// Receive one message into `buf`; returns its length (0 = peer closed).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_flags(buf, 0)
    }

    /// Receive one message; returns its *real* length, which exceeds `buf.len()` if the message
    /// was truncated (`MSG_TRUNC`).
    pub fn recv_trunc(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_flags(buf, libc::MSG_TRUNC)
    }

    fn recv_flags(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call.
        cvt_size(unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags,
            )
        })
    }

    /// Shut down the writing half (the peer reads end-of-file).
    pub fn shutdown_write(&self) -> io::Result<()> {
        // SAFETY: plain syscall on an fd we own.
        cvt(unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR) }).map(drop)
    }

    /// The peer's pid/uid/gid.
    pub fn peer_cred(&self) -> io::Result<PeerCred> {
        // SAFETY: ucred is a plain C struct for which all-zero bytes are a valid value.
        let mut cred: libc::ucred = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` and `len` are valid for writes and `len` holds the size of `cred`.
        cvt(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&raw mut cred).cast(),
                &mut len,
            )
        })?;
        Ok(PeerCred {
            pid: cred.pid,
            uid: cred.uid,
            gid: cred.gid,
        })
    }

    /// Set `SO_RCVTIMEO` (None = block forever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let tv = match timeout {
            Some(d) => libc::timeval {
                tv_sec: d.as_secs() as libc::time_t,
                tv_usec: d.subsec_micros().max(u32::from(d.is_zero())) as libc::suseconds_t,
            },
            None => libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
        };
        set_opt(self.fd.as_raw_fd(), libc::SO_RCVTIMEO, &tv)
    }

    /// Set `SO_SNDBUF` (the kernel doubles it and applies its own minimum).
    pub fn set_send_buffer(&self, bytes: usize) -> io::Result<()> {
        set_opt(
            self.fd.as_raw_fd(),
            libc::SO_SNDBUF,
            &(bytes as libc::c_int),
        )
    }

    /// Set `SO_RCVBUF`.
    pub fn set_recv_buffer(&self, bytes: usize) -> io::Result<()> {
        set_opt(
            self.fd.as_raw_fd(),
            libc::SO_RCVBUF,
            &(bytes as libc::c_int),
        )
    }
}

fn set_opt<T>(fd: RawFd, opt: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live T of the given size, as setsockopt(2) expects.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

impl AsFd for SeqPacket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// An eventfd used to wake the I/O thread.
#[derive(Debug)]
pub(crate) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain syscall with constant arguments; the fd is checked before use.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: `fd` was just returned by eventfd(2) and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd })
    }

    /// Add one to the counter (wakes a waiter). Does not allocate or block.
    ///
    /// The I/O thread watches this eventfd edge-triggered and never reads it: every write is
    /// a new edge, whatever the counter holds. Should the counter ever fill (2^64 - 2 wakes),
    /// it is reset and written again.
    pub(crate) fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64, as eventfd(2) requires.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8) };
        if n < 0 {
            self.drain();
            // SAFETY: as above; after the reset the write cannot fail for a full counter.
            let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8) };
        }
    }

    /// Reset the counter.
    fn drain(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; EAGAIN (counter already zero) is fine.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut value).cast(), 8) };
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Readiness bits.
pub(crate) const READ: u32 = libc::EPOLLIN as u32;
pub(crate) const WRITE: u32 = libc::EPOLLOUT as u32;
/// Edge-triggered: report a readiness change once instead of while it lasts.
pub(crate) const EDGE: u32 = libc::EPOLLET as u32;
/// Peer gone or socket error (always reported by epoll). A half-close is seen as a 0-byte read.
pub(crate) const HUP: u32 = (libc::EPOLLHUP | libc::EPOLLERR) as u32;

/// An epoll set keyed by u64 tokens (level-triggered unless [`EDGE`] is asked).
#[derive(Debug)]
pub(crate) struct Epoll {
    fd: OwnedFd,
}

/// One readiness event.
pub(crate) type Event = libc::epoll_event;

pub(crate) fn empty_event() -> Event {
    libc::epoll_event { events: 0, u64: 0 }
}

pub(crate) fn event_token(e: &Event) -> u64 {
    e.u64
}

pub(crate) fn event_bits(e: &Event) -> u32 {
    e.events
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the fd is checked before use.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by epoll_create1(2) and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    fn ctl(&self, op: libc::c_int, fd: BorrowedFd<'_>, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a live epoll_event; both fds are open for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd.as_raw_fd(), &mut ev) }).map(drop)
    }

    pub(crate) fn add(&self, fd: BorrowedFd<'_>, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    pub(crate) fn modify(&self, fd: BorrowedFd<'_>, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }

    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Wait for events; `timeout` None = forever. Returns how many entries of `events` are set.
    pub(crate) fn wait(
        &self,
        events: &mut [Event],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let ms = timeout.map_or(-1, |d| d.as_millis().min(i32::MAX as u128) as libc::c_int);
        let max = events.len().min(i32::MAX as usize) as libc::c_int;
        // SAFETY: `events` is valid for writes of `max` entries for the duration of the call.
        let n = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(err)
            }
        } else {
            Ok(n as usize)
        }
    }
}
