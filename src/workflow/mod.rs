//! The business process on top of records: stage transitions, approval flows and
//! in-app notifications.

pub mod approvals;
pub mod notifications;
pub mod stages;
