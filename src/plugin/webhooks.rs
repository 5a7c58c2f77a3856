//! Webhooks: the package's `webhooks` tell which record events (created, updated,
//! stage changed, deleted, approved, rejected) are sent where. The dispatcher reads the
//! outbox in order and turns each event into one delivery row per matching webhook, in
//! the transaction that advances its cursor (so no event is lost or doubled by a
//! crash); deliveries are then POSTed, signed with HMAC-SHA256, and retried with
//! exponential backoff until the receiver answers 2xx or the attempts run out. The
//! delivery rows are the delivery log an administrator reads and redelivers from.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LockType, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, QueryResult};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::meta::expr::Expr as Condition;
use crate::meta::{Webhook, WebhookEvent, WebhookFormat};
use crate::store::db::{TenantDb, query_first};
use crate::store::schema;
use crate::store::value::format_datetime;
use crate::tenant::{Tenant, Tenants};

const DELIVERIES: &str = "webhook_deliveries";
const CURSOR: &str = "webhook_cursor";
/// Outbox rows read per dispatcher transaction.
const BATCH: u64 = 500;
/// Deliveries sent per run; the rest wait for the next second.
const SEND_BATCH: u64 = 50;
/// After this many failed attempts a delivery is given up (`failed`); an
/// administrator can still redeliver it.
pub const MAX_ATTEMPTS: i32 = 10;
/// The receiver has this long to answer.
const TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// While one node sends a delivery, others leave it alone for this long.
const SEND_LEASE: Duration = Duration::seconds(60);
/// The receiver's answer kept in the log, in bytes.
const MAX_RESPONSE: usize = 2000;
/// The header carrying `sha256=<hex HMAC of "<timestamp>.<body>">`.
pub const SIGNATURE_HEADER: &str = "X-Metacrm-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Metacrm-Timestamp";

/// How long to wait before attempt `attempts + 1`: 30 s, 1 min, 2 min, … capped at
/// six hours.
pub fn backoff(attempts: i32) -> Duration {
    let exponent = attempts.clamp(1, 20) as u32 - 1;
    Duration::seconds(std::cmp::min(30i64 << exponent, 6 * 3600))
}

/// The signature a receiver recomputes to trust a delivery.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The event an outbox row stands for: its operation, and for any write other than a
/// delete or stage move, whether the record is new (version 1).
fn event_of(op: &str, record: &Value) -> WebhookEvent {
    match op {
        "delete" => WebhookEvent::Deleted,
        "stage" => WebhookEvent::StageChanged,
        "approved" => WebhookEvent::Approved,
        "rejected" => WebhookEvent::Rejected,
        _ if record[schema::VERSION].as_i64() == Some(1) => WebhookEvent::Created,
        _ => WebhookEvent::Updated,
    }
}

/// The body a webhook receives for `event` on `record`.
fn body(
    webhook: &Webhook,
    catalog: &Catalog,
    tenant: &str,
    event: WebhookEvent,
    entity: &str,
    record: &Value,
) -> Result<Value> {
    let entity_catalog = catalog.entity(entity);
    let title = entity_catalog.map_or_else(
        || format!("#{}", record[schema::ID]),
        |e| e.title_of(record),
    );
    Ok(match webhook.format {
        WebhookFormat::Json => json!({
            "event": event,
            "tenant": tenant,
            "entity": entity,
            "id": record[schema::ID],
            "title": title,
            "record": record,
        }),
        WebhookFormat::ChatText => {
            let label = entity_catalog.map_or(entity, |e| e.def.label());
            let text = match &webhook.text {
                Some(template) => render_text(template, event, label, &title, record)?,
                None => format!("{label}「{title}」{}", event.label()),
            };
            json!({"msgtype": "text", "text": {"content": text}})
        }
    })
}

/// A chat message from the webhook's `text` template (minijinja, sandboxed: no
/// loader, fuel-limited, no escaping: the robot shows plain text).
pub fn render_text(
    template: &str,
    event: WebhookEvent,
    entity_label: &str,
    title: &str,
    record: &Value,
) -> Result<String> {
    let env = crate::meta::template::environment(50_000);
    crate::meta::template::render(
        &env,
        template,
        minijinja::context! {
            record => minijinja::Value::from(minijinja::value::Serde(record)),
            title => title,
            entity => entity_label,
            event => event.label(),
        },
    )
    .map_err(|e| Error::BadRequest(format!("webhook text template: {e}")))
}

/// Where the dispatcher stands in the outbox; with `lock`, the row stays locked until
/// the transaction ends (PostgreSQL; SQLite's write transaction already excludes
/// other writers). The row is created by the migration, at the end of the outbox as
/// it then was.
async fn cursor(conn: &impl ConnectionTrait, db: &TenantDb, lock: bool) -> Result<i64> {
    let mut select = Query::select();
    select
        .column(Alias::new("position"))
        .from(db.table(CURSOR))
        .and_where(Expr::col(Alias::new("name")).eq("outbox"));
    if lock {
        select.lock(LockType::Update);
    }
    Ok(match query_first(conn, &select).await? {
        Some(row) => row.try_get("", "position")?,
        None => 0,
    })
}

/// Whether the outbox holds rows past the cursor: read without a lock, so that an
/// idle tenant costs the dispatcher two reads a second, not a write transaction.
async fn has_pending(db: &TenantDb) -> Result<bool> {
    let conn = db.conn();
    let position = cursor(&conn, db, false).await?;
    let select = Query::select()
        .column(Alias::new("id"))
        .from(db.table("outbox"))
        .and_where(Expr::col(Alias::new("id")).gt(position))
        .limit(1)
        .to_owned();
    Ok(query_first(&conn, &select).await?.is_some())
}

/// Turns the outbox rows written since the last run into deliveries; answers how
/// many deliveries it queued. One transaction per batch holds the cursor, so two
/// nodes never queue the same event twice.
pub async fn enqueue(tenant: &Tenant, catalog: &Catalog, now: DateTime<Utc>) -> Result<usize> {
    let db = &tenant.db;
    let listeners = catalog
        .package
        .webhooks
        .iter()
        .map(|webhook| {
            let condition = webhook
                .when
                .as_deref()
                .map(Condition::compile)
                .transpose()
                .map_err(|e| Error::Internal(format!("webhook {}: {e}", webhook.key)))?;
            Ok((webhook, condition))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut queued = 0;
    while has_pending(db).await? {
        let txn = db.begin_write().await?;
        let position = cursor(&txn, db, true).await?;
        let select = Query::select()
            .columns(["id", "entity", "record_id", "op", "payload"].map(Alias::new))
            .from(db.table("outbox"))
            .and_where(Expr::col(Alias::new("id")).gt(position))
            .order_by(Alias::new("id"), Order::Asc)
            .limit(BATCH)
            .to_owned();
        let rows = txn.query_all(&select).await?;
        let Some(last) = rows.last() else {
            return Ok(queued);
        };
        let last: i64 = last.try_get("", "id")?;
        for row in &rows {
            queued += queue_row(&txn, db, catalog, &listeners, &tenant.key, row, now).await?;
        }
        let advance = Query::insert()
            .into_table(db.table(CURSOR))
            .columns(["name", "position"].map(Alias::new))
            .values_panic(["outbox".into(), last.into()])
            .on_conflict(
                OnConflict::column(Alias::new("name"))
                    .update_column(Alias::new("position"))
                    .to_owned(),
            )
            .to_owned();
        txn.execute(&advance).await?;
        txn.commit().await?;
    }
    Ok(queued)
}

/// A webhook and its compiled condition.
type Listener<'a> = (&'a Webhook, Option<Condition>);

/// Queues one outbox row for every webhook that listens to it: its event, its entity,
/// and its condition on the record (one that cannot be evaluated does not hold).
async fn queue_row(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    catalog: &Catalog,
    listeners: &[Listener<'_>],
    tenant: &str,
    row: &QueryResult,
    now: DateTime<Utc>,
) -> Result<usize> {
    let entity: String = row.try_get("", "entity")?;
    let record_id: i64 = row.try_get("", "record_id")?;
    let op: String = row.try_get("", "op")?;
    let payload: String = row.try_get("", "payload")?;
    let record: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
    let event = event_of(&op, &record);
    let mut queued = 0;
    let fields = record.as_object().cloned().unwrap_or_default();
    for (webhook, condition) in listeners {
        if !webhook.events.contains(&event)
            || webhook.entity.as_deref().is_some_and(|e| e != entity)
            || condition
                .as_ref()
                .is_some_and(|c| !c.eval_bool(&fields).unwrap_or(false))
        {
            continue;
        }
        let body = body(webhook, catalog, tenant, event, &entity, &record)?;
        let insert = Query::insert()
            .into_table(db.table(DELIVERIES))
            .columns(
                [
                    "webhook",
                    "event",
                    "entity",
                    "record_id",
                    "payload",
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "created_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                webhook.key.as_str().into(),
                event.as_str().into(),
                entity.as_str().into(),
                record_id.into(),
                body.to_string().into(),
                "pending".into(),
                0i32.into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        conn.execute(&insert).await?;
        queued += 1;
    }
    Ok(queued)
}

/// What one send attempt came to.
struct Attempt {
    status: Option<u16>,
    response: String,
}

async fn post(client: &reqwest::Client, webhook: &Webhook, body: &str, now: i64) -> Attempt {
    let mut request = client
        .post(&webhook.url)
        .timeout(TIMEOUT)
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, now.to_string())
        .body(body.to_string());
    if let Some(secret) = &webhook.secret {
        request = request.header(SIGNATURE_HEADER, signature(secret, now, body));
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            Attempt {
                status: Some(status),
                response: truncate(&text),
            }
        }
        Err(error) => Attempt {
            status: None,
            response: truncate(&error.to_string()),
        },
    }
}

fn truncate(text: &str) -> String {
    let mut end = text.len().min(MAX_RESPONSE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Sends the deliveries due at `now`; answers how many it attempted. Each is first
/// leased (its next attempt moved a minute on, guarded by its old value) so that
/// two nodes never send it at once.
pub async fn send_due(
    tenant: &Tenant,
    catalog: &Catalog,
    client: &reqwest::Client,
    now: DateTime<Utc>,
) -> Result<usize> {
    let db = &tenant.db;
    let select = Query::select()
        .columns(["id", "webhook", "payload", "attempts", "next_attempt_at"].map(Alias::new))
        .from(db.table(DELIVERIES))
        .and_where(Expr::col(Alias::new("status")).eq("pending"))
        .and_where(Expr::col(Alias::new("next_attempt_at")).lte(now))
        .order_by(Alias::new("id"), Order::Asc)
        .limit(SEND_BATCH)
        .to_owned();
    let rows = db.conn().query_all(&select).await?;
    let mut attempted = 0;
    for row in rows {
        let id: i64 = row.try_get("", "id")?;
        let key: String = row.try_get("", "webhook")?;
        let payload: String = row.try_get("", "payload")?;
        let attempts: i32 = row.try_get("", "attempts")?;
        let due: DateTime<Utc> = row.try_get("", "next_attempt_at")?;
        let lease = Query::update()
            .table(db.table(DELIVERIES))
            .value(Alias::new("next_attempt_at"), now + SEND_LEASE)
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .and_where(Expr::col(Alias::new("next_attempt_at")).eq(due))
            .to_owned();
        if db.conn().execute(&lease).await?.rows_affected() == 0 {
            continue;
        }
        let Some(webhook) = catalog.package.webhooks.iter().find(|w| w.key == key) else {
            finish(
                db,
                id,
                "failed",
                attempts,
                now,
                None,
                "the webhook was removed",
            )
            .await?;
            continue;
        };
        let attempt = post(client, webhook, &payload, now.timestamp()).await;
        let attempts = attempts + 1;
        let delivered = attempt.status.is_some_and(|s| (200..300).contains(&s));
        let (status, next) = if delivered {
            ("delivered", now)
        } else if attempts >= MAX_ATTEMPTS {
            ("failed", now)
        } else {
            ("pending", now + backoff(attempts))
        };
        finish(
            db,
            id,
            status,
            attempts,
            next,
            attempt.status,
            &attempt.response,
        )
        .await?;
        attempted += 1;
    }
    Ok(attempted)
}

async fn finish(
    db: &TenantDb,
    id: i64,
    status: &str,
    attempts: i32,
    next: DateTime<Utc>,
    answer: Option<u16>,
    response: &str,
) -> Result<()> {
    let mut update = Query::update();
    update
        .table(db.table(DELIVERIES))
        .value(Alias::new("status"), status)
        .value(Alias::new("attempts"), attempts)
        .value(Alias::new("next_attempt_at"), next)
        .value(Alias::new("last_status"), answer.map(i32::from))
        .value(Alias::new("last_response"), response)
        .and_where(Expr::col(Alias::new("id")).eq(id));
    if status == "delivered" {
        update.value(Alias::new("delivered_at"), next);
    }
    db.conn().execute(&update).await?;
    Ok(())
}

/// Queues what the outbox holds and sends what is due: one dispatcher run.
/// With no webhook configured the cursor still moves on, so a webhook added later
/// hears of events from its publish on, not of the whole history.
pub async fn run(tenant: &Tenant, client: &reqwest::Client, now: DateTime<Utc>) -> Result<()> {
    let catalog = tenant.catalog().await;
    enqueue(tenant, &catalog, now).await?;
    send_due(tenant, &catalog, client, now).await?;
    Ok(())
}

/// The dispatcher inside `serve`: once a second, for every tenant this node has
/// loaded (the only ones it can have written to), queues and sends. A failing run is
/// logged and retried the next second; the delivery rows keep everything meanwhile.
pub async fn serve_forever(tenants: Arc<Tenants>) {
    let client = reqwest::Client::new();
    let mut interval = tokio::time::interval(StdDuration::from_secs(1));
    loop {
        interval.tick().await;
        for key in tenants.loaded_keys().await {
            if !tenants.holds_lease(&key).await {
                continue;
            }
            let result = async {
                let tenant = tenants.get(&key).await?;
                run(&tenant, &client, crate::clock::now()).await
            }
            .await;
            if let Err(error) = result {
                tracing::error!(tenant = %key, %error, "webhook dispatch failed; retrying");
            }
        }
    }
}

/// A filter over the delivery log.
#[derive(Debug, Default)]
pub struct LogFilter {
    pub webhook: Option<String>,
    pub status: Option<String>,
    pub limit: u64,
}

/// The delivery log, newest first.
pub async fn deliveries(db: &TenantDb, filter: &LogFilter) -> Result<Vec<Value>> {
    let mut select = Query::select();
    select
        .columns(
            [
                "id",
                "webhook",
                "event",
                "entity",
                "record_id",
                "payload",
                "status",
                "attempts",
                "next_attempt_at",
                "last_status",
                "last_response",
                "created_at",
                "delivered_at",
            ]
            .map(Alias::new),
        )
        .from(db.table(DELIVERIES))
        .order_by(Alias::new("id"), Order::Desc)
        .limit(filter.limit.clamp(1, 500));
    if let Some(webhook) = &filter.webhook {
        select.and_where(Expr::col(Alias::new("webhook")).eq(webhook.as_str()));
    }
    if let Some(status) = &filter.status {
        select.and_where(Expr::col(Alias::new("status")).eq(status.as_str()));
    }
    db.conn()
        .query_all(&select)
        .await?
        .iter()
        .map(|row| {
            let at = |column: &str| -> Result<Option<String>> {
                Ok(row
                    .try_get::<Option<DateTime<Utc>>>("", column)?
                    .map(format_datetime))
            };
            let payload: String = row.try_get("", "payload")?;
            Ok(json!({
                "id": row.try_get::<i64>("", "id")?,
                "webhook": row.try_get::<String>("", "webhook")?,
                "event": row.try_get::<String>("", "event")?,
                "entity": row.try_get::<String>("", "entity")?,
                "record_id": row.try_get::<i64>("", "record_id")?,
                "body": serde_json::from_str::<Value>(&payload).unwrap_or(Value::Null),
                "status": row.try_get::<String>("", "status")?,
                "attempts": row.try_get::<i32>("", "attempts")?,
                "next_attempt_at": at("next_attempt_at")?,
                "last_status": row.try_get::<Option<i32>>("", "last_status")?,
                "last_response": row.try_get::<Option<String>>("", "last_response")?,
                "created_at": at("created_at")?,
                "delivered_at": at("delivered_at")?,
            }))
        })
        .collect()
}

/// Sends a delivery again at the next dispatcher run, whatever became of it, with a
/// fresh count of attempts.
pub async fn redeliver(db: &TenantDb, id: i64, now: DateTime<Utc>) -> Result<()> {
    let update = Query::update()
        .table(db.table(DELIVERIES))
        .value(Alias::new("status"), "pending")
        .value(Alias::new("attempts"), 0i32)
        .value(Alias::new("next_attempt_at"), now)
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .to_owned();
    if db.conn().execute(&update).await?.rows_affected() == 0 {
        return Err(Error::not_found(format!("webhook delivery {id}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_six_hours() {
        assert_eq!(backoff(1), Duration::seconds(30));
        assert_eq!(backoff(2), Duration::seconds(60));
        assert_eq!(backoff(5), Duration::seconds(480));
        assert_eq!(backoff(30), Duration::hours(6));
    }

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let signed = signature("s3cret", 1_700_000_000, "{\"a\":1}");
        assert!(signed.starts_with("sha256=") && signed.len() == 7 + 64);
        assert_ne!(signed, signature("s3cret", 1_700_000_001, "{\"a\":1}"));
        assert_ne!(signed, signature("other", 1_700_000_000, "{\"a\":1}"));
    }

    #[test]
    fn events_come_from_the_operation_and_the_version() {
        let new = json!({"id": 1, "version": 1});
        let old = json!({"id": 1, "version": 3});
        assert_eq!(event_of("create", &new), WebhookEvent::Created);
        assert_eq!(event_of("import", &new), WebhookEvent::Created);
        assert_eq!(event_of("import", &old), WebhookEvent::Updated);
        assert_eq!(event_of("update", &old), WebhookEvent::Updated);
        assert_eq!(event_of("stage", &old), WebhookEvent::StageChanged);
        assert_eq!(event_of("delete", &old), WebhookEvent::Deleted);
        assert_eq!(event_of("approved", &old), WebhookEvent::Approved);
    }

    #[test]
    fn chat_text_renders_fields_and_stops_runaway_templates() {
        let record = json!({"name": "深圳市震华", "amount": "12000.00"});
        let text = render_text(
            "{{ entity }}「{{ title }}」{{ event }}，金额 {{ record.amount }}",
            WebhookEvent::StageChanged,
            "商机",
            "深圳市震华",
            &record,
        )
        .unwrap();
        assert_eq!(text, "商机「深圳市震华」阶段变更，金额 12000.00");
        let endless = render_text(
            "{% for i in range(1000000) %}{{ i }}{% endfor %}",
            WebhookEvent::Created,
            "",
            "",
            &record,
        );
        assert!(endless.is_err());
    }
}
