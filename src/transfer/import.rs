//! Importing a spreadsheet into an entity (导入). Columns map to fields by key or label
//! (Chinese headers; a trailing `*` marking required columns is ignored) or by an
//! explicit mapping; cells are coerced the Chinese way (`coerce`); every row then goes
//! through the records store exactly like a user's create or update, in batches of
//! [`BATCH_ROWS`] rows per transaction. A batch's new records are written together at
//! its end (`Records::insert_many`), updates each in its own savepoint; either way a
//! refused row leaves nothing behind.
//!
//! A run has two halves: the [`Reader`] turns rows into what they ask of the store
//! (coerced, validated, prepared records), the [`Writer`] writes them and keeps the
//! counts. When no row's reading depends on what earlier rows wrote (no upsert key, no
//! column referring to the imported entity), the reader runs on a thread of its own,
//! one batch ahead of the writer; otherwise each row is read inside the writer's
//! transaction just before it is written.
//!
//! A dry run is the same run with every batch rolled back: it reports what a real run
//! would create and update, and every row error, and changes nothing. A real run
//! records its progress in an import job inside each batch's transaction, so killing
//! it loses nothing committed, and importing the same file with the same options
//! again resumes after the last committed row (`jobs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::coerce::{self, coerce};
use super::jobs::{self, Job, MAX_KEPT, Progress, Status};
use super::sheet::{Cell, Sheet, Source, text_of};
use crate::auth::{Access, Context};
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::{Error, FieldError, Result};
use crate::meta::{Action, Field, FieldType};
use crate::search::SearchIndex;
use crate::search::duplicates::{self, Verdict};
use crate::search::indexer::{self, Serving};
use crate::store::records::Records;
use crate::store::schema;

/// Rows written per transaction.
pub const BATCH_ROWS: usize = 500;

/// What to do with rows that look like records that already exist (查重).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicatePolicy {
    /// Import them and list them in `duplicates`.
    #[default]
    Report,
    /// Refuse rows that certainly duplicate a record (or an earlier row) as errors.
    Skip,
    /// No check (administrators only: large migrations into an empty entity).
    Off,
}

impl std::str::FromStr for DuplicatePolicy {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        serde_json::from_value(json!(text)).map_err(|_| {
            Error::BadRequest(format!(
                "duplicates must be report, skip or off, not {text:?}"
            ))
        })
    }
}

/// How to import a file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportOptions {
    pub dry_run: bool,
    /// A unique field (or `id`): rows whose value matches a record update it.
    pub upsert_on: Option<String>,
    /// Column header → field key (`""` ignores the column); overrides the automatic
    /// mapping for the columns it names.
    pub mapping: BTreeMap<String, String>,
    pub duplicates: DuplicatePolicy,
}

impl ImportOptions {
    /// What makes two runs "the same import" besides the file (the dry-run flag does
    /// not: dry runs keep no job).
    fn identity(&self) -> Value {
        json!({"upsert_on": self.upsert_on, "mapping": self.mapping, "duplicates": self.duplicates})
    }
}

/// One refused cell or row; `row` counts data rows from 1 after the header. `column`
/// is the file's header (or the field's label when the file has no such column).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RowError {
    pub row: u64,
    pub column: Option<String>,
    pub message: String,
}

/// The outcome: `{created, updated, errors}` as the contract says, and the rest.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub job: Option<i64>,
    pub dry_run: bool,
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub errors: Vec<Value>,
    pub duplicates: Vec<Value>,
    /// How each column was read: `{column, field}`.
    pub columns: Vec<Value>,
    /// Columns left out, each with why: `{column, reason}`.
    pub ignored_columns: Vec<Value>,
    /// Where a resumed import started again (rows before it were committed earlier).
    pub resumed_after_row: Option<u64>,
}

/// What a column feeds.
#[derive(Debug, Clone)]
enum Target {
    Field(Box<Field>),
    Owner,
    Stage,
    Id,
}

impl Target {
    fn key(&self) -> &str {
        match self {
            Target::Field(field) => &field.key,
            Target::Owner => schema::OWNER,
            Target::Stage => schema::STAGE,
            Target::Id => schema::ID,
        }
    }
}

#[derive(Debug, Clone)]
struct Column {
    index: usize,
    header: String,
    target: Target,
}

/// A header as written, minus a required marker: `客户名称*`, `*电话`, `邮箱（必填）`.
fn bare_header(header: &str) -> &str {
    let mut text = header.trim();
    for marker in ["(必填)", "（必填）", "*", "＊"] {
        text = text
            .trim_start_matches(marker)
            .trim_end_matches(marker)
            .trim();
    }
    text
}

const OWNER_HEADERS: [&str; 4] = ["owner", "负责人", "所有者", "归属人"];
const STAGE_HEADERS: [&str; 2] = ["stage", "阶段"];
const ID_HEADERS: [&str; 2] = ["id", "ID"];

/// The columns of the file, read against the entity and the options.
fn map_columns(
    entity: &EntityCatalog,
    headers: &[String],
    options: &ImportOptions,
    access: &Access,
) -> Result<(Vec<Column>, Vec<Value>)> {
    for header in options.mapping.keys() {
        if !headers.iter().any(|h| h == header) {
            return Err(Error::BadRequest(format!(
                "mapping names column {header:?}, which the file does not have (columns: {})",
                headers.join(", ")
            )));
        }
    }
    let target_of = |key: &str| -> Option<Target> {
        match key {
            schema::OWNER => Some(Target::Owner),
            schema::STAGE if entity.has_pipeline() => Some(Target::Stage),
            schema::ID => Some(Target::Id),
            _ => entity
                .field(key)
                .cloned()
                .map(|f| Target::Field(Box::new(f))),
        }
    };
    let mut columns: Vec<Column> = Vec::new();
    let mut ignored = Vec::new();
    for (index, header) in headers.iter().enumerate() {
        let target = match options.mapping.get(header) {
            Some(key) if key.is_empty() => None,
            Some(key) => Some(target_of(key).ok_or_else(|| {
                Error::BadRequest(format!(
                    "mapping sends column {header:?} to {key:?}, which is not a field of {}",
                    entity.def.key
                ))
            })?),
            None => {
                let bare = bare_header(header);
                entity
                    .def
                    .fields
                    .iter()
                    .find(|f| f.key == bare || f.label() == bare)
                    .or_else(|| {
                        entity.def.fields.iter().find(|f| {
                            f.key.eq_ignore_ascii_case(bare) || f.label().eq_ignore_ascii_case(bare)
                        })
                    })
                    .cloned()
                    .map(|f| Target::Field(Box::new(f)))
                    .or_else(|| {
                        let named =
                            |names: &[&str]| names.iter().any(|n| n.eq_ignore_ascii_case(bare));
                        if named(&OWNER_HEADERS) {
                            Some(Target::Owner)
                        } else if named(&STAGE_HEADERS) && entity.has_pipeline() {
                            Some(Target::Stage)
                        } else if named(&ID_HEADERS) {
                            Some(Target::Id)
                        } else {
                            None
                        }
                    })
            }
        };
        let Some(target) = target else {
            let reason = match header.is_empty() {
                true => "the column has no header",
                false if options.mapping.contains_key(header) => "ignored by the mapping",
                false => "no field has this key or label",
            };
            ignored.push(json!({"column": header_name(header, index), "reason": reason}));
            continue;
        };
        let is_key = options.upsert_on.as_deref() == Some(target.key());
        if let Target::Field(field) = &target
            && field.is_computed()
            && !is_key
        {
            ignored.push(
                json!({"column": header, "reason": format!("{} is computed", field.label())}),
            );
            continue;
        }
        if matches!(target, Target::Id) && !is_key {
            ignored.push(json!({"column": header, "reason": "ids are only read to match records (upsert_on=id)"}));
            continue;
        }
        if let Some(other) = columns.iter().find(|c| c.target.key() == target.key()) {
            return Err(Error::BadRequest(format!(
                "columns {:?} and {header:?} both map to {}; map one of them elsewhere or to \"\"",
                other.header,
                target.key()
            )));
        }
        columns.push(Column {
            index,
            header: header.clone(),
            target,
        });
    }
    let denied: Vec<FieldError> = columns
        .iter()
        .filter(|c| access.readonly_fields.contains(c.target.key()))
        .map(|c| {
            FieldError::new(
                c.target.key(),
                format!("column {:?}: you may not write this field", c.header),
            )
        })
        .collect();
    if !denied.is_empty() {
        return Err(Error::ForbiddenFields(denied));
    }
    if let Some(key) = &options.upsert_on {
        let unique = key == schema::ID || entity.field(key).is_some_and(|f| f.unique);
        if !unique {
            return Err(Error::BadRequest(format!(
                "upsert_on must be id or a unique field of {}; {key:?} is not",
                entity.def.key
            )));
        }
        if !columns.iter().any(|c| c.target.key() == key) {
            return Err(Error::BadRequest(format!(
                "upsert_on is {key:?} but no column of the file maps to it"
            )));
        }
    }
    if columns.is_empty() {
        return Err(Error::BadRequest(format!(
            "no column of the file maps to a field of {} (columns: {})",
            entity.def.key,
            headers.join(", ")
        )));
    }
    Ok((columns, ignored))
}

fn header_name(header: &str, index: usize) -> String {
    match header.is_empty() {
        true => format!("#{}", index + 1),
        false => header.to_string(),
    }
}

/// Users by id, username and display name, for user columns.
struct People {
    by_name: HashMap<String, Vec<i64>>,
}

impl People {
    async fn load(ctx: &Context) -> Result<People> {
        let mut by_name: HashMap<String, Vec<i64>> = HashMap::new();
        for user in crate::auth::users::list(&ctx.tenant.db).await? {
            by_name
                .entry(user.username.to_lowercase())
                .or_default()
                .push(user.id);
            if user.display_name.to_lowercase() != user.username.to_lowercase() {
                by_name
                    .entry(user.display_name.to_lowercase())
                    .or_default()
                    .push(user.id);
            }
        }
        Ok(People { by_name })
    }

    fn find(&self, text: &str) -> Result<i64, String> {
        match self
            .by_name
            .get(&text.trim().to_lowercase())
            .map(Vec::as_slice)
        {
            Some([id]) => Ok(*id),
            Some(_) => Err(format!(
                "several users are called {text:?}; write the username"
            )),
            None => Err(format!("no user is called {text:?}")),
        }
    }
}

/// Records named by title (or `#id`) in reference columns, within what the importer
/// may read of the target; looked up once per distinct text.
#[derive(Default)]
struct Titles {
    found: HashMap<(String, String), Result<i64, String>>,
}

impl Titles {
    async fn find(
        &mut self,
        conn: &impl ConnectionTrait,
        ctx: &Context,
        catalog: &Catalog,
        field: &Field,
        text: &str,
    ) -> Result<Result<i64, String>> {
        let target_key = field.target.as_deref().unwrap_or_default();
        let cache_key = (target_key.to_string(), text.to_string());
        if let Some(found) = self.found.get(&cache_key) {
            return Ok(found.clone());
        }
        let target = ctx.entity(catalog, target_key)?;
        let found = match ctx.authorize(target, Action::Read).await {
            Err(_) => Err(format!("you may not read {} records", target.def.label())),
            Ok(access) => lookup(conn, ctx, target, &access, text).await?,
        };
        self.found.insert(cache_key, found.clone());
        Ok(found)
    }
}

async fn lookup(
    conn: &impl ConnectionTrait,
    ctx: &Context,
    target: &EntityCatalog,
    access: &Access,
    text: &str,
) -> Result<Result<i64, String>> {
    let label = target.def.label();
    let by_id = text.strip_prefix('#').unwrap_or(text).parse::<i64>().ok();
    let mut select = Query::select();
    select
        .column(Alias::new(schema::ID))
        .from(ctx.tenant.db.table(&target.table))
        .and_where(Expr::col(Alias::new(schema::DELETED_AT)).is_null())
        .limit(2);
    let title = target.def.title_field.as_deref();
    match (title, by_id) {
        (_, Some(id)) if text.starts_with('#') || title.is_none() => {
            select.and_where(Expr::col(Alias::new(schema::ID)).eq(id));
        }
        (Some(title), _) => {
            select.and_where(Expr::col(Alias::new(title)).eq(text));
        }
        (None, _) => return Ok(Err(format!("{label} records are named by id (#123)"))),
    }
    if let Some(rows) = &access.rows {
        select.cond_where(rows.clone());
    }
    let ids: Vec<i64> = conn
        .query_all(&select)
        .await?
        .iter()
        .map(|row| row.try_get("", schema::ID))
        .collect::<Result<_, _>>()?;
    Ok(match ids.as_slice() {
        [id] => Ok(*id),
        [] => Err(format!("no {label} record is named {text:?}")),
        _ => Err(format!(
            "several {label} records are named {text:?}; write #id instead"
        )),
    })
}

/// Earlier rows of the same file, for the duplicate check (the search index does not
/// see rows of a batch not yet committed) and unique fields.
#[derive(Default)]
struct Seen {
    /// (field, normalised text) → the first row with it.
    searchable: HashMap<(String, String), u64>,
    unique: HashMap<(String, String), u64>,
}

/// The text a searchable value is compared by within the file, if any.
fn comparable(field: &Field, is_title: bool, text: &str) -> Option<String> {
    match field.field_type {
        FieldType::Phone => {
            duplicates::phone_digits(text).map(|d| d[d.len().saturating_sub(8)..].to_string())
        }
        FieldType::Email => Some(text.trim().to_lowercase()),
        _ if is_title => Some(duplicates::core_name(text)).filter(|n| !n.is_empty()),
        _ => None,
    }
}

/// An import checked and ready to run: rights, columns, size and (for a real run)
/// its job, taken over when the same import was interrupted.
pub struct Prepared {
    ctx: Context,
    catalog: Arc<Catalog>,
    entity: Arc<EntityCatalog>,
    access: Access,
    source: Source,
    columns: Vec<Column>,
    ignored: Vec<Value>,
    options: ImportOptions,
    rows_total: u64,
    job: Option<Job>,
}

/// Checks an import as `ctx`'s user, who needs the `import` right on the entity (rows
/// are created and updated within that right's scope), and starts its job.
pub async fn prepare(
    ctx: &Context,
    catalog: Arc<Catalog>,
    entity_key: &str,
    source: Source,
    file_name: &str,
    options: ImportOptions,
) -> Result<Prepared> {
    let entity = ctx.entity(&catalog, entity_key)?;
    let access = ctx.authorize(entity, Action::Import).await?;
    if options.duplicates == DuplicatePolicy::Off {
        ctx.require_admin().await.map_err(|_| {
            Error::Forbidden("only administrators may import without the duplicate check".into())
        })?;
    }
    let sheet = Sheet::open(&source)?;
    let (columns, ignored) = map_columns(entity, &sheet.headers, &options, &access)?;
    let rows_total = Sheet::count_rows(&source)?;
    let job = match options.dry_run {
        true => None,
        false => {
            let hash = source.fingerprint()?;
            let identity = options.identity();
            let key = jobs::Key {
                entity: entity_key,
                file_hash: &hash,
                options: &identity,
            };
            Some(jobs::start(&ctx.tenant.db, &key, file_name, rows_total, ctx.user.id).await?)
        }
    };
    Ok(Prepared {
        ctx: ctx.clone(),
        entity: entity.clone(),
        catalog,
        access,
        source,
        columns,
        ignored,
        options,
        rows_total,
        job,
    })
}

/// [`prepare`], then [`Prepared::run`].
#[allow(clippy::too_many_arguments)]
pub async fn run(
    ctx: &Context,
    catalog: Arc<Catalog>,
    entity_key: &str,
    index: Arc<dyn SearchIndex>,
    source: Source,
    file_name: &str,
    options: ImportOptions,
    on_batch: &(dyn Fn(&Progress, u64) + Send + Sync),
) -> Result<ImportReport> {
    let prepared = prepare(ctx, catalog, entity_key, source, file_name, options).await?;
    Arc::new(prepared).run(index, on_batch).await
}

impl Prepared {
    fn records(&self) -> Records<'_> {
        Records::new(&self.ctx.tenant.db, &self.catalog, &self.entity)
    }

    /// Whether the batch's new records can wait for its end: the entity writes them
    /// together (nothing reacts to each create) and no column refers to records of
    /// the entity itself, which an earlier row of the file may create.
    fn creates_in_batches(&self, records: &Records) -> bool {
        let refers_to_itself = self.columns.iter().any(|c| {
            matches!(&c.target, Target::Field(f)
                if f.field_type == FieldType::Reference && f.target.as_deref() == Some(&self.entity.def.key))
        });
        records.inserts_in_batches() && !refers_to_itself
    }

    /// Whether a batch can be read while the previous one is written: reading a row
    /// then needs nothing that writing earlier rows changes (no upsert key to look
    /// up, no reference to the imported entity, new records waiting for their batch).
    fn reads_ahead(&self, records: &Records) -> bool {
        self.creates_in_batches(records) && self.options.upsert_on.is_none()
    }

    /// The job a real run records its progress in.
    pub fn job(&self) -> Option<i64> {
        self.job.as_ref().map(|j| j.id)
    }

    /// Imports the rows; `on_batch` hears the committed progress after every batch
    /// (the CLI's progress bar). The job ends done, or failed with the error.
    pub async fn run(
        self: Arc<Self>,
        index: Arc<dyn SearchIndex>,
        on_batch: &(dyn Fn(&Progress, u64) + Send + Sync),
    ) -> Result<ImportReport> {
        let outcome = self.import(index, on_batch).await;
        let db = &self.ctx.tenant.db;
        if outcome.is_ok() && !self.options.dry_run {
            // An import may grow the table tenfold: plans should know it now. (Stale
            // statistics make slower plans, never wrong answers: not worth failing.)
            if let Err(error) = db.refresh_statistics().await {
                tracing::warn!(tenant = %db.key, %error, "planner statistics not refreshed");
            }
        }
        if let Some(job) = &self.job {
            match &outcome {
                Ok(_) => jobs::finish(db, job, Status::Done, None).await?,
                // Taken over by another run of the same import, which now owns the job.
                Err(Error::Conflict(_)) => {}
                Err(e) => jobs::finish(db, job, Status::Failed, Some(&e.to_string())).await?,
            }
        }
        outcome
    }

    async fn import(
        self: &Arc<Self>,
        index: Arc<dyn SearchIndex>,
        on_batch: &(dyn Fn(&Progress, u64) + Send + Sync),
    ) -> Result<ImportReport> {
        let records = self.records();
        let reader = Reader::new(self.clone(), index).await?;
        let mut writer = Writer {
            prepared: self,
            creates_in_batches: self.creates_in_batches(&records),
            records,
            progress: self
                .job
                .as_ref()
                .map(|j| j.progress.clone())
                .unwrap_or_default(),
            queued: Vec::new(),
        };
        let resumed_after = writer.progress.rows_done;
        let rows = Sheet::open(&self.source)?
            .enumerate()
            .skip(resumed_after as usize);
        match self.reads_ahead(&writer.records) {
            true => writer.write_read_ahead(reader, rows, on_batch).await?,
            false => writer.write_interleaved(reader, rows, on_batch).await?,
        }
        let progress = writer.progress;
        Ok(ImportReport {
            job: self.job(),
            dry_run: self.options.dry_run,
            rows: self.rows_total,
            created: progress.created,
            updated: progress.updated,
            unchanged: progress.unchanged,
            skipped: progress.skipped,
            errors: progress.errors,
            duplicates: progress.duplicates,
            columns: self
                .columns
                .iter()
                .map(|c| json!({"column": c.header, "field": c.target.key()}))
                .collect(),
            ignored_columns: self.ignored.clone(),
            resumed_after_row: (resumed_after > 0).then_some(resumed_after),
        })
    }

    fn key_column(&self) -> Option<String> {
        let key = self.options.upsert_on.as_deref()?;
        self.columns
            .iter()
            .find(|c| c.target.key() == key)
            .map(|c| c.header.clone())
    }

    /// A refused write as row errors naming the columns; failures of the platform
    /// itself (the database) stop the import instead.
    fn row_errors(&self, row: u64, error: Error) -> Result<Vec<RowError>> {
        let entity = &self.entity;
        let column_of = |field: &str| {
            self.columns
                .iter()
                .find(|c| c.target.key() == field)
                .map(|c| c.header.clone())
                .or_else(|| entity.field(field).map(|f| f.label().to_string()))
                .or_else(|| (!field.is_empty()).then(|| field.to_string()))
        };
        Ok(match error {
            Error::Validation(fields) | Error::ForbiddenFields(fields) => fields
                .into_iter()
                .map(|f| RowError {
                    row,
                    column: column_of(&f.field),
                    message: f.message,
                })
                .collect(),
            Error::Database(_) | Error::Internal(_) => return Err(error),
            other => vec![RowError {
                row,
                column: None,
                message: other.to_string(),
            }],
        })
    }
}

/// The sheet's data rows from where the run starts: (index from 0, cells).
type Rows = std::iter::Skip<std::iter::Enumerate<Sheet>>;

/// What a row asks of the store.
enum Read {
    /// A blank line: counted as a row, nothing else.
    Blank,
    Refused(Vec<RowError>),
    /// A new record, prepared (`Records::prepare_create`).
    Create(Map<String, Value>),
    /// A checked change to the record the upsert key found.
    Update {
        current: Value,
        changes: Map<String, Value>,
    },
}

/// A row as read: what it asks of the store, and the likely duplicates it was found
/// to have (listed in the report when its batch is written).
struct ReadRow {
    row: u64,
    read: Read,
    duplicates: Vec<Value>,
}

/// The reading half of a run: the sheet's rows to what each asks of the store —
/// cells coerced, references and users found, the record prepared and checked for
/// duplicates. It writes nothing, so it can run ahead of the [`Writer`].
struct Reader {
    prepared: Arc<Prepared>,
    index: Arc<dyn SearchIndex>,
    people: People,
    titles: Titles,
    seen: Seen,
    /// With the duplicate check on: the search index's state.
    serving: Option<Serving>,
}

/// What an upsert key finds.
enum Existing {
    None,
    Record(Value),
    OutOfReach,
}

impl Reader {
    async fn new(prepared: Arc<Prepared>, index: Arc<dyn SearchIndex>) -> Result<Reader> {
        let ctx = &prepared.ctx;
        let entity = &prepared.entity;
        let check_duplicates = prepared.options.duplicates != DuplicatePolicy::Off
            && entity.def.fields.iter().any(|f| f.searchable);
        let serving = match check_duplicates {
            true => {
                indexer::drain(&ctx.tenant, &prepared.catalog, index.as_ref()).await?;
                Some(Serving::load(&ctx.tenant.db).await?)
            }
            false => None,
        };
        Ok(Reader {
            people: People::load(ctx).await?,
            prepared,
            index,
            titles: Titles::default(),
            seen: Seen::default(),
            serving,
        })
    }

    /// Reads the rows in batches into `batches`, reading through the connection pool
    /// (what earlier batches wrote is committed or being written, and no row reads
    /// it: [`Prepared::reads_ahead`]). Stops early when the writer has stopped.
    async fn read_batches(
        mut self,
        mut rows: Rows,
        batches: mpsc::Sender<Vec<ReadRow>>,
    ) -> Result<()> {
        let conn = self.prepared.ctx.tenant.db.conn();
        loop {
            let mut batch = Vec::with_capacity(BATCH_ROWS);
            for (index, cells) in rows.by_ref().take(BATCH_ROWS) {
                batch.push(self.read_row(&conn, index as u64 + 1, &cells?).await?);
            }
            if batch.is_empty() || batches.send(batch).await.is_err() {
                return Ok(());
            }
        }
    }

    /// One row: cells to input, then either a prepared record or the existing record
    /// (upsert) with the checked change. `conn` sees what earlier rows wrote.
    async fn read_row(
        &mut self,
        conn: &impl ConnectionTrait,
        row: u64,
        cells: &[Cell],
    ) -> Result<ReadRow> {
        let mut duplicates = Vec::new();
        let read = self.read(conn, row, cells, &mut duplicates).await?;
        Ok(ReadRow {
            row,
            read,
            duplicates,
        })
    }

    async fn read(
        &mut self,
        conn: &impl ConnectionTrait,
        row: u64,
        cells: &[Cell],
        duplicates: &mut Vec<Value>,
    ) -> Result<Read> {
        if cells.iter().all(Cell::is_empty) {
            return Ok(Read::Blank);
        }
        let prepared = self.prepared.clone();
        let records = prepared.records();
        let (input, key, mut errors) = self.read_cells(conn, row, cells).await?;
        if !errors.is_empty() {
            return Ok(Read::Refused(errors));
        }
        let existing = match &key {
            Some(value) => match self.find_existing(conn, &records, value).await? {
                Existing::Record(record) => Some(record),
                Existing::None => None,
                Existing::OutOfReach => {
                    return Ok(Read::Refused(vec![RowError {
                        row,
                        column: prepared.key_column(),
                        message: format!("{value} matches a record you may not change"),
                    }]));
                }
            },
            None => None,
        };
        errors.extend(self.check_within_file(row, &input, existing.is_some(), duplicates)?);
        if !errors.is_empty() {
            return Ok(Read::Refused(errors));
        }
        let access = &prepared.access;
        let input = Value::Object(input);
        let Some(current) = existing else {
            let record = match records.prepare_create(&input, access) {
                Ok(record) => record,
                Err(error) => return Ok(Read::Refused(prepared.row_errors(row, error)?)),
            };
            let refused = self.duplicate_errors(row, &record, duplicates).await?;
            if !refused.is_empty() {
                return Ok(Read::Refused(refused));
            }
            return Ok(Read::Create(record));
        };
        Ok(match records.check_input(&input, access) {
            Ok(changes) => Read::Update { current, changes },
            Err(error) => Read::Refused(prepared.row_errors(row, error)?),
        })
    }

    /// The row's input, the upsert key's value, and the cells that could not be read.
    async fn read_cells(
        &mut self,
        conn: &impl ConnectionTrait,
        row: u64,
        cells: &[Cell],
    ) -> Result<(Map<String, Value>, Option<Value>, Vec<RowError>)> {
        let prepared = &*self.prepared;
        let mut input = Map::new();
        let mut key = None;
        let mut errors = Vec::new();
        for column in &prepared.columns {
            let Some(cell) = cells.get(column.index).filter(|c| !c.is_empty()) else {
                continue;
            };
            let text = text_of(cell);
            let value = match &column.target {
                Target::Owner => self.people.find(&text).map(|id| json!(id)),
                Target::Stage => self.stage(&text),
                Target::Id => coerce::integer(cell).map(|id| json!(id)),
                Target::Field(field) => match field.field_type {
                    FieldType::User => self.people.find(&text).map(|id| json!(id)),
                    FieldType::Reference => self
                        .titles
                        .find(conn, &prepared.ctx, &prepared.catalog, field, &text)
                        .await?
                        .map(|id| json!(id)),
                    _ => coerce(field, cell),
                },
            };
            match value {
                Ok(value) => {
                    if prepared.options.upsert_on.as_deref() == Some(column.target.key()) {
                        key = Some(value.clone());
                    }
                    let computed = matches!(&column.target, Target::Field(f) if f.is_computed());
                    if !matches!(column.target, Target::Id) && !computed {
                        input.insert(column.target.key().to_string(), value);
                    }
                }
                Err(message) => errors.push(RowError {
                    row,
                    column: Some(column.header.clone()),
                    message,
                }),
            }
        }
        Ok((input, key, errors))
    }

    fn stage(&self, text: &str) -> Result<Value, String> {
        let pipeline = self
            .prepared
            .entity
            .def
            .pipeline
            .as_ref()
            .expect("stage columns need a pipeline");
        pipeline
            .stages
            .iter()
            .find(|s| s.key == text || s.label() == text)
            .map(|s| json!(s.key))
            .ok_or_else(|| {
                let known: Vec<&str> = pipeline.stages.iter().map(|s| s.label()).collect();
                format!("{text:?} is not one of the stages {}", known.join("、"))
            })
    }

    /// The live record the upsert key names; one outside the importer's rows refuses
    /// the row rather than being silently duplicated.
    async fn find_existing(
        &self,
        conn: &impl ConnectionTrait,
        records: &Records<'_>,
        key: &Value,
    ) -> Result<Existing> {
        let prepared = &*self.prepared;
        let field = prepared
            .options
            .upsert_on
            .as_deref()
            .expect("a key means upsert");
        let Some(id) = records.find_by(conn, field, key).await? else {
            return Ok(Existing::None);
        };
        match records.fetch_in(conn, id, &prepared.access).await {
            Ok(record) => Ok(Existing::Record(record)),
            Err(Error::NotFound(_)) => Ok(Existing::OutOfReach),
            Err(e) => Err(e),
        }
    }

    /// Unique values repeated within the file, and (for new records) searchable
    /// values an earlier row already had, which go into `duplicates`.
    fn check_within_file(
        &mut self,
        row: u64,
        input: &Map<String, Value>,
        updating: bool,
        duplicates: &mut Vec<Value>,
    ) -> Result<Vec<RowError>> {
        let prepared = &*self.prepared;
        let mut errors = Vec::new();
        for column in &prepared.columns {
            let Target::Field(field) = &column.target else {
                continue;
            };
            let Some(value) = input.get(&field.key) else {
                continue;
            };
            if field.unique {
                let seen = (field.key.clone(), value.to_string());
                match self.seen.unique.get(&seen) {
                    Some(first) => errors.push(RowError {
                        row,
                        column: Some(column.header.clone()),
                        message: format!(
                            "{value} is also in row {first}; values of {} are unique",
                            field.label()
                        ),
                    }),
                    None => {
                        self.seen.unique.insert(seen, row);
                    }
                }
            }
        }
        if updating || self.serving.is_none() {
            return Ok(errors);
        }
        let title = prepared.entity.def.title_field.as_deref();
        for column in &prepared.columns {
            let Target::Field(field) = &column.target else {
                continue;
            };
            let Some(text) = input.get(&field.key).and_then(Value::as_str) else {
                continue;
            };
            if !field.searchable {
                continue;
            }
            let Some(normal) = comparable(field, title == Some(field.key.as_str()), text) else {
                continue;
            };
            match self
                .seen
                .searchable
                .get(&(field.key.clone(), normal.clone()))
            {
                Some(first) => {
                    duplicates
                        .push(json!({"row": row, "same_as_row": first, "fields": [field.key]}));
                    if prepared.options.duplicates == DuplicatePolicy::Skip {
                        errors.push(RowError {
                            row,
                            column: Some(column.header.clone()),
                            message: format!("duplicates row {first}"),
                        });
                    }
                }
                None => {
                    self.seen
                        .searchable
                        .insert((field.key.clone(), normal), row);
                }
            }
        }
        Ok(errors)
    }

    /// The duplicate check against records already indexed: matches go into
    /// `duplicates`; a certain one refuses the row under `skip`, or when the entity's
    /// check blocks.
    async fn duplicate_errors(
        &self,
        row: u64,
        record: &Map<String, Value>,
        duplicates: &mut Vec<Value>,
    ) -> Result<Vec<RowError>> {
        let Some(serving) = &self.serving else {
            return Ok(Vec::new());
        };
        let prepared = &*self.prepared;
        let entity = &prepared.entity;
        let matches = duplicates::find(
            &prepared.ctx.tenant.key,
            serving,
            entity,
            self.index.as_ref(),
            record,
        )
        .await?;
        let blocks = prepared.options.duplicates == DuplicatePolicy::Skip
            || entity.def.duplicate_check.as_ref().is_some_and(|c| c.block);
        let mut errors = Vec::new();
        for found in matches.iter().filter(|m| m.verdict >= Verdict::Likely) {
            duplicates.push(json!({"row": row, "record": found.to_json()}));
            if blocks && found.verdict == Verdict::Certain {
                errors.push(RowError {
                    row,
                    column: None,
                    message: format!("duplicates {} (#{})", found.title, found.id),
                });
            }
        }
        Ok(errors)
    }
}

/// The writing half of a run: rows as read to records written, a transaction per
/// batch that also advances the job, and the counts.
struct Writer<'a> {
    prepared: &'a Prepared,
    records: Records<'a>,
    progress: Progress,
    /// New records wait for the end of their batch, written together, unless a
    /// later row could depend on an earlier one's record being there
    /// (`creates_in_batches` false): then each is written at once.
    queued: Vec<(u64, Map<String, Value>)>,
    creates_in_batches: bool,
}

impl Writer<'_> {
    /// Reads each row in the batch's transaction, just before writing it: when a
    /// row's reading may depend on what the rows before it wrote.
    async fn write_interleaved(
        &mut self,
        mut reader: Reader,
        rows: Rows,
        on_batch: &(dyn Fn(&Progress, u64) + Send + Sync),
    ) -> Result<()> {
        let mut rows = rows.peekable();
        while rows.peek().is_some() {
            let txn = self.prepared.ctx.tenant.db.begin_write().await?;
            for (index, cells) in rows.by_ref().take(BATCH_ROWS) {
                let read = reader.read_row(&txn, index as u64 + 1, &cells?).await?;
                self.apply(&txn, read).await?;
                if !self.creates_in_batches {
                    self.write_queued(&txn).await?;
                }
            }
            self.finish_batch(txn, on_batch).await?;
        }
        Ok(())
    }

    /// Writes each batch while the reader, on a thread of its own, reads the next
    /// (coercion and validation take about as long as the writing).
    async fn write_read_ahead(
        &mut self,
        reader: Reader,
        rows: Rows,
        on_batch: &(dyn Fn(&Progress, u64) + Send + Sync),
    ) -> Result<()> {
        // One batch waits while one is written: memory stays a few batches.
        let (sender, mut batches) = mpsc::channel(1);
        let runtime = tokio::runtime::Handle::current();
        let reading = tokio::task::spawn_blocking(move || {
            runtime.block_on(reader.read_batches(rows, sender))
        });
        while let Some(batch) = batches.recv().await {
            let txn = self.prepared.ctx.tenant.db.begin_write().await?;
            for read in batch {
                self.apply(&txn, read).await?;
            }
            self.finish_batch(txn, on_batch).await?;
        }
        reading
            .await
            .map_err(|e| Error::Internal(format!("the import's reader failed: {e}")))?
    }

    /// Writes what a row asks (new records wait in `queued`) and counts it.
    async fn apply(&mut self, txn: &DatabaseTransaction, read: ReadRow) -> Result<()> {
        let ReadRow {
            row,
            read,
            duplicates,
        } = read;
        let room = MAX_KEPT.saturating_sub(self.progress.duplicates.len());
        self.progress
            .duplicates
            .extend(duplicates.into_iter().take(room));
        match read {
            Read::Blank => {}
            Read::Refused(errors) => self.refuse(errors),
            Read::Create(record) => self.queued.push((row, record)),
            Read::Update { current, changes } => {
                let version = current[schema::VERSION].clone();
                let access = &self.prepared.access;
                let savepoint = txn.begin().await?;
                match self
                    .records
                    .update_checked_in(&savepoint, current, changes, None, access, "import")
                    .await
                {
                    Ok(updated) => {
                        savepoint.commit().await?;
                        match updated[schema::VERSION] == version {
                            true => self.progress.unchanged += 1,
                            false => self.progress.updated += 1,
                        }
                    }
                    Err(error) => {
                        savepoint.rollback().await?;
                        let errors = self.prepared.row_errors(row, error)?;
                        self.refuse(errors);
                    }
                }
            }
        }
        self.progress.rows_done = row;
        Ok(())
    }

    fn refuse(&mut self, errors: Vec<RowError>) {
        let progress = &mut self.progress;
        progress.skipped += 1;
        for error in errors {
            if progress.errors.len() < MAX_KEPT {
                progress.errors.push(json!(error));
            }
        }
    }

    /// Writes the new records queued since the last call, and counts what became of
    /// them; a refused one is counted as its row's errors.
    async fn write_queued(&mut self, txn: &DatabaseTransaction) -> Result<()> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let (rows, records): (Vec<u64>, Vec<_>) =
            std::mem::take(&mut self.queued).into_iter().unzip();
        let inserted = self
            .records
            .insert_many(txn, records, &self.prepared.access, "import")
            .await?;
        self.progress.created += inserted.created.len() as u64;
        for (position, error) in inserted.refused {
            let errors = self.prepared.row_errors(rows[position], error)?;
            self.refuse(errors);
        }
        // Rows refused when their batch was written come after later rows' errors.
        self.progress
            .errors
            .sort_by_key(|error| error["row"].as_u64().unwrap_or_default());
        Ok(())
    }

    /// Ends a batch: its queued records written, then committed with the job's
    /// progress (or, in a dry run, rolled back).
    async fn finish_batch(
        &mut self,
        txn: DatabaseTransaction,
        on_batch: &(dyn Fn(&Progress, u64) + Send + Sync),
    ) -> Result<()> {
        self.write_queued(&txn).await?;
        match &self.prepared.job {
            Some(job) => {
                jobs::advance(&txn, &self.prepared.ctx.tenant.db, job, &self.progress).await?;
                txn.commit().await?;
            }
            None => txn.rollback().await?,
        }
        on_batch(&self.progress, self.prepared.rows_total);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_markers_are_not_part_of_the_header() {
        assert_eq!(bare_header("客户名称*"), "客户名称");
        assert_eq!(bare_header("*电话"), "电话");
        assert_eq!(bare_header(" 邮箱（必填） "), "邮箱");
        assert_eq!(bare_header("备注"), "备注");
    }
}
