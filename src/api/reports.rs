//! Reports and dashboards over HTTP.

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, OpenApi, ResponseContent};
use serde_json::{Value, json};

use super::Tag;
use super::error::ApiResult;
use super::security::Bearer;
use crate::error::Error;
use crate::report::{Output, export, service};

#[derive(ResponseContent)]
enum ReportContent {
    Json(Json<Value>),
    #[oai(content_type = "text/csv; charset=utf-8")]
    Csv(Binary<Vec<u8>>),
    #[oai(content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")]
    Xlsx(Binary<Vec<u8>>),
}

#[derive(ApiResponse)]
enum ReportFile {
    /// The report as JSON (`{columns, rows, totals, categories, series, …}`), CSV or
    /// XLSX.
    #[oai(status = 200)]
    Ok(
        ReportContent,
        #[oai(header = "Content-Disposition")] Option<String>,
    ),
}

#[derive(ApiResponse)]
enum Saved {
    /// The saved definition.
    #[oai(status = 201)]
    Created(Json<Value>),
}

#[derive(ApiResponse)]
enum Removed {
    /// Deleted.
    #[oai(status = 204)]
    Done,
}

fn definition_json(report: &crate::meta::Report) -> Result<Value, Error> {
    serde_json::to_value(report).map_err(|e| Error::Internal(e.to_string()))
}

fn file(output: &Output, format: Option<&str>) -> Result<ReportFile, Error> {
    let name = output.key.as_deref().unwrap_or("report");
    let disposition =
        |extension: &str| Some(format!("attachment; filename=\"{name}.{extension}\""));
    Ok(match format.unwrap_or("json") {
        "json" => ReportFile::Ok(ReportContent::Json(Json(output.to_json())), None),
        "csv" => ReportFile::Ok(
            ReportContent::Csv(Binary(export::csv(output)?)),
            disposition("csv"),
        ),
        "xlsx" => ReportFile::Ok(
            ReportContent::Xlsx(Binary(export::xlsx(output)?)),
            disposition("xlsx"),
        ),
        other => {
            return Err(Error::BadRequest(format!(
                "format: expected json, csv or xlsx, got {other:?}"
            )));
        }
    })
}

pub struct ReportsApi;

#[OpenApi(tag = "Tag::Reports")]
impl ReportsApi {
    /// The saved reports the caller may run: `{items: [{key, label, entity, kind,
    /// chart}]}`.
    #[oai(path = "/reports", method = "get")]
    async fn list(&self, auth: Bearer) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        Ok(Json(json!({"items": service::list(&ctx, &catalog).await?})))
    }

    /// Save a report from the builder as the caller's own; `roles` shares it with
    /// those roles. The key must be free (409 otherwise); problems answer 422.
    #[oai(path = "/reports", method = "post")]
    async fn save(&self, auth: Bearer, body: Json<Value>) -> ApiResult<Saved> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let report = service::save(&ctx, &catalog, body.0).await?;
        Ok(Saved::Created(Json(definition_json(&report)?)))
    }

    /// Replace a saved report (its owner or an administrator).
    #[oai(path = "/reports/:key", method = "put")]
    async fn replace(
        &self,
        auth: Bearer,
        key: Path<String>,
        body: Json<Value>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let report = service::replace(&ctx, &catalog, &key.0, body.0).await?;
        Ok(Json(definition_json(&report)?))
    }

    /// Delete a saved report (its owner or an administrator).
    #[oai(path = "/reports/:key", method = "delete")]
    async fn remove(&self, auth: Bearer, key: Path<String>) -> ApiResult<Removed> {
        let ctx = auth.0;
        service::remove(&ctx, &key.0).await?;
        Ok(Removed::Done)
    }

    /// A saved report's definition (what the report builder edits).
    #[oai(path = "/reports/:key", method = "get")]
    async fn definition(&self, auth: Bearer, key: Path<String>) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let report = service::saved(&ctx, &catalog, &key.0).await?;
        Ok(Json(
            serde_json::to_value(report).map_err(|e| Error::Internal(e.to_string()))?,
        ))
    }

    /// Run a saved report over the caller's rows: `format=json` (default), `csv` or
    /// `xlsx`.
    #[oai(path = "/reports/:key/run", method = "get")]
    async fn run_saved(
        &self,
        auth: Bearer,
        key: Path<String>,
        format: Query<Option<String>>,
    ) -> ApiResult<ReportFile> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let report = service::saved(&ctx, &catalog, &key.0).await?;
        let output = service::run(&ctx, &catalog, &report).await?;
        Ok(file(&output, format.0.as_deref())?)
    }

    /// Run an ad hoc definition (the report builder's preview): the body is a report
    /// as in the metadata package, `key` optional; problems answer 422 with their
    /// paths. `format` as for saved reports.
    #[oai(path = "/reports/run", method = "post")]
    async fn run_adhoc(
        &self,
        auth: Bearer,
        body: Json<Value>,
        format: Query<Option<String>>,
    ) -> ApiResult<ReportFile> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let report = service::parse_adhoc(&catalog, body.0)?;
        let output = service::run(&ctx, &catalog, &report).await?;
        Ok(file(&output, format.0.as_deref())?)
    }

    /// The dashboards the caller may view: `{items: [{key, label, reports}]}`.
    #[oai(path = "/dashboards", method = "get")]
    async fn dashboards(&self, auth: Bearer) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        Ok(Json(
            json!({"items": service::dashboards(&ctx, &catalog).await}),
        ))
    }

    /// A dashboard with its reports run for the caller: `{key, label, reports: [{key,
    /// result} or {key, error}]}`.
    #[oai(path = "/dashboards/:key", method = "get")]
    async fn dashboard(&self, auth: Bearer, key: Path<String>) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        Ok(Json(service::dashboard(&ctx, &catalog, &key.0).await?))
    }
}
