//! Outpost model format: quantized safetensors.
//!
//! A model is one `.safetensors` file: weights as safetensors tensors, and in `__metadata__` the
//! graph, activation quantization, input and output specs, labels and provenance (see
//! `docs/model-format.md`). [`Model::open`] maps the file, validates all of it, and lends out
//! typed zero-copy views of the weights.
//!
//! ```
//! use outpost_models::{Model, zoo::{MobileNetV2, synth_mobilenet_v2}};
//! let bytes = synth_mobilenet_v2(&MobileNetV2 { width: 0.35, size: 96, ..Default::default() })
//!     .unwrap()
//!     .build()
//!     .unwrap();
//! let model = Model::from_bytes(bytes).unwrap();
//! let w = model.tensor("conv0.weight").unwrap().as_i8().unwrap();
//! assert_eq!(w.len(), 16 * 3 * 3 * 3);
//! ```

pub mod builder;
pub mod decode;
pub mod error;
pub mod graph;
pub mod meta;
mod model;
pub mod spec;
pub mod summary;
mod tensor;
mod validate;
pub mod zoo;

pub use builder::ModelBuilder;
pub use error::{ModelError, Result};
pub use meta::{FORMAT_VERSION, ModelMeta};
pub use model::{LoadReport, Model};
pub use summary::ModelSummary;
pub use tensor::TensorRef;
pub use validate::{MAX_ACTIVATION_BYTES, MAX_NODES};
