//! Extending a tenant beyond what entities and flows say: webhooks that tell other
//! systems of record events.

pub mod webhooks;
