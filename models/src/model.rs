//! `Model`: a memory-mapped, validated model file.

use std::collections::HashMap;
use std::path::Path;

use log::{debug, warn};
use memmap2::Mmap;
use safetensors::{SafeTensorError, SafeTensors};

use crate::error::{ModelError, Result};
use crate::meta::{self, ModelMeta};
use crate::tensor::{Bytes, Entry, TensorRef, dtype_from_safetensors};
use crate::validate::{check_dims, validate};

/// safetensors' limit on the JSON header.
const MAX_HEADER: u64 = 100_000_000;

/// The bytes of a model file.
#[derive(Debug)]
enum Storage {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// Facts about how a model was loaded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadReport {
    /// File size in bytes.
    pub file_bytes: u64,
    /// Bytes of stored tensors.
    pub tensor_bytes: u64,
    /// Whether the file is memory-mapped (otherwise it was given as bytes).
    pub mapped: bool,
    /// Tensors copied into aligned memory because the file stored them misaligned.
    pub copied: Vec<String>,
}

/// A loaded, validated model. Tensor views borrow from the memory map.
#[derive(Debug)]
pub struct Model {
    storage: Storage,
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    meta: ModelMeta,
    report: LoadReport,
}

impl Model {
    /// Map and validate a model file.
    pub fn open(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let io = |source| ModelError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process. A concurrent writer that
        // truncates the file could fault reads; models are deployed by atomic rename, never
        // rewritten in place, which the deployment docs require.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        debug!("mapped {} ({} bytes)", path.display(), map.len());
        Self::load(Storage::Mapped(map))
    }

    /// Validate a model held in memory (tests, fuzzing, models received over the network).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Model> {
        Self::load(Storage::Owned(bytes))
    }

    fn load(storage: Storage) -> Result<Model> {
        let buf = storage.bytes();
        let file_len = buf.len() as u64;
        let header_len = match buf.get(..8) {
            Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
            None => {
                return Err(ModelError::Truncated {
                    what: "the 8-byte header length",
                    needed: 8,
                    found: file_len,
                });
            }
        };
        if header_len > MAX_HEADER || header_len.saturating_add(8) > file_len {
            return Err(ModelError::HeaderBeyondFile {
                header_len,
                file_len,
            });
        }
        let data_start = 8 + header_len as usize;
        let (_, st_meta) =
            SafeTensors::read_metadata(buf).map_err(|e| header_error(e, buf, data_start))?;

        let mut entries = Vec::new();
        let mut index = HashMap::new();
        let mut report = LoadReport {
            file_bytes: file_len,
            mapped: matches!(storage, Storage::Mapped(_)),
            ..Default::default()
        };
        for name in st_meta.offset_keys() {
            let info = st_meta.info(&name).expect("key from offset_keys");
            let dtype = dtype_from_safetensors(&name, info.dtype)?;
            let len = check_dims(&name, &info.shape, dtype)?;
            let start = data_start + info.data_offsets.0;
            let range = start..start + len;
            let bytes = if (buf[range.clone()].as_ptr() as usize).is_multiple_of(dtype.align()) {
                Bytes::Mapped(range)
            } else {
                warn!("tensor `{name}` is misaligned in the file; copying {len} bytes");
                let mut words = vec![0u64; len.div_ceil(8)];
                bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..len].copy_from_slice(&buf[range]);
                report.copied.push(name.clone());
                Bytes::Copied(words, len)
            };
            report.tensor_bytes += len as u64;
            index.insert(name.clone(), entries.len());
            entries.push(Entry {
                name,
                dtype,
                shape: info.shape.clone(),
                bytes,
            });
        }

        let raw = meta::parse(st_meta.metadata().as_ref())?;
        let lookup = |name: &str| {
            index.get(name).map(|&i| {
                let e: &Entry = &entries[i];
                TensorRef::new(&e.name, e.dtype, &e.shape, e.slice(buf))
            })
        };
        let meta = validate(raw, lookup)?;
        Ok(Model {
            storage,
            entries,
            index,
            meta,
            report,
        })
    }

    /// The validated metadata: graph, specs, labels, provenance.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// How the model was loaded.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// A stored tensor by name.
    pub fn tensor(&self, name: &str) -> Option<TensorRef<'_>> {
        let e = &self.entries[*self.index.get(name)?];
        Some(TensorRef::new(
            &e.name,
            e.dtype,
            &e.shape,
            e.slice(self.storage.bytes()),
        ))
    }

    /// All stored tensors, in file order.
    pub fn tensors(&self) -> impl Iterator<Item = TensorRef<'_>> {
        self.entries
            .iter()
            .map(|e| TensorRef::new(&e.name, e.dtype, &e.shape, e.slice(self.storage.bytes())))
    }
}

/// Turn a safetensors header error into ours, telling truncation from trailing bytes.
fn header_error(e: SafeTensorError, buf: &[u8], data_start: usize) -> ModelError {
    match e {
        SafeTensorError::MetadataIncompleteBuffer => {
            let needed =
                declared_data_end(&buf[8..data_start]).map(|end| (data_start + end) as u64);
            match needed {
                Some(n) if n > buf.len() as u64 => ModelError::Truncated {
                    what: "the tensor data",
                    needed: n,
                    found: buf.len() as u64,
                },
                Some(n) => ModelError::TrailingBytes {
                    extra: buf.len() as u64 - n,
                },
                None => {
                    ModelError::CorruptHeader("tensor offsets do not match the file size".into())
                }
            }
        }
        SafeTensorError::HeaderTooLarge | SafeTensorError::InvalidHeaderLength => {
            ModelError::HeaderBeyondFile {
                header_len: (data_start - 8) as u64,
                file_len: buf.len() as u64,
            }
        }
        SafeTensorError::ValidationOverflow | SafeTensorError::TensorInvalidInfo => {
            explain_tensor(&buf[8..data_start])
                .unwrap_or_else(|| ModelError::CorruptHeader(e.to_string()))
        }
        other => ModelError::CorruptHeader(other.to_string().replace('\n', " ")),
    }
}

/// Name the tensor whose shape, dtype and offsets disagree (only on the error path).
fn explain_tensor(header: &[u8]) -> Option<ModelError> {
    let v: serde_json::Value = serde_json::from_slice(header).ok()?;
    for (name, t) in v
        .as_object()?
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
    {
        let size = match t.get("dtype")?.as_str()? {
            "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1u64,
            "I16" | "U16" | "F16" | "BF16" => 2,
            "I32" | "U32" | "F32" => 4,
            _ => 8,
        };
        let elements = t
            .get("shape")?
            .as_array()?
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(d.as_u64()?));
        let offsets = t.get("data_offsets")?.as_array()?;
        let span = offsets
            .get(1)?
            .as_u64()?
            .checked_sub(offsets.first()?.as_u64()?);
        match (elements.and_then(|e| e.checked_mul(size)), span) {
            (None, _) => {
                return Some(ModelError::DimensionOverflow {
                    tensor: name.clone(),
                    reason: "element count overflows".into(),
                });
            }
            (Some(need), Some(have)) if need != have => {
                return Some(ModelError::ShapeMismatch {
                    tensor: name.clone(),
                    reason: format!(
                        "shape and dtype need {need} bytes but the offsets hold {have}"
                    ),
                });
            }
            _ => {}
        }
    }
    None
}

/// The largest end offset the header declares (only used to explain a size mismatch).
fn declared_data_end(header: &[u8]) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_slice(header).ok()?;
    v.as_object()?
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(_, t)| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .map(|m| m as usize)
}
