//! The pages of daily work: the approvals inbox, follow-ups due, notifications.

use poem::{Response, handler};
use serde_json::{Value, json};

use crate::error::Result;
use crate::web::display::{Display, flow_label, short_datetime};
use crate::web::page::Viewer;
use crate::workflow::approvals::Engine;
use crate::workflow::{followups, notifications};

/// Follow-ups shown on the page, most overdue first.
const FOLLOWUPS_SHOWN: u64 = 200;
/// Notifications shown on the page, newest first.
const NOTIFICATIONS_SHOWN: u64 = 100;

/// The people's names, for pages that show records without their fields.
async fn names(viewer: &Viewer, catalog: &crate::catalog::Catalog) -> Result<Display> {
    Display::load(&viewer.ctx, catalog, viewer.lang, &[], &[]).await
}

async fn approvals_page(viewer: &Viewer) -> Result<Response> {
    let ctx = &viewer.ctx;
    let catalog = ctx.tenant.catalog().await;
    let names = names(viewer, &catalog).await?;
    let items: Vec<Value> = Engine::new(&ctx.tenant.db, &catalog)
        .inbox(ctx.user.id)
        .await?
        .into_iter()
        .map(|item| {
            let entity = catalog.entity(item["entity"].as_str().unwrap_or_default());
            json!({
                "id": item["id"],
                "flow": flow_label(&catalog, item["flow"].as_str().unwrap_or_default()),
                "entity": entity.map(|e| e.def.label().to_string()),
                "href": format!("/e/{}/{}", item["entity"].as_str().unwrap_or_default(), item["record"]),
                "title": item["title"],
                "step": item["step"],
                "submitter": names.person(item["submitter"].as_i64()),
                "submitted_at": short_datetime(item["submitted_at"].as_str().unwrap_or_default()),
            })
        })
        .collect();
    viewer
        .page(
            "approvals.html",
            json!({"items": items, "people": names.choosable()}),
        )
        .await
}

#[handler]
pub async fn approvals(viewer: Viewer) -> Response {
    viewer.respond(approvals_page(&viewer).await).await
}

async fn followups_page(viewer: &Viewer) -> Result<Response> {
    let ctx = &viewer.ctx;
    let catalog = ctx.tenant.catalog().await;
    let names = names(viewer, &catalog).await?;
    let items = followups::due(ctx, &catalog, None, chrono::Utc::now(), FOLLOWUPS_SHOWN).await?;
    let row = |item: &Value| {
        let entity = catalog.entity(item["entity"].as_str().unwrap_or_default());
        json!({
            "entity": entity.map(|e| e.def.label().to_string()),
            "href": format!("/e/{}/{}", item["entity"].as_str().unwrap_or_default(), item["id"]),
            "title": item["title"],
            "owner": names.person(item["owner"].as_i64()),
            "last_contact_at": short_datetime(item["last_contact_at"].as_str().unwrap_or_default()),
            "due_on": item["due_on"],
            "overdue_days": item["overdue_days"],
        })
    };
    let overdue: Vec<Value> = items
        .iter()
        .filter(|i| i["overdue_days"].as_i64().unwrap_or(0) > 0)
        .map(row)
        .collect();
    let today: Vec<Value> = items
        .iter()
        .filter(|i| i["overdue_days"].as_i64().unwrap_or(0) <= 0)
        .map(row)
        .collect();
    viewer
        .page(
            "followups.html",
            json!({"overdue": overdue, "today": today}),
        )
        .await
}

#[handler]
pub async fn followups_due(viewer: Viewer) -> Response {
    viewer.respond(followups_page(&viewer).await).await
}

async fn notifications_page(viewer: &Viewer) -> Result<Response> {
    let ctx = &viewer.ctx;
    let mut list =
        notifications::list(&ctx.tenant.db, ctx.user.id, false, NOTIFICATIONS_SHOWN).await?;
    for item in list["items"].as_array_mut().into_iter().flatten() {
        let at = short_datetime(item["created_at"].as_str().unwrap_or_default());
        item["at"] = json!(at);
        if let (Some(entity), Some(id)) = (item["entity"].as_str(), item["record_id"].as_i64()) {
            item["href"] = json!(format!("/e/{entity}/{id}"));
        }
    }
    viewer.page("notifications.html", list).await
}

#[handler]
pub async fn notifications_list(viewer: Viewer) -> Response {
    viewer.respond(notifications_page(&viewer).await).await
}
