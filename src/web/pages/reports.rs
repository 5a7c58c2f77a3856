//! Report pages: the list of reports, a report's viewer, the builder, dashboards.
//! The pages check the same rights as the API before they render; the charts and
//! tables are drawn by `reports.js` from the API's output.

use poem::web::Path;
use poem::{Response, handler};
use serde_json::json;

use crate::error::Result;
use crate::meta::Action;
use crate::report::service;
use crate::web::page::Viewer;

async fn list_page(viewer: &Viewer) -> Result<Response> {
    let catalog = viewer.ctx.tenant.catalog().await;
    let reports = service::list(&viewer.ctx, &catalog).await?;
    let dashboards = service::dashboards(&viewer.ctx, &catalog).await;
    viewer
        .page(
            "reports.html",
            json!({"reports": reports, "dashboards": dashboards}),
        )
        .await
}

#[handler]
pub async fn list(viewer: Viewer) -> Response {
    viewer.respond(list_page(&viewer).await).await
}

async fn view_page(viewer: &Viewer, key: &str) -> Result<Response> {
    let catalog = viewer.ctx.tenant.catalog().await;
    let report = service::saved(&viewer.ctx, &catalog, key).await?;
    viewer
        .page(
            "report.html",
            json!({"report_key": key, "label": report.label.as_deref().unwrap_or(key)}),
        )
        .await
}

#[handler]
pub async fn view(viewer: Viewer, Path(key): Path<String>) -> Response {
    viewer.respond(view_page(&viewer, &key).await).await
}

/// The builder, for a new report (`key` none) or one to edit: the entities this user
/// may read are the sources it offers.
async fn builder_page(viewer: &Viewer, key: Option<&str>) -> Result<Response> {
    let catalog = viewer.ctx.tenant.catalog().await;
    if let Some(key) = key {
        service::saved(&viewer.ctx, &catalog, key).await?;
    }
    let mut entities = Vec::new();
    for entity in catalog.entities() {
        if viewer.ctx.authorize(entity, Action::Read).await.is_ok() {
            entities.push(json!({"key": entity.def.key, "label": entity.def.label()}));
        }
    }
    viewer
        .page(
            "report_builder.html",
            json!({"report_key": key, "entities": entities}),
        )
        .await
}

#[handler]
pub async fn builder(viewer: Viewer) -> Response {
    viewer.respond(builder_page(&viewer, None).await).await
}

#[handler]
pub async fn edit(viewer: Viewer, Path(key): Path<String>) -> Response {
    viewer
        .respond(builder_page(&viewer, Some(&key)).await)
        .await
}

async fn dashboard_page(viewer: &Viewer, key: &str) -> Result<Response> {
    let catalog = viewer.ctx.tenant.catalog().await;
    let dashboards = service::dashboards(&viewer.ctx, &catalog).await;
    let Some(dashboard) = dashboards.iter().find(|d| d["key"] == key) else {
        // Not found and not allowed answer alike, as the API's dashboard does.
        service::dashboard(&viewer.ctx, &catalog, key).await?;
        return Err(crate::error::Error::not_found(format!("dashboard {key:?}")));
    };
    viewer
        .page(
            "dashboard.html",
            json!({"dashboard_key": key, "label": dashboard["label"], "dashboards": dashboards}),
        )
        .await
}

#[handler]
pub async fn dashboard_view(viewer: Viewer, Path(key): Path<String>) -> Response {
    viewer.respond(dashboard_page(&viewer, &key).await).await
}

/// The home page: the first dashboard this user's roles may view (a manager's home
/// is their dashboard), else the shortcuts to the day's work.
async fn home_page(viewer: &Viewer) -> Result<Response> {
    let catalog = viewer.ctx.tenant.catalog().await;
    let dashboards = service::dashboards(&viewer.ctx, &catalog).await;
    drop(catalog);
    match dashboards.first().and_then(|d| d["key"].as_str()) {
        Some(key) => dashboard_page(viewer, key).await,
        None => viewer.page("home.html", json!({})).await,
    }
}

#[handler]
pub async fn home(viewer: Viewer) -> Response {
    viewer.respond(home_page(&viewer).await).await
}
