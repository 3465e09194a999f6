//! Sample windows through the pipeline: a CSV replay feeding an int8 vector model (samples
//! quantized into its input, scores checked against float arithmetic), model-free passthrough
//! streams, the checks that refuse a stream whose frames do not fit its model, and WAV audio
//! (Debian `alsa-utils`' speech recordings in /usr/share/sounds/alsa; tools/ci/install-system.sh
//! installs them) in windows with a hop, mixed down or one channel chosen.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use outpost_runtime::SessionOptions;
use outpost_runtime::pipeline::{
    FrameBuf, FrameKind, ImageSource, Pipeline, PipelineError, Policy, Source, StreamConfig, name,
};
// The support module names `super::RgbImage`.
use outpost_runtime::preprocess::RgbImage;
use outpost_runtime::sources::{CsvSource, Mix, Pace, WavSource};

#[path = "support/tiny_fc.rs"]
#[allow(dead_code)]
mod tiny_fc;
#[path = "support/tiny_ssd.rs"]
#[allow(dead_code, clippy::too_many_arguments)]
mod tiny_ssd;

const ALSA: &str = "/usr/share/sounds/alsa";

/// A speech WAV of alsa-utils, or a failure naming the package.
fn alsa_wav(file: &str) -> PathBuf {
    let p = Path::new(ALSA).join(file);
    assert!(
        p.exists(),
        "{} is missing: install the Debian package `alsa-utils` (tools/ci/install-system.sh does)",
        p.display()
    );
    p
}

/// `rows` rows of three channels in [-1, 1), as CSV with a timestamp and a text column.
fn imu_csv(rows: usize) -> (String, Vec<[f32; 3]>) {
    let mut text = String::from("time,label,ax,ay,az\n");
    let mut values = Vec::new();
    for i in 0..rows {
        let r = [
            ((i * 37) % 256) as f32 / 128.0 - 1.0,
            ((i * 101 + 7) % 256) as f32 / 128.0 - 1.0,
            ((i * 59 + 3) % 256) as f32 / 128.0 - 1.0,
        ];
        text.push_str(&format!(
            "{},x{i},{},{},{}\n",
            i as f64 * 0.01,
            r[0],
            r[1],
            r[2]
        ));
        values.push(r);
    }
    (text, values)
}

fn csv_source(text: &str, window: usize, hop: usize) -> CsvSource {
    let cols: Vec<String> = ["ax", "ay", "az"].iter().map(|s| s.to_string()).collect();
    CsvSource::parse(
        text,
        Path::new("imu.csv"),
        &cols,
        window,
        hop,
        Pace::Unpaced,
    )
    .unwrap()
}

#[test]
fn sample_windows_are_quantized_into_a_vector_model() {
    let (text, rows) = imu_csv(64);
    let (window, hop) = (4, 2);
    let model = tiny_fc::tiny_fc(window * 3);
    let mut p = Pipeline::new();
    let m = p
        .add_model("fc", &model, SessionOptions::default())
        .unwrap();
    p.add_stream(
        StreamConfig::new("imu", Box::new(csv_source(&text, window, hop)), m)
            .policy(Policy::Block(std::time::Duration::from_secs(5))),
    )
    .unwrap();
    let mut seen = 0usize;
    let report = p.run(&AtomicBool::new(false), |r| {
        let k = r.meta.seq as usize;
        assert_eq!(k, seen);
        seen += 1;
        let expect: Vec<f32> = rows[k * hop..k * hop + window]
            .iter()
            .flatten()
            .copied()
            .collect();
        assert_eq!(r.samples(), &expect[..], "window {k}");
        let want = tiny_fc::reference(&expect);
        for class in 0..2 {
            let got = tiny_fc::score(r.top_k, class).expect("both classes reported");
            assert!(
                (got - want[class as usize]).abs() <= 2.0 * tiny_fc::OUT_SCALE,
                "window {k} class {class}: {got} vs {}",
                want[class as usize]
            );
        }
        assert_eq!(r.label(1), Some("alternating"));
    });
    assert_eq!(seen, (64 - window) / hop + 1);
    let c = report.streams[0].counters;
    assert_eq!((c.captured, c.inferred, c.published), (31, 31, 31));
    assert_eq!(c.dropped_total(), 0);
}

#[test]
fn passthrough_publishes_images_and_samples_without_a_model() {
    let (text, rows) = imu_csv(10);
    let img = tiny_ssd::frame(16, 8, 1);
    let images = ImageSource::from_images(vec![(name("still"), img.clone())]).unwrap();
    let mut p = Pipeline::new();
    let m = p.add_passthrough("raw");
    p.add_stream(
        StreamConfig::new("imu", Box::new(csv_source(&text, 5, 5)), m)
            .policy(Policy::Block(std::time::Duration::from_secs(5))),
    )
    .unwrap();
    p.add_stream(StreamConfig::new("cam", Box::new(images), m))
        .unwrap();
    let (mut windows, mut frames) = (Vec::new(), 0);
    let report = p.run(&AtomicBool::new(false), |r| {
        assert!(r.detections.is_empty() && r.top_k.is_empty() && r.labels.is_empty());
        match r.frame.kind() {
            FrameKind::Samples => windows.push(r.samples().to_vec()),
            FrameKind::Image => {
                assert_eq!(r.frame.data(), &img.data[..]);
                assert!(r.samples().is_empty());
                frames += 1;
            }
        }
    });
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    assert_eq!(windows, vec![flat[..15].to_vec(), flat[15..].to_vec()]);
    assert_eq!(frames, 1);
    assert_eq!(report.totals().published, 3);
}

#[test]
fn streams_that_do_not_fit_their_model_are_refused() {
    let (text, _) = imu_csv(8);
    let mut p = Pipeline::new();
    let fc = p
        .add_model("fc", &tiny_fc::tiny_fc(10), SessionOptions::default())
        .unwrap();
    let ssd = p
        .add_model(
            "ssd",
            &tiny_ssd::tiny_ssd(16, 0, 4, 0.5),
            SessionOptions::default(),
        )
        .unwrap();
    let wrong_size = p.add_stream(StreamConfig::new(
        "a",
        Box::new(csv_source(&text, 4, 4)),
        fc,
    ));
    assert!(
        matches!(&wrong_size, Err(PipelineError::Mismatch { reason, .. }) if reason.contains("4×3 = 12 samples; the model takes 10")),
        "{wrong_size:?}"
    );
    let into_images = p.add_stream(StreamConfig::new(
        "b",
        Box::new(csv_source(&text, 4, 4)),
        ssd,
    ));
    assert!(
        matches!(&into_images, Err(PipelineError::Mismatch { reason, .. }) if reason.contains("takes images")),
        "{into_images:?}"
    );
    let img = ImageSource::from_images(vec![(name("x"), tiny_ssd::frame(8, 8, 0))]).unwrap();
    let images_into_fc = p.add_stream(StreamConfig::new("c", Box::new(img), fc));
    assert!(
        matches!(&images_into_fc, Err(PipelineError::Mismatch { reason, .. }) if reason.contains("takes 10 values")),
        "{images_into_fc:?}"
    );
}

/// Every sample of a 16-bit WAV as f32, per channel, read straight with hound.
fn reference_samples(path: &Path) -> (hound::WavSpec, Vec<Vec<f32>>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let c = spec.channels as usize;
    let all: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    let per = (0..c)
        .map(|k| {
            all.iter()
                .skip(k)
                .step_by(c)
                .map(|&s| f32::from(s) / 32768.0)
                .collect()
        })
        .collect();
    (spec, per)
}

#[test]
fn wav_speech_in_windows_with_a_hop() {
    let path = alsa_wav("Front_Center.wav");
    let (spec, reference) = reference_samples(&path);
    assert_eq!((spec.channels, spec.bits_per_sample), (1, 16));
    let mono = &reference[0];
    let (window, hop) = (1024, 512);
    let mut s = WavSource::open(&path, window, hop).unwrap();
    assert_eq!(s.sample_rate(), spec.sample_rate);
    let mut p = Pipeline::new();
    let m = p.add_passthrough("raw");
    s = s.realtime(false);
    p.add_stream(
        StreamConfig::new("mic", Box::new(s), m)
            .policy(Policy::Block(std::time::Duration::from_secs(5))),
    )
    .unwrap();
    let mut n = 0usize;
    let mut peak = 0f32;
    p.run(&AtomicBool::new(false), |r| {
        assert_eq!(r.meta.name.as_str(), "Front_Center");
        let w = r.samples();
        assert_eq!(w, &mono[n * hop..n * hop + window], "window {n}");
        assert!(w.iter().all(|v| (-1.0..1.0).contains(v)));
        peak = w.iter().fold(peak, |a, v| a.max(v.abs()));
        n += 1;
    });
    assert_eq!(n, (mono.len() - window) / hop + 1);
    // Speech, not silence.
    assert!(peak > 0.1, "peak {peak}");
}

#[test]
fn wav_stereo_is_mixed_down_or_one_channel_taken() {
    // A stereo file made from the speech recording: right = −left / 2.
    let (_, reference) = reference_samples(&alsa_wav("Front_Left.wav"));
    let left: Vec<i16> = reference[0]
        .iter()
        .take(4000)
        .map(|v| (v * 32768.0) as i16)
        .collect();
    let dir = std::env::temp_dir().join(format!("outpost-wav-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stereo.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for &l in &left {
        w.write_sample(l).unwrap();
        w.write_sample(-l / 2).unwrap();
    }
    w.finalize().unwrap();

    let windows = |mix: Mix| -> Vec<Vec<f32>> {
        let mut s = WavSource::open(&path, 1000, 1000)
            .unwrap()
            .mix(mix)
            .unwrap();
        assert_eq!(s.channels(), 2);
        let mut b = FrameBuf::new(s.frame_capacity());
        let mut out = Vec::new();
        while s.next_frame(&mut b).unwrap().is_some() {
            out.push(b.samples().to_vec());
        }
        out
    };
    let lf = |l: i16| f32::from(l) / 32768.0;
    let rf = |l: i16| f32::from(-l / 2) / 32768.0;
    let mean: Vec<f32> = windows(Mix::Mean).concat();
    let want: Vec<f32> = left.iter().map(|&l| (lf(l) + rf(l)) / 2.0).collect();
    assert_eq!(mean, want);
    assert_eq!(
        windows(Mix::Channel(1)).concat(),
        left.iter().map(|&l| rf(l)).collect::<Vec<_>>()
    );
    assert_eq!(windows(Mix::Channel(0)).len(), 4);
    assert!(
        WavSource::open(&path, 10, 10)
            .unwrap()
            .mix(Mix::Channel(2))
            .is_err()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
