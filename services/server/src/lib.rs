//! The `homeward` binary's library: command line, telemetry and benchmarks, so tests can drive
//! the same code the binary runs. The API server (`homeward serve`) arrives with its issue.
#![forbid(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod telemetry;
