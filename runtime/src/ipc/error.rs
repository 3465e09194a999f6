//! Server and publish errors.

use std::io;
use std::path::PathBuf;

use outpost_proto as proto;

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
