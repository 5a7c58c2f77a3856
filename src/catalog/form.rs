//! The form model of an entity: what a generated create/edit form shows, in layout
//! order, with what this user may edit.

use serde_json::{Map, Value, json};

use super::EntityCatalog;
use crate::auth::Access;
use crate::meta::Field;

/// The form as the user with `access` sees it: fields masked from them are left out,
/// fields closed to their writes are not `editable`; computed and read-only fields
/// never are.
pub fn form_model(entity: &EntityCatalog, access: &Access) -> Value {
    let def = &entity.def;
    let visible = |field: &&Field| !access.hidden_fields.contains(&field.key);
    let field_json = |field: &Field| {
        let mut spec = json!({
            "key": field.key,
            "label": field.label(),
            "type": field.field_type.as_str(),
            "required": field.required,
            "editable": !field.is_computed()
                && !field.read_only
                && !access.readonly_fields.contains(&field.key),
        });
        let optional = [
            ("help", field.help.as_ref().map(|v| json!(v))),
            (
                "options",
                (!field.options.is_empty()).then(|| json!(field.options)),
            ),
            ("target", field.target.as_ref().map(|v| json!(v))),
            ("scale", field.scale.map(|v| json!(v))),
            ("max_length", field.max_length.map(|v| json!(v))),
            ("min", field.min.as_ref().map(|v| json!(v))),
            ("max", field.max.as_ref().map(|v| json!(v))),
            ("pattern", field.pattern.as_ref().map(|v| json!(v))),
            ("formula", field.formula.as_ref().map(|v| json!(v))),
            ("visible_if", field.visible_if.as_ref().map(|v| json!(v))),
            ("required_if", field.required_if.as_ref().map(|v| json!(v))),
            ("default", field.default.clone()),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                spec[key] = value;
            }
        }
        spec
    };
    let sections: Vec<Value> = match &def.layout {
        Some(layout) => layout
            .sections
            .iter()
            .map(|section| {
                json!({
                    "label": section.label,
                    "columns": section.columns,
                    "fields": section
                        .fields
                        .iter()
                        .filter_map(|key| def.field(key))
                        .filter(visible)
                        .map(field_json)
                        .collect::<Vec<_>>(),
                })
            })
            .collect(),
        None => vec![json!({
            "label": null,
            "columns": 1,
            "fields": def.fields.iter().filter(visible).map(field_json).collect::<Vec<_>>(),
        })],
    };
    let stages = def.pipeline.as_ref().map(|p| json!(p.stages));
    json!({
        "entity": def.key,
        "label": def.label(),
        "title_field": def.title_field,
        "sections": sections,
        "stages": stages,
    })
}

/// The live state of a form being filled in: which fields `visible_if` hides and
/// `required`/`required_if` require for the values typed so far, and the formulas'
/// values — evaluated by the same rules a save applies, so the page never guesses.
/// `values` come as typed; one that does not convert yet counts as empty.
pub fn form_state(entity: &EntityCatalog, access: &Access, values: &Map<String, Value>) -> Value {
    let mut record = Map::new();
    for field in &entity.def.fields {
        if let Some(raw) = values.get(&field.key)
            && let Ok(value) = crate::store::value::normalize(field, raw)
        {
            record.insert(field.key.clone(), value);
        }
    }
    let mut computed = Map::new();
    for (key, expr) in &entity.formulas {
        if let Ok(value) = expr.eval(&record) {
            record.insert(key.clone(), value.clone());
            if !access.hidden_fields.contains(key) {
                computed.insert(key.clone(), value);
            }
        }
    }
    let mut hidden = Vec::new();
    let mut required = Vec::new();
    for field in &entity.def.fields {
        if access.hidden_fields.contains(&field.key) {
            continue;
        }
        let (visible, needed) = entity.field_rules(field, &record);
        if !visible {
            hidden.push(field.key.as_str());
        } else if needed && !field.is_computed() {
            required.push(field.key.as_str());
        }
    }
    json!({"hidden": hidden, "required": required, "computed": computed})
}
