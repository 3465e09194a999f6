//! Element types of tensors in a model and in the runtime.

use core::fmt;

/// An element type. The names match safetensors' dtype names and the lower-case spelling used
/// in Outpost's model metadata (`"i8"`, `"f32"`, ...).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// Signed 8-bit integer: quantized weights and activations.
    I8,
    /// Unsigned 8-bit integer: raw image bytes, some quantized inputs.
    U8,
    /// Signed 32-bit integer: biases, accumulators, indices.
    I32,
    /// IEEE 754 half precision: float weights stored compactly (widened on load).
    F16,
    /// IEEE 754 single precision.
    F32,
}

impl DType {
    /// Size of one element in bytes.
    pub const fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 => 1,
            DType::F16 => 2,
            DType::I32 | DType::F32 => 4,
        }
    }

    /// Required alignment for a typed view of this element type.
    pub const fn align(self) -> usize {
        self.size()
    }

    /// The lower-case name used in metadata (`"i8"`).
    pub const fn name(self) -> &'static str {
        match self {
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I32 => "i32",
            DType::F16 => "f16",
            DType::F32 => "f32",
        }
    }

    /// Whether the type is an integer type used for quantized values.
    pub const fn is_quantized_int(self) -> bool {
        matches!(self, DType::I8 | DType::U8)
    }

    /// Whether the type is a floating-point type.
    pub const fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::F32)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::DType;

    #[test]
    fn sizes_and_names() {
        assert_eq!(DType::I8.size(), 1);
        assert_eq!(DType::F16.size(), 2);
        assert_eq!(DType::F32.size(), 4);
        assert_eq!(DType::I32.name(), "i32");
        assert!(DType::U8.is_quantized_int());
        assert!(!DType::I32.is_quantized_int());
        assert!(DType::F16.is_float());
    }
}
