//! Extending a tenant beyond what entities and flows say: scripted hooks on record
//! events, webhooks that tell other systems of them, and rules the scheduler runs at
//! set times.

pub mod hooks;
pub mod packages;
pub mod schedules;
pub mod scripts;
pub mod webhooks;
