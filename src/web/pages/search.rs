//! The search results page (the header's box shows results as you type through the
//! API; pressing Enter lands here), grouped by entity.

use std::sync::Arc;

use poem::web::{Data, Query};
use poem::{Response, handler};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::Result;
use crate::search::service;
use crate::tenant::Tenants;
use crate::web::page::Viewer;

/// Hits shown on the page, over all entities.
const HITS: usize = 50;

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn search_page(viewer: &Viewer, tenants: &Tenants, q: &str) -> Result<Response> {
    let catalog = viewer.ctx.tenant.catalog().await;
    let mut groups: Vec<Value> = Vec::new();
    if !q.trim().is_empty() {
        let found = service::search(
            &viewer.ctx,
            &catalog,
            tenants.search.as_ref(),
            q,
            None,
            HITS,
        )
        .await?;
        for hit in found["hits"].as_array().into_iter().flatten() {
            let key = hit["entity"].as_str().unwrap_or_default();
            let entry = json!({
                "title": hit["title"],
                "snippet": hit["snippet"],
                "href": format!("/e/{key}/{}", hit["id"]),
            });
            match groups.iter_mut().find(|g| g["key"] == key) {
                Some(group) => group["hits"].as_array_mut().expect("hits").push(entry),
                None => groups.push(json!({
                    "key": key,
                    "label": catalog.entity(key).map(|e| e.def.label().to_string()),
                    "hits": [entry],
                })),
            }
        }
    }
    viewer
        .page("search.html", json!({"q": q, "groups": groups}))
        .await
}

#[handler]
pub async fn search(
    viewer: Viewer,
    tenants: Data<&Arc<Tenants>>,
    Query(query): Query<SearchQuery>,
) -> Response {
    viewer
        .respond(search_page(&viewer, &tenants, &query.q).await)
        .await
}
