//! Record locks: a record under a pending approval refuses user edits. The workflow
//! takes and releases locks; the record write path checks them in its transaction.

use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};

use crate::error::{Error, Result};
use crate::store::db::{TenantDb, query_first};

const TABLE: &str = "record_locks";

pub async fn lock(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    entity: &str,
    record_id: i64,
    reason: &str,
) -> Result<()> {
    if let Some(existing) = reason_for(conn, db, entity, record_id).await? {
        return Err(Error::Conflict(format!(
            "{entity} record {record_id} is locked: {existing}"
        )));
    }
    let insert = Query::insert()
        .into_table(db.table(TABLE))
        .columns(["entity", "record_id", "reason", "locked_at"].map(Alias::new))
        .values_panic([
            entity.into(),
            record_id.into(),
            reason.into(),
            Utc::now().into(),
        ])
        .to_owned();
    conn.execute(&insert).await?;
    Ok(())
}

pub async fn unlock(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    entity: &str,
    record_id: i64,
) -> Result<()> {
    let delete = Query::delete()
        .from_table(db.table(TABLE))
        .and_where(Expr::col(Alias::new("entity")).eq(entity))
        .and_where(Expr::col(Alias::new("record_id")).eq(record_id))
        .to_owned();
    conn.execute(&delete).await?;
    Ok(())
}

/// Why a record is locked, if it is.
pub async fn reason_for(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    entity: &str,
    record_id: i64,
) -> Result<Option<String>> {
    let select = Query::select()
        .column(Alias::new("reason"))
        .from(db.table(TABLE))
        .and_where(Expr::col(Alias::new("entity")).eq(entity))
        .and_where(Expr::col(Alias::new("record_id")).eq(record_id))
        .to_owned();
    Ok(match query_first(conn, &select).await? {
        Some(row) => Some(row.try_get("", "reason")?),
        None => None,
    })
}

/// 409 naming the reason when the record is locked.
pub async fn ensure_unlocked(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    entity: &str,
    record_id: i64,
) -> Result<()> {
    match reason_for(conn, db, entity, record_id).await? {
        Some(reason) => Err(Error::Conflict(format!(
            "{entity} record {record_id} is locked while {reason}; it can be changed again once that ends"
        ))),
        None => Ok(()),
    }
}
