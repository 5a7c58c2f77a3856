//! `/api/files`: uploading attachment files, and reading them through the record
//! that holds them.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, OpenApi};
use serde_json::Value;

use super::Tag;
use super::error::ApiResult;
use super::security::Bearer;
use crate::error::Error;
use crate::meta::{Action, FieldType};
use crate::store::files::{self, FileStore};
use crate::store::records::Records;
use crate::tenant::Tenants;

#[derive(ApiResponse)]
enum Download {
    /// The file, as a download.
    #[oai(status = 200, content_type = "application/octet-stream")]
    File(
        Binary<Vec<u8>>,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "X-Content-Type-Options")] String,
    ),
}

/// `attachment` with the name for every browser: an ASCII fallback and the UTF-8 name
/// (RFC 6266 `filename*`).
pub(super) fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

pub struct FilesApi;

#[OpenApi(tag = "Tag::Records")]
impl FilesApi {
    /// Upload a file (the raw bytes as the body, its name in `name`); answers the
    /// attachment item `{file, name, size, content_type}` to put in a record's
    /// `attachment` field. The type is sniffed from the bytes; at most 8 MiB (413).
    #[oai(path = "/files", method = "post")]
    async fn upload(
        &self,
        auth: Bearer,
        tenants: Data<&Arc<Tenants>>,
        name: Query<String>,
        body: Binary<Vec<u8>>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        let store = FileStore::for_tenant(&tenants.platform, &ctx.tenant.key);
        let item = store
            .put(&ctx.tenant.db, &name.0, &body.0, ctx.user.id)
            .await?;
        Ok(Json(item))
    }

    /// Uploads never attached to a record (administrators): unreachable, they are
    /// removed by the files sweep (a background job) once older than 24 hours.
    /// `older_than_hours` (default 0) lists only those uploaded that long ago.
    #[oai(path = "/files/unattached", method = "get")]
    async fn unattached(
        &self,
        auth: Bearer,
        older_than_hours: Query<Option<u32>>,
    ) -> ApiResult<Json<Value>> {
        let ctx = auth.0;
        ctx.require_admin().await?;
        let cutoff = crate::clock::now()
            - chrono::Duration::hours(i64::from(older_than_hours.0.unwrap_or(0)));
        let files = files::unattached(&ctx.tenant.db, cutoff).await?;
        Ok(Json(serde_json::json!({ "files": files })))
    }

    /// Download a file held by an `attachment` field of a record the caller may read
    /// (404 for anyone else, and for a field masked from them). Always served as a
    /// download, never shown inline.
    #[oai(path = "/data/:entity/:id/files/:file", method = "get")]
    async fn download(
        &self,
        auth: Bearer,
        tenants: Data<&Arc<Tenants>>,
        entity: Path<String>,
        id: Path<i64>,
        file: Path<String>,
    ) -> ApiResult<Download> {
        let ctx = auth.0;
        let catalog = ctx.tenant.catalog().await;
        let entity = ctx.entity(&catalog, &entity.0)?;
        let access = ctx.authorize(entity, Action::Read).await?;
        let record = Records::new(&ctx.tenant.db, &catalog, entity)
            .get(id.0, &access)
            .await?;
        let item = entity
            .def
            .fields
            .iter()
            .filter(|f| f.field_type == FieldType::Attachment)
            .filter_map(|f| record.get(&f.key)?.as_array())
            .flatten()
            .find(|item| item["file"] == file.0.as_str())
            .cloned()
            .ok_or_else(|| Error::not_found(format!("file {} on this record", file.0)))?;
        let store = FileStore::for_tenant(&tenants.platform, &ctx.tenant.key);
        let bytes = store.read(&file.0).await?;
        let name = item["name"].as_str().unwrap_or("file");
        Ok(Download::File(
            Binary(bytes),
            content_disposition(name),
            "nosniff".to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn names_survive_in_every_browser() {
        assert_eq!(
            content_disposition("合同 v2.pdf"),
            "attachment; filename=\"__ v2.pdf\"; filename*=UTF-8''%E5%90%88%E5%90%8C%20v2%2Epdf"
        );
        assert_eq!(
            content_disposition("a\"b.txt"),
            "attachment; filename=\"a_b.txt\"; filename*=UTF-8''a%22b%2Etxt"
        );
    }
}
