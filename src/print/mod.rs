//! Printed documents (打印报价单): an entity's print formats rendered over one record,
//! its child records (quote lines of a quote) and the company's branding into
//! print-ready A4 HTML. Templates are the admin's minijinja, run sandboxed: no loader
//! (nothing can be included or read from disk), HTML auto-escaping, and fuel that
//! stops a runaway loop. Values read as a person reads them; `money` and `rmb_upper`
//! (大写) format amounts.

pub mod amount;

use std::collections::BTreeMap;

use base64::Engine;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, ErrorKind, Value as TemplateValue};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::auth::Context;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::meta::{Action, Field, FieldType};
use crate::store::files::FileStore;
use crate::store::records::{QueryRequest, Records, SortSpec};
use crate::store::schema;
use crate::web::display::Display;
use crate::web::i18n::Lang;

/// Instructions one document may take: a quote of a few hundred lines uses a small
/// part of it; an endless loop runs out.
const FUEL: u64 = 2_000_000;

/// What the page's print button runs: the only script its CSP allows.
pub const PRINT_HANDLER: &str = "window.print()";

/// The built-in print format every entity has.
pub const DEFAULT: &str = "default";

const SHELL: &str = include_str!("shell.html");
const DEFAULT_BODY: &str = include_str!("default.html");

/// Most child records one document lists per child entity.
const MAX_CHILD_ROWS: u64 = 1000;

fn environment() -> Environment<'static> {
    let mut env = crate::meta::template::environment(FUEL);
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_filter("money", money);
    env.add_filter("rmb_upper", rmb_upper);
    env
}

fn decimal_of(value: &TemplateValue) -> std::result::Result<Decimal, minijinja::Error> {
    let text = value.to_string().replace(',', "");
    text.trim().parse::<Decimal>().map_err(|_| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("{value} is not an amount"),
        )
    })
}

/// `1234.5|money` → `1,234.50`; empty stays empty.
fn money(value: TemplateValue) -> std::result::Result<String, minijinja::Error> {
    if value.is_undefined() || value.is_none() || value.to_string().is_empty() {
        return Ok(String::new());
    }
    let amount = decimal_of(&value)?.round_dp(2);
    let text = format!("{:.2}", amount.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if amount.is_sign_negative() && !amount.is_zero() {
        "-"
    } else {
        ""
    };
    Ok(format!("{sign}{grouped}.{fraction}"))
}

/// `1234.5|rmb_upper` → `壹仟贰佰叁拾肆元伍角整`.
fn rmb_upper(value: TemplateValue) -> std::result::Result<String, minijinja::Error> {
    if value.is_undefined() || value.is_none() || value.to_string().is_empty() {
        return Ok(String::new());
    }
    amount::rmb_upper(decimal_of(&value)?).ok_or_else(|| {
        minijinja::Error::new(ErrorKind::InvalidOperation, "the amount is too large")
    })
}

/// Whether a print template compiles (checked when the package is applied).
pub fn check(template: &str) -> std::result::Result<(), String> {
    crate::meta::template::check(&environment(), template)
}

fn is_number(field: &Field) -> bool {
    matches!(field.field_type, FieldType::Integer | FieldType::Decimal)
}

/// The document `print_key` of record `id`, as HTML, for a caller who may read it.
pub async fn render(
    ctx: &Context,
    catalog: &Catalog,
    files: &FileStore,
    entity_key: &str,
    id: i64,
    print_key: &str,
) -> Result<String> {
    let entity = ctx.entity(catalog, entity_key)?;
    let (body, landscape) = match entity.def.prints.iter().find(|p| p.key == print_key) {
        Some(print) => (print.template.as_str(), print.landscape),
        None if print_key == DEFAULT => (DEFAULT_BODY, false),
        None => {
            return Err(Error::not_found(format!(
                "print format {print_key:?} of {entity_key}"
            )));
        }
    };
    let access = ctx.authorize(entity, Action::Read).await?;
    let record = Records::new(&ctx.tenant.db, catalog, entity)
        .get(id, &access)
        .await?;
    let fields: Vec<&Field> = entity
        .def
        .fields
        .iter()
        .filter(|f| !access.hidden_fields.contains(&f.key))
        .collect();
    let display = Display::load(ctx, catalog, Lang::Zh, &fields, &[&record]).await?;
    let shown: Vec<Value> = fields
        .iter()
        .map(|f| {
            json!({"key": f.key, "label": f.label(), "number": is_number(f),
                        "text": display.cell(f, record.get(&f.key))["text"]})
        })
        .collect();
    let mut values: Map<String, Value> = shown
        .iter()
        .map(|f| {
            (
                f["key"].as_str().unwrap_or_default().to_string(),
                f["text"].clone(),
            )
        })
        .collect();
    let system = display.system(entity, &record);
    values.insert(schema::ID.into(), record[schema::ID].clone());
    values.insert(schema::OWNER.into(), system["owner"].clone());
    values.insert(schema::STAGE.into(), system["stage"].clone());

    let context = json!({
        "entity": {"key": entity.def.key, "label": entity.def.label()},
        "title": entity.title_of(&record),
        "record": values,
        "raw": record,
        "fields": shown,
        "children": children(ctx, catalog, entity_key, id).await?,
        "company": company(ctx, catalog, files).await,
        "printed_by": ctx.user.display_name,
        "today": crate::clock::today().format("%Y-%m-%d").to_string(),
    });
    let env = environment();
    let failed = |e: String| {
        Error::BadRequest(format!(
            "print format {print_key:?} of {entity_key} failed: {e}"
        ))
    };
    let body = crate::meta::template::render(&env, body, TemplateValue::from(Serde(&context)))
        .map_err(failed)?;
    let mut page = context;
    page["document_title"] = json!(format!(
        "{} {}",
        entity.def.label(),
        entity.title_of(&record)
    ));
    page["landscape"] = json!(landscape);
    let page = minijinja::context! {
        body => TemplateValue::from_safe_string(body),
        ..TemplateValue::from(Serde(&page))
    };
    env.render_str(SHELL, page)
        .map_err(|e| failed(e.to_string()))
}

/// Records of other entities that point at this one (quote lines of a quote), per
/// child entity the caller may read, with totals of their number fields.
async fn children(ctx: &Context, catalog: &Catalog, entity_key: &str, id: i64) -> Result<Value> {
    let mut children = Map::new();
    for child in catalog.entities() {
        let Some(link) = child.def.fields.iter().find(|f| {
            f.field_type == FieldType::Reference && f.target.as_deref() == Some(entity_key)
        }) else {
            continue;
        };
        let Ok(access) = ctx.authorize(child, Action::Read).await else {
            continue;
        };
        let page = Records::new(&ctx.tenant.db, catalog, child)
            .query(
                &QueryRequest {
                    filter: Some(json!({"field": link.key, "op": "eq", "value": id})),
                    sort: vec![SortSpec::Key(schema::ID.into())],
                    limit: Some(MAX_CHILD_ROWS),
                    after: None,
                },
                &access,
            )
            .await?;
        let fields: Vec<&Field> = child
            .def
            .fields
            .iter()
            .filter(|f| f.key != link.key && !access.hidden_fields.contains(&f.key))
            .collect();
        let rows: Vec<&Value> = page.items.iter().collect();
        let display = Display::load(ctx, catalog, Lang::Zh, &fields, &rows).await?;
        let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
        let shown: Vec<Value> = page
            .items
            .iter()
            .map(|row| {
                let mut line = Map::new();
                for field in &fields {
                    if is_number(field)
                        && let Some(n) = row
                            .get(&field.key)
                            .and_then(|v| v.to_string().parse::<Decimal>().ok())
                    {
                        *totals.entry(field.key.clone()).or_default() += n;
                    }
                    line.insert(
                        field.key.clone(),
                        display.cell(field, row.get(&field.key))["text"].clone(),
                    );
                }
                line.insert(schema::ID.into(), row[schema::ID].clone());
                Value::Object(line)
            })
            .collect();
        children.insert(
            child.def.key.clone(),
            json!({
                "label": child.def.label(),
                "fields": fields.iter().map(|f| json!({"key": f.key, "label": f.label(), "number": is_number(f)})).collect::<Vec<_>>(),
                "rows": shown,
                "totals": totals.iter().map(|(k, v)| (k.clone(), json!(v.to_string()))).collect::<Map<_, _>>(),
            }),
        );
    }
    Ok(Value::Object(children))
}

/// The letterhead: the package's branding, the logo inlined as a data URL (the page
/// loads nothing from elsewhere).
async fn company(ctx: &Context, catalog: &Catalog, files: &FileStore) -> Value {
    let branding = catalog.package.branding.clone().unwrap_or_default();
    let mut company = serde_json::to_value(&branding).unwrap_or_else(|_| json!({}));
    company["name"] = json!(
        branding
            .company
            .clone()
            .unwrap_or_else(|| ctx.tenant.key.clone())
    );
    if let Some(logo) = &branding.logo
        && let Ok(bytes) = files.read(logo).await
        && let Some(kind) = infer::get(&bytes).filter(|k| k.mime_type().starts_with("image/"))
    {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        company["logo_src"] = json!(format!("data:{};base64,{encoded}", kind.mime_type()));
    }
    company
}
