//! F32 kernels against f64 references, within a stated error budget.
//!
//! Budget for a sum of `n` products: `|y − y64| ≤ (n + 2)·ε·Σ|termᵢ|` with ε = `f32::EPSILON`
//! (the classic bound for recursive summation, plus the bias and clamp).

use outpost_kernels::{
    Activation, ChannelPadded, Conv2dParams, DepthwiseParams, FcParams, KernelTable, PackedConvF32,
    PackedDepthwiseF32, PackedFcF32, PoolParams, ResidualF32, ResizeOptions, Tier,
    conv_output_size, f16_to_f32,
};
use proptest::prelude::*;

fn table() -> KernelTable {
    KernelTable::for_tier(Tier::Generic).unwrap()
}

/// Every tier this CPU runs (the reference first).
fn tables() -> Vec<KernelTable> {
    Tier::supported()
        .map(|t| KernelTable::for_tier(t).unwrap())
        .collect()
}

/// The output rows `0..out_h` cut into `parts` slices, each run by `slice` into its rows of
/// the output (`row` floats a row); `None` if a slice cannot be made.
fn in_row_slices(
    out_h: usize,
    parts: usize,
    row: usize,
    mut slice: impl FnMut(std::ops::Range<usize>, &mut [f32]) -> Option<()>,
) -> Option<Vec<f32>> {
    let mut out = vec![f32::NAN; out_h * row];
    for i in 0..parts {
        let rows = i * out_h / parts..(i + 1) * out_h / parts;
        if rows.is_empty() {
            continue;
        }
        slice(rows.clone(), &mut out[rows.start * row..rows.end * row])?;
    }
    Some(out)
}

/// Floats with NaNs (several payloads), ±0.0 and ±∞ among them.
fn special_floats(n: usize) -> impl Strategy<Value = Vec<f32>> {
    let v = prop_oneof![
        8 => -4.0f32..4.0,
        1 => prop::sample::select(vec![
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7fc0_1234),
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ]),
    ];
    prop::collection::vec(v, n)
}

/// Bit-for-bit equality (`-0.0` and `0.0` differ, every NaN equals itself).
fn same_bits(got: &[f32], want: &[f32], what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        prop_assert!(
            g.to_bits() == w.to_bits(),
            "{}: element {}: {} against the reference's {}",
            what,
            i,
            g,
            w
        );
    }
    Ok(())
}

fn floats(n: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-4.0f32..4.0, n)
}

fn check(got: &[f32], want: &[(f64, f64, usize)]) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len());
    for (i, (&g, &(y, mag, n))) in got.iter().zip(want).enumerate() {
        let budget = (n as f64 + 2.0) * f32::EPSILON as f64 * mag + 1e-30;
        prop_assert!(
            (g as f64 - y).abs() <= budget,
            "element {}: got {}, f64 {}, budget {}",
            i,
            g,
            y,
            budget
        );
    }
    Ok(())
}

/// f64 reference convolution: (value, Σ|terms|, number of terms) per output.
fn conv_ref(
    p: &Conv2dParams,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    act: (f32, f32),
) -> Vec<(f64, f64, usize)> {
    let (icg, ocg) = (p.in_c / p.groups, p.out_c / p.groups);
    let mut out = Vec::new();
    for n in 0..p.batch {
        for oy in 0..p.out_h {
            for ox in 0..p.out_w {
                for oc in 0..p.out_c {
                    let g = oc / ocg;
                    let (mut s, mut mag, mut cnt) = (b[oc] as f64, (b[oc] as f64).abs(), 1);
                    for ky in 0..p.k_h {
                        for kx in 0..p.k_w {
                            let iy =
                                (oy * p.stride_h + ky * p.dilation_h) as isize - p.pad_top as isize;
                            let ix = (ox * p.stride_w + kx * p.dilation_w) as isize
                                - p.pad_left as isize;
                            if iy < 0 || ix < 0 || iy as usize >= p.in_h || ix as usize >= p.in_w {
                                continue;
                            }
                            for ic in 0..icg {
                                let xv = x[((n * p.in_h + iy as usize) * p.in_w + ix as usize)
                                    * p.in_c
                                    + g * icg
                                    + ic] as f64;
                                let wv = w[((oc * p.k_h + ky) * p.k_w + kx) * icg + ic] as f64;
                                s += xv * wv;
                                mag += (xv * wv).abs();
                                cnt += 1;
                            }
                        }
                    }
                    out.push((s.clamp(act.0 as f64, act.1 as f64), mag, cnt));
                }
            }
        }
    }
    out
}

fn act() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::None),
        Just(Activation::Relu),
        Just(Activation::Relu6)
    ]
}

/// A tap whose product needs 25 bits, `(1 + 2⁻¹²)² − 1`: the generic tier rounds the product
/// before the add (to `1 + 2⁻¹¹`, a tie to even), a tier that fuses (AVX2, AVX-512) rounds
/// once and keeps the `2⁻²⁴`. Each tier gives its own reference's result, in the convolution and the
/// depthwise convolution.
#[test]
fn fusing_tiers_round_each_tap_once() {
    let x = 1.0 + f32::EPSILON * 2048.0;
    let conv = PackedConvF32::new(
        &Conv2dParams::simple(1, 1, 1, 1, 1, 1),
        &[x],
        Some(&[-1.0]),
        Activation::None,
    );
    let dw = PackedDepthwiseF32::new(
        &DepthwiseParams::same(1, 1, 1, 1, 1),
        &[x],
        Some(&[-1.0]),
        Activation::None,
    );
    let separate = 2f32.powi(-11);
    let fused = separate + 2f32.powi(-24);
    for t in tables() {
        let want = if t.tier().fuses_f32_multiply_add() {
            fused
        } else {
            separate
        };
        let mut out = [f32::NAN];
        t.conv2d_f32(&conv, &[x], &mut out);
        assert_eq!(out[0], want, "{}: conv2d", t.tier().name());
        KernelTable::reference_for(t.tier()).conv2d_f32(&conv, &[x], &mut out);
        assert_eq!(out[0], want, "{}: its reference's conv2d", t.tier().name());
        t.depthwise_f32(&dw, &[x], &mut out);
        assert_eq!(out[0], want, "{}: depthwise", t.tier().name());
        KernelTable::reference_for(t.tier()).depthwise_f32(&dw, &[x], &mut out);
        assert_eq!(
            out[0],
            want,
            "{}: its reference's depthwise",
            t.tier().name()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_f32_within_budget(
        (p, x, w, b, a) in (1usize..=2, 1usize..=6, 1usize..=6, 1usize..=3, 1usize..=5, 1usize..=6, 1usize..=3, 1usize..=3, 1usize..=2, 1usize..=2, 0usize..3, act())
            .prop_flat_map(|(batch, h, wd, groups, icg, ocg, kh, kw, stride, dil, pad, a)| {
                let mut p = Conv2dParams::simple(h, wd, icg * groups, ocg * groups, kh, kw);
                p.batch = batch;
                p.groups = groups;
                p.stride_h = stride;
                p.stride_w = stride;
                p.dilation_h = dil;
                p.dilation_w = dil;
                p.pad_top = pad.min(kh - 1);
                p.pad_left = pad.min(kw - 1);
                p.out_h = conv_output_size(h, kh, stride, dil, p.pad_top, p.pad_top);
                p.out_w = conv_output_size(wd, kw, stride, dil, p.pad_left, p.pad_left);
                (Just(p), floats(p.input_len()), floats(p.weight_len()), floats(p.out_c), Just(a))
            })
    ) {
        let packed = PackedConvF32::new(&p, &w, Some(&b), a);
        let want = conv_ref(&p, &x, &w, &b, a.range_f32());
        for t in tables() {
            let mut out = vec![0f32; p.output_len()];
            t.conv2d_f32(&packed, &x, &mut out);
            check(&out, &want)?;
        }
    }

    #[test]
    fn depthwise_f32_within_budget(
        (p, x, w, b) in (1usize..=6, 1usize..=6, 1usize..=9, 1usize..=3, 1usize..=2, 1usize..=3)
            .prop_flat_map(|(h, wd, c, mult, stride, k)| {
                let mut p = DepthwiseParams::same(h, wd, c, 2 * k - 1, stride);
                p.multiplier = mult;
                (Just(p), floats(p.input_len()), floats(p.weight_len()), floats(p.out_c()))
            })
    ) {
        let packed = PackedDepthwiseF32::new(&p, &w, Some(&b), Activation::None);
        let outs: Vec<Vec<f32>> = tables()
            .iter()
            .map(|t| {
                let mut out = vec![0f32; p.output_len()];
                t.depthwise_f32(&packed, &x, &mut out);
                out
            })
            .collect();
        // Depthwise = grouped convolution with groups = in_c; reshape the weights to OHWI.
        let oc = p.out_c();
        let mut cp = Conv2dParams::simple(p.in_h, p.in_w, p.in_c, oc, p.k_h, p.k_w);
        cp.groups = p.in_c;
        cp.stride_h = p.stride_h;
        cp.stride_w = p.stride_w;
        cp.pad_top = p.pad_top;
        cp.pad_left = p.pad_left;
        cp.out_h = p.out_h;
        cp.out_w = p.out_w;
        let taps = p.k_h * p.k_w;
        let ohwi: Vec<f32> = (0..oc * taps).map(|i| w[(i % taps) * oc + i / taps]).collect();
        let want = conv_ref(&cp, &x, &ohwi, &b, (f32::NEG_INFINITY, f32::INFINITY));
        for out in &outs {
            check(out, &want)?;
        }
    }

    #[test]
    fn fully_connected_f32_within_budget(
        (p, x, w, b) in (1usize..=4, 1usize..=200, 1usize..=40)
            .prop_flat_map(|(batch, i, o)| {
                let p = FcParams { batch, in_features: i, out_features: o, input_zp: 0, output_zp: 0, act_min: -128, act_max: 127 };
                (Just(p), floats(batch * i), floats(i * o), floats(o))
            })
    ) {
        let packed = PackedFcF32::new(&p, &w, Some(&b), Activation::None);
        let want = conv_ref(&p.as_conv(), &x, &w, &b, (f32::NEG_INFINITY, f32::INFINITY));
        for t in tables() {
            let mut out = vec![0f32; p.batch * p.out_features];
            t.fully_connected_f32(&packed, &x, &mut out);
            check(&out, &want)?;
        }
    }

    /// The SIMD tiers' blocked f32 kernels sum in the reference's order: equal bit for bit
    /// the scalar reference of their tier (`KernelTable::reference_for`: fused multiply-adds
    /// for AVX2, separate ones for AVX-512, and the generic tier equals itself),
    /// at channel counts that take every chunk width (AVX2: 16 and 8 lanes, whole or the
    /// last part; AVX-512: 32, 24, 16, 8 lanes), rows wide enough for every tile size (AVX2:
    /// 6 and 4 pixels, AVX-512: 8 and 4, single ones at the edges), with activations, and
    /// grouped (the tiers' fallbacks).
    #[test]
    fn conv2d_f32_tiers_equal_the_reference(
        (p, x, w, b, a) in (1usize..=2, 1usize..=4, 1usize..=21, 1usize..=20, 1usize..=140, 1usize..=3, 1usize..=3, 1usize..=2, 1usize..=2, 0usize..3, act(), prop_oneof![4 => Just(1usize), 1 => Just(2usize)])
            .prop_flat_map(|(batch, h, wd, ic, oc, kh, kw, stride, dil, pad, a, groups)| {
                // Grouped convolutions run each tier's fallback (the reference, fused on AVX2
                // and AVX-512).
                let mut p = Conv2dParams::simple(h, wd, ic * groups, oc * groups, kh, kw);
                p.groups = groups;
                p.batch = batch;
                p.stride_h = stride;
                p.stride_w = stride;
                p.dilation_h = dil;
                p.dilation_w = dil;
                p.pad_top = pad.min(kh - 1);
                p.pad_left = pad.min(kw - 1);
                p.out_h = conv_output_size(h, kh, stride, dil, p.pad_top, p.pad_top);
                p.out_w = conv_output_size(wd, kw, stride, dil, p.pad_left, p.pad_left);
                (Just(p), floats(p.input_len()), floats(p.weight_len()), floats(p.out_c), Just(a))
            })
    ) {
        let packed = PackedConvF32::new(&p, &w, Some(&b), a);
        for t in tables() {
            let mut want = vec![0f32; p.output_len()];
            KernelTable::reference_for(t.tier()).conv2d_f32(&packed, &x, &mut want);
            let mut out = vec![f32::NAN; p.output_len()];
            t.conv2d_f32(&packed, &x, &mut out);
            same_bits(&out, &want, t.tier().name())?;
        }
    }

    /// A convolution with its residual add (`conv2d_add_f32`) equals the tier's reference
    /// convolution then the generic channel-padded add, bit for bit, on every tier and on the
    /// tier's reference, with the skip as wide as the output or narrower (a pad folded in),
    /// the add's clamp open or not, and shapes as in the test above (tiles of every size, the
    /// skip added per tile; grouped convolutions through the fallbacks).
    #[test]
    fn conv2d_add_f32_equals_conv_then_add(
        (p, x, w, b, a, skip, bc, fill) in (1usize..=2, 1usize..=3, 1usize..=17, 1usize..=12, 1usize..=40, 1usize..=3, 1usize..=2, 0usize..2, act(), prop_oneof![4 => Just(1usize), 1 => Just(2usize)], 0usize..=4, -2.0f32..2.0)
            .prop_flat_map(|(batch, h, wd, ic, oc, k, stride, pad, a, groups, narrow, fill)| {
                let mut p = Conv2dParams::simple(h, wd, ic * groups, oc * groups, k, k);
                p.groups = groups;
                p.batch = batch;
                p.stride_h = stride;
                p.stride_w = stride;
                p.pad_top = pad.min(k - 1);
                p.pad_left = pad.min(k - 1);
                p.out_h = conv_output_size(h, k, stride, 1, p.pad_top, p.pad_top);
                p.out_w = conv_output_size(wd, k, stride, 1, p.pad_left, p.pad_left);
                // Narrow skips in one case of five, 1 to out_c − 1 channels.
                let bc = if narrow == 0 && p.out_c > 1 { 1 + fill.to_bits() as usize % (p.out_c - 1) } else { p.out_c };
                let pixels = p.output_len() / p.out_c;
                (Just(p), floats(p.input_len()), floats(p.weight_len()), floats(p.out_c), Just(a), floats(pixels * bc), Just(bc), Just(fill))
            })
    ) {
        let packed = PackedConvF32::new(&p, &w, Some(&b), a);
        let pad = ChannelPadded { channels: p.out_c, b_channels: bc, fill };
        for act in [(f32::NEG_INFINITY, f32::INFINITY), (0.0, 6.0)] {
            let r = ResidualF32 { act, pad, skip: &skip };
            for t in tables() {
                let reference = KernelTable::reference_for(t.tier());
                let mut conv = vec![0f32; p.output_len()];
                reference.conv2d_f32(&packed, &x, &mut conv);
                let mut want = vec![0f32; p.output_len()];
                table().add_f32_padded(&pad, &conv, &skip, &mut want, act);
                let mut out = vec![f32::NAN; p.output_len()];
                t.conv2d_add_f32(&packed, &x, &r, &mut out);
                same_bits(&out, &want, t.tier().name())?;
                let mut out = vec![f32::NAN; p.output_len()];
                reference.conv2d_add_f32(&packed, &x, &r, &mut out);
                same_bits(&out, &want, "the reference")?;
            }
        }
    }

    /// The plain f32 add of every tier equals the reference's element by element (an IEEE
    /// add, then the clamp), bit for bit with ±0 and ±∞ among the values, at lengths across
    /// the 8-lane vectors and their tails; NaN where it is NaN.
    #[test]
    fn add_f32_tiers_equal_the_reference(
        (a, b) in (0usize..=70).prop_flat_map(|n| (special_floats(n), special_floats(n)))
    ) {
        for act in [(f32::NEG_INFINITY, f32::INFINITY), (0.0, 6.0), (-1.0, 1.0)] {
            let mut want = vec![0f32; a.len()];
            table().add_f32(&a, &b, &mut want, act);
            for t in tables() {
                let mut got = vec![f32::NAN; a.len()];
                t.add_f32(&a, &b, &mut got, act);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    let same = g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan());
                    prop_assert!(same, "{}: element {}: {} against {}", t.tier().name(), i, g, w);
                }
            }
        }
    }

    /// An add with a channel-padded operand (a pad folded in) equals the pad then the add,
    /// whichever operand the pad fed, bit for bit with ±0 and ±∞ among the values; NaN where
    /// it is NaN (Rust leaves a NaN's payload unspecified).
    #[test]
    fn add_f32_padded_equals_pad_then_add(
        (c, bc, a, b, fill, b_first) in (1usize..=40, 1usize..=40, 1usize..=6, any::<bool>())
            .prop_flat_map(|(c, bc, pixels, b_first)| {
                let bc = bc.min(c);
                let fill = prop::sample::select(vec![0.0f32, -0.0, 1.5]);
                (Just(c), Just(bc), special_floats(pixels * c), special_floats(pixels * bc), fill, Just(b_first))
            })
    ) {
        let pad = ChannelPadded { channels: c, b_channels: bc, fill };
        let padded: Vec<f32> = (0..a.len())
            .map(|i| if i % c < bc { b[i / c * bc + i % c] } else { fill })
            .collect();
        for act in [(f32::NEG_INFINITY, f32::INFINITY), (0.0, 6.0)] {
            let mut want = vec![0f32; a.len()];
            if b_first {
                table().add_f32(&padded, &a, &mut want, act);
            } else {
                table().add_f32(&a, &padded, &mut want, act);
            }
            for t in tables() {
                let mut got = vec![0f32; a.len()];
                t.add_f32_padded(&pad, &a, &b, &mut got, act);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    let same = g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan());
                    prop_assert!(same, "{}: element {}: {} against {}", t.tier().name(), i, g, w);
                }
            }
        }
    }

    /// Pools cut into row slices (what a session with several threads runs) put together are
    /// the whole pool, bit for bit: max and average, f32 and int8, every tier.
    #[test]
    fn pool_row_slices_match_whole(
        (p, x, parts) in (2usize..=12, 1usize..=8, 1usize..=20, 1usize..=3, 1usize..=2, 0usize..2, 2usize..=4)
            .prop_flat_map(|(h, w, c, k, stride, pad, parts)| {
                let pad = pad.min(k - 1);
                let p = PoolParams {
                    batch: 1, in_h: h, in_w: w, channels: c,
                    out_h: conv_output_size(h, k, stride, 1, pad, pad),
                    out_w: conv_output_size(w, k, stride, 1, pad, pad),
                    k_h: k, k_w: k, stride_h: stride, stride_w: stride,
                    pad_top: pad, pad_left: pad, act_min: -100, act_max: 127,
                };
                (Just(p), special_floats(h * w * c), Just(parts))
            })
    ) {
        let x8: Vec<i8> = x.iter().map(|&v| (v * 30.0) as i8).collect();
        let row_in = p.in_w * p.channels;
        let row_out = p.out_w * p.channels;
        for t in tables() {
            type F32Pool = fn(&KernelTable, &PoolParams, &[f32], &mut [f32]);
            type I8Pool = fn(&KernelTable, &PoolParams, &[i8], &mut [i8]);
            let f32_pools: [F32Pool; 2] = [KernelTable::max_pool_f32, KernelTable::avg_pool_f32];
            let i8_pools: [I8Pool; 2] = [KernelTable::max_pool_i8, KernelTable::avg_pool_i8];
            for pool in f32_pools {
                let mut want = vec![0f32; p.out_h * row_out];
                pool(&t, &p, &x, &mut want);
                let got = in_row_slices(p.out_h, parts, row_out, |rows, out| {
                    let (s, i) = p.rows(rows)?;
                    pool(&t, &s, &x[i.start * row_in..i.end * row_in], out);
                    Some(())
                });
                if let Some(got) = got {
                    same_bits(&got, &want, t.tier().name())?;
                }
            }
            for pool in i8_pools {
                let mut want = vec![0i8; p.out_h * row_out];
                pool(&t, &p, &x8, &mut want);
                let mut got = vec![0i8; p.out_h * row_out];
                for i in 0..parts {
                    let rows = i * p.out_h / parts..(i + 1) * p.out_h / parts;
                    let Some((s, r)) = p.rows(rows.clone()) else { continue };
                    let out = &mut got[rows.start * row_out..rows.end * row_out];
                    pool(&t, &s, &x8[r.start * row_in..r.end * row_in], out);
                }
                prop_assert_eq!(&got, &want, "{}", t.tier().name());
            }
        }
    }

    /// Row slices (what a session with several threads runs in parallel) put together are the
    /// whole convolution, bit for bit, on every tier.
    #[test]
    fn conv2d_f32_row_slices_match_whole(
        (p, x, w, parts) in (2usize..=12, 1usize..=12, 1usize..=12, 1usize..=40, 1usize..=3, 1usize..=2, 0usize..3, 2usize..=4)
            .prop_flat_map(|(h, wd, ic, oc, k, stride, pad, parts)| {
                let mut p = Conv2dParams::simple(h, wd, ic, oc, k, k);
                (p.stride_h, p.stride_w) = (stride, stride);
                (p.pad_top, p.pad_left) = (pad.min(k - 1), pad.min(k - 1));
                p.out_h = conv_output_size(h, k, stride, 1, p.pad_top, p.pad_top);
                p.out_w = conv_output_size(wd, k, stride, 1, p.pad_left, p.pad_left);
                (Just(p), floats(p.input_len()), floats(p.weight_len()), Just(parts))
            })
    ) {
        let packed = PackedConvF32::new(&p, &w, None, Activation::Relu6);
        let (row_in, row_out) = (p.in_w * p.in_c, p.out_w * p.out_c);
        for t in tables() {
            let mut want = vec![0f32; p.output_len()];
            t.conv2d_f32(&packed, &x, &mut want);
            let got = in_row_slices(p.out_h, parts, row_out, |rows, out| {
                let (s, i) = packed.rows(rows)?;
                t.conv2d_f32(&s, &x[i.start * row_in..i.end * row_in], out);
                Some(())
            });
            if let Some(got) = got {
                same_bits(&got, &want, t.tier().name())?;
            }
        }
    }

    #[test]
    fn depthwise_f32_row_slices_match_whole(
        (p, x, w, parts) in (2usize..=12, 1usize..=12, 1usize..=40, 1usize..=3, 1usize..=2, 2usize..=4)
            .prop_flat_map(|(h, wd, c, k, stride, parts)| {
                let p = DepthwiseParams::same(h, wd, c, 2 * k - 1, stride);
                (Just(p), floats(p.input_len()), floats(p.weight_len()), Just(parts))
            })
    ) {
        let packed = PackedDepthwiseF32::new(&p, &w, None, Activation::None);
        let (row_in, row_out) = (p.in_w * p.in_c, p.out_w * p.out_c());
        for t in tables() {
            let mut want = vec![0f32; p.output_len()];
            t.depthwise_f32(&packed, &x, &mut want);
            let got = in_row_slices(p.out_h, parts, row_out, |rows, out| {
                let (s, i) = packed.rows(rows)?;
                t.depthwise_f32(&s, &x[i.start * row_in..i.end * row_in], out);
                Some(())
            });
            if let Some(got) = got {
                same_bits(&got, &want, t.tier().name())?;
            }
        }
    }

    #[test]
    fn depthwise_f32_tiers_equal_the_reference(
        (p, x, w, b, a) in (1usize..=5, 1usize..=21, 1usize..=150, 1usize..=2, 1usize..=2, 1usize..=3, act())
            .prop_flat_map(|(h, wd, c, mult, stride, k, a)| {
                let mut p = DepthwiseParams::same(h, wd, c, 2 * k - 1, stride);
                p.multiplier = mult;
                (Just(p), floats(p.input_len()), floats(p.weight_len()), floats(p.out_c()), Just(a))
            })
    ) {
        let packed = PackedDepthwiseF32::new(&p, &w, Some(&b), a);
        for t in tables() {
            let mut want = vec![0f32; p.output_len()];
            KernelTable::reference_for(t.tier()).depthwise_f32(&packed, &x, &mut want);
            let mut out = vec![f32::NAN; p.output_len()];
            t.depthwise_f32(&packed, &x, &mut out);
            same_bits(&out, &want, t.tier().name())?;
        }
    }

    /// The pools (channels as the inner loop) equal one fold per channel over the valid cells
    /// in order, `f32::max` from −∞ and `Iterator::sum` (from −0.0) over the count, bit for
    /// bit, with NaN, ±0.0 and ±∞ among the inputs.
    #[test]
    fn pools_f32_equal_a_fold_per_channel(
        (p, x) in (1usize..=2, 1usize..=6, 1usize..=6, 1usize..=20, 1usize..=3, 1usize..=2, 0usize..2)
            .prop_flat_map(|(batch, h, w, c, k, stride, pad)| {
                let pad = pad.min(k - 1);
                let p = PoolParams {
                    batch, in_h: h, in_w: w, channels: c,
                    out_h: conv_output_size(h, k, stride, 1, pad, pad),
                    out_w: conv_output_size(w, k, stride, 1, pad, pad),
                    k_h: k, k_w: k, stride_h: stride, stride_w: stride,
                    pad_top: pad, pad_left: pad, act_min: -128, act_max: 127,
                };
                let v = prop_oneof![
                    8 => -4.0f32..4.0,
                    1 => prop::sample::select(vec![f32::NAN, 0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY]),
                ];
                (Just(p), prop::collection::vec(v, batch * h * w * c))
            })
    ) {
        let c = p.channels;
        let cells = |b: usize, oy: usize, ox: usize| -> Vec<usize> {
            let mut v = Vec::new();
            for ky in 0..p.k_h {
                for kx in 0..p.k_w {
                    let iy = (oy * p.stride_h + ky) as isize - p.pad_top as isize;
                    let ix = (ox * p.stride_w + kx) as isize - p.pad_left as isize;
                    if iy >= 0 && ix >= 0 && (iy as usize) < p.in_h && (ix as usize) < p.in_w {
                        v.push(((b * p.in_h + iy as usize) * p.in_w + ix as usize) * c);
                    }
                }
            }
            v
        };
        let mut want_max = Vec::new();
        let mut want_avg = Vec::new();
        for b in 0..p.batch {
            for oy in 0..p.out_h {
                for ox in 0..p.out_w {
                    let offs = cells(b, oy, ox);
                    for ch in 0..c {
                        want_max.push(offs.iter().map(|&o| x[o + ch]).fold(f32::NEG_INFINITY, f32::max));
                        let sum: f32 = offs.iter().map(|&o| x[o + ch]).sum();
                        want_avg.push(sum / offs.len().max(1) as f32);
                    }
                }
            }
        }
        let same = |g: f32, w: f32| g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan());
        for t in tables() {
            let mut out = vec![0f32; want_max.len()];
            t.max_pool_f32(&p, &x, &mut out);
            for (i, (&g, &w)) in out.iter().zip(&want_max).enumerate() {
                prop_assert!(same(g, w), "{}: max {}: {} against {}", t.tier().name(), i, g, w);
            }
            t.avg_pool_f32(&p, &x, &mut out);
            for (i, (&g, &w)) in out.iter().zip(&want_avg).enumerate() {
                prop_assert!(same(g, w), "{}: average {}: {} against {}", t.tier().name(), i, g, w);
            }
        }
    }

    #[test]
    fn softmax_f32_within_budget(x in prop::collection::vec(-20.0f32..20.0, 1..64), beta in 0.1f32..2.0) {
        let mut out = vec![0f32; x.len()];
        table().softmax_f32(&x, x.len(), beta, &mut out);
        let m = x.iter().cloned().fold(f64::NEG_INFINITY, |a, v| a.max(v as f64));
        let e: Vec<f64> = x.iter().map(|&v| ((v as f64 - m) * beta as f64).exp()).collect();
        let s: f64 = e.iter().sum();
        for (g, ev) in out.iter().zip(&e) {
            prop_assert!((*g as f64 - ev / s).abs() <= 1e-5, "{} vs {}", g, ev / s);
        }
    }
}

#[test]
fn f16_weights_widen_once() {
    let p = Conv2dParams::simple(2, 2, 1, 1, 1, 1);
    let half = PackedConvF32::from_f16(&p, &[0x3800], None, Activation::None); // 0.5
    let full = PackedConvF32::new(&p, &[0.5], None, Activation::None);
    let x = [1.0, -2.0, 3.0, 8.0];
    let (mut a, mut b) = ([0f32; 4], [0f32; 4]);
    table().conv2d_f32(&half, &x, &mut a);
    table().conv2d_f32(&full, &x, &mut b);
    assert_eq!(a, b);
    assert_eq!(a, [0.5, -1.0, 1.5, 4.0]);
    assert_eq!(f16_to_f32(0x3800), 0.5);
}

#[test]
fn elementwise_f32() {
    let t = table();
    let mut out = [0f32; 3];
    t.add_f32(
        &[1.0, -5.0, 3.0],
        &[2.0, 1.0, 4.0],
        &mut out,
        Activation::Relu6.range_f32(),
    );
    assert_eq!(out, [3.0, 0.0, 6.0]);
    t.mul_f32(
        &[1.0, -5.0, 3.0],
        &[2.0, 1.0, 4.0],
        &mut out,
        Activation::None.range_f32(),
    );
    assert_eq!(out, [2.0, -5.0, 12.0]);
    t.map_f32(&[-4.0, 0.0, 1.0], &mut out, outpost_kernels::hardswish);
    assert_eq!(out, [-0.0, 0.0, 1.0 * 4.0 / 6.0]);
}

proptest! {
    /// Bilinear resize f32, up and down, every mapping option, channel counts across the 8-
    /// and 16-lane vectors and their tails, ±0 and ±∞ among the inputs: every tier equals the
    /// reference bit for bit (the same products and sums in the same order).
    #[test]
    fn resize_bilinear_f32_tiers_match_reference(
        (n, h, w, c) in (1usize..=2, 1usize..=5, 1usize..=5, prop::sample::select(&[1usize, 3, 8, 9, 16, 17, 33][..])),
        (out_h, out_w) in (1usize..=11, 1usize..=11),
        (align_corners, half_pixel_centers) in (any::<bool>(), any::<bool>()),
        raw in prop::collection::vec(prop_oneof![
            8 => -1000.0f32..1000.0,
            1 => prop::sample::select(vec![0.0f32, -0.0, f32::INFINITY, f32::NEG_INFINITY]),
        ], 2 * 5 * 5 * 33),
    ) {
        let o = ResizeOptions { align_corners, half_pixel_centers };
        let input = &raw[..n * h * w * c];
        let shape = [n, h, w, c];
        let mut want = vec![0f32; n * out_h * out_w * c];
        table().resize_bilinear_f32(input, shape, out_h, out_w, o, &mut want);
        for t in tables().into_iter().skip(1) {
            let mut got = vec![f32::NAN; want.len()];
            t.resize_bilinear_f32(input, shape, out_h, out_w, o, &mut got);
            same_bits(&got, &want, &format!("tier {}", t.tier()))?;
        }
    }
}
