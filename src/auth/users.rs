//! A tenant's users (stored in the tenant's own namespace). A user's roles are the
//! Casbin `g` lines of the tenant's policy (`g, user:<id>, role:<key>, <tenant>`), so
//! the enforcer and this module read the same rows.

use std::collections::{BTreeSet, HashMap};

use chrono::Utc;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, QueryResult};
use serde::{Deserialize, Serialize};

use crate::auth::casbin_adapter::{delete_rules, insert_rules, load_rules};
use crate::auth::org::double_option;
use crate::auth::password;
use crate::auth::policy::{Policy, role_subject, user_subject};
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
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    pub password: String,
    #[serde(default)]
    pub is_admin: bool,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub department: Option<i64>,
}

/// A change to a user; absent keys stay as they are, `department: null` clears it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    #[serde(default, with = "double_option")]
    pub department: Option<Option<i64>>,
    #[serde(default)]
    pub is_admin: Option<bool>,
    #[serde(default)]
    pub active: Option<bool>,
    /// A new password, set by an administrator.
    #[serde(default)]
    pub password: Option<String>,
}

impl UserPatch {
    /// Whether the user's sessions must end: disabled, or password reset.
    pub fn ends_sessions(&self) -> bool {
        self.active == Some(false) || self.password.is_some()
    }
}

const COLUMNS: [&str; 6] = [
    "id",
    "username",
    "display_name",
    "is_admin",
    "active",
    "department",
];

fn select(db: &TenantDb) -> SelectStatement {
    Query::select()
        .columns(COLUMNS.map(Alias::new))
        .from(db.table("users"))
        .to_owned()
}

fn decode(row: &QueryResult, roles: &HashMap<i64, Vec<String>>) -> Result<User> {
    let id: i64 = row.try_get("", "id")?;
    Ok(User {
        id,
        username: row.try_get("", "username")?,
        display_name: row.try_get("", "display_name")?,
        roles: roles.get(&id).cloned().unwrap_or_default(),
        department: row.try_get("", "department")?,
        is_admin: row.try_get("", "is_admin")?,
        active: row.try_get("", "active")?,
    })
}

/// Role keys by user, from the `g` lines: every user's, or one user's (a request
/// resolving its user reads only that user's lines).
async fn roles_by_user(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    only: Option<i64>,
) -> Result<HashMap<i64, Vec<String>>> {
    let subject = only.map(user_subject);
    let filter = subject.as_deref().map(|s| ("g", s));
    let mut roles: HashMap<i64, Vec<String>> = HashMap::new();
    for (ptype, values) in load_rules(conn, db, filter).await? {
        if ptype != "g" {
            continue;
        }
        let (Some(user), Some(role)) = (
            values.first().and_then(|s| s.strip_prefix("user:")),
            values.get(1).and_then(|s| s.strip_prefix("role:")),
        ) else {
            continue;
        };
        if let Ok(id) = user.parse() {
            roles.entry(id).or_default().push(role.to_string());
        }
    }
    for list in roles.values_mut() {
        list.sort();
    }
    Ok(roles)
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

/// Role keys must name roles of the published metadata.
fn check_roles(roles: &[String], known: &BTreeSet<String>) -> Result<Vec<String>> {
    let unknown: Vec<&str> = roles
        .iter()
        .filter(|r| !known.contains(*r))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let known = known.iter().cloned().collect::<Vec<_>>().join(", ");
        return Err(Error::field(
            "roles",
            format!(
                "unknown role(s) {}; the metadata defines: {}",
                unknown.join(", "),
                if known.is_empty() { "none" } else { &known }
            ),
        ));
    }
    let unique: BTreeSet<String> = roles.iter().cloned().collect();
    Ok(unique.into_iter().collect())
}

async fn check_department(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    department: Option<i64>,
) -> Result<()> {
    let Some(department) = department else {
        return Ok(());
    };
    let select = Query::select()
        .column(Alias::new("id"))
        .from(db.table("departments"))
        .and_where(Expr::col(Alias::new("id")).eq(department))
        .to_owned();
    match query_first(conn, &select).await? {
        Some(_) => Ok(()),
        None => Err(Error::field(
            "department",
            format!("department {department} does not exist"),
        )),
    }
}

async fn set_roles(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    user_id: i64,
    roles: &[String],
) -> Result<()> {
    let subject = user_subject(user_id);
    delete_rules(conn, db, "g", 0, std::slice::from_ref(&subject)).await?;
    let lines: Vec<Vec<String>> = roles
        .iter()
        .map(|role| vec![subject.clone(), role_subject(role), db.key.clone()])
        .collect();
    insert_rules(conn, db, "g", &lines).await?;
    Ok(())
}

/// Creates a user with their roles, in one transaction.
pub async fn create(db: &TenantDb, new: &NewUser, known_roles: &BTreeSet<String>) -> Result<User> {
    check_username(&new.username)?;
    let roles = check_roles(&new.roles, known_roles)?;
    let hash = password::hash(&new.password)?;
    let txn = db.begin_write().await?;
    check_department(&txn, db, new.department).await?;
    let taken = select(db)
        .and_where(Expr::col(Alias::new("username")).eq(new.username.as_str()))
        .to_owned();
    if query_first(&txn, &taken).await?.is_some() {
        return Err(Error::Conflict(format!(
            "username {:?} is already taken",
            new.username
        )));
    }
    let display_name = match new.display_name.trim() {
        "" => new.username.as_str(),
        name => name,
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
                "department",
                "created_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            new.username.as_str().into(),
            display_name.into(),
            hash.into(),
            new.is_admin.into(),
            true.into(),
            new.department.into(),
            Utc::now().into(),
        ])
        .returning_col(Alias::new("id"))
        .to_owned();
    let row = query_first(&txn, &insert)
        .await?
        .ok_or_else(|| Error::Internal("insert returned no id".into()))?;
    let id: i64 = row.try_get("", "id")?;
    set_roles(&txn, db, id, &roles).await?;
    txn.commit().await?;
    get(db, id).await
}

/// Applies a patch in one transaction. Ending sessions and reloading the policy are
/// the caller's (`Tenant::update_user`), which owns both.
pub async fn update(
    db: &TenantDb,
    id: i64,
    patch: &UserPatch,
    known_roles: &BTreeSet<String>,
) -> Result<User> {
    let roles = patch
        .roles
        .as_ref()
        .map(|roles| check_roles(roles, known_roles))
        .transpose()?;
    let hash = patch.password.as_deref().map(password::hash).transpose()?;
    let txn = db.begin_write().await?;
    let exists = select(db)
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .to_owned();
    if query_first(&txn, &exists).await?.is_none() {
        return Err(Error::not_found(format!("user {id}")));
    }
    let mut update = Query::update();
    update
        .table(db.table("users"))
        .and_where(Expr::col(Alias::new("id")).eq(id));
    let mut changed = false;
    let mut set = |column: &str, value: sea_orm::sea_query::Value| {
        update.value(Alias::new(column), value);
        changed = true;
    };
    if let Some(name) = &patch.display_name {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::field("display_name", "must not be empty"));
        }
        set("display_name", name.into());
    }
    if let Some(department) = patch.department {
        check_department(&txn, db, department).await?;
        set("department", department.into());
    }
    if let Some(is_admin) = patch.is_admin {
        set("is_admin", is_admin.into());
    }
    if let Some(active) = patch.active {
        set("active", active.into());
    }
    if let Some(hash) = hash {
        set("password_hash", hash.into());
    }
    if changed {
        txn.execute(&update).await?;
    }
    if let Some(roles) = &roles {
        set_roles(&txn, db, id, roles).await?;
    }
    txn.commit().await?;
    get(db, id).await
}

pub async fn get(db: &TenantDb, id: i64) -> Result<User> {
    let conn = db.conn();
    let row = get_row(&conn, db, id).await?;
    decode(&row, &roles_by_user(&conn, db, Some(id)).await?)
}

/// A user with the roles the tenant's loaded `policy` gives them, in one query: how a
/// request resolves its user (the policy is what its permission decisions read, and
/// it is swapped whenever role assignments change, on any node).
pub async fn get_with_policy_roles(db: &TenantDb, policy: &Policy, id: i64) -> Result<User> {
    let row = get_row(&db.conn(), db, id).await?;
    decode(&row, &HashMap::from([(id, policy.roles_of(id))]))
}

async fn get_row(conn: &impl ConnectionTrait, db: &TenantDb, id: i64) -> Result<QueryResult> {
    let query = select(db)
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .to_owned();
    query_first(conn, &query)
        .await?
        .ok_or_else(|| Error::not_found(format!("user {id}")))
}

pub async fn find_by_username(db: &TenantDb, username: &str) -> Result<Option<User>> {
    let conn = db.conn();
    let query = select(db)
        .and_where(Expr::col(Alias::new("username")).eq(username))
        .to_owned();
    match query_first(&conn, &query).await? {
        Some(row) => {
            let id: i64 = row.try_get("", "id")?;
            Ok(Some(decode(
                &row,
                &roles_by_user(&conn, db, Some(id)).await?,
            )?))
        }
        None => Ok(None),
    }
}

pub async fn list(db: &TenantDb) -> Result<Vec<User>> {
    let conn = db.conn();
    let query = select(db).order_by(Alias::new("id"), Order::Asc).to_owned();
    let roles = roles_by_user(&conn, db, None).await?;
    conn.query_all(&query)
        .await?
        .iter()
        .map(|row| decode(row, &roles))
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
