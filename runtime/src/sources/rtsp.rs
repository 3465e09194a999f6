//! An RTSP H.264 camera read natively: [`retina`] for RTSP/RTP, [`openh264`] (its bundled C
//! decoder, no system library) for H.264. Behind the cargo feature `rtsp`.
//!
//! [`RtspSource`] connects (DESCRIBE, SETUP of the first H.264 video stream with RTP interleaved
//! on the RTSP TCP connection, PLAY), decodes every access unit and writes each picture into the
//! slot as [`PixelFormat::I420`] with tightly packed rows (stride = width).
//!
//! **Threads**: retina is async. The source owns a small current-thread tokio runtime and drives
//! it from the capture thread inside [`Source::next_frame`] (`block_on` until the next decoded
//! picture), rather than on a thread of its own handing frames over a queue. That costs no extra
//! thread (these boxes have few cores) and no second copy: the decoder's picture goes straight
//! into the pipeline's slot. While the capture thread is not in `next_frame` (waiting for a free
//! slot under `block`), the socket is not read and TCP flow control holds the camera back;
//! nothing is decoded and then thrown away on our side. Every access unit received is decoded
//! (an H.264 decoder cannot skip reference frames); the pipeline's policy decides which pictures
//! go on to inference.
//!
//! **Allocation**: nothing on our side allocates per frame: the picture is copied plane by plane
//! into the preallocated slot, and the counters are atomics. retina allocates per RTP packet and
//! per access unit (the frame's `Vec<u8>`, freed on the capture thread once decoded); openh264
//! keeps its reference pictures in buffers it allocates when a session starts or the resolution
//! changes, not per frame. A new decoder is made for every connection.
//!
//! **Size**: slots are sized for the configured maximum ([`RtspConfig::max_width`] ×
//! [`RtspConfig::max_height`], default [`DEFAULT_MAX_WIDTH`] × [`DEFAULT_MAX_HEIGHT`]); a larger
//! picture ends the stream with a [`SourceError::Other`] naming both sizes and the keys to raise
//! (reconnecting cannot fix it).
//!
//! **Faults**: a refused, dropped or silent connection (no frame for
//! [`RtspConfig::frame_timeout`]) returns [`SourceError::Disconnected`]; the session is dropped
//! and the next `next_frame` call connects again, with [`RtspConfig::connect_timeout`] bounding
//! the attempt. So `next_frame` never blocks longer than the larger of the two timeouts (or one
//! frame interval while streaming), and the pipeline's stop flag is seen promptly. A server
//! without an H.264 video stream ends the stream ([`SourceError::Other`]). Failures are counted
//! in [`RtspStats`] as well as by the pipeline.
//!
//! Credentials in the URL (`rtsp://user:pass@host/path`) are taken out of it and used for the
//! server's Basic or Digest challenge.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use retina::client::{
    Credentials, Demuxed, PlayOptions, SessionOptions, SetupOptions, TcpTransportOptions, Transport,
};
use retina::codec::{CodecItem, FrameFormat};
use thiserror::Error;
use url::Url;

use crate::pipeline::{FrameBuf, FrameMeta, Name, Source, SourceError, name};
use crate::preprocess::{ImageView, PixelFormat};

/// Widest picture the slots hold unless configured otherwise.
pub const DEFAULT_MAX_WIDTH: u32 = 1920;
/// Tallest picture the slots hold unless configured otherwise.
pub const DEFAULT_MAX_HEIGHT: u32 = 1080;
/// How long one connection attempt (TCP connect, DESCRIBE, SETUP, PLAY) may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connected camera may send no picture before it counts as gone, by default.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the camera is and how large its pictures may be.
#[derive(Debug, Clone)]
pub struct RtspConfig {
    /// `rtsp://[user:pass@]host[:port]/path`.
    pub url: String,
    /// Widest picture accepted (slots are sized for `max_width × max_height`).
    pub max_width: u32,
    /// Tallest picture accepted.
    pub max_height: u32,
    /// Bound on one connection attempt.
    pub connect_timeout: Duration,
    /// A connected camera silent this long is treated as disconnected.
    pub frame_timeout: Duration,
    /// Name the frames carry ([`FrameMeta::name`]); default: the URL path's last segment, or the
    /// host.
    pub name: Option<String>,
}

impl RtspConfig {
    /// The camera at `url`, with the default limits.
    pub fn new(url: impl Into<String>) -> Self {
        RtspConfig {
            url: url.into(),
            max_width: DEFAULT_MAX_WIDTH,
            max_height: DEFAULT_MAX_HEIGHT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
            name: None,
        }
    }

    /// Accept pictures up to `width × height`.
    pub fn with_max_size(mut self, width: u32, height: u32) -> Self {
        self.max_width = width;
        self.max_height = height;
        self
    }

    /// Bound each connection attempt by `connect` and a silent connection by `frame`.
    pub fn with_timeouts(mut self, connect: Duration, frame: Duration) -> Self {
        self.connect_timeout = connect;
        self.frame_timeout = frame;
        self
    }

    /// Name the frames `name`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// Why an [`RtspSource`] cannot be made (before any connection is tried).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RtspError {
    /// The URL does not parse.
    #[error("invalid RTSP URL {url:?}: {source}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        source: url::ParseError,
    },
    /// A URL with another scheme than `rtsp`.
    #[error("not an rtsp:// URL: {0:?}")]
    Scheme(String),
    /// A zero maximum size, or one whose slots would not fit in memory.
    #[error("invalid maximum picture size {width}x{height}")]
    MaxSize {
        /// The configured maximum width.
        width: u32,
        /// The configured maximum height.
        height: u32,
    },
    /// The tokio runtime that drives retina could not be made.
    #[error("cannot start the RTSP client's runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// Counters of an [`RtspSource`], shared: keep the [`Arc`] from [`RtspSource::stats`] to read
/// them while the pipeline owns the source.
#[derive(Debug, Default)]
pub struct RtspStats {
    connects: AtomicU64,
    connect_failures: AtomicU64,
    disconnects: AtomicU64,
    frames: AtomicU64,
    decode_errors: AtomicU64,
    lost_packets: AtomicU64,
}

impl RtspStats {
    /// Sessions established (DESCRIBE, SETUP and PLAY succeeded).
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// Connection attempts that failed (refused, timed out, an RTSP error status).
    pub fn connect_failures(&self) -> u64 {
        self.connect_failures.load(Ordering::Relaxed)
    }

    /// Established sessions that were lost (closed, reset, silent past the frame timeout).
    pub fn disconnects(&self) -> u64 {
        self.disconnects.load(Ordering::Relaxed)
    }

    /// Pictures decoded and delivered.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Access units the decoder rejected (skipped; the stream goes on).
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors.load(Ordering::Relaxed)
    }

    /// RTP packets the camera sent that never arrived, as retina reports them.
    pub fn lost_packets(&self) -> u64 {
        self.lost_packets.load(Ordering::Relaxed)
    }
}

/// A live session: retina's demuxed stream and the decoder for it.
struct Live {
    stream: Demuxed,
    decoder: Decoder,
    /// Pictures delivered on this session.
    index: u32,
}

/// An RTSP H.264 camera (see the [module documentation](self)).
pub struct RtspSource {
    cfg: RtspConfig,
    url: Url,
    creds: Option<Credentials>,
    name: Name,
    rt: tokio::runtime::Runtime,
    live: Option<Live>,
    seq: u64,
    stats: Arc<RtspStats>,
}

impl std::fmt::Debug for RtspSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtspSource")
            .field("url", &self.url.as_str())
            .field("max", &(self.cfg.max_width, self.cfg.max_height))
            .field("connected", &self.live.is_some())
            .field("seq", &self.seq)
            .finish()
    }
}

impl RtspSource {
    /// A source for the camera `cfg` describes. Checks the URL and the limits and starts the
    /// runtime; it connects on the first [`Source::next_frame`] call.
    pub fn open(cfg: RtspConfig) -> Result<Self, RtspError> {
        let mut url = Url::parse(&cfg.url).map_err(|source| RtspError::Url {
            url: cfg.url.clone(),
            source,
        })?;
        if url.scheme() != "rtsp" {
            return Err(RtspError::Scheme(cfg.url.clone()));
        }
        if max_frame_len(cfg.max_width, cfg.max_height).is_none() {
            return Err(RtspError::MaxSize {
                width: cfg.max_width,
                height: cfg.max_height,
            });
        }
        let creds = (!url.username().is_empty()).then(|| Credentials {
            username: url.username().to_owned(),
            password: url.password().unwrap_or("").to_owned(),
        });
        // Cannot fail for an rtsp:// URL with a host (retina needs one anyway).
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let name = match &cfg.name {
            Some(n) => name(n),
            None => name(default_name(&url)),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        Ok(RtspSource {
            cfg,
            url,
            creds,
            name,
            rt,
            live: None,
            seq: 0,
            stats: Arc::new(RtspStats::default()),
        })
    }

    /// The source's counters (shared; they keep counting after the source moved into a
    /// pipeline).
    pub fn stats(&self) -> Arc<RtspStats> {
        Arc::clone(&self.stats)
    }

    /// Whether a session is established now.
    pub fn is_connected(&self) -> bool {
        self.live.is_some()
    }

    /// The camera's URL, without credentials.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Drop the session, if any. retina's teardown is spawned on our runtime, so this runs
    /// inside it; the teardown itself goes out during the next `block_on` (or dies with the
    /// runtime, which closes the connection).
    fn close(&mut self) {
        let _enter = self.rt.enter();
        self.live = None;
    }

    /// A connection failure: close, count, and say so.
    fn lost(&mut self, why: String) -> SourceError {
        self.close();
        self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        log::warn!("rtsp {}: connection lost: {why}", self.url);
        SourceError::Disconnected(format!("{}: {why}", self.url))
    }

    /// Establish a session (bounded by the connect timeout).
    fn connect(&mut self) -> Result<(), SourceError> {
        let mut options = SessionOptions::default().user_agent("outpost".to_owned());
        if let Some(c) = &self.creds {
            options = options.creds(Some(c.clone()));
        }
        let url = self.url.clone();
        let limit = self.cfg.connect_timeout;
        let attempt = self
            .rt
            .block_on(async { tokio::time::timeout(limit, open_session(url, options)).await });
        let stream = match attempt {
            Ok(Ok(stream)) => stream,
            Ok(Err(Connect::NoH264(found))) => {
                return Err(SourceError::Other(format!(
                    "{}: no H.264 video stream (the server offers: {found})",
                    self.url
                )));
            }
            Ok(Err(Connect::Rtsp(e))) => return Err(self.connect_failed(e.to_string())),
            Err(_) => {
                return Err(self.connect_failed(format!("no session within {limit:?}")));
            }
        };
        let decoder = Decoder::new()
            .map_err(|e| SourceError::Other(format!("cannot start the H.264 decoder: {e}")))?;
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        log::info!("rtsp {}: playing", self.url);
        self.live = Some(Live {
            stream,
            decoder,
            index: 0,
        });
        Ok(())
    }

    fn connect_failed(&mut self, why: String) -> SourceError {
        // A half-made session (dropped by the timeout) may have spawned its teardown.
        self.close();
        self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
        log::warn!("rtsp {}: cannot connect: {why}", self.url);
        SourceError::Disconnected(format!("{}: cannot connect: {why}", self.url))
    }
}

impl Drop for RtspSource {
    fn drop(&mut self) {
        // retina's session spawns its teardown when dropped: it must be inside the runtime.
        self.close();
    }
}

/// Why [`open_session`] failed.
enum Connect {
    Rtsp(retina::Error),
    /// The server has no H.264 video stream; what it has instead.
    NoH264(String),
}

/// DESCRIBE, SETUP the first H.264 video stream (TCP interleaved, Annex B with the parameter
/// sets before every key frame), PLAY.
async fn open_session(url: Url, options: SessionOptions) -> Result<Demuxed, Connect> {
    let mut session = retina::client::Session::describe(url, options)
        .await
        .map_err(Connect::Rtsp)?;
    let Some(i) = session
        .streams()
        .iter()
        .position(|s| s.media() == "video" && s.encoding_name().eq_ignore_ascii_case("h264"))
    else {
        let found: Vec<String> = session
            .streams()
            .iter()
            .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
            .collect();
        return Err(Connect::NoH264(found.join(", ")));
    };
    session
        .setup(
            i,
            SetupOptions::default()
                .transport(Transport::Tcp(TcpTransportOptions::default()))
                .frame_format(FrameFormat::SIMPLE),
        )
        .await
        .map_err(Connect::Rtsp)?;
    let playing = session
        .play(PlayOptions::default())
        .await
        .map_err(Connect::Rtsp)?;
    playing.demuxed().map_err(Connect::Rtsp)
}

impl Source for RtspSource {
    fn next_frame(&mut self, slot: &mut FrameBuf) -> Result<Option<FrameMeta>, SourceError> {
        if self.live.is_none() {
            self.connect()?;
        }
        let limit = self.cfg.frame_timeout;
        loop {
            let Some(live) = self.live.as_mut() else {
                return Err(SourceError::Disconnected(format!(
                    "{}: not connected",
                    self.url
                )));
            };
            let item = self
                .rt
                .block_on(async { tokio::time::timeout(limit, live.stream.next()).await });
            let frame = match item {
                Ok(Some(Ok(CodecItem::VideoFrame(f)))) => f,
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => return Err(self.lost(e.to_string())),
                Ok(None) => return Err(self.lost("the server ended the session".to_owned())),
                Err(_) => return Err(self.lost(format!("no picture for {limit:?}"))),
            };
            if frame.loss() > 0 {
                self.stats
                    .lost_packets
                    .fetch_add(u64::from(frame.loss()), Ordering::Relaxed);
            }
            let picture = match live.decoder.decode(frame.data()) {
                Ok(Some(p)) => p,
                // Parameter sets only, or a picture not complete yet.
                Ok(None) => continue,
                Err(e) => {
                    self.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                    log::warn!("rtsp {}: undecodable access unit skipped: {e}", self.url);
                    continue;
                }
            };
            let (w, h) = picture.dimensions();
            if w > self.cfg.max_width as usize || h > self.cfg.max_height as usize {
                let msg = format!(
                    "{}: picture {w}x{h} is larger than the configured maximum {}x{} \
                     (raise `width`/`height`)",
                    self.url, self.cfg.max_width, self.cfg.max_height
                );
                self.close();
                return Err(SourceError::Other(msg));
            }
            let (ys, us, vs) = picture.strides();
            write_i420(
                slot,
                (w as u32, h as u32),
                (picture.y(), ys),
                (picture.u(), us),
                (picture.v(), vs),
            )?;
            let meta = FrameMeta {
                seq: self.seq,
                name: self.name.clone(),
                index: live.index,
            };
            live.index = live.index.saturating_add(1);
            self.seq += 1;
            self.stats.frames.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(meta));
        }
    }

    /// An I420 picture of the configured maximum size, tightly packed.
    fn frame_capacity(&self) -> usize {
        max_frame_len(self.cfg.max_width, self.cfg.max_height).unwrap_or(0)
    }
}

/// Bytes of a tightly packed I420 picture of `width × height`; `None` if either is 0 or it
/// overflows.
fn max_frame_len(width: u32, height: u32) -> Option<usize> {
    if width == 0 || height == 0 {
        return None;
    }
    ImageView {
        width,
        height,
        stride: width as usize,
        format: PixelFormat::I420,
        data: &[],
    }
    .required_len()
    .ok()
}

/// Copy a decoded picture's planes (each `(data, stride)`) into `slot` as tightly packed I420.
fn write_i420(
    slot: &mut FrameBuf,
    (w, h): (u32, u32),
    y: (&[u8], usize),
    u: (&[u8], usize),
    v: (&[u8], usize),
) -> Result<(), SourceError> {
    let (wu, hu) = (w as usize, h as usize);
    let (cw, ch) = (wu.div_ceil(2), hu.div_ceil(2));
    let dst = slot.prepare(w, h, wu, PixelFormat::I420)?;
    let (dy, rest) = dst.split_at_mut(wu * hu);
    let (du, dv) = rest.split_at_mut(cw * ch);
    copy_plane(y, dy, wu, hu)?;
    copy_plane(u, du, cw, ch)?;
    copy_plane(v, &mut dv[..cw * ch], cw, ch)?;
    Ok(())
}

/// Copy `rows` rows of `width` bytes from `(src, src_stride)` into `dst`, packed.
fn copy_plane(
    (src, stride): (&[u8], usize),
    dst: &mut [u8],
    width: usize,
    rows: usize,
) -> Result<(), SourceError> {
    if rows == 0 || width == 0 {
        return Ok(());
    }
    let short = || {
        SourceError::Other(format!(
            "decoder plane of {} bytes (stride {stride}) too short for {width}x{rows}",
            src.len()
        ))
    };
    if stride < width || (rows - 1) * stride + width > src.len() {
        return Err(short());
    }
    for (r, out) in dst.chunks_exact_mut(width).take(rows).enumerate() {
        out.copy_from_slice(&src[r * stride..r * stride + width]);
    }
    Ok(())
}

/// The URL path's last non-empty segment, else the host, else `rtsp`.
fn default_name(url: &Url) -> &str {
    url.path_segments()
        .and_then(|mut s| s.rfind(|p| !p.is_empty()))
        .or_else(|| url.host_str())
        .unwrap_or("rtsp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_the_i420_size_of_the_maximum() {
        let src = RtspSource::open(RtspConfig::new("rtsp://127.0.0.1:1/cam")).unwrap();
        assert_eq!(src.frame_capacity(), 1920 * 1080 * 3 / 2);
        let src =
            RtspSource::open(RtspConfig::new("rtsp://127.0.0.1:1/cam").with_max_size(321, 241))
                .unwrap();
        assert_eq!(src.frame_capacity(), 321 * 241 + 2 * 161 * 121);
    }

    #[test]
    fn bad_urls_and_sizes_are_refused() {
        assert!(matches!(
            RtspSource::open(RtspConfig::new("not a url")),
            Err(RtspError::Url { .. })
        ));
        assert!(matches!(
            RtspSource::open(RtspConfig::new("http://127.0.0.1/cam")),
            Err(RtspError::Scheme(_))
        ));
        assert!(matches!(
            RtspSource::open(RtspConfig::new("rtsp://127.0.0.1/cam").with_max_size(0, 10)),
            Err(RtspError::MaxSize { .. })
        ));
    }

    #[test]
    fn credentials_leave_the_url_and_names_default_to_the_path() {
        let src =
            RtspSource::open(RtspConfig::new("rtsp://me:secret@127.0.0.1:9/a/cam1/")).unwrap();
        assert_eq!(src.url(), "rtsp://127.0.0.1:9/a/cam1/");
        assert_eq!(src.name.as_str(), "cam1");
        let c = src.creds.as_ref().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "secret"));
        let src = RtspSource::open(RtspConfig::new("rtsp://10.0.0.7")).unwrap();
        assert_eq!(src.name.as_str(), "10.0.0.7");
    }

    #[test]
    fn a_refused_connection_is_transient_and_counted() {
        // A port nothing listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut src =
            RtspSource::open(RtspConfig::new(format!("rtsp://127.0.0.1:{port}/cam"))).unwrap();
        let mut slot = FrameBuf::new(src.frame_capacity());
        for n in 1..=2 {
            let err = src.next_frame(&mut slot).unwrap_err();
            assert!(err.is_transient(), "{err}");
            assert_eq!(src.stats().connect_failures(), n);
        }
        assert_eq!(src.stats().connects(), 0);
        assert!(!src.is_connected());
    }

    #[test]
    fn planes_are_packed_and_short_planes_refused() {
        let mut slot = FrameBuf::new(max_frame_len(4, 2).unwrap());
        let y: Vec<u8> = (0..16).collect(); // stride 8
        let u = [100, 101, 0, 0];
        let v = [200, 201, 0, 0];
        write_i420(&mut slot, (4, 2), (&y, 8), (&u, 4), (&v, 4)).unwrap();
        assert_eq!(slot.format(), PixelFormat::I420);
        assert_eq!(slot.data(), &[0, 1, 2, 3, 8, 9, 10, 11, 100, 101, 200, 201]);
        assert!(write_i420(&mut slot, (4, 2), (&y[..10], 8), (&u, 4), (&v, 4)).is_err());
    }
}
