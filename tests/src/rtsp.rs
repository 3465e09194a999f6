//! A real RTSP test camera for the tests: `tests/support/rtsp_server.py` (GstRtspServer serving
//! `videotestsrc ! x264enc ! rtph264pay`, SMPTE colour bars at 320×240, 30 fps) started on a
//! free 127.0.0.1 port and killed by PID. Needs Debian `python3-gi gir1.2-gst-rtsp-server-1.0
//! gstreamer1.0-plugins-{base,good,ugly}` (`tools/ci/install-system.sh`, run by `tools/test`).

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Picture width the server sends.
pub const WIDTH: usize = 320;
/// Picture height the server sends.
pub const HEIGHT: usize = 240;
/// Frames per second the server sends.
pub const FPS: f64 = 30.0;
/// The Python that has `gi` (Debian's).
pub const PYTHON: &str = "/usr/bin/python3";

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("support/rtsp_server.py")
}

/// Fails clearly when the server's packages are missing.
fn require_server_packages() {
    let probe = Command::new(PYTHON)
        .args([
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); \
             from gi.repository import GstRtspServer",
        ])
        .stderr(Stdio::null())
        .status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "the RTSP test server needs {PYTHON} with GstRtspServer: install Debian python3-gi \
         gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
         gstreamer1.0-plugins-ugly (tools/ci/install-system.sh does, as root)"
    );
}

/// A running `tests/support/rtsp_server.py`, killed by PID when dropped.
#[derive(Debug)]
pub struct RtspServer {
    child: Child,
    port: u16,
}

impl RtspServer {
    /// Start the server on `port` and wait until it listens.
    pub fn start(port: u16) -> Self {
        require_server_packages();
        // A port just released by a killed server can take a moment to bind again.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match Self::try_start(port) {
                Ok(s) => return s,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rtsp server on {port}: {e}; retrying");
                    thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("rtsp server on {port} did not start: {e}"),
            }
        }
    }

    fn try_start(port: u16) -> Result<Self, String> {
        let mut child = Command::new(PYTHON)
            .arg(script())
            .args(["--port", &port.to_string(), "--width", &WIDTH.to_string()])
            .args([
                "--height",
                &HEIGHT.to_string(),
                "--fps",
                &(FPS as u32).to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {PYTHON} {}: {e}", script().display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut first = String::new();
            let _ = BufReader::new(stdout).read_line(&mut first);
            let _ = tx.send(first);
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.starts_with("ready ") => Ok(RtspServer { child, port }),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                Err(format!("no ready line ({other:?}); stderr: {err}"))
            }
        }
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam", self.port)
    }

    /// SIGKILL by PID: the connection drops with no RTSP teardown, as when a camera dies.
    pub fn kill(mut self) {
        self.stop();
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.stop();
    }
}
