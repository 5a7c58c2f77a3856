//! Attachment files, content-addressed: each distinct content is stored once, as the
//! object `<tenant>/<first two hex digits>/<SHA-256>` in the platform's object store
//! (local files under `<data>/files` by default, an S3-compatible bucket when
//! configured), and recorded in the tenant's `files` table with its size, the type
//! sniffed from its bytes, and when it was last uploaded and attached. A record's
//! `attachment` field holds `[{file, name, size, content_type}]`; a file is only ever
//! read through a record its reader may read (`api/files.rs`). Files are never deleted
//! with a record: a record in the recycle bin keeps its attachments. A file never
//! attached to any record is unreachable; the files sweep (a background job) removes
//! it once it is older than [`UNATTACHED_GRACE_HOURS`].

use std::collections::BTreeSet;
use std::path::Path as FsPath;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::db::{Platform, TenantDb};
use crate::store::value::format_datetime;

const TABLE: &str = "files";
/// Largest file one upload may carry; the API's request body limit follows it.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;
/// Longest file name kept, in characters.
const MAX_NAME: usize = 200;
/// How long an upload may wait to be attached before the sweep removes it: long
/// enough for a user filling a form over lunch, short enough not to hoard.
pub const UNATTACHED_GRACE_HOURS: i64 = 24;

/// The platform's object store: `url` names an S3-compatible bucket
/// (`s3://bucket/optional/prefix`, credentials, region and endpoint from the usual
/// `AWS_*` variables), or `None` for local files under `<data_dir>/files`.
pub fn open_object_store(url: Option<&str>, data_dir: &FsPath) -> Result<Arc<dyn ObjectStore>> {
    let bad = |e: object_store::Error| Error::BadRequest(format!("file store: {e}"));
    match url {
        None => {
            let root = data_dir.join("files");
            std::fs::create_dir_all(&root)
                .map_err(|e| Error::Internal(format!("cannot create {}: {e}", root.display())))?;
            Ok(Arc::new(
                LocalFileSystem::new_with_prefix(root).map_err(bad)?,
            ))
        }
        Some(url) if url.starts_with("s3://") => {
            let bucket = AmazonS3Builder::from_env()
                .with_url(url)
                .build()
                .map_err(bad)?;
            let prefix = url["s3://".len()..]
                .split_once('/')
                .map(|(_, prefix)| prefix.trim_matches('/'))
                .unwrap_or_default();
            Ok(if prefix.is_empty() {
                Arc::new(bucket)
            } else {
                Arc::new(PrefixStore::new(bucket, prefix))
            })
        }
        Some(url) => Err(Error::BadRequest(format!(
            "METACRM_FILE_STORE must be an s3:// URL (local files are used when it is unset), got {url:?}"
        ))),
    }
}

/// One tenant's files.
pub struct FileStore {
    objects: Arc<dyn ObjectStore>,
    tenant: String,
}

/// Whether `text` is a SHA-256 in lowercase hex (what a stored file is named).
pub fn is_file_id(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The name a file is kept under: its last path component, trimmed, at most
/// [`MAX_NAME`] characters, without control characters.
fn clean_name(name: &str) -> Result<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect::<String>()
        .trim()
        .to_string();
    if clean.is_empty() || clean == "." || clean == ".." {
        return Err(Error::field("name", "give the file's name"));
    }
    Ok(clean)
}

/// The MIME type of `bytes`, from their magic numbers; UTF-8 text is `text/plain`,
/// anything else unknown `application/octet-stream`.
fn sniff(bytes: &[u8]) -> String {
    match infer::get(bytes) {
        Some(kind) => kind.mime_type().to_string(),
        None if std::str::from_utf8(bytes).is_ok() => "text/plain; charset=utf-8".to_string(),
        None => "application/octet-stream".to_string(),
    }
}

fn store_error(e: object_store::Error) -> Error {
    Error::Internal(format!("file store: {e}"))
}

impl FileStore {
    pub fn for_tenant(platform: &Platform, tenant: &str) -> FileStore {
        FileStore {
            objects: platform.object_store(),
            tenant: tenant.to_string(),
        }
    }

    fn location(&self, file: &str) -> ObjectPath {
        ObjectPath::from(format!("{}/{}/{file}", self.tenant, &file[..2]))
    }

    /// Stores `bytes` uploaded by `user` as `name`; answers the attachment item
    /// `{file, name, size, content_type}` to put in an `attachment` field.
    pub async fn put(&self, db: &TenantDb, name: &str, bytes: &[u8], user: i64) -> Result<Value> {
        let name = clean_name(name)?;
        if bytes.is_empty() {
            return Err(Error::field("file", "the file is empty"));
        }
        if bytes.len() > MAX_FILE_BYTES {
            return Err(Error::PayloadTooLarge {
                limit: MAX_FILE_BYTES,
            });
        }
        let file: String = Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let content_type = sniff(bytes);
        // The row first, its upload time renewed, then the object: a sweep running
        // meanwhile either finds the row fresh and leaves it, or removed it (object
        // included, under the row's lock) before the row came back.
        let insert = Query::insert()
            .into_table(db.table(TABLE))
            .columns(["hash", "size", "content_type", "uploaded_by", "uploaded_at"].map(Alias::new))
            .values_panic([
                file.as_str().into(),
                (bytes.len() as i64).into(),
                content_type.as_str().into(),
                user.into(),
                Utc::now().into(),
            ])
            .on_conflict(
                OnConflict::column(Alias::new("hash"))
                    .update_column(Alias::new("uploaded_at"))
                    .to_owned(),
            )
            .to_owned();
        db.conn().execute(&insert).await?;
        // Local writes go to a temporary file renamed into place; S3 puts are atomic.
        self.objects
            .put(&self.location(&file), bytes.to_vec().into())
            .await
            .map_err(store_error)?;
        Ok(json!({"file": file, "name": name, "size": bytes.len(), "content_type": content_type}))
    }

    /// Puts back the contents of file `file` (a restore), refusing bytes whose hash is
    /// not the file's id.
    pub async fn restore(&self, file: &str, bytes: Vec<u8>) -> Result<()> {
        let hash: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !is_file_id(file) || hash != file {
            return Err(Error::BadRequest(format!(
                "file {file:?}: its contents do not match its hash"
            )));
        }
        self.objects
            .put(&self.location(file), bytes.into())
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// The bytes of a stored file.
    pub async fn read(&self, file: &str) -> Result<Vec<u8>> {
        let not_found = || Error::not_found(format!("file {file:?}"));
        if !is_file_id(file) {
            return Err(not_found());
        }
        match self.objects.get(&self.location(file)).await {
            Ok(found) => Ok(found.bytes().await.map_err(store_error)?.to_vec()),
            Err(object_store::Error::NotFound { .. }) => Err(not_found()),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Removes the files never attached to a record and uploaded before `cutoff`,
    /// except those in `keep` (the letterhead's logo); answers their ids. Each row is
    /// deleted, and its object with it, in one transaction: an attach or upload of
    /// the same file waits for it, then finds it gone (and uploads it anew).
    pub async fn sweep(
        &self,
        db: &TenantDb,
        cutoff: DateTime<Utc>,
        keep: &BTreeSet<String>,
    ) -> Result<Vec<String>> {
        let mut swept = Vec::new();
        for item in unattached(db, cutoff).await? {
            let file = item["file"].as_str().unwrap_or_default().to_string();
            if keep.contains(&file) {
                continue;
            }
            let txn = db.begin_write().await?;
            let delete = Query::delete()
                .from_table(db.table(TABLE))
                .and_where(Expr::col(Alias::new("hash")).eq(file.as_str()))
                .and_where(Expr::col(Alias::new("attached_at")).is_null())
                .and_where(Expr::col(Alias::new("uploaded_at")).lt(cutoff))
                .to_owned();
            if txn.execute(&delete).await?.rows_affected() == 0 {
                continue;
            }
            match self.objects.delete(&self.location(&file)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error(e)),
            }
            txn.commit().await?;
            swept.push(file);
        }
        Ok(swept)
    }
}

/// Which of `files` this tenant has stored.
pub async fn stored(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    files: &BTreeSet<String>,
) -> Result<BTreeSet<String>> {
    if files.is_empty() {
        return Ok(BTreeSet::new());
    }
    let select = Query::select()
        .column(Alias::new("hash"))
        .from(db.table(TABLE))
        .and_where(Expr::col(Alias::new("hash")).is_in(files.iter().map(String::as_str)))
        .to_owned();
    conn.query_all(&select)
        .await?
        .iter()
        .map(|row| Ok(row.try_get::<String>("", "hash")?))
        .collect()
}

/// Marks stored `files` attached now (so the clean-up of unattached uploads keeps
/// them): called by the record write that attaches them, in its transaction.
pub async fn attach(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    files: &BTreeSet<String>,
) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let update = Query::update()
        .table(db.table(TABLE))
        .value(Alias::new("attached_at"), Utc::now())
        .and_where(Expr::col(Alias::new("hash")).is_in(files.iter().map(String::as_str)))
        .to_owned();
    conn.execute(&update).await?;
    Ok(())
}

/// The files never attached to a record and uploaded before `cutoff`, oldest first:
/// `{file, size, content_type, uploaded_by, uploaded_at}`.
pub async fn unattached(db: &TenantDb, cutoff: DateTime<Utc>) -> Result<Vec<Value>> {
    let select = Query::select()
        .columns(["hash", "size", "content_type", "uploaded_by", "uploaded_at"].map(Alias::new))
        .from(db.table(TABLE))
        .and_where(Expr::col(Alias::new("attached_at")).is_null())
        .and_where(Expr::col(Alias::new("uploaded_at")).lt(cutoff))
        .order_by(Alias::new("uploaded_at"), Order::Asc)
        .to_owned();
    db.conn()
        .query_all(&select)
        .await?
        .iter()
        .map(|row| {
            let uploaded: DateTime<Utc> = row.try_get("", "uploaded_at")?;
            Ok(json!({
                "file": row.try_get::<String>("", "hash")?,
                "size": row.try_get::<i64>("", "size")?,
                "content_type": row.try_get::<String>("", "content_type")?,
                "uploaded_by": row.try_get::<i64>("", "uploaded_by")?,
                "uploaded_at": format_datetime(uploaded),
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_folders() {
        assert_eq!(clean_name("C:\\Users\\x\\合同.pdf").unwrap(), "合同.pdf");
        assert_eq!(clean_name("../../etc/passwd").unwrap(), "passwd");
        assert!(clean_name("  ").is_err());
        assert!(clean_name("a/..").is_err());
    }

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
        assert_eq!(sniff("纯文本".as_bytes()), "text/plain; charset=utf-8");
        assert_eq!(sniff(&[0, 159, 146, 150]), "application/octet-stream");
        assert!(is_file_id(&"a".repeat(64)));
        assert!(!is_file_id("../secret"));
    }
}
