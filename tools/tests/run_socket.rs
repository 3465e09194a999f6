//! `outpost run --socket PATH`: the demo publishes every frame's results on a Unix socket. Runs
//! the real binary on the sample images, subscribes with the `outpost-client` library and checks
//! the astronaut's face and a face-free frame, then SIGTERMs the runtime and checks it exits 0
//! and removes the socket.
//!
//! Uses the repository's `.models` (set `OUTPOST_MODELS` to use another); when the files are
//! missing, the demo fetches them itself.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use outpost_client::{ClientConfig, ClientError, Event, Subscribe};

/// The demo replays its images in this order (`outpost run`'s DEMO_IMAGES).
const STEMS: [&str; 7] = [
    "astronaut",
    "chelsea",
    "coffee",
    "china",
    "rocket",
    "motorcycle_left",
    "flower",
];
const ASTRONAUT: u64 = 0;
const COFFEE: u64 = 2;
/// The face the demo model finds in the astronaut, in source pixels.
const ASTRONAUT_FACE: [f32; 4] = [179.0, 81.0, 272.0, 174.0];

fn models_dir() -> PathBuf {
    std::env::var_os("OUTPOST_MODELS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.models"))
}

fn outpost() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_outpost"));
    c.env("OUTPOST_MODELS", models_dir());
    c
}

/// Kills the runtime if the test fails before it is stopped.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_for(path: &Path, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !path.exists() {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("outpost run exited ({st}) before {what} appeared");
        }
        assert!(Instant::now() < deadline, "{what} did not appear");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Size of a demo image, to turn the wire's normalised boxes back into pixels.
fn image_size(stem: &str) -> (f32, f32) {
    let dir = models_dir().join("data");
    let path = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_stem().and_then(|s| s.to_str()) == Some(stem))
        .unwrap_or_else(|| panic!("no {stem} image in {}", dir.display()));
    let (w, h) = image::image_dimensions(&path).expect("image size");
    (w as f32, h as f32)
}

#[test]
fn run_publishes_results_on_the_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("r.sock");
    let out = tmp.path().join("out");
    let child = outpost()
        .args(["run", "--socket"])
        .arg(&sock)
        .arg("--out")
        .arg(&out)
        .args(["--loop", "--fps", "50", "--policy", "block"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start outpost run");
    let mut guard = Guard(Some(child));
    // Drain the output so that a full pipe never stalls the runtime.
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let child = guard.0.as_mut().unwrap();
    let out_thread = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err_thread = drain(child.stderr.take().map(|r| Box::new(r) as _));
    wait_for(&sock, "the socket", guard.0.as_mut().unwrap());

    let mut config = ClientConfig::new(&sock);
    config.read_timeout = Some(Duration::from_secs(10));
    config.reconnect = false;
    let client = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match outpost_client::Client::connect_with(config.clone()) {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("connect: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot connect to {}: {e}", sock.display()),
            }
        }
    };
    let models = {
        let mut c = client;
        // The runtime announces its models right after binding.
        let mut m = c.list_models().expect("list models");
        for _ in 0..50 {
            if !m.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            m = c.list_models().expect("list models");
        }
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].id.as_str(), "blazeface-short-int8");
        assert!(m[0].active);
        c
    };
    let (aw, ah) = image_size(STEMS[ASTRONAUT as usize]);
    let mut sub = models.subscribe(Subscribe::all()).expect("subscribe");
    let (mut face_ok, mut coffee_ok) = (false, false);
    let mut last_seq = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(face_ok && coffee_ok) {
        assert!(Instant::now() < deadline, "no matching results in 60 s");
        let r = match sub.next() {
            Some(Ok(Event::Result(r))) => r,
            Some(Ok(_)) => continue,
            Some(Err(ClientError::Timeout)) => panic!("no result for 10 s"),
            Some(Err(e)) => panic!("subscription: {e}"),
            None => panic!("subscription ended"),
        };
        assert_eq!(r.stream, 0);
        assert_eq!(r.model.id.as_str(), "blazeface-short-int8");
        assert!(
            r.capture_ns <= r.inference_ns && r.inference_ns <= r.publish_ns,
            "timestamps out of order: {r:?}"
        );
        if let Some(prev) = last_seq {
            assert!(r.seq > prev, "seq {} after {prev}", r.seq);
        }
        last_seq = Some(r.seq);
        match r.seq % STEMS.len() as u64 {
            ASTRONAUT => {
                assert_eq!(r.detections.len(), 1, "astronaut: {:?}", r.detections);
                let d = &r.detections[0];
                let b = [
                    d.bbox.x_min * aw,
                    d.bbox.y_min * ah,
                    d.bbox.x_max * aw,
                    d.bbox.y_max * ah,
                ];
                for (got, want) in b.iter().zip(ASTRONAUT_FACE) {
                    assert!((got - want).abs() <= 8.0, "astronaut box {b:?}");
                }
                assert!(d.score > 0.8, "astronaut score {}", d.score);
                assert_eq!(d.class, 0);
                assert_eq!(d.keypoints.len(), 6, "BlazeFace keypoints");
                for k in d.keypoints.iter() {
                    assert!(
                        (0.0..=1.0).contains(&k.x) && (0.0..=1.0).contains(&k.y),
                        "keypoint {k:?}"
                    );
                }
                face_ok = true;
            }
            COFFEE => {
                assert!(r.detections.is_empty(), "coffee: {:?}", r.detections);
                coffee_ok = true;
            }
            _ => {}
        }
    }
    drop(sub);

    // `outpost client subscribe --count N` against the same runtime.
    let o = outpost()
        .args(["client", "subscribe", "--socket"])
        .arg(&sock)
        .args(["--count", "3", "--no-reconnect"])
        .output()
        .expect("run outpost client");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "client subscribe: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        stdout.lines().count(),
        3,
        "client subscribe printed:\n{stdout}"
    );

    let mut child = guard.0.take().unwrap();
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("outpost run did not stop within 60 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_thread.join().unwrap();
    let stderr = err_thread.join().unwrap();
    assert!(
        status.success(),
        "exit {status}\nstderr: {stderr}\nstdout tail: {}",
        stdout.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    assert!(
        stdout.contains("socket: ") && stdout.contains("result(s) published"),
        "no socket summary line:\n{stdout}"
    );
    assert!(!sock.exists(), "the socket file was not removed");
}

/// Runs `outpost run --frames 1 ARGS… --out TMP/out`, expects exit status 2 and a one-line
/// error, and returns it.
fn run_input_error(tmp: &Path, args: &[&std::ffi::OsStr]) -> String {
    let o = outpost()
        .args(["run", "--frames", "1"])
        .args(args)
        .arg("--out")
        .arg(tmp.join("out"))
        .output()
        .expect("run outpost");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one-line error: {stderr}");
    stderr
}

#[test]
fn run_socket_bad_path_is_an_input_error() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("missing-dir").join("r.sock");
    let stderr = run_input_error(tmp.path(), &["--socket".as_ref(), sock.as_os_str()]);
    assert!(stderr.contains("--socket"), "{stderr}");
}

#[test]
fn run_ipc_cpu_that_does_not_exist_is_an_input_error() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("r.sock");
    let args = [
        "--ipc-cpu".as_ref(),
        "100000".as_ref(),
        "--socket".as_ref(),
        sock.as_os_str(),
    ];
    let stderr = run_input_error(tmp.path(), &args);
    assert!(
        stderr.contains("--socket") && stderr.contains("cannot pin the I/O thread"),
        "{stderr}"
    );
    assert!(!sock.exists(), "no socket file left");
}
