//! `/api/schedules`: the scheduled rules with their next run and run log, and running
//! one now (administrators).

use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use serde_json::{Value, json};

use super::Tag;
use super::error::ApiResult;
use super::security::Bearer;
use crate::plugin::schedules;
use crate::store::value::format_datetime;

pub struct SchedulesApi;

#[OpenApi(tag = "Tag::Automation")]
impl SchedulesApi {
    /// The package's scheduled rules: pattern, next run (China time pattern, UTC
    /// instant) and the latest 20 runs with their status and how many were notified.
    #[oai(path = "/schedules", method = "get")]
    async fn list(&self, auth: Bearer) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        ctx.require_admin().await?;
        let items = schedules::overview(&ctx.tenant, crate::clock::now()).await?;
        Ok(Json(json!({ "items": items })))
    }

    /// Run a rule now, whatever its pattern says; logged like a scheduled run.
    #[oai(path = "/schedules/:key/run", method = "post")]
    async fn run(&self, auth: Bearer, key: Path<String>) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        ctx.require_admin().await?;
        let report = schedules::run_now(&ctx.tenant, &key.0, crate::clock::now()).await?;
        Ok(Json(json!({
            "schedule": report.schedule,
            "slot": format_datetime(report.slot),
            "status": report.status,
            "notified": report.notified,
        })))
    }
}
