//! A tenant's published metadata compiled for the runtime: per entity its table, its
//! JSON Schema and validator, its compiled expressions in evaluation order. A catalog
//! is immutable; publishing builds a new one and swaps it in whole.

mod form;
mod jsonschema_gen;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::meta::expr::Expr;
use crate::meta::{DefaultSpec, Entity, Field, FieldType, Package, Problem};
use crate::store::filter::{self, FilterContext};
use crate::store::plan::Archive;
use crate::store::schema;

pub use form::{form_model, form_state};

#[derive(Debug)]
pub struct Catalog {
    pub version: i64,
    pub package: Package,
    pub archive: Archive,
    entities: HashMap<String, Arc<EntityCatalog>>,
}

/// How a field gets a value when a record is created without one.
#[derive(Debug, Clone)]
pub enum DefaultValue {
    Literal(Value),
    Expr(Expr),
}

pub struct EntityCatalog {
    pub def: Entity,
    pub table: String,
    /// JSON Schema of a record as the API returns it.
    pub schema: Value,
    /// Validator for the writable part of a record (no system or computed fields).
    pub input_validator: jsonschema::Validator,
    /// Formula fields in an order where each comes after the formulas it reads.
    pub formulas: Vec<(String, Expr)>,
    pub defaults: Vec<(String, DefaultValue)>,
    pub visible_if: HashMap<String, Expr>,
    pub required_if: HashMap<String, Expr>,
    /// Reference fields elsewhere (entity, field) that point at this entity.
    pub referenced_by: Vec<(String, String)>,
    /// System columns described as fields, so filters and sorts treat them alike.
    system_columns: Vec<Field>,
}

impl std::fmt::Debug for EntityCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityCatalog")
            .field("key", &self.def.key)
            .finish_non_exhaustive()
    }
}

impl EntityCatalog {
    pub fn field(&self, key: &str) -> Option<&Field> {
        self.def.field(key)
    }

    /// A field or a system column by key: what filters and sorts may name.
    pub fn column(&self, key: &str) -> Option<&Field> {
        self.def
            .field(key)
            .or_else(|| self.system_columns.iter().find(|f| f.key == key))
    }

    pub fn has_pipeline(&self) -> bool {
        self.def.pipeline.is_some()
    }

    /// Whether `field` shows on `record` (its `visible_if`) and must be filled there
    /// (`required` or its `required_if`). An expression that fails to evaluate on a
    /// half-filled record shows the field and does not require it.
    pub fn field_rules(&self, field: &Field, record: &Map<String, Value>) -> (bool, bool) {
        let visible = match self.visible_if.get(&field.key) {
            Some(expr) => expr.eval_bool(record).unwrap_or(true),
            None => true,
        };
        let required = field.required
            || match self.required_if.get(&field.key) {
                Some(expr) => expr.eval_bool(record).unwrap_or(false),
                None => false,
            };
        (visible, required)
    }

    /// A record's title: the value of the entity's `title_field`, or `#id`.
    pub fn title_of(&self, record: &Value) -> String {
        self.def
            .title_field
            .as_deref()
            .and_then(|t| record[t].as_str())
            .map(String::from)
            .unwrap_or_else(|| format!("#{}", record[schema::ID]))
    }
}

impl Catalog {
    /// An empty catalog: a tenant before its first publish.
    pub fn empty() -> Catalog {
        Catalog {
            version: 0,
            package: Package::empty(),
            archive: Archive::default(),
            entities: HashMap::new(),
        }
    }

    /// Compiles a validated package. Problems here are expressions that do not
    /// compile, which validation already reports; they are returned, never panicked on.
    pub fn compile(
        version: i64,
        package: Package,
        archive: Archive,
    ) -> Result<Catalog, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut entities = HashMap::new();
        for (index, entity) in package.entities.iter().enumerate() {
            match compile_entity(&package, entity, &format!("entities[{index}]")) {
                Ok(compiled) => {
                    entities.insert(entity.key.clone(), Arc::new(compiled));
                }
                Err(mut found) => problems.append(&mut found),
            }
        }
        problems.extend(filter_problems(&package, &entities));
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Catalog {
            version,
            package,
            archive,
            entities,
        })
    }

    pub fn entity(&self, key: &str) -> Option<&Arc<EntityCatalog>> {
        self.entities.get(key)
    }

    /// Entities in package order.
    pub fn entities(&self) -> impl Iterator<Item = &Arc<EntityCatalog>> {
        self.package
            .entities
            .iter()
            .filter_map(|e| self.entities.get(&e.key))
    }
}

/// Report and schedule filters are compiled as a query would compile them, so a
/// filter naming an unknown field or operator is refused at publish with its path, not
/// at run time.
fn filter_problems(
    package: &Package,
    entities: &HashMap<String, Arc<EntityCatalog>>,
) -> Vec<Problem> {
    let nothing_hidden = std::collections::BTreeSet::new();
    let context = FilterContext {
        user_id: 0,
        today: crate::clock::today(),
        hidden: &nothing_hidden,
    };
    let reports = package
        .reports
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("reports[{i}]"), &r.entity, r.filter.as_ref()));
    let schedules = package.schedules.iter().enumerate().map(|(i, s)| {
        (
            format!("schedules[{i}].notify"),
            &s.notify.entity,
            s.notify.filter.as_ref(),
        )
    });
    let mut problems = Vec::new();
    for (anchor, entity, filter) in reports.chain(schedules) {
        let (Some(filter), Some(entity)) = (filter, entities.get(entity)) else {
            continue;
        };
        if let Err(error) = filter::condition(entity, filter, &context) {
            // The filter compiler names paths from `filter`; anchor them in their item.
            let message = error.to_string();
            let (path, message) = message
                .split_once(": ")
                .unwrap_or(("filter", message.as_str()));
            problems.push(Problem {
                path: format!("{anchor}.{path}"),
                message: message.to_string(),
            });
        }
    }
    problems
}

fn compile_entity(
    package: &Package,
    entity: &Entity,
    path: &str,
) -> Result<EntityCatalog, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut compile = |field_index: usize, option: &str, source: &str| -> Option<Expr> {
        Expr::compile(source)
            .map_err(|message| {
                problems.push(Problem {
                    path: format!("{path}.fields[{field_index}].{option}"),
                    message,
                })
            })
            .ok()
    };
    let mut formulas = Vec::new();
    let mut defaults = Vec::new();
    let mut visible_if = HashMap::new();
    let mut required_if = HashMap::new();
    for (index, field) in entity.fields.iter().enumerate() {
        if let Some(expr) = field
            .formula
            .as_deref()
            .and_then(|s| compile(index, "formula", s))
        {
            formulas.push((field.key.clone(), expr));
        }
        if let Some(expr) = field
            .visible_if
            .as_deref()
            .and_then(|s| compile(index, "visible_if", s))
        {
            visible_if.insert(field.key.clone(), expr);
        }
        if let Some(expr) = field
            .required_if
            .as_deref()
            .and_then(|s| compile(index, "required_if", s))
        {
            required_if.insert(field.key.clone(), expr);
        }
        match field.default_spec() {
            Some(DefaultSpec::Expression(source)) => {
                if let Some(expr) = compile(index, "default", source) {
                    defaults.push((field.key.clone(), DefaultValue::Expr(expr)));
                }
            }
            Some(DefaultSpec::Literal(value)) => {
                defaults.push((field.key.clone(), DefaultValue::Literal(value.clone())))
            }
            None => {}
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let input_schema = jsonschema_gen::input_schema(entity);
    let input_validator = jsonschema::validator_for(&input_schema).map_err(|e| {
        vec![Problem {
            path: path.to_string(),
            message: format!("could not build the entity's JSON Schema: {e}"),
        }]
    })?;
    let referenced_by = package
        .entities
        .iter()
        .flat_map(|other| {
            other
                .fields
                .iter()
                .filter(|f| {
                    f.field_type == FieldType::Reference && f.target.as_deref() == Some(&entity.key)
                })
                .map(|f| (other.key.clone(), f.key.clone()))
        })
        .collect();
    Ok(EntityCatalog {
        def: entity.clone(),
        table: schema::table_name(&entity.key),
        schema: jsonschema_gen::record_schema(entity),
        input_validator,
        formulas: order_formulas(formulas),
        defaults,
        visible_if,
        required_if,
        referenced_by,
        system_columns: system_columns(entity),
    })
}

fn system_columns(entity: &Entity) -> Vec<Field> {
    let column = |key: &str, field_type: &str| json!({"key": key, "type": field_type});
    let mut columns = vec![
        column(schema::ID, "integer"),
        column(schema::VERSION, "integer"),
        column(schema::OWNER, "user"),
        column(schema::CREATED_BY, "user"),
        column(schema::CREATED_AT, "datetime"),
        column(schema::UPDATED_AT, "datetime"),
    ];
    if let Some(pipeline) = &entity.pipeline {
        let options: Vec<Value> = pipeline
            .stages
            .iter()
            .map(|s| json!({"value": s.key, "label": s.label}))
            .collect();
        columns.push(json!({"key": schema::STAGE, "type": "select", "options": options}));
    }
    if entity.tracks_contacts() {
        columns.push(column(schema::LAST_CONTACT_AT, "datetime"));
    }
    columns
        .into_iter()
        .map(|c| serde_json::from_value(c).expect("system column definitions are valid fields"))
        .collect()
}

/// Orders formulas so each is evaluated after the formulas it reads. Validation has
/// refused cycles; should one slip through, the remaining formulas keep their order.
fn order_formulas(mut pending: Vec<(String, Expr)>) -> Vec<(String, Expr)> {
    let mut ordered: Vec<(String, Expr)> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending.iter().position(|(_, expr)| {
            expr.variables()
                .iter()
                .all(|v| !pending.iter().any(|(key, _)| key == v))
        });
        match ready {
            Some(index) => ordered.push(pending.remove(index)),
            None => {
                ordered.append(&mut pending);
            }
        }
    }
    ordered
}
