//! Saved list views (已保存视图): a user's named filters, columns and sort of one
//! entity's list, kept as the list page's query string. They are personal; what a
//! view shows is whatever its owner may read when it is opened, so a view grants
//! nothing.

use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::store::db::{TenantDb, query_first};
use crate::store::value::format_datetime;

const TABLE: &str = "saved_views";
/// Longest view name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest stored query string, in bytes.
pub const MAX_QUERY: usize = 4000;
/// Most views one user keeps per entity.
pub const MAX_VIEWS: usize = 50;

/// The user's views of `entity`, by name: `[{id, name, query, created_at}]`.
pub async fn list(db: &TenantDb, owner: i64, entity: &str) -> Result<Vec<Value>> {
    let select = Query::select()
        .columns(["id", "name", "query", "created_at"].map(Alias::new))
        .from(db.table(TABLE))
        .and_where(Expr::col(Alias::new("owner")).eq(owner))
        .and_where(Expr::col(Alias::new("entity")).eq(entity))
        .order_by(Alias::new("name"), Order::Asc)
        .to_owned();
    db.conn()
        .query_all(&select)
        .await?
        .iter()
        .map(|row| {
            Ok(json!({
                "id": row.try_get::<i64>("", "id")?,
                "name": row.try_get::<String>("", "name")?,
                "query": row.try_get::<String>("", "query")?,
                "created_at": format_datetime(row.try_get("", "created_at")?),
            }))
        })
        .collect()
}

/// Saves a view; a name the user already has for this entity is replaced.
pub async fn save(
    db: &TenantDb,
    owner: i64,
    entity: &str,
    name: &str,
    query: &str,
) -> Result<Value> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(Error::field(
            "name",
            format!("give a name of 1 to {MAX_NAME} characters"),
        ));
    }
    if query.len() > MAX_QUERY {
        return Err(Error::field("query", format!("at most {MAX_QUERY} bytes")));
    }
    let existing = list(db, owner, entity).await?;
    let replaces = existing.iter().any(|v| v["name"] == name);
    if !replaces && existing.len() >= MAX_VIEWS {
        return Err(Error::Conflict(format!(
            "you already keep {MAX_VIEWS} views of {entity}; delete one first"
        )));
    }
    let txn = db.begin_write().await?;
    let same_name = Query::delete()
        .from_table(db.table(TABLE))
        .and_where(Expr::col(Alias::new("owner")).eq(owner))
        .and_where(Expr::col(Alias::new("entity")).eq(entity))
        .and_where(Expr::col(Alias::new("name")).eq(name))
        .to_owned();
    txn.execute(&same_name).await?;
    let now = Utc::now();
    let insert = Query::insert()
        .into_table(db.table(TABLE))
        .columns(["owner", "entity", "name", "query", "created_at"].map(Alias::new))
        .values_panic([
            owner.into(),
            entity.into(),
            name.into(),
            query.into(),
            now.into(),
        ])
        .returning_col(Alias::new("id"))
        .to_owned();
    let row = query_first(&txn, &insert)
        .await?
        .ok_or_else(|| Error::Internal("insert returned no id".into()))?;
    let id: i64 = row.try_get("", "id")?;
    txn.commit().await?;
    Ok(json!({"id": id, "name": name, "query": query, "created_at": format_datetime(now)}))
}

/// Deletes one of the user's views (404 for anyone else's).
pub async fn remove(db: &TenantDb, owner: i64, entity: &str, id: i64) -> Result<()> {
    let delete = Query::delete()
        .from_table(db.table(TABLE))
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .and_where(Expr::col(Alias::new("owner")).eq(owner))
        .and_where(Expr::col(Alias::new("entity")).eq(entity))
        .to_owned();
    let done = db.conn().execute(&delete).await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found(format!("view {id}")));
    }
    Ok(())
}
