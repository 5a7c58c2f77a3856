//! A report definition as aggregated SQL: the caller's rows of the source entity
//! (scope and filter applied in a `base` subquery), reference targets joined as
//! subqueries of the rows the caller may read there, then grouped by the
//! dimensions and measured. Dimensions and orderings are addressed by position
//! (`GROUP BY 1, 2`), so an expression is written once, with its parameters once:
//! PostgreSQL does not recognise two copies of a parameterised expression as the
//! same grouping.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sea_orm::sea_query::{
    Alias, Asterisk, CaseStatement, Condition, Expr, ExprTrait, Func, JoinType, NullOrdering,
    Order, Query, SelectStatement,
};
use sea_orm::{ConnectionTrait, QueryResult};
use serde_json::{Value, json};

use crate::auth::Access;
use crate::catalog::{Catalog, EntityCatalog};
use crate::clock;
use crate::error::{Error, Result};
use crate::meta::{DateBucket, Field, FieldType, MeasureFn, Report};
use crate::store::db::{Backend, TenantDb};
use crate::store::filter::{self, FilterContext};
use crate::store::schema::{self, Storage};
use crate::store::value;

/// The alias of the source rows inside a report's statement.
const BASE: &str = "base";

/// Most rows a report returns; a longer result says it was cut.
pub const MAX_ROWS: u64 = 10_000;

/// What the caller may read: the source entity, and the targets of the references a
/// report groups or measures through (by target entity key).
pub struct Reach<'a> {
    pub source: &'a Access,
    pub targets: &'a BTreeMap<String, Access>,
}

/// One group-by column of a report.
#[derive(Debug, Clone)]
pub struct Dimension {
    /// The group_by field as written (`stage`, `customer.region`).
    pub key: String,
    /// The field the values come from (the target's field for `customer.region`).
    pub field: Field,
    /// The entity that field belongs to.
    pub entity: String,
    pub bucket: Option<DateBucket>,
    expr: Expr,
}

/// One measured column of a report.
#[derive(Debug, Clone)]
pub struct Measured {
    /// `count`, `sum:amount`, `weighted:sum:amount`.
    pub key: String,
    pub label: Option<String>,
    pub function: MeasureFn,
    pub field: Option<Field>,
    /// Multiplied by the stage probability (a forecast's weighted sum).
    pub weighted: bool,
    /// The measured column (none for `count` of rows).
    column: Option<Expr>,
    expr: Expr,
}

/// A report compiled for one caller: its columns and the statement parts.
pub struct Aggregate<'a> {
    db: &'a TenantDb,
    pub entity: &'a EntityCatalog,
    pub dimensions: Vec<Dimension>,
    pub measures: Vec<Measured>,
    /// Sort keys as (dimension or measure position in the output, descending).
    sort: Vec<(usize, bool)>,
    limit: Option<u64>,
    base: SelectStatement,
    joins: BTreeMap<String, SelectStatement>,
}

fn bad(path: &str, message: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("{path}: {message}"))
}

fn hidden(path: &str, key: &str) -> Error {
    Error::Forbidden(format!(
        "{path}: the field {key:?} is hidden from you, so a report cannot group or measure it"
    ))
}

impl<'a> Aggregate<'a> {
    /// Compiles `report` for a caller with `reach`. Unknown fields are 400s naming
    /// their path; fields masked from the caller are 403s.
    pub fn compile(
        db: &'a TenantDb,
        catalog: &'a Catalog,
        entity: &'a EntityCatalog,
        report: &Report,
        reach: &Reach,
    ) -> Result<Aggregate<'a>> {
        let ctx = FilterContext::for_access(reach.source);
        let mut base = Query::select();
        base.column(Asterisk)
            .from(db.table(&entity.table))
            .and_where(Expr::col(Alias::new(schema::DELETED_AT)).is_null());
        if let Some(rows) = &reach.source.rows {
            base.cond_where(rows.clone());
        }
        if let Some(filter) = &report.filter {
            base.cond_where(filter::condition(entity, filter, &ctx)?);
        }
        let mut aggregate = Aggregate {
            db,
            entity,
            dimensions: Vec::new(),
            measures: Vec::new(),
            sort: Vec::new(),
            limit: report.limit.map(u64::from),
            base,
            joins: BTreeMap::new(),
        };
        for (i, group) in report.group_by.iter().enumerate() {
            let path = format!("group_by[{i}].field");
            let (column, field, owner) = aggregate.column(catalog, reach, &group.field, &path)?;
            let expr = match group.bucket {
                None => column,
                Some(bucket) => {
                    if !matches!(field.field_type, FieldType::Date | FieldType::Datetime) {
                        return Err(bad(
                            &format!("group_by[{i}].bucket"),
                            "a bucket needs a date or datetime field",
                        ));
                    }
                    bucket_expr(
                        db.backend(),
                        local_date(db.backend(), column, &field),
                        bucket,
                    )
                }
            };
            aggregate.dimensions.push(Dimension {
                key: group.field.clone(),
                field,
                entity: owner,
                bucket: group.bucket,
                expr,
            });
        }
        for (i, measure) in report.measures.iter().enumerate() {
            let path = format!("measures[{i}].field");
            let column = match &measure.field {
                None if measure.function == MeasureFn::Count => None,
                None => return Err(bad(&path, "this measure needs a field")),
                Some(key) => Some(aggregate.column(catalog, reach, key, &path)?),
            };
            let numeric = column
                .as_ref()
                .is_none_or(|(_, f, _)| f.field_type.is_numeric());
            if matches!(measure.function, MeasureFn::Sum | MeasureFn::Avg) && !numeric {
                return Err(bad(&path, "sum and avg need a numeric field"));
            }
            let (column, field) = match column {
                Some((expr, field, _)) => (Some(expr), Some(field)),
                None => (None, None),
            };
            aggregate.measures.push(Measured {
                key: measure.key(),
                label: measure.label.clone(),
                function: measure.function,
                field,
                weighted: false,
                expr: measure_expr(measure.function, column.clone()),
                column,
            });
        }
        if aggregate.measures.is_empty() {
            aggregate.measures.push(Measured {
                key: "count".into(),
                label: None,
                function: MeasureFn::Count,
                field: None,
                weighted: false,
                column: None,
                expr: measure_expr(MeasureFn::Count, None),
            });
        }
        for (i, sort) in report.sort.iter().enumerate() {
            let dims = aggregate.dimensions.len();
            let position = aggregate
                .dimensions
                .iter()
                .position(|d| d.key == sort.field)
                .or_else(|| {
                    let measure = aggregate.measures.iter().position(|m| m.key == sort.field);
                    measure.map(|m| dims + m)
                })
                .ok_or_else(|| {
                    bad(
                        &format!("sort[{i}].field"),
                        format!(
                            "{:?} is neither a group_by field nor a measure key",
                            sort.field
                        ),
                    )
                })?;
            aggregate.sort.push((position, sort.desc));
        }
        Ok(aggregate)
    }

    /// A column a report may use: a field or system column of the source, or
    /// `reference.column` of a reference's target (joined once per reference). Returns
    /// its expression, its field and the entity it belongs to.
    fn column(
        &mut self,
        catalog: &Catalog,
        reach: &Reach,
        key: &str,
        path: &str,
    ) -> Result<(Expr, Field, String)> {
        let visible = |entity: &EntityCatalog, access: &Access, key: &str| match entity.column(key)
        {
            None => Err(bad(
                path,
                format!("unknown field {key:?} of {}", entity.def.key),
            )),
            Some(_) if access.hidden_fields.contains(key) => Err(hidden(path, key)),
            Some(field) if matches!(schema::storage(field.field_type), Storage::JsonText) => {
                Err(bad(
                    path,
                    format!(
                        "a {} field cannot be grouped or measured",
                        field.field_type.as_str()
                    ),
                ))
            }
            Some(field) => Ok(field.clone()),
        };
        let Some((reference, target_key)) = key.split_once('.') else {
            let field = visible(self.entity, reach.source, key)?;
            let expr = Expr::col((Alias::new(BASE), Alias::new(key)));
            return Ok((expr, field, self.entity.def.key.clone()));
        };
        let reference_field = visible(self.entity, reach.source, reference)?;
        let target = reference_field
            .target
            .as_deref()
            .filter(|_| reference_field.field_type == FieldType::Reference)
            .and_then(|t| catalog.entity(t))
            .ok_or_else(|| bad(path, format!("{reference:?} is not a reference field")))?;
        let access = reach.targets.get(&target.def.key).ok_or_else(|| {
            Error::Forbidden(format!(
                "{path}: you may not read {} records, which {key:?} reaches",
                target.def.label()
            ))
        })?;
        let field = visible(target, access, target_key)?;
        let alias = format!("j_{reference}");
        if !self.joins.contains_key(reference) {
            // Only the target rows the caller may read: others join as empty.
            let mut rows = Query::select();
            rows.column(Asterisk)
                .from(self.db.table(&target.table))
                .and_where(Expr::col(Alias::new(schema::DELETED_AT)).is_null());
            if let Some(condition) = &access.rows {
                rows.cond_where(condition.clone());
            }
            self.joins.insert(reference.to_string(), rows);
        }
        let expr = Expr::col((Alias::new(alias), Alias::new(target_key)));
        Ok((expr, field, target.def.key.clone()))
    }

    /// Adds, after the measures, a forecast's weighted sum of `measure` (its position):
    /// each row's value times its stage's probability.
    pub fn add_weighted(&mut self, measure: usize, probabilities: &[(String, u32)]) {
        let source = &self.measures[measure];
        let column = source.column.clone().expect("a sum measures a column");
        let stage = Expr::col((Alias::new(BASE), Alias::new(schema::STAGE)));
        let probability = probabilities
            .iter()
            .fold(CaseStatement::new(), |case, (key, percent)| {
                case.case(stage.clone().eq(key.as_str()), i64::from(*percent))
            })
            .finally(0);
        let probability: Expr = probability.into();
        let weighted = column.clone().mul(probability);
        let measured = Measured {
            key: format!("weighted:{}", source.key),
            label: source.label.clone(),
            function: MeasureFn::Sum,
            field: source.field.clone(),
            weighted: true,
            column: Some(column),
            expr: sum(weighted),
        };
        self.measures.push(measured);
    }

    /// The source column of dimension `index`, as [`Aggregate::restrict`] names it.
    pub fn source_column(&self, index: usize) -> Expr {
        Expr::col(Alias::new(&self.dimensions[index].key))
    }

    /// Restricts the source rows further (a comparison's window), with a condition on
    /// the source table's columns.
    pub fn restrict(&mut self, condition: Condition) {
        self.base.cond_where(condition);
    }

    /// The grouped statement over the dimensions at `dimensions` (positions), every
    /// measure after them; sorted as the report says, then by the dimensions.
    pub fn select(&self, dimensions: &[usize]) -> SelectStatement {
        let mut select = Query::select();
        select.from_subquery(self.base.clone(), Alias::new(BASE));
        for (reference, rows) in &self.joins {
            let alias = format!("j_{reference}");
            select.join_subquery(
                JoinType::LeftJoin,
                rows.clone(),
                Alias::new(&alias),
                Expr::col((Alias::new(&alias), Alias::new(schema::ID)))
                    .equals((Alias::new(BASE), Alias::new(reference))),
            );
        }
        for (n, &d) in dimensions.iter().enumerate() {
            select.expr_as(self.dimensions[d].expr.clone(), Alias::new(format!("g{n}")));
        }
        for (n, measure) in self.measures.iter().enumerate() {
            select.expr_as(measure.expr.clone(), Alias::new(format!("m{n}")));
        }
        if !dimensions.is_empty() {
            select.add_group_by((1..=dimensions.len()).map(|p| Expr::cust(p.to_string())));
        }
        let mut ordered = Vec::new();
        for &(position, desc) in &self.sort {
            let output = if position < self.dimensions.len() {
                dimensions.iter().position(|&d| d == position)
            } else {
                Some(dimensions.len() + position - self.dimensions.len())
            };
            if let Some(output) = output {
                ordered.push((output, desc));
            }
        }
        for output in 0..dimensions.len() {
            if !ordered.iter().any(|(o, _)| *o == output) {
                ordered.push((output, false));
            }
        }
        for (output, desc) in ordered {
            let (order, nulls) = if desc {
                (Order::Desc, NullOrdering::First)
            } else {
                (Order::Asc, NullOrdering::Last)
            };
            let key = match dimensions.get(output).map(|&d| &self.dimensions[d]) {
                Some(dimension) => option_order(dimension),
                None => None,
            };
            let key = key.unwrap_or_else(|| Expr::cust((output + 1).to_string()));
            select.order_by_expr_with_nulls(key, order, nulls);
        }
        select.limit(self.row_limit() + 1);
        select
    }

    /// Rows a result may hold: the report's limit, at most [`MAX_ROWS`].
    fn row_limit(&self) -> u64 {
        Ord::min(self.limit.unwrap_or(MAX_ROWS), MAX_ROWS)
    }

    /// The source rows' ids (for joins against stage history).
    pub fn ids(&self) -> SelectStatement {
        let mut select = Query::select();
        select
            .column((Alias::new(BASE), Alias::new(schema::ID)))
            .from_subquery(self.base.clone(), Alias::new(BASE));
        select
    }

    /// The source rows' ids as `rid` with their `stage` (a funnel's current stages).
    pub fn id_and_stage(&self) -> SelectStatement {
        let mut select = Query::select();
        select
            .expr_as(
                Expr::col((Alias::new(BASE), Alias::new(schema::ID))),
                Alias::new("rid"),
            )
            .column((Alias::new(BASE), Alias::new(schema::STAGE)))
            .from_subquery(self.base.clone(), Alias::new(BASE));
        select
    }

    /// Runs `select(dimensions)`: rows of dimension values then measure values, and
    /// whether the result was cut at the report's limit.
    pub async fn fetch(&self, dimensions: &[usize]) -> Result<(Vec<Vec<Value>>, bool)> {
        let limit = self.row_limit() as usize;
        let rows = self.db.conn().query_all(&self.select(dimensions)).await?;
        let cut = rows.len() > limit;
        let decoded = rows
            .iter()
            .take(limit)
            .map(|row| self.decode(row, dimensions))
            .collect::<Result<_>>()?;
        Ok((decoded, cut))
    }

    fn decode(&self, row: &QueryResult, dimensions: &[usize]) -> Result<Vec<Value>> {
        let mut values = Vec::with_capacity(dimensions.len() + self.measures.len());
        for (n, &d) in dimensions.iter().enumerate() {
            let dimension = &self.dimensions[d];
            let column = format!("g{n}");
            values.push(match dimension.bucket {
                Some(_) => row
                    .try_get::<Option<String>>("", &column)?
                    .map_or(Value::Null, Value::String),
                None => from_row(row, &column, &dimension.field)?,
            });
        }
        for (n, measure) in self.measures.iter().enumerate() {
            values.push(measure_value(row, &format!("m{n}"), measure)?);
        }
        Ok(values)
    }
}

fn from_row(row: &QueryResult, column: &str, field: &Field) -> Result<Value> {
    Ok(value::from_row(
        row,
        column,
        field.field_type,
        field.decimal_scale(),
    )?)
}

fn measure_value(row: &QueryResult, column: &str, measure: &Measured) -> Result<Value> {
    let scale = measure.field.as_ref().map_or(0, Field::decimal_scale);
    Ok(match measure.function {
        MeasureFn::Count | MeasureFn::CountDistinct => json!(row.try_get::<i64>("", column)?),
        MeasureFn::Sum => {
            let total = row.try_get::<i64>("", column)?;
            // A weighted sum carries the percentage's two extra decimal places.
            let scale = scale + if measure.weighted { 2 } else { 0 };
            decimal(Decimal::new(total, scale))
        }
        MeasureFn::Avg => match row.try_get::<Option<f64>>("", column)? {
            None => Value::Null,
            Some(mean) => {
                let mean = mean / 10f64.powi(scale as i32);
                let digits = Ord::max(scale, 2) as i32;
                let rounded = (mean * 10f64.powi(digits)).round() / 10f64.powi(digits);
                json!(rounded)
            }
        },
        MeasureFn::Min | MeasureFn::Max => {
            let field = measure.field.as_ref().expect("min and max have a field");
            from_row(row, column, field)?
        }
    })
}

/// Options and stages sort in the order the metadata lists them (初步接触 before 报价),
/// not alphabetically; values outside the list come last. The expression reads the
/// grouped column itself, which both databases accept in a grouped query's ORDER BY.
fn option_order(dimension: &Dimension) -> Option<Expr> {
    let options = &dimension.field.options;
    if options.is_empty() || dimension.bucket.is_some() {
        return None;
    }
    let position = options
        .iter()
        .enumerate()
        .fold(CaseStatement::new(), |case, (i, option)| {
            case.case(dimension.expr.clone().eq(option.value.as_str()), i as i64)
        })
        .finally(options.len() as i64);
    Some(position.into())
}

/// A decimal as a JSON number, without trailing zeros.
pub fn decimal(value: Decimal) -> Value {
    let normalized = value.normalize();
    serde_json::from_str(&normalized.to_string()).unwrap_or_else(|_| json!(normalized.to_string()))
}

fn sum(expr: Expr) -> Expr {
    let total = Func::coalesce([Expr::from(Func::sum(expr)), Expr::val(0)]);
    Func::cast_as(total, Alias::new("BIGINT")).into()
}

fn measure_expr(function: MeasureFn, column: Option<Expr>) -> Expr {
    let Some(column) = column else {
        return Expr::cust("COUNT(*)");
    };
    match function {
        MeasureFn::Count => Func::count(column).into(),
        MeasureFn::CountDistinct => Func::count_distinct(column).into(),
        MeasureFn::Sum => sum(column),
        MeasureFn::Avg => Func::cast_as(Func::avg(column), Alias::new("DOUBLE PRECISION")).into(),
        MeasureFn::Min => Func::min(column).into(),
        MeasureFn::Max => Func::max(column).into(),
    }
}

/// The tenant-local date of a date or datetime column, as a date (PostgreSQL) or
/// `YYYY-MM-DD` text (SQLite).
fn local_date(backend: Backend, column: Expr, field: &Field) -> Expr {
    if field.field_type == FieldType::Date {
        return column;
    }
    let hours = clock::offset().local_minus_utc() / 3600;
    match backend {
        Backend::Sqlite => Expr::cust_with_expr(format!("date(?, '{hours:+} hours')"), column),
        Backend::Postgres => Expr::cust_with_expr(
            format!("CAST(($1 AT TIME ZONE 'UTC') + INTERVAL '{hours} hours' AS DATE)"),
            column,
        ),
    }
}

/// A date bucket's label: `2024-03-05` (day, and the Monday of a week), `2024-03`,
/// `2024-Q1`, `2024`. Labels sort in time order.
fn bucket_expr(backend: Backend, date: Expr, bucket: DateBucket) -> Expr {
    let template = match (backend, bucket) {
        (Backend::Sqlite, DateBucket::Day) => "substr(?, 1, 10)",
        (Backend::Sqlite, DateBucket::Week) => "date(?, 'weekday 0', '-6 days')",
        (Backend::Sqlite, DateBucket::Month) => "substr(?, 1, 7)",
        (Backend::Sqlite, DateBucket::Quarter) => {
            return Expr::cust_with_exprs(
                "substr(?, 1, 4) || '-Q' || ((CAST(substr(?, 6, 2) AS INTEGER) + 2) / 3)",
                [date.clone(), date],
            );
        }
        (Backend::Sqlite, DateBucket::Year) => "substr(?, 1, 4)",
        (Backend::Postgres, DateBucket::Day) => "to_char($1, 'YYYY-MM-DD')",
        (Backend::Postgres, DateBucket::Week) => "to_char(date_trunc('week', $1), 'YYYY-MM-DD')",
        (Backend::Postgres, DateBucket::Month) => "to_char($1, 'YYYY-MM')",
        (Backend::Postgres, DateBucket::Quarter) => "to_char($1, 'YYYY-\"Q\"Q')",
        (Backend::Postgres, DateBucket::Year) => "to_char($1, 'YYYY')",
    };
    Expr::cust_with_expr(template, date)
}

/// The label of the bucket holding `date` (the same labels the SQL makes).
pub fn bucket_label(date: NaiveDate, bucket: DateBucket) -> String {
    use chrono::Datelike;
    match bucket {
        DateBucket::Day => date.format("%Y-%m-%d").to_string(),
        DateBucket::Week => {
            let monday = date - chrono::Days::new(u64::from(date.weekday().num_days_from_monday()));
            monday.format("%Y-%m-%d").to_string()
        }
        DateBucket::Month => date.format("%Y-%m").to_string(),
        DateBucket::Quarter => format!("{}-Q{}", date.year(), (date.month() - 1) / 3 + 1),
        DateBucket::Year => date.format("%Y").to_string(),
    }
}

/// The first day of the bucket a label names.
pub fn bucket_start(label: &str, bucket: DateBucket) -> Option<NaiveDate> {
    let parse = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
    match bucket {
        DateBucket::Day | DateBucket::Week => parse(label),
        DateBucket::Month => parse(&format!("{label}-01")),
        DateBucket::Quarter => {
            let (year, quarter) = label.split_once("-Q")?;
            let month = (quarter.parse::<u32>().ok()? - 1) * 3 + 1;
            NaiveDate::from_ymd_opt(year.parse().ok()?, month, 1)
        }
        DateBucket::Year => parse(&format!("{label}-01-01")),
    }
}
