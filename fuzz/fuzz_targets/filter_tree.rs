//! A filter tree (`{"and": [...]}`, `{"field", "op", "value"}`, …) as bytes: UTF-8 →
//! JSON → `store::filter::condition` against a fixed entity with a field of every
//! type and a pipeline, then the SQL text for SQLite and PostgreSQL. Errors (bad
//! requests) are expected; a panic is a bug.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use metacrm::auth::Access;
use metacrm::catalog::Catalog;
use metacrm::meta;
use metacrm::store::plan::Archive;
use metacrm::store::filter::{FilterContext, condition};
use sea_orm::sea_query::{Alias, Asterisk, PostgresQueryBuilder, Query, SqliteQueryBuilder};
use serde_json::json;

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let package = json!({"format": 1, "entities": [
        {"key": "customer", "label": "客户", "title_field": "name",
         "pipeline": {"stages": [
             {"key": "lead", "probability": 10},
             {"key": "won", "probability": 100, "won": true},
             {"key": "lost", "probability": 0, "lost": true}
         ], "transitions": "forward"},
         "fields": [
            {"key": "name", "type": "text", "required": true, "max_length": 50},
            {"key": "notes", "type": "long_text"},
            {"key": "employees", "type": "integer", "min": 0, "max": 100000},
            {"key": "revenue", "type": "decimal", "scale": 2, "min": 0},
            {"key": "active", "type": "boolean"},
            {"key": "signed_on", "type": "date"},
            {"key": "last_contact", "type": "datetime"},
            {"key": "category", "type": "select",
             "options": [{"value": "intent"}, {"value": "nurture"}]},
            {"key": "tags", "type": "multi_select", "options": [{"value": "a"}, {"value": "b"}]},
            {"key": "parent", "type": "reference", "target": "customer"},
            {"key": "rep", "type": "user"},
            {"key": "email", "type": "email"},
            {"key": "phone", "type": "phone"},
            {"key": "website", "type": "url"},
            {"key": "files", "type": "attachment"},
            {"key": "code", "type": "auto_number", "format": "C{0000}"},
            {"key": "secret", "type": "text"}
        ]}
    ]});
    let package = meta::parse_package(&package).expect("the fixed package is valid");
    Catalog::compile(1, package, Archive::default()).expect("the fixed package compiles")
});

/// The platform's access, and one with a hidden field (a masked field is not filterable).
static ACCESS: LazyLock<[Access; 2]> = LazyLock::new(|| {
    let mut masked = Access::system();
    masked.hidden_fields.insert("secret".to_string());
    [Access::system(), masked]
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let entity = CATALOG.entity("customer").expect("customer");
    for access in ACCESS.iter() {
        let ctx = FilterContext::for_access(access);
        let Ok(cond) = condition(entity, &filter, &ctx) else {
            continue;
        };
        let mut select = Query::select();
        select
            .column(Asterisk)
            .from(Alias::new("customer"))
            .cond_where(cond);
        let _ = select.to_string(SqliteQueryBuilder);
        let _ = select.to_string(PostgresQueryBuilder);
    }
});
