//! MobileNetV2 (Sandler et al. 2018): the real architecture with synthetic weights.

use outpost_hal::DType;

use super::rng::Rng;
use crate::builder::ModelBuilder;
use crate::error::Result;
use crate::graph::QuantParams;
use crate::graph::op::{
    ActAttrs, Activation, AddArithmetic, AddAttrs, ConvAttrs, DepthwiseAttrs, MeanAttrs, Op,
    Padding, Requantization,
};
use crate::spec::{
    ColorOrder, Decoder, InputSpec, Layout, OutputSpec, Provenance, ResizeKind, ScoreActivation,
};

/// MobileNetV2 hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MobileNetV2 {
    /// Width multiplier (1.0 = the standard 3.4 M-parameter model).
    pub width: f32,
    /// Input height and width.
    pub size: usize,
    /// int8 (TFLite quantization) or f32.
    pub int8: bool,
    /// Classes of the classifier.
    pub classes: usize,
    /// The int8 convolutions' requantization (default: `f32`, as Outpost's quantizer
    /// chooses; `tflite` for TFLite's fixed point form).
    pub requantization: Requantization,
}

impl Default for MobileNetV2 {
    fn default() -> Self {
        MobileNetV2 {
            width: 1.0,
            size: 224,
            int8: true,
            classes: 1000,
            requantization: Requantization::F32,
        }
    }
}

/// Inverted-residual settings: expansion t, channels c, repeats n, first stride s.
const BLOCKS: [(usize, usize, usize, u32); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

fn make_divisible(v: f32, divisor: usize) -> usize {
    let d = divisor as f32;
    let new = ((v + d / 2.0) / d).floor().max(1.0) as usize * divisor;
    if (new as f32) < 0.9 * v {
        new + divisor
    } else {
        new
    }
}

/// Quantization of ReLU6 outputs: [0, 6] onto the full int8 range.
const RELU6_Q: QuantParams = QuantParams {
    scale: 6.0 / 255.0,
    zero_point: -128,
};
/// Quantization of linear (projection, residual) outputs.
const LINEAR_Q: QuantParams = QuantParams {
    scale: 0.1,
    zero_point: 0,
};

struct Writer {
    b: ModelBuilder,
    rng: Rng,
    int8: bool,
    /// The convolutions' requantization (`tflite` for float models: it is not used there).
    requantization: Requantization,
}

impl Writer {
    fn dtype(&self) -> DType {
        if self.int8 { DType::I8 } else { DType::F32 }
    }

    fn q(&self, q: QuantParams) -> Option<QuantParams> {
        self.int8.then_some(q)
    }

    /// Store a weight of `shape` with `fan_in` inputs per output; per-channel along `axis`.
    fn weight(&mut self, name: &str, shape: &[usize], fan_in: usize, axis: usize) -> String {
        let n: usize = shape.iter().product();
        let std = (2.0 / fan_in as f32).sqrt();
        if self.int8 {
            let v: Vec<i8> = (0..n)
                .map(|_| self.rng.range_i32(-127, 127) as i8)
                .collect();
            let scales: Vec<f32> = (0..shape[axis])
                .map(|_| std / 73.0 * (0.75 + 0.25 * self.rng.unit().abs()))
                .collect();
            self.b.quantized_weight(name, shape, &v, &scales, axis);
        } else {
            let v: Vec<f32> = (0..n).map(|_| self.rng.unit() * std * 1.7).collect();
            self.b.const_f32(name, shape, &v);
        }
        name.to_string()
    }

    fn bias(&mut self, name: &str, n: usize) -> String {
        if self.int8 {
            let v: Vec<i32> = (0..n).map(|_| self.rng.range_i32(-200, 200)).collect();
            self.b.const_i32(name, &[n], &v);
        } else {
            let v: Vec<f32> = (0..n).map(|_| self.rng.unit() * 0.01).collect();
            self.b.const_f32(name, &[n], &v);
        }
        name.to_string()
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        name: &str,
        x: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: u32,
        act: Activation,
    ) -> Result<String> {
        let w = self.weight(
            &format!("{name}.weight"),
            &[cout, k, k, cin],
            k * k * cin,
            0,
        );
        let b = self.bias(&format!("{name}.bias"), cout);
        let op = Op::Conv2d(ConvAttrs {
            stride: [stride; 2],
            dilation: [1, 1],
            padding: Padding::Same,
            groups: 1,
            activation: act,
            requantization: self.requantization,
        });
        let q = self.q(if act == Activation::Relu6 {
            RELU6_Q
        } else {
            LINEAR_Q
        });
        let dt = self.dtype();
        self.b.node_inferred(name, op, &[x, &w, &b], name, dt, q)?;
        Ok(name.to_string())
    }

    fn depthwise(&mut self, name: &str, x: &str, c: usize, stride: u32) -> Result<String> {
        let w = self.weight(&format!("{name}.weight"), &[1, 3, 3, c], 9, 3);
        let b = self.bias(&format!("{name}.bias"), c);
        let op = Op::DepthwiseConv2d(DepthwiseAttrs {
            stride: [stride; 2],
            dilation: [1, 1],
            padding: Padding::Same,
            depth_multiplier: 1,
            activation: Activation::Relu6,
            rounding: Default::default(),
            requantization: self.requantization,
        });
        let (dt, q) = (self.dtype(), self.q(RELU6_Q));
        self.b.node_inferred(name, op, &[x, &w, &b], name, dt, q)?;
        Ok(name.to_string())
    }
}

/// Build MobileNetV2 with deterministic synthetic weights.
pub fn synth_mobilenet_v2(cfg: &MobileNetV2) -> Result<ModelBuilder> {
    let mut w = Writer {
        b: ModelBuilder::new(),
        rng: Rng::new(0x5EED_0F0F),
        int8: cfg.int8,
        requantization: if cfg.int8 {
            cfg.requantization
        } else {
            Requantization::Tflite
        },
    };
    let input_q = QuantParams {
        scale: 2.0 / 255.0,
        zero_point: 0,
    };
    let dt = w.dtype();
    let inq = w.q(input_q);
    w.b.input("image", &[1, cfg.size, cfg.size, 3], dt, inq);

    let mut c = make_divisible(32.0 * cfg.width, 8);
    let mut x = w.conv("conv0", "image", 3, c, 3, 2, Activation::Relu6)?;
    let mut block = 0;
    for (t, ch, n, s) in BLOCKS {
        let out_c = make_divisible(ch as f32 * cfg.width, 8);
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let name = format!("block{block}");
            let hidden = c * t;
            let mut h = x.clone();
            if t != 1 {
                h = w.conv(
                    &format!("{name}.expand"),
                    &h,
                    c,
                    hidden,
                    1,
                    1,
                    Activation::Relu6,
                )?;
            }
            h = w.depthwise(&format!("{name}.dw"), &h, hidden, stride)?;
            h = w.conv(
                &format!("{name}.project"),
                &h,
                hidden,
                out_c,
                1,
                1,
                Activation::None,
            )?;
            if stride == 1 && c == out_c {
                let add = format!("{name}.add");
                let q = w.q(LINEAR_Q);
                // As Outpost's quantizer would choose for these scales (all equal).
                let arithmetic = if dt == DType::I8 {
                    AddArithmetic::Int16
                } else {
                    AddArithmetic::Tflite
                };
                let op = Op::Add(AddAttrs {
                    activation: Activation::None,
                    arithmetic,
                });
                w.b.node_inferred(&add, op, &[&x, &h], &add, dt, q)?;
                h = add;
            }
            x = h;
            c = out_c;
            block += 1;
        }
    }
    let last = if cfg.width > 1.0 {
        make_divisible(1280.0 * cfg.width, 8)
    } else {
        1280
    };
    x = w.conv("conv_last", &x, c, last, 1, 1, Activation::Relu6)?;
    let q = w.q(RELU6_Q);
    w.b.node_inferred(
        "pool",
        Op::Mean(MeanAttrs {
            axes: vec![1, 2],
            keep_dims: false,
        }),
        &[&x],
        "pool",
        dt,
        q,
    )?;
    let fw = w.weight("fc.weight", &[cfg.classes, last], last, 0);
    let fb = w.bias("fc.bias", cfg.classes);
    let q = w.q(QuantParams {
        scale: 0.2,
        zero_point: 0,
    });
    w.b.node_inferred(
        "fc",
        Op::FullyConnected(ActAttrs::default()),
        &["pool", &fw, &fb],
        "logits",
        dt,
        q,
    )?;
    w.b.output("logits");

    w.b.input_spec(InputSpec {
        tensor: "image".into(),
        layout: Layout::Nhwc,
        color: ColorOrder::Rgb,
        resize: ResizeKind::Stretch,
        mean: vec![127.5; 3],
        std: vec![127.5; 3],
    });
    w.b.output_spec(OutputSpec {
        tensors: vec!["logits".into()],
        decoder: Decoder::Classification {
            top_k: 5,
            activation: ScoreActivation::Softmax,
        },
    });
    let kind = if cfg.int8 { "int8" } else { "f32" };
    w.b.name_version(
        &format!("mobilenet_v2-{}-{}-{kind}", cfg.width, cfg.size),
        "synthetic-1",
    );
    w.b.provenance(Provenance {
        source: Some(format!(
            "synthetic MobileNetV2 (width {}, {}x{}, {kind})",
            cfg.width, cfg.size, cfg.size
        )),
        converter: Some(format!("outpost-models {}", env!("CARGO_PKG_VERSION"))),
        notes: Some(
            "random weights with the real architecture; for speed work, not for accuracy".into(),
        ),
        ..Default::default()
    });
    Ok(w.b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;
    use crate::summary::ModelSummary;

    #[test]
    fn standard_model_has_the_published_size() {
        let b = synth_mobilenet_v2(&MobileNetV2::default()).expect("synth");
        let model = Model::from_bytes(b.build().expect("build")).expect("valid");
        let s = ModelSummary::of(&model);
        // The paper: 300 M multiply-adds, 3.4 M parameters.
        assert!(
            (295_000_000..315_000_000).contains(&s.totals.macs),
            "macs {}",
            s.totals.macs
        );
        let params: usize = model
            .tensors()
            .filter(|t| t.dtype() == DType::I8)
            .map(|t| t.len())
            .sum();
        assert!((3_400_000..3_600_000).contains(&params), "params {params}");
        assert_eq!(s.outputs[0].shape, vec![1, 1000]);
    }

    #[test]
    fn make_divisible_matches_reference() {
        assert_eq!(make_divisible(32.0 * 0.35, 8), 16);
        assert_eq!(make_divisible(16.0 * 0.5, 8), 8);
        assert_eq!(make_divisible(24.0 * 0.75, 8), 24);
        assert_eq!(make_divisible(32.0 * 1.4, 8), 48);
    }
}
