//! A channel pad read only by an int16 add is folded into the add (the plan has no pad step)
//! and the session's output is bit-exact with pad-then-add on every tier, whichever operand
//! the pad feeds; a pad whose output the graph also returns is kept.

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
