//! The full-size GEMM tiles (6 × 64, 12 × 32, 12 × 16), each with its accumulators in named
//! locals: as arrays indexed in loops LLVM left them in memory, a store per `vpdpbusd`.

use core::arch::x86_64::*;

use super::epilogue::epilogue;
use super::{ALayout, Dst};
use crate::gemm::PackedGemm;

/// The full 6 × 64 tile with its 24 accumulators in named locals (arrays indexed in loops
/// were left in memory by LLVM, costing a store per `vpdpbusd`).
///
/// # Safety
/// As [`tile_dispatch`] with `mr = 6`, `nb = 4`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn tile_6x4(p: &PackedGemm, a: *const u8, lda: ALayout, dst: Dst, jb: usize) {
    let bs = lda.segs * lda.seg_words * 64;
    // Accumulators start at the (zero-point folded) bias.
    // SAFETY: the bias is padded to a multiple of 16 channels; blocks jb..jb+4 exist.
    let (b0, b1, b2, b3) = unsafe {
        let b = p.quant.bias.as_ptr().add(jb * 16);
        (
            _mm512_loadu_si512(b.cast()),
            _mm512_loadu_si512(b.add(16).cast()),
            _mm512_loadu_si512(b.add(32).cast()),
            _mm512_loadu_si512(b.add(48).cast()),
        )
    };
    let (mut c00, mut c01, mut c02, mut c03) = (b0, b1, b2, b3);
    let (mut c10, mut c11, mut c12, mut c13) = (b0, b1, b2, b3);
    let (mut c20, mut c21, mut c22, mut c23) = (b0, b1, b2, b3);
    let (mut c30, mut c31, mut c32, mut c33) = (b0, b1, b2, b3);
    let (mut c40, mut c41, mut c42, mut c43) = (b0, b1, b2, b3);
    let (mut c50, mut c51, mut c52, mut c53) = (b0, b1, b2, b3);
    // SAFETY: blocks jb..jb+4 exist in the packing.
    let w = unsafe { p.w8.as_ptr().add(jb * bs) };
    for seg in 0..lda.segs {
        for j in 0..lda.seg_words {
            let off = (seg * lda.seg_words + j) * 64;
            // SAFETY: segment seg of every row lies inside A (contract: span readable).
            let a_q = unsafe { a.add(seg * lda.seg_stride + j * 4) };
            // SAFETY: quad (seg, j) of blocks jb..jb+4 lies inside the packing.
            let (w0, w1, w2, w3) = unsafe {
                (
                    _mm512_loadu_si512(w.add(off).cast()),
                    _mm512_loadu_si512(w.add(bs + off).cast()),
                    _mm512_loadu_si512(w.add(2 * bs + off).cast()),
                    _mm512_loadu_si512(w.add(3 * bs + off).cast()),
                )
            };
            macro_rules! row {
                ($r:literal, $x0:ident, $x1:ident, $x2:ident, $x3:ident) => {{
                    // SAFETY: quad j of segment seg of row $r is readable (contract).
                    let av = _mm512_set1_epi32(unsafe {
                        a_q.add($r * lda.row).cast::<i32>().read_unaligned()
                    });
                    $x0 = _mm512_dpbusd_epi32($x0, av, w0);
                    $x1 = _mm512_dpbusd_epi32($x1, av, w1);
                    $x2 = _mm512_dpbusd_epi32($x2, av, w2);
                    $x3 = _mm512_dpbusd_epi32($x3, av, w3);
                }};
            }
            row!(0, c00, c01, c02, c03);
            row!(1, c10, c11, c12, c13);
            row!(2, c20, c21, c22, c23);
            row!(3, c30, c31, c32, c33);
            row!(4, c40, c41, c42, c43);
            row!(5, c50, c51, c52, c53);
        }
    }
    let acc = [
        [c00, c01, c02, c03],
        [c10, c11, c12, c13],
        [c20, c21, c22, c23],
        [c30, c31, c32, c33],
        [c40, c41, c42, c43],
        [c50, c51, c52, c53],
    ];
    // SAFETY: forwarded from this function's contract.
    unsafe { epilogue::<6, 4>(p, &acc, dst, jb) }
}

/// The 12 × 32 tile with its accumulators in named locals, as [`tile_6x4`]: as an array
/// (`tile::<12, 2>`) their initial values were also stored to the stack on every tile,
/// because the out-of-line epilogue takes them by reference.
///
/// # Safety
/// As [`tile_dispatch`] with `mr = 12`, `nb = 2`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn tile_12x2(p: &PackedGemm, a: *const u8, lda: ALayout, dst: Dst, jb: usize) {
    let bs = lda.segs * lda.seg_words * 64;
    // SAFETY: the bias is padded to a multiple of 16 channels; blocks jb..jb+2 exist.
    let (b0, b1) = unsafe {
        let b = p.quant.bias.as_ptr().add(jb * 16);
        (
            _mm512_loadu_si512(b.cast()),
            _mm512_loadu_si512(b.add(16).cast()),
        )
    };
    let (mut c0_0, mut c0_1) = (b0, b1);
    let (mut c1_0, mut c1_1) = (b0, b1);
    let (mut c2_0, mut c2_1) = (b0, b1);
    let (mut c3_0, mut c3_1) = (b0, b1);
    let (mut c4_0, mut c4_1) = (b0, b1);
    let (mut c5_0, mut c5_1) = (b0, b1);
    let (mut c6_0, mut c6_1) = (b0, b1);
    let (mut c7_0, mut c7_1) = (b0, b1);
    let (mut c8_0, mut c8_1) = (b0, b1);
    let (mut c9_0, mut c9_1) = (b0, b1);
    let (mut c10_0, mut c10_1) = (b0, b1);
    let (mut c11_0, mut c11_1) = (b0, b1);
    // SAFETY: blocks jb..jb+2 exist in the packing.
    let w = unsafe { p.w8.as_ptr().add(jb * bs) };
    for seg in 0..lda.segs {
        for j in 0..lda.seg_words {
            let off = (seg * lda.seg_words + j) * 64;
            // SAFETY: segment seg of every row lies inside A (contract: span readable).
            let a_q = unsafe { a.add(seg * lda.seg_stride + j * 4) };
            // SAFETY: quad (seg, j) of blocks jb..jb+2 lies inside the packing.
            let (w0, w1) = unsafe {
                (
                    _mm512_loadu_si512(w.add(off).cast()),
                    _mm512_loadu_si512(w.add(bs + off).cast()),
                )
            };
            macro_rules! row {
                ($r:literal, $x0:ident, $x1:ident) => {{
                    // SAFETY: quad j of segment seg of row $r is readable (contract).
                    let av = _mm512_set1_epi32(unsafe {
                        a_q.add($r * lda.row).cast::<i32>().read_unaligned()
                    });
                    $x0 = _mm512_dpbusd_epi32($x0, av, w0);
                    $x1 = _mm512_dpbusd_epi32($x1, av, w1);
                }};
            }
            row!(0, c0_0, c0_1);
            row!(1, c1_0, c1_1);
            row!(2, c2_0, c2_1);
            row!(3, c3_0, c3_1);
            row!(4, c4_0, c4_1);
            row!(5, c5_0, c5_1);
            row!(6, c6_0, c6_1);
            row!(7, c7_0, c7_1);
            row!(8, c8_0, c8_1);
            row!(9, c9_0, c9_1);
            row!(10, c10_0, c10_1);
            row!(11, c11_0, c11_1);
        }
    }
    let acc = [
        [c0_0, c0_1],
        [c1_0, c1_1],
        [c2_0, c2_1],
        [c3_0, c3_1],
        [c4_0, c4_1],
        [c5_0, c5_1],
        [c6_0, c6_1],
        [c7_0, c7_1],
        [c8_0, c8_1],
        [c9_0, c9_1],
        [c10_0, c10_1],
        [c11_0, c11_1],
    ];
    // SAFETY: forwarded from this function's contract.
    unsafe { epilogue::<12, 2>(p, &acc, dst, jb) }
}

/// The 12 × 16 tile with its accumulators in named locals, as [`tile_6x4`]: as an array
/// (`tile::<12, 1>`) their initial values were also stored to the stack on every tile,
/// because the out-of-line epilogue takes them by reference.
///
/// # Safety
/// As [`tile_dispatch`] with `mr = 12`, `nb = 1`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn tile_12x1(p: &PackedGemm, a: *const u8, lda: ALayout, dst: Dst, jb: usize) {
    let bs = lda.segs * lda.seg_words * 64;
    // SAFETY: the bias is padded to a multiple of 16 channels; blocks jb..jb+1 exist.
    let b0 = unsafe { _mm512_loadu_si512(p.quant.bias.as_ptr().add(jb * 16).cast()) };
    let mut c0_0 = b0;
    let mut c1_0 = b0;
    let mut c2_0 = b0;
    let mut c3_0 = b0;
    let mut c4_0 = b0;
    let mut c5_0 = b0;
    let mut c6_0 = b0;
    let mut c7_0 = b0;
    let mut c8_0 = b0;
    let mut c9_0 = b0;
    let mut c10_0 = b0;
    let mut c11_0 = b0;
    // SAFETY: blocks jb..jb+1 exist in the packing.
    let w = unsafe { p.w8.as_ptr().add(jb * bs) };
    for seg in 0..lda.segs {
        for j in 0..lda.seg_words {
            let off = (seg * lda.seg_words + j) * 64;
            // SAFETY: segment seg of every row lies inside A (contract: span readable).
            let a_q = unsafe { a.add(seg * lda.seg_stride + j * 4) };
            // SAFETY: quad (seg, j) of blocks jb..jb+1 lies inside the packing.
            let w0 = unsafe { _mm512_loadu_si512(w.add(off).cast()) };
            macro_rules! row {
                ($r:literal, $x0:ident) => {{
                    // SAFETY: quad j of segment seg of row $r is readable (contract).
                    let av = _mm512_set1_epi32(unsafe {
                        a_q.add($r * lda.row).cast::<i32>().read_unaligned()
                    });
                    $x0 = _mm512_dpbusd_epi32($x0, av, w0);
                }};
            }
            row!(0, c0_0);
            row!(1, c1_0);
            row!(2, c2_0);
            row!(3, c3_0);
            row!(4, c4_0);
            row!(5, c5_0);
            row!(6, c6_0);
            row!(7, c7_0);
            row!(8, c8_0);
            row!(9, c9_0);
            row!(10, c10_0);
            row!(11, c11_0);
        }
    }
    let acc = [
        [c0_0],
        [c1_0],
        [c2_0],
        [c3_0],
        [c4_0],
        [c5_0],
        [c6_0],
        [c7_0],
        [c8_0],
        [c9_0],
        [c10_0],
        [c11_0],
    ];
    // SAFETY: forwarded from this function's contract.
    unsafe { epilogue::<12, 1>(p, &acc, dst, jb) }
}
