//! Record values as a person reads them: option labels instead of keys, users' names
//! and referenced records' titles instead of ids (looked up once per page), 是/否 for
//! booleans, links for references, emails, phones and URLs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::auth::{Context, User, users};
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::Result;
use crate::meta::{Action, Field, FieldType};
use crate::store::{schema, titles};

use super::i18n::{Lang, text};

/// The names and titles a set of records mentions.
pub struct Display {
    lang: Lang,
    /// Every user of the tenant by id (one query per page).
    people: BTreeMap<i64, User>,
    /// Per reference field: id → title of the target records the viewer may read.
    titles: HashMap<String, BTreeMap<String, String>>,
}

impl Display {
    /// Looks up what `fields` of `records` mention: users (owner included) and the
    /// titles of referenced records the viewer may read.
    pub async fn load(
        ctx: &Context,
        catalog: &Catalog,
        lang: Lang,
        fields: &[&Field],
        records: &[&Value],
    ) -> Result<Display> {
        let people = users::list(&ctx.tenant.db)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let mut titles = HashMap::new();
        for field in fields
            .iter()
            .filter(|f| f.field_type == FieldType::Reference)
        {
            let Some(target) = field.target.as_deref().and_then(|t| catalog.entity(t)) else {
                continue;
            };
            let Ok(access) = ctx.authorize(target, Action::Read).await else {
                continue;
            };
            let ids: BTreeSet<i64> = records
                .iter()
                .filter_map(|r| r.get(&field.key)?.as_i64())
                .collect();
            let found = titles::titles(&ctx.tenant.db, target, &access, &ids).await?;
            titles.insert(field.key.clone(), found);
        }
        Ok(Display {
            lang,
            people,
            titles,
        })
    }

    pub fn person(&self, id: Option<i64>) -> String {
        match id {
            Some(id) => self
                .people
                .get(&id)
                .map(|u| u.display_name.clone())
                .unwrap_or_else(|| format!("#{id}")),
            None => String::new(),
        }
    }

    /// The active users, `[{id, name}]`: whom a record may be assigned or a task
    /// delegated to, whom a user field may name.
    pub fn choosable(&self) -> Vec<Value> {
        self.people
            .values()
            .filter(|u| u.active)
            .map(|u| json!({"id": u.id, "name": u.display_name}))
            .collect()
    }

    /// `{text, href?}` for a field's value.
    pub fn cell(&self, field: &Field, value: Option<&Value>) -> Value {
        let value = match value {
            None | Some(Value::Null) => return json!({"text": ""}),
            Some(value) => value,
        };
        let plain = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let option_label = |key: &str| {
            field
                .options
                .iter()
                .find(|o| o.value == key)
                .map(|o| o.label().to_string())
                .unwrap_or_else(|| key.to_string())
        };
        match field.field_type {
            FieldType::Boolean => {
                let yes = value.as_bool().unwrap_or(false);
                json!({"text": text(self.lang, if yes { "yes" } else { "no" })})
            }
            FieldType::Select => json!({"text": option_label(&plain(value))}),
            FieldType::MultiSelect => {
                let labels: Vec<String> = value
                    .as_array()
                    .map(|items| items.iter().map(|v| option_label(&plain(v))).collect())
                    .unwrap_or_default();
                json!({"text": labels.join("、")})
            }
            FieldType::User => json!({"text": self.person(value.as_i64())}),
            FieldType::Reference => {
                let id = plain(value);
                let title = self
                    .titles
                    .get(&field.key)
                    .and_then(|t| t.get(&id))
                    .cloned()
                    .unwrap_or_else(|| format!("#{id}"));
                match &field.target {
                    Some(target) => json!({"text": title, "href": format!("/e/{target}/{id}")}),
                    None => json!({"text": title}),
                }
            }
            FieldType::Email => {
                json!({"text": plain(value), "href": format!("mailto:{}", plain(value))})
            }
            FieldType::Phone => {
                json!({"text": plain(value), "href": format!("tel:{}", plain(value))})
            }
            FieldType::Url => {
                let url = plain(value);
                // Only web links become links: a `javascript:` URL stays text.
                if url.starts_with("http://") || url.starts_with("https://") {
                    json!({"text": url, "href": url})
                } else {
                    json!({"text": url})
                }
            }
            FieldType::Datetime => json!({"text": short_datetime(&plain(value))}),
            FieldType::Attachment => {
                let names: Vec<String> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|item| plain(&item["name"]))
                    .collect();
                json!({"text": names.join("、")})
            }
            _ => json!({"text": plain(value)}),
        }
    }

    /// The files of an `attachment` value, each with its download link through the
    /// record: `{text, files: [{name, href}]}`.
    pub fn attachments(&self, entity: &str, id: i64, value: Option<&Value>) -> Value {
        let files: Vec<Value> = value
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|item| {
                json!({
                    "name": item["name"],
                    "href": format!("/api/data/{entity}/{id}/files/{}", item["file"].as_str().unwrap_or_default()),
                })
            })
            .collect();
        let names: Vec<&str> = files.iter().filter_map(|f| f["name"].as_str()).collect();
        json!({"text": names.join("、"), "files": files})
    }

    /// A field's label; system columns (owner, stage, times) in the page's language.
    pub fn label<'f>(&self, field: &'f Field) -> std::borrow::Cow<'f, str> {
        match field.key.as_str() {
            schema::OWNER
            | schema::STAGE
            | schema::CREATED_AT
            | schema::UPDATED_AT
            | schema::CREATED_BY => text(self.lang, &field.key).into(),
            _ => field.label().into(),
        }
    }

    /// The system columns a list or record page shows beside the fields.
    pub fn system(&self, entity: &EntityCatalog, record: &Value) -> Value {
        let stage = record
            .get(schema::STAGE)
            .and_then(Value::as_str)
            .map(|key| match &entity.def.pipeline {
                Some(pipeline) => pipeline.stage_label(key),
                None => key,
            });
        json!({
            "owner": self.person(record.get(schema::OWNER).and_then(Value::as_i64)),
            "stage": stage,
            "created_at": short_datetime(record.get(schema::CREATED_AT).and_then(Value::as_str).unwrap_or_default()),
            "updated_at": short_datetime(record.get(schema::UPDATED_AT).and_then(Value::as_str).unwrap_or_default()),
        })
    }
}

/// The label of the flow `key`, or the key itself for a flow no longer there.
pub fn flow_label(catalog: &Catalog, key: &str) -> String {
    catalog
        .package
        .flows
        .iter()
        .find(|f| f.key == key)
        .map_or(key, |f| f.label())
        .to_string()
}

/// `2024-03-05T08:30:00.000+08:00` → `2024-03-05 08:30`.
pub fn short_datetime(raw: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(raw) {
        Ok(at) => at
            .with_timezone(&crate::clock::offset())
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        Err(_) => raw.to_string(),
    }
}
