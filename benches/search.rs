//! Customer search (issue 5): the embedded index (`EmbeddedIndex`, tantivy) over
//! `METACRM_BENCH_ROWS` (default 1,000,000) generated customers — a Chinese company
//! name (locality, trade name of 2–3 characters, industry, legal form), a contact
//! person and a phone number, owned by 200 users — against SQL `LIKE '%…%'` on the
//! same rows in the tenant's table.
//!
//! - **Index build**: each record becomes a document through the indexer's
//!   `document()` and goes into a fresh index in a temporary folder through
//!   `EmbeddedIndex::upsert`, 10,000 per call (one commit each). Documents/s (target
//!   ≥ 20,000/s), the index's size on disk and the growth of the process's VmRSS.
//! - **Rebuild**: `indexer::rebuild` (what `metacrm reindex` runs) from the same records
//!   bulk-loaded into the tenant's table into a new index in a folder of its own:
//!   documents/s with the reading included (target ≥ 20,000/s), segments and size.
//! - **Queries**: a 2-character Chinese word of a trade name (震华), the same word in
//!   full pinyin (zhenhua), 4 pinyin initials — locality and trade name (szzh) — and a
//!   4–6 digit fragment of a phone number, each drawn `METACRM_BENCH_SEARCH_ITERS`
//!   (default 200) times from the generated records, limit 20, searched in `name`,
//!   `contact` and `phone`, as a user with scope `all` (no owner filter) and as one
//!   with scope `own` (the owner of the record the value came from), one query at a
//!   time. Target: p99 < 20 ms.
//! - **Baseline**: the same values as `(name LIKE '%v%' OR contact LIKE '%v%' OR phone
//!   LIKE '%v%')` with `owner = ?` for `own`, `LIMIT 20` and no `ORDER BY`, on the same
//!   records bulk-loaded into the tenant's `customer` table (SQLite, or PostgreSQL when
//!   `METACRM_BENCH_DATABASE` is set). Pinyin and initials have no SQL equivalent.
//!
//! `METACRM_BENCH_SEARCH_BATCH` (default 10,000) sets the documents per upsert. A row
//! of the query table stops early when it has run `METACRM_BENCH_SEARCH_SECS` (default
//! 120) seconds; its `n` says how many queries it measured.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{CompanyName, Env, Rng, Table};
use metacrm::catalog::{Catalog, EntityCatalog};
use metacrm::search::embedded::EmbeddedIndex;
use metacrm::search::indexer::Serving;
use metacrm::search::{Document, SearchIndex, SearchQuery, analyze, indexer};
use metacrm::store::db::{Backend, TenantDb};
use metacrm::tenant::Tenant;
use pinyin::ToPinyin;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Query, SelectStatement};
use serde_json::{Value, json};

const BUILD_TARGET_PER_SEC: f64 = 20_000.0;
const QUERY_TARGET: Duration = Duration::from_millis(20);
const LIMIT: usize = 20;
const OWNERS: u64 = 200;
const FIRST_OWNER: i64 = 1001;
const FIELDS: [&str; 3] = ["name", "contact", "phone"];

// ---------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------

/// The customer entity of this benchmark: the three searchable fields.
fn package() -> Value {
    json!({"format": 1, "entities": [{
        "key": common::ENTITY, "label": "客户", "title_field": "name",
        "fields": [
            {"key": "name", "label": "单位名称", "type": "text", "required": true, "max_length": 200, "searchable": true},
            {"key": "contact", "label": "联系人", "type": "text", "max_length": 50, "searchable": true},
            {"key": "phone", "label": "电话", "type": "phone", "searchable": true}
        ]
    }]})
}

/// Customer `i`, deterministic in `i`; its record id is `i + 1`.
struct Entry {
    company: CompanyName,
    name: String,
    contact: String,
    phone: String,
    owner: i64,
}

fn entry(i: u64) -> Entry {
    let mut rng = Rng::new(i.wrapping_mul(0xD134_2543_DE82_EF95) ^ 0x5ea2c4);
    let company = common::company_name(&mut rng);
    let contact = common::person_name(&mut rng);
    let phone = if rng.below(10) < 7 {
        common::mobile_number(&mut rng)
    } else {
        common::landline_number(&mut rng, company.area_code())
    };
    let owner = FIRST_OWNER + rng.below(OWNERS) as i64;
    Entry {
        name: company.full(),
        company,
        contact,
        phone,
        owner,
    }
}

/// The record as the indexer reads it from the outbox.
fn record(i: u64, e: &Entry) -> Value {
    json!({"id": i as i64 + 1, "owner": e.owner, "name": e.name,
           "contact": e.contact, "phone": e.phone})
}

const COLUMNS: [&str; 8] = [
    "created_at",
    "updated_at",
    "created_by",
    "owner",
    "version",
    "name",
    "contact",
    "phone",
];

fn sql_values(i: u64) -> Vec<Expr> {
    let e = entry(i);
    let at = chrono::DateTime::from_timestamp(1_609_459_200 + i as i64 * 60, 0).expect("time");
    vec![
        Expr::val(at),
        Expr::val(at),
        Expr::val(e.owner),
        Expr::val(e.owner),
        Expr::val(1i64),
        Expr::val(e.name),
        Expr::val(e.contact),
        Expr::val(e.phone),
    ]
}

// ---------------------------------------------------------------------------------
// Index build
// ---------------------------------------------------------------------------------

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Segments in the index's last commit (as `meta.json` lists them).
fn segments(path: &Path) -> usize {
    tantivy::Index::open_in_dir(path)
        .and_then(|index| index.searchable_segment_metas())
        .map(|metas| metas.len())
        .unwrap_or(0)
}

struct Memory {
    rss: u64,
    anon: u64,
    file: u64,
}

fn memory() -> Memory {
    Memory {
        rss: common::rss_kib(),
        anon: common::proc_status_kib("RssAnon:"),
        file: common::proc_status_kib("RssFile:"),
    }
}

/// A table of one measure per row, with its target where it has one.
fn measures(title: String) -> Table {
    Table::new(title, &["measure", "value", "target"])
}

trait Measures {
    fn measure(&mut self, measure: &str, value: String, target: String);
}

impl Measures for Table {
    fn measure(&mut self, measure: &str, value: String, target: String) {
        self.row(vec![measure.to_string(), value, target]);
    }
}

/// The build-rate target and whether `per_sec` meets it.
fn build_target(per_sec: f64) -> String {
    format!(
        "≥ {BUILD_TARGET_PER_SEC:.0}: {}",
        common::verdict(per_sec >= BUILD_TARGET_PER_SEC)
    )
}

async fn build_index(
    index: &EmbeddedIndex,
    index_dir: &Path,
    tenant: &str,
    entity: &EntityCatalog,
    rows: usize,
    batch: usize,
) -> Table {
    let before = memory();
    let started = Instant::now();
    let mut in_upsert = Duration::ZERO;
    let mut next = 0usize;
    while next < rows {
        let end = (next + batch).min(rows);
        let documents: Vec<Document> = (next..end)
            .map(|i| {
                let e = entry(i as u64);
                indexer::document(entity, &record(i as u64, &e))
            })
            .collect();
        let t0 = Instant::now();
        index
            .upsert(tenant, common::ENTITY, documents)
            .await
            .expect("upsert");
        in_upsert += t0.elapsed();
        next = end;
        eprint!(
            "\r  indexed {next}/{rows} documents ({:.0} documents/s in upsert)   ",
            next as f64 / in_upsert.as_secs_f64()
        );
    }
    eprintln!();
    let total = started.elapsed();
    let after = memory();
    let segments_at_end = segments(index_dir);
    let bytes_at_end = dir_bytes(index_dir);

    let settled = settle(index, index_dir, tenant, common::ENTITY).await;
    let settled_memory = memory();

    // The share of the analysis (characters, bigrams, pinyin, initials, digit grams),
    // which `upsert` runs on the calling thread: timed alone on a sample.
    let sample = rows.min(100_000);
    let documents: Vec<Document> = (0..sample)
        .map(|i| {
            let e = entry(i as u64);
            indexer::document(entity, &record(i as u64, &e))
        })
        .collect();
    let t0 = Instant::now();
    let mut terms = 0usize;
    for document in &documents {
        for text in document.fields.values() {
            terms += analyze::terms(text).len();
        }
    }
    let analysis = t0.elapsed().as_secs_f64() / sample as f64;
    drop(documents);

    let per_sec = rows as f64 / in_upsert.as_secs_f64();
    let mut table = measures(format!(
        "search index build: {rows} documents, {batch} per upsert (one commit each)"
    ));
    table.measure(
        "time in upsert",
        format!("{:.1} s", in_upsert.as_secs_f64()),
        String::new(),
    );
    table.measure(
        "documents/s in upsert",
        format!("{per_sec:.0}"),
        build_target(per_sec),
    );
    table.measure(
        "of which analysis (analyze::terms, timed alone on a sample)",
        format!(
            "{:.1} µs per document ({:.0} terms), {:.0} % of the upsert time",
            analysis * 1e6,
            terms as f64 / sample as f64,
            100.0 * analysis * rows as f64 / in_upsert.as_secs_f64()
        ),
        String::new(),
    );
    table.measure(
        "documents/s end to end (generating records, document(), upsert)",
        format!("{:.0}", rows as f64 / total.as_secs_f64()),
        String::new(),
    );
    table.measure(
        "segments / size on disk after the last commit",
        format!(
            "{segments_at_end} / {} MiB",
            common::mib(bytes_at_end / 1024)
        ),
        String::new(),
    );
    settled.add_to(&mut table, rows);
    table.measure(
        "VmRSS before → after the build (RssAnon, RssFile)",
        format!(
            "{} → {} MiB (anon {} → {}, file {} → {})",
            common::mib(before.rss),
            common::mib(after.rss),
            common::mib(before.anon),
            common::mib(after.anon),
            common::mib(before.file),
            common::mib(after.file)
        ),
        String::new(),
    );
    table.measure(
        "VmRSS growth: after the build / after merges",
        format!(
            "{} / {} MiB",
            common::mib(after.rss.saturating_sub(before.rss)),
            common::mib(settled_memory.rss.saturating_sub(before.rss))
        ),
        String::new(),
    );
    table.measure(
        "VmHWM (peak of the process)",
        format!("{} MiB", common::mib(common::hwm_kib())),
        String::new(),
    );
    table
}

/// Where an index stands once its background merges are done.
struct Settled {
    after: Duration,
    segments: usize,
    bytes: u64,
}

impl Settled {
    /// Its rows in a table of measures, for an index of `rows` documents.
    fn add_to(&self, table: &mut Table, rows: usize) {
        table.measure(
            "background merges settled after",
            format!("{:.1} s", self.after.as_secs_f64()),
            String::new(),
        );
        table.measure(
            "segments / size on disk after merges",
            format!(
                "{} / {} MiB ({:.0} bytes per document)",
                self.segments,
                common::mib(self.bytes / 1024),
                self.bytes as f64 / rows as f64
            ),
            String::new(),
        );
    }
}

/// The writer merges segments in the background after a commit: waits until the
/// folder stops changing, then commits once more (an empty upsert) so that the reader
/// sees the merged segments, as the next write would in production.
async fn settle(index: &EmbeddedIndex, dir: &Path, tenant: &str, name: &str) -> Settled {
    let started = Instant::now();
    let mut last = (segments(dir), dir_bytes(dir));
    let mut unchanged = 0;
    while unchanged < 5 && started.elapsed() < Duration::from_secs(180) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = (segments(dir), dir_bytes(dir));
        if now == last {
            unchanged += 1;
        } else {
            unchanged = 0;
            last = now;
        }
    }
    index
        .upsert(tenant, name, Vec::new())
        .await
        .expect("empty commit");
    Settled {
        after: started.elapsed(),
        segments: segments(dir),
        bytes: dir_bytes(dir),
    }
}

/// `indexer::rebuild` — what `metacrm reindex` and a change of searchable fields run —
/// from the records in the tenant's table into a new index generation in a folder of
/// its own: pages of 1,000 records read through `Records::query`, loaded without a
/// commit per page, committed once at the end.
async fn rebuild_from_database(
    tenant: &Tenant,
    catalog: &Catalog,
    entity: &EntityCatalog,
    rows: usize,
) -> Table {
    let root = common::data_dir();
    let index = EmbeddedIndex::new(root.path().to_path_buf());
    let before = memory();
    let started = Instant::now();
    let progress = |done: u64| {
        eprint!(
            "\r  rebuilt {done}/{rows} documents ({:.0} documents/s)   ",
            done as f64 / started.elapsed().as_secs_f64()
        )
    };
    let built = indexer::rebuild(tenant, catalog, &index, entity, &progress)
        .await
        .expect("rebuild");
    let took = started.elapsed();
    eprintln!();
    let after = memory();
    let name = Serving::load(&tenant.db)
        .await
        .expect("serving generations")
        .index(common::ENTITY);
    let dir = root.path().join(&tenant.key).join(&name);
    let at_end = (segments(&dir), dir_bytes(&dir));
    let settled = settle(&index, &dir, &tenant.key, &name).await;
    let per_sec = built as f64 / took.as_secs_f64();
    let mut table = measures(format!(
        "search index rebuild from the database: {built} records (indexer::rebuild)"
    ));
    table.measure(
        "time, reading included",
        format!("{:.1} s", took.as_secs_f64()),
        String::new(),
    );
    table.measure(
        "documents/s",
        format!("{per_sec:.0}"),
        build_target(per_sec),
    );
    table.measure(
        "segments / size on disk at the switch",
        format!("{} / {} MiB", at_end.0, common::mib(at_end.1 / 1024)),
        String::new(),
    );
    settled.add_to(&mut table, rows);
    table.measure(
        "VmRSS growth during the rebuild",
        format!("{} MiB", common::mib(after.rss.saturating_sub(before.rss))),
        String::new(),
    );
    table
}

// ---------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Chinese,
    Pinyin,
    Initials,
    Phone,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Chinese => "Chinese word (2 characters)",
            Kind::Pinyin => "full pinyin of that word",
            Kind::Initials => "initials (4 letters)",
            Kind::Phone => "phone fragment (4–6 digits)",
        }
    }

    fn has_sql(self) -> bool {
        matches!(self, Kind::Chinese | Kind::Phone)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    Own,
}

impl Scope {
    fn label(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Own => "own",
        }
    }
}

/// One query: the text typed, and the owner of the record it was taken from.
struct Sample {
    text: String,
    owner: i64,
}

fn syllable(c: char) -> &'static str {
    c.to_pinyin().map(|p| p.plain()).unwrap_or("")
}

fn initial(c: char) -> &'static str {
    c.to_pinyin().map(|p| p.first_letter()).unwrap_or("")
}

fn draw(kind: Kind, rng: &mut Rng, rows: usize) -> Sample {
    let e = entry(rng.below(rows as u64));
    let word: Vec<char> = e.company.core.chars().take(2).collect();
    let text = match kind {
        Kind::Chinese => word.iter().collect(),
        Kind::Pinyin => word.iter().map(|c| syllable(*c)).collect(),
        Kind::Initials => e
            .company
            .prefix()
            .chars()
            .take(2)
            .chain(word.iter().copied())
            .map(initial)
            .collect(),
        Kind::Phone => {
            // A fragment within one run of digits, so that LIKE finds it too.
            let runs: Vec<&str> = e
                .phone
                .split(|c: char| !c.is_ascii_digit())
                .filter(|r| r.len() >= 4)
                .collect();
            let run = runs[rng.below(runs.len() as u64) as usize];
            let length = (4 + rng.below(3) as usize).min(run.len());
            let start = rng.below((run.len() - length + 1) as u64) as usize;
            run[start..start + length].to_string()
        }
    };
    Sample {
        text,
        owner: e.owner,
    }
}

fn owners(scope: Scope, sample: &Sample) -> Option<BTreeSet<i64>> {
    match scope {
        Scope::All => None,
        Scope::Own => Some(BTreeSet::from([sample.owner])),
    }
}

fn like_select(db: &TenantDb, scope: Scope, sample: &Sample) -> SelectStatement {
    let pattern = format!("%{}%", sample.text);
    let mut select = Query::select();
    select.from(db.table(common::TABLE));
    for column in ["id", "owner", "name", "contact", "phone"] {
        select.column(Alias::new(column));
    }
    select.and_where(Expr::col(Alias::new("deleted_at")).is_null());
    let mut any = Condition::any();
    for field in FIELDS {
        any = any.add(Expr::col(Alias::new(field)).like(pattern.as_str()));
    }
    select.cond_where(any);
    if scope == Scope::Own {
        select.and_where(Expr::col(Alias::new("owner")).eq(sample.owner));
    }
    select.limit(LIMIT as u64);
    select
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Engine,
    Like,
}

struct Ctx<'a> {
    index: &'a EmbeddedIndex,
    tenant: &'a Tenant,
    fields: Vec<String>,
    rows: usize,
}

/// Runs one query; returns how many records it answered.
async fn once(ctx: &Ctx<'_>, path: Via, scope: Scope, sample: &Sample) -> usize {
    match path {
        Via::Engine => {
            let query = SearchQuery {
                text: sample.text.clone(),
                fields: ctx.fields.clone(),
                owners: owners(scope, sample),
                limit: LIMIT,
            };
            ctx.index
                .search(&ctx.tenant.key, common::ENTITY, &query)
                .await
                .expect("search")
                .len()
        }
        Via::Like => ctx
            .tenant
            .db
            .conn()
            .query_all(&like_select(&ctx.tenant.db, scope, sample))
            .await
            .expect("LIKE query")
            .len(),
    }
}

struct Measured {
    stats: common::Stats,
    hits: f64,
    empty: usize,
}

async fn measure(
    ctx: &Ctx<'_>,
    kind: Kind,
    scope: Scope,
    path: Via,
    iterations: usize,
    budget: Duration,
) -> Measured {
    let mut warm = Rng::new(1000 + kind as u64);
    for _ in 0..10 {
        once(ctx, path, scope, &draw(kind, &mut warm, ctx.rows)).await;
    }
    // The same values for both paths and both scopes.
    let mut rng = Rng::new(42 + kind as u64);
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(iterations);
    let (mut hits, mut empty) = (0usize, 0usize);
    for _ in 0..iterations {
        let sample = draw(kind, &mut rng, ctx.rows);
        let t0 = Instant::now();
        let n = once(ctx, path, scope, &sample).await;
        latencies.push(t0.elapsed());
        hits += n;
        empty += usize::from(n == 0);
        if started.elapsed() > budget {
            break;
        }
    }
    let count = latencies.len().max(1);
    Measured {
        stats: common::stats(latencies),
        hits: hits as f64 / count as f64,
        empty,
    }
}

fn ratio(engine: Duration, like: Duration) -> String {
    format!("{:.3}", engine.as_secs_f64() / like.as_secs_f64().max(1e-9))
}

fn main() {
    let runtime = common::runtime();
    runtime.block_on(async {
        let rows = common::rows();
        let iterations = common::env_usize("METACRM_BENCH_SEARCH_ITERS", 200);
        let batch = common::env_usize("METACRM_BENCH_SEARCH_BATCH", 10_000);
        let budget =
            Duration::from_secs(common::env_usize("METACRM_BENCH_SEARCH_SECS", 120) as u64);
        let env = Env::open().await;
        common::print_header("search", env.backend());
        let tenant = env.tenant("bs", &package()).await;
        let catalog = tenant.catalog().await.clone();
        let entity: Arc<EntityCatalog> = catalog
            .entity(common::ENTITY)
            .expect("customer entity")
            .clone();

        // Index build, in a folder of its own (removed at the end).
        let index_root = common::data_dir();
        let index = EmbeddedIndex::new(index_root.path().to_path_buf());
        let index_dir = index_root.path().join(&tenant.key).join(common::ENTITY);
        eprintln!("indexing {rows} customers…");
        let build = build_index(&index, &index_dir, &tenant.key, &entity, rows, batch).await;
        build.print();

        // The same records in the tenant's table, for the LIKE baseline.
        eprintln!("bulk-loading {rows} customers…");
        let load = common::bulk_insert(&tenant, common::TABLE, &COLUMNS, rows, |i| {
            sql_values(i as u64)
        })
        .await;
        let mut maintenance = "none (the application runs no ANALYZE on SQLite)";
        if env.backend() == Backend::Postgres {
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
        println!(
            "{rows} rows loaded into {} in {:.1} s ({:.0} rows/s); maintenance: {maintenance}",
            env.label(),
            load.as_secs_f64(),
            rows as f64 / load.as_secs_f64().max(1e-9)
        );

        eprintln!("rebuilding an index from the {rows} records…");
        let rebuild = rebuild_from_database(&tenant, &catalog, &entity, rows).await;
        rebuild.print();

        let ctx = Ctx {
            index: &index,
            tenant: &tenant,
            fields: FIELDS.iter().map(|f| f.to_string()).collect(),
            rows,
        };
        let kinds = [Kind::Chinese, Kind::Pinyin, Kind::Initials, Kind::Phone];
        println!("\nexamples (the first values of each kind) and the engine's query plan:");
        for kind in kinds {
            let mut rng = Rng::new(42 + kind as u64);
            let examples: Vec<String> = (0..5).map(|_| draw(kind, &mut rng, rows).text).collect();
            println!("  {}: {}", kind.label(), examples.join(", "));
            println!(
                "    plan of {:?}: {:?}",
                examples[0],
                analyze::plan(&examples[0])
            );
        }
        for kind in [Kind::Chinese, Kind::Phone] {
            let mut rng = Rng::new(42 + kind as u64);
            let sample = draw(kind, &mut rng, rows);
            for scope in [Scope::All, Scope::Own] {
                println!(
                    "  SQL plan of {} / {} ({}):",
                    kind.label(),
                    scope.label(),
                    sample.text
                );
                for line in
                    common::explain_select(&tenant.db, &like_select(&tenant.db, scope, &sample))
                        .await
                {
                    println!("      {line}");
                }
            }
        }

        let mut table = Table::new(
            format!(
                "search with {rows} customers on {}: one client, limit {LIMIT}, latency per query",
                env.label()
            ),
            &[
                "query",
                "scope",
                "path",
                "n",
                "records",
                "empty",
                "p50 ms",
                "p99 ms",
                "max ms",
                "engine/LIKE p50",
                "engine/LIKE p99",
                "target p99 < 20 ms",
            ],
        );
        for kind in kinds {
            for scope in [Scope::All, Scope::Own] {
                let engine = measure(&ctx, kind, scope, Via::Engine, iterations, budget).await;
                eprintln!(
                    "  {} / {} / engine: p50 {} ms p99 {} ms",
                    kind.label(),
                    scope.label(),
                    common::ms(engine.stats.p50),
                    common::ms(engine.stats.p99)
                );
                let like = if kind.has_sql() {
                    let like = measure(&ctx, kind, scope, Via::Like, iterations, budget).await;
                    eprintln!(
                        "  {} / {} / LIKE: p50 {} ms p99 {} ms",
                        kind.label(),
                        scope.label(),
                        common::ms(like.stats.p50),
                        common::ms(like.stats.p99)
                    );
                    Some(like)
                } else {
                    None
                };
                let (r50, r99) = match &like {
                    Some(like) => (
                        ratio(engine.stats.p50, like.stats.p50),
                        ratio(engine.stats.p99, like.stats.p99),
                    ),
                    None => ("n/a".to_string(), "n/a".to_string()),
                };
                table.row(vec![
                    kind.label().to_string(),
                    scope.label().to_string(),
                    "engine (EmbeddedIndex::search)".to_string(),
                    engine.stats.count.to_string(),
                    format!("{:.1}", engine.hits),
                    engine.empty.to_string(),
                    common::ms(engine.stats.p50),
                    common::ms(engine.stats.p99),
                    common::ms(engine.stats.max),
                    r50,
                    r99,
                    common::verdict(engine.stats.p99 < QUERY_TARGET),
                ]);
                match like {
                    Some(like) => table.row(vec![
                        kind.label().to_string(),
                        scope.label().to_string(),
                        "SQL LIKE '%…%' (baseline)".to_string(),
                        like.stats.count.to_string(),
                        format!("{:.1}", like.hits),
                        like.empty.to_string(),
                        common::ms(like.stats.p50),
                        common::ms(like.stats.p99),
                        common::ms(like.stats.max),
                        String::new(),
                        String::new(),
                        String::new(),
                    ]),
                    None => table.row(vec![
                        kind.label().to_string(),
                        scope.label().to_string(),
                        "SQL LIKE: no equivalent".to_string(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        String::new(),
                        String::new(),
                        String::new(),
                    ]),
                }
            }
        }
        build.print();
        rebuild.print();
        table.print();
        println!("load average at the end: {}", common::load_average());
        drop(index);
        env.cleanup().await;
    });
}
