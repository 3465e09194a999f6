//! `outpost run --config` with a `video` stream (ffmpeg child process; Debian `ffmpeg`,
//! installed by tools/ci/install-system.sh) into the real BlazeFace int8 model: a lossless clip
//! made by ffmpeg from the sample images, three frames of the astronaut then two of the coffee
//! cup. Every frame is inferred in order, the face found in the first three only, and each of
//! those gets its own redacted copy (named by frame number, none overwriting another) in which
//! the model finds no face any more.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn models_dir() -> PathBuf {
    outpost_tests::model_file("blazeface-short-int8.safetensors");
    outpost_tests::model_file("data/coffee.png");
    outpost_tests::models_dir()
}

fn outpost(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn video_stream_detects_and_redacts_every_frame() {
    let m = models_dir();
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("door.mkv");
    let img = |n: &str| m.join("data").join(n).display().to_string();
    let o = Command::new("ffmpeg")
        .args([
            "-loglevel",
            "error",
            "-loop",
            "1",
            "-framerate",
            "10",
            "-t",
            "0.3",
            "-i",
        ])
        .arg(img("astronaut.png"))
        .args(["-loop", "1", "-framerate", "10", "-t", "0.2", "-i"])
        .arg(img("coffee.png"))
        .args([
            "-filter_complex",
            "[0:v]scale=512:512,setsar=1[a];[1:v]scale=512:512,setsar=1[b];\
             [a][b]concat=n=2:v=1[v]",
            "-map",
            "[v]",
            "-c:v",
            "ffv1",
        ])
        .arg(&clip)
        .output()
        .expect("ffmpeg (install it: tools/ci/install-system.sh)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let model = m.join("blazeface-short-int8.safetensors");
    let config = dir.path().join("door.toml");
    std::fs::write(
        &config,
        format!(
            "[[stream]]\nname = \"door\"\nvideo = \"door.mkv\"\nmodel = \"{}\"\npolicy = \"block\"\n",
            model.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = outpost(&[
        "run",
        "--json",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
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
    let frames = &lines[..lines.len() - 1];
    assert_eq!(frames.len(), 5, "{stdout}");
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f["frame"].as_u64(), Some(i as u64));
        let faces = f["detections"].as_array().unwrap().len();
        assert_eq!(faces, usize::from(i < 3), "frame {i}: {f}");
        if i < 3 {
            let copy = PathBuf::from(f["redacted"].as_str().unwrap());
            assert_eq!(
                copy.file_name().unwrap().to_str().unwrap(),
                format!("door-{i:06}-redacted.png")
            );
            let o = Command::new(env!("CARGO_BIN_EXE_outpost"))
                .args(["infer", "--json", "--model"])
                .arg(&model)
                .arg(&copy)
                .output()
                .unwrap();
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(
                v["detections"],
                serde_json::json!([]),
                "{}: {v}",
                copy.display()
            );
        } else {
            assert!(f["redacted"].is_null());
        }
    }
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["files_written"].as_u64(), Some(3));
    assert_eq!(summary["dropped_total"].as_u64(), Some(0));
}
