//! `/api/users`: the tenant's people.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::{Value, json};

use super::Tag;
use super::security::Bearer;
use crate::auth::users::{self, NewUser};
use crate::error::Error;

#[derive(Object)]
struct CreateUser {
    username: String,
    #[oai(default)]
    display_name: String,
    password: String,
    #[oai(default)]
    is_admin: bool,
}

#[derive(ApiResponse)]
enum Created {
    /// The created user.
    #[oai(status = 201)]
    User(Json<Value>),
}

fn to_json(value: &impl serde::Serialize) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::Internal(e.to_string()))
}

pub struct UsersApi;

#[OpenApi(tag = "Tag::Users")]
impl UsersApi {
    /// The tenant's users.
    #[oai(path = "/users", method = "get")]
    async fn list(&self, auth: Bearer) -> poem::Result<Json<Value>> {
        Ok(Json(
            json!({"items": to_json(&users::list(&auth.0.tenant.db).await?)?}),
        ))
    }

    /// Create a user (admins).
    #[oai(path = "/users", method = "post")]
    async fn create(&self, auth: Bearer, body: Json<CreateUser>) -> poem::Result<Created> {
        auth.0.require_admin()?;
        let user = users::create(
            &auth.0.tenant.db,
            &NewUser {
                username: &body.username,
                display_name: &body.display_name,
                password: &body.password,
                is_admin: body.is_admin,
            },
        )
        .await?;
        Ok(Created::User(Json(to_json(&user)?)))
    }
}
