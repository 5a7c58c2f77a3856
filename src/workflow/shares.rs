//! Sharing a record with a note (主送 / 抄送 / 知会): recipients by user or by role get
//! a notification, and the share stays on the record's timeline. A share informs;
//! it grants no access beyond what the recipients' roles already give.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::users::{self, User};
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::{Error, FieldError, Result};
use crate::store::db::TenantDb;
use crate::store::value::format_datetime;
use crate::workflow::notifications::{self, Notice};

/// `POST /api/data/{e}/{id}/share`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// 主送: user ids.
    #[serde(default)]
    pub to: Vec<i64>,
    /// 抄送: user ids.
    #[serde(default)]
    pub cc: Vec<i64>,
    /// 知会: user ids.
    #[serde(default)]
    pub notify: Vec<i64>,
    /// Role keys whose members are copied.
    #[serde(default)]
    pub roles: Vec<String>,
    pub note: String,
}

const MAX_NOTE: usize = 2000;

/// Shares a record the sharer has read (`record`), notifying every recipient once
/// with the kind of their strongest mention.
pub async fn share(
    db: &TenantDb,
    catalog: &Catalog,
    entity: &EntityCatalog,
    record: &Value,
    request: &ShareRequest,
    sharer: &User,
) -> Result<Value> {
    let note = request.note.trim();
    let mut errors = Vec::new();
    if note.is_empty() || note.chars().count() > MAX_NOTE {
        errors.push(FieldError::new(
            "note",
            format!("write a note of 1 to {MAX_NOTE} characters"),
        ));
    }
    let people = users::list(db).await?;
    for (field, ids) in [
        ("to", &request.to),
        ("cc", &request.cc),
        ("notify", &request.notify),
    ] {
        for id in ids {
            if !people.iter().any(|u| u.id == *id && u.active) {
                errors.push(FieldError::new(
                    field,
                    format!("user {id} does not exist or is disabled"),
                ));
            }
        }
    }
    for role in &request.roles {
        if !catalog.package.roles.iter().any(|r| &r.key == role) {
            errors.push(FieldError::new("roles", format!("unknown role {role:?}")));
        }
    }
    let from_roles: Vec<i64> = people
        .iter()
        .filter(|u| u.active && u.roles.iter().any(|r| request.roles.contains(r)))
        .map(|u| u.id)
        .collect();
    // Each person once, under the strongest of their mentions, never the sharer.
    let mut seen = BTreeSet::from([sharer.id]);
    let mut groups: Vec<(&str, Vec<i64>)> = Vec::new();
    for (kind, ids) in [
        ("share_to", request.to.clone()),
        ("share_cc", [request.cc.clone(), from_roles].concat()),
        ("share_notify", request.notify.clone()),
    ] {
        groups.push((
            kind,
            ids.into_iter().filter(|id| seen.insert(*id)).collect(),
        ));
    }
    if errors.is_empty() && groups.iter().all(|(_, ids)| ids.is_empty()) {
        errors.push(FieldError::new(
            "to",
            "name at least one other person or role",
        ));
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let record_id = record["id"].as_i64().unwrap_or_default();
    let title = entity.title_of(record);
    let recipients = json!({"to": request.to, "cc": request.cc, "notify": request.notify, "roles": request.roles});
    let txn = db.begin_write().await?;
    let insert = Query::insert()
        .into_table(db.table("record_shares"))
        .columns(
            [
                "entity",
                "record_id",
                "shared_by",
                "recipients",
                "note",
                "at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            entity.def.key.as_str().into(),
            record_id.into(),
            sharer.id.into(),
            recipients.to_string().into(),
            note.into(),
            Utc::now().into(),
        ])
        .to_owned();
    txn.execute(&insert).await?;
    for (kind, ids) in groups {
        notifications::send(
            &txn,
            db,
            ids,
            &Notice {
                kind,
                title: format!(
                    "{} 分享了{}「{title}」",
                    sharer.display_name,
                    entity.def.label()
                ),
                body: note.to_string(),
                entity: Some(&entity.def.key),
                record_id: Some(record_id),
                approval_id: None,
            },
        )
        .await?;
    }
    txn.commit().await?;
    Ok(
        json!({"entity": entity.def.key, "record": record_id, "shared_by": sharer.id,
              "recipients": recipients, "note": note}),
    )
}

/// A record's shares, oldest first.
pub async fn for_record(db: &TenantDb, entity: &str, record_id: i64) -> Result<Vec<Value>> {
    let select = Query::select()
        .columns(["shared_by", "recipients", "note", "at"].map(Alias::new))
        .from(db.table("record_shares"))
        .and_where(Expr::col(Alias::new("entity")).eq(entity))
        .and_where(Expr::col(Alias::new("record_id")).eq(record_id))
        .order_by(Alias::new("id"), Order::Asc)
        .to_owned();
    db.conn()
        .query_all(&select)
        .await?
        .iter()
        .map(|row| {
            let at: DateTime<Utc> = row.try_get("", "at")?;
            let recipients: String = row.try_get("", "recipients")?;
            Ok(json!({
                "shared_by": row.try_get::<i64>("", "shared_by")?,
                "recipients": serde_json::from_str::<Value>(&recipients).unwrap_or(Value::Null),
                "note": row.try_get::<String>("", "note")?,
                "at": format_datetime(at),
            }))
        })
        .collect()
}
