//! An f32 convolution read only by an f32 add is folded into the add on every tier, with the
//! add's other operand plain or channel-padded (an f32 pad already folded in), the
//! convolution either operand. The session's output is bit-exact with the unfused plan (the
//! convolution also returned by the graph, which keeps it a step of its own) on every tier,
//! on one thread and on two (the fused step cut into row slices, each adding its own rows).

use outpost_hal::DType;
use outpost_kernels::Tier;
use outpost_models::graph::op::{Activation, AddAttrs, ConvAttrs, Op, PadAttrs, Padding};
use outpost_models::{Model, ModelBuilder};
use outpost_runtime::{Session, SessionOptions};

/// Channels of the convolution's input.
const CIN: usize = 5;
/// Channels of the convolution's output and of the sum (a 32-lane chunk and a part).
const C: usize = 37;
/// Channels of the skip operand when it is padded up to `C`.
const CY: usize = 29;
/// Rows and columns: tiles of every width (8, 6, 4 and single pixels) and several rows per
/// thread.
const H: usize = 13;
/// The 3 × 3 kernel.
const K: usize = 3;

/// Values with ±0 among them.
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| match (i + seed) % 11 {
            0 => -0.0,
            1 => 0.0,
            _ => ((i * 7 + seed) as f32 * 0.31).sin() * 2.0,
        })
        .collect()
}

/// `out = relu(conv(x) + skip)` (or `relu(skip + conv(x))` when `conv_second`); `skip` is
/// `y` or `y` channel-padded with zeros (`padded`); the convolution (ReLU6) is also returned
/// when `return_conv`.
fn model(padded: bool, conv_second: bool, return_conv: bool) -> Model {
    let mut b = ModelBuilder::new();
    b.input("x", &[1, H, H, CIN], DType::F32, None);
    let cy = if padded { CY } else { C };
    b.input("y", &[1, H, H, cy], DType::F32, None);
    b.const_f32("w", &[C, K, K, CIN], &values(C * K * K * CIN, 5));
    b.const_f32("bias", &[C], &values(C, 9));
    let conv = Op::Conv2d(ConvAttrs {
        stride: [1, 1],
        dilation: [1, 1],
        padding: Padding::Same,
        groups: 1,
        activation: Activation::Relu6,
        requantization: Default::default(),
    });
    b.node_inferred("conv", conv, &["x", "w", "bias"], "p", DType::F32, None)
        .unwrap();
    let skip = if padded {
        let pads = vec![[0, 0], [0, 0], [0, 0], [0, (C - CY) as u32]];
        let pad = Op::Pad(PadAttrs { pads });
        b.node_inferred("pad", pad, &["y"], "yp", DType::F32, None)
            .unwrap();
        "yp"
    } else {
        "y"
    };
    let operands = if conv_second {
        [skip, "p"]
    } else {
        ["p", skip]
    };
    let add = Op::Add(AddAttrs {
        activation: Activation::Relu,
        ..AddAttrs::default()
    });
    b.node_inferred("add", add, &operands, "out", DType::F32, None)
        .unwrap();
    b.output("out");
    if return_conv {
        b.output("p");
    }
    Model::from_bytes(b.build().unwrap()).unwrap()
}

fn run(
    m: &Model,
    tier: Tier,
    threads: usize,
    x: &[f32],
    y: &[f32],
) -> (Vec<&'static str>, Vec<u32>) {
    let options = SessionOptions {
        tier: Some(tier),
        threads,
    };
    let mut s = Session::new(m, options).unwrap();
    let ops = s.plan().steps.iter().map(|st| st.op).collect();
    s.input_f32(0).unwrap().copy_from_slice(x);
    s.input_f32(1).unwrap().copy_from_slice(y);
    s.run();
    let out = s
        .output_f32(0)
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect();
    (ops, out)
}

#[test]
fn f32_conv_is_folded_into_the_add_bit_exact_on_every_tier() {
    let x = values(H * H * CIN, 1);
    for padded in [false, true] {
        let y = values(H * H * if padded { CY } else { C }, 2);
        for conv_second in [false, true] {
            let unfused = model(padded, conv_second, true);
            let fused = model(padded, conv_second, false);
            for tier in Tier::supported() {
                // The reference: the same tier's kernels, the convolution a step of its own.
                let (ops, want) = run(&unfused, tier, 1, &x, &y);
                assert_eq!(ops, ["conv2d", "add"], "tier {tier}");
                assert!(want.iter().any(|&v| f32::from_bits(v) > 0.0));
                for threads in [1, 2] {
                    let (ops, got) = run(&fused, tier, threads, &x, &y);
                    assert_eq!(ops, ["conv2d+add"], "tier {tier}");
                    assert_eq!(
                        got, want,
                        "tier {tier}, {threads} threads, padded {padded}, conv second {conv_second}"
                    );
                }
            }
        }
    }
}
