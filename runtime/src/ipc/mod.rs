//! IPC result server: publishes inference results to local clients over a Unix
//! `SOCK_SEQPACKET` socket using the `outpost-proto` wire protocol (see `docs/ipc.md`).
//!
//! ```no_run
//! use outpost_runtime::ipc::{ResultServer, ServerConfig, proto::ResultMsg};
//! let server = ResultServer::bind("/run/outpost/results.sock", ServerConfig::default())?;
//! let publisher = server.publisher();
//! let mut result = ResultMsg::default();
//! let _ = publisher.publish_now(&mut result); // never blocks, never allocates
//! # Ok::<(), outpost_runtime::ipc::IpcError>(())
//! ```
//!
//! One I/O thread serves every client:
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
//!
//! Modules: `config`, `error`, `shared` (publisher ↔ I/O-thread hand-off),
//! `publisher`, `server` (bind/stop), `io_loop` (the epoll loop), `accept` (peer credentials),
//! `client` (per-client state), `requests` (client messages), `pump` (sending results), `sys`.

mod accept;
mod client;
mod config;
mod error;
mod io_loop;
mod publisher;
mod pump;
mod requests;
mod server;
mod shared;
mod sys;

pub use config::{DEFAULT_SOCKET_PATH, ServerConfig};
pub use error::{IpcError, PublishError};
pub use outpost_proto as proto;
pub use publisher::{Publisher, now_ns};
pub use server::ResultServer;
pub use sys::{PeerCred, SeqPacket};
