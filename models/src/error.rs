//! Typed errors of loading and validating a model.

use outpost_hal::{DType, ErrorKind};
use thiserror::Error;

/// Everything that can be wrong with a model file. Each variant names the tensor, node or
/// metadata key at fault so the message alone tells a person what to fix.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The file could not be opened or mapped.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file ends before its data does.
    #[error("file is truncated: {what} needs {needed} bytes but the file has {found}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        found: u64,
    },
    /// The 8-byte header length points past the end of the file or beyond the 100 MB limit.
    #[error("header size {header_len} is beyond the file ({file_len} bytes) or the 100 MB limit")]
    HeaderBeyondFile {
        /// Header length read from the file.
        header_len: u64,
        /// File length.
        file_len: u64,
    },
    /// The JSON header is not valid safetensors.
    #[error("corrupt safetensors header: {0}")]
    CorruptHeader(String),
    /// Bytes after the last tensor.
    #[error("{extra} unexpected bytes after the last tensor")]
    TrailingBytes {
        /// How many.
        extra: u64,
    },
    /// The file has no `__metadata__` or lacks a required key.
    #[error(
        "missing metadata key `{key}`: not an Outpost model (convert it with `outpost convert`)"
    )]
    MissingMetadata {
        /// The key.
        key: &'static str,
    },
    /// A metadata value does not parse.
    #[error("metadata `{key}` is invalid: {reason}")]
    InvalidMetadata {
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The format version is not one this build reads.
    #[error(
        "model format version `{found}` is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// The version in the file.
        found: String,
        /// The version this build reads.
        supported: u32,
    },
    /// A safetensors tensor uses a dtype the format does not allow.
    #[error(
        "tensor `{tensor}` has dtype {dtype}, which Outpost models do not use (I8, U8, I32, F16, F32)"
    )]
    UnsupportedDType {
        /// The tensor.
        tensor: String,
        /// The dtype as safetensors spells it.
        dtype: String,
    },
    /// A tensor has a different dtype than its use requires.
    #[error("tensor `{tensor}`: expected dtype {expected}, found {found}")]
    DTypeMismatch {
        /// The tensor.
        tensor: String,
        /// Required dtype.
        expected: DType,
        /// Dtype in the file.
        found: DType,
    },
    /// A tensor has the wrong number of elements or shape for its use.
    #[error("tensor `{tensor}`: {reason}")]
    ShapeMismatch {
        /// The tensor.
        tensor: String,
        /// Expected versus found.
        reason: String,
    },
    /// A shape whose element or byte count overflows, or exceeds the format's limits.
    #[error("tensor `{tensor}`: dimensions overflow or exceed the format's limits ({reason})")]
    DimensionOverflow {
        /// The tensor.
        tensor: String,
        /// Which limit.
        reason: String,
    },
    /// A node refers to a tensor that neither the graph nor the file defines.
    #[error("node `{node}` refers to tensor `{tensor}`, which does not exist")]
    UnknownTensor {
        /// The node (or `graph` for graph inputs/outputs).
        node: String,
        /// The missing tensor.
        tensor: String,
    },
    /// A tensor is defined twice (two producers, or declared twice).
    #[error("tensor `{tensor}` is defined more than once ({reason})")]
    DuplicateTensor {
        /// The tensor.
        tensor: String,
        /// Where.
        reason: String,
    },
    /// The graph has a cycle.
    #[error("the graph has a cycle through node `{node}`")]
    Cycle {
        /// A node on the cycle.
        node: String,
    },
    /// An op name this build does not know.
    #[error("node `{node}` uses op `{op}`, which this build does not support")]
    UnknownOp {
        /// The node.
        node: String,
        /// The op.
        op: String,
    },
    /// An attribute is missing, unparsable or out of range.
    #[error("node `{node}`: attribute {reason}")]
    BadAttribute {
        /// The node.
        node: String,
        /// Which attribute and why.
        reason: String,
    },
    /// A node has the wrong number or kind of inputs, or inconsistent shapes.
    #[error("node `{node}`: {reason}")]
    BadNode {
        /// The node.
        node: String,
        /// What is inconsistent.
        reason: String,
    },
    /// Quantization parameters that cannot be used.
    #[error("tensor `{tensor}`: invalid quantization: {reason}")]
    BadQuant {
        /// The tensor.
        tensor: String,
        /// What is wrong (scale ≤ 0, NaN, zero point out of range, ...).
        reason: String,
    },
    /// An input or output spec that does not fit the graph.
    #[error("{key}: {reason}")]
    BadSpec {
        /// `outpost.inputs` or `outpost.outputs`.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Writing a model failed (builder).
    #[error("cannot write model: {0}")]
    Write(String),
}

impl ModelError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ModelError::Io { .. } => ErrorKind::Io,
            ModelError::UnsupportedVersion { .. }
            | ModelError::UnknownOp { .. }
            | ModelError::UnsupportedDType { .. } => ErrorKind::Unsupported,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
