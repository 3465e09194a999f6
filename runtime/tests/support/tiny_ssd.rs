//! A small synthetic SSD detector for pipeline tests (shared by the lib's unit tests and the
//! integration tests through `#[path]`): int8 convolutions with deterministic random weights,
//! a single anchor layer of stride 8 and an SSD decoder, so a frame goes through the same
//! preprocess → session → dequantize → decode → NMS path as BlazeFace.

use outpost_hal::DType;
use outpost_models::graph::QuantParams;
use outpost_models::graph::op::{Activation, ConvAttrs, Op, Padding, ReshapeAttrs};
use outpost_models::spec::{
    ColorOrder, Decoder, InputSpec, Layout, NmsKind, OutputSpec, ResizeKind,
};
use outpost_models::{Model, ModelBuilder};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn i8(&mut self) -> i8 {
        (self.next() % 255) as i32 as i8
    }
}

fn conv(
    b: &mut ModelBuilder,
    rng: &mut Lcg,
    name: &str,
    x: &str,
    cin: usize,
    cout: usize,
    stride: u32,
    act: Activation,
    (in_scale, q, gain): (f32, QuantParams, f32),
    bias: &[f32],
) -> String {
    let w: Vec<i8> = (0..cout * 9 * cin).map(|_| rng.i8()).collect();
    let ws = gain * 0.6 / (127.0 * (9 * cin) as f32).sqrt();
    let scales = vec![ws; cout];
    let wn = format!("{name}.weight");
    let bn = format!("{name}.bias");
    b.quantized_weight(&wn, &[cout, 3, 3, cin], &w, &scales, 0);
    // Real-valued biases in the accumulator's scale (input scale × weight scale).
    let bias: Vec<i32> = (0..cout)
        .map(|i| (bias.get(i).copied().unwrap_or(0.0) / (in_scale * ws)).round() as i32)
        .collect();
    b.const_i32(&bn, &[cout], &bias);
    let op = Op::Conv2d(ConvAttrs {
        stride: [stride; 2],
        dilation: [1, 1],
        padding: Padding::Same,
        groups: 1,
        activation: act,
        requantization: Default::default(),
    });
    b.node_inferred(name, op, &[x, &wn, &bn], name, DType::I8, Some(q))
        .expect("conv shape");
    name.to_string()
}

/// A `size × size` RGB int8 detector (`size` a multiple of 8) with `trunk` extra 3×3
/// convolutions of `width` channels at half resolution (more of them: slower), one SSD anchor
/// per 8×8 cell, score threshold `threshold`.
pub fn tiny_ssd(size: usize, trunk: usize, width: usize, threshold: f32) -> Model {
    assert!(size.is_multiple_of(8) && size >= 8);
    let mut b = ModelBuilder::new();
    let mut rng = Lcg(0x0DD_5EED);
    let inq = QuantParams {
        scale: 1.0 / 127.5,
        zero_point: -1,
    };
    let act = QuantParams {
        scale: 0.02,
        zero_point: -128,
    };
    b.input("image", &[1, size, size, 3], DType::I8, Some(inq));
    let mut x = conv(
        &mut b,
        &mut rng,
        "stem",
        "image",
        3,
        width,
        2,
        Activation::Relu,
        (inq.scale, act, 1.0),
        &[0.5; 64],
    );
    for i in 0..trunk {
        let name = format!("trunk{i}");
        x = conv(
            &mut b,
            &mut rng,
            &name,
            &x,
            width,
            width,
            1,
            Activation::Relu,
            (act.scale, act, 1.0),
            &[0.5; 64],
        );
    }
    let regq = QuantParams {
        scale: 0.25,
        zero_point: 0,
    };
    let clsq = QuantParams {
        scale: 0.05,
        zero_point: 0,
    };
    // Boxes about a quarter of the input wide and high; scores around σ(1).
    let s = size as f32;
    let reg = conv(
        &mut b,
        &mut rng,
        "reg",
        &x,
        width,
        4,
        4,
        Activation::None,
        (act.scale, regq, 0.2),
        &[0.0, 0.0, s / 4.0, s / 4.0],
    );
    let cls = conv(
        &mut b,
        &mut rng,
        "cls",
        &x,
        width,
        1,
        4,
        Activation::None,
        (act.scale, clsq, 0.05),
        &[1.0],
    );
    let n = (size / 8) * (size / 8);
    let reshape = |shape: Vec<i64>| Op::Reshape(ReshapeAttrs { shape });
    b.node_inferred(
        "regressors",
        reshape(vec![1, n as i64, 4]),
        &[&reg],
        "regressors",
        DType::I8,
        Some(regq),
    )
    .expect("reshape");
    b.node_inferred(
        "scores",
        reshape(vec![1, n as i64, 1]),
        &[&cls],
        "scores",
        DType::I8,
        Some(clsq),
    )
    .expect("reshape");
    b.output("regressors");
    b.output("scores");
    b.input_spec(InputSpec {
        tensor: "image".into(),
        layout: Layout::Nhwc,
        color: ColorOrder::Rgb,
        resize: ResizeKind::Letterbox,
        mean: vec![127.5; 3],
        std: vec![127.5; 3],
    });
    b.output_spec(OutputSpec {
        tensors: vec!["regressors".into(), "scores".into()],
        decoder: Decoder::Ssd {
            strides: vec![8],
            anchors_per_cell: vec![1],
            input_size: [size as u32, size as u32],
            box_scale: size as f32,
            num_keypoints: 0,
            score_threshold: threshold,
            iou_threshold: 0.3,
            nms: NmsKind::Hard,
            score_clip: 100.0,
        },
    });
    b.labels(&["thing"]);
    b.name_version("tiny-ssd", "test-1");
    Model::from_bytes(b.build().expect("build")).expect("load")
}

/// A deterministic RGB test frame.
pub fn frame(width: u32, height: u32, seed: u32) -> super::RgbImage {
    let mut rng = Lcg(u64::from(seed) + 1);
    let data = (0..width as usize * height as usize * 3)
        .map(|i| ((i as u32 / 3 % width) * 7 + (rng.next() & 31)) as u8)
        .collect();
    super::RgbImage {
        width,
        height,
        data,
    }
}
