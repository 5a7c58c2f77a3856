//! Soak: `METACRM_SOAK_CLIENTS` (default 64) clients against the HTTP API for
//! `METACRM_SOAK_SECS` seconds (default 600), each mixing creates (40 %), list queries
//! (25 %), searches (15 %), reports (10 %) and stage moves (10 %), with the search
//! indexer running as in `serve`. Then the checks: every acknowledged create is stored
//! exactly once, nothing unacknowledged was stored, and the outbox drains.
//!
//! Baseline, in the same process on the same database: the same mix as the SQL
//! statements a hand-written application would send (one-row insert transactions, the
//! filtered page, a phone substring scan, the grouped aggregate, a one-row update) from
//! the same number of tasks for `METACRM_SOAK_BASELINE_SECS` (default 60).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Env, Rng, Table};
use metacrm::tenant::Tenant;
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

const STAGES: [&str; 4] = ["contact", "quote", "signed", "lost"];

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Op {
    Create,
    Query,
    Search,
    Report,
    Stage,
}

const OPS: [Op; 5] = [Op::Create, Op::Query, Op::Search, Op::Report, Op::Stage];

impl Op {
    fn pick(rng: &mut Rng) -> Op {
        match rng.below(100) {
            0..40 => Op::Create,
            40..65 => Op::Query,
            65..80 => Op::Search,
            80..90 => Op::Report,
            _ => Op::Stage,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Query => "query",
            Op::Search => "search",
            Op::Report => "report",
            Op::Stage => "stage move",
        }
    }
}

fn package() -> Value {
    let mut package = common::customer_package(0);
    package["entities"][0]["pipeline"] = json!({
        "stages": [{"key": "contact"}, {"key": "quote"}, {"key": "signed", "won": true},
                   {"key": "lost", "lost": true}],
        "transitions": "forward"});
    package
}

/// What one client did.
#[derive(Default)]
struct Outcome {
    latencies: HashMap<Op, Vec<Duration>>,
    errors: HashMap<Op, usize>,
    /// Names of the creates the server acknowledged (201).
    acknowledged: Vec<String>,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        for (op, mut samples) in other.latencies {
            self.latencies.entry(op).or_default().append(&mut samples);
        }
        for (op, n) in other.errors {
            *self.errors.entry(op).or_default() += n;
        }
        self.acknowledged.extend(other.acknowledged);
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    number: usize,
}

impl Client {
    async fn send(&self, op: Op, request: reqwest::RequestBuilder) -> Option<Value> {
        let response = request.bearer_auth(&self.token).send().await.ok()?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Some(body)
        } else {
            if status.as_u16() >= 500 {
                eprintln!("{} answered {status}: {body}", op.name());
            }
            None
        }
    }

    async fn run(self, until: Instant) -> Outcome {
        let mut rng = Rng::new(self.number as u64 + 1);
        let mut outcome = Outcome::default();
        // Own records and the stage each is in, for stage moves and searches.
        let mut own: Vec<(i64, usize, String)> = Vec::new();
        let mut created = 0u64;
        while Instant::now() < until {
            let mut op = Op::pick(&mut rng);
            if matches!(op, Op::Stage | Op::Search) && own.is_empty() {
                op = Op::Create;
            }
            let started = Instant::now();
            let ok = match op {
                Op::Create => {
                    let i = (self.number as u64) * 10_000_000 + created;
                    created += 1;
                    let mut record = common::customer(i).json();
                    let name = format!(
                        "{} {}-{}",
                        record["name"].as_str().unwrap_or(""),
                        self.number,
                        created
                    );
                    record["name"] = json!(name);
                    let url = format!("{}/api/data/customer", self.base);
                    match self.send(op, self.http.post(url).json(&record)).await {
                        Some(body) => {
                            let phone = record["phone"].as_str().unwrap_or_default().to_string();
                            own.push((body["id"].as_i64().unwrap_or_default(), 0, phone));
                            outcome.acknowledged.push(name);
                            true
                        }
                        None => false,
                    }
                }
                Op::Query => {
                    let region = common::REGIONS[rng.below(6) as usize].0;
                    let body = json!({"filter": {"field": "region", "op": "eq", "value": region},
                                      "sort": ["-amount"], "limit": 20});
                    let url = format!("{}/api/data/customer/query", self.base);
                    self.send(op, self.http.post(url).json(&body))
                        .await
                        .is_some()
                }
                Op::Search => {
                    let phone = &own[rng.below(own.len() as u64) as usize].2;
                    let url = format!("{}/api/search", self.base);
                    let digits = &phone[phone.len() - 6..];
                    self.send(
                        op,
                        self.http.get(url).query(&[("q", digits), ("limit", "10")]),
                    )
                    .await
                    .is_some()
                }
                Op::Report => {
                    let body = json!({"entity": "customer", "group_by": [{"field": "region"}],
                                      "measures": [{"fn": "count"}, {"fn": "sum", "field": "amount"}]});
                    let url = format!("{}/api/reports/run", self.base);
                    self.send(op, self.http.post(url).json(&body))
                        .await
                        .is_some()
                }
                Op::Stage => {
                    let pick = rng.below(own.len() as u64) as usize;
                    let (id, stage, _) = own[pick];
                    if stage + 1 >= STAGES.len() - 1 {
                        own.swap_remove(pick);
                        continue;
                    }
                    let url = format!("{}/api/data/customer/{id}/stage", self.base);
                    let to = STAGES[stage + 1];
                    let moved = self
                        .send(op, self.http.post(url).json(&json!({"to": to})))
                        .await
                        .is_some();
                    if moved {
                        own[pick].1 = stage + 1;
                    }
                    moved
                }
            };
            if ok {
                outcome
                    .latencies
                    .entry(op)
                    .or_default()
                    .push(started.elapsed());
            } else {
                *outcome.errors.entry(op).or_default() += 1;
            }
        }
        outcome
    }
}

/// The same mix as raw SQL on the tenant's table, from `tasks` tasks; answers
/// statements per second by kind.
async fn baseline(
    tenant: &Arc<Tenant>,
    owner: i64,
    tasks: usize,
    duration: Duration,
) -> HashMap<Op, f64> {
    let table = common::qualified(&tenant.db, common::TABLE);
    let backend = common::db_backend(&tenant.db);
    let until = Instant::now() + duration;
    let mut handles = Vec::new();
    for number in 0..tasks {
        let (tenant, table) = (tenant.clone(), table.clone());
        handles.push(tokio::spawn(async move {
            let mut rng = Rng::new(1_000 + number as u64);
            let mut counts: HashMap<Op, usize> = HashMap::new();
            let mut ids: Vec<i64> = Vec::new();
            let mut created = 0u64;
            while Instant::now() < until {
                let op = Op::pick(&mut rng);
                let db = &tenant.db;
                let sql = match op {
                    Op::Create => {
                        let i = 900_000_000 + (number as u64) * 1_000_000 + created;
                        created += 1;
                        let mut insert = Query::insert();
                        insert
                            .into_table(db.table(common::TABLE))
                            .columns(common::CUSTOMER_COLUMNS.map(Alias::new))
                            .values_panic(common::customer(i).sql_values(owner, chrono::Utc::now()))
                            .returning_col(Alias::new("id"));
                        let txn = db.begin_write().await.expect("begin");
                        let rows = txn.query_all(&insert).await.expect("insert");
                        txn.commit().await.expect("commit");
                        ids.push(rows[0].try_get("", "id").expect("id"));
                        *counts.entry(op).or_default() += 1;
                        continue;
                    }
                    Op::Query => format!(
                        "SELECT * FROM {table} WHERE region = '{}' AND deleted_at IS NULL ORDER BY amount DESC LIMIT 20",
                        common::REGIONS[rng.below(6) as usize].0
                    ),
                    Op::Search => format!(
                        "SELECT id FROM {table} WHERE phone LIKE '%{}%' LIMIT 10",
                        100_000 + rng.below(900_000)
                    ),
                    Op::Report => format!(
                        "SELECT region, COUNT(*), SUM(amount) FROM {table} WHERE deleted_at IS NULL GROUP BY region"
                    ),
                    Op::Stage => match ids.last() {
                        Some(id) => format!("UPDATE {table} SET stage = 'quote', version = version + 1 WHERE id = {id}"),
                        None => continue,
                    },
                };
                db.conn()
                    .query_all_raw(Statement::from_string(backend, sql.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                *counts.entry(op).or_default() += 1;
            }
            counts
        }));
    }
    let mut totals: HashMap<Op, usize> = HashMap::new();
    for handle in handles {
        for (op, n) in handle.await.expect("baseline task") {
            *totals.entry(op).or_default() += n;
        }
    }
    totals
        .into_iter()
        .map(|(op, n)| (op, n as f64 / duration.as_secs_f64()))
        .collect()
}

/// Every stored customer name with how many rows carry it.
async fn stored_names(tenant: &Tenant) -> HashMap<String, usize> {
    let sql = format!(
        "SELECT name FROM {}",
        common::qualified(&tenant.db, common::TABLE)
    );
    let rows = tenant
        .db
        .conn()
        .query_all_raw(Statement::from_string(common::db_backend(&tenant.db), sql))
        .await
        .expect("read names");
    let mut names = HashMap::new();
    for row in rows {
        let name: String = row.try_get_by_index(0).expect("name");
        *names.entry(name).or_default() += 1;
    }
    names
}

fn main() {
    let clients = common::env_usize("METACRM_SOAK_CLIENTS", 64);
    let duration = Duration::from_secs(common::env_usize("METACRM_SOAK_SECS", 600) as u64);
    let baseline_duration =
        Duration::from_secs(common::env_usize("METACRM_SOAK_BASELINE_SECS", 60) as u64);
    common::runtime().block_on(async {
        let env = Env::open().await;
        let tenant = env.tenant("soak", &package()).await;
        let owner = common::admin_id(&tenant).await;
        let base = common::serve(env.tenants.clone()).await;
        tokio::spawn(metacrm::search::indexer::serve_forever(env.tenants.clone()));
        let http = common::http_client();
        let token = common::login(&http, &base, &tenant.key).await;
        println!(
            "soak on {}: {clients} clients for {} s, then the raw-SQL baseline for {} s",
            env.label(),
            duration.as_secs(),
            baseline_duration.as_secs()
        );

        let until = Instant::now() + duration;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for number in 0..clients {
            let client = Client { http: http.clone(), base: base.clone(), token: token.clone(), number };
            tasks.push(tokio::spawn(client.run(until)));
        }
        let mut outcome = Outcome::default();
        for task in tasks {
            outcome.merge(task.await.expect("client task"));
        }
        let elapsed = started.elapsed();

        // The outbox drains, then every acknowledged create is there exactly once.
        let drain_started = Instant::now();
        loop {
            let pending = metacrm::search::indexer::pending(&tenant.db).await.expect("outbox lag");
            if pending == 0 {
                break;
            }
            assert!(drain_started.elapsed() < Duration::from_secs(600), "the outbox did not drain: {pending} rows left");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let drained_in = drain_started.elapsed();
        let names = stored_names(&tenant).await;
        let missing = outcome.acknowledged.iter().filter(|n| !names.contains_key(*n)).count();
        let duplicated = names.values().filter(|n| **n > 1).count();
        let unacknowledged = names.len() - (outcome.acknowledged.len() - missing);

        let baseline = baseline(&tenant, owner, clients, baseline_duration).await;

        let mut table = Table::new(
            format!("Soak, {}: {clients} clients, {:.0} s", env.label(), elapsed.as_secs_f64()),
            &["operation", "done", "per second", "p50 ms", "p99 ms", "max ms", "errors", "raw SQL per second"],
        );
        let mut total = 0;
        for op in OPS {
            let samples = outcome.latencies.remove(&op).unwrap_or_default();
            let stats = common::stats(samples);
            total += stats.count;
            table.row(vec![
                op.name().to_string(),
                stats.count.to_string(),
                format!("{:.0}", stats.count as f64 / elapsed.as_secs_f64()),
                common::ms(stats.p50),
                common::ms(stats.p99),
                common::ms(stats.max),
                outcome.errors.get(&op).copied().unwrap_or(0).to_string(),
                format!("{:.0}", baseline.get(&op).copied().unwrap_or(0.0)),
            ]);
        }
        let raw_total: f64 = baseline.values().sum();
        table.row(vec![
            "all".to_string(),
            total.to_string(),
            format!("{:.0}", total as f64 / elapsed.as_secs_f64()),
            String::new(),
            String::new(),
            String::new(),
            outcome.errors.values().sum::<usize>().to_string(),
            format!("{raw_total:.0}"),
        ]);
        table.print();
        println!(
            "checks: {} creates acknowledged, {} stored ({} missing, {} duplicated, {} stored without acknowledgement); outbox drained {:.1} s after the load",
            outcome.acknowledged.len(),
            names.len(),
            missing,
            duplicated,
            unacknowledged,
            drained_in.as_secs_f64()
        );
        env.cleanup().await;
        assert_eq!((missing, duplicated), (0, 0), "every acknowledged write is stored exactly once");
    });
}
