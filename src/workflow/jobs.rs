//! Background jobs: today the public pool's reclaim, for every tenant. `serve` runs
//! them periodically; `metacrm jobs run` runs them once.

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::tenant::Tenants;
use crate::workflow::pool;

/// One job's outcome for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    pub tenant: String,
    pub job: &'static str,
    pub entity: String,
    pub count: u64,
}

/// Runs every job for the tenants (all when `only` is `None`) as of `now`.
pub async fn run(
    tenants: &Tenants,
    only: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<JobReport>> {
    let keys = match only {
        Some(key) => vec![key.to_string()],
        None => tenants.keys().await?,
    };
    let mut reports = Vec::new();
    for key in keys {
        let tenant = tenants.get(&key).await?;
        let catalog = tenant.catalog().await;
        for (entity, count) in pool::reclaim(&tenant.db, &catalog, now).await? {
            reports.push(JobReport {
                tenant: key.clone(),
                job: "pool_reclaim",
                entity,
                count,
            });
        }
    }
    Ok(reports)
}
