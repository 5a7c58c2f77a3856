//! `/api/views/{entity}`: the caller's saved list views.

use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
use serde_json::{Value, json};

use super::Tag;
use super::error::ApiResult;
use super::security::Bearer;
use crate::meta::Action;
use crate::store::views;

#[derive(Object)]
struct NewView {
    /// The view's name, unique per user and entity (saving a name again replaces it).
    name: String,
    /// The list page's query string: filters (`q`, `f.KEY`, `f.KEY.from/to`), `col`
    /// columns and `sort`.
    query: String,
}

#[derive(ApiResponse)]
enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Done,
}

pub struct ViewsApi;

#[OpenApi(tag = "Tag::Records")]
impl ViewsApi {
    /// The caller's saved views of an entity's list: `{items: [{id, name, query, created_at}]}`.
    #[oai(path = "/views/:entity", method = "get")]
    async fn list(&self, auth: Bearer, entity: Path<String>) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        ctx.authorize(entity, Action::Read).await?;
        let items = views::list(&ctx.tenant.db, ctx.user.id, &entity.def.key).await?;
        Ok(Json(json!({ "items": items })))
    }

    /// Save a view of an entity's list (for the caller only).
    #[oai(path = "/views/:entity", method = "post")]
    async fn save(
        &self,
        auth: Bearer,
        entity: Path<String>,
        body: Json<NewView>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        ctx.authorize(entity, Action::Read).await?;
        let view = views::save(
            &ctx.tenant.db,
            ctx.user.id,
            &entity.def.key,
            &body.name,
            &body.query,
        )
        .await?;
        Ok(Json(view))
    }

    /// Delete one of the caller's views.
    #[oai(path = "/views/:entity/:id", method = "delete")]
    async fn remove(
        &self,
        auth: Bearer,
        entity: Path<String>,
        id: Path<i64>,
    ) -> ApiResult<Deleted> {
        let ctx = auth.0;
        views::remove(&ctx.tenant.db, ctx.user.id, &entity.0, id.0).await?;
        Ok(Deleted::Done)
    }
}
