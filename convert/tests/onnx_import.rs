//! ONNX import against a direct NCHW computation: a small model built here with every mapped
//! layout rule (asymmetric padding and strides, a folded batch norm, a depthwise convolution
//! with multiplier 2, max pooling, a transposed convolution with its batch norm and relu
//! folded, a channel concat, a sigmoid) runs through Outpost (NHWC) and must give the values a
//! plain NCHW reference gives. The real model (CenterFace) is checked against onnxruntime in
//! `tests/tests/real_models.rs`.

use outpost_convert::{ConvertError, ConvertOptions, convert};
use outpost_models::Model;
use outpost_runtime::{Session, SessionOptions};
use prost::Message;
use tract_onnx::pb;

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn init(name: &str, dims: &[usize], v: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: pb::tensor_proto::DataType::Float as i32,
        float_data: v.to_vec(),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        ints: v.to_vec(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        i: v,
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], out: &str, attribute: Vec<pb::AttributeProto>) -> pb::NodeProto {
    pb::NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        name: format!("{op}_{out}"),
        op_type: op.into(),
        attribute,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[Option<i64>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value as D};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d {
                                Some(v) => D::DimValue(*v),
                                None => D::DimParam("n".into()),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An NCHW activation.
#[derive(Clone)]
struct T {
    d: [usize; 4],
    v: Vec<f32>,
}

impl T {
    fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.v[(c * self.d[2] + y) * self.d[3] + x]
    }
}

/// Reference NCHW convolution: weights OIHW, pads [top, left, bottom, right].
fn conv(x: &T, w: &[f32], wd: [usize; 4], b: &[f32], s: [usize; 2], p: [usize; 4], g: usize) -> T {
    let [o, ig, kh, kw] = wd;
    let oh = (x.d[2] + p[0] + p[2] - kh) / s[0] + 1;
    let ow = (x.d[3] + p[1] + p[3] - kw) / s[1] + 1;
    let og = o / g;
    let mut v = vec![0.0; o * oh * ow];
    for oc in 0..o {
        let grp = oc / og;
        for y in 0..oh {
            for xx in 0..ow {
                let mut acc = b[oc];
                for i in 0..ig {
                    for a in 0..kh {
                        for c in 0..kw {
                            let iy = (y * s[0] + a) as isize - p[0] as isize;
                            let ix = (xx * s[1] + c) as isize - p[1] as isize;
                            if iy < 0 || ix < 0 || iy >= x.d[2] as isize || ix >= x.d[3] as isize {
                                continue;
                            }
                            acc += x.at(grp * ig + i, iy as usize, ix as usize)
                                * w[((oc * ig + i) * kh + a) * kw + c];
                        }
                    }
                }
                v[(oc * oh + y) * ow + xx] = acc;
            }
        }
    }
    T {
        d: [1, o, oh, ow],
        v,
    }
}

fn bn_relu(x: &mut T, p: &[Vec<f32>; 4], eps: f32) {
    let hw = x.d[2] * x.d[3];
    for (i, v) in x.v.iter_mut().enumerate() {
        let c = i / hw;
        *v = ((*v - p[2][c]) / (p[3][c] + eps).sqrt() * p[0][c] + p[1][c]).max(0.0);
    }
}

fn maxpool2(x: &T) -> T {
    let (c, h, w) = (x.d[1], x.d[2] / 2, x.d[3] / 2);
    let mut v = vec![0.0; c * h * w];
    for ch in 0..c {
        for y in 0..h {
            for xx in 0..w {
                let m = (0..4)
                    .map(|k| x.at(ch, 2 * y + k / 2, 2 * xx + k % 2))
                    .fold(f32::MIN, f32::max);
                v[(ch * h + y) * w + xx] = m;
            }
        }
    }
    T { d: [1, c, h, w], v }
}

/// Reference transposed convolution, kernel 2×2 stride 2, weights [c, o, 2, 2].
fn deconv2(x: &T, w: &[f32], o: usize, b: &[f32]) -> T {
    let (c, h, wi) = (x.d[1], x.d[2], x.d[3]);
    let (oh, ow) = (2 * h, 2 * wi);
    let mut v = vec![0.0; o * oh * ow];
    for oc in 0..o {
        for y in 0..oh {
            for xx in 0..ow {
                let mut acc = b[oc];
                for ic in 0..c {
                    acc += x.at(ic, y / 2, xx / 2) * w[((ic * o + oc) * 2 + y % 2) * 2 + xx % 2];
                }
                v[(oc * oh + y) * ow + xx] = acc;
            }
        }
    }
    T {
        d: [1, o, oh, ow],
        v,
    }
}

struct Built {
    bytes: Vec<u8>,
    want: T,
    input: T,
}

fn build(h: usize, w: usize, declared: [Option<i64>; 2]) -> Built {
    let x = T {
        d: [1, 3, h, w],
        v: values(3 * h * w, 1),
    };
    let (w1, b1) = (values(4 * 3 * 9, 2), values(4, 3));
    let bn = |seed: u64, n: usize| -> [Vec<f32>; 4] {
        let var: Vec<f32> = values(n, seed + 3).iter().map(|v| v.abs() + 0.5).collect();
        [
            values(n, seed),
            values(n, seed + 1),
            values(n, seed + 2),
            var,
        ]
    };
    let bn1 = bn(10, 4);
    let (wd, bd) = (values(8 * 9, 4), values(8, 5));
    let (wt, bt) = (values(8 * 3 * 4, 6), values(3, 7));
    let bn2 = bn(20, 3);
    let eps = 1e-3;

    // The reference, NCHW.
    let mut r1 = conv(&x, &w1, [4, 3, 3, 3], &b1, [2, 1], [1, 0, 1, 2], 1);
    bn_relu(&mut r1, &bn1, eps);
    let d = conv(&r1, &wd, [8, 1, 3, 3], &bd, [1, 1], [1, 1, 1, 1], 4);
    let p = maxpool2(&d);
    let mut t = deconv2(&p, &wt, 3, &bt);
    bn_relu(&mut t, &bn2, eps);
    assert_eq!(t.d[2..], r1.d[2..], "test shapes");
    let mut cat = t.v.clone();
    cat.extend_from_slice(&r1.v);
    let want = T {
        d: [1, 7, r1.d[2], r1.d[3]],
        v: cat.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect(),
    };

    let eps_attr = pb::AttributeProto {
        name: "epsilon".into(),
        f: eps,
        r#type: pb::attribute_proto::AttributeType::Float as i32,
        ..Default::default()
    };
    let mut inits = vec![
        init("w1", &[4, 3, 3, 3], &w1),
        init("b1", &[4], &b1),
        init("wd", &[8, 1, 3, 3], &wd),
        init("bd", &[8], &bd),
        init("wt", &[8, 3, 2, 2], &wt),
        init("bt", &[3], &bt),
    ];
    for (k, name) in ["s", "b", "m", "v"].iter().enumerate() {
        inits.push(init(&format!("bn1_{name}"), &[4], &bn1[k]));
        inits.push(init(&format!("bn2_{name}"), &[3], &bn2[k]));
    }
    let nodes = vec![
        node(
            "Conv",
            &["x", "w1", "b1"],
            "c1",
            vec![ints("strides", &[2, 1]), ints("pads", &[1, 0, 1, 2])],
        ),
        pb::NodeProto {
            attribute: vec![eps_attr.clone()],
            ..node(
                "BatchNormalization",
                &["c1", "bn1_s", "bn1_b", "bn1_m", "bn1_v"],
                "n1",
                vec![],
            )
        },
        node("Relu", &["n1"], "r1", vec![]),
        node(
            "Conv",
            &["r1", "wd", "bd"],
            "d",
            vec![int("group", 4), ints("pads", &[1, 1, 1, 1])],
        ),
        node(
            "MaxPool",
            &["d"],
            "p",
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        ),
        node(
            "ConvTranspose",
            &["p", "wt", "bt"],
            "t",
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        ),
        pb::NodeProto {
            attribute: vec![eps_attr],
            ..node(
                "BatchNormalization",
                &["t", "bn2_s", "bn2_b", "bn2_m", "bn2_v"],
                "n2",
                vec![],
            )
        },
        node("Relu", &["n2"], "r2", vec![]),
        node("Concat", &["r2", "r1"], "cat", vec![int("axis", 1)]),
        node("Sigmoid", &["cat"], "y", vec![]),
    ];
    let model = pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            node: nodes,
            name: "layout".into(),
            initializer: inits,
            input: vec![value_info(
                "x",
                &[Some(1), Some(3), declared[0], declared[1]],
            )],
            output: vec![value_info("y", &[None, None, None, None])],
            ..Default::default()
        }),
        ..Default::default()
    };
    Built {
        bytes: model.encode_to_vec(),
        want,
        input: x,
    }
}

/// Run an imported model on the NCHW input; the NHWC output back in NCHW order.
fn run(model_bytes: Vec<u8>, x: &T, out_c: usize) -> Vec<f32> {
    let model = Model::from_bytes(model_bytes).unwrap();
    let mut s = Session::new(&model, SessionOptions::default()).unwrap();
    let [_, c, h, w] = x.d;
    let input = s.input_f32(0).unwrap();
    assert_eq!(input.len(), c * h * w);
    for ch in 0..c {
        for y in 0..h {
            for xx in 0..w {
                input[(y * w + xx) * c + ch] = x.at(ch, y, xx);
            }
        }
    }
    s.run();
    let out = s.output_f32(0).unwrap();
    let hw = out.len() / out_c;
    (0..out.len())
        .map(|i| out[(i % hw) * out_c + i / hw])
        .collect()
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= 1e-5, "element {i}: {a} vs reference {b}");
    }
}

#[test]
fn layouts_and_folds_match_an_nchw_reference() {
    let b = build(7, 6, [Some(7), Some(6)]);
    let (out, report) = convert(&b.bytes, "layout.onnx", &ConvertOptions::default(), None).unwrap();
    // Both batch norms and the deconvolution's relu are folded away, the first relu too.
    assert!(report.folded >= 1, "{report:?}");
    let got = run(out, &b.input, 7);
    assert_close(&got, &b.want.v);
}

#[test]
fn input_size_replaces_a_symbolic_one() {
    let b = build(11, 10, [None, None]);
    let e = convert(&b.bytes, "dyn.onnx", &ConvertOptions::default(), None).unwrap_err();
    assert!(e.to_string().contains("--input-size"), "{e}");
    let opts = ConvertOptions {
        input_hw: Some([11, 10]),
        ..Default::default()
    };
    let (out, _) = convert(&b.bytes, "dyn.onnx", &opts, None).unwrap();
    let got = run(out, &b.input, 7);
    assert_close(&got, &b.want.v);
}

#[test]
fn unsupported_onnx_op_names_op_and_node() {
    let mut m = pb::ModelProto::decode(build(7, 6, [Some(7), Some(6)]).bytes.as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    g.node[8].op_type = "LSTM".into();
    let e = convert(&m.encode_to_vec(), "m.onnx", &Default::default(), None).unwrap_err();
    assert!(
        matches!(&e, ConvertError::UnsupportedOp { op, node, .. } if op == "LSTM" && node == "Concat_cat"),
        "{e}"
    );
    // A transposed convolution that is not an upsampling one is refused, naming itself.
    let mut m = pb::ModelProto::decode(build(7, 6, [Some(7), Some(6)]).bytes.as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    g.node[5].attribute.push(ints("pads", &[1, 1, 1, 1]));
    let e = convert(&m.encode_to_vec(), "m.onnx", &Default::default(), None).unwrap_err();
    assert!(e.to_string().contains("ConvTranspose_t"), "{e}");
}

#[test]
fn broken_onnx_models_give_errors_never_panics() {
    let bytes = build(7, 6, [Some(7), Some(6)]).bytes;
    for cut in [1, 10, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        assert!(convert(&bytes[..cut], "cut.onnx", &Default::default(), None).is_err());
    }
    let mut state = 0x243f6a8885a308d3u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2000 {
        let mut b = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() % b.len() as u64) as usize;
            b[i] = next() as u8;
        }
        // Any outcome but a panic.
        let _ = convert(&b, "mutated.onnx", &Default::default(), None);
    }
}
