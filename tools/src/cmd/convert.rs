//! `outpost convert`: import a TFLite model, optionally quantize it to int8.

use std::io::Write;
use std::path::PathBuf;

use outpost_convert::samples::FileSamples;
use outpost_convert::{CalibrationMode, ConvertError, ConvertOptions, Quantize};
use outpost_models::spec::{InputSpec, OutputSpec};

use super::requant_arg::RequantArg;

use crate::exit::{CmdResult, Failure};
use crate::fmt::bytes;

/// Target precision of `--quantize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// TFLite int8 scheme: per-tensor asymmetric activations, per-channel symmetric weights.
    Int8,
}

/// How calibration picks each activation's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The smallest and largest value seen.
    Minmax,
    /// The central `--percentile` percent of values (clips outliers).
    Percentile,
    /// The clipping range with the least expected squared quantization error.
    Mse,
}

/// Arguments of `outpost convert`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Reads a TFLite flatbuffer (.tflite) or an ONNX model (.onnx, float32/float16), maps its ops \
onto Outpost's graph, folds DEQUANTIZE of constants, batch norms after convolutions and \
standalone RELU/RELU6 into their producers, keeps already-int8 tensors and their quantization \
exactly, and writes one self-describing .safetensors file. ONNX tensors are NCHW and become \
NHWC (outputs too); --input-size sets an ONNX model's input size. Known families get their \
input spec and decoder automatically: BlazeFace short and full range (letterbox, RGB, \
x/127.5-1; SSD anchors + weighted NMS) and CenterFace (letterbox into 512x512 unless \
--input-size says otherwise, RGB, raw 0..255; CenterNet heatmap decoding, threshold 0.2). \
Anything else gets a generic spec and a raw decoder unless --input-spec/--output-spec say \
otherwise. An op with no Outpost equivalent is an error naming the op and the node.

With --quantize int8 the float model is run over the calibration images first (PNG/JPEG \
files, or .npy arrays of images [N,H,W] or [N,H,W,3]), preprocessed exactly as at run time, \
and every activation gets the range seen. The calibration set and mode are recorded in the \
model's provenance.

Examples:
  outpost convert face_detection_short_range.tflite -o blazeface-short-f32.safetensors
  outpost convert face_detection_short_range.tflite -o blazeface-short-int8.safetensors \\
      --quantize int8 --calibration lfw_subset.npy coffee.png chelsea.png rocket.jpg \\
      --composite --calibration-mode percentile
  outpost convert centerface.onnx -o centerface-int8.safetensors --input-size 640x352 \
      --quantize int8 --calibration lfw_subset.npy coffee.png chelsea.png rocket.jpg --composite")]
pub struct Args {
    /// Source model (.tflite or .onnx).
    pub input: PathBuf,
    /// Where to write the Outpost model (.safetensors).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Quantize activations and weights after import.
    #[arg(long, value_enum)]
    pub quantize: Option<Precision>,
    /// Calibration images or .npy image arrays (needed with --quantize).
    #[arg(long, num_args = 1..)]
    pub calibration: Vec<PathBuf>,
    /// Range selection for calibration.
    #[arg(long, value_enum, default_value_t = Mode::Minmax)]
    pub calibration_mode: Mode,
    /// Percent of values kept by `--calibration-mode percentile`.
    #[arg(long, default_value_t = 99.99)]
    pub percentile: f32,
    /// Paste the .npy face crops into the calibration images (at 48–159 px, fixed seed)
    /// instead of using the crops alone: detectors then calibrate on faces at real scale.
    #[arg(long)]
    pub composite: bool,
    /// Use at most this many calibration samples (spread evenly over the set).
    #[arg(long, default_value_t = 500)]
    pub max_samples: usize,
    /// How the int8 convolutions requantize: `f32` (a third of the vector instructions,
    /// within one step of the fixed point form) or `tflite` (TFLite's fixed point form).
    #[arg(long, value_enum, default_value = "f32")]
    pub requantization: RequantArg,
    /// Input size WIDTHxHEIGHT of an ONNX image model (replaces what the model declares;
    /// needed when it declares a symbolic size). Default: the family's (CenterFace 512x512),
    /// else the declared size.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub input_size: Option<[usize; 2]>,
    /// Model name written into the metadata (default: the family and precision).
    #[arg(long)]
    pub name: Option<String>,
    /// Input spec JSON array overriding the detected one (see docs/model-format.md §5).
    #[arg(long)]
    pub input_spec: Option<String>,
    /// Output spec JSON array overriding the detected one (see docs/model-format.md §6).
    #[arg(long)]
    pub output_spec: Option<String>,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `640x480` → `[480, 640]` (height, width).
fn parse_size(s: &str) -> Result<[usize; 2], String> {
    let bad = || format!("{s:?}: expected WIDTHxHEIGHT, e.g. 640x480");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: usize = w.trim().parse().map_err(|_| bad())?;
    let h: usize = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || w > 8192 || h > 8192 {
        return Err(format!("{s:?}: width and height must be 1..=8192"));
    }
    Ok([h, w])
}

fn failure(e: ConvertError) -> Failure {
    match e {
        ConvertError::Runtime(_) | ConvertError::Model(_) => Failure::other(e.to_string()),
        _ => Failure::input(e.to_string()),
    }
}

fn spec<T: serde::de::DeserializeOwned>(
    flag: &str,
    s: &Option<String>,
) -> Result<Option<T>, Failure> {
    s.as_deref()
        .map(|s| serde_json::from_str(s).map_err(|e| Failure::input(format!("{flag}: {e}"))))
        .transpose()
}

/// Run the command.
pub fn run(args: Args) -> CmdResult {
    let opts = ConvertOptions {
        name: args.name.clone(),
        inputs: spec::<Vec<InputSpec>>("--input-spec", &args.input_spec)?,
        outputs: spec::<Vec<OutputSpec>>("--output-spec", &args.output_spec)?,
        input_hw: args.input_size,
    };
    if args.quantize.is_none() && !args.calibration.is_empty() {
        return Err(Failure::input("--calibration needs --quantize int8"));
    }
    if !(50.0..=100.0).contains(&args.percentile) {
        return Err(Failure::input("--percentile must lie in 50..100"));
    }
    convert(&args, &opts)
}

/// Convert as `args` say (also used by `outpost fetch-models`).
pub fn convert(args: &Args, opts: &ConvertOptions) -> CmdResult {
    let report = if args.quantize.is_some() {
        if args.calibration.is_empty() {
            return Err(Failure::input(
                "--quantize int8 needs calibration data: --calibration IMAGE_OR_NPY...",
            ));
        }
        let bytes = std::fs::read(&args.input)
            .map_err(|e| Failure::input(format!("cannot read {}: {e}", args.input.display())))?;
        let imported = outpost_convert::import(&bytes, &args.input.to_string_lossy(), opts)
            .map_err(failure)?;
        let input = &imported.graph.tensors[imported.graph.inputs[0]];
        let spec = imported.specs.inputs.first().ok_or_else(|| {
            Failure::input("the model has no input spec; give one with --input-spec")
        })?;
        let mut samples = FileSamples::load(
            &args.calibration,
            spec,
            &input.shape,
            args.max_samples,
            args.composite,
        )
        .map_err(failure)?;
        let set = samples.description.clone();
        let quiet = args.quiet;
        let mut progress = |done: usize, total: usize| {
            if !quiet {
                let w = 30 * done / total.max(1);
                eprint!(
                    "\rcalibrating [{}{}] {done}/{total}",
                    "#".repeat(w),
                    " ".repeat(30 - w)
                );
                let _ = std::io::stderr().flush();
                if done == total {
                    eprintln!();
                }
            }
        };
        let mode = match args.calibration_mode {
            Mode::Minmax => CalibrationMode::MinMax,
            Mode::Percentile => CalibrationMode::Percentile(args.percentile),
            Mode::Mse => CalibrationMode::Mse,
        };
        let q = Quantize {
            samples: &mut samples,
            mode,
            set,
            progress: &mut progress,
            requantization: args.requantization.into(),
        };
        outpost_convert::convert_file(&args.input, &args.output, opts, Some(q))
    } else {
        outpost_convert::convert_file(&args.input, &args.output, opts, None)
    }
    .map_err(failure)?;
    let size = std::fs::metadata(&args.output)
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "wrote {} ({}, {} nodes{}{}, {})",
        args.output.display(),
        bytes(size),
        report.nodes,
        report
            .family
            .map(|f| format!(", recognised as {f}"))
            .unwrap_or_default(),
        if report.folded > 0 {
            format!(", {} activations folded", report.folded)
        } else {
            String::new()
        },
        if report.quantized { "int8" } else { "float" }
    );
    Ok(())
}
