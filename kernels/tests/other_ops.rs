//! Unit tests of the generic-only ops (same entry on every tier) against hand values.

use outpost_kernels::{
    KernelTable, Lut, MulQuant, PoolParams, ResizeOptions, Tier, quantize_multiplier,
};

fn tables() -> Vec<KernelTable> {
    Tier::supported()
        .map(|t| KernelTable::for_tier(t).unwrap())
        .collect()
}

fn pool(k: usize, stride: usize, pad: usize, in_hw: usize, out_hw: usize) -> PoolParams {
    PoolParams {
        batch: 1,
        in_h: in_hw,
        in_w: in_hw,
        channels: 1,
        out_h: out_hw,
        out_w: out_hw,
        k_h: k,
        k_w: k,
        stride_h: stride,
        stride_w: stride,
        pad_top: pad,
        pad_left: pad,
        act_min: -128,
        act_max: 127,
    }
}

#[test]
fn pools_i8_and_f32() {
    for t in tables() {
        let x: Vec<i8> = (0..16).map(|i| i as i8 - 5).collect(); // 4×4
        let p = pool(2, 2, 0, 4, 2);
        let mut out = [0i8; 4];
        t.max_pool_i8(&p, &x, &mut out);
        assert_eq!(out, [0, 2, 8, 10]);
        t.avg_pool_i8(&p, &x, &mut out);
        // (-5 -4 -1 0)/4 = -2.5 → -3 (away from zero); (-3 -2 1 2)/4 = -0.5 → -1.
        assert_eq!(out, [-3, -1, 6, 8]);
        // 3×3 window, stride 1, "same" padding: corner averages 4 valid cells only.
        let p = pool(3, 1, 1, 4, 4);
        let mut out = [0i8; 16];
        t.avg_pool_i8(&p, &x, &mut out);
        assert_eq!(out[0], -3); // (-5 - 4 - 1 + 0) / 4 = -2.5 → -3
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut of = [0f32; 16];
        t.avg_pool_f32(&p, &xf, &mut of);
        assert_eq!(of[0], -10.0 / 4.0);
        t.max_pool_f32(&p, &xf, &mut of);
        assert_eq!(of[15], 10.0);
        // Global mean: in scale 0.5, out scale 0.25 over 4 pixels, zps 0.
        let mut m = [0i8; 2];
        t.global_mean_i8(
            &[1, 10, 3, 10, 5, 10, 7, 11],
            1,
            4,
            2,
            0,
            quantize_multiplier(0.5 / (0.25 * 4.0)),
            0,
            &mut m,
        );
        assert_eq!(m, [8, 21]); // (16/4)·2 = 8; (41/4)·2 = 20.5 → 21
        let mut mf = [0f32; 2];
        t.global_mean_f32(&[1.0, 10.0, 3.0, 10.0], 1, 2, 2, &mut mf);
        assert_eq!(mf, [2.0, 10.0]);
    }
}

#[test]
fn mul_i8_hand_values() {
    let q = MulQuant::new(0.5, 1, 0.25, -2, 0.125, 3, -128, 127);
    // (5 − 1)·(6 + 2) = 32; ·0.5·0.25/0.125 = 32 → + 3 = 35.
    assert_eq!(q.apply(5, 6), 35);
    for t in tables() {
        let mut out = [0i8; 2];
        t.mul_i8(&q, &[5, 100], &[6, 100], &mut out);
        assert_eq!(out, [35, 127]);
    }
}

#[test]
fn lut_ops_match_tflite_populate() {
    // Logistic with TFLite's int8 output quantization (1/256, −128).
    let lut = Lut::logistic(0.1, 0, 1.0 / 256.0, -128);
    assert_eq!(lut.get(0), 0); // 0.5·256 − 128
    assert_eq!(lut.get(127), 127); // sigmoid(12.7)·256 = 255.99 → 256 → clamp
    assert_eq!(lut.get(-128), -128);
    let lut = Lut::tanh(0.05, 0, 1.0 / 128.0, 0);
    assert_eq!(lut.get(20), (1.0f32.tanh() * 128.0).round() as i8);
    let lut = Lut::hardswish(0.1, 0, 0.05, 0);
    assert_eq!(lut.get(-40), 0); // x = −4
    assert_eq!(lut.get(10), ((1.0 * 4.0 / 6.0) / 0.05f32).round() as i8); // x = 1
    for t in tables() {
        let mut out = [0i8; 2];
        t.lut_i8(&lut, &[-40, 10], &mut out);
        assert_eq!(out, [lut.get(-40), lut.get(10)]);
    }
}

#[test]
fn softmax_i8_close_to_float() {
    let x: Vec<i8> = vec![-10, 0, 10, 20, 127, -128];
    let mut out = vec![0i8; 6];
    tables()[0].softmax_i8(&x, 6, 1.0, 0.1, 1.0 / 256.0, -128, &mut out);
    let e: Vec<f64> = x.iter().map(|&v| (v as f64 * 0.1).exp()).collect();
    let s: f64 = e.iter().sum();
    for (o, ev) in out.iter().zip(&e) {
        let want = (ev / s * 256.0 - 128.0).round().clamp(-128.0, 127.0);
        assert!((*o as f64 - want).abs() <= 1.0, "{o} vs {want}");
    }
}

#[test]
fn layout_ops() {
    let t = &tables()[0];
    let mut out = [0i8; 10];
    // Two inputs [2, 2] and [2, 3] concatenated on the inner axis.
    t.concat(&[&[1, 2, 3, 4], &[5, 6, 7, 8, 9, 10]], 2, &mut out);
    assert_eq!(out, [1, 2, 5, 6, 7, 3, 4, 8, 9, 10]);
    // Pad 1×1×2×1 by one column on the left and one channel after.
    let mut padded = [0i8; 6];
    t.pad(
        &[7, 8],
        [1, 1, 2, 1],
        [(0, 0), (0, 0), (1, 0), (0, 1)],
        -1,
        &mut padded,
    );
    assert_eq!(padded, [-1, -1, 7, -1, 8, -1]);
    // Transpose [2, 3] → [3, 2].
    let mut tr = [0f32; 6];
    t.transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], &[1, 0], &mut tr);
    assert_eq!(tr, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    // NHWC → NCHW of [1, 2, 2, 2].
    let x: Vec<u8> = (0..8).collect();
    let mut y = [0u8; 8];
    t.transpose(&x, &[1, 2, 2, 2], &[0, 3, 1, 2], &mut y);
    assert_eq!(y, [0, 2, 4, 6, 1, 3, 5, 7]);
}

#[test]
fn resize_modes() {
    for t in &tables() {
        resize_modes_on(t);
    }
}

fn resize_modes_on(t: &KernelTable) {
    let x = [0.0f32, 10.0, 20.0, 30.0]; // 2×2×1
    let mut y = [0f32; 9];
    let align = ResizeOptions {
        align_corners: true,
        half_pixel_centers: false,
    };
    t.resize_bilinear_f32(&x, [1, 2, 2, 1], 3, 3, align, &mut y);
    assert_eq!(y, [0.0, 5.0, 10.0, 10.0, 15.0, 20.0, 20.0, 25.0, 30.0]);
    let mut y4 = [0f32; 16];
    let half = ResizeOptions {
        align_corners: false,
        half_pixel_centers: true,
    };
    t.resize_bilinear_f32(&x, [1, 2, 2, 1], 4, 4, half, &mut y4);
    assert_eq!(&y4[..4], &[0.0, 2.5, 7.5, 10.0]);
    let mut n = [0i8; 16];
    t.resize_nearest(
        &[1i8, 2, 3, 4],
        [1, 2, 2, 1],
        4,
        4,
        ResizeOptions::default(),
        &mut n,
    );
    assert_eq!(&n[..8], &[1, 1, 2, 2, 1, 1, 2, 2]);
    let mut n3 = [0i8; 9];
    t.resize_nearest(&[1i8, 2, 3, 4], [1, 2, 2, 1], 3, 3, align, &mut n3);
    assert_eq!(n3, [1, 2, 2, 3, 4, 4, 3, 4, 4]);
    let mut b = [0i8; 9];
    t.resize_bilinear_i8(&[0, 10, 20, 31], [1, 2, 2, 1], 3, 3, align, &mut b);
    assert_eq!(b, [0, 5, 10, 10, 15, 21, 20, 26, 31]);
}

#[test]
fn quantize_dequantize() {
    let t = &tables()[0];
    let mut q = [0i8; 4];
    t.quantize(&[0.0, 0.26, -100.0, 1.0], 0.5, 3, &mut q);
    assert_eq!(q, [3, 4, -128, 5]);
    let mut f = [0f32; 4];
    t.dequantize(&q, 0.5, 3, &mut f);
    assert_eq!(f, [0.0, 0.5, -65.5, 1.0]);
    // Scale 0.5 → 0.25 (×2), zero point 3 → −10: (5 − 3)·2 − 10 = −6; (100 − 3)·2 saturates.
    let mut r = [0i8; 3];
    t.requantize_i8(&[5, 100, -128], 3, quantize_multiplier(2.0), -10, &mut r);
    assert_eq!(r, [-6, 127, -128]);
}

#[test]
fn requantize_to_u8() {
    let t = &tables()[0];
    // Same scale, zero point −128 → 0 (TFLite's int8 → uint8 QUANTIZE): q + 128.
    let mut u = [0u8; 4];
    t.requantize_u8(
        &[-128, 0, 127, -1],
        -128,
        quantize_multiplier(1.0),
        0,
        &mut u,
    );
    assert_eq!(u, [0, 128, 255, 127]);
    // Scale ×2 saturates at both ends of uint8.
    t.requantize_u8(
        &[-100, 100, 10, 0],
        0,
        quantize_multiplier(2.0),
        100,
        &mut u,
    );
    assert_eq!(u, [0, 255, 120, 100]);
}

#[test]
fn slice_hand_values() {
    let t = &tables()[0];
    // [1, 5, 1, 2]: rows 2..5 (the last three time steps).
    let x: Vec<i8> = (0..10).collect();
    let mut out = [0i8; 6];
    t.slice(
        &x,
        &[1, 5, 1, 2],
        &[0, 2, 0, 0],
        &[1, 3, 1, 2],
        &[1, 1, 1, 1],
        &mut out,
    );
    assert_eq!(out, [4, 5, 6, 7, 8, 9]);
    // Every second channel of [2, 4] from channel 1.
    let y: Vec<f32> = (0..8).map(|v| v as f32).collect();
    let mut o2 = [0f32; 4];
    t.slice(&y, &[2, 4], &[0, 1], &[2, 2], &[1, 2], &mut o2);
    assert_eq!(o2, [1.0, 3.0, 5.0, 7.0]);
}

proptest::proptest! {
    /// The slice kernel against an index-by-index reference.
    #[test]
    fn slice_matches_index_reference(
        dims in proptest::collection::vec((1usize..6, 0usize..6, 1usize..6, 1usize..3), 1..=4),
    ) {
        let shape: Vec<usize> = dims.iter().map(|d| d.0).collect();
        let stride: Vec<usize> = dims.iter().map(|d| d.3).collect();
        let begin: Vec<usize> = dims.iter().map(|d| d.1 % d.0).collect();
        let size: Vec<usize> = dims
            .iter()
            .zip(&begin)
            .map(|(d, &b)| (d.2).min((d.0 - b).div_ceil(d.3)).max(1))
            .collect();
        let n: usize = shape.iter().product();
        let x: Vec<u16> = (0..n as u16).collect();
        let mut got = vec![0u16; size.iter().product()];
        tables()[0].slice(&x, &shape, &begin, &size, &stride, &mut got);
        let mut want = Vec::new();
        let mut idx = vec![0usize; shape.len()];
        'outer: loop {
            let mut flat = 0;
            for a in 0..shape.len() {
                flat = flat * shape[a] + begin[a] + idx[a] * stride[a];
            }
            want.push(x[flat]);
            for a in (0..shape.len()).rev() {
                idx[a] += 1;
                if idx[a] < size[a] {
                    continue 'outer;
                }
                idx[a] = 0;
            }
            break;
        }
        proptest::prop_assert_eq!(got, want);
    }
}

/// The global mean over chunks of channels equals the per-channel column sums, across chunk
/// boundaries (300 channels), two images and a non-zero input zero point.
#[test]
fn global_mean_i8_matches_column_sums() {
    let (batch, pixels, channels, in_zp, out_zp) = (2, 49, 300, -7, 5);
    let x = outpost_kernels::pseudo_random_i8(batch * pixels * channels, 21);
    let r = quantize_multiplier(0.05 / (0.02 * pixels as f64));
    let mut want = vec![0i8; batch * channels];
    for b in 0..batch {
        for c in 0..channels {
            let sum: i32 = (0..pixels)
                .map(|p| x[(b * pixels + p) * channels + c] as i32 - in_zp)
                .sum();
            want[b * channels + c] = (r.apply(sum) + out_zp).clamp(-128, 127) as i8;
        }
    }
    for t in Tier::supported() {
        let mut got = vec![0i8; batch * channels];
        KernelTable::for_tier(t)
            .unwrap()
            .global_mean_i8(&x, batch, pixels, channels, in_zp, r, out_zp, &mut got);
        assert_eq!(got, want, "tier {t}");
    }
}

/// Every permutation of every small 4-D shape: output element `(i0, i1, i2, i3)` is the input
/// element whose axis `perm[k]` index is `ik`, through both paths of the transpose (whole runs
/// when the innermost axis stays, single elements otherwise).
#[test]
fn transpose_matches_index_arithmetic_for_every_permutation() {
    let t = &tables()[0];
    let shapes = [[1, 2, 3, 4], [2, 3, 1, 5], [3, 2, 4, 2]];
    let perms: Vec<[usize; 4]> = (0..256)
        .map(|n| [n % 4, n / 4 % 4, n / 16 % 4, n / 64])
        .filter(|p| (0..4).all(|a| p.contains(&a)))
        .collect();
    assert_eq!(perms.len(), 24);
    for shape in shapes {
        let x: Vec<i32> = (0..shape.iter().product::<usize>() as i32).collect();
        for perm in &perms {
            let out_shape: [usize; 4] = core::array::from_fn(|i| shape[perm[i]]);
            let mut y = vec![0i32; x.len()];
            t.transpose(&x, &shape, perm, &mut y);
            let mut o = 0;
            for i0 in 0..out_shape[0] {
                for i1 in 0..out_shape[1] {
                    for i2 in 0..out_shape[2] {
                        for i3 in 0..out_shape[3] {
                            let mut idx = [0; 4];
                            for (k, &v) in [i0, i1, i2, i3].iter().enumerate() {
                                idx[perm[k]] = v;
                            }
                            let src = ((idx[0] * shape[1] + idx[1]) * shape[2] + idx[2]) * shape[3]
                                + idx[3];
                            assert_eq!(y[o], x[src], "shape {shape:?} perm {perm:?} at {o}");
                            o += 1;
                        }
                    }
                }
            }
        }
    }
}
