//! Adding a field to a big customer table (`METACRM_BENCH_ROWS`, default 1,000,000):
//!
//! - **apply**: `Tenant::apply` of the package with one more (plain text) field — the
//!   whole publish: parse, validate, diff, the transaction with `ALTER TABLE … ADD
//!   COLUMN` and the metadata version row, the catalog swap (and on SQLite the pool
//!   reopened after the schema change);
//! - **raw**: `ALTER TABLE … ADD COLUMN` on a copy of the table with the same rows
//!   (`CREATE TABLE … AS SELECT *`), on the same pool — the baseline.
//!
//! `METACRM_BENCH_REPEATS` (default 5) fields are added one after another each way.
//! For information, it also adds an `indexed: true` field (an index build over every
//! row), beside the raw `ADD COLUMN` + `CREATE INDEX`. Target: < 100 ms to add a field.

mod common;

use std::time::{Duration, Instant};

use common::{Env, Table};
use metacrm::auth::Access;
use metacrm::store::db::Backend;
use metacrm::store::records::{QueryRequest, Records};
use serde_json::{Value, json};

const TARGET: Duration = Duration::from_millis(100);

fn summary(mut runs: Vec<Duration>) -> (Duration, Duration, Duration) {
    runs.sort_unstable();
    let median = runs[runs.len() / 2];
    (runs[0], median, runs[runs.len() - 1])
}

/// The benchmark package with `extra` text fields and one indexed integer field.
fn package_with_indexed(extra: usize) -> Value {
    let mut package = common::customer_package(extra);
    package["entities"][0]["fields"]
        .as_array_mut()
        .expect("fields")
        .push(json!({"key": "score", "label": "评分", "type": "integer", "indexed": true}));
    package
}

fn main() {
    let runtime = common::runtime();
    runtime.block_on(async {
        let rows = common::rows();
        let repeats = common::env_usize("METACRM_BENCH_REPEATS", 5);
        let env = Env::open().await;
        common::print_header("schema_change", env.backend());
        let tenant = env.tenant("bs", &common::customer_package(0)).await;
        let owner = common::admin_id(&tenant).await;
        eprintln!("bulk-loading {rows} customers…");
        let load = common::ensure_loaded(&tenant, rows, owner)
            .await
            .unwrap_or_default();
        println!("{rows} rows loaded in {:.1} s", load.as_secs_f64());

        let db = &tenant.db;
        let source = common::qualified(db, common::TABLE);
        let copy = common::qualified(db, "bench_copy");
        let t0 = Instant::now();
        common::exec(
            db,
            &format!("CREATE TABLE {copy} AS SELECT * FROM {source}"),
        )
        .await;
        let copied = t0.elapsed();
        let copy_rows = common::count_rows(db, "bench_copy").await;
        println!(
            "copy of {copy_rows} rows made in {:.1} s",
            copied.as_secs_f64()
        );
        if env.backend() == Backend::Postgres {
            for table in [&source, &copy] {
                common::exec(db, &format!("VACUUM ANALYZE {table}")).await;
            }
        }

        let mut raw_runs = Vec::new();
        for n in 1..=repeats {
            let sql = format!("ALTER TABLE {copy} ADD COLUMN \"extra_{n}\" text");
            let t0 = Instant::now();
            common::exec(db, &sql).await;
            raw_runs.push(t0.elapsed());
        }

        let mut apply_runs = Vec::new();
        for n in 1..=repeats {
            let package = common::customer_package(n);
            let t0 = Instant::now();
            let applied = tenant
                .apply(&package, None, false)
                .await
                .expect("apply one more field");
            apply_runs.push(t0.elapsed());
            if n == 1 {
                println!("plan of one added field:");
                for step in &applied.plan.steps {
                    println!("    {:?}: {}", step.op, step.sql);
                }
            }
        }
        // The added columns are really there: the records module filters on the last.
        let columns_ok = {
            let catalog = tenant.catalog().await;
            let entity = catalog.entity(common::ENTITY).expect("customer entity");
            let request: QueryRequest = serde_json::from_value(json!({
                "filter": {"field": format!("extra_{repeats}"), "op": "eq", "value": null},
                "limit": 1
            }))
            .expect("query request");
            Records::new(db, &catalog, entity)
                .query(&request, &Access::full(owner))
                .await
                .map(|page| page.items.len() == 1)
                .unwrap_or(false)
        };

        let t0 = Instant::now();
        common::exec(
            db,
            &format!("ALTER TABLE {copy} ADD COLUMN \"score\" bigint"),
        )
        .await;
        common::exec(
            db,
            &format!("CREATE INDEX ix_bench_copy_score ON {copy} (\"score\")"),
        )
        .await;
        let raw_indexed = t0.elapsed();
        let t0 = Instant::now();
        tenant
            .apply(&package_with_indexed(repeats), None, false)
            .await
            .expect("apply an indexed field");
        let apply_indexed = t0.elapsed();

        let mut table = Table::new(
            format!(
                "schema_change on {} with {rows} rows: add one field",
                env.label()
            ),
            &[
                "operation",
                "path",
                "runs",
                "min ms",
                "median ms",
                "max ms",
                "target < 100 ms",
            ],
        );
        let (min, median, max) = summary(raw_runs);
        table.row(vec![
            "add a text field".into(),
            "raw ALTER TABLE ADD COLUMN on a copy (baseline)".into(),
            repeats.to_string(),
            common::ms(min),
            common::ms(median),
            common::ms(max),
            String::new(),
        ]);
        let (min, median, max) = summary(apply_runs);
        table.row(vec![
            "add a text field".into(),
            "Tenant::apply (publish)".into(),
            repeats.to_string(),
            common::ms(min),
            common::ms(median),
            common::ms(max),
            common::verdict(max < TARGET),
        ]);
        table.row(vec![
            "add an indexed integer field [info]".into(),
            "raw ADD COLUMN + CREATE INDEX on a copy".into(),
            "1".into(),
            common::ms(raw_indexed),
            common::ms(raw_indexed),
            common::ms(raw_indexed),
            "n/a (index build)".into(),
        ]);
        table.row(vec![
            "add an indexed integer field [info]".into(),
            "Tenant::apply (publish)".into(),
            "1".into(),
            common::ms(apply_indexed),
            common::ms(apply_indexed),
            common::ms(apply_indexed),
            "n/a (index build)".into(),
        ]);
        table.print();
        println!("load average at the end: {}", common::load_average());
        if !columns_ok {
            println!("warning: the added field could not be read back through Records::query");
        }
        env.cleanup().await;
    });
}
