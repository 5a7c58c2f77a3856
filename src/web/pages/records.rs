//! Record pages: the list (and the public pool), the record with its stage bar and
//! timeline, and the generated create/edit forms. Each reads through the same
//! modules and the same gate as the API; writes go from the page's JavaScript to the
//! API.

use std::collections::BTreeSet;

use poem::http::StatusCode;
use poem::web::{Form, Path, Query, Redirect};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::{Access, Context};
use crate::catalog::{Catalog, EntityCatalog, form_model};
use crate::error::{Error, Result};
use crate::meta::{Action, Field, FieldType};
use crate::store::journal;
use crate::store::records::{QueryRequest, Records, SortSpec};
use crate::store::schema;
use crate::web::display::{Display, flow_label, short_datetime};
use crate::web::i18n::{field_message, text};
use crate::web::page::{Viewer, error_page};
use crate::workflow::approvals::Engine;
use crate::workflow::convert::{self, ConvertOptions};
use crate::workflow::{pool, shares, stages};

/// Rows on one page of a list.
const PAGE_ROWS: u64 = 50;

/// Columns a list shows when the user chose none: the title, then the first fields
/// of the form, up to this many in all.
const DEFAULT_COLUMNS: usize = 6;

/// The query string of a list page, as `(name, value)` pairs in order.
type Params = Vec<(String, String)>;

fn param<'p>(params: &'p Params, name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// How a field is filtered on a list page.
fn filter_kind(field: &Field) -> Option<&'static str> {
    Some(match field.field_type {
        FieldType::Select | FieldType::MultiSelect => "choice",
        FieldType::Boolean => "boolean",
        FieldType::User => "user",
        FieldType::Date | FieldType::Datetime => "date_range",
        FieldType::Integer | FieldType::Decimal => "number_range",
        FieldType::Reference => "reference",
        FieldType::Attachment => return None,
        _ => "text",
    })
}

/// The filter tree of a list page's query string: `q` searches the title, `f.KEY`
/// compares a field as its type suggests (`me` for the user), `f.KEY.from` and
/// `f.KEY.to` bound ranges.
fn list_filter(entity: &EntityCatalog, params: &Params, hidden: &BTreeSet<String>) -> Value {
    let mut all = Vec::new();
    if let (Some(q), Some(title)) = (param(params, "q"), entity.def.title_field.as_deref()) {
        all.push(json!({"field": title, "op": "contains", "value": q}));
    }
    let user_value = |v: &str| {
        if v == "me" {
            json!({"user": "me"})
        } else {
            json!(v)
        }
    };
    for (name, value) in params.iter().filter(|(_, v)| !v.is_empty()) {
        let Some(rest) = name.strip_prefix("f.") else {
            continue;
        };
        let (key, bound) = match rest.rsplit_once('.') {
            Some((key, bound @ ("from" | "to"))) => (key, Some(bound)),
            _ => (rest, None),
        };
        let Some(field) = entity.column(key) else {
            continue;
        };
        if hidden.contains(key) {
            continue;
        }
        let node = match (bound, field.field_type) {
            (Some("from"), _) => json!({"field": key, "op": "gte", "value": value}),
            (Some(_), _) => json!({"field": key, "op": "lte", "value": value}),
            (None, FieldType::MultiSelect) => {
                json!({"field": key, "op": "contains", "value": value})
            }
            (None, FieldType::Boolean) => {
                json!({"field": key, "op": "eq", "value": value == "true"})
            }
            (None, FieldType::User) => {
                json!({"field": key, "op": "eq", "value": user_value(value)})
            }
            // The filter converts the text as a write would: a bad value is its 400.
            (
                None,
                FieldType::Select | FieldType::Reference | FieldType::Integer | FieldType::Decimal,
            ) => json!({"field": key, "op": "eq", "value": value}),
            (None, _) => json!({"field": key, "op": "contains", "value": value}),
        };
        all.push(node);
    }
    json!({"and": all})
}

/// The fields of the entity the viewer may see, in form order.
fn visible_fields<'e>(entity: &'e EntityCatalog, access: &Access) -> Vec<&'e Field> {
    let mut ordered: Vec<&Field> = Vec::new();
    if let Some(layout) = &entity.def.layout {
        for key in layout.sections.iter().flat_map(|s| s.fields.iter()) {
            if let Some(field) = entity.field(key)
                && !ordered.iter().any(|f| f.key == field.key)
            {
                ordered.push(field);
            }
        }
    }
    for field in &entity.def.fields {
        if !ordered.iter().any(|f| f.key == field.key) {
            ordered.push(field);
        }
    }
    ordered.retain(|f| !access.hidden_fields.contains(&f.key));
    ordered
}

fn with_params(path: &str, params: &Params, set: &[(&str, Option<&str>)]) -> String {
    let mut kept: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| !set.iter().any(|(s, _)| s == k))
        .cloned()
        .collect();
    for (name, value) in set {
        if let Some(value) = value {
            kept.push((name.to_string(), value.to_string()));
        }
    }
    match serde_urlencoded::to_string(&kept) {
        Ok(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_string(),
    }
}

/// A list page: `/e/{entity}` (`in_pool` false) or `/pool/{entity}`.
async fn list_page(
    viewer: &Viewer,
    entity_key: &str,
    params: &Params,
    in_pool: bool,
) -> Result<Response> {
    let ctx = &viewer.ctx;
    let catalog = ctx.tenant.catalog().await;
    let entity = ctx.entity(&catalog, entity_key)?;
    let access = if in_pool {
        pool::pool_access(ctx, entity).await?
    } else {
        ctx.authorize(entity, Action::Read).await?
    };
    let fields = visible_fields(entity, &access);
    let chosen: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "col")
        .map(|(_, v)| v.as_str())
        .collect();
    let mut columns: Vec<&Field> = if chosen.is_empty() {
        let title = entity.def.title_field.as_deref();
        let mut columns: Vec<&Field> = fields
            .iter()
            .filter(|f| Some(f.key.as_str()) == title)
            .copied()
            .collect();
        columns.extend(
            fields
                .iter()
                .filter(|f| Some(f.key.as_str()) != title && f.field_type != FieldType::LongText)
                .copied(),
        );
        columns.truncate(DEFAULT_COLUMNS);
        columns
    } else {
        chosen
            .iter()
            .filter_map(|key| fields.iter().find(|f| f.key == *key).copied())
            .collect()
    };
    if columns.is_empty() {
        columns = fields.iter().take(DEFAULT_COLUMNS).copied().collect();
    }
    // Newest first by default: the primary key is indexed on every table, so the
    // first page costs the same on a million rows as on a hundred.
    let sort = param(params, "sort").unwrap_or("-id").to_string();
    let filter = list_filter(entity, params, &access.hidden_fields);
    // The same list as a file, for those who may export it.
    let export_query = match ctx.authorize(entity, Action::Export).await {
        Ok(_) => {
            serde_urlencoded::to_string([("filter", filter.to_string()), ("sort", sort.clone())])
                .ok()
        }
        Err(_) => None,
    };
    let request = QueryRequest {
        filter: Some(filter),
        sort: if sort.trim_start_matches('-') == schema::ID {
            vec![SortSpec::Key(sort.clone())]
        } else {
            vec![SortSpec::Key(sort.clone()), SortSpec::Key("-id".into())]
        },
        limit: Some(PAGE_ROWS),
        after: param(params, "after").map(String::from),
    };
    let page = Records::new(&ctx.tenant.db, &catalog, entity)
        .query(&request, &access)
        .await?;
    // The records the reference filters name, for their pickers' titles.
    let references: Vec<&Field> = fields
        .iter()
        .filter(|f| f.field_type == FieldType::Reference)
        .copied()
        .collect();
    let filtered = Value::Object(
        references
            .iter()
            .filter_map(|f| {
                let id = param(params, &format!("f.{}", f.key))?
                    .parse::<i64>()
                    .ok()?;
                Some((f.key.clone(), json!(id)))
            })
            .collect(),
    );
    let mut mentioned_fields = columns.clone();
    mentioned_fields.extend(
        references
            .iter()
            .filter(|r| !columns.iter().any(|c| c.key == r.key)),
    );
    let mentioned: Vec<&Value> = page.items.iter().chain([&filtered]).collect();
    let display = Display::load(ctx, &catalog, viewer.lang, &mentioned_fields, &mentioned).await?;
    let base = if in_pool {
        format!("/pool/{}", entity.def.key)
    } else {
        format!("/e/{}", entity.def.key)
    };
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|record| {
            let id = record[schema::ID].as_i64().unwrap_or_default();
            let cells: Vec<Value> = columns
                .iter()
                .map(|f| display.cell(f, record.get(&f.key)))
                .collect();
            json!({
                "id": id,
                "href": format!("/e/{}/{id}", entity.def.key),
                "cells": cells,
                "system": display.system(entity, record),
            })
        })
        .collect();
    let (sort_key, sort_desc) = match sort.strip_prefix('-') {
        Some(key) => (key.to_string(), true),
        None => (sort.clone(), false),
    };
    let column_json: Vec<Value> = columns
        .iter()
        .map(|f| {
            let flip = if sort_key == f.key && !sort_desc {
                format!("-{}", f.key)
            } else {
                f.key.clone()
            };
            json!({
                "key": f.key,
                "label": f.label(),
                "sorted": (sort_key == f.key).then_some(if sort_desc { "desc" } else { "asc" }),
                "sort_href": with_params(&base, params, &[("sort", Some(&flip)), ("after", None)]),
            })
        })
        .collect();
    let filters: Vec<Value> = fields
        .iter()
        .filter_map(|f| {
            let kind = filter_kind(f)?;
            Some(json!({
                "key": f.key,
                "label": f.label(),
                "kind": kind,
                "target": f.target,
                "title": (kind == "reference").then(|| display.cell(f, filtered.get(&f.key))["text"].clone()),
                "options": f.options.iter().map(|o| json!({"value": o.value, "label": o.label()})).collect::<Vec<_>>(),
                "value": param(params, &format!("f.{}", f.key)),
                "from": param(params, &format!("f.{}.from", f.key)),
                "to": param(params, &format!("f.{}.to", f.key)),
            }))
        })
        .collect();
    let stages: Vec<Value> = entity
        .def
        .pipeline
        .iter()
        .flat_map(|p| p.stages.iter())
        .map(|s| json!({"key": s.key, "label": s.label()}))
        .collect();
    let can_create = !in_pool && ctx.authorize(entity, Action::Create).await.is_ok();
    let can_assign = !in_pool && ctx.authorize(entity, Action::Assign).await.is_ok();
    let people = if can_assign {
        display.choosable()
    } else {
        Vec::new()
    };
    viewer
        .page(
            "list.html",
            json!({
                "entity": {"key": entity.def.key, "label": entity.def.label(), "has_pool": entity.def.pool.is_some(), "has_stage": entity.has_pipeline()},
                "in_pool": in_pool,
                "base": base,
                "columns": column_json,
                "all_fields": fields.iter().map(|f| json!({"key": f.key, "label": f.label(), "shown": columns.iter().any(|c| c.key == f.key)})).collect::<Vec<_>>(),
                "rows": rows,
                "filters": filters,
                "stages": stages,
                "q": param(params, "q"),
                "stage_filter": param(params, "f.stage"),
                "owner_filter": param(params, "f.owner"),
                "sort": sort,
                "next_href": page.next.as_deref().map(|next| with_params(&base, params, &[("after", Some(next))])),
                "first_href": param(params, "after").map(|_| with_params(&base, params, &[("after", None)])),
                "can_create": can_create,
                "can_assign": can_assign,
                "can_import": ctx.authorize(entity, Action::Import).await.is_ok() && !in_pool,
                "export_query": export_query,
                "people": people,
                "query": serde_urlencoded::to_string(params.iter().filter(|(k, _)| k != "after").collect::<Vec<_>>()).unwrap_or_default(),
            }),
        )
        .await
}

#[handler]
pub async fn list(
    viewer: Viewer,
    Path(entity): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    viewer
        .respond(list_page(&viewer, &entity, &params, false).await)
        .await
}

#[handler]
pub async fn pool_list(
    viewer: Viewer,
    Path(entity): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    viewer
        .respond(list_page(&viewer, &entity, &params, true).await)
        .await
}

/// The record page: fields by layout, the stage bar with the moves this user may
/// make, actions, and the timeline. `action_error` is the failure of an action posted
/// from the page (a conversion), shown where the page shows its actions' errors and
/// answered with its status.
async fn record_page(
    viewer: &Viewer,
    entity_key: &str,
    id: i64,
    action_error: Option<&Error>,
) -> Result<Response> {
    let ctx = &viewer.ctx;
    let catalog = ctx.tenant.catalog().await;
    let entity = ctx.entity(&catalog, entity_key)?;
    let access = ctx.authorize(entity, Action::Read).await?;
    let records = Records::new(&ctx.tenant.db, &catalog, entity);
    let record = records.get(id, &access).await?;
    let history = records.history(id, &access).await?;
    let fields = visible_fields(entity, &access);
    // The record and every before/after value of its changes, so the timeline shows
    // names and titles too.
    let mut mentioned = vec![record.clone()];
    for changes in history.iter().filter_map(|e| e["changes"].as_object()) {
        for side in 0..2 {
            let values: Map<String, Value> = changes
                .iter()
                .map(|(key, pair)| (key.clone(), pair[side].clone()))
                .collect();
            mentioned.push(Value::Object(values));
        }
    }
    let mentioned: Vec<&Value> = mentioned.iter().collect();
    let display = Display::load(ctx, &catalog, viewer.lang, &fields, &mentioned).await?;
    let form = form_model(entity, &ctx.form_access(entity).await?);
    let sections: Vec<Value> = form["sections"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|section| {
            let cells: Vec<Value> = section["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| entity.field(f["key"].as_str()?))
                .map(|f| {
                    let value = match f.field_type {
                        FieldType::Attachment => display.attachments(&entity.def.key, id, record.get(&f.key)),
                        _ => display.cell(f, record.get(&f.key)),
                    };
                    json!({"label": f.label(), "key": f.key, "value": value, "long": f.field_type == FieldType::LongText})
                })
                .collect();
            json!({"label": section["label"], "columns": section["columns"], "cells": cells})
        })
        .collect();
    let stage_bar = match (&entity.def.pipeline, record[schema::STAGE].as_str()) {
        (Some(pipeline), Some(current)) => {
            let may_update = ctx.authorize(entity, Action::Update).await.is_ok();
            let position = pipeline.stages.iter().position(|s| s.key == current);
            pipeline
                .stages
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let allowed = may_update
                        && s.key != current
                        && stages::check_transition(pipeline, current, &s.key, &ctx.user).is_ok();
                    json!({
                        "key": s.key,
                        "label": s.label(),
                        "current": s.key == current,
                        "done": position.is_some_and(|p| i < p) && !s.lost,
                        "lost": s.lost,
                        "won": s.won,
                        "allowed": allowed,
                    })
                })
                .collect::<Vec<_>>()
        }
        _ => Vec::new(),
    };
    let change_entries: Vec<Value> = history
        .iter()
        .map(|entry| {
            let changes: Vec<Value> = entry["changes"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, pair)| match entity.column(key) {
                    Some(field) => json!({
                        "label": display.label(field),
                        "from": display.cell(field, pair.get(0)),
                        "to": display.cell(field, pair.get(1)),
                    }),
                    None => json!({"label": key, "from": {"text": pair[0].to_string()}, "to": {"text": pair[1].to_string()}}),
                })
                .collect();
            json!({
                "at": short_datetime(entry["at"].as_str().unwrap_or_default()),
                "sort_at": entry["at"],
                "kind": "change",
                "action": entry["action"],
                "user": display.person(entry["user"].as_i64()),
                "changes": changes,
            })
        })
        .collect();
    let stage_label = |key: &'_ str| {
        entity
            .def
            .pipeline
            .as_ref()
            .map_or(key.to_string(), |p| p.stage_label(key).to_string())
    };
    let stage_entries: Vec<Value> = journal::stage_history(&ctx.tenant.db, &entity.def.key, id)
        .await?
        .iter()
        .map(|s| {
            json!({
                "stage": stage_label(s["stage"].as_str().unwrap_or_default()),
                "at": short_datetime(s["entered_at"].as_str().unwrap_or_default()),
                "by": display.person(s["by"].as_i64()),
                "days": s["seconds"].as_i64().unwrap_or_default() / 86_400,
            })
        })
        .collect();
    let engine = Engine::new(&ctx.tenant.db, &catalog);
    let approvals: Vec<Value> = engine
        .for_record(&entity.def.key, id)
        .await?
        .iter()
        .map(|a| {
            json!({
                "id": a["id"],
                "flow": flow_label(&catalog, a["flow"].as_str().unwrap_or_default()),
                "status": a["status"],
                "submitter": display.person(a["submitter"].as_i64()),
                "submitted_at": short_datetime(a["submitted_at"].as_str().unwrap_or_default()),
                "events": a["events"].as_array().into_iter().flatten().map(|e| json!({
                    "at": short_datetime(e["at"].as_str().unwrap_or_default()),
                    "user": display.person(e["user"].as_i64()),
                    "action": e["action"],
                    "step": e["step"],
                    "comment": e["comment"],
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let share_entries: Vec<Value> = shares::for_record(&ctx.tenant.db, &entity.def.key, id)
        .await?
        .iter()
        .map(|s| {
            json!({
                "by": display.person(s["shared_by"].as_i64()),
                "at": short_datetime(s["at"].as_str().unwrap_or_default()),
                "note": s["note"],
                "to": s["recipients"]["to"].as_array().into_iter().flatten().map(|u| display.person(u.as_i64())).collect::<Vec<_>>(),
                "cc": s["recipients"]["cc"].as_array().into_iter().flatten().map(|u| display.person(u.as_i64())).collect::<Vec<_>>(),
            })
        })
        .collect();
    let flows: Vec<Value> = catalog
        .package
        .flows
        .iter()
        .filter(|f| f.entity == entity.def.key)
        .map(|f| json!({"key": f.key, "label": f.label()}))
        .collect();
    let related = related_lists(ctx, &catalog, &display, entity, id).await?;
    let locked = approvals.iter().any(|a| a["status"] == "pending");
    let can_edit = ctx.authorize(entity, Action::Update).await.is_ok() && !locked;
    // The conversions whose condition holds, for a user who may update the record and
    // create every record they make.
    let mut conversions = Vec::new();
    if can_edit {
        for conversion in convert::available(entity, &record) {
            let mut allowed = true;
            for target in &conversion.creates {
                allowed &= match catalog.entity(&target.entity) {
                    Some(target) => ctx.authorize(target, Action::Create).await.is_ok(),
                    None => false,
                };
            }
            if allowed {
                conversions.push(json!({"key": conversion.key, "label": conversion.label()}));
            }
        }
    }
    let mut response = viewer
        .page(
            "record.html",
            json!({
                "entity": {"key": entity.def.key, "label": entity.def.label()},
                "id": id,
                "version": record[schema::VERSION],
                "title": entity.title_of(&record),
                "sections": sections,
                "system": display.system(entity, &record),
                "stage_bar": stage_bar,
                "changes": change_entries,
                "stages": stage_entries,
                "approvals": approvals,
                "shares": share_entries,
                "flows": flows,
                "prints": entity.def.prints.iter().map(|p| json!({"key": p.key, "label": p.label()}))
                    .chain([json!({"key": crate::print::DEFAULT, "label": crate::web::i18n::text(viewer.lang, "print_default")})])
                    .collect::<Vec<_>>(),
                "related": related,
                "locked": locked,
                "can_edit": can_edit,
                "conversions": conversions,
                "action_error": action_error.map(|e| action_error_text(viewer, e)),
            }),
        )
        .await?;
    if let Some(error) = action_error {
        response.set_status(
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        );
    }
    Ok(response)
}

/// An action's failure as the record page shows it: the message, then each field's
/// problem (`customer.region: 必填`), in the page's language.
fn action_error_text(viewer: &Viewer, error: &Error) -> String {
    let fields = match error {
        Error::Validation(errors) | Error::ForbiddenFields(errors) => errors.as_slice(),
        _ => &[],
    };
    let message = match error {
        Error::Database(_) | Error::Internal(_) => text(viewer.lang, "error"),
        Error::Validation(_) => text(viewer.lang, "convert_failed"),
        other => other.to_string(),
    };
    if fields.is_empty() {
        return message;
    }
    let details: Vec<String> = fields
        .iter()
        .map(|e| format!("{}: {}", e.field, field_message(viewer.lang, &e.message)))
        .collect();
    format!("{message}: {}", details.join("; "))
}

/// Records shown per related list on a record page.
const RELATED_ROWS: u64 = 10;

/// The records elsewhere that point at this one (contacts of a customer, its deals,
/// its follow-up activities), newest first, for each entity the viewer may read —
/// with links to all of them and to a new one already pointing here.
async fn related_lists(
    ctx: &Context,
    catalog: &Catalog,
    display: &Display,
    entity: &EntityCatalog,
    id: i64,
) -> Result<Vec<Value>> {
    let activity = entity
        .def
        .followup
        .as_ref()
        .and_then(|f| f.activity.as_ref());
    let mut lists = Vec::new();
    for (other_key, field_key) in &entity.referenced_by {
        let Some(other) = catalog.entity(other_key) else {
            continue;
        };
        let Ok(access) = ctx.authorize(other, Action::Read).await else {
            continue;
        };
        if access.hidden_fields.contains(field_key) {
            continue;
        }
        let request = QueryRequest {
            filter: Some(json!({"field": field_key, "op": "eq", "value": id})),
            sort: vec![
                SortSpec::Key("-created_at".into()),
                SortSpec::Key("-id".into()),
            ],
            limit: Some(RELATED_ROWS),
            after: None,
        };
        let page = Records::new(&ctx.tenant.db, catalog, other)
            .query(&request, &access)
            .await?;
        let rows: Vec<Value> = page
            .items
            .iter()
            .map(|r| {
                json!({
                    "title": other.title_of(r),
                    "href": format!("/e/{}/{}", other.def.key, r[schema::ID]),
                    "system": display.system(other, r),
                })
            })
            .collect();
        let field_label = other.field(field_key).map(|f| f.label().to_string());
        let may_create = ctx.authorize(other, Action::Create).await.is_ok();
        lists.push(json!({
            "entity": other.def.key,
            "label": other.def.label(),
            "field": field_key,
            "field_label": field_label,
            "followup": activity.is_some_and(|a| a.entity == *other_key && a.field == *field_key),
            "rows": rows,
            "more": page.next.is_some(),
            "all_href": format!("/e/{}?f.{field_key}={id}", other.def.key),
            "new_href": may_create.then(|| format!("/e/{}/new?{field_key}={id}", other.def.key)),
        }));
    }
    Ok(lists)
}

#[handler]
pub async fn record_view(viewer: Viewer, Path((entity, id)): Path<(String, i64)>) -> Response {
    viewer
        .respond(record_page(&viewer, &entity, id, None).await)
        .await
}

/// The form of a record page's conversion button: the session's CSRF token.
#[derive(Deserialize)]
pub struct ConvertForm {
    #[serde(rename = "_csrf")]
    csrf: String,
}

/// `POST /e/{entity}/{id}/convert/{key}` from a record page's conversion button:
/// converts, then shows the first record created. A failure shows on the record page
/// like its other actions' errors; a record the user may not see is the 404 page.
#[handler]
pub async fn convert_record(
    viewer: Viewer,
    Path((entity_key, id, key)): Path<(String, i64, String)>,
    Form(form): Form<ConvertForm>,
) -> Response {
    if !viewer.csrf_matches(&form.csrf) {
        return error_page(
            viewer.lang,
            &Error::Forbidden("the form's CSRF token is not this session's".into()),
        );
    }
    let converted = async {
        let catalog = viewer.ctx.tenant.catalog().await;
        let entity = viewer.ctx.entity(&catalog, &entity_key)?;
        let answer = convert::convert(
            &viewer.ctx,
            &catalog,
            entity,
            id,
            &key,
            &ConvertOptions::default(),
        )
        .await?;
        // The first record created, else the converted record itself.
        let conversion = convert::conversion(entity, &key)?;
        let first = answer["created"].as_object().and_then(|created| {
            let (alias, record) = created.iter().next()?;
            let target = conversion.target(alias)?;
            Some(format!("/e/{}/{}", target.entity, record[schema::ID]))
        });
        Ok::<_, Error>(first.unwrap_or_else(|| format!("/e/{entity_key}/{id}")))
    }
    .await;
    match converted {
        Ok(location) => Redirect::see_other(location).into_response(),
        Err(error @ Error::NotFound(_)) => error_page(viewer.lang, &error),
        Err(error) => {
            viewer
                .respond(record_page(&viewer, &entity_key, id, Some(&error)).await)
                .await
        }
    }
}

/// A generated form: `/e/{entity}/new` (id `None`) or `/e/{entity}/{id}/edit`.
/// A value for a new record's field given in the URL (`/e/contact/new?customer=5`),
/// converted as the field's input expects; anything that does not convert is ignored.
fn prefilled(field: &Field, raw: &str) -> Option<Value> {
    let value = match field.field_type {
        FieldType::Reference | FieldType::User | FieldType::Integer => {
            json!(raw.parse::<i64>().ok()?)
        }
        FieldType::Boolean => json!(raw == "true"),
        FieldType::MultiSelect => json!(raw.split(',').collect::<Vec<_>>()),
        _ => json!(raw),
    };
    crate::store::value::normalize(field, &value).ok()
}

async fn form_page(
    viewer: &Viewer,
    entity_key: &str,
    id: Option<i64>,
    params: &Params,
) -> Result<Response> {
    let ctx = &viewer.ctx;
    let catalog = ctx.tenant.catalog().await;
    let entity = ctx.entity(&catalog, entity_key)?;
    let access = match id {
        None => ctx.authorize(entity, Action::Create).await?,
        Some(_) => ctx.authorize(entity, Action::Update).await?,
    };
    let read = ctx.authorize(entity, Action::Read).await?;
    let record = match id {
        Some(id) => {
            Records::new(&ctx.tenant.db, &catalog, entity)
                .get(id, &read)
                .await?
        }
        None => Value::Null,
    };
    let mut form_access = ctx.form_access(entity).await?;
    form_access.readonly_fields = access.readonly_fields.clone();
    let model = form_model(entity, &form_access);
    let references: Vec<&Field> = entity
        .def
        .fields
        .iter()
        .filter(|f| f.field_type == FieldType::Reference)
        .collect();
    // A new record starts from the values given in the URL, else the defaults.
    let given = Value::Object(
        entity
            .def
            .fields
            .iter()
            .filter_map(|f| Some((f.key.clone(), prefilled(f, param(params, &f.key)?)?)))
            .collect(),
    );
    let shown = if id.is_some() { &record } else { &given };
    let display = Display::load(ctx, &catalog, viewer.lang, &references, &[shown]).await?;
    let mut sections = model["sections"].clone();
    for section in sections.as_array_mut().into_iter().flatten() {
        for spec in section["fields"].as_array_mut().into_iter().flatten() {
            let key = spec["key"].as_str().unwrap_or_default().to_string();
            let value = match shown.get(&key) {
                Some(value) => value.clone(),
                None if id.is_none() => spec
                    .get("default")
                    .cloned()
                    .filter(|d| !d.is_object())
                    .unwrap_or(Value::Null),
                None => Value::Null,
            };
            if let Some(field) = entity.field(&key)
                && field.field_type == FieldType::Reference
            {
                spec["display"] = display.cell(field, Some(&value));
            }
            spec["input"] = input_value(&value);
            spec["value"] = value;
        }
    }
    let people = display.choosable();
    let duplicate_check = entity.def.duplicate_check.is_some();
    viewer
        .page(
            "form.html",
            json!({
                "entity": {"key": entity.def.key, "label": entity.def.label(), "title_field": entity.def.title_field},
                "id": id,
                "version": record.get(schema::VERSION),
                "title": if id.is_some() { entity.title_of(&record) } else { String::new() },
                "sections": sections,
                "people": people,
                "duplicate_check": duplicate_check,
            }),
        )
        .await
}

/// A value as an `<input>` holds it: text, with datetimes in local `YYYY-MM-DDTHH:MM`.
fn input_value(value: &Value) -> Value {
    match value {
        Value::Null => json!(""),
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(at) => json!(
                at.with_timezone(&crate::clock::offset())
                    .format("%Y-%m-%dT%H:%M")
                    .to_string()
            ),
            Err(_) => json!(s),
        },
        Value::Array(_) => value.clone(),
        other => json!(other.to_string()),
    }
}

#[handler]
pub async fn new_form(
    viewer: Viewer,
    Path(entity): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    viewer
        .respond(form_page(&viewer, &entity, None, &params).await)
        .await
}

#[handler]
pub async fn edit_form(viewer: Viewer, Path((entity, id)): Path<(String, i64)>) -> Response {
    viewer
        .respond(form_page(&viewer, &entity, Some(id), &Vec::new()).await)
        .await
}

/// `/e/{entity}/import`: upload a spreadsheet, check it (a dry run listing every row
/// error), then import it as a background job whose progress the page follows.
#[handler]
pub async fn import_page(viewer: Viewer, Path(entity): Path<String>) -> Response {
    viewer.respond(import_form(&viewer, &entity).await).await
}

async fn import_form(viewer: &Viewer, entity_key: &str) -> Result<Response> {
    let ctx = &viewer.ctx;
    let catalog = ctx.tenant.catalog().await;
    let entity = ctx.entity(&catalog, entity_key)?;
    let access = ctx.authorize(entity, Action::Import).await?;
    let writable: Vec<Value> = entity
        .def
        .fields
        .iter()
        .filter(|f| !f.is_computed() && !access.readonly_fields.contains(&f.key))
        .filter(|f| f.field_type != FieldType::Attachment)
        .map(|f| json!({"key": f.key, "label": f.label(), "required": f.required}))
        .collect();
    let keys: Vec<Value> = entity
        .def
        .fields
        .iter()
        .filter(|f| f.unique)
        .map(|f| json!({"key": f.key, "label": f.label()}))
        .collect();
    viewer
        .page(
            "import.html",
            json!({
                "entity": {"key": entity.def.key, "label": entity.def.label()},
                "fields": writable,
                "keys": keys,
                "is_admin": ctx.require_admin().await.is_ok(),
            }),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::with_params;

    #[test]
    fn links_keep_the_other_parameters() {
        let params = vec![
            ("q".to_string(), "华".to_string()),
            ("after".to_string(), "x".to_string()),
        ];
        assert_eq!(
            with_params(
                "/e/customer",
                &params,
                &[("after", None), ("sort", Some("-name"))]
            ),
            "/e/customer?q=%E5%8D%8E&sort=-name"
        );
    }
}
