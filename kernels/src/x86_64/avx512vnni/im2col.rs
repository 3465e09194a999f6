//! im2col in the VNNI GEMM's operand form: every byte flipped to u8 (`x ^ 0x80`), rows of `k4`
//! bytes (`k` rounded up to 4; bytes `k..k4` are left as they are, their packed weights being
//! zero). Copies go through masked 64-byte loads and stores, so a kernel row of `k_w · icg`
//! bytes (15 for a 5×5 kernel on RGB) costs one load, one xor and one store.

use core::arch::x86_64::*;

use crate::params::Conv2dParams;

/// Writes the receptive fields of output pixels `start..start + rows` of image `b`, group `g`
/// into `col` (rows of `k4` bytes); padding is the input zero point, flipped.
///
/// # Panics
/// Unless the CPU runs the VNNI tier, `col` holds `rows · k4` bytes and `k4 ≥ k`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn im2col_flipped(
    d: &Conv2dParams,
    input: &[i8],
    b: usize,
    g: usize,
    start: usize,
    rows: usize,
    k4: usize,
    col: &mut [u8],
) {
    super::assert_supported();
    assert!(k4 >= d.k_h * d.k_w * d.in_c_per_group() && col.len() >= rows * k4);
    assert!(start + rows <= d.out_h * d.out_w && b < d.batch && g < d.groups);
    // SAFETY: the CPU supports AVX-512 F/BW (asserted above).
    unsafe { fill(d, input, b, g, start, rows, k4, col) }
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw")]
fn fill(
    d: &Conv2dParams,
    input: &[i8],
    b: usize,
    g: usize,
    start: usize,
    rows: usize,
    k4: usize,
    col: &mut [u8],
) {
    let icg = d.in_c_per_group();
    let run = d.k_w * icg;
    let zp = d.input_zp as i8 as u8 ^ 0x80;
    let (mut oy, mut ox) = (start / d.out_w, start % d.out_w);
    for dst_row in col[..rows * k4].chunks_exact_mut(k4) {
        let ix0 = (ox * d.stride_w) as isize - d.pad_left as isize;
        let inside_x = ix0 >= 0 && ix0 as usize + (d.k_w - 1) * d.dilation_w < d.in_w;
        for ky in 0..d.k_h {
            let iy = (oy * d.stride_h + ky * d.dilation_h) as isize - d.pad_top as isize;
            let dst = &mut dst_row[ky * run..(ky + 1) * run];
            if iy < 0 || iy as usize >= d.in_h {
                dst.fill(zp);
                continue;
            }
            let row = (b * d.in_h + iy as usize) * d.in_w;
            if inside_x && d.dilation_w == 1 && icg == d.in_c {
                let src = (row + ix0 as usize) * d.in_c;
                flip_copy(dst, &input[src..src + run]);
                continue;
            }
            for (kx, tap) in dst.chunks_exact_mut(icg).enumerate() {
                let ix = ix0 + (kx * d.dilation_w) as isize;
                if ix < 0 || ix as usize >= d.in_w {
                    tap.fill(zp);
                } else {
                    let src = (row + ix as usize) * d.in_c + g * icg;
                    flip_copy(tap, &input[src..src + icg]);
                }
            }
        }
        ox += 1;
        if ox == d.out_w {
            ox = 0;
            oy += 1;
        }
    }
}

/// `dst[i] = src[i] ^ 0x80` for `i < dst.len()` (`src` at least as long).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn flip_copy(dst: &mut [u8], src: &[i8]) {
    let n = dst.len();
    assert!(src.len() >= n);
    let flip = _mm512_set1_epi8(-128);
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: bytes i..i + 64 lie inside both slices.
        unsafe {
            let v = _mm512_loadu_si512(src.as_ptr().add(i).cast());
            _mm512_storeu_si512(dst.as_mut_ptr().add(i).cast(), _mm512_xor_si512(v, flip));
        }
        i += 64;
    }
    if i < n {
        let mask: __mmask64 = (1u64 << (n - i)) - 1;
        // SAFETY: the mask selects bytes i..n, inside both slices; masked-off bytes are
        // neither read (no fault) nor written.
        unsafe {
            let v = _mm512_maskz_loadu_epi8(mask, src.as_ptr().add(i));
            _mm512_mask_storeu_epi8(
                dst.as_mut_ptr().add(i).cast(),
                mask,
                _mm512_xor_si512(v, flip),
            );
        }
    }
}
