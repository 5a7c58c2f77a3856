//! Writing new records: the row insert and the journal of a create, for one record or
//! many at once. An import's batch of an entity where nothing reacts to each create
//! (no hooks, no flow started on create, no follow-up contact) is written with a few
//! multi-row statements — constraints checked with one query per field, numbers taken
//! as one block, the rows, their audit, outbox and stage-history rows — instead of
//! several round trips per record.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, InsertStatement, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, Statement, TransactionTrait};
use serde_json::{Map, Value, json};

use super::{Records, diff_records};
use crate::auth::Access;
use crate::error::{Error, Result};
use crate::meta::{HookEvent, TriggerOn};
use crate::store::value::format_datetime;
use crate::store::{journal, schema};
use crate::workflow::followups;

/// Bound values per multi-row `INSERT` (SQLite allows 32,766, PostgreSQL 65,535).
const VALUES_PER_INSERT: usize = 30_000;

/// What became of records written together.
#[derive(Debug, Default)]
pub struct Inserted {
    /// The records written, unmasked.
    pub created: Vec<Value>,
    /// The position of each refused record among those given, and why it was refused.
    pub refused: Vec<(usize, Error)>,
}

impl Records<'_> {
    /// Whether new records of this entity can be written many per statement: nothing
    /// runs for each create besides the write itself.
    pub fn inserts_in_batches(&self) -> bool {
        let key = self.entity.def.key.as_str();
        let package = &self.catalog.package;
        let hooked = [HookEvent::BeforeSave, HookEvent::AfterSave]
            .into_iter()
            .any(|event| package.hooks_for(key, event).next().is_some());
        let starts_flow = package.flows.iter().any(|flow| {
            flow.entity == key
                && flow
                    .trigger
                    .as_ref()
                    .is_some_and(|t| t.on == TriggerOn::Create)
        });
        !hooked && !starts_flow && !followups::counts_as_contact(self.catalog, key)
    }

    /// Writes prepared records (from [`Self::prepare_create`]) inside `txn` with the
    /// checks and journal of [`Self::insert_prepared`]: together when the entity
    /// [`Self::inserts_in_batches`], else one by one, each in its own savepoint. A
    /// refused record leaves nothing behind; failures of the database are errors.
    pub async fn insert_many(
        &self,
        txn: &DatabaseTransaction,
        mut records: Vec<Map<String, Value>>,
        access: &Access,
        action: &str,
    ) -> Result<Inserted> {
        if self.inserts_in_batches() {
            let savepoint = txn.begin().await?;
            match self
                .insert_together(&savepoint, &mut records, access, action)
                .await
            {
                Ok(inserted) => {
                    savepoint.commit().await?;
                    return Ok(inserted);
                }
                // A unique index refused the batch: a value was taken since the check,
                // or two records of the batch share one. One by one, each record
                // that cannot be written is named.
                Err(Error::Validation(_)) => savepoint.rollback().await?,
                Err(error) => return Err(error),
            }
        }
        let mut inserted = Inserted::default();
        for (position, record) in records.into_iter().enumerate() {
            let savepoint = txn.begin().await?;
            match self
                .insert_prepared(&savepoint, record, access, action)
                .await
            {
                Ok(created) => {
                    savepoint.commit().await?;
                    inserted.created.push(created);
                }
                Err(error @ (Error::Database(_) | Error::Internal(_))) => return Err(error),
                Err(error) => {
                    savepoint.rollback().await?;
                    inserted.refused.push((position, error));
                }
            }
        }
        Ok(inserted)
    }

    /// The batch path of [`Self::insert_many`]; auto numbers are written into
    /// `records` (a later write of them takes new ones).
    async fn insert_together(
        &self,
        txn: &DatabaseTransaction,
        records: &mut [Map<String, Value>],
        access: &Access,
        action: &str,
    ) -> Result<Inserted> {
        let candidates: Vec<_> = records.iter().map(|record| (record, None)).collect();
        let problems = self
            .check_constraints(txn, &candidates, access.user_id)
            .await?;
        let mut refused = Vec::new();
        let mut accepted_positions = Vec::with_capacity(records.len());
        for (position, problems) in problems.into_iter().enumerate() {
            match problems.is_empty() {
                true => accepted_positions.push(position),
                false => refused.push((position, Error::Validation(problems))),
            }
        }
        let mut some;
        let accepted = match refused.is_empty() {
            true => records,
            false => {
                some = accepted_positions
                    .iter()
                    .map(|&position| records[position].clone())
                    .collect::<Vec<_>>();
                &mut some[..]
            }
        };
        self.assign_auto_numbers(txn, accepted).await?;
        let created = self
            .insert_journaled(txn, accepted, access.user_id, action)
            .await?;
        Ok(Inserted { created, refused })
    }

    /// Inserts complete records as `user` with their journal (first stage, audit as
    /// `action`, outbox); answers the records written, whole, as a read would answer
    /// them (the values are normalized already, so nothing is read back). One record
    /// takes its id from the insert; many take theirs beforehand ([`Self::take_ids`]:
    /// neither database promises the order of a multi-row insert's `RETURNING`) and
    /// their journal is built while the database inserts the rows.
    pub(super) async fn insert_journaled(
        &self,
        txn: &DatabaseTransaction,
        records: &[Map<String, Value>],
        user: i64,
        action: &str,
    ) -> Result<Vec<Value>> {
        let now = crate::clock::now();
        let (created, entries) = if records.len() == 1 {
            let insert = self.row_inserts(records, None, user, now)?;
            let row = txn.query_all(&insert[0]).await;
            let row = row.map_err(|e| self.write_error(e.into()))?;
            let id: i64 = match row.first() {
                Some(row) => row.try_get("", schema::ID)?,
                None => return Err(Error::Internal("insert returned no id".into())),
            };
            let created = self.written(records, &[id], user, now);
            let entries = self.journal(&created, user, action)?;
            (created, entries)
        } else {
            let ids = self.take_ids(txn, records.len()).await?;
            let inserts = self.row_inserts(records, Some(&ids), user, now)?;
            let insert = async {
                for insert in &inserts {
                    txn.execute(insert)
                        .await
                        .map_err(|e| self.write_error(e.into()))?;
                }
                Ok::<_, Error>(())
            };
            let journal = async {
                let created = self.written(records, &ids, user, now);
                let entries = self.journal(&created, user, action)?;
                Ok::<_, Error>((created, entries))
            };
            // Polled first, the insert is on its way before the journal is built.
            let (inserted, journal) = futures::future::join(insert, journal).await;
            inserted?;
            journal?
        };
        entries.write(txn).await?;
        Ok(created)
    }

    /// The multi-row `INSERT`s of complete records, as many rows per statement as the
    /// bound-value limit allows: under the given ids, or else answering the id the
    /// database assigns.
    fn row_inserts(
        &self,
        records: &[Map<String, Value>],
        ids: Option<&[i64]>,
        user: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<InsertStatement>> {
        // Every row names the same columns: those any record has (NULL where another
        // has none, as a single insert would leave them).
        let mut seen = HashSet::new();
        let keys: Vec<&str> = records
            .iter()
            .flat_map(|r| r.keys())
            .map(String::as_str)
            .filter(|key| seen.insert(*key))
            .collect();
        let system = [
            schema::ID,
            schema::CREATED_AT,
            schema::UPDATED_AT,
            schema::CREATED_BY,
            schema::VERSION,
        ];
        let system = &system[usize::from(ids.is_none())..];
        let columns = system
            .iter()
            .copied()
            .chain(keys.iter().copied())
            .map(Alias::new)
            .collect::<Vec<_>>();
        let per_insert = (VALUES_PER_INSERT / columns.len()).max(1);
        let mut inserts = Vec::new();
        for (position, chunk) in records.chunks(per_insert).enumerate() {
            let mut insert = Query::insert();
            insert.into_table(self.table()).columns(columns.clone());
            for (offset, record) in chunk.iter().enumerate() {
                let mut values: Vec<Expr> = Vec::with_capacity(columns.len());
                if let Some(ids) = ids {
                    values.push(Expr::val(ids[position * per_insert + offset]));
                }
                values.extend([
                    Expr::val(now),
                    Expr::val(now),
                    Expr::val(user),
                    Expr::val(1i64),
                ]);
                for key in &keys {
                    let value = record.get(*key).unwrap_or(&Value::Null);
                    values.push(Expr::val(self.sql_value(key, value)?));
                }
                insert.values_panic(values);
            }
            if ids.is_none() {
                insert.returning_col(Alias::new(schema::ID));
            }
            inserts.push(insert);
        }
        Ok(inserts)
    }

    /// The records [`Self::row_inserts`] writes, with their columns in the order a
    /// read answers them. (`records` stay whole: a batch a unique index refuses is
    /// written again one by one.)
    fn written(
        &self,
        records: &[Map<String, Value>],
        ids: &[i64],
        user: i64,
        now: DateTime<Utc>,
    ) -> Vec<Value> {
        let now = Value::String(format_datetime(now));
        let columns = self.columns();
        let written = records.iter().zip(ids).map(|(record, id)| {
            let mut row = Map::with_capacity(columns.len());
            for (column, _, _) in &columns {
                let value = match column.as_str() {
                    schema::ID => json!(id),
                    schema::VERSION => json!(1),
                    schema::CREATED_BY => json!(user),
                    schema::CREATED_AT | schema::UPDATED_AT => now.clone(),
                    _ => record.get(column).cloned().unwrap_or(Value::Null),
                };
                row.insert(column.clone(), value);
            }
            Value::Object(row)
        });
        written.collect()
    }

    /// Ids for `count` new rows of the entity's table, taken inside the write
    /// transaction: from the table's identity sequence on PostgreSQL (ids a rolled
    /// back write took are skipped, as its own inserts would skip them), after the
    /// highest id the table ever had on SQLite (its AUTOINCREMENT counter, which the
    /// inserts then advance; the transaction holds SQLite's write lock).
    async fn take_ids(&self, txn: &DatabaseTransaction, count: usize) -> Result<Vec<i64>> {
        let backend = txn.get_database_backend();
        let count = count as i64;
        let statement = match self.db.schema() {
            Some(schema) => Statement::from_sql_and_values(
                backend,
                // `OFFSET 0` keeps the sequence's lookup from running once per id.
                "SELECT nextval(s) AS id \
                 FROM (SELECT pg_get_serial_sequence($1, 'id')::regclass AS s OFFSET 0) q, \
                 generate_series(1, $2) ORDER BY 1",
                [
                    format!("\"{schema}\".\"{}\"", self.entity.table).into(),
                    count.into(),
                ],
            ),
            None => {
                let table = &self.entity.table;
                let last = Statement::from_sql_and_values(
                    backend,
                    format!(
                        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), \
                         coalesce((SELECT max(id) FROM \"{table}\"), 0)) AS id"
                    ),
                    [table.clone().into()],
                );
                let last: i64 = match txn.query_one_raw(last).await? {
                    Some(row) => row.try_get("", "id")?,
                    None => 0,
                };
                return Ok((last + 1..=last + count).collect());
            }
        };
        txn.query_all_raw(statement)
            .await?
            .iter()
            .map(|row| Ok(row.try_get::<i64>("", "id")?))
            .collect()
    }

    /// The journal of new records: their first stage, audit rows (every field from
    /// nothing) and outbox rows.
    fn journal(&self, created: &[Value], user: i64, action: &str) -> Result<journal::Entries> {
        let entity = &self.entity.def.key;
        let id = |record: &Value| record[schema::ID].as_i64().unwrap_or_default();
        let nothing = Map::new();
        let changes: Vec<_> = created
            .iter()
            .map(|r| diff_records(&nothing, r.as_object().expect("records are objects")))
            .collect();
        let writes: Vec<journal::Write> = created
            .iter()
            .zip(&changes)
            .map(|(record, changes)| journal::Write {
                record_id: id(record),
                changes,
                record,
            })
            .collect();
        let mut entries = journal::Entries::of_writes(self.db, entity, action, user, &writes)?;
        let stages: Vec<(i64, &str)> = created
            .iter()
            .filter_map(|r| Some((id(r), r.get(schema::STAGE)?.as_str()?)))
            .collect();
        entries.start_stages(self.db, entity, user, &stages);
        Ok(entries)
    }
}
