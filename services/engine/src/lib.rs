//! Homeward application services.
//!
//! [`CommandHandler`] carries out a command on any aggregate: load its stream, fold, `decide`,
//! append the events with the version it loaded, and update the read models in the same
//! transaction. A replica carries out one stream's commands one at a time. When the caller gave
//! no expected version, a conflict (another replica wrote the stream in between) is retried on
//! fresh state until a deadline, then reported as busy; when the caller did, the conflict is
//! reported, because the caller decided on what it saw. Recently used states are
//! kept in memory, so a command folds only the events appended since.
#![forbid(unsafe_code)]

pub mod audit;
pub mod authz;
mod cache;
mod clock;
pub mod duties;
pub mod erasure;
mod handler;
pub mod i18n;
pub mod invitations;
pub mod keys;
pub mod links;
pub mod mail;
pub mod reminders;
pub mod retention;
pub mod scheduler;
pub mod search;
pub mod sessions;
pub mod tokens;
pub mod vault;

pub use clock::{Clock, FixedClock, SystemClock};
pub use handler::{
    CommandError, CommandHandler, CommandMeta, Handled, Loaded, DEFAULT_CACHED_EVENTS,
    DEFAULT_RETRY_DEADLINE,
};
