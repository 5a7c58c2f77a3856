//! Records of metadata-defined entities: create, read, patch, soft delete, query and
//! history. Every write validates, computes defaults and formulas, checks uniqueness
//! and references, and writes its audit and outbox rows in the same transaction.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use regex::Regex;
use sea_orm::sea_query::{
    Alias, Condition, Expr, ExprTrait, NullOrdering, Order, Query, SelectStatement,
    Value as SqlValue,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult, SqlErr};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::auth::Access;
use crate::catalog::{Catalog, DefaultValue, EntityCatalog};
use crate::error::{Error, FieldError, Result};
use crate::meta::{Field, FieldType, HookEvent, TriggerOn};
use crate::plugin::hooks::Hooks;
use crate::store::db::TenantDb;
use crate::store::db::{query_count, query_first};
use crate::store::filter::{self, FilterContext};
use crate::store::schema::{self, Storage};
use crate::store::{journal, locks, value};

mod batch;
mod constraints;

pub use batch::Inserted;

/// What a write changed: field → (before, after), borrowed from the two records.
pub type Changes<'a> = BTreeMap<&'a str, (&'a Value, &'a Value)>;

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 1000;

/// System keys a client may send back unchanged (e.g. after a GET); they are ignored.
const IGNORED_INPUT: [&str; 7] = [
    schema::ID,
    schema::VERSION,
    schema::CREATED_AT,
    schema::UPDATED_AT,
    schema::CREATED_BY,
    schema::DELETED_AT,
    schema::LAST_CONTACT_AT,
];

/// The records of one entity of one tenant.
pub struct Records<'a> {
    db: &'a TenantDb,
    catalog: &'a Catalog,
    entity: &'a EntityCatalog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    #[serde(default)]
    pub filter: Option<Value>,
    #[serde(default)]
    pub sort: Vec<SortSpec>,
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub after: Option<String>,
}

/// `"name"`, `"-name"` (descending), or `{"field": "name", "desc": true}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SortSpec {
    Key(String),
    Object {
        field: String,
        #[serde(default)]
        desc: bool,
    },
}

impl SortSpec {
    fn parts(&self) -> (&str, bool) {
        match self {
            SortSpec::Key(key) => match key.strip_prefix('-') {
                Some(key) => (key, true),
                None => (key, false),
            },
            SortSpec::Object { field, desc } => (field, *desc),
        }
    }
}

/// Most records one reassignment may move.
pub const MAX_ASSIGN: usize = 10_000;

/// `POST /api/data/{e}/bulk/assign`: `ids` or `filter`, and the new `owner`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    #[serde(default)]
    pub ids: Option<Vec<i64>>,
    #[serde(default)]
    pub filter: Option<Value>,
    pub owner: i64,
}

/// What a reassignment did: moved, already owned by the new owner, and requested
/// ids that are not within reach (or do not exist — the two are not told apart).
#[derive(Debug, Default, Serialize)]
pub struct Assigned {
    pub assigned: u64,
    pub unchanged: u64,
    pub not_found: Vec<i64>,
}

impl QueryRequest {
    /// A query from a request body; unknown keys are refused naming them.
    pub fn from_json(body: Value) -> Result<QueryRequest> {
        serde_json::from_value(body).map_err(|e| Error::BadRequest(format!("query: {e}")))
    }
}

#[derive(Debug)]
pub struct Page {
    pub items: Vec<Value>,
    pub next: Option<String>,
}

impl Page {
    /// The contract's list shape: `{items, next}`.
    pub fn into_json(self) -> Value {
        json!({"items": self.items, "next": self.next})
    }
}

impl<'a> Records<'a> {
    pub fn new(db: &'a TenantDb, catalog: &'a Catalog, entity: &'a EntityCatalog) -> Self {
        Records {
            db,
            catalog,
            entity,
        }
    }

    fn table(&self) -> sea_orm::sea_query::TableName {
        self.db.table(&self.entity.table)
    }

    /// Columns read for a record: system columns, then fields.
    fn columns(&self) -> Vec<(String, FieldType, u32)> {
        let mut columns: Vec<(String, FieldType, u32)> = [
            (schema::ID, FieldType::Integer),
            (schema::VERSION, FieldType::Integer),
            (schema::OWNER, FieldType::User),
            (schema::CREATED_BY, FieldType::User),
            (schema::CREATED_AT, FieldType::Datetime),
            (schema::UPDATED_AT, FieldType::Datetime),
        ]
        .into_iter()
        .map(|(k, t)| (k.to_string(), t, 0))
        .collect();
        if self.entity.has_pipeline() {
            columns.push((schema::STAGE.to_string(), FieldType::Select, 0));
        }
        if self.entity.def.tracks_contacts() {
            columns.push((schema::LAST_CONTACT_AT.to_string(), FieldType::Datetime, 0));
        }
        columns.extend(
            self.entity
                .def
                .fields
                .iter()
                .map(|f| (f.key.clone(), f.field_type, f.decimal_scale())),
        );
        columns
    }

    fn select(&self) -> SelectStatement {
        let mut select = Query::select();
        select.from(self.table());
        for (column, _, _) in self.columns() {
            select.column(Alias::new(column));
        }
        select.and_where(Expr::col(Alias::new(schema::DELETED_AT)).is_null());
        select
    }

    /// A row as a record; `columns` is `self.columns()`, computed once per query.
    fn decode(&self, row: &QueryResult, columns: &[(String, FieldType, u32)]) -> Result<Value> {
        let mut record = Map::with_capacity(columns.len());
        for (column, field_type, scale) in columns {
            let value = value::from_row(row, column, *field_type, *scale)?;
            record.insert(column.clone(), value);
        }
        Ok(Value::Object(record))
    }

    /// A live record within the access's rows, unmasked (callers mask what they return).
    async fn fetch(
        &self,
        conn: &impl ConnectionTrait,
        id: i64,
        access: &Access,
    ) -> Result<Option<Value>> {
        let mut select = self.select();
        select.and_where(Expr::col(Alias::new(schema::ID)).eq(id));
        if let Some(rows) = &access.rows {
            select.cond_where(rows.clone());
        }
        match query_first(conn, &select).await? {
            Some(row) => Ok(Some(self.decode(&row, &self.columns())?)),
            None => Ok(None),
        }
    }

    fn not_found(&self, id: i64) -> Error {
        Error::NotFound(format!("{} record {id} not found", self.entity.def.key))
    }

    pub async fn get(&self, id: i64, access: &Access) -> Result<Value> {
        let record = self
            .fetch(&self.db.conn(), id, access)
            .await?
            .ok_or_else(|| self.not_found(id))?;
        Ok(mask(record, access))
    }

    pub async fn create(&self, input: &Value, access: &Access) -> Result<Value> {
        let record = self.prepare_create(input, access)?;
        let txn = self.db.begin_write().await?;
        let created = self.insert_prepared(&txn, record, access, "create").await?;
        txn.commit().await?;
        Ok(mask(created, access))
    }

    /// A new record from a user's input, checked and completed without the database:
    /// input rules, owner reach, defaults, formulas, required fields and the first
    /// stage's requirements. `insert_prepared` writes it.
    pub fn prepare_create(&self, input: &Value, access: &Access) -> Result<Map<String, Value>> {
        let input = self.check_input(input, access)?;
        if let Some(owner) = input.get(schema::OWNER).and_then(Value::as_i64)
            && !access.reaches_owner(owner)
        {
            return Err(Error::ForbiddenFields(vec![FieldError::new(
                schema::OWNER,
                format!("you may not create records owned by user {owner}"),
            )]));
        }
        let mut record = Map::new();
        record.insert(schema::OWNER.into(), json!(access.user_id));
        if let Some(pipeline) = &self.entity.def.pipeline {
            record.insert(schema::STAGE.into(), json!(pipeline.stages[0].key));
        }
        record.extend(input.clone());
        self.apply_defaults(&mut record, &input)?;
        // With before_save hooks, what is required is checked after them (they may
        // fill it), in `insert_prepared`.
        let hooked = self.has_before_save();
        self.complete(&mut record, &input, !hooked)?;
        if !hooked {
            self.check_stage_requirements(&record)?;
        }
        Ok(record)
    }

    /// Writes a prepared record inside `txn`: constraints, auto numbers, the row, stage
    /// history, audit (as `action`), outbox and the workflow's reactions. Answers it
    /// unmasked.
    pub async fn insert_prepared(
        &self,
        txn: &DatabaseTransaction,
        mut record: Map<String, Value>,
        access: &Access,
        action: &str,
    ) -> Result<Value> {
        // Numbers first, so that hooks see them (a rolled-back write returns its number).
        self.assign_auto_numbers(txn, std::slice::from_mut(&mut record))
            .await?;
        let hooks = self.hooks(txn, access);
        if self.has_before_save() {
            let mut input = Map::new();
            self.before_save(&hooks, &mut record, &mut input, None)
                .await?;
            self.check_stage_requirements(&record)?;
        }
        self.check_record(txn, &record, None, access.user_id)
            .await?;
        let created = self
            .insert_journaled(txn, std::slice::from_ref(&record), access.user_id, action)
            .await?
            .pop()
            .ok_or_else(|| Error::Internal("insert returned no row".into()))?;
        self.after_write(txn, &created, TriggerOn::Create, access.user_id)
            .await?;
        hooks
            .run(HookEvent::AfterSave, created.clone(), None, Map::new())
            .await?;
        Ok(created)
    }

    /// A user's change: owners change only by reassignment, stages only through the
    /// stage transition (which checks the pipeline's rules), and a locked record
    /// (pending approval) refuses changes.
    pub async fn update(
        &self,
        id: i64,
        input: &Value,
        expected_version: Option<i64>,
        access: &Access,
    ) -> Result<Value> {
        let input = self.check_input(input, access)?;
        let txn = self.db.begin_write().await?;
        let current = self
            .fetch(&txn, id, access)
            .await?
            .ok_or_else(|| self.not_found(id))?;
        let updated = self
            .update_checked_in(&txn, current, input, expected_version, access, "update")
            .await?;
        txn.commit().await?;
        Ok(mask(updated, access))
    }

    /// A user's checked change to `current` (read within their rows) inside `txn`, with
    /// the rules of `update`; audited as `action`. Answers the record unmasked.
    pub async fn update_checked_in(
        &self,
        txn: &DatabaseTransaction,
        current: Value,
        input: Map<String, Value>,
        expected_version: Option<i64>,
        access: &Access,
        action: &str,
    ) -> Result<Value> {
        let id = current[schema::ID].as_i64().unwrap_or_default();
        if input
            .get(schema::OWNER)
            .is_some_and(|owner| *owner != current[schema::OWNER])
        {
            return Err(Error::ForbiddenFields(vec![FieldError::new(
                schema::OWNER,
                format!(
                    "owners change through reassignment: POST /api/data/{}/bulk/assign",
                    self.entity.def.key
                ),
            )]));
        }
        if input
            .get(schema::STAGE)
            .is_some_and(|stage| *stage != current[schema::STAGE])
        {
            return Err(Error::field(
                schema::STAGE,
                format!(
                    "stages change through POST /api/data/{}/{id}/stage, which checks the pipeline's transitions",
                    self.entity.def.key
                ),
            ));
        }
        locks::ensure_unlocked(txn, self.db, &self.entity.def.key, id).await?;
        let version = current[schema::VERSION].clone();
        let updated = self
            .update_in(txn, current, input, expected_version, access, action)
            .await?;
        if updated[schema::VERSION] != version {
            self.after_write(txn, &updated, TriggerOn::Update, access.user_id)
                .await?;
        }
        Ok(updated)
    }

    /// Gives a record a new owner (`None`: the public pool) inside `txn`, audited as
    /// `action` by `actor`. Reassignment, pool reclaims and claims all move owners
    /// through here.
    pub async fn set_owner_in(
        &self,
        txn: &DatabaseTransaction,
        current: &Value,
        owner: Option<i64>,
        actor: i64,
        action: &str,
    ) -> Result<Value> {
        let id = current[schema::ID].as_i64().unwrap_or_default();
        let now = crate::clock::now();
        let update = Query::update()
            .table(self.table())
            .value(Alias::new(schema::OWNER), owner)
            .value(Alias::new(schema::UPDATED_AT), now)
            .value(
                Alias::new(schema::VERSION),
                Expr::col(Alias::new(schema::VERSION)).add(1),
            )
            .and_where(Expr::col(Alias::new(schema::ID)).eq(id))
            .to_owned();
        txn.execute(&update).await?;
        let updated = self
            .fetch(txn, id, &Access::full(actor))
            .await?
            .ok_or_else(|| self.not_found(id))?;
        let new_owner = json!(owner);
        let changes = BTreeMap::from([(schema::OWNER, (&current[schema::OWNER], &new_owner))]);
        journal::record_write(
            txn,
            self.db,
            &self.entity.def.key,
            id,
            action,
            actor,
            &changes,
            &updated,
        )
        .await?;
        Ok(updated)
    }

    /// The id of the live record whose `key` (`id` or a unique field) equals `value`,
    /// whoever owns it.
    pub async fn find_by(
        &self,
        conn: &impl ConnectionTrait,
        key: &str,
        value: &Value,
    ) -> Result<Option<i64>> {
        let sql_value = match key {
            schema::ID => SqlValue::BigInt(value.as_i64()),
            _ => self.sql_value(key, value)?,
        };
        let select = Query::select()
            .column(Alias::new(schema::ID))
            .from(self.table())
            .and_where(Expr::col(Alias::new(key)).eq(sql_value))
            .and_where(Expr::col(Alias::new(schema::DELETED_AT)).is_null())
            .limit(1)
            .to_owned();
        match query_first(conn, &select).await? {
            Some(row) => Ok(Some(row.try_get("", schema::ID)?)),
            None => Ok(None),
        }
    }

    /// A live record within the access's rows, unmasked, read in a transaction.
    pub async fn fetch_in(
        &self,
        conn: &impl ConnectionTrait,
        id: i64,
        access: &Access,
    ) -> Result<Value> {
        self.fetch(conn, id, access)
            .await?
            .ok_or_else(|| self.not_found(id))
    }

    /// Writes checked `input` over `current` inside `txn`: formulas, required fields,
    /// constraints, the version check, audit (as `action`), outbox, and stage history
    /// when the stage changes. The stage transition and the workflow's effects use it
    /// directly; it enforces no owner, stage or lock rule of its own. Answers the
    /// record unmasked (conditions and triggers read every field); callers mask what
    /// they return.
    pub async fn update_in(
        &self,
        txn: &DatabaseTransaction,
        current: Value,
        input: Map<String, Value>,
        expected_version: Option<i64>,
        access: &Access,
        action: &str,
    ) -> Result<Value> {
        let id = current[schema::ID].as_i64().unwrap_or_default();
        let current_version = current[schema::VERSION].as_i64().unwrap_or(0);
        if let Some(expected) = expected_version
            && expected != current_version
        {
            return Err(Error::VersionConflict {
                current: current_version,
            });
        }
        let mut record = current.as_object().cloned().unwrap_or_default();
        record.extend(input.clone());
        let hooks = self.hooks(txn, access);
        let hooked = self.has_before_save();
        self.complete(&mut record, &input, !hooked)?;
        if hooked {
            let mut input = input;
            self.before_save(&hooks, &mut record, &mut input, Some(&current))
                .await?;
        }
        let changes = diff_records(current.as_object().expect("records are objects"), &record);
        if changes.is_empty() {
            return Ok(current);
        }
        self.check_record(txn, &record, Some(id), access.user_id)
            .await?;
        let mut update = Query::update();
        update
            .table(self.table())
            .value(Alias::new(schema::UPDATED_AT), crate::clock::now())
            .value(
                Alias::new(schema::VERSION),
                Expr::col(Alias::new(schema::VERSION)).add(1),
            )
            .and_where(Expr::col(Alias::new(schema::ID)).eq(id))
            .and_where(Expr::col(Alias::new(schema::VERSION)).eq(current_version));
        for key in changes.keys() {
            update.value(Alias::new(*key), self.sql_value(key, &record[*key])?);
        }
        let result = txn
            .execute(&update)
            .await
            .map_err(|e| self.write_error(e.into()))?;
        if result.rows_affected() == 0 {
            return Err(Error::VersionConflict {
                current: current_version + 1,
            });
        }
        let updated = self
            .fetch(txn, id, &Access::full(access.user_id))
            .await?
            .ok_or_else(|| self.not_found(id))?;
        if let Some(stage) = changes.get(schema::STAGE).and_then(|(_, new)| new.as_str()) {
            journal::enter_stage(
                txn,
                self.db,
                &self.entity.def.key,
                id,
                stage,
                access.user_id,
            )
            .await?;
        }
        journal::record_write(
            txn,
            self.db,
            &self.entity.def.key,
            id,
            action,
            access.user_id,
            &changes,
            &updated,
        )
        .await?;
        hooks
            .run(
                HookEvent::AfterSave,
                updated.clone(),
                Some(&current),
                Map::new(),
            )
            .await?;
        if let Some((from, to)) = changes.get(schema::STAGE) {
            let stages = json!({"from": from, "to": to});
            hooks
                .run(
                    HookEvent::OnStageChange,
                    updated.clone(),
                    Some(&current),
                    stages.as_object().cloned().unwrap_or_default(),
                )
                .await?;
        }
        Ok(updated)
    }

    /// The hooks of a write by `access` in `txn`.
    fn hooks<'h>(&'h self, txn: &'h DatabaseTransaction, access: &'h Access) -> Hooks<'h> {
        Hooks {
            txn,
            db: self.db,
            catalog: self.catalog,
            entity: &self.entity.def.key,
            access,
        }
    }

    /// Runs the `before_save` hooks over a completed record and takes back what they
    /// changed, checked like input (added to `input`, so required rules treat those
    /// fields as touched), then computes formulas and required fields again. Hooks
    /// write fields only: the owner, the stage and system columns keep their paths.
    async fn before_save(
        &self,
        hooks: &Hooks<'_>,
        record: &mut Map<String, Value>,
        input: &mut Map<String, Value>,
        previous: Option<&Value>,
    ) -> Result<()> {
        let Value::Object(after) = hooks
            .run(
                HookEvent::BeforeSave,
                Value::Object(record.clone()),
                previous,
                Map::new(),
            )
            .await?
        else {
            return Err(Error::Internal("a hook's record is not an object".into()));
        };
        let removed = record
            .keys()
            .filter(|key| !after.contains_key(*key))
            .map(|key| (key.clone(), Value::Null));
        let changed: Vec<(String, Value)> = after
            .iter()
            .filter(|(key, value)| record.get(*key) != Some(*value))
            .map(|(key, value)| (key.clone(), value.clone()))
            .chain(removed)
            .collect();
        // The input schema checks what hooks write as it checks users' input (options,
        // lengths, patterns); system keys and unknown fields are named below.
        let writable: Map<String, Value> = changed
            .iter()
            .filter(|(key, _)| self.entity.field(key).is_some_and(|f| !f.is_computed()))
            .cloned()
            .collect();
        let mut errors = Vec::new();
        for error in self
            .entity
            .input_validator
            .iter_errors(&Value::Object(writable))
        {
            errors.extend(schema_error(&error));
        }
        for (key, value) in changed {
            if errors.iter().any(|e| e.field == key) {
                continue;
            }
            let field = self.entity.field(&key);
            let normalized = match field {
                _ if IGNORED_INPUT.contains(&key.as_str())
                    || key == schema::OWNER
                    || key == schema::STAGE =>
                {
                    Err("a hook may not change this (it has its own path)".to_string())
                }
                None => Err("a hook set a field the entity does not have".to_string()),
                Some(field) if field.is_computed() => {
                    Err("is computed; a hook cannot set it".to_string())
                }
                Some(field) => value::normalize(field, &value)
                    .and_then(|v| check_bounds(field, &v).map(|_| v))
                    .map_err(|m| format!("a hook set {value}: {m}")),
            };
            match normalized {
                Ok(value) => {
                    record.insert(key.clone(), value.clone());
                    input.insert(key, value);
                }
                Err(message) => errors.push(FieldError::new(key, message)),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        self.complete(record, input, true)
    }

    fn has_before_save(&self) -> bool {
        self.catalog
            .package
            .hooks_for(&self.entity.def.key, HookEvent::BeforeSave)
            .next()
            .is_some()
    }

    /// The fields the record's stage requires, all present.
    fn check_stage_requirements(&self, record: &Map<String, Value>) -> Result<()> {
        let Some(stage) = record.get(schema::STAGE).and_then(Value::as_str) else {
            return Ok(());
        };
        let missing = self.missing_for_stage(record, stage);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(missing))
        }
    }

    /// Moves a record to the recycle bin; refused while other records reference it.
    pub async fn delete(&self, id: i64, access: &Access) -> Result<()> {
        let txn = self.db.begin_write().await?;
        let current = self
            .fetch(&txn, id, access)
            .await?
            .ok_or_else(|| self.not_found(id))?;
        locks::ensure_unlocked(&txn, self.db, &self.entity.def.key, id).await?;
        for (entity, field) in &self.entity.referenced_by {
            let mut select = Query::select();
            select
                .expr(Expr::col(Alias::new(schema::ID)).count())
                .from(self.db.table(&schema::table_name(entity)))
                .and_where(Expr::col(Alias::new(field)).eq(id))
                .and_where(Expr::col(Alias::new(schema::DELETED_AT)).is_null());
            let count = query_count(&txn, &select).await?;
            if count > 0 {
                return Err(Error::Conflict(format!(
                    "{} record {id} is referenced by {count} {entity} record(s) through field {field:?}; reassign or delete them first",
                    self.entity.def.key
                )));
            }
        }
        let mut update = Query::update();
        update
            .table(self.table())
            .value(Alias::new(schema::DELETED_AT), crate::clock::now())
            .value(
                Alias::new(schema::VERSION),
                Expr::col(Alias::new(schema::VERSION)).add(1),
            )
            .and_where(Expr::col(Alias::new(schema::ID)).eq(id));
        txn.execute(&update).await?;
        journal::record_write(
            &txn,
            self.db,
            &self.entity.def.key,
            id,
            "delete",
            access.user_id,
            &BTreeMap::new(),
            &current,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn query(&self, request: &QueryRequest, access: &Access) -> Result<Page> {
        let PagePlan {
            select,
            next_region,
            keys,
            limit,
        } = self.plan_page(request, access)?;
        let conn = self.db.conn();
        let mut rows = conn.query_all(&select).await?;
        if let Some(mut next_region) = next_region
            && rows.len() as u64 <= limit
        {
            next_region.limit(limit + 1 - rows.len() as u64);
            rows.extend(conn.query_all(&next_region).await?);
        }
        let columns = self.columns();
        let mut items = Vec::with_capacity(rows.len());
        let mut next = None;
        for (index, row) in rows.iter().enumerate() {
            if index as u64 == limit {
                let last = &rows[index - 1];
                next = Some(cursor_for(&keys, last)?);
                break;
            }
            items.push(mask(self.decode(row, &columns)?, access));
        }
        Ok(Page { items, next })
    }

    /// The statement [`Records::query`] runs for a page (public for plan checks).
    pub fn page_select(&self, request: &QueryRequest, access: &Access) -> Result<SelectStatement> {
        Ok(self.plan_page(request, access)?.select)
    }

    /// A page's statement — scope, filter, cursor, order, one row more than the limit
    /// (it tells whether another page follows) — with its sort keys.
    fn plan_page(&self, request: &QueryRequest, access: &Access) -> Result<PagePlan<'_>> {
        let limit = request.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Error::BadRequest(format!(
                "limit: must be between 1 and {MAX_LIMIT}, got {limit}"
            )));
        }
        let ctx = FilterContext::for_access(access);
        let mut keys: Vec<(&Field, bool)> = Vec::new();
        for (index, spec) in request.sort.iter().enumerate() {
            let (key, desc) = spec.parts();
            let field = self
                .entity
                .column(key)
                .filter(|f| !access.hidden_fields.contains(&f.key))
                .ok_or_else(|| {
                    Error::BadRequest(format!("sort[{index}]: unknown field {key:?}"))
                })?;
            if matches!(schema::storage(field.field_type), Storage::JsonText) {
                return Err(Error::BadRequest(format!(
                    "sort[{index}]: {} field {key:?} cannot be sorted",
                    field.field_type.as_str()
                )));
            }
            if field.key != schema::ID {
                keys.push((field, desc));
            }
        }
        let id_field = self.entity.column(schema::ID).expect("id column");
        let id_desc = keys.first().map(|(_, desc)| *desc).unwrap_or(false);
        keys.push((id_field, id_desc));

        let mut select = self.select();
        if let Some(rows) = &access.rows {
            select.cond_where(rows.clone());
        }
        if let Some(filter) = &request.filter {
            select.cond_where(filter::condition(self.entity, filter, &ctx)?);
        }
        let mut next_region = None;
        if let Some(cursor) = &request.after {
            let values = cursor_values(&keys, cursor)?;
            // A first key that may hold NULL splits the order in two regions: the
            // values, then the NULLs ascending; the NULLs, then the values descending.
            // Asking for the rest of the cursor's region and the whole next one in one
            // statement (`k > v OR k IS NULL`, `… OR k IS NOT NULL`) keeps both
            // databases from starting at the cursor in the key's index (each page read
            // the index from its start), so a second statement reads the next region
            // when the first runs out.
            let (first, desc) = keys[0];
            let column = Expr::col(Alias::new(&first.key));
            let next = match (desc, values[0] == Value::Null) {
                _ if schema::never_null(&first.key) => None,
                (false, false) => Some(column.is_null()),
                (true, true) => Some(column.is_not_null()),
                _ => None,
            };
            if let Some(next) = next {
                let mut rows = select.clone();
                rows.and_where(next);
                order_by(&mut rows, &keys);
                next_region = Some(rows);
            }
            select.cond_where(after_cursor(&keys, &values, next_region.is_some())?);
        }
        order_by(&mut select, &keys);
        select.limit(limit + 1);
        Ok(PagePlan {
            select,
            next_region,
            keys,
            limit,
        })
    }

    /// Reassigns records (资料转移) to `request.owner`: those named by `ids` or matched
    /// by `filter`, within the access's rows; the new owner must be an active user
    /// within the access's reach. Each change is audited like any write.
    pub async fn assign(&self, request: &AssignRequest, access: &Access) -> Result<Assigned> {
        let new_owner = request.owner;
        if !access.reaches_owner(new_owner) {
            return Err(Error::ForbiddenFields(vec![FieldError::new(
                schema::OWNER,
                format!("you may not assign records to user {new_owner}"),
            )]));
        }
        let mut select = self.select();
        if let Some(rows) = &access.rows {
            select.cond_where(rows.clone());
        }
        match (&request.ids, &request.filter) {
            (Some(ids), None) => {
                if ids.is_empty() || ids.len() > MAX_ASSIGN {
                    return Err(Error::BadRequest(format!(
                        "ids: give 1 to {MAX_ASSIGN} record ids"
                    )));
                }
                select.and_where(Expr::col(Alias::new(schema::ID)).is_in(ids.iter().copied()));
            }
            (None, Some(filter)) => {
                let ctx = FilterContext::for_access(access);
                select.cond_where(filter::condition(self.entity, filter, &ctx)?);
            }
            _ => {
                return Err(Error::BadRequest(
                    "give either ids or filter to choose the records to assign".into(),
                ));
            }
        }
        select.limit(MAX_ASSIGN as u64 + 1);
        let txn = self.db.begin_write().await?;
        let active = Query::select()
            .column(Alias::new("id"))
            .from(self.db.table("users"))
            .and_where(Expr::col(Alias::new("id")).eq(new_owner))
            .and_where(Expr::col(Alias::new("active")).eq(true))
            .to_owned();
        if query_first(&txn, &active).await?.is_none() {
            return Err(Error::field(
                schema::OWNER,
                format!("user {new_owner} does not exist or is disabled"),
            ));
        }
        let rows = txn.query_all(&select).await?;
        let columns = self.columns();
        if rows.len() > MAX_ASSIGN {
            return Err(Error::BadRequest(format!(
                "filter: matches more than {MAX_ASSIGN} records; narrow it and assign in parts"
            )));
        }
        let mut outcome = Assigned::default();
        let mut found = std::collections::BTreeSet::new();
        for row in &rows {
            let current = self.decode(row, &columns)?;
            let id = current[schema::ID].as_i64().unwrap_or_default();
            found.insert(id);
            if current[schema::OWNER].as_i64() == Some(new_owner) {
                outcome.unchanged += 1;
                continue;
            }
            self.set_owner_in(&txn, &current, Some(new_owner), access.user_id, "assign")
                .await?;
            outcome.assigned += 1;
        }
        txn.commit().await?;
        if let Some(ids) = &request.ids {
            let mut missing: Vec<i64> = ids
                .iter()
                .copied()
                .filter(|id| !found.contains(id))
                .collect();
            missing.sort_unstable();
            missing.dedup();
            outcome.not_found = missing;
        }
        Ok(outcome)
    }

    pub async fn history(&self, id: i64, access: &Access) -> Result<Vec<Value>> {
        self.get(id, access).await?;
        journal::history(self.db, &self.entity.def.key, id, &access.hidden_fields).await
    }

    /// Checks a write's input: an object; system keys ignored; computed, read-only and
    /// denied fields refused; JSON Schema; each value normalised.
    pub fn check_input(&self, input: &Value, access: &Access) -> Result<Map<String, Value>> {
        let Value::Object(input) = input else {
            return Err(Error::BadRequest("a record is a JSON object".into()));
        };
        let mut errors = Vec::new();
        let mut denied = Vec::new();
        let mut writable = Map::new();
        let mut stage = None;
        for (key, value) in input {
            if IGNORED_INPUT.contains(&key.as_str()) {
                continue;
            }
            if key == schema::STAGE && self.entity.has_pipeline() {
                stage = Some(value.clone());
                continue;
            }
            match self.entity.field(key) {
                Some(field) if field.is_computed() => {
                    errors.push(FieldError::new(key, "is computed and cannot be written"));
                }
                Some(field) if field.read_only && !access.system => {
                    errors.push(FieldError::new(key, "is read-only"));
                }
                _ if access.readonly_fields.contains(key) => {
                    denied.push(FieldError::new(key, "you may not change this field"));
                }
                _ => {
                    writable.insert(key.clone(), value.clone());
                }
            }
        }
        if !denied.is_empty() {
            return Err(Error::ForbiddenFields(denied));
        }
        let instance = Value::Object(writable);
        for error in self.entity.input_validator.iter_errors(&instance) {
            errors.extend(schema_error(&error));
        }
        let Value::Object(writable) = instance else {
            unreachable!()
        };
        let mut normalized = Map::new();
        for (key, value) in writable {
            // Unknown keys were reported by the schema.
            let Some(field) = self.entity.column(&key) else {
                continue;
            };
            match value::normalize(field, &value).and_then(|v| check_bounds(field, &v).map(|_| v)) {
                Ok(v) => {
                    normalized.insert(key, v);
                }
                Err(message) if !errors.iter().any(|e| e.field == key) => {
                    errors.push(FieldError::new(key, message));
                }
                Err(_) => {}
            }
        }
        if let Some(stage) = stage {
            let pipeline = self.entity.def.pipeline.as_ref().expect("has a pipeline");
            match stage
                .as_str()
                .filter(|s| pipeline.stages.iter().any(|st| st.key == *s))
            {
                Some(_) => {
                    normalized.insert(schema::STAGE.into(), stage);
                }
                None => errors.push(FieldError::new(
                    schema::STAGE,
                    format!("unknown stage {stage}"),
                )),
            }
        }
        if errors.is_empty() {
            Ok(normalized)
        } else {
            Err(Error::Validation(errors))
        }
    }

    /// Fills the fields the input left out, in field order, evaluating expression
    /// defaults over the record with the input already merged (so they can read the
    /// values sent in the same request and the defaults of earlier fields). A default
    /// never overrides a key the input gives, even `null`.
    fn apply_defaults(
        &self,
        record: &mut Map<String, Value>,
        input: &Map<String, Value>,
    ) -> Result<()> {
        for (key, default) in &self.entity.defaults {
            if input.contains_key(key) {
                continue;
            }
            let field = self.entity.field(key).expect("defaults name fields");
            let raw = match default {
                DefaultValue::Literal(value) => value.clone(),
                DefaultValue::Expr(expr) => expr.eval(record).map_err(|m| {
                    Error::field(key, format!("default could not be computed: {m}"))
                })?,
            };
            let value = value::normalize(field, &raw)
                .map_err(|m| Error::field(key, format!("default {raw} is not valid: {m}")))?;
            record.insert(key.clone(), value);
        }
        Ok(())
    }

    /// Computes formulas, then (with `required`) checks required and required_if on
    /// the complete record.
    fn complete(
        &self,
        record: &mut Map<String, Value>,
        input: &Map<String, Value>,
        required: bool,
    ) -> Result<()> {
        let mut errors = Vec::new();
        for (key, expr) in &self.entity.formulas {
            let field = self.entity.field(key).expect("formulas name fields");
            match expr.eval(record).and_then(|v| coerce_formula(field, &v)) {
                Ok(value) => {
                    record.insert(key.clone(), value);
                }
                Err(message) => {
                    errors.push(FieldError::new(key, format!("formula failed: {message}")))
                }
            }
        }
        for field in self.entity.def.fields.iter().filter(|_| required) {
            if field.is_computed() || errors.iter().any(|e| e.field == field.key) {
                continue;
            }
            let (visible, required) = self.entity.field_rules(field, record);
            let empty = is_empty(record.get(&field.key));
            // A field hidden by visible_if is not required; an untouched old record
            // is not failed for a rule added after it was written.
            let touched = input.contains_key(&field.key) || record.get(schema::ID).is_none();
            if visible && required && empty && (touched || field.required_if.is_some()) {
                errors.push(FieldError::new(&field.key, "is required"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(errors))
        }
    }

    /// Numbers come from the sequences table inside the write transaction: a rolled-back
    /// write gives its numbers back, so numbering has no gaps. Records get consecutive
    /// numbers in order, one statement per auto-number field.
    async fn assign_auto_numbers(
        &self,
        txn: &DatabaseTransaction,
        records: &mut [Map<String, Value>],
    ) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        for field in self
            .entity
            .def
            .fields
            .iter()
            .filter(|f| f.field_type == FieldType::AutoNumber)
        {
            let name = sequence_name(&self.entity.def.key, &field.key);
            let count = records.len() as i64;
            let mut update = Query::update();
            update
                .table(self.db.table("sequences"))
                .value(
                    Alias::new("value"),
                    Expr::col(Alias::new("value")).add(count),
                )
                .and_where(Expr::col(Alias::new("name")).eq(name.as_str()))
                .returning_col(Alias::new("value"));
            let row = query_first(txn, &update)
                .await?
                .ok_or_else(|| Error::Internal(format!("sequence {name} is missing")))?;
            let last: i64 = row.try_get("", "value")?;
            for (number, record) in (last - count + 1..).zip(records.iter_mut()) {
                record.insert(
                    field.key.clone(),
                    json!(format_auto_number(field.format.as_deref(), number)),
                );
            }
        }
        Ok(())
    }

    fn sql_value(&self, key: &str, value: &Value) -> Result<SqlValue> {
        let field = self
            .entity
            .column(key)
            .ok_or_else(|| Error::Internal(format!("no column {key}")))?;
        value::to_sql(field, value).map_err(|m| Error::field(key, m))
    }

    /// A unique index can still refuse a write that raced past the check.
    fn write_error(&self, error: Error) -> Error {
        let Error::Database(error) = error else {
            return error;
        };
        match error.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(message)) => {
                let field = self
                    .entity
                    .def
                    .fields
                    .iter()
                    .find(|f| {
                        f.unique
                            && message.contains(&schema::index_name(
                                &self.entity.def.key,
                                &f.key,
                                true,
                            ))
                    })
                    .map(|f| f.key.clone())
                    .unwrap_or_default();
                Error::field(field, "this value is already used by another record")
            }
            _ => Error::Database(error),
        }
    }

    /// The business process's reactions to a user's write (follow-up contacts, flows
    /// triggered on create or update), in the write's transaction. The store calls up
    /// into the workflow here, at this one seam, so that no writer can skip it.
    async fn after_write(
        &self,
        txn: &DatabaseTransaction,
        record: &Value,
        on: TriggerOn,
        user: i64,
    ) -> Result<()> {
        crate::workflow::hooks::after_write(
            txn,
            self.db,
            self.catalog,
            &self.entity.def.key,
            record,
            on,
            user,
        )
        .await
    }

    /// The fields a stage requires that the record leaves empty, each named.
    pub fn missing_for_stage(&self, record: &Map<String, Value>, stage: &str) -> Vec<FieldError> {
        let Some(stage) = self
            .entity
            .def
            .pipeline
            .as_ref()
            .and_then(|p| p.stages.iter().find(|s| s.key == stage))
        else {
            return Vec::new();
        };
        let label = stage.label();
        stage
            .required_fields
            .iter()
            .filter(|key| is_empty(record.get(*key)))
            .map(|key| FieldError::new(key, format!("is required in stage {label}")))
            .collect()
    }

    /// The catalog this store was built from.
    pub fn catalog(&self) -> &Catalog {
        self.catalog
    }
}

/// No value: absent, null, blank text or an empty list.
fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

pub fn sequence_name(entity: &str, field: &str) -> String {
    format!("{entity}.{field}")
}

/// `{YYYY}`, `{MM}`, `{DD}` are today's date; `{0000}` the number padded to as many
/// digits as zeros. Without a format the number alone.
fn format_auto_number(format: Option<&str>, number: i64) -> String {
    let Some(format) = format else {
        return number.to_string();
    };
    let today = crate::clock::today();
    let text = format
        .replace("{YYYY}", &today.format("%Y").to_string())
        .replace("{MM}", &today.format("%m").to_string())
        .replace("{DD}", &today.format("%d").to_string());
    let placeholder = Regex::new(r"\{(0+)\}").expect("static regex");
    placeholder
        .replace(&text, |caps: &regex::Captures| {
            format!("{number:0width$}", width = caps[1].len())
        })
        .into_owned()
}

/// Converts a formula's result to the field's type. Decimals are rounded to the
/// field's scale half away from zero (四舍五入, like `round()`); an integer field takes
/// a whole number, also when it comes as a float (`4 / 2` is `2.0`).
fn coerce_formula(field: &Field, value: &Value) -> Result<Value, String> {
    match (field.field_type, value) {
        (FieldType::Decimal, Value::Number(n)) => {
            let decimal = value::parse_decimal(&Value::Number(n.clone()))?.round_dp_with_strategy(
                field.decimal_scale(),
                rust_decimal::RoundingStrategy::MidpointAwayFromZero,
            );
            value::normalize(field, &json!(decimal.to_string()))
        }
        (FieldType::Integer, Value::Number(n)) if !n.is_i64() && !n.is_u64() => {
            let float = n.as_f64().unwrap_or(f64::NAN);
            // i64::MAX is not exactly representable; 2^63 itself is out of range.
            if float.fract() == 0.0 && float >= -(2f64.powi(63)) && float < 2f64.powi(63) {
                Ok(json!(float as i64))
            } else {
                Err(format!(
                    "integer field {:?} needs a whole number, got {n}",
                    field.key
                ))
            }
        }
        (FieldType::Text | FieldType::LongText, Value::Number(_) | Value::Bool(_)) => {
            Ok(json!(value.to_string()))
        }
        _ => value::normalize(field, value),
    }
}

/// Decimal bounds are checked on the exact value (JSON Schema covers integers).
fn check_bounds(field: &Field, value: &Value) -> Result<(), String> {
    if field.field_type != FieldType::Decimal || value.is_null() {
        return Ok(());
    }
    let number = value::parse_decimal(value)?;
    if let Some(min) = &field.min
        && number < value::parse_decimal(&Value::Number(min.clone()))?
    {
        return Err(format!("must be at least {min}"));
    }
    if let Some(max) = &field.max
        && number > value::parse_decimal(&Value::Number(max.clone()))?
    {
        return Err(format!("must be at most {max}"));
    }
    Ok(())
}

fn schema_error(error: &jsonschema::ValidationError) -> Vec<FieldError> {
    if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
        error.kind()
    {
        return unexpected
            .iter()
            .map(|key| FieldError::new(key, "unknown field"))
            .collect();
    }
    let path = error.instance_path().to_string();
    let field = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    vec![FieldError::new(field, error.to_string())]
}

/// Changed fields between two versions of a record (`{field: [old, new]}` in the audit
/// trail).
pub fn diff_records<'a>(old: &'a Map<String, Value>, new: &'a Map<String, Value>) -> Changes<'a> {
    new.iter()
        .filter(|(key, _)| {
            !matches!(
                key.as_str(),
                schema::ID
                    | schema::VERSION
                    | schema::CREATED_AT
                    | schema::UPDATED_AT
                    | schema::CREATED_BY
            )
        })
        .filter_map(|(key, value)| {
            let before = old.get(key).unwrap_or(&Value::Null);
            (before != value && !(before.is_null() && value.is_null()))
                .then_some((key.as_str(), (before, value)))
        })
        .collect()
}

/// A record with the fields `access` hides removed.
pub fn mask(record: Value, access: &Access) -> Value {
    match record {
        Value::Object(mut map) => {
            map.retain(|key, _| !access.hidden_fields.contains(key));
            Value::Object(map)
        }
        other => other,
    }
}

/// A page's statement and the sort keys its cursor holds.
struct PagePlan<'e> {
    select: SelectStatement,
    /// The rows of the first sort key's next region (its NULLs after its values, or
    /// the other way round), when `select` leaves them out: they follow its rows
    /// (ordered, without a limit yet).
    next_region: Option<SelectStatement>,
    keys: Vec<(&'e Field, bool)>,
    limit: u64,
}

/// Orders by the sort keys, NULL as the greatest value in both directions, on both
/// databases.
fn order_by(select: &mut SelectStatement, keys: &[(&Field, bool)]) {
    for (field, desc) in keys {
        let (order, nulls) = if *desc {
            (Order::Desc, NullOrdering::First)
        } else {
            (Order::Asc, NullOrdering::Last)
        };
        // Said of a column that holds no NULL, the NULL order keeps SQLite from
        // reading the rows in an index's order (it sorts instead; newest-first
        // lists then took another index and sorted every row the scope reaches).
        match schema::never_null(&field.key) {
            true => select.order_by(Alias::new(&field.key), order),
            false => select.order_by_with_nulls(Alias::new(&field.key), order, nulls),
        };
    }
}

/// The cursor is the last row's sort values, opaque to clients.
fn cursor_for(keys: &[(&Field, bool)], row: &QueryResult) -> Result<String> {
    let values = keys
        .iter()
        .map(|(field, _)| value::from_row(row, &field.key, field.field_type, field.decimal_scale()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(URL_SAFE_NO_PAD.encode(Value::Array(values).to_string()))
}

fn invalid_cursor() -> Error {
    Error::BadRequest(
        "after: invalid cursor; pass the `next` value of a previous page with the same sort".into(),
    )
}

/// The sort values a cursor holds, one per key.
fn cursor_values(keys: &[(&Field, bool)], cursor: &str) -> Result<Vec<Value>> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid_cursor())?;
    let values: Vec<Value> = serde_json::from_slice(&bytes).map_err(|_| invalid_cursor())?;
    if values.len() != keys.len() {
        return Err(invalid_cursor());
    }
    Ok(values)
}

/// Rows strictly after the cursor's `values` in the sort order (NULL being the
/// greatest value) — within the first key's region (NULL or not) when `region_apart`:
/// a statement of their own reads the next region's rows.
fn after_cursor(
    keys: &[(&Field, bool)],
    values: &[Value],
    region_apart: bool,
) -> Result<Condition> {
    let mut any = Condition::any();
    for position in 0..keys.len() {
        let mut all = Condition::all();
        for ((field, _), value) in keys[..position].iter().zip(values) {
            let column = Expr::col(Alias::new(&field.key));
            all = all.add(match value {
                Value::Null => column.is_null(),
                v => column.eq(value::to_sql(field, v).map_err(|_| invalid_cursor())?),
            });
        }
        let (field, desc) = keys[position];
        let column = Expr::col(Alias::new(&field.key));
        let after = match (&values[position], desc) {
            (Value::Null, false) => continue,
            (Value::Null, true) if position == 0 && region_apart => continue,
            (Value::Null, true) => column.is_not_null(),
            // Said of a column that holds no NULL, the NULL alternative would keep the
            // databases from starting the scan at the cursor in the index: every page
            // read the table from its start (a rebuild of 1M records slowed to half).
            (v, false) if schema::never_null(&field.key) || (position == 0 && region_apart) => {
                column.gt(value::to_sql(field, v).map_err(|_| invalid_cursor())?)
            }
            (v, false) => {
                let v = value::to_sql(field, v).map_err(|_| invalid_cursor())?;
                column.clone().gt(v).or(column.is_null())
            }
            (v, true) => column.lt(value::to_sql(field, v).map_err(|_| invalid_cursor())?),
        };
        any = any.add(all.add(after));
    }
    let (first, desc) = keys[0];
    match &values[0] {
        v if keys.len() > 1
            && *v != Value::Null
            && (desc || schema::never_null(&first.key) || region_apart) =>
        {
            // Implied by `any`, but PostgreSQL does not derive it from the OR of the
            // keys: stated, it starts the index scan at the cursor.
            let v = value::to_sql(first, v).map_err(|_| invalid_cursor())?;
            let column = Expr::col(Alias::new(&first.key));
            let bound = if desc { column.lte(v) } else { column.gte(v) };
            Ok(Condition::all().add(bound).add(any))
        }
        _ => Ok(any),
    }
}
