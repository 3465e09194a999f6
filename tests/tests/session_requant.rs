//! `"requantization": "f32"` through a session: a depthwise convolution in either form runs
//! bit-exact on every tier, the two forms stay within a step of each other, and a depthwise
//! convolution that also asks for TFLite's upward rounding is refused with both attributes
//! named.

use outpost_hal::DType;
use outpost_kernels::Tier;
use outpost_models::graph::op::{
    Activation, DepthwiseAttrs, Op, Padding, Requantization, Rounding,
};
use outpost_models::{Model, ModelBuilder};
use outpost_runtime::{Session, SessionOptions};
use outpost_tests::{Q, pseudo_random_i8 as bytes};

/// A 3×3 depthwise convolution over 1×9×11×40 int8.
fn model(requantization: Requantization, rounding: Rounding) -> Model {
    let mut b = ModelBuilder::new();
    b.input("x", &[1, 9, 11, 40], DType::I8, Some(Q));
    let w = bytes(9 * 40, 5);
    let scales: Vec<f32> = (0..40).map(|i| 0.004 + 0.0002 * i as f32).collect();
    b.quantized_weight("dw.w", &[1, 3, 3, 40], &w, &scales, 3);
    let bias: Vec<i32> = (0..40).map(|i| i * 53 - 900).collect();
    b.const_i32("dw.b", &[40], &bias);
    let op = Op::DepthwiseConv2d(DepthwiseAttrs {
        stride: [1, 1],
        dilation: [1, 1],
        padding: Padding::Same,
        depth_multiplier: 1,
        activation: Activation::Relu6,
        rounding,
        requantization,
    });
    b.node_inferred("dw", op, &["x", "dw.w", "dw.b"], "y", DType::I8, Some(Q))
        .unwrap();
    b.output("y");
    Model::from_bytes(b.build().unwrap()).unwrap()
}

fn run(m: &Model, tier: Tier, x: &[i8]) -> Vec<i8> {
    let opts = SessionOptions {
        tier: Some(tier),
        ..SessionOptions::default()
    };
    let mut s = Session::new(m, opts).unwrap();
    s.input_i8(0).unwrap().copy_from_slice(x);
    s.run();
    s.output_i8(0).unwrap().to_vec()
}

#[test]
fn both_forms_run_on_every_tier_within_a_step() {
    let x = bytes(9 * 11 * 40, 6);
    let f = model(Requantization::F32, Rounding::Away);
    let t = model(Requantization::Tflite, Rounding::Away);
    let (want_f, want_t) = (run(&f, Tier::Generic, &x), run(&t, Tier::Generic, &x));
    for tier in Tier::supported() {
        assert_eq!(run(&f, tier, &x), want_f, "f32, tier {tier}");
        assert_eq!(run(&t, tier, &x), want_t, "tflite, tier {tier}");
    }
    let diff = want_f
        .iter()
        .zip(&want_t)
        .map(|(&a, &b)| (a as i32 - b as i32).abs())
        .max()
        .unwrap();
    assert!(diff <= 1, "the forms differ by {diff} steps");
    // Ties round to even in one form, away from zero in the other: some outputs differ,
    // which shows the attribute reached the kernels.
    assert_ne!(want_f, want_t, "the two forms gave identical outputs");
}

#[test]
fn f32_with_upward_rounding_is_refused() {
    let e = Session::new(
        &model(Requantization::F32, Rounding::Upward),
        SessionOptions::default(),
    )
    .expect_err("refused")
    .to_string();
    assert!(e.contains("\"rounding\": \"upward\""), "{e}");
    assert!(e.contains("\"requantization\": \"f32\""), "{e}");
    Session::new(
        &model(Requantization::Tflite, Rounding::Upward),
        SessionOptions::default(),
    )
    .unwrap();
}
