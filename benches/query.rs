//! Query latency on a big customer table (`METACRM_BENCH_ROWS`, default 1,000,000,
//! bulk-loaded with multi-row INSERTs, not through the API):
//!
//! - **(a) indexed eq**: `phone eq <an existing number>` (`phone` is `indexed: true`);
//! - **(b) filter + sort**: `region in [two regions] and amount >= X`, sorted by
//!   `-amount` (`amount` is `indexed: true`), limit 50;
//! - **(c) unindexed sort** (for information; not covered by the target): `region in
//!   [two regions] and active eq true`, sorted by `-employees` (no index), limit 50.
//!
//! Each through `Records::query` (the module), through `POST /api/data/customer/query`
//! (HTTP), and as the same SQL run raw on the same pool. One client, requests back to
//! back; `METACRM_BENCH_ITERS` (default 1000) iterations per row after 100 warm-up
//! ones, `METACRM_BENCH_SCAN_ITERS` (default 20) for (c). Target: p99 < 5 ms.

mod common;

use std::time::{Duration, Instant};

use common::{Env, Rng, Table};
use metacrm::auth::Access;
use metacrm::store::db::{Backend, TenantDb};
use metacrm::store::records::{QueryRequest, Records};
use metacrm::tenant::Tenant;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, NullOrdering, Order, Query, SelectStatement};
use serde_json::{Value, json};

const TARGET: Duration = Duration::from_millis(5);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    IndexedEq,
    FilterSort,
    UnindexedSort,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::IndexedEq => "(a) phone eq (indexed)",
            Kind::FilterSort => "(b) region in + amount >= X, sort -amount (indexed), limit 50",
            Kind::UnindexedSort => {
                "(c) region in + active, sort -employees (NOT indexed), limit 50 [info]"
            }
        }
    }
}

/// One query's parameters, drawn at random per iteration.
#[derive(Clone, Debug)]
enum Params {
    Phone(String),
    Range {
        regions: [&'static str; 2],
        min_cents: i64,
    },
    Scan {
        regions: [&'static str; 2],
    },
}

fn draw(kind: Kind, rng: &mut Rng, rows: usize) -> Params {
    match kind {
        Kind::IndexedEq => Params::Phone(common::phone_of(rng.below(rows as u64))),
        Kind::FilterSort => {
            let regions = two_regions(rng);
            // 100,000.00 to about 3,160,000.00: 8–33 % of amounts are above it.
            let min_cents = 10f64.powf(7.0 + rng.unit() * 1.5) as i64;
            Params::Range { regions, min_cents }
        }
        Kind::UnindexedSort => Params::Scan {
            regions: two_regions(rng),
        },
    }
}

fn two_regions(rng: &mut Rng) -> [&'static str; 2] {
    let a = rng_region(rng);
    let mut b = rng_region(rng);
    while b == a {
        b = rng_region(rng);
    }
    [a, b]
}

fn rng_region(rng: &mut Rng) -> &'static str {
    common::REGIONS[rng.below(common::REGIONS.len() as u64) as usize].0
}

fn cents_text(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The API request for these parameters.
fn request(params: &Params) -> Value {
    match params {
        Params::Phone(phone) => json!({
            "filter": {"field": "phone", "op": "eq", "value": phone},
            "limit": 50
        }),
        Params::Range { regions, min_cents } => json!({
            "filter": {"and": [
                {"field": "region", "op": "in", "value": regions},
                {"field": "amount", "op": "gte", "value": cents_text(*min_cents)}
            ]},
            "sort": ["-amount"],
            "limit": 50
        }),
        Params::Scan { regions } => json!({
            "filter": {"and": [
                {"field": "region", "op": "in", "value": regions},
                {"field": "active", "op": "eq", "value": true}
            ]},
            "sort": ["-employees"],
            "limit": 50
        }),
    }
}

/// The SQL `Records::query` runs for these parameters (same columns, predicates,
/// ordering — NULLs greatest in both directions, id as tie-breaker — and limit + 1).
fn raw_select(db: &TenantDb, params: &Params) -> SelectStatement {
    let mut select = Query::select();
    select.from(db.table(common::TABLE));
    for column in [
        "id",
        "version",
        "owner",
        "created_by",
        "created_at",
        "updated_at",
        "name",
        "phone",
        "email",
        "region",
        "amount",
        "employees",
        "signed_on",
        "active",
        "category",
        "notes",
        "website",
        "last_contact",
    ] {
        select.column(Alias::new(column));
    }
    select.and_where(Expr::col(Alias::new("deleted_at")).is_null());
    let col = |c: &str| Expr::col(Alias::new(c));
    match params {
        Params::Phone(phone) => {
            select
                .and_where(col("phone").eq(phone.as_str()))
                .order_by(Alias::new("id"), Order::Asc);
        }
        Params::Range { regions, min_cents } => {
            select
                .and_where(col("region").is_in(regions.iter().map(|r| r.to_string())))
                .and_where(col("amount").gte(*min_cents))
                .order_by_with_nulls(Alias::new("amount"), Order::Desc, NullOrdering::First)
                .order_by(Alias::new("id"), Order::Desc);
        }
        Params::Scan { regions } => {
            select
                .and_where(col("region").is_in(regions.iter().map(|r| r.to_string())))
                .and_where(col("active").eq(true))
                .order_by_with_nulls(Alias::new("employees"), Order::Desc, NullOrdering::First)
                .order_by(Alias::new("id"), Order::Desc);
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
            Path::Module => "module (Records::query)",
            Path::Http => "HTTP POST …/query",
        }
    }
}

struct Ctx<'a> {
    tenant: &'a Tenant,
    access: Access,
    base: String,
    token: String,
    client: reqwest::Client,
    rows: usize,
}

/// Runs one query; returns the number of records it answered.
async fn once(ctx: &Ctx<'_>, path: Path, params: &Params) -> usize {
    match path {
        Path::Raw => {
            let select = raw_select(&ctx.tenant.db, params);
            let rows = ctx
                .tenant
                .db
                .conn()
                .query_all(&select)
                .await
                .expect("raw query");
            rows.len().min(50)
        }
        Path::Module => {
            let request: QueryRequest =
                serde_json::from_value(request(params)).expect("query request");
            let catalog = ctx.tenant.catalog().await;
            let entity = catalog.entity(common::ENTITY).expect("customer entity");
            let page = Records::new(&ctx.tenant.db, &catalog, entity)
                .query(&request, &ctx.access)
                .await
                .expect("module query");
            page.items.len()
        }
        Path::Http => {
            common::query_over_http(&ctx.client, &ctx.base, &ctx.token, &request(params)).await
        }
    }
}

async fn measure(ctx: &Ctx<'_>, kind: Kind, path: Path, iterations: usize) -> (Vec<Duration>, f64) {
    let mut rng = Rng::new(42 + kind as u64);
    let warmup = (iterations / 10).clamp(2, 100);
    for _ in 0..warmup {
        once(ctx, path, &draw(kind, &mut rng, ctx.rows)).await;
    }
    let mut latencies = Vec::with_capacity(iterations);
    let mut answered = 0usize;
    for _ in 0..iterations {
        let params = draw(kind, &mut rng, ctx.rows);
        let t0 = Instant::now();
        answered += once(ctx, path, &params).await;
        latencies.push(t0.elapsed());
    }
    (latencies, answered as f64 / iterations as f64)
}

fn main() {
    let runtime = common::runtime();
    runtime.block_on(async {
        let rows = common::rows();
        let env = Env::open().await;
        common::print_header("query", env.backend());
        let tenant = env.tenant("bq", &common::customer_package(0)).await;
        let owner = common::admin_id(&tenant).await;
        eprintln!("bulk-loading {rows} customers…");
        let load = common::ensure_loaded(&tenant, rows, owner)
            .await
            .unwrap_or_default();
        let mut maintenance = "none (the application runs no ANALYZE on SQLite)";
        if env.backend() == Backend::Postgres {
            // What autovacuum does shortly after a bulk load; measured without it the
            // first queries would also pay for setting hint bits.
            common::exec(
                &tenant.db,
                &format!(
                    "VACUUM ANALYZE {}",
                    common::qualified(&tenant.db, common::TABLE)
                ),
            )
            .await;
            maintenance = "VACUUM ANALYZE after loading (as autovacuum would)";
        }
        let base = common::serve(env.tenants.clone()).await;
        let client = common::http_client();
        let token = common::login(&client, &base, &tenant.key).await;
        let ctx = Ctx {
            tenant: &tenant,
            access: Access::full(owner),
            base,
            token,
            client,
            rows,
        };
        println!(
            "{rows} rows loaded in {:.1} s ({:.0} rows/s); maintenance: {maintenance}",
            load.as_secs_f64(),
            rows as f64 / load.as_secs_f64().max(1e-9)
        );

        let iterations = common::env_usize("METACRM_BENCH_ITERS", 1000);
        let scan_iterations = common::env_usize("METACRM_BENCH_SCAN_ITERS", 20);
        let mut table = Table::new(
            format!(
                "query on {} with {rows} rows: one client, latency per query",
                env.label()
            ),
            &[
                "query",
                "path",
                "n",
                "records",
                "p50 ms",
                "p99 ms",
                "max ms",
                "target p99 < 5 ms",
            ],
        );
        for kind in [Kind::IndexedEq, Kind::FilterSort, Kind::UnindexedSort] {
            let mut rng = Rng::new(7);
            println!("\nplan of {}:", kind.label());
            for line in common::explain_select(
                &tenant.db,
                &raw_select(&tenant.db, &draw(kind, &mut rng, rows)),
            )
            .await
            {
                println!("    {line}");
            }
            let n = if kind == Kind::UnindexedSort {
                scan_iterations
            } else {
                iterations
            };
            for path in [Path::Raw, Path::Module, Path::Http] {
                let (latencies, answered) = measure(&ctx, kind, path, n).await;
                let stats = common::stats(latencies);
                let verdict = match kind {
                    Kind::UnindexedSort => "n/a (info)".to_string(),
                    _ if path == Path::Raw => String::new(),
                    _ => common::verdict(stats.p99 < TARGET),
                };
                eprintln!(
                    "  {} / {}: p50 {} ms p99 {} ms",
                    kind.label(),
                    path.label(),
                    common::ms(stats.p50),
                    common::ms(stats.p99)
                );
                table.row(vec![
                    kind.label().to_string(),
                    path.label().to_string(),
                    stats.count.to_string(),
                    format!("{answered:.1}"),
                    common::ms(stats.p50),
                    common::ms(stats.p99),
                    common::ms(stats.max),
                    verdict,
                ]);
            }
        }
        table.print();
        println!("load average at the end: {}", common::load_average());
        env.cleanup().await;
    });
}
