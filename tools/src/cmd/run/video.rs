//! The `video` and `v4l2` source keys of `--config` (see config.rs's module documentation).

use std::path::{Path, PathBuf};
use std::time::Duration;

use outpost_runtime::pipeline::{Backoff, Source};
use outpost_runtime::sources::{FfmpegConfig, FfmpegError, FfmpegSource};

/// `video = "file-or-url"`, with `width`/`height` (both or neither: ffmpeg scales every frame to
/// that size; neither: ffprobe tells the input's size), `realtime` and `loop`. A relative path
/// is resolved against the configuration file; a URL is passed as it is.
pub(super) fn open_video(
    input: &str,
    size: (Option<u32>, Option<u32>),
    realtime: bool,
    looping: bool,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Box<dyn Source>, (&'static str, String)> {
    let mut cfg = FfmpegConfig::new(input);
    if !cfg.is_url() {
        cfg.input = resolve(Path::new(input)).display().to_string();
    }
    match size {
        (Some(w), Some(h)) if w > 0 && h > 0 => cfg = cfg.size(w, h),
        (None, None) => {}
        (Some(0), _) => return Err(("width", "give a positive number of pixels".into())),
        (_, Some(0)) => return Err(("height", "give a positive number of pixels".into())),
        (Some(_), None) => return Err(("height", "give both width and height, or neither".into())),
        (None, Some(_)) => return Err(("width", "give both width and height, or neither".into())),
        (Some(_), Some(_)) => unreachable!("positive sizes are matched above"),
    }
    let source = FfmpegSource::open(cfg.realtime(realtime).looping(looping)).map_err(|e| {
        let key = match e {
            FfmpegError::Config(ref m) if m.starts_with("frame size") => "width",
            _ => "video",
        };
        (key, e.to_string())
    })?;
    Ok(Box::new(source))
}

/// `v4l2 = "/dev/video0"` (with `width`/`height`: the size asked of the device). Only in a
/// build with the `v4l2` feature.
#[cfg(feature = "v4l2")]
pub(super) fn open_v4l2(
    device: &str,
    size: (Option<u32>, Option<u32>),
) -> Result<Box<dyn Source>, (&'static str, String)> {
    use outpost_runtime::sources::v4l2::{V4l2Config, V4l2Source};
    let mut cfg = V4l2Config::new(device);
    if let (Some(w), Some(h)) = size {
        cfg = cfg.size(w, h);
    }
    let source = V4l2Source::open(cfg).map_err(|e| ("v4l2", e.to_string()))?;
    Ok(Box::new(source))
}

/// Without the `v4l2` feature: say how to get it.
#[cfg(not(feature = "v4l2"))]
pub(super) fn open_v4l2(
    device: &str,
    _size: (Option<u32>, Option<u32>),
) -> Result<Box<dyn Source>, (&'static str, String)> {
    Err((
        "v4l2",
        format!(
            "{device}: this outpost was built without V4L2 support; rebuild with \
             `cargo build -p outpost --features v4l2`"
        ),
    ))
}

/// The stream's backoff from `backoff_ms` and `backoff_max_ms` (defaults 100 ms and 5000 ms).
pub(super) fn backoff(
    initial_ms: Option<u64>,
    max_ms: Option<u64>,
) -> Result<Backoff, (&'static str, String)> {
    if initial_ms == Some(0) {
        return Err(("backoff_ms", "give at least 1 millisecond".into()));
    }
    let initial = initial_ms.map_or(Backoff::DEFAULT_INITIAL, Duration::from_millis);
    let max = max_ms.map_or(Backoff::DEFAULT_MAX.max(initial), Duration::from_millis);
    if max < initial {
        return Err((
            "backoff_max_ms",
            format!(
                "{} ms is below backoff_ms ({} ms)",
                max.as_millis(),
                initial.as_millis()
            ),
        ));
    }
    Ok(Backoff::new(initial, max))
}
