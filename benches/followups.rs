//! Follow-up cycles (联系周期) and the public pool (公海) of issue 4 on a big tenant:
//! `METACRM_BENCH_ROWS` customers (default 1,000,000) and `METACRM_BENCH_ACTIVITIES`
//! follow-up activities (default five per customer), bulk-loaded with multi-row INSERTs
//! (not through the API), worked by 50 sales reps in five teams.
//!
//! 1. **Due list**: `GET /api/followups/due` with its default limit of 100, through
//!    `followups::due` as a request runs it (a fresh context: the gate's decision, then
//!    one statement per category, merged), as a sales director (`all` scope), a team
//!    manager (`subordinates`: the team's 11 people) and a rep (`own`). Beside it, the
//!    same statements run raw on the same pool, with the owner predicate as the gate
//!    writes it (the baseline: rows read, nothing decoded or merged).
//!    `METACRM_BENCH_ITERS` (default 200) iterations per caller after a tenth as
//!    warm-up, module and raw alternating.
//! 2. **Pool reclaim**: `pool::reclaim`, the job `serve` runs every ten minutes and
//!    `metacrm jobs run` once (`jobs::run` without its other jobs). A first run takes
//!    back the records whose last contact turned 60 days old today: a day's worth, what
//!    the first run after midnight finds. Then runs that find nothing to do. Beside
//!    each, the reclaim written by hand: the notifications as one `INSERT … SELECT` and
//!    the owners cleared by one `UPDATE` (no audit or outbox rows), in a transaction
//!    that is rolled back.
//! 3. **Plans**: `EXPLAIN` of the due statements and of the reclaim's selection, and
//!    whether each reads the customer table through an index.
//!
//! The data is a tenant whose reclaim job last ran yesterday. Customers were created
//! over the last three years: 30 % intent (意向, contact every 7 days), 40 % nurture
//! (培育, 15 days), 30 % potential (潜在, 30 days). Nine in ten have been contacted;
//! three in four of those are worked on their cycle (last contact up to 1.25 cycles
//! ago, so a fifth of them are due) and the rest are neglected (last contact up to a
//! year ago). The activities go to the contacted customers, an equal share each. The
//! last one is at the customer's `last_contact_at`, which creating it set
//! (`followups::record_contact`). The others are spread back to the customer's
//! creation. Records whose last contact (or creation, if never contacted) came before
//! yesterday's reclaim cutoff are in the pool already, with no owner. One in 200 is in
//! the recycle bin. Nothing asserts on time.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, TimeDelta, TimeZone, Utc};
use common::{Env, Rng, Table};
use metacrm::auth::{Access, Context, User};
use metacrm::clock;
use metacrm::meta::Action;
use metacrm::store::db::{Backend, TenantDb};
use metacrm::store::schema;
use metacrm::tenant::Tenant;
use metacrm::workflow::{followups, pool};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{
    Alias, Condition, Expr, ExprTrait, PostgresQueryBuilder, Query, SelectStatement,
    SqliteQueryBuilder,
};
use serde_json::{Map, Value, json};

const CUSTOMER_TABLE: &str = "e_customer";
const ACTIVITY_TABLE: &str = "e_activity";

/// Category key, label, days between contacts, share of customers (%).
const CATEGORIES: [(&str, &str, u32, u64); 3] = [
    ("intent", "意向客户", 7, 30),
    ("nurture", "培育客户", 15, 40),
    ("potential", "潜在客户", 30, 30),
];
const RECLAIM_AFTER_DAYS: u32 = 60;
/// What `GET /api/followups/due` answers without `limit`.
const DUE_LIMIT: u64 = 100;
/// Runs of the reclaim that find nothing to do, after the first one.
const IDLE_RUNS: usize = 5;

const TEAMS: [&str; 5] = ["华东一组", "华东二组", "华南组", "华北组", "西部组"];
const REPS_PER_TEAM: usize = 10;
const ACTIVITY_KINDS: [(&str, &str); 4] = [
    ("call", "电话"),
    ("visit", "拜访"),
    ("wechat", "微信"),
    ("email", "邮件"),
];
const SUMMARIES: [&str; 6] = [
    "电话沟通需求，客户要求发送报价",
    "上门拜访，演示产品",
    "微信跟进，约下周见面",
    "发送产品资料和案例",
    "客户暂无预算，下季度再联系",
    "确认合同条款，等待盖章",
];

/// The benchmark's "now": 10:00 China time on a fixed day, so every run loads the same
/// data and finds the same records due.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 2, 0, 0)
        .single()
        .expect("valid instant")
}

fn today() -> NaiveDate {
    clock::date_of(now())
}

/// Yesterday's reclaim took back every record last contacted before this.
fn reclaimed_yesterday_before() -> DateTime<Utc> {
    followups::due_before(today() - Days::new(1), RECLAIM_AFTER_DAYS)
}

/// Today's reclaim takes back every owned record last contacted before this.
fn reclaim_cutoff() -> DateTime<Utc> {
    followups::due_before(today(), RECLAIM_AFTER_DAYS)
}

fn package() -> Value {
    let options = |items: &[(&str, &str)]| -> Vec<Value> {
        items
            .iter()
            .map(|(value, label)| json!({"value": value, "label": label}))
            .collect()
    };
    let categories: Vec<(&str, &str)> = CATEGORIES.iter().map(|c| (c.0, c.1)).collect();
    let days: Map<String, Value> = CATEGORIES
        .iter()
        .map(|c| (c.0.to_string(), json!(c.2)))
        .collect();
    let customer = json!({"key": "customer", "label": "客户", "title_field": "name",
        "fields": [
            {"key": "name", "label": "单位名称", "type": "text", "required": true,
             "max_length": 200},
            {"key": "phone", "label": "电话", "type": "phone"},
            {"key": "region", "label": "区域", "type": "select",
             "options": options(&common::REGIONS)},
            {"key": "category", "label": "客户类别", "type": "select",
             "options": options(&categories)}
        ],
        "followup": {"field": "category", "days": days,
                     "activity": {"entity": "activity", "field": "customer"}},
        "pool": {"reclaim_after_days": RECLAIM_AFTER_DAYS}
    });
    let activity = json!({"key": "activity", "label": "跟进记录", "title_field": "summary",
        "fields": [
            {"key": "customer", "label": "客户", "type": "reference", "target": "customer",
             "required": true, "indexed": true},
            {"key": "kind", "label": "方式", "type": "select",
             "options": options(&ACTIVITY_KINDS)},
            {"key": "summary", "label": "内容", "type": "text"}
        ]
    });
    let roles = json!([
        {"key": "rep", "label": "销售", "permissions": [
            {"entity": "customer", "actions": ["create", "read", "update"], "scope": "own"},
            {"entity": "activity", "actions": ["create", "read"], "scope": "own"}]},
        {"key": "manager", "label": "销售经理", "permissions": [
            {"entity": "customer", "actions": ["read", "update", "assign"],
             "scope": "subordinates"},
            {"entity": "activity", "actions": ["read"], "scope": "subordinates"}]},
        {"key": "director", "label": "销售总监", "permissions": [
            {"entity": "customer", "actions": ["read"], "scope": "all"},
            {"entity": "activity", "actions": ["read"], "scope": "all"}]}
    ]);
    json!({"format": 1, "entities": [customer, activity], "roles": roles})
}

// ---------------------------------------------------------------------------------
// The sales organisation
// ---------------------------------------------------------------------------------

/// The people the benchmark acts as, and the reps who own the loaded customers.
struct People {
    director: User,
    /// Manager of the first team.
    manager: User,
    /// A rep of the first team.
    rep: User,
    reps: Vec<i64>,
}

/// A sales department (the director) over five teams of a manager and ten reps.
async fn build_org(tenant: &Tenant) -> People {
    let sales = common::add_department(tenant, "销售部", None).await;
    let director = common::add_user(tenant, "director".into(), "director", sales).await;
    let mut managers = Vec::new();
    let mut reps = Vec::new();
    for (t, name) in TEAMS.iter().enumerate() {
        let team = common::add_department(tenant, name, Some(sales)).await;
        let manager = common::add_user(tenant, format!("manager{t}"), "manager", team).await;
        common::set_manager(tenant, team, manager.id).await;
        managers.push(manager);
        for r in 0..REPS_PER_TEAM {
            reps.push(common::add_user(tenant, format!("rep{t}{r}"), "rep", team).await);
        }
    }
    People {
        director,
        manager: managers.swap_remove(0),
        rep: reps[0].clone(),
        reps: reps.iter().map(|u| u.id).collect(),
    }
}

// ---------------------------------------------------------------------------------
// Generated data
// ---------------------------------------------------------------------------------

/// One generated customer, deterministic in its index.
struct Customer {
    created_at: DateTime<Utc>,
    /// Index into [`CATEGORIES`].
    category: usize,
    /// Index of the rep who works it: its owner, or its last owner once in the pool.
    rep: usize,
    region: &'static str,
    /// Its last contact; the load keeps it only for customers given activities.
    last_contact: Option<DateTime<Utc>>,
    deleted: bool,
}

impl Customer {
    /// Whether yesterday's reclaim returned it to the pool.
    fn in_pool(&self) -> bool {
        self.last_contact.unwrap_or(self.created_at) < reclaimed_yesterday_before()
    }
}

const DAY: f64 = 86_400.0;

fn seconds(s: f64) -> TimeDelta {
    TimeDelta::seconds(s as i64)
}

fn pick_category(roll: u64) -> usize {
    let mut below = 0;
    for (k, category) in CATEGORIES.iter().enumerate() {
        below += category.3;
        if roll < below {
            return k;
        }
    }
    unreachable!("the shares add up to 100")
}

fn customer(i: usize, reps: usize) -> Customer {
    let mut rng = Rng::new((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xf011);
    let created_at = now() - seconds(rng.unit() * 3.0 * 365.0 * DAY);
    let category = pick_category(rng.below(100));
    let contacted = rng.below(10) < 9;
    let cycle = f64::from(CATEGORIES[category].2);
    let days_since_contact = if rng.below(4) < 3 {
        rng.unit() * 1.25 * cycle
    } else {
        rng.unit() * 365.0
    };
    let last_contact =
        contacted.then(|| Ord::max(now() - seconds(days_since_contact * DAY), created_at));
    Customer {
        created_at,
        category,
        rep: rng.below(reps as u64) as usize,
        region: common::REGIONS[rng.below(common::REGIONS.len() as u64) as usize].0,
        last_contact,
        deleted: rng.below(200) == 0,
    }
}

/// Which customers the activities go to: those with a last contact, in order, as many
/// as there are activities; each gets an equal share of the activities (±1).
struct Contacts {
    customers: Vec<u32>,
    activities: usize,
}

impl Contacts {
    fn plan(rows: usize, activities: usize, reps: usize) -> Contacts {
        let mut customers: Vec<u32> = (0..rows)
            .filter(|&i| customer(i, reps).last_contact.is_some())
            .map(|i| i as u32)
            .collect();
        customers.truncate(activities);
        let activities = if customers.is_empty() { 0 } else { activities };
        Contacts {
            customers,
            activities,
        }
    }

    fn has_activities(&self, customer: usize) -> bool {
        self.customers.binary_search(&(customer as u32)).is_ok()
    }

    /// Activity `j`: its customer, which of the customer's activities it is (oldest
    /// first), and how many the customer has.
    fn activity(&self, j: usize) -> (usize, usize, usize) {
        let n = self.customers.len();
        let slot = j % n;
        let count = self.activities / n + usize::from(slot < self.activities % n);
        (self.customers[slot] as usize, j / n, count)
    }
}

const CUSTOMER_COLUMNS: [&str; 12] = [
    "id",
    "created_at",
    "updated_at",
    "created_by",
    "owner",
    "version",
    "deleted_at",
    "last_contact_at",
    "name",
    "phone",
    "region",
    "category",
];

fn customer_values(i: usize, contacts: &Contacts, reps: &[i64]) -> Vec<Expr> {
    let mut c = customer(i, reps.len());
    if !contacts.has_activities(i) {
        c.last_contact = None;
    }
    let mut rng = Rng::new((i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x4a4e);
    let rep = reps[c.rep];
    vec![
        Expr::val(i as i64 + 1),
        Expr::val(c.created_at),
        Expr::val(c.created_at),
        Expr::val(rep),
        Expr::val((!c.in_pool()).then_some(rep)),
        Expr::val(1i64),
        Expr::val(
            c.deleted
                .then(|| now() - TimeDelta::days(1 + (i % 300) as i64)),
        ),
        Expr::val(c.last_contact),
        Expr::val(common::company_name(&mut rng).full()),
        Expr::val(common::mobile_number(&mut rng)),
        Expr::val(c.region.to_string()),
        Expr::val(CATEGORIES[c.category].0.to_string()),
    ]
}

const ACTIVITY_COLUMNS: [&str; 8] = [
    "created_at",
    "updated_at",
    "created_by",
    "owner",
    "version",
    "customer",
    "kind",
    "summary",
];

fn activity_values(j: usize, contacts: &Contacts, reps: &[i64]) -> Vec<Expr> {
    let (i, k, count) = contacts.activity(j);
    let c = customer(i, reps.len());
    let last = c
        .last_contact
        .expect("customers with activities have a last contact");
    // The last activity is the customer's last contact; the others are evenly spread
    // back towards its creation.
    let span = (last - c.created_at).num_seconds();
    let at = c.created_at + TimeDelta::seconds(span * (k as i64 + 1) / count as i64);
    let rep = reps[c.rep];
    vec![
        Expr::val(at),
        Expr::val(at),
        Expr::val(rep),
        Expr::val(rep),
        Expr::val(1i64),
        Expr::val(i as i64 + 1),
        Expr::val(ACTIVITY_KINDS[(i + k) % ACTIVITY_KINDS.len()].0.to_string()),
        Expr::val(SUMMARIES[(i * 7 + k) % SUMMARIES.len()].to_string()),
    ]
}

/// What a server's database looks like some time after a bulk load: on SQLite the
/// write-ahead log checkpointed and the planner's statistics refreshed (as the next
/// background-jobs run does), on PostgreSQL the tables vacuumed and analyzed (as
/// autovacuum would). Answers what was done.
async fn settle_after_load(db: &TenantDb) -> &'static str {
    match db.backend() {
        Backend::Sqlite => {
            common::exec(db, "PRAGMA wal_checkpoint(TRUNCATE)").await;
            db.refresh_statistics().await.expect("refresh statistics");
            "PRAGMA wal_checkpoint(TRUNCATE), then TenantDb::refresh_statistics (PRAGMA \
             optimize, as every background-jobs run does)"
        }
        Backend::Postgres => {
            for table in [CUSTOMER_TABLE, ACTIVITY_TABLE] {
                let sql = format!("VACUUM ANALYZE {}", common::qualified(db, table));
                common::exec(db, &sql).await;
            }
            "VACUUM ANALYZE (as autovacuum would)"
        }
    }
}

// ---------------------------------------------------------------------------------
// The SQL, written by hand
// ---------------------------------------------------------------------------------

fn col(name: &str) -> Expr {
    Expr::col(Alias::new(name))
}

/// Live customers within a caller's reach: `rows` is the gate's row predicate (the
/// owner set, written as the gate writes it), `None` for every row.
fn in_reach(rows: Option<&Condition>) -> Condition {
    let mut condition = Condition::all().add(col("deleted_at").is_null());
    if let Some(rows) = rows {
        condition = condition.add(rows.clone());
    }
    condition
}

fn is_due(category: &str, days: u32) -> Condition {
    Condition::all()
        .add(col("category").eq(category))
        .add(schema::last_contact().lt(followups::due_before(today(), days)))
}

/// The statements `followups::due_for_entity` runs for a caller with `access`, one
/// per category: the most overdue first, `DUE_LIMIT` of each. (The library's own
/// builder: the baseline runs the same SQL without the request around it.)
async fn due_selects(tenant: &Tenant, access: &Access) -> Vec<SelectStatement> {
    let catalog = tenant.catalog().await;
    let entity = catalog.entity("customer").expect("customer entity");
    CATEGORIES
        .iter()
        .map(|(category, _, days, _)| {
            let category = (*category, *days);
            followups::due_query(
                &tenant.db,
                entity,
                access,
                "category",
                category,
                today(),
                DUE_LIMIT,
            )
        })
        .collect()
}

/// Every due record within reach, whatever the limit.
fn due_condition(rows: Option<&Condition>) -> Condition {
    let any_category = CATEGORIES
        .iter()
        .fold(Condition::any(), |any, (category, _, days, _)| {
            any.add(is_due(category, *days))
        });
    in_reach(rows).add(any_category)
}

/// Owned records the reclaim takes back, as `pool::reclaim_entity` selects them.
fn reclaimable(db: &TenantDb) -> Condition {
    let locked = Query::select()
        .column(Alias::new("record_id"))
        .from(db.table("record_locks"))
        .and_where(col("entity").eq("customer"))
        .to_owned();
    Condition::all()
        .add(col("deleted_at").is_null())
        .add(col("owner").is_not_null())
        .add(schema::last_contact().lt(reclaim_cutoff()))
        .add(col("id").not_in_subquery(locked))
}

/// The statement `pool::reclaim_entity` selects each batch with.
async fn reclaim_select(tenant: &Tenant) -> SelectStatement {
    let catalog = tenant.catalog().await;
    let entity = catalog.entity("customer").expect("customer entity");
    pool::next_batch_query(&tenant.db, entity, reclaim_cutoff())
}

async fn count(db: &TenantDb, condition: Condition) -> i64 {
    let select = Query::select()
        .expr(col("id").count())
        .from(db.table(CUSTOMER_TABLE))
        .cond_where(condition)
        .to_owned();
    let rows = db.conn().query_all(&select).await.expect("count");
    rows[0].try_get_by_index(0).expect("count value")
}

fn inline(db: &TenantDb, select: &SelectStatement) -> String {
    match db.backend() {
        Backend::Postgres => select.to_string(PostgresQueryBuilder),
        Backend::Sqlite => select.to_string(SqliteQueryBuilder),
    }
}

// ---------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------

/// How a plan reads the customer table: whether through an index, and the plan lines
/// that say so (SQLite: `SEARCH e_customer USING INDEX …` or `SCAN e_customer`;
/// PostgreSQL: `Index Scan`, `Bitmap Heap Scan` and `Bitmap Index Scan` on it and its
/// indexes, or `Seq Scan on e_customer`).
fn customer_access(backend: Backend, plan: &[String]) -> (bool, String) {
    let lines: Vec<&str> = plan
        .iter()
        .map(|line| line.trim().trim_start_matches("->").trim())
        .map(|line| line.split("  (cost=").next().unwrap_or(line))
        .filter(|line| match backend {
            Backend::Sqlite => {
                line.starts_with(&format!("SEARCH {CUSTOMER_TABLE} "))
                    || line.starts_with(&format!("SCAN {CUSTOMER_TABLE}"))
            }
            Backend::Postgres => {
                line.contains(&format!(" on {CUSTOMER_TABLE}"))
                    || line.contains(" on ix_customer_")
                    || line.contains(" on ux_customer_")
            }
        })
        .collect();
    let full_scan = lines.iter().any(|line| match backend {
        Backend::Sqlite => line.starts_with("SCAN "),
        Backend::Postgres => line.contains("Seq Scan"),
    });
    (!lines.is_empty() && !full_scan, lines.join("; "))
}

/// Prints a statement, its plan and whether it reads the customers through an index;
/// answers a row for the summary table.
async fn show_plan(
    db: &TenantDb,
    title: &str,
    select: &SelectStatement,
    index_that_would_serve: &str,
) -> Vec<String> {
    let plan = common::explain_select(db, select).await;
    println!("\n{title}\n  SQL: {}\n  plan:", inline(db, select));
    for line in &plan {
        println!("      {line}");
    }
    let (indexed, how) = customer_access(db.backend(), &plan);
    let verdict = if indexed {
        "yes".to_string()
    } else {
        println!(
            "  FULL SCAN of {CUSTOMER_TABLE}: an index on {index_that_would_serve} would serve it"
        );
        "NO (full scan)".to_string()
    };
    println!("  index used: {verdict} — {how}");
    vec![title.to_string(), verdict, how]
}

// ---------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------

/// Someone who asks for their due list.
struct Caller<'a> {
    label: &'static str,
    user: &'a User,
    /// What the gate lets them read: the owners and the row predicate it writes.
    access: Access,
}

impl Caller<'_> {
    fn rows(&self) -> Option<&Condition> {
        self.access.rows.as_ref()
    }
}

async fn read_access(tenant: &Arc<Tenant>, user: &User) -> Access {
    let catalog = tenant.catalog().await;
    let entity = catalog.entity("customer").expect("customer entity");
    Context::new(tenant.clone(), user.clone())
        .authorize(entity, Action::Read)
        .await
        .expect("may read customers")
}

/// The due list as `GET /api/followups/due` computes it.
async fn due_module(tenant: &Arc<Tenant>, user: &User) -> Vec<Value> {
    let ctx = Context::new(tenant.clone(), user.clone());
    let catalog = tenant.catalog().await;
    followups::due(&ctx, &catalog, None, now(), DUE_LIMIT)
        .await
        .expect("due list")
}

/// The due statements run raw; answers the rows read.
async fn due_raw(db: &TenantDb, selects: &[SelectStatement]) -> usize {
    let conn = db.conn();
    let mut rows = 0;
    for select in selects {
        rows += conn.query_all(select).await.expect("due statement").len();
    }
    rows
}

struct DueMeasurement {
    module: common::Stats,
    raw: common::Stats,
    module_items: usize,
    /// Items of the module's answer without an owner: records in the pool.
    pooled_items: usize,
    raw_rows: usize,
}

async fn measure_due(
    tenant: &Arc<Tenant>,
    caller: &Caller<'_>,
    iterations: usize,
) -> DueMeasurement {
    let selects = due_selects(tenant, &caller.access).await;
    let warmup = (iterations / 10).clamp(2, 20);
    for _ in 0..warmup {
        due_module(tenant, caller.user).await;
        due_raw(&tenant.db, &selects).await;
    }
    let mut module = Vec::with_capacity(iterations);
    let mut raw = Vec::with_capacity(iterations);
    let (mut items, mut raw_rows): (Vec<Value>, usize) = (Vec::new(), 0);
    for _ in 0..iterations {
        let t0 = Instant::now();
        items = due_module(tenant, caller.user).await;
        module.push(t0.elapsed());
        let t0 = Instant::now();
        raw_rows = due_raw(&tenant.db, &selects).await;
        raw.push(t0.elapsed());
    }
    DueMeasurement {
        module: common::stats(module),
        raw: common::stats(raw),
        module_items: items.len(),
        pooled_items: items
            .iter()
            .filter(|item| item["owner"].as_i64().is_none())
            .count(),
        raw_rows,
    }
}

/// One run of the pool's reclaim job; answers its time and the records it took back.
async fn reclaim_module(tenant: &Tenant) -> (Duration, u64) {
    let catalog = tenant.catalog().await;
    let t0 = Instant::now();
    let reports = pool::reclaim(&tenant.db, &catalog, now())
        .await
        .expect("reclaim");
    (t0.elapsed(), reports.iter().map(|(_, count)| count).sum())
}

/// The reclaim by hand: the former owners notified, then the owners cleared, in one
/// transaction that is rolled back (timed before the rollback). Answers its time and
/// the records it cleared.
async fn reclaim_raw(db: &TenantDb) -> (Duration, u64) {
    let notices = Query::select()
        .expr(col("owner"))
        .expr(Expr::val("pool_reclaim"))
        .expr(Expr::cust("'客户「' || \"name\" || '」已退回公海'"))
        .expr(Expr::val(format!("超过 {RECLAIM_AFTER_DAYS} 天未联系")))
        .expr(Expr::val("customer"))
        .expr(col("id"))
        .expr(Expr::val(now()))
        .from(db.table(CUSTOMER_TABLE))
        .cond_where(reclaimable(db))
        .to_owned();
    let notify = Query::insert()
        .into_table(db.table("notifications"))
        .columns(
            [
                "user_id",
                "kind",
                "title",
                "body",
                "entity",
                "record_id",
                "created_at",
            ]
            .map(Alias::new),
        )
        .select_from(notices)
        .expect("columns match")
        .to_owned();
    let clear = Query::update()
        .table(db.table(CUSTOMER_TABLE))
        .value(Alias::new("owner"), Option::<i64>::None)
        .value(Alias::new("updated_at"), now())
        .value(Alias::new("version"), col("version").add(1))
        .cond_where(reclaimable(db))
        .to_owned();
    let t0 = Instant::now();
    let txn = db.begin_write().await.expect("begin");
    txn.execute(&notify).await.expect("notify the owners");
    let cleared = txn
        .execute(&clear)
        .await
        .expect("clear the owners")
        .rows_affected();
    let elapsed = t0.elapsed();
    txn.rollback().await.expect("rollback");
    (elapsed, cleared)
}

fn per_second(records: u64, time: Duration) -> String {
    format!("{:.0}", records as f64 / time.as_secs_f64().max(1e-9))
}

fn main() {
    let runtime = common::runtime();
    runtime.block_on(async {
        let rows = common::rows();
        let activities = common::env_usize("METACRM_BENCH_ACTIVITIES", rows * 5);
        let iterations = common::env_usize("METACRM_BENCH_ITERS", 200);
        let env = Env::open().await;
        common::print_header("followups", env.backend());
        let tenant = env.tenant("bf", &package()).await;
        let db = &tenant.db;
        let people = build_org(&tenant).await;

        let contacts = Contacts::plan(rows, activities, people.reps.len());
        eprintln!("bulk-loading {rows} customers…");
        let load_customers =
            common::bulk_insert(&tenant, CUSTOMER_TABLE, &CUSTOMER_COLUMNS, rows, |i| {
                customer_values(i, &contacts, &people.reps)
            })
            .await;
        eprintln!("bulk-loading {} activities…", contacts.activities);
        let load_activities = common::bulk_insert(
            &tenant,
            ACTIVITY_TABLE,
            &ACTIVITY_COLUMNS,
            contacts.activities,
            |j| activity_values(j, &contacts, &people.reps),
        )
        .await;
        let maintenance = settle_after_load(db).await;
        let pooled = count(db, in_reach(None).add(col("owner").is_null())).await;
        let never_contacted = count(db, in_reach(None).add(col("last_contact_at").is_null())).await;
        let to_reclaim = count(db, reclaimable(db)).await;
        println!(
            "loaded into {}: {rows} customers in {:.1} s ({} rows/s), {} activities to {} of \
             them in {:.1} s ({} rows/s); maintenance: {maintenance}",
            env.label(),
            load_customers.as_secs_f64(),
            per_second(rows as u64, load_customers),
            contacts.activities,
            contacts.customers.len(),
            load_activities.as_secs_f64(),
            per_second(contacts.activities as u64, load_activities),
        );
        println!(
            "as of {} (China time {}): {pooled} live customers in the pool, {never_contacted} \
             never contacted, {to_reclaim} to reclaim today (last contact before {})",
            now().to_rfc3339(),
            now()
                .with_timezone(&clock::offset())
                .format("%Y-%m-%d %H:%M"),
            reclaim_cutoff().to_rfc3339(),
        );

        let mut callers = Vec::new();
        for (label, user) in [
            ("director, all", &people.director),
            ("team manager, subordinates", &people.manager),
            ("rep, own", &people.rep),
        ] {
            let access = read_access(&tenant, user).await;
            callers.push(Caller {
                label,
                user,
                access,
            });
        }

        println!("\n## Plans on {}", env.label());
        let mut plans = Table::new(
            format!(
                "plans on {}: does the statement read {CUSTOMER_TABLE} through an index?",
                env.label()
            ),
            &["statement", "index", "how the customer table is read"],
        );
        let due_index = "COALESCE(last_contact_at, created_at) of owned live records \
                         (ix_customer_last_contact_at), or on (category, that)";
        for caller in &callers {
            let select = due_selects(&tenant, &caller.access).await.swap_remove(0);
            let title = format!("due list, {} (category {})", caller.label, CATEGORIES[0].0);
            plans.row(show_plan(db, &title, &select, due_index).await);
        }
        plans.row(
            show_plan(
                db,
                "reclaim: selection of a batch",
                &reclaim_select(&tenant).await,
                "COALESCE(last_contact_at, created_at) of owned live records \
                 (ix_customer_last_contact_at)",
            )
            .await,
        );
        plans.print();

        let mut due_table = Table::new(
            format!(
                "due list on {} ({rows} customers, {} activities): one client, limit {DUE_LIMIT}, \
                 {iterations} iterations after a tenth as warm-up, module and raw alternating",
                env.label(),
                contacts.activities
            ),
            &[
                "caller (scope)",
                "owners in reach",
                "due in reach (in the pool)",
                "path",
                "answered (in the pool)",
                "p50 ms",
                "p99 ms",
                "max ms",
                "module / raw p50",
            ],
        );
        for caller in &callers {
            let due = count(db, due_condition(caller.rows())).await;
            let due_pooled =
                count(db, due_condition(caller.rows()).add(col("owner").is_null())).await;
            let reach = caller
                .access
                .owners
                .as_ref()
                .map_or_else(|| "all".to_string(), |o| o.len().to_string());
            let m = measure_due(&tenant, caller, iterations).await;
            eprintln!(
                "  due, {}: module p50 {} ms, raw p50 {} ms",
                caller.label,
                common::ms(m.module.p50),
                common::ms(m.raw.p50)
            );
            let ratio = m.module.p50.as_secs_f64() / m.raw.p50.as_secs_f64().max(1e-9);
            for (path, stats, records, ratio) in [
                (
                    "raw SQL, 3 statements (baseline)",
                    m.raw,
                    format!("{} rows", m.raw_rows),
                    String::new(),
                ),
                (
                    "module (followups::due)",
                    m.module,
                    format!("{} items ({})", m.module_items, m.pooled_items),
                    format!("{ratio:.2}"),
                ),
            ] {
                due_table.row(vec![
                    caller.label.to_string(),
                    reach.clone(),
                    format!("{due} ({due_pooled})"),
                    path.to_string(),
                    records,
                    common::ms(stats.p50),
                    common::ms(stats.p99),
                    common::ms(stats.max),
                    ratio,
                ]);
            }
        }
        due_table.print();

        let mut reclaim_table = Table::new(
            format!(
                "pool reclaim on {} ({rows} customers, reclaim after {RECLAIM_AFTER_DAYS} days)",
                env.label()
            ),
            &["run", "path", "records", "time ms", "records/s", "check"],
        );
        let (raw_time, raw_cleared) = reclaim_raw(db).await;
        let (first_time, reclaimed) = reclaim_module(&tenant).await;
        let left = count(db, reclaimable(db)).await;
        let check = if reclaimed as i64 == to_reclaim && left == 0 {
            format!("all {to_reclaim} reclaimable taken back")
        } else {
            format!("EXPECTED {to_reclaim}, {left} left")
        };
        reclaim_table.row(vec![
            "first (a day's worth)".into(),
            "raw SQL: INSERT … SELECT + UPDATE, rolled back (baseline)".into(),
            raw_cleared.to_string(),
            common::ms(raw_time),
            per_second(raw_cleared, raw_time),
            String::new(),
        ]);
        reclaim_table.row(vec![
            "first (a day's worth)".into(),
            "module (pool::reclaim)".into(),
            reclaimed.to_string(),
            common::ms(first_time),
            per_second(reclaimed, first_time),
            check,
        ]);
        let (mut idle_raw, mut idle_raw_cleared) = (Vec::new(), 0);
        let (mut idle_module, mut idle_reclaimed) = (Vec::new(), 0);
        for _ in 0..IDLE_RUNS {
            let (time, cleared) = reclaim_raw(db).await;
            idle_raw.push(time);
            idle_raw_cleared += cleared;
            let (time, reclaimed) = reclaim_module(&tenant).await;
            idle_module.push(time);
            idle_reclaimed += reclaimed;
        }
        for (path, times, records) in [
            (
                "raw SQL: INSERT … SELECT + UPDATE, rolled back (baseline)",
                idle_raw,
                idle_raw_cleared,
            ),
            ("module (pool::reclaim)", idle_module, idle_reclaimed),
        ] {
            let stats = common::stats(times);
            reclaim_table.row(vec![
                format!("nothing to do (p50 / max of {IDLE_RUNS})"),
                path.into(),
                records.to_string(),
                format!("{} / {}", common::ms(stats.p50), common::ms(stats.max)),
                String::new(),
                String::new(),
            ]);
        }
        reclaim_table.print();
        println!("load average at the end: {}", common::load_average());
        env.cleanup().await;
    });
}
