//! A V4L2 camera (`/dev/videoN`), read through `linuxvideo` (pure Rust ioctls: no C library,
//! no libclang at build time). Behind the `v4l2` cargo feature.
//!
//! The source negotiates the first format the device lists that the preprocessor takes —
//! RGB3, BGR3, GREY, NV12, YU12 — or YUYV (most webcams), which it converts to I420 while
//! copying into the slot. Compressed formats (MJPG) are not taken. Frames are dequeued from the
//! driver's memory-mapped buffers and copied straight into the pipeline's slots (no heap).
//!
//! A device that goes away (unplugged: `ENODEV`, `EIO`) or sends nothing for
//! [`V4l2Config::stall_timeout`] returns [`SourceError::Disconnected`]; the next
//! [`Source::next_frame`] call opens it again with the same format.

use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use linuxvideo::format::{Format, PixFormat};
use linuxvideo::stream::ReadStream;
use linuxvideo::{BufType, Device};
use thiserror::Error;

use crate::pipeline::{FrameBuf, FrameMeta, Name, Source, SourceError, name};
use crate::preprocess::{ImageView, PixelFormat};

/// Which V4L2 device to read, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct V4l2Config {
    /// The device node.
    pub device: PathBuf,
    /// The frame size asked of the driver (it may pick the nearest it has); `None`: the size
    /// the device is set to now.
    pub size: Option<(u32, u32)>,
    /// A device that delivers no frame for this long is reopened.
    pub stall_timeout: Duration,
}

impl V4l2Config {
    /// Read `device` at its current size.
    pub fn new(device: impl Into<PathBuf>) -> Self {
        V4l2Config {
            device: device.into(),
            size: None,
            stall_timeout: Duration::from_secs(5),
        }
    }

    /// Ask for `width × height`.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = Some((width, height));
        self
    }
}

/// Why a [`V4l2Source`] cannot open.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum V4l2Error {
    /// The device could not be opened or queried.
    #[error("{device}: {source}")]
    Io {
        /// The device node.
        device: String,
        /// Why.
        source: io::Error,
    },
    /// The device offers no format the pipeline takes.
    #[error(
        "{device}: no supported pixel format (offers {offered}; takes RGB3, BGR3, GREY, NV12, YU12, YUYV)"
    )]
    NoFormat {
        /// The device node.
        device: String,
        /// What it offers.
        offered: String,
    },
    /// The negotiated format cannot be described.
    #[error("{device}: {reason}")]
    Format {
        /// The device node.
        device: String,
        /// What is wrong.
        reason: String,
    },
}

/// A device pixel format, and how it lands in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// Copied row by row as this layout.
    Direct(PixelFormat),
    /// YUYV 4:2:2, converted to I420 while copying.
    Yuyv,
}

const fn fourcc(s: &[u8; 4]) -> linuxvideo::format::PixelFormat {
    linuxvideo::format::PixelFormat::from_fourcc(*s)
}

/// The formats taken, in order of preference.
const TAKEN: [(linuxvideo::format::PixelFormat, Wire); 6] = [
    (fourcc(b"RGB3"), Wire::Direct(PixelFormat::Rgb8)),
    (fourcc(b"BGR3"), Wire::Direct(PixelFormat::Bgr8)),
    (fourcc(b"NV12"), Wire::Direct(PixelFormat::Nv12)),
    (fourcc(b"YU12"), Wire::Direct(PixelFormat::I420)),
    (fourcc(b"YUYV"), Wire::Yuyv),
    (fourcc(b"GREY"), Wire::Direct(PixelFormat::Gray8)),
];

/// Frames from a V4L2 capture device (see the module documentation).
pub struct V4l2Source {
    config: V4l2Config,
    /// The negotiated device format.
    device_format: linuxvideo::format::PixelFormat,
    wire: Wire,
    width: u32,
    height: u32,
    /// Bytes between rows in the device's buffers.
    device_stride: usize,
    /// The slot's layout and stride.
    format: PixelFormat,
    stride: usize,
    frame_len: usize,
    stream: Option<ReadStream>,
    name: Name,
    seq: u64,
}

impl std::fmt::Debug for V4l2Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V4l2Source")
            .field("device", &self.config.device)
            .field("format", &self.device_format)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("open", &self.stream.is_some())
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl V4l2Source {
    /// Open `config.device`, pick a format and size, and start streaming.
    pub fn open(config: V4l2Config) -> Result<Self, V4l2Error> {
        let dev_name = config.device.display().to_string();
        let io_err = |source| V4l2Error::Io {
            device: dev_name.clone(),
            source,
        };
        let device = Device::open(&config.device).map_err(io_err)?;
        let mut offered = Vec::new();
        let mut pick = None;
        for desc in device.formats(BufType::VIDEO_CAPTURE) {
            let desc = desc.map_err(io_err)?;
            let pf = desc.pixel_format();
            offered.push(pf.to_string());
            if let Some(&(p, w)) = TAKEN.iter().find(|(p, _)| *p == pf) {
                let rank = TAKEN
                    .iter()
                    .position(|(q, _)| *q == p)
                    .unwrap_or(usize::MAX);
                if pick.is_none_or(|(r, _, _)| rank < r) {
                    pick = Some((rank, p, w));
                }
            }
        }
        let Some((_, pf, wire)) = pick else {
            return Err(V4l2Error::NoFormat {
                device: dev_name,
                offered: offered.join(", "),
            });
        };
        let (w, h) = match config.size {
            Some(s) => s,
            None => match device.format(BufType::VIDEO_CAPTURE).map_err(io_err)? {
                Format::VideoCapture(f) => (f.width(), f.height()),
                _ => (640, 480),
            },
        };
        let capture = device
            .video_capture(PixFormat::new(w, h, pf))
            .map_err(io_err)?;
        let got = capture.format();
        if got.pixel_format() != pf {
            return Err(V4l2Error::Format {
                device: dev_name,
                reason: format!("asked for {pf}, the driver set {}", got.pixel_format()),
            });
        }
        let (width, height) = (got.width(), got.height());
        let device_stride = got.bytes_per_line() as usize;
        let format = match wire {
            Wire::Direct(f) => f,
            Wire::Yuyv => PixelFormat::I420,
        };
        let stride = match wire {
            Wire::Direct(f) => device_stride.max(f.min_stride(width)),
            Wire::Yuyv => width as usize,
        };
        let frame_len = ImageView {
            width,
            height,
            stride,
            format,
            data: &[],
        }
        .required_len()
        .map_err(|e| V4l2Error::Format {
            device: dev_name.clone(),
            reason: e.to_string(),
        })?;
        let stream = capture.into_stream().map_err(io_err)?;
        let stem = config
            .device
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("v4l2")
            .to_string();
        log::info!("{dev_name}: {width}×{height} {pf}");
        Ok(V4l2Source {
            config,
            device_format: pf,
            wire,
            width,
            height,
            device_stride,
            format,
            stride,
            frame_len,
            stream: Some(stream),
            name: name(&stem),
            seq: 0,
        })
    }

    /// The negotiated frame size.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Open the device again with the format negotiated first.
    fn reopen(&mut self) -> io::Result<ReadStream> {
        let device = Device::open(&self.config.device)?;
        let capture =
            device.video_capture(PixFormat::new(self.width, self.height, self.device_format))?;
        let got = capture.format();
        if (got.width(), got.height(), got.pixel_format())
            != (self.width, self.height, self.device_format)
        {
            return Err(io::Error::other(format!(
                "the device now gives {}×{} {}, not {}×{} {}",
                got.width(),
                got.height(),
                got.pixel_format(),
                self.width,
                self.height,
                self.device_format
            )));
        }
        capture.into_stream()
    }
}

/// A transient error naming the device (the error path: allocating is fine).
fn disconnected(device: &std::path::Path, what: impl std::fmt::Display) -> SourceError {
    SourceError::Disconnected(format!("{}: {what}", device.display()))
}

/// Whether the stream has a frame within `timeout`.
fn wait_readable(stream: &ReadStream, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    loop {
        // SAFETY: `pfd` is one valid, initialised pollfd that outlives the call, and the count
        // passed is 1.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n >= 0 {
            if pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                return Err(io::Error::other("the device reported an error"));
            }
            return Ok(n > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Copy `rows` rows of `row_len` bytes from `src` (rows `src_stride` apart) to `dst` (rows
/// `dst_stride` apart).
fn copy_rows(
    src: &[u8],
    src_stride: usize,
    dst: &mut [u8],
    dst_stride: usize,
    rows: usize,
    row_len: usize,
) -> Result<(), String> {
    for r in 0..rows {
        let s = src
            .get(r * src_stride..r * src_stride + row_len)
            .ok_or_else(|| format!("the device's buffer ends at row {r}"))?;
        let d = dst
            .get_mut(r * dst_stride..r * dst_stride + row_len)
            .ok_or_else(|| format!("the slot ends at row {r}"))?;
        d.copy_from_slice(s);
    }
    Ok(())
}

/// Convert one YUYV frame (`Y0 U Y1 V` per two pixels, rows `src_stride` apart) to packed I420
/// in `dst` (chroma averaged over row pairs). `width` must be even.
pub fn yuyv_to_i420(
    src: &[u8],
    src_stride: usize,
    width: u32,
    height: u32,
    dst: &mut [u8],
) -> Result<(), String> {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    if w % 2 == 1 {
        return Err(format!("YUYV with an odd width ({w})"));
    }
    if src_stride < w * 2 || src.len() < src_stride * (h - 1) + w * 2 {
        return Err(format!("a YUYV buffer of {} bytes for {w}×{h}", src.len()));
    }
    if dst.len() < w * h + 2 * cw * ch {
        return Err(format!("an I420 slot of {} bytes for {w}×{h}", dst.len()));
    }
    let (y_plane, chroma) = dst.split_at_mut(w * h);
    let (u_plane, v_plane) = chroma.split_at_mut(cw * ch);
    for r in 0..h {
        let row = &src[r * src_stride..r * src_stride + w * 2];
        for (x, y) in y_plane[r * w..(r + 1) * w].iter_mut().enumerate() {
            *y = row[x * 2];
        }
    }
    for cr in 0..ch {
        let r0 = cr * 2;
        let r1 = (r0 + 1).min(h - 1);
        let a = &src[r0 * src_stride..];
        let b = &src[r1 * src_stride..];
        for cx in 0..cw {
            let i = cx * 4;
            let u = (u16::from(a[i + 1]) + u16::from(b[i + 1])).div_ceil(2);
            let v = (u16::from(a[i + 3]) + u16::from(b[i + 3])).div_ceil(2);
            u_plane[cr * cw + cx] = u as u8;
            v_plane[cr * cw + cx] = v as u8;
        }
    }
    Ok(())
}

impl Source for V4l2Source {
    fn next_frame(&mut self, slot: &mut FrameBuf) -> Result<Option<FrameMeta>, SourceError> {
        if self.stream.is_none() {
            let s = self
                .reopen()
                .map_err(|e| disconnected(&self.config.device, format!("cannot reopen: {e}")))?;
            log::info!("{}: reopened", self.config.device.display());
            self.stream = Some(s);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(disconnected(&self.config.device, "not open"));
        };
        match wait_readable(stream, self.config.stall_timeout) {
            Ok(true) => {}
            Ok(false) => {
                self.stream = None;
                let ms = self.config.stall_timeout.as_millis();
                return Err(disconnected(
                    &self.config.device,
                    format!("no frame for {ms} ms"),
                ));
            }
            Err(e) => {
                self.stream = None;
                return Err(disconnected(&self.config.device, e.to_string()));
            }
        }
        let out = slot.prepare(self.width, self.height, self.stride, self.format)?;
        let (wire, w, h, ds, ss, fmt) = (
            self.wire,
            self.width,
            self.height,
            self.device_stride,
            self.stride,
            self.format,
        );
        let copied = stream.dequeue(|buf| {
            if buf.is_error() {
                return Ok(Err("the driver flagged the buffer as corrupt".to_string()));
            }
            let res = match wire {
                Wire::Yuyv => yuyv_to_i420(&buf, ds, w, h, out),
                Wire::Direct(f @ (PixelFormat::Nv12 | PixelFormat::I420)) => {
                    // Planes follow each other at the device's stride: one copy.
                    let need = out.len();
                    match buf.get(..need) {
                        Some(src) if ds == ss => {
                            out.copy_from_slice(src);
                            Ok(())
                        }
                        _ => Err(format!(
                            "a {f:?} buffer of {} bytes, {need} needed",
                            buf.len()
                        )),
                    }
                }
                Wire::Direct(_) => {
                    let row_len = fmt.min_stride(w);
                    copy_rows(&buf, ds, out, ss, h as usize, row_len)
                }
            };
            Ok(res)
        });
        match copied {
            Ok(Ok(())) => {}
            // A corrupt or short buffer: skip it as a transient fault of the device.
            Ok(Err(why)) => return Err(disconnected(&self.config.device, why)),
            Err(e) => {
                self.stream = None;
                return Err(disconnected(&self.config.device, e.to_string()));
            }
        }
        let meta = FrameMeta {
            seq: self.seq,
            name: self.name.clone(),
            index: u32::try_from(self.seq).unwrap_or(u32::MAX),
        };
        self.seq += 1;
        Ok(Some(meta))
    }

    fn frame_capacity(&self) -> usize {
        self.frame_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_converts_to_i420() {
        // 4×2: Y = 10, 20, ..., U per pair 100/110 (row 0) and 102/112 (row 1), V 200/210...
        let src: Vec<u8> = vec![
            10, 100, 20, 200, 30, 110, 40, 210, //
            50, 102, 60, 202, 70, 112, 80, 212,
        ];
        let mut out = vec![0u8; 4 * 2 + 2 * 2];
        yuyv_to_i420(&src, 8, 4, 2, &mut out).unwrap();
        assert_eq!(&out[..8], &[10, 20, 30, 40, 50, 60, 70, 80]);
        assert_eq!(&out[8..10], &[101, 111]);
        assert_eq!(&out[10..12], &[201, 211]);
        assert!(yuyv_to_i420(&src, 8, 3, 2, &mut out).is_err());
        assert!(yuyv_to_i420(&src[..10], 8, 4, 2, &mut out).is_err());
    }

    #[test]
    fn missing_device_is_an_error() {
        let e = V4l2Source::open(V4l2Config::new("/dev/outpost-no-such-video")).unwrap_err();
        assert!(matches!(e, V4l2Error::Io { .. }), "{e}");
        assert!(e.to_string().contains("/dev/outpost-no-such-video"), "{e}");
    }
}
