//! Outpost runtime.
pub use outpost_models as models;

pub mod ipc;
