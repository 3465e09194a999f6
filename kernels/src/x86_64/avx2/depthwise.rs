//! Depthwise int8 with `vpmaddwd`: pairs of taps of 16 channels, widened to i16 with the zero
//! point subtracted, are interleaved (`vpunpck{l,h}wd`) into two accumulators whose channel
//! order `vpackssdw` undoes when storing. The taps' addresses move on by one stride per pixel
//! inside the row ([`TapWalk`]); computing all of them per pixel, with a readability check per
//! load, cost half the time of a 24-channel layer. The requantization form is chosen once per
//! call ([`LaneRequant8`]).
//!
//! 3×3 and 5×5 layers (dilation 1, horizontal stride 1 or 2) take [`row_columns`] instead:
//! each input column of the row is widened and interleaved once per 16-channel chunk (kernel
//! rows 0 and 1 as one pair, 2 and 3 as the next, the last row with itself one column to the
//! right) into the scratch, and every output pixel then reads the K columns it covers (a 3×3
//! layer's ten weight vectors staying in registers): a column serves K pixels (stride 1) or
//! K / 2 (stride 2) instead of being widened once per tap. Pairing the last row across
//! columns takes ⌊K/2⌋ pairs per pixel off the ⌈K/2⌉·K that pairing it with zero took (3×3:
//! 5 of 6 `vpmaddwd` pairs, 5×5: 13 of 15; kbench, 1.08–1.20×). A last chunk of at most 8
//! channels (24, 40, 72 …) runs as a half chunk ([`half_chunk`]): one vector per pair, half
//! the `vpmaddwd` and requantizations.

use core::arch::x86_64::*;

use super::requant::{LaneRequant8, Narrow8, Rq8, Rq8F32, Rq8Fast, join_low};
use crate::depthwise::{MAX_SIMD_TAPS, PackedDepthwise, TapWalk};

/// Runs a packed depthwise convolution (multiplier 1, at most [`MAX_SIMD_TAPS`] taps).
pub(crate) fn run(p: &PackedDepthwise, input: &[i8], output: &mut [i8], scratch: &mut [u8]) {
    super::assert_supported();
    let d = &p.params;
    let c = d.in_c;
    assert!(p.simd && d.multiplier == 1 && d.k_h * d.k_w <= MAX_SIMD_TAPS);
    assert_eq!(input.len(), d.input_len(), "depthwise: input length");
    assert_eq!(output.len(), d.output_len(), "depthwise: output length");
    assert!(
        scratch.len() >= p.scratch_bytes(),
        "depthwise: scratch too short"
    );
    assert_eq!(
        p.w16.len(),
        c.div_ceil(16) * (d.k_h * d.k_w).div_ceil(2) * 32,
        "depthwise: not packed for AVX2"
    );
    // The column buffer of the 3×3 rows, on a cache line after the zero-point row.
    let (zp_row, cols) = if p.w16_col.is_empty() {
        scratch.split_at_mut(c + 16)
    } else {
        scratch.split_at_mut(columns_at(c + 16))
    };
    let cols = cols.as_mut_ptr();
    // Padded by 16 bytes, so that a chunk's 16-byte load never leaves it.
    let zp_row = &mut zp_row[..c + 16];
    zp_row.fill(d.input_zp as i8 as u8);
    let zp_row = zp_row.as_ptr().cast::<i8>();
    let src = Src {
        zp_row,
        input_end: input.as_ptr_range().end,
    };
    let mut rows = [None; MAX_SIMD_TAPS];
    let row_len = d.out_w * c;
    for b in 0..d.batch {
        for oy in 0..d.out_h {
            p.row_offsets(b, oy, &mut rows);
            let out = &mut output[((b * d.out_h + oy) * d.out_w) * c..][..row_len];
            let (i, o) = (input.as_ptr(), out.as_mut_ptr());
            // SAFETY: AVX2 (asserted); row offsets inside `input`; `out` holds out_w·c bytes,
            // `zp_row` c + 16, `cols` the 3×3 column buffer where that packing exists (scratch
            // length asserted); the packing matches (asserted); the form is `p.quant`'s.
            unsafe {
                let q = &p.quant;
                match (q.f32_range.is_some(), q.f32_bounded, q.fast, q.ties_up) {
                    (true, true, ..) => row_any::<Rq8F32<false>>(p, i, &rows, src, cols, o),
                    (true, false, ..) => row_any::<Rq8F32<true>>(p, i, &rows, src, cols, o),
                    (false, _, true, true) => row_any::<Rq8Fast<true>>(p, i, &rows, src, cols, o),
                    (false, _, true, false) => row_any::<Rq8Fast<false>>(p, i, &rows, src, cols, o),
                    (false, _, false, _) => row_any::<Rq8>(p, i, &rows, src, cols, o),
                }
            }
        }
    }
}

/// Where tap pointers point: into the input, or into the zero-point row (`c + 16` bytes).
#[derive(Clone, Copy)]
struct Src {
    zp_row: *const i8,
    input_end: *const i8,
}

impl Src {
    /// Whether 16 bytes from `ptr` (a chunk of a tap) are readable: always in the padded
    /// zero-point row, and in the input unless the chunk is the input's last.
    fn readable16(&self, ptr: *const i8, c: usize) -> bool {
        let (p, zp) = (ptr as usize, self.zp_row as usize);
        (zp..zp + c).contains(&p) || p + 16 <= self.input_end as usize
    }
}

/// Loads 16 channels of one tap (fewer at the channel tail) and subtracts the zero point.
/// At the tail the bytes past the channels (the next pixel's, or the padding's) are read too
/// where they are readable (`src`, checked only there): their weights are zero and their
/// results are not stored.
///
/// # Safety
/// `ptr` addresses at least `left` readable bytes (from a tap's chunk: see [`Src`]).
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load16(ptr: *const i8, left: usize, src: Src, c: usize, zp: __m256i) -> __m256i {
    let raw = if left >= 16 || src.readable16(ptr, c) {
        // SAFETY: 16 readable bytes (contract).
        unsafe { _mm_loadu_si128(ptr.cast()) }
    } else {
        let mut tmp = [0i8; 16];
        // SAFETY: `left` readable bytes into a 16-byte buffer.
        unsafe {
            core::ptr::copy_nonoverlapping(ptr, tmp.as_mut_ptr(), left);
            _mm_loadu_si128(tmp.as_ptr().cast())
        }
    };
    _mm256_sub_epi16(_mm256_cvtepi8_epi16(raw), zp)
}

/// [`row`] for the tap count.
///
/// # Safety
/// See the call in [`run`].
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn row_any<Q: LaneRequant8>(
    p: &PackedDepthwise,
    input: *const i8,
    rows: &[Option<usize>; MAX_SIMD_TAPS],
    src: Src,
    cols: *mut u8,
    out: *mut i8,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match p.params.k_h * p.params.k_w {
            9 if !p.w16_col.is_empty() && p.params.stride_w == 1 => {
                row_columns::<3, 4, 1, Q>(p, input, rows, src, cols.cast(), out)
            }
            9 if !p.w16_col.is_empty() => {
                row_columns::<3, 4, 2, Q>(p, input, rows, src, cols.cast(), out)
            }
            25 if !p.w16_col.is_empty() && p.params.stride_w == 1 => {
                row_columns::<5, 6, 1, Q>(p, input, rows, src, cols.cast(), out)
            }
            25 if !p.w16_col.is_empty() => {
                row_columns::<5, 6, 2, Q>(p, input, rows, src, cols.cast(), out)
            }
            9 => row::<9, Q>(p, input, rows, src, out),
            25 => row::<25, Q>(p, input, rows, src, out),
            _ => row::<0, Q>(p, input, rows, src, out),
        }
    }
}

/// One output row. `T` is the tap count when known at compile time (0: read it from `p`);
/// `Q`: the requantization form of `p.quant`.
///
/// # Safety
/// See the call in [`run`].
#[target_feature(enable = "avx2,fma")]
unsafe fn row<const T: usize, Q: LaneRequant8>(
    p: &PackedDepthwise,
    input: *const i8,
    rows: &[Option<usize>; MAX_SIMD_TAPS],
    src: Src,
    out: *mut i8,
) {
    let zp_row = src.zp_row;
    let d = &p.params;
    let c = d.in_c;
    let taps = if T == 0 { d.k_h * d.k_w } else { T };
    let pairs = taps.div_ceil(2);
    let chunks = c.div_ceil(16);
    let zp = _mm256_set1_epi16(d.input_zp as i16);
    let o = Narrow8::new(p.out);
    let mut tap_ptr = [zp_row; MAX_SIMD_TAPS];
    let walk = TapWalk::new(d, rows);
    for ox in 0..d.out_w {
        // SAFETY: `input` and `rows` as `run` computed them (contract).
        unsafe { walk.pixel(d, rows, ox, input, zp_row, &mut tap_ptr) };
        for k in 0..chunks {
            let left = c - 16 * k;
            let mut acc = [_mm256_setzero_si256(); 2];
            for q in 0..pairs {
                // SAFETY: tap pointers address c readable bytes, so `left` from 16k, and
                // all 16 where `readable16` says so.
                let x0 = unsafe { load16(tap_ptr[2 * q].add(16 * k), left, src, c, zp) };
                let x1 = if 2 * q + 1 < taps {
                    // SAFETY: as above.
                    unsafe { load16(tap_ptr[2 * q + 1].add(16 * k), left, src, c, zp) }
                } else {
                    _mm256_setzero_si256()
                };
                let halves = [_mm256_unpacklo_epi16(x0, x1), _mm256_unpackhi_epi16(x0, x1)];
                for h in 0..2 {
                    // SAFETY: block (k, q, h) of the packed weights exists (length asserted).
                    let w = unsafe {
                        _mm256_loadu_si256(
                            p.w16.as_ptr().add(((k * pairs + q) * 2 + h) * 16).cast(),
                        )
                    };
                    acc[h] = _mm256_add_epi32(acc[h], _mm256_madd_epi16(halves[h], w));
                }
            }
            // SAFETY: as above (the form is `p.quant`'s, the CPU runs AVX2).
            let v: [__m256i; 2] = core::array::from_fn(|h| unsafe {
                let b = _mm256_loadu_si256(p.quant.bias.as_ptr().add((k * 2 + h) * 8).cast());
                Q::load(&p.quant, (k * 2 + h) * 8).apply_narrowed(_mm256_add_epi32(acc[h], b))
            });
            let bytes = o.depthwise_pair(v, false);
            // SAFETY: `out` holds the output row (contract).
            unsafe { store_pixel(d, out, ox, k, bytes) };
        }
    }
}

/// Where the column rows' buffer starts in the scratch: the first cache line after
/// `zp_row` bytes.
pub(crate) fn columns_at(zp_row: usize) -> usize {
    zp_row.next_multiple_of(64)
}

/// Bytes of the column rows' buffer ([`row_columns`]): two vectors per pair of kernel rows
/// for each input column an output row reads.
pub(crate) fn columns_bytes(d: &crate::DepthwiseParams) -> usize {
    ((d.out_w - 1) * d.stride_w + d.k_w) * 2 * d.k_h.div_ceil(2) * 32
}

/// Chunk `$k` of a [`row_columns`] row's input columns into `$cols`: per column, each pair
/// of kernel rows (2g, 2g + 1), g < K / 2, then the last kernel row paired with itself one
/// column to the right, each pair stored by `$store_pair(column, g, a, b)`. A macro, not a
/// function: as a function LLVM kept it out of line and the full chunks ran 3–9 % slower.
macro_rules! fill_columns {
    ($p:expr, $input:expr, $rows:expr, $src:expr, $cols:expr, $k:expr, $K:ident, $V:ident,
     $S:ident, $store_pair:expr) => {{
        let (d, k, cols, src, rows) = (&$p.params, $k, $cols, $src, $rows);
        let c = d.in_c;
        let zp = _mm256_set1_epi16(d.input_zp as i16);
        let zero = _mm256_setzero_si256();
        let columns = (d.out_w - 1) * $S + $K;
        let x0 = -(d.pad_left as isize);
        let left = c - 16 * k;
        // Each kernel row's chunk at column 0 and its byte step per column: a row in the
        // padding reads the zero-point row (16 bytes past c) at every column (step 0), which
        // widens to 0, so the loads carry no branch.
        let (base, step): ([*const i8; $K], [usize; $K]) = (
            core::array::from_fn(|ky| match rows[ky] {
                Some(off) => $input.wrapping_add(off + 16 * k),
                None => src.zp_row.wrapping_add(16 * k),
            }),
            core::array::from_fn(|ky| if rows[ky].is_some() { c } else { 0 }),
        );
        // Column i's pairs of kernel rows (2g, 2g + 1) for g < K / 2, and column i − 1's last
        // pair: the last kernel row at columns i − 1 and i (`last` carries column i − 1's).
        let put = |i: usize, x: &[__m256i; $K], last: &mut __m256i| {
            // SAFETY: columns i − 1 and i < columns of the buffer (contract).
            let col = unsafe { cols.add($V * i) };
            for g in 0..$K / 2 {
                $store_pair(col, g, x[2 * g], x[2 * g + 1]);
            }
            // With stride 2 the windows start at even columns, and only those read the
            // last pair (at even kx): the odd columns' is not written.
            if i > 0 && ($S == 1 || i % 2 == 1) {
                // SAFETY: as above.
                $store_pair(unsafe { col.sub($V) }, $K / 2, *last, x[$K - 1]);
            }
            *last = x[$K - 1];
        };
        // Columns first_in..end_in lie inside the input row; the rest are padding (x − zp = 0).
        let first_in = (-x0).clamp(0, columns as isize) as usize;
        let end_in = (d.in_w as isize - x0).clamp(first_in as isize, columns as isize) as usize;
        let mut last = zero;
        for i in 0..first_in {
            put(i, &[zero; $K], &mut last);
        }
        for i in first_in..end_in {
            let at = (x0 + i as isize) as usize;
            let x: [__m256i; $K] = core::array::from_fn(|ky| {
                let ptr = base[ky].wrapping_add(at * step[ky]);
                if left >= 16 {
                    // SAFETY: a full chunk of pixel `at` < in_w of an input row, or of the
                    // zero-point row: 16 readable bytes.
                    let raw = unsafe { _mm_loadu_si128(ptr.cast()) };
                    _mm256_sub_epi16(_mm256_cvtepi8_epi16(raw), zp)
                } else {
                    // SAFETY: the chunk holds `left` readable bytes, all 16 where
                    // `readable16` says so.
                    unsafe { load16(ptr, left, src, c, zp) }
                }
            });
            put(i, &x, &mut last);
        }
        for i in end_in..columns {
            put(i, &[zero; $K], &mut last);
        }
        // The last column's last pair: its kernel row with zero (past the row's columns).
        // SAFETY: column columns − 1 of the buffer (contract).
        $store_pair(unsafe { cols.add($V * (columns - 1)) }, $K / 2, last, zero);
    }};
}

/// One output row of a K×K depthwise layer (K = 3 or 5, dilation 1, horizontal stride `S`),
/// chunk by chunk: the row's input columns into `cols` ([`fill_columns!`]: per column, for
/// each pair of kernel rows, the low and high half of the pair interleaved; the last row of
/// an odd K paired with itself one column to the right), then every pixel from its K columns
/// with the chunk's weights ([`chunk_constants`]). A last chunk of at most 8 channels runs
/// as [`half_chunk`].
///
/// # Safety
/// As [`row`]; `p.w16_col` is packed for K; `V` = 2·⌈K/2⌉ (the vectors per column); `cols`
/// holds [`columns_bytes`] writable bytes.
#[target_feature(enable = "avx2,fma")]
unsafe fn row_columns<const K: usize, const V: usize, const S: usize, Q: LaneRequant8>(
    p: &PackedDepthwise,
    input: *const i8,
    rows: &[Option<usize>; MAX_SIMD_TAPS],
    src: Src,
    cols: *mut __m256i,
    out: *mut i8,
) {
    debug_assert!(K % 2 == 1 && V == K + 1);
    let d = &p.params;
    let c = d.in_c;
    let o = Narrow8::new(p.out);
    // The clamp is skipped where the output's range is all of int8 (a loop-invariant branch:
    // a second instance of this function per form changed what LLVM inlines, −10 % on 5×5).
    let full = p.out.full_range();
    let chunks = c.div_ceil(16);
    // The last chunk first: where it is partial, its 16-byte stores spill into the next
    // pixel's first channels ([`store_pixel`]), which the pass of chunk 0 then writes.
    for k in (0..chunks).map(|n| (n + chunks - 1) % chunks) {
        let left = c - 16 * k;
        if left <= 8 {
            // SAFETY: forwarded from this function's contract; `k` is the last chunk.
            unsafe { half_chunk::<K, V, S, Q>(p, input, rows, src, cols, out, k) };
            continue;
        }
        let store_pair = |col: *mut __m256i, g: usize, a: __m256i, b: __m256i| {
            // SAFETY: slots 2g and 2g + 1 of a column of the buffer (contract).
            unsafe {
                _mm256_storeu_si256(col.add(2 * g), _mm256_unpacklo_epi16(a, b));
                _mm256_storeu_si256(col.add(2 * g + 1), _mm256_unpackhi_epi16(a, b));
            }
        };
        fill_columns!(p, input, rows, src, cols, k, K, V, S, store_pair);
        // SAFETY: chunk k of the column weights and of the per-channel arrays exist (packed
        // sizes); the form is `p.quant`'s (contract).
        let (w, bias, q) = unsafe { chunk_constants::<K, V, Q>(p, k) };
        for ox in 0..d.out_w {
            let mut acc = bias;
            for (kx, w) in w.iter().enumerate() {
                // SAFETY: column ox·S + kx < columns was written above.
                let col = unsafe { cols.add(V * (ox * S + kx)) };
                for (j, w) in w.iter().enumerate() {
                    if kx % 2 == 1 && j >= V - 2 {
                        // The last kernel row at this column was taken with column kx − 1's.
                        continue;
                    }
                    // SAFETY: as above.
                    let v = unsafe { _mm256_loadu_si256(col.add(j)) };
                    acc[j % 2] = _mm256_add_epi32(acc[j % 2], _mm256_madd_epi16(v, *w));
                }
            }
            // SAFETY: the CPU runs AVX2 (contract).
            let v: [__m256i; 2] = core::array::from_fn(|h| unsafe { q[h].apply_narrowed(acc[h]) });
            // SAFETY: as in `row`.
            unsafe { store_pixel(d, out, ox, k, o.depthwise_pair(v, full)) };
        }
    }
}

/// The last chunk of a [`row_columns`] row when it holds at most 8 channels (e.g. of 24 or
/// 72). Those sit in lanes 0–3 of the two halves of the full layout, so each pair's two
/// halves, the weights, the bias and the requantization constants are joined
/// ([`join_low`]) into one vector of 8 channels in order: one accumulator, half the
/// `vpmaddwd` and one requantization per pixel instead of two. kbench, best of 8 alternating:
/// 3 × 3 64 × 64 × 24 1.12×, 96 × 96 × 8 1.24×, 5 × 5 64 × 64 × 24 1.09×; layers of whole
/// chunks 0.97–0.98× (code layout: out of line, this chunk gained only 1.06× and the others
/// lost as much; with the column filling as a function, 3–9 %).
///
/// # Safety
/// As [`row_columns`]; `k` is the last chunk and holds at most 8 channels.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn half_chunk<const K: usize, const V: usize, const S: usize, Q: LaneRequant8>(
    p: &PackedDepthwise,
    input: *const i8,
    rows: &[Option<usize>; MAX_SIMD_TAPS],
    src: Src,
    cols: *mut __m256i,
    out: *mut i8,
    k: usize,
) {
    let d = &p.params;
    debug_assert!(d.in_c - 16 * k <= 8);
    let o = Narrow8::new(p.out);
    let store_pair = |col: *mut __m256i, g: usize, a: __m256i, b: __m256i| {
        let joined = join_low(_mm256_unpacklo_epi16(a, b), _mm256_unpackhi_epi16(a, b));
        // SAFETY: slot g of a column of the buffer (contract).
        unsafe { _mm256_storeu_si256(col.add(g), joined) };
    };
    fill_columns!(p, input, rows, src, cols, k, K, V, S, store_pair);
    // SAFETY: as in `row_columns`.
    let (mut w, bias, q) = unsafe { chunk_constants::<K, V, Q>(p, k) };
    // SAFETY: the CPU runs AVX2 (contract).
    let (q, bias) = unsafe { (q[0].join_low(q[1]), join_low(bias[0], bias[1])) };
    for w in &mut w {
        for g in 0..V / 2 {
            w[g] = join_low(w[2 * g], w[2 * g + 1]);
        }
    }
    for ox in 0..d.out_w {
        let mut acc = bias;
        for (kx, w) in w.iter().enumerate() {
            // SAFETY: column ox·S + kx < columns was written above.
            let col = unsafe { cols.add(V * (ox * S + kx)) };
            for (g, w) in w.iter().enumerate().take(V / 2) {
                if kx % 2 == 1 && g == V / 2 - 1 {
                    // The last kernel row at this column was taken with column kx − 1's.
                    continue;
                }
                // SAFETY: as above.
                let v = unsafe { _mm256_loadu_si256(col.add(g)) };
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(v, *w));
            }
        }
        // SAFETY: the CPU runs AVX2 (contract); `out` as in `row`.
        unsafe { store_pixel(d, out, ox, k, o.one_block(q.apply_narrowed(acc))) };
    }
}

/// Chunk `k`'s column weights (`[kx][slot]`), bias and requantization constants, in the
/// full layout's two halves.
///
/// # Safety
/// Chunk k of `p.w16_col` (packed for K, `V` vectors per column) and of the per-channel
/// arrays exists; `p.quant` is in form `Q`; the CPU runs AVX2.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn chunk_constants<const K: usize, const V: usize, Q: LaneRequant8>(
    p: &PackedDepthwise,
    k: usize,
) -> ([[__m256i; V]; K], [__m256i; 2], [Q; 2]) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let w: [[__m256i; V]; K] = core::array::from_fn(|kx| {
            core::array::from_fn(|j| {
                _mm256_loadu_si256(p.w16_col.as_ptr().add(((k * K + kx) * V + j) * 16).cast())
            })
        });
        let bias: [__m256i; 2] = core::array::from_fn(|h| {
            _mm256_loadu_si256(p.quant.bias.as_ptr().add((k * 2 + h) * 8).cast())
        });
        let q: [Q; 2] = core::array::from_fn(|h| Q::load(&p.quant, (k * 2 + h) * 8));
        (w, bias, q)
    }
}

/// Stores chunk `k` of output pixel `ox` of the row at `out`: at most the chunk's channels
/// below `c`, or 16 bytes when they stay inside the row (the bytes past the pixel belong to
/// the row's next pixels, which the caller writes after this one).
///
/// # Safety
/// `out` holds one output row (`out_w · c` bytes).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store_pixel(
    d: &crate::DepthwiseParams,
    out: *mut i8,
    ox: usize,
    k: usize,
    bytes: __m128i,
) {
    let (c, left) = (d.in_c, d.in_c - 16 * k);
    // SAFETY: pixel ox of the row holds c bytes from ox·c (contract); see above.
    unsafe {
        let dst = out.add(ox * c + 16 * k);
        if left >= 16 || 16 * k + 16 <= (d.out_w - ox) * c {
            _mm_storeu_si128(dst.cast(), bytes);
        } else {
            super::store::store_first(dst, left, bytes);
        }
    }
}
