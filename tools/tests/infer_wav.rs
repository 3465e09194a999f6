//! `outpost infer` on WAV files with the real microWakeWord `okay_nabu` model (from
//! `outpost fetch-models`): phrases spoken by espeak-ng (Debian package, installed by
//! tools/ci/install-system.sh) at its own 22050 Hz, written to files and to a pipe. The wake
//! word is found in "okay nabu" and in nothing else; bad WAVs exit 2 with one line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn outpost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(args)
        .output()
        .expect("run outpost")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn model() -> PathBuf {
    outpost_tests::model_file("okay-nabu-int8.safetensors")
}

/// `espeak-ng` speaking `text` into `path` (to a file, or through a pipe when `stdout`).
fn speak(path: &Path, text: &str, voice: &str, stdout: bool) {
    let mut c = Command::new("espeak-ng");
    c.args(["-v", voice, "-s", "140"]);
    let o = if stdout {
        let o = c.args(["--stdout", text]).output();
        let o = o.expect("espeak-ng (install it: tools/ci/install-system.sh)");
        std::fs::write(path, &o.stdout).unwrap();
        o
    } else {
        c.args(["-w", path.to_str().unwrap(), text])
            .output()
            .expect("espeak-ng (install it: tools/ci/install-system.sh)")
    };
    assert!(o.status.success(), "espeak-ng: {o:?}");
}

#[test]
fn finds_okay_nabu_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let phrases = [
        ("okay nabu", "en-us", false, true),
        ("okay nabu", "en", true, true),
        ("hello world", "en-us", false, false),
        ("what time is it", "en", true, false),
        ("okay google", "en-us", false, false),
    ];
    let mut args = vec![
        "infer".to_string(),
        "--model".into(),
        model().display().to_string(),
        "--json".into(),
    ];
    for (i, (text, voice, pipe, _)) in phrases.iter().enumerate() {
        let p = tmp.path().join(format!("p{i}.wav"));
        speak(&p, text, voice, *pipe);
        args.push(p.display().to_string());
    }
    let o = outpost(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), phrases.len());
    for ((text, voice, _, want), v) in phrases.iter().zip(&lines) {
        let dets = v["detections"].as_array().unwrap();
        let best = v["scores"][0]["score"].as_f64().unwrap();
        assert_eq!(v["scores"][0]["label"], "Okay Nabu");
        assert!(v["runs"].as_u64().unwrap() > 20, "{v}");
        if *want {
            assert_eq!(dets.len(), 1, "{text} ({voice}): {v}");
            assert!(best > 0.85, "{text}: {v}");
            let t = dets[0]["time_s"].as_f64().unwrap();
            assert!(
                t > 0.3 && t <= v["duration_s"].as_f64().unwrap(),
                "{text}: {v}"
            );
        } else {
            assert!(dets.is_empty() && best < 0.85, "{text} ({voice}): {v}");
        }
    }
}

#[test]
fn bad_wavs_exit_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let m = model();
    let good = tmp.path().join("good.wav");
    speak(&good, "okay nabu", "en-us", false);
    let bytes = std::fs::read(&good).unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("junk.wav", b"RIFF....WAVEfmt ".to_vec(), "not a WAV file"),
        ("cut.wav", bytes[..bytes.len() / 2].to_vec(), "truncated"),
        ("short.wav", bytes[..44 + 400].to_vec(), "too short"),
    ];
    for (name, data, needle) in cases {
        let p = tmp.path().join(name);
        let data = if name == "short.wav" {
            // An honest header for the 200 samples kept.
            let mut d = data;
            d[40..44].copy_from_slice(&400u32.to_le_bytes());
            d
        } else {
            data
        };
        std::fs::write(&p, data).unwrap();
        let o = outpost(&["infer", "--model", m.to_str().unwrap(), p.to_str().unwrap()]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{name}: {e}");
        assert!(e.contains(needle) && e.contains(name), "{name}: {e}");
    }
    let png = tmp.path().join("x.png");
    std::fs::write(&png, b"\x89PNG").unwrap();
    let o = outpost(&[
        "infer",
        "--model",
        m.to_str().unwrap(),
        png.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("give it WAV files"), "{}", stderr(&o));
}
