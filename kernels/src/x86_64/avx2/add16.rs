//! Int8 add with 16-bit multipliers ([`Add16Quant`]), 32 lanes at a time: inputs widened to
//! i16 and interleaved in pairs, one `vpmaddwd` per 8 outputs, one arithmetic shift, packed
//! back with saturation. The channel-padded form ([`ChannelPadded`]) pads a run of the second
//! operand's pixels into a stack buffer (a pixel of up to 32 bytes as one vector: load, blend
//! with the fill, store; a wider one as 32-byte copies and fill stores), then adds the run as
//! flat vectors.

use core::arch::x86_64::*;

use crate::elementwise::{Add16Quant, ChannelPadded};

/// Bytes of second operand padded at a time by [`add16_padded`] (on the stack).
const PAD_RUN: usize = 4096;

/// `out = a ⊕ pad(b)`, bit-exact with the generic `add16_i8_padded`.
pub(crate) fn add16_padded(
    q: &Add16Quant,
    pad: &ChannelPadded,
    a: &[i8],
    b: &[i8],
    out: &mut [i8],
) {
    super::assert_supported();
    pad.check(a.len(), b.len(), out.len());
    let (c, cb) = (pad.channels, pad.b_channels);
    if c > PAD_RUN {
        return crate::generic::elementwise::add16_i8_padded(q, pad, a, b, out);
    }
    // 32 bytes of slack: a pixel padded whole may write up to 32 bytes from its start.
    let mut buf = [0i8; PAD_RUN + 32];
    let run = PAD_RUN / c * c;
    let runs = out
        .chunks_mut(run)
        .zip(a.chunks(run))
        .zip(b.chunks(run / c * cb));
    for ((o, x), y) in runs {
        let pixels = o.len() / c;
        // Pixels padded in whole 32-byte vectors (the second operand's `cb` bytes read as
        // ⌈cb/32⌉ vectors, all readable from the pixel on); the rest one slice copy each.
        let reach = cb.div_ceil(32) * 32;
        let whole = if cb > 0 && y.len() >= reach {
            ((y.len() - reach) / cb + 1).min(pixels)
        } else {
            0
        };
        if whole > 0 && c <= 32 {
            // SAFETY: AVX2 is available (asserted); `whole` pixels of `cb` bytes are read with
            // 32 readable from each one's start, and each writes 32 bytes from `p·c` inside
            // `buf` (`p·c + 32 ≤ PAD_RUN + 32`).
            unsafe { pad_whole(&mut buf, y, whole, c, cb, pad.fill) };
        } else if whole > 0 {
            // SAFETY: as above, with ⌈cb/32⌉ vectors readable from each pixel's start; the
            // writes stay below `p·c + c + 31 ≤ PAD_RUN + 32`.
            unsafe { pad_wide(&mut buf, y, whole, c, cb, pad.fill) };
        }
        let padded = &mut buf[..o.len()];
        let rest = padded
            .chunks_exact_mut(c)
            .zip(y.chunks_exact(cb))
            .skip(whole);
        for (dst, src) in rest {
            let (have, missing) = dst.split_at_mut(cb);
            have.copy_from_slice(src);
            missing.fill(pad.fill);
        }
        add16(q, x, padded, o);
    }
}

/// Pads the first `pixels` pixels of `src` (`cb` bytes each) to `c` bytes each in `dst`: one
/// 32-byte load, blend with the fill and store per pixel, in order, each store's bytes past
/// `c` overwritten by the next pixel's (or left in `dst`'s slack).
///
/// # Safety
/// AVX2 is available; `cb ≤ c ≤ 32`; `(pixels − 1)·cb + 32 ≤ src.len()` and
/// `(pixels − 1)·c + 32 ≤ dst.len()`.
#[target_feature(enable = "avx2")]
unsafe fn pad_whole(dst: &mut [i8], src: &[i8], pixels: usize, c: usize, cb: usize, fill: i8) {
    debug_assert!(cb <= c && c <= 32 && pixels > 0);
    debug_assert!((pixels - 1) * cb + 32 <= src.len() && (pixels - 1) * c + 32 <= dst.len());
    let keep = _mm256_cmpgt_epi8(
        _mm256_set1_epi8(cb as i8),
        _mm256_setr_epi8(
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
            24, 25, 26, 27, 28, 29, 30, 31,
        ),
    );
    let fill = _mm256_set1_epi8(fill);
    for p in 0..pixels {
        // SAFETY: 32 bytes from p·cb of src and from p·c of dst (contract).
        unsafe {
            let v = _mm256_loadu_si256(src.as_ptr().add(p * cb).cast());
            let v = _mm256_blendv_epi8(fill, v, keep);
            _mm256_storeu_si256(dst.as_mut_ptr().add(p * c).cast(), v);
        }
    }
}

/// [`pad_whole`] for pixels wider than 32 bytes: each pixel's `cb` bytes as ⌈cb/32⌉ 32-byte
/// copies, then its `c − cb` missing bytes as 32-byte stores of the fill, in order: a copy's
/// bytes past `cb` are overwritten by the fill, a fill's past `c` by the next pixel (or land
/// in `dst`'s slack).
///
/// # Safety
/// AVX2 is available; `cb ≤ c`; `(pixels − 1)·cb + ⌈cb/32⌉·32 ≤ src.len()` and
/// `(pixels − 1)·c + c + 32 ≤ dst.len()`.
#[target_feature(enable = "avx2")]
unsafe fn pad_wide(dst: &mut [i8], src: &[i8], pixels: usize, c: usize, cb: usize, fill: i8) {
    debug_assert!(cb <= c && pixels > 0);
    debug_assert!((pixels - 1) * cb + cb.div_ceil(32) * 32 <= src.len());
    debug_assert!(pixels * c + 32 <= dst.len());
    let fill = _mm256_set1_epi8(fill);
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    for p in 0..pixels {
        // SAFETY: reads below p·cb + ⌈cb/32⌉·32 of src; writes below p·c + c + 32 of dst
        // (contract).
        unsafe {
            let (s, d) = (s.add(p * cb), d.add(p * c));
            for j in (0..cb).step_by(32) {
                _mm256_storeu_si256(d.add(j).cast(), _mm256_loadu_si256(s.add(j).cast()));
            }
            for j in (cb..c).step_by(32) {
                _mm256_storeu_si256(d.add(j).cast(), fill);
            }
        }
    }
}

/// `out[i] = a[i] ⊕ b[i]`, bit-exact with [`Add16Quant::apply`].
pub(crate) fn add16(q: &Add16Quant, a: &[i8], b: &[i8], out: &mut [i8]) {
    super::assert_supported();
    assert!(
        a.len() == out.len() && b.len() == out.len(),
        "add: lengths differ"
    );
    let n32 = out.len() / 32 * 32;
    // SAFETY: AVX2 is available (asserted); the three slices hold n32 <= len elements.
    unsafe { add16_impl(q, a.as_ptr(), b.as_ptr(), out.as_mut_ptr(), n32) };
    for i in n32..out.len() {
        out[i] = q.apply(a[i], b[i]);
    }
}

/// # Safety
/// AVX2 available; `a`, `b` readable and `out` writable for `n` bytes, `n` a multiple of 32.
#[target_feature(enable = "avx2")]
unsafe fn add16_impl(q: &Add16Quant, a: *const i8, b: *const i8, out: *mut i8, n: usize) {
    // Each i32 lane of `mults` holds the pair (m1, m2) that `vpmaddwd` applies to (a, b).
    let mults = _mm256_set1_epi32((q.m1 as u16 as i32) | ((q.m2 as i32) << 16));
    let bias = _mm256_set1_epi32(q.bias);
    let shift = _mm_cvtsi32_si128(q.shift as i32);
    let zp = _mm256_set1_epi16(q.out_zp as i16);
    let (lo, hi) = (
        _mm256_set1_epi8(q.act_min as i8),
        _mm256_set1_epi8(q.act_max as i8),
    );
    let p = Params {
        mults,
        bias,
        shift,
        zp,
    };
    let mut i = 0;
    while i < n {
        // SAFETY: i + 32 <= n; the caller guarantees n readable bytes.
        let (x, y) = unsafe {
            (
                _mm256_loadu_si256(a.add(i).cast()),
                _mm256_loadu_si256(b.add(i).cast()),
            )
        };
        let r0 = half(
            _mm256_cvtepi8_epi16(_mm256_castsi256_si128(x)),
            _mm256_cvtepi8_epi16(_mm256_castsi256_si128(y)),
            p,
        );
        let r1 = half(
            _mm256_cvtepi8_epi16(_mm256_extracti128_si256(x, 1)),
            _mm256_cvtepi8_epi16(_mm256_extracti128_si256(y, 1)),
            p,
        );
        // `vpacksswb` interleaves the two by 64-bit quarters (0–7, 16–23, 8–15, 24–31).
        let v = _mm256_permute4x64_epi64(_mm256_packs_epi16(r0, r1), 0b11_01_10_00);
        let v = _mm256_min_epi8(_mm256_max_epi8(v, lo), hi);
        // SAFETY: as for the loads; `out` is writable for n bytes.
        unsafe { _mm256_storeu_si256(out.add(i).cast(), v) };
        i += 32;
    }
}

/// The broadcast parameters of [`half`].
#[derive(Clone, Copy)]
struct Params {
    mults: __m256i,
    bias: __m256i,
    shift: __m128i,
    zp: __m256i,
}

/// 16 outputs (i16, output zero point added) from 16 `(a, b)` widened to i16. The unpacks pair
/// a and b within each 128-bit lane (elements 0–3 and 8–11, then 4–7 and 12–15); `vpackssdw`
/// undoes exactly that interleave, so the results come out in order.
#[inline]
#[target_feature(enable = "avx2")]
fn half(x: __m256i, y: __m256i, p: Params) -> __m256i {
    let s0 = _mm256_madd_epi16(_mm256_unpacklo_epi16(x, y), p.mults);
    let s1 = _mm256_madd_epi16(_mm256_unpackhi_epi16(x, y), p.mults);
    let s0 = _mm256_sra_epi32(_mm256_add_epi32(s0, p.bias), p.shift);
    let s1 = _mm256_sra_epi32(_mm256_add_epi32(s1, p.bias), p.shift);
    _mm256_adds_epi16(_mm256_packs_epi32(s0, s1), p.zp)
}
