//! One module per subcommand.

pub mod bench;
pub mod client;
pub mod convert;
pub mod fetch;
pub mod fetch_models;
pub mod infer;
pub mod infer_audio;
pub mod inspect;
pub mod outbox;
pub mod requant_arg;
pub mod run;
pub mod synth;
