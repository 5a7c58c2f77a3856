//! Logging in with a password: one function for the API's bearer login and the web's
//! cookie login, so throttling and the timing of refusals are the same on both.

use chrono::{DateTime, Utc};

use crate::auth::{User, password, sessions, throttle, users};
use crate::error::{Error, Result};
use crate::tenant::Tenants;

/// A started session.
pub struct LoggedIn {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

/// Checks the credentials (throttled per user and per client address) and starts a
/// session. Unknown tenant, unknown user, wrong password and disabled user are one
/// and the same 401.
pub async fn login(
    tenants: &Tenants,
    tenant_key: &str,
    username: &str,
    secret: &str,
    client_ip: Option<String>,
) -> Result<LoggedIn> {
    let refused = || Error::Unauthorized("wrong tenant, username or password".into());
    let user_key = throttle::Key::user(tenant_key, username);
    let mut keys = vec![user_key.clone()];
    if let Some(ip) = client_ip {
        keys.push(throttle::Key::address(tenant_key, &ip));
    }
    throttle::check(&tenants.platform, &keys).await?;
    let found = match tenants.get(tenant_key).await {
        Ok(tenant) => users::authenticate(&tenant.db, username, secret)
            .await?
            .map(|user| (tenant, user)),
        Err(Error::NotFound(_)) => {
            // Spend the time a password check takes so tenants cannot be probed by timing.
            let secret = secret.to_string();
            tokio::task::spawn_blocking(move || password::verify(&secret, password::decoy_hash()))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
            None
        }
        Err(e) => return Err(e),
    };
    let Some((tenant, user)) = found else {
        throttle::record_failure(&tenants.platform, &keys).await?;
        return Err(refused());
    };
    throttle::clear(&tenants.platform, &user_key).await?;
    let (token, expires_at) = sessions::start(&tenants.platform, &tenant.key, user.id).await?;
    Ok(LoggedIn {
        token,
        expires_at,
        user,
    })
}
