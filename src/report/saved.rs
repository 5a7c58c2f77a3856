//! Reports saved from the report builder: a definition like the package's, owned by
//! the person who saved it and shared with the roles it names. Saving one is not a
//! metadata publish, so a manager needs no designer rights to keep a report.

use chrono::Utc;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, SqlErr};

use crate::error::{Error, Result};
use crate::meta::Report;
use crate::store::db::TenantDb;

const TABLE: &str = "saved_reports";

#[derive(Debug, Clone)]
pub struct SavedReport {
    pub report: Report,
    pub owner: i64,
}

fn decode(row: &sea_orm::QueryResult) -> Result<SavedReport> {
    let definition: String = row.try_get("", "definition")?;
    let report = serde_json::from_str(&definition)
        .map_err(|e| Error::Internal(format!("a saved report does not parse: {e}")))?;
    Ok(SavedReport {
        report,
        owner: row.try_get("", "owner")?,
    })
}

fn definition(report: &Report) -> String {
    serde_json::to_string(report).expect("reports serialize")
}

pub async fn list(db: &TenantDb) -> Result<Vec<SavedReport>> {
    let select = Query::select()
        .columns([Alias::new("owner"), Alias::new("definition")])
        .from(db.table(TABLE))
        .order_by(Alias::new("key"), sea_orm::sea_query::Order::Asc)
        .to_owned();
    db.conn()
        .query_all(&select)
        .await?
        .iter()
        .map(decode)
        .collect()
}

pub async fn get(db: &TenantDb, key: &str) -> Result<Option<SavedReport>> {
    let select = Query::select()
        .columns([Alias::new("owner"), Alias::new("definition")])
        .from(db.table(TABLE))
        .and_where(Expr::col(Alias::new("key")).eq(key))
        .to_owned();
    crate::store::db::query_first(&db.conn(), &select)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// Saves a new report; 409 when the key is taken.
pub async fn insert(db: &TenantDb, report: &Report, owner: i64) -> Result<()> {
    let now = Utc::now();
    let insert = Query::insert()
        .into_table(db.table(TABLE))
        .columns(["key", "owner", "definition", "created_at", "updated_at"].map(Alias::new))
        .values_panic([
            report.key.clone().into(),
            owner.into(),
            definition(report).into(),
            now.into(),
            now.into(),
        ])
        .to_owned();
    match db.conn().execute(&insert).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Err(
            Error::Conflict(format!("a report with the key {:?} exists", report.key)),
        ),
        Err(e) => Err(e.into()),
    }
}

pub async fn update(db: &TenantDb, report: &Report) -> Result<()> {
    let update = Query::update()
        .table(db.table(TABLE))
        .value(Alias::new("definition"), definition(report))
        .value(Alias::new("updated_at"), Utc::now())
        .and_where(Expr::col(Alias::new("key")).eq(report.key.as_str()))
        .to_owned();
    db.conn().execute(&update).await?;
    Ok(())
}

pub async fn delete(db: &TenantDb, key: &str) -> Result<()> {
    let delete = Query::delete()
        .from_table(db.table(TABLE))
        .and_where(Expr::col(Alias::new("key")).eq(key))
        .to_owned();
    db.conn().execute(&delete).await?;
    Ok(())
}
