//! Search as the API offers it: across the entities the caller may read, with their
//! row scope as an owner filter inside the engine and masked fields left out of both
//! matching and snippets; and the duplicate check before creating a record, which
//! may refuse a certain duplicate.

use serde_json::{Map, Value, json};

use crate::auth::Context;
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::{Error, Result};
use crate::meta::Action;
use crate::search::duplicates::{self, Match, Verdict};
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
    indexer::catch_up(&ctx.tenant, catalog, index).await?;
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
/// values (查重 before creating), surest first. Answers who has each one and why —
/// `duplicates::Match::to_json` — nothing more of the records.
pub async fn duplicates(
    ctx: &Context,
    catalog: &Catalog,
    entity: &EntityCatalog,
    index: &dyn SearchIndex,
    values: &Map<String, Value>,
) -> Result<Value> {
    ctx.authorize(entity, Action::Read).await?;
    let matches = find_duplicates(ctx, catalog, entity, index, values).await?;
    let items: Vec<Value> = matches.iter().map(Match::to_json).collect();
    Ok(json!({ "items": items }))
}

async fn find_duplicates(
    ctx: &Context,
    catalog: &Catalog,
    entity: &EntityCatalog,
    index: &dyn SearchIndex,
    values: &Map<String, Value>,
) -> Result<Vec<Match>> {
    indexer::catch_up(&ctx.tenant, catalog, index).await?;
    let serving = Serving::load(&ctx.tenant.db).await?;
    duplicates::find(&ctx.tenant.key, &serving, entity, index, values).await
}

/// Before a create on an entity whose duplicate check blocks: refuses (409 with the
/// matches) when a certain duplicate exists, unless `force` is asked by a user
/// allowed to override (an administrator or one of the check's `force_roles`).
pub async fn refuse_duplicates(
    ctx: &Context,
    catalog: &Catalog,
    entity: &EntityCatalog,
    index: &dyn SearchIndex,
    record: &Value,
    force: bool,
) -> Result<()> {
    let Some(check) = entity.def.duplicate_check.as_ref().filter(|c| c.block) else {
        return Ok(());
    };
    if force {
        let allowed = ctx.require_admin().await.is_ok()
            || ctx.user.roles.iter().any(|r| check.force_roles.contains(r));
        return match allowed {
            true => Ok(()),
            false => Err(Error::Forbidden(format!(
                "you may not override the duplicate check of {}",
                entity.def.key
            ))),
        };
    }
    let Some(values) = record.as_object() else {
        return Ok(());
    };
    let certain: Vec<Value> = find_duplicates(ctx, catalog, entity, index, values)
        .await?
        .iter()
        .filter(|m| m.verdict == Verdict::Certain)
        .map(Match::to_json)
        .collect();
    match certain.is_empty() {
        true => Ok(()),
        false => Err(Error::Duplicate(certain)),
    }
}
