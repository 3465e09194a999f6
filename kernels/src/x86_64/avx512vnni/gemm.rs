//! Int8 GEMM micro-kernels with `vpdpbusd`: tiles of up to 6 rows × 64 output channels, or
//! 12 rows × 32 when at most 32 channels are left (24 zmm accumulators either way), weights
//! streamed from the packed `[n/16][k/4][16][4]` layout.
//!
//! Blocks of [`ROWS`] rows of A are first copied into scratch flipped to u8 (`x ^ 0x80`) in
//! rows of k rounded up to 4 bytes (the padding's packed weights are zero), so the inner loop
//! is only broadcast loads, weight loads and `vpdpbusd`. [`gemm_flipped`] and
//! [`gemm_strided`] take A already flipped: im2col rows, or rows read in place from a padded
//! input ([`ALayout`]).

use core::arch::x86_64::*;

use super::gemm_pairs;
use super::im2col::flip_copy;
use super::requant::{LaneRequant, Out16, Rq16, Rq16F32, Rq16Fast, finish16, finish16_fast};
use crate::conv_add::Residual;
use crate::gemm::{OutputQuant, PackedGemm};

/// Rows per micro-tile.
pub(crate) const MR: usize = 6;
/// 16-channel blocks per micro-tile.
pub(crate) const NB: usize = 4;
/// Rows of A flipped into scratch at a time.
pub(crate) const ROWS: usize = 96;

/// Where the bytes of A lie: row `r`, quad `q = s·seg_quads + j` (segment `s`, quad `j` in it)
/// is the 4 bytes at `r·row + s·seg_stride + 4j`. A plain matrix is one segment of `k4 / 4`
/// quads; a convolution read straight from its padded input has one segment per kernel row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ALayout {
    /// Bytes between consecutive rows.
    pub row: usize,
    /// Segments per row.
    pub segs: usize,
    /// Quads per segment.
    pub seg_quads: usize,
    /// Bytes between consecutive segments of a row.
    pub seg_stride: usize,
}

impl ALayout {
    /// Dense rows of `k4` bytes.
    fn dense(k4: usize) -> Self {
        ALayout {
            row: k4,
            segs: 1,
            seg_quads: k4 / 4,
            seg_stride: 0,
        }
    }

    /// Bytes from a tile's first row to the end of the last quad of row `rows − 1`.
    pub(crate) fn span(&self, rows: usize) -> usize {
        (rows - 1) * self.row + (self.segs - 1) * self.seg_stride + self.seg_quads * 4
    }
}

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
/// (`layout.segs · layout.seg_quads · 4` must equal the packed k rounded up to 4).
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
    assert_eq!(layout.segs * layout.seg_quads * 4, k4, "gemm: A layout");
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
/// AVX-512 VNNI with `la.segs · la.seg_quads` quads.
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
    let bs = lda.segs * lda.seg_quads * 64;
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
        for j in 0..lda.seg_quads {
            let q = s * lda.seg_quads + j;
            let mut w = [_mm512_setzero_si512(); B];
            for (b, wb) in w.iter_mut().enumerate() {
                // SAFETY: q < segs · seg_quads, so the 64 bytes lie inside block jb + b.
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

/// The full 6 × 64 tile with its 24 accumulators in named locals (arrays indexed in loops
/// were left in memory by LLVM, costing a store per `vpdpbusd`).
///
/// # Safety
/// As [`tile_dispatch`] with `mr = 6`, `nb = 4`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_6x4(p: &PackedGemm, a: *const u8, lda: ALayout, dst: Dst, jb: usize) {
    let bs = lda.segs * lda.seg_quads * 64;
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
        for j in 0..lda.seg_quads {
            let off = (seg * lda.seg_quads + j) * 64;
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
unsafe fn tile_12x2(p: &PackedGemm, a: *const u8, lda: ALayout, dst: Dst, jb: usize) {
    let bs = lda.segs * lda.seg_quads * 64;
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
        for j in 0..lda.seg_quads {
            let off = (seg * lda.seg_quads + j) * 64;
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
unsafe fn tile_12x1(p: &PackedGemm, a: *const u8, lda: ALayout, dst: Dst, jb: usize) {
    let bs = lda.segs * lda.seg_quads * 64;
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
        for j in 0..lda.seg_quads {
            let off = (seg * lda.seg_quads + j) * 64;
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

/// Requantizes and stores an `R × 16B` block of accumulators (bias included), adding the
/// residual if `dst` has one.
///
/// # Safety
/// `dst.c` has `R` rows (stride `ldc`) with room for channels `16·jb..p.n`; the skip
/// operand (if any) has `R` rows.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn epilogue<const R: usize, const B: usize>(
    p: &PackedGemm,
    acc: &[[__m512i; B]; R],
    dst: Dst,
    jb: usize,
) {
    if p.quant.f32_range.is_some() {
        // SAFETY: forwarded from this function's contract; the channels are in f32 form
        // (bounded where `f32_bounded` says so).
        unsafe {
            if p.quant.f32_bounded {
                epilogue_single_step::<R, B, Rq16F32<false>>(p, acc, dst, jb)
            } else {
                epilogue_single_step::<R, B, Rq16F32>(p, acc, dst, jb)
            }
        };
        return;
    }
    if p.quant.fast {
        // SAFETY: forwarded from this function's contract; the channels are in fast form.
        unsafe { epilogue_single_step::<R, B, Rq16Fast>(p, acc, dst, jb) };
        return;
    }
    let (c, ldc) = (dst.c, dst.ldc);
    let o = Out16::new(p.out);
    for b in 0..B {
        let ch = (jb + b) * 16;
        // SAFETY: the per-channel arrays are padded to a multiple of 16 channels.
        let (q, qf) = unsafe {
            if p.quant.fast {
                (None, Some(Rq16Fast::load(&p.quant, ch)))
            } else {
                (Some(Rq16::load(&p.quant, ch)), None)
            }
        };
        let left = p.n - ch;
        let mask: __mmask16 = if left >= 16 {
            0xFFFF
        } else {
            (1u16 << left) - 1
        };
        let skip_mask = dst.skip.map_or(0, |s| s.mask(jb + b));
        for (r, acc_r) in acc.iter().enumerate() {
            let mut v = match (q, qf) {
                (_, Some(qf)) => finish16_fast(acc_r[b], qf, o),
                (Some(q), None) => finish16(acc_r[b], q, o),
                (None, None) => unreachable!(),
            };
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

/// [`epilogue_packed`], out of line for the 12-row tiles: inlined, its constants were kept
/// live across the tile's K loop, whose 24 accumulators then spilled to the stack on every
/// iteration (`perf annotate`; 28×28×192 → 32 ran at 245 instead of 474 GOPS, depending on
/// the build). Out of line the accumulators are stored once per tile.
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
        if R > MR {
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
/// together (`vpackssdw`, + zero point saturating in i16, `vpacksswb`), clamped on bytes and
/// put back in channel order with one `vpermd` (the packs interleave 128-bit lanes). Equal to
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
        let bytes = _mm512_min_epi8(_mm512_max_epi8(bytes, min), max);
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
