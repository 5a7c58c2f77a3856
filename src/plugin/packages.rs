//! Plugin packages: folders under `plugins/` (compiled into the binary) with a
//! manifest, `plugin.json`, that says what the plugin contributes to a tenant's
//! package — entities, fields and print formats for existing entities, reports,
//! hooks, webhooks, scheduled rules — and which settings it takes. Enabling merges
//! the contribution (settings filled in) into the published package through the
//! normal plan; disabling takes out exactly what was merged, recorded in the
//! package's `plugins`, so removed entities and fields are archived, never dropped.

use std::collections::BTreeSet;

use regex::{Captures, Regex};
use rust_embed::RustEmbed;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, FieldError, Result};
use crate::meta::{EnabledPlugin, Package};
use crate::tenant::{Applied, Tenant};

#[derive(RustEmbed)]
#[folder = "plugins/"]
struct Bundled;

const MANIFEST: &str = "plugin.json";

/// The package lists a plugin may add items to, each item named by its `key`.
const LISTS: [&str; 8] = [
    "entities",
    "roles",
    "flows",
    "reports",
    "dashboards",
    "webhooks",
    "schedules",
    "hooks",
];

/// What a plugin may add to an entity the package already has.
const ENTITY_LISTS: [&str; 2] = ["fields", "prints"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub label: String,
    pub description: String,
    /// Entities the tenant's package must have (those the plugin extends or hooks).
    #[serde(default)]
    pub requires: Vec<String>,
    #[serde(default)]
    pub settings: Vec<Setting>,
    /// A partial package: any of [`LISTS`], plus `extend` (`[{entity, fields,
    /// prints, section}]`, `section` placing the fields when the entity has a layout). Strings may name settings: `@{key}` as text, `@json{key}` as JSON.
    pub contributes: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    pub key: String,
    pub label: String,
    #[serde(rename = "type", default)]
    pub kind: SettingType,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingType {
    #[default]
    Text,
    Number,
    Boolean,
    /// An http(s) address, such as a chat robot's webhook.
    Url,
}

impl SettingType {
    pub fn as_str(self) -> &'static str {
        match self {
            SettingType::Text => "text",
            SettingType::Number => "number",
            SettingType::Boolean => "boolean",
            SettingType::Url => "url (http:// or https://)",
        }
    }
}

/// Every bundled plugin, by name. A manifest that does not load is a build defect,
/// reported as an internal error naming the file.
pub fn bundled() -> Result<Vec<Manifest>> {
    let mut manifests = Vec::new();
    for path in Bundled::iter().filter(|p| p.ends_with(&format!("/{MANIFEST}"))) {
        let folder = path.trim_end_matches(MANIFEST);
        manifests.push(load(folder, &path)?);
    }
    manifests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(manifests)
}

/// A bundled plugin, or 404.
pub fn find(name: &str) -> Result<Manifest> {
    bundled()?
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| Error::NotFound(format!("no bundled plugin is named {name:?}")))
}

fn load(folder: &str, path: &str) -> Result<Manifest> {
    let broken = |message: String| Error::Internal(format!("plugins/{path}: {message}"));
    let text = file(folder, MANIFEST).map_err(broken)?;
    let mut manifest: Manifest = serde_json::from_str(&text).map_err(|e| broken(e.to_string()))?;
    let known = |key: &String| LISTS.contains(&key.as_str()) || key == "extend";
    if let Some(unknown) = manifest
        .contributes
        .as_object()
        .and_then(|c| c.keys().find(|k| !known(k)))
    {
        return Err(broken(format!(
            "contributes.{unknown} is not something a plugin adds"
        )));
    }
    // Scripts and print templates may live in files of their own beside the manifest.
    let mut items: Vec<&mut Value> = Vec::new();
    for (list, value) in manifest.contributes.as_object_mut().into_iter().flatten() {
        let Some(array) = value.as_array_mut() else {
            continue;
        };
        match list.as_str() {
            "hooks" => items.extend(array.iter_mut()),
            "extend" => {
                for extension in array {
                    if let Some(prints) = extension.get_mut("prints").and_then(Value::as_array_mut)
                    {
                        items.extend(prints.iter_mut());
                    }
                }
            }
            _ => {}
        }
    }
    for item in items {
        let Some(object) = item.as_object_mut() else {
            continue;
        };
        for (reference, target) in [("script_file", "script"), ("template_file", "template")] {
            if let Some(name) = object.remove(reference) {
                let name = name.as_str().unwrap_or_default().to_string();
                object.insert(target.into(), json!(file(folder, &name).map_err(broken)?));
            }
        }
    }
    Ok(manifest)
}

fn file(folder: &str, name: &str) -> std::result::Result<String, String> {
    let path = format!("{folder}{name}");
    let bytes = Bundled::get(&path).ok_or_else(|| format!("{path} is missing"))?;
    String::from_utf8(bytes.data.into_owned()).map_err(|_| format!("{path} is not UTF-8"))
}

/// The settings as given, checked against the manifest and completed with defaults;
/// every problem named `settings.KEY`.
pub fn check_settings(
    manifest: &Manifest,
    given: &Map<String, Value>,
) -> Result<Map<String, Value>> {
    let mut errors = Vec::new();
    for key in given.keys() {
        if !manifest.settings.iter().any(|s| &s.key == key) {
            errors.push(FieldError::new(
                format!("settings.{key}"),
                "unknown setting",
            ));
        }
    }
    let mut settings = Map::new();
    for setting in &manifest.settings {
        let path = format!("settings.{}", setting.key);
        let value = given
            .get(&setting.key)
            .filter(|v| !v.is_null() && *v != "")
            .or(setting.default.as_ref());
        let Some(value) = value else {
            if setting.required {
                errors.push(FieldError::new(
                    path,
                    format!("{} is required", setting.label),
                ));
            }
            continue;
        };
        let valid = match setting.kind {
            SettingType::Text => value.is_string(),
            SettingType::Number => value.is_number(),
            SettingType::Boolean => value.is_boolean(),
            SettingType::Url => value.as_str().is_some_and(|url| {
                (url.starts_with("https://") || url.starts_with("http://"))
                    && !url.contains(char::is_whitespace)
            }),
        };
        if valid {
            settings.insert(setting.key.clone(), value.clone());
        } else {
            errors.push(FieldError::new(
                path,
                format!(
                    "{} must be a {} value",
                    setting.label,
                    setting.kind.as_str()
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(Error::Validation(errors))
    }
}

/// The contribution with `@{key}` and `@json{key}` replaced by the settings' values.
fn contribution(manifest: &Manifest, settings: &Map<String, Value>) -> Value {
    let placeholder = Regex::new(r"@(json)?\{([a-z][a-z0-9_]*)\}").expect("valid pattern");
    let mut contributes = manifest.contributes.clone();
    fill(&mut contributes, &|text: &str| {
        placeholder
            .replace_all(text, |captures: &Captures| {
                let value = settings.get(&captures[2]).cloned().unwrap_or(Value::Null);
                match (&captures.get(1), value) {
                    (Some(_), value) => value.to_string(),
                    (None, Value::String(text)) => text,
                    (None, Value::Null) => String::new(),
                    (None, value) => value.to_string(),
                }
            })
            .into_owned()
    });
    contributes
}

fn fill(value: &mut Value, replace: &dyn Fn(&str) -> String) {
    match value {
        Value::String(text) if text.contains('@') => *text = replace(text),
        Value::Array(items) => items.iter_mut().for_each(|v| fill(v, replace)),
        Value::Object(object) => object.values_mut().for_each(|v| fill(v, replace)),
        _ => {}
    }
}

/// The package with `manifest` enabled under `settings` (checked), replacing what an
/// earlier enabling of the same plugin merged. A key the package already uses for
/// something else is a conflict, named.
pub fn merge(
    package: &Package,
    manifest: &Manifest,
    settings: &Map<String, Value>,
) -> Result<Value> {
    let settings = check_settings(manifest, settings)?;
    let package = unmerge(package, &manifest.name)?;
    let mut errors = Vec::new();
    for entity in &manifest.requires {
        if package.entity(entity).is_none() {
            errors.push(FieldError::new(
                "requires",
                format!(
                    "the plugin works on a {entity:?} entity, which this package does not have"
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let contributes = contribution(manifest, &settings);
    let mut json = to_json(&package)?;
    let mut contributed = Vec::new();
    let conflict = |path: &str| {
        Error::Conflict(format!(
            "plugin {}: the package already has {path}; rename or remove it first",
            manifest.name
        ))
    };
    for list in LISTS {
        for item in items(&contributes, list) {
            let key = item_key(&item);
            let path = format!("{list}/{key}");
            let target = list_mut(&mut json, list);
            if target.iter().any(|existing| item_key(existing) == key) {
                return Err(conflict(&path));
            }
            target.push(item);
            contributed.push(path);
        }
    }
    for extension in items(&contributes, "extend") {
        let entity_key = extension["entity"].as_str().unwrap_or_default().to_string();
        let entity = list_mut(&mut json, "entities")
            .iter_mut()
            .find(|e| e["key"] == entity_key.as_str())
            .ok_or_else(|| {
                Error::field(
                    "requires",
                    format!("the package has no {entity_key:?} entity"),
                )
            })?;
        for list in ENTITY_LISTS {
            for item in items(&extension, list) {
                let key = item_key(&item);
                let path = format!("entities/{entity_key}/{list}/{key}");
                let target = list_mut(entity, list);
                if target.iter().any(|existing| item_key(existing) == key) {
                    return Err(conflict(&path));
                }
                target.push(item);
                contributed.push(path);
            }
        }
        // An entity laid out in sections shows only placed fields: the plugin's own
        // section places its fields.
        if let Some(section) = extension.get("section")
            && let Some(sections) = entity
                .get_mut("layout")
                .and_then(|layout| layout.get_mut("sections"))
                .and_then(Value::as_array_mut)
        {
            let label = section["label"].as_str().unwrap_or_default();
            contributed.push(format!("entities/{entity_key}/sections/{label}"));
            sections.push(section.clone());
        }
    }
    list_mut(&mut json, "plugins").push(to_json(&EnabledPlugin {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        settings,
        contributed,
    })?);
    Ok(json)
}

/// The package without what the plugin `name` merged (unchanged if it is not enabled).
pub fn unmerge(package: &Package, name: &str) -> Result<Package> {
    let Some(enabled) = package.plugins.iter().find(|p| p.name == name) else {
        return Ok(package.clone());
    };
    let contributed: BTreeSet<&str> = enabled.contributed.iter().map(String::as_str).collect();
    let mut json = to_json(package)?;
    for list in LISTS {
        list_mut(&mut json, list)
            .retain(|item| !contributed.contains(format!("{list}/{}", item_key(item)).as_str()));
    }
    for entity in list_mut(&mut json, "entities") {
        let entity_key = entity["key"].as_str().unwrap_or_default().to_string();
        for list in ENTITY_LISTS {
            list_mut(entity, list).retain(|item| {
                let path = format!("entities/{entity_key}/{list}/{}", item_key(item));
                !contributed.contains(path.as_str())
            });
        }
        if let Some(sections) = entity
            .get_mut("layout")
            .and_then(|layout| layout.get_mut("sections"))
            .and_then(Value::as_array_mut)
        {
            sections.retain(|section| {
                let label = section["label"].as_str().unwrap_or_default();
                let path = format!("entities/{entity_key}/sections/{label}");
                !contributed.contains(path.as_str())
            });
        }
    }
    list_mut(&mut json, "plugins").retain(|p| p["name"] != name);
    serde_json::from_value(json).map_err(|e| Error::Internal(e.to_string()))
}

/// The plugins as an administrator sees them: the manifest, whether it is enabled,
/// with which version and settings, and what it added.
pub fn overview(package: &Package) -> Result<Vec<Value>> {
    bundled()?
        .into_iter()
        .map(|manifest| {
            let enabled = package.plugins.iter().find(|p| p.name == manifest.name);
            let mut item = to_json(&manifest)?;
            let object = item.as_object_mut().expect("a manifest is an object");
            object.remove("contributes");
            object.insert("enabled".into(), json!(enabled.is_some()));
            object.insert(
                "enabled_version".into(),
                json!(enabled.map(|p| p.version.as_str())),
            );
            object.insert(
                "values".into(),
                json!(enabled.map(|p| p.settings.clone()).unwrap_or_default()),
            );
            object.insert(
                "contributed".into(),
                json!(enabled.map(|p| p.contributed.clone()).unwrap_or_default()),
            );
            Ok(item)
        })
        .collect()
}

fn items(container: &Value, list: &str) -> Vec<Value> {
    container[list].as_array().cloned().unwrap_or_default()
}

fn item_key(item: &Value) -> &str {
    item["key"].as_str().unwrap_or_default()
}

/// The array at `list` in an object, created empty when absent.
fn list_mut<'v>(object: &'v mut Value, list: &str) -> &'v mut Vec<Value> {
    let slot = object
        .as_object_mut()
        .expect("packages and entities are objects")
        .entry(list)
        .or_insert_with(|| json!([]));
    if !slot.is_array() {
        *slot = json!([]);
    }
    slot.as_array_mut().expect("made an array above")
}

fn to_json(value: &impl Serialize) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::Internal(e.to_string()))
}

/// Enables (or re-configures) a bundled plugin for the tenant through the normal plan.
pub async fn enable(
    tenant: &Tenant,
    name: &str,
    settings: &Map<String, Value>,
    author: Option<i64>,
    dry_run: bool,
) -> Result<Applied> {
    let manifest = find(name)?;
    tenant
        .apply_change(author, dry_run, |package| {
            merge(package, &manifest, settings)
        })
        .await
}

/// Disables a plugin: what it merged leaves the package; its entities and fields are
/// archived with their data, and come back if it is enabled again.
pub async fn disable(
    tenant: &Tenant,
    name: &str,
    author: Option<i64>,
    dry_run: bool,
) -> Result<Applied> {
    tenant
        .apply_change(author, dry_run, |package| to_json(&unmerge(package, name)?))
        .await
}
