//! im2col for the AVX2 GEMM: receptive fields written straight in the GEMM's widened form
//! (`x − zp` as i16, rows of [`super::gemm::row_bytes`]), so no second pass widens them.
//! Padding is the input zero point, which widens to 0.

use crate::params::Conv2dParams;

/// Writes `x − zp` as native-endian i16 for each byte of `src` into `dst` (`2·src.len()` bytes).
#[inline]
fn widen(dst: &mut [u8], src: &[i8], zp: i16) {
    for (d, &x) in dst.chunks_exact_mut(2).zip(src) {
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
                widen(seg, &input[src..src + run], zp);
                continue;
            }
            for kx in 0..d.k_w {
                let dst = &mut seg[2 * kx * icg..2 * (kx + 1) * icg];
                let ix = ix0 + (kx * d.dilation_w) as isize;
                if ix < 0 || ix as usize >= d.in_w {
                    dst.fill(0);
                } else {
                    let src = (row_start + ix as usize) * d.in_c + g * icg;
                    widen(dst, &input[src..src + icg], zp);
                }
            }
        }
    }
}

/// Copies image `b` of `input` widened (`x − zp` as native-endian i16) into `hp` rows of `wp`
/// pixels, `pad_top` rows and `pad_left` columns of padding (0, the zero point's value)
/// before it and padding after: the padded input a [`super::gemm::gemm_strided`] convolution
/// reads in place. Bytes of `dst` past the `hp · wp · in_c` values are zeroed too.
///
/// # Panics
/// Unless `dst` holds `hp · wp · in_c` values and `b` is an image of `input`.
pub(crate) fn pad_widened(
    d: &Conv2dParams,
    input: &[i8],
    b: usize,
    hp: usize,
    wp: usize,
    dst: &mut [u8],
) {
    let zp = d.input_zp as i16;
    crate::conv::pad_image(d, input, b, (hp, wp), 2, 0, dst, |dst, src| {
        widen(dst, src, zp)
    });
}
