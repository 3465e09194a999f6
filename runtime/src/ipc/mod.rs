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

mod server;
mod sys;

pub use outpost_proto as proto;
pub use server::{
    DEFAULT_SOCKET_PATH, IpcError, PublishError, Publisher, ResultServer, ServerConfig, now_ns,
};
pub use sys::{PeerCred, SeqPacket};
