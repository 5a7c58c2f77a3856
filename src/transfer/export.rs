//! Exporting a filtered list (导出): the records the caller's `export` right reaches,
//! without the fields masked from them, as CSV or XLSX. Cells read as a person reads
//! them — option labels, names, record titles, 是/否 — under the fields' labels, so a
//! file exported here imports back (`upsert_on=id` updates the same records). The
//! files are written by the report writers (`report::export`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::auth::Context;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::meta::{Action, Field, FieldType, ReportKind};
use crate::report::export as writers;
use crate::report::run::{Column, Output};
use crate::store::records::{QueryRequest, Records, SortSpec};
use crate::store::schema;
use crate::web::display::Display;
use crate::web::i18n::Lang;

/// Most rows one export over HTTP writes (files are built in memory);
/// `metacrm export` has no cap.
pub const MAX_HTTP_ROWS: u64 = 100_000;

const PAGE: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(text: &str) -> Result<Format> {
        match text {
            "csv" => Ok(Format::Csv),
            "xlsx" => Ok(Format::Xlsx),
            other => Err(Error::BadRequest(format!(
                "format must be csv or xlsx, not {other:?}"
            ))),
        }
    }
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub filter: Option<Value>,
    pub sort: Vec<SortSpec>,
    pub format: Format,
    /// Refuse (rather than cut) a list longer than this.
    pub max_rows: Option<u64>,
}

/// The file, and how many records it holds.
pub struct Exported {
    pub bytes: Vec<u8>,
    pub rows: u64,
    pub file_name: String,
}

pub async fn export(
    ctx: &Context,
    catalog: &Catalog,
    entity_key: &str,
    request: &ExportRequest,
) -> Result<Exported> {
    let entity = ctx.entity(catalog, entity_key)?;
    let access = ctx.authorize(entity, Action::Export).await?;
    let records = Records::new(&ctx.tenant.db, catalog, entity);
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let page = records
            .query(
                &QueryRequest {
                    filter: request.filter.clone(),
                    sort: request.sort.clone(),
                    limit: Some(PAGE),
                    after,
                },
                &access,
            )
            .await?;
        items.extend(page.items);
        if let Some(max) = request.max_rows
            && items.len() as u64 > max
        {
            return Err(Error::BadRequest(format!(
                "the list has more than {max} records; narrow the filter, or export with `metacrm export`"
            )));
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let fields: Vec<&Field> = entity
        .def
        .fields
        .iter()
        .filter(|f| !access.hidden_fields.contains(&f.key))
        .collect();
    let records_shown: Vec<&Value> = items.iter().collect();
    let display = Display::load(ctx, catalog, Lang::Zh, &fields, &records_shown).await?;

    let column = |key: &str, label: String, value_type: &str| Column {
        key: key.to_string(),
        label,
        value_type: value_type.to_string(),
        dimension: false,
        bucket: None,
        labels: BTreeMap::new(),
        target: None,
    };
    let mut columns = vec![column(schema::ID, "id".into(), "integer")];
    columns.extend(fields.iter().map(|f| {
        column(
            &f.key,
            display.label(f).into_owned(),
            value_type(f.field_type),
        )
    }));
    let system: Vec<&str> = [schema::OWNER]
        .into_iter()
        .chain(entity.has_pipeline().then_some(schema::STAGE))
        .chain([schema::CREATED_AT, schema::UPDATED_AT])
        .collect();
    columns.extend(system.iter().map(|key| {
        column(
            key,
            crate::web::i18n::text(Lang::Zh, key).to_string(),
            "text",
        )
    }));

    let rows = items
        .iter()
        .map(|record| {
            let shown = display.system(entity, record);
            let mut row = vec![record[schema::ID].clone()];
            row.extend(fields.iter().map(|f| cell(&display, f, record.get(&f.key))));
            row.extend(system.iter().map(|key| shown[*key].clone()));
            row
        })
        .collect();
    let output = Output {
        key: Some(entity_key.to_string()),
        label: entity.def.label().to_string(),
        kind: ReportKind::Table,
        chart: "table",
        columns,
        rows,
        totals: None,
        truncated: false,
        extra: Default::default(),
    };
    let bytes = match request.format {
        Format::Csv => writers::csv(&output)?,
        Format::Xlsx => writers::xlsx(&output)?,
    };
    Ok(Exported {
        bytes,
        rows: items.len() as u64,
        file_name: format!("{entity_key}.{}", request.format.extension()),
    })
}

/// How the writers type a field's cells: numbers stay numbers, dates become dates,
/// everything else is the text a person reads.
fn value_type(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::Integer => "integer",
        FieldType::Decimal => "decimal",
        FieldType::Date => "date",
        _ => "text",
    }
}

fn cell(display: &Display, field: &Field, value: Option<&Value>) -> Value {
    match (field.field_type, value) {
        (_, None | Some(Value::Null)) => Value::Null,
        (FieldType::Integer | FieldType::Decimal | FieldType::Date, Some(value)) => value.clone(),
        // Titles export as written; an unreadable reference stays `#id`, which imports back.
        _ => display.cell(field, value)["text"].clone(),
    }
}
