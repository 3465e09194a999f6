//! The lanes of the AVX-512 f32 kernels' tiles ([`super::float`]): one output pixel's chunk
//! of up to [`CH`] channels in two registers, 32 lanes (two zmm), 24 (zmm and ymm), 16 (zmm)
//! or 8 (ymm), with the loads, fused multiply-adds and stores of each width.

use core::arch::x86_64::*;

/// Channels per chunk (two registers).
pub(super) const CH: usize = 32;

/// The masks of a chunk's two registers for `left` channels from its start.
pub(super) fn masks(left: usize) -> [__mmask16; 2] {
    let m = |n: usize| -> __mmask16 { if n >= 16 { 0xFFFF } else { (1u16 << n) - 1 } };
    [m(left.min(16)), m(left.saturating_sub(16))]
}

/// `clamp(v, lo, hi)` per lane as `f32::clamp` (NaN stays NaN: `vmaxps` returns its second
/// operand when either is NaN).
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn clamp(v: __m512, lo: __m512, hi: __m512) -> __m512 {
    _mm512_min_ps(hi, _mm512_max_ps(lo, v))
}

/// The width in lanes of the convolution tile for `left` channels from a chunk's start: 32
/// (two zmm), 24 (zmm and ymm), 16 (zmm) or 8 (ymm). A 256-bit operation takes half the
/// cycles of a 512-bit one on Zen 4, so a 24-channel layer runs as 24 lanes, not 32.
pub(super) fn chunk_width(left: usize) -> usize {
    match left {
        25.. => 32,
        17.. => 24,
        9.. => 16,
        _ => 8,
    }
}

/// The weights of one input value for a tile of `W` lanes ([`chunk_width`]): lanes beyond
/// `W` are not read (a ymm half stays in the low half of its zmm, the rest is zero).
///
/// # Safety
/// `w` addresses `W` readable floats; the CPU has AVX-512 F and VL.
#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
pub(super) unsafe fn load_weights<const W: usize>(w: *const f32) -> [__m512; 2] {
    // SAFETY: reads W floats from `w` (contract).
    unsafe {
        let y = |p: *const f32| _mm512_castps256_ps512(_mm256_loadu_ps(p));
        match W {
            32 => [_mm512_loadu_ps(w), _mm512_loadu_ps(w.add(16))],
            24 => [_mm512_loadu_ps(w), y(w.add(16))],
            16 => [_mm512_loadu_ps(w), _mm512_setzero_ps()],
            _ => [y(w), _mm512_setzero_ps()],
        }
    }
}

/// `acc + w · *x` per lane, fused (`vfmadd231ps`, one rounding), in a tile of `W` lanes,
/// `*x` broadcast by the instruction's memory operand (`{1to16}`, `{1to8}`). An explicit
/// `vbroadcastss zmm, m32` costs a vector-pipe slot on Zen 4 besides its load, so that a
/// tile's broadcasts took a third of the multiply-add throughput (`kbench broadcast`: 35
/// against 56 G multiply-adds per second); the embedded broadcast is a load only.
///
/// # Safety
/// `x` is readable; the CPU has AVX-512 F and VL.
#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
pub(super) unsafe fn fmadd_broadcast<const W: usize>(
    mut acc: [__m512; 2],
    x: *const f32,
    w: [__m512; 2],
) -> [__m512; 2] {
    // SAFETY: each reads the one f32 at `x` (readable: contract); no other memory or flags.
    unsafe {
        match W {
            32 => core::arch::asm!(
                "vfmadd231ps {a0}, {w0}, dword ptr [{x}]{{1to16}}",
                "vfmadd231ps {a1}, {w1}, dword ptr [{x}]{{1to16}}",
                a0 = inout(zmm_reg) acc[0], a1 = inout(zmm_reg) acc[1],
                w0 = in(zmm_reg) w[0], w1 = in(zmm_reg) w[1], x = in(reg) x,
                options(pure, readonly, nostack, preserves_flags),
            ),
            24 => {
                let mut a1 = _mm512_castps512_ps256(acc[1]);
                core::arch::asm!(
                    "vfmadd231ps {a0}, {w0}, dword ptr [{x}]{{1to16}}",
                    "vfmadd231ps {a1}, {w1}, dword ptr [{x}]{{1to8}}",
                    a0 = inout(zmm_reg) acc[0], a1 = inout(ymm_reg) a1,
                    w0 = in(zmm_reg) w[0], w1 = in(ymm_reg) _mm512_castps512_ps256(w[1]),
                    x = in(reg) x,
                    options(pure, readonly, nostack, preserves_flags),
                );
                acc[1] = _mm512_castps256_ps512(a1);
            }
            16 => core::arch::asm!(
                "vfmadd231ps {a0}, {w0}, dword ptr [{x}]{{1to16}}",
                a0 = inout(zmm_reg) acc[0], w0 = in(zmm_reg) w[0], x = in(reg) x,
                options(pure, readonly, nostack, preserves_flags),
            ),
            _ => {
                let mut a0 = _mm512_castps512_ps256(acc[0]);
                core::arch::asm!(
                    "vfmadd231ps {a0}, {w0}, dword ptr [{x}]{{1to8}}",
                    a0 = inout(ymm_reg) a0, w0 = in(ymm_reg) _mm512_castps512_ps256(w[0]),
                    x = in(reg) x,
                    options(pure, readonly, nostack, preserves_flags),
                );
                acc[0] = _mm512_castps256_ps512(a0);
            }
        }
    }
    acc
}

/// Stores a tile's `W` lanes at `o`: through the masks `m`, or whole registers when the
/// chunk has exactly `W` channels (`exact`; masked stores are slow on AMD cores).
///
/// # Safety
/// `o` has room for the lanes `m` selects, or for `W` floats if `exact`; the CPU has
/// AVX-512 F and VL.
#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
pub(super) unsafe fn store_lanes<const W: usize>(
    o: *mut f32,
    m: [__mmask16; 2],
    v: [__m512; 2],
    exact: bool,
) {
    // SAFETY: writes what the contract gives room for (wrapping: a masked-off register's
    // address is never written).
    unsafe {
        let second = o.wrapping_add(16);
        let y = |v: __m512| _mm512_castps512_ps256(v);
        match (W, exact) {
            (32, true) => {
                _mm512_storeu_ps(o, v[0]);
                _mm512_storeu_ps(second, v[1]);
            }
            (24, true) => {
                _mm512_storeu_ps(o, v[0]);
                _mm256_storeu_ps(second, y(v[1]));
            }
            (16, true) => _mm512_storeu_ps(o, v[0]),
            (8, true) => _mm256_storeu_ps(o, y(v[0])),
            _ => {
                _mm512_mask_storeu_ps(o, m[0], v[0]);
                _mm512_mask_storeu_ps(second, m[1], v[1]);
            }
        }
    }
}

/// Masked loads of the lanes of a tile of `W` lanes ([`chunk_width`]).
///
/// # Safety
/// `m` selects readable floats from `ptr`; the CPU has AVX-512 F and VL.
#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
pub(super) unsafe fn load_lanes<const W: usize>(ptr: *const f32, m: [__mmask16; 2]) -> [__m512; 2] {
    // SAFETY: the masks select readable floats (contract); a masked-off register's address
    // is never read (wrapping).
    unsafe {
        let y = |m: __mmask16, p: *const f32| {
            _mm512_castps256_ps512(_mm256_maskz_loadu_ps(m as __mmask8, p))
        };
        let second = ptr.wrapping_add(16);
        match W {
            32 => [
                _mm512_maskz_loadu_ps(m[0], ptr),
                _mm512_maskz_loadu_ps(m[1], second),
            ],
            24 => [_mm512_maskz_loadu_ps(m[0], ptr), y(m[1], second)],
            16 => [_mm512_maskz_loadu_ps(m[0], ptr), _mm512_setzero_ps()],
            _ => [y(m[0], ptr), _mm512_setzero_ps()],
        }
    }
}

/// `acc + x · w` per lane, fused (one rounding), in the lanes of a tile of `W` lanes (ymm
/// where the tile has a ymm).
#[inline]
#[target_feature(enable = "avx512f,avx512vl,fma")]
pub(super) fn fmadd_lanes<const W: usize>(
    acc: [__m512; 2],
    x: [__m512; 2],
    w: [__m512; 2],
) -> [__m512; 2] {
    let y = |a: __m512, x: __m512, w: __m512| {
        let c = _mm512_castps512_ps256;
        _mm512_castps256_ps512(_mm256_fmadd_ps(c(x), c(w), c(a)))
    };
    match W {
        32 => [
            _mm512_fmadd_ps(x[0], w[0], acc[0]),
            _mm512_fmadd_ps(x[1], w[1], acc[1]),
        ],
        24 => [_mm512_fmadd_ps(x[0], w[0], acc[0]), y(acc[1], x[1], w[1])],
        16 => [_mm512_fmadd_ps(x[0], w[0], acc[0]), acc[1]],
        _ => [y(acc[0], x[0], w[0]), acc[1]],
    }
}
