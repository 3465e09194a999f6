//! Int8 GEMM micro-kernels with `vpmaddwd`: A rows are widened to i16 (zero point subtracted)
//! into scratch, six at a time; tiles of up to 6 rows × 16 output channels (12 accumulators:
//! with 4 rows, 8, the weights were loaded once per 4 rows and ran 3–8 % slower). The
//! accumulators start at the bias; the epilogue requantizes in the channels' form (chosen
//! once per call, [`LaneRequant8`]) and narrows two rows of 16 channels at a time
//! ([`Narrow8::two_runs`]).

use core::arch::x86_64::*;

use super::requant::{LaneRequant8, Narrow8, Rq8, Rq8F32, Rq8Fast};
use super::store::store_first as store;
use crate::gemm::{ALayout, PackedGemm};

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
        // SAFETY: the CPU supports AVX2 (asserted above).
        unsafe { widen_rows(p, &a[i * lda..], lda, mr, &mut scratch[..mr * row_bytes]) };
        let la = ALayout::dense(row_bytes);
        tiles(
            p,
            &scratch[..mr * row_bytes],
            la,
            mr,
            &mut c[i * ldc..],
            ldc,
        );
        i += mr;
    }
}

/// Widens the first `mr` rows of `a` (stride `lda`) into `dst` as rows of [`row_bytes`]:
/// `x − zp` as i16, an odd `k` padded with 0.
#[target_feature(enable = "avx2")]
fn widen_rows(p: &PackedGemm, a: &[i8], lda: usize, mr: usize, dst: &mut [u8]) {
    let (k, zp) = (p.k, p.input_zp as i16);
    if lda == k && k.is_multiple_of(2) {
        // Dense rows with nothing to pad (a pointwise convolution): one run.
        return super::im2col::widen(dst, &a[..mr * k], zp);
    }
    for (r, dst) in dst.chunks_exact_mut(row_bytes(k)).take(mr).enumerate() {
        super::im2col::widen(dst, &a[r * lda..r * lda + k], zp);
        if k % 2 == 1 {
            dst[2 * k..].fill(0);
        }
    }
}

/// As [`gemm`] on `m` rows already widened ([`row_bytes`] each, e.g. by
/// [`super::im2col::im2col_widened`]).
pub(crate) fn gemm_widened(p: &PackedGemm, a: &[u8], m: usize, c: &mut [i8], ldc: usize) {
    gemm_strided(p, a, ALayout::dense(row_bytes(p.k)), m, c, ldc);
}

/// As [`gemm_widened`], with A's `m` widened rows laid out as `la` says inside `a` (in pairs
/// of i16: `la.segs · la.seg_words` must be the packed k's pair count), e.g. read in place
/// from a padded input ([`crate::conv::pad_image`]).
pub(crate) fn gemm_strided(
    p: &PackedGemm,
    a: &[u8],
    la: ALayout,
    m: usize,
    c: &mut [i8],
    ldc: usize,
) {
    super::assert_supported();
    if m == 0 || p.n == 0 {
        return;
    }
    assert!(a.len() >= la.span(m), "gemm: A too short");
    assert!(
        ldc >= p.n && c.len() >= (m - 1) * ldc + p.n,
        "gemm: C too short"
    );
    let mut i = 0;
    while i < m {
        let mr = (m - i).min(MR);
        tiles(p, &a[i * la.row..], la, mr, &mut c[i * ldc..], ldc);
        i += mr;
    }
}

/// One block of `mr <= MR` widened rows (`a`, laid out as `la` says) into rows of `c`, every
/// channel block.
fn tiles(p: &PackedGemm, a: &[u8], la: ALayout, mr: usize, c: &mut [i8], ldc: usize) {
    assert!(
        mr <= MR && a.len() >= la.span(mr),
        "gemm: A block too short"
    );
    assert_eq!(la.segs * la.seg_words, p.k.div_ceil(2), "gemm: A layout");
    assert!(c.len() >= (mr - 1) * ldc + p.n, "gemm: C block too short");
    let wide = !p.w16.is_empty();
    assert_eq!(
        if wide { p.w16.len() } else { p.w8x2.len() },
        p.n.div_ceil(16) * 16 * p.k.div_ceil(2) * 2,
        "gemm: not packed for AVX2"
    );
    if wide {
        tiles_of::<i16>(p, a, la, mr, c, ldc)
    } else {
        tiles_of::<i8>(p, a, la, mr, c, ldc)
    }
}

/// [`tiles`] with the weights stored as `W`.
fn tiles_of<W: PairWeights>(
    p: &PackedGemm,
    a: &[u8],
    la: ALayout,
    mr: usize,
    c: &mut [i8],
    ldc: usize,
) {
    let blocks = p.n.div_ceil(8);
    let mut jb = 0;
    while jb < blocks {
        let nb = (blocks - jb).min(NB);
        let (a, c) = (a.as_ptr(), c.as_mut_ptr());
        // SAFETY: AVX2 runs (callers assert it); the mr rows' pairs lie inside `a`, `c` holds
        // mr rows (stride ldc) of p.n channels (asserted); stores stop at channel p.n; the
        // form is `p.quant`'s; the weights are packed as `W` (`tiles` checked the length).
        unsafe {
            match (p.quant.f32_range.is_some(), p.quant.f32_bounded) {
                (true, true) => tile_dispatch::<Rq8F32<false>, W>(p, a, la, c, ldc, jb, nb, mr),
                (true, false) => tile_dispatch::<Rq8F32<true>, W>(p, a, la, c, ldc, jb, nb, mr),
                (false, _) => match (p.quant.fast, p.quant.ties_up) {
                    (true, true) => tile_dispatch::<Rq8Fast<true>, W>(p, a, la, c, ldc, jb, nb, mr),
                    (true, false) => {
                        tile_dispatch::<Rq8Fast<false>, W>(p, a, la, c, ldc, jb, nb, mr)
                    }
                    (false, _) => tile_dispatch::<Rq8, W>(p, a, la, c, ldc, jb, nb, mr),
                },
            }
        };
        jb += nb;
    }
}

/// How the packed weights are stored: i16, or i8 widened as they are loaded
/// ([`crate::gemm::NARROW_WEIGHT_ROWS`]).
trait PairWeights: Sized {
    /// The packing's first weight.
    fn base(p: &PackedGemm) -> *const Self;
    /// The 16 weights at `w` as i16.
    ///
    /// # Safety
    /// AVX2 available; 16 weights at `w` are readable.
    unsafe fn load16(w: *const Self) -> __m256i;
}

impl PairWeights for i16 {
    fn base(p: &PackedGemm) -> *const i16 {
        p.w16.as_ptr()
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load16(w: *const i16) -> __m256i {
        // SAFETY: 16 i16 at `w` are readable (contract).
        unsafe { _mm256_loadu_si256(w.cast()) }
    }
}

impl PairWeights for i8 {
    fn base(p: &PackedGemm) -> *const i8 {
        p.w8x2.as_ptr()
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load16(w: *const i8) -> __m256i {
        // SAFETY: 16 i8 at `w` are readable (contract).
        _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(w.cast()) })
    }
}

/// # Safety
/// AVX2 available; `a` holds `mr` widened rows laid out as `la` says (every pair readable);
/// `c` has `mr` rows (stride `ldc`) with room for channels `8·jb..p.n`; `p.quant` is in form
/// `Q`; the weights are packed as `W`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_dispatch<Q: LaneRequant8, W: PairWeights>(
    p: &PackedGemm,
    a: *const u8,
    la: ALayout,
    c: *mut i8,
    ldc: usize,
    jb: usize,
    nb: usize,
    mr: usize,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match (mr, nb) {
            (1, 1) => tile::<1, 1, Q, W>(p, a, la, c, ldc, jb),
            (1, 2) => tile::<1, 2, Q, W>(p, a, la, c, ldc, jb),
            (2, 1) => tile::<2, 1, Q, W>(p, a, la, c, ldc, jb),
            (2, 2) => tile::<2, 2, Q, W>(p, a, la, c, ldc, jb),
            (3, 1) => tile::<3, 1, Q, W>(p, a, la, c, ldc, jb),
            (3, 2) => tile::<3, 2, Q, W>(p, a, la, c, ldc, jb),
            (4, 1) => tile::<4, 1, Q, W>(p, a, la, c, ldc, jb),
            (4, 2) => tile::<4, 2, Q, W>(p, a, la, c, ldc, jb),
            (5, 1) => tile::<5, 1, Q, W>(p, a, la, c, ldc, jb),
            (5, 2) => tile::<5, 2, Q, W>(p, a, la, c, ldc, jb),
            (6, 1) => tile::<6, 1, Q, W>(p, a, la, c, ldc, jb),
            (6, 2) => tile::<6, 2, Q, W>(p, a, la, c, ldc, jb),
            _ => unreachable!(),
        }
    }
}

/// # Safety
/// As [`tile_dispatch`] with `mr = R`, `nb = B`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const R: usize, const B: usize, Q: LaneRequant8, W: PairWeights>(
    p: &PackedGemm,
    a: *const u8,
    la: ALayout,
    c: *mut i8,
    ldc: usize,
    jb: usize,
) {
    let kp = p.k.div_ceil(2);
    let block_stride = kp * 16;
    // SAFETY: per-channel arrays are padded to a multiple of 16 >= 8·(jb + B).
    let bias: [__m256i; B] = core::array::from_fn(|b| unsafe {
        _mm256_loadu_si256(p.quant.bias.as_ptr().add((jb + b) * 8).cast())
    });
    let mut acc = [bias; R];
    // SAFETY: blocks jb..jb+B exist in the padded packing.
    let w0 = unsafe { W::base(p).add(jb * block_stride) };
    for s in 0..la.segs {
        let a_s = a.wrapping_add(s * la.seg_stride);
        for j in 0..la.seg_words {
            let q = s * la.seg_words + j;
            let mut w = [_mm256_setzero_si256(); B];
            for (b, wb) in w.iter_mut().enumerate() {
                // SAFETY: pair q < kp of block jb + b: 16 weights inside the packing.
                *wb = unsafe { W::load16(w0.add(b * block_stride + q * 16)) };
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: pair j of segment s of row r is readable (contract).
                let pair = unsafe { a_s.add(r * la.row + 4 * j).cast::<i32>().read_unaligned() };
                let av = _mm256_set1_epi32(pair);
                for (accv, wb) in acc_r.iter_mut().zip(&w) {
                    *accv = _mm256_add_epi32(*accv, _mm256_madd_epi16(av, *wb));
                }
            }
        }
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { epilogue::<R, B, Q, W>(p, &acc, c, ldc, jb) }
}

/// Requantizes the tile's accumulators (bias included) and stores rows `0..R`, channels
/// `8·jb..` up to `8·(jb + B)` or `p.n`. `W` only keeps one caller per instance: with two
/// (both weight forms) LLVM stopped inlining it, and the small-K GEMMs ran 5–7 % slower.
///
/// # Safety
/// As [`tile`].
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn epilogue<const R: usize, const B: usize, Q: LaneRequant8, W: PairWeights>(
    p: &PackedGemm,
    acc: &[[__m256i; B]; R],
    c: *mut i8,
    ldc: usize,
    jb: usize,
) {
    let ch = jb * 8;
    let left = p.n - ch;
    let (o, full) = (Narrow8::new(p.out), p.out.full_range());
    // SAFETY: per-channel arrays are padded to a multiple of 16 >= ch + 8·B; `ch` is even;
    // the form is `p.quant`'s (contract).
    let q: [Q; B] = core::array::from_fn(|b| unsafe { Q::load(&p.quant, ch + 8 * b) });
    let y: [[__m256i; B]; R] = core::array::from_fn(|r| {
        // SAFETY: the CPU supports AVX2 (contract).
        core::array::from_fn(|b| unsafe { q[b].apply_narrowed(acc[r][b]) })
    });
    if B == 1 {
        for (r, y_r) in y.iter().enumerate() {
            // SAFETY: row r has room for channels ch..ch + min(left, 8) (contract).
            unsafe { store(c.add(r * ldc + ch), left.min(8), o.one_block(y_r[0])) };
        }
        return;
    }
    let run = |r: usize| [y[r][0], y[r][B - 1]];
    for r in (0..R).step_by(2) {
        let second = (r + 1 < R).then_some(r + 1);
        let bytes = o.two_runs(run(r), run(second.unwrap_or(r)), full);
        // SAFETY: rows r and r + 1 (when < R) have room for channels ch..ch + min(left, 16)
        // (contract).
        unsafe {
            store(
                c.add(r * ldc + ch),
                left.min(16),
                _mm256_castsi256_si128(bytes),
            );
            if let Some(r1) = second {
                let hi = _mm256_extracti128_si256(bytes, 1);
                store(c.add(r1 * ldc + ch), left.min(16), hi);
            }
        }
    }
}
