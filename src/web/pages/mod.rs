//! The page handlers, one module per area.

pub mod automation;
pub mod designer;
pub mod login;
pub mod records;
pub mod reports;
pub mod search;
pub mod work;
