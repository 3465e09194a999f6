//! The GEMM tiles' epilogue: requantization of the accumulators, the residual add when the
//! destination has one, narrowing to int8 and the stores.

use core::arch::x86_64::*;

use super::super::requant::{LaneRequant, Out16, Rq16, Rq16F32, Rq16Fast, finish16};
use super::{Dst, MR, Narrow16};
use crate::gemm::PackedGemm;

/// Requantizes and stores an `R × 16B` block of accumulators (bias included), adding the
/// residual if `dst` has one.
///
/// # Safety
/// `dst.c` has `R` rows (stride `ldc`) with room for channels `16·jb..p.n`; the skip
/// operand (if any) has `R` rows.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn epilogue<const R: usize, const B: usize>(
    p: &PackedGemm,
    acc: &[[__m512i; B]; R],
    dst: Dst,
    jb: usize,
) {
    if p.quant.f32_range.is_some() {
        // SAFETY: forwarded from this function's contract; the channels are in f32 form
        // (bounded where `f32_bounded` says so).
        unsafe {
            if p.quant.f32_bounded && dst.skip.is_none() && p.out.full_range() {
                epilogue_single_step::<R, B, Rq16F32<false, true>>(p, acc, dst, jb)
            } else if p.quant.f32_bounded {
                epilogue_single_step::<R, B, Rq16F32<false>>(p, acc, dst, jb)
            } else {
                epilogue_single_step::<R, B, Rq16F32>(p, acc, dst, jb)
            }
        };
        return;
    }
    if p.quant.fast {
        // SAFETY: forwarded from this function's contract; the channels are in fast form.
        unsafe {
            if dst.skip.is_none() && p.out.full_range() {
                epilogue_single_step::<R, B, Rq16Fast<true>>(p, acc, dst, jb)
            } else {
                epilogue_single_step::<R, B, Rq16Fast>(p, acc, dst, jb)
            }
        };
        return;
    }
    // TFLite's general form (a left shift or a multiplier of 0.5 or more): one 16-channel
    // block at a time.
    let (c, ldc) = (dst.c, dst.ldc);
    let o = Out16::new(p.out);
    for b in 0..B {
        let ch = (jb + b) * 16;
        // SAFETY: the per-channel arrays are padded to a multiple of 16 channels.
        let q = unsafe { Rq16::load(&p.quant, ch) };
        let left = p.n - ch;
        let mask: __mmask16 = if left >= 16 {
            0xFFFF
        } else {
            (1u16 << left) - 1
        };
        let skip_mask = dst.skip.map_or(0, |s| s.mask(jb + b));
        for (r, acc_r) in acc.iter().enumerate() {
            let mut v = finish16(acc_r[b], q, o);
            if let Some(s) = dst.skip {
                // SAFETY: skip row r exists (contract); the mask is that of block jb + b; the
                // constants outlive the GEMM call.
                let (sum, out) = unsafe { (s.sum(v, r, jb + b, skip_mask), (*s.consts).out) };
                v = _mm512_min_epi32(
                    _mm512_max_epi32(_mm512_add_epi32(sum, out.zp), out.min),
                    out.max,
                );
            }
            let bytes = _mm512_cvtsepi32_epi8(v);
            // SAFETY: the mask limits the store to channels < p.n of row r.
            unsafe {
                let dst = c.add(r * ldc + ch);
                if left >= 16 {
                    // Unmasked when full: masked byte stores are slow on AMD cores.
                    _mm_storeu_si128(dst.cast(), bytes);
                } else {
                    _mm_mask_storeu_epi8(dst, mask, bytes);
                }
            }
        }
    }
}

/// [`epilogue_packed`], out of line for the 12-row tiles and the tiles of three column
/// blocks: inlined, its constants were kept live across the tile's K loop, whose
/// accumulators then spilled to the stack on every iteration (`perf annotate`; 28×28×192 →
/// 32 ran at 245 instead of 474 GOPS, depending on the build; BlazeFace's 32×32×32 → 36 at
/// 84 instead of 139). Out of line the accumulators are stored once per tile.
///
/// # Safety
/// As [`epilogue_packed`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn epilogue_single_step<const R: usize, const B: usize, Q: LaneRequant>(
    p: &PackedGemm,
    acc: &[[__m512i; B]; R],
    dst: Dst,
    jb: usize,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        if R > MR || B == 3 {
            epilogue_outlined::<R, B, Q>(p, acc, dst, jb)
        } else {
            epilogue_packed::<R, B, Q>(p, acc, dst, jb)
        }
    }
}

/// # Safety
/// As [`epilogue_packed`].
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn epilogue_outlined<const R: usize, const B: usize, Q: LaneRequant>(
    p: &PackedGemm,
    acc: &[[__m512i; B]; R],
    dst: Dst,
    jb: usize,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe { epilogue_packed::<R, B, Q>(p, acc, dst, jb) }
}

/// [`epilogue`] for 1 to 4 16-channel blocks in a single-step form (`Q`: [`Rq16Fast`] or
/// [`Rq16F32`]): the results are narrowed
/// together (`vpackssdw`, + zero point saturating in i16, `vpacksswb`), clamped on bytes
/// (unless the range is all of int8, [`LaneRequant::FULL_RANGE`]) and put back in channel order with one `vpermd` (the packs interleave 128-bit lanes). Equal to
/// TFLite's `clamp(v + zp)` because every saturation step lies outside the int8 clamp range.
/// Channels from `p.n` on (the last block's padding) are not stored.
///
/// # Safety
/// As [`epilogue`], with `p.quant` in `Q`'s form and `B` in 1..=4.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn epilogue_packed<const R: usize, const B: usize, Q: LaneRequant>(
    p: &PackedGemm,
    acc: &[[__m512i; B]; R],
    dst: Dst,
    jb: usize,
) {
    debug_assert!((1..=4).contains(&B) && p.n > jb * 16);
    debug_assert!(!Q::FULL_RANGE || (dst.skip.is_none() && p.out.full_range()));
    let (c, ldc) = (dst.c, dst.ldc);
    let skip_masks: [u16; B] = core::array::from_fn(|b| dst.skip.map_or(0, |s| s.mask(jb + b)));
    let valid = (p.n - jb * 16).min(B * 16);
    // SAFETY: the per-channel arrays are padded to a multiple of 16 channels, in Q's form.
    let q: [Q; B] = core::array::from_fn(|b| unsafe { Q::load(&p.quant, (jb + b) * 16) });
    // With a residual, the convolution's output is clamped in i32 lanes (TFLite's
    // `clamp(v + zp)`) and goes through the add; the narrowing below is then the add's.
    let conv = Out16::new(p.out);
    let Narrow16 { zp, min, max } = match dst.skip {
        // SAFETY: the constants outlive the GEMM call.
        Some(s) => unsafe { (*s.consts).narrow },
        None => Narrow16::new(p.out),
    };
    // Dword 4L + j of the packed bytes holds channels 16j + 4L .. +4 (L: 128-bit lane).
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    // The convolution's lowest value before its zero point: raises what `apply_narrowed`
    // may leave below it (down to `i32::MIN`) before the zero point is added in i32 lanes.
    let conv_lo = _mm512_sub_epi32(conv.min, conv.zp);
    // Row r, block b before narrowing: requantized (and through the residual add).
    let value = |r: usize, b: usize| -> __m512i {
        // SAFETY: the CPU runs this tier (enabled on this function). Lanes may stay below the
        // minimum: the narrowing below saturates and clamps, the residual path raises them.
        let v = unsafe { q[b].apply_narrowed::<false>(acc[r][b]) };
        let Some(s) = dst.skip else {
            return v;
        };
        let x = _mm512_min_epi32(
            _mm512_max_epi32(
                _mm512_add_epi32(_mm512_max_epi32(v, conv_lo), conv.zp),
                conv.min,
            ),
            conv.max,
        );
        // SAFETY: skip row r exists (contract); the mask is that of block jb + b.
        unsafe { s.sum(x, r, jb + b, skip_masks[b]) }
    };
    // Four vectors are narrowed into one: one row of 3–4 blocks (a missing fourth repeats
    // the third, its bytes not stored), two rows of 2 blocks, or four rows of 1 block (rows
    // past R repeat the last one).
    let per = if B <= 2 { 4 / B } else { 1 };
    let part = 16 * B.min(4 / per);
    let mask = if valid < part {
        (1u64 << valid) - 1
    } else {
        u64::MAX
    };
    let mut g = 0;
    while g < R {
        let x: [__m512i; 4] = core::array::from_fn(|i| {
            if B <= 2 {
                value((g + i / B).min(R - 1), i % B)
            } else {
                value(g, i.min(B - 1))
            }
        });
        let lo = _mm512_adds_epi16(_mm512_packs_epi32(x[0], x[1]), zp);
        let hi = _mm512_adds_epi16(_mm512_packs_epi32(x[2], x[3]), zp);
        let bytes = _mm512_packs_epi16(lo, hi);
        // Without a residual, a full output range is clamped by the saturation alone.
        let bytes = if Q::FULL_RANGE {
            bytes
        } else {
            _mm512_min_epi8(_mm512_max_epi8(bytes, min), max)
        };
        // Row g + i's bytes are `part` bytes from byte i·part.
        let bytes = _mm512_permutexvar_epi32(order, bytes);
        for i in 0..per.min(R - g) {
            // SAFETY: row g + i of C has room for channels 16·jb..p.n (contract); a partial
            // last block is stored through a mask that ends at p.n.
            unsafe { store_part::<B>(c.add((g + i) * ldc + jb * 16), bytes, i, valid, mask) };
        }
        g += per;
    }
}

/// Stores part `i` of `bytes` (of `B` blocks per row: the whole vector for 3–4 blocks, its
/// 256-bit half `i` for 2, its 128-bit lane `i` for 1): `valid` bytes, through `mask` when
/// that is fewer than the part.
///
/// # Safety
/// `dst` has room for the part's valid bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn store_part<const B: usize>(
    dst: *mut i8,
    bytes: __m512i,
    i: usize,
    valid: usize,
    mask: u64,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match B {
            1 => {
                let v = match i {
                    0 => _mm512_castsi512_si128(bytes),
                    1 => _mm512_extracti32x4_epi32(bytes, 1),
                    2 => _mm512_extracti32x4_epi32(bytes, 2),
                    _ => _mm512_extracti32x4_epi32(bytes, 3),
                };
                if valid < 16 {
                    _mm_mask_storeu_epi8(dst, mask as u16, v);
                } else {
                    _mm_storeu_si128(dst.cast(), v);
                }
            }
            2 => {
                let v = if i == 0 {
                    _mm512_castsi512_si256(bytes)
                } else {
                    _mm512_extracti64x4_epi64(bytes, 1)
                };
                if valid < 32 {
                    _mm256_mask_storeu_epi8(dst, mask as u32, v);
                } else {
                    _mm256_storeu_si256(dst.cast(), v);
                }
            }
            _ if valid < B * 16 => _mm512_mask_storeu_epi8(dst, mask, bytes),
            3 => {
                _mm256_storeu_si256(dst.cast(), _mm512_castsi512_si256(bytes));
                _mm_storeu_si128(dst.add(32).cast(), _mm512_extracti32x4_epi32(bytes, 2));
            }
            _ => _mm512_storeu_si512(dst.cast(), bytes),
        }
    }
}
