//! Int8 add with 16-bit multipliers ([`Add16Quant`]), 32 lanes at a time: inputs widened to
//! i16 and interleaved in pairs, one `vpdpwssd` (bias + a·m1 + b·m2) per 16 outputs, one
//! arithmetic shift, narrowed with saturation; the tail through masked loads and stores.
//! The channel-padded form ([`ChannelPadded`]) runs pixel by pixel, the second operand's
//! missing channels loaded as the fill value through the load mask.

use core::arch::x86_64::*;

use crate::elementwise::{Add16Quant, ChannelPadded};

/// `out[i] = a[i] ⊕ b[i]`, bit-exact with [`Add16Quant::apply`].
pub(crate) fn add16(q: &Add16Quant, a: &[i8], b: &[i8], out: &mut [i8]) {
    super::assert_supported();
    assert!(
        a.len() == out.len() && b.len() == out.len(),
        "add: lengths differ"
    );
    // SAFETY: AVX-512 VNNI is available (asserted); all three slices have out.len() elements.
    unsafe { add16_impl(q, a.as_ptr(), b.as_ptr(), out.as_mut_ptr(), out.len()) }
}

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
    // SAFETY: AVX-512 VNNI is available (asserted); lengths checked.
    unsafe { padded_impl(q, pad, a, b, out) }
}

/// The add's constants, broadcast.
#[derive(Clone, Copy)]
struct Consts {
    /// Each i32 lane holds the pair (m1, m2) that `vpdpwssd` applies to (a, b).
    mults: __m512i,
    bias: __m512i,
    shift: __m128i,
    zp: __m512i,
    lo: __m256i,
    hi: __m256i,
}

impl Consts {
    #[target_feature(enable = "avx512f,avx512bw")]
    fn new(q: &Add16Quant) -> Self {
        Consts {
            mults: _mm512_set1_epi32((q.m1 as u16 as i32) | ((q.m2 as i32) << 16)),
            bias: _mm512_set1_epi32(q.bias),
            shift: _mm_cvtsi32_si128(q.shift as i32),
            zp: _mm512_set1_epi16(q.out_zp as i16),
            lo: _mm256_set1_epi8(q.act_min as i8),
            hi: _mm256_set1_epi8(q.act_max as i8),
        }
    }
}

/// 32 sums of `a` and `b` bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
fn add32(a: __m256i, b: __m256i, k: Consts) -> __m256i {
    let (x, y) = (_mm512_cvtepi8_epi16(a), _mm512_cvtepi8_epi16(b));
    // The unpacks pair a and b within each 128-bit lane (elements 0–3 of the lane, then
    // 4–7); `vpackssdw` undoes exactly that interleave, so the results come out in order.
    let s0 = _mm512_dpwssd_epi32(k.bias, _mm512_unpacklo_epi16(x, y), k.mults);
    let s1 = _mm512_dpwssd_epi32(k.bias, _mm512_unpackhi_epi16(x, y), k.mults);
    let s0 = _mm512_sra_epi32(s0, k.shift);
    let s1 = _mm512_sra_epi32(s1, k.shift);
    let r = _mm512_adds_epi16(_mm512_packs_epi32(s0, s1), k.zp);
    let v = _mm512_cvtsepi16_epi8(r);
    _mm256_min_epi8(_mm256_max_epi8(v, k.lo), k.hi)
}

/// The first `n` (at most 32) lanes.
#[inline]
fn mask32(n: usize) -> __mmask32 {
    if n >= 32 { u32::MAX } else { (1u32 << n) - 1 }
}

/// # Safety
/// AVX-512 F/BW/VL/VNNI available; `a`, `b` readable and `out` writable for `n` bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn add16_impl(q: &Add16Quant, a: *const i8, b: *const i8, out: *mut i8, n: usize) {
    let k = Consts::new(q);
    let mut i = 0;
    while i < n {
        let mask = mask32(n - i);
        // SAFETY: the mask keeps the loads and the store inside the n elements.
        unsafe {
            let (x, y) = (
                _mm256_maskz_loadu_epi8(mask, a.add(i)),
                _mm256_maskz_loadu_epi8(mask, b.add(i)),
            );
            _mm256_mask_storeu_epi8(out.add(i), mask, add32(x, y, k));
        }
        i += 32;
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
fn padded_impl(q: &Add16Quant, pad: &ChannelPadded, a: &[i8], b: &[i8], out: &mut [i8]) {
    let k = Consts::new(q);
    let fill = _mm256_set1_epi8(pad.fill);
    let (c, cb) = (pad.channels, pad.b_channels);
    let pixels = out.chunks_exact_mut(c).zip(a.chunks_exact(c));
    if c <= 32 {
        // One vector a pixel, masks fixed.
        let (mask, mask_b) = (mask32(c), mask32(cb));
        for ((o, x), y) in pixels.zip(b.chunks_exact(cb)) {
            // SAFETY: the masks keep the loads and the store inside the pixel's c (x, o)
            // and cb (y) channels.
            unsafe {
                let xv = _mm256_maskz_loadu_epi8(mask, x.as_ptr());
                let yv = _mm256_mask_loadu_epi8(fill, mask_b, y.as_ptr());
                _mm256_mask_storeu_epi8(o.as_mut_ptr(), mask, add32(xv, yv, k));
            }
        }
        return;
    }
    for ((o, x), y) in pixels.zip(b.chunks_exact(cb)) {
        for ch in (0..c).step_by(32) {
            let mask = mask32(c - ch);
            let mask_b = mask32(cb.saturating_sub(ch));
            // SAFETY: `mask` keeps the load of `x` and the store inside the pixel's c
            // channels; `mask_b` keeps the load of `y` inside its cb channels (no lane when
            // ch ≥ cb: then only the fill value is used).
            unsafe {
                let xv = _mm256_maskz_loadu_epi8(mask, x.as_ptr().add(ch));
                let yv = if mask_b == 0 {
                    fill
                } else {
                    _mm256_mask_loadu_epi8(fill, mask_b, y.as_ptr().add(ch))
                };
                _mm256_mask_storeu_epi8(o.as_mut_ptr().add(ch), mask, add32(xv, yv, k));
            }
        }
    }
}
