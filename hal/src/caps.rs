//! Backend capabilities and the device trait.

use crate::DType;

/// Kind of compute device a backend drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// Host CPU (scalar or SIMD kernels).
    Cpu,
    /// NVIDIA GPU through CUDA.
    Cuda,
}

/// CPU SIMD features relevant to kernel selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuFeatures {
    /// AVX2 + FMA.
    pub avx2: bool,
    /// AVX-512 F/BW/VL with VNNI (`vpdpbusd`).
    pub avx512vnni: bool,
    /// Arm NEON.
    pub neon: bool,
    /// Arm dot-product extension (`sdot`/`udot`).
    pub dotprod: bool,
}

/// What a backend supports, reported before a plan is made so placement is explicit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// The device kind.
    pub kind: DeviceKind,
    /// Whether int8 quantized kernels are available.
    pub int8: bool,
    /// Whether f32 kernels are available.
    pub f32: bool,
    /// Whether f16 arithmetic is native (otherwise f16 weights are widened).
    pub f16_native: bool,
    /// Number of worker threads the backend may use.
    pub threads: usize,
}

impl Capabilities {
    /// Whether tensors of `dtype` can be computed on this backend.
    pub fn supports(&self, dtype: DType) -> bool {
        match dtype {
            DType::I8 | DType::U8 | DType::I32 => self.int8,
            DType::F32 => self.f32,
            DType::F16 => self.f32 || self.f16_native,
        }
    }
}

/// A compute device. Backends in `runtime` implement this; the trait lives here so that
/// kernels and models stay independent of the runtime.
pub trait Device {
    /// A short human-readable name (`"cpu/avx512vnni"`, `"cuda:0"`).
    fn name(&self) -> &str;
    /// What the device can compute.
    fn capabilities(&self) -> Capabilities;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supports_follows_flags() {
        let caps = Capabilities {
            kind: DeviceKind::Cpu,
            int8: true,
            f32: false,
            f16_native: false,
            threads: 1,
        };
        assert!(caps.supports(DType::I8));
        assert!(!caps.supports(DType::F32));
        assert!(!caps.supports(DType::F16));
    }
}
