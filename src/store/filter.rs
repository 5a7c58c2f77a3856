//! The filter tree (`{"and": [...]}`, `{"field", "op", "value"}`, …) as a SQL condition.
//!
//! Every value is converted by the field's own conversion (`store::value`), so a filter
//! compares exactly what a write stores. Problems are reported with their path inside
//! the filter (`filter.and[1].op`).

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate};
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Func, LikeExpr, SimpleExpr};
use serde_json::{Value, json};

use crate::auth::Access;
use crate::catalog::EntityCatalog;
use crate::clock;
use crate::error::{Error, Result};
use crate::meta::{Field, FieldType};
use crate::store::schema::{Storage, storage};
use crate::store::value;

/// What filter values may refer to (the requesting user, the tenant's today) and the
/// fields the user may not see, which a filter may not name either: filtering on a
/// masked field would reveal its values one question at a time.
#[derive(Debug, Clone)]
pub struct FilterContext<'a> {
    pub user_id: i64,
    pub today: NaiveDate,
    pub hidden: &'a BTreeSet<String>,
}

impl<'a> FilterContext<'a> {
    pub fn for_access(access: &'a Access) -> Self {
        FilterContext {
            user_id: access.user_id,
            today: clock::today(),
            hidden: &access.hidden_fields,
        }
    }
}

pub fn condition(entity: &EntityCatalog, filter: &Value, ctx: &FilterContext) -> Result<Condition> {
    node(entity, filter, ctx, "filter")
}

fn bad(path: &str, message: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("{path}: {message}"))
}

fn node(
    entity: &EntityCatalog,
    filter: &Value,
    ctx: &FilterContext,
    path: &str,
) -> Result<Condition> {
    let Value::Object(map) = filter else {
        return Err(bad(path, "a filter is an object"));
    };
    if let Some(children) = map.get("and").or_else(|| map.get("or")) {
        let is_and = map.contains_key("and");
        let key = if is_and { "and" } else { "or" };
        if map.len() != 1 {
            return Err(bad(
                path,
                format!("\"{key}\" must be the only key of its object"),
            ));
        }
        let Value::Array(children) = children else {
            return Err(bad(
                &format!("{path}.{key}"),
                "expected an array of filters",
            ));
        };
        let mut condition = if is_and {
            Condition::all()
        } else {
            Condition::any()
        };
        for (index, child) in children.iter().enumerate() {
            condition = condition.add(node(entity, child, ctx, &format!("{path}.{key}[{index}]"))?);
        }
        return Ok(condition);
    }
    if let Some(child) = map.get("not") {
        if map.len() != 1 {
            return Err(bad(path, "\"not\" must be the only key of its object"));
        }
        return Ok(node(entity, child, ctx, &format!("{path}.not"))?.not());
    }
    for key in map.keys() {
        if !matches!(key.as_str(), "field" | "op" | "value") {
            return Err(bad(
                &format!("{path}.{key}"),
                "unknown key; expected and, or, not, or field/op/value",
            ));
        }
    }
    let field_key = map
        .get("field")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&format!("{path}.field"), "expected a field key"))?;
    let field = entity
        .column(field_key)
        .filter(|f| !ctx.hidden.contains(&f.key))
        .ok_or_else(|| {
            bad(
                &format!("{path}.field"),
                format!("unknown field {field_key:?}"),
            )
        })?;
    let op = map
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&format!("{path}.op"), "expected an operator"))?;
    let raw = map.get("value").unwrap_or(&Value::Null);
    let value_path = format!("{path}.value");
    let expr = comparison(field, op, raw, ctx).map_err(|e| match e {
        Comparison::UnknownOp => bad(
            &format!("{path}.op"),
            format!("unknown operator {op:?}; expected eq ne lt lte gt gte in nin contains starts_with is_null between"),
        ),
        Comparison::Value(message) => bad(&value_path, message),
    })?;
    Ok(Condition::all().add(expr))
}

enum Comparison {
    UnknownOp,
    Value(String),
}

impl From<String> for Comparison {
    fn from(message: String) -> Self {
        Comparison::Value(message)
    }
}

fn comparison(
    field: &Field,
    op: &str,
    raw: &Value,
    ctx: &FilterContext,
) -> Result<SimpleExpr, Comparison> {
    let column = || Expr::col(Alias::new(&field.key));
    let scalar = |v: &Value| -> Result<sea_orm::sea_query::Value, String> {
        let resolved = resolve(field, v, ctx)?;
        value::to_sql(field, &resolved).map_err(|m| format!("{m} (for field {:?})", field.key))
    };
    Ok(match op {
        "eq" if raw.is_null() => column().is_null(),
        "ne" if raw.is_null() => column().is_not_null(),
        "eq" => column().eq(scalar(raw)?),
        // "not equal" includes empty values, as users expect from a CRM list filter.
        "ne" => column().ne(scalar(raw)?).or(column().is_null()),
        "lt" => column().lt(scalar(raw)?),
        "lte" => column().lte(scalar(raw)?),
        "gt" => column().gt(scalar(raw)?),
        "gte" => column().gte(scalar(raw)?),
        "in" | "nin" => {
            let Value::Array(items) = raw else {
                return Err(format!("{op} takes an array of values").into());
            };
            let values = items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?;
            if op == "in" {
                column().is_in(values)
            } else {
                column().is_not_in(values).or(column().is_null())
            }
        }
        "between" => match raw {
            Value::Array(pair) if pair.len() == 2 => {
                column().between(scalar(&pair[0])?, scalar(&pair[1])?)
            }
            _ => return Err("between takes an array of two values".to_string().into()),
        },
        "is_null" => match raw {
            Value::Bool(true) | Value::Null => column().is_null(),
            Value::Bool(false) => column().is_not_null(),
            _ => return Err("is_null takes true or false".to_string().into()),
        },
        "contains" | "starts_with" => {
            let Some(text) = raw.as_str() else {
                return Err(format!("{op} takes a string").into());
            };
            if !matches!(storage(field.field_type), Storage::Text | Storage::JsonText) {
                return Err(format!(
                    "{op} applies to text fields, not to {} field {:?}",
                    field.field_type.as_str(),
                    field.key
                )
                .into());
            }
            if field.field_type == FieldType::MultiSelect {
                // Multi-select values are stored as a JSON array of strings; an option
                // is a code, matched exactly (case-sensitive) on both databases. LIKE
                // ignores case on SQLite, REPLACE compares bytes everywhere: the column
                // holds the quoted value iff removing it changes the column.
                let quoted = json!(text).to_string();
                let removed = Func::cust("REPLACE")
                    .arg(column())
                    .arg(Expr::val(quoted))
                    .arg(Expr::val(""));
                return Ok(Expr::expr(removed).ne(column()));
            }
            let escaped = escape_like(&text.to_lowercase());
            let pattern = match op {
                "contains" => format!("%{escaped}%"),
                _ => format!("{escaped}%"),
            };
            Expr::expr(Func::lower(column())).like(LikeExpr::new(pattern).escape('\\'))
        }
        _ => return Err(Comparison::UnknownOp),
    })
}

/// Resolves `{"relative": …}` and `{"user": "me"}` into plain values for `field`.
fn resolve(field: &Field, value: &Value, ctx: &FilterContext) -> Result<Value, String> {
    let Value::Object(map) = value else {
        return Ok(value.clone());
    };
    if let Some(relative) = map.get("relative").and_then(Value::as_str) {
        let date = relative_date(relative, ctx.today)?;
        return Ok(match field.field_type {
            FieldType::Datetime => json!(value::format_datetime(clock::start_of_day(date))),
            _ => json!(date.format("%Y-%m-%d").to_string()),
        });
    }
    if map.get("user").and_then(Value::as_str) == Some("me") {
        return Ok(json!(ctx.user_id));
    }
    Err("expected a value, {\"relative\": …} or {\"user\": \"me\"}".into())
}

pub fn relative_date(name: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let first_of =
        |month: u32| NaiveDate::from_ymd_opt(today.year(), month, 1).expect("valid month");
    Ok(match name {
        "today" => today,
        "yesterday" => today - Duration::days(1),
        "tomorrow" => today + Duration::days(1),
        "start_of_week" => {
            today - Duration::days(i64::from(today.weekday().num_days_from_monday()))
        }
        "start_of_month" => first_of(today.month()),
        "start_of_quarter" => first_of((today.month() - 1) / 3 * 3 + 1),
        "start_of_year" => first_of(1),
        _ => {
            return Err(format!(
                "unknown relative date {name:?}; expected today, yesterday, tomorrow, start_of_week, start_of_month, start_of_quarter or start_of_year"
            ));
        }
    })
}

fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
