//! Video from an `ffmpeg` child process: any file or URL ffmpeg reads (`rtsp://`, `http://`,
//! a local file), decoded by ffmpeg and written as raw frames (`rawvideo`, RGB or YUV) to a
//! pipe that the source reads straight into the pipeline's slots.
//!
//! The frame size is fixed when the source opens: given (ffmpeg scales every frame to it) or
//! probed with `ffprobe` (and still enforced with a scale, so a stream that changes resolution
//! keeps the slots' size). Local files can be paced in real time (`-re`) and looped.
//!
//! Failures: a child that dies, a URL that cannot be reached or a stream that stalls for
//! [`FfmpegConfig::stall_timeout`] ends the child and returns [`SourceError::Disconnected`] with
//! the tail of ffmpeg's stderr; the next [`Source::next_frame`] call starts a new child (the
//! pipeline backs off in between). A local file that ffmpeg cannot read at all is a permanent
//! error. The child is killed and reaped when the source is dropped.

use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::pipeline::{FrameBuf, FrameMeta, Name, Source, SourceError, name};
use crate::preprocess::{ImageView, PixelFormat};

/// Bytes of ffmpeg's stderr kept for error messages (the last ones).
const STDERR_TAIL: usize = 2048;

/// How to run ffmpeg for a [`FfmpegSource`].
#[derive(Debug, Clone, PartialEq)]
pub struct FfmpegConfig {
    /// A file path or a URL ffmpeg reads.
    pub input: String,
    /// Frame size `(width, height)`: ffmpeg scales every frame to it. `None`: probe the input
    /// with ffprobe when the source opens.
    pub size: Option<(u32, u32)>,
    /// Layout of the frames: [`PixelFormat::Rgb8`] (default), `Bgr8`, `Gray8`, `Nv12` (even
    /// widths) or `I420`.
    pub format: PixelFormat,
    /// Deliver a file's frames at its frame rate (ffmpeg's `-re`) instead of as fast as they
    /// are taken.
    pub realtime: bool,
    /// Start a file again at its end (ffmpeg's `-stream_loop -1`) instead of ending.
    pub looping: bool,
    /// A child that sends no bytes for this long is killed (the stream is disconnected).
    pub stall_timeout: Duration,
    /// The `ffmpeg` program.
    pub ffmpeg: PathBuf,
    /// The `ffprobe` program.
    pub ffprobe: PathBuf,
    /// The frames' name ([`FrameMeta::name`]); default: the file stem, or the URL's host.
    pub name: Option<String>,
}

impl FfmpegConfig {
    /// The default stall timeout: 10 s.
    pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(10);

    /// Read `input` as RGB frames of the probed size, once, as fast as they are taken.
    pub fn new(input: impl Into<String>) -> Self {
        FfmpegConfig {
            input: input.into(),
            size: None,
            format: PixelFormat::Rgb8,
            realtime: false,
            looping: false,
            stall_timeout: Self::DEFAULT_STALL_TIMEOUT,
            ffmpeg: PathBuf::from("ffmpeg"),
            ffprobe: PathBuf::from("ffprobe"),
            name: None,
        }
    }

    /// Scale every frame to `width × height`.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = Some((width, height));
        self
    }

    /// Set the pixel layout.
    pub fn format(mut self, format: PixelFormat) -> Self {
        self.format = format;
        self
    }

    /// Pace a file in real time.
    pub fn realtime(mut self, realtime: bool) -> Self {
        self.realtime = realtime;
        self
    }

    /// Loop a file.
    pub fn looping(mut self, looping: bool) -> Self {
        self.looping = looping;
        self
    }

    /// Set the stall timeout.
    pub fn stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// Whether the input is a URL (anything with a `scheme://` other than `file://`): a URL's
    /// stream never ends, it is reopened.
    pub fn is_url(&self) -> bool {
        match self.input.split_once("://") {
            Some((scheme, _)) => {
                !scheme.is_empty()
                    && scheme != "file"
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            }
            None => false,
        }
    }
}

/// Why an [`FfmpegSource`] cannot open.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FfmpegError {
    /// The program could not be started.
    #[error(
        "cannot start `{program}`: {source} (it comes with Debian's `ffmpeg` package; \
         tools/ci/install-system.sh installs it)"
    )]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// ffprobe could not tell the frame size.
    #[error("ffprobe {input}: {reason}")]
    Probe {
        /// The input.
        input: String,
        /// What went wrong (ffprobe's message).
        reason: String,
    },
    /// The settings cannot work.
    #[error("{0}")]
    Config(String),
}

impl From<FfmpegError> for SourceError {
    fn from(e: FfmpegError) -> Self {
        SourceError::Other(e.to_string())
    }
}

/// ffmpeg's `-pix_fmt` name of a layout.
fn pix_fmt(f: PixelFormat) -> &'static str {
    match f {
        PixelFormat::Rgb8 => "rgb24",
        PixelFormat::Bgr8 => "bgr24",
        PixelFormat::Gray8 => "gray",
        PixelFormat::Nv12 => "nv12",
        PixelFormat::I420 => "yuv420p",
    }
}

/// A running ffmpeg child and the thread collecting its stderr.
#[derive(Debug)]
struct Running {
    child: Child,
    stdout: ChildStdout,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<JoinHandle<()>>,
    /// Frames this child delivered.
    frames: u32,
}

impl Running {
    /// The last lines ffmpeg wrote to stderr, on one line.
    fn stderr_tail(&mut self) -> String {
        // The thread ends when the pipe closes (the child is gone by now).
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        let s = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        let s = s.trim().replace('\n', " | ");
        if s.is_empty() {
            "no message on stderr".into()
        } else {
            s
        }
    }

    /// Wait up to `grace` for the child to exit by itself, then kill it; reap it.
    fn finish(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        let deadline = Instant::now() + grace;
        loop {
            if let Some(st) = self.child.try_wait()? {
                return Ok(st);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                return self.child.wait();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
    }
}

/// How a frame read ended.
enum ReadEnd {
    /// The whole frame is in the slot.
    Frame,
    /// The pipe closed after `filled` bytes of the frame.
    Eof { filled: usize },
    /// No byte for the stall timeout.
    Stalled,
}

/// Read exactly `buf.len()` bytes from `r`, waiting at most `stall` for each chunk. Allocates
/// nothing.
fn read_frame(r: &mut ChildStdout, buf: &mut [u8], stall: Duration) -> io::Result<ReadEnd> {
    let mut filled = 0;
    let fd = r.as_raw_fd();
    while filled < buf.len() {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(stall.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `pfd` is one valid, initialised pollfd that outlives the call, and the count
        // passed is 1.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(ReadEnd::Stalled);
        }
        match r.read(&mut buf[filled..]) {
            Ok(0) => return Ok(ReadEnd::Eof { filled }),
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ReadEnd::Frame)
}

/// Video frames from an `ffmpeg` child process (see the module documentation).
#[derive(Debug)]
pub struct FfmpegSource {
    config: FfmpegConfig,
    width: u32,
    height: u32,
    stride: usize,
    frame_len: usize,
    name: Name,
    running: Option<Running>,
    seq: u64,
    /// Children started (the first one included).
    spawns: u64,
    /// A file that reached its end (not looping).
    ended: bool,
}

impl FfmpegSource {
    /// Check the settings, probe the frame size when none is given, and check that ffmpeg
    /// starts. The first child is started by the first [`Source::next_frame`] call, so a URL
    /// that is down now does not fail here (unless its size has to be probed).
    pub fn open(config: FfmpegConfig) -> Result<Self, FfmpegError> {
        if config.input.is_empty() {
            return Err(FfmpegError::Config("no input: give a file or a URL".into()));
        }
        if !config.is_url() && !Path::new(&config.input).exists() {
            return Err(FfmpegError::Config(format!(
                "{}: no such file",
                config.input
            )));
        }
        if config.stall_timeout.is_zero() {
            return Err(FfmpegError::Config(
                "the stall timeout must not be 0".into(),
            ));
        }
        let (width, height) = match config.size {
            Some(s) => s,
            None => probe(&config)?,
        };
        if width == 0 || height == 0 || width > 16384 || height > 16384 {
            return Err(FfmpegError::Config(format!(
                "frame size {width}×{height}: give 1 to 16384 pixels each way"
            )));
        }
        if config.format == PixelFormat::Nv12 && width % 2 == 1 {
            return Err(FfmpegError::Config(format!(
                "nv12 needs an even width (got {width}): use i420 or another size"
            )));
        }
        let stride = config.format.min_stride(width);
        let probe_view = ImageView {
            width,
            height,
            stride,
            format: config.format,
            data: &[],
        };
        let frame_len = probe_view
            .required_len()
            .map_err(|e| FfmpegError::Config(e.to_string()))?;
        check_runs(&config.ffmpeg)?;
        let name = name(&match &config.name {
            Some(n) => n.clone(),
            None if config.is_url() => config
                .input
                .split_once("://")
                .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or("video"))
                .unwrap_or("video")
                .to_string(),
            None => Path::new(&config.input)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("video")
                .to_string(),
        });
        Ok(FfmpegSource {
            config,
            width,
            height,
            stride,
            frame_len,
            name,
            running: None,
            seq: 0,
            spawns: 0,
            ended: false,
        })
    }

    /// The frame size `(width, height)`.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Bytes of one frame on the pipe.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// ffmpeg children started so far (each failure is followed by a new one).
    pub fn spawns(&self) -> u64 {
        self.spawns
    }

    /// The running child's process id, if one runs.
    pub fn child_pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.child.id())
    }

    /// The arguments ffmpeg is started with.
    pub fn args(&self) -> Vec<String> {
        let c = &self.config;
        let mut a: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error"]
            .map(String::from)
            .to_vec();
        if c.realtime {
            a.push("-re".into());
        }
        if c.looping && !c.is_url() {
            a.extend(["-stream_loop".into(), "-1".into()]);
        }
        a.extend(["-i".into(), c.input.clone()]);
        a.extend(
            [
                "-map",
                "0:v:0",
                "-an",
                "-sn",
                "-dn",
                "-vf",
                &format!("scale={}:{}", self.width, self.height),
                "-f",
                "rawvideo",
                "-pix_fmt",
                pix_fmt(c.format),
                "pipe:1",
            ]
            .map(String::from),
        );
        a
    }

    fn spawn(&mut self) -> Result<(), SourceError> {
        let program = self.config.ffmpeg.display().to_string();
        let mut child = Command::new(&self.config.ffmpeg)
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| FfmpegError::Spawn {
                program: program.clone(),
                source,
            })?;
        let pid = child.id();
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SourceError::Other(format!("{program}: no pipes")));
        };
        let tail = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&tail);
        let stderr_thread = std::thread::Builder::new()
            .name(format!("ffmpeg-stderr-{pid}"))
            .spawn(move || collect_stderr(stderr, &sink, pid))
            .map_err(|e| SourceError::Other(format!("cannot start a thread: {e}")))?;
        log::debug!("ffmpeg[{pid}]: started for {}", self.config.input);
        self.spawns += 1;
        self.running = Some(Running {
            child,
            stdout,
            stderr: tail,
            stderr_thread: Some(stderr_thread),
            frames: 0,
        });
        Ok(())
    }

    /// The child is gone or given up on: why, as the error to return.
    fn lost(&mut self, mut run: Running, what: &str) -> SourceError {
        let status = run.finish(Duration::ZERO);
        let tail = run.stderr_tail();
        let status = match status {
            Ok(s) => describe(s),
            Err(e) => format!("cannot reap it: {e}"),
        };
        SourceError::Disconnected(format!(
            "ffmpeg ({}): {what}; {status}: {tail}",
            self.config.input
        ))
    }
}

/// `ffmpeg -version` must run.
fn check_runs(program: &Path) -> Result<(), FfmpegError> {
    let out = Command::new(program)
        .arg("-version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|source| FfmpegError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(FfmpegError::Config(format!(
            "`{} -version` failed: {}",
            program.display(),
            describe(out.status)
        )));
    }
    Ok(())
}

/// The first video stream's size, from ffprobe.
fn probe(c: &FfmpegConfig) -> Result<(u32, u32), FfmpegError> {
    let out = Command::new(&c.ffprobe)
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0:s=x",
            "-i",
            &c.input,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| FfmpegError::Spawn {
            program: c.ffprobe.display().to_string(),
            source,
        })?;
    let err = |reason: String| FfmpegError::Probe {
        input: c.input.clone(),
        reason,
    };
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', " | ");
        return Err(err(format!("{}: {msg}", describe(out.status))));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    let parsed = line.and_then(|l| {
        let mut it = l.split('x').filter(|s| !s.is_empty());
        let w = it.next()?.parse().ok()?;
        let h = it.next()?.parse().ok()?;
        Some((w, h))
    });
    parsed.ok_or_else(|| {
        err(format!(
            "no video stream size in its output {:?}; give width and height",
            text.trim()
        ))
    })
}

/// How a child ended, in words.
fn describe(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => s.to_string(),
    }
}

/// Log ffmpeg's stderr lines and keep the last [`STDERR_TAIL`] bytes.
fn collect_stderr(stderr: impl Read, tail: &Mutex<String>, pid: u32) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        log::warn!("ffmpeg[{pid}]: {line}");
        if let Ok(mut t) = tail.lock() {
            t.push_str(&line);
            t.push('\n');
            if t.len() > STDERR_TAIL {
                let mut cut = t.len() - STDERR_TAIL;
                while !t.is_char_boundary(cut) {
                    cut += 1;
                }
                t.drain(..cut);
            }
        }
    }
}

impl Source for FfmpegSource {
    fn next_frame(&mut self, slot: &mut FrameBuf) -> Result<Option<FrameMeta>, SourceError> {
        if self.ended {
            return Ok(None);
        }
        if self.running.is_none() {
            self.spawn()?;
        }
        let buf = slot.prepare(self.width, self.height, self.stride, self.config.format)?;
        let Some(run) = self.running.as_mut() else {
            return Err(SourceError::Other("no ffmpeg child".into()));
        };
        let end = read_frame(&mut run.stdout, buf, self.config.stall_timeout);
        match end {
            Ok(ReadEnd::Frame) => {
                let index = run.frames;
                run.frames = run.frames.saturating_add(1);
                let meta = FrameMeta {
                    seq: self.seq,
                    name: self.name.clone(),
                    index,
                };
                self.seq += 1;
                Ok(Some(meta))
            }
            Ok(ReadEnd::Stalled) => {
                let run = self.running.take().expect("checked above");
                let ms = self.config.stall_timeout.as_millis();
                Err(self.lost(run, &format!("no data for {ms} ms")))
            }
            Ok(ReadEnd::Eof { filled }) => {
                let mut run = self.running.take().expect("checked above");
                let status = run.finish(Duration::from_secs(2));
                let clean = filled == 0 && status.as_ref().is_ok_and(ExitStatus::success);
                if clean && !self.config.is_url() {
                    // The end of a file (ffmpeg loops by itself when asked to).
                    log::debug!("ffmpeg ({}): end of the file", self.config.input);
                    self.ended = true;
                    return Ok(None);
                }
                let first_ever = run.frames == 0 && self.seq == 0;
                let failed = status
                    .as_ref()
                    .is_ok_and(|s| s.code().is_some_and(|c| c != 0));
                let tail = run.stderr_tail();
                let status = match status {
                    Ok(s) => describe(s),
                    Err(e) => format!("cannot reap it: {e}"),
                };
                let what = if filled > 0 {
                    format!("the pipe closed {filled} bytes into a frame")
                } else {
                    "the stream ended".into()
                };
                let msg = format!("ffmpeg ({}): {what}; {status}: {tail}", self.config.input);
                if failed && first_ever && !self.config.is_url() {
                    // A local file ffmpeg cannot read at all: trying again cannot help.
                    return Err(SourceError::Other(msg));
                }
                Err(SourceError::Disconnected(msg))
            }
            Err(e) => {
                let run = self.running.take().expect("checked above");
                Err(self.lost(run, &format!("reading its output: {e}")))
            }
        }
    }

    fn frame_capacity(&self) -> usize {
        self.frame_len
    }
}
