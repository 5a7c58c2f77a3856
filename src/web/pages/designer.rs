//! The designer: a client-side editor (`designer.js`) over `GET/PUT /api/meta`, for
//! those with designer rights.

use poem::web::Path;
use poem::{Response, handler};
use serde_json::json;

use crate::error::Result;
use crate::web::page::Viewer;

async fn designer_page(viewer: &Viewer, entity: Option<&str>) -> Result<Response> {
    viewer.ctx.require_admin().await?;
    viewer
        .page("designer.html", json!({"entity": entity}))
        .await
}

#[handler]
pub async fn designer(viewer: Viewer) -> Response {
    viewer.respond(designer_page(&viewer, None).await).await
}

#[handler]
pub async fn designer_entity(viewer: Viewer, Path(entity): Path<String>) -> Response {
    viewer
        .respond(designer_page(&viewer, Some(&entity)).await)
        .await
}
