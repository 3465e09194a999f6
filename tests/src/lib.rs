//! Shared helpers for Outpost integration tests: small valid models built in code, and raw
//! safetensors files for writing deliberately broken ones.

pub mod alloc_count;
pub mod ipc_raw;
pub mod rtsp;
pub mod speech;

use std::path::{Path, PathBuf};

use outpost_hal::DType;
use outpost_models::ModelBuilder;
use outpost_models::graph::QuantParams;
use outpost_models::graph::op::{
    ActAttrs, Activation, AddArithmetic, AddAttrs, ConvAttrs, MeanAttrs, Op, PadAttrs, Padding,
};
use outpost_models::spec::{ColorOrder, Decoder, InputSpec, Layout, OutputSpec, ResizeKind};

/// The models directory: `$OUTPOST_MODELS`, else `.models/` at the workspace root (where
/// `outpost fetch-models`, run by `tools/test`, puts the zoo, `src/` and `data/`).
pub fn models_dir() -> PathBuf {
    std::env::var_os("OUTPOST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.models"))
}

/// `rel` under [`models_dir`], which must exist (the message says how to fetch it).
pub fn model_file(rel: &str) -> PathBuf {
    let p = models_dir().join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `cargo run --release -p outpost -- fetch-models` (tools/test does)",
        p.display()
    );
    p
}

pub use outpost_kernels::pseudo_random_i8;

/// First operand quantization of the int16-add session tests (scales whose ratios to the
/// output's fit 16-bit multipliers).
pub const ADD_X: QuantParams = QuantParams {
    scale: 0.07,
    zero_point: -9,
};

/// Second operand quantization of the int16-add session tests.
pub const ADD_Y: QuantParams = QuantParams {
    scale: 0.045,
    zero_point: 4,
};

/// Output quantization of the int16-add session tests (ReLU'd: zero point −128).
pub const ADD_OUT: QuantParams = QuantParams {
    scale: 0.09,
    zero_point: -128,
};

/// Adds to `b` the int16-add session tests' channel pad: `input` ([`ADD_Y`]-quantized) padded
/// with `extra` channels of its zero point, as `output`.
pub fn add_channel_pad(b: &mut ModelBuilder, input: &str, output: &str, extra: usize) {
    let pads = vec![[0, 0], [0, 0], [0, 0], [0, extra as u32]];
    b.node_inferred(
        "pad",
        Op::Pad(PadAttrs { pads }),
        &[input],
        output,
        DType::I8,
        Some(ADD_Y),
    )
    .expect("pad shape");
}

/// Adds to `b` the int16-add session tests' add (`"arithmetic": "int16"`, ReLU, output
/// [`ADD_OUT`]) of `operands`, as `output`.
pub fn add_int16_relu(b: &mut ModelBuilder, operands: [&str; 2], output: &str) {
    let add = Op::Add(AddAttrs {
        activation: Activation::Relu,
        arithmetic: AddArithmetic::Int16,
    });
    b.node_inferred("add", add, &operands, output, DType::I8, Some(ADD_OUT))
        .expect("add shape");
}

/// Activation quantization used by the test models.
pub const Q: QuantParams = QuantParams {
    scale: 0.05,
    zero_point: -3,
};

/// A small valid int8 model: conv 3×3 → conv 1×1 → add (residual) → mean → fully connected.
/// `out_channels` sets the width of the two convolutions (and so the weight bytes).
pub fn tiny_model(out_channels: usize) -> ModelBuilder {
    let mut b = ModelBuilder::new();
    let c = out_channels;
    b.input("x", &[1, 8, 8, 3], DType::I8, Some(Q));
    let w1: Vec<i8> = (0..c * 27).map(|i| ((i * 37) % 255) as i8).collect();
    b.quantized_weight("c1.w", &[c, 3, 3, 3], &w1, &vec![0.01; c], 0);
    b.const_i32("c1.b", &[c], &vec![7; c]);
    let conv = || {
        Op::Conv2d(ConvAttrs {
            stride: [1, 1],
            dilation: [1, 1],
            padding: Padding::Same,
            groups: 1,
            activation: Activation::Relu,
            requantization: Default::default(),
        })
    };
    b.node_inferred(
        "c1",
        conv(),
        &["x", "c1.w", "c1.b"],
        "h1",
        DType::I8,
        Some(Q),
    )
    .expect("c1");
    let w2: Vec<i8> = (0..c * c)
        .map(|i| (((i * 11) % 200) as i32 - 100) as i8)
        .collect();
    b.quantized_weight("c2.w", &[c, 1, 1, c], &w2, &vec![0.02; c], 0);
    b.node_inferred("c2", conv(), &["h1", "c2.w", ""], "h2", DType::I8, Some(Q))
        .expect("c2");
    b.node_inferred(
        "add",
        Op::Add(AddAttrs::default()),
        &["h1", "h2"],
        "h3",
        DType::I8,
        Some(Q),
    )
    .expect("add");
    b.node_inferred(
        "mean",
        Op::Mean(MeanAttrs {
            axes: vec![1, 2],
            keep_dims: false,
        }),
        &["h3"],
        "h4",
        DType::I8,
        Some(Q),
    )
    .expect("mean");
    let w3: Vec<i8> = (0..4 * c).map(|i| (i % 100) as i8).collect();
    b.quantized_weight("fc.w", &[4, c], &w3, &[0.03], 0);
    b.const_i32("fc.b", &[4], &[1, 2, 3, 4]);
    b.node_inferred(
        "fc",
        Op::FullyConnected(ActAttrs::default()),
        &["h4", "fc.w", "fc.b"],
        "y",
        DType::I8,
        Some(Q),
    )
    .expect("fc");
    b.output("y");
    b.input_spec(InputSpec {
        tensor: "x".into(),
        layout: Layout::Nhwc,
        color: ColorOrder::Rgb,
        resize: ResizeKind::Stretch,
        mean: vec![127.5],
        std: vec![127.5],
    });
    b.output_spec(OutputSpec {
        tensors: vec!["y".into()],
        decoder: Decoder::Raw,
    });
    b.labels(&["a", "b", "c", "d"]);
    b
}

/// Write a safetensors file from a header JSON text and a data section, byte for byte.
pub fn raw_safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + header.len() + data.len());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}
