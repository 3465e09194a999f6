//! Classification: the top-k classes after an activation, best first.
//!
//! Softmax is computed stably as `exp(x − max) / Σ exp(x − max)` in two passes over the logits,
//! so no per-class scratch is needed; selection keeps a sorted list of at most `k` entries.

use super::{DecodeError, MAX_TOPK, TopK, expect_count, shape_error};
use crate::spec::ScoreActivation;

const KIND: &str = "classification";

#[derive(Debug)]
pub(super) struct Classify {
    k: usize,
    activation: ScoreActivation,
}

impl Classify {
    /// One tensor of any shape holding the class logits (e.g. `[1, C]`).
    pub(super) fn new(
        top_k: u32,
        activation: ScoreActivation,
        shapes: &[&[usize]],
    ) -> Result<Self, DecodeError> {
        if top_k as usize > MAX_TOPK {
            return Err(DecodeError::TopKTooLarge {
                got: top_k,
                max: MAX_TOPK,
            });
        }
        expect_count(KIND, shapes, 1)?;
        let classes: usize = shapes[0].iter().product();
        if classes == 0 {
            return Err(shape_error(KIND, 0, shapes[0], "scores [1, classes ≥ 1]"));
        }
        Ok(Self {
            k: (top_k as usize).min(classes),
            activation,
        })
    }

    /// Fills `out` (already cleared) with the best `k` `(class, score)` pairs. NaN scores are
    /// skipped; ties go to the lower class index.
    pub(super) fn decode(&self, logits: &[f32], out: &mut TopK) {
        let (max, sum) = match self.activation {
            ScoreActivation::Softmax => {
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                (max, logits.iter().map(|&x| (x - max).exp()).sum::<f32>())
            }
            _ => (0.0, 1.0),
        };
        for (class, &x) in logits.iter().enumerate() {
            let score = match self.activation {
                ScoreActivation::None => x,
                ScoreActivation::Softmax => (x - max).exp() / sum,
                ScoreActivation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            };
            if score.is_nan() {
                continue;
            }
            if out.len() == self.k {
                match out.last() {
                    Some(&(_, worst)) if score > worst => {
                        out.pop();
                    }
                    _ => continue,
                }
            }
            // After every entry with a score ≥ this one: earlier classes win ties.
            let pos = out
                .iter()
                .position(|&(_, s)| s < score)
                .unwrap_or(out.len());
            let inserted = out.insert(pos, (class as u32, score));
            debug_assert!(inserted.is_ok(), "k ≤ MAX_TOPK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DecodeError, Decoded, OutputDecoder};
    use crate::spec::{Decoder, ScoreActivation};

    fn run(top_k: u32, activation: ScoreActivation, logits: &[f32]) -> Vec<(u32, f32)> {
        let spec = Decoder::Classification { top_k, activation };
        let shape = [1, logits.len()];
        let mut d = OutputDecoder::new(&spec, &[&shape]).unwrap();
        let mut out = Decoded::default();
        d.decode(&[logits], &mut out).unwrap();
        out.top_k().to_vec()
    }

    #[test]
    fn top_k_is_descending_with_ties_to_the_lower_class() {
        let top = run(3, ScoreActivation::None, &[0.1, 0.7, 0.3, 0.7, -1.0, 0.5]);
        assert_eq!(top, vec![(1, 0.7), (3, 0.7), (5, 0.5)]);
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let logits = [1.0f32, 3.0, 2.0, 0.0];
        let top = run(4, ScoreActivation::Softmax, &logits);
        let classes: Vec<u32> = top.iter().map(|p| p.0).collect();
        assert_eq!(classes, vec![1, 2, 0, 3]);
        let sum: f32 = top.iter().map(|p| p.1).sum();
        assert!((sum - 1.0).abs() < 1e-6, "{sum}");
        let denom: f32 = logits.iter().map(|x| x.exp()).sum();
        assert!((top[0].1 - 3.0f32.exp() / denom).abs() < 1e-6);
        // Large logits do not overflow.
        let top = run(1, ScoreActivation::Softmax, &[1000.0, 999.0]);
        assert_eq!(top[0].0, 0);
        assert!((top[0].1 - 1.0 / (1.0 + (-1.0f32).exp())).abs() < 1e-6);
    }

    #[test]
    fn sigmoid_scores_each_class() {
        let top = run(2, ScoreActivation::Sigmoid, &[0.0, 2.0, -2.0]);
        assert_eq!(top[0].0, 1);
        assert!((top[0].1 - 0.880_797).abs() < 1e-5);
        assert_eq!(top[1], (0, 0.5));
    }

    #[test]
    fn k_is_limited_by_classes_and_nan_is_skipped() {
        assert_eq!(
            run(5, ScoreActivation::None, &[0.2, 0.4]),
            vec![(1, 0.4), (0, 0.2)]
        );
        assert_eq!(
            run(2, ScoreActivation::None, &[f32::NAN, 0.4, 0.1]),
            vec![(1, 0.4), (2, 0.1)]
        );
    }

    #[test]
    fn top_k_beyond_capacity_and_empty_tensors_are_refused() {
        let spec = Decoder::Classification {
            top_k: 17,
            activation: ScoreActivation::None,
        };
        let err = OutputDecoder::new(&spec, &[&[1, 100]]).unwrap_err();
        assert_eq!(err, DecodeError::TopKTooLarge { got: 17, max: 16 });
        let spec = Decoder::Classification {
            top_k: 1,
            activation: ScoreActivation::None,
        };
        let err = OutputDecoder::new(&spec, &[&[1, 0]]).unwrap_err();
        assert!(err.to_string().contains("classes"), "{err}");
        let err = OutputDecoder::new(&spec, &[&[1, 3], &[1, 3]]).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::TensorCount {
                expected: 1,
                got: 2,
                ..
            }
        ));
    }
}
