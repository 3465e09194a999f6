//! Outpost converter: imports TFLite and ONNX models into the quantized-safetensors format
//! (`docs/model-format.md`) and quantizes float models to int8 after training, calibrated on
//! real data.
//!
//! The pipeline: [`tflite::import`] reads the flatbuffer (or [`onnx::import`] the protobuf,
//! NCHW turned NHWC) into a working [`ir::Graph`]; constant
//! `DEQUANTIZE`s fold into their constants; [`fuse::fold_activations`] folds standalone
//! relu/relu6 into their producers; [`presets`] recognises known families (BlazeFace) and
//! supplies input/output specs; optionally [`quantize`] calibrates and rewrites to int8; and
//! [`emit`] writes the file. Every written model is loaded back and validated before it is
//! reported as converted.

pub mod emit;
pub mod error;
pub mod fuse;
pub mod ir;
pub mod onnx;
pub mod presets;
pub mod quantize;
pub mod samples;
pub mod tflite;
pub mod wakeword;

use std::path::Path;

use outpost_models::Model;
pub use outpost_models::graph::op::Requantization;
use outpost_models::spec::{Calibration, InputSpec, OutputSpec, Provenance};
use sha2::{Digest, Sha256};

pub use error::{ConvertError, Result};
pub use quantize::{CalibrationMode, SampleSource};

/// What to do besides importing.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// Model name written into the metadata.
    pub name: Option<String>,
    /// Input specs overriding the detected/generic ones.
    pub inputs: Option<Vec<InputSpec>>,
    /// Output specs overriding the detected/generic ones.
    pub outputs: Option<Vec<OutputSpec>>,
    /// `[height, width]` of an ONNX model's image input (replacing what the model declares;
    /// needed when it declares none). Without it a recognised family's default is used
    /// (CenterFace: 512×512), else the declared size.
    pub input_hw: Option<[usize; 2]>,
}

/// Int8 quantization request.
pub struct Quantize<'a> {
    /// Calibration samples.
    pub samples: &'a mut dyn SampleSource,
    /// Range selection.
    pub mode: CalibrationMode,
    /// Description of the calibration set for the provenance.
    pub set: String,
    /// Called with (done, total) during calibration.
    pub progress: &'a mut dyn FnMut(usize, usize),
    /// The convolutions' requantization ([`quantize::quantize`]).
    pub requantization: Requantization,
}

impl std::fmt::Debug for Quantize<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quantize")
            .field("mode", &self.mode)
            .field("set", &self.set)
            .finish()
    }
}

/// What a conversion did.
#[derive(Debug, Clone)]
pub struct ConvertReport {
    /// Detected model family, if any.
    pub family: Option<&'static str>,
    /// Nodes written.
    pub nodes: usize,
    /// Activations folded into their producers.
    pub folded: usize,
    /// Whether the result is int8.
    pub quantized: bool,
    /// Source sha256.
    pub source_sha256: String,
}

/// The float graph of a source model, with its specs, before quantization.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The working graph.
    pub graph: ir::Graph,
    /// Specs and provenance to write.
    pub specs: emit::Specs,
    /// Report so far.
    pub report: ConvertReport,
}

/// Read a source model (TFLite or ONNX) from `bytes`; `file` names it in provenance and errors.
pub fn import(bytes: &[u8], file: &str, opts: &ConvertOptions) -> Result<Imported> {
    let is_tflite = bytes.len() >= 8 && &bytes[4..8] == b"TFL3";
    let mut graph = if is_tflite {
        if opts.input_hw.is_some() {
            return Err(ConvertError::BadOptions(
                "--input-size applies to ONNX models only (a TFLite model fixes its size)".into(),
            ));
        }
        tflite::import(bytes)?
    } else if onnx::looks_like_onnx(bytes) {
        import_onnx(bytes, opts.input_hw)?
    } else {
        let reason = if file.to_ascii_lowercase().ends_with(".onnx") {
            "the protobuf does not decode as an ONNX model with a graph".into()
        } else {
            "neither a TFL3 flatbuffer nor an ONNX protobuf".into()
        };
        return Err(ConvertError::UnknownFormat {
            path: file.into(),
            reason,
        });
    };
    let folded = fuse::fold_activations(&mut graph);
    let family = presets::detect(&graph);
    let (inputs, outputs) = match family {
        Some(f) => presets::specs(&graph, f),
        None => presets::generic(&graph),
    };
    let sha = hex::encode(Sha256::digest(bytes));
    let specs = emit::Specs {
        inputs: opts.inputs.clone().unwrap_or(inputs),
        outputs: opts.outputs.clone().unwrap_or(outputs),
        name: opts
            .name
            .clone()
            .or_else(|| family.map(|f| format!("{}-f32", f.name()))),
        provenance: Some(Provenance {
            source: Path::new(file)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned()),
            source_sha256: Some(sha.clone()),
            converter: Some(format!("outpost {}", env!("CARGO_PKG_VERSION"))),
            ..Default::default()
        }),
        labels: family.map(|_| vec!["face".to_string()]).unwrap_or_default(),
    };
    Ok(Imported {
        report: ConvertReport {
            family: family.map(|f| f.name()),
            nodes: graph.nodes.len(),
            folded,
            quantized: false,
            source_sha256: sha,
        },
        graph,
        specs,
    })
}

/// An ONNX model at `input_hw`, or at its family's default size when it is one we recognise.
fn import_onnx(bytes: &[u8], input_hw: Option<[usize; 2]>) -> Result<ir::Graph> {
    let graph = onnx::import(bytes, input_hw)?;
    if input_hw.is_some() {
        return Ok(graph);
    }
    match presets::detect(&graph).and_then(|f| f.default_input_hw()) {
        Some(hw) => {
            log::info!("importing at the family's default size {}×{}", hw[1], hw[0]);
            onnx::import(bytes, Some(hw))
        }
        None => Ok(graph),
    }
}

/// Import, optionally quantize, and return the model bytes (validated by loading them back).
pub fn convert(
    bytes: &[u8],
    file: &str,
    opts: &ConvertOptions,
    quant: Option<Quantize<'_>>,
) -> Result<(Vec<u8>, ConvertReport)> {
    let Imported {
        mut graph,
        mut specs,
        mut report,
    } = import(bytes, file, opts)?;
    if let Some(q) = quant {
        let mut cal = quantize::Calibrator::new(&graph)?;
        let ranges = cal.run(q.samples, q.mode, q.progress)?;
        let caps = quantize::decoder_caps(&graph, &specs.outputs);
        graph = quantize::quantize(&graph, &ranges, &caps, q.requantization)?;
        if let Some(p) = specs.provenance.as_mut() {
            p.calibration = Some(Calibration {
                set: Some(q.set.clone()),
                mode: Some(q.mode.to_string()),
            });
        }
        if opts.name.is_none() {
            specs.name = report.family.map(|f| format!("{f}-int8"));
        }
        report.quantized = true;
        report.nodes = graph.nodes.len();
    }
    let out = emit::emit(&graph, &specs)?;
    Model::from_bytes(out.clone())?;
    Ok((out, report))
}

/// [`convert`] from a file to a file.
pub fn convert_file(
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
    quant: Option<Quantize<'_>>,
) -> Result<ConvertReport> {
    let bytes = std::fs::read(input).map_err(|source| ConvertError::Io {
        path: input.to_path_buf(),
        source,
    })?;
    let mut opts = opts.clone();
    if let (None, Some(manifest)) = (&opts.outputs, wakeword::manifest_for(input)) {
        log::info!("using the microWakeWord manifest {}", manifest.display());
        let text = std::fs::read_to_string(&manifest).map_err(|source| ConvertError::Io {
            path: manifest.clone(),
            source,
        })?;
        let graph = tflite::import(&bytes)?;
        opts.outputs = Some(vec![wakeword::output_spec(&text, &graph)?]);
    }
    let (out, report) = convert(&bytes, &input.to_string_lossy(), &opts, quant)?;
    std::fs::write(output, out).map_err(|source| ConvertError::Io {
        path: output.to_path_buf(),
        source,
    })?;
    Ok(report)
}
