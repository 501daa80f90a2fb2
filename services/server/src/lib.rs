//! The `homeward` binary's library: the API server ([`app`]), command line and telemetry, so tests can boot and drive the same code the binary runs.
#![forbid(unsafe_code)]

mod access;
pub mod app;
pub mod archive;
pub mod cli;
mod console;
pub mod demo;
mod graphiql;
mod invitation_pages;
pub mod limits;
pub mod metrics;
mod partner_pages;
mod routes;
mod serve;
pub mod settings;
pub mod store;
pub mod telemetry;
mod websocket;
