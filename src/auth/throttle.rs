//! Login throttling: after repeated failures a username (per tenant) or a client
//! address is blocked for a while, correct password or not, and the login answers
//! 429 with `Retry-After`. Counts live in the platform namespace so all nodes agree;
//! unknown usernames are counted like known ones, so throttling reveals nothing.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, TransactionTrait};

use crate::error::{Error, Result};
use crate::store::db::{Platform, query_first};

/// Failures counted within one window.
const WINDOW_MINUTES: i64 = 15;
/// How long a key stays blocked once over its limit.
const BLOCK_MINUTES: i64 = 15;
/// Failures allowed per username before it is blocked.
pub const USER_LIMIT: i32 = 5;
/// Failures allowed per client address (many usernames from one place).
pub const ADDRESS_LIMIT: i32 = 20;

/// A throttled thing: a tenant's username or a client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    name: String,
    limit: i32,
}

impl Key {
    pub fn user(tenant: &str, username: &str) -> Key {
        Key {
            name: format!("user:{tenant}:{}", username.to_lowercase()),
            limit: USER_LIMIT,
        }
    }

    /// A client address, per tenant: one company's office behind a shared address
    /// cannot lock another company out.
    pub fn address(tenant: &str, address: &str) -> Key {
        Key {
            name: format!("addr:{tenant}:{address}"),
            limit: ADDRESS_LIMIT,
        }
    }
}

const TABLE: &str = "login_throttle";

async fn blocked_until(platform: &Platform, key: &Key) -> Result<Option<DateTime<Utc>>> {
    let select = Query::select()
        .column(Alias::new("blocked_until"))
        .from(Alias::new(TABLE))
        .and_where(Expr::col(Alias::new("key")).eq(key.name.as_str()))
        .to_owned();
    Ok(match query_first(platform.system(), &select).await? {
        Some(row) => row.try_get("", "blocked_until")?,
        None => None,
    })
}

/// Refuses with 429 while any of the keys is blocked.
pub async fn check(platform: &Platform, keys: &[Key]) -> Result<()> {
    let now = Utc::now();
    for key in keys {
        if let Some(until) = blocked_until(platform, key).await?
            && until > now
        {
            return Err(Error::TooManyRequests {
                retry_after_secs: Ord::max((until - now).num_seconds(), 1) as u64,
            });
        }
    }
    Ok(())
}

/// Counts a failed login against each key, blocking those that reach their limit.
pub async fn record_failure(platform: &Platform, keys: &[Key]) -> Result<()> {
    let now = Utc::now();
    let txn = platform.system().begin().await?;
    for key in keys {
        let select = Query::select()
            .columns(["failures", "window_start"].map(Alias::new))
            .from(Alias::new(TABLE))
            .and_where(Expr::col(Alias::new("key")).eq(key.name.as_str()))
            .to_owned();
        let (failures, window_start) = match query_first(&txn, &select).await? {
            Some(row) => {
                let failures: i32 = row.try_get("", "failures")?;
                let start: DateTime<Utc> = row.try_get("", "window_start")?;
                if now - start > Duration::minutes(WINDOW_MINUTES) {
                    (1, now)
                } else {
                    (failures + 1, start)
                }
            }
            None => (1, now),
        };
        let blocked = (failures >= key.limit).then(|| now + Duration::minutes(BLOCK_MINUTES));
        let upsert = Query::insert()
            .into_table(Alias::new(TABLE))
            .columns(["key", "failures", "window_start", "blocked_until"].map(Alias::new))
            .values_panic([
                key.name.as_str().into(),
                failures.into(),
                window_start.into(),
                blocked.into(),
            ])
            .on_conflict(
                OnConflict::column(Alias::new("key"))
                    .update_columns(["failures", "window_start", "blocked_until"].map(Alias::new))
                    .to_owned(),
            )
            .to_owned();
        txn.execute(&upsert).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// A successful login clears the username's count (not the address's).
pub async fn clear(platform: &Platform, key: &Key) -> Result<()> {
    let delete = Query::delete()
        .from_table(Alias::new(TABLE))
        .and_where(Expr::col(Alias::new("key")).eq(key.name.as_str()))
        .to_owned();
    platform.system().execute(&delete).await?;
    Ok(())
}
