//! Conversions (线索转化): a record becomes new records of other entities — a lead a
//! customer and its contact — as the entity's `conversions` in the metadata say. One
//! write transaction reads the record, creates each target through the ordinary
//! create path (validation, uniqueness, auto numbers, audit, outbox, triggers), links
//! them, and updates the converted record; any failure leaves nothing behind.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::{Access, Context};
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::{Error, FieldError, Result};
use crate::meta::{Action, Conversion, ConversionTarget};
use crate::store::records::{Records, mask};
use crate::store::{locks, schema};

/// The audit action of everything a conversion writes.
pub const ACTION: &str = "convert";

/// The body of `POST /api/data/{e}/{id}/convert/{key}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertOptions {
    /// Alias → the id of an existing record to link instead of creating one (attach
    /// the contact to a customer that is already there).
    #[serde(default)]
    pub use_existing: BTreeMap<String, i64>,
}

impl ConvertOptions {
    /// Options from a request body; `null` (no body) means none.
    pub fn from_json(body: Value) -> Result<ConvertOptions> {
        if body.is_null() {
            return Ok(ConvertOptions::default());
        }
        serde_json::from_value(body).map_err(|e| Error::BadRequest(format!("convert: {e}")))
    }
}

/// The conversion `key` of the entity, or 404 naming it.
pub fn conversion<'e>(entity: &'e EntityCatalog, key: &str) -> Result<&'e Conversion> {
    entity
        .def
        .conversions
        .iter()
        .find(|c| c.key == key)
        .ok_or_else(|| Error::NotFound(format!("{} has no conversion {key:?}", entity.def.key)))
}

/// Whether the conversion's `when` holds for `record`; a conversion without one always
/// applies, and a condition that cannot be evaluated does not hold.
pub fn applies(conversion: &Conversion, record: &Value) -> Result<bool> {
    let Some(source) = conversion.when.as_deref() else {
        return Ok(true);
    };
    crate::workflow::condition(source, record)
}

/// The conversions of the entity whose condition holds for `record`, in order.
pub fn available<'e>(entity: &'e EntityCatalog, record: &Value) -> Vec<&'e Conversion> {
    entity
        .def
        .conversions
        .iter()
        .filter(|c| applies(c, record).unwrap_or(false))
        .collect()
}

/// What the permission gate grants the caller for one created record.
enum Grant {
    /// A new record, with the caller's create access to its entity.
    Create(Access),
    /// An existing record (`use_existing`), read with the caller's read access.
    Existing(i64, Access),
}

/// `POST /api/data/{e}/{id}/convert/{key}`: converts record `id` of `entity` by its
/// conversion `key` for the caller of `ctx`, in one transaction. The record must be
/// within the caller's update scope (404 otherwise), unlocked and meet the
/// conversion's `when` (409 otherwise); the caller needs the create right on every
/// entity created (403). New records belong to the converted record's owner when the
/// caller may create records for that owner, else to the caller. Errors of a created
/// record name its fields `alias.field`, those of the converted record `source.field`.
/// Answers `{source, created: {alias: record}, existing: {alias: record}}`, masked.
pub async fn convert(
    ctx: &Context,
    catalog: &Catalog,
    entity: &EntityCatalog,
    id: i64,
    key: &str,
    options: &ConvertOptions,
) -> Result<Value> {
    let conversion = conversion(entity, key)?;
    if let Some(unknown) = options
        .use_existing
        .keys()
        .find(|alias| conversion.target(alias).is_none())
    {
        let aliases: Vec<&str> = conversion
            .creates
            .iter()
            .map(|t| t.alias.as_str())
            .collect();
        return Err(Error::BadRequest(format!(
            "use_existing: conversion {key:?} creates no {unknown:?}; it creates {}",
            aliases.join(", ")
        )));
    }
    // The gate first, outside the transaction: update on the record, create on every
    // entity created, read on every record used instead.
    let source_access = ctx.authorize(entity, Action::Update).await?;
    let mut grants = Vec::with_capacity(conversion.creates.len());
    for target in &conversion.creates {
        let target_entity = target_entity(catalog, target)?;
        grants.push(match options.use_existing.get(&target.alias) {
            Some(existing) => {
                Grant::Existing(*existing, ctx.authorize(target_entity, Action::Read).await?)
            }
            None => Grant::Create(ctx.authorize(target_entity, Action::Create).await?),
        });
    }

    let db = &ctx.tenant.db;
    let records = Records::new(db, catalog, entity);
    let txn = db.begin_write().await?;
    let current = records.fetch_in(&txn, id, &source_access).await?;
    let refused = |why: String| {
        Error::Conflict(format!(
            "{} record {id} cannot be converted by {} ({key}): {why}",
            entity.def.key,
            conversion.label()
        ))
    };
    if let Some(reason) = locks::reason_for(&txn, db, &entity.def.key, id).await? {
        return Err(refused(format!("it is locked while {reason}")));
    }
    if !applies(conversion, &current)? {
        let when = conversion.when.as_deref().unwrap_or_default();
        return Err(refused(format!("its condition {when} does not hold")));
    }

    let owner = current[schema::OWNER].as_i64();
    let mut created = Map::new();
    let mut existing = Map::new();
    // The id of every record of the conversion so far by alias, for `$alias`.
    let mut ids: BTreeMap<&str, i64> = BTreeMap::new();
    let mut links = Map::new();
    for (target, grant) in conversion.creates.iter().zip(&grants) {
        let target_entity = target_entity(catalog, target)?;
        let target_records = Records::new(db, catalog, target_entity);
        let record = match grant {
            Grant::Existing(existing_id, read) => {
                let found = target_records
                    .fetch_in(&txn, *existing_id, read)
                    .await
                    .map_err(|error| match error {
                        Error::NotFound(message) => Error::Validation(vec![FieldError::new(
                            format!("use_existing.{}", target.alias),
                            message,
                        )]),
                        other => other,
                    })?;
                existing.insert(target.alias.clone(), mask(found.clone(), read));
                found
            }
            Grant::Create(access) => {
                let input = target_input(target, &current, &source_access, &ids, owner, access);
                // The conversion's own map may fill fields the metadata marks read-only
                // (like a flow's effect); the role's field rules still apply.
                let writer = Access {
                    system: true,
                    ..access.clone()
                };
                let new = async {
                    let prepared = target_records.prepare_create(&input, &writer)?;
                    target_records
                        .insert_prepared(&txn, prepared, &writer, ACTION)
                        .await
                }
                .await
                .map_err(|error| prefixed(error, &target.alias))?;
                created.insert(target.alias.clone(), mask(new.clone(), access));
                new
            }
        };
        let record_id = record[schema::ID].as_i64().unwrap_or_default();
        ids.insert(target.alias.as_str(), record_id);
        if let Some(link) = &target.link_field {
            links.insert(link.clone(), json!(record_id));
        }
    }

    let mut input = conversion.set.clone();
    input.extend(links);
    let writer = Access {
        system: true,
        ..source_access.clone()
    };
    let source = async {
        let checked = records.check_input(&Value::Object(input), &writer)?;
        records
            .update_checked_in(&txn, current, checked, None, &writer, ACTION)
            .await
    }
    .await
    .map_err(|error| prefixed(error, "source"))?;
    txn.commit().await?;
    let mut answer = json!({
        "source": mask(source, &source_access),
        "created": created,
    });
    if !existing.is_empty() {
        answer["existing"] = Value::Object(existing);
    }
    Ok(answer)
}

fn target_entity<'c>(catalog: &'c Catalog, target: &ConversionTarget) -> Result<&'c EntityCatalog> {
    catalog
        .entity(&target.entity)
        .map(|e| e.as_ref())
        .ok_or_else(|| {
            Error::Internal(format!(
                "conversion target {} is not published",
                target.entity
            ))
        })
}

/// A created record's input: each mapped field from the converted record (left out
/// when empty, so the target's default applies, or hidden from the caller, so that a
/// conversion copies nothing they cannot read), `$alias` ids, and the owner.
fn target_input(
    target: &ConversionTarget,
    source: &Value,
    source_access: &Access,
    ids: &BTreeMap<&str, i64>,
    source_owner: Option<i64>,
    access: &Access,
) -> Value {
    let mut input = Map::new();
    for (to, from) in &target.map {
        let value = match ConversionTarget::alias_of(from) {
            Some(alias) => ids.get(alias).map(|id| json!(id)),
            None if source_access.hidden_fields.contains(from) => None,
            None => source.get(from).filter(|v| !v.is_null()).cloned(),
        };
        if let Some(value) = value {
            input.insert(to.clone(), value);
        }
    }
    let owner = source_owner
        .filter(|owner| access.reaches_owner(*owner))
        .unwrap_or(access.user_id);
    input.insert(schema::OWNER.into(), json!(owner));
    Value::Object(input)
}

/// Field errors of one record of the conversion named `alias.field`.
fn prefixed(error: Error, alias: &str) -> Error {
    let prefix = |errors: Vec<FieldError>| -> Vec<FieldError> {
        errors
            .into_iter()
            .map(|e| FieldError::new(format!("{alias}.{}", e.field), e.message))
            .collect()
    };
    match error {
        Error::Validation(errors) => Error::Validation(prefix(errors)),
        Error::ForbiddenFields(errors) => Error::ForbiddenFields(prefix(errors)),
        Error::VersionConflict { .. } | Error::Conflict(_) => {
            Error::Conflict(format!("{alias}: {error}"))
        }
        other => other,
    }
}
