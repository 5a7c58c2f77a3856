//! Report engine (`metacrm::report`) on a big deal table (`METACRM_BENCH_ROWS`, default
//! 1,000,000 deals over rows/20 customers, plus 1–3 stage-history rows per deal, all
//! bulk-loaded with multi-row INSERTs, not through the API):
//!
//! - **(1) group by stage**, count + sum(amount);
//! - **(2) funnel** (the `funnel` kind: records per stage, furthest stage reached from
//!   the stage history, average days per stage, totals);
//! - **(3) pivot** month (bucket on `ordered_on`) × `customer.region` (through the
//!   reference join), sum(amount);
//! - **(4) group by `customer.region`** (one reference join), count + sum(amount).
//!
//! Each is measured as the engine's grouped statement (`Aggregate::fetch`) and as the
//! whole report (`run::run`, with every query its kind runs), beside the same result
//! computed by SQL written by hand, on the same pool, in the same run: one warm-up,
//! then `METACRM_BENCH_REPORT_ITERS` (default 10) iterations alternating engine and
//! hand. Target: < 300 ms, and engine/hand ≤ 1.1.
//!
//! On SQLite the page caches of the pool's connections are emptied before every
//! measured call (see [`settle`]; `METACRM_BENCH_NO_SHRINK` turns that off), else
//! which pooled connection a call lands on decides a factor of up to 3.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use common::{Env, Rng, Table};
use metacrm::auth::Access;
use metacrm::catalog::Catalog;
use metacrm::meta::Report;
use metacrm::report::query::{Aggregate, Reach};
use metacrm::report::run;
use metacrm::store::db::{Backend, TenantDb};
use metacrm::tenant::Tenant;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sea_orm::sea_query::{Expr, PostgresQueryBuilder, SelectStatement, SqliteQueryBuilder};
use sea_orm::{ConnectionTrait, QueryResult, Statement};
use serde_json::{Value, json};

const TIME_TARGET: Duration = Duration::from_millis(300);
const RATIO_TARGET: f64 = 1.1;

const DEAL_TABLE: &str = "e_deal";
const CUSTOMER_TABLE: &str = "e_customer";
const HISTORY_TABLE: &str = "stage_history";

/// The pipeline: key, label, probability, won, lost — in order.
const STAGES: [(&str, &str, u32, bool, bool); 5] = [
    ("lead", "线索", 10, false, false),
    ("qualified", "需求确认", 30, false, false),
    ("proposal", "方案报价", 60, false, false),
    ("won", "成交", 100, true, false),
    ("lost", "丢单", 0, false, true),
];
/// Position of the lost stage in [`STAGES`]; the stages before it are the open ones.
const LOST: usize = 4;

/// Deals are ordered over the three years up to this day.
fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 11, 24).expect("valid date")
}
const DAYS: u64 = 1096;

fn package() -> Value {
    let regions: Vec<Value> = common::REGIONS
        .iter()
        .map(|(v, l)| json!({"value": v, "label": l}))
        .collect();
    let stages: Vec<Value> = STAGES
        .iter()
        .map(|(key, label, probability, won, lost)| {
            let mut stage = json!({"key": key, "label": label, "probability": probability});
            if *won {
                stage["won"] = json!(true);
            }
            if *lost {
                stage["lost"] = json!(true);
            }
            stage
        })
        .collect();
    json!({"format": 1, "entities": [
        {"key": "customer", "label": "客户", "title_field": "name", "fields": [
            {"key": "name", "label": "单位名称", "type": "text", "required": true},
            {"key": "region", "label": "区域", "type": "select", "options": regions,
             "indexed": true}
        ]},
        {"key": "deal", "label": "订单", "title_field": "title", "fields": [
            {"key": "title", "label": "标题", "type": "text", "required": true},
            {"key": "customer", "label": "客户", "type": "reference", "target": "customer",
             "indexed": true},
            {"key": "amount", "label": "金额", "type": "decimal", "scale": 2, "min": 0},
            {"key": "ordered_on", "label": "下单日期", "type": "date", "indexed": true}
        ],
        "pipeline": {"stages": stages, "transitions": "any"}}
    ]})
}

// ---------------------------------------------------------------------------------
// Generated data
// ---------------------------------------------------------------------------------

/// One generated deal, deterministic in its index.
struct Deal {
    /// Index into [`STAGES`].
    stage: usize,
    /// None for one deal in a hundred.
    customer: Option<i64>,
    /// Cents, log-uniform between 1,000.00 and 1,000,000.00.
    amount: i64,
    ordered_on: NaiveDate,
    /// One deal in two hundred is in the recycle bin.
    deleted: bool,
    /// The stages its history entered, oldest first, with when (the last one is open).
    history: Vec<(usize, DateTime<Utc>)>,
}

fn deal(i: u64, customers: u64) -> Deal {
    let mut rng = Rng::new(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xdea1);
    let roll = rng.below(100);
    // lead 30 %, qualified 20 %, proposal 15 %, won 15 %, lost 20 %.
    let stage = match roll {
        0..30 => 0,
        30..50 => 1,
        50..65 => 2,
        65..80 => 3,
        _ => LOST,
    };
    let customer = (rng.below(100) != 0).then(|| 1 + rng.below(customers) as i64);
    let amount = (100_000.0 * (rng.unit() * 1000f64.ln()).exp()) as i64;
    let ordered_on = first_day() + chrono::Days::new(rng.below(DAYS));
    let deleted = rng.below(200) == 0;
    // The last one to three stages it went through (older ones were not recorded).
    let path: Vec<usize> = if stage == LOST {
        let open = 1 + rng.below(2) as usize;
        (0..open).chain([LOST]).collect()
    } else {
        (stage.saturating_sub(2)..=stage).collect()
    };
    let mut at = Utc.from_utc_datetime(&ordered_on.and_hms_opt(1, 0, 0).expect("valid time"))
        + chrono::Duration::seconds(rng.below(10 * 3600) as i64);
    let mut history = Vec::with_capacity(path.len());
    for s in path {
        history.push((s, at));
        at += chrono::Duration::seconds((1 + rng.below(30 * 86_400)) as i64);
    }
    Deal {
        stage,
        customer,
        amount,
        ordered_on,
        deleted,
        history,
    }
}

const CUSTOMER_COLUMNS: [&str; 8] = [
    "id",
    "created_at",
    "updated_at",
    "created_by",
    "owner",
    "version",
    "name",
    "region",
];

fn customer_values(i: usize, owner: i64) -> Vec<Expr> {
    let mut rng = Rng::new((i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xc057);
    let name = common::company_name(&mut rng).full();
    let region = common::REGIONS[rng.below(common::REGIONS.len() as u64) as usize].0;
    let created = Utc
        .with_ymd_and_hms(2022, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
        + chrono::Duration::seconds(rng.below(3 * 365 * 86_400) as i64);
    vec![
        Expr::val(i as i64 + 1),
        Expr::val(created),
        Expr::val(created),
        Expr::val(owner),
        Expr::val(owner),
        Expr::val(1i64),
        Expr::val(name),
        Expr::val(region.to_string()),
    ]
}

const DEAL_COLUMNS: [&str; 12] = [
    "id",
    "created_at",
    "updated_at",
    "created_by",
    "owner",
    "version",
    "deleted_at",
    "stage",
    "title",
    "customer",
    "amount",
    "ordered_on",
];

fn deal_values(i: usize, customers: u64, owner: i64) -> Vec<Expr> {
    let d = deal(i as u64, customers);
    let created = d.history[0].1;
    let updated = d.history.last().expect("a stage").1;
    vec![
        Expr::val(i as i64 + 1),
        Expr::val(created),
        Expr::val(updated),
        Expr::val(owner),
        Expr::val(owner),
        Expr::val(d.history.len() as i64),
        Expr::val(d.deleted.then_some(updated)),
        Expr::val(STAGES[d.stage].0.to_string()),
        Expr::val(format!("订单 {:07}", i + 1)),
        Expr::val(d.customer),
        Expr::val(d.amount),
        Expr::val(d.ordered_on),
    ]
}

const HISTORY_COLUMNS: [&str; 6] = [
    "entity",
    "record_id",
    "stage",
    "entered_at",
    "entered_by",
    "left_at",
];

fn history_values(deal_index: u32, k: u8, customers: u64, owner: i64) -> Vec<Expr> {
    let d = deal(u64::from(deal_index), customers);
    let (stage, entered) = d.history[k as usize];
    let left = d.history.get(k as usize + 1).map(|(_, at)| *at);
    vec![
        Expr::val("deal".to_string()),
        Expr::val(i64::from(deal_index) + 1),
        Expr::val(STAGES[stage].0.to_string()),
        Expr::val(entered),
        Expr::val(owner),
        Expr::val(left),
    ]
}

// ---------------------------------------------------------------------------------
// The reports and their hand-written SQL
// ---------------------------------------------------------------------------------

fn report(value: Value) -> Report {
    serde_json::from_value(value).expect("report definition")
}

struct Reports {
    by_stage: Report,
    funnel: Report,
    pivot: Report,
    by_region: Report,
}

fn reports() -> Reports {
    let count_and_sum = json!([{"fn": "count"}, {"fn": "sum", "field": "amount"}]);
    Reports {
        by_stage: report(json!({"key": "by_stage", "entity": "deal",
            "group_by": [{"field": "stage"}], "measures": count_and_sum})),
        funnel: report(json!({"key": "funnel", "entity": "deal", "kind": "funnel",
            "measures": count_and_sum})),
        pivot: report(json!({"key": "pivot", "entity": "deal", "kind": "pivot",
            "group_by": [{"field": "ordered_on", "bucket": "month"}, {"field": "customer.region"}],
            "measures": [{"fn": "sum", "field": "amount"}]})),
        by_region: report(json!({"key": "by_region", "entity": "deal",
            "group_by": [{"field": "customer.region"}], "measures": count_and_sum})),
    }
}

/// The same results written by hand, as a person who knows the schema would.
struct Hand {
    stage: String,
    furthest: String,
    days: String,
    pivot: String,
    region: String,
}

fn hand_sql(db: &TenantDb) -> Hand {
    let deal = common::qualified(db, DEAL_TABLE);
    let customer = common::qualified(db, CUSTOMER_TABLE);
    let history = common::qualified(db, HISTORY_TABLE);
    let now = metacrm::store::value::format_datetime(metacrm::clock::now());
    let position: String = STAGES[..LOST]
        .iter()
        .enumerate()
        .map(|(p, s)| format!(" WHEN '{}' THEN {p}", s.0))
        .collect();
    let (month, seconds) = match db.backend() {
        Backend::Sqlite => (
            "substr(d.ordered_on, 1, 7)".to_string(),
            format!(
                "AVG((julianday(COALESCE(left_at, '{now}')) - julianday(entered_at)) * 86400.0)"
            ),
        ),
        Backend::Postgres => (
            "to_char(d.ordered_on, 'YYYY-MM')".to_string(),
            format!(
                "AVG(EXTRACT(EPOCH FROM (COALESCE(left_at, '{now}'::timestamptz) - entered_at)))::float8"
            ),
        ),
    };
    let live_ids = format!("SELECT id FROM {deal} WHERE deleted_at IS NULL");
    Hand {
        stage: format!(
            "SELECT stage, COUNT(*) AS n, SUM(amount) AS amount FROM {deal} \
             WHERE deleted_at IS NULL GROUP BY stage ORDER BY stage"
        ),
        furthest: format!(
            "SELECT furthest, COUNT(*) AS n FROM (\
               SELECT rid, MAX(CASE stage{position} END) AS furthest FROM (\
                 SELECT record_id AS rid, stage FROM {history} \
                 WHERE entity = 'deal' AND record_id IN ({live_ids}) \
                 UNION ALL SELECT id, stage FROM {deal} WHERE deleted_at IS NULL\
               ) AS visited GROUP BY rid\
             ) AS per_record WHERE furthest IS NOT NULL GROUP BY furthest"
        ),
        days: format!(
            "SELECT stage, {seconds} AS seconds FROM {history} \
             WHERE entity = 'deal' AND record_id IN ({live_ids}) GROUP BY stage"
        ),
        pivot: format!(
            "SELECT {month} AS month, c.region, SUM(d.amount) AS amount FROM {deal} d \
             LEFT JOIN {customer} c ON c.id = d.customer AND c.deleted_at IS NULL \
             WHERE d.deleted_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        region: format!(
            "SELECT c.region, COUNT(*) AS n, SUM(d.amount) AS amount FROM {deal} d \
             LEFT JOIN {customer} c ON c.id = d.customer AND c.deleted_at IS NULL \
             WHERE d.deleted_at IS NULL GROUP BY c.region ORDER BY 1"
        ),
    }
}

// ---------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    /// (1) the grouped statement.
    StageQuery,
    /// (1) the whole table report (grouped rows + totals).
    StageReport,
    /// (2) the whole funnel.
    Funnel,
    /// (3) the flat grouped statement (month × region).
    PivotFlat,
    /// (3) the whole pivot (flat, totals, row, column and grand totals).
    PivotReport,
    /// (4) the grouped statement through the reference join.
    RegionQuery,
    /// (4) the whole table report (grouped rows + totals).
    RegionReport,
}

impl Case {
    fn label(self) -> &'static str {
        match self {
            Case::StageQuery => "(1) group by stage: statement",
            Case::StageReport => "(1) group by stage: report",
            Case::Funnel => "(2) funnel: report",
            Case::PivotFlat => "(3) pivot month × customer.region: flat statement",
            Case::PivotReport => "(3) pivot month × customer.region: report",
            Case::RegionQuery => "(4) group by customer.region: statement",
            Case::RegionReport => "(4) group by customer.region: report",
        }
    }

    fn engine_path(self) -> &'static str {
        match self {
            Case::StageQuery | Case::PivotFlat | Case::RegionQuery => "Aggregate::fetch, 1 query",
            // Totals of counts and sums fold from the grouped rows (`run::regroup`).
            Case::StageReport | Case::RegionReport => "run::run, 1 query",
            Case::Funnel => "run::run, 3 queries",
            Case::PivotReport => "run::run, 1 query",
        }
    }

    fn hand_path(self) -> &'static str {
        match self {
            Case::Funnel => "3 queries",
            _ => "1 query",
        }
    }
}

struct Ctx<'a> {
    db: &'a TenantDb,
    catalog: &'a Catalog,
    access: Access,
    targets: BTreeMap<String, Access>,
    reports: Reports,
    hand: Hand,
}

/// What a run produced, to check that engine and hand computed the same thing: rows,
/// and the total of the first measure (currency units for a sum).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Check {
    rows: usize,
    total: f64,
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0.0)
}

fn cell(row: &QueryResult, index: usize) -> f64 {
    if let Ok(v) = row.try_get_by_index::<Option<i64>>(index) {
        return v.unwrap_or(0) as f64;
    }
    if let Ok(v) = row.try_get_by_index::<Option<Decimal>>(index) {
        return v.and_then(|d| d.to_f64()).unwrap_or(0.0);
    }
    row.try_get_by_index::<Option<f64>>(index)
        .ok()
        .flatten()
        .unwrap_or(0.0)
}

fn rows_check(rows: &[Vec<Value>], measure: usize) -> Check {
    Check {
        rows: rows.len(),
        total: rows.iter().map(|r| number(&r[measure])).sum(),
    }
}

impl Ctx<'_> {
    fn reach(&self) -> Reach<'_> {
        Reach {
            source: &self.access,
            targets: &self.targets,
        }
    }

    fn entity(&self) -> &metacrm::catalog::EntityCatalog {
        self.catalog.entity("deal").expect("deal entity")
    }

    fn aggregate(&self, report: &Report) -> Aggregate<'_> {
        Aggregate::compile(self.db, self.catalog, self.entity(), report, &self.reach())
            .expect("compile report")
    }

    async fn run(&self, report: &Report) -> run::Output {
        run::run(self.db, self.catalog, self.entity(), report, &self.reach())
            .await
            .expect("run report")
    }

    async fn raw(&self, sql: &str) -> Vec<QueryResult> {
        self.db
            .conn()
            .query_all_raw(Statement::from_string(common::db_backend(self.db), sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn engine(&self, case: Case) -> Check {
        let r = &self.reports;
        match case {
            Case::StageQuery => rows_check(
                &self
                    .aggregate(&r.by_stage)
                    .fetch(&[0])
                    .await
                    .expect("fetch")
                    .0,
                1,
            ),
            Case::StageReport => rows_check(&self.run(&r.by_stage).await.rows, 1),
            Case::Funnel => {
                // Lost deals count among the stage rows too; the first measure is the count.
                rows_check(&self.run(&r.funnel).await.rows, 1)
            }
            Case::PivotFlat => rows_check(
                &self
                    .aggregate(&r.pivot)
                    .fetch(&[0, 1])
                    .await
                    .expect("fetch")
                    .0,
                2,
            ),
            Case::PivotReport => rows_check(&self.run(&r.pivot).await.rows, 2),
            Case::RegionQuery => rows_check(
                &self
                    .aggregate(&r.by_region)
                    .fetch(&[0])
                    .await
                    .expect("fetch")
                    .0,
                1,
            ),
            Case::RegionReport => rows_check(&self.run(&r.by_region).await.rows, 1),
        }
    }

    /// The hand-written SQL for `case`; `parts` gets each query's time.
    async fn hand(&self, case: Case, parts: &mut Vec<Duration>) -> Check {
        let h = &self.hand;
        let mut timed = async |sql: &str| {
            let t0 = Instant::now();
            let rows = self.raw(sql).await;
            parts.push(t0.elapsed());
            rows
        };
        match case {
            Case::StageQuery | Case::StageReport => {
                let rows = timed(&h.stage).await;
                Check {
                    rows: rows.len(),
                    total: rows.iter().map(|r| cell(r, 1)).sum(),
                }
            }
            Case::Funnel => {
                let rows = timed(&h.stage).await;
                let furthest = timed(&h.furthest).await;
                let days = timed(&h.days).await;
                std::hint::black_box((furthest.len(), days.len()));
                // The funnel lists every stage, present or not.
                Check {
                    rows: STAGES.len(),
                    total: rows.iter().map(|r| cell(r, 1)).sum(),
                }
            }
            Case::PivotFlat | Case::PivotReport => {
                let rows = timed(&h.pivot).await;
                Check {
                    rows: rows.len(),
                    total: rows.iter().map(|r| cell(r, 2)).sum::<f64>() / 100.0,
                }
            }
            Case::RegionQuery | Case::RegionReport => {
                let rows = timed(&h.region).await;
                Check {
                    rows: rows.len(),
                    total: rows.iter().map(|r| cell(r, 1)).sum(),
                }
            }
        }
    }
}

struct Measurement {
    engine: common::Stats,
    hand: common::Stats,
    /// Each hand query's p50, for the funnel.
    parts: Vec<Duration>,
    check: (Check, Check),
}

/// Most connections a tenant's SQLite pool opens (`store::db::open_sqlite`).
const SQLITE_POOL: usize = 8;

/// On SQLite, empties the page cache of every pooled connection (`PRAGMA
/// shrink_memory`), so that each measured call starts from the same state whichever
/// connection the pool hands it. The bundled SQLite is built with
/// `SQLITE_ENABLE_MEMORY_MANAGEMENT`, which puts the page caches of all connections in
/// one shared LRU group; when calls alternate between two pooled connections, one of
/// them was seen to thrash (re-reading the same pages, 3× the CPU time) until its
/// cache was emptied. `METACRM_BENCH_NO_SHRINK` leaves the caches alone.
async fn settle(db: &TenantDb) {
    if db.backend() != Backend::Sqlite || std::env::var("METACRM_BENCH_NO_SHRINK").is_ok() {
        return;
    }
    let conn = db.conn();
    let mut held = Vec::with_capacity(SQLITE_POOL);
    for _ in 0..SQLITE_POOL {
        match sea_orm::TransactionTrait::begin(&conn).await {
            Ok(txn) => held.push(txn),
            Err(e) => {
                eprintln!("settle: {e}");
                break;
            }
        }
    }
    for txn in held {
        txn.execute_unprepared("PRAGMA shrink_memory")
            .await
            .expect("shrink_memory");
        txn.commit().await.expect("commit");
    }
}

async fn measure(ctx: &Ctx<'_>, case: Case, iterations: usize) -> Measurement {
    settle(ctx.db).await;
    let engine_check = ctx.engine(case).await;
    settle(ctx.db).await;
    let hand_check = ctx.hand(case, &mut Vec::new()).await;
    let mut engine = Vec::with_capacity(iterations);
    let mut hand = Vec::with_capacity(iterations);
    let mut parts: Vec<Vec<Duration>> = Vec::new();
    for _ in 0..iterations {
        settle(ctx.db).await;
        let t0 = Instant::now();
        std::hint::black_box(ctx.engine(case).await);
        engine.push(t0.elapsed());
        settle(ctx.db).await;
        let mut split = Vec::new();
        let t0 = Instant::now();
        std::hint::black_box(ctx.hand(case, &mut split).await);
        hand.push(t0.elapsed());
        for (n, d) in split.into_iter().enumerate() {
            if parts.len() <= n {
                parts.push(Vec::new());
            }
            parts[n].push(d);
        }
    }
    Measurement {
        engine: common::stats(engine),
        hand: common::stats(hand),
        parts: parts.into_iter().map(|p| common::stats(p).p50).collect(),
        check: (engine_check, hand_check),
    }
}

fn inline(db: &TenantDb, select: &SelectStatement) -> String {
    match db.backend() {
        Backend::Postgres => select.to_string(PostgresQueryBuilder),
        Backend::Sqlite => select.to_string(SqliteQueryBuilder),
    }
}

async fn print_plans(ctx: &Ctx<'_>, title: &str, engine: &SelectStatement, hand: &str) {
    println!("\n{title}\n  engine SQL: {}", inline(ctx.db, engine));
    println!("  engine plan:");
    for line in common::explain_select(ctx.db, engine).await {
        println!("      {line}");
    }
    println!("  hand SQL: {hand}\n  hand plan:");
    for line in common::explain(ctx.db, hand, sea_orm::sea_query::Values(Vec::new())).await {
        println!("      {line}");
    }
}

fn ratio(engine: Duration, hand: Duration) -> f64 {
    engine.as_secs_f64() / hand.as_secs_f64().max(1e-9)
}

fn main() {
    let runtime = common::runtime();
    runtime.block_on(async {
        let rows = common::rows();
        let customers = (rows / 20).max(1);
        let iterations = common::env_usize("METACRM_BENCH_REPORT_ITERS", 10);
        let env = Env::open().await;
        common::print_header("report", env.backend());
        let tenant: std::sync::Arc<Tenant> = env.tenant("br", &package()).await;
        let owner = common::admin_id(&tenant).await;

        eprintln!("bulk-loading {customers} customers…");
        let load_customers =
            common::bulk_insert(&tenant, CUSTOMER_TABLE, &CUSTOMER_COLUMNS, customers, |i| {
                customer_values(i, owner)
            })
            .await;
        eprintln!("bulk-loading {rows} deals…");
        let load_deals = common::bulk_insert(&tenant, DEAL_TABLE, &DEAL_COLUMNS, rows, |i| {
            deal_values(i, customers as u64, owner)
        })
        .await;
        // Which deal and which of its stages each history row is.
        let mut entries: Vec<(u32, u8)> = Vec::with_capacity(rows * 2);
        let mut per_stage = [0usize; STAGES.len()];
        for i in 0..rows {
            let d = deal(i as u64, customers as u64);
            if !d.deleted {
                per_stage[d.stage] += 1;
            }
            for k in 0..d.history.len() {
                entries.push((i as u32, k as u8));
            }
        }
        eprintln!("bulk-loading {} stage-history rows…", entries.len());
        let load_history = common::bulk_insert(
            &tenant,
            HISTORY_TABLE,
            &HISTORY_COLUMNS,
            entries.len(),
            |n| {
                let (deal_index, k) = entries[n];
                history_values(deal_index, k, customers as u64, owner)
            },
        )
        .await;
        let history_rows = entries.len();
        drop(entries);
        let mut maintenance = "none (the application runs no ANALYZE on SQLite)".to_string();
        if env.backend() == Backend::Sqlite {
            // The load leaves a large write-ahead log that readers then look pages up in;
            // a server settles with its log checkpointed (readers see the database file).
            let file = env
                .dir
                .path()
                .join("tenants")
                .join(format!("{}.db", tenant.key));
            let size = |suffix: &str| {
                let path = format!("{}{suffix}", file.display());
                std::fs::metadata(path).map_or(0, |m| m.len()) as f64 / (1024.0 * 1024.0)
            };
            let wal_before = size("-wal");
            if std::env::var("METACRM_BENCH_NO_CHECKPOINT").is_err() {
                common::exec(&tenant.db, "PRAGMA wal_checkpoint(TRUNCATE)").await;
                maintenance = format!(
                    "PRAGMA wal_checkpoint(TRUNCATE) after loading (log {wal_before:.0} MiB -> \
                     {:.0} MiB; database {:.0} MiB); no ANALYZE (the application runs none)",
                    size("-wal"),
                    size("")
                );
            } else {
                maintenance = format!(
                    "none: log left at {wal_before:.0} MiB (database {:.0} MiB); no ANALYZE",
                    size("")
                );
            }
        }
        if env.backend() == Backend::Postgres {
            for table in [CUSTOMER_TABLE, DEAL_TABLE, HISTORY_TABLE] {
                let sql = format!("VACUUM ANALYZE {}", common::qualified(&tenant.db, table));
                common::exec(&tenant.db, &sql).await;
            }
            maintenance = "VACUUM ANALYZE after loading (as autovacuum would)".to_string();
        }
        let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
        println!(
            "loaded into {}: {customers} customers in {:.1} s ({:.0} rows/s), {rows} deals in \
             {:.1} s ({:.0} rows/s), {history_rows} stage-history rows in {:.1} s ({:.0} rows/s); \
             maintenance: {maintenance}",
            env.label(),
            load_customers.as_secs_f64(),
            rate(customers, load_customers),
            load_deals.as_secs_f64(),
            rate(rows, load_deals),
            load_history.as_secs_f64(),
            rate(history_rows, load_history),
        );
        println!(
            "live deals per stage: {}",
            STAGES
                .iter()
                .zip(per_stage)
                .map(|(s, n)| format!("{} {n}", s.0))
                .collect::<Vec<_>>()
                .join(", ")
        );

        let catalog = tenant.catalog().await.clone();
        let mut targets = BTreeMap::new();
        targets.insert("customer".to_string(), Access::full(owner));
        let ctx = Ctx {
            db: &tenant.db,
            catalog: &catalog,
            access: Access::full(owner),
            targets,
            reports: reports(),
            hand: hand_sql(&tenant.db),
        };

        let stage_select = ctx.aggregate(&ctx.reports.by_stage).select(&[0]);
        print_plans(&ctx, "(1) group by stage", &stage_select, &ctx.hand.stage).await;
        let pivot_select = ctx.aggregate(&ctx.reports.pivot).select(&[0, 1]);
        print_plans(
            &ctx,
            "(3) pivot, flat statement",
            &pivot_select,
            &ctx.hand.pivot,
        )
        .await;
        let region_select = ctx.aggregate(&ctx.reports.by_region).select(&[0]);
        print_plans(
            &ctx,
            "(4) group by customer.region",
            &region_select,
            &ctx.hand.region,
        )
        .await;
        println!(
            "\n(2) funnel, hand SQL:\n  {}\n  {}",
            ctx.hand.furthest, ctx.hand.days
        );
        let funnel = ctx.run(&ctx.reports.funnel).await;
        println!("  funnel result (stage, count, amount, reached, conversion, avg days):");
        for row in &funnel.rows {
            println!("      {}", Value::Array(row.clone()));
        }

        let mut table = Table::new(
            format!(
                "reports on {} with {rows} deals, {customers} customers, {history_rows} \
                 stage-history rows: one client, {iterations} iterations after 1 warm-up, \
                 engine and hand alternating",
                env.label()
            ),
            &[
                "report",
                "engine",
                "hand SQL",
                "engine p50 ms",
                "engine p99 ms",
                "hand p50 ms",
                "hand p99 ms",
                "ratio p50",
                "ratio p99",
                "< 300 ms (p50)",
                "ratio ≤ 1.1 (p50)",
                "check",
            ],
        );
        for case in [
            Case::StageQuery,
            Case::StageReport,
            Case::Funnel,
            Case::PivotFlat,
            Case::PivotReport,
            Case::RegionQuery,
            Case::RegionReport,
        ] {
            let result = measure(&ctx, case, iterations).await;
            let r50 = ratio(result.engine.p50, result.hand.p50);
            let r99 = ratio(result.engine.p99, result.hand.p99);
            let (e, h) = result.check;
            let same =
                e.rows == h.rows && (e.total - h.total).abs() < 0.01 * e.total.abs().max(1.0);
            let check = if same {
                format!("same ({} rows)", e.rows)
            } else {
                format!(
                    "DIFFERENT: engine {} rows / {:.2}, hand {} rows / {:.2}",
                    e.rows, e.total, h.rows, h.total
                )
            };
            eprintln!(
                "  {}: engine p50 {} ms, hand p50 {} ms (parts {:?}), ratio {r50:.2}; {check}",
                case.label(),
                common::ms(result.engine.p50),
                common::ms(result.hand.p50),
                result
                    .parts
                    .iter()
                    .map(|d| common::ms(*d))
                    .collect::<Vec<_>>(),
            );
            if case == Case::Funnel {
                println!(
                    "\n(2) funnel, hand queries p50: by stage {} ms, furthest stage {} ms, \
                     days per stage {} ms",
                    common::ms(result.parts[0]),
                    common::ms(result.parts[1]),
                    common::ms(result.parts[2])
                );
            }
            table.row(vec![
                case.label().to_string(),
                case.engine_path().to_string(),
                case.hand_path().to_string(),
                common::ms(result.engine.p50),
                common::ms(result.engine.p99),
                common::ms(result.hand.p50),
                common::ms(result.hand.p99),
                format!("{r50:.2}"),
                format!("{r99:.2}"),
                common::verdict(result.engine.p50 < TIME_TARGET),
                common::verdict(r50 <= RATIO_TARGET),
                check,
            ]);
        }
        table.print();
        println!("load average at the end: {}", common::load_average());
        env.cleanup().await;
    });
}
