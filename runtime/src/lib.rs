//! Outpost runtime: plans a validated model onto the CPU kernels, runs it in a session that
//! allocates nothing per frame, and publishes results over IPC.
//!
//! ```
//! use outpost_models::{Model, zoo::{MobileNetV2, synth_mobilenet_v2}};
//! use outpost_runtime::{Session, SessionOptions};
//! let cfg = MobileNetV2 { width: 0.35, size: 64, ..Default::default() };
//! let model = Model::from_bytes(synth_mobilenet_v2(&cfg).unwrap().build().unwrap()).unwrap();
//! let mut session = Session::new(&model, SessionOptions::default()).unwrap();
//! session.input_i8(0).unwrap().fill(3);
//! session.run();
//! assert_eq!(session.output_i8(0).unwrap().len(), 1000);
//! ```
pub use outpost_kernels as kernels;
pub use outpost_models as models;

pub mod affinity;
pub mod audio;
mod chain;
pub mod error;
pub mod infer;
pub mod ipc;
pub mod parallel;
pub mod pipeline;
pub mod plan;
pub mod pool;
pub mod preprocess;
pub mod session;
pub mod sources;

pub use error::{Result, RuntimeError};
pub use infer::Inference;
pub use plan::Plan;
pub use session::{Session, SessionOptions};
