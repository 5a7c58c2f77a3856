//! The approval engine: flows from the metadata run as persisted instances. A submit
//! creates an instance and locks its record; steps run in order (a step whose `when`
//! is false is skipped), each as one task per approver; `mode: any` (或签) finishes a
//! step with the first approval, `mode: all` (会签) with the last. Approvers may
//! reject (back to the submitter, or 退回 to an earlier step), delegate (转审) or add
//! approvers (加签); the submitter may withdraw. Finishing applies the flow's
//! `on_approve`/`on_reject` as the system identity, releases the lock and notifies.
//! Every action is one transaction over tables, so a restart loses nothing.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU8, Ordering};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::Access;
use crate::auth::org::{self, Department};
use crate::auth::users::{self, User};
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::{Error, FieldError, Result};
use crate::meta::{Flow, FlowEffect, FlowStep, HookEvent, StepMode, TriggerOn};
use crate::plugin::hooks::Hooks;
use crate::store::db::{TenantDb, query_first};
use crate::store::records::Records;
use crate::store::value::format_datetime;
use crate::store::{journal, locks, schema};
use crate::workflow::condition;
use crate::workflow::notifications::{self, Notice};

const PENDING: &str = "pending";

/// What an approver or the submitter does to an instance.
#[derive(Debug, Clone)]
pub enum Act {
    Approve,
    /// Back to the submitter (`to: None`) or to an earlier step (退回).
    Reject {
        to: Option<String>,
    },
    /// Hands the caller's task to another user (转审).
    Delegate {
        to: i64,
    },
    /// Adds approvers to the current step (加签).
    AddApprovers {
        users: Vec<i64>,
    },
    /// The submitter takes the request back.
    Withdraw,
}

impl Act {
    fn name(&self) -> &'static str {
        match self {
            Act::Approve => "approve",
            Act::Reject { to: None } => "reject",
            Act::Reject { to: Some(_) } => "return",
            Act::Delegate { .. } => "delegate",
            Act::AddApprovers { .. } => "add_approvers",
            Act::Withdraw => "withdraw",
        }
    }
}

/// The body of an action: `{comment?, to?, users?}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActRequest {
    #[serde(default)]
    pub comment: Option<String>,
    /// A step key (reject) or a user id (delegate).
    #[serde(default)]
    pub to: Option<Value>,
    /// User ids (add approvers).
    #[serde(default)]
    pub users: Vec<i64>,
}

impl ActRequest {
    /// The action named by the URL, with its arguments from the body.
    pub fn into_act(self, action: &str) -> Result<(Act, Option<String>)> {
        let comment = self.comment.filter(|c| !c.trim().is_empty());
        let act = match action {
            "approve" => Act::Approve,
            "reject" => Act::Reject {
                to: match self.to {
                    None | Some(Value::Null) => None,
                    Some(Value::String(step)) => Some(step),
                    Some(other) => {
                        return Err(Error::field(
                            "to",
                            format!("expected a step key, got {other}"),
                        ));
                    }
                },
            },
            "delegate" => Act::Delegate {
                to: self
                    .to
                    .as_ref()
                    .and_then(Value::as_i64)
                    .ok_or_else(|| Error::field("to", "give the user id to delegate to"))?,
            },
            "add_approvers" => {
                if self.users.is_empty() {
                    return Err(Error::field("users", "give the user ids to add"));
                }
                Act::AddApprovers { users: self.users }
            }
            "withdraw" => Act::Withdraw,
            other => {
                return Err(Error::NotFound(format!(
                    "unknown approval action {other:?}; expected approve, reject, delegate, add_approvers or withdraw"
                )));
            }
        };
        if matches!(act, Act::Reject { .. }) && comment.is_none() {
            return Err(Error::field("comment", "say why the request is rejected"));
        }
        Ok((act, comment))
    }
}

#[derive(Debug, Clone)]
struct Instance {
    id: i64,
    flow: String,
    entity: String,
    record_id: i64,
    status: String,
    step_index: usize,
    submitter: i64,
    submitted_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct Task {
    id: i64,
    approver: i64,
    status: String,
    delegated_from: Option<i64>,
}

/// The approval engine over one tenant's database and published catalog.
pub struct Engine<'a> {
    db: &'a TenantDb,
    catalog: &'a Catalog,
    /// Flows started, within this call, by a stage another flow's effect moved a
    /// record to ([`Engine::enter_stage_by_flow`]).
    chained: AtomicU8,
}

/// Flows that may start one another through their effects' stages in one action;
/// beyond, the flows move a record around in a loop (each finishing at once because
/// all its steps skip).
const MAX_CHAINED_FLOWS: u8 = 8;

impl<'a> Engine<'a> {
    pub fn new(db: &'a TenantDb, catalog: &'a Catalog) -> Self {
        Engine {
            db,
            catalog,
            chained: AtomicU8::new(0),
        }
    }

    fn flow(&self, key: &str) -> Result<&'a Flow> {
        self.catalog
            .package
            .flows
            .iter()
            .find(|f| f.key == key)
            .ok_or_else(|| Error::NotFound(format!("flow {key:?} not found")))
    }

    fn entity(&self, key: &str) -> Result<&'a EntityCatalog> {
        self.catalog
            .entity(key)
            .map(|e| e.as_ref())
            .ok_or_else(|| Error::NotFound(format!("entity {key:?} not found")))
    }

    /// Submits a record the caller may update to a flow (`POST …/{id}/submit`).
    pub async fn submit(
        &self,
        entity: &EntityCatalog,
        record_id: i64,
        flow_key: &str,
        access: &Access,
    ) -> Result<Value> {
        let flow = self.flow(flow_key)?;
        if flow.entity != entity.def.key {
            return Err(Error::field(
                "flow",
                format!(
                    "flow {flow_key:?} approves {} records, not {}",
                    flow.entity, entity.def.key
                ),
            ));
        }
        let txn = self.db.begin_write().await?;
        let record = Records::new(self.db, self.catalog, entity)
            .fetch_in(&txn, record_id, access)
            .await?;
        if let Some(when) = flow.trigger.as_ref().and_then(|t| t.when.as_deref())
            && !condition(when, &record)?
        {
            return Err(Error::field(
                "flow",
                format!("this record does not meet the flow's condition ({when})"),
            ));
        }
        let id = self.start(&txn, flow, &record, access.user_id).await?;
        txn.commit().await?;
        self.view(id).await
    }

    /// Starts every flow of `entity` whose trigger fires on `on` (for `stage_enter`,
    /// on `stage`) and whose `when` holds, inside the caller's transaction.
    pub async fn trigger(
        &self,
        txn: &DatabaseTransaction,
        entity: &str,
        record: &Value,
        on: TriggerOn,
        stage: Option<&str>,
        user: i64,
    ) -> Result<Option<i64>> {
        for flow in self
            .catalog
            .package
            .flows
            .iter()
            .filter(|f| f.entity == entity)
        {
            let Some(trigger) = &flow.trigger else {
                continue;
            };
            if trigger.on != on
                || (on == TriggerOn::StageEnter && trigger.stage.as_deref() != stage)
            {
                continue;
            }
            if let Some(when) = trigger.when.as_deref()
                && !condition(when, record)?
            {
                continue;
            }
            // A record runs one approval at a time: the first matching flow starts.
            return Ok(Some(self.start(txn, flow, record, user).await?));
        }
        Ok(None)
    }

    async fn start(
        &self,
        txn: &DatabaseTransaction,
        flow: &Flow,
        record: &Value,
        submitter: i64,
    ) -> Result<i64> {
        let record_id = record[schema::ID].as_i64().unwrap_or_default();
        let label = flow.label();
        locks::lock(
            txn,
            self.db,
            &flow.entity,
            record_id,
            &format!("approval {label:?} ({}) is pending", flow.key),
        )
        .await?;
        let now = Utc::now();
        let insert = Query::insert()
            .into_table(self.db.table("approvals"))
            .columns(
                [
                    "flow",
                    "entity",
                    "record_id",
                    "status",
                    "step_index",
                    "submitter",
                    "submitted_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                flow.key.as_str().into(),
                flow.entity.as_str().into(),
                record_id.into(),
                PENDING.into(),
                0i32.into(),
                submitter.into(),
                now.into(),
            ])
            .returning_col(Alias::new("id"))
            .to_owned();
        let row = query_first(txn, &insert)
            .await?
            .ok_or_else(|| Error::Internal("insert returned no id".into()))?;
        let id: i64 = row.try_get("", "id")?;
        self.event(txn, id, Some(submitter), "submit", None, None, json!({}))
            .await?;
        let instance = self.load(txn, id).await?;
        self.enter_step(txn, &instance, flow, 0, record).await?;
        Ok(id)
    }

    /// Runs the flow from step `from`: skips steps whose `when` is false, opens the
    /// first remaining one with a task per approver, or finishes approved.
    async fn enter_step(
        &self,
        txn: &DatabaseTransaction,
        instance: &Instance,
        flow: &Flow,
        from: usize,
        record: &Value,
    ) -> Result<()> {
        for (index, step) in flow.steps.iter().enumerate().skip(from) {
            if let Some(when) = step.when.as_deref()
                && !condition(when, record)?
            {
                self.event(
                    txn,
                    instance.id,
                    None,
                    "skip",
                    Some(index),
                    None,
                    json!({"when": when}),
                )
                .await?;
                continue;
            }
            let approvers = self.approvers(step, record, instance.submitter).await?;
            if approvers.is_empty() {
                return Err(Error::Validation(vec![FieldError::new(
                    "flow",
                    format!(
                        "step {:?} of flow {:?} has no active approver ({}); fix the people or roles and submit again",
                        step.key,
                        flow.key,
                        describe_approvers(step)
                    ),
                )]));
            }
            let update = Query::update()
                .table(self.db.table("approvals"))
                .value(Alias::new("step_index"), index as i32)
                .and_where(Expr::col(Alias::new("id")).eq(instance.id))
                .to_owned();
            txn.execute(&update).await?;
            for approver in &approvers {
                self.add_task(txn, instance.id, index, *approver, None, None)
                    .await?;
            }
            self.event(
                txn,
                instance.id,
                None,
                "step",
                Some(index),
                None,
                json!({"approvers": approvers}),
            )
            .await?;
            let title = self.record_title(&instance.entity, record);
            notifications::send(
                txn,
                self.db,
                approvers,
                &Notice {
                    kind: "approval_request",
                    title: format!("待审批：{} — {title}", flow.label()),
                    body: format!(
                        "{} 步骤等待您的审批",
                        step.label.as_deref().unwrap_or(&step.key)
                    ),
                    entity: Some(&instance.entity),
                    record_id: Some(instance.record_id),
                    approval_id: Some(instance.id),
                },
            )
            .await?;
            return Ok(());
        }
        self.finish(txn, instance, flow, "approved", None).await
    }

    async fn add_task(
        &self,
        txn: &DatabaseTransaction,
        approval: i64,
        step: usize,
        approver: i64,
        delegated_from: Option<i64>,
        added_by: Option<i64>,
    ) -> Result<()> {
        let insert = Query::insert()
            .into_table(self.db.table("approval_tasks"))
            .columns(
                [
                    "approval_id",
                    "step_index",
                    "approver",
                    "status",
                    "delegated_from",
                    "added_by",
                    "created_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                approval.into(),
                (step as i32).into(),
                approver.into(),
                PENDING.into(),
                delegated_from.into(),
                added_by.into(),
                Utc::now().into(),
            ])
            .to_owned();
        txn.execute(&insert).await?;
        Ok(())
    }

    /// Active users a step names: by role, username, the submitter's manager (walking
    /// up the department tree until a department has a manager other than the
    /// submitter), or a user field of the record.
    async fn approvers(&self, step: &FlowStep, record: &Value, submitter: i64) -> Result<Vec<i64>> {
        let people: Vec<User> = users::list(self.db)
            .await?
            .into_iter()
            .filter(|u| u.active)
            .collect();
        let active = |id: i64| people.iter().any(|u| u.id == id);
        let rule = &step.approvers;
        let mut found: Vec<i64> = Vec::new();
        if let Some(role) = &rule.role {
            found.extend(
                people
                    .iter()
                    .filter(|u| u.roles.contains(role))
                    .map(|u| u.id),
            );
        }
        if let Some(username) = &rule.user {
            found.extend(
                people
                    .iter()
                    .filter(|u| &u.username == username)
                    .map(|u| u.id),
            );
        }
        if rule.manager_of.is_some() {
            let departments = org::list(self.db).await?;
            let department = people
                .iter()
                .find(|u| u.id == submitter)
                .and_then(|u| u.department);
            if let Some(manager) = manager_above(&departments, department, submitter, &active) {
                found.push(manager);
            }
        }
        if let Some(field) = &rule.field
            && let Some(user) = record[field.as_str()].as_i64()
            && active(user)
        {
            found.push(user);
        }
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    /// An approver's or the submitter's action, in one transaction.
    pub async fn act(
        &self,
        approval_id: i64,
        user: &User,
        act: Act,
        comment: Option<String>,
    ) -> Result<Value> {
        let txn = self.db.begin_write().await?;
        let instance = self.load(&txn, approval_id).await?;
        if instance.status != PENDING {
            return Err(Error::Conflict(format!(
                "approval {approval_id} is already {}",
                instance.status
            )));
        }
        let flow = self.flow(&instance.flow)?;
        let entity = self.entity(&instance.entity)?;
        let step = instance.step_index;
        if let Act::Withdraw = act {
            if user.id != instance.submitter {
                return Err(Error::Forbidden(
                    "only the submitter may withdraw a request".into(),
                ));
            }
            self.event(
                &txn,
                instance.id,
                Some(user.id),
                "withdraw",
                Some(step),
                comment.as_deref(),
                json!({}),
            )
            .await?;
            self.finish(&txn, &instance, flow, "withdrawn", None)
                .await?;
            txn.commit().await?;
            return self.view(approval_id).await;
        }
        let tasks = self.tasks(&txn, instance.id, step).await?;
        let Some(task) = tasks
            .iter()
            .find(|t| t.approver == user.id && t.status == PENDING)
            .cloned()
        else {
            return Err(if tasks.iter().any(|t| t.approver == user.id) {
                Error::Conflict(format!(
                    "you have already acted on step {:?} of approval {approval_id}",
                    flow.steps[step].key
                ))
            } else {
                Error::Forbidden(format!(
                    "you are not an approver of the current step of approval {approval_id}"
                ))
            });
        };
        let record = Records::new(self.db, self.catalog, entity)
            .fetch_in(&txn, instance.record_id, &Access::system())
            .await?;
        let detail = match &act {
            Act::Delegate { to } => json!({"to": to}),
            Act::AddApprovers { users } => json!({"users": users}),
            Act::Reject { to: Some(step) } => json!({"to": step}),
            _ => json!({}),
        };
        self.event(
            &txn,
            instance.id,
            Some(user.id),
            act.name(),
            Some(step),
            comment.as_deref(),
            detail,
        )
        .await?;
        match act {
            Act::Approve => {
                self.close_task(&txn, task.id, "approved", comment.as_deref())
                    .await?;
                let others_pending = tasks.iter().any(|t| t.id != task.id && t.status == PENDING);
                let step_done = flow.steps[step].mode == StepMode::Any || !others_pending;
                if step_done {
                    self.cancel_pending(&txn, instance.id).await?;
                    self.enter_step(&txn, &instance, flow, step + 1, &record)
                        .await?;
                }
            }
            Act::Reject { to } => {
                self.close_task(&txn, task.id, "rejected", comment.as_deref())
                    .await?;
                self.cancel_pending(&txn, instance.id).await?;
                match to {
                    None => {
                        self.finish(&txn, &instance, flow, "rejected", comment.as_deref())
                            .await?
                    }
                    Some(target) => {
                        let index = flow
                            .steps
                            .iter()
                            .position(|s| s.key == target)
                            .filter(|index| *index < step)
                            .ok_or_else(|| {
                                Error::field(
                                    "to",
                                    format!(
                                        "{target:?} is not an earlier step of flow {:?}",
                                        flow.key
                                    ),
                                )
                            })?;
                        self.enter_step(&txn, &instance, flow, index, &record)
                            .await?;
                    }
                }
            }
            Act::Delegate { to } => {
                self.check_delegate(&tasks, &task, to).await?;
                self.close_task(&txn, task.id, "delegated", comment.as_deref())
                    .await?;
                self.add_task(&txn, instance.id, step, to, Some(user.id), None)
                    .await?;
                self.notify_new_approvers(&txn, &instance, flow, &record, [to])
                    .await?;
            }
            Act::AddApprovers { users: added } => {
                let people = users::list(self.db).await?;
                let mut new = BTreeSet::new();
                for id in added {
                    if !people.iter().any(|u| u.id == id && u.active) {
                        return Err(Error::field(
                            "users",
                            format!("user {id} does not exist or is disabled"),
                        ));
                    }
                    if !tasks
                        .iter()
                        .any(|t| t.approver == id && t.status == PENDING)
                    {
                        new.insert(id);
                    }
                }
                for id in &new {
                    self.add_task(&txn, instance.id, step, *id, None, Some(user.id))
                        .await?;
                }
                self.notify_new_approvers(&txn, &instance, flow, &record, new)
                    .await?;
            }
            Act::Withdraw => unreachable!("handled above"),
        }
        txn.commit().await?;
        self.view(approval_id).await
    }

    /// 转审 without loops: not to oneself, not to someone already deciding this step,
    /// not back to anyone who handed this task on.
    async fn check_delegate(&self, tasks: &[Task], task: &Task, to: i64) -> Result<()> {
        if to == task.approver {
            return Err(Error::field("to", "you cannot delegate to yourself"));
        }
        if tasks
            .iter()
            .any(|t| t.approver == to && t.status == PENDING)
        {
            return Err(Error::field(
                "to",
                format!("user {to} already decides this step"),
            ));
        }
        let mut chain = task.delegated_from;
        while let Some(from) = chain {
            if from == to {
                return Err(Error::field(
                    "to",
                    format!("user {to} delegated this task on already; that would make a loop"),
                ));
            }
            chain = tasks
                .iter()
                .find(|t| t.approver == from && t.status == "delegated")
                .and_then(|t| t.delegated_from);
        }
        match users::get(self.db, to).await {
            Ok(user) if user.active => {}
            _ => {
                return Err(Error::field(
                    "to",
                    format!("user {to} does not exist or is disabled"),
                ));
            }
        }
        Ok(())
    }

    async fn notify_new_approvers(
        &self,
        txn: &DatabaseTransaction,
        instance: &Instance,
        flow: &Flow,
        record: &Value,
        users: impl IntoIterator<Item = i64>,
    ) -> Result<()> {
        notifications::send(
            txn,
            self.db,
            users,
            &Notice {
                kind: "approval_request",
                title: format!(
                    "待审批：{} — {}",
                    flow.label(),
                    self.record_title(&instance.entity, record)
                ),
                body: "请您审批".into(),
                entity: Some(&instance.entity),
                record_id: Some(instance.record_id),
                approval_id: Some(instance.id),
            },
        )
        .await
    }

    /// Ends an instance: status, open tasks cancelled, lock released, the flow's
    /// effects applied as the system identity, submitter and copied roles notified.
    async fn finish(
        &self,
        txn: &DatabaseTransaction,
        instance: &Instance,
        flow: &Flow,
        outcome: &str,
        comment: Option<&str>,
    ) -> Result<()> {
        let update = Query::update()
            .table(self.db.table("approvals"))
            .value(Alias::new("status"), outcome)
            .value(Alias::new("finished_at"), Utc::now())
            .and_where(Expr::col(Alias::new("id")).eq(instance.id))
            .to_owned();
        txn.execute(&update).await?;
        self.cancel_pending(txn, instance.id).await?;
        locks::unlock(txn, self.db, &instance.entity, instance.record_id).await?;
        self.event(txn, instance.id, None, outcome, None, None, json!({}))
            .await?;
        let effect = match outcome {
            "approved" => flow.on_approve.as_ref(),
            "rejected" => flow.on_reject.as_ref(),
            _ => None,
        };
        let entity = self.entity(&instance.entity)?;
        let records = Records::new(self.db, self.catalog, entity);
        let mut record = records
            .fetch_in(txn, instance.record_id, &Access::system())
            .await?;
        if let Some(effect) = effect {
            let stage_before = record[schema::STAGE].clone();
            record = self
                .apply_effect(txn, &records, record, effect, &flow.key)
                .await?;
            if let Some(stage) = effect.stage.as_deref().filter(|s| stage_before != **s) {
                self.enter_stage_by_flow(txn, &instance.entity, &record, stage, instance.submitter)
                    .await?;
            }
        }
        let hook_event = match outcome {
            "approved" => HookEvent::OnApproved,
            "rejected" => HookEvent::OnRejected,
            _ => return Ok(()),
        };
        let details = json!({"flow": flow.key, "comment": comment, "approval": instance.id});
        Hooks {
            txn,
            db: self.db,
            catalog: self.catalog,
            entity: &instance.entity,
            access: &Access::system(),
        }
        .run(
            hook_event,
            record.clone(),
            None,
            details.as_object().cloned().unwrap_or_default(),
        )
        .await?;
        // Webhooks and other outbox readers hear of the verdict with the record as
        // the flow's effects left it.
        journal::Entries::of_outbox(
            self.db,
            &instance.entity,
            outcome,
            &[(instance.record_id, &record)],
        )
        .write(txn)
        .await?;
        let verdict = if outcome == "approved" {
            "已通过"
        } else {
            "已驳回"
        };
        let title = format!(
            "{}{verdict} — {}",
            flow.label(),
            self.record_title(&instance.entity, &record)
        );
        let body = comment.map(|c| format!("意见：{c}")).unwrap_or_default();
        let notice = |kind| Notice {
            kind,
            title: title.clone(),
            body: body.clone(),
            entity: Some(&instance.entity),
            record_id: Some(instance.record_id),
            approval_id: Some(instance.id),
        };
        notifications::send(
            txn,
            self.db,
            [instance.submitter],
            &notice("approval_result"),
        )
        .await?;
        if let Some(cc) = flow
            .notify
            .as_ref()
            .map(|n| &n.cc)
            .filter(|cc| !cc.is_empty())
        {
            let copied: Vec<i64> = users::list(self.db)
                .await?
                .into_iter()
                .filter(|u| u.active && u.roles.iter().any(|r| cc.contains(r)))
                .map(|u| u.id)
                .collect();
            notifications::send(txn, self.db, copied, &notice("approval_cc")).await?;
        }
        Ok(())
    }

    /// A stage a flow's effect moved a record to starts that stage's flows, as a move
    /// by hand does; the instance's submitter submits them.
    async fn enter_stage_by_flow(
        &self,
        txn: &DatabaseTransaction,
        entity: &str,
        record: &Value,
        stage: &str,
        submitter: i64,
    ) -> Result<()> {
        let depth = self.chained.fetch_add(1, Ordering::SeqCst) + 1;
        let started = if depth > MAX_CHAINED_FLOWS {
            Err(Error::Conflict(format!(
                "the flows keep moving this record from stage to stage (last into {stage:?}); \
                 check the stages their on_approve and on_reject set"
            )))
        } else {
            // Boxed: starting a flow may finish it, and its effects enter a stage again.
            Box::pin(self.trigger(
                txn,
                entity,
                record,
                TriggerOn::StageEnter,
                Some(stage),
                submitter,
            ))
            .await
        };
        self.chained.fetch_sub(1, Ordering::SeqCst);
        started.map(|_| ())
    }

    async fn apply_effect(
        &self,
        txn: &DatabaseTransaction,
        records: &Records<'_>,
        record: Value,
        effect: &FlowEffect,
        flow: &str,
    ) -> Result<Value> {
        let mut input: Map<String, Value> = effect.set.clone();
        if let Some(stage) = &effect.stage {
            input.insert(schema::STAGE.into(), json!(stage));
        }
        if input.is_empty() {
            return Ok(record);
        }
        let system = Access::system();
        let checked = records.check_input(&Value::Object(input), &system)?;
        records
            .update_in(txn, record, checked, None, &system, &format!("flow:{flow}"))
            .await
    }

    async fn close_task(
        &self,
        txn: &DatabaseTransaction,
        task: i64,
        status: &str,
        comment: Option<&str>,
    ) -> Result<()> {
        let update = Query::update()
            .table(self.db.table("approval_tasks"))
            .value(Alias::new("status"), status)
            .value(Alias::new("acted_at"), Utc::now())
            .value(Alias::new("comment"), comment)
            .and_where(Expr::col(Alias::new("id")).eq(task))
            .to_owned();
        txn.execute(&update).await?;
        Ok(())
    }

    async fn cancel_pending(&self, txn: &DatabaseTransaction, approval: i64) -> Result<()> {
        let update = Query::update()
            .table(self.db.table("approval_tasks"))
            .value(Alias::new("status"), "cancelled")
            .and_where(Expr::col(Alias::new("approval_id")).eq(approval))
            .and_where(Expr::col(Alias::new("status")).eq(PENDING))
            .to_owned();
        txn.execute(&update).await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn event(
        &self,
        txn: &DatabaseTransaction,
        approval: i64,
        user: Option<i64>,
        action: &str,
        step: Option<usize>,
        comment: Option<&str>,
        detail: Value,
    ) -> Result<()> {
        let insert = Query::insert()
            .into_table(self.db.table("approval_events"))
            .columns(
                [
                    "approval_id",
                    "at",
                    "user_id",
                    "action",
                    "step_index",
                    "comment",
                    "detail",
                ]
                .map(Alias::new),
            )
            .values_panic([
                approval.into(),
                Utc::now().into(),
                user.into(),
                action.into(),
                step.map(|s| s as i32).into(),
                comment.into(),
                detail.to_string().into(),
            ])
            .to_owned();
        txn.execute(&insert).await?;
        Ok(())
    }

    async fn load(&self, conn: &impl ConnectionTrait, id: i64) -> Result<Instance> {
        self.instances(conn, Expr::col(Alias::new("id")).eq(id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::NotFound(format!("approval {id} not found")))
    }

    async fn instances(
        &self,
        conn: &impl ConnectionTrait,
        condition: sea_orm::sea_query::SimpleExpr,
    ) -> Result<Vec<Instance>> {
        let select = Query::select()
            .columns(
                [
                    "id",
                    "flow",
                    "entity",
                    "record_id",
                    "status",
                    "step_index",
                    "submitter",
                    "submitted_at",
                    "finished_at",
                ]
                .map(Alias::new),
            )
            .from(self.db.table("approvals"))
            .and_where(condition)
            .order_by(Alias::new("id"), Order::Asc)
            .to_owned();
        conn.query_all(&select)
            .await?
            .iter()
            .map(|row| {
                Ok(Instance {
                    id: row.try_get("", "id")?,
                    flow: row.try_get("", "flow")?,
                    entity: row.try_get("", "entity")?,
                    record_id: row.try_get("", "record_id")?,
                    status: row.try_get("", "status")?,
                    step_index: row.try_get::<i32>("", "step_index")? as usize,
                    submitter: row.try_get("", "submitter")?,
                    submitted_at: row.try_get("", "submitted_at")?,
                    finished_at: row.try_get("", "finished_at")?,
                })
            })
            .collect()
    }

    async fn tasks(
        &self,
        conn: &impl ConnectionTrait,
        approval: i64,
        step: usize,
    ) -> Result<Vec<Task>> {
        let select = Query::select()
            .columns(["id", "approver", "status", "delegated_from"].map(Alias::new))
            .from(self.db.table("approval_tasks"))
            .and_where(Expr::col(Alias::new("approval_id")).eq(approval))
            .and_where(Expr::col(Alias::new("step_index")).eq(step as i32))
            .order_by(Alias::new("id"), Order::Asc)
            .to_owned();
        conn.query_all(&select)
            .await?
            .iter()
            .map(|row| {
                Ok(Task {
                    id: row.try_get("", "id")?,
                    approver: row.try_get("", "approver")?,
                    status: row.try_get("", "status")?,
                    delegated_from: row.try_get("", "delegated_from")?,
                })
            })
            .collect()
    }

    fn record_title(&self, entity: &str, record: &Value) -> String {
        self.catalog
            .entity(entity)
            .map(|e| e.title_of(record))
            .unwrap_or_default()
    }

    /// An instance as the API shows it, with its tasks and timeline.
    pub async fn view(&self, id: i64) -> Result<Value> {
        let conn = self.db.conn();
        let instance = self.load(&conn, id).await?;
        self.describe(&conn, &instance).await
    }

    async fn describe(&self, conn: &impl ConnectionTrait, instance: &Instance) -> Result<Value> {
        let flow = self.flow(&instance.flow).ok();
        let step_key = |index: Option<i32>| {
            index.and_then(|i| {
                flow.and_then(|f| f.steps.get(i as usize))
                    .map(|s| s.key.clone())
            })
        };
        let select = Query::select()
            .columns(
                [
                    "id",
                    "step_index",
                    "approver",
                    "status",
                    "delegated_from",
                    "added_by",
                    "acted_at",
                    "comment",
                ]
                .map(Alias::new),
            )
            .from(self.db.table("approval_tasks"))
            .and_where(Expr::col(Alias::new("approval_id")).eq(instance.id))
            .order_by(Alias::new("id"), Order::Asc)
            .to_owned();
        let tasks = conn
            .query_all(&select)
            .await?
            .iter()
            .map(|row| {
                let acted: Option<DateTime<Utc>> = row.try_get("", "acted_at")?;
                Ok(json!({
                    "id": row.try_get::<i64>("", "id")?,
                    "step": step_key(row.try_get("", "step_index")?),
                    "approver": row.try_get::<i64>("", "approver")?,
                    "status": row.try_get::<String>("", "status")?,
                    "delegated_from": row.try_get::<Option<i64>>("", "delegated_from")?,
                    "added_by": row.try_get::<Option<i64>>("", "added_by")?,
                    "acted_at": acted.map(format_datetime),
                    "comment": row.try_get::<Option<String>>("", "comment")?,
                }))
            })
            .collect::<Result<Vec<Value>>>()?;
        let select = Query::select()
            .columns(["at", "user_id", "action", "step_index", "comment", "detail"].map(Alias::new))
            .from(self.db.table("approval_events"))
            .and_where(Expr::col(Alias::new("approval_id")).eq(instance.id))
            .order_by(Alias::new("id"), Order::Asc)
            .to_owned();
        let events = conn
            .query_all(&select)
            .await?
            .iter()
            .map(|row| {
                let at: DateTime<Utc> = row.try_get("", "at")?;
                let detail: String = row.try_get("", "detail")?;
                Ok(json!({
                    "at": format_datetime(at),
                    "user": row.try_get::<Option<i64>>("", "user_id")?,
                    "action": row.try_get::<String>("", "action")?,
                    "step": step_key(row.try_get("", "step_index")?),
                    "comment": row.try_get::<Option<String>>("", "comment")?,
                    "detail": serde_json::from_str::<Value>(&detail).unwrap_or(Value::Null),
                }))
            })
            .collect::<Result<Vec<Value>>>()?;
        Ok(json!({
            "id": instance.id,
            "flow": instance.flow,
            "entity": instance.entity,
            "record": instance.record_id,
            "status": instance.status,
            "step": (instance.status == PENDING).then(|| step_key(Some(instance.step_index as i32))).flatten(),
            "submitter": instance.submitter,
            "submitted_at": format_datetime(instance.submitted_at),
            "finished_at": instance.finished_at.map(format_datetime),
            "tasks": tasks,
            "events": events,
        }))
    }

    /// What the user may act on now: pending tasks of the current step of pending
    /// instances, oldest first, as `{id, flow, entity, record, title, step, submitter,
    /// submitted_at}`.
    pub async fn inbox(&self, user_id: i64) -> Result<Vec<Value>> {
        let conn = self.db.conn();
        let select = Query::select()
            .columns(["approval_id", "step_index"].map(Alias::new))
            .from(self.db.table("approval_tasks"))
            .and_where(Expr::col(Alias::new("approver")).eq(user_id))
            .and_where(Expr::col(Alias::new("status")).eq(PENDING))
            .order_by(Alias::new("id"), Order::Asc)
            .to_owned();
        let mut items = Vec::new();
        for row in conn.query_all(&select).await? {
            let approval: i64 = row.try_get("", "approval_id")?;
            let step: i32 = row.try_get("", "step_index")?;
            let instance = self.load(&conn, approval).await?;
            if instance.status != PENDING || instance.step_index != step as usize {
                continue;
            }
            let title = match self.catalog.entity(&instance.entity) {
                Some(entity) => Records::new(self.db, self.catalog, entity)
                    .get(instance.record_id, &Access::system())
                    .await
                    .map(|record| self.record_title(&instance.entity, &record))
                    .unwrap_or_default(),
                None => String::new(),
            };
            let flow = self.flow(&instance.flow).ok();
            items.push(json!({
                "id": instance.id,
                "flow": instance.flow,
                "flow_label": flow.map(Flow::label),
                "entity": instance.entity,
                "record": instance.record_id,
                "title": title,
                "step": flow.and_then(|f| f.steps.get(instance.step_index)).map(|s| s.key.clone()),
                "submitter": instance.submitter,
                "submitted_at": format_datetime(instance.submitted_at),
            }));
        }
        Ok(items)
    }

    /// Whether a user takes part in an approval (submitter or approver of any step).
    pub fn takes_part(view: &Value, user_id: i64) -> bool {
        view["submitter"].as_i64() == Some(user_id)
            || view["tasks"].as_array().is_some_and(|tasks| {
                tasks
                    .iter()
                    .any(|t| t["approver"].as_i64() == Some(user_id))
            })
    }

    /// Every approval of a record, oldest first, with tasks and timeline.
    pub async fn for_record(&self, entity: &str, record_id: i64) -> Result<Vec<Value>> {
        let conn = self.db.conn();
        let condition = Expr::col(Alias::new("entity"))
            .eq(entity)
            .and(Expr::col(Alias::new("record_id")).eq(record_id));
        let mut views = Vec::new();
        for instance in self.instances(&conn, condition).await? {
            views.push(self.describe(&conn, &instance).await?);
        }
        Ok(views)
    }
}

fn describe_approvers(step: &FlowStep) -> String {
    let rule = &step.approvers;
    [
        rule.role.as_ref().map(|r| format!("role {r}")),
        rule.user.as_ref().map(|u| format!("user {u}")),
        rule.manager_of
            .map(|_| "the submitter's manager".to_string()),
        rule.field
            .as_ref()
            .map(|f| format!("the user in field {f}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ")
}

/// The first manager above `department` (itself first) who is active and not the
/// submitter; a cycle in stored data ends the walk.
fn manager_above(
    departments: &[Department],
    department: Option<i64>,
    submitter: i64,
    active: &impl Fn(i64) -> bool,
) -> Option<i64> {
    let mut seen = BTreeSet::new();
    let mut current = department;
    while let Some(id) = current {
        if !seen.insert(id) {
            return None;
        }
        let department = departments.iter().find(|d| d.id == id)?;
        if let Some(manager) = department.manager
            && manager != submitter
            && active(manager)
        {
            return Some(manager);
        }
        current = department.parent;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managers_are_found_up_the_tree() {
        let department = |id, parent, manager| Department {
            id,
            name: String::new(),
            parent,
            manager,
        };
        let tree = vec![
            department(1, None, Some(100)),
            department(2, Some(1), Some(200)),
            department(3, Some(2), None),
        ];
        let everyone = |_| true;
        assert_eq!(manager_above(&tree, Some(3), 7, &everyone), Some(200));
        assert_eq!(
            manager_above(&tree, Some(2), 200, &everyone),
            Some(100),
            "a manager's approver is the next one up"
        );
        assert_eq!(
            manager_above(&tree, Some(3), 7, &|id| id != 200),
            Some(100),
            "disabled managers are skipped"
        );
        assert_eq!(manager_above(&tree, None, 7, &everyone), None);
        let cycle = vec![department(1, Some(2), None), department(2, Some(1), None)];
        assert_eq!(manager_above(&cycle, Some(1), 7, &everyone), None);
    }
}
