//! The indexer: drains a tenant's outbox into the search index in order, at least
//! once. The cursor (the last outbox id applied) is stored after the index commits,
//! so a crash in between replays some rows — harmless, every write is an upsert by id.
//!
//! Each entity is served from one *generation* of its index (`search_indexes`). When
//! the entity's signature (analysis version, backend, title and searchable fields)
//! no longer matches the serving generation, [`rebuild`] fills the next generation
//! from the database while the current one keeps answering, catches it up with the
//! outbox rows written meanwhile, and switches.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query};
use serde_json::Value;

use crate::auth::Access;
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::Result;
use crate::meta::FieldType;
use crate::search::{Document, SearchIndex, analyze};
use crate::store::db::{TenantDb, query_count, query_first};
use crate::store::records::{QueryRequest, Records};
use crate::store::schema;
use crate::tenant::{Tenant, Tenants};

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

/// Outbox rows the indexer has yet to apply.
pub async fn pending(db: &TenantDb) -> Result<i64> {
    let conn = db.conn();
    let position = cursor(&conn, db).await?;
    let select = Query::select()
        .expr(Expr::col(Alias::new("id")).count())
        .from(db.table("outbox"))
        .and_where(Expr::col(Alias::new("id")).gt(position))
        .to_owned();
    query_count(&conn, &select).await
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

/// The name of an entity's index in one generation (0: built before generations).
pub fn index_name(entity: &str, generation: i64) -> String {
    match generation {
        0 => entity.to_string(),
        g => format!("{entity}-g{g}"),
    }
}

/// What an index must be rebuilt for when it changes: the analysis, the backend, the
/// title and every searchable field's definition.
pub fn signature(entity: &EntityCatalog, index: &dyn SearchIndex) -> String {
    use sha2::Digest;
    let searchable: Vec<_> = entity.def.fields.iter().filter(|f| f.searchable).collect();
    let basis = serde_json::json!([
        analyze::VERSION,
        index.backend(),
        entity.def.title_field,
        searchable
    ]);
    let digest = sha2::Sha256::digest(basis.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The generation serving each entity, with the signature it was built for.
#[derive(Debug, Default, Clone)]
pub struct Serving(HashMap<String, (i64, String)>);

impl Serving {
    pub async fn load(db: &TenantDb) -> Result<Serving> {
        let select = Query::select()
            .columns(["entity", "generation", "signature"].map(Alias::new))
            .from(db.table("search_indexes"))
            .to_owned();
        let mut serving = HashMap::new();
        for row in db.conn().query_all(&select).await? {
            serving.insert(
                row.try_get("", "entity")?,
                (
                    row.try_get("", "generation")?,
                    row.try_get("", "signature")?,
                ),
            );
        }
        Ok(Serving(serving))
    }

    pub fn generation(&self, entity: &str) -> i64 {
        self.0.get(entity).map_or(0, |(generation, _)| *generation)
    }

    /// The index searches of `entity` read and the drain writes.
    pub fn index(&self, entity: &str) -> String {
        index_name(entity, self.generation(entity))
    }

    fn signature(&self, entity: &str) -> Option<&str> {
        self.0.get(entity).map(|(_, signature)| signature.as_str())
    }
}

async fn set_serving(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    entity: &str,
    generation: i64,
    signature: &str,
) -> Result<()> {
    let upsert = Query::insert()
        .into_table(db.table("search_indexes"))
        .columns(["entity", "generation", "signature"].map(Alias::new))
        .values_panic([entity.into(), generation.into(), signature.into()])
        .on_conflict(
            OnConflict::column(Alias::new("entity"))
                .update_columns(["generation", "signature"].map(Alias::new))
                .to_owned(),
        )
        .to_owned();
    conn.execute(&upsert).await?;
    Ok(())
}

/// The entities whose serving index was built for another signature (or never).
pub async fn stale<'c>(
    tenant: &Tenant,
    catalog: &'c Catalog,
    index: &dyn SearchIndex,
) -> Result<Vec<&'c EntityCatalog>> {
    let serving = Serving::load(&tenant.db).await?;
    Ok(catalog
        .entities()
        .filter(|e| e.def.fields.iter().any(|f| f.searchable))
        .filter(|e| serving.signature(&e.def.key) != Some(signature(e, index).as_str()))
        .map(|e| e.as_ref())
        .collect())
}

async fn outbox_end(conn: &impl ConnectionTrait, db: &TenantDb) -> Result<i64> {
    let select = Query::select()
        .expr_as(Expr::col(Alias::new("id")).max(), Alias::new("last"))
        .from(db.table("outbox"))
        .to_owned();
    Ok(match query_first(conn, &select).await? {
        Some(row) => row.try_get::<Option<i64>>("", "last")?.unwrap_or(0),
        None => 0,
    })
}

/// The latest outbox row of each record among `rows`, keyed by entity and id.
type Latest = BTreeMap<(String, i64), (String, Value)>;

fn latest(rows: &[sea_orm::QueryResult]) -> Result<Latest> {
    let mut latest = Latest::new();
    for row in rows {
        let entity: String = row.try_get("", "entity")?;
        let op: String = row.try_get("", "op")?;
        let payload: String = row.try_get("", "payload")?;
        let record: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
        let id = record[schema::ID].as_i64().unwrap_or_default();
        latest.insert((entity, id), (op, record));
    }
    Ok(latest)
}

/// Makes the index hold every write committed before the call (searches and the
/// duplicate check read their own writes). Drains only when no drain since the call
/// has already got that far, so the searches queued behind one drain (and its index
/// commit) all go on after it instead of each committing in turn.
pub async fn catch_up(tenant: &Tenant, catalog: &Catalog, index: &dyn SearchIndex) -> Result<()> {
    let db = &tenant.db;
    let target = outbox_end(&db.conn(), db).await?;
    let one_at_a_time = tenant.indexing.lock().await;
    if cursor(&db.conn(), db).await? >= target {
        return Ok(());
    }
    drain_locked(tenant, catalog, index, one_at_a_time).await?;
    Ok(())
}

/// Applies every pending outbox row to the index; returns how many it applied.
/// `catalog` is the caller's read guard of the tenant's catalog.
pub async fn drain(tenant: &Tenant, catalog: &Catalog, index: &dyn SearchIndex) -> Result<usize> {
    let one_at_a_time = tenant.indexing.lock().await;
    drain_locked(tenant, catalog, index, one_at_a_time).await
}

/// `drain`, holding the tenant's indexing lock.
async fn drain_locked(
    tenant: &Tenant,
    catalog: &Catalog,
    index: &dyn SearchIndex,
    _one_at_a_time: tokio::sync::MutexGuard<'_, ()>,
) -> Result<usize> {
    let db = &tenant.db;
    let serving = Serving::load(db).await?;
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
        apply(&tenant.key, catalog, index, latest(&rows)?, |entity| {
            serving.index(entity)
        })
        .await?;
        set_cursor(&conn, db, last).await?;
        crate::observe::count_indexed(rows.len());
        applied += rows.len();
    }
}

async fn apply(
    tenant: &str,
    catalog: &Catalog,
    index: &dyn SearchIndex,
    latest: Latest,
    index_of: impl Fn(&str) -> String,
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
        index.delete(tenant, &index_of(&entity), ids).await?;
    }
    for (entity, documents) in upserts {
        index.upsert(tenant, &index_of(&entity), documents).await?;
    }
    Ok(())
}

/// Rebuilds an entity's index from the database into its next generation, calling
/// `progress(done)` after each batch, and switches searches to it; returns the number
/// of records indexed. Searches keep reading the current generation until the switch.
///
/// The outbox position is taken before the scan, so every write the scan may have
/// missed is in a later outbox row; those rows are applied to the new generation with
/// the drain paused, right before the switch. A rebuild that fails leaves the current
/// generation serving and is simply started again.
pub async fn rebuild(
    tenant: &Tenant,
    catalog: &Catalog,
    index: &dyn SearchIndex,
    entity: &EntityCatalog,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64> {
    let db = &tenant.db;
    let key = &entity.def.key;
    let serving = Serving::load(db).await?;
    let current = serving.generation(key);
    let next = index_name(key, current + 1);
    let start = outbox_end(&db.conn(), db).await?;
    // Leftovers of an interrupted rebuild of the same generation.
    index.drop_index(&tenant.key, &next).await?;
    let records = Records::new(db, catalog, entity);
    let page_after = |after: Option<String>| QueryRequest {
        limit: Some(crate::store::records::MAX_LIMIT),
        after,
        ..QueryRequest::default()
    };
    let system = Access::system();
    let mut page = records.query(&page_after(None), &system).await?;
    let mut done = 0;
    loop {
        let documents: Vec<Document> = page.items.iter().map(|r| document(entity, r)).collect();
        done += documents.len() as u64;
        let load = index.load(&tenant.key, &next, documents);
        // The next page is read while this one is indexed.
        let Some(after) = page.next.take() else {
            load.await?;
            progress(done);
            break;
        };
        let request = page_after(Some(after));
        let ((), fetched) = tokio::try_join!(load, records.query(&request, &system))?;
        progress(done);
        page = fetched;
    }
    index.finish_load(&tenant.key, &next).await?;
    let _drain_paused = tenant.indexing.lock().await;
    let conn = db.conn();
    let drained = cursor(&conn, db).await?;
    if drained > start {
        let select = Query::select()
            .columns(["id", "entity", "op", "payload"].map(Alias::new))
            .from(db.table("outbox"))
            .and_where(Expr::col(Alias::new("id")).gt(start))
            .and_where(Expr::col(Alias::new("id")).lte(drained))
            .and_where(Expr::col(Alias::new("entity")).eq(key.as_str()))
            .order_by(Alias::new("id"), Order::Asc)
            .to_owned();
        let rows = conn.query_all(&select).await?;
        apply(&tenant.key, catalog, index, latest(&rows)?, |_| {
            next.clone()
        })
        .await?;
    }
    set_serving(&conn, db, key, current + 1, &signature(entity, index)).await?;
    index
        .drop_index(&tenant.key, &index_name(key, current))
        .await?;
    Ok(done)
}

/// Rebuilds every stale index of a tenant, then drains its outbox.
pub async fn sync(tenant: &Tenant, index: &dyn SearchIndex) -> Result<()> {
    // A snapshot, not the read guard: a long rebuild must not hold up a publish.
    let catalog: Arc<Catalog> = tenant.catalog().await.clone();
    for entity in stale(tenant, &catalog, index).await? {
        let started = std::time::Instant::now();
        let count = rebuild(tenant, &catalog, index, entity, &|_| {}).await?;
        tracing::info!(tenant = %tenant.key, entity = %entity.def.key, count,
            seconds = started.elapsed().as_secs_f64(), "search index rebuilt");
    }
    drain(tenant, &catalog, index).await?;
    Ok(())
}

/// The indexer inside `serve`: at start, syncs every tenant (writes left from before a
/// restart, indexes built for older metadata); then, once a second, the tenants this
/// node has loaded — the only ones it can have written to or published for. Each
/// tenant syncs in its own task, so one tenant's long rebuild delays no other, and only
/// on the node holding the tenant's lease, so several nodes index it once.
pub async fn serve_forever(tenants: Arc<Tenants>) {
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut running: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut keys = tenants.keys().await.unwrap_or_else(|error| {
        tracing::error!(%error, "indexer cannot list tenants");
        Vec::new()
    });
    loop {
        interval.tick().await;
        running.retain(|_, task| !task.is_finished());
        for key in keys {
            if running.contains_key(&key) || !tenants.holds_lease(&key).await {
                continue;
            }
            let tenants = tenants.clone();
            let task_key = key.clone();
            let task = tokio::spawn(async move {
                let result = async {
                    let tenant = tenants.get(&task_key).await?;
                    sync(&tenant, tenants.search.as_ref()).await
                }
                .await;
                if let Err(error) = result {
                    tracing::error!(tenant = %task_key, %error, "indexing failed; retrying");
                }
            });
            running.insert(key, task);
        }
        keys = tenants.loaded_keys().await;
    }
}
