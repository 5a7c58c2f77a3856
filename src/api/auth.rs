//! `/api/auth`: login and logout.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde_json::Value;

use super::Tag;
use super::error::ApiResult;
use super::security::Bearer;
use crate::auth::{login, sessions};
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
    ) -> ApiResult<Json<LoginResponse>> {
        let client_ip = req
            .remote_addr()
            .as_socket_addr()
            .map(|address| address.ip().to_string());
        let logged_in = login::login(
            &tenants,
            &body.tenant,
            &body.username,
            &body.password,
            client_ip,
        )
        .await?;
        Ok(Json(LoginResponse {
            token: logged_in.token,
            expires_at: crate::store::value::format_datetime(logged_in.expires_at),
            user: serde_json::to_value(&logged_in.user)
                .map_err(|e| Error::Internal(e.to_string()))?,
        }))
    }

    /// End this session.
    #[oai(path = "/auth/logout", method = "post")]
    async fn logout(
        &self,
        tenants: Data<&Arc<Tenants>>,
        req: &poem::Request,
        _auth: Bearer,
    ) -> ApiResult<Json<Value>> {
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
    async fn me(&self, auth: Bearer) -> ApiResult<Json<Value>> {
        Ok(Json(
            serde_json::to_value(&auth.0.user).map_err(|e| Error::Internal(e.to_string()))?,
        ))
    }
}
