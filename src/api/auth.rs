//! `/api/auth`: login and logout.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde_json::Value;

use super::Tag;
use super::security::Bearer;
use crate::auth::{password, sessions, throttle, users};
use crate::error::Error;
use crate::tenant::Tenants;

#[derive(Object)]
struct LoginRequest {
    tenant: String,
    username: String,
    password: String,
}

#[derive(Object)]
struct LoginResponse {
    token: String,
    expires_at: String,
    user: Value,
}

pub struct AuthApi;

#[OpenApi(tag = "Tag::Auth")]
impl AuthApi {
    /// Log in with a tenant, username and password; returns a bearer token.
    #[oai(path = "/auth/login", method = "post")]
    async fn login(
        &self,
        tenants: Data<&Arc<Tenants>>,
        req: &poem::Request,
        body: Json<LoginRequest>,
    ) -> poem::Result<Json<LoginResponse>> {
        // One message for unknown tenant, unknown user, wrong password and disabled user.
        let refused = || Error::Unauthorized("wrong tenant, username or password".into());
        let user_key = throttle::Key::user(&body.tenant, &body.username);
        let mut keys = vec![user_key.clone()];
        if let Some(address) = req.remote_addr().as_socket_addr() {
            keys.push(throttle::Key::address(
                &body.tenant,
                &address.ip().to_string(),
            ));
        }
        throttle::check(&tenants.platform, &keys).await?;
        let user = match tenants.get(&body.tenant).await {
            Ok(tenant) => users::authenticate(&tenant.db, &body.username, &body.password)
                .await?
                .map(|user| (tenant, user)),
            Err(Error::NotFound(_)) => {
                // Spend the time a password check takes so tenants cannot be probed by timing.
                let password = body.password.clone();
                tokio::task::spawn_blocking(move || {
                    password::verify(&password, password::decoy_hash())
                })
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
                None
            }
            Err(e) => return Err(e.into()),
        };
        let Some((tenant, user)) = user else {
            throttle::record_failure(&tenants.platform, &keys).await?;
            return Err(refused().into());
        };
        throttle::clear(&tenants.platform, &user_key).await?;
        let (token, expires_at) = sessions::start(&tenants.platform, &tenant.key, user.id).await?;
        Ok(Json(LoginResponse {
            token,
            expires_at: crate::store::value::format_datetime(expires_at),
            user: serde_json::to_value(&user).map_err(|e| Error::Internal(e.to_string()))?,
        }))
    }

    /// End this session.
    #[oai(path = "/auth/logout", method = "post")]
    async fn logout(
        &self,
        tenants: Data<&Arc<Tenants>>,
        req: &poem::Request,
        _auth: Bearer,
    ) -> poem::Result<Json<Value>> {
        let token = req
            .headers()
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or_default();
        sessions::end(&tenants.platform, token).await?;
        Ok(Json(serde_json::json!({"ok": true})))
    }

    /// The signed-in user.
    #[oai(path = "/auth/me", method = "get")]
    async fn me(&self, auth: Bearer) -> poem::Result<Json<Value>> {
        Ok(Json(
            serde_json::to_value(&auth.0.user).map_err(|e| Error::Internal(e.to_string()))?,
        ))
    }
}
