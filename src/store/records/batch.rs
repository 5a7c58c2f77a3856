//! Writing new records: the row insert and the journal of a create, for one record or
//! many at once. An import's batch of an entity where nothing reacts to each create
//! (no hooks, no flow started on create, no follow-up contact) is written with a few
//! multi-row statements — constraints checked with one query per field, numbers taken
//! as one block, the rows, their audit, outbox and stage-history rows — instead of
//! several round trips per record.

use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use serde_json::{Map, Value};

use super::{Records, diff_records};
use crate::auth::Access;
use crate::error::{Error, Result};
use crate::meta::{HookEvent, TriggerOn};
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
        let created = self.insert_rows(txn, accepted, access.user_id).await?;
        self.journal_created(txn, &created, access.user_id, action)
            .await?;
        Ok(Inserted { created, refused })
    }

    /// Inserts complete records as `user`, as many per statement as the bound-value
    /// limit allows; answers the rows written, whole (no second read).
    pub(super) async fn insert_rows(
        &self,
        txn: &DatabaseTransaction,
        records: &[Map<String, Value>],
        user: i64,
    ) -> Result<Vec<Value>> {
        // Every row names the same columns: those any record has (NULL where another
        // has none, as a single insert would leave them).
        let mut keys: Vec<&String> = records.iter().flat_map(|r| r.keys()).collect();
        keys.sort();
        keys.dedup();
        let columns = [
            schema::CREATED_AT,
            schema::UPDATED_AT,
            schema::CREATED_BY,
            schema::VERSION,
        ]
        .into_iter()
        .chain(keys.iter().map(|k| k.as_str()))
        .map(Alias::new)
        .collect::<Vec<_>>();
        let read = self.columns();
        let returning = Query::returning().columns(read.iter().map(|(c, _, _)| Alias::new(c)));
        let now = crate::clock::now();
        let per_insert = (VALUES_PER_INSERT / (keys.len() + 4)).max(1);
        let mut created = Vec::with_capacity(records.len());
        for chunk in records.chunks(per_insert) {
            let mut insert = Query::insert();
            insert
                .into_table(self.table())
                .columns(columns.clone())
                .returning(returning.clone());
            for record in chunk {
                let mut values: Vec<Expr> = vec![
                    Expr::val(now),
                    Expr::val(now),
                    Expr::val(user),
                    Expr::val(1i64),
                ];
                for key in &keys {
                    let value = record.get(*key).unwrap_or(&Value::Null);
                    values.push(Expr::val(self.sql_value(key.as_str(), value)?));
                }
                insert.values_panic(values);
            }
            let rows = txn
                .query_all(&insert)
                .await
                .map_err(|e| self.write_error(e.into()))?;
            for row in rows {
                created.push(self.decode(&row, &read)?);
            }
        }
        Ok(created)
    }

    /// The journal of new records: their first stage, audit rows (every field from
    /// nothing) and outbox rows.
    pub(super) async fn journal_created(
        &self,
        txn: &DatabaseTransaction,
        created: &[Value],
        user: i64,
        action: &str,
    ) -> Result<()> {
        let entity = &self.entity.def.key;
        let id = |record: &Value| record[schema::ID].as_i64().unwrap_or_default();
        let stages: Vec<(i64, &str)> = created
            .iter()
            .filter_map(|r| Some((id(r), r.get(schema::STAGE)?.as_str()?)))
            .collect();
        journal::start_stages(txn, self.db, entity, user, &stages).await?;
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
        journal::record_writes(txn, self.db, entity, action, user, &writes).await
    }
}
