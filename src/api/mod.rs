//! The HTTP API: poem-openapi endpoints, thin — each parses, asks the gate, calls a
//! module and maps errors. `server` assembles them with the docs and error handling.

mod auth;
pub mod error;
mod files;
mod meta;
mod openapi;
mod plugins;
mod print;
mod records;
mod reports;
mod schedules;
mod search;
mod security;
mod transfer;
mod users;
mod views;
mod webhooks;
mod workflow;

use std::sync::Arc;

use poem::middleware::{CatchPanic, CookieJarManager};
use poem::web::{Data, Html, Json};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, get, handler};
use poem_openapi::{OpenApiService, Tags};
use serde_json::Value;

use crate::auth::Context;
use crate::tenant::Tenants;

/// Request bodies above this size are refused with 413: the largest attachment file.
pub const MAX_BODY_BYTES: usize = crate::store::files::MAX_FILE_BYTES;

/// Spreadsheets to import may be larger (about 300,000 rows of 15 columns as CSV);
/// larger files go through `metacrm import`.
pub const MAX_IMPORT_BYTES: usize = 64 << 20;

#[derive(Tags)]
enum Tag {
    /// Logging in and out
    Auth,
    /// The tenant's metadata package
    Meta,
    /// Records of the tenant's entities
    Records,
    /// People
    Users,
    /// Stages, approvals and notifications
    Workflow,
    /// Full-text search and duplicate checks
    Search,
    /// Reports and dashboards
    Reports,
    /// Webhooks, scheduled rules and their logs
    Automation,
}

type Apis = (
    auth::AuthApi,
    meta::MetaApi,
    records::RecordsApi,
    users::UsersApi,
    workflow::WorkflowApi,
    search::SearchApi,
    reports::ReportsApi,
    views::ViewsApi,
    files::FilesApi,
    transfer::TransferApi,
    print::PrintApi,
    webhooks::WebhooksApi,
    schedules::SchedulesApi,
    plugins::PluginsApi,
);

fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            auth::AuthApi,
            meta::MetaApi,
            records::RecordsApi,
            users::UsersApi,
            workflow::WorkflowApi,
            search::SearchApi,
            reports::ReportsApi,
            views::ViewsApi,
            files::FilesApi,
            transfer::TransferApi,
            print::PrintApi,
            webhooks::WebhooksApi,
            schedules::SchedulesApi,
            plugins::PluginsApi,
        ),
        "metacrm",
        env!("CARGO_PKG_VERSION"),
    )
    .server("/api")
}

/// The fixed part of the OpenAPI document.
struct FixedSpec(String);

/// `/api/openapi.json`: the fixed API, plus the caller's tenant entities when the
/// request carries a valid bearer token.
#[handler]
async fn openapi_json(
    req: &Request,
    tenants: Data<&Arc<Tenants>>,
    spec: Data<&Arc<FixedSpec>>,
) -> Json<Value> {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    if let Some(token) = token
        && let Ok(ctx) = Context::from_token(&tenants, token).await
    {
        let catalog = ctx.tenant.catalog().await;
        return Json(openapi::tenant_document(&spec.0.0, &catalog));
    }
    Json(serde_json::from_str(&spec.0.0).expect("poem-openapi emits JSON"))
}

/// Refuses bodies over [`MAX_BODY_BYTES`] ([`MAX_IMPORT_BYTES`] for imports) with
/// 413, whether or not they announce their length.
async fn limit_body<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let limit = match req.uri().path().starts_with("/api/import/") {
        true => MAX_IMPORT_BYTES,
        false => MAX_BODY_BYTES,
    };
    let too_large = || crate::error::Error::PayloadTooLarge { limit };
    let announced = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match announced {
        Some(length) if length > limit => return Err(too_large().into()),
        Some(_) => {}
        None => {
            let body = req
                .take_body()
                .into_bytes_limit(limit)
                .await
                .map_err(|_| too_large())?;
            req.set_body(body);
        }
    }
    Ok(next.call(req).await?.into_response())
}

/// `/healthz`: the process answers (liveness).
#[handler]
fn healthz() -> &'static str {
    "ok"
}

/// `/readyz`: 200 when the database and the search backend answer, 503 naming what
/// does not.
#[handler]
async fn readyz(tenants: Data<&Arc<Tenants>>) -> Response {
    let (ready, body) = crate::observe::readiness(&tenants).await;
    let status = if ready {
        poem::http::StatusCode::OK
    } else {
        poem::http::StatusCode::SERVICE_UNAVAILABLE
    };
    Json(body).with_status(status).into_response()
}

/// `/metrics`: Prometheus text format.
#[handler]
async fn metrics(tenants: Data<&Arc<Tenants>>) -> Response {
    crate::observe::render(&tenants)
        .await
        .with_content_type("text/plain; version=0.0.4")
        .into_response()
}

/// The whole HTTP application: the web pages, the API under `/api`, its docs.
pub fn server(tenants: Arc<Tenants>) -> impl Endpoint {
    let service = service();
    let spec = Arc::new(FixedSpec(service.spec()));
    let docs = Html(service.swagger_ui_html());
    crate::web::routes()
        .at("/api/openapi.json", get(openapi_json))
        .nest(
            "/api",
            service
                .around(crate::web::api_cookie_auth)
                .around(crate::web::i18n::localize_api_errors),
        )
        .at(
            "/docs",
            get(poem::endpoint::make_sync(move |_| docs.0.clone())).map_to_response(),
        )
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics))
        .data(tenants)
        .data(spec)
        .around(limit_body)
        .with(CookieJarManager::new())
        .with(CatchPanic::new())
        .catch_all_error(error::to_contract)
        // Outermost, so that it sees every answer in its final form.
        .around(crate::observe::around)
}
