//! Automation for administrators: the bundled plugins with their settings (enabled
//! through `POST /api/plugins` after a dry run, from `app.js`), the webhook delivery
//! log with redelivery, and the scheduled rules with their runs and a "run now".

use poem::{Response, handler};
use serde_json::{Value, json};

use crate::error::Result;
use crate::plugin::webhooks::{self, LogFilter};
use crate::plugin::{packages, schedules};
use crate::web::display::short_datetime;
use crate::web::page::Viewer;

/// Deliveries shown on the page, newest first.
const DELIVERIES_SHOWN: u64 = 50;

async fn automation_page(viewer: &Viewer) -> Result<Response> {
    let ctx = &viewer.ctx;
    ctx.require_admin().await?;
    let plugins = {
        let catalog = ctx.tenant.catalog().await;
        packages::overview(&catalog.package)?
    };
    let deliveries: Vec<Value> = webhooks::deliveries(
        &ctx.tenant.db,
        &LogFilter {
            webhook: None,
            status: None,
            limit: DELIVERIES_SHOWN,
        },
    )
    .await?
    .into_iter()
    .map(|mut delivery| {
        let created = short_datetime(delivery["created_at"].as_str().unwrap_or_default());
        delivery["created_at"] = json!(created);
        delivery
    })
    .collect();
    let schedules = schedules::overview(&ctx.tenant, crate::clock::now()).await?;
    viewer
        .page(
            "automation.html",
            json!({"plugins": plugins, "deliveries": deliveries, "schedules": schedules}),
        )
        .await
}

#[handler]
pub async fn automation(viewer: Viewer) -> Response {
    viewer.respond(automation_page(&viewer).await).await
}
