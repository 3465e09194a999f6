//! The window geometry the f32 SIMD convolution kernels share (`avx2::conv_f32`, `avx2::float`,
//! `x86_64::avx512vnni::float`), and the order in which they walk the output: runs of
//! [`PIXELS`] neighbouring pixels of a row where every tap of their windows lies inside the
//! row, single pixels at the edges.

use crate::params::{Conv2dParams, DepthwiseParams};

/// Output pixels of a row computed together where their windows lie inside the row.
pub(crate) const PIXELS: usize = 4;

/// The window geometry of a convolution or depthwise convolution, as the f32 kernels see it.
#[derive(Clone, Copy)]
pub(crate) struct TapGeometry {
    pub(crate) batch: usize,
    pub(crate) out_h: usize,
    pub(crate) out_w: usize,
    pub(crate) in_h: usize,
    pub(crate) in_w: usize,
    pub(crate) in_c: usize,
    pub(crate) k_h: usize,
    pub(crate) k_w: usize,
    pub(crate) stride_h: usize,
    pub(crate) stride_w: usize,
    pub(crate) dilation_h: usize,
    pub(crate) dilation_w: usize,
    pub(crate) pad_top: usize,
    pub(crate) pad_left: usize,
}

/// `From` a parameter set with the window fields of [`TapGeometry`].
macro_rules! tap_geometry_from {
    ($($params:ty),*) => {$(
        impl From<&$params> for TapGeometry {
            fn from(d: &$params) -> Self {
                TapGeometry {
                    batch: d.batch,
                    out_h: d.out_h,
                    out_w: d.out_w,
                    in_h: d.in_h,
                    in_w: d.in_w,
                    in_c: d.in_c,
                    k_h: d.k_h,
                    k_w: d.k_w,
                    stride_h: d.stride_h,
                    stride_w: d.stride_w,
                    dilation_h: d.dilation_h,
                    dilation_w: d.dilation_w,
                    pad_top: d.pad_top,
                    pad_left: d.pad_left,
                }
            }
        }
    )*};
}
tap_geometry_from!(Conv2dParams, DepthwiseParams);

impl TapGeometry {
    /// Output columns `lo..hi` whose every horizontal tap lies inside the input row.
    pub(crate) fn interior(&self) -> (usize, usize) {
        let lo = self.pad_left.div_ceil(self.stride_w);
        let reach = (self.k_w - 1) * self.dilation_w;
        let hi = if self.in_w + self.pad_left > reach {
            ((self.in_w + self.pad_left - reach - 1) / self.stride_w + 1).min(self.out_w)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Input row of vertical tap `ky` for output row `oy`, if inside the image.
    #[inline(always)]
    pub(crate) fn row(&self, oy: usize, ky: usize) -> Option<usize> {
        let iy = (oy * self.stride_h + ky * self.dilation_h) as isize - self.pad_top as isize;
        (iy >= 0 && (iy as usize) < self.in_h).then_some(iy as usize)
    }

    /// Offset in `input` (channel 0) of tap (`ky`, `kx`) of output pixel `[b, oy, ox]`, or
    /// `None` where the tap lies in the padding. `in_row`: the pixel belongs to a block whose
    /// every tap column lies inside the row (only the row is checked).
    #[inline(always)]
    pub(crate) fn tap_at(
        &self,
        [b, oy, ox]: [usize; 3],
        ky: usize,
        kx: usize,
        in_row: bool,
    ) -> Option<usize> {
        let iy = self.row(oy, ky)?;
        let ix = if in_row {
            ox * self.stride_w + kx * self.dilation_w - self.pad_left
        } else {
            self.column(ox, kx)?
        };
        Some(((b * self.in_h + iy) * self.in_w + ix) * self.in_c)
    }

    /// How a convolution tile reads each kernel row of its windows: `(runs, run)`, one run of
    /// `k_w·in_c` consecutive input values (matching consecutive `[tap][in][out]` weight rows)
    /// where the tile is a block (every tap inside the row) and the taps are adjacent
    /// (dilation 1; a 3-channel first layer then runs 15 values at a time, not 3), else `k_w`
    /// runs of one tap's `in_c`. Run `r` of kernel row `ky` starts at
    /// [`tap_at`](Self::tap_at)`(px, ky, r, block)`, its weights at tap `ky·k_w + r`.
    #[inline(always)]
    pub(crate) fn conv_runs(&self, block: bool) -> (usize, usize) {
        if block && self.dilation_w == 1 {
            (1, self.k_w * self.in_c)
        } else {
            (self.k_w, self.in_c)
        }
    }

    /// Where run `r` of kernel row `ky` ([`conv_runs`](Self::conv_runs), `run` values long)
    /// of a tile of `pixels` pixels from `px` starts in an input of `len` floats, or `None`
    /// where it lies in the padding. Panics unless the last pixel's run (pixel q's starts
    /// `q·stride_w·in_c` floats after pixel 0's) ends inside the input: the kernels' unchecked
    /// loads rely on it.
    #[inline(always)]
    pub(crate) fn run_start(
        &self,
        px: [usize; 3],
        [ky, r]: [usize; 2],
        pixels: usize,
        run: usize,
        len: usize,
    ) -> Option<usize> {
        let at = self.tap_at(px, ky, r, pixels > 1)?;
        let step = self.stride_w * self.in_c;
        assert!(at + (pixels - 1) * step + run <= len, "conv2d f32: window");
        Some(at)
    }

    /// Input column of horizontal tap `kx` for output column `ox`, if inside the row.
    #[inline(always)]
    pub(crate) fn column(&self, ox: usize, kx: usize) -> Option<usize> {
        let ix = (ox * self.stride_w + kx * self.dilation_w) as isize - self.pad_left as isize;
        (ix >= 0 && (ix as usize) < self.in_w).then_some(ix as usize)
    }
}

/// Where a tile of output pixels lies ([`Tiles`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tile {
    /// Image, output row and output column of its first pixel.
    pub(crate) at: [usize; 3],
    /// Index of its first pixel among all output pixels (row-major over the batch).
    pub(crate) pixel: usize,
    /// Pixels in it: the block size asked for or [`PIXELS`] (every tap inside the row), or 1
    /// (any window).
    pub(crate) pixels: usize,
}

/// Every output pixel once, in tiles ([`Tile`]), image by image and row by row.
pub(crate) struct Tiles {
    g: TapGeometry,
    block: usize,
    interior: (usize, usize),
    next: [usize; 3],
}

impl Tiles {
    pub(crate) fn new(g: TapGeometry) -> Self {
        Self::blocks_of(g, PIXELS)
    }

    /// Tiles of `block` pixels (at least [`PIXELS`]) where every tap is inside the row, of
    /// [`PIXELS`] where fewer are left before the row's edge.
    pub(crate) fn blocks_of(g: TapGeometry, block: usize) -> Self {
        Tiles {
            g,
            block,
            interior: g.interior(),
            next: [0; 3],
        }
    }
}

impl Iterator for Tiles {
    type Item = Tile;

    #[inline]
    fn next(&mut self) -> Option<Tile> {
        let [b, oy, ox] = self.next;
        let g = &self.g;
        if b >= g.batch || g.out_h == 0 || g.out_w == 0 {
            return None;
        }
        let (lo, hi) = self.interior;
        let fits = |n: usize| ox >= lo && ox + n <= hi;
        // A block that is not a multiple of PIXELS (6) would leave 2 or 3 pixels before the
        // edge to run one by one where two PIXELS tiles cover them (8 = 4 + 4, 9 = 4 + 4 + 1).
        let strands = |n: usize| {
            !self.block.is_multiple_of(PIXELS) && (2..PIXELS).contains(&(hi.saturating_sub(ox + n)))
        };
        let pixels = if fits(self.block) && !strands(self.block) {
            self.block
        } else if fits(PIXELS) {
            PIXELS
        } else {
            1
        };
        self.next = match (ox + pixels < g.out_w, oy + 1 < g.out_h) {
            (true, _) => [b, oy, ox + pixels],
            (false, true) => [b, oy + 1, 0],
            (false, false) => [b + 1, 0, 0],
        };
        Some(Tile {
            at: [b, oy, ox],
            pixel: (b * g.out_h + oy) * g.out_w + ox,
            pixels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every output pixel exactly once, in order; blocks only where every tap is inside.
    #[test]
    fn tiles_cover_each_pixel_once() {
        for (in_w, k, stride, dil, pad) in [
            (9, 3, 1, 1, 1),
            (10, 3, 1, 1, 1),
            (11, 3, 1, 1, 1),
            (10, 5, 2, 1, 2),
            (7, 3, 2, 2, 0),
            (3, 5, 1, 1, 2),
            (16, 1, 1, 1, 0),
            (21, 3, 1, 1, 1),
            (40, 5, 2, 1, 2),
        ] {
            let mut p = DepthwiseParams::same(2, in_w, 1, k, stride);
            p.batch = 2;
            p.dilation_w = dil;
            p.pad_left = pad;
            p.out_w = crate::conv_output_size(in_w, k, stride, dil, pad, pad);
            let g = TapGeometry::from(&p);
            for block in [PIXELS, 6, 8] {
                let mut seen = Vec::new();
                let mut singles = 0;
                for t in Tiles::blocks_of(g, block) {
                    let [b, oy, ox] = t.at;
                    assert_eq!(t.pixel, (b * p.out_h + oy) * p.out_w + ox);
                    assert!([1, PIXELS, block].contains(&t.pixels), "{t:?}");
                    let (lo, hi) = g.interior();
                    singles += usize::from(t.pixels == 1 && (lo..hi).contains(&ox));
                    for q in 0..t.pixels {
                        seen.push(t.pixel + q);
                        if t.pixels > 1 {
                            for kx in 0..k {
                                assert!(g.column(ox + q, kx).is_some(), "{t:?}: tap {kx} outside");
                            }
                        }
                    }
                }
                let all: Vec<usize> = (0..p.batch * p.out_h * p.out_w).collect();
                assert_eq!(seen, all, "in_w {in_w} k {k} stride {stride} block {block}");
                // Inside the interior, single pixels only where tiles of PIXELS and `block`
                // cannot cover it (an odd width, or a width under PIXELS).
                let (lo, hi) = g.interior();
                let fewest = if hi - lo < PIXELS {
                    hi - lo
                } else if block.is_multiple_of(PIXELS) {
                    (hi - lo) % PIXELS
                } else {
                    (hi - lo) % 2
                };
                assert_eq!(
                    singles,
                    fewest * p.batch * p.out_h,
                    "in_w {in_w} k {k} stride {stride} block {block}"
                );
            }
        }
    }
}
