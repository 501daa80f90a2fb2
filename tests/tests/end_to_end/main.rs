//! Homeward's end-to-end tests, one module per area, linked into one test binary: each binary
//! links the whole server, so one instead of fifteen saves minutes of linking and gigabytes of
//! disk on every CI run. `api_batching` stays a binary of its own because it counts every SQL
//! statement the process sends. Run one area with `cargo test -p homeward-tests --test
//! end_to_end scheduler::`.

mod api_audit;
mod api_authorisation;
mod api_bad_input;
mod api_deactivation;
mod api_hand_over;
mod api_idempotency;
mod api_introspection;
mod api_invitations;
mod api_journey;
mod api_limits;
mod api_organisations;
mod api_persons;
mod api_queries;
mod api_reminder_settings;
mod api_reminders;
mod api_retention;
mod api_search;
mod api_server;
mod api_task_updates;
mod api_tokens;
mod api_websocket;
mod archive;
mod concurrency;
mod conformance;
mod console;
mod console_browser;
mod digests;
mod event_log;
mod mail;
mod partner_links;
mod readme;
mod rules;
mod scheduler;
mod sealing;
mod timer_queue;
