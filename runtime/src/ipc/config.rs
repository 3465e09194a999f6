//! Server configuration and the default socket path.

use std::time::Duration;

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
    /// Pin the I/O thread to this CPU (None = let the scheduler place it). Pinning it to the
    /// core of the publishing thread and of the clients removes the cross-core wake-ups from
    /// the publish → client path (see [`crate::affinity`] and BENCHMARKS.md, "IPC"); it also
    /// makes those threads share that core.
    pub io_cpu: Option<usize>,
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
            io_cpu: None,
        }
    }
}
