//! Backups of one tenant (`metacrm backup` / `metacrm restore`).
//!
//! A backup is a zip file:
//! - `manifest.json`: what it holds ([`Manifest`]);
//! - `tables/<table>.jsonl`: every row of every table of the tenant's namespace, one
//!   JSON object per line (on PostgreSQL as `row_to_json` writes it, so that
//!   `json_populate_recordset` reads back exactly the stored values; on SQLite each
//!   value with its storage class), all read in one read-only snapshot transaction, so
//!   a backup taken while the server runs is consistent;
//! - `files/<sha256>`: the contents of the attachment files.
//!
//! A restore creates a fresh tenant, replays the metadata versions in order (the same
//! publishes build the same tables, archived columns included), replaces every table's
//! rows with the backup's in one transaction, puts the files back (checking each one's
//! hash) and rebuilds the search index. Only the search index's own bookkeeping is left
//! out: it describes indexes the new tenant does not have yet.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use base64::Engine;
use chrono::Utc;
use futures::StreamExt;
use sea_orm::sqlx::{Row, TypeInfo, ValueRef};
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseTransaction, DbBackend, IsolationLevel, Statement,
    StreamTrait, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use metacrm_migrations::{MigratorTrait, TenantMigrator};

use crate::error::{Error, Result};
use crate::store::db::{Backend, TenantDb};
use crate::store::files::FileStore;
use crate::tenant::Tenants;

/// The backup format this build writes and reads.
const FORMAT: u32 = 1;
/// Tables a backup leaves out: migration bookkeeping (the restoring build migrates the
/// new namespace itself) and the search indexes' bookkeeping (rebuilt after restore).
const SKIPPED: [&str; 2] = ["seaql_migrations", "search_indexes"];
/// Rows inserted per statement on restore.
const BATCH: usize = 500;

/// What a backup holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub tenant: String,
    pub name: String,
    /// `postgres` or `sqlite`: a backup restores onto the backend it was taken from.
    pub backend: String,
    pub created_at: String,
    /// The tenant migrations its tables were at.
    pub migrations: Vec<String>,
    pub tables: Vec<TableCount>,
    pub files: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableCount {
    pub table: String,
    pub rows: u64,
}

impl Manifest {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::BadRequest(format!("{}: {e}", path.display()))
}

fn zip_error(path: &Path) -> impl Fn(zip::result::ZipError) -> Error + '_ {
    move |e| Error::BadRequest(format!("{}: {e}", path.display()))
}

/// Writes a backup of tenant `key` to `out`, calling `progress(table, rows)` after
/// each table.
pub async fn backup(
    tenants: &Tenants,
    key: &str,
    out: &Path,
    progress: &dyn Fn(&str, u64),
) -> Result<Manifest> {
    let tenant = tenants.get(key).await?;
    let db = &tenant.db;
    let file = std::fs::File::create(out).map_err(io_error(out))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);

    // One snapshot for every table: repeatable read on PostgreSQL; on SQLite a
    // deferred transaction reads one snapshot from its first read on.
    let txn = match db.backend() {
        Backend::Postgres => {
            db.conn()
                .begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await?
        }
        Backend::Sqlite => db.conn().begin().await?,
    };
    let mut tables = Vec::new();
    for table in table_names(&txn, db).await? {
        if SKIPPED.contains(&table.as_str()) {
            continue;
        }
        zip.start_file(format!("tables/{table}.jsonl"), options)
            .map_err(zip_error(out))?;
        let rows = write_rows(&txn, db, &table, &mut zip).await?;
        progress(&table, rows);
        tables.push(TableCount { table, rows });
    }
    let migrations = migrations(&txn, db).await?;
    let hashes: Vec<String> = query_strings(&txn, db, "SELECT hash FROM {files}").await?;
    txn.commit().await?;

    // File contents never change under a hash, so reading them after the snapshot is
    // safe; one removed since (an unattached upload swept) is reported, not fatal.
    let store = FileStore::for_tenant(&tenants.platform, key);
    let mut files = 0;
    for hash in &hashes {
        match store.read(hash).await {
            Ok(bytes) => {
                zip.start_file(format!("files/{hash}"), options)
                    .map_err(zip_error(out))?;
                zip.write_all(&bytes).map_err(io_error(out))?;
                files += 1;
            }
            Err(Error::NotFound(_)) => {
                tracing::warn!(tenant = %key, file = %hash, "file gone since the snapshot; not in the backup")
            }
            Err(error) => return Err(error),
        }
    }
    let manifest = Manifest {
        format: FORMAT,
        tenant: key.to_string(),
        name: tenants.name(key).await?,
        backend: backend_name(db.backend()).to_string(),
        created_at: crate::store::value::format_datetime(Utc::now()),
        migrations,
        tables,
        files,
    };
    zip.start_file("manifest.json", options)
        .map_err(zip_error(out))?;
    zip.write_all(&serde_json::to_vec_pretty(&manifest).expect("manifest serializes"))
        .map_err(io_error(out))?;
    zip.finish()
        .map_err(zip_error(out))?
        .flush()
        .map_err(io_error(out))?;
    Ok(manifest)
}

/// The tables of the tenant's namespace.
async fn table_names(txn: &DatabaseTransaction, db: &TenantDb) -> Result<Vec<String>> {
    match db.schema() {
        Some(schema) => {
            let rows = txn
                .query_all_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT table_name::text AS name FROM information_schema.tables \
                     WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1",
                    [schema.into()],
                ))
                .await?;
            rows.iter().map(|r| Ok(r.try_get("", "name")?)).collect()
        }
        None => {
            query_strings(
                txn,
                db,
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY 1",
            )
            .await
        }
    }
}

/// The qualified, quoted name of a table of the tenant (`"schema"."table"`).
fn qualified(db: &TenantDb, table: &str) -> String {
    match db.schema() {
        Some(schema) => format!("\"{schema}\".\"{table}\""),
        None => format!("\"{table}\""),
    }
}

/// Runs `sql` (`{files}` standing for the tenant's files table) and answers the
/// first column of every row as text.
async fn query_strings(txn: &DatabaseTransaction, db: &TenantDb, sql: &str) -> Result<Vec<String>> {
    let sql = sql.replace("{files}", &qualified(db, "files"));
    let backend = match db.backend() {
        Backend::Postgres => DbBackend::Postgres,
        Backend::Sqlite => DbBackend::Sqlite,
    };
    let rows = txn
        .query_all_raw(Statement::from_string(backend, sql))
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get_by_index::<String>(0)?))
        .collect()
}

async fn migrations(txn: &DatabaseTransaction, db: &TenantDb) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT version FROM {} ORDER BY version",
        qualified(db, "seaql_migrations")
    );
    query_strings(txn, db, &sql).await
}

/// Streams a table's rows into the open zip entry, one JSON object per line.
async fn write_rows(
    txn: &DatabaseTransaction,
    db: &TenantDb,
    table: &str,
    out: &mut impl Write,
) -> Result<u64> {
    let write = |out: &mut dyn Write, line: &[u8]| {
        out.write_all(line)
            .and_then(|_| out.write_all(b"\n"))
            .map_err(|e| Error::Internal(format!("writing the backup: {e}")))
    };
    let mut count = 0;
    match db.backend() {
        Backend::Postgres => {
            let sql = format!(
                "SELECT row_to_json(t)::text AS row FROM {} t",
                qualified(db, table)
            );
            let mut rows = txn
                .stream_raw(Statement::from_string(DbBackend::Postgres, sql))
                .await?;
            while let Some(row) = rows.next().await {
                let line: String = row?.try_get("", "row")?;
                write(out, line.as_bytes())?;
                count += 1;
            }
        }
        Backend::Sqlite => {
            let sql = format!("SELECT * FROM {}", qualified(db, table));
            let mut rows = txn
                .stream_raw(Statement::from_string(DbBackend::Sqlite, sql))
                .await?;
            while let Some(row) = rows.next().await {
                let row = row?;
                let row = row
                    .try_as_sqlite_row()
                    .ok_or_else(|| Error::Internal("a SQLite row expected".into()))?;
                let object = sqlite_row(row)?;
                write(
                    out,
                    serde_json::to_string(&object).expect("json").as_bytes(),
                )?;
                count += 1;
            }
        }
    }
    Ok(count)
}

/// A SQLite row as `{column: value}`, each value keeping its storage class: integers
/// and reals as JSON numbers (reals always with a fraction or exponent), text as
/// strings, blobs as `{"base64": …}`.
fn sqlite_row(row: &sea_orm::sqlx::sqlite::SqliteRow) -> Result<Map<String, Value>> {
    use sea_orm::sqlx::Column;
    let failed = |e: sea_orm::sqlx::Error| Error::Internal(format!("reading a row: {e}"));
    let mut object = Map::new();
    for (index, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(index).map_err(failed)?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            match raw.type_info().name() {
                "INTEGER" => Value::from(row.try_get_unchecked::<i64, _>(index).map_err(failed)?),
                "REAL" => Value::from(row.try_get_unchecked::<f64, _>(index).map_err(failed)?),
                "BLOB" => {
                    let bytes = row.try_get_unchecked::<Vec<u8>, _>(index).map_err(failed)?;
                    serde_json::json!({"base64": base64::engine::general_purpose::STANDARD.encode(bytes)})
                }
                _ => Value::from(row.try_get_unchecked::<String, _>(index).map_err(failed)?),
            }
        };
        object.insert(column.name().to_string(), value);
    }
    Ok(object)
}

/// Restores the backup in `file` as a new tenant `key` (named `name`, or as the backed
/// up tenant was), calling `progress(table, rows)` after each table.
pub async fn restore(
    tenants: &Tenants,
    file: &Path,
    key: &str,
    name: Option<&str>,
    progress: &dyn Fn(&str, u64),
) -> Result<Manifest> {
    let opened = std::fs::File::open(file).map_err(io_error(file))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(opened)).map_err(zip_error(file))?;
    let manifest: Manifest = {
        let entry = zip.by_name("manifest.json").map_err(|_| {
            Error::BadRequest(format!(
                "{}: not a metacrm backup (no manifest.json)",
                file.display()
            ))
        })?;
        serde_json::from_reader(entry).map_err(|e| {
            Error::BadRequest(format!(
                "{}: manifest.json is unreadable: {e}",
                file.display()
            ))
        })?
    };
    check_compatible(&manifest, tenants)?;

    let tenant = tenants
        .create_empty(key, name.unwrap_or(&manifest.name))
        .await?;
    let result = async {
        replay_versions(&tenant, &mut zip, file).await?;
        let db = &tenant.db;
        let txn = db.begin_write().await?;
        for table in &manifest.tables {
            let rows = restore_table(&txn, db, &table.table, &mut zip, file).await?;
            if rows != table.rows {
                return Err(Error::BadRequest(format!(
                    "{}: table {} holds {rows} rows, the manifest says {}",
                    file.display(),
                    table.table,
                    table.rows
                )));
            }
            progress(&table.table, rows);
        }
        if db.backend() == Backend::Postgres {
            reset_sequences(&txn, db).await?;
        }
        crate::auth::policy::move_domain(&txn, db, &manifest.tenant, key).await?;
        txn.commit().await?;
        restore_files(tenants, key, &mut zip, file).await?;
        // The tables now hold the backup's users, roles and policy lines.
        tenant.refresh().await?;
        crate::cluster::announce(&db.conn(), db).await?;
        crate::search::indexer::sync(&tenant, tenants.search.as_ref()).await
    }
    .await;
    match result {
        Ok(()) => Ok(manifest),
        Err(error) => {
            // All or nothing: the half-made tenant goes.
            drop(tenant);
            tenants.discard_failed_restore(key).await?;
            Err(Error::BadRequest(format!(
                "restore into tenant {key:?} failed, nothing was kept: {error}"
            )))
        }
    }
}

fn check_compatible(manifest: &Manifest, tenants: &Tenants) -> Result<()> {
    if manifest.format != FORMAT {
        return Err(Error::BadRequest(format!(
            "backup format {} is not the format {FORMAT} this version reads",
            manifest.format
        )));
    }
    let here = backend_name(tenants.platform.backend());
    if manifest.backend != here {
        return Err(Error::BadRequest(format!(
            "the backup was taken on {}; this platform runs on {here}",
            manifest.backend
        )));
    }
    let known: Vec<String> = TenantMigrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    if let Some(unknown) = manifest.migrations.iter().find(|m| !known.contains(m)) {
        return Err(Error::BadRequest(format!(
            "the backup comes from a newer metacrm (tenant migration {unknown} is unknown here); upgrade first"
        )));
    }
    Ok(())
}

/// Publishes every metadata version of the backup in order, building the tables
/// (and the archived columns) exactly as the original publishes did.
async fn replay_versions<R: Read + std::io::Seek>(
    tenant: &crate::tenant::Tenant,
    zip: &mut zip::ZipArchive<R>,
    file: &Path,
) -> Result<()> {
    let mut versions: Vec<(i64, Option<i64>, Value)> = Vec::new();
    for line in entry_lines(zip, "meta_versions", file)? {
        let row: Map<String, Value> = serde_json::from_str(&line).map_err(|e| {
            Error::BadRequest(format!(
                "{}: a meta_versions row is unreadable: {e}",
                file.display()
            ))
        })?;
        let package = row
            .get("package")
            .and_then(Value::as_str)
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "{}: a meta_versions row has no package",
                    file.display()
                ))
            })?;
        let version = row
            .get("version")
            .and_then(Value::as_i64)
            .unwrap_or_default();
        versions.push((version, row.get("author").and_then(Value::as_i64), package));
    }
    versions.sort_by_key(|(version, ..)| *version);
    for (version, author, package) in versions {
        let applied = tenant.apply(&package, author, false).await?;
        if applied.version != version {
            return Err(Error::BadRequest(format!(
                "{}: metadata version {version} replayed as version {}",
                file.display(),
                applied.version
            )));
        }
    }
    Ok(())
}

/// The lines of a table's entry.
fn entry_lines<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    table: &str,
    file: &Path,
) -> Result<Vec<String>> {
    let entry = zip
        .by_name(&format!("tables/{table}.jsonl"))
        .map_err(|_| Error::BadRequest(format!("{}: table {table} is missing", file.display())))?;
    BufReader::new(entry)
        .lines()
        .collect::<std::io::Result<_>>()
        .map_err(io_error(file))
}

/// Replaces a table's rows with the backup's; answers how many it restored.
async fn restore_table<R: Read + std::io::Seek>(
    txn: &DatabaseTransaction,
    db: &TenantDb,
    table: &str,
    zip: &mut zip::ZipArchive<R>,
    file: &Path,
) -> Result<u64> {
    let target = qualified(db, table);
    let exists = table_names(txn, db).await?.iter().any(|t| t == table);
    if !exists {
        return Err(Error::BadRequest(format!(
            "{}: table {table} has no counterpart in the restored tenant",
            file.display()
        )));
    }
    txn.execute_unprepared(&format!("DELETE FROM {target}"))
        .await?;
    let lines = entry_lines(zip, table, file)?;
    for batch in lines.chunks(BATCH) {
        match db.backend() {
            Backend::Postgres => {
                let rows = format!("[{}]", batch.join(","));
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    format!(
                        "INSERT INTO {target} SELECT * FROM json_populate_recordset(NULL::{target}, $1::json)"
                    ),
                    [rows.into()],
                ))
                .await?;
            }
            Backend::Sqlite => {
                for line in batch {
                    insert_sqlite_row(txn, &target, line, file).await?;
                }
            }
        }
    }
    Ok(lines.len() as u64)
}

async fn insert_sqlite_row(
    txn: &DatabaseTransaction,
    target: &str,
    line: &str,
    file: &Path,
) -> Result<()> {
    let unreadable = |what: String| Error::BadRequest(format!("{}: {what}", file.display()));
    let row: Map<String, Value> = serde_json::from_str(line)
        .map_err(|e| unreadable(format!("a row of {target} is unreadable: {e}")))?;
    let mut values = Vec::with_capacity(row.len());
    for (column, value) in &row {
        values.push(match value {
            Value::Null => sea_orm::Value::String(None),
            Value::Number(n) if n.is_i64() => n.as_i64().into(),
            Value::Number(n) => n.as_f64().into(),
            Value::String(s) => s.clone().into(),
            Value::Object(blob) => {
                let bytes = blob
                    .get("base64")
                    .and_then(Value::as_str)
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .ok_or_else(|| {
                        unreadable(format!("{target}.{column} holds an unreadable value"))
                    })?;
                bytes.into()
            }
            other => return Err(unreadable(format!("{target}.{column} holds {other}"))),
        });
    }
    let columns: Vec<String> = row.keys().map(|c| format!("\"{c}\"")).collect();
    let placeholders = vec!["?"; columns.len()].join(", ");
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        format!(
            "INSERT INTO {target} ({}) VALUES ({placeholders})",
            columns.join(", ")
        ),
        values,
    ))
    .await?;
    Ok(())
}

/// Moves every serial or identity column's sequence past the restored ids.
async fn reset_sequences(txn: &DatabaseTransaction, db: &TenantDb) -> Result<()> {
    let schema = db.schema().expect("PostgreSQL tenants have a schema");
    let serials = txn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
             WHERE table_schema = $1 AND (column_default LIKE 'nextval(%' OR is_identity = 'YES')",
            [schema.into()],
        ))
        .await?;
    for serial in serials {
        let (table, column): (String, String) =
            (serial.try_get("", "t")?, serial.try_get("", "c")?);
        let target = qualified(db, &table);
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX(\"{column}\") FROM {target}), 0) + 1, false)"
            ),
            [target.clone().into(), column.clone().into()],
        ))
        .await?;
    }
    Ok(())
}

/// Puts the backup's files into the new tenant's store, each checked against its hash.
async fn restore_files<R: Read + std::io::Seek>(
    tenants: &Tenants,
    key: &str,
    zip: &mut zip::ZipArchive<R>,
    file: &Path,
) -> Result<()> {
    let store = FileStore::for_tenant(&tenants.platform, key);
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(zip_error(file))?
        .into_iter()
        .filter(|n| n.starts_with("files/"))
        .collect();
    for name in names {
        let mut bytes = Vec::new();
        zip.by_name(&name)
            .map_err(zip_error(file))?
            .read_to_end(&mut bytes)
            .map_err(io_error(file))?;
        store.restore(&name["files/".len()..], bytes).await?;
    }
    Ok(())
}
