//! `/api/meta`: the tenant's metadata package, its versions, entity schemas and forms.

use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use serde_json::{Value, json};

use super::Tag;
use super::error::ApiResult;
use super::security::Bearer;
use crate::auth::policy;
use crate::catalog::{form_model, form_state};
use crate::error::Error;
use crate::meta::Action;

pub struct MetaApi;

#[OpenApi(tag = "Tag::Meta")]
impl MetaApi {
    /// The tenant's whole published metadata package (webhook secrets only for
    /// administrators, so that they can move the package to another tenant whole).
    #[oai(path = "/meta", method = "get")]
    async fn get(&self, auth: Bearer) -> ApiResult<Json<Value>> {
        let catalog = auth.0.tenant.catalog().await;
        let mut package = catalog.package.clone();
        if auth.0.require_admin().await.is_err() {
            for webhook in &mut package.webhooks {
                webhook.secret = None;
            }
        }
        Ok(Json(
            serde_json::to_value(&package).map_err(|e| Error::Internal(e.to_string()))?,
        ))
    }

    /// Apply a metadata package (admins). `dry_run=true` returns the plan and changes nothing.
    #[oai(path = "/meta", method = "put")]
    async fn put(
        &self,
        auth: Bearer,
        dry_run: Query<Option<bool>>,
        body: Json<Value>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        ctx.require_admin().await?;
        let applied = ctx
            .tenant
            .apply(&body.0, Some(ctx.user.id), dry_run.0.unwrap_or(false))
            .await?;
        Ok(Json(json!({
            "version": applied.version,
            "dry_run": applied.dry_run,
            "changed": applied.changed,
            "steps": applied.plan.steps,
        })))
    }

    /// Published versions, newest first, with author, time and plan.
    #[oai(path = "/meta/versions", method = "get")]
    async fn versions(&self, auth: Bearer) -> ApiResult<Json<Value>> {
        auth.0.require_admin().await?;
        Ok(Json(json!({"items": auth.0.tenant.versions().await?})))
    }

    /// The JSON Schema of an entity's records.
    #[oai(path = "/meta/entities/:entity/schema", method = "get")]
    async fn schema(&self, auth: Bearer, entity: Path<String>) -> ApiResult<Json<Value>> {
        let catalog = auth.0.tenant.catalog().await;
        let entity = auth.0.entity(&catalog, &entity.0)?;
        auth.0.authorize(entity, Action::Read).await?;
        Ok(Json(entity.schema.clone()))
    }

    /// The form model: sections, fields, options, visibility, what this user may edit.
    #[oai(path = "/meta/entities/:entity/form", method = "get")]
    async fn form(&self, auth: Bearer, entity: Path<String>) -> ApiResult<Json<Value>> {
        let catalog = auth.0.tenant.catalog().await;
        let entity = auth.0.entity(&catalog, &entity.0)?;
        let access = auth.0.form_access(entity).await?;
        Ok(Json(form_model(entity, &access)))
    }

    /// The live state of a form being filled in: `{values}` as typed so far →
    /// `{hidden, required, computed}` — fields `visible_if` hides, fields required now
    /// (`required` and `required_if`), and formula values — by the rules a save applies.
    #[oai(path = "/meta/entities/:entity/form/state", method = "post")]
    async fn form_state(
        &self,
        auth: Bearer,
        entity: Path<String>,
        body: Json<Value>,
    ) -> ApiResult<Json<Value>> {
        let catalog = auth.0.tenant.catalog().await;
        let entity = auth.0.entity(&catalog, &entity.0)?;
        let access = auth.0.form_access(entity).await?;
        let values = match body.0.get("values") {
            Some(Value::Object(values)) => values.clone(),
            _ => {
                return Err(
                    Error::BadRequest("form state: expected {\"values\": {…}}".into()).into(),
                );
            }
        };
        Ok(Json(form_state(entity, &access, &values)))
    }

    /// The Casbin model and every policy line generated from the roles (admins):
    /// exactly what was granted, and to whom.
    #[oai(path = "/meta/policies", method = "get")]
    async fn policies(&self, auth: Bearer) -> ApiResult<Json<Value>> {
        auth.0.require_admin().await?;
        let _catalog = auth.0.tenant.catalog().await;
        let policy = auth.0.tenant.policy().await;
        Ok(Json(
            json!({"model": policy::MODEL, "lines": policy.lines()}),
        ))
    }
}
