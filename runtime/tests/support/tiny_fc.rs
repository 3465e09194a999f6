//! A tiny int8 model over sample windows for pipeline tests: one fully connected layer from an
//! `nc` input of `len` values (scale 1/128, zero point 0: samples in [-1, 1)) to two classes,
//! decoded as top-2 raw scores. Class 0 is `sum(x) / 16`, class 1 is
//! `(sum of even-indexed x − sum of odd-indexed x) / 16` ([`reference`]).

use outpost_hal::DType;
use outpost_models::graph::QuantParams;
use outpost_models::graph::op::{ActAttrs, Op};
use outpost_models::spec::{
    ColorOrder, Decoder, InputSpec, Layout, OutputSpec, ResizeKind, ScoreActivation,
};
use outpost_models::{Model, ModelBuilder};

/// Quantization step of the output.
pub const OUT_SCALE: f32 = 1.0 / 128.0;

/// The model for windows of `len` values.
pub fn tiny_fc(len: usize) -> Model {
    let mut b = ModelBuilder::new();
    let inq = QuantParams {
        scale: 1.0 / 128.0,
        zero_point: 0,
    };
    b.input("x", &[1, len], DType::I8, Some(inq));
    let w: Vec<i8> = (0..2 * len)
        .map(|i| {
            if i < len || (i - len).is_multiple_of(2) {
                1
            } else {
                -1
            }
        })
        .collect();
    b.quantized_weight("fc.w", &[2, len], &w, &[1.0 / 16.0; 2], 0);
    b.const_i32("fc.b", &[2], &[0, 0]);
    b.node_inferred(
        "fc",
        Op::FullyConnected(ActAttrs::default()),
        &["x", "fc.w", "fc.b"],
        "y",
        DType::I8,
        Some(QuantParams {
            scale: OUT_SCALE,
            zero_point: 0,
        }),
    )
    .expect("fc shape");
    b.output("y");
    b.input_spec(InputSpec {
        tensor: "x".into(),
        layout: Layout::Nc,
        color: ColorOrder::None,
        resize: ResizeKind::Stretch,
        mean: vec![],
        std: vec![],
    });
    b.output_spec(OutputSpec {
        tensors: vec!["y".into()],
        decoder: Decoder::Classification {
            top_k: 2,
            activation: ScoreActivation::None,
        },
    });
    b.labels(&["sum", "alternating"]);
    Model::from_bytes(b.build().expect("build")).expect("load")
}

/// The two class scores in float arithmetic.
pub fn reference(x: &[f32]) -> [f32; 2] {
    let sum: f32 = x.iter().sum();
    let alt: f32 = x
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 2 == 0 { *v } else { -*v })
        .sum();
    [sum / 16.0, alt / 16.0]
}

/// The score of `class` in a top-k list.
pub fn score(top_k: &[(u32, f32)], class: u32) -> Option<f32> {
    top_k.iter().find(|(c, _)| *c == class).map(|(_, s)| *s)
}
