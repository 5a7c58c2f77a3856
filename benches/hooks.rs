//! Record create throughput with a typical `before_save` hook against the same creates
//! without one: two tenants with the same customer entity, one of them with the hook,
//! written through `Records::create` (the write path every API and import uses) with
//! 1 and 8 concurrent writers. The hook trims the name, lower-cases the e-mail,
//! requires a phone for key accounts and notes large amounts — what a company's
//! before_save does. Target: with the hook ≥ 80 % of the records/s without it.
//!
//! Each row runs `METACRM_BENCH_SECS` seconds (default 5) in alternating half-second
//! rounds with the other row, after a one-second warm-up of each.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Env, Table};
use metacrm::auth::Access;
use metacrm::plugin::scripts;
use metacrm::store::records::Records;
use metacrm::tenant::Tenant;
use serde_json::{Value, json};

const HOOK: &str = r#"
record.name = record.name.trim();
if (record.email) record.email = record.email.toLowerCase();
if (record.category === 'key' && !record.phone) reject('phone', '重点客户必须填写电话');
if (Number(record.amount) > 5000000 && !record.notes) record.notes = '大额客户，请安排专人跟进';
"#;

fn package(with_hook: bool) -> Value {
    let mut package = common::customer_package(0);
    if with_hook {
        package["hooks"] = json!([
            {"key": "customer_rules", "entity": common::ENTITY, "on": "before_save", "script": HOOK}
        ]);
    }
    package
}

/// `clients` writers creating customers back to back for `duration`; answers
/// (records/s, latencies, errors).
async fn run(
    tenant: &Arc<Tenant>,
    owner: i64,
    next: &Arc<AtomicU64>,
    clients: usize,
    duration: Duration,
) -> (f64, Vec<Duration>, usize) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let tenant = tenant.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while started.elapsed() < duration {
                let input = common::customer(next.fetch_add(1, Ordering::Relaxed)).json();
                let t0 = Instant::now();
                let catalog = tenant.catalog().await;
                let entity = catalog.entity(common::ENTITY).expect("customer entity");
                match Records::new(&tenant.db, &catalog, entity)
                    .create(&input, &Access::full(owner))
                    .await
                {
                    Ok(_) => latencies.push(t0.elapsed()),
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("create failed: {e}");
                        }
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await.expect("writer task");
        latencies.extend(l);
        errors += e;
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    (rate, latencies, errors)
}

/// The sandbox alone, without the database: mean time of one run of the hook over
/// one customer (engine threads, prepared engine reused), and of starting a fresh
/// engine, which the reuse saves (`METACRM_BENCH_RUNS` each).
fn sandbox_alone() {
    let runs = common::env_usize("METACRM_BENCH_RUNS", 2000);
    let record = common::customer(1).json();
    let run = scripts::Run {
        scope: "bench".into(),
        name: "customer_rules".into(),
        script: HOOK.into(),
        arguments: [
            record,
            Value::Null,
            json!({"id": 1}),
            json!({"name": "before_save"}),
        ],
        limits: scripts::Limits::default(),
    };
    let started = Instant::now();
    for _ in 0..runs {
        scripts::submit(run.clone(), |_: &str, _| Ok(None))
            .blocking_recv()
            .expect("a reply")
            .expect("the hook runs");
    }
    let per_run = started.elapsed() / runs as u32;
    let started = Instant::now();
    for _ in 0..runs {
        let engine = rquickjs::Runtime::new().expect("runtime");
        rquickjs::Context::full(&engine).expect("context");
    }
    let per_engine = started.elapsed() / runs as u32;
    println!(
        "sandbox alone: {} µs per run; starting a fresh engine would add {} µs",
        per_run.as_micros(),
        per_engine.as_micros()
    );
}

fn main() {
    sandbox_alone();
    let runtime = common::runtime();
    runtime.block_on(async {
        let env = Env::open().await;
        common::print_header("hooks", env.backend());
        let plain = env.tenant("bp", &package(false)).await;
        let hooked = env.tenant("bh", &package(true)).await;
        let owner = common::admin_id(&plain).await;
        assert_eq!(owner, common::admin_id(&hooked).await);
        let next = Arc::new(AtomicU64::new(20_000_000));
        let seconds = common::env_usize("METACRM_BENCH_SECS", 5) as u64;
        let duration = Duration::from_secs(seconds);
        let mut table = Table::new(
            format!(
                "create with a before_save hook on {}: Records::create, {seconds} s per row",
                env.label()
            ),
            &[
                "writers",
                "path",
                "records/s",
                "p50 ms",
                "p99 ms",
                "errors",
                "vs no hook",
                "target ≥ 80 %",
            ],
        );
        // Alternating short rounds, so that drift in the machine's load falls on both
        // paths alike.
        let rounds = (seconds * 2).max(2);
        let round = duration / rounds as u32;
        for clients in [1, 8] {
            for tenant in [&plain, &hooked] {
                run(tenant, owner, &next, clients, Duration::from_secs(1)).await;
            }
            let mut totals = [(0.0, Vec::new(), 0), (0.0, Vec::new(), 0)];
            for _ in 0..rounds {
                for (i, tenant) in [&plain, &hooked].into_iter().enumerate() {
                    let (rate, latencies, errors) = run(tenant, owner, &next, clients, round).await;
                    totals[i].0 += rate / rounds as f64;
                    totals[i].1.extend(latencies);
                    totals[i].2 += errors;
                }
            }
            let baseline = totals[0].0;
            let labels = ["no hook (baseline)", "before_save hook"];
            for (i, (rate, latencies, errors)) in totals.into_iter().enumerate() {
                let stats = common::stats(latencies);
                let ratio = if baseline > 0.0 { rate / baseline } else { 0.0 };
                table.row(vec![
                    clients.to_string(),
                    labels[i].to_string(),
                    format!("{rate:.0}"),
                    common::ms(stats.p50),
                    common::ms(stats.p99),
                    errors.to_string(),
                    format!("{:.0} %", ratio * 100.0),
                    if i == 1 {
                        common::verdict(ratio >= 0.8)
                    } else {
                        String::new()
                    },
                ]);
                eprintln!(
                    "  {clients} writers, {:<20} {rate:>8.0} records/s",
                    labels[i]
                );
            }
        }
        table.print();
        println!("load average at the end: {}", common::load_average());
        env.cleanup().await;
    });
}
