//! Every SIMD tier is bit-exact with the scalar reference on every int8 kernel.
//!
//! Shapes are random with channel counts that are not multiples of the vector widths, zero
//! points include the extremes −128 and 127, and the effective requantization multipliers
//! span 2^-24 … 2^4 (including > 1).

use outpost_kernels::{
    Add16Quant, AddQuant, ChannelPadded, Conv2dParams, DepthwiseParams, FUSED_ADD_MIN_CHANNELS,
    FcParams, KernelTable, PackedConv, PackedFc, PoolParams, Residual, ResizeOptions, Tier,
    conv_output_size, pseudo_random_i8,
};
use proptest::prelude::*;

mod common;
use common::{ConvCase, DwCase, generic, run_conv, run_dw, simd_tiers};

/// Channel counts around the vector widths (32 last: a 256-bit depthwise group that is a whole pixel).
const ODD_CHANNELS: [usize; 10] = [1, 2, 3, 7, 16, 17, 33, 64, 65, 32];

fn zero_point() -> impl Strategy<Value = i32> {
    prop_oneof![Just(-128), Just(127), Just(0), -128i32..=127]
}

/// Effective multipliers `2^e · (1 + f)`, e in −24..=4.
fn multipliers(n: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec((-24i32..=4, 0.0f32..1.0), n).prop_map(|v| {
        v.into_iter()
            .map(|(e, f)| 2f32.powi(e) * (1.0 + f))
            .collect()
    })
}

/// Any multipliers, or only ones below 0.5 (no left shift, right shift ≥ 1: the SIMD tiers'
/// single-step requantization path), or powers of two from 1/4 to 1/256 (exact halves are
/// frequent then, so every rounding rule for ties is exercised).
fn any_multipliers(n: usize) -> impl Strategy<Value = Vec<f32>> {
    prop_oneof![
        multipliers(n),
        prop::collection::vec(2i32..=8, n)
            .prop_map(|v| v.into_iter().map(|e| 2f32.powi(-e)).collect()),
        prop::collection::vec((-24i32..=-2, 0.0f32..1.0), n).prop_map(|v| v
            .into_iter()
            .map(|(e, f)| 2f32.powi(e) * (1.0 + f))
            .collect())
    ]
}

/// An activation range in the output domain: full, relu-like from the zero point, or narrow.
fn act_range(zp: i32) -> impl Strategy<Value = (i32, i32)> {
    prop_oneof![
        Just((-128, 127)),
        Just((zp.clamp(-128, 127), 127)),
        (-128i32..=0, 0i32..=127)
    ]
}

fn bytes(n: usize) -> impl Strategy<Value = Vec<i8>> {
    prop::collection::vec(any::<i8>(), n)
}

fn biases(n: usize) -> impl Strategy<Value = Vec<i32>> {
    prop::collection::vec(prop_oneof![-1000i32..1000, -200_000i32..200_000], n)
}

/// Which convolutions a [`conv_case`] draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConvKind {
    /// 1×1, stride 1, no padding, one group.
    Pointwise,
    /// Any kernel, stride, dilation, padding and groups.
    General,
    /// First layers: one group, few input channels, kernels up to 5×5, horizontal dilation 1
    /// (the VNNI tier reads these straight from the padded input, without im2col).
    FewChannels,
}

fn conv_case(kind: ConvKind) -> impl Strategy<Value = ConvCase> {
    let pointwise = kind == ConvKind::Pointwise;
    let shape = if kind == ConvKind::FewChannels {
        (
            1usize..=2,
            1usize..=20,
            1usize..=20,
            Just(1usize),
            prop::sample::select(&[1usize, 2, 3, 4, 5, 7, 12, 16, 17][..]),
            1usize..=40,
            1usize..=5,
            1usize..=5,
            1usize..=2,
            1usize..=2,
        )
            .boxed()
    } else if pointwise {
        (
            1usize..=2,
            1usize..=9,
            1usize..=9,
            Just(1usize),
            prop::sample::select(&ODD_CHANNELS[..]),
            1usize..=150,
            Just(1usize),
            Just(1usize),
            Just(1usize),
            Just(1usize),
        )
            .boxed()
    } else {
        (
            1usize..=2,
            1usize..=7,
            1usize..=7,
            1usize..=3,
            prop::sample::select(&ODD_CHANNELS[..7]),
            1usize..=40,
            1usize..=4,
            1usize..=4,
            1usize..=3,
            1usize..=2,
        )
            .boxed()
    };
    (
        shape,
        0usize..4,
        0usize..4,
        0usize..4,
        0usize..4,
        zero_point(),
        zero_point(),
    )
        .prop_flat_map(
            move |(
                (batch, h, w, groups, icg, ocg, kh, kw, stride, dil),
                pt,
                pb,
                pl,
                pr,
                izp,
                ozp,
            )| {
                let (pt, pb, pl, pr) = if pointwise {
                    (0, 0, 0, 0)
                } else {
                    (pt % kh, pb % kh, pl % kw, pr % kw)
                };
                let mut p = Conv2dParams::simple(h, w, icg * groups, ocg * groups, kh, kw);
                p.batch = batch;
                p.groups = groups;
                p.stride_h = stride;
                p.stride_w = if pointwise { 1 } else { 1 + (stride % 2) };
                p.dilation_h = dil;
                p.dilation_w = if kind == ConvKind::FewChannels {
                    1
                } else {
                    dil
                };
                p.pad_top = pt;
                p.pad_left = pl;
                p.out_h = conv_output_size(h, kh, p.stride_h, dil, pt, pb);
                p.out_w = conv_output_size(w, kw, p.stride_w, p.dilation_w, pl, pr);
                p.input_zp = izp;
                p.output_zp = ozp;
                (
                    Just(p),
                    act_range(ozp),
                    bytes(p.weight_len()),
                    biases(p.out_c),
                    any_multipliers(p.out_c),
                    bytes(p.input_len()),
                    any::<bool>(),
                )
            },
        )
        .prop_map(
            |(mut p, (lo, hi), weights, bias, scales, input, f32_requant)| {
                p.act_min = lo;
                p.act_max = hi;
                p.requant_f32 = f32_requant;
                ConvCase {
                    p,
                    weights,
                    bias,
                    scales,
                    input,
                }
            },
        )
}

fn dw_case() -> impl Strategy<Value = DwCase> {
    let kernel = prop_oneof![
        Just((3usize, 3usize)),
        Just((5, 5)),
        (1usize..=7, 1usize..=7)
    ];
    // 8 and 40: groups of eight 8-channel pixels a vector, alone and after 32 channels.
    let dw_channels = [&ODD_CHANNELS[..], &[8, 40]].concat();
    let channels = prop_oneof![prop::sample::select(dw_channels), 1usize..=200];
    (
        1usize..=2,
        1usize..=9,
        1usize..=9,
        channels,
        kernel,
        1usize..=2,
        1usize..=2,
        prop_oneof![Just(1usize), Just(1), Just(2), Just(3)],
        0usize..7,
        0usize..7,
        zero_point(),
        zero_point(),
    )
        .prop_flat_map(
            |(batch, h, w, c, (kh, kw), stride, dil, mult, pt, pl, izp, ozp)| {
                let mut p = DepthwiseParams::same(h, w, c, 3, 1);
                p.batch = batch;
                p.k_h = kh;
                p.k_w = kw;
                p.stride_h = stride;
                // An independent horizontal stride (1..=3) derived from the other draws.
                p.stride_w = 1 + (stride + mult + pt) % 3;
                p.dilation_h = dil;
                p.dilation_w = if kh == kw { dil } else { 1 };
                p.multiplier = mult;
                p.pad_top = pt % kh;
                p.pad_left = pl % kw;
                p.out_h = conv_output_size(h, kh, stride, p.dilation_h, p.pad_top, kh / 2);
                p.out_w = conv_output_size(w, kw, p.stride_w, p.dilation_w, p.pad_left, kw / 2);
                p.input_zp = izp;
                p.output_zp = ozp;
                (
                    Just(p),
                    act_range(ozp),
                    bytes(p.weight_len()),
                    biases(p.out_c()),
                    any_multipliers(p.out_c()),
                    bytes(p.input_len()),
                    any::<bool>(),
                    any::<bool>(),
                )
            },
        )
        .prop_map(
            |(mut p, (lo, hi), weights, bias, scales, input, upward, f32_requant)| {
                p.act_min = lo;
                p.act_max = hi;
                p.requant_f32 = f32_requant;
                DwCase {
                    p,
                    weights,
                    bias,
                    scales,
                    input,
                    upward,
                }
            },
        )
}

/// Boundaries of `n` rows cut into `parts` nearly equal runs (some empty when rows are few).
fn cuts(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    (0..parts)
        .map(|i| i * n / parts..(i + 1) * n / parts)
        .collect()
}

/// Bytes after an output that a kernel must leave as they are.
const GUARD: usize = 64;

/// A convolution run in slices into one output: `units` output units (rows or pixels) of
/// `unit_in` input and `unit_out` output bytes cut into `parts`, `slice` giving each slice's
/// convolution and the input units it reads; `None` where a slice has none. The slices run
/// last first, so that a slice writing past its end (a whole store of a partial channel
/// block meant for rows the same call writes later) spoils the slice after it, and the bytes
/// after the output are checked untouched.
fn run_conv_sliced(
    table: &KernelTable,
    c: &ConvCase,
    (units, unit_in, unit_out): (usize, usize, usize),
    parts: usize,
    slice: impl Fn(&PackedConv, std::ops::Range<usize>) -> Option<(PackedConv, std::ops::Range<usize>)>,
) -> Option<Vec<i8>> {
    let packed = c.pack(table);
    let len = c.p.output_len();
    let mut out = vec![0x5Ai8; len + GUARD];
    for r in cuts(units, parts)
        .into_iter()
        .filter(|r| !r.is_empty())
        .rev()
    {
        let (sliced, input) = slice(&packed, r.clone())?;
        let mut scratch = vec![0u8; sliced.scratch_bytes()];
        table.conv2d_i8(
            &sliced,
            &c.input[input.start * unit_in..input.end * unit_in],
            &mut out[r.start * unit_out..r.end * unit_out],
            &mut scratch,
        );
    }
    assert!(
        out[len..].iter().all(|&b| b == 0x5A),
        "written past the output"
    );
    out.truncate(len);
    Some(out)
}

/// A convolution run as row slices ([`PackedConv::rows`]), each on its input rows, into one
/// output; `None` where a slice reads no input row (the caller skips the case).
fn run_conv_in_rows(table: &KernelTable, c: &ConvCase, parts: usize) -> Option<Vec<i8>> {
    let units = (c.p.out_h, c.p.in_w * c.p.in_c, c.p.out_w * c.p.out_c);
    run_conv_sliced(table, c, units, parts, |p, rows| p.rows(rows))
}

/// A pointwise convolution run as pixel slices ([`PackedConv::pixels`], cuts that may fall
/// inside an image row), each on its own input pixels, into one output.
fn run_conv_in_pixels(table: &KernelTable, c: &ConvCase, parts: usize) -> Vec<i8> {
    let units = (c.p.out_h * c.p.out_w, c.p.in_c, c.p.out_c);
    run_conv_sliced(table, c, units, parts, |p, px| {
        Some((p.pixels(px.clone())?, px))
    })
    .expect("a pointwise convolution")
}

/// As [`run_conv_in_rows`] for a depthwise convolution.
fn run_dw_in_rows(table: &KernelTable, c: &DwCase, parts: usize) -> Option<Vec<i8>> {
    let packed = c.pack(table);
    let row_in = c.p.in_w * c.p.in_c;
    let row_out = c.p.out_w * c.p.out_c();
    let mut out = vec![0i8; c.p.output_len()];
    for rows in cuts(c.p.out_h, parts).into_iter().filter(|r| !r.is_empty()) {
        let (slice, input_rows) = packed.rows(rows.clone())?;
        let mut scratch = vec![0u8; slice.scratch_bytes()];
        table.depthwise_i8(
            &slice,
            &c.input[input_rows.start * row_in..input_rows.end * row_in],
            &mut out[rows.start * row_out..rows.end * row_out],
            &mut scratch,
        );
    }
    Some(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Pixel slices of a pointwise convolution, cut anywhere (also inside an image row), put
    /// together are the whole convolution, bit for bit, on every tier.
    #[test]
    fn pointwise_pixel_slices_match_whole(c in conv_case(ConvKind::Pointwise), parts in 2usize..=5) {
        prop_assume!(c.p.batch == 1);
        for t in Tier::supported().map(|t| KernelTable::for_tier(t).unwrap()) {
            let want = run_conv(&t, &c);
            prop_assert_eq!(&run_conv_in_pixels(&t, &c, parts), &want, "tier {}", t.tier());
        }
    }


    /// Output-feature slices of a fully connected layer of one row (what a session with
    /// several threads runs in parallel), cut anywhere, put together are the whole layer, bit
    /// for bit, on every tier.
    #[test]
    fn fully_connected_output_slices_match_whole(
        (p, weights, bias, scales, input) in (1usize..=300, 2usize..=90, zero_point(), zero_point(), act_range(0))
            .prop_flat_map(|(inf, outf, izp, ozp, act)| {
                let p = FcParams { batch: 1, in_features: inf, out_features: outf, input_zp: izp, output_zp: ozp, act_min: act.0, act_max: act.1 };
                (Just(p), bytes(inf * outf), biases(outf), prop_oneof![multipliers(1), any_multipliers(outf)], bytes(inf))
            }),
        cut in 0.0f64..1.0,
    ) {
        let n = p.out_features;
        let at = ((n as f64 * cut) as usize).clamp(1, n - 1);
        for t in Tier::supported().map(|t| KernelTable::for_tier(t).unwrap()) {
            let packed = PackedFc::new(t.tier(), &p, &weights, Some(&bias), 1.0, &scales, 1.0);
            let mut want = vec![0i8; n];
            let mut scratch = vec![0u8; packed.scratch_bytes()];
            t.fully_connected_i8(&packed, &input, &mut want, &mut scratch);
            let mut got = vec![0i8; n];
            for r in [0..at, at..n] {
                let slice = packed.outputs(r.clone()).expect("a batch of one slices");
                prop_assert_eq!(slice.params().out_features, r.len());
                if t.tier() != Tier::Generic {
                    prop_assert!(slice.outputs(0..1).is_none(), "a SIMD slice is not cut again");
                }
                let mut scratch = vec![0u8; slice.scratch_bytes()];
                t.fully_connected_i8(&slice, &input, &mut got[r], &mut scratch);
            }
            prop_assert_eq!(&got, &want, "tier {}", t.tier());
        }
    }

    /// Row slices (what a session with several threads runs in parallel) put together are the
    /// whole convolution, bit for bit, on every tier.
    #[test]
    fn conv2d_row_slices_match_whole(c in conv_case(ConvKind::General), parts in 2usize..=4) {
        prop_assume!(c.p.batch == 1);
        for t in Tier::supported().map(|t| KernelTable::for_tier(t).unwrap()) {
            let want = run_conv(&t, &c);
            if let Some(got) = run_conv_in_rows(&t, &c, parts) {
                prop_assert_eq!(&got, &want, "tier {}", t.tier());
            }
        }
    }

    #[test]
    fn depthwise_row_slices_match_whole(c in dw_case(), parts in 2usize..=4) {
        prop_assume!(c.p.batch == 1);
        for t in Tier::supported().map(|t| KernelTable::for_tier(t).unwrap()) {
            let want = run_dw(&t, &c);
            if let Some(got) = run_dw_in_rows(&t, &c, parts) {
                prop_assert_eq!(&got, &want, "tier {}", t.tier());
            }
        }
    }

    #[test]
    fn conv2d_tiers_match_generic(c in conv_case(ConvKind::General)) {
        let want = run_conv(&generic(), &c);
        for t in simd_tiers() {
            prop_assert_eq!(&run_conv(&t, &c), &want, "tier {}", t.tier());
        }
    }

    #[test]
    fn few_channel_conv_tiers_match_generic(c in conv_case(ConvKind::FewChannels)) {
        let want = run_conv(&generic(), &c);
        for t in simd_tiers() {
            prop_assert_eq!(&run_conv(&t, &c), &want, "tier {}", t.tier());
        }
    }

    #[test]
    fn pointwise_tiers_match_generic(c in conv_case(ConvKind::Pointwise)) {
        prop_assume!(c.p.is_pointwise());
        let want = run_conv(&generic(), &c);
        for t in simd_tiers() {
            prop_assert_eq!(&run_conv(&t, &c), &want, "tier {}", t.tier());
        }
    }

    #[test]
    fn depthwise_tiers_match_generic(c in dw_case()) {
        let want = run_dw(&generic(), &c);
        for t in simd_tiers() {
            prop_assert_eq!(&run_dw(&t, &c), &want, "tier {}", t.tier());
        }
    }

    #[test]
    fn fully_connected_tiers_match_generic(
        (p, weights, bias, scales, input) in (1usize..=5, 1usize..=300, 1usize..=90, zero_point(), zero_point())
            .prop_flat_map(|(batch, inf, outf, izp, ozp)| {
                let p = FcParams { batch, in_features: inf, out_features: outf, input_zp: izp, output_zp: ozp, act_min: -128, act_max: 127 };
                (Just(p), bytes(inf * outf), biases(outf), prop_oneof![multipliers(1), any_multipliers(outf)], bytes(batch * inf))
            })
    ) {
        let run = |t: &KernelTable| {
            let packed = PackedFc::new(t.tier(), &p, &weights, Some(&bias), 1.0, &scales, 1.0);
            let mut out = vec![0i8; p.batch * p.out_features];
            let mut scratch = vec![0u8; packed.scratch_bytes()];
            t.fully_connected_i8(&packed, &input, &mut out, &mut scratch);
            out
        };
        let want = run(&generic());
        for t in simd_tiers() {
            prop_assert_eq!(&run(&t), &want, "tier {}", t.tier());
        }
    }

    #[test]
    fn add_tiers_match_generic(
        (a, b) in (0usize..=200).prop_flat_map(|n| (bytes(n), bytes(n))),
        zps in (zero_point(), zero_point(), zero_point()),
        scales in (-8i32..=4, -8i32..=4, -8i32..=4, 0.0f32..1.0),
        act in act_range(0),
    ) {
        let s = |e: i32| 2f32.powi(e) * (1.0 + scales.3);
        let q = AddQuant::new(s(scales.0), zps.0, s(scales.1), zps.1, s(scales.2), zps.2, act.0, act.1);
        let mut want = vec![0i8; a.len()];
        generic().add_i8(&q, &a, &b, &mut want);
        for t in simd_tiers() {
            let mut got = vec![0i8; a.len()];
            t.add_i8(&q, &a, &b, &mut got);
            prop_assert_eq!(&got, &want, "tier {}", t.tier());
        }
    }

    /// The 16-bit-multiplier add: lengths around the 32-lane blocks, scale ratios from 2^-14
    /// to 64 (shifts from 28 down to 9), extreme zero points, clamps.
    #[test]
    fn add16_tiers_match_generic(
        (a, b) in prop_oneof![0usize..=70, 90usize..=300].prop_flat_map(|n| (bytes(n), bytes(n))),
        zps in (zero_point(), zero_point(), zero_point()),
        scales in (-7i32..=7, -7i32..=7, -5i32..=14, 0.0f32..1.0, 0.0f32..1.0),
        act in act_range(0),
    ) {
        let s = |e: i32, f: f32| 2f32.powi(e) * (1.0 + f);
        let so = 2f32.powi(scales.0.max(scales.1) + scales.2);
        let q = Add16Quant::new(
            s(scales.0, scales.3), zps.0, s(scales.1, scales.4), zps.1, so, zps.2, act.0, act.1,
        ).expect("ratios below 128 are representable");
        let mut want = vec![0i8; a.len()];
        generic().add16_i8(&q, &a, &b, &mut want);
        for t in simd_tiers() {
            let mut got = vec![0i8; a.len()];
            t.add16_i8(&q, &a, &b, &mut got);
            prop_assert_eq!(&got, &want, "tier {}", t.tier());
        }
    }

    /// The 16-bit-multiplier add is within one step of the exact real sum, rounded, wherever
    /// that sum is inside the output range (and clamped alike outside it).
    #[test]
    fn add16_is_within_one_step_of_the_real_sum(
        a in any::<i8>(), b in any::<i8>(),
        zps in (zero_point(), zero_point(), zero_point()),
        scales in (-7i32..=7, -7i32..=7, 0.0f32..1.0, 0.0f32..1.0, -5i32..=14),
    ) {
        let (s1, s2) = (
            2f32.powi(scales.0) * (1.0 + scales.2),
            2f32.powi(scales.1) * (1.0 + scales.3),
        );
        let so = 2f32.powi(scales.0.max(scales.1) + scales.4);
        let q = Add16Quant::new(s1, zps.0, s2, zps.1, so, zps.2, -128, 127).unwrap();
        let real = (s1 as f64 * (a as i32 - zps.0) as f64 + s2 as f64 * (b as i32 - zps.1) as f64)
            / so as f64 + zps.2 as f64;
        let exact = real.round().clamp(-128.0, 127.0);
        let got = q.apply(a, b) as f64;
        prop_assert!((got - exact).abs() <= 1.0, "{got} vs {real}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Add with a channel-padded second operand (either operand order through `swapped`):
    /// every tier equals generic, and generic equals the add of the explicitly padded tensor.
    /// Up to 300 pixels: narrow pixels fill several of the AVX2 tier's padded runs.
    #[test]
    fn padded_add_tiers_match_generic_and_the_unfused_add(
        (pixels, b_channels, extra) in (prop_oneof![1usize..=40, 100usize..=300], 1usize..=70, 0usize..=40),
        (s1, z1, s2, z2, so, zo) in (0.01f32..0.2, -128i32..=127, 0.01f32..0.2, -128i32..=127, 0.01f32..0.2, -128i32..=127),
        act in act_range(0),
        swap in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let q = Add16Quant::new(s1, z1, s2, z2, so, zo, act.0, act.1).expect("scales fit");
        let q = if swap { q.swapped() } else { q };
        let channels = b_channels + extra;
        let pad = ChannelPadded { channels, b_channels, fill: z2 as i8 };
        let mut s = seed | 1;
        let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s as i8 };
        let a: Vec<i8> = (0..pixels * channels).map(|_| next()).collect();
        let b: Vec<i8> = (0..pixels * b_channels).map(|_| next()).collect();
        let mut want = vec![0i8; a.len()];
        generic().add16_i8_padded(&q, &pad, &a, &b, &mut want);
        let mut padded = vec![pad.fill; a.len()];
        generic().pad_i8(&b, [1, 1, pixels, b_channels], [(0, 0), (0, 0), (0, 0), (0, extra)], pad.fill, &mut padded);
        let mut unfused = vec![0i8; a.len()];
        generic().add16_i8(&q, &a, &padded, &mut unfused);
        prop_assert_eq!(&want, &unfused);
        for (&x, &y) in a.iter().zip(&padded) {
            prop_assert_eq!(q.swapped().apply(y, x), q.apply(x, y));
        }
        for t in simd_tiers() {
            let mut got = vec![0i8; a.len()];
            t.add16_i8_padded(&q, &pad, &a, &b, &mut got);
            prop_assert_eq!(&got, &want, "tier {}", t.tier());
        }
    }

    /// Convolution then int16 add of a (possibly channel-padded) skip operand in one call:
    /// every tier equals the generic convolution followed by the generic padded add, whether
    /// the tier fuses the add (VNNI, pointwise: in the GEMM epilogue) or not.
    #[test]
    fn conv_add_tiers_match_conv_then_add(
        c in prop_oneof![conv_case(ConvKind::Pointwise), conv_case(ConvKind::General)],
        (raw_b, full) in (any::<usize>(), any::<bool>()),
        (s1, z1, s2, z2, so, zo) in (0.01f32..0.2, -128i32..=127, 0.01f32..0.2, -128i32..=127, 0.01f32..0.2, -128i32..=127),
        act in act_range(0),
        seed in any::<u32>(),
    ) {
        let q = Add16Quant::new(s1, z1, s2, z2, so, zo, act.0, act.1).expect("scales fit");
        let out_c = c.p.out_c;
        let b_channels = if full { out_c } else { 1 + raw_b % out_c };
        let pad = ChannelPadded { channels: out_c, b_channels, fill: z2 as i8 };
        let skip = pseudo_random_i8(c.p.output_len() / out_c * b_channels, seed);
        let conv = run_conv(&generic(), &c);
        let mut want = vec![0i8; conv.len()];
        generic().add16_i8_padded(&q, &pad, &conv, &skip, &mut want);
        for t in std::iter::once(generic()).chain(simd_tiers()) {
            let packed = c.pack(&t);
            let fuses = t.tier() == Tier::Avx512Vnni && c.p.is_pointwise() && c.p.out_c > FUSED_ADD_MIN_CHANNELS;
            prop_assert_eq!(packed.fuses_add(), fuses);
            let mut got = vec![0x5Ai8; conv.len() + GUARD];
            let mut scratch = vec![0u8; packed.scratch_bytes()];
            let r = Residual { add: q, pad, skip: &skip };
            t.conv2d_add16_i8(&packed, &c.input, &r, &mut got[..conv.len()], &mut scratch);
            prop_assert!(got[conv.len()..].iter().all(|&b| b == 0x5A), "tier {}: written past the output", t.tier());
            prop_assert_eq!(&got[..conv.len()], &want[..], "tier {}", t.tier());
        }
    }

    /// Pad: any padding on every axis (channel padding as residual blocks use it, and
    /// spatial padding), channel counts across the 64-byte vector and its tail.
    #[test]
    fn pad_tiers_match_generic(
        shape in (1usize..=2, 1usize..=6, 1usize..=6, 1usize..=140),
        pads in prop::collection::vec((0usize..=3, 0usize..=3), 4),
        value in any::<i8>(),
        seed in any::<u64>(),
    ) {
        let shape = [shape.0, shape.1, shape.2, shape.3];
        let pads: [(usize, usize); 4] = core::array::from_fn(|i| pads[i]);
        let out_len: usize = (0..4).map(|i| shape[i] + pads[i].0 + pads[i].1).product();
        let mut s = seed | 1;
        let input: Vec<i8> = (0..shape.iter().product::<usize>())
            .map(|_| { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s as i8 })
            .collect();
        let mut want = vec![0i8; out_len];
        generic().pad_i8(&input, shape, pads, value, &mut want);
        for t in simd_tiers() {
            let mut got = vec![0i8; out_len];
            t.pad_i8(&input, shape, pads, value, &mut got);
            prop_assert_eq!(&got, &want, "tier {}", t.tier());
        }
    }

    /// Max pool: window 1–4, stride 1–3, padding on any side (padded cells excluded), channel
    /// counts across the 32- and 64-byte vectors and their tails, any activation clamp.
    #[test]
    fn max_pool_tiers_match_generic(
        (batch, in_h, in_w, channels) in (1usize..=2, 1usize..=9, 1usize..=9, 1usize..=140),
        (k_h, k_w, stride_h, stride_w) in (1usize..=4, 1usize..=4, 1usize..=3, 1usize..=3),
        pads in (0usize..=3, 0usize..=3, 0usize..=3, 0usize..=3),
        act in act_range(0),
        seed in any::<u64>(),
    ) {
        // Padding smaller than the window, so that every output has a valid cell or not.
        let (pt, pl, pb, pr) = (pads.0 % k_h, pads.1 % k_w, pads.2 % k_h, pads.3 % k_w);
        prop_assume!(in_h + pt + pb >= k_h && in_w + pl + pr >= k_w);
        let p = PoolParams {
            batch, in_h, in_w, channels,
            out_h: (in_h + pt + pb - k_h) / stride_h + 1,
            out_w: (in_w + pl + pr - k_w) / stride_w + 1,
            k_h, k_w, stride_h, stride_w,
            pad_top: pt, pad_left: pl,
            act_min: act.0, act_max: act.1,
        };
        let mut s = seed | 1;
        let input: Vec<i8> = (0..batch * in_h * in_w * channels)
            .map(|_| { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s as i8 })
            .collect();
        let mut want = vec![0i8; batch * p.out_h * p.out_w * channels];
        generic().max_pool_i8(&p, &input, &mut want);
        for t in simd_tiers() {
            let mut got = vec![0i8; want.len()];
            t.max_pool_i8(&p, &input, &mut got);
            prop_assert_eq!(&got, &want, "tier {}", t.tier());
        }
    }

    /// Global mean: channel counts around every tier's chunk (8, 32, 64, 128 channels), up to
    /// 300 pixels, inputs drawn around −128 and 127 and anywhere, any zero points and
    /// multipliers: every tier equals generic.
    #[test]
    fn global_mean_tiers_match_generic(
        batch in 1usize..=2,
        pixels in 1usize..=300,
        channels in prop_oneof![
            proptest::sample::select(ODD_CHANNELS.to_vec()),
            Just(129usize),
            Just(200usize),
            1usize..=300,
        ],
        bias in prop_oneof![Just(-128i32), Just(127), Just(0)],
        spread in 0u32..=8,
        seed in any::<u32>(),
        in_zp in zero_point(),
        out_zp in zero_point(),
        real in 1e-5f64..2.0,
    ) {
        // Values within about 2^spread of `bias` (clamped): near the extremes, or anywhere.
        let input: Vec<i8> = outpost_kernels::pseudo_random_i8(batch * pixels * channels, seed)
            .into_iter()
            .map(|x| (bias + ((x as i32) >> (8 - spread).min(7))).clamp(-128, 127) as i8)
            .collect();
        let r = outpost_kernels::quantize_multiplier(real);
        let mut want = vec![0i8; batch * channels];
        generic().global_mean_i8(&input, batch, pixels, channels, in_zp, r, out_zp, &mut want);
        for t in simd_tiers() {
            let mut got = vec![0i8; want.len()];
            t.global_mean_i8(&input, batch, pixels, channels, in_zp, r, out_zp, &mut got);
            prop_assert_eq!(&got, &want, "tier {}", t.tier());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Bilinear resize, up and down, every mapping option, channel counts across the 8- and
    /// 16-lane vectors and their tails: every tier equals generic (many outputs fall exactly
    /// half-way, so the rounding of ties is exercised), and so do its output rows run as
    /// slices.
    #[test]
    fn resize_bilinear_tiers_match_generic(
        (n, h, w, c) in (1usize..=2, 1usize..=6, 1usize..=6, prop::sample::select(&[1usize, 3, 7, 8, 9, 15, 16, 17, 24, 31, 33, 48, 70][..])),
        (out_h, out_w) in (1usize..=13, 1usize..=13),
        (align_corners, half_pixel_centers) in (any::<bool>(), any::<bool>()),
        seed in any::<u32>(),
        parts in 2usize..=4,
    ) {
        let o = ResizeOptions { align_corners, half_pixel_centers };
        let input = pseudo_random_i8(n * h * w * c, seed);
        let shape = [n, h, w, c];
        let mut want = vec![0i8; n * out_h * out_w * c];
        generic().resize_bilinear_i8(&input, shape, out_h, out_w, o, &mut want);
        for t in simd_tiers() {
            let mut got = vec![0x5Ai8; want.len() + GUARD];
            let len = want.len();
            t.resize_bilinear_i8(&input, shape, out_h, out_w, o, &mut got[..len]);
            prop_assert!(got[len..].iter().all(|&b| b == 0x5A), "tier {}: written past the output", t.tier());
            prop_assert_eq!(&got[..len], &want[..], "tier {}", t.tier());
        }
        // Row slices (a session's threads), last first, put together: the whole, every tier.
        let (rows, row) = (n * out_h, out_w * c);
        for t in std::iter::once(generic()).chain(simd_tiers()) {
            let mut got = vec![0x5Ai8; want.len() + GUARD];
            for r in cuts(rows, parts).into_iter().filter(|r| !r.is_empty()).rev() {
                let out = &mut got[r.start * row..r.end * row];
                t.resize_bilinear_i8_rows(&input, shape, out_h, out_w, o, r, out);
            }
            prop_assert!(got[want.len()..].iter().all(|&b| b == 0x5A), "tier {}: written past the output", t.tier());
            prop_assert_eq!(&got[..want.len()], &want[..], "tier {}: row slices", t.tier());
        }
    }
}
