//! The Homeward domain: return plans, their steps, consent and reminders.
//!
//! Everything here is pure: no I/O, no async, no clock. Decisions take the current time as an
//! argument (`Context::now`) so that replaying a stream always gives the same state, and the
//! effects of a change (timers to arm or cancel) are returned as data for the adapters to carry out.
//!
//! Three kinds of stream exist:
//! - `plan-<uuid>`: the return plan ([`plan`]), which refers to the survivor only by [`PersonId`];
//! - `person-<uuid>`: the survivor's personal data ([`person`]), the only place it is kept;
//! - `party-<uuid>`: a responsible party ([`party`]): social worker, liaison, partner contact, ...
//! - `organisation-<uuid>`: an organisation ([`organisation`]) and whom it works with.
#![forbid(unsafe_code)]

pub mod aggregate;
pub mod classification;
pub mod ids;
pub mod organisation;
pub mod party;
pub mod person;
pub mod personal;
pub mod plan;
pub mod schedule;
pub mod template;
pub mod text;
pub mod timers;
pub mod upcast;

pub use aggregate::{Aggregate, Context, DomainEvent, FindableBy};
pub use ids::{OrganisationId, PartyId, PersonId, PlanId, StepKey};
pub use personal::Personal;
