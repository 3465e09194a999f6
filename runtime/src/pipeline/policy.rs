//! How a stream behaves when inference falls behind.

use std::str::FromStr;
use std::time::Duration;

/// How a stream behaves when inference cannot keep up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Keep only the newest frame waiting (a one-frame ring); older ones are dropped.
    #[default]
    Latest,
    /// A ring of `queue_depth` frames; when full, the oldest is dropped.
    DropOldest,
    /// Wait up to this long for room in the ring, then drop the new frame.
    Block(Duration),
}

impl Policy {
    /// The deadline of `block` when none is given.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(1);

    /// The policy's name as [`FromStr`] takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Latest => "latest",
            Policy::DropOldest => "drop-oldest",
            Policy::Block(_) => "block",
        }
    }
}

/// `latest`, `drop-oldest`, `block` (deadline 1 s) or `block:<ms>`.
impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "latest" => Ok(Policy::Latest),
            "drop-oldest" => Ok(Policy::DropOldest),
            "block" => Ok(Policy::Block(Policy::DEFAULT_DEADLINE)),
            _ => match s.strip_prefix("block:").map(str::parse::<u64>) {
                Some(Ok(ms)) => Ok(Policy::Block(Duration::from_millis(ms))),
                _ => Err(format!(
                    "unknown policy {s:?}: use latest, drop-oldest, block or block:<milliseconds>"
                )),
            },
        }
    }
}
