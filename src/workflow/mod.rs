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

use serde_json::Value;

use crate::error::{Error, Result};
use crate::meta::expr::Expr;

/// Whether a published condition (a flow's or step's `when`, a conversion's) holds
/// for `record`; one that cannot be evaluated does not.
pub fn condition(source: &str, record: &Value) -> Result<bool> {
    let expression = Expr::compile(source).map_err(|e| {
        Error::Internal(format!(
            "published condition {source:?} does not compile: {e}"
        ))
    })?;
    let fields = record.as_object().cloned().unwrap_or_default();
    Ok(expression.eval_bool(&fields).unwrap_or(false))
}
