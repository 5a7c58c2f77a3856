//! `/api/webhooks`: the configured webhooks, their delivery log, and redelivery
//! (administrators).

use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use serde_json::{Value, json};

use super::Tag;
use super::error::ApiResult;
use super::security::Bearer;
use crate::plugin::webhooks::{self, LogFilter};

pub struct WebhooksApi;

#[OpenApi(tag = "Tag::Automation")]
impl WebhooksApi {
    /// The package's webhooks, secrets left out (`signed` tells whether one is set).
    #[oai(path = "/webhooks", method = "get")]
    async fn list(&self, auth: Bearer) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        ctx.require_admin().await?;
        let catalog = ctx.tenant.catalog().await;
        let items: Vec<Value> = catalog
            .package
            .webhooks
            .iter()
            .map(|w| {
                json!({
                    "key": w.key,
                    "label": w.label,
                    "url": w.url,
                    "events": w.events,
                    "entity": w.entity,
                    "format": w.format,
                    "signed": w.secret.is_some(),
                })
            })
            .collect();
        Ok(Json(json!({ "items": items })))
    }

    /// The delivery log, newest first: each event sent to each webhook, with its
    /// status (`pending`, `delivered`, `failed`), attempts, next attempt and the
    /// receiver's last answer. Filter by `webhook` and `status`; `limit` ≤ 500.
    #[oai(path = "/webhooks/deliveries", method = "get")]
    async fn deliveries(
        &self,
        auth: Bearer,
        webhook: Query<Option<String>>,
        status: Query<Option<String>>,
        limit: Query<Option<u64>>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        ctx.require_admin().await?;
        let filter = LogFilter {
            webhook: webhook.0,
            status: status.0,
            limit: limit.0.unwrap_or(50),
        };
        let items = webhooks::deliveries(&ctx.tenant.db, &filter).await?;
        Ok(Json(json!({ "items": items })))
    }

    /// Send a delivery again (whatever became of it) at the dispatcher's next run,
    /// with a fresh count of attempts.
    #[oai(path = "/webhooks/deliveries/:id/redeliver", method = "post")]
    async fn redeliver(&self, auth: Bearer, id: Path<i64>) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        ctx.require_admin().await?;
        webhooks::redeliver(&ctx.tenant.db, id.0, crate::clock::now()).await?;
        Ok(Json(json!({ "id": id.0, "status": "pending" })))
    }
}
