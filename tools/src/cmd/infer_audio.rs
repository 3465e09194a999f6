//! `outpost infer` on WAV files with a keyword model (microWakeWord, output spec `wakeword`):
//! the audio front end, the model every few feature frames, detections where the window mean
//! crosses the cutoff.

use std::path::Path;
use std::time::Instant;

use outpost_runtime::audio::keyword::KeywordSpotter;
use outpost_runtime::audio::{resample, wav_file};
use serde_json::{Value, json};

use crate::exit::Failure;

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// Run `spotter` over one WAV file from a fresh state; print one line of JSON or a summary.
pub fn run_wav(spotter: &mut KeywordSpotter, path: &Path, json_out: bool) -> Result<(), Failure> {
    let t = Instant::now();
    let pcm = wav_file::read_pcm16(path).map_err(|e| Failure::input(e.to_string()))?;
    if pcm.truncated {
        log::warn!(
            "{}: the header promises more samples than the file holds (written to a pipe?); \
             using the {} present",
            path.display(),
            pcm.samples.len()
        );
    }
    let rate = spotter.sample_rate();
    let samples = resample::linear(&pcm.samples, pcm.rate, rate);
    spotter.reset();
    let (mut runs, mut max_mean) = (0u64, None::<f32>);
    // Detections: one per stretch of runs whose window mean is above the cutoff, at its start,
    // scored with the stretch's highest mean.
    let mut detections: Vec<(f64, f32)> = Vec::new();
    let mut inside = false;
    spotter.process(&samples, |r| {
        runs += 1;
        if let Some(m) = r.window_mean {
            max_mean = Some(max_mean.map_or(m, |x| x.max(m)));
        }
        match (r.detected, inside) {
            (true, false) => detections.push((
                r.at_sample as f64 / rate as f64,
                r.window_mean.unwrap_or(0.0),
            )),
            (true, true) => {
                if let Some(d) = detections.last_mut() {
                    d.1 = d.1.max(r.window_mean.unwrap_or(0.0));
                }
            }
            _ => {}
        }
        inside = r.detected;
    });
    if runs == 0 {
        return Err(Failure::input(format!(
            "{}: {} samples at {rate} Hz is too short for one model run",
            path.display(),
            samples.len()
        )));
    }
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let word = spotter.wake_word().to_string();
    let input = path.display().to_string();
    if json_out {
        let dets: Vec<Value> = detections
            .iter()
            .map(|&(at, s)| json!({"label": word, "score": round4(s as f64), "time_s": round4(at)}))
            .collect();
        println!(
            "{}",
            json!({
                "input": input,
                "detections": dets,
                "scores": [{"label": word, "score": round4(max_mean.unwrap_or(0.0) as f64)}],
                "runs": runs,
                "duration_s": round4(samples.len() as f64 / rate as f64),
            })
        );
    } else {
        let secs = samples.len() as f64 / rate as f64;
        match detections.first() {
            Some(_) => println!(
                "{input}: \"{word}\" detected {} time(s) in {secs:.2} s of audio ({ms:.1} ms)",
                detections.len()
            ),
            None => {
                println!("{input}: \"{word}\" not detected in {secs:.2} s of audio ({ms:.1} ms)")
            }
        }
        for (at, s) in &detections {
            println!("  at {at:.2} s, window mean {s:.3}");
        }
        println!(
            "  highest window mean {:.3} (cutoff {:.2}), {runs} model runs",
            max_mean.unwrap_or(0.0),
            spotter.cutoff()
        );
    }
    Ok(())
}
