//! Stage moves, conversions, approvals and notifications over HTTP.

use std::collections::BTreeMap;

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, Object, OpenApi};
use serde_json::{Value, json};

use super::Tag;
use super::error::ApiResult;
use super::security::Bearer;
use crate::error::Error;
use crate::meta::Action;
use crate::store::records::{QueryRequest, Records};
use crate::workflow::approvals::{ActRequest, Engine};
use crate::workflow::convert::{self, ConvertOptions};
use crate::workflow::shares::{self, ShareRequest};
use crate::workflow::{followups, notifications, pool, stages};

#[derive(Object)]
struct StageMove {
    /// The target stage key.
    to: String,
}

#[derive(Object)]
struct Submit {
    /// The flow key.
    flow: String,
}

/// Options of a conversion (the body may be left out).
#[derive(Object)]
#[oai(rename = "ConvertOptions")]
struct ConvertBody {
    /// Alias → the id of an existing record to link instead of creating one, e.g.
    /// `{"customer": 12}`: the contact joins customer 12 and no customer is created.
    use_existing: Option<BTreeMap<String, i64>>,
}

/// A JSON body that may be left out altogether (no body and no content type): then
/// `Value::Null`. Documented as an optional `ConvertOptions` body.
struct OptionalBody(Value);

impl<'a> ApiExtractor<'a> for OptionalBody {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        ConvertBody::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json; charset=utf-8",
                schema: ConvertBody::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bytes = <Vec<u8> as FromRequest>::from_request(request, body).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(Value::Null));
        }
        let json = request.content_type().is_some_and(|t| {
            let essence = t.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json")
        });
        if !json {
            return Err(Error::BadRequest("send the options as application/json".into()).into());
        }
        serde_json::from_slice(&bytes)
            .map(OptionalBody)
            .map_err(|e| Error::BadRequest(format!("convert: invalid JSON: {e}")).into())
    }
}

pub struct WorkflowApi;

#[OpenApi(tag = "Tag::Workflow")]
impl WorkflowApi {
    /// Move a record to another stage: checks the pipeline's transitions, the target
    /// stage's required fields (422 listing every missing one) and permissions; may
    /// start a flow (`approval` in the answer).
    #[oai(path = "/data/:entity/:id/stage", method = "post")]
    async fn stage(
        &self,
        auth: Bearer,
        entity: Path<String>,
        id: Path<i64>,
        body: Json<StageMove>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let access = ctx.authorize(entity, Action::Update).await?;
        let moved = stages::move_to(
            &ctx.tenant.db,
            &catalog,
            entity,
            id.0,
            &body.to,
            &ctx.user,
            &access,
        )
        .await?;
        Ok(Json(moved))
    }

    /// Convert a record by one of its entity's conversions (a lead into a customer and
    /// a contact): one transaction creates the records, links them and updates the
    /// record. Optional body `{use_existing: {alias: id}}` links existing records
    /// instead of creating them. 404 when the record is not within the caller's
    /// update scope, 403 without the create right on a created entity, 409 when the
    /// conversion's `when` does not hold or the record is locked, 422 naming
    /// `alias.field` (or `source.field`). Answers `{source, created: {alias: record},
    /// existing?: {alias: record}}`.
    #[oai(path = "/data/:entity/:id/convert/:key", method = "post")]
    async fn convert(
        &self,
        auth: Bearer,
        entity: Path<String>,
        id: Path<i64>,
        key: Path<String>,
        body: OptionalBody,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let options = ConvertOptions::from_json(body.0)?;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let converted = convert::convert(&ctx, &catalog, entity, id.0, &key.0, &options).await?;
        Ok(Json(converted))
    }

    /// Submit a record for approval by a flow; the record is locked until it ends.
    #[oai(path = "/data/:entity/:id/submit", method = "post")]
    async fn submit(
        &self,
        auth: Bearer,
        entity: Path<String>,
        id: Path<i64>,
        body: Json<Submit>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let access = ctx.authorize(entity, Action::Update).await?;
        let approval = Engine::new(&ctx.tenant.db, &catalog)
            .submit(entity, id.0, &body.flow, &access)
            .await?;
        Ok(Json(approval))
    }

    /// Share a record with a note (主送 `to`, 抄送 `cc`, 知会 `notify`: user ids;
    /// `roles`: role keys copied): recipients are notified, the share joins the
    /// record's timeline. The caller must be able to read the record.
    #[oai(path = "/data/:entity/:id/share", method = "post")]
    async fn share(
        &self,
        auth: Bearer,
        entity: Path<String>,
        id: Path<i64>,
        body: Json<Value>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let request: ShareRequest =
            serde_json::from_value(body.0).map_err(|e| Error::BadRequest(format!("share: {e}")))?;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let access = ctx.authorize(entity, Action::Read).await?;
        let record = Records::new(&ctx.tenant.db, &catalog, entity)
            .get(id.0, &access)
            .await?;
        let shared = shares::share(
            &ctx.tenant.db,
            &catalog,
            entity,
            &record,
            &request,
            &ctx.user,
        )
        .await?;
        Ok(Json(shared))
    }

    /// What the caller may approve now: `{items: [{id, flow, entity, record, title,
    /// step, submitter, submitted_at}]}`.
    #[oai(path = "/approvals/inbox", method = "get")]
    async fn inbox(&self, auth: Bearer) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let items = Engine::new(&ctx.tenant.db, &catalog)
            .inbox(ctx.user.id)
            .await?;
        Ok(Json(json!({ "items": items })))
    }

    /// One approval with its tasks and timeline, for those taking part in it and
    /// those who may read its record.
    #[oai(path = "/approvals/:id", method = "get")]
    async fn approval(&self, auth: Bearer, id: Path<i64>) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let view = Engine::new(&ctx.tenant.db, &catalog).view(id.0).await?;
        if !Engine::takes_part(&view, ctx.user.id) {
            let hidden = || Error::NotFound(format!("approval {} not found", id.0));
            let entity = catalog
                .entity(view["entity"].as_str().unwrap_or_default())
                .ok_or_else(hidden)?;
            let access = ctx
                .authorize(entity, Action::Read)
                .await
                .map_err(|_| hidden())?;
            Records::new(&ctx.tenant.db, &catalog, entity)
                .get(view["record"].as_i64().unwrap_or_default(), &access)
                .await
                .map_err(|_| hidden())?;
        }
        Ok(Json(view))
    }

    /// Act on an approval: `approve`, `reject` (`comment` required; `to` an earlier
    /// step key returns it there, 退回), `delegate` (`to` a user id, 转审),
    /// `add_approvers` (`users`, 加签), `withdraw` (the submitter).
    #[oai(path = "/approvals/:id/:action", method = "post")]
    async fn act(
        &self,
        auth: Bearer,
        id: Path<i64>,
        action: Path<String>,
        body: Json<Value>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let body = if body.0.is_null() { json!({}) } else { body.0 };
        let request: ActRequest = serde_json::from_value(body)
            .map_err(|e| Error::BadRequest(format!("{}: {e}", action.0)))?;
        let (act, comment) = request.into_act(&action.0)?;
        let catalog = ctx.tenant.catalog().await;
        let view = Engine::new(&ctx.tenant.db, &catalog)
            .act(id.0, &ctx.user, act, comment)
            .await?;
        Ok(Json(view))
    }

    /// The caller's notifications, newest first: `{items, unread}`.
    #[oai(path = "/notifications", method = "get")]
    async fn notifications(
        &self,
        auth: Bearer,
        unread: Query<Option<bool>>,
        limit: Query<Option<u64>>,
    ) -> ApiResult<Json<Value>> {
        let limit = limit.0.unwrap_or(50).clamp(1, 500);
        let list = notifications::list(
            &auth.0.tenant.db,
            auth.0.user.id,
            unread.0.unwrap_or(false),
            limit,
        )
        .await?;
        Ok(Json(list))
    }

    /// Mark notifications read: `{ids: [...]}`, or `{}` for all. Answers `{marked}`.
    #[oai(path = "/notifications/read", method = "post")]
    async fn mark_read(&self, auth: Bearer, body: Json<Value>) -> ApiResult<Json<Value>> {
        let ids: Option<Vec<i64>> = match body.0.get("ids") {
            None | Some(Value::Null) => None,
            Some(ids) => Some(
                serde_json::from_value(ids.clone())
                    .map_err(|e| Error::BadRequest(format!("ids: {e}")))?,
            ),
        };
        let marked =
            notifications::mark_read(&auth.0.tenant.db, auth.0.user.id, ids.as_deref()).await?;
        Ok(Json(json!({ "marked": marked })))
    }

    /// Whom to contact: records due or overdue by their follow-up cycle, within the
    /// caller's read scope, most overdue first: `{items: [{entity, id, title, owner,
    /// category, last_contact_at, due_on, overdue_days}]}`.
    #[oai(path = "/followups/due", method = "get")]
    async fn followups_due(
        &self,
        auth: Bearer,
        entity: Query<Option<String>>,
        limit: Query<Option<u64>>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let limit = limit.0.unwrap_or(100).clamp(1, 1000);
        let items = followups::due(
            &ctx,
            &catalog,
            entity.0.as_deref(),
            chrono::Utc::now(),
            limit,
        )
        .await?;
        Ok(Json(json!({ "items": items })))
    }

    /// The public pool (公海) of an entity: records without owner, queried like any
    /// list (`{filter, sort, limit, after}`) by anyone who may read the entity.
    #[oai(path = "/pool/:entity/query", method = "post")]
    async fn pool_query(
        &self,
        auth: Bearer,
        entity: Path<String>,
        body: Json<Value>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let request = QueryRequest::from_json(body.0)?;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let access = pool::pool_access(&ctx, entity).await?;
        let page = Records::new(&ctx.tenant.db, &catalog, entity)
            .query(&request, &access)
            .await?;
        Ok(Json(page.into_json()))
    }

    /// Claim a record from the pool (the entity's daily claim limit applies).
    #[oai(path = "/pool/:entity/:id/claim", method = "post")]
    async fn claim(
        &self,
        auth: Bearer,
        entity: Path<String>,
        id: Path<i64>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let access = ctx.authorize(entity, Action::Read).await?;
        let claimed = pool::claim(
            &ctx.tenant.db,
            &catalog,
            entity,
            id.0,
            ctx.user.id,
            chrono::Utc::now(),
        )
        .await?;
        Ok(Json(crate::store::records::mask(claimed, &access)))
    }
}
