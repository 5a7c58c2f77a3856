//! metacrm: a low-code CRM runtime. Metadata in; tables, forms, permissions, search
//! and reports out. `docs/` and the design describe the architecture.

pub mod api;
pub mod auth;
pub mod backup;
pub mod catalog;
pub mod clock;
pub mod cluster;
pub mod demo_data;
pub mod error;
pub mod meta;
pub mod observe;
pub mod plugin;
pub mod print;
pub mod report;
pub mod search;
pub mod store;
pub mod templates;
pub mod tenant;
pub mod transfer;
pub mod web;
pub mod workflow;
