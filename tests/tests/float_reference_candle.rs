//! Outpost's float kernels against candle on the same float graph (MobileNetV2 with
//! synthetic weights): conv (3×3 stride 2 with TFLite SAME padding, 1×1), depthwise,
//! ReLU6, residual add, spatial mean, fully connected. Budget: every logit within 1e-4 of the
//! largest logit's magnitude (f32 summation order differs between the two).

use candle_core::{D, DType, Device, Module, Tensor};
use outpost_models::Model;
use outpost_models::graph::op::{Activation, Op, Padding};
use outpost_models::graph::shape::conv_out;
use outpost_models::zoo::{MobileNetV2, synth_mobilenet_v2};
use outpost_runtime::{Session, SessionOptions};
use std::collections::HashMap;

fn stored(model: &Model, name: &str) -> Tensor {
    let t = model.tensor(name).unwrap();
    Tensor::from_slice(t.as_f32().unwrap(), t.shape(), &Device::Cpu).unwrap()
}

fn act(x: Tensor, a: Activation) -> Tensor {
    match a {
        Activation::None => x,
        Activation::Relu => x.relu().unwrap(),
        Activation::Relu6 => x.clamp(0f32, 6f32).unwrap(),
    }
}

/// Pad NCHW spatially as TFLite SAME / explicit padding does, so candle convolves unpadded.
fn pad_same(
    x: &Tensor,
    k: [usize; 2],
    stride: [u32; 2],
    dil: [u32; 2],
    padding: Padding,
) -> Tensor {
    let (_, _, h, w) = x.dims4().unwrap();
    let mut x = x.clone();
    for (axis, (size, dim)) in [(h, 2usize), (w, 3usize)].into_iter().enumerate() {
        let (out, before) = conv_out(
            size,
            k[axis],
            stride[axis] as usize,
            dil[axis] as usize,
            padding,
            axis,
        )
        .unwrap();
        let eff = (k[axis] - 1) * dil[axis] as usize + 1;
        let total = ((out - 1) * stride[axis] as usize + eff).saturating_sub(size);
        let after = total.saturating_sub(before);
        x = x.pad_with_zeros(dim, before, after).unwrap();
    }
    x
}

/// Run a float Outpost graph through candle: the independent reference.
fn candle_forward(model: &Model, input_nhwc: &Tensor) -> Tensor {
    let g = &model.meta().graph;
    let mut values: HashMap<&str, Tensor> = HashMap::new();
    values.insert(
        g.inputs[0].as_str(),
        input_nhwc
            .permute((0, 3, 1, 2))
            .unwrap()
            .contiguous()
            .unwrap(),
    );
    for n in &g.nodes {
        let x = values[n.inputs[0].as_str()].clone();
        let y = match &n.op {
            Op::Conv2d(a) => {
                let w = stored(model, &n.inputs[1])
                    .permute((0, 3, 1, 2))
                    .unwrap()
                    .contiguous()
                    .unwrap();
                let (_, _, kh, kw) = w.dims4().unwrap();
                let xp = pad_same(&x, [kh, kw], a.stride, a.dilation, a.padding);
                assert_eq!(a.stride[0], a.stride[1]);
                let y = xp
                    .conv2d(
                        &w,
                        0,
                        a.stride[0] as usize,
                        a.dilation[0] as usize,
                        a.groups as usize,
                    )
                    .unwrap();
                let b = stored(model, &n.inputs[2]);
                let c = b.dims1().unwrap();
                act(
                    y.broadcast_add(&b.reshape((1, c, 1, 1)).unwrap()).unwrap(),
                    a.activation,
                )
            }
            Op::DepthwiseConv2d(a) => {
                let w = stored(model, &n.inputs[1])
                    .permute((3, 0, 1, 2))
                    .unwrap()
                    .contiguous()
                    .unwrap();
                let (c, _, kh, kw) = w.dims4().unwrap();
                let xp = pad_same(&x, [kh, kw], a.stride, a.dilation, a.padding);
                let y = xp
                    .conv2d(&w, 0, a.stride[0] as usize, a.dilation[0] as usize, c)
                    .unwrap();
                let b = stored(model, &n.inputs[2]);
                act(
                    y.broadcast_add(&b.reshape((1, c, 1, 1)).unwrap()).unwrap(),
                    a.activation,
                )
            }
            Op::Add(a) => act((x + &values[n.inputs[1].as_str()]).unwrap(), a.activation),
            Op::Mean(_) => x.flatten_from(2).unwrap().mean(D::Minus1).unwrap(),
            Op::FullyConnected(a) => {
                let linear = candle_nn::Linear::new(
                    stored(model, &n.inputs[1]),
                    Some(stored(model, &n.inputs[2])),
                );
                act(linear.forward(&x).unwrap(), a.activation)
            }
            other => panic!("reference has no {}", other.name()),
        };
        values.insert(n.outputs[0].as_str(), y);
    }
    values[g.outputs[0].as_str()].clone()
}

#[test]
fn float_kernels_match_candle_on_mobilenet_v2() {
    let cfg = MobileNetV2 {
        width: 0.5,
        size: 64,
        int8: false,
        classes: 50,
        ..Default::default()
    };
    let model = Model::from_bytes(synth_mobilenet_v2(&cfg).unwrap().build().unwrap()).unwrap();
    let n = 64 * 64 * 3;
    let input: Vec<f32> = (0..n)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();

    let mut session = Session::new(&model, SessionOptions::default()).unwrap();
    session.input_f32(0).unwrap().copy_from_slice(&input);
    session.run();
    let ours = session.output_f32(0).unwrap().to_vec();

    let x = Tensor::from_slice(&input, (1, 64, 64, 3), &Device::Cpu).unwrap();
    let theirs: Vec<f32> = candle_forward(&model, &x)
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();

    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 1e-3, "degenerate logits");
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= 1e-4 * scale,
        "max |ours - candle| = {worst} for logits up to {scale}"
    );
}
