//! Int8 kernels on fixed inputs: hand-computed reference values, the first layers of the real
//! models at full size, exact ties on narrow depthwise chunks, and accumulators at and past
//! the bounds of the `f32` requantization. Every SIMD tier must equal the reference.

use outpost_kernels::{
    Add16Quant, AddQuant, ChannelPadded, Conv2dParams, DepthwiseParams, KernelTable, PackedConv,
    PoolParams, Residual, Tier, pseudo_random_i8,
};

mod common;
use common::{ConvCase, DwCase, generic, run_conv, run_dw, simd_tiers};

/// A direct check of the reference against hand-computed TFLite values.
/// First layers at full size (BlazeFace 128×128×3 → 24, 5×5; MobileNetV2 224×224×3 → 32,
/// 3×3; both stride 2 with TFLite "same" padding), in either requantization: every tier
/// equals generic.
#[test]
fn first_layers_at_full_size_match_generic() {
    for (size, oc, k, f32_requant) in [
        (128, 24, 5, false),
        (224, 32, 3, false),
        (128, 24, 5, true),
        (224, 32, 3, true),
    ] {
        let mut p = Conv2dParams::simple(size, size, 3, oc, k, k);
        p.requant_f32 = f32_requant;
        (p.stride_h, p.stride_w, p.out_h, p.out_w) = (2, 2, size / 2, size / 2);
        let pad = ((size / 2 - 1) * 2 + k - size) / 2;
        (p.pad_top, p.pad_left, p.input_zp, p.output_zp) = (pad, pad, -7, 3);
        let c = ConvCase {
            p,
            weights: pseudo_random_i8(p.weight_len(), 11),
            bias: (0..oc as i32).map(|i| i * 131 - 1500).collect(),
            scales: (0..oc).map(|i| 0.004 + 0.0003 * i as f32).collect(),
            input: pseudo_random_i8(p.input_len(), 12),
        };
        let want = run_conv(&generic(), &c);
        for t in simd_tiers() {
            assert!(
                run_conv(&t, &c) == want,
                "{size}×{size} k{k} f32 {f32_requant}: tier {}",
                t.tier()
            );
        }
    }
}

/// A pointwise convolution whose accumulators are every value from −138 to 137 (one input
/// channel, weights ±1, small biases) on 20 output channels with multipliers below 0.5
/// (the single-step form of TFLite's requantization): powers of two, where exact ties and
/// the products just below zero (`x·m ≥ −2^30`: x = −1 with m = 2^30, whose sign the AVX2
/// form reads as the rounding's correction) occur, and others. Every tier equals generic.
#[test]
fn pointwise_accumulators_around_zero_match_generic() {
    let oc = 20;
    let mut p = Conv2dParams::simple(16, 16, 1, oc, 1, 1);
    (p.input_zp, p.output_zp) = (0, -2);
    let c = ConvCase {
        p,
        weights: (0..oc).map(|i| if i % 3 == 1 { -1 } else { 1 }).collect(),
        bias: (0..oc as i32).map(|i| i - 10).collect(),
        scales: (0..oc)
            .map(|i| match i % 5 {
                0..=2 => 2f32.powi(-2 - (i as i32 % 7)),
                3 => 0.3,
                _ => 0.49,
            })
            .collect(),
        input: (-128..=127).map(|v: i32| v as i8).collect(),
    };
    let want = run_conv(&generic(), &c);
    assert!(want.iter().any(|&v| v < -2) && want.iter().any(|&v| v > -2));
    for t in simd_tiers() {
        assert!(run_conv(&t, &c) == want, "tier {}", t.tier());
    }
}

/// Depthwise 3×3 at BlazeFace's channel counts, whose last chunks run two, four or eight
/// pixels per vector (at most 32 channels: pairs; 16: quads; 8: octets; 33–48: pairs and one
/// of the others), stride 1 and 2, widths that
/// leave a partial group, with power-of-two multipliers, where exact ties are frequent: every
/// tier equals generic with either rounding of ties, and with the `f32` requantization.
#[test]
fn depthwise_ties_on_narrow_chunks_match_generic() {
    let cases = [
        (24, 1, 3),
        (28, 2, 5),
        (88, 1, 2),
        (36, 1, 4),
        (42, 2, 3),
        (12, 1, 2),
        (72, 2, 4),
        (80, 1, 3),
        // Groups that are whole pixels: two (32), four (16) or eight (8) adjacent pixels
        // per load.
        (32, 1, 3),
        (16, 1, 2),
        (96, 1, 3),
        (8, 1, 3),
        (8, 2, 2),
        // Eight pixels a vector of up to 8 channels: alone (5), after 32 (40), after a full
        // chunk (71).
        (5, 1, 3),
        (40, 1, 2),
        (71, 2, 3),
    ];
    for (ch, stride, e) in cases {
        let mut p = DepthwiseParams::same(11, 21, ch, 3, stride);
        (p.input_zp, p.output_zp) = (-5, 7);
        for (upward, f32_requant) in [(false, false), (true, false), (false, true)] {
            p.requant_f32 = f32_requant;
            let c = DwCase {
                p,
                weights: pseudo_random_i8(p.weight_len(), 13 + ch as u32),
                bias: (0..ch as i32).map(|i| i * 7 - 90).collect(),
                scales: vec![2f32.powi(-e); ch],
                input: pseudo_random_i8(p.input_len(), 14 + ch as u32),
                upward,
            };
            let want = run_dw(&generic(), &c);
            for t in simd_tiers() {
                assert!(
                    run_dw(&t, &c) == want,
                    "{ch} channels, upward {upward}, f32 {f32_requant}: tier {}",
                    t.tier()
                );
            }
        }
    }
}

/// Depthwise 3×3 and 5×5 layers whose last chunk holds at most 8 channels (the AVX2 tier's
/// half chunks, which join the two halves of the 16-channel layout into one vector), with a
/// different multiplier per channel in each requantization form: all below 0.5 (the
/// single-step form), spanning 1/1024 to 2 (the two-step form, with left shifts), and `f32`;
/// ties either way. Every tier equals generic.
#[test]
fn depthwise_half_chunks_in_every_form_match_generic() {
    for ch in [5, 8, 24, 40, 72] {
        for (k, stride) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
            let mut p = DepthwiseParams::same(9, 13, ch, k, stride);
            (p.input_zp, p.output_zp) = (3, -9);
            let forms: [(&str, Vec<f32>, bool); 3] = [
                (
                    "single-step",
                    (0..ch).map(|i| 0.002 * (1.0 + (i % 7) as f32)).collect(),
                    false,
                ),
                (
                    "two-step",
                    (0..ch).map(|i| 2f32.powi(i as i32 % 12 - 10)).collect(),
                    false,
                ),
                (
                    "f32",
                    (0..ch).map(|i| 0.002 * (1.0 + (i % 5) as f32)).collect(),
                    true,
                ),
            ];
            for (form, scales, f32_requant) in forms {
                for upward in [false, true] {
                    p.requant_f32 = f32_requant;
                    let c = DwCase {
                        p,
                        weights: pseudo_random_i8(p.weight_len(), 31 + ch as u32),
                        bias: (0..ch as i32).map(|i| i * 37 - 400).collect(),
                        scales: scales.clone(),
                        input: pseudo_random_i8(p.input_len(), 32 + ch as u32),
                        upward,
                    };
                    let want = run_dw(&generic(), &c);
                    for t in simd_tiers() {
                        assert!(
                            run_dw(&t, &c) == want,
                            "{ch} channels, {k}×{k} stride {stride}, {form}, upward {upward}: \
                             tier {}",
                            t.tier()
                        );
                    }
                }
            }
        }
    }
}

/// Max pools with windows of more cells than the SIMD tiers gather at a time (AVX2: 25), so
/// that a window's maximum is taken over several groups: 6 × 5 and 7 × 7 (a global pool of a
/// 7 × 7 image), with padding and without, at channel counts with and without vector tails,
/// and a narrow activation clamp. Every tier equals generic.
#[test]
fn max_pool_large_windows_match_generic() {
    for channels in [16, 20, 33, 70] {
        for (k_h, k_w, stride, pad, act) in [
            (7, 7, 1, 0, (-128, 127)),
            (6, 5, 2, 2, (-128, 127)),
            (7, 7, 3, 3, (-20, 90)),
        ] {
            let (in_h, in_w) = (7, 9);
            let p = PoolParams {
                batch: 1,
                in_h,
                in_w,
                channels,
                out_h: (in_h + 2 * pad - k_h) / stride + 1,
                out_w: (in_w + 2 * pad - k_w) / stride + 1,
                k_h,
                k_w,
                stride_h: stride,
                stride_w: stride,
                pad_top: pad,
                pad_left: pad,
                act_min: act.0,
                act_max: act.1,
            };
            let input = pseudo_random_i8(in_h * in_w * channels, 41 + channels as u32);
            let mut want = vec![0i8; p.out_h * p.out_w * channels];
            generic().max_pool_i8(&p, &input, &mut want);
            for t in simd_tiers() {
                let mut got = vec![0i8; want.len()];
                t.max_pool_i8(&p, &input, &mut got);
                assert!(
                    got == want,
                    "{k_h}×{k_w} stride {stride} pad {pad}, {channels} channels: tier {}",
                    t.tier()
                );
            }
        }
    }
}

#[test]
fn conv_reference_hand_value() {
    // 1×1×2 input [10, -20], zp 5; one 1×1 filter [3, -4]; bias 100; multiplier 0.5; out zp -3.
    let mut p = Conv2dParams::simple(1, 1, 2, 1, 1, 1);
    p.input_zp = 5;
    p.output_zp = -3;
    let input = [10i8, -20];
    // acc = (10-5)·3 + (-20-5)·(-4) + 100 = 15 + 100 + 100 = 215; ·0.5 = 107.5 → 108; −3 → 105.
    for t in Tier::supported() {
        let table = KernelTable::for_tier(t).unwrap();
        let packed = PackedConv::new(t, &p, &[3, -4], Some(&[100]), 1.0, &[0.5], 1.0);
        let mut out = [0i8; 1];
        let mut scratch = vec![0u8; packed.scratch_bytes()];
        table.conv2d_i8(&packed, &input, &mut out, &mut scratch);
        assert_eq!(out, [105], "tier {t}");
    }
}

#[test]
fn conv_f32_requantization_hand_values() {
    // As above with "requantization": "f32": 107.5 is a tie, to even → 108 − 3 = 105; with
    // bias 98, 106.5 → 106 (TFLite: 107) − 3 = 103.
    let mut p = Conv2dParams::simple(1, 1, 2, 1, 1, 1);
    (p.input_zp, p.output_zp, p.requant_f32) = (5, -3, true);
    for t in Tier::supported() {
        let table = KernelTable::for_tier(t).unwrap();
        for (bias, want) in [(100, 105), (98, 103)] {
            let packed = PackedConv::new(t, &p, &[3, -4], Some(&[bias]), 1.0, &[0.5], 1.0);
            let mut out = [0i8; 1];
            let mut scratch = vec![0u8; packed.scratch_bytes()];
            table.conv2d_i8(&packed, &[10, -20], &mut out, &mut scratch);
            assert_eq!(out, [want], "tier {t}, bias {bias}");
        }
    }
}

#[test]
fn add_reference_hand_value() {
    // Same scales: 0.5·(a − zp1) + 0.5·(b − zp2) with out scale 0.5 → a + b (zps 0).
    let q = AddQuant::new(0.5, 0, 0.5, 0, 0.5, 0, -128, 127);
    assert_eq!(q.apply(3, 4), 7);
    assert_eq!(q.apply(100, 100), 127);
    assert_eq!(q.apply(-100, -100), -128);
    // Output scale twice the inputs': (3 + 4)/2 = 3.5 → 4 (ties away from zero).
    let q = AddQuant::new(0.5, 0, 0.5, 0, 1.0, 0, -128, 127);
    assert_eq!(q.apply(3, 4), 4);
    assert_eq!(q.apply(-3, -4), -4);
}

#[test]
fn add16_reference_hand_values() {
    // Equal scales: a + b, exactly (the multipliers are powers of two).
    let q = Add16Quant::new(0.5, 0, 0.5, 0, 0.5, 0, -128, 127).unwrap();
    assert_eq!(q.multipliers(), (16384, 16384, 14));
    assert_eq!(q.apply(3, 4), 7);
    assert_eq!(q.apply(100, 100), 127);
    assert_eq!(q.apply(-100, -100), -128);
    // Output scale twice the inputs': (3 + 4)/2 = 3.5 → 4, (−3 − 4)/2 = −3.5 → −3 (ties up).
    let q = Add16Quant::new(0.5, 0, 0.5, 0, 1.0, 0, -128, 127).unwrap();
    assert_eq!(q.apply(3, 4), 4);
    assert_eq!(q.apply(-3, -4), -3);
    // Zero points and a relu clamp: 0.1·(20 − 10) + 0.2·(5 − (−5)) = 3 → 3/0.1 + 7 = 37.
    let q = Add16Quant::new(0.1, 10, 0.2, -5, 0.1, 7, 7, 127).unwrap();
    assert_eq!(q.apply(20, 5), 37);
    assert_eq!(q.apply(-100, -100), 7);
    // A ratio of 128 or more needs a shift below 8; 127 still fits (shift 8).
    assert!(Add16Quant::new(128.0, 0, 1.0, 0, 1.0, 0, -128, 127).is_none());
    let q = Add16Quant::new(127.0, 0, 1.0, 0, 1.0, 0, -128, 127).unwrap();
    assert_eq!(q.multipliers(), (32512, 256, 8));
    // Zero points outside int8 and non-positive scales are refused too.
    assert!(Add16Quant::new(1.0, 300, 1.0, 0, 1.0, 0, -128, 127).is_none());
    assert!(Add16Quant::new(1.0, 0, 0.0, 0, 1.0, 0, -128, 127).is_none());
}

#[test]
#[should_panic(expected = "packed for tier generic")]
fn tier_mismatch_panics() {
    let Some(simd) = simd_tiers().into_iter().next() else {
        panic!("packed for tier generic (no SIMD tier here)")
    };
    let p = Conv2dParams::simple(1, 1, 1, 1, 1, 1);
    let packed = PackedConv::new(Tier::Generic, &p, &[1], None, 1.0, &[1.0], 1.0);
    simd.conv2d_i8(&packed, &[0], &mut [0], &mut []);
}

/// The `f32` requantization with accumulators whose scaled value leaves the `i32` range (the
/// conversion then gives `i32::MIN` on either side): every tier clamps like the reference,
/// with and without the fused residual add (48 channels: the VNNI GEMM fuses it).
#[test]
fn f32_requantization_saturates_extreme_accumulators() {
    let mut p = Conv2dParams::simple(3, 5, 8, 48, 1, 1);
    (p.input_zp, p.output_zp, p.requant_f32) = (3, -20, true);
    let c = ConvCase {
        p,
        weights: pseudo_random_i8(p.weight_len(), 31),
        bias: (0..48)
            .map(|i| if i % 2 == 0 { 1 << 30 } else { -(1 << 30) })
            .collect(),
        scales: vec![16.0; 48],
        input: pseudo_random_i8(p.input_len(), 32),
    };
    let want = run_conv(&generic(), &c);
    assert!(want.iter().step_by(2).all(|&v| v == 127));
    assert!(want.iter().skip(1).step_by(2).all(|&v| v == -128));
    let q = Add16Quant::new(0.05, -20, 0.05, 7, 0.1, -3, -128, 127).expect("scales fit");
    let pad = ChannelPadded {
        channels: 48,
        b_channels: 48,
        fill: 7,
    };
    let skip = pseudo_random_i8(p.output_len(), 33);
    let mut want_add = vec![0i8; want.len()];
    generic().add16_i8_padded(&q, &pad, &want, &skip, &mut want_add);
    for t in simd_tiers() {
        assert_eq!(run_conv(&t, &c), want, "tier {}", t.tier());
        let packed = PackedConv::new(t.tier(), &p, &c.weights, Some(&c.bias), 1.0, &c.scales, 1.0);
        let mut got = vec![0i8; want.len()];
        let mut scratch = vec![0u8; packed.scratch_bytes()];
        let r = Residual {
            add: q,
            pad,
            skip: &skip,
        };
        t.conv2d_add16_i8(&packed, &c.input, &r, &mut got, &mut scratch);
        assert_eq!(got, want_add, "conv+add, tier {}", t.tier());
    }
}

/// Accumulators just inside the bound under which the VNNI tier skips the `f32` form's upper
/// clamp (`|acc × scale| < 2^30`: about ±5.4·10^8 here) and just past it (the clamp kept,
/// products up to 1.3·10^9): every tier saturates like the reference, in the GEMM and in the
/// depthwise rows (stride 1 and 2, a full chunk and a narrow one).
#[test]
fn f32_requantization_near_the_product_bound() {
    for (big, scale) in [(1i32 << 28, 2.0f32), ((1 << 29) + (1 << 27), 2.0)] {
        let sign = |i: usize| if i.is_multiple_of(2) { big } else { -big };
        let mut p = Conv2dParams::simple(3, 5, 8, 48, 1, 1);
        (p.input_zp, p.output_zp, p.requant_f32) = (3, -20, true);
        let c = ConvCase {
            p,
            weights: pseudo_random_i8(p.weight_len(), 41),
            bias: (0..48).map(sign).collect(),
            scales: vec![scale; 48],
            input: pseudo_random_i8(p.input_len(), 42),
        };
        let want = run_conv(&generic(), &c);
        assert!(want.iter().step_by(2).all(|&v| v == 127), "bias {big}");
        assert!(
            want.iter().skip(1).step_by(2).all(|&v| v == -128),
            "bias {big}"
        );
        for t in simd_tiers() {
            assert_eq!(
                run_conv(&t, &c),
                want,
                "conv, bias {big}, tier {}",
                t.tier()
            );
        }
        for stride in [1, 2] {
            let mut p = DepthwiseParams::same(5, 9, 70, 3, stride);
            (p.input_zp, p.output_zp, p.requant_f32) = (-7, 11, true);
            let c = DwCase {
                p,
                weights: pseudo_random_i8(p.weight_len(), 43),
                bias: (0..70).map(sign).collect(),
                scales: vec![scale; 70],
                input: pseudo_random_i8(p.input_len(), 44),
                upward: false,
            };
            let want = run_dw(&generic(), &c);
            let saturated = |(i, &v): (usize, &i8)| v == if sign(i % 70) > 0 { 127 } else { -128 };
            assert!(
                want.iter().enumerate().all(saturated),
                "depthwise, bias {big}, stride {stride}"
            );
            for t in simd_tiers() {
                let got = run_dw(&t, &c);
                assert_eq!(
                    got,
                    want,
                    "depthwise, bias {big}, stride {stride}, tier {}",
                    t.tier()
                );
            }
        }
    }
}
