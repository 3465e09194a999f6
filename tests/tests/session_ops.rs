//! Each op's wiring through the planner and session (attribute → kernel parameters), checked
//! on one-node float models against naive references written here, plus an int8
//! quantize → logistic → dequantize chain against the float function.

use outpost_hal::DType;
use outpost_models::graph::QuantParams;
use outpost_models::graph::op::*;
use outpost_models::spec::{Decoder, InputSpec, Layout, OutputSpec};
use outpost_models::{Model, ModelBuilder};
use outpost_runtime::{Session, SessionOptions};

const SHAPE: [usize; 4] = [1, 5, 6, 3];

fn input(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 37 + seed * 11) % 29) as f32 - 14.0) / 7.0)
        .collect()
}

/// Build a float model with the given inputs and one node, run it, return the output.
fn run_op(op: Op, inputs: &[(&str, Vec<usize>)]) -> (Vec<f32>, Vec<usize>) {
    let mut b = ModelBuilder::new();
    for (name, shape) in inputs {
        b.input(name, shape, DType::F32, None);
        b.input_spec(InputSpec {
            tensor: name.to_string(),
            layout: Layout::Nc,
            color: outpost_models::spec::ColorOrder::None,
            resize: Default::default(),
            mean: vec![],
            std: vec![],
        });
    }
    let names: Vec<&str> = inputs.iter().map(|(n, _)| *n).collect();
    let out_shape = b
        .node_inferred("op", op, &names, "y", DType::F32, None)
        .unwrap();
    b.output("y");
    b.output_spec(OutputSpec {
        tensors: vec!["y".into()],
        decoder: Decoder::Raw,
    });
    let model = Model::from_bytes(b.build().unwrap()).unwrap();
    let mut s = Session::new(&model, SessionOptions::default()).unwrap();
    for (i, (_, shape)) in inputs.iter().enumerate() {
        let n: usize = shape.iter().product();
        s.input_f32(i).unwrap().copy_from_slice(&input(n, i));
    }
    s.run();
    (s.output_f32(0).unwrap().to_vec(), out_shape)
}

fn at(x: &[f32], s: &[usize], i: [usize; 4]) -> f32 {
    x[((i[0] * s[1] + i[1]) * s[2] + i[2]) * s[3] + i[3]]
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
            "element {i}: {x} vs {y}"
        );
    }
}

fn each(shape: &[usize], mut f: impl FnMut([usize; 4])) {
    for n in 0..shape[0] {
        for h in 0..shape[1] {
            for w in 0..shape[2] {
                for c in 0..shape[3] {
                    f([n, h, w, c]);
                }
            }
        }
    }
}

#[test]
fn pad_matches_reference() {
    let (y, ys) = run_op(
        Op::Pad(PadAttrs {
            pads: vec![[0, 0], [1, 2], [0, 1], [0, 0]],
        }),
        &[("x", SHAPE.to_vec())],
    );
    let x = input(90, 0);
    let mut want = vec![];
    each(&ys, |[n, h, w, c]| {
        let inside = (1..6).contains(&h) && w < 6;
        want.push(if inside {
            at(&x, &SHAPE, [n, h - 1, w, c])
        } else {
            0.0
        });
    });
    close(&y, &want);
}

#[test]
fn concat_on_channels_and_rows() {
    for axis in [3, 1, -1] {
        let (y, ys) = run_op(
            Op::Concat(ConcatAttrs { axis }),
            &[("a", SHAPE.to_vec()), ("b", SHAPE.to_vec())],
        );
        let (a, b) = (input(90, 0), input(90, 1));
        let ax = if axis < 0 { 3 } else { axis as usize };
        let mut want = vec![];
        each(&ys, |mut i| {
            if i[ax] < SHAPE[ax] {
                want.push(at(&a, &SHAPE, i));
            } else {
                i[ax] -= SHAPE[ax];
                want.push(at(&b, &SHAPE, i));
            }
        });
        close(&y, &want);
    }
}

#[test]
fn transpose_matches_reference() {
    let (y, ys) = run_op(
        Op::Transpose(TransposeAttrs {
            perm: vec![0, 3, 1, 2],
        }),
        &[("x", SHAPE.to_vec())],
    );
    assert_eq!(ys, vec![1, 3, 5, 6]);
    let x = input(90, 0);
    let mut want = vec![];
    each(&ys, |[n, c, h, w]| want.push(at(&x, &SHAPE, [n, h, w, c])));
    close(&y, &want);
}

#[test]
fn pools_match_reference() {
    // 3×3 max pool, stride 2, SAME padding (padding never wins a max).
    let attrs = PoolAttrs {
        kernel: [3, 3],
        stride: Some([2, 2]),
        padding: Padding::Same,
        activation: Activation::None,
    };
    let (y, ys) = run_op(Op::MaxPool2d(attrs), &[("x", SHAPE.to_vec())]);
    assert_eq!(ys, vec![1, 3, 3, 3]);
    let x = input(90, 0);
    let mut want = vec![];
    each(&ys, |[n, oh, ow, c]| {
        let mut m = f32::NEG_INFINITY;
        for dh in 0..3 {
            for dw in 0..3 {
                // SAME for 5→3 at stride 2, k 3: total pad 2 rows → top 1; 6→3: pad 1 → left 0.
                let (h, w) = ((oh * 2 + dh) as isize - 1, (ow * 2 + dw) as isize);
                if (0..5).contains(&h) && (0..6).contains(&w) {
                    m = m.max(at(&x, &SHAPE, [n, h as usize, w as usize, c]));
                }
            }
        }
        want.push(m);
    });
    close(&y, &want);
    // 2×2 average pool, VALID.
    let attrs = PoolAttrs {
        kernel: [2, 2],
        stride: None,
        padding: Padding::Valid,
        activation: Activation::None,
    };
    let (y, ys) = run_op(Op::AvgPool2d(attrs), &[("x", SHAPE.to_vec())]);
    assert_eq!(ys, vec![1, 2, 3, 3]);
    let mut want = vec![];
    each(&ys, |[n, oh, ow, c]| {
        let mut s = 0.0;
        for dh in 0..2 {
            for dw in 0..2 {
                s += at(&x, &SHAPE, [n, oh * 2 + dh, ow * 2 + dw, c]);
            }
        }
        want.push(s / 4.0);
    });
    close(&y, &want);
}

#[test]
fn resize_nearest_and_unary_ops() {
    let attrs = ResizeAttrs {
        size: [10, 12],
        mode: ResizeMode::Nearest,
        align_corners: false,
        half_pixel_centers: false,
    };
    let (y, ys) = run_op(Op::Resize(attrs), &[("x", SHAPE.to_vec())]);
    let x = input(90, 0);
    let mut want = vec![];
    each(&ys, |[n, h, w, c]| {
        want.push(at(&x, &SHAPE, [n, h / 2, w / 2, c]))
    });
    close(&y, &want);

    let (y, _) = run_op(Op::Logistic, &[("x", SHAPE.to_vec())]);
    close(
        &y,
        &x.iter()
            .map(|v| 1.0 / (1.0 + (-v).exp()))
            .collect::<Vec<_>>(),
    );
    let (y, _) = run_op(Op::Relu6, &[("x", SHAPE.to_vec())]);
    close(&y, &x.iter().map(|v| v.clamp(0.0, 6.0)).collect::<Vec<_>>());
    let (y, _) = run_op(
        Op::Mul(ActAttrs::default()),
        &[("a", SHAPE.to_vec()), ("b", SHAPE.to_vec())],
    );
    let b = input(90, 1);
    close(
        &y,
        &x.iter().zip(&b).map(|(p, q)| p * q).collect::<Vec<_>>(),
    );
}

#[test]
fn softmax_rows_sum_to_one() {
    let (y, _) = run_op(
        Op::Softmax(SoftmaxAttrs { beta: 1.0 }),
        &[("x", vec![4, 7])],
    );
    let x = input(28, 0);
    for r in 0..4 {
        let row = &x[r * 7..r * 7 + 7];
        let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let z: f32 = row.iter().map(|v| (v - m).exp()).sum();
        close(
            &y[r * 7..r * 7 + 7],
            &row.iter().map(|v| (v - m).exp() / z).collect::<Vec<_>>(),
        );
    }
}

#[test]
fn int8_chain_tracks_float_logistic() {
    // f32 → quantize → logistic (int8 LUT) → dequantize → f32.
    let mut b = ModelBuilder::new();
    b.input("x", &[1, 64], DType::F32, None);
    let qin = QuantParams {
        scale: 8.0 / 255.0,
        zero_point: 0,
    };
    let qout = QuantParams {
        scale: 1.0 / 256.0,
        zero_point: -128,
    };
    b.node_inferred("q", Op::Quantize, &["x"], "xq", DType::I8, Some(qin))
        .unwrap();
    b.node_inferred("sig", Op::Logistic, &["xq"], "yq", DType::I8, Some(qout))
        .unwrap();
    b.node_inferred("dq", Op::Dequantize, &["yq"], "y", DType::F32, None)
        .unwrap();
    b.output("y");
    b.output_spec(OutputSpec {
        tensors: vec!["y".into()],
        decoder: Decoder::Raw,
    });
    let model = Model::from_bytes(b.build().unwrap()).unwrap();
    let mut s = Session::new(&model, SessionOptions::default()).unwrap();
    let x: Vec<f32> = (0..64).map(|i| (i as f32 - 32.0) / 8.0).collect();
    s.input_f32(0).unwrap().copy_from_slice(&x);
    s.run();
    let y = s.output_f32(0).unwrap();
    for (xv, yv) in x.iter().zip(y) {
        let want = 1.0 / (1.0 + (-xv).exp());
        // One input step (8/255) moves the sigmoid by at most 1/128; one output step is 1/256.
        assert!(
            (yv - want).abs() <= 1.0 / 128.0 + 1.0 / 256.0,
            "sigmoid({xv}) = {yv}, want {want}"
        );
    }
}
