//! Shared test helpers: an Azurite process on 127.0.0.1 and record builders.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use outpost_outbox::{Priority, Record, RecordMeta, RedactionPolicy, Redactor, RgbFrame};

pub const INSTALL_HINT: &str = "Azurite is not installed: run `tools/ci/install-azurite.sh` \
     (npm install azurite@3.35.0 into target/azurite, or into $OUTPOST_AZURITE_DIR)";

/// Where the azurite-blob launcher is expected.
pub fn azurite_bin() -> PathBuf {
    let dir = std::env::var_os("OUTPOST_AZURITE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/azurite"));
    dir.join("node_modules/.bin/azurite-blob")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One Azurite blob service with on-disk persistence (so a restart keeps what was uploaded).
pub struct Azurite {
    child: Option<Child>,
    pub port: u16,
    location: tempfile::TempDir,
    bin: PathBuf,
}

impl Azurite {
    /// Start Azurite on a free port; panics with the install command if it is missing.
    pub fn start() -> Azurite {
        let bin = azurite_bin();
        assert!(
            bin.exists(),
            "{INSTALL_HINT} (looked for {})",
            bin.display()
        );
        let mut a = Azurite {
            child: None,
            port: free_port(),
            location: tempfile::tempdir().unwrap(),
            bin,
        };
        a.up();
        a
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    /// (Re)start the process on the same port and location and wait until it accepts connections.
    pub fn up(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new(&self.bin)
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &self.port.to_string(),
                "--location",
            ])
            .arg(self.location.path())
            .args([
                "--skipApiVersionCheck",
                "--loose",
                "--disableTelemetry",
                "--silent",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {INSTALL_HINT}", self.bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let mut err = String::new();
                let _ = self
                    .child
                    .take()
                    .unwrap()
                    .stderr
                    .unwrap()
                    .read_to_string(&mut err);
                panic!("azurite exited ({status}): {err}");
            }
            assert!(
                Instant::now() < deadline,
                "azurite did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the process by PID: SIGTERM (Azurite flushes its metadata), SIGKILL after 10 s.
    pub fn down(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.wait();
    }

    pub fn create_container(&self, name: &str) {
        outpost_outbox::uplink::create_container(
            &self.url(),
            outpost_outbox::uplink::EMULATOR_ACCOUNT,
            outpost_outbox::uplink::EMULATOR_KEY,
            name,
        )
        .unwrap();
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.down();
    }
}

pub fn meta(stream: &str, time_ms: u64, priority: Priority) -> RecordMeta {
    RecordMeta {
        stream: stream.into(),
        time_ms,
        model_id: "test-model".into(),
        model_version: "1.0".into(),
        priority,
    }
}

pub fn json_record(stream: &str, time_ms: u64, priority: Priority, pad: usize) -> Record {
    Record::json(
        meta(stream, time_ms, priority),
        serde_json::json!({ "t": time_ms, "pad": "x".repeat(pad) }),
    )
}

/// A noise frame (incompressible) redacted with the default policy, as a JPEG record.
pub fn frame_record(
    stream: &str,
    time_ms: u64,
    priority: Priority,
    w: u32,
    h: u32,
    seed: u64,
) -> Record {
    let mut rng = fastrand::Rng::with_seed(seed);
    let data = (0..w * h * 3).map(|_| rng.u8(..)).collect();
    let mut frame = RgbFrame::new(w, h, data).unwrap();
    let dets = [outpost_outbox::Detection {
        class: "face".into(),
        score: 0.9,
        x0: 2.0,
        y0: 2.0,
        x1: (w / 4) as f32,
        y1: (h / 4) as f32,
    }];
    let red = Redactor::apply(&RedactionPolicy::default(), &mut frame, &dets);
    Record::frame(meta(stream, time_ms, priority), &red, 80).unwrap()
}

/// Percentile of a sorted slice.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
