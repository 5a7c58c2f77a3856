//! The business process on top of records: stage transitions, approval flows,
//! conversions, follow-up cycles, the public pool, scheduled jobs, in-app
//! notifications and record shares.

pub mod approvals;
pub mod convert;
pub mod followups;
pub mod hooks;
pub mod jobs;
pub mod notifications;
pub mod pool;
pub mod shares;
pub mod stages;
