//! Tenants at runtime: the registry of tenants, each with its namespace and its current
//! catalog, and publishing a metadata package (parse → validate → plan → one
//! transaction → catalog swap).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock, RwLockReadGuard};

use crate::auth::casbin_adapter::{delete_rules, insert_rules, load_rules};
use crate::auth::org::{self, Department, DepartmentInput, Org};
use crate::auth::policy::{self, Policy};
use crate::auth::rate::RateLimits;
use crate::auth::sessions;
use crate::auth::users::{self, NewUser, User, UserPatch};
use crate::catalog::Catalog;
use crate::cluster::{self, Leases};
use crate::error::{Error, Result};
use crate::meta::validate::check_identifier;
use crate::meta::{FieldType, Package, Problem, parse_package};
use crate::search::SearchIndex;
use crate::search::embedded::EmbeddedIndex;
use crate::search::meili::MeiliIndex;
use crate::store::db::query_first;
use crate::store::db::{DbConfig, Platform, TenantDb};
use crate::store::plan::{self, Archive, Plan};
use crate::store::records::sequence_name;

/// A tenant: its namespace and the catalog of its published metadata.
pub struct Tenant {
    pub key: String,
    pub db: TenantDb,
    /// Requests hold the read side while they work, so a publish (the write side)
    /// never swaps the schema under a running query.
    catalog: RwLock<Arc<Catalog>>,
    /// The Casbin enforcer for the published roles and the users' role lines. Swapped
    /// while the catalog's write lock is held, so a request that holds the catalog
    /// sees the policy of the same version.
    policy: RwLock<Arc<Policy>>,
    /// One search indexer run at a time per tenant.
    pub indexing: Mutex<()>,
    /// The departments and who is in which, read once and kept until a user or a
    /// department changes (here, or on another node: its change notice).
    org: std::sync::Mutex<OrgCache>,
}

#[derive(Default)]
struct OrgCache {
    org: Option<Arc<Org>>,
    /// Bumped by every change, so that an organisation read before a change is not
    /// kept after it.
    generation: u64,
}

/// The outcome of applying a package.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// The new version, or the current one when nothing changed or on a dry run.
    pub version: i64,
    pub dry_run: bool,
    pub changed: bool,
    pub plan: Plan,
}

impl Tenant {
    pub async fn catalog(&self) -> RwLockReadGuard<'_, Arc<Catalog>> {
        self.catalog.read().await
    }

    /// The current permission policy.
    pub async fn policy(&self) -> Arc<Policy> {
        self.policy.read().await.clone()
    }

    /// Rebuilds the enforcer from the stored lines. Loads while holding the write
    /// side, so reloads happen one at a time and the last one saw every commit.
    async fn reload_policy(&self) -> Result<()> {
        let mut slot = self.policy.write().await;
        *slot = Arc::new(Policy::load(&self.db).await?);
        Ok(())
    }

    /// Role keys of the published metadata.
    async fn role_keys(&self) -> std::collections::BTreeSet<String> {
        let catalog = self.catalog().await;
        catalog
            .package
            .roles
            .iter()
            .map(|r| r.key.clone())
            .collect()
    }

    /// The organisation: departments and their members.
    pub async fn org(&self) -> Result<Arc<Org>> {
        let generation = {
            let cache = self.org.lock().expect("org cache");
            if let Some(org) = &cache.org {
                return Ok(org.clone());
            }
            cache.generation
        };
        let org = Arc::new(Org::load(&self.db).await?);
        let mut cache = self.org.lock().expect("org cache");
        if cache.generation == generation {
            cache.org = Some(org.clone());
        }
        Ok(org)
    }

    /// Drops the cached organisation: a user or a department changed.
    fn forget_org(&self) {
        let mut cache = self.org.lock().expect("org cache");
        cache.org = None;
        cache.generation += 1;
    }

    /// After a change to users or departments: this node and every other one read the
    /// organisation afresh.
    async fn org_changed(&self) -> Result<()> {
        self.forget_org();
        cluster::announce(&self.db.conn(), &self.db).await
    }

    pub async fn create_department(&self, input: &DepartmentInput) -> Result<Department> {
        let department = org::create(&self.db, input).await?;
        self.org_changed().await?;
        Ok(department)
    }

    /// Renames, moves (with its subtree) or changes the manager of a department.
    pub async fn update_department(&self, id: i64, input: &DepartmentInput) -> Result<Department> {
        let department = org::update(&self.db, id, input).await?;
        self.org_changed().await?;
        Ok(department)
    }

    pub async fn create_user(&self, new: &NewUser) -> Result<User> {
        let user = users::create(&self.db, new, &self.role_keys().await).await?;
        self.reload_policy().await?;
        self.org_changed().await?;
        Ok(user)
    }

    /// Changes a user; disabling them or resetting their password ends their sessions.
    pub async fn update_user(
        &self,
        platform: &Platform,
        id: i64,
        patch: &UserPatch,
    ) -> Result<User> {
        let user = users::update(&self.db, id, patch, &self.role_keys().await).await?;
        if patch.ends_sessions() {
            sessions::end_all_for_user(platform, &self.key, id).await?;
        }
        if patch.roles.is_some() {
            self.reload_policy().await?;
        }
        if patch.department.is_some() {
            self.forget_org();
        }
        if patch.roles.is_some() || patch.department.is_some() {
            cluster::announce(&self.db.conn(), &self.db).await?;
        }
        Ok(user)
    }

    /// Applies a package: nothing changes unless every step succeeds.
    pub async fn apply(&self, json: &Value, author: Option<i64>, dry_run: bool) -> Result<Applied> {
        self.apply_change(author, dry_run, |_| Ok(json.clone()))
            .await
    }

    /// Applies the package `change` makes of the published one, with no other publish
    /// in between (enabling a plugin merges into what is there).
    pub async fn apply_change(
        &self,
        author: Option<i64>,
        dry_run: bool,
        change: impl FnOnce(&Package) -> Result<Value>,
    ) -> Result<Applied> {
        let mut current = self.catalog.write().await;
        let json = change(&current.package)?;
        let package = parse_package(&json).map_err(Error::InvalidPackage)?;
        let plan = plan::diff(&self.db, &current.package, &current.archive, &package)
            .map_err(Error::InvalidPackage)?;
        let version = current.version + 1;
        let catalog = Catalog::compile(version, package, plan.archive.clone())
            .map_err(Error::InvalidPackage)?;
        let changed = catalog.package != current.package;
        if dry_run || !changed {
            let problems = plan::check_conversions(&self.db, &self.db.conn(), &plan).await?;
            if !problems.is_empty() {
                return Err(Error::InvalidPackage(problems));
            }
            return Ok(Applied {
                version: current.version,
                dry_run,
                changed,
                plan,
            });
        }
        let txn = self.db.begin_write().await?;
        // Checked in the publish transaction, before any step changes a value.
        let problems = plan::check_conversions(&self.db, &txn, &plan).await?;
        if !problems.is_empty() {
            return Err(Error::InvalidPackage(problems));
        }
        for (index, step) in plan.steps.iter().enumerate() {
            for statement in &step.statements {
                txn.execute_unprepared(statement).await.map_err(|e| {
                    Error::InvalidPackage(vec![Problem {
                        path: step_path(&catalog.package, &step.entity, step.field.as_deref()),
                        message: format!(
                            "step {} ({:?} on {}{}) failed, nothing was changed: {e}",
                            index + 1,
                            step.op,
                            step.entity,
                            step.field
                                .as_deref()
                                .map(|f| format!(".{f}"))
                                .unwrap_or_default()
                        ),
                    }])
                })?;
            }
        }
        self.ensure_sequences(&txn, &catalog.package).await?;
        write_policy_lines(&txn, &self.db, &catalog.package).await?;
        let insert = Query::insert()
            .into_table(self.db.table("meta_versions"))
            .columns(
                [
                    "version",
                    "author",
                    "created_at",
                    "package",
                    "plan",
                    "archived",
                ]
                .map(Alias::new),
            )
            .values_panic([
                version.into(),
                author.into(),
                Utc::now().into(),
                to_json(&catalog.package).into(),
                to_json(&plan).into(),
                to_json(&catalog.archive).into(),
            ])
            .to_owned();
        txn.execute(&insert).await.map_err(|e| {
            Error::Conflict(format!(
                "another publish of this tenant happened at the same time; reload and retry ({e})"
            ))
        })?;
        cluster::announce(&txn, &self.db).await?;
        txn.commit().await?;
        if !plan.steps.is_empty() {
            self.db.reconnect_after_schema_change().await?;
        }
        self.reload_policy().await?;
        *current = Arc::new(catalog);
        Ok(Applied {
            version,
            dry_run,
            changed,
            plan,
        })
    }

    /// Every auto_number field has its sequence row before any record needs it.
    async fn ensure_sequences(&self, txn: &DatabaseTransaction, package: &Package) -> Result<()> {
        for entity in &package.entities {
            for field in entity
                .fields
                .iter()
                .filter(|f| f.field_type == FieldType::AutoNumber)
            {
                let insert = Query::insert()
                    .into_table(self.db.table("sequences"))
                    .columns(["name", "value"].map(Alias::new))
                    .values_panic([sequence_name(&entity.key, &field.key).into(), 0i64.into()])
                    .on_conflict(
                        OnConflict::column(Alias::new("name"))
                            .do_nothing()
                            .to_owned(),
                    )
                    .to_owned();
                txn.execute(&insert).await?;
            }
        }
        Ok(())
    }

    /// Published versions, newest first: version, author, time and plan.
    pub async fn versions(&self) -> Result<Vec<Value>> {
        let select = Query::select()
            .columns(["version", "author", "created_at", "plan"].map(Alias::new))
            .from(self.db.table("meta_versions"))
            .order_by(Alias::new("version"), Order::Desc)
            .to_owned();
        let rows = self.db.conn().query_all(&select).await?;
        rows.iter()
            .map(|row| {
                let plan: String = row.try_get("", "plan")?;
                let at: chrono::DateTime<Utc> = row.try_get("", "created_at")?;
                Ok(serde_json::json!({
                    "version": row.try_get::<i64>("", "version")?,
                    "author": row.try_get::<Option<i64>>("", "author")?,
                    "created_at": crate::store::value::format_datetime(at),
                    "plan": serde_json::from_str::<Value>(&plan).unwrap_or(Value::Null),
                }))
            })
            .collect()
    }

    /// Catches up with a publish or a role change made on another node: swaps in the
    /// newest catalog if it is newer than ours, and reloads the policy.
    pub async fn refresh(&self) -> Result<()> {
        self.forget_org();
        if latest_version(&self.db).await? > self.catalog().await.version {
            let mut current = self.catalog.write().await;
            // Checked again under the write lock: another refresh may have won.
            if latest_version(&self.db).await? > current.version {
                let catalog = read_catalog(&self.key, &self.db).await?;
                self.db.reconnect_after_schema_change().await?;
                self.reload_policy().await?;
                *current = Arc::new(catalog);
                return Ok(());
            }
        }
        self.reload_policy().await
    }

    async fn load(key: &str, db: TenantDb) -> Result<Tenant> {
        let catalog = read_catalog(key, &db).await?;
        // The `p` lines are derived from the published package: repair them if they
        // are missing or stale (e.g. a tenant published before roles compiled).
        let expected = policy::compile(&catalog.package, key);
        let stored: Vec<Vec<String>> = load_rules(&db.conn(), &db, None)
            .await?
            .into_iter()
            .filter(|(ptype, _)| ptype == "p")
            .map(|(_, values)| values)
            .collect();
        if stored != expected {
            let txn = db.begin_write().await?;
            write_policy_lines(&txn, &db, &catalog.package).await?;
            txn.commit().await?;
        }
        let policy = Policy::load(&db).await?;
        Ok(Tenant {
            key: key.to_string(),
            db,
            catalog: RwLock::new(Arc::new(catalog)),
            policy: RwLock::new(Arc::new(policy)),
            indexing: Mutex::new(()),
            org: std::sync::Mutex::new(OrgCache::default()),
        })
    }
}

/// The newest published version's number (0 before the first publish).
async fn latest_version(db: &TenantDb) -> Result<i64> {
    let select = Query::select()
        .expr_as(
            Expr::col(Alias::new("version")).max(),
            Alias::new("version"),
        )
        .from(db.table("meta_versions"))
        .to_owned();
    Ok(match query_first(&db.conn(), &select).await? {
        Some(row) => row.try_get::<Option<i64>>("", "version")?.unwrap_or(0),
        None => 0,
    })
}

/// The catalog of the newest published version (empty before the first publish).
async fn read_catalog(key: &str, db: &TenantDb) -> Result<Catalog> {
    let select = Query::select()
        .columns(["version", "package", "archived"].map(Alias::new))
        .from(db.table("meta_versions"))
        .order_by(Alias::new("version"), Order::Desc)
        .limit(1)
        .to_owned();
    Ok(match query_first(&db.conn(), &select).await? {
        None => Catalog::empty(),
        Some(row) => {
            let version: i64 = row.try_get("", "version")?;
            let package: String = row.try_get("", "package")?;
            let archived: String = row.try_get("", "archived")?;
            let corrupt = |e: serde_json::Error| {
                Error::Internal(format!(
                    "stored metadata version {version} of tenant {key} is unreadable: {e}"
                ))
            };
            let package: Package = serde_json::from_str(&package).map_err(corrupt)?;
            let archive: Archive = serde_json::from_str(&archived).map_err(corrupt)?;
            Catalog::compile(version, package, archive).map_err(|problems| {
                Error::Internal(format!("stored metadata version {version} of tenant {key} does not compile: {problems:?}"))
            })?
        }
    })
}

/// Replaces the tenant's `p` lines with those its package's roles compile to.
async fn write_policy_lines(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    package: &Package,
) -> Result<()> {
    delete_rules(conn, db, "p", 0, &[]).await?;
    insert_rules(conn, db, "p", &policy::compile(package, &db.key)).await?;
    Ok(())
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("metadata serializes")
}

/// The metadata path of the thing a plan step is about, for error messages.
fn step_path(package: &Package, entity: &str, field: Option<&str>) -> String {
    let Some(entity_index) = package.entities.iter().position(|e| e.key == entity) else {
        return format!("entities.{entity}");
    };
    let entity_path = format!("entities[{entity_index}]");
    match field.and_then(|f| {
        package.entities[entity_index]
            .fields
            .iter()
            .position(|x| x.key == f)
    }) {
        Some(field_index) => format!("{entity_path}.fields[{field_index}]"),
        None => entity_path,
    }
}

/// The platform and its tenants, loaded on first use.
pub struct Tenants {
    pub platform: Platform,
    /// The search backend every tenant's indexes live in.
    pub search: Arc<dyn SearchIndex>,
    loaded: Mutex<HashMap<String, Arc<Tenant>>>,
    /// Request rate limits (`set_rate_limits`); none by default.
    rate_limits: std::sync::RwLock<Arc<RateLimits>>,
    /// Which tenants' background work this node does (see `cluster`).
    pub leases: Leases,
}

/// What creating a tenant takes.
#[derive(Debug, Clone)]
pub struct NewTenant<'a> {
    pub key: &'a str,
    pub name: &'a str,
    pub admin: &'a str,
    pub password: &'a str,
}

impl Tenants {
    /// The platform with the search backend the configuration names.
    pub async fn open(config: &DbConfig) -> Result<Arc<Tenants>> {
        let search: Arc<dyn SearchIndex> = match &config.meilisearch {
            Some(meili) => Arc::new(MeiliIndex::new(&meili.url, meili.api_key.as_deref())?),
            None => Arc::new(EmbeddedIndex::new(config.data_dir.join("search"))),
        };
        Self::open_with_search(config, search).await
    }

    /// The platform with a search backend of the caller's making (an embedding
    /// application's own, or a test's).
    pub async fn open_with_search(
        config: &DbConfig,
        search: Arc<dyn SearchIndex>,
    ) -> Result<Arc<Tenants>> {
        Ok(Arc::new(Tenants {
            platform: Platform::connect(config).await?,
            search,
            loaded: Mutex::new(HashMap::new()),
            rate_limits: std::sync::RwLock::new(Arc::new(RateLimits::default())),
            leases: Leases::new(),
        }))
    }

    pub async fn exists(&self, key: &str) -> Result<bool> {
        let select = Query::select()
            .column(Alias::new("key"))
            .from(Alias::new("tenants"))
            .and_where(Expr::col(Alias::new("key")).eq(key))
            .to_owned();
        Ok(query_first(self.platform.system(), &select)
            .await?
            .is_some())
    }

    /// Every tenant's key.
    pub async fn keys(&self) -> Result<Vec<String>> {
        let select = Query::select()
            .column(Alias::new("key"))
            .from(Alias::new("tenants"))
            .order_by(Alias::new("key"), Order::Asc)
            .to_owned();
        self.platform
            .system()
            .query_all(&select)
            .await?
            .iter()
            .map(|row| Ok(row.try_get("", "key")?))
            .collect()
    }

    /// Limits every authenticated request from now on.
    pub fn set_rate_limits(&self, limits: RateLimits) {
        *self.rate_limits.write().expect("rate limits lock") = Arc::new(limits);
    }

    pub fn rate_limits(&self) -> Arc<RateLimits> {
        self.rate_limits.read().expect("rate limits lock").clone()
    }

    /// The keys of the tenants this process has loaded.
    pub async fn loaded_keys(&self) -> Vec<String> {
        self.loaded.lock().await.keys().cloned().collect()
    }

    /// Whether this node does the tenant's background work (indexing, webhooks,
    /// schedules, jobs) now; false when another node does, or when the lease table
    /// cannot be reached (logged: the work waits rather than running twice).
    pub async fn holds_lease(&self, key: &str) -> bool {
        match self
            .leases
            .hold(self.platform.system(), &Leases::tenant_lease(key))
            .await
        {
            Ok(held) => held,
            Err(error) => {
                tracing::error!(tenant = %key, %error, "cannot renew the tenant's lease");
                false
            }
        }
    }

    /// Catches a loaded tenant up with changes made on another node (an unloaded one
    /// reads everything when it is first used).
    pub async fn refresh(&self, key: &str) -> Result<()> {
        let tenant = self.loaded.lock().await.get(key).cloned();
        match tenant {
            Some(tenant) => tenant.refresh().await,
            None => Ok(()),
        }
    }

    /// The tenant, loading its catalog on first use.
    pub async fn get(&self, key: &str) -> Result<Arc<Tenant>> {
        let mut loaded = self.loaded.lock().await;
        if let Some(tenant) = loaded.get(key) {
            return Ok(tenant.clone());
        }
        if !self.exists(key).await? {
            return Err(Error::not_found(format!("tenant {key:?}")));
        }
        let db = self.platform.tenant(key).await?;
        let tenant = Arc::new(Tenant::load(key, db).await?);
        loaded.insert(key.to_string(), tenant.clone());
        Ok(tenant)
    }

    /// Creates a tenant with its namespace and first admin user.
    pub async fn create(&self, new: &NewTenant<'_>) -> Result<Arc<Tenant>> {
        check_identifier(new.key).map_err(|m| Error::field("key", m))?;
        if new.name.trim().is_empty() {
            return Err(Error::field("name", "is required"));
        }
        crate::auth::password::check(new.password)?;
        let db = self.create_namespace(new.key).await?;
        users::create(
            &db,
            &NewUser {
                username: new.admin.to_string(),
                display_name: new.admin.to_string(),
                password: new.password.to_string(),
                is_admin: true,
                ..NewUser::default()
            },
            &Default::default(),
        )
        .await?;
        self.register(new.key, new.name).await
    }

    /// A tenant with its namespace and nothing in it (a restore fills it).
    pub async fn create_empty(&self, key: &str, name: &str) -> Result<Arc<Tenant>> {
        check_identifier(key).map_err(|m| Error::field("tenant", m))?;
        self.create_namespace(key).await?;
        self.register(key, name).await
    }

    async fn create_namespace(&self, key: &str) -> Result<TenantDb> {
        if self.exists(key).await? {
            return Err(Error::Conflict(format!("tenant {key:?} already exists")));
        }
        self.platform.create_namespace(key).await
    }

    /// Removes a tenant whose restore failed half way, namespace and all (there is no
    /// other way to remove a tenant: nothing users do can lose a company's data).
    pub async fn discard_failed_restore(&self, key: &str) -> Result<()> {
        let Some(tenant) = self.loaded.lock().await.remove(key) else {
            return Ok(());
        };
        let delete = Query::delete()
            .from_table(Alias::new("tenants"))
            .and_where(Expr::col(Alias::new("key")).eq(key))
            .to_owned();
        self.platform.system().execute(&delete).await?;
        self.platform.drop_namespace(tenant.db.clone()).await
    }

    /// Lists a tenant whose namespace is ready, and loads it.
    async fn register(&self, key: &str, name: &str) -> Result<Arc<Tenant>> {
        let insert = Query::insert()
            .into_table(Alias::new("tenants"))
            .columns(["key", "name", "created_at"].map(Alias::new))
            .values_panic([key.into(), name.into(), Utc::now().into()])
            .to_owned();
        self.platform.system().execute(&insert).await?;
        self.get(key).await
    }

    /// The tenant's display name.
    pub async fn name(&self, key: &str) -> Result<String> {
        let select = Query::select()
            .column(Alias::new("name"))
            .from(Alias::new("tenants"))
            .and_where(Expr::col(Alias::new("key")).eq(key))
            .to_owned();
        match query_first(self.platform.system(), &select).await? {
            Some(row) => Ok(row.try_get("", "name")?),
            None => Err(Error::not_found(format!("tenant {key:?}"))),
        }
    }
}
