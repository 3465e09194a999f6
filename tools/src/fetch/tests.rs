//! Offline tests: a tiny wheel built here, served from a local HTTP server or put in the cache.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::*;

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A zip (deflated, like real wheels) holding `pkg/model.bin` and `pkg/image.png`.
fn tiny_wheel() -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    w.start_file("pkg/model.bin", opts).unwrap();
    w.write_all(&MODEL.repeat(100)).unwrap();
    w.start_file("pkg/image.png", opts).unwrap();
    w.write_all(IMAGE).unwrap();
    w.finish().unwrap().into_inner()
}

const MODEL: &[u8] = b"not really a model, but compressible ";
const IMAGE: &[u8] = b"\x89PNG not really an image";

/// Serves `body` at `/t.whl` (404 elsewhere) on a local port; counts requests.
struct Server {
    url: String,
    requests: Arc<AtomicUsize>,
}

fn serve(body: Vec<u8>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/t.whl", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let found = line.starts_with("GET /t.whl ");
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                    break;
                }
            }
            let (status, payload): (&str, &[u8]) = if found {
                ("200 OK", &body)
            } else {
                ("404 Not Found", b"")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                payload.len()
            );
            let _ = stream.write_all(payload);
        }
    });
    Server { url, requests }
}

/// A table of two artifacts from one wheel at `url`, with the given pins.
fn table(url: &str, wheel: &[u8], wheel_sha: &str, model_sha: &str) -> Vec<&'static Artifact> {
    let wheel: &'static Wheel = Box::leak(Box::new(Wheel {
        requirement: "tiny==1.0",
        file: "t.whl",
        url: leak(url.to_string()),
        size: wheel.len() as u64,
        sha256: leak(wheel_sha.to_string()),
    }));
    let model = Artifact {
        target: "src/model.bin",
        wheel,
        member: "pkg/model.bin",
        sha256: leak(model_sha.to_string()),
    };
    let image = Artifact {
        target: "data/image.png",
        wheel,
        member: "pkg/image.png",
        sha256: leak(sha(IMAGE)),
    };
    vec![Box::leak(Box::new(model)), Box::leak(Box::new(image))]
}

fn good_table(url: &str, wheel: &[u8]) -> Vec<&'static Artifact> {
    table(url, wheel, &sha(wheel), &sha(&MODEL.repeat(100)))
}

fn no_part_files(dir: &Path) {
    for sub in ["", "src", "data", "cache"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !name.ends_with(".part"),
                "temporary file left: {sub}/{name}"
            );
        }
    }
}

#[test]
fn downloads_extracts_then_does_nothing() {
    let wheel = tiny_wheel();
    let server = serve(wheel.clone());
    let dir = tempfile::tempdir().unwrap();
    let arts = good_table(&server.url, &wheel);

    let r = ensure_artifacts(dir.path(), &arts, false).unwrap();
    assert_eq!(r.downloads, 1);
    assert_eq!(r.downloaded_bytes, wheel.len() as u64);
    assert!(r.items.iter().all(|i| i.status == Status::Extracted));
    assert_eq!(r.items[0].path, dir.path().join("src").join("model.bin"));
    assert_eq!(std::fs::read(&r.items[0].path).unwrap(), MODEL.repeat(100));
    assert_eq!(std::fs::read(&r.items[1].path).unwrap(), IMAGE);
    assert_eq!(
        std::fs::read(dir.path().join("cache/t.whl")).unwrap(),
        wheel
    );

    let again = ensure_artifacts(dir.path(), &arts, false).unwrap();
    assert_eq!(again.downloads, 0);
    assert!(again.items.iter().all(|i| i.status == Status::Present));
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    no_part_files(dir.path());
}

#[test]
fn corrupted_files_are_detected_and_fetched_again() {
    let wheel = tiny_wheel();
    let server = serve(wheel.clone());
    let dir = tempfile::tempdir().unwrap();
    let arts = good_table(&server.url, &wheel);
    let model = dir.path().join("src/model.bin");
    let cached = dir.path().join("cache/t.whl");
    ensure_artifacts(dir.path(), &arts, false).unwrap();

    // A damaged extracted file is re-extracted from the cached wheel: no download.
    std::fs::write(&model, b"damaged").unwrap();
    let r = ensure_artifacts(dir.path(), &arts, false).unwrap();
    assert_eq!(r.downloads, 0);
    assert_eq!(r.items[0].status, Status::Extracted);
    assert_eq!(r.items[1].status, Status::Present);
    assert_eq!(std::fs::read(&model).unwrap(), MODEL.repeat(100));
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);

    // A damaged cached wheel is downloaded again when one of its files is needed.
    let mut bad = wheel.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&cached, &bad).unwrap();
    std::fs::remove_file(&model).unwrap();
    let r = ensure_artifacts(dir.path(), &arts, false).unwrap();
    assert_eq!(r.downloads, 1);
    assert_eq!(std::fs::read(&cached).unwrap(), wheel);
    assert_eq!(std::fs::read(&model).unwrap(), MODEL.repeat(100));
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    no_part_files(dir.path());
}

#[test]
fn wrong_member_pin_is_a_hash_mismatch_offline() {
    // The wheel is already in the cache (no server at all); the member's pin is wrong.
    let wheel = tiny_wheel();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cache")).unwrap();
    std::fs::write(dir.path().join("cache/t.whl"), &wheel).unwrap();
    let wrong = "0".repeat(64);
    let arts = table("http://127.0.0.1:9/unused", &wheel, &sha(&wheel), &wrong);
    match ensure_artifacts(dir.path(), &arts[..1], false) {
        Err(FetchError::HashMismatch {
            path,
            expected,
            got,
        }) => {
            assert_eq!(path, dir.path().join("src/model.bin"));
            assert_eq!(expected, wrong);
            assert_eq!(got, sha(&MODEL.repeat(100)));
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    assert!(!dir.path().join("src/model.bin").exists());
    no_part_files(dir.path());
}

#[test]
fn wrong_wheel_pin_is_a_hash_mismatch() {
    let wheel = tiny_wheel();
    let server = serve(wheel.clone());
    let dir = tempfile::tempdir().unwrap();
    let wrong = "f".repeat(64);
    let arts = table(&server.url, &wheel, &wrong, &sha(&MODEL.repeat(100)));
    let e = ensure_artifacts(dir.path(), &arts, false).unwrap_err();
    let FetchError::HashMismatch {
        path,
        expected,
        got,
    } = &e
    else {
        panic!("expected a hash mismatch, got {e:?}");
    };
    assert_eq!(*path, dir.path().join("cache/t.whl"));
    assert_eq!(*expected, wrong);
    assert_eq!(*got, sha(&wheel));
    assert!(e.to_string().contains("expected ffff"), "{e}");
    assert!(!dir.path().join("cache/t.whl").exists());
    no_part_files(dir.path());
}

#[test]
fn oversized_download_is_cut_off() {
    let wheel = tiny_wheel();
    let mut bigger = wheel.clone();
    bigger.extend_from_slice(&[0; 1000]);
    let server = serve(bigger);
    let dir = tempfile::tempdir().unwrap();
    let arts = good_table(&server.url, &wheel);
    let e = ensure_artifacts(dir.path(), &arts, false).unwrap_err();
    assert!(matches!(e, FetchError::TooLarge { .. }), "{e:?}");
    no_part_files(dir.path());
}

#[test]
fn missing_file_on_server_is_an_http_error_without_retries() {
    let wheel = tiny_wheel();
    let server = serve(wheel.clone());
    let dir = tempfile::tempdir().unwrap();
    let url = server.url.replace("/t.whl", "/gone.whl");
    let arts = good_table(&url, &wheel);
    let e = ensure_artifacts(dir.path(), &arts, false).unwrap_err();
    assert!(
        matches!(e, FetchError::HttpStatus { status: 404, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains(&url), "{e}");
    assert!(e.to_string().contains("OUTPOST_MODELS"), "{e}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

#[test]
fn unreachable_server_names_the_url_and_the_way_out() {
    // Nothing listens on a port we just closed; three quick refusals.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/t.whl");
    let wheel = tiny_wheel();
    let dir = tempfile::tempdir().unwrap();
    let arts = good_table(&url, &wheel);
    let e = ensure_artifacts(dir.path(), &arts, false).unwrap_err();
    assert!(matches!(e, FetchError::Network { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&url) && msg.contains("OUTPOST_MODELS"),
        "{msg}"
    );
}

/// A gzipped tar like a source distribution: `pkg-1.0/` with a data file and another file.
fn tiny_sdist() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in [
        ("pkg-1.0/setup.py", &b"print()"[..]),
        ("pkg-1.0/data/imu.csv", b"t,ax\n0,1\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn sdist_table(sdist: &[u8], member: &'static str) -> Vec<&'static Artifact> {
    let wheel: &'static Wheel = Box::leak(Box::new(Wheel {
        requirement: "pkg==1.0 (sdist)",
        file: "pkg-1.0.tar.gz",
        url: "http://127.0.0.1:9/pkg-1.0.tar.gz",
        size: sdist.len() as u64,
        sha256: leak(sha(sdist)),
    }));
    vec![Box::leak(Box::new(Artifact {
        target: "data/walk.csv",
        wheel,
        member,
        sha256: leak(sha(b"t,ax\n0,1\n")),
    }))]
}

#[test]
fn source_distributions_are_read_as_gzipped_tars() {
    let sdist = tiny_sdist();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cache")).unwrap();
    std::fs::write(dir.path().join("cache/pkg-1.0.tar.gz"), &sdist).unwrap();

    let arts = sdist_table(&sdist, "pkg-1.0/data/imu.csv");
    let r = ensure_artifacts(dir.path(), &arts, false).unwrap();
    assert_eq!(r.downloads, 0, "taken from the cache");
    assert_eq!(r.items[0].status, Status::Extracted);
    assert_eq!(r.items[0].path, dir.path().join("data").join("walk.csv"));
    assert_eq!(std::fs::read(&r.items[0].path).unwrap(), b"t,ax\n0,1\n");

    std::fs::remove_file(&r.items[0].path).unwrap();
    let e =
        ensure_artifacts(dir.path(), &sdist_table(&sdist, "pkg-1.0/nope.csv"), false).unwrap_err();
    assert!(matches!(e, FetchError::Archive { .. }), "{e}");
    assert!(e.to_string().contains("pkg-1.0/nope.csv"), "{e}");
    assert!(e.to_string().contains("no such file"), "{e}");
    no_part_files(dir.path());
}

#[test]
fn items_resolve_to_files_and_groups() {
    let targets = |items: &[&str]| -> Vec<&str> {
        resolve(items).unwrap().iter().map(|a| a.target).collect()
    };
    assert_eq!(targets(&["sources"]).len(), 6);
    assert!(targets(&["sources"]).iter().all(|t| t.starts_with("src/")));
    assert_eq!(targets(&["images"]).len(), 9);
    assert_eq!(targets(&["all"]).len(), ARTIFACTS.len());
    assert_eq!(
        targets(&["astronaut.png", "data/astronaut.png", "src/centerface.onnx"]),
        ["data/astronaut.png", "src/centerface.onnx"]
    );
    assert_eq!(targets(&["images", "all"]).len(), ARTIFACTS.len());
    let e = resolve(&["nope.png"]).unwrap_err();
    assert!(matches!(e, FetchError::UnknownItem { .. }));
    assert!(e.to_string().contains("data/china.jpg"), "{e}");
}

#[test]
fn pins_are_well_formed() {
    let hex64 = |s: &str| {
        s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    for w in table::WHEELS {
        assert!(hex64(w.sha256), "{}", w.file);
        assert!(
            w.url
                .starts_with("https://files.pythonhosted.org/packages/")
        );
        assert!(w.url.ends_with(&format!("/{}", w.file)), "{}", w.url);
        assert!(ARTIFACTS.iter().any(|a| std::ptr::eq(a.wheel, w)));
    }
    for (i, a) in ARTIFACTS.iter().enumerate() {
        assert!(hex64(a.sha256), "{}", a.target);
        // Files keep their names, except the sensor recording taken out of a source
        // distribution, whose own name (`TimeMeasure1_Test5_Trial1.csv`) says nothing here.
        assert!(
            a.member.ends_with(a.file_name()) || a.wheel.file.ends_with(".tar.gz"),
            "{}",
            a.target
        );
        assert!(table::WHEELS.iter().any(|w| std::ptr::eq(a.wheel, *w)));
        assert!(
            ARTIFACTS[..i]
                .iter()
                .all(|b| b.file_name() != a.file_name()),
            "{} twice",
            a.file_name()
        );
    }
}

#[test]
fn workspace_root_is_found() {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(!is_workspace_root(tools));
    assert!(is_workspace_root(tools.parent().unwrap()));
}
