//! Bearer-token sessions, kept in the platform namespace: the token names the tenant,
//! so the tenant namespace is chosen from the authenticated session in one place.
//! Tokens are 256 random bits; only their SHA-256 is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::store::db::Platform;
use crate::store::db::query_first;

/// How long a session lasts after login.
pub const LIFETIME_HOURS: i64 = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub tenant: String,
    pub user_id: i64,
    pub expires_at: DateTime<Utc>,
}

fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts a session and returns its token.
pub async fn start(
    platform: &Platform,
    tenant: &str,
    user_id: i64,
) -> Result<(String, DateTime<Utc>)> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let now = Utc::now();
    let expires_at = now + Duration::hours(LIFETIME_HOURS);
    let insert = Query::insert()
        .into_table(Alias::new("sessions"))
        .columns(
            [
                "token_hash",
                "tenant",
                "user_id",
                "created_at",
                "expires_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            token_hash(&token).into(),
            tenant.into(),
            user_id.into(),
            now.into(),
            expires_at.into(),
        ])
        .to_owned();
    platform.system().execute(&insert).await?;
    Ok((token, expires_at))
}

/// The live session of a token, if any. The lookup is by hash, so comparing the
/// secret itself never happens in variable time.
pub async fn resolve(platform: &Platform, token: &str) -> Result<Option<Session>> {
    let select = Query::select()
        .columns(["tenant", "user_id", "expires_at"].map(Alias::new))
        .from(Alias::new("sessions"))
        .and_where(Expr::col(Alias::new("token_hash")).eq(token_hash(token)))
        .to_owned();
    let Some(row) = query_first(platform.system(), &select).await? else {
        return Ok(None);
    };
    let session = Session {
        tenant: row.try_get("", "tenant")?,
        user_id: row.try_get("", "user_id")?,
        expires_at: row.try_get("", "expires_at")?,
    };
    Ok((session.expires_at > Utc::now()).then_some(session))
}

pub async fn end(platform: &Platform, token: &str) -> Result<()> {
    let delete = Query::delete()
        .from_table(Alias::new("sessions"))
        .and_where(Expr::col(Alias::new("token_hash")).eq(token_hash(token)))
        .to_owned();
    platform.system().execute(&delete).await?;
    Ok(())
}

/// Ends every session of a user (disabled, password reset).
pub async fn end_all_for_user(platform: &Platform, tenant: &str, user_id: i64) -> Result<()> {
    let delete = Query::delete()
        .from_table(Alias::new("sessions"))
        .and_where(Expr::col(Alias::new("tenant")).eq(tenant))
        .and_where(Expr::col(Alias::new("user_id")).eq(user_id))
        .to_owned();
    platform.system().execute(&delete).await?;
    Ok(())
}
