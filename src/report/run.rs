//! Running a compiled report: the plain grouped table and the built-in kinds
//! (funnel, forecast, pivot, period comparison), each ending in the same output —
//! columns, rows, totals — that the JSON, CSV and XLSX forms are written from.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{
    Alias, CaseStatement, Expr, ExprTrait, Func, Query, SelectStatement, UnionType,
};
use serde_json::{Map, Value, json};

use crate::auth::users;
use crate::catalog::{Catalog, EntityCatalog};
use crate::clock;
use crate::error::{Error, Result};
use crate::meta::{ComparePeriod, Field, FieldType, GroupBy, MeasureFn, Report, ReportKind};
use crate::report::query::{
    self, Aggregate, Dimension, Measured, Reach, bucket_label, bucket_start,
};
use crate::store::db::{Backend, TenantDb};
use crate::store::schema;
use crate::store::titles;
use crate::store::value;

/// One output column.
#[derive(Debug, Clone)]
pub struct Column {
    pub key: String,
    pub label: String,
    /// A field type (`decimal`, `date`, `select`, …), or `text` for a date bucket,
    /// `number` for an average, `ratio` for a conversion or change (0.25 is 25 %).
    pub value_type: String,
    pub dimension: bool,
    pub bucket: Option<&'static str>,
    /// Display labels of raw values (select options, stages, users, record titles).
    pub labels: BTreeMap<String, String>,
    /// The entity a reference dimension points at (its records' titles label it).
    pub target: Option<String>,
}

impl Column {
    /// How a cell of this column reads for a person.
    pub fn display(&self, value: &Value) -> Value {
        match value {
            Value::Null if self.dimension => json!("（空）"),
            Value::Bool(b) => json!(if *b { "是" } else { "否" }),
            Value::String(raw) => self.labels.get(raw).map_or(value.clone(), |l| json!(l)),
            Value::Number(n) => self
                .labels
                .get(&n.to_string())
                .map_or(value.clone(), |l| json!(l)),
            _ => value.clone(),
        }
    }

    fn to_json(&self) -> Value {
        let mut column = json!({
            "key": self.key, "label": self.label, "type": self.value_type,
            "dimension": self.dimension,
        });
        if let Some(bucket) = self.bucket {
            column["bucket"] = json!(bucket);
        }
        if !self.labels.is_empty() {
            column["labels"] = json!(self.labels);
        }
        column
    }
}

/// A report's result.
#[derive(Debug, Clone)]
pub struct Output {
    pub key: Option<String>,
    pub label: String,
    pub kind: ReportKind,
    pub chart: &'static str,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    /// The measures over every row (dimension cells null).
    pub totals: Option<Vec<Value>>,
    /// The report's limit (or the row cap) cut the rows.
    pub truncated: bool,
    /// What a kind adds: `pivot` (the matrix), `period` (the compared periods).
    pub extra: Map<String, Value>,
}

impl Output {
    /// `{columns, rows, totals, categories, series, …}`: rows hold raw values
    /// (option codes, stage keys, ids), columns carry their display labels; the
    /// series are ready for a chart.
    pub fn to_json(&self) -> Value {
        let (categories, series) = self.series();
        let mut out = json!({
            "key": self.key, "label": self.label, "kind": self.kind.as_str(),
            "chart": self.chart,
            "columns": self.columns.iter().map(Column::to_json).collect::<Vec<_>>(),
            "rows": self.rows, "totals": self.totals, "truncated": self.truncated,
            "categories": categories, "series": series,
        });
        for (key, value) in &self.extra {
            out[key] = value.clone();
        }
        if self.truncated {
            out["notice"] = json!(format!(
                "only the first {} rows are shown: narrow the filter or group by fewer fields to see the rest",
                self.rows.len()
            ));
        }
        out
    }

    fn dimensions(&self) -> usize {
        self.columns.iter().take_while(|c| c.dimension).count()
    }

    fn label_of(&self, row: &[Value], columns: std::ops::Range<usize>) -> String {
        columns
            .map(|c| text(&self.columns[c].display(&row[c])))
            .collect::<Vec<_>>()
            .join(" / ")
    }

    /// Categories and series for a chart. With one dimension (or none) each measure is
    /// a series over the rows; with more, the last dimension's values are the series
    /// of the first measure over the other dimensions' combinations.
    fn series(&self) -> (Vec<String>, Vec<Value>) {
        let dims = self.dimensions();
        let numeric =
            |c: &Column| !c.dimension && c.value_type != "date" && c.value_type != "datetime";
        if dims <= 1 {
            let categories = self
                .rows
                .iter()
                .map(|row| {
                    if dims == 0 {
                        "合计".to_string()
                    } else {
                        self.label_of(row, 0..1)
                    }
                })
                .collect();
            let series = self
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| numeric(c))
                .map(|(i, c)| {
                    let data: Vec<&Value> = self.rows.iter().map(|row| &row[i]).collect();
                    json!({"key": c.key, "name": c.label, "data": data})
                })
                .collect();
            return (categories, series);
        }
        let mut categories: Vec<String> = Vec::new();
        let mut names: Vec<(String, String)> = Vec::new();
        let mut cells: BTreeMap<(usize, usize), Value> = BTreeMap::new();
        for row in &self.rows {
            let category = self.label_of(row, 0..dims - 1);
            let c = position_or_push(&mut categories, category);
            let raw = text(&row[dims - 1]);
            let name = self.label_of(row, dims - 1..dims);
            let s = match names.iter().position(|(r, _)| *r == raw) {
                Some(s) => s,
                None => {
                    names.push((raw, name));
                    names.len() - 1
                }
            };
            cells.insert((s, c), row[dims].clone());
        }
        let series = names
            .iter()
            .enumerate()
            .map(|(s, (raw, name))| {
                let data: Vec<Value> = (0..categories.len())
                    .map(|c| cells.get(&(s, c)).cloned().unwrap_or(Value::Null))
                    .collect();
                json!({"key": raw, "name": name, "measure": self.columns[dims].key, "data": data})
            })
            .collect();
        (categories, series)
    }
}

fn position_or_push(items: &mut Vec<String>, item: String) -> usize {
    match items.iter().position(|i| *i == item) {
        Some(p) => p,
        None => {
            items.push(item);
            items.len() - 1
        }
    }
}

/// A cell as plain text (CSV, chart labels).
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn chart_name(report: &Report) -> &'static str {
    use crate::meta::Chart;
    match report.chart {
        Some(Chart::Table) | None if report.kind == Some(ReportKind::Funnel) => "funnel",
        Some(Chart::Table) | None => "table",
        Some(Chart::Bar) => "bar",
        Some(Chart::Line) => "line",
        Some(Chart::Pie) => "pie",
        Some(Chart::Funnel) => "funnel",
    }
}

/// Runs `report` over the rows `reach` allows.
pub async fn run(
    db: &TenantDb,
    catalog: &Catalog,
    entity: &EntityCatalog,
    report: &Report,
    reach: &Reach<'_>,
) -> Result<Output> {
    let kind = report.kind.unwrap_or(ReportKind::Table);
    let mut output = match kind {
        ReportKind::Funnel => funnel(db, catalog, entity, report, reach).await?,
        ReportKind::Comparison => comparison(db, catalog, entity, report, reach).await?,
        ReportKind::Table | ReportKind::Forecast | ReportKind::Pivot => {
            let mut aggregate = Aggregate::compile(db, catalog, entity, report, reach)?;
            if kind == ReportKind::Forecast {
                weigh(&mut aggregate, entity)?;
            }
            let all: Vec<usize> = (0..aggregate.dimensions.len()).collect();
            let (rows, truncated) = aggregate.fetch(&all).await?;
            let totals = match all.is_empty() {
                true => None,
                false => totals(&aggregate, &rows, truncated).await?,
            };
            let mut extra = Map::new();
            if kind == ReportKind::Pivot {
                extra.insert("pivot".into(), pivot(&aggregate, &rows, truncated).await?);
            }
            Output {
                key: None,
                label: String::new(),
                kind,
                chart: "table",
                columns: columns(&aggregate),
                rows,
                totals,
                truncated,
                extra,
            }
        }
    };
    output.key = Some(report.key.clone()).filter(|k| !k.is_empty());
    output.label = report.label.clone().unwrap_or_else(|| report.key.clone());
    output.chart = chart_name(report);
    label(db, catalog, reach, &mut output).await?;
    Ok(output)
}

/// The measures over all rows (dimension cells null).
async fn totals(
    aggregate: &Aggregate<'_>,
    rows: &[Vec<Value>],
    truncated: bool,
) -> Result<Option<Vec<Value>>> {
    let dims = aggregate.dimensions.len();
    Ok(regroup(aggregate, rows, truncated, &[])
        .await?
        .pop()
        .map(|measures| {
            let mut row = vec![Value::Null; dims];
            row.extend(measures);
            row
        }))
}

/// The measures regrouped by the dimensions at `subset` (rows of those dimensions'
/// values, then the measures, in the report's order). Counts, sums, minima and
/// maxima of a complete result fold from its rows — no second scan; averages and
/// distinct counts, or a cut result, take their own statement.
async fn regroup(
    aggregate: &Aggregate<'_>,
    rows: &[Vec<Value>],
    truncated: bool,
    subset: &[usize],
) -> Result<Vec<Vec<Value>>> {
    let foldable = !truncated
        && aggregate.measures.iter().all(|m| {
            matches!(
                m.function,
                MeasureFn::Count | MeasureFn::Sum | MeasureFn::Min | MeasureFn::Max
            )
        });
    if !foldable {
        return Ok(aggregate.fetch(subset).await?.0);
    }
    let dims = aggregate.dimensions.len();
    let mut groups: Vec<(Vec<Value>, Vec<&Vec<Value>>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    if subset.is_empty() {
        groups.push((Vec::new(), Vec::new()));
        index.insert("[]".into(), 0);
    }
    for row in rows {
        let key: Vec<Value> = subset.iter().map(|&d| row[d].clone()).collect();
        let text = serde_json::to_string(&key).expect("values serialize");
        let at = *index.entry(text).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[at].1.push(row);
    }
    let dimensions: Vec<&Dimension> = subset.iter().map(|&d| &aggregate.dimensions[d]).collect();
    groups.sort_by(|(a, _), (b, _)| {
        dimensions
            .iter()
            .zip(a.iter().zip(b))
            .map(|(dimension, (x, y))| dimension_order(dimension, x, y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(groups
        .into_iter()
        .map(|(mut key, members)| {
            for (m, measure) in aggregate.measures.iter().enumerate() {
                key.push(fold(measure.function, members.iter().map(|r| &r[dims + m])));
            }
            key
        })
        .collect())
}

/// The order the SQL sorts a dimension in: options in their listed order, numbers as
/// numbers, text as text; empty values last.
fn dimension_order(dimension: &Dimension, a: &Value, b: &Value) -> std::cmp::Ordering {
    let options = &dimension.field.options;
    let rank = |v: &Value| match v {
        Value::Null => (2, 0.0, String::new()),
        Value::Number(n) => (0, n.as_f64().unwrap_or_default(), String::new()),
        Value::String(s) if !options.is_empty() && dimension.bucket.is_none() => {
            let position = options
                .iter()
                .position(|o| o.value == *s)
                .unwrap_or(options.len());
            (0, position as f64, String::new())
        }
        other => (1, 0.0, text(other)),
    };
    let (x, y) = (rank(a), rank(b));
    x.0.cmp(&y.0)
        .then(x.1.total_cmp(&y.1))
        .then_with(|| x.2.cmp(&y.2))
}

/// One measure over the values of its groups: counts and sums add up (exactly, as
/// decimals), minima and maxima compare numbers as numbers and dates as text.
fn fold<'v>(function: MeasureFn, values: impl Iterator<Item = &'v Value>) -> Value {
    let number = |v: &Value| {
        v.as_number()
            .and_then(|n| n.to_string().parse::<Decimal>().ok())
    };
    let values: Vec<&Value> = values.filter(|v| !v.is_null()).collect();
    match function {
        MeasureFn::Count | MeasureFn::Sum => {
            query::decimal(values.iter().filter_map(|v| number(v)).sum())
        }
        MeasureFn::Min | MeasureFn::Max => {
            let ordered = values.iter().copied().reduce(|a, b| {
                let a_first = match (number(a), number(b)) {
                    (Some(x), Some(y)) => x <= y,
                    _ => text(a) <= text(b),
                };
                if a_first == (function == MeasureFn::Min) {
                    a
                } else {
                    b
                }
            });
            ordered.cloned().unwrap_or(Value::Null)
        }
        MeasureFn::CountDistinct | MeasureFn::Avg => Value::Null,
    }
}

/// A forecast: each sum measure also weighted by its rows' stage probability.
fn weigh(aggregate: &mut Aggregate<'_>, entity: &EntityCatalog) -> Result<()> {
    let pipeline = entity
        .def
        .pipeline
        .as_ref()
        .ok_or_else(|| Error::BadRequest("kind: a forecast needs a pipeline".into()))?;
    let probabilities: Vec<(String, u32)> = pipeline
        .stages
        .iter()
        .map(|s| (s.key.clone(), s.probability.unwrap_or(0)))
        .collect();
    let sums: Vec<usize> = (0..aggregate.measures.len())
        .filter(|&m| aggregate.measures[m].function == MeasureFn::Sum)
        .collect();
    for m in sums {
        aggregate.add_weighted(m, &probabilities);
    }
    Ok(())
}

fn columns(aggregate: &Aggregate<'_>) -> Vec<Column> {
    let mut columns: Vec<Column> = aggregate.dimensions.iter().map(dimension_column).collect();
    columns.extend(aggregate.measures.iter().map(measure_column));
    columns
}

fn dimension_column(dimension: &Dimension) -> Column {
    let bucket = dimension.bucket.map(|b| b.as_str());
    let field = &dimension.field;
    let labels = field
        .options
        .iter()
        .filter_map(|o| Some((o.value.clone(), o.label.clone()?)))
        .collect();
    Column {
        key: dimension.key.clone(),
        label: field
            .label
            .clone()
            .unwrap_or_else(|| default_label(&dimension.key)),
        value_type: match bucket {
            Some(_) => "text".into(),
            None => field.field_type.as_str().into(),
        },
        dimension: true,
        bucket,
        labels,
        target: field
            .target
            .clone()
            .filter(|_| field.field_type == FieldType::Reference),
    }
}

/// Labels for system columns people see in reports.
fn default_label(key: &str) -> String {
    match key {
        schema::OWNER => "负责人".into(),
        schema::CREATED_BY => "创建人".into(),
        schema::CREATED_AT => "创建时间".into(),
        schema::UPDATED_AT => "更新时间".into(),
        schema::STAGE => "阶段".into(),
        other => other.to_string(),
    }
}

fn measure_column(measure: &Measured) -> Column {
    let field_label = measure.field.as_ref().map(field_name).unwrap_or_default();
    let label = measure
        .label
        .clone()
        .unwrap_or_else(|| match measure.function {
            MeasureFn::Count => "数量".into(),
            MeasureFn::CountDistinct => format!("{field_label}（去重计数）"),
            MeasureFn::Sum => format!("{field_label}合计"),
            MeasureFn::Avg => format!("{field_label}平均"),
            MeasureFn::Min => format!("{field_label}最小"),
            MeasureFn::Max => format!("{field_label}最大"),
        });
    let field_type = measure.field.as_ref().map(|f| f.field_type.as_str());
    let value_type = match measure.function {
        MeasureFn::Count | MeasureFn::CountDistinct => "integer",
        MeasureFn::Avg => "number",
        MeasureFn::Sum if measure.weighted => "decimal",
        _ => field_type.unwrap_or("integer"),
    };
    Column {
        key: measure.key.clone(),
        label: if measure.weighted {
            format!("{label}（加权）")
        } else {
            label
        },
        value_type: value_type.into(),
        dimension: false,
        bucket: None,
        labels: BTreeMap::new(),
        target: None,
    }
}

fn field_name(field: &Field) -> String {
    field
        .label
        .clone()
        .unwrap_or_else(|| default_label(&field.key))
}

fn plain_column(key: &str, label: &str, value_type: &str) -> Column {
    Column {
        key: key.into(),
        label: label.into(),
        value_type: value_type.into(),
        dimension: false,
        bucket: None,
        labels: BTreeMap::new(),
        target: None,
    }
}

/// A two-dimensional view of the first measure: the last dimension across, the
/// others down, with row, column and grand totals from their own grouped queries
/// (so averages and distinct counts total correctly).
async fn pivot(aggregate: &Aggregate<'_>, rows: &[Vec<Value>], truncated: bool) -> Result<Value> {
    let dims = aggregate.dimensions.len();
    let down: Vec<usize> = (0..dims - 1).collect();
    let row_totals = regroup(aggregate, rows, truncated, &down).await?;
    let column_totals = regroup(aggregate, rows, truncated, &[dims - 1]).await?;
    let grand = regroup(aggregate, rows, truncated, &[]).await?;
    let row_keys: Vec<Vec<Value>> = row_totals.iter().map(|r| r[..dims - 1].to_vec()).collect();
    let column_keys: Vec<Value> = column_totals.iter().map(|r| r[0].clone()).collect();
    let mut cells = vec![vec![Value::Null; column_keys.len()]; row_keys.len()];
    for row in rows {
        let r = row_keys.iter().position(|k| k[..] == row[..dims - 1]);
        let c = column_keys.iter().position(|k| *k == row[dims - 1]);
        if let (Some(r), Some(c)) = (r, c) {
            cells[r][c] = row[dims].clone();
        }
    }
    Ok(json!({
        "measure": aggregate.measures[0].key,
        "row_keys": row_keys,
        "column_keys": column_keys,
        "cells": cells,
        "row_totals": row_totals.iter().map(|r| r[dims - 1].clone()).collect::<Vec<_>>(),
        "column_totals": column_totals.iter().map(|r| r[1].clone()).collect::<Vec<_>>(),
        "total": grand.first().map(|r| r[0].clone()),
    }))
}

/// A funnel over the pipeline: every stage in order with its records and measures,
/// how many records reached it (or a later stage), the conversion from the stage
/// before, and the average days records spent in it — the last two from the stage
/// history.
async fn funnel(
    db: &TenantDb,
    catalog: &Catalog,
    entity: &EntityCatalog,
    report: &Report,
    reach: &Reach<'_>,
) -> Result<Output> {
    let pipeline = entity
        .def
        .pipeline
        .as_ref()
        .ok_or_else(|| Error::BadRequest("kind: a funnel needs a pipeline".into()))?;
    let mut by_stage = report.clone();
    by_stage.group_by = vec![GroupBy {
        field: schema::STAGE.into(),
        bucket: None,
    }];
    by_stage.sort.clear();
    by_stage.limit = None;
    let aggregate = Aggregate::compile(db, catalog, entity, &by_stage, reach)?;
    let (rows, _) = aggregate.fetch(&[0]).await?;
    let measures = aggregate.measures.len();
    let open: Vec<&str> = pipeline
        .stages
        .iter()
        .filter(|s| !s.lost)
        .map(|s| s.key.as_str())
        .collect();
    let furthest = furthest_stages(db, &aggregate, &entity.def.key, &open).await?;
    let days = days_in_stage(db, &aggregate, &entity.def.key).await?;
    let mut out_rows = Vec::new();
    let mut previous_reached: Option<i64> = None;
    for stage in &pipeline.stages {
        let row = rows.iter().find(|r| r[0] == json!(stage.key));
        let mut out = vec![json!(stage.key)];
        match row {
            Some(row) => out.extend(row[1..].iter().cloned()),
            None => out.extend((0..measures).map(|m| zero(&aggregate.measures[m]))),
        }
        let (reached, conversion) = match open.iter().position(|s| *s == stage.key) {
            Some(position) => {
                let reached: i64 = furthest
                    .iter()
                    .filter(|(p, _)| *p >= position as i64)
                    .map(|(_, n)| n)
                    .sum();
                let conversion = previous_reached
                    .filter(|p| *p > 0)
                    .map(|p| json!(ratio(reached as f64 / p as f64)));
                previous_reached = Some(reached);
                (reached, conversion.unwrap_or(Value::Null))
            }
            // A lost stage: the records in it now.
            None => (row.and_then(|r| r[1].as_i64()).unwrap_or(0), Value::Null),
        };
        out.push(json!(reached));
        out.push(conversion);
        out.push(days.get(&stage.key).map_or(Value::Null, |d| json!(d)));
        out_rows.push(out);
    }
    let mut columns = columns(&aggregate);
    columns.push(plain_column("reached", "到达数", "integer"));
    columns.push(plain_column("conversion", "转化率", "ratio"));
    columns.push(plain_column("avg_days", "平均停留天数", "number"));
    let totals = totals(&aggregate, &rows, false).await?.map(|mut row| {
        row.extend([Value::Null, Value::Null, Value::Null]);
        row
    });
    Ok(Output {
        key: None,
        label: String::new(),
        kind: ReportKind::Funnel,
        chart: "funnel",
        columns,
        rows: out_rows,
        totals,
        truncated: false,
        extra: Map::new(),
    })
}

fn zero(measure: &Measured) -> Value {
    match measure.function {
        MeasureFn::Count | MeasureFn::CountDistinct | MeasureFn::Sum => json!(0),
        _ => Value::Null,
    }
}

fn ratio(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

fn stage_history(db: &TenantDb) -> sea_orm::sea_query::TableName {
    db.table("stage_history")
}

/// For each furthest open stage (its position), how many records got that far: the
/// furthest of a record's current stage and every stage its history entered.
async fn furthest_stages(
    db: &TenantDb,
    aggregate: &Aggregate<'_>,
    entity: &str,
    open: &[&str],
) -> Result<Vec<(i64, i64)>> {
    let mut visited = Query::select();
    visited
        .expr_as(Expr::col(Alias::new("record_id")), Alias::new("rid"))
        .column(Alias::new("stage"))
        .from(stage_history(db))
        .and_where(Expr::col(Alias::new("entity")).eq(entity))
        .and_where(Expr::col(Alias::new("record_id")).in_subquery(aggregate.ids()));
    visited.union(UnionType::All, aggregate.id_and_stage());
    let position = open
        .iter()
        .enumerate()
        .fold(CaseStatement::new(), |case, (p, stage)| {
            case.case(Expr::col(Alias::new("stage")).eq(*stage), p as i64)
        })
        .finally(Expr::null());
    let mut per_record = Query::select();
    per_record
        .column(Alias::new("rid"))
        .expr_as(
            Func::max(Into::<Expr>::into(position)),
            Alias::new("furthest"),
        )
        .from_subquery(visited, Alias::new("visited"))
        .group_by_col(Alias::new("rid"));
    let mut counts = Query::select();
    counts
        .column(Alias::new("furthest"))
        .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
        .from_subquery(per_record, Alias::new("per_record"))
        .and_where(Expr::col(Alias::new("furthest")).is_not_null())
        .add_group_by([Expr::cust("1")]);
    db.conn()
        .query_all(&counts)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<i64>("", "furthest")?,
                row.try_get::<i64>("", "n")?,
            ))
        })
        .collect()
}

/// Average days spent per stage by the report's records (the current stage counts
/// until now).
async fn days_in_stage(
    db: &TenantDb,
    aggregate: &Aggregate<'_>,
    entity: &str,
) -> Result<BTreeMap<String, f64>> {
    let now = clock::now();
    let seconds = match db.backend() {
        Backend::Sqlite => Expr::cust_with_values(
            "(julianday(COALESCE(left_at, ?)) - julianday(entered_at)) * 86400.0",
            [value::format_datetime(now)],
        ),
        Backend::Postgres => Expr::cust_with_values(
            "EXTRACT(EPOCH FROM (COALESCE(left_at, $1) - entered_at))",
            [now],
        ),
    };
    let mut select: SelectStatement = Query::select();
    select
        .column(Alias::new("stage"))
        .expr_as(
            Func::cast_as(Func::avg(seconds), Alias::new("DOUBLE PRECISION")),
            Alias::new("seconds"),
        )
        .from(stage_history(db))
        .and_where(Expr::col(Alias::new("entity")).eq(entity))
        .and_where(Expr::col(Alias::new("record_id")).in_subquery(aggregate.ids()))
        .add_group_by([Expr::cust("1")]);
    let mut days = BTreeMap::new();
    for row in db.conn().query_all(&select).await? {
        if let Some(seconds) = row.try_get::<Option<f64>>("", "seconds")? {
            days.insert(
                row.try_get::<String>("", "stage")?,
                (seconds / 86_400.0 * 10.0).round() / 10.0,
            );
        }
    }
    Ok(days)
}

/// This period against the one before (month, quarter or year, by `compare`): the
/// first dimension is a bucketed date; a bucket of the previous period is set beside
/// the bucket one period later, with the change between them.
async fn comparison(
    db: &TenantDb,
    catalog: &Catalog,
    entity: &EntityCatalog,
    report: &Report,
    reach: &Reach<'_>,
) -> Result<Output> {
    let mut aggregate = Aggregate::compile(db, catalog, entity, report, reach)?;
    let bad = |message: &str| Error::BadRequest(format!("group_by[0]: {message}"));
    let first = aggregate
        .dimensions
        .first()
        .ok_or_else(|| bad("a comparison groups first by a bucketed date"))?;
    let bucket = first
        .bucket
        .ok_or_else(|| bad("a comparison groups first by a bucketed date"))?;
    if first.key.contains('.') {
        return Err(bad(
            "the compared date must be a field of the report's entity",
        ));
    }
    let date_field = first.field.clone();
    let period = report.compare.unwrap_or(ComparePeriod::Year);
    let months = period.months();
    let today = clock::today();
    let current = period_start(today, period);
    let previous = current - Months::new(months);
    let next = current + Months::new(months);
    let bound = |date: NaiveDate| -> sea_orm::sea_query::Value {
        match date_field.field_type {
            FieldType::Datetime => clock::start_of_day(date).into(),
            _ => date.into(),
        }
    };
    let column = aggregate.source_column(0);
    aggregate.restrict(
        sea_orm::sea_query::Condition::all()
            .add(column.clone().gte(bound(previous)))
            .add(column.lt(bound(next))),
    );
    let dims = aggregate.dimensions.len();
    let all: Vec<usize> = (0..dims).collect();
    let (rows, truncated) = aggregate.fetch(&all).await?;
    let measures = aggregate.measures.len();
    // Keyed by the dimensions as they read in the current period.
    let mut merged: BTreeMap<String, Compared> = BTreeMap::new();
    for row in rows {
        let label = text(&row[0]);
        let Some(start) = bucket_start(&label, bucket) else {
            continue;
        };
        let is_current = start >= current;
        let mut key_values = row[..dims].to_vec();
        if !is_current {
            key_values[0] = json!(bucket_label(start + Months::new(months), bucket));
        }
        let key = serde_json::to_string(&key_values).expect("values serialize");
        let entry = merged.entry(key).or_insert_with(|| {
            (
                key_values,
                vec![Value::Null; measures],
                vec![Value::Null; measures],
            )
        });
        let target = if is_current {
            &mut entry.1
        } else {
            &mut entry.2
        };
        target.clone_from_slice(&row[dims..]);
    }
    let mut out_rows = Vec::with_capacity(merged.len());
    for (_, (mut keys, now, before)) in merged {
        for m in 0..measures {
            let change = match (now[m].as_f64(), before[m].as_f64()) {
                (Some(a), Some(b)) if b != 0.0 => json!(ratio((a - b) / b)),
                _ => Value::Null,
            };
            keys.extend([now[m].clone(), before[m].clone(), change]);
        }
        out_rows.push(keys);
    }
    let mut columns: Vec<Column> = aggregate.dimensions.iter().map(dimension_column).collect();
    for measure in &aggregate.measures {
        let column = measure_column(measure);
        let mut previous_column = column.clone();
        previous_column.key = format!("previous:{}", column.key);
        previous_column.label = format!("{}（上期）", column.label);
        let change = plain_column(
            &format!("change:{}", column.key),
            &format!("{}变化", column.label),
            "ratio",
        );
        columns.extend([column, previous_column, change]);
    }
    let mut extra = Map::new();
    let last_day = |date: NaiveDate| date.pred_opt().expect("a day before").to_string();
    extra.insert(
        "period".into(),
        json!({
            "compare": period.as_str(),
            "current": [current.to_string(), last_day(next)],
            "previous": [previous.to_string(), last_day(current)],
        }),
    );
    Ok(Output {
        key: None,
        label: String::new(),
        kind: ReportKind::Comparison,
        chart: "table",
        columns,
        rows: out_rows,
        totals: None,
        truncated,
        extra,
    })
}

/// A comparison row: its dimension values, this period's measures, the last's.
type Compared = (Vec<Value>, Vec<Value>, Vec<Value>);

fn period_start(today: NaiveDate, period: ComparePeriod) -> NaiveDate {
    let month = match period {
        ComparePeriod::Month => today.month(),
        ComparePeriod::Quarter => (today.month() - 1) / 3 * 3 + 1,
        ComparePeriod::Year => 1,
    };
    NaiveDate::from_ymd_opt(today.year(), month, 1).expect("valid first of month")
}

/// Fills the display labels of user and reference dimensions: users' names, and the
/// titles of referenced records the caller may read (others stay `#id`).
async fn label(
    db: &TenantDb,
    catalog: &Catalog,
    reach: &Reach<'_>,
    output: &mut Output,
) -> Result<()> {
    let mut people: Option<BTreeMap<String, String>> = None;
    for c in 0..output.columns.len() {
        let column = &output.columns[c];
        if !column.dimension {
            continue;
        }
        let ids: BTreeSet<i64> = output.rows.iter().filter_map(|r| r[c].as_i64()).collect();
        match column.value_type.as_str() {
            "user" => {
                if people.is_none() {
                    let all = users::list(db).await?;
                    people = Some(
                        all.into_iter()
                            .map(|u| (u.id.to_string(), u.display_name))
                            .collect(),
                    );
                }
                let names = people.as_ref().expect("loaded above");
                output.columns[c].labels = ids
                    .iter()
                    .filter_map(|id| Some((id.to_string(), names.get(&id.to_string())?.clone())))
                    .collect();
            }
            "reference" => {
                let Some(target) = column.target.as_deref().and_then(|t| catalog.entity(t)) else {
                    continue;
                };
                let Some(access) = reach.targets.get(&target.def.key) else {
                    continue;
                };
                output.columns[c].labels = titles::titles(db, target, access, &ids).await?;
            }
            _ => {}
        }
    }
    Ok(())
}
