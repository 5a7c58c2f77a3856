//! `/api/plugins`: the bundled plugins, and enabling, re-configuring or disabling one
//! for the tenant (administrators), with a dry run that shows the plan first.

use poem_openapi::OpenApi;
use poem_openapi::payload::Json;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Tag;
use super::error::ApiResult;
use super::security::Bearer;
use crate::error::Error;
use crate::plugin::packages;

pub struct PluginsApi;

/// What `POST /api/plugins` takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginChange {
    name: String,
    enabled: bool,
    #[serde(default)]
    settings: Map<String, Value>,
    #[serde(default)]
    dry_run: bool,
}

#[OpenApi(tag = "Tag::Automation")]
impl PluginsApi {
    /// Every bundled plugin: its manifest (without the contribution), whether it is
    /// enabled, with which version and settings, and what it added to the package.
    #[oai(path = "/plugins", method = "get")]
    async fn list(&self, auth: Bearer) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        ctx.require_admin().await?;
        let catalog = ctx.tenant.catalog().await;
        let items = packages::overview(&catalog.package)?;
        Ok(Json(json!({ "items": items })))
    }

    /// Enable a plugin (again, to change its settings) or disable it:
    /// `{name, enabled, settings, dry_run}`. The answer is the publish's plan; with
    /// `dry_run` nothing changes. Disabling archives the plugin's entities and fields
    /// with their data.
    #[oai(path = "/plugins", method = "post")]
    async fn change(&self, auth: Bearer, body: Json<Value>) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        ctx.require_admin().await?;
        let change: PluginChange = serde_json::from_value(body.0)
            .map_err(|e| Error::BadRequest(format!("plugin change: {e}")))?;
        let author = Some(ctx.user.id);
        let applied = if change.enabled {
            packages::enable(
                &ctx.tenant,
                &change.name,
                &change.settings,
                author,
                change.dry_run,
            )
            .await?
        } else {
            packages::find(&change.name)?;
            packages::disable(&ctx.tenant, &change.name, author, change.dry_run).await?
        };
        Ok(Json(json!({
            "plugin": change.name,
            "enabled": change.enabled,
            "version": applied.version,
            "dry_run": applied.dry_run,
            "changed": applied.changed,
            "steps": applied.plan.steps,
        })))
    }
}
