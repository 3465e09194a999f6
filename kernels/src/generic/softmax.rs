//! Softmax over the last axis. Int8 dequantizes, computes in f32 and requantizes (not the
//! fixed-point TFLite reference; results may differ from it by one step).

/// F32 softmax of `rows` of `depth` values, `beta` scaling the logits.
pub(crate) fn softmax_f32(input: &[f32], depth: usize, beta: f32, output: &mut [f32]) {
    assert!(
        depth > 0 && input.len().is_multiple_of(depth),
        "softmax: length not a multiple of depth"
    );
    assert_eq!(input.len(), output.len(), "softmax: lengths differ");
    for (x, o) in input
        .chunks_exact(depth)
        .zip(output.chunks_exact_mut(depth))
    {
        let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for (ov, &xv) in o.iter_mut().zip(x) {
            *ov = ((xv - m) * beta).exp();
            sum += *ov;
        }
        for ov in o.iter_mut() {
            *ov /= sum;
        }
    }
}

/// Int8 softmax: `x` has `in_scale`; the output has `out_scale` / `out_zp` (TFLite: 1/256, −128).
#[allow(clippy::too_many_arguments)]
pub(crate) fn softmax_i8(
    input: &[i8],
    depth: usize,
    beta: f32,
    in_scale: f32,
    out_scale: f32,
    out_zp: i32,
    output: &mut [i8],
) {
    assert!(
        depth > 0 && input.len().is_multiple_of(depth),
        "softmax: length not a multiple of depth"
    );
    assert_eq!(input.len(), output.len(), "softmax: lengths differ");
    // exp of every possible difference from the row maximum (0..=255 steps), no allocation.
    let mut table = [0f32; 256];
    for (d, t) in table.iter_mut().enumerate() {
        *t = (-(d as f32) * in_scale * beta).exp();
    }
    for (x, o) in input
        .chunks_exact(depth)
        .zip(output.chunks_exact_mut(depth))
    {
        let m = x.iter().copied().max().unwrap_or(0) as i32;
        let sum: f32 = x.iter().map(|&v| table[(m - v as i32) as usize]).sum();
        let inv = 1.0 / (sum * out_scale);
        for (ov, &xv) in o.iter_mut().zip(x) {
            let q = (table[(m - xv as i32) as usize] * inv).round() as i32 + out_zp;
            *ov = q.clamp(-128, 127) as i8;
        }
    }
}
