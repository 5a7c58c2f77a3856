//! The metadata language: the package model, its validation, expressions, filter
//! trees, and the diff between two packages as an ordered plan.

pub mod expr;
pub mod model;
pub mod template;
pub mod validate;

pub use model::*;
pub use validate::{Problem, parse_package, report_problems, validate};
