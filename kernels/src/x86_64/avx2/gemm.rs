//! Int8 GEMM micro-kernels with `vpmaddwd`: A rows are widened to i16 (zero point subtracted)
//! into scratch, six at a time; tiles of up to 6 rows × 16 output channels (12 accumulators:
//! with 4 rows, 8, the weights were loaded once per 4 rows and ran 3–8 % slower).

use core::arch::x86_64::*;

use super::requant::{Out8, Rq8, finish8, pack8};
use crate::gemm::PackedGemm;

/// Rows per micro-tile (and per widened block).
pub(crate) const MR: usize = 6;
/// 8-channel blocks per micro-tile.
pub(crate) const NB: usize = 2;

/// Bytes of one widened A row of `k` values: `k` i16 padded to an even count.
pub(crate) fn row_bytes(k: usize) -> usize {
    k.div_ceil(2) * 4
}

/// `c[i·ldc + j] = requant(Σ a[i·lda + k]·w[j][k])`; `scratch` holds
/// [`PackedGemm::scratch_bytes`] bytes.
pub(crate) fn gemm(
    p: &PackedGemm,
    a: &[i8],
    lda: usize,
    m: usize,
    c: &mut [i8],
    ldc: usize,
    scratch: &mut [u8],
) {
    super::assert_supported();
    if m == 0 || p.n == 0 {
        return;
    }
    let row_bytes = row_bytes(p.k);
    assert!(
        lda >= p.k && a.len() >= (m - 1) * lda + p.k,
        "gemm: A too short"
    );
    assert!(
        ldc >= p.n && c.len() >= (m - 1) * ldc + p.n,
        "gemm: C too short"
    );
    assert!(scratch.len() >= MR * row_bytes, "gemm: scratch too short");
    let mut i = 0;
    while i < m {
        let mr = (m - i).min(MR);
        // Widen rows i..i+mr: (x − zp) as i16, the odd tail padded with 0.
        for r in 0..mr {
            let row = &a[(i + r) * lda..(i + r) * lda + p.k];
            let dst = &mut scratch[r * row_bytes..(r + 1) * row_bytes];
            dst.fill(0);
            for (d, &x) in dst.chunks_exact_mut(2).zip(row) {
                d.copy_from_slice(&((x as i32 - p.input_zp) as i16).to_ne_bytes());
            }
        }
        tiles(p, &scratch[..mr * row_bytes], mr, &mut c[i * ldc..], ldc);
        i += mr;
    }
}

/// As [`gemm`] on `m` rows already widened ([`row_bytes`] each, e.g. by
/// [`super::im2col::im2col_widened`]).
pub(crate) fn gemm_widened(p: &PackedGemm, a: &[u8], m: usize, c: &mut [i8], ldc: usize) {
    super::assert_supported();
    if m == 0 || p.n == 0 {
        return;
    }
    let rb = row_bytes(p.k);
    assert!(a.len() >= m * rb, "gemm: A too short");
    assert!(
        ldc >= p.n && c.len() >= (m - 1) * ldc + p.n,
        "gemm: C too short"
    );
    let mut i = 0;
    while i < m {
        let mr = (m - i).min(MR);
        tiles(p, &a[i * rb..(i + mr) * rb], mr, &mut c[i * ldc..], ldc);
        i += mr;
    }
}

/// One block of `mr <= MR` widened rows (`a`) into rows of `c`, every channel block.
fn tiles(p: &PackedGemm, a: &[u8], mr: usize, c: &mut [i8], ldc: usize) {
    let rb = row_bytes(p.k);
    assert!(mr <= MR && a.len() >= mr * rb, "gemm: A block too short");
    assert!(c.len() >= (mr - 1) * ldc + p.n, "gemm: C block too short");
    assert_eq!(
        p.w16.len(),
        p.n.div_ceil(16) * 16 * p.k.div_ceil(2) * 2,
        "gemm: not packed for AVX2"
    );
    let blocks = p.n.div_ceil(8);
    let mut jb = 0;
    while jb < blocks {
        let nb = (blocks - jb).min(NB);
        // SAFETY: the CPU supports AVX2 (callers assert it); `a` holds mr widened rows of
        // 2·kp i16; `c` holds mr rows (stride ldc) of at least p.n channels (asserted); stores
        // stop at channel p.n.
        unsafe { tile_dispatch(p, a.as_ptr(), rb, c.as_mut_ptr(), ldc, jb, nb, mr) };
        jb += nb;
    }
}

/// # Safety
/// AVX2 available; `a` holds `mr` widened rows of `row_bytes`; `c` has `mr` rows (stride
/// `ldc`) with room for channels `8·jb..p.n`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_dispatch(
    p: &PackedGemm,
    a: *const u8,
    row_bytes: usize,
    c: *mut i8,
    ldc: usize,
    jb: usize,
    nb: usize,
    mr: usize,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match (mr, nb) {
            (1, 1) => tile::<1, 1>(p, a, row_bytes, c, ldc, jb),
            (1, 2) => tile::<1, 2>(p, a, row_bytes, c, ldc, jb),
            (2, 1) => tile::<2, 1>(p, a, row_bytes, c, ldc, jb),
            (2, 2) => tile::<2, 2>(p, a, row_bytes, c, ldc, jb),
            (3, 1) => tile::<3, 1>(p, a, row_bytes, c, ldc, jb),
            (3, 2) => tile::<3, 2>(p, a, row_bytes, c, ldc, jb),
            (4, 1) => tile::<4, 1>(p, a, row_bytes, c, ldc, jb),
            (4, 2) => tile::<4, 2>(p, a, row_bytes, c, ldc, jb),
            (5, 1) => tile::<5, 1>(p, a, row_bytes, c, ldc, jb),
            (5, 2) => tile::<5, 2>(p, a, row_bytes, c, ldc, jb),
            (6, 1) => tile::<6, 1>(p, a, row_bytes, c, ldc, jb),
            (6, 2) => tile::<6, 2>(p, a, row_bytes, c, ldc, jb),
            _ => unreachable!(),
        }
    }
}

/// # Safety
/// As [`tile_dispatch`] with `mr = R`, `nb = B`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const R: usize, const B: usize>(
    p: &PackedGemm,
    a: *const u8,
    row_bytes: usize,
    c: *mut i8,
    ldc: usize,
    jb: usize,
) {
    let kp = p.k.div_ceil(2);
    let block_stride = kp * 16;
    let mut acc = [[_mm256_setzero_si256(); B]; R];
    // SAFETY: blocks jb..jb+B exist in the padded packing.
    let w0 = unsafe { p.w16.as_ptr().add(jb * block_stride) };
    for q in 0..kp {
        let mut w = [_mm256_setzero_si256(); B];
        for (b, wb) in w.iter_mut().enumerate() {
            // SAFETY: pair q of block jb + b: 16 i16 inside the packing.
            *wb = unsafe { _mm256_loadu_si256(w0.add(b * block_stride + q * 16).cast()) };
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: pair q of widened row r lies inside its row_bytes = 4·kp.
            let pair = unsafe { a.add(r * row_bytes + q * 4).cast::<i32>().read_unaligned() };
            let av = _mm256_set1_epi32(pair);
            for (accv, wb) in acc_r.iter_mut().zip(&w) {
                *accv = _mm256_add_epi32(*accv, _mm256_madd_epi16(av, *wb));
            }
        }
    }
    let o = Out8::new(p.out);
    for b in 0..B {
        let ch = (jb + b) * 8;
        // SAFETY: per-channel arrays are padded to a multiple of 16 >= ch + 8.
        let (bias, q) = unsafe {
            (
                _mm256_loadu_si256(p.quant.bias.as_ptr().add(ch).cast()),
                Rq8::load(&p.quant, ch),
            )
        };
        let left = (p.n - ch).min(8);
        for (r, acc_r) in acc.iter().enumerate() {
            let bytes = pack8(finish8(_mm256_add_epi32(acc_r[b], bias), q, o));
            // SAFETY: row r has room for channels ch..ch+left (left <= p.n − ch).
            unsafe {
                let dst = c.add(r * ldc + ch);
                if left == 8 {
                    _mm_storel_epi64(dst.cast(), bytes);
                } else {
                    let mut tmp = [0i8; 16];
                    _mm_storeu_si128(tmp.as_mut_ptr().cast(), bytes);
                    core::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, left);
                }
            }
        }
    }
}
