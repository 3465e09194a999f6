//! The result server: one I/O thread serving many clients over a `SOCK_SEQPACKET` socket.
//!
//! ```text
//!  pipeline thread(s)                         I/O thread
//!  Publisher::publish ── encode into a free ──► ready ──► history ring (queue_capacity slots)
//!        ▲               slot (no heap)        queue         │ one cursor per client
//!        └──────────────── free queue ◄──── evicted slot ◄───┘ send(2), non-blocking
//! ```
//! A result is encoded once, by the publisher, into a preallocated slot taken from a lock-free
//! free queue, and handed to the I/O thread through a lock-free ready queue. The I/O thread keeps
//! the last `queue_capacity` slots in a ring; each client is a cursor into it, so each client's
//! outbound queue is bounded and preallocated, and fan-out copies nothing. A client whose cursor
//! falls off the ring loses the oldest results (drop-oldest) and is told so with `Missed(n)`;
//! past `max_missed` it is disconnected. If the I/O thread itself falls behind, the publisher
//! finds no free slot and drops the result (counted) instead of waiting.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use outpost_proto::{
    self as proto, ClientMsg, ErrorCode, ErrorMsg, MAX_CLIENT_MSG, MAX_MODELS, MAX_SERVER_MSG,
    ModelInfo, RequestBody, ResponseBody, ResultMsg, ServerHello, ServerMsg, Status, Subscribe,
};

use super::sys::{self, Epoll, EventFd, PeerCred, SeqPacket, SeqPacketListener};

/// Where `outpost run` publishes results unless told otherwise (`--socket PATH`).
pub const DEFAULT_SOCKET_PATH: &str = "/run/outpost/results.sock";

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Results queued per client before the oldest are dropped (also the history ring size).
    pub queue_capacity: usize,
    /// Results in flight between publishers and the I/O thread before publishing drops.
    pub handoff_capacity: usize,
    /// A client that has missed more than this many results since it was last caught up is
    /// disconnected with `Error(TooSlow)`.
    pub max_missed: u64,
    /// Most simultaneous connections; more are refused with `Error(Busy)`.
    pub max_clients: usize,
    /// A connection must send `Hello` within this time.
    pub handshake_timeout: Duration,
    /// File mode of the socket.
    pub socket_mode: u32,
    /// If either list is non-empty, only peers whose uid is in `allow_uids` or whose gid is in
    /// `allow_gids` (checked with `SO_PEERCRED`) are served.
    pub allow_uids: Vec<u32>,
    /// See `allow_uids`.
    pub allow_gids: Vec<u32>,
    /// `SO_SNDBUF` for client sockets (None = kernel default). Smaller values make the
    /// preallocated queue, not the kernel buffer, absorb a slow client.
    pub client_send_buffer: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            queue_capacity: 256,
            handoff_capacity: 256,
            max_missed: 4096,
            max_clients: 64,
            handshake_timeout: Duration::from_secs(2),
            socket_mode: 0o660,
            allow_uids: Vec::new(),
            allow_gids: Vec::new(),
            client_send_buffer: None,
        }
    }
}

/// Server errors.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    /// The configuration is unusable.
    #[error("invalid IPC server configuration: {0}")]
    Config(&'static str),
    /// Another server is already listening on the path.
    #[error("{0} is in use by a running server")]
    InUse(PathBuf),
    /// An operating-system call failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why a publish did not queue the result. Publishing never blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The I/O thread is behind and every slot is in flight: the result was dropped (counted).
    #[error("IPC server backlogged: result dropped")]
    Backlogged,
    /// The server has shut down.
    #[error("IPC server closed")]
    Closed,
    /// The result could not be encoded (cannot happen for values built from the proto types).
    #[error("result could not be encoded: {0}")]
    Encode(proto::WireError),
}

/// A preallocated encoded result.
struct Slot {
    stream: u16,
    len: usize,
    buf: [u8; MAX_SERVER_MSG],
}

impl Slot {
    fn boxed() -> Box<Slot> {
        Box::new(Slot {
            stream: 0,
            len: 0,
            buf: [0; MAX_SERVER_MSG],
        })
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    publish_dropped: AtomicU64,
    missed_total: AtomicU64,
    disconnected_slow: AtomicU64,
    rejected: AtomicU64,
    clients: AtomicU32,
}

struct Shared {
    free: ArrayQueue<Box<Slot>>,
    ready: ArrayQueue<Box<Slot>>,
    wake: EventFd,
    io_sleeping: AtomicBool,
    stop: AtomicBool,
    counters: Counters,
    models: Mutex<heapless::Vec<ModelInfo, MAX_MODELS>>,
    started: Instant,
    queue_capacity: usize,
}

impl Shared {
    fn status(&self) -> Status {
        let c = &self.counters;
        Status {
            uptime_ms: self.started.elapsed().as_millis() as u64,
            clients: c.clients.load(Ordering::Relaxed),
            published: c.published.load(Ordering::Relaxed),
            publish_dropped: c.publish_dropped.load(Ordering::Relaxed),
            missed_total: c.missed_total.load(Ordering::Relaxed),
            disconnected_slow: c.disconnected_slow.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            your_missed: 0,
            queue_capacity: self.queue_capacity as u32,
        }
    }
}

/// A running result server. Dropping it stops the I/O thread and removes the socket file.
pub struct ResultServer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl std::fmt::Debug for ResultServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultServer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A cheap, cloneable handle the pipeline publishes through. `publish` never blocks and never
/// allocates.
#[derive(Clone)]
pub struct Publisher {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl ResultServer {
    /// Bind `path` (removing a stale socket file left by a dead server), set its mode, and start
    /// the I/O thread.
    pub fn bind(path: impl AsRef<Path>, config: ServerConfig) -> Result<ResultServer, IpcError> {
        let path = path.as_ref().to_path_buf();
        if config.queue_capacity == 0 || config.handoff_capacity == 0 {
            return Err(IpcError::Config(
                "queue_capacity and handoff_capacity must be > 0",
            ));
        }
        if config.max_clients == 0 {
            return Err(IpcError::Config("max_clients must be > 0"));
        }
        let io_err = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| IpcError::Io { what, path, source }
        };
        remove_stale_socket(&path)?;
        let listener = SeqPacketListener::bind(&path).map_err(io_err("cannot bind", &path))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(config.socket_mode))
                .map_err(io_err("cannot set the mode of", &path))?;
        }
        let slots = config.queue_capacity + config.handoff_capacity;
        let free = ArrayQueue::new(slots);
        for _ in 0..slots {
            let _ = free.push(Slot::boxed());
        }
        let shared = Arc::new(Shared {
            free,
            ready: ArrayQueue::new(slots),
            wake: EventFd::new().map_err(io_err("cannot create eventfd for", &path))?,
            io_sleeping: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
            models: Mutex::new(heapless::Vec::new()),
            started: Instant::now(),
            queue_capacity: config.queue_capacity,
        });
        let epoll = Epoll::new().map_err(io_err("cannot create epoll for", &path))?;
        epoll
            .add(listener.as_fd(), sys::READ, TOKEN_LISTENER)
            .map_err(io_err("epoll", &path))?;
        epoll
            .add(shared.wake.as_fd(), sys::READ, TOKEN_WAKE)
            .map_err(io_err("epoll", &path))?;
        let queue_cap = config.queue_capacity;
        // A packet must fit the client's send buffer (the kernel doubles SO_SNDBUF).
        // At least one maximal message (with a Missed notice) must fit.
        let batch_bytes = config.client_send_buffer.map_or(DEFAULT_BATCH_BYTES, |b| {
            b.clamp(MAX_SERVER_MSG + 16, DEFAULT_BATCH_BYTES)
        });
        let io = IoLoop {
            shared: Arc::clone(&shared),
            config,
            listener,
            epoll,
            ring: (0..queue_cap)
                .map(|_| None)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
            head: 0,
            clients: HashMap::new(),
            next_token: FIRST_CLIENT_TOKEN,
            scratch_result: Box::default(),
            scratch: vec![0; batch_bytes + MAX_SERVER_MSG].into_boxed_slice(),
            batch_bytes,
            tokens: Vec::with_capacity(256),
        };
        let thread = std::thread::Builder::new()
            .name("outpost-ipc".into())
            .spawn(move || io.run())
            .map_err(io_err("cannot start the I/O thread for", &path))?;
        log::info!("IPC result server listening on {}", path.display());
        Ok(ResultServer {
            shared,
            thread: Some(thread),
            path,
        })
    }

    /// A publisher handle (clone it freely; several threads may publish).
    pub fn publisher(&self) -> Publisher {
        Publisher {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters, as a client's `Status` request would see them.
    pub fn status(&self) -> Status {
        self.shared.status()
    }

    /// Set the model list answered to `ListModels` (at most [`MAX_MODELS`] are kept).
    pub fn set_models(&self, models: &[ModelInfo]) {
        let mut guard = self.shared.models.lock().unwrap_or_else(|e| e.into_inner());
        guard.clear();
        for m in models.iter().take(MAX_MODELS) {
            let _ = guard.push(m.clone());
        }
    }

    /// Stop the I/O thread, close every connection and remove the socket file.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("IPC I/O thread panicked");
            }
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for ResultServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn remove_stale_socket(path: &Path) -> Result<(), IpcError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(IpcError::Io {
            what: "cannot inspect",
            path: path.into(),
            source,
        }),
        Ok(meta) if !meta.file_type().is_socket() => Err(IpcError::Io {
            what: "refusing to replace non-socket",
            path: path.into(),
            source: io::Error::from(io::ErrorKind::AlreadyExists),
        }),
        Ok(_) => match SeqPacket::connect(path) {
            Ok(_) => Err(IpcError::InUse(path.into())),
            Err(_) => {
                log::info!("removing stale socket {}", path.display());
                std::fs::remove_file(path).map_err(|source| IpcError::Io {
                    what: "cannot remove stale socket",
                    path: path.into(),
                    source,
                })
            }
        },
    }
}

impl Publisher {
    /// Encode `result` into a preallocated slot and hand it to the I/O thread. Never blocks,
    /// never allocates. `Err(Backlogged)` means the result was dropped and counted.
    pub fn publish(&self, result: &ResultMsg) -> Result<(), PublishError> {
        let shared = &*self.shared;
        if shared.stop.load(Ordering::Relaxed) {
            return Err(PublishError::Closed);
        }
        let Some(mut slot) = shared.free.pop() else {
            shared
                .counters
                .publish_dropped
                .fetch_add(1, Ordering::Relaxed);
            return Err(PublishError::Backlogged);
        };
        match proto::encode_result(result, &mut slot.buf) {
            Ok(len) => slot.len = len,
            Err(e) => {
                let _ = shared.free.push(slot);
                return Err(PublishError::Encode(e));
            }
        }
        slot.stream = result.stream;
        // Cannot fail: `ready` holds as many entries as there are slots.
        if let Err(slot) = shared.ready.push(slot) {
            let _ = shared.free.push(slot);
            shared
                .counters
                .publish_dropped
                .fetch_add(1, Ordering::Relaxed);
            return Err(PublishError::Backlogged);
        }
        shared.counters.published.fetch_add(1, Ordering::Relaxed);
        // Pairs with the fence in `IoLoop::sleep`: either the I/O thread sees the slot before it
        // sleeps, or we see that it sleeps and wake it.
        fence(Ordering::SeqCst);
        if shared.io_sleeping.swap(false, Ordering::SeqCst) {
            shared.wake.notify();
        }
        Ok(())
    }

    /// Set `result.publish_ns` to now (CLOCK_REALTIME) and publish it.
    pub fn publish_now(&self, result: &mut ResultMsg) -> Result<(), PublishError> {
        result.publish_ns = now_ns();
        self.publish(result)
    }

    /// Whether the server is still running.
    pub fn is_open(&self) -> bool {
        !self.shared.stop.load(Ordering::Relaxed)
    }
}

/// Nanoseconds since the Unix epoch (the protocol's timestamp unit).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

// ---------------------------------------------------------------------------------------------
// I/O thread
// ---------------------------------------------------------------------------------------------

const TOKEN_LISTENER: u64 = 0;
const TOKEN_WAKE: u64 = 1;
const FIRST_CLIENT_TOKEN: u64 = 2;
/// Most messages in one packet.
const MAX_BATCH: usize = 256;
/// Most bytes in one packet (the protocol's limit).
const DEFAULT_BATCH_BYTES: usize = proto::MAX_PACKET;
/// Control messages (everything but results) are small; one is buffered per client.
const MAX_CTRL: usize = <ServerMsg as proto::MaxSize>::POSTCARD_MAX_SIZE;

enum Phase {
    Handshake { deadline: Instant },
    Ready,
    Subscribed(Subscribe),
}

struct Client {
    sock: SeqPacket,
    peer: PeerCred,
    phase: Phase,
    cursor: u64,
    /// Results dropped and not yet reported with `Missed`.
    missed_pending: u64,
    /// Results dropped since the client was last caught up.
    missed_run: u64,
    missed_total: u64,
    /// One pending control message (handshake, response, error).
    ctrl: Vec<u8>,
    /// Close once the pending control message is sent (or cannot be).
    close_after_ctrl: bool,
    /// Waiting for EPOLLOUT.
    write_blocked: bool,
    /// Interest currently registered with epoll.
    interest: u32,
}

enum Fate {
    Keep,
    Close,
}

struct IoLoop {
    shared: Arc<Shared>,
    config: ServerConfig,
    listener: SeqPacketListener,
    epoll: Epoll,
    /// Slot for result number `n` is `ring[n % cap]`, valid for `head - cap <= n < head`.
    ring: Box<[Option<Box<Slot>>]>,
    head: u64,
    clients: HashMap<u64, Client>,
    next_token: u64,
    scratch_result: Box<ResultMsg>,
    /// Re-encoded (filtered) results of one batch.
    scratch: Box<[u8]>,
    /// Packet size limit for batches.
    batch_bytes: usize,
    /// Reused list of client tokens (so the loop does not allocate).
    tokens: Vec<u64>,
}

fn is_would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl IoLoop {
    fn run(mut self) {
        let mut events = vec![sys::empty_event(); 64];
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                break;
            }
            self.take_ready();
            self.pump_all();
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            let n = match self.sleep(&mut events, timeout) {
                Ok(n) => n,
                Err(e) => {
                    log::error!("IPC epoll_wait failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            for ev in &events[..n] {
                let token = sys::event_token(ev);
                let bits = sys::event_bits(ev);
                match token {
                    TOKEN_LISTENER => self.accept_all(),
                    TOKEN_WAKE => self.shared.wake.drain(),
                    _ => self.client_event(token, bits),
                }
            }
            self.expire_handshakes();
        }
        let n = self.clients.len();
        for (_, c) in self.clients.drain() {
            let _ = send_msg(
                &c.sock,
                &ServerMsg::Error(ErrorMsg::new(ErrorCode::ShuttingDown, "")),
            );
        }
        self.shared.counters.clients.store(0, Ordering::Relaxed);
        log::info!("IPC result server stopped ({n} clients closed)");
    }

    /// Sleep in epoll unless results are waiting; publishers wake us through the eventfd.
    fn sleep(&mut self, events: &mut [sys::Event], timeout: Option<Duration>) -> io::Result<usize> {
        self.shared.io_sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !self.shared.ready.is_empty() || self.shared.stop.load(Ordering::SeqCst) {
            self.shared.io_sleeping.store(false, Ordering::SeqCst);
            return Ok(0);
        }
        let n = self.epoll.wait(events, timeout);
        self.shared.io_sleeping.store(false, Ordering::SeqCst);
        n
    }

    fn take_ready(&mut self) {
        let len = self.ring.len() as u64;
        while let Some(slot) = self.shared.ready.pop() {
            let idx = (self.head % len) as usize;
            if let Some(old) = self.ring[idx].replace(slot) {
                let _ = self.shared.free.push(old);
            }
            self.head += 1;
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.clients
            .values()
            .filter_map(|c| match c.phase {
                Phase::Handshake { deadline } => Some(deadline),
                _ => None,
            })
            .min()
    }

    fn expire_handshakes(&mut self) {
        let now = Instant::now();
        let mut expired = std::mem::take(&mut self.tokens);
        expired.clear();
        expired.extend(
            self.clients
                .iter()
                .filter(
                    |(_, c)| matches!(c.phase, Phase::Handshake { deadline } if deadline <= now),
                )
                .map(|(t, _)| *t),
        );
        for &token in &expired {
            if let Some(c) = self.clients.get(&token) {
                log::info!("IPC client pid {} sent no Hello in time", c.peer.pid);
                let _ = send_msg(
                    &c.sock,
                    &error(ErrorCode::HandshakeTimeout, "send Hello first"),
                );
            }
            self.shared
                .counters
                .rejected
                .fetch_add(1, Ordering::Relaxed);
            self.close(token);
        }
        self.tokens = expired;
    }

    fn accept_all(&mut self) {
        loop {
            let sock = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if is_would_block(&e) => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on a ready listener.
                    log::warn!("IPC accept failed: {e}");
                    return;
                }
            };
            let peer = sock.peer_cred().unwrap_or(PeerCred {
                pid: 0,
                uid: u32::MAX,
                gid: u32::MAX,
            });
            if !self.allowed(&peer) {
                log::warn!(
                    "IPC refusing pid {} uid {} gid {}",
                    peer.pid,
                    peer.uid,
                    peer.gid
                );
                let _ = send_msg(
                    &sock,
                    &error(ErrorCode::NotPermitted, "uid/gid not allowed"),
                );
                self.shared
                    .counters
                    .rejected
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if self.clients.len() >= self.config.max_clients {
                log::warn!(
                    "IPC refusing pid {}: {} clients",
                    peer.pid,
                    self.clients.len()
                );
                let _ = send_msg(&sock, &error(ErrorCode::Busy, "too many clients"));
                self.shared
                    .counters
                    .rejected
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if let Some(bytes) = self.config.client_send_buffer {
                let _ = sock.set_send_buffer(bytes);
            }
            let token = self.next_token;
            self.next_token += 1;
            let interest = sys::READ | sys::HUP;
            if let Err(e) = self.epoll.add(sock.as_fd(), interest, token) {
                log::warn!("IPC epoll add failed: {e}");
                continue;
            }
            log::debug!("IPC client connected: pid {} uid {}", peer.pid, peer.uid);
            let deadline = Instant::now() + self.config.handshake_timeout;
            self.clients.insert(
                token,
                Client {
                    sock,
                    peer,
                    phase: Phase::Handshake { deadline },
                    cursor: 0,
                    missed_pending: 0,
                    missed_run: 0,
                    missed_total: 0,
                    ctrl: Vec::with_capacity(MAX_CTRL),
                    close_after_ctrl: false,
                    write_blocked: false,
                    interest,
                },
            );
            self.shared
                .counters
                .clients
                .store(self.clients.len() as u32, Ordering::Relaxed);
        }
    }

    fn allowed(&self, peer: &PeerCred) -> bool {
        let c = &self.config;
        (c.allow_uids.is_empty() && c.allow_gids.is_empty())
            || c.allow_uids.contains(&peer.uid)
            || c.allow_gids.contains(&peer.gid)
    }

    fn close(&mut self, token: u64) {
        if let Some(c) = self.clients.remove(&token) {
            let _ = self.epoll.delete(c.sock.as_fd());
            log::debug!(
                "IPC client pid {} closed (missed {})",
                c.peer.pid,
                c.missed_total
            );
        }
        self.shared
            .counters
            .clients
            .store(self.clients.len() as u32, Ordering::Relaxed);
    }

    fn client_event(&mut self, token: u64, bits: u32) {
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        if bits & sys::HUP != 0 {
            // The peer has gone (or the socket failed): nothing more can be delivered.
            self.close(token);
            return;
        }
        if bits & sys::WRITE != 0 {
            client.write_blocked = false;
        }
        if bits & sys::READ != 0 && matches!(self.read_client(token), Fate::Close) {
            self.close(token);
            return;
        }
        if let Fate::Close = self.pump(token) {
            self.close(token);
        }
    }

    /// Read and handle every message the client has sent, as long as no control message is
    /// pending (a client that does not read its responses is not read either).
    fn read_client(&mut self, token: u64) -> Fate {
        let mut buf = [0u8; MAX_CLIENT_MSG + 1];
        loop {
            let Some(client) = self.clients.get_mut(&token) else {
                return Fate::Close;
            };
            if !client.ctrl.is_empty() || client.close_after_ctrl {
                return Fate::Keep;
            }
            let n = match client.sock.recv_trunc(&mut buf) {
                Ok(0) => return Fate::Close,
                Ok(n) => n,
                Err(e) if is_would_block(&e) => return Fate::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Fate::Close,
            };
            if n > MAX_CLIENT_MSG {
                return self.fatal(
                    token,
                    ErrorCode::Oversized,
                    "message larger than MAX_CLIENT_MSG",
                );
            }
            let msg = match ClientMsg::decode(&buf[..n]) {
                Ok(m) => m,
                Err(e) => {
                    let mut detail = heapless::String::<64>::new();
                    let _ = core::fmt::write(&mut detail, format_args!("{e}"));
                    return self.fatal(token, ErrorCode::Malformed, &detail);
                }
            };
            if let Fate::Close = self.handle(token, msg) {
                return Fate::Close;
            }
        }
    }

    /// Queue a fatal error; the connection closes once it is sent (or cannot be).
    fn fatal(&mut self, token: u64, code: ErrorCode, detail: &str) -> Fate {
        self.shared
            .counters
            .rejected
            .fetch_add(1, Ordering::Relaxed);
        let Some(c) = self.clients.get_mut(&token) else {
            return Fate::Close;
        };
        log::info!("IPC client pid {}: {code}: {detail}", c.peer.pid);
        c.ctrl.clear();
        c.close_after_ctrl = true;
        let _ = encode_ctrl(&mut c.ctrl, &error(code, detail));
        Fate::Keep
    }

    fn handle(&mut self, token: u64, msg: ClientMsg) -> Fate {
        let head = self.head;
        let capabilities = proto::caps::ALL_V1;
        let queue_capacity = self.config.queue_capacity as u32;
        let Some(c) = self.clients.get_mut(&token) else {
            return Fate::Close;
        };
        match (&c.phase, msg) {
            (Phase::Handshake { .. }, ClientMsg::Hello(h)) => {
                if h.version != proto::PROTOCOL_VERSION {
                    let mut detail = heapless::String::<64>::new();
                    let _ = core::fmt::write(
                        &mut detail,
                        format_args!(
                            "server speaks {}, client {}",
                            proto::PROTOCOL_VERSION,
                            h.version
                        ),
                    );
                    return self.fatal(token, ErrorCode::UnsupportedVersion, &detail);
                }
                log::debug!("IPC client pid {} hello ({})", c.peer.pid, h.client_name);
                c.phase = Phase::Ready;
                let hello = ServerHello {
                    version: proto::PROTOCOL_VERSION,
                    capabilities,
                    max_message: MAX_SERVER_MSG as u32,
                    queue_capacity,
                };
                let _ = encode_ctrl(&mut c.ctrl, &ServerMsg::Hello(hello));
                Fate::Keep
            }
            (Phase::Handshake { .. }, _) | (_, ClientMsg::Hello(_)) => self.fatal(
                token,
                ErrorCode::UnexpectedMessage,
                "Hello must come first, once",
            ),
            (_, ClientMsg::Subscribe(sub)) => {
                c.phase = Phase::Subscribed(sub);
                c.cursor = head;
                c.missed_pending = 0;
                c.missed_run = 0;
                let _ = encode_ctrl(&mut c.ctrl, &ServerMsg::Subscribed);
                Fate::Keep
            }
            (_, ClientMsg::Request(req)) => {
                let body = match req.body {
                    RequestBody::Status => {
                        let mut status = self.shared.status();
                        status.your_missed = c.missed_total;
                        ResponseBody::Status(status)
                    }
                    RequestBody::ListModels => {
                        let models = self.shared.models.lock().unwrap_or_else(|e| e.into_inner());
                        ResponseBody::Models(proto::BoundedVec(models.clone()))
                    }
                };
                let resp = proto::Response { id: req.id, body };
                let _ = encode_ctrl(&mut c.ctrl, &ServerMsg::Response(resp));
                Fate::Keep
            }
            (_, ClientMsg::Bye) => Fate::Close,
        }
    }

    fn pump_all(&mut self) {
        let mut tokens = std::mem::take(&mut self.tokens);
        tokens.clear();
        tokens.extend(self.clients.keys().copied());
        for &token in &tokens {
            if let Fate::Close = self.pump(token) {
                self.close(token);
            }
        }
        self.tokens = tokens;
    }

    /// Send what the client is owed: its pending control message, a `Missed` notice, then
    /// results from its cursor, until done or its socket is full.
    fn pump(&mut self, token: u64) -> Fate {
        let head = self.head;
        let cap = self.config.queue_capacity as u64;
        let len = self.ring.len() as u64;
        let max_missed = self.config.max_missed;
        let Some(c) = self.clients.get_mut(&token) else {
            return Fate::Close;
        };
        let fate = 'pump: {
            // Evaluate lag even while blocked: a client that never reads must still be dropped.
            if check_lag(c, head, cap, max_missed, &self.shared.counters) {
                break 'pump Fate::Close;
            }
            if c.write_blocked {
                break 'pump Fate::Keep;
            }
            if !c.ctrl.is_empty() {
                match c.sock.send(&c.ctrl) {
                    Ok(_) => c.ctrl.clear(),
                    // A client that must be dropped is not waited for.
                    Err(e) if is_would_block(&e) && c.close_after_ctrl => break 'pump Fate::Close,
                    Err(e) if is_would_block(&e) => {
                        c.write_blocked = true;
                        break 'pump Fate::Keep;
                    }
                    Err(_) => break 'pump Fate::Close,
                }
            }
            if c.close_after_ctrl {
                break 'pump Fate::Close;
            }
            let Phase::Subscribed(sub) = &c.phase else {
                break 'pump Fate::Keep;
            };
            // `head` is fixed during a pump, so the lag check above holds for the whole loop.
            // Results go out in batches: several messages concatenated in one packet, gathered
            // straight from the ring slots by one sendmsg (filtered results are re-encoded into
            // the scratch buffer first). A client that keeps up gets one result per packet.
            let filtering = sub.filters_content();
            loop {
                let mut missed_buf = [0u8; 8];
                let mut batch: heapless::Vec<io::IoSlice<'_>, MAX_BATCH> = heapless::Vec::new();
                let mut bytes = 0usize;
                let mut missed_sent = 0u64;
                if c.missed_pending > 0 {
                    let count = c.missed_pending.min(u64::from(u32::MAX)) as u32;
                    missed_buf[0] = proto::SERVER_TAG_MISSED;
                    let n = 1 + proto::encode(&count, &mut missed_buf[1..]).unwrap_or(0);
                    let _ = batch.push(io::IoSlice::new(&missed_buf[..n]));
                    bytes += n;
                    missed_sent = u64::from(count);
                }
                let mut scratch: &mut [u8] = &mut self.scratch[..];
                let mut cursor = c.cursor;
                while cursor < head && !batch.is_full() {
                    let Some(slot) = self.ring[(cursor % len) as usize].as_deref() else {
                        cursor += 1; // cannot happen: every cursor in the window has a slot
                        continue;
                    };
                    if !sub.wants_stream(slot.stream) {
                        cursor += 1;
                        continue;
                    }
                    let piece: &[u8] = if filtering {
                        let n = match proto::decode::<ServerMsg>(slot.bytes()) {
                            Ok(ServerMsg::Result(r)) => {
                                *self.scratch_result = r;
                                sub.apply(&mut self.scratch_result);
                                proto::encode_result(&self.scratch_result, scratch).unwrap_or(0)
                            }
                            _ => 0,
                        };
                        if bytes + n > self.batch_bytes && !batch.is_empty() {
                            break;
                        }
                        let (done, rest) = std::mem::take(&mut scratch).split_at_mut(n);
                        scratch = rest;
                        done
                    } else {
                        slot.bytes()
                    };
                    if bytes + piece.len() > self.batch_bytes && !batch.is_empty() {
                        break;
                    }
                    bytes += piece.len();
                    let _ = batch.push(io::IoSlice::new(piece));
                    cursor += 1;
                }
                if batch.is_empty() {
                    c.cursor = cursor;
                    c.missed_run = 0;
                    break 'pump Fate::Keep;
                }
                match c.sock.send_vectored(&batch) {
                    Ok(_) => {
                        c.cursor = cursor;
                        c.missed_pending -= missed_sent;
                    }
                    Err(e) if is_would_block(&e) => {
                        c.write_blocked = true;
                        break 'pump Fate::Keep;
                    }
                    Err(_) => break 'pump Fate::Close,
                }
            }
        };
        if let Fate::Keep = fate {
            // Wait for writability only while blocked; stop reading while a control message is
            // pending so a client that never reads cannot make us buffer without bound.
            let mut want = sys::HUP;
            if c.write_blocked {
                want |= sys::WRITE;
            }
            if c.ctrl.is_empty() && !c.close_after_ctrl {
                want |= sys::READ;
            }
            if want != c.interest {
                if self.epoll.modify(c.sock.as_fd(), want, token).is_err() {
                    return Fate::Close;
                }
                c.interest = want;
            }
        }
        fate
    }
}

/// Move a client that fell off the history window to its oldest result, counting what it
/// missed; true if it is past `max_missed` (it has been sent `TooSlow` and must be closed).
fn check_lag(c: &mut Client, head: u64, cap: u64, max_missed: u64, counters: &Counters) -> bool {
    if !matches!(c.phase, Phase::Subscribed(_)) {
        return false;
    }
    let oldest = head.saturating_sub(cap);
    if c.cursor >= oldest {
        return false;
    }
    let skipped = oldest - c.cursor;
    c.cursor = oldest;
    c.missed_pending += skipped;
    c.missed_run += skipped;
    c.missed_total += skipped;
    counters.missed_total.fetch_add(skipped, Ordering::Relaxed);
    if c.missed_run <= max_missed {
        return false;
    }
    log::warn!(
        "IPC client pid {} too slow: missed {} results, disconnecting",
        c.peer.pid,
        c.missed_run
    );
    counters.disconnected_slow.fetch_add(1, Ordering::Relaxed);
    let _ = send_msg(
        &c.sock,
        &error(ErrorCode::TooSlow, "missed too many results"),
    );
    true
}

fn error(code: ErrorCode, detail: &str) -> ServerMsg {
    ServerMsg::Error(ErrorMsg::new(code, detail))
}

fn encode_ctrl(out: &mut Vec<u8>, msg: &ServerMsg) -> Result<(), proto::WireError> {
    out.resize(MAX_CTRL, 0);
    match msg.encode(out) {
        Ok(n) => {
            out.truncate(n);
            Ok(())
        }
        Err(e) => {
            out.clear();
            Err(e)
        }
    }
}

/// Best-effort immediate send (used just before closing).
fn send_msg(sock: &SeqPacket, msg: &ServerMsg) -> io::Result<()> {
    let mut buf = [0u8; MAX_CTRL];
    let n = msg
        .encode(&mut buf)
        .map_err(|e| io::Error::other(e.to_string()))?;
    sock.send(&buf[..n]).map(drop)
}
