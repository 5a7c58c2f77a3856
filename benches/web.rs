//! Server time of the two heaviest pages, and what each page weighs:
//!
//! - **list**: `/e/customer`, 50 rows of the customer table (`METACRM_BENCH_WEB_ROWS`,
//!   default 10,000 rows, bulk-loaded), default columns, newest first (by id);
//! - **form**: `/e/customer/{id}/edit`, the generated form of a 60-field entity with a
//!   record's values.
//!
//! Each page is fetched over loopback HTTP with a session cookie, as a browser would,
//! `METACRM_BENCH_ITERS` (default 300) times after 30 warm-up requests. Beside it, in
//! the same run: `/healthz` (the HTTP floor of one request on this machine) and the
//! page's own rows read by raw SQL on the same pool (the database floor). Target:
//! server time < 20 ms each. Page weight: the HTML plus every script and stylesheet
//! it links, as served (uncompressed).

mod common;

use std::time::{Duration, Instant};

use common::{Env, Table};
use sea_orm::{ConnectionTrait, Statement};

const TARGET: Duration = Duration::from_millis(20);

async fn login_cookie(client: &reqwest::Client, base: &str, tenant: &str) -> String {
    let response = client
        .post(format!("{base}/login"))
        .form(&[
            ("tenant", tenant),
            ("username", common::ADMIN),
            ("password", common::PASSWORD),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(response.status().as_u16(), 303, "login failed");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("metacrm_session="))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_string()
}

async fn fetch(client: &reqwest::Client, url: &str, cookie: &str) -> (u16, usize) {
    let response = client
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body").len();
    (status, bytes)
}

/// The `/static/…` URLs a page links (scripts and stylesheets).
fn linked_assets(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for marker in ["src=\"/static/", "href=\"/static/"] {
        let mut rest = html;
        while let Some(at) = rest.find(marker) {
            let start = at + marker.find('/').expect("marker has a slash");
            let end = start + rest[start..].find('"').expect("closing quote");
            urls.push(rest[start..end].replace("&amp;", "&"));
            rest = &rest[end..];
        }
    }
    urls
}

async fn time_requests(
    client: &reqwest::Client,
    url: &str,
    cookie: &str,
    iterations: usize,
) -> Vec<Duration> {
    for _ in 0..30 {
        fetch(client, url, cookie).await;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t0 = Instant::now();
        let (status, _) = fetch(client, url, cookie).await;
        samples.push(t0.elapsed());
        assert_eq!(status, 200, "{url}");
    }
    samples
}

fn main() {
    let rows = common::env_usize("METACRM_BENCH_WEB_ROWS", 10_000);
    let iterations = common::env_usize("METACRM_BENCH_ITERS", 300);
    common::runtime().block_on(async move {
        let env = Env::open().await;
        common::print_header("web pages", env.backend());
        // 12 typed fields plus 48 text fields: a 60-field form.
        let tenant = env.tenant("web", &common::customer_package(48)).await;
        let admin = common::admin_id(&tenant).await;
        common::ensure_loaded(&tenant, rows, admin).await;
        let base = common::serve(env.tenants.clone()).await;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()
            .expect("client");
        let cookie = login_cookie(&client, &base, &tenant.key).await;
        let table = common::qualified(&tenant.db, common::TABLE);
        let backend = common::db_backend(&tenant.db);
        let newest =
            format!("SELECT * FROM {table} WHERE deleted_at IS NULL ORDER BY id DESC LIMIT 51");
        let first_id: i64 = tenant
            .db
            .conn()
            .query_all_raw(Statement::from_string(
                backend,
                format!("SELECT MIN(id) FROM {table}"),
            ))
            .await
            .expect("min id")[0]
            .try_get_by_index(0)
            .expect("an id");
        let one = format!("SELECT * FROM {table} WHERE id = {first_id}");

        let pages = [
            (
                "list: 50 rows, default columns",
                "/e/customer".to_string(),
                newest.clone(),
            ),
            (
                "form: 60 fields, edit",
                format!("/e/customer/{first_id}/edit"),
                one.clone(),
            ),
            ("form: 60 fields, new", "/e/customer/new".to_string(), one),
        ];
        let floor = common::stats(
            time_requests(&client, &format!("{base}/healthz"), &cookie, iterations).await,
        );
        let mut timing = Table::new(
            format!(
                "Web pages, {rows} customers, {iterations} requests each ({})",
                env.label()
            ),
            &[
                "page",
                "p50 ms",
                "p99 ms",
                "/healthz p50 ms",
                "raw SQL p50 ms",
                "target < 20 ms (p50)",
            ],
        );
        let mut weight = Table::new(
            format!("Page weight ({})", env.label()),
            &[
                "page",
                "HTML bytes",
                "CSS bytes",
                "JS bytes",
                "total bytes",
                "requests",
            ],
        );
        for (label, path, sql) in pages {
            let url = format!("{base}{path}");
            let page = common::stats(time_requests(&client, &url, &cookie, iterations).await);
            let mut raw = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                let t0 = Instant::now();
                tenant
                    .db
                    .conn()
                    .query_all_raw(Statement::from_string(backend, sql.clone()))
                    .await
                    .expect("raw SQL");
                raw.push(t0.elapsed());
            }
            let raw = common::stats(raw);
            timing.row(vec![
                label.to_string(),
                common::ms(page.p50),
                common::ms(page.p99),
                common::ms(floor.p50),
                common::ms(raw.p50),
                common::verdict(page.p50 < TARGET),
            ]);
            let html = client
                .get(&url)
                .header("cookie", &cookie)
                .send()
                .await
                .expect("page")
                .text()
                .await
                .expect("html");
            let (mut css, mut js) = (0usize, 0usize);
            let assets = linked_assets(&html);
            for asset in &assets {
                let (status, bytes) = fetch(&client, &format!("{base}{asset}"), &cookie).await;
                assert_eq!(status, 200, "{asset}");
                if asset.contains(".css") {
                    css += bytes;
                } else {
                    js += bytes;
                }
            }
            weight.row(vec![
                label.to_string(),
                html.len().to_string(),
                css.to_string(),
                js.to_string(),
                (html.len() + css + js).to_string(),
                (1 + assets.len()).to_string(),
            ]);
        }
        timing.print();
        weight.print();
        env.cleanup().await;
    });
}
