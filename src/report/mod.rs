//! Reports: a definition (the package's `reports`, or an ad hoc one from the report
//! builder) becomes aggregated SQL over the rows the caller may read, with their
//! field masks; the built-in kinds (funnel, forecast, pivot, period comparison) shape
//! the result; [`export`] writes it as CSV or XLSX; [`saved`] keeps reports saved
//! from the builder; [`service`] is the gate.

pub mod export;
pub mod query;
pub mod run;
pub mod saved;
pub mod service;

pub use run::{Column, Output};
