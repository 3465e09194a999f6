//! Int8 GEMM micro-kernels with `vpdpbusd`: tiles of up to 6 rows × 64 output channels
//! (24 zmm accumulators), weights streamed from the packed `[n/16][k/4][16][4]` layout.

use core::arch::x86_64::*;

use super::requant::{Out16, Rq16, finish16};
use crate::gemm::PackedGemm;

/// Rows per micro-tile.
pub(crate) const MR: usize = 6;
/// 16-channel blocks per micro-tile.
pub(crate) const NB: usize = 4;

/// `c[i·ldc + j] = requant(Σ a[i·lda + k]·w[j][k])` for `i < m`, `j < p.n`.
pub(crate) fn gemm(p: &PackedGemm, a: &[i8], lda: usize, m: usize, c: &mut [i8], ldc: usize) {
    super::assert_supported();
    if m == 0 || p.n == 0 {
        return;
    }
    assert!(
        lda >= p.k && a.len() >= (m - 1) * lda + p.k,
        "gemm: A too short"
    );
    assert!(
        ldc >= p.n && c.len() >= (m - 1) * ldc + p.n,
        "gemm: C too short"
    );
    assert_eq!(
        p.w8.len(),
        p.n.div_ceil(16) * 16 * p.k.div_ceil(4) * 4,
        "gemm: not packed for AVX-512 VNNI"
    );
    let blocks = p.n.div_ceil(16);
    let mut jb = 0;
    while jb < blocks {
        let nb = (blocks - jb).min(NB);
        let mut i = 0;
        while i < m {
            let mr = (m - i).min(MR);
            // SAFETY: the CPU supports the tier (asserted above); rows i..i+mr of A and C and
            // channel blocks jb..jb+nb lie inside the slices (lengths asserted above), and the
            // tile only touches channels < p.n when storing.
            unsafe {
                tile_dispatch(
                    p,
                    a.as_ptr().add(i * lda),
                    lda,
                    c.as_mut_ptr().add(i * ldc),
                    ldc,
                    jb,
                    nb,
                    mr,
                )
            };
            i += mr;
        }
        jb += nb;
    }
}

macro_rules! dispatch {
    ($p:ident, $a:ident, $lda:ident, $c:ident, $ldc:ident, $jb:ident, $nb:ident, $mr:ident; $($r:literal)*) => {
        match ($mr, $nb) {
            $(
                ($r, 1) => tile::<$r, 1>($p, $a, $lda, $c, $ldc, $jb),
                ($r, 2) => tile::<$r, 2>($p, $a, $lda, $c, $ldc, $jb),
                ($r, 3) => tile::<$r, 3>($p, $a, $lda, $c, $ldc, $jb),
                ($r, 4) => tile::<$r, 4>($p, $a, $lda, $c, $ldc, $jb),
            )*
            _ => unreachable!(),
        }
    };
}

/// # Safety
/// The CPU supports AVX-512 F/BW/VL/VNNI; `a` points at `mr` rows of `p.k` bytes (stride
/// `lda`); `c` at `mr` rows (stride `ldc`) with room for channels `16·jb..p.n`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_dispatch(
    p: &PackedGemm,
    a: *const i8,
    lda: usize,
    c: *mut i8,
    ldc: usize,
    jb: usize,
    nb: usize,
    mr: usize,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe { dispatch!(p, a, lda, c, ldc, jb, nb, mr; 1 2 3 4 5 6) }
}

/// One `R × 16B` tile.
///
/// # Safety
/// As [`tile_dispatch`] with `mr = R`, `nb = B`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile<const R: usize, const B: usize>(
    p: &PackedGemm,
    a: *const i8,
    lda: usize,
    c: *mut i8,
    ldc: usize,
    jb: usize,
) {
    let k = p.k;
    let kq = k / 4;
    let block_stride = k.div_ceil(4) * 64;
    let flip = _mm512_set1_epi32(0x8080_8080_u32 as i32);
    let mut acc = [[_mm512_setzero_si512(); B]; R];
    // SAFETY: packed blocks jb..jb+B exist (the caller keeps jb + B <= n/16 rounded up).
    let w0 = unsafe { p.w8.as_ptr().add(jb * block_stride) };
    for q in 0..kq {
        let mut w = [_mm512_setzero_si512(); B];
        for (b, wb) in w.iter_mut().enumerate() {
            // SAFETY: q < ceil(k/4), so the 64 bytes lie inside block jb + b.
            *wb = unsafe { _mm512_loadu_si512(w0.add(b * block_stride + q * 64).cast()) };
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: 4q + 4 <= k bytes of row r.
            let quad = unsafe { a.add(r * lda + q * 4).cast::<i32>().read_unaligned() };
            let av = _mm512_xor_si512(_mm512_set1_epi32(quad), flip);
            for (accv, wb) in acc_r.iter_mut().zip(&w) {
                *accv = _mm512_dpbusd_epi32(*accv, av, *wb);
            }
        }
    }
    let tail = k % 4;
    if tail != 0 {
        let mut w = [_mm512_setzero_si512(); B];
        for (b, wb) in w.iter_mut().enumerate() {
            // SAFETY: the last (zero-padded) quad of block jb + b.
            *wb = unsafe { _mm512_loadu_si512(w0.add(b * block_stride + kq * 64).cast()) };
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let mut bytes = [0u8; 4];
            for (t, byte) in bytes.iter_mut().enumerate().take(tail) {
                // SAFETY: 4·kq + t < k, inside row r.
                *byte = unsafe { *a.add(r * lda + kq * 4 + t) } as u8;
            }
            let av = _mm512_xor_si512(_mm512_set1_epi32(i32::from_le_bytes(bytes)), flip);
            for (accv, wb) in acc_r.iter_mut().zip(&w) {
                *accv = _mm512_dpbusd_epi32(*accv, av, *wb);
            }
        }
    }
    let o = Out16::new(p.out);
    for b in 0..B {
        let ch = (jb + b) * 16;
        // SAFETY: the per-channel arrays are padded to a multiple of 16 channels.
        let (bias, q) = unsafe {
            (
                _mm512_loadu_si512(p.quant.bias.as_ptr().add(ch).cast()),
                Rq16 {
                    mult: _mm512_loadu_si512(p.quant.mult.as_ptr().add(ch).cast()),
                    lshift: _mm512_loadu_si512(p.quant.lshift.as_ptr().add(ch).cast()),
                    rshift: _mm512_loadu_si512(p.quant.rshift.as_ptr().add(ch).cast()),
                },
            )
        };
        let left = p.n - ch;
        let mask: __mmask16 = if left >= 16 {
            0xFFFF
        } else {
            (1u16 << left) - 1
        };
        for (r, acc_r) in acc.iter().enumerate() {
            let v = finish16(_mm512_add_epi32(acc_r[b], bias), q, o);
            // SAFETY: the mask limits the store to channels < p.n of row r.
            unsafe { _mm_mask_storeu_epi8(c.add(r * ldc + ch), mask, _mm512_cvtsepi32_epi8(v)) };
        }
    }
}
