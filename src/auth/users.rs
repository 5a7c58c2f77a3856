//! A tenant's users (stored in the tenant's own namespace).

use chrono::Utc;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, QueryResult};
use serde::Serialize;

use crate::auth::password;
use crate::error::{Error, Result};
use crate::store::db::TenantDb;
use crate::store::db::query_first;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    /// Role keys from the tenant's metadata.
    pub roles: Vec<String>,
    /// Department id, if the user belongs to one.
    pub department: Option<i64>,
    pub is_admin: bool,
    pub active: bool,
}

/// What creating a user takes.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub password: &'a str,
    pub is_admin: bool,
}

const COLUMNS: [&str; 5] = ["id", "username", "display_name", "is_admin", "active"];

fn select(db: &TenantDb) -> SelectStatement {
    Query::select()
        .columns(COLUMNS.map(Alias::new))
        .from(db.table("users"))
        .to_owned()
}

fn decode(row: &QueryResult) -> Result<User> {
    Ok(User {
        id: row.try_get("", "id")?,
        username: row.try_get("", "username")?,
        display_name: row.try_get("", "display_name")?,
        roles: Vec::new(),
        department: None,
        is_admin: row.try_get("", "is_admin")?,
        active: row.try_get("", "active")?,
    })
}

/// Usernames follow the identifier rule loosely: letters, digits, `.`, `_`, `-`, `@`.
fn check_username(username: &str) -> Result<()> {
    let valid = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if valid {
        Ok(())
    } else {
        Err(Error::field(
            "username",
            "use 1–64 letters, digits, '.', '_', '-' or '@'",
        ))
    }
}

pub async fn create(db: &TenantDb, new: &NewUser<'_>) -> Result<User> {
    check_username(new.username)?;
    let hash = password::hash(new.password)?;
    if find_by_username(db, new.username).await?.is_some() {
        return Err(Error::Conflict(format!(
            "username {:?} is already taken",
            new.username
        )));
    }
    let display_name = if new.display_name.trim().is_empty() {
        new.username
    } else {
        new.display_name
    };
    let insert = Query::insert()
        .into_table(db.table("users"))
        .columns(
            [
                "username",
                "display_name",
                "password_hash",
                "is_admin",
                "active",
                "created_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            new.username.into(),
            display_name.into(),
            hash.into(),
            new.is_admin.into(),
            true.into(),
            Utc::now().into(),
        ])
        .returning_col(Alias::new("id"))
        .to_owned();
    let row = query_first(&db.conn(), &insert)
        .await?
        .ok_or_else(|| Error::Internal("insert returned no id".into()))?;
    get(db, row.try_get("", "id")?).await
}

pub async fn get(db: &TenantDb, id: i64) -> Result<User> {
    let query = select(db)
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .to_owned();
    match query_first(&db.conn(), &query).await? {
        Some(row) => decode(&row),
        None => Err(Error::not_found(format!("user {id}"))),
    }
}

pub async fn find_by_username(db: &TenantDb, username: &str) -> Result<Option<User>> {
    let query = select(db)
        .and_where(Expr::col(Alias::new("username")).eq(username))
        .to_owned();
    query_first(&db.conn(), &query)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

pub async fn list(db: &TenantDb) -> Result<Vec<User>> {
    let query = select(db).order_by(Alias::new("id"), Order::Asc).to_owned();
    db.conn()
        .query_all(&query)
        .await?
        .iter()
        .map(decode)
        .collect()
}

/// The user with this username if the password matches; `None` otherwise, taking the
/// same time whether or not the username exists.
pub async fn authenticate(db: &TenantDb, username: &str, password: &str) -> Result<Option<User>> {
    let query = Query::select()
        .columns(["id", "password_hash", "active"].map(Alias::new))
        .from(db.table("users"))
        .and_where(Expr::col(Alias::new("username")).eq(username))
        .to_owned();
    let row = query_first(&db.conn(), &query).await?;
    let (id, hash, active) = match &row {
        Some(row) => (
            row.try_get::<i64>("", "id")?,
            row.try_get::<String>("", "password_hash")?,
            row.try_get::<bool>("", "active")?,
        ),
        None => (0, password::decoy_hash().to_string(), false),
    };
    let password = password.to_string();
    let matches = tokio::task::spawn_blocking(move || password::verify(&password, &hash))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    if matches && active && row.is_some() {
        Ok(Some(get(db, id).await?))
    } else {
        Ok(None)
    }
}
