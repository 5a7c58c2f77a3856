//! The indexer: drains a tenant's outbox into the search index in order, at least
//! once. The cursor (the last outbox id applied) is stored after the index commits,
//! so a crash in between replays some rows — harmless, every write is an upsert by id.

use std::collections::BTreeMap;

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query};
use serde_json::Value;

use crate::auth::Access;
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::Result;
use crate::meta::FieldType;
use crate::search::{Document, SearchIndex};
use crate::store::db::{TenantDb, query_first};
use crate::store::records::{QueryRequest, Records};
use crate::store::schema;
use crate::tenant::Tenant;

/// The cursor's name for the configured backend.
const CURSOR: &str = "search";
/// Outbox rows applied per batch.
const BATCH: u64 = 1000;

/// The search document of a record: its searchable fields as text (a select also by
/// its option label), its title and owner.
pub fn document(entity: &EntityCatalog, record: &Value) -> Document {
    let mut fields = BTreeMap::new();
    for field in entity.def.fields.iter().filter(|f| f.searchable) {
        let value = &record[field.key.as_str()];
        let text = match (field.field_type, value) {
            (_, Value::Null) => continue,
            (FieldType::Select, Value::String(v)) => {
                let label = field
                    .options
                    .iter()
                    .find(|o| &o.value == v)
                    .and_then(|o| o.label.clone());
                format!("{v} {}", label.unwrap_or_default())
            }
            (_, Value::String(s)) => s.clone(),
            (_, Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join(" "),
            (_, other) => other.to_string(),
        };
        fields.insert(field.key.clone(), text);
    }
    Document {
        id: record[schema::ID].as_i64().unwrap_or_default(),
        owner: record[schema::OWNER].as_i64(),
        title: entity.title_of(record),
        fields,
    }
}

async fn cursor(conn: &impl ConnectionTrait, db: &TenantDb) -> Result<i64> {
    let select = Query::select()
        .column(Alias::new("position"))
        .from(db.table("search_cursor"))
        .and_where(Expr::col(Alias::new("name")).eq(CURSOR))
        .to_owned();
    Ok(match query_first(conn, &select).await? {
        Some(row) => row.try_get("", "position")?,
        None => 0,
    })
}

async fn set_cursor(conn: &impl ConnectionTrait, db: &TenantDb, position: i64) -> Result<()> {
    let upsert = Query::insert()
        .into_table(db.table("search_cursor"))
        .columns(["name", "position"].map(Alias::new))
        .values_panic([CURSOR.into(), position.into()])
        .on_conflict(
            OnConflict::column(Alias::new("name"))
                .update_column(Alias::new("position"))
                .to_owned(),
        )
        .to_owned();
    conn.execute(&upsert).await?;
    Ok(())
}

/// Applies every pending outbox row to the index; returns how many it applied.
/// `catalog` is the caller's read guard of the tenant's catalog.
pub async fn drain(tenant: &Tenant, catalog: &Catalog, index: &dyn SearchIndex) -> Result<usize> {
    let _one_at_a_time = tenant.indexing.lock().await;
    let db = &tenant.db;
    let mut applied = 0;
    loop {
        let conn = db.conn();
        let position = cursor(&conn, db).await?;
        let select = Query::select()
            .columns(["id", "entity", "op", "payload"].map(Alias::new))
            .from(db.table("outbox"))
            .and_where(Expr::col(Alias::new("id")).gt(position))
            .order_by(Alias::new("id"), Order::Asc)
            .limit(BATCH)
            .to_owned();
        let rows = conn.query_all(&select).await?;
        let Some(last) = rows.last() else {
            return Ok(applied);
        };
        let last: i64 = last.try_get("", "id")?;
        // The latest state of each record wins within a batch.
        let mut latest: BTreeMap<(String, i64), (String, Value)> = BTreeMap::new();
        for row in &rows {
            let entity: String = row.try_get("", "entity")?;
            let op: String = row.try_get("", "op")?;
            let payload: String = row.try_get("", "payload")?;
            let record: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
            let id = record[schema::ID].as_i64().unwrap_or_default();
            latest.insert((entity, id), (op, record));
        }
        apply(&tenant.key, catalog, index, latest).await?;
        set_cursor(&conn, db, last).await?;
        applied += rows.len();
    }
}

async fn apply(
    tenant: &str,
    catalog: &Catalog,
    index: &dyn SearchIndex,
    latest: BTreeMap<(String, i64), (String, Value)>,
) -> Result<()> {
    let mut upserts: BTreeMap<String, Vec<Document>> = BTreeMap::new();
    let mut deletes: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for ((entity_key, id), (op, record)) in latest {
        let Some(entity) = catalog.entity(&entity_key) else {
            continue;
        };
        if op == "delete" {
            deletes.entry(entity_key).or_default().push(id);
        } else {
            upserts
                .entry(entity_key)
                .or_default()
                .push(document(entity, &record));
        }
    }
    for (entity, ids) in deletes {
        index.delete(tenant, &entity, ids).await?;
    }
    for (entity, documents) in upserts {
        index.upsert(tenant, &entity, documents).await?;
    }
    Ok(())
}

/// Rebuilds an entity's index from the database, calling `progress(done)` after each
/// batch; returns the number of records indexed. Writes during the rebuild are
/// caught up by the next drain (the cursor is taken before the scan).
pub async fn reindex(
    tenant: &Tenant,
    catalog: &Catalog,
    index: &dyn SearchIndex,
    entity: &EntityCatalog,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64> {
    let records = Records::new(&tenant.db, catalog, entity);
    index.clear(&tenant.key, &entity.def.key).await?;
    let mut after = None;
    let mut done = 0;
    loop {
        let request = QueryRequest {
            limit: Some(crate::store::records::MAX_LIMIT),
            after: after.clone(),
            ..QueryRequest::default()
        };
        let page = records.query(&request, &Access::system()).await?;
        let documents: Vec<Document> = page.items.iter().map(|r| document(entity, r)).collect();
        done += documents.len() as u64;
        index
            .upsert(&tenant.key, &entity.def.key, documents)
            .await?;
        progress(done);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(done),
        }
    }
}
