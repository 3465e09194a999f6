//! Typed, borrowed views of the tensors stored in a model file.

use half::f16;
use outpost_hal::DType;

use crate::error::{ModelError, Result};

/// Where a tensor's bytes live.
#[derive(Debug)]
pub(crate) enum Bytes {
    /// A byte range of the mapped file (zero copy).
    Mapped(std::ops::Range<usize>),
    /// An aligned copy, made because the file placed the tensor at a misaligned offset.
    Copied(Vec<u64>, usize),
}

/// One stored tensor: name, dtype, shape and its bytes.
#[derive(Debug)]
pub(crate) struct Entry {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub bytes: Bytes,
}

impl Entry {
    pub(crate) fn slice<'a>(&'a self, file: &'a [u8]) -> &'a [u8] {
        match &self.bytes {
            Bytes::Mapped(r) => &file[r.clone()],
            Bytes::Copied(words, len) => &bytemuck::cast_slice::<u64, u8>(words)[..*len],
        }
    }
}

/// A borrowed view of a stored tensor (weights, biases, scales).
#[derive(Debug, Clone, Copy)]
pub struct TensorRef<'a> {
    name: &'a str,
    dtype: DType,
    shape: &'a [usize],
    bytes: &'a [u8],
}

impl<'a> TensorRef<'a> {
    pub(crate) fn new(name: &'a str, dtype: DType, shape: &'a [usize], bytes: &'a [u8]) -> Self {
        TensorRef {
            name,
            dtype,
            shape,
            bytes,
        }
    }

    /// The tensor's name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Shape.
    pub fn shape(&self) -> &'a [usize] {
        self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw little-endian bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    fn typed<T: bytemuck::AnyBitPattern>(&self, want: DType) -> Result<&'a [T]> {
        if self.dtype != want {
            return Err(ModelError::DTypeMismatch {
                tensor: self.name.to_string(),
                expected: want,
                found: self.dtype,
            });
        }
        // The loader copies misaligned tensors, so the cast cannot fail on alignment.
        bytemuck::try_cast_slice(self.bytes).map_err(|e| ModelError::ShapeMismatch {
            tensor: self.name.to_string(),
            reason: format!("cannot view as {want}: {e}"),
        })
    }

    /// View as `i8` (dtype I8).
    pub fn as_i8(&self) -> Result<&'a [i8]> {
        self.typed(DType::I8)
    }

    /// View as `u8` (dtype U8).
    pub fn as_u8(&self) -> Result<&'a [u8]> {
        self.typed(DType::U8)
    }

    /// View as `i32` (dtype I32).
    pub fn as_i32(&self) -> Result<&'a [i32]> {
        self.typed(DType::I32)
    }

    /// View as `f32` (dtype F32).
    pub fn as_f32(&self) -> Result<&'a [f32]> {
        self.typed(DType::F32)
    }

    /// View as `f16` (dtype F16).
    pub fn as_f16(&self) -> Result<&'a [f16]> {
        self.typed(DType::F16)
    }
}

/// Map a safetensors dtype to ours.
pub(crate) fn dtype_from_safetensors(name: &str, d: safetensors::Dtype) -> Result<DType> {
    use safetensors::Dtype as S;
    Ok(match d {
        S::I8 => DType::I8,
        S::U8 => DType::U8,
        S::I32 => DType::I32,
        S::F16 => DType::F16,
        S::F32 => DType::F32,
        other => {
            return Err(ModelError::UnsupportedDType {
                tensor: name.to_string(),
                dtype: format!("{other:?}"),
            });
        }
    })
}

/// Map our dtype to safetensors'.
pub(crate) fn dtype_to_safetensors(d: DType) -> safetensors::Dtype {
    use safetensors::Dtype as S;
    match d {
        DType::I8 => S::I8,
        DType::U8 => S::U8,
        DType::I32 => S::I32,
        DType::F16 => S::F16,
        DType::F32 => S::F32,
    }
}
