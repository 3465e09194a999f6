//! Int8 GEMM micro-kernels with `vpdpbusd`: tiles of up to 6 rows × 64 output channels, or
//! 12 rows × 32 when at most 32 channels are left (24 zmm accumulators either way), weights
//! streamed from the packed `[n/16][k/4][16][4]` layout.
//!
//! Blocks of [`ROWS`] rows of A are first copied into scratch flipped to u8 (`x ^ 0x80`) in
//! rows of k rounded up to 4 bytes (the padding's packed weights are zero), so the inner loop
//! is only broadcast loads, weight loads and `vpdpbusd`. [`gemm_flipped`] and
//! [`gemm_strided`] take A already flipped: im2col rows, or rows read in place from a padded
//! input ([`ALayout`]).

mod epilogue;
mod tiles;

use core::arch::x86_64::*;

use super::gemm_pairs;
use super::im2col::flip_copy;
use super::requant::Out16;
use crate::conv_add::Residual;
pub(crate) use crate::gemm::ALayout;
use crate::gemm::{OutputQuant, PackedGemm};
use epilogue::epilogue;
use tiles::{tile_6x4, tile_12x1, tile_12x2};

/// Rows per micro-tile.
pub(crate) const MR: usize = 6;
/// 16-channel blocks per micro-tile.
pub(crate) const NB: usize = 4;
/// Rows of A flipped into scratch at a time.
pub(crate) const ROWS: usize = 96;

/// A residual added in the epilogue: `c = add.apply(requant(acc), skip)` (the add of a
/// [`Residual`], the GEMM's result as first operand), the skip operand's channels `ldb..n`
/// read as the fill value. Small (three words): it travels by value with every tile.
#[derive(Clone, Copy)]
struct Skip {
    /// The skip operand's row for C's row 0.
    b: *const i8,
    /// Channels (bytes) of a skip row.
    ldb: usize,
    /// The add's broadcast constants, alive for the whole GEMM call.
    consts: *const SkipConsts,
}

/// The broadcast constants of a [`Skip`].
struct SkipConsts {
    /// Each i32 lane holds the pair (m1, m2) that `vpdpwssd` applies to (conv, skip).
    mults: __m512i,
    bias: __m512i,
    shift: __m128i,
    fill: __m128i,
    /// The add's output zero point and activation range, as [`Out16`] (i32 lanes).
    out: Out16,
    /// The same, as the packed epilogue narrows with them ([`Narrow16`]).
    narrow: Narrow16,
}

/// An output zero point as i16 lanes and clamp range as i8 lanes: what the packed epilogue
/// narrows with (`vpackssdw`, + zero point saturating, `vpacksswb`, clamp).
#[derive(Clone, Copy)]
struct Narrow16 {
    zp: __m512i,
    min: __m512i,
    max: __m512i,
}

impl Narrow16 {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn new(o: OutputQuant) -> Self {
        Narrow16 {
            zp: _mm512_set1_epi16(o.zp as i16),
            min: _mm512_set1_epi8(o.min as i8),
            max: _mm512_set1_epi8(o.max as i8),
        }
    }
}

impl Skip {
    /// Lanes of the 16-channel block `blk` that the skip row holds.
    fn mask(&self, blk: usize) -> u16 {
        let have = self.ldb.saturating_sub(blk * 16);
        if have >= 16 { !0 } else { (1u16 << have) - 1 }
    }

    /// The add before its zero point, `(x·m1 + skip·m2 + bias) >> shift`, for the 16
    /// channels of block `blk` of row `r`; `x` is the convolution's output (int8 values in
    /// i32 lanes).
    ///
    /// # Safety
    /// Skip row `r` exists; `mask` is [`Skip::mask`] of `blk`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn sum(&self, x: __m512i, r: usize, blk: usize, mask: u16) -> __m512i {
        // SAFETY: the constants outlive the GEMM call that made this Skip (see `gemm`).
        let k = unsafe { &*self.consts };
        // SAFETY: the mask keeps the load inside the row's `ldb` channels (contract).
        let y = unsafe { _mm_mask_loadu_epi8(k.fill, mask, self.b.add(r * self.ldb + blk * 16)) };
        // Each dword: x in its low half, the skip value in its high half.
        let y = _mm512_slli_epi32::<16>(_mm512_cvtepi8_epi32(y));
        let pairs = _mm512_mask_blend_epi16(0xAAAA_AAAA, x, y);
        _mm512_sra_epi32(_mm512_dpwssd_epi32(k.bias, pairs, k.mults), k.shift)
    }
}

/// Where a tile's results go: C's rows, and the residual they take, if any.
#[derive(Clone, Copy)]
struct Dst {
    c: *mut i8,
    ldc: usize,
    skip: Option<Skip>,
}

impl Dst {
    /// The same destination from row `i` on.
    ///
    /// # Safety
    /// Row `i` exists in C (and in the skip operand).
    unsafe fn rows(self, i: usize) -> Dst {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            Dst {
                c: self.c.add(i * self.ldc),
                skip: self.skip.map(|s| Skip {
                    b: s.b.add(i * s.ldb),
                    ..s
                }),
                ..self
            }
        }
    }
}

/// Scratch bytes for reduction length `k`.
pub(crate) fn scratch_bytes(k: usize) -> usize {
    ROWS * k.div_ceil(4) * 4
}

/// `c[i·ldc + j] = requant(Σ a[i·lda + k]·w[j][k])` for `i < m`, `j < p.n`; with a
/// residual (`pad.channels = p.n`, `m` skip rows) each result then goes through its add in the
/// same pass, `c[i·ldc + j] = add.apply(requant(…), skip_ij)`, bit-exact with the GEMM then
/// the add.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    p: &PackedGemm,
    a: &[i8],
    lda: usize,
    m: usize,
    c: &mut [i8],
    ldc: usize,
    residual: Option<&Residual<'_>>,
    scratch: &mut [u8],
) {
    super::assert_supported();
    if m == 0 || p.n == 0 {
        return;
    }
    let consts = residual.map(|r| {
        assert_eq!(r.pad.channels, p.n, "gemm: residual channels");
        r.pad.check(m * p.n, r.skip.len(), m * p.n);
        skip_consts(r)
    });
    // `consts` lives until the end of this call, past every tile that reads it.
    let skip = residual.zip(consts.as_ref()).map(|(r, c)| Skip {
        b: r.skip.as_ptr(),
        ldb: r.pad.b_channels,
        consts: c,
    });
    let k4 = p.k.div_ceil(4) * 4;
    assert!(
        lda >= p.k && a.len() >= (m - 1) * lda + p.k,
        "gemm: A too short"
    );
    assert!(
        ldc >= p.n && c.len() >= (m - 1) * ldc + p.n,
        "gemm: C too short"
    );
    assert!(
        scratch.len() >= scratch_bytes(p.k),
        "gemm: scratch too short"
    );
    assert_eq!(
        p.w8.len(),
        p.n.div_ceil(16) * 16 * k4,
        "gemm: not packed for AVX-512 VNNI"
    );
    let mut i0 = 0;
    while i0 < m {
        let rows = (m - i0).min(ROWS);
        if lda == p.k && p.k == k4 {
            // Dense rows (pointwise with k a multiple of 4): one run of rows · k bytes.
            // SAFETY: the CPU supports AVX-512 F/BW (asserted above).
            unsafe { flip_copy(&mut scratch[..rows * k4], &a[i0 * lda..][..rows * k4]) };
        } else {
            // Bytes k..k4 of a row keep whatever scratch held: their packed weights are zero.
            for r in 0..rows {
                let src = &a[(i0 + r) * lda..][..p.k];
                // SAFETY: as above.
                unsafe { flip_copy(&mut scratch[r * k4..][..p.k], src) };
            }
        }
        let dst = Dst {
            c: c.as_mut_ptr(),
            ldc,
            skip,
        };
        // SAFETY: the CPU supports the tier (asserted above); scratch holds `rows` flipped
        // rows of k4 bytes; rows i0..i0+rows of C (and of the skip operand) exist (lengths
        // asserted).
        unsafe { blocks_of_rows(p, scratch.as_ptr(), ALayout::dense(k4), rows, dst.rows(i0)) };
        i0 += rows;
    }
}

/// The broadcast constants of a residual (the caller has checked the CPU's support).
fn skip_consts(r: &Residual<'_>) -> SkipConsts {
    // SAFETY: only called after `assert_supported` (AVX-512 F/BW/VL/VNNI present).
    unsafe { broadcast(r) }
}

/// # Safety
/// The CPU supports AVX-512 F/BW.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn broadcast(r: &Residual<'_>) -> SkipConsts {
    let q = &r.add;
    let out = OutputQuant {
        zp: q.out_zp,
        min: q.act_min,
        max: q.act_max,
    };
    SkipConsts {
        mults: _mm512_set1_epi32((q.m1 as u16 as i32) | ((q.m2 as i32) << 16)),
        bias: _mm512_set1_epi32(q.bias),
        shift: _mm_cvtsi32_si128(q.shift as i32),
        fill: _mm_set1_epi8(r.pad.fill),
        out: Out16::new(out),
        narrow: Narrow16::new(out),
    }
}

/// As [`gemm`], but `a` already holds `m` rows of `k` rounded up to 4 bytes, flipped to u8
/// (`x ^ 0x80`; im2col writes this form directly). The padding bytes `k..k4` of a row may hold
/// anything: their packed weights are zero.
pub(crate) fn gemm_flipped(p: &PackedGemm, a: &[u8], m: usize, c: &mut [i8], ldc: usize) {
    gemm_strided(p, a, ALayout::dense(p.k.div_ceil(4) * 4), m, c, ldc);
}

/// As [`gemm_flipped`], with A's `m` rows laid out as `layout` says inside `a`
/// (`layout.segs · layout.seg_words · 4` must equal the packed k rounded up to 4).
pub(crate) fn gemm_strided(
    p: &PackedGemm,
    a: &[u8],
    layout: ALayout,
    m: usize,
    c: &mut [i8],
    ldc: usize,
) {
    super::assert_supported();
    if m == 0 || p.n == 0 {
        return;
    }
    let k4 = p.k.div_ceil(4) * 4;
    assert_eq!(layout.segs * layout.seg_words * 4, k4, "gemm: A layout");
    assert!(a.len() >= layout.span(m), "gemm: A too short");
    assert!(
        ldc >= p.n && c.len() >= (m - 1) * ldc + p.n,
        "gemm: C too short"
    );
    assert_eq!(
        p.w8.len(),
        p.n.div_ceil(16) * 16 * k4,
        "gemm: not packed for AVX-512 VNNI"
    );
    let dst = Dst {
        c: c.as_mut_ptr(),
        ldc,
        skip: None,
    };
    // SAFETY: the CPU supports the tier (asserted above); every quad of the m rows lies inside
    // `a` (span asserted) and `c` holds m rows (length asserted).
    unsafe { blocks_of_rows(p, a.as_ptr(), layout, m, dst) };
}

/// All tiles of `rows` flipped rows of A against every channel block.
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VL/VNNI; `a` points at `rows` flipped rows laid out as
/// `la` says, `la.span(rows)` bytes readable (quads past k carry zero weights, so their
/// bytes may be anything); `dst.c` at `rows` rows (stride `ldc`) with room for channels
/// `0..p.n`, and the skip operand (if any) at `rows` rows; the weights are packed for
/// AVX-512 VNNI with `la.segs · la.seg_words` quads.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn blocks_of_rows(p: &PackedGemm, a: *const u8, la: ALayout, rows: usize, dst: Dst) {
    let blocks = p.n.div_ceil(16);
    let mut jb = 0;
    while jb < blocks {
        let nb = (blocks - jb).min(NB);
        // Narrow column blocks (up to 32 channels) take twice the rows: 24 accumulators
        // either way, and each weight load serves more rows.
        let mr_max = if nb <= 2 { 2 * MR } else { MR };
        // 17–24 channels left, no residual: 16-row tiles pairing rows in the last block.
        let pairs = nb == 2 && dst.skip.is_none() && gemm_pairs::applies(p, jb);
        let mut i = 0;
        while pairs && rows - i >= gemm_pairs::ROWS {
            // SAFETY: forwarded from this function's contract: rows i..i+16 exist in `a` and
            // `c`; blocks jb, jb + 1 are packed; `applies` checked.
            unsafe { gemm_pairs::tile(p, a.add(i * la.row), la, dst.rows(i).c, dst.ldc, jb) };
            i += gemm_pairs::ROWS;
        }
        while i < rows {
            let mr = (rows - i).min(mr_max);
            // SAFETY: forwarded from this function's contract: rows i..i+mr exist in `a` and
            // `c`; blocks jb..jb+nb are packed.
            unsafe { tile_dispatch(p, a.add(i * la.row), la, dst.rows(i), jb, nb, mr) };
            i += mr;
        }
        jb += nb;
    }
}

macro_rules! dispatch {
    ($p:ident, $a:ident, $lda:ident, $dst:ident, $jb:ident, $nb:ident, $mr:ident; $($r:literal)*) => {
        match ($mr, $nb) {
            $(
                ($r, 1) => tile::<$r, 1>($p, $a, $lda, $dst, $jb),
                ($r, 2) => tile::<$r, 2>($p, $a, $lda, $dst, $jb),
                ($r, 3) => tile::<$r, 3>($p, $a, $lda, $dst, $jb),
                ($r, 4) => tile::<$r, 4>($p, $a, $lda, $dst, $jb),
            )*
            _ => unreachable!(),
        }
    };
}

/// # Safety
/// The CPU supports AVX-512 F/BW/VL/VNNI; `a` points at `mr` flipped rows laid out as `lda`
/// says (`lda.span(mr)` bytes readable); `dst.c` at `mr` rows (stride `ldc`) with room for
/// channels `16·jb..p.n`, the skip operand (if any) at `mr` rows.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_dispatch(
    p: &PackedGemm,
    a: *const u8,
    lda: ALayout,
    dst: Dst,
    jb: usize,
    nb: usize,
    mr: usize,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        if mr == MR && nb == NB {
            tile_6x4(p, a, lda, dst, jb)
        } else if mr == 2 * MR && nb == 2 {
            tile_12x2(p, a, lda, dst, jb)
        } else if mr == 2 * MR && nb == 1 {
            tile_12x1(p, a, lda, dst, jb)
        } else if mr > MR {
            dispatch!(p, a, lda, dst, jb, nb, mr; 7 8 9 10 11)
        } else {
            dispatch!(p, a, lda, dst, jb, nb, mr; 1 2 3 4 5 6)
        }
    }
}

/// One `R × 16B` tile (edges; the full tile is [`tile_6x4`]).
///
/// # Safety
/// As [`tile_dispatch`] with `mr = R`, `nb = B`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile<const R: usize, const B: usize>(
    p: &PackedGemm,
    a: *const u8,
    lda: ALayout,
    dst: Dst,
    jb: usize,
) {
    let bs = lda.segs * lda.seg_words * 64;
    // SAFETY: the bias is padded to a multiple of 16 channels; blocks jb..jb+B exist.
    let bias: [__m512i; B] = core::array::from_fn(|b| unsafe {
        _mm512_loadu_si512(p.quant.bias.as_ptr().add((jb + b) * 16).cast())
    });
    let mut acc = [bias; R];
    // SAFETY: packed blocks jb..jb+B exist (the caller keeps jb + B <= n/16 rounded up).
    let w0 = unsafe { p.w8.as_ptr().add(jb * bs) };
    for s in 0..lda.segs {
        // SAFETY: segment s of every row lies inside A (contract: span readable).
        let a_s = unsafe { a.add(s * lda.seg_stride) };
        for j in 0..lda.seg_words {
            let q = s * lda.seg_words + j;
            let mut w = [_mm512_setzero_si512(); B];
            for (b, wb) in w.iter_mut().enumerate() {
                // SAFETY: q < segs · seg_words, so the 64 bytes lie inside block jb + b.
                *wb = unsafe { _mm512_loadu_si512(w0.add(b * bs + q * 64).cast()) };
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: quad j of segment s of row r is readable (contract).
                let av = _mm512_set1_epi32(unsafe {
                    a_s.add(r * lda.row + j * 4).cast::<i32>().read_unaligned()
                });
                for (accv, wb) in acc_r.iter_mut().zip(&w) {
                    *accv = _mm512_dpbusd_epi32(*accv, av, *wb);
                }
            }
        }
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { epilogue::<R, B>(p, &acc, dst, jb) }
}
