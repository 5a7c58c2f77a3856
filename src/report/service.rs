//! The gate for reports and dashboards: who may run which report (its `roles`, or
//! anyone who may read its entity when it names none; administrators and designers
//! always), and with which reach — the caller's read scope and field masks on the
//! source, and on every entity a reference leads to.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::auth::Context;
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::{Error, Result};
use crate::meta::{Action, Dashboard, FieldType, Problem, Report, report_problems};
use crate::report::query::Reach;
use crate::report::run::{self, Output};
use crate::report::saved::{self, SavedReport};

async fn may_run(ctx: &Context, report: &Report) -> bool {
    let policy = ctx.tenant.policy().await;
    ctx.user.is_admin
        || policy.is_designer(ctx.user.id)
        || report.roles.is_empty()
        || policy.may_run_report(ctx.user.id, &report.key)
}

async fn may_view(ctx: &Context, dashboard: &Dashboard) -> bool {
    let policy = ctx.tenant.policy().await;
    ctx.user.is_admin
        || policy.is_designer(ctx.user.id)
        || dashboard.roles.is_empty()
        || policy.may_view_dashboard(ctx.user.id, &dashboard.key)
}

/// Whether a report saved from the builder is this user's to see and run: theirs,
/// shared with one of their roles, or any for administrators and designers.
async fn may_see(ctx: &Context, saved: &SavedReport) -> bool {
    saved.owner == ctx.user.id
        || ctx.user.is_admin
        || ctx.tenant.policy().await.is_designer(ctx.user.id)
        || saved
            .report
            .roles
            .iter()
            .any(|r| ctx.user.roles.contains(r))
}

/// The reports this user may run — the package's, then those saved from the builder
/// that are theirs or shared with them: `{key, label, entity, kind, chart}`, plus
/// `saved` and `owner` for the latter.
pub async fn list(ctx: &Context, catalog: &Catalog) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    for report in &catalog.package.reports {
        if readable(ctx, catalog, report).await && may_run(ctx, report).await {
            items.push(summary(report));
        }
    }
    for saved in saved::list(&ctx.tenant.db).await? {
        if readable(ctx, catalog, &saved.report).await && may_see(ctx, &saved).await {
            let mut item = summary(&saved.report);
            item["saved"] = json!(true);
            item["owner"] = json!(saved.owner);
            items.push(item);
        }
    }
    Ok(items)
}

async fn readable(ctx: &Context, catalog: &Catalog, report: &Report) -> bool {
    match catalog.entity(&report.entity) {
        Some(entity) => ctx.authorize(entity, Action::Read).await.is_ok(),
        None => false,
    }
}

fn summary(report: &Report) -> Value {
    json!({
        "key": report.key,
        "label": report.label.as_deref().unwrap_or(&report.key),
        "entity": report.entity,
        "kind": report.kind.unwrap_or(crate::meta::ReportKind::Table).as_str(),
        "chart": report.chart,
    })
}

/// A report the user may run by key — the package's, or one saved from the builder
/// (checked again against today's metadata: fields may have changed since) — or 404
/// / 403.
pub async fn saved(ctx: &Context, catalog: &Catalog, key: &str) -> Result<Report> {
    if let Some(report) = catalog.package.reports.iter().find(|r| r.key == key) {
        if !may_run(ctx, report).await {
            return Err(Error::Forbidden(format!(
                "your roles may not run the report {:?}",
                report.label.as_deref().unwrap_or(key)
            )));
        }
        return Ok(report.clone());
    }
    let not_found = || Error::NotFound(format!("report {key:?} not found"));
    let found = saved::get(&ctx.tenant.db, key)
        .await?
        .ok_or_else(not_found)?;
    if !may_see(ctx, &found).await {
        return Err(not_found());
    }
    let problems = report_problems(&catalog.package, &found.report);
    if !problems.is_empty() {
        return Err(Error::InvalidPackage(problems));
    }
    Ok(found.report)
}

/// Saves a report from the builder as the caller's (`roles`: whom it is shared with).
/// Its key must be free among the package's reports and the saved ones.
pub async fn save(ctx: &Context, catalog: &Catalog, body: Value) -> Result<Report> {
    let report = parse_adhoc(catalog, body)?;
    check_key(catalog, &report.key)?;
    let entity = ctx.entity(catalog, &report.entity)?;
    ctx.authorize(entity, Action::Read).await?;
    saved::insert(&ctx.tenant.db, &report, ctx.user.id).await?;
    Ok(report)
}

/// Replaces a saved report: its owner's or an administrator's to change.
pub async fn replace(
    ctx: &Context,
    catalog: &Catalog,
    key: &str,
    mut body: Value,
) -> Result<Report> {
    if let Value::Object(map) = &mut body {
        map.insert("key".into(), json!(key));
    }
    let report = parse_adhoc(catalog, body)?;
    owned(ctx, key).await?;
    let entity = ctx.entity(catalog, &report.entity)?;
    ctx.authorize(entity, Action::Read).await?;
    saved::update(&ctx.tenant.db, &report).await?;
    Ok(report)
}

pub async fn remove(ctx: &Context, key: &str) -> Result<()> {
    owned(ctx, key).await?;
    saved::delete(&ctx.tenant.db, key).await
}

/// A saved report the caller may change (404 when they cannot see it at all).
async fn owned(ctx: &Context, key: &str) -> Result<SavedReport> {
    let not_found = || Error::NotFound(format!("saved report {key:?} not found"));
    let found = saved::get(&ctx.tenant.db, key)
        .await?
        .ok_or_else(not_found)?;
    if found.owner == ctx.user.id || ctx.user.is_admin {
        return Ok(found);
    }
    if may_see(ctx, &found).await {
        return Err(Error::Forbidden(
            "only its owner may change a saved report".into(),
        ));
    }
    Err(not_found())
}

fn check_key(catalog: &Catalog, key: &str) -> Result<()> {
    let valid = key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(Error::InvalidPackage(vec![Problem {
            path: "report.key".into(),
            message: "a saved report needs a key: lowercase letters, digits and _, starting with a letter".into(),
        }]));
    }
    if catalog.package.reports.iter().any(|r| r.key == key) {
        return Err(Error::Conflict(format!(
            "the package has a report with the key {key:?}"
        )));
    }
    Ok(())
}

/// An ad hoc definition from the report builder, checked like a published one
/// (problems answer 422 with their paths, from `report`).
pub fn parse_adhoc(catalog: &Catalog, mut body: Value) -> Result<Report> {
    if let Value::Object(map) = &mut body {
        map.entry("key").or_insert(json!(""));
    }
    let report: Report = serde_path_to_error::deserialize(body).map_err(|err| {
        Error::InvalidPackage(vec![Problem {
            path: format!("report.{}", err.path()),
            message: err.into_inner().to_string(),
        }])
    })?;
    let problems = report_problems(&catalog.package, &report);
    if !problems.is_empty() {
        return Err(Error::InvalidPackage(problems));
    }
    Ok(report)
}

/// Runs a report as this user: their rows, their field masks, here and through
/// references.
pub async fn run(ctx: &Context, catalog: &Catalog, report: &Report) -> Result<Output> {
    let entity = ctx.entity(catalog, &report.entity)?;
    let source = ctx.authorize(entity, Action::Read).await?;
    let mut targets = BTreeMap::new();
    for target in referenced(catalog, entity, report) {
        if let Ok(access) = ctx.authorize(target, Action::Read).await {
            targets.insert(target.def.key.clone(), access);
        }
    }
    let reach = Reach {
        source: &source,
        targets: &targets,
    };
    run::run(&ctx.tenant.db, catalog, entity, report, &reach).await
}

/// The entities a report reaches through reference fields (to group by their
/// columns, or to title the referenced records).
fn referenced<'c>(
    catalog: &'c Catalog,
    entity: &EntityCatalog,
    report: &Report,
) -> Vec<&'c EntityCatalog> {
    let columns = report
        .group_by
        .iter()
        .map(|g| g.field.as_str())
        .chain(report.measures.iter().filter_map(|m| m.field.as_deref()));
    let mut targets: Vec<&EntityCatalog> = Vec::new();
    for column in columns {
        let reference = column.split_once('.').map_or(column, |(r, _)| r);
        let target = entity
            .field(reference)
            .filter(|f| f.field_type == FieldType::Reference)
            .and_then(|f| f.target.as_deref())
            .and_then(|t| catalog.entity(t));
        if let Some(target) = target
            && !targets.iter().any(|t| t.def.key == target.def.key)
        {
            targets.push(target);
        }
    }
    targets
}

/// The dashboards this user may view: `{key, label, reports}`.
pub async fn dashboards(ctx: &Context, catalog: &Catalog) -> Vec<Value> {
    let mut items = Vec::new();
    for dashboard in &catalog.package.dashboards {
        if may_view(ctx, dashboard).await {
            items.push(json!({
                "key": dashboard.key,
                "label": dashboard.label.as_deref().unwrap_or(&dashboard.key),
                "reports": dashboard.reports,
            }));
        }
    }
    items
}

/// A dashboard with each of its reports run for this user, in order. A report the
/// user may not run, or that fails, carries its error instead of a result, so one
/// panel never blanks the page.
pub async fn dashboard(ctx: &Context, catalog: &Catalog, key: &str) -> Result<Value> {
    let dashboard = catalog
        .package
        .dashboards
        .iter()
        .find(|d| d.key == key)
        .ok_or_else(|| Error::NotFound(format!("dashboard {key:?} not found")))?;
    if !may_view(ctx, dashboard).await {
        return Err(Error::Forbidden(format!(
            "your roles may not view the dashboard {:?}",
            dashboard.label.as_deref().unwrap_or(key)
        )));
    }
    let mut panels = Vec::new();
    for report_key in &dashboard.reports {
        let outcome = match saved(ctx, catalog, report_key).await {
            Ok(report) => run(ctx, catalog, &report).await,
            Err(error) => Err(error),
        };
        panels.push(match outcome {
            Ok(output) => json!({"key": report_key, "result": output.to_json()}),
            Err(error) => json!({
                "key": report_key,
                "error": {"code": error.code(), "message": error.to_string()},
            }),
        });
    }
    Ok(json!({
        "key": dashboard.key,
        "label": dashboard.label.as_deref().unwrap_or(&dashboard.key),
        "reports": panels,
    }))
}
