//! The integration suite: one test binary (linking the crate once instead of once per
//! file keeps the CI build small and fast), one module per capability. Every test
//! starts its own server over a real database chosen by `METACRM_TEST_DATABASE`.

mod common;

mod backup;
mod browser;
mod cli;
mod cluster;
mod convert;
mod files;
mod followups;
mod hooks;
mod import;
mod isolation;
mod metadata;
mod observe;
mod permissions;
mod plugins;
mod print;
mod records;
mod reports;
mod schedules;
mod scope_property;
mod search;
mod templates;
mod web;
mod webhooks;
mod workflow;
