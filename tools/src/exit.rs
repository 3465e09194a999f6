//! Exit statuses and one-line error reports.

use std::process::ExitCode;

/// A command failure: a message a person can act on and the exit status to return.
#[derive(Debug)]
pub struct Failure {
    /// Exit status: 2 for bad input (files, arguments), 1 for anything else.
    pub status: u8,
    /// One line saying what went wrong and what to do about it.
    pub message: String,
}

impl Failure {
    /// Bad input given by the user (exit status 2).
    pub fn input(message: impl Into<String>) -> Self {
        Failure {
            status: 2,
            message: message.into(),
        }
    }

    /// Any other failure (exit status 1).
    pub fn other(message: impl Into<String>) -> Self {
        Failure {
            status: 1,
            message: message.into(),
        }
    }
}

/// Result type of every subcommand.
pub type CmdResult = Result<(), Failure>;

/// Print a failure as one line on stderr and turn it into the process exit code.
pub fn finish(result: CmdResult) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.status)
        }
    }
}
