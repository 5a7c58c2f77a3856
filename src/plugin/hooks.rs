//! Scripted hooks at the seams of a record write. The store and the approval engine
//! call [`Hooks::run`] inside the write's transaction; each hook the package names for
//! the entity and event runs in the sandbox (`plugin::scripts`), in package order. A hook's `get` is answered from the same transaction with the
//! acting user's rights, its notices are written in it, and any rejection or failure
//! fails the write, so the transaction leaves nothing behind.

use sea_orm::DatabaseTransaction;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use std::future::Future;
use std::pin::Pin;

use crate::auth::{Access, SYSTEM_USER};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::meta::{Action, Hook, HookEvent};
use crate::plugin::scripts::{self, Finished, Limits, Run, ScriptError};
use crate::store::db::TenantDb;
use crate::store::records::{Records, mask};
use crate::workflow::notifications::{self, Notice};

/// How deep records created by hooks may create records in turn.
const MAX_DEPTH: u32 = 3;

tokio::task_local! {
    /// The nesting of hook-created records around the running write.
    static DEPTH: u32;
}

/// An error with the fields it names, in one line.
fn describe(error: &Error) -> String {
    match error {
        Error::Validation(fields) | Error::ForbiddenFields(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        error => error.to_string(),
    }
}

/// What a hook's `get` asks the host for, and where the answer goes.
type ReadRequest = (String, i64, oneshot::Sender<Result<Option<Value>, String>>);

/// The hooks of one write: its transaction, its entity and who acts.
pub struct Hooks<'a> {
    pub txn: &'a DatabaseTransaction,
    pub db: &'a TenantDb,
    pub catalog: &'a Catalog,
    pub entity: &'a str,
    pub access: &'a Access,
}

impl Hooks<'_> {
    /// Runs the entity's hooks for `event` over `record` (`previous`: the stored
    /// version, `None` on create; `details`: what the event adds, such as the stages
    /// of a stage change). Each hook sees the record as the one before left it; the
    /// record comes back as the last one left it (only `before_save` callers use it).
    /// (Boxed, with its type spelled out: hooks that create records run hooks again,
    /// and a recursive future needs a known type to be `Send`.)
    pub fn run<'s>(
        &'s self,
        event: HookEvent,
        record: Value,
        previous: Option<&'s Value>,
        details: Map<String, Value>,
    ) -> Pin<Box<dyn Future<Output = Result<Value>> + Send + 's>> {
        Box::pin(async move {
            let mut record = record;
            for hook in self.catalog.package.hooks_for(self.entity, event) {
                let mut event_value = details.clone();
                event_value.insert("name".into(), json!(event.as_str()));
                event_value.insert("entity".into(), json!(self.entity));
                event_value.insert("hook".into(), json!(hook.key));
                let arguments = [
                    record.clone(),
                    previous.cloned().unwrap_or(Value::Null),
                    self.user(),
                    Value::Object(event_value),
                ];
                let finished = self.run_one(hook, arguments).await?;
                if let Some(rejection) = finished.rejection {
                    return Err(match rejection.field {
                        Some(field) => Error::field(field, rejection.message),
                        None => Error::Rejected {
                            hook: hook.key.clone(),
                            message: rejection.message,
                        },
                    });
                }
                self.notify(hook, &record, &finished).await?;
                self.create(hook, &finished).await?;
                record = finished.record;
            }
            Ok(record)
        })
    }

    /// The script's `user`: who acts, or the platform.
    fn user(&self) -> Value {
        match &self.access.gate {
            Some(gate) => {
                let user = gate.user();
                json!({
                    "id": user.id,
                    "username": user.username,
                    "name": user.display_name,
                    "roles": user.roles,
                    "department": user.department,
                    "is_admin": user.is_admin,
                })
            }
            None => json!({
                "id": self.access.user_id,
                "username": "system",
                "name": "system",
                "roles": [],
                "department": null,
                "is_admin": true,
            }),
        }
    }

    async fn run_one(&self, hook: &Hook, arguments: [Value; 4]) -> Result<Finished> {
        let (requests, mut pending) = mpsc::channel::<ReadRequest>(1);
        let read = move |entity: &str, id: i64| {
            let gone = || "the write this hook belongs to has ended".to_string();
            let (answer, answered) = oneshot::channel();
            requests
                .blocking_send((entity.to_string(), id, answer))
                .map_err(|_| gone())?;
            answered.blocking_recv().map_err(|_| gone())?
        };
        let run = Run {
            scope: self.db.key.clone(),
            name: hook.key.clone(),
            script: hook.script.clone(),
            arguments,
            limits: Limits::default(),
        };
        let reply = scripts::submit(run, read);
        // The script's reads are served here, in the write's transaction, until the
        // run ends and drops its side of the channel.
        while let Some((entity, id, answer)) = pending.recv().await {
            let _ = answer.send(self.read(&entity, id).await);
        }
        let failed = |message: String| Error::HookFailed {
            hook: hook.key.clone(),
            message,
        };
        match reply.await {
            Ok(Ok(finished)) => Ok(finished),
            Ok(Err(error @ ScriptError::Engine(_))) => {
                tracing::error!(hook = %hook.key, "{error}");
                Err(failed(error.to_string()))
            }
            Ok(Err(error)) => Err(failed(error.to_string())),
            Err(_) => Err(failed("the script engine stopped".into())),
        }
    }

    /// `get(entity, id)`: the record masked as the acting user sees it, or `None`
    /// when it does not exist or lies outside their rights.
    async fn read(&self, entity: &str, id: i64) -> Result<Option<Value>, String> {
        let target = self
            .catalog
            .entity(entity)
            .ok_or_else(|| format!("unknown entity {entity:?}"))?;
        let access = match &self.access.gate {
            Some(gate) => match gate.authorize(target, Action::Read).await {
                Ok(access) => access,
                Err(Error::Forbidden(_)) => return Ok(None),
                Err(error) => return Err(error.to_string()),
            },
            None => Access::full(self.access.user_id),
        };
        match Records::new(self.db, self.catalog, target)
            .fetch_in(self.txn, id, &access)
            .await
        {
            Ok(record) => Ok(Some(mask(record, &access))),
            Err(Error::NotFound(_)) => Ok(None),
            Err(error) => Err(error.to_string()),
        }
    }

    /// `create(entity, fields)`: records the platform writes for the hook in the same
    /// transaction, owned by the acting user unless the fields name an owner. Their
    /// own hooks run too, nested at most [`MAX_DEPTH`] deep.
    async fn create(&self, hook: &Hook, finished: &Finished) -> Result<()> {
        if finished.creates.is_empty() {
            return Ok(());
        }
        let depth = DEPTH.try_with(|d| *d).unwrap_or(0) + 1;
        let failed = |message: String| Error::HookFailed {
            hook: hook.key.clone(),
            message,
        };
        if depth > MAX_DEPTH {
            return Err(failed(format!(
                "records created by hooks create records {MAX_DEPTH} levels deep; stopped there"
            )));
        }
        let writer = Access {
            system: true,
            ..Access::full(self.access.user_id)
        };
        for create in &finished.creates {
            let target = self
                .catalog
                .entity(&create.entity)
                .ok_or_else(|| failed(format!("create: unknown entity {:?}", create.entity)))?;
            let mut input = create.fields.clone();
            if let Some(fields) = input.as_object_mut()
                && self.access.user_id != SYSTEM_USER
            {
                fields.entry("owner").or_insert(json!(self.access.user_id));
            }
            let records = Records::new(self.db, self.catalog, target);
            let write = async {
                let prepared = records.prepare_create(&input, &writer)?;
                records
                    .insert_prepared(self.txn, prepared, &writer, &format!("hook:{}", hook.key))
                    .await
            };
            DEPTH.scope(depth, write).await.map_err(|error| {
                failed(format!(
                    "its {} record could not be created: {}",
                    create.entity,
                    describe(&error)
                ))
            })?;
        }
        Ok(())
    }

    async fn notify(&self, hook: &Hook, record: &Value, finished: &Finished) -> Result<()> {
        for notice in &finished.notices {
            notifications::send(
                self.txn,
                self.db,
                [notice.user],
                &Notice {
                    kind: "hook",
                    title: notice.title.clone(),
                    body: notice.body.clone(),
                    entity: Some(self.entity),
                    record_id: record["id"].as_i64(),
                    approval_id: None,
                },
            )
            .await
            .map_err(|error| Error::HookFailed {
                hook: hook.key.clone(),
                message: format!("its notice could not be sent: {error}"),
            })?;
        }
        Ok(())
    }
}
