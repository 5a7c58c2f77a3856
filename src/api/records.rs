//! `/api/data/{entity}`: records of the tenant's entities.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use serde_json::{Value, json};

use super::Tag;
use super::error::ApiResult;
use super::security::Bearer;
use crate::error::Error;
use crate::meta::Action;
use crate::search::service;
use crate::store::journal;
use crate::store::records::{AssignRequest, QueryRequest, Records};
use crate::tenant::Tenants;
use crate::workflow::approvals::Engine;
use crate::workflow::shares;

#[derive(ApiResponse)]
enum Created {
    /// The created record.
    #[oai(status = 201)]
    Record(Json<Value>),
}

#[derive(ApiResponse)]
enum Deleted {
    /// Moved to the recycle bin.
    #[oai(status = 204)]
    Done,
}

/// `If-Match: 3`, `"3"` or `W/"3"`.
fn parse_version(header: Option<&str>) -> Result<Option<i64>, Error> {
    let Some(raw) = header else { return Ok(None) };
    let trimmed = raw.trim().trim_start_matches("W/").trim_matches('"');
    trimmed.parse().map(Some).map_err(|_| {
        Error::BadRequest(format!(
            "If-Match: expected the record's version number, got {raw:?}"
        ))
    })
}

pub struct RecordsApi;

#[OpenApi(tag = "Tag::Records")]
impl RecordsApi {
    /// Create a record. On an entity whose duplicate check blocks, a certain
    /// duplicate answers 409 `duplicate` with the matches in `details.matches`;
    /// `force=true` creates it anyway, for administrators and the check's
    /// `force_roles` (403 for anyone else).
    #[oai(path = "/data/:entity", method = "post")]
    async fn create(
        &self,
        auth: Bearer,
        tenants: Data<&Arc<Tenants>>,
        entity: Path<String>,
        force: Query<Option<bool>>,
        body: Json<Value>,
    ) -> ApiResult<Created> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let access = ctx.authorize(entity, Action::Create).await?;
        service::refuse_duplicates(
            &ctx,
            &catalog,
            entity,
            tenants.search.as_ref(),
            &body.0,
            force.0.unwrap_or(false),
        )
        .await?;
        let record = Records::new(&ctx.tenant.db, &catalog, entity)
            .create(&body.0, &access)
            .await?;
        Ok(Created::Record(Json(record)))
    }

    /// Read a record.
    #[oai(path = "/data/:entity/:id", method = "get")]
    async fn get(
        &self,
        auth: Bearer,
        entity: Path<String>,
        id: Path<i64>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let access = ctx.authorize(entity, Action::Read).await?;
        Ok(Json(
            Records::new(&ctx.tenant.db, &catalog, entity)
                .get(id.0, &access)
                .await?,
        ))
    }

    /// Change some fields of a record. With `If-Match: <version>` the change is refused
    /// (409) when someone else changed the record since that version.
    #[oai(path = "/data/:entity/:id", method = "patch")]
    async fn patch(
        &self,
        auth: Bearer,
        entity: Path<String>,
        id: Path<i64>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: Json<Value>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let version = parse_version(if_match.0.as_deref())?;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let access = ctx.authorize(entity, Action::Update).await?;
        let record = Records::new(&ctx.tenant.db, &catalog, entity)
            .update(id.0, &body.0, version, &access)
            .await?;
        Ok(Json(record))
    }

    /// Move a record to the recycle bin (refused while other records reference it).
    #[oai(path = "/data/:entity/:id", method = "delete")]
    async fn delete(
        &self,
        auth: Bearer,
        entity: Path<String>,
        id: Path<i64>,
    ) -> ApiResult<Deleted> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let access = ctx.authorize(entity, Action::Delete).await?;
        Records::new(&ctx.tenant.db, &catalog, entity)
            .delete(id.0, &access)
            .await?;
        Ok(Deleted::Done)
    }

    /// List records: `{filter, sort, limit, after}` → `{items, next}`.
    #[oai(path = "/data/:entity/query", method = "post")]
    async fn query(
        &self,
        auth: Bearer,
        entity: Path<String>,
        body: Json<Value>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let request = QueryRequest::from_json(body.0)?;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let access = ctx.authorize(entity, Action::Read).await?;
        let page = Records::new(&ctx.tenant.db, &catalog, entity)
            .query(&request, &access)
            .await?;
        Ok(Json(page.into_json()))
    }

    /// The record's timeline: the audit trail (who changed which fields from what to
    /// what) as `items`, its `stages` (entered, left, by whom, seconds in stage) and its
    /// `approvals` with every step, and the `shares` with their notes.
    #[oai(path = "/data/:entity/:id/history", method = "get")]
    async fn history(
        &self,
        auth: Bearer,
        entity: Path<String>,
        id: Path<i64>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let access = ctx.authorize(entity, Action::Read).await?;
        let items = Records::new(&ctx.tenant.db, &catalog, entity)
            .history(id.0, &access)
            .await?;
        let stages = journal::stage_history(&ctx.tenant.db, &entity.def.key, id.0).await?;
        let approvals = Engine::new(&ctx.tenant.db, &catalog)
            .for_record(&entity.def.key, id.0)
            .await?;
        let shares = shares::for_record(&ctx.tenant.db, &entity.def.key, id.0).await?;
        Ok(Json(
            json!({"items": items, "stages": stages, "approvals": approvals, "shares": shares}),
        ))
    }

    /// Reassign records (资料转移): `{ids: [...]}` or `{filter: {...}}`, and the new
    /// `owner`. Moves only records within the caller's `assign` scope, to an owner
    /// within it; every move is audited. Answers `{assigned, unchanged, not_found}`.
    #[oai(path = "/data/:entity/bulk/assign", method = "post")]
    async fn assign(
        &self,
        auth: Bearer,
        entity: Path<String>,
        body: Json<Value>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let request: AssignRequest = serde_json::from_value(body.0)
            .map_err(|e| Error::BadRequest(format!("assign: {e}")))?;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let access = ctx.authorize(entity, Action::Assign).await?;
        let outcome = Records::new(&ctx.tenant.db, &catalog, entity)
            .assign(&request, &access)
            .await?;
        Ok(Json(json!(outcome)))
    }
}
