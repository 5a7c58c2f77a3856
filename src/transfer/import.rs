//! Importing a spreadsheet into an entity (导入). Columns map to fields by key or label
//! (Chinese headers; a trailing `*` marking required columns is ignored) or by an
//! explicit mapping; cells are coerced the Chinese way (`coerce`); every row then goes
//! through the records store exactly like a user's create or update, in batches of
//! [`BATCH_ROWS`] rows per transaction. A batch's new records are written together at
//! its end (`Records::insert_many`), updates each in its own savepoint; either way a
//! refused row leaves nothing behind.
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
struct Titles<'a> {
    ctx: &'a Context,
    catalog: &'a Catalog,
    found: HashMap<(String, String), Result<i64, String>>,
}

impl Titles<'_> {
    async fn find(
        &mut self,
        conn: &impl ConnectionTrait,
        field: &Field,
        text: &str,
    ) -> Result<Result<i64, String>> {
        let target_key = field.target.as_deref().unwrap_or_default();
        let cache_key = (target_key.to_string(), text.to_string());
        if let Some(found) = self.found.get(&cache_key) {
            return Ok(found.clone());
        }
        let target = self.ctx.entity(self.catalog, target_key)?;
        let found = match self.ctx.authorize(target, Action::Read).await {
            Err(_) => Err(format!("you may not read {} records", target.def.label())),
            Ok(access) => lookup(conn, self.ctx, target, &access, text).await?,
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
    entity_key: String,
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
        entity_key: entity_key.to_string(),
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
    index: &dyn SearchIndex,
    source: Source,
    file_name: &str,
    options: ImportOptions,
    on_batch: &(dyn Fn(&Progress, u64) + Send + Sync),
) -> Result<ImportReport> {
    prepare(ctx, catalog, entity_key, source, file_name, options)
        .await?
        .run(index, on_batch)
        .await
}

impl Prepared {
    /// Whether the batch's new records can wait for its end: the entity writes them
    /// together (nothing reacts to each create) and no column refers to records of
    /// the entity itself, which an earlier row of the file may create.
    fn creates_in_batches(&self, records: &Records) -> bool {
        let refers_to_itself = self.columns.iter().any(|c| {
            matches!(&c.target, Target::Field(f)
                if f.field_type == FieldType::Reference && f.target.as_deref() == Some(&self.entity_key))
        });
        records.inserts_in_batches() && !refers_to_itself
    }

    /// The job a real run records its progress in.
    pub fn job(&self) -> Option<i64> {
        self.job.as_ref().map(|j| j.id)
    }

    /// Imports the rows; `on_batch` hears the committed progress after every batch
    /// (the CLI's progress bar). The job ends done, or failed with the error.
    pub async fn run(
        &self,
        index: &dyn SearchIndex,
        on_batch: &(dyn Fn(&Progress, u64) + Send + Sync),
    ) -> Result<ImportReport> {
        let outcome = self.import(index, on_batch).await;
        if let Some(job) = &self.job {
            let db = &self.ctx.tenant.db;
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
        &self,
        index: &dyn SearchIndex,
        on_batch: &(dyn Fn(&Progress, u64) + Send + Sync),
    ) -> Result<ImportReport> {
        let ctx = &self.ctx;
        let catalog = &*self.catalog;
        let entity = ctx.entity(catalog, &self.entity_key)?;
        let records = Records::new(&ctx.tenant.db, catalog, entity);
        let creates_in_batches = self.creates_in_batches(&records);
        let mut importer = Importer {
            ctx,
            entity,
            access: &self.access,
            records,
            columns: &self.columns,
            options: &self.options,
            people: People::load(ctx).await?,
            titles: Titles {
                ctx,
                catalog,
                found: HashMap::new(),
            },
            seen: Seen::default(),
            index,
            serving: None,
            queued: Vec::new(),
            creates_in_batches,
            progress: self
                .job
                .as_ref()
                .map(|j| j.progress.clone())
                .unwrap_or_default(),
        };
        let check_duplicates = self.options.duplicates != DuplicatePolicy::Off
            && entity.def.fields.iter().any(|f| f.searchable);
        if check_duplicates {
            indexer::drain(&ctx.tenant, catalog, index).await?;
            importer.serving = Some(Serving::load(&ctx.tenant.db).await?);
        }
        let resumed_after = importer.progress.rows_done;
        let sheet = Sheet::open(&self.source)?;
        importer
            .import_rows(sheet, self.job.as_ref(), self.rows_total, on_batch)
            .await?;
        let progress = importer.progress;
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
}

struct Importer<'a> {
    ctx: &'a Context,
    entity: &'a EntityCatalog,
    access: &'a Access,
    records: Records<'a>,
    columns: &'a [Column],
    options: &'a ImportOptions,
    people: People,
    titles: Titles<'a>,
    seen: Seen,
    index: &'a dyn SearchIndex,
    serving: Option<Serving>,
    progress: Progress,
    /// New records wait for the end of their batch, written together, unless a
    /// later row could depend on an earlier one's record being there
    /// (`creates_in_batches` false): then each is written at once.
    queued: Vec<(u64, Map<String, Value>)>,
    creates_in_batches: bool,
}

/// What an upsert key finds.
enum Existing {
    None,
    Record(Value),
    OutOfReach,
}

/// What became of one row.
enum Outcome {
    /// A blank line: counted as a row, nothing else.
    Blank,
    /// A new record, written with the rest of its batch and counted then
    /// (`write_queued`).
    Queued,
    Updated,
    Unchanged,
    Refused(Vec<RowError>),
}

impl Importer<'_> {
    async fn import_rows(
        &mut self,
        sheet: Sheet,
        job: Option<&Job>,
        rows_total: u64,
        on_batch: &(dyn Fn(&Progress, u64) + Send + Sync),
    ) -> Result<()> {
        let start = self.progress.rows_done;
        let mut rows = sheet.enumerate().skip(start as usize).peekable();
        while rows.peek().is_some() {
            let txn = self.ctx.tenant.db.begin_write().await?;
            for (index, cells) in rows.by_ref().take(BATCH_ROWS) {
                let row = index as u64 + 1;
                let outcome = self.import_row(&txn, row, &cells?).await?;
                self.count(outcome);
                if !self.creates_in_batches {
                    self.write_queued(&txn).await?;
                }
                self.progress.rows_done = row;
            }
            self.write_queued(&txn).await?;
            match job {
                Some(job) => {
                    jobs::advance(&txn, &self.ctx.tenant.db, job, &self.progress).await?;
                    txn.commit().await?;
                }
                None => txn.rollback().await?,
            }
            on_batch(&self.progress, rows_total);
        }
        Ok(())
    }

    fn count(&mut self, outcome: Outcome) {
        let progress = &mut self.progress;
        match outcome {
            Outcome::Updated => progress.updated += 1,
            Outcome::Unchanged => progress.unchanged += 1,
            Outcome::Blank | Outcome::Queued => {}
            Outcome::Refused(errors) => {
                progress.skipped += 1;
                for error in errors {
                    if progress.errors.len() < MAX_KEPT {
                        progress.errors.push(json!(error));
                    }
                }
            }
        }
    }

    /// One row: cells to input, then a create or (upsert) an update in a savepoint.
    async fn import_row(
        &mut self,
        txn: &DatabaseTransaction,
        row: u64,
        cells: &[Cell],
    ) -> Result<Outcome> {
        if cells.iter().all(Cell::is_empty) {
            return Ok(Outcome::Blank);
        }
        let (input, key, mut errors) = self.read_cells(txn, row, cells).await?;
        if !errors.is_empty() {
            return Ok(Outcome::Refused(errors));
        }
        let existing = match &key {
            Some(value) => match self.find_existing(txn, value).await? {
                Existing::Record(record) => Some(record),
                Existing::None => None,
                Existing::OutOfReach => {
                    return Ok(Outcome::Refused(vec![RowError {
                        row,
                        column: self.key_column(),
                        message: format!("{value} matches a record you may not change"),
                    }]));
                }
            },
            None => None,
        };
        errors.extend(self.check_within_file(row, &input, existing.is_some()));
        if !errors.is_empty() {
            return Ok(Outcome::Refused(errors));
        }
        let Some(current) = existing else {
            let record = match self
                .records
                .prepare_create(&Value::Object(input), self.access)
            {
                Ok(record) => record,
                Err(error) => return Ok(Outcome::Refused(self.row_errors(row, error)?)),
            };
            let refused = self.duplicate_errors(row, &record).await?;
            if !refused.is_empty() {
                return Ok(Outcome::Refused(refused));
            }
            self.queued.push((row, record));
            return Ok(Outcome::Queued);
        };
        let version = current[schema::VERSION].clone();
        let savepoint = txn.begin().await?;
        let updated = match self.records.check_input(&Value::Object(input), self.access) {
            Ok(checked) => {
                self.records
                    .update_checked_in(&savepoint, current, checked, None, self.access, "import")
                    .await
            }
            Err(e) => Err(e),
        };
        match updated {
            Ok(updated) => {
                savepoint.commit().await?;
                Ok(match updated[schema::VERSION] == version {
                    true => Outcome::Unchanged,
                    false => Outcome::Updated,
                })
            }
            Err(error) => {
                savepoint.rollback().await?;
                Ok(Outcome::Refused(self.row_errors(row, error)?))
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
            .insert_many(txn, records, self.access, "import")
            .await?;
        self.progress.created += inserted.created.len() as u64;
        for (position, error) in inserted.refused {
            let errors = self.row_errors(rows[position], error)?;
            self.count(Outcome::Refused(errors));
        }
        // Rows refused when their batch was written come after later rows' errors.
        self.progress
            .errors
            .sort_by_key(|error| error["row"].as_u64().unwrap_or_default());
        Ok(())
    }

    /// The row's input, the upsert key's value, and the cells that could not be read.
    async fn read_cells(
        &mut self,
        conn: &impl ConnectionTrait,
        row: u64,
        cells: &[Cell],
    ) -> Result<(Map<String, Value>, Option<Value>, Vec<RowError>)> {
        let mut input = Map::new();
        let mut key = None;
        let mut errors = Vec::new();
        for column in self.columns {
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
                        .find(conn, field, &text)
                        .await?
                        .map(|id| json!(id)),
                    _ => coerce(field, cell),
                },
            };
            match value {
                Ok(value) => {
                    if self.options.upsert_on.as_deref() == Some(column.target.key()) {
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

    fn key_column(&self) -> Option<String> {
        let key = self.options.upsert_on.as_deref()?;
        self.columns
            .iter()
            .find(|c| c.target.key() == key)
            .map(|c| c.header.clone())
    }

    fn stage(&self, text: &str) -> Result<Value, String> {
        let pipeline = self
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
    async fn find_existing(&self, txn: &DatabaseTransaction, key: &Value) -> Result<Existing> {
        let field = self
            .options
            .upsert_on
            .as_deref()
            .expect("a key means upsert");
        let Some(id) = self.records.find_by(txn, field, key).await? else {
            return Ok(Existing::None);
        };
        match self.records.fetch_in(txn, id, self.access).await {
            Ok(record) => Ok(Existing::Record(record)),
            Err(Error::NotFound(_)) => Ok(Existing::OutOfReach),
            Err(e) => Err(e),
        }
    }

    /// Unique values repeated within the file, and (for new records) searchable
    /// values an earlier row already had.
    fn check_within_file(
        &mut self,
        row: u64,
        input: &Map<String, Value>,
        updating: bool,
    ) -> Vec<RowError> {
        let mut errors = Vec::new();
        for column in self.columns {
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
            return errors;
        }
        let title = self.entity.def.title_field.as_deref();
        for column in self.columns {
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
                    let duplicate =
                        json!({"row": row, "same_as_row": first, "fields": [field.key]});
                    if self.options.duplicates == DuplicatePolicy::Skip {
                        errors.push(RowError {
                            row,
                            column: Some(column.header.clone()),
                            message: format!("duplicates row {first}"),
                        });
                    }
                    if self.progress.duplicates.len() < MAX_KEPT {
                        self.progress.duplicates.push(duplicate);
                    }
                }
                None => {
                    self.seen
                        .searchable
                        .insert((field.key.clone(), normal), row);
                }
            }
        }
        errors
    }

    /// The duplicate check against records already indexed: matches are listed; a
    /// certain one refuses the row under `skip`, or when the entity's check blocks.
    async fn duplicate_errors(
        &mut self,
        row: u64,
        record: &Map<String, Value>,
    ) -> Result<Vec<RowError>> {
        let Some(serving) = &self.serving else {
            return Ok(Vec::new());
        };
        let matches = duplicates::find(
            &self.ctx.tenant.key,
            serving,
            self.entity,
            self.index,
            record,
        )
        .await?;
        let blocks = self.options.duplicates == DuplicatePolicy::Skip
            || self
                .entity
                .def
                .duplicate_check
                .as_ref()
                .is_some_and(|c| c.block);
        let mut errors = Vec::new();
        for found in matches.iter().filter(|m| m.verdict >= Verdict::Likely) {
            if self.progress.duplicates.len() < MAX_KEPT {
                self.progress
                    .duplicates
                    .push(json!({"row": row, "record": found.to_json()}));
            }
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

    /// A refused write as row errors naming the columns; failures of the platform
    /// itself (the database) stop the import instead.
    fn row_errors(&self, row: u64, error: Error) -> Result<Vec<RowError>> {
        let column_of = |field: &str| {
            self.columns
                .iter()
                .find(|c| c.target.key() == field)
                .map(|c| c.header.clone())
                .or_else(|| self.entity.field(field).map(|f| f.label().to_string()))
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
