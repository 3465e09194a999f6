//! `outpost infer`: run a model on images, WAV audio or `.npy` tensors and print what it found.

use std::path::{Path, PathBuf};
use std::time::Instant;

use outpost_models::Model;
use outpost_models::decode::Decoded;
use outpost_models::spec::Decoder;
use outpost_runtime::audio::keyword::KeywordSpotter;
use outpost_runtime::preprocess::{Letterbox, load_rgb};
use outpost_runtime::{Inference, SessionOptions};
use serde_json::{Value, json};

use crate::exit::{CmdResult, Failure};

/// Arguments of `outpost infer`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Inputs are images (PNG, JPEG), preprocessed as the model's input spec says (resize or \
letterbox, colour order, normalisation, quantization), or .npy tensors with exactly the \
model input's shape (float32, or int8 for an int8 input), fed as they are. WAV files go to keyword models (microWakeWord, e.g. okay-nabu-int8): any rate (resampled to 16 kHz by linear interpolation), channels mixed, through the TFLite Micro audio front end; each file starts from a fresh model state.

Detections are printed in source-image pixels: box [x1, y1, x2, y2], score, label and \
keypoints. With --json each input gives one line: {\"input\": PATH, \"detections\": [{\"box\": \
[x1,y1,x2,y2], \"score\": s, \"label\": l, \"keypoints\": [[x,y],...]}]} for detectors, \
\"scores\" for classifiers, \"outputs\" for raw models. A keyword model gives {\"input\": PATH, \"detections\": [{\"label\": WORD, \"score\": s, \"time_s\": t}], \"scores\": [{\"label\": WORD, \"score\": highest window mean}], \"runs\": n, \"duration_s\": d}: one detection where the mean of the last probabilities first exceeds the model's cutoff, scored with the highest mean of that stretch.

Examples:
  outpost infer --model .models/blazeface-short-int8.safetensors astronaut.png --json
  espeak-ng -w okay.wav \"okay nabu\" && outpost infer --model .models/okay-nabu-int8.safetensors okay.wav")]
pub struct Args {
    /// The model (.safetensors in Outpost's format).
    #[arg(long)]
    pub model: PathBuf,
    /// Images, WAV files (keyword models) or .npy tensors.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// One JSON object per input on stdout.
    #[arg(long)]
    pub json: bool,
    /// Threads for one inference (intra-op parallelism: large convolutions split by output
    /// rows, the calling thread counted; results bit-exact with 1).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

fn round(v: f32) -> f64 {
    (v as f64 * 100.0).round() / 100.0
}

fn label(labels: &[String], l: u32) -> Value {
    labels
        .get(l as usize)
        .map(|s| json!(s))
        .unwrap_or_else(|| json!(l))
}

/// The results of one input as JSON.
pub fn results_json(inf: &Inference, lb: Option<&Letterbox>) -> serde_json::Map<String, Value> {
    let mut obj = serde_json::Map::new();
    let labels = inf.labels();
    let mut dets = Vec::new();
    let mut scores = Vec::new();
    let mut any_decoder = false;
    for d in inf.decoded() {
        match d {
            Decoded::Detections { detections, .. } => {
                any_decoder = true;
                for det in detections {
                    let (b, kps): ([f32; 4], Vec<Value>) = match lb {
                        Some(lb) => (
                            lb.box_to_source(det.bbox),
                            det.keypoints()
                                .iter()
                                .map(|k| {
                                    let (x, y) = lb.to_source(k[0], k[1]);
                                    json!([round(x), round(y)])
                                })
                                .collect(),
                        ),
                        None => (
                            det.bbox,
                            det.keypoints()
                                .iter()
                                .map(|k| json!([k[0], k[1]]))
                                .collect(),
                        ),
                    };
                    dets.push(json!({
                        "box": [round(b[0]), round(b[1]), round(b[2]), round(b[3])],
                        "score": (det.score as f64 * 10000.0).round() / 10000.0,
                        "label": label(labels, det.label),
                        "keypoints": kps,
                    }));
                }
            }
            Decoded::TopK(k) => {
                any_decoder = true;
                for &(l, s) in k {
                    scores.push(json!({"label": label(labels, l), "score": s}));
                }
            }
            Decoded::Raw => {}
        }
    }
    if !dets.is_empty() || (scores.is_empty() && any_decoder) {
        obj.insert("detections".into(), Value::Array(dets));
    }
    if !scores.is_empty() {
        obj.insert("scores".into(), Value::Array(scores));
    }
    if !any_decoder {
        let s = inf.session();
        let mut outs = serde_json::Map::new();
        for i in 0..s.plan().outputs.len() {
            let name = s.plan().buffers[s.plan().outputs[i]].name.clone();
            let v: Value = match (s.output_f32(i), s.output_i8(i)) {
                (Some(f), _) => json!(f),
                (None, Some(q)) => json!(q),
                _ => Value::Null,
            };
            outs.insert(name, v);
        }
        obj.insert("outputs".into(), Value::Object(outs));
    }
    obj
}

fn is_ext(p: &Path, e: &str) -> bool {
    p.extension().is_some_and(|x| x.eq_ignore_ascii_case(e))
}

fn feed_npy(inf: &mut Inference, path: &Path) -> Result<(), Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::input(format!("cannot read {}: {e}", path.display())))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .map_err(|e| Failure::input(format!("{}: not a .npy file ({e})", path.display())))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let descr = npy.dtype().descr();
    let s = inf.session_mut();
    let plan_in = s.plan().inputs[0];
    let want = s.plan().shapes[plan_in].clone();
    if shape.iter().product::<usize>() != want.iter().product::<usize>() {
        return Err(Failure::input(format!(
            "{}: shape {shape:?} does not match the model input {want:?}",
            path.display()
        )));
    }
    let err = |e: std::io::Error| Failure::input(format!("{}: {e}", path.display()));
    match descr.as_str() {
        "'<f4'" => {
            let v = npy.into_vec::<f32>().map_err(err)?;
            let dst = s.input_f32(0).map_err(|e| {
                Failure::input(format!("{}: {e} (give an int8 tensor)", path.display()))
            })?;
            dst.copy_from_slice(&v);
        }
        "'|i1'" | "'<i1'" => {
            let v = npy.into_vec::<i8>().map_err(err)?;
            let dst = s.input_i8(0).map_err(|e| {
                Failure::input(format!("{}: {e} (give a float32 tensor)", path.display()))
            })?;
            dst.copy_from_slice(&v);
        }
        other => {
            return Err(Failure::input(format!(
                "{}: element type {other} is not supported (float32 or int8)",
                path.display()
            )));
        }
    }
    inf.run_filled().map_err(|e| Failure::other(e.to_string()))
}

/// Run the command.
pub fn run(args: Args) -> CmdResult {
    if !(1..=outpost_runtime::pool::MAX_THREADS).contains(&args.threads) {
        return Err(Failure::input(format!(
            "--threads {}: give 1 to {} (1: the calling thread only)",
            args.threads,
            outpost_runtime::pool::MAX_THREADS
        )));
    }
    let options = SessionOptions {
        threads: args.threads,
        ..SessionOptions::default()
    };
    let model = Model::open(&args.model)
        .map_err(|e| Failure::input(format!("{}: {e}", args.model.display())))?;
    if let Some(Decoder::Wakeword { .. }) = model.meta().outputs.first().map(|o| &o.decoder) {
        return run_keyword(&model, &args);
    }
    let mut inf = Inference::new(&model, options)
        .map_err(|e| Failure::input(format!("{}: {e}", args.model.display())))?;
    for path in &args.inputs {
        let t = Instant::now();
        let lb = if is_ext(path, "npy") {
            feed_npy(&mut inf, path)?;
            None
        } else if is_ext(path, "wav") {
            return Err(Failure::input(format!(
                "{}: WAV input needs a keyword model (output spec `wakeword`), which {} is not",
                path.display(),
                args.model.display()
            )));
        } else {
            let img = load_rgb(path).map_err(|e| Failure::input(e.to_string()))?;
            Some(
                inf.run_image(&img.view())
                    .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?,
            )
        };
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let mut obj = results_json(&inf, lb.as_ref());
        let input = path.display().to_string();
        if args.json {
            let mut line = serde_json::Map::new();
            line.insert("input".into(), json!(input));
            line.append(&mut obj);
            println!("{}", Value::Object(line));
        } else {
            print_text(&input, &obj, ms);
        }
    }
    Ok(())
}

/// A keyword model: every input must be a WAV file.
fn run_keyword(model: &Model, args: &Args) -> CmdResult {
    if let Some(p) = args.inputs.iter().find(|p| !is_ext(p, "wav")) {
        return Err(Failure::input(format!(
            "{}: {} is a keyword model; give it WAV files",
            p.display(),
            args.model.display()
        )));
    }
    let mut spotter = KeywordSpotter::new(
        model,
        SessionOptions {
            threads: args.threads,
            ..SessionOptions::default()
        },
    )
    .map_err(|e| Failure::input(format!("{}: {e}", args.model.display())))?;
    for path in &args.inputs {
        crate::cmd::infer_audio::run_wav(&mut spotter, path, args.json)?;
    }
    Ok(())
}

fn print_text(input: &str, obj: &serde_json::Map<String, Value>, ms: f64) {
    if let Some(Value::Array(d)) = obj.get("detections") {
        println!("{input}: {} detection(s) ({ms:.1} ms)", d.len());
        for det in d {
            println!(
                "  {} {:.3} box {} keypoints {}",
                det["label"],
                det["score"].as_f64().unwrap_or(0.0),
                det["box"],
                det["keypoints"]
            );
        }
    }
    if let Some(Value::Array(s)) = obj.get("scores") {
        println!("{input}: ({ms:.1} ms)");
        for e in s {
            println!("  {} {:.4}", e["label"], e["score"].as_f64().unwrap_or(0.0));
        }
    }
    if let Some(Value::Object(o)) = obj.get("outputs") {
        println!("{input}: ({ms:.1} ms)");
        for (k, v) in o {
            let n = v.as_array().map(|a| a.len()).unwrap_or(0);
            println!("  {k}: {n} values");
        }
    }
}
