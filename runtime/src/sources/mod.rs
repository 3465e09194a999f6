//! Frame and sample sources beyond image files: each implements [`crate::pipeline::Source`].
//!
//! A source that loses its device or connection returns [`SourceError::Disconnected`]; the
//! pipeline's capture loop counts the failure, waits with exponential backoff and jitter, and
//! calls [`Source::next_frame`](crate::pipeline::Source::next_frame) again, which reconnects.
//! Any other error ends the stream (and only that stream).
//!
//! [`SourceError::Disconnected`]: crate::pipeline::SourceError::Disconnected

pub mod csv;
pub mod ffmpeg;
pub mod mqtt;
#[cfg(feature = "rtsp")]
pub mod rtsp;
#[cfg(feature = "v4l2")]
pub mod v4l2;
pub mod wav;
pub mod window;

pub use csv::{CsvSource, Pace};
pub use ffmpeg::{FfmpegConfig, FfmpegError, FfmpegSource};
pub use mqtt::{MqttConfig, MqttMonitor, MqttSource, MqttStats};
#[cfg(feature = "rtsp")]
pub use rtsp::{RtspConfig, RtspError, RtspSource, RtspStats};
#[cfg(feature = "v4l2")]
pub use v4l2::{V4l2Config, V4l2Error, V4l2Source};
pub use wav::{Mix, WavSource};
pub use window::Windower;
