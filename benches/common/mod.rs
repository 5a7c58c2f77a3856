//! Shared setup for the benchmarks: the database under test (SQLite by default,
//! PostgreSQL when `METACRM_BENCH_DATABASE=postgres://…`), tenants, an in-process
//! server on a free port, generated customer records, bulk loading, latency
//! statistics and Markdown tables.
//!
//! Benchmarks are not tests: nothing here asserts on time. Setup failures panic with
//! the error, since a benchmark over a half-built database would mean nothing.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use metacrm::auth::User;
use metacrm::auth::org::DepartmentInput;
use metacrm::auth::users::{self, NewUser};
use metacrm::store::db::{Backend, DbConfig, TenantDb};
use metacrm::tenant::{NewTenant, Tenant, Tenants};
use poem::listener::{Acceptor, Listener, TcpListener};
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

pub const ADMIN: &str = "admin";
pub const PASSWORD: &str = "correct horse battery";
/// The entity every benchmark but the memory one works on.
pub const ENTITY: &str = "customer";
pub const TABLE: &str = "e_customer";

// ---------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------

/// `METACRM_BENCH_DATABASE` when it is a `postgres://` URL; SQLite otherwise.
pub fn database_url() -> Option<String> {
    std::env::var("METACRM_BENCH_DATABASE")
        .ok()
        .filter(|v| v.starts_with("postgres"))
}

/// A positive integer from the environment (`1_000_000` and `1000000` both read).
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").trim().parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

/// Rows of the big table (`METACRM_BENCH_ROWS`, default 1,000,000).
pub fn rows() -> usize {
    env_usize("METACRM_BENCH_ROWS", 1_000_000)
}

pub fn backend_label(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

/// A runtime like the server's: multi-threaded, one worker per core.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------------------------
// Platform, tenants and server
// ---------------------------------------------------------------------------------

/// The platform under test and the tenants this run created.
pub struct Env {
    pub tenants: Arc<Tenants>,
    /// The SQLite data folder (unused on PostgreSQL), removed when dropped.
    pub dir: tempfile::TempDir,
    created: std::sync::Mutex<Vec<String>>,
}

/// A data folder under `METACRM_BENCH_DIR` when set, else the system temp folder.
pub fn data_dir() -> tempfile::TempDir {
    match std::env::var("METACRM_BENCH_DIR") {
        Ok(dir) if !dir.is_empty() => {
            std::fs::create_dir_all(&dir).expect("METACRM_BENCH_DIR");
            tempfile::tempdir_in(dir).expect("temp dir")
        }
        _ => tempfile::tempdir().expect("temp dir"),
    }
}

pub fn db_config(dir: &std::path::Path) -> DbConfig {
    DbConfig {
        database_url: database_url(),
        data_dir: dir.to_path_buf(),
        meilisearch: None,
        file_store: None,
    }
}

/// A tenant key unique across runs sharing one PostgreSQL database.
pub fn unique_key(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos % 100_000
    )
}

impl Env {
    pub async fn open() -> Env {
        let dir = data_dir();
        Env::open_in(dir).await
    }

    pub async fn open_in(dir: tempfile::TempDir) -> Env {
        let tenants = Tenants::open(&db_config(dir.path()))
            .await
            .expect("open the platform database");
        Env {
            tenants,
            dir,
            created: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn backend(&self) -> Backend {
        self.tenants.platform.backend()
    }

    pub fn label(&self) -> &'static str {
        backend_label(self.backend())
    }

    /// Creates a tenant (dropped again by [`Env::cleanup`]) and publishes `package`.
    pub async fn tenant(&self, prefix: &str, package: &Value) -> Arc<Tenant> {
        let key = unique_key(prefix);
        let tenant = self
            .tenants
            .create(&NewTenant {
                key: &key,
                name: "基准测试公司",
                admin: ADMIN,
                password: PASSWORD,
            })
            .await
            .expect("create tenant");
        self.created.lock().expect("lock").push(key);
        tenant
            .apply(package, None, false)
            .await
            .expect("publish the benchmark package");
        tenant
    }

    /// Remembers a tenant created elsewhere (another process) for cleanup.
    pub fn adopt(&self, key: &str) {
        self.created.lock().expect("lock").push(key.to_string());
    }

    /// On PostgreSQL, drops the schemas and rows of the tenants this run created, so
    /// repeated runs do not fill the shared database. SQLite files go with the folder.
    pub async fn cleanup(&self) {
        if self.backend() != Backend::Postgres {
            return;
        }
        let keys = std::mem::take(&mut *self.created.lock().expect("lock"));
        let system = self.tenants.platform.system();
        for key in keys {
            for sql in [
                format!("DROP SCHEMA IF EXISTS \"t_{key}\" CASCADE"),
                format!("DELETE FROM sessions WHERE tenant = '{key}'"),
                format!("DELETE FROM tenants WHERE key = '{key}'"),
            ] {
                if let Err(e) = system.execute_unprepared(&sql).await {
                    eprintln!("cleanup of tenant {key} failed: {e}");
                }
            }
        }
    }
}

/// The id of the tenant's admin user.
pub async fn admin_id(tenant: &Tenant) -> i64 {
    users::find_by_username(&tenant.db, ADMIN)
        .await
        .expect("read users")
        .expect("admin user")
        .id
}

/// Serves the whole application on a free loopback port, in this runtime; returns its
/// base URL.
pub async fn serve(tenants: Arc<Tenants>) -> String {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind a loopback port");
    let port = acceptor.local_addr()[0]
        .as_socket_addr()
        .expect("socket address")
        .port();
    let app = metacrm::api::server(tenants);
    tokio::spawn(async move {
        if let Err(e) = poem::Server::new_with_acceptor(acceptor).run(app).await {
            eprintln!("server stopped: {e}");
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// A keep-alive HTTP client (one connection per concurrent request, reused).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()
        .expect("http client")
}

/// Logs in over HTTP as the tenant's admin and returns the bearer token.
pub async fn login(client: &reqwest::Client, base: &str, tenant: &str) -> String {
    login_as(client, base, tenant, ADMIN).await
}

/// Logs in over HTTP as `username` (with the benchmark password) and returns the
/// bearer token.
pub async fn login_as(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
    username: &str,
) -> String {
    let reply = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"tenant": tenant, "username": username, "password": PASSWORD}))
        .send()
        .await
        .expect("login request");
    let status = reply.status();
    let body: Value = reply.json().await.expect("login body");
    assert!(status.is_success(), "login failed: {status} {body}");
    body["token"].as_str().expect("token").to_string()
}

/// A table of this tenant as SQL text (`"t_x"."name"` on PostgreSQL).
pub fn qualified(db: &TenantDb, name: &str) -> String {
    match db.schema() {
        Some(schema) => format!("\"{schema}\".\"{name}\""),
        None => format!("\"{name}\""),
    }
}

pub fn db_backend(db: &TenantDb) -> DbBackend {
    match db.backend() {
        Backend::Sqlite => DbBackend::Sqlite,
        Backend::Postgres => DbBackend::Postgres,
    }
}

/// Runs SQL text on the tenant's pool.
pub async fn exec(db: &TenantDb, sql: &str) {
    db.conn()
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

pub async fn count_rows(db: &TenantDb, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {}", qualified(db, table));
    let rows = db
        .conn()
        .query_all_raw(Statement::from_string(db_backend(db), sql))
        .await
        .expect("count");
    rows[0].try_get_by_index::<i64>(0).expect("count value")
}

// ---------------------------------------------------------------------------------
// The customer entity and generated records
// ---------------------------------------------------------------------------------

pub const REGIONS: [(&str, &str); 6] = [
    ("east", "华东"),
    ("north", "华北"),
    ("south", "华南"),
    ("central", "华中"),
    ("west", "西部"),
    ("northeast", "东北"),
];

pub const CATEGORIES: [(&str, &str); 3] = [
    ("intent", "意向客户"),
    ("nurture", "培育客户"),
    ("potential", "潜在客户"),
];

/// The customer entity: 12 fields of mixed types, `phone` and `amount` indexed,
/// plus `extra` text fields `extra_1..=extra` (the schema-change benchmark adds them).
pub fn customer_package(extra: usize) -> Value {
    let region_options: Vec<Value> = REGIONS
        .iter()
        .map(|(v, l)| json!({"value": v, "label": l}))
        .collect();
    let category_options: Vec<Value> = CATEGORIES
        .iter()
        .map(|(v, l)| json!({"value": v, "label": l}))
        .collect();
    let mut fields = vec![
        json!({"key": "name", "label": "单位名称", "type": "text", "required": true, "max_length": 200, "searchable": true}),
        json!({"key": "phone", "label": "电话", "type": "phone", "indexed": true, "searchable": true}),
        json!({"key": "email", "label": "邮箱", "type": "email"}),
        json!({"key": "region", "label": "区域", "type": "select", "options": region_options}),
        json!({"key": "amount", "label": "合同金额", "type": "decimal", "scale": 2, "min": 0, "indexed": true}),
        json!({"key": "employees", "label": "员工数", "type": "integer", "min": 0}),
        json!({"key": "signed_on", "label": "签约日期", "type": "date"}),
        json!({"key": "active", "label": "有效", "type": "boolean"}),
        json!({"key": "category", "label": "客户类别", "type": "select", "options": category_options}),
        json!({"key": "notes", "label": "备注", "type": "long_text"}),
        json!({"key": "website", "label": "网站", "type": "url"}),
        json!({"key": "last_contact", "label": "最近联系", "type": "datetime"}),
    ];
    for n in 1..=extra {
        fields.push(
            json!({"key": format!("extra_{n}"), "label": format!("附加字段 {n}"), "type": "text"}),
        );
    }
    json!({"format": 1, "entities": [
        {"key": ENTITY, "label": "客户", "title_field": "name", "fields": fields}
    ]})
}

/// SplitMix64: a fast deterministic generator, so every run loads the same data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const CITIES: [&str; 12] = [
    "深圳市",
    "上海",
    "北京",
    "广州市",
    "杭州",
    "成都",
    "武汉",
    "南京",
    "苏州",
    "西安",
    "东莞市",
    "佛山",
];
const CORES: [&str; 24] = [
    "震华", "华信", "博远", "恒通", "宏达", "新科", "鼎盛", "天成", "瑞丰", "嘉和", "明德", "中联",
    "金桥", "远航", "星辰", "华创", "同舟", "兴业", "利民", "安泰", "永晟", "长城", "海纳", "盛世",
];
const TRADES: [&str; 10] = [
    "信息技术",
    "机械制造",
    "贸易",
    "电子科技",
    "环保科技",
    "医疗器械",
    "物流",
    "建材",
    "食品",
    "自动化设备",
];
const NOTES: [&str; 6] = [
    "客户关注价格，需要再次报价",
    "已安排技术交流，下周回访",
    "老客户介绍，决策人为采购经理",
    "展会获取的线索",
    "对售后服务要求较高",
    "预算已批，等待合同审批",
];

/// One generated customer: deterministic in `i`, with a unique phone number.
#[derive(Debug, Clone)]
pub struct Customer {
    pub name: String,
    pub phone: String,
    pub email: String,
    pub region: &'static str,
    /// Cents (the stored form of a `decimal` with scale 2).
    pub amount: i64,
    pub employees: i64,
    pub signed_on: NaiveDate,
    pub active: bool,
    pub category: &'static str,
    pub notes: Option<&'static str>,
    pub website: String,
    pub last_contact: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// The unique phone number of customer `i` (`i < 10^9`): a bijection of `i`.
pub fn phone_of(i: u64) -> String {
    let n = (i % 1_000_000_000)
        .wrapping_mul(7919)
        .wrapping_add(12_345_678)
        % 1_000_000_000;
    format!("13{n:09}")
}

/// Amount thresholds used by the filter benchmarks, in cents: log-uniform amounts
/// between 10.00 and 10,000,000.00 make `amount >= 1,000,000.00` about 1/6 of rows.
pub const AMOUNT_MIN_CENTS: f64 = 1_000.0;
pub const AMOUNT_MAX_CENTS: f64 = 1_000_000_000.0;

pub fn customer(i: u64) -> Customer {
    let mut rng = Rng::new(i.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5eed);
    let city = CITIES[rng.below(CITIES.len() as u64) as usize];
    let core = CORES[rng.below(CORES.len() as u64) as usize];
    let core2 = CORES[rng.below(CORES.len() as u64) as usize];
    let trade = TRADES[rng.below(TRADES.len() as u64) as usize];
    let name = format!("{city}{core}{core2}{trade}有限公司");
    let span = (AMOUNT_MAX_CENTS / AMOUNT_MIN_CENTS).ln();
    let amount = (AMOUNT_MIN_CENTS * (rng.unit() * span).exp()) as i64;
    let epoch = Utc
        .with_ymd_and_hms(2021, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    let created_at = epoch + chrono::Duration::seconds(rng.below(5 * 365 * 86_400) as i64);
    let signed_on = NaiveDate::from_ymd_opt(2019, 1, 1).expect("valid date")
        + chrono::Days::new(rng.below(2500));
    Customer {
        name,
        phone: phone_of(i),
        email: format!("sales{i}@corp{}.cn", i % 9973),
        region: REGIONS[rng.below(REGIONS.len() as u64) as usize].0,
        amount,
        employees: 1 + rng.below(5000) as i64,
        signed_on,
        active: rng.below(10) < 8,
        category: CATEGORIES[rng.below(CATEGORIES.len() as u64) as usize].0,
        notes: (rng.below(3) == 0).then(|| NOTES[rng.below(NOTES.len() as u64) as usize]),
        website: format!("https://www.corp{}.cn", i % 9973),
        last_contact: created_at + chrono::Duration::seconds(rng.below(90 * 86_400) as i64),
        created_at,
    }
}

/// Columns written by [`Customer::sql_values`], in order.
pub const CUSTOMER_COLUMNS: [&str; 17] = [
    "created_at",
    "updated_at",
    "created_by",
    "owner",
    "version",
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
];

impl Customer {
    /// The record as an API client sends it (the decimal as an exact string).
    pub fn json(&self) -> Value {
        json!({
            "name": self.name,
            "phone": self.phone,
            "email": self.email,
            "region": self.region,
            "amount": format!("{}.{:02}", self.amount / 100, self.amount % 100),
            "employees": self.employees,
            "signed_on": self.signed_on.format("%Y-%m-%d").to_string(),
            "active": self.active,
            "category": self.category,
            "notes": self.notes,
            "website": self.website,
            "last_contact": self.last_contact.to_rfc3339(),
        })
    }

    /// The row in its stored form (as `store::value::to_sql` writes it), for
    /// [`CUSTOMER_COLUMNS`].
    pub fn sql_values(&self, owner: i64, created_at: DateTime<Utc>) -> Vec<Expr> {
        vec![
            Expr::val(created_at),
            Expr::val(created_at),
            Expr::val(owner),
            Expr::val(owner),
            Expr::val(1i64),
            Expr::val(self.name.clone()),
            Expr::val(self.phone.clone()),
            Expr::val(self.email.clone()),
            Expr::val(self.region.to_string()),
            Expr::val(self.amount),
            Expr::val(self.employees),
            Expr::val(self.signed_on),
            Expr::val(self.active),
            Expr::val(self.category.to_string()),
            Expr::val(self.notes.map(str::to_string)),
            Expr::val(self.website.clone()),
            Expr::val(self.last_contact),
        ]
    }
}

/// Loads customers `0..rows` into the tenant's customer table with multi-row INSERTs
/// in large transactions (not through the API). Returns the time it took.
pub async fn bulk_load(tenant: &Tenant, rows: usize, owner: i64) -> Duration {
    const PER_STATEMENT: usize = 500;
    const PER_TRANSACTION: usize = 50_000;
    let started = Instant::now();
    let columns = CUSTOMER_COLUMNS.map(Alias::new);
    let mut next = 0usize;
    while next < rows {
        let txn = tenant.db.begin_write().await.expect("begin");
        let end = (next + PER_TRANSACTION).min(rows);
        while next < end {
            let n = PER_STATEMENT.min(end - next);
            let mut insert = Query::insert();
            insert
                .into_table(tenant.db.table(TABLE))
                .columns(columns.clone());
            for i in next..next + n {
                let c = customer(i as u64);
                insert.values_panic(c.sql_values(owner, c.created_at));
            }
            txn.execute(&insert).await.expect("bulk insert");
            next += n;
        }
        txn.commit().await.expect("commit");
        eprint!(
            "\r  loaded {next}/{rows} rows ({:.0} rows/s)   ",
            next as f64 / started.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    started.elapsed()
}

/// Makes sure the customer table has `rows` rows, loading them if it is empty.
pub async fn ensure_loaded(tenant: &Tenant, rows: usize, owner: i64) -> Option<Duration> {
    let present = count_rows(&tenant.db, TABLE).await;
    if present as usize >= rows {
        return None;
    }
    Some(bulk_load(tenant, rows, owner).await)
}

/// Loads rows `0..rows` into the tenant's `table` the way [`bulk_load`] does (multi-row
/// INSERTs of 500 rows in 50,000-row transactions, not through the API), with
/// `values(i)` the stored values of row `i` for `columns`. Returns the time it took.
pub async fn bulk_insert(
    tenant: &Tenant,
    table: &str,
    columns: &[&str],
    rows: usize,
    values: impl Fn(usize) -> Vec<Expr>,
) -> Duration {
    const PER_STATEMENT: usize = 500;
    const PER_TRANSACTION: usize = 50_000;
    let started = Instant::now();
    let columns: Vec<Alias> = columns.iter().map(|c| Alias::new(*c)).collect();
    let mut next = 0usize;
    while next < rows {
        let txn = tenant.db.begin_write().await.expect("begin");
        let end = (next + PER_TRANSACTION).min(rows);
        while next < end {
            let n = PER_STATEMENT.min(end - next);
            let mut insert = Query::insert();
            insert
                .into_table(tenant.db.table(table))
                .columns(columns.clone());
            for i in next..next + n {
                insert.values_panic(values(i));
            }
            txn.execute(&insert).await.expect("bulk insert");
            next += n;
        }
        txn.commit().await.expect("commit");
        eprint!(
            "\r  loaded {next}/{rows} rows ({:.0} rows/s)   ",
            next as f64 / started.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    started.elapsed()
}

// ---------------------------------------------------------------------------------
// Chinese company names, people and phone numbers
// ---------------------------------------------------------------------------------

/// Where a company is registered: the prefix of its name and its landlines' area code.
pub const LOCALITIES: [(&str, &str); 36] = [
    ("深圳市", "0755"),
    ("广州市", "020"),
    ("苏州工业园区", "0512"),
    ("上海市", "021"),
    ("北京市", "010"),
    ("杭州市", "0571"),
    ("成都市", "028"),
    ("武汉市", "027"),
    ("南京市", "025"),
    ("西安市", "029"),
    ("东莞市", "0769"),
    ("佛山市", "0757"),
    ("宁波市", "0574"),
    ("青岛市", "0532"),
    ("厦门市", "0592"),
    ("天津市", "022"),
    ("重庆市", "023"),
    ("长沙市", "0731"),
    ("郑州市", "0371"),
    ("合肥市", "0551"),
    ("无锡市", "0510"),
    ("常州市", "0519"),
    ("昆山市", "0512"),
    ("中山市", "0760"),
    ("珠海市", "0756"),
    ("惠州市", "0752"),
    ("温州市", "0577"),
    ("济南市", "0531"),
    ("沈阳市", "024"),
    ("大连市", "0411"),
    ("福州市", "0591"),
    ("深圳市南山区", "0755"),
    ("上海浦东新区", "021"),
    ("广东", "020"),
    ("江苏", "025"),
    ("浙江", "0571"),
];

/// Characters of trade names (字号), roughly most used first.
const TRADE_NAME_CHARS: &str = "华信达通宏恒新科盛天成瑞丰嘉和明德中联金桥远航星辰创同舟兴业利民安泰\
    永晟长城海纳世振东方南北美佳宇泽润源鑫磊晶光辉腾飞龙凤祥福顺昌隆旺发益康健宁静云峰山川江河湖林\
    森茂荣耀卓越锦绣彩雅致精诚义仁智勇强力伟图亿万千百众合融汇聚宝玉银铭惠普博鼎立志正大亚洲环球国\
    际汉唐宋元凯威斯特奥迪雷克尔高地人泉清澄蓝绿青红紫白橙朗馨夏神九州四八三友五六七开启晨曦朝阳旭\
    日升石铁钢铜锐捷迅速乐欣悦怡然乾坤震巽离艮兑柏松竹梅兰菊荷桂樟楠杉桐";

/// Trade-name characters without repeats, in order.
pub fn trade_name_chars() -> &'static [char] {
    static CHARS: std::sync::LazyLock<Vec<char>> = std::sync::LazyLock::new(|| {
        let mut seen = std::collections::HashSet::new();
        TRADE_NAME_CHARS
            .chars()
            .filter(|c| !c.is_whitespace() && seen.insert(*c))
            .collect()
    });
    &CHARS
}

pub const INDUSTRIES: [&str; 36] = [
    "信息技术",
    "机械制造",
    "贸易",
    "电子科技",
    "环保科技",
    "医疗器械",
    "物流",
    "建材",
    "食品",
    "自动化设备",
    "新材料",
    "生物科技",
    "网络科技",
    "软件",
    "实业",
    "投资",
    "建筑工程",
    "装饰工程",
    "化工",
    "纺织",
    "服饰",
    "家具",
    "汽车配件",
    "精密机械",
    "光电",
    "能源",
    "农业科技",
    "文化传媒",
    "教育科技",
    "供应链管理",
    "电气",
    "五金制品",
    "塑胶制品",
    "包装材料",
    "检测技术",
    "进出口",
];

/// Legal-form suffixes with their weights (of 100).
pub const COMPANY_SUFFIXES: [(&str, u64); 5] = [
    ("有限公司", 60),
    ("股份有限公司", 15),
    ("有限责任公司", 10),
    ("集团有限公司", 10),
    ("集团", 5),
];

/// Surnames, roughly most common first (compound ones at the end).
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘\
    于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎\
    贺顾毛郝龚邵万钱严覃武戴莫孔向汤";
const COMPOUND_SURNAMES: [&str; 4] = ["欧阳", "司马", "诸葛", "上官"];
const GIVEN_NAME_CHARS: &str = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚英华玉萍红玲芬燕彬斌宇浩凯\
    健俊帆帅旭宁博文志鹏辉建国海波晓东晨阳子涵梓萱一诺欣怡雨桐思远佳琪嘉雅婷鑫瑞泽轩然昊天颖慧琳婉清";
const FORMS_OF_ADDRESS: [&str; 4] = ["经理", "总", "先生", "女士"];

/// A pick in `0..n` skewed towards the start: index `k` or lower with probability
/// `sqrt((k + 1) / n)`, so a few entries are common and most are rare.
pub fn skewed(rng: &mut Rng, n: usize) -> usize {
    let u = rng.unit();
    ((u * u * n as f64) as usize).min(n - 1)
}

fn pick_char(rng: &mut Rng, chars: &str, skew: bool) -> char {
    let n = chars.chars().filter(|c| !c.is_whitespace()).count();
    let k = if skew {
        skewed(rng, n)
    } else {
        rng.below(n as u64) as usize
    };
    chars
        .chars()
        .filter(|c| !c.is_whitespace())
        .nth(k)
        .expect("in range")
}

/// A generated company name, by part: `{locality}{core}{industry}{suffix}`, e.g.
/// 深圳市 + 震华 + 信息技术 + 有限公司.
#[derive(Debug, Clone)]
pub struct CompanyName {
    /// Index into [`LOCALITIES`].
    pub locality: usize,
    /// The trade name (字号), 2 or 3 characters.
    pub core: String,
    pub industry: &'static str,
    pub suffix: &'static str,
}

impl CompanyName {
    pub fn prefix(&self) -> &'static str {
        LOCALITIES[self.locality].0
    }

    pub fn area_code(&self) -> &'static str {
        LOCALITIES[self.locality].1
    }

    pub fn full(&self) -> String {
        format!(
            "{}{}{}{}",
            self.prefix(),
            self.core,
            self.industry,
            self.suffix
        )
    }
}

/// A company name: any of 36 localities (skewed towards the big cities), a trade name
/// of 2 (two thirds) or 3 characters from ~250, skewed so that some are common, an
/// industry and a legal form.
pub fn company_name(rng: &mut Rng) -> CompanyName {
    let locality = skewed(rng, LOCALITIES.len());
    let pool = trade_name_chars();
    let length = if rng.below(3) < 2 { 2 } else { 3 };
    let mut core: Vec<char> = Vec::with_capacity(length);
    while core.len() < length {
        let c = pool[skewed(rng, pool.len())];
        if core.last() != Some(&c) {
            core.push(c);
        }
    }
    let industry = INDUSTRIES[rng.below(INDUSTRIES.len() as u64) as usize];
    let mut roll = rng.below(100);
    let mut suffix = COMPANY_SUFFIXES[0].0;
    for (s, weight) in COMPANY_SUFFIXES {
        if roll < weight {
            suffix = s;
            break;
        }
        roll -= weight;
    }
    CompanyName {
        locality,
        core: core.into_iter().collect(),
        industry,
        suffix,
    }
}

/// A person's name as a contact field holds it: a surname (now and then a compound
/// one) and a one- or two-character given name, or the surname and a form of address
/// (王经理, 李总) for one contact in ten.
pub fn person_name(rng: &mut Rng) -> String {
    let mut name = if rng.below(200) == 0 {
        COMPOUND_SURNAMES[rng.below(COMPOUND_SURNAMES.len() as u64) as usize].to_string()
    } else {
        pick_char(rng, SURNAMES, true).to_string()
    };
    if rng.below(10) == 0 {
        name.push_str(FORMS_OF_ADDRESS[rng.below(FORMS_OF_ADDRESS.len() as u64) as usize]);
        return name;
    }
    let given = if rng.below(10) < 3 { 1 } else { 2 };
    for _ in 0..given {
        name.push(pick_char(rng, GIVEN_NAME_CHARS, false));
    }
    name
}

/// A mobile number: `1[3-9]` and nine digits, written without separators.
pub fn mobile_number(rng: &mut Rng) -> String {
    format!("1{}{:09}", 3 + rng.below(7), rng.below(1_000_000_000))
}

/// A landline in the area: eight digits after the area code, written `0755-8888 6666`
/// or `0755-88886666`.
pub fn landline_number(rng: &mut Rng, area_code: &str) -> String {
    let local = 20_000_000 + rng.below(70_000_000);
    if rng.below(2) == 0 {
        format!("{area_code}-{} {:04}", local / 10_000, local % 10_000)
    } else {
        format!("{area_code}-{local}")
    }
}

// ---------------------------------------------------------------------------------
// Statistics and output
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub mean: Duration,
    pub max: Duration,
}

/// Nearest-rank percentiles of a set of latencies.
pub fn stats(mut samples: Vec<Duration>) -> Stats {
    if samples.is_empty() {
        return Stats {
            count: 0,
            p50: Duration::ZERO,
            p99: Duration::ZERO,
            mean: Duration::ZERO,
            max: Duration::ZERO,
        };
    }
    samples.sort_unstable();
    let rank = |p: f64| {
        let index = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        samples[index.clamp(1, samples.len()) - 1]
    };
    let total: Duration = samples.iter().sum();
    Stats {
        count: samples.len(),
        p50: rank(50.0),
        p99: rank(99.0),
        mean: total / samples.len() as u32,
        max: *samples.last().expect("not empty"),
    }
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// A Markdown table, printed when complete.
pub struct Table {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Table {
        Table {
            title: title.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn print(&self) {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(cell.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let width = widths.get(i).copied().unwrap_or(0);
                    format!("{c}{}", " ".repeat(width.saturating_sub(c.chars().count())))
                })
                .collect();
            format!("| {} |", padded.join(" | "))
        };
        println!("\n### {}\n", self.title);
        println!("{}", line(&self.headers));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        println!("|-{}-|", rule.join("-|-"));
        for row in &self.rows {
            println!("{}", line(row));
        }
        println!();
    }
}

/// "met" or "MISSED", for a figure that must stay below (or reach) a target.
pub fn verdict(met: bool) -> String {
    if met { "met" } else { "MISSED" }.to_string()
}

/// The process's resident set size in KiB, from /proc/self/status (Linux).
pub fn rss_kib() -> u64 {
    proc_status_kib("VmRSS:")
}

/// The process's peak resident set size in KiB.
pub fn hwm_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

/// A `kB` line of /proc/self/status (`VmRSS:`, `RssAnon:`, `RssFile:` …) in KiB.
pub fn proc_status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// The header every benchmark prints: what ran where.
pub fn print_header(name: &str, backend: Backend) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "# metacrm benchmark: {name} on {} ({cores} cores, {cpu}); load average {}",
        backend_label(backend),
        load_average()
    );
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews figures.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The database's plan for a statement, one line per node (`EXPLAIN` on PostgreSQL,
/// `EXPLAIN QUERY PLAN` on SQLite).
pub async fn explain(db: &TenantDb, sql: &str, values: sea_orm::sea_query::Values) -> Vec<String> {
    let prefix = match db.backend() {
        Backend::Postgres => "EXPLAIN ",
        Backend::Sqlite => "EXPLAIN QUERY PLAN ",
    };
    let statement =
        Statement::from_sql_and_values(db_backend(db), format!("{prefix}{sql}"), values);
    match db.conn().query_all_raw(statement).await {
        Ok(rows) => rows
            .iter()
            .map(|row| match db.backend() {
                Backend::Postgres => row.try_get::<String>("", "QUERY PLAN").unwrap_or_default(),
                Backend::Sqlite => row.try_get::<String>("", "detail").unwrap_or_default(),
            })
            .collect(),
        Err(e) => vec![format!("EXPLAIN failed: {e}")],
    }
}

/// [`explain`] for a sea-query select, built for the tenant's database.
pub async fn explain_select(
    db: &TenantDb,
    select: &sea_orm::sea_query::SelectStatement,
) -> Vec<String> {
    let (sql, values) = match db.backend() {
        Backend::Postgres => select.build(sea_orm::sea_query::PostgresQueryBuilder),
        Backend::Sqlite => select.build(sea_orm::sea_query::SqliteQueryBuilder),
    };
    explain(db, &sql, values).await
}

/// A user with the benchmark password and one role, in `department`.
pub async fn add_user(tenant: &Tenant, username: String, role: &str, department: i64) -> User {
    tenant
        .create_user(&NewUser {
            username,
            display_name: String::new(),
            password: PASSWORD.into(),
            is_admin: false,
            roles: vec![role.into()],
            department: Some(department),
        })
        .await
        .expect("create user")
}

/// A department under `parent` (a root without), with no manager yet.
pub async fn add_department(tenant: &Tenant, name: &str, parent: Option<i64>) -> i64 {
    let input = DepartmentInput {
        name: Some(name.into()),
        parent: Some(parent),
        manager: None,
    };
    tenant
        .create_department(&input)
        .await
        .expect("create department")
        .id
}

/// Makes `manager` the manager of `department`.
pub async fn set_manager(tenant: &Tenant, department: i64, manager: i64) {
    let input = DepartmentInput {
        name: None,
        parent: None,
        manager: Some(Some(manager)),
    };
    tenant
        .update_department(department, &input)
        .await
        .expect("set manager");
}

/// `POST /api/data/{ENTITY}/query` with `body`; the number of records answered.
pub async fn query_over_http(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    body: &Value,
) -> usize {
    let reply = client
        .post(format!("{base}/api/data/{ENTITY}/query"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("http query");
    let status = reply.status();
    let body: Value = reply.json().await.expect("query body");
    assert!(status.is_success(), "query failed: {status} {body}");
    body["items"].as_array().map(Vec::len).unwrap_or(0)
}
