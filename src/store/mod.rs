//! The database: connections and tenant namespaces, the mapping of metadata onto
//! tables, plans, record SQL, filters, and the audit trail and outbox.

pub mod db;
pub mod files;
pub mod filter;
pub mod journal;
pub mod locks;
pub mod plan;
pub mod records;
pub mod schema;
pub mod titles;
pub mod value;
pub mod views;
