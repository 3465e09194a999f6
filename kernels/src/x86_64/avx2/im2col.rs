//! im2col for the AVX2 GEMM: receptive fields written straight in the GEMM's widened form
//! (`x − zp` as i16, rows of [`super::gemm::row_bytes`]), so no second pass widens them.
//! Padding is the input zero point, which widens to 0.

use core::arch::x86_64::*;

use crate::params::Conv2dParams;

/// Writes `x − zp` as native-endian i16 for each byte of `src` into the first `2·src.len()`
/// bytes of `dst`, 16 and 8 at a time (`zp` within ±255 of every byte, so no lane wraps).
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn widen(dst: &mut [u8], src: &[i8], zp: i16) {
    let n = src.len();
    assert!(dst.len() >= 2 * n, "widen: destination too short");
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: bytes i..i + 16 of `src` and 2i..2i + 32 of `dst` lie inside them.
        unsafe {
            let v = _mm256_cvtepi8_epi16(_mm_loadu_si128(s.add(i).cast()));
            let v = _mm256_sub_epi16(v, _mm256_set1_epi16(zp));
            _mm256_storeu_si256(d.add(2 * i).cast(), v);
        }
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: bytes i..i + 8 of `src` and 2i..2i + 16 of `dst` lie inside them.
        unsafe {
            let v = _mm_cvtepi8_epi16(_mm_loadl_epi64(s.add(i).cast()));
            _mm_storeu_si128(d.add(2 * i).cast(), _mm_sub_epi16(v, _mm_set1_epi16(zp)));
        }
        i += 8;
    }
    for (d, &x) in dst[2 * i..2 * n].chunks_exact_mut(2).zip(&src[i..]) {
        d.copy_from_slice(&(i16::from(x) - zp).to_ne_bytes());
    }
}

/// Output pixels `start..start + rows` of image `b`, group `g`, as widened rows of `row_bytes`
/// (`k_h · k_w · in_c/groups` values, then zeros to the row's end).
#[allow(clippy::too_many_arguments)]
pub(crate) fn im2col_widened(
    d: &Conv2dParams,
    input: &[i8],
    b: usize,
    g: usize,
    start: usize,
    rows: usize,
    row_bytes: usize,
    col: &mut [u8],
) {
    super::assert_supported();
    let icg = d.in_c_per_group();
    let run = d.k_w * icg; // values per kernel row
    let k = d.k_h * run;
    assert!(row_bytes >= 2 * k, "im2col: rows too short");
    assert!(col.len() >= rows * row_bytes, "im2col: scratch too short");
    let zp = d.input_zp as i16;
    // A kernel row is one contiguous run of the input where it lies inside a row of it.
    let contiguous = d.groups == 1 && d.dilation_w == 1;
    for r in 0..rows {
        let (oy, ox) = ((start + r) / d.out_w, (start + r) % d.out_w);
        let dst_row = &mut col[r * row_bytes..(r + 1) * row_bytes];
        dst_row[2 * k..].fill(0);
        let ix0 = (ox * d.stride_w) as isize - d.pad_left as isize;
        for ky in 0..d.k_h {
            let seg = &mut dst_row[2 * ky * run..2 * (ky + 1) * run];
            let iy = (oy * d.stride_h + ky * d.dilation_h) as isize - d.pad_top as isize;
            if iy < 0 || iy as usize >= d.in_h {
                seg.fill(0);
                continue;
            }
            let row_start = (b * d.in_h + iy as usize) * d.in_w;
            if contiguous && ix0 >= 0 && ix0 as usize + d.k_w <= d.in_w {
                let src = (row_start + ix0 as usize) * d.in_c;
                // SAFETY: the CPU supports AVX2 (asserted above).
                unsafe { widen(seg, &input[src..src + run], zp) };
                continue;
            }
            for kx in 0..d.k_w {
                let dst = &mut seg[2 * kx * icg..2 * (kx + 1) * icg];
                let ix = ix0 + (kx * d.dilation_w) as isize;
                if ix < 0 || ix as usize >= d.in_w {
                    dst.fill(0);
                } else {
                    let src = (row_start + ix as usize) * d.in_c + g * icg;
                    // SAFETY: the CPU supports AVX2 (asserted above).
                    unsafe { widen(dst, &input[src..src + icg], zp) };
                }
            }
        }
    }
}
