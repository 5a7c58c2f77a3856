//! Database connections and tenant namespaces.
//!
//! The platform namespace holds tenants and sessions. Each tenant's tables live in a
//! namespace of their own: a PostgreSQL schema `t_<tenant>` or a SQLite file
//! `data/tenants/<tenant>.db`. A [`TenantDb`] is the only way to reach a tenant's tables,
//! and it can address no other namespace.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use metacrm_migrations::{MigratorTrait, SystemMigrator, TenantMigrator};
use object_store::ObjectStore;
use sea_orm::sea_query::{Alias, IntoIden, SchemaName, TableName};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    QueryResult, SqliteTransactionMode, Statement, StatementBuilder, TransactionOptions,
    TransactionTrait,
};

use crate::error::{Error, Result};
use crate::store::files;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the platform keeps its data.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `postgres://…` selects PostgreSQL; `None` means SQLite files under `data_dir`.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    /// Search in Meilisearch; `None` keeps it embedded under `data_dir/search`.
    pub meilisearch: Option<MeiliConfig>,
    /// Attachment files in an S3-compatible bucket (`s3://bucket/prefix`); `None`
    /// keeps them under `data_dir/files`.
    pub file_store: Option<String>,
}

/// Where Meilisearch answers, and the key to use.
#[derive(Debug, Clone)]
pub struct MeiliConfig {
    pub url: String,
    pub api_key: Option<String>,
}

/// The platform database: the system namespace plus a factory for tenant namespaces.
#[derive(Clone)]
pub struct Platform {
    system: DatabaseConnection,
    backend: Backend,
    data_dir: PathBuf,
    objects: Arc<dyn ObjectStore>,
}

impl Platform {
    /// Connects and runs the system migrations.
    pub async fn connect(config: &DbConfig) -> Result<Platform> {
        let (system, backend) = match &config.database_url {
            Some(url) if url.starts_with("postgres") => {
                let mut options = ConnectOptions::new(url.clone());
                options
                    .max_connections(32)
                    .acquire_timeout(Duration::from_secs(30))
                    .sqlx_logging(false);
                (Database::connect(options).await?, Backend::Postgres)
            }
            Some(url) => {
                return Err(Error::BadRequest(format!(
                    "DATABASE_URL must be a postgres:// URL (SQLite is used when it is unset), got {url:?}"
                )));
            }
            None => {
                std::fs::create_dir_all(config.data_dir.join("tenants"))
                    .map_err(|e| Error::Internal(format!("cannot create data folder: {e}")))?;
                let system = open_sqlite(&config.data_dir.join("system.db")).await?;
                (system, Backend::Sqlite)
            }
        };
        migrate_system(&system, backend).await?;
        Ok(Platform {
            system,
            backend,
            data_dir: config.data_dir.clone(),
            objects: files::open_object_store(config.file_store.as_deref(), &config.data_dir)?,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where attachment files are kept (see `store::files`).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.objects.clone()
    }

    /// The system namespace (tenants, sessions).
    pub fn system(&self) -> &DatabaseConnection {
        &self.system
    }

    /// Creates a tenant's namespace and its fixed tables. Fails if it already exists.
    pub async fn create_namespace(&self, tenant: &str) -> Result<TenantDb> {
        if self.backend == Backend::Sqlite && self.sqlite_path(tenant).exists() {
            return Err(Error::Conflict(format!("tenant {tenant:?} already exists")));
        }
        self.open_tenant(tenant, true).await
    }

    /// Opens an existing tenant's namespace, bringing its fixed tables up to date.
    pub async fn tenant(&self, tenant: &str) -> Result<TenantDb> {
        self.open_tenant(tenant, false).await
    }

    async fn open_tenant(&self, tenant: &str, create: bool) -> Result<TenantDb> {
        let db = match self.backend {
            Backend::Postgres => {
                let schema = schema_name(tenant);
                // One node migrates a tenant at a time; the search path points the
                // migrator (and its bookkeeping table) at the tenant's schema. A new
                // schema is created in the same transaction: all or nothing.
                let txn = self.system.begin().await?;
                txn.execute_unprepared(&format!(
                    "SELECT pg_advisory_xact_lock(7461002, hashtext('{schema}'))"
                ))
                .await?;
                if create {
                    txn.execute_unprepared(&format!("CREATE SCHEMA \"{schema}\""))
                        .await?;
                }
                txn.execute_unprepared(&format!("SET LOCAL search_path TO \"{schema}\""))
                    .await?;
                TenantMigrator::up(&txn, None).await?;
                txn.commit().await?;
                TenantDb {
                    key: tenant.to_string(),
                    conn: Arc::new(RwLock::new(self.system.clone())),
                    schema: Some(schema),
                    sqlite_path: None,
                }
            }
            Backend::Sqlite => {
                let path = self.sqlite_path(tenant);
                if !create && !path.exists() {
                    return Err(Error::not_found(format!("tenant {tenant:?}")));
                }
                let conn = open_sqlite(&path).await?;
                TenantMigrator::up(&conn, None).await?;
                TenantDb {
                    key: tenant.to_string(),
                    conn: Arc::new(RwLock::new(conn)),
                    schema: None,
                    sqlite_path: Some(path),
                }
            }
        };
        db.refresh_statistics().await?;
        Ok(db)
    }

    /// Removes a tenant's namespace and everything in it. Only for a namespace nothing
    /// else uses: one whose restore failed half way (`backup::restore`).
    pub async fn drop_namespace(&self, db: TenantDb) -> Result<()> {
        match self.backend {
            Backend::Postgres => {
                let schema = schema_name(&db.key);
                self.system
                    .execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .await?;
            }
            Backend::Sqlite => {
                db.conn().close().await?;
                let path = self.sqlite_path(&db.key);
                for suffix in ["", "-wal", "-shm"] {
                    let file = PathBuf::from(format!("{}{suffix}", path.display()));
                    if file.exists() {
                        std::fs::remove_file(&file).map_err(|e| {
                            Error::Internal(format!("cannot remove {}: {e}", file.display()))
                        })?;
                    }
                }
            }
        }
        Ok(())
    }

    fn sqlite_path(&self, tenant: &str) -> PathBuf {
        self.data_dir.join("tenants").join(format!("{tenant}.db"))
    }
}

/// Runs the system migrations. On PostgreSQL several nodes may start at once: an
/// advisory lock held by the migration transaction lets one migrate at a time.
async fn migrate_system(system: &DatabaseConnection, backend: Backend) -> Result<()> {
    match backend {
        Backend::Postgres => {
            let txn = system.begin().await?;
            txn.execute_unprepared("SELECT pg_advisory_xact_lock(7461001)")
                .await?;
            SystemMigrator::up(&txn, None).await?;
            txn.commit().await?;
        }
        Backend::Sqlite => SystemMigrator::up(system, None).await?,
    }
    Ok(())
}

fn schema_name(tenant: &str) -> String {
    format!("t_{tenant}")
}

async fn open_sqlite(path: &Path) -> Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(format!("sqlite://{}?mode=rwc", path.display()));
    options
        .max_connections(8)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(60))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .create_if_missing(true)
                // Checkpoints every 32 MiB of WAL rather than 4 MiB: a batch of writes
                // touching random index pages (an import's 500-row transaction) would
                // otherwise checkpoint, and sync, at nearly every commit.
                .pragma("wal_autocheckpoint", "8192")
                // `ANALYZE` (run by `TenantDb::refresh_statistics`) samples about
                // this many rows per index instead of reading whole tables.
                .pragma("analysis_limit", "1000")
        });
    Ok(Database::connect(options).await?)
}

/// The first row of a query. Reads the whole result rather than calling `query_one`:
/// on SQLite, sqlx's `fetch_one` leaves the statement un-reset, so the pooled
/// connection keeps an open read transaction and later sees an old snapshot (old
/// data, and after a publish an old schema).
pub async fn query_first<S: StatementBuilder>(
    conn: &impl ConnectionTrait,
    statement: &S,
) -> Result<Option<QueryResult>> {
    Ok(conn.query_all(statement).await?.into_iter().next())
}

/// The number a `SELECT COUNT(…)` answers (its first column of its first row).
pub async fn query_count<S: StatementBuilder>(
    conn: &impl ConnectionTrait,
    statement: &S,
) -> Result<i64> {
    Ok(match query_first(conn, statement).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    })
}

/// Runs statements that answer no rows, in order, on `conn` (a transaction): on
/// SQLite as one call — sqlx runs a text of several statements, binding the values to
/// each in turn — which saves a hand-off to the connection's thread per statement; on
/// PostgreSQL one by one (its protocol takes one statement with values at a time).
pub async fn execute_together(
    conn: &impl ConnectionTrait,
    statements: Vec<Statement>,
) -> Result<()> {
    let backend = conn.get_database_backend();
    if backend != DbBackend::Sqlite || statements.len() < 2 {
        for statement in statements {
            conn.execute_raw(statement).await?;
        }
        return Ok(());
    }
    let mut sql = String::new();
    let mut values = Vec::new();
    for statement in statements {
        sql.push_str(&statement.sql);
        sql.push_str(";\n");
        values.extend(statement.values.into_iter().flat_map(|v| v.0));
    }
    conn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// A tenant's namespace: every tenant table is addressed through [`TenantDb::table`].
#[derive(Clone)]
pub struct TenantDb {
    pub key: String,
    conn: Arc<RwLock<DatabaseConnection>>,
    schema: Option<String>,
    /// SQLite: the tenant's file, to reopen the pool after a schema change.
    sqlite_path: Option<PathBuf>,
}

impl TenantDb {
    pub fn backend(&self) -> Backend {
        match self.schema {
            Some(_) => Backend::Postgres,
            None => Backend::Sqlite,
        }
    }

    /// The connection pool (a cheap handle).
    pub fn conn(&self) -> DatabaseConnection {
        self.conn.read().expect("connection lock").clone()
    }

    /// After a schema change on SQLite, replaces the pool: SQLite connections that
    /// prepared statements before a column was renamed away and back were seen to
    /// return NULL for it, so no connection outlives a schema version.
    pub async fn reconnect_after_schema_change(&self) -> Result<()> {
        if let Some(path) = &self.sqlite_path {
            let fresh = open_sqlite(path).await?;
            // The old pool closes when the last request holding it finishes.
            *self.conn.write().expect("connection lock") = fresh;
        }
        Ok(())
    }

    /// A table of this tenant, qualified by its schema where the backend has schemas.
    pub fn table(&self, name: &str) -> TableName {
        let schema = self
            .schema
            .as_ref()
            .map(|schema| SchemaName(None, Alias::new(schema).into_iden()));
        TableName(schema, Alias::new(name).into_iden())
    }

    /// The schema name on PostgreSQL, used where SQL must name it (introspection).
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Refreshes the query planner's statistics where they are stale. SQLite keeps
    /// none unless asked (`ANALYZE`), and without them it takes every indexed `IN` list
    /// for a selective one: a manager's list (`owner IN (the team)`, newest first) read
    /// and sorted every record the team owns instead of walking the sort's index.
    /// `PRAGMA optimize` analyzes only the tables never analyzed, or grown or shrunk
    /// tenfold since, each from a sample (`analysis_limit`). PostgreSQL's autovacuum
    /// keeps its statistics itself.
    pub async fn refresh_statistics(&self) -> Result<()> {
        if self.backend() != Backend::Sqlite {
            return Ok(());
        }
        let conn = self.conn();
        // Flag 0x1 only lists the analyses the same call without it would run.
        let list = Statement::from_string(DbBackend::Sqlite, "PRAGMA optimize=0x10003");
        if conn.query_all_raw(list).await?.is_empty() {
            return Ok(());
        }
        conn.execute_unprepared("PRAGMA optimize=0x10002").await?;
        // A connection reads the statistics with the schema, and new statistics do not
        // make it read the schema again: only new connections plan with them.
        self.reconnect_after_schema_change().await
    }

    /// A write transaction. On SQLite it takes the write lock up front (`BEGIN
    /// IMMEDIATE`) so concurrent writers queue on the busy timeout instead of failing
    /// when a read transaction tries to upgrade.
    pub async fn begin_write(&self) -> Result<DatabaseTransaction> {
        let options = TransactionOptions {
            isolation_level: None,
            access_mode: None,
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        };
        Ok(self.conn().begin_with_options(options).await?)
    }
}
