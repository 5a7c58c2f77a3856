//! The public pool (公海): records of an entity with a `pool` whose owner logged no
//! contact for `reclaim_after_days` return to the pool (owner cleared, audited, the
//! owner notified); staff claim them back, up to `claim_limit` a day each and while
//! they own fewer than `hold_limit`.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{
    Alias, Condition, Expr, ExprTrait, LockType, Order, Query, SelectStatement,
};
use serde_json::Value;

use crate::auth::{Access, Context, SYSTEM_USER};
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::{Error, Result};
use crate::meta::Action;
use crate::store::db::{Backend, TenantDb, query_count};
use crate::store::records::Records;
use crate::store::schema;
use crate::workflow::followups;
use crate::workflow::notifications::{self, Notice};

/// Records reclaimed per transaction.
const BATCH: u64 = 500;

/// What the pool shows `ctx`'s user: records without owner, for anyone who may read
/// the entity (404 when the entity has no pool).
pub async fn pool_access(ctx: &Context, entity: &EntityCatalog) -> Result<Access> {
    if entity.def.pool.is_none() {
        return Err(Error::NotFound(format!(
            "{} has no public pool",
            entity.def.key
        )));
    }
    Ok(unowned(ctx.authorize(entity, Action::Read).await?))
}

/// `access` narrowed to records without owner.
fn unowned(access: Access) -> Access {
    Access {
        rows: Some(Condition::all().add(Expr::col(Alias::new(schema::OWNER)).is_null())),
        ..access
    }
}

/// Returns every overdue record of every pooled entity to the pool, as of `now`;
/// answers `(entity, count)` for each entity that had some.
pub async fn reclaim(
    db: &TenantDb,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> Result<Vec<(String, u64)>> {
    let mut report = Vec::new();
    for entity in catalog.entities() {
        let Some(pool) = &entity.def.pool else {
            continue;
        };
        let count = reclaim_entity(db, catalog, entity, pool.reclaim_after_days, now).await?;
        if count > 0 {
            report.push((entity.def.key.clone(), count));
        }
    }
    Ok(report)
}

/// The records of `entity` the reclaim returns to the pool as of `cutoff`: owned,
/// not deleted, not contacted since, not locked by an approval.
fn reclaimable(db: &TenantDb, entity: &EntityCatalog, cutoff: DateTime<Utc>) -> Condition {
    let locked = Query::select()
        .column(Alias::new("record_id"))
        .from(db.table("record_locks"))
        .and_where(Expr::col(Alias::new("entity")).eq(entity.def.key.as_str()))
        .to_owned();
    schema::contactable()
        .add(schema::last_contact().lt(cutoff))
        .add(Expr::col(Alias::new(schema::ID)).not_in_subquery(locked))
}

/// The ids of up to a batch of the records `condition` selects, most neglected first
/// (along the last-contact index).
fn batch_of(db: &TenantDb, entity: &EntityCatalog, condition: Condition) -> SelectStatement {
    Query::select()
        .column(Alias::new(schema::ID))
        .from(db.table(&entity.table))
        .cond_where(condition)
        .order_by_expr(schema::last_contact(), Order::Asc)
        .order_by(Alias::new(schema::ID), Order::Asc)
        .limit(BATCH)
        .to_owned()
}

/// The selection of the reclaim's next batch as of `cutoff` (public for the plan
/// checks of tests and benchmarks).
pub fn next_batch_query(
    db: &TenantDb,
    entity: &EntityCatalog,
    cutoff: DateTime<Utc>,
) -> SelectStatement {
    batch_of(db, entity, reclaimable(db, entity, cutoff))
}

async fn reclaim_entity(
    db: &TenantDb,
    catalog: &Catalog,
    entity: &EntityCatalog,
    days: u32,
    now: DateTime<Utc>,
) -> Result<u64> {
    // Same calendar rule as follow-ups: last contact `days` or more days ago.
    let cutoff = followups::due_before(crate::clock::date_of(now), days);
    let records = Records::new(db, catalog, entity);
    let ids_of = |rows: Vec<sea_orm::QueryResult>| {
        rows.iter()
            .map(|row| row.try_get::<i64>("", schema::ID))
            .collect::<Result<Vec<i64>, _>>()
    };
    let mut total = 0;
    loop {
        let found = ids_of(
            db.conn()
                .query_all(&next_batch_query(db, entity, cutoff))
                .await?,
        )?;
        if found.is_empty() {
            return Ok(total);
        }
        let txn = db.begin_write().await?;
        // Found outside the transaction: a record contacted, claimed, deleted or
        // locked since is left alone (PostgreSQL also locks the rows until the commit).
        let mut recheck = batch_of(
            db,
            entity,
            reclaimable(db, entity, cutoff).add(Expr::col(Alias::new(schema::ID)).is_in(found)),
        );
        if db.backend() == Backend::Postgres {
            recheck.lock(LockType::Update);
        }
        for id in ids_of(txn.query_all(&recheck).await?)? {
            let current = records.fetch_in(&txn, id, &Access::system()).await?;
            let Some(owner) = current[schema::OWNER].as_i64() else {
                continue;
            };
            records
                .set_owner_in(&txn, &current, None, SYSTEM_USER, "reclaim")
                .await?;
            let title = entity.title_of(&current);
            notifications::send(
                &txn,
                db,
                [owner],
                &Notice {
                    kind: "pool_reclaim",
                    title: format!("{}「{title}」已退回公海", entity.def.label()),
                    body: format!("超过 {days} 天未联系"),
                    entity: Some(&entity.def.key),
                    record_id: Some(id),
                    approval_id: None,
                },
            )
            .await?;
            total += 1;
        }
        txn.commit().await?;
    }
}

/// Claims a record from the pool for `user_id`: it must be in the pool, and the
/// user under the entity's daily claim limit and holding fewer records than its hold
/// limit. The contact clock restarts.
pub async fn claim(
    db: &TenantDb,
    catalog: &Catalog,
    entity: &EntityCatalog,
    id: i64,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<Value> {
    let Some(pool) = &entity.def.pool else {
        return Err(Error::NotFound(format!(
            "{} has no public pool",
            entity.def.key
        )));
    };
    let records = Records::new(db, catalog, entity);
    let txn = db.begin_write().await?;
    let current = records
        .fetch_in(&txn, id, &unowned(Access::full(user_id)))
        .await?;
    if let Some(limit) = pool.claim_limit {
        let claims = Query::select()
            .expr(Expr::col(Alias::new("id")).count())
            .from(db.table("audit_log"))
            .and_where(Expr::col(Alias::new("entity")).eq(entity.def.key.as_str()))
            .and_where(Expr::col(Alias::new("action")).eq("claim"))
            .and_where(Expr::col(Alias::new("user_id")).eq(user_id))
            .and_where(
                Expr::col(Alias::new("at"))
                    .gte(crate::clock::start_of_day(crate::clock::date_of(now))),
            )
            .to_owned();
        let today = query_count(&txn, &claims).await?;
        if today >= i64::from(limit) {
            return Err(Error::Conflict(format!(
                "you have claimed {today} {} record(s) today; the limit is {limit} a day",
                entity.def.label()
            )));
        }
    }
    if let Some(limit) = pool.hold_limit {
        let owned = Query::select()
            .expr(Expr::col(Alias::new(schema::ID)).count())
            .from(db.table(&entity.table))
            .and_where(Expr::col(Alias::new(schema::OWNER)).eq(user_id))
            .and_where(Expr::col(Alias::new(schema::DELETED_AT)).is_null())
            .to_owned();
        let held = query_count(&txn, &owned).await?;
        if held >= i64::from(limit) {
            return Err(Error::Conflict(format!(
                "you already own {held} {} record(s): from {limit} on, no more can be claimed from the pool",
                entity.def.label()
            )));
        }
    }
    records
        .set_owner_in(&txn, &current, Some(user_id), user_id, "claim")
        .await?;
    followups::touch(&txn, db, &entity.def.key, id, now).await?;
    let claimed = records.fetch_in(&txn, id, &Access::full(user_id)).await?;
    txn.commit().await?;
    Ok(claimed)
}
