//! Field values between their JSON form (API, expressions) and their SQL form.
//!
//! One function converts in each direction for every field type; record writes,
//! filters and cursors all go through them, so a value means the same everywhere.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use sea_orm::QueryResult;
use sea_orm::sea_query::Value as SqlValue;
use serde_json::{Value, json};

use crate::meta::{Field, FieldType};
use crate::store::schema::{Storage, storage};

/// A SQL NULL of the column's type (PostgreSQL needs typed NULLs).
pub fn null(storage: Storage) -> SqlValue {
    match storage {
        Storage::Text | Storage::JsonText => SqlValue::String(None),
        Storage::BigInt => SqlValue::BigInt(None),
        Storage::Boolean => SqlValue::Bool(None),
        Storage::Date => SqlValue::ChronoDate(None),
        Storage::DateTime => SqlValue::ChronoDateTimeUtc(None),
    }
}

/// Converts a JSON value given for `field` into its SQL value, or says what is wrong.
pub fn to_sql(field: &Field, value: &Value) -> Result<SqlValue, String> {
    if value.is_null() {
        return Ok(null(storage(field.field_type)));
    }
    match field.field_type {
        FieldType::Text
        | FieldType::LongText
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Url
        | FieldType::Select
        | FieldType::AutoNumber => Ok(SqlValue::String(Some(expect_str(value)?.to_string()))),
        FieldType::MultiSelect | FieldType::Attachment => {
            if !value.is_array() {
                return Err("expected an array".into());
            }
            Ok(SqlValue::String(Some(value.to_string())))
        }
        FieldType::Integer | FieldType::Reference | FieldType::User => {
            Ok(SqlValue::BigInt(Some(parse_integer(value)?)))
        }
        FieldType::Decimal => {
            let decimal = parse_decimal(value)?;
            Ok(SqlValue::BigInt(Some(scale_decimal(
                decimal,
                field.decimal_scale(),
            )?)))
        }
        FieldType::Boolean => match value {
            Value::Bool(b) => Ok(SqlValue::Bool(Some(*b))),
            _ => Err("expected true or false".into()),
        },
        FieldType::Date => Ok(SqlValue::ChronoDate(Some(parse_date(value)?))),
        FieldType::Datetime => Ok(SqlValue::ChronoDateTimeUtc(Some(parse_datetime(value)?))),
    }
}

/// Normalises a JSON value for `field` to its canonical JSON form (the form records are
/// returned in), validating it on the way.
pub fn normalize(field: &Field, value: &Value) -> Result<Value, String> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match field.field_type {
        FieldType::Decimal => {
            let scaled = scale_decimal(parse_decimal(value)?, field.decimal_scale())?;
            Ok(decimal_json(scaled, field.decimal_scale()))
        }
        FieldType::Integer | FieldType::Reference | FieldType::User => {
            Ok(json!(parse_integer(value)?))
        }
        FieldType::Date => Ok(json!(parse_date(value)?.format("%Y-%m-%d").to_string())),
        FieldType::Datetime => Ok(json!(format_datetime(parse_datetime(value)?))),
        FieldType::Boolean if !value.is_boolean() => Err("expected true or false".into()),
        FieldType::MultiSelect | FieldType::Attachment if !value.is_array() => {
            Err("expected an array".into())
        }
        _ if field.field_type.is_textual()
            || matches!(field.field_type, FieldType::Select | FieldType::AutoNumber) =>
        {
            Ok(json!(expect_str(value)?))
        }
        _ => Ok(value.clone()),
    }
}

/// Reads column `column` of a row as the JSON value of a field of `field_type`.
pub fn from_row(
    row: &QueryResult,
    column: &str,
    field_type: FieldType,
    scale: u32,
) -> Result<Value, sea_orm::DbErr> {
    Ok(match storage(field_type) {
        Storage::Text => row
            .try_get::<Option<String>>("", column)?
            .map(Value::String),
        Storage::JsonText => row
            .try_get::<Option<String>>("", column)?
            .map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text))),
        Storage::BigInt => {
            let number = row.try_get::<Option<i64>>("", column)?;
            match field_type {
                FieldType::Decimal => number.map(|n| decimal_json(n, scale)),
                _ => number.map(|n| json!(n)),
            }
        }
        Storage::Boolean => row.try_get::<Option<bool>>("", column)?.map(Value::Bool),
        Storage::Date => row
            .try_get::<Option<NaiveDate>>("", column)?
            .map(|d| json!(d.format("%Y-%m-%d").to_string())),
        Storage::DateTime => row
            .try_get::<Option<DateTime<Utc>>>("", column)?
            .map(|t| json!(format_datetime(t))),
    }
    .unwrap_or(Value::Null))
}

pub fn format_datetime(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn expect_str(value: &Value) -> Result<&str, String> {
    value
        .as_str()
        .ok_or_else(|| "expected a string".to_string())
}

fn parse_integer(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("expected a whole number, got {n}")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("expected a whole number, got {s:?}")),
        _ => Err("expected a whole number".into()),
    }
}

/// Parses an exact decimal from a JSON number (by its text, never through a float
/// computation) or a string.
pub fn parse_decimal(value: &Value) -> Result<Decimal, String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return Err("expected a number".into()),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| format!("expected a number, got {text:?}"))
}

/// The stored form of a decimal: an integer count of 10^-scale units. Refuses values
/// with more digits than the scale allows rather than rounding them silently.
pub fn scale_decimal(value: Decimal, scale: u32) -> Result<i64, String> {
    let scaled = value
        .checked_mul(Decimal::from(10i64.pow(scale)))
        .ok_or_else(|| format!("{value} is too large"))?;
    if scaled.fract() != Decimal::ZERO {
        return Err(format!(
            "{value} has more than {scale} digits after the decimal point"
        ));
    }
    i64::try_from(scaled).map_err(|_| format!("{value} is too large"))
}

pub fn unscale_decimal(scaled: i64, scale: u32) -> Decimal {
    Decimal::new(scaled, scale)
}

/// Decimals go out as JSON numbers; the text of the number is the exact decimal.
fn decimal_json(scaled: i64, scale: u32) -> Value {
    let decimal = unscale_decimal(scaled, scale).normalize();
    serde_json::from_str(&decimal.to_string()).unwrap_or_else(|_| json!(decimal.to_string()))
}

fn parse_date(value: &Value) -> Result<NaiveDate, String> {
    let text = expect_str(value)?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("expected a date as YYYY-MM-DD, got {text:?}"))
}

fn parse_datetime(value: &Value) -> Result<DateTime<Utc>, String> {
    let text = expect_str(value)?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("expected an RFC 3339 date-time, got {text:?}"))
}
