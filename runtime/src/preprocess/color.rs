//! Colour conversions: camera YUV to RGB, RGB to the model's channel order.
//!
//! **YUV 4:2:0 → RGB** uses BT.601 with limited ("studio", "TV") range, the usual camera and
//! H.264 default. With `Y` in 16..235 and `U`, `V` in 16..240 (values outside are accepted):
//!
//! ```text
//! c = (Y − 16) · 255/219            d = U − 128            e = V − 128
//! R = c + 1.402 · 255/224 · e                               (≈ c + 1.596027 e)
//! G = c − 0.344136 · 255/224 · d − 0.714136 · 255/224 · e   (≈ c − 0.391762 d − 0.812968 e)
//! B = c + 1.772 · 255/224 · d                               (≈ c + 2.017232 d)
//! ```
//!
//! computed in `f32`, then rounded half away from zero and clamped to 0..=255, i.e. a YUV frame
//! behaves exactly like the 8-bit RGB frame [`yuv_to_rgb`] makes of it. Chroma is not
//! interpolated: pixel `(x, y)` takes the U, V sample of its 2×2 block `(x/2, y/2)`.
//!
//! **Gray** (a gray model fed colour, or [`gray`]): `0.299 R + 0.587 G + 0.114 B` in `f32`,
//! not rounded. A gray source fed to a colour model is replicated to the three channels.

/// `255 / 219`: limited-range luma to full range.
pub const YUV_Y: f32 = 255.0 / 219.0;
/// Cr → R (`1.402 · 255/224`).
pub const YUV_RV: f32 = 1.402 * 255.0 / 224.0;
/// Cb → G (`0.344136 · 255/224`, subtracted).
pub const YUV_GU: f32 = 0.344_136 * 255.0 / 224.0;
/// Cr → G (`0.714136 · 255/224`, subtracted).
pub const YUV_GV: f32 = 0.714_136 * 255.0 / 224.0;
/// Cb → B (`1.772 · 255/224`).
pub const YUV_BU: f32 = 1.772 * 255.0 / 224.0;

/// BT.601 luma weights for `R, G, B`.
pub const GRAY_WEIGHTS: [f32; 3] = [0.299, 0.587, 0.114];

#[inline]
fn to_u8(x: f32) -> u8 {
    // Clamp to 0..=255, then round half away from zero: the fraction left after truncating is
    // exact, so this equals `x.round()` without a libm call. (NaN, impossible here, gives 0.)
    let x = x.clamp(0.0, 255.0);
    let t = x as u8;
    t + u8::from(x - f32::from(t) >= 0.5)
}

/// `x.round() as i32` (half away from zero; NaN → 0) for `|x| ≤ 2³⁰`, larger values clamped
/// there. Without SSE4.1 `f32::round` is a libm call; this is a truncating conversion and a
/// compare, and vectorises.
#[inline(always)]
pub(crate) fn round_half_away(x: f32) -> i32 {
    const LIM: f32 = (1 << 30) as f32;
    let x = x.clamp(-LIM, LIM);
    let t = x as i32;
    // Exact: `x` and its integer part share `x`'s binade granularity.
    let f = x - t as f32;
    t + i32::from(f >= 0.5) - i32::from(f <= -0.5)
}

/// The products of the formula per 8-bit value: `(Y − 16)·YUV_Y`, `YUV_RV·(V − 128)`,
/// `YUV_GU·(U − 128)`, `YUV_GV·(V − 128)`, `YUV_BU·(U − 128)` (the same `f32` operations as
/// written out, evaluated at compile time).
static TABLES: [[f32; 256]; 5] = {
    let mut t = [[0.0; 256]; 5];
    let mut i = 0;
    while i < 256 {
        let (c, d) = (i as f32 - 16.0, i as f32 - 128.0);
        t[0][i] = c * YUV_Y;
        t[1][i] = YUV_RV * d;
        t[2][i] = YUV_GU * d;
        t[3][i] = YUV_GV * d;
        t[4][i] = YUV_BU * d;
        i += 1;
    }
    t
};

/// One BT.601 limited-range YUV sample to 8-bit RGB (see the module docs for the formula).
#[inline]
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let [cy, rv, gu, gv, bu] = &TABLES;
    let (y, u, v) = (usize::from(y), usize::from(u), usize::from(v));
    let c = cy[y];
    [to_u8(c + rv[v]), to_u8(c - gu[u] - gv[v]), to_u8(c + bu[u])]
}

/// Luminance of an RGB value in 0..255 units (not rounded).
#[inline]
pub fn gray(rgb: [f32; 3]) -> f32 {
    GRAY_WEIGHTS[0] * rgb[0] + GRAY_WEIGHTS[1] * rgb[1] + GRAY_WEIGHTS[2] * rgb[2]
}
