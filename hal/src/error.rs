//! Error classification shared by every layer.

use core::fmt;

/// The class of an error, so callers can react without matching every concrete error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input (a model file, an image, a config) is malformed or inconsistent.
    InvalidInput,
    /// The input is well formed but uses a version or feature this build does not support.
    Unsupported,
    /// An operating-system level I/O failure.
    Io,
    /// A fixed capacity (arena, queue, result vector) is exhausted.
    Capacity,
    /// The requested device or backend is not present.
    DeviceUnavailable,
    /// A failure inside a backend while executing.
    Backend,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Io => "i/o error",
            ErrorKind::Capacity => "capacity exhausted",
            ErrorKind::DeviceUnavailable => "device unavailable",
            ErrorKind::Backend => "backend failure",
        })
    }
}
