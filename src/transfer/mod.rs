//! Bulk data in and out of an entity: spreadsheet import (read, coerce, write in
//! resumable batches) and export of filtered lists.

pub mod coerce;
pub mod export;
pub mod import;
pub mod jobs;
pub mod sheet;
