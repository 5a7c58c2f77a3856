//! Changing an index of the entity tables that the planner now builds differently.
//! Entity tables are the planner's, but such an index has to change on existing tables
//! too: the old ones are found by their column (plain single-column indexes on it, on
//! the entity tables, archived ones included) and each is rebuilt under its own name.
//! Each migration writes its definitions out rather than taking the planner's, so that
//! it stays what it was when the planner changes again. Run such a migration in a
//! transaction (`use_transaction`): on SQLite a drop and the create after it must share
//! a connection.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

/// Plain single-column indexes on the column `$column` of entity tables (`e_…`, and
/// `_arch_e_…` archived), as (index, table).
const SQLITE_PLAIN_INDEXES: &str = "SELECT il.name AS index_name, m.name AS table_name \
     FROM sqlite_master AS m, pragma_index_list(m.name) AS il, pragma_index_info(il.name) AS ii \
     WHERE m.type = 'table' \
       AND (m.name LIKE 'e\\_%' ESCAPE '\\' OR m.name LIKE '\\_arch\\_e\\_%' ESCAPE '\\') \
       AND il.partial = 0 AND il.\"unique\" = 0 \
       AND (SELECT count(*) FROM pragma_index_info(il.name)) = 1 AND ii.name = '$column'";
const POSTGRES_PLAIN_INDEXES: &str = "SELECT i.relname AS index_name, t.relname AS table_name \
     FROM pg_index AS x \
     JOIN pg_class AS i ON i.oid = x.indexrelid \
     JOIN pg_class AS t ON t.oid = x.indrelid \
     JOIN pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] \
     WHERE t.relnamespace = current_schema()::regnamespace \
       AND (t.relname LIKE 'e\\_%' OR t.relname LIKE '\\_arch\\_e\\_%') AND x.indnatts = 1 \
       AND NOT x.indisunique AND x.indpred IS NULL AND a.attname = '$column'";

/// An entity-table index found by [`plain_indexes`].
pub struct FoundIndex {
    pub name: String,
    pub table: String,
}

impl FoundIndex {
    /// The key of the entity whose table (or archived table) holds the index.
    pub fn entity(&self) -> &str {
        let table = self.table.strip_prefix("_arch_").unwrap_or(&self.table);
        table.strip_prefix("e_").unwrap_or(table)
    }
}

/// Every plain single-column index on `column` of the entity tables.
pub async fn plain_indexes(
    manager: &SchemaManager<'_>,
    column: &str,
) -> Result<Vec<FoundIndex>, DbErr> {
    let backend = manager.get_database_backend();
    let find = match backend {
        DbBackend::Postgres => POSTGRES_PLAIN_INDEXES,
        _ => SQLITE_PLAIN_INDEXES,
    };
    let rows = manager
        .get_connection()
        .query_all_raw(Statement::from_string(
            backend,
            find.replace("$column", column),
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(FoundIndex {
                name: row.try_get("", "index_name")?,
                table: row.try_get("", "table_name")?,
            })
        })
        .collect()
}

/// `CREATE INDEX IF NOT EXISTS <name> ON <table> <definition>`.
pub async fn create(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &str,
    definition: &str,
) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "CREATE INDEX IF NOT EXISTS \"{name}\" ON \"{table}\" {definition}"
        ))
        .await?;
    Ok(())
}

/// Drops `index` and creates it again, same name, same table, as `definition`.
pub async fn rebuild(
    manager: &SchemaManager<'_>,
    index: &FoundIndex,
    definition: &str,
) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_unprepared(&format!("DROP INDEX \"{}\"", index.name))
        .await?;
    create(manager, &index.name, &index.table, definition).await
}
