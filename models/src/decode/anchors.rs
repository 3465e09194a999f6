//! SSD anchor centres, as MediaPipe's `SsdAnchorsCalculator` makes them with
//! `fixed_anchor_size: true` (every anchor is 1 × 1, so only the centre matters).
//!
//! Layers are walked in order; a run of consecutive layers with the same stride becomes one
//! feature map of `ceil(h / stride) × ceil(w / stride)` cells, with the run's anchors-per-cell
//! summed. Within a feature map anchors go row `y` by row, column `x` by column, then the
//! cell's anchors, all at `((x + 0.5) / fw, (y + 0.5) / fh)`.
//!
//! BlazeFace short range: strides `[8, 16, 16, 16]`, 2 anchors each, input 128 →
//! 16·16·2 + 8·8·6 = 896. Full range: stride `[4]`, 1 anchor, input 192 → 48·48 = 2304.

/// One merged feature map: `(rows, columns, anchors per cell)`.
fn feature_maps<'a>(
    strides: &'a [u32],
    anchors_per_cell: &'a [u32],
    input_size: [u32; 2],
) -> impl Iterator<Item = (usize, usize, usize)> + 'a {
    let mut layer = 0;
    std::iter::from_fn(move || {
        let stride = *strides.get(layer)?;
        let mut per_cell = 0usize;
        while layer < strides.len() && strides[layer] == stride {
            per_cell += anchors_per_cell.get(layer).copied().unwrap_or(0) as usize;
            layer += 1;
        }
        let stride = stride.max(1);
        Some((
            input_size[0].div_ceil(stride) as usize,
            input_size[1].div_ceil(stride) as usize,
            per_cell,
        ))
    })
}

/// How many anchors [`ssd_anchors`] makes (`input_size` is `[h, w]`).
pub fn ssd_anchor_count(strides: &[u32], anchors_per_cell: &[u32], input_size: [u32; 2]) -> usize {
    feature_maps(strides, anchors_per_cell, input_size)
        .map(|(fh, fw, n)| fh * fw * n)
        .sum()
}

/// Anchor centres `(x, y)` in 0..1, in the order the model's output rows use
/// (`input_size` is `[h, w]`; `strides` and `anchors_per_cell` have one entry per layer).
pub fn ssd_anchors(
    strides: &[u32],
    anchors_per_cell: &[u32],
    input_size: [u32; 2],
) -> Vec<[f32; 2]> {
    let mut anchors = Vec::with_capacity(ssd_anchor_count(strides, anchors_per_cell, input_size));
    for (fh, fw, per_cell) in feature_maps(strides, anchors_per_cell, input_size) {
        for y in 0..fh {
            let cy = (y as f32 + 0.5) / fh as f32;
            for x in 0..fw {
                let cx = (x as f32 + 0.5) / fw as f32;
                anchors.extend(std::iter::repeat_n([cx, cy], per_cell));
            }
        }
    }
    anchors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_range_has_896_anchors() {
        let (s, a) = ([8, 16, 16, 16], [2, 2, 2, 2]);
        let anchors = ssd_anchors(&s, &a, [128, 128]);
        assert_eq!(anchors.len(), 896);
        assert_eq!(ssd_anchor_count(&s, &a, [128, 128]), 896);
        // First map: 16 × 16 cells, 2 anchors each.
        assert_eq!(anchors[0], [0.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(anchors[1], anchors[0]);
        assert_eq!(anchors[2], [1.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(anchors[32], [0.5 / 16.0, 1.5 / 16.0]);
        assert_eq!(anchors[511], [15.5 / 16.0, 15.5 / 16.0]);
        // Second map: 8 × 8 cells, 6 anchors each.
        assert_eq!(anchors[512], [0.5 / 8.0, 0.5 / 8.0]);
        assert_eq!(anchors[517], [0.5 / 8.0, 0.5 / 8.0]);
        assert_eq!(anchors[518], [1.5 / 8.0, 0.5 / 8.0]);
        assert_eq!(anchors[895], [7.5 / 8.0, 7.5 / 8.0]);
    }

    #[test]
    fn full_range_has_2304_anchors() {
        let anchors = ssd_anchors(&[4], &[1], [192, 192]);
        assert_eq!(anchors.len(), 2304);
        assert_eq!(anchors[0], [0.5 / 48.0, 0.5 / 48.0]);
        assert_eq!(anchors[1], [1.5 / 48.0, 0.5 / 48.0]);
        assert_eq!(anchors[48], [0.5 / 48.0, 1.5 / 48.0]);
        assert_eq!(anchors[2303], [47.5 / 48.0, 47.5 / 48.0]);
    }

    #[test]
    fn non_divisible_and_non_square_inputs_round_up() {
        // h = 20, w = 36, stride 8 → 3 × 5 cells.
        let anchors = ssd_anchors(&[8], &[1], [20, 36]);
        assert_eq!(anchors.len(), 15);
        assert_eq!(anchors[0], [0.1, 0.5 / 3.0]);
        assert_eq!(anchors[14], [0.9, 2.5 / 3.0]);
        // Same strides that are not consecutive are separate maps.
        assert_eq!(
            ssd_anchor_count(&[8, 16, 8], &[1, 1, 1], [16, 16]),
            4 + 1 + 4
        );
    }
}
