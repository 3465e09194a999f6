//! Cache-line-aligned byte storage for the session's arena and scratch.
//!
//! The planner places every activation buffer at a multiple of [`crate::plan::ARENA_ALIGN`]
//! (64) bytes from the arena's start, but that only puts buffers on cache lines if the arena
//! itself starts on one: a `Vec<u64>` or `Vec<u8>` of that size comes from `malloc` 16 bytes
//! past a page boundary, so every 512-bit load of an activation row then straddles two cache
//! lines (the f32 depthwise kernels ran 20–30 % slower that way; BENCHMARKS.md).

/// 64 bytes on a 64-byte boundary: the unit of [`Lines`].
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// Zeroed bytes, whole cache lines, starting on a cache line.
#[derive(Debug)]
pub(crate) struct Lines(Vec<Line>);

impl Lines {
    /// At least `bytes` zeroed bytes (rounded up to whole lines).
    pub(crate) fn zeroed(bytes: usize) -> Self {
        Lines(vec![Line([0; 64]); bytes.div_ceil(64)])
    }

    /// Bytes held (a multiple of 64).
    pub(crate) fn len(&self) -> usize {
        self.0.len() * 64
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.0)
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
            assert_eq!(l.bytes().len(), l.len());
            assert!(l.bytes().iter().all(|&b| b == 0));
            if bytes > 0 {
                assert_eq!(l.bytes_mut().as_ptr() as usize % 64, 0, "{bytes} bytes");
            }
        }
    }
}
