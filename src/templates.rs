//! The metadata templates shipped in `metadata/` (embedded in the binary) and their
//! sample data, loaded into a tenant through the same record path as any write.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::auth::Access;
use crate::auth::org::{self, DepartmentInput};
use crate::auth::users::{self, NewUser};
use crate::demo_data::{self, DemoOptions, DemoReport};
use crate::error::{Error, Result};
use crate::store::records::Records;
use crate::tenant::Tenant;

/// Template name → (package, sample data).
const TEMPLATES: [(&str, &str, &str); 3] = [
    (
        "crm-base",
        include_str!("../metadata/crm-base.json"),
        include_str!("../metadata/samples/crm-base.json"),
    ),
    (
        "training-services",
        include_str!("../metadata/training-services.json"),
        include_str!("../metadata/samples/training-services.json"),
    ),
    (
        "manufacturing-service",
        include_str!("../metadata/manufacturing-service.json"),
        include_str!("../metadata/samples/manufacturing-service.json"),
    ),
];

/// The template whose demo has generated data on top of its samples.
pub const GENERATED_DEMO: &str = "crm-base";

pub fn names() -> impl Iterator<Item = &'static str> {
    TEMPLATES.iter().map(|(name, _, _)| *name)
}

fn find(name: &str) -> Result<&'static (&'static str, &'static str, &'static str)> {
    TEMPLATES
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "template {name:?} not found; available: {}",
                names().collect::<Vec<_>>().join(", ")
            ))
        })
}

/// The template's metadata package.
pub fn package(name: &str) -> Result<Value> {
    let (_, package, _) = find(name)?;
    serde_json::from_str(package)
        .map_err(|e| Error::Internal(format!("template {name} is not JSON: {e}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Samples {
    #[serde(default)]
    departments: Vec<SampleDepartment>,
    #[serde(default)]
    users: Vec<SampleUser>,
    #[serde(default)]
    records: Map<String, Value>,
}

/// A department; `parent` names an earlier department, `manager` a sample user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleDepartment {
    name: String,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    manager: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleUser {
    username: String,
    display_name: String,
    password: String,
    #[serde(default)]
    is_admin: bool,
    #[serde(default)]
    roles: Vec<String>,
    /// A department's name.
    #[serde(default)]
    department: Option<String>,
}

/// Loads the template's sample departments, users and records. In records,
/// `{"$ref": title}` names a record of the reference's target by its title field,
/// `{"$user": username}` a user.
pub async fn load_samples(tenant: &Tenant, name: &str, acting_user: i64) -> Result<usize> {
    let (_, _, samples) = find(name)?;
    let samples: Samples = serde_json::from_str(samples)
        .map_err(|e| Error::Internal(format!("samples of {name} are invalid: {e}")))?;
    let invalid = |message: String| Error::Internal(format!("samples of {name}: {message}"));
    let mut department_ids: HashMap<String, i64> = HashMap::new();
    for department in org::list(&tenant.db).await? {
        department_ids.insert(department.name, department.id);
    }
    for (index, department) in samples.departments.iter().enumerate() {
        if department_ids.contains_key(&department.name) {
            continue;
        }
        let parent = match &department.parent {
            Some(parent) => Some(*department_ids.get(parent).ok_or_else(|| {
                invalid(format!(
                    "departments[{index}].parent names unknown department {parent:?}"
                ))
            })?),
            None => None,
        };
        let created = tenant
            .create_department(&DepartmentInput {
                name: Some(department.name.clone()),
                parent: Some(parent),
                manager: None,
            })
            .await?;
        department_ids.insert(created.name, created.id);
    }
    let mut user_ids: HashMap<String, i64> = HashMap::new();
    for user in &users::list(&tenant.db).await? {
        user_ids.insert(user.username.clone(), user.id);
    }
    for (index, sample) in samples.users.iter().enumerate() {
        if user_ids.contains_key(&sample.username) {
            continue;
        }
        let department = match &sample.department {
            Some(department) => Some(*department_ids.get(department).ok_or_else(|| {
                invalid(format!(
                    "users[{index}].department names unknown department {department:?}"
                ))
            })?),
            None => None,
        };
        let created = tenant
            .create_user(&NewUser {
                username: sample.username.clone(),
                display_name: sample.display_name.clone(),
                password: sample.password.clone(),
                is_admin: sample.is_admin,
                roles: sample.roles.clone(),
                department,
            })
            .await?;
        user_ids.insert(created.username, created.id);
    }
    for (index, department) in samples.departments.iter().enumerate() {
        let Some(manager) = &department.manager else {
            continue;
        };
        let manager = *user_ids.get(manager).ok_or_else(|| {
            invalid(format!(
                "departments[{index}].manager names unknown user {manager:?}"
            ))
        })?;
        tenant
            .update_department(
                department_ids[&department.name],
                &DepartmentInput {
                    manager: Some(Some(manager)),
                    ..DepartmentInput::default()
                },
            )
            .await?;
    }
    let catalog = tenant.catalog().await;
    let mut titles: HashMap<(String, String), i64> = HashMap::new();
    let mut count = 0;
    for (entity_key, records) in &samples.records {
        let entity = catalog.entity(entity_key).ok_or_else(|| {
            Error::Internal(format!(
                "samples of {name} name unknown entity {entity_key}"
            ))
        })?;
        let store = Records::new(&tenant.db, &catalog, entity);
        for (index, record) in records.as_array().into_iter().flatten().enumerate() {
            let mut resolved = Map::new();
            for (key, value) in record.as_object().into_iter().flatten() {
                let value = match value {
                    Value::Object(o) if o.contains_key("$ref") => {
                        let target = entity
                            .field(key)
                            .and_then(|f| f.target.clone())
                            .unwrap_or_default();
                        let title = o["$ref"].as_str().unwrap_or_default().to_string();
                        Value::from(titles.get(&(target.clone(), title.clone())).copied().ok_or_else(|| {
                            Error::Internal(format!("samples of {name}: {entity_key}[{index}].{key} refers to unknown {target} {title:?}"))
                        })?)
                    }
                    Value::Object(o) if o.contains_key("$user") => {
                        let username = o["$user"].as_str().unwrap_or_default();
                        Value::from(*user_ids.get(username).ok_or_else(|| {
                            Error::Internal(format!("samples of {name}: {entity_key}[{index}].{key} names unknown user {username:?}"))
                        })?)
                    }
                    other => other.clone(),
                };
                resolved.insert(key.clone(), value);
            }
            let owner = resolved
                .get("owner")
                .and_then(Value::as_i64)
                .unwrap_or(acting_user);
            let created = store
                .create(&Value::Object(resolved), &Access::full(owner))
                .await
                .map_err(|e| {
                    Error::Internal(format!(
                        "samples of {name}: {entity_key}[{index}] was refused: {e} {:?}",
                        e.details()
                    ))
                })?;
            if let Some(title) = entity
                .def
                .title_field
                .as_ref()
                .and_then(|t| created[t].as_str())
            {
                titles.insert(
                    (entity_key.clone(), title.to_string()),
                    created["id"].as_i64().unwrap_or_default(),
                );
            }
            count += 1;
        }
    }
    Ok(count)
}

/// Generates `customers` demo customers with their records on top of the samples
/// (`serve --demo`), when the template has a generator (crm-base) and the tenant's
/// package still is that template; `None` otherwise. Idempotent and resumable: run it
/// on every start, it writes only the customers (with their records) not yet written.
pub async fn generate_demo_data(
    tenant: &Tenant,
    name: &str,
    customers: usize,
    progress: bool,
) -> Result<Option<DemoReport>> {
    find(name)?;
    if name != GENERATED_DEMO || customers == 0 || !demo_data::applies_to(tenant).await {
        return Ok(None);
    }
    let options = DemoOptions {
        customers,
        progress,
        ..DemoOptions::default()
    };
    demo_data::generate(tenant, &options).await.map(Some)
}
