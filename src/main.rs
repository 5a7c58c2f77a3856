//! The `metacrm` command: serve the platform, manage tenants, apply metadata.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use poem::Server;
use poem::listener::{Listener, TcpListener};
use tracing_subscriber::EnvFilter;

use metacrm::error::{Error, Result};
use metacrm::store::db::{DbConfig, MeiliConfig};
use metacrm::tenant::{NewTenant, Tenants};
use metacrm::transfer::export::{self, ExportRequest};
use metacrm::transfer::import::ImportOptions;
use metacrm::transfer::sheet::Source;
use metacrm::workflow::jobs;
use metacrm::{api, templates};

/// metacrm — a low-code CRM platform. Each tenant describes its business as metadata
/// (entities, fields, stages, flows, roles, reports); metacrm turns it into tables,
/// forms, permissions, search and reports.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// Folder for the embedded SQLite databases and files.
    #[arg(long, env = "METACRM_DATA", default_value = "./data", global = true)]
    data: PathBuf,
    /// PostgreSQL URL (postgres://user:pw@host/db). Unset: SQLite under --data.
    #[arg(long, env = "DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// Meilisearch URL (http://host:7700). Unset: embedded search under --data.
    #[arg(long, env = "MEILISEARCH_URL", global = true)]
    meilisearch_url: Option<String>,
    /// Meilisearch API key (a key allowed to manage indexes and documents).
    #[arg(
        long,
        env = "MEILISEARCH_API_KEY",
        global = true,
        hide_env_values = true
    )]
    meilisearch_api_key: Option<String>,
    /// S3-compatible bucket for attachment files (s3://bucket/prefix; credentials,
    /// region and endpoint from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
    /// AWS_ENDPOINT, AWS_ALLOW_HTTP). Unset: files under --data.
    #[arg(long, env = "METACRM_FILE_STORE", global = true)]
    file_store: Option<String>,
    /// Log lines as text, or as JSON objects (one per line, with the request id) for a
    /// log collector. The level comes from RUST_LOG (default info).
    #[arg(long, env = "METACRM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (API at /api, API docs at /docs).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "METACRM_BIND", default_value = "127.0.0.1:8080")]
        bind: String,
        /// Create (once) a tenant `demo` from a template with sample data, and print
        /// how to log in.
        #[arg(long)]
        demo: bool,
        /// Template for --demo: crm-base, training-services or manufacturing-service.
        #[arg(long, default_value = "crm-base")]
        template: String,
        /// Tenant key for --demo.
        #[arg(long, default_value = "demo")]
        demo_tenant: String,
        /// Customers generated for a crm-base demo, with their contacts, follow-ups,
        /// opportunities, quotes, orders and payments (0: the samples only).
        #[arg(long, env = "METACRM_DEMO_CUSTOMERS", default_value_t = metacrm::demo_data::DEFAULT_CUSTOMERS)]
        demo_customers: usize,
        /// Seconds between runs of the background jobs (public pool reclaim); 0 turns
        /// them off on this node.
        #[arg(long, env = "METACRM_JOBS_INTERVAL", default_value_t = 600)]
        jobs_interval: u64,
        /// Requests a second one user may send, sustained (0: no per-user limit).
        #[arg(long, env = "METACRM_USER_RATE", default_value_t = 30)]
        user_rate: u32,
        /// Requests one user may send in a burst above the sustained rate.
        #[arg(long, env = "METACRM_USER_BURST", default_value_t = 120)]
        user_burst: u32,
        /// Requests a second one tenant's users may send together (0: no limit).
        #[arg(long, env = "METACRM_TENANT_RATE", default_value_t = 300)]
        tenant_rate: u32,
        /// Requests one tenant may send in a burst above the sustained rate.
        #[arg(long, env = "METACRM_TENANT_BURST", default_value_t = 1000)]
        tenant_burst: u32,
    },
    /// Rebuild search indexes from the database (all entities of all tenants by
    /// default), with progress and rate.
    Reindex {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Only this entity.
        #[arg(long)]
        entity: Option<String>,
    },
    /// Import a spreadsheet (CSV in UTF-8 or GB18030, XLSX, XLS) into an entity, with a
    /// progress bar. Columns map to fields by key or label. Interrupted, the same
    /// command resumes after the last committed row.
    Import {
        /// The spreadsheet file.
        file: PathBuf,
        /// The tenant key.
        #[arg(long)]
        tenant: String,
        /// The entity key.
        #[arg(long)]
        entity: String,
        /// Import as this user (default: the tenant's first administrator); records
        /// are created within their import right.
        #[arg(long = "as")]
        user: Option<String>,
        /// Check every row and report what would happen, changing nothing.
        #[arg(long)]
        dry_run: bool,
        /// A unique field (or id): rows matching a record update it.
        #[arg(long)]
        upsert_on: Option<String>,
        /// Map a column to a field: --map '客户全称=name' (repeatable; `=` alone ignores
        /// the column).
        #[arg(long = "map", value_name = "COLUMN=FIELD")]
        mapping: Vec<String>,
        /// Rows like existing records: report (import and list them), skip (refuse
        /// certain duplicates) or off.
        #[arg(long, default_value = "report")]
        duplicates: String,
    },
    /// Export an entity's records (a filtered list) as CSV or XLSX, with labels as
    /// headers and what a person reads in the cells; the file imports back.
    Export {
        /// Where to write the file.
        file: PathBuf,
        /// The tenant key.
        #[arg(long)]
        tenant: String,
        /// The entity key.
        #[arg(long)]
        entity: String,
        /// Export as this user, within their export right (default: the tenant's
        /// first administrator).
        #[arg(long = "as")]
        user: Option<String>,
        /// csv or xlsx (default: from the file's extension).
        #[arg(long)]
        format: Option<String>,
        /// A filter tree as JSON, e.g. '{"field": "region", "op": "eq", "value": "south"}'.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Background jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Create or upgrade the system tables (also done by every other command).
    Migrate,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Write a backup of one tenant to FILE (a zip): metadata and its history, every
    /// record, the audit trail, users, workflow state and attachment files, read in one
    /// snapshot, so it is consistent while servers keep running.
    Backup {
        /// The backup file to write.
        file: PathBuf,
        /// The tenant key.
        #[arg(long)]
        tenant: String,
    },
    /// Restore a backup (from `backup`) as a new tenant on the same kind of database:
    /// the same metadata, records, history, users and files; the search index is
    /// rebuilt. The tenant must not exist yet.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The new tenant's key (the backed-up tenant's own key, to restore it after
        /// losing it; or another, to make a copy).
        #[arg(long)]
        tenant: String,
        /// The new tenant's company name (default: the backed-up tenant's).
        #[arg(long)]
        name: Option<String>,
    },
    /// Apply a metadata package (JSON file) to a tenant: prints the plan, then runs it
    /// in one transaction (nothing changes if any step fails).
    Apply {
        /// The metadata package, a JSON file.
        file: PathBuf,
        /// The tenant key.
        #[arg(long)]
        tenant: String,
        /// Print the plan without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Run every background job once (public pool reclaim) and print what it did.
    Run {
        /// Only this tenant (default: all).
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant with its own namespace and a first administrator.
    Create {
        /// Tenant key: lowercase letters, digits and underscores, starting with a letter.
        key: String,
        /// Company name.
        #[arg(long)]
        name: String,
        /// Username of the first administrator.
        #[arg(long)]
        admin: String,
        /// Password of the first administrator (at least 8 characters).
        #[arg(long)]
        password: String,
        /// Start from a shipped metadata template.
        #[arg(long)]
        template: Option<String>,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match cli.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_env_filter(filter)
            .init(),
    }
    if let Err(error) = run(cli).await {
        eprintln!("error: {error}");
        if let Some(details) = error.details() {
            eprintln!(
                "{}",
                serde_json::to_string_pretty(&details).unwrap_or_default()
            );
        }
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let config = DbConfig {
        database_url: cli.database_url,
        data_dir: cli.data,
        meilisearch: cli.meilisearch_url.map(|url| MeiliConfig {
            url,
            api_key: cli.meilisearch_api_key,
        }),
        file_store: cli.file_store,
    };
    let tenants = Tenants::open(&config).await?;
    match cli.command {
        Command::Migrate => {
            println!("system tables are up to date");
            Ok(())
        }
        Command::Serve {
            bind,
            demo,
            template,
            demo_tenant,
            demo_customers,
            jobs_interval,
            user_rate,
            user_burst,
            tenant_rate,
            tenant_burst,
        } => {
            tenants.set_rate_limits(metacrm::auth::rate::RateLimits::new(
                metacrm::auth::rate::Rate::new(user_rate, user_burst),
                metacrm::auth::rate::Rate::new(tenant_rate, tenant_burst),
            ));
            if demo {
                prepare_demo(
                    &tenants,
                    &config,
                    &demo_tenant,
                    &template,
                    demo_customers,
                    &bind,
                )
                .await?;
            }
            if jobs_interval > 0 {
                tokio::spawn(jobs::run_every(
                    tenants.clone(),
                    std::time::Duration::from_secs(jobs_interval),
                ));
            }
            tokio::spawn(metacrm::search::indexer::serve_forever(tenants.clone()));
            tokio::spawn(metacrm::plugin::webhooks::serve_forever(tenants.clone()));
            tokio::spawn(metacrm::plugin::schedules::serve_forever(tenants.clone()));
            tokio::spawn(metacrm::cluster::follow_changes(tenants.clone()));
            serve(tenants.clone(), &bind).await?;
            flush_outbox(&tenants).await;
            Ok(())
        }
        Command::Reindex { tenant, entity } => reindex(&tenants, tenant, entity).await,
        Command::Backup { file, tenant } => {
            let manifest = metacrm::backup::backup(&tenants, &tenant, &file, &|table, rows| {
                println!("  {table}: {rows} rows")
            })
            .await?;
            println!(
                "backed up tenant {tenant} to {}: {} tables, {} rows, {} files",
                file.display(),
                manifest.tables.len(),
                manifest.rows(),
                manifest.files
            );
            Ok(())
        }
        Command::Restore { file, tenant, name } => {
            let manifest = metacrm::backup::restore(
                &tenants,
                &file,
                &tenant,
                name.as_deref(),
                &|table, rows| println!("  {table}: {rows} rows"),
            )
            .await?;
            println!(
                "restored tenant {} (backed up {}) as {tenant}: {} tables, {} rows, {} files",
                manifest.tenant,
                manifest.created_at,
                manifest.tables.len(),
                manifest.rows(),
                manifest.files
            );
            Ok(())
        }
        Command::Export {
            file,
            tenant,
            entity,
            user,
            format,
            filter,
        } => {
            let format =
                format.unwrap_or_else(|| match file.extension().and_then(|e| e.to_str()) {
                    Some("xlsx") => "xlsx".to_string(),
                    _ => "csv".to_string(),
                });
            let filter = filter
                .map(|text| serde_json::from_str(&text))
                .transpose()
                .map_err(|e| Error::BadRequest(format!("--filter is not JSON: {e}")))?;
            let request = ExportRequest {
                filter,
                sort: Vec::new(),
                format: format.parse()?,
                max_rows: None,
            };
            let ctx = cli_context(&tenants, &tenant, user.as_deref()).await?;
            let catalog = ctx.tenant.catalog().await;
            let exported = export::export(&ctx, &catalog, &entity, &request).await?;
            std::fs::write(&file, &exported.bytes)
                .map_err(|e| Error::BadRequest(format!("cannot write {}: {e}", file.display())))?;
            println!(
                "exported {} {entity} records to {}",
                exported.rows,
                file.display()
            );
            Ok(())
        }
        Command::Import {
            file,
            tenant,
            entity,
            user,
            dry_run,
            upsert_on,
            mapping,
            duplicates,
        } => {
            let options = ImportOptions {
                dry_run,
                upsert_on,
                mapping: parse_mapping(&mapping)?,
                duplicates: duplicates.parse()?,
            };
            import(&tenants, &tenant, &entity, user.as_deref(), &file, &options).await
        }
        Command::Jobs {
            command: JobsCommand::Run { tenant },
        } => {
            let reports = jobs::run(&tenants, tenant.as_deref(), chrono::Utc::now()).await?;
            for report in &reports {
                println!(
                    "{}: {} {} record(s) of {}",
                    report.tenant, report.job, report.count, report.entity
                );
            }
            println!("jobs done: {} change(s)", reports.len());
            Ok(())
        }
        Command::Tenant {
            command:
                TenantCommand::Create {
                    key,
                    name,
                    admin,
                    password,
                    template,
                },
        } => {
            let tenant = tenants
                .create(&NewTenant {
                    key: &key,
                    name: &name,
                    admin: &admin,
                    password: &password,
                })
                .await?;
            println!("created tenant {key} with administrator {admin}");
            if let Some(template) = template {
                let applied = tenant
                    .apply(&templates::package(&template)?, None, false)
                    .await?;
                println!(
                    "applied template {template}: version {}, {} steps",
                    applied.version,
                    applied.plan.steps.len()
                );
            }
            Ok(())
        }
        Command::Apply {
            file,
            tenant,
            dry_run,
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Error::BadRequest(format!("cannot read {}: {e}", file.display())))?;
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                Error::BadRequest(format!("{} is not valid JSON: {e}", file.display()))
            })?;
            let tenant = tenants.get(&tenant).await?;
            let applied = tenant.apply(&json, None, dry_run).await?;
            for (index, step) in applied.plan.steps.iter().enumerate() {
                let target = match &step.field {
                    Some(field) => format!("{}.{field}", step.entity),
                    None => step.entity.clone(),
                };
                println!(
                    "{:>3}. {:?} {target}\n     {}",
                    index + 1,
                    step.op,
                    step.sql.replace('\n', "\n     ")
                );
            }
            match (dry_run, applied.changed) {
                (true, _) => println!(
                    "dry run: {} steps planned, nothing changed",
                    applied.plan.steps.len()
                ),
                (false, false) => println!("nothing to change; still version {}", applied.version),
                (false, true) => println!("published version {}", applied.version),
            }
            Ok(())
        }
    }
}

/// Creates the demo tenant once; later starts reuse it and print the same login.
async fn prepare_demo(
    tenants: &Tenants,
    config: &DbConfig,
    key: &str,
    template: &str,
    demo_customers: usize,
    bind: &str,
) -> Result<()> {
    let password_file = config.data_dir.join(format!("{key}-admin-password"));
    if !tenants.exists(key).await? {
        let password = random_password();
        let tenant = tenants
            .create(&NewTenant {
                key,
                name: "演示公司",
                admin: "admin",
                password: &password,
            })
            .await?;
        tenant
            .apply(&templates::package(template)?, None, false)
            .await?;
        let admin = metacrm::auth::users::find_by_username(&tenant.db, "admin")
            .await?
            .ok_or_else(|| Error::Internal("demo admin missing".into()))?;
        let count = templates::load_samples(&tenant, template, admin.id).await?;
        std::fs::create_dir_all(&config.data_dir)
            .and_then(|_| std::fs::write(&password_file, &password))
            .map_err(|e| {
                Error::Internal(format!("cannot write {}: {e}", password_file.display()))
            })?;
        println!("created demo tenant from template {template} with {count} sample records");
    }
    // Every start finishes a generation an earlier start was stopped in.
    let tenant = tenants.get(key).await?;
    if let Some(report) =
        templates::generate_demo_data(&tenant, template, demo_customers, true).await?
        && report.total() > 0
    {
        println!(
            "generated demo data: {} records for {} customers in {:.1?}",
            report.total(),
            report.count("customer"),
            report.elapsed
        );
    }
    let password = std::fs::read_to_string(&password_file)
        .unwrap_or_else(|_| format!("(see {})", password_file.display()));
    println!(
        "demo: open http://{bind}/login?tenant={key} — log in with company \"{key}\", username \"admin\", password \"{}\" (API docs at http://{bind}/docs)",
        password.trim()
    );
    Ok(())
}

fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..14)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `metacrm reindex`: rebuilds indexes with a progress bar per entity.
fn parse_mapping(pairs: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(column, field)| (column.trim().to_string(), field.trim().to_string()))
                .ok_or_else(|| Error::BadRequest(format!("--map {pair:?}: write COLUMN=FIELD")))
        })
        .collect()
}

/// The command line acts as `username`, or as the tenant's first administrator.
async fn cli_context(
    tenants: &Tenants,
    tenant: &str,
    username: Option<&str>,
) -> Result<metacrm::auth::Context> {
    let tenant = tenants.get(tenant).await?;
    let users = metacrm::auth::users::list(&tenant.db).await?;
    let user = match username {
        Some(name) => users.into_iter().find(|u| u.username == name),
        None => users.into_iter().find(|u| u.is_admin && u.active),
    }
    .ok_or_else(|| {
        Error::NotFound(format!(
            "user {} not found",
            username.unwrap_or("(administrator)")
        ))
    })?;
    Ok(metacrm::auth::Context::new(tenant, user))
}

async fn import(
    tenants: &Tenants,
    tenant: &str,
    entity: &str,
    username: Option<&str>,
    file: &std::path::Path,
    options: &ImportOptions,
) -> Result<()> {
    let ctx = cli_context(tenants, tenant, username).await?;
    let catalog = ctx.tenant.catalog().await;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} rows ({per_sec}, {elapsed}, about {eta} left)",
        )
        .expect("static template"),
    );
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let report = metacrm::transfer::import::run(
        &ctx,
        catalog.clone(),
        entity,
        tenants.search.clone(),
        Source::File(file.to_path_buf()),
        &name,
        options.clone(),
        &|progress, total| {
            bar.set_length(total);
            bar.set_position(progress.rows_done);
        },
    )
    .await?;
    bar.finish();
    if let Some(row) = report.resumed_after_row {
        println!("resumed after row {row}, committed by an earlier run");
    }
    for column in &report.columns {
        println!("column {} → {}", column["column"], column["field"]);
    }
    for column in &report.ignored_columns {
        println!("column {} ignored: {}", column["column"], column["reason"]);
    }
    for error in report.errors.iter().take(50) {
        println!(
            "row {}, {}: {}",
            error["row"],
            error["column"].as_str().unwrap_or("-"),
            error["message"].as_str().unwrap_or_default()
        );
    }
    if report.errors.len() > 50 {
        println!("… and {} more errors", report.errors.len() - 50);
    }
    if !report.duplicates.is_empty() {
        println!(
            "{} row(s) look like existing records or earlier rows",
            report.duplicates.len()
        );
    }
    let verb = if report.dry_run { "would be" } else { "were" };
    println!(
        "{} rows: {} {verb} created, {} updated, {} unchanged, {} refused{}",
        report.rows,
        report.created,
        report.updated,
        report.unchanged,
        report.skipped,
        match (report.dry_run, report.job) {
            (true, _) => " (dry run: nothing changed)".to_string(),
            (false, Some(job)) => format!(" (import job {job})"),
            (false, None) => String::new(),
        }
    );
    Ok(())
}

async fn reindex(tenants: &Tenants, tenant: Option<String>, entity: Option<String>) -> Result<()> {
    let keys = match tenant {
        Some(key) => vec![key],
        None => tenants.keys().await?,
    };
    for key in keys {
        let tenant = tenants.get(&key).await?;
        let catalog = tenant.catalog().await;
        if let Some(only) = &entity {
            catalog
                .entity(only)
                .ok_or_else(|| Error::NotFound(format!("entity {only:?} not found in {key}")))?;
        }
        for entity_catalog in catalog.entities() {
            if entity
                .as_deref()
                .is_some_and(|e| e != entity_catalog.def.key)
                || !entity_catalog.def.fields.iter().any(|f| f.searchable)
            {
                continue;
            }
            let bar = indicatif::ProgressBar::new_spinner()
                .with_message(format!("{key}/{}", entity_catalog.def.key));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {msg}: {pos} records ({per_sec}, {elapsed})",
                )
                .expect("static template"),
            );
            let started = std::time::Instant::now();
            let count = metacrm::search::indexer::rebuild(
                &tenant,
                &catalog,
                tenants.search.as_ref(),
                entity_catalog,
                &|done| bar.set_position(done),
            )
            .await?;
            bar.finish();
            let seconds = started.elapsed().as_secs_f64().max(0.001);
            println!(
                "{key}/{}: {count} records in {seconds:.1}s ({:.0}/s)",
                entity_catalog.def.key,
                count as f64 / seconds
            );
        }
    }
    Ok(())
}

/// After the last request: what the outbox holds reaches the search index and the
/// webhooks before the process exits (what is left is picked up at the next start, or
/// by the node that takes over), for the tenants whose lease this node holds; then the
/// leases are given up so that other nodes take over at once.
async fn flush_outbox(tenants: &Tenants) {
    let client = reqwest::Client::new();
    for key in tenants.loaded_keys().await {
        if !tenants.holds_lease(&key).await {
            continue;
        }
        let Ok(tenant) = tenants.get(&key).await else {
            continue;
        };
        let catalog = tenant.catalog().await.clone();
        if let Err(error) =
            metacrm::search::indexer::drain(&tenant, &catalog, tenants.search.as_ref()).await
        {
            tracing::error!(tenant = %key, %error, "search index not flushed at shutdown");
        }
        if let Err(error) =
            metacrm::plugin::webhooks::run(&tenant, &client, chrono::Utc::now()).await
        {
            tracing::error!(tenant = %key, %error, "webhooks not flushed at shutdown");
        }
    }
    if let Err(error) = tenants.leases.release_all(tenants.platform.system()).await {
        tracing::error!(%error, "leases not released; other nodes take over when they expire");
    }
    tracing::info!("outbox flushed; bye");
}

/// Ctrl-C or SIGTERM (what a service manager or a container runtime sends): the
/// server stops accepting, finishes what is in flight (up to ten seconds) and exits.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn serve(tenants: Arc<Tenants>, bind: &str) -> Result<()> {
    // Bind before announcing, so whoever reads the line can connect at once.
    let acceptor = TcpListener::bind(bind.to_string())
        .into_acceptor()
        .await
        .map_err(|e| Error::Internal(format!("cannot listen on {bind}: {e}")))?;
    println!("metacrm listening on http://{bind} (API /api, docs /docs)");
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            api::server(tenants),
            shutdown_signal(),
            Some(std::time::Duration::from_secs(10)),
        )
        .await
        .map_err(|e| Error::Internal(format!("server failed on {bind}: {e}")))
}
