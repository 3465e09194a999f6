//! The int8 global mean, 64 channels at a time: four 16-byte masked loads a pixel
//! (masked-off channels read as 0) widened to i32 lanes (`vpmovsxbd`) and summed, then the
//! TFLite requantization on 16 lanes ([`finish16`]) and one masked store per 16 channels.

use core::arch::x86_64::*;

use super::requant::{Out16, Rq16, finish16};
use crate::gemm::OutputQuant;
use crate::generic::pool::{MeanQuant, check_mean_chunk};

/// The AVX-512 `MeanChunk` (see `generic::pool::mean_chunk`), bit-exact with it.
pub(crate) fn mean_chunk(image: &[i8], channels: usize, c0: usize, q: &MeanQuant, out: &mut [i8]) {
    super::assert_supported();
    check_mean_chunk(image, channels, c0, out.len());
    for (k, part) in out.chunks_mut(64).enumerate() {
        // SAFETY: the CPU supports AVX-512 F/BW/VL (asserted above); channels c0 + 64k ..
        // + part lie inside every pixel (asserted).
        unsafe { mean64(image, channels, c0 + 64 * k, q, part) };
    }
}

/// The means of channels `c0 .. c0 + part.len()` (at most 64) into `part`.
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VL; `c0 + part.len() <= channels`, `image` whole pixels.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn mean64(image: &[i8], channels: usize, c0: usize, q: &MeanQuant, part: &mut [i8]) {
    let n = part.len();
    debug_assert!(n <= 64 && c0 + n <= channels);
    // Lanes of each 16-channel quarter that exist.
    let masks: [__mmask16; 4] = core::array::from_fn(|i| {
        let have = n.saturating_sub(16 * i);
        if have >= 16 { !0 } else { (1u16 << have) - 1 }
    });
    // Quarters that hold channels: pointers past them would leave the slice.
    let quarters = n.div_ceil(16);
    let mut acc = [_mm512_setzero_si512(); 4];
    for px in image.chunks_exact(channels) {
        let at = px[c0..].as_ptr();
        for (i, a) in acc.iter_mut().enumerate().take(quarters) {
            // SAFETY: the mask keeps the load inside channels c0 .. c0 + n of this pixel.
            let v = unsafe { _mm_maskz_loadu_epi8(masks[i], at.add(16 * i)) };
            *a = _mm512_add_epi32(*a, _mm512_cvtepi8_epi32(v));
        }
    }
    let rq = Rq16::splat(q.requant);
    let o = Out16::new(OutputQuant {
        zp: q.out_zp,
        min: -128,
        max: 127,
    });
    let zp_total = _mm512_set1_epi32(q.zp_total);
    for (i, a) in acc.iter().enumerate().take(quarters) {
        let v = finish16(_mm512_sub_epi32(*a, zp_total), rq, o);
        // SAFETY: the mask selects the channels of quarter i that `part` holds.
        unsafe {
            _mm_mask_storeu_epi8(
                part.as_mut_ptr().add(16 * i),
                masks[i],
                _mm512_cvtepi32_epi8(v),
            )
        };
    }
}
