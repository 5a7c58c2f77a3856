//! The audit trail and the outbox, written in the transaction of the record write they
//! describe so that neither can miss or invent a change.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::{Map, Value, json};

use crate::error::Result;
use crate::store::db::TenantDb;
use crate::store::value::format_datetime;

/// Writes the audit row (who changed which fields from what to what) and the outbox
/// row (the record as it now is, for the search indexer and webhooks).
#[allow(clippy::too_many_arguments)]
pub async fn record_write(
    txn: &DatabaseTransaction,
    db: &TenantDb,
    entity: &str,
    record_id: i64,
    action: &str,
    user_id: i64,
    changes: &BTreeMap<String, (Value, Value)>,
    record: &Value,
) -> Result<()> {
    let now = crate::clock::now();
    let changes: Map<String, Value> = changes
        .iter()
        .map(|(field, (old, new))| (field.clone(), json!([old, new])))
        .collect();
    let audit = Query::insert()
        .into_table(db.table("audit_log"))
        .columns(["entity", "record_id", "action", "user_id", "at", "changes"].map(Alias::new))
        .values_panic([
            entity.into(),
            record_id.into(),
            action.into(),
            user_id.into(),
            now.into(),
            Value::Object(changes).to_string().into(),
        ])
        .to_owned();
    txn.execute(&audit).await?;
    outbox(txn, db, entity, record_id, action, record).await
}

/// Writes an outbox row (the record as it now is) for `op`: record writes through
/// [`record_write`], approval verdicts directly.
pub async fn outbox(
    txn: &DatabaseTransaction,
    db: &TenantDb,
    entity: &str,
    record_id: i64,
    op: &str,
    record: &Value,
) -> Result<()> {
    if let Some(schema) = db.schema() {
        // Outbox ids must become visible in order, or the indexer's cursor could pass
        // an id whose transaction commits later and skip it for good. Holding this
        // lock from taking the id to the commit makes commits follow id order.
        // (SQLite serializes writers already.)
        txn.execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock(7461003, hashtext('{schema}'))"
        ))
        .await?;
    }
    let outbox = Query::insert()
        .into_table(db.table("outbox"))
        .columns(["entity", "record_id", "op", "payload", "created_at"].map(Alias::new))
        .values_panic([
            entity.into(),
            record_id.into(),
            op.into(),
            record.to_string().into(),
            crate::clock::now().into(),
        ])
        .to_owned();
    txn.execute(&outbox).await?;
    Ok(())
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
    let now = crate::clock::now();
    let close = Query::update()
        .table(db.table("stage_history"))
        .value(Alias::new("left_at"), now)
        .and_where(Expr::col(Alias::new("entity")).eq(entity))
        .and_where(Expr::col(Alias::new("record_id")).eq(record_id))
        .and_where(Expr::col(Alias::new("left_at")).is_null())
        .to_owned();
    txn.execute(&close).await?;
    let open = Query::insert()
        .into_table(db.table("stage_history"))
        .columns(["entity", "record_id", "stage", "entered_at", "entered_by"].map(Alias::new))
        .values_panic([
            entity.into(),
            record_id.into(),
            stage.into(),
            now.into(),
            user_id.into(),
        ])
        .to_owned();
    txn.execute(&open).await?;
    Ok(())
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
