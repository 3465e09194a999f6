//! Errors of planning and running a model.

use outpost_hal::ErrorKind;
use thiserror::Error;

/// Why a model cannot be planned or run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The model has a node this backend cannot run. Nothing falls back silently.
    #[error("node `{node}` ({op}) cannot run on the CPU backend: {reason}")]
    Unsupported {
        /// The node.
        node: String,
        /// Its op.
        op: &'static str,
        /// Why.
        reason: String,
    },
    /// The kernel tier requested is unknown or not supported by this CPU.
    #[error("{0}")]
    Tier(String),
    /// An input given to `run` has the wrong size or type.
    #[error("input `{name}`: {reason}")]
    BadInput {
        /// The input.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The thread count cannot be served: too many, or a worker thread would not start.
    #[error("{threads} threads: {reason}")]
    Threads {
        /// Threads asked for.
        threads: usize,
        /// Why not.
        reason: String,
        /// The class: [`ErrorKind::InvalidInput`] or [`ErrorKind::Capacity`].
        kind: ErrorKind,
    },
    /// A model error.
    #[error(transparent)]
    Model(#[from] outpost_models::ModelError),
}

impl RuntimeError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RuntimeError::Unsupported { .. } => ErrorKind::Unsupported,
            RuntimeError::Tier(_) => ErrorKind::DeviceUnavailable,
            RuntimeError::BadInput { .. } => ErrorKind::InvalidInput,
            RuntimeError::Threads { kind, .. } => *kind,
            RuntimeError::Model(e) => e.kind(),
        }
    }
}

/// Result alias.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
