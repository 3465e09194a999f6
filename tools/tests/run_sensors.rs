//! `outpost run --config` with sensor and audio streams and no model (the passthrough): a CSV
//! replay and one of alsa-utils' speech WAVs (Debian `alsa-utils`, installed by
//! tools/ci/install-system.sh), printed and summarised; config errors name the key.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const SPEECH: &str = "/usr/share/sounds/alsa/Front_Center.wav";

fn outpost() -> Command {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("outpost-run-sensors-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `outpost run --json --out OUT --config CFG`, which must succeed: its JSON lines.
fn run_json(cfg: &Path, out_dir: &Path) -> Vec<Value> {
    let out = outpost()
        .args(["run", "--json", "--out"])
        .arg(out_dir)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn csv_and_wav_streams_without_a_model() {
    assert!(
        Path::new(SPEECH).exists(),
        "{SPEECH} is missing: install the Debian package `alsa-utils` \
         (tools/ci/install-system.sh does)"
    );
    let dir = temp_dir("ok");
    let mut csv = String::from("t,ax,ay,note\n");
    for i in 0..12 {
        csv.push_str(&format!("{},{},{},n{i}\n", i as f64 * 0.001, i, 2 * i));
    }
    std::fs::write(dir.join("imu.csv"), csv).unwrap();
    let config = format!(
        "[[stream]]\nname = \"imu\"\ncsv = {{ path = \"imu.csv\", columns = [\"ax\", \"ay\"], \
         window = 4, timestamp = \"t\" }}\npolicy = \"block\"\n\n\
         [[stream]]\nname = \"mic\"\nwav = {{ path = \"{SPEECH}\", window = 4800, hop = 4800 }}\n\
         policy = \"block\"\n"
    );
    let cfg = dir.join("sensors.toml");
    std::fs::write(&cfg, config).unwrap();
    let lines = run_json(&cfg, &dir.join("out"));
    let imu: Vec<&Value> = lines.iter().filter(|v| v["stream"] == "imu").collect();
    assert_eq!(imu.len(), 3);
    // Window 1 holds rows 4..8: ax mean 5.5, ay mean 11.
    let w = &imu[1]["samples"];
    assert_eq!(
        (w["frames"].as_u64(), w["channels"].as_u64()),
        (Some(4), Some(2))
    );
    assert_eq!(w["mean"], serde_json::json!([5.5, 11.0]));
    assert_eq!(w["max"], serde_json::json!([7.0, 14.0]));
    // About 1.4 s of 48 kHz speech: 14 windows of 0.1 s (exact windowing is tested in
    // runtime/tests/sample_sources.rs).
    let mic = lines.iter().filter(|v| v["stream"] == "mic").count();
    assert!((10..=20).contains(&mic), "{mic} windows");
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["published"].as_u64(), Some((3 + mic) as u64));

    // Text output: one line per window.
    let out = outpost()
        .args(["run", "--out"])
        .arg(dir.join("out"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("imu/imu #1: 4×2 samples, mean [5.5000, 11.0000]"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sensor_config_errors_name_the_key() {
    let dir = temp_dir("err");
    let cases = [
        (
            "csv = { path = \"missing.csv\", columns = [\"x\"] }",
            "stream `s`: csv: ",
        ),
        (
            "csv = { path = \"a.csv\", columns = [\"x\"], rate = 5, timestamp = \"t\" }",
            "csv: give `rate` or `timestamp`, not both",
        ),
        (
            "wav = { path = \"x.wav\", window = 4 }\nmqtt = { topics = [\"a\"], window = 2 }",
            "give one source per stream",
        ),
        (
            "mqtt = { topics = [\"a\"], window = 2, channels = 99 }",
            "channels 99: give 1 to 16",
        ),
    ];
    for (i, (keys, want)) in cases.iter().enumerate() {
        let cfg = dir.join(format!("bad{i}.toml"));
        std::fs::write(&cfg, format!("[[stream]]\nname = \"s\"\n{keys}\n")).unwrap();
        let out = outpost()
            .args(["run", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{keys}: {err}");
        assert!(err.contains(want), "{keys}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real IMU recording (`outpost fetch` puts it in `.models/data/`) through `outpost run`
/// with the stream docs/runtime.md shows, replayed at ten times its 100 Hz.
#[test]
fn real_imu_recording_through_outpost_run() {
    let csv = outpost_tests::model_file("data/imu_walk_lower_back.csv");
    let dir = temp_dir("imu");
    let cfg = dir.join("imu.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[stream]]\nname = \"imu\"\ncsv = {{ path = {:?}, columns = [\"acc_x\", \"acc_y\", \
             \"acc_z\", \"gyr_x\", \"gyr_y\", \"gyr_z\"], window = 100, hop = 50, rate = 1000 }}\n\
             policy = \"block\"\n",
            csv.display().to_string()
        ),
    )
    .unwrap();
    let lines = run_json(&cfg, &dir.join("out"));
    let imu: Vec<&Value> = lines.iter().filter(|v| v["stream"] == "imu").collect();
    assert_eq!(imu.len(), 23, "(1,246 rows - 100) / 50 + 1 windows");
    // Window 3 holds rows 150..250: its per-channel means, from the file.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut want = [0f64; 6];
    for line in text.lines().skip(1 + 150).take(100) {
        for (w, f) in want.iter_mut().zip(line.split(',').skip(1)) {
            *w += f.parse::<f64>().unwrap() / 100.0;
        }
    }
    let w = &imu[3]["samples"];
    assert_eq!(
        (w["frames"].as_u64(), w["channels"].as_u64()),
        (Some(100), Some(6))
    );
    let got: Vec<f64> = w["mean"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (c, (g, e)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - e).abs() <= 1e-3 * e.abs().max(1.0),
            "channel {c}: {g} vs {e}"
        );
    }
    // Gravity along the sensor's vertical axis (acc_x, in g) while walking upright.
    assert!((0.8..1.2).contains(&got[0]), "acc_x mean {}", got[0]);
    let _ = std::fs::remove_dir_all(&dir);
}
