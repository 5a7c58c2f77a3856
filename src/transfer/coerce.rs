//! Spreadsheet cells to field values the way Chinese users write them: dates as
//! 2024年3月5日, 2024/3/5 or 2024.3.5, numbers as 1,234.50, ￥1,234.50, 1.5万 or
//! (1,234.50), booleans as 是/否, options by label or key, lists separated by 、 or ，.
//! The value comes out in the API's input form; the records store then checks it like
//! any other input. References and users are looked up by the importer.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use regex::Regex;
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use serde_json::{Value, json};
use std::sync::LazyLock;

use super::sheet::{Cell, text_of};
use crate::meta::{Field, FieldType};
use crate::store::value::format_datetime;

/// The value `cell` gives `field`, or a message saying what is wrong with it. Empty
/// cells are the caller's business (they never reach here).
pub fn coerce(field: &Field, cell: &Cell) -> Result<Value, String> {
    match field.field_type {
        FieldType::Integer => integer(cell).map(|n| json!(n)),
        FieldType::Decimal => decimal(cell).map(|d| json!(d.normalize().to_string())),
        FieldType::Boolean => boolean(cell).map(Value::Bool),
        FieldType::Date => date(cell).map(|d| json!(d.format("%Y-%m-%d").to_string())),
        FieldType::Datetime => datetime(cell).map(|t| json!(t)),
        FieldType::Select => option(field, &text_of(cell)).map(Value::String),
        FieldType::MultiSelect => split_list(&text_of(cell))
            .map(|item| option(field, item).map(Value::String))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        FieldType::Attachment => Err(
            "attachments cannot be imported from a spreadsheet; upload them on the record".into(),
        ),
        _ => Ok(json!(text_of(cell))),
    }
}

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<sign>[-+])?(?P<digits>\d{1,3}(?:,\d{3})+|\d+)?(?P<fraction>\.\d+)?$")
        .expect("valid regex")
});

/// A number as typed: thousands separators, currency signs, 元, 万 and 亿, and the
/// accountant's (1,234.50) for a negative amount.
pub fn decimal(cell: &Cell) -> Result<Decimal, String> {
    if let Cell::Number(n) = cell {
        return Decimal::from_f64(*n).ok_or_else(|| format!("{n} is not a number we can store"));
    }
    let original = text_of(cell);
    let mut text: String = original
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '¥' | '￥' | '$' | '元'))
        .map(|c| match c {
            '，' => ',',
            '．' => '.',
            '－' | '—' => '-',
            c => c,
        })
        .collect();
    let mut negative = false;
    if let Some(inner) = text
        .strip_prefix('(')
        .or_else(|| text.strip_prefix('（'))
        .and_then(|t| t.strip_suffix(')').or_else(|| t.strip_suffix('）')))
    {
        negative = true;
        text = inner.to_string();
    }
    let mut scale = Decimal::ONE;
    if let Some(rest) = text.strip_suffix('万') {
        scale = Decimal::from(10_000);
        text = rest.to_string();
    } else if let Some(rest) = text.strip_suffix('亿') {
        scale = Decimal::from(100_000_000);
        text = rest.to_string();
    }
    let not_a_number = || format!("{original:?} is not a number");
    let captures = NUMBER.captures(&text).ok_or_else(not_a_number)?;
    if captures.name("digits").is_none() && captures.name("fraction").is_none() {
        return Err(not_a_number());
    }
    let plain = text.replace(',', "");
    let value: Decimal = plain.parse().map_err(|_| not_a_number())?;
    let value = value * scale;
    Ok(if negative { -value } else { value })
}

pub fn integer(cell: &Cell) -> Result<i64, String> {
    let value = decimal(cell)?;
    if value.fract() != Decimal::ZERO {
        return Err(format!("{} is not a whole number", text_of(cell)));
    }
    i64::try_from(value).map_err(|_| format!("{} is too large", text_of(cell)))
}

pub fn boolean(cell: &Cell) -> Result<bool, String> {
    if let Cell::Bool(b) = cell {
        return Ok(*b);
    }
    let text = text_of(cell).to_lowercase();
    match text.as_str() {
        "是" | "对" | "有" | "√" | "✓" | "y" | "yes" | "true" | "1" | "t" => Ok(true),
        "否" | "不是" | "错" | "无" | "没有" | "×" | "✗" | "n" | "no" | "false" | "0" | "f" => {
            Ok(false)
        }
        _ => Err(format!("{text:?} is not 是/否 (yes/no)")),
    }
}

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<y>\d{4})\s*(?:年|[-/.])\s*(?P<m>\d{1,2})\s*(?:月|[-/.])\s*(?P<d>\d{1,2})\s*日?(?:[ T]+(?P<time>\d{1,2}[:：]\d{2}(?:[:：]\d{2})?))?$",
    )
    .expect("valid regex")
});

/// Excel's serial day numbers count from 1899-12-30 (its 1900 leap-year bug included).
fn excel_serial(n: f64) -> Option<NaiveDateTime> {
    if !(1.0..2_958_466.0).contains(&n) {
        return None;
    }
    let base = NaiveDate::from_ymd_opt(1899, 12, 30)?.and_time(NaiveTime::MIN);
    let millis = (n * 86_400_000.0).round() as i64;
    base.checked_add_signed(chrono::Duration::milliseconds(millis))
}

/// A local date and time from a cell: a workbook date, an Excel serial number, or text
/// in the usual Chinese and ISO forms (`20240305` too). Text without a time is
/// midnight.
fn local_datetime(cell: &Cell) -> Result<NaiveDateTime, String> {
    let text = text_of(cell);
    let not_a_date =
        || format!("{text:?} is not a date (write it as 2024-03-05, 2024/3/5 or 2024年3月5日)");
    match cell {
        Cell::DateTime(t) => return Ok(*t),
        Cell::Number(n) => return excel_serial(*n).ok_or_else(not_a_date),
        _ => {}
    }
    if text.len() == 8 && text.chars().all(|c| c.is_ascii_digit()) {
        return NaiveDate::parse_from_str(&text, "%Y%m%d")
            .map(|d| d.and_time(NaiveTime::MIN))
            .map_err(|_| not_a_date());
    }
    let captures = DATE.captures(&text).ok_or_else(not_a_date)?;
    let number = |name: &str| captures[name].parse::<u32>().unwrap_or(0);
    let date =
        NaiveDate::from_ymd_opt(captures["y"].parse().unwrap_or(0), number("m"), number("d"))
            .ok_or_else(|| format!("{text:?} is not a day of the calendar"))?;
    let time = match captures.name("time") {
        None => NaiveTime::MIN,
        Some(time) => {
            let time = time.as_str().replace('：', ":");
            NaiveTime::parse_from_str(&time, "%H:%M:%S")
                .or_else(|_| NaiveTime::parse_from_str(&time, "%H:%M"))
                .map_err(|_| format!("{text:?} has no valid time of day"))?
        }
    };
    Ok(date.and_time(time))
}

pub fn date(cell: &Cell) -> Result<NaiveDate, String> {
    local_datetime(cell).map(|t| t.date())
}

/// RFC 3339 in UTC; local times are China's (UTC+8); text already carrying an offset
/// is taken as written.
pub fn datetime(cell: &Cell) -> Result<String, String> {
    let text = text_of(cell);
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&text) {
        return Ok(format_datetime(t.to_utc()));
    }
    let local = local_datetime(cell)?;
    let t = crate::clock::offset()
        .from_local_datetime(&local)
        .single()
        .ok_or_else(|| format!("{text:?} is not a valid time"))?;
    Ok(format_datetime(t.to_utc()))
}

/// The option a cell names, by label or key (either case, surrounding spaces ignored).
fn option(field: &Field, text: &str) -> Result<String, String> {
    let wanted = text.trim();
    field
        .options
        .iter()
        .find(|o| o.value == wanted || o.label() == wanted)
        .or_else(|| {
            field.options.iter().find(|o| {
                o.value.eq_ignore_ascii_case(wanted) || o.label().eq_ignore_ascii_case(wanted)
            })
        })
        .map(|o| o.value.clone())
        .ok_or_else(|| {
            let known: Vec<&str> = field.options.iter().map(|o| o.label()).collect();
            format!("{wanted:?} is not one of {}", known.join("、"))
        })
}

/// Items of a list cell, separated the ways people separate them.
fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split([',', '，', ';', '；', '、', '|', '\n'])
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    #[test]
    fn chinese_numbers() {
        for (typed, expected) in [
            ("1,234.50", "1234.50"),
            ("￥1,234.50", "1234.50"),
            ("¥ 99", "99"),
            ("1234.5元", "1234.5"),
            ("1.5万", "15000.0"),
            ("2亿", "200000000"),
            ("(1,234.50)", "-1234.50"),
            ("-12", "-12"),
            ("１２", "12"),
        ] {
            let got = decimal(&text(typed));
            if typed == "１２" {
                // Full-width digits are not numbers to the parser: a clear refusal.
                assert!(got.is_err(), "{typed}");
                continue;
            }
            assert_eq!(
                got.unwrap(),
                expected.parse::<Decimal>().unwrap(),
                "{typed}"
            );
        }
        assert!(decimal(&text("12,34")).is_err());
        assert!(decimal(&text("abc")).is_err());
        assert_eq!(decimal(&Cell::Number(2.5)).unwrap(), Decimal::new(25, 1));
        assert_eq!(integer(&text("1,000")).unwrap(), 1000);
        assert!(integer(&text("1.5")).is_err());
    }

    #[test]
    fn chinese_dates() {
        let day = NaiveDate::from_ymd_opt(2024, 3, 5).unwrap();
        for typed in [
            "2024年3月5日",
            "2024年03月05日",
            "2024/3/5",
            "2024-03-05",
            "2024.3.5",
            "20240305",
            "2024-03-05 00:00:00",
        ] {
            assert_eq!(date(&text(typed)).unwrap(), day, "{typed}");
        }
        assert_eq!(date(&Cell::Number(45356.0)).unwrap(), day);
        assert_eq!(
            date(&Cell::DateTime(day.and_time(NaiveTime::MIN))).unwrap(),
            day
        );
        assert!(date(&text("2024/2/30")).unwrap_err().contains("calendar"));
        assert!(date(&text("3月5日")).is_err());
    }

    #[test]
    fn local_times_are_china_time() {
        assert_eq!(
            datetime(&text("2024年3月5日 14:30")).unwrap(),
            "2024-03-05T06:30:00.000Z"
        );
        assert_eq!(
            datetime(&text("2024-03-05T14:30:00+00:00")).unwrap(),
            "2024-03-05T14:30:00.000Z"
        );
    }

    #[test]
    fn booleans() {
        for yes in ["是", "Y", "yes", "TRUE", "1", "√"] {
            assert!(boolean(&text(yes)).unwrap(), "{yes}");
        }
        for no in ["否", "n", "No", "false", "0", "×"] {
            assert!(!boolean(&text(no)).unwrap(), "{no}");
        }
        assert!(boolean(&text("也许")).is_err());
    }
}
