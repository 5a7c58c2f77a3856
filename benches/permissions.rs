//! What the permission gate costs (issue 3), on a customer table of
//! `METACRM_BENCH_ROWS` rows (default 1,000,000, bulk-loaded, not through the API) owned
//! by 45 sales reps in a department tree: a head office with three regions of three
//! teams of five reps each.
//!
//! 1. **Scoped queries**: the same queries as a regional manager whose role reads
//!    customers in the `subordinates` scope (the 15 reps of the region's teams: a
//!    third of the rows, `owner IN (16 ids)`) and as a director whose role reads them
//!    in the `all` scope (no predicate); for information, as a rep (`own`). Each
//!    through the module as a request runs it (a fresh context: the gate's decision,
//!    then `Records::query`), over HTTP, and as the SQL run raw on the same pool with
//!    and without the owner predicate (the baseline). Target: subordinates ≤ 1.2 × all
//!    (p50).
//! 2. **Gate decisions per second**: the enforcer alone (`Policy::scope`), the
//!    organisation read from the database alone (`Org::load`, which a tenant does once
//!    and again after each change to users or departments), a first decision in a
//!    request (the enforcer, the tenant's organisation, the owner set and field rules)
//!    and a repeated one (answered from the request's cache). No target; the figures
//!    show what a request pays.
//!
//! `METACRM_BENCH_ITERS` (default 500) iterations per row after a tenth as warm-up.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Env, Rng, Table};
use metacrm::auth::context::Context;
use metacrm::auth::org::Org;
use metacrm::auth::{Access, User};
use metacrm::meta::Action;
use metacrm::store::db::{Backend, TenantDb};
use metacrm::store::records::{QueryRequest, Records};
use metacrm::tenant::Tenant;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, NullOrdering, Order, Query, SelectStatement};
use serde_json::{Value, json};

const TARGET_RATIO: f64 = 1.2;
const REGIONS: [&str; 3] = ["华东大区", "华南大区", "华北大区"];
const TEAMS_PER_REGION: usize = 3;
const REPS_PER_TEAM: usize = 5;

/// The benchmark customer entity with three roles reading it in three scopes.
fn package() -> Value {
    let mut package = common::customer_package(0);
    package["roles"] = json!([
        {"key": "rep", "label": "销售", "permissions": [
            {"entity": "customer", "actions": ["create", "read", "update"], "scope": "own"}]},
        {"key": "manager", "label": "区域经理", "permissions": [
            {"entity": "customer", "actions": ["read", "update", "assign"], "scope": "subordinates"}]},
        {"key": "director", "label": "销售总监", "permissions": [
            {"entity": "customer", "actions": ["read"], "scope": "all"}]}
    ]);
    package
}

/// The people the benchmark acts as, and the owners of the loaded rows.
struct People {
    director: User,
    /// Manager of the first region.
    manager: User,
    /// A rep of the first region's first team.
    rep: User,
    reps: Vec<i64>,
}

async fn build_org(tenant: &Tenant) -> People {
    let head_office = common::add_department(tenant, "总公司", None).await;
    let director = common::add_user(tenant, "director".into(), "director", head_office).await;
    let mut managers = Vec::new();
    let mut reps = Vec::new();
    for (r, region_name) in REGIONS.iter().enumerate() {
        let region = common::add_department(tenant, region_name, Some(head_office)).await;
        let manager = common::add_user(tenant, format!("manager{r}"), "manager", region).await;
        common::set_manager(tenant, region, manager.id).await;
        managers.push(manager);
        for t in 0..TEAMS_PER_REGION {
            let team =
                common::add_department(tenant, &format!("{region_name}{}组", t + 1), Some(region))
                    .await;
            for p in 0..REPS_PER_TEAM {
                let rep = common::add_user(tenant, format!("rep{r}{t}{p}"), "rep", team).await;
                reps.push(rep);
            }
        }
    }
    People {
        director,
        manager: managers.swap_remove(0),
        rep: reps[0].clone(),
        reps: reps.iter().map(|u| u.id).collect(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    ListPage,
    FilterSort,
    PhoneEq,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::ListPage => "list page, newest first, limit 50",
            Kind::FilterSort => "region in + amount >= X, sort -amount, limit 50",
            Kind::PhoneEq => "phone eq (indexed)",
        }
    }
}

#[derive(Clone, Debug)]
enum Params {
    List,
    Range {
        regions: [&'static str; 2],
        min_cents: i64,
    },
    Phone(String),
}

fn draw(kind: Kind, rng: &mut Rng, rows: usize) -> Params {
    match kind {
        Kind::ListPage => Params::List,
        Kind::FilterSort => {
            let a = rng.below(common::REGIONS.len() as u64) as usize;
            let b = (a + 1 + rng.below(common::REGIONS.len() as u64 - 1) as usize)
                % common::REGIONS.len();
            Params::Range {
                regions: [common::REGIONS[a].0, common::REGIONS[b].0],
                // 100,000.00 to about 3,160,000.00: 8–33 % of amounts are above it.
                min_cents: 10f64.powf(7.0 + rng.unit() * 1.5) as i64,
            }
        }
        Kind::PhoneEq => Params::Phone(common::phone_of(rng.below(rows as u64))),
    }
}

fn request(params: &Params) -> Value {
    match params {
        Params::List => json!({"sort": ["-created_at"], "limit": 50}),
        Params::Range { regions, min_cents } => json!({
            "filter": {"and": [
                {"field": "region", "op": "in", "value": regions},
                {"field": "amount", "op": "gte",
                 "value": format!("{}.{:02}", min_cents / 100, min_cents % 100)}
            ]},
            "sort": ["-amount"],
            "limit": 50
        }),
        Params::Phone(phone) => json!({
            "filter": {"field": "phone", "op": "eq", "value": phone},
            "limit": 50
        }),
    }
}

/// The SQL `Records::query` runs for these parameters, within `access`'s rows.
fn raw_select(db: &TenantDb, params: &Params, access: &Access) -> SelectStatement {
    let mut select = Query::select();
    select.from(db.table(common::TABLE));
    for column in [
        "id",
        "version",
        "owner",
        "created_by",
        "created_at",
        "updated_at",
    ]
    .into_iter()
    .chain(common::CUSTOMER_COLUMNS.into_iter().skip(5))
    {
        select.column(Alias::new(column));
    }
    select.and_where(Expr::col(Alias::new("deleted_at")).is_null());
    if let Some(rows) = &access.rows {
        select.cond_where(rows.clone());
    }
    let col = |c: &str| Expr::col(Alias::new(c));
    // As `Records::query` orders: NULLs greatest, except in columns that hold none.
    match params {
        Params::List => {
            select
                .order_by(Alias::new("created_at"), Order::Desc)
                .order_by(Alias::new("id"), Order::Desc);
        }
        Params::Range { regions, min_cents } => {
            select
                .and_where(col("region").is_in(regions.iter().map(|r| r.to_string())))
                .and_where(col("amount").gte(*min_cents))
                .order_by_with_nulls(Alias::new("amount"), Order::Desc, NullOrdering::First)
                .order_by(Alias::new("id"), Order::Desc);
        }
        Params::Phone(phone) => {
            select
                .and_where(col("phone").eq(phone.as_str()))
                .order_by(Alias::new("id"), Order::Asc);
        }
    }
    select.limit(51);
    select
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Raw,
    Module,
    Http,
}

impl Path {
    fn label(self) -> &'static str {
        match self {
            Path::Raw => "raw SQL (baseline)",
            Path::Module => "module (gate + Records::query)",
            Path::Http => "HTTP POST …/query",
        }
    }
}

/// One user the queries run as.
struct Actor {
    scope: &'static str,
    user: User,
    /// What the gate grants the user on customers (for the raw SQL's predicate).
    access: Access,
    token: String,
}

struct Bench {
    tenant: Arc<Tenant>,
    base: String,
    client: reqwest::Client,
    rows: usize,
}

impl Bench {
    /// Runs one query as `actor`; returns the number of records answered.
    async fn once(&self, actor: &Actor, path: Path, params: &Params) -> usize {
        match path {
            Path::Raw => {
                let select = raw_select(&self.tenant.db, params, &actor.access);
                let rows = self.tenant.db.conn().query_all(&select).await;
                rows.expect("raw query").len().min(50)
            }
            Path::Module => {
                let request: QueryRequest =
                    serde_json::from_value(request(params)).expect("query request");
                // What a request does: a fresh context asks the gate, then queries.
                let context = Context::new(self.tenant.clone(), actor.user.clone());
                let catalog = self.tenant.catalog().await;
                let entity = catalog.entity(common::ENTITY).expect("customer entity");
                let access = context.authorize(entity, Action::Read).await.expect("gate");
                let page = Records::new(&self.tenant.db, &catalog, entity)
                    .query(&request, &access)
                    .await
                    .expect("module query");
                page.items.len()
            }
            Path::Http => {
                let body = request(params);
                common::query_over_http(&self.client, &self.base, &actor.token, &body).await
            }
        }
    }

    /// Latencies of `iterations` queries of `kind` (the same parameter sequence for
    /// every actor and path), and the mean number of records answered.
    async fn measure(
        &self,
        actor: &Actor,
        kind: Kind,
        path: Path,
        iterations: usize,
    ) -> (common::Stats, f64) {
        let mut rng = Rng::new(42 + kind as u64);
        for _ in 0..(iterations / 10).max(2) {
            self.once(actor, path, &draw(kind, &mut rng, self.rows))
                .await;
        }
        let mut rng = Rng::new(4242 + kind as u64);
        let mut latencies = Vec::with_capacity(iterations);
        let mut answered = 0usize;
        for _ in 0..iterations {
            let params = draw(kind, &mut rng, self.rows);
            let started = Instant::now();
            answered += self.once(actor, path, &params).await;
            latencies.push(started.elapsed());
        }
        (
            common::stats(latencies),
            answered as f64 / iterations as f64,
        )
    }
}

async fn actor(bench: &Bench, scope: &'static str, user: &User) -> Actor {
    let catalog = bench.tenant.catalog().await;
    let entity = catalog.entity(common::ENTITY).expect("customer entity");
    let access = Context::new(bench.tenant.clone(), user.clone())
        .authorize(entity, Action::Read)
        .await
        .expect("gate");
    Actor {
        scope,
        user: user.clone(),
        access,
        token: common::login_as(
            &bench.client,
            &bench.base,
            &bench.tenant.key,
            &user.username,
        )
        .await,
    }
}

/// Runs `decide` `iterations` times; answers decisions per second.
async fn rate<F: std::future::Future<Output = ()>>(
    iterations: usize,
    mut decide: impl FnMut() -> F,
) -> f64 {
    for _ in 0..(iterations / 10).max(2) {
        decide().await;
    }
    let started = Instant::now();
    for _ in 0..iterations {
        decide().await;
    }
    iterations as f64 / started.elapsed().as_secs_f64()
}

async fn gate_rates(bench: &Bench, actors: &[Actor], iterations: usize) -> Table {
    let mut table = Table::new(
        format!(
            "gate decisions per second (read on customer), {} users in {} departments",
            bench_users(),
            1 + REGIONS.len() * (1 + TEAMS_PER_REGION)
        ),
        &[
            "user (scope)",
            "enforcer alone (Policy::scope)",
            "organisation read from the database (Org::load)",
            "first decision in a request",
            "repeated decision (request cache)",
        ],
    );
    let tenant = &bench.tenant;
    let catalog = tenant.catalog().await;
    let entity = catalog.entity(common::ENTITY).expect("customer entity");
    for actor in actors {
        let policy = tenant.policy().await;
        let enforcer = rate(iterations * 10, || async {
            std::hint::black_box(policy.scope(actor.user.id, common::ENTITY, Action::Read));
        })
        .await;
        let org_read = rate(iterations, || async {
            std::hint::black_box(Org::load(&tenant.db).await.expect("org"));
        })
        .await;
        let first = rate(iterations, || async {
            let context = Context::new(tenant.clone(), actor.user.clone());
            let access = context.authorize(entity, Action::Read).await;
            std::hint::black_box(access.expect("gate"));
        })
        .await;
        let context = Context::new(tenant.clone(), actor.user.clone());
        let repeated = rate(iterations * 10, || async {
            let access = context.authorize(entity, Action::Read).await;
            std::hint::black_box(access.expect("gate"));
        })
        .await;
        table.row(vec![
            format!("{} ({})", actor.user.username, actor.scope),
            format!("{enforcer:.0}"),
            format!("{org_read:.0}"),
            format!("{first:.0}"),
            format!("{repeated:.0}"),
        ]);
    }
    table
}

fn bench_users() -> usize {
    1 + REGIONS.len() * (1 + TEAMS_PER_REGION * REPS_PER_TEAM)
}

fn main() {
    let runtime = common::runtime();
    runtime.block_on(async {
        let rows = common::rows();
        let iterations = common::env_usize("METACRM_BENCH_ITERS", 500);
        let env = Env::open().await;
        common::print_header("permissions", env.backend());
        let tenant = env.tenant("bp", &package()).await;
        eprintln!("creating {} users…", bench_users());
        let people = build_org(&tenant).await;
        eprintln!(
            "bulk-loading {rows} customers owned by {} reps…",
            people.reps.len()
        );
        let reps = people.reps.clone();
        let load = common::bulk_insert(
            &tenant,
            common::TABLE,
            &common::CUSTOMER_COLUMNS,
            rows,
            |i| {
                let customer = common::customer(i as u64);
                customer.sql_values(reps[i % reps.len()], customer.created_at)
            },
        )
        .await;
        // The planner statistics the server keeps: what autovacuum does shortly after
        // a bulk load on PostgreSQL, what the background jobs (and an import) do on
        // SQLite.
        match env.backend() {
            Backend::Postgres => {
                let table = common::qualified(&tenant.db, common::TABLE);
                common::exec(&tenant.db, &format!("VACUUM ANALYZE {table}")).await;
            }
            Backend::Sqlite => tenant.db.refresh_statistics().await.expect("statistics"),
        }
        println!(
            "{rows} rows loaded in {:.1} s ({:.0} rows/s)",
            load.as_secs_f64(),
            rows as f64 / load.as_secs_f64().max(1e-9)
        );
        let bench = Bench {
            tenant: tenant.clone(),
            base: common::serve(env.tenants.clone()).await,
            client: common::http_client(),
            rows,
        };
        let actors = [
            actor(&bench, "all", &people.director).await,
            actor(&bench, "subordinates", &people.manager).await,
            actor(&bench, "own", &people.rep).await,
        ];
        for actor in &actors {
            let owners = actor.access.owners.as_ref().map(|o| o.len());
            println!(
                "{} reads customers in scope {}: {}",
                actor.user.username,
                actor.scope,
                owners.map_or("every owner".into(), |n| format!("{n} owners"))
            );
        }

        let mut queries = Table::new(
            format!(
                "scoped queries on {} with {rows} rows: one client, latency per query",
                env.label()
            ),
            &[
                "query",
                "path",
                "scope",
                "records",
                "p50 ms",
                "p99 ms",
                "p50 vs all",
                "target subordinates ≤ 1.2 × all",
            ],
        );
        for kind in [Kind::ListPage, Kind::FilterSort, Kind::PhoneEq] {
            for actor in &actors[..2] {
                let params = draw(kind, &mut Rng::new(7), rows);
                println!(
                    "\nplan of {} as {} ({}):",
                    kind.label(),
                    actor.user.username,
                    actor.scope
                );
                let select = raw_select(&tenant.db, &params, &actor.access);
                for line in common::explain_select(&tenant.db, &select).await {
                    println!("    {line}");
                }
            }
            for path in [Path::Raw, Path::Module, Path::Http] {
                let mut all_p50 = Duration::ZERO;
                for actor in &actors {
                    let (stats, answered) = bench.measure(actor, kind, path, iterations).await;
                    if actor.scope == "all" {
                        all_p50 = stats.p50;
                    }
                    let ratio = stats.p50.as_secs_f64() / all_p50.as_secs_f64().max(1e-9);
                    let verdict = match (actor.scope, path) {
                        ("subordinates", Path::Module | Path::Http) => {
                            common::verdict(ratio <= TARGET_RATIO)
                        }
                        ("own", _) => "(info)".into(),
                        _ => String::new(),
                    };
                    eprintln!(
                        "  {} / {} / {}: p50 {} ms",
                        kind.label(),
                        path.label(),
                        actor.scope,
                        common::ms(stats.p50)
                    );
                    queries.row(vec![
                        kind.label().into(),
                        path.label().into(),
                        actor.scope.into(),
                        format!("{answered:.1}"),
                        common::ms(stats.p50),
                        common::ms(stats.p99),
                        format!("{ratio:.2}"),
                        verdict,
                    ]);
                }
            }
        }
        queries.print();
        gate_rates(&bench, &actors, iterations).await.print();
        println!("load average at the end: {}", common::load_average());
        env.cleanup().await;
    });
}
