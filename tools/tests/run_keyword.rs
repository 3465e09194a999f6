//! `outpost run --config` with a microphone-like audio stream into the real microWakeWord
//! `okay_nabu` model (from `outpost fetch-models`): espeak-ng speech (Debian package, installed
//! by tools/ci/install-system.sh) resampled to 16 kHz, "okay nabu" then "hello world", read as
//! a WAV stream in 30 ms windows. The wake word is detected while "okay nabu" is heard and not
//! during "hello world"; audio at another rate is refused naming the rate.

use std::path::{Path, PathBuf};
use std::process::Command;

use outpost_runtime::audio::resample;
use serde_json::Value;

fn model() -> PathBuf {
    outpost_tests::model_file("okay-nabu-int8.safetensors")
}

/// espeak-ng speech as 16-bit samples at 22050 Hz (its WAV header's length is a placeholder
/// when written to a pipe: read to the end).
fn speak(text: &str) -> Vec<i16> {
    let o = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "140", "--stdout", text])
        .output()
        .expect("espeak-ng (install it: tools/ci/install-system.sh)");
    assert!(o.status.success());
    assert_eq!(&o.stdout[36..40], b"data", "espeak-ng WAV layout");
    o.stdout[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn write_wav(path: &Path, pcm: &[i16], rate: u32) {
    let data = (pcm.len() * 2) as u32;
    let mut v = Vec::with_capacity(44 + data as usize);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    for x in [16u32, 1 | (1 << 16), rate, rate * 2, 2 | (16 << 16)] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data.to_le_bytes());
    v.extend(pcm.iter().flat_map(|s| s.to_le_bytes()));
    std::fs::write(path, v).unwrap();
}

fn run(config: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["run", "--json", "--out"])
        .arg(out)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

#[test]
fn wake_word_stream_detects_okay_nabu_only() {
    let dir = tempfile::tempdir().unwrap();
    let okay = resample::linear(&speak("okay nabu"), 22_050, 16_000);
    let hello = resample::linear(&speak("hello world"), 22_050, 16_000);
    // 0.5 s silence, "okay nabu", 1.5 s silence, "hello world", 1 s silence.
    let mut pcm = vec![0i16; 8_000];
    let okay_span = (pcm.len(), pcm.len() + okay.len());
    pcm.extend_from_slice(&okay);
    pcm.extend(std::iter::repeat_n(0, 24_000));
    let hello_span = (pcm.len(), pcm.len() + hello.len());
    pcm.extend_from_slice(&hello);
    pcm.extend(std::iter::repeat_n(0, 16_000));
    write_wav(&dir.path().join("speech.wav"), &pcm, 16_000);
    let config = dir.path().join("mic.toml");
    std::fs::write(
        &config,
        format!(
            "[[stream]]\nname = \"mic\"\nwav = {{ path = \"speech.wav\", window = 480 }}\n\
             model = \"{}\"\npolicy = \"block\"\n",
            model().display()
        ),
    )
    .unwrap();
    let o = run(&config, &dir.path().join("out"));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let windows: Vec<&Value> = lines.iter().filter(|v| v["stream"] == "mic").collect();
    assert_eq!(
        windows.len(),
        pcm.len() / 480,
        "one result per 30 ms window"
    );
    let mut hits = Vec::new();
    for w in &windows {
        let s = &w["samples"];
        // Every window after the first carries the model's score for the wake word.
        if w["frame"].as_u64().unwrap() > 0 {
            assert_eq!(s["top_k"][0]["label"], "Okay Nabu", "{w}");
        }
        if let Some(d) = s["detections"].as_array().filter(|d| !d.is_empty()) {
            assert!(d[0]["score"].as_f64().unwrap() > 0.85, "{w}");
            hits.push(w["frame"].as_u64().unwrap() as usize * 480 + 480);
        }
    }
    assert!(!hits.is_empty(), "the wake word was not detected: {stdout}");
    for end in &hits {
        // Detected once the phrase has been heard, within a second of its end.
        assert!(
            *end > okay_span.0 && *end < okay_span.1 + 16_000,
            "detection at sample {end}, phrase at {okay_span:?}"
        );
        assert!(*end < hello_span.0, "detection during \"hello world\"");
    }
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["published"].as_u64(), Some(windows.len() as u64));

    // Audio at another rate: refused, naming it.
    write_wav(&dir.path().join("speech.wav"), &speak("okay nabu"), 22_050);
    let o = run(&config, &dir.path().join("out"));
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("22050 Hz") && e.contains("16000 Hz"), "{e}");
}
