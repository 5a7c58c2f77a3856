//! Scheduled rules: the package's `schedules`, each a cron pattern in China time and a
//! notice about the records a filter finds ("every weekday at 09:00, tell owners which
//! customers are due a follow-up today"). `serve` looks for due slots every 30 seconds.
//! A slot is claimed by moving the rule's `last_slot` forward under the row's lock, in
//! the transaction that sends the notices and logs the run: nodes sharing a database
//! run each slot once, and a crash mid-run leaves the slot to run again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use croner::Cron;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query};
use serde_json::{Value, json};

use crate::auth::{Access, users};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::meta::{NoticeRecipients, Schedule};
use crate::store::db::{TenantDb, query_first};
use crate::store::records::{QueryRequest, Records};
use crate::store::schema;
use crate::store::value::format_datetime;
use crate::tenant::{Tenant, Tenants};
use crate::workflow::notifications::{self, Notice};

const SLOTS: &str = "schedule_slots";
const RUNS: &str = "schedule_runs";
/// Records one run looks at; a notice lists the first [`LISTED`] of them.
const MAX_RECORDS: usize = 10_000;
const LISTED: usize = 20;

/// A cron pattern of five fields, or what is wrong with it.
pub fn parse_cron(pattern: &str) -> std::result::Result<Cron, String> {
    if pattern.split_whitespace().count() != 5 {
        return Err(format!(
            "{pattern:?}: give five fields, minute hour day-of-month month day-of-week (e.g. \"0 9 * * 1-5\")"
        ));
    }
    pattern
        .parse::<Cron>()
        .map_err(|e| format!("{pattern:?}: {e}"))
}

/// The latest slot of `cron` at or before `now`, later than `last`, in China time.
fn due_slot(cron: &Cron, last: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let offset = crate::clock::offset();
    let next = cron
        .find_next_occurrence(&last.with_timezone(&offset), false)
        .ok()?;
    if next > now {
        return None;
    }
    let latest = cron
        .find_previous_occurrence(&now.with_timezone(&offset), true)
        .ok()?;
    Some(latest.with_timezone(&Utc))
}

/// What one run of a rule came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub schedule: String,
    pub slot: DateTime<Utc>,
    pub status: &'static str,
    pub notified: u64,
}

/// Runs every rule of the tenant that has a slot due at `now`. A rule seen for the
/// first time starts its clock at `now`: it runs at its next slot, not for the past.
pub async fn run_due(tenant: &Tenant, now: DateTime<Utc>) -> Result<Vec<RunReport>> {
    let catalog = tenant.catalog().await;
    let db = &tenant.db;
    let mut reports = Vec::new();
    for schedule in &catalog.package.schedules {
        let cron = parse_cron(&schedule.cron).map_err(Error::Internal)?;
        let Some(last) = last_slot(db, &schedule.key, now).await? else {
            continue;
        };
        let Some(slot) = due_slot(&cron, last, now) else {
            continue;
        };
        if let Some(report) = run_slot(db, &catalog, schedule, slot, Start::Slot).await? {
            reports.push(report);
        }
    }
    Ok(reports)
}

/// The rule's last slot, or `None` when this call started its clock at `now`.
async fn last_slot(db: &TenantDb, key: &str, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    let select = Query::select()
        .column(Alias::new("last_slot"))
        .from(db.table(SLOTS))
        .and_where(Expr::col(Alias::new("schedule")).eq(key))
        .to_owned();
    if let Some(row) = query_first(&db.conn(), &select).await? {
        return Ok(Some(row.try_get("", "last_slot")?));
    }
    let start = Query::insert()
        .into_table(db.table(SLOTS))
        .columns(["schedule", "last_slot"].map(Alias::new))
        .values_panic([key.into(), now.into()])
        .on_conflict(
            OnConflict::column(Alias::new("schedule"))
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    db.conn().execute(&start).await?;
    Ok(None)
}

/// How a run is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// By the scheduler, for a slot it must claim first.
    Slot,
    /// By an administrator, at once and outside the rule's slots.
    Manual,
}

/// Runs the rule for `slot` in one transaction, after claiming the slot when the
/// scheduler starts it; `None` when another node had claimed it. A failing rule
/// still consumes its slot, logged as `failed`.
async fn run_slot(
    db: &TenantDb,
    catalog: &Catalog,
    schedule: &Schedule,
    slot: DateTime<Utc>,
    start: Start,
) -> Result<Option<RunReport>> {
    let notices = notices(db, catalog, schedule).await;
    let txn = db.begin_write().await?;
    if start == Start::Slot {
        let claim = Query::update()
            .table(db.table(SLOTS))
            .value(Alias::new("last_slot"), slot)
            .and_where(Expr::col(Alias::new("schedule")).eq(schedule.key.as_str()))
            .and_where(Expr::col(Alias::new("last_slot")).lt(slot))
            .to_owned();
        if txn.execute(&claim).await?.rows_affected() == 0 {
            return Ok(None);
        }
    }
    let (status, notified, detail) = match notices {
        Ok((found, notices)) => {
            for (user, notice) in &notices {
                notifications::send(&txn, db, [*user], notice).await?;
            }
            ("done", notices.len() as u64, format!("{found} record(s)"))
        }
        Err(error) => {
            tracing::error!(schedule = %schedule.key, %error, "scheduled rule failed");
            ("failed", 0, error.to_string())
        }
    };
    let log = Query::insert()
        .into_table(db.table(RUNS))
        .columns(["schedule", "slot", "ran_at", "status", "notified", "detail"].map(Alias::new))
        .values_panic([
            schedule.key.as_str().into(),
            slot.into(),
            Utc::now().into(),
            status.into(),
            (notified as i64).into(),
            detail.into(),
        ])
        .to_owned();
    txn.execute(&log).await?;
    txn.commit().await?;
    Ok(Some(RunReport {
        schedule: schedule.key.clone(),
        slot,
        status,
        notified,
    }))
}

/// How many records the filter finds, and the notices a run sends about them per
/// user: grouped by owner, or sent whole to the role's members.
async fn notices<'s>(
    db: &TenantDb,
    catalog: &Catalog,
    schedule: &'s Schedule,
) -> Result<(usize, BTreeMap<i64, Notice<'s>>)> {
    let notify = &schedule.notify;
    let entity = catalog
        .entity(&notify.entity)
        .ok_or_else(|| Error::Internal(format!("unknown entity {}", notify.entity)))?;
    let records = Records::new(db, catalog, entity);
    let access = Access::system();
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let request = QueryRequest {
            filter: notify.filter.clone(),
            sort: Vec::new(),
            limit: Some(crate::store::records::MAX_LIMIT),
            after,
        };
        let page = records.query(&request, &access).await?;
        found.extend(page.items);
        after = page.next;
        if after.is_none() || found.len() >= MAX_RECORDS {
            break;
        }
    }
    let mut groups: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    match &notify.to {
        NoticeRecipients::Owner => {
            for record in &found {
                if let Some(owner) = record[schema::OWNER].as_i64() {
                    groups.entry(owner).or_default().push(record);
                }
            }
        }
        NoticeRecipients::Role(role) => {
            if !found.is_empty() {
                for user in users::list(db).await? {
                    if user.active && user.roles.contains(role) {
                        groups.insert(user.id, found.iter().collect());
                    }
                }
            }
        }
    }
    let label = schedule.label.as_deref().unwrap_or(&schedule.key);
    let notices = groups
        .into_iter()
        .map(|(user, records)| {
            let listed: Vec<Value> = records
                .iter()
                .take(LISTED)
                .map(|r| json!({"id": r[schema::ID], "title": entity.title_of(r)}))
                .collect();
            let context = json!({"count": records.len(), "records": listed, "label": label});
            let render = |template: &str| render(template, &context);
            Ok((
                user,
                Notice {
                    kind: "scheduled",
                    title: render(&notify.title)?,
                    body: notify
                        .body
                        .as_deref()
                        .map(render)
                        .transpose()?
                        .unwrap_or_default(),
                    entity: Some(&notify.entity),
                    record_id: (records.len() == 1)
                        .then(|| records[0][schema::ID].as_i64())
                        .flatten(),
                    approval_id: None,
                },
            ))
        })
        .collect::<Result<_>>()?;
    Ok((found.len(), notices))
}

/// A notice text from its template (minijinja, sandboxed: no loader, fuel-limited).
fn render(template: &str, context: &Value) -> Result<String> {
    let env = crate::meta::template::environment(100_000);
    crate::meta::template::render(
        &env,
        template,
        minijinja::Value::from(minijinja::value::Serde(context)),
    )
    .map_err(|e| Error::BadRequest(format!("scheduled notice template: {e}")))
}

/// Runs a rule now, whatever its pattern says (an administrator trying it out); its
/// scheduled slots are left as they were.
pub async fn run_now(tenant: &Tenant, key: &str, now: DateTime<Utc>) -> Result<RunReport> {
    let catalog = tenant.catalog().await;
    let schedule = catalog
        .package
        .schedules
        .iter()
        .find(|s| s.key == key)
        .ok_or_else(|| Error::not_found(format!("scheduled rule {key:?}")))?;
    run_slot(&tenant.db, &catalog, schedule, now, Start::Manual)
        .await?
        .ok_or_else(|| Error::Internal("a manual run claims no slot".into()))
}

/// The rules with their next slot and latest runs (newest first).
pub async fn overview(tenant: &Tenant, now: DateTime<Utc>) -> Result<Vec<Value>> {
    let catalog = tenant.catalog().await;
    let db = &tenant.db;
    let offset = crate::clock::offset();
    let mut items = Vec::new();
    for schedule in &catalog.package.schedules {
        let cron = parse_cron(&schedule.cron).map_err(Error::Internal)?;
        let next = cron
            .find_next_occurrence(&now.with_timezone(&offset), false)
            .ok()
            .map(|t| format_datetime(t.with_timezone(&Utc)));
        let select = Query::select()
            .columns(["slot", "ran_at", "status", "notified", "detail"].map(Alias::new))
            .from(db.table(RUNS))
            .and_where(Expr::col(Alias::new("schedule")).eq(schedule.key.as_str()))
            .order_by(Alias::new("id"), Order::Desc)
            .limit(20)
            .to_owned();
        let runs = db
            .conn()
            .query_all(&select)
            .await?
            .iter()
            .map(|row| {
                Ok(json!({
                    "slot": format_datetime(row.try_get::<DateTime<Utc>>("", "slot")?),
                    "ran_at": format_datetime(row.try_get::<DateTime<Utc>>("", "ran_at")?),
                    "status": row.try_get::<String>("", "status")?,
                    "notified": row.try_get::<i64>("", "notified")?,
                    "detail": row.try_get::<String>("", "detail")?,
                }))
            })
            .collect::<Result<Vec<Value>>>()?;
        items.push(json!({
            "key": schedule.key,
            "label": schedule.label,
            "cron": schedule.cron,
            "next_run": next,
            "runs": runs,
        }));
    }
    Ok(items)
}

/// The scheduler inside `serve`: every 30 seconds, every tenant's due rules. A failing
/// tenant is logged and tried again at the next tick.
pub async fn serve_forever(tenants: Arc<Tenants>) {
    let mut interval = tokio::time::interval(StdDuration::from_secs(30));
    loop {
        interval.tick().await;
        let keys = match tenants.keys().await {
            Ok(keys) => keys,
            Err(error) => {
                tracing::error!(%error, "scheduler cannot list tenants");
                continue;
            }
        };
        for key in keys {
            if !tenants.holds_lease(&key).await {
                continue;
            }
            let result = async {
                let tenant = tenants.get(&key).await?;
                run_due(&tenant, crate::clock::now()).await
            }
            .await;
            match result {
                Ok(reports) => {
                    for report in reports {
                        tracing::info!(tenant = %key, schedule = %report.schedule, status = report.status, notified = report.notified, "scheduled rule ran");
                    }
                }
                Err(error) => tracing::error!(tenant = %key, %error, "scheduler failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn china(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        crate::clock::offset()
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn weekday_mornings_in_china_time() {
        let cron = parse_cron("0 9 * * 1-5").unwrap();
        // Friday 2026-11-20 08:00 China time, last run the day before.
        let last = china(2026, 11, 19, 9, 0);
        assert_eq!(due_slot(&cron, last, china(2026, 11, 20, 8, 59)), None);
        assert_eq!(
            due_slot(&cron, last, china(2026, 11, 20, 9, 0)),
            Some(china(2026, 11, 20, 9, 0))
        );
        // Down over the weekend: Monday's slot runs once, the missed ones do not pile up.
        let monday = china(2026, 11, 23, 10, 30);
        assert_eq!(
            due_slot(&cron, china(2026, 11, 20, 9, 0), monday),
            Some(china(2026, 11, 23, 9, 0))
        );
        assert_eq!(due_slot(&cron, china(2026, 11, 23, 9, 0), monday), None);
    }

    #[test]
    fn the_first_of_the_month() {
        let cron = parse_cron("0 9 1 * *").unwrap();
        assert_eq!(
            due_slot(&cron, china(2026, 11, 1, 9, 0), china(2026, 12, 1, 9, 5)),
            Some(china(2026, 12, 1, 9, 0))
        );
    }

    #[test]
    fn bad_patterns_say_what_is_wrong() {
        assert!(parse_cron("0 9 * *").unwrap_err().contains("five fields"));
        assert!(parse_cron("0 25 * * *").is_err());
        assert!(parse_cron("every day").is_err());
    }
}
