//! JSON Schemas generated from an entity's fields: one for records as the API returns
//! them (published in OpenAPI and at `/api/meta/entities/{e}/schema`), one for the
//! writable part of a record (used to validate writes).
//!
//! Required fields are not in the schemas: whether a value is required depends on
//! defaults, formulas and `required_if`, which the record writer evaluates.

use serde_json::{Map, Value, json};

use crate::meta::{Entity, Field, FieldType};
use crate::store::schema;

pub const EMAIL_PATTERN: &str = r"^[^@\s]+@[^@\s]+\.[^@\s]+$";
pub const URL_PATTERN: &str = r"^https?://\S+$";
/// Digits with the separators Chinese phone numbers are written with (0755-8888 8888,
/// +86 138 0013 8000, 总机转 801).
pub const PHONE_PATTERN: &str = r"^[0-9+()\-\s#*/,.转]{3,40}$";

/// Schema of a record as returned by the API.
pub fn record_schema(entity: &Entity) -> Value {
    let mut properties = Map::new();
    let integer = |description: &str| json!({"type": "integer", "readOnly": true, "description": description});
    let timestamp = |description: &str| json!({"type": "string", "format": "date-time", "readOnly": true, "description": description});
    properties.insert(schema::ID.into(), integer("record id"));
    properties.insert(
        schema::VERSION.into(),
        integer("optimistic-lock version; send it back in If-Match"),
    );
    properties.insert(
        schema::OWNER.into(),
        json!({"type": ["integer", "null"], "description": "owning user id"}),
    );
    properties.insert(
        schema::CREATED_BY.into(),
        integer("user who created the record"),
    );
    properties.insert(schema::CREATED_AT.into(), timestamp("creation time"));
    properties.insert(schema::UPDATED_AT.into(), timestamp("last change time"));
    if let Some(pipeline) = &entity.pipeline {
        let stages: Vec<Value> = pipeline.stages.iter().map(|s| json!(s.key)).collect();
        properties.insert(
            schema::STAGE.into(),
            json!({"enum": stages, "description": "pipeline stage"}),
        );
    }
    if entity.tracks_contacts() {
        properties.insert(
            schema::LAST_CONTACT_AT.into(),
            json!({"type": ["string", "null"], "format": "date-time", "readOnly": true,
                   "description": "last logged contact (follow-ups, public pool)"}),
        );
    }
    for field in &entity.fields {
        let mut property = field_schema(field);
        if field.is_computed() || field.read_only {
            property.insert("readOnly".into(), json!(true));
        }
        properties.insert(field.key.clone(), Value::Object(property));
    }
    json!({
        "title": entity.label(),
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    })
}

/// Schema of what may be written: every stored field, plus `owner`. `read_only`
/// fields are in it because the platform itself writes them (a flow's effects);
/// the record path refuses them from users before this schema is consulted.
pub fn input_schema(entity: &Entity) -> Value {
    let mut properties = Map::new();
    properties.insert(
        schema::OWNER.into(),
        json!({"type": ["integer", "null"], "minimum": 1}),
    );
    for field in entity.fields.iter().filter(|f| !f.is_computed()) {
        properties.insert(field.key.clone(), Value::Object(field_schema(field)));
    }
    json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    })
}

fn field_schema(field: &Field) -> Map<String, Value> {
    let mut schema = match field.field_type {
        FieldType::Text | FieldType::LongText | FieldType::AutoNumber => text(field, None),
        FieldType::Email => text(field, Some(EMAIL_PATTERN)),
        FieldType::Url => text(field, Some(URL_PATTERN)),
        FieldType::Phone => text(field, Some(PHONE_PATTERN)),
        FieldType::Integer => {
            let mut schema = object(json!({"type": ["integer", "null"]}));
            bounds(&mut schema, field);
            schema
        }
        // Decimals may come as strings to stay exact; bounds are checked on the exact value.
        FieldType::Decimal => object(json!({"type": ["number", "string", "null"]})),
        FieldType::Boolean => object(json!({"type": ["boolean", "null"]})),
        FieldType::Date => object(json!({"type": ["string", "null"], "format": "date"})),
        FieldType::Datetime => object(json!({"type": ["string", "null"], "format": "date-time"})),
        FieldType::Select => {
            let mut values: Vec<Value> = field.options.iter().map(|o| json!(o.value)).collect();
            values.push(Value::Null);
            object(json!({"enum": values}))
        }
        FieldType::MultiSelect => {
            let values: Vec<Value> = field.options.iter().map(|o| json!(o.value)).collect();
            object(
                json!({"type": ["array", "null"], "items": {"enum": values}, "uniqueItems": true}),
            )
        }
        FieldType::Reference | FieldType::User => {
            object(json!({"type": ["integer", "null"], "minimum": 1}))
        }
        FieldType::Attachment => object(json!({
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "minLength": 1},
                    "name": {"type": "string", "minLength": 1},
                    "size": {"type": "integer", "minimum": 0},
                    "content_type": {"type": "string"}
                },
                "required": ["file", "name"],
                "additionalProperties": false
            }
        })),
    };
    schema.insert("title".into(), json!(field.label()));
    if let Some(help) = &field.help {
        schema.insert("description".into(), json!(help));
    }
    schema
}

fn text(field: &Field, type_pattern: Option<&str>) -> Map<String, Value> {
    let mut schema = object(json!({"type": ["string", "null"]}));
    if let Some(max) = field.max_length {
        schema.insert("maxLength".into(), json!(max));
    }
    if let Some(pattern) = field.pattern.as_deref().or(type_pattern) {
        schema.insert("pattern".into(), json!(pattern));
    }
    schema
}

fn bounds(schema: &mut Map<String, Value>, field: &Field) {
    if let Some(min) = &field.min {
        schema.insert("minimum".into(), Value::Number(min.clone()));
    }
    if let Some(max) = &field.max {
        schema.insert("maximum".into(), Value::Number(max.clone()));
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("schema literals are objects"),
    }
}
