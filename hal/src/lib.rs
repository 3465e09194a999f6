//! Outpost hardware abstraction layer.
//!
//! `no_std` leaf crate shared by the model format, the kernels and the runtime backends:
//! element types ([`DType`]), error classification ([`ErrorKind`]), what a backend can do
//! ([`Capabilities`]) and the [`Device`] trait every backend implements.
#![no_std]

mod caps;
mod dtype;
mod error;

pub use caps::{Capabilities, CpuFeatures, Device, DeviceKind};
pub use dtype::DType;
pub use error::ErrorKind;
