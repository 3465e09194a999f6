//! Depthwise int8 with `vpdpbusd`: four taps of 64 channels are interleaved into
//! per-channel quads (`vpunpck{l,h}bw`, `vpunpck{l,h}wd`), giving four accumulators whose
//! channel order `vpackssdw`/`vpacksswb` undo when storing.

use core::arch::x86_64::*;

use super::requant::{Out16, Rq16, finish16};
use crate::depthwise::{MAX_SIMD_TAPS, PackedDepthwise};

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
                match d.k_h * d.k_w {
                    9 => row::<9>(p, input.as_ptr(), &rows, zp_row, out.as_mut_ptr()),
                    25 => row::<25>(p, input.as_ptr(), &rows, zp_row, out.as_mut_ptr()),
                    _ => row::<0>(p, input.as_ptr(), &rows, zp_row, out.as_mut_ptr()),
                }
            }
        }
    }
}

/// One output row. `T` is the tap count when known at compile time (0: read it from `p`).
///
/// # Safety
/// See the call in [`run`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn row<const T: usize>(
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
    let o = Out16::new(p.out);
    let mut tap_ptr = [zp_row; MAX_SIMD_TAPS];
    for ox in 0..d.out_w {
        for ky in 0..d.k_h {
            for kx in 0..d.k_w {
                let ix = (ox * d.stride_w + kx * d.dilation_w) as isize - d.pad_left as isize;
                tap_ptr[ky * d.k_w + kx] = match rows[ky] {
                    // SAFETY: ix < in_w, so the pixel lies inside the input row.
                    Some(off) if ix >= 0 && (ix as usize) < d.in_w => unsafe {
                        input.add(off + ix as usize * c)
                    },
                    _ => zp_row,
                };
            }
        }
        for k in 0..chunks {
            let left = c - 64 * k;
            let mask: __mmask64 = if left >= 64 { !0 } else { (1u64 << left) - 1 };
            let mut acc = [_mm512_setzero_si512(); 4];
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
            let mut v = [_mm512_setzero_si512(); 4];
            for j in 0..4 {
                let at = (k * 4 + j) * 16;
                // SAFETY: the permuted per-channel arrays hold chunks·64 entries.
                let (bias, q) = unsafe {
                    (
                        _mm512_loadu_si512(p.quant.bias.as_ptr().add(at).cast()),
                        Rq16::load(&p.quant, at),
                    )
                };
                v[j] = finish16(_mm512_add_epi32(acc[j], bias), q, o);
            }
            let bytes = _mm512_packs_epi16(
                _mm512_packs_epi32(v[0], v[1]),
                _mm512_packs_epi32(v[2], v[3]),
            );
            // SAFETY: pixel ox of the output row holds c bytes; the mask stops at channel c.
            unsafe { _mm512_mask_storeu_epi8(out.add(ox * c + 64 * k), mask, bytes) };
        }
    }
}
