//! The index on an entity's last contact becomes the one the due list and the pool's
//! reclaim can use: on `COALESCE(last_contact_at, created_at)` for owned records not
//! deleted, instead of on the bare column (which neither query can use: both filter
//! and sort on the expression). Entity tables are the planner's, but an index the
//! planner now builds differently has to change on existing tables too; this finds the
//! old ones by their column and rebuilds each under its name. (The definition is
//! written out here, not taken from the planner, so that this migration stays what it
//! was when the planner changes again.)
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Plain single-column indexes on `last_contact_at`, as (index, table).
const SQLITE_OLD_INDEXES: &str = "SELECT il.name AS index_name, m.name AS table_name \
     FROM sqlite_master AS m, pragma_index_list(m.name) AS il, pragma_index_info(il.name) AS ii \
     WHERE m.type = 'table' AND il.partial = 0 AND ii.name = 'last_contact_at'";
const POSTGRES_OLD_INDEXES: &str = "SELECT i.relname AS index_name, t.relname AS table_name \
     FROM pg_index AS x \
     JOIN pg_class AS i ON i.oid = x.indexrelid \
     JOIN pg_class AS t ON t.oid = x.indrelid \
     JOIN pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] \
     WHERE t.relnamespace = current_schema()::regnamespace AND x.indnatts = 1 \
       AND x.indpred IS NULL AND a.attname = 'last_contact_at'";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too: each index is dropped and created again on
    /// the same connection, all or nothing.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let find = match backend {
            DbBackend::Postgres => POSTGRES_OLD_INDEXES,
            _ => SQLITE_OLD_INDEXES,
        };
        let rows = db
            .query_all_raw(Statement::from_string(backend, find))
            .await?;
        for row in rows {
            let index: String = row.try_get("", "index_name")?;
            let table: String = row.try_get("", "table_name")?;
            db.execute_unprepared(&format!("DROP INDEX \"{index}\""))
                .await?;
            db.execute_unprepared(&format!(
                "CREATE INDEX \"{index}\" ON \"{table}\" \
                 ((COALESCE(\"last_contact_at\", \"created_at\"))) \
                 WHERE \"owner\" IS NOT NULL AND \"deleted_at\" IS NULL"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The old index served no query; nothing to put back.
        Ok(())
    }
}
