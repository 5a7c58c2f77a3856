//! Several nodes on one database. Leases decide which node does a tenant's background
//! work (search indexing, webhook delivery, schedules, jobs), so it runs once however
//! many nodes serve; change notices (PostgreSQL LISTEN/NOTIFY) tell every node at once
//! that a tenant's metadata or role assignments changed, so each swaps its catalog and
//! policy within moments of a publish on any node.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::error::Result;
use crate::store::db::{Backend, TenantDb};
use crate::tenant::Tenants;

/// How long a lease lasts unless renewed: a node that stops renewing (killed, cut off)
/// hands its tenants to another node after at most this long.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// A held lease is renewed this often, well inside its time to live.
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// A node that does not hold a lease asks again this often.
const RETRY_EVERY: Duration = Duration::from_secs(2);

const TABLE: &str = "leases";

/// This node's leases, with what it last learned of each so that most checks need no
/// database round trip.
pub struct Leases {
    node: String,
    known: std::sync::Mutex<HashMap<String, Known>>,
}

#[derive(Clone, Copy)]
struct Known {
    held: bool,
    ask_again_at: Instant,
    /// When a held lease runs out unless renewed.
    expires: Instant,
}

impl Default for Leases {
    fn default() -> Self {
        Self::new()
    }
}

impl Leases {
    /// Leases for a node named after its host and process, with a random suffix so a
    /// restarted process is a new holder.
    pub fn new() -> Leases {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "node".to_string());
        let suffix: u32 = rand::random();
        Leases {
            node: format!("{host}-{}-{suffix:08x}", std::process::id()),
            known: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// This node's name, as the lease table records it.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The lease that gives a node a tenant's background work.
    pub fn tenant_lease(tenant: &str) -> String {
        format!("tenant:{tenant}")
    }

    /// Whether this node holds `name`: takes it when it is free or expired, renews it
    /// when it is ours and due. One conditional upsert decides, so two nodes asking at
    /// once cannot both win.
    pub async fn hold(&self, system: &DatabaseConnection, name: &str) -> Result<bool> {
        if let Some(known) = self.known.lock().expect("leases lock").get(name).copied()
            && Instant::now() < known.ask_again_at
        {
            return Ok(known.held);
        }
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(LEASE_TTL).expect("lease ttl");
        let table = Alias::new(TABLE);
        let upsert = Query::insert()
            .into_table(table.clone())
            .columns(["name", "holder", "expires_at"].map(Alias::new))
            .values_panic([name.into(), self.node.as_str().into(), expires.into()])
            .on_conflict(
                OnConflict::column(Alias::new("name"))
                    .update_columns(["holder", "expires_at"].map(Alias::new))
                    .action_and_where(
                        Expr::col((table.clone(), Alias::new("holder")))
                            .eq(self.node.as_str())
                            .or(Expr::col((table, Alias::new("expires_at"))).lt(now)),
                    )
                    .to_owned(),
            )
            .to_owned();
        let asked = Instant::now();
        let held = system.execute(&upsert).await?.rows_affected() == 1;
        let wait = if held { RENEW_EVERY } else { RETRY_EVERY };
        self.known.lock().expect("leases lock").insert(
            name.to_string(),
            Known {
                held,
                ask_again_at: asked + wait,
                expires: asked + LEASE_TTL,
            },
        );
        Ok(held)
    }

    /// How many leases this node holds now (a metric).
    pub fn held(&self) -> usize {
        let now = Instant::now();
        self.known
            .lock()
            .expect("leases lock")
            .values()
            .filter(|k| k.held && now < k.expires)
            .count()
    }

    /// Gives up every lease (at shutdown), so other nodes take over at once rather
    /// than after the leases expire.
    pub async fn release_all(&self, system: &DatabaseConnection) -> Result<()> {
        let delete = Query::delete()
            .from_table(Alias::new(TABLE))
            .and_where(Expr::col(Alias::new("holder")).eq(self.node.as_str()))
            .to_owned();
        system.execute(&delete).await?;
        self.known.lock().expect("leases lock").clear();
        Ok(())
    }
}

/// The channel change notices travel on.
const CHANNEL: &str = "metacrm_tenant_changed";

/// Tells every node that the tenant's metadata or role assignments changed. Sent on
/// `conn`: inside a transaction, PostgreSQL delivers it when the transaction commits
/// (and never if it rolls back). SQLite serves one node, so there is no one to tell.
pub async fn announce(conn: &impl ConnectionTrait, db: &TenantDb) -> Result<()> {
    if db.backend() == Backend::Postgres {
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), db.key.as_str().into()],
        ))
        .await?;
    }
    Ok(())
}

/// Inside `serve` on PostgreSQL: listens for change notices and refreshes the tenant
/// each names. Notices sent while the listener was down are lost, so after every
/// (re)connection every loaded tenant is refreshed.
pub async fn follow_changes(tenants: Arc<Tenants>) {
    if tenants.platform.backend() != Backend::Postgres {
        return;
    }
    loop {
        if let Err(error) = listen(&tenants).await {
            tracing::warn!(%error, "change notices interrupted; listening again");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen(tenants: &Tenants) -> Result<()> {
    use sea_orm::sqlx::postgres::PgListener;
    let pool = tenants.platform.system().get_postgres_connection_pool();
    let mut listener = PgListener::connect_with(pool).await.map_err(db_error)?;
    listener.listen(CHANNEL).await.map_err(db_error)?;
    refresh_all(tenants).await;
    loop {
        // `None`: the connection dropped; the listener reconnects on the next call.
        match listener.try_recv().await.map_err(db_error)? {
            Some(notice) => refresh(tenants, notice.payload()).await,
            None => refresh_all(tenants).await,
        }
    }
}

async fn refresh_all(tenants: &Tenants) {
    for key in tenants.loaded_keys().await {
        refresh(tenants, &key).await;
    }
}

async fn refresh(tenants: &Tenants, key: &str) {
    if let Err(error) = tenants.refresh(key).await {
        tracing::error!(tenant = %key, %error, "cannot load the tenant's new metadata");
    }
}

fn db_error(error: sea_orm::sqlx::Error) -> crate::error::Error {
    crate::error::Error::Internal(format!("change notices: {error}"))
}
