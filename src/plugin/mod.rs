//! Extending a tenant beyond what entities and flows say: webhooks that tell other
//! systems of record events, and rules the scheduler runs at set times.

pub mod schedules;
pub mod webhooks;
