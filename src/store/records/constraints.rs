//! What a record write checks in its transaction beyond the input rules: unique values,
//! existing reference targets and users, uploaded files. Many records (an import's
//! batch) are checked with one query per field, so a batch costs the round trips of
//! one record; unique indexes back the uniqueness check up under races.

use std::collections::{BTreeSet, HashMap};

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, TableName};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::{Map, Value};

use super::Records;
use crate::error::{Error, FieldError, Result};
use crate::meta::{Field, FieldType};
use crate::store::{files, schema, value};

/// Values per `IN (…)` list.
const VALUES_PER_QUERY: usize = 1000;

/// A record to check, with its own id when the write updates it (its own value of a
/// unique field is no conflict).
pub(super) type Candidate<'r> = (&'r Map<String, Value>, Option<i64>);

impl Records<'_> {
    /// Each candidate's problems, in order (none: it may be written). The files of the
    /// candidates without problems are marked attached. `actor` is the writing user,
    /// known to exist.
    pub(super) async fn check_constraints(
        &self,
        txn: &DatabaseTransaction,
        candidates: &[Candidate<'_>],
        actor: i64,
    ) -> Result<Vec<Vec<FieldError>>> {
        let mut problems = vec![Vec::new(); candidates.len()];
        let checked = self.entity.def.fields.iter().filter(|f| {
            f.unique
                || matches!(
                    f.field_type,
                    FieldType::Reference | FieldType::User | FieldType::Attachment
                )
        });
        for field in checked {
            let given: Vec<(usize, &Value)> = candidates
                .iter()
                .enumerate()
                .filter_map(|(i, (record, _))| {
                    record
                        .get(&field.key)
                        .filter(|v| !v.is_null())
                        .map(|v| (i, v))
                })
                .collect();
            if given.is_empty() {
                continue;
            }
            if field.unique {
                let holders = self.holders(txn, field, &given).await?;
                for (i, value) in &given {
                    let own = candidates[*i].1;
                    let key = value::normalize(field, value).unwrap_or_else(|_| (*value).clone());
                    let taken = holders
                        .get(&key.to_string())
                        .is_some_and(|ids| ids.iter().any(|id| Some(*id) != own));
                    if taken {
                        problems[*i].push(FieldError::new(
                            &field.key,
                            format!("{value} is already used by another record"),
                        ));
                    }
                }
            }
            match field.field_type {
                FieldType::Reference => {
                    let target = field.target.as_deref().expect("validated reference");
                    let table = self.db.table(&schema::table_name(target));
                    let live = present_ids(txn, table, true, &given).await?;
                    for (i, value) in &given {
                        if !value.as_i64().is_some_and(|id| live.contains(&id)) {
                            problems[*i].push(FieldError::new(
                                &field.key,
                                format!("{target} record {value} does not exist"),
                            ));
                        }
                    }
                }
                FieldType::User => {
                    self.check_users(txn, &field.key, &given, &mut problems)
                        .await?
                }
                FieldType::Attachment => {
                    let named =
                        |value: &Value| -> BTreeSet<String> { attachment_files(value).collect() };
                    let all: BTreeSet<String> = given.iter().flat_map(|(_, v)| named(v)).collect();
                    let stored = files::stored(txn, self.db, &all).await?;
                    for (i, value) in &given {
                        if let Some(missing) = named(value).difference(&stored).next() {
                            problems[*i].push(FieldError::new(
                                &field.key,
                                format!(
                                    "file {missing:?} was not uploaded (POST /api/files first)"
                                ),
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        // The acting user exists (the session resolved them): only others are looked up.
        let owners: Vec<(usize, &Value)> = candidates
            .iter()
            .enumerate()
            .filter_map(|(i, (record, _))| {
                record
                    .get(schema::OWNER)
                    .filter(|v| !v.is_null() && v.as_i64() != Some(actor))
                    .map(|v| (i, v))
            })
            .collect();
        self.check_users(txn, schema::OWNER, &owners, &mut problems)
            .await?;
        let claimed: BTreeSet<String> = candidates
            .iter()
            .zip(&problems)
            .filter(|(_, problems)| problems.is_empty())
            .flat_map(|((record, _), _)| self.attached_files(record))
            .collect();
        files::attach(txn, self.db, &claimed).await?;
        Ok(problems)
    }

    /// [`Self::check_constraints`] for one record: its problems as a validation error.
    pub(super) async fn check_record(
        &self,
        txn: &DatabaseTransaction,
        record: &Map<String, Value>,
        id: Option<i64>,
        actor: i64,
    ) -> Result<()> {
        let mut problems = self.check_constraints(txn, &[(record, id)], actor).await?;
        match problems.pop() {
            Some(errors) if !errors.is_empty() => Err(Error::Validation(errors)),
            _ => Ok(()),
        }
    }

    /// The live records holding each of `given`'s values of a unique field: the
    /// value's canonical JSON text → their ids.
    async fn holders(
        &self,
        txn: &DatabaseTransaction,
        field: &Field,
        given: &[(usize, &Value)],
    ) -> Result<HashMap<String, Vec<i64>>> {
        let mut values = Vec::with_capacity(given.len());
        for (_, value) in given {
            values.push(value::to_sql(field, value).map_err(Error::Internal)?);
        }
        let mut holders: HashMap<String, Vec<i64>> = HashMap::new();
        for chunk in values.chunks(VALUES_PER_QUERY) {
            let select = Query::select()
                .columns([Alias::new(schema::ID), Alias::new(&field.key)])
                .from(self.table())
                .and_where(Expr::col(Alias::new(&field.key)).is_in(chunk.iter().cloned()))
                .and_where(Expr::col(Alias::new(schema::DELETED_AT)).is_null())
                .to_owned();
            for row in txn.query_all(&select).await? {
                let held =
                    value::from_row(&row, &field.key, field.field_type, field.decimal_scale())?;
                holders
                    .entry(held.to_string())
                    .or_default()
                    .push(row.try_get("", schema::ID)?);
            }
        }
        Ok(holders)
    }

    /// Names each given user id that is no user, as a problem of `key`.
    async fn check_users(
        &self,
        txn: &DatabaseTransaction,
        key: &str,
        given: &[(usize, &Value)],
        problems: &mut [Vec<FieldError>],
    ) -> Result<()> {
        if given.is_empty() {
            return Ok(());
        }
        let users = present_ids(txn, self.db.table("users"), false, given).await?;
        for (i, value) in given {
            if !value.as_i64().is_some_and(|id| users.contains(&id)) {
                problems[*i].push(FieldError::new(key, format!("user {value} does not exist")));
            }
        }
        Ok(())
    }

    /// The files a record's attachment fields name.
    fn attached_files(&self, record: &Map<String, Value>) -> Vec<String> {
        self.entity
            .def
            .fields
            .iter()
            .filter(|f| f.field_type == FieldType::Attachment)
            .filter_map(|f| record.get(&f.key))
            .flat_map(attachment_files)
            .collect()
    }
}

/// The files an attachment value names: `[{file, name, …}]`.
fn attachment_files(value: &Value) -> impl Iterator<Item = String> + '_ {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["file"].as_str().map(String::from))
}

/// Which of the given ids are rows of `table` (live ones only, for record tables).
async fn present_ids(
    txn: &DatabaseTransaction,
    table: TableName,
    live_only: bool,
    given: &[(usize, &Value)],
) -> Result<BTreeSet<i64>> {
    let ids: BTreeSet<i64> = given.iter().filter_map(|(_, v)| v.as_i64()).collect();
    let ids: Vec<i64> = ids.into_iter().collect();
    let mut present = BTreeSet::new();
    for chunk in ids.chunks(VALUES_PER_QUERY) {
        let mut select = Query::select();
        select
            .column(Alias::new(schema::ID))
            .from(table.clone())
            .and_where(Expr::col(Alias::new(schema::ID)).is_in(chunk.iter().copied()));
        if live_only {
            select.and_where(Expr::col(Alias::new(schema::DELETED_AT)).is_null());
        }
        for row in txn.query_all(&select).await? {
            present.insert(row.try_get::<i64>("", schema::ID)?);
        }
    }
    Ok(present)
}
