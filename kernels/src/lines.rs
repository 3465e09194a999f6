//! Cache-line-aligned storage for activations and scratch.
//!
//! A `Vec` of a few hundred kilobytes comes from `malloc` 16 bytes past a page boundary, so
//! every 512-bit load of a row from it straddles two cache lines: the f32 depthwise kernels
//! ran 20–30 % slower on such buffers (BENCHMARKS.md, "Cache-line aligned arena"). The
//! session's arena and scratch are [`Lines`], and so are the kernel benches' operands.

use bytemuck::Pod;

/// 64 bytes on a 64-byte boundary: the unit of [`Lines`].
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// Zeroed bytes in whole cache lines, starting on a cache line.
#[derive(Debug, Clone)]
pub struct Lines(Vec<Line>);

impl Lines {
    /// At least `bytes` zeroed bytes (rounded up to whole lines).
    pub fn zeroed(bytes: usize) -> Self {
        Lines(vec![Line([0; 64]); bytes.div_ceil(64)])
    }

    /// A copy of `src` at the start of fresh lines.
    pub fn copy_of<T: Pod>(src: &[T]) -> Self {
        let bytes: &[u8] = bytemuck::cast_slice(src);
        let mut l = Self::zeroed(bytes.len());
        l.bytes_mut()[..bytes.len()].copy_from_slice(bytes);
        l
    }

    /// Bytes held (a multiple of 64).
    pub fn len(&self) -> usize {
        self.0.len() * 64
    }

    /// Whether no bytes are held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.0)
    }

    /// The first `n` values of type `T`.
    ///
    /// # Panics
    /// If `n` values do not fit.
    pub fn view<T: Pod>(&self, n: usize) -> &[T] {
        &bytemuck::cast_slice(self.bytes())[..n]
    }

    /// The first `n` values of type `T`, mutable.
    ///
    /// # Panics
    /// If `n` values do not fit.
    pub fn view_mut<T: Pod>(&mut self, n: usize) -> &mut [T] {
        &mut bytemuck::cast_slice_mut(self.bytes_mut())[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_start_on_a_cache_line_and_round_up() {
        for bytes in [0, 1, 63, 64, 65, 300_000] {
            let mut l = Lines::zeroed(bytes);
            assert_eq!(l.len(), bytes.div_ceil(64) * 64);
            assert_eq!(l.is_empty(), bytes == 0);
            assert_eq!(l.bytes().len(), l.len());
            assert!(l.bytes().iter().all(|&b| b == 0));
            if bytes > 0 {
                assert_eq!(l.bytes_mut().as_ptr() as usize % 64, 0, "{bytes} bytes");
            }
        }
    }

    #[test]
    fn copies_and_views_keep_the_values() {
        let src: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5 - 7.0).collect();
        let mut l = Lines::copy_of(&src);
        assert_eq!(l.view::<f32>(src.len()), &src[..]);
        assert_eq!(l.view::<f32>(src.len()).as_ptr() as usize % 64, 0);
        l.view_mut::<f32>(3)[2] = 9.0;
        assert_eq!(l.view::<f32>(3), &[-7.0, -6.5, 9.0]);
    }
}
