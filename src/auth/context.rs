//! The request context: resolved once per request from the bearer token, it names the
//! tenant and the user, and it is the one gate every record operation asks.

use std::sync::Arc;

use crate::auth::{Access, User, sessions, users};
use crate::catalog::{Catalog, EntityCatalog};
use crate::error::{Error, Result};
use crate::meta::Action;
use crate::tenant::{Tenant, Tenants};

#[derive(Clone)]
pub struct Context {
    pub tenant: Arc<Tenant>,
    pub user: User,
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
        let user = users::get(&tenant.db, session.user_id)
            .await
            .map_err(|_| unauthorized())?;
        if !user.active {
            return Err(unauthorized());
        }
        Ok(Context { tenant, user })
    }

    /// The entity, or 404 naming it.
    pub fn entity<'c>(&self, catalog: &'c Catalog, key: &str) -> Result<&'c Arc<EntityCatalog>> {
        catalog
            .entity(key)
            .ok_or_else(|| Error::NotFound(format!("entity {key:?} not found")))
    }

    /// The permission gate: what this user may do with `action` on `entity`.
    /// Role-based scopes and field rules come from the tenant's roles (Casbin); until
    /// those are published every signed-in user of the tenant has full access.
    pub fn authorize(&self, _entity: &EntityCatalog, _action: Action) -> Result<Access> {
        Ok(Access::full(self.user.id))
    }

    /// Designer rights: publishing metadata, managing users.
    pub fn require_admin(&self) -> Result<()> {
        if self.user.is_admin {
            Ok(())
        } else {
            Err(Error::Forbidden("this needs administrator rights".into()))
        }
    }
}
