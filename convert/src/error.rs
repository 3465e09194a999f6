//! Typed errors of the converter.

use std::path::PathBuf;

/// Everything that can stop a conversion. Each message names the file, node or tensor at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The input is not a model of a format we read.
    #[error("{path}: not a TFLite or ONNX model ({reason})")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// What was seen.
        reason: String,
    },
    /// The TFLite flatbuffer is malformed.
    #[error("corrupt TFLite model: {0}")]
    CorruptTflite(String),
    /// The ONNX protobuf is malformed.
    #[error("corrupt ONNX model: {0}")]
    CorruptOnnx(String),
    /// An op we cannot map.
    #[error("unsupported op {op} at node {node}: {reason}")]
    UnsupportedOp {
        /// Op name in the source format.
        op: String,
        /// Node (operator index and output tensor name).
        node: String,
        /// Why.
        reason: String,
    },
    /// A tensor we cannot map.
    #[error("unsupported tensor {tensor}: {reason}")]
    UnsupportedTensor {
        /// Tensor name.
        tensor: String,
        /// Why.
        reason: String,
    },
    /// Calibration data could not be used.
    #[error("calibration: {0}")]
    Calibration(String),
    /// The options do not fit the model.
    #[error("{0}")]
    BadOptions(String),
    /// Writing or re-loading the result failed.
    #[error(transparent)]
    Model(#[from] outpost_models::ModelError),
    /// Running the float model (calibration) failed.
    #[error(transparent)]
    Runtime(#[from] outpost_runtime::RuntimeError),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, ConvertError>;
