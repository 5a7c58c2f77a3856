//! Stage transitions: the pipeline's rules (`forward`, `any`, or an explicit list of
//! moves with the roles allowed to make them), the target stage's required fields,
//! the write with its stage history, and flows that start on entering the stage.

use serde_json::{Map, Value, json};

use crate::auth::{Access, User};
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::{Error, FieldError, Result};
use crate::meta::{Pipeline, TransitionMode, Transitions, TriggerOn};
use crate::store::db::TenantDb;
use crate::store::records::Records;
use crate::store::{locks, schema};
use crate::workflow::approvals::Engine;

/// Whether `user` may move a record from `from` to `to` under the pipeline's rules.
pub fn check_transition(pipeline: &Pipeline, from: &str, to: &str, user: &User) -> Result<()> {
    let position = |key: &str| pipeline.stages.iter().position(|s| s.key == key);
    let Some(target) = position(to) else {
        let known: Vec<&str> = pipeline.stages.iter().map(|s| s.key.as_str()).collect();
        return Err(Error::field(
            "to",
            format!("unknown stage {to:?}; stages: {}", known.join(", ")),
        ));
    };
    if from == to {
        return Err(Error::field(
            "to",
            format!("the record is already in stage {to:?}"),
        ));
    }
    let allowed = match &pipeline.transitions {
        Transitions::Mode(TransitionMode::Any) => true,
        Transitions::Mode(TransitionMode::Forward) => {
            pipeline.stages[target].lost || position(from).is_none_or(|current| target > current)
        }
        Transitions::List(moves) => moves.iter().any(|m| {
            m.from == from
                && m.to == to
                && (m.roles.is_empty()
                    || user.is_admin
                    || m.roles.iter().any(|r| user.roles.contains(r)))
        }),
    };
    if allowed {
        Ok(())
    } else {
        let rule = match &pipeline.transitions {
            Transitions::Mode(TransitionMode::Forward) => {
                "stages only move forward, or to a lost stage".to_string()
            }
            _ => "the pipeline allows no such move for your roles".to_string(),
        };
        Err(Error::field(
            "to",
            format!("cannot move from {from:?} to {to:?}: {rule}"),
        ))
    }
}

/// `POST /api/data/{e}/{id}/stage {to}`: one transaction — transition rules, the
/// target's required fields (all missing ones listed), the write and its stage
/// history, and any flow triggered by entering the stage.
pub async fn move_to(
    db: &TenantDb,
    catalog: &Catalog,
    entity: &EntityCatalog,
    id: i64,
    to: &str,
    user: &User,
    access: &Access,
) -> Result<Value> {
    let Some(pipeline) = &entity.def.pipeline else {
        return Err(Error::NotFound(format!(
            "{} has no pipeline",
            entity.def.key
        )));
    };
    let records = Records::new(db, catalog, entity);
    let txn = db.begin_write().await?;
    let current = records.fetch_in(&txn, id, access).await?;
    locks::ensure_unlocked(&txn, db, &entity.def.key, id).await?;
    let from = current[schema::STAGE]
        .as_str()
        .unwrap_or_default()
        .to_string();
    check_transition(pipeline, &from, to, user)?;
    let mut after: Map<String, Value> = current.as_object().cloned().unwrap_or_default();
    after.insert(schema::STAGE.into(), json!(to));
    let missing: Vec<FieldError> = records.missing_for_stage(&after, to);
    if !missing.is_empty() {
        return Err(Error::Validation(missing));
    }
    let input = Map::from_iter([(schema::STAGE.to_string(), json!(to))]);
    let moved = records
        .update_in(&txn, current, input, None, access, "stage")
        .await?;
    let approval = Engine::new(db, catalog)
        .trigger(
            &txn,
            &entity.def.key,
            &moved,
            TriggerOn::StageEnter,
            Some(to),
            user.id,
        )
        .await?;
    txn.commit().await?;
    let mut reply = crate::store::records::mask(moved, access);
    reply["approval"] = json!(approval);
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(transitions: Value) -> Pipeline {
        serde_json::from_value(json!({"stages": [
            {"key": "contact"}, {"key": "quote"}, {"key": "signed", "won": true}, {"key": "lost", "lost": true}
        ], "transitions": transitions}))
        .unwrap()
    }

    fn user(roles: &[&str]) -> User {
        User {
            id: 1,
            username: "u".into(),
            display_name: "u".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            department: None,
            is_admin: false,
            active: true,
        }
    }

    #[test]
    fn forward_allows_later_stages_and_lost() {
        let p = pipeline(json!("forward"));
        let u = user(&[]);
        assert!(check_transition(&p, "contact", "signed", &u).is_ok());
        assert!(check_transition(&p, "signed", "lost", &u).is_ok());
        assert!(check_transition(&p, "signed", "quote", &u).is_err());
        assert!(check_transition(&p, "quote", "quote", &u).is_err());
        assert!(check_transition(&p, "quote", "nowhere", &u).is_err());
    }

    #[test]
    fn any_allows_every_move_between_stages() {
        let p = pipeline(json!("any"));
        assert!(check_transition(&p, "signed", "contact", &user(&[])).is_ok());
    }

    #[test]
    fn explicit_lists_check_moves_and_roles() {
        let p = pipeline(json!([
            {"from": "contact", "to": "quote"},
            {"from": "lost", "to": "contact", "roles": ["manager"]}
        ]));
        assert!(check_transition(&p, "contact", "quote", &user(&[])).is_ok());
        assert!(check_transition(&p, "contact", "signed", &user(&[])).is_err());
        assert!(check_transition(&p, "lost", "contact", &user(&["sales"])).is_err());
        assert!(check_transition(&p, "lost", "contact", &user(&["manager"])).is_ok());
    }
}
