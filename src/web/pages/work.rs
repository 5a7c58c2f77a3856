//! The pages of daily work: the approvals inbox, follow-ups due, notifications.

use poem::{Response, handler};
use serde_json::{Value, json};

use crate::auth::users;
use crate::error::Result;
use crate::web::display::short_datetime;
use crate::web::page::Viewer;
use crate::workflow::approvals::Engine;
use crate::workflow::{followups, notifications};

/// Follow-ups shown on the page, most overdue first.
const FOLLOWUPS_SHOWN: u64 = 200;
/// Notifications shown on the page, newest first.
const NOTIFICATIONS_SHOWN: u64 = 100;

async fn people(viewer: &Viewer) -> Result<Vec<Value>> {
    Ok(users::list(&viewer.ctx.tenant.db)
        .await?
        .into_iter()
        .filter(|u| u.active)
        .map(|u| json!({"id": u.id, "name": u.display_name}))
        .collect())
}

async fn approvals_page(viewer: &Viewer) -> Result<Response> {
    let ctx = &viewer.ctx;
    let catalog = ctx.tenant.catalog().await;
    let people = people(viewer).await?;
    let name = |id: Option<i64>| {
        people
            .iter()
            .find(|p| id.is_some_and(|id| p["id"] == id))
            .map(|p| p["name"].clone())
            .unwrap_or(Value::Null)
    };
    let items: Vec<Value> = Engine::new(&ctx.tenant.db, &catalog)
        .inbox(ctx.user.id)
        .await?
        .into_iter()
        .map(|item| {
            let flow = catalog.package.flows.iter().find(|f| item["flow"] == f.key);
            let entity = catalog.entity(item["entity"].as_str().unwrap_or_default());
            json!({
                "id": item["id"],
                "flow": flow.and_then(|f| f.label.clone()).unwrap_or_else(|| item["flow"].as_str().unwrap_or_default().to_string()),
                "entity": entity.map(|e| e.def.label().to_string()),
                "href": format!("/e/{}/{}", item["entity"].as_str().unwrap_or_default(), item["record"]),
                "title": item["title"],
                "step": item["step"],
                "submitter": name(item["submitter"].as_i64()),
                "submitted_at": short_datetime(item["submitted_at"].as_str().unwrap_or_default()),
            })
        })
        .collect();
    viewer
        .page("approvals.html", json!({"items": items, "people": people}))
        .await
}

#[handler]
pub async fn approvals(viewer: Viewer) -> Response {
    viewer.respond(approvals_page(&viewer).await).await
}

async fn followups_page(viewer: &Viewer) -> Result<Response> {
    let ctx = &viewer.ctx;
    let catalog = ctx.tenant.catalog().await;
    let people = people(viewer).await?;
    let items = followups::due(ctx, &catalog, None, chrono::Utc::now(), FOLLOWUPS_SHOWN).await?;
    let row = |item: &Value| {
        let entity = catalog.entity(item["entity"].as_str().unwrap_or_default());
        json!({
            "entity": entity.map(|e| e.def.label().to_string()),
            "href": format!("/e/{}/{}", item["entity"].as_str().unwrap_or_default(), item["id"]),
            "title": item["title"],
            "owner": people.iter().find(|p| p["id"] == item["owner"]).map(|p| p["name"].clone()),
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
