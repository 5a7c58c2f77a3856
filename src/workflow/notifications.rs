//! In-app notifications: what approvers, submitters, copied roles and people a record
//! is shared with find in their inbox. Written in the transaction of what caused them.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde_json::{Value, json};

use crate::error::Result;
use crate::store::db::{TenantDb, query_count};
use crate::store::value::format_datetime;

const TABLE: &str = "notifications";

/// One notification to one user.
#[derive(Debug, Clone, Default)]
pub struct Notice<'a> {
    pub kind: &'a str,
    pub title: String,
    pub body: String,
    pub entity: Option<&'a str>,
    pub record_id: Option<i64>,
    pub approval_id: Option<i64>,
}

/// Sends a notice to each user once.
pub async fn send(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    users: impl IntoIterator<Item = i64>,
    notice: &Notice<'_>,
) -> Result<()> {
    let mut users: Vec<i64> = users.into_iter().collect();
    users.sort_unstable();
    users.dedup();
    if users.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let mut insert = Query::insert();
    insert.into_table(db.table(TABLE)).columns(
        [
            "user_id",
            "kind",
            "title",
            "body",
            "entity",
            "record_id",
            "approval_id",
            "created_at",
        ]
        .map(Alias::new),
    );
    for user in users {
        insert.values_panic([
            user.into(),
            notice.kind.into(),
            notice.title.as_str().into(),
            notice.body.as_str().into(),
            notice.entity.into(),
            notice.record_id.into(),
            notice.approval_id.into(),
            now.into(),
        ]);
    }
    conn.execute(&insert).await?;
    Ok(())
}

/// A user's notifications, newest first, and how many are unread.
pub async fn list(db: &TenantDb, user_id: i64, unread_only: bool, limit: u64) -> Result<Value> {
    let mut select = Query::select();
    select
        .columns(
            [
                "id",
                "kind",
                "title",
                "body",
                "entity",
                "record_id",
                "approval_id",
                "created_at",
                "read_at",
            ]
            .map(Alias::new),
        )
        .from(db.table(TABLE))
        .and_where(Expr::col(Alias::new("user_id")).eq(user_id))
        .order_by(Alias::new("id"), Order::Desc)
        .limit(limit);
    if unread_only {
        select.and_where(Expr::col(Alias::new("read_at")).is_null());
    }
    let conn = db.conn();
    let items = conn
        .query_all(&select)
        .await?
        .iter()
        .map(|row| {
            let created: DateTime<Utc> = row.try_get("", "created_at")?;
            let read: Option<DateTime<Utc>> = row.try_get("", "read_at")?;
            Ok(json!({
                "id": row.try_get::<i64>("", "id")?,
                "kind": row.try_get::<String>("", "kind")?,
                "title": row.try_get::<String>("", "title")?,
                "body": row.try_get::<String>("", "body")?,
                "entity": row.try_get::<Option<String>>("", "entity")?,
                "record": row.try_get::<Option<i64>>("", "record_id")?,
                "approval": row.try_get::<Option<i64>>("", "approval_id")?,
                "created_at": format_datetime(created),
                "read": read.is_some(),
            }))
        })
        .collect::<Result<Vec<Value>>>()?;
    let count = Query::select()
        .expr(Expr::col(Alias::new("id")).count())
        .from(db.table(TABLE))
        .and_where(Expr::col(Alias::new("user_id")).eq(user_id))
        .and_where(Expr::col(Alias::new("read_at")).is_null())
        .to_owned();
    let unread = query_count(&conn, &count).await?;
    Ok(json!({"items": items, "unread": unread}))
}

/// Marks some (or, with `None`, all) of a user's notifications read; returns how many.
pub async fn mark_read(db: &TenantDb, user_id: i64, ids: Option<&[i64]>) -> Result<u64> {
    let mut update = Query::update();
    update
        .table(db.table(TABLE))
        .value(Alias::new("read_at"), Utc::now())
        .and_where(Expr::col(Alias::new("user_id")).eq(user_id))
        .and_where(Expr::col(Alias::new("read_at")).is_null());
    if let Some(ids) = ids {
        update.and_where(Expr::col(Alias::new("id")).is_in(ids.iter().copied()));
    }
    Ok(db.conn().execute(&update).await?.rows_affected())
}
