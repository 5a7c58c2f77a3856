//! Search as the API offers it: across the entities the caller may read, with their
//! row scope as an owner filter inside the engine and masked fields left out of both
//! matching and snippets; and the duplicate check before creating a record.

use serde_json::{Map, Value, json};

use crate::auth::Context;
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::Result;
use crate::meta::Action;
use crate::search::indexer::{self, Serving};
use crate::search::{SearchIndex, SearchQuery};

/// Most hits one search answers.
pub const MAX_LIMIT: usize = 100;

fn searchable(entity: &EntityCatalog, hidden: &std::collections::BTreeSet<String>) -> Vec<String> {
    entity
        .def
        .fields
        .iter()
        .filter(|f| f.searchable && !hidden.contains(&f.key))
        .map(|f| f.key.clone())
        .collect()
}

/// `GET /api/search`: `{hits: [{entity, id, title, snippet, score}]}`, best first.
pub async fn search(
    ctx: &Context,
    catalog: &Catalog,
    index: &dyn SearchIndex,
    text: &str,
    only: Option<&str>,
    limit: usize,
) -> Result<Value> {
    indexer::drain(&ctx.tenant, catalog, index).await?;
    let serving = Serving::load(&ctx.tenant.db).await?;
    let limit = limit.clamp(1, MAX_LIMIT);
    let mut hits = Vec::new();
    for entity in catalog.entities() {
        if only.is_some_and(|o| o != entity.def.key) {
            continue;
        }
        let Ok(access) = ctx.authorize(entity, Action::Read).await else {
            continue;
        };
        let fields = searchable(entity, &access.hidden_fields);
        if fields.is_empty() {
            continue;
        }
        let query = SearchQuery {
            text: text.to_string(),
            fields,
            owners: access.owners.clone(),
            limit,
        };
        for hit in index
            .search(&ctx.tenant.key, &serving.index(&entity.def.key), &query)
            .await?
        {
            hits.push(
                json!({"entity": entity.def.key, "id": hit.id, "title": hit.title,
                             "snippet": hit.snippet, "score": hit.score}),
            );
        }
    }
    hits.sort_by(|a, b| {
        b["score"]
            .as_f64()
            .partial_cmp(&a["score"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    hits.truncate(limit);
    Ok(json!({ "hits": hits }))
}

/// `POST /api/data/{e}/duplicates`: records of any owner that look like the given
/// values (查重 before creating). Answers only `{id, title, owner, score, fields}` —
/// enough to ask the owner, nothing more.
pub async fn duplicates(
    ctx: &Context,
    catalog: &Catalog,
    entity: &EntityCatalog,
    index: &dyn SearchIndex,
    values: &Map<String, Value>,
) -> Result<Value> {
    ctx.authorize(entity, Action::Read).await?;
    indexer::drain(&ctx.tenant, catalog, index).await?;
    let serving = Serving::load(&ctx.tenant.db).await?;
    let mut found: std::collections::BTreeMap<i64, (f32, Value, String, Vec<String>)> =
        Default::default();
    for field in entity.def.fields.iter().filter(|f| f.searchable) {
        let Some(text) = values
            .get(&field.key)
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
        else {
            continue;
        };
        let query = SearchQuery {
            text: text.to_string(),
            fields: vec![field.key.clone()],
            owners: None,
            limit: 10,
        };
        for hit in index
            .search(&ctx.tenant.key, &serving.index(&entity.def.key), &query)
            .await?
        {
            let slot = found.entry(hit.id).or_insert((
                0.0,
                json!(hit.owner),
                hit.title.clone(),
                Vec::new(),
            ));
            slot.0 += hit.score;
            slot.3.push(field.key.clone());
        }
    }
    let mut items: Vec<_> = found.into_iter().collect();
    items.sort_by(|a, b| {
        b.1.0
            .partial_cmp(&a.1.0)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let items: Vec<Value> = items
        .into_iter()
        .take(10)
        .map(|(id, (score, owner, title, fields))| {
            json!({"id": id, "title": title, "owner": owner, "score": score, "fields": fields})
        })
        .collect();
    Ok(json!({ "items": items }))
}
