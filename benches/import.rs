//! Spreadsheet import throughput and memory: `METACRM_BENCH_ROWS` (default 1,000,000)
//! CSV rows into the 15-field customer entity through `transfer::import` (the same
//! path as `POST /api/import` and `metacrm import`: coercion, validation, audit,
//! outbox, 500-row transactions, the next batch read while one is written), beside the
//! baseline of raw batched inserts (500-row `INSERT` statements in 50,000-row
//! transactions) of the same rows on the same database, loaded once before the import
//! and once after it.
//!
//! Target: import ≥ 50 % of raw rows/s, and peak memory flat in the file's size (the
//! CSV is streamed): the peak after importing a tenth of the rows is compared with the
//! peak after all of them.

mod common;

use std::io::Write;
use std::time::Instant;

use common::Env;
use metacrm::auth::{Context, users};
use metacrm::transfer::import::{self, DuplicatePolicy, ImportOptions};
use metacrm::transfer::sheet::Source;

fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The rows as a user's CSV: Chinese headers (the fields' labels), values as typed.
fn write_csv(path: &std::path::Path, rows: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create csv"));
    writeln!(out, "单位名称,电话,邮箱,区域,合同金额,员工数,签约日期,有效,客户类别,备注,网站,最近联系,附加字段 1,附加字段 2,附加字段 3").unwrap();
    for i in 0..rows {
        let c = common::customer(i as u64);
        writeln!(
            out,
            "{},{},{},{},{}.{:02},{},{},{},{},{},{},{},附加{i},说明{i},{}",
            c.name,
            c.phone,
            c.email,
            c.region,
            c.amount / 100,
            c.amount % 100,
            c.employees,
            c.signed_on.format("%Y/%-m/%-d"),
            if c.active { "是" } else { "否" },
            c.category,
            c.notes.unwrap_or(""),
            c.website,
            c.last_contact.format("%Y-%m-%d %H:%M:%S"),
            i % 97
        )
        .unwrap();
    }
    out.flush().unwrap();
}

async fn import_rows(env: &Env, file: &std::path::Path) -> (f64, u64) {
    let tenant = env.tenant("imp", &common::customer_package(3)).await;
    let admin = users::find_by_username(&tenant.db, common::ADMIN)
        .await
        .unwrap()
        .unwrap();
    let ctx = Context::new(tenant.clone(), admin);
    let catalog = tenant.catalog().await;
    let started = Instant::now();
    let report = import::run(
        &ctx,
        catalog.clone(),
        common::ENTITY,
        env.tenants.search.clone(),
        Source::File(file.to_path_buf()),
        "bench.csv",
        ImportOptions {
            duplicates: DuplicatePolicy::Off,
            ..Default::default()
        },
        &|progress, total| {
            eprint!("\r  imported {}/{total} rows   ", progress.rows_done);
        },
    )
    .await
    .expect("import");
    eprintln!();
    assert!(
        report.errors.is_empty(),
        "{:?}",
        &report.errors[..3.min(report.errors.len())]
    );
    (started.elapsed().as_secs_f64(), report.created)
}

/// Seconds for the raw batched inserts of `rows` customers into a new tenant.
async fn raw_load(env: &Env, key: &str, rows: usize) -> f64 {
    let tenant = env.tenant(key, &common::customer_package(3)).await;
    let owner = common::admin_id(&tenant).await;
    common::bulk_load(&tenant, rows, owner).await.as_secs_f64()
}

fn main() {
    let rows = common::rows();
    let runtime = common::runtime();
    runtime.block_on(async {
        let env = Env::open().await;
        println!("# Import: {rows} CSV rows, 15 fields, {}", env.label());
        let small = env.dir.path().join("small.csv");
        let full = env.dir.path().join("full.csv");
        write_csv(&small, rows / 10);
        write_csv(&full, rows);
        let bytes = std::fs::metadata(&full).map(|m| m.len()).unwrap_or(0);
        let before = peak_kib();

        let raw_before = raw_load(&env, "raw", rows).await;

        let (_, _) = import_rows(&env, &small).await;
        let peak_small = peak_kib();
        let (seconds, created) = import_rows(&env, &full).await;
        let peak_full = peak_kib();
        // This machine's speed drifts by a third within minutes: the baseline is the
        // mean of a load before the import and one after it.
        let raw_after = raw_load(&env, "raw2", rows).await;
        let raw = (raw_before + raw_after) / 2.0;
        println!("raw loads: {raw_before:.1} s before the import, {raw_after:.1} s after");

        println!();
        println!("| path | rows | seconds | rows/s | ratio to raw |");
        println!("|---|---:|---:|---:|---:|");
        println!(
            "| raw batched INSERT (baseline, mean of two) | {rows} | {raw:.1} | {:.0} | 1.00 |",
            rows as f64 / raw
        );
        println!(
            "| import (transfer::import) | {created} | {seconds:.1} | {:.0} | {:.2} |",
            created as f64 / seconds,
            raw / seconds
        );
        println!();
        println!("| memory (VmHWM) | KiB |");
        println!("|---|---:|");
        println!("| before importing | {before} |");
        println!(
            "| after {} rows ({} MB file / 10) | {peak_small} |",
            rows / 10,
            bytes / 10 / 1_000_000
        );
        println!(
            "| after {rows} rows ({} MB file) | {peak_full} |",
            bytes / 1_000_000
        );
        env.cleanup().await;
    });
}
