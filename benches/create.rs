//! Single-record create throughput and latency with 1, 8 and 32 concurrent clients:
//!
//! - **http**: `POST /api/data/customer` through the in-process server (reqwest,
//!   keep-alive, one connection per client);
//! - **module**: `Records::create` called directly (the same write path, no HTTP, no
//!   session lookup), to tell HTTP cost from write-path cost;
//! - **raw**: one-row transactions (`BEGIN`, `INSERT … RETURNING id`, `COMMIT`) on the
//!   tenant's own table through the same connection pool — the baseline.
//!
//! Target: http ≥ 50 % of raw records/s. Each level runs `METACRM_BENCH_SECS` seconds
//! (default 5) after a one-second warm-up; `METACRM_BENCH_CLIENTS` overrides the
//! levels (e.g. `1,8`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Env, Table};
use metacrm::auth::Access;
use metacrm::store::records::Records;
use metacrm::tenant::Tenant;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Query};

/// Requests one client may send in one run, whatever the time (a safety bound).
const MAX_REQUESTS_PER_CLIENT: usize = 200_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Raw,
    Module,
    Http,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Raw => "raw SQL (baseline)",
            Mode::Module => "module (Records::create)",
            Mode::Http => "HTTP POST",
        }
    }
}

struct Shared {
    tenant: Arc<Tenant>,
    owner: i64,
    base: String,
    token: String,
    client: reqwest::Client,
    next: AtomicU64,
}

struct Outcome {
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

async fn one(shared: &Shared, mode: Mode) -> Result<(), String> {
    let i = shared.next.fetch_add(1, Ordering::Relaxed) + 10_000_000;
    let record = common::customer(i);
    match mode {
        Mode::Http => {
            let body = record.json();
            let reply = shared
                .client
                .post(format!("{}/api/data/{}", shared.base, common::ENTITY))
                .bearer_auth(&shared.token)
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = reply.status();
            let text = reply.text().await.map_err(|e| e.to_string())?;
            if status.as_u16() == 201 {
                Ok(())
            } else {
                Err(format!("{status}: {text}"))
            }
        }
        Mode::Module => {
            let input = record.json();
            let catalog = shared.tenant.catalog().await;
            let entity = catalog.entity(common::ENTITY).ok_or("no customer entity")?;
            Records::new(&shared.tenant.db, &catalog, entity)
                .create(&input, &Access::full(shared.owner))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Mode::Raw => {
            let db = &shared.tenant.db;
            let mut insert = Query::insert();
            insert
                .into_table(db.table(common::TABLE))
                .columns(common::CUSTOMER_COLUMNS.map(Alias::new))
                .values_panic(record.sql_values(shared.owner, chrono::Utc::now()))
                .returning_col(Alias::new("id"));
            let txn = db.begin_write().await.map_err(|e| e.to_string())?;
            let rows = txn.query_all(&insert).await.map_err(|e| e.to_string())?;
            if rows.is_empty() {
                return Err("insert returned no id".into());
            }
            txn.commit().await.map_err(|e| e.to_string())
        }
    }
}

/// `clients` tasks each sending creates back to back for `duration`.
async fn run(shared: &Arc<Shared>, mode: Mode, clients: usize, duration: Duration) -> Outcome {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let mut first_error = None;
            while started.elapsed() < duration && latencies.len() + errors < MAX_REQUESTS_PER_CLIENT
            {
                let t0 = Instant::now();
                match one(&shared, mode).await {
                    Ok(()) => latencies.push(t0.elapsed()),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut outcome = Outcome {
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for task in tasks {
        let (latencies, errors, first_error) = task.await.expect("client task");
        outcome.ok += latencies.len();
        outcome.errors += errors;
        if outcome.first_error.is_none() {
            outcome.first_error = first_error;
        }
        outcome.latencies.extend(latencies);
    }
    outcome.elapsed = started.elapsed();
    outcome
}

fn levels() -> Vec<usize> {
    std::env::var("METACRM_BENCH_CLIENTS")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .filter(|n| *n > 0)
                .collect::<Vec<usize>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec![1, 8, 32])
}

fn main() {
    let runtime = common::runtime();
    runtime.block_on(async {
        let env = Env::open().await;
        common::print_header("create", env.backend());
        let tenant = env.tenant("bc", &common::customer_package(0)).await;
        let owner = common::admin_id(&tenant).await;
        let base = common::serve(env.tenants.clone()).await;
        let client = common::http_client();
        let token = common::login(&client, &base, &tenant.key).await;
        let shared = Arc::new(Shared {
            tenant: tenant.clone(),
            owner,
            base,
            token,
            client,
            next: AtomicU64::new(0),
        });
        let seconds = common::env_usize("METACRM_BENCH_SECS", 5) as u64;
        let duration = Duration::from_secs(seconds);
        let warmup = Duration::from_secs(1);

        let mut table = Table::new(
            format!(
                "create on {}: single-record creates, {seconds} s per row",
                env.label()
            ),
            &[
                "clients",
                "path",
                "records/s",
                "p50 ms",
                "p99 ms",
                "errors",
                "vs raw",
                "target ≥ 50 % of raw",
            ],
        );
        for clients in levels() {
            let mut raw_rate = 0.0;
            for mode in [Mode::Raw, Mode::Module, Mode::Http] {
                run(&shared, mode, clients, warmup).await;
                let outcome = run(&shared, mode, clients, duration).await;
                let rate = outcome.ok as f64 / outcome.elapsed.as_secs_f64();
                if mode == Mode::Raw {
                    raw_rate = rate;
                }
                if let Some(e) = &outcome.first_error {
                    eprintln!("{} with {clients} clients: first error: {e}", mode.label());
                }
                let stats = common::stats(outcome.latencies);
                let ratio = if raw_rate > 0.0 { rate / raw_rate } else { 0.0 };
                let target = match mode {
                    Mode::Http => common::verdict(ratio >= 0.5),
                    _ => String::new(),
                };
                table.row(vec![
                    clients.to_string(),
                    mode.label().to_string(),
                    format!("{rate:.0}"),
                    common::ms(stats.p50),
                    common::ms(stats.p99),
                    outcome.errors.to_string(),
                    format!("{:.0} %", ratio * 100.0),
                    target,
                ]);
                eprintln!(
                    "  {clients:>2} clients, {:<26} {rate:>8.0} records/s  p50 {} ms  p99 {} ms",
                    mode.label(),
                    common::ms(stats.p50),
                    common::ms(stats.p99)
                );
            }
        }
        table.print();
        println!("load average at the end: {}", common::load_average());
        let total = common::count_rows(&tenant.db, common::TABLE).await;
        println!("{total} customer rows written in all.");
        env.cleanup().await;
    });
}
