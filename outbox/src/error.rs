//! Typed errors of the outbox.

use thiserror::Error;

/// Everything that can go wrong in the outbox, the uplink or the redactor.
#[derive(Debug, Error)]
pub enum OutboxError {
    /// The local store (redb) failed: open, transaction, table or commit.
    #[error("outbox store: {0}")]
    Store(#[from] redb::Error),
    /// A stored record failed its checksum or could not be decoded.
    #[error("outbox record {seq} is corrupt: {reason}")]
    Corrupt {
        /// The record's sequence number.
        seq: u64,
        /// What was wrong.
        reason: String,
    },
    /// A record is larger than the whole outbox may hold.
    #[error("record of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The record's encoded size.
        size: u64,
        /// The limit it exceeds.
        limit: u64,
    },
    /// A frame buffer does not match its declared size.
    #[error("frame buffer of {len} bytes does not match {width}x{height} RGB")]
    BadFrame {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Actual buffer length.
        len: usize,
    },
    /// JPEG encoding failed.
    #[error("jpeg encoding: {0}")]
    Jpeg(String),
    /// The object store (Azure Blob) refused or failed a request.
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// Local file I/O (export, emulator helper).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// JSON (de)serialisation.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// Configuration is invalid or incomplete.
    #[error("configuration: {0}")]
    Config(String),
    /// The writer thread has stopped (closed or failed).
    #[error("outbox writer stopped: {0}")]
    WriterStopped(String),
    /// The writer did not accept the record (queue full, too large, stopped); counted.
    #[error("enqueue: {0}")]
    Enqueue(crate::writer::EnqueueError),
    /// An HTTP exchange outside object_store (container creation) failed.
    #[error("http: {0}")]
    Http(String),
}

/// Result type of this crate.
pub type Result<T, E = OutboxError> = std::result::Result<T, E>;

/// Convert any redb error type into [`OutboxError::Store`].
pub(crate) fn db<E: Into<redb::Error>>(e: E) -> OutboxError {
    OutboxError::Store(e.into())
}
