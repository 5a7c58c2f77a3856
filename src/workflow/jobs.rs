//! Background jobs, for every tenant: the query planner's statistics refreshed where
//! stale, the public pool's reclaim and the sweep of uploaded files never attached to
//! a record. `serve` runs them periodically ([`run_every`]); `metacrm jobs run` runs
//! them once ([`run`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::error::Result;
use crate::store::files::{self, FileStore};
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

/// The scheduler inside `serve`: every `period`, the jobs of each tenant whose lease
/// this node holds (so that several nodes run them once). A failing run is logged
/// and tried again at the next tick.
pub async fn run_every(tenants: Arc<Tenants>, period: std::time::Duration) {
    let mut interval = tokio::time::interval(period);
    loop {
        interval.tick().await;
        let keys = match tenants.keys().await {
            Ok(keys) => keys,
            Err(error) => {
                tracing::error!(%error, "background jobs cannot list tenants");
                continue;
            }
        };
        for key in keys {
            if !tenants.holds_lease(&key).await {
                continue;
            }
            match run(&tenants, Some(&key), Utc::now()).await {
                Ok(reports) => {
                    for report in reports {
                        tracing::info!(tenant = %report.tenant, job = report.job, entity = %report.entity, count = report.count, "job ran");
                    }
                }
                Err(error) => tracing::error!(tenant = %key, %error, "background jobs failed"),
            }
        }
    }
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
        tenant.db.refresh_statistics().await?;
        let catalog = tenant.catalog().await;
        for (entity, count) in pool::reclaim(&tenant.db, &catalog, now).await? {
            reports.push(JobReport {
                tenant: key.clone(),
                job: "pool_reclaim",
                entity,
                count,
            });
        }
        // The letterhead's logo is attached to the metadata, not to a record.
        let keep: BTreeSet<String> = catalog
            .package
            .branding
            .as_ref()
            .and_then(|b| b.logo.clone())
            .into_iter()
            .collect();
        let cutoff = now - Duration::hours(files::UNATTACHED_GRACE_HOURS);
        let swept = FileStore::for_tenant(&tenants.platform, &key)
            .sweep(&tenant.db, cutoff, &keep)
            .await?;
        if !swept.is_empty() {
            tracing::info!(tenant = %key, files = ?swept, "unattached uploads removed");
            reports.push(JobReport {
                tenant: key.clone(),
                job: "files_sweep",
                entity: "files".into(),
                count: swept.len() as u64,
            });
        }
    }
    Ok(reports)
}
