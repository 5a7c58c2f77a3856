//! The audit trail and the outbox, written in the transaction of the record write they
//! describe so that neither can miss or invent a change.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, InsertStatement, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::store::db::{TenantDb, execute_together};
use crate::store::records::Changes;
use crate::store::value::format_datetime;

/// Rows per statement when a batch of writes is journaled (6 values per audit row:
/// well inside SQLite's and PostgreSQL's limits on bound values).
const ROWS_PER_STATEMENT: usize = 1000;

/// One record write, as the audit trail and the outbox hear of it.
pub struct Write<'a> {
    pub record_id: i64,
    pub changes: &'a Changes<'a>,
    /// The record as it now is.
    pub record: &'a Value,
}

/// Journal rows built before they are written: a batch of new records builds its
/// journal while the database inserts the records.
#[derive(Default)]
pub struct Entries {
    /// Audit and stage-history rows.
    rows: Vec<InsertStatement>,
    /// Outbox rows, written last, under the outbox lock.
    outbox: Vec<InsertStatement>,
}

impl Entries {
    /// The audit rows (who changed which fields from what to what) and outbox rows
    /// (the record as it now is, for the search indexer and webhooks) of writes of
    /// one entity by one user, a few rows per statement.
    pub fn of_writes(
        db: &TenantDb,
        entity: &str,
        action: &str,
        user_id: i64,
        writes: &[Write<'_>],
    ) -> Result<Entries> {
        let now = crate::clock::now();
        let mut rows = Vec::new();
        for chunk in writes.chunks(ROWS_PER_STATEMENT) {
            let mut audit = Query::insert();
            audit.into_table(db.table("audit_log")).columns(
                ["entity", "record_id", "action", "user_id", "at", "changes"].map(Alias::new),
            );
            for write in chunk {
                // `{"field": [old, new], …}`
                let changes = serde_json::to_string(write.changes)
                    .map_err(|e| Error::Internal(format!("audit changes: {e}")))?;
                audit.values_panic([
                    entity.into(),
                    write.record_id.into(),
                    action.into(),
                    user_id.into(),
                    now.into(),
                    changes.into(),
                ]);
            }
            rows.push(audit);
        }
        let records: Vec<(i64, &Value)> = writes.iter().map(|w| (w.record_id, w.record)).collect();
        Ok(Entries {
            rows,
            outbox: Entries::of_outbox(db, entity, action, &records).outbox,
        })
    }

    /// An outbox row (the record as it now is) per `(record id, record)` for `op`:
    /// record writes through [`Entries::of_writes`], approval verdicts directly.
    pub fn of_outbox(db: &TenantDb, entity: &str, op: &str, records: &[(i64, &Value)]) -> Entries {
        let now = crate::clock::now();
        let outbox = records
            .chunks(ROWS_PER_STATEMENT)
            .map(|chunk| {
                let mut outbox = Query::insert();
                outbox.into_table(db.table("outbox")).columns(
                    ["entity", "record_id", "op", "payload", "created_at"].map(Alias::new),
                );
                for (record_id, record) in chunk {
                    outbox.values_panic([
                        entity.into(),
                        (*record_id).into(),
                        op.into(),
                        record.to_string().into(),
                        now.into(),
                    ]);
                }
                outbox
            })
            .collect();
        Entries {
            rows: Vec::new(),
            outbox,
        }
    }

    /// Adds the stage-history rows of new records, `(record id, first stage)` each:
    /// there is nothing to close.
    pub fn start_stages(
        &mut self,
        db: &TenantDb,
        entity: &str,
        user_id: i64,
        records: &[(i64, &str)],
    ) {
        let now = crate::clock::now();
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            let mut open = Query::insert();
            open.into_table(db.table("stage_history")).columns(
                ["entity", "record_id", "stage", "entered_at", "entered_by"].map(Alias::new),
            );
            for (record_id, stage) in chunk {
                open.values_panic([
                    entity.into(),
                    (*record_id).into(),
                    (*stage).into(),
                    now.into(),
                    user_id.into(),
                ]);
            }
            self.rows.push(open);
        }
    }

    /// Writes the rows inside `txn`, together (one call on SQLite). The outbox rows
    /// come last: on PostgreSQL inserting them takes the tenant's outbox lock until
    /// the commit (a trigger, so that outbox ids become visible in order).
    pub async fn write(self, txn: &DatabaseTransaction) -> Result<()> {
        let backend = txn.get_database_backend();
        let statements = self.rows.iter().chain(&self.outbox);
        execute_together(txn, statements.map(|s| backend.build(s)).collect()).await
    }
}

/// Writes the audit row and the outbox row of one record write.
#[allow(clippy::too_many_arguments)]
pub async fn record_write(
    txn: &DatabaseTransaction,
    db: &TenantDb,
    entity: &str,
    record_id: i64,
    action: &str,
    user_id: i64,
    changes: &Changes<'_>,
    record: &Value,
) -> Result<()> {
    let write = Write {
        record_id,
        changes,
        record,
    };
    Entries::of_writes(db, entity, action, user_id, &[write])?
        .write(txn)
        .await
}

/// A record's audit trail, oldest first, with `hidden` fields left out.
pub async fn history(
    db: &TenantDb,
    entity: &str,
    record_id: i64,
    hidden: &BTreeSet<String>,
) -> Result<Vec<Value>> {
    let select = Query::select()
        .columns(["id", "action", "user_id", "at", "changes"].map(Alias::new))
        .from(db.table("audit_log"))
        .and_where(Expr::col(Alias::new("entity")).eq(entity))
        .and_where(Expr::col(Alias::new("record_id")).eq(record_id))
        .order_by(Alias::new("id"), Order::Asc)
        .to_owned();
    let rows = db.conn().query_all(&select).await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let changes: String = row.try_get("", "changes")?;
        let mut changes: Map<String, Value> = serde_json::from_str(&changes).unwrap_or_default();
        changes.retain(|field, _| !hidden.contains(field));
        let at: DateTime<Utc> = row.try_get("", "at")?;
        entries.push(json!({
            "id": row.try_get::<i64>("", "id")?,
            "action": row.try_get::<String>("", "action")?,
            "user": row.try_get::<Option<i64>>("", "user_id")?,
            "at": format_datetime(at),
            "changes": changes,
        }));
    }
    Ok(entries)
}

/// Closes the record's open stage-history row and opens one for `stage`: the stage
/// history every stage change keeps (entered, left, by whom).
pub async fn enter_stage(
    txn: &DatabaseTransaction,
    db: &TenantDb,
    entity: &str,
    record_id: i64,
    stage: &str,
    user_id: i64,
) -> Result<()> {
    let close = Query::update()
        .table(db.table("stage_history"))
        .value(Alias::new("left_at"), crate::clock::now())
        .and_where(Expr::col(Alias::new("entity")).eq(entity))
        .and_where(Expr::col(Alias::new("record_id")).eq(record_id))
        .and_where(Expr::col(Alias::new("left_at")).is_null())
        .to_owned();
    txn.execute(&close).await?;
    let mut entries = Entries::default();
    entries.start_stages(db, entity, user_id, &[(record_id, stage)]);
    entries.write(txn).await
}

/// A record's stages, oldest first: `{stage, entered_at, left_at, by, seconds}` where
/// `seconds` is the time spent in the stage (so far, for the current one).
pub async fn stage_history(db: &TenantDb, entity: &str, record_id: i64) -> Result<Vec<Value>> {
    let select = Query::select()
        .columns(["stage", "entered_at", "entered_by", "left_at"].map(Alias::new))
        .from(db.table("stage_history"))
        .and_where(Expr::col(Alias::new("entity")).eq(entity))
        .and_where(Expr::col(Alias::new("record_id")).eq(record_id))
        .order_by(Alias::new("id"), Order::Asc)
        .to_owned();
    let now = crate::clock::now();
    db.conn()
        .query_all(&select)
        .await?
        .iter()
        .map(|row| {
            let entered: DateTime<Utc> = row.try_get("", "entered_at")?;
            let left: Option<DateTime<Utc>> = row.try_get("", "left_at")?;
            Ok(json!({
                "stage": row.try_get::<String>("", "stage")?,
                "entered_at": format_datetime(entered),
                "left_at": left.map(format_datetime),
                "by": row.try_get::<Option<i64>>("", "entered_by")?,
                "seconds": (left.unwrap_or(now) - entered).num_seconds(),
            }))
        })
        .collect()
}
