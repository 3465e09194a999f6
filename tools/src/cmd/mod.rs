//! One module per subcommand.

pub mod client;
pub mod inspect;
pub mod outbox;
pub mod synth;
