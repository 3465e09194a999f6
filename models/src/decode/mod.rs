//! Output decoders: from a model's f32 output tensors to detections or class scores.
//!
//! An [`OutputDecoder`] is built once from an output spec's [`Decoder`] and the shapes of the
//! tensors it reads. The constructor validates the shapes against the spec and allocates all the
//! scratch it will ever need (anchors, candidate and index buffers sized from the tensor sizes);
//! [`OutputDecoder::decode`] then performs **no heap allocation**: results go into the
//! fixed-capacity [`Decoded`] the caller owns and reuses.
//!
//! # SSD (BlazeFace)
//!
//! Anchors follow MediaPipe's `SsdAnchorsCalculator` with a fixed anchor size of 1 (see
//! [`ssd_anchors`]): consecutive layers with the same stride form one feature map of
//! `ceil(h / stride) × ceil(w / stride)` cells whose anchors-per-cell is the layers' sum; cells go
//! row by row, each cell's anchors share its centre `((x + 0.5) / fw, (y + 0.5) / fh)`.
//! With `s = box_scale` and anchor `(ax, ay)`, a regressor row `r` decodes to
//!
//! ```text
//! cx = r0/s + ax   cy = r1/s + ay   w = r2/s   h = r3/s
//! box = (cx − w/2, cy − h/2, cx + w/2, cy + h/2)      keypoint k = (r[4+2k]/s + ax, r[5+2k]/s + ay)
//! score = σ(clamp(raw, −score_clip, +score_clip))     kept when score ≥ score_threshold
//! ```
//!
//! Boxes with a negative or NaN width/height are dropped (as MediaPipe does). With several
//! classes the best class's score and index are used. Coordinates are relative to the model
//! input (0..1, but not clamped: a box may reach slightly outside).
//!
//! # Non-maximum suppression
//!
//! Candidates are sorted by descending score. `weighted` (MediaPipe `WEIGHTED`): take the best
//! remaining candidate; its cluster is every remaining candidate (itself always included) whose
//! IoU with it exceeds `iou_threshold`; emit the score-weighted mean of the cluster's boxes and
//! keypoints with the best's score; remove the cluster; repeat. `hard`: keep the best, drop the
//! remaining candidates whose IoU with it exceeds the threshold, repeat. Both emit in descending
//! score order; past [`MAX_DETECTIONS`] the lowest-scored results are dropped and counted in
//! [`Decoded::dropped`].
//!
//! # CenterNet (CenterFace)
//!
//! Follows `deface==1.5.0`'s `centerface.py` with NHWC tensors heatmap `[1,h,w,1]`, scale
//! `[1,h,w,2]`, offset `[1,h,w,2]` and landmarks `[1,h,w,2K]`. With stride `t`, `W = w·t`,
//! `H = h·t`, for every cell `(y, x)` whose heat exceeds `score_threshold` (strictly):
//!
//! ```text
//! s0 = exp(scale0)·t (height)   s1 = exp(scale1)·t (width)
//! x1 = min(max(0, (x + offset1 + 0.5)·t − s1/2), W)   y1 = min(max(0, (y + offset0 + 0.5)·t − s0/2), H)
//! box = (x1, y1, min(x1 + s1, W), min(y1 + s0, H))    score = heat
//! landmark j = (lm[2j+1]·s1 + x1, lm[2j]·s0 + y1)
//! ```
//!
//! then hard NMS that suppresses at IoU **≥** `iou_threshold` (deface's test). Results are
//! normalised by `W`, `H` and, like deface, listed in heatmap (row-major) order.
//!
//! # Classification
//!
//! The `top_k` best classes, by descending score after the activation (`none`, `softmax` computed
//! as `exp(x − max) / Σ exp(x − max)`, or `sigmoid`); ties go to the lower class index.

mod anchors;
mod centernet;
mod classify;
mod nms;
mod ssd;

pub use anchors::{ssd_anchor_count, ssd_anchors};

use crate::spec::Decoder;
use thiserror::Error;

/// Most detections one decode reports.
pub const MAX_DETECTIONS: usize = 100;
/// Most keypoints one detection carries.
pub const MAX_KEYPOINTS: usize = 8;
/// Most classes a classification decode reports.
pub const MAX_TOPK: usize = 16;

/// One detected object.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Detection {
    /// `x1, y1, x2, y2`, normalised to the model input (0..1).
    pub bbox: [f32; 4],
    /// Confidence, 0..1.
    pub score: f32,
    /// Class index (0 for single-class detectors).
    pub label: u32,
    /// `x, y` of each keypoint, normalised like `bbox`; only the first `num_keypoints` are set.
    pub keypoints: [[f32; 2]; MAX_KEYPOINTS],
    /// How many entries of `keypoints` are valid.
    pub num_keypoints: u8,
}

impl Detection {
    /// The valid keypoints.
    pub fn keypoints(&self) -> &[[f32; 2]] {
        &self.keypoints[..usize::from(self.num_keypoints)]
    }
}

/// Detections of one decode, in the decoder's order.
pub type Detections = heapless::Vec<Detection, MAX_DETECTIONS>;
/// `(class, score)` pairs, best first.
pub type TopK = heapless::Vec<(u32, f32), MAX_TOPK>;

/// The result of one decode. Reuse one value across calls: decoding into a value of the right
/// variant only clears and refills it.
#[derive(Debug, Clone, PartialEq, Default)]
#[expect(
    clippy::large_enum_variant,
    reason = "inline on purpose: boxing the detections would allocate; the value is reused"
)]
pub enum Decoded {
    /// A `raw` decoder: the caller reads the tensors themselves.
    #[default]
    Raw,
    /// Detections (SSD, CenterNet).
    Detections {
        /// What was found.
        detections: Detections,
        /// Results dropped because `detections` was full (the lowest-scored ones).
        dropped: usize,
    },
    /// Classification.
    TopK(TopK),
}

impl Decoded {
    /// The detections (empty unless a detection decoder produced this value).
    pub fn detections(&self) -> &[Detection] {
        match self {
            Decoded::Detections { detections, .. } => detections,
            _ => &[],
        }
    }

    /// The top-k `(class, score)` pairs (empty unless a classification decoder produced this).
    pub fn top_k(&self) -> &[(u32, f32)] {
        match self {
            Decoded::TopK(top) => top,
            _ => &[],
        }
    }

    /// Detections dropped for lack of capacity.
    pub fn dropped(&self) -> usize {
        match self {
            Decoded::Detections { dropped, .. } => *dropped,
            _ => 0,
        }
    }

    /// Clears `self` into an empty detection list, switching variant if needed (no allocation).
    fn detections_mut(&mut self) -> (&mut Detections, &mut usize) {
        if !matches!(self, Decoded::Detections { .. }) {
            *self = Decoded::Detections {
                detections: Detections::new(),
                dropped: 0,
            };
        }
        match self {
            Decoded::Detections {
                detections,
                dropped,
            } => {
                detections.clear();
                *dropped = 0;
                (detections, dropped)
            }
            _ => unreachable!("variant was set above"),
        }
    }

    /// Clears `self` into an empty top-k list, switching variant if needed (no allocation).
    fn top_k_mut(&mut self) -> &mut TopK {
        if !matches!(self, Decoded::TopK(_)) {
            *self = Decoded::TopK(TopK::new());
        }
        match self {
            Decoded::TopK(top) => {
                top.clear();
                top
            }
            _ => unreachable!("variant was set above"),
        }
    }
}

/// Why a decoder cannot be built or a decode cannot run.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The spec's parameters are out of range.
    #[error("invalid decoder spec: {0}")]
    InvalidSpec(String),
    /// Wrong number of output tensors.
    #[error("{kind} decoder reads {expected} output tensor(s), got {got}")]
    TensorCount {
        /// Decoder kind.
        kind: &'static str,
        /// Tensors it reads.
        expected: usize,
        /// Tensors given.
        got: usize,
    },
    /// A tensor's shape does not fit the decoder.
    #[error("{kind} decoder: output tensor {index} has shape {shape:?}, expected {expected}")]
    TensorShape {
        /// Decoder kind.
        kind: &'static str,
        /// Position of the tensor among the decoder's tensors.
        index: usize,
        /// Its shape.
        shape: Vec<usize>,
        /// What was expected, in words.
        expected: String,
    },
    /// The SSD anchors the spec describes do not match the tensors' rows.
    #[error(
        "ssd decoder: the spec's strides/anchors_per_cell/input_size give {anchors} anchors, \
         but output tensor {index} has {rows} rows"
    )]
    AnchorCount {
        /// Anchors from the spec.
        anchors: usize,
        /// Position of the tensor.
        index: usize,
        /// Rows in the tensor.
        rows: usize,
    },
    /// More keypoints than a [`Detection`] holds.
    #[error("num_keypoints {got} exceeds the maximum of {max}")]
    TooManyKeypoints {
        /// From the spec.
        got: u32,
        /// [`MAX_KEYPOINTS`].
        max: usize,
    },
    /// `top_k` larger than a [`TopK`] holds.
    #[error("top_k {got} exceeds the maximum of {max}")]
    TopKTooLarge {
        /// From the spec.
        got: u32,
        /// [`MAX_TOPK`].
        max: usize,
    },
    /// At decode time, a tensor's length differs from the shape the decoder was built for.
    #[error("output tensor {index} has {got} values, the decoder was built for {expected}")]
    TensorLength {
        /// Position of the tensor.
        index: usize,
        /// Values expected.
        expected: usize,
        /// Values given.
        got: usize,
    },
}

/// A shape with a leading batch dimension of 1 removed so that `rank` dimensions remain.
pub(crate) fn unbatch(shape: &[usize], rank: usize) -> Option<&[usize]> {
    match shape.len() {
        n if n == rank => Some(shape),
        n if n == rank + 1 && shape[0] == 1 => Some(&shape[1..]),
        _ => None,
    }
}

/// Checks the number of tensors.
pub(crate) fn expect_count(
    kind: &'static str,
    shapes: &[&[usize]],
    expected: usize,
) -> Result<(), DecodeError> {
    if shapes.len() == expected {
        Ok(())
    } else {
        Err(DecodeError::TensorCount {
            kind,
            expected,
            got: shapes.len(),
        })
    }
}

/// A shape error for tensor `index`.
pub(crate) fn shape_error(
    kind: &'static str,
    index: usize,
    shape: &[usize],
    expected: impl Into<String>,
) -> DecodeError {
    DecodeError::TensorShape {
        kind,
        index,
        shape: shape.to_vec(),
        expected: expected.into(),
    }
}

#[derive(Debug)]
enum Kind {
    Ssd(ssd::Ssd),
    Centernet(centernet::CenterNet),
    Classify(classify::Classify),
    Raw,
}

/// Decodes one output spec's tensors. Build once, then call [`decode`](Self::decode) per frame.
#[derive(Debug)]
pub struct OutputDecoder {
    kind: Kind,
    /// Element count of each tensor it was built for.
    lens: Box<[usize]>,
}

impl OutputDecoder {
    /// Validates `decoder` and the shapes of its tensors (in the spec's order) and allocates
    /// all scratch.
    pub fn new(decoder: &Decoder, tensor_shapes: &[&[usize]]) -> Result<Self, DecodeError> {
        decoder.check().map_err(DecodeError::InvalidSpec)?;
        let kind = match decoder {
            Decoder::Ssd { .. } => Kind::Ssd(ssd::Ssd::new(decoder, tensor_shapes)?),
            Decoder::Centernet { .. } => {
                Kind::Centernet(centernet::CenterNet::new(decoder, tensor_shapes)?)
            }
            Decoder::Classification { top_k, activation } => {
                Kind::Classify(classify::Classify::new(*top_k, *activation, tensor_shapes)?)
            }
            // The per-run output is the raw probability; the window lives with the caller.
            Decoder::Raw | Decoder::Wakeword { .. } => Kind::Raw,
        };
        let lens = tensor_shapes
            .iter()
            .map(|s| s.iter().product::<usize>())
            .collect();
        Ok(Self { kind, lens })
    }

    /// The decoder's kind name (`ssd`, `centernet`, `classification`, `raw`).
    pub fn kind(&self) -> &'static str {
        match self.kind {
            Kind::Ssd(_) => "ssd",
            Kind::Centernet(_) => "centernet",
            Kind::Classify(_) => "classification",
            Kind::Raw => "raw",
        }
    }

    /// How many tensors [`decode`](Self::decode) takes.
    pub fn num_tensors(&self) -> usize {
        self.lens.len()
    }

    /// An empty output of the variant this decoder produces.
    pub fn new_output(&self) -> Decoded {
        match self.kind {
            Kind::Ssd(_) | Kind::Centernet(_) => Decoded::Detections {
                detections: Detections::new(),
                dropped: 0,
            },
            Kind::Classify(_) => Decoded::TopK(TopK::new()),
            Kind::Raw => Decoded::Raw,
        }
    }

    /// Decodes `tensors` (same order and sizes as at construction) into `out`, replacing what
    /// it held. Allocates nothing.
    pub fn decode(&mut self, tensors: &[&[f32]], out: &mut Decoded) -> Result<(), DecodeError> {
        if tensors.len() != self.lens.len() {
            return Err(DecodeError::TensorCount {
                kind: self.kind(),
                expected: self.lens.len(),
                got: tensors.len(),
            });
        }
        for (index, (t, &expected)) in tensors.iter().zip(self.lens.iter()).enumerate() {
            if t.len() != expected {
                return Err(DecodeError::TensorLength {
                    index,
                    expected,
                    got: t.len(),
                });
            }
        }
        match &mut self.kind {
            Kind::Ssd(d) => {
                let (dets, dropped) = out.detections_mut();
                *dropped = d.decode(tensors[0], tensors[1], dets);
            }
            Kind::Centernet(d) => {
                let (dets, dropped) = out.detections_mut();
                *dropped = d.decode(tensors, dets);
            }
            Kind::Classify(d) => d.decode(tensors[0], out.top_k_mut()),
            Kind::Raw => *out = Decoded::Raw,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{NmsKind, ScoreActivation};

    #[test]
    fn decode_checks_tensor_count_and_length() {
        let spec = Decoder::Classification {
            top_k: 2,
            activation: ScoreActivation::None,
        };
        let mut d = OutputDecoder::new(&spec, &[&[1, 4]]).unwrap();
        let mut out = d.new_output();
        assert!(matches!(
            d.decode(&[], &mut out),
            Err(DecodeError::TensorCount {
                expected: 1,
                got: 0,
                ..
            })
        ));
        let err = d.decode(&[&[0.0; 3]], &mut out).unwrap_err();
        assert_eq!(
            err,
            DecodeError::TensorLength {
                index: 0,
                expected: 4,
                got: 3
            }
        );
        assert!(err.to_string().contains("built for 4"));
        d.decode(&[&[0.1, 0.4, 0.3, 0.2]], &mut out).unwrap();
        assert_eq!(out.top_k(), &[(1, 0.4), (2, 0.3)]);
    }

    #[test]
    fn invalid_spec_is_refused() {
        let spec = Decoder::Classification {
            top_k: 0,
            activation: ScoreActivation::None,
        };
        let err = OutputDecoder::new(&spec, &[&[1, 4]]).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidSpec(_)));
        assert!(err.to_string().contains("top_k"));
    }

    #[test]
    fn output_switches_variant() {
        let mut out = Decoded::TopK(TopK::new());
        let spec = Decoder::Raw;
        let mut d = OutputDecoder::new(&spec, &[&[2]]).unwrap();
        d.decode(&[&[1.0, 2.0]], &mut out).unwrap();
        assert_eq!(out, Decoded::Raw);
        assert_eq!(d.kind(), "raw");
        assert_eq!(d.num_tensors(), 1);
        let spec = Decoder::Ssd {
            strides: vec![8],
            anchors_per_cell: vec![1],
            input_size: [16, 16],
            box_scale: 16.0,
            num_keypoints: 0,
            score_threshold: 0.5,
            iou_threshold: 0.3,
            nms: NmsKind::Hard,
            score_clip: 100.0,
        };
        let mut d = OutputDecoder::new(&spec, &[&[1, 4, 4], &[1, 4, 1]]).unwrap();
        d.decode(&[&[0.0; 16], &[-5.0; 4]], &mut out).unwrap();
        assert!(matches!(out, Decoded::Detections { .. }));
        assert!(out.detections().is_empty());
        assert_eq!(out.dropped(), 0);
        assert!(out.top_k().is_empty());
    }
}
