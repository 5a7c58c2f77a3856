//! Import jobs (`import_jobs`): the progress of one import, written in the same
//! transaction as each batch of records, so what the row says is exactly what was
//! committed. A job whose process died stays `running`; the same file imported again
//! with the same options takes it over (a new runner token) and resumes after its
//! last committed row. A runner whose token was taken over stops at its next batch.

use chrono::Utc;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, QueryResult};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::store::db::{TenantDb, query_first};
use crate::store::value::format_datetime;

const TABLE: &str = "import_jobs";

/// Most row errors (and duplicates) a job keeps; the counts stay exact.
pub const MAX_KEPT: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Done,
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
        }
    }
}

/// A job's counters and kept details, as committed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    pub rows_done: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub errors: Vec<Value>,
    pub duplicates: Vec<Value>,
}

/// A job as its owner sees it (`GET /api/import/jobs/{id}`).
pub struct Job {
    pub id: i64,
    pub runner: String,
    pub started_by: i64,
    pub progress: Progress,
    json: Value,
}

impl Job {
    pub fn to_json(&self) -> Value {
        self.json.clone()
    }
}

fn columns() -> [&'static str; 20] {
    [
        "id",
        "entity",
        "file_name",
        "file_hash",
        "options",
        "status",
        "runner",
        "rows_total",
        "rows_done",
        "created",
        "updated",
        "unchanged",
        "skipped",
        "errors",
        "duplicates",
        "message",
        "started_by",
        "started_at",
        "updated_at",
        "finished_at",
    ]
}

fn decode(row: &QueryResult) -> Result<Job> {
    let count = |name: &str| -> Result<u64> {
        Ok(u64::try_from(row.try_get::<i64>("", name)?).unwrap_or(0))
    };
    let list = |name: &str| -> Result<Vec<Value>> {
        Ok(serde_json::from_str(&row.try_get::<String>("", name)?).unwrap_or_default())
    };
    let progress = Progress {
        rows_done: count("rows_done")?,
        created: count("created")?,
        updated: count("updated")?,
        unchanged: count("unchanged")?,
        skipped: count("skipped")?,
        errors: list("errors")?,
        duplicates: list("duplicates")?,
    };
    let finished: Option<chrono::DateTime<Utc>> = row.try_get("", "finished_at")?;
    let id: i64 = row.try_get("", "id")?;
    let json = json!({
        "id": id,
        "entity": row.try_get::<String>("", "entity")?,
        "file_name": row.try_get::<String>("", "file_name")?,
        "options": serde_json::from_str::<Value>(&row.try_get::<String>("", "options")?).unwrap_or_default(),
        "status": row.try_get::<String>("", "status")?,
        "rows_total": count("rows_total")?,
        "rows_done": progress.rows_done,
        "created": progress.created,
        "updated": progress.updated,
        "unchanged": progress.unchanged,
        "skipped": progress.skipped,
        "errors": progress.errors,
        "duplicates": progress.duplicates,
        "message": row.try_get::<Option<String>>("", "message")?,
        "started_by": row.try_get::<i64>("", "started_by")?,
        "started_at": format_datetime(row.try_get("", "started_at")?),
        "updated_at": format_datetime(row.try_get("", "updated_at")?),
        "finished_at": finished.map(format_datetime),
    });
    Ok(Job {
        id,
        runner: row.try_get("", "runner")?,
        started_by: row.try_get("", "started_by")?,
        progress,
        json,
    })
}

pub async fn get(db: &TenantDb, id: i64) -> Result<Job> {
    let select = Query::select()
        .columns(columns().map(Alias::new))
        .from(db.table(TABLE))
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .to_owned();
    match query_first(&db.conn(), &select).await? {
        Some(row) => decode(&row),
        None => Err(Error::not_found(format!("import job {id}"))),
    }
}

/// The latest jobs `user` started (every user's for `None`), newest first.
pub async fn list(db: &TenantDb, user: Option<i64>, limit: u64) -> Result<Vec<Value>> {
    let mut select = Query::select()
        .columns(columns().map(Alias::new))
        .from(db.table(TABLE))
        .order_by(Alias::new("id"), Order::Desc)
        .limit(limit)
        .to_owned();
    if let Some(user) = user {
        select.and_where(Expr::col(Alias::new("started_by")).eq(user));
    }
    db.conn()
        .query_all(&select)
        .await?
        .iter()
        .map(|row| decode(row).map(|job| job.json))
        .collect()
}

/// What identifies "the same import": the entity, the file's bytes and the options.
pub struct Key<'a> {
    pub entity: &'a str,
    pub file_hash: &'a str,
    pub options: &'a Value,
}

/// Takes over the unfinished job of the same import, or starts a new one. Answers the
/// job with a fresh runner token.
pub async fn start(
    db: &TenantDb,
    key: &Key<'_>,
    file_name: &str,
    rows_total: u64,
    user: i64,
) -> Result<Job> {
    let runner = format!("{:032x}", rand::random::<u128>());
    let options = key.options.to_string();
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let unfinished = Query::select()
        .column(Alias::new("id"))
        .from(db.table(TABLE))
        .and_where(Expr::col(Alias::new("entity")).eq(key.entity))
        .and_where(Expr::col(Alias::new("file_hash")).eq(key.file_hash))
        .and_where(Expr::col(Alias::new("options")).eq(options.as_str()))
        .and_where(Expr::col(Alias::new("status")).ne(Status::Done.as_str()))
        .order_by(Alias::new("id"), Order::Desc)
        .limit(1)
        .to_owned();
    let id = match query_first(&txn, &unfinished).await? {
        Some(row) => {
            let id: i64 = row.try_get("", "id")?;
            let takeover = Query::update()
                .table(db.table(TABLE))
                .value(Alias::new("runner"), runner.as_str())
                .value(Alias::new("status"), Status::Running.as_str())
                .value(Alias::new("message"), Option::<String>::None)
                .value(Alias::new("updated_at"), now)
                .and_where(Expr::col(Alias::new("id")).eq(id))
                .to_owned();
            txn.execute(&takeover).await?;
            id
        }
        None => {
            let insert = Query::insert()
                .into_table(db.table(TABLE))
                // Every column but those the database or the end of the job fills.
                .columns(
                    columns()
                        .into_iter()
                        .filter(|c| !["id", "message", "finished_at"].contains(c))
                        .map(Alias::new),
                )
                .values_panic([
                    key.entity.into(),
                    file_name.into(),
                    key.file_hash.into(),
                    options.as_str().into(),
                    Status::Running.as_str().into(),
                    runner.as_str().into(),
                    (rows_total as i64).into(),
                    0i64.into(),
                    0i64.into(),
                    0i64.into(),
                    0i64.into(),
                    0i64.into(),
                    "[]".into(),
                    "[]".into(),
                    user.into(),
                    now.into(),
                    now.into(),
                ])
                .returning_col(Alias::new("id"))
                .to_owned();
            query_first(&txn, &insert)
                .await?
                .ok_or_else(|| Error::Internal("insert returned no id".into()))?
                .try_get("", "id")?
        }
    };
    txn.commit().await?;
    get(db, id).await
}

/// Records a batch's progress inside the batch's transaction. Fails (so the batch
/// rolls back) when another runner has taken the job over.
pub async fn advance(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    job: &Job,
    progress: &Progress,
) -> Result<()> {
    let update = Query::update()
        .table(db.table(TABLE))
        .values([
            (Alias::new("rows_done"), (progress.rows_done as i64).into()),
            (Alias::new("created"), (progress.created as i64).into()),
            (Alias::new("updated"), (progress.updated as i64).into()),
            (Alias::new("unchanged"), (progress.unchanged as i64).into()),
            (Alias::new("skipped"), (progress.skipped as i64).into()),
            (
                Alias::new("errors"),
                Value::from(progress.errors.clone()).to_string().into(),
            ),
            (
                Alias::new("duplicates"),
                Value::from(progress.duplicates.clone()).to_string().into(),
            ),
            (Alias::new("updated_at"), Utc::now().into()),
        ])
        .and_where(Expr::col(Alias::new("id")).eq(job.id))
        .and_where(Expr::col(Alias::new("runner")).eq(job.runner.as_str()))
        .to_owned();
    if conn.execute(&update).await?.rows_affected() == 0 {
        return Err(Error::Conflict(format!(
            "import job {} was taken over by another run of the same import",
            job.id
        )));
    }
    Ok(())
}

/// Ends the job (when this runner still holds it).
pub async fn finish(db: &TenantDb, job: &Job, status: Status, message: Option<&str>) -> Result<()> {
    let now = Utc::now();
    let update = Query::update()
        .table(db.table(TABLE))
        .value(Alias::new("status"), status.as_str())
        .value(Alias::new("message"), message)
        .value(Alias::new("updated_at"), now)
        .value(Alias::new("finished_at"), now)
        .and_where(Expr::col(Alias::new("id")).eq(job.id))
        .and_where(Expr::col(Alias::new("runner")).eq(job.runner.as_str()))
        .to_owned();
    db.conn().execute(&update).await?;
    Ok(())
}
