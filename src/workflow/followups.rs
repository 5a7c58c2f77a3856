//! Follow-up cycles (联系周期): each record of an entity with a `followup` is due for
//! contact N days after its last contact (its creation, before any), N chosen by the
//! value of a select field. Creating a record of the cycle's activity entity that
//! refers to it counts as a contact. Dates are the tenant's calendar days.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query, SelectStatement};
use serde_json::{Value, json};

use crate::auth::{Access, Context};
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::Result;
use crate::meta::{Action, FieldType};
use crate::store::db::TenantDb;
use crate::store::schema;
use crate::store::value::{self, format_datetime};

/// Restarts a record's contact clock.
pub async fn touch(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    entity: &str,
    id: i64,
    at: DateTime<Utc>,
) -> Result<()> {
    let update = Query::update()
        .table(db.table(&schema::table_name(entity)))
        .value(Alias::new(schema::LAST_CONTACT_AT), at)
        .and_where(Expr::col(Alias::new(schema::ID)).eq(id))
        .to_owned();
    conn.execute(&update).await?;
    Ok(())
}

/// The follow-up cycles a record of `activity_entity` counts as a contact for: each
/// entity with a cycle, and the activity's field that refers to it.
fn contact_links<'c>(
    catalog: &'c Catalog,
    activity_entity: &'c str,
) -> impl Iterator<Item = (&'c EntityCatalog, &'c str)> + 'c {
    catalog.entities().filter_map(move |entity| {
        let link = entity.def.followup.as_ref()?.activity.as_ref()?;
        (link.entity == activity_entity).then_some((&**entity, link.field.as_str()))
    })
}

/// Whether creating a record of `entity` counts as a contact for some cycle.
pub fn counts_as_contact(catalog: &Catalog, entity: &str) -> bool {
    contact_links(catalog, entity).next().is_some()
}

/// A new activity record counts as a contact for the records it refers to through
/// any follow-up cycle's activity link.
pub async fn record_contact(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    catalog: &Catalog,
    activity_entity: &str,
    activity: &Value,
) -> Result<()> {
    for (entity, field) in contact_links(catalog, activity_entity) {
        if let Some(target) = activity[field].as_i64() {
            touch(conn, db, &entity.def.key, target, Utc::now()).await?;
        }
    }
    Ok(())
}

/// The instant from which a contact on a day `days` before `today` is due today:
/// a record last contacted before it is due (or overdue).
pub fn due_before(today: NaiveDate, days: u32) -> DateTime<Utc> {
    crate::clock::start_of_day(today - Duration::days(i64::from(days)) + Duration::days(1))
}

/// Records due or overdue for contact at `now`, within what `access` reaches, most
/// overdue first: `{entity, id, title, owner, category, last_contact_at, due_on,
/// overdue_days}`.
pub async fn due_for_entity(
    db: &TenantDb,
    entity: &EntityCatalog,
    access: &Access,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Value>> {
    let Some(followup) = &entity.def.followup else {
        return Ok(Vec::new());
    };
    let today = crate::clock::date_of(now);
    let title = textual_title(entity);
    let conn = db.conn();
    let mut items = Vec::new();
    for (option, days) in &followup.days {
        let category = (option.as_str(), *days);
        let select = due_query(db, entity, access, &followup.field, category, today, limit);
        for row in conn.query_all(&select).await? {
            let created: DateTime<Utc> = row.try_get("", schema::CREATED_AT)?;
            let contacted = value::from_row(&row, schema::LAST_CONTACT_AT, FieldType::Datetime, 0)?;
            let contacted_at: Option<DateTime<Utc>> = row.try_get("", schema::LAST_CONTACT_AT)?;
            let due_on = crate::clock::date_of(contacted_at.unwrap_or(created))
                + Duration::days(i64::from(*days));
            items.push(json!({
                "entity": entity.def.key,
                "id": row.try_get::<i64>("", schema::ID)?,
                "title": match &title {
                    Some(t) => row.try_get::<Option<String>>("", t)?,
                    None => None,
                },
                "owner": row.try_get::<Option<i64>>("", schema::OWNER)?,
                "category": option,
                "last_contact_at": contacted,
                "created_at": format_datetime(created),
                "due_on": due_on.to_string(),
                "overdue_days": (today - due_on).num_days(),
            }));
        }
    }
    Ok(items)
}

/// The entity's title field when it holds text (the due list shows it).
fn textual_title(entity: &EntityCatalog) -> Option<String> {
    entity
        .def
        .title_field
        .clone()
        .filter(|t| entity.field(t).is_some_and(|f| f.field_type.is_textual()))
}

/// The records of `entity` whose `field` (the cycle's select field) holds the
/// category's option, due for contact on `today` after the category's days, within
/// `access`, most overdue first. Filters and sorts on the expression the last-contact
/// index holds, for the records it holds.
pub fn due_query(
    db: &TenantDb,
    entity: &EntityCatalog,
    access: &Access,
    field: &str,
    (option, days): (&str, u32),
    today: NaiveDate,
    limit: u64,
) -> SelectStatement {
    let mut select = Query::select();
    select
        .columns(
            [
                schema::ID,
                schema::OWNER,
                schema::CREATED_AT,
                schema::LAST_CONTACT_AT,
            ]
            .map(Alias::new),
        )
        .from(db.table(&entity.table))
        // Records in the public pool are nobody's to follow up.
        .cond_where(schema::contactable())
        .and_where(Expr::col(Alias::new(field)).eq(option))
        .and_where(schema::last_contact().lt(due_before(today, days)))
        .order_by_expr(schema::last_contact(), Order::Asc)
        .order_by(Alias::new(schema::ID), Order::Asc)
        .limit(limit);
    if let Some(title) = textual_title(entity) {
        select.column(Alias::new(title));
    }
    if let Some(rows) = &access.rows {
        select.cond_where(rows.clone());
    }
    select
}

/// `GET /api/followups/due`: across the entities with a cycle the caller may read
/// (or one of them), most overdue first.
pub async fn due(
    ctx: &Context,
    catalog: &Catalog,
    only: Option<&str>,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    for entity in catalog.entities() {
        if entity.def.followup.is_none() || only.is_some_and(|o| o != entity.def.key) {
            continue;
        }
        let Ok(access) = ctx.authorize(entity, Action::Read).await else {
            continue;
        };
        items.extend(due_for_entity(&ctx.tenant.db, entity, &access, now, limit).await?);
    }
    items.sort_by(|a, b| {
        b["overdue_days"]
            .as_i64()
            .cmp(&a["overdue_days"].as_i64())
            .then(a["entity"].as_str().cmp(&b["entity"].as_str()))
            .then(a["id"].as_i64().cmp(&b["id"].as_i64()))
    });
    items.truncate(limit as usize);
    Ok(items)
}
