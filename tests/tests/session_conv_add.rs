//! A pointwise convolution read only by an int16 add is folded into the add on the tier that
//! adds in the convolution's own pass (AVX-512 VNNI), with the add's other operand plain or
//! channel-padded (a pad already folded in), the convolution either operand. The session's
//! output is bit-exact with the unfused plan (the convolution also returned by the graph,
//! which keeps it a step of its own) on every tier.

use outpost_hal::DType;
use outpost_kernels::Tier;
use outpost_models::graph::op::{Activation, ConvAttrs, Op, Padding};
use outpost_models::{Model, ModelBuilder};
use outpost_runtime::{Session, SessionOptions};
use outpost_tests::pseudo_random_i8 as bytes;
use outpost_tests::{ADD_OUT as OUT, ADD_X as X, ADD_Y as Y, add_channel_pad, add_int16_relu};

/// Channels of the convolution's input.
const CIN: usize = 21;
/// Channels of the convolution's output and of the sum.
const C: usize = 37;
/// Channels of the skip operand when it is padded up to `C`.
const CY: usize = 29;
const H: usize = 5;

/// `out = conv(x) + skip` (or `skip + conv(x)` when `conv_second`); `skip` is `y` or `y`
/// channel-padded (`padded`); the convolution's output is also returned when `return_conv`.
fn model(padded: bool, conv_second: bool, return_conv: bool) -> Model {
    let mut b = ModelBuilder::new();
    b.input("x", &[1, H, H, CIN], DType::I8, Some(Y));
    let cy = if padded { CY } else { C };
    b.input("y", &[1, H, H, cy], DType::I8, Some(Y));
    let w = bytes(C * CIN, 7);
    let scales: Vec<f32> = (0..C).map(|i| 0.004 + 0.0003 * (i % 5) as f32).collect();
    b.quantized_weight("w", &[C, 1, 1, CIN], &w, &scales, 0);
    let bias: Vec<i32> = (0..C as i32).map(|i| i * 53 - 900).collect();
    b.const_i32("bias", &[C], &bias);
    let conv = Op::Conv2d(ConvAttrs {
        stride: [1, 1],
        dilation: [1, 1],
        padding: Padding::Same,
        groups: 1,
        activation: Activation::None,
        requantization: Default::default(),
    });
    b.node_inferred("conv", conv, &["x", "w", "bias"], "p", DType::I8, Some(X))
        .unwrap();
    let skip = if padded {
        add_channel_pad(&mut b, "y", "yp", C - CY);
        "yp"
    } else {
        "y"
    };
    let operands = if conv_second {
        [skip, "p"]
    } else {
        ["p", skip]
    };
    add_int16_relu(&mut b, operands, "out");
    b.output("out");
    if return_conv {
        b.output("p");
    }
    Model::from_bytes(b.build().unwrap()).unwrap()
}

fn run(m: &Model, tier: Tier, x: &[i8], y: &[i8]) -> (Vec<&'static str>, Vec<i8>) {
    let mut s = Session::new(
        m,
        SessionOptions {
            tier: Some(tier),
            ..SessionOptions::default()
        },
    )
    .unwrap();
    let ops = s.plan().steps.iter().map(|st| st.op).collect();
    s.input_i8(0).unwrap().copy_from_slice(x);
    s.input_i8(1).unwrap().copy_from_slice(y);
    s.run();
    (ops, s.output_i8(0).unwrap().to_vec())
}

#[test]
fn pointwise_conv_is_folded_into_the_add_bit_exact_on_every_tier() {
    let x = bytes(H * H * CIN, 1);
    for padded in [false, true] {
        let y = bytes(H * H * if padded { CY } else { C }, 2);
        for conv_second in [false, true] {
            // The reference: the generic tier, the convolution kept as a step of its own.
            let (ops, want) = run(&model(padded, conv_second, true), Tier::Generic, &x, &y);
            assert_eq!(ops, ["conv2d", "add"]);
            assert!(want.iter().any(|&v| v != OUT.zero_point as i8));
            let fused = model(padded, conv_second, false);
            for tier in Tier::supported() {
                let (ops, got) = run(&fused, tier, &x, &y);
                let expect_ops: &[&str] = if tier == Tier::Avx512Vnni {
                    &["conv2d+add"]
                } else {
                    &["conv2d", "add"]
                };
                assert_eq!(ops, expect_ops, "tier {tier}");
                assert_eq!(
                    got, want,
                    "tier {tier}, padded {padded}, conv second {conv_second}"
                );
            }
        }
    }
}
