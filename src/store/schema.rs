//! How metadata maps onto tables: names, column types, system columns, indexes.
//!
//! Storage is identical on both databases so that the same statements and the same
//! value conversions serve both: decimals are scaled 64-bit integers (exact on SQLite,
//! which has no exact decimal column), multi-selects and attachments are JSON text.

use sea_orm::sea_query::{
    Alias, ColumnDef, Condition, ConditionalStatement, Expr, ExprTrait, Func, Index,
    IndexDropStatement, PostgresQueryBuilder, SqliteQueryBuilder, Table, TableCreateStatement,
};

use crate::meta::{Entity, Field, FieldType};
use crate::store::db::{Backend, TenantDb};

/// System columns every entity table has, in table order (`stage` only with a pipeline).
pub const ID: &str = "id";
pub const CREATED_AT: &str = "created_at";
pub const UPDATED_AT: &str = "updated_at";
pub const CREATED_BY: &str = "created_by";
pub const OWNER: &str = "owner";
pub const VERSION: &str = "version";
pub const DELETED_AT: &str = "deleted_at";
pub const STAGE: &str = "stage";
/// Last logged contact, on entities with a follow-up cycle or a public pool.
pub const LAST_CONTACT_AT: &str = "last_contact_at";
/// Not a column: the key of the index on the owner and the last contact, which a
/// rep's due list reads (`ix_<entity>__owner_last_contact`; no field key starts with
/// `_`, so no field's index can take the name).
pub const OWNER_LAST_CONTACT: &str = "_owner_last_contact";

pub fn table_name(entity: &str) -> String {
    format!("e_{entity}")
}

pub fn archived_table_name(entity: &str) -> String {
    format!("_arch_e_{entity}")
}

pub fn archived_column_name(field: &str) -> String {
    format!("_arch_{field}")
}

pub use metacrm_migrations::index_name;

/// How a field's values are stored. Two types with the same storage can be converted
/// into each other without touching the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Text,
    JsonText,
    /// Integers, and decimals scaled by 10^scale.
    BigInt,
    Boolean,
    Date,
    DateTime,
}

pub fn storage(field_type: FieldType) -> Storage {
    match field_type {
        FieldType::Text
        | FieldType::LongText
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Url
        | FieldType::Select
        | FieldType::AutoNumber => Storage::Text,
        FieldType::MultiSelect | FieldType::Attachment => Storage::JsonText,
        FieldType::Integer | FieldType::Decimal | FieldType::Reference | FieldType::User => {
            Storage::BigInt
        }
        FieldType::Boolean => Storage::Boolean,
        FieldType::Date => Storage::Date,
        FieldType::Datetime => Storage::DateTime,
    }
}

pub fn column_def(name: &str, storage: Storage) -> ColumnDef {
    let mut column = ColumnDef::new(Alias::new(name));
    match storage {
        Storage::Text | Storage::JsonText => column.text(),
        Storage::BigInt => column.big_integer(),
        Storage::Boolean => column.boolean(),
        Storage::Date => column.date(),
        Storage::DateTime => column.timestamp_with_time_zone(),
    };
    column.null();
    column
}

pub fn field_column(field: &Field) -> ColumnDef {
    column_def(&field.key, storage(field.field_type))
}

/// Whether the system column `key` is declared `NOT NULL` ([`create_table`]).
pub fn never_null(key: &str) -> bool {
    matches!(key, ID | CREATED_AT | UPDATED_AT | VERSION)
}

/// `CREATE TABLE` for an entity with its system columns and fields.
pub fn create_table(db: &TenantDb, entity: &Entity) -> TableCreateStatement {
    let mut table = Table::create();
    table.table(db.table(&table_name(&entity.key))).col(
        ColumnDef::new(Alias::new(ID))
            .big_integer()
            .not_null()
            .auto_increment()
            .primary_key(),
    );
    table
        .col(column_def(CREATED_AT, Storage::DateTime).not_null())
        .col(column_def(UPDATED_AT, Storage::DateTime).not_null())
        .col(column_def(CREATED_BY, Storage::BigInt))
        .col(column_def(OWNER, Storage::BigInt))
        .col(
            ColumnDef::new(Alias::new(VERSION))
                .big_integer()
                .not_null()
                .default(1),
        )
        .col(column_def(DELETED_AT, Storage::DateTime));
    if entity.pipeline.is_some() {
        table.col(column_def(STAGE, Storage::Text));
    }
    if entity.tracks_contacts() {
        table.col(column_def(LAST_CONTACT_AT, Storage::DateTime));
    }
    for field in &entity.fields {
        table.col(field_column(field));
    }
    table
}

/// `CREATE INDEX` for an `indexed` or `unique` field or a system column of an entity
/// table. Unique indexes ignore records in the recycle bin so a deleted customer does
/// not block re-creating it. Some system indexes are not on their column alone: the
/// owner's is on `(owner, created_at)`, so that a list scoped to a few owners reads its
/// page newest first in index order; the last contact's holds [`last_contact`] of
/// [`contactable`] records, which the due list and the pool's reclaim filter and sort
/// on, and [`OWNER_LAST_CONTACT`] the same by owner. (No field can take these keys.)
pub fn create_index(
    db: &TenantDb,
    entity: &str,
    column: &str,
    unique: bool,
    if_not_exists: bool,
) -> String {
    let mut index = Index::create();
    index
        .name(index_name(entity, column, unique))
        .table(db.table(&table_name(entity)));
    if if_not_exists {
        index.if_not_exists();
    }
    if column == LAST_CONTACT_AT || column == OWNER_LAST_CONTACT {
        if column == OWNER_LAST_CONTACT {
            index.col(Alias::new(OWNER));
        }
        // sea-query's SQLite index builder has no expression columns; the PostgreSQL
        // rendering of this statement is valid SQLite.
        index.col(last_contact()).cond_where(contactable());
        return index.to_string(PostgresQueryBuilder);
    }
    index.col(Alias::new(column));
    if column == OWNER {
        index.col(Alias::new(CREATED_AT));
    }
    if unique {
        index
            .unique()
            .and_where(Expr::col(Alias::new(DELETED_AT)).is_null());
    }
    match db.backend() {
        Backend::Sqlite => index.to_string(SqliteQueryBuilder),
        Backend::Postgres => index.to_string(PostgresQueryBuilder),
    }
}

/// A record's last contact, or its creation when it was never contacted.
pub fn last_contact() -> Expr {
    Expr::from(Func::coalesce([
        Expr::col(Alias::new(LAST_CONTACT_AT)),
        Expr::col(Alias::new(CREATED_AT)),
    ]))
}

/// The records someone is to keep in contact with: owned (not in the public pool)
/// and not deleted. Queries on [`last_contact`] say this too, so that the partial
/// index on it serves them.
pub fn contactable() -> Condition {
    Condition::all()
        .add(Expr::col(Alias::new(DELETED_AT)).is_null())
        .add(Expr::col(Alias::new(OWNER)).is_not_null())
}

pub fn drop_index(db: &TenantDb, entity: &str, column: &str, unique: bool) -> IndexDropStatement {
    let mut index = Index::drop();
    index.name(index_name(entity, column, unique));
    if db.schema().is_some() {
        // PostgreSQL indexes live in the table's schema and must be named through it.
        index.table(db.table(&table_name(entity)));
    }
    index
}

/// Indexes every entity table gets: owner (row scopes), created_at (default sort),
/// stage and last contact where the entity has them.
pub fn system_indexes(db: &TenantDb, entity: &Entity) -> Vec<String> {
    system_index_keys(entity)
        .into_iter()
        .map(|column| create_index(db, &entity.key, column, false, false))
        .collect()
}

/// The keys of the system indexes on the entity's table (`ix_<entity>_<key>`): the
/// column each is on, or [`OWNER_LAST_CONTACT`]. Renames carry these indexes along.
pub fn system_index_keys(entity: &Entity) -> Vec<&'static str> {
    let mut columns = vec![OWNER, CREATED_AT];
    if entity.pipeline.is_some() {
        columns.push(STAGE);
    }
    if entity.tracks_contacts() {
        columns.extend([LAST_CONTACT_AT, OWNER_LAST_CONTACT]);
    }
    columns
}
