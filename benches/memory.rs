//! Idle server memory: resident set size (VmRSS from /proc/self/status) of a server
//! process with 10 tenants × 20 entities (15 fields of mixed types each) loaded,
//! after one request to each tenant; beside the RSS of the same process before it
//! loaded anything (the baseline).
//!
//! The tenants are created and published by a child process (this benchmark run
//! again with `METACRM_BENCH_MEMORY_SETUP` set), so that creating them — password
//! hashing, publishing — leaves nothing in the measured process. The measured process
//! then opens the platform, serves HTTP on a loopback port, and touches each tenant
//! once (`POST /api/data/customer/query`, with a session started directly so that no
//! password hash runs). For information it then logs in once, then once per tenant
//! (Argon2), and measures again. Target: idle RSS < 60 MB.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Env, Table};
use metacrm::auth::sessions;
use metacrm::store::db::Backend;
use metacrm::tenant::NewTenant;
use serde_json::{Value, json};

const TENANTS: usize = 10;
const ENTITIES: [&str; 20] = [
    "customer",
    "contact",
    "lead",
    "opportunity",
    "quote",
    "sales_order",
    "contract",
    "delivery",
    "training",
    "payment",
    "invoice",
    "complaint",
    "repair",
    "report_8d",
    "survey",
    "expense",
    "followup",
    "product",
    "visit",
    "ticket",
];
const TARGET_BYTES: u64 = 60_000_000;
const SETUP_VAR: &str = "METACRM_BENCH_MEMORY_SETUP";
const KEYS_VAR: &str = "METACRM_BENCH_MEMORY_KEYS";

/// 20 entities × 15 fields: text, auto number, phone, email, select, multi-select,
/// decimal, integer, date, a date formula, boolean, long text with a visibility rule,
/// a reference, a user and a datetime; indexed and unique fields among them.
fn package() -> Value {
    let entities: Vec<Value> = ENTITIES
        .iter()
        .enumerate()
        .map(|(n, key)| {
            let reference = if *key == "customer" { "parent" } else { "customer" };
            json!({
                "key": key,
                "label": format!("实体 {n}"),
                "title_field": "name",
                "fields": [
                    {"key": "name", "label": "名称", "type": "text", "required": true, "max_length": 200, "searchable": true},
                    {"key": "code", "label": "编号", "type": "auto_number", "format": format!("E{n}-{{YYYY}}{{0000}}"), "unique": true},
                    {"key": "phone", "label": "电话", "type": "phone", "indexed": true},
                    {"key": "email", "label": "邮箱", "type": "email"},
                    {"key": "status", "label": "状态", "type": "select", "default": "open", "options": [
                        {"value": "open", "label": "进行中"}, {"value": "won", "label": "赢单"},
                        {"value": "lost", "label": "丢单"}, {"value": "closed", "label": "已关闭"}]},
                    {"key": "tags", "label": "标签", "type": "multi_select", "options": [
                        {"value": "a", "label": "重点"}, {"value": "b", "label": "新客"}, {"value": "c", "label": "老客"}]},
                    {"key": "amount", "label": "金额", "type": "decimal", "scale": 2, "min": 0},
                    {"key": "quantity", "label": "数量", "type": "integer", "min": 0, "max": 1000000},
                    {"key": "start_on", "label": "开始日期", "type": "date"},
                    {"key": "due_on", "label": "到期日期", "type": "date", "formula": "add_days(start_on, 30)"},
                    {"key": "done", "label": "完成", "type": "boolean"},
                    {"key": "notes", "label": "备注", "type": "long_text", "visible_if": "status == 'open'"},
                    {"key": reference, "label": "客户", "type": "reference", "target": "customer"},
                    {"key": "rep", "label": "负责人", "type": "user"},
                    {"key": "last_at", "label": "最近更新", "type": "datetime"}
                ]
            })
        })
        .collect();
    json!({"format": 1, "entities": entities})
}

/// Child mode: create the tenants in the given data folder (or PostgreSQL) and exit.
fn setup(dir: &str, keys: &str) {
    common::runtime().block_on(async {
        let tenants = metacrm::tenant::Tenants::open(&common::db_config(std::path::Path::new(dir)))
            .await
            .expect("open platform");
        let package = package();
        for key in keys.split(',') {
            let tenant = tenants
                .create(&NewTenant {
                    key,
                    name: "内存基准公司",
                    admin: common::ADMIN,
                    password: common::PASSWORD,
                })
                .await
                .expect("create tenant");
            tenant
                .apply(&package, None, false)
                .await
                .expect("publish 20 entities");
            println!("{key} {}", common::admin_id(&tenant).await);
        }
    });
}

fn main() {
    // Before anything else: the baseline.
    let baseline = common::rss_kib();
    if let (Ok(dir), Ok(keys)) = (std::env::var(SETUP_VAR), std::env::var(KEYS_VAR)) {
        setup(&dir, &keys);
        return;
    }

    let dir = common::data_dir();
    let keys: Vec<String> = (0..TENANTS).map(|_| common::unique_key("bm")).collect();
    let exe = std::env::current_exe().expect("current executable");
    let output = Command::new(exe)
        .env(SETUP_VAR, dir.path())
        .env(KEYS_VAR, keys.join(","))
        .output()
        .expect("run the setup process");
    if !output.status.success() {
        panic!(
            "setup failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let admins: Vec<(String, i64)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (key, id) = line.split_once(' ')?;
            Some((key.to_string(), id.parse().ok()?))
        })
        .collect();
    assert_eq!(admins.len(), TENANTS, "setup output: {admins:?}");

    let runtime = common::runtime();
    let after_runtime = common::rss_kib();
    runtime.block_on(async {
        let env = Env::open_in(dir).await;
        for (key, _) in &admins {
            env.adopt(key);
        }
        common::print_header("memory", env.backend());
        let base = common::serve(env.tenants.clone()).await;
        let client = common::http_client();
        let health = client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("healthz");
        assert!(health.status().is_success());
        let serving = common::rss_kib();

        for (key, admin) in &admins {
            let (token, _) = sessions::start(&env.tenants.platform, key, *admin)
                .await
                .expect("start a session");
            let reply = client
                .post(format!("{base}/api/data/customer/query"))
                .bearer_auth(&token)
                .json(&json!({"limit": 10}))
                .send()
                .await
                .expect("touch tenant");
            let status = reply.status();
            let body = reply.text().await.unwrap_or_default();
            assert!(
                status.is_success(),
                "touching {key} failed: {status} {body}"
            );
        }
        let touched = common::rss_kib();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = common::rss_kib();
        let peak_before_logins = common::hwm_kib();

        // Password logins (Argon2, 19 MiB of working memory each, on blocking threads).
        common::login(&client, &base, &admins[0].0).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after_one_login = common::rss_kib();
        for (key, _) in &admins[1..] {
            common::login(&client, &base, key).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after_logins = common::rss_kib();
        // Idle blocking threads end after 10 s; does the memory go back?
        tokio::time::sleep(Duration::from_secs(13)).await;
        let after_logins_idle = common::rss_kib();

        let mut table = Table::new(
            format!(
                "memory on {}: {TENANTS} tenants × {} entities × 15 fields",
                env.label(),
                ENTITIES.len()
            ),
            &[
                "process state",
                "VmRSS MiB",
                "over baseline MiB",
                "target < 60 MB",
            ],
        );
        let over = |kib: u64| common::mib(kib.saturating_sub(baseline));
        let mut row = |state: &str, kib: u64, target: String| {
            table.row(vec![state.to_string(), common::mib(kib), over(kib), target]);
        };
        row(
            "baseline: process start, nothing loaded",
            baseline,
            String::new(),
        );
        row("tokio runtime built", after_runtime, String::new());
        row(
            "platform open, server listening, no tenant loaded",
            serving,
            String::new(),
        );
        row(
            "each tenant touched once (10 requests)",
            touched,
            String::new(),
        );
        row(
            "idle 2 s after touching every tenant",
            idle,
            common::verdict(idle * 1024 < TARGET_BYTES),
        );
        row(
            "peak (VmHWM) up to that point",
            peak_before_logins,
            String::new(),
        );
        row(
            "[info] 2 s after one password login",
            after_one_login,
            "n/a (info)".into(),
        );
        row(
            "[info] 2 s after one password login per tenant (10)",
            after_logins,
            "n/a (info)".into(),
        );
        row(
            "[info] 15 s after those logins",
            after_logins_idle,
            "n/a (info)".into(),
        );
        table.print();
        println!("load average at the end: {}", common::load_average());
        let threads = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Threads:"))
                    .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
            })
            .unwrap_or_default();
        println!("threads in the process: {threads}");
        if env.backend() == Backend::Sqlite {
            println!("(SQLite: one connection pool per tenant file, plus the system pool)");
        }
        env.cleanup().await;
    });
}
