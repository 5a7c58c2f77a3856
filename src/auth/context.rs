//! The request context: resolved once per request from the bearer token, it names the
//! tenant and the user, and it is the one gate every record operation asks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::auth::org::Org;
use crate::auth::policy::{FieldRule, action_name};
use crate::auth::{Access, OwnerIndex, User, sessions, users};
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::{Error, Result};
use crate::meta::Action;
use crate::store::db::Backend;
use crate::tenant::{Tenant, Tenants};

#[derive(Clone)]
pub struct Context {
    pub tenant: Arc<Tenant>,
    pub user: User,
    /// The organisation as this request first saw it, so that every decision in one
    /// request uses the same one.
    org: Arc<OnceCell<Arc<Org>>>,
    /// Decisions already made in this request, per entity and action.
    decisions: Arc<Mutex<HashMap<(String, Action), Access>>>,
}

impl Context {
    /// Resolves a bearer token; every failure is the same 401 so that nothing about
    /// other sessions or users leaks.
    pub async fn from_token(tenants: &Tenants, token: &str) -> Result<Context> {
        let unauthorized =
            || Error::Unauthorized("invalid or expired session; log in again".into());
        let session = sessions::resolve(&tenants.platform, token)
            .await?
            .ok_or_else(unauthorized)?;
        let tenant = tenants
            .get(&session.tenant)
            .await
            .map_err(|_| unauthorized())?;
        let policy = tenant.policy().await;
        let user = users::get_with_policy_roles(&tenant.db, &policy, session.user_id)
            .await
            .map_err(|_| unauthorized())?;
        if !user.active {
            return Err(unauthorized());
        }
        tenants.rate_limits().check(&tenant.key, user.id)?;
        Ok(Context::new(tenant, user))
    }

    /// A context for a user acting outside HTTP (tests, the CLI, background jobs).
    pub fn new(tenant: Arc<Tenant>, user: User) -> Context {
        Context {
            tenant,
            user,
            org: Arc::new(OnceCell::new()),
            decisions: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The entity, or 404 naming it.
    pub fn entity<'c>(&self, catalog: &'c Catalog, key: &str) -> Result<&'c Arc<EntityCatalog>> {
        catalog
            .entity(key)
            .ok_or_else(|| Error::NotFound(format!("entity {key:?} not found")))
    }

    async fn org(&self) -> Result<&Org> {
        let org = self.org.get_or_try_init(|| self.tenant.org()).await?;
        Ok(org)
    }

    /// The permission gate: what this user may do with `action` on `entity` — the
    /// widest scope the user's roles grant, as an owner set and row predicate, and
    /// the fields masked from them or closed to their writes. Administrators have
    /// full access. Callers hold the catalog's read guard, so the policy they see
    /// belongs to the same published version.
    pub async fn authorize(&self, entity: &EntityCatalog, action: Action) -> Result<Access> {
        if self.user.is_admin {
            return Ok(Access {
                gate: Some(self.gate()),
                ..Access::full(self.user.id)
            });
        }
        let key = (entity.def.key.clone(), action);
        if let Some(access) = self.decisions.lock().expect("decisions lock").get(&key) {
            return Ok(access.clone());
        }
        let policy = self.tenant.policy().await;
        let entity_key = &entity.def.key;
        let scope = policy
            .scope(self.user.id, entity_key, action)
            .ok_or_else(|| {
                Error::Forbidden(format!(
                    "you may not {} {} records",
                    action_name(action),
                    entity.def.label()
                ))
            })?;
        let org = self.org().await?;
        let owners = org.owners(self.user.id, scope);
        // A set of a tenth of the people or more is taken to own as large a share.
        let wide = owners
            .as_ref()
            .is_some_and(|o| o.len() > 1 && o.len() * 10 >= org.people());
        let owner_index = match (self.tenant.db.backend(), wide) {
            (Backend::Sqlite, true) => OwnerIndex::Avoid,
            _ => OwnerIndex::Use,
        };
        let hidden =
            policy.denied_fields(self.user.id, entity_key, Action::Read, FieldRule::DenyRead);
        let write_action = match action {
            Action::Create => Action::Create,
            _ => Action::Update,
        };
        let readonly =
            policy.denied_fields(self.user.id, entity_key, write_action, FieldRule::DenyWrite);
        let access = Access {
            gate: Some(self.gate()),
            ..Access::scoped(self.user.id, scope, owners, owner_index, hidden, readonly)
        };
        self.decisions
            .lock()
            .expect("decisions lock")
            .insert(key, access.clone());
        Ok(access)
    }

    /// This user's gate for an [`Access`] to carry. A context of its own: the access is
    /// cached in this context's decisions, and must not hold them in turn.
    fn gate(&self) -> Gate {
        Gate(Context::new(self.tenant.clone(), self.user.clone()))
    }

    /// What a form shows this user: what they may read, editable as update allows
    /// (or create, for someone who may only create); nothing editable otherwise.
    pub async fn form_access(&self, entity: &EntityCatalog) -> Result<Access> {
        let mut access = self.authorize(entity, Action::Read).await?;
        let write = match self.authorize(entity, Action::Update).await {
            Ok(write) => Ok(write),
            Err(_) => self.authorize(entity, Action::Create).await,
        };
        access.readonly_fields = match write {
            Ok(write) => write.readonly_fields,
            Err(_) => entity.def.fields.iter().map(|f| f.key.clone()).collect(),
        };
        Ok(access)
    }

    /// Designer rights: publishing metadata, managing people. The tenant's
    /// administrators and users of a role with `admin: true`.
    pub async fn require_admin(&self) -> Result<()> {
        if self.user.is_admin || self.tenant.policy().await.is_designer(self.user.id) {
            Ok(())
        } else {
            Err(Error::Forbidden("this needs administrator rights".into()))
        }
    }
}

/// The acting user's permission gate, carried by an [`Access`]: hooks that run inside
/// a write read other records through it, with the user's own rights.
#[derive(Clone)]
pub struct Gate(Context);

impl Gate {
    pub fn user(&self) -> &User {
        &self.0.user
    }

    pub async fn authorize(&self, entity: &EntityCatalog, action: Action) -> Result<Access> {
        self.0.authorize(entity, action).await
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gate(user {})", self.0.user.id)
    }
}
