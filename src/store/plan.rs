//! Schema changes as plans: the difference between the published package and a new
//! one, as an ordered list of steps, each with the SQL it runs.
//!
//! Nothing is ever dropped: a removed field or entity is archived (its column or table
//! renamed aside) and comes back with its data when the same key is added again.

use serde::{Deserialize, Serialize};

use sea_orm::sea_query::{
    Alias, Expr, ExprTrait, PostgresQueryBuilder, Query, SchemaStatementBuilder,
    SqliteQueryBuilder, Table,
};

use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;

use crate::error::Result;
use crate::meta::{Entity, Field, FieldType, Package, Problem};
use crate::store::db::{Backend, TenantDb, query_first};
use crate::store::records::sequence_name;
use crate::store::schema::{self, Storage};

/// What has been archived, kept with each metadata version so that a later package can
/// restore it (and so that a restore can be checked against the archived definition).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Archive {
    #[serde(default)]
    pub entities: Vec<Entity>,
    #[serde(default)]
    pub fields: Vec<ArchivedField>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchivedField {
    pub entity: String,
    pub field: Field,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    CreateTable,
    RenameTable,
    ArchiveTable,
    RestoreTable,
    AddColumn,
    RenameColumn,
    ArchiveColumn,
    RestoreColumn,
    ConvertColumn,
    AddIndex,
    DropIndex,
    RenameIndex,
    RenameSequence,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub op: Op,
    pub entity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub sql: String,
    #[serde(skip)]
    pub statements: Vec<String>,
    /// For `convert_column`: what must hold before the values are multiplied.
    #[serde(skip)]
    pub check: Option<ConvertCheck>,
}

/// A widening multiplies the stored (scaled) integers by 10^Δscale; every value must
/// still fit a 64-bit integer afterwards. Checked against the column as it is before
/// the plan runs (`table` and `column` name it there).
#[derive(Debug, Clone)]
pub struct ConvertCheck {
    /// Metadata path of the offending option (`….type` or `….scale`).
    pub path: String,
    pub field: String,
    pub table: String,
    pub column: String,
    pub old_scale: u32,
    pub new_scale: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    #[serde(skip)]
    pub archive: Archive,
}

/// Diffs `old` (published, with its archive) against `new` for the tenant's database.
/// Refuses changes that could lose data, naming the metadata path.
pub fn diff(
    db: &TenantDb,
    old: &Package,
    old_archive: &Archive,
    new: &Package,
) -> Result<Plan, Vec<Problem>> {
    let mut planner = Planner {
        db,
        steps: Vec::new(),
        archive: old_archive.clone(),
        problems: Vec::new(),
        source_table: String::new(),
    };
    planner.plan(old, new);
    if planner.problems.is_empty() {
        Ok(Plan {
            steps: planner.steps,
            archive: planner.archive,
        })
    } else {
        Err(planner.problems)
    }
}

struct Planner<'a> {
    db: &'a TenantDb,
    steps: Vec<Step>,
    archive: Archive,
    problems: Vec<Problem>,
    /// The table of the entity being planned as it is named before the plan runs
    /// (renames and restores come earlier in the plan), for conversion checks.
    source_table: String,
}

/// The stage column is archived and restored like a field when a pipeline is removed
/// or added back; like a field marked `indexed`, its index goes and comes with it.
fn stage_field() -> Field {
    serde_json::from_value(
        serde_json::json!({"key": schema::STAGE, "type": "text", "indexed": true}),
    )
    .expect("static field definition")
}

/// The indexes a table built for `entity` has, as (column, unique): the system
/// indexes, then each field's.
fn entity_indexes(entity: &Entity) -> Vec<(String, bool)> {
    let mut indexes: Vec<(String, bool)> = schema::system_index_keys(entity)
        .into_iter()
        .map(|column| (column.to_string(), false))
        .collect();
    for field in &entity.fields {
        if field.indexed {
            indexes.push((field.key.clone(), false));
        }
        if field.unique {
            indexes.push((field.key.clone(), true));
        }
    }
    indexes
}

/// The last-contact column comes and goes with a follow-up cycle or a pool, indexed
/// for the due list and the reclaim job.
fn last_contact_field() -> Field {
    serde_json::from_value(
        serde_json::json!({"key": schema::LAST_CONTACT_AT, "type": "datetime", "indexed": true}),
    )
    .expect("static field definition")
}

impl Planner<'_> {
    fn plan(&mut self, old: &Package, new: &Package) {
        let renamed: Vec<&str> = new
            .entities
            .iter()
            .filter_map(|e| e.renamed_from.as_deref())
            .filter(|from| new.entity(from).is_none() && old.entity(from).is_some())
            .collect();
        for (index, entity) in new.entities.iter().enumerate() {
            let path = format!("entities[{index}]");
            if let Some(previous) = old.entity(&entity.key) {
                self.source_table = schema::table_name(&entity.key);
                self.entity(&path, previous, entity);
            } else if let Some(previous) = entity
                .renamed_from
                .as_deref()
                .filter(|from| renamed.contains(from))
                .and_then(|from| old.entity(from))
            {
                if self.archive.entities.iter().any(|e| e.key == entity.key) {
                    self.refuse(
                        format!("{path}.key"),
                        format!(
                            "cannot rename entity {:?} to {:?}: an archived entity has that key; add {:?} back without renamed_from to restore it, or choose another key",
                            previous.key, entity.key, entity.key
                        ),
                    );
                    continue;
                }
                self.source_table = schema::table_name(&previous.key);
                self.rename_table(previous, &entity.key);
                self.entity(&path, previous, entity);
            } else if let Some(position) = self
                .archive
                .entities
                .iter()
                .position(|e| e.key == entity.key)
            {
                let archived = self.archive.entities.remove(position);
                self.source_table = schema::archived_table_name(&entity.key);
                self.restore_table(&entity.key);
                self.entity(&path, &archived, entity);
            } else {
                self.create_table(entity);
            }
        }
        for previous in &old.entities {
            if new.entity(&previous.key).is_none() && !renamed.contains(&previous.key.as_str()) {
                self.archive_table(previous);
            }
        }
    }

    fn entity(&mut self, path: &str, old: &Entity, new: &Entity) {
        let stage = stage_field();
        match (old.pipeline.is_some(), new.pipeline.is_some()) {
            (false, true) => self.add_or_restore_column(path, &new.key, &stage),
            (true, false) => self.archive_column(&new.key, &stage),
            _ => {}
        }
        let contact = last_contact_field();
        match (old.tracks_contacts(), new.tracks_contacts()) {
            (false, true) => {
                self.add_or_restore_column(path, &new.key, &contact);
                self.add_index(&new.key, schema::OWNER_LAST_CONTACT, false);
            }
            (true, false) => {
                self.drop_index(&new.key, schema::OWNER_LAST_CONTACT, false);
                self.archive_column(&new.key, &contact);
            }
            _ => {}
        }
        let renamed: Vec<&str> = new
            .fields
            .iter()
            .filter_map(|f| f.renamed_from.as_deref())
            .filter(|from| new.field(from).is_none() && old.field(from).is_some())
            .collect();
        for (index, field) in new.fields.iter().enumerate() {
            let path = format!("{path}.fields[{index}]");
            if let Some(previous) = old.field(&field.key) {
                self.field(&path, &new.key, previous, field);
            } else if let Some(previous) = field
                .renamed_from
                .as_deref()
                .filter(|from| renamed.contains(from))
                .and_then(|from| old.field(from))
            {
                if self
                    .archive
                    .fields
                    .iter()
                    .any(|a| a.entity == new.key && a.field.key == field.key)
                {
                    self.refuse(
                        format!("{path}.key"),
                        format!(
                            "cannot rename field {:?} to {:?}: an archived field of {:?} has that key; add {:?} back without renamed_from to restore it, or choose another key",
                            previous.key, field.key, new.key, field.key
                        ),
                    );
                    continue;
                }
                self.drop_indexes(&new.key, previous);
                self.rename_column(&new.key, &previous.key, &field.key);
                if previous.field_type == FieldType::AutoNumber {
                    self.rename_sequence(&new.key, &new.key, &previous.key, &field.key);
                }
                self.convert(&path, &new.key, previous, field, &previous.key);
                self.create_indexes(&new.key, field);
            } else {
                self.add_or_restore_column(&path, &new.key, field);
            }
        }
        for previous in &old.fields {
            if new.field(&previous.key).is_none() && !renamed.contains(&previous.key.as_str()) {
                self.archive_column(&new.key, previous);
            }
        }
    }

    fn field(&mut self, path: &str, entity: &str, old: &Field, new: &Field) {
        self.convert(path, entity, old, new, &new.key);
        if old.indexed && !new.indexed {
            self.drop_index(entity, &new.key, false);
        }
        if old.unique && !new.unique {
            self.drop_index(entity, &new.key, true);
        }
        if new.indexed && !old.indexed {
            self.add_index(entity, &new.key, false);
        }
        if new.unique && !old.unique {
            self.add_index(entity, &new.key, true);
        }
    }

    fn add_or_restore_column(&mut self, path: &str, entity: &str, field: &Field) {
        let archived = self
            .archive
            .fields
            .iter()
            .position(|a| a.entity == entity && a.field.key == field.key);
        match archived {
            Some(position) => {
                let archived = self.archive.fields.remove(position).field;
                let table = self.db.table(&schema::table_name(entity));
                let rename = Table::alter()
                    .table(table)
                    .rename_column(
                        Alias::new(schema::archived_column_name(&field.key)),
                        Alias::new(&field.key),
                    )
                    .to_owned();
                self.push(
                    Op::RestoreColumn,
                    entity,
                    Some(&field.key),
                    vec![self.render(&rename)],
                );
                let source_column = schema::archived_column_name(&field.key);
                self.convert(path, entity, &archived, field, &source_column);
            }
            None => {
                let table = self.db.table(&schema::table_name(entity));
                let add = Table::alter()
                    .table(table)
                    .add_column(schema::field_column(field))
                    .to_owned();
                self.push(
                    Op::AddColumn,
                    entity,
                    Some(&field.key),
                    vec![self.render(&add)],
                );
            }
        }
        self.create_indexes(entity, field);
    }

    fn archive_column(&mut self, entity: &str, field: &Field) {
        self.drop_indexes(entity, field);
        let table = self.db.table(&schema::table_name(entity));
        let rename = Table::alter()
            .table(table)
            .rename_column(
                Alias::new(&field.key),
                Alias::new(schema::archived_column_name(&field.key)),
            )
            .to_owned();
        self.push(
            Op::ArchiveColumn,
            entity,
            Some(&field.key),
            vec![self.render(&rename)],
        );
        self.archive.fields.push(ArchivedField {
            entity: entity.to_string(),
            field: field.clone(),
        });
    }

    fn rename_column(&mut self, entity: &str, from: &str, to: &str) {
        let table = self.db.table(&schema::table_name(entity));
        let rename = Table::alter()
            .table(table)
            .rename_column(Alias::new(from), Alias::new(to))
            .to_owned();
        self.push(
            Op::RenameColumn,
            entity,
            Some(to),
            vec![self.render(&rename)],
        );
        for archived in &mut self.archive.fields {
            if archived.entity == entity && archived.field.key == from {
                archived.field.key = to.to_string();
            }
        }
    }

    /// Converts a column between field types, refusing anything that could lose data.
    /// `source_column` is the column's name before the plan runs.
    fn convert(&mut self, path: &str, entity: &str, old: &Field, new: &Field, source_column: &str) {
        let (from, to) = (old.field_type, new.field_type);
        let (old_scale, new_scale) = (old.decimal_scale(), new.decimal_scale());
        if from == to && old_scale == new_scale {
            if from == FieldType::Reference && old.target != new.target {
                self.refuse(
                    format!("{path}.target"),
                    format!(
                        "changing the target of reference field {:?} would leave its values pointing at the wrong records; add a new field instead",
                        new.key
                    ),
                );
            }
            return;
        }
        let lossless_text = schema::storage(from) == Storage::Text
            && matches!(to, FieldType::Text | FieldType::LongText);
        let widened_number = matches!(from, FieldType::Integer | FieldType::Decimal)
            && to == FieldType::Decimal
            && new_scale >= old_scale;
        if lossless_text {
            return;
        }
        if !widened_number {
            let message = if from == to {
                format!(
                    "reducing the scale of decimal field {:?} from {old_scale} to {new_scale} would round its values; add a new field instead",
                    new.key
                )
            } else {
                format!(
                    "changing field {:?} from {} to {} could lose data; allowed changes are integer→decimal, a larger decimal scale, and text-like→text/long_text",
                    new.key,
                    from.as_str(),
                    to.as_str()
                )
            };
            let suffix = if from == to { "scale" } else { "type" };
            self.refuse(format!("{path}.{suffix}"), message);
            return;
        }
        let factor = 10i64.pow(new_scale - old_scale);
        if factor == 1 {
            return;
        }
        let column = Alias::new(&new.key);
        let update = Query::update()
            .table(self.db.table(&schema::table_name(entity)))
            .value(column.clone(), Expr::col(column).mul(factor))
            .to_owned();
        let sql = match self.db.backend() {
            Backend::Sqlite => update.to_string(SqliteQueryBuilder),
            Backend::Postgres => update.to_string(PostgresQueryBuilder),
        };
        self.push(Op::ConvertColumn, entity, Some(&new.key), vec![sql]);
        let suffix = if from == to { "scale" } else { "type" };
        self.steps.last_mut().expect("just pushed").check = Some(ConvertCheck {
            path: format!("{path}.{suffix}"),
            field: new.key.clone(),
            table: self.source_table.clone(),
            column: source_column.to_string(),
            old_scale,
            new_scale,
        });
    }

    fn create_table(&mut self, entity: &Entity) {
        let mut statements = vec![self.render(&schema::create_table(self.db, entity))];
        statements.extend(schema::system_indexes(self.db, entity));
        self.push(Op::CreateTable, &entity.key, None, statements);
        for field in &entity.fields {
            self.create_indexes(&entity.key, field);
        }
    }

    /// Renames the table, its indexes (their names carry the entity key) and the
    /// sequences of its auto-number fields, archived ones included.
    fn rename_table(&mut self, previous: &Entity, to: &str) {
        let from = previous.key.as_str();
        let rename = Table::rename()
            .table(
                self.db.table(&schema::table_name(from)),
                Alias::new(schema::table_name(to)),
            )
            .to_owned();
        self.push(Op::RenameTable, to, None, vec![self.render(&rename)]);
        for (column, unique) in entity_indexes(previous) {
            self.rename_index(from, to, &column, unique);
        }
        let numbered: Vec<String> = previous
            .fields
            .iter()
            .chain(
                self.archive
                    .fields
                    .iter()
                    .filter(|a| a.entity == from)
                    .map(|a| &a.field),
            )
            .filter(|f| f.field_type == FieldType::AutoNumber)
            .map(|f| f.key.clone())
            .collect();
        for field in numbered {
            self.rename_sequence(from, to, &field, &field);
        }
        for archived in &mut self.archive.fields {
            if archived.entity == from {
                archived.entity = to.to_string();
            }
        }
    }

    /// Gives an index of a renamed table the name derived from the new entity key:
    /// `ALTER INDEX … RENAME` on PostgreSQL; SQLite cannot rename an index, so it is
    /// dropped and created again. Tolerates a missing index (tables renamed before
    /// indexes followed their tables).
    fn rename_index(&mut self, from: &str, to: &str, column: &str, unique: bool) {
        let old_name = schema::index_name(from, column, unique);
        let new_name = schema::index_name(to, column, unique);
        let statements = match self.db.schema() {
            Some(namespace) => vec![format!(
                "ALTER INDEX IF EXISTS \"{namespace}\".\"{old_name}\" RENAME TO \"{new_name}\""
            )],
            None => vec![
                format!("DROP INDEX IF EXISTS \"{old_name}\""),
                schema::create_index(self.db, to, column, unique, true),
            ],
        };
        self.push(Op::RenameIndex, to, Some(column), statements);
    }

    /// Moves an auto-number's counter to the sequence name of its new entity or field
    /// key, so numbering goes on where it was.
    fn rename_sequence(&mut self, from_entity: &str, to_entity: &str, from: &str, to: &str) {
        let update = Query::update()
            .table(self.db.table("sequences"))
            .value(Alias::new("name"), sequence_name(to_entity, to))
            .and_where(Expr::col(Alias::new("name")).eq(sequence_name(from_entity, from)))
            .to_owned();
        let sql = match self.db.backend() {
            Backend::Sqlite => update.to_string(SqliteQueryBuilder),
            Backend::Postgres => update.to_string(PostgresQueryBuilder),
        };
        self.push(Op::RenameSequence, to_entity, Some(to), vec![sql]);
    }

    fn archive_table(&mut self, entity: &Entity) {
        let rename = Table::rename()
            .table(
                self.db.table(&schema::table_name(&entity.key)),
                Alias::new(schema::archived_table_name(&entity.key)),
            )
            .to_owned();
        self.push(
            Op::ArchiveTable,
            &entity.key,
            None,
            vec![self.render(&rename)],
        );
        self.archive.entities.push(entity.clone());
    }

    fn restore_table(&mut self, entity: &str) {
        let rename = Table::rename()
            .table(
                self.db.table(&schema::archived_table_name(entity)),
                Alias::new(schema::table_name(entity)),
            )
            .to_owned();
        self.push(Op::RestoreTable, entity, None, vec![self.render(&rename)]);
    }

    fn create_indexes(&mut self, entity: &str, field: &Field) {
        if field.indexed {
            self.add_index(entity, &field.key, false);
        }
        if field.unique {
            self.add_index(entity, &field.key, true);
        }
    }

    fn drop_indexes(&mut self, entity: &str, field: &Field) {
        if field.indexed {
            self.drop_index(entity, &field.key, false);
        }
        if field.unique {
            self.drop_index(entity, &field.key, true);
        }
    }

    fn add_index(&mut self, entity: &str, field: &str, unique: bool) {
        let index = schema::create_index(self.db, entity, field, unique, false);
        self.push(Op::AddIndex, entity, Some(field), vec![index]);
    }

    fn drop_index(&mut self, entity: &str, field: &str, unique: bool) {
        let index = schema::drop_index(self.db, entity, field, unique);
        self.push(
            Op::DropIndex,
            entity,
            Some(field),
            vec![self.render(&index)],
        );
    }

    fn render(&self, statement: &impl SchemaStatementBuilder) -> String {
        match self.db.backend() {
            Backend::Sqlite => statement.to_string(SqliteQueryBuilder),
            Backend::Postgres => statement.to_string(PostgresQueryBuilder),
        }
    }

    fn push(&mut self, op: Op, entity: &str, field: Option<&str>, statements: Vec<String>) {
        self.steps.push(Step {
            op,
            entity: entity.to_string(),
            field: field.map(str::to_string),
            sql: statements.join(";\n"),
            statements,
            check: None,
        });
    }

    fn refuse(&mut self, path: String, message: String) {
        self.problems.push(Problem { path, message });
    }
}

/// Runs the checks of the plan's conversions against the data as it is, before any
/// step: a widening whose largest value would overflow is refused, naming the field
/// and that value.
pub async fn check_conversions(
    db: &TenantDb,
    conn: &impl ConnectionTrait,
    plan: &Plan,
) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    for check in plan.steps.iter().filter_map(|s| s.check.as_ref()) {
        let column = Alias::new(&check.column);
        let select = Query::select()
            .expr(Expr::col(column.clone()).max())
            .expr(Expr::col(column).min())
            .from(db.table(&check.table))
            .to_owned();
        let Some(row) = query_first(conn, &select).await? else {
            continue;
        };
        let max: Option<i64> = row.try_get_by_index(0)?;
        let min: Option<i64> = row.try_get_by_index(1)?;
        let factor = 10i64.pow(check.new_scale - check.old_scale);
        let limit = i64::MAX / factor;
        let largest = [max, min]
            .into_iter()
            .flatten()
            .max_by_key(|v| i128::from(*v).abs());
        if let Some(largest) = largest.filter(|v| i128::from(*v).abs() > i128::from(limit)) {
            problems.push(Problem {
                path: check.path.clone(),
                message: format!(
                    "cannot widen field {:?} to decimal with scale {}: its largest value {} would not fit (a decimal with scale {} holds at most ±{}); nothing was changed",
                    check.field,
                    check.new_scale,
                    Decimal::new(largest, check.old_scale),
                    check.new_scale,
                    Decimal::new(i64::MAX, check.new_scale),
                ),
            });
        }
    }
    Ok(problems)
}
