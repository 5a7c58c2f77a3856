//! `/api/data/{entity}/{id}/print/{format}`: a record as a printed document.

use std::sync::Arc;

use base64::Engine;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Html;
use poem_openapi::{ApiResponse, OpenApi};
use sha2::{Digest, Sha256};

use super::Tag;
use super::error::ApiResult;
use super::security::Bearer;
use crate::store::files::FileStore;
use crate::tenant::Tenants;

#[derive(ApiResponse)]
enum Printed {
    /// The document as print-ready A4 HTML.
    #[oai(status = 200)]
    Page(
        Html<String>,
        #[oai(header = "Content-Security-Policy")] String,
        #[oai(header = "X-Content-Type-Options")] String,
    ),
}

/// The page loads nothing and runs no script but its print button's handler, whatever
/// HTML a print format holds.
fn content_security_policy() -> String {
    let handler = Sha256::digest(crate::print::PRINT_HANDLER.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(handler);
    format!(
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; \
         script-src 'unsafe-hashes' 'sha256-{hash}'; base-uri 'none'; form-action 'none'"
    )
}

pub struct PrintApi;

#[OpenApi(tag = "Tag::Records")]
impl PrintApi {
    /// A record rendered by one of its entity's print formats (`default` is built in):
    /// A4 HTML with the company's letterhead, the record, its child records with totals,
    /// amounts in figures and in capitals (大写). Needs read access to the record.
    #[oai(path = "/data/:entity/:id/print/:format", method = "get")]
    async fn print(
        &self,
        auth: Bearer,
        tenants: Data<&Arc<Tenants>>,
        entity: Path<String>,
        id: Path<i64>,
        format: Path<String>,
    ) -> ApiResult<Printed> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let files = FileStore::for_tenant(&tenants.platform, &ctx.tenant.key);
        let html = crate::print::render(&ctx, &catalog, &files, &entity.0, id.0, &format.0).await?;
        Ok(Printed::Page(
            Html(html),
            content_security_policy(),
            "nosniff".into(),
        ))
    }
}
