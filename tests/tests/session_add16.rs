//! The int8 add's `"arithmetic": "int16"` through a session: it runs the 16-bit-multiplier
//! kernel (bit-exact with `Add16Quant::apply` on every tier), and a model whose scales it
//! cannot represent is refused with an error naming the attribute.

use outpost_hal::DType;
use outpost_kernels::{Add16Quant, Tier};
use outpost_models::graph::QuantParams;
use outpost_models::graph::op::{Activation, AddArithmetic, AddAttrs, Op};
use outpost_models::{Model, ModelBuilder};
use outpost_runtime::{Session, SessionOptions};
use outpost_tests::pseudo_random_i8 as bytes;
use outpost_tests::{ADD_X as X, ADD_Y as Y};

/// `out = x + y` on two int8 inputs of 1×4×4×37, output quantized as `out`.
fn model(out: QuantParams, arithmetic: AddArithmetic) -> Model {
    let mut b = ModelBuilder::new();
    b.input("x", &[1, 4, 4, 37], DType::I8, Some(X));
    b.input("y", &[1, 4, 4, 37], DType::I8, Some(Y));
    let op = Op::Add(AddAttrs {
        activation: Activation::Relu,
        arithmetic,
    });
    b.node_inferred("add", op, &["x", "y"], "out", DType::I8, Some(out))
        .unwrap();
    b.output("out");
    Model::from_bytes(b.build().unwrap()).unwrap()
}

#[test]
fn int16_add_runs_bit_exact_on_every_tier() {
    let out = QuantParams {
        scale: 0.09,
        zero_point: -128,
    };
    let m = model(out, AddArithmetic::Int16);
    let (x, y) = (bytes(592, 1), bytes(592, 2));
    let q = Add16Quant::new(
        X.scale,
        X.zero_point,
        Y.scale,
        Y.zero_point,
        0.09,
        -128,
        -128,
        127,
    )
    .unwrap();
    let want: Vec<i8> = x.iter().zip(&y).map(|(&a, &b)| q.apply(a, b)).collect();
    for tier in Tier::supported() {
        let mut s = Session::new(
            &m,
            SessionOptions {
                tier: Some(tier),
                ..SessionOptions::default()
            },
        )
        .unwrap();
        s.input_i8(0).unwrap().copy_from_slice(&x);
        s.input_i8(1).unwrap().copy_from_slice(&y);
        s.run();
        assert_eq!(s.output_i8(0).unwrap(), &want[..], "tier {tier}");
    }
}

#[test]
fn unrepresentable_scales_are_refused_with_the_attribute_named() {
    // x's scale is 700 times the output's: beyond the 16-bit multipliers' reach.
    let out = QuantParams {
        scale: 0.0001,
        zero_point: 0,
    };
    let e = Session::new(&model(out, AddArithmetic::Int16), SessionOptions::default())
        .expect_err("refused")
        .to_string();
    assert!(e.contains("\"arithmetic\": \"int16\""), "{e}");
    assert!(e.contains("below 128"), "{e}");
    // TFLite's arithmetic takes the same scales.
    Session::new(
        &model(out, AddArithmetic::Tflite),
        SessionOptions::default(),
    )
    .unwrap();
}
