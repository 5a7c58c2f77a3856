//! Reading the spreadsheet a user brings: CSV streamed row by row (UTF-8, UTF-8 with a
//! BOM, UTF-16 with a BOM, or GB18030 as Excel saves it on a Chinese Windows; comma,
//! tab or semicolon separated), and XLSX/XLS through calamine (the first sheet). The
//! first row is the header; the rows after it are numbered from 1.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use calamine::{Data, Range, Reader, Xls, Xlsx};
use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One cell as the file holds it; CSV cells are always text.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Bool(bool),
    DateTime(NaiveDateTime),
}

impl Cell {
    /// Blank text counts as empty: spreadsheets are full of stray spaces.
    pub fn is_empty(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(text) => text.trim().is_empty(),
            _ => false,
        }
    }
}

/// Where the file's bytes are: on disk (the CLI) or in memory (an upload).
#[derive(Clone)]
pub enum Source {
    File(PathBuf),
    Bytes(Arc<[u8]>),
}

trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

impl Source {
    fn open(&self) -> Result<Box<dyn ReadSeek>> {
        Ok(match self {
            Source::File(path) => {
                Box::new(std::io::BufReader::new(std::fs::File::open(path).map_err(
                    |e| Error::BadRequest(format!("cannot read {}: {e}", path.display())),
                )?))
            }
            Source::Bytes(bytes) => Box::new(Cursor::new(bytes.clone())),
        })
    }

    /// The SHA-256 of the file's bytes, hex: what an interrupted import is resumed by.
    pub fn fingerprint(&self) -> Result<String> {
        let mut reader = self.open()?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let read = reader.read(&mut buffer).map_err(read_error)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        Ok(format!("{:x}", hasher.finalize()))
    }
}

fn read_error(error: std::io::Error) -> Error {
    Error::BadRequest(format!("the file cannot be read: {error}"))
}

/// An open spreadsheet: its header and an iterator over its data rows.
pub struct Sheet {
    pub headers: Vec<String>,
    rows: Rows,
}

enum Rows {
    Csv(CsvRows),
    Grid { range: Range<Data>, next: usize },
}

/// CSV records as spreadsheet rows. The csv crate skips blank lines; a spreadsheet
/// shows them as rows, so they come back as empty rows to keep row numbers true.
struct CsvRows {
    reader: csv::Reader<Box<dyn Read + Send>>,
    /// The reader's line after the previous record.
    line: u64,
    blank_lines: u64,
    waiting: Option<csv::StringRecord>,
}

impl CsvRows {
    fn next_record(&mut self) -> Option<Result<csv::StringRecord>> {
        if self.blank_lines > 0 {
            self.blank_lines -= 1;
            return Some(Ok(csv::StringRecord::new()));
        }
        if let Some(record) = self.waiting.take() {
            return Some(Ok(record));
        }
        let mut record = csv::StringRecord::new();
        match self.reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                return Some(Err(Error::BadRequest(format!(
                    "the CSV cannot be read: {e}"
                ))));
            }
        }
        // Lines consumed = blank lines before the record + its own (line breaks
        // inside quoted cells, and its end).
        let line = self.reader.position().line();
        let own: u64 = record
            .iter()
            .map(|f| f.matches('\n').count() as u64)
            .sum::<u64>()
            + 1;
        let blank = line.saturating_sub(self.line).saturating_sub(own);
        self.line = line;
        if blank == 0 {
            return Some(Ok(record));
        }
        self.blank_lines = blank - 1;
        self.waiting = Some(record);
        Some(Ok(csv::StringRecord::new()))
    }
}

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0";

impl Sheet {
    /// Opens a spreadsheet, telling its kind from its first bytes (not its name).
    pub fn open(source: &Source) -> Result<Sheet> {
        let mut reader = source.open()?;
        let mut head = Vec::with_capacity(1 << 16);
        (&mut reader)
            .take(1 << 16)
            .read_to_end(&mut head)
            .map_err(read_error)?;
        reader.seek(SeekFrom::Start(0)).map_err(read_error)?;
        let mut rows = if head.starts_with(ZIP_MAGIC) {
            let mut book = Xlsx::new(reader).map_err(|e| workbook_error(&e))?;
            Rows::grid(book.worksheet_range_at(0), workbook_error)?
        } else if head.starts_with(OLE_MAGIC) {
            let mut book = Xls::new(reader).map_err(|e| workbook_error(&e))?;
            Rows::grid(book.worksheet_range_at(0), workbook_error)?
        } else {
            Rows::csv(reader, &head)
        };
        let headers = match rows.next_row() {
            Some(row) => row?
                .into_iter()
                .map(|cell| match cell {
                    Cell::Text(text) => text.trim().trim_start_matches('\u{feff}').to_string(),
                    Cell::Empty => String::new(),
                    other => text_of(&other),
                })
                .collect(),
            None => return Err(Error::BadRequest("the file is empty: no header row".into())),
        };
        Ok(Sheet { headers, rows })
    }

    /// The number of data rows (one pass over a CSV; known at once for a workbook).
    pub fn count_rows(source: &Source) -> Result<u64> {
        let mut sheet = Sheet::open(source)?;
        if let Rows::Grid { range, next } = &sheet.rows {
            return Ok(range.height().saturating_sub(*next) as u64);
        }
        let mut count = 0;
        while let Some(row) = sheet.rows.next_row() {
            row?;
            count += 1;
        }
        Ok(count)
    }
}

impl Iterator for Sheet {
    type Item = Result<Vec<Cell>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rows.next_row()
    }
}

fn workbook_error(error: &dyn std::fmt::Display) -> Error {
    Error::BadRequest(format!("the workbook cannot be read: {error}"))
}

impl Rows {
    fn grid<E: std::fmt::Display>(
        range: Option<std::result::Result<Range<Data>, E>>,
        error: fn(&dyn std::fmt::Display) -> Error,
    ) -> Result<Rows> {
        match range {
            Some(Ok(range)) => Ok(Rows::Grid { range, next: 0 }),
            Some(Err(e)) => Err(error(&e)),
            None => Err(Error::BadRequest("the workbook has no sheet".into())),
        }
    }

    fn csv(reader: Box<dyn ReadSeek>, head: &[u8]) -> Rows {
        let decoded: Box<dyn Read + Send> = Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(sniff_encoding(head))
                .bom_sniffing(true)
                .strip_bom(true)
                .build(reader),
        );
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(sniff_delimiter(head))
            .from_reader(decoded);
        Rows::Csv(CsvRows {
            reader,
            line: 1,
            blank_lines: 0,
            waiting: None,
        })
    }

    fn next_row(&mut self) -> Option<Result<Vec<Cell>>> {
        match self {
            Rows::Csv(rows) => rows.next_record().map(|record| {
                record.map(|r| {
                    r.iter()
                        .map(|text| match text.trim().is_empty() {
                            true => Cell::Empty,
                            false => Cell::Text(text.to_string()),
                        })
                        .collect()
                })
            }),
            Rows::Grid { range, next } => {
                if *next >= range.height() {
                    return None;
                }
                let row = (0..range.width())
                    .map(|column| cell_of(range.get((*next, column)).unwrap_or(&Data::Empty)))
                    .collect();
                *next += 1;
                Some(Ok(row))
            }
        }
    }
}

/// UTF-8 when the start of the file is valid UTF-8 (a multi-byte character cut at the
/// sample's end is fine), else GB18030 (a superset of GBK and GB2312). A BOM, when
/// present, overrides this.
fn sniff_encoding(head: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    match std::str::from_utf8(head) {
        Ok(_) => Some(encoding_rs::UTF_8),
        Err(e) if e.error_len().is_none() => Some(encoding_rs::UTF_8),
        Err(_) => Some(encoding_rs::GB18030),
    }
}

/// The separator the header line uses most: comma, tab or semicolon. GB18030 trail
/// bytes never take these values, so the raw bytes can be counted.
fn sniff_delimiter(head: &[u8]) -> u8 {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    [b',', b'\t', b';']
        .into_iter()
        .max_by_key(|d| (line.iter().filter(|b| *b == d).count(), *d == b','))
        .unwrap_or(b',')
}

fn cell_of(data: &Data) -> Cell {
    match data {
        Data::Empty | Data::Error(_) => Cell::Empty,
        Data::String(text) if text.trim().is_empty() => Cell::Empty,
        Data::String(text) | Data::DateTimeIso(text) | Data::DurationIso(text) => {
            Cell::Text(text.clone())
        }
        Data::Int(n) => Cell::Number(*n as f64),
        Data::Float(n) => Cell::Number(*n),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(t) => match t.as_datetime() {
            Some(t) => Cell::DateTime(t),
            None => Cell::Number(t.as_f64()),
        },
    }
}

/// A cell as text: integral numbers without a fraction (phone numbers and codes are
/// often stored as numbers), dates as `YYYY-MM-DD[ HH:MM:SS]`.
pub fn text_of(cell: &Cell) -> String {
    match cell {
        Cell::Empty => String::new(),
        Cell::Text(text) => text.trim().to_string(),
        Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
        Cell::Number(n) => n.to_string(),
        Cell::Bool(b) => b.to_string(),
        Cell::DateTime(t) if t.time() == chrono::NaiveTime::MIN => t.format("%Y-%m-%d").to_string(),
        Cell::DateTime(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<Cell>>) {
        let sheet = Sheet::open(&Source::Bytes(bytes.into())).unwrap();
        let headers = sheet.headers.clone();
        (headers, sheet.map(|r| r.unwrap()).collect())
    }

    #[test]
    fn csv_in_every_encoding_reads_the_same() {
        let text = "客户名称,电话\n深圳市震华信息技术有限公司,0755-1234\n";
        let (gb, _, _) = encoding_rs::GB18030.encode(text);
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        for bytes in [text.as_bytes().to_vec(), bom, gb.into_owned()] {
            let (headers, rows) = rows(&bytes);
            assert_eq!(headers, ["客户名称", "电话"]);
            assert_eq!(
                rows,
                [vec![
                    Cell::Text("深圳市震华信息技术有限公司".into()),
                    Cell::Text("0755-1234".into())
                ]]
            );
        }
    }

    #[test]
    fn tabs_and_semicolons_separate_when_the_header_uses_them() {
        let (headers, _) = rows("名称\t电话\n甲\t1\n".as_bytes());
        assert_eq!(headers, ["名称", "电话"]);
        let (headers, _) = rows("名称;电话\n甲;1\n".as_bytes());
        assert_eq!(headers, ["名称", "电话"]);
    }

    #[test]
    fn ragged_and_blank_cells_are_kept_as_empty() {
        let (_, rows) = rows(b"a,b,c\n1,, \n2\n");
        assert_eq!(rows[0], [Cell::Text("1".into()), Cell::Empty, Cell::Empty]);
        assert_eq!(rows[1], [Cell::Text("2".into())]);
    }

    #[test]
    fn blank_lines_are_rows_and_quoted_line_breaks_are_not() {
        let (_, rows) = rows(b"a,b\n1,x\n\n\n2,\"two\nlines\"\n\n3,y\n");
        let firsts: Vec<String> = rows
            .iter()
            .map(|r| r.first().map(text_of).unwrap_or_default())
            .collect();
        assert_eq!(firsts, ["1", "", "", "2", "", "3"]);
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert!(Sheet::open(&Source::Bytes(Arc::from(&b""[..]))).is_err());
    }
}
