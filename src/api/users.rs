//! `/api/users` and `/api/departments`: the tenant's people and organisation tree.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Tag;
use super::error::ApiResult;
use super::security::Bearer;
use crate::auth::org::{self, DepartmentInput};
use crate::auth::users::{self, NewUser, UserPatch};
use crate::error::Error;
use crate::tenant::Tenants;

#[derive(ApiResponse)]
enum Created {
    /// The created user or department.
    #[oai(status = 201)]
    Created(Json<Value>),
}

fn to_json(value: &impl serde::Serialize) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::Internal(e.to_string()))
}

/// A request body as one of our serde types; unknown keys are refused by the type.
fn parse<T: DeserializeOwned>(body: Value, what: &str) -> Result<T, Error> {
    serde_json::from_value(body).map_err(|e| Error::BadRequest(format!("{what}: {e}")))
}

pub struct UsersApi;

#[OpenApi(tag = "Tag::Users")]
impl UsersApi {
    /// The tenant's users: `{items: [{id, username, display_name, roles, department, is_admin, active}]}`.
    #[oai(path = "/users", method = "get")]
    async fn list(&self, auth: Bearer) -> ApiResult<Json<Value>> {
        Ok(Json(
            json!({"items": to_json(&users::list(&auth.0.tenant.db).await?)?}),
        ))
    }

    /// One user.
    #[oai(path = "/users/:id", method = "get")]
    async fn get(&self, auth: Bearer, id: Path<i64>) -> ApiResult<Json<Value>> {
        Ok(Json(to_json(&users::get(&auth.0.tenant.db, id.0).await?)?))
    }

    /// Create a user (admins): `{username, display_name, password, roles, department, is_admin}`.
    #[oai(path = "/users", method = "post")]
    async fn create(&self, auth: Bearer, body: Json<Value>) -> ApiResult<Created> {
        auth.0.require_admin().await?;
        let new: NewUser = parse(body.0, "user")?;
        let user = auth.0.tenant.create_user(&new).await?;
        Ok(Created::Created(Json(to_json(&user)?)))
    }

    /// Change a user (admins): any of `display_name, roles, department, is_admin,
    /// active, password`. Disabling a user or resetting their password ends their
    /// sessions.
    #[oai(path = "/users/:id", method = "patch")]
    async fn patch(
        &self,
        auth: Bearer,
        tenants: Data<&Arc<Tenants>>,
        id: Path<i64>,
        body: Json<Value>,
    ) -> ApiResult<Json<Value>> {
        auth.0.require_admin().await?;
        let patch: UserPatch = parse(body.0, "user")?;
        if id.0 == auth.0.user.id && (patch.active == Some(false) || patch.is_admin == Some(false))
        {
            return Err(Error::Forbidden(
                "you cannot disable yourself or remove your own administrator rights".into(),
            )
            .into());
        }
        let user = auth
            .0
            .tenant
            .update_user(&tenants.platform, id.0, &patch)
            .await?;
        Ok(Json(to_json(&user)?))
    }

    /// The department tree as a list: `{items: [{id, name, parent, manager}]}`.
    #[oai(path = "/departments", method = "get")]
    async fn departments(&self, auth: Bearer) -> ApiResult<Json<Value>> {
        Ok(Json(
            json!({"items": to_json(&org::list(&auth.0.tenant.db).await?)?}),
        ))
    }

    /// Create a department (admins): `{name, parent?, manager?}`.
    #[oai(path = "/departments", method = "post")]
    async fn create_department(&self, auth: Bearer, body: Json<Value>) -> ApiResult<Created> {
        auth.0.require_admin().await?;
        let input: DepartmentInput = parse(body.0, "department")?;
        let department = auth.0.tenant.create_department(&input).await?;
        Ok(Created::Created(Json(to_json(&department)?)))
    }

    /// Rename, move (with its whole subtree) or change the manager of a department
    /// (admins). A move under its own subtree is refused.
    #[oai(path = "/departments/:id", method = "patch")]
    async fn patch_department(
        &self,
        auth: Bearer,
        id: Path<i64>,
        body: Json<Value>,
    ) -> ApiResult<Json<Value>> {
        auth.0.require_admin().await?;
        let input: DepartmentInput = parse(body.0, "department")?;
        let department = auth.0.tenant.update_department(id.0, &input).await?;
        Ok(Json(to_json(&department)?))
    }
}
