//! A report's output as files: CSV (UTF-8 with a byte-order mark, which Excel needs
//! to read Chinese text) and XLSX with typed cells, a header row and a totals row.
//! Both show what a person reads — option labels, names, titles — where the JSON
//! rows hold raw values.

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, XlsxError};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::report::run::{Output, text};

const TOTAL: &str = "合计";

/// The rows as written: display values, then the totals row when there is one.
fn lines(output: &Output) -> Vec<Vec<Value>> {
    let mut lines: Vec<Vec<Value>> = output
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(&output.columns)
                .map(|(value, column)| column.display(value))
                .collect()
        })
        .collect();
    if let Some(totals) = &output.totals {
        let mut line = totals.clone();
        if output.columns.first().is_some_and(|c| c.dimension) {
            line[0] = Value::String(TOTAL.into());
        }
        lines.push(line);
    }
    lines
}

pub fn csv(output: &Output) -> Result<Vec<u8>> {
    let mut buffer = "\u{feff}".as_bytes().to_vec();
    {
        let mut writer = csv::Writer::from_writer(&mut buffer);
        let header: Vec<&str> = output.columns.iter().map(|c| c.label.as_str()).collect();
        writer.write_record(&header).map_err(internal)?;
        for line in lines(output) {
            writer
                .write_record(line.iter().map(text))
                .map_err(internal)?;
        }
        writer.flush().map_err(|e| Error::Internal(e.to_string()))?;
    }
    Ok(buffer)
}

pub fn xlsx(output: &Output) -> Result<Vec<u8>> {
    write_xlsx(output).map_err(|e| Error::Internal(format!("writing XLSX: {e}")))
}

fn write_xlsx(output: &Output) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(sheet_name(&output.label))?;
    let bold = Format::new().set_bold();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let percent = Format::new().set_num_format("0.0%");
    for (c, column) in output.columns.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, &column.label, &bold)?;
        sheet.set_column_width(c as u16, 14)?;
    }
    let lines = lines(output);
    let total_row = output.totals.as_ref().map(|_| lines.len());
    for (r, line) in lines.iter().enumerate() {
        let row = r as u32 + 1;
        for (c, (value, column)) in line.iter().zip(&output.columns).enumerate() {
            let col = c as u16;
            let is_total = total_row == Some(r + 1);
            match value {
                Value::Null => {}
                Value::Number(n) => {
                    let number = n.as_f64().unwrap_or_default();
                    match (column.value_type.as_str(), is_total) {
                        ("ratio", _) => {
                            sheet.write_number_with_format(row, col, number, &percent)?
                        }
                        (_, true) => sheet.write_number_with_format(row, col, number, &bold)?,
                        _ => sheet.write_number(row, col, number)?,
                    };
                }
                Value::String(s) if column.value_type == "date" => {
                    match ExcelDateTime::parse_from_str(s) {
                        Ok(day) => sheet.write_datetime_with_format(row, col, &day, &date)?,
                        Err(_) => sheet.write_string(row, col, s)?,
                    };
                }
                Value::String(s) if is_total => {
                    sheet.write_string_with_format(row, col, s, &bold)?;
                }
                other => {
                    sheet.write_string(row, col, text(other))?;
                }
            }
        }
    }
    workbook.save_to_buffer()
}

/// Excel's sheet names: at most 31 characters, none of `[]:*?/\`.
fn sheet_name(label: &str) -> String {
    let name: String = label
        .chars()
        .filter(|c| !"[]:*?/\\".contains(*c))
        .take(31)
        .collect();
    if name.trim().is_empty() {
        "report".into()
    } else {
        name
    }
}

fn internal(error: csv::Error) -> Error {
    Error::Internal(format!("writing CSV: {error}"))
}
