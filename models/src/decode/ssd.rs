//! SSD decoding (BlazeFace): anchors + box regression + sigmoid scores + NMS. The math is in the
//! [module docs](super).

use super::anchors::{ssd_anchor_count, ssd_anchors};
use super::nms::{self, Candidate, Overlap, Ties};
use super::{DecodeError, Detection, Detections, MAX_KEYPOINTS, shape_error, unbatch};
use crate::spec::{Decoder, NmsKind};

const KIND: &str = "ssd";

/// Everything but the scratch, so the scratch can be borrowed mutably beside it.
#[derive(Debug)]
struct Params {
    anchors: Box<[[f32; 2]]>,
    /// Values per regressor row.
    coords: usize,
    /// Classes per score row.
    classes: usize,
    box_scale: f32,
    num_keypoints: usize,
    score_threshold: f32,
    iou_threshold: f32,
    nms: NmsKind,
    score_clip: f32,
}

#[derive(Debug)]
pub(super) struct Ssd {
    p: Params,
    /// Candidates of one decode (capacity: one per anchor).
    cands: Box<[Candidate]>,
    /// Index scratch for sorting and NMS.
    order: Box<[u32]>,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Ssd {
    /// Tensors: regressors `[1, N, D]` with `D ≥ 4 + 2K`, scores `[1, N, C]` (or `[1, N]`);
    /// the batch dimension may be left out.
    pub(super) fn new(decoder: &Decoder, shapes: &[&[usize]]) -> Result<Self, DecodeError> {
        let Decoder::Ssd {
            strides,
            anchors_per_cell,
            input_size,
            box_scale,
            num_keypoints,
            score_threshold,
            iou_threshold,
            nms,
            score_clip,
        } = decoder
        else {
            unreachable!("called for ssd specs only");
        };
        let k = *num_keypoints as usize;
        if k > MAX_KEYPOINTS {
            return Err(DecodeError::TooManyKeypoints {
                got: *num_keypoints,
                max: MAX_KEYPOINTS,
            });
        }
        super::expect_count(KIND, shapes, 2)?;
        let n = ssd_anchor_count(strides, anchors_per_cell, *input_size);
        let min_coords = 4 + 2 * k;
        let (rows, coords) = match unbatch(shapes[0], 2) {
            Some(&[rows, coords]) if coords >= min_coords => (rows, coords),
            _ => {
                return Err(shape_error(
                    KIND,
                    0,
                    shapes[0],
                    format!(
                        "regressors [1, anchors, ≥{min_coords}] (4 box values + 2 per keypoint)"
                    ),
                ));
            }
        };
        if rows != n {
            return Err(DecodeError::AnchorCount {
                anchors: n,
                index: 0,
                rows,
            });
        }
        let (rows, classes) = match (unbatch(shapes[1], 2), unbatch(shapes[1], 1)) {
            (Some(&[rows, classes]), _) if classes >= 1 => (rows, classes),
            (_, Some(&[rows])) if shapes[1].len() == 2 => (rows, 1),
            _ => {
                return Err(shape_error(
                    KIND,
                    1,
                    shapes[1],
                    "scores [1, anchors, classes ≥ 1]",
                ));
            }
        };
        if rows != n {
            return Err(DecodeError::AnchorCount {
                anchors: n,
                index: 1,
                rows,
            });
        }
        let anchors = ssd_anchors(strides, anchors_per_cell, *input_size).into_boxed_slice();
        debug_assert_eq!(anchors.len(), n);
        Ok(Self {
            p: Params {
                anchors,
                coords,
                classes,
                box_scale: *box_scale,
                num_keypoints: k,
                score_threshold: *score_threshold,
                iou_threshold: *iou_threshold,
                nms: *nms,
                score_clip: *score_clip,
            },
            cands: vec![Candidate::default(); n].into_boxed_slice(),
            order: vec![0u32; n].into_boxed_slice(),
        })
    }

    /// Decodes into `out` (already cleared); returns how many results did not fit.
    pub(super) fn decode(
        &mut self,
        regressors: &[f32],
        scores: &[f32],
        out: &mut Detections,
    ) -> usize {
        let p = &self.p;
        let n = p.candidates(regressors, scores, &mut self.cands);
        let cands = &self.cands[..n];
        let order = &mut self.order[..n];
        for (o, i) in order.iter_mut().zip(0u32..) {
            *o = i;
        }
        nms::sort_by_score(order, cands, Ties::EarlierFirst);
        let keypoints = |src| p.keypoints(regressors, src);
        match p.nms {
            NmsKind::Weighted => nms::weighted(
                cands,
                order,
                p.iou_threshold,
                p.num_keypoints,
                keypoints,
                out,
            ),
            NmsKind::Hard => {
                let kept = nms::hard(cands, order, p.iou_threshold, Overlap::Above);
                let fit = kept.min(out.capacity());
                for &ci in &order[..fit] {
                    let c = cands[ci as usize];
                    let det = Detection {
                        bbox: c.bbox,
                        score: c.score,
                        label: c.label,
                        keypoints: keypoints(c.src),
                        num_keypoints: p.num_keypoints as u8,
                    };
                    let pushed = out.push(det);
                    debug_assert!(pushed.is_ok(), "at most capacity pushed");
                }
                kept - fit
            }
        }
    }
}

impl Params {
    /// Writes the anchors that pass the score threshold into `cands`; returns how many.
    fn candidates(&self, regressors: &[f32], scores: &[f32], cands: &mut [Candidate]) -> usize {
        let s = self.box_scale;
        let clip = self.score_clip;
        let mut n = 0;
        let rows = regressors.chunks_exact(self.coords);
        let score_rows = scores.chunks_exact(self.classes);
        for (i, ((r, raw), &[ax, ay])) in rows.zip(score_rows).zip(self.anchors.iter()).enumerate()
        {
            let (mut label, mut score) = (0u32, f32::NEG_INFINITY);
            for (c, &v) in raw.iter().enumerate() {
                let p = sigmoid(v.clamp(-clip, clip));
                if p > score {
                    (label, score) = (c as u32, p);
                }
            }
            // NaN raw scores never raise `score` above −∞, so they fail here too.
            if score.is_nan() || score < self.score_threshold {
                continue;
            }
            let (cx, cy) = (r[0] / s + ax, r[1] / s + ay);
            let (w, h) = (r[2] / s, r[3] / s);
            // MediaPipe drops negative or NaN sizes (zero is kept).
            if w.is_nan() || h.is_nan() || w < 0.0 || h < 0.0 {
                continue;
            }
            cands[n] = Candidate {
                bbox: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
                score,
                label,
                src: i as u32,
            };
            n += 1;
        }
        n
    }

    /// Keypoints of anchor `src`, in input-relative coordinates.
    fn keypoints(&self, regressors: &[f32], src: u32) -> [[f32; 2]; MAX_KEYPOINTS] {
        let i = src as usize;
        let [ax, ay] = self.anchors[i];
        let r = &regressors[i * self.coords..(i + 1) * self.coords];
        let s = self.box_scale;
        let mut kps = [[0.0; 2]; MAX_KEYPOINTS];
        for (j, p) in kps.iter_mut().enumerate().take(self.num_keypoints) {
            *p = [r[4 + 2 * j] / s + ax, r[5 + 2 * j] / s + ay];
        }
        kps
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DecodeError, Decoded, OutputDecoder};
    use crate::spec::{Decoder, NmsKind, OutputSpec};

    /// Stride 8 on a 16 × 16 input: 2 × 2 cells, one anchor each, at 0.25 / 0.75.
    fn tiny(nms: NmsKind, score_threshold: f32, score_clip: f32) -> Decoder {
        Decoder::Ssd {
            strides: vec![8],
            anchors_per_cell: vec![1],
            input_size: [16, 16],
            box_scale: 16.0,
            num_keypoints: 1,
            score_threshold,
            iou_threshold: 0.3,
            nms,
            score_clip,
        }
    }

    /// Anchor 0 (0.25, 0.25): box [0, 0, .5, .5], keypoint (.3125, .375), score 0.75.
    /// Anchor 1 (0.75, 0.25): box [.05, 0, .55, .5] (IoU .818 with the first), keypoint
    /// (.75, .25), score 0.25. Anchors 2 and 3 score ~0.
    fn two_overlapping() -> ([f32; 24], [f32; 4]) {
        let mut reg = [0.0f32; 24];
        reg[..6].copy_from_slice(&[0.0, 0.0, 8.0, 8.0, 1.0, 2.0]);
        reg[6..12].copy_from_slice(&[-7.2, 0.0, 8.0, 8.0, 0.0, 0.0]);
        let scores = [3.0f32.ln(), -(3.0f32.ln()), -10.0, -10.0];
        (reg, scores)
    }

    fn decode(spec: &Decoder, reg: &[f32], scores: &[f32]) -> Decoded {
        let n = scores.len();
        let coords = reg.len() / n;
        let mut d = OutputDecoder::new(spec, &[&[1, n, coords], &[1, n, 1]]).unwrap();
        let mut out = d.new_output();
        d.decode(&[reg, scores], &mut out).unwrap();
        out
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn weighted_nms_merges_overlapping_candidates() {
        let (reg, scores) = two_overlapping();
        let out = decode(&tiny(NmsKind::Weighted, 0.2, 100.0), &reg, &scores);
        let dets = out.detections();
        assert_eq!(dets.len(), 1);
        let d = dets[0];
        assert!((d.score - 0.75).abs() < 1e-6);
        assert_eq!(d.label, 0);
        // 0.75 · [0, 0, .5, .5] + 0.25 · [.05, 0, .55, .5]
        close(&d.bbox, &[0.0125, 0.0, 0.5125, 0.5]);
        assert_eq!(d.num_keypoints, 1);
        // 0.75 · (.3125, .375) + 0.25 · (.75, .25)
        close(&d.keypoints()[0], &[0.421_875, 0.343_75]);
        assert_eq!(out.dropped(), 0);
    }

    #[test]
    fn hard_nms_keeps_the_best() {
        let (reg, scores) = two_overlapping();
        let out = decode(&tiny(NmsKind::Hard, 0.2, 100.0), &reg, &scores);
        let dets = out.detections();
        assert_eq!(dets.len(), 1);
        close(&dets[0].bbox, &[0.0, 0.0, 0.5, 0.5]);
        close(&dets[0].keypoints()[0], &[0.3125, 0.375]);
        assert!((dets[0].score - 0.75).abs() < 1e-6);
    }

    #[test]
    fn distant_boxes_both_survive_in_score_order() {
        let (mut reg, mut scores) = two_overlapping();
        // Move anchor 1's box back onto its own anchor: [.5, 0, 1, .5], no overlap.
        reg[6] = 0.0;
        scores[1] = 1.0; // σ(1) ≈ 0.731 < 0.75
        for nms in [NmsKind::Weighted, NmsKind::Hard] {
            let out = decode(&tiny(nms, 0.2, 100.0), &reg, &scores);
            let dets = out.detections();
            assert_eq!(dets.len(), 2, "{nms:?}");
            close(&dets[0].bbox, &[0.0, 0.0, 0.5, 0.5]);
            close(&dets[1].bbox, &[0.5, 0.0, 1.0, 0.5]);
            assert!(dets[0].score > dets[1].score);
        }
    }

    #[test]
    fn score_threshold_is_inclusive() {
        let reg = [[0.0, 0.0, 4.0, 4.0, 0.0, 0.0]; 4].concat();
        let scores = [0.0, -10.0, -10.0, -10.0]; // σ(0) = 0.5 exactly
        let out = decode(&tiny(NmsKind::Hard, 0.5, 100.0), &reg, &scores);
        assert_eq!(out.detections().len(), 1);
        assert_eq!(out.detections()[0].score, 0.5);
        let out = decode(&tiny(NmsKind::Hard, 0.5f32.next_up(), 100.0), &reg, &scores);
        assert!(out.detections().is_empty());
    }

    #[test]
    fn raw_scores_are_clipped_before_the_sigmoid() {
        let reg = [[0.0, 0.0, 4.0, 4.0, 0.0, 0.0]; 4].concat();
        let scores = [1000.0, -1e30, f32::NAN, -1.0];
        let sig = |x: f32| 1.0 / (1.0 + (-x).exp());
        // Clip 2: the best scores σ(2) ≈ 0.88, under 0.9.
        let out = decode(&tiny(NmsKind::Hard, 0.9, 2.0), &reg, &scores);
        assert!(out.detections().is_empty());
        let out = decode(&tiny(NmsKind::Hard, 0.1, 2.0), &reg, &scores);
        let got: Vec<f32> = out.detections().iter().map(|d| d.score).collect();
        // 1000 → σ(2), −1e30 → σ(−2) ≈ 0.119, −1 → σ(−1); NaN never passes.
        assert_eq!(got, vec![sig(2.0), sig(-1.0), sig(-2.0)]);
    }

    #[test]
    fn negative_sizes_are_dropped() {
        let mut reg = [[0.0, 0.0, 4.0, 4.0, 0.0, 0.0]; 4].concat();
        reg[2] = -1.0;
        let out = decode(
            &tiny(NmsKind::Hard, 0.5, 100.0),
            &reg,
            &[5.0, -9.0, -9.0, -9.0],
        );
        assert!(out.detections().is_empty());
    }

    #[test]
    fn overflow_drops_the_lowest_scores_and_counts_them() {
        // Stride 1 on 12 × 12: 144 anchors, boxes half a cell wide so none overlap.
        for nms in [NmsKind::Weighted, NmsKind::Hard] {
            let spec = Decoder::Ssd {
                strides: vec![1],
                anchors_per_cell: vec![1],
                input_size: [12, 12],
                box_scale: 12.0,
                num_keypoints: 0,
                score_threshold: 0.01,
                iou_threshold: 0.3,
                nms,
                score_clip: 100.0,
            };
            let reg = [[0.0, 0.0, 0.5, 0.5]; 144].concat();
            let scores: Vec<f32> = (0..144).map(|i| i as f32 * 0.05 - 3.0).collect();
            let mut d = OutputDecoder::new(&spec, &[&[1, 144, 4], &[1, 144, 1]]).unwrap();
            let mut out = d.new_output();
            d.decode(&[&reg, &scores], &mut out).unwrap();
            assert_eq!(out.detections().len(), 100, "{nms:?}");
            assert_eq!(out.dropped(), 44, "{nms:?}");
            // The best first, and anchor 44 is the weakest survivor.
            let last = out.detections()[99];
            assert_eq!(last.score, 1.0 / (1.0 + (-(44.0f32 * 0.05 - 3.0)).exp()));
            let first = out.detections()[0];
            close(
                &first.bbox,
                &[
                    (11.5 - 0.25) / 12.0,
                    (11.5 - 0.25) / 12.0,
                    11.75 / 12.0,
                    11.75 / 12.0,
                ],
            );
            assert!(out.detections().windows(2).all(|w| w[0].score > w[1].score));
            // Decoding again reuses the output and resets the count.
            d.decode(&[&reg, &[-50.0; 144]], &mut out).unwrap();
            assert!(out.detections().is_empty());
            assert_eq!(out.dropped(), 0);
        }
    }

    #[test]
    fn blazeface_specs_accept_their_tensors() {
        let json = r#"{"tensors": ["regressors", "classificators"],
          "decoder": {"kind": "ssd", "strides": [8, 16, 16, 16], "anchors_per_cell": [2, 2, 2, 2],
                      "input_size": [128, 128], "box_scale": 128.0, "num_keypoints": 6,
                      "score_threshold": 0.5, "iou_threshold": 0.3, "nms": "weighted",
                      "score_clip": 100.0}}"#;
        let spec: OutputSpec = serde_json::from_str(json).unwrap();
        let d = OutputDecoder::new(&spec.decoder, &[&[1, 896, 16], &[1, 896, 1]]).unwrap();
        assert_eq!((d.kind(), d.num_tensors()), ("ssd", 2));
        // Batch dimension optional.
        OutputDecoder::new(&spec.decoder, &[&[896, 16], &[896, 1]]).unwrap();
        let full = Decoder::Ssd {
            strides: vec![4],
            anchors_per_cell: vec![1],
            input_size: [192, 192],
            box_scale: 192.0,
            num_keypoints: 6,
            score_threshold: 0.6,
            iou_threshold: 0.3,
            nms: NmsKind::Weighted,
            score_clip: 100.0,
        };
        OutputDecoder::new(&full, &[&[1, 2304, 16], &[1, 2304, 1]]).unwrap();

        let err = OutputDecoder::new(&full, &[&[1, 896, 16], &[1, 896, 1]]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::AnchorCount {
                anchors: 2304,
                index: 0,
                rows: 896
            }
        );
        assert!(err.to_string().contains("2304 anchors"), "{err}");
        let err = OutputDecoder::new(&full, &[&[1, 2304, 16], &[1, 2300, 1]]).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::AnchorCount {
                index: 1,
                rows: 2300,
                ..
            }
        ));
        let err = OutputDecoder::new(&full, &[&[1, 2304, 15], &[1, 2304, 1]]).unwrap_err();
        assert!(err.to_string().contains("≥16"), "{err}");
        let err = OutputDecoder::new(&full, &[&[1, 2304, 16]]).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::TensorCount {
                expected: 2,
                got: 1,
                ..
            }
        ));
        assert!(err.to_string().contains("ssd decoder reads 2"), "{err}");
        let err = OutputDecoder::new(&full, &[&[2, 2304, 16], &[1, 2304, 1]]).unwrap_err();
        assert!(matches!(err, DecodeError::TensorShape { index: 0, .. }));
        let mut many = full.clone();
        if let Decoder::Ssd { num_keypoints, .. } = &mut many {
            *num_keypoints = 9;
        }
        let err = OutputDecoder::new(&many, &[&[1, 2304, 22], &[1, 2304, 1]]).unwrap_err();
        assert_eq!(err, DecodeError::TooManyKeypoints { got: 9, max: 8 });
    }

    #[test]
    fn several_classes_report_the_best() {
        let spec = tiny(NmsKind::Hard, 0.5, 100.0);
        let reg = [[0.0, 0.0, 4.0, 4.0, 0.0, 0.0]; 4].concat();
        let scores = [
            -5.0, 2.0, 1.0, -9.0, -9.0, -9.0, -9.0, -9.0, -9.0, -9.0, -9.0, -9.0,
        ];
        let mut d = OutputDecoder::new(&spec, &[&[1, 4, 6], &[1, 4, 3]]).unwrap();
        let mut out = Decoded::default();
        d.decode(&[&reg, &scores], &mut out).unwrap();
        assert_eq!(out.detections().len(), 1);
        assert_eq!(out.detections()[0].label, 1);
    }
}
