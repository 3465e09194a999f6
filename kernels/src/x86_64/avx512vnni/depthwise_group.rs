//! Depthwise 3×3 rows for chunks narrower than a vector: `P` output pixels share each
//! 512-bit vector (`P = 2`: up to 32 channels per pixel, one 256-bit half each; `P = 4`: up
//! to 16, one 128-bit lane each; `P = 8`: up to 8, one 64-bit half of a lane each).
//!
//! Lane `d` of a 64-channel chunk's accumulator `j` holds channel `16·(d/4) + 4j + d%4`, so
//! 128-bit lane `L` holds channels `16L..16L + 16` of the chunk and the whole computation —
//! column quads, `vpdpbusd`, requantization, narrowing — stays inside 128-bit lanes. A group
//! of `16·4/P` channels starting at lane `l0` is therefore computed for `P` pixels at once
//! with the chunk's weights and per-channel constants for those lanes repeated `P` times: a
//! 24-channel layer runs at the instruction count of a full chunk per two pixels, a
//! 36-channel one as 32 + 4 channels at ⅝ of it. With `P = 8` a lane holds two pixels of up to
//! 8 channels: its accumulators 0–1 are the first pixel's channels, 2–3 the second's, so
//! blocks 2–3 take the constants of blocks 0–1.
//!
//! Stride 1: the vector of columns `x..x + P` is loaded once and the windows shifted by one
//! and two columns are recombined from it and the next one (`valignq`). Stride 2: the even
//! and the odd columns of a group are loaded, and the third window is the even one shifted
//! by one pixel.

use core::arch::x86_64::*;

use super::depthwise::{Out64, quads3};
use super::requant::{LaneRequant, bcast_lanes};
use crate::depthwise::PackedDepthwise;

/// Where a group lies: 128-bit lane `l0` of chunk `k`, `chans` channels (at most `64 / P`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Group {
    pub k: usize,
    pub l0: usize,
    pub chans: usize,
}

/// The three input rows of a group: the address of the group's first channel at column 0
/// and the byte step between columns (a row in the padding reads the zero-point row, step 0).
#[derive(Clone, Copy, Debug)]
pub(crate) struct GroupRows {
    base: [*const i8; 3],
    step: [isize; 3],
    zp: *const i8,
    in_w: isize,
}

impl GroupRows {
    /// `rows`: the three input rows (`None` in the padding); `at`: the group's first channel.
    pub(crate) fn new(
        rows: &[Option<*const i8>; 3],
        zp_row: *const i8,
        in_w: usize,
        c: usize,
        at: usize,
    ) -> Self {
        let zp = zp_row.wrapping_add(at);
        GroupRows {
            base: core::array::from_fn(|ky| rows[ky].map_or(zp, |r| r.wrapping_add(at))),
            step: core::array::from_fn(|ky| if rows[ky].is_some() { c as isize } else { 0 }),
            zp,
            in_w: in_w as isize,
        }
    }
}

/// `P` masked loads at `ptr(i)`, `i < P`, one per `64 / P`-byte part of the vector (`mask`
/// has at most `64 / P` bits).
///
/// # Safety
/// Each `ptr(i)` addresses the masked bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn gather<const P: usize>(mask: u32, ptr: impl Fn(usize) -> *const i8) -> __m512i {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        if P == 2 {
            let lo = _mm256_maskz_loadu_epi8(mask, ptr(0));
            _mm512_inserti64x4(
                _mm512_castsi256_si512(lo),
                _mm256_maskz_loadu_epi8(mask, ptr(1)),
                1,
            )
        } else if P == 8 {
            let m = mask as u16;
            // Lane L: pixels 2L and 2L + 1, eight bytes each.
            let lane = |l: usize| {
                _mm_unpacklo_epi64(
                    _mm_maskz_loadu_epi8(m, ptr(2 * l)),
                    _mm_maskz_loadu_epi8(m, ptr(2 * l + 1)),
                )
            };
            let lo = _mm256_inserti32x4(_mm256_castsi128_si256(lane(0)), lane(1), 1);
            let hi = _mm256_inserti32x4(_mm256_castsi128_si256(lane(2)), lane(3), 1);
            _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1)
        } else {
            let m = mask as u16;
            let lo = _mm256_inserti32x4(
                _mm256_castsi128_si256(_mm_maskz_loadu_epi8(m, ptr(0))),
                _mm_maskz_loadu_epi8(m, ptr(1)),
                1,
            );
            let hi = _mm256_inserti32x4(
                _mm256_castsi128_si256(_mm_maskz_loadu_epi8(m, ptr(2))),
                _mm_maskz_loadu_epi8(m, ptr(3)),
                1,
            );
            _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1)
        }
    }
}

/// The first `64 / P` bytes at `src` repeated `P` times ([`bcast_lanes`]), 16 bytes four
/// times for `P = 8` (a lane's two pixels share its 16 bytes of constants, see the module
/// docs).
///
/// # Safety
/// `64 / P` bytes (16 for `P = 8`) are readable at `src`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn bcast<const P: usize>(src: *const u8) -> __m512i {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        if P == 2 {
            bcast_lanes::<2>(src)
        } else {
            bcast_lanes::<4>(src)
        }
    }
}

/// Loads `P` input columns `first + i·step` of the group's channels from each of the three
/// rows into one vector per row (the zero-point bytes where a column or a row lies in the
/// padding), flipped to u8, interleaved into column quads.
///
/// # Safety
/// `rows` addresses full input rows (or the zero-point row); `mask` stops at channel `c`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn columns<const P: usize>(
    rows: &GroupRows,
    mask: u32,
    first: isize,
    step: isize,
) -> [__m512i; 4] {
    let flip = _mm512_set1_epi8(-128);
    let full = match P {
        2 => u32::MAX,
        4 => 0xFFFF,
        _ => 0xFF,
    };
    let last = first + (P as isize - 1) * step;
    let x = if first >= 0 && last < rows.in_w {
        // SAFETY: every column lies inside the row.
        let row = |ky: usize| unsafe {
            let (b, s) = (
                rows.base[ky].offset(first * rows.step[ky]),
                rows.step[ky] * step,
            );
            if s == (64 / P) as isize && mask == full {
                // A full mask means 64 / P channels in the group, so a step of 64 / P bytes
                // means a pixel of exactly those channels and consecutive columns: the P
                // pixels are 64 adjacent bytes inside the row, one load.
                _mm512_loadu_si512(b.cast())
            } else {
                gather::<P>(mask, |i| b.offset(i as isize * s))
            }
        };
        [row(0), row(1), row(2)]
    } else {
        // SAFETY: forwarded from this function's contract.
        unsafe { columns_edge::<P>(rows, mask, first, step) }
    };
    quads3(
        _mm512_xor_si512(x[0], flip),
        _mm512_xor_si512(x[1], flip),
        _mm512_xor_si512(x[2], flip),
    )
}

/// [`columns`]' raw loads where some column lies in the padding (the row ends).
///
/// # Safety
/// As [`columns`].
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn columns_edge<const P: usize>(
    rows: &GroupRows,
    mask: u32,
    first: isize,
    step: isize,
) -> [__m512i; 3] {
    let row = |ky: usize| {
        let ptr = |i: usize| {
            let ix = first + i as isize * step;
            if ix >= 0 && ix < rows.in_w {
                // SAFETY: column ix lies inside the row.
                unsafe { rows.base[ky].offset(ix * rows.step[ky]) }
            } else {
                rows.zp
            }
        };
        // SAFETY: each address holds the masked bytes of a pixel or of the zero-point row.
        unsafe { gather::<P>(mask, ptr) }
    };
    [row(0), row(1), row(2)]
}

/// The column quads of `a` shifted by `n` pixels (of `P` per vector), continued by `b`'s.
#[inline]
#[target_feature(enable = "avx512f")]
fn shift<const P: usize>(a: [__m512i; 4], b: [__m512i; 4], n: usize) -> [__m512i; 4] {
    core::array::from_fn(|j| match (P, n) {
        (2, 1) | (4, 2) => _mm512_alignr_epi64::<4>(b[j], a[j]),
        (4, 1) | (8, 2) => _mm512_alignr_epi64::<2>(b[j], a[j]),
        // Eight pixels: lane L of quads 0–1 is pixel 2L, of quads 2–3 pixel 2L + 1, so one
        // pixel on is quads 2–3 of the same lane, then quads 0–1 of the next.
        (8, 1) if j >= 2 => _mm512_alignr_epi64::<2>(b[j - 2], a[j - 2]),
        (8, 1) => a[j + 2],
        _ => unreachable!("shift by {n} of {P} pixels"),
    })
}

/// One output row of the group, `P` pixels at a time. `S`: horizontal stride (1 or 2);
/// `UP`: as in the depthwise rows of the parent module; `R`: the requantization form.
///
/// # Safety
/// AVX-512 VNNI is available; the row pointers address full input rows (`in_w·c` bytes);
/// `zp_row` holds `c` bytes; `out` holds one output row (`out_w·c` bytes); `p.w8_col` is
/// packed; the group lies inside the chunks (`16·l0 + chans ≤ 64`, at most `64 / P`
/// channels, ending at or before channel `c`); `R` is the form `p.quant` is in
/// ([`LaneRequant`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) unsafe fn row3x3_group<
    const S: usize,
    const P: usize,
    const UP: bool,
    R: LaneRequant,
>(
    p: &PackedDepthwise,
    rows: &[Option<*const i8>; 3],
    zp_row: *const i8,
    out: *mut i8,
    g: Group,
) {
    let d = &p.params;
    let c = d.in_c;
    debug_assert!(matches!(P, 2 | 4 | 8) && g.chans <= 64 / P && 16 * g.l0 + g.chans <= 64);
    let at = 64 * g.k + 16 * g.l0;
    debug_assert!(at + g.chans <= c);
    let mask = if g.chans >= 32 {
        !0
    } else {
        (1u32 << g.chans) - 1
    };
    let o = Out64::new(p.out);
    // Lanes 4·l0.. of block (k, j) of the per-channel arrays, and bytes 16·l0.. of the
    // 64-byte weight blocks.
    // With P = 8, blocks 2–3 hold the second pixel of each lane: blocks 0–1's channels.
    let blk = |j: usize| if P == 8 { j % 2 } else { j };
    let lane = |j: usize| (g.k * 4 + blk(j)) * 16 + 4 * g.l0;
    // SAFETY: chunk k of the column-quad weights and the bias exist (packed sizes); the
    // group's lanes lie inside each block.
    let (w, bias) = unsafe {
        let w: [[__m512i; 4]; 3] = core::array::from_fn(|kx| {
            core::array::from_fn(|j| {
                bcast::<P>(
                    p.w8_col
                        .as_ptr()
                        .add(((g.k * 3 + kx) * 4 + blk(j)) * 64 + 16 * g.l0)
                        .cast(),
                )
            })
        });
        let bias: [__m512i; 4] =
            core::array::from_fn(|j| bcast::<P>(p.quant.bias.as_ptr().add(lane(j)).cast()));
        (w, bias)
    };
    // SAFETY: as above; the arrays `R` reads exist in `p.quant` (contract).
    let rq: [R; 4] = core::array::from_fn(|j| unsafe {
        if P == 2 {
            R::load_repeated::<2>(&p.quant, lane(j))
        } else {
            R::load_repeated::<4>(&p.quant, lane(j))
        }
    });
    let rows = GroupRows::new(rows, zp_row, d.in_w, c, at);
    let x0 = -(d.pad_left as isize);
    // SAFETY: forwarded from this function's contract (as every `columns` call below).
    let mut cur = unsafe { columns::<P>(&rows, mask, x0, S as isize) };
    let mut ox = 0;
    while ox < d.out_w {
        let base = x0 + (ox * S) as isize;
        let (q0, q1, q2);
        if S == 1 {
            // SAFETY: see above.
            let next = unsafe { columns::<P>(&rows, mask, base + P as isize, 1) };
            q0 = cur;
            q1 = shift::<P>(cur, next, 1);
            q2 = if P == 2 {
                next
            } else {
                shift::<P>(cur, next, 2)
            };
            cur = next;
        } else {
            // SAFETY: see above.
            let odd = unsafe { columns::<P>(&rows, mask, base + 1, 2) };
            // SAFETY: see above.
            let next = unsafe { columns::<P>(&rows, mask, base + 2 * P as isize, 2) };
            q0 = cur;
            q1 = odd;
            q2 = shift::<P>(cur, next, 1);
            cur = next;
        }
        let mut acc = bias;
        for j in 0..4 {
            acc[j] = _mm512_dpbusd_epi32(acc[j], q0[j], w[0][j]);
            acc[j] = _mm512_dpbusd_epi32(acc[j], q1[j], w[1][j]);
            acc[j] = _mm512_dpbusd_epi32(acc[j], q2[j], w[2][j]);
        }
        // SAFETY: the CPU runs this tier (contract); the packs below saturate and the clamp
        // raises to the minimum.
        let v: [__m512i; 4] =
            core::array::from_fn(|j| unsafe { rq[j].apply_narrowed::<UP>(acc[j]) });
        let lo = _mm512_adds_epi16(_mm512_packs_epi32(v[0], v[1]), o.zp);
        let hi = _mm512_adds_epi16(_mm512_packs_epi32(v[2], v[3]), o.zp);
        let bytes = _mm512_packs_epi16(lo, hi);
        let bytes = if R::FULL_RANGE {
            bytes
        } else {
            _mm512_min_epi8(_mm512_max_epi8(bytes, o.min), o.max)
        };
        // SAFETY: pixels ox.. of the output row that exist hold c bytes each; the mask
        // stops at the group's last channel.
        unsafe { store::<P>(out.add(ox * c + at), c, (d.out_w - ox).min(P), mask, bytes) };
        ox += P;
    }
}

/// Stores the first `n` of the `P` pixels of `bytes` (pixel `i` at `dst + i·c`).
///
/// # Safety
/// `dst + i·c` holds the masked bytes for every `i < n`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn store<const P: usize>(dst: *mut i8, c: usize, n: usize, mask: u32, bytes: __m512i) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        if P == 2 {
            _mm256_mask_storeu_epi8(dst, mask, _mm512_castsi512_si256(bytes));
            if n > 1 {
                _mm256_mask_storeu_epi8(dst.add(c), mask, _mm512_extracti64x4_epi64(bytes, 1));
            }
        } else if P == 8 {
            if n == 8 && c == 8 && mask == 0xFF {
                // Eight whole pixels of 8 channels: 64 adjacent bytes.
                _mm512_storeu_si512(dst.cast(), bytes);
                return;
            }
            let m = mask as u16;
            for i in 0..n {
                let lane = match i / 2 {
                    0 => _mm512_castsi512_si128(bytes),
                    1 => _mm512_extracti32x4_epi32(bytes, 1),
                    2 => _mm512_extracti32x4_epi32(bytes, 2),
                    _ => _mm512_extracti32x4_epi32(bytes, 3),
                };
                let px = if i % 2 == 0 {
                    lane
                } else {
                    _mm_unpackhi_epi64(lane, lane)
                };
                _mm_mask_storeu_epi8(dst.add(i * c), m, px);
            }
        } else {
            let m = mask as u16;
            _mm_mask_storeu_epi8(dst, m, _mm512_castsi512_si128(bytes));
            if n > 1 {
                _mm_mask_storeu_epi8(dst.add(c), m, _mm512_extracti32x4_epi32(bytes, 1));
            }
            if n > 2 {
                _mm_mask_storeu_epi8(dst.add(2 * c), m, _mm512_extracti32x4_epi32(bytes, 2));
            }
            if n > 3 {
                _mm_mask_storeu_epi8(dst.add(3 * c), m, _mm512_extracti32x4_epi32(bytes, 3));
            }
        }
    }
}
