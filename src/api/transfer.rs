//! `/api/import`: spreadsheet imports and their jobs.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::types::multipart::Upload;
use poem_openapi::{ApiRequest, ApiResponse, Multipart, OpenApi};
use serde_json::{Value, json};

use super::Tag;
use super::error::ApiResult;
use super::security::Bearer;
use crate::error::Error;
use crate::store::records::SortSpec;
use crate::tenant::Tenants;
use crate::transfer::export::{self, ExportRequest, Format};
use crate::transfer::import::{self, ImportOptions};
use crate::transfer::jobs;
use crate::transfer::sheet::Source;

#[derive(Multipart)]
struct ImportForm {
    /// The spreadsheet.
    file: Upload,
    /// Column header → field key, as JSON (overrides the query's `mapping`).
    mapping: Option<String>,
}

#[derive(ApiRequest)]
enum ImportBody {
    /// A form upload with the file in `file`.
    Form(ImportForm),
    /// The file's bytes as the body (text/csv, the XLSX type, or any other).
    Raw(Binary<Vec<u8>>),
}

#[derive(ApiResponse)]
enum ExportFile {
    /// The list as CSV (UTF-8 with a BOM, for Excel).
    #[oai(status = 200, content_type = "text/csv; charset=utf-8")]
    Csv(
        Binary<Vec<u8>>,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "X-Export-Rows")] u64,
    ),
    /// The list as XLSX.
    #[oai(
        status = 200,
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )]
    Xlsx(
        Binary<Vec<u8>>,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "X-Export-Rows")] u64,
    ),
}

#[derive(ApiResponse)]
enum Imported {
    /// The import ran (or, with `dry_run`, was checked): `{created, updated, errors:
    /// [{row, column, message}], …}`.
    #[oai(status = 200)]
    Done(Json<Value>),
    /// Started in the background (`background=true`): `{job, status}`; follow it at
    /// `GET /api/import/jobs/{job}`.
    #[oai(status = 202)]
    Started(Json<Value>),
}

fn parse_mapping(text: &str) -> Result<std::collections::BTreeMap<String, String>, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::BadRequest(format!(
            "mapping must be a JSON object of column header → field key: {e}"
        ))
    })
}

pub struct TransferApi;

#[OpenApi(tag = "Tag::Records")]
impl TransferApi {
    /// Import a spreadsheet (CSV in UTF-8, UTF-8 with BOM or GB18030; XLSX; XLS) into
    /// an entity; needs the `import` right. Columns map to fields by key or label, or
    /// by `mapping` (`{"客户全称": "name", "备注2": ""}`). Rows with errors are not
    /// imported and are listed with their row (from 1 after the header) and column.
    /// `dry_run` checks everything and changes nothing; `upsert_on` (a unique field or
    /// `id`) updates the records it matches; `duplicates` is `report` (default),
    /// `skip` or `off` (administrators). The same file with the same options resumes
    /// an interrupted import. At most 64 MiB.
    #[oai(path = "/import/:entity", method = "post")]
    #[allow(clippy::too_many_arguments)]
    async fn import(
        &self,
        auth: Bearer,
        tenants: Data<&Arc<Tenants>>,
        entity: Path<String>,
        dry_run: Query<Option<bool>>,
        upsert_on: Query<Option<String>>,
        duplicates: Query<Option<String>>,
        mapping: Query<Option<String>>,
        background: Query<Option<bool>>,
        /// The file's name, kept with the job (forms carry their own).
        name: Query<Option<String>>,
        body: ImportBody,
    ) -> ApiResult<Imported> {
        let ctx = auth.0;
        let (bytes, file_name, form_mapping) = match body {
            ImportBody::Form(form) => {
                let name = form.file.file_name().map(str::to_string);
                let bytes =
                    form.file.into_vec().await.map_err(|e| {
                        Error::BadRequest(format!("the upload cannot be read: {e}"))
                    })?;
                (bytes, name, form.mapping)
            }
            ImportBody::Raw(bytes) => (bytes.0, None, None),
        };
        let mapping = match form_mapping.or(mapping.0) {
            Some(text) => parse_mapping(&text)?,
            None => Default::default(),
        };
        let options = ImportOptions {
            dry_run: dry_run.0.unwrap_or(false),
            upsert_on: upsert_on.0.filter(|k| !k.is_empty()),
            mapping,
            duplicates: match duplicates.0 {
                Some(policy) => policy.parse()?,
                None => Default::default(),
            },
        };
        let file_name = file_name.or(name.0).unwrap_or_else(|| "upload".to_string());
        let source = Source::Bytes(bytes.into());
        let catalog = ctx.tenant.catalog().await;
        let background = background.0.unwrap_or(false) && !options.dry_run;
        let prepared = Arc::new(
            import::prepare(
                &ctx,
                catalog.clone(),
                &entity.0,
                source,
                &file_name,
                options,
            )
            .await?,
        );
        if background {
            let job = prepared.job();
            let tenants = tenants.0.clone();
            tokio::spawn(async move {
                if let Err(error) = prepared.run(tenants.search.clone(), &|_, _| {}).await {
                    tracing::warn!(%error, "background import failed");
                }
            });
            return Ok(Imported::Started(Json(
                json!({"job": job, "status": "running"}),
            )));
        }
        let report = prepared.run(tenants.search.clone(), &|_, _| {}).await?;
        Ok(Imported::Done(Json(json!(report))))
    }

    /// Export a filtered list as CSV or XLSX (`format`, default csv); needs the
    /// `export` right, whose scope limits the rows; masked fields are left out. Cells
    /// hold what a person reads (labels, names, titles) under the fields' labels, so
    /// the file imports back. `filter` is a filter tree as JSON; `sort` is keys
    /// separated by commas (`-` for descending). At most 100,000 rows (400 beyond).
    #[oai(path = "/export/:entity", method = "get")]
    async fn export(
        &self,
        auth: Bearer,
        entity: Path<String>,
        format: Query<Option<String>>,
        filter: Query<Option<String>>,
        sort: Query<Option<String>>,
    ) -> ApiResult<ExportFile> {
        let ctx = auth.0;
        let filter = match filter.0.filter(|f| !f.is_empty()) {
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| Error::BadRequest(format!("filter is not JSON: {e}")))?,
            ),
            None => None,
        };
        let request = ExportRequest {
            filter,
            sort: sort
                .0
                .unwrap_or_default()
                .split(',')
                .filter(|k| !k.trim().is_empty())
                .map(|k| SortSpec::Key(k.trim().to_string()))
                .collect(),
            format: format.0.as_deref().unwrap_or("csv").parse()?,
            max_rows: Some(export::MAX_HTTP_ROWS),
        };
        let catalog = ctx.tenant.catalog().await;
        let exported = export::export(&ctx, &catalog, &entity.0, &request).await?;
        let disposition = super::files::content_disposition(&exported.file_name);
        Ok(match request.format {
            Format::Csv => ExportFile::Csv(Binary(exported.bytes), disposition, exported.rows),
            Format::Xlsx => ExportFile::Xlsx(Binary(exported.bytes), disposition, exported.rows),
        })
    }

    /// The caller's import jobs, newest first (an administrator's: everyone's):
    /// `{items: [job]}`.
    #[oai(path = "/import/jobs", method = "get")]
    async fn jobs(&self, auth: Bearer) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let everyone = ctx.require_admin().await.is_ok();
        let items = jobs::list(&ctx.tenant.db, (!everyone).then_some(ctx.user.id), 50).await?;
        Ok(Json(json!({ "items": items })))
    }

    /// One import job with its progress: `{id, entity, status (running, done, failed),
    /// rows_total, rows_done, created, updated, unchanged, skipped, errors, duplicates,
    /// message, …}`. Only its starter and administrators see it.
    #[oai(path = "/import/jobs/:id", method = "get")]
    async fn job(&self, auth: Bearer, id: Path<i64>) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let job = jobs::get(&ctx.tenant.db, id.0).await?;
        if job.started_by != ctx.user.id && ctx.require_admin().await.is_err() {
            return Err(Error::not_found(format!("import job {}", id.0)).into());
        }
        Ok(Json(job.to_json()))
    }
}
