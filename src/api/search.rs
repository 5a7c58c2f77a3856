//! `/api/search` and the duplicate check.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use serde_json::Value;

use super::Tag;
use super::error::ApiResult;
use super::security::Bearer;
use crate::error::Error;
use crate::search::service;
use crate::tenant::Tenants;

pub struct SearchApi;

#[OpenApi(tag = "Tag::Search")]
impl SearchApi {
    /// Full-text search over what the caller may read: Chinese fragments, pinyin
    /// (`zhenhua`), pinyin initials (`szzh`), words with typos, phone digit runs.
    /// Answers `{hits: [{entity, id, title, snippet, score}]}`, best first.
    #[oai(path = "/search", method = "get")]
    async fn search(
        &self,
        auth: Bearer,
        tenants: Data<&Arc<Tenants>>,
        q: Query<String>,
        entity: Query<Option<String>>,
        limit: Query<Option<usize>>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        if q.0.trim().is_empty() {
            return Err(Error::BadRequest("q: give something to search for".into()).into());
        }
        let catalog = ctx.tenant.catalog().await;
        if let Some(key) = entity.0.as_deref() {
            ctx.entity(&catalog, key)?;
        }
        let hits = service::search(
            &ctx,
            &catalog,
            tenants.search.as_ref(),
            &q.0,
            entity.0.as_deref(),
            limit.0.unwrap_or(20),
        )
        .await?;
        Ok(Json(hits))
    }

    /// Likely duplicates of a record about to be created (查重): send the values
    /// typed so far (`{name, phone, …}`); answers `{items: [{id, title, owner,
    /// verdict, score, reasons, fields}]}` across all owners, surest first. `verdict`
    /// is `certain` (same phone, email, or name once region and company form are
    /// stripped), `likely` (near-identical name) or `possible` (a search match);
    /// `reasons` says per field why (`same_phone`, `same_email`, `same_name`,
    /// `similar_name`, `matching_text`).
    #[oai(path = "/data/:entity/duplicates", method = "post")]
    async fn duplicates(
        &self,
        auth: Bearer,
        tenants: Data<&Arc<Tenants>>,
        entity: Path<String>,
        body: Json<Value>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let Value::Object(values) = body.0 else {
            return Err(Error::BadRequest("send the values as a JSON object".into()).into());
        };
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let found =
            service::duplicates(&ctx, &catalog, entity, tenants.search.as_ref(), &values).await?;
        Ok(Json(found))
    }
}
