//! One module per subcommand.

pub mod bench;
pub mod client;
pub mod inspect;
pub mod outbox;
pub mod synth;
