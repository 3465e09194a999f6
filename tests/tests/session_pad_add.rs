//! A channel pad read only by an int16 add is folded into the add (the plan has no pad step)
//! and the session's output is bit-exact with pad-then-add on every tier, whichever operand
//! the pad feeds; a pad whose output the graph also returns is kept. The same for an f32 pad
//! and add.

use outpost_hal::DType;
use outpost_kernels::{Add16Quant, Tier};
use outpost_models::{Model, ModelBuilder};
use outpost_runtime::{Session, SessionOptions};
use outpost_tests::pseudo_random_i8 as bytes;
use outpost_tests::{ADD_OUT as OUT, ADD_X as X, ADD_Y as Y, add_channel_pad, add_int16_relu};

/// Channels of x and of the output.
const C: usize = 37;
/// Channels of y, padded up to `C`.
const CY: usize = 29;
const PIXELS: usize = 16;

/// `out = x + pad(y)` (or `pad(y) + x` when `pad_first`), the pad also returned when
/// `return_pad`.
fn model(pad_first: bool, return_pad: bool) -> Model {
    let mut b = ModelBuilder::new();
    b.input("x", &[1, 4, 4, C], DType::I8, Some(X));
    b.input("y", &[1, 4, 4, CY], DType::I8, Some(Y));
    add_channel_pad(&mut b, "y", "yp", C - CY);
    let operands = if pad_first { ["yp", "x"] } else { ["x", "yp"] };
    add_int16_relu(&mut b, operands, "out");
    b.output("out");
    if return_pad {
        b.output("yp");
    }
    Model::from_bytes(b.build().unwrap()).unwrap()
}

/// Pad then add, element by element, with the scalar reference arithmetic.
fn expected(x: &[i8], y: &[i8], pad_first: bool) -> Vec<i8> {
    let (q1, q2) = if pad_first { (Y, X) } else { (X, Y) };
    let q = Add16Quant::new(
        q1.scale,
        q1.zero_point,
        q2.scale,
        q2.zero_point,
        OUT.scale,
        OUT.zero_point,
        OUT.zero_point,
        127,
    )
    .unwrap();
    (0..PIXELS * C)
        .map(|i| {
            let (p, ch) = (i / C, i % C);
            let yp = if ch < CY {
                y[p * CY + ch]
            } else {
                Y.zero_point as i8
            };
            if pad_first {
                q.apply(yp, x[i])
            } else {
                q.apply(x[i], yp)
            }
        })
        .collect()
}

#[test]
fn channel_pad_is_folded_into_the_add_bit_exact_on_every_tier() {
    let (x, y) = (bytes(PIXELS * C, 1), bytes(PIXELS * CY, 2));
    for pad_first in [false, true] {
        let m = model(pad_first, false);
        let want = expected(&x, &y, pad_first);
        for tier in Tier::supported() {
            let mut s = Session::new(
                &m,
                SessionOptions {
                    tier: Some(tier),
                    ..SessionOptions::default()
                },
            )
            .unwrap();
            let ops: Vec<&str> = s.plan().steps.iter().map(|st| st.op).collect();
            assert_eq!(ops, ["add"], "tier {tier}: the pad is folded");
            s.input_i8(0).unwrap().copy_from_slice(&x);
            s.input_i8(1).unwrap().copy_from_slice(&y);
            s.run();
            assert_eq!(
                s.output_i8(0).unwrap(),
                &want[..],
                "tier {tier}, pad first {pad_first}"
            );
        }
    }
}

#[test]
fn a_pad_the_graph_returns_is_kept() {
    let (x, y) = (bytes(PIXELS * C, 3), bytes(PIXELS * CY, 4));
    let m = model(false, true);
    let mut s = Session::new(&m, SessionOptions::default()).unwrap();
    let ops: Vec<&str> = s.plan().steps.iter().map(|st| st.op).collect();
    assert_eq!(ops, ["pad", "add"]);
    s.input_i8(0).unwrap().copy_from_slice(&x);
    s.input_i8(1).unwrap().copy_from_slice(&y);
    s.run();
    assert_eq!(s.output_i8(0).unwrap(), &expected(&x, &y, false)[..]);
    let padded = s.output_i8(1).unwrap();
    assert_eq!(&padded[..CY], &y[..CY]);
    assert!(padded[CY..C].iter().all(|&v| v == Y.zero_point as i8));
}

/// The same for f32: `out = relu(x + pad(y))` (or `relu(pad(y) + x)`) with the f32 pad folded
/// into the f32 add, bit-exact with the explicit pad then add (±0 among the inputs).
#[test]
fn f32_channel_pad_is_folded_into_the_add_bit_exact_on_every_tier() {
    use outpost_models::graph::op::{Activation, AddAttrs, Op, PadAttrs};
    let value = |i: usize| match i % 7 {
        0 => -0.0,
        1 => 0.0,
        _ => (i as f32 * 0.37).sin() * 3.0,
    };
    let x: Vec<f32> = (0..PIXELS * C).map(value).collect();
    let y: Vec<f32> = (0..PIXELS * CY).map(|i| value(i + 3)).collect();
    for pad_first in [false, true] {
        let mut b = ModelBuilder::new();
        b.input("x", &[1, 4, 4, C], DType::F32, None);
        b.input("y", &[1, 4, 4, CY], DType::F32, None);
        let pads = vec![[0, 0], [0, 0], [0, 0], [0, (C - CY) as u32]];
        b.node_inferred(
            "pad",
            Op::Pad(PadAttrs { pads }),
            &["y"],
            "yp",
            DType::F32,
            None,
        )
        .unwrap();
        let operands = if pad_first { ["yp", "x"] } else { ["x", "yp"] };
        let add = Op::Add(AddAttrs {
            activation: Activation::Relu,
            ..AddAttrs::default()
        });
        b.node_inferred("add", add, &operands, "out", DType::F32, None)
            .unwrap();
        b.output("out");
        let m = Model::from_bytes(b.build().unwrap()).unwrap();
        let want: Vec<u32> = (0..PIXELS * C)
            .map(|i| {
                let (p, ch) = (i / C, i % C);
                let yp = if ch < CY { y[p * CY + ch] } else { 0.0 };
                // Either order: f32 addition commutes (no NaN among these inputs).
                let sum = x[i] + yp;
                sum.clamp(0.0, f32::INFINITY).to_bits()
            })
            .collect();
        for tier in Tier::supported() {
            let options = SessionOptions {
                tier: Some(tier),
                ..SessionOptions::default()
            };
            let mut s = Session::new(&m, options).unwrap();
            let ops: Vec<&str> = s.plan().steps.iter().map(|st| st.op).collect();
            assert_eq!(ops, ["add"], "tier {tier}: the pad is folded");
            s.input_f32(0).unwrap().copy_from_slice(&x);
            s.input_f32(1).unwrap().copy_from_slice(&y);
            s.run();
            let got: Vec<u32> = s
                .output_f32(0)
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect();
            assert_eq!(got, want, "tier {tier}, pad first {pad_first}");
        }
    }
}
