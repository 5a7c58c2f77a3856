//! Titles of referenced records, for showing a reference as the record's title
//! rather than its id (report labels, list and record pages).

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};

use crate::auth::Access;
use crate::catalog::EntityCatalog;
use crate::error::Result;
use crate::store::db::TenantDb;
use crate::store::schema;

/// `id → title` of the target's records among `ids` the caller may read.
pub async fn titles(
    db: &TenantDb,
    target: &EntityCatalog,
    access: &Access,
    ids: &BTreeSet<i64>,
) -> Result<BTreeMap<String, String>> {
    let Some(title) = target.def.title_field.as_deref() else {
        return Ok(BTreeMap::new());
    };
    if ids.is_empty() || access.hidden_fields.contains(title) {
        return Ok(BTreeMap::new());
    }
    let mut select = Query::select();
    select
        .columns([Alias::new(schema::ID), Alias::new(title)])
        .from(db.table(&target.table))
        .and_where(Expr::col(Alias::new(schema::ID)).is_in(ids.iter().copied()))
        .and_where(Expr::col(Alias::new(schema::DELETED_AT)).is_null());
    if let Some(rows) = &access.rows {
        select.cond_where(rows.clone());
    }
    let mut labels = BTreeMap::new();
    for row in db.conn().query_all(&select).await? {
        let id: i64 = row.try_get("", schema::ID)?;
        if let Some(text) = row.try_get::<Option<String>>("", title)? {
            labels.insert(id.to_string(), text);
        }
    }
    Ok(labels)
}
