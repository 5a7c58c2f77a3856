//! Roles compiled to Casbin: the model text (RBAC with domains, the domain being the
//! tenant), the policy lines generated from a package's roles, and [`Policy`], the
//! loaded enforcer that answers "may this user do A on E, and how widely".
//!
//! Subjects are `user:<id>` and `role:<key>`; `g` lines put users in roles. Objects and
//! actions of the `p` lines:
//!
//! | object | action | granted by |
//! |---|---|---|
//! | `entity:<e>` | `<action>:<scope>` (`read:own`, `update:all`, …) | a role permission |
//! | `field:<e>.<f>` | `deny_read` / `deny_write` | a permission's field denies |
//! | `designer` | `admin` | `admin: true` on a role |
//! | `report:<key>` | `run` | a report's `roles` |
//! | `dashboard:<key>` | `view` | a dashboard's `roles` |

use std::collections::BTreeSet;

use casbin::{CoreApi, DefaultModel, Enforcer, MgmtApi, RbacApi};

use crate::auth::casbin_adapter::{self, RuleAdapter};
use crate::error::{Error, Result};
use crate::meta::{Action, Package, Scope};
use crate::store::db::TenantDb;

pub const MODEL: &str = "\
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act
";

pub const ACTIONS: [Action; 7] = [
    Action::Create,
    Action::Read,
    Action::Update,
    Action::Delete,
    Action::Export,
    Action::Import,
    Action::Assign,
];

/// Scopes from the widest down: the gate grants the first one the enforcer allows.
const SCOPES_WIDEST_FIRST: [Scope; 4] = [
    Scope::All,
    Scope::Subordinates,
    Scope::Department,
    Scope::Own,
];

pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Read => "read",
        Action::Update => "update",
        Action::Delete => "delete",
        Action::Export => "export",
        Action::Import => "import",
        Action::Assign => "assign",
    }
}

pub fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Own => "own",
        Scope::Department => "department",
        Scope::Subordinates => "subordinates",
        Scope::All => "all",
    }
}

pub fn user_subject(user_id: i64) -> String {
    format!("user:{user_id}")
}

pub fn role_subject(role: &str) -> String {
    format!("role:{role}")
}

fn entity_object(entity: &str) -> String {
    format!("entity:{entity}")
}

fn field_object(entity: &str, field: &str) -> String {
    format!("field:{entity}.{field}")
}

/// Which field rule a deny line states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRule {
    DenyRead,
    DenyWrite,
}

impl FieldRule {
    fn action(self) -> &'static str {
        match self {
            FieldRule::DenyRead => "deny_read",
            FieldRule::DenyWrite => "deny_write",
        }
    }
}

/// Moves a namespace's policy lines from tenant `from`'s domain to `to`'s (a tenant
/// restored under another key): the domain is `p`'s second value and `g`'s third.
pub async fn move_domain(
    conn: &impl sea_orm::ConnectionTrait,
    db: &TenantDb,
    from: &str,
    to: &str,
) -> Result<()> {
    casbin_adapter::move_domain(conn, db, "p", 1, from, to).await?;
    casbin_adapter::move_domain(conn, db, "g", 2, from, to).await?;
    Ok(())
}

/// The `p` lines (without the `p`) a package's roles, reports and dashboards grant
/// in the tenant `domain`, in a stable order.
pub fn compile(package: &Package, domain: &str) -> Vec<Vec<String>> {
    let mut lines: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut line = |sub: String, obj: String, act: String| {
        lines.insert(vec![sub, domain.to_string(), obj, act]);
    };
    for role in &package.roles {
        let sub = role_subject(&role.key);
        if role.admin {
            line(sub.clone(), "designer".into(), "admin".into());
        }
        for permission in &role.permissions {
            for action in &permission.actions {
                line(
                    sub.clone(),
                    entity_object(&permission.entity),
                    format!("{}:{}", action_name(*action), scope_name(permission.scope)),
                );
            }
            for (rule, fields) in [
                (FieldRule::DenyRead, &permission.deny_read),
                (FieldRule::DenyWrite, &permission.deny_write),
            ] {
                for field in fields {
                    line(
                        sub.clone(),
                        field_object(&permission.entity, field),
                        rule.action().into(),
                    );
                }
            }
        }
    }
    for report in &package.reports {
        for role in &report.roles {
            line(
                role_subject(role),
                format!("report:{}", report.key),
                "run".into(),
            );
        }
    }
    for dashboard in &package.dashboards {
        for role in &dashboard.roles {
            line(
                role_subject(role),
                format!("dashboard:{}", dashboard.key),
                "view".into(),
            );
        }
    }
    lines.into_iter().collect()
}

/// A tenant's loaded enforcer. Immutable once built: a publish or a change of a
/// user's roles builds a new one and swaps it in.
pub struct Policy {
    enforcer: Enforcer,
    domain: String,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

fn casbin_error(error: casbin::Error) -> Error {
    Error::Internal(format!("permission policy could not be loaded: {error}"))
}

impl Policy {
    /// Loads the tenant's policy lines from its `casbin_rule` table.
    pub async fn load(db: &TenantDb) -> Result<Policy> {
        let model = DefaultModel::from_str(MODEL).await.map_err(casbin_error)?;
        let enforcer = Enforcer::new(model, RuleAdapter::new(db.clone()))
            .await
            .map_err(casbin_error)?;
        Ok(Policy {
            enforcer,
            domain: db.key.clone(),
        })
    }

    fn allows(&self, subject: &str, object: &str, action: &str) -> bool {
        self.enforcer
            .enforce((subject, self.domain.as_str(), object, action))
            .unwrap_or(false)
    }

    /// The widest scope in which the user may do `action` on `entity`, if any.
    pub fn scope(&self, user_id: i64, entity: &str, action: Action) -> Option<Scope> {
        let subject = user_subject(user_id);
        let object = entity_object(entity);
        SCOPES_WIDEST_FIRST.into_iter().find(|scope| {
            self.allows(
                &subject,
                &object,
                &format!("{}:{}", action_name(action), scope_name(*scope)),
            )
        })
    }

    /// The role keys of a user.
    pub fn roles_of(&self, user_id: i64) -> Vec<String> {
        let mut roles: Vec<String> = self
            .enforcer
            .get_roles_for_user(&user_subject(user_id), Some(&self.domain))
            .into_iter()
            .filter_map(|r| r.strip_prefix("role:").map(String::from))
            .collect();
        roles.sort();
        roles
    }

    /// Fields of `entity` the user may not read (or write): those that every one of
    /// the user's roles granting the action on the entity denies. Rights add up, so
    /// a field one role hides stays visible when another role grants it plainly.
    pub fn denied_fields(
        &self,
        user_id: i64,
        entity: &str,
        action: Action,
        rule: FieldRule,
    ) -> BTreeSet<String> {
        let object = entity_object(entity);
        let prefix = format!("field:{entity}.");
        let mut denied: Option<BTreeSet<String>> = None;
        for role in self.roles_of(user_id) {
            let subject = role_subject(&role);
            let grants = SCOPES_WIDEST_FIRST.into_iter().any(|scope| {
                self.allows(
                    &subject,
                    &object,
                    &format!("{}:{}", action_name(action), scope_name(scope)),
                )
            });
            if !grants {
                continue;
            }
            let fields: BTreeSet<String> = self
                .enforcer
                .get_filtered_policy(0, vec![subject, self.domain.clone()])
                .into_iter()
                .filter(|line| line.get(3).map(String::as_str) == Some(rule.action()))
                .filter_map(|line| line.get(2)?.strip_prefix(&prefix).map(String::from))
                .collect();
            denied = Some(match denied {
                None => fields,
                Some(previous) => previous.intersection(&fields).cloned().collect(),
            });
        }
        denied.unwrap_or_default()
    }

    /// May use the designer (publish metadata, manage people).
    pub fn is_designer(&self, user_id: i64) -> bool {
        self.allows(&user_subject(user_id), "designer", "admin")
    }

    pub fn may_run_report(&self, user_id: i64, report: &str) -> bool {
        self.allows(&user_subject(user_id), &format!("report:{report}"), "run")
    }

    pub fn may_view_dashboard(&self, user_id: i64, dashboard: &str) -> bool {
        self.allows(
            &user_subject(user_id),
            &format!("dashboard:{dashboard}"),
            "view",
        )
    }

    /// Every line as Casbin writes it (`p, role:sales, acme, entity:customer, read:own`),
    /// `p` lines first.
    pub fn lines(&self) -> Vec<String> {
        let p = self.enforcer.get_policy().into_iter().map(|l| ("p", l));
        let g = self
            .enforcer
            .get_grouping_policy()
            .into_iter()
            .map(|l| ("g", l));
        p.chain(g)
            .map(|(ptype, line)| format!("{ptype}, {}", line.join(", ")))
            .collect()
    }
}
