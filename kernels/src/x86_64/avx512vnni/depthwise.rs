//! Depthwise int8 with `vpdpbusd`: four taps of 64 channels are interleaved into
//! per-channel quads (`vpunpck{l,h}bw`, `vpunpck{l,h}wd`), giving four accumulators whose
//! channel order `vpackssdw`/`vpacksswb` undo when storing.

use core::arch::x86_64::*;

use super::depthwise_group::{Group, row3x3_group};
use super::requant::{LaneRequant, Rq16, Rq16F32, Rq16Fast};
use crate::depthwise::{MAX_SIMD_TAPS, PackedDepthwise, TapWalk};

/// Runs a packed depthwise convolution (multiplier 1, at most [`MAX_SIMD_TAPS`] taps).
pub(crate) fn run(p: &PackedDepthwise, input: &[i8], output: &mut [i8], scratch: &mut [u8]) {
    super::assert_supported();
    let d = &p.params;
    let c = d.in_c;
    assert!(p.simd && d.multiplier == 1 && d.k_h * d.k_w <= MAX_SIMD_TAPS);
    assert_eq!(input.len(), d.input_len(), "depthwise: input length");
    assert_eq!(output.len(), d.output_len(), "depthwise: output length");
    assert!(scratch.len() >= c, "depthwise: scratch too short");
    assert_eq!(
        p.w8.len(),
        c.div_ceil(64) * (d.k_h * d.k_w).div_ceil(4) * 256,
        "depthwise: not packed for AVX-512 VNNI"
    );
    let zp_row = &mut scratch[..c];
    zp_row.fill(d.input_zp as i8 as u8);
    let zp_row = zp_row.as_ptr().cast::<i8>();
    let mut rows = [None; MAX_SIMD_TAPS];
    let row_len = d.out_w * c;
    for b in 0..d.batch {
        for oy in 0..d.out_h {
            p.row_offsets(b, oy, &mut rows);
            let out = &mut output[((b * d.out_h + oy) * d.out_w) * c..][..row_len];
            // SAFETY: AVX-512 VNNI is available (asserted); row offsets are inside `input`
            // (row_offsets only yields rows < in_h of image b); `out` holds out_w·c bytes;
            // `zp_row` holds c bytes; the packing matches (asserted above).
            unsafe {
                let (i, o) = (input.as_ptr(), out.as_mut_ptr());
                let q = &p.quant;
                let full = p.out.full_range();
                match (q.f32_range.is_some(), q.fast, q.ties_up) {
                    (true, ..) if q.f32_bounded && full => {
                        row_any::<false, Rq16F32<false, true>>(p, i, &rows, zp_row, o)
                    }
                    (true, ..) if q.f32_bounded => {
                        row_any::<false, Rq16F32<false>>(p, i, &rows, zp_row, o)
                    }
                    (true, ..) => row_any::<false, Rq16F32>(p, i, &rows, zp_row, o),
                    (false, true, false) if full => {
                        row_any::<false, Rq16Fast<true>>(p, i, &rows, zp_row, o)
                    }
                    (false, true, true) if full => {
                        row_any::<true, Rq16Fast<true>>(p, i, &rows, zp_row, o)
                    }
                    (false, true, false) => row_any::<false, Rq16Fast>(p, i, &rows, zp_row, o),
                    (false, true, true) => row_any::<true, Rq16Fast>(p, i, &rows, zp_row, o),
                    (false, false, false) => row_any::<false, Rq16>(p, i, &rows, zp_row, o),
                    (false, false, true) => row_any::<true, Rq16>(p, i, &rows, zp_row, o),
                }
            }
        }
    }
}

/// One output row by the kernel that fits the window; `UP`: the channels round ties upward;
/// `R`: the requantization form (both chosen once per call, so that the row loops carry no
/// rounding branch).
///
/// # Safety
/// See the call in [`run`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn row_any<const UP: bool, R: LaneRequant>(
    p: &PackedDepthwise,
    input: *const i8,
    rows: &[Option<usize>; MAX_SIMD_TAPS],
    zp_row: *const i8,
    out: *mut i8,
) {
    let d = &p.params;
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match d.k_h * d.k_w {
            9 if !p.w8_col.is_empty() && d.stride_w == 1 => {
                row3x3::<1, UP, R>(p, input, rows, zp_row, out)
            }
            9 if !p.w8_col.is_empty() => row3x3::<2, UP, R>(p, input, rows, zp_row, out),
            9 => row::<9, UP, R>(p, input, rows, zp_row, out),
            25 => row::<25, UP, R>(p, input, rows, zp_row, out),
            _ => row::<0, UP, R>(p, input, rows, zp_row, out),
        }
    }
}

/// One output row. `T` is the tap count when known at compile time (0: read it from `p`).
///
/// # Safety
/// See the call in [`run`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn row<const T: usize, const UP: bool, R: LaneRequant>(
    p: &PackedDepthwise,
    input: *const i8,
    rows: &[Option<usize>; MAX_SIMD_TAPS],
    zp_row: *const i8,
    out: *mut i8,
) {
    let d = &p.params;
    let c = d.in_c;
    let taps = if T == 0 { d.k_h * d.k_w } else { T };
    let quads = taps.div_ceil(4);
    let chunks = c.div_ceil(64);
    let flip = _mm512_set1_epi8(-128);
    let o = Out64::new(p.out);
    let mut tap_ptr = [zp_row; MAX_SIMD_TAPS];
    let walk = TapWalk::new(d, rows);
    for ox in 0..d.out_w {
        // SAFETY: `input` and `rows` as `run` computed them (contract).
        unsafe { walk.pixel(d, rows, ox, input, zp_row, &mut tap_ptr) };
        for k in 0..chunks {
            let left = c - 64 * k;
            let mask: __mmask64 = if left >= 64 { !0 } else { (1u64 << left) - 1 };
            // SAFETY: the permuted per-channel arrays hold chunks·64 entries.
            let mut acc: [__m512i; 4] = core::array::from_fn(|j| unsafe {
                _mm512_loadu_si512(p.quant.bias.as_ptr().add((k * 4 + j) * 16).cast())
            });
            for q in 0..quads {
                let mut x = [_mm512_setzero_si512(); 4];
                for (t, xt) in x.iter_mut().enumerate() {
                    if 4 * q + t < taps {
                        // SAFETY: every tap pointer addresses c readable bytes; the mask stops
                        // at channel c.
                        let v = unsafe {
                            _mm512_maskz_loadu_epi8(mask, tap_ptr[4 * q + t].add(64 * k))
                        };
                        *xt = _mm512_xor_si512(v, flip);
                    }
                }
                let lo01 = _mm512_unpacklo_epi8(x[0], x[1]);
                let hi01 = _mm512_unpackhi_epi8(x[0], x[1]);
                let lo23 = _mm512_unpacklo_epi8(x[2], x[3]);
                let hi23 = _mm512_unpackhi_epi8(x[2], x[3]);
                let quadv = [
                    _mm512_unpacklo_epi16(lo01, lo23),
                    _mm512_unpackhi_epi16(lo01, lo23),
                    _mm512_unpacklo_epi16(hi01, hi23),
                    _mm512_unpackhi_epi16(hi01, hi23),
                ];
                for j in 0..4 {
                    // SAFETY: block (k, q, j) of the packed weights exists (length asserted).
                    let w = unsafe {
                        _mm512_loadu_si512(p.w8.as_ptr().add(((k * quads + q) * 4 + j) * 64).cast())
                    };
                    acc[j] = _mm512_dpbusd_epi32(acc[j], quadv[j], w);
                }
            }
            // SAFETY: chunk k's per-channel arrays exist.
            let bytes = unsafe { requant64::<UP, R>(p, k, &acc, o) };
            // SAFETY: pixel ox of the output row holds c bytes; the mask stops at channel c.
            unsafe {
                if left >= 64 {
                    // Unmasked when full: masked byte stores are slow on AMD cores.
                    _mm512_storeu_si512(out.add(ox * c + 64 * k).cast(), bytes);
                } else {
                    _mm512_mask_storeu_epi8(out.add(ox * c + 64 * k), mask, bytes);
                }
            }
        }
    }
}

/// Output zero point (i16) and clamp range (i8), broadcast.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Out64 {
    pub zp: __m512i,
    pub min: __m512i,
    pub max: __m512i,
}

impl Out64 {
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(crate) fn new(o: crate::gemm::OutputQuant) -> Self {
        Out64 {
            zp: _mm512_set1_epi16(o.zp as i16),
            min: _mm512_set1_epi8(o.min as i8),
            max: _mm512_set1_epi8(o.max as i8),
        }
    }
}

/// Requantizes the four accumulators of chunk `k` (bias already added) into 64 bytes in
/// channel order. The zero point is added after narrowing to i16 (saturating) and the clamp
/// applied on bytes (not at all where the range is all of int8, [`LaneRequant::FULL_RANGE`]):
/// equal to TFLite's `clamp(v + zp)` because every saturation step lies outside the int8
/// clamp range.
///
/// # Safety
/// Chunk `k`'s 64 entries of the permuted per-channel arrays exist, in the form `R` reads.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn requant64<const UP: bool, R: LaneRequant>(
    p: &PackedDepthwise,
    k: usize,
    acc: &[__m512i; 4],
    o: Out64,
) -> __m512i {
    // SAFETY: forwarded from this function's contract (the CPU runs this tier: the callers
    // enable it).
    let v: [__m512i; 4] = core::array::from_fn(|j| unsafe {
        R::load(&p.quant, (k * 4 + j) * 16).apply_narrowed::<UP>(acc[j])
    });
    let lo = _mm512_adds_epi16(_mm512_packs_epi32(v[0], v[1]), o.zp);
    let hi = _mm512_adds_epi16(_mm512_packs_epi32(v[2], v[3]), o.zp);
    let bytes = _mm512_packs_epi16(lo, hi);
    if R::FULL_RANGE {
        bytes
    } else {
        _mm512_min_epi8(_mm512_max_epi8(bytes, o.min), o.max)
    }
}

/// Interleaves three taps (rows) of 64 channels into the four channel-quad vectors.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn quads3(x0: __m512i, x1: __m512i, x2: __m512i) -> [__m512i; 4] {
    let z = _mm512_setzero_si512();
    let lo01 = _mm512_unpacklo_epi8(x0, x1);
    let hi01 = _mm512_unpackhi_epi8(x0, x1);
    let lo2 = _mm512_unpacklo_epi8(x2, z);
    let hi2 = _mm512_unpackhi_epi8(x2, z);
    [
        _mm512_unpacklo_epi16(lo01, lo2),
        _mm512_unpackhi_epi16(lo01, lo2),
        _mm512_unpacklo_epi16(hi01, hi2),
        _mm512_unpackhi_epi16(hi01, hi2),
    ]
}

/// One output row of a 3×3 depthwise convolution (dilation 1, horizontal stride `S` of 1 or
/// 2) with a sliding window of input-column quads: each input column is loaded and
/// interleaved once per chunk, not once per tap.
///
/// # Safety
/// As [`row`]; `p.w8_col` is packed.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn row3x3<const S: usize, const UP: bool, R: LaneRequant>(
    p: &PackedDepthwise,
    input: *const i8,
    rows: &[Option<usize>; MAX_SIMD_TAPS],
    zp_row: *const i8,
    out: *mut i8,
) {
    let d = &p.params;
    let c = d.in_c;
    let flip = _mm512_set1_epi8(-128);
    let o = Out64::new(p.out);
    // SAFETY: row offsets address full input rows (in_w·c bytes).
    let row_ptr: [Option<*const i8>; 3] =
        core::array::from_fn(|ky| rows[ky].map(|off| unsafe { input.add(off) }));
    for k in 0..c.div_ceil(64) {
        let left = c - 64 * k;
        if left <= 48 {
            // Narrow last chunk: up to 32 channels two pixels per vector, up to 16 four, up
            // to 8 eight; 33–48 as 32 + the rest.
            let (pairs, quads) = match left {
                0..=16 => (0, left),
                17..=32 => (left, 0),
                _ => (32, left - 32),
            };
            let quad_lane = pairs / 16;
            // SAFETY: forwarded; chunk k is the last one and holds `left` channels, which
            // the groups cover (pairs: lanes 0–1; quads: the lane after them).
            unsafe {
                if pairs > 0 {
                    row3x3_group::<S, 2, UP, R>(
                        p,
                        &row_ptr,
                        zp_row,
                        out,
                        Group {
                            k,
                            l0: 0,
                            chans: pairs,
                        },
                    );
                }
                let g = Group {
                    k,
                    l0: quad_lane,
                    chans: quads,
                };
                // Up to 8 channels: eight pixels a vector, two to a 128-bit lane.
                if quads > 8 {
                    row3x3_group::<S, 4, UP, R>(p, &row_ptr, zp_row, out, g);
                } else if quads > 0 {
                    row3x3_group::<S, 8, UP, R>(p, &row_ptr, zp_row, out, g);
                }
            }
            continue;
        }
        let mask: __mmask64 = if left >= 64 { !0 } else { (1u64 << left) - 1 };
        // SAFETY: the zero-point row holds c bytes; the mask stops at channel c.
        let zpv = _mm512_xor_si512(
            unsafe { _mm512_maskz_loadu_epi8(mask, zp_row.add(64 * k)) },
            flip,
        );
        let zq = quads3(zpv, zpv, zpv);
        // Each row's chunk at column 0 and its byte step per column: a row in the padding
        // reads the zero-point bytes at every column (step 0), so the loads carry no branch.
        let (base, step): ([*const i8; 3], [usize; 3]) = (
            core::array::from_fn(|ky| row_ptr[ky].unwrap_or(zp_row).wrapping_add(64 * k)),
            core::array::from_fn(|ky| if row_ptr[ky].is_some() { c } else { 0 }),
        );
        // Column `ix` (inside the row) of the three rows, flipped and interleaved.
        let col_in = |ix: isize| -> [__m512i; 4] {
            debug_assert!(ix >= 0 && (ix as usize) < d.in_w);
            let ld = |ky: usize| {
                // SAFETY: column ix < in_w of a row (c bytes, masked to c) or the
                // zero-point row (step 0).
                let v =
                    unsafe { _mm512_maskz_loadu_epi8(mask, base[ky].add(ix as usize * step[ky])) };
                _mm512_xor_si512(v, flip)
            };
            quads3(ld(0), ld(1), ld(2))
        };
        // Any column: the zero point's quads in the padding.
        let col = |ix: isize| -> [__m512i; 4] {
            if ix < 0 || ix as usize >= d.in_w {
                zq
            } else {
                col_in(ix)
            }
        };
        // SAFETY: chunk k of the column-quad weights and of the bias exist (packed sizes).
        let (w, bias) = unsafe {
            let w: [[__m512i; 4]; 3] = core::array::from_fn(|kx| {
                core::array::from_fn(|j| {
                    _mm512_loadu_si512(p.w8_col.as_ptr().add(((k * 3 + kx) * 4 + j) * 64).cast())
                })
            });
            let bias: [__m512i; 4] = core::array::from_fn(|j| {
                _mm512_loadu_si512(p.quant.bias.as_ptr().add((k * 4 + j) * 16).cast())
            });
            (w, bias)
        };
        // Output pixel ox from its window's three column quads.
        let emit = |ox: usize, q0: &[__m512i; 4], q1: &[__m512i; 4], q2: &[__m512i; 4]| {
            let mut acc = bias;
            for j in 0..4 {
                acc[j] = _mm512_dpbusd_epi32(acc[j], q0[j], w[0][j]);
                acc[j] = _mm512_dpbusd_epi32(acc[j], q1[j], w[1][j]);
                acc[j] = _mm512_dpbusd_epi32(acc[j], q2[j], w[2][j]);
            }
            // SAFETY: chunk k's per-channel arrays exist.
            let bytes = unsafe { requant64::<UP, R>(p, k, &acc, o) };
            // SAFETY: pixel ox of the output row holds c bytes; the mask stops at channel c.
            unsafe {
                if left >= 64 {
                    // Unmasked when full: masked byte stores are slow on AMD cores.
                    _mm512_storeu_si512(out.add(ox * c + 64 * k).cast(), bytes);
                } else {
                    _mm512_mask_storeu_epi8(out.add(ox * c + 64 * k), mask, bytes);
                }
            }
        };
        // Pixel ox's window starts at column x0 + ox·S; past pixel 0 it reads one new column
        // (S = 1: x0 + ox + 2) or two (S = 2: x0 + 2·ox + 1 and + 2). Pixels lo..hi read only
        // new columns inside the row, so their loads skip the padding checks.
        let x0 = -(d.pad_left as isize);
        let first_new = if S == 1 { 2 } else { 1 };
        let lo = ((-x0 - first_new).max(0) as usize).div_ceil(S).max(1);
        let hi = ((d.in_w as isize - x0 - 2).max(0) as usize)
            .div_ceil(S)
            .clamp(lo.min(d.out_w), d.out_w);
        let lo = lo.min(hi);
        let (mut qa, mut qb) = (col(x0), col(x0 + 1));
        let q2 = col(x0 + 2);
        emit(0, &qa, &qb, &q2);
        if S == 1 {
            (qa, qb) = (qb, q2);
        } else {
            qa = q2;
        }
        // The window of pixel ox from the carried columns and the new ones (`$col`).
        macro_rules! advance {
            ($ox:expr, $col:ident) => {{
                let b = x0 + ($ox * S) as isize;
                if S == 1 {
                    let n = $col(b + 2);
                    emit($ox, &qa, &qb, &n);
                    (qa, qb) = (qb, n);
                } else {
                    let odd = $col(b + 1);
                    let n = $col(b + 2);
                    emit($ox, &qa, &odd, &n);
                    qa = n;
                }
            }};
        }
        for ox in 1..lo {
            advance!(ox, col);
        }
        for ox in lo..hi {
            advance!(ox, col_in);
        }
        for ox in hi.max(1)..d.out_w {
            advance!(ox, col);
        }
    }
}
