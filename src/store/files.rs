//! Attachment files, content-addressed: each distinct content is stored once, as
//! `<data>/files/<tenant>/<first two hex digits>/<SHA-256>`, and recorded in the
//! tenant's `files` table with its size and the type sniffed from its bytes. A record's
//! `attachment` field holds `[{file, name, size, content_type}]`; a file is only ever
//! read through a record its reader may read (`api/files.rs`). Files are never deleted
//! with a record: a record in the recycle bin keeps its attachments.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::db::{Platform, TenantDb};

const TABLE: &str = "files";
/// Largest file one upload may carry; the API's request body limit follows it.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;
/// Longest file name kept, in characters.
const MAX_NAME: usize = 200;

/// One tenant's file folder.
pub struct FileStore {
    root: PathBuf,
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

impl FileStore {
    pub fn for_tenant(platform: &Platform, tenant: &str) -> FileStore {
        FileStore {
            root: platform.data_dir().join("files").join(tenant),
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.root.join(&file[..2]).join(file)
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
        let path = self.path(&file);
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            let folder = path.parent().expect("a file path has a folder");
            let io = |e: std::io::Error| Error::Internal(format!("storing a file: {e}"));
            tokio::fs::create_dir_all(folder).await.map_err(io)?;
            // Written aside, then renamed: a crash never leaves half a file under its name.
            let partial = folder.join(format!("{file}.{}.part", std::process::id()));
            tokio::fs::write(&partial, bytes).await.map_err(io)?;
            tokio::fs::rename(&partial, &path).await.map_err(io)?;
        }
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
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        db.conn().execute(&insert).await?;
        Ok(json!({"file": file, "name": name, "size": bytes.len(), "content_type": content_type}))
    }

    /// The bytes of a stored file.
    pub async fn read(&self, file: &str) -> Result<Vec<u8>> {
        if !is_file_id(file) {
            return Err(Error::not_found(format!("file {file:?}")));
        }
        tokio::fs::read(self.path(file))
            .await
            .map_err(|_| Error::not_found(format!("file {file}")))
    }
}

/// Which of `files` this tenant has stored.
pub async fn known(
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
