//! A GEMM tile for 17–24 output channels (one full 16-channel block and a last block of at
//! most 8): the last block of two rows shares one accumulator, row `2i` in lanes 0–7 and row
//! `2i + 1` in lanes 8–15 (its weights, bias and requantization constants repeated in both
//! halves, the input quad of each row broadcast into its half). 16 rows take 16 + 8 = 24
//! accumulators, and a row costs 1.5 `vpdpbusd` per quad and 1.5 requantizations instead of
//! 2: BlazeFace's 24-channel layers (the first 5×5 convolution, the 24 → 24 pointwise).

use core::arch::x86_64::*;

use super::gemm::ALayout;
use super::requant::{LaneRequant, Out16, Rq16F32, Rq16Fast, bcast_lanes, finish16_with};
use crate::gemm::PackedGemm;

/// Rows per tile.
pub(crate) const ROWS: usize = 16;

/// Whether the channel blocks from `jb` on are one full block and a last one of at most 8
/// channels, and the requantization takes a single-step form (fast or `f32`, the ones this
/// tile has).
pub(crate) fn applies(p: &PackedGemm, jb: usize) -> bool {
    (p.quant.fast || p.quant.f32_range.is_some()) && p.n > (jb + 1) * 16 && p.n <= (jb + 1) * 16 + 8
}

/// Channels `16·jb..p.n` of [`ROWS`] rows: `c[r·ldc + ch] = requant(Σ a·w)`.
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VL/VNNI; [`applies`]`(p, jb)`; `a` points at [`ROWS`]
/// flipped rows laid out as `la` says (`la.span(ROWS)` bytes readable); `c` at [`ROWS`] rows
/// (stride `ldc`) with room for channels `16·jb..p.n`; the weights are packed for AVX-512
/// VNNI with `la.segs · la.seg_words` quads.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) unsafe fn tile(
    p: &PackedGemm,
    a: *const u8,
    la: ALayout,
    c: *mut i8,
    ldc: usize,
    jb: usize,
) {
    // SAFETY: forwarded from this function's contract; the form matches `p.quant`.
    unsafe {
        if p.quant.f32_range.is_some() && p.quant.f32_bounded {
            tile_in::<Rq16F32<false>>(p, a, la, c, ldc, jb)
        } else if p.quant.f32_range.is_some() {
            tile_in::<Rq16F32>(p, a, la, c, ldc, jb)
        } else {
            tile_in::<Rq16Fast>(p, a, la, c, ldc, jb)
        }
    }
}

/// [`tile`] with the requantization form `Q`.
///
/// # Safety
/// As [`tile`]; `p.quant` is in `Q`'s form.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_in<Q: LaneRequant>(
    p: &PackedGemm,
    a: *const u8,
    la: ALayout,
    c: *mut i8,
    ldc: usize,
    jb: usize,
) {
    debug_assert!(applies(p, jb));
    let bs = la.segs * la.seg_words * 64;
    // SAFETY: the bias is padded to a multiple of 16 channels; blocks jb, jb + 1 exist.
    let (b_full, b_half) = unsafe {
        let b = p.quant.bias.as_ptr().add(jb * 16);
        (
            _mm512_loadu_si512(b.cast()),
            bcast_lanes::<2>(b.add(16).cast()),
        )
    };
    let mut full = [b_full; ROWS];
    let mut half = [b_half; ROWS / 2];
    // SAFETY: blocks jb and jb + 1 exist in the packing.
    let w = unsafe { p.w8.as_ptr().add(jb * bs) };
    for seg in 0..la.segs {
        for j in 0..la.seg_words {
            let off = (seg * la.seg_words + j) * 64;
            // SAFETY: segment seg of every row lies inside A (contract: span readable).
            let a_q = unsafe { a.add(seg * la.seg_stride + j * 4) };
            // SAFETY: quad (seg, j) of blocks jb, jb + 1 lies inside the packing; lanes 0–7
            // are the first 32 bytes of the last block's 64.
            let (w_full, w_half) = unsafe {
                (
                    _mm512_loadu_si512(w.add(off).cast()),
                    bcast_lanes::<2>(w.add(bs + off).cast()),
                )
            };
            for i in 0..ROWS / 2 {
                // SAFETY: quad j of segment seg of rows 2i, 2i + 1 is readable (contract).
                let (x0, x1) = unsafe {
                    let at = |r: usize| a_q.add(r * la.row).cast::<i32>().read_unaligned();
                    (
                        _mm512_set1_epi32(at(2 * i)),
                        _mm512_set1_epi32(at(2 * i + 1)),
                    )
                };
                full[2 * i] = _mm512_dpbusd_epi32(full[2 * i], x0, w_full);
                full[2 * i + 1] = _mm512_dpbusd_epi32(full[2 * i + 1], x1, w_full);
                let x01 = _mm512_inserti64x4(x0, _mm512_castsi512_si256(x1), 1);
                half[i] = _mm512_dpbusd_epi32(half[i], x01, w_half);
            }
        }
    }
    let o = Out16::new(p.out);
    // SAFETY: the per-channel arrays are padded to a multiple of 16 channels, in Q's form.
    let (q_full, q_half) = unsafe {
        (
            Q::load(&p.quant, jb * 16),
            Q::load_repeated::<2>(&p.quant, (jb + 1) * 16),
        )
    };
    let tail = p.n - (jb + 1) * 16;
    let tail_mask: __mmask16 = (1 << tail) - 1;
    for (i, &hv) in half.iter().enumerate() {
        let h = _mm512_cvtepi32_epi8(finish16_with::<Q, false>(hv, q_half, o));
        for (r, hr) in [(2 * i, h), (2 * i + 1, _mm_srli_si128::<8>(h))] {
            let v = _mm512_cvtepi32_epi8(finish16_with::<Q, false>(full[r], q_full, o));
            // SAFETY: row r of C has room for channels 16·jb..p.n (contract); the mask ends
            // the last block at p.n.
            unsafe {
                let dst = c.add(r * ldc + jb * 16);
                _mm_storeu_si128(dst.cast(), v);
                _mm_mask_storeu_epi8(dst.add(16), tail_mask, hr);
            }
        }
    }
}
